"""The default mirror config on a machine that cannot reach its upstream (proxy.remoteurl pointing at
a closed port): pushes to new bare names work with skopeo and docker, unknown names get 404 with a detail naming
the unreachable upstream, names that explicitly name the upstream get 503, and every upstream failure
is logged at warning level with the upstream, the URL and the reason."""
import os
import re

from harness import check, check_eq, free_port, tail, timeout, wharf_only
from http_util import request
from registry import MANIFEST_ACCEPT
from test_docker import Dockerd

MIRROR = "pull-through mirror (proxy.remoteurl)"


def airgapped(ctx, named=False):
    """wharf whose only upstream is a closed port; named=True also names it docker.io (proxy.upstreams),
    so /v2/docker.io/... names it explicitly."""
    dead = "http://127.0.0.1:%d" % free_port()  # nothing listens: connections are refused at once
    proxy = {"remoteurl": dead}
    if named:
        proxy["upstreams"] = [{"name": "docker.io", "url": dead}]
    return ctx.registry(name="wharf", extra={"proxy": proxy}).start(), dead


def error_of(resp):
    try:
        return resp.json()["errors"][0]
    except (KeyError, IndexError, TypeError):
        return {}


def log_text(ctx, name="wharf"):
    with open(ctx.path(name + ".log"), errors="replace") as f:
        return f.read()


@wharf_only(MIRROR)
@timeout(240)
def test_push_to_new_bare_names_with_the_upstream_unreachable(ctx):
    wharf, dead = airgapped(ctx)
    img = ctx.image(name="app", layers=2, size=64 << 10, seed=301)
    ctx.skopeo("copy", "--dest-tls-verify=false", "oci:" + img["dir"], "docker://%s/team/app:1" % wharf.host,
               timeout=120)
    # A second image sharing the first one's config and layers, to another new name: every HEAD of
    # those blobs finds them stored for team/app, which must not turn team/app2 into a mirrored name.
    ctx.skopeo("copy", "--dest-tls-verify=false", "oci:" + img["dir"], "docker://%s/team/app2:1" % wharf.host,
               timeout=120)
    for repo in ("team/app", "team/app2"):
        out = ctx.path("pulled-" + repo.replace("/", "-"))
        ctx.skopeo("copy", "--src-tls-verify=false", "docker://%s/%s:1" % (wharf.host, repo), "oci:" + out,
                   timeout=120)
        check(os.path.exists(os.path.join(out, "index.json")), "pull of %s after the push" % repo)
    r = request("GET", wharf.url + "/v2/team/app/manifests/1", {"Accept": MANIFEST_ACCEPT})
    check_eq((r.status, r.header("Docker-Content-Digest")), (200, img["manifest_digest"]), "the pushed tag")


@wharf_only(MIRROR)
@timeout(120)
def test_unknown_names_with_the_upstream_unreachable(ctx):
    wharf, dead = airgapped(ctx, named=True)
    r = request("GET", wharf.url + "/v2/team/nothere/manifests/1", {"Accept": MANIFEST_ACCEPT})
    check_eq(r.status, 404, "GET of an unknown bare name's manifest with the upstream unreachable (%r)" % r)
    err = error_of(r)
    check_eq(err.get("code"), "MANIFEST_UNKNOWN", "error code")
    detail = err.get("detail") or {}
    check(isinstance(detail, dict) and detail.get("upstream") == "docker.io" and "unreachable" in detail.get("reason", ""),
          "the detail names the unreachable upstream: %r" % err)

    blob = "sha256:" + "ab" * 32
    for method in ("HEAD", "GET"):
        r = request(method, wharf.url + "/v2/team/nothere/blobs/" + blob)
        check_eq(r.status, 404, "%s of an unknown blob in a bare name with the upstream unreachable" % method)
    check_eq(error_of(r).get("code"), "BLOB_UNKNOWN", "error code of the blob GET")

    r = request("GET", wharf.url + "/v2/docker.io/library/nothere/manifests/1", {"Accept": MANIFEST_ACCEPT})
    check_eq(r.status, 503, "GET through a name that names the upstream explicitly (%r)" % r)
    check_eq(error_of(r).get("code"), "UNAVAILABLE", "error code for an explicit upstream name")
    r = request("HEAD", wharf.url + "/v2/docker.io/library/nothere/blobs/" + blob)
    check_eq(r.status, 503, "HEAD of a blob through an explicit upstream name")

    log = log_text(ctx)
    lines = [l for l in log.splitlines() if "warn" in l.lower() and "docker.io" in l and "/v2/team/nothere/manifests/1" in l]
    check(lines, "no warning names the upstream, the URL and the reason; log ends: %s" % log[-600:])
    check(any("onnect" in l for l in lines), "the warning gives no reason: %s" % lines[0])


@wharf_only(MIRROR)
@timeout(600)
def test_docker_push_to_new_bare_names_with_the_upstream_unreachable(ctx):
    wharf, dead = airgapped(ctx)
    img = ctx.image(name="dapp", layers=2, size=256 << 10, seed=302, fmt="docker")
    ref = "%s/team/dapp:v1" % wharf.host
    archive = ctx.path("image.tar")
    ctx.skopeo("copy", "oci:" + img["dir"], "docker-archive:%s:%s" % (archive, ref))
    dk = Dockerd(ctx).start()
    dk.docker("load", "-i", archive)
    pushed = dk.docker("push", ref).stdout
    check(re.search(r"digest: sha256:[0-9a-f]{64}", pushed), "docker push printed no digest: " + tail(pushed, 3))
    # The same layers to a second new name: docker mounts them from team/dapp (its HEADs must say 404).
    ref2 = "%s/team/dapp2:v1" % wharf.host
    dk.docker("tag", ref, ref2)
    pushed2 = dk.docker("push", ref2).stdout
    check(re.search(r"digest: sha256:[0-9a-f]{64}", pushed2), "second docker push printed no digest: " + tail(pushed2, 3))
    for repo in ("team/dapp", "team/dapp2"):
        r = request("GET", wharf.url + "/v2/%s/manifests/v1" % repo, {"Accept": MANIFEST_ACCEPT})
        check_eq(r.status, 200, "GET of the tag docker pushed to " + repo)
