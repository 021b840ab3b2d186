/* json.c -- ebp/json.h: a bounded-cursor scanner over JSON text. */
#include <string.h>

#include <ebp/json.h>

static const char *ws(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* p at '"': the byte after the closing quote, or NULL. */
static const char *skip_string(const char *p, const char *end) {
    for (p++; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"')
            return p + 1;
        if (c < 0x20)
            return NULL;
        if (c == '\\' && ++p == end)
            return NULL;
    }
    return NULL;
}

static const char *skip_scalar(const char *p, const char *end) {
    const char *s = p;
    while (p < end && (strchr("+-.eE", *p) || (*p >= '0' && *p <= '9') ||
                       (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
        p++;
    if (p == s)
        return NULL;
    size_t n = (size_t)(p - s);
    if ((n == 4 && memcmp(s, "true", 4) == 0) || (n == 5 && memcmp(s, "false", 5) == 0) ||
        (n == 4 && memcmp(s, "null", 4) == 0))
        return p;
    return (*s == '-' || (*s >= '0' && *s <= '9')) ? p : NULL;
}

const char *ebp_json_skip(const char *p, const char *end) {
    char stack[EBP_JSON_MAX_DEPTH];
    size_t depth = 0;
    /* expect: 0 a value, 1 a key or '}' (after '{'), 2 ',' or a close */
    p = ws(p, end);
    for (;;) {
        if (p >= end)
            return NULL;
        /* a value */
        if (*p == '{' || *p == '[') {
            if (depth == EBP_JSON_MAX_DEPTH)
                return NULL;
            stack[depth++] = *p == '{' ? '}' : ']';
            p = ws(p + 1, end);
            if (p < end && *p == stack[depth - 1]) {
                depth--;
                p++;
                goto after_value;
            }
            if (stack[depth - 1] == '}')
                goto member;
            continue;
        }
        p = *p == '"' ? skip_string(p, end) : skip_scalar(p, end);
        if (!p)
            return NULL;
    after_value:
        for (;;) {
            if (depth == 0)
                return p;
            p = ws(p, end);
            if (p >= end)
                return NULL;
            if (*p == stack[depth - 1]) {
                depth--;
                p++;
                continue;
            }
            if (*p != ',')
                return NULL;
            p = ws(p + 1, end);
            if (stack[depth - 1] == '}')
                goto member;
            break;
        }
        continue;
    member:
        if (p >= end || *p != '"' || !(p = skip_string(p, end)))
            return NULL;
        p = ws(p, end);
        if (p >= end || *p != ':')
            return NULL;
        p = ws(p + 1, end);
    }
}

/* Does the member name [k, k+n) (quotes excluded) equal c[0..cn)? */
static bool name_eq(const char *k, size_t n, const char *c, size_t cn) {
    return n == cn && memcmp(k, c, n) == 0;
}

bool ebp_json_plain_name(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == '"' || c == '\\' || c == '.')
            return false;
    }
    return true;
}

bool ebp_json_get(const char *json, size_t len, const char *path, const char **out,
                  size_t *out_len) {
    const char *p = json, *end = json + len;
    for (;;) {
        size_t cn = strcspn(path, ".");
        p = ws(p, end);
        while (p < end && *p == '[') /* arrays are transparent: their first item */
            p = ws(p + 1, end);
        if (p >= end || *p != '{')
            return false;
        p = ws(p + 1, end);
        bool found = false;
        while (p < end && *p == '"') {
            const char *k = p + 1, *ke = skip_string(p, end);
            if (!ke)
                return false;
            p = ws(ke, end);
            if (p >= end || *p != ':')
                return false;
            p = ws(p + 1, end);
            if (name_eq(k, (size_t)(ke - 1 - k), path, cn)) {
                found = true;
                break;
            }
            if (!(p = ebp_json_skip(p, end)))
                return false;
            p = ws(p, end);
            if (p < end && *p == ',')
                p = ws(p + 1, end);
        }
        if (!found)
            return false;
        if (path[cn] == '\0') {
            const char *e = ebp_json_skip(p, end);
            if (!e)
                return false;
            *out = p;
            *out_len = (size_t)(e - p);
            return true;
        }
        path += cn + 1;
    }
}

static int hexval(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                        : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static void put_utf8(struct ebp_buf *out, unsigned long u) {
    char b[4];
    size_t n;
    if (u < 0x80) {
        b[0] = (char)u;
        n = 1;
    } else if (u < 0x800) {
        b[0] = (char)(0xC0 | (u >> 6));
        b[1] = (char)(0x80 | (u & 0x3F));
        n = 2;
    } else if (u < 0x10000) {
        b[0] = (char)(0xE0 | (u >> 12));
        b[1] = (char)(0x80 | ((u >> 6) & 0x3F));
        b[2] = (char)(0x80 | (u & 0x3F));
        n = 3;
    } else {
        b[0] = (char)(0xF0 | (u >> 18));
        b[1] = (char)(0x80 | ((u >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((u >> 6) & 0x3F));
        b[3] = (char)(0x80 | (u & 0x3F));
        n = 4;
    }
    ebp_buf_append(out, b, n);
}

bool ebp_json_unquote(const char *s, size_t n, struct ebp_buf *out) {
    if (n < 2 || s[0] != '"' || s[n - 1] != '"')
        return false;
    const char *p = s + 1, *end = s + n - 1;
    while (p < end) {
        if (*p != '\\') {
            const char *q = p;
            while (q < end && *q != '\\')
                q++;
            ebp_buf_append(out, p, (size_t)(q - p));
            p = q;
            continue;
        }
        if (++p >= end)
            return false;
        char c = *p++;
        const char *simple = strchr("\"\\/bfnrt", c);
        if (c && simple) {
            static const char map[] = "\"\\/\b\f\n\r\t";
            ebp_buf_putc(out, map[simple - "\"\\/bfnrt"]);
            continue;
        }
        if (c != 'u' || end - p < 4)
            return false;
        unsigned long u = 0;
        for (int i = 0; i < 4; i++) {
            int h = hexval(p[i]);
            if (h < 0)
                return false;
            u = u * 16 + (unsigned long)h;
        }
        p += 4;
        if (u >= 0xD800 && u <= 0xDBFF && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
            unsigned long lo = 0;
            for (int i = 0; i < 4; i++) {
                int h = hexval(p[2 + i]);
                lo = h < 0 ? 0 : lo * 16 + (unsigned long)h;
            }
            if (lo >= 0xDC00 && lo <= 0xDFFF) {
                u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
                p += 6;
            }
        }
        put_utf8(out, u);
    }
    return true;
}

/* ---- rewriting --------------------------------------------------------- */

struct frame {
    const char *key;
    size_t len;
};

struct rw {
    const char *end;
    const char *const *rules;
    size_t nrules;
    ebp_json_replace_fn *fn;
    void *opaque;
    struct ebp_buf *out;
    struct frame path[EBP_JSON_MAX_DEPTH];
    size_t depth; /* members on the path */
    int count;
};

/* Index of the rule the current path matches, or nrules. */
static size_t match(const struct rw *w) {
    const struct frame *last = &w->path[w->depth - 1];
    for (size_t r = 0; r < w->nrules; r++) {
        const char *rule = w->rules[r];
        if (!strchr(rule, '.')) {
            if (name_eq(last->key, last->len, rule, strlen(rule)))
                return r;
            continue;
        }
        size_t i = 0;
        for (; i < w->depth; i++) {
            size_t cn = strcspn(rule, ".");
            if (!name_eq(w->path[i].key, w->path[i].len, rule, cn))
                break;
            rule += cn;
            if (*rule == '.')
                rule++;
            else if (i + 1 < w->depth)
                break;
        }
        if (i == w->depth && *rule == '\0')
            return r;
    }
    return w->nrules;
}

static const char *rw_value(struct rw *w, const char *p, unsigned nest);

static const char *rw_container(struct rw *w, const char *p, unsigned nest) {
    char close = *p == '{' ? '}' : ']';
    bool obj = close == '}';
    ebp_buf_putc(w->out, *p);
    p = ws(p + 1, w->end);
    if (p < w->end && *p == close) {
        ebp_buf_putc(w->out, close);
        return p + 1;
    }
    for (;;) {
        if (obj) {
            if (p >= w->end || *p != '"' || w->depth == EBP_JSON_MAX_DEPTH)
                return NULL;
            const char *k = p, *ke = skip_string(p, w->end);
            if (!ke)
                return NULL;
            ebp_buf_append(w->out, k, (size_t)(ke - k));
            p = ws(ke, w->end);
            if (p >= w->end || *p != ':')
                return NULL;
            ebp_buf_putc(w->out, ':');
            p = ws(p + 1, w->end);
            w->path[w->depth].key = k + 1;
            w->path[w->depth].len = (size_t)(ke - k - 2);
            w->depth++;
            size_t r = match(w);
            if (r < w->nrules) {
                const char *e = ebp_json_skip(p, w->end);
                if (!e)
                    return NULL;
                w->fn(w->opaque, r, p, (size_t)(e - p), w->out);
                w->count++;
                p = e;
            } else if (!(p = rw_value(w, p, nest + 1))) {
                return NULL;
            }
            w->depth--;
        } else if (!(p = rw_value(w, p, nest + 1))) {
            return NULL;
        }
        p = ws(p, w->end);
        if (p >= w->end)
            return NULL;
        if (*p == close) {
            ebp_buf_putc(w->out, close);
            return p + 1;
        }
        if (*p != ',')
            return NULL;
        ebp_buf_putc(w->out, ',');
        p = ws(p + 1, w->end);
    }
}

static const char *rw_value(struct rw *w, const char *p, unsigned nest) {
    p = ws(p, w->end);
    if (p >= w->end || nest >= EBP_JSON_MAX_DEPTH)
        return NULL;
    if (*p == '{' || *p == '[')
        return rw_container(w, p, nest);
    const char *e = *p == '"' ? skip_string(p, w->end) : skip_scalar(p, w->end);
    if (e)
        ebp_buf_append(w->out, p, (size_t)(e - p));
    return e;
}

int ebp_json_rewrite(const char *json, size_t len, const char *const *rules, size_t nrules,
                     ebp_json_replace_fn *fn, void *opaque, struct ebp_buf *out) {
    struct rw w;
    memset(&w, 0, sizeof(w));
    w.end = json + len;
    w.rules = rules;
    w.nrules = nrules;
    w.fn = fn;
    w.opaque = opaque;
    w.out = out;
    const char *e = rw_value(&w, json, 0);
    if (!e || ws(e, w.end) != w.end)
        return -1;
    return w.count;
}
