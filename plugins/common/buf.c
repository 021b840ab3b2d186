/* buf.c -- ebp/buf.h. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ebp/buf.h>

/* Buffers never grow past this: a plugin's output is one Kafka message. */
#define EBP_BUF_MAX (256u << 20)

static bool reserve(struct ebp_buf *b, size_t extra) {
    if (b->failed)
        return false;
    if (extra <= b->cap - b->len)
        return true;
    if (extra > EBP_BUF_MAX - b->len) {
        b->failed = true;
        return false;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < extra)
        cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) {
        b->failed = true;
        return false;
    }
    b->data = d;
    b->cap = cap;
    return true;
}

void ebp_buf_append(struct ebp_buf *b, const void *p, size_t n) {
    if (n == 0 || !reserve(b, n))
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void *ebp_buf_grow(struct ebp_buf *b, size_t n) {
    if (!reserve(b, n))
        return NULL;
    b->len += n;
    return b->data + b->len - n;
}

void ebp_buf_puts(struct ebp_buf *b, const char *s) {
    ebp_buf_append(b, s, strlen(s));
}

void ebp_buf_putc(struct ebp_buf *b, char c) {
    ebp_buf_append(b, &c, 1);
}

/* Length of the well-formed UTF-8 sequence at p (RFC 3629), 0 if none. */
static size_t utf8_len(const unsigned char *p, size_t n) {
    unsigned c = p[0];
    size_t l = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
                                                      : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (l == 0 || l > n)
        return 0;
    for (size_t i = 1; i < l; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    }
    if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F) || (c == 0xF0 && p[1] < 0x90) ||
        (c == 0xF4 && p[1] > 0x8F))
        return 0;
    return l;
}

void ebp_buf_json_string(struct ebp_buf *b, const void *vp, size_t n) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = vp;
    ebp_buf_putc(b, '"');
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            ebp_buf_append(b, e, 2);
            i++;
        } else if (c < 0x20) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            ebp_buf_append(b, e, 6);
            i++;
        } else if (c < 0x80) {
            ebp_buf_putc(b, (char)c);
            i++;
        } else {
            size_t l = utf8_len(p + i, n - i);
            if (l) {
                ebp_buf_append(b, p + i, l);
                i += l;
            } else {
                ebp_buf_append(b, "\xEF\xBF\xBD", 3);
                i++;
            }
        }
    }
    ebp_buf_putc(b, '"');
}

void ebp_buf_utf8(struct ebp_buf *b, const void *vp, size_t n) {
    const unsigned char *p = vp;
    size_t run = 0, i = 0;
    while (i < n) {
        size_t l = utf8_len(p + i, n - i);
        if (l) {
            i += l;
            continue;
        }
        ebp_buf_append(b, p + run, i - run);
        ebp_buf_append(b, "\xEF\xBF\xBD", 3);
        run = ++i;
    }
    ebp_buf_append(b, p + run, n - run);
}

void ebp_buf_free(struct ebp_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = false;
}
