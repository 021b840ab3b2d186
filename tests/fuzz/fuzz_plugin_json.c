/* fuzz_plugin_json.c -- the plugins' JSON scanner and rewriter
 * (plugins/common/json.c): skip, get by path, unquote and rewrite must
 * never read past the input, and a rewrite of valid input is valid JSON.
 * Input: the first line is a path (and a mask rule), the rest the document. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ebp/json.h>

#include "core/event.h"

static void replace(void *opaque, size_t rule, const char *value, size_t len,
                    struct ebp_buf *out) {
    (void)opaque;
    (void)rule;
    if (len && value[0] == '"')
        ebp_buf_append(out, value, len); /* the value itself: still valid */
    else
        ebp_buf_puts(out, "\"x\"");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *nl = memchr(data, '\n', size);
    size_t plen = nl ? (size_t)(nl - (const char *)data) : 0;
    if (plen > 200)
        return 0;
    char path[201];
    memcpy(path, data, plen);
    path[plen] = '\0';
    if (memchr(path, '\0', plen))
        return 0;
    const char *doc = nl ? nl + 1 : (const char *)data;
    size_t dlen = size - (size_t)(doc - (const char *)data);
    /* A copy of exactly dlen bytes: ASan sees any read past the end. */
    char *d = malloc(dlen ? dlen : 1);
    if (!d)
        return 0;
    memcpy(d, doc, dlen);
    ebp_json_skip(d, d + dlen);
    const char *v;
    size_t vl;
    struct ebp_buf b = EBP_BUF_INIT;
    if (plen && ebp_json_get(d, dlen, path, &v, &vl)) {
        if (v < d || v + vl > d + dlen)
            abort();
        ebp_json_unquote(v, vl, &b);
    }
    ebp_buf_reset(&b);
    const char *rules[] = {plen ? path : "email"};
    int n = ebp_json_rewrite(d, dlen, rules, 1, replace, NULL, &b);
    if (n >= 0 && ebp_buf_ok(&b) && eb_event_json_valid(d, dlen) &&
        !eb_event_json_valid(b.data ? b.data : "", b.len))
        abort(); /* valid in, invalid out */
    ebp_buf_free(&b);
    free(d);
    return 0;
}
