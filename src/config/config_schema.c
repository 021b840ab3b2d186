/* config_schema.c -- the configuration key tables, value parsers, ${VAR}
 * expansion, nearest-key suggestions, and the generators of docs/config.md
 * and config/config.schema.json. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/config_schema.h"
#include "core/error.h"
#include "core/json.h"
#include "core/notify.h"

#define OFF(field)  offsetof(struct eb_config, field)
#define ROFF(field) offsetof(struct eb_config_route, field)
#define POFF(field) offsetof(struct eb_config_plugin, field)

/* ------------------------------------------------------------------------ */
/* The tables                                                               */
/* ------------------------------------------------------------------------ */

static const struct eb_config_key read_ahead_keys[] = {
    {EB_CT_COUNT, "max_events", "1000000", OFF(redis.read_ahead_max_events), 0, NULL,
     "Most notifications read from Redis and not yet routed. The bridge reads Redis as fast "
     "as it sends and routes from this buffer, so a burst waits here instead of in Redis's "
     "output buffer, where passing `client-output-buffer-limit pubsub` (32 MB by default, "
     "~400k events) costs the whole subscription. Past the bound a notification is dropped, "
     "counted (`eb_backlog_dropped_total`) and logged; the subscription survives."},
    {EB_CT_SIZE, "max_bytes", "64MiB", OFF(redis.read_ahead_max_bytes), 0, NULL,
     "Most bytes those notifications hold (keys plus about 48 bytes each). The default is "
     "twice what Redis's own default pub/sub limit holds."},
    {0},
};

static const struct eb_config_key sentinel_keys[] = {
    {EB_CT_STRING, "username", NULL, OFF(redis.sentinel_username), 0, NULL,
     "ACL user of the sentinels themselves, when they require one (Sentinel's own "
     "`user`/`requirepass`, not the masters')."},
    {EB_CT_SECRET, "password", NULL, OFF(redis.sentinel_password), 0, NULL,
     "Password of the sentinels themselves, when they require one. Write "
     "`${SENTINEL_PASSWORD}` rather than the secret itself. Never logged."},
    {0},
};

static const struct eb_config_key tls_keys[] = {
    {EB_CT_FILE, "ca_file", NULL, OFF(redis.tls_ca_file), 0, NULL,
     "PEM file of the certificate authorities that sign the servers' certificates. Default: "
     "the system's trust store. Read at start (a file that does not load stops it, naming "
     "it) and again before a new connection when it changed (docs/tls.md)."},
    {EB_CT_FILE, "cert_file", NULL, OFF(redis.tls_cert_file), 0, NULL,
     "PEM client certificate (chain), for servers that authenticate clients "
     "(`tls-auth-clients yes`). Needs `key_file`. Re-read when it changes, like `ca_file`."},
    {EB_CT_FILE, "key_file", NULL, OFF(redis.tls_key_file), 0, NULL,
     "PEM private key of `cert_file`. Never logged."},
    {EB_CT_STRING, "server_name", NULL, OFF(redis.tls_server_name), 0, NULL,
     "Name to verify the servers' certificates against and to send as SNI, for every "
     "connection. Default: the host each connection is made to as written in `redis.url` (or "
     "as a sentinel or cluster node announces it), never the address it resolves to; an IP "
     "address is checked against the certificate's IP entries."},
    {EB_CT_BOOL, "insecure_skip_verify", "false", OFF(redis.tls_insecure_skip_verify), 0, NULL,
     "Accept any server certificate for any name. Encrypts but does not authenticate the "
     "server: for tests only; logged as a warning at every start."},
    {0},
};

static const struct eb_config_key redis_keys[] = {
    {EB_CT_REDIS_URL, "url", NULL, OFF(redis.url), EB_CK_REQUIRED, NULL,
     "Where Redis is; the scheme names the topology. Standalone: "
     "`redis://[user[:password]@]host[:port][/db]` (one master; a replica is refused). "
     "Sentinel: `redis-sentinel://[user[:password]@]s1[:port],s2[:port]/MASTER[/db]` (the "
     "sentinels, port 26379 by default, and the name they monitor; the bridge follows the "
     "master they name through failovers). Cluster: "
     "`redis-cluster://[user[:password]@]n1[:port],n2[:port]` (seed nodes; every master is "
     "found from them and subscribed). `rediss`, `rediss-sentinel`, `rediss-cluster`: the "
     "same over TLS (`redis.tls`). The user and password are the masters'; percent-encode "
     "`@`, `:` and `%` in them. A `/db` selects that one database and may only be used when "
     "`databases` is not given."},
    {EB_CT_STRING, "username", NULL, OFF(redis.username), 0, NULL,
     "ACL user name; overrides a user given in `url`."},
    {EB_CT_SECRET, "password", NULL, OFF(redis.password), 0, NULL,
     "Password (AUTH); overrides a password given in `url`. Write `${REDIS_PASSWORD}` rather "
     "than the secret itself. Never logged or printed."},
    {EB_CT_DATABASES, "databases", "all", OFF(redis.all_databases), 0, NULL,
     "Databases whose keyevents are routed: `all`, or a list such as `[0, 3]`."},
    {EB_CT_BOOL, "configure_notifications", "true", OFF(redis.configure_notifications), 0, NULL,
     "At connect, add the `notify-keyspace-events` flags the routes need with `CONFIG SET` "
     "(never removing a flag; Redis forgets them on restart). Set to false on managed Redis "
     "that forbids `CONFIG` and configure the flags there."},
    {EB_CT_STRING, "source", NULL, OFF(redis.source), 0, NULL,
     "CloudEvents `source` of the events, without the database; the database number is "
     "appended per event (`redis://cache-0:6379/0`). Default: `redis://HOST:PORT` from `url`."},
    {EB_CT_DURATION, "connect_timeout", "5s", OFF(redis.connect_timeout_ms), EB_CK_NONZERO, NULL,
     "Give up on a connection attempt after this long and retry with backoff."},
    {EB_CT_DURATION, "heartbeat_interval", "1s", OFF(redis.heartbeat_interval_ms), EB_CK_NONZERO,
     NULL,
     "How often the subscriber connection is checked (a subscribed connection answers no "
     "PING, so the bridge publishes on a heartbeat channel and waits for it)."},
    {EB_CT_DURATION, "heartbeat_timeout", "5s", OFF(redis.heartbeat_timeout_ms), EB_CK_NONZERO,
     NULL,
     "A connection whose heartbeat has not come back after this long is dropped and "
     "re-established. Must be longer than `heartbeat_interval`."},
    {EB_CT_DURATION, "reconnect_min", "100ms", OFF(redis.reconnect_min_ms), EB_CK_NONZERO, NULL,
     "First delay of the capped exponential backoff (with jitter) between reconnects."},
    {EB_CT_DURATION, "reconnect_max", "10s", OFF(redis.reconnect_max_ms), EB_CK_NONZERO, NULL,
     "Cap of the reconnect backoff. At least `reconnect_min`."},
    {EB_CT_DURATION, "topology_interval", "1s", OFF(redis.topology_interval_ms), EB_CK_NONZERO,
     NULL,
     "How often every subscribed node is asked for its `ROLE` (a master demoted by a "
     "failover keeps its subscribers connected and goes silent; only this tells) and, on "
     "Cluster, which masters serve which slots (`CLUSTER SHARDS`). A failover is noticed "
     "within this long; it is re-checked at once on every disconnect."},
    {EB_CT_SECTION, "sentinel", NULL, 0, 0, sentinel_keys,
     "Credentials of the sentinels themselves (`redis-sentinel://` only)."},
    {EB_CT_SECTION, "tls", NULL, 0, 0, tls_keys,
     "TLS settings of `rediss://`, `rediss-sentinel://` and `rediss-cluster://` URLs."},
    {EB_CT_SECTION, "read_ahead", NULL, 0, 0, read_ahead_keys,
     "Bound on notifications read from Redis and not yet routed (applied on reload too)."},
    {0},
};

static const struct eb_config_key queue_keys[] = {
    {EB_CT_COUNT, "max_events", "100000", OFF(kafka.queue_max_events), 0, NULL,
     "Most events awaiting Kafka's acknowledgement. While Kafka is down, events wait here; "
     "past the bound, new events are dropped, counted and logged loudly (Redis is never "
     "blocked: a subscriber that stops reading is disconnected by Redis)."},
    {EB_CT_SIZE, "max_bytes", "256MiB", OFF(kafka.queue_max_bytes), 0, NULL,
     "Most bytes of events awaiting acknowledgement; the same policy as `max_events`."},
    {0},
};

static const struct eb_config_key kafka_keys[] = {
    {EB_CT_BROKERS, "brokers", NULL, OFF(kafka.brokers), EB_CK_REQUIRED, NULL,
     "Bootstrap brokers, `host:port[,host:port...]` (librdkafka `bootstrap.servers`)."},
    {EB_CT_CLIENT_PROPS, "client", NULL, OFF(kafka.client), 0, NULL,
     "librdkafka producer properties passed through as strings, e.g. `{ compression.type: "
     "lz4, linger.ms: 5 }`. Each is checked by librdkafka at load. Properties the bridge "
     "sets itself are refused: `bootstrap.servers` (use `brokers`), `enable.idempotence`, "
     "`acks` (its guarantees need both) and the queue bounds (use `queue`)."},
    {EB_CT_SECTION, "queue", NULL, 0, 0, queue_keys,
     "Bound on events accepted from Redis and not yet acknowledged by Kafka."},
    {EB_CT_DURATION, "drain_timeout", "20s", OFF(kafka.drain_timeout_ms), 0, NULL,
     "On SIGTERM, wait at most this long for in-flight events to be acknowledged. Keep it "
     "below the pod's termination grace period."},
    {0},
};

static const struct eb_config_key route_keys[] = {
    {EB_CT_ROUTE_NAME, "name", NULL, ROFF(name), EB_CK_REQUIRED, NULL,
     "Unique name of the route (letters, digits, `.`, `_`, `-`); appears in events "
     "(`data.route`), metrics and logs."},
    {EB_CT_PATTERN, "match", NULL, ROFF(match), EB_CK_REQUIRED, NULL,
     "Key pattern: literal text, `{name}` captures (one or more bytes up to the next literal "
     "text; at the end, the rest of the key), a trailing `*` (any remainder), `{{`/`}}` for "
     "braces. The longest literal prefix wins; two routes with the same literal prefix and a "
     "shared event are an error."},
    {EB_CT_EVENTS, "events", "[expired]", ROFF(events), 0, NULL,
     "Redis keyevents this route takes, e.g. `[expired, evicted]`."},
    {EB_CT_TOPIC, "topic", NULL, ROFF(topic), EB_CK_REQUIRED, NULL,
     "Kafka topic the events are produced to."},
    {EB_CT_TEMPLATE, "key", NULL, ROFF(key), 0, NULL,
     "Kafka message key template: text with `{capture}`, `{key}`, `{db}`, `{event}`, "
     "`{route}`. Default: the Redis key. Events of one entity share a partition when they "
     "share a key, e.g. `{order_id}`."},
    {EB_CT_FORMAT, "format", "cloudevents", ROFF(format), 0, NULL,
     "Message encoding: `cloudevents` (structured JSON, one content-type header), "
     "`cloudevents-binary` (`ce_*` headers, data as the value) or `json` (the data alone)."},
    {EB_CT_HEADERS, "headers", NULL, ROFF(headers), 0, NULL,
     "Extra Kafka headers, `{ name: value }`. Each header costs producer CPU, so none is sent "
     "unless asked for. `content-type` and `ce_*` belong to the format and are refused."},
    {EB_CT_LEDGER, "ledger", "off", ROFF(ledger), 0, NULL,
     "Deadline ledger (durable timers): `off`, `armed` (the application arms timers with the "
     "shipped Redis Functions) or `observed` (the bridge records deadlines itself)."},
    {EB_CT_TEMPLATE, "payload", NULL, ROFF(payload), 0, NULL,
     "Companion key template, e.g. `{key}:payload`: its value is embedded in `data.payload` "
     "and the key deleted after delivery."},
    {EB_CT_PLUGIN_REFS, "plugins", NULL, ROFF(plugins), 0, NULL,
     "Plugin instances (top-level `plugins`) each event of this route passes through, in "
     "order: transforms first, then at most one encoder (docs/plugins.md)."},
    {EB_CT_TOPIC, "dead_letter", NULL, ROFF(dead_letter), 0, NULL,
     "Topic for events a plugin of this route failed: they go there as the plain CloudEvent "
     "with an `eb-plugin-error` header, counted. Default: such events are dropped and counted, "
     "except ledgered timers, which stay in the ledger and are retried (docs/plugins.md)."},
    {0},
};

static const struct eb_config_key plugin_keys[] = {
    {EB_CT_ROUTE_NAME, "name", NULL, POFF(name), EB_CK_REQUIRED, NULL,
     "Unique name of this instance (letters, digits, `.`, `_`, `-`): routes list it in their "
     "`plugins`, and logs and metrics name it."},
    {EB_CT_STRING, "path", NULL, POFF(path), EB_CK_REQUIRED, NULL,
     "A shipped plugin by name (`filter`, `enrich`, `mask`, `avro`: `<plugin_dir>/<name>.so`), "
     "or the path of a plugin's shared object (relative paths start at the config file's "
     "directory)."},
    {EB_CT_SETTINGS, "settings", NULL, POFF(settings), 0, NULL,
     "The instance's settings, checked by the plugin itself at `check` time (each plugin's "
     "README lists its keys)."},
    {0},
};

static const struct eb_config_key unrouted_keys[] = {
    {EB_CT_TOPIC, "topic", NULL, OFF(unrouted_topic), EB_CK_REQUIRED, NULL,
     "Topic for events whose key matched no route."},
    {EB_CT_FORMAT, "format", "cloudevents", OFF(unrouted_format), 0, NULL,
     "Message encoding of unrouted events (as a route's `format`)."},
    {0},
};

static const struct eb_config_key ledger_keys[] = {
    {EB_CT_STRING, "key_prefix", "\"expiry-bridge:ledger:\"", OFF(ledger.key_prefix), 0, NULL,
     "Names the ledgers: a route's ledger is the sorted set `<key_prefix>{<route name>}` (a "
     "Redis Cluster hash tag, see docs/ledger.md), its claims `<ledger>:claims`. Applications "
     "that arm timers pass this name to `FCALL eb1_arm`."},
    {EB_CT_DURATION, "sweep_interval", "1s", OFF(ledger.sweep_interval_ms), EB_CK_NONZERO, NULL,
     "How often the ledger is swept for overdue timers: a timer whose notification was lost "
     "(or that Redis has not expired yet) is delivered within about this long after "
     "`sweep_grace`."},
    {EB_CT_DURATION, "sweep_grace", "250ms", OFF(ledger.sweep_grace_ms), 0, NULL,
     "A timer is swept only when its deadline is at least this far past, so timers whose live "
     "notification is on its way cost no extra Redis work. Less than `sweep_interval`."},
    {EB_CT_COUNT, "sweep_batch", "500", OFF(ledger.sweep_batch), 0, NULL,
     "Timers one sweep step reads (and keys one observed-mode `SCAN` step visits): bounds the "
     "work per step; a full step is followed at once by the next. At most 10000."},
    {EB_CT_DURATION, "claim_ttl", "10s", OFF(ledger.claim_ttl_ms), EB_CK_NONZERO, NULL,
     "A bridge claims a timer before producing it, so no other replica (or its own sweep) "
     "produces it too; claims are renewed while Kafka has not confirmed. After a crash, "
     "another bridge takes the timer over once its claim ran out. At least 1s."},
    {EB_CT_DURATION, "remember_delivered", "30s", OFF(ledger.remember_delivered_ms), EB_CK_NONZERO,
     NULL,
     "How long a delivered timer is remembered, so a late notification of it (another "
     "replica's, or the one a sweep caused) is recognised and not produced again. Costs Redis "
     "memory: about 100 bytes per timer delivered in this window."},
    {EB_CT_COUNT, "buckets", "1", OFF(ledger.buckets), 0, NULL,
     "Ledgers per `armed` route: 1 keeps one ledger `<key_prefix>{<route>}`; N > 1 splits "
     "it into `<key_prefix>{<route>:<b>}` for b in 0..N-1, and a timer key names its bucket "
     "in its hash tag (`order:{<route>:<b>}:7`); the route's own ledger is still swept. On "
     "Redis Cluster use e.g. 16-64 so a route's timers spread over the masters "
     "(docs/ledger.md, \"Redis Cluster\"). Raise it, never lower it: buckets at or above a "
     "lower N are no longer swept. 1 to 1024; `observed` routes ignore it."},
    {0},
};

static const struct eb_config_key coordination_keys[] = {
    {EB_CT_BOOL, "enabled", "false", OFF(coordination.enabled), 0, NULL,
     "Run as one of several replicas that split the work: each unit (one Redis master's "
     "notifications and ledgers) is owned by exactly one live replica, as assigned by a Kafka "
     "consumer group. Off: this replica serves every unit (one replica per deployment)."},
    {EB_CT_STRING, "group", "expiry-bridge", OFF(coordination.group), 0, NULL,
     "The Kafka consumer group the replicas join: the same on every replica of one "
     "deployment, different between deployments on one Kafka."},
    {EB_CT_TOPIC, "topic", "expiry-bridge.units", OFF(coordination.topic), 0, NULL,
     "The control topic whose partition i stands for unit i. Nothing is written to it. The "
     "bridge creates it (and adds partitions as masters are added) when it may; otherwise "
     "create it with at least as many partitions as Redis masters."},
    {EB_CT_DURATION, "session_timeout", "6s", OFF(coordination.session_timeout_ms),
     EB_CK_NONZERO, NULL,
     "How long the group waits for a silent replica (a crash, a network partition) before "
     "giving its units to the others: a takeover takes about this long. A replica stops "
     "producing for its units when it has not been able to confirm them for this long minus "
     "two heartbeat intervals."},
    {EB_CT_DURATION, "heartbeat_interval", "1s", OFF(coordination.heartbeat_interval_ms),
     EB_CK_NONZERO, NULL,
     "How often a replica tells the group it is alive and confirms its units. Less than a "
     "third of `session_timeout`."},
    {EB_CT_DURATION, "handover_grace", "5s", OFF(coordination.handover_grace_ms), 0, NULL,
     "On SIGTERM a replica leaves the group at once, so the others take its units, and reads "
     "each unit on until the next owner's handover marker comes through on that master "
     "(docs/operations.md): the stream passes with neither gap nor copy. This is the longest "
     "it waits; a unit nobody took over by then stops being read."},
    {0},
};

static const struct eb_config_key http_keys[] = {
    {EB_CT_LISTEN, "listen", "\"\"", OFF(http_listen), 0, NULL,
     "Address of the HTTP server for `/metrics`, `/healthz` and `/readyz`, e.g. "
     "`0.0.0.0:9464`; empty: no server."},
    {0},
};

static const struct eb_config_key log_keys[] = {
    {EB_CT_LOG_LEVEL, "level", "info", OFF(log_level), 0, NULL,
     "Least severe level written: `debug`, `info`, `warn` or `error`."},
    {EB_CT_DURATION, "stats_interval", "60s", OFF(stats_interval_ms), 0, NULL,
     "How often a line of counters is logged; `0s` turns it off."},
    {0},
};

const struct eb_config_key eb_config_schema[] = {
    {EB_CT_SECTION, "redis", NULL, 0, EB_CK_REQUIRED, redis_keys,
     "Where keyevent notifications come from."},
    {EB_CT_SECTION, "kafka", NULL, 0, EB_CK_REQUIRED, kafka_keys, "Where events go."},
    {EB_CT_ROUTES, "routes", NULL, OFF(routes), 0, route_keys,
     "Routes from Redis keys to Kafka topics, a list. At least one, unless `unrouted` has a "
     "topic."},
    {EB_CT_UNROUTED, "unrouted", "drop", OFF(unrouted_drop), 0, unrouted_keys,
     "What happens to events of a routed event type whose key matches no route: `drop` "
     "(counted in metrics) or `{ topic: NAME, format: FORMAT }`."},
    {EB_CT_SECTION, "ledger", NULL, 0, 0, ledger_keys,
     "The deadline ledger (durable timers) of routes with `ledger: armed` or `observed`, and "
     "companion payloads (docs/ledger.md)."},
    {EB_CT_SECTION, "coordination", NULL, 0, 0, coordination_keys,
     "Several replicas splitting the work without duplicating it (docs/operations.md)."},
    {EB_CT_SECTION, "http", NULL, 0, 0, http_keys, "Metrics and health endpoints."},
    {EB_CT_SECTION, "log", NULL, 0, 0, log_keys, "Logging (JSON lines on stderr)."},
    {EB_CT_PLUGINS, "plugins", NULL, OFF(plugins), 0, plugin_keys,
     "Plugin instances (docs/plugins.md), a list: each loads a shared object with its own "
     "settings; routes list the instances their events pass through."},
    {EB_CT_STRING, "plugin_dir", NULL, OFF(plugin_dir), 0, NULL,
     "Directory of the shipped plugins, found there by name. Default: the directory the "
     "bridge was installed with (`/usr/lib/expiry-bridge/plugins` in the image)."},
    {0},
};

/* ------------------------------------------------------------------------ */
/* Types                                                                    */
/* ------------------------------------------------------------------------ */

static const char *const format_choices[] = {"cloudevents", "cloudevents-binary", "json", NULL};
static const char *const ledger_choices[] = {"off", "armed", "observed", NULL};
static const char *const level_choices[] = {"debug", "info", "warn", "error", NULL};

_Static_assert(EB_FORMAT_CLOUDEVENTS == 0 && EB_FORMAT_CLOUDEVENTS_BINARY == 1 &&
                   EB_FORMAT_JSON == 2,
               "format_choices is indexed by enum eb_event_format");
_Static_assert(EB_LEDGER_OFF == 0 && EB_LEDGER_ARMED == 1 && EB_LEDGER_OBSERVED == 2,
               "ledger_choices is indexed by enum eb_ledger_mode");
_Static_assert(EB_LOG_DEBUG == 0 && EB_LOG_INFO == 1 && EB_LOG_WARN == 2 && EB_LOG_ERROR == 3,
               "level_choices is indexed by enum eb_log_level");

/* Per type: its doc name, what an error message says is expected, and its
 * JSON Schema (NULL: generated, see json_type_def()). The env alternative
 * lets typed values come from ${VAR}. */
static const struct {
    const char *name;
    const char *expected;
    const char *json;
} types[] = {
    [EB_CT_SECTION] = {"mapping", "a mapping", NULL},
    [EB_CT_ROUTES] = {"list of routes", "a list of route mappings", NULL},
    [EB_CT_UNROUTED] = {"`drop` or mapping", "drop, or a mapping such as { topic: redis.unrouted }",
                        NULL},
    [EB_CT_STRING] = {"string", "a string", "{\"type\": \"string\"}"},
    [EB_CT_SECRET] = {"secret string", "a string (write ${VAR} rather than the secret itself)",
                      "{\"type\": \"string\"}"},
    [EB_CT_BOOL] = {"boolean", "true or false",
                    "{\"anyOf\": [{\"type\": \"boolean\"}, {\"$ref\": \"#/$defs/env\"}]}"},
    [EB_CT_DURATION] = {"duration",
                        "a duration: an integer and a unit ms, s, m or h, e.g. 500ms or 5s",
                        "{\"type\": \"string\", \"pattern\": "
                        "\"^([0-9]+(ms|s|m|h)|.*\\\\$\\\\{.*)$\"}"},
    [EB_CT_SIZE] = {"size",
                    "a size: an integer and a unit B, KiB, MiB, GiB (or KB, MB, GB), e.g. 256MiB",
                    "{\"type\": \"string\", \"pattern\": "
                    "\"^([0-9]+(B|KiB|MiB|GiB|KB|MB|GB)|.*\\\\$\\\\{.*)$\"}"},
    [EB_CT_COUNT] = {"count", "a positive integer",
                     "{\"anyOf\": [{\"type\": \"integer\", \"minimum\": 1}, "
                     "{\"$ref\": \"#/$defs/env\"}]}"},
    [EB_CT_REDIS_URL] = {"Redis URL",
                         "redis://host:port[/db], redis-sentinel://s1:26379,s2:26379/MASTER or "
                         "redis-cluster://n1:6379,n2:6379 (rediss... for TLS)",
                         "{\"type\": \"string\", \"pattern\": "
                         "\"^(rediss?(-sentinel|-cluster)?://.+|.*\\\\$\\\\{.*)$\"}"},
    [EB_CT_FILE] = {"file path", "the path of a readable file", "{\"type\": \"string\"}"},
    [EB_CT_DATABASES] = {"`all` or list of integers",
                         "all, or a list of database numbers 0..65535 such as [0, 3]",
                         "{\"anyOf\": [{\"const\": \"all\"}, {\"type\": \"array\", "
                         "\"minItems\": 1, \"uniqueItems\": true, \"items\": {\"anyOf\": "
                         "[{\"type\": \"integer\", \"minimum\": 0, \"maximum\": 65535}, "
                         "{\"$ref\": \"#/$defs/env\"}]}}]}"},
    [EB_CT_BROKERS] = {"broker list", "host:port[,host:port...]",
                       "{\"type\": \"string\", \"pattern\": \"^[^\\\\s,]+(,[^\\\\s,]+)*$\"}"},
    [EB_CT_CLIENT_PROPS] = {"librdkafka properties",
                            "a mapping of librdkafka property names to scalar values",
                            "{\"type\": [\"object\", \"null\"], \"propertyNames\": "
                            "{\"minLength\": 1}, \"additionalProperties\": {\"type\": "
                            "[\"string\", \"number\", \"boolean\"]}}"},
    [EB_CT_HEADERS] = {"header mapping",
                       "a mapping of header names to scalar values, at most 25, without "
                       "content-type or ce_*",
                       "{\"type\": [\"object\", \"null\"], \"maxProperties\": 25, "
                       "\"propertyNames\": {\"minLength\": 1, \"not\": {\"pattern\": "
                       "\"^([Cc][Oo][Nn][Tt][Ee][Nn][Tt]-[Tt][Yy][Pp][Ee]$|[Cc][Ee]_)\"}}, "
                       "\"additionalProperties\": {\"type\": [\"string\", \"number\", "
                       "\"boolean\"]}}"},
    [EB_CT_ROUTE_NAME] = {"name", "a name of 1 to 255 letters, digits, '.', '_' or '-'",
                          "{\"type\": \"string\", \"pattern\": \"^[A-Za-z0-9._-]{1,255}$\"}"},
    [EB_CT_PATTERN] = {"key pattern", "a key pattern such as \"order:{order_id}\" or \"session:*\"",
                       "{\"type\": \"string\", \"minLength\": 1}"},
    [EB_CT_EVENTS] = {"list of event names", "a list of Redis keyevent names such as [expired]",
                      NULL},
    [EB_CT_TOPIC] = {"topic name",
                     "a Kafka topic name: 1 to 249 letters, digits, '.', '_' or '-', not '.' or "
                     "'..'",
                     "{\"type\": \"string\", \"anyOf\": [{\"pattern\": "
                     "\"^[A-Za-z0-9._-]{1,249}$\", \"not\": {\"enum\": [\".\", \"..\"]}}, "
                     "{\"$ref\": \"#/$defs/env\"}]}"},
    [EB_CT_TEMPLATE] = {"template",
                        "a template of text and {capture}, {key}, {db}, {event}, "
                        "{route}",
                        "{\"type\": \"string\", \"minLength\": 1}"},
    [EB_CT_FORMAT] = {"format", "cloudevents, cloudevents-binary or json", NULL},
    [EB_CT_LEDGER] = {"ledger mode", "off, armed or observed", NULL},
    [EB_CT_LOG_LEVEL] = {"log level", "debug, info, warn or error", NULL},
    [EB_CT_LISTEN] = {"host:port", "host:port such as 0.0.0.0:9464, or \"\" for no HTTP server",
                      "{\"type\": \"string\", \"pattern\": "
                      "\"^(|.+:[0-9]{1,5}|.*\\\\$\\\\{.*)$\"}"},
    [EB_CT_PLUGINS] = {"list of plugin instances", "a list of mappings with name, path and settings",
                       NULL},
    [EB_CT_SETTINGS] = {"plugin settings", "a mapping of the plugin's settings",
                        "{\"type\": [\"object\", \"null\"]}"},
    [EB_CT_PLUGIN_REFS] = {"list of plugin instance names",
                           "a list of plugin instance names such as [mask-pii, avro]",
                           "{\"type\": \"array\", \"items\": {\"$ref\": "
                           "\"#/$defs/route_name\"}}"},
};

#define NTYPES (sizeof(types) / sizeof(types[0]))

const char *eb_config_schema_type_name(enum eb_ctype t) {
    return (size_t)t < NTYPES && types[t].name ? types[t].name : "value";
}

const char *eb_config_schema_type_expected(enum eb_ctype t) {
    return (size_t)t < NTYPES && types[t].expected ? types[t].expected : "a value";
}

const char *const *eb_config_schema_type_choices(enum eb_ctype t) {
    switch (t) {
    case EB_CT_FORMAT:
        return format_choices;
    case EB_CT_LEDGER:
        return ledger_choices;
    case EB_CT_LOG_LEVEL:
        return level_choices;
    default:
        return NULL;
    }
}

/* ------------------------------------------------------------------------ */
/* Lookup and suggestions                                                   */
/* ------------------------------------------------------------------------ */

const struct eb_config_key *eb_config_schema_find(const struct eb_config_key *table,
                                                  const char *key) {
    for (; table->key; table++) {
        if (strcmp(table->key, key) == 0)
            return table;
    }
    return NULL;
}

size_t eb_config_schema_edit_distance(const char *a, const char *b) {
    enum { MAXLEN = 63 };
    size_t la = strlen(a), lb = strlen(b);
    if (la > MAXLEN || lb > MAXLEN)
        return 99;
    /* Three rows suffice for optimal string alignment. */
    size_t pp[MAXLEN + 1], prev[MAXLEN + 1], cur[MAXLEN + 1];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] != b[j - 1];
            size_t d = prev[j] + 1;
            if (cur[j - 1] + 1 < d)
                d = cur[j - 1] + 1;
            if (prev[j - 1] + cost < d)
                d = prev[j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && pp[j - 2] + 1 < d)
                d = pp[j - 2] + 1;
            cur[j] = d;
        }
        memcpy(pp, prev, (lb + 1) * sizeof(size_t));
        memcpy(prev, cur, (lb + 1) * sizeof(size_t));
    }
    return prev[lb];
}

const char *eb_config_schema_nearest(const char *word, const char *const *candidates, size_t n) {
    /* A typo is a couple of edits, or a third of a long word; beyond that
     * a suggestion is noise. */
    size_t len = strlen(word), limit = len / 3 > 2 ? len / 3 : 2, best_d = limit + 1;
    const char *best = NULL;
    for (size_t i = 0; i < n; i++) {
        size_t d = eb_config_schema_edit_distance(word, candidates[i]);
        if (d < best_d && d < strlen(candidates[i])) {
            best_d = d;
            best = candidates[i];
        }
    }
    return best;
}

const char *eb_config_schema_suggest(const struct eb_config_key *table, const char *key) {
    const char *names[64];
    size_t n = 0;
    for (; table->key && n < 64; table++)
        names[n++] = table->key;
    return eb_config_schema_nearest(key, names, n);
}

/* ------------------------------------------------------------------------ */
/* Value parsers                                                            */
/* ------------------------------------------------------------------------ */

bool eb_config_schema_parse_bool(const char *s, bool *out, const char **reason) {
    static const char *const yes[] = {"true", "True", "TRUE"};
    static const char *const no[] = {"false", "False", "FALSE"};
    for (size_t i = 0; i < 3; i++) {
        if (strcmp(s, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcmp(s, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    *reason = "not a boolean";
    return false;
}

/* Leading decimal digits of s into *v (no sign, no overflow). Returns the
 * number of digits, 0 if none or on overflow (*overflow set). */
static size_t parse_digits(const char *s, uint64_t *v, bool *overflow) {
    size_t n = 0;
    *v = 0;
    *overflow = false;
    while (s[n] >= '0' && s[n] <= '9') {
        uint64_t d = (uint64_t)(s[n] - '0');
        if (*v > (UINT64_MAX - d) / 10) {
            *overflow = true;
            return 0;
        }
        *v = *v * 10 + d;
        n++;
    }
    return n;
}

struct unit {
    const char *name;
    uint64_t mult;
};

/* Number + unit from units[]; the unit is required. */
static bool parse_with_unit(const char *s, const struct unit *units, size_t nunits, uint64_t max,
                            uint64_t *out, const char **reason) {
    uint64_t v;
    bool overflow;
    size_t n = parse_digits(s, &v, &overflow);
    if (overflow) {
        *reason = "the number is too large";
        return false;
    }
    if (n == 0) {
        *reason =
            s[0] == '-' ? "negative values are not allowed" : "it does not start with a number";
        return false;
    }
    if (s[n] == '\0') {
        *reason = "a number alone has no unit";
        return false;
    }
    for (size_t i = 0; i < nunits; i++) {
        if (strcmp(s + n, units[i].name) == 0) {
            if (v > max / units[i].mult) {
                *reason = "the value is too large";
                return false;
            }
            *out = v * units[i].mult;
            return true;
        }
    }
    *reason = "unknown unit";
    return false;
}

bool eb_config_schema_parse_duration(const char *s, int *ms, const char **reason) {
    static const struct unit units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
    uint64_t v;
    if (!parse_with_unit(s, units, 4, INT32_MAX, &v, reason))
        return false;
    *ms = (int)v;
    return true;
}

bool eb_config_schema_parse_size(const char *s, size_t *bytes, const char **reason) {
    static const struct unit units[] = {
        {"B", 1},     {"KiB", 1u << 10}, {"MiB", 1u << 20},  {"GiB", 1u << 30},
        {"KB", 1000}, {"MB", 1000000},   {"GB", 1000000000},
    };
    uint64_t v;
    if (!parse_with_unit(s, units, sizeof(units) / sizeof(units[0]), SIZE_MAX / 2, &v, reason))
        return false;
    if (v == 0) {
        *reason = "a size of zero is not allowed";
        return false;
    }
    *bytes = (size_t)v;
    return true;
}

bool eb_config_schema_parse_count(const char *s, size_t *out, const char **reason) {
    uint64_t v;
    bool overflow;
    size_t n = parse_digits(s, &v, &overflow);
    if (overflow || (n && v > SIZE_MAX / 2)) {
        *reason = "the number is too large";
        return false;
    }
    if (n == 0 || s[n] != '\0') {
        *reason = "not a whole number";
        return false;
    }
    if (v == 0) {
        *reason = "zero is not allowed";
        return false;
    }
    *out = (size_t)v;
    return true;
}

int eb_config_schema_parse_choice(const char *s, const char *const *choices) {
    for (int i = 0; choices[i]; i++) {
        if (strcmp(s, choices[i]) == 0)
            return i;
    }
    return -1;
}

static bool name_byte(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

bool eb_config_schema_topic_valid(const char *s, char *reason, size_t reason_size) {
    size_t n = strlen(s);
    if (n == 0) {
        snprintf(reason, reason_size, "the name is empty");
        return false;
    }
    if (n > 249) {
        snprintf(reason, reason_size, "the name is %zu characters long", n);
        return false;
    }
    if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0) {
        snprintf(reason, reason_size, "'.' and '..' are reserved");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!name_byte(c)) {
            if (c == ' ')
                snprintf(reason, reason_size, "it contains a space (character %zu)", i + 1);
            else if (c > 0x20 && c < 0x7f)
                snprintf(reason, reason_size, "it contains '%c' (character %zu)", c, i + 1);
            else
                snprintf(reason, reason_size, "it contains byte 0x%02x (character %zu)", c, i + 1);
            return false;
        }
    }
    return true;
}

bool eb_config_schema_route_name_valid(const char *s, const char **reason) {
    size_t n = strlen(s);
    if (n == 0 || n > 255) {
        *reason = n ? "the name is longer than 255 characters" : "the name is empty";
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!name_byte((unsigned char)s[i])) {
            *reason = "the name has a character other than letters, digits, '.', '_' or '-'";
            return false;
        }
    }
    return true;
}

bool eb_config_schema_listen_valid(const char *s, const char **reason) {
    if (s[0] == '\0')
        return true;
    const char *colon = strrchr(s, ':');
    if (!colon) {
        *reason = "there is no ':port'";
        return false;
    }
    size_t hostlen = (size_t)(colon - s);
    if (hostlen == 0) {
        *reason = "the host is empty (write 0.0.0.0 for every address)";
        return false;
    }
    if (s[0] == '[' ? s[hostlen - 1] != ']' || hostlen < 3 : memchr(s, ':', hostlen) != NULL) {
        *reason = "an IPv6 host must be written in brackets, e.g. [::]:9464";
        return false;
    }
    for (size_t i = 0; i < hostlen; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!name_byte(c) && c != ':' && c != '[' && c != ']') {
            *reason = "the host has a character not allowed in a host name or address";
            return false;
        }
    }
    uint64_t port;
    bool overflow;
    size_t n = parse_digits(colon + 1, &port, &overflow);
    if (n == 0 || colon[1 + n] != '\0' || port < 1 || port > 65535) {
        *reason = "the port is not a number from 1 to 65535";
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------------ */
/* ${VAR} expansion                                                         */
/* ------------------------------------------------------------------------ */

static bool var_start(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool var_char(char c) {
    return var_start(c) || (c >= '0' && c <= '9');
}

int eb_config_schema_expand_env(const char *in, size_t len, char **out, bool *expanded,
                         eb_config_env_cb *on_var, void *opaque, size_t *err_offset, char *errstr,
                         size_t errstr_size) {
    struct eb_buf b = EB_BUF_INIT;
    int rc = 0;
    *out = NULL;
    *expanded = false;
    for (size_t i = 0; i < len;) {
        if (in[i] != '$' || i + 1 >= len || (in[i + 1] != '$' && in[i + 1] != '{')) {
            eb_buf_putc(&b, in[i++]);
            continue;
        }
        if (in[i + 1] == '$') {
            eb_buf_putc(&b, '$');
            i += 2;
            continue;
        }
        /* ${NAME} or ${NAME:-default} */
        size_t start = i, j = i + 2;
        *err_offset = start;
        if (j >= len || !var_start(in[j])) {
            rc = eb_error_set(errstr, errstr_size, EB_ECONFIG,
                           "'${' is not followed by a variable name; expected ${NAME} or "
                           "${NAME:-default} (write $$ for a literal $)");
            goto out;
        }
        while (j < len && var_char(in[j]))
            j++;
        char name[128];
        size_t nlen = j - i - 2;
        if (nlen >= sizeof(name)) {
            rc =
                eb_error_set(errstr, errstr_size, EB_ECONFIG,
                          "environment variable name longer than %zu characters", sizeof(name) - 1);
            goto out;
        }
        memcpy(name, in + i + 2, nlen);
        name[nlen] = '\0';
        const char *def = NULL;
        size_t def_len = 0;
        if (j + 1 < len && in[j] == ':' && in[j + 1] == '-') {
            def = in + j + 2;
            const char *close = memchr(def, '}', len - (j + 2));
            if (!close) {
                rc = eb_error_set(errstr, errstr_size, EB_ECONFIG,
                               "'${%s:-' is not closed; expected ${%s:-default}", name, name);
                goto out;
            }
            def_len = (size_t)(close - def);
            j = (size_t)(close - in);
        } else if (j >= len || in[j] != '}') {
            rc = eb_error_set(errstr, errstr_size, EB_ECONFIG,
                           "'${%s' is not closed; expected ${%s} or ${%s:-default}", name, name,
                           name);
            goto out;
        }
        const char *val = getenv(name);
        if (val && *val) {
            eb_buf_puts(&b, val);
            if (on_var)
                on_var(opaque, name, val);
        } else if (def) {
            eb_buf_append(&b, def, def_len);
        } else if (val) {
            /* Set but empty: use it (no default asked for). */
        } else {
            rc = eb_error_set(errstr, errstr_size, EB_ECONFIG,
                           "environment variable %s is not set; expected it set, or a default "
                           "such as ${%s:-value}",
                           name, name);
            goto out;
        }
        *expanded = true;
        i = j + 1;
    }
    eb_buf_putc(&b, '\0');
    if (!eb_buf_ok(&b)) {
        rc = eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        goto out;
    }
    *out = b.data;
    return 0;
out:
    eb_buf_free(&b);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* docs/config.md                                                           */
/* ------------------------------------------------------------------------ */

static void md_default(FILE *out, const struct eb_config_key *k) {
    if (k->flags & EB_CK_REQUIRED)
        fputs("*required*", out);
    else if (k->def)
        fprintf(out, "`%s`", k->def);
    else
        fputs("-", out);
}

static void md_table(FILE *out, const struct eb_config_key *table, const char *path,
                     const char *title) {
    fprintf(out, "\n## %s\n\n", title);
    fputs("| Key | Type | Default | Description |\n", out);
    fputs("|-----|------|---------|-------------|\n", out);
    for (const struct eb_config_key *k = table; k->key; k++) {
        fprintf(out, "| `%s%s%s` | %s | ", path, *path ? "." : "", k->key,
                eb_config_schema_type_name(k->type));
        md_default(out, k);
        fprintf(out, " | %s |\n", k->description);
    }
    for (const struct eb_config_key *k = table; k->key; k++) {
        if (!k->sub)
            continue;
        char sub[128], subtitle[160];
        bool list = k->type == EB_CT_ROUTES || k->type == EB_CT_PLUGINS;
        snprintf(sub, sizeof(sub), "%s%s%s%s", path, *path ? "." : "", k->key, list ? "[]" : "");
        if (k->type == EB_CT_ROUTES)
            snprintf(subtitle, sizeof(subtitle), "`%s`: each route", sub);
        else if (k->type == EB_CT_PLUGINS)
            snprintf(subtitle, sizeof(subtitle), "`%s`: each plugin instance", sub);
        else if (k->type == EB_CT_UNROUTED)
            snprintf(subtitle, sizeof(subtitle), "`%s` as a mapping", sub);
        else
            snprintf(subtitle, sizeof(subtitle), "`%s`", sub);
        md_table(out, k->sub, sub, subtitle);
    }
}

void eb_config_schema_markdown(FILE *out) {
    fputs("# Configuration reference\n\n"
          "<!-- Generated from the key tables in src/config/config_schema.c by "
          "eb_config_schema_markdown();\n"
          "     do not edit. Regenerate: EB_UPDATE_DOCS=1 build/tests/unit/test_config -->\n\n"
          "expiry-bridge reads one YAML file (`expiry-bridge run -c FILE`); `expiry-bridge "
          "check -c FILE`\nvalidates it without connecting. A commented example is "
          "`config/expiry-bridge.example.yaml`;\nits JSON Schema is `config/config.schema.json`."
          "\n\n"
          "Rules for every key:\n\n"
          "- Unknown keys are errors, with the nearest known key suggested; a key given twice "
          "in one\n  mapping is an error. Every error names `FILE:LINE:COL` and what was "
          "expected.\n"
          "- `${VAR}` and `${VAR:-default}` in any value expand from the environment before the"
          "\n  value is read (the default applies when VAR is unset or empty); `$$` is a "
          "literal `$`.\n  An unset variable without a default is an error. Values from the "
          "environment are never\n  echoed in error messages.\n"
          "- An empty value (`key:`, `key: ~`, or an unquoted `${VAR:-}` that expands to "
          "nothing) is\n  the same as leaving the key out.\n"
          "- Durations are an integer and a unit: `500ms`, `5s`, `1m`, `2h`. Sizes are an "
          "integer and a\n  unit: `B`, `KiB`, `MiB`, `GiB` (powers of 2) or `KB`, `MB`, `GB` "
          "(powers of 10). A number\n  without a unit is an error.\n"
          "- Limits: files up to 16 MiB, nesting up to 64 levels, and at most 1,000,000 nodes "
          "once\n  aliases are expanded.\n",
          out);
    md_table(out, eb_config_schema, "", "Top level");
    fputs("\n## Value types\n\n| Type | Written as |\n|------|------------|\n", out);
    for (size_t t = EB_CT_STRING; t < NTYPES; t++) {
        if (t == EB_CT_SECRET)
            continue;
        fprintf(out, "| %s | %s |\n", types[t].name, types[t].expected);
    }
}

/* ------------------------------------------------------------------------ */
/* config/config.schema.json                                                */
/* ------------------------------------------------------------------------ */

static void json_str(FILE *out, const char *s) {
    struct eb_buf b = EB_BUF_INIT;
    eb_json_string(&b, s, strlen(s));
    if (eb_buf_ok(&b))
        fwrite(b.data, 1, b.len, out);
    eb_buf_free(&b);
}

static void json_choices(FILE *out, const char *const *choices) {
    fputs("{\"anyOf\": [{\"enum\": [", out);
    for (size_t i = 0; choices[i]; i++) {
        fputs(i ? ", " : "", out);
        json_str(out, choices[i]);
    }
    fputs("]}, {\"$ref\": \"#/$defs/env\"}]}", out);
}

/* The $defs entry of type t. */
static void json_type_def(FILE *out, enum eb_ctype t) {
    if (types[t].json) {
        fputs(types[t].json, out);
        return;
    }
    if (t == EB_CT_EVENTS) {
        fputs("{\"type\": \"array\", \"minItems\": 1, \"uniqueItems\": true, \"items\": "
              "{\"anyOf\": [{\"enum\": [",
              out);
        for (int i = 0; i < eb_notify_event_count(); i++) {
            fputs(i ? ", " : "", out);
            json_str(out, eb_notify_event_name(i));
        }
        fputs("]}, {\"$ref\": \"#/$defs/env\"}]}}", out);
        return;
    }
    json_choices(out, eb_config_schema_type_choices(t));
}

/* A default as JSON: YAML text that is a boolean, an integer, a flow list
 * of plain words or a string. */
static void json_default(FILE *out, const char *def) {
    size_t n = strlen(def);
    if (strcmp(def, "true") == 0 || strcmp(def, "false") == 0 ||
        (n && strspn(def, "0123456789") == n)) {
        fputs(def, out);
    } else if (n >= 2 && def[0] == '[' && def[n - 1] == ']') {
        char item[64];
        snprintf(item, sizeof(item), "%.*s", (int)(n - 2), def + 1);
        fputs("[", out);
        json_str(out, item);
        fputs("]", out);
    } else if (strcmp(def, "\"\"") == 0) {
        fputs("\"\"", out);
    } else {
        json_str(out, def);
    }
}

static void indent(FILE *out, int level) {
    for (int i = 0; i < level; i++)
        fputs("  ", out);
}

static void json_object(FILE *out, const struct eb_config_key *table, int level, bool nullable);

static const char *type_def_name(enum eb_ctype t) {
    static const char *const names[] = {
        [EB_CT_STRING] = "string",       [EB_CT_SECRET] = "secret",
        [EB_CT_BOOL] = "boolean",        [EB_CT_DURATION] = "duration",
        [EB_CT_SIZE] = "size",           [EB_CT_COUNT] = "count",
        [EB_CT_REDIS_URL] = "redis_url", [EB_CT_DATABASES] = "databases",
        [EB_CT_BROKERS] = "brokers",     [EB_CT_CLIENT_PROPS] = "client_properties",
        [EB_CT_HEADERS] = "headers",     [EB_CT_ROUTE_NAME] = "route_name",
        [EB_CT_PATTERN] = "pattern",     [EB_CT_EVENTS] = "events",
        [EB_CT_TOPIC] = "topic",         [EB_CT_TEMPLATE] = "template",
        [EB_CT_FORMAT] = "format",       [EB_CT_LEDGER] = "ledger_mode",
        [EB_CT_LOG_LEVEL] = "log_level", [EB_CT_LISTEN] = "listen",
        [EB_CT_SETTINGS] = "plugin_settings", [EB_CT_PLUGIN_REFS] = "plugin_refs",
        [EB_CT_FILE] = "file",
    };
    return (size_t)t < sizeof(names) / sizeof(names[0]) ? names[t] : NULL;
}

static void json_property(FILE *out, const struct eb_config_key *k, int level) {
    indent(out, level);
    json_str(out, k->key);
    fputs(": {\n", out);
    indent(out, level + 1);
    fputs("\"description\": ", out);
    json_str(out, k->description);
    if (k->def) {
        fputs(",\n", out);
        indent(out, level + 1);
        fputs("\"default\": ", out);
        json_default(out, k->def);
    }
    fputs(",\n", out);
    indent(out, level + 1);
    switch (k->type) {
    case EB_CT_SECTION:
        fputs("\"$ref\": \"#/$defs/", out);
        fputs(k->key, out);
        fputs("\"", out);
        break;
    case EB_CT_ROUTES:
        fputs("\"type\": [\"array\", \"null\"],\n", out);
        indent(out, level + 1);
        fputs("\"items\": {\"$ref\": \"#/$defs/route\"}", out);
        break;
    case EB_CT_UNROUTED:
        fputs("\"anyOf\": [{\"const\": \"drop\"}, {\"$ref\": \"#/$defs/unrouted_topic\"}]", out);
        break;
    case EB_CT_PLUGINS:
        fputs("\"type\": [\"array\", \"null\"],\n", out);
        indent(out, level + 1);
        fputs("\"items\": {\"$ref\": \"#/$defs/plugin\"}", out);
        break;
    default:
        fprintf(out, "\"$ref\": \"#/$defs/%s\"", type_def_name(k->type));
    }
    fputs("\n", out);
    indent(out, level);
    fputs("}", out);
}

/* {"type": "object", "additionalProperties": false, "required": [...],
 * "properties": {...}} for one table. */
static void json_object(FILE *out, const struct eb_config_key *table, int level, bool nullable) {
    fputs("{\n", out);
    indent(out, level + 1);
    fputs(nullable ? "\"type\": [\"object\", \"null\"],\n" : "\"type\": \"object\",\n", out);
    indent(out, level + 1);
    fputs("\"additionalProperties\": false,\n", out);
    bool any = false;
    for (const struct eb_config_key *k = table; k->key; k++) {
        if (!(k->flags & EB_CK_REQUIRED))
            continue;
        if (!any) {
            indent(out, level + 1);
            fputs("\"required\": [", out);
        }
        fputs(any ? ", " : "", out);
        json_str(out, k->key);
        any = true;
    }
    if (any)
        fputs("],\n", out);
    indent(out, level + 1);
    fputs("\"properties\": {\n", out);
    for (const struct eb_config_key *k = table; k->key; k++) {
        json_property(out, k, level + 2);
        fputs(k[1].key ? ",\n" : "\n", out);
    }
    indent(out, level + 1);
    fputs("}\n", out);
    indent(out, level);
    fputs("}", out);
}

void eb_config_schema_json(FILE *out) {
    fputs("{\n"
          "  \"$schema\": \"https://json-schema.org/draft/2020-12/schema\",\n"
          "  \"$comment\": \"Generated from src/config/config_schema.c by eb_config_schema_json(); do "
          "not edit. Regenerate: EB_UPDATE_DOCS=1 build/tests/unit/test_config\",\n"
          "  \"title\": \"expiry-bridge configuration\",\n"
          "  \"description\": \"The YAML configuration of expiry-bridge (docs/config.md). Values "
          "may hold ${VAR} references, which the bridge expands from the environment before "
          "reading them.\",\n",
          out);
    /* The top level, then every nested mapping and every value type as a
     * $def, so each property is one line. */
    fputs("  \"type\": \"object\",\n  \"additionalProperties\": false,\n", out);
    fputs("  \"required\": [", out);
    bool any = false;
    for (const struct eb_config_key *k = eb_config_schema; k->key; k++) {
        if (k->flags & EB_CK_REQUIRED) {
            fputs(any ? ", " : "", out);
            json_str(out, k->key);
            any = true;
        }
    }
    fputs("],\n  \"properties\": {\n", out);
    for (const struct eb_config_key *k = eb_config_schema; k->key; k++) {
        json_property(out, k, 2);
        fputs(k[1].key ? ",\n" : "\n", out);
    }
    fputs("  },\n  \"$defs\": {\n", out);
    for (const struct eb_config_key *k = eb_config_schema; k->key; k++) {
        if (k->type != EB_CT_SECTION)
            continue;
        fprintf(out, "    \"%s\": ", k->key);
        json_object(out, k->sub, 2, !(k->flags & EB_CK_REQUIRED));
        fputs(",\n", out);
        for (const struct eb_config_key *s = k->sub; s->key; s++) {
            if (s->type != EB_CT_SECTION)
                continue;
            fprintf(out, "    \"%s\": ", s->key);
            json_object(out, s->sub, 2, true);
            fputs(",\n", out);
        }
    }
    fputs("    \"route\": ", out);
    json_object(out, route_keys, 2, false);
    fputs(",\n    \"unrouted_topic\": ", out);
    json_object(out, unrouted_keys, 2, false);
    fputs(",\n    \"plugin\": ", out);
    json_object(out, plugin_keys, 2, false);
    fputs(",\n    \"env\": {\"type\": \"string\", \"pattern\": "
          "\"\\\\$\\\\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\\\\}\"}",
          out);
    for (size_t t = EB_CT_STRING; t < NTYPES; t++) {
        fprintf(out, ",\n    \"%s\": ", type_def_name((enum eb_ctype)t));
        json_type_def(out, (enum eb_ctype)t);
    }
    fputs("\n  }\n}\n", out);
}
