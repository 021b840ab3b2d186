"""kafkatest -- ebtest's fixtures pointed at a real Kafka cluster
(kafka_cluster.KafkaCluster), for the tests in tests/kafka/.

    class MyTest(RealKafkaTestCase, unittest.TestCase):
        def test_x(self):
            topic = self.new_topic(partitions=4)      # fresh per test, rf 3
            self.start_stack(routes_for(topic))       # redis + bridge on the cluster
            ...
            t = Tally.of(consumer.messages, expected_keys)   # exact counts
            t.report("name")

One cluster per test module (setUpClass; ~8 s to start), a fresh topic per
test; setUp starts any broker a previous test left stopped. Every process
is stopped by PID on every exit path (addClassCleanup / addCleanup).
"""

import collections
import os
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ebtest import BridgeTestCase, Consumer, bridge_config, wait_for  # noqa: E402
from kafka_cluster import KafkaCluster  # noqa: E402


def hold(seconds):
    """Hold a failure for `seconds`: a scenario's parameter (an outage of
    10 s), not a wait for something to happen."""
    end = time.monotonic() + seconds
    wait_for(lambda: time.monotonic() >= end, seconds + 1, interval=0.05, what="outage end")


class Tally:
    """Exact counts of what reached a topic for a set of expected Redis keys:
    messages, distinct CloudEvents ids, distinct payloads (bytes), expected
    keys delivered and lost, and the two kinds of duplicates:
      same_bytes   a copy byte-identical to another (the producer's retry
                   written twice: Kafka's idempotence did not catch it)
      other_bytes  another copy of the same event (same id) that the bridge
                   produced again (different time or delivery)"""

    def __init__(self, messages, expected):
        self.messages = len(messages)
        subjects = collections.Counter(m["json"]["subject"] for m in messages)
        self.expected = len(expected)
        self.delivered = sum(1 for k in expected if k in subjects)
        self.lost = sorted(k for k in expected if k not in subjects)
        self.ids = len({m["json"]["id"] for m in messages})
        self.payloads = len({m["value"] for m in messages})
        self.same_bytes = self.messages - self.payloads
        self.other_bytes = self.payloads - self.ids
        self.unexpected = sorted(set(subjects) - set(expected))

    def report(self, name, **extra):
        fields = [("expected", self.expected), ("delivered", self.delivered),
                  ("lost", len(self.lost)), ("messages", self.messages),
                  ("distinct_ids", self.ids), ("distinct_payloads", self.payloads),
                  ("dup_same_bytes", self.same_bytes), ("dup_other_bytes", self.other_bytes)]
        fields += list(extra.items())
        line = "RESULT %s %s" % (name, " ".join("%s=%s" % kv for kv in fields))
        print(line, flush=True)
        return line


class RealKafkaTestCase(BridgeTestCase):
    """BridgeTestCase whose Kafka is the module's real cluster."""

    brokers = 3
    cluster_props = None

    @classmethod
    def setUpClass(cls):
        cls.cluster = KafkaCluster(cls.brokers, props=cls.cluster_props).start()
        cls.addClassCleanup(cls.cluster.cleanup)
        print("kafka cluster (controller + %d brokers) ready in %.1f s: %s" % (
            cls.brokers, cls.cluster.started_s, cls.cluster.bootstrap), flush=True)

    def setUp(self):
        self.cluster.ensure_up()
        self.kafka = self.cluster

    def new_topic(self, partitions=4, rf=3, config=None, prefix="t"):
        name = "%s.%s" % (prefix, uuid.uuid4().hex[:10])
        self.cluster.create_topic(name, partitions, rf, config)
        return name

    def start_kafka(self, brokers=3, topics=()):
        for t in topics:
            name, _, parts = t.partition(":")
            self.cluster.create_topic(name, int(parts or 1))
        return self.cluster

    def consumer(self, topics, **conf):
        c = Consumer(self.cluster.bootstrap, topics, **conf)
        self.addCleanup(c.close)
        return c

    def start_stack(self, routes, redis_args=(), **cfg):
        """redis-server + the bridge, producing to the cluster."""
        self.redis = self.start_redis(redis_args)
        self.bridge = self.start_bridge(
            bridge_config(self.redis.port, self.cluster.bootstrap, routes, **cfg))
        return self.bridge

    def arm(self, prefix, n, ttl_ms=lambda i: 20, key_fmt="order:%s-%d"):
        """SET n keys with a TTL each (pipelined); returns their names."""
        pipe = self.redis.client().pipeline(transaction=False)
        names = []
        for i in range(n):
            k = key_fmt % (prefix, i)
            pipe.set(k, "pending", px=ttl_ms(i))
            names.append(k)
        pipe.execute()
        return names

    def wait_delivered(self, consumer, keys, timeout=60, what=None):
        """Poll the consumer until every key in keys was read at least once."""
        missing = set(keys)

        def cond():
            m = consumer.poll_once(0.1)
            if m and m["json"]:
                missing.discard(m["json"]["subject"])
            return not missing
        try:
            wait_for(cond, timeout, interval=0, what=what or "%d events" % len(keys))
        except AssertionError as e:
            raise AssertionError("%s; %d missing, e.g. %s\ncluster:\n%s" % (
                e, len(missing), sorted(missing)[:3], self.cluster.logs_tail(5))) from None


__all__ = ["RealKafkaTestCase", "Tally", "hold", "unittest"]
