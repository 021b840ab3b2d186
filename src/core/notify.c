/* notify_flags.c -- keyevent names, their notification classes, and
 * notify-keyspace-events flag arithmetic (Redis 7.0, notify.c semantics). */
#include <string.h>

#include "core/notify.h"

/* Every keyevent Redis 7.0 publishes, with the class flag that enables it.
 * "expired" must stay first: EB_EVENT_EXPIRED_ID is 0. */
static const struct {
    const char *name;
    char flag;
} events[] = {
    {"expired", 'x'},
    {"evicted", 'e'},
    {"del", 'g'},
    {"expire", 'g'},
    {"persist", 'g'},
    {"rename_from", 'g'},
    {"rename_to", 'g'},
    {"move_from", 'g'},
    {"move_to", 'g'},
    {"copy_to", 'g'},
    {"restore", 'g'},
    {"new", 'n'},
    {"set", '$'},
    {"setrange", '$'},
    {"incrby", '$'},
    {"incrbyfloat", '$'},
    {"append", '$'},
    {"lpush", 'l'},
    {"rpush", 'l'},
    {"lpop", 'l'},
    {"rpop", 'l'},
    {"linsert", 'l'},
    {"lset", 'l'},
    {"lrem", 'l'},
    {"ltrim", 'l'},
    {"lmove", 'l'},
    {"sadd", 's'},
    {"srem", 's'},
    {"spop", 's'},
    {"sinterstore", 's'},
    {"sunionstore", 's'},
    {"sdiffstore", 's'},
    {"smove", 's'},
    {"hset", 'h'},
    {"hincrby", 'h'},
    {"hincrbyfloat", 'h'},
    {"hdel", 'h'},
    {"zincr", 'z'},
    {"zadd", 'z'},
    {"zrem", 'z'},
    {"zrembyscore", 'z'},
    {"zrembyrank", 'z'},
    {"zdiffstore", 'z'},
    {"zinterstore", 'z'},
    {"zunionstore", 'z'},
    {"xadd", 't'},
    {"xtrim", 't'},
    {"xdel", 't'},
    {"xsetid", 't'},
    {"xgroup-create", 't'},
    {"xgroup-createconsumer", 't'},
    {"xgroup-delconsumer", 't'},
    {"xgroup-destroy", 't'},
    {"xgroup-setid", 't'},
    {"keymiss", 'm'},
};

#define NEVENTS ((int)(sizeof(events) / sizeof(events[0])))
_Static_assert(sizeof(events) / sizeof(events[0]) <= 64, "event ids must fit a uint64_t mask");

/* The classes 'A' stands for in Redis 7.0 (notify.c keyspaceEventsStringToFlags). */
static const char alias_all[] = "g$lshzxetd";

int eb_notify_event_id(const char *name, size_t len) {
    for (int i = 0; i < NEVENTS; i++) {
        if (strlen(events[i].name) == len && memcmp(events[i].name, name, len) == 0)
            return i;
    }
    return -1;
}

const char *eb_notify_event_name(int id) {
    return id >= 0 && id < NEVENTS ? events[id].name : NULL;
}

int eb_notify_event_count(void) {
    return NEVENTS;
}

/* Levenshtein distance, capped: names are short, so a small table suffices. */
static size_t edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 99;
    size_t prev[64], cur[64];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, (lb + 1) * sizeof(size_t));
    }
    return prev[lb];
}

const char *eb_notify_event_suggest(const char *name) {
    const char *best = NULL;
    size_t best_d = 3;
    for (int i = 0; i < NEVENTS; i++) {
        size_t d = edit_distance(name, events[i].name);
        if (d < best_d) {
            best_d = d;
            best = events[i].name;
        }
    }
    return best;
}

static void add_flag(char *out, size_t out_size, char f) {
    size_t n = strlen(out);
    if (!strchr(out, f) && n + 1 < out_size) {
        out[n] = f;
        out[n + 1] = '\0';
    }
}

void eb_notify_required_flags(uint64_t mask, char *out, size_t out_size) {
    if (out_size == 0)
        return;
    out[0] = '\0';
    add_flag(out, out_size, 'E');
    for (int i = 0; i < NEVENTS; i++) {
        if (mask & (UINT64_C(1) << i))
            add_flag(out, out_size, events[i].flag);
    }
}

/* Does `current` enable flag f, counting 'A' as its classes? */
static bool has_flag(const char *current, char f) {
    if (strchr(current, f))
        return true;
    return strchr(current, 'A') && strchr(alias_all, f);
}

bool eb_notify_flags_missing(const char *current, const char *required, char *missing,
                             size_t missing_size) {
    if (missing_size)
        missing[0] = '\0';
    for (const char *r = required; *r; r++) {
        if (!has_flag(current, *r))
            add_flag(missing, missing_size, *r);
    }
    return missing_size && missing[0] != '\0';
}

void eb_notify_flags_merge(const char *current, const char *required, char *out, size_t out_size) {
    if (out_size == 0)
        return;
    out[0] = '\0';
    for (const char *c = current; *c; c++)
        add_flag(out, out_size, *c);
    for (const char *r = required; *r; r++) {
        if (!has_flag(out, *r))
            add_flag(out, out_size, *r);
    }
}
