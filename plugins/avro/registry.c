/* registry.c -- registry.h: libcurl on a plugin-owned thread. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include <ebp/buf.h>
#include <ebp/json.h>

#include "registry.h"

/* Backoff between attempts while the registry does not answer: quick at
 * first (a registry starting beside the bridge), capped so a long outage
 * costs a request every 30 s. */
#define RETRY_MIN_MS 250
#define RETRY_MAX_MS 30000

struct registry {
    const struct eb_plugin_host *h;
    const eb_plugin_ctx_t *ctx; /* valid until registry_stop() returns */
    char *url;    /* .../subjects/<subject>/versions */
    char *body;   /* {"schema": "..."} */
    long timeout_ms;
    _Atomic int64_t id;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

char *registry_body(const char *schema) {
    struct ebp_buf b = EBP_BUF_INIT;
    ebp_buf_puts(&b, "{\"schema\":");
    ebp_buf_json_string(&b, schema, strlen(schema));
    ebp_buf_puts(&b, ",\"schemaType\":\"AVRO\"}");
    ebp_buf_putc(&b, '\0');
    if (!ebp_buf_ok(&b)) {
        ebp_buf_free(&b);
        return NULL;
    }
    return b.data;
}

static size_t on_body(char *p, size_t size, size_t n, void *opaque) {
    struct ebp_buf *b = opaque;
    if (b->len + size * n > 65536)
        return 0; /* an answer this large is not the one we expect */
    ebp_buf_append(b, p, size * n);
    return size * n;
}

/* One POST. Returns the id, or -1 with a reason in why. */
static int64_t attempt(struct registry *r, char *why, size_t why_size) {
    CURL *c = curl_easy_init();
    struct ebp_buf resp = EBP_BUF_INIT;
    struct curl_slist *hdrs = NULL;
    int64_t id = -1;
    if (!c) {
        snprintf(why, why_size, "cannot create a curl handle");
        return -1;
    }
    hdrs = curl_slist_append(hdrs, "Content-Type: application/vnd.schemaregistry.v1+json");
    hdrs = curl_slist_append(hdrs, "Accept: application/vnd.schemaregistry.v1+json, application/json");
    curl_easy_setopt(c, CURLOPT_URL, r->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, r->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, r->timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    const char *v;
    size_t vl;
    if (rc != CURLE_OK) {
        snprintf(why, why_size, "%s", curl_easy_strerror(rc));
    } else if (status / 100 != 2) {
        snprintf(why, why_size, "HTTP %ld: %.200s", status, resp.data ? resp.data : "");
    } else if (!resp.data || !ebp_json_get(resp.data, resp.len, "id", &v, &vl) || vl > 18 ||
               v[0] < '0' || v[0] > '9') {
        snprintf(why, why_size, "the answer has no numeric \"id\"");
    } else {
        id = strtoll(v, NULL, 10);
        if (id > INT32_MAX) {
            snprintf(why, why_size, "schema id %lld does not fit the wire format's 4 bytes",
                     (long long)id);
            id = -1;
        }
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    ebp_buf_free(&resp);
    return id;
}

static void *run(void *arg) {
    struct registry *r = arg;
    long wait_ms = RETRY_MIN_MS;
    unsigned failures = 0;
    for (;;) {
        char why[300] = "", msg[512];
        int64_t id = attempt(r, why, sizeof(why));
        if (id >= 0) {
            atomic_store(&r->id, id);
            snprintf(msg, sizeof(msg), "avro schema registered: id %lld at %.300s",
                     (long long)id, r->url);
            r->h->log(r->ctx, EB_PLUGIN_LOG_INFO, msg);
            return NULL;
        }
        /* Say so at the first failure, then every tenth: a registry that
         * is down is one problem, not one log line per retry. */
        if (failures++ % 10 == 0) {
            snprintf(msg, sizeof(msg),
                     "schema registry not reached (events of this encoder fail until it is): "
                     "%.300s",
                     why);
            r->h->log(r->ctx, EB_PLUGIN_LOG_WARN, msg);
        }
        pthread_mutex_lock(&r->mu);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += wait_ms / 1000;
        until.tv_nsec += (wait_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (!r->stop && pthread_cond_timedwait(&r->cv, &r->mu, &until) != ETIMEDOUT) {
        }
        bool stop = r->stop;
        pthread_mutex_unlock(&r->mu);
        if (stop)
            return NULL;
        wait_ms = wait_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : wait_ms * 2;
    }
}

struct registry *registry_start(const struct eb_plugin_host *h, const eb_plugin_ctx_t *ctx,
                                const char *base_url, const char *subject, const char *schema,
                                long timeout_ms) {
    pthread_once(&curl_once, curl_init);
    struct registry *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->h = h;
    r->ctx = ctx;
    r->timeout_ms = timeout_ms;
    atomic_init(&r->id, -1);
    size_t n = strlen(base_url);
    while (n && base_url[n - 1] == '/')
        n--;
    CURL *c = curl_easy_init();
    char *esc = c ? curl_easy_escape(c, subject, 0) : NULL;
    if (esc && asprintf(&r->url, "%.*s/subjects/%s/versions", (int)n, base_url, esc) < 0)
        r->url = NULL;
    curl_free(esc);
    if (c)
        curl_easy_cleanup(c);
    r->body = registry_body(schema);
    if (!r->url || !r->body)
        goto err_free;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    if (pthread_create(&r->thread, NULL, run, r) != 0) {
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->cv);
        goto err_free;
    }
    return r;

err_free:
    free(r->url);
    free(r->body);
    free(r);
    return NULL;
}

int64_t registry_id(const struct registry *r) {
    return atomic_load(&((struct registry *)r)->id);
}

void registry_stop(struct registry *r) {
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r->url);
    free(r->body);
    free(r);
}
