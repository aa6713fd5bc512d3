"""wharf backup while the server takes pushes, and wharf restore into a fresh root (or, with --force,
over an existing one)."""
import json
import os
import threading

from harness import check, check_eq, timeout, wharf_only
from test_gc import pull_and_compare, push, stored_files, wharf


def listed_images(reg):
    """[(repo, tag)] of every tag the registry lists (catalog, then tags/list)."""
    out = []
    r = reg.req("GET", "/v2/_catalog?n=1000")
    check_eq(r.status, 200, "catalog of the restored registry (%r)" % r)
    for repo in r.json()["repositories"]:
        t = reg.req("GET", "/v2/%s/tags/list" % repo)
        check_eq(t.status, 200, "tags of %s (%r)" % (repo, t))
        out += [(repo, tag) for tag in (t.json().get("tags") or [])]
    return sorted(out)


@wharf_only("wharf backup / restore are wharf's verbs")
@timeout(420)
def test_backup_during_push_restores_to_a_working_registry(ctx):
    reg = ctx.registry().start()
    base = ctx.image("base", layers=2, size=256 << 10, seed=701)
    push(ctx, reg, base, "e2e/bk/base:v1")
    images = {"e2e/bk/base:v1": base}
    for i in range(6):
        images["e2e/bk/app%d:v1" % i] = ctx.image("app%d" % i, layers=2, size=256 << 10, seed=710 + i)
    errors, started = [], threading.Event()

    done = []

    def pusher():
        try:
            for ref, img in images.items():
                if ref != "e2e/bk/base:v1":
                    push(ctx, reg, img, ref)
                    done.append(ref)
                    if len(done) == 2:  # back up while the later images are being pushed
                        started.set()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            started.set()

    t = threading.Thread(target=pusher, daemon=True)
    t.start()
    check(started.wait(120), "the pusher did not push two images within 120 s")
    before_backup = list(done)
    backup_dir = ctx.path("backup")
    res = wharf("backup", reg.config_path, backup_dir)
    t.join(timeout=300)
    check(not t.is_alive(), "the pusher is still running after 300 s")
    check(not errors, "a push failed during the backup: %s" % (errors[:1],))
    check(os.path.exists(os.path.join(backup_dir, "index", "data.mdb")), "no index/data.mdb in the backup: " + res.stdout)

    fresh = ctx.registry(name="restored")
    wharf("restore", fresh.config_path, backup_dir)
    fresh.start()
    listed = listed_images(fresh)
    for ref in ["e2e/bk/base:v1"] + before_backup:
        check(tuple(ref.split(":")) in listed, "%s, pushed before the backup, is not listed: %s" % (ref, listed))
    for repo, tag in listed:
        ref = "%s:%s" % (repo, tag)
        check(ref in images, "the restored registry lists %s, which was never pushed" % ref)
        pull_and_compare(ctx, fresh.host, ref, images[ref], "pulled-" + repo.replace("/", "_"))
    # The live registry kept everything, too.
    pull_and_compare(ctx, reg.host, "e2e/bk/app5:v1", images["e2e/bk/app5:v1"], "pulled-live")


@wharf_only("wharf backup / restore are wharf's verbs")
@timeout(300)
def test_restore_refuses_a_non_empty_root_without_force(ctx):
    reg = ctx.registry().start()
    img = ctx.image("one", layers=1, size=64 << 10, seed=720)
    push(ctx, reg, img, "e2e/bk/one:v1")
    backup_dir = ctx.path("backup")
    wharf("backup", reg.config_path, backup_dir)
    reg.stop()

    other = ctx.registry(name="other").start()
    push(ctx, other, ctx.image("two", layers=1, size=64 << 10, seed=721), "e2e/bk/two:v1")
    other.stop()
    before = stored_files(other.root)
    res = wharf("restore", other.config_path, backup_dir, check_rc=False)
    check(res.returncode != 0, "restore over a non-empty root succeeded without --force")
    check(other.root in res.stderr, "the refusal does not name the root directory: %s" % res.stderr.strip())
    check_eq(stored_files(other.root), before, "files in the root after the refused restore")

    wharf("restore", other.config_path, backup_dir, "--force")
    other.start()
    pull_and_compare(ctx, other.host, "e2e/bk/one:v1", img, "pulled-one")
    check_eq(other.manifest("e2e/bk/two", "v1").status, 404, "the replaced root's own image after restore --force")
    res = wharf("backup", reg.config_path, backup_dir, check_rc=False)
    check(res.returncode != 0 and backup_dir in res.stderr, "backup into a non-empty directory: %s" % res.stderr.strip())
