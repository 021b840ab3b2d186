/* ebp/settings.h -- reading a plugin instance's settings through the host
 * vtable, with errors reported at the setting's file:line:col (the shipped
 * plugins all read theirs this way).
 */
#ifndef EBP_SETTINGS_H
#define EBP_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>

#include <expiry_bridge/plugin.h>

/* Report every key of map that is not in keys (NULL-terminated), at the
 * key, naming the keys expected. Returns how many were reported. */
int ebp_settings_known(const struct eb_plugin_host *h, const eb_plugin_settings_t *map,
                       const char *const *keys);

/* The scalar at map.key: its text, or NULL. When absent and required, or
 * present and not a scalar, reports an error and sets *bad. */
const char *ebp_settings_scalar(const struct eb_plugin_host *h, const eb_plugin_settings_t *map,
                                const char *key, bool required, bool *bad);

/* A list of scalars (or a single scalar) at map.key, copied into a
 * NULL-terminated array owned by the caller (free with
 * ebp_settings_strings_free()); *n its length. Absent: *out NULL, *n 0, and
 * an error when required. Returns 0, or -1 after reporting (or OOM). */
int ebp_settings_strings(const struct eb_plugin_host *h, const eb_plugin_settings_t *map,
                         const char *key, bool required, char ***out, size_t *n);
void ebp_settings_strings_free(char **v);

/* The node of value i of what ebp_settings_strings() read at map.key: item
 * i of the list, or the single value itself. For errors about one value. */
const eb_plugin_settings_t *ebp_settings_strings_at(const struct eb_plugin_host *h,
                                                    const eb_plugin_settings_t *map,
                                                    const char *key, size_t i);

/* A boolean scalar (true/false); absent: def. */
bool ebp_settings_bool(const struct eb_plugin_host *h, const eb_plugin_settings_t *map,
                       const char *key, bool def, bool *bad);

/* printf into a static-size message and report it at node (a bad value). */
void ebp_settings_errorf(const struct eb_plugin_host *h, const eb_plugin_settings_t *node,
                         const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The same at the key of entry i of map (a bad key: unknown, or not a
 * name the plugin accepts). */
void ebp_settings_key_errorf(const struct eb_plugin_host *h, const eb_plugin_settings_t *map,
                             size_t i, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* check(), init() and destroy() of a plugin whose whole state is what
 * PARSE(host, settings) builds (NULL after reporting each problem) and
 * FREE(state) frees: check parses and frees, init parses and keeps.
 * Defines PREFIX_check, PREFIX_init and PREFIX_destroy. */
#define EBP_PARSED_PLUGIN(PREFIX, TYPE, PARSE, FREE)                                             \
    static int PREFIX##_check(const struct eb_plugin_host *h, const eb_plugin_ctx_t *ctx,         \
                              const eb_plugin_settings_t *settings) {                             \
        (void)ctx;                                                                                \
        TYPE *v = PARSE(h, settings);                                                             \
        FREE(v);                                                                                  \
        return v ? 0 : -1;                                                                        \
    }                                                                                             \
    static int PREFIX##_init(const struct eb_plugin_host *h, const eb_plugin_ctx_t *ctx,          \
                             const eb_plugin_settings_t *settings, void **state, char *errstr,    \
                             size_t errstr_size) {                                                \
        (void)ctx;                                                                                \
        (void)errstr;                                                                             \
        (void)errstr_size;                                                                        \
        return (*state = PARSE(h, settings)) ? 0 : -1;                                            \
    }                                                                                             \
    static void PREFIX##_destroy(void *state) {                                                   \
        FREE(state);                                                                              \
    }

#endif
