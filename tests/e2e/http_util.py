"""HTTP for the e2e tests: one request per connection via http.client, raw paths, no redirects."""
import base64
import http.client
import json
import ssl

from harness import TestFailure, check


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


def with_query(path, query):
    return path + ("&" if "?" in path else "?") + query


def expect_error(resp, status, codes, what):
    """Fails unless resp has `status` and its OCI error body names one of `codes` (a str or a tuple)."""
    codes = (codes,) if isinstance(codes, str) else tuple(codes)
    check(resp.status == status and any(c in codes for c in resp.error_codes()),
          "%s: expected %d %s, got %d %s" % (what, status, "/".join(codes), resp.status,
                                             resp.body[:200].decode(errors="replace")))
