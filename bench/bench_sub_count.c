/* bench_sub_count.c -- the Redis -> one subscriber ceiling: a minimal hiredis
 * subscriber that only counts keyevent messages.
 *
 *   bench_sub_count -p PORT [-h HOST] [-c CHANNEL | -P PATTERN] [-n EXPECT]
 *                   [--prefix P] [--max-id M] [--idle-ms MS] [--timeout-ms MS]
 *
 * Subscribes (default channel __keyevent@0__:expired), prints "READY" on
 * stdout once Redis confirmed the subscription, then reads until EXPECT
 * messages arrived, or nothing arrived for --idle-ms after the first one, or
 * --timeout-ms passed, or Redis closed the connection (which is what
 * client-output-buffer-limit pubsub does to a reader that falls behind).
 * Prints one JSON line: count, distinct ids seen (keys "<prefix><id>" with
 * id < max-id; so the caller can assert every key arrived exactly once),
 * first/last receive time (CLOCK_REALTIME µs, taken once per socket read,
 * which is how fine the timing can be without a clock call per message),
 * whether Redis disconnected us, and our own CPU time.
 *
 * Sync hiredis with our own poll(): the cheapest way hiredis 0.14 can read
 * pub/sub (the same 16 KB reads and reply objects the bridge's async
 * context gets), so it is the ceiling a hiredis-based bridge can approach.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "bench_args.h"

struct opts {
    const char *host;
    int port;
    const char *channel;
    const char *pattern;
    long long expect;
    const char *prefix;
    long long max_id;
    int idle_ms;
    int timeout_ms;
};

struct tally {
    long long count;
    long long distinct;
    long long foreign; /* messages whose key is not "<prefix><id>" */
    int64_t first_us;
    int64_t last_us;
    uint8_t *seen; /* bitmap of ids */
};

static int64_t now_us(clockid_t clk) {
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void usage(void) {
    fprintf(stderr, "usage: bench_sub_count -p PORT [-h HOST] [-c CHANNEL | -P PATTERN] "
                    "[-n EXPECT] [--prefix P] [--max-id M] [--idle-ms MS] [--timeout-ms MS]\n");
    exit(2);
}

static void parse(int argc, char **argv, struct opts *o) {
    *o =
        (struct opts){"127.0.0.1", 0, "__keyevent@0__:expired", NULL, 0, "", 1000000, 2000, 600000};
    const struct bench_arg args[] = {
        {"-p", BA_INT, &o->port},
        {"-h", BA_STR, &o->host},
        {"-c", BA_STR, &o->channel},
        {"-P", BA_STR, &o->pattern},
        {"-n", BA_LL, &o->expect},
        {"--prefix", BA_STR, &o->prefix},
        {"--max-id", BA_LL, &o->max_id},
        {"--idle-ms", BA_INT, &o->idle_ms},
        {"--timeout-ms", BA_INT, &o->timeout_ms},
    };
    bench_args_parse(argc, argv, 1, args, sizeof(args) / sizeof(args[0]), NULL, NULL, usage);
    if (o->port <= 0 || o->max_id <= 0)
        usage();
}

/* Count one pub/sub reply; returns true when it was a message. */
static bool count_reply(const struct opts *o, struct tally *t, const redisReply *r) {
    /* message: [message, channel, payload]; pmessage: [pmessage, pattern, channel, payload] */
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3)
        return false;
    const redisReply *kind = r->element[0];
    bool pm = kind->len == 8 && memcmp(kind->str, "pmessage", 8) == 0;
    if (!pm && !(kind->len == 7 && memcmp(kind->str, "message", 7) == 0))
        return false;
    const redisReply *key = r->element[pm ? 3 : 2];
    t->count++;
    size_t plen = strlen(o->prefix);
    if (key->type != REDIS_REPLY_STRING || key->len <= plen || key->len - plen > 19 ||
        memcmp(key->str, o->prefix, plen) != 0) {
        t->foreign++;
        return true;
    }
    long long id = 0;
    for (size_t i = plen; i < key->len; i++) {
        if (key->str[i] < '0' || key->str[i] > '9') {
            t->foreign++;
            return true;
        }
        id = id * 10 + (key->str[i] - '0');
    }
    if (id >= o->max_id) {
        t->foreign++;
        return true;
    }
    uint8_t bit = (uint8_t)(1u << (id & 7));
    if (!(t->seen[id >> 3] & bit)) {
        t->seen[id >> 3] |= bit;
        t->distinct++;
    }
    return true;
}

static int subscribe(redisContext *c, const struct opts *o) {
    redisReply *r = o->pattern ? redisCommand(c, "PSUBSCRIBE %s", o->pattern)
                               : redisCommand(c, "SUBSCRIBE %s", o->channel);
    bool ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == 3;
    if (!ok)
        fprintf(stderr, "bench_sub_count: subscribe failed: %s\n",
                r ? (r->str ? r->str : "unexpected reply") : c->errstr);
    freeReplyObject(r);
    return ok ? 0 : -1;
}

int main(int argc, char **argv) {
    struct opts o;
    struct tally t = {0};
    parse(argc, argv, &o);
    t.seen = calloc((size_t)(o.max_id + 7) / 8, 1);
    struct timeval tv = {5, 0};
    redisContext *c = redisConnectWithTimeout(o.host, o.port, tv);
    if (!t.seen || !c || c->err) {
        fprintf(stderr, "bench_sub_count: connect: %s\n", c ? c->errstr : "out of memory");
        return 1;
    }
    if (subscribe(c, &o))
        return 1;
    printf("READY\n");
    fflush(stdout);

    bool disconnected = false;
    const char *why = "timeout";
    int64_t start = now_us(CLOCK_MONOTONIC), last_mono = 0;
    for (;;) {
        if (o.expect > 0 && t.count >= o.expect) {
            why = "expected count";
            break;
        }
        int64_t mono = now_us(CLOCK_MONOTONIC);
        if (t.count > 0 && mono - last_mono >= (int64_t)o.idle_ms * 1000) {
            why = "idle";
            break;
        }
        if (mono - start >= (int64_t)o.timeout_ms * 1000)
            break;
        struct pollfd pfd = {c->fd, POLLIN, 0};
        int pr = poll(&pfd, 1, 50);
        if (pr < 0 && errno != EINTR)
            break;
        if (pr <= 0)
            continue;
        if (redisBufferRead(c) != REDIS_OK) {
            disconnected = true; /* EOF: Redis closed the connection */
            why = c->errstr;
            break;
        }
        int64_t real = now_us(CLOCK_REALTIME);
        long long before = t.count;
        void *reply;
        while (redisGetReplyFromReader(c, &reply) == REDIS_OK && reply) {
            count_reply(&o, &t, reply);
            freeReplyObject(reply);
        }
        if (t.count > before) {
            if (before == 0)
                t.first_us = real;
            t.last_us = real;
            last_mono = now_us(CLOCK_MONOTONIC);
        }
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    int64_t cpu_us = (int64_t)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec +
                     (int64_t)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec;
    printf("{\"tool\":\"sub_count\",\"count\":%lld,\"distinct\":%lld,\"foreign\":%lld,"
           "\"first_us\":%lld,\"last_us\":%lld,\"disconnected\":%s,\"stopped\":\"%s\","
           "\"cpu_us\":%lld,\"csw\":%ld}\n",
           t.count, t.distinct, t.foreign, (long long)t.first_us, (long long)t.last_us,
           disconnected ? "true" : "false", why, (long long)cpu_us, ru.ru_nvcsw + ru.ru_nivcsw);
    fflush(stdout);
    redisFree(c);
    free(t.seen);
    return 0;
}
