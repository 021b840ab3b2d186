/* config_errors.c -- the loader's error list: each message recorded as
 * FILE:LINE:COL (1-based) with what was expected, at most MAX_ERRORS, and
 * scrubbed of every secret seen; and how a node is located, named and
 * quoted in those messages (as written in the file, never expanded).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"

void eb_config_add_secret(struct ctx *c, const char *s) {
    if (!s || strlen(s) < MIN_SCRUB_LEN)
        return;
    if (c->nsecrets == c->secrets_cap) {
        size_t cap = c->secrets_cap ? c->secrets_cap * 2 : 8;
        char **v = realloc(c->secrets, cap * sizeof(*v));
        if (!v) {
            c->oom = c->stop = true;
            return;
        }
        c->secrets = v;
        c->secrets_cap = cap;
    }
    char *d = strdup(s);
    if (!d) {
        c->oom = c->stop = true;
        return;
    }
    c->secrets[c->nsecrets++] = d;
}

/* Replace every occurrence of a known secret in s (in place: "***" is never
 * longer than a secret) with "***". */
static void scrub(const struct ctx *c, char *s) {
    for (size_t i = 0; i < c->nsecrets; i++) {
        const char *sec = c->secrets[i];
        size_t sl = strlen(sec);
        for (char *p = strstr(s, sec); p; p = strstr(p + 3, sec)) {
            memmove(p + 3, p + sl, strlen(p + sl) + 1);
            memcpy(p, "***", 3);
        }
    }
}

/* Record one error at line:col (1-based). */
void eb_config_errorf(struct ctx *c, unsigned line, unsigned col, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    if (c->nerr >= MAX_ERRORS) {
        c->stop = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    scrub(c, msg);
    char where[64];
    snprintf(where, sizeof(where), ":%u:%u: ", line, col);
    if (c->err.len)
        eb_buf_putc(&c->err, '\n');
    eb_buf_puts(&c->err, c->name);
    eb_buf_puts(&c->err, where);
    eb_buf_puts(&c->err, msg);
    if (++c->nerr >= MAX_ERRORS)
        c->stop = true;
}

/* Position of byte `off` of a scalar's value (past an opening quote) when
 * the value is its source text; else the node's start. */
void eb_config_node_pos(const struct ynode *n, size_t off, unsigned *line, unsigned *col) {
    *line = n ? n->line : 1;
    *col = n ? n->col : 1;
    if (n && n->type == Y_SCALAR && n->exact && off <= n->len)
        *col += n->lead + (unsigned)off;
}

const char *eb_config_kind_name(const struct ynode *n) {
    switch (n->type) {
    case Y_SEQ:
        return "a list";
    case Y_MAP:
        return "a mapping";
    default:
        return "a scalar";
    }
}

/* A value as written, for messages: printable, quotes escaped, cut. */
void eb_config_shown(const struct ynode *n, char *out, size_t out_size) {
    size_t w = 0;
    for (size_t i = 0; i < n->len && w + 8 < out_size; i++) {
        unsigned char ch = (unsigned char)n->str[i];
        if (w + 12 >= out_size) {
            memcpy(out + w, "...", 3);
            w += 3;
            break;
        }
        if (ch == '\'' || ch == '\\')
            w += (size_t)snprintf(out + w, out_size - w, "\\%c", ch);
        else if (ch < 0x20 || ch == 0x7f)
            w += (size_t)snprintf(out + w, out_size - w, "\\x%02x", ch);
        else
            out[w++] = (char)ch;
    }
    out[w] = '\0';
}
