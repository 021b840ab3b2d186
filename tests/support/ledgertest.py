"""ledgertest -- helpers for the deadline ledger's end-to-end tests
(tests/e2e/test_ledger_*.py), on top of ebtest's fixtures.

  arm_spread()      arm N timers through FCALL eb1_arm, deadlines spread over
                    a window, pipelined; returns key -> deadline (ms)
  arm_bulk()        the same for hundreds of thousands, through redis-cli --pipe
  KeyCounter        a Kafka consumer that only counts messages per Kafka key
                    (bursts too large to keep every message)
  peak_rss_mb()     a process's peak resident set (VmHWM)
  TimerConsumer     a Kafka consumer that keeps every message with its
                    producer timestamp, and counts per timer key
  Tally             expected vs delivered, duplicates, lateness quantiles;
                    prints the RESULT line the issue asks for
  ledger_config()   a bridge config with one ledgered route and fast sweeps
  ledger_route()    one ledgered route of a config; orders_and_carts() two
  scrape_metric()   one sample from /metrics
  wait_ledger_ready()  until a started bridge's ledger and source are both up
  LedgerTopologyCase  mixin for the Cluster and Sentinel ledger tests: the
                    mock Kafka, the bridge (HTTP on), a TimerConsumer of
                    routes orders and carts, /readyz, /metrics, the judging

Every process is an ebtest fixture: stopped by PID on every exit path.
"""

import json
import os
import sys
import time
import uuid
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(__file__))
from ebtest import (Bridge, Consumer, MockKafka, bridge_config, free_port,  # noqa: E402
                    wait_for, wait_ready)

LEDGER_PREFIX = "expiry-bridge:ledger:"


def _sanitized():
    """True when the bridge under test was built with EB_SANITIZE (its
    memory figures then measure ASan, not the bridge)."""
    try:
        with open(os.path.join(os.environ.get("EB_BUILD_DIR", ""), "CMakeCache.txt")) as f:
            for line in f:
                if line.startswith("EB_SANITIZE:"):
                    return line.split("=", 1)[1].strip() != ""
    except OSError:
        pass
    return False


SANITIZED = _sanitized()


def ledger_key(route):
    return "%s{%s}" % (LEDGER_PREFIX, route)


# A ledger section for tests: sweeps and claims fast enough that a crashed
# bridge's claims run out within a test's patience.
FAST_LEDGER = """ledger:
  sweep_interval: 500ms
  sweep_grace: 100ms
  claim_ttl: 2s
  remember_delivered: 60s
"""

CLIENT = "{ linger.ms: 1, reconnect.backoff.max.ms: 1000, message.timeout.ms: 0 }"


def wait_ledger_ready(bridge, timeout=20):
    """Until the started bridge's ledger has loaded its function library
    and its source is subscribed: from then on nothing armed goes unseen.
    Returns the bridge."""
    bridge.wait_log(lambda e: e.get("msg") == "ledger: connected, function library loaded",
                    timeout, what="ledger ready")
    bridge.wait_log(lambda e: e.get("msg") == "redis source state" and e.get("to") == "subscribed",
                    timeout, what="subscribed")
    return bridge


def ledger_route(name, match, mode="armed", topic=None):
    """One route of a config's routes: list, ledgered (`mode`), to the topic
    named after it unless told."""
    return '  - name: %s\n    match: "%s"\n    topic: %s\n    ledger: %s\n' % (
        name, match, topic or name, mode)


# Orders spread over `ledger.buckets` ledgers (Cluster: over the masters):
# timer i of bucket b is order:{orders:<b>}:<i>, in ledger bucket_ledger(b),
# as bench_ledger_load --buckets arms them.
BUCKETED_ORDERS = "order:{{orders:{bucket}}}:{id}"


def bucket_ledger(b):
    return ledger_key("orders:%d" % b)


# The Cluster and Sentinel tests' two routes: `orders` armed by the
# application (keys order_match), `carts` plain keys the bridge records.
def orders_and_carts(order_match):
    return ledger_route("orders", order_match) + ledger_route("carts", "cart:{id}", "observed")


def ledger_config(redis_port, brokers, route="orders", match="order:{id}", topic="orders",
                  mode="armed", payload=None, extra="", ledger=FAST_LEDGER, stats="1s",
                  queue=""):
    routes = ledger_route(route, match, mode, topic)
    if payload:
        routes += '    payload: "%s"\n' % payload
    return bridge_config(redis_port, brokers, routes, extra=ledger + extra, stats=stats,
                         client=CLIENT, queue=queue)


def arm_spread(client, n, first_s, span_s, key_fmt="order:%d", route="orders", payload=None,
               start=0):
    """Arm n timers (keys key_fmt % i for i in start..start+n-1) whose
    deadlines spread evenly from now+first_s to now+first_s+span_s.
    payload(i) -> bytes/str or None writes a companion key `<key>:payload`
    in the same FCALL. Returns {key: deadline_ms}."""
    lk = ledger_key(route)
    out = {}
    pipe = client.pipeline(transaction=False)
    keys = []
    for j in range(n):
        i = start + j
        key = key_fmt % i
        ttl = int((first_s + span_s * j / max(n - 1, 1)) * 1000)
        p = payload(i) if payload else None
        if p is None:
            pipe.fcall("eb1_arm", 2, key, lk, ttl)
        else:
            pipe.fcall("eb1_arm", 3, key, lk, key + ":payload", ttl, "pending", p)
        keys.append(key)
        if len(keys) % 1000 == 0:
            for k, d in zip(keys[-1000:], pipe.execute()):
                out[k] = d
    rest = len(keys) % 1000
    if rest:
        for k, d in zip(keys[-rest:], pipe.execute()):
            out[k] = d
    return out


def arm_bulk(port, n, first_ms, span_ms, key_fmt="order:%d", route="orders", tmpdir=None):
    """Arm n timers (keys key_fmt % i) with FCALL eb1_arm, TTLs spread from
    first_ms to first_ms + span_ms, written as RESP and sent with
    `redis-cli --pipe` (a redis-py pipeline arms ~20k/s; this ~200k/s).
    Returns how many Redis answered without error."""
    import subprocess
    import tempfile
    lk = ledger_key(route).encode()

    def bulk(b):
        return b"$%d\r\n%s\r\n" % (len(b), b)
    head = b"*6\r\n" + bulk(b"FCALL") + bulk(b"eb1_arm") + bulk(b"2")
    tail = bulk(lk)
    with tempfile.NamedTemporaryFile(dir=tmpdir, suffix=".resp") as f:
        for i in range(n):
            ttl = first_ms + (span_ms * i // max(n - 1, 1))
            f.write(head + bulk((key_fmt % i).encode()) + tail + bulk(str(ttl).encode()))
        f.flush()
        f.seek(0)
        out = subprocess.run(["redis-cli", "-p", str(port), "--pipe"], stdin=f,
                             capture_output=True, text=True, timeout=300)
    # "errors: 0, replies: 600000"
    import re
    m = re.search(r"errors: (\d+), replies: (\d+)", out.stdout)
    if out.returncode != 0 or not m:
        raise AssertionError("redis-cli --pipe failed: %s %s" % (out.stdout, out.stderr))
    return int(m.group(2)) - int(m.group(1))


class KeyCounter(Consumer):
    """ebtest's Consumer that keeps no message: it counts them per Kafka key
    (the route's default key is the timer key) and per data.delivery, so a
    burst of hundreds of thousands fits in a test's memory."""

    def __init__(self, bootstrap, topics):
        super().__init__(bootstrap, topics, group="keycounter-" + uuid.uuid4().hex[:8])
        self.counts = {}
        self.total = 0

    def poll_once(self, timeout=0.2):
        batch = self.consumer.consume(5000, timeout)
        n = 0
        for m in batch:
            if m.error():
                continue
            k = m.key()
            self.counts[k] = self.counts.get(k, 0) + 1
            n += 1
        self.total += n
        return n

    def until(self, cond, timeout, what):
        wait_for(lambda: self.poll_once(0.1) >= 0 and cond(), timeout, interval=0, what=what)


def peak_rss_mb(pid):
    """The process's peak resident set so far (VmHWM), in MiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    raise AssertionError("no VmHWM for pid %d" % pid)


def deadline_ms(text):
    """'2026-11-24T03:39:59.998Z' -> ms since the epoch."""
    dt = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    return int(round(dt.timestamp() * 1000))


class TimerConsumer(Consumer):
    """ebtest's Consumer, keeping every message with Kafka's timestamp (the
    producer's CreateTime: when the bridge produced it) and indexed by timer
    key. Reads in batches: the failure scenarios read 10,000 at once."""

    def __init__(self, bootstrap, topics):
        super().__init__(bootstrap, topics, group="ledgertest-" + uuid.uuid4().hex[:8])
        self.messages = []  # dicts: key (timer key, str), json, data, ts_ms, value, recv_ms
        self.per_key = {}

    def poll_once(self, timeout=0.2):
        """Collect what one batch brings; returns how many messages."""
        batch = self.consumer.consume(1000, timeout)
        n = 0
        for m in batch:
            if m.error():
                continue
            ev = json.loads(m.value())
            data = ev.get("data", ev)
            key = data["key"]
            rec = {"key": key, "json": ev, "data": data, "ts_ms": m.timestamp()[1],
                   "value": m.value(), "recv_ms": int(time.time() * 1000)}
            self.messages.append(rec)
            self.per_key.setdefault(key, []).append(rec)
            n += 1
        return n

    def collect_keys(self, keys, timeout):
        """Poll until every key in keys was delivered at least once."""
        missing = set(keys)

        def cond():
            self.poll_once()
            missing.difference_update([k for k in list(missing) if k in self.per_key])
            return not missing
        try:
            wait_for(cond, timeout, interval=0, what="%d timers on the topic" % len(keys))
        except AssertionError as e:
            raise AssertionError("%s; %d missing, e.g. %s" % (
                e, len(missing), sorted(missing)[:5])) from None

    def drain(self, quiet=2.0):
        """Keep polling until nothing arrived for `quiet` seconds (late
        duplicates are counted too)."""
        return super().drain(quiet)


def quantile(xs, q):
    if not xs:
        return 0.0
    xs = sorted(xs)
    i = min(len(xs) - 1, max(0, int(round(q * (len(xs) - 1)))))
    return xs[i]


class Tally:
    """What reached the topic for a set of armed timers."""

    def __init__(self, name, armed, consumer):
        self.name = name
        self.expected = len(armed)
        per_key = consumer.per_key
        self.delivered = sum(1 for k in armed if k in per_key)
        self.duplicates = sum(len(per_key[k]) - 1 for k in armed if k in per_key)
        # Copies the bridge produced more than once (another claim, another
        # bridge) differ in their bytes (time, delivery); byte-identical
        # copies are the producer's retries, which the mock Kafka may
        # append twice around a broker outage.
        self.produced_twice = sum(len({m["value"] for m in per_key[k]}) - 1
                                  for k in armed if k in per_key)
        self.lateness = [per_key[k][0]["ts_ms"] - d for k, d in armed.items() if k in per_key]
        self.recovered = sum(1 for k in armed if k in per_key and
                             per_key[k][0]["data"]["delivery"] == "recovered")
        self.bad_ids = [k for k in armed if k in per_key and
                        len({m["json"]["id"] for m in per_key[k]}) != 1]
        self.bad_deadlines = [k for k, d in armed.items() if k in per_key and
                              any(deadline_ms(m["data"]["deadline"]) != d for m in per_key[k])]

    def report(self):
        line = ("RESULT %s expected=%d delivered=%d duplicates=%d produced_twice=%d "
                "recovered=%d lateness_p50_ms=%d lateness_p99_ms=%d lateness_max_ms=%d" % (
                    self.name, self.expected, self.delivered, self.duplicates,
                    self.produced_twice, self.recovered,
                    quantile(self.lateness, 0.5), quantile(self.lateness, 0.99),
                    max(self.lateness) if self.lateness else 0))
        print(line, flush=True)
        return line


def scrape_metric(port, name, **labels):
    """The sum of the series of `name` on the bridge's /metrics whose labels
    include `labels` (0 when there is none)."""
    import http.client
    import re
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode()
    finally:
        c.close()
    total = 0.0
    for line in text.splitlines():
        m = re.match(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
        if not m or m.group(1) != name:
            continue
        have = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(m.group(4))
    return total


class LedgerTopologyCase:
    """Mixin for unittest.TestCase (tests/e2e/test_ledger_cluster.py,
    test_ledger_sentinel.py): two ledgered routes, `orders` and `carts`,
    on the mock Kafka, read by a TimerConsumer; every process torn down by
    PID whatever happens. READY_TIMEOUT: how long /readyz may take."""

    READY_TIMEOUT = 30

    def start_ledger_stack(self, config_for, connected="the ledger connected"):
        """The mock Kafka, the bridge of config_for(brokers, http_port) and
        the consumer; returns once /readyz says 200 and the ledger is up."""
        self.kafka = MockKafka(3, topics=["orders:8", "carts:8"]).start()
        self.addCleanup(self.kafka.stop)
        self.http_port = free_port()
        self.bridge = Bridge(config_for(self.kafka.bootstrap, self.http_port)).start()
        self.addCleanup(self.bridge.cleanup)
        self.consumer = TimerConsumer(self.kafka.bootstrap, ["orders", "carts"])
        self.addCleanup(self.consumer.close)
        self.wait_ready()
        wait_for(lambda: self.metric("eb_ledger_connected") == 1, 20, interval=0.05,
                 what=connected)

    def wait_ready(self, what="/readyz 200"):
        wait_ready(self.http_port, self.READY_TIMEOUT, what)

    def metric(self, name, **labels):
        """scrape_metric() of the bridge; -1 while it does not listen."""
        try:
            return scrape_metric(self.http_port, name, **labels)
        except OSError:
            return -1

    def until(self, when_ms):
        """Keep reading until the wall clock reaches when_ms."""
        def cond():
            self.consumer.poll_once(0.05)
            return time.time() * 1000 >= when_ms
        wait_for(cond, (when_ms / 1000 - time.time()) + 5, interval=0, what="the mid-stream")

    def assert_tallies(self, name, orders, carts):
        """Per route: every armed timer delivered, one id across its copies,
        its deadline in every copy; prints the RESULT lines. Returns the
        Tallies."""
        tallies = []
        for route, armed in (("orders", orders), ("carts", carts)):
            t = Tally("%s_%s" % (name, route), armed, self.consumer)
            t.report()
            self.assertEqual(t.delivered, t.expected, route)
            self.assertEqual(t.bad_ids, [], "every copy of a timer carries one id")
            self.assertEqual(t.bad_deadlines, [], "every event carries its timer's deadline")
            tallies.append(t)
        return tallies
