"""TLS to Redis, end to end: the expiry-bridge binary against redis-server's
--tls-port with a throwaway PKI (tests/support/make_certs.sh), the mock
Kafka, and /metrics.

A redis-server here has both ports: the test writes through the plaintext
one (redis-py), the bridge reads through the TLS one (rediss://).

On a build whose hiredis has no TLS (0.14, Debian 12) only the test that
`check` says so runs; the others skip, saying why.
"""
import os
import re
import signal
import subprocess
import unittest

from ebtest import (EB_BIN, BridgeTestCase, Bridge, TempDir, bridge_config, free_port,
                    http_config, http_get, run_check, validate_event, wait_for)
from ledgertest import ledger_config, ledger_key, scrape_metric, wait_ledger_ready
from tlstest import (Pki, TlsRedisCluster, TlsSentinelGroup, start_tls_redis, tls_unavailable,
                     with_tls)
import topotest

ROUTES = """
  - name: orders
    match: "order:{id}"
    topic: orders.expired
    key: "{id}"
"""

UNAVAILABLE = tls_unavailable()
WHY = UNAVAILABLE and (re.search(r"(TLS to Redis needs [^;]*; [^;]*)", UNAVAILABLE) or
                       re.search(r"(.*)", UNAVAILABLE)).group(1)


def subscribed(e):
    return e.get("msg") == "redis source state" and e.get("to") == "subscribed"


def connect_failed(reason):
    return lambda e: e.get("msg") == "redis connect failed" and e.get("tls_reason") == reason


@unittest.skipIf(UNAVAILABLE, "%s" % WHY)
class TlsTest(BridgeTestCase, unittest.TestCase):

    def setUp(self):
        self.pki = Pki()
        self.addCleanup(self.pki.cleanup)
        self.kafka = self.start_kafka(topics=["orders.expired:4"])

    def start_tls_redis(self, cert="server", auth_clients="no"):
        self.redis, self.tls_port = start_tls_redis(self.pki, cert, auth_clients)
        self.addCleanup(self.redis.cleanup)
        return self.redis

    def config(self, extra="", host="localhost", **tls):
        tls.setdefault("ca_file", self.pki.path("ca"))
        return with_tls(bridge_config(self.redis.port, self.kafka.bootstrap, ROUTES,
                                      extra=extra), self.tls_port, host, **tls)

    def expire(self, *ids):
        r = self.redis.client()
        for i in ids:
            r.set("order:%s" % i, "pending", px=20)

    def test_events_are_delivered_over_a_verified_connection(self):
        self.start_tls_redis()
        self.start_bridge(self.config())
        c = self.consumer(["orders.expired"])
        self.expire(1, 2, 3)
        msgs = c.collect(3, what="three events read over TLS")
        self.assertEqual(sorted(m["key"] for m in msgs), [b"1", b"2", b"3"])
        for m in msgs:
            validate_event(m["json"])
        c.drain(0.5)
        self.assertEqual(len(c.messages), 3)

    def test_client_certificate_is_sent_when_the_server_requires_one(self):
        self.start_tls_redis(auth_clients="yes")
        self.start_bridge(self.config(cert_file=self.pki.path("client"),
                                      key_file=self.pki.path("client", "key")))
        c = self.consumer(["orders.expired"])
        self.expire(7)
        self.assertEqual(c.collect(1)[0]["key"], b"7")

    def test_unknown_ca_is_logged_counted_and_not_ready(self):
        self.start_tls_redis(cert="untrusted")
        port = free_port()
        b = self.start_bridge(self.config(extra=http_config(port)), wait=False)
        line = b.wait_log(connect_failed("unknown_ca"), 20, what="an unknown_ca line")
        self.assertEqual(line["level"], "error")
        self.assertEqual(line["setting"], "redis.tls.ca_file")
        self.assertIn("unknown CA", line["detail"])
        wait_for(lambda: scrape_metric(port, "eb_redis_tls_failures_total",
                                       reason="unknown_ca") >= 1, 10, what="the counter")
        self.assertEqual(http_get(port, "/readyz")[0], 503)
        self.assertIsNone(b.find_log(subscribed))

    def test_name_mismatch_is_logged_naming_the_name(self):
        self.start_tls_redis(cert="wrongname")
        b = self.start_bridge(self.config(), wait=False)
        line = b.wait_log(connect_failed("name_mismatch"), 20, what="a name_mismatch line")
        self.assertIn("not for 'localhost'", line["detail"])
        self.assertEqual(line["setting"], "redis.tls.server_name")

    def test_tls_url_at_a_plaintext_port_is_named(self):
        self.start_tls_redis()
        cfg = with_tls(bridge_config(self.redis.port, self.kafka.bootstrap, ROUTES),
                       self.redis.port, ca_file=self.pki.path("ca"))
        b = self.start_bridge(cfg, wait=False)
        line = b.wait_log(lambda e: e.get("msg") == "redis connect failed" and
                          e.get("tls_reason") in ("not_tls", "handshake_timeout"), 20,
                          what="a not_tls or handshake_timeout line")
        self.assertIn("plaintext", line["hint"])

    def test_insecure_skip_verify_warns_at_every_start(self):
        self.start_tls_redis(cert="untrusted")
        cfg = self.config(insecure_skip_verify="true")
        for start in (1, 2):
            b = Bridge(cfg).start()
            self.addCleanup(b.cleanup)
            w = b.wait_log(lambda e: "insecure_skip_verify is true" in e.get("msg", ""), 20,
                           what="the warning at start %d" % start)
            self.assertEqual(w["level"], "warn")
            b.wait_log(subscribed, 20, what="subscribed without verifying")
            self.assertEqual(b.stop(), 0)

    def test_reload_to_a_ca_file_that_does_not_load_is_rejected_and_reading_goes_on(self):
        self.start_tls_redis()
        b = self.start_bridge(self.config())
        c = self.consumer(["orders.expired"])
        bad = os.path.join(self.pki.dir.path, "bad-ca.pem")
        with open(bad, "w") as f:
            f.write("not a certificate\n")
        # Replaced whole (the bridge also watches the file: a half-written
        # one must not be what it reads).
        with open(b.config_path + ".new", "w") as f:
            f.write(self.config(ca_file=bad))
        os.rename(b.config_path + ".new", b.config_path)
        b.send_signal(signal.SIGHUP)
        line = b.wait_msg("config reload rejected; keeping the current routes", 20)
        self.assertIn("redis.tls.ca_file '%s'" % bad, line["error"])
        self.expire("after-reload")
        try:
            msgs = c.collect(1)
        except AssertionError:
            raise AssertionError("no event after the rejected reload; bridge log:\n" +
                                 b.stderr_tail(30))
        self.assertEqual(msgs[0]["key"], b"after-reload")

    def test_reconnects_over_tls_after_redis_restarts(self):
        self.start_tls_redis(auth_clients="yes")
        b = self.start_bridge(self.config(cert_file=self.pki.path("client"),
                                          key_file=self.pki.path("client", "key")))
        c = self.consumer(["orders.expired"])
        self.expire("a")
        c.collect(1, what="the event before the restart")
        self.redis.kill()
        self.redis.start()
        wait_for(lambda: sum(1 for e in list(b.logs) if subscribed(e)) >= 2, 20,
                 what="subscribed again over TLS")
        self.expire("b")
        msgs = c.collect(2, what="the event after the restart")
        self.assertEqual(sorted(m["key"] for m in msgs), [b"a", b"b"])
        self.assertIsNone(b.find_log(lambda e: e.get("tls_reason")))


@unittest.skipIf(UNAVAILABLE, "%s" % WHY)
class LedgerOverTlsTest(BridgeTestCase, unittest.TestCase):
    """The deadline ledger's connection and `functions load` speak TLS too."""

    def test_functions_load_and_armed_timers_over_tls(self):
        pki = Pki()
        self.addCleanup(pki.cleanup)
        self.kafka = self.start_kafka(topics=["orders:4"])
        self.redis, tls_port = start_tls_redis(pki, auth_clients="yes")
        self.addCleanup(self.redis.cleanup)
        port = free_port()
        cfg = with_tls(ledger_config(self.redis.port, self.kafka.bootstrap,
                                     extra=http_config(port)), tls_port,
                       ca_file=pki.path("ca"), cert_file=pki.path("client"),
                       key_file=pki.path("client", "key"))
        d = TempDir("fload")
        self.addCleanup(d.cleanup)
        p = subprocess.run([EB_BIN, "functions", "load", "-c", d.file("c.yaml", cfg)],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("loaded eb_timers_v1", p.stdout)

        b = self.start_bridge(cfg, wait=False)
        c = self.consumer(["orders"])
        try:
            wait_ledger_ready(b)
            r = self.redis.client()
            for i in range(5):
                r.fcall("eb1_arm", 2, "order:%d" % i, ledger_key("orders"), 50)
            msgs = c.collect(5, what="five ledgered timers")
        except AssertionError as e:
            raise AssertionError("%s; bridge log:\n%s" % (e, b.stderr_tail(30))) from None
        self.assertEqual(sorted(m["json"]["data"]["key"] for m in msgs),
                         ["order:%d" % i for i in range(5)])
        wait_for(lambda: r.zcard(ledger_key("orders")) == 0, 10, what="the ledger emptied")
        self.assertEqual(scrape_metric(port, "eb_redis_tls_failures_total"), 0)
        self.assertIsNone(b.find_log(lambda e: e.get("tls_reason")))

    def test_functions_load_refuses_an_unknown_ca(self):
        pki = Pki()
        self.addCleanup(pki.cleanup)
        self.redis, tls_port = start_tls_redis(pki, cert="untrusted")
        self.addCleanup(self.redis.cleanup)
        cfg = with_tls(ledger_config(self.redis.port, "127.0.0.1:9"), tls_port,
                       ca_file=pki.path("ca"))
        d = TempDir("fload")
        self.addCleanup(d.cleanup)
        p = subprocess.run([EB_BIN, "functions", "load", "-c", d.file("c.yaml", cfg)],
                           capture_output=True, text=True, timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("unknown CA", p.stderr)
        self.assertEqual(self.redis.client().function_list(), [])


TOPO_ROUTES = """
  - { name: orders, match: "order:{id}", topic: orders, key: "{id}" }
"""


def topology_config(url, brokers, http_port, ca_file):
    return topotest.topology_config(url, brokers, TOPO_ROUTES, http_port,
                                    redis="  tls: { ca_file: %s }\n" % ca_file)


@unittest.skipIf(UNAVAILABLE, "%s" % WHY)
class TopologyOverTlsTest(BridgeTestCase, unittest.TestCase):
    """rediss-cluster:// and rediss-sentinel://: discovery and every master
    over TLS, the masters reached at the TLS ports the cluster or the
    sentinels announce."""

    def setUp(self):
        self.pki = Pki()
        self.addCleanup(self.pki.cleanup)
        self.kafka = self.start_kafka(topics=["orders:4"])
        self.http = free_port()

    def node_subscribed(self, tls_port):
        try:
            return scrape_metric(self.http, "eb_redis_node_subscribed",
                                 node="127.0.0.1:%d" % tls_port) == 1
        except OSError:
            return False  # the HTTP server is not up yet

    def test_cluster_every_master_is_read_over_tls(self):
        cluster = TlsRedisCluster(self.pki, masters=3, replicas=0)
        self.addCleanup(cluster.cleanup)
        cluster.start()
        b = self.start_bridge(topology_config("rediss-cluster://" + cluster.seeds(),
                                              self.kafka.bootstrap, self.http,
                                              self.pki.path("ca")), wait=False)
        for p in cluster.master_ports():
            wait_for(lambda: self.node_subscribed(cluster.tls_port[p]), 30,
                     what="master %d subscribed at its TLS port" % p)
        c = self.consumer(["orders"])
        w = cluster.writer()
        ids = ["c%d" % i for i in range(30)]
        for i in ids:
            w.set("order:%s" % i, "pending", px=20)
        msgs = c.collect(len(ids), what="events from every master")
        self.assertEqual(sorted(m["key"].decode() for m in msgs), sorted(ids))
        self.assertEqual(scrape_metric(self.http, "eb_redis_masters"), 3)
        self.assertEqual(scrape_metric(self.http, "eb_redis_tls_failures_total"), 0)
        self.assertIsNone(b.find_log(lambda e: e.get("tls_reason")))

    def test_sentinel_master_is_followed_over_tls_through_a_failover(self):
        group = TlsSentinelGroup(self.pki)
        self.addCleanup(group.cleanup)
        group.start()
        b = self.start_bridge(topology_config(
            "rediss-sentinel://%s/%s" % (group.sentinel_addrs(), group.name),
            self.kafka.bootstrap, self.http, self.pki.path("ca")), wait=False)
        first = group.master_port()
        wait_for(lambda: self.node_subscribed(group.tls_port[first]), 30,
                 what="the master subscribed at its TLS port")
        c = self.consumer(["orders"])
        group.node(first).client().set("order:before", "pending", px=20)
        c.collect(1, what="the event before the failover")
        second = group.failover()
        self.assertNotEqual(first, second)
        wait_for(lambda: self.node_subscribed(group.tls_port[second]), 30,
                 what="the new master subscribed at its TLS port")
        group.node(second).client().set("order:after", "pending", px=20)
        msgs = c.collect(2, what="the event after the failover")
        self.assertEqual(sorted(m["key"] for m in msgs), [b"after", b"before"])
        self.assertIsNone(b.find_log(lambda e: e.get("tls_reason")))


@unittest.skipIf(UNAVAILABLE, "%s" % WHY)
class TlsFilesTest(unittest.TestCase):
    """Certificate files that do not load are the configuration's fault:
    named with their setting, before anything connects."""

    def config(self, ca_file):
        return with_tls(bridge_config(free_port(), "127.0.0.1:9", ROUTES), free_port(),
                        ca_file=ca_file)

    def test_functions_load_with_a_missing_ca_file_exits_78_naming_it(self):
        d = TempDir("fload")
        self.addCleanup(d.cleanup)
        missing = os.path.join(d.path, "absent-ca.pem")
        p = subprocess.run([EB_BIN, "functions", "load", "-c",
                            d.file("c.yaml", self.config(missing))],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 78, p.stderr)
        self.assertIn("redis.tls.ca_file '%s': cannot read it" % missing, p.stderr)

    def test_run_with_a_ca_file_that_is_not_pem_stops_at_start_naming_it(self):
        d = TempDir("badca")
        self.addCleanup(d.cleanup)
        bad = d.file("ca.pem", "not a certificate\n")
        b = Bridge(self.config(bad)).start()
        self.addCleanup(b.cleanup)
        self.assertEqual(b.wait_exit(30), 1, "a runtime failure at start: exit 1")
        self.assertIn("redis.tls.ca_file '%s'" % bad, b.stderr_tail())


class CheckTest(unittest.TestCase):

    @unittest.skipUnless(UNAVAILABLE, "this build has TLS to Redis")
    def test_check_refuses_rediss_naming_the_hiredis_version(self):
        self.assertRegex(UNAVAILABLE, r"hiredis \d+\.\d+\.\d+ without it")
        self.assertIn("redis.url", UNAVAILABLE)

    @unittest.skipIf(UNAVAILABLE, "%s" % WHY)
    def test_check_accepts_every_rediss_form_without_reading_the_files(self):
        for url in ("rediss://cache.example:6380", "rediss-sentinel://s1:26379/mymaster",
                    "rediss-cluster://n1:6379,n2:6379"):
            rc, out, err = run_check(
                "redis:\n  url: %s\n  tls:\n    ca_file: /run/secrets/absent/ca.pem\n"
                "    server_name: cache.example\nkafka:\n  brokers: k:9092\nroutes:\n"
                "  - { name: a, match: \"a:{id}\", topic: a }\n" % url)
            self.assertEqual(rc, 0, "%s: %s" % (url, err))


if __name__ == "__main__":
    unittest.main()
