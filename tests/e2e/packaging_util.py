"""Shared by the packaging tests: build wharf's container image with deploy/image/build-oci-layout,
load it into a test dockerd, and push/pull a generated image through a registry with docker."""
import json
import os
import re
import shutil

from harness import (REPO_ROOT, SERVER_BIN, SERVER_KIND, Skip, TestFailure, check, check_eq, run, tail,
                     wait_for)

BUILD_SCRIPT = os.path.join(REPO_ROOT, "deploy", "image", "build-oci-layout")
SIZE_LIMIT = 40 * 1000 * 1000  # the bound on the uncompressed image


def skip_unless_packaging():
    """Packaging tests check files around wharf, not wharf's code: once per CI run, in the release stage."""
    if os.environ.get("E2E_SANITIZED") == "1":
        raise Skip("packaging is tested in the release stage only")
    if SERVER_KIND != "wharf":
        raise Skip("packaging tests need the wharf binary")


def build_layout(ctx, out, tag="test"):
    """Runs the build script on the binary under test; returns (layout dir, tag, uncompressed bytes)."""
    res = run([BUILD_SCRIPT, "--binary", SERVER_BIN, "--out", out, "--tag", tag], timeout=300)
    m = re.search(r"(\d+) bytes uncompressed", res.stdout)
    check(m, "build-oci-layout printed no size: " + tail(res.stdout + res.stderr, 2))
    return out, tag, int(m.group(1))


def load_image(ctx, dk, layout, tag, name):
    """skopeo copy oci:LAYOUT:TAG docker-daemon:NAME into the test's dockerd; returns NAME."""
    ctx.skopeo("copy", "--dest-daemon-host", dk.env["DOCKER_HOST"], "oci:%s:%s" % (layout, tag),
               "docker-daemon:" + name)
    return name


def wait_healthy(dk, container, tries=90):
    """Waits (1 s apart, bounded) for docker's HEALTHCHECK status of `container` to be healthy."""
    def healthy():
        out = dk.docker("inspect", "--format", "{{.State.Status}} {{.State.Health.Status}}", container,
                        check_rc=False, timeout=30)
        state = out.stdout.split()
        if state and state[0] in ("exited", "dead"):
            logs = dk.docker("logs", container, check_rc=False).stderr
            raise TestFailure("container %s %s: %s" % (container, state[0], tail(logs, 3)))
        if len(state) > 1 and state[1] == "unhealthy":
            probe = dk.docker("inspect", "--format", "{{json .State.Health.Log}}", container, check_rc=False)
            raise TestFailure("container %s is unhealthy: %s" % (container, tail(probe.stdout, 1)[-300:]))
        return len(state) > 1 and state[1] == "healthy"
    wait_for(healthy, "container %s to be healthy" % container, tries=tries, interval=1.0)


def container_uid(dk, container):
    """The real UID of the container's main process, read from the host's /proc."""
    pid = int(dk.docker("inspect", "--format", "{{.State.Pid}}", container).stdout.strip())
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    raise TestFailure("no Uid line for the container's process %d" % pid)


def docker_archive(ctx, img, ref):
    """A docker-archive tar of a generated image named `ref`, for `docker load`."""
    archive = ctx.path(re.sub(r"[^a-z0-9]", "_", ref) + ".tar")
    ctx.skopeo("copy", "oci:" + img["dir"], "docker-archive:%s:%s" % (archive, ref))
    return archive


def image_id(dk, ref):
    return dk.docker("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()


def push_pull(ctx, dk, ref, img):
    """docker load + push `ref`, remove it locally, pull it back and compare the image ID."""
    dk.docker("load", "-i", docker_archive(ctx, img, ref))
    pushed = dk.docker("push", ref).stdout
    check(re.search(r"digest: sha256:[0-9a-f]{64}", pushed), "docker push printed no digest: " + tail(pushed, 3))
    pull_fresh(dk, ref, img)


def pull_fresh(dk, ref, img):
    """Removes `ref` locally, pulls it and checks the image ID is the generated image's config digest."""
    dk.docker("rmi", ref, check_rc=False)
    check(dk.docker("image", "inspect", ref, check_rc=False).returncode != 0, "%s still present after rmi" % ref)
    dk.docker("pull", ref)
    check_eq(image_id(dk, ref), img["config_digest"], "image ID of %s after docker pull" % ref)


DEBIAN_ROOT = os.environ.get("WHARF_DEBIAN_ROOT", "/var/cache/wharf-ci/bookworm-root")
# What may appear in a root after install + purge besides what was there before: dpkg's own records and
# logs, the backups adduser leaves of the files it edited (the user itself stays, as policy advises), and
# /run (a tmpfs on a booted system: adduser's lock, systemd-analyze's scratch files).
PURGE_ALLOWED = ("var/lib/dpkg/", "var/log/", "var/cache/", "tmp/", "proc/", "run/", "etc/passwd-", "etc/group-",
                 "etc/shadow-", "etc/gshadow-", "etc/subuid-", "etc/subgid-", "usr/sbin/policy-rc.d")


def source_copy(dest):
    """Copies the tracked (and new, not ignored) files of the tree to `dest`, so builds leave it clean."""
    names = run(["git", "-C", REPO_ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard"]).stdout
    for name in sorted(set(filter(None, names.split("\0")))):
        src = os.path.join(REPO_ROOT, name)
        if not os.path.lexists(src):
            continue  # deleted in the work tree, not yet in a commit
        os.makedirs(os.path.dirname(os.path.join(dest, name)), exist_ok=True)
        shutil.copy2(src, os.path.join(dest, name), follow_symlinks=False)
    return dest


def tree(root):
    """Every path under `root`, relative, directories with a trailing slash (proc/ not entered)."""
    out = set()
    for d, dirs, files in os.walk(root):
        rel = os.path.relpath(d, root)
        if rel == "proc":
            dirs[:] = []
        for name in dirs:
            out.add(os.path.normpath(os.path.join(rel, name)) + "/")
        for name in files:
            out.add(os.path.normpath(os.path.join(rel, name)))
    return out


KUBECTL = os.environ.get("WHARF_KUBECTL", "/var/cache/wharf-ci/kubernetes-client/usr/bin/kubectl")


def kustomize(directory):
    """Renders a kustomization with Debian's kubectl, then has kubectl itself (offline: `label --local`)
    turn the YAML into JSON objects; returns {(kind, name): object}."""
    check(os.access(KUBECTL, os.X_OK), "no Debian kubectl at %s: tests/run's install phase unpacks it "
                                      "(tests/e2e/packaging-setup)" % KUBECTL)
    env = {"KUBECONFIG": "/dev/null"}
    rendered = run([KUBECTL, "kustomize", directory], env=env, timeout=60).stdout
    out = run([KUBECTL, "label", "--local", "-f", "-", "-o", "json", "wharf-test/rendered=yes"], env=env,
              input=rendered, timeout=60).stdout
    objects, decoder, pos = {}, json.JSONDecoder(), 0
    while pos < len(out):
        while pos < len(out) and out[pos].isspace():
            pos += 1
        if pos == len(out):
            break
        obj, pos = decoder.raw_decode(out, pos)
        key = (obj["kind"], obj["metadata"]["name"])
        check(key not in objects, "%s %s rendered twice" % key)
        objects[key] = obj
    check(objects, "kubectl kustomize %s rendered nothing" % directory)
    return objects


def only(objects, kind):
    """The one object of `kind`; fails when there are none or several."""
    found = [o for (k, _), o in objects.items() if k == kind]
    check_eq(len(found), 1, "number of %s objects" % kind)
    return found[0]
