"""Fleet rows (F.) of the benchmark: manifest GET by tag through one wharf whose index is in PostgreSQL
(tests/e2e/postgres.py, a throwaway server on this machine), with its LISTEN/NOTIFY lookup cache on and
off, next to a single-node wharf on LMDB (the target: PostgreSQL with the cache at least 50% of LMDB);
then three PostgreSQL fronts on one database loaded at once, the same through Debian's haproxy (round-robin),
the peak RSS (VmHWM) of every server, and a cold pull through three mirror fronts behind haproxy: 8 concurrent
pullers of one multi-layer image from a fake Docker Hub (tests/e2e/fakehub.py), the time until all have every
blob, and how many upstream GETs each blob cost.
Every wrk cell runs `--rounds` times with the servers alternating; the median is shown.

    python3 tests/bench/fleet.py [--wharf-bin build-release/wharf] [--duration 5] [--rounds 3]
    bash tests/bench/run --only fleet      # the same through the bench driver

Results go to tests/bench/RESULTS-fleet.md."""
import argparse
import datetime
import os
import shutil
import statistics
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path[:0] = [os.path.join(REPO_ROOT, "tests", "e2e"), os.path.join(REPO_ROOT, "tests", "imagegen"), HERE]


def peak_rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def start_haproxy(ctx, hosts):
    """Debian's haproxy balancing round-robin over `hosts` (tests/e2e/fleet.py's config); its URL."""
    import harness  # noqa: PLC0415
    from fleet import haproxy_config  # noqa: PLC0415
    from http_util import request  # noqa: PLC0415
    port = harness.free_port()
    cfg = ctx.path("haproxy-%d.cfg" % port)
    with open(cfg, "w") as f:
        f.write(haproxy_config(port, hosts))
    proc = ctx.spawn(["haproxy", "-db", "-f", cfg], "haproxy-%d" % port)
    url = "http://127.0.0.1:%d" % port

    def ready():
        if proc.poll() is not None:
            raise harness.TestFailure("haproxy exited with %s" % proc.returncode)
        try:
            return request("GET", url + "/v2/", timeout=2).status == 200
        except OSError:
            return False
    harness.wait_for(ready, "haproxy to answer /v2/", tries=200, interval=0.1)
    return url


def cold_pull(ctx, pg, server, pullers=8, layers=4, size=8 << 20):
    """F5/F6: `pullers` concurrent pulls of one cold image (config + `layers` layers of `size` bytes) through
    haproxy to 3 mirror fronts sharing a PostgreSQL database and a store; wall time until every puller has
    every blob (bytes verified), and the fake hub's GETs per blob."""
    import hashlib  # noqa: PLC0415
    import time  # noqa: PLC0415
    from fakehub import FakeHub  # noqa: PLC0415
    from http_util import request  # noqa: PLC0415
    hub = FakeHub(ctx).start()
    img = ctx.image(name="cold", layers=layers, size=size, seed=91)
    repo = "library/coldbench"
    hub.push(img, repo, "v1")
    db = pg.create_database("fleet_cold")
    proxy = {"remoteurl": hub.url, "upstreams": [{"name": "docker.io", "url": hub.url}]}
    root = ctx.mkdir("cold-data")
    fronts = [server("mirror%d" % i, {"dsn": pg.dsn(db), "poolsize": 8}, root=root, proxy=proxy) for i in range(3)]
    lb = start_haproxy(ctx, [f.host for f in fronts])
    blobs = [img["config_digest"]] + list(img["layers"])
    bad = []

    def pull():
        for dg in blobs:
            r = request("GET", lb + "/v2/%s/blobs/%s" % (repo, dg), timeout=300)
            if r.status != 200 or "sha256:" + hashlib.sha256(r.body).hexdigest() != dg:
                bad.append((dg, r.status))
    threads = [threading.Thread(target=pull) for _ in range(pullers)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    took = time.monotonic() - start
    gets = [hub.log.cdn_gets(dg) for dg in blobs]
    rss = " / ".join("%.1f" % peak_rss_mib(f.proc.pid) for f in fronts)
    return ["| F5 cold pull through haproxy to 3 mirror fronts: %d pullers x (config + %d x %d MiB layers), "
            "until all have every blob (s)%s | | %.1f | |" % (pullers, layers, size >> 20,
                                                               " — %d WRONG" % len(bad) if bad else "", took),
            "| F6 upstream GETs per blob for those %d pulls (fake hub's count, per blob) | | %s | |"
            % (pullers, ", ".join(str(g) for g in gets)),
            "| F7 peak RSS of the 3 mirror fronts after F5 (MiB) | | %s | |" % rss]


def run_fleet(wharf_bin, duration, rounds, results):
    os.environ["WHARF_BIN"] = wharf_bin  # before harness is imported: registry.Registry starts this binary
    import harness  # noqa: PLC0415
    import postgres  # noqa: PLC0415
    from registry import MANIFEST_ACCEPT, Registry  # noqa: PLC0415
    from wrk import wrk  # noqa: PLC0415

    directory = tempfile.mkdtemp(prefix="wharf-fleet-", dir="/tmp")
    ctx = harness.Context("fleet", directory)
    pg = None
    lines = []
    try:
        pg = postgres.start()
        db = pg.create_database("fleet_bench")
        quiet = {"log": {"level": "warn", "accesslog": {"disabled": True}}}

        def server(name, database=None, root=None, proxy=None):
            extra = dict(quiet)
            if database is not None:
                extra["database"] = database
            if proxy is not None:
                extra["proxy"] = proxy
            return Registry(ctx, name=name, root=root, extra=extra).start(tries=300)

        lmdb = server("lmdb")
        cached = server("pg-cache", {"dsn": pg.dsn(db), "poolsize": 8})
        uncached = server("pg-nocache", {"dsn": pg.dsn(db), "poolsize": 8, "notifycache": False},
                          root=cached.root)
        for s in (lmdb, cached):  # pg-nocache shares pg-cache's root and database
            s.push_image("bench/app", "v1", layers=2, size=4096, seed=5)
        accept = "Accept: " + MANIFEST_ACCEPT.split(",")[0]
        path = "/v2/bench/app/manifests/v1"
        cells = {"lmdb": [], "pg-cache": [], "pg-nocache": []}
        for _ in range(rounds):
            for s in (lmdb, cached, uncached):
                r = wrk(s.url + path, duration, 2, 16, headers=[accept])
                cells[s.name].append(r.rps if r.ok else 0.0)
        med = {k: statistics.median(v) for k, v in cells.items()}
        lines.append("| F1 manifest GET by tag, one front (req/s, wrk -t2 -c16, median of %d) | %.0f | %.0f (%.0f%%) "
                     "| %.0f (%.0f%%) |" % (rounds, med["lmdb"], med["pg-cache"], 100 * med["pg-cache"] / med["lmdb"],
                                            med["pg-nocache"], 100 * med["pg-nocache"] / med["lmdb"]))
        notes = ["runs: " + "; ".join("%s %s" % (k, ", ".join("%.0f" % x for x in v)) for k, v in cells.items())]

        fronts = [cached] + [server("front%d" % i, {"dsn": pg.dsn(db), "poolsize": 8}, root=cached.root)
                             for i in (1, 2)]
        out = {}

        def load(front):
            out[front.name] = wrk(front.url + path, duration, 1, 8, headers=[accept])
        threads = [threading.Thread(target=load, args=(f,)) for f in fronts]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        total = sum(r.rps for r in out.values() if r.ok)
        lines.append("| F2 the same on 3 fronts at once (sum of 3 wrk -t1 -c8; one machine, 2 cores) | | %.0f | |"
                     % total)
        lb = start_haproxy(ctx, [f.host for f in fronts])
        through = [wrk(lb + path, duration, 2, 16, headers=[accept]) for _ in range(rounds)]
        lines.append("| F4 the same through haproxy to the 3 fronts (wrk -t2 -c16, median of %d) | | %.0f | |"
                     % (rounds, statistics.median(r.rps if r.ok else 0.0 for r in through)))
        rss = {s.name: peak_rss_mib(s.proc.pid) for s in [lmdb, uncached] + fronts}
        lines.append("| F3 peak RSS per server (VmHWM, MiB) | %.1f | %s | %.1f |" % (
            rss["lmdb"], " / ".join("%.1f" % rss[f.name] for f in fronts), rss["pg-nocache"]))
        lines += cold_pull(ctx, pg, server)
    finally:
        ctx.close()
        if pg is not None:
            pg.stop()
        shutil.rmtree(directory, ignore_errors=True)
    text = ("# wharf fleet benchmark (F.)\n\n%s UTC, %s, %d cores shared with the load generator and PostgreSQL.\n\n"
            "| Row | wharf on LMDB | wharf on PostgreSQL, cache on | PostgreSQL, `database.notifycache: false` |\n"
            "|-----|---|---|---|\n" % (datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M"), wharf_bin,
                                        os.cpu_count())
            + "\n".join(lines) + "\n\nTarget (issue 11): F1 with the cache at least 50% of LMDB.\n\n"
            + "\n".join("- " + n for n in notes) + "\n")
    with open(results, "w") as f:
        f.write(text)
    print(text)
    return 0


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--wharf-bin", default=os.path.join(REPO_ROOT, "build-release", "wharf"))
    p.add_argument("--duration", type=int, default=5, help="seconds per wrk run (default 5)")
    p.add_argument("--rounds", type=int, default=3, help="runs per server, alternating (default 3)")
    p.add_argument("--results", default=os.path.join(HERE, "RESULTS-fleet.md"))
    args, _ = p.parse_known_args(argv)
    return run_fleet(os.path.abspath(args.wharf_bin), args.duration, args.rounds, args.results)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
