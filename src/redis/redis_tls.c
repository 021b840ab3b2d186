/* redis_tls.c -- TLS to Redis with OpenSSL and hiredis_ssl (contract in
 * redis_tls.h). Compiled only where hiredis has TLS (hiredis >= 1.0 with
 * hiredis_ssl: cmake/EbHiredis.cmake); redis_tls_none.c stands in for it
 * elsewhere.
 *
 * OpenSSL 3 (Debian 12: 3.0, Debian 13: 3.5). Its error queue is per
 * thread and hiredis leaves it as its failed SSL_read()/SSL_write() left
 * it: eb_redis_tls_start() empties it before a session begins and
 * eb_redis_tls_diagnose() after reading it, so what it reads is the
 * failure of the connection it is asked about.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <hiredis/hiredis.h>
#include <hiredis/hiredis_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/error.h"
#include "redis/redis_tls.h"

enum { F_CA, F_CERT, F_KEY, NFILES };

static const char *const file_settings[NFILES] = {"redis.tls.ca_file", "redis.tls.cert_file",
                                                  "redis.tls.key_file"};

/* What a certificate file was when it was loaded: a change of any of these
 * (a Secret's symlink swapped to a new file, a file rewritten) reloads. */
struct file_id {
    bool known;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
};

#define NREASONS (EB_REDIS_TLS_HANDSHAKE + 1)

struct eb_redis_tls {
    SSL_CTX *ctx;
    char *files[NFILES]; /* NULL when not set */
    char *server_name;
    bool insecure;
    struct file_id ids[NFILES];
    struct file_id failed[NFILES]; /* the change last logged as not loading */
    eb_log_t *log;
    eb_series_t *failures[NREASONS];
    char out_of_date[192]; /* on_verify(): the last certificate out of its dates */
};

/* ------------------------------------------------------------------------
 * Reasons
 * --------------------------------------------------------------------- */

void eb_redis_tls_count(eb_redis_tls_t *t, enum eb_redis_tls_reason reason) {
    if (t && reason != EB_REDIS_TLS_OK && (unsigned)reason < NREASONS && t->failures[reason])
        eb_metrics_inc(t->failures[reason]);
}

/* ------------------------------------------------------------------------
 * The context: files in, SSL_CTX out
 * --------------------------------------------------------------------- */

/* OpenSSL's last words, or fallback when its queue is empty. */
static const char *ssl_words(const char *fallback) {
    unsigned long e = ERR_peek_last_error();
    const char *w = e ? ERR_reason_error_string(e) : NULL;
    return w ? w : fallback;
}

static bool file_id_of(const char *path, struct file_id *id) {
    struct stat st;
    if (stat(path, &st) != 0)
        return false;
    *id = (struct file_id){true, st.st_dev, st.st_ino, st.st_size, st.st_mtim};
    return true;
}

static bool file_id_same(const struct file_id *a, const struct file_id *b) {
    return a->known == b->known && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

/* Readable as a file: OpenSSL's own message for a missing file is "system
 * lib", which says nothing. */
static int check_readable(const char *path, int which, char *errstr, size_t errstr_size) {
    FILE *f = fopen(path, "r");
    if (!f)
        return eb_error_set(errstr, errstr_size, EB_ECONFIG, "%s '%s': cannot read it: %s",
                            file_settings[which], path, strerror(errno));
    fclose(f);
    return 0;
}

/* Its address marks a session whose server asked for a client certificate
 * (SSL_set_app_data(); hiredis uses no application data). Never written. */
static const char cert_requested = 1;

/* OpenSSL's certificate callback: on a client, called when the server's
 * CertificateRequest arrives, whether or not we have one to send. A TLS 1.3
 * server refuses a client certificate after our side of the handshake is
 * done, and its alert is often lost to the reset that follows; this mark
 * is then what tells a refused client from a vanished server.
 * @locality inside SSL_read()/SSL_write(), on the connection's thread. */
static int on_cert_request(SSL *ssl, void *arg) {
    (void)arg;
    SSL_set_app_data(ssl, (void *)&cert_requested);
    return 1;
}

/* "'CN' valid from A until B" of cert. */
static void describe_validity(X509 *cert, char *buf, size_t n) {
    buf[0] = '\0';
    char cn[96] = "";
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn));
    BIO *b = BIO_new(BIO_s_mem());
    if (b && BIO_printf(b, "'%s' valid from ", cn) > 0 &&
        ASN1_TIME_print(b, X509_get0_notBefore(cert)) == 1 && BIO_puts(b, " until ") > 0 &&
        ASN1_TIME_print(b, X509_get0_notAfter(cert)) == 1) {
        int len = BIO_read(b, buf, (int)n - 1);
        buf[len > 0 ? len : 0] = '\0';
    }
    BIO_free(b);
}

/* OpenSSL's verification callback: changes no verdict; for a certificate
 * out of its validity period, remembers which one and its dates in the
 * handle (the context's application data), for the failure's detail: the
 * session keeps no certificate it refused. The latest such failure of the
 * handle is described; its connections go to one deployment.
 * @locality inside SSL_read()/SSL_write()/SSL_connect(), on the
 * connection's thread. */
static int on_verify(int ok, X509_STORE_CTX *x) {
    int err = X509_STORE_CTX_get_error(x);
    if (ok || (err != X509_V_ERR_CERT_HAS_EXPIRED && err != X509_V_ERR_CERT_NOT_YET_VALID))
        return ok;
    SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
    eb_redis_tls_t *t = ssl ? SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)) : NULL;
    X509 *cert = X509_STORE_CTX_get_current_cert(x);
    if (t && cert)
        describe_validity(cert, t->out_of_date, sizeof(t->out_of_date));
    return ok;
}

/* A new SSL_CTX from the files, with their identities in ids[]. */
static SSL_CTX *build_ctx(const eb_redis_tls_t *t, struct file_id ids[NFILES], char *errstr,
                          size_t errstr_size) {
    for (int i = 0; i < NFILES; i++) {
        ids[i] = (struct file_id){0};
        if (t->files[i] && (check_readable(t->files[i], i, errstr, errstr_size) != 0 ||
                            !file_id_of(t->files[i], &ids[i])))
            return NULL;
    }
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "cannot create a TLS context: %s",
                     ssl_words("out of memory"));
        return NULL;
    }
    /* TLS 1.2 is the oldest Redis and Valkey speak by default. An EOF
     * without close_notify is how a Redis that exits ends its connections:
     * hiredis then says "Server closed the connection", as without TLS. */
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_verify(ctx, t->insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, on_verify);
    SSL_CTX_set_app_data(ctx, (void *)t);
    SSL_CTX_set_cert_cb(ctx, on_cert_request, NULL);
    const char *ca = t->files[F_CA], *cert = t->files[F_CERT], *key = t->files[F_KEY];
    if (ca ? SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1
           : SSL_CTX_set_default_verify_paths(ctx) != 1) {
        eb_error_set(errstr, errstr_size, EB_ECONFIG, "%s '%s': no CA certificate loaded: %s",
                     file_settings[F_CA], ca ? ca : "(the system's trust store)",
                     ssl_words("not PEM certificates"));
        goto err_free_ctx;
    }
    if (cert && SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        eb_error_set(errstr, errstr_size, EB_ECONFIG, "%s '%s': not a PEM certificate: %s",
                     file_settings[F_CERT], cert, ssl_words("unreadable"));
        goto err_free_ctx;
    }
    if (key && SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        /* Never the key's contents: only its path and OpenSSL's reason. */
        if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH)
            eb_error_set(errstr, errstr_size, EB_ECONFIG, "%s '%s' is not the key of %s '%s'",
                         file_settings[F_KEY], key, file_settings[F_CERT], cert);
        else
            eb_error_set(errstr, errstr_size, EB_ECONFIG, "%s '%s': not a PEM private key: %s",
                         file_settings[F_KEY], key, ssl_words("unreadable"));
        goto err_free_ctx;
    }
    if (cert && key && SSL_CTX_check_private_key(ctx) != 1) {
        eb_error_set(errstr, errstr_size, EB_ECONFIG, "%s '%s' is not the key of %s '%s'",
                     file_settings[F_KEY], key, file_settings[F_CERT], cert);
        goto err_free_ctx;
    }
    ERR_clear_error();
    return ctx;

err_free_ctx:
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return NULL;
}

/* A certificate file changed since it was loaded: load them all again. On
 * failure the previous context stays (connections keep working until the
 * old certificate expires) and the failure is logged once per change. */
static void reload_if_changed(eb_redis_tls_t *t) {
    bool changed = false;
    struct file_id now[NFILES] = {{0}};
    for (int i = 0; i < NFILES; i++) {
        if (t->files[i]) {
            (void)file_id_of(t->files[i], &now[i]);
            changed |= !file_id_same(&now[i], &t->ids[i]);
        }
    }
    if (!changed)
        return;
    char err[512];
    struct file_id ids[NFILES];
    SSL_CTX *ctx = build_ctx(t, ids, err, sizeof(err));
    if (!ctx) {
        bool logged = true;
        for (int i = 0; i < NFILES; i++)
            logged &= file_id_same(&now[i], &t->failed[i]);
        if (!logged)
            eb_log(t->log, EB_LOG_ERROR,
                   "redis TLS certificates changed and do not load; connecting with the "
                   "previous ones",
                   eb_lf_str("error", err), eb_lf_str("setting", "redis.tls"));
        memcpy(t->failed, now, sizeof(now));
        return;
    }
    SSL_CTX_free(t->ctx); /* sessions made from it hold their own reference */
    t->ctx = ctx;
    memcpy(t->ids, ids, sizeof(ids));
    eb_log(t->log, EB_LOG_INFO, "redis TLS certificates reloaded; new connections use them",
           eb_lf_str("ca_file", t->files[F_CA] ? t->files[F_CA] : ""),
           eb_lf_str("cert_file", t->files[F_CERT] ? t->files[F_CERT] : ""));
}

static bool register_metrics(eb_redis_tls_t *t, eb_metrics_t *m) {
    if (!m)
        return true;
    eb_metric_t *f = eb_metrics_register(
        m, EB_METRIC_COUNTER, "eb_redis_tls_failures_total",
        "TLS connections to Redis that failed, by reason: unknown_ca, name_mismatch, expired, "
        "bad_certificate, client_certificate, not_tls, handshake_timeout, handshake "
        "(docs/tls.md)",
        "reason", NULL, 0);
    if (!f)
        return false;
    for (int r = EB_REDIS_TLS_OK + 1; r < NREASONS; r++)
        t->failures[r] = eb_metrics_series(f, (const char *const[]){eb_redis_tls_reason_name((enum eb_redis_tls_reason)r)});
    return true;
}

static char *dup_or_null(const char *s, bool *oom) {
    if (!s || !*s)
        return NULL;
    char *d = strdup(s);
    *oom |= !d;
    return d;
}

eb_redis_tls_t *eb_redis_tls_new(const struct eb_redis_tls_conf *conf, char *errstr,
                                 size_t errstr_size) {
    eb_redis_tls_t *t = calloc(1, sizeof(*t));
    if (!t) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        return NULL;
    }
    bool oom = false;
    t->files[F_CA] = dup_or_null(conf->ca_file, &oom);
    t->files[F_CERT] = dup_or_null(conf->cert_file, &oom);
    t->files[F_KEY] = dup_or_null(conf->key_file, &oom);
    t->server_name = dup_or_null(conf->server_name, &oom);
    t->insecure = conf->insecure_skip_verify;
    t->log = conf->log;
    if (oom || !register_metrics(t, conf->metrics)) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        goto err_free;
    }
    if (!t->files[F_CERT] != !t->files[F_KEY]) {
        eb_error_set(errstr, errstr_size, EB_EINVAL,
                     "redis.tls: cert_file and key_file go together (both or neither)");
        goto err_free;
    }
    t->ctx = build_ctx(t, t->ids, errstr, errstr_size);
    if (!t->ctx)
        goto err_free;
    return t;

err_free:
    eb_redis_tls_destroy(t);
    return NULL;
}

void eb_redis_tls_destroy(eb_redis_tls_t *t) {
    if (!t)
        return;
    SSL_CTX_free(t->ctx);
    for (int i = 0; i < NFILES; i++)
        free(t->files[i]);
    free(t->server_name);
    free(t);
}

/* ------------------------------------------------------------------------
 * Sessions
 * --------------------------------------------------------------------- */

static bool is_ip(const char *s) {
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* The name to verify and announce: SNI for a DNS name only. */
static bool name_session(const eb_redis_tls_t *t, SSL *ssl, const char *name) {
    bool ip = is_ip(name);
    if (!ip && SSL_set_tlsext_host_name(ssl, name) != 1)
        return false;
    if (t->insecure)
        return true;
    X509_VERIFY_PARAM *p = SSL_get0_param(ssl);
    /* "*.example.com" matches "a.example.com", never "a.b.example.com" nor
     * "foo*.example.com" patterns. */
    X509_VERIFY_PARAM_set_hostflags(p, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    return ip ? X509_VERIFY_PARAM_set1_ip_asc(p, name) == 1
              : X509_VERIFY_PARAM_set1_host(p, name, 0) == 1;
}

int eb_redis_tls_start(eb_redis_tls_t *t, struct redisContext *c, const char *host,
                       struct ssl_st **out, enum eb_redis_tls_reason *reason, char *errstr,
                       size_t errstr_size) {
    *out = NULL;
    *reason = EB_REDIS_TLS_OK;
    reload_if_changed(t);
    ERR_clear_error();
    const char *name = t->server_name ? t->server_name : host;
    SSL *ssl = SSL_new(t->ctx);
    if (!ssl)
        return eb_error_set(errstr, errstr_size, EB_ENOMEM, "cannot start TLS: %s",
                            ssl_words("out of memory"));
    if (!name_session(t, ssl, name)) {
        eb_error_set(errstr, errstr_size, EB_EINVAL,
                     "cannot verify the name '%s' (redis.tls.server_name or the host): %s", name,
                     ssl_words("not a valid host name"));
        goto err_free_ssl;
    }
    /* Non-blocking: the handshake is begun and continues with the first
     * read and write. Blocking (`functions load`): it is done here. */
    if (redisInitiateSSL(c, ssl) != REDIS_OK) {
        char why[256];
        snprintf(why, sizeof(why), "%s", c->errstr[0] ? c->errstr : "TLS handshake failed");
        *reason = eb_redis_tls_diagnose(t, ssl, EB_REDIS_TLS_BEFORE_REPLY, why, sizeof(why));
        eb_error_set(errstr, errstr_size, EB_EIO, "%s", why);
        goto err_free_ssl;
    }
    *out = ssl;
    return 0;

err_free_ssl:
    /* Not taken by hiredis when it failed. */
    SSL_free(ssl);
    ERR_clear_error();
    return EB_EIO;
}

bool eb_redis_tls_handshaking(const struct ssl_st *ssl) {
    return ssl && !SSL_is_init_finished(ssl);
}

/* ------------------------------------------------------------------------
 * Diagnosis
 * --------------------------------------------------------------------- */

/* A verification result of ours (the server's certificate refused). */
static enum eb_redis_tls_reason verify_failure(const eb_redis_tls_t *t, SSL *ssl, long v,
                                               char *detail, size_t n) {
    const char *words = X509_verify_cert_error_string(v);
    switch (v) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        snprintf(detail, n, "TLS: the server's certificate is signed by an unknown CA (%s)",
                 words);
        return EB_REDIS_TLS_UNKNOWN_CA;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH: {
        const char *want = X509_VERIFY_PARAM_get0_host(SSL_get0_param(ssl), 0);
        snprintf(detail, n, "TLS: the server's certificate is not for '%s' (%s)",
                 want ? want : "this address", words);
        return EB_REDIS_TLS_NAME_MISMATCH;
    }
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID: {
        snprintf(detail, n, "TLS: %s: %s", words,
                 t->out_of_date[0] ? t->out_of_date : "the server's certificate");
        return EB_REDIS_TLS_EXPIRED;
    }
    default:
        snprintf(detail, n, "TLS: the server's certificate was refused: %s", words);
        return EB_REDIS_TLS_BAD_CERTIFICATE;
    }
}

/* An OpenSSL error of the TLS layer itself: the server's alert, or bytes
 * that are not TLS. OK when it is neither. */
static enum eb_redis_tls_reason ssl_failure(const eb_redis_tls_t *t, SSL *ssl, unsigned long e,
                                            char *detail, size_t n) {
    const char *words = ERR_reason_error_string(e);
    words = words ? words : "unknown error";
    switch (ERR_GET_REASON(e)) {
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
    case SSL_R_UNKNOWN_PROTOCOL:
    case SSL_R_HTTP_REQUEST:
    case SSL_R_RECORD_LAYER_FAILURE:
        snprintf(detail, n, "TLS: the server did not answer in TLS (%s)", words);
        return EB_REDIS_TLS_NOT_TLS;
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
        snprintf(detail, n, "TLS: the server refused %s (alert: %s)",
                 t->files[F_CERT] ? "the client certificate" : "to go on without a client certificate",
                 words);
        return EB_REDIS_TLS_CLIENT_CERTIFICATE;
    case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
        /* TLS 1.2's answer to a missing client certificate, among others:
         * the server asked for one (it named its CAs) and got none. */
        if (!t->files[F_CERT] && SSL_get_client_CA_list(ssl) &&
            sk_X509_NAME_num(SSL_get_client_CA_list(ssl)) > 0) {
            snprintf(detail, n, "TLS: the server wants a client certificate (alert: %s)", words);
            return EB_REDIS_TLS_CLIENT_CERTIFICATE;
        }
        break;
    default:
        break;
    }
    if (ERR_GET_LIB(e) != ERR_LIB_SSL || !eb_redis_tls_handshaking(ssl))
        return EB_REDIS_TLS_OK;
    snprintf(detail, n, "TLS handshake failed: %s", words);
    return EB_REDIS_TLS_HANDSHAKE;
}

/* The server asked for a client certificate, then closed the connection
 * before answering anything: it refused ours, or wanted one. */
static enum eb_redis_tls_reason refused_client(const eb_redis_tls_t *t, const char *was,
                                               char *detail, size_t n) {
    snprintf(detail, n,
             "TLS: the server asked for a client certificate and closed the connection before "
             "answering (%s): it refused %s",
             was[0] ? was : "no reason given",
             t->files[F_CERT] ? "the client certificate" : "to go on without a client certificate");
    return EB_REDIS_TLS_CLIENT_CERTIFICATE;
}

enum eb_redis_tls_reason eb_redis_tls_diagnose(eb_redis_tls_t *t, struct ssl_st *ssl,
                                               enum eb_redis_tls_stage stage, char *detail,
                                               size_t detail_size) {
    if (!ssl)
        return EB_REDIS_TLS_OK;
    /* hiredis's words for what the socket said (its strerror(errno) may
     * be a stale "Success"). */
    char was[128];
    snprintf(was, sizeof(was), "%s", strcmp(detail, strerror(0)) == 0 ? "" : detail);
    enum eb_redis_tls_reason r = EB_REDIS_TLS_OK;
    long v = SSL_get_verify_result(ssl);
    unsigned long e = ERR_peek_last_error();
    bool handshaking = eb_redis_tls_handshaking(ssl);
    bool asked = SSL_get_app_data(ssl) == &cert_requested;
    if (!t->insecure && v != X509_V_OK && handshaking)
        r = verify_failure(t, ssl, v, detail, detail_size);
    else if (e)
        r = ssl_failure(t, ssl, e, detail, detail_size);
    if (r == EB_REDIS_TLS_OK && stage != EB_REDIS_TLS_AFTER_REPLY && asked) {
        r = refused_client(t, was, detail, detail_size);
    } else if (r == EB_REDIS_TLS_OK && stage == EB_REDIS_TLS_BEFORE_REPLY && handshaking) {
        /* No words from OpenSSL: the peer closed or reset the connection
         * before the handshake was done. */
        snprintf(detail, detail_size,
                 "TLS: the server closed the connection during the handshake%s%s%s",
                 was[0] ? " (" : "", was, was[0] ? ")" : "");
        r = EB_REDIS_TLS_HANDSHAKE;
    }
    ERR_clear_error();
    eb_redis_tls_count(t, r);
    return r;
}
