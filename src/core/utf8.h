/* utf8.h -- UTF-8 well-formedness checks (RFC 3629).
 *
 * Pure functions over caller memory; no I/O, no global state.
 */
#ifndef EB_UTF8_H
#define EB_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length (1..4) of the well-formed UTF-8 sequence at p, of which `avail`
 * bytes are readable, or 0 when the bytes at p do not start one (Unicode
 * Table 3-7: no overlongs, no surrogates, nothing above U+10FFFF). avail >= 1.
 * The one definition every escaper uses, so a header and a JSON string
 * replace exactly the same bytes. */
size_t eb_utf8_seq_len(const unsigned char *p, size_t avail);

/* True when p[0..n) is well-formed UTF-8 (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF). NUL bytes are valid UTF-8. */
bool eb_utf8_valid(const void *p, size_t n);

#endif
