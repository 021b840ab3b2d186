"""ledgerbench -- what the ledger benchmarks (bench/ledger/run.py, cluster.py)
share: their command line (--build, --out), the environment the test
fixtures read (EB_BIN, EB_MOCK_KAFKA, tests/support on sys.path), CPU
readings of the bridge and of Redis, the load generator bench_ledger_load,
and the result's output.

Call setup() before importing ebtest: ebtest reads EB_BIN at import.
"""

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "..", ".."))


def setup(description, add_arguments):
    """Parse the command line (--build, --out, and what add_arguments(parser)
    adds); point the fixtures at the build and put tests/support on the
    path. Returns the arguments, with .load: the load generator's path."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--build", default=os.path.join(SOURCE, "build"))
    add_arguments(p)
    p.add_argument("--out")
    args = p.parse_args()
    os.environ.setdefault("EB_BIN", os.path.join(args.build, "src", "expiry-bridge"))
    os.environ.setdefault("EB_MOCK_KAFKA", os.path.join(args.build, "tests", "support",
                                                        "eb_mock_kafka"))
    sys.path.insert(0, os.path.join(SOURCE, "tests", "support"))
    args.load = os.path.join(args.build, "bench", "bench_ledger_load")
    return args


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def cpu_seconds(pid):
    """utime + stime of a process, from /proc."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def redis_cpu(client):
    """CPU seconds Redis has used (user + sys), from INFO cpu."""
    i = client.info("cpu")
    return i["used_cpu_sys"] + i["used_cpu_user"]


def run_load(args, port, rate, options):
    """bench_ledger_load against the Redis on port at `rate` timers/s for
    --seconds, with more options (a list); returns its JSON report."""
    gen = subprocess.run([args.load, "-p", str(port), "--rate", str(rate),
                          "--seconds", str(args.seconds)] + list(options),
                         capture_output=True, text=True, timeout=args.seconds * 4 + 60)
    if gen.returncode != 0:
        raise AssertionError("load generator failed: %s" % gen.stderr)
    return json.loads(gen.stdout)


def emit(result, out):
    """The result as JSON on stdout and, when out is given, in that file."""
    text = json.dumps(result, indent=2)
    print(text)
    if out:
        with open(out, "w") as f:
            f.write(text + "\n")
