/* redis_pending.c -- a FIFO of the requests awaiting a Redis reply
 * (contract in redis_pending.h). */
#include <stddef.h>

#include "redis/redis_pending.h"

void eb_redis_pending_push(struct eb_pending_queue *q, struct eb_pending *p, int64_t sent_ns) {
    p->next = NULL;
    p->sent_ns = sent_ns;
    if (q->tail)
        q->tail->next = p;
    else
        q->head = p;
    q->tail = p;
}

void eb_redis_pending_remove(struct eb_pending_queue *q, struct eb_pending *p) {
    struct eb_pending **pp = &q->head, *prev = NULL;
    while (*pp && *pp != p) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (!*pp)
        return;
    *pp = p->next;
    if (q->tail == p)
        q->tail = prev;
    p->next = NULL;
}

struct eb_pending *eb_redis_pending_pop(struct eb_pending_queue *q) {
    struct eb_pending *p = q->head;
    if (p)
        eb_redis_pending_remove(q, p);
    return p;
}

const struct eb_pending *eb_redis_pending_overdue(const struct eb_pending_queue *q, int64_t now_ns,
                                            int64_t up_ns, int64_t limit_ns) {
    if (!q->head)
        return NULL;
    int64_t since = q->head->sent_ns > up_ns ? q->head->sent_ns : up_ns;
    return now_ns - since > limit_ns ? q->head : NULL;
}
