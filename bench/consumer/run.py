#!/usr/bin/python3
"""bench/consumer/run.py -- events/s of the sample order consumer, end to end
(Kafka -> PostgreSQL committed), against the naive design, in one run.

    /usr/bin/python3 bench/consumer/run.py [--events 100000] [--runs 3] [--no-fsync]

One throwaway PostgreSQL (durable commits: fsync on, synchronous_commit on,
as in production) and one mock Kafka cluster. The same N order-timeout events
(the bridge's exact format) are produced once to a 32-partition topic; each
run starts from a fresh copy of the same database (N pending orders with
reserved stock) and a new consumer group that reads all N from the start:

  order-consumer   examples/order-consumer: one transaction per event
                   (dedup + cancel if pending + return stock), offset
                   committed only after it
  naive            bench/consumer/naive_handler.c, THE BASELINE: one
                   autocommitted UPDATE per notification, as a typical
                   Laravel listener does (no stock return, no dedup,
                   auto-committed offsets)

events/s = (N - 1) / (last - first cancelled_at): PostgreSQL's own commit
timestamps, so the group join and process start are not counted. Runs
alternate (consumer, naive, consumer, ...) so drift hits both; the report
gives every run, the medians and their ratio.

Before a number counts, the run is checked (bench/README.md, STYLE §32):
order-consumer must cancel all N orders, record N events and put back every
reserved unit (stock == its value before any order); naive must cancel all N
(its stock stays short: that is its bug, reported, not a bench failure).

Binaries: EB_ORDER_CONSUMER, EB_MOCK_KAFKA (default: build/...). The naive
handler is compiled here with cc and pkg-config (rdkafka libpq jansson).
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "support"))

from ebtest import MockKafka, stop_pid, wait_for  # noqa: E402
from pgtest import PostgresCluster  # noqa: E402

ORDER_CONSUMER = os.environ.get(
    "EB_ORDER_CONSUMER", os.path.join(SOURCE_DIR, "build", "examples", "order-consumer"))
SCHEMA = os.path.join(SOURCE_DIR, "examples", "order-consumer", "migrations", "001_schema.sql")
EVENT_SCHEMA = os.path.join(SOURCE_DIR, "docs", "event.schema.json")
TOPIC = "shop.order.payment-timeout"
PARTITIONS = 32  # the mock keeps ~5 MB per partition: 100k events are ~55 MB
PRODUCTS = 100
KAFKA_PROPS = {"session.timeout.ms": "6000", "heartbeat.interval.ms": "500"}


def build_naive(outdir):
    out = os.path.join(outdir, "naive-handler")
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "rdkafka", "libpq", "jansson"],
                           check=True, capture_output=True, text=True).stdout.split()
    subprocess.run(["cc", "-O2", "-D_GNU_SOURCE", "-o", out,
                    os.path.join(HERE, "naive_handler.c")] + flags + ["-lpthread"], check=True)
    return out


def event(order_id):
    """The bridge's structured CloudEvent for order_id's expired timer."""
    key = "laravel_cache:ORDER_CONFIRM:%d" % order_id
    return {"specversion": "1.0", "type": "redis.key.expired",
            "source": "redis://cache-0:6379/0", "id": "%032x" % order_id,
            "time": "2026-11-24T03:40:00.123456Z", "subject": key,
            "datacontenttype": "application/json",
            "data": {"event": "expired", "key": key, "db": 0, "route": "order-payment-timeout",
                     "params": {"order_id": str(order_id)}, "delivery": "live"}}


def produce_events(bootstrap, n):
    from confluent_kafka import Producer
    if os.path.exists(EVENT_SCHEMA):  # the bench feeds the published contract
        import jsonschema
        with open(EVENT_SCHEMA) as f:
            schema = json.load(f)
        for o in (1, n // 2, n):
            jsonschema.validate(event(o), schema)
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                  "linger.ms": 20, "queue.buffering.max.messages": 200000})
    failed = []
    for o in range(1, n + 1):
        p.produce(TOPIC, key=str(o), value=json.dumps(event(o)),
                  headers=[("content-type", b"application/cloudevents+json")],
                  on_delivery=lambda err, m: err and failed.append(err))
        if o % 10000 == 0:
            p.poll(0)
    if p.flush(120) or failed:
        raise SystemExit("producing the events failed: %s" % failed[:3])


def seed_template(pg, n):
    """bench_template: the schema, PRODUCTS products, n pending orders of 1-3
    lines whose quantities were taken out of stock."""
    pg.create_database("bench_template")
    pg.psql("bench_template", file=SCHEMA)
    pg.psql("bench_template", sql="""
        INSERT INTO products SELECT p, 'product ' || p FROM generate_series(1, %(p)d) p;
        INSERT INTO stock SELECT p, 1000000 FROM generate_series(1, %(p)d) p;
        INSERT INTO orders (id) SELECT o FROM generate_series(1, %(n)d) o;
        INSERT INTO order_lines (order_id, product_id, qty)
            SELECT o, 1 + (o * 7 + k * 13) %% %(p)d, 1 + (o + k) %% 5
            FROM generate_series(1, %(n)d) o, generate_series(0, 2) k
            WHERE k < 1 + o %% 3;
        UPDATE stock SET qty = stock.qty - r.qty
            FROM (SELECT product_id, sum(qty) AS qty FROM order_lines GROUP BY product_id) r
            WHERE stock.product_id = r.product_id;
        CREATE TABLE bench_stock_before_orders AS
            SELECT product_id, 1000000 AS qty FROM stock;
        """ % {"p": PRODUCTS, "n": n})
    pg.psql("bench_template", sql="VACUUM ANALYZE")


def scalar(pg, db, sql):
    conn = pg.connect(db)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchone()
    finally:
        conn.close()


def one_run(pg, kafka, design, argv_for, n, run_no):
    db = "bench_%s_%d" % (design.replace("-", "_"), run_no)
    pg.create_database(db, template="bench_template")
    argv = argv_for(pg.dsn(db), "bench-%s-%d" % (design, run_no))
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        def all_cancelled():
            if proc.poll() is not None:
                raise SystemExit("%s exited early (%s)" % (design, proc.returncode))
            return scalar(pg, db, "SELECT count(*) FROM orders WHERE status = 'cancelled'")[0] >= n
        wait_for(all_cancelled, timeout=1800, interval=0.5, what="%s to cancel %d orders" % (
            design, n))
    finally:
        rc = stop_pid(proc, signal.SIGTERM, 60)
    if rc != 0:
        raise SystemExit("%s exited with %s" % (design, rc))

    span, cancelled = scalar(pg, db, """
        SELECT extract(epoch FROM max(cancelled_at) - min(cancelled_at)), count(*)
        FROM orders WHERE status = 'cancelled'""")
    # Units put back = stock now - (stock before any order - units reserved).
    returned, reserved, products_off = scalar(pg, db, """
        SELECT (SELECT sum(qty) FROM stock) - (SELECT sum(qty) FROM bench_stock_before_orders)
                   + (SELECT sum(qty) FROM order_lines),
               (SELECT sum(qty) FROM order_lines),
               (SELECT count(*) FROM stock s JOIN bench_stock_before_orders b USING (product_id)
                 WHERE s.qty <> b.qty)""")
    processed = scalar(pg, db, "SELECT count(*) FROM processed_events")[0]
    check = {"cancelled": cancelled, "processed_events": processed,
             "units_returned": int(returned), "units_reserved": int(reserved)}
    if cancelled != n:
        raise SystemExit("%s run %d cancelled %d of %d orders" % (design, run_no, cancelled, n))
    if design == "order-consumer" and (processed != n or returned != reserved or products_off):
        raise SystemExit("order-consumer run %d is wrong: %s" % (run_no, check))
    pg.drop_database(db)
    return (n - 1) / float(span), check


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=100000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-fsync", action="store_true",
                    help="fsync=off (measures CPU and round trips, not durable commits)")
    args = ap.parse_args()
    for path in (ORDER_CONSUMER,):
        if not os.path.exists(path):
            raise SystemExit("%s not built (cmake --build build)" % path)

    tmp = tempfile.mkdtemp(prefix="bench-consumer.")
    try:
        naive = build_naive(tmp)
        with PostgresCluster(fsync=not args.no_fsync) as pg, \
                MockKafka(brokers=1, topics=["%s:%d" % (TOPIC, PARTITIONS)]) as kafka:
            t0 = time.monotonic()
            seed_template(pg, args.events)
            produce_events(kafka.bootstrap, args.events)
            print("setup: %d orders, %d events on %d partitions in %.1fs (fsync %s)" % (
                args.events, args.events, PARTITIONS, time.monotonic() - t0,
                "off" if args.no_fsync else "on"), flush=True)

            props = [x for k, v in KAFKA_PROPS.items() for x in ("-X", "%s=%s" % (k, v))]
            designs = {
                "order-consumer": lambda dsn, group: [
                    ORDER_CONSUMER, "-b", kafka.bootstrap, "-g", group, "-t", TOPIC,
                    "-d", dsn] + props,
                "naive": lambda dsn, group: [
                    naive, kafka.bootstrap, group, TOPIC, dsn] +
                    ["%s=%s" % kv for kv in KAFKA_PROPS.items()],
            }
            rates = {d: [] for d in designs}
            for r in range(1, args.runs + 1):
                for design, argv_for in designs.items():
                    rate, check = one_run(pg, kafka, design, argv_for, args.events, r)
                    rates[design].append(rate)
                    print("run %d  %-15s %8.0f events/s  %s" % (r, design, rate, check),
                          flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    med = {d: statistics.median(v) for d, v in rates.items()}
    print("\nmedian of %d runs, %d events each, end to end (Kafka -> PostgreSQL committed):" % (
        args.runs, args.events))
    print("  order-consumer  %8.0f events/s   (transaction per event: dedup, cancel, "
          "return stock; offset after commit)" % med["order-consumer"])
    print("  naive baseline  %8.0f events/s   (one autocommitted UPDATE; no stock return, "
          "no dedup)" % med["naive"])
    print("  ratio           %8.2f           (order-consumer / naive)" % (
        med["order-consumer"] / med["naive"]))


if __name__ == "__main__":
    main()
