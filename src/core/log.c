/* log.c -- JSON-lines logger. Each line is built in a private buffer and
 * written with a single write(2) so lines from several threads never
 * interleave. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"

struct eb_log {
    int fd;
    atomic_int level;
};

/* A key or value longer than this is cut in log lines: a 1 MB Redis key
 * must not turn into a 1 MB log line. */
#define EB_LOG_MAX_BYTES 256

eb_log_t *eb_log_new(int fd, enum eb_log_level level) {
    eb_log_t *lg = calloc(1, sizeof(*lg));
    if (!lg)
        return NULL;
    lg->fd = fd;
    atomic_init(&lg->level, (int)level);
    return lg;
}

void eb_log_destroy(eb_log_t *lg) {
    free(lg);
}

void eb_log_set_level(eb_log_t *lg, enum eb_log_level level) {
    atomic_store(&lg->level, (int)level);
}

bool eb_log_enabled(const eb_log_t *lg, enum eb_log_level level) {
    return lg && (int)level >= atomic_load((atomic_int *)&lg->level);
}

bool eb_log_level_parse(const char *s, enum eb_log_level *out) {
    static const struct {
        const char *name;
        enum eb_log_level level;
    } names[] = {{"debug", EB_LOG_DEBUG},
                 {"info", EB_LOG_INFO},
                 {"warn", EB_LOG_WARN},
                 {"warning", EB_LOG_WARN},
                 {"error", EB_LOG_ERROR}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(s, names[i].name) == 0) {
            *out = names[i].level;
            return true;
        }
    }
    return false;
}

static const char *level_name(enum eb_log_level l) {
    switch (l) {
    case EB_LOG_DEBUG:
        return "debug";
    case EB_LOG_INFO:
        return "info";
    case EB_LOG_WARN:
        return "warn";
    case EB_LOG_ERROR:
        return "error";
    }
    return "info";
}

/* Case-insensitive substring test; names are short ASCII. */
static bool contains_ci(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] && tolower((unsigned char)hay[i]) == needle[i])
            i++;
        if (i == n)
            return true;
    }
    return false;
}

bool eb_log_is_secret_name(const char *name) {
    static const char *const words[] = {"password",   "passwd",    "secret",     "token",
                                        "credential", "sasl.jaas", "private.key"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (contains_ci(name, words[i]))
            return true;
    }
    return false;
}

static void put_value(struct eb_buf *b, const struct eb_log_field *f) {
    if (eb_log_is_secret_name(f->key)) {
        eb_buf_puts(b, "\"[redacted]\"");
        return;
    }
    switch (f->type) {
    case EB_LF_STR:
        if (!f->s) {
            eb_buf_puts(b, "null");
            break;
        }
        eb_json_string(b, f->s, strlen(f->s));
        break;
    case EB_LF_BYTES:
        if (f->len <= EB_LOG_MAX_BYTES) {
            eb_json_string(b, f->s, f->len);
        } else {
            /* Cut, then say how long it really was. Back off to a character
             * boundary (at most 3 continuation bytes) so a valid UTF-8 key
             * does not gain a U+FFFD at the cut. */
            const unsigned char *p = f->s;
            size_t cut = EB_LOG_MAX_BYTES, mark = b->len;
            for (int k = 0; k < 3 && (p[cut] & 0xC0) == 0x80; k++)
                cut--;
            eb_json_string(b, f->s, cut);
            if (b->len > mark)
                b->len--; /* reopen the string */
            char tail[48];
            snprintf(tail, sizeof(tail), "...(%zu bytes)\"", f->len);
            eb_buf_puts(b, tail);
        }
        break;
    case EB_LF_INT:
        eb_buf_put_i64(b, f->i);
        break;
    case EB_LF_DBL: {
        char num[40];
        /* JSON has no NaN or Infinity: "%g" would print nan/inf and break
         * the line for every JSON reader. */
        if (!isfinite(f->d)) {
            eb_buf_puts(b, "null");
            break;
        }
        snprintf(num, sizeof(num), "%.6g", f->d);
        eb_buf_puts(b, num);
        break;
    }
    case EB_LF_BOOL:
        eb_buf_puts(b, f->i ? "true" : "false");
        break;
    }
}

static void write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return; /* nowhere left to report a logging failure */
        }
        p += w;
        n -= (size_t)w;
    }
}

void eb_log_write(eb_log_t *lg, enum eb_log_level level, const char *msg,
                  const struct eb_log_field *fields, size_t nfields) {
    if (!eb_log_enabled(lg, level))
        return;
    struct eb_buf b = EB_BUF_INIT;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    eb_buf_puts(&b, "{\"ts\":\"");
    eb_buf_put_rfc3339(&b, (int64_t)tv.tv_sec * 1000000 + tv.tv_usec, 3);
    eb_buf_puts(&b, "\",\"level\":\"");
    eb_buf_puts(&b, level_name(level));
    eb_buf_puts(&b, "\",\"msg\":");
    eb_json_string(&b, msg, strlen(msg));
    for (size_t i = 0; i < nfields; i++) {
        eb_buf_putc(&b, ',');
        eb_json_string(&b, fields[i].key, strlen(fields[i].key));
        eb_buf_putc(&b, ':');
        put_value(&b, &fields[i]);
    }
    eb_buf_puts(&b, "}\n");
    if (eb_buf_ok(&b))
        write_all(lg->fd, b.data, b.len);
    eb_buf_free(&b);
}

void eb_log_redact_url(const char *url, char *out, size_t out_size) {
    if (out_size == 0)
        return;
    const char *scheme = strstr(url, "://");
    const char *auth = scheme ? scheme + 3 : url;
    /* The userinfo ends at the last '@'. Passwords generated as base64 hold
     * '/', '+' and '=' unencoded, so a '/' before the '@' does not end it;
     * an '@' in a path or query redacts too much, never too little. */
    const char *at = strrchr(auth, '@');
    if (!at) {
        snprintf(out, out_size, "%s", url);
        return;
    }
    const char *colon = memchr(auth, ':', (size_t)(at - auth));
    if (!colon) {
        /* redis://password@host: the whole userinfo is the secret. */
        snprintf(out, out_size, "%.*s***%s", (int)(auth - url), url, at);
        return;
    }
    snprintf(out, out_size, "%.*s***%s", (int)(colon + 1 - url), url, at);
}

bool eb_log_limit_allow(struct eb_log_limit *l, int interval_ms, uint64_t *suppressed) {
    int64_t now = eb_mono_ms();
    if (now < l->next_ms) {
        l->suppressed++;
        return false;
    }
    if (suppressed)
        *suppressed = l->suppressed;
    l->suppressed = 0;
    l->next_ms = now + interval_ms;
    return true;
}
