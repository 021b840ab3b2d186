/* fuzz_plugin_template.c -- the enrich plugin's templates and the filter's
 * globs (plugins/common/template.c, glob.c): any text either compiles or
 * is refused with an offset inside it; rendering stays within the parts;
 * a glob matches any bytes without reading past them.
 * Input: first line the template/pattern, the rest a key. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ebp/glob.h>
#include <ebp/template.h>

static bool var(void *opaque, const char *name, size_t len, const char **v, size_t *vlen) {
    (void)opaque;
    *v = name; /* the name itself */
    *vlen = len;
    return len % 2 == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *nl = memchr(data, '\n', size);
    size_t tlen = nl ? (size_t)(nl - (const char *)data) : size;
    char *t = malloc(tlen + 1);
    if (!t)
        return 0;
    memcpy(t, data, tlen);
    t[tlen] = '\0';
    struct ebp_template tp;
    const char *why;
    size_t off;
    if (ebp_template_parse(t, &tp, &why, &off) == 0) {
        struct ebp_buf out = EBP_BUF_INIT;
        ebp_template_render(&tp, var, NULL, &out);
        if (out.len > tlen)
            abort(); /* names and literals only shrink */
        ebp_buf_free(&out);
        ebp_template_free(&tp);
    } else if (off > tlen) {
        abort();
    }
    if (nl) {
        size_t klen = size - tlen - 1;
        char *key = malloc(klen ? klen : 1);
        if (key) {
            memcpy(key, nl + 1, klen);
            ebp_glob_match(t, key, klen);
            free(key);
        }
    }
    free(t);
    return 0;
}
