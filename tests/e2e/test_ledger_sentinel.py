"""Durable timers behind Sentinel (issue 12, items 4 and 5): a master, a
replica and three sentinels (tests/support/topotest.py), the mock Kafka,
and two ledgered routes -- `orders` (armed) and `carts` (observed). The
ledger's connection follows the master the sentinels name; after a switch
it loads the library there and sweeps at once, so timers whose expiry fell
in the failover window come out as `delivery: recovered`.

  sentinel_failover  SENTINEL FAILOVER mid-stream
  sentinel_kill      SIGKILL of the master mid-stream (the sentinels promote
                     the replica)

Timers are armed (carts: recorded by the bridge) and replicated (WAIT 1)
before the failure. Every one must reach Kafka, with its deadline and one
id across copies; prints RESULT <scenario>_<route> expected=N delivered=N ...
"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from ebtest import wait_for  # noqa: E402
from ledgertest import (CLIENT, FAST_LEDGER, LedgerTopologyCase, ledger_key,  # noqa: E402
                        orders_and_carts)
import topotest  # noqa: E402

N_ORDERS = 2000
N_CARTS = 1000


ROUTES = orders_and_carts("order:{{orders}}:{id}")


def config(url, brokers, http_port):
    return topotest.topology_config(url, brokers, ROUTES, http_port, client=CLIENT,
                                    sections=FAST_LEDGER, stats="1s")


class LedgerSentinel(LedgerTopologyCase, unittest.TestCase):

    READY_TIMEOUT = 40

    def setUp(self):
        self.group = topotest.SentinelGroup(replicas=1, sentinels=3).start()
        self.addCleanup(self.group.cleanup)
        url = "redis-sentinel://%s/%s" % (self.group.sentinel_addrs(), self.group.name)
        self.start_ledger_stack(lambda brokers, http_port: config(url, brokers, http_port),
                                connected="the ledger connected to the master")

    def master(self):
        return topotest.redis_client(self.group.master_port())

    def arm(self, first_s, span_s):
        r = self.master()
        pipe = r.pipeline(transaction=False)
        for i in range(N_ORDERS):
            ttl = int((first_s + span_s * i / (N_ORDERS - 1)) * 1000)
            pipe.fcall("eb1_arm", 2, "order:{orders}:%d" % i, ledger_key("orders"), ttl)
        for i in range(N_CARTS):
            ttl = int((first_s + span_s * i / (N_CARTS - 1)) * 1000)
            pipe.set("cart:%d" % i, "pending", px=ttl)
            pipe.execute_command("PEXPIRETIME", "cart:%d" % i)
        res = pipe.execute()
        orders = {"order:{orders}:%d" % i: res[i] for i in range(N_ORDERS)}
        carts = {"cart:%d" % i: res[N_ORDERS + 2 * i + 1] for i in range(N_CARTS)}
        wait_for(lambda: r.zcard(ledger_key("carts")) == N_CARTS, 20, interval=0.1,
                 what="the bridge recorded every cart (observed mode)")
        # WAIT answers as soon as the replica acknowledged; 10 s is only
        # the patience of a loaded machine.
        self.assertGreaterEqual(r.execute_command("WAIT", 1, 10000), 1)
        return orders, carts

    def finish(self, name, orders, carts):
        self.consumer.collect_keys(list(orders) + list(carts), 90)
        wait_for(lambda: self.consumer.poll_once(0.05) >= 0 and
                 self.master().zcard(ledger_key("orders")) == 0 and
                 self.master().zcard(ledger_key("carts")) == 0, 30, interval=0,
                 what="the ledgers empty on the new master")
        self.consumer.drain(2.0)
        self.assert_tallies(name, orders, carts)

    def test_sentinel_failover_mid_stream_loses_no_ledgered_timer(self):
        orders, carts = self.arm(3.0, 10.0)
        self.until(min(orders.values()) + 4000)
        t0 = time.monotonic()
        self.group.failover()
        self.wait_ready(what="ready on the new master")
        print("RESULT sentinel_failover_ledger_ready seconds=%.2f" % (time.monotonic() - t0),
              flush=True)
        self.finish("sentinel_failover", orders, carts)

    def test_sigkill_of_the_master_mid_stream_loses_no_ledgered_timer(self):
        orders, carts = self.arm(3.0, 12.0)
        self.until(min(orders.values()) + 4000)
        t0 = time.monotonic()
        self.group.kill_master()
        self.wait_ready(what="ready on the promoted replica")
        print("RESULT sentinel_kill_ledger_ready seconds=%.2f" % (time.monotonic() - t0),
              flush=True)
        self.finish("sentinel_kill", orders, carts)
        self.assertGreater(self.metric("eb_ledger_recovered_total"), 0,
                           "timers whose expiry the failover hid come out as recovered")


if __name__ == "__main__":
    unittest.main()
