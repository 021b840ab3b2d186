/* ebp/glob.h -- shell-style patterns over bytes, for Redis keys: `*` any
 * run of bytes (also none), `?` one byte, `\` makes the next byte literal.
 * Linear in practice: one backtrack point (the last `*`), as fnmatch does
 * without FNM_PATHNAME. Pure.
 */
#ifndef EBP_GLOB_H
#define EBP_GLOB_H

#include <stdbool.h>
#include <stddef.h>

/* Does the whole of s[0..n) match pattern (NUL-terminated)? */
bool ebp_glob_match(const char *pattern, const void *s, size_t n);

#endif
