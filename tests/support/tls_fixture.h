/* tls_fixture.h -- a throwaway PKI for TLS tests: two certificate
 * authorities and the server and client certificates the tests need,
 * made by tests/support/make_certs.sh (the openssl command line) in a temp
 * dir of the test's own, removed with it. The file names are the script's
 * (ca, other-ca, server, named, localhost, wrongname, expired, untrusted,
 * client, client-other): eb_fix_tls_path(pki, "server", "pem").
 *
 * Test-only code. Aborts the test program when openssl cannot make them:
 * a broken fixture is not a test result.
 */
#ifndef EB_TEST_TLS_FIXTURE_H
#define EB_TEST_TLS_FIXTURE_H

#include <stddef.h>

/* Zero it before use; owned by the fixture. */
struct eb_fix_tls {
    char *dir;
    char path[4096]; /* the last eb_fix_tls_path() */
};

/* Make the whole set in a fresh temp dir (about a second). */
void eb_fix_tls_make(struct eb_fix_tls *pki);

/* DIR/NAME.EXT ("ca", "pem" -> .../ca.pem). Points into pki: valid until
 * the next call; copy it to keep it. */
const char *eb_fix_tls_path(struct eb_fix_tls *pki, const char *name, const char *ext);

/* Remove the dir. Safe on a zeroed struct and when called twice. */
void eb_fix_tls_remove(struct eb_fix_tls *pki);

#endif
