/* config_yaml.c -- step 1 of a load: libyaml's event parser builds a small
 * node tree of our own, each node marked with its 1-based line:col,
 * enforcing the input limits as it goes (nesting depth, node count,
 * anchors, and the size the document would have with every alias
 * expanded, so an alias bomb is rejected before anything walks it).
 * Aliases become shared nodes, never copies. The only file that includes
 * libyaml.
 */
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "config/config_internal.h"

static struct ynode *node_new(struct ctx *c, enum ytype type, const yaml_mark_t *mark) {
    if (c->nnodes >= MAX_NODES)
        return NULL;
    if (c->nnodes == c->nodes_cap) {
        size_t cap = c->nodes_cap ? c->nodes_cap * 2 : 256;
        struct ynode **v = realloc(c->nodes, cap * sizeof(*v));
        if (!v) {
            c->oom = true;
            return NULL;
        }
        c->nodes = v;
        c->nodes_cap = cap;
    }
    struct ynode *n = calloc(1, sizeof(*n));
    if (!n) {
        c->oom = true;
        return NULL;
    }
    n->type = type;
    n->line = (unsigned)mark->line + 1;
    n->col = (unsigned)mark->column + 1;
    n->weight = 1;
    c->nodes[c->nnodes++] = n;
    return n;
}

void eb_config_nodes_free(struct ctx *c) {
    for (size_t i = 0; i < c->nnodes; i++) {
        free(c->nodes[i]->str);
        free(c->nodes[i]->kids);
        free(c->nodes[i]);
    }
    free(c->nodes);
    c->nodes = NULL;
    c->nnodes = c->nodes_cap = 0;
    for (size_t i = 0; i < c->nanchors; i++)
        free(c->anchors[i].name);
    c->nanchors = 0;
}

static bool kid_add(struct ctx *c, struct ynode *parent, struct ynode *kid) {
    if (parent->nkids == parent->kids_cap) {
        size_t cap = parent->kids_cap ? parent->kids_cap * 2 : 4;
        struct ynode **v = realloc(parent->kids, cap * sizeof(*v));
        if (!v) {
            c->oom = true;
            return false;
        }
        parent->kids = v;
        parent->kids_cap = cap;
    }
    parent->kids[parent->nkids++] = kid;
    return true;
}

static bool anchor_add(struct ctx *c, const yaml_char_t *name, struct ynode *n,
                       const yaml_mark_t *mark) {
    if (!name)
        return true;
    if (c->nanchors == MAX_ANCHORS) {
        eb_config_errorf(c, (unsigned)mark->line + 1, (unsigned)mark->column + 1,
                         "more than %d anchors; expected a simpler document", MAX_ANCHORS);
        return false;
    }
    char *d = strdup((const char *)name);
    if (!d) {
        c->oom = true;
        return false;
    }
    c->anchors[c->nanchors].name = d;
    c->anchors[c->nanchors++].node = n;
    return true;
}

static struct ynode *anchor_find(const struct ctx *c, const char *name) {
    /* The latest definition of a name wins (YAML allows redefinition). */
    for (size_t i = c->nanchors; i-- > 0;) {
        if (strcmp(c->anchors[i].name, name) == 0)
            return c->anchors[i].node;
    }
    return NULL;
}

/* Line and column (1-based) of byte offset off of buf. */
static void offset_pos(const char *buf, size_t len, size_t off, unsigned *line, unsigned *col) {
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        if (buf[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

static void report_parser_error(struct ctx *c, const yaml_parser_t *p, const char *buf,
                                size_t len) {
    const char *problem = p->problem ? p->problem : "cannot parse";
    unsigned line, col;
    if (p->error == YAML_MEMORY_ERROR) {
        c->oom = true;
        return;
    }
    if (p->error == YAML_READER_ERROR) {
        offset_pos(buf, len, p->problem_offset, &line, &col);
        eb_config_errorf(c, line, col, "malformed YAML: %s (byte 0x%02x); expected UTF-8 text",
                         problem, (unsigned)p->problem_value & 0xffu);
        return;
    }
    line = (unsigned)p->problem_mark.line + 1;
    col = (unsigned)p->problem_mark.column + 1;
    if (p->context)
        eb_config_errorf(c, line, col, "malformed YAML: %s (%s at line %u, column %u)", problem,
                         p->context, (unsigned)p->context_mark.line + 1,
                         (unsigned)p->context_mark.column + 1);
    else
        eb_config_errorf(c, line, col, "malformed YAML: %s", problem);
}

/* Attach n to the open collection (or make it the root), adding its
 * expanded weight to the parent's. */
static bool attach(struct ctx *c, struct ynode **stack, size_t depth, struct ynode **root,
                   struct ynode *n) {
    if (depth == 0) {
        *root = n;
        return true;
    }
    struct ynode *parent = stack[depth - 1];
    parent->weight += n->weight;
    if (parent->weight > MAX_EXPANDED) {
        eb_config_errorf(
            c, n->line, n->col,
            "the document has more than %u nodes once aliases are expanded; expected a plain "
            "configuration (is this an alias bomb?)",
            MAX_EXPANDED);
        return false;
    }
    return kid_add(c, parent, n);
}

static bool scalar_exact(const yaml_event_t *ev) {
    const yaml_mark_t *s = &ev->start_mark, *e = &ev->end_mark;
    size_t len = ev->data.scalar.length, span = e->column - s->column;
    if (s->line != e->line)
        return false;
    switch (ev->data.scalar.style) {
    case YAML_PLAIN_SCALAR_STYLE:
        return span == len;
    case YAML_SINGLE_QUOTED_SCALAR_STYLE:
    case YAML_DOUBLE_QUOTED_SCALAR_STYLE:
        return span == len + 2;
    default:
        return false;
    }
}

/* One event into the tree. Returns false to stop (error reported). */
static bool load_event(struct ctx *c, const yaml_event_t *ev, struct ynode **stack, size_t *depth,
                       struct ynode **root, int *docs) {
    struct ynode *n = NULL;
    unsigned line = (unsigned)ev->start_mark.line + 1, col = (unsigned)ev->start_mark.column + 1;
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++*docs > 1) {
            eb_config_errorf(c, line, col,
                             "a second YAML document; expected one document per file");
            return false;
        }
        return true;
    case YAML_SCALAR_EVENT:
        n = node_new(c, Y_SCALAR, &ev->start_mark);
        if (!n)
            break;
        n->len = ev->data.scalar.length;
        n->str = malloc(n->len + 1);
        if (!n->str) {
            c->oom = true;
            return false;
        }
        memcpy(n->str, ev->data.scalar.value, n->len);
        n->str[n->len] = '\0';
        n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        n->exact = scalar_exact(ev);
        n->lead = n->plain ? 0 : 1;
        n->done = true;
        return anchor_add(c, ev->data.scalar.anchor, n, &ev->start_mark) &&
               attach(c, stack, *depth, root, n);
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        if (*depth == MAX_DEPTH) {
            eb_config_errorf(c, line, col,
                             "nesting deeper than %d levels; expected a flatter document",
                             MAX_DEPTH);
            return false;
        }
        n = node_new(c, ev->type == YAML_SEQUENCE_START_EVENT ? Y_SEQ : Y_MAP, &ev->start_mark);
        if (!n)
            break;
        if (!anchor_add(c,
                        ev->type == YAML_SEQUENCE_START_EVENT ? ev->data.sequence_start.anchor
                                                              : ev->data.mapping_start.anchor,
                        n, &ev->start_mark))
            return false;
        stack[(*depth)++] = n;
        return true;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        n = stack[--*depth];
        n->done = true;
        return attach(c, stack, *depth, root, n);
    case YAML_ALIAS_EVENT: {
        const char *name = (const char *)ev->data.alias.anchor;
        n = anchor_find(c, name);
        if (!n) {
            eb_config_errorf(c, line, col,
                             "alias *%s has no anchor &%s before it; expected a defined anchor",
                             name, name);
            return false;
        }
        if (!n->done) {
            eb_config_errorf(c, line, col,
                             "alias *%s refers to a node that contains it; expected no cycles",
                             name);
            return false;
        }
        return attach(c, stack, *depth, root, n);
    }
    default:
        return true;
    }
    /* node_new failed */
    if (!c->oom)
        eb_config_errorf(c, line, col, "more than %u YAML nodes; expected a smaller document",
                         MAX_NODES);
    return false;
}

/* Parse buf into a node tree. Returns the root (NULL for an empty
 * document, or on error, with c->nerr or c->oom set). */
struct ynode *eb_config_load_yaml(struct ctx *c, const char *buf, size_t len) {
    yaml_parser_t parser;
    yaml_event_t ev;
    struct ynode *stack[MAX_DEPTH], *root = NULL;
    size_t depth = 0;
    int docs = 0;
    if (!yaml_parser_initialize(&parser)) {
        c->oom = true;
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    for (;;) {
        if (!yaml_parser_parse(&parser, &ev)) {
            report_parser_error(c, &parser, buf, len);
            root = NULL;
            break;
        }
        bool ok = load_event(c, &ev, stack, &depth, &root, &docs);
        bool end = ev.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
        if (!ok) {
            root = NULL;
            break;
        }
        if (end)
            break;
    }
    yaml_parser_delete(&parser);
    return root;
}
