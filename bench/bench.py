#!/usr/bin/python3
"""bench.py -- expiry-bridge benchmark driver (bench/run.sh calls it; see
bench/README.md for what each scenario measures and bench/BASELINES.md for
why its references are the right ones).

Every number is paired with a check that what was measured was correct
(counts of keys received, delivered, dropped); a failed check stops the run
with exit code 1. Targets missed are reported, not hidden: exit code 2.

Processes (redis-server, the mock Kafka, the bridge, the bench tools) are
started here, registered in $BENCH_PIDFILE (pid and start time, so run.sh's
trap can stop exactly them if this script dies) and stopped by PID on every
exit path.
"""
import argparse
import datetime
import json
import os
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

PREFIX = "laravel_cache:ORDER_CONFIRM:"
PATTERN = "__keyevent@*__:expired"  # what the bridge subscribes with `databases: all`
CHANNEL = "__keyevent@0__:expired"
TOPIC = "bench.orders"
REF_TOPIC = "bench.ref"
NAIVE_TOPIC = "bench.naive"
PARTITIONS = 32  # the mock trims each partition at ~5 MB: spread the flood
REAL_KAFKA_HELPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                 "support", "kafka_cluster.py")
WARMUP = 10
# kafka_sink.c's linger.ms default; the references at a steady rate and
# under callgrind produce with it (librdkafka's own default is 5).
BRIDGE_LINGER_MS = "1"
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """A correctness check failed: the numbers of this run mean nothing."""


def check(cond, msg):
    if not cond:
        raise BenchError(msg)


def log(msg):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond, timeout, what, interval=0.01):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise BenchError("timed out after %.0fs waiting for %s" % (timeout, what))
        time.sleep(interval)  # poll interval, not synchronisation


# ------------------------------------------------------------------ /proc

def proc_stat(pid):
    """(utime+stime seconds over every thread, starttime ticks) of pid."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state): utime=14, stime=15, starttime=22
    return (int(fields[11]) + int(fields[12])) / CLK_TCK, int(fields[19])


def cpu_s(pid):
    return proc_stat(pid)[0]


def thread_cpu_s(pid):
    """(main thread, every other thread) CPU seconds of pid: the bridge's
    loop thread vs librdkafka's threads."""
    main = other = 0.0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # a thread that just ended
        t = (int(fields[11]) + int(fields[12])) / CLK_TCK
        if int(tid) == pid:
            main = t
        else:
            other += t
    return main, other


def machine_busy_s():
    """CPU seconds the whole machine spent busy so far (every core; steal
    counted as busy: on a VM it is time we did not get)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = v
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


QUIET = {"budget_s": 150.0, "waited_s": 0.0, "busy_phases": 0}


def quiesce(max_wait_s=20.0, window_s=0.5, max_busy_cores=0.25):
    """Wait (bounded: 20 s per phase, QUIET budget per run) until the rest
    of the machine is quiet: other engineers share it, and a compile job
    during a measured phase moves every number. Returns the background load
    seen last, in cores; phases measured on a busy machine are counted."""
    t_start = time.monotonic()
    left = max(0.0, QUIET["budget_s"] - QUIET["waited_s"])
    deadline = t_start + min(max_wait_s, left)
    while True:
        b0, t0 = machine_busy_s(), time.monotonic()
        time.sleep(window_s)  # measuring the load, not synchronising
        load = (machine_busy_s() - b0) / (time.monotonic() - t0)
        if load <= max_busy_cores or time.monotonic() >= deadline:
            QUIET["waited_s"] += time.monotonic() - t_start
            if load > max_busy_cores:
                QUIET["busy_phases"] += 1
                log("machine busy (%.2f cores used by others); measuring anyway" % load)
            return load


def rss_kb(pid):
    """{'VmRSS': kB, 'VmHWM': kB} of pid."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                k, v = line.split(":", 1)
                out[k] = int(v.split()[0])
    return out


# -------------------------------------------------------------- processes

class Procs:
    """Every child process, registered for run.sh's trap, stopped by PID."""

    def __init__(self, pidfile):
        self.pidfile = pidfile
        self.live = []

    def start(self, argv, **kw):
        p = subprocess.Popen(argv, **kw)
        self.live.append(p)
        if self.pidfile:
            try:
                start = proc_stat(p.pid)[1]
            except OSError:
                start = 0
            with open(self.pidfile, "a") as f:
                f.write("%d %d\n" % (p.pid, start))
        return p

    def stop(self, p, sig=signal.SIGTERM, timeout=30):
        if p is None:
            return None
        if p.poll() is None:
            try:
                p.send_signal(sig)
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p in self.live:
            self.live.remove(p)
        return p.returncode

    def stop_all(self):
        for p in list(reversed(self.live)):
            self.stop(p, signal.SIGTERM, 5)


class Redis:
    def __init__(self, procs, workdir):
        self.procs = procs
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="redis.", dir=workdir)
        self.logfile = os.path.join(self.dir, "redis.log")
        self.proc = procs.start(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--logfile", self.logfile,
             "--daemonize", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis
        self.r = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=30)

        def ready():
            check(self.proc.poll() is None, "redis-server exited: %s" % self.log_tail())
            try:
                return self.r.ping()
            except Exception:
                return False
        wait_for(ready, 10, "redis-server on port %d" % self.port)

    def log_tail(self, n=10):
        try:
            with open(self.logfile) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def output_buffer_kills(self):
        """Clients Redis closed for passing client-output-buffer-limit."""
        with open(self.logfile) as f:
            return sum("overcoming of output buffer limits" in line for line in f)

    def stop(self):
        self.procs.stop(self.proc)


KAFKA = {"kind": "mock"}  # --kafka: "mock" or "real"
REAL_KAFKA_HEAP = "768m"  # per broker JVM in the bench (the tests use 384m)


class Mock:
    """The Kafka the bench produces to, in its own process, driven over the
    same stdin protocol either way: tests/support/mock_kafka.c (librdkafka's
    mock cluster) or, with --kafka real, tests/support/kafka_cluster.py (a
    KRaft controller and 3 brokers, each a JVM, full JIT)."""

    def __init__(self, procs, binary, topics):
        if KAFKA["kind"] == "real":
            argv = ["/usr/bin/python3", REAL_KAFKA_HELPER, "--bench", "--heap", REAL_KAFKA_HEAP,
                    "--brokers", "3"]
        else:
            argv = [binary, "--brokers", "3"]
        for t in topics:
            argv += ["--topic", "%s:%d" % (t, PARTITIONS)]
        self.procs = procs
        self.proc = procs.start(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                bufsize=1)
        line = self.proc.stdout.readline().strip()
        check(line.startswith("BOOTSTRAP "), "%s Kafka did not start: %r" % (KAFKA["kind"], line))
        self.bootstrap = line.split(" ", 1)[1]

    def cpu_s(self):
        """CPU seconds of the Kafka process and its children (the broker
        JVMs of a real cluster)."""
        total = cpu_s(self.proc.pid)
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.proc.pid:
                total += (int(fields[11]) + int(fields[12])) / CLK_TCK
        return total

    def cmd(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        check(answer == "ok", "mock Kafka refused %r: %r" % (line, answer))

    def stop(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        self.procs.stop(self.proc)


def parse_ts(ts):
    return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


class Bridge:
    """The daemon; its JSON-lines stderr is kept in a file and parsed."""

    def __init__(self, ctx, name, queue_events=1000000, queue_bytes="1GiB", wrapper=(),
                 stats_interval="20ms", client=None):
        self.ctx = ctx
        self.config = os.path.join(ctx.rundir, name + ".yaml")
        with open(self.config, "w") as f:
            f.write(bridge_config(ctx.redis.port, ctx.mock.bootstrap, queue_events, queue_bytes,
                                  stats_interval, client))
        self.logfile = open(os.path.join(ctx.rundir, name + ".log"), "w")
        self.stats = []  # (bridge ts as epoch seconds, stats dict)
        self.errors = []
        self.lock = threading.Lock()
        self.proc = ctx.procs.start(list(wrapper) + [ctx.bin, "run", "-c", self.config],
                                    stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.pid = self.proc.pid
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace")
            self.logfile.write(line)
            try:
                e = json.loads(line)
            except ValueError:
                continue
            with self.lock:
                if e.get("msg") == "stats":
                    self.stats.append((parse_ts(e["ts"]), e))
                elif e.get("level") == "error":
                    self.errors.append(e)

    def last(self):
        with self.lock:
            return self.stats[-1][1] if self.stats else None

    def stats_copy(self):
        with self.lock:
            return list(self.stats)

    def wait_stats(self, pred, what, stall_s=15, max_s=300):
        """Wait for a stats line satisfying pred; give up when the counters
        stop moving for stall_s (events were lost) or after max_s."""
        start = time.monotonic()
        seen, moved = None, time.monotonic()
        while True:
            check(self.proc.poll() is None,
                  "bridge exited (%s) while waiting for %s" % (self.proc.returncode, what))
            s = self.last()
            if s and pred(s):
                return s
            key = s and (s["received"], s["produced"], s["dropped"], s["failed"])
            if key != seen:
                seen, moved = key, time.monotonic()
            now = time.monotonic()
            if now - moved > stall_s or now - start > max_s:
                raise BenchError("waiting for %s: bridge counters stuck at %s" % (
                    what, json.dumps(stats_brief(s))))
            time.sleep(0.01)

    def settle(self, target, what, quiet_s=2.0, stall_s=15, max_s=300):
        """Wait until `target` events were produced, or -- when Redis cut the
        bridge off and fewer arrived -- until everything it did receive is
        settled (nothing in flight) and nothing new came for quiet_s.
        Returns the stats line; the caller judges the counts."""
        start = time.monotonic()
        seen, moved = None, time.monotonic()
        while True:
            check(self.proc.poll() is None,
                  "bridge exited (%s) while waiting for %s" % (self.proc.returncode, what))
            s = self.last()
            now = time.monotonic()
            key = s and (s["received"], s["produced"], s["dropped"], s["failed"])
            if key != seen:
                seen, moved = key, now
            if s and s["produced"] >= target:
                return s
            if s and s["inflight"] == 0 and now - moved > quiet_s:
                return s
            if now - moved > stall_s or now - start > max_s:
                raise BenchError("waiting for %s: bridge counters stuck at %s" % (
                    what, json.dumps(stats_brief(s))))
            time.sleep(0.01)

    def completion(self, produced):
        """When the bridge's produced counter reached `produced`: linear
        interpolation between the two stats lines around it (they are
        stats_interval apart), and the later line's time as an upper bound."""
        prev = None
        for t, s in self.stats_copy():
            if s["produced"] >= produced:
                if prev and s["produced"] > prev[1]["produced"]:
                    t0, p0 = prev[0], prev[1]["produced"]
                    return t0 + (t - t0) * (produced - p0) / (s["produced"] - p0), t
                return t, t
            prev = (t, s)
        return None, None

    def stop(self):
        """SIGTERM (drain); returns (exit code, final stats line)."""
        rc = self.ctx.procs.stop(self.proc, signal.SIGTERM, 60)
        self.reader.join(10)
        self.logfile.close()
        return rc, self.last()

    def kill(self):
        self.ctx.procs.stop(self.proc, signal.SIGKILL, 5)
        self.reader.join(5)
        if not self.logfile.closed:
            self.logfile.close()


def stats_brief(s):
    keys = ("received", "routed", "produced", "dropped", "failed", "inflight")
    return {k: s.get(k) for k in keys} if s else None


CLIENT_PROPS = {}  # --client NAME=VALUE: librdkafka properties for bridge and references


def bridge_config(redis_port, brokers, queue_events, queue_bytes, stats_interval="20ms",
                  client_props=None):
    """Production defaults except the queue bound (sized for the burst) and a
    fast stats line (the bench reads progress from it)."""
    client = ""
    props = CLIENT_PROPS if client_props is None else client_props
    if props:
        client = "\n  client: { %s }" % ", ".join(
            "%s: \"%s\"" % kv for kv in sorted(props.items()))
    return """# written by bench/bench.py
redis:
  url: redis://127.0.0.1:%d
kafka:
  brokers: "%s"%s
  queue: { max_events: %d, max_bytes: %s }
routes:
  - name: order-confirm
    match: "laravel_cache:ORDER_CONFIRM:{order_id}"
    topic: %s
    key: "{order_id}"
log:
  level: info
  stats_interval: %s
""" % (redis_port, brokers, client, queue_events, queue_bytes, TOPIC, stats_interval)


# ------------------------------------------------------------------ tools

def run_tool(ctx, argv, timeout=300, name=None):
    """Run a bench tool to completion; return its last JSON stdout line."""
    p = ctx.procs.start(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        ctx.procs.stop(p, signal.SIGKILL)
        raise BenchError("%s timed out" % " ".join(argv))
    ctx.procs.stop(p)
    res = json_line(out)
    ctx.raw(name or os.path.basename(argv[0]), res, err)
    check(p.returncode == 0 and res is not None,
          "%s failed (exit %s): %s" % (" ".join(argv), p.returncode, err.strip()[-500:]))
    return res


def json_line(out):
    for line in reversed(out.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return None


class Background:
    """A tool that prints READY, runs while we do something, then reports."""

    def __init__(self, ctx, argv, name):
        self.ctx, self.name = ctx, name
        self.p = ctx.procs.start(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ready, _, _ = select.select([self.p.stdout], [], [], 30)
        line = self.p.stdout.readline().strip() if ready else ""
        if line != "READY":
            ctx.procs.stop(self.p, signal.SIGKILL)
            raise BenchError("%s did not get ready: %r %s" % (name, line, self.p.stderr.read()))

    def result(self, timeout):
        try:
            out, err = self.p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.ctx.procs.stop(self.p, signal.SIGKILL)
            raise BenchError("%s did not finish in %ds" % (self.name, timeout))
        self.ctx.procs.stop(self.p)
        res = json_line(out)
        self.ctx.raw(self.name, res, err)
        check(self.p.returncode == 0 and res is not None,
              "%s failed (exit %s): %s" % (self.name, self.p.returncode, err.strip()[-500:]))
        return res


class Ctx:
    def __init__(self, args):
        self.args = args
        self.bin = os.path.join(args.build, "src", "expiry-bridge")
        self.tools = os.path.join(args.build, "bench")
        self.mock_bin = os.path.join(args.build, "tests", "support", "eb_mock_kafka")
        self.rundir = args.rundir
        self.procs = Procs(os.environ.get("BENCH_PIDFILE"))
        self.rawfile = open(os.path.join(self.rundir, "raw.jsonl"), "a")
        self.redis = None
        self.mock = None

    def tool(self, name):
        return os.path.join(self.tools, name)

    def raw(self, what, res, err=""):
        self.rawfile.write(json.dumps({"what": what, "result": res,
                                       "stderr": (err or "")[-2000:]}) + "\n")
        self.rawfile.flush()

    def fresh_mock(self, topics=(TOPIC, REF_TOPIC, NAIVE_TOPIC)):
        if self.mock:
            self.mock.stop()
        self.mock = Mock(self.procs, self.mock_bin, topics)
        return self.mock

    def counter(self, n, max_id, idle_ms=3000, timeout_ms=300000):
        return Background(self, [self.tool("bench_sub_count"), "-p", str(self.redis.port),
                                 "-P", PATTERN, "-n", str(n), "--prefix", PREFIX,
                                 "--max-id", str(max_id), "--idle-ms", str(idle_ms),
                                 "--timeout-ms", str(timeout_ms)], "sub_count")

    def load(self, mode, *extra, timeout=300):
        return run_tool(self, [self.tool("bench_load"), mode, "-p", str(self.redis.port),
                               "--channel", CHANNEL, "--prefix", PREFIX] + list(extra),
                        timeout, name="load_" + mode)


# ------------------------------------------------------------ bridge life

def start_bridge(ctx, name, warmup_s=60, **kw):
    """A bridge that is subscribed (seen from Redis: PUBSUB NUMPAT) and has
    delivered WARMUP events (so Kafka connections, metadata and the producer
    id exist, as they do before any real burst). Returns (bridge, idle RSS
    in kB measured after 1 s subscribed and idle, before any event)."""
    # Redis notices a stopped subscriber's closed socket on its next loop turn.
    wait_for(lambda: ctx.redis.r.execute_command("PUBSUB", "NUMPAT") == 0, 10,
             "no pattern subscriber left from a previous step")
    b = Bridge(ctx, name, **kw)
    try:
        wait_for(lambda: b.proc.poll() is not None or
                 ctx.redis.r.execute_command("PUBSUB", "NUMPAT") >= 1, max(30, warmup_s),
                 "the bridge to subscribe (PUBSUB NUMPAT)")
        check(b.proc.poll() is None, "bridge exited (%s) at start; see %s" % (
            b.proc.returncode, b.logfile.name))
        time.sleep(1.0)  # idle on purpose: this is the idle RSS sample
        idle = rss_kb(b.pid)
        for i in range(WARMUP):
            n = ctx.redis.r.publish(CHANNEL, "%s%d" % (PREFIX, 900000000 + i))
            check(n == 1, "warm-up PUBLISH reached %d subscribers, expected the bridge only" % n)
        b.wait_stats(lambda s: s["produced"] >= WARMUP, "warm-up events delivered",
                     stall_s=max(15, warmup_s / 2), max_s=warmup_s)
        return b, idle
    except BaseException:
        b.kill()
        raise


def stop_bridge_consistent(b):
    """Stop; check the bridge accounted for every event it received
    (produced + dropped + failed == received, nothing left in flight)."""
    rc, s = b.stop()
    check(s is not None, "no final stats line from the bridge (%s)" % b.logfile.name)
    check(s["produced"] + s["dropped"] + s["failed"] == s["received"] and s["inflight"] == 0,
          "bridge accounting does not add up: %s" % json.dumps(stats_brief(s)))
    check(rc == 0, "bridge exited %s after SIGTERM (expected 0: drained)" % rc)
    return s


def stop_bridge(b, expect_received, expect_produced, expect_dropped):
    rc, s = b.stop()
    check(s is not None, "no final stats line from the bridge (%s)" % b.logfile.name)
    got = (s["received"], s["produced"], s["dropped"], s["failed"], s["inflight"])
    want = (expect_received, expect_produced, expect_dropped, 0, 0)
    check(got == want, "bridge final counts (received, produced, dropped, failed, inflight) "
          "= %s, expected %s" % (got, want))
    check(rc == 0, "bridge exited %s after SIGTERM (expected 0: drained)" % rc)
    return s


# -------------------------------------------------------------- scenarios

def kafka_ref(ctx, n, rate=None, latency=False):
    argv = [ctx.tool("bench_kafka_ref"), "-b", ctx.mock.bootstrap, "-t", REF_TOPIC, "-n", str(n),
            "--source", "redis://127.0.0.1:%d/0" % ctx.redis.port, "--route", "order-confirm",
            "--prefix", PREFIX]
    if rate:
        argv += ["--rate", "%.0f" % rate]
    if latency:
        argv += ["--latency", "1"]
        # The bridge lingers BRIDGE_LINGER_MS (kafka_sink.c), librdkafka 5 ms
        # by default: latency is compared at the bridge's setting.
        if "linger.ms" not in CLIENT_PROPS:
            argv += ["-X", "linger.ms=" + BRIDGE_LINGER_MS]
    for kv in sorted(CLIENT_PROPS.items()):
        argv += ["-X", "%s=%s" % kv]
    return run_tool(ctx, argv, name="bench_kafka_ref_latency" if latency else
                    "bench_kafka_ref_paced" if rate else "bench_kafka_ref")


def s1_burst(ctx, n, runs, out, refs_only=False):
    """Burst: ceiling, Kafka reference, bridge; interleaved per run."""
    ctx.fresh_mock()
    rows = []
    for run in range(runs):
        log("burst run %d/%d: Redis -> one counting subscriber (ceiling)" % (run + 1, runs))
        wait_for(lambda: ctx.redis.r.execute_command("PUBSUB", "NUMPAT") == 0, 10,
                 "no pattern subscriber left from a previous step")
        quiesce()
        c = ctx.counter(n, n)
        ccpu0 = cpu_snapshot(ctx)
        ld = ctx.load("burst", "-n", str(n))
        res = c.result(120)
        ccpu1 = cpu_snapshot(ctx)
        check(ld["receivers_min"] == 1 and ld["receivers_zero"] == 0,
              "ceiling: PUBLISH receivers min %s, zero %s: expected the counter alone" % (
                  ld["receivers_min"], ld["receivers_zero"]))
        check(res["count"] == n and res["distinct"] == n and not res["disconnected"],
              "ceiling: the counter got %d messages, %d distinct keys of %d (disconnected: %s)" % (
                  res["count"], res["distinct"], n, res["disconnected"]))
        ceil_s = (res["last_us"] - ld["start_us"]) / 1e6
        ceiling = n / ceil_s

        log("burst run %d/%d: Kafka reference (pre-encoded producer)" % (run + 1, runs))
        quiesce()
        ref = kafka_ref(ctx, n)
        check(ref["delivered"] == n and ref["failed"] == 0,
              "Kafka reference delivered %d of %d" % (ref["delivered"], n))

        if refs_only:
            rows.append({"run": run + 1, "n": n, "ceiling_s": ceil_s, "ceiling_eps": ceiling,
                         "ref_eps": ref["msgs_per_s"],
                         "ref_cpu_us_per_msg": ref["cpu_us_per_msg"]})
            log("burst run %d: ceiling %.0f/s; Kafka ref %.0f msgs/s, %.2f us CPU/msg" % (
                run + 1, ceiling, ref["msgs_per_s"], ref["cpu_us_per_msg"]))
            continue
        log("burst run %d/%d: the bridge" % (run + 1, runs))
        b, idle = start_bridge(ctx, "burst%d" % (run + 1))
        try:
            kills0 = ctx.redis.output_buffer_kills()
            quiesce()
            cpu0 = cpu_snapshot(ctx, b)
            ld = ctx.load("burst", "-n", str(n))
            s = b.settle(WARMUP + n, "the burst delivered")
            cpu1 = cpu_snapshot(ctx, b)
            hwm = rss_kb(b.pid)["VmHWM"]
            t_done, t_upper = b.completion(s["produced"])
        except BaseException:
            b.kill()
            raise
        s = stop_bridge_consistent(b)
        got = s["received"] - WARMUP
        delivered = s["produced"] - WARMUP
        row = {"run": run + 1, "n": n, "publisher_s": ld["seconds"],
               "ceiling_s": ceil_s, "ceiling_eps": ceiling,
               "ceiling_sub_cpu_us_per_msg": res["cpu_us"] / n,
               "ceiling_cpu_s_redis": ccpu1["redis"] - ccpu0["redis"],
               "ref_eps": ref["msgs_per_s"], "ref_cpu_us_per_msg": ref["cpu_us_per_msg"],
               "ref_value_bytes": ref["value_bytes"],
               "received": got, "delivered": delivered, "lost": n - delivered,
               "dropped": s["dropped"], "failed": s["failed"],
               "published_to_nobody": ld["receivers_zero"],
               "redis_output_buffer_kills": ctx.redis.output_buffer_kills() - kills0,
               "bridge_s": t_done - ld["start_us"] / 1e6,
               "bridge_s_upper": t_upper - ld["start_us"] / 1e6,
               "bridge_idle_rss_kb": idle["VmRSS"], "bridge_hwm_kb": hwm}
        row["zero_loss"] = (got, delivered, s["dropped"], s["failed"]) == (n, n, 0, 0)
        row["bridge_eps"] = delivered / row["bridge_s"]
        for k in cpu1:  # CPU seconds of each process over the bridge's burst
            row["cpu_s_" + k] = cpu1[k] - cpu0[k]
        row["cpu_s_publisher"] = ld["cpu_us"] / 1e6
        row["cpu_s_others"] = row.pop("cpu_s_machine") - sum(
            row[k] for k in ("cpu_s_redis", "cpu_s_mock", "cpu_s_bridge_main",
                             "cpu_s_bridge_rdk", "cpu_s_publisher"))
        row["bridge_cpu_us_per_event"] = (row["cpu_s_bridge_main"] + row["cpu_s_bridge_rdk"]) \
            * 1e6 / max(delivered, 1)
        row["loop_cpu_us_per_event"] = row["cpu_s_bridge_main"] * 1e6 / max(delivered, 1)
        row["rdk_cpu_us_per_event"] = row["cpu_s_bridge_rdk"] * 1e6 / max(delivered, 1)
        row["eps_ratio"] = row["bridge_eps"] / row["ceiling_eps"]
        row["ref_eps_ratio"] = row["ref_eps"] / row["ceiling_eps"]  # librdkafka alone, same run
        row["cpu_ratio"] = row["bridge_cpu_us_per_event"] / row["ref_cpu_us_per_msg"]
        # Context: librdkafka's cost per message depends on the pace it is fed
        # at; the same reference paced at the rate the bridge just delivered.
        log("burst run %d/%d: Kafka reference paced at the bridge's %.0f events/s" % (
            run + 1, runs, row["bridge_eps"]))
        quiesce()
        paced = kafka_ref(ctx, n, rate=row["bridge_eps"])
        check(paced["delivered"] == n, "paced Kafka reference delivered %d of %d" % (
            paced["delivered"], n))
        row["ref_paced_cpu_us_per_msg"] = paced["cpu_us_per_msg"]
        row["cpu_ratio_paced"] = row["bridge_cpu_us_per_event"] / paced["cpu_us_per_msg"]
        if not row["zero_loss"]:
            log("burst run %d: LOSS: the bridge received %d and delivered %d of %d; Redis "
                "closed %d subscriber(s) for their output buffer; %d PUBLISHes reached nobody" % (
                    run + 1, got, delivered, n, row["redis_output_buffer_kills"],
                    ld["receivers_zero"]))
        log("burst run %d: ceiling %.0f/s, bridge %.0f/s (x%.2f); CPU/event bridge %.2f us, "
            "Kafka ref %.2f us (x%.2f)" % (run + 1, ceiling, row["bridge_eps"], row["eps_ratio"],
                                          row["bridge_cpu_us_per_event"],
                                          row["ref_cpu_us_per_msg"], row["cpu_ratio"]))
        rows.append(row)
        ctx.raw("s1_row", row)
    if refs_only:
        out["refs_only"] = {"runs": rows, "median": medians(rows)}
        return
    # A run where Redis cut the bridge off measured a fraction of the burst
    # plus a reconnect, not the burst: its rate and CPU are left out of the
    # medians (the loss itself is reported per run and fails the bench).
    clean = [r for r in rows if r["zero_loss"]]
    out["burst"] = {"runs": rows, "median": medians(clean or rows),
                    "median_basis": "%d of %d runs without loss" % (len(clean), len(rows))
                    if clean else "all runs lost events: medians over lossy runs"}


def s1_naive(ctx, n, out):
    """Context: a naive Python bridge on the same burst."""
    log("burst: naive Python bridge (redis-py + confluent-kafka), for context")
    kills0 = ctx.redis.output_buffer_kills()
    nb = Background(ctx, ["/usr/bin/python3", os.path.join(os.path.dirname(__file__),
                                                           "naive_bridge.py"),
                          str(ctx.redis.port), ctx.mock.bootstrap, NAIVE_TOPIC], "naive_bridge")
    ld = ctx.load("burst", "-n", str(n))
    res = nb.result(300)
    kills = ctx.redis.output_buffer_kills() - kills0
    check(res["count"] <= n, "naive bridge counted more than was published")
    row = {"n": n, "got": res["count"], "lost": n - res["count"],
           "lost_pct": 100.0 * (n - res["count"]) / n, "disconnected": res["disconnected"],
           "redis_output_buffer_kills": kills, "published_to_nobody": ld["receivers_zero"]}
    log("naive bridge got %d of %d (%.1f%% lost), disconnected by Redis: %s" % (
        row["got"], n, row["lost_pct"], res["disconnected"]))
    out["naive"] = row
    wait_for(lambda: ctx.redis.r.execute_command("PUBSUB", "NUMPAT") == 0, 10,
             "the naive subscriber to be gone")


def s2_latency(ctx, rate, seconds, runs, out):
    ctx.fresh_mock()
    rows = []
    n = int(rate * seconds)
    for run in range(runs):
        log("latency run %d/%d: %d events/s for %.0f s" % (run + 1, runs, rate, seconds))
        b, _ = start_bridge(ctx, "latency%d" % (run + 1))
        try:
            quiesce()
            cpu0 = cpu_s(b.pid)
            ld = ctx.load("rate", "--rate", str(rate), "--seconds", str(seconds))
            check(ld["receivers_min"] == 1 and ld["receivers_zero"] == 0,
                  "latency: some PUBLISHes reached no subscriber")
            b.wait_stats(lambda s: s["produced"] >= WARMUP + n, "the steady stream delivered")
            cpu1 = cpu_s(b.pid)
        except BaseException:
            b.kill()
            raise
        s = stop_bridge(b, WARMUP + n, WARMUP + n, 0)
        # The reference at the same pace to the same Kafka: librdkafka's own
        # produce -> delivery report time (exact per message, not bucketed).
        log("latency run %d/%d: Kafka reference at %d msgs/s" % (run + 1, runs, rate))
        quiesce()
        ref = kafka_ref(ctx, n, rate=rate, latency=True)
        check(ref["delivered"] == n, "latency reference delivered %d of %d" % (
            ref["delivered"], n))
        row = {"run": run + 1, "n": n, "rate": rate, "offered_per_s": ld["per_s"],
               "generator_worst_lag_ms": ld["worst_lag_us"] / 1000,
               "p50_ms": s["latency_p50_busiest_route_s"] * 1000,
               "p99_ms": s["latency_p99_busiest_route_s"] * 1000,
               "cpu_us_per_event": (cpu1 - cpu0) * 1e6 / n,
               "ref_p50_ms": ref["latency_p50_ms"], "ref_p99_ms": ref["latency_p99_ms"],
               "ref_cpu_us_per_msg": ref["cpu_us_per_msg"]}
        log("latency run %d: p50 %.2f ms, p99 %.2f ms (bucket-interpolated), CPU %.2f us/event; "
            "Kafka reference p50 %.2f ms, p99 %.2f ms" % (
                run + 1, row["p50_ms"], row["p99_ms"], row["cpu_us_per_event"],
                row["ref_p50_ms"], row["ref_p99_ms"]))
        rows.append(row)
        ctx.raw("s2_row", row)
    out["latency"] = {"runs": rows, "median": medians(rows)}


def s3_memory(ctx, bounds, runs, out):
    rows = []
    for run in range(runs):
        for bound in bounds:
            log("memory run %d/%d: queue bound %d, Kafka down, publishing 3x" % (
                run + 1, runs, bound))
            ctx.fresh_mock((TOPIC,))
            b, idle = start_bridge(ctx, "rss%d_%d" % (bound, run + 1), queue_events=bound)
            try:
                cpu_idle0, t_idle0 = cpu_s(b.pid), time.monotonic()
                time.sleep(2.0)  # idle on purpose: CPU of an idle bridge
                idle_cpu_pct = 100 * (cpu_s(b.pid) - cpu_idle0) / (time.monotonic() - t_idle0)
                idle_warm = rss_kb(b.pid)["VmRSS"]
                ctx.mock.cmd("down")
                rss = []
                for step in range(1, 4):
                    ctx.load("burst", "-n", str(bound), "--start", str((step - 1) * bound))
                    s = b.wait_stats(lambda s: s["received"] >= WARMUP + step * bound,
                                     "%dx the bound read during the outage" % step)
                    check(s["produced"] == WARMUP,
                          "events were delivered although every broker is down")
                    check(s["dropped"] == (step - 1) * bound and s["inflight"] == bound,
                          "at %dx the bound: dropped %d, inflight %d; expected %d, %d" % (
                              step, s["dropped"], s["inflight"], (step - 1) * bound, bound))
                    rss.append(rss_kb(b.pid)["VmRSS"])
                ctx.mock.cmd("up")
                b.wait_stats(lambda s: s["produced"] >= WARMUP + bound,
                             "the queued events delivered after Kafka returned", stall_s=60)
            except BaseException:
                b.kill()
                raise
            stop_bridge(b, WARMUP + 3 * bound, WARMUP + bound, 2 * bound)
            row = {"run": run + 1, "bound": bound, "idle_rss_kb": idle["VmRSS"],
                   "idle_warm_rss_kb": idle_warm, "idle_cpu_pct": idle_cpu_pct,
                   "rss_1x_kb": rss[0], "rss_2x_kb": rss[1], "rss_3x_kb": rss[2],
                   "dropped": 2 * bound, "delivered_after_outage": bound,
                   "bytes_per_queued_event": (rss[2] - idle_warm) * 1024 / bound,
                   "growth_1x_to_3x_kb": rss[2] - rss[0]}
            log("memory: bound %d: idle %.1f MB, RSS at 1x/2x/3x %.1f/%.1f/%.1f MB, dropped %d" %
                (bound, idle["VmRSS"] / 1024, rss[0] / 1024, rss[1] / 1024, rss[2] / 1024,
                 2 * bound))
            rows.append(row)
            ctx.raw("s3_row", row)
    out["memory"] = {"runs": rows, "median": {
        str(bound): medians([r for r in rows if r["bound"] == bound]) for bound in bounds}}
    out["memory"]["idle_rss_kb_median"] = median([r["idle_rss_kb"] for r in rows])


def s4_mass_expiry(ctx, n, lead_ms, runs, out):
    """1M keys armed with one deadline: Redis's own announcement pace (the
    counting subscriber) vs the bridge's last delivery, both from the
    deadline, in the same run."""
    ctx.fresh_mock()
    rows = []
    for run in range(runs):
        log("1M keys run %d/%d: %d keys armed with one deadline" % (run + 1, runs, n))
        ctx.redis.r.flushall()
        ctx.redis.r.config_set("notify-keyspace-events", "Ex")  # the counter needs them too
        b, _ = start_bridge(ctx, "expiry%d" % (run + 1))
        try:
            kills0 = ctx.redis.output_buffer_kills()
            c = ctx.counter(n, n, idle_ms=10000)
            quiesce()
            cpu0 = cpu_snapshot(ctx, b)
            arm = ctx.load("arm", "-n", str(n), "--lead-ms", str(lead_ms))
            deadline = arm["deadline_ms"] / 1000
            res = c.result(300)
            s = b.settle(WARMUP + n, "the mass expiry on Kafka")
            cpu1 = cpu_snapshot(ctx, b)
            t_done, _ = b.completion(s["produced"])
        except BaseException:
            b.kill()
            raise
        s = stop_bridge_consistent(b)
        check(res["count"] == n and res["distinct"] == n and not res["disconnected"],
              "counter saw %d announcements, %d distinct, of %d (disconnected: %s)" % (
                  res["count"], res["distinct"], n, res["disconnected"]))
        check(ctx.redis.r.dbsize() == 0, "keys left in Redis after the mass expiry")
        delivered = s["produced"] - WARMUP
        row = {"run": run + 1, "n": n, "arm_s": arm["seconds"],
               "first_announce_after_deadline_s": res["first_us"] / 1e6 - deadline,
               "redis_announce_s": res["last_us"] / 1e6 - deadline,
               "bridge_done_s": t_done - deadline,
               "received": s["received"] - WARMUP, "delivered": delivered,
               "lost": n - delivered,
               "redis_output_buffer_kills": ctx.redis.output_buffer_kills() - kills0}
        row["zero_loss"] = row["lost"] == 0 and s["dropped"] == 0 and s["failed"] == 0
        row["redis_events_per_s"] = n / row["redis_announce_s"]
        for k in cpu1:
            row["cpu_s_" + k] = cpu1[k] - cpu0[k]
        row["bridge_cpu_us_per_event"] = (row["cpu_s_bridge_main"] + row["cpu_s_bridge_rdk"]) \
            * 1e6 / max(delivered, 1)
        row["ratio"] = row["bridge_done_s"] / row["redis_announce_s"]
        if not row["zero_loss"]:
            log("1M keys run %d: LOSS: the bridge delivered %d of %d" % (run + 1, delivered, n))
        log("1M keys run %d: Redis announced all in %.2f s after the deadline, the bridge had "
            "all on Kafka at %.2f s (x%.3f)" % (run + 1, row["redis_announce_s"],
                                               row["bridge_done_s"], row["ratio"]))
        rows.append(row)
        ctx.raw("s4_row", row)
    ctx.redis.r.flushall()
    out["mass_expiry"] = {"runs": rows, "median": medians(rows)}


def s5_profile(ctx, n, out):
    """Where the bridge's time goes on the burst: perf (software cpu-clock
    samples: this VM has no hardware counters) with DWARF call graphs, so
    libraries without frame pointers unwind too. Not part of the numbers:
    sampling costs CPU itself."""
    perf = shutil.which("perf") or "/usr/bin/perf"
    if not os.path.exists(perf):
        log("profile: perf not installed; skipped")
        return
    ctx.fresh_mock()
    log("profile: the bridge on a %d burst under perf record" % n)
    b, _ = start_bridge(ctx, "profile")
    data = os.path.join(ctx.rundir, "perf.data")
    try:
        rec = ctx.procs.start([perf, "record", "-q", "-e", "cpu-clock", "-F", "999",
                               "--call-graph", "dwarf,16384", "-o", data, "-p", str(b.pid)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # perf attaches asynchronously; give it time before the burst
        ctx.load("burst", "-n", str(n))
        b.settle(WARMUP + n, "the profiled burst delivered")
        ctx.procs.stop(rec, signal.SIGINT, 60)
    except BaseException:
        b.kill()
        raise
    stop_bridge_consistent(b)
    reports = {
        "profile-threads.txt": ["--no-children", "--sort", "comm,dso", "-g", "none"],
        "profile-self.txt": ["--no-children", "--sort", "sym", "-g", "none",
                             "--percent-limit", "0.3"],
        "profile-inclusive.txt": ["--children", "--sort", "sym", "-g", "none",
                                  "--percent-limit", "1"],
        "profile-loop-callers.txt": ["--no-children", "--comm", "expiry-bridge", "--sort", "sym",
                                     "-g", "caller,0.5,callee,function,percent",
                                     "--percent-limit", "2"],
    }
    for name, extra in reports.items():
        with open(os.path.join(ctx.rundir, name), "w") as f:
            subprocess.run([perf, "report", "-i", data, "--stdio"] + extra, stdout=f,
                           stderr=subprocess.DEVNULL, timeout=600)
    out["profile"] = {"dir": ctx.rundir, "files": sorted(reports)}
    log("profile: perf reports in %s/profile-*.txt" % ctx.rundir)


# ------------------------------------------------------------- callgrind

CG_N = 50000  # --cg-n: events per program under callgrind
# linger.ms of the bridge and the reference under callgrind (--cg-linger-ms).
# Valgrind runs them ~50x slower, so the bridge's 1 ms would close each
# batch after ~20 us of native work, and batch sizes -- librdkafka's cost
# per message -- would follow how fast valgrind runs, i.e. the machine's
# load (measured: the reference 5,300 -> 6,200 instructions per message
# while a build ran beside it). With a long linger, batches close by size
# in the burst as they do natively, and the counts stop depending on time.
CG_LINGER_MS = "1000"


def callgrind_totals(path):
    """{event: count} of one callgrind dump, from its 'events:' and
    'totals:' (or 'summary:') lines, summed over every thread (callgrind's
    default): Ir (instructions) and sysCount (system calls, with
    --collect-systime; under valgrind clock_gettime is one, as it is
    wherever the vDSO cannot serve it)."""
    names, totals = None, None
    with open(path) as f:
        for line in f:
            if line.startswith("events:"):
                names = line.split()[1:]
            elif line.startswith(("totals:", "summary:")):
                totals = [int(x) for x in line.split()[1:]]
    if not names or not totals:
        raise BenchError("no totals in %s" % path)
    return dict(zip(names, totals))


def callgrind_total(path):
    return callgrind_totals(path)["Ir"]


# Frames that were on a stack when the counters were zeroed: callgrind_annotate
# shows their whole inclusive cost as their own after a mid-run zero, so the
# profile leaves them out (their real self cost is a loop's few instructions).
CG_OPEN_FRAMES = ("main ", "(below main)", "__libc_start_main", "libc_start_call_main",
                  "start_thread", "clone ", "eb_app_run ", "event_base_dispatch ",
                  "event_base_loop ", "0x000000000001ab70 [/usr/lib/x86_64-linux-gnu/ld-linux")


def callgrind_functions(path, event="Ir"):
    """{function: self Ir} of a dump, from callgrind_annotate (names as it
    prints them, 'file:function [object]' trimmed to 'function [object]'),
    without the frames open at the zero (CG_OPEN_FRAMES)."""
    txt = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100",
                          "--show=" + event, "--sort=" + event, path],
                         capture_output=True, text=True, check=True).stdout
    fns, started = {}, False
    for line in txt.splitlines():
        if "file:function" in line:
            started = True
            continue
        if not started or not line.strip():
            continue
        parts = line.split(None, 1)
        if len(parts) != 2 or not parts[0].replace(",", "").isdigit():
            if fns:
                break
            continue
        ir = int(parts[0].replace(",", ""))
        rest = parts[1]
        if rest.startswith("("):  # "(12.34%)"
            rest = rest.split(")", 1)[1].strip()
        name = (rest.split(":", 1)[1] if ":" in rest.split(" [")[0] else rest).strip()
        if any(name.startswith(f) for f in CG_OPEN_FRAMES):
            continue
        fns[name] = fns.get(name, 0) + ir
    return fns


class Callgrind:
    """One program under valgrind --tool=callgrind; its counters are zeroed
    and dumped around the measured part with callgrind_control (vgdb), so
    start-up, warm-up and shutdown are left out."""

    def __init__(self, ctx, name, run):
        self.ctx, self.name = ctx, name
        self.out = os.path.join(ctx.rundir, "callgrind.%s.%d.out" % (name, run))

    def argv(self, argv):
        return ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + self.out,
                "--dump-instr=no", "--collect-systime=yes",
                "--log-file=" + self.out + ".log"] + argv

    def control(self, pid, what):
        r = subprocess.run(["callgrind_control", what, str(pid)], capture_output=True,
                           text=True, timeout=120)
        check(r.returncode == 0 and "OK" in r.stdout,
              "callgrind_control %s %d: %s %s" % (what, pid, r.stdout, r.stderr))

    def zero(self, pid):
        self.control(pid, "--zero")

    def dump(self, pid):
        before = set(os.listdir(self.ctx.rundir))
        self.control(pid, "--dump")
        base = os.path.basename(self.out) + "."
        new = [f for f in wait_for(lambda: [f for f in set(os.listdir(self.ctx.rundir)) - before
                                            if f.startswith(base) and f[len(base):].isdigit()],
                                   300, "the callgrind dump of " + self.name)]
        self.dumpfile = os.path.join(self.ctx.rundir, sorted(new)[-1])
        time.sleep(0.5)  # callgrind writes the file in one go; let it finish
        return self.dumpfile


# What each function of the profile does for an event, for the table by
# kind of work (docs/performance.md): (kind, name prefixes or [object]s).
# The first match wins; the rest is "other".
CG_KINDS = (
    ("encoding (CloudEvent JSON, id)", ("json_plain", "event_id", "eb_event_encode", "put_",
                                        "eb_buf_", "eb_json_", "XXH")),
    ("routing (router, Kafka key)", ("eb_router_",)),
    ("reply objects (malloc/free, pool)", ("_int_malloc", "_int_free", "malloc", "free ",
                                           "calloc", "realloc", "unlink_chunk",
                                           "malloc_consolidate", "pool_", "freeReplyObject",
                                           "createReplyObject", "createString", "createArray",
                                           "createInteger", "createNil")),
    ("hiredis (reading, async dispatch)", ("[/usr/lib/x86_64-linux-gnu/libhiredis",
                                           "__strcasecmp", "redis")),
    ("read-ahead (backlog)", ("eb_backlog_", "on_deliver ", "deliver_one", "on_backlog")),
    ("delivery reports", ("dr_msg_cb", "eb_pipeline_on_delivery", "inflight_", "serve ",
                          "on_wake")),
    ("metrics (counters, histogram)", ("eb_metrics_",)),
    ("clock reads", ("clock_gettime", "__gettimeofday", "gettimeofday")),
    ("logging", ("eb_log", "__vfprintf", "_IO_", "vsnprintf", "__printf")),
    ("event path glue (source, pipeline, sink)", ("deliver ", "sub_on_message", "conn_on_reply",
                                                  "on_notification", "eb_pipeline_",
                                                  "forward ", "produce ", "eb_kafka_sink_",
                                                  "resolve_channel", "eb_notify_",
                                                  "eb_redis_")),
    ("librdkafka", ("[/usr/lib/x86_64-linux-gnu/librdkafka", "rd_kafka")),
    ("libevent", ("[/usr/lib/x86_64-linux-gnu/libevent", "event_", "evmap", "epoll")),
    ("libc string/memory", ("__mem", "__str", "memcpy", "memmove", "memset", "strlen")),
)


def cg_kind(fn):
    for kind, keys in CG_KINDS:
        for k in keys:
            if fn.startswith(k) or (k.startswith("[") and k in fn):
                return kind
    return "other"


def cg_subscriber(ctx, n, run):
    cg = Callgrind(ctx, "subscriber", run)
    p = ctx.procs.start(cg.argv([ctx.tool("bench_sub_count"), "-p", str(ctx.redis.port),
                                 "-P", PATTERN, "-n", str(n), "--prefix", PREFIX,
                                 "--max-id", str(n), "--idle-ms", "60000",
                                 "--timeout-ms", "900000"]),
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline().strip()
    check(line == "READY", "subscriber under callgrind did not get ready: %r" % line)
    cg.zero(p.pid)
    ld = ctx.load("burst", "-n", str(n))
    check(ld["receivers_min"] == 1 and ld["receivers_zero"] == 0,
          "callgrind subscriber: PUBLISH reached %s subscribers" % ld["receivers_min"])
    out, err = p.communicate(timeout=900)
    ctx.procs.stop(p)
    res = json_line(out)
    check(res and res["count"] == n and res["distinct"] == n,
          "callgrind subscriber counted %s" % res)
    return cg.out  # the final dump: everything since the zero


def cg_reference(ctx, n, run):
    cg = Callgrind(ctx, "reference", run)
    argv = [ctx.tool("bench_kafka_ref"), "-b", ctx.mock.bootstrap, "-t", REF_TOPIC,
            "-n", str(n), "--source", "redis://127.0.0.1:%d/0" % ctx.redis.port,
            "--route", "order-confirm", "--prefix", PREFIX, "--hold", "1"]
    for kv in sorted(cg_producer_props().items()):
        argv += ["-X", "%s=%s" % kv]
    p = ctx.procs.start(cg.argv(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline().strip()
    check(line == "READY", "reference under callgrind did not get ready: %r" % line)
    cg.zero(p.pid)
    p.stdin.write("go\n")
    p.stdin.flush()
    line = p.stdout.readline().strip()
    check(line == "DONE", "reference under callgrind did not finish: %r" % line)
    dump = cg.dump(p.pid)
    out, err = p.communicate("go\n", timeout=300)
    ctx.procs.stop(p)
    res = json_line(out)
    check(res and res["delivered"] == n and res["failed"] == 0,
          "callgrind reference delivered %s" % res)
    return dump


def cg_bridge(ctx, n, run):
    cg = Callgrind(ctx, "bridge", run)
    # A stats line a second, not the bench's 50: under callgrind the run
    # lasts ~100x longer, and 50 lines a second would be counted as the
    # bridge's per-event work.
    b, _ = start_bridge(ctx, "callgrind%d" % run, wrapper=cg.argv([]), warmup_s=300,
                        stats_interval="1s", client=cg_producer_props())
    try:
        cg.zero(b.pid)
        ld = ctx.load("burst", "-n", str(n))
        check(ld["receivers_min"] == 1 and ld["receivers_zero"] == 0,
              "callgrind bridge: PUBLISH reached %s subscribers" % ld["receivers_min"])
        b.wait_stats(lambda s: s["produced"] >= WARMUP + n, "the callgrind burst delivered",
                     stall_s=120, max_s=1800)
        dump = cg.dump(b.pid)
    except BaseException:
        b.kill()
        raise
    stop_bridge(b, WARMUP + n, WARMUP + n, 0)
    return dump


def cg_producer_props():
    props = bridge_producer_props()
    props["linger.ms"] = CG_LINGER_MS
    return props


def bridge_producer_props():
    """The bridge's own producer settings that librdkafka does not default
    to the same (kafka_sink.c), for the references at the bridge's pace."""
    props = {"linger.ms": BRIDGE_LINGER_MS}
    props.update(CLIENT_PROPS)
    return props


def s6_callgrind(ctx, n, runs, out):
    """Instructions per event, deterministic: the counting subscriber, the
    Kafka reference (the bridge's producer settings) and the bridge, each
    under callgrind on the same n-event burst; floor = subscriber +
    reference. Plus the bridge's functions above the floor."""
    ctx.fresh_mock()
    rows = []
    for run in range(runs):
        log("callgrind run %d/%d: the counting subscriber (%d events)" % (run + 1, runs, n))
        wait_for(lambda: ctx.redis.r.execute_command("PUBSUB", "NUMPAT") == 0, 10,
                 "no pattern subscriber left")
        sub = cg_subscriber(ctx, n, run + 1)
        log("callgrind run %d/%d: the Kafka reference" % (run + 1, runs))
        ref = cg_reference(ctx, n, run + 1)
        log("callgrind run %d/%d: the bridge" % (run + 1, runs))
        br = cg_bridge(ctx, n, run + 1)
        tot = {k: callgrind_totals(f) for k, f in (("sub", sub), ("ref", ref), ("bridge", br))}
        row = {"run": run + 1, "n": n}
        for k, t in tot.items():
            row[k + "_ir_per_event"] = t["Ir"] / n
            row[k + "_syscalls_per_event"] = t.get("sysCount", 0) / n
        row["floor_ir_per_event"] = row["sub_ir_per_event"] + row["ref_ir_per_event"]
        row["ratio"] = row["bridge_ir_per_event"] / row["floor_ir_per_event"]
        row["files"] = {"subscriber": sub, "reference": ref, "bridge": br}
        log("callgrind run %d: instructions/event: subscriber %.0f + reference %.0f = floor "
            "%.0f; bridge %.0f (x%.2f)" % (run + 1, row["sub_ir_per_event"],
                                           row["ref_ir_per_event"], row["floor_ir_per_event"],
                                           row["bridge_ir_per_event"], row["ratio"]))
        rows.append(row)
        ctx.raw("s6_row", row)
    last = rows[-1]["files"]
    fb, fs, fr = (callgrind_functions(last[k]) for k in ("bridge", "subscriber", "reference"))
    above = {f: (ir - fs.get(f, 0) - fr.get(f, 0)) / n for f, ir in fb.items()}
    top = sorted(above.items(), key=lambda kv: -kv[1])[:25]
    kinds = {}
    for f in set(fb) | set(fs) | set(fr):
        k = kinds.setdefault(cg_kind(f), [0, 0, 0])
        k[0] += fb.get(f, 0) / n
        k[1] += fs.get(f, 0) / n
        k[2] += fr.get(f, 0) / n
    kinds = sorted(((k, v[0], v[1], v[2], v[0] - v[1] - v[2]) for k, v in kinds.items()),
                   key=lambda r: -r[4])
    out["callgrind"] = {"runs": rows, "median": medians([{k: v for k, v in r.items()
                                                           if k != "files"} for r in rows]),
                        "bridge_top_self": sorted(((f, ir / n) for f, ir in fb.items()),
                                                  key=lambda kv: -kv[1])[:25],
                        "above_floor_top": top, "by_kind": kinds}
    with open(os.path.join(ctx.rundir, "callgrind-profile.txt"), "w") as f:
        f.write("Self instructions per event by kind of work: above the floor = bridge - "
                "subscriber - reference (%d events)\n" % n)
        for k, b, sub, ref, above_ in kinds:
            f.write("%8.0f = %8.0f - %8.0f - %8.0f  %s\n" % (above_, b, sub, ref, k))
        f.write("\nSelf instructions per event by function: bridge - subscriber - reference = "
                "above the floor\n")
        rows = sorted(((fb.get(k, 0) - fs.get(k, 0) - fr.get(k, 0)) / n, k)
                      for k in set(fb) | set(fs) | set(fr))
        for v, k in rows[::-1]:
            if abs(v) >= 1:
                f.write("%8.0f = %8.0f - %8.0f - %8.0f  %s\n" % (
                    v, fb.get(k, 0) / n, fs.get(k, 0) / n, fr.get(k, 0) / n, k))
        f.write("\nSystem calls per event by calling function (bridge / subscriber / reference)\n")
        sb, ss, sr = (callgrind_functions(last[k], "sysCount")
                      for k in ("bridge", "subscriber", "reference"))
        for k in sorted(set(sb) | set(ss) | set(sr), key=lambda k: -sb.get(k, 0)):
            f.write("%8.3f %8.3f %8.3f  %s\n" % (sb.get(k, 0) / n, ss.get(k, 0) / n,
                                                 sr.get(k, 0) / n, k))


# ---------------------------------------------------------- steady rates

def sched_cpu_s(pid):
    """CPU seconds of every thread of pid from /proc/<pid>/task/*/schedstat
    (nanoseconds; /proc/<pid>/stat counts 10 ms ticks, too coarse for the
    few hundred ms a slow steady run uses)."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        except OSError:
            continue  # a thread that just ended
    return total / 1e9


def ctx_switches(pid):
    """Context switches (voluntary + involuntary) of every thread of pid so
    far: how often its threads slept and were woken, or were preempted."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total


def s7_steady(ctx, rates, seconds, runs, out):
    """CPU per event at steady rates against the floor measured at the same
    rate in the same run: the counting subscriber, subscribed beside the
    bridge to the same stream, plus the Kafka reference paced at that rate
    with the bridge's producer settings (linger.ms included)."""
    ctx.fresh_mock()
    res = {}
    for rate in rates:
        rows = []
        n = int(rate * seconds)
        for run in range(runs):
            log("steady %d/s run %d/%d: bridge and counting subscriber on one stream (%d events)"
                % (rate, run + 1, runs, n))
            b, _ = start_bridge(ctx, "steady%d_%d" % (rate, run + 1), stats_interval="1s")
            try:
                c = Background(ctx, [ctx.tool("bench_sub_count"), "-p", str(ctx.redis.port),
                                     "-P", PATTERN, "-n", str(n), "--prefix", PREFIX,
                                     "--max-id", str(n), "--idle-ms", "5000",
                                     "--timeout-ms", "600000"], "sub_count_steady")
                quiesce()
                cpu0, csw0 = sched_cpu_s(b.pid), ctx_switches(b.pid)
                ld = ctx.load("rate", "--rate", str(rate), "--seconds", str(seconds))
                check(ld["receivers_min"] == 2 and ld["receivers_zero"] == 0,
                      "steady: a PUBLISH reached %d subscribers, expected bridge + counter" %
                      ld["receivers_min"])
                b.wait_stats(lambda s: s["produced"] >= WARMUP + n, "the steady stream delivered")
                cpu1, csw1 = sched_cpu_s(b.pid), ctx_switches(b.pid)
                sub = c.result(60)
                check(sub["count"] == n and sub["distinct"] == n,
                      "steady: the counter got %d of %d" % (sub["count"], n))
            except BaseException:
                b.kill()
                raise
            s = stop_bridge(b, WARMUP + n, WARMUP + n, 0)
            log("steady %d/s run %d/%d: Kafka reference at %d msgs/s (linger.ms %s)" % (
                rate, run + 1, runs, rate, bridge_producer_props()["linger.ms"]))
            quiesce()
            ref = kafka_ref(ctx, n, rate=rate, latency=True)
            check(ref["delivered"] == n, "steady reference delivered %d of %d" % (
                ref["delivered"], n))
            row = {"run": run + 1, "n": n, "rate": rate,
                   "bridge_cpu_us_per_event": (cpu1 - cpu0) * 1e6 / n,
                   "sub_cpu_us_per_event": sub["cpu_us"] / n,
                   "ref_cpu_us_per_msg": ref["cpu_us_per_msg"],
                   "bridge_csw_per_event": (csw1 - csw0) / n,
                   "sub_csw_per_event": sub.get("csw", 0) / n,
                   "ref_csw_per_event": ref.get("csw", 0) / n,
                   "p50_ms": s["latency_p50_busiest_route_s"] * 1000,
                   "p99_ms": s["latency_p99_busiest_route_s"] * 1000,
                   "ref_p50_ms": ref["latency_p50_ms"], "ref_p99_ms": ref["latency_p99_ms"]}
            row["floor_cpu_us_per_event"] = row["sub_cpu_us_per_event"] + row["ref_cpu_us_per_msg"]
            row["ratio"] = row["bridge_cpu_us_per_event"] / row["floor_cpu_us_per_event"]
            log("steady %d/s run %d: bridge %.2f us/event; floor %.2f (subscriber %.2f + "
                "reference %.2f): x%.2f; p99 %.2f ms (reference %.2f ms)" % (
                    rate, run + 1, row["bridge_cpu_us_per_event"], row["floor_cpu_us_per_event"],
                    row["sub_cpu_us_per_event"], row["ref_cpu_us_per_msg"], row["ratio"],
                    row["p99_ms"], row["ref_p99_ms"]))
            rows.append(row)
            ctx.raw("s7_row", row)
        res[str(rate)] = {"runs": rows, "median": medians(rows)}
    out["steady"] = res


def strace_counts(path):
    """{syscall: calls} from an `strace -c` summary."""
    counts = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            # % time, seconds, usecs/call, calls, [errors,] syscall
            if len(parts) >= 5 and parts[3].isdigit() and not parts[-1].startswith("total"):
                counts[parts[-1]] = int(parts[3])
    return counts


def s8_syscalls(ctx, rates, seconds, out):
    """System calls per event at steady rates, by name (strace -c on every
    thread of the bridge while the stream runs): what the loop and
    librdkafka's threads do per event and per wakeup. strace slows every
    call it sees, so no CPU is measured here; the counts are what matter."""
    strace = shutil.which("strace")
    if not strace:
        log("syscalls: strace not installed; skipped")
        return
    ctx.fresh_mock()
    res = {}
    for rate in rates:
        n = int(rate * seconds)
        log("syscalls: %d/s for %.0f s under strace -c" % (rate, seconds))
        b, _ = start_bridge(ctx, "syscalls%d" % rate, stats_interval="1s")
        path = os.path.join(ctx.rundir, "strace-%d.txt" % rate)
        try:
            tr = ctx.procs.start([strace, "-f", "-c", "-qq", "-o", path, "-p", str(b.pid)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)  # strace attaches to each thread
            ld = ctx.load("rate", "--rate", str(rate), "--seconds", str(seconds))
            check(ld["receivers_zero"] == 0, "syscalls: a PUBLISH reached no subscriber")
            b.wait_stats(lambda s: s["produced"] >= WARMUP + n, "the traced stream delivered")
            ctx.procs.stop(tr, signal.SIGINT, 30)
        except BaseException:
            b.kill()
            raise
        stop_bridge(b, WARMUP + n, WARMUP + n, 0)
        counts = strace_counts(path)
        res[str(rate)] = {"n": n, "per_event": {k: v / n for k, v in sorted(
            counts.items(), key=lambda kv: -kv[1])}}
        log("syscalls %d/s: %.2f per event: %s" % (rate, sum(counts.values()) / n, ", ".join(
            "%s %.2f" % (k, v / n) for k, v in sorted(counts.items(), key=lambda kv: -kv[1])[:8])))
    out["syscalls"] = res


def cpu_snapshot(ctx, bridge=None):
    """CPU seconds so far of redis-server, the mock Kafka and the bridge
    (loop thread and librdkafka's threads apart): who used the 2 cores."""
    snap = {"redis": cpu_s(ctx.redis.proc.pid), "mock": ctx.mock.cpu_s(),
            "machine": machine_busy_s()}
    if bridge:
        snap["bridge_main"], snap["bridge_rdk"] = thread_cpu_s(bridge.pid)
    return snap


def medians(rows):
    keys = [k for k in rows[0] if isinstance(rows[0][k], (int, float)) and
            not isinstance(rows[0][k], bool) and k != "run"]
    return {k: median([r[k] for r in rows]) for k in keys}


# ---------------------------------------------------------------- summary

def verdicts(out, t):
    """(name, measured, target, pass) per target of issue 3 item 10."""
    v = []
    if "callgrind" in out:
        m = out["callgrind"]["median"]
        v.append(("bridge instructions/event <= 1.3 x floor (callgrind)", "x%.2f" % m["ratio"],
                  "<= x%.2f" % t["ir_ratio"], m["ratio"] <= t["ir_ratio"]))
    for rate, r in out.get("steady", {}).items():
        m = r["median"]
        v.append(("bridge CPU/event at %s/s <= 1.3 x floor" % rate, "x%.2f" % m["ratio"],
                  "<= x%.2f" % t["steady_ratio"], m["ratio"] <= t["steady_ratio"]))
    if "burst" in out:
        m = out["burst"]["median"]
        runs = out["burst"]["runs"]
        lossy = [r for r in runs if not r["zero_loss"]]
        v.append(("zero loss on the %d burst (every run)" % m["n"],
                  "lost %s" % "/".join(str(r["lost"]) for r in runs), "0 lost", not lossy))
        v.append(("delivered events/s >= 0.5 x Redis ceiling", "x%.2f" % m["eps_ratio"],
                  ">= x%.2f" % t["eps_ratio"], m["eps_ratio"] >= t["eps_ratio"]))
        v.append(("bridge CPU/event <= 1.5 x Kafka reference", "x%.2f" % m["cpu_ratio"],
                  "<= x%.2f" % t["cpu_ratio"], m["cpu_ratio"] <= t["cpu_ratio"]))
    if "latency" in out:
        m = out["latency"]["median"]
        v.append(("p99 notification -> delivery report at %d/s" % m["rate"],
                  "%.2f ms" % m["p99_ms"], "<= %.0f ms" % t["p99_ms"],
                  m["p99_ms"] <= t["p99_ms"]))
    if "memory" in out:
        mem = out["memory"]
        idle = mem["idle_rss_kb_median"]
        v.append(("RSS idle", "%.1f MB" % (idle / 1024), "<= %d MB" % t["idle_rss_mb"],
                  idle <= t["idle_rss_mb"] * 1024))
        for bound, m in mem["median"].items():
            # Bounded: once the queue is full, more events must not add memory.
            plateau = m["growth_1x_to_3x_kb"] <= 0.1 * max(m["rss_1x_kb"] - m["idle_warm_rss_kb"],
                                                            0) + 2048
            v.append(("RSS bounded by queue %s (outage, 3x published)" % bound,
                      "%.1f -> %.1f MB (1x -> 3x)" % (m["rss_1x_kb"] / 1024,
                                                     m["rss_3x_kb"] / 1024),
                      "plateau after 1x", plateau))
    if "mass_expiry" in out:
        m = out["mass_expiry"]["median"]
        runs = out["mass_expiry"]["runs"]
        v.append(("zero loss on the %d-key mass expiry (every run)" % m["n"],
                  "lost %s" % "/".join(str(r["lost"]) for r in runs), "0 lost",
                  all(r["zero_loss"] for r in runs)))
        v.append(("1M keys: bridge done <= 1.1 x Redis announce time", "x%.3f" % m["ratio"],
                  "<= x%.2f" % t["mass_ratio"], m["ratio"] <= t["mass_ratio"]))
    return v


def summary_text(out, v, runs):
    L = []
    L.append("expiry-bridge benchmark -- %s, medians of %d runs, Kafka: %s" % (
        out["when"], runs, out.get("kafka", "mock")))
    L.append("machine: %s; %s" % (out["machine"], out["versions"]))
    if out.get("client_props"):
        L.append("EXPERIMENT: extra librdkafka properties for the bridge and the reference: %s" %
                 out["client_props"])
    q = out.get("quiet_wait", {})
    if q.get("busy_phases"):
        L.append("WARNING: %d measured phase(s) ran while other work used > 0.25 cores of this "
                 "machine (waited %.0f s for quiet); expect noise" % (q["busy_phases"],
                                                                      q["waited_s"]))
    L.append("")
    if "burst" in out:
        m = out["burst"]["median"]
        runs_ = out["burst"]["runs"]
        L.append("1. Burst: %d pipelined PUBLISHes of routed keys (rates and CPU: medians of the "
                 "%s)" % (m["n"], out["burst"]["median_basis"]))
        L.append("   Redis -> counting subscriber (ceiling) %10.0f events/s  (%.3f s)" % (
            m["ceiling_eps"], m["ceiling_s"]))
        L.append("   bridge, delivered to Kafka            %10.0f events/s  (%.3f s)   ratio x%.2f"
                 % (m["bridge_eps"], m["bridge_s"], m["eps_ratio"]))
        L.append("   Kafka reference (pre-encoded)         %10.0f msgs/s    (alone, no Redis)  "
                 "ratio x%.2f" % (m["ref_eps"], m["ref_eps_ratio"]))
        L.append("   Kafka reference                       %10.2f us CPU/msg  (%d-byte value, 1 "
                 "header)" % (m["ref_cpu_us_per_msg"], m["ref_value_bytes"]))
        L.append("   bridge                                %10.2f us CPU/event              "
                 "ratio x%.2f" % (m["bridge_cpu_us_per_event"], m["cpu_ratio"]))
        L.append("   Kafka reference paced at the bridge's rate %5.2f us CPU/msg  (context)      "
                 "ratio x%.2f" % (m["ref_paced_cpu_us_per_msg"], m["cpu_ratio_paced"]))
        L.append("     bridge: loop thread %.2f us, librdkafka threads %.2f us" % (
            m["loop_cpu_us_per_event"], m["rdk_cpu_us_per_event"]))
        L.append("   per run: ceiling/s  bridge/s (ratio)  CPU us bridge/ref (ratio)  received  "
                 "delivered  Redis kills  others' CPU s")
        for r in runs_:
            L.append("     %d  %9.0f %9.0f (x%.2f)   %5.2f/%5.2f (x%.2f)   %8d  %8d   %d   %6.2f" % (
                r["run"], r["ceiling_eps"], r["bridge_eps"], r["eps_ratio"],
                r["bridge_cpu_us_per_event"], r["ref_cpu_us_per_msg"], r["cpu_ratio"],
                r["received"], r["delivered"], r["redis_output_buffer_kills"],
                r["cpu_s_others"]))
        L.append("   CPU s during the bridge's burst: redis %.2f, publisher %.2f, mock Kafka %.2f, "
                 "bridge %.2f + %.2f, everything else on the machine %.2f (of %.2f s wall x 2 "
                 "cores)" % (m["cpu_s_redis"], m["cpu_s_publisher"], m["cpu_s_mock"],
                             m["cpu_s_bridge_main"], m["cpu_s_bridge_rdk"], m["cpu_s_others"],
                             m["bridge_s"]))
        L.append("   counting subscriber's own CPU         %10.2f us/msg (redis %.2f s CPU)" % (
            m["ceiling_sub_cpu_us_per_msg"], m["ceiling_cpu_s_redis"]))
        L.append("   bridge RSS peak during the burst      %10.1f MB" % (m["bridge_hwm_kb"] / 1024))
    if "refs_only" in out:
        m = out["refs_only"]["median"]
        L.append("1. Burst references only (%d events): ceiling %.0f events/s; Kafka reference "
                 "%.0f msgs/s, %.2f us CPU/msg" % (m["n"], m["ceiling_eps"], m["ref_eps"],
                                                   m["ref_cpu_us_per_msg"]))
    if "naive" in out:
        nv = out["naive"]
        L.append("   naive Python bridge: got %d of %d (%.1f%% lost); disconnected by Redis "
                 "(output buffer limit): %s" % (nv["got"], nv["n"], nv["lost_pct"],
                                                 nv["disconnected"]))
    if "latency" in out:
        m = out["latency"]["median"]
        L.append("")
        L.append("2. Latency at a steady %d events/s for %d events (bridge histogram, "
                 "bucket-interpolated)" % (m["rate"], m["n"]))
        L.append("   p50 %.2f ms   p99 %.2f ms   CPU %.2f us/event" % (
            m["p50_ms"], m["p99_ms"], m["cpu_us_per_event"]))
        if m.get("ref_p50_ms") is not None:
            L.append("   Kafka reference at the same rate (produce -> delivery report, exact): "
                     "p50 %.2f ms   p99 %.2f ms   CPU %.2f us/msg" % (
                         m["ref_p50_ms"], m["ref_p99_ms"], m["ref_cpu_us_per_msg"]))
    if "memory" in out:
        mem = out["memory"]
        L.append("")
        L.append("3. Memory: idle RSS %.1f MB (subscribed, connected, no event yet)" % (
            mem["idle_rss_kb_median"] / 1024))
        L.append("   bound      idle+warm   at 1x     at 2x     at 3x     bytes/queued event  "
                 "dropped")
        for bound, m in mem["median"].items():
            L.append("   %-9s  %6.1f MB  %6.1f MB %6.1f MB %6.1f MB  %8.0f            %d" % (
                bound, m["idle_warm_rss_kb"] / 1024, m["rss_1x_kb"] / 1024,
                m["rss_2x_kb"] / 1024, m["rss_3x_kb"] / 1024, m["bytes_per_queued_event"],
                m["dropped"]))
        L.append("   idle CPU: %.2f%% of one core" % median(
            [r["idle_cpu_pct"] for r in mem["runs"]]))
    if "mass_expiry" in out:
        m = out["mass_expiry"]["median"]
        L.append("")
        L.append("4. %d keys armed with one deadline (times from the deadline)" % m["n"])
        L.append("   Redis: first announcement +%.3f s, last +%.3f s (%.0f events/s)" % (
            m["first_announce_after_deadline_s"], m["redis_announce_s"],
            m["redis_events_per_s"]))
        L.append("   bridge: last event on Kafka +%.3f s   ratio x%.3f   CPU %.2f us/event" % (
            m["bridge_done_s"], m["ratio"], m["bridge_cpu_us_per_event"]))
    if "callgrind" in out:
        m = out["callgrind"]["median"]
        L.append("")
        L.append("5. Instructions per event under callgrind (%d-event burst, deterministic)" %
                 m["n"])
        L.append("                       instructions  system calls (per event)")
        L.append("   counting subscriber %10.0f  %8.3f" % (m["sub_ir_per_event"],
                                                       m["sub_syscalls_per_event"]))
        L.append("   Kafka reference     %10.0f  %8.3f   (linger.ms %s, both: CG_LINGER_MS)" % (
            m["ref_ir_per_event"], m["ref_syscalls_per_event"], CG_LINGER_MS))
        L.append("   floor (sum)         %10.0f  %8.3f" % (
            m["floor_ir_per_event"], m["sub_syscalls_per_event"] + m["ref_syscalls_per_event"]))
        L.append("   bridge              %10.0f  %8.3f   ratio x%.2f" % (
            m["bridge_ir_per_event"], m["bridge_syscalls_per_event"], m["ratio"]))
        L.append("   by kind of work (self instructions/event): above floor = bridge - "
                 "subscriber - reference")
        for k, b, sub, ref, above_ in out["callgrind"]["by_kind"]:
            L.append("     %6.0f = %6.0f - %6.0f - %6.0f  %s" % (above_, b, sub, ref, k))
        L.append("   bridge functions above the floor (self instructions/event):")
        for fn, ir in out["callgrind"]["above_floor_top"][:10]:
            L.append("     %8.0f  %s" % (ir, fn[:90]))
    if "steady" in out:
        L.append("")
        L.append("6. CPU per event at steady rates against the floor at the same rate (counting "
                 "subscriber on the same stream + Kafka reference paced, linger.ms %s)" %
                 BRIDGE_LINGER_MS)
        for rate, r in out["steady"].items():
            m = r["median"]
            L.append("   %6s/s: bridge %6.2f us/event; floor %6.2f (subscriber %5.2f + reference "
                     "%5.2f): x%.2f;  p99 %.2f ms (reference %.2f ms)" % (
                         rate, m["bridge_cpu_us_per_event"], m["floor_cpu_us_per_event"],
                         m["sub_cpu_us_per_event"], m["ref_cpu_us_per_msg"], m["ratio"],
                         m["p99_ms"], m["ref_p99_ms"]))
            L.append("            context switches per event: bridge %.2f; subscriber %.2f + "
                     "reference %.2f" % (m["bridge_csw_per_event"], m["sub_csw_per_event"],
                                         m["ref_csw_per_event"]))
    if "syscalls" in out:
        L.append("")
        L.append("7. System calls per event at steady rates (strace -c, every thread of the bridge)")
        for rate, r in out["syscalls"].items():
            pe = r["per_event"]
            L.append("   %6s/s: %.2f per event: %s" % (rate, sum(pe.values()), ", ".join(
                "%s %.2f" % kv for kv in list(pe.items())[:8])))
    L.append("")
    L.append("Targets (issue 3, item 10; issue 16: instructions and steady rates vs the floor)")
    for name, measured, target, ok in v:
        L.append("   %-4s %-52s %-28s %s" % ("PASS" if ok else "FAIL", name, measured, target))
    return "\n".join(L) + "\n"


def real_kafka_version():
    return os.environ.get("EB_KAFKA_VERSION", "4.4.0")


def versions():
    try:
        rv = subprocess.run(["redis-server", "--version"], capture_output=True,
                            text=True).stdout.split()[2]
    except Exception:
        rv = "?"
    return "redis-server %s" % rv


def main():
    global BRIDGE_LINGER_MS, CG_LINGER_MS
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--rundir", required=True)
    ap.add_argument("--results", required=True, help="where summary.txt/json go")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--kafka", choices=("mock", "real"), default="mock",
                    help="produce to librdkafka's mock cluster (default) or to a real Kafka "
                    "cluster (tests/support/kafka_cluster.py: KRaft controller + 3 brokers, "
                    "min.insync.replicas=2; jars from scripts/fetch-kafka.sh)")
    ap.add_argument("--only", default=None,
                    help="scenarios to run; 'refs' runs only the burst's references; "
                    "'profile' (not in the default) records the bridge under perf")
    ap.add_argument("--burst-n", type=int, default=500000)
    ap.add_argument("--steady-rates", default="1000,10000")
    ap.add_argument("--steady-seconds", type=float, default=10)
    ap.add_argument("--bridge-bin", default=None,
                    help="another expiry-bridge binary to measure (e.g. a build of main, for "
                    "before/after); the bench tools stay this tree's")
    ap.add_argument("--linger-ms", default=None,
                    help="the bridge's default linger.ms when it is not the built-in one "
                    "(the references at a steady rate use it)")
    ap.add_argument("--cg-n", type=int, default=CG_N,
                    help="events per program in the callgrind scenario")
    ap.add_argument("--cg-runs", type=int, default=3,
                    help="callgrind runs (medians; the counts move by ~1%%)")
    ap.add_argument("--cg-linger-ms", default=CG_LINGER_MS,
                    help="linger.ms of the bridge and the reference under callgrind")
    ap.add_argument("--rate", type=int, default=10000)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--bounds", default="20000,100000")
    ap.add_argument("--expiry-n", type=int, default=1000000)
    ap.add_argument("--lead-ms", type=int, default=7000)
    ap.add_argument("--client", action="append", default=[], metavar="NAME=VALUE",
                    help="extra librdkafka property for the bridge (kafka.client) and the "
                    "Kafka reference, to evaluate a change, e.g. linger.ms=1")
    args = ap.parse_args()
    KAFKA["kind"] = args.kafka
    if args.linger_ms:
        BRIDGE_LINGER_MS = args.linger_ms
    CG_LINGER_MS = args.cg_linger_ms
    # On real Kafka: the throughput, latency and mass-expiry scenarios (the
    # memory bound and the naive bridge say nothing more there).
    if args.only is None:
        args.only = ("burst,latency,expiry" if args.kafka == "real" else
                     "burst,naive,latency,memory,expiry")
    only = set(args.only.split(","))
    for kv in args.client:
        k, _, v = kv.partition("=")
        CLIENT_PROPS[k] = v
    targets = {"eps_ratio": 0.5, "cpu_ratio": 1.5, "p99_ms": 10, "idle_rss_mb": 30,
               "mass_ratio": 1.1, "ir_ratio": 1.3, "steady_ratio": 1.3}

    def on_term(sig, frame):
        raise SystemExit("bench.py: signal %d" % sig)
    signal.signal(signal.SIGTERM, on_term)

    ctx = Ctx(args)
    if args.bridge_bin:
        ctx.bin = args.bridge_bin
    out = {"when": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "client_props": CLIENT_PROPS,
           "kafka": ("real Apache Kafka %s: KRaft controller + 3 brokers, rf 3, "
                     "min.insync.replicas=2" % real_kafka_version()) if args.kafka == "real"
           else "librdkafka mock cluster, 3 brokers",
           "machine": "%d cores, %s" % (os.cpu_count(), os.uname().release),
           "versions": versions(), "targets": targets, "runs": args.runs,
           "rundir": args.rundir}
    t0 = time.monotonic()
    try:
        ctx.redis = Redis(ctx.procs, args.rundir)
        limit = ctx.redis.r.config_get("client-output-buffer-limit")
        out["redis_client_output_buffer_limit"] = limit.get("client-output-buffer-limit")
        if "burst" in only or "refs" in only:
            s1_burst(ctx, args.burst_n, args.runs, out, refs_only="burst" not in only)
        if "naive" in only:
            if not ctx.mock:
                ctx.fresh_mock()
            s1_naive(ctx, args.burst_n, out)
        if "latency" in only:
            s2_latency(ctx, args.rate, args.seconds, args.runs, out)
        if "memory" in only:
            s3_memory(ctx, [int(x) for x in args.bounds.split(",")], args.runs, out)
        if "expiry" in only:
            s4_mass_expiry(ctx, args.expiry_n, args.lead_ms, args.runs, out)
        if "profile" in only:
            s5_profile(ctx, args.burst_n, out)
        if "callgrind" in only:
            s6_callgrind(ctx, args.cg_n, args.cg_runs, out)
        if "syscalls" in only:
            s8_syscalls(ctx, [int(x) for x in args.steady_rates.split(",")], args.steady_seconds,
                        out)
        if "steady" in only:
            s7_steady(ctx, [int(x) for x in args.steady_rates.split(",")], args.steady_seconds,
                      args.runs, out)
    except BenchError as e:
        print("\nBENCH FAILED: %s\n(raw results and logs: %s)" % (e, args.rundir),
              file=sys.stderr, flush=True)
        return 1
    finally:
        if ctx.mock:
            ctx.mock.stop()
        if ctx.redis:
            ctx.redis.stop()
        ctx.procs.stop_all()
    out["elapsed_s"] = time.monotonic() - t0
    out["quiet_wait"] = dict(QUIET)
    v = verdicts(out, targets)
    out["verdicts"] = [{"target": n, "measured": m, "wanted": w, "pass": ok}
                       for n, m, w, ok in v]
    text = summary_text(out, v, args.runs)
    base = "summary" if args.kafka == "mock" else "summary-real"
    for d in (args.rundir, args.results):
        with open(os.path.join(d, base + ".txt"), "w") as f:
            f.write(text)
        with open(os.path.join(d, base + ".json"), "w") as f:
            json.dump(out, f, indent=2)
    print()
    print(text, end="")
    print("(%.0f s; raw results and logs in %s)" % (out["elapsed_s"], args.rundir))
    loss = [n for n, _, _, ok in v if n.startswith("zero loss") and not ok]
    if loss:
        print("\nBENCH FAILED: events were lost: %s (per-run counts above; bridge and Redis "
              "logs in %s)" % ("; ".join(loss), args.rundir), file=sys.stderr, flush=True)
        return 1
    return 0 if all(ok for *_, ok in v) else 2


if __name__ == "__main__":
    sys.exit(main())
