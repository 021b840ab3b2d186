"""End-to-end: the Python order consumer (examples/python-consumer) held to
the same contract as the C one (test_consumer.ConsumerContract): same schema,
same events, same guarantees -- the event format is language-neutral.

Runs every contract test; the C-only tests (its --help, exit codes, the
environment) stay in test_consumer.py. The consumer decodes events with the
Python CloudEvents SDK, which scripts/fetch-sdks.sh installs into the cache
(tests/support/ebcache.py): skipped when it is not there, failed under
EB_REQUIRE_FETCHED=1.
"""

import os
import unittest

import ebcache
import test_consumer  # tests/e2e, this script's own directory
from ebtest import SOURCE_DIR

PYTHON_CONSUMER = os.path.join(SOURCE_DIR, "examples", "python-consumer", "order_consumer.py")


class PythonConsumer:
    """Mixin: run examples/python-consumer/order_consumer.py by Debian's
    interpreter, with the fetched SDK (skipped when it is not there, failed
    under EB_REQUIRE_FETCHED=1). Also used by tests/kafka/test_consumers.py."""

    @classmethod
    def setUpClass(cls):
        cls.sdk = ebcache.require(ebcache.sdk("python"), "the Python CloudEvents SDK",
                                  "scripts/fetch-sdks.sh python")
        super().setUpClass()

    def consumer_argv(self, args):
        # env(1) execs the interpreter: the PID the test stops is Python's.
        return ["env", "PYTHONPATH=" + self.sdk, "/usr/bin/python3", "-u",
                PYTHON_CONSUMER] + list(args)


class PythonConsumerTest(PythonConsumer, test_consumer.ConsumerContract, unittest.TestCase):
    """examples/python-consumer/order_consumer.py, run by Debian's interpreter."""

    def test_binary_mode_events_are_read_too(self):
        """The SDK reads the bridge's `format: cloudevents-binary` as well:
        the attributes in ce_* headers, the data as the value."""
        self.check_binary_mode_events_are_read()


if __name__ == "__main__":
    unittest.main()
