/* expiry_bridge/plugin.h -- the public, versioned C ABI of expiry-bridge
 * plugins (docs/plugins.md). The only header a plugin includes.
 *
 * A plugin is a shared object that exports two symbols:
 *
 *   const uint32_t eb_plugin_abi_version;                  = EB_PLUGIN_ABI_VERSION
 *   const struct eb_plugin_descriptor eb_plugin_descriptor;  its entry points
 *
 * (EB_PLUGIN_DEFINE() below writes both.) The bridge dlopen()s it, checks
 * the ABI version, then the descriptor's struct_size, then that no other
 * loaded plugin has its name, and refuses a mismatch with "expected N,
 * found M" before any plugin code runs.
 *
 * Kinds:
 *   transform  called once per event of the routes that list it, in the
 *              route's order: may drop the event, rewrite its topic, Kafka
 *              key and headers, add fields to `data`, replace `data.payload`
 *              (e.g. masked), or fail it;
 *   encoder    at most one per route, after its transforms: writes the
 *              message value in its own encoding (e.g. Avro) instead of the
 *              CloudEvent.
 *
 * Plugins never see a host struct: events, settings, encoder outputs and
 * the host's context of an instance are opaque handles, read and changed
 * only through the host vtable (struct eb_plugin_host) the bridge hands to
 * check() and init(). Both structs end in reserved slots, so functions can
 * be added within one ABI version without changing any size or offset.
 *
 * The host keeps no per-process "current plugin": what a call is about
 * travels in its handles. A settings node knows the check it belongs to
 * (settings_error() needs nothing else); the context handle
 * (eb_plugin_ctx_t) that check() and init() receive names the instance and
 * the bridge it logs to (log() needs nothing else).
 *
 * Threading: every entry point and every event accessor runs on the
 * bridge's event-loop thread. A transform or encoder must not block (no
 * network or disk I/O per event): the loop also serves Redis, Kafka
 * delivery reports and /healthz. host->log may be called from any thread,
 * including threads the plugin starts, with the context init() received.
 *
 * Ownership: every pointer the host returns is borrowed -- an event's
 * until the entry point returns, a setting's until init()/check() returns
 * (copy what you keep). The context handle of init() stays valid until the
 * instance's destroy() returns (keep it in the state: threads may use it
 * until destroy() joins them); that of check() until check() returns. Every
 * pointer a plugin passes in is borrowed for the call: the host copies what
 * it keeps.
 *
 * Plain C99 (C++ too); nothing here depends on how the bridge is built.
 */
#ifndef EXPIRY_BRIDGE_PLUGIN_H
#define EXPIRY_BRIDGE_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped when a released descriptor or vtable member changes meaning,
 * type or offset; a plugin built for another version is refused. Adding a
 * function in a reserved slot does not bump it (check struct_size or the
 * slot for NULL before calling a newer one). */
#define EB_PLUGIN_ABI_VERSION 1u

/* Opaque handles: pointers only; never dereferenced by plugins. */
typedef struct eb_plugin_event eb_plugin_event_t;       /* one event in flight */
typedef struct eb_plugin_settings eb_plugin_settings_t; /* a node of the instance's settings */
typedef struct eb_plugin_output eb_plugin_output_t;     /* an encoder's output buffer */
typedef struct eb_plugin_ctx eb_plugin_ctx_t;           /* the host's side of one instance */

/* descriptor.kind */
#define EB_PLUGIN_TRANSFORM 1u
#define EB_PLUGIN_ENCODER   2u

/* What transform() returns. */
#define EB_PLUGIN_CONTINUE 0    /* pass the (possibly changed) event on */
#define EB_PLUGIN_DROP     1    /* drop it on purpose: counted, not an error */
#define EB_PLUGIN_ERROR    (-1) /* failed: the event costs a counted error (or goes to the
                                   route's dead_letter topic); say why with host->fail() */

/* settings_kind() */
#define EB_PLUGIN_SETTING_ABSENT 0
#define EB_PLUGIN_SETTING_SCALAR 1
#define EB_PLUGIN_SETTING_LIST   2
#define EB_PLUGIN_SETTING_MAP    3

/* log() levels */
#define EB_PLUGIN_LOG_DEBUG 0
#define EB_PLUGIN_LOG_INFO  1
#define EB_PLUGIN_LOG_WARN  2
#define EB_PLUGIN_LOG_ERROR 3

#define EB_PLUGIN_HOST_RESERVED       24
#define EB_PLUGIN_DESCRIPTOR_RESERVED 8

/* The host vtable. Owned by the bridge, valid for the life of the process
 * (keep the pointer init() receives). Read struct_size before calling a
 * member added after ABI 1's first release (none yet). Every function is
 * safe to call with the handles the host passed to the current entry point
 * only (log: with the context handle while it is valid). Return
 * conventions: int functions return 0 on success and -1 on refusal (bad
 * argument, out of memory); const char * and const void * getters return
 * NULL for "absent". */
struct eb_plugin_host {
    uint32_t struct_size; /* sizeof(struct eb_plugin_host) of the bridge */
    uint32_t abi_version; /* EB_PLUGIN_ABI_VERSION of the bridge */

    /* ---- settings (check() and init() only) -------------------------- */
    /* The instance's `settings:` is a tree of maps, lists and scalars, as
     * written in YAML with ${VAR} expanded. */
    int (*settings_kind)(const eb_plugin_settings_t *node);
    /* Scalar text, NUL-terminated; NULL when node is not a scalar. */
    const char *(*settings_string)(const eb_plugin_settings_t *node);
    /* Entries of a map or items of a list; 0 otherwise. */
    size_t (*settings_count)(const eb_plugin_settings_t *node);
    /* Item i of a list, or the value of entry i of a map; NULL past the end. */
    const eb_plugin_settings_t *(*settings_item)(const eb_plugin_settings_t *node, size_t i);
    /* Key of entry i of a map; NULL otherwise. */
    const char *(*settings_key)(const eb_plugin_settings_t *node, size_t i);
    /* The value of `key` in a map; NULL when absent (or node is not a map). */
    const eb_plugin_settings_t *(*settings_get)(const eb_plugin_settings_t *node,
                                                const char *key);
    /* Report a bad value at node's file:line:col (`check` prints
     * "FILE:LINE:COL: invalid plugins[i].settings.KEY: MSG"). Say what was
     * expected. node is a handle of this check()/init() call: the root
     * places the error at `settings:`; NULL reports nothing. Any thread,
     * one call at a time, while check()/init() runs. */
    void (*settings_error)(const eb_plugin_settings_t *node, const char *msg);
    /* The same at the key of entry i of map, for a key that is wrong
     * itself (unknown, or not a name the plugin accepts): "colour: red"
     * is reported at "colour", not at "red". Nothing when map is not a map
     * or i is past its end. */
    void (*settings_key_error)(const eb_plugin_settings_t *map, size_t i, const char *msg);

    /* ---- logging (any thread) ---------------------------------------- */
    /* One JSON log line naming the instance of ctx, in the log of the
     * bridge that created it; msg is copied. ctx: the handle check() or
     * init() received, while it is valid. */
    void (*log)(const eb_plugin_ctx_t *ctx, int level, const char *msg);

    /* ---- reading an event -------------------------------------------- */
    const char *(*event_name)(const eb_plugin_event_t *ev); /* "expired" */
    const void *(*key)(const eb_plugin_event_t *ev, size_t *len); /* the Redis key, any bytes */
    int (*db)(const eb_plugin_event_t *ev);
    const char *(*route)(const eb_plugin_event_t *ev); /* NULL: unrouted */
    size_t (*param_count)(const eb_plugin_event_t *ev); /* captures of the route's match */
    const char *(*param_name)(const eb_plugin_event_t *ev, size_t i);
    const char *(*param_value)(const eb_plugin_event_t *ev, size_t i, size_t *len);
    /* The capture `name`; NULL when the pattern has none of that name. */
    const char *(*param)(const eb_plugin_event_t *ev, const char *name, size_t *len);
    const char *(*source)(const eb_plugin_event_t *ev);      /* "redis://host:6379/0" */
    const char *(*id)(const eb_plugin_event_t *ev);          /* 32 hex digits */
    int64_t (*time_us)(const eb_plugin_event_t *ev);         /* observed, µs since the epoch */
    int64_t (*deadline_ms)(const eb_plugin_event_t *ev);     /* < 0: unknown */
    const char *(*delivery)(const eb_plugin_event_t *ev);    /* "live" or "recovered" */
    /* data.payload as JSON text (after earlier plugins' set_payload), or
     * NULL when the route has none. */
    const char *(*payload)(const eb_plugin_event_t *ev, size_t *len);
    /* Any field of `data` by dotted path, as JSON text: "key", "db",
     * "params.order_id", "payload.customer.email", or "ext.NAME", a field
     * an earlier plugin added. NULL when absent. */
    const char *(*field)(const eb_plugin_event_t *ev, const char *path, size_t *len);
    const char *(*topic)(const eb_plugin_event_t *ev);                /* current topic */
    const void *(*kafka_key)(const eb_plugin_event_t *ev, size_t *len); /* current key */
    size_t (*header_count)(const eb_plugin_event_t *ev); /* route + plugin headers */
    const char *(*header_name)(const eb_plugin_event_t *ev, size_t i);
    const void *(*header_value)(const eb_plugin_event_t *ev, size_t i, size_t *len);

    /* ---- changing an event (transforms; encoders may set headers) ----- */
    /* A valid Kafka topic name (1..249 of [A-Za-z0-9._-]). */
    int (*set_topic)(eb_plugin_event_t *ev, const char *topic);
    int (*set_kafka_key)(eb_plugin_event_t *ev, const void *key, size_t len);
    /* Add, or replace the value of, a header. content-type and ce_* are
     * refused (they belong to the format). */
    int (*set_header)(eb_plugin_event_t *ev, const char *name, const void *value, size_t len);
    int (*remove_header)(eb_plugin_event_t *ev, const char *name);
    /* Add `name` to `data.ext`, the event's extension object
     * (docs/event.md), with a value given as one JSON text (e.g.
     * "\"eu-west\"", "42", "{\"a\":1}"); field("ext.NAME") reads it back.
     * Core members of data are never touched. Refused: a name ext already
     * has, a name of 0 or more than 128 bytes or with a '.', invalid JSON. */
    int (*add_field)(eb_plugin_event_t *ev, const char *name, const char *json, size_t len);
    /* Replace data.payload with one JSON text (routes with a payload). */
    int (*set_payload)(eb_plugin_event_t *ev, const char *json, size_t len);
    /* Why this event failed (with EB_PLUGIN_ERROR); copied, cut at 200 bytes. */
    void (*fail)(eb_plugin_event_t *ev, const char *reason);

    /* ---- encoder output ---------------------------------------------- */
    /* Append bytes to the message value. */
    int (*output_write)(eb_plugin_output_t *out, const void *data, size_t len);

    void (*reserved[EB_PLUGIN_HOST_RESERVED])(void); /* NULL until a later release fills one */
};

/* What a plugin exports as `eb_plugin_descriptor`. Entry points the kind
 * does not use are NULL. */
struct eb_plugin_descriptor {
    uint32_t struct_size; /* sizeof(struct eb_plugin_descriptor): checked by the loader */
    uint32_t kind;        /* EB_PLUGIN_TRANSFORM or EB_PLUGIN_ENCODER */
    const char *name;     /* unique among loaded plugins: [a-z0-9_-]{1,64} */
    const char *version;  /* the plugin's own version, for logs */
    const char *description;

    /* Validate an instance's settings without side effects (no I/O): runs
     * at `expiry-bridge check` and before every init(). Report each
     * problem with host->settings_error() or host->settings_key_error().
     * ctx is valid until check() returns. Returns 0 when valid, -1
     * otherwise. May be NULL (any settings accepted). */
    int (*check)(const struct eb_plugin_host *host, const eb_plugin_ctx_t *ctx,
                 const eb_plugin_settings_t *settings);

    /* Create an instance from settings that passed check(). *state is
     * handed to every later call; keep host and ctx in it to log. ctx is
     * valid until destroy() returns (or until init() returns, when it
     * fails). May start threads (they may log with ctx, must not touch
     * events). Must not block for long: it also runs on reload, on the
     * loop thread. Returns 0, or -1 with a reason in errstr. */
    int (*init)(const struct eb_plugin_host *host, const eb_plugin_ctx_t *ctx,
                const eb_plugin_settings_t *settings, void **state, char *errstr,
                size_t errstr_size);

    /* Transforms: one event. Returns EB_PLUGIN_CONTINUE, _DROP or _ERROR. */
    int (*transform)(void *state, eb_plugin_event_t *ev);

    /* Encoders: write the value of ev into out with host->output_write().
     * Returns 0, or EB_PLUGIN_ERROR (with host->fail()). */
    int (*encode)(void *state, eb_plugin_event_t *ev, eb_plugin_output_t *out);

    /* Free an instance: after its last event, on the loop thread (a reload
     * that drops the instance, or shutdown). Join threads here. */
    void (*destroy)(void *state);

    void (*reserved[EB_PLUGIN_DESCRIPTOR_RESERVED])(void); /* NULL */
};

/* ---- layout guards: a change here is an ABI break --------------------- */
#if defined(__cplusplus) && __cplusplus >= 201103L
#define EB_PLUGIN_STATIC_ASSERT(c, m) static_assert(c, m)
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define EB_PLUGIN_STATIC_ASSERT(c, m) _Static_assert(c, m)
#else
#define EB_PLUGIN_STATIC_ASSERT_2(c, l) typedef char eb_plugin_static_assert_##l[(c) ? 1 : -1]
#define EB_PLUGIN_STATIC_ASSERT_1(c, l) EB_PLUGIN_STATIC_ASSERT_2(c, l)
#define EB_PLUGIN_STATIC_ASSERT(c, m)   EB_PLUGIN_STATIC_ASSERT_1(c, __LINE__)
#endif

#define EB_PLUGIN_PTR sizeof(void *)
EB_PLUGIN_STATIC_ASSERT(offsetof(struct eb_plugin_descriptor, name) == 8,
                        "descriptor: name follows two uint32_t");
EB_PLUGIN_STATIC_ASSERT(offsetof(struct eb_plugin_descriptor, check) == 8 + 3 * EB_PLUGIN_PTR,
                        "descriptor: check is the 4th pointer");
EB_PLUGIN_STATIC_ASSERT(offsetof(struct eb_plugin_descriptor, init) == 8 + 4 * EB_PLUGIN_PTR,
                        "descriptor: init is the 5th pointer");
EB_PLUGIN_STATIC_ASSERT(offsetof(struct eb_plugin_descriptor, destroy) == 8 + 7 * EB_PLUGIN_PTR,
                        "descriptor: destroy is the 8th pointer");
EB_PLUGIN_STATIC_ASSERT(sizeof(struct eb_plugin_descriptor) ==
                            8 + (8 + EB_PLUGIN_DESCRIPTOR_RESERVED) * EB_PLUGIN_PTR,
                        "descriptor: 8 members and the reserved slots, no padding");
EB_PLUGIN_STATIC_ASSERT(offsetof(struct eb_plugin_host, settings_kind) == 8,
                        "host: functions start after two uint32_t");
EB_PLUGIN_STATIC_ASSERT(offsetof(struct eb_plugin_host, settings_key_error) ==
                            8 + 7 * EB_PLUGIN_PTR,
                        "host: settings_key_error is the 8th function");
EB_PLUGIN_STATIC_ASSERT(offsetof(struct eb_plugin_host, log) == 8 + 8 * EB_PLUGIN_PTR,
                        "host: log is the 9th function");
EB_PLUGIN_STATIC_ASSERT(offsetof(struct eb_plugin_host, event_name) == 8 + 9 * EB_PLUGIN_PTR,
                        "host: event accessors start at the 10th function");
EB_PLUGIN_STATIC_ASSERT(offsetof(struct eb_plugin_host, set_topic) == 8 + 29 * EB_PLUGIN_PTR,
                        "host: setters start at the 30th function");
EB_PLUGIN_STATIC_ASSERT(offsetof(struct eb_plugin_host, reserved) == 8 + 37 * EB_PLUGIN_PTR,
                        "host: 37 functions before the reserved slots");
EB_PLUGIN_STATIC_ASSERT(sizeof(struct eb_plugin_host) ==
                            8 + (37 + EB_PLUGIN_HOST_RESERVED) * EB_PLUGIN_PTR,
                        "host: no padding");

/* ---- exporting ---------------------------------------------------------- */
#if defined(__GNUC__)
#define EB_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define EB_PLUGIN_EXPORT
#endif

/* In one .c file of the plugin:
 *   EB_PLUGIN_DEFINE(EB_PLUGIN_TRANSFORM, "noop", "1.0.0", "does nothing",
 *                    check, init, transform, NULL, destroy);
 */
#ifdef __cplusplus
#define EB_PLUGIN_EXTERN extern "C"
#else
#define EB_PLUGIN_EXTERN
#endif
#define EB_PLUGIN_DEFINE(kind_, name_, version_, description_, check_, init_, transform_,     \
                         encode_, destroy_)                                                    \
    EB_PLUGIN_EXTERN EB_PLUGIN_EXPORT const uint32_t eb_plugin_abi_version =                   \
        EB_PLUGIN_ABI_VERSION;                                                                 \
    EB_PLUGIN_EXTERN EB_PLUGIN_EXPORT const struct eb_plugin_descriptor eb_plugin_descriptor = { \
        sizeof(struct eb_plugin_descriptor),                                                   \
        (kind_),                                                                               \
        (name_),                                                                               \
        (version_),                                                                            \
        (description_),                                                                        \
        (check_),                                                                              \
        (init_),                                                                               \
        (transform_),                                                                          \
        (encode_),                                                                             \
        (destroy_),                                                                            \
        {0}}

#ifdef __cplusplus
}
#endif

#endif
