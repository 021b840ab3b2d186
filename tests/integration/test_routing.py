"""Routing: real redis-server + mock Kafka + the expiry-bridge binary.

Each test arms keys with a TTL in Redis and checks what lands on Kafka:
topics, Kafka keys, headers, the CloudEvent itself (validated against
docs/event.schema.json), and the counters for what did not land.
"""
import base64
import unittest

from ebtest import (BridgeTestCase, bridge_config, final_stats, validate_event, wait_for)

ROUTES = """
  - name: order-payment-timeout
    match: "laravel_cache:ORDER_CONFIRM:{order_id}"
    topic: shop.order.payment-timeout
    key: "{order_id}"
  - name: coupon-hold
    match: "coupon:hold:{coupon}:{user}"
    topic: shop.coupon.hold-expired
    key: "{coupon}"
  - name: session
    match: "session:*"
    events: [expired, evicted]
    topic: auth.session.expired
"""

TOPICS = ["shop.order.payment-timeout", "shop.coupon.hold-expired", "auth.session.expired"]


def by_subject(messages):
    return {m["json"]["subject"]: m for m in messages if m["json"]}


class RoutingTest(BridgeTestCase, unittest.TestCase):

    def test_expired_keys_reach_their_routes_topic_with_the_templated_kafka_key(self):
        self.start_stack(ROUTES)
        c = self.consumer(TOPICS)
        r = self.redis.client()
        r.set("laravel_cache:ORDER_CONFIRM:7", "pending", px=50)
        r.set("coupon:hold:SUMMER10:u42", "1", px=50)
        r.set("session:abc", "1", px=50)
        got = by_subject(c.collect(3, what="one event per route"))

        order = got["laravel_cache:ORDER_CONFIRM:7"]
        self.assertEqual(order["topic"], "shop.order.payment-timeout")
        self.assertEqual(order["key"], b"7")
        self.assertEqual(order["json"]["data"]["params"], {"order_id": "7"})
        self.assertEqual(order["json"]["data"]["route"], "order-payment-timeout")

        coupon = got["coupon:hold:SUMMER10:u42"]
        self.assertEqual(coupon["topic"], "shop.coupon.hold-expired")
        self.assertEqual(coupon["key"], b"SUMMER10")
        self.assertEqual(coupon["json"]["data"]["params"], {"coupon": "SUMMER10", "user": "u42"})

        session = got["session:abc"]
        self.assertEqual(session["topic"], "auth.session.expired")
        self.assertEqual(session["key"], b"session:abc", "no key template: the Redis key")

    def test_every_event_validates_against_the_event_schema(self):
        self.start_stack(ROUTES)
        c = self.consumer(TOPICS)
        r = self.redis.client()
        for i in range(20):
            r.set("laravel_cache:ORDER_CONFIRM:%d" % i, "pending", px=20 + i)
        for m in c.collect(20):
            validate_event(m["json"])
            ev = m["json"]
            self.assertEqual(ev["type"], "redis.key.expired")
            self.assertEqual(ev["data"]["delivery"], "live")
            self.assertNotIn("deadline", ev["data"], "no deadline without the ledger")
            self.assertNotIn("payload", ev["data"], "no payload unless the route asks")

    def test_structured_mode_sends_exactly_one_content_type_header(self):
        self.start_stack(ROUTES)
        c = self.consumer(["shop.order.payment-timeout"])
        self.redis.client().set("laravel_cache:ORDER_CONFIRM:1", "x", px=20)
        m = c.collect(1)[0]
        self.assertEqual(m["headers"], [("content-type", b"application/cloudevents+json")])

    def test_events_from_several_databases_carry_their_db_in_data_and_source(self):
        self.start_stack(ROUTES)
        c = self.consumer(["shop.order.payment-timeout"])
        for db in (0, 3, 5):
            self.redis.client(db=db).set("laravel_cache:ORDER_CONFIRM:%d" % db, "x", px=20)
        got = by_subject(c.collect(3))
        for db in (0, 3, 5):
            ev = got["laravel_cache:ORDER_CONFIRM:%d" % db]["json"]
            self.assertEqual(ev["data"]["db"], db)
            self.assertTrue(ev["source"].endswith("/%d" % db), ev["source"])

    def test_a_database_list_subscribes_only_to_the_listed_databases(self):
        self.start_stack(ROUTES, databases="[1]")
        c = self.consumer(["shop.order.payment-timeout"])
        self.redis.client(db=0).set("laravel_cache:ORDER_CONFIRM:100", "x", px=20)
        self.redis.client(db=1).set("laravel_cache:ORDER_CONFIRM:101", "x", px=40)
        got = c.collect(1)
        c.drain(1.0)
        self.assertEqual([m["json"]["subject"] for m in c.messages],
                         ["laravel_cache:ORDER_CONFIRM:101"], got)

    def test_unrouted_keys_are_dropped_and_counted(self):
        self.start_stack(ROUTES)
        c = self.consumer(TOPICS)
        r = self.redis.client()
        r.set("cache:page:/home", "x", px=20)
        r.set("laravel_cache:ORDER_CONFIRM:9", "x", px=60)
        c.collect(1)
        c.drain(0.5)
        self.assertEqual(len(c.messages), 1)
        self.assertEqual(self.bridge.stop(), 0)
        stats = final_stats(self.bridge)
        self.assertEqual(stats["unrouted"], 1)
        self.assertEqual(stats["routed"], 1)

    def test_unrouted_keys_go_to_the_unrouted_topic_when_one_is_configured(self):
        self.start_stack(ROUTES, extra="unrouted: { topic: redis.unrouted }")
        c = self.consumer(["redis.unrouted"])
        self.redis.client().set("cache:page:/home", "x", px=20)
        m = c.collect(1)[0]
        self.assertEqual(m["json"]["subject"], "cache:page:/home")
        self.assertIsNone(m["json"]["data"]["route"])
        validate_event(m["json"])

    def test_a_key_that_is_not_utf8_keeps_its_exact_bytes_in_key_base64(self):
        self.start_stack(ROUTES)
        c = self.consumer(["auth.session.expired"])
        raw = b"session:\xff\xfe\x00\x01tail\xc3"
        self.redis.client().set(raw, "x", px=20)
        m = c.collect(1)[0]
        ev = m["json"]
        validate_event(ev)
        self.assertEqual(base64.b64decode(ev["data"]["key_base64"]), raw)
        self.assertEqual(m["key"], raw, "the Kafka key keeps the raw bytes")
        m["value"].decode("utf-8")  # the value is valid UTF-8

    def test_an_event_over_kafkas_message_size_is_dropped_counted_and_logged(self):
        self.start_stack(ROUTES)
        c = self.consumer(["auth.session.expired"])
        r = self.redis.client()
        r.set(b"session:" + b"x" * 1100000, "x", px=20)
        r.set("session:small", "x", px=200)
        m = c.collect(1)[0]
        self.assertEqual(m["json"]["subject"], "session:small")
        entry = self.bridge.wait_log(lambda e: "message.max.bytes" in e.get("msg", ""),
                                     what="the too-big log line")
        self.assertEqual(entry["route"], "session")
        self.assertLess(len(entry["key"]), 400, "the log shows a prefix of a huge key")
        self.assertEqual(self.bridge.stop(), 0)
        self.assertEqual(final_stats(self.bridge)["dropped"], 1)

    def test_binary_and_json_formats_follow_the_cloudevents_kafka_binding(self):
        routes = """
  - name: bin
    match: "bin:{id}"
    topic: t.bin
    format: cloudevents-binary
    headers: { x-team: shop }
  - name: plain
    match: "plain:{id}"
    topic: t.plain
    format: json
"""
        self.start_stack(routes)
        c = self.consumer(["t.bin", "t.plain"])
        r = self.redis.client()
        r.set("bin:1", "x", px=20)
        r.set("plain:2", "x", px=20)
        got = {m["topic"]: m for m in c.collect(2)}
        h = dict(got["t.bin"]["headers"])
        self.assertEqual(h["ce_specversion"], b"1.0")
        self.assertEqual(h["ce_type"], b"redis.key.expired")
        self.assertEqual(h["ce_subject"], b"bin:1")
        self.assertEqual(h["x-team"], b"shop")
        self.assertEqual(got["t.bin"]["json"]["key"], "bin:1", "binary mode: value is the data")
        self.assertEqual(got["t.plain"]["headers"], [], "json mode sends no header")
        self.assertEqual(got["t.plain"]["json"]["params"], {"id": "2"})
        self.assertIn("id", got["t.plain"]["json"])

    def test_evicted_keys_are_routed_as_evicted_events(self):
        self.start_stack(ROUTES, redis_args=("--maxmemory", "4mb",
                                             "--maxmemory-policy", "allkeys-random"))
        c = self.consumer(["auth.session.expired"])
        r = self.redis.client()
        pipe = r.pipeline(transaction=False)
        for i in range(3000):
            pipe.set("session:%d" % i, "v" * 4096)
        pipe.execute()
        evicted = r.info("stats")["evicted_keys"]
        self.assertGreater(evicted, 0, "the test must cause evictions")
        c.collect(evicted, what="%d evicted events" % evicted)
        self.assertTrue(all(m["json"]["type"] == "redis.key.evicted" for m in c.messages))

    def test_missing_notification_flags_are_added_and_existing_ones_kept(self):
        self.start_stack(ROUTES, redis_args=("--notify-keyspace-events", "Kg"))
        flags = self.redis.client().config_get("notify-keyspace-events")["notify-keyspace-events"]
        for f in "KgExe":
            self.assertIn(f, flags, "flags after the bridge connected: %r" % flags)

    def test_without_configure_notifications_the_missing_flags_are_named_in_a_warning(self):
        self.redis = self.start_redis(("--notify-keyspace-events", ""))
        self.kafka = self.start_kafka()
        cfg = bridge_config(self.redis.port, self.kafka.bootstrap, ROUTES).replace(
            "databases: all", "databases: all\n  configure_notifications: false")
        bridge = self.start_bridge(cfg)
        warn = bridge.wait_log(lambda e: e.get("level") == "warn" and "E" in str(e.values())
                               and "notify" in e.get("msg", "") + str(e.values()),
                               what="a warning naming the flags")
        self.assertIsNotNone(warn)
        flags = self.redis.client().config_get("notify-keyspace-events")["notify-keyspace-events"]
        self.assertEqual(flags, "", "the bridge must not change them when told not to")


if __name__ == "__main__":
    unittest.main()
