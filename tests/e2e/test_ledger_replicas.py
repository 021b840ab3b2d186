"""Several replicas on one ledger with coordination (docs/ha.md), on the
mock Kafka: each master's ledgers are swept every sweep_interval by the
replica that owns the master, and one time in ten by the others (a
backstop for an owner stuck without knowing it). Two replicas sweeping the
same master every interval would cost it twice the eb1_due calls for the
same claims.

The count of sweeps is eb_ledger_sweep_duration_seconds_count on each
replica's /metrics.
"""

import os
import signal
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from ebtest import (BridgeTestCase, coordination_yaml, http_config, producing,  # noqa: E402
                    wait_for)
from ledgertest import FAST_LEDGER, ledger_config, scrape_metric  # noqa: E402

# Sweeps every 100 ms: forty of them take four seconds.
LEDGER = FAST_LEDGER.replace("sweep_interval: 500ms", "sweep_interval: 100ms").replace(
    "sweep_grace: 100ms", "sweep_grace: 50ms")
assert "100ms" in LEDGER and "50ms" in LEDGER

SWEEPS = "eb_ledger_sweep_duration_seconds_count"


class OwnerSweeps(BridgeTestCase, unittest.TestCase):

    def setUp(self):
        self.redis = self.start_redis()
        self.kafka = self.start_kafka(1, ["orders:4", "expiry-bridge.units:1"])
        self.group = coordination_yaml("sweep-%d" % os.getpid())

    def config(self, http_port):
        return ledger_config(self.redis.port, self.kafka.bootstrap, ledger=LEDGER,
                             extra=self.group + http_config(http_port))

    def replica(self):
        b = self.start_replica(self.config)
        # A standby subscribes to nothing: wait for its ledger only.
        b.wait_msg("ledger: connected, function library loaded", 20)
        return b

    def owner_and_standby(self):
        a = self.replica()
        wait_for(lambda: producing(a) == 1, 30, what="the first produces")
        b = self.replica()
        wait_for(lambda: producing(a) +
                 producing(b) == 1, 30, what="one of two produces")
        return (a, b) if producing(a) == 1 else (b, a)

    def sweeps_while(self, replicas, owner_sweeps, timeout=30):
        """Sweep counts of each replica over the time its first one made
        owner_sweeps of them (within timeout seconds)."""
        before = [scrape_metric(r.http_port, SWEEPS) for r in replicas]
        wait_for(lambda: scrape_metric(replicas[0].http_port, SWEEPS) - before[0] >= owner_sweeps,
                 timeout, interval=0.1, what="%d sweeps by the owner" % owner_sweeps)
        return [scrape_metric(r.http_port, SWEEPS) - b for r, b in zip(replicas, before)]

    def test_the_owner_sweeps_every_interval_and_the_standby_one_time_in_ten(self):
        owner, standby = self.owner_and_standby()
        by_owner, by_standby = self.sweeps_while([owner, standby], 40)
        print("RESULT replica_sweeps owner=%d standby=%d" % (by_owner, by_standby), flush=True)
        self.assertGreaterEqual(by_standby, 1, "the standby still sweeps, as a backstop")
        self.assertLessEqual(by_standby, by_owner / 5, "the standby sweeps far less than the owner")

    def test_the_replica_that_takes_over_sweeps_every_interval(self):
        owner, standby = self.owner_and_standby()
        owner.send_signal(signal.SIGTERM)
        self.assertEqual(owner.wait_exit(30), 0)
        wait_for(lambda: producing(standby) == 1, 30,
                 what="the standby takes over")
        # 20 sweeps at the owner's pace take 2 s; at a standby's, 20 s.
        self.sweeps_while([standby], 20, timeout=8)


if __name__ == "__main__":
    unittest.main()
