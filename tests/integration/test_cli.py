"""The command line: check, run, --help, --version, exit codes (and the
README's list of them), secrets, and what the log says when Kafka cannot
be reached."""
import json
import os
import re
import subprocess
import unittest

from ebtest import (EB_BIN, SOURCE_DIR, BridgeTestCase, TempDir, bridge_config, free_port,
                    http_config, run_check, scrape, wait_for)

ROUTES = """
  - name: orders
    match: "order:{id}"
    topic: orders.expired
"""


def run(*args, env=None):
    return subprocess.run([EB_BIN] + list(args), capture_output=True, text=True, timeout=30,
                          env=env)


class CliTest(BridgeTestCase, unittest.TestCase):

    def test_help_lists_commands_and_exit_codes(self):
        p = run("--help")
        self.assertEqual(p.returncode, 0)
        for word in ("run -c FILE", "check -c FILE", "Exit codes", "78", "75"):
            self.assertIn(word, p.stdout)

    def test_no_command_exits_64_naming_every_command(self):
        p = run()
        self.assertEqual(p.returncode, 64)
        for command in ("run", "check", "functions load"):
            self.assertIn(command, p.stderr.split("\n")[0])
        self.assertIn("--help", p.stderr)

    def test_the_readme_documents_every_exit_code_help_lists(self):
        help_text = run("--help").stdout
        listed = help_text[help_text.index("Exit codes:"):].split("\n\n")[0]
        codes = re.findall(r"^\s+(\d+)  ", listed, re.M)
        self.assertIn("69", codes)
        with open(os.path.join(SOURCE_DIR, "README.md")) as f:
            readme = f.read()
        section = readme[readme.index("Exit codes:"):].split("\n\n")[0]
        for code in codes:
            self.assertIn("`%s`" % code, section, "README's exit codes lack %s" % code)

    def test_version_names_the_libraries(self):
        p = run("--version")
        self.assertEqual(p.returncode, 0)
        self.assertRegex(p.stdout, r"expiry-bridge \d+\.\d+\.\d+ \(hiredis \d+\.\d+")

    def test_a_bad_command_line_exits_64_with_a_hint(self):
        p = run("frobnicate")
        self.assertEqual(p.returncode, 64)
        self.assertIn("--help", p.stderr)
        self.assertEqual(run("run").returncode, 64, "run without -c")

    def test_check_accepts_the_shipped_example_and_demo_configs(self):
        env = dict(os.environ, REDIS_PASSWORD="s3cret", REDIS_PORT="6379",
                   KAFKA_BROKERS="127.0.0.1:9092")
        for name in ("expiry-bridge.example.yaml", "demo.yaml"):
            p = run("check", "-c", os.path.join(SOURCE_DIR, "config", name), env=env)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("OK", p.stdout)

    def test_check_reports_file_line_col_and_exits_78(self):
        rc, out, err = run_check(bridge_config(6379, "k:9092", ROUTES.replace("topic:", "tpoic:")))
        self.assertEqual(rc, 78)
        self.assertRegex(err, r"config\.yaml:\d+:\d+: .*tpoic.*did you mean 'topic'")

    def test_run_with_an_invalid_config_exits_78_before_connecting(self):
        d = TempDir()
        self.addCleanup(d.cleanup)
        path = d.file("c.yaml", "redis: {url: redis://127.0.0.1:1}\nkafka: {brokers: x}\nroutes: 5\n")
        p = run("run", "-c", path)
        self.assertEqual(p.returncode, 78)
        self.assertIn("configuration is invalid", p.stderr)
        self.assertNotIn("connect", p.stderr.lower().replace("nothing was connected", ""))

    def test_check_never_prints_the_redis_password(self):
        cfg = bridge_config(6379, "k:9092", ROUTES).replace(
            "url: redis://127.0.0.1:6379", "url: redis://app:hunter2@127.0.0.1:6379")
        rc, out, err = run_check(cfg)
        self.assertEqual(rc, 0, err)
        self.assertNotIn("hunter2", out + err)

    def test_the_password_never_reaches_the_log(self):
        self.redis = self.start_redis(("--requirepass", "hunter2"))
        self.kafka = self.start_kafka()
        cfg = bridge_config(self.redis.port, self.kafka.bootstrap, ROUTES).replace(
            "databases: all", "databases: all\n  password: ${REDIS_PASSWORD}")
        bridge = self.start_bridge(cfg, env={"REDIS_PASSWORD": "hunter2"})
        self.redis.client(password="hunter2").set("order:1", "x", px=10)
        c = self.consumer(["orders.expired"])
        c.collect(1)
        self.assertEqual(bridge.stop(), 0)
        self.assertNotIn("hunter2", bridge.stderr_tail(100000))

    def test_an_unreachable_broker_is_logged_once_naming_kafka_brokers(self):
        """librdkafka reports a refused connection twice (a log line and an
        error event) and repeats it: the bridge says it once, names the
        setting to fix, and holds the repeats back."""
        self.redis = self.start_redis()
        dead, hport = free_port(), free_port()  # nothing listens on dead
        bridge = self.start_bridge(bridge_config(self.redis.port, "127.0.0.1:%d" % dead, ROUTES,
                                                 extra=http_config(hport)))
        # The refusal, "all brokers down", and the refusal again (librdkafka
        # holds back identical errors only from the third on).
        wait_for(lambda: scrape(hport)[0].get("eb_kafka_errors_total") >= 3, 20,
                 what="three errors from librdkafka")
        with bridge._lock:
            refused = [e for e in bridge.logs if "Connection refused" in json.dumps(e)]
            all_down = [e for e in bridge.logs if "brokers are down" in json.dumps(e)]
        self.assertEqual(len(refused), 1, refused)
        e = refused[0]
        self.assertEqual(e["msg"], "cannot reach a Kafka broker; check kafka.brokers")
        self.assertEqual(e["broker"], "127.0.0.1:%d" % dead)
        self.assertEqual(e["setting"], "kafka.brokers")
        self.assertIn("Connect to ipv4#127.0.0.1:%d failed: Connection refused" % dead, e["cause"])
        self.assertEqual([a["msg"] for a in all_down],
                         ["cannot reach any Kafka broker; check kafka.brokers"])


if __name__ == "__main__":
    unittest.main()
