/* loop_fixture.c -- a libevent loop run until a condition, and log files
 * searched (see loop_fixture.h). */
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include <event2/event.h>

#include "fixture.h"
#include "loop_fixture.h"

bool eb_fix_loop_until(struct event_base *base, bool (*cond)(void *arg), void *arg,
                       int timeout_ms) {
    int64_t deadline = eb_fix_now_ms() + timeout_ms;
    while (!cond(arg)) {
        if (eb_fix_now_ms() >= deadline)
            return false;
        struct timeval tv = {0, 5000};
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
    return true;
}

bool eb_fix_log_line(const char *path, const char *needle, char *out, size_t out_size) {
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool found = false;
    while (!found && fgets(out, (int)out_size, f))
        found = strstr(out, needle) != NULL;
    fclose(f);
    return found;
}

bool eb_fix_log_contains(const char *path, const char *needle) {
    return eb_fix_log_count(path, needle) > 0;
}

int eb_fix_log_count(const char *path, const char *needle) {
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[8192];
    int n = 0;
    while (fgets(line, sizeof(line), f))
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}
