"""Store integrity: `wharf check` (the fsck) and its repairs, a damaged index refused at start, and a
damaged manifest file never served under its digest."""
import hashlib
import json
import os

from harness import SERVER_BIN, Skip, TestFailure, check, check_eq, run, timeout, wharf_only


def wharf(*args):
    """Runs a wharf CLI verb (any exit status); skips the test if this build does not know the verb."""
    res = run([SERVER_BIN] + list(args), timeout=120, check_rc=False)
    if "unknown command" in res.stderr:
        raise Skip("wharf %s is not wired into main.cpp in this build" % args[0])
    return res


def stored(root, digest):
    algo, hexpart = digest.split(":", 1)
    return os.path.join(root, "blobs", algo, hexpart[:2], hexpart)


def flip_byte(path, offset=0):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x01]))


@wharf_only("wharf check is wharf's")
def test_check_help_documents_the_verb(ctx):
    res = wharf("check", "--help")
    check_eq(res.returncode, 0, "exit status of wharf check --help")
    for word in ("--verify-content", "--repair", "Exit status"):
        check(word in res.stdout, "wharf check --help does not mention %s: %s" % (word, res.stdout[:200]))


@wharf_only("wharf check is wharf's")
@timeout(240)
def test_check_finds_and_repairs_what_it_can(ctx):
    reg = ctx.registry().start()
    img = reg.push_image("e2e/check/app", "v1", layers=2, size=4096, seed=31)
    lone = reg.push_blob("e2e/check/app", b"a blob no manifest uses")
    reg.stop()
    res = wharf("check", reg.config_path)
    check_eq(res.returncode, 0, "exit status of wharf check on a sound store (%s)" % res.stdout[-300:])
    check("0 problems" in res.stdout, "wharf check on a sound store: %s" % res.stdout[-300:])

    os.remove(stored(reg.root, lone))
    os.remove(stored(reg.root, img["layers"][1]))
    res = wharf("check", reg.config_path)
    check_eq(res.returncode, 1, "exit status with two missing files")
    check(lone in res.stdout and "repairable" in res.stdout, "the unused missing blob is not named: %s" % res.stdout)
    check(img["layers"][1] in res.stdout and "cannot be repaired" in res.stdout,
          "the missing layer is not named as unrepairable: %s" % res.stdout)

    res = wharf("check", reg.config_path, "--repair")
    check_eq(res.returncode, 1, "exit status of --repair when a layer is still missing")
    check("1 left" in res.stdout, "--repair should leave only the missing layer: %s" % res.stdout[-300:])
    reg.start()
    check_eq(reg.req("HEAD", "/v2/e2e/check/app/blobs/" + lone).status, 404, "HEAD of the dropped blob")
    reg.stop()

    # Pushing the image again fixes the rest.
    reg.start()
    reg.push_image("e2e/check/app", "v1", layers=2, size=4096, seed=31)
    reg.stop()
    res = wharf("check", reg.config_path, "--verify-content")
    check_eq(res.returncode, 0, "exit status after the image was pushed again (%s)" % res.stdout[-300:])


@wharf_only("wharf check is wharf's")
@timeout(240)
def test_check_verify_content_reads_every_blob(ctx):
    reg = ctx.registry().start()
    img = reg.push_image("e2e/check/v", "v1", layers=1, size=8192, seed=32)
    reg.stop()
    flip_byte(stored(reg.root, img["layers"][0]), 100)
    check_eq(wharf("check", reg.config_path).returncode, 0, "wharf check without --verify-content (sizes only)")
    res = wharf("check", reg.config_path, "--verify-content")
    check_eq(res.returncode, 1, "wharf check --verify-content on a changed layer")
    check(img["layers"][0] in res.stdout and "does not hash" in res.stdout,
          "the changed layer is not named: %s" % res.stdout[-300:])


@wharf_only("wharf's index checks")
@timeout(120)
def test_truncated_index_is_refused_with_a_message(ctx):
    reg = ctx.registry().start()
    for i in range(40):
        reg.push_image("e2e/check/t%d" % i, "v1", layers=2, size=512, seed=100 + i)
    reg.stop()
    data = os.path.join(reg.root, "index", "data.mdb")
    size = os.path.getsize(data)
    check(size > 8 * 4096, "data.mdb is only %d bytes" % size)
    os.truncate(data, 4 * 4096)
    proc = ctx.spawn([SERVER_BIN, "serve", reg.config_path], "truncated")
    try:
        rc = proc.wait(timeout=30)
    except Exception:  # noqa: BLE001
        raise TestFailure("wharf serve keeps running on a truncated index") from None
    log = open(ctx.path("truncated.log"), errors="replace").read()
    check(rc == 1, "wharf serve on a truncated index exited %s (a negative status is a signal): %s" % (rc, log[-300:]))
    check("truncated" in log and "data.mdb" in log, "the message does not say what is wrong: %s" % log[-300:])
    res = wharf("check", reg.config_path)
    check_eq(res.returncode, 1, "wharf check on a truncated index")
    check("truncated" in res.stdout, "wharf check does not say the index is truncated: %s" % res.stdout[-300:])


@wharf_only("wharf's manifest read check")
@timeout(120)
def test_damaged_manifest_is_never_served_under_its_digest(ctx):
    reg = ctx.registry().start()
    img = reg.push_image("e2e/check/m", "v1", layers=1, size=1024, seed=33)
    digest = img["manifest_digest"]
    check_eq(reg.manifest("e2e/check/m", "v1").status, 200, "GET of the manifest before the damage")
    reg.stop()  # the server keeps verified manifests in memory: start afresh
    flip_byte(stored(reg.root, digest), 10)
    reg.start()
    for ref in ("v1", digest):
        r = reg.manifest("e2e/check/m", ref)
        check(r.status != 200, "a damaged manifest was served (GET %s answered 200 with Docker-Content-Digest %s)"
              % (ref, r.header("Docker-Content-Digest")))
        check_eq(r.status, 503, "status of GET %s of a damaged manifest" % ref)
        check_eq(json.loads(r.body)["errors"][0]["code"], "UNAVAILABLE", "error code for a damaged manifest")
    log = open(ctx.path(reg.name + ".log"), errors="replace").read()
    check("stored manifest %s is damaged" % digest in log, "no error line names the damaged manifest")
    # Pushing the same manifest again replaces the damaged copy.
    r, d = reg.push_manifest("e2e/check/m", "v1", img["manifest"])
    check_eq(r.status, 201, "PUT of the same manifest again")
    r = reg.manifest("e2e/check/m", "v1")
    check_eq(r.status, 200, "GET after the manifest was pushed again")
    check_eq("sha256:" + hashlib.sha256(r.body).hexdigest(), digest, "digest of the bytes served")
