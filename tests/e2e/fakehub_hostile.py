"""A hostile upstream for the mirror tests: a registry on 127.0.0.1 without auth that serves exactly what
a test scripts, including what a real registry never would: bytes that do not match their digest,
lengths that lie or overflow, endless trickles, oversized manifests, Content-Types with control
characters. It counts concurrent blob downloads (max_active) so tests can check wharf's limits.

Every trickle and delay is bounded (at most TRICKLE_LIMIT seconds per response) and stops when the
hub stops, so no test can hang on it.
"""
import hashlib
import http.server
import json
import re
import threading
import time

from harness import check

MANIFEST_RE = re.compile(r"^/v2/(.+)/manifests/([^/]+)$")
BLOB_RE = re.compile(r"^/v2/(.+)/blobs/([a-z0-9]+:[0-9a-f]+)$")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
TRICKLE_LIMIT = 90.0


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Blob:
    """How one blob is served. data: the bytes sent; length: the Content-Length sent on GET (None: the
    real one; "chunked": none, chunked encoding); head_length: the Content-Length of a HEAD (default
    as for GET); trickle: (bytes, seconds) to send that many bytes per interval; delay: seconds to wait
    before answering a GET."""

    def __init__(self, data, length=None, head_length=None, trickle=None, delay=0.0):
        self.data = data
        self.length = length
        self.head_length = head_length
        self.trickle = trickle
        self.delay = delay


class HostileHub:
    def __init__(self, ctx, name="hostile"):
        self.ctx = ctx
        self.name = name
        self.manifests = {}  # (repo, ref) -> (body, content_type)
        self.blobs = {}      # digest -> Blob
        self._lock = threading.Lock()
        self._requests = []  # (method, kind, digest or ref)
        self.active = 0      # blob GETs being answered now
        self.max_active = 0
        self.stopping = threading.Event()
        self._server = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self):
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.hub = self
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True,
                         name=self.name).start()
        self.ctx.cleanups.append(self.stop)
        return self

    def stop(self):
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self._server.server_address[1]

    # -- content --------------------------------------------------------------------------------

    def add_blob(self, data, digest=None, **behaviour):
        """Serves `data` as blob `digest` (default: its real digest); returns the digest."""
        digest = digest or sha256(data)
        self.blobs[digest] = Blob(data, **behaviour)
        return digest

    def add_manifest(self, repo, ref, body, content_type=OCI_MANIFEST):
        """Serves `body` for repo:ref and repo@digest; returns its digest."""
        digest = sha256(body)
        self.manifests[(repo, ref)] = (body, content_type)
        self.manifests[(repo, digest)] = (body, content_type)
        return digest

    def add_image(self, repo, tag, layers, content_type=OCI_MANIFEST, media_type=OCI_MANIFEST, sizes=None):
        """An OCI image whose config and layers (list of bytes) are served as blobs; `sizes` overrides the
        sizes written in the layer descriptors. Returns (manifest digest, config digest, layer digests)."""
        config = json.dumps({"architecture": "amd64", "os": "linux",
                             "rootfs": {"type": "layers", "diff_ids": []}}).encode()
        config_digest = self.add_blob(config)
        digests = [self.add_blob(data) for data in layers]
        manifest = {"schemaVersion": 2,
                    "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
                    "layers": [{"mediaType": OCI_LAYER, "digest": d, "size": (sizes or {}).get(d, len(data))}
                               for d, data in zip(digests, layers)]}
        if media_type:
            manifest["mediaType"] = media_type
        body = json.dumps(manifest).encode()
        return self.add_manifest(repo, tag, body, content_type), config_digest, digests

    # -- what it saw ----------------------------------------------------------------------------

    def record(self, method, kind, ref):
        with self._lock:
            self._requests.append((method, kind, ref))

    def count(self, method=None, kind=None, ref=None):
        with self._lock:
            return sum(1 for m, k, r in self._requests
                       if (method is None or m == method) and (kind is None or k == kind) and (ref is None or r == ref))

    def summary(self):
        with self._lock:
            rows = list(self._requests)
        counts = {}
        for m, k, _ in rows:
            counts["%s %s" % (m, k)] = counts.get("%s %s" % (m, k), 0) + 1
        return ", ".join("%s=%d" % kv for kv in sorted(counts.items())) or "no requests"

    def enter(self):
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)

    def leave(self):
        with self._lock:
            self.active -= 1


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    @property
    def hub(self):
        return self.server.hub

    def do_GET(self):
        self.answer(head=False)

    def do_HEAD(self):
        self.answer(head=True)

    def answer(self, head):
        path = self.path.split("?", 1)[0]
        method = "HEAD" if head else "GET"
        if path in ("/v2", "/v2/"):
            self.hub.record(method, "base", None)
            return self.send(200, b"{}", "application/json", head)
        m = MANIFEST_RE.match(path)
        if m:
            self.hub.record(method, "manifest", m.group(2))
            found = self.hub.manifests.get((m.group(1), m.group(2)))
            if found is None:
                return self.send(404, oci_error("MANIFEST_UNKNOWN"), "application/json", head)
            body, ctype = found
            return self.send(200, body, ctype, head, extra={"Docker-Content-Digest": sha256(body)})
        m = BLOB_RE.match(path)
        if m:
            self.hub.record(method, "blob", m.group(2))
            blob = self.hub.blobs.get(m.group(2))
            if blob is None:
                return self.send(404, oci_error("BLOB_UNKNOWN"), "application/json", head)
            return self.send_blob(blob, head)
        self.hub.record(method, "other", path)
        self.send(404, oci_error("NAME_UNKNOWN"), "application/json", head)

    def send(self, status, body, ctype, head, extra=None, length=None):
        self.send_response(status)
        self.send_raw_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)) if length is None else length)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def send_raw_header(self, name, value):
        """A header sent as given, control characters included (send_header would too, but say so)."""
        self._headers_buffer.append(("%s: " % name).encode("latin-1") + value.encode("latin-1") + b"\r\n")

    def send_blob(self, blob, head):
        if head:
            length = blob.head_length if blob.head_length is not None else blob.length
            if length == "chunked":
                length = None
            return self.send(200, b"", "application/octet-stream", True,
                             length=str(len(blob.data)) if length is None else str(length))
        self.hub.enter()
        try:
            deadline = time.monotonic() + TRICKLE_LIMIT
            if blob.delay:
                self.hub.stopping.wait(blob.delay)
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            chunked = blob.length == "chunked"
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(len(blob.data)) if blob.length is None else str(blob.length))
            self.end_headers()
            step, pause = blob.trickle or (len(blob.data) or 1, 0)
            data = blob.data
            while data and time.monotonic() < deadline and not self.hub.stopping.is_set():
                piece, data = data[:step], data[step:]
                if chunked:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                else:
                    self.wfile.write(piece)
                self.wfile.flush()
                if pause and data:
                    self.hub.stopping.wait(pause)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            self.hub.leave()


def oci_error(code):
    return json.dumps({"errors": [{"code": code, "message": code.lower(), "detail": None}]}).encode()


def check_oci_error(resp, status, code, what, message_part=None):
    """resp is `status` with an OCI error body naming `code` (and whose message contains message_part)."""
    body = resp.body[:300].decode(errors="replace")
    check(resp.status == status and code in resp.error_codes(),
          "%s: expected %d %s, got %d %s" % (what, status, code, resp.status, body))
    if message_part:
        messages = " ".join(e.get("message", "") for e in resp.json().get("errors", []))
        check(message_part in messages, "%s: the error message %r does not say %r" % (what, messages, message_part))
