/* redis_resolve.c -- host names resolved by worker threads, answered on the
 * loop (contract and the choice of threads over evdns in redis_resolve.h).
 *
 * The loop and the workers share one hand-off queue (struct hub): a worker
 * appends its answered lookup and writes a byte to a pipe; the loop's read
 * event takes the whole queue and calls back. The hub is reference-counted
 * (the resolver holds one reference, each running worker one), so a
 * resolver destroyed while a worker still waits for DNS leaves the hub to
 * that worker, which frees its lookup and, last out, the hub.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/error.h"
#include "redis/redis_resolve.h"

/* Workers of one resolver that may wait for DNS at once. A client starts
 * one lookup per connect attempt and abandons it after its connect timeout;
 * a stalled resolver (getaddrinfo's default: 5 s x 2 attempts per server)
 * thus holds at most a few per client. Past this, a lookup fails at once
 * rather than piling up threads. */
#define MAX_IN_FLIGHT 16

/* Shared by the loop and the workers; every field under mu. */
struct hub {
    pthread_mutex_t mu;
    unsigned refs;  /* the resolver's (while it lives) + one per running worker */
    bool closed;    /* the resolver is gone: a worker frees its own lookup */
    size_t running; /* workers not finished yet */
    int rfd, wfd;   /* the wake-up pipe: worker -> loop */
    eb_redis_lookup_t *head, *tail; /* answered, not yet handed to the loop */
};

struct eb_redis_lookup {
    eb_redis_lookup_t *next;  /* in the hub's queue, or the loop's batch */
    eb_redis_resolver_t *res; /* loop side */
    struct hub *hub;
    eb_redis_resolve_cb *cb; /* loop side */
    void *opaque;
    bool cancelled; /* loop side: answered to nobody, freed on delivery */
    /* written by the worker (or at once for a number) before the hand-off */
    bool ok;
    char ip[EB_REDIS_ADDR_MAX];
    char err[128];
    char host[]; /* copied */
};

struct eb_redis_resolver {
    struct hub *hub;
    /* The pipe's read end, registered only while a lookup awaits its
     * answer: an idle resolver leaves nothing on the base. */
    struct event *ev;
    size_t waiting; /* lookups neither answered nor cancelled */
    int depth;      /* > 0 while a callback of ours runs */
};

/* ------------------------------------------------------------------------
 * The hub
 * --------------------------------------------------------------------- */

static void hub_free(struct hub *h) {
    eb_redis_lookup_t *lk = h->head;
    while (lk) {
        eb_redis_lookup_t *next = lk->next;
        free(lk);
        lk = next;
    }
    close(h->rfd);
    close(h->wfd);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

/* Drop one reference; the last one frees the hub. Called without mu. */
static void hub_unref(struct hub *h) {
    pthread_mutex_lock(&h->mu);
    bool last = --h->refs == 0;
    pthread_mutex_unlock(&h->mu);
    if (last)
        hub_free(h);
}

/* Queue an answered lookup for the loop (mu held). */
static void hub_push_locked(struct hub *h, eb_redis_lookup_t *lk) {
    lk->next = NULL;
    if (h->tail)
        h->tail->next = lk;
    else
        h->head = lk;
    h->tail = lk;
}

/* ------------------------------------------------------------------------
 * Answers
 * --------------------------------------------------------------------- */

/* The first IPv4 address of res, else its first IPv6 one, as text. */
static bool pick_address(const struct addrinfo *res, char *out, size_t size) {
    const struct addrinfo *pick = NULL;
    for (const struct addrinfo *ai = res; ai && !pick; ai = ai->ai_next) {
        if (ai->ai_family == AF_INET)
            pick = ai;
    }
    for (const struct addrinfo *ai = res; ai && !pick; ai = ai->ai_next) {
        if (ai->ai_family == AF_INET6)
            pick = ai;
    }
    if (!pick)
        return false;
    const void *a = pick->ai_family == AF_INET
                        ? (const void *)&((const struct sockaddr_in *)pick->ai_addr)->sin_addr
                        : (const void *)&((const struct sockaddr_in6 *)pick->ai_addr)->sin6_addr;
    return inet_ntop(pick->ai_family, a, out, (socklen_t)size) != NULL;
}

/* getaddrinfo() for lk->host into lk's answer. @locality worker thread. */
static void lookup_run(eb_redis_lookup_t *lk) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(lk->host, NULL, &hints, &res);
    if (rc != 0) {
        snprintf(lk->err, sizeof(lk->err), "%s",
                 rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
    } else if (!pick_address(res, lk->ip, sizeof(lk->ip))) {
        snprintf(lk->err, sizeof(lk->err), "no IPv4 or IPv6 address");
    } else {
        lk->ok = true;
    }
    if (res)
        freeaddrinfo(res);
}

/* @locality worker thread: touches only lk and the hub (under its mutex). */
static void *worker(void *arg) {
    eb_redis_lookup_t *lk = arg;
    struct hub *h = lk->hub;
    lookup_run(lk);
    pthread_mutex_lock(&h->mu);
    h->running--;
    if (h->closed) {
        free(lk);
    } else {
        hub_push_locked(h, lk);
        /* A full pipe already holds a wake-up: nothing is lost. */
        (void)!write(h->wfd, "", 1);
    }
    bool last = --h->refs == 0;
    pthread_mutex_unlock(&h->mu);
    if (last)
        hub_free(h);
    return NULL;
}

/* Hand every answered lookup to its caller, in the order they came.
 * @locality loop thread (the pipe's libevent event). */
static void on_answers(evutil_socket_t fd, short what, void *arg) {
    eb_redis_resolver_t *r = arg;
    char buf[64];
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
    pthread_mutex_lock(&r->hub->mu);
    eb_redis_lookup_t *lk = r->hub->head;
    r->hub->head = r->hub->tail = NULL;
    pthread_mutex_unlock(&r->hub->mu);
    r->depth++;
    while (lk) {
        eb_redis_lookup_t *next = lk->next;
        /* A callback may cancel a later lookup of this batch: checked as
         * each comes up, and freed here either way. */
        if (!lk->cancelled) {
            r->waiting--;
            lk->cb(lk->ok, lk->ip, lk->err, lk->opaque);
        }
        free(lk);
        lk = next;
    }
    r->depth--;
    if (r->waiting == 0)
        event_del(r->ev);
}

/* ------------------------------------------------------------------------
 * Public API
 * --------------------------------------------------------------------- */

bool eb_redis_resolve_is_numeric(const char *host) {
    unsigned char a[sizeof(struct in6_addr)];
    return host && (inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1);
}

eb_redis_resolver_t *eb_redis_resolver_new(struct event_base *base, char *errstr,
                                           size_t errstr_size) {
    eb_redis_resolver_t *r = calloc(1, sizeof(*r));
    struct hub *h = calloc(1, sizeof(*h));
    int fds[2];
    if (!r || !h) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        goto err_free;
    }
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
        eb_error_set(errstr, errstr_size, EB_EIO, "resolver pipe: %s", strerror(errno));
        goto err_free;
    }
    pthread_mutex_init(&h->mu, NULL);
    h->refs = 1;
    h->rfd = fds[0];
    h->wfd = fds[1];
    r->hub = h;
    r->ev = event_new(base, h->rfd, EV_READ | EV_PERSIST, on_answers, r);
    if (!r->ev) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        hub_free(h);
        free(r);
        return NULL;
    }
    return r;

err_free:
    free(h);
    free(r);
    return NULL;
}

/* Start a worker for lk (counted in the hub). False + errstr when none. */
static bool start_worker(eb_redis_resolver_t *r, eb_redis_lookup_t *lk, char *errstr,
                         size_t errstr_size) {
    struct hub *h = r->hub;
    pthread_mutex_lock(&h->mu);
    bool full = h->running >= MAX_IN_FLIGHT;
    if (!full) {
        h->running++;
        h->refs++;
    }
    pthread_mutex_unlock(&h->mu);
    if (full) {
        eb_error_set(errstr, errstr_size, EB_EFULL,
                     "%d name lookups already in flight (is the DNS resolver stalled?)",
                     MAX_IN_FLIGHT);
        return false;
    }
    /* The worker blocks every signal: they belong to the loop thread
     * (SIGTERM, SIGHUP), and getaddrinfo() must not see EINTR. */
    pthread_attr_t attr;
    pthread_t tid;
    sigset_t all, old;
    sigfillset(&all);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&tid, &attr, worker, lk);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc == 0)
        return true;
    pthread_mutex_lock(&h->mu);
    h->running--;
    h->refs--; /* the resolver still holds one: never the last */
    pthread_mutex_unlock(&h->mu);
    eb_error_set(errstr, errstr_size, EB_ENOMEM, "cannot start a resolver thread: %s",
                 strerror(rc));
    return false;
}

static void waiting_inc(eb_redis_resolver_t *r) {
    if (r->waiting++ == 0)
        event_add(r->ev, NULL);
}

eb_redis_lookup_t *eb_redis_resolve(eb_redis_resolver_t *r, const char *host,
                                    eb_redis_resolve_cb *cb, void *opaque, char *errstr,
                                    size_t errstr_size) {
    size_t len = strlen(host);
    eb_redis_lookup_t *lk = calloc(1, sizeof(*lk) + len + 1);
    if (!lk) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        return NULL;
    }
    memcpy(lk->host, host, len);
    lk->res = r;
    lk->hub = r->hub;
    lk->cb = cb;
    lk->opaque = opaque;
    if (eb_redis_resolve_is_numeric(host)) {
        /* No lookup: answered from the loop's next turn, like the others. */
        lk->ok = true;
        snprintf(lk->ip, sizeof(lk->ip), "%s", host);
        pthread_mutex_lock(&r->hub->mu);
        hub_push_locked(r->hub, lk);
        pthread_mutex_unlock(&r->hub->mu);
        waiting_inc(r);
        event_active(r->ev, EV_READ, 0);
        return lk;
    }
    if (!start_worker(r, lk, errstr, errstr_size)) {
        free(lk);
        return NULL;
    }
    waiting_inc(r);
    return lk;
}

void eb_redis_resolve_cancel(eb_redis_lookup_t *lk) {
    if (!lk || lk->cancelled)
        return;
    lk->cancelled = true;
    /* Its answer is freed unread when it comes with another one, or when
     * the resolver goes. */
    if (--lk->res->waiting == 0)
        event_del(lk->res->ev);
}

size_t eb_redis_resolver_in_flight(const eb_redis_resolver_t *r) {
    pthread_mutex_lock(&r->hub->mu);
    size_t n = r->hub->running;
    pthread_mutex_unlock(&r->hub->mu);
    return n;
}

void eb_redis_resolver_destroy(eb_redis_resolver_t *r) {
    if (!r)
        return;
    if (r->depth > 0) {
        fprintf(stderr, "eb_redis_resolver_destroy() called from inside its own callback\n");
        abort();
    }
    event_free(r->ev);
    struct hub *h = r->hub;
    pthread_mutex_lock(&h->mu);
    h->closed = true;
    eb_redis_lookup_t *lk = h->head;
    h->head = h->tail = NULL;
    pthread_mutex_unlock(&h->mu);
    while (lk) {
        eb_redis_lookup_t *next = lk->next;
        free(lk);
        lk = next;
    }
    hub_unref(h);
    free(r);
}
