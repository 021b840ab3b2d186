/* loop_fixture.h -- driving a real libevent loop in C tests, and reading
 * what the code under test logged to a file: a loop run until a condition
 * holds (in 5 ms slices, so the outside world -- a redis-server, a file --
 * is seen promptly; never a sleep), and the log file's lines searched.
 *
 * Test-only code.
 */
#ifndef EB_TEST_LOOP_FIXTURE_H
#define EB_TEST_LOOP_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;

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
