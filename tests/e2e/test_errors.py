"""Error responses: HTTP status plus the OCI error code in {"errors":[{"code":...}]}; ranges and headers.

Where the reference registry (distribution 2.8) is known to answer differently from wharf, the check
is marked wharf-only or tightened only for wharf (STRICT); each such place says how the reference differs.
"""
import json

from harness import SERVER_KIND, check, check_eq, imagegen, wharf_only
from http_util import expect_error, with_query
from registry import MANIFEST_ACCEPT

STRICT = SERVER_KIND == "wharf"
ZERO = "sha256:" + "0" * 64


def test_api_version_header(ctx):
    reg = ctx.registry().start()
    r = reg.req("GET", "/v2/")
    check_eq(r.status, 200, "GET /v2/ status")
    check_eq(r.header("Docker-Distribution-API-Version"), "registry/2.0", "Docker-Distribution-API-Version")


def test_unknown_tag_is_manifest_unknown(ctx):
    reg = ctx.registry().start()
    reg.push_image("e2e/app", "v1")
    expect_error(reg.manifest("e2e/app", "nope"), 404, "MANIFEST_UNKNOWN", "GET unknown tag")
    expect_error(reg.manifest("e2e/app", ZERO), 404, "MANIFEST_UNKNOWN", "GET unknown digest")
    check_eq(reg.manifest("e2e/app", "nope", "HEAD").status, 404, "HEAD unknown tag")


def test_unknown_blob_is_blob_unknown(ctx):
    reg = ctx.registry().start()
    reg.push_image("e2e/app", "v1")
    expect_error(reg.req("GET", "/v2/e2e/app/blobs/" + ZERO), 404, "BLOB_UNKNOWN", "GET unknown blob")
    check_eq(reg.req("HEAD", "/v2/e2e/app/blobs/" + ZERO).status, 404, "HEAD unknown blob")


def test_unknown_repository_tags_is_name_unknown(ctx):
    reg = ctx.registry().start()
    expect_error(reg.req("GET", "/v2/e2e/nothing/tags/list"), 404, "NAME_UNKNOWN", "tags of an unknown repository")


def test_manifest_get_and_head(ctx):
    reg = ctx.registry().start()
    img = reg.push_image("e2e/app", "v1")
    sent = json.dumps(img["manifest"]).encode()
    accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
    for ref in ("v1", img["manifest_digest"]):
        r = reg.req("GET", "/v2/e2e/app/manifests/" + ref, accept)
        check_eq(r.status, 200, "GET manifest %s" % ref)
        check(r.body == sent, "GET manifest %s: bytes differ from what was pushed" % ref)
        check_eq(r.header("Docker-Content-Digest"), img["manifest_digest"], "Docker-Content-Digest of %s" % ref)
        check_eq(r.header("Content-Type"), "application/vnd.oci.image.manifest.v1+json", "Content-Type of %s" % ref)
    h = reg.req("HEAD", "/v2/e2e/app/manifests/v1", accept)
    check_eq(h.status, 200, "HEAD manifest")
    check_eq(h.header("Content-Length"), str(len(sent)), "HEAD manifest Content-Length")
    check_eq(h.header("Docker-Content-Digest"), img["manifest_digest"], "HEAD manifest Docker-Content-Digest")


def test_upload_with_wrong_digest_is_digest_invalid(ctx):
    reg = ctx.registry().start()
    data = b"the bytes actually sent"
    claimed = "sha256:" + "1" * 64
    loc = reg.start_upload("e2e/app")
    r = reg.req("PUT", with_query(loc, "digest=" + claimed), {"Content-Type": "application/octet-stream"}, data)
    expect_error(r, 400, "DIGEST_INVALID", "upload PUT with a digest that does not match")
    check_eq(reg.req("HEAD", "/v2/e2e/app/blobs/" + claimed).status, 404, "HEAD of the claimed digest")
    check_eq(reg.req("HEAD", "/v2/e2e/app/blobs/" + imagegen.sha256(data)).status, 404,
             "HEAD of the real digest of a rejected upload")


def test_manifest_put_with_mismatched_digest_reference(ctx):
    reg = ctx.registry().start()
    img = reg.push_image("e2e/app", "v1")
    r, _ = reg.push_manifest("e2e/app", "sha256:" + "4" * 64, img["manifest"])
    expect_error(r, 400, "DIGEST_INVALID", "manifest PUT by a digest that is not the body's")


@wharf_only("distribution 2.8 ignores Content-Range on PATCH and appends the chunk (202)")
def test_out_of_order_chunk_is_416(ctx):
    reg = ctx.registry().start()
    loc = reg.start_upload("e2e/app")
    octet = {"Content-Type": "application/octet-stream"}
    r = reg.req("PATCH", loc, dict(octet, **{"Content-Range": "0-4"}), b"hello")
    check_eq(r.status, 202, "first PATCH 0-4")
    loc = reg.location_path(r)
    gap = reg.req("PATCH", loc, dict(octet, **{"Content-Range": "10-14"}), b"world")
    check_eq(gap.status, 416, "PATCH starting past the current offset")
    overlap = reg.req("PATCH", loc, dict(octet, **{"Content-Range": "2-6"}), b"xxxxx")
    check_eq(overlap.status, 416, "PATCH starting before the current offset")
    status = reg.req("GET", loc)
    check_eq(status.status, 204, "upload status after rejected chunks")
    check_eq(status.header("Range"), "0-4", "upload Range after rejected chunks")


def test_manifest_referencing_missing_blob(ctx):
    reg = ctx.registry().start()
    img = reg.push_image("e2e/app", "v1")
    manifest = dict(img["manifest"])
    manifest["layers"] = [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                           "digest": "sha256:" + "2" * 64, "size": 3}]
    r, _ = reg.push_manifest("e2e/app", "broken", manifest)
    expect_error(r, 400, "MANIFEST_BLOB_UNKNOWN", "manifest PUT naming a missing layer")
    check_eq(reg.manifest("e2e/app", "broken").status, 404, "GET of the refused tag")


def test_oversized_manifest_is_refused(ctx):
    reg = ctx.registry().start()
    img = reg.push_image("e2e/app", "v1")
    manifest = dict(img["manifest"], annotations={"padding": "x" * (4 << 20)})
    r, _ = reg.push_manifest("e2e/app", "huge", manifest)
    if STRICT:
        # wharf: 413 Payload Too Large with SIZE_INVALID, before reading past the limit.
        expect_error(r, 413, ("SIZE_INVALID",), "manifest PUT over 4 MiB")
    else:
        # distribution 2.8 answers 400 MANIFEST_INVALID.
        expect_error(r, 400, ("MANIFEST_INVALID",), "manifest PUT over 4 MiB")
    check_eq(reg.manifest("e2e/app", "huge").status, 404, "GET of the refused tag")


# Raw request paths that must not reach a repository. Each names content that exists under the
# normalized or case-folded name, so a server that cleans the path and serves it fails.
BAD_NAMES = [
    ("/v2/../etc/blobs/{layer}", "'..' before the name"),
    ("/v2/a/../b/manifests/x", "'..' inside the name"),
    ("/v2/B/manifests/x", "uppercase name"),
    ("/v2/a//b/manifests/x", "empty path component"),
    ("/v2/a/./b/manifests/x", "'.' component"),
    ("/v2/" + "n" * 256 + "/manifests/x", "name over 255 characters"),
]


def test_invalid_names_are_refused(ctx):
    reg = ctx.registry().start()
    layer = reg.push_image("b", "x")["layers"][0]
    reg.push_image("a/b", "x")
    reg.push_image("etc", "x")
    problems = []
    for raw, why in BAD_NAMES:
        r = reg.req("GET", raw.format(layer=layer), {"Accept": MANIFEST_ACCEPT})
        if STRICT:
            ok = r.status == 400 and "NAME_INVALID" in r.error_codes()
            expected = "400 NAME_INVALID"
        else:  # distribution 2.8 answers 301 (cleaned path), 404, or 500 for a long name
            ok = not 200 <= r.status < 300
            expected = "non-2xx"
        if not ok:
            problems.append("%s (%s): expected %s, got %d %s" % (
                raw[:40], why, expected, r.status, r.body[:80].decode(errors="replace")))
    # Encoded dots: a server may refuse the name (400) or find no route (404); it must not serve b.
    r = reg.manifest("a/%2e%2e/b", "x")
    if r.status not in ((400, 404) if STRICT else (301, 400, 404)):
        problems.append("/v2/a/%%2e%%2e/b/manifests/x: got %d" % r.status)
    check(not problems, "; ".join(problems))


def test_blob_ranges(ctx):
    reg = ctx.registry().start()
    data = bytes(range(256)) * 4
    digest = reg.push_blob("e2e/app", data)
    path = "/v2/e2e/app/blobs/" + digest

    part = reg.req("GET", path, {"Range": "bytes=0-9"})
    check_eq(part.status, 206, "Range bytes=0-9 status")
    check_eq(part.header("Content-Range"), "bytes 0-9/%d" % len(data), "Content-Range of bytes=0-9")
    check(part.body == data[:10], "bytes=0-9 body: expected %r, got %r" % (data[:10], part.body))

    suffix = reg.req("GET", path, {"Range": "bytes=-3"})
    check(suffix.status == 206 and suffix.body == data[-3:], "bytes=-3: got %d %r" % (suffix.status, suffix.body))
    open_end = reg.req("GET", path, {"Range": "bytes=1020-"})
    check(open_end.status == 206 and open_end.body == data[1020:],
          "bytes=1020-: got %d %r" % (open_end.status, open_end.body))

    beyond = reg.req("GET", path, {"Range": "bytes=%d-%d" % (len(data) + 10, len(data) + 20)})
    check_eq(beyond.status, 416, "Range beyond the blob end")
    check_eq(beyond.header("Content-Range"), "bytes */%d" % len(data), "Content-Range of a 416")
    if STRICT:  # distribution 2.8 sends Content-Length of the whole blob with a short 416 body
        check(not beyond.incomplete, "416 response body shorter than its Content-Length")

    whole = reg.req("GET", path)
    check(whole.status == 200 and whole.body == data, "GET without Range: got %d, %d bytes" % (
        whole.status, len(whole.body)))


def test_head_blob(ctx):
    reg = ctx.registry().start()
    data = b"head me" * 100
    digest = reg.push_blob("e2e/app", data)
    r = reg.req("HEAD", "/v2/e2e/app/blobs/" + digest)
    check_eq(r.status, 200, "HEAD blob status")
    check_eq(r.header("Content-Length"), str(len(data)), "HEAD blob Content-Length")
    check_eq(r.header("Docker-Content-Digest"), digest, "HEAD blob Docker-Content-Digest")
    check_eq(r.body, b"", "HEAD blob body")
