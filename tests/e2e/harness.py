"""Helpers for wharf's end-to-end tests: processes, ports, commands, HTTP, and the server under test.

Every wait here is bounded in tries and in seconds; every process a test starts goes through
Context.spawn and is stopped by PID when the test ends (and again at exit, should that fail).
"""
import atexit
import base64
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "imagegen"))
import imagegen  # noqa: E402  (tests/imagegen is not a package)

# Which server the tests run against: wharf (default) or, with E2E_SERVER=reference, Debian's
# docker-registry (distribution 2.8), so the harness itself can be checked before wharf exists.
SERVER_KIND = os.environ.get("E2E_SERVER", "wharf")
if SERVER_KIND not in ("wharf", "reference"):
    raise SystemExit("E2E_SERVER must be 'wharf' or 'reference', not %r" % SERVER_KIND)
SERVER_BIN = (os.environ.get("REFERENCE_BIN", "/usr/bin/docker-registry") if SERVER_KIND == "reference"
              else os.environ.get("WHARF_BIN", os.path.join(REPO_ROOT, "build", "wharf")))
# Docker's own client matches the daemon best; fall back to whatever `docker` is on PATH.
DOCKER_CLI = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else "docker"


class TestFailure(AssertionError):
    """A check that did not hold; its message is the one-line reason the runner prints."""


class Skip(Exception):
    """Raised to skip a test (only for tests that do not apply to the server under test)."""


def check(cond, message):
    """Fails the test with `message` unless `cond` holds."""
    if not cond:
        raise TestFailure(message)


def check_eq(actual, expected, what):
    """Fails the test unless actual == expected, naming both."""
    if actual != expected:
        raise TestFailure("%s: expected %r, got %r" % (what, expected, actual))


def wharf_only(reason):
    """Marks a test that checks wharf-specific behaviour; with E2E_SERVER=reference it is skipped
    (E2E_RUN_ALL=1 runs it anyway, to see how the reference registry differs)."""
    def mark(fn):
        fn.wharf_only = reason
        return fn
    return mark


def timeout(seconds):
    """Overrides the runner's per-test time limit."""
    def mark(fn):
        fn.timeout = seconds
        return fn
    return mark


# ---------------------------------------------------------------------------------------------
# Processes

_LIVE = {}  # pid -> Popen, every process still running; the atexit hook stops what tests left.


def stop_process(proc, grace=10.0, sig=signal.SIGTERM):
    """Sends `sig` to the process by PID, waits up to `grace` s, then SIGKILLs it; returns its exit code."""
    try:
        if proc.poll() is None:
            try:
                os.kill(proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        return proc.returncode
    finally:
        _LIVE.pop(proc.pid, None)


@atexit.register
def _stop_leftovers():
    for proc in list(_LIVE.values()):
        stop_process(proc, grace=3)


def pid_alive(pid):
    """True if a process with this PID exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def child_pids(pid):
    """PIDs whose parent is `pid` (from /proc/PID/task/*/children)."""
    out = []
    try:
        for task in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, task)) as f:
                out += [int(x) for x in f.read().split()]
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def wait_for(predicate, what, tries=100, interval=0.1):
    """Polls `predicate` up to `tries` times, `interval` s apart; returns its first truthy value or fails."""
    last_exc = None
    for _ in range(tries):
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - polled conditions fail in many ways until ready
            last_exc = exc
        time.sleep(interval)
    raise TestFailure("timed out waiting for %s after %.1f s%s" % (
        what, tries * interval, " (last error: %s)" % last_exc if last_exc else ""))


class CommandFailed(TestFailure):
    pass


def run(cmd, timeout=120, env=None, check_rc=True, input=None, cwd=None):
    """Runs `cmd` (a list) with a time limit, capturing output as text.

    Fails the test if it times out, or (with check_rc) exits non-zero, quoting stderr's tail."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env,
                             input=input, cwd=cwd, stdin=None if input is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise CommandFailed("%s timed out after %s s" % (short_cmd(cmd), timeout)) from None
    except FileNotFoundError:
        raise CommandFailed("%s: command not found" % cmd[0]) from None
    if check_rc and res.returncode != 0:
        raise CommandFailed("%s exited %d: %s" % (short_cmd(cmd), res.returncode,
                                                  tail(res.stderr or res.stdout, 3)))
    return res


def short_cmd(cmd):
    return " ".join(cmd[:3]) + (" ..." if len(cmd) > 3 else "")


def tail(text, lines):
    """The last `lines` non-empty lines of `text`, joined with ' | '."""
    rows = [r for r in (text or "").strip().splitlines() if r.strip()]
    return " | ".join(rows[-lines:])


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# HTTP

class Response:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # http.client.HTTPMessage: case-insensitive .get()
        self.body = body
        self.incomplete = False  # True if the body ended before its Content-Length

    def header(self, name, default=None):
        return self.headers.get(name, default)

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            raise TestFailure("response body is not JSON: %r" % self.body[:200]) from None

    def error_codes(self):
        """The codes in an OCI error body {"errors":[{"code":...}]}; [] if the body is not one."""
        try:
            return [e.get("code") for e in json.loads(self.body).get("errors", [])]
        except (ValueError, AttributeError, TypeError):
            return []

    def __repr__(self):
        return "<%d %s %r>" % (self.status, self.reason, self.body[:120])


def split_url(url):
    """'http://host:port/raw/path?q' -> (scheme, host, port, '/raw/path?q'), the path left untouched."""
    scheme, rest = url.split("://", 1)
    hostport, slash, path = rest.partition("/")
    host, _, port = hostport.rpartition(":")
    return scheme, host, int(port), slash + path if slash else "/"


def request(method, url, headers=None, body=None, timeout=30, ssl_context=None):
    """One HTTP request via http.client: any method, raw path (nothing normalizes '..'), no redirects.

    `body` may be bytes or an iterable of bytes (sent as given; set Content-Length yourself)."""
    scheme, host, port, path = split_url(url)
    if scheme == "https":
        ctx = ssl_context or ssl._create_unverified_context()  # noqa: SLF001 - tests pin certs explicitly
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=ctx)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        hdrs = dict(headers or {})
        if isinstance(body, (bytes, bytearray)) and not any(k.lower() == "content-length" for k in hdrs):
            hdrs["Content-Length"] = str(len(body))
        elif body is None and method in ("POST", "PUT", "PATCH") and \
                not any(k.lower() in ("content-length", "transfer-encoding") for k in hdrs):
            hdrs["Content-Length"] = "0"
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.endheaders()
        try:
            if isinstance(body, (bytes, bytearray)):
                conn.send(body)
            elif body is not None:
                for chunk in body:
                    conn.send(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer (e.g. 400 for an oversized body) before reading it all
        resp = conn.getresponse()
        incomplete = False
        try:
            data = resp.read() if method != "HEAD" else b""
        except http.client.IncompleteRead as exc:  # body shorter than its Content-Length
            data, incomplete = exc.partial, True
        out = Response(resp.status, resp.reason, resp.headers, data)
        out.incomplete = incomplete
        return out
    finally:
        conn.close()


def basic_auth(user, password):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


# ---------------------------------------------------------------------------------------------
# Per-test context

class Context:
    """What one test owns: a fresh directory and the processes it started."""

    def __init__(self, name, directory):
        self.name = name
        self.dir = directory
        self.procs = []
        self.cleanups = []  # callables run (last first) before processes are stopped

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def mkdir(self, *parts):
        p = self.path(*parts)
        os.makedirs(p, exist_ok=True)
        return p

    def spawn(self, cmd, log_name, env=None):
        """Starts `cmd` with stdout+stderr appended to DIR/<log_name>.log; stopped when the test ends."""
        full_env = dict(os.environ)
        full_env.update(env or {})
        log = open(self.path(log_name + ".log"), "ab")
        try:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=full_env, cwd=self.dir)
        except FileNotFoundError:
            raise TestFailure("%s: not found" % cmd[0]) from None
        finally:
            log.close()
        _LIVE[proc.pid] = proc
        self.procs.append(proc)
        return proc

    def close(self):
        """Runs cleanups, then stops every process this test started, newest first."""
        errors = []
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - keep cleaning up
                errors.append(exc)
        for proc in reversed(self.procs):
            stop_process(proc)
        if errors:
            raise errors[0]

    def registry(self, **kw):
        """A server under test (not started yet); see Registry."""
        return Registry(self, **kw)

    def image(self, name="img", layers=2, size=256 << 10, seed=1, fmt="oci", tag="latest"):
        """Generates an OCI layout under DIR/<name>; returns imagegen's summary plus 'dir'."""
        out = self.path(name)
        info = imagegen.generate(out, layers=layers, size=size, seed=seed, tag=tag, fmt=fmt)
        info["dir"] = out
        return info

    def skopeo(self, *args, timeout=300, check_rc=True):
        """Runs skopeo with this test's own policy and auth file (nothing read from or written to $HOME)."""
        policy = self.path("policy.json")
        if not os.path.exists(policy):
            with open(policy, "w") as f:
                json.dump({"default": [{"type": "insecureAcceptAnything"}]}, f)
        env = {"REGISTRY_AUTH_FILE": self.path("skopeo-auth.json"), "TMPDIR": self.mkdir("tmp")}
        return run(["skopeo", "--policy", policy] + list(args), timeout=timeout, env=env, check_rc=check_rc)


# ---------------------------------------------------------------------------------------------
# The server under test

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
        rnd = __import__("random").Random(seed)
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


def with_query(path, query):
    return path + ("&" if "?" in path else "?") + query


def expect_error(resp, status, codes, what):
    """Fails unless resp has `status` and its OCI error body names one of `codes` (a str or a tuple)."""
    codes = (codes,) if isinstance(codes, str) else tuple(codes)
    check(resp.status == status and any(c in codes for c in resp.error_codes()),
          "%s: expected %d %s, got %d %s" % (what, status, "/".join(codes), resp.status,
                                             resp.body[:200].decode(errors="replace")))


def files_equal(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        return fa.read() == fb.read()


def blob_path(layout_dir, digest):
    return os.path.join(layout_dir, "blobs", "sha256", digest.split(":", 1)[1])


def copy_logs(src_dir, dest_dir):
    """Copies every *.log directly under src_dir to dest_dir (kept for a failed test)."""
    os.makedirs(dest_dir, exist_ok=True)
    for name in os.listdir(src_dir):
        if name.endswith(".log"):
            shutil.copy(os.path.join(src_dir, name), dest_dir)
