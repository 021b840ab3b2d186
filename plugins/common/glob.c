/* glob.c -- ebp/glob.h. */
#include <ebp/glob.h>

bool ebp_glob_match(const char *pattern, const void *sv, size_t n) {
    const unsigned char *s = sv;
    const char *p = pattern, *star = NULL;
    size_t i = 0, star_i = 0;
    while (i < n) {
        if (*p == '*') {
            star = ++p;
            star_i = i;
            continue;
        }
        if (*p == '?' || (*p == '\\' && p[1] && (unsigned char)p[1] == s[i]) ||
            (*p != '\\' && *p && (unsigned char)*p == s[i])) {
            p += *p == '\\' ? 2 : 1;
            i++;
            continue;
        }
        if (!star)
            return false;
        p = star;
        i = ++star_i;
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}
