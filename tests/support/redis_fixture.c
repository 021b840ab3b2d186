/* redis_fixture.c -- redis-server processes for C tests (see redis_fixture.h). */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "redis_fixture.h"

/* A cold redis-server answers in well under 0.5 s; ten seconds only bounds
 * a broken machine. */
#define READY_TIMEOUT_MS 10000
/* The fixture's client must never hang a test on a frozen server. */
#define CLIENT_TIMEOUT_MS 2000

static void show_log_tail(const struct eb_fix_redis *r) {
    char path[4096], buf[2048];
    snprintf(path, sizeof(path), "%s/redis.log", r->dir ? r->dir : ".");
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, size > (long)sizeof(buf) - 1 ? size - (long)sizeof(buf) + 1 : 0, SEEK_SET);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    fprintf(stderr, "--- %s (tail) ---\n%s\n---\n", path, buf);
}

static void redis_fail(struct eb_fix_redis *r, const char *what) {
    fprintf(stderr, "redis fixture failed: %s (port %d)\n", what, r->port);
    show_log_tail(r);
    eb_fix_redis_stop(r);
    abort();
}

static redisContext *connect_client(int port) {
    struct timeval tv = {CLIENT_TIMEOUT_MS / 1000, (CLIENT_TIMEOUT_MS % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (c && !c->err)
        redisSetTimeout(c, tv);
    if (c && c->err) {
        redisFree(c);
        return NULL;
    }
    return c;
}

bool eb_fix_redis_ping(const struct eb_fix_redis *r) {
    redisContext *c = connect_client(r->port);
    if (!c)
        return false;
    redisReply *rep = redisCommand(c, "PING");
    /* A server with a password answers NOAUTH: it is up all the same. */
    bool up = rep && (rep->type == REDIS_REPLY_STATUS ||
                      (rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "NOAUTH", 6) == 0));
    if (rep)
        freeReplyObject(rep);
    redisFree(c);
    return up;
}

/* Reap the child if it already exited (port taken, bad argument). */
static bool exited(struct eb_fix_redis *r) {
    int status;
    if (r->proc.pid > 0 && waitpid(r->proc.pid, &status, WNOHANG) == r->proc.pid) {
        r->proc.pid = 0;
        return true;
    }
    return false;
}

/* True when something accepts TCP connections on 127.0.0.1:port. */
static bool port_accepts(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* The server binary: redis-server, or EB_REDIS_SERVER (valkey-server or a
 * path; the `valkey` ctest label sets it, as tests/support/ebtest.py reads). */
static const char *server_binary(const struct eb_fix_redis *r) {
    const char *s = getenv("EB_REDIS_SERVER");
    return s && *s && !r->tls_fallback ? s : "redis-server";
}

/* True when the server's log says it was built without TLS. */
static bool log_says_no_tls(const struct eb_fix_redis *r) {
    char path[4096], line[1024];
    snprintf(path, sizeof(path), "%s/redis.log", r->dir);
    FILE *f = fopen(path, "r");
    bool no_tls = false;
    while (f && !no_tls && fgets(line, sizeof(line), f))
        no_tls = strstr(line, "Failed finding TLS support") != NULL;
    if (f)
        fclose(f);
    return no_tls;
}

static void spawn(struct eb_fix_redis *r) {
    char port[16], tls_port[16], logfile[4096], pidfile[4096];
    snprintf(port, sizeof(port), "%d", r->port);
    snprintf(tls_port, sizeof(tls_port), "%d", r->tls_port);
    snprintf(logfile, sizeof(logfile), "%s/redis.log", r->dir);
    snprintf(pidfile, sizeof(pidfile), "%s/redis.pid", r->dir);
    const char *argv[16 + EB_FIX_REDIS_MAX_ARGS];
    int n = 0;
    if (access("/usr/bin/setpriv", X_OK) == 0) {
        /* exec()s redis-server: the PID we hold is the server's. */
        argv[n++] = "/usr/bin/setpriv";
        argv[n++] = "--pdeathsig";
        argv[n++] = "KILL";
    }
    argv[n++] = server_binary(r);
    argv[n++] = "--port";
    argv[n++] = r->tls ? "0" : port;
    if (r->tls || r->with_tls) {
        argv[n++] = "--tls-port";
        argv[n++] = r->tls ? port : tls_port;
    }
    argv[n++] = "--bind";
    argv[n++] = "127.0.0.1";
    argv[n++] = "--save";
    argv[n++] = "";
    argv[n++] = "--appendonly";
    argv[n++] = "no";
    argv[n++] = "--dir";
    argv[n++] = r->dir;
    argv[n++] = "--logfile";
    argv[n++] = logfile;
    argv[n++] = "--pidfile";
    argv[n++] = pidfile;
    for (int i = 0; i < r->nargs; i++)
        argv[n++] = r->args[i];
    argv[n] = NULL;
    eb_fix_spawn(&r->proc, (char *const *)argv, false, false);
}

struct ready_arg {
    struct eb_fix_redis *r;
    bool died;
};

static bool ready_or_dead(void *arg) {
    struct ready_arg *a = arg;
    if (exited(a->r)) {
        a->died = true;
        return true;
    }
    return a->r->tls ? port_accepts(a->r->port) : eb_fix_redis_ping(a->r);
}

/* Start and wait for PING. Returns false when the server exited at once
 * (e.g. someone took the port between eb_fix_free_port() and bind). */
static bool start_once(struct eb_fix_redis *r) {
    spawn(r);
    struct ready_arg a = {r, false};
    if (!eb_fix_wait_until(ready_or_dead, &a, READY_TIMEOUT_MS))
        redis_fail(r, "redis-server did not answer PING");
    if (a.died && (r->tls || r->with_tls) && !r->tls_fallback && log_says_no_tls(r)) {
        fprintf(stderr, "redis fixture: %s has no TLS; redis-server serves the TLS port\n",
                server_binary(r));
        r->tls_fallback = true;
        return start_once(r);
    }
    return !a.died;
}

static void keep_args(struct eb_fix_redis *r, const char *const *extra) {
    for (; extra && *extra; extra++) {
        if (r->nargs >= EB_FIX_REDIS_MAX_ARGS)
            redis_fail(r, "too many redis-server arguments");
        if (strcmp(*extra, "--requirepass") == 0 && extra[1])
            snprintf(r->password, sizeof(r->password), "%s", extra[1]);
        r->args[r->nargs] = strdup(*extra);
        if (!r->args[r->nargs++])
            redis_fail(r, "out of memory");
    }
}

static void start_with(struct eb_fix_redis *r, const char *const *pre, const char *const *extra) {
    r->dir = eb_fix_tempdir("eb-redis");
    keep_args(r, pre);
    keep_args(r, extra);
    if (r->with_tls && r->tls_port <= 0)
        r->tls_port = eb_fix_free_port();
    if (r->port > 0) {
        if (!start_once(r))
            redis_fail(r, "redis-server exited at start (port taken?)");
        return;
    }
    /* A free port can be taken by someone else before the server binds
     * it: try a few. */
    for (int attempt = 0; attempt < 5; attempt++) {
        r->port = eb_fix_free_port();
        if (attempt > 0 && r->with_tls)
            r->tls_port = eb_fix_free_port();
        if (start_once(r))
            return;
    }
    redis_fail(r, "redis-server exited at start");
}

void eb_fix_redis_start(struct eb_fix_redis *r, const char *const *extra_args) {
    start_with(r, NULL, extra_args);
}

void eb_fix_redis_start_tls(struct eb_fix_redis *r) {
    char *dir = eb_fix_tempdir("eb-redis-tls");
    char cmd[9000], cert[4200], key[4200];
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
             "-keyout %s -out %s >/dev/null 2>&1",
             key, cert);
    if (system(cmd) != 0)
        redis_fail(r, "openssl could not make a test certificate");
    const char *pre[] = {"--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-cert-file",
                         cert, "--tls-auth-clients", "no", NULL};
    r->tls = true;
    r->certs_dir = dir;
    start_with(r, pre, NULL);
}

void eb_fix_redis_start_with_tls(struct eb_fix_redis *r, const char *cert, const char *key,
                                 const char *ca, const char *auth_clients,
                                 const char *const *extra_args) {
    const char *pre[] = {"--tls-cert-file", cert,     "--tls-key-file",     key,
                         "--tls-ca-cert-file", ca,    "--tls-auth-clients", auth_clients,
                         NULL};
    r->with_tls = true;
    start_with(r, pre, extra_args);
}

void eb_fix_redis_start_replica(struct eb_fix_redis *r, const struct eb_fix_redis *master,
                                const char *const *extra_args) {
    char mport[16];
    snprintf(mport, sizeof(mport), "%d", master->port);
    const char *pre[] = {"--replicaof", "127.0.0.1", mport, NULL};
    start_with(r, pre, extra_args);
}

void eb_fix_redis_restart(struct eb_fix_redis *r) {
    if (r->proc.pid > 0)
        redis_fail(r, "restart while still running");
    if (r->client) {
        redisFree(r->client);
        r->client = NULL;
    }
    /* The old listening socket is gone with the process, and redis-server
     * binds with SO_REUSEADDR: the same port is free again at once. */
    if (!start_once(r))
        redis_fail(r, "redis-server did not restart on its port");
}

void eb_fix_redis_kill9(struct eb_fix_redis *r) {
    eb_fix_stop(&r->proc, SIGKILL, 5000);
}

void eb_fix_redis_signal(struct eb_fix_redis *r, int sig) {
    if (r->proc.pid > 0)
        kill(r->proc.pid, sig);
}

void eb_fix_redis_stop(struct eb_fix_redis *r) {
    if (r->client) {
        redisFree(r->client);
        r->client = NULL;
    }
    if (r->proc.pid > 0) {
        kill(r->proc.pid, SIGCONT); /* a frozen server cannot act on SIGTERM */
        eb_fix_stop(&r->proc, SIGTERM, 5000);
    }
    if (r->dir) {
        eb_fix_rmtree(r->dir);
        free(r->dir);
        r->dir = NULL;
    }
    if (r->certs_dir) {
        eb_fix_rmtree(r->certs_dir);
        free(r->certs_dir);
        r->certs_dir = NULL;
    }
    for (int i = 0; i < r->nargs; i++)
        free(r->args[i]);
    r->nargs = 0;
}

void eb_fix_redis_client_auth(struct eb_fix_redis *r, const char *user, const char *password) {
    snprintf(r->user, sizeof(r->user), "%s", user ? user : "");
    snprintf(r->password, sizeof(r->password), "%s", password ? password : "");
    if (r->client) {
        redisFree(r->client);
        r->client = NULL;
    }
}

static bool ensure_client(struct eb_fix_redis *r) {
    if (r->client && !r->client->err)
        return true;
    if (r->client)
        redisFree(r->client);
    r->client = connect_client(r->port);
    if (!r->client)
        return false;
    if (r->password[0]) {
        redisReply *rep = r->user[0] ? redisCommand(r->client, "AUTH %s %s", r->user, r->password)
                                     : redisCommand(r->client, "AUTH %s", r->password);
        bool ok = rep && rep->type == REDIS_REPLY_STATUS;
        if (rep)
            freeReplyObject(rep);
        if (!ok) {
            redisFree(r->client);
            r->client = NULL;
            return false;
        }
    }
    return true;
}

struct redisReply *eb_fix_redis_cmd_argv(struct eb_fix_redis *r, int argc, const char **argv,
                                         const size_t *argvlen) {
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!ensure_client(r))
            continue;
        redisReply *rep = redisCommandArgv(r->client, argc, argv, argvlen);
        if (rep)
            return rep;
    }
    return NULL;
}

static redisReply *vcmd(struct eb_fix_redis *r, const char *fmt, va_list ap) {
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!ensure_client(r))
            continue;
        va_list cp;
        va_copy(cp, ap);
        redisReply *rep = redisvCommand(r->client, fmt, cp);
        va_end(cp);
        if (rep)
            return rep;
    }
    return NULL;
}

struct redisReply *eb_fix_redis_cmd(struct eb_fix_redis *r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    redisReply *rep = vcmd(r, fmt, ap);
    va_end(ap);
    return rep;
}

long long eb_fix_redis_int(struct eb_fix_redis *r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    redisReply *rep = vcmd(r, fmt, ap);
    va_end(ap);
    long long v = rep && rep->type == REDIS_REPLY_INTEGER ? rep->integer : -1;
    if (rep)
        freeReplyObject(rep);
    return v;
}

void eb_fix_redis_config_get(struct eb_fix_redis *r, const char *param, char *out,
                             size_t out_size) {
    redisReply *rep = eb_fix_redis_cmd(r, "CONFIG GET %s", param);
    if (out_size)
        out[0] = '\0';
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements >= 2 &&
        rep->element[1]->type == REDIS_REPLY_STRING)
        snprintf(out, out_size, "%s", rep->element[1]->str);
    if (rep)
        freeReplyObject(rep);
}
