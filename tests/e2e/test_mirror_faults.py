"""wharf's mirror under load and upstream trouble, pulled with skopeo: concurrent pulls share one
upstream fetch, cut downloads never leave corrupt content behind, cached tags survive an outage and a
rate limit and do not spend manifest GETs, tokens are reused, and upstream credentials go to the
token realm only. The upstream is a fakehub (fakehub.py)."""
import os
import threading
import time

from harness import TestFailure, check, check_eq, tail, timeout, wait_for, wharf_only
from mirror_util import Mirror, check_cdn_once, check_copied, image_blobs

MIRROR = "pull-through mirror (proxy.remoteurl, proxy.upstreams)"
PULLERS = 8


@wharf_only(MIRROR)
@timeout(300)
def test_concurrent_pulls_fetch_once(ctx):
    with Mirror(ctx) as m:
        img = ctx.image(layers=3, size=3 << 20, seed=91)
        m.hub.push(img, "library/busy", "c1")
        m.hub.reset_counters()
        m.hub.throttle(12 << 20)  # each layer takes ~0.25 s at the CDN, so the eight pulls overlap
        ctx.skopeo("--version")  # writes the policy file before the threads share it
        results = [None] * PULLERS

        def pull(i):
            results[i] = m.skopeo_pull("library/busy", "c1", ctx.path("copy%d" % i), check_rc=False, timeout=200)
        threads = [threading.Thread(target=pull, args=(i,), daemon=True) for i in range(PULLERS)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 230
        for t in threads:
            t.join(max(0.1, deadline - time.monotonic()))
        check(not any(t.is_alive() for t in threads), "concurrent skopeo pulls still running after 230 s")
        failed = [i for i, r in enumerate(results) if r is None or r.returncode != 0]
        if failed:
            first = results[failed[0]]
            raise TestFailure("%d of %d concurrent pulls failed, e.g. %s; %s" % (
                len(failed), PULLERS, tail(first.stderr, 1) if first else "(did not finish)",
                m.diagnose("library/busy", "c1")))
        for i in range(PULLERS):
            check_copied(img, ctx.path("copy%d" % i), "pull %d" % i)
        check_cdn_once(m.hub, img, "%d concurrent pulls" % PULLERS)
        check(m.hub.log.manifest_gets() <= 2, "manifest GETs upstream for %d concurrent pulls of one tag: %s" % (
            PULLERS, m.hub.log.summary()))


@wharf_only(MIRROR)
@timeout(240)
def test_cut_downloads_leave_nothing_corrupt(ctx):
    with Mirror(ctx) as m:
        img = ctx.image(layers=2, size=1 << 20, seed=92)
        m.hub.push(img, "library/cut", "1")
        m.hub.cut_blobs(True)
        res = m.skopeo_pull("library/cut", "1", ctx.path("first"), check_rc=False, timeout=150)
        if m.hub.log.count("GET", "cdn") == 0:
            raise TestFailure("wharf fetched no blob from the CDN; " + m.diagnose("library/cut", "1"))
        check(res.returncode != 0, "the pull succeeded although every blob download was cut")
        for d in image_blobs(img):
            check(not os.path.exists(m.stored_blob(d)), "wharf stored %s from a cut download" % d[:19])
        m.check_store_sound()
        for d in img["layers"]:
            r = m.manifest("library/cut/blobs/" + d, method="HEAD")
            check(r.status == 404 or (r.status == 200 and r.header("Content-Length") == str(
                os.path.getsize(ctx.path("img", "blobs", "sha256", d[7:])))),
                "HEAD of %s after cut downloads: %d, Content-Length %s" % (d[:19], r.status, r.header("Content-Length")))

        m.hub.cut_blobs(False)
        m.skopeo_pull("library/cut", "1", ctx.path("second"))
        check_copied(img, ctx.path("second"), "pull after the upstream recovered")
        for d in image_blobs(img):
            check(os.path.exists(m.stored_blob(d)), "wharf did not cache %s" % d[:19])
        m.check_store_sound()


@wharf_only(MIRROR)
@timeout(240)
def test_cached_tag_survives_outage_and_rate_limit(ctx):
    with Mirror(ctx, tagfreshness="1s") as m:
        img = ctx.image(layers=2, size=256 << 10, seed=93)
        m.hub.push(img, "library/fresh", "1")
        m.skopeo_pull("library/fresh", "1", ctx.path("warm"))
        m.hub.reset_counters()

        for i in range(30):  # 3 s, so the 1 s tag freshness lapses a few times: HEADs allowed, not GETs
            r = m.manifest("library/fresh/manifests/1")
            check_eq((r.status, r.header("Docker-Content-Digest")), (200, img["manifest_digest"]),
                     "pull %d of the cached tag" % i)
            time.sleep(0.1)
        check(m.hub.log.manifest_gets() <= 2, "30 pulls of a cached tag cost more than 2 manifest GETs upstream: %s"
              % m.hub.log.summary())

        time.sleep(1.5)  # past tag freshness: wharf would ask upstream now
        m.hub.go_down()
        m.skopeo_pull("library/fresh", "1", ctx.path("down"), timeout=120)
        check_copied(img, ctx.path("down"), "pull while the upstream is down")
        m.hub.come_up()

        m.hub.set_pull_limit(0, heads_too=True)
        time.sleep(1.5)
        m.skopeo_pull("library/fresh", "1", ctx.path("limited"), timeout=120)
        check_copied(img, ctx.path("limited"), "pull while the upstream answers 429")
        check_eq(m.hub.log.count("GET", "cdn"), 0, "CDN GETs for an image that was cached before the outage")


@wharf_only(MIRROR)
@timeout(180)
def test_tokens_are_reused(ctx):
    with Mirror(ctx) as m:
        img = ctx.image(layers=4, size=64 << 10, seed=94)
        m.hub.push(img, "library/tokens", "1")
        m.hub.push(ctx.image(name="img2", layers=4, size=64 << 10, seed=95), "library/tokens", "2")
        m.hub.reset_counters()
        m.skopeo_pull("library/tokens", "1", ctx.path("one"))
        check(m.hub.token_requests() <= 2, "token requests for one pull of 5 blobs: %s" % m.hub.log.summary())
        check(m.hub.log.count(status=401) <= 2, "requests answered 401 (sent without a cached token): %s"
              % m.hub.log.summary())

        m.hub.revoke_tokens()  # as if the cached token expired early: wharf must fetch a new one and retry
        m.hub.reset_counters()
        m.skopeo_pull("library/tokens", "2", ctx.path("two"))
        check(1 <= m.hub.token_requests() <= 2, "token requests after the token was revoked: %s" % m.hub.log.summary())


@wharf_only(MIRROR)
@timeout(180)
def test_upstream_credentials_go_to_the_realm_only(ctx):
    with Mirror(ctx, hub_user="hubuser", hub_password="hub-secret") as m:
        img = ctx.image(layers=2, size=64 << 10, seed=96)
        m.hub.push(img, "library/private", "1")
        m.hub.reset_counters()
        m.skopeo_pull("library/private", "1", ctx.path("copy"))
        check_copied(img, ctx.path("copy"), "pull with upstream credentials")
        tokens = m.hub.log.entries(kind="token")
        check(tokens and all(e["auth"] == "Basic" and e["status"] == 200 for e in tokens),
              "token requests: %s" % [(e["auth"], e["status"]) for e in tokens])
        leaked = [e["path"] for e in m.hub.log.entries() if e["kind"] != "token" and e["auth"] == "Basic"]
        check_eq(leaked, [], "registry requests that carried the upstream password (Basic)")


@wharf_only(MIRROR)
@timeout(120)
def test_range_on_a_blob_being_fetched(ctx):
    """A Range request for a blob whose download is under way is answered from that download (206,
    the right bytes) while a full GET streams alongside; the upstream sees one GET."""
    from http_util import request
    with Mirror(ctx) as m:
        img = ctx.image(name="rng", layers=1, size=4 << 20, seed=95)
        m.hub.push(img, "library/rng", "1")
        layer = img["layers"][0]
        with open(os.path.join(img["dir"], "blobs", "sha256", layer.split(":")[1]), "rb") as f:
            data = f.read()
        m.hub.reset_counters()
        m.hub.throttle(4 << 20)  # about a second for the layer: the range request arrives mid-download
        url = m.wharf.url + "/v2/library/rng/blobs/" + layer
        full = {}
        t = threading.Thread(target=lambda: full.update(r=request("GET", url, timeout=60)), daemon=True)
        t.start()
        time.sleep(0.3)
        start, end = len(data) // 2, len(data) // 2 + 99999
        part = request("GET", url, {"Range": "bytes=%d-%d" % (start, end)}, timeout=60)
        t.join(60)
        check(not t.is_alive(), "the full GET did not finish")
        check_eq(part.status, 206, "status of the Range GET during the download")
        check_eq(part.header("Content-Range"), "bytes %d-%d/%d" % (start, end, len(data)), "Content-Range")
        check(part.body == data[start:end + 1], "the range's bytes (%d received)" % len(part.body))
        check(full["r"].status == 200 and full["r"].body == data, "the full GET's bytes")
        check_eq(m.hub.log.cdn_gets(layer), 1, "CDN GETs for the blob")


@wharf_only(MIRROR)
@timeout(180)
def test_manifest_fetch_prefetches_its_blobs(ctx):
    """A manifest miss starts the downloads of the image's config and layers at once (proxy.prefetch,
    on by default): they reach the store without any client asking, a pull afterwards adds no CDN GET,
    and with proxy.prefetch: false a manifest GET fetches no blob."""
    img = ctx.image(name="pre", layers=3, size=256 << 10, seed=96)
    with Mirror(ctx) as m:
        m.hub.push(img, "library/pre", "1")
        m.hub.reset_counters()
        check_eq(m.manifest("library/pre/manifests/1").status, 200, "manifest GET through wharf")
        wait_for(lambda: all(os.path.exists(m.stored_blob(d)) for d in image_blobs(img)),
                 "every blob of the image in wharf's store after a manifest GET alone (hub saw %s)"
                 % m.hub.log.summary(), tries=100, interval=0.1)
        check_cdn_once(m.hub, img, "prefetch")
        m.skopeo_pull("library/pre", "1", ctx.path("copy"))
        check_copied(img, ctx.path("copy"), "pull after the prefetch")
        check_cdn_once(m.hub, img, "prefetch, then a pull")
    with Mirror(ctx, extra={"proxy": {"prefetch": False}}, name="noprefetch") as m:
        m.hub.push(img, "library/pre", "1")
        m.hub.reset_counters()
        check_eq(m.manifest("library/pre/manifests/1").status, 200, "manifest GET through wharf (prefetch off)")
        time.sleep(1.0)
        for d in image_blobs(img):
            check_eq(m.hub.log.cdn_gets(d), 0, "CDN GETs of %s with proxy.prefetch: false" % d[:19])
            check(not os.path.exists(m.stored_blob(d)), "%s stored with proxy.prefetch: false" % d[:19])
