#!/usr/bin/env bash
# scripts/demo.sh -- the whole story end to end, on the embedded default:
#
#   1. a shop's PostgreSQL: six orders, pending, their stock reserved;
#   2. their payment timers armed in a local redis-server exactly as a Laravel
#      shop does it (SET laravel_cache:ORDER_CONFIRM:<id> ... EX n);
#   3. orders 2 and 5 are paid in time (their timers deleted);
#   4. the other timers expire: expiry-bridge (config/demo.yaml) turns each
#      expiry into a CloudEvent on the mock Kafka's shop.order.payment-timeout
#      topic, printed here as it arrives;
#   5. the sample C consumer (examples/order-consumer) cancels those orders and
#      returns their stock, in one transaction per event;
#   6. a before/after table of orders and stock, with the balance check.
#
# Installs what it needs on Debian 12 (sudo when not root) and builds first.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$EB_ROOT"

eb_install .ci/packages-build.txt \
    <(printf 'redis-server\nredis-tools\npython3-confluent-kafka\npostgresql\n')
eb_say "building"
eb_build build >/dev/null

WORK=$(mktemp -d /tmp/eb-demo.XXXXXX)
chmod 755 "$WORK"
PIDS=()
PG_STARTED=""
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    [ -z "$PG_STARTED" ] || eb_pg_stop "$WORK/pg"
    rm -rf "$WORK"
}
trap cleanup EXIT

# -------------------------------------------------------------- servers
PG_PORT=$(eb_free_port)
eb_say "PostgreSQL (throwaway cluster) on 127.0.0.1:$PG_PORT"
mkdir -p "$WORK/pg"
eb_pg_start "$WORK/pg" "$PG_PORT"
PG_STARTED=1
DB="postgresql://postgres@127.0.0.1:$PG_PORT/postgres"
psql() { command psql -X -q -v ON_ERROR_STOP=1 -d "$DB" "$@"; }

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
exec 3>"$WORK/kafka.in" # keeps the mock's stdin open; it exits on EOF
until grep -q '^BOOTSTRAP ' "$WORK/kafka.out" 2>/dev/null; do sleep 0.1; done
KAFKA_BROKERS=$(sed -n 's/^BOOTSTRAP //p' "$WORK/kafka.out")

# ----------------------------------------------------------------- shop
eb_say "the shop: schema, six pending orders with their stock reserved"
build/examples/order-consumer --db "$DB" --migrate 2>"$WORK/migrate.log" ||
    { cat "$WORK/migrate.log"; exit 1; }
PGOPTIONS='-c client_min_messages=warning' psql -f examples/order-consumer/demo/seed.sql >/dev/null

HTTP_PORT=$(eb_free_port) # a free port: the demo never fights another process for 9464
eb_say "expiry-bridge run -c config/demo.yaml   (log: $WORK/bridge.log)"
REDIS_PORT=$REDIS_PORT KAFKA_BROKERS=$KAFKA_BROKERS EB_HTTP_LISTEN=127.0.0.1:$HTTP_PORT \
    build/src/expiry-bridge run -c config/demo.yaml 2>"$WORK/bridge.log" &
BRIDGE=$!
PIDS+=($BRIDGE)
for _ in $(seq 100); do
    grep -q '"msg":"redis subscribed' "$WORK/bridge.log" 2>/dev/null && break
    kill -0 $BRIDGE 2>/dev/null || { cat "$WORK/bridge.log"; exit 1; }
    sleep 0.1
done

eb_say "the consumer: examples/order-consumer (log: $WORK/consumer.log)"
build/examples/order-consumer --db "$DB" --brokers "$KAFKA_BROKERS" \
    --topic shop.order.payment-timeout --group order-service -v 2>"$WORK/consumer.log" &
CONSUMER=$!
PIDS+=($CONSUMER)

eb_say "payment timers armed in Redis as the shop does it (SET ... EX)"
for id in 1 2 3 4 5 6; do
    ttl=$((2 + id / 2))
    redis-cli -p "$REDIS_PORT" SET "laravel_cache:ORDER_CONFIRM:$id" "pending" EX $ttl >/dev/null
    echo "  order $id: timer armed, expires in $ttl s"
done
psql -v ids=2,5 -f examples/order-consumer/demo/pay.sql >/dev/null
redis-cli -p "$REDIS_PORT" DEL laravel_cache:ORDER_CONFIRM:2 laravel_cache:ORDER_CONFIRM:5 >/dev/null
echo "  orders 2 and 5: paid in time, their timers deleted (no event expected)"

eb_say "events on shop.order.payment-timeout as they arrive (4 expected):"
KAFKA_BROKERS=$KAFKA_BROKERS /usr/bin/python3 - <<'PY'
import json, os, time
from confluent_kafka import Consumer
c = Consumer({"bootstrap.servers": os.environ["KAFKA_BROKERS"], "group.id": "demo-printer",
              "auto.offset.reset": "earliest", "session.timeout.ms": 6000})
c.subscribe(["shop.order.payment-timeout"])
seen, deadline = 0, time.time() + 60
while seen < 4 and time.time() < deadline:
    m = c.poll(0.2)
    if m is None or m.error():
        continue
    seen += 1
    ev = json.loads(m.value())
    if seen == 1:
        print("  the first one in full (partition %d, key %s):" % (m.partition(), m.key().decode()))
        print("\n".join("    " + l for l in json.dumps(ev, indent=2).splitlines()))
    else:
        print("  %s  key=%s  id=%s  route=%s  params=%s" % (
            ev["time"], m.key().decode(), ev["id"], ev["data"]["route"],
            json.dumps(ev["data"]["params"])))
c.close()
if seen < 4:
    raise SystemExit("only %d of 4 events arrived" % seen)
PY

eb_say "waiting for the consumer to commit the 4 cancellations"
for _ in $(seq 300); do
    [ "$(psql -At -c 'SELECT count(*) FROM processed_events')" = 4 ] && break
    kill -0 $CONSUMER 2>/dev/null || { cat "$WORK/consumer.log"; exit 1; }
    sleep 0.1
done

eb_say "before and after"
command psql -X -P pager=off -d "$DB" -f examples/order-consumer/demo/report.sql

eb_say "stopping the consumer and the bridge (SIGTERM: both finish what they hold)"
kill -TERM $CONSUMER
wait $CONSUMER && echo "  consumer exited 0"
kill -TERM $BRIDGE
wait $BRIDGE && echo "  bridge exited 0"
grep '"msg":"stats"' "$WORK/bridge.log" | tail -1
