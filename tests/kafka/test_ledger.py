"""The deadline ledger's failure scenarios (tests/e2e/test_ledger_failures.py)
on a real Kafka cluster instead of the mock: 10,000 armed timers whose
deadlines spread over 10 s, one failure in the middle.

  bridge_sigkill   the bridge is SIGKILLed for 3 s, then started again
  kafka_down       every broker stopped (SIGTERM) for 5 s, then started
  redis_restart    redis-server (AOF on) killed and started again after 3 s

Same assertions as on the mock (every timer delivered at least once, one id
and the right deadline per timer; no timer produced twice through a Kafka
outage), same RESULT lines, with the `real_` prefix. The topic has 8
partitions, 3 replicas; one cluster serves the module.
"""

import json
import os
import sys
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import test_ledger_failures as base  # noqa: E402
from ebtest import RedisServer  # noqa: E402
from kafka_cluster import KafkaCluster  # noqa: E402
from ledgertest import TimerConsumer, ledger_config  # noqa: E402


class LedgerFailuresOnRealKafka(base.LedgerFailures):
    """The scenarios are the base class's test methods; only the fixtures
    differ. (The module `base` is not a TestCase: unittest does not collect
    the mock-based class from here.)"""

    @classmethod
    def setUpClass(cls):
        cls.cluster = KafkaCluster().start()
        cls.addClassCleanup(cls.cluster.cleanup)

    def setUp(self):
        self.cluster.ensure_up()
        self.kafka = self.cluster  # down()/up() stop and start every broker
        self.topic = "orders.%s" % uuid.uuid4().hex[:8]
        self.cluster.create_topic(self.topic, 8)
        self.redis = RedisServer(appendonly=True).start()
        self.addCleanup(self.redis.cleanup)
        self.config = ledger_config(self.redis.port, self.cluster.bootstrap, topic=self.topic)
        self.bridge = self.start_bridge()
        self.consumer = TimerConsumer(self.cluster.bootstrap, [self.topic])
        self.addCleanup(self.consumer.close)

    def finish(self, name, armed, timeout=120):
        t = super().finish("real_" + name, armed, timeout)
        # The consumer's view counts what a group member read, re-reads
        # after a rebalance included (it never commits). What Kafka holds
        # is read again here, from offset 0 without a group: copies
        # written twice to the topic, byte-identical or not.
        msgs = self.cluster.read_topic(self.topic)
        keys = [json.loads(v)["data"]["key"] for _, _, _, v in msgs]
        ids = {json.loads(v)["id"] for _, _, _, v in msgs}
        payloads = {v for _, _, _, v in msgs}
        print("RESULT real_%s_topic expected=%d on_topic=%d distinct_keys=%d distinct_ids=%d "
              "distinct_payloads=%d dup_same_bytes=%d dup_other_bytes=%d" % (
                  name, len(armed), len(msgs), len(set(keys) & set(armed)), len(ids),
                  len(payloads), len(msgs) - len(payloads), len(payloads) - len(ids)),
              flush=True)
        self.assertEqual(set(keys) & set(armed), set(armed), "every timer is on the topic")
        self.assertEqual(len(ids), len(armed), "one id per timer on the topic")
        return t


if __name__ == "__main__":
    unittest.main()
