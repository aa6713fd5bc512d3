"""The server under test: wharf (or, with E2E_SERVER=reference, docker-registry) serving a registry:2
config.yml written into the test directory, plus a small API client for pushing test content."""
import http.client
import json
import os
import random
import signal
import time

from harness import SERVER_BIN, TestFailure, check, check_eq, free_port, imagegen, run, stop_process, tail
from http_util import basic_auth, request, split_url, with_query


def htpasswd_file(path, users):
    """Writes an htpasswd file with a bcrypt entry per (user, password), made by `htpasswd -Bbn`."""
    lines = [run(["htpasswd", "-Bbn", u, p]).stdout.strip() for u, p in users.items()]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def to_yaml(obj, indent=0):
    """Enough YAML for registry configs: nested dicts of scalars and lists of scalars."""
    pad = "  " * indent
    out = []
    for key, value in obj.items():
        if isinstance(value, dict):
            out.append("%s%s:" % (pad, key))
            out.append(to_yaml(value, indent + 1))
        elif isinstance(value, list):
            out.append("%s%s: [%s]" % (pad, key, ", ".join(json.dumps(v) for v in value)))
        elif isinstance(value, bool):
            out.append("%s%s: %s" % (pad, key, "true" if value else "false"))
        elif isinstance(value, (int, float)):
            out.append("%s%s: %s" % (pad, key, value))
        else:
            out.append("%s%s: %s" % (pad, key, json.dumps(str(value))))
    return "\n".join(out)


MANIFEST_ACCEPT = ", ".join([
    "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json"])


class Registry:
    """wharf (or the reference registry) serving a registry:2 config.yml from the test directory.

    users: {name: password} enables auth.htpasswd; tls: (cert, key) enables http.tls;
    delete: storage.delete.enabled; root: storage directory (kept across restarts)."""

    REALM = "wharf-e2e"

    def __init__(self, ctx, users=None, tls=None, delete=True, root=None, name="registry", extra=None):
        self.ctx = ctx
        self.name = name
        self.users = dict(users or {})
        self.tls = tls
        self.port = free_port()
        self.host = "127.0.0.1:%d" % self.port
        self.url = "%s://%s" % ("https" if tls else "http", self.host)
        self.root = root or ctx.mkdir(name + "-data")
        self.proc = None
        cfg = {
            "version": 0.1,
            "log": {"level": "info", "accesslog": {"disabled": False}},
            "storage": {"filesystem": {"rootdirectory": self.root},
                        "delete": {"enabled": bool(delete)}},
            "http": {"addr": self.host, "secret": "e2e-not-a-secret-%d" % self.port},
        }
        if tls:
            cfg["http"]["tls"] = {"certificate": tls[0], "key": tls[1]}
        if self.users:
            cfg["auth"] = {"htpasswd": {"realm": self.REALM,
                                        "path": htpasswd_file(ctx.path(name + ".htpasswd"), self.users)}}
        for section, values in (extra or {}).items():
            cfg.setdefault(section, {}).update(values)
        self.config_path = ctx.path(name + ".yml")
        with open(self.config_path, "w") as f:
            f.write(to_yaml(cfg) + "\n")

    @property
    def creds(self):
        """'user:password' of the first user, for skopeo --*-creds (None without auth)."""
        for u, p in self.users.items():
            return "%s:%s" % (u, p)
        return None

    def auth_header(self):
        for u, p in self.users.items():
            return {"Authorization": basic_auth(u, p)}
        return {}

    def start(self, tries=100, interval=0.1):
        """Starts the server and waits until GET /v2/ answers; fails with the log's tail otherwise."""
        check(os.path.exists(SERVER_BIN), "server binary %s does not exist (build it, or set WHARF_BIN)"
              % SERVER_BIN)
        self.proc = self.ctx.spawn([SERVER_BIN, "serve", self.config_path], self.name)

        def ready():
            if self.proc.poll() is not None:
                raise TestFailure("%s exited with %s during startup: %s" % (
                    os.path.basename(SERVER_BIN), self.proc.returncode, self.log_tail(3)))
            return request("GET", self.url + "/v2/", timeout=2)
        for _ in range(tries):
            try:
                ready()
                return self
            except TestFailure:
                raise
            except (OSError, http.client.HTTPException):
                time.sleep(interval)
        raise TestFailure("%s did not answer GET /v2/ within %.0f s: %s" % (
            os.path.basename(SERVER_BIN), tries * interval, self.log_tail(3)))

    def stop(self):
        if self.proc is not None:
            stop_process(self.proc)

    def kill9(self):
        """SIGKILLs the server and reaps it."""
        os.kill(self.proc.pid, signal.SIGKILL)
        stop_process(self.proc, grace=10)

    def log_tail(self, lines=5):
        try:
            with open(self.ctx.path(self.name + ".log"), errors="replace") as f:
                return tail(f.read(), lines)
        except FileNotFoundError:
            return ""

    # -- HTTP against this server ---------------------------------------------------------------

    def req(self, method, path, headers=None, body=None, auth=True, timeout=30, ssl_context=None):
        """A request to this server; sends the first user's credentials unless auth=False."""
        hdrs = dict(self.auth_header() if auth else {})
        hdrs.update(headers or {})
        return request(method, self.url + path, hdrs, body, timeout=timeout, ssl_context=ssl_context)

    def manifest(self, repo, ref, method="GET"):
        """GET (or HEAD) of a manifest, accepting every image manifest and index media type."""
        return self.req(method, "/v2/%s/manifests/%s" % (repo, ref), {"Accept": MANIFEST_ACCEPT})

    def location_path(self, resp):
        """The path part of a Location header (absolute URL or path)."""
        loc = resp.header("Location")
        check(loc, "no Location header in %r" % resp)
        if "://" in loc:
            return split_url(loc)[3]
        return loc

    def start_upload(self, repo):
        r = self.req("POST", "/v2/%s/blobs/uploads/" % repo)
        check_eq(r.status, 202, "POST /v2/%s/blobs/uploads/ status (%r)" % (repo, r))
        return self.location_path(r)

    def push_blob(self, repo, data):
        """Monolithic upload (POST then PUT ?digest=); returns the digest."""
        digest = imagegen.sha256(data)
        loc = self.start_upload(repo)
        r = self.req("PUT", with_query(loc, "digest=" + digest), {"Content-Type": "application/octet-stream"},
                     data)
        check_eq(r.status, 201, "blob PUT status (%r)" % r)
        return digest

    def push_manifest(self, repo, ref, manifest, media_type=None):
        """PUTs a manifest (dict or bytes); returns (response, digest of the bytes sent)."""
        body = manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode()
        mt = media_type or json.loads(body).get("mediaType", "application/vnd.oci.image.manifest.v1+json")
        r = self.req("PUT", "/v2/%s/manifests/%s" % (repo, ref), {"Content-Type": mt}, body)
        return r, imagegen.sha256(body)

    def push_image(self, repo, tag, layers=1, size=1024, seed=7):
        """Pushes a small image over the API; returns {'manifest_digest', 'config_digest', 'layers', 'manifest'}."""
        rnd = random.Random(seed)
        layer_blobs = [rnd.randbytes(size) for _ in range(layers)]
        config = json.dumps({"architecture": "amd64", "os": "linux",
                             "rootfs": {"type": "layers", "diff_ids": [imagegen.sha256(b) for b in layer_blobs]}
                             }).encode()
        cfg_digest = self.push_blob(repo, config)
        descs = [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": self.push_blob(repo, b),
                  "size": len(b)} for b in layer_blobs]
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg_digest,
                               "size": len(config)},
                    "layers": descs}
        r, digest = self.push_manifest(repo, tag, manifest)
        check_eq(r.status, 201, "manifest PUT status (%r)" % r)
        return {"manifest_digest": digest, "config_digest": cfg_digest, "layers": [d["digest"] for d in descs],
                "manifest": manifest}
