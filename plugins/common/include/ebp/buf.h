/* ebp/buf.h -- a growable byte buffer for plugins (they link nothing of
 * the bridge's but plugin.h). Sticky failure: after an allocation fails,
 * appends do nothing and ebp_buf_ok() is false.
 */
#ifndef EBP_BUF_H
#define EBP_BUF_H

#include <stdbool.h>
#include <stddef.h>

struct ebp_buf {
    char *data; /* owned; free with ebp_buf_free() */
    size_t len;
    size_t cap;
    bool failed;
};

#define EBP_BUF_INIT {NULL, 0, 0, false}

void ebp_buf_append(struct ebp_buf *b, const void *p, size_t n);
/* n more bytes at the end (len grows by n), to be written by the caller;
 * NULL (and failed) when the buffer cannot grow. */
void *ebp_buf_grow(struct ebp_buf *b, size_t n);
void ebp_buf_puts(struct ebp_buf *b, const char *s);
void ebp_buf_putc(struct ebp_buf *b, char c);
/* A JSON string literal of p[0..n) (quotes included); bytes that are not
 * UTF-8 become U+FFFD. */
void ebp_buf_json_string(struct ebp_buf *b, const void *p, size_t n);
/* p[0..n) with every byte of an ill-formed UTF-8 sequence replaced by
 * U+FFFD: text any UTF-8 reader accepts. */
void ebp_buf_utf8(struct ebp_buf *b, const void *p, size_t n);
static inline void ebp_buf_reset(struct ebp_buf *b) {
    b->len = 0;
    b->failed = false;
}
static inline bool ebp_buf_ok(const struct ebp_buf *b) {
    return !b->failed;
}
void ebp_buf_free(struct ebp_buf *b);

#endif
