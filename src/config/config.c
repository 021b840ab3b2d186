/* config.c -- YAML (libyaml) -> struct eb_config, validated against the key
 * tables of config_schema.c, with FILE:LINE:COL errors. The entry of the
 * loader: eb_config_load(), eb_config_load_string(), eb_config_free(), and
 * eb_config_needs_reconnect() for reloads; the steps live in the files
 * that config_internal.h lists.
 *
 * Three steps:
 *   1. load (config_yaml.c): libyaml's event parser builds a small node
 *      tree of our own, enforcing the input limits as it goes (size,
 *      nesting depth, node count, anchors, and the size the document would
 *      have with every alias expanded, so an alias bomb is rejected before
 *      anything walks it). Aliases become shared nodes, never copies.
 *   2. walk (config_walk.c, config_values.c, config_plugins.c): each
 *      mapping is checked against its table (unknown and duplicate keys,
 *      required keys, defaults) and each value converted by its type, after
 *      ${VAR} expansion. Errors are collected (config_errors.c), up to 20.
 *   3. finish (config_checks.c): cross-field rules (URL database vs
 *      `databases`, timeouts), unique route names, and the router build,
 *      which detects ties.
 *
 * Error messages never quote an expanded value: they show the text as
 * written in the file (where a secret is a ${VAR} reference), and any text
 * taken from another module's message is scrubbed of every secret seen
 * (passwords, secret-named properties, values of secret-named variables).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/config_internal.h"
#include "core/error.h"

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
    eb_config_kv_free(cfg->kafka.client, cfg->kafka.nclient);
    for (size_t i = 0; i < cfg->nroutes; i++) {
        struct eb_config_route *r = &cfg->routes[i];
        free(r->name);
        free(r->match);
        free(r->topic);
        free(r->key);
        eb_config_kv_free(r->headers, r->nheaders);
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
        eb_config_node_free(cfg->plugins[i].settings);
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

/* The directory of the file, for relative plugin paths. */
static void set_dir(struct ctx *c) {
    const char *slash = strrchr(c->name, '/');
    c->cfg->dir = slash ? strndup(c->name, (size_t)(slash - c->name) + (slash == c->name))
                        : strdup(".");
    if (!c->cfg->dir)
        c->oom = c->stop = true;
}

static void ctx_free(struct ctx *c) {
    eb_config_nodes_free(c);
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
    const struct ynode *root = c.oom ? NULL : eb_config_load_yaml(&c, yaml, len);
    if (!c.nerr && !c.oom) {
        if (!root || eb_config_is_null(root))
            eb_config_errorf(&c, 1, 1,
                             "the configuration is empty; expected a mapping with redis, kafka "
                             "and routes");
        else if (root->type != Y_MAP)
            err_at(&c, root,
                   "the configuration is %s; expected a mapping with redis, kafka and "
                   "routes",
                   eb_config_kind_name(root));
        else {
            struct seen s;
            eb_config_walk_map(&c, root, eb_config_schema, c.cfg, "", &s);
            eb_config_finish(&c, root);
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
