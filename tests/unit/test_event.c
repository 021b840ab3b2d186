/* test_event.c -- the event encoder against its contract (docs/event.md):
 * exact fields and order, escaping, UTF-8 sanitising with key_base64, each
 * format's headers, the id rule, header limits and buffer reuse.
 *
 * Output is checked two ways: golden strings for exact bytes, and a small
 * strict JSON parser (below, independent of json.c) for validity and for
 * decoding strings back to bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "core/error.h"
#include "core/event.h"

/* ------------------------------------------------------------------------ */
/* A strict JSON parser (RFC 8259 + well-formed UTF-8, no duplicate keys)    */
/* ------------------------------------------------------------------------ */

enum jtype { J_NULL, J_TRUE, J_FALSE, J_NUM, J_STR, J_ARR, J_OBJ };

struct jnode {
    enum jtype type;
    char *s; /* J_STR: decoded bytes; J_NUM: the number's text; NUL-terminated */
    size_t len;
    struct jnode *kids; /* J_ARR/J_OBJ */
    char **keys;        /* J_OBJ: decoded member names */
    size_t *keylens;
    size_t n;
};

struct jp {
    const unsigned char *p, *end;
    int depth;
};

static void jfree(struct jnode *j) {
    for (size_t i = 0; i < j->n; i++) {
        jfree(&j->kids[i]);
        if (j->keys)
            free(j->keys[i]);
    }
    free(j->kids);
    free(j->keys);
    free(j->keylens);
    free(j->s);
    memset(j, 0, sizeof(*j));
}

static void jws(struct jp *p) {
    while (p->p < p->end && (*p->p == ' ' || *p->p == '\t' || *p->p == '\n' || *p->p == '\r'))
        p->p++;
}

/* One UTF-8 code point at p, strictly (no overlongs, surrogates, > 10FFFF). */
static int utf8_cp(const unsigned char *p, const unsigned char *end, uint32_t *cp) {
    unsigned char c = p[0];
    int n = c < 0x80             ? 1
            : (c & 0xE0) == 0xC0 ? 2
            : (c & 0xF0) == 0xE0 ? 3
            : (c & 0xF8) == 0xF0 ? 4
                                 : 0;
    if (!n || end - p < n)
        return 0;
    uint32_t v = n == 1 ? c : n == 2 ? c & 0x1F : n == 3 ? c & 0x0F : c & 0x07;
    for (int i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        v = v << 6 | (p[i] & 0x3F);
    }
    static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < min[n] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return n;
}

static void put_utf8(char *o, size_t *n, uint32_t cp) {
    if (cp < 0x80) {
        o[(*n)++] = (char)cp;
    } else if (cp < 0x800) {
        o[(*n)++] = (char)(0xC0 | cp >> 6);
        o[(*n)++] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        o[(*n)++] = (char)(0xE0 | cp >> 12);
        o[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[(*n)++] = (char)(0x80 | (cp & 0x3F));
    } else {
        o[(*n)++] = (char)(0xF0 | cp >> 18);
        o[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
        o[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[(*n)++] = (char)(0x80 | (cp & 0x3F));
    }
}

static int jhex4(struct jp *p, uint32_t *v) {
    if (p->end - p->p < 4)
        return 0;
    *v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = *p->p++;
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return 0;
        *v = *v * 16 + (uint32_t)d;
    }
    return 1;
}

static int jstring(struct jp *p, char **out, size_t *outlen) {
    if (p->p == p->end || *p->p != '"')
        return 0;
    p->p++;
    char *o = malloc((size_t)(p->end - p->p) + 1);
    size_t n = 0;
    while (p->p < p->end && *p->p != '"') {
        unsigned char c = *p->p;
        uint32_t cp;
        if (c < 0x20)
            goto fail;
        if (c != '\\') {
            int l = utf8_cp(p->p, p->end, &cp);
            if (!l)
                goto fail;
            memcpy(o + n, p->p, (size_t)l);
            n += (size_t)l;
            p->p += l;
            continue;
        }
        if (++p->p == p->end)
            goto fail;
        c = *p->p++;
        switch (c) {
        case '"':
            o[n++] = '"';
            break;
        case '\\':
            o[n++] = '\\';
            break;
        case '/':
            o[n++] = '/';
            break;
        case 'b':
            o[n++] = '\b';
            break;
        case 'f':
            o[n++] = '\f';
            break;
        case 'n':
            o[n++] = '\n';
            break;
        case 'r':
            o[n++] = '\r';
            break;
        case 't':
            o[n++] = '\t';
            break;
        case 'u': {
            if (!jhex4(p, &cp) || (cp >= 0xDC00 && cp <= 0xDFFF))
                goto fail;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo;
                if (p->end - p->p < 2 || p->p[0] != '\\' || p->p[1] != 'u')
                    goto fail;
                p->p += 2;
                if (!jhex4(p, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                    goto fail;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            put_utf8(o, &n, cp);
            break;
        }
        default:
            goto fail;
        }
    }
    if (p->p == p->end)
        goto fail;
    p->p++;
    o[n] = '\0';
    *out = o;
    *outlen = n;
    return 1;
fail:
    free(o);
    return 0;
}

static int jdigits(struct jp *p) {
    const unsigned char *s = p->p;
    while (p->p < p->end && *p->p >= '0' && *p->p <= '9')
        p->p++;
    return p->p > s;
}

static int jvalue(struct jp *p, struct jnode *j);

static int jcontainer(struct jp *p, struct jnode *j, int obj) {
    j->type = obj ? J_OBJ : J_ARR;
    p->p++;
    if (++p->depth > 1000)
        return 0;
    jws(p);
    if (p->p < p->end && *p->p == (obj ? '}' : ']')) {
        p->p++;
        p->depth--;
        return 1;
    }
    for (;;) {
        j->kids = realloc(j->kids, (j->n + 1) * sizeof(*j->kids));
        memset(&j->kids[j->n], 0, sizeof(*j->kids));
        if (obj) {
            j->keys = realloc(j->keys, (j->n + 1) * sizeof(*j->keys));
            j->keylens = realloc(j->keylens, (j->n + 1) * sizeof(*j->keylens));
            j->keys[j->n] = NULL;
            jws(p);
            if (!jstring(p, &j->keys[j->n], &j->keylens[j->n])) {
                j->n++;
                return 0;
            }
            for (size_t i = 0; i < j->n; i++) {
                if (j->keylens[i] == j->keylens[j->n] &&
                    memcmp(j->keys[i], j->keys[j->n], j->keylens[i]) == 0) {
                    j->n++;
                    return 0; /* duplicate member */
                }
            }
            jws(p);
            if (p->p == p->end || *p->p++ != ':') {
                j->n++;
                return 0;
            }
        }
        int ok = jvalue(p, &j->kids[j->n]);
        j->n++;
        if (!ok)
            return 0;
        jws(p);
        if (p->p == p->end)
            return 0;
        if (*p->p == ',') {
            p->p++;
            continue;
        }
        if (*p->p++ != (obj ? '}' : ']'))
            return 0;
        p->depth--;
        return 1;
    }
}

static int jvalue(struct jp *p, struct jnode *j) {
    jws(p);
    if (p->p == p->end)
        return 0;
    const unsigned char *s = p->p;
    switch (*p->p) {
    case '{':
        return jcontainer(p, j, 1);
    case '[':
        return jcontainer(p, j, 0);
    case '"':
        j->type = J_STR;
        return jstring(p, &j->s, &j->len);
    case 't':
        j->type = J_TRUE;
        if (p->end - p->p < 4 || memcmp(p->p, "true", 4))
            return 0;
        p->p += 4;
        return 1;
    case 'f':
        j->type = J_FALSE;
        if (p->end - p->p < 5 || memcmp(p->p, "false", 5))
            return 0;
        p->p += 5;
        return 1;
    case 'n':
        j->type = J_NULL;
        if (p->end - p->p < 4 || memcmp(p->p, "null", 4))
            return 0;
        p->p += 4;
        return 1;
    default:
        break;
    }
    j->type = J_NUM;
    if (*p->p == '-')
        p->p++;
    if (p->p < p->end && *p->p == '0')
        p->p++;
    else if (!jdigits(p))
        return 0;
    if (p->p < p->end && *p->p == '.') {
        p->p++;
        if (!jdigits(p))
            return 0;
    }
    if (p->p < p->end && (*p->p == 'e' || *p->p == 'E')) {
        p->p++;
        if (p->p < p->end && (*p->p == '+' || *p->p == '-'))
            p->p++;
        if (!jdigits(p))
            return 0;
    }
    j->len = (size_t)(p->p - s);
    j->s = strndup((const char *)s, j->len);
    return 1;
}

/* Parse a whole JSON text; returns 1 and fills *j, or 0 (and *j is empty). */
static int jparse(const void *text, size_t n, struct jnode *j) {
    struct jp p = {text, (const unsigned char *)text + n, 0};
    memset(j, 0, sizeof(*j));
    int ok = jvalue(&p, j);
    jws(&p);
    if (!ok || p.p != p.end) {
        jfree(j);
        return 0;
    }
    return 1;
}

static const struct jnode *jget(const struct jnode *o, const char *key) {
    if (o->type != J_OBJ)
        return NULL;
    for (size_t i = 0; i < o->n; i++) {
        if (strlen(key) == o->keylens[i] && memcmp(o->keys[i], key, o->keylens[i]) == 0)
            return &o->kids[i];
    }
    return NULL;
}

/* The member names of o, comma-joined, for order checks. */
static void jkeys(const struct jnode *o, char *out, size_t size) {
    out[0] = '\0';
    for (size_t i = 0; i < o->n; i++) {
        strncat(out, i ? "," : "", size - strlen(out) - 1);
        strncat(out, o->keys[i], size - strlen(out) - 1);
    }
}

static void assert_jstr(const struct jnode *j, const void *bytes, size_t n) {
    assert_non_null(j);
    assert_int_equal(j->type, J_STR);
    assert_int_equal(j->len, n);
    assert_memory_equal(j->s, bytes, n);
}

/* ------------------------------------------------------------------------ */
/* Fixtures                                                                  */
/* ------------------------------------------------------------------------ */

#define KEY         "laravel_cache:ORDER_CONFIRM:7"
#define TIME_US     1795491600123456LL /* 2026-11-24T03:40:00.123456Z */
#define DEADLINE_MS 1795491599998LL

static const struct eb_capture order_caps[] = {{"order_id", &KEY[28], 1}};

static struct eb_event sample_event(void) {
    struct eb_event ev = {
        .event = "expired",
        .key = KEY,
        .key_len = sizeof(KEY) - 1,
        .db = 0,
        .source = "redis://cache-0:6379/0",
        .route = "order-payment-timeout",
        .params = order_caps,
        .nparams = 1,
        .delivery = EB_DELIVERY_LIVE,
        .time_us = TIME_US,
        .deadline_ms = -1,
    };
    return ev;
}

struct ctx {
    struct eb_encoded enc;
};

static int setup(void **state) {
    struct ctx *c = calloc(1, sizeof(*c));
    eb_event_encoded_init(&c->enc);
    *state = c;
    return 0;
}

static int teardown(void **state) {
    struct ctx *c = *state;
    eb_event_encoded_free(&c->enc);
    free(c);
    return 0;
}

static struct eb_encoded *encode_ok(void **state, const struct eb_event *ev,
                                    enum eb_event_format fmt) {
    struct ctx *c = *state;
    assert_int_equal(eb_event_encode(ev, fmt, NULL, 0, &c->enc), EB_OK);
    return &c->enc;
}

/* Encode and parse; the caller frees *root. */
static void encode_parse(void **state, const struct eb_event *ev, enum eb_event_format fmt,
                         struct jnode *root) {
    struct eb_encoded *enc = encode_ok(state, ev, fmt);
    if (!jparse(enc->value.data, enc->value.len, root))
        fail_msg("not valid JSON: %.*s", (int)(enc->value.len > 400 ? 400 : enc->value.len),
                 enc->value.data);
}

static const struct eb_header *header(const struct eb_encoded *enc, const char *name) {
    for (size_t i = 0; i < enc->nheaders; i++) {
        if (strcmp(enc->headers[i].name, name) == 0)
            return &enc->headers[i];
    }
    return NULL;
}

static void assert_header(const struct eb_encoded *enc, size_t i, const char *name,
                          const char *value) {
    assert_true(i < enc->nheaders);
    assert_string_equal(enc->headers[i].name, name);
    assert_int_equal(enc->headers[i].value_len, strlen(value));
    assert_memory_equal(enc->headers[i].value, value, strlen(value));
}

static size_t b64decode(const char *s, size_t n, unsigned char *out) {
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n && s[i] != '='; i++) {
        const char *c = strchr(tbl, s[i]);
        assert_non_null(c);
        acc = acc << 6 | (uint32_t)(c - tbl);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    return o;
}

/* ------------------------------------------------------------------------ */
/* Structured mode                                                           */
/* ------------------------------------------------------------------------ */

static void test_event_structured_matches_contract_example_exactly(void **state) {
    struct eb_event ev = sample_event();
    ev.deadline_ms = DEADLINE_MS;
    ev.has_payload = true;
    struct eb_encoded *enc = encode_ok(state, &ev, EB_FORMAT_CLOUDEVENTS);
    char expect[1024];
    snprintf(expect, sizeof(expect),
             "{\"specversion\":\"1.0\",\"type\":\"redis.key.expired\","
             "\"source\":\"redis://cache-0:6379/0\",\"id\":\"%s\","
             "\"time\":\"2026-11-24T03:40:00.123456Z\",\"subject\":\"" KEY "\","
             "\"datacontenttype\":\"application/json\",\"data\":{\"event\":\"expired\","
             "\"key\":\"" KEY "\",\"db\":0,\"route\":\"order-payment-timeout\","
             "\"params\":{\"order_id\":\"7\"},\"delivery\":\"live\","
             "\"deadline\":\"2026-11-24T03:39:59.998Z\",\"payload\":null}}",
             enc->id);
    assert_string_equal(enc->value.data, expect);
    assert_int_equal(enc->value.len, strlen(expect));
}

static void test_event_structured_parses_with_fields_in_contract_order(void **state) {
    struct eb_event ev = sample_event();
    struct jnode root;
    encode_parse(state, &ev, EB_FORMAT_CLOUDEVENTS, &root);
    char keys[512];
    jkeys(&root, keys, sizeof(keys));
    assert_string_equal(keys, "specversion,type,source,id,time,subject,datacontenttype,data");
    jkeys(jget(&root, "data"), keys, sizeof(keys));
    assert_string_equal(keys, "event,key,db,route,params,delivery");
    jfree(&root);
}

static void test_event_node_is_the_redisnode_attribute_after_source(void **state) {
    struct eb_event ev = sample_event();
    ev.node = "10.0.0.5:6379";
    struct jnode root;
    encode_parse(state, &ev, EB_FORMAT_CLOUDEVENTS, &root);
    char keys[512];
    jkeys(&root, keys, sizeof(keys));
    assert_string_equal(keys,
                        "specversion,type,source,redisnode,id,time,subject,datacontenttype,data");
    assert_jstr(jget(&root, "redisnode"), "10.0.0.5:6379", 13);
    jfree(&root);
}

static void test_event_node_is_a_ce_header_in_binary_mode(void **state) {
    struct eb_event ev = sample_event();
    ev.node = "10.0.0.5:6379";
    const struct eb_encoded *enc = encode_ok(state, &ev, EB_FORMAT_CLOUDEVENTS_BINARY);
    const struct eb_header *h = header(enc, "ce_redisnode");
    assert_non_null(h);
    assert_int_equal(h->value_len, 13);
    assert_memory_equal(h->value, "10.0.0.5:6379", 13);
}

static void test_event_node_does_not_change_the_id(void **state) {
    struct eb_event ev = sample_event();
    char a[33], b[33];
    eb_event_id(&ev, a);
    ev.node = "10.0.0.5:6379"; /* a copy from another master after a failover */
    eb_event_id(&ev, b);
    assert_string_equal(a, b);
}

static void test_event_type_is_redis_key_dot_event(void **state) {
    struct eb_event ev = sample_event();
    ev.event = "evicted";
    struct jnode root;
    encode_parse(state, &ev, EB_FORMAT_CLOUDEVENTS, &root);
    assert_jstr(jget(&root, "type"), "redis.key.evicted", 17);
    assert_jstr(jget(jget(&root, "data"), "event"), "evicted", 7);
    jfree(&root);
}

static void test_event_time_has_microseconds_and_z(void **state) {
    struct eb_event ev = sample_event();
    ev.time_us = 1000001; /* 1 s + 1 µs after the epoch */
    struct jnode root;
    encode_parse(state, &ev, EB_FORMAT_CLOUDEVENTS, &root);
    assert_jstr(jget(&root, "time"), "1970-01-01T00:00:01.000001Z", 27);
    jfree(&root);
}

static void test_event_time_matches_rfc3339_across_seconds_and_jumps(void **state) {
    /* The encoder caches the formatted second: moving forward, across a
     * second, backwards, before the epoch and past year 9999 must all give
     * what eb_buf_put_rfc3339 gives. */
    static const int64_t times[] = {TIME_US,          TIME_US + 1,       TIME_US + 876543,
                                    TIME_US + 876544, TIME_US - 5000000, 0,
                                    999999,           1000000,           -1,
                                    INT64_MAX,        INT64_MIN,         TIME_US};
    struct ctx *c = *state;
    struct eb_buf want = EB_BUF_INIT;
    for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        struct eb_event ev = sample_event();
        ev.time_us = times[i];
        for (int fmt = 0; fmt < 3; fmt++) {
            assert_int_equal(eb_event_encode(&ev, (enum eb_event_format)fmt, NULL, 0, &c->enc),
                             EB_OK);
            eb_buf_reset(&want);
            eb_buf_puts(&want, "\"time\":\"");
            eb_buf_put_rfc3339(&want, times[i], 6);
            eb_buf_putc(&want, '"');
            eb_buf_cstr(&want);
            if (fmt == EB_FORMAT_CLOUDEVENTS_BINARY) {
                const struct eb_header *h = header(&c->enc, "ce_time");
                assert_int_equal(h->value_len, want.len - 9);
                assert_memory_equal(h->value, want.data + 8, want.len - 9);
            } else if (!strstr(c->enc.value.data, want.data)) {
                fail_msg("time %lld: want %s in %s", (long long)times[i], want.data,
                         c->enc.value.data);
            }
        }
    }
    eb_buf_free(&want);
}

static void test_event_db_is_a_number(void **state) {
    struct eb_event ev = sample_event();
    ev.db = 15;
    struct jnode root;
    encode_parse(state, &ev, EB_FORMAT_CLOUDEVENTS, &root);
    const struct jnode *db = jget(jget(&root, "data"), "db");
    assert_int_equal(db->type, J_NUM);
    assert_string_equal(db->s, "15");
    jfree(&root);
}

/* ------------------------------------------------------------------------ */
/* Keys: UTF-8, NUL, size, escaping                                          */
/* ------------------------------------------------------------------------ */

static void test_event_invalid_utf8_key_gets_fffd_and_exact_key_base64(void **state) {
    static const unsigned char key[] = {'a', 0xFF, 'b', 0xC3}; /* stray + truncated */
    struct eb_event ev = sample_event();
    ev.key = key;
    ev.key_len = sizeof(key);
    struct jnode root;
    encode_parse(state, &ev, EB_FORMAT_CLOUDEVENTS, &root);
    const struct jnode *data = jget(&root, "data");
    static const char sanitized[] = "a\xEF\xBF\xBD"
                                    "b\xEF\xBF\xBD";
    assert_jstr(jget(&root, "subject"), sanitized, sizeof(sanitized) - 1);
    assert_jstr(jget(data, "key"), sanitized, sizeof(sanitized) - 1);
    const struct jnode *b64 = jget(data, "key_base64");
    assert_jstr(b64, "Yf9iww==", 8);
    unsigned char back[8];
    assert_int_equal(b64decode(b64->s, b64->len, back), sizeof(key));
    assert_memory_equal(back, key, sizeof(key));
    char keys[256];
    jkeys(data, keys, sizeof(keys));
    assert_string_equal(keys, "event,key,key_base64,db,route,params,delivery");
    jfree(&root);
}

static void test_event_valid_utf8_key_has_no_key_base64(void **state) {
    static const char key[] = "caf\xC3\xA9:\xF0\x9F\x9B\x92"; /* café:🛒 */
    struct eb_event ev = sample_event();
    ev.key = key;
    ev.key_len = sizeof(key) - 1;
    struct jnode root;
    encode_parse(state, &ev, EB_FORMAT_CLOUDEVENTS, &root);
    assert_jstr(jget(jget(&root, "data"), "key"), key, sizeof(key) - 1);
    assert_null(jget(jget(&root, "data"), "key_base64"));
    jfree(&root);
}

static void test_event_nul_byte_in_key_is_escaped_and_round_trips(void **state) {
    static const char key[] = {'k', '\0', 'z'};
    struct eb_event ev = sample_event();
    ev.key = key;
    ev.key_len = sizeof(key);
    struct eb_encoded *enc = encode_ok(state, &ev, EB_FORMAT_CLOUDEVENTS);
    assert_non_null(strstr(enc->value.data, "\"subject\":\"k\\u0000z\""));
    struct jnode root;
    assert_true(jparse(enc->value.data, enc->value.len, &root));
    assert_jstr(jget(jget(&root, "data"), "key"), key, sizeof(key));
    /* NUL is valid UTF-8: the string alone round-trips, no base64 needed. */
    assert_null(jget(jget(&root, "data"), "key_base64"));
    jfree(&root);
}

static void test_event_one_megabyte_key_round_trips(void **state) {
    size_t n = 1u << 20;
    unsigned char *key = malloc(n);
    for (size_t i = 0; i < n; i++)
        key[i] = (unsigned char)(i * 131 + 7); /* every byte value, invalid UTF-8 */
    struct eb_event ev = sample_event();
    ev.key = key;
    ev.key_len = n;
    struct jnode root;
    encode_parse(state, &ev, EB_FORMAT_CLOUDEVENTS, &root);
    const struct jnode *b64 = jget(jget(&root, "data"), "key_base64");
    assert_non_null(b64);
    unsigned char *back = malloc(n + 3);
    assert_int_equal(b64decode(b64->s, b64->len, back), n);
    assert_memory_equal(back, key, n);
    jfree(&root);
    free(back);
    free(key);
}

static void test_event_quotes_backslashes_and_controls_are_escaped(void **state) {
    static const char key[] = "q\"b\\n\n\t\x01\x1f\x7f/";
    struct eb_event ev = sample_event();
    ev.key = key;
    ev.key_len = sizeof(key) - 1;
    struct eb_encoded *enc = encode_ok(state, &ev, EB_FORMAT_CLOUDEVENTS);
    assert_non_null(
        strstr(enc->value.data, "\"subject\":\"q\\\"b\\\\n\\n\\t\\u0001\\u001f\x7f/\""));
    struct jnode root;
    assert_true(jparse(enc->value.data, enc->value.len, &root));
    assert_jstr(jget(&root, "subject"), key, sizeof(key) - 1);
    jfree(&root);
}

static void test_event_every_byte_at_every_word_position_round_trips(void **state) {
    /* The encoder checks eight bytes at a time for bytes needing escapes;
     * each byte value must be caught in every lane, in the tail (the last
     * eight bytes, overlapping) and in strings shorter than eight bytes
     * (two overlapping halves from 4 bytes, byte by byte below). */
    struct ctx *c = *state;
    char key[19];
    for (size_t len = 1; len <= sizeof(key); len++) {
        for (size_t pos = 0; pos < len; pos++) {
            for (int v = 0; v < 256; v++) {
                memset(key, 'a', sizeof(key));
                key[pos] = (char)v;
                struct eb_event ev = sample_event();
                ev.key = key;
                ev.key_len = len;
                ev.nparams = 0;
                assert_int_equal(eb_event_encode(&ev, EB_FORMAT_JSON, NULL, 0, &c->enc), EB_OK);
                struct jnode root;
                if (!jparse(c->enc.value.data, c->enc.value.len, &root))
                    fail_msg("byte 0x%02x at %zu/%zu: not JSON: %s", v, pos, len,
                             c->enc.value.data);
                if (v < 0x80)
                    assert_jstr(jget(&root, "key"), key, len);
                else
                    assert_non_null(jget(&root, "key_base64"));
                jfree(&root);
            }
        }
    }
}

static void test_event_empty_key_omits_subject(void **state) {
    struct eb_event ev = sample_event();
    ev.key = NULL;
    ev.key_len = 0;
    ev.nparams = 0;
    struct jnode root;
    encode_parse(state, &ev, EB_FORMAT_CLOUDEVENTS, &root);
    assert_null(jget(&root, "subject"));
    assert_jstr(jget(jget(&root, "data"), "key"), "", 0);
    jfree(&root);
    struct ctx *c = *state;
    encode_ok(state, &ev, EB_FORMAT_CLOUDEVENTS_BINARY);
    assert_null(header(&c->enc, "ce_subject"));
}

static void test_event_strings_from_config_are_escaped(void **state) {
    struct eb_event ev = sample_event();
    ev.source = "redis://h/\"0\"";
    ev.route = "r\\1";
    ev.event = "ex\"p";
    struct jnode root;
    encode_parse(state, &ev, EB_FORMAT_CLOUDEVENTS, &root);
    assert_jstr(jget(&root, "source"), "redis://h/\"0\"", 13);
    assert_jstr(jget(&root, "type"), "redis.key.ex\"p", 14);
    assert_jstr(jget(jget(&root, "data"), "route"), "r\\1", 3);
    jfree(&root);
}

static void test_event_random_keys_always_give_valid_json(void **state) {
    uint64_t rng = 0x9E3779B97F4A7C15u;
    unsigned char key[64];
    for (int iter = 0; iter < 5000; iter++) {
        size_t n = (size_t)(rng % sizeof(key));
        for (size_t i = 0; i < n; i++) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            key[i] = (unsigned char)rng;
        }
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        struct eb_capture cap = {"v", (const char *)key, n / 2};
        struct eb_event ev = sample_event();
        ev.key = key;
        ev.key_len = n;
        ev.params = &cap;
        for (int fmt = 0; fmt < 3; fmt++) {
            struct jnode root;
            encode_parse(state, &ev, (enum eb_event_format)fmt, &root);
            const struct jnode *data = fmt == EB_FORMAT_CLOUDEVENTS ? jget(&root, "data") : &root;
            const struct jnode *b64 = jget(data, "key_base64");
            unsigned char back[64];
            if (b64) {
                assert_int_equal(b64decode(b64->s, b64->len, back), n);
                assert_memory_equal(back, key, n);
            } else {
                assert_jstr(jget(data, "key"), key, n);
            }
            jfree(&root);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* data: route, params, delivery, deadline, payload                          */
/* ------------------------------------------------------------------------ */

static void test_event_route_is_null_when_unrouted(void **state) {
    struct eb_event ev = sample_event();
    ev.route = NULL;
    struct jnode root;
    encode_parse(state, &ev, EB_FORMAT_CLOUDEVENTS, &root);
    assert_int_equal(jget(jget(&root, "data"), "route")->type, J_NULL);
    jfree(&root);
}

static void test_event_params_are_an_empty_object_when_none(void **state) {
    struct eb_event ev = sample_event();
    ev.params = NULL;
    ev.nparams = 0;
    struct eb_encoded *enc = encode_ok(state, &ev, EB_FORMAT_JSON);
    assert_non_null(strstr(enc->value.data, ",\"params\":{},"));
}

static void test_event_params_keep_capture_order(void **state) {
    static const struct eb_capture caps[] = {{"tenant", "acme", 4}, {"order_id", "42", 2}};
    struct eb_event ev = sample_event();
    ev.params = caps;
    ev.nparams = 2;
    struct eb_encoded *enc = encode_ok(state, &ev, EB_FORMAT_JSON);
    assert_non_null(
        strstr(enc->value.data, "\"params\":{\"tenant\":\"acme\",\"order_id\":\"42\"}"));
    assert_null(strstr(enc->value.data, "params_base64"));
}

static void test_event_invalid_utf8_param_adds_params_base64_for_it_only(void **state) {
    static const struct eb_capture caps[] = {{"a", "ok", 2}, {"b", "x\xFE", 2}};
    struct eb_event ev = sample_event();
    ev.params = caps;
    ev.nparams = 2;
    struct jnode root;
    encode_parse(state, &ev, EB_FORMAT_JSON, &root);
    const struct jnode *p = jget(&root, "params");
    assert_jstr(jget(p, "a"), "ok", 2);
    assert_jstr(jget(p, "b"), "x\xEF\xBF\xBD", 4);
    const struct jnode *pb = jget(&root, "params_base64");
    assert_non_null(pb);
    assert_int_equal(pb->n, 1);
    assert_jstr(jget(pb, "b"), "eP4=", 4);
    char keys[256];
    jkeys(&root, keys, sizeof(keys));
    assert_string_equal(keys, "id,time,event,key,db,route,params,params_base64,delivery");
    jfree(&root);
}

static void test_event_delivery_recovered(void **state) {
    struct eb_event ev = sample_event();
    ev.delivery = EB_DELIVERY_RECOVERED;
    struct jnode root;
    encode_parse(state, &ev, EB_FORMAT_CLOUDEVENTS, &root);
    assert_jstr(jget(jget(&root, "data"), "delivery"), "recovered", 9);
    jfree(&root);
}

static void test_event_deadline_has_millisecond_precision_when_known(void **state) {
    struct eb_event ev = sample_event();
    ev.deadline_ms = 1;
    struct jnode root;
    encode_parse(state, &ev, EB_FORMAT_CLOUDEVENTS, &root);
    assert_jstr(jget(jget(&root, "data"), "deadline"), "1970-01-01T00:00:00.001Z", 24);
    jfree(&root);
}

static void test_event_deadline_zero_is_known(void **state) {
    struct eb_event ev = sample_event();
    ev.deadline_ms = 0;
    struct jnode root;
    encode_parse(state, &ev, EB_FORMAT_JSON, &root);
    assert_jstr(jget(&root, "deadline"), "1970-01-01T00:00:00.000Z", 24);
    jfree(&root);
}

static void test_event_deadline_absent_when_unknown(void **state) {
    struct eb_event ev = sample_event();
    ev.deadline_ms = -1;
    struct jnode root;
    encode_parse(state, &ev, EB_FORMAT_CLOUDEVENTS, &root);
    assert_null(jget(jget(&root, "data"), "deadline"));
    jfree(&root);
}

static void test_event_huge_deadline_is_clamped_not_overflowed(void **state) {
    struct eb_event ev = sample_event();
    ev.deadline_ms = INT64_MAX;
    struct jnode root;
    encode_parse(state, &ev, EB_FORMAT_JSON, &root);
    assert_jstr(jget(&root, "deadline"), "9999-12-31T23:59:59.999Z", 24);
    jfree(&root);
}

static void test_event_payload_json_is_embedded_verbatim(void **state) {
    static const char payload[] = "{\"lines\": [{\"sku\":\"A1\",\"qty\":2}], \"total\":-1.5e2}";
    struct eb_event ev = sample_event();
    ev.has_payload = true;
    ev.payload_json = payload;
    ev.payload_len = sizeof(payload) - 1;
    struct eb_encoded *enc = encode_ok(state, &ev, EB_FORMAT_CLOUDEVENTS);
    char expect[256];
    snprintf(expect, sizeof(expect), ",\"payload\":%s}}", payload);
    assert_string_equal(enc->value.data + enc->value.len - strlen(expect), expect);
    struct jnode root;
    assert_true(jparse(enc->value.data, enc->value.len, &root));
    jfree(&root);
}

static void test_event_payload_null_when_asked_for_but_missing(void **state) {
    struct eb_event ev = sample_event();
    ev.has_payload = true;
    ev.payload_json = NULL;
    struct eb_encoded *enc = encode_ok(state, &ev, EB_FORMAT_JSON);
    assert_non_null(strstr(enc->value.data, ",\"payload\":null}"));
}

static void test_event_payload_absent_when_not_asked_for(void **state) {
    struct eb_event ev = sample_event();
    ev.has_payload = false;
    ev.payload_json = "{}"; /* ignored */
    ev.payload_len = 2;
    struct eb_encoded *enc = encode_ok(state, &ev, EB_FORMAT_JSON);
    assert_null(strstr(enc->value.data, "payload"));
}

static void test_event_payload_that_is_not_json_is_einval(void **state) {
    static const char *const bad[] = {
        "",
        "{",
        "{\"a\":1,}",
        "[1 2]",
        "01",
        "1.",
        "\"\x01\"",
        "\"\\x\"",
        "\"\\ud800\"",
        "\"\xC0\x80\"",
        "nul",
        "{} {}",
        "{\"a\" 1}",
        "[1,]",
        "\"\\udc00\"",
        "tru",
        "-",
        "{\"a\":1\"b\":2}",
        "1e",
        "\"unterminated",
        "{1:2}",
        "[\"a\"}",
        "\"\\ud800\\u0041\"",
    };
    struct ctx *c = *state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct eb_event ev = sample_event();
        ev.has_payload = true;
        ev.payload_json = bad[i];
        ev.payload_len = strlen(bad[i]);
        if (eb_event_encode(&ev, EB_FORMAT_CLOUDEVENTS, NULL, 0, &c->enc) != EB_EINVAL)
            fail_msg("payload accepted: '%s'", bad[i]);
    }
}

static void test_event_payload_valid_json_forms_are_accepted(void **state) {
    static const char *const good[] = {
        "0",
        "-0.5e+3",
        " \"s\\u00e9\\ud83d\\uded2\\n\" ",
        "true",
        "false",
        "null",
        "[]",
        "{}",
        "[[[]],{}]",
        "{\"a\":{\"b\":[1,2,{\"c\":null}]}}",
        "\"caf\xC3\xA9\"",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct eb_event ev = sample_event();
        ev.has_payload = true;
        ev.payload_json = good[i];
        ev.payload_len = strlen(good[i]);
        struct jnode root;
        encode_parse(state, &ev, EB_FORMAT_CLOUDEVENTS, &root);
        jfree(&root);
    }
}

static void test_event_payload_nested_too_deep_is_einval(void **state) {
    struct ctx *c = *state;
    char deep[2 * 600 + 1];
    for (int depth = 512; depth <= 513; depth++) {
        memset(deep, '[', (size_t)depth);
        memset(deep + depth, ']', (size_t)depth);
        struct eb_event ev = sample_event();
        ev.has_payload = true;
        ev.payload_json = deep;
        ev.payload_len = 2 * (size_t)depth;
        assert_int_equal(eb_event_encode(&ev, EB_FORMAT_JSON, NULL, 0, &c->enc),
                         depth == 512 ? EB_OK : EB_EINVAL);
    }
}

/* ------------------------------------------------------------------------ */
/* Formats and headers                                                       */
/* ------------------------------------------------------------------------ */

static void test_event_structured_sends_only_content_type(void **state) {
    struct eb_event ev = sample_event();
    struct eb_encoded *enc = encode_ok(state, &ev, EB_FORMAT_CLOUDEVENTS);
    assert_int_equal(enc->nheaders, 1);
    assert_header(enc, 0, "content-type", "application/cloudevents+json");
}

static void test_event_binary_sends_ce_headers_and_data_value(void **state) {
    struct eb_event ev = sample_event();
    struct eb_encoded *enc = encode_ok(state, &ev, EB_FORMAT_CLOUDEVENTS_BINARY);
    assert_int_equal(enc->nheaders, 7);
    assert_header(enc, 0, "ce_specversion", "1.0");
    assert_header(enc, 1, "ce_id", enc->id);
    assert_header(enc, 2, "ce_source", "redis://cache-0:6379/0");
    assert_header(enc, 3, "ce_type", "redis.key.expired");
    assert_header(enc, 4, "ce_time", "2026-11-24T03:40:00.123456Z");
    assert_header(enc, 5, "ce_subject", KEY);
    assert_header(enc, 6, "content-type", "application/json");
    assert_string_equal(enc->value.data,
                        "{\"event\":\"expired\",\"key\":\"" KEY "\",\"db\":0,"
                        "\"route\":\"order-payment-timeout\",\"params\":{\"order_id\":\"7\"},"
                        "\"delivery\":\"live\"}");
}

static void test_event_binary_subject_header_is_sanitized_raw_utf8(void **state) {
    static const unsigned char key[] = {'a', '"', 0xFF, '\n', 0xE2, 0x82, 0xAC};
    struct eb_event ev = sample_event();
    ev.key = key;
    ev.key_len = sizeof(key);
    struct eb_encoded *enc = encode_ok(state, &ev, EB_FORMAT_CLOUDEVENTS_BINARY);
    const struct eb_header *h = header(enc, "ce_subject");
    assert_non_null(h);
    static const char expect[] = "a\"\xEF\xBF\xBD\n\xE2\x82\xAC"; /* not JSON-escaped */
    assert_int_equal(h->value_len, sizeof(expect) - 1);
    assert_memory_equal(h->value, expect, sizeof(expect) - 1);
    assert_non_null(strstr(enc->value.data, "\"key_base64\":\"YSL/CuKCrA==\""));
}

static void test_event_json_format_is_data_with_id_and_time_and_no_headers(void **state) {
    struct eb_event ev = sample_event();
    struct eb_encoded *enc = encode_ok(state, &ev, EB_FORMAT_JSON);
    assert_int_equal(enc->nheaders, 0);
    char expect[512];
    snprintf(expect, sizeof(expect),
             "{\"id\":\"%s\",\"time\":\"2026-11-24T03:40:00.123456Z\",\"event\":\"expired\","
             "\"key\":\"" KEY "\",\"db\":0,\"route\":\"order-payment-timeout\","
             "\"params\":{\"order_id\":\"7\"},\"delivery\":\"live\"}",
             enc->id);
    assert_string_equal(enc->value.data, expect);
}

static void test_event_extra_headers_follow_format_headers(void **state) {
    static const struct eb_header extra[] = {{"x-team", "shop", 4}, {"x-bin", "\0\1", 2}};
    struct ctx *c = *state;
    struct eb_event ev = sample_event();
    static const size_t nbase[] = {1, 7, 0};
    for (int fmt = 0; fmt < 3; fmt++) {
        assert_int_equal(eb_event_encode(&ev, (enum eb_event_format)fmt, extra, 2, &c->enc), EB_OK);
        assert_int_equal(c->enc.nheaders, nbase[fmt] + 2);
        assert_ptr_equal(c->enc.headers[nbase[fmt]].name, extra[0].name);
        assert_ptr_equal(c->enc.headers[nbase[fmt]].value, extra[0].value);
        assert_ptr_equal(c->enc.headers[nbase[fmt] + 1].value, extra[1].value);
        assert_int_equal(c->enc.headers[nbase[fmt] + 1].value_len, 2);
    }
}

static void test_event_too_many_headers_is_einval(void **state) {
    struct eb_header extra[EB_EVENT_MAX_HEADERS + 1];
    for (size_t i = 0; i < EB_EVENT_MAX_HEADERS + 1; i++)
        extra[i] = (struct eb_header){"x", "v", 1};
    struct ctx *c = *state;
    struct eb_event ev = sample_event();
    static const size_t nbase[] = {1, 7, 0};
    for (int fmt = 0; fmt < 3; fmt++) {
        size_t fit = EB_EVENT_MAX_HEADERS - nbase[fmt];
        assert_int_equal(eb_event_encode(&ev, (enum eb_event_format)fmt, extra, fit, &c->enc),
                         EB_OK);
        assert_int_equal(c->enc.nheaders, EB_EVENT_MAX_HEADERS);
        assert_int_equal(eb_event_encode(&ev, (enum eb_event_format)fmt, extra, fit + 1, &c->enc),
                         EB_EINVAL);
        assert_int_equal(c->enc.nheaders, 0);
    }
}

static void test_event_header_pointers_survive_buffer_growth(void **state) {
    struct ctx *c = *state;
    size_t n = 300000;
    char *key = malloc(n);
    memset(key, 'k', n);
    struct eb_event ev = sample_event();
    ev.key = key;
    ev.key_len = n;
    assert_int_equal(eb_event_encode(&ev, EB_FORMAT_CLOUDEVENTS_BINARY, NULL, 0, &c->enc), EB_OK);
    const char *lo = c->enc.hdrbuf.data, *hi = lo + c->enc.hdrbuf.len;
    for (size_t i = 2; i <= 5; i++) {
        const char *v = c->enc.headers[i].value;
        assert_true(v >= lo && v + c->enc.headers[i].value_len <= hi);
    }
    const struct eb_header *subj = header(&c->enc, "ce_subject");
    assert_int_equal(subj->value_len, n);
    assert_memory_equal(subj->value, key, n);
    assert_header(&c->enc, 4, "ce_time", "2026-11-24T03:40:00.123456Z");
    free(key);
}

static void test_event_format_names_parse_and_print(void **state) {
    static const char *const names[] = {"cloudevents", "cloudevents-binary", "json"};
    for (int i = 0; i < 3; i++) {
        enum eb_event_format f;
        assert_true(eb_event_format_parse(names[i], &f));
        assert_int_equal(f, i);
        assert_string_equal(eb_event_format_name(f), names[i]);
    }
    enum eb_event_format f;
    assert_false(eb_event_format_parse("CloudEvents", &f));
    assert_false(eb_event_format_parse("avro", &f));
}

/* ------------------------------------------------------------------------ */
/* id                                                                        */
/* ------------------------------------------------------------------------ */

/* The framing of docs/event.md, written out independently. */
static void reference_id(const struct eb_event *ev, char out[33]) {
    size_t slen = strlen(ev->source), elen = strlen(ev->event);
    size_t n = 8 + slen + 8 + 8 + ev->key_len + 8 + elen + 9;
    unsigned char *in = malloc(n), *o = in;
    uint64_t fields[] = {slen, (uint64_t)(int64_t)ev->db, ev->key_len, elen};
#define LE64(v)                                                                                    \
    for (int b_ = 0; b_ < 8; b_++)                                                                 \
    *o++ = (unsigned char)((uint64_t)(v) >> (8 * b_))
    LE64(fields[0]);
    memcpy(o, ev->source, slen), o += slen;
    LE64(fields[1]);
    LE64(fields[2]);
    memcpy(o, ev->key, ev->key_len), o += ev->key_len;
    LE64(fields[3]);
    memcpy(o, ev->event, elen), o += elen;
    *o++ = ev->deadline_ms >= 0 ? 'd' : 't';
    LE64(ev->deadline_ms >= 0 ? ev->deadline_ms : ev->time_us);
#undef LE64
    XXH128_canonical_t canon;
    XXH128_canonicalFromHash(&canon, XXH3_128bits(in, n));
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", canon.digest[i]);
    free(in);
}

static void test_event_id_is_32_lowercase_hex_and_matches_encoded(void **state) {
    struct eb_event ev = sample_event();
    char id[33];
    eb_event_id(&ev, id);
    assert_int_equal(strlen(id), 32);
    assert_int_equal(strspn(id, "0123456789abcdef"), 32);
    struct eb_encoded *enc = encode_ok(state, &ev, EB_FORMAT_CLOUDEVENTS);
    assert_string_equal(enc->id, id);
    assert_non_null(strstr(enc->value.data, id));
}

static void test_event_id_follows_documented_framing(void **state) {
    char *big = malloc(100000);
    memset(big, 'x', 100000);
    size_t lens[] = {0, 29, 400, 100000}; /* short (one-shot) and long (streamed) */
    for (size_t i = 0; i < 4; i++) {
        for (int dl = 0; dl < 2; dl++) {
            struct eb_event ev = sample_event();
            ev.key = big;
            ev.key_len = lens[i];
            ev.db = -3;
            ev.deadline_ms = dl ? DEADLINE_MS : -1;
            char got[33], want[33];
            eb_event_id(&ev, got);
            reference_id(&ev, want);
            assert_string_equal(got, want);
        }
    }
    free(big);
}

static void test_event_id_shared_by_live_and_recovered_delivery_of_one_timer(void **state) {
    struct eb_event live = sample_event(), rec = sample_event();
    live.deadline_ms = rec.deadline_ms = DEADLINE_MS;
    rec.delivery = EB_DELIVERY_RECOVERED;
    rec.time_us = live.time_us + 600000000; /* swept ten minutes later */
    rec.route = "renamed-route";
    rec.has_payload = true;
    char a[33], b[33];
    eb_event_id(&live, a);
    eb_event_id(&rec, b);
    assert_string_equal(a, b);
}

static void test_event_id_differs_by_deadline_key_db_source_and_event(void **state) {
    struct eb_event base = sample_event();
    base.deadline_ms = DEADLINE_MS;
    char ref[33], id[33];
    eb_event_id(&base, ref);

    struct eb_event ev = base;
    ev.deadline_ms = DEADLINE_MS + 1;
    eb_event_id(&ev, id);
    assert_string_not_equal(id, ref);
    ev = base;
    ev.key = "laravel_cache:ORDER_CONFIRM:8";
    eb_event_id(&ev, id);
    assert_string_not_equal(id, ref);
    ev = base;
    ev.db = 1;
    eb_event_id(&ev, id);
    assert_string_not_equal(id, ref);
    ev = base;
    ev.source = "redis://cache-1:6379/0";
    eb_event_id(&ev, id);
    assert_string_not_equal(id, ref);
    ev = base;
    ev.event = "evicted";
    eb_event_id(&ev, id);
    assert_string_not_equal(id, ref);
}

static void test_event_id_uses_time_only_when_deadline_unknown(void **state) {
    struct eb_event a = sample_event(), b = sample_event();
    char ia[33], ib[33];
    b.time_us += 1;
    eb_event_id(&a, ia);
    eb_event_id(&b, ib);
    assert_string_not_equal(ia, ib); /* two live expiries of one key */
    a.deadline_ms = b.deadline_ms = DEADLINE_MS;
    eb_event_id(&a, ia);
    eb_event_id(&b, ib);
    assert_string_equal(ia, ib);
    /* A deadline equal to the time value is still a different id. */
    a.deadline_ms = -1;
    a.time_us = 5;
    b.deadline_ms = 5;
    eb_event_id(&a, ia);
    eb_event_id(&b, ib);
    assert_string_not_equal(ia, ib);
}

static void test_event_id_framing_is_unambiguous(void **state) {
    struct eb_event a = sample_event(), b = sample_event();
    a.source = "redis://h/0";
    a.key = "ab";
    a.key_len = 2;
    b.source = "redis://h/0a";
    b.key = "b";
    b.key_len = 1;
    char ia[33], ib[33];
    eb_event_id(&a, ia);
    eb_event_id(&b, ib);
    assert_string_not_equal(ia, ib);
    b = a;
    a.key = "k";
    a.key_len = 1;
    a.event = "xexpired";
    b.key = "kx";
    b.key_len = 2;
    b.event = "expired";
    eb_event_id(&a, ia);
    eb_event_id(&b, ib);
    assert_string_not_equal(ia, ib);
}

/* ------------------------------------------------------------------------ */
/* Buffers and errors                                                        */
/* ------------------------------------------------------------------------ */

static void test_event_second_identical_encode_reuses_buffers(void **state) {
    struct ctx *c = *state;
    struct eb_event ev = sample_event();
    for (int fmt = 0; fmt < 3; fmt++) {
        assert_int_equal(eb_event_encode(&ev, (enum eb_event_format)fmt, NULL, 0, &c->enc), EB_OK);
        char *data = c->enc.value.data, *hdata = c->enc.hdrbuf.data;
        size_t cap = c->enc.value.cap, hcap = c->enc.hdrbuf.cap, len = c->enc.value.len;
        assert_int_equal(eb_event_encode(&ev, (enum eb_event_format)fmt, NULL, 0, &c->enc), EB_OK);
        assert_ptr_equal(c->enc.value.data, data);
        assert_int_equal(c->enc.value.cap, cap);
        assert_ptr_equal(c->enc.hdrbuf.data, hdata);
        assert_int_equal(c->enc.hdrbuf.cap, hcap);
        assert_int_equal(c->enc.value.len, len);
    }
}

static void test_event_buffer_gives_back_memory_after_one_huge_event(void **state) {
    struct ctx *c = *state;
    size_t n = 8u << 20;
    char *key = malloc(n);
    memset(key, 'k', n);
    struct eb_event ev = sample_event();
    ev.key = key;
    ev.key_len = n;
    assert_int_equal(eb_event_encode(&ev, EB_FORMAT_CLOUDEVENTS, NULL, 0, &c->enc), EB_OK);
    assert_true(c->enc.value.cap >= 2 * n);
    /* The first small event still sees the huge one's length; the buffer
     * is given back at the next (a stream of huge events keeps it). */
    ev = sample_event();
    assert_int_equal(eb_event_encode(&ev, EB_FORMAT_CLOUDEVENTS, NULL, 0, &c->enc), EB_OK);
    assert_int_equal(eb_event_encode(&ev, EB_FORMAT_CLOUDEVENTS, NULL, 0, &c->enc), EB_OK);
    assert_true(c->enc.value.cap < (1u << 20));
    free(key);
}

static void test_event_over_buffer_max_is_enomem(void **state) {
    struct ctx *c = *state;
    c->enc.value.max = 100;
    struct eb_event ev = sample_event();
    assert_int_equal(eb_event_encode(&ev, EB_FORMAT_CLOUDEVENTS, NULL, 0, &c->enc), EB_ENOMEM);
    assert_int_equal(c->enc.value.len, 0);
    assert_int_equal(c->enc.nheaders, 0);
    c->enc.value.max = 0;
    assert_int_equal(eb_event_encode(&ev, EB_FORMAT_CLOUDEVENTS, NULL, 0, &c->enc), EB_OK);
}

static void test_event_missing_required_inputs_are_einval(void **state) {
    struct ctx *c = *state;
    struct eb_event ev;
    ev = sample_event(), ev.event = NULL;
    assert_int_equal(eb_event_encode(&ev, EB_FORMAT_JSON, NULL, 0, &c->enc), EB_EINVAL);
    ev = sample_event(), ev.event = "";
    assert_int_equal(eb_event_encode(&ev, EB_FORMAT_JSON, NULL, 0, &c->enc), EB_EINVAL);
    ev = sample_event(), ev.source = NULL;
    assert_int_equal(eb_event_encode(&ev, EB_FORMAT_JSON, NULL, 0, &c->enc), EB_EINVAL);
    ev = sample_event(), ev.source = "";
    assert_int_equal(eb_event_encode(&ev, EB_FORMAT_JSON, NULL, 0, &c->enc), EB_EINVAL);
    ev = sample_event(), ev.key = NULL;
    assert_int_equal(eb_event_encode(&ev, EB_FORMAT_JSON, NULL, 0, &c->enc), EB_EINVAL);
    ev = sample_event(), ev.params = NULL;
    assert_int_equal(eb_event_encode(&ev, EB_FORMAT_JSON, NULL, 0, &c->enc), EB_EINVAL);
    ev = sample_event(), ev.delivery = (enum eb_delivery)7;
    assert_int_equal(eb_event_encode(&ev, EB_FORMAT_JSON, NULL, 0, &c->enc), EB_EINVAL);
    ev = sample_event();
    assert_int_equal(eb_event_encode(&ev, (enum eb_event_format)3, NULL, 0, &c->enc), EB_EINVAL);
    assert_int_equal(eb_event_encode(&ev, EB_FORMAT_JSON, NULL, 1, &c->enc), EB_EINVAL);
    assert_int_equal(eb_event_encode(NULL, EB_FORMAT_JSON, NULL, 0, &c->enc), EB_EINVAL);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_event_structured_matches_contract_example_exactly),
        T(test_event_structured_parses_with_fields_in_contract_order),
        T(test_event_node_is_the_redisnode_attribute_after_source),
        T(test_event_node_is_a_ce_header_in_binary_mode),
        T(test_event_node_does_not_change_the_id),
        T(test_event_type_is_redis_key_dot_event),
        T(test_event_time_has_microseconds_and_z),
        T(test_event_time_matches_rfc3339_across_seconds_and_jumps),
        T(test_event_db_is_a_number),
        T(test_event_invalid_utf8_key_gets_fffd_and_exact_key_base64),
        T(test_event_valid_utf8_key_has_no_key_base64),
        T(test_event_nul_byte_in_key_is_escaped_and_round_trips),
        T(test_event_one_megabyte_key_round_trips),
        T(test_event_quotes_backslashes_and_controls_are_escaped),
        T(test_event_every_byte_at_every_word_position_round_trips),
        T(test_event_empty_key_omits_subject),
        T(test_event_strings_from_config_are_escaped),
        T(test_event_random_keys_always_give_valid_json),
        T(test_event_route_is_null_when_unrouted),
        T(test_event_params_are_an_empty_object_when_none),
        T(test_event_params_keep_capture_order),
        T(test_event_invalid_utf8_param_adds_params_base64_for_it_only),
        T(test_event_delivery_recovered),
        T(test_event_deadline_has_millisecond_precision_when_known),
        T(test_event_deadline_zero_is_known),
        T(test_event_deadline_absent_when_unknown),
        T(test_event_huge_deadline_is_clamped_not_overflowed),
        T(test_event_payload_json_is_embedded_verbatim),
        T(test_event_payload_null_when_asked_for_but_missing),
        T(test_event_payload_absent_when_not_asked_for),
        T(test_event_payload_that_is_not_json_is_einval),
        T(test_event_payload_valid_json_forms_are_accepted),
        T(test_event_payload_nested_too_deep_is_einval),
        T(test_event_structured_sends_only_content_type),
        T(test_event_binary_sends_ce_headers_and_data_value),
        T(test_event_binary_subject_header_is_sanitized_raw_utf8),
        T(test_event_json_format_is_data_with_id_and_time_and_no_headers),
        T(test_event_extra_headers_follow_format_headers),
        T(test_event_too_many_headers_is_einval),
        T(test_event_header_pointers_survive_buffer_growth),
        T(test_event_format_names_parse_and_print),
        T(test_event_id_is_32_lowercase_hex_and_matches_encoded),
        T(test_event_id_follows_documented_framing),
        T(test_event_id_shared_by_live_and_recovered_delivery_of_one_timer),
        T(test_event_id_differs_by_deadline_key_db_source_and_event),
        T(test_event_id_uses_time_only_when_deadline_unknown),
        T(test_event_id_framing_is_unambiguous),
        T(test_event_second_identical_encode_reuses_buffers),
        T(test_event_buffer_gives_back_memory_after_one_huge_event),
        T(test_event_over_buffer_max_is_enomem),
        T(test_event_missing_required_inputs_are_einval),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
