"""Hot reload: by SIGHUP, by a plain write, by an editor's rename-over, by a
Kubernetes ConfigMap update (the `..data` symlink swap kubelet does); a
touch is not a reload; an invalid file is rejected, counted, and the old
routes stay. Connection settings that change are applied by reconnecting:
a new Redis server takes over with no event lost, a Kafka brokers change
keeps the old producer until its in-flight events are delivered. Process
settings (log level, stats interval, http.listen) apply live."""
import collections
import os
import re
import shutil
import signal
import subprocess
import time
import unittest

from ebtest import (EB_BIN, Bridge, BridgeTestCase, Consumer, MockKafka, ReferenceSubscriber,
                    bridge_config, free_port, http_config, http_get, is_subscribed_log, scrape,
                    wait_for)

# tests/support/slow_dns.c: getaddrinfo() of *.slow.test names waits
# EB_SLOW_DNS_MS, as with an unreachable resolver.
SLOW_DNS = os.path.join(os.environ.get("EB_BUILD_DIR", ""), "tests", "support",
                        "libeb_slow_dns.so")


def slow_dns_env(hold_ms):
    """The environment that preloads the slow resolver into the bridge. A
    sanitizer runtime the binary links must come first in LD_PRELOAD."""
    ldd = subprocess.run(["ldd", EB_BIN], capture_output=True, text=True).stdout
    runtimes = re.findall(r"=> (\S*lib(?:asan|tsan|ubsan)\.so[.\d]*) ", ldd)
    return {"LD_PRELOAD": " ".join(runtimes + [SLOW_DNS]), "EB_SLOW_DNS_MS": str(hold_ms)}

ROUTES = """
  - name: orders
    match: "order:{id}"
    topic: %s
    key: "{id}"
"""


def routes(topic="orders.expired"):
    return ROUTES % topic


class ReloadTest(BridgeTestCase, unittest.TestCase):

    # ------------------------------------------------------------ helpers

    def config(self, topic="orders.expired", redis_port=None, brokers=None, http_port=None,
               level="info", **kw):
        text = bridge_config(redis_port or self.redis.port, brokers or self.kafka.bootstrap,
                             routes(topic), extra=http_config(http_port or self.port), **kw)
        return text.replace("level: info", "level: " + level)

    def start(self, **kw):
        self.port = free_port()
        self.redis = self.start_redis(kw.pop("redis_args", ()))
        self.kafka = self.start_kafka()
        self.bridge = self.start_bridge(self.config(**kw))
        return self.bridge

    def write(self, text, path=None):
        """A plain write: truncate, write, close (one inotify burst)."""
        with open(path or self.bridge.config_path, "w") as f:
            f.write(text)

    def rename_over(self, text, path=None):
        """What editors and config tools do: write a temporary, rename it over."""
        path = path or self.bridge.config_path
        tmp = os.path.join(os.path.dirname(path), ".config.yaml.tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)

    def arm(self, keys, server=None):
        pipe = (server or self.redis).client().pipeline(transaction=False)
        for k in keys:
            pipe.set(k, "x", px=10)
        pipe.execute()

    def count(self, msg):
        with self.bridge._lock:
            return sum(1 for e in self.bridge.logs if e.get("msg") == msg)

    def wait_count(self, msg, n, timeout=15):
        return wait_for(lambda: self.count(msg) >= n, timeout,
                        what="%d x %r (have %d)" % (n, msg, self.count(msg)))

    def last(self, msg):
        with self.bridge._lock:
            found = [e for e in self.bridge.logs if e.get("msg") == msg]
        return found[-1] if found else None

    def metrics(self):
        return scrape(self.port)[0]

    def reloads(self, result):
        return self.metrics().get("eb_config_reloads_total", result=result)

    def topics_of(self, consumer):
        return [(m["topic"], m["json"]["subject"]) for m in consumer.messages]

    # ----------------------------------------------------------- triggers

    def test_sighup_reloads_even_an_unchanged_file(self):
        self.start()
        self.bridge.send_signal(signal.SIGHUP)
        entry = self.bridge.wait_msg("config reloaded")
        self.assertEqual(entry["trigger"], "SIGHUP")
        self.assertFalse(entry["redis_reconnected"])
        self.assertFalse(entry["kafka_reconnected"])
        m = self.metrics()
        self.assertEqual(m.get("eb_config_reloads_total", result="ok"), 1)
        self.assertEqual(m.get("eb_config_last_reload_successful"), 1)

    def test_a_plain_write_reloads_once_and_swaps_routes_between_two_events(self):
        self.start()
        c = self.consumer(["orders.expired", "orders.v2"])
        self.arm(["order:a"])
        c.collect(1)
        self.write(self.config(topic="orders.v2"))
        entry = self.bridge.wait_msg("config reloaded")
        self.assertIn("config.yaml", entry["trigger"])
        self.arm(["order:b"])
        c.collect(2)
        self.assertEqual(self.topics_of(c), [("orders.expired", "order:a"), ("orders.v2", "order:b")])
        self.assertEqual(self.reloads("ok"), 1, "one write, one reload")
        self.assertEqual(self.reloads("failed"), 0)

    def test_a_rename_over_reloads_once(self):
        self.start()
        c = self.consumer(["orders.v2"])
        self.rename_over(self.config(topic="orders.v2"))
        entry = self.bridge.wait_msg("config reloaded")
        self.assertIn("moved_to config.yaml", entry["trigger"])
        self.arm(["order:1"])
        c.collect(1)
        self.assertEqual(self.reloads("ok"), 1)

    def test_a_kubernetes_configmap_update_swapping_the_data_symlink_reloads(self):
        """kubelet's atomic writer: <mount>/..<timestamp>/config.yaml holds
        the data, <mount>/..data links to that directory, and
        <mount>/config.yaml links to ..data/config.yaml. An update writes a
        new timestamped directory, links ..data_tmp to it, renames that over
        ..data and removes the old directory."""
        self.port = free_port()
        self.redis = self.start_redis()
        self.kafka = self.start_kafka()
        self.bridge = Bridge("unused: true\n")
        self.addCleanup(self.bridge.cleanup)
        mnt = os.path.join(self.bridge.dir.path, "etc-expiry-bridge")
        os.mkdir(mnt)

        def version(name, text):
            os.mkdir(os.path.join(mnt, name))
            with open(os.path.join(mnt, name, "config.yaml"), "w") as f:
                f.write(text)
        version("..2026_11_24_03_40_00.000000001", self.config())
        os.symlink("..2026_11_24_03_40_00.000000001", os.path.join(mnt, "..data"))
        os.symlink("..data/config.yaml", os.path.join(mnt, "config.yaml"))
        self.bridge.args = ["run", "-c", os.path.join(mnt, "config.yaml")]
        self.bridge.start()
        self.bridge.wait_log(is_subscribed_log, 20, what="bridge subscribed")
        c = self.consumer(["orders.expired", "orders.v2"])

        version("..2026_11_24_03_45_00.000000002", self.config(topic="orders.v2"))
        os.symlink("..2026_11_24_03_45_00.000000002", os.path.join(mnt, "..data_tmp"))
        os.rename(os.path.join(mnt, "..data_tmp"), os.path.join(mnt, "..data"))
        shutil.rmtree(os.path.join(mnt, "..2026_11_24_03_40_00.000000001"))

        entry = self.bridge.wait_msg("config reloaded")
        self.assertIn("..data", entry["trigger"])
        self.arm(["order:7"])
        c.collect(1)
        self.assertEqual(self.topics_of(c), [("orders.v2", "order:7")])
        self.assertEqual(self.reloads("ok"), 1, "one ConfigMap update, one reload")

    def test_a_touch_does_not_reload_and_the_log_level_applies_at_once(self):
        self.start()
        self.write(self.config(level="debug"))
        self.bridge.wait_msg("config reloaded")
        os.utime(self.bridge.config_path)
        entry = self.bridge.wait_msg("config file touched; content unchanged, not reloading")
        self.assertIn("attrib", entry["trigger"])
        self.assertEqual(self.reloads("ok"), 1)

    # ------------------------------------------------------ invalid files

    def test_an_invalid_file_is_rejected_counted_and_the_old_routes_stay(self):
        self.start()
        c = self.consumer(["orders.expired", "orders.v2"])
        self.rename_over("routes: [ {name: broken\n")
        entry = self.bridge.wait_log(
            lambda e: e.get("msg", "").startswith("config reload rejected"))
        self.assertIn("config.yaml:", entry["error"], "names file:line:col")
        m = self.metrics()
        self.assertEqual(m.get("eb_config_reloads_total", result="failed"), 1)
        self.assertEqual(m.get("eb_config_last_reload_successful"), 0)
        self.arm(["order:1"])
        c.collect(1)
        self.rename_over(self.config(topic="orders.v2"))
        self.bridge.wait_msg("config reloaded")
        self.arm(["order:2"])
        c.collect(2)
        self.assertEqual(self.topics_of(c), [("orders.expired", "order:1"), ("orders.v2", "order:2")])
        self.assertEqual(self.metrics().get("eb_config_last_reload_successful"), 1)

    # ------------------------------------------------ connection settings

    def test_a_new_redis_server_takes_over_and_in_flight_events_of_the_old_are_delivered(self):
        self.start()
        r2 = self.start_redis()
        c = self.consumer(["orders.expired"])
        self.kafka.down()
        old = ["order:old%d" % i for i in range(50)]
        self.arm(old)
        wait_for(lambda: self.metrics().get("eb_kafka_queue_events") == 50,
                 what="50 events in flight from the old server")
        self.rename_over(self.config(redis_port=r2.port))
        entry = self.bridge.wait_msg("config reloaded")
        self.assertTrue(entry["redis_reconnected"])
        new = ["order:new%d" % i for i in range(30)]
        self.arm(new, server=r2)
        wait_for(lambda: self.metrics().get("eb_kafka_queue_events") == 80,
                 what="30 events from the new server")
        self.kafka.up()
        c.collect(80)
        c.drain(0.5)
        self.assertEqual(set(m["json"]["subject"] for m in c.messages), set(old + new))
        sources = collections.Counter(m["json"]["source"] for m in c.messages)
        self.assertEqual(sources, {"redis://127.0.0.1:%d/0" % self.redis.port: 50,
                                   "redis://127.0.0.1:%d/0" % r2.port: 30})
        m = self.metrics()
        self.assertEqual(m.get("eb_config_reconnects_total", target="redis"), 1)
        self.assertEqual(m.get("eb_redis_connected"), 1)
        wait_for(lambda: self.redis.client().client_list(_type="pubsub") == [],
                 what="the old server's subscriber closed")
        self.assertEqual(len(r2.client().client_list(_type="pubsub")), 1)

    def test_reconnecting_to_the_same_server_overlaps_and_loses_no_event(self):
        """A Redis setting changes (heartbeat interval) while keys expire
        steadily: the new connection subscribes before the old one stops,
        so every expiry Redis announced reaches Kafka (some twice)."""
        self.start(redis_args=["--hz", "100"])
        ref = ReferenceSubscriber(self.redis)
        self.addCleanup(ref.stop)
        c = self.consumer(["orders.expired"])
        n = 3000
        keys = ["order:%d" % i for i in range(n)]
        pipe = self.redis.client().pipeline(transaction=False)
        for i, k in enumerate(keys):
            pipe.set(k, "x", px=10 + i)  # one expiry per ms for 3 s
        pipe.execute()
        wait_for(lambda: len(ref.keys) >= n // 3, what="a third of the keys expired")
        self.rename_over(self.config().replace("heartbeat_interval: 200ms",
                                               "heartbeat_interval: 300ms"))
        entry = self.bridge.wait_msg("config reloaded")
        self.assertTrue(entry["redis_reconnected"])
        wait_for(lambda: len(ref.keys) >= n, 30, what="every key expired")
        announced = set(k.decode() for k in ref.keys)
        c.collect(len(announced), timeout=60)
        c.drain(1.0)
        got = collections.Counter(m["json"]["subject"] for m in c.messages)
        lost = announced - set(got)
        dups = sum(v - 1 for v in got.values())
        print("RESULT same_server_handover announced=%d delivered=%d lost=%d duplicates=%d" % (
            len(announced), len(set(got)), len(lost), dups), flush=True)
        self.assertEqual(lost, set())
        self.assertEqual(self.metrics().total("eb_redis_gaps_total"), 0)

    def test_a_file_that_changes_redis_applies_its_routes_when_the_new_connection_is_ready(self):
        self.start()
        c = self.consumer(["orders.expired", "orders.v2", "orders.v3"])
        dead = free_port()  # nothing listens there
        self.rename_over(self.config(topic="orders.v2", redis_port=dead))
        self.bridge.wait_msg("config accepted; connecting to Redis with the new settings: routes "
                             "and Kafka switch when the new connection is subscribed, the old one "
                             "reads until then")
        self.arm(["order:a"])
        c.collect(1)  # old connection, old routes
        self.rename_over(self.config(topic="orders.v3"))  # back to the live server
        self.bridge.wait_msg("config reloaded")
        self.arm(["order:b"])
        c.collect(2)
        self.assertEqual(self.topics_of(c), [("orders.expired", "order:a"), ("orders.v3", "order:b")])
        m = self.metrics()
        self.assertEqual(m.get("eb_config_reloads_total", result="ok"), 2)
        self.assertEqual(m.get("eb_config_reconnects_total", target="redis"), 1)
        self.assertEqual(m.get("eb_redis_connected"), 1)

    def test_a_brokers_change_keeps_the_old_producer_until_its_events_are_delivered(self):
        self.start()
        k2 = MockKafka().start()
        self.addCleanup(k2.stop)
        c1 = self.consumer(["orders.expired"])
        c2 = Consumer(k2.bootstrap, ["orders.expired"])
        self.addCleanup(c2.close)
        self.kafka.down()
        first = ["order:a%d" % i for i in range(40)]
        self.arm(first)
        wait_for(lambda: self.metrics().get("eb_kafka_queue_events") == 40,
                 what="40 events in flight on the first cluster")
        self.rename_over(self.config(brokers=k2.bootstrap))
        entry = self.bridge.wait_msg("config reloaded")
        self.assertTrue(entry["kafka_reconnected"])
        self.assertEqual(self.metrics().get("eb_kafka_retired_queue_events"), 40)
        second = ["order:b%d" % i for i in range(20)]
        self.arm(second)
        c2.collect(20)
        self.kafka.up()
        c1.collect(40)
        self.bridge.wait_msg("previous Kafka producer drained; closed", timeout=30)
        c1.drain(0.5)
        c2.drain(0.5)
        self.assertEqual(set(m["json"]["subject"] for m in c1.messages), set(first))
        self.assertEqual(set(m["json"]["subject"] for m in c2.messages), set(second))
        m = self.metrics()
        self.assertEqual(m.get("eb_events_produced_total", route="orders", topic="orders.expired"),
                         60, "per-route counters span both producers")
        self.assertEqual(m.get("eb_kafka_retired_queue_events"), 0)
        self.assertEqual(m.get("eb_config_reconnects_total", target="kafka"), 1)

    def test_a_retired_producer_that_stops_slowly_never_delays_healthz(self):
        """rd_kafka_destroy() joins librdkafka's threads, and a broker thread
        inside a DNS lookup ends only when the lookup does: with a slow
        resolver, closing a producer blocks for seconds. A producer a reload
        replaced is closed off the loop: /healthz answers within 100 ms
        throughout."""
        if not os.path.exists(SLOW_DNS):
            self.skipTest("tests/support/libeb_slow_dns.so is not built")
        hold_ms = 3000
        self.port = free_port()
        self.redis = self.start_redis()
        self.kafka = self.start_kafka()
        self.bridge = self.start_bridge(self.config(brokers="kafka.slow.test:9092"),
                                        env=slow_dns_env(hold_ms))

        def lookups():
            with self.bridge._lock:
                return sum(1 for l in self.bridge.raw_stderr if l.startswith("eb_slow_dns: hold"))
        # Reload right after a lookup began, so it is held while the old
        # producer is closed (it holds no event: it is closed at once).
        seen = lookups()
        wait_for(lambda: lookups() > seen, 10, what="a broker thread in a DNS lookup")
        began = time.monotonic()
        self.rename_over(self.config())
        latencies = []
        while time.monotonic() - began < hold_ms / 1000.0 + 0.5:
            t0 = time.monotonic()
            status = http_get(self.port, "/healthz")[0]
            latencies.append((time.monotonic() - t0, status))
            time.sleep(0.01)  # poll interval, not synchronisation
        worst = max(l for l, _ in latencies)
        print("RESULT retired_producer_stop healthz_requests=%d worst_ms=%.1f" % (
            len(latencies), worst * 1000), flush=True)
        self.assertEqual(set(s for _, s in latencies), {200})
        self.assertLess(worst, 0.1, "/healthz answered within 100 ms while librdkafka stopped")
        self.assertTrue(self.bridge.find_log(
            lambda e: e.get("msg") == "previous Kafka producer drained; closed"))
        stopped = self.bridge.wait_log(
            lambda e: e.get("msg", "").startswith("retired Kafka producer stopped"), 15,
            what="the retired producer's librdkafka handle destroyed")
        self.assertGreaterEqual(stopped["took_ms"], 1000, "librdkafka really was slow to stop")
        c = self.consumer(["orders.expired"])
        self.arm(["order:1"])
        c.collect(1)  # the new producer delivers

    def test_sigterm_during_a_kafka_switch_drains_both_producers(self):
        self.start(drain="20s")
        k2 = MockKafka().start()
        self.addCleanup(k2.stop)
        self.kafka.down()
        self.arm(["order:a%d" % i for i in range(10)])
        wait_for(lambda: self.metrics().get("eb_kafka_queue_events") == 10, what="10 in flight")
        self.rename_over(self.config(brokers=k2.bootstrap))
        self.bridge.wait_msg("config reloaded")
        self.bridge.send_signal(signal.SIGTERM)
        self.bridge.wait_log(lambda e: e.get("msg", "").startswith("shutting down"))
        self.kafka.up()
        self.assertEqual(self.bridge.wait_exit(30), 0)

    # --------------------------------------------------- process settings

    def test_stats_interval_and_http_listen_apply_live(self):
        self.start()
        p2 = free_port()
        self.rename_over(self.config(http_port=p2, stats="100ms"))
        self.bridge.wait_msg("config reloaded")
        self.bridge.wait_msg("stats")
        old, self.port = self.port, p2
        self.assertEqual(http_get(p2, "/healthz")[0], 200)
        with self.assertRaises(ConnectionRefusedError):
            http_get(old, "/healthz")
        # Same port, another host: our own socket holds the port.
        self.rename_over(self.config(http_port=p2).replace("127.0.0.1:%d" % p2, "0.0.0.0:%d" % p2))
        self.wait_count("config reloaded", 2)
        self.assertEqual(self.last("http server listening")["listen"], "0.0.0.0:%d" % p2)
        self.assertEqual(http_get(p2, "/healthz")[0], 200)
        self.assertEqual(self.reloads("ok"), 2)


if __name__ == "__main__":
    unittest.main()
