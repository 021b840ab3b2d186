/* config_watch.h -- notice when the configuration file's content changes,
 * so a running bridge reloads it without a signal.
 *
 * Watches the DIRECTORY that holds the file with inotify, not the file: an
 * editor's rename-over and a Kubernetes ConfigMap update (kubelet writes a
 * new `..2026_…` directory, then renames a `..data` symlink over the old
 * one; config.yaml -> ..data/config.yaml never changes) both replace what
 * the name points at, and a watch on the old inode would go silent after
 * the first change. When the path is a symlink, the directory of the file
 * it resolves to is watched as well (re-resolved after every check), so a
 * file edited in place behind a symlink is seen too.
 *
 * A burst of events (kubelet's swap is a dozen; an editor's save several)
 * is debounced into one check: the check runs once the directory has been
 * quiet for debounce_ms (and no writer still has the file open, up to
 * max_delay_ms after the first event). The check hashes the file and calls
 * on_change only when the bytes differ from the last ones seen, so a
 * `touch`, a chmod or an unrelated file in the directory never reload:
 * such a check is logged at debug ("config file touched; content
 * unchanged, not reloading"). A file that is missing or unreadable at
 * check time is not a change: it is logged (a warning, once until it is
 * readable again), and the next event checks again. So a check shows as
 * on_change, as that debug line, or (the first in a row) as that warning.
 *
 * @locality every function and callback runs on the loop thread.
 */
#ifndef EB_CONFIG_WATCH_H
#define EB_CONFIG_WATCH_H

#include "core/log.h"

struct event_base;
typedef struct eb_config_watch eb_config_watch_t;

/* Called once per debounced burst after which the file's content differs
 * from the last content seen. `trigger` (borrowed until return) says what
 * happened, e.g. "inotify: moved_to ..data in /etc/expiry-bridge (+11
 * more events)". It must not destroy the watch. */
typedef void(eb_config_watch_cb)(const char *trigger, void *opaque);

struct eb_config_watch_conf {
    const char *path;              /* the config file; copied */
    int debounce_ms;               /* quiet time before a check; 0: 200 */
    int max_delay_ms;              /* longest wait after a burst began; 0: 2000 */
    eb_log_t *log;                 /* borrowed; must outlive the watch; may be NULL */
    eb_config_watch_cb *on_change; /* required */
    void *opaque;                  /* passed to on_change; borrowed */
};

/* Start watching. The content at this moment is the baseline: start the
 * watch before loading the file, so a change in between is a change.
 * NULL + errstr when inotify is unavailable (limits reached:
 * fs.inotify.max_user_instances / max_user_watches) or the directory
 * cannot be watched; the caller can still reload on SIGHUP. Free with
 * eb_config_watch_destroy(). */
eb_config_watch_t *eb_config_watch_new(struct event_base *base,
                                       const struct eb_config_watch_conf *conf, char *errstr,
                                       size_t errstr_size);

/* NULL is a no-op. Leaves no event registered on the base. Not from inside
 * on_change. */
void eb_config_watch_destroy(eb_config_watch_t *w);

#endif
