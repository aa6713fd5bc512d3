"""wharf as a pull-through mirror, driven by the clients users point at it: dockerd's registry-mirrors,
podman's registries.conf mirror, containerd's hosts directory (two upstreams, chosen by ?ns=), and
plain HTTP for the routing rules (?ns=<registry>, /v2/<registry>/<repo>/..., bare /v2/<repo>/... ->
docker.io). The upstreams are fakehubs (fakehub.py): Docker-Hub-like, tokens, 307 to a CDN.

Each test ends by checking that no Authorization header reached a CDN (Mirror.__exit__)."""
import hashlib

from harness import blob_path, check, check_eq, timeout, wharf_only
from mirror_util import Containerd, Mirror, Podman, check_cdn_once, mirror_dockerd
from test_docker import image_id

MIRROR = "pull-through mirror (proxy.remoteurl, proxy.upstreams)"


def body_digest(resp):
    return "sha256:" + hashlib.sha256(resp.body).hexdigest()


@wharf_only(MIRROR)
@timeout(120)
def test_routing_by_ns_and_prefix(ctx):
    with Mirror(ctx, ghcr=True) as m:
        # Each upstream also holds a decoy under the other's name, so a misrouted request is seen.
        route = ctx.image(name="route", layers=1, size=64 << 10, seed=81)
        app = ctx.image(name="app", layers=1, size=64 << 10, seed=82)
        m.hub.push(route, "library/route", "1")
        m.hub.push(ctx.image(name="decoy-app", layers=1, size=64 << 10, seed=83), "org/app", "1")
        m.ghcr.push(app, "org/app", "1")
        m.ghcr.push(ctx.image(name="decoy-route", layers=1, size=64 << 10, seed=84), "library/route", "1")

        for path, img, what in (("ghcr.io/org/app/manifests/1", app, "prefix /v2/ghcr.io/..."),
                                ("org/app/manifests/1?ns=ghcr.io", app, "?ns=ghcr.io"),
                                ("library/route/manifests/1?ns=docker.io", route, "?ns=docker.io"),
                                ("library/route/manifests/1", route, "bare path (default upstream)")):
            r = m.manifest(path)
            check_eq(r.status, 200, "%s: status of GET /v2/%s (%r; %s)" % (what, path, r, m.seen()))
            check_eq((r.header("Docker-Content-Digest"), body_digest(r)), (img["manifest_digest"],) * 2,
                     "%s: manifest digest (header, body)" % what)

        layer = app["layers"][0]
        r = m.manifest("ghcr.io/org/app/blobs/" + layer)
        with open(blob_path(app["dir"], layer), "rb") as f:
            check(r.status == 200 and r.body == f.read(), "blob GET via /v2/ghcr.io/...: %r" % r)

        check_eq(m.hub.log.count(repo="org/app"), 0, "requests for org/app that reached docker.io")
        check_eq(m.ghcr.log.count(repo="library/route"), 0, "requests for library/route that reached ghcr.io")
        check(m.ghcr.log.manifest_gets("org/app") >= 1, "ghcr.io saw no manifest GET for org/app")
        check_eq(m.ghcr.log.cdn_gets(layer), 1, "CDN GETs of the blob fetched via /v2/ghcr.io/...")


@wharf_only(MIRROR)
@timeout(300)
def test_docker_then_podman(ctx):
    with Mirror(ctx) as m:
        img = ctx.image(layers=3, size=512 << 10, seed=71, fmt="docker")
        m.hub.push(img, "library/mirrored", "1.0")

        dk = mirror_dockerd(ctx, m.wharf.url).start()
        m.attempt("docker pull docker.io/library/mirrored:1.0 via registry-mirrors",
                  lambda: dk.docker("pull", "docker.io/library/mirrored:1.0"), "library/mirrored", "1.0")
        check_eq(image_id(dk, "mirrored:1.0"), img["config_digest"], "image ID after docker pull")
        check_cdn_once(m.hub, img, "docker pull")
        dk.stop()

        cdn_before = m.hub.log.count("GET", "cdn")
        podman = Podman(ctx, m.wharf.host)
        m.attempt("podman pull docker.io/library/mirrored:1.0 via registries.conf mirror",
                  lambda: podman("pull", "docker.io/library/mirrored:1.0"), "library/mirrored", "1.0")
        info = podman("image", "inspect", "docker.io/library/mirrored:1.0", "--format", "{{.Digest}} {{.Id}}").stdout
        check_eq(info.split(), [img["manifest_digest"], img["config_digest"].split(":", 1)[1]],
                 "podman's manifest digest and image ID")
        check_eq(m.hub.log.count("GET", "cdn"), cdn_before, "CDN GETs added by podman pulling a cached image")


@wharf_only(MIRROR)
@timeout(180)
def test_containerd_two_upstreams(ctx):
    with Mirror(ctx, ghcr=True) as m:
        hub_img = ctx.image(name="hubimg", layers=2, size=256 << 10, seed=72, fmt="docker")
        ghcr_img = ctx.image(name="ghcrimg", layers=2, size=256 << 10, seed=73)
        m.hub.push(hub_img, "library/ctrimg", "1.0")
        m.ghcr.push(ghcr_img, "org/app", "1")

        cd = Containerd(ctx).start()
        cd.mirror("docker.io", m.wharf.url)
        cd.mirror("ghcr.io", m.wharf.url)
        for ref, repo, tag, ns, img in (("docker.io/library/ctrimg:1.0", "library/ctrimg", "1.0", "docker.io", hub_img),
                                        ("ghcr.io/org/app:1", "org/app", "1", "ghcr.io", ghcr_img)):
            m.attempt("ctr images pull %s" % ref, lambda: cd.pull(ref), repo, tag, "?ns=" + ns)
            check_eq(cd.image_digest(ref), img["manifest_digest"], "manifest digest containerd recorded for " + ref)

        check_cdn_once(m.hub, hub_img, "containerd pull from docker.io")
        check_cdn_once(m.ghcr, ghcr_img, "containerd pull from ghcr.io")
        check(m.hub.log.manifest_gets("library/ctrimg") >= 1, "docker.io saw no manifest GET for library/ctrimg")
        check(m.ghcr.log.manifest_gets("org/app") >= 1, "ghcr.io saw no manifest GET for org/app")
        check_eq(m.hub.log.count(repo="org/app"), 0, "requests for org/app that reached docker.io")
        check_eq(m.ghcr.log.count(repo="library/ctrimg"), 0, "requests for library/ctrimg that reached ghcr.io")


@wharf_only(MIRROR)
@timeout(120)
def test_tags_list_and_catalog_fall_back_to_the_cache(ctx):
    with Mirror(ctx) as m:
        img = ctx.image(name="lst", layers=1, size=32 << 10, seed=91)
        m.hub.push(img, "library/lst", "1")
        m.hub.push(img, "library/lst", "2")
        r = m.manifest("library/lst/tags/list")
        check_eq(r.status, 200, "tags list through the mirror (%r)" % r)
        check_eq(sorted(r.json()["tags"]), ["1", "2"], "the upstream's tags, passed through")
        check(m.hub.log.count(repo="library/lst") >= 1, "the upstream was asked for the tags")

        check_eq(m.manifest("library/lst/manifests/1").status, 200, "pull of tag 1 (caches it)")
        m.hub.go_down()
        try:
            r = m.manifest("library/lst/tags/list")
            check_eq(r.status, 200, "tags list with the upstream down (%r)" % r)
            check_eq(r.json()["tags"], ["1"], "with the upstream down, the cached tags")
            r = m.manifest("_catalog?ns=docker.io")
            check_eq(r.status, 200, "catalog for ns=docker.io with the upstream down (%r)" % r)
            check_eq(r.json()["repositories"], ["library/lst"], "the cached repositories of docker.io")
        finally:
            m.hub.come_up()
