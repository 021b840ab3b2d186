/* fault.c -- TEST-ONLY fault injection (see fault.h). */
#include "fault.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long crash_after_db_commit; /* 0: off */
static long db_commits;

int oc_fault_init(void) {
    const char *spec = getenv("EB_CONSUMER_FAULT");
    if (!spec || !spec[0])
        return 0;
    const char *prefix = "crash-after-db-commit:";
    char *end;
    if (strncmp(spec, prefix, strlen(prefix)) == 0) {
        crash_after_db_commit = strtol(spec + strlen(prefix), &end, 10);
        if (!*end && crash_after_db_commit > 0)
            return 0;
    }
    fprintf(stderr,
            "order-consumer: EB_CONSUMER_FAULT=%s: unknown fault "
            "(test-only; expected crash-after-db-commit:N)\n",
            spec);
    return -1;
}

void oc_fault_after_db_commit(void) {
    if (crash_after_db_commit && ++db_commits == crash_after_db_commit)
        kill(getpid(), SIGKILL); /* as `kill -9` from outside: no cleanup at all */
}
