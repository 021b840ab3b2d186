/* router.c -- route table: a compressed byte trie of literal prefixes, each
 * rule's pattern compiled into segments, and Kafka key templates compiled
 * into segments, so that matching and rendering only walk precomputed data.
 *
 * Ownership: the router owns copies of every string it was given; the
 * rules' opaque pointers are borrowed and never touched.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/notify.h"
#include "core/router.h"

/* ------------------------------------------------------------------------ */
/* Compiled patterns and templates                                          */
/* ------------------------------------------------------------------------ */

enum seg_type { SEG_LIT, SEG_CAP, SEG_STAR };

struct seg {
    enum seg_type type;
    const char *lit; /* SEG_LIT: unescaped bytes; SEG_CAP: the capture's name */
    size_t len;
    size_t cap; /* SEG_CAP: index into the rule's captures */
};

/* Worst case: a literal before each capture, one after the last, and '*'. */
#define MAX_SEGS (2 * EB_ROUTER_MAX_CAPTURES + 2)

/* A parsed pattern. Literal and name bytes live in a caller buffer of
 * strlen(pattern) * 2 + 2 bytes (unescaped literals never grow, and each
 * capture name gets a NUL). */
struct pattern {
    struct seg segs[MAX_SEGS];
    size_t nsegs;
    const char *caps[EB_ROUTER_MAX_CAPTURES]; /* NUL-terminated names */
    size_t ncaps;
};

enum tseg_type { T_LIT, T_CAP, T_KEY, T_DB, T_EVENT, T_ROUTE };

struct tseg {
    enum tseg_type type;
    const char *lit; /* T_LIT: unescaped bytes */
    size_t len;
    size_t cap; /* T_CAP: capture index */
};

/* Template variables that every route has, whatever its pattern. */
static const struct {
    const char *name;
    enum tseg_type type;
} builtins[] = {{"key", T_KEY}, {"db", T_DB}, {"event", T_EVENT}, {"route", T_ROUTE}};

#define NBUILTINS (sizeof(builtins) / sizeof(builtins[0]))

/* A compiled rule. The fields a lookup reads come first, so trying a
 * candidate touches one cache line of it. */
struct rule {
    uint64_t events;
    size_t prefix_len;
    size_t min_len;  /* shortest key the pattern can match */
    size_t tail_len; /* literal text the key must end with (0: none) */
    const char *tail;
    struct seg *segs; /* the pattern after its literal prefix */
    size_t nsegs;
    char *name;
    void *opaque;
    const char *prefix; /* into text */
    struct tseg *tsegs; /* compiled key template, or NULL */
    size_t ntsegs;
    char *match;
    char *key;   /* template source, or NULL */
    char *text;  /* unescaped pattern literals and capture names */
    char *tlits; /* template literal bytes */
};

/* Building: a compressed trie of heap nodes. The edge label leading into a
 * node points into a rule's prefix (rules outlive the trie). */
struct bnode {
    const unsigned char *label;
    size_t label_len;
    struct bnode **kids; /* sorted by label[0]; first bytes are distinct */
    size_t nkids, kids_cap;
    uint32_t *rules; /* indexes of the rules whose literal prefix ends here */
    size_t nrules, rules_cap;
};

/* Looking up: the built trie frozen into one array in breadth-first order,
 * so a node's children are contiguous and their first label bytes sit in a
 * parallel byte array. A lookup binary-searches a few bytes, then touches
 * exactly the child it takes: 24 bytes per node, no pointer chasing. */
#define NO_NODE UINT32_MAX

struct fnode {
    uint32_t label; /* offset of the edge label in labels */
    uint32_t label_len;
    uint32_t kids;   /* index of the first child */
    uint32_t rules;  /* offset of this node's rule indexes in node_rules */
    uint32_t up;     /* nearest proper ancestor holding rules, or NO_NODE */
    uint16_t nkids;  /* at most 256: one per first byte */
    uint16_t nrules; /* at most 64: rules of one node take disjoint events */
};

struct eb_router {
    struct rule *rules;
    size_t nrules;
    struct fnode *nodes;   /* nodes[0] is the root */
    unsigned char *kbytes; /* kbytes[i]: first byte of node i's label */
    unsigned char *labels;
    uint32_t *node_rules;
    size_t nnodes;
};

/* ------------------------------------------------------------------------ */
/* Pattern parsing                                                          */
/* ------------------------------------------------------------------------ */

static bool name_start(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool name_char(char c) {
    return name_start(c) || (c >= '0' && c <= '9');
}

static int fail_at(size_t *err_offset, size_t off, char *errstr, size_t errstr_size,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Record where a pattern or template is wrong and why; returns EB_ECONFIG. */
static int fail_at(size_t *err_offset, size_t off, char *errstr, size_t errstr_size,
                   const char *fmt, ...) {
    if (err_offset)
        *err_offset = off;
    if (errstr_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errstr, errstr_size, fmt, ap);
        va_end(ap);
    }
    return EB_ECONFIG;
}

/* Where the '{' of `{name}` ends: index of the closing '}' or 0 when it is
 * not closed before another brace or the end. */
static size_t capture_end(const char *p, size_t open) {
    for (size_t j = open + 1; p[j]; j++) {
        if (p[j] == '}')
            return j;
        if (p[j] == '{')
            return 0;
    }
    return 0;
}

/* Validate the name p[from..to) as a capture name. */
static int check_capture_name(const char *p, size_t open, size_t close, size_t *err_offset,
                              char *errstr, size_t errstr_size) {
    char name[64];
    size_t n = close - open - 1;
    snprintf(name, sizeof(name), "%.*s", (int)(n < 60 ? n : 60), p + open + 1);
    if (n == 0)
        return fail_at(err_offset, open, errstr, errstr_size,
                       "empty capture '{}'; expected {name} (write '{{' for a literal brace)");
    if (!name_start(p[open + 1]))
        return fail_at(err_offset, open + 1, errstr, errstr_size,
                       "invalid capture name '%s'; expected a letter or '_' first, then letters, "
                       "digits or '_'",
                       name);
    for (size_t k = open + 1; k < close; k++) {
        if (!name_char(p[k]))
            return fail_at(err_offset, k, errstr, errstr_size,
                           "invalid capture name '%s'; expected only letters, digits or '_'", name);
    }
    for (size_t b = 0; b < NBUILTINS; b++) {
        if (strlen(builtins[b].name) == n && memcmp(builtins[b].name, p + open + 1, n) == 0)
            return fail_at(err_offset, open + 1, errstr, errstr_size,
                           "capture name '%s' is a template built-in; expected another name "
                           "(key, db, event and route are reserved)",
                           name);
    }
    return 0;
}

static void flush_lit(struct pattern *pt, char *text, size_t *lit_start, size_t w) {
    if (w > *lit_start) {
        struct seg *s = &pt->segs[pt->nsegs++];
        s->type = SEG_LIT;
        s->lit = text + *lit_start;
        s->len = w - *lit_start;
    }
    *lit_start = w;
}

/* Parse `p` into pt, writing unescaped literals and capture names into
 * text (see struct pattern for its size). */
static int parse_pattern(const char *p, struct pattern *pt, char *text, size_t *err_offset,
                         char *errstr, size_t errstr_size) {
    size_t w = 0, lit_start = 0, i = 0;
    pt->nsegs = 0;
    pt->ncaps = 0;
    while (p[i]) {
        char c = p[i];
        if (c == '{' && p[i + 1] == '{') {
            text[w++] = '{';
            i += 2;
        } else if (c == '}' && p[i + 1] == '}') {
            text[w++] = '}';
            i += 2;
        } else if (c == '}') {
            return fail_at(err_offset, i, errstr, errstr_size,
                           "unmatched '}'; expected '}}' for a literal brace");
        } else if (c == '*') {
            if (p[i + 1] != '\0')
                return fail_at(err_offset, i, errstr, errstr_size,
                               "'*' in the middle of a pattern; expected it only as the last "
                               "character (it matches any remainder)");
            flush_lit(pt, text, &lit_start, w);
            if (pt->nsegs && pt->segs[pt->nsegs - 1].type == SEG_CAP)
                return fail_at(err_offset, i, errstr, errstr_size,
                               "'*' right after capture '{%s}' is ambiguous; expected literal "
                               "text between them",
                               pt->caps[pt->ncaps - 1]);
            pt->segs[pt->nsegs++] = (struct seg){SEG_STAR, NULL, 0, 0};
            i++;
        } else if (c == '{') {
            size_t close = capture_end(p, i);
            if (close == 0)
                return fail_at(err_offset, i, errstr, errstr_size,
                               "unclosed '{'; expected {name} (write '{{' for a literal brace)");
            int rc = check_capture_name(p, i, close, err_offset, errstr, errstr_size);
            if (rc)
                return rc;
            flush_lit(pt, text, &lit_start, w);
            /* Terminate the name in text so it can be handed out as a C
             * string; it sits after the literal bytes written so far. */
            char *name = text + w;
            memcpy(name, p + i + 1, close - i - 1);
            name[close - i - 1] = '\0';
            if (pt->nsegs && pt->segs[pt->nsegs - 1].type == SEG_CAP)
                return fail_at(err_offset, i, errstr, errstr_size,
                               "captures '{%s}' and '{%s}' have no literal text between them, so "
                               "where one ends is ambiguous; expected a separator between them",
                               pt->caps[pt->ncaps - 1], name);
            for (size_t k = 0; k < pt->ncaps; k++) {
                if (strcmp(pt->caps[k], name) == 0)
                    return fail_at(err_offset, i + 1, errstr, errstr_size,
                                   "capture '{%s}' appears twice; expected unique names", name);
            }
            if (pt->ncaps == EB_ROUTER_MAX_CAPTURES)
                return fail_at(err_offset, i, errstr, errstr_size,
                               "more than 16 captures; expected at most 16");
            pt->caps[pt->ncaps] = name;
            pt->segs[pt->nsegs++] = (struct seg){SEG_CAP, name, 0, pt->ncaps};
            pt->ncaps++;
            w += close - i;
            lit_start = w;
            i = close + 1;
        } else {
            text[w++] = c;
            i++;
        }
    }
    flush_lit(pt, text, &lit_start, w);
    if (pt->nsegs == 0)
        return fail_at(err_offset, 0, errstr, errstr_size,
                       "empty pattern; expected a key prefix or pattern such as \"order:{id}\"");
    return 0;
}

/* Text buffer size parse_pattern() needs for p. */
static size_t pattern_text_size(const char *p) {
    return strlen(p) * 2 + 2;
}

int eb_router_check_pattern(const char *pattern, size_t *err_offset, char *errstr,
                            size_t errstr_size) {
    struct pattern pt;
    char *text = malloc(pattern_text_size(pattern));
    if (!text)
        return eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
    int rc = parse_pattern(pattern, &pt, text, err_offset, errstr, errstr_size);
    free(text);
    return rc;
}

void eb_router_literal_prefix(const char *pattern, char *out, size_t out_size) {
    if (out_size == 0)
        return;
    size_t w = 0;
    for (size_t i = 0; pattern[i] && w + 1 < out_size; i++) {
        char c = pattern[i];
        if ((c == '{' || c == '}') && pattern[i + 1] == c) {
            out[w++] = c;
            i++;
        } else if (c == '{' || c == '*' || c == '}') {
            break;
        } else {
            out[w++] = c;
        }
    }
    out[w] = '\0';
}

/* ------------------------------------------------------------------------ */
/* Templates                                                                */
/* ------------------------------------------------------------------------ */

/* "order_id, sku" or "none" into out: for "unknown variable" messages. */
static void list_captures(const struct pattern *pt, char *out, size_t out_size) {
    size_t w = 0;
    out[0] = '\0';
    if (pt->ncaps == 0) {
        snprintf(out, out_size, "the pattern has none");
        return;
    }
    for (size_t k = 0; k < pt->ncaps && w < out_size; k++) {
        int n = snprintf(out + w, out_size - w, "%s{%s}", k ? ", " : "", pt->caps[k]);
        if (n < 0)
            break;
        w += (size_t)n;
    }
}

/* Compile tmpl into segs (capacity strlen(tmpl) + 1) and lits (strlen + 1
 * bytes), resolving variables against pt. */
static int parse_template(const char *tmpl, const struct pattern *pt, struct tseg *segs,
                          size_t *nsegs, char *lits, size_t *err_offset, char *errstr,
                          size_t errstr_size) {
    size_t w = 0, lit_start = 0, n = 0;
    if (tmpl[0] == '\0')
        return fail_at(err_offset, 0, errstr, errstr_size,
                       "empty template; expected text and {variables}, e.g. \"{key}\"");
    for (size_t i = 0; tmpl[i];) {
        char c = tmpl[i];
        if ((c == '{' || c == '}') && tmpl[i + 1] == c) {
            lits[w++] = c;
            i += 2;
            continue;
        }
        if (c == '}')
            return fail_at(err_offset, i, errstr, errstr_size,
                           "unmatched '}'; expected '}}' for a literal brace");
        if (c != '{') {
            lits[w++] = c;
            i++;
            continue;
        }
        size_t close = capture_end(tmpl, i);
        if (close == 0)
            return fail_at(err_offset, i, errstr, errstr_size,
                           "unclosed '{'; expected {variable} (write '{{' for a literal brace)");
        const char *var = tmpl + i + 1;
        size_t vlen = close - i - 1;
        struct tseg t = {T_LIT, NULL, 0, 0};
        bool found = false;
        for (size_t b = 0; b < NBUILTINS && !found; b++) {
            if (strlen(builtins[b].name) == vlen && memcmp(builtins[b].name, var, vlen) == 0) {
                t.type = builtins[b].type;
                found = true;
            }
        }
        for (size_t k = 0; k < pt->ncaps && !found; k++) {
            if (strlen(pt->caps[k]) == vlen && memcmp(pt->caps[k], var, vlen) == 0) {
                t.type = T_CAP;
                t.cap = k;
                found = true;
            }
        }
        if (!found) {
            char name[64], caps[256];
            snprintf(name, sizeof(name), "%.*s", (int)(vlen < 60 ? vlen : 60), var);
            list_captures(pt, caps, sizeof(caps));
            return fail_at(err_offset, i, errstr, errstr_size,
                           "unknown variable '{%s}'; expected a capture of the pattern (%s) or "
                           "one of {key}, {db}, {event}, {route}",
                           name, caps);
        }
        if (w > lit_start)
            segs[n++] = (struct tseg){T_LIT, lits + lit_start, w - lit_start, 0};
        lit_start = w;
        segs[n++] = t;
        i = close + 1;
    }
    if (w > lit_start)
        segs[n++] = (struct tseg){T_LIT, lits + lit_start, w - lit_start, 0};
    *nsegs = n;
    return 0;
}

int eb_router_check_template(const char *tmpl, const char *pattern, size_t *err_offset,
                             char *errstr, size_t errstr_size) {
    struct pattern pt;
    int rc = EB_ENOMEM;
    size_t tlen = strlen(tmpl), nsegs = 0, off = 0;
    char *text = malloc(pattern_text_size(pattern));
    struct tseg *segs = malloc((tlen + 1) * sizeof(*segs));
    char *lits = malloc(tlen + 1);
    if (!text || !segs || !lits) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        goto out_free;
    }
    /* A bad pattern is reported where it is written; here it only means
     * "no captures are known". */
    rc = parse_pattern(pattern, &pt, text, &off, NULL, 0);
    if (rc)
        pt.ncaps = 0;
    rc = parse_template(tmpl, &pt, segs, &nsegs, lits, err_offset, errstr, errstr_size);
out_free:
    free(lits);
    free(segs);
    free(text);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Trie                                                                     */
/* ------------------------------------------------------------------------ */

/* The builder: heap nodes plus a list of all of them for freeing (a chain
 * of nested prefixes can be thousands deep, so nothing recurses). */
struct builder {
    struct bnode *root;
    struct bnode **all;
    size_t nall, all_cap;
};

static struct bnode *bnode_new(struct builder *b, const unsigned char *label, size_t len) {
    if (b->nall == b->all_cap) {
        size_t cap = b->all_cap ? b->all_cap * 2 : 64;
        struct bnode **v = realloc(b->all, cap * sizeof(*v));
        if (!v)
            return NULL;
        b->all = v;
        b->all_cap = cap;
    }
    struct bnode *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->label = label;
    n->label_len = len;
    b->all[b->nall++] = n;
    return n;
}

static void builder_free(struct builder *b) {
    for (size_t i = 0; i < b->nall; i++) {
        free(b->all[i]->kids);
        free(b->all[i]->rules);
        free(b->all[i]);
    }
    free(b->all);
}

/* Index of the child whose label starts with byte c, or where it would be
 * inserted (with *found false). */
static size_t bkid_search(const struct bnode *n, unsigned char c, bool *found) {
    size_t lo = 0, hi = n->nkids;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        unsigned char m = n->kids[mid]->label[0];
        if (m == c) {
            *found = true;
            return mid;
        }
        if (m < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static bool bkid_insert(struct bnode *n, size_t at, struct bnode *kid) {
    if (n->nkids == n->kids_cap) {
        size_t cap = n->kids_cap ? n->kids_cap * 2 : 2;
        struct bnode **k = realloc(n->kids, cap * sizeof(*k));
        if (!k)
            return false;
        n->kids = k;
        n->kids_cap = cap;
    }
    memmove(n->kids + at + 1, n->kids + at, (n->nkids - at) * sizeof(*n->kids));
    n->kids[at] = kid;
    n->nkids++;
    return true;
}

/* The node for prefix p[0..len), created (splitting edges) if needed. */
static struct bnode *builder_node(struct builder *b, const unsigned char *p, size_t len) {
    struct bnode *node = b->root;
    size_t pos = 0;
    while (pos < len) {
        bool found;
        size_t at = bkid_search(node, p[pos], &found);
        if (!found) {
            struct bnode *leaf = bnode_new(b, p + pos, len - pos);
            if (!leaf || !bkid_insert(node, at, leaf))
                return NULL; /* leaf, if any, is freed with the builder */
            return leaf;
        }
        struct bnode *kid = node->kids[at];
        size_t common = 0, max = kid->label_len < len - pos ? kid->label_len : len - pos;
        while (common < max && kid->label[common] == p[pos + common])
            common++;
        if (common < kid->label_len) {
            /* Split the edge: mid takes the shared part, kid keeps the rest.
             * mid's first byte equals kid's, so the sort order holds. */
            struct bnode *mid = bnode_new(b, kid->label, common);
            if (!mid || !bkid_insert(mid, 0, kid))
                return NULL;
            kid->label += common;
            kid->label_len -= common;
            node->kids[at] = mid;
            kid = mid;
        }
        node = kid;
        pos += common;
    }
    return node;
}

static bool bnode_add_rule(struct bnode *n, size_t rule) {
    if (n->nrules == n->rules_cap) {
        size_t cap = n->rules_cap ? n->rules_cap * 2 : 1;
        uint32_t *v = realloc(n->rules, cap * sizeof(*v));
        if (!v)
            return false;
        n->rules = v;
        n->rules_cap = cap;
    }
    n->rules[n->nrules++] = (uint32_t)rule;
    return true;
}

/* Freeze the builder's trie into r->nodes & co. (breadth-first, so the
 * children of a node are consecutive). */
static bool freeze(eb_router_t *r, const struct builder *b) {
    size_t n = b->nall, label_bytes = 0, rule_refs = 0;
    for (size_t i = 0; i < n; i++) {
        label_bytes += b->all[i]->label_len;
        rule_refs += b->all[i]->nrules;
    }
    struct bnode **queue = malloc(n * sizeof(*queue));
    r->nodes = calloc(n, sizeof(*r->nodes));
    r->kbytes = calloc(n, 1);
    r->labels = malloc(label_bytes + 1);
    r->node_rules = malloc((rule_refs + 1) * sizeof(*r->node_rules));
    if (!queue || !r->nodes || !r->kbytes || !r->labels || !r->node_rules) {
        free(queue);
        return false;
    }
    r->nnodes = n;
    size_t head = 0, tail = 0, loff = 0, roff = 0;
    queue[tail++] = b->root;
    r->nodes[0].up = NO_NODE;
    while (head < tail) {
        size_t idx = head;
        const struct bnode *bn = queue[head++];
        struct fnode *fn = &r->nodes[idx];
        fn->label = (uint32_t)loff;
        fn->label_len = (uint32_t)bn->label_len;
        if (bn->label_len)
            memcpy(r->labels + loff, bn->label, bn->label_len);
        loff += bn->label_len;
        fn->rules = (uint32_t)roff;
        fn->nrules = (uint16_t)bn->nrules;
        if (bn->nrules)
            memcpy(r->node_rules + roff, bn->rules, bn->nrules * sizeof(*bn->rules));
        roff += bn->nrules;
        fn->kids = (uint32_t)tail;
        fn->nkids = (uint16_t)bn->nkids;
        uint32_t below = bn->nrules ? (uint32_t)idx : fn->up;
        for (size_t k = 0; k < bn->nkids; k++) {
            r->nodes[tail].up = below;
            r->kbytes[tail] = bn->kids[k]->label[0];
            queue[tail++] = bn->kids[k];
        }
    }
    free(queue);
    return true;
}

/* ------------------------------------------------------------------------ */
/* Construction                                                             */
/* ------------------------------------------------------------------------ */

static void rule_free(struct rule *r) {
    free(r->name);
    free(r->match);
    free(r->key);
    free(r->text);
    free(r->segs);
    free(r->tsegs);
    free(r->tlits);
}

void eb_router_destroy(eb_router_t *r) {
    if (!r)
        return;
    for (size_t i = 0; i < r->nrules; i++)
        rule_free(&r->rules[i]);
    free(r->rules);
    free(r->nodes);
    free(r->kbytes);
    free(r->labels);
    free(r->node_rules);
    free(r);
}

static char *dup_or_null(const char *s, bool *oom) {
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *oom = true;
    return d;
}

/* Compile one rule (pattern and template) into r. */
static int rule_compile(struct rule *r, const struct eb_router_rule *in, char *errstr,
                        size_t errstr_size) {
    struct pattern pt;
    char reason[384];
    size_t off = 0;
    bool oom = false;
    if (!in->name || !in->match)
        return eb_error_set(errstr, errstr_size, EB_EINVAL, "a rule needs a name and a pattern");
    r->name = dup_or_null(in->name, &oom);
    r->match = dup_or_null(in->match, &oom);
    r->key = dup_or_null(in->key, &oom);
    r->events = in->events;
    r->opaque = in->opaque;
    r->text = malloc(pattern_text_size(in->match));
    if (oom || !r->text)
        return eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
    if (parse_pattern(in->match, &pt, r->text, &off, reason, sizeof(reason)))
        return eb_error_set(errstr, errstr_size, EB_ECONFIG, "route '%s': match: %s (at offset %zu)",
                         in->name, reason, off);
    if (in->events == 0)
        return eb_error_set(errstr, errstr_size, EB_ECONFIG,
                         "route '%s' takes no events; expected at least one", in->name);
    size_t first = 0;
    if (pt.segs[0].type == SEG_LIT) {
        r->prefix = pt.segs[0].lit;
        r->prefix_len = pt.segs[0].len;
        first = 1;
    } else {
        r->prefix = r->text;
        r->prefix_len = 0;
    }
    r->nsegs = pt.nsegs - first;
    r->segs = malloc((r->nsegs ? r->nsegs : 1) * sizeof(*r->segs));
    if (!r->segs)
        return eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
    memcpy(r->segs, pt.segs + first, r->nsegs * sizeof(*r->segs));
    /* Cheap rejections before a capture scans the key: a long key that
     * fails a pattern ending in literal text costs only that text. */
    r->min_len = r->prefix_len;
    for (size_t k = 0; k < r->nsegs; k++)
        r->min_len += r->segs[k].type == SEG_LIT ? r->segs[k].len : r->segs[k].type == SEG_CAP;
    if (r->nsegs && r->segs[r->nsegs - 1].type == SEG_LIT) {
        r->tail = r->segs[r->nsegs - 1].lit;
        r->tail_len = r->segs[r->nsegs - 1].len;
    }
    if (!in->key)
        return 0;
    size_t tlen = strlen(in->key);
    r->tsegs = malloc((tlen + 1) * sizeof(*r->tsegs));
    r->tlits = malloc(tlen + 1);
    if (!r->tsegs || !r->tlits)
        return eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
    if (parse_template(in->key, &pt, r->tsegs, &r->ntsegs, r->tlits, &off, reason, sizeof(reason)))
        return eb_error_set(errstr, errstr_size, EB_ECONFIG, "route '%s': key: %s (at offset %zu)",
                         in->name, reason, off);
    return 0;
}

static int lowest_bit(uint64_t m) {
    int i = 0;
    while (!(m & 1)) {
        m >>= 1;
        i++;
    }
    return i;
}

/* Add rule i to the builder, rejecting a tie with a rule already there. */
static int add_rule(eb_router_t *r, struct builder *b, size_t i, char *errstr, size_t errstr_size) {
    const struct rule *ru = &r->rules[i];
    struct bnode *node = builder_node(b, (const unsigned char *)ru->prefix, ru->prefix_len);
    if (!node)
        return eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
    for (size_t k = 0; k < node->nrules; k++) {
        const struct rule *other = &r->rules[node->rules[k]];
        uint64_t shared = other->events & ru->events;
        if (shared) {
            const char *ev = eb_notify_event_name(lowest_bit(shared));
            return eb_error_set(errstr, errstr_size, EB_ECONFIG,
                             "routes '%s' and '%s' have the same literal prefix \"%.*s\" and "
                             "both take event '%s'; make one prefix longer or split their events",
                             other->name, ru->name,
                             (int)(ru->prefix_len > 200 ? 200 : ru->prefix_len), ru->prefix,
                             ev ? ev : "?");
        }
    }
    if (!bnode_add_rule(node, i))
        return eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
    return 0;
}

eb_router_t *eb_router_new(const struct eb_router_rule *rules, size_t n, size_t *bad_rule,
                           char *errstr, size_t errstr_size) {
    struct builder b = {0};
    eb_router_t *r = calloc(1, sizeof(*r));
    if (!r) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        return NULL;
    }
    if (n >= UINT32_MAX) {
        eb_error_set(errstr, errstr_size, EB_EINVAL, "too many routes");
        goto err_destroy;
    }
    r->rules = calloc(n ? n : 1, sizeof(*r->rules));
    b.root = bnode_new(&b, (const unsigned char *)"", 0);
    if (!r->rules || !b.root) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        goto err_free_builder;
    }
    for (size_t i = 0; i < n; i++) {
        r->nrules = i + 1;
        if (bad_rule)
            *bad_rule = i;
        if (rule_compile(&r->rules[i], &rules[i], errstr, errstr_size) ||
            add_rule(r, &b, i, errstr, errstr_size))
            goto err_free_builder;
    }
    if (!freeze(r, &b)) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        goto err_free_builder;
    }
    builder_free(&b);
    return r;
err_free_builder:
    builder_free(&b);
err_destroy:
    eb_router_destroy(r);
    return NULL;
}

size_t eb_router_rule_count(const eb_router_t *r) {
    return r ? r->nrules : 0;
}

/* ------------------------------------------------------------------------ */
/* Matching                                                                 */
/* ------------------------------------------------------------------------ */

/* Match the rest of key (after the rule's literal prefix) against the
 * rule's segments. Deterministic, no backtracking: a capture followed by
 * literal text ends at the first occurrence of that text that leaves it at
 * least one byte. */
static bool rule_match(const struct rule *ru, const unsigned char *key, size_t len,
                       struct eb_match *out) {
    size_t pos = ru->prefix_len;
    out->ncaps = 0;
    if (len < ru->min_len ||
        (ru->tail_len && memcmp(key + len - ru->tail_len, ru->tail, ru->tail_len) != 0))
        return false;
    for (size_t s = 0; s < ru->nsegs; s++) {
        const struct seg *sg = &ru->segs[s];
        switch (sg->type) {
        case SEG_LIT:
            if (len - pos < sg->len || memcmp(key + pos, sg->lit, sg->len) != 0)
                return false;
            pos += sg->len;
            break;
        case SEG_STAR:
            pos = len;
            break;
        case SEG_CAP: {
            size_t end;
            if (pos >= len)
                return false;
            if (s + 1 == ru->nsegs) {
                end = len;
            } else {
                /* The parser guarantees a literal follows a capture. */
                const struct seg *next = &ru->segs[s + 1];
                const unsigned char *hit =
                    memmem(key + pos + 1, len - pos - 1, next->lit, next->len);
                if (!hit)
                    return false;
                end = (size_t)(hit - key);
            }
            struct eb_capture *c = &out->caps[out->ncaps++];
            c->name = sg->lit;
            c->value = (const char *)key + pos;
            c->value_len = end - pos;
            pos = end;
            break;
        }
        }
    }
    return pos == len;
}

/* Edge labels are mostly a few bytes and their first byte is already known
 * to match: a plain loop beats a memcmp call there. */
static inline bool label_eq(const unsigned char *a, const unsigned char *b, size_t n) {
    if (n > 16)
        return memcmp(a + 1, b + 1, n - 1) == 0;
    for (size_t i = 1; i < n; i++) {
        if (a[i] != b[i])
            return false;
    }
    return true;
}

bool eb_router_match(const eb_router_t *r, const void *key, size_t len, int event,
                     struct eb_match *out) {
    if (!r || event < 0 || event >= 64 || (!key && len))
        return false;
    const unsigned char *k = key;
    uint64_t bit = UINT64_C(1) << event;
    const struct fnode *nodes = r->nodes;
    uint32_t node = 0, deepest = nodes[0].nrules ? 0 : NO_NODE;
    size_t pos = 0;
    /* Walk down as far as the key follows the trie, remembering the deepest
     * node that holds rules: the longest literal prefix of the key. */
    while (pos < len) {
        const struct fnode *fn = &nodes[node];
        const unsigned char *kb = r->kbytes + fn->kids;
        size_t lo = 0, hi = fn->nkids;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (kb[mid] < k[pos])
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo == fn->nkids || kb[lo] != k[pos])
            break;
        uint32_t kid = fn->kids + (uint32_t)lo;
        const struct fnode *kn = &nodes[kid];
        if (kn->label_len > len - pos || !label_eq(r->labels + kn->label, k + pos, kn->label_len))
            break;
        pos += kn->label_len;
        node = kid;
        if (kn->nrules)
            deepest = kid;
    }
    /* Then try candidates from the longest prefix down. */
    for (uint32_t n = deepest; n != NO_NODE; n = nodes[n].up) {
        const uint32_t *idx = r->node_rules + nodes[n].rules;
        for (size_t i = 0; i < nodes[n].nrules; i++) {
            const struct rule *ru = &r->rules[idx[i]];
            if (!(ru->events & bit))
                continue;
            /* Ties are rejected, so at most one rule here takes the event. */
            if (rule_match(ru, k, len, out)) {
                out->rule = idx[i];
                out->route = ru->name;
                out->opaque = ru->opaque;
                return true;
            }
            break;
        }
    }
    out->ncaps = 0;
    return false;
}

void eb_router_render_key(const eb_router_t *r, const struct eb_match *m, const void *key,
                          size_t len, int db, const char *event, struct eb_buf *out) {
    const struct rule *ru = r && m && m->rule < r->nrules ? &r->rules[m->rule] : NULL;
    if (!ru || !ru->tsegs) {
        eb_buf_append(out, key, len);
        return;
    }
    for (size_t s = 0; s < ru->ntsegs; s++) {
        const struct tseg *t = &ru->tsegs[s];
        switch (t->type) {
        case T_LIT:
            eb_buf_append(out, t->lit, t->len);
            break;
        case T_CAP:
            if (t->cap < m->ncaps)
                eb_buf_append(out, m->caps[t->cap].value, m->caps[t->cap].value_len);
            break;
        case T_KEY:
            eb_buf_append(out, key, len);
            break;
        case T_DB:
            eb_buf_put_i64(out, db);
            break;
        case T_EVENT:
            if (event)
                eb_buf_puts(out, event);
            break;
        case T_ROUTE:
            eb_buf_puts(out, ru->name);
            break;
        }
    }
}
