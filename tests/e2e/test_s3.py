"""storage.s3 against a real Ceph RADOS Gateway (tests/e2e/ceph.py, started once per run and shared; each
test uses its own bucket): check-config probes the bucket and names the key at fault; registry:2's S3
configuration and its REGISTRY_* form are accepted; the S3 client itself passes its live test (multipart,
ranges, pagination, abort, NoSuchKey) and its presigned URL works with plain curl."""
import os
import re
import time

import ceph
import harness
from harness import SERVER_BIN, check, check_eq, run, wharf_only

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
    # Both drivers at once are refused; serve refuses s3 until the store is wired.
    both = ctx.path("both.yml")
    with open(both, "w") as f:
        f.write(open(path).read().replace("storage:\n", "storage:\n  filesystem:\n    rootdirectory: %s\n" % ctx.path("r"), 1))
    res = check_config(both)
    check(res.returncode != 0 and "names both filesystem and s3" in res.stderr,
          "filesystem + s3 is refused: %r" % res.stderr.strip()[-300:])
    res = run([SERVER_BIN, "serve", path], check_rc=False, timeout=60)
    check(res.returncode != 0 and "storage.s3" in res.stderr, "serve refuses s3 for now: %r" % res.stderr.strip()[-300:])


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
