"""The command line: check, run, --help, --version, exit codes, secrets."""
import os
import subprocess
import unittest

from ebtest import EB_BIN, SOURCE_DIR, BridgeTestCase, TempDir, bridge_config, run_check

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


if __name__ == "__main__":
    unittest.main()
