/* redis_argv.c -- a Redis command's argument list (contract in
 * redis_argv.h): slots that double when full, and owned text in blocks that
 * never move, so a pointer handed out for a number stays valid however many
 * arguments follow it. */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis/redis_argv.h"

/* Owned text past the inline store. A batch of 256 acknowledgements formats
 * about 6 KB of numbers: a few blocks, not one allocation per number. */
#define BLOCK_MIN 2048

struct eb_redis_argv_block {
    struct eb_redis_argv_block *next;
    size_t cap, used;
    char data[];
};

void eb_redis_argv_init(struct eb_redis_argv *a) {
    a->argc = 0;
    a->argv = a->inline_argv;
    a->argvlen = a->inline_len;
    a->cap = EB_REDIS_ARGV_INLINE;
    a->failed = false;
    a->blocks = NULL;
    a->store_used = 0;
}

void eb_redis_argv_free(struct eb_redis_argv *a) {
    if (a->argv != a->inline_argv)
        free(a->argv);
    if (a->argvlen != a->inline_len)
        free(a->argvlen);
    while (a->blocks) {
        struct eb_redis_argv_block *b = a->blocks;
        a->blocks = b->next;
        free(b);
    }
    eb_redis_argv_init(a);
}

/* Double the slots. The two arrays move separately; cap changes only when
 * both did, and a failure is sticky, so a half-grown list is never used. */
static bool grow(struct eb_redis_argv *a) {
    if (a->cap > (size_t)INT_MAX / 2)
        return false; /* hiredis counts arguments in an int */
    size_t cap = a->cap * 2;
    const char **v =
        a->argv == a->inline_argv ? malloc(cap * sizeof(*v)) : realloc(a->argv, cap * sizeof(*v));
    if (!v)
        return false;
    if (a->argv == a->inline_argv)
        memcpy(v, a->argv, (size_t)a->argc * sizeof(*v));
    a->argv = v;
    size_t *n = a->argvlen == a->inline_len ? malloc(cap * sizeof(*n))
                                            : realloc(a->argvlen, cap * sizeof(*n));
    if (!n)
        return false;
    if (a->argvlen == a->inline_len)
        memcpy(n, a->argvlen, (size_t)a->argc * sizeof(*n));
    a->argvlen = n;
    a->cap = cap;
    return true;
}

/* n bytes of owned text that stay where they are, or NULL. */
static char *own(struct eb_redis_argv *a, size_t n) {
    if (!a->blocks && EB_REDIS_ARGV_STORE - a->store_used >= n) {
        char *p = a->store + a->store_used;
        a->store_used += n;
        return p;
    }
    struct eb_redis_argv_block *b = a->blocks;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > BLOCK_MIN ? n : BLOCK_MIN;
        b = malloc(sizeof(*b) + cap);
        if (!b)
            return NULL;
        b->cap = cap;
        b->used = 0;
        b->next = a->blocks;
        a->blocks = b;
    }
    char *p = b->data + b->used;
    b->used += n;
    return p;
}

void eb_redis_argv_add_bytes(struct eb_redis_argv *a, const void *p, size_t len) {
    if (a->failed)
        return;
    if ((size_t)a->argc == a->cap && !grow(a)) {
        a->failed = true;
        return;
    }
    a->argv[a->argc] = p;
    a->argvlen[a->argc++] = len;
}

void eb_redis_argv_add_str(struct eb_redis_argv *a, const char *s) {
    eb_redis_argv_add_bytes(a, s, strlen(s));
}

void eb_redis_argv_add_copy(struct eb_redis_argv *a, const void *p, size_t len) {
    if (a->failed)
        return;
    char *d = own(a, len);
    if (!d) {
        a->failed = true;
        return;
    }
    if (len)
        memcpy(d, p, len);
    eb_redis_argv_add_bytes(a, d, len);
}

void eb_redis_argv_add_i64(struct eb_redis_argv *a, int64_t v) {
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%" PRId64, v);
    eb_redis_argv_add_copy(a, tmp, (size_t)n);
}

void eb_redis_argv_add_size(struct eb_redis_argv *a, size_t v) {
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%zu", v);
    eb_redis_argv_add_copy(a, tmp, (size_t)n);
}
