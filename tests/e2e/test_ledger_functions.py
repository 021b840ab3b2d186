"""The Redis Function library of the deadline ledger (config/redis/eb_timers.lua)
against a real redis-server: the timer API (eb1_arm, eb1_disarm, eb1_rearm),
the bridge's own calls (eb1_claim, eb1_collect, eb1_ack, eb1_due, eb1_renew,
eb1_observe, eb1_drop), replication and AOF, Redis Cluster hash tags, and
`expiry-bridge functions load`.

Status codes of eb1_claim / eb1_collect: 0 unknown, 1 owed, 2 busy,
3 done, 4 changed, 5 persisted, 6 moved, 7 touched.
"""

import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
import ebtest  # noqa: E402
from ebtest import EB_BIN, SOURCE_DIR, RedisServer, TempDir, bridge_config, wait_for  # noqa: E402
from ledgertest import wait_ledger_ready  # noqa: E402
import topotest  # noqa: E402

LUA = os.path.join(SOURCE_DIR, "config", "redis", "eb_timers.lua")
L = "expiry-bridge:ledger:{orders}"
CLAIMS = L + ":claims"
UNKNOWN, OWED, BUSY, DONE, CHANGED, PERSISTED, MOVED = 0, 1, 2, 3, 4, 5, 6


def library():
    with open(LUA, "rb") as f:
        return f.read()


class Functions(unittest.TestCase):
    """One redis-server for the class; every test uses its own keys."""

    @classmethod
    def setUpClass(cls):
        cls.redis = RedisServer(args=["--enable-debug-command", "local"]).start()
        cls.r = cls.redis.client()
        cls.r.function_load(library(), replace=True)

    @classmethod
    def tearDownClass(cls):
        cls.redis.cleanup()

    def setUp(self):
        self.r.flushall()
        self.r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "1")

    def fcall(self, fn, keys, *args):
        return self.r.fcall(fn, len(keys), *keys, *args)

    def redis_now_ms(self):
        s, us = self.r.time()
        return s * 1000 + us // 1000

    def claim(self, member, ttl_ms, pkey=None):
        """eb1_claim of one timer: its result."""
        res = self.fcall("eb1_claim", [L] + ([pkey] if pkey else []), ttl_ms, member,
                         2 if pkey else 0)
        self.assertEqual(len(res), 1)
        return res[0]

    def arm(self, key, ttl_ms, value=None, payload=None, pkey=None):
        keys = [key, L] + ([pkey] if pkey else [])
        args = [ttl_ms] + ([value if value is not None else "1"] if (value or payload) else [])
        if payload is not None:
            args.append(payload)
        return self.fcall("eb1_arm", keys, *args)

    def expire_now(self, key):
        """Make key overdue without Redis expiring it yet (active expiry off).
        PEXPIRE and PEXPIRETIME go in one MULTI: the server judges expiry
        inside a transaction at the time EXEC started, so PEXPIRETIME cannot
        find the key already 1 ms old and expire it itself, as it did when
        the two were separate commands on a loaded machine."""
        self.r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")
        tx = self.r.pipeline(transaction=True)
        tx.pexpire(key, 1)
        tx.execute_command("PEXPIRETIME", key)
        armed, deadline = tx.execute()
        self.assertTrue(armed)
        self.assertGreater(deadline, 0, "the key was expired before its deadline was read")
        self.r.zadd(L, {key: deadline})
        wait_for(lambda: int(time.time() * 1000) > deadline + 2, 2, what="deadline passed")
        return deadline

    # ---- timer API -----------------------------------------------------

    def test_arm_sets_the_key_its_ttl_and_the_deadline_in_one_step(self):
        d = self.arm("order:1", 60000, "pending", '{"sku":"A"}', "order:1:payload")
        self.assertEqual(self.r.get("order:1"), b"pending")
        self.assertEqual(self.r.execute_command("PEXPIRETIME", "order:1"), d)
        self.assertEqual(self.r.zscore(L, "order:1"), d)
        self.assertEqual(self.r.get("order:1:payload"), b'{"sku":"A"}')
        self.assertEqual(self.r.ttl("order:1:payload"), -1, "the payload has no TTL")
        self.assertAlmostEqual(d, time.time() * 1000 + 60000, delta=2000)

    def test_arm_without_value_stores_1(self):
        self.arm("order:2", 60000)
        self.assertEqual(self.r.get("order:2"), b"1")

    def test_arm_refuses_bad_arguments(self):
        for ttl in ("0", "-5", "abc", "1.5"):
            with self.assertRaisesRegex(Exception, "ttl_ms must be a positive integer"):
                self.fcall("eb1_arm", ["k", L], ttl)
        with self.assertRaisesRegex(Exception, "expected 2 or 3 keys"):
            self.fcall("eb1_arm", ["k"], 1000)
        self.assertFalse(self.r.exists("k"))

    def test_arm_again_replaces_the_timer_and_forgets_its_delivery_record(self):
        self.r.zadd(CLAIMS, {"order:3": time.time() * 1000 + 60000})
        d1 = self.arm("order:3", 60000)
        d2 = self.arm("order:3", 120000)
        self.assertGreater(d2, d1)
        self.assertEqual(self.r.zscore(L, "order:3"), d2)
        self.assertIsNone(self.r.zscore(CLAIMS, "order:3"))

    def test_disarm_deletes_key_entry_payload_and_claim(self):
        self.arm("order:4", 60000, "v", "p", "order:4:payload")
        self.r.zadd(CLAIMS, {"order:4": 1})
        self.assertEqual(self.fcall("eb1_disarm", ["order:4", L, "order:4:payload"]), 1)
        self.assertFalse(self.r.exists("order:4", "order:4:payload"))
        self.assertIsNone(self.r.zscore(L, "order:4"))
        self.assertIsNone(self.r.zscore(CLAIMS, "order:4"))

    def test_disarm_after_expiry_returns_0_and_still_removes_the_entry(self):
        self.arm("order:5", 1)
        wait_for(lambda: not self.r.exists("order:5"), 2, what="expiry")
        self.assertEqual(self.fcall("eb1_disarm", ["order:5", L]), 0)
        self.assertIsNone(self.r.zscore(L, "order:5"))

    def test_rearm_moves_the_deadline(self):
        d1 = self.arm("order:6", 60000)
        d2 = self.fcall("eb1_rearm", ["order:6", L], 300000)
        self.assertGreater(d2, d1 + 200000)
        self.assertEqual(self.r.zscore(L, "order:6"), d2)
        self.assertEqual(self.r.execute_command("PEXPIRETIME", "order:6"), d2)

    def test_rearm_of_a_missing_key_returns_0_and_records_nothing(self):
        self.assertEqual(self.fcall("eb1_rearm", ["order:none", L], 1000), 0)
        self.assertIsNone(self.r.zscore(L, "order:none"))

    # ---- claim ---------------------------------------------------------

    def test_claim_of_an_expired_timer_returns_deadline_and_string_payload(self):
        d = self.arm("order:7", 1, "v", '{"a":1}', "order:7:payload")
        wait_for(lambda: not self.r.exists("order:7"), 2, what="expiry")
        res = self.claim("order:7", 5000, "order:7:payload")
        self.assertEqual(res, [OWED, d, b"string", b'{"a":1}'])
        self.assertGreater(self.r.zscore(CLAIMS, "order:7"), time.time() * 1000)

    def test_claim_reads_a_hash_payload_and_reports_a_missing_one(self):
        self.arm("order:8", 1)
        self.r.hset("order:8:payload", mapping={"sku": "A", "qty": "2"})
        self.arm("order:9", 1)
        wait_for(lambda: not self.r.exists("order:8", "order:9"), 2, what="expiry")
        res = self.claim("order:8", 5000, "order:8:payload")
        self.assertEqual(res[:3], [OWED, res[1], b"hash"])
        self.assertEqual(dict(zip(res[3::2], res[4::2])), {b"sku": b"A", b"qty": b"2"})
        res = self.claim("order:9", 5000, "order:9:payload")
        self.assertEqual(res[0::2], [OWED, b"missing"])

    def test_claim_of_a_list_payload_reports_its_type(self):
        self.arm("order:10", 1)
        self.r.rpush("order:10:payload", "x")
        wait_for(lambda: not self.r.exists("order:10"), 2, what="expiry")
        res = self.claim("order:10", 5000, "order:10:payload")
        self.assertEqual(res[2:], [b"list"])

    def test_second_claim_is_busy_until_the_claim_runs_out(self):
        d = self.arm("order:11", 1)
        wait_for(lambda: not self.r.exists("order:11"), 2, what="expiry")
        self.assertEqual(self.claim("order:11", 300)[0], OWED)
        self.assertEqual(self.claim("order:11", 300), [BUSY, d])
        wait_for(lambda: self.claim("order:11", 300)[0] == OWED, 3,
                 what="claim ran out")

    def test_claim_takes_a_batch_with_payload_slots(self):
        da = self.arm("order:ca", 1, "v", "pa", "order:ca:payload")
        db = self.arm("order:cb", 1)
        wait_for(lambda: not self.r.exists("order:ca", "order:cb"), 2, what="expiry")
        res = self.fcall("eb1_claim", [L, "order:ca:payload"], 5000, "order:ca", 2, "order:cb", 0,
                         "order:cc", 0)
        self.assertEqual(res, [[OWED, da, b"string", b"pa"], [OWED, db, b"none"],
                               [UNKNOWN, -1, b"none"]])
        with self.assertRaisesRegex(Exception, "slot must be"):
            self.fcall("eb1_claim", [L], 5000, "order:ca", 2)
        with self.assertRaisesRegex(Exception, "pairs"):
            self.fcall("eb1_claim", [L], 5000, "order:ca")

    def test_claim_without_entry_is_unknown_with_payload(self):
        self.r.set("order:12:payload", "hello")
        res = self.claim("order:12", 5000, "order:12:payload")
        self.assertEqual(res, [UNKNOWN, -1, b"string", b"hello"])

    def test_claim_of_a_rearmed_key_is_changed(self):
        # The notification was for an earlier timer; the entry is a later one.
        d = self.arm("order:13", 60000)
        self.assertEqual(self.claim("order:13", 5000), [CHANGED, d])
        self.assertIsNone(self.r.zscore(CLAIMS, "order:13"))

    # ---- ack -----------------------------------------------------------

    def test_ack_removes_entry_and_payload_and_remembers_the_delivery(self):
        d = self.arm("order:14", 1, "v", "p", "order:14:payload")
        wait_for(lambda: not self.r.exists("order:14"), 2, what="expiry")
        self.claim("order:14", 5000, "order:14:payload")
        self.assertEqual(self.fcall("eb1_ack", [L, "order:14:payload"], 30000, "order:14", d, 2), [1])
        self.assertIsNone(self.r.zscore(L, "order:14"))
        self.assertFalse(self.r.exists("order:14:payload"))
        self.assertEqual(self.claim("order:14", 5000), [DONE])
        self.assertEqual(self.fcall("eb1_ack", [L], 30000, "order:14", d, 0), [0], "already gone")

    def test_ack_takes_a_batch_with_payload_slots(self):
        da = self.arm("order:a", 1, "v", "pa", "order:a:payload")
        db = self.arm("order:b", 1)
        dc = self.arm("order:c", 1, "v", "pc", "order:c:payload")
        wait_for(lambda: not self.r.exists("order:a", "order:b", "order:c"), 2, what="expiry")
        res = self.fcall("eb1_ack", [L, "order:a:payload", "order:c:payload"], 30000,
                         "order:a", da, 2, "order:b", db, 0, "order:c", dc + 1, 3)
        self.assertEqual(res, [1, 1, 2])
        self.assertFalse(self.r.exists("order:a:payload"))
        self.assertTrue(self.r.exists("order:c:payload"), "not this timer's: kept")
        self.assertEqual(self.r.zrange(L, 0, -1), [b"order:c"])
        with self.assertRaisesRegex(Exception, "slot must be"):
            self.fcall("eb1_ack", [L], 30000, "order:c", dc, 1)
        with self.assertRaisesRegex(Exception, "triples"):
            self.fcall("eb1_ack", [L], 30000, "order:c", dc)

    def test_ack_of_a_rearmed_timer_keeps_entry_and_payload(self):
        d = self.arm("order:15", 60000, "v", "p", "order:15:payload")
        d2 = self.fcall("eb1_rearm", ["order:15", L], 120000)
        self.assertEqual(self.fcall("eb1_ack", [L, "order:15:payload"], 30000, "order:15", d, 2), [2])
        self.assertEqual(self.r.zscore(L, "order:15"), d2)
        self.assertTrue(self.r.exists("order:15:payload"))

    def test_delivery_record_is_forgotten_after_remember_ms(self):
        d = self.arm("order:16", 1)
        wait_for(lambda: not self.r.exists("order:16"), 2, what="expiry")
        self.fcall("eb1_ack", [L], 100, "order:16", d, 0)
        wait_for(lambda: self.fcall("eb1_due", [L], 0, 10, 0) and
                 self.r.zscore(CLAIMS, "order:16") is None, 3, what="record dropped")
        self.assertEqual(self.claim("order:16", 5000)[0], UNKNOWN)

    # ---- collect (the sweep) -------------------------------------------

    def test_collect_touches_an_overdue_key_so_redis_expires_and_announces_it(self):
        self.r.config_set("notify-keyspace-events", "Ex")
        self.arm("order:17", 60000, "v", "p", "order:17:payload")
        ps = self.redis.client().pubsub()
        ps.psubscribe("__keyevent@*__:expired")
        wait_for(lambda: ps.get_message(timeout=0.1), 2, what="psubscribe")
        d = self.expire_now("order:17")
        self.assertEqual(self.r.dbsize(), 3, "the overdue key still exists")
        res = self.fcall("eb1_collect", [L, "order:17", "order:17:payload"], d, 5000)
        self.assertEqual(res, [OWED, d, b"string", b"p"])
        self.assertEqual(self.r.execute_command("PEXPIRETIME", "order:17"), -2)
        msg = wait_for(lambda: ps.get_message(timeout=0.1), 2, what="expired notification")
        self.assertEqual(msg["data"], b"order:17")
        ps.close()

    def test_collect_touch_only_expires_the_key_without_claiming(self):
        self.arm("order:21", 60000)
        d = self.expire_now("order:21")
        self.assertEqual(self.fcall("eb1_collect", [L, "order:21"], d, 5000, "touch"), [7])
        self.assertEqual(self.r.execute_command("PEXPIRETIME", "order:21"), -2)
        self.assertIsNone(self.r.zscore(CLAIMS, "order:21"), "left to the live notification")
        self.assertEqual(self.claim("order:21", 5000)[:2], [OWED, d])

    def test_collect_of_a_key_without_ttl_removes_the_entry(self):
        d = self.arm("order:18", 60000)
        self.r.set("order:18", "x")  # SET without EX drops the TTL
        self.assertEqual(self.fcall("eb1_collect", [L, "order:18"], d, 5000), [PERSISTED])
        self.assertIsNone(self.r.zscore(L, "order:18"))

    def test_collect_of_a_key_with_a_later_ttl_moves_the_entry(self):
        d = self.arm("order:19", 60000)
        self.r.pexpire("order:19", 300000)
        res = self.fcall("eb1_collect", [L, "order:19"], d, 5000)
        self.assertEqual(res[0], MOVED)
        self.assertEqual(self.r.zscore(L, "order:19"), res[1])

    def test_collect_with_a_stale_deadline_or_a_claim_does_nothing(self):
        d = self.arm("order:20", 1)
        wait_for(lambda: not self.r.exists("order:20"), 2, what="expiry")
        self.assertEqual(self.fcall("eb1_collect", [L, "order:20"], d + 1, 5000), [CHANGED])
        self.claim("order:20", 5000)
        self.assertEqual(self.fcall("eb1_collect", [L, "order:20"], d, 5000), [BUSY, d])

    # ---- due -----------------------------------------------------------

    def test_due_pages_overdue_unclaimed_entries_oldest_first(self):
        now = int(time.time() * 1000)
        self.r.zadd(L, {"a": now - 5000, "b": now - 4000, "c": now - 3000, "d": now - 100,
                        "future": now + 60000})
        self.r.zadd(CLAIMS, {"b": now + 60000, "stale": now - 1})
        res = self.fcall("eb1_due", [L], 0, 1, 500)
        _, pending, overdue, nxt, more = res[:5]
        self.assertEqual((pending, overdue), (5, 4))
        self.assertEqual(res[5:], [b"a", now - 5000])
        self.assertEqual((nxt, more), (1, 1))
        res = self.fcall("eb1_due", [L], nxt, 1, 500)
        self.assertEqual(res[5::2], [b"c"], "b is claimed, d within the grace")
        self.assertEqual(res[3:5], [3, 0])
        res = self.fcall("eb1_due", [L], 0, 10, 500)
        self.assertEqual(res[5::2], [b"a", b"c"])
        self.assertIsNone(self.r.zscore(CLAIMS, "stale"), "expired claims are forgotten")

    # ---- renew ---------------------------------------------------------

    def test_renew_extends_existing_claims_of_existing_entries_only(self):
        now = int(time.time() * 1000)
        self.r.zadd(L, {"a": now - 1000, "b": now - 1000})
        self.r.zadd(CLAIMS, {"a": now + 1000, "gone": now + 1000})
        self.assertEqual(self.fcall("eb1_renew", [L], 60000, "a", "b", "gone"), 1)
        self.assertGreater(self.r.zscore(CLAIMS, "a"), now + 50000)
        self.assertIsNone(self.r.zscore(CLAIMS, "b"))
        self.assertLess(self.r.zscore(CLAIMS, "gone"), now + 2000)

    # ---- observed mode -------------------------------------------------

    def test_observe_records_ttls_forgets_persisted_keys_and_skips_missing_ones(self):
        self.r.set("laravel_cache:ORDER_CONFIRM:1", "x", ex=600)
        self.r.set("laravel_cache:ORDER_CONFIRM:2", "x")
        self.r.zadd(L, {"laravel_cache:ORDER_CONFIRM:2": 1})
        res = self.fcall("eb1_observe", [L, "laravel_cache:ORDER_CONFIRM:1",
                                         "laravel_cache:ORDER_CONFIRM:2",
                                         "laravel_cache:ORDER_CONFIRM:3"])
        t = self.r.execute_command("PEXPIRETIME", "laravel_cache:ORDER_CONFIRM:1")
        self.assertEqual(res, [t, -1, -2])
        self.assertEqual(self.r.zscore(L, "laravel_cache:ORDER_CONFIRM:1"), t)
        self.assertIsNone(self.r.zscore(L, "laravel_cache:ORDER_CONFIRM:2"))

    def test_observe_of_a_new_deadline_clears_the_claim_of_the_old_timer(self):
        self.r.set("k", "x", ex=600)
        self.r.zadd(CLAIMS, {"k": time.time() * 1000 + 60000})
        self.fcall("eb1_observe", [L, "k"])
        self.assertIsNone(self.r.zscore(CLAIMS, "k"))

    def test_drop_forgets_timers_deleted_before_their_deadline(self):
        later = self.redis_now_ms() + 600000
        self.r.zadd(L, {"k1": later, "k2": later + 1})
        self.r.zadd(CLAIMS, {"k1": 9e12})
        self.assertEqual(self.fcall("eb1_drop", [L], "k1", "k3"), 1)
        self.assertEqual(self.r.zrange(L, 0, -1), [b"k2"])
        self.assertIsNone(self.r.zscore(CLAIMS, "k1"))

    def test_drop_keeps_a_timer_whose_deadline_passed(self):
        # The `del` a replica announces when its master expires a key (a
        # master demoted by CLUSTER FAILOVER still has the bridge's
        # subscription): not a cancellation; the timer is still owed.
        self.r.set("k", "v", px=100)
        d = self.fcall("eb1_observe", [L, "k"])[0]
        wait_for(lambda: not self.r.exists("k"), 2, what="expiry")
        self.assertEqual(self.fcall("eb1_drop", [L], "k"), 0)
        self.assertEqual(self.r.zscore(L, "k"), d)
        res = self.fcall("eb1_collect", [L, "k"], d, 5000)
        self.assertEqual(res[:2], [OWED, d])

    def test_binary_keys_and_payloads_survive(self):
        key = b"order:\xff\x00:1"
        pkey = key + b":payload"
        d = self.r.fcall("eb1_arm", 3, key, L, pkey, 1, b"\x00", b"\xfe\xff")
        wait_for(lambda: not self.r.exists(key), 2, what="expiry")
        res = self.r.fcall("eb1_claim", 2, L, pkey, 5000, key, 2)[0]
        self.assertEqual(res, [OWED, d, b"string", b"\xfe\xff"])
        self.assertEqual(self.r.fcall("eb1_ack", 2, L, pkey, 1000, key, d, 2), [1])


class Durability(unittest.TestCase):
    """The ledger under AOF restarts and replication: effects are replicated
    (never a re-run of TIME-dependent code), so a replica holds the same
    deadlines and a restarted master the same ledger."""

    def test_aof_restart_keeps_ledger_keys_and_library(self):
        redis = RedisServer(appendonly=True).start()
        self.addCleanup(redis.cleanup)
        r = redis.client()
        r.function_load(library(), replace=True)
        deadlines = {("t:%d" % i): r.fcall("eb1_arm", 2, "t:%d" % i, L, 600000) for i in range(50)}
        redis.stop()  # SIGTERM: Redis fsyncs the AOF on a clean shutdown
        redis.start()
        r = redis.client()
        self.assertEqual({k.decode(): int(v) for k, v in r.zrange(L, 0, -1, withscores=True)},
                         deadlines)
        self.assertEqual(r.execute_command("PEXPIRETIME", "t:7"), deadlines["t:7"])
        self.assertEqual(r.fcall("eb1_rearm", 2, "t:7", L, 1000) > 0, True,
                         "the library came back from the AOF")

    def test_replica_holds_the_same_deadlines(self):
        master = RedisServer().start()
        self.addCleanup(master.cleanup)
        replica = RedisServer(args=["--replicaof", "127.0.0.1", str(master.port)]).start()
        self.addCleanup(replica.cleanup)
        m, rep = master.client(), replica.client()
        wait_for(lambda: rep.info("replication").get("master_link_status") == "up", 10,
                 what="replica in sync")
        m.function_load(library(), replace=True)
        for i in range(100):
            m.fcall("eb1_arm", 3, "t:%d" % i, L, "t:%d:p" % i, 600000 + i, "v", "p%d" % i)
        d = m.fcall("eb1_arm", 2, "gone", L, 1)
        wait_for(lambda: not m.exists("gone"), 2, what="expiry")
        m.fcall("eb1_claim", 1, L, 5000, "gone", 0)
        m.fcall("eb1_ack", 1, L, 60000, "gone", d, 0)
        want = m.zrange(L, 0, -1, withscores=True)
        claims = m.zrange(CLAIMS, 0, -1, withscores=True)
        wait_for(lambda: rep.zrange(L, 0, -1, withscores=True) == want and
                 rep.zrange(CLAIMS, 0, -1, withscores=True) == claims, 5,
                 what="replica caught up")
        self.assertEqual(len(want), 100)
        self.assertEqual(rep.execute_command("PEXPIRETIME", "t:42"),
                         m.execute_command("PEXPIRETIME", "t:42"))


class Cluster(unittest.TestCase):
    """On Redis Cluster every key of one FCALL must hash to one slot. With the
    naming of docs/ledger.md (the ledger's hash tag in the timer and payload
    keys) every function works, including the derived <ledger>:claims."""

    def setUp(self):
        d = TempDir("cluster")
        self.addCleanup(d.cleanup)
        # The bus port defaults to port + 10000, which may not exist: name one.
        self.redis = RedisServer(args=["--cluster-enabled", "yes", "--cluster-config-file",
                                       os.path.join(d.path, "nodes.conf"),
                                       "--cluster-port", str(ebtest.free_port())]).start()
        self.addCleanup(self.redis.cleanup)
        self.r = self.redis.client()
        self.r.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        wait_for(lambda: self.r.execute_command("CLUSTER", "INFO").decode().find(
            "cluster_state:ok") >= 0, 10, what="cluster ok")
        self.r.function_load(library(), replace=True)

    def test_tagged_keys_work_in_one_slot(self):
        key, pkey = "order:{orders}:7", "order:{orders}:7:payload"
        d = self.r.fcall("eb1_arm", 3, key, L, pkey, 1, "v", "p")
        wait_for(lambda: not self.r.exists(key), 2, what="expiry")
        self.assertEqual(self.r.fcall("eb1_claim", 2, L, pkey, 5000, key, 2)[0][0], OWED)
        self.assertEqual(self.r.fcall("eb1_ack", 2, L, pkey, 1000, key, d, 2), [1])
        self.assertEqual(self.r.fcall("eb1_due", 1, L, 0, 10, 0)[1], 0)

    def test_untagged_keys_are_refused_before_anything_is_written(self):
        with self.assertRaisesRegex(Exception, "CROSSSLOT|same slot"):
            self.r.fcall("eb1_arm", 2, "order:7", L, 1000)
        self.assertEqual(self.r.dbsize(), 0)


class FunctionsLoadCommand(unittest.TestCase):
    """`expiry-bridge functions load -c FILE`."""

    def run_load(self, config):
        d = TempDir("fload")
        self.addCleanup(d.cleanup)
        path = d.file("c.yaml", config)
        return subprocess.run([EB_BIN, "functions", "load", "-c", path], capture_output=True,
                              text=True, timeout=30)

    def config(self, port):
        return bridge_config(port, "127.0.0.1:9", '  - name: orders\n    match: "order:{id}"\n'
                             '    topic: orders\n    ledger: armed\n')

    def test_installs_the_library(self):
        redis = RedisServer(args=["--requirepass", "s3cret"]).start()
        self.addCleanup(redis.cleanup)
        cfg = self.config(redis.port).replace("url: redis://", "password: s3cret\n  url: redis://")
        p = self.run_load(cfg)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("loaded eb_timers_v1", p.stdout)
        self.assertNotIn("s3cret", p.stdout + p.stderr)
        lib = redis.client().function_list()[0]
        self.assertEqual(lib[lib.index(b"library_name") + 1], b"eb_timers_v1")
        self.assertEqual(self.run_load(cfg).returncode, 0, "loading again replaces it")

    def test_acl_user_without_password_installs(self):
        """`user ... on nopass` with the example config's empty
        ${REDIS_PASSWORD:-}: AUTH must still name the user."""
        redis = RedisServer().start()
        self.addCleanup(redis.cleanup)
        r = redis.client()
        r.execute_command("ACL", "SETUSER", "bridge", "on", "nopass", "~*", "&*", "+@all")
        r.execute_command("ACL", "SETUSER", "default", "off")
        cfg = self.config(redis.port).replace(
            "url: redis://", "username: bridge\n  password: ${EB_TEST_UNSET_PASSWORD:-}\n"
            "  url: redis://")
        p = self.run_load(cfg)
        self.assertEqual(p.returncode, 0, p.stderr)
        r = redis.client(username="bridge", password="x")
        lib = r.function_list()[0]
        self.assertEqual(lib[lib.index(b"library_name") + 1], b"eb_timers_v1")

    def test_bridge_with_a_nopass_user_loads_the_library_and_subscribes(self):
        redis = RedisServer().start()
        self.addCleanup(redis.cleanup)
        r = redis.client()
        r.execute_command("ACL", "SETUSER", "bridge", "on", "nopass", "~*", "&*", "+@all")
        r.execute_command("ACL", "SETUSER", "default", "off")
        cfg = self.config(redis.port).replace(
            "url: redis://", "username: bridge\n  password: ${EB_TEST_UNSET_PASSWORD:-}\n"
            "  url: redis://")
        b = ebtest.Bridge(cfg).start()
        self.addCleanup(b.cleanup)
        wait_ledger_ready(b)
        start = b.find_log(lambda e: e.get("msg") == "redis source starting")
        self.assertTrue(start["auth"], start)

    def test_unreachable_redis_exits_69(self):
        p = self.run_load(self.config(ebtest.free_port()))
        self.assertEqual(p.returncode, 69)
        self.assertIn("cannot connect", p.stderr)

    def test_invalid_config_exits_78(self):
        p = self.run_load("redis: {url: redis://x}\n")
        self.assertEqual(p.returncode, 78)


class FunctionsLoadBehindSentinel(unittest.TestCase):
    """`expiry-bridge functions load` with a redis-sentinel:// URL asks the
    sentinels which server is the master and loads the library there (not
    on a sentinel, which has no FUNCTION command)."""

    def load(self, url, sentinel_password=None):
        d = TempDir("fload")
        self.addCleanup(d.cleanup)
        cfg = bridge_config(0, "127.0.0.1:9", '  - name: orders\n    match: "order:{id}"\n'
                            '    topic: orders\n    ledger: armed\n')
        cfg = cfg.replace("url: redis://127.0.0.1:0", "url: " + url)
        if sentinel_password:
            cfg = cfg.replace("redis:\n", "redis:\n  sentinel: { password: %s }\n" %
                              sentinel_password, 1)
        path = d.file("c.yaml", cfg)
        return subprocess.run([EB_BIN, "functions", "load", "-c", path], capture_output=True,
                              text=True, timeout=30)

    def group(self):
        g = topotest.SentinelGroup(replicas=1, sentinels=1, sentinel_password="sentinel-pw")
        g.start()
        self.addCleanup(g.cleanup)
        return g

    def test_a_sentinel_url_loads_the_library_on_the_master_the_sentinels_name(self):
        g = self.group()
        p = self.load("redis-sentinel://%s/%s" % (g.sentinel_addrs(), g.name), "sentinel-pw")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("loaded eb_timers_v1", p.stdout)
        self.assertNotIn("sentinel-pw", p.stdout + p.stderr)
        lib = g.node(g.master_port()).client().function_list()[0]
        self.assertEqual(lib[lib.index(b"library_name") + 1], b"eb_timers_v1")

    def test_a_master_name_the_sentinels_do_not_monitor_exits_69_naming_the_sentinel(self):
        g = self.group()
        p = self.load("redis-sentinel://%s/othermaster" % g.sentinel_addrs(), "sentinel-pw")
        self.assertEqual(p.returncode, 69, p.stdout)
        self.assertIn("sentinel %s" % g.sentinel_addrs(), p.stderr)
        self.assertIn("does not know this master name", p.stderr)


if __name__ == "__main__":
    unittest.main()
