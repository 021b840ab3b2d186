/* redis_url.c -- parse `redis.url` in all its topology forms (contract in
 * redis_url.h). A bounded cursor over the string: every step checks what
 * is left before it looks, and every error carries the offset where the
 * trouble starts. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/redis_url.h"
#include "core/error.h"

#define DEFAULT_PORT          6379
#define DEFAULT_SENTINEL_PORT 26379

/* A Sentinel master name as `sentinel monitor` takes it: one word. The
 * bound is generous; Sentinel itself takes any non-space word. */
#define MASTER_NAME_MAX 128

static const struct {
    const char *name;
    enum eb_redis_url_topology topology;
    bool tls;
} schemes[] = {
    {"redis", EB_REDIS_STANDALONE, false},         {"rediss", EB_REDIS_STANDALONE, true},
    {"redis-sentinel", EB_REDIS_SENTINEL, false},  {"rediss-sentinel", EB_REDIS_SENTINEL, true},
    {"redis-cluster", EB_REDIS_CLUSTER, false},    {"rediss-cluster", EB_REDIS_CLUSTER, true},
};

/* Spellings other clients use, and the one this bridge reads instead. */
static const struct {
    const char *alias, *use;
} aliases[] = {
    {"sentinel", "redis-sentinel"},          {"redis+sentinel", "redis-sentinel"},
    {"rediss+sentinel", "rediss-sentinel"},  {"cluster", "redis-cluster"},
    {"redis+cluster", "redis-cluster"},      {"rediss+cluster", "rediss-cluster"},
    {"valkey", "redis"},                     {"valkeys", "rediss"},
    {"tcp", "redis"},                        {"tls", "rediss"},
};

struct parse {
    const char *url;
    size_t *err_off;
    char *errstr;
    size_t errstr_size;
    struct eb_redis_url *out;
};

__attribute__((format(printf, 3, 4))) static int fail(struct parse *p, const char *at,
                                                      const char *fmt, ...) {
    if (p->err_off)
        *p->err_off = (size_t)(at - p->url);
    if (p->errstr_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->errstr, p->errstr_size, fmt, ap);
        va_end(ap);
    }
    return EB_ECONFIG;
}

static int oom(struct parse *p) {
    if (p->err_off)
        *p->err_off = 0;
    return eb_error_set(p->errstr, p->errstr_size, EB_ENOMEM, "out of memory");
}

const char *eb_redis_url_topology_name(enum eb_redis_url_topology t) {
    switch (t) {
    case EB_REDIS_STANDALONE:
        return "standalone";
    case EB_REDIS_SENTINEL:
        return "sentinel";
    case EB_REDIS_CLUSTER:
        return "cluster";
    }
    return "?";
}

const char *eb_redis_url_scheme(enum eb_redis_url_topology t, bool tls) {
    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
        if (schemes[i].topology == t && schemes[i].tls == tls)
            return schemes[i].name;
    }
    return "redis";
}

/* ------------------------------------------------------------------------
 * Scheme
 * --------------------------------------------------------------------- */

static int parse_scheme(struct parse *p, const char *end) {
    size_t n = (size_t)(end - p->url);
    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
        if (strlen(schemes[i].name) == n && strncasecmp(p->url, schemes[i].name, n) == 0) {
            p->out->topology = schemes[i].topology;
            p->out->tls = schemes[i].tls;
            return 0;
        }
    }
    for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++) {
        if (strlen(aliases[i].alias) == n && strncasecmp(p->url, aliases[i].alias, n) == 0)
            return fail(p, p->url, "the scheme '%.*s' is spelled '%s' here", (int)n, p->url,
                        aliases[i].use);
    }
    if ((n == 4 && strncasecmp(p->url, "unix", 4) == 0) ||
        (n == 10 && strncasecmp(p->url, "redis+unix", 10) == 0) ||
        (n == 12 && strncasecmp(p->url, "redis-socket", 12) == 0))
        return fail(p, p->url, "unix sockets are not supported; connect over TCP");
    return fail(p, p->url, "unknown scheme '%.*s'", (int)(n > 24 ? 24 : n), p->url);
}

/* ------------------------------------------------------------------------
 * User information: user[:password], percent-decoded
 * --------------------------------------------------------------------- */

static int hex_value(char ch) {
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Decode s[0..n) into a new string; NULL + an error set on a bad escape
 * (or out of memory: *rc says which). */
static char *decode(struct parse *p, const char *s, size_t n, int *rc) {
    char *d = malloc(n + 1), *w = d;
    if (!d) {
        *rc = oom(p);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            *w++ = s[i];
            continue;
        }
        int hi = i + 2 < n ? hex_value(s[i + 1]) : -1;
        int lo = i + 2 < n ? hex_value(s[i + 2]) : -1;
        if (hi < 0 || lo < 0) {
            free(d);
            *rc = fail(p, s + i,
                       "a '%%' in the user or password is not followed by two hex digits "
                       "(write '%%25' for a '%%')");
            return NULL;
        }
        *w++ = (char)(hi * 16 + lo);
        i += 2;
    }
    *w = '\0';
    return d;
}

static int parse_userinfo(struct parse *p, const char *s, const char *end) {
    const char *colon = memchr(s, ':', (size_t)(end - s));
    const char *uend = colon ? colon : end;
    int rc = 0;
    if (uend > s) {
        p->out->username = decode(p, s, (size_t)(uend - s), &rc);
        if (!p->out->username)
            return rc;
    }
    if (colon && end > colon + 1) {
        p->out->password = decode(p, colon + 1, (size_t)(end - colon - 1), &rc);
        if (!p->out->password)
            return rc;
        p->out->password_off = (size_t)(colon + 1 - p->url);
        p->out->password_len = (size_t)(end - colon - 1);
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Nodes: host[:port] separated by commas
 * --------------------------------------------------------------------- */

static bool host_char_ok(unsigned char ch) {
    return ch > 0x20 && ch < 0x7f && !strchr("/\\@,;'\"?#", ch);
}

/* One node s[0..n) into *a. */
static int parse_node(struct parse *p, const char *s, size_t n, int def_port,
                      struct eb_redis_addr *a) {
    if (n == 0)
        return fail(p, s, "a node in the list is empty (two commas, or a comma at an end)");
    size_t hlen;
    const char *port_s = NULL, *host = s;
    if (s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close)
            return fail(p, s, "the '[' of an IPv6 host is not closed");
        hlen = (size_t)(close - s) + 1;
        if (hlen < n && s[hlen] != ':')
            return fail(p, s + hlen, "text after the IPv6 host; expected ':port'");
        if (hlen <= 2)
            return fail(p, s, "the host is empty");
    } else {
        const char *colon = memchr(s, ':', n);
        hlen = colon ? (size_t)(colon - s) : n;
        if (hlen == 0)
            return fail(p, s, "the host is empty");
        for (size_t i = 0; i < hlen; i++) {
            if (!host_char_ok((unsigned char)s[i]))
                return fail(p, s + i, "the host '%.*s' has a character not allowed in a host name",
                            (int)(hlen > 64 ? 64 : hlen), s);
        }
    }
    if (hlen < n)
        port_s = s + hlen + 1;
    int port = def_port;
    if (port_s) {
        size_t plen = n - hlen - 1;
        long v = 0;
        size_t i = 0;
        for (; i < plen && i < 6 && port_s[i] >= '0' && port_s[i] <= '9'; i++)
            v = v * 10 + (port_s[i] - '0');
        if (plen == 0 || i != plen || v < 1 || v > 65535)
            return fail(p, port_s, "the port of '%.*s' is not a number from 1 to 65535",
                        (int)(n > 64 ? 64 : n), s);
        port = (int)v;
    }
    if (host[0] == '[') {
        host++;
        hlen -= 2;
    }
    a->host = strndup(host, hlen);
    a->port = port;
    return a->host ? 0 : oom(p);
}

static bool same_node(const struct eb_redis_addr *a, const struct eb_redis_addr *b) {
    return a->port == b->port && strcasecmp(a->host, b->host) == 0;
}

static int parse_nodes(struct parse *p, const char *s, const char *end) {
    int def_port = p->out->topology == EB_REDIS_SENTINEL ? DEFAULT_SENTINEL_PORT : DEFAULT_PORT;
    size_t count = 1;
    for (const char *q = s; q < end; q++)
        count += *q == ',';
    if (p->out->topology == EB_REDIS_STANDALONE && count > 1)
        return fail(p, memchr(s, ',', (size_t)(end - s)),
                    "a %s:// URL names one server; list sentinels with %s:// or cluster nodes "
                    "with %s://",
                    eb_redis_url_scheme(EB_REDIS_STANDALONE, p->out->tls),
                    eb_redis_url_scheme(EB_REDIS_SENTINEL, p->out->tls),
                    eb_redis_url_scheme(EB_REDIS_CLUSTER, p->out->tls));
    if (count > EB_REDIS_URL_MAX_NODES)
        return fail(p, s, "the URL lists %zu nodes; expected at most %d", count,
                    EB_REDIS_URL_MAX_NODES);
    p->out->nodes = calloc(count, sizeof(*p->out->nodes));
    if (!p->out->nodes)
        return oom(p);
    const char *q = s;
    for (size_t i = 0; i < count; i++) {
        const char *comma = memchr(q, ',', (size_t)(end - q));
        const char *e = comma ? comma : end;
        struct eb_redis_addr *a = &p->out->nodes[i];
        int rc = parse_node(p, q, (size_t)(e - q), def_port, a);
        if (rc)
            return rc;
        p->out->nnodes = i + 1;
        for (size_t j = 0; j < i; j++) {
            if (same_node(&p->out->nodes[j], a))
                return fail(p, q, "the node %s:%d is listed twice", a->host, a->port);
        }
        q = e + 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Path: /db (standalone), /master[/db] (Sentinel), nothing or /0 (Cluster)
 * --------------------------------------------------------------------- */

/* A database number s[0..n) into *db, or an error at s. */
static int parse_db(struct parse *p, const char *s, size_t n, int *db) {
    long v = 0;
    size_t i = 0;
    for (; i < n && i < 6 && s[i] >= '0' && s[i] <= '9'; i++)
        v = v * 10 + (s[i] - '0');
    if (n == 0 || i != n || v > 65535)
        return fail(p, s, "the database after '/' is not a number from 0 to 65535");
    *db = (int)v;
    return 0;
}

static int parse_master(struct parse *p, const char *s, const char *end) {
    const char *slash = memchr(s, '/', (size_t)(end - s));
    const char *nend = slash ? slash : end;
    size_t n = (size_t)(nend - s);
    if (n == 0)
        return fail(p, s,
                    "the master name is missing: write the name the sentinels monitor after "
                    "the nodes, as in redis-sentinel://s1:26379,s2:26379/mymaster");
    if (n > MASTER_NAME_MAX)
        return fail(p, s, "the master name is %zu bytes; expected at most %d", n, MASTER_NAME_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch <= 0x20 || ch >= 0x7f || ch == '%')
            return fail(p, s + i, "the master name has a character Sentinel does not take");
    }
    p->out->master_name = strndup(s, n);
    if (!p->out->master_name)
        return oom(p);
    return slash ? parse_db(p, slash + 1, (size_t)(end - slash - 1), &p->out->db) : 0;
}

static int parse_path(struct parse *p, const char *s, const char *end) {
    switch (p->out->topology) {
    case EB_REDIS_STANDALONE:
        return s == end ? 0 : parse_db(p, s, (size_t)(end - s), &p->out->db);
    case EB_REDIS_SENTINEL:
        return parse_master(p, s, end);
    case EB_REDIS_CLUSTER:
        if (s == end)
            return 0;
        if (parse_db(p, s, (size_t)(end - s), &p->out->db) != 0)
            return EB_ECONFIG;
        if (p->out->db != 0)
            return fail(p, s, "Redis Cluster has only database 0");
        return 0;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Public API
 * --------------------------------------------------------------------- */

static int parse(struct parse *p) {
    const char *sep = strstr(p->url, "://");
    if (!sep)
        return fail(p, p->url, "there is no scheme");
    int rc = parse_scheme(p, sep);
    if (rc)
        return rc;
    const char *rest = sep + 3, *end = rest + strlen(rest);
    /* The last '@' ends the user information: a password may hold an
     * unencoded '@' (other clients accept that too), a host never does. */
    const char *at = strrchr(rest, '@');
    if (at && (rc = parse_userinfo(p, rest, at)))
        return rc;
    const char *hosts = at ? at + 1 : rest;
    const char *opt = strpbrk(hosts, "?#");
    if (opt)
        return fail(p, opt, "URL options (?...) are not supported; use the redis.* keys");
    const char *inner = strstr(hosts, "://");
    if (inner) {
        const char *node = inner;
        while (node > hosts && node[-1] != ',')
            node--;
        return fail(p, node,
                    "a node in the list has a scheme of its own; write the scheme once, before "
                    "the first node");
    }
    const char *slash = memchr(hosts, '/', (size_t)(end - hosts));
    if ((rc = parse_nodes(p, hosts, slash ? slash : end)))
        return rc;
    if (!slash && p->out->topology == EB_REDIS_SENTINEL)
        return parse_master(p, end, end);
    return slash ? parse_path(p, slash + 1, end) : 0;
}

int eb_redis_url_parse(const char *url, struct eb_redis_url *out, size_t *err_off, char *errstr,
                       size_t errstr_size) {
    struct parse p = {url, err_off, errstr, errstr_size, out};
    memset(out, 0, sizeof(*out));
    out->db = -1;
    if (errstr_size)
        errstr[0] = '\0';
    if (err_off)
        *err_off = 0;
    int rc = parse(&p);
    if (rc)
        eb_redis_url_free(out);
    return rc;
}

void eb_redis_url_free(struct eb_redis_url *u) {
    if (!u)
        return;
    for (size_t i = 0; i < u->nnodes; i++)
        free(u->nodes[i].host);
    free(u->nodes);
    free(u->username);
    if (u->password) {
        /* A freed secret should not linger in the heap. */
        memset(u->password, 0, strlen(u->password));
        free(u->password);
    }
    free(u->master_name);
    memset(u, 0, sizeof(*u));
    u->db = -1;
}
