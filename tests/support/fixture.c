/* fixture.c -- process, time and temp-dir helpers for tests. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"

static void fixture_fail(const char *what) {
    fprintf(stderr, "test fixture failed: %s: %s\n", what, strerror(errno));
    abort();
}

int64_t eb_fix_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool eb_fix_wait_until(bool (*cond)(void *arg), void *arg, int timeout_ms) {
    int64_t deadline = eb_fix_now_ms() + timeout_ms;
    for (;;) {
        if (cond(arg))
            return true;
        if (eb_fix_now_ms() >= deadline)
            return cond(arg);
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL); /* poll interval, not synchronisation */
    }
}

char *eb_fix_tempdir(const char *prefix) {
    const char *tmp = getenv("TMPDIR");
    char *path;
    if (asprintf(&path, "%s/%s.XXXXXX", tmp && *tmp ? tmp : "/tmp", prefix) < 0)
        fixture_fail("asprintf");
    if (!mkdtemp(path))
        fixture_fail("mkdtemp");
    return path;
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

void eb_fix_rmtree(const char *path) {
    if (path)
        nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int eb_fix_free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        fixture_fail("socket");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        fixture_fail("bind");
    close(fd);
    return ntohs(a.sin_port);
}

void eb_fix_spawn(struct eb_fix_proc *p, char *const argv[], bool pipe_stdin, bool pipe_stdout) {
    int in[2] = {-1, -1}, out[2] = {-1, -1};
    if ((pipe_stdin && pipe2(in, O_CLOEXEC) != 0) || (pipe_stdout && pipe2(out, O_CLOEXEC) != 0))
        fixture_fail("pipe");
    pid_t pid = fork();
    if (pid < 0)
        fixture_fail("fork");
    if (pid == 0) {
        if (pipe_stdin)
            dup2(in[0], 0);
        if (pipe_stdout)
            dup2(out[1], 1);
        execvp(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    p->pid = pid;
    p->stdin_fd = pipe_stdin ? in[1] : -1;
    p->stdout_fd = pipe_stdout ? out[0] : -1;
    if (pipe_stdin)
        close(in[0]);
    if (pipe_stdout)
        close(out[1]);
}

bool eb_fix_read_line(struct eb_fix_proc *p, char *buf, size_t size, int timeout_ms) {
    size_t n = 0;
    int64_t deadline = eb_fix_now_ms() + timeout_ms;
    while (n + 1 < size) {
        int left = (int)(deadline - eb_fix_now_ms());
        struct pollfd pfd = {p->stdout_fd, POLLIN, 0};
        if (left <= 0 || poll(&pfd, 1, left) <= 0)
            return false;
        char c;
        if (read(p->stdout_fd, &c, 1) != 1)
            return false;
        if (c == '\n')
            break;
        buf[n++] = c;
    }
    buf[n] = '\0';
    return true;
}

int eb_fix_stop(struct eb_fix_proc *p, int sig, int timeout_ms) {
    if (p->pid <= 0)
        return 0;
    int status = -1;
    kill(p->pid, sig);
    int64_t deadline = eb_fix_now_ms() + timeout_ms;
    for (;;) {
        pid_t r = waitpid(p->pid, &status, WNOHANG);
        if (r == p->pid)
            break;
        if (eb_fix_now_ms() >= deadline) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, NULL, 0);
            status = -1;
            break;
        }
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    p->pid = 0;
    if (p->stdin_fd >= 0)
        close(p->stdin_fd);
    if (p->stdout_fd >= 0)
        close(p->stdout_fd);
    p->stdin_fd = p->stdout_fd = -1;
    return status;
}

void eb_fix_kafka_start(struct eb_fix_kafka *k, int brokers) {
    const char *bin = getenv("EB_MOCK_KAFKA");
    char nb[16];
    snprintf(nb, sizeof(nb), "%d", brokers);
    char *argv[] = {(char *)(bin ? bin : "eb_mock_kafka"), "--brokers", nb, NULL};
    eb_fix_spawn(&k->proc, argv, true, true);
    char line[600];
    if (!eb_fix_read_line(&k->proc, line, sizeof(line), 10000) ||
        strncmp(line, "BOOTSTRAP ", 10) != 0) {
        eb_fix_stop(&k->proc, SIGKILL, 1000);
        errno = EPROTO;
        fixture_fail("mock kafka did not print BOOTSTRAP");
    }
    snprintf(k->bootstrap, sizeof(k->bootstrap), "%s", line + 10);
}

bool eb_fix_kafka_cmd(struct eb_fix_kafka *k, const char *cmd) {
    char line[600];
    dprintf(k->proc.stdin_fd, "%s\n", cmd);
    return eb_fix_read_line(&k->proc, line, sizeof(line), 10000) && strcmp(line, "ok") == 0;
}

void eb_fix_kafka_stop(struct eb_fix_kafka *k) {
    eb_fix_stop(&k->proc, SIGTERM, 5000);
}
