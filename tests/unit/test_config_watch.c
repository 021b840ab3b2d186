/* test_config_watch.c -- a real inotify on a temp directory, driven by a
 * libevent loop: every way a config file gets replaced (plain write,
 * rename-over, Kubernetes' `..data` symlink swap, a symlink into another
 * directory) reports one change per burst; a touch, an identical rewrite
 * or an unrelated file reports none; the directory going away and coming
 * back is noticed. Each test ends with nothing left on the event base.
 *
 * Waiting is polling the loop until a counter moves (with a deadline). The
 * "nothing reported" tests wait for the check to show in the watch's log
 * (config_watch.h: a check that is not a change is logged), read from a
 * pipe, so they need no sleep either.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "core/log.h"
#include "daemon/config_watch.h"

#define DEBOUNCE_MS  20
#define MAX_DELAY_MS 400
#define WAIT_MS      5000

struct t {
    struct event_base *base;
    char dir[256];
    char path[512];
    eb_config_watch_t *w;
    int changes;
    char trigger[512];
    eb_log_t *log;  /* the watch's log, written to a pipe */
    int logfd[2];
    int unchanged;  /* checks logged "content unchanged" */
    int unreadable; /* checks logged "cannot be read" */
    char partial[4096];
};

/* ------------------------------------------------------------------------
 * Helpers
 * --------------------------------------------------------------------- */

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_change(const char *trigger, void *opaque) {
    struct t *t = opaque;
    t->changes++;
    snprintf(t->trigger, sizeof(t->trigger), "%s", trigger);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static void pathf(char *out, size_t size, const struct t *t, const char *name) {
    int n = snprintf(out, size, "%s/%s", t->dir, name);
    assert_true(n > 0 && (size_t)n < size);
}

static void start_watch(struct t *t) {
    char err[256] = "";
    struct eb_config_watch_conf c = {
        .path = t->path,
        .debounce_ms = DEBOUNCE_MS,
        .max_delay_ms = MAX_DELAY_MS,
        .log = t->log,
        .on_change = on_change,
        .opaque = t,
    };
    t->w = eb_config_watch_new(t->base, &c, err, sizeof(err));
    if (!t->w)
        fail_msg("eb_config_watch_new: %s", err);
}

/* Count the check outcomes the watch logged since the last call. */
static void read_log(struct t *t) {
    char buf[4096];
    ssize_t n;
    while ((n = read(t->logfd[0], buf, sizeof(buf) - 1)) > 0) {
        buf[n] = '\0';
        char line[sizeof(t->partial) + sizeof(buf)];
        snprintf(line, sizeof(line), "%s%s", t->partial, buf);
        char *start = line, *nl;
        while ((nl = strchr(start, '\n'))) {
            *nl = '\0';
            t->unchanged += strstr(start, "content unchanged, not reloading") != NULL;
            t->unreadable += strstr(start, "config file cannot be read") != NULL;
            start = nl + 1;
        }
        size_t rest = strlen(start); /* a line cut by the read: kept for the next */
        rest = rest < sizeof(t->partial) ? rest : sizeof(t->partial) - 1;
        memcpy(t->partial, start, rest);
        t->partial[rest] = '\0';
    }
}

/* Checks run so far: each shows as a change or as a log line. */
static int checks(struct t *t) {
    read_log(t);
    return t->changes + t->unchanged + t->unreadable;
}

/* How many inotify events the burst that made the last change held: the
 * trigger names the first and says "(+N more events)". */
static int burst_events(const struct t *t) {
    const char *more = strstr(t->trigger, "(+");
    return more ? 1 + atoi(more + 2) : 1;
}

/* Turn the loop in 5 ms slices until cond holds or WAIT_MS passes. */
static bool run_until(struct t *t, bool (*cond)(struct t *)) {
    int64_t deadline = now_ms() + WAIT_MS;
    while (!cond(t)) {
        if (now_ms() >= deadline)
            return false;
        struct timeval tv = {0, 5000};
        event_base_loopexit(t->base, &tv);
        event_base_dispatch(t->base);
    }
    return true;
}

static bool one_check(struct t *t) {
    return checks(t) >= 1;
}

static bool one_change(struct t *t) {
    return t->changes >= 1;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static int setup(void **state) {
    struct t *t = calloc(1, sizeof(*t));
    if (!t)
        return -1;
    t->base = event_base_new();
    if (pipe2(t->logfd, O_NONBLOCK | O_CLOEXEC) != 0 ||
        !(t->log = eb_log_new(t->logfd[1], EB_LOG_DEBUG)))
        return -1;
    snprintf(t->dir, sizeof(t->dir), "%s/eb-cw.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!t->base || !mkdtemp(t->dir))
        return -1;
    snprintf(t->path, sizeof(t->path), "%s/config.yaml", t->dir);
    *state = t;
    return 0;
}

/* Every test ends here: the watch leaves nothing registered on the base. */
static int teardown(void **state) {
    struct t *t = *state;
    eb_config_watch_destroy(t->w);
    int left = event_base_get_num_events(t->base, EVENT_BASE_COUNT_ADDED);
    event_base_free(t->base);
    eb_log_destroy(t->log);
    close(t->logfd[0]);
    close(t->logfd[1]);
    nftw(t->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(t);
    if (left != 0) {
        fprintf(stderr, "%d events left on the base\n", left);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Changes that reload
 * --------------------------------------------------------------------- */

static void test_config_watch_plain_write_reports_one_change(void **state) {
    struct t *t = *state;
    write_file(t->path, "a: 1\n");
    start_watch(t);
    write_file(t->path, "a: 2\n");
    assert_true(run_until(t, one_change));
    assert_int_equal(t->changes, 1);
    assert_int_equal(checks(t), 1);
    assert_non_null(strstr(t->trigger, "config.yaml"));
}

static void test_config_watch_rename_over_reports_one_change(void **state) {
    struct t *t = *state;
    char tmp[600];
    write_file(t->path, "a: 1\n");
    start_watch(t);
    pathf(tmp, sizeof(tmp), t, ".config.yaml.swp");
    write_file(tmp, "a: 2\n");
    assert_int_equal(rename(tmp, t->path), 0);
    assert_true(run_until(t, one_change));
    assert_int_equal(t->changes, 1);
    assert_int_equal(checks(t), 1);
    assert_non_null(strstr(t->trigger, "moved_to config.yaml"));
}

/* kubelet's atomic writer: files in a timestamped directory, `..data` a
 * symlink to it, the visible name a symlink through `..data`. An update
 * writes a new directory, points `..data_tmp` at it, renames that over
 * `..data` and removes the old directory. */
static void make_k8s_version(struct t *t, const char *version, const char *text) {
    char d[600], f[700];
    pathf(d, sizeof(d), t, version);
    assert_int_equal(mkdir(d, 0755), 0);
    snprintf(f, sizeof(f), "%s/config.yaml", d);
    write_file(f, text);
}

static void test_config_watch_kubernetes_data_symlink_swap_reports_one_change(void **state) {
    struct t *t = *state;
    char data[600], tmp[600], old[600];
    make_k8s_version(t, "..2026_01_01_00_00_00.000000001", "a: 1\n");
    pathf(data, sizeof(data), t, "..data");
    assert_int_equal(symlink("..2026_01_01_00_00_00.000000001", data), 0);
    assert_int_equal(symlink("..data/config.yaml", t->path), 0);
    start_watch(t);

    make_k8s_version(t, "..2026_01_01_00_05_00.000000002", "a: 2\n");
    pathf(tmp, sizeof(tmp), t, "..data_tmp");
    assert_int_equal(symlink("..2026_01_01_00_05_00.000000002", tmp), 0);
    assert_int_equal(rename(tmp, data), 0);
    pathf(old, sizeof(old), t, "..2026_01_01_00_00_00.000000001");
    nftw(old, rm_one, 16, FTW_DEPTH | FTW_PHYS);

    assert_true(run_until(t, one_change));
    assert_int_equal(t->changes, 1);
    assert_int_equal(checks(t), 1);
    assert_non_null(strstr(t->trigger, "moved_to ..data"));
}

/* The path is a symlink into another directory, whose file is edited in
 * place: the watch on the resolved directory sees it. */
static void test_config_watch_file_behind_symlink_edited_in_place_reports_change(void **state) {
    struct t *t = *state;
    char other[600], real[700];
    pathf(other, sizeof(other), t, "elsewhere");
    assert_int_equal(mkdir(other, 0755), 0);
    snprintf(real, sizeof(real), "%s/real.yaml", other);
    write_file(real, "a: 1\n");
    assert_int_equal(symlink("elsewhere/real.yaml", t->path), 0);
    start_watch(t);
    write_file(real, "a: 2\n");
    assert_true(run_until(t, one_change));
    assert_int_equal(t->changes, 1);
    assert_non_null(strstr(t->trigger, "real.yaml"));
}

static void test_config_watch_burst_of_writes_is_one_check(void **state) {
    struct t *t = *state;
    write_file(t->path, "a: 0\n");
    start_watch(t);
    for (int i = 1; i <= 20; i++) {
        char text[32];
        snprintf(text, sizeof(text), "a: %d\n", i);
        write_file(t->path, text);
    }
    assert_true(run_until(t, one_change));
    assert_int_equal(t->changes, 1);
    assert_int_equal(checks(t), 1);
    assert_true(burst_events(t) >= 20);
    assert_non_null(strstr(t->trigger, "more events"));
}

/* A writer that still has the file open is waited for (up to max_delay):
 * the check must not read half a file. */
static void test_config_watch_open_writer_delays_the_check(void **state) {
    struct t *t = *state;
    write_file(t->path, "a: 1\n");
    start_watch(t);
    int64_t began = now_ms();
    int fd = open(t->path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "a: ", 3), 3);
    assert_true(run_until(t, one_check));
    assert_true(now_ms() - began >= MAX_DELAY_MS - 5);
    close(fd);
}

/* The file vanishes and comes back with the directory itself: the watch
 * notices the directory is gone, watches it again when it is back, and
 * reports the new content. */
static void test_config_watch_directory_removed_and_recreated_is_watched_again(void **state) {
    struct t *t = *state;
    write_file(t->path, "a: 1\n");
    start_watch(t);
    assert_int_equal(unlink(t->path), 0);
    assert_int_equal(rmdir(t->dir), 0);
    assert_true(run_until(t, one_check));
    assert_int_equal(t->changes, 0); /* missing is not a change */
    assert_int_equal(mkdir(t->dir, 0700), 0);
    write_file(t->path, "a: 2\n");
    assert_true(run_until(t, one_change));
    assert_int_equal(t->changes, 1);
}

/* ------------------------------------------------------------------------
 * Events that must not reload
 * --------------------------------------------------------------------- */

static void test_config_watch_touch_without_change_reports_nothing(void **state) {
    struct t *t = *state;
    write_file(t->path, "a: 1\n");
    start_watch(t);
    assert_int_equal(utimensat(AT_FDCWD, t->path, NULL, 0), 0);
    assert_true(run_until(t, one_check));
    assert_int_equal(t->changes, 0);
}

static void test_config_watch_identical_rewrite_reports_nothing(void **state) {
    struct t *t = *state;
    char tmp[600];
    write_file(t->path, "a: 1\n");
    start_watch(t);
    pathf(tmp, sizeof(tmp), t, "config.yaml.tmp");
    write_file(tmp, "a: 1\n");
    assert_int_equal(rename(tmp, t->path), 0);
    assert_true(run_until(t, one_check));
    assert_int_equal(t->changes, 0);
}

static void test_config_watch_unrelated_file_reports_nothing(void **state) {
    struct t *t = *state;
    char other[600];
    write_file(t->path, "a: 1\n");
    start_watch(t);
    pathf(other, sizeof(other), t, "notes.txt");
    write_file(other, "hello\n");
    assert_true(run_until(t, one_check));
    assert_int_equal(t->changes, 0);
}

/* ------------------------------------------------------------------------
 * Setup errors
 * --------------------------------------------------------------------- */

static void test_config_watch_missing_directory_is_an_error_naming_it(void **state) {
    struct t *t = *state;
    char err[256] = "";
    snprintf(t->path, sizeof(t->path), "%s/no-such-dir/config.yaml", t->dir);
    struct eb_config_watch_conf c = {.path = t->path, .on_change = on_change, .opaque = t};
    assert_null(eb_config_watch_new(t->base, &c, err, sizeof(err)));
    assert_non_null(strstr(err, "no-such-dir"));
    assert_non_null(strstr(err, strerror(ENOENT)));
}

int main(void) {
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_config_watch_plain_write_reports_one_change),
        T(test_config_watch_rename_over_reports_one_change),
        T(test_config_watch_kubernetes_data_symlink_swap_reports_one_change),
        T(test_config_watch_file_behind_symlink_edited_in_place_reports_change),
        T(test_config_watch_burst_of_writes_is_one_check),
        T(test_config_watch_open_writer_delays_the_check),
        T(test_config_watch_directory_removed_and_recreated_is_watched_again),
        T(test_config_watch_touch_without_change_reports_nothing),
        T(test_config_watch_identical_rewrite_reports_nothing),
        T(test_config_watch_unrelated_file_reports_nothing),
        T(test_config_watch_missing_directory_is_an_error_naming_it),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
