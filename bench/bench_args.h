/* bench_args.h -- the command lines of the bench tools: "-flag VALUE"
 * pairs read into the fields a table names, so each tool lists its flags
 * once instead of a chain of strcmp()s.
 *
 * Header-only (static functions): the tools are single-file programs.
 * Values are converted as the tools always did (atoi/atoll/atof): bench.py
 * writes these command lines, not people, and each tool checks the ranges
 * it needs after parsing.
 */
#ifndef EB_BENCH_ARGS_H
#define EB_BENCH_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

enum bench_arg_type {
    BA_STR, /* const char *: borrowed from argv */
    BA_INT, /* int */
    BA_LL,  /* long long */
    BA_DBL  /* double */
};

struct bench_arg {
    const char *flag;
    enum bench_arg_type type;
    void *dst; /* the field, of the type's C type */
};

/* A flag the table does not name (e.g. a repeated one): true when taken. */
typedef bool bench_arg_other_fn(const char *flag, const char *value, void *opaque);

/* Read argv[first..argc) as flag/value pairs into the table's fields. A flag
 * neither in the table nor taken by other (may be NULL), or a flag without
 * a value, calls usage(), which must not return. */
static void bench_args_parse(int argc, char **argv, int first, const struct bench_arg *args,
                             size_t nargs, bench_arg_other_fn *other, void *opaque,
                             void (*usage)(void)) {
    for (int i = first; i < argc; i += 2) {
        if (i + 1 >= argc)
            usage();
        const char *flag = argv[i], *v = argv[i + 1];
        const struct bench_arg *a = NULL;
        for (size_t k = 0; k < nargs && !a; k++) {
            if (strcmp(args[k].flag, flag) == 0)
                a = &args[k];
        }
        if (!a) {
            if (!other || !other(flag, v, opaque))
                usage();
            continue;
        }
        switch (a->type) {
        case BA_STR:
            *(const char **)a->dst = v;
            break;
        case BA_INT:
            *(int *)a->dst = atoi(v);
            break;
        case BA_LL:
            *(long long *)a->dst = atoll(v);
            break;
        case BA_DBL:
            *(double *)a->dst = atof(v);
            break;
        }
    }
}

#endif
