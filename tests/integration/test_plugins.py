"""Plugins end to end: real redis-server + mock Kafka + the expiry-bridge
binary loading the shipped plugins (and the test-only `faulty` one) from
the build tree. Each test arms keys in Redis and checks what lands on
Kafka and what the counters say: filtered events, fields added, topics
and keys rewritten, a plugin's failure sent to the dead_letter topic (or
counted as a drop; a ledgered timer held in the ledger until it can be
delivered), a reload that swaps plugins while events flow with nothing
lost, and `check` naming a bad plugin at file:line:col.
"""
import os
import threading
import time
import unittest

from ebtest import (BridgeTestCase, bridge_config, final_stats, free_port, http_config,
                    run_check, scrape, validate_event, wait_for, wait_stats)
from ledgertest import FAST_LEDGER, ledger_key, wait_ledger_ready

BUILD = os.environ.get("EB_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..",
                                                    "build"))
PLUGIN_DIR = os.path.join(BUILD, "plugins")
FAULTY = os.path.join(BUILD, "tests", "support", "plugins", "faulty.so")
BAD_ABI = os.path.join(BUILD, "tests", "support", "plugins", "bad_abi.so")


def plugins(text):
    return "plugin_dir: %s\nplugins:\n%s" % (PLUGIN_DIR, text)


FILTER_ENRICH = plugins("""
  - name: no-tests
    path: filter
    settings:
      drop:
        - key: "order:test:*"
  - name: tag
    path: enrich
    settings:
      fields: { region: eu-west, ref: "order-{id}" }
      topic: "orders.{shop}"
      kafka_key: "{shop}/{id}"
""")

ROUTE = """
  - name: orders
    match: "order:{shop}:{id}"
    topic: orders
    plugins: [no-tests, tag]
"""


class PluginsTest(BridgeTestCase, unittest.TestCase):

    def stack(self, plugin_yaml, routes, **kw):
        return self.start_stack(routes, extra=plugin_yaml, **kw)

    def arm(self, keys):
        pipe = self.redis.client().pipeline(transaction=False)
        for k in keys:
            pipe.set(k, "x", px=10)
        pipe.execute()

    def stop_and_stats(self):
        self.assertEqual(self.bridge.stop(), 0)
        return final_stats(self.bridge)

    def test_filter_drops_matching_keys_and_counts_them(self):
        self.stack(FILTER_ENRICH, ROUTE, topics=["orders.shop:4", "orders.test:4", "orders:4"])
        c = self.consumer(["orders.shop", "orders.test", "orders"])
        self.arm(["order:test:%d" % i for i in range(5)] + ["order:shop:%d" % i for i in range(5)])
        got = c.collect(5, what="the 5 events the filter keeps")
        c.drain(1.0)
        self.assertEqual(len(c.messages), 5)
        self.assertTrue(all(m["topic"] == "orders.shop" for m in got))
        stats = self.stop_and_stats()
        self.assertEqual(stats["filtered"], 5)
        self.assertEqual(stats["produced"], 5)
        self.assertEqual(stats["dropped"], 0)

    def test_enrich_adds_fields_and_rewrites_topic_and_key(self):
        self.stack(FILTER_ENRICH, ROUTE)
        c = self.consumer(["orders.shop"])
        self.arm(["order:shop:7"])
        m = c.collect(1)[0]
        self.assertEqual(m["key"], b"shop/7")
        data = m["json"]["data"]
        # Plugin fields live in data.ext, the contract's extension point,
        # beside core members they never touch (docs/event.md,
        # "Extensions"): the event as delivered is valid against the schema.
        self.assertEqual(data["ext"], {"region": "eu-west", "ref": "order-7"})
        self.assertEqual(data["params"], {"shop": "shop", "id": "7"})
        self.assertEqual(data["key"], "order:shop:7")
        validate_event(m["json"])

    def test_plugin_error_goes_to_the_dead_letter_topic_with_the_reason(self):
        self.stack(plugins("""
  - name: bad
    path: %s
    settings: { reason: "refused by policy" }
""" % FAULTY), """
  - name: orders
    match: "order:{id}"
    topic: orders
    plugins: [bad]
    dead_letter: orders.dlq
  - name: carts
    match: "cart:{id}"
    topic: carts
    plugins: [bad]
""", topics=["orders:4", "orders.dlq:4", "carts:4"])
        c = self.consumer(["orders", "orders.dlq", "carts"])
        self.arm(["order:1", "order:fail-2", "cart:fail-3", "cart:4"])
        got = {m["json"]["subject"]: m for m in c.collect(3)}
        c.drain(1.0)
        self.assertEqual(len(c.messages), 3, "cart:fail-3 has no dead_letter topic: dropped")
        dlq = got["order:fail-2"]
        self.assertEqual(dlq["topic"], "orders.dlq")
        self.assertIn(("eb-plugin-error", b"bad: refused by policy"), dlq["headers"])
        validate_event(dlq["json"])
        self.assertEqual(got["order:1"]["topic"], "orders")
        self.assertEqual(got["cart:4"]["topic"], "carts")
        stats = self.stop_and_stats()
        self.assertEqual(stats["plugin_errors"], 2)
        self.assertEqual(stats["dead_lettered"], 1)
        self.assertEqual(stats["dropped"], 1)
        self.assertEqual(stats["produced"], 3)

    def test_a_ledgered_timer_a_plugin_fails_stays_held_until_it_can_be_delivered(self):
        # docs/plugins.md, "A failing plugin on a ledgered route": without a
        # dead_letter topic the timer is neither dropped nor acknowledged; it
        # stays in the ledger, is retried each time its claim runs out, and
        # shows in eb_plugin_held_timers; a reload that adds a dead_letter
        # topic delivers it there (at least once) and acknowledges it.
        port = free_port()

        def config(dead_letter):
            return bridge_config(self.redis.port, self.kafka.bootstrap, """
  - name: orders
    match: "order:{id}"
    topic: orders
    ledger: armed
    plugins: [bad]
%s""" % ("    dead_letter: orders.dlq\n" if dead_letter else ""), extra=FAST_LEDGER + http_config(
                port) + plugins("""
  - name: bad
    path: %s
    settings: { reason: "refused by policy" }
""" % FAULTY), stats="1s")
        self.redis = self.start_redis()
        self.kafka = self.start_kafka(topics=["orders:4", "orders.dlq:4"])
        self.bridge = wait_ledger_ready(self.start_bridge(config(False)))
        c = self.consumer(["orders", "orders.dlq"])
        r = self.redis.client()
        lk = ledger_key("orders")
        deadline = r.fcall("eb1_arm", 2, "order:fail-1", lk, 50)
        r.fcall("eb1_arm", 2, "order:2", lk, 50)
        self.assertEqual(c.collect(1)[0]["json"]["subject"], "order:2")

        def metric(name, **labels):
            return scrape(port)[0].total(name, **labels)
        # FAST_LEDGER's claim_ttl is 2s: a few attempts within 8 s.
        wait_for(lambda: metric("eb_plugin_errors_total", plugin="bad") >= 3, 15,
                 what="the failing timer retried")
        self.assertEqual(metric("eb_plugin_held_timers", route="orders"), 1,
                         "one timer held, however often it was retried")
        self.assertEqual(metric("eb_events_dropped_total", reason="plugin_error"), 0)
        self.assertEqual(r.zscore(lk, "order:fail-1"), deadline, "still in the ledger")
        held = self.bridge.find_log(lambda e: e.get("msg", "").startswith(
            "plugin failed a ledgered timer; it stays in the ledger"))
        self.assertIsNotNone(held)
        self.assertEqual(held["route_timers_held"], 1)
        wait_stats(self.bridge, lambda s: s["plugin_held"] == 1 and s["dropped"] == 0,
                   what="the stats line says so")
        c.drain(1.0)
        self.assertEqual(len(c.messages), 1, "nothing produced for the failing timer")

        # The operator adds a dead_letter topic: the next attempt delivers it.
        with open(self.bridge.config_path, "w") as f:
            f.write(config(True))
        self.bridge.wait_msg("config reloaded", 15)
        m = c.collect(2, what="the held timer on the dead_letter topic")[1]
        self.assertEqual(m["topic"], "orders.dlq")
        self.assertEqual(m["json"]["subject"], "order:fail-1")
        self.assertIn(("eb-plugin-error", b"bad: refused by policy"), m["headers"])
        validate_event(m["json"])
        wait_for(lambda: r.zscore(lk, "order:fail-1") is None, 10, what="acknowledged")
        wait_for(lambda: metric("eb_plugin_held_timers", route="orders") == 0, 10,
                 what="no longer held")
        stats = self.stop_and_stats()
        self.assertEqual(stats["plugin_held"], 0)
        self.assertEqual(stats["dead_lettered"], 1)

    def test_reload_swaps_plugins_between_events_with_nothing_lost(self):
        def config(region):
            return bridge_config(self.redis.port, self.kafka.bootstrap, """
  - name: orders
    match: "order:{id}"
    topic: orders
    plugins: [tag]
""", extra=plugins("""
  - name: tag
    path: enrich
    settings: { fields: { region: %s } }
""" % region))
        self.redis = self.start_redis()
        self.kafka = self.start_kafka()
        self.bridge = self.start_bridge(config("before"))
        c = self.consumer(["orders"])
        stop = threading.Event()
        sent = []

        def publish():
            r = self.redis.client()
            while not stop.is_set():
                r.set("order:%d" % len(sent), "x", px=5)
                sent.append(1)
                time.sleep(0.001)  # pacing: a steady stream the reload lands in

        t = threading.Thread(target=publish, daemon=True)
        t.start()
        try:
            c.collect(300, what="events before the reload")
            with open(self.bridge.config_path, "w") as f:
                f.write(config("after"))
            self.bridge.wait_msg("config reloaded", 15)
            # interval=0: one message a poll, and the stream queued thousands
            # before the reload (a 10 ms pause between polls read 100/s).
            wait_for(lambda: c.poll_once() is not None and
                     c.messages[-1]["json"]["data"]["ext"]["region"] == "after", 30,
                     interval=0, what="events after the reload")
            c.collect(len(c.messages) + 300, what="more events after the reload")
        finally:
            stop.set()
            t.join(10)
        n = len(sent)
        c.collect(n, timeout=60, what="every event across the reload")
        c.drain(1.0)
        subjects = [m["json"]["subject"] for m in c.messages]
        self.assertEqual(sorted(set(subjects)), sorted("order:%d" % i for i in range(n)))
        regions = {m["json"]["data"]["ext"]["region"] for m in c.messages}
        self.assertEqual(regions, {"before", "after"})
        stats = self.stop_and_stats()
        self.assertEqual(stats["dropped"], 0)
        self.assertEqual(stats["plugin_errors"], 0)

    def test_check_names_a_plugin_built_for_another_abi_at_file_line_col(self):
        text = bridge_config(6379, "localhost:9092", """
  - name: orders
    match: "order:{id}"
    topic: orders
    plugins: [old]
""", extra=plugins("""
  - name: old
    path: %s
""" % BAD_ABI))
        rc, out, err = run_check(text)
        self.assertEqual(rc, 78)
        line = next(i for i, l in enumerate(text.split("\n"), 1) if "bad_abi.so" in l)
        self.assertIn("config.yaml:%d:11: invalid plugins[0].path: bad_abi.so was built for "
                      "plugin ABI 99: expected 1, found 99" % line, err)


if __name__ == "__main__":
    unittest.main()
