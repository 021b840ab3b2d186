"""The avro encoder against a real schema registry: Apicurio Registry
(its Confluent-compatible API) started by the test, the bridge registering
its schema there from the plugin's own thread, and every message decoded by
an independent Avro decoder (fastavro) with the schema fetched back from the
registry by the id in the message, then compared field by field with the
event the bridge would have sent as a CloudEvent.

Own ctest label `registry` (a JVM start: ~15-30 s on 2 cores).
"""
import io
import json
import os
import struct
import unittest

from ebtest import BridgeTestCase, final_stats
from registry import Apicurio, fastavro

BUILD = os.environ.get("EB_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..",
                                                    "build"))


class AvroTest(BridgeTestCase, unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.fa = fastavro()
        cls.registry = Apicurio().start()

    @classmethod
    def tearDownClass(cls):
        cls.registry.cleanup()

    def config(self, registry_url):
        return """plugin_dir: %s
plugins:
  - name: tag
    path: enrich
    settings: { fields: { region: eu-west } }
  - name: avro
    path: avro
    settings:
      registry: %s
      subject: shop.orders-value
      fields: [region]
""" % (os.path.join(BUILD, "plugins"), registry_url)

    ROUTES = """
  - name: orders
    match: "order:{shop}:{id}"
    topic: shop.orders
    key: "{id}"
    plugins: [tag, avro]
    dead_letter: shop.orders.dlq
"""

    def decode(self, value):
        self.assertEqual(value[0], 0, "Confluent wire format: magic byte 0")
        (schema_id,) = struct.unpack(">I", value[1:5])
        schema = json.loads(self.registry.get("/schemas/ids/%d" % schema_id)["schema"])
        parsed = self.fa.parse_schema(schema)
        return schema_id, self.fa.schemaless_reader(io.BytesIO(value[5:]), parsed)

    def test_every_message_decodes_back_to_its_event(self):
        self.start_stack(self.ROUTES, extra=self.config(self.registry.url))
        self.bridge.wait_log(lambda e: e.get("msg", "").startswith("avro schema registered"), 60,
                             what="the schema registered")
        c = self.consumer(["shop.orders"])
        keys = ["order:shop:%d" % i for i in range(50)] + ["order:caf\xe9:x\x01y"]
        pipe = self.redis.client().pipeline(transaction=False)
        for k in keys:
            pipe.set(k, "x", px=10)
        pipe.execute()
        msgs = c.collect(len(keys), what="every Avro message")
        ids = set()
        for m in msgs:
            schema_id, rec = self.decode(m["value"])
            ids.add(schema_id)
            key = rec["key"].decode("utf-8")
            self.assertIn(key, keys)
            shop, oid = key.split(":", 2)[1:]
            self.assertEqual(m["key"], oid.encode("utf-8"))
            self.assertEqual(rec["type"], "redis.key.expired")
            self.assertEqual(rec["event"], "expired")
            self.assertEqual(rec["source"], "redis://127.0.0.1:%d/0" % self.redis.port)
            self.assertEqual(rec["db"], 0)
            self.assertEqual(rec["route"], "orders")
            self.assertEqual(rec["params"], {"shop": shop, "id": oid})
            self.assertEqual(rec["delivery"], "live")
            self.assertIsNone(rec["deadline"])
            self.assertIsNone(rec["payload"])
            self.assertEqual(rec["region"], "eu-west")
            self.assertRegex(rec["id"], r"^[0-9a-f]{32}$")
            self.assertEqual(rec["time"].tzinfo is not None, True)
        self.assertEqual(len(ids), 1)
        latest = self.registry.get("/subjects/shop.orders-value/versions/latest")
        self.assertEqual(latest["id"], ids.pop())
        self.assertEqual(self.bridge.stop(), 0)
        stats = final_stats(self.bridge)
        self.assertEqual(stats["produced"], len(keys))
        self.assertEqual(stats["plugin_errors"], 0)

    def test_without_a_registry_events_go_to_the_dead_letter_topic(self):
        self.start_stack(self.ROUTES, extra=self.config("http://127.0.0.1:9/apis/ccompat/v7"))
        c = self.consumer(["shop.orders.dlq"])
        self.redis.client().set("order:shop:1", "x", px=10)
        m = c.collect(1)[0]
        self.assertEqual(m["json"]["subject"], "order:shop:1")
        errs = [v for k, v in m["headers"] if k == "eb-plugin-error"]
        self.assertEqual(len(errs), 1)
        self.assertIn(b"avro: the schema id is not known yet", errs[0])


if __name__ == "__main__":
    unittest.main()
