/* cli.h -- the command line: `run -c FILE`, `check -c FILE`,
 * `functions load -c FILE`, `--version`, `--help`, and the exit codes the
 * daemon promises.
 */
#ifndef EB_CLI_H
#define EB_CLI_H

#include <stdio.h>

/* Exit codes (sysexits.h values where one fits, so init systems and
 * Kubernetes show something meaningful). Documented in --help and README. */
#define EB_EXIT_OK 0          /* ran and stopped cleanly; or check passed */
#define EB_EXIT_FAILURE 1     /* a runtime failure (e.g. cannot create the producer) */
#define EB_EXIT_USAGE 64      /* bad command line */
#define EB_EXIT_UNAVAILABLE 69 /* functions load: Redis unreachable or it refused the library */
#define EB_EXIT_UNDELIVERED 75 /* stopped, but events were still undelivered at the drain deadline */
#define EB_EXIT_CONFIG 78     /* configuration invalid; nothing was connected */

enum eb_cli_command {
    EB_CMD_RUN,
    EB_CMD_CHECK,
    EB_CMD_VERSION,
    EB_CMD_HELP,
    EB_CMD_FUNCTIONS_LOAD
};

struct eb_cli {
    enum eb_cli_command command;
    const char *config_path; /* borrowed from argv */
};

/* Parse argv. Returns 0, or EB_EINVAL with a one-line reason in errstr
 * (the caller prints it with a hint to --help and exits EB_EXIT_USAGE). */
int eb_cli_parse(int argc, char **argv, struct eb_cli *out, char *errstr, size_t errstr_size);

/* The --help text. */
void eb_cli_usage(FILE *out);

/* "expiry-bridge 0.1.0 (hiredis 0.14.1, librdkafka 2.0.2, ...)" */
void eb_cli_version(FILE *out);

#endif
