"""A real Docker engine against the registry: login, load, push, pull, and a push to a second
repository that mounts the layers across repositories. dockerd (and the containerd it starts) keep
all their state under the test directory and are stopped by PID at the end.

If dockerd cannot start on this machine the test fails with the reason; it never skips."""
import json
import os
import re

from harness import (DOCKER_CLI, CommandFailed, TestFailure, check, check_eq, child_pids, pid_alive, run, stop_process, tail,
                     timeout, unmount_all, wait_for)


class Dockerd:
    """dockerd with its own data-root, exec-root, pidfile, socket, config and trust key."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.base = ctx.mkdir("docker")
        # exec-root holds containerd's socket; unix socket paths are limited to 107 bytes.
        self.exec_root = ctx.short_dir("wd-")
        self.sock = os.path.join(self.exec_root, "d.sock")
        cfg = os.path.join(self.base, "daemon.json")
        with open(cfg, "w") as f:
            json.dump({"deprecated-key-path": os.path.join(self.base, "key.json"), "debug": False}, f)
        self.cmd = ["dockerd", "--config-file", cfg, "--data-root", os.path.join(self.base, "data"),
                    "--exec-root", self.exec_root, "--pidfile", os.path.join(self.base, "dockerd.pid"),
                    "-H", "unix://" + self.sock, "--storage-driver", "vfs", "--iptables=false",
                    "--ip6tables=false", "--ip-masq=false", "--bridge=none"]
        self.env = {"DOCKER_HOST": "unix://" + self.sock, "DOCKER_CONFIG": ctx.mkdir("docker-cli")}
        self.proc = None
        self.containerd = set()

    def start(self):
        self.proc = self.ctx.spawn(self.cmd, "dockerd")
        self.ctx.cleanups.append(self.stop)

        def ready():
            if self.proc.poll() is not None:
                raise TestFailure("dockerd exited with %s: %s" % (self.proc.returncode, self.log_tail()))
            self.containerd.update(p for p in child_pids(self.proc.pid) if "containerd" in cmdline(p))
            return self.docker("info", "--format", "{{.ServerVersion}}", check_rc=False, timeout=10).returncode == 0
        try:
            wait_for(ready, "dockerd to answer `docker info`", tries=150, interval=0.2)
        except TestFailure as exc:
            raise TestFailure("dockerd did not start: %s; %s" % (exc, self.log_tail())) from None
        # dockerd starts containerd during init; record it (its pidfile too) so it can be checked at the end.
        self.containerd.update(p for p in child_pids(self.proc.pid) if "containerd" in cmdline(p))
        pidfile = os.path.join(self.exec_root, "containerd", "containerd.pid")
        if os.path.exists(pidfile):
            self.containerd.add(int(open(pidfile).read().strip() or 0))
        self.containerd.discard(0)
        return self

    def docker(self, *args, check_rc=True, timeout=180, input=None):
        """Runs the docker CLI against this daemon. A failure quotes the daemon's own errors too: the
        CLI often says only "unknown", while the reason (e.g. "failed to register layer") is in dockerd's log."""
        try:
            return run([DOCKER_CLI] + list(args), env=self.env, check_rc=check_rc, timeout=timeout, input=input)
        except CommandFailed as exc:
            raise CommandFailed("%s; dockerd says: %s" % (exc, self.log_tail())) from None

    def stop(self):
        """Stops dockerd by PID (TERM, then KILL) and returns the containerd PIDs still alive afterwards."""
        if self.proc is None:
            return []
        stop_process(self.proc, grace=30)
        self.proc = None
        try:
            wait_for(lambda: not any(pid_alive(p) for p in self.containerd), "containerd to exit",
                     tries=50, interval=0.2)
        except AssertionError:
            pass
        left = [p for p in self.containerd if pid_alive(p)]
        for p in left:  # never leave it running, even when the test fails
            try:
                os.kill(p, 9)
            except ProcessLookupError:
                pass
        unmount_all(self.base)  # dockerd bind-mounts its data-root; a crash leaves that mount behind
        return left

    def log_tail(self):
        try:
            with open(self.ctx.path("dockerd.log"), errors="replace") as f:
                lines = [l for l in f.read().splitlines()
                         if "level=error" in l or "level=fatal" in l or not l.startswith("time=")]
            return tail("\n".join(lines), 3) or "(no errors logged)"
        except FileNotFoundError:
            return "(no log)"


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def image_id(dk, ref):
    return dk.docker("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()


@timeout(600)
def test_docker_login_push_pull_mount(ctx):
    reg = ctx.registry(users={"docker-user": "docker-pass"}).start()
    img = ctx.image(layers=2, size=512 << 10, seed=41, fmt="docker")
    ref = "%s/e2e/app:v1" % reg.host
    archive = ctx.path("image.tar")
    ctx.skopeo("copy", "oci:" + img["dir"], "docker-archive:%s:%s" % (archive, ref))

    dk = Dockerd(ctx).start()
    check(dk.containerd, "dockerd started no containerd child")

    out = dk.docker("login", reg.host, "-u", "docker-user", "--password-stdin", input="docker-pass\n")
    check("Login Succeeded" in out.stdout, "docker login: " + tail(out.stdout + out.stderr, 2))
    bad = dk.docker("login", reg.host, "-u", "docker-user", "--password-stdin", input="wrong\n", check_rc=False)
    check(bad.returncode != 0, "docker login with a wrong password succeeded")
    dk.docker("login", reg.host, "-u", "docker-user", "--password-stdin", input="docker-pass\n")

    loaded = dk.docker("load", "-i", archive).stdout
    check(ref in loaded, "docker load did not name %s: %s" % (ref, tail(loaded, 2)))
    check_eq(image_id(dk, ref), img["config_digest"], "image ID after docker load")

    pushed = dk.docker("push", ref).stdout
    m = re.search(r"digest: (sha256:[0-9a-f]{64}) size: (\d+)", pushed)
    check(m, "docker push printed no digest: " + tail(pushed, 3))
    served = reg.manifest("e2e/app", "v1")
    check_eq(served.status, 200, "registry GET of the pushed tag")
    check_eq(served.header("Docker-Content-Digest"), m.group(1), "digest docker push reported vs. the registry's")
    layers = [l["digest"] for l in served.json()["layers"]]

    dk.docker("rmi", ref)
    check(dk.docker("image", "inspect", ref, check_rc=False).returncode != 0, "image still present after rmi")
    dk.docker("pull", ref)
    check_eq(image_id(dk, ref), img["config_digest"], "image ID after docker pull")

    ref2 = "%s/e2e/other:v2" % reg.host
    dk.docker("tag", ref, ref2)
    pushed2 = dk.docker("push", ref2).stdout
    mounted = len(re.findall(r"Mounted from e2e/app", pushed2))
    check_eq(mounted, len(layers), "layers docker reports as mounted from e2e/app (%s)" % tail(pushed2, 4))
    for d in layers:
        check_eq(reg.req("HEAD", "/v2/e2e/other/blobs/" + d).status, 200, "HEAD of mounted layer in e2e/other")

    dk.docker("rmi", ref, ref2)
    dk.docker("pull", ref2)
    check_eq(image_id(dk, ref2), img["config_digest"], "image ID after pulling the second repository")

    containerd = sorted(dk.containerd)
    left = dk.stop()
    check(not left, "containerd %s still running after dockerd stopped" % left)
    check(not any(pid_alive(p) for p in containerd), "containerd survived")
