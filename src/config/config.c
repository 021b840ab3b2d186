/* config.c -- YAML (libyaml) -> struct eb_config, validated against the key
 * tables of config_schema.c, with FILE:LINE:COL errors.
 *
 * Three steps:
 *   1. load: libyaml's event parser builds a small node tree of our own,
 *      enforcing the input limits as it goes (size, nesting depth, node
 *      count, anchors, and the size the document would have with every
 *      alias expanded, so an alias bomb is rejected before anything walks
 *      it). Aliases become shared nodes, never copies.
 *   2. walk: each mapping is checked against its table (unknown and
 *      duplicate keys, required keys, defaults) and each value converted by
 *      its type, after ${VAR} expansion. Errors are collected, up to 20.
 *   3. finish: cross-field rules (URL database vs `databases`, timeouts),
 *      unique route names, and the router build, which detects ties.
 *
 * Error messages never quote an expanded value: they show the text as
 * written in the file (where a secret is a ${VAR} reference), and any text
 * taken from another module's message is scrubbed of every secret seen
 * (passwords, secret-named properties, values of secret-named variables).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include "config/config.h"
#include "config/config_schema.h"
#include "config/redis_url.h"
#include "core/error.h"
#include "core/notify.h"

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
/* Nodes                                                                    */
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
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

static void add_secret(struct ctx *c, const char *s) {
    if (!s || strlen(s) < MIN_SCRUB_LEN)
        return;
    if (c->nsecrets == c->secrets_cap) {
        size_t cap = c->secrets_cap ? c->secrets_cap * 2 : 8;
        char **v = realloc(c->secrets, cap * sizeof(*v));
        if (!v) {
            c->oom = c->stop = true;
            return;
        }
        c->secrets = v;
        c->secrets_cap = cap;
    }
    char *d = strdup(s);
    if (!d) {
        c->oom = c->stop = true;
        return;
    }
    c->secrets[c->nsecrets++] = d;
}

/* Replace every occurrence of a known secret in s (in place: "***" is never
 * longer than a secret) with "***". */
static void scrub(const struct ctx *c, char *s) {
    for (size_t i = 0; i < c->nsecrets; i++) {
        const char *sec = c->secrets[i];
        size_t sl = strlen(sec);
        for (char *p = strstr(s, sec); p; p = strstr(p + 3, sec)) {
            memmove(p + 3, p + sl, strlen(p + sl) + 1);
            memcpy(p, "***", 3);
        }
    }
}

static void errorf(struct ctx *c, unsigned line, unsigned col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Record one error at line:col (1-based). */
static void errorf(struct ctx *c, unsigned line, unsigned col, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    if (c->nerr >= MAX_ERRORS) {
        c->stop = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    scrub(c, msg);
    char where[64];
    snprintf(where, sizeof(where), ":%u:%u: ", line, col);
    if (c->err.len)
        eb_buf_putc(&c->err, '\n');
    eb_buf_puts(&c->err, c->name);
    eb_buf_puts(&c->err, where);
    eb_buf_puts(&c->err, msg);
    if (++c->nerr >= MAX_ERRORS)
        c->stop = true;
}

/* Position of byte `off` of a scalar's value (past an opening quote) when
 * the value is its source text; else the node's start. */
static void node_pos(const struct ynode *n, size_t off, unsigned *line, unsigned *col) {
    *line = n ? n->line : 1;
    *col = n ? n->col : 1;
    if (n && n->type == Y_SCALAR && n->exact && off <= n->len)
        *col += n->lead + (unsigned)off;
}

/* An error about node n as a whole, at its first character. */
#define err_at(c, n, ...)                                                                          \
    do {                                                                                           \
        const struct ynode *n_ = (n);                                                              \
        errorf((c), n_ ? n_->line : 1, n_ ? n_->col : 1, __VA_ARGS__);                             \
    } while (0)

static const char *kind_name(const struct ynode *n) {
    switch (n->type) {
    case Y_SEQ:
        return "a list";
    case Y_MAP:
        return "a mapping";
    default:
        return "a scalar";
    }
}

/* A value as written, for messages: printable, quotes escaped, cut. */
static void shown(const struct ynode *n, char *out, size_t out_size) {
    size_t w = 0;
    for (size_t i = 0; i < n->len && w + 8 < out_size; i++) {
        unsigned char ch = (unsigned char)n->str[i];
        if (w + 12 >= out_size) {
            memcpy(out + w, "...", 3);
            w += 3;
            break;
        }
        if (ch == '\'' || ch == '\\')
            w += (size_t)snprintf(out + w, out_size - w, "\\%c", ch);
        else if (ch < 0x20 || ch == 0x7f)
            w += (size_t)snprintf(out + w, out_size - w, "\\x%02x", ch);
        else
            out[w++] = (char)ch;
    }
    out[w] = '\0';
}

/* ------------------------------------------------------------------------ */
/* Loading: libyaml events -> nodes                                         */
/* ------------------------------------------------------------------------ */

static struct ynode *node_new(struct ctx *c, enum ytype type, const yaml_mark_t *mark) {
    if (c->nnodes >= MAX_NODES)
        return NULL;
    if (c->nnodes == c->nodes_cap) {
        size_t cap = c->nodes_cap ? c->nodes_cap * 2 : 256;
        struct ynode **v = realloc(c->nodes, cap * sizeof(*v));
        if (!v) {
            c->oom = true;
            return NULL;
        }
        c->nodes = v;
        c->nodes_cap = cap;
    }
    struct ynode *n = calloc(1, sizeof(*n));
    if (!n) {
        c->oom = true;
        return NULL;
    }
    n->type = type;
    n->line = (unsigned)mark->line + 1;
    n->col = (unsigned)mark->column + 1;
    n->weight = 1;
    c->nodes[c->nnodes++] = n;
    return n;
}

static void nodes_free(struct ctx *c) {
    for (size_t i = 0; i < c->nnodes; i++) {
        free(c->nodes[i]->str);
        free(c->nodes[i]->kids);
        free(c->nodes[i]);
    }
    free(c->nodes);
    c->nodes = NULL;
    c->nnodes = c->nodes_cap = 0;
    for (size_t i = 0; i < c->nanchors; i++)
        free(c->anchors[i].name);
    c->nanchors = 0;
}

static bool kid_add(struct ctx *c, struct ynode *parent, struct ynode *kid) {
    if (parent->nkids == parent->kids_cap) {
        size_t cap = parent->kids_cap ? parent->kids_cap * 2 : 4;
        struct ynode **v = realloc(parent->kids, cap * sizeof(*v));
        if (!v) {
            c->oom = true;
            return false;
        }
        parent->kids = v;
        parent->kids_cap = cap;
    }
    parent->kids[parent->nkids++] = kid;
    return true;
}

static bool anchor_add(struct ctx *c, const yaml_char_t *name, struct ynode *n,
                       const yaml_mark_t *mark) {
    if (!name)
        return true;
    if (c->nanchors == MAX_ANCHORS) {
        errorf(c, (unsigned)mark->line + 1, (unsigned)mark->column + 1,
               "more than %d anchors; expected a simpler document", MAX_ANCHORS);
        return false;
    }
    char *d = strdup((const char *)name);
    if (!d) {
        c->oom = true;
        return false;
    }
    c->anchors[c->nanchors].name = d;
    c->anchors[c->nanchors++].node = n;
    return true;
}

static struct ynode *anchor_find(const struct ctx *c, const char *name) {
    /* The latest definition of a name wins (YAML allows redefinition). */
    for (size_t i = c->nanchors; i-- > 0;) {
        if (strcmp(c->anchors[i].name, name) == 0)
            return c->anchors[i].node;
    }
    return NULL;
}

/* Line and column (1-based) of byte offset off of buf. */
static void offset_pos(const char *buf, size_t len, size_t off, unsigned *line, unsigned *col) {
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        if (buf[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

static void report_parser_error(struct ctx *c, const yaml_parser_t *p, const char *buf,
                                size_t len) {
    const char *problem = p->problem ? p->problem : "cannot parse";
    unsigned line, col;
    if (p->error == YAML_MEMORY_ERROR) {
        c->oom = true;
        return;
    }
    if (p->error == YAML_READER_ERROR) {
        offset_pos(buf, len, p->problem_offset, &line, &col);
        errorf(c, line, col, "malformed YAML: %s (byte 0x%02x); expected UTF-8 text", problem,
               (unsigned)p->problem_value & 0xffu);
        return;
    }
    line = (unsigned)p->problem_mark.line + 1;
    col = (unsigned)p->problem_mark.column + 1;
    if (p->context)
        errorf(c, line, col, "malformed YAML: %s (%s at line %u, column %u)", problem, p->context,
               (unsigned)p->context_mark.line + 1, (unsigned)p->context_mark.column + 1);
    else
        errorf(c, line, col, "malformed YAML: %s", problem);
}

/* Attach n to the open collection (or make it the root), adding its
 * expanded weight to the parent's. */
static bool attach(struct ctx *c, struct ynode **stack, size_t depth, struct ynode **root,
                   struct ynode *n) {
    if (depth == 0) {
        *root = n;
        return true;
    }
    struct ynode *parent = stack[depth - 1];
    parent->weight += n->weight;
    if (parent->weight > MAX_EXPANDED) {
        errorf(c, n->line, n->col,
               "the document has more than %u nodes once aliases are expanded; expected a plain "
               "configuration (is this an alias bomb?)",
               MAX_EXPANDED);
        return false;
    }
    return kid_add(c, parent, n);
}

static bool scalar_exact(const yaml_event_t *ev) {
    const yaml_mark_t *s = &ev->start_mark, *e = &ev->end_mark;
    size_t len = ev->data.scalar.length, span = e->column - s->column;
    if (s->line != e->line)
        return false;
    switch (ev->data.scalar.style) {
    case YAML_PLAIN_SCALAR_STYLE:
        return span == len;
    case YAML_SINGLE_QUOTED_SCALAR_STYLE:
    case YAML_DOUBLE_QUOTED_SCALAR_STYLE:
        return span == len + 2;
    default:
        return false;
    }
}

/* One event into the tree. Returns false to stop (error reported). */
static bool load_event(struct ctx *c, const yaml_event_t *ev, struct ynode **stack, size_t *depth,
                       struct ynode **root, int *docs) {
    struct ynode *n = NULL;
    unsigned line = (unsigned)ev->start_mark.line + 1, col = (unsigned)ev->start_mark.column + 1;
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++*docs > 1) {
            errorf(c, line, col, "a second YAML document; expected one document per file");
            return false;
        }
        return true;
    case YAML_SCALAR_EVENT:
        n = node_new(c, Y_SCALAR, &ev->start_mark);
        if (!n)
            break;
        n->len = ev->data.scalar.length;
        n->str = malloc(n->len + 1);
        if (!n->str) {
            c->oom = true;
            return false;
        }
        memcpy(n->str, ev->data.scalar.value, n->len);
        n->str[n->len] = '\0';
        n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        n->exact = scalar_exact(ev);
        n->lead = n->plain ? 0 : 1;
        n->done = true;
        return anchor_add(c, ev->data.scalar.anchor, n, &ev->start_mark) &&
               attach(c, stack, *depth, root, n);
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        if (*depth == MAX_DEPTH) {
            errorf(c, line, col, "nesting deeper than %d levels; expected a flatter document",
                   MAX_DEPTH);
            return false;
        }
        n = node_new(c, ev->type == YAML_SEQUENCE_START_EVENT ? Y_SEQ : Y_MAP, &ev->start_mark);
        if (!n)
            break;
        if (!anchor_add(c,
                        ev->type == YAML_SEQUENCE_START_EVENT ? ev->data.sequence_start.anchor
                                                              : ev->data.mapping_start.anchor,
                        n, &ev->start_mark))
            return false;
        stack[(*depth)++] = n;
        return true;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        n = stack[--*depth];
        n->done = true;
        return attach(c, stack, *depth, root, n);
    case YAML_ALIAS_EVENT: {
        const char *name = (const char *)ev->data.alias.anchor;
        n = anchor_find(c, name);
        if (!n) {
            errorf(c, line, col, "alias *%s has no anchor &%s before it; expected a defined anchor",
                   name, name);
            return false;
        }
        if (!n->done) {
            errorf(c, line, col, "alias *%s refers to a node that contains it; expected no cycles",
                   name);
            return false;
        }
        return attach(c, stack, *depth, root, n);
    }
    default:
        return true;
    }
    /* node_new failed */
    if (!c->oom)
        errorf(c, line, col, "more than %u YAML nodes; expected a smaller document", MAX_NODES);
    return false;
}

/* Parse buf into a node tree. Returns the root (NULL for an empty
 * document, or on error, with c->nerr or c->oom set). */
static struct ynode *load_yaml(struct ctx *c, const char *buf, size_t len) {
    yaml_parser_t parser;
    yaml_event_t ev;
    struct ynode *stack[MAX_DEPTH], *root = NULL;
    size_t depth = 0;
    int docs = 0;
    if (!yaml_parser_initialize(&parser)) {
        c->oom = true;
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    for (;;) {
        if (!yaml_parser_parse(&parser, &ev)) {
            report_parser_error(c, &parser, buf, len);
            root = NULL;
            break;
        }
        bool ok = load_event(c, &ev, stack, &depth, &root, &docs);
        bool end = ev.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
        if (!ok) {
            root = NULL;
            break;
        }
        if (end)
            break;
    }
    yaml_parser_delete(&parser);
    return root;
}

/* ------------------------------------------------------------------------ */
/* Scalars                                                                  */
/* ------------------------------------------------------------------------ */

/* YAML's null: `key:`, `key: ~`, `key: null` (plain only; "" is a string). */
static bool is_null(const struct ynode *n) {
    if (!n)
        return true;
    if (n->type != Y_SCALAR || !n->plain)
        return false;
    return n->len == 0 || strcmp(n->str, "~") == 0 || strcmp(n->str, "null") == 0 ||
           strcmp(n->str, "Null") == 0 || strcmp(n->str, "NULL") == 0;
}

/* Null, or a plain scalar that expands to nothing (`password:
 * ${REDIS_PASSWORD:-}` with the variable unset): both mean "not given", so
 * an empty environment variable never becomes an empty password. A value
 * whose expansion fails is not absent: converting it reports the error. */
static bool is_absent(const struct ynode *n) {
    if (is_null(n))
        return true;
    if (n->type != Y_SCALAR || !n->plain || !memchr(n->str, '$', n->len))
        return false;
    char *out = NULL, reason[8];
    bool expanded, empty;
    size_t off;
    if (eb_config_schema_expand_env(n->str, n->len, &out, &expanded, NULL, NULL, &off, reason,
                             sizeof(reason)) != 0)
        return false;
    empty = out[0] == '\0';
    free(out);
    return empty;
}

static void on_env_var(void *opaque, const char *name, const char *value) {
    if (eb_log_is_secret_name(name))
        add_secret(opaque, value);
}

/* The value of scalar n after ${VAR} expansion, owned by the caller
 * (free()), or NULL after reporting why. `what` names the key. */
static char *scalar_text(struct ctx *c, const struct ynode *n, const char *what, bool *expanded) {
    char reason[256];
    size_t off = 0;
    char *out = NULL;
    bool exp = false;
    if (n->type != Y_SCALAR) {
        err_at(c, n, "invalid %s: found %s; expected a single value", what, kind_name(n));
        return NULL;
    }
    if (memchr(n->str, '\0', n->len)) {
        err_at(c, n, "invalid %s: the value contains a NUL character; expected text", what);
        return NULL;
    }
    int rc = eb_config_schema_expand_env(n->str, n->len, &out, &exp, on_env_var, c, &off, reason,
                                  sizeof(reason));
    if (rc == EB_ENOMEM) {
        c->oom = c->stop = true;
        return NULL;
    }
    if (rc) {
        unsigned line, col;
        node_pos(n, off, &line, &col);
        errorf(c, line, col, "invalid %s: %s", what, reason);
        return NULL;
    }
    if (expanded)
        *expanded = exp;
    return out;
}

static char *xstrdup(struct ctx *c, const char *s) {
    char *d = strdup(s);
    if (!d)
        c->oom = c->stop = true;
    return d;
}

/* Store s (taken) into the char * at field, freeing what was there (a
 * key given through an alias twice is converted twice). */
static void set_str(char **field, char *s) {
    free(*field);
    *field = s;
}

/* ------------------------------------------------------------------------ */
/* Value converters                                                         */
/* ------------------------------------------------------------------------ */

static void walk_map(struct ctx *c, const struct ynode *map, const struct eb_config_key *table,
                     void *base, const char *path, struct seen *s);

/* "path.key" (or "key" at the top level) into out. */
static void child_path(char *out, size_t size, const char *path, const char *key) {
    snprintf(out, size, "%s%s%s", path, *path ? "." : "", key);
}

static void bad_value(struct ctx *c, const struct ynode *n, const char *what,
                      const struct eb_config_key *k, const char *reason) {
    char v[96];
    shown(n, v, sizeof(v));
    err_at(c, n, "invalid %s '%s': %s; expected %s", what, v, reason,
           eb_config_schema_type_expected(k->type));
}

/* redis.url in any of its forms (redis_url.h) into cfg->redis and the url_*
 * fields of c. An error points at the column where the URL goes wrong when
 * the scalar is written as is (no ${VAR}, no escapes). Messages quote a
 * component, never the whole URL (it may hold a password). */
static void convert_url(struct ctx *c, const struct ynode *n, const char *what, const char *url,
                        struct eb_config_redis *r) {
    const char *expect = eb_config_schema_type_expected(EB_CT_REDIS_URL);
    struct eb_redis_url u;
    char reason[256];
    size_t off = 0;
    int rc = eb_redis_url_parse(url, &u, &off, reason, sizeof(reason));
    if (rc == EB_ENOMEM) {
        c->oom = c->stop = true;
        return;
    }
    if (rc == 0 && u.tls && c->checks && c->checks->redis_tls_unavailable) {
        snprintf(reason, sizeof(reason), "%s", c->checks->redis_tls_unavailable);
        off = 0;
        rc = EB_ECONFIG;
        eb_redis_url_free(&u);
    }
    if (rc != 0) {
        unsigned line, col;
        node_pos(n, off, &line, &col);
        errorf(c, line, col, "invalid %s: %s; expected %s", what, reason, expect);
        return;
    }
    /* A password in the URL is a secret, decoded or as written. */
    if (u.password) {
        char *raw = strndup(url + u.password_off, u.password_len);
        add_secret(c, u.password);
        add_secret(c, raw);
        free(raw);
    }
    set_str(&r->url, xstrdup(c, url));
    eb_redis_url_free(&r->target);
    r->target = u;
    set_str(&r->host, xstrdup(c, u.nodes[0].host));
    r->port = u.nodes[0].port;
    set_str(&c->url_user, u.username ? xstrdup(c, u.username) : NULL);
    set_str(&c->url_pass, u.password ? xstrdup(c, u.password) : NULL);
    c->url_db = u.db;
    c->url_node = n;
}

/* Whether n is the non-empty sequence a list-valued key needs; if not,
 * the error at n says what was found and what was expected. */
static bool nonempty_seq(struct ctx *c, const struct ynode *n, const char *what,
                         const char *expect) {
    if (n->type != Y_SEQ) {
        err_at(c, n, "invalid %s: found %s; expected %s", what, kind_name(n), expect);
        return false;
    }
    if (n->nkids == 0) {
        err_at(c, n, "invalid %s: the list is empty; expected %s", what, expect);
        return false;
    }
    return true;
}

static void convert_databases(struct ctx *c, const struct ynode *n, const char *what,
                              struct eb_config_redis *r) {
    const char *expect = eb_config_schema_type_expected(EB_CT_DATABASES);
    if (n->type == Y_SCALAR) {
        char *s = scalar_text(c, n, what, NULL);
        if (!s)
            return;
        if (strcmp(s, "all") == 0) {
            r->all_databases = true;
            free(r->databases);
            r->databases = NULL;
            r->ndatabases = 0;
        } else {
            bad_value(c, n, what, &(struct eb_config_key){.type = EB_CT_DATABASES},
                      "a single value other than all");
        }
        free(s);
        return;
    }
    if (!nonempty_seq(c, n, what, expect))
        return;
    int *dbs = calloc(n->nkids, sizeof(*dbs));
    if (!dbs) {
        c->oom = c->stop = true;
        return;
    }
    size_t nd = 0;
    bool ok = true;
    for (size_t i = 0; i < n->nkids && !c->stop; i++) {
        const struct ynode *it = n->kids[i];
        char *s = scalar_text(c, it, what, NULL);
        if (!s) {
            ok = false;
            continue;
        }
        size_t v = 0, len = strlen(s);
        bool digits = len > 0 && len <= 5 && strspn(s, "0123456789") == len;
        if (digits)
            v = strtoul(s, NULL, 10);
        if (!digits || v > 65535) {
            bad_value(c, it, what, &(struct eb_config_key){.type = EB_CT_DATABASES},
                      "not a database number");
            free(s);
            ok = false;
            continue;
        }
        free(s);
        for (size_t j = 0; j < nd; j++) {
            if (dbs[j] == (int)v) {
                err_at(c, it, "invalid %s: database %zu is listed twice; expected each once", what,
                       v);
                ok = false;
            }
        }
        dbs[nd++] = (int)v;
    }
    if (!ok) {
        free(dbs);
        return;
    }
    free(r->databases);
    r->databases = dbs;
    r->ndatabases = nd;
    r->all_databases = false;
}

/* A mapping of scalar -> scalar into an eb_kv array. check(name) returns a
 * reason to refuse a name, or NULL. */
static bool convert_kv(struct ctx *c, const struct ynode *n, const char *what, size_t max,
                       const char *(*check)(const char *name), struct eb_kv **out_kv,
                       size_t *out_n) {
    const char *expect_map = "a mapping of names to values";
    if (n->type != Y_MAP) {
        err_at(c, n, "invalid %s: found %s; expected %s", what, kind_name(n), expect_map);
        return false;
    }
    size_t count = n->nkids / 2;
    if (count > max) {
        err_at(c, n, "invalid %s: %zu entries; expected at most %zu", what, count, max);
        return false;
    }
    struct eb_kv *kv = calloc(count ? count : 1, sizeof(*kv));
    if (!kv) {
        c->oom = c->stop = true;
        return false;
    }
    size_t nkv = 0;
    bool ok = true;
    for (size_t i = 0; i < count && !c->stop; i++) {
        const struct ynode *kn = n->kids[2 * i], *vn = n->kids[2 * i + 1];
        if (kn->type != Y_SCALAR || kn->len == 0 || memchr(kn->str, '\0', kn->len)) {
            err_at(c, kn, "invalid %s: a name is %s; expected a non-empty name", what,
                   kn->type != Y_SCALAR ? kind_name(kn) : "empty");
            ok = false;
            continue;
        }
        const char *refuse = check ? check(kn->str) : NULL;
        if (refuse) {
            err_at(c, kn, "invalid %s '%s': %s", what, kn->str, refuse);
            ok = false;
            continue;
        }
        bool dup = false;
        for (size_t j = 0; j < nkv; j++) {
            if (strcmp(kv[j].key, kn->str) == 0) {
                err_at(c, kn, "duplicate key '%s' in %s (first at line %u); expected each key once",
                       kn->str, what, kv[j].pos.line);
                dup = true;
            }
        }
        if (dup) {
            ok = false;
            continue;
        }
        if (is_null(vn)) {
            err_at(c, vn, "missing value for '%s' in %s; expected a value", kn->str, what);
            ok = false;
            continue;
        }
        char vwhat[160];
        snprintf(vwhat, sizeof(vwhat), "%s '%.64s'", what, kn->str);
        char *v = scalar_text(c, vn, vwhat, NULL);
        if (!v) {
            ok = false;
            continue;
        }
        if (eb_log_is_secret_name(kn->str))
            add_secret(c, v);
        kv[nkv].key = xstrdup(c, kn->str);
        kv[nkv].value = v;
        kv[nkv].pos.line = kn->line;
        kv[nkv].pos.col = kn->col;
        nkv++;
    }
    if (!ok || c->oom) {
        for (size_t j = 0; j < nkv; j++) {
            free(kv[j].key);
            free(kv[j].value);
        }
        free(kv);
        return false;
    }
    *out_kv = kv;
    *out_n = nkv;
    return true;
}

static const char *check_header(const char *name) {
    if (strcasecmp(name, "content-type") == 0)
        return "content-type is set by the route's format; expected another header name";
    if (strncasecmp(name, "ce_", 3) == 0)
        return "ce_* headers belong to the CloudEvents binary format; expected another name";
    return NULL;
}

static void kv_free(struct eb_kv *kv, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(kv[i].key);
        free(kv[i].value);
    }
    free(kv);
}

static void convert_client(struct ctx *c, const struct ynode *n, const char *what,
                           struct eb_config_kafka *k) {
    struct eb_kv *kv = NULL;
    size_t nkv = 0;
    /* kafka_sink owns the rules: which properties the bridge sets itself
     * (brokers, idempotence, acks, queue bounds) and what librdkafka
     * accepts. */
    if (!convert_kv(c, n, what, MAX_CLIENT_PROPS, NULL, &kv, &nkv))
        return;
    char reason[512] = "";
    size_t bad = SIZE_MAX;
    int rc = c->checks && c->checks->client_props
                 ? c->checks->client_props(kv, nkv, &bad, reason, sizeof(reason))
                 : 0;
    if (rc == EB_ENOMEM) {
        c->oom = c->stop = true;
    } else if (rc != 0) {
        const struct ynode *at = bad < nkv ? NULL : n;
        if (at)
            err_at(c, at, "invalid %s: %s; expected librdkafka producer properties", what, reason);
        else
            errorf(c, kv[bad].pos.line, kv[bad].pos.col,
                   "invalid %s: %s; expected a valid librdkafka producer property that the "
                   "bridge does not set itself",
                   what, reason);
    }
    if (rc != 0) {
        kv_free(kv, nkv);
        return;
    }
    kv_free(k->client, k->nclient);
    k->client = kv;
    k->nclient = nkv;
}

static void convert_headers(struct ctx *c, const struct ynode *n, const char *what,
                            struct eb_config_route *r) {
    struct eb_kv *kv = NULL;
    size_t nkv = 0;
    if (!convert_kv(c, n, what, MAX_HEADERS, check_header, &kv, &nkv))
        return;
    kv_free(r->headers, r->nheaders);
    r->headers = kv;
    r->nheaders = nkv;
}

static void convert_events(struct ctx *c, const struct ynode *n, const char *what, uint64_t *mask) {
    const char *expect = eb_config_schema_type_expected(EB_CT_EVENTS);
    if (!nonempty_seq(c, n, what, expect))
        return;
    uint64_t m = 0;
    bool ok = true;
    for (size_t i = 0; i < n->nkids && !c->stop; i++) {
        const struct ynode *it = n->kids[i];
        char *s = scalar_text(c, it, what, NULL);
        if (!s) {
            ok = false;
            continue;
        }
        int id = eb_notify_event_id(s, strlen(s));
        if (id < 0) {
            char v[96];
            const char *sug = eb_notify_event_suggest(s);
            shown(it, v, sizeof(v));
            if (sug)
                err_at(c, it,
                       "unknown event '%s' in %s; expected a Redis keyevent name such as "
                       "expired, evicted or del; did you mean '%s'?",
                       v, what, sug);
            else
                err_at(c, it,
                       "unknown event '%s' in %s; expected a Redis keyevent name such as "
                       "expired, evicted or del",
                       v, what);
            ok = false;
        } else if (m & (UINT64_C(1) << id)) {
            err_at(c, it, "invalid %s: event '%s' is listed twice; expected each once", what, s);
            ok = false;
        } else {
            m |= UINT64_C(1) << id;
        }
        free(s);
    }
    if (ok)
        *mask = m;
}

static void convert_choice(struct ctx *c, const struct ynode *n, const char *what,
                           const struct eb_config_key *k, const char *s, void *field) {
    const char *const *choices = eb_config_schema_type_choices(k->type);
    int idx = eb_config_schema_parse_choice(s, choices);
    if (idx < 0) {
        size_t nc = 0;
        while (choices[nc])
            nc++;
        const char *sug = eb_config_schema_nearest(s, choices, nc);
        char v[96];
        shown(n, v, sizeof(v));
        if (sug)
            err_at(c, n, "invalid %s '%s': unknown name; expected %s; did you mean '%s'?", what, v,
                   eb_config_schema_type_expected(k->type), sug);
        else
            err_at(c, n, "invalid %s '%s': unknown name; expected %s", what, v,
                   eb_config_schema_type_expected(k->type));
        return;
    }
    switch (k->type) {
    case EB_CT_FORMAT:
        *(enum eb_event_format *)field = (enum eb_event_format)idx;
        break;
    case EB_CT_LEDGER:
        *(enum eb_ledger_mode *)field = (enum eb_ledger_mode)idx;
        break;
    default:
        *(enum eb_log_level *)field = (enum eb_log_level)idx;
    }
}

static bool brokers_valid(const char *s, const char **reason) {
    if (!*s) {
        *reason = "the list is empty";
        return false;
    }
    for (const char *p = s; *p; p++) {
        if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
            *reason = "it contains white space or a control character";
            return false;
        }
        if (*p == ',' && (p == s || p[1] == ',' || p[1] == '\0')) {
            *reason = "it has an empty entry";
            return false;
        }
    }
    return true;
}

/* Whether s passes the check of a type whose text is kept as written once
 * it passes (brokers, route name, topic, listen address); if not, why into
 * reason. One place, so each such type is one case in convert_scalar(). */
static bool text_valid(enum eb_ctype type, const char *s, char *reason, size_t reason_size) {
    const char *why = NULL;
    bool ok;
    switch (type) {
    case EB_CT_BROKERS:
        ok = brokers_valid(s, &why);
        break;
    case EB_CT_ROUTE_NAME:
        ok = eb_config_schema_route_name_valid(s, &why);
        break;
    case EB_CT_LISTEN:
        ok = eb_config_schema_listen_valid(s, &why);
        break;
    default:
        return eb_config_schema_topic_valid(s, reason, reason_size);
    }
    if (!ok)
        snprintf(reason, reason_size, "%s", why);
    return ok;
}

/* Convert a scalar-typed value. */
static void convert_scalar(struct ctx *c, const struct eb_config_key *k, const struct ynode *n,
                           void *field, const char *what) {
    bool expanded = false;
    char *s = scalar_text(c, n, what, &expanded);
    const char *reason = NULL;
    char rbuf[384];
    if (!s)
        return;
    switch (k->type) {
    case EB_CT_SECRET:
        add_secret(c, s);
        set_str(field, s);
        return;
    case EB_CT_STRING:
        set_str(field, s);
        return;
    case EB_CT_FILE:
        /* Read when the connection is made, where the file lives (a
         * Kubernetes Secret mount): `check` elsewhere cannot see it. */
        if (!s[0]) {
            bad_value(c, n, what, k, "the path is empty");
            break;
        }
        set_str(field, s);
        return;
    case EB_CT_BOOL:
        if (!eb_config_schema_parse_bool(s, field, &reason))
            bad_value(c, n, what, k, reason);
        break;
    case EB_CT_DURATION: {
        int ms;
        if (!eb_config_schema_parse_duration(s, &ms, &reason))
            bad_value(c, n, what, k, reason);
        else if (ms == 0 && (k->flags & EB_CK_NONZERO))
            bad_value(c, n, what, k, "zero is not allowed here");
        else
            *(int *)field = ms;
        break;
    }
    case EB_CT_SIZE:
        if (!eb_config_schema_parse_size(s, field, &reason))
            bad_value(c, n, what, k, reason);
        break;
    case EB_CT_COUNT:
        if (!eb_config_schema_parse_count(s, field, &reason))
            bad_value(c, n, what, k, reason);
        break;
    case EB_CT_BROKERS:
    case EB_CT_ROUTE_NAME:
    case EB_CT_TOPIC:
    case EB_CT_LISTEN:
        if (!text_valid(k->type, s, rbuf, sizeof(rbuf))) {
            bad_value(c, n, what, k, rbuf);
            break;
        }
        set_str(field, s);
        return;
    case EB_CT_PATTERN: {
        size_t off = 0;
        if (eb_router_check_pattern(s, &off, rbuf, sizeof(rbuf)) != 0) {
            unsigned line, col;
            node_pos(n, expanded ? 0 : off, &line, &col);
            errorf(c, line, col, "invalid %s: %s", what, rbuf);
            break;
        }
        set_str(field, s);
        return;
    }
    case EB_CT_TEMPLATE:
        /* Checked against the route's pattern once the route is read. */
        set_str(field, s);
        return;
    case EB_CT_FORMAT:
    case EB_CT_LEDGER:
    case EB_CT_LOG_LEVEL:
        convert_choice(c, n, what, k, s, field);
        break;
    default:
        break;
    }
    free(s);
}

static const struct ynode *seen_get(const struct seen *s, const char *key);

/* Item i of a list of mappings (routes, plugins): its path for messages
 * ("routes[3]") into path, its position into *pos; false after reporting
 * when it is not a mapping. */
static bool list_item(struct ctx *c, const struct ynode *item, const char *what, size_t i,
                      const char *expect, char *path, size_t path_size, struct eb_srcpos *pos) {
    snprintf(path, path_size, "%.100s[%zu]", what, i);
    pos->line = item->line;
    pos->col = item->col;
    if (item->type == Y_MAP)
        return true;
    err_at(c, item, "invalid %s: found %s; expected %s", path, kind_name(item), expect);
    return false;
}

/* ------------------------------------------------------------------------ */
/* Plugins                                                                  */
/* ------------------------------------------------------------------------ */

static void node_free(struct eb_config_node *n) {
    if (!n)
        return;
    for (size_t i = 0; i < n->nkids; i++) {
        node_free(n->kids[i]);
        if (n->keys)
            free(n->keys[i]);
    }
    free(n->kids);
    free(n->keys);
    free(n->key_pos);
    free(n->str);
    free(n->path);
    free(n);
}

/* A copy of the YAML subtree n for a plugin: scalars expanded, positions
 * and paths kept. NULL after reporting why (or out of memory). Aliases are
 * copied (the document's expanded size is already bounded). */
static struct eb_config_node *copy_settings(struct ctx *c, const struct ynode *n,
                                            const char *path, unsigned depth) {
    struct eb_config_node *out = calloc(1, sizeof(*out));
    if (!out || !(out->path = strdup(path))) {
        free(out);
        c->oom = c->stop = true;
        return NULL;
    }
    out->pos.line = n->line;
    out->pos.col = n->col;
    if (n->type == Y_SCALAR) {
        out->type = EB_NODE_SCALAR;
        if (!(out->str = scalar_text(c, n, path, NULL)))
            goto err_free_node;
        if (eb_log_is_secret_name(path + strcspn(path, ".") + 1))
            add_secret(c, out->str);
        return out;
    }
    out->type = n->type == Y_SEQ ? EB_NODE_LIST : EB_NODE_MAP;
    size_t count = n->type == Y_SEQ ? n->nkids : n->nkids / 2;
    out->kids = calloc(count ? count : 1, sizeof(*out->kids));
    if (n->type == Y_MAP) {
        out->keys = calloc(count ? count : 1, sizeof(*out->keys));
        out->key_pos = calloc(count ? count : 1, sizeof(*out->key_pos));
    }
    if (!out->kids || (n->type == Y_MAP && (!out->keys || !out->key_pos))) {
        c->oom = c->stop = true;
        goto err_free_node;
    }
    for (size_t i = 0; i < count && !c->stop; i++) {
        char sub[256];
        const struct ynode *v = n->type == Y_SEQ ? n->kids[i] : n->kids[2 * i + 1];
        if (n->type == Y_SEQ) {
            snprintf(sub, sizeof(sub), "%.200s[%zu]", path, i);
        } else {
            const struct ynode *kn = n->kids[2 * i];
            if (kn->type != Y_SCALAR || memchr(kn->str, '\0', kn->len)) {
                err_at(c, kn, "invalid key in %s: found %s; expected a key name", path,
                       kind_name(kn));
                goto err_free_node;
            }
            for (size_t j = 0; j < i; j++) {
                if (strcmp(out->keys[j], kn->str) == 0) {
                    err_at(c, kn, "duplicate key '%s' in %s; expected each key once", kn->str,
                           path);
                    goto err_free_node;
                }
            }
            snprintf(sub, sizeof(sub), "%.160s.%.80s", path, kn->str);
            if (!(out->keys[i] = xstrdup(c, kn->str)))
                goto err_free_node;
            out->key_pos[i] = (struct eb_srcpos){.line = kn->line, .col = kn->col};
        }
        out->nkids = i + 1;
        if (!(out->kids[i] = copy_settings(c, v, sub, depth + 1)))
            goto err_free_node;
    }
    if (c->stop)
        goto err_free_node;
    return out;

err_free_node:
    node_free(out);
    return NULL;
}

static void convert_settings(struct ctx *c, const struct ynode *n, const char *what,
                             struct eb_config_node **field) {
    if (n->type != Y_MAP) {
        err_at(c, n, "invalid %s: found %s; expected a mapping of the plugin's settings", what,
               kind_name(n));
        return;
    }
    struct eb_config_node *s = copy_settings(c, n, what, 0);
    if (!s)
        return;
    node_free(*field);
    *field = s;
}

/* A route's `plugins: [a, b]`: names only; resolved once every instance is
 * read (resolve_plugin_refs()). */
static void convert_plugin_refs(struct ctx *c, const struct ynode *n, const char *what,
                                struct eb_config_route *r) {
    if (n->type != Y_SEQ) {
        err_at(c, n, "invalid %s: found %s; expected %s", what, kind_name(n),
               eb_config_schema_type_expected(EB_CT_PLUGIN_REFS));
        return;
    }
    char **names = calloc(n->nkids ? n->nkids : 1, sizeof(*names));
    struct eb_srcpos *pos = calloc(n->nkids ? n->nkids : 1, sizeof(*pos));
    size_t *idx = calloc(n->nkids ? n->nkids : 1, sizeof(*idx));
    size_t got = 0;
    if (!names || !pos || !idx) {
        c->oom = c->stop = true;
        goto err_free;
    }
    for (size_t i = 0; i < n->nkids; i++) {
        const struct ynode *it = n->kids[i];
        char *s = scalar_text(c, it, what, NULL);
        if (!s)
            goto err_free;
        for (size_t j = 0; j < got; j++) {
            if (strcmp(names[j], s) == 0) {
                err_at(c, it, "invalid %s: plugin '%s' is listed twice; expected each once",
                       what, s);
                free(s);
                goto err_free;
            }
        }
        names[got] = s;
        pos[got].line = it->line;
        pos[got].col = it->col;
        got++;
    }
    for (size_t i = 0; i < r->nplugins; i++)
        free(r->plugins[i]);
    free(r->plugins);
    free(r->plugin_pos);
    free(r->plugin_idx);
    r->plugins = names;
    r->plugin_pos = pos;
    r->plugin_idx = idx;
    r->nplugins = got;
    return;

err_free:
    for (size_t i = 0; i < got; i++)
        free(names[i]);
    free(names);
    free(pos);
    free(idx);
}

static void convert_plugins(struct ctx *c, const struct eb_config_key *k, const struct ynode *n,
                            const char *what) {
    struct eb_config *cfg = c->cfg;
    if (n->type != Y_SEQ) {
        err_at(c, n, "invalid %s: found %s; expected %s", what, kind_name(n),
               eb_config_schema_type_expected(k->type));
        return;
    }
    if (cfg->plugins)
        return; /* given twice: reported as a duplicate key */
    cfg->plugins = calloc(n->nkids ? n->nkids : 1, sizeof(*cfg->plugins));
    c->plugin_maps = calloc(n->nkids ? n->nkids : 1, sizeof(*c->plugin_maps));
    c->plugin_names = calloc(n->nkids ? n->nkids : 1, sizeof(*c->plugin_names));
    if (!cfg->plugins || !c->plugin_maps || !c->plugin_names) {
        c->oom = c->stop = true;
        return;
    }
    cfg->nplugins = n->nkids;
    for (size_t i = 0; i < n->nkids && !c->stop; i++) {
        const struct ynode *item = n->kids[i];
        struct eb_config_plugin *pl = &cfg->plugins[i];
        char path[160];
        struct seen s;
        c->plugin_maps[i] = item;
        if (!list_item(c, item, what, i, "a mapping with name and path", path, sizeof(path),
                       &pl->pos))
            continue;
        walk_map(c, item, k->sub, pl, path, &s);
        c->plugin_names[i] = seen_get(&s, "name");
        const struct ynode *pn = seen_get(&s, "path");
        if (pn) {
            pl->path_pos.line = pn->line;
            pl->path_pos.col = pn->col;
        }
    }
}

/* Instance names are unique, and every name a route lists is one. */
static void resolve_plugin_refs(struct ctx *c) {
    struct eb_config *cfg = c->cfg;
    for (size_t i = 0; i < cfg->nplugins && !c->stop; i++) {
        for (size_t j = 0; j < i && cfg->plugins[i].name; j++) {
            if (cfg->plugins[j].name && strcmp(cfg->plugins[i].name, cfg->plugins[j].name) == 0) {
                const struct ynode *at = c->plugin_names[i] ? c->plugin_names[i] : c->plugin_maps[i];
                err_at(c, at,
                       "duplicate plugin instance name '%s' (first at line %u); expected a "
                       "unique name per instance",
                       cfg->plugins[i].name, cfg->plugins[j].pos.line);
                break;
            }
        }
    }
    const char **names = calloc(cfg->nplugins ? cfg->nplugins : 1, sizeof(*names));
    if (!names) {
        c->oom = c->stop = true;
        return;
    }
    for (size_t j = 0; j < cfg->nplugins; j++)
        names[j] = cfg->plugins[j].name ? cfg->plugins[j].name : "";
    for (size_t r = 0; r < cfg->nroutes && !c->stop; r++) {
        struct eb_config_route *rt = &cfg->routes[r];
        for (size_t i = 0; i < rt->nplugins; i++) {
            size_t j = 0;
            while (j < cfg->nplugins && strcmp(names[j], rt->plugins[i]) != 0)
                j++;
            rt->plugin_idx[i] = j;
            if (j < cfg->nplugins)
                continue;
            const char *sug = eb_config_schema_nearest(rt->plugins[i], names, cfg->nplugins);
            char v[96];
            snprintf(v, sizeof(v), "%.80s", rt->plugins[i]);
            errorf(c, rt->plugin_pos[i].line, rt->plugin_pos[i].col,
                   "unknown plugin '%s' in routes[%zu].plugins; expected the name of an instance "
                   "under plugins%s%s%s",
                   v, r, sug ? "; did you mean '" : "", sug ? sug : "", sug ? "'?" : "");
        }
    }
    free(names);
}

static void report_hook(void *rctx, struct eb_srcpos pos, const char *msg) {
    struct ctx *c = rctx;
    errorf(c, pos.line ? pos.line : 1, pos.col ? pos.col : 1, "%s", msg);
}

/* The plugins' own checks (loading, ABI, settings), handed in by the
 * daemon: config/ itself never loads a shared object. */
static void check_plugins(struct ctx *c) {
    if (!c->cfg->nplugins || !c->checks || !c->checks->plugins || c->nerr || c->stop)
        return;
    int rc = c->checks->plugins(c->cfg, report_hook, c, c->checks->plugins_opaque);
    if (rc == EB_ENOMEM)
        c->oom = c->stop = true;
    else if (rc != 0 && !c->nerr)
        errorf(c, 1, 1, "the plugins could not be checked; expected loadable plugins");
}

/* The directory of the file, for relative plugin paths. */
static void set_dir(struct ctx *c) {
    const char *slash = strrchr(c->name, '/');
    c->cfg->dir = slash ? strndup(c->name, (size_t)(slash - c->name) + (slash == c->name))
                        : strdup(".");
    if (!c->cfg->dir)
        c->oom = c->stop = true;
}

/* ------------------------------------------------------------------------ */
/* Walking the tables                                                       */
/* ------------------------------------------------------------------------ */

/* The parsed default of row k (cached per load). */
static const struct ynode *default_node(struct ctx *c, const struct eb_config_key *k) {
    for (size_t i = 0; i < c->ndefs; i++) {
        if (c->defs[i].row == k)
            return c->defs[i].node;
    }
    struct ynode *n = load_yaml(c, k->def, strlen(k->def));
    if (n && c->ndefs < sizeof(c->defs) / sizeof(c->defs[0])) {
        c->defs[c->ndefs].row = k;
        c->defs[c->ndefs++].node = n;
    }
    return n;
}

static void check_route(struct ctx *c, struct eb_config_route *r, const struct seen *s,
                        const char *path);

static void convert_routes(struct ctx *c, const struct eb_config_key *k, const struct ynode *n,
                           const char *what) {
    struct eb_config *cfg = c->cfg;
    if (n->type != Y_SEQ) {
        err_at(c, n, "invalid %s: found %s; expected %s", what, kind_name(n),
               eb_config_schema_type_expected(k->type));
        return;
    }
    if (cfg->routes)
        return; /* `routes` given twice is reported as a duplicate key */
    cfg->routes = calloc(n->nkids ? n->nkids : 1, sizeof(*cfg->routes));
    c->routes = calloc(n->nkids ? n->nkids : 1, sizeof(*c->routes));
    if (!cfg->routes || !c->routes) {
        c->oom = c->stop = true;
        return;
    }
    cfg->nroutes = n->nkids;
    for (size_t i = 0; i < n->nkids && !c->stop; i++) {
        const struct ynode *item = n->kids[i];
        struct eb_config_route *r = &cfg->routes[i];
        char path[160];
        struct seen s;
        c->routes[i].map = item;
        if (!list_item(c, item, what, i, "a mapping with name, match and topic", path,
                       sizeof(path), &r->pos))
            continue;
        walk_map(c, item, k->sub, r, path, &s);
        check_route(c, r, &s, path);
    }
}

static const struct ynode *seen_get(const struct seen *s, const char *key) {
    for (size_t i = 0; s->table[i].key; i++) {
        if (strcmp(s->table[i].key, key) == 0)
            return is_absent(s->val[i]) ? NULL : s->val[i];
    }
    return NULL;
}

/* A route's templates against its pattern. */
static void check_route(struct ctx *c, struct eb_config_route *r, const struct seen *s,
                        const char *path) {
    struct {
        const char *key;
        const char *tmpl;
    } t[] = {{"key", r->key}, {"payload", r->payload}};
    c->routes[r - c->cfg->routes].name = seen_get(s, "name");
    if (!r->match)
        return;
    for (size_t i = 0; i < 2; i++) {
        char reason[384], what[192];
        size_t off = 0;
        const struct ynode *n = seen_get(s, t[i].key);
        if (!t[i].tmpl || !n)
            continue;
        if (eb_router_check_template(t[i].tmpl, r->match, &off, reason, sizeof(reason)) == 0)
            continue;
        unsigned line, col;
        bool expanded = memchr(n->str, '$', n->len) != NULL;
        node_pos(n, expanded ? 0 : off, &line, &col);
        child_path(what, sizeof(what), path, t[i].key);
        errorf(c, line, col, "invalid %s: %s", what, reason);
    }
    /* The ledger delivers expiries; a ledgered route that does not take
     * them would record timers and never forward one live. */
    const struct ynode *ln = seen_get(s, "ledger");
    if (r->ledger != EB_LEDGER_OFF && ln && !(r->events & (UINT64_C(1) << EB_EVENT_EXPIRED_ID)))
        err_at(c, ln,
               "invalid %s.ledger: a ledgered route delivers expiries, but its events do not "
               "include expired; expected events to include expired, or ledger: off",
               path);
}

/* The CloudEvents source of a topology when redis.source is not set: stable
 * across failovers, so copies of one expiry delivered by different nodes
 * (or replicas of the bridge) keep one (source, id). Standalone: the
 * server; Sentinel: the monitored name; Cluster: the seeds as written. */
static char *default_source(struct ctx *c, const struct eb_redis_url *u) {
    char buf[1024];
    size_t n = 0;
    const char *scheme = eb_redis_url_scheme(u->topology, false);
    n += (size_t)snprintf(buf, sizeof(buf), "%s://", scheme);
    if (u->topology == EB_REDIS_SENTINEL) {
        snprintf(buf + n, sizeof(buf) - n, "%s", u->master_name);
        return xstrdup(c, buf);
    }
    for (size_t i = 0; i < u->nnodes && n < sizeof(buf); i++) {
        bool v6 = strchr(u->nodes[i].host, ':') != NULL;
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s%.256s%s:%d", i ? "," : "",
                              v6 ? "[" : "", u->nodes[i].host, v6 ? "]" : "", u->nodes[i].port);
    }
    return xstrdup(c, buf);
}

/* Settings that belong to one topology or to TLS, given without it. */
static void check_topology(struct ctx *c, const struct seen *s) {
    struct eb_config_redis *r = &c->cfg->redis;
    const struct eb_redis_url *u = &r->target;
    const struct ynode *sn = seen_get(s, "sentinel"), *tn = seen_get(s, "tls");
    if (sn && u->topology != EB_REDIS_SENTINEL)
        err_at(c, sn,
               "invalid redis.sentinel: redis.url is a %s:// URL; expected redis.sentinel only "
               "with redis-sentinel:// or rediss-sentinel://",
               eb_redis_url_scheme(u->topology, u->tls));
    if (tn && !u->tls)
        err_at(c, tn,
               "invalid redis.tls: redis.url is a %s:// URL, without TLS; expected "
               "%s:// to use TLS, or no redis.tls",
               eb_redis_url_scheme(u->topology, false), eb_redis_url_scheme(u->topology, true));
    if (tn && (!r->tls_cert_file) != (!r->tls_key_file))
        err_at(c, tn,
               "invalid redis.tls: %s is set without %s; expected both (a client certificate "
               "and its key) or neither",
               r->tls_cert_file ? "cert_file" : "key_file",
               r->tls_cert_file ? "key_file" : "cert_file");
    if (u->topology == EB_REDIS_CLUSTER && !r->all_databases) {
        for (size_t i = 0; i < r->ndatabases; i++) {
            if (r->databases[i] != 0) {
                const struct ynode *dn = seen_get(s, "databases");
                err_at(c, dn ? dn : c->url_node,
                       "invalid redis.databases: Redis Cluster has only database 0, and %d is "
                       "listed; expected [0] or all",
                       r->databases[i]);
                break;
            }
        }
    }
}

/* After the redis section: URL vs keys, and timing relations. */
static void check_redis(struct ctx *c, const struct seen *s) {
    struct eb_config_redis *r = &c->cfg->redis;
    if (!r->host)
        return; /* no valid URL: already reported */
    if (c->url_db >= 0) {
        if (seen_get(s, "databases")) {
            err_at(c, c->url_node,
                   "invalid redis.url: it selects database %d and redis.databases is also set; "
                   "expected the databases in one place only",
                   c->url_db);
        } else {
            int *db = malloc(sizeof(*db));
            if (!db) {
                c->oom = c->stop = true;
                return;
            }
            *db = c->url_db;
            free(r->databases);
            r->databases = db;
            r->ndatabases = 1;
            r->all_databases = false;
        }
    }
    if (!r->username && c->url_user) {
        r->username = c->url_user;
        c->url_user = NULL;
    }
    if (!r->password && c->url_pass) {
        r->password = c->url_pass;
        c->url_pass = NULL;
    }
    check_topology(c, s);
    if (!r->source)
        r->source = default_source(c, &r->target);
    const struct ynode *hb = seen_get(s, "heartbeat_timeout");
    if (r->heartbeat_timeout_ms <= r->heartbeat_interval_ms) {
        const struct ynode *at = hb ? hb : seen_get(s, "heartbeat_interval");
        err_at(c, at ? at : s->map,
               "invalid redis.heartbeat_timeout: %d ms is not longer than "
               "redis.heartbeat_interval (%d ms); expected a longer timeout",
               r->heartbeat_timeout_ms, r->heartbeat_interval_ms);
    }
    if (r->reconnect_max_ms < r->reconnect_min_ms) {
        const struct ynode *mx = seen_get(s, "reconnect_max");
        const struct ynode *at = mx ? mx : seen_get(s, "reconnect_min");
        err_at(c, at ? at : s->map,
               "invalid redis.reconnect_max: %d ms is less than redis.reconnect_min (%d ms); "
               "expected at least reconnect_min",
               r->reconnect_max_ms, r->reconnect_min_ms);
    }
}

/* Most entries one sweep page may carry: each becomes a pipelined FCALL. */
#define LEDGER_MAX_BATCH 10000
/* Claims are renewed every claim_ttl/3; shorter ones would renew
 * constantly and expire on any hiccup. */
#define LEDGER_MIN_CLAIM_TTL_MS 1000

/* After the ledger section: value ranges and relations. */
/* The group's timings: a session that survives two missed heartbeats and a
 * lease (session - 2 heartbeats, kafka_group.h) left to produce in. */
static void check_coordination(struct ctx *c, const struct seen *s) {
    const struct eb_config_coordination *co = &c->cfg->coordination;
    if (co->session_timeout_ms < 3 * co->heartbeat_interval_ms) {
        const struct ynode *at = seen_get(s, "session_timeout");
        err_at(c, at ? at : seen_get(s, "heartbeat_interval") ? seen_get(s, "heartbeat_interval")
                                                                : s->map,
               "invalid coordination.session_timeout: %d ms is less than three "
               "coordination.heartbeat_interval (%d ms); expected at least three heartbeats per "
               "session",
               co->session_timeout_ms, co->heartbeat_interval_ms);
    }
}

static void check_ledger(struct ctx *c, const struct seen *s) {
    const struct eb_config_ledger *l = &c->cfg->ledger;
    const struct ynode *at;
    c->ledger_prefix = seen_get(s, "key_prefix");
    if ((l->buckets < 1 || l->buckets > EB_CONFIG_LEDGER_MAX_BUCKETS) && (at = seen_get(s, "buckets")))
        err_at(c, at, "invalid ledger.buckets: %zu; expected 1 to %d", l->buckets,
               EB_CONFIG_LEDGER_MAX_BUCKETS);
    if (l->buckets > 1 && l->key_prefix && strpbrk(l->key_prefix, "{}") &&
        (at = c->ledger_prefix))
        err_at(c, at,
               "invalid ledger.key_prefix: it holds a '{' or '}', but with ledger.buckets > 1 "
               "each bucket's name carries its own hash tag {<route>:<bucket>}, which must be "
               "the first in the name; expected a prefix without braces");
    if (l->sweep_batch > LEDGER_MAX_BATCH && (at = seen_get(s, "sweep_batch")))
        err_at(c, at, "invalid ledger.sweep_batch: %zu is more than %d; expected at most %d",
               l->sweep_batch, LEDGER_MAX_BATCH, LEDGER_MAX_BATCH);
    if (l->claim_ttl_ms < LEDGER_MIN_CLAIM_TTL_MS && (at = seen_get(s, "claim_ttl")))
        err_at(c, at, "invalid ledger.claim_ttl: %d ms is less than %d ms; expected at least 1s",
               l->claim_ttl_ms, LEDGER_MIN_CLAIM_TTL_MS);
    if (l->sweep_grace_ms >= l->sweep_interval_ms) {
        at = seen_get(s, "sweep_grace");
        at = at ? at : seen_get(s, "sweep_interval");
        if (at)
            err_at(c, at,
                   "invalid ledger.sweep_grace: %d ms is not less than ledger.sweep_interval "
                   "(%d ms); expected a shorter grace",
                   l->sweep_grace_ms, l->sweep_interval_ms);
    }
}

/* Convert one value (n is never null here) of row k into base. */
static void set_value(struct ctx *c, const struct eb_config_key *k, const struct ynode *n,
                      void *base, const char *path) {
    void *field = (char *)base + k->offset;
    char what[192];
    child_path(what, sizeof(what), path, k->key);
    switch (k->type) {
    case EB_CT_SECTION: {
        struct seen s;
        if (n && n->type != Y_MAP) {
            err_at(c, n, "invalid %s: found %s; expected a mapping with the keys of %s", what,
                   kind_name(n), what);
            return;
        }
        walk_map(c, n, k->sub, base, what, &s);
        if (strcmp(what, "redis") == 0 && !c->stop)
            check_redis(c, &s);
        else if (strcmp(what, "ledger") == 0 && !c->stop)
            check_ledger(c, &s);
        else if (strcmp(what, "coordination") == 0 && !c->stop)
            check_coordination(c, &s);
        return;
    }
    case EB_CT_ROUTES:
        convert_routes(c, k, n, what);
        return;
    case EB_CT_UNROUTED: {
        struct seen s;
        if (n->type == Y_MAP) {
            walk_map(c, n, k->sub, base, what, &s);
            c->cfg->unrouted_drop = false;
            return;
        }
        char *v = scalar_text(c, n, what, NULL);
        if (!v)
            return;
        if (strcmp(v, "drop") == 0) {
            c->cfg->unrouted_drop = true;
            set_str(&c->cfg->unrouted_topic, NULL);
        } else {
            bad_value(c, n, what, k, "not drop");
        }
        free(v);
        return;
    }
    case EB_CT_REDIS_URL: {
        char *url = scalar_text(c, n, what, NULL);
        if (!url)
            return;
        convert_url(
            c, n, what, url,
            (struct eb_config_redis *)((char *)field - offsetof(struct eb_config_redis, url)));
        free(url);
        return;
    }
    case EB_CT_DATABASES:
        convert_databases(
            c, n, what,
            (struct eb_config_redis *)((char *)field -
                                       offsetof(struct eb_config_redis, all_databases)));
        return;
    case EB_CT_CLIENT_PROPS:
        convert_client(
            c, n, what,
            (struct eb_config_kafka *)((char *)field - offsetof(struct eb_config_kafka, client)));
        return;
    case EB_CT_HEADERS:
        convert_headers(
            c, n, what,
            (struct eb_config_route *)((char *)field - offsetof(struct eb_config_route, headers)));
        return;
    case EB_CT_EVENTS:
        convert_events(c, n, what, field);
        return;
    case EB_CT_PLUGINS:
        convert_plugins(c, k, n, what);
        return;
    case EB_CT_SETTINGS:
        convert_settings(c, n, what, field);
        return;
    case EB_CT_PLUGIN_REFS:
        convert_plugin_refs(
            c, n, what,
            (struct eb_config_route *)((char *)field - offsetof(struct eb_config_route, plugins)));
        return;
    default:
        convert_scalar(c, k, n, field, what);
    }
}

/* Check one mapping against its table and convert its values; apply
 * defaults to what it lacks. map may be NULL (an absent optional section:
 * defaults only). */
static void walk_map(struct ctx *c, const struct ynode *map, const struct eb_config_key *table,
                     void *base, const char *path, struct seen *s) {
    char where[200];
    snprintf(where, sizeof(where), "%s%.180s", *path ? "in " : "at the top level", path);
    memset(s, 0, sizeof(*s));
    s->table = table;
    s->map = map;
    for (size_t i = 0; map && i + 1 < map->nkids && !c->stop; i += 2) {
        const struct ynode *kn = map->kids[i], *vn = map->kids[i + 1];
        if (kn->type != Y_SCALAR) {
            err_at(c, kn, "invalid key %s: found %s; expected a key name", where, kind_name(kn));
            continue;
        }
        const struct eb_config_key *row = eb_config_schema_find(table, kn->str);
        if (!row) {
            char keys[512] = "", v[96];
            size_t w = 0;
            for (const struct eb_config_key *k = table; k->key && w < sizeof(keys); k++)
                w += (size_t)snprintf(keys + w, sizeof(keys) - w, "%s%s", k == table ? "" : ", ",
                                      k->key);
            const char *sug = eb_config_schema_suggest(table, kn->str);
            shown(kn, v, sizeof(v));
            if (sug)
                err_at(c, kn, "unknown key '%s' %s; expected one of %s; did you mean '%s'?", v,
                       where, keys, sug);
            else
                err_at(c, kn, "unknown key '%s' %s; expected one of %s", v, where, keys);
            continue;
        }
        size_t idx = (size_t)(row - table);
        if (s->key[idx]) {
            err_at(c, kn, "duplicate key '%s' %s (first at line %u); expected each key once",
                   row->key, where, s->key[idx]->line);
            continue;
        }
        s->key[idx] = kn;
        s->val[idx] = vn;
        if (!is_absent(vn))
            set_value(c, row, vn, base, path);
    }
    for (size_t idx = 0; table[idx].key && !c->stop; idx++) {
        const struct eb_config_key *row = &table[idx];
        if (!is_absent(s->val[idx]))
            continue;
        if (row->flags & EB_CK_REQUIRED) {
            char what[192];
            child_path(what, sizeof(what), path, row->key);
            if (s->val[idx])
                err_at(c, s->val[idx], "missing value for %s; expected %s", what,
                       row->type == EB_CT_SECTION ? "a mapping"
                                                  : eb_config_schema_type_expected(row->type));
            else
                err_at(c, map, "missing %s %s; expected %s", row->key, where,
                       row->type == EB_CT_SECTION ? "a mapping"
                                                  : eb_config_schema_type_expected(row->type));
        } else if (row->def) {
            const struct ynode *d = default_node(c, row);
            if (d)
                set_value(c, row, d, base, path);
        } else if (row->type == EB_CT_SECTION) {
            set_value(c, row, NULL, base, path);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* After the walk                                                           */
/* ------------------------------------------------------------------------ */

struct name_ref {
    const char *name;
    size_t idx;
};

static int cmp_name_ref(const void *a, const void *b) {
    const struct name_ref *x = a, *y = b;
    int d = strcmp(x->name, y->name);
    return d ? d : (x->idx > y->idx) - (x->idx < y->idx);
}

/* Route names must be unique: sort (10,000 routes stay fast), then report
 * each repeat at its own position, in file order. */
static void check_route_names(struct ctx *c) {
    struct eb_config *cfg = c->cfg;
    size_t n = 0;
    struct name_ref *refs = calloc(cfg->nroutes ? cfg->nroutes : 1, sizeof(*refs));
    size_t *first = calloc(cfg->nroutes ? cfg->nroutes : 1, sizeof(*first));
    if (!refs || !first) {
        c->oom = c->stop = true;
        goto out;
    }
    for (size_t i = 0; i < cfg->nroutes; i++) {
        first[i] = SIZE_MAX;
        if (cfg->routes[i].name)
            refs[n++] = (struct name_ref){cfg->routes[i].name, i};
    }
    qsort(refs, n, sizeof(*refs), cmp_name_ref);
    for (size_t i = 1; i < n; i++) {
        size_t j = i;
        while (j > 0 && strcmp(refs[j - 1].name, refs[i].name) == 0)
            j--;
        if (j != i)
            first[refs[i].idx] = refs[j].idx;
    }
    for (size_t i = 0; i < cfg->nroutes && !c->stop; i++) {
        if (first[i] == SIZE_MAX)
            continue;
        const struct ynode *at = c->routes[i].name ? c->routes[i].name : c->routes[i].map;
        err_at(c, at,
               "duplicate route name '%s' (first at line %u); expected a unique name per route",
               cfg->routes[i].name, cfg->routes[first[i]].pos.line);
    }
out:
    free(first);
    free(refs);
}

static void build_router(struct ctx *c) {
    struct eb_config *cfg = c->cfg;
    struct eb_router_rule *rules = calloc(cfg->nroutes ? cfg->nroutes : 1, sizeof(*rules));
    char reason[768];
    size_t bad = 0;
    if (!rules) {
        c->oom = c->stop = true;
        return;
    }
    bool observed = false;
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const struct eb_config_route *r = &cfg->routes[i];
        rules[i] = (struct eb_router_rule){r->name, r->match, r->key, r->events, &cfg->routes[i]};
        cfg->route_events |= r->events;
        observed |= r->ledger == EB_LEDGER_OBSERVED;
    }
    /* Observed mode records deadlines from `expire` and forgets timers on
     * `del` and `persist`: subscribed, but forwarded only if a route asks. */
    if (observed) {
        static const char *const names[] = {"expire", "del", "persist"};
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            int id = eb_notify_event_id(names[i], strlen(names[i]));
            if (id >= 0)
                cfg->ledger_events |= UINT64_C(1) << id;
        }
    }
    cfg->events = cfg->route_events | cfg->ledger_events;
    cfg->router = eb_router_new(rules, cfg->nroutes, &bad, reason, sizeof(reason));
    if (!cfg->router) {
        if (bad < cfg->nroutes)
            errorf(c, cfg->routes[bad].pos.line, cfg->routes[bad].pos.col, "%s", reason);
        else
            errorf(c, 1, 1, "%s", reason);
    }
    free(rules);
}

/* Observed routes on Cluster keep one ledger per slot, whose name's first
 * hash tag places it there (docs/ledger.md), and so do routes with a
 * payload but no ledger (their claim reads the payload key in its slot): a
 * key_prefix with a tag of its own would put them all in its slot
 * instead. */
static void check_slot_ledgers(struct ctx *c) {
    const struct eb_config *cfg = c->cfg;
    if (cfg->redis.target.topology != EB_REDIS_CLUSTER || !cfg->ledger.key_prefix ||
        !strpbrk(cfg->ledger.key_prefix, "{}"))
        return;
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const struct eb_config_route *r = &cfg->routes[i];
        if (r->ledger == EB_LEDGER_OBSERVED || (r->ledger == EB_LEDGER_OFF && r->payload)) {
            err_at(c, c->ledger_prefix ? c->ledger_prefix : c->routes[i].map,
                   "invalid ledger.key_prefix: it holds a '{' or '}', but on Redis Cluster "
                   "route '%s' (%s) keeps one ledger per slot whose own hash tag must be the "
                   "first in its name; expected a prefix without braces",
                   r->name, r->ledger == EB_LEDGER_OBSERVED ? "ledger: observed"
                                                            : "a payload without a ledger");
            return;
        }
    }
}

static void finish(struct ctx *c, const struct ynode *root) {
    struct eb_config *cfg = c->cfg;
    if (cfg->nroutes == 0 && cfg->unrouted_drop)
        err_at(c, root,
               "no routes; expected at least one route under routes, or unrouted: { topic: NAME }");
    if (c->stop)
        return;
    check_route_names(c);
    resolve_plugin_refs(c);
    if (c->nerr || c->stop)
        return;
    build_router(c);
    check_plugins(c);
    check_slot_ledgers(c);
    /* A file with only an unrouted topic forwards every expiry. */
    if (cfg->nroutes == 0)
        cfg->events = cfg->route_events = UINT64_C(1) << EB_EVENT_EXPIRED_ID;
}

/* ------------------------------------------------------------------------ */
/* Public API                                                               */
/* ------------------------------------------------------------------------ */

void eb_config_free(struct eb_config *cfg) {
    if (!cfg)
        return;
    free(cfg->path);
    free(cfg->redis.url);
    free(cfg->redis.host);
    free(cfg->redis.sentinel_username);
    free(cfg->redis.sentinel_password);
    free(cfg->redis.tls_ca_file);
    free(cfg->redis.tls_cert_file);
    free(cfg->redis.tls_key_file);
    free(cfg->redis.tls_server_name);
    eb_redis_url_free(&cfg->redis.target);
    free(cfg->redis.username);
    free(cfg->redis.password);
    free(cfg->redis.databases);
    free(cfg->redis.source);
    free(cfg->kafka.brokers);
    kv_free(cfg->kafka.client, cfg->kafka.nclient);
    for (size_t i = 0; i < cfg->nroutes; i++) {
        struct eb_config_route *r = &cfg->routes[i];
        free(r->name);
        free(r->match);
        free(r->topic);
        free(r->key);
        kv_free(r->headers, r->nheaders);
        free(r->payload);
        for (size_t j = 0; j < r->nplugins; j++)
            free(r->plugins[j]);
        free(r->plugins);
        free(r->plugin_pos);
        free(r->plugin_idx);
        free(r->dead_letter);
    }
    for (size_t i = 0; i < cfg->nplugins; i++) {
        free(cfg->plugins[i].name);
        free(cfg->plugins[i].path);
        node_free(cfg->plugins[i].settings);
    }
    free(cfg->plugins);
    free(cfg->plugin_dir);
    free(cfg->dir);
    free(cfg->routes);
    free(cfg->ledger.key_prefix);
    free(cfg->unrouted_topic);
    free(cfg->http_listen);
    free(cfg->coordination.group);
    free(cfg->coordination.topic);
    eb_router_destroy(cfg->router);
    free(cfg);
}

static void ctx_free(struct ctx *c) {
    nodes_free(c);
    for (size_t i = 0; i < c->nsecrets; i++)
        free(c->secrets[i]);
    free(c->secrets);
    free(c->url_user);
    free(c->url_pass);
    free(c->routes);
    free(c->plugin_maps);
    free(c->plugin_names);
    eb_buf_free(&c->err);
}

int eb_config_load_string(const char *yaml, size_t len, const char *name,
                          const struct eb_config_checks *checks, struct eb_config **out,
                          char *errstr, size_t errstr_size) {
    struct ctx c = {0};
    c.checks = checks;
    int rc = EB_ECONFIG;
    *out = NULL;
    c.name = name ? name : "<config>";
    c.url_db = -1;
    if (errstr_size)
        errstr[0] = '\0';
    if (len > MAX_FILE_BYTES)
        return eb_error_set(errstr, errstr_size, EB_ECONFIG,
                         "%s: the file is %zu bytes; expected at most %u (16 MiB)", c.name, len,
                         MAX_FILE_BYTES);
    c.cfg = calloc(1, sizeof(*c.cfg));
    if (!c.cfg)
        return eb_error_set(errstr, errstr_size, EB_ENOMEM, "%s: out of memory", c.name);
    c.cfg->path = strdup(c.name);
    c.cfg->unrouted_drop = true;
    if (!c.cfg->path)
        c.oom = true;
    else
        set_dir(&c);
    const struct ynode *root = c.oom ? NULL : load_yaml(&c, yaml, len);
    if (!c.nerr && !c.oom) {
        if (!root || is_null(root))
            errorf(&c, 1, 1,
                   "the configuration is empty; expected a mapping with redis, kafka "
                   "and routes");
        else if (root->type != Y_MAP)
            err_at(&c, root,
                   "the configuration is %s; expected a mapping with redis, kafka and "
                   "routes",
                   kind_name(root));
        else {
            struct seen s;
            walk_map(&c, root, eb_config_schema, c.cfg, "", &s);
            finish(&c, root);
        }
    }
    if (c.oom) {
        rc = eb_error_set(errstr, errstr_size, EB_ENOMEM, "%s: out of memory", c.name);
    } else if (c.nerr) {
        if (c.stop && c.nerr >= MAX_ERRORS) {
            eb_buf_puts(&c.err, "\n");
            eb_buf_puts(&c.err, c.name);
            eb_buf_puts(&c.err, ": stopped after 20 errors");
        }
        eb_buf_cstr(&c.err);
        if (errstr_size)
            snprintf(errstr, errstr_size, "%s", eb_buf_ok(&c.err) ? c.err.data : "errors");
    } else {
        *out = c.cfg;
        c.cfg = NULL;
        rc = 0;
    }
    eb_config_free(c.cfg);
    ctx_free(&c);
    return rc;
}

int eb_config_load(const char *path, const struct eb_config_checks *checks, struct eb_config **out,
                   char *errstr, size_t errstr_size) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return eb_error_set(errstr, errstr_size, EB_EIO, "%s: cannot open: %s", path, strerror(errno));
    /* Read at most one byte past the limit: enough to know it is too big
     * without reading a huge file (or a FIFO) to its end. */
    size_t cap = 64 * 1024, len = 0;
    char *buf = malloc(cap);
    int rc = 0;
    while (buf) {
        if (len == cap) {
            if (cap > MAX_FILE_BYTES)
                break;
            size_t ncap =
                cap * 2 > (size_t)MAX_FILE_BYTES + 1 ? (size_t)MAX_FILE_BYTES + 1 : cap * 2;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    if (!buf) {
        rc = eb_error_set(errstr, errstr_size, EB_ENOMEM, "%s: out of memory", path);
    } else if (ferror(f)) {
        rc = eb_error_set(errstr, errstr_size, EB_EIO, "%s: cannot read: %s", path, strerror(errno));
    } else if (len > MAX_FILE_BYTES) {
        rc = eb_error_set(errstr, errstr_size, EB_ECONFIG,
                       "%s: the file is larger than %u bytes; expected at most 16 MiB", path,
                       MAX_FILE_BYTES);
    }
    fclose(f);
    if (rc == 0)
        rc = eb_config_load_string(buf, len, path, checks, out, errstr, errstr_size);
    free(buf);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Reload                                                                   */
/* ------------------------------------------------------------------------ */

static bool str_eq(const char *a, const char *b) {
    return (!a || !*a) ? (!b || !*b) : (b && strcmp(a, b) == 0);
}

/* Same properties, in any order. */
static bool kv_eq(const struct eb_kv *a, size_t na, const struct eb_kv *b, size_t nb) {
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++) {
        bool found = false;
        for (size_t j = 0; j < nb && !found; j++)
            found = strcmp(a[i].key, b[j].key) == 0 && strcmp(a[i].value, b[j].value) == 0;
        if (!found)
            return false;
    }
    return true;
}

bool eb_config_needs_reconnect(const struct eb_config *a, const struct eb_config *b) {
    if (!a || !b)
        return true;
    const struct eb_config_redis *x = &a->redis, *y = &b->redis;
    if (!str_eq(x->url, y->url) || !str_eq(x->username, y->username) ||
        !str_eq(x->sentinel_username, y->sentinel_username) ||
        !str_eq(x->sentinel_password, y->sentinel_password) ||
        !str_eq(x->tls_ca_file, y->tls_ca_file) || !str_eq(x->tls_cert_file, y->tls_cert_file) ||
        !str_eq(x->tls_key_file, y->tls_key_file) ||
        !str_eq(x->tls_server_name, y->tls_server_name) ||
        x->tls_insecure_skip_verify != y->tls_insecure_skip_verify ||
        x->topology_interval_ms != y->topology_interval_ms ||
        !str_eq(x->password, y->password) || x->all_databases != y->all_databases ||
        x->ndatabases != y->ndatabases ||
        (x->ndatabases &&
         memcmp(x->databases, y->databases, x->ndatabases * sizeof(*x->databases)) != 0) ||
        x->configure_notifications != y->configure_notifications ||
        x->connect_timeout_ms != y->connect_timeout_ms ||
        x->heartbeat_interval_ms != y->heartbeat_interval_ms ||
        x->heartbeat_timeout_ms != y->heartbeat_timeout_ms ||
        x->reconnect_min_ms != y->reconnect_min_ms || x->reconnect_max_ms != y->reconnect_max_ms)
        return true;
    /* New event types need new notification flags and subscriptions. */
    if (a->events != b->events)
        return true;
    const struct eb_config_kafka *p = &a->kafka, *q = &b->kafka;
    return !str_eq(p->brokers, q->brokers) ||
           !kv_eq(p->client, p->nclient, q->client, q->nclient) ||
           p->queue_max_events != q->queue_max_events || p->queue_max_bytes != q->queue_max_bytes;
}
