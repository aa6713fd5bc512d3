"""wharf import-registry: a registry:2 storage tree written by Debian's docker-registry (filesystem
driver) moves into wharf with every repository, tag, manifest and blob; corrupt content is reported and
skipped; a second run changes nothing; a hostile tree gets clear messages, never a crash."""
import hashlib
import http.client
import json
import os
import time

from harness import TestFailure, check, check_eq, timeout, wharf_only
from http_util import request
from test_gc import pull_and_compare, push, stored_files, wharf

REFERENCE = "/usr/bin/docker-registry"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def start_reference(ctx, name):
    """Debian's docker-registry on the registry:2 config a Registry writes; returns that Registry."""
    reg = ctx.registry(name=name)
    reg.proc = ctx.spawn([REFERENCE, "serve", reg.config_path], name)
    for _ in range(100):
        check(reg.proc.poll() is None, "docker-registry exited with %s: %s" % (reg.proc.returncode, reg.log_tail(3)))
        try:
            request("GET", reg.url + "/v2/", timeout=2)
            return reg
        except (OSError, http.client.HTTPException):
            time.sleep(0.1)
    raise TestFailure("docker-registry did not answer within 10 s: %s" % reg.log_tail(3))


def source_blob(root, digest):
    algo, hexpart = digest.split(":", 1)
    return os.path.join(root, "docker", "registry", "v2", "blobs", algo, hexpart[:2], hexpart, "data")


def import_registry(reg, source):
    """Runs the verb; returns (exit status, stdout + stderr)."""
    res = wharf("import-registry", reg.config_path, source, check_rc=False)
    check(0 <= res.returncode <= 2, "wharf import-registry crashed (exit %d): %s" % (res.returncode, res.stderr[-500:]))
    return res.returncode, res.stdout + res.stderr


def flip_byte(path, offset=100):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x01]))


@wharf_only("wharf import-registry is wharf's")
@timeout(420)
def test_import_registry_moves_a_docker_registry_tree(ctx):
    src = start_reference(ctx, "origin")
    app1 = ctx.image("app1", layers=2, size=64 << 10, seed=1101)
    app2 = ctx.image("app2", layers=1, size=64 << 10, seed=1102)
    cli = ctx.image("cli", layers=2, size=64 << 10, seed=1103)
    images = {"e2e/imp/app:v1": app1, "e2e/imp/app:latest": app1, "e2e/imp/app:v2": app2,
              "e2e/imp/tools/cli:1.0": cli}
    for ref, img in images.items():
        push(ctx, src, img, ref)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": app1["manifest_digest"], "size": app1["manifest_size"],
         "platform": {"architecture": "amd64", "os": "linux"}},
        {"mediaType": OCI_MANIFEST, "digest": app2["manifest_digest"], "size": app2["manifest_size"],
         "platform": {"architecture": "arm64", "os": "linux"}}]}
    r, index_digest = src.push_manifest("e2e/imp/app", "multi", index)
    check_eq(r.status, 201, "index PUT to docker-registry (%r)" % r)
    src.stop()

    dst = ctx.registry(name="wharf")
    rc, out = import_registry(dst, src.root)
    check_eq(rc, 0, "exit status of the import (%s)" % out[-600:])
    check("2 repositories" in out and "0 skipped" in out, "import summary: %s" % out[-400:])
    files = stored_files(dst.root)
    for img in (app1, app2, cli):
        for d in [img["manifest_digest"], img["config_digest"]] + img["layers"]:
            check(d in files, "%s is not in wharf's store after the import" % d)

    rc, out = import_registry(dst, src.root)
    check_eq(rc, 0, "exit status of the second import (%s)" % out[-600:])
    check("0 blobs imported" in out and "0 manifests" in out, "the second import changed something: %s" % out[-400:])
    check_eq(stored_files(dst.root), files, "wharf's store after the second import")
    res = wharf("check", dst.config_path, "--verify-content", check_rc=False)
    check_eq(res.returncode, 0, "wharf check --verify-content after the import (%s)" % res.stdout[-300:])

    dst.start()
    for n, (ref, img) in enumerate(images.items()):
        pull_and_compare(ctx, dst.host, ref, img, "pulled-%d" % n)
    got = dst.manifest("e2e/imp/app", "multi")
    check_eq(got.status, 200, "GET of the imported index (%r)" % got)
    check_eq(hashlib.sha256(got.body).hexdigest(), index_digest.split(":", 1)[1], "digest of the index bytes")
    tags = dst.req("GET", "/v2/e2e/imp/app/tags/list").json()["tags"]
    check_eq(sorted(tags), ["latest", "multi", "v1", "v2"], "tags of e2e/imp/app")
    catalog = dst.req("GET", "/v2/_catalog").json()["repositories"]
    check_eq(sorted(catalog), ["e2e/imp/app", "e2e/imp/tools/cli"], "catalog after the import")

    rc, out = import_registry(dst, src.root)  # a running server holds the store
    check_eq(rc, 1, "exit status of an import beside a running wharf")
    check("in use by a running wharf" in out, "the refusal does not say why: %s" % out[-300:])


@wharf_only("wharf import-registry is wharf's")
@timeout(300)
def test_import_registry_skips_corrupt_content(ctx):
    src = start_reference(ctx, "origin")
    good = ctx.image("good", layers=1, size=32 << 10, seed=1201)
    bad = ctx.image("bad", layers=2, size=32 << 10, seed=1202)
    push(ctx, src, good, "e2e/imp/good:v1")
    push(ctx, src, bad, "e2e/imp/bad:v1")
    src.stop()
    flip_byte(source_blob(src.root, bad["layers"][1]))

    dst = ctx.registry(name="wharf")
    rc, out = import_registry(dst, src.root)
    check_eq(rc, 1, "exit status with a corrupt blob (%s)" % out[-600:])
    check(bad["layers"][1] in out and "does not hash to its name" in out, "the corrupt blob is not named: %s" % out[-600:])
    check(bad["manifest_digest"] in out, "the manifest that needs it is not reported skipped: %s" % out[-600:])
    files = stored_files(dst.root)
    check(bad["layers"][1] not in files, "the corrupt blob was stored")
    check(bad["layers"][0] in files and good["layers"][0] in files, "the sound blobs were not imported")

    rc, out = import_registry(dst, src.root)
    check_eq(rc, 1, "exit status of the second run (the blob is still corrupt)")
    check_eq(stored_files(dst.root), files, "wharf's store after the second run")

    dst.start()
    pull_and_compare(ctx, dst.host, "e2e/imp/good:v1", good, "pulled-good")
    check_eq(dst.manifest("e2e/imp/bad", "v1").status, 404, "the image with the corrupt layer")


@wharf_only("wharf import-registry is wharf's")
@timeout(120)
def test_import_registry_hostile_source(ctx):
    root = ctx.mkdir("hostile")
    v2 = os.path.join(root, "docker", "registry", "v2")
    repos = os.path.join(v2, "repositories")
    os.makedirs(repos)
    os.symlink("/", os.path.join(repos, "escape"))  # a repository that leads out of the tree
    hexpart = "ab" * 32
    garbage = os.path.join(repos, "e2e", "garbage", "_layers", "sha256", hexpart)
    os.makedirs(garbage)
    with open(os.path.join(garbage, "link"), "wb") as f:
        f.write(b"\x00\xffnot a digest\n")
    huge = os.path.join(repos, "e2e", "huge", "_manifests", "tags", "t", "current")
    os.makedirs(huge)
    with open(os.path.join(huge, "link"), "wb") as f:
        f.truncate(64 << 20)
    # A layer whose data is a symbolic link to a file outside the tree.
    passwd = hashlib.sha256(open("/etc/passwd", "rb").read()).hexdigest()
    layer = os.path.join(repos, "e2e", "sneaky", "_layers", "sha256", passwd)
    os.makedirs(layer)
    with open(os.path.join(layer, "link"), "w") as f:
        f.write("sha256:" + passwd)
    blob_dir = os.path.join(v2, "blobs", "sha256", passwd[:2], passwd)
    os.makedirs(blob_dir)
    os.symlink("/etc/passwd", os.path.join(blob_dir, "data"))

    dst = ctx.registry(name="wharf")
    rc, out = import_registry(dst, root)
    check_eq(rc, 1, "exit status on a hostile tree (%s)" % out[-800:])
    check("escape" in out and "symbolic link" in out, "the escaping repository is not named: %s" % out[-800:])
    check("does not name this digest" in out, "the garbage link is not reported: %s" % out[-800:])
    check("not a link" in out, "the huge link file is not reported: %s" % out[-800:])
    check(passwd in out, "the symlinked blob is not reported: %s" % out[-800:])
    check_eq(stored_files(dst.root), {}, "wharf's store after a hostile import")
    rc, out = import_registry(dst, os.path.join(root, "missing"))
    check_eq(rc, 1, "exit status for a SOURCE without a registry tree")
    check("docker/registry/v2" in out, "the missing tree is not named: %s" % out[-300:])
