/* event.c -- STUB: implemented by the event encoder work item. */
#include <string.h>

#include "error.h"
#include "event.h"

void eb_encoded_init(struct eb_encoded *enc) {
    memset(enc, 0, sizeof(*enc));
}
void eb_encoded_free(struct eb_encoded *enc) {
    eb_buf_free(&enc->value);
    eb_buf_free(&enc->hdrbuf);
}
int eb_event_encode(const struct eb_event *ev, enum eb_event_format fmt,
                    const struct eb_header *extra, size_t nextra, struct eb_encoded *enc) {
    return EB_EINVAL;
}
void eb_event_id(const struct eb_event *ev, char out[33]) {
    memset(out, '0', 32);
    out[32] = '\0';
}
bool eb_event_format_parse(const char *s, enum eb_event_format *out) {
    return false;
}
const char *eb_event_format_name(enum eb_event_format fmt) {
    return "cloudevents";
}
