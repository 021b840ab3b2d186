/* redis_conn.c -- a hiredis async connection on libevent: connect, attach
 * (our own event hooks), AUTH, keepalive, the context freeing rules, and
 * replies built in a per-connection pool (see redis_conn.h).
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
 * constant src/CMakeLists.txt sets (cmake/EbHiredis.cmake); what differs in
 * the reply builders' table (1.x reads RESP3) is redis_conn_hiredis.h's. */
#include <stdalign.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sanitizer/asan_interface.h>

#include <event2/event.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "core/clock.h"
#include "core/error.h"
#include "redis/redis_argv.h"
#include "redis/redis_conn.h"
#include "redis/redis_conn_hiredis.h"

/* ------------------------------------------------------------------------
 * Replies built in a pool
 *
 * hiredis's default reply functions make every reply a tree of separate
 * allocations: a pub/sub message ["pmessage", pattern, channel, key] is
 * nine mallocs and nine frees (four strings, four reply objects, the
 * element array), and the bridge's profile showed malloc and free as the
 * largest cost of reading Redis (docs/performance.md). These functions
 * build the same redisReply tree, field for field, in a pool owned by the
 * connection: hiredis holds at most one reply tree per reader at a time (a
 * complete reply goes to its callback and is freed before the next one is
 * parsed; a partial one waits in the reader), and it frees only roots, so
 * freeing a root rewinds the pool. Replies stay borrowed until their
 * callback returns, as they always were.
 * --------------------------------------------------------------------- */

/* The first chunk is kept from reply to reply: a pub/sub message or a
 * short command reply takes a few hundred bytes of it. A larger reply (a
 * SCAN page, INFO) chains chunks, each twice the last up to 1 MiB (fewer
 * mallocs than hiredis makes for it), freed with the reply. */
#define POOL_FIRST_CHUNK 4096
#define POOL_MAX_CHUNK   (1024 * 1024)

struct pool_chunk {
    struct pool_chunk *next;
    size_t cap, used;
    alignas(max_align_t) unsigned char data[];
};

struct reply_pool {
    struct pool_chunk *first; /* kept; NULL until the first reply */
    struct pool_chunk *cur;   /* where the next object goes */
};

/* Memory of a rewound pool is poisoned under AddressSanitizer (the macros
 * are no-ops otherwise), so a reply used after its callback returned is
 * still reported as the use-after-free it would be with hiredis's own
 * functions. */

/* Put before every root object: freeObject() is handed only the root. */
struct pool_root {
    struct reply_pool *pool;
    alignas(max_align_t) redisReply reply;
};

static void *pool_alloc(struct reply_pool *p, size_t n) {
    n = (n + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
    struct pool_chunk *c = p->cur;
    if (c && c->cap - c->used >= n) {
        void *o = c->data + c->used;
        c->used += n;
        ASAN_UNPOISON_MEMORY_REGION(o, n);
        return o;
    }
    size_t cap = !c ? POOL_FIRST_CHUNK : c->cap < POOL_MAX_CHUNK / 2 ? 2 * c->cap : POOL_MAX_CHUNK;
    if (cap < n)
        cap = n;
    if (cap > SIZE_MAX - sizeof(*c))
        return NULL;
    struct pool_chunk *nc = malloc(sizeof(*nc) + cap);
    if (!nc)
        return NULL;
    nc->next = NULL;
    nc->cap = cap;
    nc->used = n;
    ASAN_POISON_MEMORY_REGION(nc->data + n, cap - n);
    if (c)
        c->next = nc;
    else
        p->first = nc;
    p->cur = nc;
    return nc->data;
}

/* The tree was freed: rewind to an empty first chunk, free the others. */
static void pool_rewind(struct reply_pool *p) {
    if (!p->first)
        return;
    for (struct pool_chunk *c = p->first->next, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    p->first->next = NULL;
    p->first->used = 0;
    ASAN_POISON_MEMORY_REGION(p->first->data, p->first->cap);
    p->cur = p->first;
}

static void pool_free(struct reply_pool *p) {
    pool_rewind(p);
    if (p->first)
        ASAN_UNPOISON_MEMORY_REGION(p->first->data, p->first->cap);
    free(p->first);
    p->first = p->cur = NULL;
}

/* One reply object (plus extra bytes after it) in the task's pool, linked
 * into its parent array as hiredis's own functions do. The reader copies
 * its privdata, the pool, into every task. */
static redisReply *pool_reply(const redisReadTask *task, int type, size_t extra) {
    struct reply_pool *p = task->privdata;
    redisReply *r;
    if (extra > SIZE_MAX - sizeof(struct pool_root))
        return NULL;
    if (task->parent) {
        r = pool_alloc(p, sizeof(*r) + extra);
        if (!r)
            return NULL;
        redisReply *parent = task->parent->obj;
        parent->element[task->idx] = r;
    } else {
        struct pool_root *root = pool_alloc(p, sizeof(*root) + extra);
        if (!root)
            return NULL;
        root->pool = p;
        r = &root->reply;
    }
    memset(r, 0, sizeof(*r));
    r->type = type;
    return r;
}

/* A string-like reply: bulk, status, error; in 1.x also a RESP3 big
 * number, and a verbatim string, whose "txt:" prefix goes to vtype as
 * hiredis's own builder does (its reader ensures len >= 4 there). */
static void *pool_create_string(const redisReadTask *task, char *str, size_t len) {
    const char *vtype = NULL;
    if (task->type == EB_REDIS_CONN_REPLY_VERB) {
        vtype = str;
        str += 4;
        len -= 4;
    }
    if (len >= SIZE_MAX / 2)
        return NULL;
    redisReply *r = pool_reply(task, task->type, len + 1);
    if (!r)
        return NULL;
    r->str = (char *)(r + 1);
    if (len)
        memcpy(r->str, str, len);
    r->str[len] = '\0';
    r->len = len;
    if (vtype)
        EB_REDIS_CONN_SET_VTYPE(r, vtype);
    return r;
}

/* An array; in 1.x also a RESP3 map (elements counts keys and values),
 * set or push: the type is the task's, as in hiredis's own builder. */
static void *pool_create_array(const redisReadTask *task, eb_redis_conn_elements_t elements) {
    size_t n = elements > 0 ? (size_t)elements : 0;
    if (n > (SIZE_MAX / 2) / sizeof(redisReply *))
        return NULL;
    redisReply *r = pool_reply(task, task->type, n * sizeof(redisReply *));
    if (!r)
        return NULL;
    if (n) {
        r->element = (redisReply **)(r + 1);
        memset(r->element, 0, n * sizeof(redisReply *));
    }
    r->elements = n;
    return r;
}

static void *pool_create_integer(const redisReadTask *task, long long value) {
    redisReply *r = pool_reply(task, REDIS_REPLY_INTEGER, 0);
    if (r)
        r->integer = value;
    return r;
}

/* RESP3 double (1.x only): the value in dval and, as hiredis keeps it, the
 * text Redis sent in str. */
EB_REDIS_CONN_RESP3_ONLY static void *pool_create_double(const redisReadTask *task, double value,
                                                         char *str, size_t len) {
    if (len >= SIZE_MAX / 2)
        return NULL;
    redisReply *r = pool_reply(task, EB_REDIS_CONN_REPLY_DOUBLE, len + 1);
    if (!r)
        return NULL;
    EB_REDIS_CONN_SET_DVAL(r, value);
    r->str = (char *)(r + 1);
    if (len)
        memcpy(r->str, str, len);
    r->str[len] = '\0';
    r->len = len;
    return r;
}

static void *pool_create_nil(const redisReadTask *task) {
    return pool_reply(task, REDIS_REPLY_NIL, 0);
}

/* RESP3 boolean (1.x only): 0 or 1 in integer, as hiredis stores it. */
EB_REDIS_CONN_RESP3_ONLY static void *pool_create_bool(const redisReadTask *task, int value) {
    redisReply *r = pool_reply(task, EB_REDIS_CONN_REPLY_BOOL, 0);
    if (r)
        r->integer = value != 0;
    return r;
}

static void pool_free_object(void *obj) {
    struct pool_root *root =
        (struct pool_root *)((unsigned char *)obj - offsetof(struct pool_root, reply));
    pool_rewind(root->pool);
}

/* Every slot of the hiredis built against filled (redis_conn_hiredis.h:
 * a NULL slot in 1.x is not a skipped type but a bogus reply pointer).
 * Not const: the reader of both versions holds a plain pointer. */
static redisReplyObjectFunctions pool_fns =
    EB_REDIS_CONN_REPLY_FNS(pool_create_string, pool_create_array, pool_create_integer,
                            pool_create_double, pool_create_nil, pool_create_bool,
                            pool_free_object);

/* Make reader build its replies in p. */
static void pool_attach(redisReader *reader, struct reply_pool *p) {
    reader->fn = &pool_fns;
    reader->privdata = p;
}

/* ------------------------------------------------------------------------
 * A reader alone (redis_conn.h: eb_redis_reader_*), for tests and fuzzing
 * --------------------------------------------------------------------- */

struct eb_redis_reader {
    redisReader *r;
    struct reply_pool pool;
    bool holding;        /* the last reply handed out is still in the pool */
    void *holding_reply; /* that reply */
};

eb_redis_reader_t *eb_redis_reader_new(void) {
    eb_redis_reader_t *rd = calloc(1, sizeof(*rd));
    if (!rd)
        return NULL;
    rd->r = redisReaderCreate();
    if (!rd->r) {
        free(rd);
        return NULL;
    }
    pool_attach(rd->r, &rd->pool);
    return rd;
}

int eb_redis_reader_feed(eb_redis_reader_t *rd, const void *buf, size_t len) {
    return redisReaderFeed(rd->r, buf, len) == REDIS_OK ? 0 : EB_EREDIS;
}

int eb_redis_reader_next(eb_redis_reader_t *rd, const redisReply **out) {
    void *reply = NULL;
    *out = NULL;
    if (rd->holding) {
        pool_free_object(rd->holding_reply);
        rd->holding = false;
    }
    if (redisReaderGetReply(rd->r, &reply) != REDIS_OK)
        return EB_EREDIS;
    if (reply) {
        rd->holding = true;
        rd->holding_reply = reply;
    }
    *out = reply;
    return 0;
}

const char *eb_redis_reader_error(const eb_redis_reader_t *rd) {
    return rd->r->err ? rd->r->errstr : "";
}

void eb_redis_reader_free(eb_redis_reader_t *rd) {
    if (!rd)
        return;
    if (rd->holding)
        pool_free_object(rd->holding_reply);
    redisReaderFree(rd->r);
    pool_free(&rd->pool);
    free(rd);
}
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
    struct reply_pool pool;                 /* the replies of ac's reader; outlives ac */
    /* the loop hooks (attach()); both NULL once hiredis cleaned them up */
    redisAsyncContext *loop_ac; /* the context they serve (ac may be forgotten first) */
    struct event *rev, *wev;
    int64_t read_ns; /* CLOCK_MONOTONIC at the start of the latest socket read */
    /* TLS (eb_redis_conn_start_tls()): the handle (borrowed) and the
     * session, owned by hiredis and valid while ac is; why it failed. */
    eb_redis_tls_t *tls;
    struct ssl_st *ssl;
    enum eb_redis_tls_reason tls_failure;
    bool answered; /* a reply was read: TLS worked */
};

/* ------------------------------------------------------------------------
 * The loop: hiredis's five event hooks on libevent
 *
 * What hiredis's adapters/libevent.h does, with two differences: the read
 * event is persistent (hiredis re-adds it after every read; a persistent
 * event makes that a no-op instead of a delete and re-add in libevent's
 * change list), and each read is timed once, so every reply parsed from
 * its bytes is stamped without a clock read of its own
 * (eb_redis_conn_read_ns(); at a burst's 180 messages per 16 KB read that
 * was one clock read per message, docs/performance.md).
 *
 * hiredis 1.x adds a sixth hook, scheduleTimer, which the adapter uses to
 * enforce redisOptions' connect_timeout and command_timeout. It stays
 * NULL here, and that loses nothing: redisAsyncConnect() sets neither
 * timeout, and 1.x calls the hook only when one is set (async_private.h,
 * refreshTimeout()); the caller's own libevent timers time the connect and
 * overdue replies (redis_conn.h). Whoever sets a hiredis timeout must add
 * the hook, calling redisAsyncHandleTimeout(), or it never fires.
 *
 * TLS (hiredis_ssl, 1.x) goes through the same hooks: after
 * redisInitiateSSLWithContext() on &ac->c, redisAsyncHandleRead/Write()
 * call hiredis's SSL read and write functions instead of the plain ones
 * (1.2's ssl.c, redisContextSSLFuncs), and those ask for reads and writes
 * through ac->ev like the plain ones do.
 * --------------------------------------------------------------------- */

/* @locality loop thread. */
static void ev_read(evutil_socket_t fd, short what, void *arg) {
    eb_redis_conn_t *c = arg;
    c->read_ns = eb_mono_ns();
    redisAsyncHandleRead(c->loop_ac);
}

/* @locality loop thread. */
static void ev_write(evutil_socket_t fd, short what, void *arg) {
    eb_redis_conn_t *c = arg;
    redisAsyncHandleWrite(c->loop_ac);
}

static void ev_add_read(void *p) {
    eb_redis_conn_t *c = p;
    event_add(c->rev, NULL);
}

static void ev_del_read(void *p) {
    eb_redis_conn_t *c = p;
    event_del(c->rev);
}

static void ev_add_write(void *p) {
    eb_redis_conn_t *c = p;
    event_add(c->wev, NULL);
}

static void ev_del_write(void *p) {
    eb_redis_conn_t *c = p;
    event_del(c->wev);
}

/* hiredis is freeing the context (possibly from inside ev_read). */
static void ev_cleanup(void *p) {
    eb_redis_conn_t *c = p;
    event_free(c->rev);
    event_free(c->wev);
    c->rev = c->wev = NULL;
    c->loop_ac = NULL;
}

/* Hook ac to base. Both events armed at once, as hiredis's adapter does:
 * the connect completes on the first of them. */
static bool attach(eb_redis_conn_t *c, redisAsyncContext *ac, struct event_base *base) {
    c->rev = event_new(base, ac->c.fd, EV_READ | EV_PERSIST, ev_read, c);
    c->wev = event_new(base, ac->c.fd, EV_WRITE, ev_write, c);
    if (!c->rev || !c->wev) {
        if (c->rev)
            event_free(c->rev);
        if (c->wev)
            event_free(c->wev);
        c->rev = c->wev = NULL;
        return false;
    }
    c->loop_ac = ac;
    ac->ev.data = c;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    event_add(c->rev, NULL);
    event_add(c->wev, NULL);
    return true;
}

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
    pool_attach(ac->c.reader, &c->pool);
    ac->data = c;
    if (!attach(c, ac, base)) {
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
    pool_free(&c->pool);
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
                        eb_redis_conn_read_fn read, void *opaque, char *errstr,
                        size_t errstr_size) {
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
        else if (read && i + 1 == n)
            rc = read(r, opaque, errstr, errstr_size);
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

int eb_redis_conn_ask_blocking(const char *host, int port, eb_redis_tls_t *tls, int timeout_ms,
                               const struct eb_redis_argv *cmds, size_t n, size_t *failed_at,
                               eb_redis_conn_read_fn read, void *opaque, char *errstr,
                               size_t errstr_size) {
    return run_blocking(host, port, tls, timeout_ms, cmds, n, failed_at, read, opaque, errstr,
                        errstr_size);
}

struct text_out {
    char **text;
    size_t *len;
};

static int read_text(const redisReply *r, void *opaque, char *errstr, size_t errstr_size) {
    struct text_out *o = opaque;
    if (r->type != REDIS_REPLY_STRING)
        return eb_error_set(errstr, errstr_size, EB_EPROTO, "expected a string reply");
    if (!(*o->text = malloc(r->len + 1)))
        return eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
    memcpy(*o->text, r->str, r->len);
    (*o->text)[r->len] = '\0';
    *o->len = r->len;
    return 0;
}

int eb_redis_conn_query_blocking(const char *host, int port, eb_redis_tls_t *tls,
                                 int timeout_ms, const struct eb_redis_argv *cmds, size_t n,
                                 size_t *failed_at, char **text, size_t *text_len, char *errstr,
                                 size_t errstr_size) {
    *text = NULL;
    *text_len = 0;
    struct text_out o = {text, text_len};
    return run_blocking(host, port, tls, timeout_ms, cmds, n, failed_at, read_text, &o, errstr,
                        errstr_size);
}

int64_t eb_redis_conn_read_ns(const eb_redis_conn_t *c) {
    return c->read_ns;
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
    pool_free(&c->pool);
    free(c);
}
