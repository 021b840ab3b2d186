#!/usr/bin/python3
"""naive_bridge.py -- the bridge most people write first, for context only.

    naive_bridge.py REDIS_PORT BOOTSTRAP TOPIC

redis-py PSUBSCRIBE, and per message: build the CloudEvent, json.dumps it,
produce it with confluent-kafka (idempotent, acks=all, like the bridge).
Nothing about it is wrong except speed: the per-message work in Python is
slower than Redis publishes a burst, the subscriber's output buffer grows,
and at client-output-buffer-limit pubsub (32 MB hard) Redis disconnects it.
Everything still in the buffer is gone; everything published afterwards
reaches nobody.

Prints READY once subscribed, then one JSON line: messages processed,
whether Redis disconnected it, and after how many seconds.
"""
import json
import sys
import time
import uuid

import redis
from confluent_kafka import Producer

IDLE_S = 3.0


def main():
    port, bootstrap, topic = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    r = redis.Redis(host="127.0.0.1", port=port, socket_timeout=None)
    ps = r.pubsub()
    ps.psubscribe("__keyevent@*__:expired")
    while True:  # the subscription confirmation
        m = ps.get_message(timeout=5)
        if m and m["type"] == "psubscribe":
            break
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "acks": "all", "message.timeout.ms": 0})
    print("READY", flush=True)
    source = "redis://127.0.0.1:%d/0" % port
    count, disconnected, first, last = 0, False, None, None
    error = None
    while True:
        try:
            m = ps.get_message(timeout=0.5)
        except (redis.ConnectionError, OSError) as e:
            disconnected, error = True, str(e)
            break
        now = time.monotonic()
        if m is None:
            if last is not None and now - last > IDLE_S:
                break
            continue
        if m["type"] != "pmessage":
            continue
        first = first or now
        last = now
        key = m["data"].decode("utf-8", "replace")
        ev = {"specversion": "1.0", "type": "redis.key.expired", "source": source,
              "id": uuid.uuid4().hex, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "subject": key, "datacontenttype": "application/json",
              "data": {"event": "expired", "key": key, "db": 0, "route": "order-confirm",
                       "params": {"order_id": key.rsplit(":", 1)[-1]}, "delivery": "live",
                       "payload": None}}
        while True:
            try:
                producer.produce(topic, json.dumps(ev).encode(), key.rsplit(":", 1)[-1],
                                 headers=[("content-type", b"application/cloudevents+json")])
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
        count += 1
    left = producer.flush(30)
    print(json.dumps({"tool": "naive_bridge", "count": count, "disconnected": disconnected,
                      "error": error, "undelivered": left,
                      "seconds": (last - first) if first else 0}), flush=True)


if __name__ == "__main__":
    main()
