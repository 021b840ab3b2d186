/* fixture.h -- shared test fixtures: child processes stopped by PID on every
 * exit path, polling with a deadline instead of sleeping, temp dirs, free
 * loopback ports, and the mock Kafka helper process.
 *
 * Test-only code. Functions abort the test program (with a message on
 * stderr) when the fixture itself cannot be set up: a broken fixture is not
 * a test result.
 */
#ifndef EB_TEST_FIXTURE_H
#define EB_TEST_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* CLOCK_MONOTONIC in milliseconds. */
int64_t eb_fix_now_ms(void);

/* Poll cond(arg) every few ms until it returns true or timeout_ms passes.
 * Returns the final value of cond. */
bool eb_fix_wait_until(bool (*cond)(void *arg), void *arg, int timeout_ms);

/* A fresh directory under $TMPDIR (or /tmp); caller frees the string and
 * removes the tree with eb_fix_rmtree(). */
char *eb_fix_tempdir(const char *prefix);
void eb_fix_rmtree(const char *path);

/* A TCP port on 127.0.0.1 that was free a moment ago. */
int eb_fix_free_port(void);

struct eb_fix_proc {
    pid_t pid;     /* 0 when not running */
    int stdin_fd;  /* write end of the child's stdin, or -1 */
    int stdout_fd; /* read end of the child's stdout, or -1 */
};

/* Start argv[0] (PATH is searched) with stdin/stdout as pipes when asked. */
void eb_fix_spawn(struct eb_fix_proc *p, char *const argv[], bool pipe_stdin, bool pipe_stdout);

/* Read one line (without '\n') from the child's stdout within timeout_ms.
 * Returns false on timeout or EOF. */
bool eb_fix_read_line(struct eb_fix_proc *p, char *buf, size_t size, int timeout_ms);

/* Send sig, wait up to timeout_ms, then SIGKILL. Returns the exit status as
 * from waitpid (or -1 if it had to be killed). Safe to call twice. */
int eb_fix_stop(struct eb_fix_proc *p, int sig, int timeout_ms);

/* The mock Kafka cluster ($EB_MOCK_KAFKA, see mock_kafka.c). */
struct eb_fix_kafka {
    struct eb_fix_proc proc;
    char bootstrap[1024];
};
void eb_fix_kafka_start(struct eb_fix_kafka *k, int brokers);
/* Send a command line ("down", "up", "topic t 8") and wait for "ok". */
bool eb_fix_kafka_cmd(struct eb_fix_kafka *k, const char *cmd);
void eb_fix_kafka_stop(struct eb_fix_kafka *k);

#endif
