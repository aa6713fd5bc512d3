"""Pushes into S3 multipart uploads (storage.s3, a real Ceph RGW from tests/e2e/ceph.py): a chunked push
whose PATCHes do not align with the 5 MiB parts round-trips byte-identical and continues after kill -9 and
a restart (the session's state is read back from the bucket); a cancelled, a purged and a wrongly digested
upload leave no multipart upload and no staging object behind (checked with ListMultipartUploads and
ListObjectsV2 signed by a helper here)."""
import hashlib
import hmac
import http.client
import os
import re
import time
import urllib.parse

import harness
from harness import check, check_eq, wharf_only
from http_util import expect_error, request
from registry import to_yaml
from test_s3 import S3_TIMEOUT, bucket, mirror_on_bucket, object_status, rgw, s3_registry

MiB = 1 << 20
UPLOADS_PREFIX = "registry/docker/registry/v2/_uploads/"


def _signed(gw, method, path, query):
    """(status, body) of a SigV4-signed request with a query string (ceph.s3_request signs none)."""
    host = "127.0.0.1:%d" % gw.port
    now = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    payload_hash = hashlib.sha256(b"").hexdigest()
    headers = {"host": host, "x-amz-content-sha256": payload_hash, "x-amz-date": now}
    enc = lambda s: urllib.parse.quote(s, safe="-_.~")  # noqa: E731
    canonical_query = "&".join("%s=%s" % (enc(k), enc(v)) for k, v in sorted(query.items()))
    signed = ";".join(sorted(headers))
    canonical = "\n".join([method, urllib.parse.quote(path, safe="/~"), canonical_query,
                           "".join("%s:%s\n" % (k, headers[k]) for k in sorted(headers)), signed, payload_hash])
    scope = "%s/%s/s3/aws4_request" % (now[:8], gw.region)
    to_sign = "\n".join(["AWS4-HMAC-SHA256", now, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + gw.secret_key).encode()
    for part in (now[:8], gw.region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (
        gw.access_key, scope, signed, sig)
    conn = http.client.HTTPConnection(host, timeout=30)
    try:
        conn.request(method, urllib.parse.quote(path, safe="/~") + "?" + canonical_query, headers=headers)
        res = conn.getresponse()
        return res.status, res.read().decode(errors="replace")
    finally:
        conn.close()


def multipart_uploads(gw, name, prefix):
    """Keys of the unfinished multipart uploads under `prefix` (ListMultipartUploads)."""
    status, body = _signed(gw, "GET", "/" + name, {"uploads": "", "prefix": prefix})
    check_eq(status, 200, "ListMultipartUploads on %s: %s" % (name, body[:300]))
    return re.findall(r"<Key>([^<]*)</Key>", body)


def objects(gw, name, prefix):
    """Keys of the objects under `prefix` (ListObjectsV2)."""
    status, body = _signed(gw, "GET", "/" + name, {"list-type": "2", "prefix": prefix})
    check_eq(status, 200, "ListObjectsV2 on %s: %s" % (name, body[:300]))
    return re.findall(r"<Key>([^<]*)</Key>", body)


def check_no_staging(gw, name, what):
    check_eq(multipart_uploads(gw, name, UPLOADS_PREFIX), [], "multipart uploads left %s" % what)
    check_eq(objects(gw, name, UPLOADS_PREFIX), [], "staging objects left %s" % what)


def patch(reg, path, data, offset, what):
    r = reg.req("PATCH", path, {"Content-Type": "application/octet-stream",
                                "Content-Range": "%d-%d" % (offset, offset + len(data) - 1)}, data, timeout=120)
    check_eq(r.status, 202, "%s (%s)" % (what, r.body[:300]))
    check_eq(r.header("Range"), "0-%d" % (offset + len(data) - 1), "Range after %s" % what)
    return reg.location_path(r)


@wharf_only("wharf's S3 push sessions")
@harness.timeout(S3_TIMEOUT)
def test_s3_chunked_push_continues_after_kill9_and_round_trips(ctx):
    gw = rgw()
    name = bucket(ctx, gw)
    reg = s3_registry(ctx, gw, name, redirect=False, chunksize="5MiB").start()
    pieces = [os.urandom(3 * MiB), os.urandom(7 * MiB), b"\x01", os.urandom(6 * MiB)]
    blob = b"".join(pieces)
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    path = reg.start_upload("e2e/chunked")
    offset = 0
    for i, piece in enumerate(pieces[:2]):
        path = patch(reg, path, piece, offset, "PATCH %d" % (i + 1))
        offset += len(piece)
    # 10 MiB staged: two full parts (one of them from two PATCHes), nothing in a tail.
    check_eq(len(multipart_uploads(gw, name, UPLOADS_PREFIX)), 1, "one multipart upload for the session")
    reg.kill9()
    reg.start()
    r = reg.req("GET", path)
    check_eq((r.status, r.header("Range")), (204, "0-%d" % (offset - 1)), "upload status after kill -9 + restart")
    path = patch(reg, path, pieces[2], offset, "PATCH of 1 byte after the restart")
    offset += 1
    reg.kill9()  # the single byte lives in a tail object now
    reg.start()
    path = patch(reg, path, pieces[3], offset, "PATCH of 6 MiB after a second restart")
    r = reg.req("PUT", path + ("&" if "?" in path else "?") + "digest=" + digest, timeout=120)
    check_eq(r.status, 201, "PUT ?digest= completes the upload (%s)" % r.body[:300])
    check_eq(object_status(gw, name, digest), 200, "the blob's object in the bucket")
    check_no_staging(gw, name, "after the push completed")
    got = reg.req("GET", "/v2/e2e/chunked/blobs/" + digest, timeout=120)
    check_eq((got.status, len(got.body)), (200, len(blob)), "GET of the pushed blob")
    check(got.body == blob, "the blob read back is byte-identical to the pushed one")


@wharf_only("wharf's S3 push sessions")
@harness.timeout(S3_TIMEOUT)
def test_s3_cancelled_and_wrong_digest_uploads_leave_nothing(ctx):
    gw = rgw()
    name = bucket(ctx, gw)
    reg = s3_registry(ctx, gw, name, redirect=False, chunksize="5MiB").start()
    data = os.urandom(6 * MiB + 5)  # a full part and a tail
    path = patch(reg, reg.start_upload("e2e/cancel"), data, 0, "PATCH of 6 MiB")
    check_eq(len(multipart_uploads(gw, name, UPLOADS_PREFIX)), 1, "the session's multipart upload")
    check(objects(gw, name, UPLOADS_PREFIX), "the session's tail object is in the bucket")
    r = reg.req("DELETE", path)
    check_eq(r.status, 204, "DELETE of the upload")
    check_no_staging(gw, name, "after DELETE")
    expect_error(reg.req("GET", path), 404, "BLOB_UPLOAD_UNKNOWN", "status of the cancelled upload")

    path = patch(reg, reg.start_upload("e2e/cancel"), data, 0, "PATCH of 6 MiB")
    wrong = "sha256:" + hashlib.sha256(b"something else").hexdigest()
    r = reg.req("PUT", path + ("&" if "?" in path else "?") + "digest=" + wrong, timeout=120)
    expect_error(r, 400, "DIGEST_INVALID", "PUT with a digest the data does not have")
    check_eq(objects(gw, name, "registry/docker/registry/v2/blobs/"), [], "blobs/ after a wrong digest")
    check_no_staging(gw, name, "after a wrong digest")


@wharf_only("wharf's S3 push sessions and upload purging")
@harness.timeout(S3_TIMEOUT)
def test_s3_upload_purging_aborts_stale_sessions(ctx):
    gw = rgw()
    name = bucket(ctx, gw)
    reg = ctx.registry()
    cfg = {
        "version": 0.1,
        "storage": {"s3": {"region": gw.region, "bucket": name, "accesskey": gw.access_key,
                           "secretkey": gw.secret_key, "regionendpoint": gw.endpoint, "secure": False,
                           "rootdirectory": "/registry", "chunksize": "5MiB"},
                    "redirect": {"disable": True},
                    "maintenance": {"uploadpurging": {"enabled": True, "age": "3s", "interval": "1s",
                                                      "dryrun": False}}},
        "http": {"addr": reg.host, "secret": "e2e-not-a-secret"},
    }
    with open(reg.config_path, "w") as f:
        f.write(to_yaml(cfg) + "\n")
    reg.start()
    patch(reg, reg.start_upload("e2e/purge"), os.urandom(5 * MiB + 1), 0, "PATCH of a part and a byte")
    check(multipart_uploads(gw, name, UPLOADS_PREFIX), "the session's multipart upload before the purge")
    reg.kill9()  # the session is left behind; the next process purges it once it is older than 3 s
    reg.start()
    harness.wait_for(lambda: not multipart_uploads(gw, name, UPLOADS_PREFIX) and not objects(gw, name, UPLOADS_PREFIX),
                     "the stale session purged from the bucket", tries=120, interval=0.5)


@wharf_only("wharf's pull-through mirror on the S3 blob store")
@harness.timeout(S3_TIMEOUT)
def test_s3_mirror_fetch_streams_parts_into_the_bucket(ctx):
    import threading
    from mirror_util import Mirror, check_cdn_once, check_copied
    gw = rgw()
    name = bucket(ctx, gw)
    with Mirror(ctx) as m:
        mirror_on_bucket(m, gw, name, chunksize="5MiB")
        img = ctx.image(layers=1, size=13 * MiB, seed=71)
        m.hub.push(img, "library/s3parts", "p1")
        m.hub.reset_counters()
        m.hub.throttle(2 * MiB)  # the fetch runs for seconds: its parts go up meanwhile
        results = [None, None]

        def pull(i):
            results[i] = m.skopeo_pull("library/s3parts", "p1", ctx.path("copy%d" % i), check_rc=False, timeout=200)
        threads = [threading.Thread(target=pull, args=(i,), daemon=True) for i in range(len(results))]
        for t in threads:
            t.start()
        # While the layer is still being fetched, a multipart upload under _uploads/tmp- holds its first parts.
        harness.wait_for(lambda: multipart_uploads(gw, name, UPLOADS_PREFIX + "tmp-"),
                         "a multipart upload of the fetch in progress", tries=200, interval=0.1)
        deadline = time.monotonic() + 230
        for t in threads:
            t.join(max(0.1, deadline - time.monotonic()))
        check(all(r is not None and r.returncode == 0 for r in results),
              "both pulls succeeded: %s" % [r and r.stderr.strip()[-200:] for r in results])
        for i in range(len(results)):
            check_copied(img, ctx.path("copy%d" % i), "pull %d" % i)
        check_cdn_once(m.hub, img, "two concurrent pulls")
        layer = img["layers"][0]
        harness.wait_for(lambda: object_status(gw, name, layer) == 200, "the layer in the bucket", tries=100, interval=0.1)
        # Recorded once the index commits (just after the object lands): then served by a 307 to the bucket.
        harness.wait_for(lambda: request("GET", m.wharf.url + "/v2/library/s3parts/blobs/" + layer, timeout=60).status == 307,
                         "the cached layer redirected to the bucket", tries=100, interval=0.1)
        check_no_staging(gw, name, "after the fetch was published")
        check_cdn_once(m.hub, img, "the cached GETs")
