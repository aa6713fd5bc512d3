"""The fakehub's HTTP side: the Docker-Hub-like front end and the blob CDN (see fakehub.py).

Both are ThreadingHTTPServers speaking HTTP/1.1 with keep-alive and exact Content-Length; each handler
reaches its FakeHub as self.server.hub for tokens, signatures, the rate limit, the log and the origin.
"""
import http.server
import json
import re
import socket
import sys
import threading
import urllib.parse

CHUNK = 64 << 10
MANIFEST_RE = re.compile(r"^/v2/(.+)/manifests/([^/]+)$")
BLOB_RE = re.compile(r"^/v2/(.+)/blobs/(sha256:[0-9a-f]{64})$")
TAGS_RE = re.compile(r"^/v2/(.+)/tags/list$")
RATE_WINDOW = 21600
RATE_LIMIT = 100


def oci_error(code, message):
    return json.dumps({"errors": [{"code": code, "message": message, "detail": None}]}).encode()


def classify(path):
    """(kind, repo, ref) of a front-end path (no query). kind is one of base, token, manifest-tag,
    manifest-digest, blob, tags, other."""
    if path in ("/v2", "/v2/"):
        return "base", None, None
    if path == "/token":
        return "token", None, None
    m = MANIFEST_RE.match(path)
    if m:
        return ("manifest-digest" if m.group(2).startswith("sha256:") else "manifest-tag"), m.group(1), m.group(2)
    m = BLOB_RE.match(path)
    if m:
        return "blob", m.group(1), m.group(2)
    m = TAGS_RE.match(path)
    if m:
        return "tags", m.group(1), None
    return "other", None, None


class Server(http.server.ThreadingHTTPServer):
    """A threading HTTP server that knows its open connections, so going down can close them too."""
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, handler, hub):
        self.hub = hub
        self.conns = set()
        self.conns_lock = threading.Lock()
        super().__init__(addr, handler)

    def process_request(self, request, client_address):
        with self.conns_lock:
            self.conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.conns_lock:
            self.conns.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        self.hub.write_log("connection from %s:%d ended: %r" % (client_address[0], client_address[1],
                                                                 sys.exc_info()[1]))

    def drop_connections(self):
        """Resets every open connection (SO_LINGER 0, shutdown): clients see a reset or an EOF."""
        with self.conns_lock:
            conns = list(self.conns)
        for sock in conns:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60  # an idle keep-alive connection is closed after this long

    @property
    def hub(self):
        return self.server.hub

    def log_message(self, fmt, *args):
        text = "".join(c if c.isprintable() else "?" for c in fmt % args)
        self.hub.write_log("%s %s" % (self.server.server_address[0], text))

    def send_bytes(self, status, body, headers=None, head=False):
        """A complete response with Content-Length; the body is omitted for HEAD."""
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def discard_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        return n

    def stream(self, resp, head, cut=False):
        """Copies an origin response body to the client (only half of it, then a close, if `cut`)."""
        total = int(resp.getheader("Content-Length") or 0)
        limit = total // 2 if cut else total
        sent = 0
        if not head:
            while sent < limit:
                data = resp.read(min(CHUNK, limit - sent))
                if not data:
                    break
                self.wfile.write(data)
                sent += len(data)
                self.hub.pace(len(data))
        if cut or sent < limit:
            self.close_connection = True
            self.wfile.flush()
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class FrontHandler(Handler):
    """registry-1.docker.io: tokens, 401 challenges, manifests and tags proxied, blobs redirected."""

    def do_GET(self):
        self.serve("GET")

    def do_HEAD(self):
        self.serve("HEAD")

    def do_POST(self):
        self.serve("POST")

    def do_PUT(self):
        self.serve("PUT")

    def do_PATCH(self):
        self.serve("PATCH")

    def do_DELETE(self):
        self.serve("DELETE")

    def serve(self, method):
        hub = self.hub
        path, _, query = self.path.partition("?")
        kind, repo, ref = classify(path)
        auth = self.headers.get("Authorization")
        entry = hub.log.add(method=method, kind=kind, path=path, query=query, repo=repo, ref=ref,
                            digest=ref if kind in ("blob", "manifest-digest") else None,
                            auth=auth.split(" ", 1)[0] if auth else None, peer=self.client_address[0],
                            accept=", ".join(self.headers.get_all("Accept") or []),
                            agent=self.headers.get("User-Agent", ""))
        head = method == "HEAD"
        if kind == "token" and method in ("GET", "POST"):
            status, body = hub.issue_token(method, query, auth, self.rfile.read(int(self.headers.get(
                "Content-Length") or 0)) if method == "POST" else b"")
            entry["status"] = status
            return self.send_bytes(status, body, {"Content-Type": "application/json"})
        self.discard_body()
        if kind in ("token", "other") or (method not in ("GET", "HEAD") and kind != "base"):
            entry["status"] = 405 if kind != "other" else 404
            return self.send_bytes(entry["status"], oci_error("UNSUPPORTED", "not supported by this registry"),
                                   {"Content-Type": "application/json"}, head)
        if not hub.token_valid(auth, repo):
            entry["status"] = 401
            challenge = 'Bearer realm="%s/token",service="%s"' % (hub.url, hub.service)
            if repo:
                challenge += ',scope="repository:%s:pull"' % repo
            return self.send_bytes(401, oci_error("UNAUTHORIZED", "authentication required"),
                                   {"Content-Type": "application/json", "WWW-Authenticate": challenge,
                                    "Docker-Distribution-API-Version": "registry/2.0"}, head)
        if kind == "base":
            entry["status"] = 200
            return self.send_bytes(200, b"{}", {"Content-Type": "application/json",
                                                "Docker-Distribution-API-Version": "registry/2.0"}, head)
        extra = {}
        if kind.startswith("manifest"):
            limited, remaining = hub.count_pull(method)
            extra = {"ratelimit-limit": "%d;w=%d" % (RATE_LIMIT, RATE_WINDOW),
                     "ratelimit-remaining": "%d;w=%d" % (remaining, RATE_WINDOW),
                     "docker-ratelimit-source": self.client_address[0]}
            if limited:
                entry["status"] = 429
                return self.send_bytes(429, oci_error(
                    "TOOMANYREQUESTS", "You have reached your pull rate limit. You may increase the limit by "
                    "authenticating and upgrading: https://www.docker.com/increase-rate-limit"),
                    dict(extra, **{"Content-Type": "application/json"}), head)
        if kind == "blob" and method == "GET":
            return self.redirect_blob(entry, repo, ref)
        accept = ", ".join(self.headers.get_all("Accept") or [])
        resp, conn = hub.origin_request(method, self.path, {"Accept": accept} if accept else {})
        try:
            entry["status"] = resp.status
            self.send_response(resp.status)
            for name in ("Content-Type", "Docker-Content-Digest", "Content-Length", "Etag", "Link"):
                if resp.getheader(name) is not None:
                    self.send_header(name, resp.getheader(name))
            if resp.getheader("Content-Length") is None:
                self.send_header("Content-Length", "0")
            for k, v in extra.items():
                self.send_header(k, v)
            self.send_header("Docker-Distribution-API-Version", "registry/2.0")
            self.end_headers()
            self.stream(resp, head)
        finally:
            conn.close()

    def redirect_blob(self, entry, repo, digest):
        """Docker Hub answers a blob GET with 307 to a signed CDN URL (after checking the blob exists)."""
        resp, conn = self.hub.origin_request("HEAD", "/v2/%s/blobs/%s" % (repo, digest), {})
        conn.close()
        if resp.status != 200:
            entry["status"] = 404
            return self.send_bytes(404, oci_error("BLOB_UNKNOWN", "blob unknown to registry"),
                                   {"Content-Type": "application/json"})
        sig = self.hub.sign(repo, digest)
        entry["status"] = 307
        self.send_bytes(307, b"", {"Location": "%s/blobs/%s?sig=%s" % (self.hub.cdn_url, digest, sig),
                                   "Docker-Distribution-API-Version": "registry/2.0"})


class CdnHandler(Handler):
    """The blob CDN: signed URLs only, never an Authorization header."""

    def do_GET(self):
        self.serve("GET")

    def do_HEAD(self):
        self.serve("HEAD")

    def serve(self, method):
        hub = self.hub
        path, _, query = self.path.partition("?")
        m = re.match(r"^/blobs/(sha256:[0-9a-f]{64})$", path)
        digest = m.group(1) if m else None
        auth = self.headers.get("Authorization")
        entry = hub.log.add(method=method, kind="cdn", path=path, query=query, repo=None, ref=digest, digest=digest,
                            auth=auth.split(" ", 1)[0] if auth else None, peer=self.client_address[0])
        self.discard_body()
        head = method == "HEAD"
        if auth:
            hub.add_violation("%s %s carried an Authorization header (%s)" % (method, path, entry["auth"]))
            entry["status"] = 400
            return self.send_bytes(400, b"<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism "
                                   b"allowed</Message></Error>", {"Content-Type": "application/xml"}, head)
        sig = urllib.parse.parse_qs(query).get("sig", [""])[0]
        repo = hub.signed_repo(sig, digest)
        if repo is None:
            entry["status"] = 403
            return self.send_bytes(403, b"<Error><Code>AccessDenied</Code></Error>",
                                   {"Content-Type": "application/xml"}, head)
        headers = {"Range": self.headers["Range"]} if self.headers.get("Range") else {}
        resp, conn = hub.origin_request(method, "/v2/%s/blobs/%s" % (repo, digest), headers)
        try:
            entry["status"] = resp.status
            self.send_response(resp.status)
            for name in ("Content-Length", "Content-Range", "Etag"):
                if resp.getheader(name) is not None:
                    self.send_header(name, resp.getheader(name))
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            self.stream(resp, head, cut=hub.cutting and not head and resp.status in (200, 206))
        finally:
            conn.close()
