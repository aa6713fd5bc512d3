"""A throwaway PostgreSQL server for the database tests (Debian's postgresql 15).

initdb in a fresh temp directory (a superuser `wharf` with a password: TCP connections must give it,
the unix socket in the same directory is trusted for the fixture's own psql), then the postmaster in the
foreground as our child on a free loopback port with `listen_addresses=127.0.0.1 -k <dir>`, fsync on,
stopped by PID. initdb refuses to run as root, so as root every server binary runs as `nobody` (the temp
directory is handed to that user). Start it through harness.session("postgres", postgres.start) so a run
starts it at most once; each test makes its own database with create_database().
"""
import glob
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time

import harness

USER = "wharf"
PASSWORD = "pg-test-secret-7c1f"


def _bindir():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise harness.TestFailure("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin "
                                  "(tests/run installs the postgresql package)")
    return os.path.dirname(found[-1])


class Postgres:
    def __init__(self, directory):
        self.dir = directory
        self.data = os.path.join(directory, "data")
        self.bin = _bindir()
        self.port = harness.free_port()
        self.proc = None
        self.started_in = 0.0
        self._run_as = None
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            self._run_as = (nobody.pw_uid, nobody.pw_gid)
            os.chown(directory, *self._run_as)

    def _demote(self):
        if self._run_as:
            os.setgid(self._run_as[1])
            os.setgroups([])
            os.setuid(self._run_as[0])

    def _tool(self, name, *args, timeout=120, check_rc=True):
        res = subprocess.run([os.path.join(self.bin, name)] + list(args), capture_output=True, text=True,
                             timeout=timeout, preexec_fn=self._demote, cwd=self.dir, env=self._env())
        if check_rc and res.returncode != 0:
            raise harness.TestFailure("%s %s failed (%d): %s" % (name, " ".join(args)[:200], res.returncode,
                                                                 (res.stderr or res.stdout).strip()[-600:]))
        return res

    def _env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update({"LC_ALL": "C", "HOME": self.dir})
        return env

    def init(self):
        pwfile = os.path.join(self.dir, "pw")
        with open(pwfile, "w") as f:
            f.write(PASSWORD + "\n")
        if self._run_as:
            os.chown(pwfile, *self._run_as)
        self._tool("initdb", "-D", self.data, "-U", USER, "--pwfile=" + pwfile, "-E", "UTF8", "--locale=C",
                   "--auth-local=trust", "--auth-host=scram-sha-256")
        os.unlink(pwfile)
        return self

    def start(self):
        """Starts the postmaster (again, after stop()) and waits until it answers queries."""
        t0 = time.monotonic()
        log = open(os.path.join(self.dir, "postgres.log"), "ab")
        try:
            self.proc = subprocess.Popen(
                [os.path.join(self.bin, "postgres"), "-D", self.data, "-p", str(self.port), "-k", self.dir,
                 "-c", "listen_addresses=127.0.0.1", "-c", "fsync=on", "-c", "max_connections=200",
                 "-c", "shared_buffers=16MB"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=self._demote,
                cwd=self.dir, env=self._env())
        finally:
            log.close()
        harness._LIVE[self.proc.pid] = self.proc

        def ready():
            if self.proc.poll() is not None:
                raise harness.TestFailure("postgres exited with %s: %s" % (self.proc.returncode, self.log_tail(6)))
            return self.psql("SELECT 1", check_rc=False).returncode == 0
        harness.wait_for(ready, "PostgreSQL to accept connections", tries=300, interval=0.1)
        self.started_in = time.monotonic() - t0
        return self

    def halt(self):
        """Fast shutdown (SIGINT to the postmaster by PID): open sessions are cut, committed data stays."""
        if self.proc is not None:
            harness.stop_process(self.proc, grace=30, sig=signal.SIGINT)
            self.proc = None

    def restart(self):
        self.halt()
        return self.start()

    def psql(self, sql, db="postgres", check_rc=True):
        """Runs `sql` through the unix socket as the superuser; the CompletedProcess."""
        return self._tool("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", self.dir, "-p", str(self.port),
                          "-U", USER, "-d", db, "-tA", "-c", sql, timeout=60, check_rc=check_rc)

    def create_database(self, hint):
        """A fresh, empty database for one test; its name."""
        name = "t_" + re.sub(r"[^a-z0-9]", "_", hint.lower())[:40] + "_%d" % (time.time_ns() % 1000000)
        self.psql('CREATE DATABASE "%s"' % name)
        return name

    def dsn(self, db, password=PASSWORD):
        """A URI for wharf (TCP on 127.0.0.1, password authentication)."""
        return "postgresql://%s:%s@127.0.0.1:%d/%s" % (USER, password, self.port, db)

    def log_tail(self, lines):
        try:
            with open(os.path.join(self.dir, "postgres.log"), errors="replace") as f:
                return " | ".join(f.read().splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self):
        """Stops the server and removes its directory (harness.session calls this at the end of the run)."""
        self.halt()
        shutil.rmtree(self.dir, ignore_errors=True)


def start():
    """A new initialized and started server under a fresh temp directory (short path: its unix socket)."""
    pg = Postgres(tempfile.mkdtemp(prefix="wpg-", dir="/tmp"))
    try:
        pg.init().start()
    except BaseException:
        tail = pg.log_tail(6)
        pg.stop()
        if tail:
            print("PostgreSQL fixture log: " + tail, flush=True)
        raise
    return pg


if __name__ == "__main__":  # manual check: python3 tests/e2e/postgres.py
    p = start()
    print("PostgreSQL at %s in %.1f s" % (p.dsn("postgres"), p.started_in))
    print(p.psql("SHOW fsync").stdout.strip())
    p.stop()
