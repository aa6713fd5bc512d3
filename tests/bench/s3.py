"""S3 rows (S.) of the benchmark: wharf with storage.s3 on a throwaway Ceph RGW (tests/e2e/ceph.py) side by
side with Debian's docker-registry on the same RGW (its s3 driver, same storage.s3 section), wharf on the
filesystem as the reference for the hot manifest/config GETs, and RGW's own GET of the same 16 MiB object
(the presigned URL wharf redirects to). WHARF_BENCH_S3_STREAM_ONLY=1 runs row S4 alone. Every wrk cell `--rounds` times with the servers alternating; the
median shown, every run in the notes. Results go to RESULTS-s3.md (own table: the columns differ)."""
import datetime
import http.client
import os
import statistics
import urllib.parse

import ceph
from harness import Context, TestFailure, run
from push import record
from registry import MANIFEST_ACCEPT, to_yaml
from servers import REFERENCE_BIN, Server
from wrk import wrk

COLS = ("wharf-s3", "registry-s3", "wharf-fs", "rgw")
HEADS = {"wharf-s3": "wharf on S3", "registry-s3": "registry:2 on S3", "wharf-fs": "wharf on filesystem",
         "rgw": "RGW direct GET"}


def s3_section(gw, bucket):
    """The storage.s3 section both servers read (registry:2's documented keys only)."""
    return {"region": gw.region, "bucket": bucket, "accesskey": gw.access_key, "secretkey": gw.secret_key,
            "regionendpoint": gw.endpoint, "secure": False, "v4auth": True, "rootdirectory": "/registry"}


def s3_server(ctx, kind, binary, name, gw, bucket, redirect=True, proxy=None):
    """A Server whose config.yml uses storage.s3 instead of the filesystem. wharf keeps its index under
    ./data of its working directory: each wharf-on-S3 gets its own Context (directory) per bucket."""
    srv = Server(ctx, kind, binary, name, ctx.mkdir(name + "-unused"), proxy=proxy)
    cfg = {"version": 0.1,
           "log": {"level": "warn", "accesslog": {"disabled": True}},
           "storage": {"s3": s3_section(gw, bucket), "delete": {"enabled": True},
                       "redirect": {"disable": not redirect}},
           "http": {"addr": srv.host, "secret": "bench-not-a-secret-%d" % srv.port}}
    if kind == "registry":
        cfg["storage"]["cache"] = {"blobdescriptor": "inmemory"}
    if proxy:
        cfg["proxy"] = {"remoteurl": proxy}
    with open(srv.config_path, "w") as f:
        f.write(to_yaml(cfg) + "\n")
    return srv


def fetch(url, headers=None):
    """(status, headers dict lower-cased, body) of one GET, no redirects followed."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.netloc, timeout=120)
    try:
        conn.request("GET", u.path + ("?" + u.query if u.query else ""), headers=headers or {})
        res = conn.getresponse()
        return res.status, {k.lower(): v for k, v in res.getheaders()}, res.read()
    finally:
        conn.close()


class S3Bench:
    def __init__(self, bench, wharf_bin):
        self.bench, self.c, self.a = bench, bench.ctx, bench.args
        self.wharf_bin = wharf_bin
        self.subctx = []
        self.gw = None
        self.rows = []

    def ctx_for(self, name):
        sub = Context(name, self.c.mkdir(name))
        self.subctx.append(sub)
        return sub

    def row(self, name, unit, target=""):
        r = self.bench.row(name, unit)
        r.target = target
        self.bench.rows.remove(r)
        self.rows.append(r)
        return r

    def cells(self, row, urls, headers=(), conns=None, want=200):
        """`--rounds` wrk runs per server, alternating; median into the row, every run into the notes.
        One GET first checks the status (`want`; a dict per column allowed)."""
        a = self.a
        conns = conns or a.connections
        runs = {k: [] for k in urls}
        for kind, url in urls.items():
            w = want[kind] if isinstance(want, dict) else want
            status, _, _ = fetch(url, dict(h.split(": ", 1) for h in headers))
            if status != w:
                self.bench.problems.append("%s / %s: GET answered %d, not %d" % (row.name, kind, status, w))
        for _ in range(max(1, a.rounds)):
            for kind, url in urls.items():
                try:
                    res = wrk(url, a.large_duration, min(a.threads, conns), conns, headers)
                except TestFailure as exc:
                    self.bench.problems.append("%s / %s: %s" % (row.name, kind, exc))
                    continue
                if not res.ok:
                    self.bench.problems.append("%s / %s: %s" % (row.name, kind, res.problem()))
                if res.requests:
                    runs[kind].append(res.mib_s if row.unit == "MiB/s" else res.rps)
        record(self.bench, row, runs)

    def run(self):
        b = self.bench
        # registry:2's aws-sdk-go panics at start ("LoadCustomCABundleError ... unsupported transport") when
        # AWS_CA_BUNDLE is set, even for an http endpoint: the servers started here do not inherit it.
        if os.environ.pop("AWS_CA_BUNDLE", None) is not None:
            b.problems.append("AWS_CA_BUNDLE was set in the environment: unset for the servers (registry:2's "
                              "s3 driver refuses to start with it)")
        self.bench.log("S. starting a Ceph RGW (tests/e2e/ceph.py)")
        self.gw = ceph.start_rgw()
        b.log("   RGW at %s in %.1f s" % (self.gw.endpoint, self.gw.started_in))
        try:
            self.hot()
            if self.a.s3_cold_runs:
                self.cold()
        finally:
            for sub in reversed(self.subctx):
                try:
                    sub.close()
                except Exception as exc:  # noqa: BLE001 - keep stopping the others
                    b.problems.append("stopping %s: %s" % (sub.name, exc))
            self.gw.stop()

    def hot(self):
        b, c, gw = self.bench, self.c, self.gw
        s, big = b.small, b.big
        for name in ("bench-wharf", "bench-registry"):
            ceph.create_bucket(gw, name)
        wctx = self.ctx_for("wharf-s3")
        servers = {"wharf-s3": s3_server(wctx, "wharf", self.wharf_bin, "wharf-s3", gw, "bench-wharf"),
                   "registry-s3": s3_server(c, "registry", REFERENCE_BIN, "registry-s3", gw, "bench-registry"),
                   "wharf-fs": Server(c, "wharf", self.wharf_bin, "wharf-fs", c.mkdir("wharf-fs-data"))}
        for kind, srv in servers.items():
            srv.start()
            b.log("pushing bench/app:latest and bench/app:big into %s (skopeo)" % kind)
            b.push(srv, s, "bench/app:latest")
            b.push(srv, big, "bench/app:big")
        accept = "Accept: " + MANIFEST_ACCEPT
        manifest = _read(s, s["manifest_digest"])
        paths = {"manifest": "/v2/bench/app/manifests/latest",
                 "config": "/v2/bench/app/blobs/" + s["config_digest"],
                 "big": "/v2/bench/app/blobs/" + big["layers"][0]}
        urls = {k: v.url for k, v in servers.items()}
        for kind, url in urls.items():
            status, _, body = fetch(url + paths["manifest"], {"Accept": MANIFEST_ACCEPT})
            if status != 200 or body != manifest:
                b.problems.append("%s: manifest GET answered %d%s" % (kind, status, " (other bytes)" if status == 200 else ""))
        # What each answers for the config blob (registry:2 on S3 redirects every blob GET).
        config_status = {k: fetch(u + paths["config"])[0] for k, u in urls.items()}
        if os.environ.get("WHARF_BENCH_S3_STREAM_ONLY") == "1":  # S4 alone (before/after comparisons)
            for srv in servers.values():
                srv.stop()
            return self.stream(wctx, paths, big, "")
        r1 = self.row("S1. manifest GET by tag (%d B), %d connections" % (len(manifest), self.a.connections),
                      "req/s", "wharf-s3 ≥ 90% of wharf-fs; ≥ 10× registry-s3")
        r2 = self.row("S2. small blob GET (config, %d B), %d connections" % (b.config_size, self.a.connections),
                      "req/s", "wharf-s3 ≥ 90% of wharf-fs")
        for row, what, headers in ((r1, "manifest", [accept]), (r2, "config", [])):
            b.log(row.name)
            self.cells(row, {k: u + paths[what] for k, u in urls.items()}, headers,
                       want=config_status if what == "config" else 200)
        r2.notes.append("answers: " + ", ".join("%s %d" % kv for kv in config_status.items()))
        r3 = self.row("S3. 16 MiB blob GET with redirect (307 answers), %d connections" % self.a.connections,
                      "req/s", "(307s; wrk does not follow)")
        b.log(r3.name)
        redirect_urls = {k: urls[k] + paths["big"] for k in ("wharf-s3", "registry-s3")}
        self.cells(r3, redirect_urls, want=307)
        status, hdrs, _ = fetch(redirect_urls["wharf-s3"])
        presigned = hdrs.get("location", "") if status == 307 else ""
        if not presigned.startswith(gw.endpoint + "/bench-wharf/"):
            b.problems.append("wharf-s3 big blob GET: %d, Location %r (no RGW URL for the direct row)" % (status, presigned))
            presigned = ""
        for kind, srv in servers.items():
            srv.stop()
        self.stream(wctx, paths, big, presigned)

    def stream(self, wctx, paths, big, presigned):
        """S4: the 16 MiB blob streamed with redirects off, at 1 and 4 connections, next to RGW's own GET of
        the same object (`presigned`; found here when not given)."""
        b, c, gw = self.bench, self.c, self.gw
        # Streaming: the same buckets, redirects off (wharf reuses its index: same working directory).
        b.log("restarting wharf and registry:2 on S3 with storage.redirect.disable: true")
        stream = {"wharf-s3": s3_server(wctx, "wharf", self.wharf_bin, "wharf-s3-stream", gw, "bench-wharf",
                                        redirect=False),
                  "registry-s3": s3_server(c, "registry", REFERENCE_BIN, "registry-s3-stream", gw,
                                           "bench-registry", redirect=False),
                  "wharf-fs": Server(c, "wharf", self.wharf_bin, "wharf-fs-2", c.mkdir("wharf-fs-data"))}
        for srv in stream.values():
            srv.start()
        surls = {k: v.url + paths["big"] for k, v in stream.items()}
        if not presigned:  # the object's URL on RGW, from a wharf that redirects
            probe = s3_server(wctx, "wharf", self.wharf_bin, "wharf-s3-probe", gw, "bench-wharf").start()
            status, hdrs, _ = fetch(probe.url + paths["big"])
            presigned = hdrs.get("location", "") if status == 307 else ""
            probe.stop()
        if presigned:
            surls["rgw"] = presigned
        want = _read(big, big["layers"][0])
        for kind, url in surls.items():
            status, _, body = fetch(url)
            if status != 200 or body != want:
                b.problems.append("%s: streamed 16 MiB GET answered %d%s" % (kind, status, " (other bytes)" if status == 200 else ""))
        for conns in (1, 4):
            r4 = self.row("S4. 16 MiB blob GET streamed (redirects off), %d connection%s" % (
                conns, "" if conns == 1 else "s"), "MiB/s", "wharf-s3 ≥ 80% of rgw")
            b.log(r4.name)
            self.cells(r4, surls, conns=conns)
            if presigned:
                r4.notes.append("rgw: GET of the presigned URL wharf's 307 points to (the same object)")
        for srv in stream.values():
            srv.stop()

    def cold(self):
        """S5: skopeo pull of bench/multi (8 x 1 MiB layers) through a cold mirror of a plain docker-registry
        origin; a fresh bucket (and wharf index) every run; runs alternate between the servers."""
        b, c, gw = self.bench, self.c, self.gw
        origin = Server(c, "registry", REFERENCE_BIN, "s3-origin", c.mkdir("s3-origin-data")).start()
        b.push(origin, b.multi, "bench/multi:latest")
        row = self.row("S5. cold pull through the mirror, %d x 1 MiB layers (skopeo)" % len(b.multi["layers"]),
                       "s", "")
        row.higher_is_better = False
        b.log(row.name)
        runs = {"wharf-s3": [], "registry-s3": [], "wharf-fs": []}
        for i in range(self.a.s3_cold_runs):
            for kind in runs:
                name = "%s-cold-%d" % (kind, i)
                if kind == "wharf-fs":
                    srv = Server(c, "wharf", self.wharf_bin, name, c.mkdir(name + "-data"), proxy=origin.url)
                else:
                    ceph.create_bucket(gw, name)
                    binary, skind = ((self.wharf_bin, "wharf") if kind == "wharf-s3" else (REFERENCE_BIN, "registry"))
                    where = self.ctx_for(name) if kind == "wharf-s3" else c
                    srv = s3_server(where, skind, binary, name, gw, name, proxy=origin.url)
                srv.start()
                try:
                    runs[kind].append(b.pull_all(srv, "bench/multi:latest", 1, name))
                except TestFailure as exc:
                    b.problems.append("%s / %s: %s" % (row.name, kind, str(exc)[:300]))
                srv.stop()
        origin.stop()
        for kind, vals in runs.items():
            if vals:
                row.set(kind, statistics.median(vals))
        row.notes.append("runs " + "; ".join("%s %s" % (k, "/".join("%.2f" % v for v in vals))
                                            for k, vals in runs.items()))


def _read(image, digest):
    with open(os.path.join(image["dir"], "blobs", "sha256", digest.split(":", 1)[1]), "rb") as f:
        return f.read()


def _fmt(value, unit):
    if value is None:
        return "—"
    if unit == "s":
        return "%.2f s" % value
    return "{:,.0f}".format(value) + " " + unit


def _pct(a, b):
    return "%.0f%%" % (100.0 * a / b) if a is not None and b else "—"


def _ratios(r):
    v = r.values
    w = v.get("wharf-s3")
    parts = []
    if r.unit == "s":
        if v.get("wharf-fs"):
            parts.append("wharf-s3 / wharf-fs %.2f×" % (w / v["wharf-fs"]) if w else "")
        if v.get("registry-s3") and w:
            parts.append("wharf-s3 / registry-s3 %.2f×" % (w / v["registry-s3"]))
        return "; ".join(p for p in parts if p)
    if v.get("wharf-fs"):
        parts.append("of wharf-fs %s" % _pct(w, v["wharf-fs"]))
    if v.get("rgw"):
        parts.append("of rgw %s" % _pct(w, v["rgw"]))
    if v.get("registry-s3") and w:
        parts.append("vs registry-s3 %.1f×" % (w / v["registry-s3"]))
    return "; ".join(parts)


def report(bench, args, wharf_bin, runtime, rows, versions, cpu_model):
    """RESULTS-s3.md: method, the table, notes and problems."""
    gw_version = "?"
    try:
        gw_version = run(["radosgw", "--version"], timeout=20, check_rc=False).stdout.strip().split(" (")[0]
    except TestFailure:
        pass
    out = ["# wharf benchmark: S3 rows", "",
           "- date: %s" % datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "- machine: %d CPUs (nproc), %s, Linux %s; client, servers and the whole Ceph cluster share it"
           % (os.cpu_count(), cpu_model(), os.uname().release),
           "- versions: " + "; ".join("%s `%s`" % kv for kv in versions(wharf_bin)[:5]) + "; radosgw `%s`" % gw_version,
           "- storage: one throwaway Ceph cluster (tests/e2e/ceph.py: 1 mon, 1 OSD on memstore, radosgw beast "
           "on 127.0.0.1, no cephx); wharf and registry:2 each in their own bucket, both from the same "
           "`storage.s3` section (`region, bucket, accesskey, secretkey, regionendpoint, secure: false, "
           "v4auth: true, rootdirectory: /registry`), registry:2 with `cache.blobdescriptor: inmemory` as in "
           "its stock config; wharf on filesystem = the same wharf with `storage.filesystem`",
           "- content: bench/app:latest (OCI, 3 × 4 KiB layers, %d B config) and bench/app:big (one %.1f MiB "
           "layer) pushed by skopeo into each server; bench/multi (8 × 1 MiB layers) on a plain docker-registry "
           "origin for S5" % (bench.config_size, bench.big_size / 1048576.0),
           "- load: `wrk -t(min(%d, connections)) -cN -d%ds`, %d runs per cell with the servers alternating, "
           "median shown, every run in the notes. S1-S3 on servers with redirects on (both defaults); S4 "
           "after restarting both on the same buckets with `storage.redirect.disable: true`; the rgw column "
           "is wrk against the presigned URL wharf's 307 points to (the same object, no registry in the path). "
           "S5: skopeo copy through a mirror (`proxy.remoteurl`) started on an empty bucket each run, %d runs, "
           "median" % (args.threads, args.large_duration, args.rounds, args.s3_cold_runs),
           "- total run time: %.0f s" % runtime, "",
           "| scenario | " + " | ".join(HEADS[k] for k in COLS) + " | wharf-s3 ratios | target |",
           "| --- | " + " | ".join("---:" for _ in COLS) + " | --- | --- |"]
    for r in rows:
        out.append("| %s | %s | %s | %s |" % (r.name, " | ".join(_fmt(r.values.get(k), r.unit) for k in COLS),
                                              _ratios(r), r.target))
    notes = ["%s — %s" % (r.name, "; ".join(r.notes)) for r in rows if r.notes]
    if notes or bench.problems:
        out += ["", "Notes:", ""] + ["- " + x for x in notes + ["problem: " + p for p in bench.problems]]
    return "\n".join(out) + "\n"


def run_s3(bench, wharf_bin):
    """All S. rows; returns them (kept out of bench.rows: RESULTS-s3.md has its own columns)."""
    s = S3Bench(bench, wharf_bin)
    s.run()
    return s.rows
