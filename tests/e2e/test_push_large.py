"""Large pushes through the staged-write pipeline: the event loop gathers the body into blocks, workers
write and hash them, and the socket is paused while the worker is behind. Covered: a body of many
blocks as a monolithic POST, as a PUT, as a chunked-encoding PATCH, several at once; a wrong digest after
many blocks; a PATCH cut off after several blocks keeps what arrived and the push resumes from there;
the same over TLS."""
import os
import socket
import threading

from harness import check, check_eq, imagegen, wait_for
from http_util import expect_error, with_query

OCTET = {"Content-Type": "application/octet-stream"}
SIZE = 12 << 20  # about a hundred pipeline blocks


def chunked(data, piece):
    """`data` in Transfer-Encoding: chunked framing, `piece` bytes per chunk."""
    for i in range(0, len(data), piece):
        part = data[i:i + piece]
        yield b"%x\r\n" % len(part) + part + b"\r\n"
    yield b"0\r\n\r\n"


def pushed_intact(reg, repo, data, how):
    """Pushes `data` one way (monolithic, put, patch) and checks the stored bytes; returns its digest."""
    digest = imagegen.sha256(data)
    if how == "monolithic":
        r = reg.req("POST", "/v2/%s/blobs/uploads/?digest=%s" % (repo, digest), OCTET, data, timeout=120)
    else:
        loc = reg.start_upload(repo)
        if how == "patch":
            p = reg.req("PATCH", loc, dict(OCTET, **{"Transfer-Encoding": "chunked"}),
                        chunked(data, 1 << 20 | 4321), timeout=120)
            check_eq(p.status, 202, "chunked PATCH of %d bytes (%r)" % (len(data), p))
            check_eq(p.header("Range"), "0-%d" % (len(data) - 1), "Range after the chunked PATCH")
            loc, data_left = reg.location_path(p), b""
        else:
            data_left = data
        r = reg.req("PUT", with_query(loc, "digest=" + digest), OCTET, data_left, timeout=120)
    check_eq(r.status, 201, "%s push of %d bytes (%r)" % (how, len(data), r))
    got = reg.req("GET", "/v2/%s/blobs/%s" % (repo, digest), timeout=120)
    check(got.status == 200 and got.body == data, "%s push: GET answered %d with %d bytes (%s)" % (
        how, got.status, len(got.body), "same bytes" if got.body == data else "different bytes"))
    return digest


def test_large_pushes_every_way_and_at_once(ctx):
    reg = ctx.registry().start()
    for i, how in enumerate(("monolithic", "put", "patch")):
        pushed_intact(reg, "e2e/large", os.urandom(SIZE + i), how)
    # Three at once: their write jobs share the worker pool and their sockets pause independently.
    errors = []

    def one(how, data):
        try:
            pushed_intact(reg, "e2e/large-" + how, data, how)
        except AssertionError as exc:
            errors.append(str(exc))
    threads = [threading.Thread(target=one, args=(how, os.urandom(SIZE - 7 * i)))
               for i, how in enumerate(("monolithic", "put", "patch"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    check(not any(t.is_alive() for t in threads), "a concurrent push did not finish within 180 s")
    check(not errors, "concurrent pushes: %s" % "; ".join(errors))


def test_large_push_with_wrong_digest_is_refused(ctx):
    reg = ctx.registry().start()
    data = os.urandom(SIZE)
    wrong = imagegen.sha256(data + b"x")
    r = reg.req("POST", "/v2/e2e/wrong/blobs/uploads/?digest=" + wrong, OCTET, data, timeout=120)
    expect_error(r, 400, "DIGEST_INVALID", "monolithic push of %d bytes under a wrong digest" % len(data))
    check_eq(reg.req("HEAD", "/v2/e2e/wrong/blobs/" + wrong).status, 404, "HEAD of the refused blob")
    check_eq(reg.req("HEAD", "/v2/e2e/wrong/blobs/" + imagegen.sha256(data)).status, 404,
             "HEAD of the real digest of the refused bytes")


def test_cut_off_patch_keeps_what_arrived(ctx):
    reg = ctx.registry().start()
    data = os.urandom(6 << 20)
    sent = (3 << 20) + 1000  # several whole blocks and a partial one
    loc = reg.start_upload("e2e/cut")
    s = socket.create_connection(("127.0.0.1", reg.port), timeout=60)
    s.sendall(("PATCH %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n"
               % (loc, len(data))).encode() + data[:sent])
    s.close()

    def at_sent():
        r = reg.req("GET", loc)
        return r.status == 204 and r.header("Range") == "0-%d" % (sent - 1)
    wait_for(at_sent, "the session at %d bytes after the cut-off PATCH (now %r)" % (
        sent, reg.req("GET", loc).header("Range")), tries=100, interval=0.1)
    r = reg.req("PUT", with_query(loc, "digest=" + imagegen.sha256(data)),
                dict(OCTET, **{"Content-Range": "%d-%d" % (sent, len(data) - 1)}), data[sent:], timeout=120)
    check_eq(r.status, 201, "the resumed push (%r)" % r)
    got = reg.req("GET", "/v2/e2e/cut/blobs/" + imagegen.sha256(data), timeout=120)
    check(got.status == 200 and got.body == data, "GET of the resumed blob: %d, %d bytes" % (got.status, len(got.body)))


def test_large_pushes_over_tls(ctx):
    # Over TLS a paused body stays in the bufferevent, which stops reading at its high watermark.
    from test_tls import make_cert  # noqa: PLC0415 - the TLS suite's self-signed certificate
    cert, key, _ = make_cert(ctx)
    reg = ctx.registry(tls=(cert, key)).start()
    for i, how in enumerate(("monolithic", "patch", "put")):
        pushed_intact(reg, "e2e/tls-large", os.urandom(SIZE + i), how)
