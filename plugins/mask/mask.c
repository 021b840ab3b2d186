/* mask.c -- the `mask` transform: hash or redact named fields of
 * data.payload, for personal data (PII) that must not reach Kafka in the
 * clear (plugins/mask/README.md).
 *
 *   settings:
 *     fields: [email, customer.phone]  # a name alone: that member at any depth;
 *                                      # a dotted path: exactly there
 *     mode: hash                       # or redact (the default)
 *     key: ${MASK_KEY}                 # hash: the HMAC-SHA256 key (required)
 *     replacement: "[redacted]"        # redact: the string written instead
 *
 * hash writes "hmac-sha256:<64 hex digits>" of the value (a string's
 * content, or another value's JSON text), keyed so the digest cannot be
 * reversed by hashing guesses without the key, and stable so consumers can
 * still join on it. The payload is rewritten in one pass over its text
 * (ebp/json.h), no tree is built.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <ebp/buf.h>
#include <ebp/json.h>
#include <ebp/settings.h>
#include <expiry_bridge/plugin.h>

struct mask {
    const struct eb_plugin_host *h;
    char **fields;
    size_t nfields;
    bool hash;
    char *key;
    size_t key_len;
    char *replacement_json; /* redact: the replacement as a JSON string */
    struct ebp_buf out, tmp;
};

static void mask_free(struct mask *m) {
    if (!m)
        return;
    ebp_settings_strings_free(m->fields);
    if (m->key)
        memset(m->key, 0, m->key_len);
    free(m->key);
    free(m->replacement_json);
    ebp_buf_free(&m->out);
    ebp_buf_free(&m->tmp);
    free(m);
}

static struct mask *mask_parse(const struct eb_plugin_host *h,
                               const eb_plugin_settings_t *settings) {
    static const char *const keys[] = {"fields", "mode", "key", "replacement", NULL};
    struct mask *m = calloc(1, sizeof(*m));
    bool bad = false;
    if (!m)
        return NULL;
    m->h = h;
    bad |= ebp_settings_known(h, settings, keys) > 0;
    bad |= ebp_settings_strings(h, settings, "fields", true, &m->fields, &m->nfields) != 0;
    for (size_t i = 0; !bad && i < m->nfields; i++) {
        const char *f = m->fields[i];
        if (f[0] == '.' || f[strlen(f) - 1] == '.' || strstr(f, "..")) {
            ebp_settings_errorf(h, ebp_settings_strings_at(h, settings, "fields", i),
                                "'%.64s' is not a field name or dotted path; expected e.g. "
                                "email or customer.email", f);
            bad = true;
        }
    }
    const char *mode = ebp_settings_scalar(h, settings, "mode", false, &bad);
    if (mode && strcmp(mode, "hash") != 0 && strcmp(mode, "redact") != 0) {
        ebp_settings_errorf(h, h->settings_get(settings, "mode"), "expected hash or redact");
        bad = true;
    }
    m->hash = mode && strcmp(mode, "hash") == 0;
    const char *key = ebp_settings_scalar(h, settings, "key", false, &bad);
    if (m->hash && (!key || strlen(key) < 16)) {
        ebp_settings_errorf(h, key ? h->settings_get(settings, "key") : settings,
                            "mode hash needs a key of at least 16 bytes (write ${MASK_KEY}); "
                            "without one anyone can hash guesses and compare");
        bad = true;
    }
    if (key && !(m->key = strdup(key)))
        bad = true;
    m->key_len = key ? strlen(key) : 0;
    const char *rep = ebp_settings_scalar(h, settings, "replacement", false, &bad);
    struct ebp_buf j = EBP_BUF_INIT;
    ebp_buf_json_string(&j, rep ? rep : "[redacted]", strlen(rep ? rep : "[redacted]"));
    ebp_buf_putc(&j, '\0');
    m->replacement_json = ebp_buf_ok(&j) ? j.data : NULL;
    if (!m->replacement_json) {
        ebp_buf_free(&j);
        bad = true;
    }
    if (bad) {
        mask_free(m);
        return NULL;
    }
    return m;
}

EBP_PARSED_PLUGIN(mask, struct mask, mask_parse, mask_free)

/* ebp_json_replace_fn */
static void replace(void *opaque, size_t rule, const char *value, size_t len,
                    struct ebp_buf *out) {
    static const char hex[] = "0123456789abcdef";
    struct mask *m = opaque;
    (void)rule;
    if (len == 4 && memcmp(value, "null", 4) == 0) {
        ebp_buf_append(out, "null", 4); /* nothing to hide */
        return;
    }
    if (!m->hash) {
        ebp_buf_puts(out, m->replacement_json);
        return;
    }
    const void *data = value;
    size_t n = len;
    ebp_buf_reset(&m->tmp);
    if (value[0] == '"' && ebp_json_unquote(value, len, &m->tmp) && ebp_buf_ok(&m->tmp)) {
        data = m->tmp.data ? m->tmp.data : "";
        n = m->tmp.len;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!HMAC(EVP_sha256(), m->key, (int)m->key_len, data, n, md, &mdlen)) {
        out->failed = true;
        return;
    }
    char text[13 + 2 * EVP_MAX_MD_SIZE + 2] = "\"hmac-sha256:";
    size_t w = 13;
    for (unsigned i = 0; i < mdlen; i++) {
        text[w++] = hex[md[i] >> 4];
        text[w++] = hex[md[i] & 15];
    }
    text[w++] = '"';
    ebp_buf_append(out, text, w);
}

static int mask_transform(void *state, eb_plugin_event_t *ev) {
    struct mask *m = state;
    size_t len;
    const char *payload = m->h->payload(ev, &len);
    if (!payload)
        return EB_PLUGIN_CONTINUE; /* the route has no payload: nothing to mask */
    ebp_buf_reset(&m->out);
    int n = ebp_json_rewrite(payload, len, (const char *const *)m->fields, m->nfields, replace, m,
                             &m->out);
    if (n < 0 || !ebp_buf_ok(&m->out)) {
        m->h->fail(ev, n < 0 ? "data.payload is not JSON the masker can read"
                             : "out of memory masking data.payload");
        return EB_PLUGIN_ERROR;
    }
    if (n == 0)
        return EB_PLUGIN_CONTINUE;
    if (m->h->set_payload(ev, m->out.data, m->out.len) != 0) {
        m->h->fail(ev, "cannot replace data.payload");
        return EB_PLUGIN_ERROR;
    }
    return EB_PLUGIN_CONTINUE;
}

EB_PLUGIN_DEFINE(EB_PLUGIN_TRANSFORM, "mask", "1.0.0",
                 "hashes (HMAC-SHA256) or redacts named fields of data.payload", mask_check,
                 mask_init, mask_transform, NULL, mask_destroy);
