/* redis_tls_none.c -- redis_tls.h for a hiredis without TLS (0.14, Debian
 * 12; or 1.x built without hiredis_ssl): no handle can be made, and
 * eb_redis_tls_new() says why, naming the version
 * (eb_redis_conn_tls_unavailable()). The config check refuses rediss://
 * URLs with the same words before anything gets here. Compiled instead of
 * redis_tls.c (cmake/EbHiredis.cmake), so no .c body needs an #ifdef.
 */
#include "core/error.h"
#include "redis/redis_conn.h"
#include "redis/redis_tls.h"

eb_redis_tls_t *eb_redis_tls_new(const struct eb_redis_tls_conf *conf, char *errstr,
                                 size_t errstr_size) {
    (void)conf;
    eb_error_set(errstr, errstr_size, EB_EINVAL, "%s", eb_redis_conn_tls_unavailable());
    return NULL;
}

void eb_redis_tls_destroy(eb_redis_tls_t *t) {
    (void)t;
}

int eb_redis_tls_start(eb_redis_tls_t *t, struct redisContext *c, const char *host,
                       struct ssl_st **ssl, enum eb_redis_tls_reason *reason, char *errstr,
                       size_t errstr_size) {
    (void)t;
    (void)c;
    (void)host;
    *ssl = NULL;
    *reason = EB_REDIS_TLS_OK;
    return eb_error_set(errstr, errstr_size, EB_EINVAL, "%s", eb_redis_conn_tls_unavailable());
}

enum eb_redis_tls_reason eb_redis_tls_diagnose(eb_redis_tls_t *t, struct ssl_st *ssl,
                                               enum eb_redis_tls_stage stage, char *detail,
                                               size_t detail_size) {
    (void)t;
    (void)ssl;
    (void)stage;
    (void)detail;
    (void)detail_size;
    return EB_REDIS_TLS_OK;
}

bool eb_redis_tls_handshaking(const struct ssl_st *ssl) {
    (void)ssl;
    return false;
}

void eb_redis_tls_count(eb_redis_tls_t *t, enum eb_redis_tls_reason reason) {
    (void)t;
    (void)reason;
}
