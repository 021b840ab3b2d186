"""Coordination on the mock Kafka (docs/ha.md): what a replica does with its
units when its own configuration changes under it.

A reload that changes a Redis setting gives the owner a new connection to
the same master. The new connection takes the stream over through the
handover marker, as another replica would: the old one reads on until the
new one's marker and produces up to it; the new one produces from it.
Expiries keep coming throughout, and every one must reach Kafka once.
"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from ebtest import (BridgeTestCase, bridge_config, coordination_yaml, http_config,  # noqa: E402
                    producing, wait_for)
from kafkatest import Tally  # noqa: E402

ROUTES = """
  - name: orders
    match: "order:{id}"
    topic: orders
    key: "{id}"
"""


class ReloadWithCoordination(BridgeTestCase, unittest.TestCase):

    def setUp(self):
        self.redis = self.start_redis()
        self.kafka = self.start_kafka(1, ["orders:4", "expiry-bridge.units:1"])
        self.group = coordination_yaml("reload-%d" % os.getpid())

    def config(self, http_port, heartbeat="200ms"):
        text = bridge_config(self.redis.port, self.kafka.bootstrap, ROUTES,
                             extra=self.group + http_config(http_port))
        return text.replace("heartbeat_interval: 200ms", "heartbeat_interval: " + heartbeat)

    def test_a_redis_setting_reloaded_on_the_owner_loses_and_copies_nothing(self):
        owner = self.start_replica(self.config)
        wait_for(lambda: producing(owner) == 1, 30,
                 what="the first replica produces")
        standby = self.start_replica(self.config)
        standby.wait_log(lambda e: e.get("msg", "").startswith("coordination: joined as a standby"),
                         30, what="the second replica joined as a standby")
        c = self.consumer(["orders"])
        r = self.redis.client()
        keys = []
        for i in range(1500):
            keys.append("order:%d" % i)
            r.set(keys[-1], "x", px=5)
            if i == 500:
                with open(owner.config_path, "w") as f:
                    f.write(self.config(owner.http_port, heartbeat="300ms"))
            if i == 1000:
                entry = owner.wait_msg("config reloaded", 15)
                self.assertTrue(entry["redis_reconnected"], entry)
            time.sleep(0.002)  # a steady stream across the reload, not a wait for it
        c.collect(len(keys), timeout=60)
        c.drain(2.0)
        t = Tally(c.messages, keys)
        t.report("reload_with_coordination")
        self.assertEqual(t.lost, [], "nothing lost across the owner's reload")
        self.assertEqual(t.messages, len(keys), "nothing produced twice")
        self.assertEqual(producing(standby), 0,
                         "the standby never took over")


if __name__ == "__main__":
    unittest.main()
