/* error.c -- names and messages of the EB_E* codes, from the one table. */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include "core/error.h"

const char *eb_error_str(int err) {
    switch (err) {
#define EB_ERR_MSG_(name, value, msg)                                                              \
    case value:                                                                                    \
        return msg;
        EB_ERROR_TABLE(EB_ERR_MSG_)
#undef EB_ERR_MSG_
    }
    return "unknown error";
}

const char *eb_error_name(int err) {
    switch (err) {
#define EB_ERR_NAME_(name, value, msg)                                                             \
    case value:                                                                                    \
        return #name;
        EB_ERROR_TABLE(EB_ERR_NAME_)
#undef EB_ERR_NAME_
    }
    return "EB_E_UNKNOWN";
}

int eb_error_set(char *errstr, size_t errstr_size, int err, const char *fmt, ...) {
    if (errstr && errstr_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errstr, errstr_size, fmt, ap);
        va_end(ap);
    }
    return err;
}
