/* kafka_stats.c -- count the brokers in state UP in librdkafka's statistics
 * JSON, reading no further than the "brokers" member (contract in
 * kafka_stats.h).
 *
 * The document is trusted to come from librdkafka, but the reader is
 * written as if it were not: every step checks the cursor against the
 * end, and anything it does not understand makes the answer -1 rather
 * than a guess. Values it does not need are skipped, not validated:
 * strings by their closing quote, objects and arrays by counting brackets
 * outside strings.
 */
#include <stdbool.h>
#include <string.h>

#include "kafka/kafka_stats.h"

struct cursor {
    const char *p;
    const char *end;
};

/* What a member callback tells the walk. */
enum walk { WALK_MORE, WALK_DONE, WALK_BAD };

/* Called with the cursor on a member's value; consumes the value. */
typedef enum walk(member_fn)(struct cursor *c, const char *key, size_t key_len, void *arg);

static void skip_ws(struct cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' || *c->p == '\t' || *c->p == '\r'))
        c->p++;
}

static bool eat(struct cursor *c, char ch) {
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return true;
    }
    return false;
}

static bool same(const char *s, size_t n, const char *lit) {
    return n == strlen(lit) && memcmp(s, lit, n) == 0;
}

/* A string at the cursor: steps past it and gives its raw bytes (escapes
 * left as they are: the names compared here have none). */
static bool string(struct cursor *c, const char **s, size_t *n) {
    skip_ws(c);
    if (c->p >= c->end || *c->p != '"')
        return false;
    const char *start = ++c->p;
    for (;;) {
        const char *q = memchr(c->p, '"', (size_t)(c->end - c->p));
        if (!q)
            return false;
        size_t backslashes = 0;
        while (q - backslashes > start && q[-1 - (ptrdiff_t)backslashes] == '\\')
            backslashes++;
        c->p = q + 1;
        if (backslashes % 2 == 0) { /* an odd run escapes the quote */
            *s = start;
            *n = (size_t)(q - start);
            return true;
        }
    }
}

static bool scalar_end(char ch) {
    return ch == ',' || ch == '}' || ch == ']' || ch == ' ' || ch == '\n' || ch == '\t' ||
           ch == '\r';
}

/* Step past one value of any kind without looking inside it. */
static bool skip_value(struct cursor *c) {
    const char *s;
    size_t n;
    skip_ws(c);
    if (c->p >= c->end)
        return false;
    if (*c->p == '"')
        return string(c, &s, &n);
    if (*c->p != '{' && *c->p != '[') { /* number, true, false, null */
        const char *start = c->p;
        while (c->p < c->end && !scalar_end(*c->p))
            c->p++;
        return c->p > start;
    }
    size_t depth = 0;
    while (c->p < c->end) {
        char ch = *c->p;
        if (ch == '"') {
            if (!string(c, &s, &n))
                return false;
            continue;
        }
        c->p++;
        if (ch == '{' || ch == '[')
            depth++;
        else if ((ch == '}' || ch == ']') && --depth == 0)
            return true;
    }
    return false;
}

/* Walk the members of the object at the cursor, handing each value to fn.
 * WALK_DONE from fn ends the walk there (the rest is not read). */
static enum walk members(struct cursor *c, member_fn *fn, void *arg) {
    if (!eat(c, '{'))
        return WALK_BAD;
    if (eat(c, '}'))
        return WALK_MORE;
    do {
        const char *key;
        size_t key_len;
        if (!string(c, &key, &key_len) || !eat(c, ':'))
            return WALK_BAD;
        enum walk w = fn(c, key, key_len, arg);
        if (w != WALK_MORE)
            return w;
    } while (eat(c, ','));
    return eat(c, '}') ? WALK_MORE : WALK_BAD;
}

/* A member of one broker's object: only "state" counts. */
static enum walk broker_member(struct cursor *c, const char *key, size_t key_len, void *arg) {
    const char *v;
    size_t n;
    if (!same(key, key_len, "state"))
        return skip_value(c) ? WALK_MORE : WALK_BAD;
    if (!string(c, &v, &n))
        return WALK_BAD;
    *(bool *)arg = same(v, n, "UP");
    return WALK_MORE;
}

/* One member of "brokers": a broker's name and its object. */
static enum walk broker(struct cursor *c, const char *key, size_t key_len, void *arg) {
    bool up = false;
    (void)key;
    (void)key_len;
    if (members(c, broker_member, &up) != WALK_MORE)
        return WALK_BAD;
    *(int *)arg += up;
    return WALK_MORE;
}

/* A top-level member: "brokers" is counted and ends the walk. */
static enum walk top_member(struct cursor *c, const char *key, size_t key_len, void *arg) {
    if (!same(key, key_len, "brokers"))
        return skip_value(c) ? WALK_MORE : WALK_BAD;
    int up = 0;
    if (members(c, broker, &up) != WALK_MORE)
        return WALK_BAD;
    *(int *)arg = up;
    return WALK_DONE;
}

int eb_kafka_stats_brokers_up(const char *json, size_t len) {
    struct cursor c = {json, json + len};
    int up = -1;
    if (!json || members(&c, top_member, &up) != WALK_DONE)
        return -1;
    return up;
}
