#!/usr/bin/python3
"""schema.event: real encoder output against docs/event.schema.json.

    check_event_schema.py SCHEMA_EVENTS_BINARY docs/event.schema.json

Runs the C program (tests/schema/schema_events.c), which prints one JSON
line per (case, format) with the exact input bytes and the encoded value,
then for every line:
  - parses the value strictly (no duplicate members, no NaN, no lone
    surrogates: what strict parsers in other languages also refuse);
  - validates it against the schema: the whole document for cloudevents,
    $defs/data for cloudevents-binary, $defs/jsonValue for json;
  - checks that key_base64 (or the key text, when there is none) gives back
    the exact key bytes, and likewise params/params_base64;
  - checks that the U+FFFD text is the documented per-byte replacement,
    that subject/type/headers agree with data, and that the id and time
    are the same in every format of one case.
Uses Debian's python3-jsonschema (Draft 2020-12).
"""
import base64
import codecs
import json
import subprocess
import sys

import jsonschema


def per_byte_replace(err):
    # Python reports the maximal ill-formed subpart; the encoder replaces
    # each of its bytes with one U+FFFD (docs/event.md).
    return ("\ufffd" * (err.end - err.start), err.end)


codecs.register_error("eb-per-byte", per_byte_replace)


def sanitized(raw):
    return raw.decode("utf-8", "eb-per-byte")


def strict_loads(text):
    def no_dupes(pairs):
        obj = {}
        for k, v in pairs:
            if k in obj:
                raise ValueError("duplicate member %r" % k)
            obj[k] = v
        return obj

    def no_constant(name):
        raise ValueError("non-JSON constant %s" % name)

    value = json.loads(text, object_pairs_hook=no_dupes, parse_constant=no_constant)

    def walk(v):
        if isinstance(v, str):
            v.encode("utf-8")  # raises on a lone surrogate
        elif isinstance(v, dict):
            for k, x in v.items():
                walk(k)
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(value)
    return value


class Checker:
    def __init__(self, schema):
        jsonschema.Draft202012Validator.check_schema(schema)
        defs = schema["$defs"]
        sub = lambda name: {"$schema": schema["$schema"], "$defs": defs, "$ref": "#/$defs/" + name}
        fc = jsonschema.FormatChecker()
        self.validators = {
            "cloudevents": jsonschema.Draft202012Validator(schema, format_checker=fc),
            "cloudevents-binary": jsonschema.Draft202012Validator(sub("data"), format_checker=fc),
            "json": jsonschema.Draft202012Validator(sub("jsonValue"), format_checker=fc),
        }
        self.headers = jsonschema.Draft202012Validator(sub("binaryHeaders"), format_checker=fc)
        self.failures = []
        self.ids = {}

    def fail(self, where, msg):
        self.failures.append("%s: %s" % (where, msg))

    def check_line(self, line):
        rec = strict_loads(line)
        where = "%s/%s" % (rec["case"], rec["format"])
        # The line itself was parsed; re-parse the value alone strictly too.
        value = rec["value"]
        for err in self.validators[rec["format"]].iter_errors(value):
            self.fail(where, "schema: %s at %s" % (err.message[:200], list(err.absolute_path)))
        data = value["data"] if rec["format"] == "cloudevents" else value
        headers = [(n, base64.b64decode(v)) for n, v in rec["headers"]]
        key = base64.b64decode(rec["key_b64"])
        self.check_key(where, key, data)
        self.check_params(where, rec["params_b64"], data)
        if rec["format"] == "cloudevents":
            self.check_structured(where, key, value, headers)
            self.note_id(rec["case"], value["id"], value["time"], where)
        elif rec["format"] == "cloudevents-binary":
            self.check_binary(where, key, data, headers)
        else:
            # Only the route's own headers, none of a CloudEvents format.
            if any(n.startswith("ce_") or n == "content-type" for n, _ in headers):
                self.fail(where, "json format sent format headers %r" % headers)
            self.note_id(rec["case"], value["id"], value["time"], where)

    def check_key(self, where, key, data):
        try:
            key.decode("utf-8")
            valid = True
        except UnicodeDecodeError:
            valid = False
        if valid:
            if "key_base64" in data:
                self.fail(where, "key_base64 on a valid UTF-8 key")
            if data["key"].encode("utf-8") != key:
                self.fail(where, "key text does not round-trip")
        else:
            if "key_base64" not in data:
                self.fail(where, "key_base64 missing for a non-UTF-8 key")
            elif base64.b64decode(data["key_base64"], validate=True) != key:
                self.fail(where, "key_base64 does not give back the key bytes")
            if data["key"] != sanitized(key):
                self.fail(where, "key is not the per-byte U+FFFD replacement")

    def check_params(self, where, params_b64, data):
        params = data["params"]
        if list(params) != list(params_b64):
            self.fail(where, "params %r, want names %r" % (list(params), list(params_b64)))
            return
        pb = data.get("params_base64", {})
        for name, b64 in params_b64.items():
            raw = base64.b64decode(b64)
            try:
                raw.decode("utf-8")
                valid = True
            except UnicodeDecodeError:
                valid = False
            if valid:
                if name in pb or params[name].encode("utf-8") != raw:
                    self.fail(where, "param %s does not round-trip" % name)
            else:
                if name not in pb or base64.b64decode(pb[name], validate=True) != raw:
                    self.fail(where, "params_base64.%s does not give back the bytes" % name)
                if params[name] != sanitized(raw):
                    self.fail(where, "param %s is not the per-byte replacement" % name)
        if "params_base64" in data and set(pb) - set(params):
            self.fail(where, "params_base64 names unknown params")

    def check_structured(self, where, key, value, headers):
        data = value["data"]
        if value["type"] != "redis.key." + data["event"]:
            self.fail(where, "type %r vs event %r" % (value["type"], data["event"]))
        if key:
            if value.get("subject") != data["key"]:
                self.fail(where, "subject differs from data.key")
        elif "subject" in value:
            self.fail(where, "subject present for the empty key")
        names = [n for n, _ in headers]
        if names[:1] != ["content-type"] or headers[0][1] != b"application/cloudevents+json":
            self.fail(where, "structured headers %r" % headers)

    def check_binary(self, where, key, data, headers):
        text = {}
        for n, v in headers[:7]:
            if not n.startswith("ce_") and n != "content-type":
                break
            try:
                text[n] = v.decode("utf-8")
            except UnicodeDecodeError:
                self.fail(where, "header %s is not UTF-8" % n)
                return
        for err in self.headers.iter_errors(text):
            self.fail(where, "headers: %s" % err.message[:200])
        want = ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time"]
        want += ["ce_subject"] if key else []
        want += ["content-type"]
        if list(text) != want:
            self.fail(where, "binary header names %r" % list(text))
        if text.get("ce_type") != "redis.key." + data["event"]:
            self.fail(where, "ce_type %r" % text.get("ce_type"))
        if key and text.get("ce_subject") != sanitized(key):
            self.fail(where, "ce_subject is not the sanitised key")
        case = where.split("/")[0]
        self.note_id(case, text.get("ce_id"), text.get("ce_time"), where)

    def note_id(self, case, id_, time, where):
        seen = self.ids.setdefault(case, (id_, time))
        if seen != (id_, time):
            self.fail(where, "id/time %r differ from another format's %r" % ((id_, time), seen))


def main():
    binary, schema_path = sys.argv[1], sys.argv[2]
    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)
    checker = Checker(schema)
    out = subprocess.run([binary], check=True, stdout=subprocess.PIPE).stdout
    # split on "\n" only: splitlines() would also cut at U+2028, U+0085, ...
    # which JSON strings may hold raw.
    lines = out.decode("utf-8").split("\n")[:-1]  # the whole stream must be UTF-8
    for line in lines:
        checker.check_line(line)
    cases = len(checker.ids)
    if len(lines) != 3 * cases or cases < 20:
        checker.failures.append("expected 3 formats x >= 20 cases, got %d lines" % len(lines))
    # The schema must also say no: a few broken documents.
    good = strict_loads(lines[0])["value"]
    bad = [
        dict(good, id="ABC"),
        dict(good, specversion="0.3"),
        dict(good, extra=1),
        dict(good, time="2026-11-24T03:40:00Z"),
        dict(good, data=dict(good["data"], delivery="late")),
        dict(good, data=dict(good["data"], key_base64="not base64!")),
        dict(good, data=dict(good["data"], unknown=True)),
        # plugin fields live in data.ext (docs/event.md, "Extensions"), only there
        dict(good, data=dict(good["data"], region="eu-west")),
        dict(good, data=dict(good["data"], ext={})),
        dict(good, data=dict(good["data"], ext=["region"])),
        dict(good, data=dict(good["data"], ext={"a.b": 1})),
        dict(good, data=dict(good["data"], ext={"": 1})),
        {k: v for k, v in good.items() if k != "id"},
    ]
    for i, doc in enumerate(bad):
        if checker.validators["cloudevents"].is_valid(doc):
            checker.failures.append("schema accepted broken document %d" % i)
    for f in checker.failures:
        print("FAIL", f)
    print("checked %d values (%d cases x 3 formats) against %s: %d failures"
          % (len(lines), cases, schema_path, len(checker.failures)))
    return 1 if checker.failures else 0


if __name__ == "__main__":
    sys.exit(main())
