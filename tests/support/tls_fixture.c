/* tls_fixture.c -- throwaway certificates for TLS tests (see tls_fixture.h). */
#include <stdio.h>
#include <stdlib.h>

#include "fixture.h"
#include "tls_fixture.h"

void eb_fix_tls_make(struct eb_fix_tls *pki) {
    pki->dir = eb_fix_tempdir("eb-pki");
    char cmd[8400];
    snprintf(cmd, sizeof(cmd), "sh '%s' '%s'", EB_MAKE_CERTS, pki->dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "tls fixture: %s failed (is openssl installed?)\n", EB_MAKE_CERTS);
        eb_fix_tls_remove(pki);
        abort();
    }
}

const char *eb_fix_tls_path(struct eb_fix_tls *pki, const char *name, const char *ext) {
    snprintf(pki->path, sizeof(pki->path), "%s/%s.%s", pki->dir, name, ext);
    return pki->path;
}

void eb_fix_tls_remove(struct eb_fix_tls *pki) {
    if (pki->dir) {
        eb_fix_rmtree(pki->dir);
        free(pki->dir);
        pki->dir = NULL;
    }
}
