"""Operating a running wharf: credentials reloaded when the htpasswd file changes, JSON logs, and a
clean stop on SIGTERM."""
import json
import os
import signal
import time

from harness import check, check_eq, run, wait_for, wharf_only
from http_util import basic_auth
from registry import htpasswd_file


@wharf_only("wharf reloads htpasswd when the file changes")
def test_htpasswd_reload_without_restart(ctx):
    reg = ctx.registry(users={"alice": "alice-pw"}).start()
    check_eq(reg.req("GET", "/v2/").status, 200, "alice before the change")
    bob = {"Authorization": basic_auth("bob", "bob-pw")}
    check_eq(reg.req("GET", "/v2/", bob, auth=False).status, 401, "bob before he exists")
    path = ctx.path("registry.htpasswd")
    time.sleep(1.1)  # a new mtime second: wharf looks at the file at most once a second
    htpasswd_file(path + ".new", {"bob": "bob-pw"})
    os.replace(path + ".new", path)
    wait_for(lambda: reg.req("GET", "/v2/", bob, auth=False).status == 200, "bob accepted after the file changed",
             tries=50, interval=0.1)
    check_eq(reg.req("GET", "/v2/").status, 401, "alice, removed from the file, is refused (no stale cache)")


@wharf_only("wharf's log.formatter: json")
def test_json_logs_and_clean_stop(ctx):
    reg = ctx.registry(extra={"log": {"formatter": "json"}}).start()
    reg.push_image("e2e/log", "1")
    check_eq(reg.manifest("e2e/log", "1").status, 200, "manifest GET")
    reg.proc.send_signal(signal.SIGTERM)
    try:
        rc = reg.proc.wait(timeout=15)
    except Exception:  # noqa: BLE001
        rc = None
    check_eq(rc, 0, "exit code after SIGTERM")
    with open(ctx.path("registry.log")) as f:
        lines = [l for l in f.read().splitlines() if l.strip()]
    check(len(lines) >= 5, "log lines: %d" % len(lines))
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            check(False, "a log line is not JSON: %r" % line[:200])
    check(all({"time", "level", "msg"} <= set(r) for r in records), "every record has time, level, msg")
    check(any("/v2/e2e/log/manifests/1" in r["msg"] and " 200 " in r["msg"] for r in records),
          "the access log records the manifest GET")
