/* loop_fixture.c -- a loop test's base, dir and log file, a libevent loop
 * run until a condition, and log files searched (see loop_fixture.h). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

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

int eb_fix_loop_open(struct eb_fix_loop *l, const char *prefix, const char *log_name,
                     enum eb_log_level level) {
    l->log_fd = -1;
    l->dir = eb_fix_tempdir(prefix);
    l->base = event_base_new();
    snprintf(l->log_path, sizeof(l->log_path), "%s/%s", l->dir, log_name);
    l->log_fd = open(l->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (l->log_fd >= 0)
        l->log = eb_log_new(l->log_fd, level);
    return l->base && l->log ? 0 : -1;
}

/* The log goes to stderr only on demand: a passing run stays quiet, a
 * failing one can be rerun with EB_TEST_SHOW_LOG=1 to see what the code
 * under test said. */
static void show_log(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cannot show %s\n", path);
        return;
    }
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        fwrite(buf, 1, n, stderr);
    fclose(f);
}

void eb_fix_loop_close(struct eb_fix_loop *l) {
    if (!l->dir) /* zeroed, or closed already */
        return;
    if (getenv("EB_TEST_SHOW_LOG"))
        show_log(l->log_path);
    eb_log_destroy(l->log);
    if (l->log_fd >= 0)
        close(l->log_fd);
    if (l->base)
        event_base_free(l->base);
    eb_fix_rmtree(l->dir);
    free(l->dir);
    *l = (struct eb_fix_loop){.log_fd = -1};
}

struct until_arg {
    eb_fix_cond_fn cond;
    void *ctx;
    const void *arg;
};

static bool until_arg_holds(void *p) {
    const struct until_arg *u = p;
    return u->cond(u->ctx, u->arg);
}

bool eb_fix_loop_until_arg(struct event_base *base, eb_fix_cond_fn cond, void *ctx, const void *arg,
                           int timeout_ms) {
    struct until_arg u = {cond, ctx, arg};
    return eb_fix_loop_until(base, until_arg_holds, &u, timeout_ms);
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
