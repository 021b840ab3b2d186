/* router.h -- map a Redis key and event to a route: longest literal prefix
 * wins, `{name}` captures, and render the route's Kafka key template.
 *
 * Pattern syntax (the `match:` of a route):
 *   literal text      matches itself, byte for byte
 *   {name}            captures one or more bytes, up to the first occurrence
 *                     of the literal text that follows it in the pattern
 *                     (searched from the capture's second byte, so "a:{x}:b"
 *                     takes x = ":" from "a:::b"); no backtracking. A capture
 *                     at the end of the pattern takes the rest of the key.
 *                     name: [A-Za-z_][A-Za-z0-9_]*, unique per pattern, not
 *                     one of the template built-ins below. Two captures (or a
 *                     capture and '*') need literal text between them.
 *   *                 only as the last character: any remainder (possibly
 *                     empty); "session:*" is a prefix route.
 *   {{ and }}         a literal '{' or '}'.
 * A pattern matches the whole key. Its literal prefix is the text before
 * the first capture or '*'.
 *
 * Lookup walks a byte trie of literal prefixes, so its cost depends on the
 * key's length, not on the number of routes. Candidates are tried from the
 * longest prefix down; the first whose pattern matches the whole key and
 * whose events include the event wins.
 *
 * Two rules with the same literal prefix that share an event are a tie:
 * eb_router_new() rejects them (a config error), so every key has at most
 * one route per prefix length.
 *
 * Key templates (the `key:` of a route): literal text plus {capture},
 * {key} (the Redis key), {db}, {event}, {route}; {{ and }} escape braces.
 */
#ifndef EB_ROUTER_H
#define EB_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/json.h"

typedef struct eb_router eb_router_t;

/* Patterns with more captures than this are rejected. */
#define EB_ROUTER_MAX_CAPTURES 16

struct eb_router_rule {
    const char *name;  /* route name; copied */
    const char *match; /* pattern; copied */
    const char *key;   /* Kafka key template; NULL means the Redis key; copied */
    uint64_t events;   /* bit i set: event id i (notify_flags.h) */
    void *opaque;      /* handed back in eb_match; borrowed, never touched */
};

/* One capture of a match. `name` is owned by the router; `value` points into
 * the key passed to eb_router_match() and lives as long as it. */
struct eb_capture {
    const char *name;
    const char *value;
    size_t value_len;
};

struct eb_match {
    size_t rule;       /* index into the rules given to eb_router_new() */
    const char *route; /* rule name, owned by the router */
    void *opaque;      /* the rule's opaque */
    struct eb_capture caps[EB_ROUTER_MAX_CAPTURES];
    size_t ncaps;      /* in pattern order */
};

/* Compile `n` rules. On error returns NULL, sets *bad_rule (if not NULL) to
 * the index of the offending rule (for a tie: the later of the two) and
 * writes the reason to errstr, e.g.
 *   "routes 'a' and 'b' have the same literal prefix \"order:\" and both
 *    take event 'expired'; make one prefix longer or split their events".
 * Pattern and template errors are reported the same way (prefer checking
 * them first with eb_router_check_pattern/_template for a column).
 * Free with eb_router_destroy(). */
eb_router_t *eb_router_new(const struct eb_router_rule *rules, size_t n, size_t *bad_rule,
                           char *errstr, size_t errstr_size);

/* NULL is a no-op. */
void eb_router_destroy(eb_router_t *r);

size_t eb_router_rule_count(const eb_router_t *r);

/* Route key[0..len) for event id `event`. Returns true and fills *out on a
 * match. Keys may hold any byte, NUL included. Never allocates. */
bool eb_router_match(const eb_router_t *r, const void *key, size_t len, int event,
                     struct eb_match *out);

/* Append the Kafka key for a match: the rule's template rendered with the
 * captures, or the Redis key itself when the rule has no template. */
void eb_router_render_key(const eb_router_t *r, const struct eb_match *m, const void *key,
                          size_t len, int db, const char *event, struct eb_buf *out);

/* Validate a pattern alone. Returns 0, or EB_ECONFIG with the reason in
 * errstr and the byte offset of the problem in *err_offset. */
int eb_router_check_pattern(const char *pattern, size_t *err_offset, char *errstr,
                            size_t errstr_size);

/* Validate a key template against the captures `pattern` declares. Returns
 * 0, or EB_ECONFIG with the reason and *err_offset as above (an unknown
 * variable names the captures that do exist). */
int eb_router_check_template(const char *tmpl, const char *pattern, size_t *err_offset,
                             char *errstr, size_t errstr_size);

/* The literal prefix of a pattern, unescaped, into out (NUL-terminated,
 * truncated to fit). For error messages and docs. */
void eb_router_literal_prefix(const char *pattern, char *out, size_t out_size);

#endif
