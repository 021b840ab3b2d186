/* fuzz_event.c -- libFuzzer target for the event encoder.
 *
 * Input layout (little-endian; short inputs are zero-padded):
 *   [0]      flags: bits 0-1 format (3 wraps to cloudevents), bit 2 has_payload,
 *            bit 3 payload NULL, bit 4 recovered, bit 5 route NULL,
 *            bit 6 deadline from [10..17] (else -1: unknown)
 *   [1]      bits 0-2 number of params (0..7), bits 3-7 extra headers (0..31)
 *   [2..9]   time_us
 *   [10..17] deadline_ms (any value, negative included)
 *   [18..21] db
 *   then 0xFF-terminated segments: event, source, route, payload, and a name
 *   and a value per param; the rest (any bytes, 0xFF too) is the key.
 *
 * Checks, beyond "no crash": EB_EINVAL exactly when the input breaks the
 * contract (empty event/source, too many headers, payload that an
 * independent validator here rejects); otherwise the value is strict JSON
 * in well-formed UTF-8, key_base64 is present exactly when the key is not
 * UTF-8, the headers match the format, ce_* values are UTF-8, the id is the
 * one eb_event_id gives, and a second identical encode produces the same
 * bytes without growing a buffer.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/event.h"
#include "core/json.h"
#include "core/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

/* ------------------------------------------------------------------------ */
/* An independent strict JSON validator                                      */
/* ------------------------------------------------------------------------ */

struct jv {
    const unsigned char *p, *end;
};

static bool jv_value(struct jv *v, int depth);

static void jv_ws(struct jv *v) {
    while (v->p < v->end && (*v->p == ' ' || *v->p == '\n' || *v->p == '\r' || *v->p == '\t'))
        v->p++;
}

static bool jv_utf8(struct jv *v) {
    unsigned char c = *v->p;
    int n = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (!n || v->end - v->p < n)
        return false;
    uint32_t cp = c & (0x7F >> n);
    for (int i = 1; i < n; i++) {
        if ((v->p[i] & 0xC0) != 0x80)
            return false;
        cp = cp << 6 | (v->p[i] & 0x3F);
    }
    static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return false;
    v->p += n;
    return true;
}

static long jv_hex4(struct jv *v) {
    if (v->end - v->p < 4)
        return -1;
    long x = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = *v->p++;
        int d = (c >= '0' && c <= '9')   ? c - '0'
                : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                         : -1;
        if (d < 0)
            return -1;
        x = x * 16 + d;
    }
    return x;
}

static bool jv_string(struct jv *v) {
    if (v->p == v->end || *v->p != '"')
        return false;
    v->p++;
    while (v->p < v->end) {
        unsigned char c = *v->p;
        if (c == '"') {
            v->p++;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c >= 0x80) {
            if (!jv_utf8(v))
                return false;
            continue;
        }
        v->p++;
        if (c != '\\')
            continue;
        if (v->p == v->end)
            return false;
        c = *v->p++;
        if (c == 'u') {
            long u = jv_hex4(v);
            if (u < 0 || (u >= 0xDC00 && u <= 0xDFFF))
                return false;
            if (u >= 0xD800 && u <= 0xDBFF) {
                if (v->end - v->p < 2 || v->p[0] != '\\' || v->p[1] != 'u')
                    return false;
                v->p += 2;
                long lo = jv_hex4(v);
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return false;
            }
        } else if (!memchr("\"\\/bfnrt", c, 8)) {
            return false;
        }
    }
    return false;
}

static bool jv_digits(struct jv *v) {
    const unsigned char *s = v->p;
    while (v->p < v->end && *v->p >= '0' && *v->p <= '9')
        v->p++;
    return v->p > s;
}

static bool jv_lit(struct jv *v, const char *w) {
    size_t n = strlen(w);
    if ((size_t)(v->end - v->p) < n || memcmp(v->p, w, n) != 0)
        return false;
    v->p += n;
    return true;
}

static bool jv_container(struct jv *v, int depth, bool obj) {
    v->p++;
    jv_ws(v);
    if (v->p < v->end && *v->p == (obj ? '}' : ']')) {
        v->p++;
        return true;
    }
    for (;;) {
        if (obj) {
            jv_ws(v);
            if (!jv_string(v))
                return false;
            jv_ws(v);
            if (v->p == v->end || *v->p++ != ':')
                return false;
        }
        if (!jv_value(v, depth + 1))
            return false;
        jv_ws(v);
        if (v->p == v->end)
            return false;
        unsigned char c = *v->p++;
        if (c == ',')
            continue;
        return c == (obj ? '}' : ']');
    }
}

static bool jv_value(struct jv *v, int depth) {
    if (depth > 1000)
        return false;
    jv_ws(v);
    if (v->p == v->end)
        return false;
    switch (*v->p) {
    case '{':
        return jv_container(v, depth, true);
    case '[':
        return jv_container(v, depth, false);
    case '"':
        return jv_string(v);
    case 't':
        return jv_lit(v, "true");
    case 'f':
        return jv_lit(v, "false");
    case 'n':
        return jv_lit(v, "null");
    default:
        break;
    }
    if (*v->p == '-')
        v->p++;
    if (v->p < v->end && *v->p == '0')
        v->p++;
    else if (!jv_digits(v))
        return false;
    if (v->p < v->end && *v->p == '.') {
        v->p++;
        if (!jv_digits(v))
            return false;
    }
    if (v->p < v->end && (*v->p == 'e' || *v->p == 'E')) {
        v->p++;
        if (v->p < v->end && (*v->p == '+' || *v->p == '-'))
            v->p++;
        if (!jv_digits(v))
            return false;
    }
    return true;
}

/* Also counts nesting, so payloads deeper than the encoder's limit can be
 * told apart from invalid ones. */
static int max_depth(const unsigned char *p, size_t n) {
    int d = 0, m = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        if (in_str) {
            if (p[i] == '\\')
                i++;
            else if (p[i] == '"')
                in_str = false;
        } else if (p[i] == '"') {
            in_str = true;
        } else if (p[i] == '{' || p[i] == '[') {
            m = ++d > m ? d : m;
        } else if (p[i] == '}' || p[i] == ']') {
            d--;
        }
    }
    return m;
}

static bool json_valid(const void *p, size_t n) {
    struct jv v = {p, (const unsigned char *)p + n};
    if (!jv_value(&v, 0))
        return false;
    jv_ws(&v);
    return v.p == v.end;
}

/* ------------------------------------------------------------------------ */
/* Input decoding                                                            */
/* ------------------------------------------------------------------------ */

struct input {
    const uint8_t *p, *end;
};

/* Next 0xFF-terminated segment (or the rest when none is left). */
static const uint8_t *segment(struct input *in, size_t *len) {
    const uint8_t *s = in->p;
    const uint8_t *ff = memchr(s, 0xFF, (size_t)(in->end - s));
    *len = (size_t)((ff ? ff : in->end) - s);
    in->p = ff ? ff + 1 : in->end;
    return s;
}

/* A NUL-terminated copy (C strings stop at an embedded NUL, as they would
 * when they come from the config). Owned by the caller; free(). */
static char *cstr(const uint8_t *p, size_t n) {
    char *s = malloc(n + 1);
    CHECK(s);
    if (n)
        memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

static uint64_t le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* ------------------------------------------------------------------------ */
/* Checks                                                                    */
/* ------------------------------------------------------------------------ */

static bool within(const void *v, size_t n, const struct eb_buf *b) {
    const char *p = v;
    return b->data && p >= b->data && p + n <= b->data + b->len;
}

static void check_output(const struct eb_event *ev, enum eb_event_format fmt,
                         const struct eb_header *extra, size_t nextra,
                         const struct eb_encoded *enc) {
    CHECK(json_valid(enc->value.data, enc->value.len));
    CHECK(enc->value.data[enc->value.len] == '\0');

    char id[33];
    eb_event_id(ev, id);
    CHECK(strcmp(id, enc->id) == 0);
    CHECK(strspn(enc->id, "0123456789abcdef") == 32);

    /* key_base64 exactly when the key is not UTF-8, carrying its bytes. */
    struct eb_buf b64 = EB_BUF_INIT;
    eb_buf_puts(&b64, "\"key_base64\":\"");
    eb_buf_put_base64(&b64, ev->key, ev->key_len);
    eb_buf_putc(&b64, '"');
    CHECK(eb_buf_ok(&b64));
    bool has = memmem(enc->value.data, enc->value.len, b64.data, b64.len) != NULL;
    if (!eb_utf8_valid(ev->key, ev->key_len))
        CHECK(has);
    eb_buf_free(&b64);

    size_t nbase = fmt == EB_FORMAT_CLOUDEVENTS          ? 1
                   : fmt == EB_FORMAT_CLOUDEVENTS_BINARY ? (ev->key_len ? 7 : 6)
                                                         : 0;
    CHECK(enc->nheaders == nbase + nextra);
    for (size_t i = 0; i < nbase; i++) {
        const struct eb_header *h = &enc->headers[i];
        CHECK(h->name && h->value);
        CHECK(eb_utf8_valid(h->value, h->value_len));
        if (strcmp(h->name, "ce_source") == 0 || strcmp(h->name, "ce_type") == 0 ||
            strcmp(h->name, "ce_time") == 0 || strcmp(h->name, "ce_subject") == 0)
            CHECK(within(h->value, h->value_len, &enc->hdrbuf));
    }
    for (size_t i = 0; i < nextra; i++) {
        CHECK(enc->headers[nbase + i].name == extra[i].name);
        CHECK(enc->headers[nbase + i].value == extra[i].value);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t hdr[22] = {0};
    memcpy(hdr, data, size < sizeof(hdr) ? size : sizeof(hdr));
    struct input in = {data + (size < sizeof(hdr) ? size : sizeof(hdr)), data + size};

    uint8_t flags = hdr[0];
    enum eb_event_format fmt = (enum eb_event_format)((flags & 3) % 3);
    size_t nparams = hdr[1] & 7, nextra = hdr[1] >> 3;

    size_t n;
    const uint8_t *s;
    s = segment(&in, &n);
    char *event = cstr(s, n);
    s = segment(&in, &n);
    char *source = cstr(s, n);
    s = segment(&in, &n);
    char *route = cstr(s, n);
    const uint8_t *payload = segment(&in, &n);
    size_t payload_len = n;
    struct eb_capture caps[7];
    char *names[7];
    for (size_t i = 0; i < nparams; i++) {
        s = segment(&in, &n);
        names[i] = cstr(s, n);
        caps[i].name = names[i];
        caps[i].value = (const char *)segment(&in, &caps[i].value_len);
    }
    /* The key: a heap copy of exactly its size, so ASan sees overreads. */
    size_t key_len = (size_t)(in.end - in.p);
    uint8_t *key = malloc(key_len ? key_len : 1);
    CHECK(key);
    if (key_len)
        memcpy(key, in.p, key_len);

    struct eb_event ev = {
        .event = event,
        .key = key,
        .key_len = key_len,
        .db = (int)(int32_t)le(hdr + 18, 4),
        .source = source,
        .route = (flags & 0x20) ? NULL : route,
        .params = caps,
        .nparams = nparams,
        .delivery = (flags & 0x10) ? EB_DELIVERY_RECOVERED : EB_DELIVERY_LIVE,
        .time_us = (int64_t)le(hdr + 2, 8),
        .deadline_ms = (flags & 0x40) ? (int64_t)le(hdr + 10, 8) : -1,
        .has_payload = (flags & 0x04) != 0,
        .payload_json = (flags & 0x08) ? NULL : (const char *)payload,
        .payload_len = (flags & 0x08) ? 0 : payload_len,
    };
    static const struct eb_header pool[EB_EVENT_MAX_HEADERS] = {
        {"x-a", "1", 1}, {"x-b", "\0\xff", 2}, {"x-c", "", 0}, {"x-d", "d", 1}};
    struct eb_header extra[EB_EVENT_MAX_HEADERS];
    for (size_t i = 0; i < nextra; i++)
        extra[i] = pool[i % 4];

    size_t nbase = fmt == EB_FORMAT_CLOUDEVENTS          ? 1
                   : fmt == EB_FORMAT_CLOUDEVENTS_BINARY ? (key_len ? 7 : 6)
                                                         : 0;
    bool payload_ok =
        !ev.has_payload || !ev.payload_json ||
        (json_valid(ev.payload_json, ev.payload_len) && max_depth(payload, payload_len) <= 512);
    bool expect_ok = event[0] && source[0] && nbase + nextra <= EB_EVENT_MAX_HEADERS && payload_ok;

    struct eb_encoded enc;
    eb_event_encoded_init(&enc);
    int rc = eb_event_encode(&ev, fmt, extra, nextra, &enc);
    CHECK(rc == (expect_ok ? EB_OK : EB_EINVAL));
    if (rc == EB_OK) {
        check_output(&ev, fmt, extra, nextra, &enc);
        /* Same input again: same bytes, no buffer growth. */
        char *copy = cstr((const uint8_t *)enc.value.data, enc.value.len);
        const char *vdata = enc.value.data, *hdata = enc.hdrbuf.data;
        size_t vlen = enc.value.len;
        CHECK(eb_event_encode(&ev, fmt, extra, nextra, &enc) == EB_OK);
        CHECK(enc.value.data == vdata && enc.hdrbuf.data == hdata);
        CHECK(enc.value.len == vlen && memcmp(enc.value.data, copy, vlen) == 0);
        free(copy);
    }
    eb_event_encoded_free(&enc);

    for (size_t i = 0; i < nparams; i++)
        free(names[i]);
    free(key);
    free(route);
    free(source);
    free(event);
    return 0;
}
