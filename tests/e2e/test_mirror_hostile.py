"""wharf's mirror in front of a hostile upstream (fakehub_hostile.py): lying and overflowing lengths,
bytes that do not match their digest, oversized manifests, control characters in Content-Type, endless
trickles, manifests with many layers. Every answer is a status with an OCI error, never a crash, a hang
or a silent close; and wharf keeps serving afterwards."""
import json
import os
import time

from fakehub_hostile import OCI_MANIFEST, HostileHub, check_oci_error, sha256
from harness import check, check_eq, timeout, wait_for, wharf_only
from http_util import request
from registry import MANIFEST_ACCEPT

MIRROR = "pull-through mirror (proxy.remoteurl, proxy.upstreams)"


def hostile_mirror(ctx, limits=None):
    """(hub, wharf): wharf mirroring a hostile hub as docker.io (the default upstream)."""
    hub = HostileHub(ctx).start()
    proxy = {"remoteurl": hub.url, "upstreams": [{"name": "docker.io", "url": hub.url}]}
    if limits:
        proxy["limits"] = limits
    wharf = ctx.registry(name="wharf", extra={"proxy": proxy}).start()
    return hub, wharf


def get(wharf, path, method="GET"):
    return request(method, wharf.url + "/v2/" + path, {"Accept": MANIFEST_ACCEPT}, timeout=120)


def check_alive(wharf, what):
    check(wharf.proc.poll() is None, "wharf exited (%s) after %s: %s" % (wharf.proc.returncode, what, wharf.log_tail(5)))
    check_eq(get(wharf, "").status, 200, "GET /v2/ after " + what)


def stored_blob(wharf, digest):
    hexpart = digest.split(":", 1)[1]
    return os.path.join(wharf.root, "blobs", "sha256", hexpart[:2], hexpart)


@wharf_only(MIRROR)
@timeout(120)
def test_overflowing_content_length_on_blob_head(ctx):
    hub, wharf = hostile_mirror(ctx)
    d = hub.add_blob(b"x" * 100, head_length="99999999999999999999")
    r = get(wharf, "library/huge/blobs/" + d, "HEAD")
    check_eq(r.status, 502, "HEAD of a blob whose upstream Content-Length overflows 64 bits")
    check_alive(wharf, "an upstream Content-Length of 99999999999999999999")
    hub.add_blob(b"y" * 10, digest=sha256(b"z"), head_length="-5")  # curl itself refuses this one
    r = get(wharf, "docker.io/library/huge/blobs/" + sha256(b"z"), "HEAD")
    check(r.status in (502, 503), "HEAD with an upstream Content-Length of -5: %d" % r.status)
    check_alive(wharf, "an upstream Content-Length of -5")


@wharf_only(MIRROR)
@timeout(120)
def test_blob_digest_mismatch_is_a_502_and_is_remembered(ctx):
    hub, wharf = hostile_mirror(ctx)
    want = sha256(b"the real content")
    hub.add_blob(b"forged content!!", digest=want)
    r = get(wharf, "library/forged/blobs/" + want)
    check_oci_error(r, 502, "UNAVAILABLE", "GET of a blob the upstream forges", "digest mismatch")
    check_eq(hub.count("GET", "blob", want), 1, "upstream GETs of the forged blob")
    check(not os.path.exists(stored_blob(wharf, want)), "wharf stored the forged blob")

    r = get(wharf, "library/forged/blobs/" + want, "HEAD")
    check_eq(r.status, 502, "HEAD of a blob known to be forged upstream (the upstream's HEAD says 200)")
    r = get(wharf, "library/forged/blobs/" + want)
    check_oci_error(r, 502, "UNAVAILABLE", "second GET of the forged blob", "do not match")
    check_eq(hub.count("GET", "blob", want), 1, "upstream GETs after the mismatch was known")
    check_eq(hub.count("HEAD", "blob", want), 0, "upstream HEADs after the mismatch was known")
    check_alive(wharf, "a forged blob")


@wharf_only(MIRROR)
@timeout(120)
def test_oversized_upstream_manifest_says_so(ctx):
    hub, wharf = hostile_mirror(ctx)
    big = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "annotations": {"pad": "p" * (5 << 20)}}).encode()
    hub.add_manifest("library/big", "1", big)
    r = get(wharf, "library/big/manifests/1")
    check_oci_error(r, 502, "UNAVAILABLE", "GET of a 5 MB upstream manifest", "exceeds the limit of 4194304 bytes")
    check_alive(wharf, "a 5 MB manifest")


@wharf_only(MIRROR)
@timeout(120)
def test_manifest_limit_is_configurable_and_counts_bytes_without_content_length(ctx):
    hub, wharf = hostile_mirror(ctx, limits={"manifestsize": 2000})
    _, _, _ = hub.add_image("library/small", "1", [b"a" * 10])
    check_eq(get(wharf, "library/small/manifests/1").status, 200, "a small manifest under a 2000-byte limit")
    layers = [bytes([i]) * 3 for i in range(30)]  # 30 descriptors: well over 2000 bytes
    hub.add_image("library/wide", "1", layers)
    r = get(wharf, "library/wide/manifests/1")
    check_oci_error(r, 502, "UNAVAILABLE", "a manifest over proxy.limits.manifestsize", "exceeds the limit of 2000 bytes")


@wharf_only(MIRROR)
@timeout(120)
def test_upstream_content_type_is_validated(ctx):
    hub, wharf = hostile_mirror(ctx)
    digest, _, _ = hub.add_image("library/ctl", "1", [b"layer"], content_type=OCI_MANIFEST + "\x01\x1b[31m")
    r = get(wharf, "library/ctl/manifests/1")
    check_eq(r.status, 200, "a manifest whose Content-Type has control characters but whose mediaType is valid (%r)" % r)
    check_eq(r.header("Content-Type"), OCI_MANIFEST, "the Content-Type wharf serves")
    check_eq(r.header("Docker-Content-Digest"), digest, "digest")
    time.sleep(0.5)  # cached by now (written after the answer): the cached copy has the clean type too
    r = get(wharf, "docker.io/library/ctl/manifests/" + digest)
    check_eq((r.status, r.header("Content-Type")), (200, OCI_MANIFEST), "the cached manifest's type")

    hub.add_image("library/ctl2", "1", [b"layer2"], content_type="application/x\x01y", media_type=None)
    r = get(wharf, "library/ctl2/manifests/1")
    check_eq(r.status, 502, "a manifest with neither a valid Content-Type nor a mediaType (%r)" % r)
    check_alive(wharf, "control characters in Content-Type")


@wharf_only(MIRROR)
@timeout(150)
def test_trickling_and_overlong_blobs_are_cut_off(ctx):
    hub, wharf = hostile_mirror(ctx, limits={"minrate": 100000, "stalltime": "2s"})
    # Announced as 10 GB, 1 KB every 0.3 s: never stalls for long, never gets anywhere.
    slow = hub.add_blob(b"s" * (1 << 20), digest=sha256(b"slow"), length=10 << 30, trickle=(1024, 0.3))
    r = get(wharf, "library/slow/blobs/" + slow)  # the hub gives up after 90 s: wharf must cut it off first
    check_oci_error(r, 502, "UNAVAILABLE", "GET of a blob trickling below proxy.limits.minrate", "too slow")

    # Chunked (no Content-Length) and longer than the manifest says: cut at the descriptor's size.
    data = b"L" * 4096
    _, _, (layer,) = hub.add_image("library/long", "1", [data], sizes={sha256(data): 1000})
    hub.blobs[layer].length = "chunked"
    check_eq(get(wharf, "library/long/manifests/1").status, 200, "manifest of the image with an overlong layer")
    r = get(wharf, "library/long/blobs/" + layer)
    check_oci_error(r, 502, "UNAVAILABLE", "GET of a layer longer than its descriptor", "more than the 1000 bytes")
    check(not os.path.exists(stored_blob(wharf, layer)), "wharf stored the overlong layer")
    check_alive(wharf, "trickling and overlong blobs")


@wharf_only(MIRROR)
@timeout(240)
def test_prefetch_of_many_layers_is_bounded(ctx):
    hub, wharf = hostile_mirror(ctx, limits={"downloads": 6, "downloadsperupstream": 3})
    layers = [b"layer %d " % i * 50 for i in range(120)]
    _, config, digests = hub.add_image("library/wide", "1", layers)
    for d in digests:
        hub.blobs[d].delay = 0.05  # so downloads overlap
    check_eq(get(wharf, "library/wide/manifests/1").status, 200, "manifest with 120 layers")
    # A client asks for the last layer while the prefetches queue: it is served (first, not last).
    r = get(wharf, "library/wide/blobs/" + digests[-1])
    check_eq((r.status, sha256(r.body)), (200, digests[-1]), "GET of the last layer during the prefetch")
    wait_for(lambda: all(os.path.exists(stored_blob(wharf, d)) for d in digests + [config]),
             "every prefetched layer to be stored (%s)" % hub.summary(), tries=600, interval=0.2)
    check(hub.max_active <= 3, "concurrent blob downloads from one upstream: %d, limit 3" % hub.max_active)
    check(hub.max_active >= 2, "downloads did not overlap at all (max %d)" % hub.max_active)
    for d in digests:
        check_eq(hub.count("GET", "blob", d), 1, "upstream GETs of layer %s" % d[:19])
    check_alive(wharf, "a prefetch of 120 layers")
