/* template.c -- ebp/template.h. */
#include <stdlib.h>
#include <string.h>

#include <ebp/template.h>

#define EBP_TEMPLATE_MAX_NAME 128

static bool name_char(char c, bool first) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
           (!first && ((c >= '0' && c <= '9') || c == '.'));
}

static int fail(struct ebp_template *t, const char *reason, size_t at, const char **why,
                size_t *off) {
    *why = reason;
    *off = at;
    ebp_template_free(t);
    return -1;
}

int ebp_template_parse(const char *s, struct ebp_template *t, const char **why, size_t *off) {
    size_t n = strlen(s);
    memset(t, 0, sizeof(*t));
    if (!(t->src = malloc(n + 1)))
        return fail(t, "out of memory", 0, why, off);
    char *w = t->src; /* literals are unescaped in place, never longer */
    size_t i = 0;
    while (i < n) {
        if (t->nparts == EBP_TEMPLATE_MAX_PARTS)
            return fail(t, "more than 64 parts", i, why, off);
        struct ebp_template_part *pt = &t->parts[t->nparts];
        if (s[i] == '{' && s[i + 1] != '{') {
            size_t start = ++i;
            while (i < n && name_char(s[i], i == start))
                i++;
            if (i == start)
                return fail(t, "'{' is not followed by a variable name (write {{ for a '{')",
                            start - 1, why, off);
            if (i >= n || s[i] != '}')
                return fail(t, "a variable name is not closed by '}'", i, why, off);
            if (i - start > EBP_TEMPLATE_MAX_NAME || s[i - 1] == '.')
                return fail(t, "a variable name is too long or ends in '.'", start, why, off);
            pt->var = true;
            pt->text = w;
            pt->len = i - start;
            memcpy(w, s + start, pt->len);
            w += pt->len;
            i++;
            t->nparts++;
            continue;
        }
        pt->text = w;
        while (i < n && !(s[i] == '{' && s[i + 1] != '{')) {
            if ((s[i] == '{' || s[i] == '}') && s[i + 1] == s[i]) {
                *w++ = s[i];
                i += 2;
            } else if (s[i] == '}') {
                return fail(t, "a lone '}' (write }} for a '}')", i, why, off);
            } else {
                *w++ = s[i++];
            }
        }
        pt->len = (size_t)(w - pt->text);
        t->nparts++;
    }
    return 0;
}

void ebp_template_render(const struct ebp_template *t, ebp_template_var_fn *get, void *opaque,
                         struct ebp_buf *out) {
    for (size_t i = 0; i < t->nparts; i++) {
        const struct ebp_template_part *pt = &t->parts[i];
        const char *v;
        size_t vlen;
        if (!pt->var)
            ebp_buf_append(out, pt->text, pt->len);
        else if (get(opaque, pt->text, pt->len, &v, &vlen))
            ebp_buf_append(out, v, vlen);
    }
}

void ebp_template_free(struct ebp_template *t) {
    free(t->src);
    t->src = NULL;
    t->nparts = 0;
}
