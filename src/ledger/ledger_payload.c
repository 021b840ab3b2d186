/* ledger_payload.c -- the JSON a companion payload is embedded as
 * (contract in ledger.h; docs/event.md, "payload"). Pure: bytes in, bytes
 * out, no I/O, no state. The ledger's names are in ledger_keys.c.
 */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "core/event.h"
#include "core/json.h"
#include "core/utf8.h"
#include "ledger/ledger.h"

/* True when p[0..n) is one JSON text the event encoder embeds (its own
 * check, so the two can never disagree: UTF-8, nesting, syntax). */
static bool json_embeddable(const char *p, size_t n) {
    struct eb_encoded enc;
    struct eb_event ev = {
        .event = "expired",
        .source = "x",
        .deadline_ms = -1,
        .has_payload = true,
        .payload_json = p,
        .payload_len = n,
    };
    eb_event_encoded_init(&enc);
    int rc = eb_event_encode(&ev, EB_FORMAT_JSON, NULL, 0, &enc);
    eb_event_encoded_free(&enc);
    return rc == 0;
}

/* Append the valid JSON text p[0..n) without the whitespace between its
 * tokens: an application's json.dumps(..., indent=2) becomes the compact,
 * one-line JSON docs/event.md promises (line-oriented consumers split the
 * Kafka value on newlines otherwise). Inside strings every byte is kept;
 * a backslash keeps the byte after it, so \" does not end the string. */
static void append_compact(struct eb_buf *out, const char *p, size_t n) {
    bool in_string = false;
    size_t run = 0; /* start of the bytes not yet appended */
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            eb_buf_append(out, p + run, i - run);
            run = i + 1;
        }
    }
    eb_buf_append(out, p + run, n - run);
}

bool eb_ledger_payload_json(struct eb_buf *out, const char *kind,
                            const struct eb_ledger_bytes *vals, size_t nvals) {
    if (strcmp(kind, "string") == 0 && nvals == 1) {
        const struct eb_ledger_bytes *v = &vals[0];
        if (v->len > 0 && json_embeddable(v->p, v->len)) {
            append_compact(out, v->p, v->len);
        } else if (eb_utf8_valid(v->p, v->len)) {
            eb_json_string(out, v->p, v->len);
        } else {
            eb_buf_puts(out, "{\"base64\":\"");
            eb_buf_put_base64(out, v->p, v->len);
            eb_buf_puts(out, "\"}");
        }
        return true;
    }
    if (strcmp(kind, "hash") == 0 && nvals % 2 == 0) {
        bool utf8 = true;
        for (size_t i = 0; i < nvals && utf8; i++)
            utf8 = eb_utf8_valid(vals[i].p, vals[i].len);
        eb_buf_puts(out, utf8 ? "{" : "{\"base64\":{");
        for (size_t i = 0; i < nvals; i += 2) {
            if (i)
                eb_buf_putc(out, ',');
            for (size_t j = i; j < i + 2; j++) {
                if (utf8) {
                    eb_json_string(out, vals[j].p, vals[j].len);
                } else {
                    eb_buf_putc(out, '"');
                    eb_buf_put_base64(out, vals[j].p, vals[j].len);
                    eb_buf_putc(out, '"');
                }
                if (j == i)
                    eb_buf_putc(out, ':');
            }
        }
        eb_buf_puts(out, utf8 ? "}" : "}}");
        return true;
    }
    eb_buf_puts(out, "null");
    return false;
}
