"""End-to-end: the Python order consumer (examples/python-consumer) held to
the same contract as the C one (test_consumer.ConsumerContract): same schema,
same events, same guarantees -- the event format is language-neutral.

Runs every contract test; the C-only tests (its --help, exit codes, the
environment) stay in test_consumer.py.
"""

import os
import unittest

import test_consumer  # tests/e2e, this script's own directory
from ebtest import SOURCE_DIR

PYTHON_CONSUMER = os.path.join(SOURCE_DIR, "examples", "python-consumer", "order_consumer.py")


class PythonConsumerTest(test_consumer.ConsumerContract, unittest.TestCase):
    """examples/python-consumer/order_consumer.py, run by Debian's interpreter."""

    def consumer_argv(self, args):
        return ["/usr/bin/python3", "-u", PYTHON_CONSUMER] + list(args)


if __name__ == "__main__":
    unittest.main()
