/* cluster_map.c -- a Redis Cluster's masters and slots from CLUSTER SHARDS or
 * CLUSTER NODES, and where a redirection error points (contract in
 * cluster_map.h).
 *
 * Both parsers build the same thing through one builder: add a master (or
 * count a replica), give it slot ranges, then finish (order the masters,
 * fill the slot table). So what a map means does not depend on which
 * command it came from. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/keyslot.h"
#include "redis/cluster_map.h"
#include "redis/redis_reply.h"

/* More masters than this is not a cluster we can subscribe to in one
 * process (each costs two connections); Redis itself suggests <= 1000
 * nodes. */
#define MAX_MASTERS 1000

/* ------------------------------------------------------------------------
 * The builder
 * --------------------------------------------------------------------- */

struct build {
    struct eb_cluster_map *m;
    size_t cap;
    const struct eb_cluster_source *src;
    char *errstr;
    size_t errstr_size;
    /* replicas seen before their master: (master id) to count at finish */
    char (*orphans)[EB_CLUSTER_ID_LEN + 1];
    size_t norphans, orphans_cap;
    int lowest[MAX_MASTERS]; /* per master index: its lowest slot, or 16384 */
};

__attribute__((format(printf, 2, 3))) static int fail(struct build *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (b->errstr_size)
        vsnprintf(b->errstr, b->errstr_size, fmt, ap);
    va_end(ap);
    return EB_EPROTO;
}

static bool id_ok(const char *s, size_t n) {
    if (n != EB_CLUSTER_ID_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

/* The address to connect to: the announced one unless it is unknown. */
static char *pick_host(const struct build *b, const char *host, size_t n) {
    if (n == 0 || (n == 1 && host[0] == '?'))
        return strdup(b->src->host);
    return strndup(host, n);
}

static int add_master(struct build *b, const char *id, const char *host, size_t hlen, int port,
                      bool failed, struct eb_cluster_master **out) {
    struct eb_cluster_map *m = b->m;
    int dup = eb_cluster_map_find(m, id);
    if (dup >= 0) {
        *out = &m->masters[dup];
        return 0; /* one master listed twice (CLUSTER SHARDS during a failover) */
    }
    if (m->nmasters == MAX_MASTERS)
        return fail(b, "the cluster lists more than %s masters", "1000");
    if (m->nmasters == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 8;
        void *p = realloc(m->masters, cap * sizeof(*m->masters));
        if (!p)
            return EB_ENOMEM;
        m->masters = p;
        b->cap = cap;
    }
    struct eb_cluster_master *ms = &m->masters[m->nmasters];
    memset(ms, 0, sizeof(*ms));
    memcpy(ms->id, id, EB_CLUSTER_ID_LEN);
    ms->host = pick_host(b, host, hlen);
    if (!ms->host)
        return EB_ENOMEM;
    ms->port = port > 0 ? port : b->src->port;
    ms->failed = failed;
    b->lowest[m->nmasters] = EB_KEYSLOT_COUNT;
    m->nmasters++;
    *out = ms;
    return 0;
}

static int add_orphan(struct build *b, const char *master_id) {
    if (b->norphans == b->orphans_cap) {
        size_t cap = b->orphans_cap ? b->orphans_cap * 2 : 8;
        void *p = realloc(b->orphans, cap * sizeof(*b->orphans));
        if (!p)
            return EB_ENOMEM;
        b->orphans = p;
        b->orphans_cap = cap;
    }
    memcpy(b->orphans[b->norphans], master_id, EB_CLUSTER_ID_LEN + 1);
    b->norphans++;
    return 0;
}

/* Slots lo..hi (inclusive) are served by master index i. One node's view
 * of the cluster gives each slot one owner; a reply where two masters claim
 * the same slot is corrupt, and guessing which one serves it would route
 * that slot's expiries to a subscriber that never hears them. */
static int add_range(struct build *b, size_t i, long lo, long hi) {
    if (lo < 0 || hi < lo || hi >= EB_KEYSLOT_COUNT)
        return fail(b, "a slot range is out of 0..16383 (%s)", "CLUSTER reply");
    for (long s = lo; s <= hi; s++) {
        uint16_t prev = b->m->owner[s];
        if (prev != 0 && prev != i + 1)
            return fail(b, "slot %ld is claimed by two masters (%s and %s)", s,
                        b->m->masters[prev - 1].id, b->m->masters[i].id);
        if (prev == 0)
            b->m->masters[i].nslots++;
        b->m->owner[s] = (uint16_t)(i + 1);
    }
    if (lo < b->lowest[i])
        b->lowest[i] = (int)lo;
    return 0;
}

/* Order of two masters: by lowest slot, then id (slotless ones last). */
static bool before(const struct build *b, size_t i, size_t j) {
    int x = b->lowest[i], y = b->lowest[j];
    if (x != y)
        return x < y;
    return strcmp(b->m->masters[i].id, b->m->masters[j].id) < 0;
}

/* A failed master that serves no slot was replaced (its replica took its
 * slots) or emptied: nothing will ever be announced from it, and waiting
 * to subscribe to it would hold readiness back forever. Forget it. Runs
 * before the slot table is renumbered, so indexes still match owner[]. */
static void drop_dead(struct build *b) {
    struct eb_cluster_map *m = b->m;
    size_t w = 0;
    uint16_t renum[MAX_MASTERS + 1];
    renum[0] = 0;
    for (size_t i = 0; i < m->nmasters; i++) {
        if (m->masters[i].failed && m->masters[i].nslots == 0) {
            free(m->masters[i].host);
            renum[i + 1] = 0;
            continue;
        }
        m->masters[w] = m->masters[i];
        b->lowest[w] = b->lowest[i];
        renum[i + 1] = (uint16_t)(w + 1);
        w++;
    }
    if (w == m->nmasters)
        return;
    m->nmasters = w;
    for (size_t s = 0; s < EB_KEYSLOT_COUNT; s++)
        m->owner[s] = renum[m->owner[s]];
}

/* Order masters by their lowest slot (stable across reads of an unchanged
 * cluster, which keeps logs and metrics readable), renumber the slot
 * table, and count replicas that came before their master. */
static int finish(struct build *b) {
    struct eb_cluster_map *m = b->m;
    drop_dead(b);
    size_t n = m->nmasters;
    size_t *order = malloc(n * sizeof(*order));
    uint16_t *renum = malloc((n + 1) * sizeof(*renum));
    struct eb_cluster_master *sorted = malloc(n * sizeof(*sorted));
    if (!order || !renum || !sorted) {
        free(order);
        free(renum);
        free(sorted);
        return EB_ENOMEM;
    }
    /* insertion sort: n is a handful of masters */
    for (size_t i = 0; i < n; i++) {
        size_t j = i;
        while (j > 0 && before(b, i, order[j - 1])) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    renum[0] = 0;
    for (size_t i = 0; i < n; i++) {
        sorted[i] = m->masters[order[i]];
        renum[order[i] + 1] = (uint16_t)(i + 1);
    }
    memcpy(m->masters, sorted, n * sizeof(*sorted));
    for (size_t s = 0; s < EB_KEYSLOT_COUNT; s++)
        m->owner[s] = renum[m->owner[s]];
    for (size_t i = 0; i < b->norphans; i++) {
        int k = eb_cluster_map_find(m, b->orphans[i]);
        if (k >= 0)
            m->masters[k].nreplicas++;
    }
    free(order);
    free(renum);
    free(sorted);
    return 0;
}

static int build_begin(struct build *b, const struct eb_cluster_source *src, char *errstr,
                       size_t errstr_size) {
    memset(b, 0, sizeof(*b));
    b->src = src;
    b->errstr = errstr;
    b->errstr_size = errstr_size;
    if (errstr_size)
        errstr[0] = '\0';
    b->m = calloc(1, sizeof(*b->m));
    return b->m ? 0 : EB_ENOMEM;
}

static int build_end(struct build *b, int rc, struct eb_cluster_map **out) {
    if (rc == 0 && b->m->nmasters == 0)
        rc = fail(b, "the cluster lists no master (%s)", "is cluster mode set up?");
    if (rc == 0)
        rc = finish(b);
    free(b->orphans);
    if (rc != 0) {
        if (rc == EB_ENOMEM)
            snprintf(b->errstr, b->errstr_size, "out of memory");
        eb_cluster_map_free(b->m);
        *out = NULL;
        return rc;
    }
    *out = b->m;
    return 0;
}

/* ------------------------------------------------------------------------
 * CLUSTER SHARDS
 * --------------------------------------------------------------------- */

/* The value of field `name` in a flat field/value list, or NULL. */
static const redisReply *field(const redisReply *r, const char *name) {
    size_t n = strlen(name);
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        if (eb_redis_reply_is(r->element[i], name, n))
            return r->element[i + 1];
    }
    return NULL;
}

static bool text_of(const redisReply *r, const char **s, size_t *n) {
    if (!r || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS))
        return false;
    *s = r->str;
    *n = r->len;
    return true;
}

static long int_of(const redisReply *r) {
    long long v;
    return r && eb_redis_reply_int(r, &v) ? (long)v : -1;
}

/* One node of a shard; *master receives it when it is the master. */
static int shard_node(struct build *b, const redisReply *node, const char **master_id,
                      struct eb_cluster_master **master) {
    const char *id, *role, *host = "", *health = "online";
    size_t idn, rolen, hostn = 0, healthn = 6;
    if (node->type != REDIS_REPLY_ARRAY || !text_of(field(node, "id"), &id, &idn) ||
        !id_ok(id, idn) || !text_of(field(node, "role"), &role, &rolen))
        return fail(b, "a node of CLUSTER SHARDS lacks %s", "an id or a role");
    if (!text_of(field(node, "endpoint"), &host, &hostn) || hostn == 0)
        text_of(field(node, "ip"), &host, &hostn);
    text_of(field(node, "health"), &health, &healthn);
    long port = b->src->tls && field(node, "tls-port") ? int_of(field(node, "tls-port"))
                                                       : int_of(field(node, "port"));
    if (port < 0 || port > 65535)
        port = 0;
    bool online = healthn == 6 && memcmp(health, "online", 6) == 0;
    if (rolen == 6 && memcmp(role, "master", 6) == 0) {
        char idz[EB_CLUSTER_ID_LEN + 1];
        memcpy(idz, id, EB_CLUSTER_ID_LEN);
        idz[EB_CLUSTER_ID_LEN] = '\0';
        *master_id = id;
        return add_master(b, idz, host, hostn, (int)port, !online, master);
    }
    return 0; /* a replica: counted against the shard's master below */
}

static int shard(struct build *b, const redisReply *sh) {
    if (sh->type != REDIS_REPLY_ARRAY)
        return fail(b, "a shard of CLUSTER SHARDS is not %s", "a list");
    const redisReply *slots = field(sh, "slots"), *nodes = field(sh, "nodes");
    if (!slots || !nodes || slots->type != REDIS_REPLY_ARRAY || nodes->type != REDIS_REPLY_ARRAY ||
        slots->elements % 2 != 0)
        return fail(b, "a shard of CLUSTER SHARDS lacks %s", "slots or nodes");
    const char *mid = NULL;
    struct eb_cluster_master *ms = NULL;
    size_t replicas = 0;
    for (size_t i = 0; i < nodes->elements; i++) {
        const char *before = mid;
        int rc = shard_node(b, nodes->element[i], &mid, &ms);
        if (rc)
            return rc;
        if (mid == before)
            replicas++;
    }
    if (!ms)
        return 0; /* a shard whose master is gone and not replaced: its slots stay unserved */
    ms->nreplicas += replicas;
    size_t idx = (size_t)(ms - b->m->masters);
    for (size_t i = 0; i < slots->elements; i += 2) {
        int rc = add_range(b, idx, int_of(slots->element[i]), int_of(slots->element[i + 1]));
        if (rc)
            return rc;
    }
    return 0;
}

int eb_cluster_map_from_shards(const redisReply *r, const struct eb_cluster_source *src,
                               struct eb_cluster_map **out, char *errstr, size_t errstr_size) {
    struct build b;
    int rc = build_begin(&b, src, errstr, errstr_size);
    if (rc == 0 && (!r || r->type != REDIS_REPLY_ARRAY))
        rc = fail(&b, "CLUSTER SHARDS did not answer with %s", "a list of shards");
    for (size_t i = 0; rc == 0 && i < r->elements; i++)
        rc = shard(&b, r->element[i]);
    return build_end(&b, rc, out);
}

/* ------------------------------------------------------------------------
 * CLUSTER NODES
 * --------------------------------------------------------------------- */

/* The next space-separated field of [*p, end), or false at the end. */
static bool next_word(const char **p, const char *end, const char **w, size_t *n) {
    const char *s = *p;
    while (s < end && *s == ' ')
        s++;
    if (s == end)
        return false;
    const char *e = memchr(s, ' ', (size_t)(end - s));
    if (!e)
        e = end;
    *w = s;
    *n = (size_t)(e - s);
    *p = e;
    return true;
}

static bool has_flag(const char *flags, size_t n, const char *flag) {
    size_t fl = strlen(flag);
    const char *p = flags, *end = flags + n;
    while (p < end) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        const char *e = c ? c : end;
        if ((size_t)(e - p) == fl && memcmp(p, flag, fl) == 0)
            return true;
        p = e + 1;
    }
    return false;
}

static long parse_long(const char *s, size_t n) {
    long v = 0;
    if (n == 0 || n > 9)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* "ip:port@cport[,hostname]" -> host, port. The IPv6 address keeps its
 * colons: the port is after the last one before '@'. */
static bool split_addr(const char *a, size_t n, const char **host, size_t *hlen, long *port) {
    const char *at = memchr(a, '@', n);
    size_t upto = at ? (size_t)(at - a) : n;
    const char *colon = NULL;
    for (size_t i = 0; i < upto; i++) {
        if (a[i] == ':')
            colon = a + i;
    }
    if (!colon)
        return false;
    *host = a;
    *hlen = (size_t)(colon - a);
    *port = parse_long(colon + 1, (size_t)(a + upto - colon - 1));
    return *port >= 0 && *port <= 65535;
}

/* One slot field: "lo-hi", "slot", or a migration marker "[slot->-id]" /
 * "[slot-<-id]" (ignored: the owner is the node listing it plainly). */
static int node_slots(struct build *b, size_t idx, const char *w, size_t n) {
    if (n && w[0] == '[')
        return 0;
    const char *dash = memchr(w, '-', n);
    long lo = parse_long(w, dash ? (size_t)(dash - w) : n);
    long hi = dash ? parse_long(dash + 1, n - (size_t)(dash - w) - 1) : lo;
    return add_range(b, idx, lo, hi);
}

static int node_line(struct build *b, const char *p, const char *end) {
    const char *id, *addr, *flags, *master;
    size_t idn, addrn, flagsn, mastern;
    if (!next_word(&p, end, &id, &idn))
        return 0; /* blank line */
    if (!id_ok(id, idn) || !next_word(&p, end, &addr, &addrn) ||
        !next_word(&p, end, &flags, &flagsn) || !next_word(&p, end, &master, &mastern))
        return fail(b, "a line of CLUSTER NODES is not %s", "id addr flags master ...");
    for (int skip = 0; skip < 4; skip++) { /* ping-sent pong-recv config-epoch link-state */
        const char *w;
        size_t wn;
        if (!next_word(&p, end, &w, &wn))
            return fail(b, "a line of CLUSTER NODES is %s", "cut short");
    }
    if (has_flag(flags, flagsn, "noaddr") || has_flag(flags, flagsn, "handshake"))
        return 0; /* not a usable node yet, or any more */
    char idz[EB_CLUSTER_ID_LEN + 1];
    memcpy(idz, id, EB_CLUSTER_ID_LEN);
    idz[EB_CLUSTER_ID_LEN] = '\0';
    if (!has_flag(flags, flagsn, "master")) {
        if (mastern != EB_CLUSTER_ID_LEN || !id_ok(master, mastern))
            return 0;
        char mz[EB_CLUSTER_ID_LEN + 1];
        memcpy(mz, master, EB_CLUSTER_ID_LEN);
        mz[EB_CLUSTER_ID_LEN] = '\0';
        return add_orphan(b, mz);
    }
    const char *host;
    size_t hlen;
    long port;
    if (!split_addr(addr, addrn, &host, &hlen, &port))
        return fail(b, "a node address of CLUSTER NODES is not %s", "ip:port@cport");
    bool failed = has_flag(flags, flagsn, "fail") || has_flag(flags, flagsn, "fail?");
    struct eb_cluster_master *ms;
    int rc = add_master(b, idz, host, hlen, (int)port, failed, &ms);
    size_t idx = rc == 0 ? (size_t)(ms - b->m->masters) : 0;
    const char *w;
    size_t wn;
    while (rc == 0 && next_word(&p, end, &w, &wn))
        rc = node_slots(b, idx, w, wn);
    return rc;
}

int eb_cluster_map_from_nodes(const char *text, size_t len, const struct eb_cluster_source *src,
                              struct eb_cluster_map **out, char *errstr, size_t errstr_size) {
    struct build b;
    int rc = build_begin(&b, src, errstr, errstr_size);
    const char *p = text, *end = text + len;
    while (rc == 0 && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        const char *le = e > p && e[-1] == '\r' ? e - 1 : e;
        rc = node_line(&b, p, le);
        p = e + 1;
    }
    return build_end(&b, rc, out);
}

/* ------------------------------------------------------------------------
 * Queries
 * --------------------------------------------------------------------- */

const struct eb_cluster_master *eb_cluster_map_owner(const struct eb_cluster_map *m,
                                                     unsigned slot) {
    if (!m || slot >= EB_KEYSLOT_COUNT || m->owner[slot] == 0)
        return NULL;
    return &m->masters[m->owner[slot] - 1];
}

size_t eb_cluster_map_unserved(const struct eb_cluster_map *m) {
    size_t n = 0;
    for (size_t s = 0; s < EB_KEYSLOT_COUNT; s++)
        n += m->owner[s] == 0;
    return n;
}

int eb_cluster_map_find(const struct eb_cluster_map *m, const char *id) {
    for (size_t i = 0; i < m->nmasters; i++) {
        if (memcmp(m->masters[i].id, id, EB_CLUSTER_ID_LEN) == 0)
            return (int)i;
    }
    return -1;
}

void eb_cluster_map_free(struct eb_cluster_map *m) {
    if (!m)
        return;
    for (size_t i = 0; i < m->nmasters; i++)
        free(m->masters[i].host);
    free(m->masters);
    free(m);
}

/* ------------------------------------------------------------------------
 * Redirections
 * --------------------------------------------------------------------- */

static bool starts_word(const char *s, size_t n, const char *word) {
    size_t w = strlen(word);
    return n >= w && memcmp(s, word, w) == 0 && (n == w || s[w] == ' ');
}

enum eb_cluster_redirect_kind eb_cluster_redirect_parse(const char *err, size_t len,
                                                        struct eb_cluster_redirect *out) {
    static const char *const retry[] = {"TRYAGAIN", "CLUSTERDOWN", "READONLY", "MASTERDOWN",
                                        "LOADING"};
    memset(out, 0, sizeof(*out));
    if (!err)
        return EB_CLUSTER_REDIRECT_NONE;
    for (size_t i = 0; i < sizeof(retry) / sizeof(retry[0]); i++) {
        if (starts_word(err, len, retry[i]))
            return out->kind = EB_CLUSTER_REDIRECT_RETRY;
    }
    enum eb_cluster_redirect_kind k = starts_word(err, len, "MOVED") ? EB_CLUSTER_REDIRECT_MOVED
                                      : starts_word(err, len, "ASK") ? EB_CLUSTER_REDIRECT_ASK
                                                                     : EB_CLUSTER_REDIRECT_NONE;
    if (k == EB_CLUSTER_REDIRECT_NONE)
        return k;
    const char *p = err, *end = err + len, *w, *extra;
    size_t n, nextra;
    long slot, port;
    const char *host;
    size_t hlen;
    /* "MOVED" slot endpoint:port, nothing after */
    if (!next_word(&p, end, &w, &n) || !next_word(&p, end, &w, &n) ||
        (slot = parse_long(w, n)) < 0 || slot >= EB_KEYSLOT_COUNT ||
        !next_word(&p, end, &w, &n) || next_word(&p, end, &extra, &nextra))
        return EB_CLUSTER_REDIRECT_NONE;
    const char *colon = NULL;
    for (size_t i = n; i-- > 0;) {
        if (w[i] == ':') {
            colon = w + i;
            break;
        }
    }
    if (!colon)
        return EB_CLUSTER_REDIRECT_NONE;
    host = w;
    hlen = (size_t)(colon - w);
    port = parse_long(colon + 1, n - hlen - 1);
    if (port < 1 || port > 65535 || hlen > EB_CLUSTER_REDIRECT_HOST_MAX)
        return EB_CLUSTER_REDIRECT_NONE;
    if (hlen == 1 && host[0] == '?')
        hlen = 0;
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';
    out->slot = (unsigned)slot;
    out->port = (int)port;
    return out->kind = k;
}
