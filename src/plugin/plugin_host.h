/* plugin_host.h -- the bridge's side of the plugin ABI
 * (plugins/include/expiry_bridge/plugin.h, docs/plugins.md): load plugins,
 * check a configuration's plugin instances for the config loader, create
 * the instances of a configuration, and run one route's plugins on one
 * event through the host vtable.
 *
 * Three handles:
 *   eb_plugin_loader_t  the shared objects loaded so far (dlopen'ed once,
 *                       closed when the loader is destroyed), for the
 *                       process's life; the daemon owns one;
 *   eb_plugin_set_t     the instances of one configuration and each route's
 *                       chain; a reload builds a new set, which takes over
 *                       the old set's instances whose plugin and settings
 *                       did not change (no re-init: an Avro encoder keeps
 *                       its schema id);
 *   struct eb_plugin_event  the host's view of one event while its plugins
 *                       run (plugins see it as an opaque eb_plugin_event_t).
 *
 * Cost: nothing here runs for routes without plugins. For a route with
 * plugins, eb_plugin_event_begin() copies the event and resets a few flags;
 * everything a plugin may ask for (the id, the Kafka key, a field) is
 * computed when asked.
 *
 * @locality loop thread, except check (the calling thread of `check`).
 */
#ifndef EB_PLUGIN_HOST_H
#define EB_PLUGIN_HOST_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/event.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/router.h"

typedef struct eb_plugin_loader eb_plugin_loader_t;
typedef struct eb_plugin_set eb_plugin_set_t;
typedef struct eb_plugin_chain eb_plugin_chain_t;

/* log and metrics are borrowed and must outlive the loader; log receives
 * the log lines of this loader's plugins (host->log, from any thread; NULL:
 * discarded), metrics may be NULL (`check`). Loaders share nothing: a
 * process may hold several. default_dir: where shipped plugins are found by name when
 * the config sets no plugin_dir (copied; NULL: the compiled-in directory).
 * NULL when out of memory. */
eb_plugin_loader_t *eb_plugin_loader_new(eb_log_t *log, eb_metrics_t *metrics,
                                         const char *default_dir);

/* dlclose()s every plugin: call after every set is destroyed. NULL is a
 * no-op. */
void eb_plugin_loader_destroy(eb_plugin_loader_t *l);

/* The compiled-in directory of the shipped plugins. Static storage. */
const char *eb_plugin_default_dir(void);

/* struct eb_config_checks.plugins: opaque is the loader. Loads every
 * instance's plugin (ABI version, descriptor size, name, kind), refuses two
 * plugins of one name, runs each plugin's settings check, and checks each
 * route's list (transforms, then at most one encoder). Every problem is
 * reported at its file:line:col. */
int eb_plugin_loader_check_config(const struct eb_config *cfg, eb_config_report_fn *report,
                                  void *rctx, void *opaque);

/* The instances of cfg (which must have passed the check), taking over
 * those of `previous` (may be NULL) whose plugin and settings are the same.
 * cfg is borrowed while the set lives. NULL + errstr when a plugin's init
 * fails or out of memory; previous is untouched either way. */
eb_plugin_set_t *eb_plugin_set_new(eb_plugin_loader_t *l, const struct eb_config *cfg,
                                   const eb_plugin_set_t *previous, char *errstr,
                                   size_t errstr_size);

/* Instances no other set holds are destroyed (their plugin's destroy()).
 * NULL is a no-op. */
void eb_plugin_set_destroy(eb_plugin_set_t *s);

/* Route i's chain (index into cfg->routes), or NULL when it has no plugins.
 * Owned by the set. */
const eb_plugin_chain_t *eb_plugin_set_chain(const eb_plugin_set_t *s, size_t route);

/* Instances in the set (for logs). */
size_t eb_plugin_set_count(const eb_plugin_set_t *s);

/* An opaque identity of instance i (cfg->plugins index): equal in two sets
 * when the second took it over from the first. For tests and logs. */
const void *eb_plugin_set_instance(const eb_plugin_set_t *s, size_t i);

/* ---- one event --------------------------------------------------------- */

/* What eb_plugin_chain_run() returns (plugin.h's EB_PLUGIN_CONTINUE, _DROP,
 * _ERROR, which code above this layer does not include). */
#define EB_PLUGIN_RUN_CONTINUE 0
#define EB_PLUGIN_RUN_DROP     1
#define EB_PLUGIN_RUN_ERROR    (-1)

struct eb_plugin_header {
    const char *name; /* borrowed from the route, or at name_off in hdrbuf */
    const void *value;
    size_t name_off, value_off, value_len;
    bool own; /* stored in hdrbuf (set by a plugin) */
};

/* Initialise once with eb_plugin_event_init(), reuse for every event,
 * free with eb_plugin_event_free(). Fields are the host's; the pipeline
 * reads the results after eb_plugin_chain_run(). */
struct eb_plugin_event {
    /* input, set by eb_plugin_event_begin() */
    struct eb_event ev; /* a copy: plugins change payload and extra fields */
    const char *topic;  /* the route's topic, or topic_buf once changed */
    const eb_router_t *router;
    const struct eb_match *match; /* NULL: the Kafka key is the Redis key */
    const struct eb_header *route_headers;
    size_t nroute_headers;
    /* results */
    bool topic_changed, key_ready, headers_changed, encoded;
    const char *failed; /* name of the instance that dropped or failed the event */
    char reason[201];
    /* storage, reused from event to event */
    char topic_buf[256];
    char id[33];
    bool id_ready;
    struct eb_buf key, fields, payload, payload_alt, scratch, scratch2, hdrbuf, out;
    struct eb_plugin_header hdr[EB_EVENT_MAX_HEADERS];
    size_t nhdr;
    struct eb_header headers[EB_EVENT_MAX_HEADERS];
};

void eb_plugin_event_init(struct eb_plugin_event *pe);
void eb_plugin_event_free(struct eb_plugin_event *pe);

/* Start an event: ev and everything it points to, topic, router, match and
 * route_headers are borrowed until the results are read. */
void eb_plugin_event_begin(struct eb_plugin_event *pe, const struct eb_event *ev,
                           const char *topic, const eb_router_t *router,
                           const struct eb_match *match, const struct eb_header *route_headers,
                           size_t nroute_headers);

/* Run the chain's transforms in order, then its encoder (if any, into
 * pe->out, pe->encoded set). Returns EB_PLUGIN_RUN_CONTINUE, _DROP or
 * _ERROR (pe->failed and pe->reason say who and why). Each drop
 * and error is counted per instance. */
int eb_plugin_chain_run(const eb_plugin_chain_t *c, struct eb_plugin_event *pe);

/* After a run: the Kafka key (rendered now if no plugin asked for it) and
 * the headers (the route's, changed by plugins). Valid until the next
 * begin. NULL key: out of memory. */
const void *eb_plugin_event_key(struct eb_plugin_event *pe, size_t *len);
const struct eb_header *eb_plugin_event_headers(struct eb_plugin_event *pe, size_t *n);

#endif
