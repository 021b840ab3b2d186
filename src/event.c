/* event.c -- one keyevent to the bytes of a Kafka message (value + headers).
 *
 * Runs once per event at up to ~1M events/s, so it is written for the hot
 * path: one reserve per event into buffers the caller reuses (no malloc once
 * they have grown to the working size), no snprintf, no gmtime, the escaped
 * key is written once and copied for its second appearance, and header
 * pointers are computed from offsets after the last write so buffer growth
 * cannot leave them dangling.
 *
 * The output contract (field order, formats, headers, the id rule) is
 * docs/event.md; tests/schema checks real output against
 * docs/event.schema.json.
 */
#include <string.h>

/* Inline XXH3 into this file: the id is computed per event and a call into
 * the shared library costs more than hashing ~80 bytes. */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "error.h"
#include "event.h"

/* A buffer that grew past this for one huge event (a 100 MB key) is given
 * back when a later event needs less than a quarter of it, so one outlier
 * does not pin its memory for the life of the process. 4 MiB is far above
 * any realistic event, so steady streams never hit it. */
#define EB_EVENT_SHRINK_ABOVE (4u << 20)

/* Nesting limit of data.payload. Deeper documents are refused rather than
 * handed to consumers whose recursive parsers (Python's json: ~1000 levels)
 * might fail on them. */
#define EB_EVENT_PAYLOAD_MAX_DEPTH 512

/* ------------------------------------------------------------------------ */
/* UTF-8 sanitising for header values (not JSON: raw bytes)                  */
/* ------------------------------------------------------------------------ */

/* Length of the well-formed UTF-8 sequence at p (1..4) or 0, per Unicode
 * Table 3-7. Same rule as json.c's escaper, so a ce_subject header and the
 * JSON "subject" replace exactly the same bytes. */
static size_t utf8_seq_len(const unsigned char *p, size_t avail) {
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return (avail >= 2 && (p[1] & 0xC0) == 0x80) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (avail < 3 || (p[2] & 0xC0) != 0x80)
            return 0;
        unsigned char lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        return (p[1] >= lo && p[1] <= hi) ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (avail < 4 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return 0;
        unsigned char lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        return (p[1] >= lo && p[1] <= hi) ? 4 : 0;
    }
    return 0;
}

/* Append p[0..n) with each byte of an ill-formed sequence replaced by
 * U+FFFD. `valid` is what the caller already knows (skips the scan). */
static void put_utf8_sanitized(struct eb_buf *b, const void *vp, size_t n, bool valid) {
    const unsigned char *p = vp;
    if (valid) {
        eb_buf_append(b, p, n);
        return;
    }
    size_t run = 0, i = 0;
    while (i < n) {
        size_t l = p[i] < 0x80 ? 1 : utf8_seq_len(p + i, n - i);
        if (l) {
            i += l;
            continue;
        }
        eb_buf_append(b, p + run, i - run);
        eb_buf_append(b, "\xEF\xBF\xBD", 3);
        run = ++i;
    }
    eb_buf_append(b, p + run, n - run);
}

/* ------------------------------------------------------------------------ */
/* JSON helpers                                                              */
/* ------------------------------------------------------------------------ */

/* Append the escaped body of a JSON string (no quotes), for text that is
 * glued to a literal prefix such as "redis.key.". Event names are plain
 * ASCII, so the common case is one memcpy. */
static void put_json_body(struct eb_buf *b, const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n && p[i] >= 0x20 && p[i] < 0x80 && p[i] != '"' && p[i] != '\\')
        i++;
    if (i == n) {
        eb_buf_append(b, s, n);
        return;
    }
    size_t mark = b->len;
    eb_json_string(b, s, n);
    if (!eb_buf_ok(b))
        return;
    /* Drop the quotes eb_json_string wrote around the body. */
    memmove(b->data + mark, b->data + mark + 1, b->len - mark - 2);
    b->len -= 2;
}

static void put_lit(struct eb_buf *b, const char *lit, size_t n) {
    eb_buf_append(b, lit, n);
}
#define PUT_LIT(b, s) put_lit((b), (s), sizeof(s) - 1)

static void put_json_cstr(struct eb_buf *b, const char *s) {
    eb_json_string(b, s, strlen(s));
}

/* Is p[0..n) one JSON text (RFC 8259) in well-formed UTF-8, nested at most
 * EB_EVENT_PAYLOAD_MAX_DEPTH deep? Iterative, so hostile input cannot
 * exhaust the stack. Lone surrogate escapes are refused: strict parsers
 * (jansson) reject them, and the output must parse everywhere. */
static const unsigned char *skip_ws(const unsigned char *p, const unsigned char *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static int hex4(const unsigned char *p, const unsigned char *end) {
    if (end - p < 4)
        return -1;
    int v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* p at the opening quote; returns the byte after the closing one, or NULL. */
static const unsigned char *scan_string(const unsigned char *p, const unsigned char *end) {
    for (p++; p < end; p++) {
        if (*p == '"')
            return p + 1;
        if (*p < 0x20)
            return NULL;
        if (*p != '\\')
            continue;
        if (++p == end)
            return NULL;
        if (*p != 'u') {
            if (!strchr("\"\\/bfnrt", *p) || *p == '\0')
                return NULL;
            continue;
        }
        int u = hex4(p + 1, end);
        if (u < 0)
            return NULL;
        p += 4;
        if (u >= 0xDC00 && u <= 0xDFFF)
            return NULL;
        if (u >= 0xD800 && u <= 0xDBFF) {
            if (end - p < 7 || p[1] != '\\' || p[2] != 'u')
                return NULL;
            int lo = hex4(p + 3, end);
            if (lo < 0xDC00 || lo > 0xDFFF)
                return NULL;
            p += 6;
        }
    }
    return NULL;
}

static const unsigned char *scan_digits(const unsigned char *p, const unsigned char *end) {
    const unsigned char *s = p;
    while (p < end && *p >= '0' && *p <= '9')
        p++;
    return p == s ? NULL : p;
}

static const unsigned char *scan_number(const unsigned char *p, const unsigned char *end) {
    if (*p == '-')
        p++;
    if (p < end && *p == '0')
        p++;
    else if (!(p = scan_digits(p, end)))
        return NULL;
    if (p < end && *p == '.' && !(p = scan_digits(p + 1, end)))
        return NULL;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (!(p = scan_digits(p, end)))
            return NULL;
    }
    return p;
}

static const unsigned char *scan_word(const unsigned char *p, const unsigned char *end,
                                      const char *w, size_t n) {
    return (size_t)(end - p) >= n && memcmp(p, w, n) == 0 ? p + n : NULL;
}

static bool json_text_valid(const void *vp, size_t n) {
    const unsigned char *p = vp, *end = p + n;
    /* One bit per open container: 1 = object, 0 = array. */
    unsigned char stack[EB_EVENT_PAYLOAD_MAX_DEPTH / 8] = {0};
    size_t depth = 0;
    if (!eb_utf8_valid(p, n))
        return false;
    p = skip_ws(p, end);
    for (;;) {
        /* Expecting a value. */
        if (p == end)
            return false;
        switch (*p) {
        case '{':
        case '[': {
            bool obj = *p == '{';
            if (depth == EB_EVENT_PAYLOAD_MAX_DEPTH)
                return false;
            stack[depth / 8] = (unsigned char)((stack[depth / 8] & ~(1u << (depth % 8))) |
                                               ((unsigned)obj << (depth % 8)));
            depth++;
            p = skip_ws(p + 1, end);
            if (p < end && *p == (obj ? '}' : ']')) {
                depth--;
                p++;
                break;
            }
            if (obj)
                goto member_name;
            continue;
        }
        case '"':
            p = scan_string(p, end);
            break;
        case 't':
            p = scan_word(p, end, "true", 4);
            break;
        case 'f':
            p = scan_word(p, end, "false", 5);
            break;
        case 'n':
            p = scan_word(p, end, "null", 4);
            break;
        default:
            p = (*p == '-' || (*p >= '0' && *p <= '9')) ? scan_number(p, end) : NULL;
            break;
        }
        /* After a value: close containers, or move to the next element. */
        for (;;) {
            if (!p)
                return false;
            p = skip_ws(p, end);
            if (depth == 0)
                return p == end;
            bool obj = (stack[(depth - 1) / 8] >> ((depth - 1) % 8)) & 1;
            if (p < end && *p == (obj ? '}' : ']')) {
                depth--;
                p++;
                continue;
            }
            if (p == end || *p != ',')
                return false;
            p = skip_ws(p + 1, end);
            if (obj)
                goto member_name;
            break;
        }
        continue;
    member_name:
        if (p == end || *p != '"' || !(p = scan_string(p, end)))
            return false;
        p = skip_ws(p, end);
        if (p == end || *p != ':')
            return false;
        p = skip_ws(p + 1, end);
    }
}

/* ------------------------------------------------------------------------ */
/* id                                                                        */
/* ------------------------------------------------------------------------ */

/* Inputs up to this size are framed on the stack and hashed in one call;
 * larger (long keys) go through XXH3's streaming state, which hashes the
 * same byte sequence to the same value. */
#define ID_STACK_BYTES 512

static size_t put_le64(unsigned char *o, uint64_t v) {
    for (int i = 0; i < 8; i++)
        o[i] = (unsigned char)(v >> (8 * i));
    return 8;
}

static unsigned char *put_mem(unsigned char *o, const void *p, size_t n) {
    if (n)
        memcpy(o, p, n);
    return o + n;
}

/* The framed id input, in pieces: le64 length before each variable field,
 * so ("ab","c") and ("a","bc") can never collide. Layout (docs/event.md):
 *   le64 len(source) source  le64 db  le64 len(key) key
 *   le64 len(event) event  u8 tag  le64 value
 * tag 'd' + deadline_ms when the deadline is known, else 't' + time_us. */
void eb_event_id(const struct eb_event *ev, char out[33]) {
    static const char hex[] = "0123456789abcdef";
    const char *source = ev->source ? ev->source : "";
    const char *event = ev->event ? ev->event : "";
    size_t slen = strlen(source), elen = strlen(event);
    bool dl = ev->deadline_ms >= 0;
    unsigned char tail[9];
    tail[0] = dl ? 'd' : 't';
    put_le64(tail + 1, (uint64_t)(dl ? ev->deadline_ms : ev->time_us));
    unsigned char hdr[8], klen[8], evlen[8];
    put_le64(hdr, slen);
    put_le64(klen, ev->key_len);
    put_le64(evlen, elen);

    XXH128_hash_t h;
    size_t total = 8 + slen + 8 + 8 + ev->key_len + 8 + elen + sizeof(tail);
    if (total <= ID_STACK_BYTES && ev->key_len <= ID_STACK_BYTES) {
        unsigned char in[ID_STACK_BYTES], *o = in;
        o = put_mem(o, hdr, 8);
        o = put_mem(o, source, slen);
        o += put_le64(o, (uint64_t)(int64_t)ev->db);
        o = put_mem(o, klen, 8);
        o = put_mem(o, ev->key, ev->key_len);
        o = put_mem(o, evlen, 8);
        o = put_mem(o, event, elen);
        o = put_mem(o, tail, sizeof(tail));
        h = XXH3_128bits(in, (size_t)(o - in));
    } else {
        XXH3_state_t st;
        unsigned char dbb[8];
        put_le64(dbb, (uint64_t)(int64_t)ev->db);
        XXH3_128bits_reset(&st);
        XXH3_128bits_update(&st, hdr, 8);
        XXH3_128bits_update(&st, source, slen);
        XXH3_128bits_update(&st, dbb, 8);
        XXH3_128bits_update(&st, klen, 8);
        if (ev->key_len)
            XXH3_128bits_update(&st, ev->key, ev->key_len);
        XXH3_128bits_update(&st, evlen, 8);
        XXH3_128bits_update(&st, event, elen);
        XXH3_128bits_update(&st, tail, sizeof(tail));
        h = XXH3_128bits_digest(&st);
    }
    /* Big-endian (XXH's canonical form): high64 then low64. */
    for (int i = 0; i < 16; i++) {
        unsigned v =
            (unsigned)((i < 8 ? h.high64 >> (56 - 8 * i) : h.low64 >> (56 - 8 * (i - 8))) & 0xFF);
        out[2 * i] = hex[v >> 4];
        out[2 * i + 1] = hex[v & 15];
    }
    out[32] = '\0';
}

/* ------------------------------------------------------------------------ */
/* Encoding                                                                  */
/* ------------------------------------------------------------------------ */

/* Where the escaped key already sits in the value buffer (structured mode
 * writes it as "subject" first), so data.key is a memcpy, not a second
 * escape of a possibly 1 MB key. */
struct keyref {
    bool have;
    size_t off, len;
    bool valid;
};

/* deadline_ms in µs for eb_rfc3339, saturating instead of overflowing:
 * anything that far out is clamped to year 9999 by eb_rfc3339 anyway. */
static int64_t deadline_us(int64_t ms) {
    return ms > INT64_MAX / 1000 ? INT64_MAX : ms * 1000;
}

static void put_key(struct eb_buf *b, const struct eb_event *ev, struct keyref *kr) {
    if (!kr->have) {
        kr->off = b->len;
        kr->valid = eb_json_string(b, ev->key, ev->key_len);
        kr->len = b->len - kr->off;
        kr->have = true;
        return;
    }
    /* Copy from our own buffer: reserve first, then take the pointer. */
    if (!eb_buf_reserve(b, kr->len))
        return;
    memcpy(b->data + b->len, b->data + kr->off, kr->len);
    b->len += kr->len;
}

static void put_params(struct eb_buf *b, const struct eb_event *ev) {
    bool all_valid = true;
    PUT_LIT(b, ",\"params\":{");
    for (size_t i = 0; i < ev->nparams; i++) {
        const struct eb_capture *c = &ev->params[i];
        if (i)
            eb_buf_putc(b, ',');
        put_json_cstr(b, c->name ? c->name : "");
        eb_buf_putc(b, ':');
        all_valid &= eb_json_string(b, c->value, c->value_len);
    }
    eb_buf_putc(b, '}');
    if (all_valid)
        return;
    /* Like key_base64: the exact bytes of each value that was not UTF-8. */
    bool first = true;
    PUT_LIT(b, ",\"params_base64\":{");
    for (size_t i = 0; i < ev->nparams; i++) {
        const struct eb_capture *c = &ev->params[i];
        if (eb_utf8_valid(c->value, c->value_len))
            continue;
        if (!first)
            eb_buf_putc(b, ',');
        first = false;
        put_json_cstr(b, c->name ? c->name : "");
        PUT_LIT(b, ":\"");
        eb_base64(b, c->value, c->value_len);
        eb_buf_putc(b, '"');
    }
    eb_buf_putc(b, '}');
}

/* The data object. In json format it also carries "id" and "time". */
static void put_data(struct eb_buf *b, const struct eb_event *ev, struct keyref *kr, const char *id,
                     bool with_id_time) {
    eb_buf_putc(b, '{');
    if (with_id_time) {
        PUT_LIT(b, "\"id\":\"");
        put_lit(b, id, 32);
        PUT_LIT(b, "\",\"time\":\"");
        eb_rfc3339(b, ev->time_us, 6);
        PUT_LIT(b, "\",");
    }
    PUT_LIT(b, "\"event\":");
    put_json_cstr(b, ev->event);
    PUT_LIT(b, ",\"key\":");
    put_key(b, ev, kr);
    if (!kr->valid) {
        PUT_LIT(b, ",\"key_base64\":\"");
        eb_base64(b, ev->key, ev->key_len);
        eb_buf_putc(b, '"');
    }
    PUT_LIT(b, ",\"db\":");
    eb_buf_put_i64(b, ev->db);
    PUT_LIT(b, ",\"route\":");
    if (ev->route)
        put_json_cstr(b, ev->route);
    else
        PUT_LIT(b, "null");
    put_params(b, ev);
    if (ev->delivery == EB_DELIVERY_RECOVERED)
        PUT_LIT(b, ",\"delivery\":\"recovered\"");
    else
        PUT_LIT(b, ",\"delivery\":\"live\"");
    if (ev->deadline_ms >= 0) {
        PUT_LIT(b, ",\"deadline\":\"");
        eb_rfc3339(b, deadline_us(ev->deadline_ms), 3);
        eb_buf_putc(b, '"');
    }
    if (ev->has_payload) {
        PUT_LIT(b, ",\"payload\":");
        if (ev->payload_json)
            eb_buf_append(b, ev->payload_json, ev->payload_len);
        else
            PUT_LIT(b, "null");
    }
    eb_buf_putc(b, '}');
}

static void put_structured(struct eb_buf *b, const struct eb_event *ev, const char *id) {
    struct keyref kr = {0};
    PUT_LIT(b, "{\"specversion\":\"1.0\",\"type\":\"redis.key.");
    put_json_body(b, ev->event, strlen(ev->event));
    PUT_LIT(b, "\",\"source\":");
    put_json_cstr(b, ev->source);
    PUT_LIT(b, ",\"id\":\"");
    put_lit(b, id, 32);
    PUT_LIT(b, "\",\"time\":\"");
    eb_rfc3339(b, ev->time_us, 6);
    eb_buf_putc(b, '"');
    /* CloudEvents: subject, if present, is non-empty; "" is a legal Redis
     * key, so an empty key has no subject. */
    if (ev->key_len) {
        PUT_LIT(b, ",\"subject\":");
        put_key(b, ev, &kr);
    }
    PUT_LIT(b, ",\"datacontenttype\":\"application/json\",\"data\":");
    put_data(b, ev, &kr, id, false);
    eb_buf_putc(b, '}');
}

/* Binary mode: the ce_* attribute values go to hdrbuf as raw UTF-8 (not
 * JSON-escaped). Offsets are returned; pointers are made at the very end. */
struct binhdr {
    size_t source, source_len, type, type_len, time, time_len, subject, subject_len;
};

static void put_binary_headers(struct eb_buf *h, const struct eb_event *ev, bool key_valid,
                               struct binhdr *o) {
    size_t slen = strlen(ev->source), elen = strlen(ev->event);
    o->source = h->len;
    put_utf8_sanitized(h, ev->source, slen, eb_utf8_valid(ev->source, slen));
    o->source_len = h->len - o->source;
    o->type = h->len;
    PUT_LIT(h, "redis.key.");
    put_utf8_sanitized(h, ev->event, elen, eb_utf8_valid(ev->event, elen));
    o->type_len = h->len - o->type;
    o->time = h->len;
    eb_rfc3339(h, ev->time_us, 6);
    o->time_len = h->len - o->time;
    o->subject = h->len;
    put_utf8_sanitized(h, ev->key, ev->key_len, key_valid);
    o->subject_len = h->len - o->subject;
}

static void set_header(struct eb_encoded *enc, const char *name, const void *value, size_t len) {
    struct eb_header *hd = &enc->headers[enc->nheaders++];
    hd->name = name;
    hd->value = value;
    hd->value_len = len;
}

/* An upper estimate of the value's size for the one reserve per event. It
 * counts the key twice (subject + data.key) and assumes no escaping; keys
 * that need escapes grow the buffer once and the buffer keeps that size. */
static size_t value_estimate(const struct eb_event *ev) {
    size_t n = 320 + 2 * strlen(ev->event) + strlen(ev->source) + 2 * ev->key_len;
    n += ev->route ? strlen(ev->route) : 0;
    for (size_t i = 0; i < ev->nparams; i++)
        n += 8 + (ev->params[i].name ? strlen(ev->params[i].name) : 0) + ev->params[i].value_len;
    if (ev->has_payload)
        n += ev->payload_len;
    return n;
}

/* Start a buffer for this event. The previous output's length (still in
 * b->len) guards the shrink: a stream of identical huge events keeps its
 * buffer; only a drop from huge to small gives memory back. */
static void prepare(struct eb_buf *b, size_t need) {
    if (b->cap > EB_EVENT_SHRINK_ABOVE && need < b->cap / 4 && b->len < b->cap / 4) {
        size_t max = b->max;
        eb_buf_free(b);
        b->max = max;
    }
    eb_buf_reset(b);
    eb_buf_reserve(b, need);
}

static bool event_ok(const struct eb_event *ev, enum eb_event_format fmt,
                     const struct eb_header *extra, size_t nextra) {
    if (!ev || !ev->event || !ev->event[0] || !ev->source || !ev->source[0])
        return false;
    if ((!ev->key && ev->key_len) || (!ev->params && ev->nparams) || (!extra && nextra))
        return false;
    if (ev->delivery != EB_DELIVERY_LIVE && ev->delivery != EB_DELIVERY_RECOVERED)
        return false;
    if (fmt != EB_FORMAT_CLOUDEVENTS && fmt != EB_FORMAT_CLOUDEVENTS_BINARY &&
        fmt != EB_FORMAT_JSON)
        return false;
    for (size_t i = 0; i < ev->nparams; i++) {
        if (!ev->params[i].value && ev->params[i].value_len)
            return false;
    }
    if (ev->has_payload && ev->payload_json && !json_text_valid(ev->payload_json, ev->payload_len))
        return false;
    return true;
}

int eb_event_encode(const struct eb_event *ev, enum eb_event_format fmt,
                    const struct eb_header *extra, size_t nextra, struct eb_encoded *enc) {
    enc->nheaders = 0;
    enc->id[0] = '\0';
    if (!event_ok(ev, fmt, extra, nextra)) {
        eb_buf_reset(&enc->value);
        eb_buf_reset(&enc->hdrbuf);
        return EB_EINVAL;
    }
    /* Headers this format sends before the route's own (binary mode has no
     * ce_subject for the empty key). */
    size_t nbase = fmt == EB_FORMAT_CLOUDEVENTS          ? 1
                   : fmt == EB_FORMAT_CLOUDEVENTS_BINARY ? (ev->key_len ? 7 : 6)
                                                         : 0;
    if (nextra > EB_EVENT_MAX_HEADERS - nbase) {
        eb_buf_reset(&enc->value);
        eb_buf_reset(&enc->hdrbuf);
        return EB_EINVAL;
    }

    eb_event_id(ev, enc->id);
    prepare(&enc->value, value_estimate(ev));
    struct binhdr bh = {0};
    bool key_valid = true;
    if (fmt == EB_FORMAT_CLOUDEVENTS) {
        put_structured(&enc->value, ev, enc->id);
    } else {
        struct keyref kr = {0};
        put_data(&enc->value, ev, &kr, enc->id, fmt == EB_FORMAT_JSON);
        key_valid = kr.valid;
    }
    if (fmt == EB_FORMAT_CLOUDEVENTS_BINARY) {
        prepare(&enc->hdrbuf, 96 + strlen(ev->source) + strlen(ev->event) + ev->key_len);
        put_binary_headers(&enc->hdrbuf, ev, key_valid, &bh);
    } else {
        eb_buf_reset(&enc->hdrbuf);
    }
    /* NUL after the value (not counted): handy for C consumers and tests. */
    eb_buf_cstr(&enc->value);
    if (!eb_buf_ok(&enc->value) || !eb_buf_ok(&enc->hdrbuf)) {
        eb_buf_reset(&enc->value);
        eb_buf_reset(&enc->hdrbuf);
        return EB_ENOMEM;
    }

    /* All writes are done: only now may pointers into the buffers exist. */
    const char *h = enc->hdrbuf.data;
    switch (fmt) {
    case EB_FORMAT_CLOUDEVENTS:
        set_header(enc, "content-type", "application/cloudevents+json", 28);
        break;
    case EB_FORMAT_CLOUDEVENTS_BINARY:
        set_header(enc, "ce_specversion", "1.0", 3);
        set_header(enc, "ce_id", enc->id, 32);
        set_header(enc, "ce_source", h + bh.source, bh.source_len);
        set_header(enc, "ce_type", h + bh.type, bh.type_len);
        set_header(enc, "ce_time", h + bh.time, bh.time_len);
        /* Omitted for the empty key, as "subject" is in structured mode. */
        if (bh.subject_len)
            set_header(enc, "ce_subject", h + bh.subject, bh.subject_len);
        set_header(enc, "content-type", "application/json", 16);
        break;
    case EB_FORMAT_JSON:
        break;
    }
    for (size_t i = 0; i < nextra; i++)
        enc->headers[enc->nheaders++] = extra[i];
    return EB_OK;
}

void eb_encoded_init(struct eb_encoded *enc) {
    memset(enc, 0, sizeof(*enc));
}

void eb_encoded_free(struct eb_encoded *enc) {
    eb_buf_free(&enc->value);
    eb_buf_free(&enc->hdrbuf);
    enc->nheaders = 0;
}

static const char *const format_names[] = {
    [EB_FORMAT_CLOUDEVENTS] = "cloudevents",
    [EB_FORMAT_CLOUDEVENTS_BINARY] = "cloudevents-binary",
    [EB_FORMAT_JSON] = "json",
};

bool eb_event_format_parse(const char *s, enum eb_event_format *out) {
    for (size_t i = 0; i < sizeof(format_names) / sizeof(format_names[0]); i++) {
        if (s && strcmp(s, format_names[i]) == 0) {
            *out = (enum eb_event_format)i;
            return true;
        }
    }
    return false;
}

const char *eb_event_format_name(enum eb_event_format fmt) {
    if ((unsigned)fmt < sizeof(format_names) / sizeof(format_names[0]))
        return format_names[fmt];
    return "unknown";
}
