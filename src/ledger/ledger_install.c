/* ledger_install.c -- `expiry-bridge functions load`: install the Redis
 * Function library of the deadline ledger (config/redis/eb_timers.lua,
 * compiled into the binary) from the command line, before any bridge runs
 * (contract in ledger.h). A one-shot command, not the daemon: it may block.
 */
#include "config/config.h"
#include "core/error.h"
#include "ledger/ledger_internal.h"
#include "redis/redis_client.h"
#include "redis/redis_conn.h"
#include "redis/redis_tls.h"

void eb_ledger_install_load_args(struct eb_redis_argv *a) {
    size_t len;
    const char *lib = eb_ledger_library(&len);
    eb_redis_argv_init(a);
    eb_redis_argv_add_str(a, "FUNCTION");
    eb_redis_argv_add_str(a, "LOAD");
    eb_redis_argv_add_str(a, "REPLACE");
    eb_redis_argv_add_bytes(a, lib, len);
}

int eb_ledger_install(const struct eb_config *cfg, char *errstr, size_t errstr_size) {
    const struct eb_config_redis *r = &cfg->redis;
    struct eb_redis_argv cmds[2];
    size_t n = 0, failed_at = 0;
    /* AUTH whenever a user is named, even with an empty password (an ACL
     * user with nopass), as the daemon's connections do. */
    bool auth = (r->username && *r->username) || (r->password && *r->password);
    if (auth)
        eb_redis_conn_auth_args(&cmds[n++], r->username, r->password);
    eb_ledger_install_load_args(&cmds[n++]);
    char why[512];
    eb_redis_tls_t *tls = NULL;
    int rc = 0;
    if (r->target.tls) {
        struct eb_redis_tls_conf tc = eb_redis_tls_conf_of(r, NULL, NULL);
        tls = eb_redis_tls_new(&tc, why, sizeof(why));
        rc = tls ? 0 : EB_ECONFIG;
    }
    if (rc == 0)
        rc = eb_redis_conn_run_blocking(r->host, r->port, tls,
                                        r->connect_timeout_ms > 0
                                            ? r->connect_timeout_ms
                                            : EB_REDIS_DEFAULT_CONNECT_TIMEOUT_MS,
                                        cmds, n, &failed_at, why, sizeof(why));
    eb_redis_tls_destroy(tls);
    for (size_t i = 0; i < n; i++)
        eb_redis_argv_free(&cmds[i]);
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
