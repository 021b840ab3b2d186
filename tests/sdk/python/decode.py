#!/usr/bin/python3
"""decode.py MESSAGES.json -- feed Kafka messages (value, headers, key) to the
Python CloudEvents SDK's Kafka protocol binding (cloudevents.core.bindings.
kafka, PyPI `cloudevents` 2.x) and print, one JSON line each, what the SDK
made of them. Run by tests/sdk/test_sdk.py with PYTHONPATH set to the SDK
that scripts/fetch-sdks.sh installed; nothing here judges the result.

Line 1: {"sdk": ..., "version": ...}; then per message {"i", "ok", "event"
| "error"}. When decoding fails with the Kafka key and succeeds without it
(the binding turns the key into the `partitionkey` extension), the second
result is "without_key".
"""
import base64
import datetime
import json
import sys
from importlib.metadata import version

from cloudevents.core.bindings import kafka

CORE = {"specversion", "id", "source", "type", "subject", "datacontenttype", "time",
        "dataschema"}
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def b64(s):
    return None if s is None else base64.b64decode(s)


def describe(ev):
    t = ev.get_time()
    data = ev.get_data()
    if isinstance(data, (bytes, bytearray)):
        data = {"$bytes_b64": base64.b64encode(data).decode()}
    attrs = ev.get_attributes()
    return {
        "specversion": ev.get_specversion(), "id": ev.get_id(), "source": ev.get_source(),
        "type": ev.get_type(), "subject": ev.get_subject(),
        "datacontenttype": ev.get_datacontenttype(),
        "time": None if t is None else t.isoformat(),
        "time_us": None if t is None else (t - EPOCH) // datetime.timedelta(microseconds=1),
        "time_utc": None if t is None else t.utcoffset() == datetime.timedelta(0),
        "data": data,
        "extensions": {k: (v if isinstance(v, (str, int, bool)) or v is None else repr(v))
                       for k, v in attrs.items() if k not in CORE},
    }


def decode(m, key):
    headers = {name: b64(v) for name, v in m["headers"] if v is not None}
    return kafka.from_kafka_event(kafka.KafkaMessage(headers=headers, key=key,
                                                     value=b64(m["value"])))


def main():
    with open(sys.argv[1]) as f:
        messages = json.load(f)
    print(json.dumps({"sdk": "python", "package": "cloudevents",
                      "version": version("cloudevents"),
                      "binding": "cloudevents.core.bindings.kafka.from_kafka_event"}))
    for i, m in enumerate(messages):
        out = {"i": i}
        try:
            out.update(ok=True, event=describe(decode(m, b64(m["key"]))))
        except Exception as e:
            out.update(ok=False, error="%s: %s" % (type(e).__name__, e))
            try:
                out["without_key"] = describe(decode(m, None))
            except Exception as e2:
                out["without_key_error"] = "%s: %s" % (type(e2).__name__, e2)
        print(json.dumps(out))


if __name__ == "__main__":
    main()
