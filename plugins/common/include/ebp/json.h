/* ebp/json.h -- reading and rewriting JSON text without building a tree:
 * what plugins do with data.payload (a value in, a value or the bytes of
 * the rewritten document out). Pure, no allocation except into the
 * caller's buffer.
 *
 * The input is normally valid JSON (the bridge validates every payload and
 * every field a plugin adds), but these functions are safe on any bytes:
 * malformed input is refused, never read past `len`, and nesting is limited
 * to EBP_JSON_MAX_DEPTH.
 *
 * Paths are dotted member names, "customer.email". Arrays are transparent:
 * "items.sku" reaches the "sku" of every object in the array "items". A
 * member name is compared as written between its quotes (a name with
 * escapes or a '.' cannot be named by a path).
 */
#ifndef EBP_JSON_H
#define EBP_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <ebp/buf.h>

#define EBP_JSON_MAX_DEPTH 512

/* The end of the value that starts at p (after white space), or NULL when
 * it is not one well-formed value within [p, end). */
const char *ebp_json_skip(const char *p, const char *end);

/* The value at `path` of the object `json` (its first value only, when an
 * array lies on the way): true with [*out, *out + *out_len) its text. */
bool ebp_json_get(const char *json, size_t len, const char *path, const char **out,
                  size_t *out_len);

/* True when s[0..n) is a member name a path can name: written in JSON as
 * it is (no '"', '\\' or control character) and without '.'. */
bool ebp_json_plain_name(const char *s, size_t n);

/* A JSON string value's content unescaped into out (appended, no quotes;
 * \u escapes as UTF-8). false when s is not a string. */
bool ebp_json_unquote(const char *s, size_t n, struct ebp_buf *out);

/* Called for a member whose path matches rule `rule`: write the
 * replacement value (one JSON text) to out. value is the original text. */
typedef void(ebp_json_replace_fn)(void *opaque, size_t rule, const char *value, size_t len,
                                  struct ebp_buf *out);

/* Copy json to out (compacted: white space between tokens dropped), with
 * the value of every member that matches a rule replaced by fn. A rule
 * without '.' matches a member of that name at any depth; a dotted rule
 * matches that exact path from the top. Returns how many values were
 * replaced, or -1 when json is not one well-formed value (out then holds
 * garbage). */
int ebp_json_rewrite(const char *json, size_t len, const char *const *rules, size_t nrules,
                     ebp_json_replace_fn *fn, void *opaque, struct ebp_buf *out);

#endif
