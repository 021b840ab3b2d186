/* plugin_host.c -- plugin_host.h: loading (dlopen + the ABI checks of
 * DESIGN §8, in order: version, descriptor size, name), the check hook of
 * the config loader, instances and their reuse across reloads, and the
 * host vtable that plugins read and change an event through.
 *
 * A plugin's error return costs its event, never the process. A plugin
 * that crashes (SIGSEGV) takes the process with it: in-process, a crash is
 * not recoverable (docs/plugins.md says so); the tests run crashing plugins
 * in a forked child.
 *
 * No state lives outside the handles (STYLE.md; unit.plugin_host_state
 * checks the object file): a settings handle points to the check it
 * belongs to, a context handle to its instance's name and loader's log,
 * so loaders are independent and plugin threads need no host thread.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ebp/json.h>
#include <expiry_bridge/plugin.h>

#include "config/config_schema.h"
#include "core/error.h"
#include "core/json.h"
#include "core/utf8.h"
#include "plugin/plugin_host.h"

_Static_assert(EB_PLUGIN_RUN_CONTINUE == EB_PLUGIN_CONTINUE && EB_PLUGIN_RUN_DROP == EB_PLUGIN_DROP &&
                   EB_PLUGIN_RUN_ERROR == EB_PLUGIN_ERROR,
               "plugin_host.h mirrors plugin.h's transform results");

#ifndef EB_PLUGIN_DIR
#define EB_PLUGIN_DIR "/usr/lib/expiry-bridge/plugins"
#endif

/* Longest name a descriptor may carry ([a-z0-9_-]): it labels metrics. */
#define EB_PLUGIN_MAX_NAME 64
/* Longest name of a field a plugin adds to data.ext. */
#define EB_PLUGIN_MAX_FIELD 128
/* What struct eb_plugin_event.fields starts with once a plugin added a
 * field: the fields live in data's extension member (docs/event.md). */
#define EXT_HEAD     ",\"ext\":"
#define EXT_HEAD_LEN (sizeof(EXT_HEAD) - 1)

/* ------------------------------------------------------------------------ */
/* Types                                                                    */
/* ------------------------------------------------------------------------ */

struct module {
    struct module *next;
    char *path; /* resolved (realpath) */
    void *dl;
    const struct eb_plugin_descriptor *d;
};

struct eb_plugin_loader {
    eb_log_t *log;
    eb_metrics_t *metrics;
    char *default_dir;
    struct module *modules;
    eb_metric_t *f_errors, *f_dropped;
};

/* The context handle (eb_plugin_ctx_t) of an instance, or of one check():
 * immutable once made, so any thread may read it. */
struct eb_plugin_ctx {
    eb_log_t *log; /* NULL: the plugin's log lines go nowhere */
    const char *instance;
};

struct instance {
    struct instance *next; /* in the loader's list of live instances */
    int refs;              /* sets holding it */
    char *name;
    struct eb_plugin_ctx ctx; /* handed to init(); valid until destroy() returns */
    char *identity; /* module path + settings as text: equal means reusable */
    struct module *m;
    void *state;
    eb_series_t *errors, *dropped;
};

struct eb_plugin_chain {
    struct instance **transforms;
    size_t ntransforms;
    struct instance *encoder; /* NULL: the route's format */
};

struct eb_plugin_set {
    eb_plugin_loader_t *l;
    struct instance **inst; /* by cfg->plugins index */
    size_t ninst;
    struct eb_plugin_chain **chains; /* by route; NULL: no plugins */
    size_t nroutes;
};

/* ------------------------------------------------------------------------ */
/* Settings accessors                                                       */
/* ------------------------------------------------------------------------ */

/* Where settings errors go while a plugin's check() or init() runs. Every
 * settings handle of that call points back to it, so settings_error()
 * needs nothing but the node: no "current check" is kept anywhere. */
struct check_ctx {
    eb_config_report_fn *report; /* check: the config loader's reporter */
    void *rctx;
    const struct eb_config_plugin *cp;
    size_t index;
    int nerr;
    char *init_err; /* init (report NULL): the first error lands here */
    size_t init_err_size;
};

/* A settings handle (eb_plugin_settings_t): a node of the instance's
 * settings and the call it belongs to. One array per call, a node's kids
 * contiguous, built before and freed after check()/init(). */
struct eb_plugin_settings {
    const struct eb_config_node *node;
    struct check_ctx *check;
    struct eb_plugin_settings *kids; /* node->nkids of them */
};

static const struct eb_config_node empty_settings = {.type = EB_NODE_MAP};

static size_t node_count(const struct eb_config_node *n) {
    size_t c = 1;
    for (size_t i = 0; i < n->nkids; i++)
        c += node_count(n->kids[i]);
    return c;
}

static void node_wrap(struct eb_plugin_settings *w, const struct eb_config_node *n,
                      struct check_ctx *cc, struct eb_plugin_settings **next) {
    w->node = n;
    w->check = cc;
    w->kids = *next;
    *next += n->nkids;
    for (size_t i = 0; i < n->nkids; i++)
        node_wrap(&w->kids[i], n->kids[i], cc, next);
}

/* The handles of cp's settings for one call reporting to cc: the root,
 * owned by the caller (free() it after the call); NULL when out of memory. */
static struct eb_plugin_settings *settings_new(const struct eb_config_plugin *cp,
                                               struct check_ctx *cc) {
    const struct eb_config_node *root = cp->settings ? cp->settings : &empty_settings;
    struct eb_plugin_settings *all = calloc(node_count(root), sizeof(*all));
    struct eb_plugin_settings *next = all + 1;
    if (all)
        node_wrap(all, root, cc, &next);
    return all;
}

#define NODE(n) ((n)->node)

static int h_settings_kind(const eb_plugin_settings_t *n) {
    if (!n)
        return EB_PLUGIN_SETTING_ABSENT;
    switch (NODE(n)->type) {
    case EB_NODE_SCALAR:
        return EB_PLUGIN_SETTING_SCALAR;
    case EB_NODE_LIST:
        return EB_PLUGIN_SETTING_LIST;
    default:
        return EB_PLUGIN_SETTING_MAP;
    }
}

static const char *h_settings_string(const eb_plugin_settings_t *n) {
    return n && NODE(n)->type == EB_NODE_SCALAR ? NODE(n)->str : NULL;
}

static size_t h_settings_count(const eb_plugin_settings_t *n) {
    return n && NODE(n)->type != EB_NODE_SCALAR ? NODE(n)->nkids : 0;
}

static const eb_plugin_settings_t *h_settings_item(const eb_plugin_settings_t *n, size_t i) {
    if (!n || NODE(n)->type == EB_NODE_SCALAR || i >= NODE(n)->nkids)
        return NULL;
    return &n->kids[i];
}

static const char *h_settings_key(const eb_plugin_settings_t *n, size_t i) {
    if (!n || NODE(n)->type != EB_NODE_MAP || i >= NODE(n)->nkids)
        return NULL;
    return NODE(n)->keys[i];
}

static const eb_plugin_settings_t *h_settings_get(const eb_plugin_settings_t *n,
                                                  const char *key) {
    if (!n || !key || NODE(n)->type != EB_NODE_MAP)
        return NULL;
    for (size_t i = 0; i < NODE(n)->nkids; i++) {
        if (strcmp(NODE(n)->keys[i], key) == 0)
            return &n->kids[i];
    }
    return NULL;
}

/* One settings error of cc's call: "invalid PATH: MSG" at pos. */
static void settings_report(struct check_ctx *c, const char *path, struct eb_srcpos pos,
                            const char *msg) {
    char text[1024];
    snprintf(text, sizeof(text), "invalid %s: %s", path, msg ? msg : "refused by the plugin");
    c->nerr++;
    if (c->report)
        c->report(c->rctx, pos, text);
    else if (c->init_err && c->nerr == 1)
        snprintf(c->init_err, c->init_err_size, "%s", text);
}

static void h_settings_error(const eb_plugin_settings_t *n, const char *msg) {
    if (!n)
        return;
    struct check_ctx *c = n->check;
    if (NODE(n) != &empty_settings) {
        settings_report(c, NODE(n)->path, NODE(n)->pos, msg);
        return;
    }
    char path[64];
    snprintf(path, sizeof(path), "plugins[%zu].settings", c->index);
    settings_report(c, path, c->cp->pos, msg);
}

static void h_settings_key_error(const eb_plugin_settings_t *map, size_t i, const char *msg) {
    if (!map || NODE(map)->type != EB_NODE_MAP || i >= NODE(map)->nkids)
        return;
    settings_report(map->check, NODE(map)->kids[i]->path, NODE(map)->key_pos[i], msg);
}

static void h_log(const eb_plugin_ctx_t *ctx, int level, const char *msg) {
    static const enum eb_log_level levels[] = {EB_LOG_DEBUG, EB_LOG_INFO, EB_LOG_WARN,
                                               EB_LOG_ERROR};
    if (!ctx || !ctx->log)
        return;
    enum eb_log_level lv = level >= 0 && level <= 3 ? levels[level] : EB_LOG_INFO;
    eb_log(ctx->log, lv, msg ? msg : "", eb_lf_str("plugin", ctx->instance));
}

/* ------------------------------------------------------------------------ */
/* Event accessors                                                          */
/* ------------------------------------------------------------------------ */

#define PE(e)  ((struct eb_plugin_event *)(e))
#define CPE(e) ((const struct eb_plugin_event *)(e))

static const char *h_event_name(const eb_plugin_event_t *e) {
    return CPE(e)->ev.event;
}

static const void *h_key(const eb_plugin_event_t *e, size_t *len) {
    *len = CPE(e)->ev.key_len;
    return CPE(e)->ev.key ? CPE(e)->ev.key : "";
}

static int h_db(const eb_plugin_event_t *e) {
    return CPE(e)->ev.db;
}

static const char *h_route(const eb_plugin_event_t *e) {
    return CPE(e)->ev.route;
}

static size_t h_param_count(const eb_plugin_event_t *e) {
    return CPE(e)->ev.nparams;
}

static const char *h_param_name(const eb_plugin_event_t *e, size_t i) {
    return i < CPE(e)->ev.nparams ? CPE(e)->ev.params[i].name : NULL;
}

static const char *h_param_value(const eb_plugin_event_t *e, size_t i, size_t *len) {
    if (i >= CPE(e)->ev.nparams)
        return NULL;
    *len = CPE(e)->ev.params[i].value_len;
    return CPE(e)->ev.params[i].value;
}

static const char *h_param(const eb_plugin_event_t *e, const char *name, size_t *len) {
    for (size_t i = 0; name && i < CPE(e)->ev.nparams; i++) {
        if (CPE(e)->ev.params[i].name && strcmp(CPE(e)->ev.params[i].name, name) == 0) {
            *len = CPE(e)->ev.params[i].value_len;
            return CPE(e)->ev.params[i].value;
        }
    }
    return NULL;
}

static const char *h_source(const eb_plugin_event_t *e) {
    return CPE(e)->ev.source;
}

static const char *h_id(const eb_plugin_event_t *e) {
    struct eb_plugin_event *pe = PE(e);
    if (!pe->id_ready) {
        eb_event_id(&pe->ev, pe->id);
        pe->id_ready = true;
    }
    return pe->id;
}

static int64_t h_time_us(const eb_plugin_event_t *e) {
    return CPE(e)->ev.time_us;
}

static int64_t h_deadline_ms(const eb_plugin_event_t *e) {
    return CPE(e)->ev.deadline_ms;
}

static const char *h_delivery(const eb_plugin_event_t *e) {
    return CPE(e)->ev.delivery == EB_DELIVERY_RECOVERED ? "recovered" : "live";
}

static const char *h_payload(const eb_plugin_event_t *e, size_t *len) {
    const struct eb_event *ev = &CPE(e)->ev;
    if (!ev->has_payload)
        return NULL;
    *len = ev->payload_json ? ev->payload_len : 4;
    return ev->payload_json ? ev->payload_json : "null";
}

/* The built-in members of data as JSON text, rendered into scratch. */
static bool builtin_field(struct eb_plugin_event *pe, const char *name, struct eb_buf *b) {
    const struct eb_event *ev = &pe->ev;
    if (strcmp(name, "event") == 0) {
        eb_json_string(b, ev->event, strlen(ev->event));
    } else if (strcmp(name, "key") == 0) {
        eb_json_string(b, ev->key ? ev->key : "", ev->key_len);
    } else if (strcmp(name, "db") == 0) {
        eb_buf_put_i64(b, ev->db);
    } else if (strcmp(name, "route") == 0) {
        if (ev->route)
            eb_json_string(b, ev->route, strlen(ev->route));
        else
            eb_buf_puts(b, "null");
    } else if (strcmp(name, "delivery") == 0) {
        eb_buf_puts(b, ev->delivery == EB_DELIVERY_RECOVERED ? "\"recovered\"" : "\"live\"");
    } else if (strcmp(name, "deadline") == 0 && ev->deadline_ms >= 0) {
        eb_buf_putc(b, '"');
        eb_buf_put_rfc3339(b, ev->deadline_ms * 1000, 3);
        eb_buf_putc(b, '"');
    } else if (strcmp(name, "params") == 0) {
        eb_buf_putc(b, '{');
        for (size_t i = 0; i < ev->nparams; i++) {
            if (i)
                eb_buf_putc(b, ',');
            eb_json_string(b, ev->params[i].name, strlen(ev->params[i].name));
            eb_buf_putc(b, ':');
            eb_json_string(b, ev->params[i].value, ev->params[i].value_len);
        }
        eb_buf_putc(b, '}');
    } else {
        return false;
    }
    return true;
}

/* The value at path in the document [doc, doc + dlen) whose own name is
 * the first `head` bytes of path (the whole document when path is just
 * that name). */
static const char *sub_field(const char *doc, size_t dlen, const char *path, size_t head,
                             size_t *len) {
    const char *v;
    if (!path[head]) {
        *len = dlen;
        return doc;
    }
    return ebp_json_get(doc, dlen, path + head + 1, &v, len) ? v : NULL;
}

static const char *h_field(const eb_plugin_event_t *e, const char *path, size_t *len) {
    struct eb_plugin_event *pe = PE(e);
    if (!path || !*path)
        return NULL;
    size_t head = strcspn(path, ".");
    char top[EB_PLUGIN_MAX_FIELD + 1];
    if (head > EB_PLUGIN_MAX_FIELD)
        return NULL;
    memcpy(top, path, head);
    top[head] = '\0';
    /* The payload and ext are documents of their own; anything else is
     * looked up in an object made of the built-in member asked for. */
    size_t dlen = 0;
    if (strcmp(top, "payload") == 0) {
        const char *doc = h_payload(e, &dlen);
        return doc ? sub_field(doc, dlen, path, head, len) : NULL;
    }
    if (strcmp(top, "ext") == 0) {
        if (!pe->fields.len)
            return NULL;
        return sub_field(pe->fields.data + EXT_HEAD_LEN, pe->fields.len - EXT_HEAD_LEN, path,
                         head, len);
    }
    struct eb_buf *b = &pe->scratch, *tmp = &pe->scratch2;
    eb_buf_reset(b);
    eb_buf_reset(tmp);
    if (!builtin_field(pe, top, tmp))
        return NULL;
    eb_buf_putc(b, '{');
    eb_json_string(b, top, strlen(top));
    eb_buf_putc(b, ':');
    eb_buf_append(b, tmp->data, tmp->len);
    eb_buf_putc(b, '}');
    if (!eb_buf_ok(b))
        return NULL;
    const char *v;
    if (!ebp_json_get(b->data, b->len, path, &v, len))
        return NULL;
    return v;
}

static const char *h_topic(const eb_plugin_event_t *e) {
    return CPE(e)->topic;
}

const void *eb_plugin_event_key(struct eb_plugin_event *pe, size_t *len) {
    if (!pe->key_ready) {
        eb_buf_reset(&pe->key);
        if (pe->match)
            eb_router_render_key(pe->router, pe->match, pe->ev.key, pe->ev.key_len, pe->ev.db,
                                 pe->ev.event, &pe->key);
        else
            eb_buf_append(&pe->key, pe->ev.key, pe->ev.key_len);
        pe->key_ready = true;
    }
    *len = pe->key.len;
    if (!eb_buf_ok(&pe->key))
        return NULL;
    return pe->key.data ? pe->key.data : "";
}

static const void *h_kafka_key(const eb_plugin_event_t *e, size_t *len) {
    return eb_plugin_event_key(PE(e), len);
}

static size_t h_header_count(const eb_plugin_event_t *e) {
    const struct eb_plugin_event *pe = CPE(e);
    return pe->headers_changed ? pe->nhdr : pe->nroute_headers;
}

static const char *h_header_name(const eb_plugin_event_t *e, size_t i) {
    const struct eb_plugin_event *pe = CPE(e);
    if (!pe->headers_changed)
        return i < pe->nroute_headers ? pe->route_headers[i].name : NULL;
    if (i >= pe->nhdr)
        return NULL;
    return pe->hdr[i].own ? pe->hdrbuf.data + pe->hdr[i].name_off : pe->hdr[i].name;
}

static const void *h_header_value(const eb_plugin_event_t *e, size_t i, size_t *len) {
    const struct eb_plugin_event *pe = CPE(e);
    if (!pe->headers_changed) {
        if (i >= pe->nroute_headers)
            return NULL;
        *len = pe->route_headers[i].value_len;
        return pe->route_headers[i].value;
    }
    if (i >= pe->nhdr)
        return NULL;
    *len = pe->hdr[i].value_len;
    return pe->hdr[i].own ? pe->hdrbuf.data + pe->hdr[i].value_off : pe->hdr[i].value;
}

static int h_set_topic(eb_plugin_event_t *e, const char *topic) {
    struct eb_plugin_event *pe = PE(e);
    char why[128];
    if (!topic || !eb_config_schema_topic_valid(topic, why, sizeof(why)))
        return -1;
    snprintf(pe->topic_buf, sizeof(pe->topic_buf), "%s", topic);
    pe->topic = pe->topic_buf;
    pe->topic_changed = true;
    return 0;
}

static int h_set_kafka_key(eb_plugin_event_t *e, const void *key, size_t len) {
    struct eb_plugin_event *pe = PE(e);
    if (!key && len)
        return -1;
    eb_buf_reset(&pe->key);
    eb_buf_append(&pe->key, key, len);
    pe->key_ready = true;
    return eb_buf_ok(&pe->key) ? 0 : -1;
}

/* Headers a plugin changes start as a copy of the route's. */
static void headers_own(struct eb_plugin_event *pe) {
    if (pe->headers_changed)
        return;
    for (size_t i = 0; i < pe->nroute_headers; i++) {
        pe->hdr[i] = (struct eb_plugin_header){
            .name = pe->route_headers[i].name,
            .value = pe->route_headers[i].value,
            .value_len = pe->route_headers[i].value_len,
        };
    }
    pe->nhdr = pe->nroute_headers;
    eb_buf_reset(&pe->hdrbuf);
    pe->headers_changed = true;
}

static size_t header_find(struct eb_plugin_event *pe, const char *name) {
    for (size_t i = 0; i < pe->nhdr; i++) {
        if (strcmp(h_header_name((eb_plugin_event_t *)pe, i), name) == 0)
            return i;
    }
    return SIZE_MAX;
}

static bool header_name_ok(const char *name) {
    size_t n = name ? strlen(name) : 0;
    return n > 0 && n <= 255 && strcasecmp(name, "content-type") != 0 &&
           strncasecmp(name, "ce_", 3) != 0;
}

static int h_set_header(eb_plugin_event_t *e, const char *name, const void *value, size_t len) {
    struct eb_plugin_event *pe = PE(e);
    if (!header_name_ok(name) || (!value && len))
        return -1;
    headers_own(pe);
    size_t i = header_find(pe, name);
    if (i == SIZE_MAX) {
        /* Binary mode sends 7 headers of its own. */
        if (pe->nhdr >= EB_EVENT_MAX_HEADERS - 7)
            return -1;
        i = pe->nhdr++;
        pe->hdr[i].name_off = pe->hdrbuf.len;
        eb_buf_append(&pe->hdrbuf, name, strlen(name) + 1);
    } else if (!pe->hdr[i].own) {
        pe->hdr[i].name_off = pe->hdrbuf.len;
        eb_buf_append(&pe->hdrbuf, name, strlen(name) + 1);
    }
    pe->hdr[i].own = true;
    pe->hdr[i].value_off = pe->hdrbuf.len;
    pe->hdr[i].value_len = len;
    eb_buf_append(&pe->hdrbuf, value, len);
    eb_buf_putc(&pe->hdrbuf, '\0');
    return eb_buf_ok(&pe->hdrbuf) ? 0 : -1;
}

static int h_remove_header(eb_plugin_event_t *e, const char *name) {
    struct eb_plugin_event *pe = PE(e);
    if (!name)
        return -1;
    headers_own(pe);
    size_t i = header_find(pe, name);
    if (i == SIZE_MAX)
        return -1;
    memmove(&pe->hdr[i], &pe->hdr[i + 1], (pe->nhdr - i - 1) * sizeof(pe->hdr[0]));
    pe->nhdr--;
    return 0;
}

/* A name add_field() accepts: 1..EB_PLUGIN_MAX_FIELD bytes of UTF-8 that
 * JSON writes as they are (no '"', '\\' or control character) and without
 * '.', so a path "ext.NAME" names it and two names never collide once
 * written. */
static bool field_name_ok(const char *name, size_t nl) {
    return nl > 0 && nl <= EB_PLUGIN_MAX_FIELD && eb_utf8_valid(name, nl) &&
           ebp_json_plain_name(name, nl);
}

static int h_add_field(eb_plugin_event_t *e, const char *name, const char *json, size_t len) {
    struct eb_plugin_event *pe = PE(e);
    struct eb_buf *f = &pe->fields;
    size_t nl = name ? strlen(name) : 0;
    const char *v;
    size_t vl;
    if (!field_name_ok(name, nl) || !json || !eb_event_json_valid(json, len))
        return -1;
    if (f->len && ebp_json_get(f->data + EXT_HEAD_LEN, f->len - EXT_HEAD_LEN, name, &v, &vl))
        return -1; /* ext has it already */
    /* `,"ext":{...}`: open it with the first field, else reopen it. */
    size_t mark = f->len;
    if (mark) {
        f->len--;
        eb_buf_putc(f, ',');
    } else {
        eb_buf_append(f, EXT_HEAD "{", EXT_HEAD_LEN + 1);
    }
    eb_buf_putc(f, '"');
    eb_buf_append(f, name, nl);
    eb_buf_append(f, "\":", 2);
    eb_buf_append(f, json, len);
    eb_buf_putc(f, '}');
    if (!eb_buf_ok(f)) {
        /* Refused, the fields added before stay: give the buffer back as
         * it was (the '}' the reopening overwrote included). */
        f->failed = false;
        f->len = mark;
        if (mark)
            f->data[mark - 1] = '}';
        return -1;
    }
    pe->ev.extra_json = f->data;
    pe->ev.extra_len = f->len;
    return 0;
}

static int h_set_payload(eb_plugin_event_t *e, const char *json, size_t len) {
    struct eb_plugin_event *pe = PE(e);
    if (!pe->ev.has_payload || !json || !eb_event_json_valid(json, len))
        return -1;
    /* The new text may be a view of the current one (a plugin passing part
     * of it back): write into the other buffer, then swap. Both are reused,
     * so masking allocates nothing in steady state. */
    struct eb_buf *alt = &pe->payload_alt;
    eb_buf_reset(alt);
    eb_buf_append(alt, json, len);
    if (!eb_buf_ok(alt))
        return -1;
    struct eb_buf cur = pe->payload;
    pe->payload = *alt;
    *alt = cur;
    pe->ev.payload_json = pe->payload.data;
    pe->ev.payload_len = pe->payload.len;
    return 0;
}

static void h_fail(eb_plugin_event_t *e, const char *reason) {
    snprintf(PE(e)->reason, sizeof(PE(e)->reason), "%s", reason ? reason : "");
}

static int h_output_write(eb_plugin_output_t *out, const void *data, size_t len) {
    struct eb_buf *b = (struct eb_buf *)out;
    if (!data && len)
        return -1;
    eb_buf_append(b, data, len);
    return eb_buf_ok(b) ? 0 : -1;
}

static const struct eb_plugin_host host = {
    .struct_size = sizeof(struct eb_plugin_host),
    .abi_version = EB_PLUGIN_ABI_VERSION,
    .settings_kind = h_settings_kind,
    .settings_string = h_settings_string,
    .settings_count = h_settings_count,
    .settings_item = h_settings_item,
    .settings_key = h_settings_key,
    .settings_get = h_settings_get,
    .settings_error = h_settings_error,
    .settings_key_error = h_settings_key_error,
    .log = h_log,
    .event_name = h_event_name,
    .key = h_key,
    .db = h_db,
    .route = h_route,
    .param_count = h_param_count,
    .param_name = h_param_name,
    .param_value = h_param_value,
    .param = h_param,
    .source = h_source,
    .id = h_id,
    .time_us = h_time_us,
    .deadline_ms = h_deadline_ms,
    .delivery = h_delivery,
    .payload = h_payload,
    .field = h_field,
    .topic = h_topic,
    .kafka_key = h_kafka_key,
    .header_count = h_header_count,
    .header_name = h_header_name,
    .header_value = h_header_value,
    .set_topic = h_set_topic,
    .set_kafka_key = h_set_kafka_key,
    .set_header = h_set_header,
    .remove_header = h_remove_header,
    .add_field = h_add_field,
    .set_payload = h_set_payload,
    .fail = h_fail,
    .output_write = h_output_write,
};

/* ------------------------------------------------------------------------ */
/* Loading                                                                  */
/* ------------------------------------------------------------------------ */

const char *eb_plugin_default_dir(void) {
    return EB_PLUGIN_DIR;
}

eb_plugin_loader_t *eb_plugin_loader_new(eb_log_t *log, eb_metrics_t *metrics,
                                         const char *default_dir) {
    eb_plugin_loader_t *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->log = log;
    l->metrics = metrics;
    l->default_dir = strdup(default_dir ? default_dir : EB_PLUGIN_DIR);
    if (metrics) {
        l->f_errors = eb_metrics_register(metrics, EB_METRIC_COUNTER, "eb_plugin_errors_total",
                                          "Events a plugin instance failed (error return).",
                                          "plugin", NULL, 0);
        l->f_dropped =
            eb_metrics_register(metrics, EB_METRIC_COUNTER, "eb_plugin_dropped_total",
                                "Events a plugin instance dropped on purpose (a filter).",
                                "plugin", NULL, 0);
    }
    if (!l->default_dir || (metrics && (!l->f_errors || !l->f_dropped))) {
        eb_plugin_loader_destroy(l);
        return NULL;
    }
    return l;
}

void eb_plugin_loader_destroy(eb_plugin_loader_t *l) {
    if (!l)
        return;
    while (l->modules) {
        struct module *m = l->modules;
        l->modules = m->next;
        dlclose(m->dl);
        free(m->path);
        free(m);
    }
    free(l->default_dir);
    free(l);
}

/* The file an instance's `path` names: a shipped plugin's name is
 * <dir>/<name>.so; a path with a '/' is taken as it is, relative to the
 * config file's directory. */
static void resolve(const eb_plugin_loader_t *l, const struct eb_config *cfg,
                    const struct eb_config_plugin *cp, char *out, size_t size) {
    const char *base = cfg->dir ? cfg->dir : ".";
    if (strchr(cp->path, '/')) {
        if (cp->path[0] == '/')
            snprintf(out, size, "%s", cp->path);
        else
            snprintf(out, size, "%s/%s", base, cp->path);
        return;
    }
    const char *dir = cfg->plugin_dir && *cfg->plugin_dir ? cfg->plugin_dir : l->default_dir;
    if (dir[0] == '/')
        snprintf(out, size, "%s/%s.so", dir, cp->path);
    else
        snprintf(out, size, "%s/%s/%s.so", base, dir, cp->path);
}

static bool name_valid(const char *s) {
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > EB_PLUGIN_MAX_NAME)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* The module of instance cp, loaded and checked (cached by real path).
 * NULL with the reason in err. */
static struct module *module_open(eb_plugin_loader_t *l, const struct eb_config *cfg,
                                  const struct eb_config_plugin *cp, char *err, size_t errsz) {
    char file[PATH_MAX + 64], real[PATH_MAX];
    resolve(l, cfg, cp, file, sizeof(file));
    if (!realpath(file, real)) {
        if (strchr(cp->path, '/'))
            snprintf(err, errsz, "cannot open plugin '%s': %s; expected the path of a plugin's "
                     "shared object", cp->path, strerror(errno));
        else
            snprintf(err, errsz, "no plugin '%s' (%s.so) in the plugin directory; expected a "
                     "shipped plugin's name (filter, enrich, mask, avro) or a path with a '/'",
                     cp->path, cp->path);
        return NULL;
    }
    for (struct module *m = l->modules; m; m = m->next) {
        if (strcmp(m->path, real) == 0)
            return m;
    }
    /* Messages name the file, not the directory: the same on every machine. */
    const char *base = strrchr(real, '/') ? strrchr(real, '/') + 1 : real;
    void *dl = dlopen(real, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        const char *why = dlerror();
        snprintf(err, errsz, "cannot load plugin %s: %s", base, why ? why : "unknown error");
        return NULL;
    }
    const uint32_t *abi = dlsym(dl, "eb_plugin_abi_version");
    const struct eb_plugin_descriptor *d = dlsym(dl, "eb_plugin_descriptor");
    if (!abi || !d) {
        snprintf(err, errsz,
                 "%s has no symbol %s; expected a plugin built with expiry_bridge/plugin.h "
                 "(EB_PLUGIN_DEFINE)",
                 base, !abi ? "eb_plugin_abi_version" : "eb_plugin_descriptor");
        goto err_close;
    }
    if (*abi != EB_PLUGIN_ABI_VERSION) {
        snprintf(err, errsz, "%s was built for plugin ABI %u: expected %u, found %u", base,
                 (unsigned)*abi, (unsigned)EB_PLUGIN_ABI_VERSION, (unsigned)*abi);
        goto err_close;
    }
    if (d->struct_size != sizeof(struct eb_plugin_descriptor)) {
        snprintf(err, errsz, "%s: descriptor size: expected %zu, found %u", base,
                 sizeof(struct eb_plugin_descriptor), (unsigned)d->struct_size);
        goto err_close;
    }
    if (!name_valid(d->name)) {
        snprintf(err, errsz, "%s: the descriptor's name is not 1 to 64 of [a-z0-9_-]", base);
        goto err_close;
    }
    bool entry_ok = d->kind == EB_PLUGIN_TRANSFORM ? d->transform != NULL
                    : d->kind == EB_PLUGIN_ENCODER ? d->encode != NULL
                                                   : false;
    if (!entry_ok) {
        snprintf(err, errsz,
                 "%s (%s): kind %u without its entry point; expected a transform with "
                 "transform() or an encoder with encode()",
                 base, d->name, (unsigned)d->kind);
        goto err_close;
    }
    struct module *m = calloc(1, sizeof(*m));
    if (!m || !(m->path = strdup(real))) {
        free(m);
        snprintf(err, errsz, "out of memory");
        goto err_close;
    }
    m->dl = dl;
    m->d = d;
    m->next = l->modules;
    l->modules = m;
    return m;

err_close:
    dlclose(dl);
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* The check hook                                                           */
/* ------------------------------------------------------------------------ */

static void reportf(eb_config_report_fn *report, void *rctx, struct eb_srcpos pos,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void reportf(eb_config_report_fn *report, void *rctx, struct eb_srcpos pos,
                    const char *fmt, ...) {
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    report(rctx, pos, msg);
}

/* Run cp's check() with settings handles reporting to cc. -1 when out of
 * memory (reported). */
static int run_check(const eb_plugin_loader_t *l, const struct module *m,
                     const struct eb_config_plugin *cp, struct check_ctx *cc) {
    struct eb_plugin_ctx ctx = {.log = l->log, .instance = cp->name};
    struct eb_plugin_settings *settings = settings_new(cp, cc);
    if (!settings) {
        settings_report(cc, "plugins", cp->pos, "out of memory checking the settings");
        return -1;
    }
    int rc = m->d->check(&host, &ctx, settings);
    free(settings);
    return rc;
}

int eb_plugin_loader_check_config(const struct eb_config *cfg, eb_config_report_fn *report,
                                  void *rctx, void *opaque) {
    eb_plugin_loader_t *l = opaque;
    struct module **mods = calloc(cfg->nplugins ? cfg->nplugins : 1, sizeof(*mods));
    int bad = 0;
    if (!mods)
        return EB_ENOMEM;
    for (size_t i = 0; i < cfg->nplugins; i++) {
        const struct eb_config_plugin *cp = &cfg->plugins[i];
        char err[PATH_MAX + 512];
        if (!(mods[i] = module_open(l, cfg, cp, err, sizeof(err)))) {
            reportf(report, rctx, cp->path_pos, "invalid plugins[%zu].path: %s", i, err);
            bad++;
            continue;
        }
        for (size_t j = 0; j < i; j++) {
            if (mods[j] && mods[j] != mods[i] && strcmp(mods[j]->d->name, mods[i]->d->name) == 0) {
                reportf(report, rctx, cp->path_pos,
                        "invalid plugins[%zu].path: duplicate plugin name '%s': %s and %s (of "
                        "plugins[%zu]) both carry it; expected each plugin once",
                        i, mods[i]->d->name, strrchr(mods[i]->path, '/') + 1,
                        strrchr(mods[j]->path, '/') + 1, j);
                mods[i] = NULL;
                bad++;
                break;
            }
        }
        if (!mods[i] || !mods[i]->d->check)
            continue;
        struct check_ctx cc = {.report = report, .rctx = rctx, .cp = cp, .index = i};
        int rc = run_check(l, mods[i], cp, &cc);
        if (rc != 0 && cc.nerr == 0) {
            struct eb_srcpos pos = cp->settings ? cp->settings->pos : cp->pos;
            reportf(report, rctx, pos,
                    "invalid plugins[%zu].settings: plugin '%s' refused them without saying why",
                    i, mods[i]->d->name);
        }
        bad += rc != 0 || cc.nerr;
    }
    /* Each route: its transforms, then at most one encoder. */
    for (size_t r = 0; r < cfg->nroutes && !bad; r++) {
        const struct eb_config_route *rt = &cfg->routes[r];
        for (size_t i = 0; i < rt->nplugins; i++) {
            const struct module *m = mods[rt->plugin_idx[i]];
            if (!m || m->d->kind != EB_PLUGIN_ENCODER || i + 1 == rt->nplugins)
                continue;
            reportf(report, rctx, rt->plugin_pos[i],
                    "invalid routes[%zu].plugins: '%s' is an encoder (%s) and must come last; "
                    "expected transforms first, then at most one encoder",
                    r, rt->plugins[i], m->d->name);
            bad++;
            break;
        }
    }
    free(mods);
    return bad ? EB_ECONFIG : 0;
}

/* ------------------------------------------------------------------------ */
/* Instances and sets                                                       */
/* ------------------------------------------------------------------------ */

/* The settings as text, for comparing two configurations' instances. */
static void node_text(const struct eb_config_node *n, struct eb_buf *b) {
    if (!n) {
        eb_buf_puts(b, "~");
        return;
    }
    if (n->type == EB_NODE_SCALAR) {
        eb_json_string(b, n->str, strlen(n->str));
        return;
    }
    eb_buf_putc(b, n->type == EB_NODE_MAP ? '{' : '[');
    for (size_t i = 0; i < n->nkids; i++) {
        if (i)
            eb_buf_putc(b, ',');
        if (n->type == EB_NODE_MAP) {
            eb_json_string(b, n->keys[i], strlen(n->keys[i]));
            eb_buf_putc(b, ':');
        }
        node_text(n->kids[i], b);
    }
    eb_buf_putc(b, n->type == EB_NODE_MAP ? '}' : ']');
}

static void instance_release(struct instance *in) {
    if (!in || --in->refs > 0)
        return;
    if (in->m->d->destroy && in->state)
        in->m->d->destroy(in->state);
    free(in->name);
    free(in->identity);
    free(in);
}

static struct instance *instance_new(eb_plugin_loader_t *l, const struct eb_config *cfg,
                                     size_t idx, const char *identity, char *errstr,
                                     size_t errstr_size) {
    const struct eb_config_plugin *cp = &cfg->plugins[idx];
    char err[PATH_MAX + 512] = "";
    struct module *m = module_open(l, cfg, cp, err, sizeof(err));
    if (!m) {
        eb_error_set(errstr, errstr_size, EB_ECONFIG, "plugin '%s': %s", cp->name, err);
        return NULL;
    }
    struct instance *in = calloc(1, sizeof(*in));
    if (!in || !(in->name = strdup(cp->name)) || !(in->identity = strdup(identity))) {
        if (in)
            free(in->name);
        free(in);
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        return NULL;
    }
    in->m = m;
    in->refs = 1;
    in->ctx = (struct eb_plugin_ctx){.log = l->log, .instance = in->name};
    if (m->d->init) {
        /* settings_error() during init lands in err (init re-checks). */
        struct check_ctx cc = {.cp = cp, .index = idx, .init_err = err, .init_err_size = 512};
        struct eb_plugin_settings *settings = settings_new(cp, &cc);
        err[0] = '\0';
        int rc = settings ? m->d->init(&host, &in->ctx, settings, &in->state, err, 512) : -1;
        if (!settings)
            snprintf(err, 512, "out of memory");
        free(settings);
        if (rc != 0) {
            eb_error_set(errstr, errstr_size, EB_ECONFIG, "plugin '%s' (%s) did not start: %s",
                         cp->name, m->d->name, err[0] ? err : "init failed");
            free(in->name);
            free(in->identity);
            free(in);
            return NULL;
        }
    }
    if (l->metrics) {
        const char *lab[] = {cp->name};
        in->errors = eb_metrics_series(l->f_errors, lab);
        in->dropped = eb_metrics_series(l->f_dropped, lab);
    }
    return in;
}

static void chain_free(struct eb_plugin_chain *c) {
    if (!c)
        return;
    free(c->transforms);
    free(c);
}

void eb_plugin_set_destroy(eb_plugin_set_t *s) {
    if (!s)
        return;
    for (size_t r = 0; r < s->nroutes; r++)
        chain_free(s->chains[r]);
    free(s->chains);
    for (size_t i = 0; i < s->ninst; i++)
        instance_release(s->inst[i]);
    free(s->inst);
    free(s);
}

eb_plugin_set_t *eb_plugin_set_new(eb_plugin_loader_t *l, const struct eb_config *cfg,
                                   const eb_plugin_set_t *previous, char *errstr,
                                   size_t errstr_size) {
    eb_plugin_set_t *s = calloc(1, sizeof(*s));
    struct eb_buf id = EB_BUF_INIT;
    if (!s)
        goto err_oom;
    s->l = l;
    s->inst = calloc(cfg->nplugins ? cfg->nplugins : 1, sizeof(*s->inst));
    s->chains = calloc(cfg->nroutes ? cfg->nroutes : 1, sizeof(*s->chains));
    if (!s->inst || !s->chains)
        goto err_oom;
    s->nroutes = cfg->nroutes;
    for (size_t i = 0; i < cfg->nplugins; i++) {
        const struct eb_config_plugin *cp = &cfg->plugins[i];
        char file[PATH_MAX + 64];
        resolve(l, cfg, cp, file, sizeof(file));
        eb_buf_reset(&id);
        eb_buf_puts(&id, cp->name);
        eb_buf_putc(&id, '\n');
        eb_buf_puts(&id, file);
        eb_buf_putc(&id, '\n');
        node_text(cp->settings, &id);
        eb_buf_cstr(&id);
        if (!eb_buf_ok(&id))
            goto err_oom;
        struct instance *reuse = NULL;
        for (size_t j = 0; previous && j < previous->ninst && !reuse; j++) {
            if (strcmp(previous->inst[j]->identity, id.data) == 0)
                reuse = previous->inst[j];
        }
        if (reuse) {
            reuse->refs++;
            s->inst[i] = reuse;
        } else if (!(s->inst[i] = instance_new(l, cfg, i, id.data, errstr, errstr_size))) {
            goto err_free_set;
        }
        s->ninst = i + 1;
    }
    for (size_t r = 0; r < cfg->nroutes; r++) {
        const struct eb_config_route *rt = &cfg->routes[r];
        if (!rt->nplugins)
            continue;
        struct eb_plugin_chain *c = calloc(1, sizeof(*c));
        if (!c || !(c->transforms = calloc(rt->nplugins, sizeof(*c->transforms)))) {
            free(c);
            goto err_oom;
        }
        s->chains[r] = c;
        for (size_t i = 0; i < rt->nplugins; i++) {
            struct instance *in = s->inst[rt->plugin_idx[i]];
            if (in->m->d->kind == EB_PLUGIN_ENCODER)
                c->encoder = in;
            else
                c->transforms[c->ntransforms++] = in;
        }
    }
    eb_buf_free(&id);
    return s;

err_oom:
    eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory creating the plugin instances");
err_free_set:
    eb_buf_free(&id);
    eb_plugin_set_destroy(s);
    return NULL;
}

const eb_plugin_chain_t *eb_plugin_set_chain(const eb_plugin_set_t *s, size_t route) {
    return s && route < s->nroutes ? s->chains[route] : NULL;
}

size_t eb_plugin_set_count(const eb_plugin_set_t *s) {
    return s ? s->ninst : 0;
}

const void *eb_plugin_set_instance(const eb_plugin_set_t *s, size_t i) {
    return s && i < s->ninst ? s->inst[i] : NULL;
}

/* ------------------------------------------------------------------------ */
/* One event                                                                */
/* ------------------------------------------------------------------------ */

void eb_plugin_event_init(struct eb_plugin_event *pe) {
    memset(pe, 0, sizeof(*pe));
}

void eb_plugin_event_free(struct eb_plugin_event *pe) {
    eb_buf_free(&pe->key);
    eb_buf_free(&pe->fields);
    eb_buf_free(&pe->payload);
    eb_buf_free(&pe->payload_alt);
    eb_buf_free(&pe->scratch);
    eb_buf_free(&pe->scratch2);
    eb_buf_free(&pe->hdrbuf);
    eb_buf_free(&pe->out);
}

void eb_plugin_event_begin(struct eb_plugin_event *pe, const struct eb_event *ev,
                           const char *topic, const eb_router_t *router,
                           const struct eb_match *match, const struct eb_header *route_headers,
                           size_t nroute_headers) {
    pe->ev = *ev;
    pe->topic = topic;
    pe->router = router;
    pe->match = match;
    pe->route_headers = route_headers;
    pe->nroute_headers = nroute_headers;
    pe->topic_changed = pe->key_ready = pe->headers_changed = pe->encoded = false;
    pe->id_ready = false;
    pe->failed = NULL;
    pe->reason[0] = '\0';
    pe->fields.len = 0; /* never left failed: add_field() clears a refusal */
}

static int instance_failed(struct instance *in, struct eb_plugin_event *pe) {
    pe->failed = in->name;
    if (!pe->reason[0])
        snprintf(pe->reason, sizeof(pe->reason), "%s returned an error without a reason",
                 in->m->d->name);
    eb_metrics_inc(in->errors);
    return EB_PLUGIN_ERROR;
}

int eb_plugin_chain_run(const eb_plugin_chain_t *c, struct eb_plugin_event *pe) {
    for (size_t i = 0; i < c->ntransforms; i++) {
        struct instance *in = c->transforms[i];
        int rc = in->m->d->transform(in->state, (eb_plugin_event_t *)pe);
        if (rc == EB_PLUGIN_CONTINUE)
            continue;
        if (rc == EB_PLUGIN_DROP) {
            pe->failed = in->name;
            eb_metrics_inc(in->dropped);
            return EB_PLUGIN_DROP;
        }
        return instance_failed(in, pe);
    }
    if (!c->encoder)
        return EB_PLUGIN_CONTINUE;
    eb_buf_reset(&pe->out);
    int rc = c->encoder->m->d->encode(c->encoder->state, (eb_plugin_event_t *)pe,
                                      (eb_plugin_output_t *)&pe->out);
    if (rc != 0 || !eb_buf_ok(&pe->out)) {
        if (rc == 0)
            snprintf(pe->reason, sizeof(pe->reason), "the encoded value is too large");
        return instance_failed(c->encoder, pe);
    }
    pe->encoded = true;
    return EB_PLUGIN_CONTINUE;
}

const struct eb_header *eb_plugin_event_headers(struct eb_plugin_event *pe, size_t *n) {
    if (!pe->headers_changed) {
        *n = pe->nroute_headers;
        return pe->route_headers;
    }
    for (size_t i = 0; i < pe->nhdr; i++) {
        const struct eb_plugin_header *h = &pe->hdr[i];
        pe->headers[i].name = h->own ? pe->hdrbuf.data + h->name_off : h->name;
        pe->headers[i].value = h->own ? pe->hdrbuf.data + h->value_off : h->value;
        pe->headers[i].value_len = h->value_len;
    }
    *n = pe->nhdr;
    return pe->headers;
}
