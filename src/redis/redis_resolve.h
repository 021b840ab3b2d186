/* redis_resolve.h -- a Redis host name to a numeric address without
 * blocking the event loop.
 *
 * hiredis 0.14's redisAsyncConnect() calls getaddrinfo() on the caller's
 * thread, which for a DNS name (the Helm chart's default) is a network
 * round trip with resolv.conf's timeouts and retries: seconds on the loop
 * thread when a resolver is slow, during which nothing else runs (not
 * /healthz, not the other connections). So the bridge resolves first and
 * hands hiredis the numeric address, which getaddrinfo() answers at once.
 *
 * How: one short-lived worker thread per lookup of a name runs the C
 * library's getaddrinfo() and posts the answer to the loop through a pipe.
 * That keeps exactly the C library's semantics -- /etc/hosts, nsswitch,
 * resolv.conf's search list and ndots (what a Kubernetes service name
 * relies on), its timeouts, and re-reading resolv.conf when it changes --
 * and reads no file on the loop thread. libevent's evdns was the other
 * candidate: no threads, but it reads resolv.conf and the hosts file on
 * the loop when created, implements its own subset of their options, and
 * its cancelled requests still call back from the loop later, which makes
 * freeing a resolver with a lookup in flight leak or dangle. A worker that
 * outlives its lookup (cancelled, or the resolver destroyed) finishes
 * getaddrinfo() on its own and frees what it holds.
 *
 * A numeric address (IPv4 or IPv6) needs no lookup: it is answered without
 * a thread, through the same callback. When a name has both, the first IPv4
 * address wins (hiredis's own preference); otherwise the first IPv6 one.
 *
 * Ownership: the resolver is owned by whoever created it; a lookup belongs
 * to the resolver until its callback ran or it was cancelled. The host is
 * copied.
 *
 * @locality every function and every callback runs on the loop thread;
 * the worker threads touch only their own lookup and the shared hand-off
 * queue (under a mutex), never a caller's state.
 */
#ifndef EB_REDIS_RESOLVE_H
#define EB_REDIS_RESOLVE_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
typedef struct eb_redis_resolver eb_redis_resolver_t;
typedef struct eb_redis_lookup eb_redis_lookup_t;

/* Longest numeric address written ("ffff:...:255.255.255.255" and a NUL). */
#define EB_REDIS_ADDR_MAX 46

/* The answer to one lookup: ok with ip (a numeric address, borrowed until
 * the callback returns), or !ok with errstr (the C library's words, e.g.
 * "Name or service not known"; borrowed likewise). Called exactly once per
 * lookup that was not cancelled, from the resolver's own libevent event:
 * never from inside eb_redis_resolve(). It may start or cancel lookups; it
 * must not destroy the resolver. */
typedef void(eb_redis_resolve_cb)(bool ok, const char *ip, const char *errstr, void *opaque);

/* A resolver on base. NULL + errstr when out of memory or out of file
 * descriptors. Free with eb_redis_resolver_destroy(). */
eb_redis_resolver_t *eb_redis_resolver_new(struct event_base *base, char *errstr,
                                           size_t errstr_size);

/* Start resolving host. Returns the lookup (cancel it with
 * eb_redis_resolve_cancel() if its answer is no longer wanted) or NULL +
 * errstr when it could not be started (out of memory, no thread, too many
 * lookups of this resolver in flight); cb then never runs. opaque is
 * borrowed until the callback ran or the lookup was cancelled. */
eb_redis_lookup_t *eb_redis_resolve(eb_redis_resolver_t *r, const char *host,
                                    eb_redis_resolve_cb *cb, void *opaque, char *errstr,
                                    size_t errstr_size);

/* The callback of lk will not run. lk must be a lookup whose callback has
 * not run yet; it is invalid afterwards. NULL is a no-op. */
void eb_redis_resolve_cancel(eb_redis_lookup_t *lk);

/* True when host is a numeric IPv4 or IPv6 address (no lookup needed). */
bool eb_redis_resolve_is_numeric(const char *host);

/* Lookups of names whose worker thread has not finished yet (cancelled
 * ones included): a resolver that stalls shows here. */
size_t eb_redis_resolver_in_flight(const eb_redis_resolver_t *r);

/* NULL is a no-op. Lookups not yet answered are cancelled (their handles
 * become invalid). Leaves no event registered on the base; worker threads
 * still running finish getaddrinfo() on their own and free what they hold.
 * Not from inside one of its callbacks. */
void eb_redis_resolver_destroy(eb_redis_resolver_t *r);

#endif
