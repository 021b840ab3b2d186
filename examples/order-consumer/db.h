/* db.h -- the PostgreSQL side (libpq): apply one event in one transaction.
 *
 * oc_db_apply() runs one SQL statement, and in PostgreSQL one statement
 * outside BEGIN is one transaction: it records the event id, cancels the
 * order if it is still pending and returns its lines to stock -- all of it
 * or none of it. When oc_db_apply() returns 0 the transaction has committed,
 * and only then may the caller let Kafka forget the message.
 *
 * Every failure is worth retrying (the event was checked by oc_event_parse()
 * first, so no event can make the statement fail by itself): the caller
 * retries the same event with backoff until it succeeds. Even "did the
 * COMMIT happen?" is safe to answer by retrying: if it did, the retry finds
 * the event id recorded and changes nothing.
 *
 * The handle connects lazily and reconnects after a lost connection, on the
 * next call. @locality main thread only (libpq connections are not
 * thread-safe).
 */
#ifndef OC_DB_H
#define OC_DB_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"

typedef struct oc_db oc_db_t;

/* What applying one event did. Only OC_CANCELLED changed orders and stock. */
enum oc_outcome {
    OC_CANCELLED,     /* was pending: now cancelled, every line's qty back in stock */
    OC_NOT_PENDING,   /* paid or already cancelled: left alone (event recorded) */
    OC_UNKNOWN_ORDER, /* no such order: nothing to do (event recorded) */
    OC_DUPLICATE,     /* this event id was applied before: nothing at all happened */
};

/* "cancelled", "not_pending", "unknown_order", "duplicate"; static storage. */
const char *oc_outcome_name(enum oc_outcome outcome);

/* Where the message was read; recorded with the event for debugging.
 * `topic` is borrowed for the call. */
struct oc_origin {
    const char *topic;
    int32_t partition;
    int64_t offset;
};

/* A handle for `conninfo` (a libpq keyword string or URI; "" means libpq's
 * defaults and PG* environment variables). The string is copied. Does not
 * connect. Returns NULL only when out of memory. Free with oc_db_destroy(). */
oc_db_t *oc_db_new(const char *conninfo);

/* Close the connection and free the handle. NULL is a no-op. */
void oc_db_destroy(oc_db_t *db);

/* Connect and prepare now instead of at the first event, to report a bad
 * conninfo or a missing schema at start. Returns 0, or -1 with a message in
 * errstr (not fatal: oc_db_apply() tries again). */
int oc_db_connect(oc_db_t *db, char *errstr, size_t errstr_size);

/* Apply migrations/001_schema.sql (embedded at build time). Idempotent.
 * Returns 0, or -1 with a message in errstr. */
int oc_db_migrate(oc_db_t *db, char *errstr, size_t errstr_size);

/* Apply one event in one transaction (see top of file). Returns 0 with
 * *outcome and *lines_returned (order lines put back into stock) set, or -1
 * with a message in errstr; on -1 nothing was applied, or it was and a retry
 * will say OC_DUPLICATE. */
int oc_db_apply(oc_db_t *db, const struct oc_event *ev, const struct oc_origin *origin,
                enum oc_outcome *outcome, int *lines_returned, char *errstr, size_t errstr_size);

#endif
