"""Air-gapped bundles: `wharf export` writes an OCI image layout tar, `wharf import` verifies all of it
before anything becomes visible, `wharf prefetch` warms the pull-through cache."""
import hashlib
import json
import os
import tarfile

from harness import SERVER_BIN, check, check_eq, run, wharf_only
from mirror_util import Mirror, check_copied

REPO = "e2e/bundle"


def push_and_export(ctx, seed):
    """wharf A (left running) holding a skopeo-pushed image as e2e/bundle:v1, exported (named in an
    --images-file) to a bundle."""
    a = ctx.registry(name="a").start()
    img = ctx.image(layers=2, size=256 << 10, seed=seed)
    ctx.skopeo("copy", "--dest-tls-verify=false", "oci:" + img["dir"], "docker://%s/%s:v1" % (a.host, REPO))
    bundle = ctx.path("bundle.tar")
    images = ctx.path("images.txt")
    with open(images, "w") as f:
        f.write("# images for the air gap\n\n%s:v1\n" % REPO)
    run([SERVER_BIN, "export", a.config_path, bundle, "--images-file", images])
    return a, img, bundle


def store_files(root):
    """Every file under ROOT/blobs and ROOT/tmp."""
    out = []
    for sub in ("blobs", "tmp"):
        for dirpath, _, names in os.walk(os.path.join(root, sub)):
            out += [os.path.join(dirpath, n) for n in names]
    return out


@wharf_only("wharf's export/import verbs")
def test_export_import_roundtrip(ctx):
    _, img, bundle = push_and_export(ctx, seed=71)
    with tarfile.open(bundle) as tar:
        names = set(tar.getnames())
        index = json.load(tar.extractfile("index.json"))
    check("oci-layout" in names, "bundle lacks oci-layout: %s" % sorted(names))
    for d in [img["manifest_digest"], img["config_digest"]] + img["layers"]:
        check("blobs/sha256/" + d.split(":")[1] in names, "bundle lacks %s" % d)
    desc = index["manifests"][0]
    check_eq(desc["digest"], img["manifest_digest"], "digest in the bundle's index.json")
    check_eq(desc["annotations"], {"org.opencontainers.image.ref.name": "v1", "io.wharf.repository": REPO},
             "annotations in the bundle's index.json")

    b = ctx.registry(name="b")
    run([SERVER_BIN, "import", b.config_path, bundle])
    b.start()
    check_eq(b.req("GET", "/v2/%s/tags/list" % REPO).json().get("tags"), ["v1"], "tags after import")
    raw = ctx.skopeo("inspect", "--raw", "--tls-verify=false", "docker://%s/%s:v1" % (b.host, REPO)).stdout
    check_eq("sha256:" + hashlib.sha256(raw.encode()).hexdigest(), img["manifest_digest"], "imported manifest digest")
    out = ctx.path("pulled")
    ctx.skopeo("copy", "--src-tls-verify=false", "docker://%s/%s:v1" % (b.host, REPO), "oci:" + out)
    check_copied(img, out, "pull from the imported registry")
    check_eq(json.load(open(os.path.join(out, "index.json")))["manifests"][0]["digest"], img["manifest_digest"],
             "digest of the pulled manifest")


@wharf_only("wharf's export/import verbs")
def test_tampered_or_truncated_bundle_is_refused_whole(ctx):
    _, img, bundle = push_and_export(ctx, seed=72)
    layer = img["layers"][1]
    entry = "blobs/sha256/" + layer.split(":")[1]
    with tarfile.open(bundle) as tar:
        offset = tar.getmember(entry).offset_data
    with open(bundle, "rb") as f:
        data = bytearray(f.read())
    tampered = ctx.path("tampered.tar")
    data[offset + 1000] ^= 0x01
    with open(tampered, "wb") as f:
        f.write(data)
    truncated = ctx.path("truncated.tar")
    with open(truncated, "wb") as f:
        f.write(data[:offset + 4096])

    b = ctx.registry(name="b")
    res = run([SERVER_BIN, "import", b.config_path, tampered], check_rc=False)
    check(res.returncode != 0, "import of a tampered bundle succeeded")
    check(entry in res.stderr, "the refusal does not name %s: %s" % (entry, res.stderr.strip()[-300:]))
    res = run([SERVER_BIN, "import", b.config_path, truncated], check_rc=False)
    check(res.returncode != 0, "import of a truncated bundle succeeded")
    check("truncated" in res.stderr, "the refusal does not say the bundle is truncated: %s" % res.stderr.strip()[-300:])
    check_eq(store_files(b.root), [], "files left in B's store after refused imports")
    b.start()
    check_eq(b.req("GET", "/v2/_catalog").json().get("repositories"), [], "B's catalog after refused imports")


@wharf_only("wharf's prefetch verb")
def test_prefetch_then_pull_with_upstream_down(ctx):
    with Mirror(ctx) as m:
        img = ctx.image(layers=2, size=128 << 10, seed=73)
        m.hub.push(img, "library/prefetched", "v1")
        run([SERVER_BIN, "prefetch", m.wharf.config_path, "prefetched:v1"])
        for d in [img["config_digest"]] + img["layers"]:
            check(os.path.exists(m.stored_blob(d)), "blob %s not cached by prefetch (%s)" % (d[:19], m.seen()))
        m.hub.go_down()
        out = ctx.path("pulled")
        m.skopeo_pull("library/prefetched", "v1", out)
        check_copied(img, out, "pull after prefetch with the hub down")


def multiarch_layout(ctx, tag):
    """An OCI layout whose `tag` is an index of two imagegen images (linux/amd64, linux/arm64);
    returns (dir, index digest, {platform: image summary})."""
    images = {"linux/amd64": ctx.image(name="amd64", layers=1, size=64 << 10, seed=81),
              "linux/arm64": ctx.image(name="arm64", layers=1, size=64 << 10, seed=82)}
    out = ctx.mkdir("multiarch", "blobs", "sha256")
    children = []
    for platform, img in images.items():
        blobs_dir = os.path.join(img["dir"], "blobs", "sha256")
        for name in os.listdir(blobs_dir):
            with open(os.path.join(blobs_dir, name), "rb") as src, open(os.path.join(out, name), "wb") as dst:
                dst.write(src.read())
        os_, arch = platform.split("/")
        children.append({"mediaType": img["media_types"]["manifest"], "digest": img["manifest_digest"],
                         "size": img["manifest_size"], "platform": {"os": os_, "architecture": arch}})
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": children}).encode()
    digest = "sha256:" + hashlib.sha256(index).hexdigest()
    with open(os.path.join(out, digest.split(":")[1]), "wb") as f:
        f.write(index)
    layout = ctx.path("multiarch")
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json",
                   "digest": digest, "size": len(index), "annotations": {"org.opencontainers.image.ref.name": tag}}]}, f)
    return layout, digest, images


@wharf_only("wharf's export verb")
def test_export_fetches_missing_proxied_images_and_filters_platforms(ctx):
    with Mirror(ctx) as m:
        layout, index_digest, images = multiarch_layout(ctx, "v1")
        ctx.skopeo("copy", "--all", "--dest-tls-verify=false", "oci:%s:v1" % layout,
                   "docker://127.0.0.1:%d/library/multi:v1" % m.hub.origin_port)
        # Nothing is cached yet: export fetches through the upstream (and caches what it fetched).
        arm = ctx.path("arm.tar")
        run([SERVER_BIN, "export", m.wharf.config_path, arm, "docker.io/library/multi:v1", "--platform", "linux/arm64"])
        with tarfile.open(arm) as tar:
            names = set(tar.getnames())
            index = json.load(tar.extractfile("index.json"))
        want = images["linux/arm64"]
        check_eq([d["digest"] for d in index["manifests"]], [want["manifest_digest"]],
                 "index.json of a --platform linux/arm64 export")
        check_eq(index["manifests"][0]["annotations"]["io.wharf.repository"], "docker.io/library/multi",
                 "repository annotation")
        amd_layer = "blobs/sha256/" + images["linux/amd64"]["layers"][0].split(":")[1]
        check(amd_layer not in names, "the amd64 layer is in an arm64-only bundle")
        check(os.path.exists(m.stored_blob(want["layers"][0])), "export did not cache the fetched layer")

        full = ctx.path("full.tar")
        run([SERVER_BIN, "export", m.wharf.config_path, full, "multi:v1"])
        m.hub.go_down()
        b = ctx.registry(name="b")
        run([SERVER_BIN, "import", b.config_path, full])
        b.start()
        raw = ctx.skopeo("inspect", "--raw", "--tls-verify=false", "docker://%s/multi:v1" % b.host).stdout
        check_eq("sha256:" + hashlib.sha256(raw.encode()).hexdigest(), index_digest, "digest of the imported index")
        out = ctx.path("pulled")
        ctx.skopeo("copy", "--override-arch", "arm64", "--src-tls-verify=false", "docker://%s/multi:v1" % b.host,
                   "oci:" + out)
        check_copied(want, out, "arm64 pull from the imported registry")
