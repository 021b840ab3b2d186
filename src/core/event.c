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

#include "core/error.h"
#include "core/event.h"
#include "core/utf8.h"

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
        size_t l = p[i] < 0x80 ? 1 : eb_utf8_seq_len(p + i, n - i);
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
/* Writers                                                                   */
/* ------------------------------------------------------------------------ */

/* Append n bytes. The value buffer is reserved once per event, so the
 * common case is an inline memcpy instead of a call into json.c for every
 * punctuation mark (that call was an eighth of the encoder's time). Writing
 * into spare room after a failure is harmless: a failed buffer's contents
 * are discarded. */
static inline void put(struct eb_buf *b, const void *p, size_t n) {
    if (b->data && n <= b->cap - b->len) {
        memcpy(b->data + b->len, p, n);
        b->len += n;
    } else {
        eb_buf_append(b, p, n);
    }
}
#define PUT_LIT(b, s) put((b), (s), sizeof(s) - 1)

static inline void put_c(struct eb_buf *b, char c) {
    put(b, &c, 1);
}

/* True when p[0..n) is printable ASCII without '"' or '\\': bytes a JSON
 * string holds as they are. Eight bytes per step (SWAR): every byte >= 0x80,
 * < 0x20, == '"' or == '\\' sets its top bit in `bad`. Keys, sources, routes
 * and capture values are nearly always plain, and the byte-wise escaper in
 * json.c was the largest cost of an event. */
static inline uint64_t swar_bad(uint64_t x) {
    const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
    uint64_t q = x ^ (ones * '"'), s = x ^ (ones * '\\');
    return (x | ((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((s - ones) & ~s)) & high;
}

static bool json_plain(const void *vp, size_t n) {
    const unsigned char *p = vp;
    uint64_t x;
    if (n >= 8) {
        size_t i = 0;
        for (; i + 8 <= n; i += 8) {
            memcpy(&x, p + i, 8);
            if (swar_bad(x))
                return false;
        }
        if (i == n)
            return true;
        /* The tail as the last eight bytes, overlapping bytes already
         * checked: a fixed-size load, where copying n - i bytes was a call
         * to memcpy per string (docs/performance.md). */
        memcpy(&x, p + n - 8, 8);
        return !swar_bad(x);
    }
    /* Shorter than a step: 4..7 bytes as two overlapping 4-byte loads,
     * fewer one by one into a word padded with spaces (plain). */
    if (n >= 4) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + n - 4, 4);
        x = lo | (uint64_t)hi << 32;
    } else {
        x = 0x2020202020202020u;
        unsigned char *xb = (unsigned char *)&x;
        if (n > 0)
            xb[0] = p[0];
        if (n > 1)
            xb[1] = p[1];
        if (n > 2)
            xb[2] = p[2];
    }
    return !swar_bad(x);
}

/* Append p[0..n) as a quoted JSON string; returns true when it was valid
 * UTF-8 (nothing replaced), as eb_json_string does. */
static bool put_str(struct eb_buf *b, const void *p, size_t n) {
    if (!json_plain(p, n))
        return eb_json_string(b, p, n);
    if (!(b->data && n + 2 <= b->cap - b->len) && !eb_buf_reserve(b, n + 2))
        return true;
    b->data[b->len++] = '"';
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len++] = '"';
    return true;
}

/* Append the escaped body of a JSON string (no quotes), for text glued to a
 * literal prefix such as "redis.key.". */
static void put_str_body(struct eb_buf *b, const char *s, size_t n) {
    if (json_plain(s, n)) {
        put(b, s, n);
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

static void put_int(struct eb_buf *b, int v) {
    if (v >= 0 && v < 10)
        put_c(b, (char)('0' + v));
    else
        eb_buf_put_i64(b, v);
}

/* "00" .. "99": two digits per lookup instead of two divisions. */
static const char digits2[] = "00010203040506070809101112131415161718192021222324"
                              "25262728293031323334353637383940414243444546474849"
                              "50515253545556575859606162636465666768697071727374"
                              "75767778798081828384858687888990919293949596979899";

/* Last µs eb_buf_put_rfc3339 writes without clamping: 9999-12-31T23:59:59.999999Z. */
#define TIME_US_MAX (253402300799LL * 1000000 + 999999)

/* Append the RFC 3339 µs timestamp of `us` (as eb_buf_put_rfc3339(b, us, 6)), with
 * the "YYYY-MM-DDTHH:MM:SS" part taken from enc's cache while events stay
 * within one second (at 1M events/s, a million times per computation). */
static void put_time_us(struct eb_buf *b, struct eb_encoded *enc, int64_t us) {
    if (us < 0 || us > TIME_US_MAX) {
        eb_buf_put_rfc3339(b, us, 6); /* clamped or pre-1970: rare, uncached */
        return;
    }
    int64_t sec = us / 1000000;
    unsigned frac = (unsigned)(us % 1000000);
    if (sec == enc->time_sec && enc->time_text[0]) { /* [0]: a zeroed struct caches nothing */
        put(b, enc->time_text, sizeof(enc->time_text));
    } else {
        size_t mark = b->len;
        eb_buf_put_rfc3339(b, sec * 1000000, 0); /* "YYYY-MM-DDTHH:MM:SSZ" */
        if (!eb_buf_ok(b) || b->len - mark != sizeof(enc->time_text) + 1)
            return;
        memcpy(enc->time_text, b->data + mark, sizeof(enc->time_text));
        enc->time_sec = sec;
        b->len--; /* the 'Z' comes after the fraction */
    }
    char f[8];
    f[0] = '.';
    memcpy(f + 1, digits2 + 2 * (frac / 10000), 2);
    memcpy(f + 3, digits2 + 2 * (frac / 100 % 100), 2);
    memcpy(f + 5, digits2 + 2 * (frac % 100), 2);
    f[7] = 'Z';
    put(b, f, 8);
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

/* Fields up to this size are framed on the stack and hashed in one call;
 * longer ones (long keys) go through XXH3's streaming state, which hashes
 * the same byte sequence to the same value. */
#define ID_STACK_BYTES 256

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

/* 16 lowercase hex digits of v, most significant first, eight at a time:
 * each nibble is spread into its own byte, then '0' or 'a'-10 is added with
 * a mask instead of a table lookup per digit. */
static void put_hex16(char *out, uint64_t v) {
    const uint64_t ones = 0x0101010101010101u;
    for (int half = 0; half < 2; half++) {
        uint64_t x = (v >> (32 - 32 * half)) & 0xFFFFFFFFu;
        x = ((x & 0xFFFF0000u) << 16) | (x & 0xFFFFu);
        x = ((x & 0x0000FF000000FF00u) << 8) | (x & 0x000000FF000000FFu);
        x = ((x & 0x00F000F000F000F0u) << 4) | (x & 0x000F000F000F000Fu);
        /* byte k (from the least significant) now holds nibble k */
        uint64_t over9 = ((x + ones * 6) >> 4) & ones;
        x += ones * '0' + over9 * ('a' - '0' - 10);
        /* Most significant digit first: one byte swap and store where the
         * machine is little-endian (a constant condition, folded away). */
        if (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__) {
            x = __builtin_bswap64(x);
            memcpy(out + 8 * half, &x, 8);
        } else {
            memcpy(out + 8 * half, &x, 8);
        }
    }
}

/* The framed id input, in pieces: le64 length before each variable field,
 * so ("ab","c") and ("a","bc") can never collide. Layout (docs/event.md):
 *   le64 len(source) source  le64 db  le64 len(key) key
 *   le64 len(event) event  u8 tag  le64 value
 * tag 'd' + deadline_ms when the deadline is known, else 't' + time_us. */
static void event_id(const struct eb_event *ev, const char *source, size_t slen, const char *event,
                     size_t elen, char out[33]) {
    bool dl = ev->deadline_ms >= 0;
    unsigned char tail[9];
    tail[0] = dl ? 'd' : 't';
    put_le64(tail + 1, (uint64_t)(dl ? ev->deadline_ms : ev->time_us));

    XXH128_hash_t h;
    if (slen <= ID_STACK_BYTES && ev->key_len <= ID_STACK_BYTES && elen <= ID_STACK_BYTES) {
        unsigned char in[3 * ID_STACK_BYTES + 64], *o = in;
        o += put_le64(o, slen);
        o = put_mem(o, source, slen);
        o += put_le64(o, (uint64_t)(int64_t)ev->db);
        o += put_le64(o, ev->key_len);
        o = put_mem(o, ev->key, ev->key_len);
        o += put_le64(o, elen);
        o = put_mem(o, event, elen);
        o = put_mem(o, tail, sizeof(tail));
        h = XXH3_128bits(in, (size_t)(o - in));
    } else {
        XXH3_state_t st;
        unsigned char w[8];
        XXH3_128bits_reset(&st);
        XXH3_128bits_update(&st, w, put_le64(w, slen));
        XXH3_128bits_update(&st, source, slen);
        XXH3_128bits_update(&st, w, put_le64(w, (uint64_t)(int64_t)ev->db));
        XXH3_128bits_update(&st, w, put_le64(w, ev->key_len));
        if (ev->key_len)
            XXH3_128bits_update(&st, ev->key, ev->key_len);
        XXH3_128bits_update(&st, w, put_le64(w, elen));
        XXH3_128bits_update(&st, event, elen);
        XXH3_128bits_update(&st, tail, sizeof(tail));
        h = XXH3_128bits_digest(&st);
    }
    /* Big-endian (XXH's canonical form): high64 then low64. */
    put_hex16(out, h.high64);
    put_hex16(out + 16, h.low64);
    out[32] = '\0';
}

void eb_event_id(const struct eb_event *ev, char out[33]) {
    const char *source = ev->source ? ev->source : "";
    const char *event = ev->event ? ev->event : "";
    event_id(ev, source, strlen(source), event, strlen(event), out);
}

/* ------------------------------------------------------------------------ */
/* Encoding                                                                  */
/* ------------------------------------------------------------------------ */

/* One event being encoded: the input, its string lengths (each strlen once),
 * and where the escaped key already sits in the value buffer (structured
 * mode writes it as "subject" first, so data.key is a memcpy, not a second
 * escape of a possibly 1 MB key). */
struct job {
    const struct eb_event *ev;
    struct eb_encoded *enc;
    size_t source_len, event_len, route_len;
    bool key_written, key_valid;
    size_t key_off, key_len; /* escaped key in enc->value */
};

/* deadline_ms in µs for eb_buf_put_rfc3339, saturating instead of overflowing:
 * anything that far out is clamped to year 9999 by eb_buf_put_rfc3339 anyway. */
static int64_t deadline_us(int64_t ms) {
    return ms > INT64_MAX / 1000 ? INT64_MAX : ms * 1000;
}

static void put_key(struct eb_buf *b, struct job *j) {
    if (!j->key_written) {
        j->key_off = b->len;
        j->key_valid = put_str(b, j->ev->key, j->ev->key_len);
        j->key_len = b->len - j->key_off;
        j->key_written = true;
        return;
    }
    /* Copy from our own buffer: reserve first, then take the pointer. */
    if (!eb_buf_reserve(b, j->key_len))
        return;
    memcpy(b->data + b->len, b->data + j->key_off, j->key_len);
    b->len += j->key_len;
}

static void put_params(struct eb_buf *b, const struct eb_event *ev) {
    bool all_valid = true;
    PUT_LIT(b, ",\"params\":{");
    for (size_t i = 0; i < ev->nparams; i++) {
        const struct eb_capture *c = &ev->params[i];
        const char *name = c->name ? c->name : "";
        if (i)
            put_c(b, ',');
        put_str(b, name, strlen(name));
        put_c(b, ':');
        all_valid &= put_str(b, c->value, c->value_len);
    }
    put_c(b, '}');
    if (all_valid)
        return;
    /* Like key_base64: the exact bytes of each value that was not UTF-8. */
    bool first = true;
    PUT_LIT(b, ",\"params_base64\":{");
    for (size_t i = 0; i < ev->nparams; i++) {
        const struct eb_capture *c = &ev->params[i];
        const char *name = c->name ? c->name : "";
        if (eb_utf8_valid(c->value, c->value_len))
            continue;
        if (!first)
            put_c(b, ',');
        first = false;
        put_str(b, name, strlen(name));
        PUT_LIT(b, ":\"");
        eb_buf_put_base64(b, c->value, c->value_len);
        put_c(b, '"');
    }
    put_c(b, '}');
}

/* The data object. In json format it also carries "id" and "time". */
static void put_data(struct eb_buf *b, struct job *j, bool with_id_time) {
    const struct eb_event *ev = j->ev;
    put_c(b, '{');
    if (with_id_time) {
        PUT_LIT(b, "\"id\":\"");
        put(b, j->enc->id, 32);
        PUT_LIT(b, "\",\"time\":\"");
        put_time_us(b, j->enc, ev->time_us);
        PUT_LIT(b, "\",");
    }
    PUT_LIT(b, "\"event\":");
    put_str(b, ev->event, j->event_len);
    PUT_LIT(b, ",\"key\":");
    put_key(b, j);
    if (!j->key_valid) {
        PUT_LIT(b, ",\"key_base64\":\"");
        eb_buf_put_base64(b, ev->key, ev->key_len);
        put_c(b, '"');
    }
    PUT_LIT(b, ",\"db\":");
    put_int(b, ev->db);
    PUT_LIT(b, ",\"route\":");
    if (ev->route)
        put_str(b, ev->route, j->route_len);
    else
        PUT_LIT(b, "null");
    put_params(b, ev);
    if (ev->delivery == EB_DELIVERY_RECOVERED)
        PUT_LIT(b, ",\"delivery\":\"recovered\"");
    else
        PUT_LIT(b, ",\"delivery\":\"live\"");
    if (ev->deadline_ms >= 0) {
        PUT_LIT(b, ",\"deadline\":\"");
        eb_buf_put_rfc3339(b, deadline_us(ev->deadline_ms), 3);
        put_c(b, '"');
    }
    if (ev->has_payload) {
        PUT_LIT(b, ",\"payload\":");
        if (ev->payload_json)
            put(b, ev->payload_json, ev->payload_len);
        else
            PUT_LIT(b, "null");
    }
    if (ev->extra_len)
        put(b, ev->extra_json, ev->extra_len);
    put_c(b, '}');
}

static void put_structured(struct eb_buf *b, struct job *j) {
    const struct eb_event *ev = j->ev;
    PUT_LIT(b, "{\"specversion\":\"1.0\",\"type\":\"redis.key.");
    put_str_body(b, ev->event, j->event_len);
    PUT_LIT(b, "\",\"source\":");
    put_str(b, ev->source, j->source_len);
    if (ev->node) {
        PUT_LIT(b, ",\"redisnode\":");
        put_str(b, ev->node, strlen(ev->node));
    }
    PUT_LIT(b, ",\"id\":\"");
    put(b, j->enc->id, 32);
    PUT_LIT(b, "\",\"time\":\"");
    put_time_us(b, j->enc, ev->time_us);
    put_c(b, '"');
    /* CloudEvents: subject, if present, is non-empty; "" is a legal Redis
     * key, so an empty key has no subject. */
    if (ev->key_len) {
        PUT_LIT(b, ",\"subject\":");
        put_key(b, j);
    }
    PUT_LIT(b, ",\"datacontenttype\":\"application/json\",\"data\":");
    put_data(b, j, false);
    put_c(b, '}');
}

/* Binary mode: the ce_* attribute values go to hdrbuf as raw UTF-8 (not
 * JSON-escaped). Offsets are returned; pointers are made at the very end. */
struct binhdr {
    size_t source, source_len, type, type_len, time, time_len, subject, subject_len;
    size_t node, node_len;
};

static void put_binary_headers(struct eb_buf *h, struct job *j, struct binhdr *o) {
    const struct eb_event *ev = j->ev;
    o->source = h->len;
    put_utf8_sanitized(h, ev->source, j->source_len, eb_utf8_valid(ev->source, j->source_len));
    o->source_len = h->len - o->source;
    o->type = h->len;
    PUT_LIT(h, "redis.key.");
    put_utf8_sanitized(h, ev->event, j->event_len, eb_utf8_valid(ev->event, j->event_len));
    o->type_len = h->len - o->type;
    o->time = h->len;
    put_time_us(h, j->enc, ev->time_us);
    o->time_len = h->len - o->time;
    o->subject = h->len;
    put_utf8_sanitized(h, ev->key, ev->key_len, j->key_valid);
    o->subject_len = h->len - o->subject;
    if (ev->node) {
        size_t n = strlen(ev->node);
        o->node = h->len;
        put_utf8_sanitized(h, ev->node, n, eb_utf8_valid(ev->node, n));
        o->node_len = h->len - o->node;
    }
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
static size_t value_estimate(const struct job *j) {
    const struct eb_event *ev = j->ev;
    size_t n = 320 + 2 * j->event_len + j->source_len + j->route_len + 2 * ev->key_len +
               (ev->node ? 16 + strlen(ev->node) : 0);
    for (size_t i = 0; i < ev->nparams; i++)
        n += 32 + ev->params[i].value_len;
    if (ev->has_payload)
        n += ev->payload_len;
    return n + ev->extra_len;
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
    if ((!ev->key && ev->key_len) || (!ev->params && ev->nparams) || (!extra && nextra) ||
        (!ev->extra_json && ev->extra_len))
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

static int fail(struct eb_encoded *enc, int err) {
    eb_buf_reset(&enc->value);
    eb_buf_reset(&enc->hdrbuf);
    enc->nheaders = 0;
    return err;
}

int eb_event_encode(const struct eb_event *ev, enum eb_event_format fmt,
                    const struct eb_header *extra, size_t nextra, struct eb_encoded *enc) {
    enc->nheaders = 0;
    enc->id[0] = '\0';
    if (!event_ok(ev, fmt, extra, nextra))
        return fail(enc, EB_EINVAL);
    /* Headers this format sends before the route's own (binary mode has no
     * ce_subject for the empty key). */
    size_t nbase = fmt == EB_FORMAT_CLOUDEVENTS ? 1
                   : fmt == EB_FORMAT_CLOUDEVENTS_BINARY
                       ? (ev->key_len ? 7 : 6) + (ev->node ? 1 : 0)
                       : 0;
    if (nextra > EB_EVENT_MAX_HEADERS - nbase)
        return fail(enc, EB_EINVAL);

    struct job j = {
        .ev = ev,
        .enc = enc,
        .source_len = strlen(ev->source),
        .event_len = strlen(ev->event),
        .route_len = ev->route ? strlen(ev->route) : 0,
    };
    event_id(ev, ev->source, j.source_len, ev->event, j.event_len, enc->id);
    prepare(&enc->value, value_estimate(&j));
    if (fmt == EB_FORMAT_CLOUDEVENTS)
        put_structured(&enc->value, &j);
    else
        put_data(&enc->value, &j, fmt == EB_FORMAT_JSON);
    struct binhdr bh = {0};
    if (fmt == EB_FORMAT_CLOUDEVENTS_BINARY) {
        prepare(&enc->hdrbuf, 96 + j.source_len + j.event_len + ev->key_len +
                                  (ev->node ? strlen(ev->node) : 0));
        put_binary_headers(&enc->hdrbuf, &j, &bh);
    } else {
        eb_buf_reset(&enc->hdrbuf);
    }
    /* NUL after the value (not counted): handy for C consumers and tests. */
    eb_buf_cstr(&enc->value);
    if (!eb_buf_ok(&enc->value) || !eb_buf_ok(&enc->hdrbuf))
        return fail(enc, EB_ENOMEM);

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
        if (ev->node)
            set_header(enc, "ce_redisnode", h + bh.node, bh.node_len);
        set_header(enc, "content-type", "application/json", 16);
        break;
    case EB_FORMAT_JSON:
        break;
    }
    for (size_t i = 0; i < nextra; i++)
        enc->headers[enc->nheaders++] = extra[i];
    return EB_OK;
}

bool eb_event_json_valid(const void *p, size_t n) {
    return json_text_valid(p, n);
}

void eb_event_encoded_init(struct eb_encoded *enc) {
    memset(enc, 0, sizeof(*enc));
    enc->time_sec = -1;
}

void eb_event_encoded_free(struct eb_encoded *enc) {
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
