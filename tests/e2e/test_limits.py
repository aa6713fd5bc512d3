"""One client must not starve the others: wrong-password floods are throttled per address and never
delay other clients' pushes, upload sessions are capped per address and in total and hold no file
descriptor while idle, and aborted monolithic uploads leave nothing behind in ROOT/tmp."""
import http.client
import os
import resource
import socket
import threading
import time

from harness import check, check_eq, free_port, imagegen, run, timeout, wait_for, wharf_only
from http_util import Response, basic_auth, expect_error, request, with_query

ALICE = {"alice": "alice-pw"}


def request_from(source, reg, method, path, headers=None, body=None, timeout_s=30):
    """One request to `reg` from the loopback address `source` (e.g. "127.0.0.2")."""
    conn = http.client.HTTPConnection("127.0.0.1", reg.port, timeout=timeout_s, source_address=(source, 0))
    try:
        hdrs = dict(headers or {})
        if "Content-Length" not in hdrs:
            hdrs["Content-Length"] = str(len(body or b""))
        conn.request(method, path, body=body or b"", headers=hdrs)
        r = conn.getresponse()
        return Response(r.status, r.reason, r.headers, r.read())
    finally:
        conn.close()


def scrape(url):
    """{sample name: value} from a Prometheus text page."""
    r = request("GET", url, timeout=10)
    check_eq(r.status, 200, "GET " + url)
    values = {}
    for line in r.body.decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def debug_config(port):
    return {"debug": {"addr": "127.0.0.1:%d" % port, "prometheus": {"enabled": True, "path": "/metrics"}}}


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


class Flood:
    """Rounds of `width` concurrent connections from 127.0.0.2, each sending a wrong password, until
    stopped or `max_rounds` rounds ran; counts the answers by status."""

    def __init__(self, reg, width=100, max_rounds=200):
        self.reg, self.width, self.max_rounds = reg, width, max_rounds
        self.statuses = {}
        self.rounds = 0
        self.stop = threading.Event()
        self.errors = []
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        n = 0
        while not self.stop.is_set() and self.rounds < self.max_rounds:
            socks = []
            for _ in range(self.width):
                n += 1
                try:
                    s = socket.create_connection(("127.0.0.1", self.reg.port), timeout=30,
                                                 source_address=("127.0.0.2", 0))
                    req = ("GET /v2/ HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\nConnection: close\r\n\r\n"
                           % basic_auth("alice", "wrong-%d" % n))
                    s.sendall(req.encode())
                    socks.append(s)
                except OSError as exc:
                    self.errors.append(str(exc))
            for s in socks:
                try:
                    data = b""
                    while True:
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0
                    self.statuses[status] = self.statuses.get(status, 0) + 1
                except (OSError, ValueError) as exc:
                    self.errors.append(str(exc))
                finally:
                    s.close()
            self.rounds += 1

    def total(self):
        return sum(self.statuses.values())


@wharf_only("wharf's password-check queue and per-address backoff (http.limits.passwordchecks, authfailures)")
@timeout(240)
def test_wrong_password_flood_does_not_starve_a_push(ctx):
    debug_port = free_port()
    reg = ctx.registry(users=ALICE, extra={"http": debug_config(debug_port)})
    # bcrypt at cost 10 (htpasswd -B's own default is 5), so each wrong password costs what it does in production.
    with open(ctx.path("registry.htpasswd"), "w") as f:
        f.write(run(["htpasswd", "-Bbn", "-C", "10", "alice", ALICE["alice"]]).stdout.strip() + "\n")
    reg.start()
    metrics_url = "http://127.0.0.1:%d/metrics" % debug_port
    flood = Flood(reg)
    flood.thread.start()
    try:
        wait_for(lambda: flood.rounds >= 1, "the first round of the wrong-password flood", tries=600, interval=0.1)
        during = scrape(metrics_url)
        started = time.monotonic()
        img = reg.push_image("e2e/flooded", "1", layers=2)  # alice, from 127.0.0.1, while the flood goes on
        push_secs = time.monotonic() - started
        rounds_during_push = flood.rounds
        check_eq(reg.manifest("e2e/flooded", "1").status, 200, "the pushed manifest")
    finally:
        flood.stop.set()
        flood.thread.join(timeout=120)
    after = scrape(metrics_url)
    check(not flood.errors, "flood connection errors: %r" % flood.errors[:3])
    refused = flood.statuses.get(429, 0)
    check(refused > 0, "the flood got no 429 (statuses %r)" % flood.statuses)
    check(set(flood.statuses) <= {401, 429, 503}, "flood statuses %r" % flood.statuses)
    checks = after["wharf_auth_checks_total"]
    failures = after["wharf_auth_failures_total"]
    throttled = after["wharf_auth_throttled_total"]
    check_eq(throttled, float(refused), "wharf_auth_throttled_total against the 429s the flood saw")
    check_eq(failures, float(flood.statuses.get(401, 0)), "wharf_auth_failures_total against the flood's 401s")
    check(checks >= failures + 1, "alice's check counted too (%r checks, %r failures)" % (checks, failures))
    # Most of the flood never reached bcrypt: at most authfailures (8) checks in flight, then backoff.
    check(failures < flood.total() / 2, "%d of %d flood requests were checked with bcrypt" % (failures, flood.total()))
    check(during["wharf_auth_failures_total"] <= after["wharf_auth_failures_total"], "counters only grow")
    print("flood: %d requests %r; bcrypt checks %d; push of %s took %.2f s (%d flood rounds)" % (
        flood.total(), flood.statuses, checks, img["manifest_digest"][:19], push_secs, rounds_during_push))
    # The flooding address backs off; alice's remembered login is not affected. The flood's last block may
    # already have run out (after a short flood it lasts 1 s), so keep failing, one request at a time, until
    # the address is blocked: at most authfailures (8) more checks, then a 429. The wait doubles with every
    # failure past 8, so a slow machine cannot outrun it for long.
    statuses = []
    for _ in range(16):
        r = request_from("127.0.0.2", reg, "GET", "/v2/", {"Authorization": basic_auth("alice", "nope")})
        statuses.append(r.status)
        if r.status != 401:
            break
    check(statuses.count(401) <= 9, "wrong passwords checked one after another before the backoff: %r" % statuses)
    expect_error(r, 429, "TOOMANYREQUESTS", "the flooding address while it backs off (after %r)" % statuses[:-1])
    check(int(r.header("Retry-After", "0")) >= 1, "Retry-After on the 429: %r" % r.header("Retry-After"))
    check_eq(reg.req("GET", "/v2/").status, 200, "alice after the flood")


@wharf_only("wharf's upload session caps (http.limits.uploads, uploadsperclient)")
def test_upload_sessions_capped_per_client_and_in_total(ctx):
    reg = ctx.registry(extra={"http": {"limits": {"uploadsperclient": 3, "uploads": 5}}}).start()
    sessions = [reg.start_upload("e2e/capped") for _ in range(3)]
    r = reg.req("POST", "/v2/e2e/capped/blobs/uploads/")
    expect_error(r, 429, "TOOMANYREQUESTS", "a 4th session from the same address")
    blob = b"monolithic" * 10
    r = reg.req("POST", "/v2/e2e/capped/blobs/uploads/?digest=" + imagegen.sha256(blob), body=blob)
    expect_error(r, 429, "TOOMANYREQUESTS", "a monolithic upload from the same address")

    # Another client uploads fine, and completing its upload frees its slot.
    for _ in range(2):
        r = request_from("127.0.0.2", reg, "POST", "/v2/e2e/other/blobs/uploads/")
        check_eq(r.status, 202, "POST from another address (%r)" % r)
        data = os.urandom(1000)
        r = request_from("127.0.0.2", reg, "PUT", with_query(r.header("Location"), "digest=" + imagegen.sha256(data)),
                         {"Content-Type": "application/octet-stream"}, data)
        check_eq(r.status, 201, "PUT from another address (%r)" % r)

    # Five sessions in total: a third address is refused while they stay open.
    r = request_from("127.0.0.2", reg, "POST", "/v2/e2e/other/blobs/uploads/")
    check_eq(r.status, 202, "4th session in total")
    r = request_from("127.0.0.2", reg, "POST", "/v2/e2e/other/blobs/uploads/")
    check_eq(r.status, 202, "5th session in total")
    r = request_from("127.0.0.3", reg, "POST", "/v2/e2e/third/blobs/uploads/")
    expect_error(r, 429, "TOOMANYREQUESTS", "a 6th session in total")

    # Cancelling and completing free slots.
    check_eq(reg.req("DELETE", sessions[0]).status, 204, "DELETE a session")
    data = b"x" * 100
    check_eq(reg.req("PUT", with_query(sessions[1], "digest=" + imagegen.sha256(data)), body=data).status, 201,
             "complete a session")
    r = request_from("127.0.0.3", reg, "POST", "/v2/e2e/third/blobs/uploads/")
    check_eq(r.status, 202, "a session once others were cancelled or completed")
    check_eq(reg.req("POST", "/v2/e2e/capped/blobs/uploads/").status, 202, "the first address again")


@wharf_only("wharf opens an upload's file only while a request writes to it")
@timeout(300)
def test_idle_upload_sessions_hold_no_file_descriptors(ctx):
    reg = ctx.registry(extra={"http": {"limits": {"uploadsperclient": 5000, "uploads": 5000}}})
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))  # what wharf inherits
    try:
        reg.start()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    check_eq(reg.req("GET", "/v2/").status, 200, "GET /v2/")
    before = open_fds(reg.proc.pid)
    conn = http.client.HTTPConnection("127.0.0.1", reg.port, timeout=30)
    locations = []
    try:
        for i in range(2000):
            conn.request("POST", "/v2/e2e/fds/blobs/uploads/", body=b"", headers={"Content-Length": "0"})
            r = conn.getresponse()
            r.read()
            check_eq(r.status, 202, "POST #%d" % i)
            locations.append(r.getheader("Location"))
    finally:
        conn.close()
    after = open_fds(reg.proc.pid)
    check(after <= before + 20, "open fds went from %d to %d over 2000 idle sessions" % (before, after))
    # The sessions still work: two chunks, then the PUT that completes one.
    data = os.urandom(3000)
    loc = locations[1234]
    r = reg.req("PATCH", loc, {"Content-Type": "application/octet-stream", "Content-Range": "0-1499"}, data[:1500])
    check_eq(r.status, 202, "PATCH (%r)" % r)
    r = reg.req("PATCH", r.header("Location"), {"Content-Type": "application/octet-stream",
                                                 "Content-Range": "1500-2999"}, data[1500:])
    check_eq(r.status, 202, "second PATCH (%r)" % r)
    r = reg.req("PUT", with_query(r.header("Location"), "digest=" + imagegen.sha256(data)))
    check_eq(r.status, 201, "PUT (%r)" % r)
    check_eq(reg.req("GET", "/v2/e2e/fds/blobs/" + imagegen.sha256(data)).body, data, "the blob")
    check(open_fds(reg.proc.pid) <= before + 20, "fds after the upload: %d" % open_fds(reg.proc.pid))
    with open("/proc/%d/limits" % reg.proc.pid) as f:
        row = [l.split()[3:5] for l in f if l.startswith("Max open files")][0]
    check_eq(row[0], row[1], "soft and hard open-file limits of wharf (raised at start)")


def abort_upload(reg, path, total, sent):
    """Announces `total` body bytes, sends `sent` of them, then closes the connection."""
    s = socket.create_connection(("127.0.0.1", reg.port), timeout=30)
    try:
        s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
                   "Content-Length: %d\r\n\r\n" % (path, total)).encode())
        s.sendall(b"\0" * sent)
        time.sleep(0.05)
    finally:
        s.close()


def tmp_uploads(reg):
    d = os.path.join(reg.root, "tmp")
    return sorted(n for n in os.listdir(d) if n.startswith("upload-")) if os.path.isdir(d) else []


@wharf_only("wharf removes an aborted monolithic upload's temp file when the connection closes")
def test_aborted_monolithic_uploads_leave_no_temp_files(ctx):
    reg = ctx.registry(extra={"http": {"limits": {"uploadsperclient": 5}}}).start()
    digest = imagegen.sha256(b"never sent in full")
    for _ in range(20):
        abort_upload(reg, "/v2/e2e/aborted/blobs/uploads/?digest=" + digest, 1 << 20, 256 << 10)
    wait_for(lambda: not tmp_uploads(reg), "ROOT/tmp without upload-* files (left: %r)" % tmp_uploads(reg),
             tries=100, interval=0.1)
    # Their slots were freed: 20 aborted uploads from one address with a cap of 5, and it still uploads.
    blob = os.urandom(4096)
    r = reg.req("POST", "/v2/e2e/aborted/blobs/uploads/?digest=" + imagegen.sha256(blob), body=blob)
    check_eq(r.status, 201, "a monolithic upload after the aborted ones (%r)" % r)
    check_eq(tmp_uploads(reg), [], "upload-* files after a completed monolithic upload")
    # A resumable session's data survives its aborted PATCH: the client resumes from the Range it reports.
    loc = reg.start_upload("e2e/aborted")
    s = socket.create_connection(("127.0.0.1", reg.port), timeout=30)
    s.sendall(("PATCH %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n"
               % (loc, 1 << 20)).encode() + b"a" * 1000)
    time.sleep(0.2)
    s.close()
    wait_for(lambda: reg.req("GET", loc).status == 204 and reg.req("GET", loc).header("Range") == "0-999",
             "the session at 1000 bytes after the aborted PATCH", tries=50, interval=0.1)
    rest = b"b" * 500
    r = reg.req("PUT", with_query(loc, "digest=" + imagegen.sha256(b"a" * 1000 + rest)),
                {"Content-Range": "1000-1499", "Content-Type": "application/octet-stream"}, rest)
    check_eq(r.status, 201, "resumed upload (%r)" % r)


@wharf_only("purged upload sessions free their slot (http.limits.uploadsperclient)")
def test_purged_upload_sessions_free_their_slots(ctx):
    reg = ctx.registry(extra={
        "http": {"limits": {"uploadsperclient": 2}},
        "storage": {"maintenance": {"uploadpurging": {"enabled": True, "age": "1s", "interval": "1s"}}}}).start()
    first = [reg.start_upload("e2e/purged") for _ in range(2)]
    expect_error(reg.req("POST", "/v2/e2e/purged/blobs/uploads/"), 429, "TOOMANYREQUESTS", "a 3rd session")
    # Each session is purged by the first sweep after it turned 1 s old; the second one may be a sweep later.
    for i, location in enumerate(first):
        wait_for(lambda: reg.req("GET", location).status == 404, "abandoned session %d purged" % i, tries=100, interval=0.1)
    check_eq(reg.req("POST", "/v2/e2e/purged/blobs/uploads/").status, 202, "a new session once the old ones were purged")
