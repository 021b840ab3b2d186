/* fault.h -- TEST-ONLY fault injection. Never set EB_CONSUMER_FAULT in
 * production.
 *
 * The end-to-end tests must kill the consumer at the one moment that matters
 * for exactly-once-in-effect -- after PostgreSQL committed an event, before
 * Kafka committed its offset -- which no outside timing can hit reliably.
 *
 *   EB_CONSUMER_FAULT=crash-after-db-commit:N
 *       after the N-th successful database transaction, the process sends
 *       itself SIGKILL before the offset is stored (tests/e2e/test_consumer.py).
 *
 * Unset (always, outside tests), every function here is a no-op.
 */
#ifndef OC_FAULT_H
#define OC_FAULT_H

/* Read EB_CONSUMER_FAULT. Returns 0, or -1 (and prints why) when it is set
 * to something this build does not know: a typo must not silently disable
 * the fault a test relies on. */
int oc_fault_init(void);

/* Called after every committed database transaction. */
void oc_fault_after_db_commit(void);

#endif
