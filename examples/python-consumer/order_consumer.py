#!/usr/bin/python3
"""order_consumer.py -- the order-timeout consumer in Python: when
expiry-bridge reports that an order's payment timer expired, cancel the order
if it is still unpaid and return its stock, in PostgreSQL.

The same program as the C consumer (../order-consumer), with the same schema
(../order-consumer/migrations/001_schema.sql), flags, environment variables,
log lines and guarantees -- proof that the event contract is language-neutral:

  * each message is decoded by the official CloudEvents SDK's Kafka binding
    (PyPI `cloudevents` 2.x, cloudevents.core.bindings.kafka), so structured
    (the bridge's default) and binary (`format: cloudevents-binary`) events
    are both read; what the SDK cannot read is a malformed message;
  * one PostgreSQL transaction per event: record the event id, cancel the
    order only if still pending, return each line's qty to stock;
  * the Kafka offset is stored only after that transaction committed, and
    committed every second, on partition revoke and before exit
    (enable.auto.commit=false, enable.auto.offset.store=false);
  * duplicates and `recovered` copies change nothing twice (the event id is
    the dedup key); an event for a paid order changes nothing;
  * a malformed message goes to <topic>.dlq with the reason in an `error`
    header, and processing goes on;
  * a database error is retried with capped backoff, never skipped; SIGTERM
    during the retries exits without committing that message.

Dependencies: Debian's python3-confluent-kafka and python3-psycopg2, and
PyPI's cloudevents (tests/sdk/python/requirements.txt pins it; e.g.
`pip install --target DIR -r ...` and PYTHONPATH=DIR, which is what the
tests do with scripts/fetch-sdks.sh). Run with /usr/bin/python3 (another
python3 on PATH may not see the Debian packages).
"""

import argparse
import datetime
import json
import os
import random
import signal
import sys
import threading
import time

import psycopg2
from cloudevents.core.bindings.kafka import KafkaMessage, from_kafka_event
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer

SCHEMA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "order-consumer",
                      "migrations", "001_schema.sql")

EVENT_TYPE = "redis.key.expired"
EVENT_ID_MAX = 200   # bytes; far below PostgreSQL's index key limit
DELIVERY_MAX = 32
RETRY_FIRST, RETRY_MAX = 0.1, 5.0  # seconds

# One statement = one transaction (see ../order-consumer/db.c for each step).
APPLY_EVENT_SQL = """
WITH recorded AS (              -- 1. remember the event id; a duplicate inserts nothing
    INSERT INTO processed_events
        (event_id, order_id, delivery, kafka_topic, kafka_partition, kafka_offset)
    VALUES (%(id)s, %(order_id)s, %(delivery)s, %(topic)s, %(partition)s, %(offset)s)
    ON CONFLICT (event_id) DO NOTHING
    RETURNING order_id
), cancelled AS (               -- 2. cancel the order only if it is still pending
    UPDATE orders SET status = 'cancelled', cancelled_at = now(), cancelled_by = %(id)s
    WHERE id = (SELECT order_id FROM recorded) AND status = 'pending'
    RETURNING id
), returned AS (                -- 3. put each line's quantity back into stock
    UPDATE stock SET qty = stock.qty + l.qty
    FROM order_lines l
    WHERE l.order_id = (SELECT id FROM cancelled) AND stock.product_id = l.product_id
    RETURNING l.product_id
)
SELECT (SELECT count(*) FROM recorded), (SELECT count(*) FROM cancelled),
       (SELECT count(*) FROM returned), (SELECT status FROM orders WHERE id = %(order_id)s)
"""

stop = threading.Event()  # set by SIGTERM/SIGINT
verbose = False


def log(level, msg, **fields):
    """One JSON object per line on stderr, the C consumer's shape."""
    if level == "debug" and not verbose:
        return
    ts = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    print(json.dumps({"ts": ts, "level": level, "msg": msg, **fields}, separators=(",", ":")),
          file=sys.stderr, flush=True)


# ---- the event -------------------------------------------------------------

class Malformed(Exception):
    """The message cannot be an order-timeout event; str() says why."""


def text(obj, key, path, max_len):
    """obj[key] as a string PostgreSQL can store: 1..max_len UTF-8 bytes, no NUL."""
    if key not in obj:
        raise Malformed("%s: missing" % path)
    v = obj[key]
    if not isinstance(v, str):
        raise Malformed("%s: expected a string, got %s" % (path, type(v).__name__))
    try:
        n = len(v.encode("utf-8"))
    except UnicodeEncodeError:
        raise Malformed("%s: not valid UTF-8" % path)
    if not 1 <= n <= max_len or "\0" in v:
        raise Malformed("%s: expected 1 to %d bytes without NUL, got %d" % (path, max_len, n))
    return v


def child(obj, key, path):
    if key not in obj:
        raise Malformed("%s: missing" % path)
    if not isinstance(obj[key], dict):
        raise Malformed("%s: expected an object, got %s" % (path, type(obj[key]).__name__))
    return obj[key]


def why_not_a_cloudevent(value, err):
    """A reason for a value the SDK could not read, in the C consumer's words
    where they apply."""
    try:
        doc = json.loads(value)
    except (ValueError, UnicodeDecodeError) as e:
        return "not JSON: %s" % e
    if not isinstance(doc, dict):
        return "expected a JSON object, got %s" % type(doc).__name__
    return "not a CloudEvent: %s" % err


def parse_event(msg):
    """The checked fields of a CloudEvent, or Malformed. The SDK reads the
    message (both content modes); every check the database would make is
    made here, so no event can fail there forever."""
    value = msg.value()
    if not value:
        raise Malformed("empty message: no value")
    headers = {name: v for name, v in (msg.headers() or []) if v is not None}
    try:
        # key=None: the binding would turn the Kafka key into the
        # `partitionkey` extension, decoding it as UTF-8, which raises for a
        # key that is not (Redis keys are bytes; docs/event.md).
        ev = from_kafka_event(KafkaMessage(headers=headers, key=None, value=value))
    except Exception as e:  # the SDK raises ValueError, its own errors, ...
        raise Malformed(why_not_a_cloudevent(value, e))
    attrs = ev.get_attributes()
    if text(attrs, "specversion", "specversion", 16) != "1.0":
        raise Malformed('specversion: expected "1.0", got "%s"' % attrs["specversion"])
    if text(attrs, "type", "type", 256) != EVENT_TYPE:
        raise Malformed('type: expected "%s", got "%s"' % (EVENT_TYPE, attrs["type"][:100]))
    data = child({"data": ev.get_data()}, "data", "data")
    params = child(data, "params", "data.params")
    encoded = data.get("params_base64")
    if isinstance(encoded, dict) and "order_id" in encoded:  # not UTF-8 (docs/event.md)
        raise Malformed("data.params.order_id: not UTF-8 (see data.params_base64)")
    order_id = text(params, "order_id", "data.params.order_id", 64)
    if not (order_id.isascii() and order_id.isdigit() and len(order_id) <= 18
            and order_id[0] != "0"):
        raise Malformed("data.params.order_id: expected a positive integer of at most 18 "
                        'digits, got "%s"' % order_id)
    return {"id": text(attrs, "id", "id", EVENT_ID_MAX), "order_id": int(order_id),
            "delivery": text(data, "delivery", "data.delivery", DELIVERY_MAX)}


# ---- PostgreSQL ------------------------------------------------------------

class Database:
    """One connection, opened lazily and again after it was lost."""

    def __init__(self, dsn):
        self.dsn = dsn
        self.conn = None

    def connect(self):
        if self.conn is None or self.conn.closed:
            self.conn = psycopg2.connect(self.dsn, connect_timeout=10,
                                         application_name="order-consumer-py")
            self.conn.autocommit = True  # one statement = one transaction
        return self.conn

    def migrate(self):
        with open(SCHEMA) as f, self.connect().cursor() as cur:
            cur.execute(f.read())

    def apply(self, ev, msg):
        """Apply one event; returns (outcome, lines returned). Raises
        psycopg2.Error on any failure, after which a retry is always safe."""
        try:
            with self.connect().cursor() as cur:
                cur.execute(APPLY_EVENT_SQL, dict(ev, topic=msg.topic(),
                                                  partition=msg.partition(),
                                                  offset=msg.offset()))
                recorded, cancelled, lines, status_before = cur.fetchone()
        except psycopg2.Error:
            if self.conn is not None and self.conn.closed:
                self.conn = None
            raise
        if not recorded:
            return "duplicate", 0
        if cancelled:
            return "cancelled", lines
        return ("not_pending" if status_before else "unknown_order"), 0


# ---- the loop --------------------------------------------------------------

def retry_delays():
    """Capped exponential backoff with jitter, as the C consumer."""
    d = RETRY_FIRST
    while True:
        yield random.uniform(d / 2, d)
        d = min(d * 2, RETRY_MAX)


db_commits = 0


def fault_after_db_commit():
    """TEST-ONLY: EB_CONSUMER_FAULT=crash-after-db-commit:N kills the process
    after the N-th database commit, before its offset is stored
    (tests/e2e/test_consumer_python.py). Never set it in production."""
    global db_commits
    spec = os.environ.get("EB_CONSUMER_FAULT", "")
    if spec.startswith("crash-after-db-commit:"):
        db_commits += 1
        if db_commits == int(spec.split(":", 1)[1]):
            os.kill(os.getpid(), signal.SIGKILL)


class KafkaLog:
    """librdkafka's log lines, as ours (the client calls .log(level, fmt, fac, name, text))."""

    def __init__(self, client):
        self.client = client

    def log(self, level, fmt, facility, name, detail):
        # -X properties go to both clients; a consumer property that means
        # nothing to the producer is expected, not a warning.
        quiet = facility == "CONFWARN" and self.client == "producer"
        log("debug" if quiet or level < 30 else "warn" if level < 40 else "error",
            "librdkafka", client=name, facility=facility, detail=detail)


class OrderConsumer:
    def __init__(self, args):
        self.db = Database(args.db)
        self.commit_interval = args.commit_interval_ms / 1000.0
        self.last_commit = time.monotonic()
        self.stats = dict.fromkeys(("events", "cancelled", "not_pending", "unknown_order",
                                    "duplicates", "dead_letters", "retries"), 0)
        props = dict(kv.split("=", 1) for kv in args.X)
        # A new group starts at the oldest event; -X may change that, not the
        # settings after it, on which the guarantees rest.
        self.consumer = Consumer({"auto.offset.reset": "earliest", **props,
                                  "bootstrap.servers": args.brokers, "group.id": args.group,
                                  "enable.auto.commit": False,
                                  "enable.auto.offset.store": False,
                                  "on_commit": self.on_commit, "logger": KafkaLog("consumer")})
        # Idempotence implies acks=all: acknowledged means every in-sync replica has it.
        self.dlq = Producer({**props, "bootstrap.servers": args.brokers,
                             "enable.idempotence": True, "message.timeout.ms": 5000,
                             "logger": KafkaLog("producer")})
        self.consumer.subscribe(args.topics, on_assign=self.on_assign, on_revoke=self.on_revoke)

    # Offsets ------------------------------------------------------------------

    def commit(self, asynchronous):
        """Commit the stored offsets (those of fully handled messages)."""
        self.last_commit = time.monotonic()
        try:
            self.consumer.commit(asynchronous=asynchronous)
        except KafkaException as e:
            if e.args[0].code() != KafkaError._NO_OFFSET:
                log("warn", "offset commit failed", error=str(e.args[0]))

    def on_commit(self, err, partitions):
        if err and err.code() != KafkaError._NO_OFFSET:
            log("warn", "offset commit failed", error=str(err))

    def on_assign(self, consumer, partitions):
        log("info", "partitions assigned",
            partitions=["%s[%d]" % (p.topic, p.partition) for p in partitions])

    def on_revoke(self, consumer, partitions):
        log("info", "partitions revoked",
            partitions=["%s[%d]" % (p.topic, p.partition) for p in partitions])
        self.commit(asynchronous=False)  # what is done, before another member takes over

    # One message ----------------------------------------------------------------

    def retry(self, attempt, what):
        """Call attempt() until it returns without raising; False if stopped first."""
        for n, delay in enumerate(retry_delays(), 1):
            try:
                attempt()
                return True
            except (psycopg2.Error, KafkaException) as e:
                self.stats["retries"] += 1
                log("warn", what, error=str(e).strip(), attempt=n, retry_in_ms=int(delay * 1000))
                if stop.wait(delay):
                    return False

    def apply_event(self, ev, msg):
        result = []
        if not self.retry(lambda: result.append(self.db.apply(ev, msg)),
                          "database error, will retry"):
            return False
        fault_after_db_commit()
        outcome, lines = result[0]
        self.stats["events"] += 1
        self.stats["duplicates" if outcome == "duplicate" else outcome] += 1
        log("warn" if outcome == "unknown_order" else "debug", "event applied",
            event_id=ev["id"], order_id=ev["order_id"], delivery=ev["delivery"],
            outcome=outcome, lines_returned=lines)
        return True

    def dead_letter(self, msg, reason):
        log("warn", "malformed event: sending it to the dead-letter topic", error=reason,
            topic=msg.topic(), partition=msg.partition(), offset=msg.offset())
        headers = list(msg.headers() or []) + [
            ("error", reason), ("original.topic", msg.topic()),
            ("original.partition", str(msg.partition())), ("original.offset", str(msg.offset()))]

        def send():
            report = []
            self.dlq.produce(msg.topic() + ".dlq", key=msg.key(), value=msg.value(),
                             headers=headers, on_delivery=lambda err, m: report.append(err))
            self.dlq.flush(10)
            if not report or report[0] is not None:
                raise KafkaException(report[0] if report else KafkaError(KafkaError._TIMED_OUT))
        if not self.retry(send, "dead letter not delivered, will retry"):
            return False
        self.stats["dead_letters"] += 1
        return True

    def handle(self, msg):
        """Handle one message to the end, then store its offset. False if a
        stop interrupted it: its offset stays uncommitted."""
        try:
            done = self.apply_event(parse_event(msg), msg)
        except Malformed as e:
            done = self.dead_letter(msg, str(e))
        if done:
            try:
                self.consumer.store_offsets(message=msg)
            except KafkaException as e:  # revoked meanwhile: its new owner re-reads it
                log("warn", "offset not stored", error=str(e.args[0]), topic=msg.topic(),
                    partition=msg.partition(), offset=msg.offset())
        return done

    def run(self):
        while not stop.is_set():
            msg = self.consumer.poll(0.1)
            if time.monotonic() - self.last_commit >= self.commit_interval:
                self.commit(asynchronous=True)
            if msg is None:
                continue
            if msg.error():
                if msg.error().fatal():
                    log("error", "kafka fatal error", error=str(msg.error()))
                    return 1
                log("warn", "kafka error", error=str(msg.error()), topic=msg.topic() or "")
                continue
            if not self.handle(msg):
                log("info", "left unprocessed: its offset is not committed, it will be read again",
                    topic=msg.topic(), partition=msg.partition(), offset=msg.offset())
                break
        return 0

    def close(self):
        self.commit(asynchronous=False)
        self.consumer.close()  # serves the final revoke, leaves the group
        self.dlq.flush(10)


def parse_args(argv):
    env = os.environ.get
    p = argparse.ArgumentParser(
        description="Cancel unpaid orders when their payment timer expires (expiry-bridge "
                    "events), return their stock. A flag wins over its environment variable.")
    p.add_argument("-b", "--brokers", default=env("ORDER_CONSUMER_BROKERS") or "localhost:9092",
                   help="Kafka bootstrap servers (ORDER_CONSUMER_BROKERS)")
    p.add_argument("-g", "--group", default=env("ORDER_CONSUMER_GROUP") or "order-consumer",
                   help="consumer group (ORDER_CONSUMER_GROUP)")
    p.add_argument("-t", "--topic", action="append", default=[],
                   help="topics, comma-separated, repeatable (ORDER_CONSUMER_TOPICS)")
    p.add_argument("-d", "--db", default=env("ORDER_CONSUMER_DB") or "",
                   help="PostgreSQL conninfo or URI (ORDER_CONSUMER_DB; default: PG* env)")
    p.add_argument("-X", action="append", default=[], metavar="KEY=VALUE",
                   help="librdkafka property for the consumer and the dead-letter producer")
    p.add_argument("--commit-interval-ms", type=int, default=1000)
    p.add_argument("--migrate", action="store_true", help="apply the schema and exit")
    p.add_argument("-v", "--verbose", action="store_true", help="log every event")
    args = p.parse_args(argv)
    topics = ",".join(args.topic) or env("ORDER_CONSUMER_TOPICS") or "shop.order.payment-timeout"
    args.topics = [t for t in topics.split(",") if t]
    if any("=" not in kv for kv in args.X):
        p.error("-X expects KEY=VALUE")
    return args


def main(argv):
    global verbose
    args = parse_args(argv)
    verbose = args.verbose
    if args.migrate:
        try:
            Database(args.db).migrate()
        except psycopg2.Error as e:
            log("error", "migration failed", error=str(e).strip())
            return 1
        log("info", "schema is up to date")
        return 0

    def on_signal(signum, frame):
        log("info", "stopping", signal=signal.Signals(signum).name)
        stop.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    consumer = OrderConsumer(args)
    log("info", "started", brokers=args.brokers, group=args.group, topics=args.topics)
    rc = consumer.run()
    consumer.close()
    log("info", "stopped", **consumer.stats)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
