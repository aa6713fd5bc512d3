"""A wharf fleet for the e2e tests: PostgreSQL (tests/e2e/postgres.py, shared by the run, a database per
fleet), the Ceph RGW (tests/e2e/ceph.py, shared by the run, a bucket per fleet), N wharf fronts with the same
config but for their listen address and local directory, and Debian's haproxy in front of them
(http mode, `balance roundrobin`, `option http-server-close`: every request is balanced on its own, so
consecutive requests of one client land on different fronts). Everything is started by the test and stopped
by PID when it ends. Each front writes an access log; requests() tells which front served what."""
import os
import re
import shutil
import threading

import harness
from harness import TestFailure, check
from http_util import request
from registry import to_yaml
from test_pg import server as pg_server
from test_s3 import bucket, rgw

SECRET = "e2e-fleet-shared-secret"
# The session advisory lock key GC and eviction take (cache/pg/pg_schema.hpp, kMaintenanceLock).
MAINTENANCE_LOCK = 0x776861726603

# An access log line: "<time> info <peer> <METHOD> <target> <status> <bytes>B ..." (src/app.cpp).
_ACCESS = re.compile(r" (\S+) (GET|HEAD|POST|PATCH|PUT|DELETE) (\S+) (\d{3}) \d+B ")


def haproxy_config(port, fronts):
    """The haproxy.cfg text balancing 127.0.0.1:`port` round-robin over `fronts` (host:port strings).
    A front that refuses connections is retried on another (redispatch) and taken out by the health check."""
    servers = "\n".join("    server f%d %s check inter 500ms fall 2 rise 2" % (i, f) for i, f in enumerate(fronts))
    return """global
    maxconn 512

defaults
    mode http
    option http-server-close
    option redispatch
    retries 3
    timeout connect 2s
    timeout client 300s
    timeout server 300s
    timeout http-request 60s

frontend registry
    bind 127.0.0.1:%d
    default_backend wharf

backend wharf
    balance roundrobin
    option httpchk GET /v2/
%s
""" % (port, servers)


class Fleet:
    def __init__(self, ctx, fronts=3, chunksize="5MiB", extra=None):
        """`extra`: {section: {key: value}} merged into every front's config (one level deep, so
        {"storage": {"gc": {...}}} keeps the S3 settings)."""
        self.ctx = ctx
        self.extra = extra or {}
        self.pg = pg_server()
        self.db = self.pg.create_database(ctx.name)
        self.rgw = rgw()
        self.bucket = bucket(ctx, self.rgw)
        self.fronts = [self._front(i, chunksize) for i in range(fronts)]
        self.port = harness.free_port()
        self.host = "127.0.0.1:%d" % self.port
        self.url = "http://" + self.host
        self.haproxy = None

    def _front(self, i, chunksize):
        reg = self.ctx.registry(name="front%d" % i)
        cfg = {
            "version": 0.1,
            "log": {"level": "info", "accesslog": {"disabled": False}},
            "storage": {"s3": {"region": self.rgw.region, "bucket": self.bucket, "accesskey": self.rgw.access_key,
                               "secretkey": self.rgw.secret_key, "regionendpoint": self.rgw.endpoint,
                               "secure": False, "rootdirectory": "/registry", "chunksize": chunksize},
                        "delete": {"enabled": True},
                        "redirect": {"disable": True}},
            "http": {"addr": reg.host, "secret": SECRET},
            "database": {"dsn": self.pg.dsn(self.db), "poolsize": 4},
        }
        reg.debug_url = "http://127.0.0.1:%d" % harness.free_port()  # /metrics and /debug/health of this front
        cfg["http"]["debug"] = {"addr": reg.debug_url[len("http://"):], "prometheus": {"enabled": True}}
        for section, values in self.extra.items():
            cfg.setdefault(section, {}).update(values)
        with open(reg.config_path, "w") as f:
            f.write(to_yaml(cfg) + "\n")
        return reg

    def start(self):
        # The fronts start at once (each waits for its own /v2/); the first failure is raised.
        errors = []

        def start_one(f):
            try:
                f.start(tries=300)
            except BaseException as exc:  # re-raised below, in the test's thread
                errors.append(exc)
        threads = [threading.Thread(target=start_one, args=(f,)) for f in self.fronts]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        if errors:
            raise errors[0]
        if shutil.which("haproxy") is None:
            raise TestFailure("haproxy not found (tests/run installs Debian's haproxy package)")
        cfg = self.ctx.path("haproxy.cfg")
        with open(cfg, "w") as f:
            f.write(haproxy_config(self.port, [fr.host for fr in self.fronts]))
        harness.run(["haproxy", "-c", "-f", cfg], timeout=30)
        self.haproxy = self.ctx.spawn(["haproxy", "-db", "-f", cfg], "haproxy")

        def ready():
            if self.haproxy.poll() is not None:
                raise TestFailure("haproxy exited with %s" % self.haproxy.returncode)
            try:
                return request("GET", self.url + "/v2/", timeout=2).status == 200
            except OSError:
                return False
        harness.wait_for(ready, "haproxy to answer /v2/", tries=200, interval=0.1)
        return self

    def req(self, method, path, headers=None, body=None, timeout=60):
        """A request through haproxy."""
        return request(method, self.url + path, headers, body, timeout=timeout)

    def metrics(self, i):
        """{sample name with labels: value} of front `i`'s /metrics."""
        r = request("GET", self.fronts[i].debug_url + "/metrics", timeout=10)
        check(r.status == 200, "/metrics of %s: %r" % (self.fronts[i].name, r))
        out = {}
        for line in r.body.decode(errors="replace").splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                try:
                    out[name] = float(value)
                except ValueError:
                    pass
        return out

    def log_lines(self, i, pattern):
        """Lines of front `i`'s log matching the regular expression `pattern`."""
        try:
            with open(self.ctx.path(self.fronts[i].name + ".log"), errors="replace") as log:
                return [line for line in log if re.search(pattern, line)]
        except FileNotFoundError:
            return []

    def hold_maintenance_lock(self):
        """A psql session holding the fronts' maintenance lock (session advisory lock kMaintenanceLock of
        cache/pg/pg_schema.hpp) on this fleet's database, idle like a front's lock connection during a run;
        returns once it holds it. Killing the process releases it (the server sees the connection close)."""
        import postgres
        import subprocess
        psql = os.path.join(self.pg.bin, "psql")
        conninfo = "host=%s port=%d user=%s dbname=%s application_name=e2e-lock-holder" % (
            self.pg.dir, self.pg.port, postgres.USER, self.db)
        with open(self.ctx.path("lock-holder.log"), "ab") as log:
            proc = subprocess.Popen([psql, "-X", "-q", "-d", conninfo], stdin=subprocess.PIPE, stdout=log,
                                    stderr=subprocess.STDOUT)
        harness._LIVE[proc.pid] = proc
        proc.stdin.write(b"SELECT pg_advisory_lock(%d);\n" % MAINTENANCE_LOCK)
        proc.stdin.flush()  # stdin stays open: psql waits for more, the session idles holding the lock

        def held():
            if proc.poll() is not None:
                raise TestFailure("the psql holding the maintenance lock exited with %s" % proc.returncode)
            return self.pg.psql("SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                                "WHERE a.application_name = 'e2e-lock-holder' AND l.locktype = 'advisory' "
                                "AND l.granted", db=self.db).stdout.strip() == "1"
        harness.wait_for(held, "psql to hold the maintenance lock", tries=300, interval=0.1)
        return proc

    def requests(self, pattern=""):
        """[(front index, method, target, status)] from every front's access log, targets containing `pattern`."""
        out = []
        for i, f in enumerate(self.fronts):
            try:
                with open(self.ctx.path(f.name + ".log"), errors="replace") as log:
                    for line in log:
                        m = _ACCESS.search(line)
                        if m and pattern in m.group(3):
                            out.append((i, m.group(2), m.group(3), int(m.group(4))))
            except FileNotFoundError:
                pass
        return out

    def session_fronts(self, repo):
        """{upload session id: set of front indexes that served a PATCH or PUT of it} for `repo`."""
        spread = {}
        for i, method, target, status in self.requests("/v2/%s/blobs/uploads/" % repo):
            m = re.search(r"/blobs/uploads/([0-9a-f-]{36})", target)
            if m and method in ("PATCH", "PUT"):
                spread.setdefault(m.group(1), set()).add(i)
        return spread


def check_spread(fleet, repo, what):
    """Fails unless some upload session of `repo` had its PATCH/PUT requests served by two fronts or more."""
    spread = fleet.session_fronts(repo)
    check(spread, "%s: no upload session of %s in the fronts' access logs" % (what, repo))
    moved = [sid for sid, fronts in spread.items() if len(fronts) > 1]
    check(moved, "%s: every upload session of %s stayed on one front: %r" % (what, repo, spread))
    return moved
