/* event.h -- one expiry (or other keyevent) to the bytes of a Kafka message:
 * CloudEvents 1.0 structured JSON (default), CloudEvents binary mode (ce_*
 * headers + data as the value), or the bare data JSON.
 *
 * The contract of the output is docs/event.md and docs/event.schema.json.
 * Output is always valid UTF-8 JSON: a key that is not valid UTF-8 is
 * written with U+FFFD replacements in "key"/"subject" and its exact bytes in
 * "key_base64".
 *
 * Pure: bytes in, bytes out, no I/O. Buffers in struct eb_encoded are reused
 * between calls, so a steady stream of events allocates nothing.
 */
#ifndef EB_EVENT_H
#define EB_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/json.h"
#include "core/router.h"

enum eb_event_format {
    EB_FORMAT_CLOUDEVENTS = 0,    /* structured: "cloudevents" */
    EB_FORMAT_CLOUDEVENTS_BINARY, /* "cloudevents-binary" */
    EB_FORMAT_JSON,               /* "json": data only */
};

enum eb_delivery { EB_DELIVERY_LIVE = 0, EB_DELIVERY_RECOVERED };

/* Everything the encoder needs. All pointers are borrowed for the call. */
struct eb_event {
    const char *event; /* keyevent name: "expired" -> type "redis.key.expired" */
    const void *key;   /* the Redis key, any bytes */
    size_t key_len;
    int db;
    const char *source;              /* CloudEvents source, e.g. "redis://cache-0:6379/0" */
    /* The master that announced it ("10.0.0.5:6379"), written as the
     * extension attribute `redisnode` when not NULL: Sentinel and Cluster,
     * where `source` names the deployment, not a node (docs/event.md). */
    const char *node;
    const char *route;               /* route name, or NULL when unrouted (written as null) */
    const struct eb_capture *params; /* captures -> data.params */
    size_t nparams;
    enum eb_delivery delivery;
    int64_t time_us;          /* when the bridge observed it, µs since the epoch */
    int64_t deadline_ms;      /* the timer's deadline, ms since the epoch; < 0: unknown (omitted) */
    bool has_payload;         /* route asked for a payload: data.payload is written */
    const char *payload_json; /* valid JSON text, or NULL for null */
    size_t payload_len;
    /* Fields plugins added to data (plugin_host.h), written last in data:
     * `,"name":value` repeated, each value one valid JSON text; NULL: none.
     * Not validated here (the plugin host validates each on the way in). */
    const char *extra_json;
    size_t extra_len;
};

/* A Kafka header. Pointers refer into the struct eb_encoded that holds it,
 * or into the caller's extra headers. */
struct eb_header {
    const char *name;
    const void *value;
    size_t value_len;
};

#define EB_EVENT_MAX_HEADERS 32

/* Output of eb_event_encode(); init with eb_event_encoded_init(), reuse, free
 * with eb_event_encoded_free(). Valid until the next encode into it. */
struct eb_encoded {
    struct eb_buf value;  /* the message value */
    struct eb_buf hdrbuf; /* storage for header values (binary mode) */
    struct eb_header headers[EB_EVENT_MAX_HEADERS];
    size_t nheaders;
    char id[33]; /* CloudEvents id: 32 lowercase hex digits */
    /* Private to event.c: the last whole second written for "time"
     * ("2026-11-24T03:40:00"), reused while events stay within it; the
     * date arithmetic is the dearest part of a timestamp. */
    int64_t time_sec; /* -1: nothing cached */
    char time_text[19];
};

void eb_event_encoded_init(struct eb_encoded *enc);
void eb_event_encoded_free(struct eb_encoded *enc);

/* Encode ev in format fmt, followed by the route's own headers (extra,
 * copied by reference: they must outlive the use of enc). Headers cost
 * producer CPU (six raise librdkafka 2.0.2's cost per message ~3x), so each
 * format sends only what its contract needs:
 *   cloudevents         one header, content-type: application/cloudevents+json;
 *                       the value is the whole CloudEvent
 *   cloudevents-binary  ce_specversion, ce_id, ce_source, ce_type, ce_time,
 *                       ce_subject and content-type: application/json; the
 *                       value is the data object
 *   json                no header; the value is the data object plus "id" and
 *                       "time" (so consumers can still deduplicate)
 * Returns 0, EB_ENOMEM, or EB_EINVAL when more than EB_EVENT_MAX_HEADERS
 * headers would result, when event or source is NULL or empty, or when
 * has_payload is set and payload_json is not one valid JSON text (UTF-8,
 * nested at most 512 deep): the output must parse everywhere. */
int eb_event_encode(const struct eb_event *ev, enum eb_event_format fmt,
                    const struct eb_header *extra, size_t nextra, struct eb_encoded *enc);

/* The CloudEvents id of ev into out (33 bytes with NUL): a 128-bit XXH3 of
 * source, db, key, event and the deadline when known, else the observation
 * time, so a live and a recovered delivery of one timer share it. */
void eb_event_id(const struct eb_event *ev, char out[33]);

/* Is p[0..n) one JSON text in well-formed UTF-8, nested at most 512 deep
 * (what a payload must be)? */
bool eb_event_json_valid(const void *p, size_t n);

/* "cloudevents", "cloudevents-binary", "json". Returns false if unknown. */
bool eb_event_format_parse(const char *s, enum eb_event_format *out);
const char *eb_event_format_name(enum eb_event_format fmt);

#endif
