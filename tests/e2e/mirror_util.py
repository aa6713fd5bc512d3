"""Helpers for the pull-through mirror tests: wharf in front of one or two fakehubs, and the clients
that pull through it (dockerd with registry-mirrors, podman with a registries.conf mirror, a
standalone containerd driven by ctr with a hosts directory, skopeo)."""
import hashlib
import json
import os
import re

from fakehub import FakeHub
from harness import CommandFailed, TestFailure, check, check_eq, free_port, run, tail, wait_for
from http_util import request
from registry import MANIFEST_ACCEPT
from test_docker import Dockerd


class Mirror:
    """wharf as a mirror of `hub` (docker.io, also proxy.remoteurl, the default) and, with ghcr=True,
    of a second fakehub `ghcr` (upstream ghcr.io). Use it as a context manager: when the test body
    succeeded, leaving it checks that no Authorization header reached any CDN."""

    def __init__(self, ctx, tagfreshness="60s", ghcr=False, hub_user=None, hub_password=None, extra=None,
                 name="wharf"):
        self.ctx = ctx
        hub_name = "hub" if name == "wharf" else name + "-hub"  # a second Mirror in one test gets its own
        self.hub = FakeHub(ctx, hub_name, user=hub_user, password=hub_password).start()
        self.ghcr = FakeHub(ctx, "ghcr", service="ghcr.io").start() if ghcr else None
        docker_io = {"name": "docker.io", "url": self.hub.url}
        proxy = {"remoteurl": self.hub.url, "tagfreshness": tagfreshness, "upstreams": [docker_io]}
        if hub_user:
            proxy.update(username=hub_user, password=hub_password)
            docker_io.update(username=hub_user, password=hub_password)
        if self.ghcr:
            proxy["upstreams"].append({"name": "ghcr.io", "url": self.ghcr.url})
        config = {"proxy": proxy}
        for section, values in (extra or {}).items():  # more wharf configuration, e.g. http.debug
            config.setdefault(section, {}).update(values)
        self.wharf = ctx.registry(name=name, extra=config).start()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.check_cdn_clean()
        return False

    @property
    def hubs(self):
        return [h for h in (self.hub, self.ghcr) if h is not None]

    def check_cdn_clean(self):
        for hub in self.hubs:
            check(not hub.violations, "%s's CDN saw Authorization headers: %s" % (hub.name, hub.violations[:3]))

    # -- pulling through wharf ------------------------------------------------------------------

    def skopeo_pull(self, repo, tag, dest, check_rc=True, timeout=180):
        """skopeo copy docker://WHARF/repo:tag oci:dest; a failure names what wharf answers for the tag."""
        res = self.ctx.skopeo("copy", "--src-tls-verify=false", "docker://%s/%s:%s" % (self.wharf.host, repo, tag),
                              "oci:" + dest, check_rc=False, timeout=timeout)
        if check_rc and res.returncode != 0:
            raise TestFailure("skopeo pull of %s:%s through wharf failed: %s; %s" % (
                repo, tag, tail(res.stderr, 2), self.diagnose(repo, tag)))
        return res

    def attempt(self, what, fn, repo, tag, query=""):
        """Runs fn(); if a command fails, the failure also says what wharf answers for repo:tag."""
        try:
            return fn()
        except CommandFailed as exc:
            raise TestFailure("%s failed: %s; %s" % (what, exc, self.diagnose(repo, tag, query))) from None

    def diagnose(self, repo, tag, query=""):
        """'wharf answers GET .../manifests/tag with 404 MANIFEST_UNKNOWN; upstream saw: ...'. It asks
        wharf (which may ask upstream), so call it only once the test has failed."""
        path = "/v2/%s/manifests/%s%s" % (repo, tag, query)
        try:
            r = request("GET", self.wharf.url + path, {"Accept": MANIFEST_ACCEPT}, timeout=30)
            answer = "%d %s" % (r.status, "/".join(r.error_codes()) or r.header("Docker-Content-Digest", ""))
        except OSError as exc:
            answer = "no answer (%s)" % exc
        return "wharf answers GET %s with %s; %s" % (path, answer, self.seen())

    def seen(self):
        """'upstream saw: hub: GET blob=3, ...; ghcr: ...' (sends nothing, unlike diagnose)."""
        return "upstream saw: " + "; ".join("%s: %s" % (h.name, h.log.summary()) for h in self.hubs)

    def manifest(self, path, method="GET"):
        """GET (or HEAD) /v2/<path> on wharf with every manifest media type accepted."""
        return request(method, self.wharf.url + "/v2/" + path, {"Accept": MANIFEST_ACCEPT}, timeout=60)

    # -- wharf's store --------------------------------------------------------------------------

    def stored_blob(self, digest):
        """Path of a blob in wharf's store (<root>/blobs/sha256/<2 hex>/<hex>, see cache/blob_store.hpp)."""
        hexpart = digest.split(":", 1)[1]
        return os.path.join(self.wharf.root, "blobs", "sha256", hexpart[:2], hexpart)

    def check_store_sound(self):
        """Every file in wharf's blob store hashes to its name (nothing half-written was published)."""
        top = os.path.join(self.wharf.root, "blobs")
        for dirpath, _, names in os.walk(top):
            for name in names:
                check_eq("sha256:" + file_sha256(os.path.join(dirpath, name)), "sha256:" + name,
                         "digest of %s in wharf's store" % os.path.relpath(os.path.join(dirpath, name), top))


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def image_blobs(img):
    """Config and layer digests of an imagegen image."""
    return [img["config_digest"]] + list(img["layers"])


def check_cdn_once(hub, img, what):
    """Each blob of `img` was fetched from the hub's CDN exactly once."""
    for d in image_blobs(img):
        check_eq(hub.log.cdn_gets(d), 1, "%s: CDN GETs of %s (hub saw %s)" % (what, d[:19], hub.log.summary()))


def check_copied(img, layout_dir, what):
    """The OCI layout `layout_dir` (a skopeo copy) holds every blob of `img` with the right bytes."""
    for d in image_blobs(img):
        path = os.path.join(layout_dir, "blobs", "sha256", d.split(":", 1)[1])
        check(os.path.exists(path), "%s: %s missing from the copy" % (what, d[:19]))
        check_eq("sha256:" + file_sha256(path), d, "%s: digest of the copied %s" % (what, d[:19]))


# ---------------------------------------------------------------------------------------------
# Clients

def no_internet_env():
    """Proxy settings pointing at a closed local port: a client that falls back from the mirror to the
    real registry (dockerd, podman) fails at once instead of reaching or waiting for the internet."""
    dead = "http://127.0.0.1:%d" % free_port()
    return {"HTTPS_PROXY": dead, "HTTP_PROXY": dead, "NO_PROXY": "127.0.0.1,127.0.0.2"}


def mirror_dockerd(ctx, mirror_url):
    """test_docker's Dockerd (vfs, no iptables, no bridge) with "registry-mirrors": [mirror_url]."""
    dk = Dockerd(ctx)
    cfg = dk.cmd[dk.cmd.index("--config-file") + 1]
    with open(cfg) as f:
        conf = json.load(f)
    conf["registry-mirrors"] = [mirror_url]
    with open(cfg, "w") as f:
        json.dump(conf, f)
    # env(1) execs dockerd in place, so the PID Dockerd stops is still dockerd's.
    dk.cmd = ["env"] + ["%s=%s" % kv for kv in no_internet_env().items()] + dk.cmd
    return dk


class Podman:
    """Rootful podman with vfs storage under the test directory and its own auth file; with `mirror_host`,
    a registries.conf that sends docker.io pulls to it (plain HTTP)."""

    def __init__(self, ctx, mirror_host=None):
        base = ctx.mkdir("podman")
        conf = os.path.join(base, "registries.conf")
        with open(conf, "w") as f:
            f.write('unqualified-search-registries = []\n')
            if mirror_host:
                f.write('\n[[registry]]\nprefix = "docker.io"\nlocation = "docker.io"\n'
                        '\n[[registry.mirror]]\nlocation = "%s"\ninsecure = true\n' % mirror_host)
        auth = os.path.join(base, "auth.json")
        with open(auth, "w") as f:
            f.write("{}")
        # podman refuses a runroot path of 50 characters or more, hence short_dir.
        self.cmd = ["podman", "--root", base + "/root", "--runroot", ctx.short_dir("wp-"), "--tmpdir",
                    ctx.mkdir("podman", "tmp"), "--storage-driver", "vfs", "--events-backend", "none",
                    "--cgroup-manager", "cgroupfs"]
        self.env = dict(no_internet_env(), REGISTRY_AUTH_FILE=auth, CONTAINERS_REGISTRIES_CONF=conf)

    def __call__(self, *args, timeout=240, check_rc=True, input=None):
        return run(self.cmd + list(args), env=self.env, timeout=timeout, check_rc=check_rc, input=input)


class Containerd:
    """A standalone containerd (no CRI) with root under the test directory and its socket and state
    under a short /tmp directory; pulls go through `ctr --hosts-dir` with the native snapshotter."""

    def __init__(self, ctx):
        self.ctx = ctx
        short = ctx.short_dir("wc-")
        self.sock = os.path.join(short, "c.sock")
        self.config = ctx.path("containerd.toml")
        with open(self.config, "w") as f:
            f.write('version = 2\nroot = "%s"\nstate = "%s"\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
                    '[grpc]\n  address = "%s"\n[ttrpc]\n  address = "%s.ttrpc"\n[debug]\n  address = ""\n'
                    '[plugins."io.containerd.internal.v1.opt"]\n  path = "%s"\n' % (
                        ctx.mkdir("containerd-root"), os.path.join(short, "state"), self.sock, self.sock,
                        ctx.mkdir("containerd-opt")))
        self.hosts = ctx.mkdir("containerd-hosts")
        self.proc = None

    def start(self):
        self.proc = self.ctx.spawn(["containerd", "--config", self.config], "containerd")

        def ready():
            check(self.proc.poll() is None, "containerd exited with %s" % self.proc.returncode)
            return self.ctr("version", check_rc=False, timeout=10).returncode == 0
        wait_for(ready, "containerd to answer `ctr version`", tries=100, interval=0.1)
        return self

    def ctr(self, *args, timeout=180, check_rc=True):
        return run(["ctr", "--address", self.sock] + list(args), timeout=timeout, check_rc=check_rc)

    def mirror(self, registry, mirror_url):
        """Writes hosts.toml so pulls from `registry` resolve and pull through `mirror_url` only."""
        d = os.path.join(self.hosts, registry)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "hosts.toml"), "w") as f:
            f.write('server = "%s"\n\n[host."%s"]\n  capabilities = ["pull", "resolve"]\n' % (mirror_url, mirror_url))

    def pull(self, ref):
        return self.ctr("images", "pull", "--snapshotter", "native", "--hosts-dir", self.hosts, "--plain-http", ref)

    def image_digest(self, ref):
        """The manifest digest `ctr images ls` lists for ref, or None."""
        for line in self.ctr("images", "ls").stdout.splitlines()[1:]:
            cols = line.split()
            if cols and cols[0] == ref:
                return next((c for c in cols if re.match(r"^sha256:[0-9a-f]{64}$", c)), None)
        return None
