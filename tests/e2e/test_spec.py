"""Distribution-spec sections not covered elsewhere: monolithic uploads, upload status and cancel,
blob and tag deletion, indexes and their children, HTTP details (keep-alive, 100-continue, headers),
http.host in Location, and pushes refused in proxied namespaces."""
import json
import socket

from harness import check, check_eq, imagegen, wharf_only
from http_util import expect_error, with_query

OCTET = {"Content-Type": "application/octet-stream"}
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


@wharf_only("single-POST monolithic upload is optional in the spec; distribution 2.8 answers 202")
def test_monolithic_post_with_digest(ctx):
    reg = ctx.registry().start()
    data = b"monolithic blob body" * 100
    digest = imagegen.sha256(data)
    r = reg.req("POST", "/v2/e2e/mono/blobs/uploads/?digest=" + digest, OCTET, data)
    check_eq(r.status, 201, "POST ?digest= status (%r)" % r)
    check_eq(r.header("Docker-Content-Digest"), digest, "Docker-Content-Digest")
    got = reg.req("GET", "/v2/e2e/mono/blobs/" + digest)
    check(got.status == 200 and got.body == data, "GET after monolithic POST: %r" % got)
    # A wrong digest stores nothing.
    bad = reg.req("POST", "/v2/e2e/mono/blobs/uploads/?digest=" + imagegen.sha256(b"other"), OCTET, data + b"x")
    expect_error(bad, 400, ("DIGEST_INVALID",), "monolithic POST with the wrong digest")
    check_eq(reg.req("HEAD", "/v2/e2e/mono/blobs/" + imagegen.sha256(b"other")).status, 404, "HEAD of the refused blob")


def test_put_with_final_chunk_and_cancel(ctx):
    reg = ctx.registry().start()
    data = b"0123456789" * 300
    digest = imagegen.sha256(data)
    loc = reg.start_upload("e2e/put")
    r = reg.req("PATCH", loc, dict(OCTET, **{"Content-Range": "0-999"}), data[:1000])
    check_eq(r.status, 202, "first PATCH")
    loc = reg.location_path(r)
    r = reg.req("PUT", with_query(loc, "digest=" + digest), dict(OCTET, **{"Content-Range": "1000-%d" % (len(data) - 1)}),
                data[1000:])
    check_eq(r.status, 201, "PUT with the final chunk (%r)" % r)
    check_eq(reg.req("GET", "/v2/e2e/put/blobs/" + digest).body, data, "blob bytes")
    # The finished session is gone.
    expect_error(reg.req("GET", loc), 404, ("BLOB_UPLOAD_UNKNOWN",), "status of a finished upload")

    loc2 = reg.start_upload("e2e/put")
    check_eq(reg.req("DELETE", loc2).status, 204, "DELETE (cancel) of an upload")
    expect_error(reg.req("GET", loc2), 404, ("BLOB_UPLOAD_UNKNOWN",), "status of a cancelled upload")
    expect_error(reg.req("PATCH", loc2, OCTET, b"x"), 404, ("BLOB_UPLOAD_UNKNOWN",), "PATCH of a cancelled upload")


def test_blob_delete(ctx):
    reg = ctx.registry().start()
    digest = reg.push_blob("e2e/del", b"to be deleted")
    check_eq(reg.req("DELETE", "/v2/e2e/del/blobs/" + digest).status, 202, "blob DELETE")
    expect_error(reg.req("GET", "/v2/e2e/del/blobs/" + digest), 404, ("BLOB_UNKNOWN",), "GET after DELETE")
    expect_error(reg.req("DELETE", "/v2/e2e/del/blobs/" + digest), 404, ("BLOB_UNKNOWN",), "second DELETE")


@wharf_only("deleting a tag by name is OCI 1.1; distribution 2.8 refuses it")
def test_tag_delete_keeps_the_manifest(ctx):
    reg = ctx.registry().start()
    img = reg.push_image("e2e/tags", "a")
    reg.push_manifest("e2e/tags", "b", img["manifest"])
    check_eq(reg.req("DELETE", "/v2/e2e/tags/manifests/a").status, 202, "DELETE of tag a")
    expect_error(reg.manifest("e2e/tags", "a"), 404, ("MANIFEST_UNKNOWN",), "GET of the deleted tag")
    check_eq(reg.manifest("e2e/tags", "b").status, 200, "the other tag")
    check_eq(reg.manifest("e2e/tags", img["manifest_digest"]).status, 200, "the manifest by digest")


def test_index_and_children(ctx):
    reg = ctx.registry().start()
    amd = reg.push_image("e2e/multi", "amd64", seed=1)
    arm = reg.push_image("e2e/multi", "arm64", seed=2)

    def desc(img, arch):
        body = json.dumps(img["manifest"]).encode()
        return {"mediaType": img["manifest"]["mediaType"], "digest": img["manifest_digest"], "size": len(body),
                "platform": {"architecture": arch, "os": "linux"}}

    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [desc(amd, "amd64"), desc(arm, "arm64")]}
    r, digest = reg.push_manifest("e2e/multi", "latest", index)
    check_eq(r.status, 201, "index PUT (%r)" % r)
    got = reg.manifest("e2e/multi", "latest")
    check_eq(got.header("Content-Type"), OCI_INDEX, "Content-Type of the index")
    check_eq(got.header("Docker-Content-Digest"), digest, "digest of the index")
    check_eq(imagegen.sha256(got.body), digest, "the index bytes are served exactly as pushed")

    # A manifest list naming a child that is not in the repository is refused.
    missing = dict(desc(amd, "amd64"), digest=imagegen.sha256(b"no such manifest"))
    lst = {"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": [missing]}
    r, _ = reg.push_manifest("e2e/multi", "broken", lst)
    expect_error(r, 400, ("MANIFEST_BLOB_UNKNOWN", "MANIFEST_UNKNOWN"), "list with a missing child")


@wharf_only("wharf's HTTP server details")
def test_keep_alive_pipelining_and_continue(ctx):
    reg = ctx.registry().start()
    digest = reg.push_blob("e2e/http", b"pipelined")
    s = socket.create_connection(("127.0.0.1", reg.port), timeout=10)
    try:
        req = ("GET /v2/e2e/http/blobs/%s HTTP/1.1\r\nHost: x\r\n\r\n" % digest).encode()
        s.sendall(req * 3)  # three pipelined requests on one connection
        data = b""
        for _ in range(100):
            if data.count(b"pipelined") >= 3:
                break
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        check_eq(data.count(b"HTTP/1.1 200 OK"), 3, "responses to three pipelined GETs")
        # Expect: 100-continue gets an interim response before the body is sent.
        loc = reg.start_upload("e2e/http")
        s.sendall(("PATCH %s HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n"
                   "Content-Type: application/octet-stream\r\n\r\n" % loc).encode())
        interim = s.recv(4096)
        check(interim.startswith(b"HTTP/1.1 100 Continue"), "interim response: %r" % interim[:40])
        s.sendall(b"hello")
        final = s.recv(4096)
        check(final.startswith(b"HTTP/1.1 202"), "PATCH after 100-continue: %r" % final[:40])
    finally:
        s.close()


@wharf_only("wharf applies http.host and http.headers")
def test_http_host_and_headers(ctx):
    reg = ctx.registry(extra={"http": {"host": "https://registry.example.com",
                                       "headers": {"X-Content-Type-Options": ["nosniff"]}}}).start()
    r = reg.req("POST", "/v2/e2e/loc/blobs/uploads/")
    check_eq(r.status, 202, "POST upload")
    check(r.header("Location", "").startswith("https://registry.example.com/v2/e2e/loc/blobs/uploads/"),
          "Location uses http.host: %r" % r.header("Location"))
    check_eq(r.header("X-Content-Type-Options"), "nosniff", "http.headers on every response")
    check_eq(reg.req("GET", "/v2/nope/manifests/x").header("X-Content-Type-Options"), "nosniff",
             "http.headers on an error response")


@wharf_only("wharf's proxy namespaces")
def test_push_into_proxied_namespace_is_denied(ctx):
    # An upstream that is never contacted: pushes are refused before any upstream request.
    reg = ctx.registry(extra={"proxy": {"upstreams": [{"name": "ghcr.io", "url": "http://127.0.0.1:9"}]}}).start()
    r = reg.req("POST", "/v2/ghcr.io/org/app/blobs/uploads/")
    expect_error(r, 403, ("DENIED",), "push into ghcr.io/...")
    check("proxied" in r.body.decode(), "the message says why: %r" % r.body)
    # Other names are local repositories and accept pushes.
    reg.push_image("team/app", "1")
    check_eq(reg.manifest("team/app", "1").status, 200, "pushed local image")
