/* config.h -- the bridge's YAML configuration, loaded and validated.
 *
 * eb_config_load() reads the file with libyaml, expands ${VAR} and
 * ${VAR:-default} from the environment in every scalar, checks every key
 * against the schema (config_schema.h: unknown keys are errors with the
 * nearest known key suggested), validates values (Kafka topic names, event
 * names, route patterns and key templates, librdkafka properties), and
 * compiles the routes (router.h), which detects ties. Nothing connects.
 *
 * Every error message starts with "FILE:LINE:COL: " (1-based) and says what
 * was expected, e.g.
 *   routes.yaml:12:5: unknown key 'tpoic' in routes[0]; expected one of name,
 *   match, events, topic, key, format, headers, ledger, payload, plugins, dead_letter; did you mean 'topic'?
 * All errors found are reported, one per line, up to 20.
 *
 * The result is a plain struct, immutable once loaded: a reload loads a new
 * one and swaps it in whole.
 */
#ifndef EB_CONFIG_H
#define EB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/redis_url.h"
#include "core/event.h"
#include "core/log.h"
#include "core/router.h"

/* 1-based position in the YAML file. */
struct eb_srcpos {
    unsigned line;
    unsigned col;
};

struct eb_kv {
    char *key;
    char *value;
    struct eb_srcpos pos;
};

enum eb_ledger_mode { EB_LEDGER_OFF = 0, EB_LEDGER_ARMED, EB_LEDGER_OBSERVED };

/* A node of a plugin instance's `settings:` (docs/plugins.md): a copy of
 * the YAML subtree, ${VAR} expanded in every scalar, each node with its
 * position and its path for error messages. The plugin validates it. */
enum eb_config_node_type { EB_NODE_SCALAR = 1, EB_NODE_LIST, EB_NODE_MAP };

struct eb_config_node {
    enum eb_config_node_type type;
    struct eb_srcpos pos;
    char *path;                   /* "plugins[0].settings.fields[1]" */
    char *str;                    /* SCALAR: the text, NUL-terminated */
    char **keys;                  /* MAP: key i of entry i */
    struct eb_srcpos *key_pos;    /* MAP: where key i is written (pos is the value's) */
    struct eb_config_node **kids; /* LIST: items; MAP: values */
    size_t nkids;
};

/* One plugin instance (top-level `plugins:`); routes name it. */
struct eb_config_plugin {
    char *name;                      /* unique among instances */
    char *path;                      /* a shipped plugin's name, or a path to a .so */
    struct eb_config_node *settings; /* NULL: no settings */
    struct eb_srcpos pos;            /* of the instance's mapping */
    struct eb_srcpos path_pos;       /* of its path value */
};

struct eb_config_route {
    char *name;                  /* unique */
    char *match;                 /* router pattern */
    uint64_t events;             /* event-id mask; default: expired only */
    char *topic;                 /* a valid Kafka topic name */
    char *key;                   /* Kafka key template; NULL: the Redis key */
    enum eb_event_format format; /* default cloudevents */
    struct eb_kv *headers;       /* extra Kafka headers, sent as given */
    size_t nheaders;
    enum eb_ledger_mode ledger; /* default off */
    char *payload;              /* companion key template; NULL: none */
    char **plugins;             /* instance names, in order (`plugins: [a, b]`) */
    size_t *plugin_idx;         /* plugins[i] is cfg->plugins[plugin_idx[i]] */
    struct eb_srcpos *plugin_pos; /* of each name, for errors */
    size_t nplugins;
    char *dead_letter;          /* topic for events a plugin failed; NULL: drop them */
    struct eb_srcpos pos;       /* of the route's mapping */
};

struct eb_config_redis {
    char *url;                 /* as written, for logs (redact before logging!) */
    struct eb_redis_url target; /* url parsed: topology, TLS, nodes, master name */
    char *host;                /* target.nodes[0]: the standalone server */
    int port;                  /* target.nodes[0]; default 6379 */
    char *username;     /* ACL user of the masters, or NULL */
    char *password;     /* or NULL; never log */
    char *sentinel_username;  /* the sentinels' own ACL user, or NULL */
    char *sentinel_password;  /* the sentinels' own password, or NULL; never log */
    char *tls_ca_file;        /* rediss: CA bundle, or NULL for the system's */
    char *tls_cert_file;      /* client certificate, or NULL */
    char *tls_key_file;       /* its key, or NULL */
    char *tls_server_name;    /* name verified and sent as SNI, or NULL: each host */
    bool tls_insecure_skip_verify;
    int topology_interval_ms; /* ROLE / CLUSTER SHARDS poll; default 1000 */
    bool all_databases; /* databases: all (the default) */
    int *databases;     /* else this list */
    size_t ndatabases;
    bool configure_notifications; /* default true */
    char *source;                 /* CloudEvents source base; default "redis://HOST:PORT" */
    int connect_timeout_ms;       /* default 5000 */
    int heartbeat_interval_ms;    /* default 1000 */
    int heartbeat_timeout_ms;     /* default 5000 */
    int reconnect_min_ms;         /* default 100 */
    int reconnect_max_ms;         /* default 10000 */
    size_t read_ahead_max_events; /* backlog.h bound; default 1000000 */
    size_t read_ahead_max_bytes;  /* default 64 MiB */
};

struct eb_config_kafka {
    char *brokers;        /* bootstrap.servers */
    struct eb_kv *client; /* librdkafka properties, passed through */
    size_t nclient;
    size_t queue_max_events; /* bound of events awaiting delivery; default 100000 */
    size_t queue_max_bytes;  /* bound of their bytes; default 256 MiB */
    int drain_timeout_ms;    /* SIGTERM flush budget; default 20000 */
};

/* Most ledgers one armed route may be split into (ledger.buckets). */
#define EB_CONFIG_LEDGER_MAX_BUCKETS 1024

/* The deadline ledger's settings (docs/ledger.md); used when a route has
 * ledger: armed/observed or a payload. */
struct eb_config_ledger {
    char *key_prefix;          /* a route's ledger is key_prefix + "{" + route + "}";
                                  default "expiry-bridge:ledger:" */
    int sweep_interval_ms;     /* default 1000 */
    int sweep_grace_ms;        /* entries this far past their deadline are swept; default 250 */
    size_t sweep_batch;        /* entries per sweep page and keys per SCAN; default 500 */
    int claim_ttl_ms;          /* how long a claim holds a timer; default 10000 */
    int remember_delivered_ms; /* how long a delivered timer is remembered; default 30000 */
    size_t buckets;            /* armed routes: ledgers per route (hash tags {route:b}); default 1 */
};

/* Several replicas splitting the work (docs/operations.md, "Several
 * replicas"): a Kafka consumer group on a control topic decides which
 * replica owns which unit (redis_topology.h). */
struct eb_config_coordination {
    bool enabled;              /* default false: this replica owns every unit */
    char *group;               /* consumer group; default "expiry-bridge" */
    char *topic;               /* control topic; default "expiry-bridge.units" */
    int session_timeout_ms;    /* default 6000 */
    int heartbeat_interval_ms; /* default 1000 */
    int handover_grace_ms;     /* SIGTERM: keep reading this long after leaving; default 5000 */
};

struct eb_config {
    char *path; /* file loaded, or the name given */
    struct eb_config_redis redis;
    struct eb_config_kafka kafka;
    struct eb_config_ledger ledger;
    struct eb_config_coordination coordination;
    struct eb_config_route *routes;
    size_t nroutes;
    bool unrouted_drop;   /* unrouted: drop (default) */
    char *unrouted_topic; /* unrouted: { topic: ... } */
    enum eb_event_format unrouted_format;
    char *http_listen;           /* "127.0.0.1:9464"; NULL or "": no HTTP server */
    enum eb_log_level log_level; /* default info */
    int stats_interval_ms;       /* periodic stats log line; default 60000; 0 off */
    uint64_t events;             /* what to subscribe: route_events | ledger_events */
    uint64_t route_events;       /* union of every route's events: what is forwarded */
    uint64_t ledger_events;      /* events subscribed only for ledger: observed bookkeeping
                                    (expire, del, persist); 0 without observed routes */
    eb_router_t *router;         /* routes compiled; rule i is routes[i], opaque = &routes[i] */
    struct eb_config_plugin *plugins; /* plugin instances (docs/plugins.md) */
    size_t nplugins;
    char *plugin_dir; /* where shipped plugins are found by name; NULL: the built-in dir */
    char *dir;        /* directory of the file: relative plugin paths start here */
};

/* How a check hook reports one error: at pos, msg (copied) as the whole
 * message after "FILE:LINE:COL: ". */
typedef void(eb_config_report_fn)(void *rctx, struct eb_srcpos pos, const char *msg);

/* Checks the loader cannot make by itself because they need a library of a
 * layer above config/ (src/CMakeLists.txt): the daemon fills this in; tests
 * and the fuzzer may pass NULL to skip them. Errors they report are placed
 * at file:line:col like every other error. */
struct eb_config_checks {
    /* Does the Kafka client accept these kafka.client properties? 0, or
     * EB_ECONFIG with the failing index in *bad and a reason, or EB_ENOMEM
     * (kafka_props.h). NULL: not checked. */
    int (*client_props)(const struct eb_kv *client, size_t nclient, size_t *bad, char *reason,
                        size_t reason_size);
    /* NULL when this build can speak TLS to Redis; else why not, naming
     * the library version (a rediss:// URL is then an error). */
    const char *redis_tls_unavailable;
    /* Load and check the plugin instances of a config whose keys are all
     * valid (plugin.h: ABI version, descriptor size, unique names, each
     * instance's settings, kinds per route), reporting each problem with
     * report(). Returns 0, EB_ECONFIG or EB_ENOMEM. NULL: not checked. */
    int (*plugins)(const struct eb_config *cfg, eb_config_report_fn *report, void *rctx,
                   void *opaque);
    void *plugins_opaque; /* handed to plugins(); borrowed */
};

/* Load and validate `path`; checks is borrowed for the call and may be NULL. On success *out is owned by the caller (free
 * with eb_config_free()) and 0 is returned. On failure returns EB_ECONFIG
 * (or EB_EIO when the file cannot be read, EB_ENOMEM), leaves *out NULL, and
 * errstr holds every error, one per line. */
int eb_config_load(const char *path, const struct eb_config_checks *checks, struct eb_config **out,
                   char *errstr, size_t errstr_size);

/* The same from memory; `name` stands for the file name in messages. */
int eb_config_load_string(const char *yaml, size_t len, const char *name,
                          const struct eb_config_checks *checks, struct eb_config **out,
                          char *errstr, size_t errstr_size);

/* NULL is a no-op. */
void eb_config_free(struct eb_config *cfg);

/* True when two configs differ in a setting that needs new connections
 * (Redis address, credentials, databases; Kafka brokers or client
 * properties), as opposed to routes only, which swap in place. */
bool eb_config_needs_reconnect(const struct eb_config *a, const struct eb_config *b);

#endif
