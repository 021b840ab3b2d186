/* schema_events.c -- encode a battery of edge-case events in every format
 * and print them as JSON lines for check_event_schema.py, which validates
 * each value against docs/event.schema.json and checks that the exact key
 * and capture bytes survive.
 *
 * One line per (case, format):
 *   {"case":NAME,"format":FMT,"key_b64":B64,"params_b64":{NAME:B64,...},
 *    "headers":[[NAME,B64],...],"value":VALUE}
 * key_b64/params_b64/header values are the exact input and header bytes in
 * base64 (independent of what the encoder chose to write); VALUE is the
 * encoded message value, embedded as it is.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/event.h"
#include "core/json.h"

struct tcase {
    const char *name;
    struct eb_event ev;
    const struct eb_header *extra;
    size_t nextra;
};

static const char *const formats[] = {"cloudevents", "cloudevents-binary", "json"};

static struct eb_event base_event(const void *key, size_t key_len) {
    struct eb_event ev = {
        .event = "expired",
        .key = key,
        .key_len = key_len,
        .db = 0,
        .source = "redis://cache-0:6379/0",
        .route = "order-payment-timeout",
        .delivery = EB_DELIVERY_LIVE,
        .time_us = 1795491600123456LL,
        .deadline_ms = -1,
    };
    return ev;
}

#define KEY(s) (s), sizeof(s) - 1

static int emit(FILE *out, const struct tcase *c, enum eb_event_format fmt, struct eb_encoded *enc,
                struct eb_buf *line) {
    int rc = eb_event_encode(&c->ev, fmt, c->extra, c->nextra, enc);
    if (rc != EB_OK) {
        fprintf(stderr, "schema_events: %s/%s: %s\n", c->name, formats[fmt], eb_error_str(rc));
        return 1;
    }
    eb_buf_reset(line);
    eb_buf_puts(line, "{\"case\":");
    eb_json_string(line, c->name, strlen(c->name));
    eb_buf_puts(line, ",\"format\":\"");
    eb_buf_puts(line, formats[fmt]);
    eb_buf_puts(line, "\",\"key_b64\":\"");
    eb_buf_put_base64(line, c->ev.key, c->ev.key_len);
    eb_buf_puts(line, "\",\"params_b64\":{");
    for (size_t i = 0; i < c->ev.nparams; i++) {
        if (i)
            eb_buf_putc(line, ',');
        eb_json_string(line, c->ev.params[i].name, strlen(c->ev.params[i].name));
        eb_buf_puts(line, ":\"");
        eb_buf_put_base64(line, c->ev.params[i].value, c->ev.params[i].value_len);
        eb_buf_putc(line, '"');
    }
    eb_buf_puts(line, "},\"headers\":[");
    for (size_t i = 0; i < enc->nheaders; i++) {
        if (i)
            eb_buf_putc(line, ',');
        eb_buf_putc(line, '[');
        eb_json_string(line, enc->headers[i].name, strlen(enc->headers[i].name));
        eb_buf_puts(line, ",\"");
        eb_buf_put_base64(line, enc->headers[i].value, enc->headers[i].value_len);
        eb_buf_puts(line, "\"]");
    }
    eb_buf_puts(line, "],\"value\":");
    eb_buf_append(line, enc->value.data, enc->value.len);
    eb_buf_puts(line, "}\n");
    if (!eb_buf_ok(line))
        return 1;
    return fwrite(line->data, 1, line->len, out) == line->len ? 0 : 1;
}

int main(void) {
    static const struct eb_capture order_caps[] = {{"order_id", "7", 1}};
    static const struct eb_capture many_caps[] = {
        {"tenant", "acme", 4}, {"order_id", "42", 2}, {"note", "caf\xC3\xA9 \"q\"\\", 10}};
    static const struct eb_capture bad_caps[] = {
        {"ok", "fine", 4}, {"raw", "x\xFF\xFEy", 4}, {"nul", "a\0b", 3}, {"trunc", "\xE2\x82", 2}};
    static const struct eb_header extra[] = {{"x-team", "shop", 4}, {"x-trace", "\x00\xFF", 2}};

    static const unsigned char invalid_key[] = {
        'o',  'r',  'd',  'e',  'r',  ':',  0xFF,       /* stray byte */
        0xC0, 0x80,                                     /* overlong NUL */
        0xED, 0xA0, 0x80,                               /* surrogate */
        0xF4, 0x90, 0x80, 0x80,                         /* above U+10FFFF */
        0xE2, 0x28, 0xA1,                               /* interrupted */
        ':',  0xC3, 0xA9, ':',  0xF0, 0x9F, 0x9B, 0x92, /* valid é and 🛒 between */
        0xF0, 0x9F, 0x98};                              /* truncated at the end */
    static const char nul_key[] = {'k', '\0', 'e', 'y', '\0'};
    static const char ctrl_key[] = "tab\there\nnl\rcr\x01\x1f\x7f\b\f";
    static const char quote_key[] = "say \"hi\" \\ back\\slash / solidus";
    static const char emoji_key[] = "cart:\xF0\x9F\x9B\x92:\xE6\xB3\xA8\xE6\x96\x87:caf\xC3\xA9";
    static const char payload_obj[] = "{\"lines\":[{\"sku\":\"A1\",\"qty\":2},{\"sku\":"
                                      "\"B\\u00e9\",\"qty\":1}],\"total\":-12.5e1}";
    static const char payload_str[] = " \"caf\\u00e9 \\ud83d\\uded2 \\n\" ";
    static const char ext_json[] = ",\"ext\":{\"region\":\"eu-west\",\"key\":\"k\",\"n\":{\"a\":[1,"
                                   "null]},\"caf\xC3\xA9\":true}";
    static const char payload_deep[] = "[[[[[[[[[[{\"a\":[[[[[]]]]]}]]]]]]]]]]";

    size_t big_n = 1u << 20;
    unsigned char *big = malloc(big_n);
    char *big_ascii = malloc(big_n);
    if (!big || !big_ascii)
        return 1;
    uint64_t rng = 0x243F6A8885A308D3u;
    for (size_t i = 0; i < big_n; i++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        big[i] = (unsigned char)rng;
        big_ascii[i] = (char)('a' + i % 26);
    }

    struct tcase cases[32];
    size_t n = 0;
#define ADD(nm, ...)                                                                               \
    do {                                                                                           \
        cases[n] = (struct tcase){.name = (nm)};                                                   \
        __VA_ARGS__;                                                                               \
        n++;                                                                                       \
    } while (0)
#define EV cases[n].ev

    ADD("contract_example", EV = base_event(KEY("laravel_cache:ORDER_CONFIRM:7")),
        EV.params = order_caps, EV.nparams = 1, EV.deadline_ms = 1795491599998LL,
        EV.has_payload = true);
    ADD("invalid_utf8_key", EV = base_event(invalid_key, sizeof(invalid_key)));
    ADD("nul_bytes_in_key", EV = base_event(nul_key, sizeof(nul_key)));
    ADD("control_chars_in_key", EV = base_event(KEY(ctrl_key)));
    ADD("quotes_and_backslashes", EV = base_event(KEY(quote_key)));
    ADD("emoji_and_cjk_key", EV = base_event(KEY(emoji_key)));
    ADD("one_megabyte_random_key", EV = base_event(big, big_n));
    ADD("one_megabyte_ascii_key", EV = base_event(big_ascii, big_n));
    ADD("empty_key", EV = base_event("", 0));
    ADD("params_several", EV = base_event(KEY("t:acme:42")), EV.params = many_caps, EV.nparams = 3);
    ADD("params_invalid_utf8", EV = base_event(KEY("p:fine:x\xFF\xFEy")), EV.params = bad_caps,
        EV.nparams = 4);
    ADD("payload_object", EV = base_event(KEY("o:1")), EV.has_payload = true,
        EV.payload_json = payload_obj, EV.payload_len = sizeof(payload_obj) - 1);
    ADD("payload_string", EV = base_event(KEY("o:2")), EV.has_payload = true,
        EV.payload_json = payload_str, EV.payload_len = sizeof(payload_str) - 1);
    ADD("payload_nested", EV = base_event(KEY("o:3")), EV.has_payload = true,
        EV.payload_json = payload_deep, EV.payload_len = sizeof(payload_deep) - 1);
    ADD("payload_missing_is_null", EV = base_event(KEY("o:4")), EV.has_payload = true);
    ADD("recovered_with_deadline", EV = base_event(KEY("o:5")), EV.delivery = EB_DELIVERY_RECOVERED,
        EV.deadline_ms = 1795491000000LL, EV.time_us = 1795491900000001LL);
    ADD("deadline_epoch", EV = base_event(KEY("o:6")), EV.deadline_ms = 0);
    ADD("unrouted", EV = base_event(KEY("misc:key")), EV.route = NULL);
    ADD("evicted_db15", EV = base_event(KEY("c:1")), EV.event = "evicted", EV.db = 15);
    ADD("time_before_epoch", EV = base_event(KEY("t:1")), EV.time_us = -1);
    ADD("time_and_deadline_clamped", EV = base_event(KEY("t:2")), EV.time_us = INT64_MAX,
        EV.deadline_ms = INT64_MAX);
    ADD("extra_route_headers", EV = base_event(KEY("h:1")), cases[n].extra = extra,
        cases[n].nextra = 2);
    /* What the plugin host writes after the core members once plugins
     * added fields (unit.plugin_host checks the host writes exactly this). */
    ADD("plugin_extensions", EV = base_event(KEY("order:shop:7")), EV.params = order_caps,
        EV.nparams = 1, EV.has_payload = true, EV.payload_json = payload_obj,
        EV.payload_len = sizeof(payload_obj) - 1, EV.extra_json = ext_json,
        EV.extra_len = sizeof(ext_json) - 1);
    ADD("escaped_config_strings", EV = base_event(KEY("s:1")), EV.source = "redis://h:1/0?\"x\"",
        EV.route = "route\\with\"quotes\"");
#undef EV
#undef ADD

    struct eb_encoded enc;
    eb_event_encoded_init(&enc);
    struct eb_buf line = EB_BUF_INIT;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        for (int fmt = 0; fmt < 3 && rc == 0; fmt++)
            rc = emit(stdout, &cases[i], (enum eb_event_format)fmt, &enc, &line);
    }
    eb_buf_free(&line);
    eb_event_encoded_free(&enc);
    free(big);
    free(big_ascii);
    if (fflush(stdout) != 0)
        rc = 1;
    return rc;
}
