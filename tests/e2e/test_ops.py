"""Operating a running wharf: credentials reloaded when the htpasswd file changes, JSON logs, and a
clean stop on SIGTERM."""
import json
import os
import signal

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
    htpasswd_file(path + ".new", {"bob": "bob-pw"})
    os.replace(path + ".new", path)
    # At once: wharf looks at the file (inode, size, mtime, ctime) on every login.
    check_eq(reg.req("GET", "/v2/").status, 401, "alice, removed from the file, is refused (no stale cache)")
    check_eq(reg.req("GET", "/v2/", bob, auth=False).status, 200, "bob accepted after the file changed")


def health(reg):
    """(status, JSON body) of /debug/health on the main listener."""
    r = reg.req("GET", "/debug/health", auth=False)
    return r.status, r.json()


@wharf_only("wharf's htpasswd fails closed: an unusable file lets nobody in and turns health to 503")
def test_htpasswd_fails_closed(ctx):
    reg = ctx.registry(users={"alice": "alice-pw", "bob": "bob-pw"}).start()
    bob = {"Authorization": basic_auth("bob", "bob-pw")}
    check_eq(reg.req("GET", "/v2/").status, 200, "alice at the start")
    check_eq(reg.req("GET", "/v2/", bob, auth=False).status, 200, "bob at the start (now remembered)")
    check_eq(health(reg)[0], 200, "health at the start")
    path = ctx.path("registry.htpasswd")
    good = open(path).read()

    def locked_out(what):
        check_eq(reg.req("GET", "/v2/").status, 401, "alice with %s" % what)
        check_eq(reg.req("GET", "/v2/", bob, auth=False).status, 401, "bob (remembered) with %s" % what)
        status, body = health(reg)
        check_eq(status, 503, "health with %s" % what)
        check("auth_htpasswd" in body, "health names the htpasswd file: %r" % body)

    def works_again(what):
        check_eq(reg.req("GET", "/v2/").status, 200, "alice after %s" % what)
        check_eq(reg.req("GET", "/v2/", bob, auth=False).status, 200, "bob after %s" % what)
        check_eq(health(reg)[0], 200, "health after %s" % what)

    os.remove(path)
    locked_out("the file deleted")
    reg.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "SIGHUP" in open(ctx.path("registry.log")).read(), "the SIGHUP logged", tries=50, interval=0.1)
    locked_out("the file deleted, after SIGHUP")
    with open(path + ".new", "w") as f:
        f.write(good)
    os.replace(path + ".new", path)
    works_again("the file came back")

    with open(path + ".new", "w") as f:
        f.write(good + "this line has no colon\n")
    os.replace(path + ".new", path)
    locked_out("a malformed line")
    with open(ctx.path("registry.log")) as f:
        log = f.read()
    check("refusing every Basic login" in log and "line 3" in log, "the error names the line: %r" % log[-400:])
    with open(path, "w") as f:  # fixed in place this time (same inode)
        f.write(good)
    works_again("the malformed line was fixed")


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
