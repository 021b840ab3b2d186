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
void ebp_buf_puts(struct ebp_buf *b, const char *s);
void ebp_buf_putc(struct ebp_buf *b, char c);
/* A JSON string literal of p[0..n) (quotes included); bytes that are not
 * UTF-8 become U+FFFD. */
void ebp_buf_json_string(struct ebp_buf *b, const void *p, size_t n);
static inline void ebp_buf_reset(struct ebp_buf *b) {
    b->len = 0;
    b->failed = false;
}
static inline bool ebp_buf_ok(const struct ebp_buf *b) {
    return !b->failed;
}
void ebp_buf_free(struct ebp_buf *b);

#endif
