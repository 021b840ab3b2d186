/* slow_dns.c -- an LD_PRELOAD shim for tests of the daemon: a resolver
 * that is slow for some names, as an unreachable DNS server is.
 *
 * getaddrinfo() of a name ending in ".slow.test" writes one line to
 * stderr ("eb_slow_dns: holding the lookup of NAME for MS ms"), waits
 * $EB_SLOW_DNS_MS milliseconds (default 3000) and fails with EAI_AGAIN, as
 * a resolver timeout does; every other name goes to the C library. A test
 * points kafka.brokers at such a name to keep a librdkafka broker thread
 * inside a DNS lookup (tests/integration/test_reload.py).
 *
 * Test-only; built without sanitizers, since it is preloaded after their
 * runtime.
 */
#include <dlfcn.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef int(getaddrinfo_fn)(const char *, const char *, const struct addrinfo *,
                            struct addrinfo **);

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res) {
    static const char suffix[] = ".slow.test";
    size_t n = node ? strlen(node) : 0;
    if (n < sizeof(suffix) - 1 || strcmp(node + n - (sizeof(suffix) - 1), suffix) != 0) {
        getaddrinfo_fn *real = (getaddrinfo_fn *)dlsym(RTLD_NEXT, "getaddrinfo");
        return real ? real(node, service, hints, res) : EAI_FAIL;
    }
    const char *env = getenv("EB_SLOW_DNS_MS");
    long ms = env && *env ? strtol(env, NULL, 10) : 3000;
    char line[512];
    int len = snprintf(line, sizeof(line), "eb_slow_dns: holding the lookup of %s for %ld ms\n",
                       node, ms);
    if (len > 0 && (size_t)len < sizeof(line) && write(2, line, (size_t)len) < 0)
        len = 0; /* nothing to do about a closed stderr */
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
    return EAI_AGAIN;
}
