/* error.h -- the bridge's error codes: one table, names and messages from it.
 *
 * Commands return int: EB_OK (0) or a negative EB_E* code. Functions that can
 * fail in more than one way also take a caller-provided
 * `char *errstr, size_t errstr_size` that receives a sentence for a human.
 */
#ifndef EB_ERROR_H
#define EB_ERROR_H

#include <stddef.h>

/* X(name, value, message) */
#define EB_ERROR_TABLE(X)                                                                          \
    X(EB_OK, 0, "success")                                                                         \
    X(EB_EINVAL, -1, "invalid argument")                                                           \
    X(EB_ENOMEM, -2, "out of memory")                                                              \
    X(EB_ECONFIG, -3, "invalid configuration")                                                     \
    X(EB_EIO, -4, "input/output error")                                                            \
    X(EB_ENOENT, -5, "not found")                                                                  \
    X(EB_EFULL, -6, "queue full")                                                                  \
    X(EB_ETOOBIG, -7, "too large")                                                                 \
    X(EB_EREDIS, -8, "redis error")                                                                \
    X(EB_EKAFKA, -9, "kafka error")                                                                \
    X(EB_ESTATE, -10, "operation not valid in the current state")                                  \
    X(EB_ETIMEDOUT, -11, "timed out")                                                              \
    X(EB_EPLUGIN, -12, "plugin error")                                                             \
    X(EB_EPROTO, -13, "unexpected reply")

enum eb_err {
#define EB_ERR_ENUM_(name, value, msg) name = value,
    EB_ERROR_TABLE(EB_ERR_ENUM_)
#undef EB_ERR_ENUM_
};

/* Human message for a code ("queue full"); static storage, never NULL. */
const char *eb_error_str(int err);

/* Symbolic name for a code ("EB_EFULL"); static storage, never NULL. */
const char *eb_error_name(int err);

/* snprintf into errstr (if errstr_size > 0) and return err: lets error paths
 * read `return eb_error_set(errstr, errstr_size, EB_EINVAL, "bad %s", x);`. */
int eb_error_set(char *errstr, size_t errstr_size, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
