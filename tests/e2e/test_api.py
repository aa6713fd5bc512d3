"""Distribution API flows: chunked uploads, cross-repository mounts, tag and catalog listing with
pagination, manifest deletion, and the referrers API."""
import json
import re
import urllib.parse

from harness import check, check_eq, imagegen, wharf_only
from http_util import expect_error, with_query

OCTET = {"Content-Type": "application/octet-stream"}
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def test_chunked_upload_in_three_patches(ctx):
    reg = ctx.registry().start()
    chunks = [b"a" * 1000, b"b" * 2000, b"c" * 500]
    data = b"".join(chunks)
    loc = reg.start_upload("e2e/app")
    offset = 0
    for i, chunk in enumerate(chunks):
        rng = "%d-%d" % (offset, offset + len(chunk) - 1)
        r = reg.req("PATCH", loc, dict(OCTET, **{"Content-Range": rng}), chunk)
        check_eq(r.status, 202, "PATCH %d (%s) status" % (i + 1, rng))
        offset += len(chunk)
        check_eq(r.header("Range"), "0-%d" % (offset - 1), "Range after PATCH %d" % (i + 1))
        loc = reg.location_path(r)

    status = reg.req("GET", loc)
    check_eq(status.status, 204, "GET upload status")
    check_eq(status.header("Range"), "0-%d" % (len(data) - 1), "Range of the upload status")
    check(status.header("Docker-Upload-UUID"), "upload status lacks Docker-Upload-UUID")

    digest = imagegen.sha256(data)
    done = reg.req("PUT", with_query(loc, "digest=" + digest), OCTET)
    check_eq(done.status, 201, "closing PUT status")
    check_eq(done.header("Docker-Content-Digest"), digest, "Docker-Content-Digest of the closing PUT")
    check(done.header("Location"), "closing PUT lacks Location")
    got = reg.req("GET", "/v2/e2e/app/blobs/" + digest)
    check(got.status == 200 and got.body == data, "GET of the chunked blob: %d, %d bytes" % (
        got.status, len(got.body)))
    check_eq(reg.req("GET", loc).status, 404, "status of a finished upload")


def test_cross_repository_mount(ctx):
    reg = ctx.registry(users={"alice": "pw-alice"}).start()
    src = reg.push_image("e2e/source", "v1", size=4096)
    layer = src["layers"][0]

    r = reg.req("POST", "/v2/e2e/target/blobs/uploads/?mount=%s&from=e2e/source" % layer)
    check_eq(r.status, 201, "mount of a blob the source repository has")
    check_eq(r.header("Docker-Content-Digest"), layer, "Docker-Content-Digest of the mount")
    check(r.header("Location", "").endswith("/v2/e2e/target/blobs/" + layer),
          "mount Location: expected the target's blob URL, got %r" % r.header("Location"))
    h = reg.req("HEAD", "/v2/e2e/target/blobs/" + layer)
    check(h.status == 200 and h.header("Content-Length") == "4096", "HEAD of the mounted blob: %r" % h)

    # A blob that exists, but not in the named source repository, is not mounted: 202 + an upload.
    other = reg.push_blob("e2e/elsewhere", b"not in e2e/source")
    for query, what in (("mount=%s&from=e2e/source" % other, "blob absent from the source"),
                        ("mount=sha256:%s&from=e2e/source" % ("5" * 64), "unknown blob"),
                        ("mount=%s&from=e2e/missing-repo" % layer, "unknown source repository")):
        r = reg.req("POST", "/v2/e2e/target2/blobs/uploads/?" + query)
        check_eq(r.status, 202, "mount of %s" % what)
        check("/blobs/uploads/" in r.header("Location", ""), "mount of %s: Location is not an upload: %r" % (
            what, r.header("Location")))
    check_eq(reg.req("HEAD", "/v2/e2e/target2/blobs/" + other).status, 404, "HEAD of a blob that was not mounted")


def next_link(resp):
    """The target of a Link: <...>; rel="next" header, or None."""
    m = re.match(r'\s*<([^>]+)>\s*;\s*rel="?next"?', resp.header("Link", ""))
    return m.group(1) if m else None


def follow_pages(reg, first_path, key, limit=20):
    """GETs first_path then each rel="next" Link (at most `limit` pages); returns (pages, responses)."""
    pages, responses, path = [], [], first_path
    for _ in range(limit):
        r = reg.req("GET", path)
        check_eq(r.status, 200, "GET %s" % path)
        pages.append(r.json()[key])
        responses.append(r)
        path = next_link(r)
        if not path:
            return pages, responses
        if "://" in path:
            path = "/" + path.split("://", 1)[1].split("/", 1)[1]
    raise AssertionError("more than %d pages following Link headers from %s" % (limit, first_path))


def test_tags_list(ctx):
    reg = ctx.registry().start()
    img = reg.push_image("e2e/app", "v1")
    tags = ["v1", "v2", "latest", "1.0", "a_b"]
    for t in tags[1:]:
        r, _ = reg.push_manifest("e2e/app", t, img["manifest"])
        check_eq(r.status, 201, "tag %s" % t)
    r = reg.req("GET", "/v2/e2e/app/tags/list")
    check_eq(r.status, 200, "tags list status")
    body = r.json()
    check_eq(body.get("name"), "e2e/app", "tags list name")
    check_eq(sorted(body.get("tags") or []), sorted(tags), "tags")


@wharf_only("distribution 2.8 ignores n and last on tags/list and returns every tag unsorted")
def test_tags_pagination(ctx):
    reg = ctx.registry().start()
    img = reg.push_image("e2e/app", "t0")
    tags = ["t%d" % i for i in range(7)]
    for t in tags[1:]:
        reg.push_manifest("e2e/app", t, img["manifest"])
    pages, responses = follow_pages(reg, "/v2/e2e/app/tags/list?n=3", "tags")
    check_eq(pages, [["t0", "t1", "t2"], ["t3", "t4", "t5"], ["t6"]], "pages of n=3")
    first_link = urllib.parse.unquote(next_link(responses[0]) or "")
    check(re.search(r"/v2/e2e/app/tags/list\?", first_link) and "n=3" in first_link and "last=t2" in first_link,
          "Link of the first page: %r" % first_link)
    after = reg.req("GET", "/v2/e2e/app/tags/list?last=t4").json()["tags"]
    check_eq(after, ["t5", "t6"], "tags after last=t4")


def test_catalog(ctx):
    reg = ctx.registry().start()
    repos = ["e2e/a", "e2e/b", "e2e/c", "other/x"]
    for i, repo in enumerate(repos):
        reg.push_image(repo, "v1", seed=i)
    r = reg.req("GET", "/v2/_catalog")
    check_eq(r.status, 200, "catalog status")
    check_eq(sorted(r.json().get("repositories") or []), repos, "catalog")
    pages, responses = follow_pages(reg, "/v2/_catalog?n=2", "repositories")
    check_eq(pages[:2], [repos[:2], repos[2:]], "catalog pages of n=2")
    check(all(p == [] for p in pages[2:]), "catalog pages after the last repository: %r" % pages[2:])
    check(next_link(responses[0]), "first catalog page of n=2 has no Link header")


def test_manifest_delete(ctx):
    reg = ctx.registry(delete=True).start()
    img = reg.push_image("e2e/app", "v1")
    digest = img["manifest_digest"]
    r = reg.req("DELETE", "/v2/e2e/app/manifests/" + digest)
    check_eq(r.status, 202, "DELETE manifest by digest")
    expect_error(reg.manifest("e2e/app", digest), 404, "MANIFEST_UNKNOWN", "GET deleted digest")
    expect_error(reg.manifest("e2e/app", "v1"), 404, "MANIFEST_UNKNOWN", "GET tag of a deleted manifest")
    r = reg.req("DELETE", "/v2/e2e/app/manifests/" + digest)
    check_eq(r.status, 404, "second DELETE of the same manifest")


def test_manifest_delete_disabled(ctx):
    reg = ctx.registry(delete=False).start()
    img = reg.push_image("e2e/app", "v1")
    r = reg.req("DELETE", "/v2/e2e/app/manifests/" + img["manifest_digest"])
    expect_error(r, 405, "UNSUPPORTED", "DELETE with storage.delete.enabled false")
    check_eq(reg.manifest("e2e/app", "v1").status, 200, "GET after a refused DELETE")


@wharf_only("distribution 2.8 has no referrers API (404 page not found)")
def test_referrers(ctx):
    reg = ctx.registry().start()
    img = reg.push_image("e2e/app", "v1")
    subject_bytes = json.dumps(img["manifest"]).encode()
    empty = reg.push_blob("e2e/app", b"{}")
    sig = reg.push_blob("e2e/app", b"pretend signature")
    artifact = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.e2e.signature",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [{"mediaType": "application/vnd.e2e.sig", "digest": sig, "size": len(b"pretend signature")}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": img["manifest_digest"], "size": len(subject_bytes)},
        "annotations": {"org.e2e.kind": "sig"},
    }
    body = json.dumps(artifact).encode()
    art_digest = imagegen.sha256(body)
    r, _ = reg.push_manifest("e2e/app", art_digest, body, OCI_MANIFEST)
    check_eq(r.status, 201, "PUT of the artifact manifest")
    check_eq(r.header("OCI-Subject"), img["manifest_digest"], "OCI-Subject of the artifact PUT")

    path = "/v2/e2e/app/referrers/" + img["manifest_digest"]
    r = reg.req("GET", path)
    check_eq(r.status, 200, "GET referrers")
    check(r.header("Content-Type", "").startswith(OCI_INDEX), "referrers Content-Type %r" % r.header("Content-Type"))
    index = r.json()
    found = [m for m in index.get("manifests", []) if m.get("digest") == art_digest]
    check(found, "referrers do not list the artifact: %r" % index)
    check_eq(found[0].get("artifactType"), "application/vnd.e2e.signature", "listed artifactType")
    check_eq(found[0].get("size"), len(body), "listed size")
    check_eq(found[0].get("annotations", {}).get("org.e2e.kind"), "sig", "listed annotations")

    hit = reg.req("GET", path + "?artifactType=application/vnd.e2e.signature")
    check_eq(len(hit.json().get("manifests", [])), 1, "referrers filtered by the artifact's type")
    check_eq(hit.header("OCI-Filters-Applied"), "artifactType", "OCI-Filters-Applied")
    miss = reg.req("GET", path + "?artifactType=application/vnd.e2e.other")
    check_eq(miss.status, 200, "referrers filtered by another type")
    check_eq(miss.json().get("manifests"), [], "referrers filtered by another type")

    none = reg.req("GET", "/v2/e2e/app/referrers/sha256:" + "6" * 64)
    check_eq(none.status, 200, "referrers of an unknown digest")
    check_eq(none.json().get("manifests"), [], "referrers of an unknown digest")
