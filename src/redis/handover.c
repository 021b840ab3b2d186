/* handover.c -- see handover.h. */
#include "redis/handover.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHANNEL_PREFIX "__expiry_bridge:handover:"

struct eb_handover {
    char *node;
    size_t node_len;
    uint64_t token;
    bool subscribed; /* the current stream exists */
    bool claimed;    /* our marker was sent on it */
    bool producing;  /* the last marker on it was ours */
    bool cut;        /* another's marker ended our turn while we held the unit */
    bool releasing;
    int64_t deadline_ns;
};

size_t eb_handover_channel(const char *group, char *buf, size_t size) {
    int n = snprintf(buf, size, CHANNEL_PREFIX "%s", group ? group : "");
    return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

bool eb_handover_marker_parse(const char *payload, size_t len, uint64_t *token,
                              const char **node, size_t *node_len) {
    if (len < 18 || payload[16] != ' ')
        return false;
    uint64_t t = 0;
    for (int i = 0; i < 16; i++) {
        int d = hex_digit(payload[i]);
        if (d < 0)
            return false;
        t = t << 4 | (uint64_t)d;
    }
    *token = t;
    *node = payload + 17;
    *node_len = len - 17;
    return t != 0;
}

eb_handover_t *eb_handover_new(const char *node, uint64_t token) {
    eb_handover_t *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->node = strdup(node ? node : "");
    if (!h->node) {
        free(h);
        return NULL;
    }
    h->node_len = strlen(h->node);
    h->token = token ? token : 1;
    return h;
}

void eb_handover_destroy(eb_handover_t *h) {
    if (!h)
        return;
    free(h->node);
    free(h);
}

void eb_handover_subscribed(eb_handover_t *h) {
    h->subscribed = true;
    h->claimed = h->producing = h->cut = false;
}

void eb_handover_unsubscribed(eb_handover_t *h) {
    h->subscribed = false;
    h->claimed = h->producing = h->cut = false;
}

size_t eb_handover_claim(eb_handover_t *h, char *buf, size_t size) {
    if (!h->subscribed || (h->claimed && !h->cut) || h->releasing)
        return 0;
    int n = snprintf(buf, size, "%016" PRIx64 " %s", h->token, h->node);
    if (n <= 0 || (size_t)n >= size)
        return 0;
    h->claimed = true;
    h->cut = false;
    return (size_t)n;
}

bool eb_handover_on_marker(eb_handover_t *h, const char *payload, size_t len) {
    uint64_t token;
    const char *node;
    size_t node_len;
    if (!h->subscribed || !eb_handover_marker_parse(payload, len, &token, &node, &node_len))
        return false;
    if (node_len != h->node_len || memcmp(node, h->node, node_len) != 0)
        return false; /* another node's unit, forwarded by the Cluster */
    /* Our own marker after a release began is stale: the unit is given up. */
    bool mine = token == h->token && !h->releasing;
    /* Cut off by another replica's marker while this one still holds the
     * unit (one of the two has a stale view of the group): claim again, so
     * the two take turns until the group settles, rather than neither
     * producing. */
    if (token != h->token && h->claimed && !h->releasing)
        h->cut = true;
    else if (mine)
        h->cut = false;
    bool changed = mine != h->producing;
    h->producing = mine;
    return changed;
}

bool eb_handover_producing(const eb_handover_t *h) {
    return h->producing;
}

void eb_handover_release(eb_handover_t *h, int64_t deadline_ns) {
    if (h->releasing)
        return;
    h->releasing = true;
    h->deadline_ns = deadline_ns;
}

void eb_handover_reclaim(eb_handover_t *h) {
    if (!h->releasing)
        return;
    h->releasing = false;
    /* Producing still: our turn never ended. Not producing: claim again. */
    if (!h->producing)
        h->claimed = false;
}

bool eb_handover_released(eb_handover_t *h, int64_t now_ns) {
    if (!h->releasing)
        return false;
    if (h->producing && now_ns >= h->deadline_ns)
        h->producing = false; /* nobody took over in time: stop here */
    return !h->producing;
}
