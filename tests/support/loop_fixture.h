/* loop_fixture.h -- driving a real libevent loop in C tests, and reading
 * what the code under test logged to a file: the base, a temp dir and the
 * log file every such test sets up (and tears down), a loop run until a
 * condition holds (in 5 ms slices, so the outside world -- a redis-server,
 * a file -- is seen promptly; never a sleep), and the log file's lines
 * searched.
 *
 * Test-only code.
 */
#ifndef EB_TEST_LOOP_FIXTURE_H
#define EB_TEST_LOOP_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/log.h"

struct event_base;

/* What a loop test stands on: a libevent base, a fresh temp dir, and a
 * log file in it for the code under test to write to. Zero it, then
 * eb_fix_loop_open() in the setup and eb_fix_loop_close() in the
 * teardown; everything in it is owned by the fixture. */
struct eb_fix_loop {
    struct event_base *base;
    char *dir;
    char log_path[4096]; /* dir/log_name */
    int log_fd;
    eb_log_t *log; /* writes to log_path at the level asked for */
};

/* Make all of it (the dir named after prefix). 0, or -1 when any part
 * could not be made: what a cmocka setup returns. */
int eb_fix_loop_open(struct eb_fix_loop *l, const char *prefix, const char *log_name,
                     enum eb_log_level level);

/* Free all of it and remove the dir, the log first copied to stderr when
 * EB_TEST_SHOW_LOG is set. Safe on a zeroed struct. Whatever uses the
 * base or the log is destroyed first, by the caller. */
void eb_fix_loop_close(struct eb_fix_loop *l);

/* A condition on a test's own state ctx, with an argument (a state to
 * reach, a count to see). */
typedef bool (*eb_fix_cond_fn)(void *ctx, const void *arg);

/* Run base until cond(ctx, arg) holds or timeout_ms passes; the final
 * value of cond. */
bool eb_fix_loop_until_arg(struct event_base *base, eb_fix_cond_fn cond, void *ctx, const void *arg,
                           int timeout_ms);

/* Run base until cond(arg) holds or timeout_ms passes; the final value of
 * cond. */
bool eb_fix_loop_until(struct event_base *base, bool (*cond)(void *arg), void *arg,
                       int timeout_ms);

/* The first line of the file at path containing needle, into out (with its
 * newline); false when there is none. */
bool eb_fix_log_line(const char *path, const char *needle, char *out, size_t out_size);

/* Whether any line contains needle; how many do. */
bool eb_fix_log_contains(const char *path, const char *needle);
int eb_fix_log_count(const char *path, const char *needle);

#endif
