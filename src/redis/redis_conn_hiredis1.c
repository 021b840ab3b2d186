/* redis_conn_hiredis1.c -- redis_conn.h for hiredis >= 1.0 (Debian 13 ships
 * 1.2): the same contract as redis_conn.c (hiredis 0.14), which CMake
 * compiles instead of this file when it finds hiredis 0.14
 * (src/CMakeLists.txt picks one by `pkg-config --modversion hiredis`).
 *
 * What differs from redis_conn.c, and why:
 *  - The connection is opened with redisAsyncConnectWithOptions(), the 1.x
 *    way. REDIS_OPT_NOAUTOFREE is deliberately NOT set: in hiredis 1.0-1.2
 *    it also silences the disconnect -- on an I/O error __redisAsyncDisconnect()
 *    only removes the libevent events; the disconnect callback and the
 *    pending reply callbacks run only from redisAsyncFree(), so a lost
 *    connection would be noticed only by our heartbeat, seconds later
 *    (tests/integration/test_redis_conn.c,
 *    test_conn_a_killed_server_is_reported_at_once, fails with it). Without it,
 *    1.x frees the context exactly as 0.14 does -- right after a failed
 *    connect callback and right after the disconnect callback -- so the
 *    freeing rules below are the same as redis_conn.c's.
 *  - No options.connect_timeout / command_timeout: the callers' libevent
 *    timers (redis_session.h) stay the one connect timeout and overdue
 *    check, identical on both hiredis versions.
 *  - The version string comes from the 1.x headers; TLS is reported
 *    available when hiredis_ssl is linked (EB_HIREDIS_SSL, set to 0 or 1
 *    by src/CMakeLists.txt), although rediss:// itself is wired later (the
 *    config check then says "not supported yet").
 *
 * Keep in sync with redis_conn.c: the struct, the three hiredis callbacks,
 * eb_redis_conn_command/auth/auth_args/alive/destroy are the same code;
 * only eb_redis_conn_new, _version and _tls_unavailable differ.
 */
#include <stdio.h>
#include <stdlib.h>

#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "core/error.h"
#include "redis/redis_argv.h"
#include "redis/redis_conn.h"

struct eb_redis_conn {
    /* The hiredis context, or NULL once hiredis freed it (failed connect,
     * disconnect) or we did (destroy). Owned by hiredis from connect on:
     * we free it only through redisAsyncFree() in eb_redis_conn_destroy(). */
    redisAsyncContext *ac;
    const struct eb_redis_conn_handlers *h; /* borrowed */
    void *opaque;                           /* borrowed */
    int depth;                              /* > 0 while one of our hiredis callbacks runs */
    bool destroying;                        /* eb_redis_conn_destroy() is freeing the context */
};

#define EB_STR2(x) #x
#define EB_STR(x)  EB_STR2(x)
#define EB_HIREDIS_VERSION EB_STR(HIREDIS_MAJOR) "." EB_STR(HIREDIS_MINOR) "." EB_STR(HIREDIS_PATCH)

const char *eb_redis_conn_version(void) {
    return EB_HIREDIS_VERSION;
}

const char *eb_redis_conn_tls_unavailable(void) {
    if (EB_HIREDIS_SSL)
        return NULL;
    return "TLS to Redis needs hiredis_ssl (libhiredis-dev of Debian 13 ships it); this build "
           "has hiredis " EB_HIREDIS_VERSION " without it";
}

static const char *ctx_err(const redisAsyncContext *ac) {
    return ac->c.err ? ac->c.errstr : "connection closed";
}

/* hiredis connect callback. On failure hiredis frees ac as soon as this
 * returns (and runs pending replies with NULL first): forget it now.
 * @locality loop thread, inside hiredis. */
static void conn_on_connect(const redisAsyncContext *ac, int status) {
    eb_redis_conn_t *c = ac->data;
    char err[128] = "";
    if (status != REDIS_OK) {
        snprintf(err, sizeof(err), "%s", ctx_err(ac));
        c->ac = NULL;
    }
    if (c->destroying)
        return;
    c->depth++;
    c->h->on_connect(c, status == REDIS_OK, err, c->opaque);
    c->depth--;
}

/* hiredis disconnect callback: the context is freed right after this
 * returns. During our own redisAsyncFree() it runs too: stay silent then.
 * @locality loop thread, inside hiredis. */
static void conn_on_disconnect(const redisAsyncContext *ac, int status) {
    eb_redis_conn_t *c = ac->data;
    char err[128];
    snprintf(err, sizeof(err), "%s", status == REDIS_OK ? "connection closed" : ctx_err(ac));
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

    /* Default options: hiredis frees the context after a failed connect and
     * after a disconnect, as 0.14 does (see the top of this file for why
     * not REDIS_OPT_NOAUTOFREE). */
    redisOptions options = {0};
    REDIS_OPTIONS_SET_TCP(&options, host, port);
    redisAsyncContext *ac = redisAsyncConnectWithOptions(&options);
    if (!ac) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        goto err_free_conn;
    }
    if (ac->err) {
        eb_error_set(errstr, errstr_size, EB_EREDIS, "connect %s:%d: %s", host, port, ac->errstr);
        goto err_free_ac;
    }
    /* Dead peers behind a NAT or a silently dropped route are caught by the
     * heartbeat too; keepalive also tells the kernel to give up on them
     * (REDIS_KEEPALIVE_INTERVAL, 15 s, as with 0.14). */
    redisEnableKeepAlive(&ac->c);
    /* TLS ENTRY POINT (not implemented yet; rediss:// is refused by the
     * config check): with hiredis_ssl, redisInitiateSSL(&ac->c, ssl_ctx)
     * goes here -- after the connect started, before attaching -- with one
     * redisSSLContext per source made by redisCreateSSLContext(). */
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

int eb_redis_conn_auth(eb_redis_conn_t *c, void *privdata, const char *username,
                       const char *password) {
    struct eb_redis_argv a;
    eb_redis_conn_auth_args(&a, username, password);
    int rc = eb_redis_conn_command(c, privdata, a.argc, a.argv, a.argvlen);
    eb_redis_argv_free(&a);
    return rc;
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
