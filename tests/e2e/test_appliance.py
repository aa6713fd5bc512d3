"""wharf as a system service: the systemd units verify, `wharf serve` tells a notify socket READY=1
(and STOPPING=1), /debug/health answers, and /metrics is valid Prometheus text whose counters move."""
import os
import re
import shutil
import signal
import socket

from harness import REPO_ROOT, SERVER_BIN, check, check_eq, free_port, run, wait_for, wharf_only
from http_util import request

UNITS = ("wharf.service", "wharf-gc.service", "wharf-gc.timer")
# One sample line of the text exposition format: name{labels} value
SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? '
                    r'(-?[0-9.eE+-]+|NaN|[+-]Inf)$')


def copy_units(ctx, dest):
    os.makedirs(dest, exist_ok=True)
    for unit in UNITS:
        with open(os.path.join(REPO_ROOT, "systemd", unit)) as f:
            text = f.read()
        # Verify against the binary under test (systemd-analyze checks that ExecStart exists).
        with open(os.path.join(dest, unit), "w") as f:
            f.write(text.replace("/usr/local/bin/wharf", SERVER_BIN))
    return [os.path.join(dest, u) for u in UNITS]


@wharf_only("wharf's systemd units")
def test_units_verify(ctx):
    check(shutil.which("systemd-analyze"), "systemd-analyze is not installed")
    units = copy_units(ctx, ctx.path("units"))
    res = run(["systemd-analyze", "verify", "--man=no"] + units, check_rc=False, timeout=60)
    check_eq((res.returncode, res.stderr.strip()), (0, ""), "systemd-analyze verify of %s" % ", ".join(UNITS))
    # The check itself can fail: a unit with an unknown section is refused.
    broken = ctx.path("units", "broken.service")
    with open(broken, "w") as f:
        f.write("[Service]\nExecStart=%s serve\nType=bogus\n" % SERVER_BIN)
    res = run(["systemd-analyze", "verify", "--man=no", broken], check_rc=False, timeout=60)
    check(res.returncode != 0 or res.stderr.strip(), "systemd-analyze accepted Type=bogus")


@wharf_only("wharf's sd_notify")
def test_notify_ready_and_stopping(ctx):
    path = ctx.short_dir("ntf") + "/notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    try:
        reg = ctx.registry()
        proc = ctx.spawn([SERVER_BIN, "serve", reg.config_path], "notify", env={"NOTIFY_SOCKET": path})
        messages = []
        for _ in range(20):
            messages.append(sock.recv(4096).decode())
            if any("READY=1" in m for m in messages):
                break
        check(any("READY=1" in m for m in messages), "no READY=1 on the notify socket: %r" % messages)
        check_eq(request("GET", reg.url + "/v2/", timeout=10).status, 200, "GET /v2/ once READY=1 was sent")
        proc.send_signal(signal.SIGTERM)
        for _ in range(20):
            msg = sock.recv(4096).decode()
            if "STOPPING=1" in msg:
                break
        else:
            check(False, "no STOPPING=1 after SIGTERM")
        check_eq(proc.wait(timeout=15), 0, "exit code after SIGTERM")
    finally:
        sock.close()


def scrape(url):
    r = request("GET", url, timeout=10)
    check_eq(r.status, 200, "GET " + url)
    check(r.header("Content-Type", "").startswith("text/plain"), "metrics Content-Type: %r" % r.header("Content-Type"))
    text = r.body.decode()
    values = {}
    for line in text.splitlines():
        if not line or line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        check(SAMPLE.match(line), "not a Prometheus sample line: %r" % line)
        name, value = line.rsplit(" ", 1)
        values[name] = float(value)
    return values


@wharf_only("wharf's health and metrics")
def test_health_and_metrics(ctx):
    debug_port = free_port()
    reg = ctx.registry(extra={"http": {"debug": {"addr": "127.0.0.1:%d" % debug_port,
                                                 "prometheus": {"enabled": True, "path": "/metrics"}}}}).start()
    metrics_url = "http://127.0.0.1:%d/metrics" % debug_port
    check_eq(reg.req("GET", "/debug/health").status, 200, "/debug/health on the main listener")
    check_eq(request("GET", "http://127.0.0.1:%d/debug/health" % debug_port, timeout=10).status, 200,
             "/debug/health on the debug listener")
    before = scrape(metrics_url)
    img = reg.push_image("e2e/metrics", "1")
    dest = ctx.path("pulled")
    ctx.skopeo("copy", "--src-tls-verify=false", "docker://%s/e2e/metrics:1" % reg.host, "oci:" + dest)
    after = scrape(metrics_url)
    key = 'wharf_http_requests_total{method="GET",route="manifest",status="200"}'
    check(after.get(key, 0) > before.get(key, 0), "manifest GETs counted: %s -> %s" % (before.get(key), after.get(key)))
    local = 'wharf_cache_requests_total{status="LOCAL"}'
    check(after[local] >= before[local] + 1 + len(img["layers"]), "LOCAL reads counted: %s -> %s" % (
        before[local], after[local]))
    check(after["wharf_cache_served_bytes_total"] > before["wharf_cache_served_bytes_total"], "bytes served counted")
    check(any(k.startswith("wharf_http_request_duration_seconds_bucket") for k in after), "duration histogram")
    check(any(k.startswith("wharf_http_request_duration_seconds_bucket") for k in after), "duration histogram")


@wharf_only("wharf's health check")
def test_health_reports_unwritable_storage(ctx):
    reg = ctx.registry(extra={"health": {"storagedriver": {"enabled": True, "interval": "1s", "threshold": 1}}}).start()
    check_eq(reg.req("GET", "/debug/health").status, 200, "health before the fault")
    tmp = os.path.join(reg.root, "tmp")
    os.rename(tmp, tmp + ".moved")
    with open(tmp, "w") as f:  # a file where the store's temp directory should be: writes there fail, even as root
        f.write("not a directory")
    try:
        wait_for(lambda: reg.req("GET", "/debug/health").status == 503, "health 503 with unwritable storage",
                 tries=50, interval=0.2)
        r = reg.req("GET", "/debug/health")
        check("storagedriver_filesystem" in r.json(), "the 503 names the failing check: %r" % r.body)
    finally:
        os.unlink(tmp)
        os.rename(tmp + ".moved", tmp)
    wait_for(lambda: reg.req("GET", "/debug/health").status == 200, "health back to 200", tries=50, interval=0.2)


@wharf_only("wharf's mirror metrics")
def test_mirror_pull_moves_hit_miss_and_upstream_counters(ctx):
    from mirror_util import Mirror
    debug_port = free_port()
    debug = {"http": {"debug": {"addr": "127.0.0.1:%d" % debug_port, "prometheus": {"enabled": True}}}}
    with Mirror(ctx, extra=debug) as m:
        img = ctx.image(name="met", layers=2, size=64 << 10, seed=97)
        m.hub.push(img, "library/met", "1")
        url = "http://127.0.0.1:%d/metrics" % debug_port
        m.skopeo_pull("library/met", "1", ctx.path("first"))
        first = scrape(url)
        # The manifest is a miss; its blobs were prefetched with it, so the client finds them under way
        # (misses) or already stored (hits), depending on timing.
        check(first["wharf_cache_misses_total"] >= 1, "misses after a cold pull: %s" % first["wharf_cache_misses_total"])
        check_eq(first["wharf_prefetched_blobs_total"], 1 + len(img["layers"]),
                 "blobs prefetched with the manifest (config and layers)")
        check(first["wharf_upstream_fetched_bytes_total"] > 0, "bytes fetched from the upstream")
        check(any(k.startswith("wharf_upstream_requests_total{upstream=\"docker.io\"") for k in first),
              "upstream requests counted by upstream")
        check(any(k.startswith("wharf_upstream_ratelimit_remaining") for k in first), "ratelimit-remaining gauge")
        m.skopeo_pull("library/met", "1", ctx.path("second"))
        second = scrape(url)
        check(second["wharf_cache_hits_total"] > first["wharf_cache_hits_total"], "hits after a warm pull: %s -> %s" % (
            first["wharf_cache_hits_total"], second["wharf_cache_hits_total"]))
        check_eq(second["wharf_cache_misses_total"], first["wharf_cache_misses_total"], "no new misses on a warm pull")
