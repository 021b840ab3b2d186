/* ebp/template.h -- text templates with {variables}, compiled once from a
 * plugin's settings and rendered per event without allocating (into the
 * caller's buffer).
 *
 * Syntax: literal text, {name} (a variable: [A-Za-z_][A-Za-z0-9_.]*, at
 * most 128 bytes), {{ and }} for literal braces. What a name means is the
 * caller's business (the enrich plugin: key, db, event, route, source, id,
 * delivery, a capture of the route's pattern, or payload.PATH).
 */
#ifndef EBP_TEMPLATE_H
#define EBP_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

#include <ebp/buf.h>

#define EBP_TEMPLATE_MAX_PARTS 64

struct ebp_template_part {
    bool var;         /* a {variable}, else literal text */
    const char *text; /* into the template's own copy; not NUL-terminated */
    size_t len;
};

struct ebp_template {
    char *src; /* owned copy of the text (unescaped literals are written into it) */
    struct ebp_template_part parts[EBP_TEMPLATE_MAX_PARTS];
    size_t nparts;
};

/* Compile s. Returns 0, or -1 with a reason (static) in *why and the byte
 * offset of the problem in *off. Free with ebp_template_free(). */
int ebp_template_parse(const char *s, struct ebp_template *t, const char **why, size_t *off);

/* The value of variable name[0..len): true and [*v, *v + *vlen), or false
 * (rendered as nothing). */
typedef bool(ebp_template_var_fn)(void *opaque, const char *name, size_t len, const char **v,
                                  size_t *vlen);

void ebp_template_render(const struct ebp_template *t, ebp_template_var_fn *get, void *opaque,
                         struct ebp_buf *out);

void ebp_template_free(struct ebp_template *t);

#endif
