"""storage.s3 against a real Ceph RADOS Gateway (tests/e2e/ceph.py, started once per run and shared; each
test uses its own bucket): check-config probes the bucket and names the key at fault; registry:2's S3
configuration and its REGISTRY_* form are accepted; the S3 client itself passes its live test (multipart,
ranges, pagination, abort, NoSuchKey) and its presigned URL works with plain curl; `wharf serve` keeps
blobs in the bucket (registry:2's layout): skopeo push and pull through 307 redirects, streamed ranged
reads with redirects off (exact ranges; a slow reader holds wharf to a bounded memory), 503 while the
gateway is down and recovery after, nothing acknowledged lost to kill -9, and garbage-collect deleting
an unreferenced blob's object."""
import os
import re
import time

import ceph
import harness
import imagegen
from harness import SERVER_BIN, blob_path, check, check_eq, files_equal, run, wharf_only
from http_util import request
from registry import to_yaml

S3_TIMEOUT = 420  # the first S3 test of a run also starts the gateway


def rgw():
    def start():
        gw = ceph.start_rgw()
        print("    Ceph RGW started in %.1f s at %s" % (gw.started_in, gw.endpoint), flush=True)
        return gw
    return harness.session("rgw", start)


def bucket(ctx, gw):
    """A fresh bucket for this test."""
    name = "t-" + re.sub(r"[^a-z0-9]", "-", ctx.name.lower())[:40] + "-%d" % (time.time_ns() % 100000)
    ceph.create_bucket(gw, name)
    return name


def mirror_on_bucket(m, gw, name, **extra):
    """Restarts the Mirror `m` with its blobs in bucket `name` instead of the filesystem (same config otherwise)."""
    m.wharf.stop()
    with open(m.wharf.config_path) as f:
        text = f.read()
    s3 = dict({"region": gw.region, "bucket": name, "accesskey": gw.access_key, "secretkey": gw.secret_key,
               "regionendpoint": gw.endpoint, "secure": False, "rootdirectory": "/registry"}, **extra)
    text, n = re.subn(r"\n  filesystem:\n    rootdirectory: [^\n]*", "\n" + to_yaml({"s3": s3}, 1), text)
    check_eq(n, 1, "the mirror's storage.filesystem section to replace")
    with open(m.wharf.config_path, "w") as f:
        f.write(text)
    m.wharf.start()


def write_config(ctx, gw, name, **over):
    s3 = {"region": gw.region, "bucket": name, "accesskey": gw.access_key, "secretkey": gw.secret_key,
          "regionendpoint": gw.endpoint, "rootdirectory": "/registry"}
    s3.update(over)
    path = ctx.path("config.yml")
    with open(path, "w") as f:
        f.write("version: 0.1\nhttp:\n  addr: 127.0.0.1:%d\nstorage:\n  s3:\n" % harness.free_port())
        for k, v in s3.items():
            f.write("    %s: %s\n" % (k, v if isinstance(v, bool) is False else str(v).lower()))
    return path


def check_config(path, env=None):
    return run([SERVER_BIN, "check-config", path], check_rc=False, env=env, timeout=120)


@wharf_only("storage.s3 is wharf's check-config probe")
@harness.timeout(S3_TIMEOUT)
def test_check_config_probes_the_bucket(ctx):
    gw = rgw()
    name = bucket(ctx, gw)
    res = check_config(write_config(ctx, gw, name))
    check_eq(res.returncode, 0, "check-config exit code with a good S3 config (stderr: %s)" % res.stderr.strip()[-400:])
    check("configuration OK" in res.stdout and "s3 bucket " + name in res.stdout,
          "check-config reports the bucket: %r" % res.stdout)
    # The probe object is gone again (a listing of the bucket is empty).
    status, body = ceph.s3_request(gw, "GET", "/" + name)
    check_eq(status, 200, "listing the bucket after check-config")
    check(b"<Key>" not in body, "check-config left its probe object behind: %r" % body[:300])


@wharf_only("storage.s3 is wharf's check-config probe")
@harness.timeout(S3_TIMEOUT)
def test_check_config_names_the_key_at_fault(ctx):
    gw = rgw()
    name = bucket(ctx, gw)
    cases = [
        ("a wrong secret key", {"secretkey": "not-the-secret"}, "storage.s3.secretkey"),
        ("an unknown access key", {"accesskey": "NOSUCHACCESSKEY"}, "storage.s3.accesskey"),
        ("an unknown bucket", {"bucket": name + "-missing"}, "storage.s3.bucket"),
        ("an endpoint nobody listens on", {"regionendpoint": "http://127.0.0.1:%d" % harness.free_port()},
         "storage.s3.regionendpoint"),
    ]
    for what, over, key in cases:
        res = check_config(write_config(ctx, gw, name, **over))
        check(res.returncode != 0, "check-config with %s exits non-zero" % what)
        check(key in res.stderr, "check-config with %s names %s: %r" % (what, key, res.stderr.strip()[-500:]))
        check(gw.secret_key not in res.stderr, "the secret key never appears in messages")
    # The gateway itself stopped (then started again for the other tests).
    good = write_config(ctx, gw, name)
    gw.stop_gateway()
    try:
        res = check_config(good)
        check(res.returncode != 0 and "storage.s3.regionendpoint" in res.stderr,
              "check-config with the gateway stopped names storage.s3.regionendpoint: %r" % res.stderr.strip()[-500:])
    finally:
        gw.restart_gateway()
    res = check_config(good)
    check_eq(res.returncode, 0, "check-config once the gateway is back (stderr: %s)" % res.stderr.strip()[-400:])


@wharf_only("storage.s3 is wharf's check-config probe")
@harness.timeout(S3_TIMEOUT)
def test_registry2_s3_config_and_env_form_are_accepted(ctx):
    gw = rgw()
    name = bucket(ctx, gw)
    # Issue 10's configuration, with this gateway's endpoint.
    path = ctx.path("registry2.yml")
    with open(path, "w") as f:
        f.write("""version: 0.1
storage:
  s3:
    region: ap-northeast-2
    bucket: %s
    accesskey: %s
    secretkey: %s
    regionendpoint: %s
    encrypt: false
    secure: false
    rootdirectory: /registry
  redirect:
    disable: false
""" % (name, gw.access_key, gw.secret_key, gw.endpoint))
    res = check_config(path)
    check_eq(res.returncode, 0, "check-config with registry:2's s3 config (stderr: %s)" % res.stderr.strip()[-400:])
    # The issue's `encrypt: true`: this RGW (plain HTTP) refuses server-side encryption, and says so by key.
    enc = ctx.path("registry2-encrypt.yml")
    with open(enc, "w") as f:
        f.write(open(path).read().replace("encrypt: false", "encrypt: true"))
    res = check_config(enc)
    check(res.returncode != 0 and "storage.s3.encrypt" in res.stderr,
          "encrypt: true on an RGW that refuses SSE names storage.s3.encrypt: %r" % res.stderr.strip()[-400:])
    # The same as REGISTRY_* variables on a bare config.
    bare = ctx.path("bare.yml")
    with open(bare, "w") as f:
        f.write("version: 0.1\n")
    env = {"REGISTRY_STORAGE": "s3", "REGISTRY_STORAGE_S3_REGION": "ap-northeast-2",
           "REGISTRY_STORAGE_S3_BUCKET": name, "REGISTRY_STORAGE_S3_ACCESSKEY": gw.access_key,
           "REGISTRY_STORAGE_S3_SECRETKEY": gw.secret_key, "REGISTRY_STORAGE_S3_REGIONENDPOINT": gw.endpoint,
           "REGISTRY_STORAGE_S3_SECURE": "false", "REGISTRY_STORAGE_S3_ROOTDIRECTORY": "/registry",
           "REGISTRY_STORAGE_REDIRECT": "true"}
    res = check_config(bare, env=env)
    check_eq(res.returncode, 0, "check-config with the REGISTRY_STORAGE_S3_* form (stderr: %s)" % res.stderr.strip()[-400:])
    check("s3 bucket " + name in res.stdout, "the env form selects the s3 driver: %r" % res.stdout)
    # Both drivers at once are refused.
    both = ctx.path("both.yml")
    with open(both, "w") as f:
        f.write(open(path).read().replace("storage:\n", "storage:\n  filesystem:\n    rootdirectory: %s\n" % ctx.path("r"), 1))
    res = check_config(both)
    check(res.returncode != 0 and "names both filesystem and s3" in res.stderr,
          "filesystem + s3 is refused: %r" % res.stderr.strip()[-300:])


@wharf_only("the S3 client's live test lives in wharf's unit_tests")
@harness.timeout(S3_TIMEOUT)
def test_s3_client_live_against_rgw(ctx):
    gw = rgw()
    name = bucket(ctx, gw)
    unit = os.path.join(os.path.dirname(os.path.abspath(SERVER_BIN)), "unit_tests")
    check(os.path.exists(unit), "unit_tests next to %s" % SERVER_BIN)
    presign = ctx.path("presigned.url")
    env = {"WHARF_TEST_S3_ENDPOINT": gw.endpoint, "WHARF_TEST_S3_ACCESS_KEY": gw.access_key,
           "WHARF_TEST_S3_SECRET_KEY": gw.secret_key, "WHARF_TEST_S3_BUCKET": name,
           "WHARF_TEST_S3_REQUIRED": "1", "WHARF_TEST_S3_PRESIGN_OUT": presign}
    res = run([unit, "-tc=s3 live*"], check_rc=False, env=env, timeout=300)
    with open(ctx.path("unit_tests.log"), "w") as f:
        f.write(res.stdout + res.stderr)
    check_eq(res.returncode, 0, "unit_tests -tc='s3 live*' (see unit_tests.log): %s" % (res.stdout + res.stderr).strip()[-600:])
    # It really ran: one test case, many assertions (a missing variable fails instead, WHARF_TEST_S3_REQUIRED=1).
    m = re.search(r"test cases:\s*1 \|\s*1 passed.*\n.*assertions:\s*(\d+) \|\s*(\d+) passed", res.stdout)
    check(m and int(m.group(1)) >= 30 and m.group(1) == m.group(2), "the live test case ran its assertions: %r" % res.stdout[-400:])
    for line in res.stdout.splitlines():
        if line.startswith("s3 live:"):
            print("    " + line, flush=True)  # multipart throughput, for the record
    # For comparison with the client's figures: one plain PUT and GET of 13 MiB from Python.
    payload = os.urandom(13 << 20)
    started = time.monotonic()
    status, _ = ceph.s3_request(gw, "PUT", "/%s/raw.bin" % name, payload)
    put_s = time.monotonic() - started
    started = time.monotonic()
    status_get, body = ceph.s3_request(gw, "GET", "/%s/raw.bin" % name)
    get_s = time.monotonic() - started
    check(status == 200 and status_get == 200 and body == payload, "a plain PUT/GET round trip through RGW")
    print("    RGW reference: single PUT of 13 MiB in %.2f s (%.1f MiB/s), GET in %.2f s (%.1f MiB/s)"
          % (put_s, 13 / put_s, get_s, 13 / get_s), flush=True)
    # The presigned URL works with plain curl: no credentials, no extra headers.
    with open(presign) as f:
        url = f.read().strip()
    with open(presign + ".expected", "rb") as f:
        expected = f.read()
    got = run(["curl", "-sS", "--fail", "--max-time", "30", url], timeout=60)
    check_eq(got.stdout.encode(), expected, "bytes of the presigned GET")
    tampered = url.replace("X-Amz-Expires=300", "X-Amz-Expires=301")
    res = run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "30", tampered], check_rc=False, timeout=60)
    check_eq(res.stdout.strip(), "403", "a presigned URL whose expiry was changed is refused")


# ---------------------------------------------------------------------------------------------
# wharf serve with storage.s3

def s3_registry(ctx, gw, name, redirect=True, chunksize="5MiB", debug_port=None):
    """A wharf server (not started) with blobs in bucket `name`; index and staging under DIR/data. With
    debug_port: /debug/health and /metrics there, the storage health probed every second."""
    reg = ctx.registry()
    cfg = {
        "version": 0.1,
        "log": {"level": "info", "accesslog": {"disabled": False}},
        "storage": {"s3": {"region": gw.region, "bucket": name, "accesskey": gw.access_key,
                           "secretkey": gw.secret_key, "regionendpoint": gw.endpoint, "secure": False,
                           "rootdirectory": "/registry", "chunksize": chunksize},
                    "delete": {"enabled": True},
                    "redirect": {"disable": not redirect}},
        "http": {"addr": reg.host, "secret": "e2e-not-a-secret"},
    }
    if debug_port:
        cfg["http"]["debug"] = {"addr": "127.0.0.1:%d" % debug_port, "prometheus": {"enabled": True}}
        cfg["health"] = {"storagedriver": {"enabled": True, "interval": "1s", "threshold": 1}}
    with open(reg.config_path, "w") as f:
        f.write(to_yaml(cfg) + "\n")
    return reg


def object_key(digest):
    """registry:2's key of a blob under rootdirectory /registry."""
    hexd = digest.split(":", 1)[1]
    return "registry/docker/registry/v2/blobs/sha256/%s/%s/data" % (hexd[:2], hexd)


def object_status(gw, name, digest):
    status, _ = ceph.s3_request(gw, "HEAD", "/%s/%s" % (name, object_key(digest)))
    return status


@wharf_only("wharf's S3 blob store")
@harness.timeout(S3_TIMEOUT)
def test_s3_skopeo_roundtrip_through_redirects(ctx):
    gw = rgw()
    name = bucket(ctx, gw)
    reg = s3_registry(ctx, gw, name).start()
    # One layer over the 5 MiB chunk size (a multipart upload), one small.
    img = ctx.image(layers=2, size=6 << 20, seed=31)
    dest = "docker://%s/e2e/s3:v1" % reg.host
    ctx.skopeo("copy", "--dest-tls-verify=false", "oci:" + img["dir"], dest)
    for digest in img["layers"] + [img["config_digest"]]:
        check_eq(object_status(gw, name, digest), 200, "object of blob %s in the bucket" % digest)
    # A large blob GET is a 307 to a presigned URL that gives the same bytes; HEAD is answered by wharf.
    layer = img["layers"][0]
    res = reg.req("GET", "/v2/e2e/s3/blobs/" + layer)
    check_eq(res.status, 307, "blob GET with redirects on")
    loc = res.header("Location")
    check(loc and loc.startswith(gw.endpoint + "/" + name + "/") and "X-Amz-Signature=" in loc,
          "Location is a presigned URL of the gateway: %r" % loc)
    got = request("GET", loc, timeout=60)
    check_eq(got.status, 200, "GET of the presigned URL")
    with open(blob_path(img["dir"], layer), "rb") as f:
        check(got.body == f.read(), "bytes behind the redirect equal the pushed layer")
    head = reg.req("HEAD", "/v2/e2e/s3/blobs/" + layer)
    check_eq((head.status, head.header("Content-Length")), (200, str(os.path.getsize(blob_path(img["dir"], layer)))),
             "blob HEAD answered by wharf")
    # skopeo follows the redirects; every pulled blob is identical.
    out = ctx.path("pulled")
    ctx.skopeo("copy", "--src-tls-verify=false", dest, "oci:" + out)
    for digest in img["layers"] + [img["config_digest"], img["manifest_digest"]]:
        check(files_equal(blob_path(img["dir"], digest), blob_path(out, digest)), "blob %s after the round trip" % digest)
    # A restart keeps everything (the index is local, the bytes in the bucket).
    reg.stop()
    reg.start()
    res = reg.manifest("e2e/s3", "v1")
    check_eq(res.status, 200, "manifest GET after a restart")
    check_eq(imagegen.sha256(res.body), img["manifest_digest"], "manifest digest after a restart")


@wharf_only("wharf's S3 blob store")
@harness.timeout(S3_TIMEOUT)
def test_s3_streams_ranges_with_redirects_off(ctx):
    gw = rgw()
    name = bucket(ctx, gw)
    reg = s3_registry(ctx, gw, name, redirect=False).start()
    data = os.urandom((9 << 20) + 12345)  # several 4 MiB pieces, multipart on upload
    digest = reg.push_blob("e2e/stream", data)
    small = reg.push_blob("e2e/stream", b'{"small": "config"}')
    res = reg.req("GET", "/v2/e2e/stream/blobs/" + digest, timeout=120)
    check_eq(res.status, 200, "streamed blob GET")
    check(res.body == data, "streamed bytes equal the pushed blob (%d of %d bytes)" % (len(res.body), len(data)))
    first, last = (4 << 20) - 7, (8 << 20) + 99
    res = reg.req("GET", "/v2/e2e/stream/blobs/" + digest, {"Range": "bytes=%d-%d" % (first, last)}, timeout=120)
    check_eq(res.status, 206, "ranged blob GET")
    check_eq(res.header("Content-Range"), "bytes %d-%d/%d" % (first, last, len(data)), "Content-Range")
    check(res.body == data[first:last + 1], "ranged bytes equal the slice")
    res = reg.req("GET", "/v2/e2e/stream/blobs/" + small)
    check_eq((res.status, res.body), (200, b'{"small": "config"}'), "small blob served by wharf")


def rss_bytes(pid):
    """Resident set size of process `pid` (VmRSS of /proc/PID/status), in bytes."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise harness.TestFailure("no VmRSS in /proc/%d/status" % pid)


@wharf_only("wharf's S3 blob store")
@harness.timeout(S3_TIMEOUT)
def test_s3_stream_slow_reader_bounded_memory_and_exact_ranges(ctx):
    import socket
    gw = rgw()
    name = bucket(ctx, gw)
    reg = s3_registry(ctx, gw, name, redirect=False).start()
    size = 64 << 20
    data = os.urandom(size)
    digest = reg.push_blob("e2e/slow", data)
    path = "/v2/e2e/slow/blobs/" + digest
    # Ranges come back exactly as asked: single bytes, ends, a suffix, open ends, across any piece size.
    for rng, first, last in (("bytes=0-0", 0, 0), ("bytes=%d-%d" % (size - 1, size - 1), size - 1, size - 1),
                             ("bytes=-1000", size - 1000, size - 1), ("bytes=%d-" % (size - 77777), size - 77777, size - 1),
                             ("bytes=1048575-5242881", 1048575, 5242881), ("bytes=%d-%d" % (size - 3, size + 50), size - 3, size - 1)):
        res = reg.req("GET", path, {"Range": rng}, timeout=120)
        check_eq((res.status, res.header("Content-Range")), (206, "bytes %d-%d/%d" % (first, last, size)), "GET with Range %s" % rng)
        check(res.body == data[first:last + 1], "Range %s: the bytes asked for (%d bytes back)" % (rng, len(res.body)))
    res = reg.req("GET", path, {"Range": "bytes=%d-" % size}, timeout=60)
    check_eq(res.status, 416, "a range past the end")
    # A whole fast GET first, so the baseline includes what any stream allocates.
    res = reg.req("GET", path, timeout=120)
    check(res.status == 200 and res.body == data, "a whole 64 MiB streamed GET")
    pid = reg.proc.pid
    base = rss_bytes(pid)
    # A client that reads 1 KiB at a time, slowly, for ~7 s (longer than wharf's 5 s limit on a paused S3 GET).
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
    s.settimeout(60)
    s.connect(("127.0.0.1", reg.port))
    s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path, reg.host)).encode())
    head = b""
    for _ in range(1000):
        if b"\r\n\r\n" in head:
            break
        chunk = s.recv(1)
        check(chunk != b"", "the head of the slow GET")
        head += chunk
    check(head.startswith(b"HTTP/1.1 200"), "slow GET status: %r" % head[:60])
    got = bytearray()
    peak = base
    deadline = time.monotonic() + 7
    for _ in range(200):
        if time.monotonic() > deadline:
            break
        got += s.recv(1024)
        time.sleep(0.05)
        peak = max(peak, rss_bytes(pid))
    # Without backpressure wharf would take in the whole 64 MiB blob within these seconds. Under ASan
    # (tests/run's sanitizer stage) freed memory sits in quarantine and RSS says nothing.
    bound = 24 << 20
    print("    wharf RSS %.1f MiB, +%.1f MiB at most while the client read slowly" % (base / 1048576.0, (peak - base) / 1048576.0))
    if os.environ.get("E2E_SANITIZED") != "1":
        check(peak - base < bound, "wharf's RSS grew by %.1f MiB while a client read slowly (bound %d MiB)"
              % ((peak - base) / 1048576.0, bound >> 20))
    # The rest at full speed: every byte right, across the S3 GET wharf dropped and restarted meanwhile.
    for _ in range(size):
        if len(got) >= size:
            break
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        got += chunk
    s.close()
    check_eq(len(got), size, "bytes of the slow GET")
    check(bytes(got) == data, "the slow GET's bytes equal the pushed blob")
    # Abandoned half-way: wharf drops the stream and keeps serving.
    s = socket.create_connection(("127.0.0.1", reg.port), timeout=30)
    s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path, reg.host)).encode())
    s.recv(65536)
    s.close()
    res = reg.req("GET", path, {"Range": "bytes=10-19"}, timeout=60)
    check_eq((res.status, res.body), (206, data[10:20]), "a ranged GET after an abandoned stream")


def metrics(url):
    """{(operation, status): count} of wharf_s3_requests_total on a /metrics page."""
    out = {}
    for m in re.finditer(r'^wharf_s3_requests_total\{operation="(\w+)",status="(\d+)"\} (\d+)', request("GET", url).body.decode(), re.M):
        out[(m.group(1), int(m.group(2)))] = int(m.group(3))
    return out


@wharf_only("wharf's S3 blob store")
@harness.timeout(S3_TIMEOUT)
def test_s3_gateway_down_gives_503_then_recovers(ctx):
    gw = rgw()
    name = bucket(ctx, gw)
    debug_port = harness.free_port()
    reg = s3_registry(ctx, gw, name, debug_port=debug_port).start()
    debug = "http://127.0.0.1:%d" % debug_port
    harness.wait_for(lambda: request("GET", debug + "/debug/health").status == 200, "health OK with the gateway up",
                     tries=100, interval=0.1)
    data = os.urandom(64 << 10)
    digest = imagegen.sha256(data)
    # A chunked upload: the data is staged, then the gateway goes away before the final PUT.
    loc = reg.start_upload("e2e/down")
    res = reg.req("PATCH", loc, {"Content-Type": "application/octet-stream"}, data)
    check_eq(res.status, 202, "PATCH of the whole blob")
    loc = reg.location_path(res)
    final = loc + ("&" if "?" in loc else "?") + "digest=" + digest
    gw.stop_gateway()
    try:
        res = reg.req("PUT", final, timeout=120)
        check_eq(res.status, 503, "final PUT while the gateway is down (%r)" % res)
        check("UNAVAILABLE" in res.error_codes(), "an OCI UNAVAILABLE error: %r" % res.body[:300])
        check_eq(reg.req("HEAD", "/v2/e2e/down/blobs/" + digest).status, 404, "nothing half-published")
        harness.wait_for(lambda: request("GET", debug + "/debug/health").status == 503,
                         "/debug/health to report the bucket down", tries=100, interval=0.1)
        body = request("GET", debug + "/debug/health").json()
        check("storagedriver_s3" in body, "health names the S3 driver: %r" % body)
    finally:
        gw.restart_gateway()
    # The session survived: the same final PUT completes once the gateway is back.
    res = reg.req("PUT", final, timeout=120)
    check_eq(res.status, 201, "the same final PUT once the gateway is back (%r)" % res)
    check_eq(object_status(gw, name, digest), 200, "the object is in the bucket")
    res = reg.req("GET", "/v2/e2e/down/blobs/" + digest)
    check_eq((res.status, res.body == data), (200, True), "the blob (64 KiB: served by wharf) reads back")
    harness.wait_for(lambda: request("GET", debug + "/debug/health").status == 200, "health OK again",
                     tries=100, interval=0.1)
    # Metrics by operation and status; hot manifest GETs do not touch S3.
    reg.push_image("e2e/down", "v1", layers=1, size=2048, seed=5)
    check_eq(reg.manifest("e2e/down", "v1").status, 200, "first manifest GET")
    before = metrics(debug + "/metrics")
    # Blobs land by PutObject (under chunksize) or CopyObject (a push session); calls that got no answer
    # while the gateway was down count with status 0.
    check(before.get(("PutObject", 200), 0) + before.get(("CopyObject", 200), 0) >= 3 and
          any(status == 0 and n >= 1 for (_, status), n in before.items()),
          "S3 calls counted by operation and status (failed calls while down included): %r" % before)
    for _ in range(5):
        check_eq(reg.manifest("e2e/down", "v1").status, 200, "hot manifest GET")
    after = metrics(debug + "/metrics")
    check_eq(after.get(("GetObject", 200), 0), before.get(("GetObject", 200), 0), "S3 GETs for 5 hot manifest GETs")


@wharf_only("wharf's S3 blob store")
@harness.timeout(S3_TIMEOUT)
def test_s3_kill9_loses_nothing_acknowledged(ctx):
    gw = rgw()
    name = bucket(ctx, gw)
    reg = s3_registry(ctx, gw, name, redirect=False).start()
    acked = {}
    import threading

    def pusher():
        for i in range(40):
            data = os.urandom(200 << 10) + bytes([i])
            try:
                acked[reg.push_blob("e2e/crash", data)] = data
            except Exception:  # noqa: BLE001 - the server dies under us
                return
    t = threading.Thread(target=pusher)
    t.start()
    harness.wait_for(lambda: len(acked) >= 3, "three acknowledged pushes", tries=600, interval=0.1)
    reg.kill9()
    t.join(60)
    check(not t.is_alive(), "the pusher stopped")
    reg.start()
    check(len(acked) >= 3, "some pushes were acknowledged before the kill")
    for digest, data in acked.items():
        res = reg.req("GET", "/v2/e2e/crash/blobs/" + digest, timeout=60)
        check_eq((res.status, res.body == data), (200, True), "acknowledged blob %s after kill -9" % digest)


@wharf_only("wharf's S3 blob store")
@harness.timeout(S3_TIMEOUT)
def test_s3_garbage_collect_removes_unreferenced_objects(ctx):
    gw = rgw()
    name = bucket(ctx, gw)
    reg = s3_registry(ctx, gw, name).start()
    kept = reg.push_image("e2e/gc", "v1", layers=1, size=4096, seed=41)
    orphan = reg.push_blob("e2e/gc", os.urandom(8192))  # linked, but no manifest references it
    check_eq(object_status(gw, name, orphan), 200, "the unreferenced blob's object before GC")
    reg.stop()
    res = run([SERVER_BIN, "garbage-collect", reg.config_path], check_rc=False, timeout=120, cwd=ctx.dir)
    check_eq(res.returncode, 0, "garbage-collect exit code (%s)" % (res.stdout + res.stderr).strip()[-400:])
    check_eq(object_status(gw, name, orphan), 404, "the unreferenced blob's object after GC")
    for digest in kept["layers"] + [kept["config_digest"]]:
        check_eq(object_status(gw, name, digest), 200, "referenced blob %s after GC" % digest)
    reg.start()
    res = reg.manifest("e2e/gc", "v1")
    check_eq(res.status, 200, "the tagged image survives GC")


@wharf_only("wharf's S3 blob store")
@harness.timeout(S3_TIMEOUT + 300)
def test_s3_dockerd_and_containerd_follow_the_redirect(ctx):
    from mirror_util import Containerd
    from test_docker import Dockerd, image_id
    gw = rgw()
    name = bucket(ctx, gw)
    reg = s3_registry(ctx, gw, name).start()
    img = ctx.image(layers=2, size=256 << 10, seed=51, fmt="docker")
    ref = "%s/e2e/app:v1" % reg.host
    archive = ctx.path("image.tar")
    ctx.skopeo("copy", "oci:" + img["dir"], "docker-archive:%s:%s" % (archive, ref))
    dk = Dockerd(ctx).start()
    dk.docker("load", "-i", archive)
    pushed = dk.docker("push", ref).stdout
    m = re.search(r"digest: (sha256:[0-9a-f]{64})", pushed)
    check(m, "docker push printed a digest: %r" % pushed[-300:])
    served = reg.manifest("e2e/app", "v1")
    check_eq(served.status, 200, "the pushed tag")
    layers = [l["digest"] for l in served.json()["layers"]]
    for digest in layers:
        check_eq(object_status(gw, name, digest), 200, "layer %s in the bucket" % digest)
        check_eq(reg.req("GET", "/v2/e2e/app/blobs/" + digest).status, 307, "layer GET redirects")
    dk.docker("rmi", ref)
    dk.docker("pull", ref)  # layers through the 307 to the gateway
    check_eq(image_id(dk, ref), img["config_digest"], "image ID after docker pull through redirects")
    dk.stop()
    ctrd = Containerd(ctx).start()
    ctrd.mirror(reg.host, reg.url)
    ctrd.pull(ref)
    check_eq(ctrd.image_digest(ref), m.group(1), "containerd pulled the pushed manifest")
    # containerd checks each layer's digest as it fetches it: the bytes behind the redirect are identical.
    content = ctrd.ctr("content", "ls").stdout
    for digest in layers:
        check(digest in content, "containerd holds layer %s" % digest)


@wharf_only("the blob-store contract lives in wharf's unit_tests")
@harness.timeout(S3_TIMEOUT)
def test_s3_store_passes_the_blob_backend_contract(ctx):
    gw = rgw()
    name = bucket(ctx, gw)
    unit = os.path.join(os.path.dirname(os.path.abspath(SERVER_BIN)), "unit_tests")
    env = {"WHARF_TEST_S3_ENDPOINT": gw.endpoint, "WHARF_TEST_S3_ACCESS_KEY": gw.access_key,
           "WHARF_TEST_S3_SECRET_KEY": gw.secret_key, "WHARF_TEST_S3_BUCKET": name}
    res = run([unit, "-tc=BlobBackend*"], check_rc=False, env=env, timeout=300)
    with open(ctx.path("unit_tests.log"), "w") as f:
        f.write(res.stdout + res.stderr)
    check_eq(res.returncode, 0, "unit_tests -tc='BlobBackend*' against RGW: %s" % (res.stdout + res.stderr).strip()[-800:])
    runs = res.stdout.count("BlobBackend contract: s3 fixture")
    check(runs >= 10, "every contract case also ran on the S3 store (%d S3 fixtures)" % runs)


@wharf_only("wharf's pull-through mirror on the S3 blob store")
@harness.timeout(S3_TIMEOUT)
def test_s3_mirror_concurrent_cold_pulls_fetch_once(ctx):
    import threading
    from mirror_util import Mirror, check_cdn_once, check_copied, image_blobs
    gw = rgw()
    name = bucket(ctx, gw)
    with Mirror(ctx) as m:
        mirror_on_bucket(m, gw, name)  # the same mirror configuration with blobs in the bucket
        img = ctx.image(layers=2, size=2 << 20, seed=61)
        m.hub.push(img, "library/s3pull", "c1")
        m.hub.reset_counters()
        m.hub.throttle(8 << 20)  # the pulls overlap
        ctx.skopeo("--version")
        pullers = 8
        results = [None] * pullers

        def pull(i):
            results[i] = m.skopeo_pull("library/s3pull", "c1", ctx.path("copy%d" % i), check_rc=False, timeout=200)
        threads = [threading.Thread(target=pull, args=(i,), daemon=True) for i in range(pullers)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 230
        for t in threads:
            t.join(max(0.1, deadline - time.monotonic()))
        check(all(r is not None and r.returncode == 0 for r in results),
              "every concurrent pull succeeded: %s" % [r and r.stderr.strip()[-200:] for r in results])
        for i in range(pullers):
            check_copied(img, ctx.path("copy%d" % i), "pull %d" % i)
        check_cdn_once(m.hub, img, "%d concurrent pulls" % pullers)
        for digest in image_blobs(img):
            if digest == img["manifest_digest"]:
                continue
            harness.wait_for(lambda d=digest: object_status(gw, name, d) == 200, "blob %s in the bucket" % digest,
                             tries=100, interval=0.1)
        # Served again from the bucket: a 307 to the gateway, no new upstream GET.
        layer = img["layers"][0]
        res = request("GET", m.wharf.url + "/v2/library/s3pull/blobs/" + layer, timeout=30)
        check_eq(res.status, 307, "a cached layer GET redirects to the bucket")
        check_cdn_once(m.hub, img, "the cached GET")
