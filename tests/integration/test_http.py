"""HTTP endpoint: /metrics in the Prometheus text format (strictly parsed,
and cross-checked with python3-prometheus-client's parser), counters that
move with traffic, /healthz through outages, /readyz following Redis and
Kafka, GET/HEAD only, and a bind error that stops start-up naming the
address."""
import json
import os
import re
import signal
import socket
import unittest

from prometheus_client.parser import text_string_to_metric_families

from ebtest import (SOURCE_DIR, Bridge, BridgeTestCase, Metrics, Timeout, bridge_config,
                    free_port, http_config, http_get, scrape, wait_for)

ROUTES = """
  - name: orders
    match: "order:{id}"
    topic: orders.expired
    key: "{id}"
  - name: carts
    match: "cart:{id}"
    topic: carts.expired
"""

# Every metric issue 5 asks for, by name and type.
REQUIRED = {
    "eb_events_received_total": "counter",
    "eb_events_routed_total": "counter",
    "eb_events_unrouted_total": "counter",
    "eb_events_produced_total": "counter",
    "eb_events_delivery_failed_total": "counter",
    "eb_events_dropped_total": "counter",
    "eb_kafka_queue_events": "gauge",
    "eb_kafka_queue_capacity_events": "gauge",
    "eb_delivery_latency_seconds": "histogram",
    "eb_expiry_lateness_seconds": "histogram",
    "eb_redis_connected": "gauge",
    "eb_redis_reconnects_total": "counter",
    "eb_redis_gap_seconds_total": "counter",
    "eb_redis_gaps_total": "counter",
    "eb_config_reloads_total": "counter",
    "eb_build_info": "gauge",
}

PROMETHEUS_CT = "text/plain; version=0.0.4; charset=utf-8"


class HttpTest(BridgeTestCase, unittest.TestCase):

    def start(self, **cfg):
        self.port = free_port()
        return self.start_stack(ROUTES, extra=http_config(self.port), **cfg)

    def arm(self, keys):
        pipe = self.redis.client().pipeline(transaction=False)
        for k in keys:
            pipe.set(k, "x", px=10)
        pipe.execute()

    def ready(self):
        status, _, body = http_get(self.port, "/readyz")
        return status, json.loads(body)

    def wait_ready(self, want_status, what):
        """The first /readyz answer with want_status. When none comes, the
        failure says what /readyz last answered and what the bridge last
        logged (a timeout alone does not say which side was stuck)."""
        last = []

        def cond():
            r = self.ready()
            last[:] = [r]
            return r if r[0] == want_status else None
        try:
            return wait_for(cond, 20, what=what)
        except (Timeout, OSError) as e:
            raise AssertionError("%s; last /readyz answer %r; bridge exit code %r; bridge log:\n%s"
                                 % (e, last[0] if last else None, self.bridge.proc.poll(),
                                    self.bridge.stderr_tail())) from e

    # ---------------------------------------------------------- /metrics

    def test_metrics_parse_as_prometheus_text_and_follow_the_naming_conventions(self):
        self.start()
        self.arm(["order:1", "nobody:1"])
        wait_for(lambda: scrape(self.port)[0].total("eb_events_produced_total") >= 1,
                 what="one event produced")
        m, headers = scrape(self.port)
        self.assertEqual(headers["content-type"], PROMETHEUS_CT)
        status, _, body = http_get(self.port, "/metrics")
        text = body.decode("utf-8")
        # Cross-check with the reference parser (it is lenient, ours is strict).
        ref = {f.name: f.type for f in text_string_to_metric_families(text)}
        for name, kind in REQUIRED.items():
            self.assertEqual(m.types.get(name), kind, name)
            self.assertIn(name.removesuffix("_total"), ref, name)
        for name, kind in m.types.items():
            self.assertTrue(name.startswith("eb_"), name)
            self.assertTrue(m.helps.get(name), "%s has HELP" % name)
            if kind == "counter":
                self.assertTrue(name.endswith("_total"), name)
            if kind == "histogram":
                self.assertTrue(name.endswith("_seconds"), name)
        self.assertEqual(m.total("eb_build_info"), 1)
        self.assertEqual(m.get("eb_redis_connected"), 1)

    def test_every_metric_family_is_documented_in_docs_metrics_md(self):
        self.start()
        with open(os.path.join(SOURCE_DIR, "docs", "metrics.md")) as f:
            documented = set(re.findall(r"^\| `(eb_[a-z0-9_]+)` \| (\w+) \|", f.read(), re.M))
        m, _ = scrape(self.port)
        self.assertEqual(set(m.types.items()) - documented, set(),
                         "families rendered but not in docs/metrics.md (or with another type)")

    def test_head_answers_the_length_of_get_without_a_body(self):
        self.start()
        self.wait_ready(200, "ready")
        for path in ("/metrics", "/healthz", "/readyz"):
            gs, gh, gbody = http_get(self.port, path)
            hs, hh, hbody = http_get(self.port, path, method="HEAD")
            self.assertEqual((gs, hs), (200, 200), path)
            self.assertEqual(hbody, b"", path)
            self.assertEqual(hh["content-type"], gh["content-type"], path)
            if path != "/metrics":  # /metrics changes between two requests
                self.assertEqual(int(hh["content-length"]), len(gbody), path)

    def test_counters_move_with_traffic_per_route(self):
        self.start()
        c = self.consumer(["orders.expired", "carts.expired"])
        before, _ = scrape(self.port)
        self.arm(["order:%d" % i for i in range(30)] + ["cart:%d" % i for i in range(20)] +
                 ["nobody:%d" % i for i in range(5)])
        c.collect(50)

        def done():
            m, _ = scrape(self.port)
            return m.total("eb_events_produced_total") >= 50 and m
        m = wait_for(done, 20, what="50 events produced")
        orders = {"route": "orders", "topic": "orders.expired"}
        carts = {"route": "carts", "topic": "carts.expired"}
        self.assertEqual(m.get("eb_events_received_total", event="expired", db="0"), 55)
        self.assertEqual(m.get("eb_events_unrouted_total", event="expired", db="0"), 5)
        self.assertEqual(m.get("eb_events_routed_total", **orders), 30)
        self.assertEqual(m.get("eb_events_routed_total", **carts), 20)
        self.assertEqual(m.get("eb_events_produced_total", **orders), 30)
        self.assertEqual(m.get("eb_events_produced_total", **carts), 20)
        self.assertEqual(m.get("eb_delivery_latency_seconds_count", **orders), 30)
        self.assertEqual(m.get("eb_delivery_latency_seconds_count", **carts), 20)
        self.assertGreater(m.get("eb_delivery_latency_seconds_sum", **orders), 0)
        self.assertEqual(m.total("eb_events_delivery_failed_total"), 0)
        self.assertEqual(m.total("eb_events_dropped_total"), 0)
        self.assertEqual(m.get("eb_kafka_queue_events"), 0)
        self.assertEqual(before.get("eb_events_routed_total", **orders), 0)

    def test_queue_depth_counts_events_held_while_kafka_is_down(self):
        self.start()
        self.kafka.down()
        self.arm(["order:%d" % i for i in range(25)])
        m = wait_for(lambda: (lambda m: m.get("eb_kafka_queue_events") == 25 and m)(
            scrape(self.port)[0]), 20, what="25 events queued")
        self.assertEqual(m.total("eb_events_produced_total"), 0)
        self.assertEqual(m.get("eb_kafka_queue_capacity_events"), 100000)
        self.kafka.up()
        wait_for(lambda: scrape(self.port)[0].get("eb_kafka_queue_events") == 0, 30,
                 what="queue drained after Kafka returned")

    # ------------------------------------------------- /healthz, /readyz

    def test_healthz_stays_200_and_readyz_follows_a_redis_outage(self):
        self.start()
        status, body = self.wait_ready(200, "ready at start")
        self.assertEqual(body, {"status": "ready", "redis": "subscribed", "kafka": "reachable"})
        self.redis.kill()
        status, body = self.wait_ready(503, "/readyz 503 with Redis down")
        self.assertNotEqual(body["redis"], "subscribed")
        self.assertEqual(body["kafka"], "reachable")
        self.assertEqual(http_get(self.port, "/healthz")[:1], (200,))
        self.assertEqual(scrape(self.port)[0].get("eb_redis_connected"), 0)
        self.redis.start()
        self.wait_ready(200, "/readyz 200 once Redis is back")
        self.assertEqual(http_get(self.port, "/healthz")[0], 200)

    def test_readyz_is_503_while_every_broker_is_down_and_200_when_back(self):
        self.start()
        self.wait_ready(200, "ready at start")
        self.kafka.down()
        status, body = self.wait_ready(503, "/readyz 503 with every broker down")
        self.assertEqual(body["kafka"], "unreachable")
        self.assertEqual(body["redis"], "subscribed")
        self.assertEqual(http_get(self.port, "/healthz")[0], 200)
        self.kafka.up()
        self.wait_ready(200, "/readyz 200 once a broker is back")

    def test_readyz_is_503_while_draining_on_sigterm(self):
        self.start(drain="20s")
        self.kafka.down()
        self.arm(["order:1"])
        wait_for(lambda: scrape(self.port)[0].get("eb_kafka_queue_events") == 1,
                 what="one event in flight")
        self.bridge.send_signal(signal.SIGTERM)
        self.bridge.wait_log(lambda e: e.get("msg", "").startswith("shutting down"))
        status, body = self.ready()
        self.assertEqual(status, 503)
        self.assertTrue(body["draining"])
        self.assertEqual(http_get(self.port, "/healthz")[0], 200)
        self.kafka.up()
        self.assertEqual(self.bridge.wait_exit(30), 0)

    # -------------------------------------------------------- the server

    def test_only_get_and_head_on_known_paths(self):
        self.start()
        status, headers, _ = http_get(self.port, "/metrics", method="POST")
        self.assertEqual(status, 405)
        self.assertEqual(headers["allow"], "GET, HEAD")
        self.assertEqual(http_get(self.port, "/readyz", method="DELETE")[0], 405)
        self.assertEqual(http_get(self.port, "/")[0], 404)
        self.assertEqual(http_get(self.port, "/metrics/extra")[0], 404)
        self.assertEqual(http_get(self.port, "/metrics?name=x")[0], 200)

    def test_ipv6_wildcard_listen_serves_ipv4_too(self):
        if not socket.has_ipv6:
            self.skipTest("no IPv6 on this machine")
        try:
            with socket.socket(socket.AF_INET6) as s:
                s.bind(("::", 0))
        except OSError:
            self.skipTest("cannot bind ::")
        self.port = free_port()
        self.start_stack(ROUTES, extra="http:\n  listen: \"[::]:%d\"\n" % self.port)
        self.assertEqual(http_get(self.port, "/healthz")[0], 200)
        self.assertEqual(http_get(self.port, "/healthz", host="::1")[0], 200)

    def test_a_port_in_use_stops_start_up_with_exit_1_naming_the_address(self):
        self.redis = self.start_redis()
        self.kafka = self.start_kafka()
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen(1)
            port = busy.getsockname()[1]
            b = Bridge(bridge_config(self.redis.port, self.kafka.bootstrap, ROUTES,
                                     extra=http_config(port))).start()
            self.addCleanup(b.cleanup)
            self.assertEqual(b.wait_exit(20), 1)
        entry = b.find_log(lambda e: e.get("msg") == "cannot start")
        self.assertIn("127.0.0.1:%d" % port, entry["error"])
        self.assertIn("Address already in use", entry["error"])
        self.assertEqual(self.redis.client().client_list(_type="pubsub"), [],
                         "nothing subscribed before the port was known to be free")

    def test_no_http_server_when_listen_is_empty(self):
        self.start_stack(ROUTES)
        self.assertIsNone(self.bridge.find_log(lambda e: e.get("msg") == "http server listening"))


class MetricsParserTest(unittest.TestCase):
    """The strict parser refuses what the format refuses (so the tests above
    mean something)."""

    def test_refuses_malformed_text(self):
        bad = [
            "x 1",                                       # no final newline
            "# TYPE x counter\n# TYPE x counter\nx 1\n",  # TYPE twice
            "x 1\n# TYPE x counter\n",                   # TYPE after samples
            "x{a=\"1\\q\"} 1\n",                         # bad escape
            "x{a=\"1\",a=\"2\"} 1\n",                    # duplicate label
            "x 1\nx 2\n",                                # duplicate series
            "x 1\ny 1\nx{a=\"b\"} 1\n",                  # family split
            "x one\n",                                   # bad value
            "9x 1\n",                                    # bad name
            "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\n"
            "h_sum 1\nh_count 1\n",                      # not cumulative
            "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 1\n",
        ]
        for text in bad:
            with self.assertRaises(ValueError, msg=repr(text)):
                Metrics(text)

    def test_accepts_valid_text(self):
        m = Metrics("# HELP x a \\\\ b\\nc\n# TYPE x counter\nx{a=\"q\\\"\\n\"} 1.5e3\n"
                    "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\n"
                    "h_sum 3\nh_count 2\ng NaN\ni +Inf 123\n")
        self.assertEqual(m.get("x", a="q\"\n"), 1500)
        self.assertEqual(m.helps["x"], "a \\ b\nc")
        self.assertEqual(m.get("h_count"), 2)


if __name__ == "__main__":
    unittest.main()
