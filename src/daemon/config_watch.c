/* config_watch.c -- inotify on the config file's directory, debounced,
 * content-compared (contract in config_watch.h).
 *
 * One inotify descriptor with at most two watches: the directory named by
 * the path (always), and the directory of the file the path resolves to
 * when that differs (a symlink into another directory). Every event in a
 * watched directory schedules a check; there is no name filter, because
 * the names that matter vary (the file, `..data`, an editor's temporary,
 * a custom symlink) and a check costs one read of a small file.
 *
 * Ownership: the watch owns its inotify descriptor, its libevent events
 * and copies of every string; conf->log is borrowed.
 *
 * @locality loop thread only.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <xxhash.h>

#include "core/clock.h"
#include "core/error.h"
#include "daemon/config_watch.h"

/* ------------------------------------------------------------------------
 * Tunables
 * --------------------------------------------------------------------- */

/* kubelet's swap and an editor's save finish within a few ms; 200 ms of
 * quiet covers a slow disk without making a reload feel late. */
#define DEFAULT_DEBOUNCE_MS 200
/* A writer that keeps the file open (or a directory that never goes quiet)
 * still gets its change checked within this. */
#define DEFAULT_MAX_DELAY_MS 2000
/* While the watched directory is gone (deleted or moved away), try to
 * watch it again this often. */
#define REWATCH_MS 1000
/* The config loader refuses more than 16 MiB; hashing stops there too. */
#define MAX_FILE_BYTES (16u * 1024 * 1024)
#define TRIGGER_MAX    384

#define WATCH_MASK                                                                                 \
    (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_CLOSE_WRITE | IN_MODIFY |            \
     IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

/* ------------------------------------------------------------------------
 * Types
 * --------------------------------------------------------------------- */

struct eb_config_watch {
    struct event_base *base; /* borrowed */
    eb_log_t *log;           /* borrowed */
    eb_config_watch_cb *on_change;
    void *opaque;
    int debounce_ms;
    int max_delay_ms;

    char *path;    /* as given */
    char *dir;     /* its directory */
    char *name;    /* its last component */
    char *tdir;    /* directory of the resolved file, when it differs; else NULL */
    char *tname;   /* the resolved file's last component */
    int fd;        /* inotify */
    int wd_dir;    /* -1 while the directory is not watched */
    int wd_target; /* -1 when there is no second watch */
    struct event *ev_read;
    struct event *ev_debounce;
    struct event *ev_rewatch;

    XXH128_hash_t digest; /* of the last content seen */
    bool have_digest;     /* false while the file has never been read */
    bool unreadable_logged;

    /* the burst being debounced */
    bool pending;
    bool writer_open; /* IN_MODIFY on the file without IN_CLOSE_WRITE yet */
    int64_t first_ms;
    uint64_t burst_events;
    bool trigger_named; /* the trigger names the file or `..data` */
    char trigger[TRIGGER_MAX];
};

/* ------------------------------------------------------------------------
 * Helpers
 * --------------------------------------------------------------------- */

/* Split "a/b/c" into "a/b" and "c"; "c" into "." and "c"; "/c" into "/"
 * and "c". Both results are malloc'd; false when out of memory. */
static bool split_path(const char *path, char **dir, char **name) {
    const char *slash = strrchr(path, '/');
    if (!slash) {
        *dir = strdup(".");
        *name = strdup(path);
    } else {
        size_t n = slash == path ? 1 : (size_t)(slash - path);
        *dir = strndup(path, n);
        *name = strdup(slash + 1);
    }
    if (*dir && *name)
        return true;
    free(*dir);
    free(*name);
    *dir = *name = NULL;
    return false;
}

/* Operators meet these limits on busy nodes; name the sysctl to raise. */
static const char *limit_hint(int err) {
    if (err == EMFILE)
        return " (raise fs.inotify.max_user_instances)";
    if (err == ENOSPC)
        return " (raise fs.inotify.max_user_watches)";
    return "";
}

/* Hash the file's bytes. 0, or an errno-style reason in `why`. */
static int hash_file(const char *path, XXH128_hash_t *out, char *why, size_t why_size) {
    /* O_NONBLOCK: a FIFO put at the path must not block the loop. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        snprintf(why, why_size, "%s", strerror(errno));
        return -1;
    }
    struct stat st;
    int rc = -1;
    char *buf = NULL;
    if (fstat(fd, &st) != 0) {
        snprintf(why, why_size, "%s", strerror(errno));
        goto out_close;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, why_size, "not a regular file");
        goto out_close;
    }
    size_t cap = (size_t)st.st_size + 1, len = 0;
    if (cap > MAX_FILE_BYTES + 1)
        cap = MAX_FILE_BYTES + 1;
    buf = malloc(cap);
    if (!buf) {
        snprintf(why, why_size, "out of memory");
        goto out_close;
    }
    /* The file may grow while we read: stop at the cap, the loader will
     * refuse it anyway, and a later event checks again. */
    for (;;) {
        ssize_t got = read(fd, buf + len, cap - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            snprintf(why, why_size, "%s", strerror(errno));
            goto out_close;
        }
        len += (size_t)got;
        if (got == 0 || len == cap)
            break;
    }
    *out = XXH3_128bits(buf, len);
    rc = 0;

out_close:
    free(buf);
    close(fd);
    return rc;
}

static void describe_mask(uint32_t mask, char *out, size_t size) {
    static const struct {
        uint32_t bit;
        const char *name;
    } names[] = {
        {IN_CREATE, "create"},       {IN_DELETE, "delete"},           {IN_MOVED_FROM, "moved_from"},
        {IN_MOVED_TO, "moved_to"},   {IN_CLOSE_WRITE, "close_write"}, {IN_MODIFY, "modify"},
        {IN_ATTRIB, "attrib"},       {IN_DELETE_SELF, "delete_self"}, {IN_MOVE_SELF, "move_self"},
        {IN_Q_OVERFLOW, "overflow"}, {IN_IGNORED, "ignored"},
    };
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) && n < size; i++) {
        if (mask & names[i].bit)
            n += (size_t)snprintf(out + n, size - n, "%s%s", n ? "," : "", names[i].name);
    }
}

/* ------------------------------------------------------------------------
 * Watches
 * --------------------------------------------------------------------- */

static void drop_target(eb_config_watch_t *w) {
    /* inotify gives one wd per inode: never remove the directory's own. */
    if (w->wd_target >= 0 && w->wd_target != w->wd_dir)
        inotify_rm_watch(w->fd, w->wd_target);
    w->wd_target = -1;
    free(w->tdir);
    free(w->tname);
    w->tdir = w->tname = NULL;
}

/* Watch the directory of the file the path resolves to, when that is not
 * the path's own directory. Called after every check: a symlink swap may
 * have moved it. Failure only costs the second watch (logged at debug). */
static void retarget(eb_config_watch_t *w) {
    char real[PATH_MAX], realdir[PATH_MAX];
    char *tdir = NULL, *tname = NULL;
    if (!realpath(w->path, real) || !realpath(w->dir, realdir) || !split_path(real, &tdir, &tname))
        goto out_none;
    if (strcmp(tdir, realdir) == 0)
        goto out_none;
    if (w->tdir && strcmp(w->tdir, tdir) == 0) {
        free(tdir);
        free(tname);
        return;
    }
    drop_target(w);
    int wd = inotify_add_watch(w->fd, tdir, WATCH_MASK);
    if (wd < 0) {
        eb_log(w->log, EB_LOG_DEBUG, "cannot watch the directory the config file resolves to",
               eb_lf_str("dir", tdir), eb_lf_str("error", strerror(errno)));
        goto out_none;
    }
    w->wd_target = wd == w->wd_dir ? -1 : wd;
    w->tdir = tdir;
    w->tname = tname;
    return;

out_none:
    free(tdir);
    free(tname);
    drop_target(w);
}

static int watch_dir(eb_config_watch_t *w) {
    w->wd_dir = inotify_add_watch(w->fd, w->dir, WATCH_MASK);
    return w->wd_dir < 0 ? -1 : 0;
}

/* ------------------------------------------------------------------------
 * Debounce and check
 * --------------------------------------------------------------------- */

static void check(eb_config_watch_t *w) {
    char why[256];
    XXH128_hash_t h;
    retarget(w);
    if (hash_file(w->path, &h, why, sizeof(why)) != 0) {
        if (!w->unreadable_logged)
            eb_log(w->log, EB_LOG_WARN,
                   "config file cannot be read after a change; keeping the current "
                   "configuration until it is back",
                   eb_lf_str("path", w->path), eb_lf_str("error", why),
                   eb_lf_str("trigger", w->trigger));
        w->unreadable_logged = true;
        return;
    }
    w->unreadable_logged = false;
    if (w->have_digest && XXH128_isEqual(h, w->digest)) {
        eb_log(w->log, EB_LOG_DEBUG, "config file touched; content unchanged, not reloading",
               eb_lf_str("path", w->path), eb_lf_str("trigger", w->trigger));
        return;
    }
    w->digest = h;
    w->have_digest = true;
    w->on_change(w->trigger, w->opaque);
}

/* @locality loop thread. */
static void on_debounce(evutil_socket_t fd, short what, void *arg) {
    eb_config_watch_t *w = arg;
    (void)fd;
    (void)what;
    int64_t waited = eb_mono_ms() - w->first_ms;
    if (w->writer_open && waited < w->max_delay_ms) {
        /* Someone is still writing: a check now could read half a file. */
        int64_t left = w->max_delay_ms - waited;
        struct timeval tv = eb_ms_tv(left < w->debounce_ms ? left : w->debounce_ms);
        evtimer_add(w->ev_debounce, &tv);
        return;
    }
    if (w->burst_events > 1) {
        size_t n = strlen(w->trigger);
        snprintf(w->trigger + n, sizeof(w->trigger) - n, " (+%llu more events)",
                 (unsigned long long)(w->burst_events - 1));
    }
    check(w);
    w->pending = false;
    w->writer_open = false;
    w->burst_events = 0;
    w->trigger[0] = '\0';
}

/* Note one event of a burst. The burst is named by its first event that
 * names the file (or kubelet's `..data`), else by its first event: "moved_to
 * ..data" says more than the "create ..2026_…" that precedes it. */
static void note_event(eb_config_watch_t *w, const char *what, bool named) {
    int64_t now = eb_mono_ms();
    if (!w->pending) {
        w->pending = true;
        w->first_ms = now;
        w->trigger_named = false;
        w->trigger[0] = '\0';
    }
    if (!w->trigger[0] || (named && !w->trigger_named)) {
        snprintf(w->trigger, sizeof(w->trigger), "%s", what);
        w->trigger_named = named;
    }
    w->burst_events++;
    /* Each event restarts the quiet period, but never past max_delay. */
    int64_t delay = w->debounce_ms;
    int64_t cap = w->first_ms + w->max_delay_ms - now;
    if (delay > cap)
        delay = cap > 0 ? cap : 0;
    struct timeval tv = eb_ms_tv(delay);
    evtimer_add(w->ev_debounce, &tv);
}

/* The watched directory went away: try again until it is back. */
static void lost_dir(eb_config_watch_t *w, const char *why) {
    if (w->wd_dir >= 0)
        inotify_rm_watch(w->fd, w->wd_dir); /* a moved directory keeps its watch */
    w->wd_dir = -1;
    eb_log(w->log, EB_LOG_WARN,
           "config directory is gone; watching for it to come back (SIGHUP still reloads)",
           eb_lf_str("dir", w->dir), eb_lf_str("event", why));
    struct timeval tv = eb_ms_tv(REWATCH_MS);
    event_add(w->ev_rewatch, &tv);
}

/* @locality loop thread. */
static void on_rewatch(evutil_socket_t fd, short what, void *arg) {
    eb_config_watch_t *w = arg;
    (void)fd;
    (void)what;
    if (watch_dir(w) != 0)
        return;
    event_del(w->ev_rewatch);
    eb_log(w->log, EB_LOG_INFO, "config directory is back; watching it again",
           eb_lf_str("dir", w->dir));
    /* Whatever happened while it was gone is checked now. */
    note_event(w, "config directory watched again", false);
}

static void handle_event(eb_config_watch_t *w, const struct inotify_event *ev) {
    char mask[128], what[TRIGGER_MAX];
    bool in_dir = ev->wd == w->wd_dir && ev->wd >= 0;
    bool in_target = ev->wd == w->wd_target && ev->wd >= 0;
    const char *name = ev->len ? ev->name : "";
    describe_mask(ev->mask, mask, sizeof(mask));
    snprintf(what, sizeof(what), "inotify: %s%s%s in %s", mask, *name ? " " : "", name,
             in_target ? w->tdir : w->dir);
    if (ev->mask & IN_Q_OVERFLOW) {
        note_event(w, "inotify: queue overflow (events were lost)", false);
        return;
    }
    if (in_dir && (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED))) {
        lost_dir(w, mask);
        note_event(w, what, false);
        return;
    }
    if (in_target && (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED))) {
        drop_target(w); /* the next check resolves it again */
        note_event(w, what, false);
        return;
    }
    if (!in_dir && !in_target)
        return; /* a watch we already dropped */
    const char *file = in_target ? w->tname : w->name;
    bool is_file = file && strcmp(name, file) == 0;
    if (is_file) {
        if (ev->mask & IN_MODIFY)
            w->writer_open = true;
        if (ev->mask & IN_CLOSE_WRITE)
            w->writer_open = false;
    }
    note_event(w, what, is_file || strcmp(name, "..data") == 0);
}

/* @locality loop thread. */
static void on_readable(evutil_socket_t fd, short what, void *arg) {
    eb_config_watch_t *w = arg;
    (void)what;
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* EAGAIN: all read */
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            handle_event(w, ev);
            p += sizeof(struct inotify_event) + ev->len;
        }
    }
}

/* ------------------------------------------------------------------------
 * Public API
 * --------------------------------------------------------------------- */

eb_config_watch_t *eb_config_watch_new(struct event_base *base,
                                       const struct eb_config_watch_conf *conf, char *errstr,
                                       size_t errstr_size) {
    if (!base || !conf || !conf->path || !*conf->path || !conf->on_change) {
        eb_error_set(errstr, errstr_size, EB_EINVAL, "config watch needs a path and a callback");
        return NULL;
    }
    eb_config_watch_t *w = calloc(1, sizeof(*w));
    if (!w) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        return NULL;
    }
    w->base = base;
    w->log = conf->log;
    w->on_change = conf->on_change;
    w->opaque = conf->opaque;
    w->debounce_ms = conf->debounce_ms > 0 ? conf->debounce_ms : DEFAULT_DEBOUNCE_MS;
    w->max_delay_ms = conf->max_delay_ms > 0 ? conf->max_delay_ms : DEFAULT_MAX_DELAY_MS;
    if (w->max_delay_ms < w->debounce_ms)
        w->max_delay_ms = w->debounce_ms;
    w->fd = w->wd_dir = w->wd_target = -1;
    w->path = strdup(conf->path);
    if (!w->path || !split_path(w->path, &w->dir, &w->name)) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        goto err_destroy;
    }
    w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->fd < 0) {
        int e = errno;
        eb_error_set(errstr, errstr_size, EB_EIO, "inotify_init1: %s%s", strerror(e), limit_hint(e));
        goto err_destroy;
    }
    /* The watch exists before the baseline is read: a change between the
     * two is an event, never a silent miss. */
    if (watch_dir(w) != 0) {
        int e = errno;
        eb_error_set(errstr, errstr_size, EB_EIO, "cannot watch directory %s: %s%s", w->dir,
                  strerror(e), limit_hint(e));
        goto err_destroy;
    }
    retarget(w);
    w->ev_read = event_new(base, w->fd, EV_READ | EV_PERSIST, on_readable, w);
    w->ev_debounce = evtimer_new(base, on_debounce, w);
    w->ev_rewatch = event_new(base, -1, EV_PERSIST, on_rewatch, w);
    if (!w->ev_read || !w->ev_debounce || !w->ev_rewatch || event_add(w->ev_read, NULL) != 0) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "cannot register loop events");
        goto err_destroy;
    }
    char why[256];
    w->have_digest = hash_file(w->path, &w->digest, why, sizeof(why)) == 0;
    eb_log(w->log, EB_LOG_INFO, "watching the config file's directory for changes",
           eb_lf_str("path", w->path), eb_lf_str("dir", w->dir),
           eb_lf_str("resolved_dir", w->tdir ? w->tdir : w->dir));
    return w;

err_destroy:
    eb_config_watch_destroy(w);
    return NULL;
}

void eb_config_watch_destroy(eb_config_watch_t *w) {
    if (!w)
        return;
    if (w->ev_read)
        event_free(w->ev_read);
    if (w->ev_debounce)
        event_free(w->ev_debounce);
    if (w->ev_rewatch)
        event_free(w->ev_rewatch);
    if (w->fd >= 0)
        close(w->fd); /* removes every watch */
    free(w->tdir);
    free(w->tname);
    free(w->path);
    free(w->dir);
    free(w->name);
    free(w);
}
