"""End-to-end: the Python order consumer (examples/python-consumer) held to
the same contract as the C one (test_consumer.ConsumerContract): same schema,
same events, same guarantees -- the event format is language-neutral.

Runs every contract test; the C-only tests (its --help, exit codes, the
environment) stay in test_consumer.py. The consumer decodes events with the
Python CloudEvents SDK, which scripts/fetch-sdks.sh installs into the cache
(tests/support/ebcache.py): skipped when it is not there, failed under
EB_REQUIRE_FETCHED=1.
"""

import json
import os
import unittest

import ebcache
import test_consumer  # tests/e2e, this script's own directory
from ebtest import SOURCE_DIR

PYTHON_CONSUMER = os.path.join(SOURCE_DIR, "examples", "python-consumer", "order_consumer.py")


class PythonConsumerTest(test_consumer.ConsumerContract, unittest.TestCase):
    """examples/python-consumer/order_consumer.py, run by Debian's interpreter."""

    @classmethod
    def setUpClass(cls):
        cls.sdk = ebcache.sdk("python")
        if not cls.sdk:
            if os.environ.get("EB_REQUIRE_FETCHED") == "1":
                raise AssertionError("the Python CloudEvents SDK is not fetched: "
                                     "scripts/fetch-sdks.sh python")
            raise unittest.SkipTest("the Python CloudEvents SDK is not fetched "
                                    "(scripts/fetch-sdks.sh python)")
        super().setUpClass()

    def consumer_argv(self, args):
        # env(1) execs the interpreter: the PID the test stops is Python's.
        return ["env", "PYTHONPATH=" + self.sdk, "/usr/bin/python3", "-u",
                PYTHON_CONSUMER] + list(args)

    def test_binary_mode_events_are_read_too(self):
        """The SDK reads the bridge's `format: cloudevents-binary` as well:
        the attributes in ce_* headers, the data as the value."""
        self.create_topic(1)
        self.migrate()
        self.shop.seed(orders=2)
        consumer = self.start_consumer()
        messages = []
        for o in (1, 2):
            ev = test_consumer.make_event(o)
            headers = [("ce_" + k, ev[k].encode()) for k in
                       ("specversion", "id", "source", "type", "time", "subject")]
            messages.append({"key": str(o).encode(), "value": json.dumps(ev["data"]).encode(),
                             "headers": headers + [("content-type", b"application/json")]})
        test_consumer.produce(self.kafka.bootstrap, self.topic, messages)
        self.wait_processed(2, [consumer])
        self.assertEqual(self.shop.cancelled(), {1, 2})
        self.assert_stock_balances()
        self.assertEqual(self.stop_consumer(consumer)["cancelled"], 2)


if __name__ == "__main__":
    unittest.main()
