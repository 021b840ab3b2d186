"""pgtest -- a throwaway PostgreSQL cluster for tests, demos and benchmarks.

    with PostgresCluster() as pg:              # initdb + pg_ctl -w start
        dsn = pg.create_database("t1")         # a fresh database, returns its URI
        with pg.connect("t1") as conn: ...     # psycopg2, autocommit
        pg.stop(); pg.start()                  # an outage, same port and data

The cluster lives in its own temp dir and listens on a free port on
127.0.0.1 only (and a Unix socket in that dir). initdb refuses to run as root,
so when the tests run as root every server command runs as the `postgres`
user through runuser (Debian's postgresql package creates that user). fsync
is off by default: the data is thrown away, and fsync would only make every
test slower (benchmarks may pass fsync=True).

The server is started with `pg_ctl -w` and stopped on every path: by
`pg_ctl stop -m fast`, and if that fails, by SIGKILL to the postmaster's PID
from postmaster.pid. Use it as a context manager or register .cleanup with
unittest's addCleanup / addClassCleanup.

Binaries are called by full path ($(pg_config --bindir), or
/usr/lib/postgresql/15/bin): some images put other `initdb` links on PATH.
"""

import os
import pwd
import shutil
import signal
import subprocess
import tempfile

from ebtest import Timeout, free_port, wait_for


def pg_bindir():
    """Directory of initdb/pg_ctl/postgres/psql for the installed server."""
    candidates = []
    try:
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                             timeout=10)
        if out.returncode == 0:
            candidates.append(out.stdout.strip())
    except (OSError, subprocess.TimeoutExpired):
        pass
    candidates.append("/usr/lib/postgresql/15/bin")
    for d in candidates:
        if os.path.exists(os.path.join(d, "initdb")):
            return d
    raise AssertionError("PostgreSQL server binaries not found (apt-get install postgresql)")


class PostgresCluster:
    """One PostgreSQL server in a temp dir on 127.0.0.1:<free port>."""

    SUPERUSER = "postgres"

    def __init__(self, port=None, fsync=False, settings=None):
        self.bindir = pg_bindir()
        self.port = port or free_port()
        self.fsync = fsync
        self.settings = dict(settings or {})
        self.dir = tempfile.mkdtemp(prefix="pgtest.")
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "postgres.log")
        self._as_root = os.geteuid() == 0
        if self._as_root:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self._initialised = False

    # -- running server commands as the right user ---------------------------

    def _run(self, argv, timeout=60, check=True):
        if self._as_root:
            argv = ["runuser", "-u", "postgres", "--"] + argv
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError("%s failed (%d):\n%s%s\nlog:\n%s" % (
                " ".join(argv), p.returncode, p.stdout, p.stderr, self.log_tail()))
        return p

    def _bin(self, name):
        return os.path.join(self.bindir, name)

    # -- lifecycle ------------------------------------------------------------

    def start(self):
        if not self._initialised:
            self._run([self._bin("initdb"), "-D", self.data, "-U", self.SUPERUSER,
                       "-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"])
            self._initialised = True
        opts = ["-k", self.dir, "-p", str(self.port), "-c", "listen_addresses=127.0.0.1",
                "-c", "fsync=" + ("on" if self.fsync else "off")]
        if not self.fsync:
            # Nothing here survives the test: skip the flushes that fsync=off leaves.
            opts += ["-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        for k, v in self.settings.items():
            opts += ["-c", "%s=%s" % (k, v)]
        self._run([self._bin("pg_ctl"), "-D", self.data, "-l", self.log, "-w", "-t", "60",
                   "-o", " ".join(opts), "start"], timeout=90)
        return self

    def pid(self):
        """The postmaster's PID from postmaster.pid, or None when not running."""
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                return int(f.readline().strip())
        except (OSError, ValueError):
            return None

    def running(self):
        pid = self.pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False

    def stop(self, mode="fast"):
        """Stop the server (same data and port for a later start())."""
        if not self.running():
            return
        p = self._run([self._bin("pg_ctl"), "-D", self.data, "-m", mode, "-w", "-t", "30",
                       "stop"], timeout=60, check=False)
        if p.returncode != 0 and self.running():
            self.kill()

    def kill(self):
        """SIGKILL the postmaster by PID (its backends exit when it is gone)."""
        pid = self.pid()
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        try:
            wait_for(lambda: not self._alive(pid), 10, what="postmaster %d to exit" % pid)
        except Timeout:
            pass

    @staticmethod
    def _alive(pid):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        # A zombie is gone for our purposes.
        try:
            with open("/proc/%d/stat" % pid) as f:
                return f.read().split(")")[-1].split()[0] != "Z"
        except OSError:
            return False

    def cleanup(self):
        try:
            self.stop()
        finally:
            if self.running():
                self.kill()
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.cleanup()
            raise

    def __exit__(self, *a):
        self.cleanup()

    def log_tail(self, n=30):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    # -- clients ----------------------------------------------------------------

    def dsn(self, dbname="postgres"):
        """A libpq URI for a database of this cluster (also works for psycopg2)."""
        return "postgresql://%s@127.0.0.1:%d/%s" % (self.SUPERUSER, self.port, dbname)

    def connect(self, dbname="postgres", autocommit=True):
        import psycopg2
        conn = psycopg2.connect(self.dsn(dbname))
        conn.autocommit = autocommit
        return conn

    def create_database(self, name, template=None):
        """CREATE DATABASE name (dropped first if it exists), optionally as a
        copy of database `template` (fast: a file copy); returns its URI."""
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute('DROP DATABASE IF EXISTS "%s"' % name)
                cur.execute('CREATE DATABASE "%s"%s' % (
                    name, ' TEMPLATE "%s"' % template if template else ""))
        finally:
            conn.close()
        return self.dsn(name)

    def drop_database(self, name):
        """DROP DATABASE name, closing its sessions; quiet if the server is down
        (a cleanup must not hide the test's own failure)."""
        if not self.running():
            return
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
        finally:
            conn.close()

    def psql(self, dbname, sql=None, file=None, variables=None, check=True):
        """Run psql (ON_ERROR_STOP, psql -v NAME=VALUE for each of `variables`)
        on a database; returns the CompletedProcess."""
        argv = [self._bin("psql"), "-X", "-q", "-P", "pager=off", "-v", "ON_ERROR_STOP=1",
                "-d", self.dsn(dbname)]
        for k, v in (variables or {}).items():
            argv += ["-v", "%s=%s" % (k, v)]
        if sql is not None:
            argv += ["-c", sql]
        if file is not None:
            argv += ["-f", file]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if check and p.returncode != 0:
            raise AssertionError("psql failed (%d): %s" % (p.returncode, p.stderr))
        return p
