/* redis_tls.h -- TLS to Redis (`rediss://`, `rediss-sentinel://`,
 * `rediss-cluster://`): the client side of one configuration's redis.tls,
 * and why a handshake failed, in words, as a setting to fix and as a
 * counter.
 *
 * One handle per owner of connections (a topology, the ledger, `functions
 * load`) holds the OpenSSL context: the trust anchors (redis.tls.ca_file or
 * the system's store), the client certificate and key, and whether the
 * server is verified at all. Each connection gets its own TLS session from
 * it (eb_redis_tls_start()), which sets the name the server's certificate
 * must carry and sends it as SNI: redis.tls.server_name when set, else the
 * host that connection was made to -- the name as configured (or as a
 * sentinel or cluster node announced it), never the address it resolved
 * to. An IP address is verified against the certificate's IP entries and
 * not sent as SNI (RFC 6066 forbids it).
 *
 * Why not hiredis's redisCreateSSLContext(): it takes one SNI name per
 * context (Sentinel and Cluster reach many hosts) and never checks the
 * name in the certificate at all -- any certificate from the CA would do.
 * So the context is OpenSSL's, built here, and hiredis gets a prepared
 * session through redisInitiateSSL(). This file and redis_conn.c are the
 * only ones that know hiredis_ssl exists; a build without it (hiredis 0.14,
 * Debian 12) compiles redis_tls_none.c instead, whose eb_redis_tls_new()
 * fails with the reason (eb_redis_conn_tls_unavailable()).
 *
 * Certificates are read when the handle is made, and again when a file
 * changed since (a Kubernetes Secret updated in place: cert-manager renews
 * before expiry), checked at every new connection; a file that fails to
 * load then keeps the previous context and is logged once per change.
 *
 * Ownership: the handle is owned by whoever called eb_redis_tls_new() and
 * freed with eb_redis_tls_destroy(), after every connection made with it
 * (hiredis holds sessions of it until then). conf strings are copied; log
 * and metrics are borrowed for the handle's life.
 *
 * @locality every function runs on the thread that owns the connections:
 * the loop thread (or the one thread of `functions load`).
 */
#ifndef EB_REDIS_TLS_H
#define EB_REDIS_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "core/log.h"
#include "core/metrics.h"

struct redisContext; /* <hiredis/hiredis.h> */
struct ssl_st;       /* <openssl/ssl.h> */
typedef struct eb_redis_tls eb_redis_tls_t;

/* Why a TLS connection failed: X(enum tail, label of
 * eb_redis_tls_failures_total{reason}, the setting to fix, a hint). */
#define EB_REDIS_TLS_REASONS(X)                                                                    \
    X(OK, "ok", "", NULL)                                                                          \
    X(UNKNOWN_CA, "unknown_ca", "redis.tls.ca_file",                                              \
      "the server's certificate is not signed by a CA in redis.tls.ca_file (or in the system's "  \
      "trust store when it is not set): give the CA that signed it")                              \
    X(NAME_MISMATCH, "name_mismatch", "redis.tls.server_name",                                     \
      "the server's certificate is not for this name: connect by a name it carries, or set "      \
      "redis.tls.server_name to one")                                                             \
    X(EXPIRED, "expired", "the server's certificate (Redis tls-cert-file)",                       \
      "the server's certificate has expired or is not valid yet: renew it (or check this "       \
      "machine's clock)")                                                                         \
    X(BAD_CERTIFICATE, "bad_certificate", "the server's certificate (Redis tls-cert-file)",        \
      "the server's certificate was refused (see detail)")                                        \
    X(CLIENT_CERTIFICATE, "client_certificate", "redis.tls.cert_file, redis.tls.key_file",        \
      "the server refused the client certificate, or wanted one and got none "                    \
      "(tls-auth-clients yes): give one signed by a CA the server trusts")                        \
    X(NOT_TLS, "not_tls", "redis.url",                                                             \
      "the server answered without TLS: this port is a plaintext one; use redis:// or the "       \
      "server's tls-port")                                                                        \
    X(HANDSHAKE_TIMEOUT, "handshake_timeout", "redis.url",                                         \
      "no TLS answer from the server: a plaintext port (use redis:// or the server's "            \
      "tls-port) or a stalled server")                                                            \
    X(HANDSHAKE, "handshake", "redis.tls",                                                         \
      "the TLS handshake failed (see detail): protocol versions or ciphers the server refuses?")

enum eb_redis_tls_reason {
#define EB_REDIS_TLS_ENUM_(tail, name, setting, hint) EB_REDIS_TLS_##tail,
    EB_REDIS_TLS_REASONS(EB_REDIS_TLS_ENUM_)
#undef EB_REDIS_TLS_ENUM_
};

struct eb_redis_tls_conf {
    const char *ca_file;     /* PEM CA bundle, or NULL: the system's trust store */
    const char *cert_file;   /* PEM client certificate, or NULL */
    const char *key_file;    /* its private key (set with cert_file), or NULL */
    const char *server_name; /* verified and sent as SNI for every host, or NULL */
    bool insecure_skip_verify;
    eb_log_t *log;         /* borrowed; a certificate file that no longer loads; may be NULL */
    eb_metrics_t *metrics; /* borrowed; eb_redis_tls_failures_total; may be NULL */
};

/* The settings of a configuration's redis.tls (strings borrowed from r). */
static inline struct eb_redis_tls_conf eb_redis_tls_conf_of(const struct eb_config_redis *r,
                                                            eb_log_t *log,
                                                            eb_metrics_t *metrics) {
    return (struct eb_redis_tls_conf){
        .ca_file = r->tls_ca_file,
        .cert_file = r->tls_cert_file,
        .key_file = r->tls_key_file,
        .server_name = r->tls_server_name,
        .insecure_skip_verify = r->tls_insecure_skip_verify,
        .log = log,
        .metrics = metrics,
    };
}

/* Load the files and build the context. NULL + errstr (naming the file
 * and its setting, or the reason this build has no TLS) on failure. Free
 * with eb_redis_tls_destroy(). */
eb_redis_tls_t *eb_redis_tls_new(const struct eb_redis_tls_conf *conf, char *errstr,
                                 size_t errstr_size);

/* NULL is a no-op. */
void eb_redis_tls_destroy(eb_redis_tls_t *t);

/* Begin TLS on a hiredis context whose TCP connect was just started (or,
 * blocking, has completed), before any command was written: a session
 * verifying and naming host (or server_name). *ssl is set to the session,
 * borrowed: hiredis frees it with the context. 0; or EB_EIO + errstr when
 * the handshake failed at once -- a blocking context, or a server on
 * loopback fast enough to answer within the first SSL_connect() -- with
 * *reason the TLS reason (counted) or OK (the socket's own error); then
 * *ssl is NULL, hiredis's context is left with TLS I/O functions and no
 * TLS state (free it before its next event); EB_ENOMEM. */
int eb_redis_tls_start(eb_redis_tls_t *t, struct redisContext *c, const char *host,
                       struct ssl_st **ssl, enum eb_redis_tls_reason *reason, char *errstr,
                       size_t errstr_size);

/* How far a connection got before it failed. */
enum eb_redis_tls_stage {
    EB_REDIS_TLS_AT_CONNECT,   /* hiredis reported the TCP connect failed */
    EB_REDIS_TLS_BEFORE_REPLY, /* lost before any reply was read */
    EB_REDIS_TLS_AFTER_REPLY,  /* lost after replies: TLS worked */
};

/* Why the connection of session ssl failed: called when it failed or was
 * lost, before hiredis frees it, with hiredis's words in detail. Reads
 * the session's verification result, whether the server asked for a
 * client certificate, and OpenSSL's error queue (which it empties). A TLS
 * reason is counted and described in detail ("TLS: the server's
 * certificate is signed by an unknown CA (unable to get local issuer
 * certificate)"); EB_REDIS_TLS_OK when the failure was not TLS's, detail
 * untouched. Only what OpenSSL says is believed at AT_CONNECT; BEFORE_REPLY
 * also takes a close during the handshake, or after a certificate
 * request, as TLS's doing. ssl may be NULL: OK. */
enum eb_redis_tls_reason eb_redis_tls_diagnose(eb_redis_tls_t *t, struct ssl_st *ssl,
                                               enum eb_redis_tls_stage stage, char *detail,
                                               size_t detail_size);

/* True while the session's handshake has not finished. */
bool eb_redis_tls_handshaking(const struct ssl_st *ssl);

/* Count a failure found outside a session's errors (a handshake that got
 * no answer in time). */
void eb_redis_tls_count(eb_redis_tls_t *t, enum eb_redis_tls_reason reason);

/* "unknown_ca", the setting to fix, the hint: static storage, never NULL
 * (but the hint of OK). From the table above, in both builds. */
static inline const char *eb_redis_tls_reason_name(enum eb_redis_tls_reason r) {
    switch (r) {
#define EB_REDIS_TLS_NAME_(tail, name, setting, hint)                                              \
    case EB_REDIS_TLS_##tail:                                                                      \
        return name;
        EB_REDIS_TLS_REASONS(EB_REDIS_TLS_NAME_)
#undef EB_REDIS_TLS_NAME_
    }
    return "?";
}

static inline const char *eb_redis_tls_reason_setting(enum eb_redis_tls_reason r) {
    switch (r) {
#define EB_REDIS_TLS_SETTING_(tail, name, setting, hint)                                           \
    case EB_REDIS_TLS_##tail:                                                                      \
        return setting;
        EB_REDIS_TLS_REASONS(EB_REDIS_TLS_SETTING_)
#undef EB_REDIS_TLS_SETTING_
    }
    return "redis.tls";
}

static inline const char *eb_redis_tls_reason_hint(enum eb_redis_tls_reason r) {
    switch (r) {
#define EB_REDIS_TLS_HINT_(tail, name, setting, hint)                                              \
    case EB_REDIS_TLS_##tail:                                                                      \
        return hint;
        EB_REDIS_TLS_REASONS(EB_REDIS_TLS_HINT_)
#undef EB_REDIS_TLS_HINT_
    }
    return NULL;
}

#endif
