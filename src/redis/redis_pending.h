/* redis_pending.h -- the commands a Redis client has sent and still awaits
 * a reply to, oldest first.
 *
 * hiredis answers a connection's commands in the order they were sent, and
 * each with a NULL reply when the connection is freed, so the oldest
 * command tells a dead connection (its reply long overdue) from a busy one,
 * and the queue says which requests are left to release. Each
 * redis_client.c keeps one (its only user).
 *
 * Intrusive: a request embeds struct eb_pending as its first member (so a
 * popped link converts back to the request with a cast) and is linked in
 * the queue while its reply is awaited; the queue never allocates and never
 * frees. Ownership of the request stays with the caller throughout.
 *
 * @locality no state of its own: the owner's thread (the loop thread).
 */
#ifndef EB_REDIS_PENDING_H
#define EB_REDIS_PENDING_H

#include <stdint.h>

struct eb_pending {
    struct eb_pending *next;
    int64_t sent_ns; /* monotonic, when the command was sent */
};

struct eb_pending_queue {
    struct eb_pending *head, *tail;
};

#define EB_PENDING_QUEUE_INIT                                                                      \
    { NULL, NULL }

/* Append p (borrowed while linked), sent at sent_ns. */
void eb_redis_pending_push(struct eb_pending_queue *q, struct eb_pending *p, int64_t sent_ns);

/* Unlink p, the request a reply just arrived for: in constant time when it
 * is the oldest (always, as hiredis answers in order), by a walk otherwise.
 * A p not in q is left alone. */
void eb_redis_pending_remove(struct eb_pending_queue *q, struct eb_pending *p);

/* Unlink and return the oldest request (the caller's again), or NULL. */
struct eb_pending *eb_redis_pending_pop(struct eb_pending_queue *q);

/* The oldest request when its reply is overdue: more than limit_ns have
 * passed at now_ns since the later of its sending and up_ns (when the
 * connection came up: commands queued before it waited for the connect,
 * which a connect timeout judges instead). NULL when nothing is overdue.
 * The request stays linked. */
const struct eb_pending *eb_redis_pending_overdue(const struct eb_pending_queue *q, int64_t now_ns,
                                            int64_t up_ns, int64_t limit_ns);

#endif
