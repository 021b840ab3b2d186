#!/usr/bin/env bash
# scripts/demo.sh -- the main job end to end on the embedded default:
# a local redis-server, the mock Kafka, the bridge with config/demo.yaml.
# It arms a few order-payment timers (laravel_cache:ORDER_CONFIRM:<id>, as a
# Laravel shop does with Cache::put), pays one of them (the timer is
# deleted, so it never fires), and prints each CloudEvent as it arrives on
# the topic shop.order.payment-timeout. Installs what it needs on Debian 12.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$EB_ROOT"

eb_install .ci/packages-build.txt <(printf 'redis-server\nredis-tools\nkcat\npython3-confluent-kafka\n')
eb_say "building"
eb_build build >/dev/null

WORK=$(mktemp -d /tmp/eb-demo.XXXXXX)
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

REDIS_PORT=$(eb_free_port)
eb_say "redis-server on 127.0.0.1:$REDIS_PORT"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$WORK" --logfile "$WORK/redis.log" &
PIDS+=($!)
until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do sleep 0.1; done

eb_say "mock Kafka cluster (librdkafka's, 3 brokers)"
mkfifo "$WORK/kafka.in"
build/tests/support/eb_mock_kafka --brokers 3 --topic shop.order.payment-timeout:4 \
    <"$WORK/kafka.in" >"$WORK/kafka.out" &
PIDS+=($!)
exec 3>"$WORK/kafka.in"   # keeps the mock's stdin open; it exits on EOF
until grep -q '^BOOTSTRAP ' "$WORK/kafka.out" 2>/dev/null; do sleep 0.1; done
KAFKA_BROKERS=$(sed -n 's/^BOOTSTRAP //p' "$WORK/kafka.out")

HTTP_PORT=$(eb_free_port)   # a free port: the demo never fights another process for 9464
eb_say "expiry-bridge run -c config/demo.yaml   (log: $WORK/bridge.log, metrics: http://127.0.0.1:$HTTP_PORT/metrics)"
REDIS_PORT=$REDIS_PORT KAFKA_BROKERS=$KAFKA_BROKERS EB_HTTP_LISTEN=127.0.0.1:$HTTP_PORT \
    build/src/expiry-bridge run -c config/demo.yaml 2>"$WORK/bridge.log" &
BRIDGE=$!
PIDS+=($BRIDGE)
for _ in $(seq 100); do
    grep -q '"msg":"redis subscribed' "$WORK/bridge.log" 2>/dev/null && break
    kill -0 $BRIDGE 2>/dev/null || { cat "$WORK/bridge.log"; exit 1; }
    sleep 0.1
done

eb_say "arming order timers (SET ... EX, as the shop does), then order 2 is paid"
for id in 1 2 3 4; do
    redis-cli -p "$REDIS_PORT" SET "laravel_cache:ORDER_CONFIRM:$id" "pending" EX $((id + 1)) >/dev/null
    echo "  order $id: timer armed, expires in $((id + 1)) s"
done
redis-cli -p "$REDIS_PORT" DEL "laravel_cache:ORDER_CONFIRM:2" >/dev/null
echo "  order 2: paid, timer deleted (no event expected)"

eb_say "events on shop.order.payment-timeout as they arrive (3 expected):"
KAFKA_BROKERS=$KAFKA_BROKERS /usr/bin/python3 - <<'PY'
import json, os, time
from confluent_kafka import Consumer
c = Consumer({"bootstrap.servers": os.environ["KAFKA_BROKERS"], "group.id": "demo",
              "auto.offset.reset": "earliest", "session.timeout.ms": 6000})
c.subscribe(["shop.order.payment-timeout"])
seen, deadline = 0, time.time() + 30
while seen < 3 and time.time() < deadline:
    m = c.poll(0.2)
    if m is None or m.error():
        continue
    seen += 1
    print("--- partition %d, key %s" % (m.partition(), m.key().decode()))
    print(json.dumps(json.loads(m.value()), indent=2))
c.close()
if seen < 3:
    raise SystemExit("only %d of 3 events arrived" % seen)
PY

eb_say "what /metrics says about it (excerpt)"
HTTP_PORT=$HTTP_PORT /usr/bin/python3 - <<'PY'
import os, urllib.request
url = "http://127.0.0.1:%s/metrics" % os.environ["HTTP_PORT"]
text = urllib.request.urlopen(url, timeout=5).read().decode()
for line in text.splitlines():
    if line.startswith(("eb_events_received_total", "eb_events_routed_total",
                        "eb_events_produced_total", "eb_delivery_latency_seconds_count",
                        "eb_redis_connected", "eb_kafka_queue_events ")):
        print("  " + line)
PY

eb_say "stopping the bridge (SIGTERM drains in-flight events)"
kill -TERM $BRIDGE; wait $BRIDGE && echo "  bridge exited 0"
grep '"msg":"stats"' "$WORK/bridge.log" | tail -1
