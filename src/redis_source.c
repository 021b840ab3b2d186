/* redis_source.c -- STUB: implemented by the Redis source work item. */
#include <stdlib.h>

#include "error.h"
#include "redis_source.h"

eb_redis_source_t *eb_redis_source_new(struct event_base *base,
                                       const struct eb_redis_source_conf *conf, char *errstr,
                                       size_t errstr_size) {
    eb_seterr(errstr, errstr_size, EB_EINVAL, "redis source not implemented");
    return NULL;
}
int eb_redis_source_start(eb_redis_source_t *s) {
    return EB_ESTATE;
}
void eb_redis_source_stop(eb_redis_source_t *s) {
}
int eb_redis_source_set_events(eb_redis_source_t *s, uint64_t events) {
    return 0;
}
enum eb_redis_state eb_redis_source_state(const eb_redis_source_t *s) {
    return EB_REDIS_STOPPED;
}
void eb_redis_source_destroy(eb_redis_source_t *s) {
}
