#!/usr/bin/python3
"""kafka_cluster -- a real Apache Kafka cluster (4.x, KRaft) on loopback, for
the real-Kafka tests (tests/kafka/) and the benchmark (bench/ --kafka real).

One controller and three brokers, each its own JVM started from the release
jars that scripts/fetch-kafka.sh resolves into a cache outside the repo:

  node 0       process.roles=controller (the KRaft quorum, a single voter)
  nodes 1..3   process.roles=broker, min.insync.replicas=2,
               default.replication.factor=3, auto.create.topics.enable=false

Why a dedicated controller and not three combined broker+controller nodes:
with two of three combined nodes down the quorum is gone, so the survivor's
ISR can never shrink and acks=all produce requests just time out. With the
quorum outside the brokers, "two of three brokers down" is what it is in
production: the ISR shrinks to one and the leader answers
NOT_ENOUGH_REPLICAS until a second replica returns; "every broker down"
leaves the controller up, as a real outage of the broker tier does.

Python (tests share one cluster per module; a fresh topic per test):

    with KafkaCluster() as k:                 # ready: metadata shows every broker
        k.create_topic("t", partitions=8)     # rf 3 by default; waits for leaders + ISR
        k.leader("t", 0); k.kill(2); k.start(2); k.stop(3); k.stop_brokers()
        k.bootstrap                           # "127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3"

CLI (the same line protocol as tests/support/mock_kafka.c, so C and shell
tests and bench/bench.py drive either):

    kafka_cluster.py [--brokers 3] [--topic NAME:PARTS]... [--bench]
    -> BOOTSTRAP 127.0.0.1:P1,...   once every broker is in the metadata
    <- kill ID | stop ID | start ID | down [ID] | up [ID] | topic NAME PARTS [RF]
       | leader TOPIC PARTITION | quit
    -> ok [value]   or   error: <why>

`down`/`up` without an ID stop/start every broker (the controller stays).
Every JVM is stopped by PID on stdin EOF, SIGTERM, SIGINT, `quit` or any
error, and each JVM also dies with this process (PR_SET_PDEATHSIG): a
SIGKILLed test leaves no broker behind. Data lives in a temp dir that is
removed afterwards (EB_KAFKA_KEEP=1 keeps it, with the nodes' logs).

Environment: EB_SOURCE_DIR (to find scripts/fetch-kafka.sh), EB_KAFKA_HOME
(skip the fetch script: a directory with libs/ and log4j2.properties),
EB_KAFKA_VERSION / EB_KAFKA_CACHE (passed to the fetch script), EB_JAVA
(default: java on PATH).
"""

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("EB_SOURCE_DIR", os.path.abspath(os.path.join(HERE, "..", "..")))
CONTROLLER_ID = 0

# Test-speed settings. Each says why; none changes a guarantee under test.
BROKER_PROPS = {
    "min.insync.replicas": "2",
    "auto.create.topics.enable": "false",
    # The group coordinator's topic: 3 replicas like everything else, few
    # partitions so its creation at the first group join takes a moment.
    "offsets.topic.replication.factor": "3",
    "offsets.topic.num.partitions": "4",
    "transaction.state.log.replication.factor": "3",
    "transaction.state.log.min.isr": "2",
    "transaction.state.log.num.partitions": "4",
    # A group's first join otherwise waits 3 s for more members.
    "group.initial.rebalance.delay.ms": "0",
    # 2 shared cores: few threads per broker; small buffers on a small heap.
    "num.network.threads": "2",
    "num.io.threads": "2",
    "background.threads": "2",
    "num.replica.fetchers": "1",
    "log.cleaner.threads": "1",
    "log.cleaner.dedupe.buffer.size": str(8 << 20),
    # A stopped follower leaves the ISR when the controller fences it (its
    # heartbeats stop: broker.session.timeout.ms on the controller); a live
    # but lagging one after this long.
    "replica.lag.time.max.ms": "10000",
    "broker.heartbeat.interval.ms": "500",
}
CONTROLLER_PROPS = {
    # Defaults of created topics are the controller's in KRaft.
    "default.replication.factor": "3",
    "num.partitions": "1",
    "min.insync.replicas": "2",
    # A SIGKILLed broker is fenced (its partitions get new leaders, it
    # leaves every ISR) after 3 s without heartbeats instead of 9.
    "broker.session.timeout.ms": "3000",
    "broker.heartbeat.interval.ms": "500",
}


class KafkaError(AssertionError):
    """The cluster could not be set up or did not do what was asked."""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(cond, timeout, what, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise KafkaError("timed out after %.0fs waiting for %s" % (timeout, what))
        time.sleep(interval)  # poll interval, not synchronisation


def _die_with_parent():
    """preexec_fn: the JVM gets SIGKILL when the process that started it dies."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def kafka_home():
    """The directory holding libs/ and log4j2.properties: EB_KAFKA_HOME, or
    what scripts/fetch-kafka.sh prints (it resolves the jars when they are
    not cached yet). Raises KafkaError with the script's message otherwise."""
    home = os.environ.get("EB_KAFKA_HOME")
    if home:
        if not os.path.isdir(os.path.join(home, "libs")):
            raise KafkaError("EB_KAFKA_HOME=%s has no libs/ directory" % home)
        return home
    script = os.path.join(SOURCE_DIR, "scripts", "fetch-kafka.sh")
    try:
        p = subprocess.run([script], capture_output=True, text=True, timeout=1200)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise KafkaError("%s failed: %s" % (script, e)) from None
    if p.returncode != 0:
        raise KafkaError("the Kafka jars are not available (%s exited %d):\n%s" % (
            script, p.returncode, p.stderr.strip()))
    return p.stdout.strip().splitlines()[-1]


class Node:
    """One JVM: the controller (id 0) or a broker."""

    def __init__(self, cluster, node_id):
        self.cluster = cluster
        self.id = node_id
        self.port = _free_port()
        self.dir = os.path.join(cluster.dir, "node%d" % node_id)
        self.data = os.path.join(self.dir, "data")
        self.config = os.path.join(self.dir, "server.properties")
        self.log = os.path.join(self.dir, "console.log")
        self.proc = None
        os.makedirs(self.dir)

    @property
    def is_controller(self):
        return self.id == CONTROLLER_ID

    def write_config(self):
        c = self.cluster
        props = {"node.id": str(self.id), "log.dirs": self.data,
                 "controller.quorum.voters": "%d@127.0.0.1:%d" % (CONTROLLER_ID,
                                                                  c.controller.port),
                 "controller.listener.names": "CONTROLLER",
                 "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"}
        if self.is_controller:
            props.update({"process.roles": "controller",
                          "listeners": "CONTROLLER://127.0.0.1:%d" % self.port})
            props.update(CONTROLLER_PROPS)
        else:
            props.update({"process.roles": "broker",
                          "listeners": "PLAINTEXT://127.0.0.1:%d" % self.port,
                          "advertised.listeners": "PLAINTEXT://127.0.0.1:%d" % self.port,
                          "inter.broker.listener.name": "PLAINTEXT"})
            props.update(BROKER_PROPS)
        props.update(c.extra_props)
        with open(self.config, "w") as f:
            for k in sorted(props):
                f.write("%s=%s\n" % (k, props[k]))

    def java(self, main, args, **kw):
        c = self.cluster
        argv = [c.java] + c.jvm_opts + [
            "-Dlog4j2.configurationFile=" + os.path.join(c.home, "log4j2.properties"),
            "-Dkafka.logs.dir=" + self.dir,
            "-cp", os.path.join(c.home, "libs", "*"), main] + args
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent,
                                **kw)

    def start(self):
        if self.running():
            return
        logf = open(self.log, "a")
        logf.write("==== start %s\n" % time.strftime("%H:%M:%S"))
        logf.flush()
        try:
            self.proc = self.java("kafka.Kafka", [self.config], stdout=logf,
                                  stderr=subprocess.STDOUT)
        finally:
            logf.close()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal_stop(self, sig):
        if self.running():
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass

    def wait_stopped(self, timeout):
        """Wait for the JVM to exit; SIGKILL it after timeout. Returns its code."""
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def log_tail(self, n=15):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


class KafkaCluster:
    """A controller and `brokers` brokers on 127.0.0.1, each a JVM."""

    def __init__(self, brokers=3, heap="384m", bench=False, props=None):
        self.home = kafka_home()
        self.java = os.environ.get("EB_JAVA") or shutil.which("java") or "/usr/bin/java"
        if not os.path.exists(self.java):
            raise KafkaError("java not found (install default-jre-headless)")
        # Serial GC and C1 only: on 2 shared cores a broker's startup and
        # steady CPU matter more than peak throughput. The benchmark keeps
        # the full JIT (--bench), as a production broker has it.
        self.jvm_opts = ["-Xms%s" % heap, "-Xmx%s" % heap, "-XX:+UseSerialGC",
                         "-XX:+ExitOnOutOfMemoryError", "-XX:-UsePerfData",
                         "-Djava.awt.headless=true"]
        if not bench:
            self.jvm_opts.append("-XX:TieredStopAtLevel=1")
        self.extra_props = dict(props or {})
        self.dir = tempfile.mkdtemp(prefix="kafka.")
        self.controller = Node(self, CONTROLLER_ID)
        self.brokers = {i: Node(self, i) for i in range(1, brokers + 1)}
        self.bootstrap = ",".join("127.0.0.1:%d" % b.port for b in self.brokers.values())
        self._admin = None
        self._lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------

    def nodes(self):
        return [self.controller] + list(self.brokers.values())

    def start(self, broker_id=None, timeout=None):
        """start(): format every node's storage, start the JVMs, and wait
        until the metadata shows every broker (stops everything on failure).
        start(ID): start one stopped broker (same port, same data) and wait
        until it is back in the metadata."""
        if broker_id is not None:
            return self.start_brokers([broker_id], timeout or 90)
        timeout = timeout or 120
        try:
            t0 = time.monotonic()
            cluster_id = self._tool(["random-uuid"]).strip().splitlines()[-1]
            for n in self.nodes():
                n.write_config()
            # One StorageTool JVM per node, all at once: each costs ~1 s of CPU.
            procs = [(n, n.java("kafka.tools.StorageTool",
                                ["format", "-t", cluster_id, "-c", n.config, "--ignore-formatted"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
                     for n in self.nodes()]
            for n, p in procs:
                out, _ = p.communicate(timeout=120)
                if p.returncode != 0:
                    raise KafkaError("formatting node %d's storage failed (%d): %s" % (
                        n.id, p.returncode, out.strip()[-800:]))
            for n in self.nodes():
                n.start()
            self.wait_brokers(set(self.brokers), timeout)
            self.started_s = time.monotonic() - t0
            return self
        except BaseException:
            self.cleanup()
            raise

    def _tool(self, args):
        p = self.controller.java("kafka.tools.StorageTool", args, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
        out, _ = p.communicate(timeout=120)
        if p.returncode != 0:
            raise KafkaError("StorageTool %s failed (%d): %s" % (" ".join(args), p.returncode,
                                                                 out.strip()[-800:]))
        return out

    def cleanup(self):
        """Stop every JVM by PID (brokers first, then the controller) and
        remove the data, unless EB_KAFKA_KEEP=1."""
        if self._admin is not None:
            self._admin = None
        for b in self.brokers.values():
            b.signal_stop(signal.SIGTERM)
        for b in self.brokers.values():
            b.wait_stopped(30)
        self.controller.signal_stop(signal.SIGTERM)
        self.controller.wait_stopped(15)
        if os.environ.get("EB_KAFKA_KEEP") == "1":
            print("kafka_cluster: kept %s" % self.dir, file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    stop_all = cleanup

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.cleanup()

    # -- brokers ---------------------------------------------------------------

    def _broker(self, broker_id):
        try:
            return self.brokers[int(broker_id)]
        except (KeyError, ValueError):
            raise KafkaError("no broker %r (brokers are %s)" % (broker_id, sorted(self.brokers)))

    def kill(self, broker_id):
        """SIGKILL one broker: it vanishes without a controlled shutdown."""
        b = self._broker(broker_id)
        b.signal_stop(signal.SIGKILL)
        b.wait_stopped(10)

    def stop(self, broker_id, timeout=60):
        """SIGTERM one broker (controlled shutdown: its leaderships move
        first) and wait for the JVM to exit."""
        b = self._broker(broker_id)
        b.signal_stop(signal.SIGTERM)
        b.wait_stopped(timeout)

    def stop_brokers(self, ids=None, sig=signal.SIGTERM, timeout=60):
        """Stop several brokers at once (all by default); the controller stays."""
        bs = [self._broker(i) for i in (ids if ids is not None else self.brokers)]
        for b in bs:
            b.signal_stop(sig)
        for b in bs:
            b.wait_stopped(timeout)

    def start_brokers(self, ids=None, timeout=90, wait=True):
        ids = set(int(i) for i in (ids if ids is not None else self.brokers))
        for i in ids:
            self._broker(i).start()
        if wait:
            self.wait_brokers(ids, timeout)

    def running(self, broker_id):
        return self._broker(broker_id).running()

    def ensure_up(self, timeout=90):
        """Start whatever broker a previous test left stopped (a shared
        cluster must not carry one test's outage into the next)."""
        down = [i for i, b in self.brokers.items() if not b.running()]
        if down:
            self.start_brokers(down, timeout)
        else:
            self.wait_brokers(set(self.brokers), timeout)

    # The mock's names (tests/support/mock_kafka.c), so a test written
    # against ebtest.MockKafka runs here unchanged.
    def down(self, broker=None):
        self.stop_brokers(None if broker is None else [broker])

    def up(self, broker=None):
        self.start_brokers(None if broker is None else [broker])

    # -- metadata and admin --------------------------------------------------------

    def admin(self):
        from confluent_kafka.admin import AdminClient
        with self._lock:
            if self._admin is None:
                self._admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0,
                                           "reconnect.backoff.max.ms": 500})
            return self._admin

    def metadata(self, timeout=5):
        try:
            return self.admin().list_topics(timeout=timeout)
        except Exception:
            return None

    def live_brokers(self):
        md = self.metadata()
        return set(md.brokers) if md else set()

    def wait_brokers(self, ids, timeout=90):
        """Until every broker in ids is in the metadata (registered, unfenced)."""
        ids = set(ids)

        def cond():
            for i in ids:
                b = self.brokers[i]
                if not b.running():
                    raise KafkaError("broker %d exited (%s) while starting; its log:\n%s" % (
                        i, b.proc.returncode if b.proc else None, b.log_tail()))
            if not self.controller.running():
                raise KafkaError("the controller exited; its log:\n%s" % self.controller.log_tail())
            return ids <= self.live_brokers()
        _wait(cond, timeout, "brokers %s in the metadata" % sorted(ids), interval=0.2)

    def create_topic(self, name, partitions=1, rf=3, config=None, timeout=60):
        """Create a topic and wait until every partition has a leader and its
        full ISR (so acks=all with min.insync.replicas=2 succeeds at once)."""
        from confluent_kafka.admin import NewTopic
        fs = self.admin().create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=rf,
                      config=dict(config or {}))], request_timeout=timeout)
        try:
            fs[name].result(timeout)
        except Exception as e:
            raise KafkaError("creating topic %s: %s" % (name, e)) from None

        def ready():
            md = self.metadata()
            t = md and md.topics.get(name)
            if not t or t.error or len(t.partitions) != partitions:
                return False
            return all(p.leader >= 0 and len(p.isrs) == rf for p in t.partitions.values())
        _wait(ready, timeout, "topic %s: %d partitions with leaders and full ISR" % (
            name, partitions))

    def partitions(self, topic):
        """{partition: (leader, replicas, isr)} from the metadata."""
        md = self.metadata()
        t = md and md.topics.get(topic)
        if not t or t.error:
            raise KafkaError("topic %s is not in the metadata" % topic)
        return {p.id: (p.leader, list(p.replicas), list(p.isrs)) for p in t.partitions.values()}

    def leader(self, topic, partition=0):
        return self.partitions(topic)[partition][0]

    def wait_isr(self, topic, size, timeout=60):
        """Until every partition of topic has exactly `size` replicas in its ISR."""
        _wait(lambda: all(len(isr) == size for _, _, isr in self.partitions(topic).values()),
              timeout, "every ISR of %s at %d replicas" % (topic, size), interval=0.2)

    def end_offsets(self, topic):
        """{partition: high watermark}, read without a group."""
        from confluent_kafka import Consumer, TopicPartition
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "kafka-cluster-offsets",
                      "enable.auto.commit": False, "log_level": 0})
        try:
            return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                    for p in self.partitions(topic)}
        finally:
            c.close()

    def read_topic(self, topic, timeout=60):
        """Every message on the topic, read from offset 0 of each partition
        up to its high watermark without a consumer group (so nothing a
        group rebalance re-reads is counted twice): a list of
        (partition, offset, key, value)."""
        from confluent_kafka import Consumer, TopicPartition
        ends = self.end_offsets(topic)
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "kafka-cluster-reader",
                      "enable.auto.commit": False, "log_level": 0})
        try:
            c.assign([TopicPartition(topic, p, 0) for p, end in ends.items() if end > 0])
            got, pos = [], {p: 0 for p in ends}

            def done():
                for m in c.consume(1000, 0.2):
                    if m.error():
                        continue
                    got.append((m.partition(), m.offset(), m.key(), m.value()))
                    pos[m.partition()] = m.offset() + 1
                return all(pos[p] >= end for p, end in ends.items())
            _wait(done, timeout, "the whole of %s (%d messages)" % (topic, sum(ends.values())),
                  interval=0)
            return got
        finally:
            c.close()

    def logs_tail(self, n=10):
        return "\n".join("--- node %d (%s):\n%s" % (
            x.id, "running" if x.running() else "stopped", x.log_tail(n)) for x in self.nodes())



# ------------------------------------------------------------------------ CLI

def _command(k, line):
    """Run one protocol line; returns the answer's value ('' for plain ok)."""
    words = line.split()
    if not words:
        return None
    op, args = words[0], words[1:]
    if op in ("kill", "stop", "start") and len(args) == 1:
        {"kill": k.kill, "stop": k.stop, "start": k.start}[op](int(args[0]))
    elif op == "down" and len(args) <= 1:
        k.stop_brokers([int(args[0])] if args else None)
    elif op == "up" and len(args) <= 1:
        k.start_brokers([int(args[0])] if args else None)
    elif op == "topic" and len(args) in (2, 3):
        k.create_topic(args[0], int(args[1]), int(args[2]) if len(args) == 3 else 3)
    elif op == "leader" and len(args) == 2:
        return str(k.leader(args[0], int(args[1])))
    else:
        raise KafkaError("unknown command %r" % line.strip())
    return ""


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(description="A real Kafka cluster on loopback (see the "
                                 "module docstring for the stdin protocol).")
    ap.add_argument("--brokers", type=int, default=3)
    ap.add_argument("--topic", action="append", default=[], metavar="NAME:PARTS[:RF]")
    ap.add_argument("--heap", default="384m", help="each JVM's heap (-Xms = -Xmx)")
    ap.add_argument("--bench", action="store_true",
                    help="full JIT (the tests run C1 only, for startup speed)")
    ap.add_argument("--prop", action="append", default=[], metavar="NAME=VALUE",
                    help="extra server property for every node")
    a = ap.parse_args(argv)

    stopping = []

    def on_signal(sig, frame):
        # A signal during the cleanup (a driver that closes stdin and then
        # sends SIGTERM) must not cut it short: the JVMs are already being
        # stopped, and the data dir still has to go.
        if not stopping:
            raise SystemExit(128 + sig)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    k = None
    try:
        k = KafkaCluster(a.brokers, heap=a.heap, bench=a.bench,
                         props=dict(p.split("=", 1) for p in a.prop))
        k.start()
        for t in a.topic:
            parts = t.split(":")
            k.create_topic(parts[0], int(parts[1]) if len(parts) > 1 else 1,
                           int(parts[2]) if len(parts) > 2 else 3)
        print("BOOTSTRAP %s" % k.bootstrap, flush=True)
        for line in sys.stdin:
            if line.strip() == "quit":
                break
            try:
                v = _command(k, line)
            except (KafkaError, ValueError) as e:
                print("error: %s" % str(e).replace("\n", " | "), flush=True)
                continue
            if v is not None:
                print(("ok " + v) if v else "ok", flush=True)
        return 0
    except KafkaError as e:
        print("kafka_cluster: %s" % e, file=sys.stderr, flush=True)
        return 1
    finally:
        stopping.append(True)
        if k is not None:
            k.cleanup()


if __name__ == "__main__":
    sys.exit(main())
