/* bench_load.c -- load generator for bench/run.sh.
 *
 *   bench_load burst -p PORT -n N [--batch B] [--start ID]
 *   bench_load rate  -p PORT --rate R --seconds S [--start ID]
 *   bench_load arm   -p PORT -n N --lead-ms L [--batch B] [--start ID]
 *   common: [-h HOST] [--channel CH] [--prefix P]
 *
 * burst: pipelined PUBLISH CH <prefix><id> as fast as Redis takes them
 *        (two batches in flight, so Redis never waits for us);
 * rate:  the same, paced to R messages/s from a 1 ms tick (for latency, where
 *        a burst would measure queueing instead);
 * arm:   pipelined SET <prefix><id> v PXAT <deadline>, one deadline for all,
 *        L ms after the start; fails if arming ends after the deadline.
 *
 * Commands are written as raw RESP (no per-command allocation), replies are
 * parsed with hiredis's reader and checked: PUBLISH must answer an integer
 * (the number of receivers: the caller asserts its subscribers were there),
 * SET must answer OK. Prints one JSON line; exit 1 on any bad reply.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "bench_args.h"

enum mode { BURST, RATE, ARM };

struct opts {
    enum mode mode;
    const char *host;
    int port;
    long long n;
    long long start_id;
    int batch;
    double rate;
    double seconds;
    long long lead_ms;
    const char *channel;
    const char *prefix;
};

struct replies {
    long long ok;        /* well-formed replies */
    long long bad;       /* anything else */
    long long recv_min;  /* PUBLISH: fewest receivers seen */
    long long recv_zero; /* PUBLISH: messages nobody received */
};

static int64_t now_us(clockid_t clk) {
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void usage(void) {
    fprintf(stderr, "usage: bench_load burst|rate|arm -p PORT [-n N] [--batch B] [--start ID] "
                    "[--rate R --seconds S] [--lead-ms L] [-h HOST] [--channel CH] "
                    "[--prefix P]\n");
    exit(2);
}

static void parse(int argc, char **argv, struct opts *o) {
    *o = (struct opts){.host = "127.0.0.1",
                       .batch = 1000,
                       .channel = "__keyevent@0__:expired",
                       .prefix = "laravel_cache:ORDER_CONFIRM:"};
    if (argc < 2)
        usage();
    if (strcmp(argv[1], "burst") == 0)
        o->mode = BURST;
    else if (strcmp(argv[1], "rate") == 0)
        o->mode = RATE;
    else if (strcmp(argv[1], "arm") == 0)
        o->mode = ARM;
    else
        usage();
    const struct bench_arg args[] = {
        {"-p", BA_INT, &o->port},
        {"-h", BA_STR, &o->host},
        {"-n", BA_LL, &o->n},
        {"--start", BA_LL, &o->start_id},
        {"--batch", BA_INT, &o->batch},
        {"--rate", BA_DBL, &o->rate},
        {"--seconds", BA_DBL, &o->seconds},
        {"--lead-ms", BA_LL, &o->lead_ms},
        {"--channel", BA_STR, &o->channel},
        {"--prefix", BA_STR, &o->prefix},
    };
    bench_args_parse(argc, argv, 2, args, sizeof(args) / sizeof(args[0]), NULL, NULL, usage);
    if (o->mode == RATE)
        o->n = (long long)(o->rate * o->seconds);
    if (o->port <= 0 || o->n <= 0 || o->batch <= 0 || (o->mode == ARM && o->lead_ms <= 0))
        usage();
}

/* A growable output buffer of RESP commands. */
struct out {
    char *data;
    size_t len, cap;
};

static void out_put(struct out *b, const char *p, size_t n) {
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->data = realloc(b->data, b->cap);
        if (!b->data) {
            perror("bench_load: realloc");
            exit(1);
        }
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void out_bulk(struct out *b, const char *s, size_t n) {
    char hdr[32];
    int h = snprintf(hdr, sizeof(hdr), "$%zu\r\n", n);
    out_put(b, hdr, (size_t)h);
    out_put(b, s, n);
    out_put(b, "\r\n", 2);
}

static void append_cmd(const struct opts *o, struct out *b, long long id, const char *pxat) {
    char key[128];
    int klen = snprintf(key, sizeof(key), "%s%lld", o->prefix, id);
    if (o->mode == ARM) {
        out_put(b, "*5\r\n$3\r\nSET\r\n", 13);
        out_bulk(b, key, (size_t)klen);
        out_bulk(b, "v", 1);
        out_bulk(b, "PXAT", 4);
        out_bulk(b, pxat, strlen(pxat));
    } else {
        out_put(b, "*3\r\n$7\r\nPUBLISH\r\n", 17);
        out_bulk(b, o->channel, strlen(o->channel));
        out_bulk(b, key, (size_t)klen);
    }
}

static void write_all(redisContext *c, const struct out *b) {
    size_t off = 0;
    while (off < b->len) {
        ssize_t w = write(c->fd, b->data + off, b->len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            perror("bench_load: write");
            exit(1);
        }
        off += (size_t)w;
    }
}

static void check_reply(const struct opts *o, struct replies *r, const redisReply *rep) {
    if (o->mode == ARM) {
        if (rep->type == REDIS_REPLY_STATUS && strcmp(rep->str, "OK") == 0)
            r->ok++;
        else
            r->bad++;
        return;
    }
    if (rep->type != REDIS_REPLY_INTEGER) {
        r->bad++;
        return;
    }
    r->ok++;
    if (rep->integer < r->recv_min)
        r->recv_min = rep->integer;
    if (rep->integer == 0)
        r->recv_zero++;
}

/* Read exactly n replies. */
static void read_replies(redisContext *c, const struct opts *o, struct replies *r, long long n) {
    while (n > 0) {
        void *rep = NULL;
        if (redisGetReplyFromReader(c, &rep) != REDIS_OK) {
            fprintf(stderr, "bench_load: protocol error: %s\n", c->errstr);
            exit(1);
        }
        if (rep) {
            check_reply(o, r, rep);
            freeReplyObject(rep);
            n--;
            continue;
        }
        if (redisBufferRead(c) != REDIS_OK) {
            fprintf(stderr, "bench_load: read: %s\n", c->errstr);
            exit(1);
        }
    }
}

/* burst and arm: two batches in flight. */
static void run_pipelined(redisContext *c, const struct opts *o, struct replies *r,
                          const char *pxat) {
    struct out b = {0};
    long long sent = 0, pending = 0; /* replies owed for the previous batch */
    while (sent < o->n || pending) {
        long long k = 0;
        b.len = 0;
        for (; k < o->batch && sent < o->n; k++, sent++)
            append_cmd(o, &b, o->start_id + sent, pxat);
        if (k)
            write_all(c, &b);
        read_replies(c, o, r, pending);
        pending = k;
    }
    free(b.data);
}

static void sleep_until(int64_t mono_us) {
    struct timespec ts = {mono_us / 1000000, (mono_us % 1000000) * 1000};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

/* rate: whatever is due every millisecond; returns the worst lag behind
 * schedule in µs (a late generator would understate the offered rate). */
static int64_t run_paced(redisContext *c, const struct opts *o, struct replies *r) {
    struct out b = {0};
    long long sent = 0;
    int64_t start = now_us(CLOCK_MONOTONIC), worst = 0;
    for (int64_t tick = start; sent < o->n; tick += 1000) {
        sleep_until(tick);
        int64_t now = now_us(CLOCK_MONOTONIC);
        long long due = (long long)((double)(now - start) * o->rate / 1e6) + 1;
        if (due > o->n)
            due = o->n;
        if (now - tick > worst)
            worst = now - tick;
        b.len = 0;
        long long k = 0;
        for (; sent < due; sent++, k++)
            append_cmd(o, &b, o->start_id + sent, "");
        if (k) {
            write_all(c, &b);
            read_replies(c, o, r, k);
        }
    }
    free(b.data);
    return worst;
}

int main(int argc, char **argv) {
    struct opts o;
    struct replies r = {.recv_min = INT64_MAX};
    parse(argc, argv, &o);
    struct timeval tv = {5, 0};
    redisContext *c = redisConnectWithTimeout(o.host, o.port, tv);
    if (!c || c->err) {
        fprintf(stderr, "bench_load: connect: %s\n", c ? c->errstr : "out of memory");
        return 1;
    }
    char pxat[32] = "";
    long long deadline_ms = 0;
    int64_t t0 = now_us(CLOCK_REALTIME), m0 = now_us(CLOCK_MONOTONIC), lag = 0;
    if (o.mode == ARM) {
        deadline_ms = t0 / 1000 + o.lead_ms;
        snprintf(pxat, sizeof(pxat), "%lld", deadline_ms);
    }
    if (o.mode == RATE)
        lag = run_paced(c, &o, &r);
    else
        run_pipelined(c, &o, &r, pxat);
    int64_t t1 = now_us(CLOCK_REALTIME), m1 = now_us(CLOCK_MONOTONIC);
    double secs = (double)(m1 - m0) / 1e6;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    long long cpu_us = (long long)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec +
                       (long long)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec;
    static const char *names[] = {"burst", "rate", "arm"};
    printf("{\"tool\":\"load\",\"mode\":\"%s\",\"n\":%lld,\"ok\":%lld,\"bad\":%lld,"
           "\"receivers_min\":%lld,\"receivers_zero\":%lld,\"start_us\":%lld,\"end_us\":%lld,"
           "\"seconds\":%.6f,\"per_s\":%.1f,\"deadline_ms\":%lld,\"worst_lag_us\":%lld,"
           "\"cpu_us\":%lld}\n",
           names[o.mode], o.n, r.ok, r.bad, o.mode == ARM ? -1 : r.recv_min, r.recv_zero,
           (long long)t0, (long long)t1, secs, (double)o.n / secs, deadline_ms, (long long)lag,
           cpu_us);
    fflush(stdout);
    redisFree(c);
    if (r.bad || r.ok != o.n) {
        fprintf(stderr, "bench_load: %lld bad replies of %lld\n", r.bad, o.n);
        return 1;
    }
    if (o.mode == ARM && t1 / 1000 >= deadline_ms) {
        fprintf(stderr, "bench_load: arming ended after the deadline; raise --lead-ms\n");
        return 1;
    }
    return 0;
}
