/* ledger_install.c -- `expiry-bridge functions load`: install the Redis
 * Function library of the deadline ledger (config/redis/eb_timers.lua,
 * compiled into the binary) from the command line, before any bridge runs
 * (contract in ledger.h): on the server; with Sentinel on the master the
 * first answering sentinel names; on Redis Cluster on every master CLUSTER
 * NODES lists; over TLS for a rediss URL, verified as the daemon's
 * connections are. A one-shot command, not the daemon: it may
 * block.
 */
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/error.h"
#include "ledger/ledger_internal.h"
#include "redis/cluster_map.h"
#include "redis/redis_client.h"
#include "redis/redis_conn.h"
#include "redis/redis_tls.h"
#include "redis/redis_topology.h"

static int timeout_ms(const struct eb_config_redis *r) {
    return r->connect_timeout_ms > 0 ? r->connect_timeout_ms : EB_REDIS_DEFAULT_CONNECT_TIMEOUT_MS;
}

void eb_ledger_install_load_args(struct eb_redis_argv *a) {
    size_t len;
    const char *lib = eb_ledger_library(&len);
    eb_redis_argv_init(a);
    eb_redis_argv_add_str(a, "FUNCTION");
    eb_redis_argv_add_str(a, "LOAD");
    eb_redis_argv_add_str(a, "REPLACE");
    eb_redis_argv_add_bytes(a, lib, len);
}

/* AUTH into cmds[0] whenever a user is named, even with an empty password
 * (an ACL user with nopass), as the daemon's connections do: how many
 * commands that is (0 or 1). */
static size_t auth_first(struct eb_redis_argv *cmds, const char *username, const char *password) {
    if (!(username && *username) && !(password && *password))
        return 0;
    eb_redis_conn_auth_args(&cmds[0], username, password);
    return 1;
}

static void free_cmds(struct eb_redis_argv *cmds, size_t n) {
    for (size_t i = 0; i < n; i++)
        eb_redis_argv_free(&cmds[i]);
}

/* FUNCTION LOAD (after AUTH when configured) on one server. */
static int load_on(const struct eb_config_redis *r, eb_redis_tls_t *tls, const char *host,
                   int port, char *errstr, size_t errstr_size) {
    struct eb_redis_argv cmds[2];
    size_t n = auth_first(cmds, r->username, r->password), failed_at = 0;
    bool auth = n == 1;
    eb_ledger_install_load_args(&cmds[n++]);
    char why[512];
    int rc = eb_redis_conn_run_blocking(host, port, tls, timeout_ms(r), cmds, n, &failed_at, why,
                                        sizeof(why));
    free_cmds(cmds, n);
    if (rc == 0)
        return 0;
    if (failed_at >= n) /* the connection itself */
        return eb_error_set(errstr, errstr_size, rc, "%s", why);
    if (auth && failed_at == 0)
        return eb_error_set(errstr, errstr_size, rc, "AUTH failed: %s", why);
    if (rc == EB_EREDIS)
        return eb_error_set(errstr, errstr_size, rc,
                            "redis refused FUNCTION LOAD: %s (needs Redis >= 7.0 on a master)",
                            why);
    return eb_error_set(errstr, errstr_size, rc, "FUNCTION LOAD: %s", why);
}

/* Cluster: the masters, from CLUSTER NODES of the first seed that answers. */
static int cluster_masters(const struct eb_config_redis *r, eb_redis_tls_t *tls,
                           struct eb_cluster_map **out, char *errstr, size_t errstr_size) {
    int rc = EB_EIO;
    for (size_t i = 0; i < r->target.nnodes; i++) {
        const struct eb_redis_addr *seed = &r->target.nodes[i];
        struct eb_redis_argv cmds[2];
        size_t n = auth_first(cmds, r->username, r->password), failed_at = 0, len = 0;
        char *text = NULL;
        eb_redis_argv_init(&cmds[n]);
        eb_redis_argv_add_str(&cmds[n], "CLUSTER");
        eb_redis_argv_add_str(&cmds[n++], "NODES");
        rc = eb_redis_conn_query_blocking(seed->host, seed->port, tls, timeout_ms(r), cmds, n,
                                          &failed_at, &text, &len, errstr, errstr_size);
        free_cmds(cmds, n);
        if (rc == 0) {
            struct eb_cluster_source src = {seed->host, seed->port, r->target.tls};
            rc = eb_cluster_map_from_nodes(text, len, &src, out, errstr, errstr_size);
        }
        free(text);
        if (rc == 0)
            return 0;
    }
    return rc;
}

struct master_addr {
    char host[256];
    int port;
};

static int read_master(const struct redisReply *r, void *opaque, char *errstr,
                       size_t errstr_size) {
    struct master_addr *out = opaque;
    const char *host;
    if (!eb_redis_reply_master_addr(r, &host, &out->port))
        return eb_error_set(errstr, errstr_size, EB_EPROTO,
                            "the sentinel does not know this master name ("
                            EB_REDIS_SENTINEL_NAME_HINT ")");
    if (strlen(host) >= sizeof(out->host))
        return eb_error_set(errstr, errstr_size, EB_EPROTO, "the master's host name is too long");
    strcpy(out->host, host);
    return 0;
}

/* Sentinel: the master, from the first sentinel that names it (the sentinels'
 * own user and password, as the daemon's topology connections use). */
static int sentinel_master(const struct eb_config_redis *r, eb_redis_tls_t *tls,
                           struct master_addr *out, char *errstr, size_t errstr_size) {
    int rc = EB_EIO;
    for (size_t i = 0; i < r->target.nnodes; i++) {
        const struct eb_redis_addr *s = &r->target.nodes[i];
        struct eb_redis_argv cmds[2];
        size_t n = auth_first(cmds, r->sentinel_username, r->sentinel_password), failed_at = 0;
        eb_redis_argv_init(&cmds[n]);
        eb_redis_argv_add_str(&cmds[n], "SENTINEL");
        eb_redis_argv_add_str(&cmds[n], "get-master-addr-by-name");
        eb_redis_argv_add_str(&cmds[n++], r->target.master_name);
        char why[512];
        rc = eb_redis_conn_ask_blocking(s->host, s->port, tls, timeout_ms(r), cmds, n, &failed_at,
                                        read_master, out, why, sizeof(why));
        free_cmds(cmds, n);
        if (rc == 0)
            return 0;
        eb_error_set(errstr, errstr_size, rc, "sentinel %s:%d: %s", s->host, s->port, why);
    }
    return rc;
}

static int install_sentinel(const struct eb_config_redis *r, eb_redis_tls_t *tls, char *errstr,
                            size_t errstr_size) {
    struct master_addr m;
    char why[1024];
    int rc = sentinel_master(r, tls, &m, why, sizeof(why));
    if (rc != 0)
        return eb_error_set(errstr, errstr_size, rc, "cannot learn the master from the sentinels: %s",
                            why);
    rc = load_on(r, tls, m.host, m.port, why, sizeof(why));
    if (rc != 0)
        return eb_error_set(errstr, errstr_size, rc, "master %s:%d: %s", m.host, m.port, why);
    return 0;
}

/* Every master of the cluster: functions are per node (a replica gets them
 * from its master, another master does not). */
static int install_cluster(const struct eb_config_redis *r, eb_redis_tls_t *tls, size_t *nodes,
                           char *errstr, size_t errstr_size) {
    struct eb_cluster_map *m = NULL;
    char why[1024];
    int rc = cluster_masters(r, tls, &m, why, sizeof(why));
    if (rc != 0)
        return eb_error_set(errstr, errstr_size, rc, "cannot read the cluster's masters: %s",
                            why);
    for (size_t i = 0; i < m->nmasters && rc == 0; i++) {
        const struct eb_cluster_master *cm = &m->masters[i];
        if (cm->failed)
            continue; /* its replica, once promoted, gets the library from the bridge */
        rc = load_on(r, tls, cm->host, cm->port, why, sizeof(why));
        if (rc != 0)
            eb_error_set(errstr, errstr_size, rc, "master %s:%d: %s", cm->host, cm->port, why);
        else if (nodes)
            (*nodes)++;
    }
    eb_cluster_map_free(m);
    return rc;
}

int eb_ledger_install(const struct eb_config *cfg, size_t *nodes, char *errstr,
                      size_t errstr_size) {
    const struct eb_config_redis *r = &cfg->redis;
    if (nodes)
        *nodes = 0;
    eb_redis_tls_t *tls = NULL;
    if (r->target.tls) {
        struct eb_redis_tls_conf tc = eb_redis_tls_conf_of(r, NULL, NULL);
        if (!(tls = eb_redis_tls_new(&tc, errstr, errstr_size)))
            return EB_ECONFIG;
    }
    int rc;
    if (r->target.topology == EB_REDIS_CLUSTER) {
        rc = install_cluster(r, tls, nodes, errstr, errstr_size);
    } else {
        rc = r->target.topology == EB_REDIS_SENTINEL
                 ? install_sentinel(r, tls, errstr, errstr_size)
                 : load_on(r, tls, r->host, r->port, errstr, errstr_size);
        if (rc == 0 && nodes)
            *nodes = 1;
    }
    eb_redis_tls_destroy(tls);
    return rc;
}
