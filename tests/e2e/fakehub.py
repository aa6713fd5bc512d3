"""A Docker-Hub-like upstream for the mirror tests, built from real parts.

FakeHub = an origin (Debian's reference registry, /usr/bin/docker-registry, holding the test images)
behind a Python front end on 127.0.0.1 that behaves like registry-1.docker.io:

- every /v2/ request needs a Bearer token from GET (or POST) /token; without one the answer is 401
  with `WWW-Authenticate: Bearer realm=...,service=...,scope="repository:<repo>:pull"`;
- a blob GET is answered with 307 to a "CDN" on 127.0.0.2 (another port), which serves the bytes and
  refuses (400, recorded as a violation) any request that carries an Authorization header;
- manifest responses carry ratelimit-* headers; a pull limit turns manifest GETs into 429s.

Tests control it through methods: go_down()/come_up(), cut_blobs(), throttle(), set_pull_limit(),
set_credentials(), set_private(), revoke_tokens(), reset_counters(). Every request is recorded in `hub.log` (see RequestLog).
Servers run on daemon threads and are shut down when the test ends; the origin is stopped by PID.
The request handlers live in fakehub_http.py.
"""
import base64
import datetime
import hmac
import http.client
import json
import secrets
import threading
import time
import urllib.parse

from fakehub_http import RATE_LIMIT, CdnHandler, FrontHandler, Server
from harness import TestFailure, check, free_port
from registry import to_yaml


class RequestLog:
    """Every request the hub saw: dicts with method, kind, path, query, repo, ref, digest, status, auth
    (the Authorization scheme sent, or None), peer, and for the front end accept and agent. Thread-safe."""

    def __init__(self):
        self._lock = threading.Lock()
        self._entries = []

    def add(self, **entry):
        entry.setdefault("status", None)
        with self._lock:
            self._entries.append(entry)
        return entry

    def entries(self, method=None, kind=None, repo=None, digest=None, status=None):
        """Recorded requests matching every given filter (kind may be a tuple of kinds)."""
        kinds = (kind,) if isinstance(kind, str) else kind
        with self._lock:
            rows = list(self._entries)
        return [e for e in rows if (method is None or e["method"] == method) and (kinds is None or e["kind"] in kinds)
                and (repo is None or e.get("repo") == repo) and (digest is None or e.get("digest") == digest)
                and (status is None or e["status"] == status)]

    def count(self, method=None, kind=None, repo=None, digest=None, status=None):
        return len(self.entries(method, kind, repo, digest, status))

    def cdn_gets(self, digest):
        """GETs of one blob at the CDN (what a mirror must do exactly once per blob)."""
        return self.count("GET", "cdn", digest=digest)

    def manifest_gets(self, repo=None):
        return self.count("GET", ("manifest-tag", "manifest-digest"), repo=repo)

    def summary(self):
        """'GET manifest-tag=2 HEAD blob=1 ...' for failure messages."""
        counts = {}
        for e in self.entries():
            key = "%s %s" % (e["method"], e["kind"])
            counts[key] = counts.get(key, 0) + 1
        return ", ".join("%s=%d" % kv for kv in sorted(counts.items())) or "no requests"

    def reset(self):
        with self._lock:
            self._entries.clear()


class FakeHub:
    """Docker Hub stand-in: origin registry + front end on 127.0.0.1 + CDN on 127.0.0.2.

    name: prefix of its log and data directory; service: the token service name it announces;
    expires_in: token lifetime in seconds; user/password: if set, /token requires them (Basic)."""

    def __init__(self, ctx, name="hub", service="registry.docker.io", expires_in=300, user=None, password=None):
        self.ctx = ctx
        self.name = name
        self.service = service
        self.expires_in = expires_in
        self.user, self.password = user, password
        self.log = RequestLog()
        self.violations = []
        self.cutting = False
        self._rate = 0  # bytes per second at the CDN (0 = unthrottled)
        self._lock = threading.Lock()
        self._tokens = {}  # token -> (expiry, set of repos with pull)
        self._private = {}  # repo -> {user: password} allowed to pull it
        self._sigs = {}  # sig -> (repo, digest)
        self._pull_limit = None  # manifest GETs still allowed (None = unlimited)
        self._limit_heads = False
        self._manifest_gets = 0
        self._front = self._cdn = None
        self.port = self.cdn_port = None
        self.origin_port = free_port()
        self.origin_proc = None
        self._log_file = open(ctx.path(name + ".log"), "a", buffering=1)
        ctx.final_cleanups.append(self._log_file.close)

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def host(self):
        return "127.0.0.1:%d" % self.port

    @property
    def url(self):
        return "http://" + self.host

    @property
    def cdn_url(self):
        return "http://127.0.0.2:%d" % self.cdn_port

    def start(self):
        """Starts the origin, then the front end and the CDN on fresh ports; returns self."""
        root = self.ctx.mkdir(self.name + "-origin")
        cfg = {"version": 0.1, "log": {"level": "warn", "accesslog": {"disabled": True}},
               "storage": {"filesystem": {"rootdirectory": root}},
               "http": {"addr": "127.0.0.1:%d" % self.origin_port, "secret": "fakehub-%d" % self.origin_port}}
        path = self.ctx.path(self.name + "-origin.yml")
        with open(path, "w") as f:
            f.write(to_yaml(cfg) + "\n")
        self.origin_proc = self.ctx.spawn(["/usr/bin/docker-registry", "serve", path], self.name + "-origin")
        self._wait_origin()
        self._front = self._listen(("127.0.0.1", 0), FrontHandler)
        self._cdn = self._listen(("127.0.0.2", 0), CdnHandler)
        self.port, self.cdn_port = self._front.server_address[1], self._cdn.server_address[1]
        self.ctx.cleanups.append(self.stop)
        return self

    def _wait_origin(self):
        for _ in range(100):
            check(self.origin_proc.poll() is None, "docker-registry (origin of %s) exited with %s" % (
                self.name, self.origin_proc.returncode))
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.origin_port, timeout=2)
                conn.request("GET", "/v2/")
                conn.getresponse().read()
                conn.close()
                return
            except OSError:
                time.sleep(0.1)
        raise TestFailure("docker-registry (origin of %s) did not answer within 10 s" % self.name)

    def _listen(self, addr, handler):
        last = None
        for _ in range(50):  # the port may linger for a moment after go_down()
            try:
                server = Server(addr, handler, self)
                break
            except OSError as exc:
                last = exc
                time.sleep(0.1)
        else:
            raise TestFailure("%s cannot listen on %s:%d again: %s" % (self.name, addr[0], addr[1], last))
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True,
                         name="%s-%s" % (self.name, addr[0])).start()
        return server

    def _close(self, server):
        if server is not None:
            server.shutdown()
            server.server_close()
            server.drop_connections()

    def go_down(self):
        """Closes the listening sockets (new connections are refused) and resets open connections."""
        self._close(self._front)
        self._close(self._cdn)
        self._front = self._cdn = None
        self.write_log("--- down")

    def come_up(self):
        """Listens again on the same ports."""
        self._front = self._listen(("127.0.0.1", self.port), FrontHandler)
        self._cdn = self._listen(("127.0.0.2", self.cdn_port), CdnHandler)
        self.write_log("--- up")

    def stop(self):
        self.go_down()

    # -- content --------------------------------------------------------------------------------

    def push(self, image, repo, tag):
        """Copies an imagegen layout (ctx.image(...) result) into the origin as repo:tag."""
        self.ctx.skopeo("copy", "--dest-tls-verify=false", "oci:" + image["dir"],
                        "docker://127.0.0.1:%d/%s:%s" % (self.origin_port, repo, tag), timeout=120)

    def origin_request(self, method, path, headers):
        """(response, connection) for a request to the origin; the caller reads and closes."""
        conn = http.client.HTTPConnection("127.0.0.1", self.origin_port, timeout=60)
        conn.request(method, path, headers=headers)
        return conn.getresponse(), conn

    # -- controls -------------------------------------------------------------------------------

    def cut_blobs(self, on=True):
        """While on, the CDN sends the full Content-Length but only half of each blob, then closes."""
        self.cutting = on

    def throttle(self, bytes_per_second):
        """Limits each CDN download to about this rate (0 = unthrottled), so concurrent pulls overlap."""
        self._rate = bytes_per_second

    def pace(self, nbytes):
        if self._rate:
            time.sleep(nbytes / self._rate)

    def set_pull_limit(self, gets, heads_too=False):
        """After `gets` more manifest GETs every manifest GET (and HEAD, with heads_too) is 429;
        None lifts the limit."""
        with self._lock:
            self._pull_limit, self._limit_heads = gets, heads_too

    def set_credentials(self, user, password):
        """From now on /token requires these Basic credentials (None, None: anonymous tokens)."""
        self.user, self.password = user, password

    def set_private(self, repo, users):
        """From now on a token grants pull on `repo` only to a Basic sign-in as one of `users`
        ({name: password}); anyone else gets a token without it (and then 401 on the repo, like Docker Hub)."""
        with self._lock:
            self._private[repo] = dict(users)

    def revoke_tokens(self):
        """Every token issued so far stops working (as if it had expired)."""
        with self._lock:
            self._tokens.clear()

    def reset_counters(self):
        """Forgets the request log (tokens stay valid, violations stay recorded)."""
        self.log.reset()

    def add_violation(self, what):
        self.violations.append(what)
        self.write_log("VIOLATION " + what)

    def token_requests(self):
        return self.log.count(kind="token")

    def write_log(self, line):
        try:
            self._log_file.write("%s %s\n" % (datetime.datetime.now().strftime("%H:%M:%S.%f")[:-3], line))
        except ValueError:
            pass  # the log was closed at the end of the test

    # -- tokens, signatures, rate limit ----------------------------------------------------------

    def issue_token(self, method, query, auth, body):
        """(status, JSON body) for GET /token?service=&scope=[&account=] or POST /token (OAuth2 form)."""
        params = urllib.parse.parse_qs(query if method == "GET" else body.decode(errors="replace"))
        if params.get("service", [""])[0] != self.service:
            return 400, json.dumps({"details": "service must be %s" % self.service}).encode()
        if self.user is not None:
            if method == "POST":
                user, password = params.get("username", [""])[0], params.get("password", [""])[0]
            else:
                user, password = _basic(auth)
            account = params.get("account", [user])[0]
            if not (_same(user, self.user) and _same(password, self.password) and account == self.user):
                return 401, json.dumps({"details": "incorrect username or password"}).encode()
        repos = set()
        signed_user, signed_password = _basic(auth)
        for scope in " ".join(params.get("scope", [])).split():
            parts = scope.split(":")
            if len(parts) >= 3 and parts[0] == "repository" and "pull" in parts[-1].split(","):
                repo = ":".join(parts[1:-1])
                with self._lock:
                    allowed = self._private.get(repo)
                if allowed is not None and not (signed_user in allowed and _same(signed_password, allowed[signed_user])):
                    continue
                repos.add(repo)
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = (time.monotonic() + self.expires_in, repos)
        issued = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return 200, json.dumps({"token": token, "access_token": token, "expires_in": self.expires_in,
                                "issued_at": issued}).encode()

    def token_valid(self, auth, repo):
        if not auth or not auth.startswith("Bearer "):
            return False
        with self._lock:
            found = self._tokens.get(auth[len("Bearer "):].strip())
        if found is None or found[0] < time.monotonic():
            return False
        return repo is None or repo in found[1]

    def sign(self, repo, digest):
        sig = secrets.token_hex(16)
        with self._lock:
            self._sigs[sig] = (repo, digest)
        return sig

    def signed_repo(self, sig, digest):
        with self._lock:
            found = self._sigs.get(sig)
        return found[0] if found and found[1] == digest else None

    def count_pull(self, method):
        """(limited, remaining) for one manifest request; GETs count against the limit, HEADs do not."""
        with self._lock:
            if method == "GET":
                if self._pull_limit is not None and self._pull_limit <= 0:
                    return True, 0
                self._manifest_gets += 1
                if self._pull_limit is not None:
                    self._pull_limit -= 1
            elif self._limit_heads and self._pull_limit is not None and self._pull_limit <= 0:
                return True, 0
            return False, max(0, RATE_LIMIT - self._manifest_gets)


def _basic(auth):
    if not auth or not auth.startswith("Basic "):
        return "", ""
    try:
        user, _, password = base64.b64decode(auth[len("Basic "):]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return "", ""
    return user, password


def _same(a, b):
    return hmac.compare_digest(a.encode(), (b or "").encode())
