"""database.dsn against a real PostgreSQL (tests/e2e/postgres.py: Debian's postgresql, started once per run
and shared; each test uses its own database): the index contract of tests/unit/test_cache_index.cpp runs
against the server; three fronts starting at once on an empty database create the schema once; skopeo
pushes and pulls through `wharf serve` with the index in PostgreSQL; a PostgreSQL restart under wharf
gives 503 with an OCI error, then service resumes; garbage-collect works on the database and backup refuses
it (pg_dump); check-config names database.dsn and hides the password."""
import os

import harness
import postgres
from harness import SERVER_BIN, blob_path, check, check_eq, files_equal, run, wharf_only
from http_util import request

PG_TIMEOUT = 300


def server():
    def start():
        pg = postgres.start()
        print("    PostgreSQL started in %.1f s on 127.0.0.1:%d" % (pg.started_in, pg.port), flush=True)
        return pg
    return harness.session("postgres", start)


def pg_registry(ctx, pg, db, name="registry", debug_port=None):
    extra = {"database": {"dsn": pg.dsn(db), "poolsize": 4}}
    if debug_port:
        extra["http"] = {"debug": {"addr": "127.0.0.1:%d" % debug_port}}
        extra["health"] = {"storagedriver": {"enabled": True, "interval": "1s", "threshold": 1}}
    return ctx.registry(name=name, extra=extra)


def rows(pg, db, sql):
    return pg.psql(sql, db=db).stdout.strip()


@wharf_only("wharf's PostgreSQL index")
@harness.timeout(PG_TIMEOUT)
def test_pg_index_passes_the_index_contract(ctx):
    pg = server()
    db = pg.create_database(ctx.name)
    unit = os.path.join(os.path.dirname(os.path.abspath(SERVER_BIN)), "unit_tests")
    res = run([unit, "-tc=Index*,Update*,PgIndex*"], check_rc=False, env={"WHARF_TEST_PG_DSN": pg.dsn(db)},
              timeout=240)
    with open(ctx.path("unit_tests.log"), "w") as f:
        f.write(res.stdout + res.stderr)
    check_eq(res.returncode, 0, "unit_tests against PostgreSQL: %s" % (res.stdout + res.stderr).strip()[-1200:])
    runs = res.stdout.count("Index contract: postgresql fixture")
    check(runs >= 17, "every contract case also ran on PostgreSQL (%d PostgreSQL fixtures)" % runs)


@wharf_only("wharf's PostgreSQL index")
@harness.timeout(PG_TIMEOUT)
def test_pg_three_fronts_create_the_schema_once(ctx):
    pg = server()
    db = pg.create_database(ctx.name)
    fronts = [pg_registry(ctx, pg, db, name="front%d" % i) for i in range(3)]
    for f in fronts:  # all three at once: their migrations race for the advisory lock
        f.proc = ctx.spawn([SERVER_BIN, "serve", f.config_path], f.name)
    for f in fronts:
        harness.wait_for(lambda: f.proc.poll() is None and request("GET", f.url + "/v2/", timeout=2).status == 200,
                         "%s to answer /v2/ (log: %s)" % (f.name, f.log_tail(3)), tries=300, interval=0.1)
    check_eq(rows(pg, db, "SELECT count(*), min(version), max(version) FROM wharf_schema"), "2|1|2",
             "wharf_schema rows (count|min|max) after three concurrent starts")
    check_eq(rows(pg, db, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"), "11",
             "tables in the database (9 index tables + claims + wharf_schema)")
    # The index is shared: a tag pushed through front 0 is listed by front 2 at once.
    fronts[0].push_image("e2e/shared", "v1", layers=1, size=2048, seed=3)
    res = fronts[2].req("GET", "/v2/e2e/shared/tags/list")
    check_eq((res.status, res.json().get("tags")), (200, ["v1"]), "tags of e2e/shared listed by another front")
    for f in fronts:
        check(not os.path.exists(os.path.join(f.root, "index")), "%s made no LMDB index" % f.name)


@wharf_only("wharf's PostgreSQL index")
@harness.timeout(PG_TIMEOUT)
def test_pg_skopeo_push_and_pull_round_trip(ctx):
    pg = server()
    db = pg.create_database(ctx.name)
    reg = pg_registry(ctx, pg, db).start()
    img = ctx.image(layers=3, size=512 << 10, seed=41)
    dest = "docker://%s/e2e/pg:v1" % reg.host
    ctx.skopeo("copy", "--dest-tls-verify=false", "oci:" + img["dir"], dest)
    check_eq(rows(pg, db, "SELECT digest FROM tags WHERE repo = 'e2e/pg' AND tag = 'v1'"), img["manifest_digest"],
             "the tag row in PostgreSQL")
    check_eq(rows(pg, db, "SELECT count(*) FROM links WHERE repo = 'e2e/pg'"), "4", "blob links (3 layers + config)")
    check(not os.path.exists(os.path.join(reg.root, "index")), "no LMDB index under the root")
    out = ctx.path("pulled")
    ctx.skopeo("copy", "--src-tls-verify=false", dest, "oci:" + out)
    for digest in img["layers"] + [img["config_digest"], img["manifest_digest"]]:
        check(files_equal(blob_path(img["dir"], digest), blob_path(out, digest)), "blob %s after the round trip" % digest)
    # Offline verbs use the database too: garbage-collect keeps the tagged image; backup, which copies an
    # LMDB file, refuses and says what to use instead.
    reg.stop()
    res = run([SERVER_BIN, "garbage-collect", reg.config_path], check_rc=False, timeout=120)
    check_eq(res.returncode, 0, "garbage-collect with the index in PostgreSQL: %s" % (res.stdout + res.stderr)[-400:])
    check_eq(rows(pg, db, "SELECT count(*) FROM blobs"), "4", "blob records after garbage-collect (all referenced)")
    res = run([SERVER_BIN, "backup", reg.config_path, ctx.path("backup")], check_rc=False, timeout=120)
    check(res.returncode != 0 and "pg_dump" in res.stdout + res.stderr,
          "backup refuses a PostgreSQL index and names pg_dump: %r" % (res.stdout + res.stderr)[-400:])
    # A restart reads everything back from the database.
    reg.start()
    res = reg.manifest("e2e/pg", "v1")
    check_eq(res.status, 200, "manifest GET after a restart")
    res = reg.req("GET", "/v2/_catalog")
    check_eq((res.status, res.json().get("repositories")), (200, ["e2e/pg"]), "catalog after a restart")


@wharf_only("wharf's PostgreSQL index")
@harness.timeout(PG_TIMEOUT)
def test_pg_restart_gives_503_then_recovers(ctx):
    pg = server()
    db = pg.create_database(ctx.name)
    debug_port = harness.free_port()
    reg = pg_registry(ctx, pg, db, debug_port=debug_port).start()
    debug = "http://127.0.0.1:%d" % debug_port
    reg.push_image("e2e/restart", "v1", layers=1, size=4096, seed=9)
    check_eq(reg.manifest("e2e/restart", "v1").status, 200, "manifest GET before the restart")
    harness.wait_for(lambda: request("GET", debug + "/debug/health").status == 200, "health OK with the database up")
    # An upload session this process has not seen yet (opened before a restart): it is read from the index.
    session = reg.start_upload("e2e/restart")
    check_eq(reg.req("PATCH", session, {"Content-Type": "application/octet-stream"}, body=b"x" * 1000).status, 202,
             "PATCH before the restart")
    reg.stop()
    reg.start()
    pg.halt()
    try:
        res = reg.req("GET", session, timeout=60)
        check_eq(res.status, 503, "GET of an upload session while PostgreSQL is down (not 404: it exists) %r" % res)
        check("UNAVAILABLE" in res.error_codes(), "an OCI UNAVAILABLE error for the session: %r" % res.body[:300])
        for path in ("/v2/e2e/restart/tags/list", "/v2/e2e/restart/manifests/v1", "/v2/_catalog"):
            res = reg.req("GET", path, {"Accept": "application/vnd.oci.image.manifest.v1+json"}, timeout=60)
            check_eq(res.status, 503, "GET %s while PostgreSQL is down (%r)" % (path, res))
            check("UNAVAILABLE" in res.error_codes(), "an OCI UNAVAILABLE error for %s: %r" % (path, res.body[:300]))
        harness.wait_for(lambda: request("GET", debug + "/debug/health").status == 503,
                         "/debug/health to report the database down", tries=150, interval=0.2)
        body = request("GET", debug + "/debug/health").json()
        check("database" in body, "health names the database: %r" % body)
        check(postgres.PASSWORD not in str(body), "health does not show the password")
        check(reg.proc.poll() is None, "wharf is still running with the database down")
    finally:
        pg.start()
    # Every pooled connection reconnects: requests work again, old data and new pushes alike.
    harness.wait_for(lambda: reg.manifest("e2e/restart", "v1").status == 200, "manifest GET to work again",
                     tries=100, interval=0.2)
    for _ in range(8):  # more than the pool: each connection has been replaced
        check_eq(reg.req("GET", "/v2/e2e/restart/tags/list").status, 200, "tag list after the restart")
    res = reg.req("GET", session)
    check_eq((res.status, res.header("Range", "")), (204, "0-999"), "the session after the restart")
    reg.push_image("e2e/restart", "v2", layers=1, size=4096, seed=10)
    check_eq(rows(pg, db, "SELECT count(*) FROM tags WHERE repo = 'e2e/restart'"), "2", "both tags in PostgreSQL")
    harness.wait_for(lambda: request("GET", debug + "/debug/health").status == 200, "health OK again",
                     tries=150, interval=0.2)


@wharf_only("wharf's check-config database probe")
@harness.timeout(PG_TIMEOUT)
def test_pg_check_config_names_the_dsn_and_hides_the_password(ctx):
    pg = server()
    db = pg.create_database(ctx.name)
    reg = pg_registry(ctx, pg, db)
    good = run([SERVER_BIN, "check-config", reg.config_path], check_rc=False, timeout=60)
    check_eq(good.returncode, 0, "check-config with a reachable database (stderr: %s)" % good.stderr.strip()[-400:])
    check("index postgresql" in good.stdout and postgres.PASSWORD not in good.stdout,
          "check-config's summary names the PostgreSQL index without the password: %r" % good.stdout[-400:])
    wrong = "not-the-password-5e2a"
    bad = run([SERVER_BIN, "check-config", reg.config_path], check_rc=False, timeout=60,
              env={"REGISTRY_DATABASE_DSN": pg.dsn(db, password=wrong)})
    out = bad.stdout + bad.stderr
    check(bad.returncode != 0, "check-config with a wrong password fails: %r" % out[-400:])
    check("database.dsn" in out, "the message names database.dsn: %r" % out[-400:])
    check("password authentication failed" in out, "the message says why: %r" % out[-400:])
    check(wrong not in out and postgres.PASSWORD not in out, "no password in the output: %r" % out[-400:])
    # serve refuses to start the same way, without the password.
    reg.proc = ctx.spawn([SERVER_BIN, "serve", reg.config_path], reg.name, env={"REGISTRY_DATABASE_DSN": pg.dsn(db, password=wrong)})
    harness.wait_for(lambda: reg.proc.poll() is not None, "serve to exit with a wrong database password", tries=300)
    check(reg.proc.returncode != 0, "serve's exit code with a wrong password")
    log = open(ctx.path(reg.name + ".log"), errors="replace").read()
    check("database.dsn" in log and wrong not in log, "serve's message names database.dsn, not the password: %r"
          % log[-400:])
