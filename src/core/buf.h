/* buf.h -- a growable byte buffer, and the fixed formats appended to it:
 * integers, standard base64, RFC 3339 UTC time.
 *
 * Errors are sticky: an append that cannot grow the buffer sets `failed`
 * and every later append is a no-op, so an encoder checks once at the end
 * (eb_buf_ok) instead of after every write.
 *
 * Ownership: the buffer owns `data`; free with eb_buf_free().
 * Pure functions over caller memory; no I/O, no global state.
 */
#ifndef EB_BUF_H
#define EB_BUF_H

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

/* Append p[0..n) as standard base64 (RFC 4648 §4, with padding), unquoted. */
void eb_buf_put_base64(struct eb_buf *b, const void *p, size_t n);

/* Append an RFC 3339 UTC timestamp with `digits` fractional digits (0, 3 or
 * 6) for `us` microseconds since the Unix epoch, e.g.
 * 2026-11-24T03:40:00.123456Z. Unquoted. */
void eb_buf_put_rfc3339(struct eb_buf *b, int64_t us, int digits);

#endif
