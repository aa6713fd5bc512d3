"""Load generators: wrk against one URL (requests/s, transfer/s, errors), and ApacheBench for HEAD.

Debian's wrk 4.1.0 cannot do HEAD: with `wrk.method = "HEAD"` its response parser waits for a body
of Content-Length bytes that never comes, so every connection stalls after its first request (0
requests completed). HEAD is therefore measured with `ab -k -i` (keep-alive, one client thread)."""
import re

from harness import run

UNITS = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}


class WrkResult:
    def __init__(self, rps, bytes_per_s, non2xx, socket_errors, requests):
        self.rps = rps
        self.mib_s = bytes_per_s / (1 << 20)
        self.non2xx = non2xx
        self.socket_errors = socket_errors
        self.requests = requests

    @property
    def ok(self):
        return self.requests > 0 and self.non2xx == 0

    def problem(self):
        """'' or a short note on what went wrong (non-2xx answers, socket errors)."""
        notes = []
        if self.requests == 0:
            notes.append("no requests completed")
        if self.non2xx:
            notes.append("%d non-2xx" % self.non2xx)
        if self.socket_errors:
            notes.append("socket errors: %s" % self.socket_errors)
        return ", ".join(notes)


def wrk(url, duration, threads, connections, headers=(), script=None):
    """Runs `wrk -tT -cC -dD [-H ...] [-s script] url`; returns a WrkResult."""
    cmd = ["wrk", "-t%d" % threads, "-c%d" % connections, "-d%ds" % duration, "--timeout", "10s"]
    for h in headers:
        cmd += ["-H", h]
    if script:
        cmd += ["-s", script]
    out = run(cmd + [url], timeout=duration + 60).stdout
    rps = float(_find(r"Requests/sec:\s+([\d.]+)", out, "0"))
    transfer = re.search(r"Transfer/sec:\s+([\d.]+)([KMGT]?B)", out)
    bps = float(transfer.group(1)) * UNITS[transfer.group(2)] if transfer else 0.0
    non2xx = int(_find(r"Non-2xx or 3xx responses:\s+(\d+)", out, "0"))
    requests = int(_find(r"(\d+) requests in", out, "0"))
    sock = _find(r"Socket errors:\s+(.*)", out, "")
    errors = sum(int(n) for n in re.findall(r"\d+", sock))
    return WrkResult(rps, bps, non2xx, sock.strip() if errors else "", requests)


def _find(pattern, text, default):
    m = re.search(pattern, text)
    return m.group(1) if m else default


def ab_head(url, duration, connections, headers=(), keepalive=True):
    """HEAD load with ApacheBench (`ab [-k] -i -cC -tD`); returns a WrkResult (no transfer rate).

    ab speaks HTTP/1.0: with -k it reuses a connection only if the response says
    `Connection: keep-alive`, and otherwise waits for the server to close it (up to -s seconds)."""
    cmd = ["ab", "-q", "-i", "-c%d" % connections, "-t%d" % duration, "-n100000000", "-s5"]
    cmd += ["-k"] if keepalive else []
    for h in headers:
        cmd += ["-H", h]
    out = run(cmd + [url], timeout=duration + 60, check_rc=False).stdout
    rps = float(_find(r"Requests per second:\s+([\d.]+)", out, "0"))
    requests = int(_find(r"Complete requests:\s+(\d+)", out, "0"))
    non2xx = int(_find(r"Non-2xx responses:\s+(\d+)", out, "0"))
    failed = int(_find(r"Failed requests:\s+(\d+)", out, "0"))
    return WrkResult(rps, 0.0, non2xx, "%d failed" % failed if failed else "", requests)
