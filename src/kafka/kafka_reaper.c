/* kafka_reaper.c -- destroy librdkafka handles on a thread of their own
 * (contract in kafka_reaper.h).
 *
 * One worker thread and a FIFO of handles under a mutex; the loop thread
 * only appends and signals, so it never waits on the worker: the lock is
 * held for a few pointer moves on either side, never across
 * rd_kafka_destroy().
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/signals.h"
#include "kafka/kafka_reaper.h"

/* A destroy slower than this is logged as a warning: it would have
 * stalled the loop for that long. */
#define EB_REAPER_SLOW_MS 1000

struct job {
    struct job *next;
    rd_kafka_t *rk;
    void *mem;
};

struct eb_kafka_reaper {
    eb_log_t *log;
    pthread_mutex_t mu;
    pthread_cond_t cv;   /* a job was queued, or stopping was set */
    struct job *head;    /* guarded by mu */
    struct job **tail;   /* guarded by mu */
    bool stopping;       /* guarded by mu */
    bool started;        /* loop thread only */
    pthread_t thread;    /* valid when started */
    atomic_size_t pending;
};

/* Destroy one handle and say how long librdkafka took to stop.
 * @locality the reaper's thread (or the caller's, when it could not start). */
static void destroy_one(eb_log_t *log, rd_kafka_t *rk, void *mem) {
    int64_t t0 = eb_mono_ms();
    rd_kafka_destroy(rk);
    free(mem);
    int64_t took = eb_mono_ms() - t0;
    eb_log(log, took >= EB_REAPER_SLOW_MS ? EB_LOG_WARN : EB_LOG_INFO,
           took >= EB_REAPER_SLOW_MS
               ? "retired Kafka producer stopped slowly (off the event loop, which kept running)"
               : "retired Kafka producer stopped",
           eb_lf_int("took_ms", took));
}

/* @locality the reaper's thread. */
static void *run(void *arg) {
    eb_kafka_reaper_t *r = arg;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (!r->head && !r->stopping)
            pthread_cond_wait(&r->cv, &r->mu);
        struct job *j = r->head;
        if (!j)
            break; /* stopping, and nothing left */
        r->head = j->next;
        if (!r->head)
            r->tail = &r->head;
        pthread_mutex_unlock(&r->mu);
        destroy_one(r->log, j->rk, j->mem);
        free(j);
        atomic_fetch_sub(&r->pending, 1);
        pthread_mutex_lock(&r->mu);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

eb_kafka_reaper_t *eb_kafka_reaper_new(eb_log_t *log, char *errstr, size_t errstr_size) {
    eb_kafka_reaper_t *r = calloc(1, sizeof(*r));
    if (!r) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        return NULL;
    }
    r->log = log;
    r->tail = &r->head;
    atomic_init(&r->pending, 0);
    if (pthread_mutex_init(&r->mu, NULL) != 0)
        goto err_free;
    if (pthread_cond_init(&r->cv, NULL) != 0)
        goto err_destroy_mutex;
    return r;

err_destroy_mutex:
    pthread_mutex_destroy(&r->mu);
err_free:
    free(r);
    eb_error_set(errstr, errstr_size, EB_ENOMEM, "cannot create the reaper's lock");
    return NULL;
}

/* With the asynchronous signals blocked: they are the loop thread's. */
static int start(eb_kafka_reaper_t *r) {
    sigset_t old;
    eb_signals_block_async(&old);
    int rc = pthread_create(&r->thread, NULL, run, r);
    eb_signals_restore(&old);
    if (rc != 0)
        return rc;
    r->started = true;
    return 0;
}

void eb_kafka_reaper_take(eb_kafka_reaper_t *r, rd_kafka_t *rk, void *mem) {
    struct job *j = calloc(1, sizeof(*j));
    int rc = j ? 0 : ENOMEM;
    if (j && !r->started)
        rc = start(r);
    if (rc != 0) {
        eb_log(r->log, EB_LOG_WARN,
               "cannot start the thread that stops retired Kafka producers; stopping this one on "
               "the event loop",
               eb_lf_str("error", strerror(rc)));
        free(j);
        destroy_one(r->log, rk, mem);
        return;
    }
    j->rk = rk;
    j->mem = mem;
    atomic_fetch_add(&r->pending, 1);
    pthread_mutex_lock(&r->mu);
    *r->tail = j;
    r->tail = &j->next;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

void eb_kafka_reaper_destroy(eb_kafka_reaper_t *r) {
    if (!r)
        return;
    if (r->started) {
        size_t left = atomic_load(&r->pending);
        if (left)
            eb_log(r->log, EB_LOG_INFO, "waiting for retired Kafka producers to stop",
                   eb_lf_int("producers", (int64_t)left));
        pthread_mutex_lock(&r->mu);
        r->stopping = true;
        pthread_cond_signal(&r->cv);
        pthread_mutex_unlock(&r->mu);
        pthread_join(r->thread, NULL);
    }
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}
