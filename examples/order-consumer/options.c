/* options.c -- flags, environment, defaults, --help (see options.h). */
#include "options.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_BROKERS "localhost:9092"
#define DEFAULT_GROUP   "order-consumer"
#define DEFAULT_TOPICS  "shop.order.payment-timeout"
/* Commit offsets once a second: a crash then re-reads at most ~1 s of
 * events (deduplicated by the database), and the broker sees one commit per
 * second instead of one per event. */
#define DEFAULT_COMMIT_INTERVAL_MS 1000

static const char usage_text[] =
    "Usage: order-consumer [OPTIONS]\n"
    "\n"
    "Cancels unpaid orders when expiry-bridge reports that their payment timer\n"
    "expired, and returns their stock, in PostgreSQL. Each event is applied in one\n"
    "transaction and its Kafka offset is committed only after that transaction;\n"
    "duplicates change nothing; malformed events go to <topic>.dlq.\n"
    "\n"
    "Options (a flag wins over its environment variable, which wins over the default):\n"
    "  -b, --brokers LIST        Kafka bootstrap servers          ORDER_CONSUMER_BROKERS\n"
    "                            (default " DEFAULT_BROKERS ")\n"
    "  -g, --group ID            consumer group                   ORDER_CONSUMER_GROUP\n"
    "                            (default " DEFAULT_GROUP ")\n"
    "  -t, --topic NAME[,NAME]   topics to consume; repeatable    ORDER_CONSUMER_TOPICS\n"
    "                            (default " DEFAULT_TOPICS ")\n"
    "  -d, --db CONNINFO         PostgreSQL conninfo or URI       ORDER_CONSUMER_DB\n"
    "                            (default: libpq defaults and PGHOST, PGUSER, ...)\n"
    "  -X KEY=VALUE              librdkafka property for the consumer and the\n"
    "                            dead-letter producer, e.g. -X security.protocol=ssl\n"
    "      --commit-interval-ms N  commit processed offsets every N ms (default 1000)\n"
    "      --migrate             apply the schema (idempotent) and exit\n"
    "  -v, --verbose             log every event\n"
    "  -h, --help                this text\n"
    "\n"
    "Exit codes: 0 stopped by SIGTERM/SIGINT (or --migrate/--help done),\n"
    "            1 fatal error (Kafka fatal error, migration failed, bad -X),\n"
    "            2 bad command line.\n";

static const char *env_or(const char *name, const char *fallback) {
    const char *v = getenv(name);
    return v && v[0] ? v : fallback;
}

/* Append each comma-separated, non-empty name in `list` to o->topics. */
static int add_topics(struct oc_options *o, const char *list) {
    char *copy = strdup(list);
    if (!copy)
        return -1;
    char *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char **grown = realloc(o->topics, (o->ntopics + 1) * sizeof(*grown));
        char *name = strdup(t);
        if (!grown || !name) {
            free(name);
            if (grown)
                o->topics = grown;
            free(copy);
            return -1;
        }
        o->topics = grown;
        o->topics[o->ntopics++] = name;
    }
    free(copy);
    return 0;
}

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "order-consumer: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'order-consumer --help'.\n");
    va_end(ap);
    return -1;
}

int oc_options_parse(int argc, char **argv, struct oc_options *o) {
    enum { OPT_COMMIT_INTERVAL = 256, OPT_MIGRATE };
    static const struct option longopts[] = {
        {"brokers", required_argument, NULL, 'b'},
        {"group", required_argument, NULL, 'g'},
        {"topic", required_argument, NULL, 't'},
        {"db", required_argument, NULL, 'd'},
        {"commit-interval-ms", required_argument, NULL, OPT_COMMIT_INTERVAL},
        {"migrate", no_argument, NULL, OPT_MIGRATE},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof(*o));
    o->commit_interval_ms = DEFAULT_COMMIT_INTERVAL_MS;
    /* Each -X takes one or two arguments ("-Xk=v" or "-X k=v"): argc bounds them. */
    o->kafka_props = calloc((size_t)argc, sizeof(*o->kafka_props));
    if (!o->kafka_props)
        return usage_error("out of memory");

    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":b:g:t:d:X:vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'b':
            o->brokers = optarg;
            break;
        case 'g':
            o->group = optarg;
            break;
        case 't':
            if (add_topics(o, optarg) != 0)
                return usage_error("out of memory");
            break;
        case 'd':
            o->conninfo = optarg;
            break;
        case 'X':
            if (!strchr(optarg, '=') || optarg[0] == '=')
                return usage_error("-X %s: expected KEY=VALUE", optarg);
            o->kafka_props[o->nkafka_props++] = optarg;
            break;
        case OPT_COMMIT_INTERVAL: {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 3600000)
                return usage_error("--commit-interval-ms %s: expected 1 to 3600000", optarg);
            o->commit_interval_ms = (int)v;
            break;
        }
        case OPT_MIGRATE:
            o->migrate = true;
            break;
        case 'v':
            o->verbose = true;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 1;
        case ':':
            return usage_error("%s: missing value", argv[optind - 1]);
        default:
            return usage_error("%s: unknown option", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error("%s: unexpected argument", argv[optind]);

    if (!o->brokers)
        o->brokers = env_or("ORDER_CONSUMER_BROKERS", DEFAULT_BROKERS);
    if (!o->group)
        o->group = env_or("ORDER_CONSUMER_GROUP", DEFAULT_GROUP);
    if (!o->conninfo)
        o->conninfo = env_or("ORDER_CONSUMER_DB", "");
    if (o->ntopics == 0 && add_topics(o, env_or("ORDER_CONSUMER_TOPICS", DEFAULT_TOPICS)) != 0)
        return usage_error("out of memory");
    if (o->ntopics == 0)
        return usage_error("no topic given");
    return 0;
}

void oc_options_free(struct oc_options *o) {
    for (size_t i = 0; i < o->ntopics; i++)
        free(o->topics[i]);
    free(o->topics);
    free(o->kafka_props);
    memset(o, 0, sizeof(*o));
}
