/* plugin_held.c -- plugin_held.h: an open-addressing hash set of timer
 * identities (64-bit XXH3 of route, db, key and deadline: a collision
 * would merge two timers in a gauge, at odds of 2^-64), with a count per
 * route.
 *
 * Removal marks a slot as a tombstone; expire() rebuilds the table, which
 * also clears tombstones, so probes stay short.
 */
#include <stdlib.h>
#include <string.h>

/* XXH3's streaming state on the stack: a key of any length, no copy. */
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "plugin/plugin_held.h"

/* Slot ids: 0 empty, 1 a removed entry; a hash that lands there is moved
 * up by 2. */
#define SLOT_EMPTY 0
#define SLOT_TOMB  1
/* The table starts small (most bridges never hold a timer) and doubles
 * while at most half full, up to twice the tracking limit. */
#define CAP_MIN 64
#define CAP_MAX (2 * EB_PLUGIN_HELD_MAX)
/* expire() rebuilds the table at most this often. */
#define EXPIRE_EVERY_NS 1000000000LL

struct route {
    struct route *next;
    char *name;
    size_t n;           /* timers held */
    eb_series_t *gauge; /* NULL without metrics */
};

struct slot {
    uint64_t id;
    struct route *r;
    int64_t last_ns; /* the latest failure */
};

struct eb_plugin_held {
    eb_metric_t *family;
    struct route *routes; /* every route seen, kept for the set's life */
    struct slot *slots;
    size_t cap;  /* power of two, 0 before the first failure */
    size_t n;    /* live entries */
    size_t used; /* live entries and tombstones */
    int64_t next_expire_ns;
};

static void gauge_set(const struct route *r) {
    if (r->gauge)
        eb_metrics_set(r->gauge, (double)r->n);
}

eb_plugin_held_t *eb_plugin_held_new(eb_metrics_t *metrics) {
    eb_plugin_held_t *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    if (metrics) {
        h->family = eb_metrics_register(
            metrics, EB_METRIC_GAUGE, "eb_plugin_held_timers",
            "Ledgered timers a plugin of the route failed (route without a dead_letter "
            "topic): kept in the ledger and retried each time their claim runs out.",
            "route", NULL, 0);
        if (!h->family) {
            free(h);
            return NULL;
        }
    }
    return h;
}

void eb_plugin_held_destroy(eb_plugin_held_t *h) {
    if (!h)
        return;
    while (h->routes) {
        struct route *r = h->routes;
        h->routes = r->next;
        free(r->name);
        free(r);
    }
    free(h->slots);
    free(h);
}

static uint64_t timer_id(const struct eb_plugin_timer *t) {
    XXH3_state_t st;
    int64_t db = t->db;
    uint64_t klen = t->key_len;
    XXH3_64bits_reset(&st);
    XXH3_64bits_update(&st, t->route, strlen(t->route) + 1);
    XXH3_64bits_update(&st, &db, sizeof(db));
    XXH3_64bits_update(&st, &klen, sizeof(klen));
    XXH3_64bits_update(&st, t->key, t->key_len);
    XXH3_64bits_update(&st, &t->deadline_ms, sizeof(t->deadline_ms));
    uint64_t id = XXH3_64bits_digest(&st);
    return id <= SLOT_TOMB ? id + 2 : id;
}

/* The slot holding id, or NULL. */
static struct slot *slot_find(const eb_plugin_held_t *h, uint64_t id) {
    if (!h->cap)
        return NULL;
    size_t mask = h->cap - 1;
    for (size_t i = (size_t)id & mask;; i = (i + 1) & mask) {
        if (h->slots[i].id == id)
            return &h->slots[i];
        if (h->slots[i].id == SLOT_EMPTY)
            return NULL;
    }
}

/* Where id goes in slots (cap entries, at most half full): the first
 * tombstone or empty slot of its probe. */
static struct slot *slot_free(struct slot *slots, size_t cap, uint64_t id) {
    size_t mask = cap - 1;
    for (size_t i = (size_t)id & mask;; i = (i + 1) & mask) {
        if (slots[i].id <= SLOT_TOMB)
            return &slots[i];
    }
}

/* Rebuild the table with cap slots, keeping the live entries that pass
 * keep (all of them when now_ns < 0). false when out of memory (the table
 * is unchanged). */
static bool rebuild(eb_plugin_held_t *h, size_t cap, int64_t now_ns, int64_t forget_after_ns) {
    struct slot *slots = calloc(cap, sizeof(*slots));
    if (!slots)
        return false;
    size_t n = 0;
    for (size_t i = 0; i < h->cap; i++) {
        struct slot *s = &h->slots[i];
        if (s->id <= SLOT_TOMB)
            continue;
        if (now_ns >= 0 && now_ns - s->last_ns > forget_after_ns) {
            s->r->n--;
            gauge_set(s->r);
            continue;
        }
        *slot_free(slots, cap, s->id) = *s;
        n++;
    }
    free(h->slots);
    h->slots = slots;
    h->cap = cap;
    h->n = h->used = n;
    return true;
}

static struct route *route_get(eb_plugin_held_t *h, const char *name) {
    for (struct route *r = h->routes; r; r = r->next) {
        if (strcmp(r->name, name) == 0)
            return r;
    }
    struct route *r = calloc(1, sizeof(*r));
    if (!r || !(r->name = strdup(name))) {
        free(r);
        return NULL;
    }
    if (h->family) {
        const char *lab[] = {name};
        r->gauge = eb_metrics_series(h->family, lab);
    }
    r->next = h->routes;
    h->routes = r;
    return r;
}

size_t eb_plugin_held_fail(eb_plugin_held_t *h, const struct eb_plugin_timer *t, int64_t now_ns,
                           bool *untracked) {
    uint64_t id = timer_id(t);
    struct route *r = route_get(h, t->route);
    struct slot *s = slot_find(h, id);
    bool lost = false;
    if (untracked)
        *untracked = false;
    if (!r)
        lost = true;
    else if (s)
        s->last_ns = now_ns;
    else if (h->n >= EB_PLUGIN_HELD_MAX)
        lost = true;
    else if ((h->used + 1) * 2 > h->cap &&
             !rebuild(h, h->cap == 0               ? CAP_MIN
                         : (h->n + 1) * 2 > h->cap ? h->cap * 2
                                                   : h->cap,
                      -1, 0))
        lost = true;
    if (lost) {
        if (untracked)
            *untracked = true;
        return r ? r->n + 1 : 1;
    }
    if (!s) {
        s = slot_free(h->slots, h->cap, id);
        h->used += s->id == SLOT_EMPTY;
        *s = (struct slot){.id = id, .r = r, .last_ns = now_ns};
        h->n++;
        r->n++;
        gauge_set(r);
    }
    return r->n;
}

void eb_plugin_held_release(eb_plugin_held_t *h, const struct eb_plugin_timer *t) {
    if (!h->n)
        return;
    struct slot *s = slot_find(h, timer_id(t));
    if (!s)
        return;
    s->r->n--;
    gauge_set(s->r);
    s->id = SLOT_TOMB;
    s->r = NULL;
    h->n--;
}

void eb_plugin_held_expire(eb_plugin_held_t *h, int64_t now_ns, int64_t forget_after_ns) {
    if (!h->n || now_ns < h->next_expire_ns)
        return;
    h->next_expire_ns = now_ns + EXPIRE_EVERY_NS;
    rebuild(h, h->cap, now_ns, forget_after_ns);
}

size_t eb_plugin_held_count(const eb_plugin_held_t *h) {
    return h->n;
}
