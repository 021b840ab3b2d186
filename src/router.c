/* router.c -- STUB: implemented by the router work item. */
#include <stdlib.h>

#include "error.h"
#include "router.h"

eb_router_t *eb_router_new(const struct eb_router_rule *rules, size_t n, size_t *bad_rule,
                           char *errstr, size_t errstr_size) {
    (void)rules;
    (void)n;
    (void)bad_rule;
    eb_seterr(errstr, errstr_size, EB_EINVAL, "router not implemented");
    return NULL;
}
void eb_router_destroy(eb_router_t *r) {
    (void)r;
}
size_t eb_router_rule_count(const eb_router_t *r) {
    (void)r;
    return 0;
}
bool eb_router_match(const eb_router_t *r, const void *key, size_t len, int event,
                     struct eb_match *out) {
    return false;
}
void eb_router_render_key(const eb_router_t *r, const struct eb_match *m, const void *key,
                          size_t len, int db, const char *event, struct eb_buf *out) {
    eb_buf_append(out, key, len);
}
int eb_router_check_pattern(const char *pattern, size_t *err_offset, char *errstr,
                            size_t errstr_size) {
    return 0;
}
int eb_router_check_template(const char *tmpl, const char *pattern, size_t *err_offset,
                             char *errstr, size_t errstr_size) {
    return 0;
}
void eb_router_literal_prefix(const char *pattern, char *out, size_t out_size) {
    if (out_size)
        out[0] = '\0';
}
