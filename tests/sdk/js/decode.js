// decode.js MESSAGES.json -- feed Kafka messages to the JavaScript CloudEvents
// SDK's Kafka binding (npm `cloudevents`, Kafka.toEvent, then
// CloudEvent.validate()) and print, one JSON line each, what it made of them.
// Run by tests/sdk/test_sdk.py with NODE_PATH set to the node_modules that
// scripts/fetch-sdks.sh installed; nothing here judges the result.
//
// Each message is first given as kafkajs hands it to an eachMessage handler
// (key, value and header values as Buffers); the binding reads header values
// as strings, so when that fails the message is given again with the header
// values decoded as UTF-8 ("as_strings"), as a kafkajs application must.
"use strict";
const fs = require("fs");
const { Kafka, CloudEvent } = require("cloudevents");

const CORE = new Set(["specversion", "id", "source", "type", "subject", "datacontenttype",
                      "time", "dataschema", "data", "data_base64"]);

function b64(s) { return s === null ? null : Buffer.from(s, "base64"); }

function describe(ev) {
  const ext = {};
  for (const k of Object.keys(ev)) {
    if (!CORE.has(k) && ev[k] !== undefined) {
      const v = ev[k];
      ext[k] = Buffer.isBuffer(v) ? { $buffer_b64: v.toString("base64") } : v;
    }
  }
  const t = ev.time === undefined ? null : ev.time;
  let data = ev.data;
  if (Buffer.isBuffer(data)) data = { $bytes_b64: data.toString("base64") };
  return {
    specversion: ev.specversion, id: ev.id, source: ev.source, type: ev.type,
    subject: ev.subject === undefined ? null : ev.subject,
    datacontenttype: ev.datacontenttype === undefined ? null : ev.datacontenttype,
    time: t,
    time_us: t === null ? null : Date.parse(t) * 1000,
    time_utc: t === null ? null : t.endsWith("Z"),
    data: data === undefined ? null : data,
    extensions: ext,
  };
}

function decode(message) {
  const ev = Kafka.toEvent(message);
  ev.validate();
  return ev;
}

const messages = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const pkg = require("cloudevents/package.json");
console.log(JSON.stringify({ sdk: "javascript", package: "cloudevents", version: pkg.version,
                             binding: "Kafka.toEvent + CloudEvent.validate()",
                             kafkajs: require("kafkajs/package.json").version }));
messages.forEach((m, i) => {
  const headers = {};
  for (const [name, v] of m.headers) if (v !== null) headers[name] = b64(v);
  const kafkajs = { key: b64(m.key), value: b64(m.value), headers, timestamp: String(m.timestamp) };
  const out = { i };
  try {
    out.event = describe(decode(kafkajs));
    out.ok = true;
  } catch (e) {
    out.ok = false;
    out.error = `${e.name}: ${e.message}${e.errors ? " " + JSON.stringify(e.errors) : ""}`;
    const strings = {};
    for (const [name, v] of Object.entries(headers)) strings[name] = v.toString("utf8");
    try {
      out.as_strings = describe(decode({ ...kafkajs, headers: strings }));
    } catch (e2) {
      out.as_strings_error = `${e2.name}: ${e2.message}${e2.errors ? " " + JSON.stringify(e2.errors) : ""}`;
    }
  }
  console.log(JSON.stringify(out));
});
