/* http.c -- /metrics, /healthz and /readyz on evhttp (contract in http.h).
 *
 * The listening sockets are made here, not by evhttp_bind_socket(), so a
 * bind error can name its cause (address in use, permission denied) in the
 * startup error instead of evhttp's bare NULL.
 *
 * Ownership: the server owns its evhttp (which owns the listening sockets
 * and every connection) and its render buffer; conf->metrics and conf->log
 * are borrowed.
 *
 * @locality loop thread only.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "core/error.h"
#include "core/json.h"
#include "daemon/http.h"

/* A scrape or a probe is one small request; a client that has not sent
 * it, or not read the answer, within this long is cut off so it cannot pin
 * a connection. */
#define EB_HTTP_TIMEOUT_S 10
/* Requests are a line and a few headers; refuse anything much larger. */
#define EB_HTTP_MAX_HEADERS 16384
#define EB_HTTP_MAX_BODY    4096
/* Pending connections the kernel queues while the loop is busy. */
#define EB_HTTP_BACKLOG 64

#define CT_PROMETHEUS "text/plain; version=0.0.4; charset=utf-8"
#define CT_TEXT       "text/plain; charset=utf-8"
#define CT_JSON       "application/json"

struct eb_http {
    struct evhttp *http;
    char *listen;
    eb_metrics_t *metrics;
    eb_log_t *log;
    eb_http_ready_cb *ready;
    void *opaque;
    struct eb_buf out; /* reused for every answer */
};

/* ------------------------------------------------------------------------
 * Answers
 * --------------------------------------------------------------------- */

static void reply(struct evhttp_request *req, int code, const char *reason, const char *ctype,
                  const struct eb_buf *body) {
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", ctype);
    evhttp_add_header(h, "Cache-Control", "no-store");
    if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
        /* HEAD: the length the GET would have, no body. */
        char len[32];
        snprintf(len, sizeof(len), "%zu", body->len);
        evhttp_add_header(h, "Content-Length", len);
        evhttp_send_reply(req, code, reason, NULL);
        return;
    }
    struct evbuffer *b = evbuffer_new();
    if (!b || (body->len && evbuffer_add(b, body->data, body->len) != 0)) {
        if (b)
            evbuffer_free(b);
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    evhttp_send_reply(req, code, reason, b);
    evbuffer_free(b);
}

static void reply_text(eb_http_t *h, struct evhttp_request *req, int code, const char *reason,
                       const char *text) {
    eb_buf_reset(&h->out);
    eb_buf_puts(&h->out, text);
    reply(req, code, reason, CT_TEXT, &h->out);
}

static void serve_metrics(eb_http_t *h, struct evhttp_request *req) {
    eb_buf_reset(&h->out);
    eb_metrics_render(h->metrics, &h->out);
    if (!eb_buf_ok(&h->out)) {
        eb_buf_reset(&h->out);
        reply_text(h, req, HTTP_INTERNAL, "Internal Server Error", "out of memory\n");
        return;
    }
    reply(req, HTTP_OK, "OK", CT_PROMETHEUS, &h->out);
}

/* {"status":"not ready","redis":"waiting","kafka":"unreachable"} */
static void serve_ready(eb_http_t *h, struct evhttp_request *req) {
    struct eb_http_readiness r = {0};
    h->ready(&r, h->opaque);
    bool ok = r.redis_ok && r.kafka_ok && !r.draining;
    struct eb_buf *b = &h->out;
    eb_buf_reset(b);
    eb_buf_puts(b, ok ? "{\"status\":\"ready\"" : "{\"status\":\"not ready\"");
    eb_buf_puts(b, ",\"redis\":");
    const char *redis = r.redis ? r.redis : (r.redis_ok ? "subscribed" : "not subscribed");
    eb_json_string(b, redis, strlen(redis));
    eb_buf_puts(b, r.kafka_ok ? ",\"kafka\":\"reachable\"" : ",\"kafka\":\"unreachable\"");
    if (r.draining)
        eb_buf_puts(b, ",\"draining\":true");
    eb_buf_puts(b, "}\n");
    if (!eb_buf_ok(b)) {
        reply_text(h, req, HTTP_INTERNAL, "Internal Server Error", "out of memory\n");
        return;
    }
    reply(req, ok ? HTTP_OK : HTTP_SERVUNAVAIL, ok ? "OK" : "Service Unavailable", CT_JSON, b);
}

/* @locality loop thread (evhttp). */
static void on_request(struct evhttp_request *req, void *arg) {
    eb_http_t *h = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    enum { P_NONE, P_METRICS, P_HEALTH, P_READY } which = P_NONE;
    if (path && strcmp(path, "/metrics") == 0)
        which = P_METRICS;
    else if (path && strcmp(path, "/healthz") == 0)
        which = P_HEALTH;
    else if (path && strcmp(path, "/readyz") == 0)
        which = P_READY;
    if (which == P_NONE) {
        reply_text(h, req, HTTP_NOTFOUND, "Not Found",
                   "not found; try /metrics, /healthz or /readyz\n");
        return;
    }
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
        reply_text(h, req, HTTP_BADMETHOD, "Method Not Allowed", "only GET and HEAD\n");
        return;
    }
    switch (which) {
    case P_METRICS:
        serve_metrics(h, req);
        break;
    case P_HEALTH:
        /* Answering at all proves the loop is turning. */
        reply_text(h, req, HTTP_OK, "OK", "ok\n");
        break;
    case P_READY:
        serve_ready(h, req);
        break;
    case P_NONE:
        break;
    }
}

/* ------------------------------------------------------------------------
 * Listening
 * --------------------------------------------------------------------- */

/* "host:port" or "[v6]:port" -> host (brackets removed) and port. */
static int split_listen(const char *listen, char *host, size_t host_size, char *port,
                        size_t port_size) {
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen || !colon[1])
        return EB_EINVAL;
    const char *h = listen;
    size_t n = (size_t)(colon - listen);
    if (h[0] == '[') {
        if (n < 3 || h[n - 1] != ']')
            return EB_EINVAL;
        h++;
        n -= 2;
    }
    if (n >= host_size || strlen(colon + 1) >= port_size)
        return EB_EINVAL;
    memcpy(host, h, n);
    host[n] = '\0';
    snprintf(port, port_size, "%s", colon + 1);
    return 0;
}

/* One listening socket handed to evhttp; 0 or an errno. */
static int listen_one(struct evhttp *http, const struct addrinfo *ai) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return errno;
    int one = 1;
    /* A restart (or a reload moving the server back) must not wait for
     * TIME_WAIT connections of the previous socket. */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, EB_HTTP_BACKLOG) != 0) {
        int e = errno;
        close(fd);
        return e;
    }
    if (!evhttp_accept_socket_with_handle(http, fd)) {
        close(fd);
        return ENOMEM;
    }
    return 0; /* evhttp closes fd when it is freed */
}

/* Bind every address the host resolves to ("localhost" is 127.0.0.1 and
 * ::1). An address family the machine lacks (no IPv6) is skipped when
 * another one worked; any other failure is an error. */
static int bind_all(eb_http_t *h, char *errstr, size_t errstr_size) {
    char host[256], port[16];
    if (split_listen(h->listen, host, sizeof(host), port, sizeof(port)) != 0)
        return eb_error_set(errstr, errstr_size, EB_EINVAL,
                         "http.listen '%s': expected host:port or [v6-address]:port", h->listen);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
                    *res = NULL;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0)
        return eb_error_set(errstr, errstr_size, EB_EIO, "cannot listen on http.listen %s: %s",
                         h->listen, gai_strerror(gai));
    int bound = 0, skipped = 0, rc = 0;
    for (const struct addrinfo *ai = res; ai && rc == 0; ai = ai->ai_next) {
        int e = listen_one(h->http, ai);
        if (e == 0)
            bound++;
        else if (e == EADDRNOTAVAIL || e == EAFNOSUPPORT)
            skipped = e;
        else
            rc = eb_error_set(errstr, errstr_size, EB_EIO, "cannot listen on http.listen %s: %s",
                           h->listen, strerror(e));
    }
    freeaddrinfo(res);
    if (rc == 0 && bound == 0)
        rc = eb_error_set(errstr, errstr_size, EB_EIO, "cannot listen on http.listen %s: %s",
                       h->listen, strerror(skipped ? skipped : EADDRNOTAVAIL));
    return rc;
}

/* ------------------------------------------------------------------------
 * Public API
 * --------------------------------------------------------------------- */

eb_http_t *eb_http_new(struct event_base *base, const struct eb_http_conf *conf, char *errstr,
                       size_t errstr_size) {
    if (!base || !conf || !conf->listen || !*conf->listen || !conf->metrics || !conf->ready) {
        eb_error_set(errstr, errstr_size, EB_EINVAL,
                  "http server needs an address, a metrics registry and a readiness callback");
        return NULL;
    }
    eb_http_t *h = calloc(1, sizeof(*h));
    if (!h) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        return NULL;
    }
    h->metrics = conf->metrics;
    h->log = conf->log;
    h->ready = conf->ready;
    h->opaque = conf->opaque;
    /* calloc left h->out empty (EB_BUF_INIT). */
    h->listen = strdup(conf->listen);
    h->http = evhttp_new(base);
    if (!h->listen || !h->http) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        goto err_destroy;
    }
    evhttp_set_timeout(h->http, EB_HTTP_TIMEOUT_S);
    evhttp_set_max_headers_size(h->http, EB_HTTP_MAX_HEADERS);
    evhttp_set_max_body_size(h->http, EB_HTTP_MAX_BODY);
    /* Let every method reach on_request, which answers 405 for the ones we
     * do not serve (evhttp itself would say 501 Not Implemented). */
    evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                            EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_gencb(h->http, on_request, h);
    if (bind_all(h, errstr, errstr_size) != 0)
        goto err_destroy;
    eb_log(h->log, EB_LOG_INFO, "http server listening", eb_lf_str("listen", h->listen),
           eb_lf_str("endpoints", "/metrics /healthz /readyz"));
    return h;

err_destroy:
    eb_http_destroy(h);
    return NULL;
}

const char *eb_http_listen(const eb_http_t *h) {
    return h->listen;
}

void eb_http_destroy(eb_http_t *h) {
    if (!h)
        return;
    if (h->http)
        evhttp_free(h->http);
    eb_buf_free(&h->out);
    free(h->listen);
    free(h);
}
