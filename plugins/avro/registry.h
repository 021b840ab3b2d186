/* registry.h -- the schema registry side of the avro plugin: registering
 * a schema under a subject through the Confluent Schema Registry REST API
 * (POST /subjects/{subject}/versions -> {"id": N}), which Confluent's
 * registry, Apicurio Registry (/apis/ccompat/v7) and Karapace all serve.
 *
 * Runs on a thread the plugin owns, never on the bridge's loop: it retries
 * with capped backoff until the registry answers or the plugin stops.
 */
#ifndef EBP_AVRO_REGISTRY_H
#define EBP_AVRO_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include <expiry_bridge/plugin.h>

struct registry;

/* Start registering schema (JSON text, copied) under subject at base_url
 * (copied). The id becomes known through registry_id(). h and ctx (the
 * instance's, for host->log from the registry thread) are borrowed for the
 * registry's life. NULL when out of memory or the thread cannot start. */
struct registry *registry_start(const struct eb_plugin_host *h, const eb_plugin_ctx_t *ctx,
                                const char *base_url, const char *subject, const char *schema,
                                long timeout_ms);

/* The schema id, or -1 while it is not known. Any thread. */
int64_t registry_id(const struct registry *r);

/* Stop retrying, join the thread, free. NULL is a no-op. */
void registry_stop(struct registry *r);

/* The request body {"schema": "..."} for schema, into out (malloc'ed).
 * Exposed for tests. */
char *registry_body(const char *schema);

#endif
