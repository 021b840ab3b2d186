/* bench_ledger_load.c -- arms timers at a set rate, for bench/ledger/run.py
 * and bench/ledger/cluster.py.
 *
 *   bench_ledger_load -p PORT --mode plain|ledger --rate R --seconds S --ttl-ms T
 *                     [-h HOST] [--prefix P] [--ledger KEY] [--start ID]
 *                     [--cluster 1] [--buckets N --route NAME [--ledger-prefix LP]]
 *
 * plain:  SET <prefix><id> 1 PX <ttl>                 (what a shop does today)
 * ledger: FCALL eb1_arm 2 <prefix><id> <ledger> <ttl> (a durable timer)
 *
 * --buckets N (ledger.buckets of the bridge): timer id goes to bucket
 * b = id mod N, as an application spreads a route over its ledgers: key
 * <prefix>{<route>:<b>}:<id>, ledger <LP>{<route>:<b>} (LP defaults to
 * "expiry-bridge:ledger:"). --cluster 1: HOST:PORT is a seed of a Redis
 * Cluster; CLUSTER SLOTS names the masters, and each command goes to the
 * master of its key's slot, one connection per master.
 *
 * Paced from a 1 ms tick to R timers/s for S seconds; each tick's commands
 * are pipelined (per master) and their replies read and checked before the
 * next tick (SET must answer OK, eb1_arm a deadline), so the rate is what
 * Redis accepted. Prints one JSON line:
 *   {"mode":..., "armed":N, "seconds":..., "rate":..., "bad":0,
 *    "first_id":ID, "last_id":ID, "masters":M}
 * and exits 1 on any bad reply.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "bench_args.h"
#include "core/keyslot.h"

/* A cluster of a few masters is what the bench runs; more is refused. */
#define MAX_NODES 16

struct opts {
    const char *host;
    int port;
    bool ledger;
    double rate;
    double seconds;
    long long ttl_ms;
    const char *prefix;
    const char *ledger_key;
    long long start;
    int cluster;
    int buckets;
    const char *route;
    const char *ledger_prefix;
};

struct node {
    redisContext *c;
    long long queued; /* replies to read this tick */
};

struct nodes {
    struct node n[MAX_NODES];
    size_t count;
    unsigned char owner[EB_KEYSLOT_COUNT]; /* slot -> index into n */
};

static int64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void usage(void) {
    fputs("usage: bench_ledger_load -p PORT --mode plain|ledger --rate R --seconds S "
          "--ttl-ms T [-h HOST] [--prefix P] [--ledger KEY] [--start ID] [--cluster 1] "
          "[--buckets N --route NAME [--ledger-prefix LP]]\n",
          stderr);
    exit(2);
}

static void parse(int argc, char **argv, struct opts *o) {
    *o = (struct opts){.host = "127.0.0.1",
                       .prefix = "bench:",
                       .ledger_key = "",
                       .ttl_ms = 1000,
                       .route = "",
                       .ledger_prefix = "expiry-bridge:ledger:"};
    const char *mode = "";
    const struct bench_arg args[] = {
        {"-h", BA_STR, &o->host},           {"-p", BA_INT, &o->port},
        {"--mode", BA_STR, &mode},          {"--rate", BA_DBL, &o->rate},
        {"--seconds", BA_DBL, &o->seconds}, {"--ttl-ms", BA_LL, &o->ttl_ms},
        {"--prefix", BA_STR, &o->prefix},   {"--ledger", BA_STR, &o->ledger_key},
        {"--start", BA_LL, &o->start},      {"--cluster", BA_INT, &o->cluster},
        {"--buckets", BA_INT, &o->buckets}, {"--route", BA_STR, &o->route},
        {"--ledger-prefix", BA_STR, &o->ledger_prefix},
    };
    bench_args_parse(argc, argv, 1, args, sizeof(args) / sizeof(args[0]), NULL, NULL, usage);
    o->ledger = strcmp(mode, "ledger") == 0;
    bool have_mode = o->ledger || strcmp(mode, "plain") == 0;
    bool have_ledger = o->buckets > 0 ? *o->route != '\0' : *o->ledger_key != '\0';
    if (!o->port || !have_mode || o->rate <= 0 || o->seconds <= 0 || o->ttl_ms <= 0 ||
        o->buckets < 0 || (o->ledger && !have_ledger))
        usage();
}

static redisContext *connect_to(const char *host, int port) {
    struct timeval tv = {5, 0};
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    if (!c || c->err) {
        fprintf(stderr, "connect %s:%d: %s\n", host, port, c ? c->errstr : "out of memory");
        redisFree(c);
        return NULL;
    }
    return c;
}

/* The masters of the cluster the seed belongs to, and who serves each
 * slot (CLUSTER SLOTS: [lo, hi, [host, port, id], replicas...]). */
static bool discover(struct nodes *ns, const struct opts *o) {
    redisContext *seed = connect_to(o->host, o->port);
    if (!seed)
        return false;
    redisReply *r = redisCommand(seed, "CLUSTER SLOTS");
    bool ok = r && r->type == REDIS_REPLY_ARRAY;
    char hosts[MAX_NODES][256];
    int ports[MAX_NODES];
    for (size_t i = 0; ok && i < r->elements; i++) {
        redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
            e->element[2]->type != REDIS_REPLY_ARRAY || e->element[2]->elements < 2) {
            ok = false;
            break;
        }
        const redisReply *m = e->element[2];
        const char *host = m->element[0]->str && *m->element[0]->str ? m->element[0]->str
                                                                     : o->host;
        int port = (int)m->element[1]->integer;
        size_t k = 0;
        while (k < ns->count && !(ports[k] == port && strcmp(hosts[k], host) == 0))
            k++;
        if (k == ns->count) {
            if (k == MAX_NODES || !(ns->n[k].c = connect_to(host, port))) {
                ok = false;
                break;
            }
            snprintf(hosts[k], sizeof(hosts[k]), "%s", host);
            ports[k] = port;
            ns->count++;
        }
        for (long long s = e->element[0]->integer; s <= e->element[1]->integer; s++)
            ns->owner[s & (EB_KEYSLOT_COUNT - 1)] = (unsigned char)k;
    }
    if (!ok)
        fprintf(stderr, "CLUSTER SLOTS: %s\n", r && r->str ? r->str : "unexpected reply");
    freeReplyObject(r);
    redisFree(seed);
    return ok && ns->count > 0;
}

/* Append one timer's command to the pipeline of its key's master. */
static void append(struct nodes *ns, const struct opts *o, long long id) {
    char key[256], ttl[32], ledger[256];
    const char *lk = o->ledger_key;
    if (o->buckets > 0) {
        long long b = id % o->buckets;
        snprintf(key, sizeof(key), "%s{%s:%lld}:%lld", o->prefix, o->route, b, id);
        snprintf(ledger, sizeof(ledger), "%s{%s:%lld}", o->ledger_prefix, o->route, b);
        lk = ledger;
    } else {
        snprintf(key, sizeof(key), "%s%lld", o->prefix, id);
    }
    snprintf(ttl, sizeof(ttl), "%lld", o->ttl_ms);
    struct node *n = &ns->n[ns->owner[eb_keyslot_of(key, strlen(key))]];
    if (o->ledger) {
        const char *argv[] = {"FCALL", "eb1_arm", "2", key, lk, ttl};
        redisAppendCommandArgv(n->c, 6, argv, NULL);
    } else {
        const char *argv[] = {"SET", key, "1", "PX", ttl};
        redisAppendCommandArgv(n->c, 5, argv, NULL);
    }
    n->queued++;
}

/* Read and check the replies of one tick. -1 when a connection failed. */
static long long collect(struct nodes *ns, const struct opts *o, long long *bad) {
    for (size_t i = 0; i < ns->count; i++) {
        struct node *n = &ns->n[i];
        for (; n->queued > 0; n->queued--) {
            redisReply *r = NULL;
            if (redisGetReply(n->c, (void **)&r) != REDIS_OK || !r) {
                fprintf(stderr, "redis: %s\n", n->c->errstr);
                return -1;
            }
            bool ok = o->ledger ? r->type == REDIS_REPLY_INTEGER && r->integer > 0
                                : r->type == REDIS_REPLY_STATUS && !strcmp(r->str, "OK");
            if (!ok && (*bad)++ < 3)
                fprintf(stderr, "bad reply: %s\n", r->str ? r->str : "(not a string)");
            freeReplyObject(r);
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    struct opts o;
    parse(argc, argv, &o);
    static struct nodes ns;
    if (o.cluster) {
        if (!discover(&ns, &o))
            return 1;
    } else {
        if (!(ns.n[0].c = connect_to(o.host, o.port)))
            return 1;
        ns.count = 1; /* owner[] is all 0 */
    }
    long long total = (long long)(o.rate * o.seconds), sent = 0, bad = 0;
    int64_t t0 = now_us();
    while (sent < total) {
        int64_t el = now_us() - t0;
        long long due = (long long)(o.rate * (double)el / 1e6) + 1;
        if (due > total)
            due = total;
        long long k = due - sent;
        for (long long i = 0; i < k; i++)
            append(&ns, &o, o.start + sent + i);
        if (collect(&ns, &o, &bad) != 0)
            return 1;
        sent = due;
        if (sent < total) {
            /* Sleep to the next millisecond tick. */
            int64_t next = t0 + (el / 1000 + 1) * 1000, now = now_us();
            if (next > now) {
                struct timespec ts = {0, (long)(next - now) * 1000};
                nanosleep(&ts, NULL);
            }
        }
    }
    double secs = (double)(now_us() - t0) / 1e6;
    printf("{\"mode\":\"%s\",\"armed\":%lld,\"seconds\":%.3f,\"rate\":%.0f,\"bad\":%lld,"
           "\"first_id\":%lld,\"last_id\":%lld,\"masters\":%zu}\n",
           o.ledger ? "ledger" : "plain", sent, secs, (double)sent / secs, bad, o.start,
           o.start + sent - 1, ns.count);
    for (size_t i = 0; i < ns.count; i++)
        redisFree(ns.n[i].c);
    return bad ? 1 : 0;
}
