#!/usr/bin/python3
"""bench/ledger/run.py -- the deadline ledger's benchmark (issue 6, item 7).

Two parts, in one run, against a real redis-server (default hz 10), the
mock Kafka and the bridge built in BUILD (default build/):

1. Lateness. 100,000 unrelated volatile keys (TTL 1 h) make Redis's expiry
   sampler slow. Beside them, 1,000 timers armed as plain keys (SET PX,
   route `ledger: off`) and the same 1,000 deadlines armed as ledgered
   timers (FCALL eb1_arm, route `ledger: armed`), deadlines spread over
   10 s. Lateness = Kafka's timestamp of the event (when the bridge produced
   it) minus the deadline. The plain keys arrive when the sampler finds them
   (minutes); the wait for them is capped (--plain-wait) and the fraction
   that arrived by then is reported. Target: ledger p99 <= 2 x sweep_interval.

2. Overhead at 1k, 10k and 50k timers/s (--rates): for each rate, S seconds
   of plain timers, then S seconds of ledgered ones (bench_ledger_load,
   TTL 2 s), each on a fresh Redis. Reported per timer: commands Redis
   executed (INFO commandstats, everything but the load generator's own
   SET/FCALL eb1_arm, which is the same one command per timer in both
   modes), Redis CPU, bridge CPU. The ratio ledger/plain is the overhead.

Every run checks what it measured: each ledgered timer reached Kafka (with
its deadline), no plain timer was lost from the count that arrived, and
the rate phases delivered every timer. Results: one JSON document on
stdout (and --out FILE), a summary table on stderr.
"""

import os
import signal
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ledgerbench import cpu_seconds, emit, log, redis_cpu, run_load, setup  # noqa: E402


def add_arguments(p):
    p.add_argument("--timers", type=int, default=1000)
    p.add_argument("--volatile", type=int, default=100000)
    p.add_argument("--span", type=float, default=10.0, help="deadlines spread over (s)")
    p.add_argument("--plain-wait", type=float, default=120.0,
                   help="after the last deadline, wait at most this long for plain keys (s)")
    p.add_argument("--sweep-interval-ms", type=int, default=1000)
    p.add_argument("--rates", default="1000,10000,50000")
    p.add_argument("--seconds", type=float, default=10.0, help="per rate phase")
    p.add_argument("--skip-lateness", action="store_true")
    p.add_argument("--skip-overhead", action="store_true")


ARGS = setup(__doc__.split("\n\n")[0], add_arguments)

from ebtest import Bridge, MockKafka, RedisServer, bridge_config, wait_for  # noqa: E402
from ledgertest import (TimerConsumer, deadline_ms, ledger_key, quantile,  # noqa: E402
                        scrape_metric, wait_ledger_ready)


def commandstats(r):
    """{command: calls} from INFO commandstats."""
    out = {}
    for name, v in r.info("commandstats").items():
        out[name.replace("cmdstat_", "")] = v["calls"]
    return out


LEDGER_SECTION = """ledger:
  sweep_interval: %dms
  sweep_grace: 250ms
"""


def routes():
    return ('  - name: plain\n    match: "plain:{id}"\n    topic: plain\n'
            '  - name: led\n    match: "led:{id}"\n    topic: led\n    ledger: armed\n')


def start_bridge(redis, kafka, extra=""):
    """The bridge with both routes; HTTP on a free port (bridge.http_port)."""
    from ebtest import free_port
    port = free_port()
    extra += "http:\n  listen: 127.0.0.1:%d\n" % port
    cfg = bridge_config(redis.port, kafka.bootstrap, routes(),
                        extra=LEDGER_SECTION % ARGS.sweep_interval_ms + extra, stats="0s",
                        client="{ linger.ms: 5 }", queue="  queue: { max_events: 1000000 }")
    b = Bridge(cfg).start()
    wait_ledger_ready(b)
    b.http_port = port
    return b


def fill_volatile(r, n):
    pipe = r.pipeline(transaction=False)
    for i in range(n):
        pipe.set("unrelated:%d" % i, "x", px=3600 * 1000)
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()


def stats(xs):
    if not xs:
        return {"n": 0}
    return {"n": len(xs), "p50_ms": quantile(xs, 0.5), "p99_ms": quantile(xs, 0.99),
            "max_ms": max(xs), "mean_ms": round(statistics.mean(xs), 1)}


# ----------------------------------------------------------------- lateness

def lateness():
    redis = RedisServer().start()
    kafka = MockKafka(brokers=1, topics=["plain:4", "led:4"]).start()
    bridge = None
    try:
        r = redis.client()
        log("lateness: %d unrelated volatile keys ..." % ARGS.volatile)
        fill_volatile(r, ARGS.volatile)
        bridge = start_bridge(redis, kafka)
        consumer = TimerConsumer(kafka.bootstrap, ["plain", "led"])
        n, lk = ARGS.timers, ledger_key("led")
        plain, led = {}, {}
        pipe = r.pipeline(transaction=False)
        for i in range(n):
            ttl = int((2.0 + ARGS.span * i / max(n - 1, 1)) * 1000)
            pipe.set("plain:%d" % i, "1", px=ttl)
            pipe.execute_command("PEXPIRETIME", "plain:%d" % i)
            pipe.fcall("eb1_arm", 2, "led:%d" % i, lk, ttl)
        res = pipe.execute()
        for i in range(n):
            plain["plain:%d" % i] = res[3 * i + 1]
            led["led:%d" % i] = res[3 * i + 2]
        last = max(max(plain.values()), max(led.values()))
        log("lateness: %d + %d timers armed; waiting for the ledgered ones ..." % (n, n))
        consumer.collect_keys(led, ARGS.span + 60)
        cap = last / 1000.0 + ARGS.plain_wait
        log("lateness: ledgered all in; plain keys until %.0f s after the last deadline ..."
            % ARGS.plain_wait)
        while time.time() < cap and sum(1 for k in plain if k in consumer.per_key) < n:
            consumer.poll_once(0.2)
        pk = consumer.per_key
        bad = [k for k, d in led.items() if deadline_ms(pk[k][0]["data"]["deadline"]) != d]
        assert not bad, "ledgered events with a wrong deadline: %s" % bad[:3]
        led_late = [pk[k][0]["ts_ms"] - d for k, d in led.items()]
        plain_late = [pk[k][0]["ts_ms"] - d for k, d in plain.items()
                      if k in pk and pk[k][0]["ts_ms"] <= cap * 1000]
        out = {
            "timers": n, "volatile_keys": ARGS.volatile, "span_s": ARGS.span,
            "sweep_interval_ms": ARGS.sweep_interval_ms,
            "ledger": stats(led_late),
            "ledger_duplicates": sum(len(pk[k]) - 1 for k in led),
            "ledger_recovered": sum(1 for k in led if pk[k][0]["data"]["delivery"] == "recovered"),
            "plain": stats(plain_late),
            "plain_arrived_fraction": round(len(plain_late) / n, 4),
            "plain_wait_cap_s": ARGS.plain_wait,
            "target_p99_ms": 2 * ARGS.sweep_interval_ms,
        }
        out["target_met"] = out["ledger"]["p99_ms"] <= out["target_p99_ms"]
        consumer.close()
        return out
    finally:
        if bridge:
            bridge.cleanup()
        kafka.stop()
        redis.cleanup()


# ----------------------------------------------------------------- overhead

GEN_CMDS = ("set", "fcall")  # the generator's own: one per timer in both modes


def phase(rate, mode):
    """One overhead phase on a fresh Redis: arm rate*seconds timers, wait
    for all to reach Kafka, measure commands and CPU."""
    redis = RedisServer().start()
    kafka = MockKafka(brokers=1, topics=["plain:16", "led:16"]).start()
    bridge = None
    try:
        r = redis.client()
        bridge = start_bridge(redis, kafka)
        topic = "led" if mode == "ledger" else "plain"
        total = int(rate * ARGS.seconds)
        r.config_resetstat()
        cpu0, rcpu0 = cpu_seconds(bridge.proc.pid), redis_cpu(r)
        g = run_load(ARGS, redis.port, rate, ["--mode", mode, "--ttl-ms", "2000",
                                             "--prefix", topic + ":", "--ledger",
                                             ledger_key("led")])
        # Counted by the bridge (Kafka's acknowledgements), not by a consumer:
        # a consumer would compete for the CPU being measured, and the mock
        # Kafka trims partitions past ~5 MB.
        route = "led" if mode == "ledger" else "plain"
        produced = lambda: scrape_metric(bridge.http_port, "eb_events_produced_total", route=route)
        wait_for(lambda: produced() >= total, 600, interval=0.5,
                 what="%d %s timers acknowledged by Kafka" % (total, mode))
        if mode == "ledger":
            wait_for(lambda: r.zcard(ledger_key("led")) == 0, 60, what="ledger acknowledged")
        cpu1, rcpu1 = cpu_seconds(bridge.proc.pid), redis_cpu(r)
        cs = commandstats(r)
        extra = {k: v for k, v in cs.items() if k not in GEN_CMDS}
        # eb1_arm is the generator's FCALL; every other FCALL is the bridge's.
        bridge_fcalls = cs.get("fcall", 0) - (total if mode == "ledger" else 0)
        if bridge_fcalls:
            extra["fcall (bridge)"] = bridge_fcalls
        inner = ("zadd", "zrem", "zscore", "pexpiretime", "time", "zrangebyscore", "zrange",
                 "zremrangebyscore", "zcard", "zcount", "type", "get", "del", "pexpire", "hgetall")
        top = sum(v for k, v in extra.items() if k not in inner and k != "set")
        return {
            "rate": rate, "mode": mode, "timers": total, "achieved_rate": g["rate"],
            "delivered": int(produced()),
            "bridge_cpu_us_per_timer": round((cpu1 - cpu0) * 1e6 / total, 2),
            "redis_cpu_us_per_timer": round((rcpu1 - rcpu0) * 1e6 / total, 2),
            "bridge_round_trips_per_timer": round(top / total, 3),
            "redis_commands_per_timer": round(sum(extra.values()) / total, 3),
            "commands": extra,
        }
    finally:
        if bridge:
            bridge.stop(signal.SIGTERM)
            bridge.cleanup()
        kafka.stop()
        redis.cleanup()


def overhead():
    out = []
    for rate in [int(x) for x in ARGS.rates.split(",")]:
        row = {"rate": rate}
        for mode in ("plain", "ledger"):
            log("overhead: %d timers/s, %s ..." % (rate, mode))
            row[mode] = phase(rate, mode)
        p, q = row["plain"], row["ledger"]
        row["bridge_cpu_ratio"] = round(q["bridge_cpu_us_per_timer"] /
                                        max(p["bridge_cpu_us_per_timer"], 0.01), 2)
        row["redis_cpu_ratio"] = round(q["redis_cpu_us_per_timer"] /
                                       max(p["redis_cpu_us_per_timer"], 0.01), 2)
        row["extra_round_trips_per_timer"] = round(q["bridge_round_trips_per_timer"] -
                                                   p["bridge_round_trips_per_timer"], 3)
        out.append(row)
    return out


def main():
    result = {"redis": "hz 10 (default)", "sweep_interval_ms": ARGS.sweep_interval_ms}
    if not ARGS.skip_lateness:
        result["lateness"] = lateness()
        la = result["lateness"]
        log("\nLateness (deadline -> produced), %d timers beside %d volatile keys:" % (
            la["timers"], la["volatile_keys"]))
        log("  ledger: p50 %(p50_ms)d ms  p99 %(p99_ms)d ms  max %(max_ms)d ms" % la["ledger"] +
            "  (target p99 <= %d ms: %s)" % (la["target_p99_ms"],
                                            "met" if la["target_met"] else "MISSED"))
        if la["plain"]["n"]:
            log("  plain:  p50 %(p50_ms)d ms  p99 %(p99_ms)d ms  max %(max_ms)d ms" % la["plain"] +
                "  over the %.1f%% that arrived within %.0f s" % (
                    100 * la["plain_arrived_fraction"], la["plain_wait_cap_s"]))
        else:
            log("  plain:  none arrived within %.0f s of the last deadline" % la["plain_wait_cap_s"])
    if not ARGS.skip_overhead:
        result["overhead"] = overhead()
        log("\nOverhead per timer (plain -> ledger):")
        log("  %8s  %22s  %22s  %18s" % ("rate/s", "bridge CPU us", "redis CPU us",
                                          "bridge round trips"))
        for row in result["overhead"]:
            p, q = row["plain"], row["ledger"]
            log("  %8d  %8.2f -> %8.2f (x%.1f)  %8.2f -> %8.2f (x%.1f)  %6.2f -> %6.2f" % (
                row["rate"], p["bridge_cpu_us_per_timer"], q["bridge_cpu_us_per_timer"],
                row["bridge_cpu_ratio"], p["redis_cpu_us_per_timer"],
                q["redis_cpu_us_per_timer"], row["redis_cpu_ratio"],
                p["bridge_round_trips_per_timer"], q["bridge_round_trips_per_timer"]))
    emit(result, ARGS.out)


if __name__ == "__main__":
    main()
