/* cli.c -- argv parsing, --help and --version. */
#include <librdkafka/rdkafka.h>
#include <event2/event.h>
#include <stdbool.h>
#include <string.h>
#include <yaml.h>

#include "core/error.h"
#include "core/version.h"
#include "daemon/cli.h"
#include "redis/redis_conn.h"

void eb_cli_usage(FILE *out) {
    fputs("Usage: expiry-bridge run -c FILE\n"
          "       expiry-bridge check -c FILE\n"
          "       expiry-bridge functions load -c FILE\n"
          "       expiry-bridge --version | --help\n"
          "\n"
          "Forwards Redis key-expiry notifications to Kafka as CloudEvents, routed by\n"
          "key prefix (YAML routes).\n"
          "\n"
          "Commands:\n"
          "  run    connect to Redis and Kafka and forward events until SIGTERM/SIGINT.\n"
          "         SIGHUP reloads the routes from FILE.\n"
          "  check  validate FILE without connecting to anything; print the routes.\n"
          "  functions load\n"
          "         install the deadline ledger's Redis Function library (eb_timers_v1:\n"
          "         FCALL eb1_arm/eb1_disarm/eb1_rearm) into the Redis of FILE. run loads\n"
          "         it too, on every connect, when a route uses the ledger.\n"
          "\n"
          "Options:\n"
          "  -c, --config FILE   the YAML configuration (see config/expiry-bridge.example.yaml)\n"
          "  -h, --help          this text\n"
          "  -V, --version       version and library versions\n"
          "\n"
          "Exit codes:\n"
          "   0  stopped cleanly after delivering every event (run), or FILE is valid (check)\n"
          "   1  runtime failure (see the last log line)\n"
          "  64  bad command line\n"
          "  69  functions load: Redis unreachable, or it refused the library\n"
          "  75  stopped, but some events were still undelivered when the drain time ran out\n"
          "  78  configuration invalid (nothing was connected)\n"
          "\n"
          "Logs are JSON lines on stderr. Documentation: README.md, docs/.\n",
          out);
}

void eb_cli_version(FILE *out) {
    fprintf(out, "expiry-bridge %s (hiredis %s, librdkafka %s, libevent %s, libyaml %s)\n",
            EB_VERSION_STR, eb_redis_conn_version(), rd_kafka_version_str(),
            event_get_version(), yaml_get_version_string());
}

static bool is_opt(const char *a, const char *s, const char *l) {
    return strcmp(a, s) == 0 || strcmp(a, l) == 0;
}

int eb_cli_parse(int argc, char **argv, struct eb_cli *out, char *errstr, size_t errstr_size) {
    memset(out, 0, sizeof(*out));
    if (argc < 2)
        return eb_error_set(errstr, errstr_size, EB_EINVAL, "missing command (run, check or functions load)");
    int i = 1;
    const char *a = argv[i];
    if (is_opt(a, "-h", "--help") || strcmp(a, "help") == 0) {
        out->command = EB_CMD_HELP;
        return 0;
    }
    if (is_opt(a, "-V", "--version") || strcmp(a, "version") == 0) {
        out->command = EB_CMD_VERSION;
        return 0;
    }
    int first = 2;
    if (strcmp(a, "run") == 0) {
        out->command = EB_CMD_RUN;
    } else if (strcmp(a, "check") == 0) {
        out->command = EB_CMD_CHECK;
    } else if (strcmp(a, "functions") == 0) {
        if (argc < 3 || strcmp(argv[2], "load") != 0)
            return eb_error_set(errstr, errstr_size, EB_EINVAL,
                             "functions needs a subcommand: functions load -c FILE");
        out->command = EB_CMD_FUNCTIONS_LOAD;
        first = 3;
    } else {
        return eb_error_set(errstr, errstr_size, EB_EINVAL,
                         "unknown command '%s' (expected run, check or functions load)", a);
    }
    for (i = first; i < argc; i++) {
        a = argv[i];
        if (is_opt(a, "-h", "--help")) {
            out->command = EB_CMD_HELP;
            return 0;
        }
        if (is_opt(a, "-c", "--config")) {
            if (i + 1 >= argc)
                return eb_error_set(errstr, errstr_size, EB_EINVAL, "%s needs a file name", a);
            out->config_path = argv[++i];
        } else if (strncmp(a, "--config=", 9) == 0) {
            out->config_path = a + 9;
        } else {
            return eb_error_set(errstr, errstr_size, EB_EINVAL, "unknown option '%s'", a);
        }
    }
    if (!out->config_path || !*out->config_path)
        return eb_error_set(errstr, errstr_size, EB_EINVAL,
                         "%s needs -c FILE (the YAML configuration)",
                         out->command == EB_CMD_FUNCTIONS_LOAD ? "functions load" : argv[1]);
    return 0;
}
