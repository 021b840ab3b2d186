"""Shutdown and reload: SIGTERM drains in-flight events; SIGHUP swaps routes."""
import collections
import signal
import unittest

from ebtest import BridgeTestCase, bridge_config, final_stats, wait_for, wait_stats

ROUTES = """
  - name: orders
    match: "order:{id}"
    topic: orders.expired
    key: "{id}"
"""


class ShutdownTest(BridgeTestCase, unittest.TestCase):

    def arm(self, n, prefix="order:"):
        pipe = self.redis.client().pipeline(transaction=False)
        keys = ["%s%d" % (prefix, i) for i in range(n)]
        for k in keys:
            pipe.set(k, "x", px=10)
        pipe.execute()
        return keys

    def test_sigterm_drains_in_flight_events_and_exits_0(self):
        self.start_stack(ROUTES, topics=["orders.expired:4"], stats="100ms", drain="20s")
        self.kafka.down()
        keys = self.arm(500)
        wait_stats(self.bridge, lambda s: s["received"] >= 500 and s["inflight"] >= 500)
        self.bridge.send_signal(signal.SIGTERM)
        self.bridge.wait_log(lambda e: e.get("msg", "").startswith("shutting down"))
        self.kafka.up()
        self.assertEqual(self.bridge.wait_exit(30), 0)
        c = self.consumer(["orders.expired"])
        c.collect(500)
        c.drain(1.0)
        got = collections.Counter(m["json"]["subject"] for m in c.messages)
        print("RESULT sigterm_drain expected=500 delivered=%d lost=%d" % (
            len(set(got) & set(keys)), len(set(keys) - set(got))), flush=True)
        self.assertEqual(set(got), set(keys))
        self.assertEqual(final_stats(self.bridge)["produced"], 500)

    def test_sigterm_stops_reading_redis(self):
        self.start_stack(ROUTES, stats="100ms")
        self.bridge.send_signal(signal.SIGTERM)
        self.assertEqual(self.bridge.wait_exit(20), 0)
        clients = self.redis.client().client_list(_type="pubsub")
        self.assertEqual(clients, [], "no subscriber left behind")

    def test_sigterm_with_kafka_unreachable_exits_75_naming_the_undelivered_count(self):
        self.start_stack(ROUTES, stats="100ms", drain="1s")
        self.kafka.down()
        self.arm(50)
        wait_stats(self.bridge, lambda s: s["received"] >= 50)
        self.bridge.send_signal(signal.SIGTERM)
        self.assertEqual(self.bridge.wait_exit(30), 75)
        entry = self.bridge.find_log(lambda e: "undelivered" in e)
        self.assertEqual(entry["undelivered"], 50)

    def test_sighup_swaps_routes_between_two_events(self):
        self.start_stack(ROUTES)
        c = self.consumer(["orders.expired", "orders.v2"])
        self.arm(1, prefix="order:a")
        c.collect(1)
        with open(self.bridge.config_path, "w") as f:
            f.write(bridge_config(self.redis.port, self.kafka.bootstrap, ROUTES.replace(
                "orders.expired", "orders.v2")))
        self.bridge.send_signal(signal.SIGHUP)
        self.bridge.wait_msg("config reloaded")
        self.arm(1, prefix="order:b")
        c.collect(2)
        self.assertEqual([(m["topic"], m["json"]["subject"]) for m in c.messages],
                         [("orders.expired", "order:a0"), ("orders.v2", "order:b0")])

    def test_an_invalid_file_on_sighup_is_rejected_and_the_old_routes_stay(self):
        self.start_stack(ROUTES)
        c = self.consumer(["orders.expired"])
        with open(self.bridge.config_path, "w") as f:
            f.write("routes: [ {name: broken\n")
        self.bridge.send_signal(signal.SIGHUP)
        entry = self.bridge.wait_log(lambda e: e.get("msg", "").startswith("config reload rejected"))
        self.assertIn("config.yaml:", entry["error"], "names file:line:col")
        self.arm(3)
        c.collect(3)


if __name__ == "__main__":
    unittest.main()
