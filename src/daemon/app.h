/* app.h -- the daemon's lifecycle: load the configuration, build the
 * modules from it (redis_source -> pipeline -> kafka_sink, with http and
 * config_watch beside them), run the libevent loop, reload on SIGHUP and
 * when the file changes (connection settings by reconnecting; see app.c),
 * drain and stop on SIGTERM/SIGINT. main.c only parses the command line and
 * calls one of these.
 *
 * @locality the calling thread becomes the loop thread; call from main().
 */
#ifndef EB_APP_H
#define EB_APP_H

/* `expiry-bridge run -c PATH`: runs until SIGTERM/SIGINT. path is borrowed
 * for the call. Returns an EB_EXIT_* code (cli.h): 0 after a clean drain,
 * 75 when events were still undelivered at the drain deadline, 78 for an
 * invalid configuration (nothing was connected), 1 for a runtime failure. */
int eb_app_run(const char *path);

/* `expiry-bridge check -c PATH`: validate without connecting; a summary of
 * the routes on stdout, errors on stderr. Returns EB_EXIT_OK or
 * EB_EXIT_CONFIG. */
int eb_app_check(const char *path);

/* `expiry-bridge functions load -c PATH`: install the deadline ledger's
 * Redis Function library into PATH's Redis (ledger.h). Returns EB_EXIT_OK,
 * EB_EXIT_CONFIG, or EB_EXIT_UNAVAILABLE when Redis cannot be reached or
 * refuses the library (the reason on stderr). */
int eb_app_functions_load(const char *path);

#endif
