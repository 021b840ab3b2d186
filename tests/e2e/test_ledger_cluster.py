"""Durable timers on Redis Cluster (issue 12, item 5), on a real 3-master +
3-replica redis-server Cluster (tests/support/topotest.py) and the mock
Kafka.

Two ledgered routes run side by side in every scenario:

  orders  ledger: armed, ledger.buckets: 16 -- the application arms
          `order:{orders:<b>}:<i>` into `expiry-bridge:ledger:{orders:<b>}`
          with FCALL eb1_arm (b = i mod 16), so the route's ledgers spread
          over the masters
  carts   ledger: observed -- plain `SET cart:<i> ... PX`, keys of every
          slot; the bridge records each deadline in the ledger of the key's
          slot, on the key's master

Scenarios: every timer of every slot delivered; `CLUSTER FAILOVER` of a
master mid-stream; SIGKILL of a master mid-stream (its replica promoted by
the cluster). Ledgered routes lose nothing: the test asserts that every
timer reached Kafka (exactly: delivered == armed), each with its deadline
and one CloudEvents id across copies, and prints

  RESULT <scenario>_<route> expected=N delivered=N duplicates=N recovered=N ...

Timers are armed (and, for carts, recorded) before the failure and
replicated to the replicas (WAIT 1): the ledger's promise is about timers
whose arming Redis kept. A failover that loses an unreplicated write loses
the application's own write, which no bridge can see.
"""

import os
import re
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from ebtest import TempDir, free_port, wait_for  # noqa: E402
from ledgertest import (BUCKETED_ORDERS, CLIENT, FAST_LEDGER, LEDGER_PREFIX,  # noqa: E402
                        LedgerTopologyCase, bucket_ledger, orders_and_carts)
import topotest  # noqa: E402

PREFIX = LEDGER_PREFIX
BUCKETS = 16
N_ORDERS = 3000
N_CARTS = 1500


def config(seed, brokers, http_port):
    return topotest.topology_config(
        "redis-cluster://%s" % seed, brokers, orders_and_carts(BUCKETED_ORDERS), http_port,
        client=CLIENT, drain="10s", sections=FAST_LEDGER + "  buckets: %d\n" % BUCKETS,
        stats="1s")


def order_key(i):
    return "order:{orders:%d}:%d" % (i % BUCKETS, i)


def order_ledger(i):
    return bucket_ledger(i % BUCKETS)


class LedgerCluster(LedgerTopologyCase, unittest.TestCase):

    def setUp(self):
        self.cluster = topotest.RedisCluster(masters=3, replicas=1).start()
        self.addCleanup(self.cluster.cleanup)
        self.writer = self.cluster.writer()
        seed = "127.0.0.1:%d" % self.cluster.master_ports()[0]
        self.start_ledger_stack(lambda brokers, http_port: config(seed, brokers, http_port),
                                connected="the ledger connected to every master")

    # ---- the application -------------------------------------------------

    def arm(self, first_s, span_s):
        """N_ORDERS armed timers and N_CARTS plain ones, deadlines spread
        from now+first_s over span_s; waits until the bridge recorded every
        cart and everything is replicated. Returns ({order: deadline_ms},
        {cart: deadline_ms})."""
        calls = []
        for i in range(N_ORDERS):
            ttl = int((first_s + span_s * i / (N_ORDERS - 1)) * 1000)
            calls.append((order_key(i), ["FCALL", "eb1_arm", 2, order_key(i), order_ledger(i),
                                         ttl]))
        orders = dict(zip((order_key(i) for i in range(N_ORDERS)), self.writer.pipelined(calls)))
        calls = []
        for i in range(N_CARTS):
            ttl = int((first_s + span_s * i / (N_CARTS - 1)) * 1000)
            k = "cart:%d" % i
            calls += [(k, ["SET", k, "pending", "PX", ttl]), (k, ["PEXPIRETIME", k])]
        replies = self.writer.pipelined(calls)
        carts = {"cart:%d" % i: replies[2 * i + 1] for i in range(N_CARTS)}
        self.assertEqual(len(orders), N_ORDERS)
        self.assertTrue(all(isinstance(d, int) and d > 0 for d in orders.values()))
        self.assertTrue(all(isinstance(d, int) and d > 0 for d in carts.values()))
        wait_for(lambda: self.entries("carts") == N_CARTS, 20, interval=0.1,
                 what="the bridge recorded every cart (observed mode)")
        self.writer.wait_replicated()
        return orders, carts

    def ledgers(self, port):
        """{ledger key: entries} of one master."""
        c = topotest.redis_client(port)
        out = {}
        for k in c.scan_iter(match=PREFIX + "*", count=1000):
            k = k.decode()
            if not k.endswith(":claims"):
                out[k] = c.zcard(k)
        return out

    def entries(self, route):
        """Entries of a route's ledgers, over every master."""
        n = 0
        for port in self.cluster.master_ports():
            for k, v in self.ledgers(port).items():
                if (route == "carts" and k.endswith(":carts")) or \
                        (route == "orders" and k.startswith(PREFIX + "{orders:")):
                    n += v
        return n

    # ---- judging ---------------------------------------------------------

    def explain_missing(self, armed):
        """What a failed run needs to be diagnosed: per undelivered timer,
        the ledger entries and claims holding it on any master and whether
        its key still exists; the ledger's counters; its log lines."""
        missing = sorted(k for k in armed if k not in self.consumer.per_key)
        lines = []
        for key in missing[:20]:
            where = []
            for port in self.cluster.master_ports():
                c = topotest.redis_client(port)
                for lk in c.scan_iter(match=PREFIX + "*", count=1000):
                    score = c.zscore(lk, key)
                    if score is not None:
                        where.append("%s@%d=%d" % (lk.decode(), port, score))
            exists = self.writer.execute_for(key, "PEXPIRETIME", key)
            lines.append("  %s deadline=%s slot=%d pexpiretime=%s in=%s" % (
                key, armed[key], topotest.crc16_slot(key), exists, where or "no ledger"))
        counters = []
        for name, labels in (("eb_ledger_observed_total", {"route": "carts", "op": "cancel"}),
                             ("eb_ledger_observed_total", {"route": "carts", "op": "record"}),
                             ("eb_ledger_redirects_total", {}),
                             ("eb_ledger_recovered_total", {"route": "carts"}),
                             ("eb_ledger_claims_total", {"route": "carts", "result": "unknown"})):
            try:
                counters.append("%s%s=%s" % (name, labels, self.metric(name, **labels)))
            except OSError as e:
                counters.append("%s: %s" % (name, e))
        with self.bridge._lock:
            logs = [e for e in self.bridge.raw_stderr
                    if re.search(r"ledger|redirect|subscri|topology|warn|error", e, re.I)]
        return "%d undelivered:\n%s\n%s\nbridge log (ledger/redis/warn):\n%s" % (
            len(missing), "\n".join(lines), " ".join(counters),
            "\n".join("  " + e for e in logs[-80:]))

    def finish(self, name, orders, carts, timeout=90):
        """Every timer delivered, every ledger empty; the RESULT lines."""
        try:
            self.consumer.collect_keys(list(orders) + list(carts), timeout)
        except AssertionError as e:
            raise AssertionError("%s\n%s" % (e, self.explain_missing({**orders, **carts}))) from None
        wait_for(lambda: self.consumer.poll_once(0.05) >= 0 and self.entries("orders") == 0 and
                 self.entries("carts") == 0, 30, interval=0, what="every ledger empty")
        self.consumer.drain(2.0)
        tallies = self.assert_tallies(name, orders, carts)
        # which master announced a timer, or held the ledger it was
        # recovered from (the source names the cluster, for stable ids)
        masters = {"127.0.0.1:%d" % p for p in self.cluster.nodes}
        nodes = {m["json"].get("redisnode") for m in self.consumer.messages}
        self.assertTrue(nodes <= masters, nodes - masters)
        self.assertEqual(len({m["json"]["source"] for m in self.consumer.messages}), 1)
        return tallies

    # ---- scenarios -------------------------------------------------------

    def test_timers_of_every_slot_are_delivered_from_every_master(self):
        self.assertEqual(self.metric("eb_ledger_masters"), 3)
        orders, carts = self.arm(2.0, 3.0)
        # The route's 16 bucket ledgers spread over the three masters, and
        # the carts' slot ledgers live on every master.
        per_master = {p: self.ledgers(p) for p in self.cluster.master_ports()}
        for port, ls in per_master.items():
            buckets = [k for k in ls if k.startswith(PREFIX + "{orders:")]
            slots = [k for k in ls if k.endswith(":carts")]
            print("RESULT cluster_spread master=%d order_buckets=%d cart_slot_ledgers=%d" % (
                port, len(buckets), len(slots)), flush=True)
            self.assertGreater(len(buckets), 0, "master %d holds no bucket of orders" % port)
            self.assertGreater(len(slots), 0, "master %d holds no slot ledger of carts" % port)
        self.finish("cluster_every_slot", orders, carts)

    def test_cluster_failover_mid_stream_loses_no_ledgered_timer(self):
        orders, carts = self.arm(3.0, 8.0)
        self.until(min(orders.values()) + 4000)
        t0 = time.monotonic()
        self.cluster.failover(self.cluster.master_ports()[0])
        self.wait_ready(what="ready again after CLUSTER FAILOVER")
        print("RESULT cluster_failover_ledger_ready seconds=%.2f" % (time.monotonic() - t0),
              flush=True)
        self.finish("cluster_failover", orders, carts)
        self.assertEqual(self.metric("eb_ledger_masters"), 3)

    def test_sigkill_of_a_master_mid_stream_loses_no_ledgered_timer(self):
        orders, carts = self.arm(3.0, 10.0)
        self.until(min(orders.values()) + 4000)
        t0 = time.monotonic()
        victim = self.cluster.master_ports()[1]
        self.cluster.kill_master(victim)
        self.wait_ready(what="ready again after the replica took over")
        print("RESULT cluster_kill_ledger_ready seconds=%.2f" % (time.monotonic() - t0),
              flush=True)
        self.finish("cluster_kill", orders, carts)
        wait_for(lambda: self.metric("eb_ledger_masters") == 3, 15, interval=0.1,
                 what="the ledger's link to the dead master closed")
        self.assertGreater(self.metric("eb_ledger_recovered_total"), 0,
                           "timers whose expiry the failover hid come out as recovered")


class FunctionsLoadOnCluster(unittest.TestCase):
    """`expiry-bridge functions load` with a redis-cluster:// URL installs the
    library on every master (functions are per node), before any bridge
    runs."""

    def test_loads_the_library_on_every_master(self):
        cluster = topotest.RedisCluster(masters=3, replicas=1).start()
        self.addCleanup(cluster.cleanup)
        d = TempDir("fload")
        self.addCleanup(d.cleanup)
        seed = "127.0.0.1:%d" % cluster.master_ports()[0]
        path = d.file("c.yaml", config(seed, "127.0.0.1:9", free_port()))
        p = subprocess.run([os.environ["EB_BIN"], "functions", "load", "-c", path],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("loaded eb_timers_v1 on 3 masters", p.stdout)
        for port in cluster.master_ports():
            libs = topotest.redis_client(port).function_list()
            self.assertEqual([l[l.index(b"library_name") + 1] for l in libs], [b"eb_timers_v1"],
                             "master %d" % port)
        # an application can arm at once, on any master
        w = cluster.writer()
        for b in range(BUCKETS):
            i = b + BUCKETS
            self.assertGreater(w.execute_for(order_key(i), "FCALL", "eb1_arm", 2, order_key(i),
                                             order_ledger(i), 60000), 0)


if __name__ == "__main__":
    unittest.main()
