#!/usr/bin/python3
"""bench/ledger/cluster.py -- ledgered throughput on Redis Cluster with 1 and
with 3 masters (issue 12, item 5; DESIGN §6: "ledgered throughput grows with
masters").

For each master count (--masters, default 1,3) and each rate (--rates), on a
fresh Redis Cluster (redis-server, --replicas per master, default 0), the
mock Kafka and the bridge built in BUILD: one `ledger: armed` route with
`ledger.buckets` (--buckets, default 16) ledgers, armed by the load generator
bench_ledger_load (--cluster 1 --buckets N: timer i goes to bucket i mod N,
key `order:{orders:<b>}:<i>`, to the master of its slot) at the rate for
--seconds, TTL 2 s, so expiries overlap arming. Until Kafka acknowledged
every timer (the bridge's eb_events_produced_total) and every ledger is
empty again, then:

  arm rate         what Redis accepted from the generator
  delivered rate   timers / (last acknowledgement - first deadline)
  lag              last acknowledgement - last deadline
  Redis CPU        used_cpu_user + used_cpu_sys per master over the phase,
                   per timer of the whole run; the busiest master's share
                   bounds the route: with a core per master it saturates at
                   about 1e6 / (busiest master's µs per timer) timers/s --
                   the "capacity" column, a projection from what was
                   measured (this machine has 2 cores for every process)
  bridge CPU       per timer

The run checks what it measured: every phase delivered all its timers
(eb_events_produced_total >= armed) and left every ledger empty.
Results: JSON on stdout (and --out FILE), a table on stderr.
"""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ledgerbench import cpu_seconds, emit, log, redis_cpu, run_load, setup  # noqa: E402


def add_arguments(p):
    p.add_argument("--masters", default="1,3")
    p.add_argument("--replicas", type=int, default=0, help="replicas per master")
    p.add_argument("--rates", default="10000,20000,40000")
    p.add_argument("--seconds", type=float, default=10.0, help="per phase")
    p.add_argument("--buckets", type=int, default=16)


ARGS = setup(__doc__.split("\n\n")[0], add_arguments)

from ebtest import Bridge, MockKafka, config_yaml, free_port, wait_for  # noqa: E402
from ledgertest import BUCKETED_ORDERS, bucket_ledger, ledger_route, scrape_metric  # noqa: E402
import topotest  # noqa: E402

TTL_MS = 2000


def fcalls(port):
    cs = topotest.redis_client(port).info("commandstats")
    return cs.get("cmdstat_fcall", {}).get("calls", 0)


def config(seed, brokers, http_port):
    """Default heartbeats and reconnects (fast=""): what is measured is a
    production configuration."""
    return config_yaml("redis-cluster://%s" % seed, brokers,
                       ledger_route("orders", BUCKETED_ORDERS),
                       redis="  topology_interval: 1s\n", fast="", client="{ linger.ms: 5 }",
                       queue="  queue: { max_events: 1000000 }",
                       extra='ledger:\n  buckets: %d\nhttp: { listen: "127.0.0.1:%d" }\n' % (
                           ARGS.buckets, http_port))


def ledger_entries(ports):
    n = 0
    for p in ports:
        c = topotest.redis_client(p)
        for b in range(ARGS.buckets):
            k = bucket_ledger(b)
            if topotest.crc16_slot(k) in owned_slots(p):
                n += c.zcard(k)
    return n


_SLOTS = {}


def owned_slots(port):
    if port not in _SLOTS:
        s = set()
        for lo, hi, master, *_ in topotest.redis_client(port).execute_command("CLUSTER", "SLOTS"):
            if master[1] == port:
                s.update(range(lo, hi + 1))
        _SLOTS[port] = s
    return _SLOTS[port]


def phase(masters, rate):
    _SLOTS.clear()
    cluster = topotest.RedisCluster(masters=masters, replicas=ARGS.replicas).start()
    kafka = bridge = None
    try:
        kafka = MockKafka(brokers=1, topics=["orders:16"]).start()
        ports = cluster.master_ports()
        http_port = free_port()
        bridge = Bridge(config("127.0.0.1:%d" % ports[0], kafka.bootstrap, http_port)).start()

        def m(name, **kw):
            try:
                return scrape_metric(http_port, name, **kw)
            except OSError:
                return -1  # not listening yet
        wait_for(lambda: m("eb_ledger_masters") == masters and m("eb_ledger_connected") == 1 and
                 m("eb_redis_node_subscribed") == masters, 30, interval=0.1,
                 what="the bridge on every master")
        buckets_per_master = {p: sum(1 for b in range(ARGS.buckets) if topotest.crc16_slot(
            "orders:%d" % b) in owned_slots(p)) for p in ports}
        total = int(rate * ARGS.seconds)
        cpu0 = cpu_seconds(bridge.proc.pid)
        rcpu0 = {p: redis_cpu(topotest.redis_client(p)) for p in ports}
        f0 = {p: fcalls(p) for p in ports}
        t_start = time.time()
        g = run_load(ARGS, ports[0], rate, ["--cluster", "1", "--mode", "ledger",
                                            "--ttl-ms", str(TTL_MS), "--prefix", "order:",
                                            "--buckets", str(ARGS.buckets), "--route", "orders"])
        t_gen_end = time.time()
        produced = lambda: m("eb_events_produced_total", route="orders")  # noqa: E731
        wait_for(lambda: produced() >= total, 600, interval=0.1,
                 what="%d timers acknowledged by Kafka" % total)
        t_done = time.time()
        wait_for(lambda: ledger_entries(ports) == 0, 120, interval=0.2,
                 what="every ledger acknowledged")
        cpu1 = cpu_seconds(bridge.proc.pid)
        per_master = {}
        for p in ports:
            us = (redis_cpu(topotest.redis_client(p)) - rcpu0[p]) * 1e6 / total
            per_master[p] = {"redis_cpu_us_per_timer": round(us, 2),
                             "fcalls": fcalls(p) - f0[p],
                             "order_buckets": buckets_per_master[p]}
        busiest = max(v["redis_cpu_us_per_timer"] for v in per_master.values())
        first_deadline = t_start + TTL_MS / 1000.0
        last_deadline = t_gen_end + TTL_MS / 1000.0
        return {
            "masters": masters, "replicas": ARGS.replicas, "buckets": ARGS.buckets,
            "rate": rate, "timers": total, "arm_rate": g["rate"],
            "produced": int(produced()),
            "recovered": int(m("eb_ledger_recovered_total")),
            "delivered_rate": round(total / max(t_done - first_deadline, 0.001)),
            "lag_after_last_deadline_s": round(t_done - last_deadline, 2),
            "redis_cpu_us_per_timer_total": round(sum(v["redis_cpu_us_per_timer"]
                                                      for v in per_master.values()), 2),
            "redis_cpu_us_per_timer_busiest": busiest,
            "capacity_timers_per_s_one_core_per_master": round(1e6 / busiest) if busiest else 0,
            "bridge_cpu_us_per_timer": round((cpu1 - cpu0) * 1e6 / total, 2),
            "per_master": {str(p): v for p, v in per_master.items()},
        }
    finally:
        if bridge:
            bridge.stop(signal.SIGTERM)
            bridge.cleanup()
        if kafka:
            kafka.stop()
        cluster.cleanup()


def main():
    rows = []
    for masters in [int(x) for x in ARGS.masters.split(",")]:
        for rate in [int(x) for x in ARGS.rates.split(",")]:
            log("cluster ledger: %d master(s), %d timers/s for %.0f s ..." % (
                masters, rate, ARGS.seconds))
            rows.append(phase(masters, rate))
            r = rows[-1]
            log("  armed %d/s, delivered %d/s, lag %.2f s, redis %.1f us/timer (busiest "
                "master %.1f), capacity ~%d/s, bridge %.1f us/timer, recovered %d" % (
                    r["arm_rate"], r["delivered_rate"], r["lag_after_last_deadline_s"],
                    r["redis_cpu_us_per_timer_total"], r["redis_cpu_us_per_timer_busiest"],
                    r["capacity_timers_per_s_one_core_per_master"],
                    r["bridge_cpu_us_per_timer"], r["recovered"]))
    log("\n%8s %8s %10s %12s %8s %14s %16s %14s" % (
        "masters", "rate/s", "armed/s", "delivered/s", "lag s", "redis us/timer",
        "busiest us/timer", "capacity/s"))
    for r in rows:
        log("%8d %8d %10d %12d %8.2f %14.1f %16.1f %14d" % (
            r["masters"], r["rate"], r["arm_rate"], r["delivered_rate"],
            r["lag_after_last_deadline_s"], r["redis_cpu_us_per_timer_total"],
            r["redis_cpu_us_per_timer_busiest"], r["capacity_timers_per_s_one_core_per_master"]))
    result = {"ttl_ms": TTL_MS, "seconds": ARGS.seconds, "cpus": os.cpu_count(), "rows": rows}
    emit(result, ARGS.out)


if __name__ == "__main__":
    main()
