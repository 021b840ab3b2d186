"""examples/plugin is the template users copy: it builds outside the tree
against the installed header alone (`cmake --install` to a temporary
prefix, then the example's own CMake project with only that prefix), and
the plugin it builds runs in the bridge."""
import os
import subprocess
import unittest

from ebtest import BridgeTestCase, TempDir, validate_event

BUILD = os.environ.get("EB_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..",
                                                    "build"))
SOURCE = os.environ.get("EB_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise AssertionError("%s failed:\n%s%s" % (" ".join(cmd), p.stdout, p.stderr))
    return p.stdout


class ExamplePluginTest(BridgeTestCase, unittest.TestCase):

    def build_example(self):
        d = TempDir("example-plugin")
        self.addCleanup(d.cleanup)
        prefix = os.path.join(d.path, "prefix")
        run(["cmake", "--install", BUILD, "--prefix", prefix])
        header = os.path.join(prefix, "include", "expiry_bridge", "plugin.h")
        self.assertTrue(os.path.exists(header), "the header is installed")
        out = os.path.join(d.path, "build")
        run(["cmake", "-S", os.path.join(SOURCE, "examples", "plugin"), "-B", out,
             "-DCMAKE_PREFIX_PATH=" + prefix])
        with open(os.path.join(out, "CMakeCache.txt")) as f:
            cache = f.read()
        self.assertIn("EXPIRY_BRIDGE_INCLUDE_DIR:PATH=%s/include" % prefix, cache,
                      "the example found the header in the install prefix only")
        run(["cmake", "--build", out])
        return os.path.join(out, "noop.so")

    def test_the_template_builds_out_of_tree_and_runs_in_the_bridge(self):
        so = self.build_example()
        self.start_stack("""
  - name: orders
    match: "order:{id}"
    topic: orders
    plugins: [noop]
""", extra="plugins:\n  - name: noop\n    path: %s\n    settings: { tag: copied }\n" % so)
        c = self.consumer(["orders"])
        self.redis.client().set("order:1", "x", px=10)
        m = c.collect(1)[0]
        self.assertEqual(m["json"]["data"]["ext"], {"tag": "copied"})
        validate_event(m["json"])


if __name__ == "__main__":
    unittest.main()
