/* redis_conn.h -- one hiredis async connection on a libevent base: the only
 * place that knows which hiredis version the bridge is built against.
 *
 * Everything hiredis-version-specific lives behind this header: how a
 * connection is opened and attached to libevent, how AUTH is spelled, TCP
 * keepalive, and -- the part that crashes when wrong -- who frees the
 * redisAsyncContext and when. The rest of the bridge sees an opaque handle
 * that it creates and destroys itself, whatever hiredis did underneath.
 *
 * Built for hiredis 0.14.1 (Debian 12) and 1.x (Debian 13: 1.2) from the
 * same redis_conn.c. The rules, the same in both builds, all handled here:
 *  - redisAsyncConnect() starts a non-blocking connect; "connection refused"
 *    arrives later in the connect callback, never from redisAsyncConnect().
 *    It resolves names with a blocking getaddrinfo(): redis_client.h hands
 *    it the numeric address redis_resolve.h found off the loop.
 *  - There are no async timeouts: redis_client.c runs its own libevent
 *    timers for the connect timeout (redis_session.h) and overdue replies.
 *  - hiredis frees the context itself right after a failed connect callback
 *    and right after the disconnect callback; this module forgets its
 *    pointer there (the handle stays valid, eb_redis_conn_alive() turns
 *    false, commands return EB_ESTATE).
 *  - Freeing a context from inside one of its own callbacks corrupts
 *    hiredis's iteration: eb_redis_conn_destroy() must be called only when
 *    control has returned to the event loop (it aborts otherwise).
 *  - Freeing runs every pending reply callback with reply == NULL, in order,
 *    before the context goes away.
 *  - A subscribed context runs no other commands, and PING on it never
 *    invokes its callback (the reply is swallowed): use a second connection
 *    and a heartbeat channel.
 *
 * What differs for hiredis 1.x, all in redis_conn.c and
 * redis_conn_hiredis.h:
 *  - the context is still opened with redisAsyncConnect(), which leaves
 *    REDIS_OPT_NOAUTOFREE unset, so 1.x frees it exactly when 0.14 does
 *    (redis_conn.c says why that option is not used);
 *  - TLS: hiredis_ssl, linked where found (EB_HIREDIS_SSL,
 *    cmake/EbHiredis.cmake; eb_redis_conn_tls_unavailable()):
 *    redisInitiateSSL() on &ac->c with a session made from our own OpenSSL
 *    context (redis_tls.h), right after connecting; a failed handshake
 *    arrives as a disconnect, which this module explains in TLS's words;
 *  - the loop hooks: the same five ac->ev callbacks; 1.x's sixth,
 *    scheduleTimer, stays unset because no hiredis timeout is set (the
 *    caller's timers do that work);
 *  - replies built in a pool: the same builders, with the same
 *    one-tree-at-a-time rule, plus 1.x's createDouble and createBool and
 *    its RESP3 aggregate and verbatim types, built as hiredis builds them;
 *  - PING works on a subscribed context from 1.1 and RESP3 push replies
 *    exist; the heartbeat channel keeps working, so nothing above changes.
 * The handle, its callbacks and the redisReply type stay the same, so
 * redis_source.c does not change.
 *
 * Replies are built in a pool owned by the connection, not as hiredis's
 * tree of separate allocations (nine mallocs and frees per pub/sub
 * message): hiredis holds one reply tree per reader at a time and frees
 * only its root, which rewinds the pool. A reply is therefore valid only
 * until its callback returns -- the rule callers always had -- and a reply
 * used later is reported by AddressSanitizer (the pool is poisoned when it
 * rewinds). Whichever hiredis this file is built for must keep that
 * contract; eb_redis_reader_*() below exposes the same reply builder alone,
 * so tests and the fuzz target check it against hiredis's own trees.
 *
 * Ownership: the handle is owned by whoever called eb_redis_conn_new() and
 * freed only by eb_redis_conn_destroy(). Replies passed to callbacks are
 * borrowed until the callback returns.
 *
 * @locality every function and every callback runs on the loop thread.
 */
#ifndef EB_REDIS_CONN_H
#define EB_REDIS_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "redis/redis_tls.h"

struct event_base;
struct eb_redis_argv;
struct redisReply;
typedef struct eb_redis_conn eb_redis_conn_t;

/* What a connection reports. Every callback may be invoked from inside
 * hiredis: the handle must not be destroyed there (defer it to the loop).
 * opaque is the one given to eb_redis_conn_new(). */
struct eb_redis_conn_handlers {
    /* Once: ok == true when the TCP connection is up, or ok == false with a
     * reason (errstr, borrowed) when it failed -- then the connection is
     * already dead. Never called if eb_redis_conn_new() failed. */
    void (*on_connect)(eb_redis_conn_t *c, bool ok, const char *errstr, void *opaque);
    /* At most once, after a successful connect, when the connection is
     * lost (server closed it, I/O error, protocol error such as an error
     * reply on a subscribed connection). Not called when the handle is
     * destroyed by its owner. The connection is dead when this runs. */
    void (*on_disconnect)(eb_redis_conn_t *c, const char *errstr, void *opaque);
    /* Once per command sent with eb_redis_conn_command() (privdata is the
     * command's), and for a subscribed connection once per pub/sub reply
     * (privdata is the one of the SUBSCRIBE that registered the channel).
     * reply == NULL means the connection went away before the reply came:
     * that also happens during eb_redis_conn_destroy(). */
    void (*on_reply)(eb_redis_conn_t *c, const struct redisReply *reply, void *privdata,
                     void *opaque);
};

/* Start connecting to host:port and attach to base. TCP keepalive is
 * enabled. Returns the handle (free with eb_redis_conn_destroy()) or NULL +
 * errstr when the connection could not even be started (bad address, out
 * of memory). handlers and opaque are borrowed for the handle's life. */
eb_redis_conn_t *eb_redis_conn_new(struct event_base *base, const char *host, int port,
                                   const struct eb_redis_conn_handlers *handlers, void *opaque,
                                   char *errstr, size_t errstr_size);

/* Speak TLS on c (a rediss:// URL): right after eb_redis_conn_new(), before
 * any command is queued. The handshake runs with the first writes and
 * reads; when it fails, on_connect or on_disconnect says why in TLS's
 * words (counted by tls) and eb_redis_conn_tls_failure() tells the reason
 * -- as it does when this call fails because the handshake failed at once. host is the name
 * to verify and announce (SNI), not the address connected to; tls is
 * borrowed until c is destroyed. 0; or EB_EIO + errstr when TLS failed at
 * once (then c is dead already: destroy it; no callback runs); EB_ESTATE
 * when c is dead or TLS already;
 * in a build without TLS, always an error naming the hiredis version. */
int eb_redis_conn_start_tls(eb_redis_conn_t *c, eb_redis_tls_t *tls, const char *host,
                            char *errstr, size_t errstr_size);

/* Why the TLS connection c failed, when on_connect, on_disconnect or
 * eb_redis_conn_start_tls() reported it: a TLS
 * reason, or EB_REDIS_TLS_OK when TLS was not the cause (or c has none). */
enum eb_redis_tls_reason eb_redis_conn_tls_failure(const eb_redis_conn_t *c);

/* True while c is a TLS connection whose handshake has not finished: an
 * overdue first reply then means no TLS answer. */
bool eb_redis_conn_tls_handshaking(const eb_redis_conn_t *c);

/* Queue a command (binary-safe argv; hiredis copies it). Commands may be
 * queued before the connect completes. Returns 0 (on_reply will run exactly
 * once for it, or for every channel when it is a (P)SUBSCRIBE) or EB_ESTATE
 * when the connection is dead or closing (on_reply will not run). */
int eb_redis_conn_command(eb_redis_conn_t *c, void *privdata, int argc, const char **argv,
                          const size_t *argvlen);

/* AUTH in the form the server expects, as an argument list: `AUTH user
 * pass` with an ACL user (Redis >= 6; pass may be empty for a nopass user),
 * `AUTH pass` without. username may be NULL or empty. a is initialised
 * here; the strings are borrowed; free with eb_redis_argv_free(). */
void eb_redis_conn_auth_args(struct eb_redis_argv *a, const char *username, const char *password);

/* Run cmds[0..n) in order on a blocking hiredis connection to host:port
 * (over TLS with tls, borrowed, when not NULL; timeout_ms for the connect,
 * the TLS handshake and each reply), for short-lived
 * command-line work such as `expiry-bridge functions load`; never on the
 * event loop: it blocks, name lookup included. Stops at the first error
 * reply. Returns 0; EB_EIO when Redis could not be reached or a reply did
 * not come (errstr says why, *failed_at which command, or SIZE_MAX when the
 * connection itself failed); EB_EREDIS when
 * command *failed_at answered with an error (errstr: Redis's words). */
int eb_redis_conn_run_blocking(const char *host, int port, eb_redis_tls_t *tls, int timeout_ms,
                               const struct eb_redis_argv *cmds, size_t n, size_t *failed_at,
                               char *errstr, size_t errstr_size);

/* The same, and the last command's reply, a string (CLUSTER NODES), is
 * returned in *text (NUL-terminated, *text_len bytes; owned by the caller,
 * free()); another kind of reply is EB_EPROTO. *text is NULL on failure. */
int eb_redis_conn_query_blocking(const char *host, int port, eb_redis_tls_t *tls,
                                 int timeout_ms, const struct eb_redis_argv *cmds, size_t n,
                                 size_t *failed_at, char **text, size_t *text_len, char *errstr,
                                 size_t errstr_size);

/* The same, and the last command's reply is handed to `read` (borrowed for
 * the call; on the calling thread), whose return value, 0 or an EB_* code
 * with errstr set, is returned. For replies that are not one string, such
 * as SENTINEL get-master-addr-by-name's. */
typedef int (*eb_redis_conn_read_fn)(const struct redisReply *r, void *opaque, char *errstr,
                                     size_t errstr_size);
int eb_redis_conn_ask_blocking(const char *host, int port, eb_redis_tls_t *tls, int timeout_ms,
                               const struct eb_redis_argv *cmds, size_t n, size_t *failed_at,
                               eb_redis_conn_read_fn read, void *opaque, char *errstr,
                               size_t errstr_size);

/* The hiredis version this build links, "0.14.1": static storage. */
const char *eb_redis_conn_version(void);

/* NULL when this build can speak TLS to Redis; else a sentence saying why
 * not, naming the hiredis version (static storage), for `check`. */
const char *eb_redis_conn_tls_unavailable(void);

/* A RESP reader building replies exactly as a connection's do (the pool
 * above), without a connection: for tests and tests/fuzz/fuzz_redis_reply.c.
 * Feed bytes in any split; eb_redis_reader_next() returns 0 and the next
 * complete reply in *out (NULL when none is complete yet; borrowed until
 * the next call or eb_redis_reader_free()), or EB_EREDIS on a protocol
 * error (eb_redis_reader_error() says which; the reader is then dead). */
typedef struct eb_redis_reader eb_redis_reader_t;
eb_redis_reader_t *eb_redis_reader_new(void);
int eb_redis_reader_feed(eb_redis_reader_t *rd, const void *buf, size_t len);
int eb_redis_reader_next(eb_redis_reader_t *rd, const struct redisReply **out);
const char *eb_redis_reader_error(const eb_redis_reader_t *rd);
void eb_redis_reader_free(eb_redis_reader_t *rd);

/* CLOCK_MONOTONIC (ns) when the socket read began whose bytes the reply in
 * hand came from: inside on_reply, the time the bridge read it. One clock
 * reading per read, not per reply (a 16 KB read holds ~180 pub/sub
 * messages). 0 before the first read. */
int64_t eb_redis_conn_read_ns(const eb_redis_conn_t *c);

/* True until the connection failed, was lost, or the handle is being
 * destroyed. */
bool eb_redis_conn_alive(const eb_redis_conn_t *c);

/* Close the connection now (no on_disconnect), run pending on_reply
 * callbacks with NULL, and free the handle. NULL is a no-op. Must not be
 * called from inside one of this handle's callbacks: aborts if it is. */
void eb_redis_conn_destroy(eb_redis_conn_t *c);

#endif
