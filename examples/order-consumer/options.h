/* options.h -- the consumer's settings, from flags and the environment.
 *
 * Each setting comes from its flag, else its environment variable, else a
 * default: flags win, so a Kubernetes Deployment can set the environment and
 * an operator can still override one setting on the command line. `--help`
 * prints the table below.
 */
#ifndef OC_OPTIONS_H
#define OC_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

struct oc_options {
    const char *brokers; /* -b  ORDER_CONSUMER_BROKERS */
    const char *group;   /* -g  ORDER_CONSUMER_GROUP */
    char **topics;       /* -t  ORDER_CONSUMER_TOPICS (comma-separated); owned */
    size_t ntopics;
    const char *conninfo;     /* -d  ORDER_CONSUMER_DB ("" = libpq defaults, PG* env) */
    const char **kafka_props; /* -X key=value, librdkafka properties; array owned */
    size_t nkafka_props;
    int commit_interval_ms; /* --commit-interval-ms */
    bool migrate;           /* --migrate: apply the schema and exit */
    bool verbose;           /* -v: one log line per event */
};

/* Exit codes of the program (also printed by --help). */
enum {
    OC_EXIT_OK = 0,      /* stopped by SIGTERM/SIGINT, or --migrate/--help done */
    OC_EXIT_FAILURE = 1, /* a fatal Kafka error, a failed migration, bad -X */
    OC_EXIT_USAGE = 2,   /* bad command line */
};

/* Fill *o from argv and the environment. Strings not marked owned are
 * borrowed from argv/environ (they live as long as the process). Returns
 * 0 to run, 1 when --help was printed (exit OC_EXIT_OK), or -1 after
 * printing a usage error (exit OC_EXIT_USAGE). Free with oc_options_free()
 * whatever it returned. */
int oc_options_parse(int argc, char **argv, struct oc_options *o);

void oc_options_free(struct oc_options *o);

#endif
