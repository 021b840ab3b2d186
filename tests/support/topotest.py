"""topotest -- Redis Cluster and Sentinel on loopback, for topology tests.

RedisCluster starts N masters with R replicas each (redis-cli --cluster
create) and can fail a master over (CLUSTER FAILOVER), kill one and wait
for its replica's promotion, add a master and move slots to it (with their
keys). SentinelGroup starts a master, a replica and three sentinels, and
fails over through them. Every process is started by this module, on
127.0.0.1, in a temp dir, and stopped by PID on cleanup() whatever
happened; every wait polls a condition with a deadline.

The server binary is EB_REDIS_SERVER (default redis-server) and the CLI
EB_REDIS_CLI (default redis-cli), so the same tests run against Valkey.
Sentinels are the server binary with --sentinel.
"""

import os
import random
import socket
import subprocess
import time

from ebtest import (REDIS_CLI, REDIS_SERVER, RedisServer, config_yaml, free_port,  # noqa: F401
                    http_config, redis_client, wait_for)

SERVER = REDIS_SERVER
CLI = REDIS_CLI


def topology_config(url, brokers, routes, http_port, redis="", sections="", **kw):
    """ebtest.config_yaml for a Cluster or Sentinel URL (or a standalone one
    whose demotion is watched): topology checked every 500 ms, so a
    failover is noticed within that; the HTTP server on http_port; then
    `sections` (ledger, coordination). Other keywords go to config_yaml."""
    return config_yaml(url, brokers, routes, redis="  topology_interval: 500ms\n" + redis,
                       extra=sections + http_config(http_port), **kw)


def _port_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def cluster_port():
    """A port P with P and P + 10000 (the cluster bus) free a moment ago.

    Redis refuses a cluster port above 55535: the bus must fit below 65536,
    so ports come from 20000..55535, not the kernel's ephemeral range."""
    for _ in range(1000):
        p = random.randint(20000, 55535)
        if _port_free(p) and _port_free(p + 10000):
            return p
    raise AssertionError("no free port pair for a cluster node")


class Node(RedisServer):
    """One server process (data node or sentinel) in its own directory:
    ebtest's RedisServer, started as a sentinel when given its config."""

    LOG = "server.log"

    def __init__(self, port, args, sentinel_conf=None):
        super().__init__(port, args, dir_prefix="node%d" % port)
        self.sentinel_conf = sentinel_conf

    def command(self):
        if self.sentinel_conf is None:
            return super().command()
        conf = self.dir.file("sentinel.conf", self.sentinel_conf)
        return [SERVER, conf, "--sentinel", "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", self.dir.path, "--logfile", os.path.join(self.dir.path, self.LOG),
                "--daemonize", "no"]

    def role(self):
        try:
            r = self.client().execute_command("ROLE")
            return r[0].decode() if isinstance(r[0], bytes) else r[0]
        except Exception:
            return None


class RedisCluster:
    """masters x (1 + replicas) cluster nodes; slots spread by redis-cli
    (by hand below 3 masters, which redis-cli refuses)."""

    def __init__(self, masters=3, replicas=1, node_timeout_ms=2000, args=()):
        self.nmasters = masters
        self.nreplicas = replicas
        self.node_timeout_ms = node_timeout_ms
        self.args = list(args)
        self.nodes = {}  # port -> Node

    def _node_args(self, port, d):
        return ["--cluster-enabled", "yes",
                "--cluster-config-file", os.path.join(d, "nodes.conf"),
                "--cluster-node-timeout", str(self.node_timeout_ms)] + self.args

    def _start_node(self):
        port = cluster_port()
        n = Node(port, [])
        n.args = self._node_args(port, n.dir.path)
        self.nodes[port] = n.start()
        return n

    def start(self):
        try:
            for _ in range(self.nmasters * (1 + self.nreplicas)):
                self._start_node()
            if self.nmasters >= 3:
                self._create()
            else:
                self._create_small()
            self.wait_healthy()
            wait_for(self._replicas_placed, 30, interval=0.1, what="replicas attached")
        except BaseException:
            self.cleanup()
            raise
        return self

    def _create(self, cli=(), port_of=lambda p: p):
        """redis-cli --cluster create (cli: its connection options) over the
        nodes, each introduced by port_of(its plaintext port)."""
        addrs = ["127.0.0.1:%d" % port_of(p) for p in self.nodes]
        subprocess.run([CLI] + list(cli) + ["--cluster", "create"] + addrs +
                       ["--cluster-replicas", str(self.nreplicas), "--cluster-yes"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       timeout=60)

    def _create_small(self):
        """redis-cli --cluster create wants 3 masters at least: build a
        1- or 2-master cluster by hand (slots split evenly, MEET, then
        each replica REPLICATEs its master)."""
        ports = sorted(self.nodes)
        masters = ports[:self.nmasters]
        per = 16384 // self.nmasters
        for i, p in enumerate(masters):
            hi = 16383 if i == self.nmasters - 1 else (i + 1) * per - 1
            self.nodes[p].client().execute_command("CLUSTER", "ADDSLOTSRANGE", i * per, hi)
        for p in ports[1:]:
            self.nodes[p].client().execute_command("CLUSTER", "MEET", "127.0.0.1", ports[0])
        wait_for(lambda: all(len(self.node_ids_of(p)) == len(ports) for p in ports), 20,
                 interval=0.1, what="every node met")
        ids = self.node_ids_of(ports[0])
        for j, p in enumerate(ports[self.nmasters:]):
            master = masters[j % self.nmasters]
            self.nodes[p].client().execute_command("CLUSTER", "REPLICATE", ids[master])

    def node_ids_of(self, port):
        text = self.nodes[port].client().execute_command("CLUSTER", "NODES")
        if isinstance(text, bytes):
            text = text.decode()
        return {int(l.split()[1].split("@")[0].rsplit(":", 1)[1]): l.split()[0]
                for l in text.strip().splitlines()}

    # ---- state, as the cluster reports it ------------------------------

    def _any_alive(self):
        for n in self.nodes.values():
            if n.alive():
                return n
        raise AssertionError("no cluster node is running")

    def shards(self, via=None):
        """{master_port: (nslots, [replica ports])} as CLUSTER NODES says
        (failed nodes left out)."""
        n = self.nodes[via] if via else self._any_alive()
        text = n.client().execute_command("CLUSTER", "NODES")
        if isinstance(text, bytes):
            text = text.decode()
        masters, replicas, port_of = {}, {}, {}
        for line in text.strip().splitlines():
            f = line.split()
            port_of[f[0]] = int(f[1].split("@")[0].rsplit(":", 1)[1])
            flags = f[2].split(",")
            if "fail" in flags or "noaddr" in flags:
                continue
            if "master" in flags:
                nslots = 0
                for s in f[8:]:
                    if not s.startswith("["):
                        lo, _, hi = s.partition("-")
                        nslots += int(hi or lo) - int(lo) + 1
                masters[f[0]] = nslots
            else:
                replicas.setdefault(f[3], []).append(port_of[f[0]])
        return {port_of[i]: (n, sorted(replicas.get(i, []))) for i, n in masters.items()}

    def _replicas_placed(self):
        """Every master has its replicas, and every replica finished its
        first sync: a replica that never synced is not eligible to take
        over (its data counts as too old), so a kill before that would
        leave the shard without a master."""
        sh = self.shards()
        with_slots = [r for s, r in sh.values() if s > 0]
        if len(sh) != self.nmasters or any(len(r) != self.nreplicas for r in with_slots):
            return False
        return all(self.nodes[p].client().info("replication").get("master_link_status") == "up"
                   for r in with_slots for p in r)

    def master_ports(self):
        return sorted(p for p, (s, _) in self.shards().items() if s > 0)

    def replica_of(self, master_port, timeout=15):
        """A replica of the master (after a failover the demoted master
        shows up as one once the cluster's gossip caught up)."""
        reps = wait_for(lambda: self.shards().get(master_port, (0, []))[1], timeout,
                        interval=0.05, what="a replica of %d" % master_port)
        return reps[0]

    def wait_healthy(self, timeout=30):
        """Every live node says cluster_state:ok and all slots are served."""
        def ok():
            for n in self.nodes.values():
                if not n.alive():
                    continue
                info = n.client().execute_command("CLUSTER", "INFO")
                if isinstance(info, bytes):
                    info = info.decode()
                if "cluster_state:ok" not in info or "cluster_slots_assigned:16384" not in info:
                    return False
            return True
        wait_for(ok, timeout, interval=0.1, what="cluster healthy")

    def writer(self):
        """A small key writer that follows MOVED and failovers by itself
        (redis-py's cluster client keeps retrying dead nodes for minutes)."""
        return ClusterWriter(self)

    def client(self):
        """A redis-py cluster client (follows MOVED)."""
        from redis.cluster import RedisCluster as RC
        n = self._any_alive()
        return RC(host="127.0.0.1", port=n.port, socket_timeout=5)

    # ---- changes --------------------------------------------------------

    def failover(self, master_port, timeout=30):
        """CLUSTER FAILOVER on the master's replica: the master is demoted to
        a replica and keeps its connections. Returns the new master's port."""
        rep = self.replica_of(master_port)
        self.nodes[rep].client().execute_command("CLUSTER", "FAILOVER")
        wait_for(lambda: self.nodes[rep].role() == "master" and
                 self.nodes[master_port].role() == "slave", timeout, interval=0.05,
                 what="replica %d promoted" % rep)
        self.wait_healthy(timeout)
        wait_for(self._replicas_placed, timeout, interval=0.1, what="demoted master in sync")
        return rep

    def kill_master(self, master_port, timeout=30):
        """SIGKILL a master; wait until the cluster promoted its replica.
        Returns the new master's port."""
        rep = self.replica_of(master_port)
        self.nodes[master_port].kill()
        wait_for(lambda: self.nodes[rep].role() == "master", timeout, interval=0.05,
                 what="replica %d promoted after SIGKILL of %d" % (rep, master_port))
        self.wait_healthy(timeout)
        return rep

    def add_master(self, timeout=30):
        """Start an empty node and join it as a master (no slots yet)."""
        n = self._start_node()
        seed = self.master_ports()[0]
        subprocess.run([CLI, "--cluster", "add-node", "127.0.0.1:%d" % n.port,
                        "127.0.0.1:%d" % seed], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=60)
        wait_for(lambda: n.port in self.shards(), timeout, interval=0.1,
                 what="node %d joined" % n.port)
        return n.port

    def forget_failed(self):
        """Make every live node forget failed nodes (a SIGKILLed master that
        was replaced): redis-cli --cluster refuses to reshard while one is
        listed."""
        n = self._any_alive()
        text = n.client().execute_command("CLUSTER", "NODES")
        if isinstance(text, bytes):
            text = text.decode()
        dead = [l.split()[0] for l in text.strip().splitlines() if "fail" in l.split()[2].split(",")]
        for d in dead:
            for node in self.nodes.values():
                if node.alive():
                    try:
                        node.client().execute_command("CLUSTER", "FORGET", d)
                    except Exception:
                        pass  # the node itself, or it forgot already
        return len(dead)

    def _agrees(self, port):
        """Every live node knows every other live node, and redis-cli's
        check passes."""
        live = [n for n in self.nodes.values() if n.alive()]
        views = []
        for n in live:
            text = n.client().execute_command("CLUSTER", "NODES")
            if isinstance(text, bytes):
                text = text.decode()
            views.append({l.split()[0] for l in text.strip().splitlines()
                          if "fail" not in l.split()[2].split(",")})
        if any(v != views[0] for v in views) or len(views[0]) != len(live):
            return False
        r = subprocess.run([CLI, "--cluster", "check", "127.0.0.1:%d" % port],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=30)
        return r.returncode == 0 and "[ERR]" not in r.stdout

    def move_slots(self, to_port, count, timeout=120):
        """Move `count` slots (with their keys, by MIGRATE) to a master, once
        every node agrees on the configuration (redis-cli refuses before)."""
        self.forget_failed()
        wait_for(lambda: self._agrees(to_port), timeout, interval=0.2,
                 what="cluster nodes agree before resharding")
        self.wait_healthy(timeout)
        ids = self.node_ids()
        r = subprocess.run([CLI, "--cluster", "reshard", "127.0.0.1:%d" % to_port,
                            "--cluster-from", "all", "--cluster-to", ids[to_port],
                            "--cluster-slots", str(count), "--cluster-yes"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=timeout)
        if r.returncode != 0:
            raise AssertionError("redis-cli --cluster reshard failed: %s" % r.stdout[-2000:])
        self.wait_healthy(timeout)

    def node_ids(self):
        n = self._any_alive()
        text = n.client().execute_command("CLUSTER", "NODES")
        if isinstance(text, bytes):
            text = text.decode()
        return {int(l.split()[1].split("@")[0].rsplit(":", 1)[1]): l.split()[0]
                for l in text.strip().splitlines()}

    def cleanup(self):
        for n in list(self.nodes.values()):
            n.cleanup()

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.cleanup()


class SentinelGroup:
    """A master, `replicas` replicas and `sentinels` sentinels monitoring it
    as `name`; quorum 2, down-after 1 s, failover-timeout 5 s."""

    def __init__(self, name="mymaster", replicas=1, sentinels=3, sentinel_password=None):
        self.name = name
        self.nreplicas = replicas
        self.nsentinels = sentinels
        self.sentinel_password = sentinel_password
        self.data = []       # Node: data[0] is the first master
        self.sentinels = []  # Node

    def start(self):
        try:
            m = self._data_node()
            for _ in range(self.nreplicas):
                self._data_node(replica_of=m)
            wait_for(self._replicas_synced, 20, interval=0.05, what="replicas in sync")
            for _ in range(self.nsentinels):
                self.sentinels.append(self._sentinel(m).start())
            wait_for(self._sentinels_agree, 20, interval=0.1, what="sentinels see every node")
        except BaseException:
            self.cleanup()
            raise
        return self

    # ---- hooks TLS variants (tlstest) override ---------------------------

    def _node_args(self, port):
        """More server arguments for a data node on port."""
        return []

    def _sentinel_head(self, port):
        """Lines opening the config of a sentinel on port."""
        return ""

    def _address(self, port):
        """The port others reach the node (data or sentinel) on port at."""
        return port

    def _plain(self, port):
        """The node's own port, from the port the sentinels name."""
        return port

    # ----------------------------------------------------------------------

    def _data_node(self, replica_of=None):
        port = free_port()
        args = self._node_args(port)
        if replica_of is not None:
            args += ["--replicaof", "127.0.0.1", str(self._address(replica_of.port))]
        n = Node(port, args).start()
        self.data.append(n)
        return n

    def _sentinel(self, master):
        port = free_port()
        conf = self._sentinel_head(port) + (
            "sentinel monitor %s 127.0.0.1 %d 2\n"
            "sentinel down-after-milliseconds %s 1000\n"
            "sentinel failover-timeout %s 5000\n"
            "sentinel parallel-syncs %s 1\n" % (self.name, self._address(master.port),
                                               self.name, self.name, self.name))
        if self.sentinel_password:
            conf += "requirepass %s\n" % self.sentinel_password
        s = Node(port, [], sentinel_conf=conf)
        s.client = self._sentinel_client_of(s)
        return s

    def _sentinel_client_of(self, node):
        pw = self.sentinel_password

        def client(**kw):
            kw.setdefault("password", pw)
            return redis_client(node.port, **kw)
        return client

    def _replicas_synced(self):
        """Every replica connected and online: past its full sync, so it
        acknowledges writes (WAIT) as they come."""
        info = self.data[0].client().info("replication")
        online = [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict) and
                  v.get("state") == "online"]
        return len(online) >= self.nreplicas

    def _sentinels_agree(self):
        for s in self.sentinels:
            st = s.client().execute_command("SENTINEL", "MASTER", self.name)
            d = dict(zip(st[::2], st[1::2]))
            d = {k.decode() if isinstance(k, bytes) else k: v for k, v in d.items()}
            if int(d.get("num-slaves", 0)) < self.nreplicas or \
                    int(d.get("num-other-sentinels", 0)) < self.nsentinels - 1:
                return False
        return True

    def sentinel_addrs(self):
        return ",".join("127.0.0.1:%d" % self._address(s.port) for s in self.sentinels)

    def master_port(self):
        """The master the sentinels name now."""
        r = self.sentinels[0].client().execute_command(
            "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.name)
        return self._plain(int(r[1]))

    def node(self, port):
        for n in self.data:
            if n.port == port:
                return n
        raise KeyError(port)

    def failover(self, timeout=30):
        """SENTINEL FAILOVER: returns the new master's port once it is a
        master and every sentinel names it."""
        old = self.master_port()
        self.sentinels[0].client().execute_command("SENTINEL", "FAILOVER", self.name)
        return self._wait_switch(old, timeout)

    def kill_master(self, timeout=30):
        old = self.master_port()
        self.node(old).kill()
        return self._wait_switch(old, timeout)

    def _wait_switch(self, old, timeout):
        def switched():
            ports = set()
            for s in self.sentinels:
                if not s.alive():
                    continue
                r = s.client().execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.name)
                ports.add(self._plain(int(r[1])))
            if len(ports) != 1 or old in ports:
                return None
            new = ports.pop()
            return new if self.node(new).role() == "master" else None
        return wait_for(switched, timeout, interval=0.1, what="sentinels switched master")

    def cleanup(self):
        for n in self.sentinels + self.data:
            n.cleanup()

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.cleanup()


def crc16_slot(key):
    """The Cluster slot of key (bytes or str): CRC16-XMODEM of the hash tag
    or the key, mod 16384 -- what core/keyslot.c computes."""
    if isinstance(key, str):
        key = key.encode()
    s = key.find(b"{")
    if s >= 0:
        e = key.find(b"}", s + 1)
        if e > s + 1:
            key = key[s + 1:e]
    crc = 0
    for b in key:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc & 16383


class ClusterWriter:
    """Writes keys to the master that serves their slot; on MOVED, ASK or a
    refused connection it re-reads the slot map from any live node and
    tries again (up to `timeout` seconds per key). pipelined() batches many
    commands per master, for arming thousands of timers."""

    def __init__(self, cluster, timeout=20):
        self.cluster = cluster
        self.timeout = timeout
        self.owner = {}
        self.conns = {}
        self.refresh()

    def refresh(self):
        owner = {}
        for n in self.cluster.nodes.values():
            if not n.alive():
                continue
            try:
                for lo, hi, master, *_ in n.client().execute_command("CLUSTER", "SLOTS"):
                    port = master[1]
                    for s in range(lo, hi + 1):
                        owner[s] = port
                break
            except Exception:
                continue
        self.owner = owner

    def _conn(self, port):
        if port not in self.conns:
            self.conns[port] = redis_client(port, socket_timeout=2)
        return self.conns[port]

    def execute(self, *args):
        """Run a one-key command (the key is args[1]) on its master."""
        return self.execute_for(args[1], *args)

    def execute_for(self, key, *args):
        """Run a command on the master of key's slot (every key the command
        names must share that slot: FCALL with hash-tagged keys)."""
        deadline = time.monotonic() + self.timeout
        slot = crc16_slot(key)
        while True:
            port = self.owner.get(slot)
            try:
                if port is None:
                    raise ConnectionError("slot %d unserved" % slot)
                return self._conn(port).execute_command(*args)
            except Exception as e:
                if time.monotonic() > deadline:
                    raise AssertionError("cannot write %r: %s" % (args[1], e))
                self.conns.pop(port, None)
                time.sleep(0.05)
                self.refresh()

    def set(self, key, value, px):
        return self.execute("SET", key, value, "PX", px)

    def pipelined(self, calls):
        """Run calls [(key, args), ...] pipelined per master; the ones a
        master refused (MOVED in a slot migration, a failover) are run
        again one by one with execute_for(). Returns the replies in order."""
        by_port = {}
        for i, (key, args) in enumerate(calls):
            by_port.setdefault(self.owner.get(crc16_slot(key)), []).append(i)
        out = [None] * len(calls)
        for port, idx in by_port.items():
            replies = None
            if port is not None:
                try:
                    pipe = self._conn(port).pipeline(transaction=False)
                    for i in idx:
                        pipe.execute_command(*calls[i][1])
                    replies = pipe.execute(raise_on_error=False)
                except Exception:
                    self.conns.pop(port, None)
            for j, i in enumerate(idx):
                r = replies[j] if replies is not None else None
                if replies is None or isinstance(r, Exception):
                    self.refresh()
                    r = self.execute_for(calls[i][0], *calls[i][1])
                out[i] = r
        return out

    def wait_replicated(self, timeout_ms=2000):
        """WAIT 1 on every master: what was written so far survives the
        loss of any one master (its replica has it)."""
        self.refresh()
        for port in sorted(set(self.owner.values())):
            n = self._conn(port).execute_command("WAIT", 1, timeout_ms)
            if n < 1:
                raise AssertionError("master %d: no replica acknowledged the writes" % port)
