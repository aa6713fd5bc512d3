"""Three wharf fronts sharing one PostgreSQL index and one S3 bucket behind haproxy (tests/e2e/fleet.py):
a chunked push whose PATCHes land on a different front each time continues from the bucket's state (a
front that saw the session earlier answers 416 with the true Range instead of accepting a stale offset)
and is visible through every front at once; dockerd pushes a multi-layer image through the balancer
(PATCH and PUT of one session on different fronts, read from the fronts' access logs) and pulls it back;
skopeo, podman and containerd (ctr --hosts-dir, ?ns=) pull it; kill -9 of the front receiving a PATCH
loses nothing acknowledged: the client asks the balancer for the session's Range and resumes."""
import hashlib
import os
import random
import re
import signal
import threading
import time

from fleet import Fleet, check_spread
from harness import check, check_eq, stop_process, timeout, wait_for, wharf_only
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


@wharf_only(FLEET)
@timeout(420)
def test_fleet_chunked_push_moves_between_fronts(ctx):
    fleet = Fleet(ctx).start()
    data = random.Random(111).randbytes(12 * MiB + 12345)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    r = fleet.req("POST", "/v2/e2e/chunks/blobs/uploads/")
    check_eq(r.status, 202, "POST through haproxy (%r)" % r)
    loc = _location(r)
    sid = loc.rsplit("/", 1)[1]
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
    data = random.Random(113).randbytes(9 * MiB + 999)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    r = fleet.req("POST", "/v2/e2e/killed/blobs/uploads/")
    check_eq(r.status, 202, "POST (%r)" % r)
    loc = _location(r)
    sid = loc.rsplit("/", 1)[1]
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
