"""The scale scenario: fill wharf's index with many repositories and tags over the HTTP API, then time
catalog and tags-list pagination and measure the index on disk.

wharf has no bulk import, so one small image is pushed once and its manifest is PUT under every
repository and tag (blobs cross-mounted into each new repository) from a few threads, each on its own
keep-alive connection. The fill stops at a deadline; the report says how far it got."""
import http.client
import json
import os
import random
import threading
import time

import imagegen
from harness import TestFailure, check, run
from servers import Server

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"


class Client:
    """One keep-alive connection; reconnects once if the server closed it."""

    def __init__(self, port):
        self.port = port
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        """(status, headers, body) of one request."""
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                hdrs = dict(headers or {})
                if body is not None or method in ("PUT", "POST"):
                    hdrs["Content-Length"] = str(len(body or b""))
                self.conn.request(method, path, body=body, headers=hdrs)
                resp = self.conn.getresponse()
                data = resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    self.close()
                return resp.status, resp.headers, data
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt == 2:
                    raise

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def _path_of(location):
    return "/" + location.split("://", 1)[1].split("/", 1)[1] if "://" in location else location


def push_blob(client, repo, data):
    digest = imagegen.sha256(data)
    status, headers, _ = client.request("POST", "/v2/%s/blobs/uploads/" % repo)
    check(status == 202, "POST upload in %s: %d" % (repo, status))
    loc = _path_of(headers["Location"])
    status, _, _ = client.request("PUT", loc + ("&" if "?" in loc else "?") + "digest=" + digest, data,
                                  {"Content-Type": "application/octet-stream"})
    check(status == 201, "PUT blob in %s: %d" % (repo, status))
    return digest


def mount_blob(client, repo, digest, source, data):
    """Cross-repository mount; falls back to an upload when the server answers 202 instead of 201."""
    status, headers, _ = client.request("POST", "/v2/%s/blobs/uploads/?mount=%s&from=%s" % (repo, digest, source))
    if status == 201:
        return
    check(status == 202, "mount into %s: %d" % (repo, status))
    loc = _path_of(headers["Location"])
    status, _, _ = client.request("PUT", loc + ("&" if "?" in loc else "?") + "digest=" + digest, data,
                                  {"Content-Type": "application/octet-stream"})
    check(status == 201, "PUT blob in %s: %d" % (repo, status))


def plan(repos, tags):
    """(repo, tag, first) jobs: one tag in every repository first, then a tenth of all tags into the
    first repository (so tags-list pagination has something to page through), then the rest round-robin."""
    names = ["scale/r%05d" % i for i in range(repos)]
    jobs = [(n, "t0", True) for n in names]
    big = max(0, tags // 10 - 1)
    jobs += [(names[0], "t%d" % i, False) for i in range(1, big + 1)]
    rest = max(0, tags - len(jobs))
    others = names[1:] or names
    for i in range(rest):
        jobs.append((others[i % len(others)], "t%d" % (1 + i // len(others)), False))
    return jobs


def fill(server, repos, tags, budget_s, threads):
    """Pushes the image, then PUTs its manifest per job until done or `budget_s` passed.
    Returns (repos created, tags written, seconds)."""
    c = Client(server.port)
    source = "scale/r00000"
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    cfg_digest = push_blob(c, source, config)
    c.close()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_TYPE,
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": cfg_digest, "size": len(config)},
                           "layers": []}).encode()
    jobs = plan(repos, tags)
    lock = threading.Lock()
    state = {"next": 0, "tags": 0, "repos": 0, "error": None}
    deadline = time.monotonic() + budget_s

    def worker():
        client = Client(server.port)
        try:
            while time.monotonic() < deadline and state["error"] is None:
                with lock:
                    if state["next"] >= len(jobs):
                        return
                    repo, tag, first = jobs[state["next"]]
                    state["next"] += 1
                if first and repo != source:
                    mount_blob(client, repo, cfg_digest, source, config)
                status, _, body = client.request("PUT", "/v2/%s/manifests/%s" % (repo, tag), manifest,
                                                 {"Content-Type": MANIFEST_TYPE})
                check(status == 201, "PUT manifest %s:%s: %d %s" % (repo, tag, status, body[:100]))
                with lock:
                    state["tags"] += 1
                    state["repos"] += 1 if first else 0
        except Exception as exc:  # noqa: BLE001 - reported by the caller
            state["error"] = exc
        finally:
            client.close()

    start = time.monotonic()
    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(budget_s + 120)
    elapsed = time.monotonic() - start
    if state["error"] is not None:
        raise TestFailure("filling the index failed: %s" % state["error"])
    return state["repos"], state["tags"], elapsed


def walk(client, first_path, key, n, max_requests):
    """Pages through `first_path`?n=N&last=... (repeating the walk) for up to max_requests requests.
    Returns (latencies in s, items seen in the first complete walk)."""
    latencies, first_total, total, last = [], None, 0, None
    for _ in range(max_requests):
        path = "%s?n=%d" % (first_path, n) + ("&last=%s" % last if last else "")
        t0 = time.perf_counter()
        status, _, body = client.request("GET", path)
        latencies.append(time.perf_counter() - t0)
        check(status == 200, "GET %s: %d" % (path, status))
        items = json.loads(body).get(key) or []
        total += len(items)
        if len(items) < n:
            first_total = total if first_total is None else first_total
            total, last = 0, None
        else:
            last = items[-1]
    return latencies, first_total


def percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))] if s else 0.0


def du_kib(path, apparent=False):
    out = run(["du", "-s", "--block-size=1K"] + (["--apparent-size"] if apparent else []) + [path]).stdout
    return int(out.split()[0])


def run_scale(ctx, binary, repos, tags, budget_s, threads=4, requests=300):
    """Returns (rows, notes) for the second table: [(measure, value)], [str]."""
    root = ctx.mkdir("scale-data")
    server = Server(ctx, "wharf", binary, "wharf-scale", root).start()
    notes = []
    try:
        done_repos, done_tags, secs = fill(server, repos, tags, budget_s, threads)
        if done_tags < tags or done_repos < repos:
            notes.append("the fill stopped at its %d s budget: %d of %d repositories, %d of %d tags "
                         "(raise --scale-budget for all)" % (budget_s, done_repos, repos, done_tags, tags))
        client = Client(server.port)
        cat_lat, cat_seen = walk(client, "/v2/_catalog", "repositories", 100, requests)
        tag_lat, tag_seen = walk(client, "/v2/scale/r00000/tags/list", "tags", 100, requests)
        rnd = random.Random(1)
        small_lat = []
        for _ in range(requests):
            t0 = time.perf_counter()
            status, _, _ = client.request("GET", "/v2/scale/r%05d/tags/list" % rnd.randrange(1, max(2, done_repos)))
            small_lat.append(time.perf_counter() - t0)
        client.close()
        index = os.path.join(root, "index")
        rows = [
            ("repositories / tags written", "%d / %d" % (done_repos, done_tags)),
            ("fill time (PUT manifest, %d threads, keep-alive)" % threads,
             "%.1f s (%.0f tags/s)" % (secs, done_tags / secs if secs else 0)),
            ("catalog page n=100: p50 / p99 (%d requests)" % len(cat_lat),
             "%.2f / %.2f ms" % (percentile(cat_lat, 50) * 1e3, percentile(cat_lat, 99) * 1e3)),
            ("catalog: repositories seen in one full walk", str(cat_seen)),
            ("tags/list page n=100 of a %s-tag repo: p50 / p99 (%d requests)"
             % (tag_seen, len(tag_lat)),
             "%.2f / %.2f ms" % (percentile(tag_lat, 50) * 1e3, percentile(tag_lat, 99) * 1e3)),
            ("tags/list of random small repos: p50 / p99 (%d requests)" % len(small_lat),
             "%.2f / %.2f ms" % (percentile(small_lat, 50) * 1e3, percentile(small_lat, 99) * 1e3)),
            ("index on disk (du ROOT/index; apparent size)",
             "%.1f MiB (%.1f MiB)" % (du_kib(index) / 1024.0, du_kib(index, apparent=True) / 1024.0)),
            ("wharf peak RSS (VmHWM)", "%.1f MiB" % (server.rss_kib() / 1024.0)),
        ]
        return rows, notes
    finally:
        server.stop()
