"""tlstest -- TLS helpers for the Python tests (tests/integration/test_tls.py),
on top of ebtest's fixtures.

  Pki               the throwaway CAs and certificates of
                    tests/support/make_certs.sh, in a temp dir of the test
  tls_server_args() redis-server arguments for a TLS port beside the
                    plaintext one (the fixtures and redis-py keep using the
                    plaintext port; the bridge is pointed at the TLS one)
  start_tls_redis() a RedisServer started with them, on a free TLS port
  TlsRedisCluster   topotest.RedisCluster whose nodes also have a TLS port
                    (tls-cluster, tls-replication): tls_port[plain port]
  TlsSentinelGroup  a master, a replica and three sentinels, each with a TLS
                    port beside its plaintext one (tls-replication: the
                    sentinels reach the data nodes and announce them by TLS)
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
import topotest  # noqa: E402

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


def _tls_file_args(pki, cert="server"):
    return ["--tls-cert-file", pki.path(cert), "--tls-key-file", pki.path(cert, "key"),
            "--tls-ca-cert-file", pki.path("ca"), "--tls-auth-clients", "no"]


class TlsRedisCluster(topotest.RedisCluster):
    """A Cluster whose nodes speak TLS on a port of their own beside the
    plaintext one the fixture uses: the bus (port + 10000, given
    explicitly) and replication run over TLS, and `CLUSTER SHARDS` announces
    both ports. tls_port maps a node's plaintext port to its TLS port."""

    def __init__(self, pki, masters=3, replicas=0, **kw):
        super().__init__(masters, replicas, **kw)
        self.pki = pki
        self.tls_port = {}

    def _node_args(self, port, d):
        tls = free_port()
        self.tls_port[port] = tls
        # The bus always asks a connecting node for a client certificate:
        # the nodes present the PKI's client one.
        return super()._node_args(port, d) + _tls_file_args(self.pki) + [
            "--tls-client-cert-file", self.pki.path("client"),
            "--tls-client-key-file", self.pki.path("client", "key"),
            "--tls-port", str(tls), "--tls-cluster", "yes", "--tls-replication", "yes",
            "--cluster-port", str(port + 10000)]

    def _create(self):
        """redis-cli creates the cluster through the TLS ports: it introduces
        the nodes by the ports it reached them on, and with tls-cluster
        those must be the TLS ones."""
        super()._create(cli=["--tls", "--cacert", self.pki.path("ca")],
                        port_of=self.tls_port.__getitem__)

    def seeds(self):
        return ",".join("127.0.0.1:%d" % self.tls_port[p] for p in self.master_ports())


class TlsSentinelGroup(topotest.SentinelGroup):
    """SentinelGroup over TLS: every data node and sentinel has a TLS port
    (tls_port[plain port]) and tls-replication yes, so the replica syncs,
    the sentinels monitor and fail over, and they name masters, by TLS."""

    def __init__(self, pki, name="mymaster"):
        super().__init__(name, replicas=1, sentinels=3)
        self.pki = pki
        self.tls_port = {}   # plain port -> TLS port, data nodes and sentinels
        self.plain_port = {}  # TLS port -> plain port, data nodes

    def _node_args(self, port):
        tls = free_port()
        self.tls_port[port], self.plain_port[tls] = tls, port
        return _tls_file_args(self.pki) + ["--tls-port", str(tls), "--tls-replication", "yes"]

    def _sentinel_head(self, port):
        tls = free_port()
        self.tls_port[port] = tls
        return ("tls-port %d\ntls-cert-file %s\ntls-key-file %s\n"
                "tls-ca-cert-file %s\ntls-auth-clients no\ntls-replication yes\n" % (
                    tls, self.pki.path("server"), self.pki.path("server", "key"),
                    self.pki.path("ca")))

    def _address(self, port):
        return self.tls_port[port]

    def _plain(self, port):
        return self.plain_port[port]
