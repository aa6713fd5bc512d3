#!/usr/bin/env python3
"""wharf side by side with registry:2 (Debian's docker-registry, distribution 2.8) and nginx.

Pushes the same images into wharf and registry:2, lays the same manifest and blob bytes out as
static files for nginx, drives each server in turn with wrk (HEAD with ab), times cold pulls through
both as pull-through mirrors of one origin, then fills wharf's index for the scale scenario. Prints
Markdown tables and writes them to tests/bench/RESULTS.md. Usually started by tests/bench/run.
"""
import argparse
import base64
import datetime
import json
import os
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path[:0] = [os.path.join(REPO_ROOT, "tests", "e2e"), os.path.join(REPO_ROOT, "tests", "imagegen"), HERE]

import imagegen  # noqa: E402
from harness import Context, TestFailure, run  # noqa: E402
from registry import MANIFEST_ACCEPT  # noqa: E402
from scale import Client, run_scale  # noqa: E402
from push import record, run_push  # noqa: E402
import s3  # noqa: E402
from servers import REFERENCE_BIN, Nginx, NginxCache, Server, negotiated_tls  # noqa: E402
from wrk import ab_head, wrk  # noqa: E402

KINDS = ("wharf", "registry", "nginx")
USER, PASSWORD = "bench", "bench-password"


class Row:
    """One scenario: a figure per server (None: not measured), its unit, and a note."""

    def __init__(self, name, unit, higher_is_better=True):
        self.name, self.unit, self.higher_is_better = name, unit, higher_is_better
        self.values = {}
        self.notes = []

    def set(self, kind, value, note=""):
        self.values[kind] = value
        if note:
            self.notes.append("%s: %s" % (kind, note))


class Bench:
    def __init__(self, ctx, args):
        self.ctx, self.args = ctx, args
        self.rows = []
        self.problems = []
        self.t0 = time.monotonic()

    def log(self, msg):
        print("[%5.1fs] %s" % (time.monotonic() - self.t0, msg), flush=True)

    def row(self, name, unit, higher_is_better=True):
        r = Row(name, unit, higher_is_better)
        self.rows.append(r)
        return r

    # -- content --------------------------------------------------------------------------------

    def images(self):
        c = self.ctx
        self.small = imagegen.generate(c.path("img-small"), layers=3, size=4 << 10, seed=1, tag="latest")
        self.small["dir"] = c.path("img-small")
        self.big = imagegen.generate(c.path("img-big"), layers=1, size=16 << 20, seed=2, tag="big")
        self.big["dir"] = c.path("img-big")
        self.multi = imagegen.generate(c.path("img-multi"), layers=8, size=1 << 20, seed=3, tag="latest")
        self.multi["dir"] = c.path("img-multi")
        self.config_size = os.path.getsize(blob(self.small, self.small["config_digest"]))
        self.big_size = os.path.getsize(blob(self.big, self.big["layers"][0]))

    def push(self, server, image, ref):
        self.ctx.skopeo("copy", "--dest-tls-verify=false", "oci:" + image["dir"],
                        "docker://%s/%s" % (server.host, ref), timeout=120)

    def nginx(self, tls=None):
        ng = Nginx(self.ctx, self.small["media_types"]["manifest"], tls=tls)
        for image, tag in ((self.small, "latest"), (self.big, "big")):
            ng.put("/v2/bench/app/manifests/" + tag, read(blob(image, image["manifest_digest"])))
            for d in [image["config_digest"]] + image["layers"]:
                ng.put("/v2/bench/app/blobs/" + d, read(blob(image, d)))
        return ng.start()

    # -- load -----------------------------------------------------------------------------------

    def load(self, row, kind, url, headers=(), head=None):
        """Runs wrk against the URL (ab for HEAD: head="keepalive" or "close") and records the figure."""
        a = self.args
        try:
            if head:
                res = ab_head(url, a.duration, a.connections, headers, keepalive=head == "keepalive")
            else:
                res = wrk(url, a.duration, a.threads, a.connections, headers)
        except TestFailure as exc:
            row.set(kind, None, str(exc))
            self.problems.append("%s / %s: %s" % (row.name, kind, exc))
            return None
        self.log("  %-8s %-45s %10.0f req/s %8.1f MiB/s %s" % (kind, row.name[:45], res.rps, res.mib_s,
                                                                   res.problem()))
        if head == "keepalive" and res.requests == 0 and not says_keepalive(url):
            row.notes.append("%s keeps an HTTP/1.0 `Connection: Keep-Alive` connection open but does not "
                             "answer `Connection: keep-alive`, so ab waits for a close that never comes" % kind)
        value = res.mib_s if row.unit == "MiB/s" else res.rps
        if not res.ok:
            self.problems.append("%s / %s: %s" % (row.name, kind, res.problem()))
        row.set(kind, value if res.requests else None, res.problem())
        return res

    def same_bytes(self, url, expected, headers, tls=False):
        if tls:
            status, body = https_get(url, headers)
        else:
            client = Client(int(url.split(":")[2].split("/")[0]))
            try:
                status, _, body = client.request("GET", "/" + url.split("/", 3)[3], headers=headers)
            finally:
                client.close()
        if status != 200 or body != expected:
            self.problems.append("GET %s answered %d%s" % (url, status, "" if status != 200 else
                                                            " with different bytes"))

    def direct(self, wharf_bin):
        """Scenarios 1-5 against wharf, registry:2 and nginx."""
        c, s = self.ctx, self.small
        roots = {"wharf": c.mkdir("wharf-data"), "registry": c.mkdir("registry-data")}
        bins = {"wharf": wharf_bin, "registry": REFERENCE_BIN}
        servers = {k: Server(c, k, bins[k], k, roots[k]).start() for k in ("wharf", "registry")}
        self.log("pushing bench/app:latest and bench/app:big into wharf and registry:2 (skopeo)")
        for srv in servers.values():
            self.push(srv, s, "bench/app:latest")
            self.push(srv, self.big, "bench/app:big")
        servers["nginx"] = self.nginx()
        accept = "Accept: " + MANIFEST_ACCEPT
        manifest = read(blob(s, s["manifest_digest"]))
        paths = {"manifest": "/v2/bench/app/manifests/latest",
                 "config": "/v2/bench/app/blobs/" + s["config_digest"],
                 "big": "/v2/bench/app/blobs/" + self.big["layers"][0]}
        for kind, srv in servers.items():
            self.same_bytes(srv.url + paths["manifest"], manifest, {"Accept": MANIFEST_ACCEPT})
            self.same_bytes(srv.url + paths["config"], read(blob(s, s["config_digest"])), {})
        r1 = self.row("1. manifest GET by tag (%d B)" % len(manifest), "req/s")
        r2 = self.row("2. small blob GET (config, %d B)" % self.config_size, "req/s")
        r3 = self.row("3. blob HEAD, keep-alive (ab -k -i)", "req/s")
        r3b = self.row("3. blob HEAD, a connection per request (ab -i)", "req/s")
        r4 = self.row("4. 16 MiB blob GET: throughput", "MiB/s")
        r4b = self.row("4. 16 MiB blob GET: requests", "req/s")
        for row, path, headers, head in ((r1, "manifest", [accept], None), (r2, "config", [], None),
                                         (r3, "config", [], "keepalive"), (r3b, "config", [], "close"),
                                         (r4, "big", [], None)):
            self.log(row.name)
            for kind in KINDS:
                res = self.load(row, kind, servers[kind].url + paths[path], headers, head)
                if row is r4:
                    r4b.set(kind, res.rps if res and res.requests else None)
        rss = self.row("peak RSS (VmHWM) after 1-4", "MiB", higher_is_better=False)
        for kind, srv in servers.items():
            rss.set(kind, srv.rss_kib() / 1024.0)
            srv.stop()

        self.log("5. restarting wharf and registry:2 with basic auth (htpasswd, bcrypt)")
        r5 = self.row("5. manifest GET by tag, basic auth", "req/s")
        auth = "Authorization: Basic " + base64.b64encode(("%s:%s" % (USER, PASSWORD)).encode()).decode()
        rss5 = self.row("peak RSS (VmHWM) after 5", "MiB", higher_is_better=False)
        for kind in ("wharf", "registry"):
            srv = Server(c, kind, bins[kind], kind + "-auth", roots[kind], users={USER: PASSWORD}).start()
            self.same_bytes(srv.url + paths["manifest"], manifest,
                            {"Accept": MANIFEST_ACCEPT, "Authorization": auth.split(": ", 1)[1]})
            self.load(r5, kind, srv.url + paths["manifest"], [accept, auth])
            rss5.set(kind, srv.rss_kib() / 1024.0)
            srv.stop()
        self.token(wharf_bin, roots["wharf"], paths["manifest"], manifest)

    def token(self, wharf_bin, root, path, manifest):
        """5b. wharf as its own token server (auth.token, ES256): manifest GET by tag with a bearer token
        against anonymous pulls of the same repository on the same server (target: >= 80%)."""
        c = self.ctx
        self.log("5b. restarting wharf as its own token server (auth.token, ES256 key by openssl)")
        key = c.path("bench-token.key")
        run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key])
        service = "wharf-bench"
        auth_cfg = {"token": {"service": service, "issuer": service, "signingkeys": [key]},
                    "access": [{"match": "bench/*", "anonymous": True, "users": [USER], "actions": ["pull", "push"]}]}
        srv = Server(c, "wharf", wharf_bin, "wharf-token", root, users={USER: PASSWORD}, auth=auth_cfg).start()
        try:
            client = Client(srv.port)
            basic = "Basic " + base64.b64encode(("%s:%s" % (USER, PASSWORD)).encode()).decode()
            try:
                status, _, body = client.request(
                    "GET", "/auth/token?service=%s&scope=repository:bench/app:pull" % service,
                    headers={"Authorization": basic})
            finally:
                client.close()
            if status != 200:
                raise TestFailure("GET /auth/token answered %d: %r" % (status, body[:200]))
            token = json.loads(body)["token"]
            accept = "Accept: " + MANIFEST_ACCEPT
            self.same_bytes(srv.url + path, manifest, {"Accept": MANIFEST_ACCEPT, "Authorization": "Bearer " + token})
            anon = self.row("5b. manifest GET by tag, anonymous (auth.token on)", "req/s")
            tok = self.row("5b. manifest GET by tag, bearer token (auth.token)", "req/s")
            a = self.load(anon, "wharf", srv.url + path, [accept])
            t = self.load(tok, "wharf", srv.url + path, [accept, "Authorization: Bearer " + token])
            if a and t and a.rps:
                tok.notes.append("bearer/anonymous = %.0f%% (target >= 80%%)" % (100.0 * t.rps / a.rps))
        finally:
            srv.stop()

    def token_only(self, wharf_bin):
        """--only token: pushes the small image into a fresh wharf, then row 5b alone."""
        root = self.ctx.mkdir("wharf-data")
        srv = Server(self.ctx, "wharf", wharf_bin, "wharf", root).start()
        self.push(srv, self.small, "bench/app:latest")
        srv.stop()
        self.token(wharf_bin, root, "/v2/bench/app/manifests/latest", read(blob(self.small, self.small["manifest_digest"])))

    def large(self, wharf_bin):
        """Large blobs at 1, 4 and 32 connections, plain and TLS, and small GETs over TLS: every cell
        `--rounds` times with the servers alternating (wharf, registry:2, nginx, wharf, ...); the table
        shows the median and the notes every run, so the spread is visible."""
        from test_tls import make_cert  # noqa: PLC0415 - the e2e suite's self-signed certificate
        c, s, a = self.ctx, self.small, self.args
        cert, key, _ = make_cert(c)
        roots = {"wharf": c.mkdir("large-wharf-data"), "registry": c.mkdir("large-registry-data")}
        bins = {"wharf": wharf_bin, "registry": REFERENCE_BIN}
        accept = "Accept: " + MANIFEST_ACCEPT
        paths = {"manifest": "/v2/bench/app/manifests/latest",
                 "config": "/v2/bench/app/blobs/" + s["config_digest"],
                 "big": "/v2/bench/app/blobs/" + self.big["layers"][0]}
        big = read(blob(self.big, self.big["layers"][0]))
        nginx = self.nginx(tls=(cert, key))
        rss = self.row("peak RSS (VmHWM) after the large-blob and TLS rows", "MiB", higher_is_better=False)
        for tls in (False, True):
            servers = {}
            for kind in ("wharf", "registry"):
                servers[kind] = Server(c, kind, bins[kind], "large-%s%s" % (kind, "-tls" if tls else ""),
                                       roots[kind], tls=(cert, key) if tls else None,
                                       loglevel="info" if kind == "wharf" else None).start()
                if not tls:
                    self.log("pushing bench/app:latest and bench/app:big into %s (skopeo)" % kind)
                    self.push(servers[kind], s, "bench/app:latest")
                    self.push(servers[kind], self.big, "bench/app:big")
            urls = {k: v.url for k, v in servers.items()}
            urls["nginx"] = nginx.tls_url if tls else nginx.url
            for kind, url in urls.items():
                self.same_bytes(url + paths["big"], big, {}, tls=tls)
            cells = [("big", n, []) for n in (1, 4) + (() if tls else (32,))]
            if tls:
                cells += [("manifest", 16, [accept]), ("config", 16, [])]
                suites = {k: negotiated_tls(u.split("://", 1)[1]) for k, u in urls.items()}
                note = "negotiated: " + ", ".join("%s %s" % kv for kv in suites.items())
                path_lines = servers["wharf"].log_lines("TLS on ")
                note += "; wharf's TLS body path: " + (path_lines[-1].split("TLS on ", 1)[1] if path_lines
                                                       else "not logged")
            for what, conns, headers in cells:
                name = {"big": "16 MiB blob GET, %d connection%s" % (conns, "" if conns == 1 else "s"),
                        "manifest": "manifest GET by tag, %d connections" % conns,
                        "config": "small blob GET (config), %d connections" % conns}[what]
                row = self.row("L. %s%s" % (name, ", TLS" if tls else ""), "MiB/s" if what == "big" else "req/s")
                if tls:
                    row.notes.append(note)
                self.log(row.name)
                self.rounds(row, urls, paths[what], headers, conns)
            for kind in ("wharf", "registry"):
                rss.set(kind, max(rss.values.get(kind) or 0, servers[kind].rss_kib() / 1024.0))
                servers[kind].stop()
        rss.set("nginx", nginx.rss_kib() / 1024.0)
        nginx.stop()

    def rounds(self, row, urls, path, headers, conns):
        """`--rounds` wrk runs per server, alternating; records the median and every run in the notes."""
        a = self.args
        runs = {k: [] for k in urls}
        for _ in range(max(1, a.rounds)):
            for kind, url in urls.items():
                try:
                    res = wrk(url + path, a.large_duration, min(a.threads, conns), conns, headers)
                except TestFailure as exc:
                    self.problems.append("%s / %s: %s" % (row.name, kind, exc))
                    continue
                if not res.ok:
                    self.problems.append("%s / %s: %s" % (row.name, kind, res.problem()))
                if res.requests:
                    runs[kind].append(res.mib_s if row.unit == "MiB/s" else res.rps)
        record(self, row, runs)

    def mirrors(self, wharf_bin):
        """Scenarios 6-8: wharf and registry:2 as pull-through mirrors of one plain docker-registry."""
        c = self.ctx
        origin = Server(c, "registry", REFERENCE_BIN, "origin", c.mkdir("origin-data"), accesslog=True).start()
        self.push(origin, self.small, "bench/app:latest")
        self.push(origin, self.multi, "bench/multi:latest")
        bins = {"wharf": wharf_bin, "registry": REFERENCE_BIN}
        accept = "Accept: " + MANIFEST_ACCEPT
        manifest = read(blob(self.small, self.small["manifest_digest"]))
        path = "/v2/bench/app/manifests/latest"

        r6 = self.row("6. mirror: cached manifest GET by tag", "req/s")
        rss6 = self.row("peak RSS (VmHWM) after 6, mirror", "MiB", higher_is_better=False)
        self.log(r6.name)
        for kind in ("wharf", "registry"):
            srv = Server(c, kind, bins[kind], kind + "-mirror", c.mkdir(kind + "-mirror-data"),
                         proxy=origin.url).start()
            self.same_bytes(srv.url + path, manifest, {"Accept": MANIFEST_ACCEPT})  # warms the cache
            self.load(r6, kind, srv.url + path, [accept])
            rss6.set(kind, srv.rss_kib() / 1024.0)
            srv.stop()

        layers = len(self.multi["layers"])
        ref = "bench/multi:latest"
        r7 = self.row("7. cold pull, %d x 1 MiB layers (skopeo; median)" % layers, "s", higher_is_better=False)
        self.log(r7.name)
        self.cold_pulls(r7, origin, ref, bins)
        n = self.args.pulls
        r8 = self.row("8. %d concurrent cold pulls: wall time" % n, "s", higher_is_better=False)
        r8b = self.row("8. %d concurrent cold pulls: origin blob GETs (ideal %d)" % (n, layers + 1), "GETs",
                       higher_is_better=False)
        rss8 = self.row("peak RSS (VmHWM) after 8, mirror", "MiB", higher_is_better=False)
        for kind in ("wharf", "registry"):
            for row, pulls in ((r8, n),):
                root = c.mkdir("%s-cold%d-data" % (kind, pulls))
                srv = Server(c, kind, bins[kind], "%s-cold%d" % (kind, pulls), root, proxy=origin.url).start()
                mark = origin.log_size()
                try:
                    secs = self.pull_all(srv, ref, pulls, "%s-%d" % (kind, pulls))
                    row.set(kind, secs)
                    gets = origin.blob_gets_since(mark)
                    if row is r8:
                        r8b.set(kind, gets)
                        rss8.set(kind, srv.rss_kib() / 1024.0)
                    self.log("  %-8s %d pull(s): %.2f s, %d origin blob GETs" % (kind, pulls, secs, gets))
                except TestFailure as exc:
                    row.set(kind, None, str(exc)[:120])
                    self.problems.append("%s / %s: %s" % (row.name, kind, exc))
                srv.stop()
        origin.stop()

    def cold_pulls(self, row, origin, ref, bins):
        """Scenario 7: rounds of one pull straight from the origin, then one cold pull through each mirror
        (a fresh root every time), alternating so that drift on a shared machine hits all alike; the
        figures are medians."""
        c = self.ctx
        runs = max(1, self.args.cold_runs)
        direct, cold = [], {"wharf": [], "registry": [], "nginx": []}
        for i in range(runs):
            direct.append(self.pull_all(origin, ref, 1, "direct-%d" % i))
            for kind in cold:
                if kind == "nginx":
                    srv = NginxCache(c, "nginx-cold1-%d" % i, origin.host).start()
                else:
                    srv = Server(c, kind, bins[kind], "%s-cold1-%d" % (kind, i),
                                 c.mkdir("%s-cold1-%d-data" % (kind, i)), proxy=origin.url).start()
                try:
                    cold[kind].append(self.pull_all(srv, ref, 1, "%s-1-%d" % (kind, i)))
                except TestFailure as exc:
                    self.problems.append("%s / %s: %s" % (row.name, kind, exc))
                srv.stop()
        base = statistics.median(direct)
        row.notes.append("%d rounds; straight from the origin: median %.3f s (runs %s); the nginx column is "
                         "nginx as a caching reverse proxy (proxy_cache, no digest check, no fsync)" % (
                             runs, base, ", ".join("%.3f" % x for x in direct)))
        for kind, secs in cold.items():
            if not secs:
                row.set(kind, None, "no pull succeeded")
                continue
            row.set(kind, statistics.median(secs))
            row.notes.append("%s: runs %s, %.2f× the direct pull" % (
                kind, ", ".join("%.3f" % x for x in secs), statistics.median(secs) / base))
            self.log("  %-8s cold pull median %.3f s (direct %.3f s)" % (kind, statistics.median(secs), base))

    def pull_all(self, server, ref, count, label):
        """Runs `count` skopeo copies of docker://server/ref to fresh oci: dirs at once; wall seconds."""
        errors = []

        def pull(i):
            dest = self.ctx.path("pull-%s-%d" % (label, i))
            try:
                self.ctx.skopeo("copy", "--src-tls-verify=false", "docker://%s/%s" % (server.host, ref),
                                "oci:" + dest, timeout=180)
            except TestFailure as exc:
                errors.append(exc)
        start = time.monotonic()
        threads = [threading.Thread(target=pull, args=(i,), daemon=True) for i in range(count)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(240)
        secs = time.monotonic() - start
        if errors:
            raise errors[0]
        return secs


def https_get(url, headers):
    """(status, body) of a GET over TLS that accepts the bench's self-signed certificate."""
    import http.client  # noqa: PLC0415
    from servers import unverified_context  # noqa: PLC0415
    hostport, _, path = url.split("://", 1)[1].partition("/")
    host, _, port = hostport.rpartition(":")
    conn = http.client.HTTPSConnection(host, int(port), timeout=30, context=unverified_context())
    try:
        conn.request("GET", "/" + path, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def says_keepalive(url):
    """True if an HTTP/1.0 HEAD with `Connection: Keep-Alive` is answered with `Connection: keep-alive`."""
    hostport, _, path = url.split("://", 1)[1].partition("/")
    host, _, port = hostport.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(("HEAD /%s HTTP/1.0\r\nHost: %s\r\nConnection: Keep-Alive\r\n\r\n" % (path, hostport)).encode())
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
    head = data.split(b"\r\n\r\n")[0].decode(errors="replace").lower()
    return "\r\nconnection: keep-alive" in head


def blob(image, digest):
    return os.path.join(image["dir"], "blobs", "sha256", digest.split(":", 1)[1])


def read(path):
    with open(path, "rb") as f:
        return f.read()


# -- report -------------------------------------------------------------------------------------

def fmt(value, unit):
    if value is None:
        return "—"
    if unit in ("s", "MiB"):
        if unit == "s":
            return "%.3f s" % value if value < 1 else "%.2f s" % value
        return "%.1f %s" % (value, unit)
    if unit == "GETs":
        return "%d" % value
    return "{:,.0f}".format(value) + " " + unit


def ratio(a, b):
    return "—" if a is None or b is None or b == 0 else "%.2f×" % (a / b)


def versions(wharf_bin):
    def first_line(cmd):
        try:
            res = run(cmd, timeout=20, check_rc=False)
            return ((res.stdout or "") + (res.stderr or "")).strip().splitlines()[0]
        except (TestFailure, IndexError):
            return "?"
    return [("wharf", first_line([wharf_bin, "--version"])),
            ("registry:2", first_line([REFERENCE_BIN, "--version"]).split(" ", 1)[-1]),
            ("nginx", first_line(["/usr/sbin/nginx", "-v"])),
            ("wrk", " ".join(first_line(["wrk", "--version"]).split()[:2])),
            ("ab", first_line(["ab", "-V"]).replace("This is ", "").split(" <")[0]),
            ("skopeo", first_line(["skopeo", "--version"]))]


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "?"


def report(bench, args, wharf_bin, scale_rows, scale_notes, runtime):
    a = args
    out = ["# wharf benchmark", "",
           "- date: %s" % datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "- machine: %d CPUs (nproc), %s, Linux %s" % (os.cpu_count(), cpu_model(), os.uname().release),
           "- versions: " + "; ".join("%s `%s`" % kv for kv in versions(wharf_bin)),
           "- load: `wrk -t%d -c%d -d%ds` per cell (HEAD: `ab [-k] -i -c%d -t%d`, as Debian's wrk 4.1.0 stalls "
           "on HEAD responses); client and server share the machine; nginx is shown only where it can "
           "stand in (static files, no auth, no proxying)" % (a.threads, a.connections, a.duration,
                                                                       a.connections, a.duration),
           "- servers at their defaults: wharf = one event-loop thread + 2 worker threads (release build); "
           "registry:2 = Go with GOMAXPROCS = %d (all CPUs), `storage.cache.blobdescriptor: inmemory` as in its "
           "stock config.yml; nginx = `worker_processes 1` (one worker process, "
           "sendfile, tcp_nopush, access_log off). Server logs at warn level, access logs off." % os.cpu_count(),
           "- images: bench/app:latest (OCI, 3 × 4 KiB layers, %d B config), bench/app:big (one %.1f MiB "
           "layer), bench/multi:latest (8 × 1 MiB layers) for the mirror pulls; nginx serves the same bytes "
           "at the same paths. Mirrors: `proxy.remoteurl` to a plain docker-registry origin (no auth); "
           "every cold run starts on an empty mirror root." % (bench.config_size, bench.big_size / 1048576.0),
           "- L. rows (large blobs and TLS): `wrk -t(min(%d, connections)) -cN -d%ds`, %d runs per cell with the "
           "servers alternating, the median shown and every run in the notes; TLS: one self-signed RSA-2048 "
           "certificate made in the run for all three servers; wharf and registry:2 at their default TLS settings, "
           "nginx pinned to the suite they pick (TLS 1.3, TLS_AES_128_GCM_SHA256; `ssl_buffer_size` default, no "
           "sendfile under TLS); the negotiated suites in the notes" % (
               a.threads, a.large_duration, a.rounds),
           "- P. rows (push.py): %d runs per cell (%d for the 64 MiB pushes) with the servers alternating, median shown, every run and the "
           "spread in the notes; one 64 MiB blob from a Python http.client (every push a new blob), nginx = "
           "`dav_methods PUT` (temporary file + rename, no digest, no fsync); skopeo and dockerd push to a fresh "
           "root each run" % (a.rounds, max(a.rounds, a.push_rounds)),
           "- ratios: > 1 means wharf is higher (better for req/s and MiB/s, worse for s, GETs and RSS)",
           "- total run time: %.0f s" % runtime, "",
           "| scenario | wharf | registry:2 | nginx | wharf/registry | wharf/nginx |",
           "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in bench.rows:
        w, g, n = (r.values.get(k) for k in KINDS)
        out.append("| %s | %s | %s | %s | %s | %s |" % (r.name, fmt(w, r.unit), fmt(g, r.unit), fmt(n, r.unit),
                                                       ratio(w, g), ratio(w, n)))
    notes = ["%s — %s" % (r.name, "; ".join(r.notes)) for r in bench.rows if r.notes]
    if notes or bench.problems:
        out += ["", "Notes:", ""] + ["- " + x for x in notes + ["problem: " + p for p in bench.problems]]
    if scale_rows:
        out += ["", "## Scale: wharf's index with %d repositories and %d tags" % (a.repos, a.tags), "",
                "| measure | wharf |", "| --- | ---: |"]
        out += ["| %s | %s |" % r for r in scale_rows]
        if scale_notes:
            out += [""] + ["- " + x for x in scale_notes]
    return "\n".join(out) + "\n"


KEPT = "<!-- kept across runs: bench.py copies what follows into the new file -->"


def kept_section(path):
    """The hand-written part of a results file (profiles, analysis) after the KEPT marker, or ''."""
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return ""
    i = text.find(KEPT)
    return "" if i < 0 else "\n" + text[i:]


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--wharf-bin", default=os.path.join(REPO_ROOT, "build-release", "wharf"))
    p.add_argument("--duration", type=int, default=8, help="seconds per wrk run (default 8)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    p.add_argument("--connections", type=int, default=32, help="connections per run (default 32)")
    p.add_argument("--pulls", type=int, default=8, help="concurrent cold pulls in scenario 8 (default 8)")
    p.add_argument("--cold-runs", type=int, default=7, help="rounds of scenario 7 (default 7; medians)")
    p.add_argument("--scale", action=argparse.BooleanOptionalAction, default=True,
                   help="run the scale scenario (default on; --no-scale skips it)")
    p.add_argument("--repos", type=int, default=10000, help="scale: repositories (default 10000)")
    p.add_argument("--tags", type=int, default=100000, help="scale: tags (default 100000)")
    p.add_argument("--scale-budget", type=int, default=60, help="scale: seconds allowed for the fill (default 60)")
    p.add_argument("--results", help="where to write the tables (default tests/bench/RESULTS.md; with "
                   "--only large: tests/bench/RESULTS-large.md); a section after the KEPT marker is kept")
    p.add_argument("--keep", action="store_true", help="keep the run directory (logs, configs, data)")
    p.add_argument("--only", choices=("large", "token", "push", "s3"),
                   help="large: only the large-blob and TLS rows (L.), a few minutes; token: only row 5b; push: only "
                   "the push rows (P., push.py), a few minutes; s3: only the S3 rows (S., s3.py: Ceph RGW), "
                   "RESULTS-s3.md")
    p.add_argument("--s3-cold-runs", type=int, default=3, help="S3 rows: cold mirror pulls per server (default 3; "
                   "0 skips row S5)")
    p.add_argument("--push-rounds", type=int, default=5, help="64 MiB push rows: runs per server (default 5)")
    p.add_argument("--docker", action=argparse.BooleanOptionalAction, default=True,
                   help="push rows: include the dockerd pull/push rows (default on)")
    p.add_argument("--rounds", type=int, default=3, help="large rows: runs per server, alternating (default 3)")
    p.add_argument("--large-duration", type=int, default=3, help="large rows: seconds per wrk run (default 3)")
    args = p.parse_args(argv)
    if not args.results:
        args.results = os.path.join(HERE, {"large": "RESULTS-large.md", "token": "RESULTS-token.md",
                                           "push": "RESULTS-push.md", "s3": "RESULTS-s3.md"}.get(args.only, "RESULTS.md"))
    args.wharf_bin = os.path.abspath(args.wharf_bin)  # servers run with the run directory as cwd
    if not os.access(args.wharf_bin, os.X_OK):
        p.error("%s is not an executable (build it, or pass --wharf-bin)" % args.wharf_bin)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwinds through ctx.close()
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    directory = tempfile.mkdtemp(prefix="wharf-bench-", dir="/tmp")
    ctx = Context("bench", directory)
    bench = Bench(ctx, args)
    ok = False
    try:
        bench.log("run directory %s; generating images" % directory)
        bench.images()
        if args.only == "token":
            bench.token_only(args.wharf_bin)
        if not args.only:
            bench.direct(args.wharf_bin)
        if args.only in (None, "large"):
            bench.large(args.wharf_bin)
        if args.only in (None, "push"):
            run_push(bench, args.wharf_bin)
        if not args.only:
            bench.mirrors(args.wharf_bin)
        if args.only == "s3":
            s3_rows = s3.run_s3(bench, args.wharf_bin)
        scale_rows, scale_notes = [], []
        if args.scale and not args.only:
            bench.log("scale: filling wharf's index (%d repositories, %d tags, budget %d s)"
                      % (args.repos, args.tags, args.scale_budget))
            scale_rows, scale_notes = run_scale(ctx, args.wharf_bin, args.repos, args.tags, args.scale_budget)
        if args.only == "s3":
            text = s3.report(bench, args, args.wharf_bin, time.monotonic() - bench.t0, s3_rows, versions, cpu_model)
        else:
            text = report(bench, args, args.wharf_bin, scale_rows, scale_notes, time.monotonic() - bench.t0)
        text += kept_section(args.results)
        with open(args.results, "w") as f:
            f.write(text)
        print("\n" + text)
        print("written to %s" % os.path.relpath(args.results, REPO_ROOT))
        ok = True
    except TestFailure as exc:
        print("bench failed: %s" % exc, file=sys.stderr)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
    finally:
        ctx.close()
        if ok and not args.keep:
            shutil.rmtree(directory, ignore_errors=True)
        else:
            print("run directory kept: %s" % directory, file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
