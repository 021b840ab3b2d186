/* config_values.c -- a node's value: whether it is null or absent, its
 * text after ${VAR} expansion, and its conversion by the key's type into
 * the field of struct eb_config (durations, sizes, booleans, choices,
 * names, patterns, the Redis URL, databases, events, librdkafka client
 * properties, headers). Secrets met on the way are handed to the error
 * list's scrubber.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config_internal.h"
#include "config/redis_url.h"
#include "core/error.h"
#include "core/notify.h"

/* ------------------------------------------------------------------------ */
/* Scalars                                                                  */
/* ------------------------------------------------------------------------ */

/* YAML's null: `key:`, `key: ~`, `key: null` (plain only; "" is a string). */
bool eb_config_is_null(const struct ynode *n) {
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
bool eb_config_is_absent(const struct ynode *n) {
    if (eb_config_is_null(n))
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
        eb_config_add_secret(opaque, value);
}

/* The value of scalar n after ${VAR} expansion, owned by the caller
 * (free()), or NULL after reporting why. `what` names the key. */
char *eb_config_scalar_text(struct ctx *c, const struct ynode *n, const char *what,
                            bool *expanded) {
    char reason[256];
    size_t off = 0;
    char *out = NULL;
    bool exp = false;
    if (n->type != Y_SCALAR) {
        err_at(c, n, "invalid %s: found %s; expected a single value", what, eb_config_kind_name(n));
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
        eb_config_node_pos(n, off, &line, &col);
        eb_config_errorf(c, line, col, "invalid %s: %s", what, reason);
        return NULL;
    }
    if (expanded)
        *expanded = exp;
    return out;
}

char *eb_config_xstrdup(struct ctx *c, const char *s) {
    char *d = strdup(s);
    if (!d)
        c->oom = c->stop = true;
    return d;
}

/* Store s (taken) into the char * at field, freeing what was there (a
 * key given through an alias twice is converted twice). */
void eb_config_set_str(char **field, char *s) {
    free(*field);
    *field = s;
}

/* ------------------------------------------------------------------------ */
/* Value converters                                                         */
/* ------------------------------------------------------------------------ */

/* "path.key" (or "key" at the top level) into out. */
void eb_config_child_path(char *out, size_t size, const char *path, const char *key) {
    snprintf(out, size, "%s%s%s", path, *path ? "." : "", key);
}

void eb_config_bad_value(struct ctx *c, const struct ynode *n, const char *what,
                         const struct eb_config_key *k, const char *reason) {
    char v[96];
    eb_config_shown(n, v, sizeof(v));
    err_at(c, n, "invalid %s '%s': %s; expected %s", what, v, reason,
           eb_config_schema_type_expected(k->type));
}

/* redis.url in any of its forms (redis_url.h) into cfg->redis and the url_*
 * fields of c. An error points at the column where the URL goes wrong when
 * the scalar is written as is (no ${VAR}, no escapes). Messages quote a
 * component, never the whole URL (it may hold a password). */
void eb_config_convert_url(struct ctx *c, const struct ynode *n, const char *what, const char *url,
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
        eb_config_node_pos(n, off, &line, &col);
        eb_config_errorf(c, line, col, "invalid %s: %s; expected %s", what, reason, expect);
        return;
    }
    /* A password in the URL is a secret, decoded or as written. */
    if (u.password) {
        char *raw = strndup(url + u.password_off, u.password_len);
        eb_config_add_secret(c, u.password);
        eb_config_add_secret(c, raw);
        free(raw);
    }
    eb_config_set_str(&r->url, eb_config_xstrdup(c, url));
    eb_redis_url_free(&r->target);
    r->target = u;
    eb_config_set_str(&r->host, eb_config_xstrdup(c, u.nodes[0].host));
    r->port = u.nodes[0].port;
    eb_config_set_str(&c->url_user, u.username ? eb_config_xstrdup(c, u.username) : NULL);
    eb_config_set_str(&c->url_pass, u.password ? eb_config_xstrdup(c, u.password) : NULL);
    c->url_db = u.db;
    c->url_node = n;
}

/* Whether n is the non-empty sequence a list-valued key needs; if not,
 * the error at n says what was found and what was expected. */
static bool nonempty_seq(struct ctx *c, const struct ynode *n, const char *what,
                         const char *expect) {
    if (n->type != Y_SEQ) {
        err_at(c, n, "invalid %s: found %s; expected %s", what, eb_config_kind_name(n), expect);
        return false;
    }
    if (n->nkids == 0) {
        err_at(c, n, "invalid %s: the list is empty; expected %s", what, expect);
        return false;
    }
    return true;
}

void eb_config_convert_databases(struct ctx *c, const struct ynode *n, const char *what,
                                 struct eb_config_redis *r) {
    const char *expect = eb_config_schema_type_expected(EB_CT_DATABASES);
    if (n->type == Y_SCALAR) {
        char *s = eb_config_scalar_text(c, n, what, NULL);
        if (!s)
            return;
        if (strcmp(s, "all") == 0) {
            r->all_databases = true;
            free(r->databases);
            r->databases = NULL;
            r->ndatabases = 0;
        } else {
            eb_config_bad_value(c, n, what, &(struct eb_config_key){.type = EB_CT_DATABASES},
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
        char *s = eb_config_scalar_text(c, it, what, NULL);
        if (!s) {
            ok = false;
            continue;
        }
        size_t v = 0, len = strlen(s);
        bool digits = len > 0 && len <= 5 && strspn(s, "0123456789") == len;
        if (digits)
            v = strtoul(s, NULL, 10);
        if (!digits || v > 65535) {
            eb_config_bad_value(c, it, what, &(struct eb_config_key){.type = EB_CT_DATABASES},
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
        err_at(c, n, "invalid %s: found %s; expected %s", what, eb_config_kind_name(n), expect_map);
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
                   kn->type != Y_SCALAR ? eb_config_kind_name(kn) : "empty");
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
        if (eb_config_is_null(vn)) {
            err_at(c, vn, "missing value for '%s' in %s; expected a value", kn->str, what);
            ok = false;
            continue;
        }
        char vwhat[160];
        snprintf(vwhat, sizeof(vwhat), "%s '%.64s'", what, kn->str);
        char *v = eb_config_scalar_text(c, vn, vwhat, NULL);
        if (!v) {
            ok = false;
            continue;
        }
        if (eb_log_is_secret_name(kn->str))
            eb_config_add_secret(c, v);
        kv[nkv].key = eb_config_xstrdup(c, kn->str);
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

void eb_config_kv_free(struct eb_kv *kv, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(kv[i].key);
        free(kv[i].value);
    }
    free(kv);
}

void eb_config_convert_client(struct ctx *c, const struct ynode *n, const char *what,
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
            eb_config_errorf(
                c, kv[bad].pos.line, kv[bad].pos.col,
                "invalid %s: %s; expected a valid librdkafka producer property that the "
                "bridge does not set itself",
                what, reason);
    }
    if (rc != 0) {
        eb_config_kv_free(kv, nkv);
        return;
    }
    eb_config_kv_free(k->client, k->nclient);
    k->client = kv;
    k->nclient = nkv;
}

void eb_config_convert_headers(struct ctx *c, const struct ynode *n, const char *what,
                               struct eb_config_route *r) {
    struct eb_kv *kv = NULL;
    size_t nkv = 0;
    if (!convert_kv(c, n, what, MAX_HEADERS, check_header, &kv, &nkv))
        return;
    eb_config_kv_free(r->headers, r->nheaders);
    r->headers = kv;
    r->nheaders = nkv;
}

void eb_config_convert_events(struct ctx *c, const struct ynode *n, const char *what,
                              uint64_t *mask) {
    const char *expect = eb_config_schema_type_expected(EB_CT_EVENTS);
    if (!nonempty_seq(c, n, what, expect))
        return;
    uint64_t m = 0;
    bool ok = true;
    for (size_t i = 0; i < n->nkids && !c->stop; i++) {
        const struct ynode *it = n->kids[i];
        char *s = eb_config_scalar_text(c, it, what, NULL);
        if (!s) {
            ok = false;
            continue;
        }
        int id = eb_notify_event_id(s, strlen(s));
        if (id < 0) {
            char v[96];
            const char *sug = eb_notify_event_suggest(s);
            eb_config_shown(it, v, sizeof(v));
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
        eb_config_shown(n, v, sizeof(v));
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
 * reason. One place, so each such type is one case in eb_config_convert_scalar(). */
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
void eb_config_convert_scalar(struct ctx *c, const struct eb_config_key *k, const struct ynode *n,
                              void *field, const char *what) {
    bool expanded = false;
    char *s = eb_config_scalar_text(c, n, what, &expanded);
    const char *reason = NULL;
    char rbuf[384];
    if (!s)
        return;
    switch (k->type) {
    case EB_CT_SECRET:
        eb_config_add_secret(c, s);
        eb_config_set_str(field, s);
        return;
    case EB_CT_STRING:
        eb_config_set_str(field, s);
        return;
    case EB_CT_FILE:
        /* Read when the connection is made, where the file lives (a
         * Kubernetes Secret mount): `check` elsewhere cannot see it. */
        if (!s[0]) {
            eb_config_bad_value(c, n, what, k, "the path is empty");
            break;
        }
        eb_config_set_str(field, s);
        return;
    case EB_CT_BOOL:
        if (!eb_config_schema_parse_bool(s, field, &reason))
            eb_config_bad_value(c, n, what, k, reason);
        break;
    case EB_CT_DURATION: {
        int ms;
        if (!eb_config_schema_parse_duration(s, &ms, &reason))
            eb_config_bad_value(c, n, what, k, reason);
        else if (ms == 0 && (k->flags & EB_CK_NONZERO))
            eb_config_bad_value(c, n, what, k, "zero is not allowed here");
        else
            *(int *)field = ms;
        break;
    }
    case EB_CT_SIZE:
        if (!eb_config_schema_parse_size(s, field, &reason))
            eb_config_bad_value(c, n, what, k, reason);
        break;
    case EB_CT_COUNT:
        if (!eb_config_schema_parse_count(s, field, &reason))
            eb_config_bad_value(c, n, what, k, reason);
        break;
    case EB_CT_BROKERS:
    case EB_CT_ROUTE_NAME:
    case EB_CT_TOPIC:
    case EB_CT_LISTEN:
        if (!text_valid(k->type, s, rbuf, sizeof(rbuf))) {
            eb_config_bad_value(c, n, what, k, rbuf);
            break;
        }
        eb_config_set_str(field, s);
        return;
    case EB_CT_PATTERN: {
        size_t off = 0;
        if (eb_router_check_pattern(s, &off, rbuf, sizeof(rbuf)) != 0) {
            unsigned line, col;
            eb_config_node_pos(n, expanded ? 0 : off, &line, &col);
            eb_config_errorf(c, line, col, "invalid %s: %s", what, rbuf);
            break;
        }
        eb_config_set_str(field, s);
        return;
    }
    case EB_CT_TEMPLATE:
        /* Checked against the route's pattern once the route is read. */
        eb_config_set_str(field, s);
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
