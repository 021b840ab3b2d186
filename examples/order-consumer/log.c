/* log.c -- JSON-lines logging on stderr (see log.h). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <jansson.h>

static enum oc_log_level min_level = OC_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void oc_log_set_level(enum oc_log_level level) {
    min_level = level;
}

/* UTC wall clock with milliseconds, as the bridge writes it. */
static void format_ts(char *buf, size_t size) {
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, size - n, ".%03ldZ", now.tv_nsec / 1000000);
}

void oc_log(enum oc_log_level level, const char *msg, const char *fields, ...) {
    if (level < min_level)
        return;
    char ts[40];
    format_ts(ts, sizeof(ts));
    json_t *line = json_pack("{s:s, s:s, s:s}", "ts", ts, "level", level_names[level], "msg", msg);
    if (!line)
        return;
    if (fields) {
        va_list ap;
        json_error_t err;
        va_start(ap, fields);
        json_t *extra = json_vpack_ex(&err, 0, fields, ap);
        va_end(ap);
        if (extra)
            json_object_update(line, extra);
        else /* a programming error in a format string: say so, keep the line */
            json_object_set_new(line, "log_format_error", json_string(err.text));
        json_decref(extra);
    }
    char *text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (text) {
        /* One call per line: glibc formats an unbuffered stream's call in a
         * local buffer and writes it at once, so lines do not interleave. */
        fprintf(stderr, "%s\n", text);
        free(text);
    }
    json_decref(line);
}
