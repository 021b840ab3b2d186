"""Deadline ledger under single failures (issue 6, item 6): 10,000 armed
timers whose deadlines spread over 10 s, with one failure in the middle:

  bridge_sigkill   the bridge is SIGKILLed for 3 s, then started again
  kafka_down       every mock broker is down for 5 s
  redis_restart    redis-server (AOF on) is killed and started again after
                   3 s; keys whose deadline passed meanwhile are dropped at
                   load with no event, and the sweep recovers them

Each scenario asserts that every timer reached the topic at least once,
with its deadline and one stable CloudEvents id, and prints
  RESULT <name> expected=N delivered=N duplicates=N recovered=N lateness_p50_ms=... p99 max
Duplicates are counted, not failed: at-least-once, consumers deduplicate on
the id (which the test checks is the same for every copy of a timer).
produced_twice counts the copies the bridge produced more than once (their
bytes differ); the other duplicates are byte-identical producer retries
that the mock Kafka appended twice around a broker outage.
"""

import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from ebtest import Bridge, MockKafka, RedisServer, wait_for  # noqa: E402
from ledgertest import (Tally, TimerConsumer, arm_spread, ledger_config, ledger_key,  # noqa: E402
                        wait_ledger_ready)

N = 10000
FIRST_S = 2.0   # first deadline after arming
SPAN_S = 10.0   # deadlines spread over this long
TOPIC = "orders"


def outage(seconds):
    """Hold a failure for `seconds`: the scenario's parameter, not a wait for
    something to happen (nothing is polled during an outage)."""
    end = time.monotonic() + seconds
    wait_for(lambda: time.monotonic() >= end, seconds + 1, interval=0.05, what="outage end")


class LedgerFailures(unittest.TestCase):

    def setUp(self):
        self.redis = RedisServer(appendonly=True).start()
        self.addCleanup(self.redis.cleanup)
        self.kafka = MockKafka(brokers=3, topics=["%s:8" % TOPIC]).start()
        self.addCleanup(self.kafka.stop)
        self.config = ledger_config(self.redis.port, self.kafka.bootstrap, topic=TOPIC)
        self.bridge = self.start_bridge()
        self.consumer = TimerConsumer(self.kafka.bootstrap, [TOPIC])
        self.addCleanup(self.consumer.close)

    def start_bridge(self):
        b = Bridge(self.config).start()
        self.addCleanup(b.cleanup)
        return wait_ledger_ready(b)

    def arm(self):
        armed = arm_spread(self.redis.client(), N, FIRST_S, SPAN_S)
        self.assertEqual(len(armed), N)
        self.mid = min(armed.values()) + SPAN_S * 1000 / 2
        return armed

    def until_middle(self):
        """Until half the deadlines passed (the failure hits the middle)."""
        def cond():
            self.consumer.poll_once(0.05)
            return time.time() * 1000 >= self.mid
        wait_for(cond, FIRST_S + SPAN_S, interval=0, what="the middle of the deadlines")

    def finish(self, name, armed, timeout=90):
        try:
            self.consumer.collect_keys(armed, timeout)
        except AssertionError as e:
            # What the bridge and the ledger say, for a failure seen only
            # on a loaded machine: entries left, the last log lines.
            left = self.redis.client().zcard(ledger_key("orders"))
            with self.bridge._lock:
                tail = [{k: v for k, v in x.items() if k != "ts"} for x in self.bridge.logs[-25:]]
            raise AssertionError("%s\nledger entries left: %d\nbridge log tail: %s" % (
                e, left, tail)) from None
        # Until the ledger is empty: every timer was acknowledged, so nothing
        # more can come; then a quiet spell catches late duplicates.
        r = self.redis.client()
        wait_for(lambda: self.consumer.poll_once(0.05) >= 0 and r.zcard(ledger_key("orders")) == 0,
                 30, interval=0, what="ledger empty")
        self.consumer.drain(2.0)
        t = Tally(name, armed, self.consumer)
        t.report()
        self.assertEqual(t.delivered, t.expected)
        self.assertEqual(t.bad_ids, [], "every copy of a timer carries one id")
        self.assertEqual(t.bad_deadlines, [], "every event carries its timer's deadline")
        return t

    def test_bridge_sigkill_for_3s(self):
        armed = self.arm()
        self.until_middle()
        self.bridge.stop(signal.SIGKILL)
        outage(3)
        self.start_bridge()
        t = self.finish("bridge_sigkill", armed)
        self.assertGreater(t.recovered, 0, "timers that expired during the outage were recovered")

    def test_every_broker_down_for_5s(self):
        armed = self.arm()
        self.until_middle()
        self.kafka.down()
        outage(5)
        self.kafka.up()
        t = self.finish("kafka_down", armed)
        self.assertEqual(t.produced_twice, 0, "claims held through the outage: none produced twice")

    def test_redis_restart_with_aof(self):
        armed = self.arm()
        self.until_middle()
        self.redis.kill()
        outage(3)
        self.redis.start()
        t = self.finish("redis_restart", armed)
        self.assertGreater(t.recovered, 0, "keys dropped at load were recovered by the sweep")


if __name__ == "__main__":
    unittest.main()
