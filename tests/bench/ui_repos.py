#!/usr/bin/env python3
"""The web page's repository list under load: wharf's index filled with 10,000 repositories (one small
image PUT under each, as in the scale scenario), then `wrk --latency` on GET /api/repositories walking
pages 1..200 (50 per page) and searching. Reports p50/p99 latency and requests/s (the target is
p99 < 5 ms), and the same load on GET /v2/_catalog?n=50 as a control for the machine's noise. Started by `tests/bench/run --only ui` (prints the rows; writes nothing)."""
import argparse
import json
import os
import re
import signal
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path[:0] = [os.path.join(REPO_ROOT, "tests", "e2e"), os.path.join(REPO_ROOT, "tests", "imagegen"), HERE]

from harness import Context, TestFailure, check, run  # noqa: E402
from scale import Client, fill  # noqa: E402
from servers import Server  # noqa: E402

# wrk walks the pages (and a search) round-robin, one path per request.
LUA = """
local i = 0
request = function()
  i = i + 1
  local path
  if i %% 10 == 0 then
    path = "/api/repositories?q=r0%%d&per_page=50"
    path = string.format(path, i %% 100)
  else
    path = string.format("/api/repositories?page=%%d&per_page=50", (i %% %d) + 1)
  end
  return wrk.format("GET", path)
end
"""


def to_ms(value, unit):
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def latency(out, pct):
    m = re.search(r"^\s*%d%%\s+([\d.]+)(us|ms|s)\s*$" % pct, out, re.M)
    return to_ms(*m.groups()) if m else None


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--wharf-bin", default=os.path.join(REPO_ROOT, "build-release", "wharf"))
    p.add_argument("--repos", type=int, default=10000)
    p.add_argument("--duration", type=int, default=10)
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--budget", type=int, default=300, help="seconds allowed for the fill")
    args = p.parse_args(argv)
    binary = os.path.abspath(args.wharf_bin)
    check(os.access(binary, os.X_OK), "%s is not an executable" % binary)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ctx = Context("bench-ui", tempfile.mkdtemp(prefix="wharf-bench-ui-", dir="/tmp"))
    try:
        server = Server(ctx, "wharf", binary, "wharf-ui", ctx.mkdir("data")).start()
        repos, _, secs = fill(server, args.repos, args.repos, args.budget, 4)
        check(repos == args.repos, "the fill made %d of %d repositories in %d s" % (repos, args.repos, secs))
        c = Client(server.port)
        status, _, body = c.request("GET", "/api/repositories?page=3&per_page=50")
        c.close()
        page = json.loads(body)
        check(status == 200 and page["total"] == args.repos and len(page["items"]) == 50,
              "GET /api/repositories: %d %s" % (status, body[:200]))
        pages = (args.repos + 49) // 50
        script = ctx.path("pages.lua")
        with open(script, "w") as f:
            f.write(LUA % pages)
        out = run(["wrk", "--latency", "-t1", "-c%d" % args.connections, "-d%ds" % args.duration, "--timeout", "10s",
                   "-s", script, server.url + "/"], timeout=args.duration + 60).stdout
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
        check(non2xx is None, "wrk saw non-2xx answers:\n" + out)
        p50, p99 = latency(out, 50), latency(out, 99)
        print("| GET /api/repositories (%d repositories, 50 per page, %d connections) | p50 %.2f ms | p99 %.2f ms | "
              "%.0f req/s | fill %.0f s | target p99 < 5 ms: %s |" % (
                  args.repos, args.connections, p50, p99, rps, secs, "met" if p99 < 5 else "MISSED"))
        # The control: the same load on the cheapest listing, to tell the machine's scheduling noise apart.
        out = run(["wrk", "--latency", "-t1", "-c%d" % args.connections, "-d%ds" % args.duration, "--timeout", "10s",
                   server.url + "/v2/_catalog?n=50"], timeout=args.duration + 60).stdout
        print("| control: GET /v2/_catalog?n=50, same load | p50 %.2f ms | p99 %.2f ms | %.0f req/s | | |" % (
            latency(out, 50), latency(out, 99), float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))))
        server.stop()
        return 0
    except TestFailure as exc:
        print("bench ui: %s" % exc, file=sys.stderr)
        return 1
    finally:
        ctx.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
