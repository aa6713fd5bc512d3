"""Push rows (P.) of the benchmark: one 64 MiB blob pushed into wharf, registry:2 and nginx's WebDAV PUT
(the ceiling: no digest, no fsync); 8 concurrent skopeo pushes of 8 different 4-layer images; a 4 x 16 MiB
image pulled by a fresh dockerd through each registry and pushed back by it. Every cell `--rounds` times
with the servers alternating; the table shows the median, the notes every run and the spread."""
import hashlib
import http.client
import os
import shutil
import statistics
import threading
import time
import urllib.parse

import imagegen
from harness import TestFailure
from servers import REFERENCE_BIN, NginxProcess, Server

BLOB_SIZE = 64 << 20
CHUNK = 8 << 20  # PATCH size of the chunked variant


class NginxDav(NginxProcess):
    """nginx accepting PUT of any path under DIR/dav (dav_methods PUT): writes the body to a temporary
    file and renames it, without hashing or syncing it."""

    def __init__(self, ctx):
        super().__init__(ctx, "nginx-dav")
        self.root = ctx.mkdir("nginx-dav", "dav")
        self.write_conf("""    server {
        listen 127.0.0.1:%(port)d;
        client_max_body_size 0;
        location / {
            root %(dir)s/dav;
            dav_methods PUT;
            create_full_put_path on;
        }
    }
""")

    def start(self):
        # The worker runs as nobody when started by root: it writes the temporary files and the tree.
        os.chmod(self.ctx.dir, 0o755)
        for d in (self.dir, self.root, os.path.join(self.dir, "tmp-body")):
            os.makedirs(d, exist_ok=True)
            os.chmod(d, 0o777)
        return super().start()


def _path(location):
    """The path and query of a Location header (registry:2 answers absolute URLs)."""
    u = urllib.parse.urlsplit(location)
    return u.path + ("?" + u.query if u.query else "")


def _with_digest(location, digest):
    return _path(location) + ("&" if "?" in location else "?") + "digest=" + digest


def _call(conn, method, path, body=None, headers=None, want=(201, 202, 204)):
    conn.request(method, path, body=body, headers=headers or {})
    res = conn.getresponse()
    data = res.read()
    if res.status not in want:
        raise TestFailure("%s %s answered %d: %s" % (method, path, res.status, data[:200]))
    return res


def push_blob(host, data, digest, how):
    """Pushes `data` and returns the seconds it took: how = put (POST + PUT ?digest with the body),
    chunks (POST + PATCH of 8 MiB pieces with Content-Range + PUT ?digest), dav (one WebDAV PUT)."""
    conn = http.client.HTTPConnection(host, timeout=120)
    try:
        t0 = time.monotonic()
        if how == "dav":
            _call(conn, "PUT", "/blobs/" + digest.replace(":", "-"), data,
                  {"Content-Type": "application/octet-stream"})
            return time.monotonic() - t0
        loc = _call(conn, "POST", "/v2/bench/push/blobs/uploads/", b"", want=(202,)).getheader("Location")
        if how == "chunks":
            view = memoryview(data)
            for first in range(0, len(data), CHUNK):
                piece = view[first:first + CHUNK]
                loc = _call(conn, "PATCH", _path(loc), piece,
                            {"Content-Type": "application/octet-stream",
                             "Content-Range": "%d-%d" % (first, first + len(piece) - 1)},
                            want=(202,)).getheader("Location")
            body = b""
        else:
            body = data
        _call(conn, "PUT", _with_digest(loc, digest), body, {"Content-Type": "application/octet-stream"},
              want=(201,))
        return time.monotonic() - t0
    finally:
        conn.close()


def record(bench, row, runs):
    """Median into the row, every run and the spread into its notes."""
    parts = []
    for kind, vals in runs.items():
        if not vals:
            row.set(kind, None, "no run completed")
            continue
        med = statistics.median(vals)
        row.set(kind, med)
        spread = (max(vals) - min(vals)) / med * 100 if med else 0
        fmt = "%.2f" if row.unit == "s" else "%.0f"
        parts.append("%s %s (spread %.0f%%)" % (kind, "/".join(fmt % v for v in vals), spread))
        bench.log("  %-8s median %8.2f %s  runs %s" % (kind, med, row.unit, "/".join(fmt % v for v in vals)))
    row.notes.append("runs " + "; ".join(parts))


def _rss(rss, kind, server):
    rss.set(kind, max(rss.values.get(kind) or 0, server.rss_kib() / 1024.0))


def blob_rows(bench, bins, rss):
    """P1/P2: one 64 MiB blob, MiB/s, every push a new blob (its first bytes count the pushes)."""
    c, a = bench.ctx, bench.args
    servers = {k: Server(c, k, bins[k], "push-" + k, c.mkdir("push-%s-data" % k)).start() for k in bins}
    dav = NginxDav(c).start()
    hosts = {"wharf": servers["wharf"].host, "registry": servers["registry"].host, "nginx": dav.host}
    base = bytearray(os.urandom(BLOB_SIZE))
    counter = [0]

    def fresh():
        counter[0] += 1
        base[:8] = counter[0].to_bytes(8, "big")
        data = bytes(base)
        return data, "sha256:" + hashlib.sha256(data).hexdigest()

    for how, name in (("put", "P1. push one 64 MiB blob (POST + PUT ?digest), 1 connection"),
                      ("chunks", "P2. push one 64 MiB blob (POST + 8 PATCH of 8 MiB + PUT)")):
        row = bench.row(name, "MiB/s")
        if how == "put":
            row.notes.append("nginx: WebDAV PUT of the same bytes (`dav_methods PUT`; no digest, no fsync)")
        bench.log(row.name)
        runs = {k: [] for k in hosts if how == "put" or k != "nginx"}
        for _ in range(max(1, a.rounds, a.push_rounds)):
            for kind in runs:
                data, digest = fresh()
                try:
                    secs = push_blob(hosts[kind], data, digest, "dav" if kind == "nginx" else how)
                except (OSError, http.client.HTTPException, TestFailure) as exc:
                    bench.problems.append("%s / %s: %s" % (row.name, kind, exc))
                    continue
                runs[kind].append(BLOB_SIZE / 1048576.0 / secs)
        record(bench, row, runs)
    for kind, srv in servers.items():
        _rss(rss, kind, srv)
        srv.stop()
    rss.set("nginx", max(rss.values.get("nginx") or 0, dav.rss_kib() / 1024.0))
    dav.stop()


def skopeo_rows(bench, bins, rss):
    """P3: 8 skopeo pushes of 8 different 4-layer images at once into an empty server; wall time."""
    c, a = bench.ctx, bench.args
    images = []
    for i in range(8):
        d = c.path("push-img-%d" % i)
        img = imagegen.generate(d, layers=4, size=4 << 20, seed=100 + i, tag="latest")
        img["dir"] = d
        images.append(img)
    row = bench.row("P3. 8 concurrent skopeo pushes of 8 different images (4 × 4 MiB layers each), wall time",
                    "s", higher_is_better=False)
    bench.log(row.name)
    runs = {k: [] for k in bins}
    for rnd in range(max(1, a.rounds)):
        for kind in bins:
            srv = Server(c, kind, bins[kind], "push8-%s-%d" % (kind, rnd), c.mkdir("push8-%s-%d" % (kind, rnd))).start()
            errors = []

            def one(i, srv=srv, errors=errors):
                try:
                    bench.push(srv, images[i], "bench/img%d:latest" % i)
                except Exception as exc:  # noqa: BLE001 - reported with the row
                    errors.append(str(exc))
            threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
            t0 = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=300)
            secs = time.monotonic() - t0
            if errors or any(t.is_alive() for t in threads):
                bench.problems.append("%s / %s: %s" % (row.name, kind, "; ".join(errors) or "a push hung"))
            else:
                runs[kind].append(secs)
            _rss(rss, kind, srv)
            srv.stop()
    record(bench, row, runs)


def docker_rows(bench, bins, rss):
    """P4/P5: a 4 x 16 MiB image (pushed with skopeo beforehand) pulled by a fresh dockerd (empty
    data-root) from each server, then pushed by that dockerd into an empty server of the same kind;
    wall time of each."""
    from test_docker import Dockerd  # noqa: PLC0415 - the e2e suite's dockerd owner
    c, a = bench.ctx, bench.args
    d = c.path("push-img-docker")
    img = imagegen.generate(d, layers=4, size=16 << 20, seed=200, tag="latest", fmt="docker")
    img["dir"] = d
    servers = {k: Server(c, k, bins[k], "dock-" + k, c.mkdir("dock-%s-data" % k)).start() for k in bins}
    for srv in servers.values():
        bench.push(srv, img, "bench/docker:latest")
    pull = bench.row("P4. docker pull of a stored 4 × 16 MiB image, fresh dockerd, wall time", "s",
                     higher_is_better=False)
    push = bench.row("P5. docker push of that image into an empty server (dockerd compresses), wall time", "s",
                     higher_is_better=False)
    bench.log(pull.name + " / " + push.name)
    pulls, pushes = {k: [] for k in bins}, {k: [] for k in bins}
    for rnd in range(max(1, a.rounds)):
        order = list(servers.items())
        for kind, srv in order if rnd % 2 == 0 else order[::-1]:  # who goes first alternates too
            dockerd = Dockerd(c).start()
            empty = Server(c, kind, bins[kind], "dock-%s-%d" % (kind, rnd), c.mkdir("dock-%s-%d" % (kind, rnd))).start()
            try:
                ref = "%s/bench/docker:latest" % srv.host
                t0 = time.monotonic()
                dockerd.docker("pull", "-q", ref, timeout=300)
                pulls[kind].append(time.monotonic() - t0)
                target = "%s/bench/docker:latest" % empty.host
                dockerd.docker("tag", ref, target)
                t0 = time.monotonic()
                dockerd.docker("push", "-q", target, timeout=300)
                pushes[kind].append(time.monotonic() - t0)
            except (TestFailure, OSError) as exc:
                bench.problems.append("docker rows / %s: %s" % (kind, exc))
            finally:
                dockerd.stop()
                shutil.rmtree(os.path.join(dockerd.base, "data"), ignore_errors=True)  # the next one starts empty
                _rss(rss, kind, empty)
                empty.stop()
    record(bench, pull, pulls)
    record(bench, push, pushes)
    for kind, srv in servers.items():
        _rss(rss, kind, srv)
        srv.stop()


def run_push(bench, wharf_bin):
    """All P. rows, then the peak RSS of each server over them."""
    bins = {"wharf": wharf_bin, "registry": REFERENCE_BIN}
    rss = bench.row("P6. peak RSS (VmHWM) during the push rows (highest of every instance)", "MiB",
                    higher_is_better=False)
    blob_rows(bench, bins, rss)
    skopeo_rows(bench, bins, rss)
    if bench.args.docker:
        docker_rows(bench, bins, rss)
    bench.rows.remove(rss)
    bench.rows.append(rss)
