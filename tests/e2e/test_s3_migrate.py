"""The offline verbs on an S3-backed wharf, against the shared Ceph RGW (tests/e2e/ceph.py, a bucket per
use): import-registry from Debian's docker-registry with its filesystem driver (two images, four tags, a
multi-arch index) into wharf on S3, and from
docker-registry with its s3 driver (a bucket of the same RGW) into wharf on the filesystem, a damaged
source blob refused by digest with nothing half-imported visible; backup + restore and export + import
round trips on S3 (and a backup moved between the filesystem and S3 both ways); check finding an object
deleted from the bucket, a damaged one and a stray one, and --repair fixing what it can."""
import hashlib
import os

import ceph
import harness
from harness import check, check_eq, run, SERVER_BIN, wharf_only
from registry import to_yaml
from test_gc import pull_and_compare, push, stored_files
from test_import_registry import OCI_INDEX, OCI_MANIFEST, REFERENCE, start_reference
from test_s3 import S3_TIMEOUT, bucket, object_key, object_status, rgw, s3_registry


def wharf_in(reg, *args, env=None):
    """Runs a wharf verb from the server's directory (where its index and staging live: ./data);
    returns (exit status, stdout + stderr)."""
    res = run([SERVER_BIN] + list(args), timeout=300, check_rc=False, env=env, cwd=reg.ctx.dir)
    check(0 <= res.returncode <= 2, "wharf %s crashed (exit %d): %s" % (args[0], res.returncode, res.stderr[-500:]))
    return res.returncode, res.stdout + res.stderr


def start_reference_s3(ctx, gw, name):
    """Debian's docker-registry with its s3 driver on bucket `name` (rootdirectory /origin)."""
    reg = ctx.registry(name="origin-s3")
    cfg = {"version": 0.1, "log": {"level": "info"},
           "storage": {"s3": {"region": gw.region, "bucket": name, "accesskey": gw.access_key,
                              "secretkey": gw.secret_key, "regionendpoint": gw.endpoint, "secure": False,
                              "v4auth": True, "rootdirectory": "/origin"},
                       "delete": {"enabled": True}, "redirect": {"disable": True}},
           "http": {"addr": reg.host}}
    with open(reg.config_path, "w") as f:
        f.write(to_yaml(cfg) + "\n")
    # aws-sdk-go refuses to start with AWS_CA_BUNDLE set, even for an http endpoint (tests/bench/s3.py).
    reg.proc = ctx.spawn([REFERENCE, "serve", reg.config_path], reg.name, env={"AWS_CA_BUNDLE": ""})
    harness.wait_for(lambda: reg.proc.poll() is not None or reg.req("GET", "/v2/", auth=False).status == 200,
                     "docker-registry on S3 to answer", tries=150)
    check(reg.proc.poll() is None, "docker-registry on S3 exited: %s" % reg.log_tail(5))
    return reg


@wharf_only("wharf import-registry is wharf's")
@harness.timeout(S3_TIMEOUT)
def test_s3_import_registry_from_a_docker_registry_directory(ctx):
    gw = rgw()
    src = start_reference(ctx, "origin")
    app = ctx.image("app", layers=3, size=96 << 10, seed=2101)
    tool = ctx.image("tool", layers=1, size=64 << 10, seed=2102)
    images = {"e2e/mig/app:v1": app, "e2e/mig/app:stable": app, "e2e/mig/app:arm64": tool, "e2e/mig/tool:1.0": tool}
    for ref, img in images.items():
        push(ctx, src, img, ref)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": img["manifest_digest"], "size": img["manifest_size"],
         "platform": {"architecture": arch, "os": "linux"}} for img, arch in ((app, "amd64"), (tool, "arm64"))]}
    r, index_digest = src.push_manifest("e2e/mig/app", "multi", index)
    check_eq(r.status, 201, "index PUT to docker-registry (%r)" % r)
    src.stop()

    name = bucket(ctx, gw)
    dst = s3_registry(ctx, gw, name)
    rc, out = wharf_in(dst, "import-registry", dst.config_path, src.root)
    check_eq(rc, 0, "exit status of the import into S3 (%s)" % out[-600:])
    check("2 repositories" in out and "0 skipped" in out, "import summary: %s" % out[-400:])
    check_eq(object_status(gw, name, index_digest), 200, "object of the index in the bucket")
    for img in (app, tool):
        for d in [img["manifest_digest"], img["config_digest"]] + img["layers"]:
            check_eq(object_status(gw, name, d), 200, "object of %s in the bucket after the import" % d)
    check_eq(stored_files(dst.ctx.path("data")), {}, "blobs kept on local disk with storage.s3")
    rc, out = wharf_in(dst, "import-registry", dst.config_path, src.root)
    check_eq(rc, 0, "exit status of the second import (%s)" % out[-600:])
    check("0 blobs imported" in out and "0 manifests" in out, "the second import changed something: %s" % out[-400:])
    rc, out = wharf_in(dst, "check", dst.config_path, "--verify-content")
    check_eq(rc, 0, "wharf check --verify-content on S3 after the import (%s)" % out[-400:])

    dst.start()
    for n, (ref, img) in enumerate(images.items()):
        pull_and_compare(ctx, dst.host, ref, img, "pulled-%d" % n)
    got = dst.manifest("e2e/mig/app", "multi")
    check_eq(got.status, 200, "GET of the imported multi-arch index (%r)" % got)
    check_eq(hashlib.sha256(got.body).hexdigest(), index_digest.split(":", 1)[1], "digest of the index bytes")
    tags = dst.req("GET", "/v2/e2e/mig/app/tags/list").json()["tags"]
    check_eq(sorted(tags), ["arm64", "multi", "stable", "v1"], "tags of e2e/mig/app")


@wharf_only("wharf import-registry is wharf's")
@harness.timeout(S3_TIMEOUT)
def test_s3_import_registry_from_a_bucket_refuses_a_damaged_blob(ctx):
    gw = rgw()
    origin = bucket(ctx, gw)
    src = start_reference_s3(ctx, gw, origin)
    good = ctx.image("good", layers=2, size=10 << 20, seed=2201)  # over 8 MiB: read in several ranged GETs
    bad = ctx.image("bad", layers=2, size=32 << 10, seed=2202)
    push(ctx, src, good, "e2e/mig/good:v1")
    push(ctx, src, good, "e2e/mig/good:latest")
    push(ctx, src, bad, "e2e/mig/bad:v1")
    src.stop()
    # One layer of `bad` damaged in the source bucket (same size, one byte flipped).
    key = "/%s/%s" % (origin, object_key(bad["layers"][1]).replace("registry/", "origin/", 1))
    status, data = ceph.s3_request(gw, "GET", key)
    check_eq(status, 200, "GET of the source object %s" % key)
    status, _ = ceph.s3_request(gw, "PUT", key, data[:50] + bytes([data[50] ^ 1]) + data[51:])
    check_eq(status, 200, "PUT of the damaged object")

    dst = ctx.registry(name="wharf")
    env = {"AWS_ACCESS_KEY_ID": gw.access_key, "AWS_SECRET_ACCESS_KEY": gw.secret_key}
    args = ("import-registry", dst.config_path, "s3://%s/origin" % origin, "--s3-endpoint", gw.endpoint,
            "--s3-region", gw.region)
    rc, out = wharf_in(dst, *args, env={"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""})
    check_eq(rc, 1, "exit status without credentials (%s)" % out[-300:])
    check("AWS_ACCESS_KEY_ID" in out, "the missing credentials are not named: %s" % out[-300:])
    rc, out = wharf_in(dst, *args, env=env)
    check_eq(rc, 1, "exit status with a damaged blob (%s)" % out[-600:])
    check(bad["layers"][1] in out and "does not hash to its name" in out, "the damaged blob is not named: %s" % out[-600:])
    check(bad["manifest_digest"] in out, "the manifest that needs it is not reported skipped: %s" % out[-600:])
    check(gw.secret_key not in out, "the secret key appears in the output")
    files = stored_files(dst.root)
    check(bad["layers"][1] not in files, "the damaged blob was stored")
    for d in [good["manifest_digest"], good["config_digest"]] + good["layers"]:
        check(d in files, "%s of the sound image is not in wharf's store" % d)

    dst.start()
    pull_and_compare(ctx, dst.host, "e2e/mig/good:v1", good, "pulled-v1")
    pull_and_compare(ctx, dst.host, "e2e/mig/good:latest", good, "pulled-latest")
    check_eq(dst.manifest("e2e/mig/bad", "v1").status, 404, "the image with the damaged layer")
    check_eq(dst.manifest("e2e/mig/bad", bad["manifest_digest"]).status, 404, "the manifest by digest")


@wharf_only("wharf backup, export and check are wharf's")
@harness.timeout(S3_TIMEOUT)
def test_s3_backup_restore_export_import_and_check(ctx):
    gw = rgw()
    name = bucket(ctx, gw)
    reg = s3_registry(ctx, gw, name, redirect=False).start()
    img = ctx.image("app", layers=2, size=6 << 20, seed=2301)  # over the 5 MiB chunk size: multipart
    push(ctx, reg, img, "e2e/bk/app:v1")
    digests = [img["manifest_digest"], img["config_digest"]] + img["layers"]

    # Backups while serving: the index alone (blobs checked in the bucket), and with the blobs.
    rc, out = wharf_in(reg, "backup", reg.config_path, ctx.path("bk-index"))
    check_eq(rc, 0, "exit status of the index backup (%s)" % out[-400:])
    check("4 blobs checked in bucket %s" % name in out, "index backup summary: %s" % out[-400:])
    check(not os.path.exists(ctx.path("bk-index", "blobs")), "an index-only backup holds blobs")
    rc, out = wharf_in(reg, "backup", reg.config_path, ctx.path("bk-full"), "--include-blobs")
    check_eq(rc, 0, "exit status of the backup with blobs (%s)" % out[-400:])
    check_eq(sorted(stored_files(ctx.path("bk-full"))), sorted(digests), "blobs of the full backup")
    rc, out = wharf_in(reg, "export", reg.config_path, ctx.path("app.tar"), "e2e/bk/app:v1")
    check_eq(rc, 0, "exit status of the export (%s)" % out[-400:])
    orphan = reg.push_blob("e2e/bk/app", os.urandom(4096))  # recorded, but no manifest needs it
    reg.stop()

    # Restore of the full backup into a new bucket and root: the blobs are uploaded from the backup.
    name2 = bucket(ctx, gw)
    sub = harness.Context(ctx.name + "-restored", ctx.mkdir("restored"))
    ctx.cleanups.append(sub.close)
    reg2 = s3_registry(sub, gw, name2, redirect=False)
    rc, out = wharf_in(reg2, "restore", reg2.config_path, ctx.path("bk-full"))
    check_eq(rc, 0, "exit status of the restore into S3 (%s)" % out[-400:])
    for d in digests:
        check_eq(object_status(gw, name2, d), 200, "object of %s after the restore" % d)
    # The index-only backup restores beside the objects already in the bucket.
    rc, out = wharf_in(reg2, "restore", reg2.config_path, ctx.path("bk-index"), "--force")
    check_eq(rc, 0, "exit status of the index-only restore (%s)" % out[-400:])
    check("4 blobs already in bucket" in out, "index-only restore summary: %s" % out[-400:])
    reg2.start()
    pull_and_compare(sub, reg2.host, "e2e/bk/app:v1", img, "pulled-restored")
    reg2.stop()

    # The full backup restores onto the filesystem too; a filesystem backup of that restores into S3
    # (how a filesystem wharf moves onto a bucket), every blob then served from the bucket.
    fs_sub = harness.Context(ctx.name + "-fs", ctx.mkdir("on-fs"))
    ctx.cleanups.append(fs_sub.close)
    on_fs = fs_sub.registry(name="wharf-fs")
    rc, out = wharf_in(on_fs, "restore", on_fs.config_path, ctx.path("bk-full"), "--force")
    check_eq(rc, 0, "exit status of the restore onto the filesystem (%s)" % out[-400:])
    rc, out = wharf_in(on_fs, "backup", on_fs.config_path, ctx.path("bk-fs"))
    check_eq(rc, 0, "exit status of the filesystem backup (%s)" % out[-400:])
    on_fs.start()
    pull_and_compare(fs_sub, on_fs.host, "e2e/bk/app:v1", img, "pulled-fs")
    on_fs.stop()
    name4 = bucket(ctx, gw)
    sub4 = harness.Context(ctx.name + "-moved", ctx.mkdir("moved"))
    ctx.cleanups.append(sub4.close)
    reg4 = s3_registry(sub4, gw, name4)
    rc, out = wharf_in(reg4, "restore", reg4.config_path, ctx.path("bk-fs"))
    check_eq(rc, 0, "exit status of the filesystem backup restored into S3 (%s)" % out[-400:])
    check("4 uploaded" in out, "restore of the filesystem backup into S3: %s" % out[-400:])
    reg4.start()
    res = reg4.req("GET", "/v2/e2e/bk/app/blobs/" + img["layers"][0])
    check_eq(res.status, 307, "a moved blob is served from the bucket (redirect)")
    pull_and_compare(sub4, reg4.host, "e2e/bk/app:v1", img, "pulled-moved")
    reg4.stop()

    # Import of the exported bundle into a third bucket and root.
    name3 = bucket(ctx, gw)
    sub3 = harness.Context(ctx.name + "-imported", ctx.mkdir("imported"))
    ctx.cleanups.append(sub3.close)
    reg3 = s3_registry(sub3, gw, name3, redirect=False)
    rc, out = wharf_in(reg3, "import", reg3.config_path, ctx.path("app.tar"))
    check_eq(rc, 0, "exit status of the import of the bundle (%s)" % out[-400:])
    reg3.start()
    pull_and_compare(sub3, reg3.host, "e2e/bk/app:v1", img, "pulled-imported")
    reg3.stop()

    # check on the first bucket: a layer's object deleted, a stray object added, a manifest damaged.
    layer = img["layers"][1]
    status, _ = ceph.s3_request(gw, "DELETE", "/%s/%s" % (name, object_key(layer)))
    check_eq(status, 204, "DELETE of a layer's object")
    stray = bytes(range(256)) * 8
    stray_digest = "sha256:" + hashlib.sha256(stray).hexdigest()
    status, _ = ceph.s3_request(gw, "PUT", "/%s/%s" % (name, object_key(stray_digest)), stray)
    check_eq(status, 200, "PUT of a stray object")
    status, _ = ceph.s3_request(gw, "DELETE", "/%s/%s" % (name, object_key(orphan)))
    check_eq(status, 204, "DELETE of the orphan blob's object")
    config = img["config_digest"]
    status, data = ceph.s3_request(gw, "GET", "/%s/%s" % (name, object_key(config)))
    check_eq(status, 200, "GET of the config's object")
    status, _ = ceph.s3_request(gw, "PUT", "/%s/%s" % (name, object_key(config)), bytes([data[0] ^ 1]) + data[1:])
    check_eq(status, 200, "PUT of a damaged config object (same size)")
    rc, out = wharf_in(reg, "check", reg.config_path, "--verify-content")
    check_eq(rc, 1, "exit status of check with a missing object (%s)" % out[-600:])
    check("blob %s: its file is missing; manifest" % layer in out, "the deleted layer is not reported: %s" % out[-900:])
    check("blob %s: its file's content does not hash to its digest" % config in out,
          "the damaged config object is not reported: %s" % out[-900:])
    check("blob %s: its file is missing; no manifest needs it" % orphan in out and "[repairable]" in out,
          "the orphan's missing object is not reported repairable: %s" % out[-900:])
    check("stray: %s" % stray_digest in out and "1 objects in the bucket without a record" in out,
          "the stray object is not reported: %s" % out[-900:])
    rc, out = wharf_in(reg, "check", reg.config_path, "--verify-content", "--repair")
    check_eq(rc, 1, "a missing layer a manifest needs cannot be repaired (%s)" % out[-900:])
    check("[repaired]" in out and "cannot be repaired" in out, "check --repair output: %s" % out[-900:])
    rc, out = wharf_in(reg, "check", reg.config_path, "--verify-content")
    check(orphan not in out, "the orphan's record is still there after --repair: %s" % out[-900:])
    check(layer in out and config in out, "what --repair cannot fix is still reported: %s" % out[-900:])
    check_eq(object_status(gw, name, stray_digest), 200, "check --repair removed the stray (garbage-collect does)")
