"""Three wharf fronts sharing one PostgreSQL index and one S3 bucket behind haproxy (tests/e2e/fleet.py):
a chunked push whose PATCHes land on a different front each time continues from the bucket's state (a
front that saw the session earlier answers 416 with the true Range instead of accepting a stale offset)
and is visible through every front at once; dockerd pushes a multi-layer image through the balancer
(PATCH and PUT of one session on different fronts, read from the fronts' access logs) and pulls it back;
skopeo, podman and containerd (ctr --hosts-dir, ?ns=) pull it; kill -9 of the front receiving a PATCH
loses nothing acknowledged: the client asks the balancer for the session's Range and resumes. Online GC
runs on one front at a time (the maintenance lock) while pushes land through other fronts, and nothing
acknowledged is lost; a PostgreSQL restart under load gives 503 UNAVAILABLE or right bytes, never wrong
ones, and /debug/health names the database, or the bucket, on every front."""
import hashlib
import json
import os
import random
import re
import signal
import threading
import time

from fleet import Fleet, check_spread
from harness import SERVER_BIN, TestFailure, check, check_eq, run, stop_process, timeout, wait_for, wharf_only
from http_util import expect_error, request, with_query

MiB = 1 << 20
FLEET = "fleets of wharf fronts (PostgreSQL index, S3 store)"


def _range_end(resp):
    """The offset a Range header "0-N" reports (N+1)."""
    m = re.fullmatch(r"0-(\d+)", resp.header("Range") or "")
    check(m, "no Range header 0-N in %r" % resp)
    return int(m.group(1)) + 1


def _patch(base, loc, data, start, timeout_s=120):
    return request("PATCH", base + loc, {"Content-Type": "application/octet-stream",
                                         "Content-Range": "%d-%d" % (start, start + len(data) - 1)}, data,
                   timeout=timeout_s)


def _location(resp):
    loc = resp.header("Location") or ""
    check(loc.startswith("/v2/"), "Location of %r" % resp)
    return loc


def _open_session(fleet, repo, seed, size):
    """`size` random bytes (from `seed`), their digest, and an upload session opened through haproxy:
    (data, digest, Location, session id)."""
    data = random.Random(seed).randbytes(size)
    r = fleet.req("POST", "/v2/%s/blobs/uploads/" % repo)
    check_eq(r.status, 202, "POST through haproxy (%r)" % r)
    loc = _location(r)
    return data, "sha256:" + hashlib.sha256(data).hexdigest(), loc, loc.rsplit("/", 1)[1]


@wharf_only(FLEET)
@timeout(420)
def test_fleet_chunked_push_moves_between_fronts(ctx):
    fleet = Fleet(ctx).start()
    data, digest, loc, sid = _open_session(fleet, "e2e/chunks", 111, 12 * MiB + 12345)
    step = 1536 * 1024 + 7  # 8 PATCHes, not aligned with the 5 MiB parts: parts and tails continue on other fronts
    offset = 0
    while offset < len(data):
        chunk = data[offset:offset + step]
        r = _patch(fleet.url, loc, chunk, offset)
        check_eq(r.status, 202, "PATCH at %d through haproxy (%r, %s)" % (offset, r, r.body[:300]))
        offset += len(chunk)
        check_eq(_range_end(r), offset, "Range after the PATCH ending at %d" % offset)
        loc = _location(r)
    fronts = fleet.session_fronts("e2e/chunks").get(sid, set())
    check_eq(fronts, {0, 1, 2}, "fronts that served a PATCH of the session (access logs)")

    # Every front reports the bucket's offset, including the one whose memory holds an older one; a
    # PATCH at a stale offset is refused with the true Range (nothing is written at the wrong place).
    for f in fleet.fronts:
        st = request("GET", f.url + loc)
        check_eq((st.status, _range_end(st)), (204, len(data)), "status of the session on %s" % f.name)
        stale = _patch(f.url, loc, b"x" * 100, 0)
        expect_error(stale, 416, "RANGE_INVALID", "PATCH at offset 0 on %s" % f.name)
        check_eq(_range_end(stale), len(data), "Range of the 416 from %s" % f.name)

    r = fleet.req("PUT", with_query(loc, "digest=" + digest))
    check_eq(r.status, 201, "PUT ?digest= through haproxy (%r %s)" % (r, r.body[:300]))
    for f in fleet.fronts:
        got = request("GET", f.url + "/v2/e2e/chunks/blobs/" + digest, timeout=120)
        check(got.status == 200 and got.body == data, "blob read back through %s: %r" % (f.name, got))

    _concurrent_patches(fleet)

    # A push through front 0 is visible through fronts 1 and 2 at once (no wait, no retry).
    img = fleet.fronts[0].push_image("e2e/visible", "v1", layers=2, size=4096, seed=5)
    for f in fleet.fronts[1:]:
        m = f.manifest("e2e/visible", "v1")
        check_eq((m.status, m.header("Docker-Content-Digest")), (200, img["manifest_digest"]),
                 "manifest pushed through front0, read through %s" % f.name)


def _concurrent_patches(fleet):
    """Two PATCHes at the same offset of one session at once, on fronts 1 and 2: one is acknowledged, the
    other gets 416 with a Range; the session then holds the winner's bytes, whole."""
    head = random.Random(114).randbytes(3 * MiB)
    r = fleet.fronts[0].req("POST", "/v2/e2e/race/blobs/uploads/")
    check_eq(r.status, 202, "POST on front0 (%r)" % r)
    loc = _location(r)
    r = _patch(fleet.fronts[0].url, loc, head, 0)
    check_eq(r.status, 202, "first PATCH (%r)" % r)
    bodies = [random.Random(115 + i).randbytes(1 * MiB) for i in range(2)]
    both_half_sent = threading.Barrier(2, timeout=60)
    results = [None, None]

    def send(i):
        def body():
            yield bodies[i][:MiB // 2]
            try:
                both_half_sent.wait()  # both requests are under way before either can finish
            except threading.BrokenBarrierError:
                pass
            yield bodies[i][MiB // 2:]
        try:
            results[i] = request("PATCH", fleet.fronts[i + 1].url + loc,
                                 {"Content-Type": "application/octet-stream", "Content-Length": str(MiB),
                                  "Content-Range": "%d-%d" % (len(head), len(head) + MiB - 1)}, body(), timeout=120)
        except OSError as exc:
            results[i] = exc
    threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    statuses = [getattr(x, "status", x) for x in results]
    check_eq(sorted(statuses), [202, 416], "statuses of two PATCHes at offset %d at once on two fronts" % len(head))
    winner = statuses.index(202)
    loser = results[1 - winner]
    expect_error(loser, 416, "RANGE_INVALID", "the PATCH that lost")
    check(_range_end(loser) in (len(head), len(head) + MiB), "Range of the 416: %r" % loser.header("Range"))
    print("    the PATCH that lost: %s" % loser.body[:160].decode(errors="replace"), flush=True)
    for f in fleet.fronts:
        st = request("GET", f.url + loc)
        check_eq((st.status, _range_end(st)), (204, len(head) + MiB), "status on %s after the race" % f.name)
    whole = head + bodies[winner]
    r = fleet.req("PUT", with_query(loc, "digest=sha256:" + hashlib.sha256(whole).hexdigest()))
    check_eq(r.status, 201, "PUT with the winner's digest (%r %s)" % (r, r.body[:300]))


@wharf_only(FLEET)
@timeout(900)
def test_fleet_clients_push_and_pull_through_haproxy(ctx):
    from mirror_util import Containerd, Podman
    from test_docker import Dockerd, image_id
    fleet = Fleet(ctx).start()
    img = ctx.image(layers=3, size=768 << 10, seed=112, fmt="docker")
    ref = "%s/e2e/fleetapp:v1" % fleet.host
    archive = ctx.path("image.tar")
    ctx.skopeo("copy", "oci:" + img["dir"], "docker-archive:%s:%s" % (archive, ref))
    dk = Dockerd(ctx).start()
    dk.docker("load", "-i", archive)
    dk.docker("push", ref, timeout=300)
    check_spread(fleet, "e2e/fleetapp", "docker push through haproxy")
    pushed = dk.docker("image", "inspect", "--format", "{{index .RepoDigests 0}}", ref).stdout.strip()
    manifest_digest = pushed.rsplit("@", 1)[1]
    dk.docker("rmi", ref)
    dk.docker("pull", ref, timeout=300)
    check_eq(image_id(dk, ref), img["config_digest"], "image ID after docker pull through haproxy")

    out = ctx.path("skopeo-out")
    ctx.skopeo("copy", "--src-tls-verify=false", "docker://" + ref, "dir:" + out)
    check(os.path.exists(os.path.join(out, "manifest.json")), "skopeo copied the image out")
    with open(os.path.join(out, "manifest.json"), "rb") as f:
        check_eq("sha256:" + hashlib.sha256(f.read()).hexdigest(), manifest_digest, "skopeo's manifest digest")

    podman = Podman(ctx)
    podman("pull", "--tls-verify=false", ref, timeout=300)
    info = podman("image", "inspect", ref, "--format", "{{.Digest}}").stdout.strip()
    check_eq(info, manifest_digest, "podman's manifest digest")

    cd = Containerd(ctx).start()
    cd.mirror("docker.io", fleet.url)
    cref = "docker.io/e2e/fleetapp:v1"
    cd.pull(cref)
    check_eq(cd.image_digest(cref), manifest_digest, "manifest digest containerd recorded")
    ns = [t for _, m, t, s in fleet.requests("/v2/e2e/fleetapp/") if "ns=docker.io" in t and s == 200]
    check(ns, "no request with ?ns=docker.io answered 200 in the fronts' access logs")


def _kill_during(fleet, victim, loc, chunk, start):
    """PATCHes `chunk` at `start` through haproxy and SIGKILLs front `victim` once half the body is sent.
    Returns the response, or None if the connection broke."""
    half = len(chunk) // 2

    def body():
        yield chunk[:half]
        time.sleep(0.5)  # let the front receive what was sent
        os.kill(victim.proc.pid, signal.SIGKILL)
        yield chunk[half:]
    try:
        return request("PATCH", fleet.url + loc, {"Content-Type": "application/octet-stream",
                                                   "Content-Length": str(len(chunk)),
                                                   "Content-Range": "%d-%d" % (start, start + len(chunk) - 1)},
                       body(), timeout=120)
    except OSError:
        return None


@wharf_only(FLEET)
@timeout(420)
def test_fleet_kill9_front_during_push_loses_nothing_acknowledged(ctx):
    fleet = Fleet(ctx).start()
    data, digest, loc, sid = _open_session(fleet, "e2e/killed", 113, 9 * MiB + 999)
    # Chunks of 1.5 MiB: the cut request ends before the first 5 MiB part, so the front dies holding bytes
    # only in memory (a front that dies between its claim and its part upload holds the session up for
    # 120 s: docs/fleet.md).
    step = 3 * MiB // 2 + 3
    acked = 0
    for _ in range(2):  # two PATCHes acknowledged on two fronts
        r = _patch(fleet.url, loc, data[acked:acked + step], acked)
        check_eq(r.status, 202, "PATCH at %d (%r)" % (acked, r))
        acked = _range_end(r)
        loc = _location(r)
    # Round-robin over 3 fronts, and only this client: POST, PATCH, PATCH went to fronts p, p+1, p+2, so the
    # next request goes to p again (checked from the access logs before relying on it).
    # (a front writes its access log line as it answers: wait until both PATCH lines are there)
    wait_for(lambda: sum(1 for _, m, _t, _s in fleet.requests(sid) if m == "PATCH") >= 2,
             "the access logs to show both PATCHes", tries=100, interval=0.1)
    served = {m: {i for i, m2, t, st in fleet.requests(sid) if m2 == m} for m in ("POST", "PATCH")}
    served["POST"] = {i for i, m, t, st in fleet.requests("/v2/e2e/killed/blobs/uploads/") if m == "POST"}
    check(len(served["POST"]) == 1 and len(served["PATCH"]) == 2 and not served["POST"] & served["PATCH"],
          "POST and the two PATCHes went to three different fronts: %r" % served)
    victim = fleet.fronts[next(iter(served["POST"]))]
    cut = _kill_during(fleet, victim, loc, data[acked:acked + step], acked)
    check(cut is None or cut.status >= 500, "the PATCH cut by kill -9 of %s did not fail: %r" % (victim.name, cut))
    stop_process(victim.proc, grace=10)

    # The client resumes through haproxy from the Range the fleet reports (retries: haproxy may still send
    # a request to the dead front before its health check takes it out; redispatch retries it elsewhere).
    def status():
        st = fleet.req("GET", loc)
        return st if st.status == 204 else None
    st = None
    for _ in range(20):
        st = status()
        if st:
            break
        time.sleep(0.5)
    check(st is not None, "session status through haproxy after kill -9 of %s" % victim.name)
    offset = _range_end(st)
    check(offset >= acked, "Range after kill -9 (%d) lost acknowledged bytes (%d acknowledged)" % (offset, acked))
    check(offset <= acked + step, "Range after kill -9 (%d) beyond what was sent" % offset)
    while offset < len(data):
        chunk = data[offset:offset + step]
        r = _patch(fleet.url, loc, chunk, offset)
        check_eq(r.status, 202, "PATCH at %d after kill -9 (%r %s)" % (offset, r, r.body[:200]))
        offset = _range_end(r)
        loc = _location(r)
    r = fleet.req("PUT", with_query(loc, "digest=" + digest))
    check_eq(r.status, 201, "PUT after kill -9 (%r %s)" % (r, r.body[:300]))
    for f in fleet.fronts:
        if f is victim:
            continue
        got = request("GET", f.url + "/v2/e2e/killed/blobs/" + digest, timeout=120)
        check(got.status == 200 and got.body == data, "blob read back through %s: %r" % (f.name, got))


# ---- GC on one front at a time, PostgreSQL restarts (issue 11's fault tests) ----

class Unavailable(Exception):
    """A step of a push was answered 503 UNAVAILABLE (allowed while the database is down)."""


def _sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _step(r, want, what, allow_503):
    """Checks one push step's answer: `want`, or 503 with an OCI UNAVAILABLE body when `allow_503`."""
    if r.status == want:
        return r
    if allow_503 and r.status == 503:
        check("UNAVAILABLE" in r.error_codes(), "%s: a 503 without an OCI UNAVAILABLE error: %r" % (what, r))
        raise Unavailable(what)
    raise TestFailure("%s: %r %s" % (what, r, r.body[:300]))


def _upload(fleet, repo, data, allow_503=False):
    """POST + monolithic PUT of one blob through haproxy (two requests: two fronts)."""
    r = _step(fleet.req("POST", "/v2/%s/blobs/uploads/" % repo), 202, "POST upload", allow_503)
    r = _step(fleet.req("PUT", with_query(_location(r), "digest=" + _sha(data)),
                        {"Content-Type": "application/octet-stream"}, data), 201, "PUT blob", allow_503)
    return _sha(data)


def _image(repo, seed, layers=2, size=48 << 10):
    """A small OCI image: {'blobs': {digest: bytes}, 'manifest': bytes, 'digest': manifest digest}."""
    rnd = random.Random(seed)
    layer_data = [rnd.randbytes(size) for _ in range(layers)]
    config = json.dumps({"architecture": "amd64", "os": "linux", "seed": seed,
                         "rootfs": {"type": "layers", "diff_ids": [_sha(b) for b in layer_data]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _sha(config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": _sha(b), "size": len(b)}
                   for b in layer_data]}).encode()
    blobs = {_sha(b): b for b in [config] + layer_data}
    return {"repo": repo, "blobs": blobs, "manifest": manifest, "digest": _sha(manifest)}


def _put_manifest(fleet, img, tag, allow_503=False):
    return _step(fleet.req("PUT", "/v2/%s/manifests/%s" % (img["repo"], tag),
                           {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, img["manifest"]),
                 201, "PUT manifest %s" % tag, allow_503)


def _push(fleet, img, tag, allow_503=False):
    for data in img["blobs"].values():
        _upload(fleet, img["repo"], data, allow_503)
    _put_manifest(fleet, img, tag, allow_503)


def _pull_check(get, img, tag, what):
    """Pulls `img` by tag with `get(path)`; fails unless the manifest and every blob are byte-identical."""
    m = get("/v2/%s/manifests/%s" % (img["repo"], tag))
    check(m.status == 200 and m.body == img["manifest"], "%s: manifest %s: %r" % (what, tag, m))
    check_eq(m.header("Docker-Content-Digest"), img["digest"], "%s: digest of manifest %s" % (what, tag))
    for digest, data in img["blobs"].items():
        b = get("/v2/%s/blobs/%s" % (img["repo"], digest))
        check(b.status == 200 and _sha(b.body) == digest and b.body == data,
              "%s: blob %s of %s: %r" % (what, digest[:19], tag, b))


_GC_START = re.compile(r"^(\S+) \S+ garbage collection: started")
_GC_END = re.compile(r"^(\S+) \S+ garbage collection(?: failed)?: ")


def _gc_runs(fleet):
    """[(start, end, front)] of every completed online GC run, from the fronts' logs (ISO times, ms)."""
    runs = []
    for i in range(len(fleet.fronts)):
        start = None
        for line in fleet.log_lines(i, r"garbage collection"):
            s = _GC_START.match(line)
            if s:
                start = s.group(1)
                continue
            e = _GC_END.match(line)
            if e and start is not None:
                runs.append((start, e.group(1), i))
                start = None
    return sorted(runs)


def _metric_sum(fleet, name):
    return sum(fleet.metrics(i).get(name, 0) for i in range(len(fleet.fronts)))


@wharf_only(FLEET)
@timeout(300)
def test_fleet_gc_runs_on_one_front_at_a_time_while_pushes_land(ctx):
    grace = 6
    fleet = Fleet(ctx, extra={"storage": {"gc": {"interval": "1s", "grace": "%ds" % grace}}}).start()
    repo = "e2e/gcpush"
    # Garbage: an image pushed, then deleted (its blobs go once older than the grace).
    doomed = _image(repo, 400)
    _push(fleet, doomed, "doomed")
    check_eq(fleet.req("DELETE", "/v2/%s/manifests/%s" % (repo, doomed["digest"])).status, 202, "DELETE doomed")

    # A blob uploaded through one front and referenced only after GC ran elsewhere is spared (grace).
    early = _image(repo, 401)
    t0 = time.monotonic()
    for data in early["blobs"].values():
        _upload(fleet, repo, data)
    runs0 = len(_gc_runs(fleet))
    wait_for(lambda: len(_gc_runs(fleet)) >= runs0 + 2, "two GC runs after the upload", tries=200, interval=0.1)
    r = fleet.req("PUT", "/v2/%s/manifests/early" % repo,
                  {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, early["manifest"])
    if time.monotonic() - t0 < grace - 1:  # on a very slow machine the grace may be over, and then 400 is right
        check_eq(r.status, 201, "manifest PUT of blobs uploaded before GC runs, within the grace (%r)" % r)
    else:
        check(r.status == 201 or "MANIFEST_BLOB_UNKNOWN" in r.error_codes() or "BLOB_UNKNOWN" in r.error_codes(),
              "manifest PUT of blobs uploaded before the grace ran out: %r" % r)
    kept = [(early, "early")] if r.status == 201 else []

    # Pushes through haproxy while every front's GC timer fires each second; every other image is deleted
    # again, so the runs also sweep while pushes land.
    for i in range(8):
        img = _image(repo, 410 + i)
        _push(fleet, img, "v%d" % i)
        if i % 2:
            check_eq(fleet.req("DELETE", "/v2/%s/manifests/%s" % (repo, img["digest"])).status, 202, "DELETE v%d" % i)
        else:
            kept.append((img, "v%d" % i))
    # The deleted image's blobs are collected (watched in PostgreSQL: a GET would make them young again) ...
    only_doomed = [d for d in doomed["blobs"] if all(d not in k["blobs"] for k, _ in kept)]
    left = "SELECT count(*) FROM blobs WHERE digest IN (%s)" % ",".join("'%s'" % d for d in only_doomed)
    wait_for(lambda: fleet.pg.psql(left, db=fleet.db).stdout.strip() == "0",
             "GC to collect the deleted image's blobs", tries=300, interval=0.2)
    from test_s3 import object_status
    for d in only_doomed:
        check_eq(fleet.req("GET", "/v2/%s/blobs/%s" % (repo, d)).status, 404, "GET of collected blob %s" % d[:19])
        wait_for(lambda d=d: object_status(fleet.rgw, fleet.bucket, d) == 404,
                 "the S3 object of collected blob %s to go" % d[:19], tries=100, interval=0.1)
    for img, _ in kept:
        for d in img["blobs"]:
            check_eq(object_status(fleet.rgw, fleet.bucket, d), 200, "S3 object of kept blob %s" % d[:19])
    # ... and every pushed image still pulls back byte-identical, through every front.
    for img, tag in kept:
        for f in fleet.fronts:
            _pull_check(lambda p, f=f: f.req("GET", p, timeout=60), img, tag, f.name)

    # The runs never overlapped in time, across fronts (each front logs "started" once it holds the lock).
    runs = _gc_runs(fleet)
    check(len(runs) >= 4, "online GC runs in the fronts' logs: %r" % runs)
    for a, b in zip(runs, runs[1:]):
        check(b[0] >= a[1], "GC runs overlapped: front%d %s..%s and front%d %s..%s" % (a[2], a[0], a[1], b[2], b[0], b[1]))
    print("    %d GC runs on fronts %s; skipped %d" % (len(runs), sorted({r[2] for r in runs}),
                                                    _metric_sum(fleet, "wharf_gc_skipped_total")), flush=True)

    # While another process holds the lock, every front skips its runs (counted) and runs none; the
    # offline verb refuses; once released, the fronts collect again.
    holder = fleet.hold_maintenance_lock()
    try:
        _while_another_holds_the_lock(fleet, holder)
    finally:
        stop_process(holder, grace=5)
    for img, tag in kept:
        _pull_check(lambda p: fleet.req("GET", p, timeout=60), img, tag, "after the last runs")


def _while_another_holds_the_lock(fleet, holder):
    n = len(fleet.fronts)
    skipped = [fleet.metrics(i)["wharf_gc_skipped_total"] for i in range(n)]
    wait_for(lambda: all(fleet.metrics(i)["wharf_gc_skipped_total"] > skipped[i] for i in range(n)),
             "every front to skip a run", tries=200, interval=0.1)
    ran = [fleet.metrics(i)["wharf_gc_runs_total"] for i in range(n)]  # no run is under way after a skip
    skipped = [fleet.metrics(i)["wharf_gc_skipped_total"] for i in range(n)]
    wait_for(lambda: all(fleet.metrics(i)["wharf_gc_skipped_total"] >= skipped[i] + 2 for i in range(n)),
             "every front to skip two more runs", tries=200, interval=0.1)
    check_eq([fleet.metrics(i)["wharf_gc_runs_total"] for i in range(n)], ran, "GC runs while the lock was held")
    res = run([SERVER_BIN, "garbage-collect", fleet.fronts[0].config_path], check_rc=False, timeout=120)
    out = res.stdout + res.stderr
    check(res.returncode == 1 and "maintenance lock" in out,
          "offline garbage-collect while the lock is held: rc %d %r" % (res.returncode, out[-300:]))
    os.kill(holder.pid, signal.SIGKILL)  # the holder dies: its connection closes and the lock goes with it
    stop_process(holder, grace=5)
    wait_for(lambda: sum(fleet.metrics(i)["wharf_gc_runs_total"] for i in range(n)) > sum(ran),
             "GC to run again once the lock is released", tries=200, interval=0.1)


def _health(url):
    r = request("GET", url + "/debug/health", timeout=10)
    return r.status, (r.json() if r.body else {})


@wharf_only(FLEET)
@timeout(300)
def test_fleet_postgres_restart_under_load_gives_503_never_wrong_bytes(ctx):
    import postgres
    fleet = Fleet(ctx, extra={"health": {"storagedriver": {"enabled": True, "interval": "1s", "threshold": 1}}}).start()
    repo = "e2e/pgload"
    seed = _image(repo, 500, layers=3, size=96 << 10)
    _push(fleet, seed, "seed")
    # Health: {} with 200 on every front while PostgreSQL and the bucket answer.
    for f in fleet.fronts:
        wait_for(lambda f=f: _health(f.debug_url) == (200, {}), "health 200 {} on %s" % f.name, tries=150, interval=0.2)

    stop = threading.Event()
    problems, seen, lock = [], {"ok": 0, "503": 0}, threading.Lock()
    pushed = []  # (image, tag) acknowledged with 201

    def note(kind):
        with lock:
            seen[kind] += 1

    def classify(r, what):
        """200/201/202: fine (the caller checks bytes); 503 UNAVAILABLE: the window; anything else: a problem."""
        if r.status == 503:
            if "UNAVAILABLE" not in r.error_codes():
                problems.append("%s: 503 without an OCI UNAVAILABLE error: %r" % (what, r))
            note("503")
            return False
        if r.status not in (200, 201, 202):
            problems.append("%s: %r" % (what, r))
            return False
        note("ok")
        return True

    def puller():
        deadline = time.monotonic() + 120
        while not stop.is_set() and time.monotonic() < deadline and not problems:
            try:
                m = fleet.req("GET", "/v2/%s/manifests/seed" % repo,
                              {"Accept": "application/vnd.oci.image.manifest.v1+json"}, timeout=60)
                if m.status == 503:
                    time.sleep(0.05)  # the outage: no need to spin
                if classify(m, "manifest GET") and (m.body != seed["manifest"] or
                                                    m.header("Docker-Content-Digest") != seed["digest"]):
                    problems.append("manifest GET: wrong bytes or digest: %r %s" % (m, m.header("Docker-Content-Digest")))
                for digest in seed["blobs"]:
                    b = fleet.req("GET", "/v2/%s/blobs/%s" % (repo, digest), timeout=60)
                    if classify(b, "blob GET") and _sha(b.body) != digest:
                        problems.append("blob GET %s: wrong bytes (%d)" % (digest[:19], len(b.body)))
            except OSError as exc:
                problems.append("pull: connection failed: %r" % exc)

    def pusher():
        deadline = time.monotonic() + 120
        i = 0
        while not stop.is_set() and time.monotonic() < deadline and not problems:
            img, tag = _image(repo, 600 + i, layers=1, size=32 << 10), "p%d" % i
            i += 1
            try:
                _push(fleet, img, tag, allow_503=True)
                pushed.append((img, tag))
                note("ok")
            except Unavailable:
                note("503")
                time.sleep(0.05)
            except (OSError, TestFailure) as exc:
                problems.append("push %s: %s" % (tag, exc))

    threads = [threading.Thread(target=puller) for _ in range(2)] + [threading.Thread(target=pusher)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: seen["ok"] >= 10 or problems, "load to run before the restart", tries=300, interval=0.1)
        fleet.pg.halt()
        try:
            # While it is down: every front's /debug/health is 503 naming the database (not the password).
            for f in fleet.fronts:
                wait_for(lambda f=f: _health(f.debug_url)[0] == 503, "%s's health to report the outage" % f.name,
                         tries=150, interval=0.2)
                status, body = _health(f.debug_url)
                check(isinstance(body.get("database"), str) and body["database"],
                      "%s's health names the database: %r" % (f.name, body))
                check_eq(set(body), {"database"}, "%s's health while only PostgreSQL is down (%r)" % (f.name, body))
                check(postgres.PASSWORD not in json.dumps(body), "%s's health shows no password" % f.name)
            wait_for(lambda: seen["503"] >= 1 or problems, "a request to meet the outage", tries=300, interval=0.1)
        finally:
            fleet.pg.start()
        # Every front serves again, and says so.
        for f in fleet.fronts:
            wait_for(lambda f=f: f.manifest(repo, "seed").status == 200, "%s to serve after the restart" % f.name,
                     tries=300, interval=0.2)
            wait_for(lambda f=f: _health(f.debug_url) == (200, {}), "%s's health back to 200" % f.name,
                     tries=150, interval=0.2)
        before = seen["ok"]
        wait_for(lambda: seen["ok"] >= before + 6 or problems, "load to go on after the restart", tries=300, interval=0.1)
    finally:
        stop.set()
        for t in threads:
            t.join(120)
    check(not problems, "during the PostgreSQL restart: %s" % problems[:5])
    print("    %d requests answered, %d met the outage (503 UNAVAILABLE), %d images pushed" % (
        seen["ok"], seen["503"], len(pushed)), flush=True)
    # The bucket is reported apart: with the gateway down every front names storagedriver_s3 alone.
    fleet.rgw.stop_gateway()
    try:
        for f in fleet.fronts:
            wait_for(lambda f=f: _health(f.debug_url)[0] == 503, "%s's health to report the bucket" % f.name,
                     tries=150, interval=0.2)
            body = _health(f.debug_url)[1]
            check(set(body) == {"storagedriver_s3"} and body["storagedriver_s3"],
                  "%s's health with the gateway down: %r" % (f.name, body))
    finally:
        fleet.rgw.restart_gateway()
    for f in fleet.fronts:
        wait_for(lambda f=f: _health(f.debug_url) == (200, {}), "%s's health with the gateway back" % f.name,
                 tries=150, interval=0.2)
    # A new push lands through the balancer, and everything acknowledged pulls back byte-identical.
    after = _image(repo, 700)
    _push(fleet, after, "after")
    for img, tag in pushed + [(after, "after"), (seed, "seed")]:
        _pull_check(lambda p: fleet.req("GET", p, timeout=60), img, tag, "after the restart")
