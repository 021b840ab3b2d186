"""tlstest -- TLS helpers for the Python tests (tests/integration/test_tls.py),
on top of ebtest's fixtures.

  Pki               the throwaway CAs and certificates of
                    tests/support/make_certs.sh, in a temp dir of the test
  tls_server_args() redis-server arguments for a TLS port beside the
                    plaintext one (the fixtures and redis-py keep using the
                    plaintext port; the bridge is pointed at the TLS one)
  start_tls_redis() a RedisServer started with them, on a free TLS port
  with_tls()        a bridge config (ebtest.bridge_config) moved to rediss://
  tls_unavailable() None when this build speaks TLS to Redis, else the
                    reason `expiry-bridge check` gives (hiredis 0.14)

Every process is an ebtest fixture: stopped by PID on every exit path.
"""

import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from ebtest import RedisServer, TempDir, free_port, run_check  # noqa: E402

MAKE_CERTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "make_certs.sh")


class Pki:
    """make_certs.sh's set in a fresh temp dir: path("server", "pem")."""

    def __init__(self):
        self.dir = TempDir("pki")
        subprocess.run(["sh", MAKE_CERTS, self.dir.path], check=True, timeout=60)

    def path(self, name, ext="pem"):
        return os.path.join(self.dir.path, "%s.%s" % (name, ext))

    def cleanup(self):
        self.dir.cleanup()


def tls_server_args(pki, tls_port, cert="server", auth_clients="no"):
    """A TLS port serving the certificate `cert`, verifying clients against
    the PKI's CA as auth_clients says."""
    return ["--tls-port", str(tls_port), "--tls-cert-file", pki.path(cert),
            "--tls-key-file", pki.path(cert, "key"), "--tls-ca-cert-file", pki.path("ca"),
            "--tls-auth-clients", auth_clients]


def with_tls(config, tls_port, host="localhost", **tls):
    """config (from ebtest.bridge_config, url redis://127.0.0.1:PORT) with
    url rediss://host:tls_port and a redis.tls section of the keyword
    arguments (ca_file=..., cert_file=..., insecure_skip_verify="true")."""
    section = "".join("    %s: %s\n" % kv for kv in tls.items())
    new, n = re.subn(r"  url: redis://127\.0\.0\.1:\d+\n",
                     "  url: rediss://%s:%d\n%s" % (host, tls_port,
                                                   "  tls:\n" + section if tls else ""),
                     config, count=1)
    assert n == 1, "no redis url in the config"
    return new


def start_tls_redis(pki, cert="server", auth_clients="no", appendonly=False):
    """A started ebtest.RedisServer with a TLS port beside its plaintext
    one: (server, tls_port). A port taken between picking and binding (the
    mock Kafka picks its own) is picked again. Stop it with .cleanup()."""
    for attempt in range(5):
        tls_port = free_port()
        r = RedisServer(args=tls_server_args(pki, tls_port, cert, auth_clients),
                        appendonly=appendonly)
        try:
            return r.start(), tls_port
        except AssertionError as e:
            r.cleanup()
            if "Address already in use" not in str(e) or attempt == 4:
                raise


def tls_unavailable():
    """None when `check` accepts a rediss:// URL; else its words."""
    rc, out, err = run_check(
        "redis:\n  url: rediss://localhost:%d\nkafka:\n  brokers: 127.0.0.1:9\nroutes:\n"
        "  - { name: a, match: \"a:{id}\", topic: a }\n" % free_port())
    return None if rc == 0 else (err or out).strip()
