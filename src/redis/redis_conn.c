/* redis_conn.c -- a hiredis async connection on libevent: connect, attach,
 * AUTH, keepalive, and the context freeing rules (see redis_conn.h).
 *
 * One file for hiredis 0.14 (Debian 12) and 1.x (Debian 13: 1.2): every
 * call used here has the same meaning in both. In particular the context is
 * opened with redisAsyncConnect(), which in 1.x leaves REDIS_OPT_NOAUTOFREE
 * unset: with that option 1.0-1.2 would also hold back the disconnect
 * callback and the pending replies' NULLs until the context is freed, so a
 * lost connection would only be noticed by a heartbeat, seconds later
 * (tests/integration/test_redis_conn.c,
 * test_conn_a_killed_server_is_reported_at_once, fails with it). Without
 * it, 1.x frees the context exactly when 0.14 does. What differs between
 * the versions -- TLS, with hiredis_ssl -- is told by EB_HIREDIS_SSL, a
 * constant src/CMakeLists.txt sets (cmake/EbHiredis.cmake). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "core/error.h"
#include "redis/redis_argv.h"
#include "redis/redis_conn.h"
#include "redis/redis_tls.h"

struct eb_redis_conn {
    /* The hiredis context, or NULL once hiredis freed it (failed connect,
     * disconnect) or we did (destroy). Owned by hiredis from connect on:
     * we free it only through redisAsyncFree() in eb_redis_conn_destroy(). */
    redisAsyncContext *ac;
    const struct eb_redis_conn_handlers *h; /* borrowed */
    void *opaque;                           /* borrowed */
    int depth;                              /* > 0 while one of our hiredis callbacks runs */
    bool destroying;                        /* eb_redis_conn_destroy() is freeing the context */
    /* TLS (eb_redis_conn_start_tls()): the handle (borrowed) and the
     * session, owned by hiredis and valid while ac is; why it failed. */
    eb_redis_tls_t *tls;
    struct ssl_st *ssl;
    enum eb_redis_tls_reason tls_failure;
    bool answered; /* a reply was read: TLS worked */
};

#define EB_STR2(x) #x
#define EB_STR(x)  EB_STR2(x)

const char *eb_redis_conn_version(void) {
    return EB_STR(HIREDIS_MAJOR) "." EB_STR(HIREDIS_MINOR) "." EB_STR(HIREDIS_PATCH);
}

const char *eb_redis_conn_tls_unavailable(void) {
    if (EB_HIREDIS_SSL)
        return NULL;
    return "TLS to Redis needs hiredis >= 1.0 with hiredis_ssl (Debian 13); this build has "
           "hiredis " EB_STR(HIREDIS_MAJOR) "." EB_STR(HIREDIS_MINOR) "." EB_STR(HIREDIS_PATCH)
           " without it";
}

static const char *ctx_err(const redisAsyncContext *ac) {
    return ac->c.err ? ac->c.errstr : "connection closed";
}

/* hiredis connect callback. On failure hiredis frees ac as soon as this
 * returns (and runs pending replies with NULL first): forget it now.
 * @locality loop thread, inside hiredis. */
static void conn_on_connect(const redisAsyncContext *ac, int status) {
    eb_redis_conn_t *c = ac->data;
    char err[256] = "";
    if (status != REDIS_OK) {
        /* The TCP connect, as hiredis checks it when the socket first
         * wakes: TLS may have begun by then, and may have been refused. */
        snprintf(err, sizeof(err), "%s", ctx_err(ac));
        if (c->ssl && !c->destroying)
            c->tls_failure =
                eb_redis_tls_diagnose(c->tls, c->ssl, EB_REDIS_TLS_AT_CONNECT, err, sizeof(err));
        c->ac = NULL;
        c->ssl = NULL;
    }
    if (c->destroying)
        return;
    c->depth++;
    c->h->on_connect(c, status == REDIS_OK, err, c->opaque);
    c->depth--;
}

/* hiredis disconnect callback: the context is freed right after this
 * returns. During our own redisAsyncFree() it runs too: stay silent then.
 * A TLS session is still readable here: say what failed in its words.
 * @locality loop thread, inside hiredis. */
static void conn_on_disconnect(const redisAsyncContext *ac, int status) {
    eb_redis_conn_t *c = ac->data;
    char err[256];
    snprintf(err, sizeof(err), "%s", status == REDIS_OK ? "connection closed" : ctx_err(ac));
    if (c->ssl && !c->destroying && status != REDIS_OK)
        c->tls_failure = eb_redis_tls_diagnose(
            c->tls, c->ssl, c->answered ? EB_REDIS_TLS_AFTER_REPLY : EB_REDIS_TLS_BEFORE_REPLY,
            err, sizeof(err));
    c->ssl = NULL;
    c->ac = NULL;
    if (c->destroying)
        return;
    c->depth++;
    c->h->on_disconnect(c, err, c->opaque);
    c->depth--;
}

/* hiredis reply callback for every command and pub/sub message.
 * @locality loop thread, inside hiredis. */
static void conn_on_reply(redisAsyncContext *ac, void *reply, void *privdata) {
    eb_redis_conn_t *c = ac->data;
    c->answered |= reply != NULL;
    c->depth++;
    c->h->on_reply(c, reply, privdata, c->opaque);
    c->depth--;
}

eb_redis_conn_t *eb_redis_conn_new(struct event_base *base, const char *host, int port,
                                   const struct eb_redis_conn_handlers *handlers, void *opaque,
                                   char *errstr, size_t errstr_size) {
    eb_redis_conn_t *c = calloc(1, sizeof(*c));
    if (!c) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        return NULL;
    }
    c->h = handlers;
    c->opaque = opaque;

    redisAsyncContext *ac = redisAsyncConnect(host, port);
    if (!ac) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        goto err_free_conn;
    }
    if (ac->err) {
        eb_error_set(errstr, errstr_size, EB_EREDIS, "connect %s:%d: %s", host, port, ac->errstr);
        goto err_free_ac;
    }
    /* Dead peers behind a NAT or a silently dropped route are caught by the
     * heartbeat too; keepalive also tells the kernel to give up on them. */
    redisEnableKeepAlive(&ac->c);
    ac->data = c;
    if (redisLibeventAttach(ac, base) != REDIS_OK) {
        eb_error_set(errstr, errstr_size, EB_EREDIS, "cannot attach to the event loop");
        goto err_free_ac;
    }
    redisAsyncSetConnectCallback(ac, conn_on_connect);
    redisAsyncSetDisconnectCallback(ac, conn_on_disconnect);
    c->ac = ac;
    return c;

err_free_ac:
    /* Not connected and no callbacks yet: nothing runs during this free. */
    redisAsyncFree(ac);
err_free_conn:
    free(c);
    return NULL;
}

int eb_redis_conn_start_tls(eb_redis_conn_t *c, eb_redis_tls_t *tls, const char *host,
                            char *errstr, size_t errstr_size) {
    if (!c->ac || c->ssl || !tls)
        return eb_error_set(errstr, errstr_size, EB_ESTATE, "TLS cannot start on this connection");
    int rc =
        eb_redis_tls_start(tls, &c->ac->c, host, &c->ssl, &c->tls_failure, errstr, errstr_size);
    if (rc == 0) {
        c->tls = tls;
        return 0;
    }
    /* hiredis leaves a context whose TLS failed to start with its TLS I/O
     * functions and no TLS state: the next event on it would crash inside
     * hiredis_ssl. Free it now, before the loop runs again (not
     * connected yet: no callback runs). */
    redisAsyncContext *ac = c->ac;
    c->ac = NULL;
    redisAsyncFree(ac);
    return rc;
}

enum eb_redis_tls_reason eb_redis_conn_tls_failure(const eb_redis_conn_t *c) {
    return c ? c->tls_failure : EB_REDIS_TLS_OK;
}

bool eb_redis_conn_tls_handshaking(const eb_redis_conn_t *c) {
    return c && c->ac && eb_redis_tls_handshaking(c->ssl);
}

int eb_redis_conn_command(eb_redis_conn_t *c, void *privdata, int argc, const char **argv,
                          const size_t *argvlen) {
    if (!c->ac || c->destroying)
        return EB_ESTATE;
    if (redisAsyncCommandArgv(c->ac, conn_on_reply, privdata, argc, argv, argvlen) != REDIS_OK)
        return EB_ESTATE;
    return 0;
}

void eb_redis_conn_auth_args(struct eb_redis_argv *a, const char *username, const char *password) {
    eb_redis_argv_init(a);
    eb_redis_argv_add_str(a, "AUTH");
    if (username && *username)
        eb_redis_argv_add_str(a, username);
    eb_redis_argv_add_str(a, password ? password : "");
}

/* Both blocking entry points: run cmds[0..n) (over TLS with tls); with
 * text, the string reply of the last one is copied there (NUL-terminated). */
static int run_blocking(const char *host, int port, eb_redis_tls_t *tls, int timeout_ms,
                        const struct eb_redis_argv *cmds, size_t n, size_t *failed_at,
                        char **text, size_t *text_len, char *errstr, size_t errstr_size) {
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    int rc = 0;
    *failed_at = (size_t)-1;
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    if (!c || c->err) {
        rc = eb_error_set(errstr, errstr_size, EB_EIO, "cannot connect to redis at %s:%d: %s",
                          host, port, c ? c->errstr : "out of memory");
        goto out_free;
    }
    redisSetTimeout(c, tv);
    struct ssl_st *ssl;
    enum eb_redis_tls_reason reason;
    char why[256];
    if (tls && eb_redis_tls_start(tls, c, host, &ssl, &reason, why, sizeof(why)) != 0) {
        rc = eb_error_set(errstr, errstr_size, EB_EIO, "cannot connect to redis at %s:%d: %s",
                          host, port, why);
        goto out_free;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        *failed_at = i;
        redisReply *r = redisCommandArgv(c, cmds[i].argc, cmds[i].argv, cmds[i].argvlen);
        if (!r)
            rc = eb_error_set(errstr, errstr_size, EB_EIO, "%s", c->errstr);
        else if (r->type == REDIS_REPLY_ERROR)
            rc = eb_error_set(errstr, errstr_size, EB_EREDIS, "%s", r->str);
        else if (text && i + 1 == n && r->type != REDIS_REPLY_STRING)
            rc = eb_error_set(errstr, errstr_size, EB_EPROTO, "expected a string reply");
        else if (text && i + 1 == n && !(*text = malloc(r->len + 1)))
            rc = eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        else if (text && i + 1 == n) {
            memcpy(*text, r->str, r->len);
            (*text)[r->len] = '\0';
            *text_len = r->len;
        }
        freeReplyObject(r);
    }

out_free:
    if (c)
        redisFree(c);
    return rc;
}

int eb_redis_conn_run_blocking(const char *host, int port, eb_redis_tls_t *tls, int timeout_ms,
                               const struct eb_redis_argv *cmds, size_t n, size_t *failed_at,
                               char *errstr, size_t errstr_size) {
    return run_blocking(host, port, tls, timeout_ms, cmds, n, failed_at, NULL, NULL, errstr,
                        errstr_size);
}

int eb_redis_conn_query_blocking(const char *host, int port, eb_redis_tls_t *tls,
                                 int timeout_ms, const struct eb_redis_argv *cmds, size_t n,
                                 size_t *failed_at, char **text, size_t *text_len, char *errstr,
                                 size_t errstr_size) {
    *text = NULL;
    *text_len = 0;
    return run_blocking(host, port, tls, timeout_ms, cmds, n, failed_at, text, text_len, errstr,
                        errstr_size);
}

bool eb_redis_conn_alive(const eb_redis_conn_t *c) {
    return c && c->ac && !c->destroying;
}

void eb_redis_conn_destroy(eb_redis_conn_t *c) {
    if (!c)
        return;
    if (c->depth > 0) {
        /* A programming error that would be a use-after-free inside
         * hiredis: fail loudly here instead. */
        fprintf(stderr, "eb_redis_conn_destroy() called from inside its own callback\n");
        abort();
    }
    c->destroying = true;
    if (c->ac) {
        redisAsyncContext *ac = c->ac;
        c->ac = NULL;
        /* Runs pending reply callbacks with NULL (c is still valid), then
         * the disconnect callback (silenced by c->destroying). */
        redisAsyncFree(ac);
    }
    free(c);
}
