/* bench_ledger_load.c -- arms timers at a set rate, for bench/ledger/run.py.
 *
 *   bench_ledger_load -p PORT --mode plain|ledger --rate R --seconds S --ttl-ms T
 *                     [-h HOST] [--prefix P] [--ledger KEY] [--start ID]
 *
 * plain:  SET <prefix><id> 1 PX <ttl>                 (what a shop does today)
 * ledger: FCALL eb1_arm 2 <prefix><id> <ledger> <ttl> (a durable timer)
 *
 * Paced from a 1 ms tick to R timers/s for S seconds; each tick's commands
 * are pipelined and their replies read and checked before the next tick
 * (SET must answer OK, eb1_arm a deadline), so the rate is what Redis
 * accepted. Prints one JSON line:
 *   {"mode":..., "armed":N, "seconds":..., "rate":..., "bad":0,
 *    "first_id":ID, "last_id":ID}
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
};

static int64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void usage(void) {
    fputs("usage: bench_ledger_load -p PORT --mode plain|ledger --rate R --seconds S "
          "--ttl-ms T [-h HOST] [--prefix P] [--ledger KEY] [--start ID]\n",
          stderr);
    exit(2);
}

static void parse(int argc, char **argv, struct opts *o) {
    *o = (struct opts){.host = "127.0.0.1", .prefix = "bench:", .ledger_key = "", .ttl_ms = 1000};
    const char *mode = "";
    const struct bench_arg args[] = {
        {"-h", BA_STR, &o->host},           {"-p", BA_INT, &o->port},
        {"--mode", BA_STR, &mode},          {"--rate", BA_DBL, &o->rate},
        {"--seconds", BA_DBL, &o->seconds}, {"--ttl-ms", BA_LL, &o->ttl_ms},
        {"--prefix", BA_STR, &o->prefix},   {"--ledger", BA_STR, &o->ledger_key},
        {"--start", BA_LL, &o->start},
    };
    bench_args_parse(argc, argv, 1, args, sizeof(args) / sizeof(args[0]), NULL, NULL, usage);
    o->ledger = strcmp(mode, "ledger") == 0;
    bool have_mode = o->ledger || strcmp(mode, "plain") == 0;
    if (!o->port || !have_mode || o->rate <= 0 || o->seconds <= 0 || o->ttl_ms <= 0 ||
        (o->ledger && !*o->ledger_key))
        usage();
}

/* Append one timer's command to the pipeline. */
static void append(redisContext *c, const struct opts *o, long long id) {
    char key[256], ttl[32];
    snprintf(key, sizeof(key), "%s%lld", o->prefix, id);
    snprintf(ttl, sizeof(ttl), "%lld", o->ttl_ms);
    if (o->ledger) {
        const char *argv[] = {"FCALL", "eb1_arm", "2", key, o->ledger_key, ttl};
        redisAppendCommandArgv(c, 6, argv, NULL);
    } else {
        const char *argv[] = {"SET", key, "1", "PX", ttl};
        redisAppendCommandArgv(c, 5, argv, NULL);
    }
}

int main(int argc, char **argv) {
    struct opts o;
    parse(argc, argv, &o);
    struct timeval tv = {5, 0};
    redisContext *c = redisConnectWithTimeout(o.host, o.port, tv);
    if (!c || c->err) {
        fprintf(stderr, "connect: %s\n", c ? c->errstr : "out of memory");
        return 1;
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
            append(c, &o, o.start + sent + i);
        for (long long i = 0; i < k; i++) {
            redisReply *r = NULL;
            if (redisGetReply(c, (void **)&r) != REDIS_OK || !r) {
                fprintf(stderr, "redis: %s\n", c->errstr);
                return 1;
            }
            bool ok = o.ledger ? r->type == REDIS_REPLY_INTEGER && r->integer > 0
                               : r->type == REDIS_REPLY_STATUS && !strcmp(r->str, "OK");
            if (!ok && bad++ < 3)
                fprintf(stderr, "bad reply: %s\n", r->str ? r->str : "(not a string)");
            freeReplyObject(r);
        }
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
           "\"first_id\":%lld,\"last_id\":%lld}\n",
           o.ledger ? "ledger" : "plain", sent, secs, (double)sent / secs, bad, o.start,
           o.start + sent - 1);
    redisFree(c);
    return bad ? 1 : 0;
}
