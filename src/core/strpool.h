/* strpool.h -- interned strings that live as long as their pool.
 *
 * A notification names the Redis node that announced it ("10.0.0.5:6379").
 * It is copied into the read-ahead buffer and may be routed after the
 * connection to that node is gone (a failover, a reload), so the name must
 * outlive the connection; copying it per event would cost on the hot path.
 * So node names are interned here once, in a pool the daemon owns for its
 * whole life: the same text always gives the same pointer, and no pointer
 * handed out is freed before the pool. The pool only grows, by one entry
 * per distinct name -- the masters a bridge has ever served.
 *
 * Ownership: the pool is owned by its creator (eb_strpool_destroy()); the
 * strings it returns are borrowed for the pool's life.
 *
 * @locality one thread at a time (the loop thread).
 */
#ifndef EB_STRPOOL_H
#define EB_STRPOOL_H

#include <stddef.h>

typedef struct eb_strpool eb_strpool_t;

/* NULL when out of memory. */
eb_strpool_t *eb_strpool_new(void);

/* The pool's copy of s (NUL-terminated), or NULL when out of memory. */
const char *eb_strpool_intern(eb_strpool_t *p, const char *s);

/* Distinct strings held. */
size_t eb_strpool_count(const eb_strpool_t *p);

/* NULL is a no-op. Every string it returned is freed. */
void eb_strpool_destroy(eb_strpool_t *p);

#endif
