/* redis_url.h -- the one setting that names where Redis is: `redis.url`.
 *
 * An operator changes topology by changing this one line (DESIGN §4):
 *
 *   redis://[user[:password]@]host[:port][/db]                  standalone
 *   redis-sentinel://[user[:password]@]s1[:port],s2.../master[/db] Sentinel
 *   redis-cluster://[user[:password]@]n1[:port],n2...           Cluster seeds
 *
 * and `rediss` instead of `redis` in each scheme asks for TLS. Ports default
 * to 6379 (26379 for sentinels). The user and password are those of the
 * data nodes (the masters); percent-encoding (`%40` for `@`) is decoded.
 * IPv6 hosts are written in brackets (`[::1]:6379`) and stored without.
 *
 * Pure: a string in, a struct out, no I/O. Every error says what is wrong
 * and what was expected, and gives the byte offset in the URL where the
 * trouble starts, so the config loader can point at the column. Messages
 * quote a host or a scheme, never the user information (it may hold a
 * password).
 */
#ifndef EB_REDIS_URL_H
#define EB_REDIS_URL_H

#include <stdbool.h>
#include <stddef.h>

enum eb_redis_url_topology {
    EB_REDIS_STANDALONE = 0, /* one master */
    EB_REDIS_SENTINEL,       /* nodes are sentinels; they name the master */
    EB_REDIS_CLUSTER,        /* nodes are seeds; every master is found from them */
};

/* Most nodes one URL may list: seeds and sentinels are a handful in
 * practice; the bound keeps a pasted node dump from becoming a config. */
#define EB_REDIS_URL_MAX_NODES 64

struct eb_redis_addr {
    char *host; /* name or address, without IPv6 brackets; owned */
    int port;
};

struct eb_redis_url {
    enum eb_redis_url_topology topology;
    bool tls;                    /* rediss, rediss-sentinel, rediss-cluster */
    char *username;              /* decoded, or NULL; owned */
    char *password;              /* decoded, or NULL; owned; a secret */
    size_t password_off;         /* where the password is written in the URL */
    size_t password_len;         /* and its length as written (0: none) */
    struct eb_redis_addr *nodes; /* at least one; owned */
    size_t nnodes;
    char *master_name; /* Sentinel: the monitored master's name; owned */
    int db;            /* from a /db path, or -1 */
};

/* Parse url into *out (zeroed first). Returns 0, or EB_ECONFIG with the
 * reason in errstr ("a redis:// URL names one server; ...") and the byte
 * offset of the trouble in *err_off (may be NULL), or EB_ENOMEM. On error
 * *out holds nothing to free. Free a parsed URL with eb_redis_url_free(). */
int eb_redis_url_parse(const char *url, struct eb_redis_url *out, size_t *err_off, char *errstr,
                       size_t errstr_size);

/* Release what eb_redis_url_parse() stored (the password is wiped first).
 * NULL or a zeroed struct is a no-op. */
void eb_redis_url_free(struct eb_redis_url *u);

/* "standalone", "sentinel", "cluster": static storage. */
const char *eb_redis_url_topology_name(enum eb_redis_url_topology t);

/* The URL's scheme for this topology and TLS ("redis-cluster", "rediss"):
 * static storage. */
const char *eb_redis_url_scheme(enum eb_redis_url_topology t, bool tls);

#endif
