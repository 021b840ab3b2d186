/* config_schema.h -- the table of configuration keys, and the small pure
 * helpers the config loader validates values with.
 *
 * One table per mapping level, each row {type, key, default, offset,
 * flags, sub-table, description}, ending with a zero row. Everything that
 * is said about a key is said once, here: the loader uses the table for
 * unknown-key detection, nearest-key suggestions, required keys and
 * defaults (defaults are YAML text, parsed by the same code as the file,
 * so a default can never be a value the file could not hold); the
 * generators below write docs/config.md and config/config.schema.json from
 * it, and a unit test fails when either file is stale.
 *
 * Pure: static tables, no I/O except the FILE * the generators write to,
 * no global mutable state.
 */
#ifndef EB_CONFIG_SCHEMA_H
#define EB_CONFIG_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* The kind of value a key holds. The loader has one converter per type;
 * types used by a single key (the Redis URL, the Kafka client properties,
 * ...) know which neighbouring fields of the struct they fill. */
enum eb_ctype {
    EB_CT_END = 0,      /* end of a table */
    EB_CT_SECTION,      /* a mapping described by `sub`; same base struct */
    EB_CT_ROUTES,       /* a sequence of mappings described by `sub` (one route each) */
    EB_CT_UNROUTED,     /* "drop", or a mapping described by `sub` */
    EB_CT_PLUGINS,      /* a sequence of mappings described by `sub` (one plugin instance each) */
    EB_CT_STRING,       /* char * */
    EB_CT_SECRET,       /* char *, never printed */
    EB_CT_BOOL,         /* bool */
    EB_CT_DURATION,     /* int milliseconds, written "500ms", "5s", "1m", "2h" */
    EB_CT_SIZE,         /* size_t bytes, written "64KiB", "256MiB", "1GB" */
    EB_CT_COUNT,        /* size_t, a positive integer */
    EB_CT_REDIS_URL,    /* struct eb_config_redis: url, host, port, user, password, db */
    EB_CT_DATABASES,    /* struct eb_config_redis: all_databases, databases, ndatabases */
    EB_CT_BROKERS,      /* char *, "host:port[,host:port...]" */
    EB_CT_CLIENT_PROPS, /* struct eb_config_kafka: client, nclient */
    EB_CT_HEADERS,      /* struct eb_config_route: headers, nheaders */
    EB_CT_ROUTE_NAME,   /* char * */
    EB_CT_PATTERN,      /* char *, a router pattern (router.h) */
    EB_CT_EVENTS,       /* uint64_t event mask (notify_flags.h) */
    EB_CT_TOPIC,        /* char *, a Kafka topic name */
    EB_CT_TEMPLATE,     /* char *, a key template (router.h) */
    EB_CT_FORMAT,       /* enum eb_event_format */
    EB_CT_LEDGER,       /* enum eb_ledger_mode */
    EB_CT_LOG_LEVEL,    /* enum eb_log_level */
    EB_CT_LISTEN,       /* char *, "host:port" or "" */
    EB_CT_SETTINGS,     /* struct eb_config_node *: any YAML, checked by the plugin */
    EB_CT_PLUGIN_REFS,  /* struct eb_config_route: plugins, plugin_pos, nplugins */
    EB_CT_FILE,         /* char *, a path the bridge must be able to read */
};

/* Row flags. */
#define EB_CK_REQUIRED 0x1u /* the key must be present */
#define EB_CK_NONZERO  0x2u /* durations: 0 is not a meaningful value here */

struct eb_config_key {
    enum eb_ctype type;
    const char *key;
    const char *def; /* default as YAML text, or NULL: none (or derived, see description) */
    size_t offset;   /* of the field in the struct this level fills */
    unsigned flags;
    const struct eb_config_key *sub; /* SECTION, ROUTES, UNROUTED */
    const char *description;
};

/* The top level of the file. Static storage. */
extern const struct eb_config_key eb_config_schema[];

/* Row of `key` in table, or NULL. */
const struct eb_config_key *eb_config_schema_find(const struct eb_config_key *table,
                                                  const char *key);

/* The key of table nearest to `key` by edit distance (close enough to be a
 * typo), or NULL. Static storage. */
const char *eb_config_schema_suggest(const struct eb_config_key *table, const char *key);

/* The candidate nearest to `word` (close enough to be a typo), or NULL.
 * Returns one of the candidates. */
const char *eb_config_schema_nearest(const char *word, const char *const *candidates, size_t n);

/* Optimal-string-alignment edit distance (a transposition counts as one),
 * capped at 99 for long inputs. */
size_t eb_config_schema_edit_distance(const char *a, const char *b);

/* Short name of a type for docs ("duration"), and what a value of it looks
 * like, for "expected ..." in error messages. Static storage. */
const char *eb_config_schema_type_name(enum eb_ctype t);
const char *eb_config_schema_type_expected(enum eb_ctype t);

/* For enumerated types (FORMAT, LEDGER, LOG_LEVEL): the accepted names,
 * NULL-terminated, index = enum value. NULL for other types. */
const char *const *eb_config_schema_type_choices(enum eb_ctype t);

/* ---- value parsers: true, or false with a short reason (static or in
 * reason[], never quoting the value itself) ---------------------------- */

bool eb_config_schema_parse_bool(const char *s, bool *out, const char **reason);

/* "500ms", "5s", "1m", "2h" -> milliseconds (fits an int). */
bool eb_config_schema_parse_duration(const char *s, int *ms, const char **reason);

/* "512B", "64KiB", "256MiB", "1GiB", "1KB", "10MB", "1GB" -> bytes. */
bool eb_config_schema_parse_size(const char *s, size_t *bytes, const char **reason);

/* A positive decimal integer. */
bool eb_config_schema_parse_count(const char *s, size_t *out, const char **reason);

/* Index of s in a NULL-terminated choice list, or -1. */
int eb_config_schema_parse_choice(const char *s, const char *const *choices);

/* Kafka's topic name rules: 1..249 characters of [A-Za-z0-9._-], not "."
 * or "..". `reason` gets up to 96 bytes. */
bool eb_config_schema_topic_valid(const char *s, char *reason, size_t reason_size);

/* Route names: 1..255 characters of [A-Za-z0-9._-]. */
bool eb_config_schema_route_name_valid(const char *s, const char **reason);

/* "host:port" (host may be [v6]) with port 1..65535, or "" (off). */
bool eb_config_schema_listen_valid(const char *s, const char **reason);

/* ---- environment ------------------------------------------------------ */

/* Called for every ${VAR} replaced, with the variable's name and the text
 * substituted (borrowed for the call). */
typedef void(eb_config_env_cb)(void *opaque, const char *name, const char *value);

/* Expand in[0..len): ${VAR} and ${VAR:-default} (default when VAR is unset
 * or empty) from the environment, $$ to a literal $; any other $ stays.
 * On success returns 0 and *out is a NUL-terminated copy owned by the
 * caller (free()), *expanded true when a ${...} was replaced. On error
 * returns EB_ECONFIG (EB_ENOMEM) with the reason in errstr (naming the
 * variable, never its value) and *err_offset at the '$'. on_var may be
 * NULL. */
int eb_config_schema_expand_env(const char *in, size_t len, char **out, bool *expanded,
                         eb_config_env_cb *on_var, void *opaque, size_t *err_offset, char *errstr,
                         size_t errstr_size);

/* ---- generators ------------------------------------------------------- */

/* docs/config.md: one table per mapping level plus the value types. */
void eb_config_schema_markdown(FILE *out);

/* config/config.schema.json: JSON Schema (draft 2020-12) of the file. */
void eb_config_schema_json(FILE *out);

#endif
