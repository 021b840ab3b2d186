"""registry -- fixtures for the Avro plugin's tests: a real implementation
of the Confluent Schema Registry REST API, and an independent Avro decoder.

- Apicurio Registry 3.0.9 (io.apicurio:apicurio-registry-app, the
  `all` tar.gz from Maven Central; Java 17: 3.1+ needs Java 21), fetched
  once with `mvn dependency:copy` into a cache outside the repository
  ($EB_CACHE, default ~/.cache/expiry-bridge), started on a free loopback
  port with its default in-memory storage, stopped by PID. Its
  Confluent-compatible API is under /apis/ccompat/v7.
- fastavro from PyPI, installed with `pip install --target` into the same
  cache, imported from there (Debian's interpreter, /usr/bin/python3).
"""
import os
import subprocess
import sys
import tarfile
import urllib.request

from ebtest import TempDir, free_port, stop_pid, wait_for

APICURIO_VERSION = "3.0.9"
FASTAVRO_VERSION = "1.13.1"
CACHE = os.environ.get("EB_CACHE", os.path.expanduser("~/.cache/expiry-bridge"))


def _run(cmd, what):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if p.returncode != 0:
        raise AssertionError("%s failed (%d): %s" % (what, p.returncode, (p.stdout + p.stderr)[-2000:]))


def apicurio_jar():
    """The runner jar of Apicurio Registry, fetched and unpacked on first use."""
    d = os.path.join(CACHE, "apicurio", APICURIO_VERSION)
    jar = os.path.join(d, "apicurio-registry-app-%s-runner.jar" % APICURIO_VERSION)
    if os.path.exists(jar):
        return jar
    os.makedirs(d, exist_ok=True)
    tgz = os.path.join(CACHE, "apicurio", "apicurio-registry-app-%s-all.tar.gz" % APICURIO_VERSION)
    if not os.path.exists(tgz):
        _run(["mvn", "-q", "dependency:copy",
              "-Dartifact=io.apicurio:apicurio-registry-app:%s:tar.gz:all" % APICURIO_VERSION,
              "-DoutputDirectory=" + os.path.dirname(tgz)], "fetching Apicurio Registry")
    with tarfile.open(tgz) as t:
        t.extractall(d)
    return jar


def fastavro():
    """The fastavro module, installed into the cache on first use."""
    target = os.path.join(CACHE, "pylib")
    if target not in sys.path:
        sys.path.insert(0, target)
    try:
        import fastavro as fa
        return fa
    except ImportError:
        _run([sys.executable, "-m", "pip", "install", "--quiet", "--target", target,
              "fastavro==%s" % FASTAVRO_VERSION], "installing fastavro")
        import fastavro as fa
        return fa


class Apicurio:
    """Apicurio Registry on 127.0.0.1, in-memory storage."""

    def __init__(self):
        self.port = free_port()
        self.dir = TempDir("apicurio")
        self.proc = None
        self.url = "http://127.0.0.1:%d/apis/ccompat/v7" % self.port

    def start(self):
        jar = apicurio_jar()
        log = open(os.path.join(self.dir.path, "apicurio.log"), "w")
        self.proc = subprocess.Popen(
            ["java", "-Xmx384m", "-XX:+UseSerialGC", "-Dquarkus.http.host=127.0.0.1",
             "-Dquarkus.http.port=%d" % self.port, "-jar", jar],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.dir.path)
        wait_for(self._ready, 120, interval=0.2, what="Apicurio Registry on port %d" % self.port)
        return self

    def _ready(self):
        if self.proc.poll() is not None:
            raise AssertionError("Apicurio exited: %s" % self.log_tail())
        try:
            with urllib.request.urlopen(self.url + "/subjects", timeout=2) as r:
                return r.status == 200
        except Exception:
            return False

    def get(self, path):
        import json
        with urllib.request.urlopen(self.url + path, timeout=10) as r:
            return json.loads(r.read())

    def log_tail(self, n=30):
        try:
            with open(os.path.join(self.dir.path, "apicurio.log")) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def cleanup(self):
        stop_pid(self.proc, timeout=20)
        self.dir.cleanup()
