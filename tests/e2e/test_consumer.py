"""End-to-end: the sample C order consumer (examples/order-consumer) against a
real PostgreSQL (pgtest) and the mock Kafka (ebtest), fed events in the exact
format the bridge produces (DESIGN §3, docs/event.schema.json).

ConsumerContract holds the behaviours every order consumer must have; it is
run here against the C consumer and in test_consumer_python.py against the
Python one, so both are held to the same contract. Each test gets a fresh
database, a fresh mock Kafka cluster and its own topic and group, and checks
the stock balance exactly:

    final stock[p] == initial stock[p] - qty reserved by orders not cancelled

Environment (set by ctest, tests/e2e/CMakeLists.txt):
  EB_ORDER_CONSUMER   the order-consumer binary
  EB_MOCK_KAFKA, EB_SOURCE_DIR, PYTHONPATH=tests/support   as for every test
"""

import datetime
import hashlib
import json
import os
import random
import signal
import subprocess
import threading
import unittest
import uuid

import ebtest
from ebtest import SOURCE_DIR, MockKafka, wait_for
from pgtest import PostgresCluster

ORDER_CONSUMER = os.environ.get(
    "EB_ORDER_CONSUMER", os.path.join(SOURCE_DIR, "build", "examples", "order-consumer"))
EVENT_SCHEMA = os.path.join(SOURCE_DIR, "docs", "event.schema.json")

# Test-speed settings from TESTING.md: the mock's first group join takes 3 s;
# a short session makes a dead member's partitions move quickly.
KAFKA_TEST_PROPS = {
    "session.timeout.ms": "6000",
    "heartbeat.interval.ms": "500",
    "topic.metadata.refresh.interval.ms": "1000",
    "reconnect.backoff.max.ms": "1000",
}


# ---------------------------------------------------------------------------
# Events, exactly as the bridge writes them

def make_event(order_id, delivery="live", timer="t1", etype="redis.key.expired"):
    """A structured CloudEvent for the expiry of order_id's payment timer.

    `timer` names one arming of the timer: a live and a recovered delivery of
    the same timer share their id (derived from source, key and deadline, as
    the bridge derives it); a timer armed again gets a new id."""
    key = "laravel_cache:ORDER_CONFIRM:%d" % order_id
    source = "redis://127.0.0.1:6379/0"
    deadline = "2026-11-24T03:39:59.998Z"
    framed = "%s|%s|%s|%s" % (source, key, deadline, timer)
    event_id = hashlib.sha256(framed.encode()).hexdigest()[:32]  # 32 hex digits, as the bridge
    data = {"event": "expired", "key": key, "db": 0, "route": "order-payment-timeout",
            "params": {"order_id": str(order_id)}, "delivery": delivery}
    if delivery == "recovered":
        data["deadline"] = deadline  # known from the ledger
    ev = {"specversion": "1.0", "type": etype, "source": source, "id": event_id,
          "time": datetime.datetime.now(datetime.timezone.utc).strftime(
              "%Y-%m-%dT%H:%M:%S.%fZ"),
          "subject": key, "datacontenttype": "application/json", "data": data}
    if etype == "redis.key.expired" and os.path.exists(EVENT_SCHEMA):
        ebtest.validate_event(ev)  # the tests speak the published contract
    return ev


def event_message(ev, partition=None):
    """The Kafka message the bridge sends for ev: key = order id (the route's
    key template), structured mode's single content-type header."""
    m = {"key": ev["data"]["params"]["order_id"].encode(), "value": json.dumps(ev).encode(),
         "headers": [("content-type", b"application/cloudevents+json")]}
    if partition is not None:
        m["partition"] = partition
    return m


def produce(bootstrap, topic, messages):
    """Produce dicts of key/value/headers[/partition] and wait until Kafka
    acknowledged every one (acks=all)."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                  "reconnect.backoff.max.ms": 1000})
    failed = []

    def report(err, msg):
        if err:
            failed.append(err)
    for m in messages:
        kw = {k: m[k] for k in ("key", "headers", "partition") if k in m}
        p.produce(topic, value=m["value"], on_delivery=report, **kw)
    left = p.flush(30)
    if left or failed:
        raise AssertionError("produce to %s: %d unacknowledged, errors %s" % (topic, left, failed))


# ---------------------------------------------------------------------------
# The shop's database

class Shop:
    """A fresh database with the consumer's schema, products, stock and orders
    whose lines reserved stock (taken out of `stock` when placed)."""

    def __init__(self, pg, dbname):
        self.pg = pg
        self.dbname = dbname
        self.dsn = pg.create_database(dbname)
        self.initial = {}  # product id -> stock before any order
        self.lines = {}    # order id -> [(product id, qty)]

    def sql(self, query, args=None):
        conn = self.pg.connect(self.dbname)
        try:
            with conn.cursor() as cur:
                cur.execute(query, args)
                return cur.fetchall() if cur.description else None
        finally:
            conn.close()

    def seed(self, orders, products=5, initial=1000, seed=4):
        rnd = random.Random(seed)
        self.initial = {p: initial for p in range(1, products + 1)}
        for o in range(1, orders + 1):
            picked = rnd.sample(sorted(self.initial), rnd.randint(1, min(3, products)))
            self.lines[o] = [(p, rnd.randint(1, 5)) for p in picked]
        conn = self.pg.connect(self.dbname, autocommit=False)
        with conn, conn.cursor() as cur:
            for p, q in self.initial.items():
                cur.execute("INSERT INTO products VALUES (%s, %s)", (p, "product %d" % p))
                cur.execute("INSERT INTO stock (product_id, qty) VALUES (%s, %s)", (p, q))
            for o, lines in self.lines.items():
                cur.execute("INSERT INTO orders (id) VALUES (%s)", (o,))
                for p, q in lines:
                    cur.execute("INSERT INTO order_lines VALUES (%s, %s, %s)", (o, p, q))
                    cur.execute("UPDATE stock SET qty = qty - %s WHERE product_id = %s", (q, p))
        conn.close()
        return self

    def pay(self, order_ids):
        self.sql("UPDATE orders SET status = 'paid' WHERE id = ANY(%s)", (list(order_ids),))

    def statuses(self):
        return dict(self.sql("SELECT id, status FROM orders"))

    def cancelled(self):
        return {o for o, s in self.statuses().items() if s == "cancelled"}

    def stock(self):
        return dict(self.sql("SELECT product_id, qty FROM stock"))

    def processed(self):
        return [r[0] for r in self.sql("SELECT event_id FROM processed_events")]

    def processed_count(self):
        return self.sql("SELECT count(*) FROM processed_events")[0][0]

    def balance(self):
        """(expected, actual) stock per product: initial minus what every
        order that is not cancelled still holds."""
        statuses = self.statuses()
        expected = dict(self.initial)
        for o, lines in self.lines.items():
            if statuses[o] != "cancelled":
                for p, q in lines:
                    expected[p] -= q
        return expected, self.stock()

    def returned_qty(self, order_ids):
        return sum(q for o in order_ids for _, q in self.lines[o])


# ---------------------------------------------------------------------------
# Consumer processes

class ConsumerProcess(ebtest.Bridge):
    """A consumer program with its JSON-lines stderr collected in .logs.

    Reuses ebtest.Bridge's log collection, wait_log and stop-by-PID; only
    the command line differs."""

    def __init__(self, argv, env=None):
        super().__init__("", env=env)
        self.argv = argv

    def start(self):
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     env=self.env)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def cleanup(self):
        super().cleanup()
        if self.proc and self.proc.stderr:
            self.proc.stderr.close()

    def count_msg(self, msg):
        with self._lock:
            return sum(1 for e in self.logs if e.get("msg") == msg)

    def stats(self):
        """The counters of the final "stopped" line."""
        return self.find_log(lambda e: e.get("msg") == "stopped")


class ConsumerContract:
    """The behaviours of an order consumer. Subclasses say how to run one
    (consumer_argv) and mix in unittest.TestCase."""

    name = None
    mock_kafka_args = ()  # eb_mock_kafka options a consumer's client needs

    def consumer_argv(self, args):
        raise NotImplementedError

    # -- fixtures -------------------------------------------------------------

    @classmethod
    def setUpClass(cls):
        cls.pg = PostgresCluster().start()
        cls.addClassCleanup(cls.pg.cleanup)

    def setUp(self):
        if not self.pg.running():  # a failed outage test must not break the next
            self.pg.start()
        self.kafka = MockKafka(brokers=1, args=self.mock_kafka_args).start()
        self.addCleanup(self.kafka.stop)
        tag = uuid.uuid4().hex[:8]
        self.topic = "shop.order.payment-timeout.%s" % tag
        self.group = "orders-%s" % tag
        self.shop = Shop(self.pg, "shop_%s" % tag)
        self.addCleanup(self.pg.drop_database, self.shop.dbname)

    def create_topic(self, partitions=4, topic=None):
        self.kafka.create_topic(topic or self.topic, partitions)

    def migrate(self):
        p = subprocess.run(self.consumer_argv(["--migrate", "-d", self.shop.dsn]),
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p

    def start_consumer(self, env=None, args=()):
        argv = ["-b", self.kafka.bootstrap, "-g", self.group, "-t", self.topic,
                "-d", self.shop.dsn, "-v"]
        for k, v in KAFKA_TEST_PROPS.items():
            argv += ["-X", "%s=%s" % (k, v)]
        c = ConsumerProcess(self.consumer_argv(argv + list(args)), env=env).start()
        self.addCleanup(c.cleanup)
        return c

    def wait_assigned(self, consumer, n=1):
        """Until the consumer has been given partitions n times."""
        self.wait_until(lambda: consumer.count_msg("partitions assigned") >= n,
                        "partitions assigned to the consumer", [consumer], timeout=30)

    def wait_until(self, cond, what, consumers=(), timeout=30):
        """Poll cond with a deadline; fail at once if a consumer died."""
        def check():
            for c in consumers:
                if c.proc.poll() is not None:
                    raise AssertionError("consumer exited (%s) while waiting for %s:\n%s" % (
                        c.proc.returncode, what, c.stderr_tail()))
            return cond()
        return wait_for(check, timeout, interval=0.05, what=what)

    def wait_processed(self, n, consumers=(), timeout=30):
        self.wait_until(lambda: self.shop.processed_count() >= n,
                        "%d processed events" % n, consumers, timeout)
        self.assertEqual(self.shop.processed_count(), n)

    def stop_consumer(self, consumer):
        rc = consumer.stop(signal.SIGTERM, timeout=30)
        self.assertEqual(rc, 0, consumer.stderr_tail())
        return consumer.stats()

    def assert_stock_balances(self):
        expected, actual = self.shop.balance()
        self.assertEqual(actual, expected, "stock does not balance")
        return expected

    def group_offsets(self, topic, partitions):
        """{partition: (committed offset or None, high watermark)} for our
        group, read without joining it."""
        from confluent_kafka import Consumer, TopicPartition
        c = Consumer({"bootstrap.servers": self.kafka.bootstrap, "group.id": self.group,
                      "enable.auto.commit": False})
        try:
            tps = [TopicPartition(topic, p) for p in range(partitions)]
            committed = c.committed(tps, timeout=10)
            return {tp.partition: (tp.offset if tp.offset >= 0 else None,
                                   c.get_watermark_offsets(tp, timeout=10)[1])
                    for tp in committed}
        finally:
            c.close()

    def read_partition(self, topic, partition, n, timeout=30):
        """The first n messages of one partition, read without a group."""
        from confluent_kafka import Consumer, TopicPartition
        c = Consumer({"bootstrap.servers": self.kafka.bootstrap, "group.id": "reader",
                      "enable.auto.commit": False})
        self.addCleanup(c.close)
        c.assign([TopicPartition(topic, partition, 0)])
        return ebtest.poll_messages(c, n, timeout, what="%d messages in %s[%d]" % (
            n, topic, partition))

    # -- the story ----------------------------------------------------------------

    def test_story_cancels_only_pending_orders_and_stock_balances(self):
        self.create_topic(4)
        self.migrate()
        self.shop.seed(orders=30)
        paid = {o for o in self.shop.lines if o % 3 == 0}  # paid before their timer fired
        self.shop.pay(paid)
        stock_before = self.shop.stock()
        consumer = self.start_consumer()
        # Every timer fires: the paid orders' timers too (payment raced the
        # expiry); some events come from the bridge's ledger sweep.
        events = [make_event(o, delivery="recovered" if o % 5 == 0 else "live")
                  for o in sorted(self.shop.lines)]
        produce(self.kafka.bootstrap, self.topic, [event_message(e) for e in events])

        self.wait_processed(len(events), [consumer])
        pending = set(self.shop.lines) - paid
        self.assertEqual(self.shop.cancelled(), pending)
        self.assertEqual({o for o, s in self.shop.statuses().items() if s == "paid"}, paid)
        expected = self.assert_stock_balances()
        returned = sum(expected[p] - stock_before[p] for p in expected)
        self.assertEqual(returned, self.shop.returned_qty(pending))
        stats = self.stop_consumer(consumer)
        self.assertEqual((stats["cancelled"], stats["not_pending"]), (len(pending), len(paid)))
        print("story: %d orders, %d paid, %d cancelled; stock %d -> %d, %d units returned, "
              "final %d == initial %d - %d held by paid orders" % (
                  len(self.shop.lines), len(paid), len(pending), sum(stock_before.values()),
                  sum(expected.values()), returned, sum(expected.values()),
                  sum(self.shop.initial.values()), self.shop.returned_qty(paid)))

    # -- idempotence ----------------------------------------------------------------

    def test_same_event_delivered_three_times_returns_stock_once(self):
        self.create_topic(1)
        self.migrate()
        self.shop.seed(orders=2)
        consumer = self.start_consumer()
        ev = make_event(1)
        produce(self.kafka.bootstrap, self.topic, [event_message(ev)] * 3 + [
            event_message(make_event(2))])  # a marker: once it is applied, all three were

        self.wait_processed(2, [consumer])
        self.wait_until(lambda: consumer.count_msg("event applied") >= 4, "4 events handled",
                        [consumer])
        self.assertEqual(self.shop.cancelled(), {1, 2})
        self.assert_stock_balances()
        stats = self.stop_consumer(consumer)
        self.assertEqual((stats["cancelled"], stats["duplicates"]), (2, 2))

    def test_recovered_copy_before_and_after_live_returns_stock_once(self):
        # The ledger sweep may announce a timer before or after the live
        # notification does; both copies share the event id.
        self.create_topic(1)
        self.migrate()
        self.shop.seed(orders=1)
        consumer = self.start_consumer()
        produce(self.kafka.bootstrap, self.topic, [
            event_message(make_event(1, delivery="recovered")),
            event_message(make_event(1, delivery="live")),
            event_message(make_event(1, delivery="recovered"))])

        self.wait_until(lambda: consumer.count_msg("event applied") >= 3, "3 events handled",
                        [consumer])
        self.assertEqual(self.shop.processed_count(), 1)
        self.assertEqual(self.shop.sql("SELECT delivery FROM processed_events"), [("recovered",)])
        self.assertEqual(self.shop.cancelled(), {1})
        self.assert_stock_balances()
        stats = self.stop_consumer(consumer)
        self.assertEqual((stats["cancelled"], stats["duplicates"]), (1, 2))

    def test_event_for_paid_order_changes_nothing(self):
        self.create_topic(1)
        self.migrate()
        self.shop.seed(orders=1)
        self.shop.pay([1])
        stock_before = self.shop.stock()
        consumer = self.start_consumer()
        produce(self.kafka.bootstrap, self.topic, [event_message(make_event(1))])

        self.wait_processed(1, [consumer])
        self.assertEqual(self.shop.statuses(), {1: "paid"})
        self.assertEqual(self.shop.stock(), stock_before)
        self.assert_stock_balances()

    def test_rearmed_timer_event_after_cancellation_changes_nothing(self):
        # A second timer of the same order (new event id) finds it cancelled.
        self.create_topic(1)
        self.migrate()
        self.shop.seed(orders=1)
        consumer = self.start_consumer()
        produce(self.kafka.bootstrap, self.topic, [event_message(make_event(1, timer="t1")),
                                                   event_message(make_event(1, timer="t2"))])

        self.wait_processed(2, [consumer])
        self.assertEqual(self.shop.cancelled(), {1})
        self.assert_stock_balances()
        stats = self.stop_consumer(consumer)
        self.assertEqual((stats["cancelled"], stats["not_pending"]), (1, 1))

    # -- crash between the two commits ----------------------------------------------

    def test_kill_between_db_commit_and_offset_commit_returns_stock_once(self):
        self.create_topic(1)
        self.migrate()
        self.shop.seed(orders=6)
        events = [make_event(o) for o in sorted(self.shop.lines)]
        produce(self.kafka.bootstrap, self.topic, [event_message(e) for e in events])

        # Test-only switch: SIGKILL right after the 3rd database commit,
        # before that event's offset is stored or committed.
        crashing = self.start_consumer(env={"EB_CONSUMER_FAULT": "crash-after-db-commit:3"})
        self.assertEqual(crashing.wait_exit(60), -signal.SIGKILL, crashing.stderr_tail())
        self.assertEqual(self.shop.processed_count(), 3)
        self.assertEqual(self.shop.cancelled(), {1, 2, 3})
        self.assert_stock_balances()
        committed, _ = self.group_offsets(self.topic, 1)[0]
        self.assertTrue(committed is None or committed < 3,
                        "offset of the 3rd event was committed: %s" % committed)

        restarted = self.start_consumer()
        self.wait_processed(len(events), [restarted])
        self.assertEqual(self.shop.cancelled(), set(self.shop.lines))
        self.assert_stock_balances()
        stats = self.stop_consumer(restarted)
        # The 3rd event (at least) was read again and changed nothing.
        self.assertGreaterEqual(stats["duplicates"], 1)
        self.assertEqual(stats["cancelled"], 3)

    # -- malformed messages ------------------------------------------------------

    def test_malformed_messages_go_to_dlq_and_later_events_are_processed(self):
        self.create_topic(1)
        dlq = self.topic + ".dlq"
        self.create_topic(1, topic=dlq)
        self.migrate()
        self.shop.seed(orders=2)
        consumer = self.start_consumer()

        no_order_id = make_event(1)
        del no_order_id["data"]["params"]["order_id"]
        number_order_id = make_event(1)
        number_order_id["data"]["params"]["order_id"] = 1
        not_utf8_order_id = make_event(1)
        not_utf8_order_id["data"]["params"]["order_id"] = "\ufffd"
        not_utf8_order_id["data"]["params_base64"] = {"order_id": "/w=="}
        poison = [
            (b"not json at all", "not JSON"),
            (json.dumps(not_utf8_order_id).encode(), "not UTF-8"),
            (b"[1, 2, 3]", "expected a JSON object"),
            (json.dumps(make_event(1, etype="redis.key.evicted")).encode(), "type"),
            (json.dumps(no_order_id).encode(), "data.params.order_id: missing"),
            (json.dumps(number_order_id).encode(), "data.params.order_id: expected a string"),
        ]
        trace = [("trace-id", b"abc-123"), ("content-type", b"application/cloudevents+json")]
        produce(self.kafka.bootstrap, self.topic,
                [event_message(make_event(1), partition=0)] +
                [{"key": b"k%d" % i, "value": v, "headers": trace, "partition": 0}
                 for i, (v, _) in enumerate(poison)] +
                [event_message(make_event(2), partition=0)])

        self.wait_processed(2, [consumer])  # the event after the poison, too
        self.assertEqual(self.shop.cancelled(), {1, 2})
        self.assert_stock_balances()

        got = self.read_partition(dlq, 0, len(poison))
        self.assertEqual(self.group_offsets(dlq, 1)[0][1], len(poison), "no extra dead letter")
        for i, (m, (value, reason)) in enumerate(zip(got, poison)):
            headers = m.headers()
            self.assertEqual((m.key(), m.value()), (b"k%d" % i, value))
            self.assertEqual(headers[:len(trace)], trace, "original headers first, unchanged")
            h = dict(headers)
            self.assertIn(reason, h["error"].decode())
            self.assertEqual(h["original.topic"].decode(), self.topic)
            self.assertEqual(int(h["original.partition"]), 0)
            self.assertEqual(int(h["original.offset"]), i + 1)
        stats = self.stop_consumer(consumer)
        self.assertEqual(stats["dead_letters"], len(poison))

    # -- database outage -----------------------------------------------------------

    def test_postgres_outage_mid_stream_skips_no_event(self):
        self.create_topic(4)
        self.migrate()
        self.shop.seed(orders=40)
        consumer = self.start_consumer()
        first = [make_event(o) for o in range(1, 21)]
        second = [make_event(o) for o in range(21, 41)]
        produce(self.kafka.bootstrap, self.topic, [event_message(e) for e in first])
        self.wait_processed(len(first), [consumer])

        self.pg.stop()
        try:
            produce(self.kafka.bootstrap, self.topic, [event_message(e) for e in second])
            # The consumer is now stuck on an event and retrying it.
            self.wait_until(lambda: consumer.count_msg("database error, will retry") >= 3,
                            "3 database retries", [consumer])
        finally:
            self.pg.start()

        self.wait_processed(len(first) + len(second), [consumer])
        self.assertEqual(sorted(self.shop.processed()), sorted(e["id"] for e in first + second))
        self.assertEqual(self.shop.cancelled(), set(self.shop.lines))
        self.assert_stock_balances()
        self.assertEqual(self.stop_consumer(consumer)["cancelled"], 40)

    def test_sigterm_during_database_outage_leaves_the_event_uncommitted(self):
        self.create_topic(1)
        self.migrate()
        self.shop.seed(orders=1)
        consumer = self.start_consumer()
        self.wait_assigned(consumer)
        self.pg.stop()
        try:
            produce(self.kafka.bootstrap, self.topic, [event_message(make_event(1))])
            self.wait_until(lambda: consumer.count_msg("database error, will retry") >= 1,
                            "a database retry", [consumer])
            self.assertEqual(consumer.stop(signal.SIGTERM, timeout=30), 0, consumer.stderr_tail())
            self.assertEqual(self.group_offsets(self.topic, 1), {0: (None, 1)})
        finally:
            self.pg.start()
        self.assertEqual(self.shop.processed_count(), 0)

        restarted = self.start_consumer()
        self.wait_processed(1, [restarted])
        self.assertEqual(self.shop.cancelled(), {1})
        self.assert_stock_balances()

    # -- shutdown and groups -----------------------------------------------------------

    def test_sigterm_commits_every_processed_offset_and_exits_zero(self):
        self.create_topic(4)
        self.migrate()
        self.shop.seed(orders=20)
        consumer = self.start_consumer()
        events = [make_event(o) for o in sorted(self.shop.lines)]
        produce(self.kafka.bootstrap, self.topic, [event_message(e) for e in events])
        self.wait_processed(len(events), [consumer])
        self.stop_consumer(consumer)

        # Committed == end of every partition: a restart reads nothing again.
        offsets = self.group_offsets(self.topic, 4)
        for p, (committed, end) in offsets.items():
            self.assertEqual(committed or 0, end, "partition %d" % p)
        self.assertEqual(sum(end for _, end in offsets.values()), len(events))

    def test_two_consumers_in_one_group_share_partitions_and_stock_balances(self):
        self.create_topic(4)
        self.migrate()
        self.shop.seed(orders=200, products=8)
        paid = {o for o in self.shop.lines if o % 7 == 0}
        self.shop.pay(paid)
        events = [make_event(o) for o in sorted(self.shop.lines)]
        a = self.start_consumer()
        self.wait_assigned(a)
        produce(self.kafka.bootstrap, self.topic, [event_message(e) for e in events[:100]])
        b = self.start_consumer()  # joins while a is working: a rebalance
        self.wait_assigned(b)
        self.wait_until(lambda: a.count_msg("partitions assigned") >= 2,
                        "a's share after the rebalance", [a, b])
        produce(self.kafka.bootstrap, self.topic, [event_message(e) for e in events[100:]])

        self.wait_processed(len(events), [a, b], timeout=60)
        self.assertEqual(self.shop.cancelled(), set(self.shop.lines) - paid)
        expected = self.assert_stock_balances()
        sa, sb = self.stop_consumer(a), self.stop_consumer(b)
        self.assertGreater(sa["events"], 0)
        self.assertGreater(sb["events"], 0)
        self.assert_two_consumers_cancelled("two consumers", sa, sb, expected, paid)

    def check_help_documents_every_flag(self, timeout):
        """--help exits 0 and names every flag, environment variable and
        the exit codes."""
        p = subprocess.run(self.consumer_argv(["--help"]), capture_output=True, text=True,
                           timeout=timeout)
        self.assertEqual(p.returncode, 0)
        for word in ("--brokers", "--group", "--topic", "--db", "-X", "--migrate",
                     "--commit-interval-ms", "ORDER_CONSUMER_BROKERS", "ORDER_CONSUMER_GROUP",
                     "ORDER_CONSUMER_TOPICS", "ORDER_CONSUMER_DB", "Exit codes"):
            self.assertIn(word, p.stdout)

    def check_bad_command_lines_exit_2(self, cases, timeout):
        """Each command line of cases exits 2 with an `order-consumer:` message."""
        for args in cases:
            p = subprocess.run(self.consumer_argv(args), capture_output=True, text=True,
                               timeout=timeout)
            self.assertEqual(p.returncode, 2, args)
            self.assertIn("order-consumer:", p.stderr)

    def assert_two_consumers_cancelled(self, what, sa, sb, expected, paid):
        """Two consumers' stop stats (sa, sb) cancelled exactly the unpaid
        orders between them; prints their counts and the stock balance."""
        self.assertEqual(sa["cancelled"] + sb["cancelled"], len(self.shop.lines) - len(paid))
        print("%s: %d + %d events (%d + %d duplicates); stock total %d == initial "
              "%d - %d held by paid orders" % (
                  what, sa["events"], sb["events"], sa["duplicates"], sb["duplicates"],
                  sum(expected.values()), sum(self.shop.initial.values()),
                  self.shop.returned_qty(paid)))

    def check_binary_mode_events_are_read(self):
        """Two events in `format: cloudevents-binary` (attributes in ce_*
        headers, the data as the value) cancel their orders."""
        self.create_topic(1)
        self.migrate()
        self.shop.seed(orders=2)
        consumer = self.start_consumer()
        messages = []
        for o in (1, 2):
            ev = make_event(o)
            headers = [("ce_" + k, ev[k].encode()) for k in
                       ("specversion", "id", "source", "type", "time", "subject")]
            messages.append({"key": str(o).encode(), "value": json.dumps(ev["data"]).encode(),
                             "headers": headers + [("content-type", b"application/json")]})
        produce(self.kafka.bootstrap, self.topic, messages)
        self.wait_processed(2, [consumer])
        self.assertEqual(self.shop.cancelled(), {1, 2})
        self.assert_stock_balances()
        self.assertEqual(self.stop_consumer(consumer)["cancelled"], 2)

    # -- schema ------------------------------------------------------------------------

    def test_migrate_twice_changes_nothing(self):
        self.migrate()
        self.shop.seed(orders=3)
        before = (self.shop.statuses(), self.shop.stock())
        self.migrate()
        self.assertEqual((self.shop.statuses(), self.shop.stock()), before)
        self.assertEqual(self.shop.sql("SELECT version FROM schema_migrations"), [(1,)])


@unittest.skipUnless(os.path.exists(ORDER_CONSUMER),
                     "order-consumer not built (EB_BUILD_EXAMPLES=OFF?)")
class CConsumerTest(ConsumerContract, unittest.TestCase):
    """The C consumer, examples/order-consumer."""

    def consumer_argv(self, args):
        return [ORDER_CONSUMER] + list(args)

    def test_help_documents_every_flag_and_environment_variable(self):
        self.check_help_documents_every_flag(timeout=10)

    def test_bad_command_line_exits_2(self):
        self.check_bad_command_lines_exit_2(
            (["--no-such-flag"], ["-X", "novalue"], ["--commit-interval-ms", "0"]), timeout=10)

    def test_demo_sql_reports_paid_orders_kept_and_stock_balanced(self):
        # The README demo's pieces: seed, pay 2 and 5, the other timers fire.
        demo = os.path.join(SOURCE_DIR, "examples", "order-consumer", "demo")
        self.create_topic(1)
        self.migrate()
        self.pg.psql(self.shop.dbname, file=os.path.join(demo, "seed.sql"))
        self.pg.psql(self.shop.dbname, file=os.path.join(demo, "pay.sql"), variables={"ids": "2,5"})
        self.assertEqual({o for o, s in self.shop.statuses().items() if s == "paid"}, {2, 5})
        consumer = self.start_consumer()
        produce(self.kafka.bootstrap, self.topic, [event_message(make_event(o))
                                                   for o in (1, 3, 4, 6)])
        self.wait_processed(4, [consumer])

        report = self.pg.psql(self.shop.dbname, file=os.path.join(demo, "report.sql")).stdout
        self.assertEqual(self.shop.statuses(), {1: "cancelled", 2: "paid", 3: "cancelled",
                                                4: "cancelled", 5: "paid", 6: "cancelled"})
        self.assertNotIn("MISMATCH", report)
        self.assertEqual(report.count("| ok"), 3, report)  # one per product
        self.assertEqual(report.count("stock returned"), 4, report)

    def test_flags_win_over_environment(self):
        self.create_topic(1)
        self.migrate()
        self.shop.seed(orders=1)
        env = {"ORDER_CONSUMER_BROKERS": "127.0.0.1:1", "ORDER_CONSUMER_TOPICS": "wrong-topic",
               "ORDER_CONSUMER_GROUP": "wrong-group"}
        # start_consumer passes -b/-t/-g/-d flags; the environment says otherwise.
        consumer = self.start_consumer(env=env)
        produce(self.kafka.bootstrap, self.topic, [event_message(make_event(1))])
        self.wait_processed(1, [consumer])
        self.assertIsNotNone(consumer.find_log(
            lambda e: e.get("msg") == "started" and e.get("topics") == [self.topic]
            and e.get("group") == self.group))

    def test_database_from_environment_when_no_flag(self):
        self.create_topic(1)
        self.migrate()
        self.shop.seed(orders=1)
        argv = [ORDER_CONSUMER, "-b", self.kafka.bootstrap, "-g", self.group, "-t", self.topic]
        for k, v in KAFKA_TEST_PROPS.items():
            argv += ["-X", "%s=%s" % (k, v)]
        consumer = ConsumerProcess(argv, env={"ORDER_CONSUMER_DB": self.shop.dsn}).start()
        self.addCleanup(consumer.cleanup)
        produce(self.kafka.bootstrap, self.topic, [event_message(make_event(1))])
        self.wait_processed(1, [consumer])
        self.assertEqual(self.shop.cancelled(), {1})


if __name__ == "__main__":
    unittest.main()
