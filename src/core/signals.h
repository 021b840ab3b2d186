/* signals.h -- create threads that never take the process's asynchronous
 * signals (SIGTERM, SIGHUP, SIGINT, ...), so those always reach the loop
 * thread, which handles them as libevent signal events.
 *
 * A new thread inherits the mask of the thread that creates it: block
 * around pthread_create() (or rd_kafka_new(), which starts librdkafka's
 * threads), then restore. Fault signals (SIGSEGV, SIGBUS, SIGFPE, SIGILL,
 * SIGTRAP, SIGABRT, SIGSYS) stay deliverable: they belong to the thread
 * that raised them, and the sanitizers report crashes through them.
 * Header-only.
 *
 * @locality any thread: affects the calling thread's mask only.
 */
#ifndef EB_SIGNALS_H
#define EB_SIGNALS_H

#include <pthread.h>
#include <signal.h>

/* Block every asynchronous signal in the calling thread; *old receives
 * the mask to restore with eb_signals_restore(). */
static inline void eb_signals_block_async(sigset_t *old) {
    static const int faults[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS};
    sigset_t s;
    sigfillset(&s);
    for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++)
        sigdelset(&s, faults[i]);
    pthread_sigmask(SIG_BLOCK, &s, old);
}

static inline void eb_signals_restore(const sigset_t *old) {
    pthread_sigmask(SIG_SETMASK, old, NULL);
}

#endif
