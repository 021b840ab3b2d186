"""The sample consumers' story on a real Kafka cluster, end to end: order
timers expire in Redis, the bridge turns them into CloudEvents on a real
3-broker cluster, and the C consumer (examples/order-consumer) or the
Python one (examples/python-consumer) cancels the pending orders in
PostgreSQL and returns their stock -- under Kafka's real group coordinator,
with a rebalance mid-stream each way:

  phase 1   consumer A alone; 100 timers expire
  phase 2   consumer B joins the group (rebalance); 100 more expire
  phase 3   A leaves on SIGTERM (rebalance: B takes every partition);
            the last 100 expire

Checked exactly: every event processed once (processed_events holds 300
distinct ids), exactly the unpaid orders cancelled, the stock balance
  final stock[p] == initial stock[p] - qty held by orders not cancelled,
and both consumers exit 0. Each class prints
  RESULT consumer_<lang> orders= paid= cancelled= events_a= events_b=
         duplicates_a= duplicates_b= stock_returned=
"""

import os
import signal
import unittest
import uuid

import test_consumer as tc  # tests/e2e (PYTHONPATH set by tests/kafka/CMakeLists.txt)
import test_consumer_python  # tests/e2e
from ebtest import Bridge, RedisServer, bridge_config, is_subscribed_log
from kafka_cluster import KafkaCluster
from pgtest import PostgresCluster

ORDERS = 300
KEY = "laravel_cache:ORDER_CONFIRM:%d"


class ConsumerStory:
    """Mixin: consumer_argv(args) says how to run the consumer."""

    lang = None

    @classmethod
    def setUpClass(cls):
        cls.pg = PostgresCluster().start()
        cls.addClassCleanup(cls.pg.cleanup)
        cls.cluster = KafkaCluster().start()
        cls.addClassCleanup(cls.cluster.cleanup)

    def setUp(self):
        self.cluster.ensure_up()
        tag = uuid.uuid4().hex[:8]
        self.topic = "shop.order.payment-timeout.%s" % tag
        self.group = "orders-%s" % tag
        self.cluster.create_topic(self.topic, 6)
        self.shop = tc.Shop(self.pg, "shop_%s" % tag)
        self.addCleanup(self.pg.drop_database, self.shop.dbname)
        self.redis = RedisServer().start()
        self.addCleanup(self.redis.cleanup)
        routes = """
  - name: order-payment-timeout
    match: "laravel_cache:ORDER_CONFIRM:{order_id}"
    topic: %s
    key: "{order_id}"
""" % self.topic
        self.bridge = Bridge(bridge_config(self.redis.port, self.cluster.bootstrap, routes)).start()
        self.addCleanup(self.bridge.cleanup)
        self.bridge.wait_log(is_subscribed_log, 20, what="bridge subscribed")

    def start_consumer(self):
        argv = ["-b", self.cluster.bootstrap, "-g", self.group, "-t", self.topic,
                "-d", self.shop.dsn, "-v"]
        for k, v in tc.KAFKA_TEST_PROPS.items():
            argv += ["-X", "%s=%s" % (k, v)]
        c = tc.ConsumerProcess(self.consumer_argv(argv)).start()
        self.addCleanup(c.cleanup)
        return c

    def wait_until(self, cond, what, consumers, timeout=60):
        def check():
            for c in consumers:
                if c.proc.poll() is not None:
                    raise AssertionError("consumer exited (%s) while waiting for %s:\n%s" % (
                        c.proc.returncode, what, c.stderr_tail()))
            return cond()
        return tc.wait_for(check, timeout, interval=0.05, what=what)

    def expire(self, ids):
        """The shop's payment timers of these orders expire now-ish."""
        pipe = self.redis.client().pipeline(transaction=False)
        for o in ids:
            pipe.set(KEY % o, "pending", px=20 + o % 50)
        pipe.execute()

    def processed(self, n, consumers):
        self.wait_until(lambda: self.shop.processed_count() >= n, "%d processed events" % n,
                        consumers, timeout=90)
        self.assertEqual(self.shop.processed_count(), n)

    def test_story_with_a_rebalance_each_way_and_stock_balanced(self):
        p = tc.subprocess.run(self.consumer_argv(["--migrate", "-d", self.shop.dsn]),
                              capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.shop.seed(orders=ORDERS, products=8)
        paid = {o for o in self.shop.lines if o % 7 == 0}
        self.shop.pay(paid)
        stock_before = self.shop.stock()
        ids = sorted(self.shop.lines)

        a = self.start_consumer()
        self.wait_until(lambda: a.count_msg("partitions assigned") >= 1, "A assigned", [a])
        self.expire(ids[:100])
        self.processed(100, [a])

        b = self.start_consumer()  # joins: the coordinator rebalances
        self.wait_until(lambda: b.count_msg("partitions assigned") >= 1 and
                        a.count_msg("partitions assigned") >= 2, "the rebalance after B joined",
                        [a, b])
        self.expire(ids[100:200])
        self.processed(200, [a, b])

        sa = a.stop(signal.SIGTERM, timeout=60)  # leaves: B takes every partition
        self.assertEqual(sa, 0, a.stderr_tail())
        self.wait_until(lambda: b.count_msg("partitions assigned") >= 2,
                        "B's share after A left", [b])
        self.expire(ids[200:])
        self.processed(ORDERS, [b])
        self.assertEqual(b.stop(signal.SIGTERM, timeout=60), 0, b.stderr_tail())

        pending = set(ids) - paid
        self.assertEqual(self.shop.cancelled(), pending)
        expected, actual = self.shop.balance()
        self.assertEqual(actual, expected, "stock does not balance")
        returned = sum(expected[q] - stock_before[q] for q in expected)
        self.assertEqual(returned, self.shop.returned_qty(pending))
        st_a, st_b = a.stats(), b.stats()
        self.assertEqual(st_a["cancelled"] + st_b["cancelled"], len(pending))
        self.assertGreater(st_a["events"], 0)
        self.assertGreater(st_b["events"], 0)
        bridge_rc = self.bridge.stop()
        self.assertEqual(bridge_rc, 0)
        print("RESULT consumer_%s orders=%d paid=%d cancelled=%d events_a=%d events_b=%d "
              "duplicates_a=%d duplicates_b=%d stock_returned=%d stock_total=%d" % (
                  self.lang, ORDERS, len(paid), len(self.shop.cancelled()), st_a["events"],
                  st_b["events"], st_a["duplicates"], st_b["duplicates"], returned,
                  sum(actual.values())), flush=True)


@unittest.skipUnless(os.path.exists(tc.ORDER_CONSUMER),
                     "order-consumer not built (EB_BUILD_EXAMPLES=OFF?)")
class CConsumerOnRealKafka(ConsumerStory, unittest.TestCase):
    lang = "c"

    def consumer_argv(self, args):
        return [tc.ORDER_CONSUMER] + list(args)


class PythonConsumerOnRealKafka(test_consumer_python.PythonConsumer, ConsumerStory,
                                unittest.TestCase):
    """The Python consumer decodes through the CloudEvents SDK, which
    scripts/fetch-sdks.sh installs into the cache (as in
    tests/e2e/test_consumer_python.py): skipped when it is not there,
    failed under EB_REQUIRE_FETCHED=1."""

    lang = "python"


if __name__ == "__main__":
    unittest.main()
