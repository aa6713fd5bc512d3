"""kill -9 in the middle of an upload: committed content survives intact, the half-written blob is
never visible, and the same blob can be uploaded again from scratch. (The reference registry passes
this too, so it is not marked wharf-only.)"""
import http.client
import json
import os
import random
import time

from harness import blob_path, check, check_eq, files_equal, imagegen, timeout
from http_util import split_url, with_query

BIG = 64 << 20
PIECE = 256 << 10


def pieces(data, limit=None, delay=0.0):
    """Yields `data` in PIECE-sized slices (only the first `limit` bytes if given), sleeping `delay` between."""
    end = len(data) if limit is None else limit
    for off in range(0, end, PIECE):
        yield data[off:min(off + PIECE, end)]
        if delay:
            time.sleep(delay)


def start_slow_patch(reg, path, total):
    """Opens a PATCH for `total` bytes and sends only its headers; returns the open connection."""
    _, host, port, _ = split_url(reg.url)
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.putrequest("PATCH", path, skip_accept_encoding=True)
    for k, v in dict(reg.auth_header(), **{"Content-Type": "application/octet-stream",
                                           "Content-Length": str(total)}).items():
        conn.putheader(k, v)
    conn.endheaders()
    return conn


@timeout(400)
def test_kill9_mid_upload(ctx):
    reg = ctx.registry(users={"crash": "crash-pw"}).start()
    img = ctx.image(layers=2, size=1 << 20, seed=31)
    ref = "docker://%s/e2e/survivor:v1" % reg.host
    ctx.skopeo("copy", "--dest-creds", reg.creds, "--dest-tls-verify=false", "oci:" + img["dir"], ref)

    data = random.Random(32).randbytes(BIG)
    digest = imagegen.sha256(data)
    loc = reg.start_upload("e2e/victim")
    conn = start_slow_patch(reg, loc, BIG)
    sent = 0
    try:
        for chunk in pieces(data, limit=16 << 20, delay=0.005):
            conn.send(chunk)
            sent += len(chunk)
        check_eq(reg.proc.poll(), None, "server exit status while the upload streams")
        reg.kill9()
    finally:
        conn.close()
    check(sent >= 8 << 20, "only %d bytes reached the socket before the kill" % sent)

    reg.start()  # same config: same port, same root directory
    out = ctx.path("pulled")
    ctx.skopeo("copy", "--src-creds", reg.creds, "--src-tls-verify=false", ref, "oci:" + out)
    index = json.load(open(os.path.join(out, "index.json")))
    check_eq(index["manifests"][0]["digest"], img["manifest_digest"], "manifest digest after the restart")
    for d in img["layers"] + [img["config_digest"]]:
        check(files_equal(blob_path(img["dir"], d), blob_path(out, d)), "blob %s differs after the restart" % d)

    check_eq(reg.req("HEAD", "/v2/e2e/victim/blobs/" + digest).status, 404, "HEAD of the interrupted blob")
    old = reg.req("GET", loc)
    check(old.status in (204, 404), "status of the interrupted upload: %r" % old)
    if old.status == 204:
        last = int((old.header("Range") or "0-0").split("-")[1])
        check(last < sent, "interrupted upload claims %d bytes, only %d were sent" % (last + 1, sent))

    loc = reg.start_upload("e2e/victim")
    r = reg.req("PATCH", loc, {"Content-Type": "application/octet-stream", "Content-Length": str(BIG)},
                pieces(data), timeout=120)
    check_eq(r.status, 202, "PATCH of the whole blob after the restart")
    done = reg.req("PUT", with_query(reg.location_path(r), "digest=" + digest),
                   {"Content-Type": "application/octet-stream"}, timeout=120)
    check_eq(done.status, 201, "closing PUT after the restart")
    head = reg.req("HEAD", "/v2/e2e/victim/blobs/" + digest)
    check_eq((head.status, head.header("Content-Length")), (200, str(BIG)), "HEAD of the re-uploaded blob")
    got = reg.req("GET", "/v2/e2e/victim/blobs/" + digest, timeout=120)
    check(imagegen.sha256(got.body) == digest, "GET of the re-uploaded blob returns other bytes")
