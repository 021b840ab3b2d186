/* json.h -- growable byte buffer and the JSON writing primitives the event
 * encoder and the logger share: string escaping that always yields valid
 * UTF-8, a UTF-8 validator, and base64.
 *
 * Pure functions over caller memory; no I/O, no global state.
 *
 * Errors are sticky: an append that cannot grow the buffer sets `failed`
 * and every later append is a no-op, so an encoder checks once at the end
 * (eb_buf_ok) instead of after every write.
 */
#ifndef EB_JSON_H
#define EB_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct eb_buf {
    char *data;  /* owned by the buffer; free with eb_buf_free() */
    size_t len;  /* bytes written */
    size_t cap;  /* bytes allocated */
    size_t max;  /* growth limit in bytes (0: none); past it `failed` is set */
    bool failed; /* sticky: an append failed (out of memory or over max) */
};

#define EB_BUF_INIT                                                                                \
    { NULL, 0, 0, 0, false }

/* Release the storage; the buffer may be reused after eb_buf_init(). */
void eb_buf_free(struct eb_buf *b);

/* Forget the contents (and a failure), keep the storage for reuse. */
static inline void eb_buf_reset(struct eb_buf *b) {
    b->len = 0;
    b->failed = false;
}

/* Make room for `extra` more bytes. Returns false (and sets failed) when the
 * buffer cannot grow. */
bool eb_buf_reserve(struct eb_buf *b, size_t extra);

static inline void eb_buf_append(struct eb_buf *b, const void *p, size_t n) {
    if (n == 0 || !eb_buf_reserve(b, n))
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static inline void eb_buf_putc(struct eb_buf *b, char c) {
    if (b->len < b->cap && !b->failed) {
        b->data[b->len++] = c;
        return;
    }
    eb_buf_append(b, &c, 1);
}

/* Append a NUL-terminated string literal or C string. */
static inline void eb_buf_puts(struct eb_buf *b, const char *s) {
    eb_buf_append(b, s, strlen(s));
}

void eb_buf_put_i64(struct eb_buf *b, int64_t v);
void eb_buf_put_u64(struct eb_buf *b, uint64_t v);

/* NUL-terminate without counting the NUL in len (for C APIs). */
void eb_buf_cstr(struct eb_buf *b);

static inline bool eb_buf_ok(const struct eb_buf *b) {
    return !b->failed;
}

/* Length (1..4) of the well-formed UTF-8 sequence at p, of which `avail`
 * bytes are readable, or 0 when the bytes at p do not start one (Unicode
 * Table 3-7: no overlongs, no surrogates, nothing above U+10FFFF). avail >= 1.
 * The one definition every escaper uses, so a header and a JSON string
 * replace exactly the same bytes. */
size_t eb_utf8_seq_len(const unsigned char *p, size_t avail);

/* True when p[0..n) is well-formed UTF-8 (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF). NUL bytes are valid UTF-8. */
bool eb_utf8_valid(const void *p, size_t n);

/* Append p[0..n) as a quoted JSON string. Control characters, '"' and '\\'
 * are escaped; each byte of an ill-formed UTF-8 sequence becomes U+FFFD, so
 * the output is always valid UTF-8 JSON. Returns true when the input was
 * valid UTF-8 (nothing was replaced), i.e. when the bytes round-trip. */
bool eb_json_string(struct eb_buf *b, const void *p, size_t n);

/* Append p[0..n) as standard base64 (RFC 4648 §4, with padding), unquoted. */
void eb_base64(struct eb_buf *b, const void *p, size_t n);

/* Append an RFC 3339 UTC timestamp with `digits` fractional digits (0, 3 or
 * 6) for `us` microseconds since the Unix epoch, e.g.
 * 2026-11-24T03:40:00.123456Z. Unquoted. */
void eb_rfc3339(struct eb_buf *b, int64_t us, int digits);

#endif
