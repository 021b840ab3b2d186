/* ledger_tickets.c -- the timers in the bridge's hands: a hash table keyed
 * by (ledger, db, key) from claim to acknowledgement, and the bound on how
 * many there may be (ledger_internal.h).
 *
 * The bound is what keeps the ledger's memory independent of the size of a
 * burst (DESIGN §5: what the bridge cannot hold stays in Redis). Every
 * path that creates a ticket -- a live expiry and a sweep step alike --
 * asks eb_ledger_tickets_room() first; a timer that does not fit is simply
 * not claimed, so its entry stays in the ledger, unclaimed, and the sweep
 * takes it once tickets were freed (delivered and acknowledged, or
 * dropped). To make "once" prompt rather than a sweep interval later,
 * freeing the ticket that brings the table down to half the bound starts a
 * sweep at once. Deferring costs no event: at worst lateness.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <xxhash.h>

#include "ledger/ledger_internal.h"

static uint64_t ticket_hash(const struct lstats *ls, int db, const void *key, size_t len) {
    uint64_t seed = (uint64_t)(uintptr_t)ls ^ ((uint64_t)(uint32_t)db << 32);
    return XXH3_64bits_withSeed(key, len, seed);
}

eb_ledger_ticket_t *eb_ledger_tickets_find(const eb_ledger_t *l, const struct lstats *ls, int db,
                                           const void *key, size_t len) {
    if (!l->nbuckets)
        return NULL;
    uint64_t h = ticket_hash(ls, db, key, len);
    for (eb_ledger_ticket_t *t = l->buckets[h & (l->nbuckets - 1)]; t; t = t->hnext) {
        if (t->hash == h && t->ls == ls && t->db == db && t->key_len == len &&
            memcmp(t->key, key, len) == 0)
            return t;
    }
    return NULL;
}

/* Double the table when it holds more tickets than buckets. */
static bool grow(eb_ledger_t *l) {
    size_t n = l->nbuckets ? l->nbuckets * 2 : 64;
    eb_ledger_ticket_t **b = calloc(n, sizeof(*b));
    if (!b)
        return false;
    for (size_t i = 0; i < l->nbuckets; i++) {
        eb_ledger_ticket_t *t = l->buckets[i];
        while (t) {
            eb_ledger_ticket_t *next = t->hnext;
            t->hnext = b[t->hash & (n - 1)];
            b[t->hash & (n - 1)] = t;
            t = next;
        }
    }
    free(l->buckets);
    l->buckets = b;
    l->nbuckets = n;
    return true;
}

bool eb_ledger_tickets_init(eb_ledger_t *l) {
    return grow(l);
}

eb_ledger_ticket_t *eb_ledger_tickets_new(eb_ledger_t *l, struct lstats *ls, int db,
                                          const void *key, size_t len) {
    if (l->ntickets >= l->nbuckets && !grow(l) && !l->nbuckets)
        return NULL;
    eb_ledger_ticket_t *t = calloc(1, sizeof(*t) + len + 1);
    if (!t)
        return NULL;
    t->ls = ls;
    t->db = db;
    t->key_len = len;
    memcpy(t->key, key, len);
    t->deadline_ms = -1;
    t->hash = ticket_hash(ls, db, key, len);
    eb_ledger_ticket_t **slot = &l->buckets[t->hash & (l->nbuckets - 1)];
    t->hnext = *slot;
    *slot = t;
    if (++l->ntickets > l->peak_tickets)
        l->peak_tickets = l->ntickets;
    return t;
}

void eb_ledger_tickets_free(eb_ledger_t *l, eb_ledger_ticket_t *t) {
    eb_ledger_ticket_t **pp = &l->buckets[t->hash & (l->nbuckets - 1)];
    while (*pp && *pp != t)
        pp = &(*pp)->hnext;
    if (*pp) {
        *pp = t->hnext;
        l->ntickets--;
    }
    free(t->pkey);
    free(t);
    if (l->room_wanted && l->ntickets <= l->max_tickets / 2 && !l->destroying) {
        /* Room again for what waits in Redis: sweep now, from a timer of
         * our own (this may run inside a reply callback). */
        static const struct timeval zero = {0, 0};
        l->room_wanted = false;
        evtimer_add(l->ev_room, &zero);
    }
}

bool eb_ledger_tickets_room(const eb_ledger_t *l) {
    return l->ntickets < l->max_tickets;
}

void eb_ledger_tickets_defer(eb_ledger_t *l, struct lstats *ls, const char *path) {
    l->room_wanted = true;
    l->total_deferred++;
    if (ls)
        eb_metrics_inc(ls->deferred);
    if (eb_ledger_log_allow(l, LOGSLOT_BOUND))
        eb_log(l->log, EB_LOG_WARN,
               "ledger: in-flight bound reached; expired timers stay in the Redis ledger and "
               "are swept as room frees (kafka.queue.max_events bounds it)",
               eb_lf_int("max_tickets", (int64_t)l->max_tickets),
               eb_lf_int("inflight", (int64_t)l->ntickets), eb_lf_str("path", path),
               eb_lf_int("deferred_total", (int64_t)l->total_deferred));
}

void eb_ledger_tickets_free_all(eb_ledger_t *l) {
    for (size_t b = 0; b < l->nbuckets; b++) {
        eb_ledger_ticket_t *t = l->buckets[b];
        while (t) {
            eb_ledger_ticket_t *next = t->hnext;
            free(t->pkey);
            free(t);
            t = next;
        }
        l->buckets[b] = NULL;
    }
    l->ntickets = 0;
    free(l->buckets);
    l->buckets = NULL;
    l->nbuckets = 0;
}
