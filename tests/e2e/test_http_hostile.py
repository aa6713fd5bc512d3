"""wharf's HTTP server against hostile or sloppy clients: slow heads and bodies, control characters,
bare-LF and HTTP/0.9 request lines, answers sent before the body was read, running out of file
descriptors. Every wait is bounded; no check depends on how long something took."""
import os
import socket
import ssl
import time

from harness import SERVER_BIN, check, check_eq, wharf_only
from http_util import request


def connect(reg, timeout=10):
    return socket.create_connection(("127.0.0.1", reg.port), timeout=timeout)


def read_response(sock, limit=30.0):
    """Reads one response (head + Content-Length body) or up to EOF; returns (bytes, closed)."""
    data = b""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and len(data) < (1 << 20):
        head_end = data.find(b"\r\n\r\n")
        if head_end >= 0:
            length = 0
            for line in data[:head_end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            if len(data) >= head_end + 4 + length:
                return data, False
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            return data, True
        data += chunk
    return data, False


def status_of(data):
    line = data.split(b"\r\n", 1)[0]
    parts = line.split(b" ", 2)
    return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None


def raw(reg, payload, limit=10.0):
    """Sends `payload` on a fresh connection and returns (first response bytes, closed)."""
    s = connect(reg)
    try:
        s.sendall(payload)
        return read_response(s, limit)
    finally:
        s.close()


@wharf_only("wharf's header deadline (http.limits.headertimeout)")
def test_slow_header_gets_408(ctx):
    reg = ctx.registry(extra={"http": {"limits": {"headertimeout": "1s"}}}).start()
    s = connect(reg)
    try:
        s.sendall(b"GET /v2/ HTTP/1.1\r\n")
        data = b""
        # One header byte every 0.2 s: each byte would reset an idle timer; the whole head must arrive
        # within 1 s. Bounded: at most 100 bytes (20 s).
        for _ in range(100):
            try:
                s.sendall(b"x")
            except (BrokenPipeError, ConnectionResetError):
                break
            s.settimeout(0.2)
            try:
                chunk = s.recv(4096)
            except socket.timeout:
                continue
            data += chunk
            break
        more, _ = read_response(s, 5)
        data += more
        check_eq(status_of(data), 408, "status for a head trickling in for longer than headertimeout (%r)" % data[:60])
        check(b"Connection: close" in data, "408 says Connection: close: %r" % data[:200])
    finally:
        s.close()
    # A connection that never sends a byte is closed after the deadline too.
    s = connect(reg)
    try:
        data, closed = read_response(s, 15)
        check(closed or status_of(data) == 408,
              "a silent connection was neither answered 408 nor closed after headertimeout: %r" % data[:60])
    finally:
        s.close()
    check_eq(request("GET", reg.url + "/v2/").status, 200, "GET /v2/ after the slow clients")


@wharf_only("wharf's minimum body rate (http.limits.minbodyrate)")
def test_slow_body_gets_408(ctx):
    reg = ctx.registry(extra={"http": {"limits": {"minbodyrate": 1000, "bodyrateperiod": "1s"}}}).start()
    s = connect(reg)
    try:
        s.sendall(b"PUT /v2/e2e/slow/manifests/v1 HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
                  b"Content-Type: application/vnd.oci.image.manifest.v1+json\r\n\r\n{")
        data = b""
        for _ in range(100):  # 10 bytes every 0.2 s = 50 bytes/s, far below 1000; at most 20 s
            try:
                s.sendall(b" " * 10)
            except (BrokenPipeError, ConnectionResetError):
                break
            s.settimeout(0.2)
            try:
                data = s.recv(4096)
            except socket.timeout:
                continue
            break
        more, _ = read_response(s, 5)
        data += more
        check_eq(status_of(data), 408, "status for a body below minbodyrate (%r)" % data[:60])
        check(b'"errors"' in data, "408 has an OCI error body: %r" % data[-200:])
    finally:
        s.close()
    # A body at a normal rate still gets through.
    r = request("PUT", reg.url + "/v2/e2e/slow/manifests/v1", {"Content-Type": "application/json"},
                body=b"{" + b" " * 50000 + b"}")
    check(r.status == 400, "a fast (if invalid) manifest is read and judged, got %d" % r.status)


@wharf_only("wharf's header grammar")
def test_control_characters_in_headers_are_400(ctx):
    reg = ctx.registry().start()
    for name, head in [("bare CR", b"X-A: a\rb"), ("NUL", b"X-A: a\x00b"), ("escape", b"X-A: a\x1bb"),
                       ("obs-fold", b"X-A: a\r\n b"), ("space before colon", b"X-A : b"),
                       ("signed Content-Length", b"Content-Length: +0"),
                       ("differing Content-Lengths", b"Content-Length: 0\r\nContent-Length: 1"),
                       ("huge Content-Length", b"Content-Length: 99999999999999999999"),
                       ("chunked and Content-Length", b"Transfer-Encoding: chunked\r\nContent-Length: 1")]:
        data, _ = raw(reg, b"GET /v2/ HTTP/1.1\r\nHost: x\r\n" + head + b"\r\n\r\n")
        check_eq(status_of(data), 400, "status for a header with %s (%r)" % (name, data[:60]))
        check(b'"errors"' in data, "%s: the 400 has an OCI error body: %r" % (name, data[-120:]))
    data, _ = raw(reg, b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-A: a\tb \xc3\xa9\r\n\r\n")
    check_eq(status_of(data), 200, "status for a header with a tab and UTF-8")


@wharf_only("wharf answers malformed request lines at once")
def test_bare_lf_and_http09_are_answered_at_once(ctx):
    reg = ctx.registry().start()
    # Bare LF line endings are accepted, as nginx does, also on a kept-alive connection.
    s = connect(reg)
    try:
        s.sendall(b"GET /v2/ HTTP/1.1\nHost: x\n\n")
        data, _ = read_response(s, 10)
        check_eq(status_of(data), 200, "status for a bare-LF request (%r)" % data[:60])
        s.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\n\r\n")
        data, _ = read_response(s, 10)
        check_eq(status_of(data), 200, "status for a second, mixed-endings request (%r)" % data[:60])
    finally:
        s.close()
    # What cannot be an HTTP/1.x request line is refused as soon as it is seen, without waiting for
    # a blank line that will never come (the connection stays open on the client's side).
    for what, line in [("HTTP/0.9", b"GET /\r\n"), ("HTTP/0.9 with LF", b"GET /v2/\n"),
                       ("no version", b"GET\r\n"), ("binary", b"\x00\x01\x02\x03"),
                       ("bare CR", b"GET / HTTP/1.1\rX")]:
        data, closed = raw(reg, line, limit=10)
        check_eq(status_of(data), 400, "status for %s (%r)" % (what, data[:60]))
    data, _ = raw(reg, b"GET /v2/ HTTP/2.0\r\n\r\n")
    check(data.startswith(b"HTTP/1.1 505 HTTP Version Not Supported\r\n"), "505 status line: %r" % data[:60])


def send_body_then_read(reg, head, body_len):
    """Sends `head` and a body of body_len bytes as fast as possible, then reads the answer; fails on a
    reset (the answer lost) instead of a status."""
    s = connect(reg, timeout=30)
    try:
        s.sendall(head)
        block = b"\0" * 65536
        sent = 0
        try:
            while sent < body_len:
                n = s.send(block[:min(len(block), body_len - sent)])
                sent += n
        except (BrokenPipeError, ConnectionResetError) as exc:
            check(False, "connection reset after %d of %d body bytes: %s" % (sent, body_len, exc))
        try:
            data, _ = read_response(s, 20)
        except ConnectionResetError:
            check(False, "connection reset before the answer could be read (%d body bytes sent)" % sent)
        return data
    finally:
        s.close()


@wharf_only("wharf's lingering close")
def test_early_answer_survives_an_unread_body(ctx):
    reg = ctx.registry(users={"alice": "secret"}).start()
    # 401 before the body is read: the client still sends its 8 MiB, then reads the answer.
    data = send_body_then_read(reg, b"PUT /v2/e2e/early/manifests/v1 HTTP/1.1\r\nHost: x\r\n"
                               b"Content-Type: application/vnd.oci.image.manifest.v1+json\r\n"
                               b"Content-Length: 8388608\r\n\r\n", 8 << 20)
    check_eq(status_of(data), 401, "status for an unauthenticated 8 MiB PUT (%r)" % data[:60])
    check(b"Connection: close" in data, "the early 401 says Connection: close")
    # 413 after part of the body was read (a manifest over the 4 MiB limit).
    auth = "Authorization: Basic YWxpY2U6c2VjcmV0\r\n".encode()
    data = send_body_then_read(reg, b"PUT /v2/e2e/early/manifests/v1 HTTP/1.1\r\nHost: x\r\n" + auth +
                               b"Content-Type: application/vnd.oci.image.manifest.v1+json\r\n"
                               b"Content-Length: 8388608\r\n\r\n", 8 << 20)
    check_eq(status_of(data), 413, "status for an 8 MiB manifest (%r)" % data[:60])
    check(b'"errors"' in data, "the 413 has an OCI error body")


def open_fds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return -1


@wharf_only("wharf's accept() backoff")
def test_running_out_of_fds_backs_off_and_recovers(ctx):
    reg = ctx.registry()
    reg.proc = ctx.spawn(["prlimit", "--nofile=64:64", SERVER_BIN, "serve", reg.config_path], reg.name)
    for _ in range(100):
        try:
            if request("GET", reg.url + "/v2/", timeout=2).status == 200:
                break
        except OSError:
            time.sleep(0.1)
    else:
        check(False, "wharf under prlimit --nofile=64 did not answer: %s" % reg.log_tail(3))
    log = ctx.path(reg.name + ".log")
    socks = []
    try:
        for _ in range(150):  # more than the 64 descriptors wharf may hold; the rest wait in the backlog
            socks.append(connect(reg))
        size_before = os.path.getsize(log)
        time.sleep(3)  # wharf is out of descriptors for these 3 s
        grown = os.path.getsize(log) - size_before
        check(grown < 16 * 1024, "the log grew by %d bytes in 3 s of EMFILE" % grown)
        check(reg.proc.poll() is None, "wharf exited while out of descriptors")
        with open(log, "rb") as f:
            text = f.read()
        check(b"accept() on" in text and b"Too many open files" in text,
              "the accept failure is logged with its reason: %r" % text[-300:])
        check(b"open files limit: 64" in text, "the open files limit is logged at start")
    finally:
        for s in socks:
            s.close()
    # Once the clients are gone, wharf serves again (bounded wait).
    ok = False
    for _ in range(100):
        try:
            ok = request("GET", reg.url + "/v2/", timeout=2).status == 200
        except OSError:
            ok = False
        if ok:
            break
        time.sleep(0.1)
    check(ok, "wharf did not serve again after the connections closed: %s" % reg.log_tail(3))
    check(open_fds(reg.proc.pid) < 64, "wharf still holds %d descriptors" % open_fds(reg.proc.pid))


@wharf_only("wharf's header deadline covers the TLS handshake")
def test_tls_handshake_and_head_within_the_deadline(ctx):
    from test_tls import make_cert  # noqa: PLC0415 - the TLS tests' certificate helper
    cert, key, _ = make_cert(ctx)
    reg = ctx.registry(tls=(cert, key), extra={"http": {"limits": {"headertimeout": "1s"}}}).start()
    # A client that connects and never starts the handshake is closed after the deadline (no answer:
    # there is no TLS session to answer on).
    s = connect(reg)
    try:
        data, closed = read_response(s, 15)
        check(closed and data == b"", "a silent TLS connection: closed %s, got %r" % (closed, data[:60]))
    finally:
        s.close()
    # A client that completes the handshake, then trickles its head, gets 408 over TLS.
    tls = ssl._create_unverified_context()  # noqa: SLF001 - the test pins nothing
    s = tls.wrap_socket(connect(reg), server_hostname="127.0.0.1")
    try:
        s.sendall(b"GET /v2/ HTTP/1.1\r\n")
        data = b""
        for _ in range(100):  # at most 20 s
            try:
                s.sendall(b"x")
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                break
            s.settimeout(0.2)
            try:
                data = s.recv(4096)
            except (socket.timeout, ssl.SSLWantReadError):
                continue
            break
        check_eq(status_of(data), 408, "status for a slow head over TLS (%r)" % data[:60])
    finally:
        s.close()
