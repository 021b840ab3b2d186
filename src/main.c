/* main.c -- parse the command line and hand over to app.c; no logic here. */
#include <stdio.h>

#include "daemon/app.h"
#include "daemon/cli.h"

int main(int argc, char **argv) {
    struct eb_cli cli;
    char errstr[512];
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (eb_cli_parse(argc, argv, &cli, errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "expiry-bridge: %s\nTry 'expiry-bridge --help'.\n", errstr);
        return EB_EXIT_USAGE;
    }
    switch (cli.command) {
    case EB_CMD_HELP:
        eb_cli_usage(stdout);
        return EB_EXIT_OK;
    case EB_CMD_VERSION:
        eb_cli_version(stdout);
        return EB_EXIT_OK;
    case EB_CMD_CHECK:
        return eb_app_check(cli.config_path);
    case EB_CMD_RUN:
        return eb_app_run(cli.config_path);
    case EB_CMD_FUNCTIONS_LOAD:
        return eb_app_functions_load(cli.config_path);
    }
    return EB_EXIT_USAGE;
}
