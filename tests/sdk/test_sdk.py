#!/usr/bin/python3
"""sdk.<name> -- real bridge output read by an official CloudEvents SDK.

The real daemon runs against a real redis-server and the mock Kafka (the
Kafka protocol, librdkafka's mock cluster) with one route per format:
`cloudevents` (structured), `cloudevents-binary` and `json`. Keys of every
kind expire -- plain ASCII, JSON-escaped characters, non-ASCII UTF-8,
control characters and NUL, and keys that are not UTF-8 at all -- and every
message (value, headers, key) is read back from Kafka and handed to one
SDK's Kafka protocol binding (EB_SDK: python, javascript or java; decoders
in tests/sdk/<sdk>/, SDKs fetched by scripts/fetch-sdks.sh). Every attribute
the SDK reports is checked against docs/event.md:

  specversion, id (the XXH3 rule, recomputed), source, type, time (UTC; to
  the microsecond, or what the SDK keeps of it), subject (the key, U+FFFD
  per invalid byte), datacontenttype, data (every member, key_base64 and
  params_base64 giving back the exact bytes), and the extensions the
  binding adds on its own (the Kafka key as `partitionkey`).

`json` is not a CloudEvent (no specversion, source or type): each SDK must
refuse it. What each SDK does differently from the contract is asserted
exactly (so a new SDK version that changes it fails here) and summarised in
docs/event.md. Exit 77 when the SDK is not fetched (1 under
EB_REQUIRE_FETCHED=1).
"""
import base64
import datetime
import json
import os
import re
import struct
import subprocess
import sys
import time
import unittest

import ebcache
import ebtest
from ebtest import Bridge, MockKafka, RedisServer, TempDir, bridge_config, poll_messages

SDK = os.environ.get("EB_SDK", "python")
HERE = os.path.dirname(os.path.abspath(__file__))

ROUTES = {  # format -> (route name, key prefix, topic)
    "cloudevents": ("sdk-structured", b"ce:", "sdk.structured"),
    "cloudevents-binary": ("sdk-binary", b"bin:", "sdk.binary"),
    "json": ("sdk-json", b"js:", "sdk.json"),
}
# The part after the prefix: also the route's {id} capture.
SUFFIXES = [
    b"1",
    b'quote"back\\slash/',
    "\u00fcn\u00efc\u00f6d\u00e9-\u2713-\U0001f600".encode(),
    b"tab\there\x01\x1f",
    b"nul\x00x",
    b"\xff\xfe",                  # not UTF-8
    b"trunc\xe2\x82",             # a truncated 3-byte sequence: two U+FFFD
    b"mixed-\xc3\xa9-\xed\xa0\x80",  # a valid char, then an encoded surrogate
]
ID_RE = re.compile(r"^[0-9a-f]{32}$")


def routes_yaml():
    out = []
    for fmt, (name, prefix, topic) in ROUTES.items():
        out.append('  - name: %s\n    match: "%s{id}"\n    topic: %s\n    format: %s\n'
                   % (name, prefix.decode(), topic, fmt))
    out[1] += "    headers: { x-team: shop }\n"   # a route header beside the ce_ ones
    return "".join(out)


def as_text(raw):
    """docs/event.md: valid UTF-8 as it is; otherwise each byte that is not
    part of a well-formed sequence becomes one U+FFFD."""
    out, i = [], 0
    while i < len(raw):
        b = raw[i]
        n = 1 if b < 0x80 else 2 if 0xC2 <= b <= 0xDF else 3 if 0xE0 <= b <= 0xEF \
            else 4 if 0xF0 <= b <= 0xF4 else 0
        try:
            if n == 0:
                raise ValueError
            out.append(raw[i:i + n].decode("utf-8"))  # strict: no surrogates, overlongs
            i += n
        except (ValueError, UnicodeDecodeError):
            out.append("\ufffd")
            i += 1
    return "".join(out)


def is_utf8(raw):
    try:
        raw.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def time_us(text):
    d = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)
    epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
    return (d - epoch) // datetime.timedelta(microseconds=1)


def event_id(source, db, key, event, t_us):
    """docs/event.md, the id rule (no deadline: 't' + observation time)."""
    import xxhash
    s = source.encode()
    framed = (struct.pack("<Q", len(s)) + s + struct.pack("<q", db) +
              struct.pack("<Q", len(key)) + key + struct.pack("<Q", len(event)) +
              event.encode() + b"t" + struct.pack("<q", t_us))
    return xxhash.xxh3_128(framed).hexdigest()


def decoder_argv(sdk_dir, messages):
    if SDK == "python":
        return ["/usr/bin/python3", "-s", os.path.join(HERE, "python", "decode.py"), messages], \
            {"PYTHONPATH": sdk_dir}
    if SDK == "javascript":
        return ["node", os.path.join(HERE, "js", "decode.js"), messages], \
            {"NODE_PATH": os.path.join(sdk_dir, "node_modules")}
    return ["java", "-cp", os.path.join(sdk_dir, "lib", "*"),
            os.path.join(HERE, "java", "Decode.java"), messages], {}


class SdkTest(unittest.TestCase):
    """One bridge run, one SDK decoding every message; the tests check it."""

    @classmethod
    def setUpClass(cls):
        kind = {"python": "python", "javascript": "js", "java": "java"}[SDK]
        cls.sdk_dir = ebcache.sdk(kind)
        cls.tmp = TempDir("sdk")
        cls.addClassCleanup(cls.tmp.cleanup)
        cls.redis = RedisServer().start()
        cls.addClassCleanup(cls.redis.cleanup)
        cls.kafka = MockKafka(brokers=1, topics=["%s:1" % t for _, _, t in ROUTES.values()]).start()
        cls.addClassCleanup(cls.kafka.stop)
        cls.bridge = Bridge(bridge_config(cls.redis.port, cls.kafka.bootstrap, routes_yaml()))
        cls.addClassCleanup(cls.bridge.cleanup)
        cls.bridge.start()
        cls.bridge.wait_log(ebtest.is_subscribed_log, 20, what="bridge subscribed to Redis")
        cls.source = "redis://127.0.0.1:%d/0" % cls.redis.port

        cls.t0 = time.time()
        r = cls.redis.client()
        cls.keys = {}  # Kafka key bytes -> format
        for fmt, (_, prefix, _) in ROUTES.items():
            for s in SUFFIXES:
                r.set(prefix + s, "x", px=30)
                cls.keys[prefix + s] = fmt
        cls.messages = cls.read_all(len(cls.keys))
        cls.t1 = time.time()
        path = os.path.join(cls.tmp.path, "messages.json")
        with open(path, "w") as f:
            json.dump(cls.messages, f)

        argv, env = decoder_argv(cls.sdk_dir, path)
        p = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, **env))
        if p.returncode != 0:
            raise AssertionError("%s decoder exited %d:\n%s" % (SDK, p.returncode, p.stderr))
        lines = [json.loads(x) for x in p.stdout.splitlines() if x.strip()]
        cls.head, cls.results = lines[0], lines[1:]
        if os.environ.get("EB_SDK_DUMP"):
            with open(os.environ["EB_SDK_DUMP"], "w") as f:
                json.dump({"messages": cls.messages, "results": cls.results}, f)
        print("%s: %s %s via %s" % (SDK, cls.head["package"], cls.head["version"],
                                    cls.head["binding"]), flush=True)

    @classmethod
    def read_all(cls, n):
        """Every message of the three topics (one partition each), exactly n."""
        from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING
        c = Consumer({"bootstrap.servers": cls.kafka.bootstrap, "group.id": "sdk-reader",
                      "enable.auto.commit": False, "log_level": 2})
        try:
            c.assign([TopicPartition(t, 0, OFFSET_BEGINNING) for _, _, t in ROUTES.values()])
            got = poll_messages(c, n, 30, what="%d messages from the bridge" % n)
            extra = c.poll(1.0)  # an exact count: nothing more arrives
            if extra is not None and not extra.error():
                raise AssertionError("more than %d messages: %r" % (n, extra.value()[:100]))
            enc = lambda b: None if b is None else base64.b64encode(b).decode()
            return [{"topic": m.topic(), "partition": m.partition(), "offset": m.offset(),
                     "timestamp": m.timestamp()[1], "key": enc(m.key()), "value": enc(m.value()),
                     "headers": [[h, enc(v)] for h, v in (m.headers() or [])]}
                    for m in got]
        finally:
            c.close()

    # ------------------------------------------------------------- expectations

    def expected(self, m):
        """What docs/event.md says this message's event is, from its key and
        the bridge's own time (the only value the test cannot know)."""
        key = base64.b64decode(m["key"])
        fmt = self.keys[key]
        name, prefix, topic = ROUTES[fmt]
        self.assertEqual(m["topic"], topic)
        cap = key[len(prefix):]
        value = base64.b64decode(m["value"])
        headers = {h: base64.b64decode(v) for h, v in m["headers"]}
        raw = json.loads(value)
        t = headers["ce_time"].decode() if fmt == "cloudevents-binary" else raw["time"]
        data = {"event": "expired", "key": as_text(key)}
        if not is_utf8(key):
            data["key_base64"] = base64.b64encode(key).decode()
        data.update(db=0, route=name, params={"id": as_text(cap)})
        if not is_utf8(cap):
            data["params_base64"] = {"id": base64.b64encode(cap).decode()}
        data["delivery"] = "live"
        return {"fmt": fmt, "key": key, "cap": cap, "value": value, "headers": headers,
                "time": t, "time_us": time_us(t), "data": data,
                "id": event_id(self.source, 0, key, "expired", time_us(t))}

    def sdk_event(self, result):
        """The event the SDK produced (after the documented workaround, if
        the first attempt failed), with data as JSON."""
        ev = result.get("event") or result.get("without_key") or result.get("as_strings")
        self.assertIsNotNone(ev, "the SDK decoded nothing: %s" % result)
        ev = dict(ev)
        d = ev["data"]
        if isinstance(d, dict) and "$bytes_b64" in d:
            ev["data_bytes"] = base64.b64decode(d["$bytes_b64"])
            ev["data"] = json.loads(ev["data_bytes"])
        return ev

    # -------------------------------------------------------------------- tests

    def test_every_message_was_read_exactly_once(self):
        self.assertEqual(len(self.messages), len(ROUTES) * len(SUFFIXES))
        self.assertEqual(sorted(base64.b64decode(m["key"]) for m in self.messages),
                         sorted(self.keys))
        self.assertEqual(len(self.results), len(self.messages))

    def test_the_bridge_output_is_the_contract(self):
        """Independently of any SDK: the raw messages are what docs/event.md says."""
        for m in self.messages:
            e = self.expected(m)
            if e["fmt"] == "cloudevents":
                self.assertEqual(list(e["headers"]), ["content-type"])
                ebtest.validate_event(json.loads(e["value"]))
                self.assertEqual(json.loads(e["value"])["data"], e["data"])
            elif e["fmt"] == "cloudevents-binary":
                h = e["headers"]
                names = ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time",
                         "ce_subject", "content-type", "x-team"]
                self.assertEqual([x[0] for x in m["headers"]], names)
                self.assertEqual(h["ce_subject"].decode(), as_text(e["key"]))
                self.assertEqual(h["ce_id"].decode(), e["id"])
                self.assertEqual(json.loads(e["value"]), e["data"])
            else:
                self.assertEqual(m["headers"], [])
                v = json.loads(e["value"])
                self.assertEqual(v.pop("id"), e["id"])
                self.assertEqual(v.pop("time"), e["time"])
                self.assertEqual(v, e["data"])
            self.assertGreaterEqual(e["time_us"], int(self.t0 * 1e6) - 1000)
            self.assertLessEqual(e["time_us"], int(self.t1 * 1e6) + 1000)

    def test_every_cloudevent_attribute_as_the_sdk_reads_it(self):
        checked = 0
        for m, r in zip(self.messages, self.results):
            e = self.expected(m)
            if e["fmt"] == "json":
                continue
            ev = self.sdk_event(r)
            what = "%s %r" % (e["fmt"], e["key"])
            self.assertEqual(ev["specversion"], "1.0", what)
            self.assertRegex(ev["id"], ID_RE, what)
            self.assertEqual(ev["id"], e["id"], what + ": the id rule")
            self.assertEqual(ev["source"], self.source, what)
            self.assertEqual(ev["type"], "redis.key.expired", what)
            self.assertEqual(ev["subject"], as_text(e["key"]), what)
            self.assertEqual(ev["datacontenttype"], "application/json", what)
            self.assertIs(ev["time_utc"], True, what)
            if SDK == "javascript":
                # Date keeps milliseconds: the SDK truncates the microseconds.
                self.assertEqual(ev["time_us"], e["time_us"] // 1000 * 1000, what)
                self.assertEqual(ev["time"], e["time"][:23] + "Z", what)
            else:
                self.assertEqual(ev["time_us"], e["time_us"], what)
            self.assertEqual(ev["data"], e["data"], what)
            data = ev["data"]
            exact = (base64.b64decode(data["key_base64"]) if "key_base64" in data
                     else data["key"].encode())
            self.assertEqual(exact, e["key"], what + ": the exact key bytes")
            cap = (base64.b64decode(data["params_base64"]["id"]) if "params_base64" in data
                   else data["params"]["id"].encode())
            self.assertEqual(cap, e["cap"], what + ": the exact capture bytes")
            if "data_bytes" in ev and e["fmt"] == "cloudevents-binary":
                self.assertEqual(ev["data_bytes"], e["value"], what + ": data is the value")
            checked += 1
        self.assertEqual(checked, 2 * len(SUFFIXES))
        print("%s: %d events, 8 attributes each, data member by member: as docs/event.md "
              "says%s" % (SDK, checked, " (time to the millisecond)" if SDK == "javascript"
                          else ""))

    def test_what_the_binding_does_with_the_kafka_key_and_headers(self):
        """The deviations, exactly: where the SDK needed a workaround."""
        notes = set()
        for m, r in zip(self.messages, self.results):
            e = self.expected(m)
            if e["fmt"] == "json":
                continue
            what = "%s %r" % (e["fmt"], e["key"])
            ev = self.sdk_event(r)
            if SDK == "python":
                # The binding adds the Kafka key as the `partitionkey`
                # extension, decoding it as UTF-8: a key that is not UTF-8
                # makes it raise, so a consumer passes key=None.
                if is_utf8(e["key"]):
                    self.assertTrue(r["ok"], what)
                    self.assertEqual(ev["extensions"], {"partitionkey": e["key"].decode()}, what)
                else:
                    self.assertFalse(r["ok"], what)
                    self.assertTrue(r["error"].startswith("UnicodeDecodeError"), r["error"])
                    self.assertEqual(ev["extensions"], {}, what)
                    notes.add("non-UTF-8 Kafka key: UnicodeDecodeError; decoded with key=None")
            elif SDK == "javascript":
                # kafkajs hands header values over as Buffers; the binding
                # reads them as strings.
                self.assertFalse(r["ok"], what)
                self.assertRegex(r["error"], r"^TypeError: .*startsWith is not a function", what)
                self.assertIn("as_strings", r, what)
                notes.add("header values as kafkajs gives them (Buffers): TypeError; "
                          "decoded after turning them into strings")
                self.assertEqual(ev["extensions"]["partitionkey"],
                                 {"$buffer_b64": base64.b64encode(e["key"]).decode()}, what)
            else:
                self.assertTrue(r["ok"], "%s: %s" % (what, r.get("error")))
                self.assertEqual(ev["extensions"], {}, what)
        print("%s: %s" % (SDK, "; ".join(sorted(notes)) or "no workaround needed"))

    def test_the_json_format_is_not_a_cloudevent_to_the_sdk(self):
        refused = 0
        for m, r in zip(self.messages, self.results):
            if self.expected(m)["fmt"] != "json":
                continue
            self.assertFalse(r["ok"], "the %s SDK took a json-format value as a CloudEvent" % SDK)
            for k in ("without_key", "as_strings"):
                self.assertNotIn(k, r)
            refused += 1
        self.assertEqual(refused, len(SUFFIXES))
        print("%s: json format refused (%d of %d): %s" % (
            SDK, refused, len(SUFFIXES),
            next(r["error"] for m, r in zip(self.messages, self.results)
                 if self.expected(m)["fmt"] == "json")))


def main():
    kind = {"python": "python", "javascript": "js", "java": "java"}.get(SDK)
    if kind is None:
        print("EB_SDK must be python, javascript or java")
        return 2
    if not ebcache.sdk(kind):
        ebcache.missing("sdk." + SDK, "the %s CloudEvents SDK" % SDK,
                        "scripts/fetch-sdks.sh %s" % kind)
    prog = unittest.main(exit=False, argv=sys.argv)
    return 0 if prog.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
