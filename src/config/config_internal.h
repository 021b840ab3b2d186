/* config_internal.h -- what the config loader's files share: the load
 * context, the node tree libyaml's events are turned into, and the calls
 * between the loader's parts. Not a contract for anyone else (config.h is);
 * only the .c files of src/config/ include it, and it is not installed.
 *
 * The loader's files, by job (the three steps are described in config.c):
 *   config.c          entry: eb_config_load(), eb_config_load_string(),
 *                     eb_config_free(), eb_config_needs_reconnect()
 *   config_errors.c   the error list (FILE:LINE:COL, at most 20), secret
 *                     scrubbing, how a node is named and shown in messages
 *   config_yaml.c     step 1, load: libyaml events -> nodes with their
 *                     line:col, input limits, anchors and aliases
 *   config_values.c   a node's value: null/absent, ${VAR} expansion, and
 *                     conversion by type (scalars, URL, databases, events,
 *                     client properties, headers)
 *   config_plugins.c  plugin instances, their settings, the names routes
 *                     list, and the daemon's plugin checks
 *   config_walk.c     step 2, walk: each mapping against its schema table
 *                     (unknown, duplicate and required keys, defaults)
 *   config_checks.c   step 3 and per-section rules across settings: redis
 *                     (URL vs keys, topology, TLS, timings), ledger,
 *                     coordination, each route; unique route names, the
 *                     router build, slot ledgers on Cluster
 *
 * One load is one struct ctx, on the caller's thread; nothing here is
 * global.
 */
#ifndef EB_CONFIG_INTERNAL_H
#define EB_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "config/config_schema.h"
#include "core/buf.h"

/* Input limits. A real configuration is a few kilobytes (10,000 routes are
 * about 1 MiB); the limits only stop a wrong path (a log, a dump) or a
 * hostile file from costing memory and time. */
#define MAX_FILE_BYTES   (16u << 20)
#define MAX_DEPTH        64
#define MAX_NODES        1000000u
#define MAX_EXPANDED     1000000u /* nodes once every alias is expanded */
#define MAX_ANCHORS      1000     /* anchors are looked up linearly */
#define MAX_ERRORS       20
#define MAX_CLIENT_PROPS 1000
/* Binary mode sends 7 headers of its own (event.h), of EB_EVENT_MAX_HEADERS. */
#define MAX_HEADERS (EB_EVENT_MAX_HEADERS - 7)
/* Secrets shorter than this are not scrubbed from messages: replacing
 * every "a" would garble the text, and such a secret protects nothing. */
#define MIN_SCRUB_LEN  3
#define MAX_TABLE_ROWS 64

/* ------------------------------------------------------------------------ */
/* Nodes and the load context                                               */
/* ------------------------------------------------------------------------ */

enum ytype { Y_SCALAR, Y_SEQ, Y_MAP };

struct ynode {
    enum ytype type;
    unsigned line, col; /* 1-based, of the node's first character */
    bool plain;         /* a plain (unquoted, non-block) scalar */
    bool exact;         /* one-line scalar whose value is its source text:
                           an offset into the value is an offset in the line */
    unsigned char lead; /* columns before the value (1 for a quote) */
    bool done;          /* collection closed (aliases may refer to it) */
    char *str;          /* scalar value, NUL-terminated (may hold NULs) */
    size_t len;
    struct ynode **kids; /* SEQ: items; MAP: key, value, key, value, ... */
    size_t nkids, kids_cap;
    uint64_t weight; /* nodes in this subtree with aliases expanded */
};

struct anchor {
    char *name;
    struct ynode *node;
};

/* What one mapping held, by row of its table. */
struct seen {
    const struct eb_config_key *table;
    const struct ynode *map;
    const struct ynode *key[MAX_TABLE_ROWS];
    const struct ynode *val[MAX_TABLE_ROWS];
};

/* Per route, for checks after all routes are read. */
struct route_seen {
    const struct ynode *map, *name;
};

struct ctx {
    const char *name; /* file name for messages */
    const struct eb_config_checks *checks; /* borrowed; may be NULL */
    struct eb_config *cfg;
    /* errors */
    struct eb_buf err;
    int nerr;
    bool stop; /* error limit reached or out of memory: stop walking */
    bool oom;
    /* nodes, all owned here */
    struct ynode **nodes;
    size_t nnodes, nodes_cap;
    struct anchor anchors[MAX_ANCHORS];
    size_t nanchors;
    /* secrets to scrub from messages; owned copies */
    char **secrets;
    size_t nsecrets, secrets_cap;
    /* defaults parsed from the tables, by row */
    struct {
        const struct eb_config_key *row;
        struct ynode *node;
    } defs[48];
    size_t ndefs;
    /* from redis.url until the redis section is finished */
    char *url_user, *url_pass;
    int url_db;
    const struct ynode *url_node;
    const struct ynode *ledger_prefix; /* ledger.key_prefix as written, or NULL */
    struct route_seen *routes;
    const struct ynode **plugin_maps; /* per plugin instance, for errors */
    const struct ynode **plugin_names;
};

/* ------------------------------------------------------------------------ */
/* config_errors.c                                                          */
/* ------------------------------------------------------------------------ */

void eb_config_add_secret(struct ctx *c, const char *s);
void eb_config_errorf(struct ctx *c, unsigned line, unsigned col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void eb_config_node_pos(const struct ynode *n, size_t off, unsigned *line, unsigned *col);
const char *eb_config_kind_name(const struct ynode *n);
void eb_config_shown(const struct ynode *n, char *out, size_t out_size);

/* An error about node n as a whole, at its first character. */
#define err_at(c, n, ...)                                                                          \
    do {                                                                                           \
        const struct ynode *n_ = (n);                                                              \
        eb_config_errorf((c), n_ ? n_->line : 1, n_ ? n_->col : 1, __VA_ARGS__);                   \
    } while (0)

/* ------------------------------------------------------------------------ */
/* config_yaml.c                                                            */
/* ------------------------------------------------------------------------ */

struct ynode *eb_config_load_yaml(struct ctx *c, const char *buf, size_t len);
void eb_config_nodes_free(struct ctx *c);

/* ------------------------------------------------------------------------ */
/* config_values.c                                                          */
/* ------------------------------------------------------------------------ */

bool eb_config_is_null(const struct ynode *n);
bool eb_config_is_absent(const struct ynode *n);
char *eb_config_scalar_text(struct ctx *c, const struct ynode *n, const char *what,
                            bool *expanded);
char *eb_config_xstrdup(struct ctx *c, const char *s);
void eb_config_set_str(char **field, char *s);
void eb_config_child_path(char *out, size_t size, const char *path, const char *key);
void eb_config_bad_value(struct ctx *c, const struct ynode *n, const char *what,
                         const struct eb_config_key *k, const char *reason);
void eb_config_convert_url(struct ctx *c, const struct ynode *n, const char *what,
                           const char *url, struct eb_config_redis *r);
void eb_config_convert_databases(struct ctx *c, const struct ynode *n, const char *what,
                                 struct eb_config_redis *r);
void eb_config_kv_free(struct eb_kv *kv, size_t n);
void eb_config_convert_client(struct ctx *c, const struct ynode *n, const char *what,
                              struct eb_config_kafka *k);
void eb_config_convert_headers(struct ctx *c, const struct ynode *n, const char *what,
                               struct eb_config_route *r);
void eb_config_convert_events(struct ctx *c, const struct ynode *n, const char *what,
                              uint64_t *mask);
void eb_config_convert_scalar(struct ctx *c, const struct eb_config_key *k,
                              const struct ynode *n, void *field, const char *what);

/* ------------------------------------------------------------------------ */
/* config_plugins.c                                                         */
/* ------------------------------------------------------------------------ */

void eb_config_node_free(struct eb_config_node *n);
void eb_config_convert_settings(struct ctx *c, const struct ynode *n, const char *what,
                                struct eb_config_node **field);
void eb_config_convert_plugin_refs(struct ctx *c, const struct ynode *n, const char *what,
                                   struct eb_config_route *r);
void eb_config_convert_plugins(struct ctx *c, const struct eb_config_key *k,
                               const struct ynode *n, const char *what);
void eb_config_resolve_plugin_refs(struct ctx *c);
void eb_config_check_plugins(struct ctx *c);

/* ------------------------------------------------------------------------ */
/* config_walk.c                                                            */
/* ------------------------------------------------------------------------ */

void eb_config_walk_map(struct ctx *c, const struct ynode *map,
                        const struct eb_config_key *table, void *base, const char *path,
                        struct seen *s);
const struct ynode *eb_config_seen_get(const struct seen *s, const char *key);
bool eb_config_list_item(struct ctx *c, const struct ynode *item, const char *what, size_t i,
                         const char *expect, char *path, size_t path_size,
                         struct eb_srcpos *pos);

/* ------------------------------------------------------------------------ */
/* config_checks.c                                                          */
/* ------------------------------------------------------------------------ */

void eb_config_check_route(struct ctx *c, struct eb_config_route *r, const struct seen *s,
                           const char *path);
void eb_config_check_redis(struct ctx *c, const struct seen *s);
void eb_config_check_ledger(struct ctx *c, const struct seen *s);
void eb_config_check_coordination(struct ctx *c, const struct seen *s);
void eb_config_finish(struct ctx *c, const struct ynode *root);

#endif
