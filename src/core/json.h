/* json.h -- JSON string escaping that always yields valid UTF-8, shared by
 * the event encoder and the logger.
 *
 * Pure functions over caller memory; no I/O, no global state.
 */
#ifndef EB_JSON_H
#define EB_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

/* Append p[0..n) as a quoted JSON string. Control characters, '"' and '\\'
 * are escaped; each byte of an ill-formed UTF-8 sequence becomes U+FFFD, so
 * the output is always valid UTF-8 JSON. Returns true when the input was
 * valid UTF-8 (nothing was replaced), i.e. when the bytes round-trip. */
bool eb_json_string(struct eb_buf *b, const void *p, size_t n);

#endif
