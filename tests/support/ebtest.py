"""ebtest -- Python fixtures for expiry-bridge's integration and end-to-end tests.

Every fixture starts a real process on loopback and stops it by PID, on
every exit path (use them as context managers or register .stop with
unittest's addCleanup). Waiting is done by polling a condition with a
deadline (wait_for), never by sleeping a fixed time.

Binaries come from the environment ctest sets (see cmake/EbTest.cmake):
  EB_BIN          the expiry-bridge daemon
  EB_MOCK_KAFKA   the mock Kafka cluster (tests/support/mock_kafka.c)
  EB_SOURCE_DIR   the source tree (schemas, configs)
  EB_REDIS_SERVER the server RedisServer starts (default redis-server; the
                  `valkey` ctest label sets valkey-server or a path)
  EB_REDIS_CLI    its command-line client (default redis-cli)

Run with Debian's /usr/bin/python3, which sees python3-confluent-kafka,
python3-redis and python3-jsonschema.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

SOURCE_DIR = os.environ.get(
    "EB_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
EB_BIN = os.environ.get("EB_BIN", os.path.join(SOURCE_DIR, "build", "src", "expiry-bridge"))
EB_MOCK_KAFKA = os.environ.get(
    "EB_MOCK_KAFKA", os.path.join(SOURCE_DIR, "build", "tests", "support", "eb_mock_kafka"))
# Which server the fixtures start: Redis, or Valkey (same options, same
# protocol). tests/support/redis_fixture.c reads the same variable.
REDIS_SERVER = os.environ.get("EB_REDIS_SERVER") or "redis-server"
REDIS_CLI = os.environ.get("EB_REDIS_CLI") or "redis-cli"


class Timeout(AssertionError):
    pass


def wait_for(cond, timeout=10.0, interval=0.01, what="condition"):
    """Poll cond() until it returns something truthy; return that value.

    Raises Timeout naming `what` when the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise Timeout("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)  # poll interval, not synchronisation


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_pid(proc, sig=signal.SIGTERM, timeout=10.0):
    """Send sig to a Popen, wait, SIGKILL after timeout. Returns the exit code."""
    if proc is None or proc.poll() is not None:
        return None if proc is None else proc.returncode
    try:
        os.kill(proc.pid, sig)
    except ProcessLookupError:
        pass
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        return proc.wait()


def close_pipes(proc):
    """Close the pipes of a process that has exited (Python warns about
    each one left to the garbage collector)."""
    for f in (proc.stdin, proc.stdout, proc.stderr) if proc else ():
        if f:
            try:
                f.close()
            except OSError:
                pass


def redis_client(port, **kw):
    """A redis-py client of 127.0.0.1:port (5 s socket timeout unless told)."""
    import redis
    kw.setdefault("socket_timeout", 5)
    return redis.Redis(host="127.0.0.1", port=port, **kw)


class TempDir:
    def __init__(self, prefix="ebtest"):
        self.path = tempfile.mkdtemp(prefix=prefix + ".")

    def file(self, name, text):
        p = os.path.join(self.path, name)
        with open(p, "w") as f:
            f.write(text)
        return p

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)


class RedisServer:
    """A redis-server (or EB_REDIS_SERVER) on 127.0.0.1 in its own temp dir.

    The one server fixture: topotest.Node (cluster nodes, sentinels) is
    this with another command()."""

    LOG = "redis.log"

    def __init__(self, port=None, args=(), appendonly=False, dir_prefix="redis"):
        self.port = port or free_port()
        self.args = list(args)
        self.appendonly = appendonly
        self.dir = TempDir(dir_prefix)
        self.proc = None

    @property
    def password(self):
        """A server started with --requirepass is pinged and used with it."""
        if "--requirepass" in self.args:
            return self.args[self.args.index("--requirepass") + 1]
        return None

    def command(self):
        """The server's argv."""
        return [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "yes" if self.appendonly else "no",
                "--dir", self.dir.path, "--logfile", os.path.join(self.dir.path, self.LOG),
                "--daemonize", "no"] + self.args

    def start(self):
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        try:
            wait_for(self._ready, 10, what="%s on port %d" % (REDIS_SERVER, self.port))
        except BaseException:
            # Not ready: nobody holds this server yet to clean it up.
            self.cleanup()
            raise
        return self

    def _ready(self):
        if self.proc.poll() is not None:
            raise AssertionError("%s on port %d exited with %s; log: %s" % (
                REDIS_SERVER, self.port, self.proc.returncode, self.log_tail()))
        try:
            return self.client().ping()
        except Exception:
            return False

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def client(self, **kw):
        kw.setdefault("password", self.password)
        return redis_client(self.port, **kw)

    def log_tail(self, n=20):
        try:
            with open(os.path.join(self.dir.path, self.LOG)) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def kill(self):
        """SIGKILL: the server vanishes without closing connections cleanly."""
        stop_pid(self.proc, signal.SIGKILL)

    def stop(self):
        stop_pid(self.proc, signal.SIGTERM)

    def restart(self):
        self.kill()
        return self.start()

    def cleanup(self):
        self.stop()
        self.dir.cleanup()

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.cleanup()


class MockKafka:
    """librdkafka's mock cluster in its own process (eb_mock_kafka)."""

    def __init__(self, brokers=3, topics=(), args=()):
        self.brokers = brokers
        self.topics = list(topics)  # "name:partitions"
        self.args = list(args)      # more eb_mock_kafka options (--api-version ...)
        self.proc = None
        self.bootstrap = None

    def start(self):
        cmd = [EB_MOCK_KAFKA, "--brokers", str(self.brokers)]
        for t in self.topics:
            cmd += ["--topic", t]
        cmd += self.args
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1)
        line = self.proc.stdout.readline().strip()
        if not line.startswith("BOOTSTRAP "):
            stop_pid(self.proc, signal.SIGKILL)
            raise AssertionError("eb_mock_kafka did not start: %r" % line)
        self.bootstrap = line.split(" ", 1)[1]
        return self

    def cmd(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        if answer != "ok":
            raise AssertionError("mock kafka refused %r: %r" % (line, answer))

    def down(self, broker=None):
        self.cmd("down" if broker is None else "down %d" % broker)

    def up(self, broker=None):
        self.cmd("up" if broker is None else "up %d" % broker)

    def create_topic(self, name, partitions=4):
        self.cmd("topic %s %d" % (name, partitions))

    def ensure_topic(self, name):
        """Create name as the mock's auto-creation would, unless it exists."""
        self.cmd("ensure %s" % name)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        stop_pid(self.proc, signal.SIGTERM)
        close_pipes(self.proc)

    cleanup = stop

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()


class Bridge:
    """The expiry-bridge daemon, its JSON-lines stderr collected in .logs."""

    def __init__(self, config_text, env=None, args=None):
        self.dir = TempDir("bridge")
        self.config_path = self.dir.file("config.yaml", config_text)
        self.env = dict(os.environ)
        self.env.update(env or {})
        self.args = args
        self.proc = None
        self.logs = []
        self.raw_stderr = []
        self._lock = threading.Lock()
        self._reader = None

    def start(self):
        argv = [EB_BIN] + (self.args or ["run", "-c", self.config_path])
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env=self.env)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._lock:
                self.raw_stderr.append(line)
                try:
                    self.logs.append(json.loads(line))
                except ValueError:
                    pass

    def find_log(self, pred):
        with self._lock:
            for entry in self.logs:
                if pred(entry):
                    return entry
        return None

    def wait_log(self, pred, timeout=15, what="log line"):
        def cond():
            if self.proc.poll() is not None and not self.find_log(pred):
                raise AssertionError("bridge exited (%s) before %s; stderr:\n%s" % (
                    self.proc.returncode, what, self.stderr_tail()))
            return self.find_log(pred)
        return wait_for(cond, timeout, what=what)

    def wait_msg(self, msg, timeout=15):
        return self.wait_log(lambda e: e.get("msg") == msg, timeout, what=repr(msg))

    def stderr_tail(self, n=40):
        with self._lock:
            return "\n".join(self.raw_stderr[-n:])

    def send_signal(self, sig):
        os.kill(self.proc.pid, sig)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        rc = stop_pid(self.proc, sig, timeout)
        if self._reader:
            self._reader.join(5)
        return rc

    def wait_exit(self, timeout=30):
        rc = self.proc.wait(timeout=timeout)
        if self._reader:
            self._reader.join(5)
        return rc

    def cleanup(self):
        self.stop(signal.SIGKILL, 5)
        close_pipes(self.proc)
        self.dir.cleanup()

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.cleanup()


def run_check(config_text, env=None):
    """`expiry-bridge check -c FILE`: returns (exit code, stdout, stderr)."""
    d = TempDir("check")
    try:
        path = d.file("config.yaml", config_text)
        e = dict(os.environ)
        e.update(env or {})
        p = subprocess.run([EB_BIN, "check", "-c", path], capture_output=True, text=True,
                           env=e, timeout=30)
        return p.returncode, p.stdout, p.stderr
    finally:
        d.cleanup()


class Consumer:
    """A Kafka consumer (python3-confluent-kafka) that collects messages.

    Messages are dicts: topic, partition, offset, key (bytes), value (bytes),
    headers (list of (name, bytes)), and json (value parsed, or None)."""

    def __init__(self, bootstrap, topics, group=None, **conf):
        from confluent_kafka import Consumer as KConsumer
        c = {"bootstrap.servers": bootstrap,
             "group.id": group or "ebtest-" + uuid.uuid4().hex[:8],
             "auto.offset.reset": "earliest",
             "enable.auto.commit": False,
             "session.timeout.ms": 6000,
             "heartbeat.interval.ms": 500,
             "topic.metadata.refresh.interval.ms": 1000,
             "allow.auto.create.topics": True,
             # Tests stop brokers on purpose: keep librdkafka's own
             # connection complaints out of the test output.
             "log_level": 2}
        c.update(conf)
        self.consumer = KConsumer(c)
        self.consumer.subscribe(list(topics))
        self.messages = []
        self._seen = set()

    def poll_once(self, timeout=0.2):
        m = self.consumer.poll(timeout)
        if m is None or m.error():
            return None
        # Nothing is committed, so a rebalance (librdkafka >= 2.x rebalances
        # when a subscribed topic is created) reads a partition again from
        # the start: the same offset twice is the consumer's, not the
        # bridge's, duplicate. A message the bridge sent twice has two offsets.
        where = (m.topic(), m.partition(), m.offset())
        if where in self._seen:
            return None
        self._seen.add(where)
        value = m.value()
        try:
            parsed = json.loads(value) if value is not None else None
        except ValueError:
            parsed = None
        rec = {"topic": m.topic(), "partition": m.partition(), "offset": m.offset(),
               "key": m.key(), "value": value, "headers": list(m.headers() or []),
               "json": parsed}
        self.messages.append(rec)
        return rec

    def collect(self, n, timeout=30, what=None):
        """Poll until at least n messages in total have been collected."""
        def cond():
            self.poll_once()
            return len(self.messages) >= n
        try:
            wait_for(cond, timeout, interval=0, what=what or "%d Kafka messages" % n)
        except Timeout as e:
            raise Timeout("%s (have %d; the consumer was assigned %s)" % (
                e, len(self.messages), self.assigned())) from None
        return self.messages

    def assigned(self):
        """The partitions assigned now, as 'topic[p,...]' (a timeout says
        whether the consumer was reading the topic at all)."""
        try:
            parts = self.consumer.assignment()
        except Exception as e:  # a closed or failed consumer
            return "nothing (%s)" % e
        by_topic = {}
        for tp in parts:
            by_topic.setdefault(tp.topic, []).append(tp.partition)
        return ", ".join("%s%s" % (t, sorted(p)) for t, p in sorted(by_topic.items())) or "nothing"

    def drain(self, quiet=1.0):
        """Collect until nothing arrives for `quiet` seconds (for no-extra checks)."""
        last = time.monotonic()
        while time.monotonic() - last < quiet:
            if self.poll_once(0.1):
                last = time.monotonic()
        return self.messages

    def close(self):
        try:
            self.consumer.close()
        except Exception:
            pass

    cleanup = close


def poll_messages(consumer, n, timeout=30, what=None):
    """Poll a confluent_kafka consumer (assigned or subscribed) until n
    messages arrived, errors left out; returns them (Message objects)."""
    got = []

    def more():
        m = consumer.poll(0.2)
        if m is not None and not m.error():
            got.append(m)
        return len(got) >= n
    wait_for(more, timeout, interval=0, what=what or "%d Kafka messages" % n)
    return got


def event_schema():
    with open(os.path.join(SOURCE_DIR, "docs", "event.schema.json")) as f:
        return json.load(f)


def validate_event(ev):
    """Validate a decoded structured CloudEvent against docs/event.schema.json."""
    import jsonschema
    jsonschema.validate(ev, event_schema())


# The redis: lines every test config carries: a dead connection is noticed
# within 2 s (heartbeats every 200 ms) and retried within half a second,
# so a failure scenario takes seconds, not the defaults' tens of seconds.
FAST_REDIS = """  heartbeat_interval: 200ms
  heartbeat_timeout: 2s
  reconnect_min: 50ms
  reconnect_max: 500ms
"""


def config_yaml(url, brokers, routes, redis="", fast=FAST_REDIS, client="{ linger.ms: 1 }",
                drain=None, queue="", stats="0s", extra=""):
    """The one template of the tests' (and benches') bridge configs.

    redis: url, then the lines `redis` (databases, tls, topology_interval),
    then `fast` (FAST_REDIS; "" keeps the defaults); kafka: brokers, client,
    drain_timeout when `drain` is given, then the lines `queue`; routes;
    log: level info and stats_interval `stats`; then `extra`, whole
    top-level sections (http, ledger, coordination)."""
    return """redis:
  url: %s
%s%skafka:
  brokers: "%s"
  client: %s
%s%s
routes:
%s
log:
  level: info
  stats_interval: %s
%s
""" % (url, redis, fast, brokers, client, "  drain_timeout: %s\n" % drain if drain else "",
       queue, routes, stats, extra)


def bridge_config(redis_port, brokers, routes, extra="", databases="all", drain="10s",
                  queue="", stats="0s", client="{ linger.ms: 1 }"):
    """A bridge config for tests on one redis-server: fast reconnects and
    heartbeats, short drain."""
    return config_yaml("redis://127.0.0.1:%d" % redis_port, brokers, routes,
                       redis="  databases: %s\n" % databases, client=client, drain=drain,
                       queue=queue, stats=stats, extra=extra)


def coordination_yaml(group, session="3s", heartbeat="500ms", grace="5s"):
    """A `coordination` section (docs/ha.md), with a session short enough
    for a crash to be noticed within a test's patience."""
    return """coordination:
  enabled: true
  group: %s
  session_timeout: %s
  heartbeat_interval: %s
  handover_grace: %s
""" % (group, session, heartbeat, grace)


def is_subscribed_log(entry):
    msg = entry.get("msg", "")
    return "subscribed" in msg and "unsubscribed" not in msg


class BridgeTestCase:
    """Mixin for unittest.TestCase: a redis-server, the mock Kafka and the
    bridge, each torn down (by PID) whatever happens in the test."""

    def addCleanup(self, function, *args, **kwargs):
        """A bridge's cleanup first prints the bridge's last log lines when
        the test failed: a failure seen only in CI then says what the bridge
        was doing, not just what the test waited for."""
        owner = getattr(function, "__self__", None)
        if isinstance(owner, Bridge) and function.__name__ == "cleanup":
            inner = function

            def function(*a, **kw):
                if self._failed_so_far():
                    sys.stderr.write("---- last bridge log lines (pid %s) ----\n%s\n----\n" % (
                        owner.proc.pid if owner.proc else "-", owner.stderr_tail(60)))
                inner(*a, **kw)
        super().addCleanup(function, *args, **kwargs)

    def _failed_so_far(self):
        # Python >= 3.11 records a failure in the result as it happens,
        # before the cleanups run.
        result = getattr(getattr(self, "_outcome", None), "result", None)
        if result is None:
            return False
        return any(t is self for t, _ in list(result.failures) + list(result.errors))

    def start_redis(self, args=(), appendonly=False):
        r = RedisServer(args=args, appendonly=appendonly).start()
        self.addCleanup(r.cleanup)
        return r

    def start_kafka(self, brokers=3, topics=()):
        k = MockKafka(brokers, topics).start()
        self.addCleanup(k.stop)
        return k

    def start_bridge(self, config_text, wait=True, env=None):
        b = Bridge(config_text, env=env).start()
        self.addCleanup(b.cleanup)
        if wait:
            b.wait_log(is_subscribed_log, 20, what="bridge subscribed to Redis")
        return b

    def start_replica(self, config_for, **kw):
        """A bridge replica with its own HTTP port (bridge.http_port), its
        config config_for(http_port); not waited for (a standby subscribes
        to nothing)."""
        port = free_port()
        b = self.start_bridge(config_for(port, **kw), wait=False)
        b.http_port = port
        return b

    def consumer(self, topics, **conf):
        # A topic librdkafka's consumer sees created while it joins the
        # group may stay unassigned for minutes (librdkafka issues 3008,
        # 3615): the event the test waits for is then never read. Topics
        # exist before the consumer subscribes, as in production.
        if isinstance(self.kafka, MockKafka):
            for t in topics:
                self.kafka.ensure_topic(t)
        c = Consumer(self.kafka.bootstrap, topics, **conf)
        self.addCleanup(c.close)
        return c

    def start_stack(self, routes, redis_args=(), brokers=3, topics=(), **cfg):
        self.redis = self.start_redis(redis_args)
        self.kafka = self.start_kafka(brokers, topics)
        self.bridge = self.start_bridge(
            bridge_config(self.redis.port, self.kafka.bootstrap, routes, **cfg))
        return self.bridge


def final_stats(bridge):
    """The last 'stats' log line (the bridge writes one when it stops)."""
    with bridge._lock:
        stats = [e for e in bridge.logs if e.get("msg") == "stats"]
    return stats[-1] if stats else None


def wait_stats(bridge, pred, timeout=20, what="stats"):
    """Wait for a periodic 'stats' line satisfying pred (needs stats_interval)."""
    return bridge.wait_log(lambda e: e.get("msg") == "stats" and pred(e), timeout, what=what)


class ReferenceSubscriber:
    """An independent pub/sub client (redis-py) that records every expired
    keyevent Redis announces while it is connected: ground truth for loss
    counting."""

    def __init__(self, redis_server, pattern="__keyevent@*__:expired"):
        self.server = redis_server
        self.pattern = pattern
        self.keys = []
        self.subscriptions = 0  # psubscribe confirmations: 2 after one reconnect
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise AssertionError("reference subscriber did not subscribe")

    def _run(self):
        while not self._stop.is_set():
            try:
                ps = self.server.client(socket_timeout=None).pubsub()
                ps.psubscribe(self.pattern)
                while not self._stop.is_set():
                    m = ps.get_message(timeout=0.1)
                    if m is None:
                        continue
                    if m["type"] == "psubscribe":
                        self.subscriptions += 1
                        self._ready.set()
                    elif m["type"] == "pmessage":
                        self.keys.append(m["data"])
            except Exception:
                if self._stop.wait(0.05):
                    return

    def stop(self):
        self._stop.set()
        self._thread.join(5)


# ------------------------------------------------------------ HTTP and metrics

def http_config(port, host="127.0.0.1"):
    """The `extra` YAML for bridge_config() that turns the HTTP server on."""
    return "http:\n  listen: %s:%d\n" % (host, port)


def http_ready(port, host="127.0.0.1"):
    """True when the bridge's /readyz answers 200; False while it answers
    otherwise or does not listen (yet, or any more)."""
    try:
        return http_get(port, "/readyz", host=host)[0] == 200
    except OSError:
        return False


def wait_ready(port, timeout=30, what="/readyz 200"):
    """Poll /readyz on port until it answers 200."""
    wait_for(lambda: http_ready(port), timeout, interval=0.05, what=what)


def producing(bridge):
    """eb_redis_node_producing summed on bridge's /metrics: how many masters
    this replica produces now (0 while it does not listen yet)."""
    try:
        return scrape(bridge.http_port)[0].total("eb_redis_node_producing")
    except OSError:
        return 0


def http_get(port, path, method="GET", host="127.0.0.1", timeout=5):
    """One request to the bridge's HTTP server: (status, headers, body).

    headers is a dict with lower-case names; body is bytes."""
    import http.client
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request(method, path)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


class Metrics:
    """A Prometheus text exposition (format 0.0.4), parsed strictly.

    Raises ValueError (naming the line) on anything the format does not
    allow: a bad metric or label name, an unknown escape, a value that is
    not a Go float, a TYPE after its samples or twice, a family split into
    two groups, a duplicate series, histogram buckets that are not
    cumulative or whose +Inf bucket differs from _count. Empty lines are
    refused too (the format ignores them; the bridge never writes one)."""

    TYPES = ("counter", "gauge", "histogram", "summary", "untyped")
    _NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
    _VALUE = r"(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|NaN|[+-]Inf)\Z"

    def __init__(self, text):
        import re
        self._re = re
        self.types = {}
        self.helps = {}
        self.samples = {}  # (name, ((label, value), ...)) -> float
        self._parse(text)
        self._check_histograms()

    # -- parsing
    def _err(self, lineno, line, why):
        raise ValueError("metrics line %d: %s: %r" % (lineno, why, line))

    def _family(self, name):
        for suffix in ("_bucket", "_sum", "_count"):
            base = name[:-len(suffix)]
            if name.endswith(suffix) and self.types.get(base) in ("histogram", "summary"):
                return base
        return name

    def _parse(self, text):
        re = self._re
        if text and not text.endswith("\n"):
            raise ValueError("metrics text does not end with a newline")
        done, current, sampled = set(), None, set()
        for lineno, line in enumerate(text.split("\n")[:-1], 1):
            if line == "":
                self._err(lineno, line, "empty line")
            if line.startswith("#"):
                parts = line.split(" ", 3)
                if len(parts) < 3 or parts[1] not in ("HELP", "TYPE"):
                    continue  # a comment
                kind, name = parts[1], parts[2]
                if not re.match(self._NAME + r"\Z", name):
                    self._err(lineno, line, "bad metric name")
                rest = parts[3] if len(parts) > 3 else ""
                if kind == "TYPE":
                    if name in self.types:
                        self._err(lineno, line, "second TYPE")
                    if name in sampled:
                        self._err(lineno, line, "TYPE after samples")
                    if rest not in self.TYPES:
                        self._err(lineno, line, "unknown type")
                    self.types[name] = rest
                else:
                    if name in self.helps:
                        self._err(lineno, line, "second HELP")
                    if "\\" in re.sub(r"\\[\\n]", "", rest):
                        self._err(lineno, line, "bad escape in HELP")
                    self.helps[name] = rest.replace("\\n", "\n").replace("\\\\", "\\")
                family = name
            else:
                name, labels, value = self._sample(lineno, line)
                family = self._family(name)
                sampled.add(family)
                key = (name, tuple(sorted(labels.items())))
                if key in self.samples:
                    self._err(lineno, line, "duplicate series")
                self.samples[key] = value
            if family != current:
                if family in done:
                    self._err(lineno, line, "family %s is not one group" % family)
                if current is not None:
                    done.add(current)
                current = family

    def _sample(self, lineno, line):
        re = self._re
        m = re.match(self._NAME, line)
        if not m:
            self._err(lineno, line, "bad metric name")
        name, i, labels = m.group(0), m.end(), {}
        try:
            if line[i] == "{":
                i += 1
                while line[i] != "}":
                    lm = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="').match(line, i)
                    if not lm:
                        self._err(lineno, line, "bad label")
                    lname, i, val = lm.group(1), lm.end(), []
                    while line[i] != '"':
                        if line[i] == "\\":
                            esc = {"\\": "\\", '"': '"', "n": "\n"}.get(line[i + 1])
                            if esc is None:
                                self._err(lineno, line, "bad escape in label value")
                            val.append(esc)
                            i += 2
                        else:
                            val.append(line[i])
                            i += 1
                    i += 1
                    if lname in labels:
                        self._err(lineno, line, "duplicate label")
                    labels[lname] = "".join(val)
                    if line[i] == ",":
                        i += 1
                    elif line[i] != "}":
                        self._err(lineno, line, "expected , or }")
                i += 1
        except IndexError:
            self._err(lineno, line, "truncated")
        if line[i:i + 1] != " ":
            self._err(lineno, line, "expected a space before the value")
        rest = line[i + 1:].split(" ")
        if len(rest) not in (1, 2) or not re.match(self._VALUE, rest[0]):
            self._err(lineno, line, "bad value")
        if len(rest) == 2 and not re.match(r"-?\d+\Z", rest[1]):
            self._err(lineno, line, "bad timestamp")
        return name, labels, float(rest[0].replace("Inf", "inf"))

    def _check_histograms(self):
        for fam, t in self.types.items():
            if t != "histogram":
                continue
            groups = {}
            for (name, labels), v in self.samples.items():
                if name == fam + "_bucket":
                    d = dict(labels)
                    le = d.pop("le", None)
                    if le is None:
                        raise ValueError("%s bucket without le" % fam)
                    groups.setdefault(tuple(sorted(d.items())), []).append(
                        (float(le.replace("Inf", "inf")), v))
            for labels, buckets in groups.items():
                buckets.sort()
                counts = [c for _, c in buckets]
                if buckets[-1][0] != float("inf"):
                    raise ValueError("%s%s has no +Inf bucket" % (fam, labels))
                if counts != sorted(counts):
                    raise ValueError("%s%s buckets are not cumulative" % (fam, labels))
                if self.samples.get((fam + "_count", labels)) != counts[-1]:
                    raise ValueError("%s%s _count differs from the +Inf bucket" % (fam, labels))
                if (fam + "_sum", labels) not in self.samples:
                    raise ValueError("%s%s has no _sum" % (fam, labels))

    # -- queries
    def get(self, name, **labels):
        """The value of the series with exactly these labels, or None."""
        return self.samples.get((name, tuple(sorted(labels.items()))))

    def total(self, name, **labels):
        """Sum over every series of `name` whose labels include these."""
        want = set(labels.items())
        return sum(v for (n, ls), v in self.samples.items() if n == name and want <= set(ls))


def scrape(port, host="127.0.0.1"):
    """GET /metrics: (Metrics, headers). Fails the test on a non-200."""
    status, headers, body = http_get(port, "/metrics", host=host)
    if status != 200:
        raise AssertionError("/metrics answered %d: %r" % (status, body[:200]))
    return Metrics(body.decode("utf-8")), headers
