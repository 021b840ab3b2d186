/* json.c -- JSON string escaping. On the per-event hot path: the escaper
 * copies runs of safe bytes with one memcpy and only looks closer at the
 * bytes a lookup table flags. */
#include "core/json.h"
#include "core/utf8.h"

/* 1 for bytes the escaper must look at: controls, '"', '\\', non-ASCII. */
static const unsigned char needs_care[256] = {
    ['\0' ... 0x1F] = 1,
    ['"'] = 1,
    ['\\'] = 1,
    [0x80 ... 0xFF] = 1,
};

static void put_escape(struct eb_buf *b, unsigned char c) {
    static const char hex[] = "0123456789abcdef";
    char esc[6] = {'\\', 0, 0, 0, 0, 0};
    size_t n = 2;
    switch (c) {
    case '"':
        esc[1] = '"';
        break;
    case '\\':
        esc[1] = '\\';
        break;
    case '\b':
        esc[1] = 'b';
        break;
    case '\f':
        esc[1] = 'f';
        break;
    case '\n':
        esc[1] = 'n';
        break;
    case '\r':
        esc[1] = 'r';
        break;
    case '\t':
        esc[1] = 't';
        break;
    default:
        esc[1] = 'u';
        esc[2] = '0';
        esc[3] = '0';
        esc[4] = hex[c >> 4];
        esc[5] = hex[c & 0xF];
        n = 6;
    }
    eb_buf_append(b, esc, n);
}

bool eb_json_string(struct eb_buf *b, const void *vp, size_t n) {
    const unsigned char *p = vp;
    bool valid = true;
    size_t run = 0, i = 0;
    /* eb_buf_putc writes into spare capacity even after a failure, so stop
     * here to keep a failed buffer unchanged (errors are sticky). */
    if (!eb_buf_reserve(b, n + 2))
        return eb_utf8_valid(p, n);
    eb_buf_putc(b, '"');
    while (i < n) {
        if (!needs_care[p[i]]) {
            i++;
            continue;
        }
        eb_buf_append(b, p + run, i - run);
        if (p[i] >= 0x80) {
            size_t l = eb_utf8_seq_len(p + i, n - i);
            if (l) {
                eb_buf_append(b, p + i, l);
                i += l;
            } else {
                eb_buf_append(b, "\xEF\xBF\xBD", 3); /* U+FFFD */
                valid = false;
                i++;
            }
        } else {
            put_escape(b, p[i]);
            i++;
        }
        run = i;
    }
    eb_buf_append(b, p + run, n - run);
    eb_buf_append(b, "\"", 1); /* not putc: a no-op once failed */
    return valid;
}

