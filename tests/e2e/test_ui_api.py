"""The web page's server side over plain HTTP: the embedded assets, the JSON endpoints under /api/ with
authentication on and off, sessions (cookie flags), CSRF, the two actions (checked through /v2/), JSON
escaping of hostile names, http.ui.enabled/path, and the CORS preflight on /v2/."""
import hashlib
import json

from harness import check, check_eq, wharf_only
from http_util import basic_auth, request
from fakehub_http import RATE_LIMIT
from mirror_util import Mirror
from test_tls import make_cert

USERS = {"alice": "alice-pass", "bob": "bob-pass"}
# alice may do everything; bob may pull team/* only (and delete nothing).
RULES = [{"match": "*", "users": ["alice"], "actions": ["*"]},
         {"match": "team/*", "users": ["bob"], "actions": ["pull"]}]
GETS = ["/api/overview", "/api/repositories", "/api/repository?name=team/app", "/api/activity"]
POSTS = ["/api/logout", "/api/delete-tag", "/api/evict"]
CORS = {"Access-Control-Allow-Origin": ["http://ui.example.test"],
        "Access-Control-Allow-Credentials": ["true"],
        "Access-Control-Allow-Headers": ["Authorization", "Accept", "Cache-Control"],
        "Access-Control-Allow-Methods": ["HEAD", "GET", "OPTIONS", "DELETE"],
        "Access-Control-Expose-Headers": ["Docker-Content-Digest"]}
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
EMPTY = "application/vnd.oci.empty.v1+json"
CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'"


def api(reg, method, path, body=None, headers=None):
    """A request to the page's API without the registry's credentials; `body` (a dict) goes as JSON."""
    hdrs = dict(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    r = reg.req(method, path, hdrs, data, auth=False)
    if r.status != 204:
        check((r.header("Content-Type") or "").startswith("application/json"),
              "%s %s: Content-Type %r (%r)" % (method, path, r.header("Content-Type"), r))
    return r


def expect(r, status, code, what):
    check(r.status == status, "%s: expected %d, got %r" % (what, status, r))
    if code:
        check_eq(r.json().get("code"), code, what + ": error code")
        check(isinstance(r.json().get("error"), str), what + ": no error message in %r" % r.body)


def login(reg, user, password):
    """POST /api/login; returns (cookie header value, csrf token, Set-Cookie)."""
    r = api(reg, "POST", "/api/login", {"username": user, "password": password})
    expect(r, 200, None, "login as " + user)
    set_cookie = r.header("Set-Cookie") or ""
    check(set_cookie.startswith("wharf_session="), "login: Set-Cookie %r" % set_cookie)
    check_eq(r.json()["user"], user, "login: user")
    return set_cookie.split(";")[0], r.json()["csrf"], set_cookie


def cookie_flags(set_cookie):
    return {p.strip().split("=")[0] for p in set_cookie.split(";")[1:]}


def tag_exists(reg, repo, tag):
    return reg.manifest(repo, tag).status == 200


@wharf_only("the web page is wharf's")
def test_ui_assets_headers_and_disabled(ctx):
    reg = ctx.registry(name="ui").start()
    page = reg.req("GET", "/", auth=False)
    check_eq(page.status, 200, "GET / status")
    check((page.header("Content-Type") or "").startswith("text/html"), "GET /: Content-Type %r" % page.header("Content-Type"))
    check(b"assets/app.js" in page.body, "index.html does not load assets/app.js")
    for h, v in (("Content-Security-Policy", CSP), ("X-Content-Type-Options", "nosniff"),
                 ("Referrer-Policy", "same-origin"), ("Cache-Control", "no-cache")):
        check_eq(page.header(h), v, "GET / header " + h)
    for name, ctype in (("app.js", "text/javascript"), ("app.css", "text/css"), ("favicon.svg", "image/svg+xml")):
        r = reg.req("GET", "/assets/" + name, auth=False)
        check(r.status == 200 and (r.header("Content-Type") or "").startswith(ctype), "GET /assets/%s: %r %r" % (
            name, r, r.header("Content-Type")))
        etag = r.header("ETag")
        check(etag and etag.startswith('"'), "GET /assets/%s: ETag %r" % (name, etag))
        again = reg.req("GET", "/assets/" + name, {"If-None-Match": etag}, auth=False)
        check(again.status == 304 and again.body == b"", "If-None-Match on %s: %r" % (name, again))
    for path in ("/assets/nope.js", "/assets/", "/index.html", "/assets/../v2/"):
        check_eq(reg.req("GET", path, auth=False).status, 404, "GET " + path)
    expect(api(reg, "GET", "/api/nope"), 404, "UNSUPPORTED", "GET /api/nope")
    expect(api(reg, "POST", "/api/overview"), 405, "UNSUPPORTED", "POST /api/overview")
    expect(api(reg, "GET", "/api/login"), 405, "UNSUPPORTED", "GET /api/login")
    reg.stop()

    moved = ctx.registry(name="ui-path", extra={"http": {"ui": {"path": "/console/"}}}).start()
    check_eq(moved.req("GET", "/console/", auth=False).status, 200, "GET /console/ with http.ui.path /console/")
    check_eq(moved.req("GET", "/console/assets/app.css", auth=False).status, 200, "GET /console/assets/app.css")
    check_eq(moved.req("GET", "/", auth=False).status, 404, "GET / with http.ui.path /console/")
    check_eq(api(moved, "GET", "/api/session").json()["ui_path"], "/console/", "session ui_path")
    moved.stop()

    off = ctx.registry(name="ui-off", extra={"http": {"ui": {"enabled": False}}}).start()
    for path in ("/", "/assets/app.js", "/api/session", "/api/repositories"):
        check_eq(off.req("GET", path, auth=False).status, 404, "GET %s with http.ui.enabled false" % path)
    check_eq(off.req("GET", "/v2/", auth=False).status, 200, "GET /v2/ with the page off")


@wharf_only("the web page is wharf's")
def test_ui_api_with_auth(ctx):
    reg = ctx.registry(name="ui-auth", users=USERS, extra={"auth": {"access": RULES}}).start()
    reg.push_image("team/app", "v1", seed=3)
    v2 = reg.push_image("team/app", "v2", seed=4)
    reg.push_image("other/secret", "v1", seed=5)
    # A referrer of v2 whose artifact type and annotation hold markup.
    hostile_type = "application/x.<script>alert(1)</script>"
    empty = reg.push_blob("team/app", b"{}")
    v2_size = len(json.dumps(v2["manifest"]).encode())
    sig = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": hostile_type,
                      "config": {"mediaType": EMPTY, "digest": empty, "size": 2},
                      "layers": [{"mediaType": EMPTY, "digest": empty, "size": 2}],
                      "subject": {"mediaType": OCI_MANIFEST, "digest": v2["manifest_digest"], "size": v2_size},
                      "annotations": {"org.opencontainers.image.description": "<script>alert(2)</script>"}}).encode()
    sig_digest = "sha256:" + hashlib.sha256(sig).hexdigest()
    r, _ = reg.push_manifest("team/app", sig_digest, sig, OCI_MANIFEST)
    check_eq(r.status, 201, "PUT of the referrer (%r)" % r)

    # The shell needs no sign-in; every endpoint but session and login does.
    check_eq(reg.req("GET", "/", auth=False).status, 200, "GET / without sign-in")
    s = api(reg, "GET", "/api/session").json()
    check_eq((s["auth_enabled"], s["authenticated"], s["user"], s["csrf"]), (True, False, None, None),
             "session without sign-in")
    check_eq(s["registry_host"], reg.host, "session registry_host")
    for path in GETS:
        expect(api(reg, "GET", path), 401, "UNAUTHORIZED", "GET %s without sign-in" % path)
    for path in POSTS:
        expect(api(reg, "POST", path, {"name": "team/app", "tag": "v1"}), 401, "UNAUTHORIZED",
               "POST %s without sign-in" % path)
    expect(api(reg, "GET", "/api/overview", headers={"Cookie": "wharf_session=" + "0" * 64}), 401, "UNAUTHORIZED",
           "GET /api/overview with a made-up session cookie")
    expect(api(reg, "POST", "/api/login", {"username": "alice", "password": "wrong"}), 401, "UNAUTHORIZED",
           "login with a wrong password")
    expect(api(reg, "POST", "/api/login", {"username": "nobody", "password": "x"}), 401, "UNAUTHORIZED",
           "login as an unknown user")
    expect(api(reg, "POST", "/api/login", {"username": 1}), 400, "UNSUPPORTED", "login without strings")
    expect(reg.req("POST", "/api/login", {"Content-Type": "application/json"}, b"{not json", auth=False), 400,
           "UNSUPPORTED", "login with a body that is not JSON")
    expect(reg.req("POST", "/api/login", {}, b"[" * 100, auth=False), 400, "UNSUPPORTED", "login with deep JSON")

    cookie, csrf, set_cookie = login(reg, "alice", "alice-pass")
    check({"HttpOnly", "SameSite", "Path"} <= cookie_flags(set_cookie) and "Secure" not in cookie_flags(set_cookie),
          "session cookie flags over plain HTTP: %r" % set_cookie)
    check("SameSite=Strict" in set_cookie, "session cookie is not SameSite=Strict: %r" % set_cookie)
    alice = {"Cookie": cookie}
    s = api(reg, "GET", "/api/session", headers=alice).json()
    check_eq((s["authenticated"], s["user"], s["csrf"], s["can_delete"]), (True, "alice", csrf, True),
             "alice's session")

    ov = api(reg, "GET", "/api/overview", headers=alice)
    expect(ov, 200, None, "overview")
    ov = ov.json()
    check_eq((len(ov["traffic"]["hour"]), len(ov["traffic"]["day"])), (60, 96), "overview bucket counts")
    check(ov["store"]["blobs"] >= 0 and ov["uptime_s"] >= 0 and ov["upstreams"] == [], "overview: %r" % ov)

    repos = api(reg, "GET", "/api/repositories", headers=alice).json()
    check_eq([i["name"] for i in repos["items"]], ["other/secret", "team/app"], "alice's repositories")
    app = [i for i in repos["items"] if i["name"] == "team/app"][0]
    check_eq((app["kind"], app["upstream"], app["tags"]), ("local", None, 2), "team/app in the list")
    check(app["size"] > 2048 and app["updated"] > 0, "team/app size and time: %r" % app)
    detail = api(reg, "GET", "/api/repository?name=team/app", headers=alice).json()
    check_eq([t["tag"] for t in detail["tags"]], ["v1", "v2"], "team/app tags")
    check(detail["tags"][0]["digest"].startswith("sha256:") and detail["tags"][0]["platforms"] == [],
          "team/app v1: %r" % detail["tags"][0])
    check(detail["pull"]["docker"].startswith("docker pull %s/team/app:" % reg.host), "pull line %r" % detail["pull"])
    check_eq(detail["can_delete"], True, "alice may delete in team/app")
    check_eq(detail["referrers"], [{"subject": v2["manifest_digest"], "digest": sig_digest,
                                    "artifact_type": hostile_type, "media_type": OCI_MANIFEST, "size": len(sig)}],
             "team/app referrers (markup comes back as JSON string data)")
    expect(api(reg, "GET", "/api/repository?name=team/nope", headers=alice), 404, "NAME_UNKNOWN", "unknown repository")
    expect(api(reg, "GET", "/api/repositories?per_page=500", headers=alice), 400, "UNSUPPORTED", "per_page 500")

    # Scripts: the same Authorization header as /v2/, no CSRF token needed.
    bob_basic = {"Authorization": basic_auth("bob", "bob-pass")}
    s = api(reg, "GET", "/api/session", headers=bob_basic).json()
    check_eq((s["authenticated"], s["user"], s["csrf"], s["can_delete"]), (True, "bob", None, False),
             "bob's session (a script's header: no CSRF token; pull only: no delete)")
    repos = api(reg, "GET", "/api/repositories", headers=bob_basic).json()
    check_eq([i["name"] for i in repos["items"]], ["team/app"], "what bob may pull")
    check_eq(api(reg, "GET", "/api/repository?name=team/app", headers=bob_basic).json()["can_delete"], False,
             "bob (pull only) may not delete in team/app")
    expect(api(reg, "GET", "/api/repository?name=other/secret", headers=bob_basic), 404, "NAME_UNKNOWN",
           "bob asking for a repository he may not pull")
    expect(api(reg, "GET", "/api/overview", headers={"Authorization": basic_auth("bob", "nope")}), 401,
           "UNAUTHORIZED", "a wrong Basic password")
    expect(api(reg, "POST", "/api/delete-tag", {"name": "team/app", "tag": "v1"}, bob_basic), 403, "DENIED",
           "bob deleting a tag")
    check(tag_exists(reg, "team/app", "v1"), "bob's refused delete removed the tag")

    # CSRF: the cookie alone is not enough for a POST.
    body = {"name": "team/app", "tag": "v1"}
    expect(api(reg, "POST", "/api/delete-tag", body, alice), 403, "DENIED", "delete-tag without a CSRF token")
    expect(api(reg, "POST", "/api/delete-tag", body, dict(alice, **{"X-CSRF-Token": "0" * 64})), 403, "DENIED",
           "delete-tag with a wrong CSRF token")
    expect(api(reg, "POST", "/api/delete-tag", body, dict(alice, **{"X-CSRF-Token": csrf,
                                                                    "Origin": "http://evil.example"})),
           403, "DENIED", "delete-tag from a foreign Origin")
    check(tag_exists(reg, "team/app", "v1"), "a refused CSRF check removed the tag")
    good = dict(alice, **{"X-CSRF-Token": csrf, "Origin": "http://" + reg.host})
    expect(api(reg, "POST", "/api/delete-tag", {"name": "team/app", "tag": "nope"}, good), 404, "MANIFEST_UNKNOWN",
           "delete-tag of an unknown tag")
    expect(api(reg, "POST", "/api/evict", body, good), 400, "UNSUPPORTED", "evict in a local repository")
    r = api(reg, "POST", "/api/delete-tag", body, good)
    check_eq(r.status, 204, "delete-tag with cookie, token and Origin (%r)" % r)
    check(not tag_exists(reg, "team/app", "v1"), "team/app:v1 still answers after delete-tag")
    check(tag_exists(reg, "team/app", "v2"), "delete-tag of v1 removed v2")
    tags = reg.req("GET", "/v2/team/app/tags/list").json()["tags"]
    check_eq(tags, ["v2"], "tags list after delete-tag")

    acts = api(reg, "GET", "/api/activity?limit=50", headers=alice).json()["items"]
    events = [(a["event"], a["user"]) for a in acts]
    check(("delete", "alice") in events and ("push", "alice") in events and ("login", "alice") in events,
          "activity lacks alice's delete, push or login: %r" % events[:10])
    check(acts[0]["event"] == "delete" or any(a["event"] == "delete" for a in acts[:3]), "activity is not newest first")
    bob_acts = api(reg, "GET", "/api/activity", headers=bob_basic).json()["items"]
    check(all(a["repo"] in (None, "team/app") for a in bob_acts), "bob sees activity of other/secret")
    expect(api(reg, "GET", "/api/activity?limit=0", headers=alice), 400, "UNSUPPORTED", "activity limit 0")

    # A hostile user name comes back as JSON string data, never as markup.
    hostile = "<script>alert(1)</script>"
    expect(api(reg, "POST", "/api/login", {"username": hostile, "password": "x"}), 401, "UNAUTHORIZED",
           "login as a <script> user")
    acts = api(reg, "GET", "/api/activity", headers=alice)
    check((acts.header("Content-Type") or "").startswith("application/json"), "activity is not JSON")
    check(any(a["user"] == hostile for a in acts.json()["items"]), "the hostile login is not in the activity")

    r = api(reg, "POST", "/api/logout", None, good)
    check_eq(r.status, 204, "logout")
    check("Max-Age=0" in (r.header("Set-Cookie") or ""), "logout does not clear the cookie: %r" % r.header("Set-Cookie"))
    expect(api(reg, "GET", "/api/overview", headers=alice), 401, "UNAUTHORIZED", "the cookie after logout")
    check_eq(api(reg, "GET", "/api/session", headers=alice).json()["authenticated"], False, "session after logout")


@wharf_only("the web page is wharf's")
def test_ui_api_without_auth(ctx):
    reg = ctx.registry(name="ui-open", extra={"auth": {"immutabletags": ["team/*:stable"]}}).start()
    reg.push_image("team/app", "v1", seed=6)
    reg.push_image("team/app", "stable", seed=7)
    s = api(reg, "GET", "/api/session").json()
    check_eq((s["auth_enabled"], s["authenticated"], s["user"], s["can_delete"], s["delete_enabled"]),
             (False, True, None, True, True), "session with auth off")
    csrf = s["csrf"]
    check(isinstance(csrf, str) and len(csrf) == 64, "per-process CSRF token %r" % csrf)
    for path in GETS:
        expect(api(reg, "GET", path), 200, None, "GET %s with auth off" % path)
    items = api(reg, "GET", "/api/repositories?q=APP&kind=local&page=1&per_page=1").json()
    check_eq((items["total"], items["page"], items["per_page"], [i["name"] for i in items["items"]]),
             (1, 1, 1, ["team/app"]), "search with auth off")
    check_eq(api(reg, "GET", "/api/repositories?kind=mirror").json()["total"], 0, "mirrored repositories")
    body = {"name": "team/app", "tag": "v1"}
    expect(api(reg, "POST", "/api/delete-tag", body), 403, "DENIED", "delete-tag without the CSRF token (auth off)")
    token = {"X-CSRF-Token": csrf}
    expect(api(reg, "POST", "/api/delete-tag", {"name": "team/app", "tag": "stable"}, token), 403, "DENIED",
           "delete-tag of an immutable tag")
    check(tag_exists(reg, "team/app", "stable"), "the immutable tag went")
    expect(api(reg, "POST", "/api/delete-tag", {"name": "Bad Name", "tag": "v1"}, token), 400, "NAME_INVALID",
           "delete-tag with an invalid name")
    check_eq(api(reg, "POST", "/api/delete-tag", body, token).status, 204, "delete-tag with auth off")
    check(not tag_exists(reg, "team/app", "v1"), "team/app:v1 still answers")
    reg.stop()

    nodelete = ctx.registry(name="ui-nodelete", delete=False).start()
    nodelete.push_image("team/app", "v1", seed=8)
    s = api(nodelete, "GET", "/api/session").json()
    check_eq((s["can_delete"], s["delete_enabled"]), (False, False), "session with delete disabled")
    expect(api(nodelete, "POST", "/api/delete-tag", {"name": "team/app", "tag": "v1"}, {"X-CSRF-Token": s["csrf"]}),
           405, "UNSUPPORTED", "delete-tag with storage.delete.enabled false")
    check(tag_exists(nodelete, "team/app", "v1"), "delete-tag removed a tag with delete disabled")


@wharf_only("the web page is wharf's")
def test_ui_session_cookie_is_secure_under_tls(ctx):
    cert, key, _ = make_cert(ctx)
    reg = ctx.registry(name="ui-tls", users=USERS, tls=(cert, key)).start()
    _, _, set_cookie = login(reg, "alice", "alice-pass")
    check({"HttpOnly", "Secure", "SameSite"} <= cookie_flags(set_cookie), "cookie flags under TLS: %r" % set_cookie)


@wharf_only("the preflight answer is wharf's (registry:2 answers 401)")
def test_cors_preflight_with_auth_on(ctx):
    reg = ctx.registry(name="cors", users=USERS, extra={"http": {"headers": CORS}}).start()
    reg.push_image("team/app", "v1", seed=9)
    pre = {"Origin": "http://ui.example.test", "Access-Control-Request-Method": "GET",
           "Access-Control-Request-Headers": "authorization"}
    for path in ("/v2/", "/v2/_catalog", "/v2/team/app/manifests/v1", "/v2/team/app/tags/list", "/v2/nope/blobs/x"):
        r = reg.req("OPTIONS", path, pre, auth=False)
        check_eq(r.status, 204, "OPTIONS %s status (%r)" % (path, r))
        check_eq(r.body, b"", "OPTIONS %s body" % path)
        check(r.header("WWW-Authenticate") is None, "OPTIONS %s asks for credentials" % path)
        for name, values in CORS.items():
            check_eq(r.headers.get_all(name), values, "OPTIONS %s header %s" % (path, name))
    # The preflight opens nothing: the real request still needs credentials.
    check_eq(reg.req("GET", "/v2/team/app/manifests/v1", auth=False).status, 401, "GET without credentials")
    got = reg.manifest("team/app", "v1")
    check_eq(got.status, 200, "GET with credentials")
    check_eq(got.headers.get_all("Access-Control-Allow-Origin"), CORS["Access-Control-Allow-Origin"],
             "CORS header on a GET")


@wharf_only("the web page is wharf's")
def test_ui_mirror_traffic_upstreams_and_evict(ctx):
    img = ctx.image(layers=1, size=64 << 10, seed=71)
    with Mirror(ctx) as m:
        m.hub.push(img, "library/uitest", "v1")
        reg = m.wharf
        m.skopeo_pull("library/uitest", "v1", ctx.path("pull1"))
        m.skopeo_pull("library/uitest", "v1", ctx.path("pull2"))  # from the cache: hits
        ov = api(reg, "GET", "/api/overview").json()
        hour = ov["traffic"]["hour"]
        hits = sum(b["hits"] for b in hour)
        misses = sum(b["misses"] for b in hour)
        check(hits >= 2 and misses >= 2, "traffic after a pull and a cached pull: %d hits, %d misses" % (hits, misses))
        check(sum(b["bytes_cache"] for b in hour) >= 64 << 10, "bytes served from the cache: %r" % hour[-3:])
        check(sum(b["bytes_upstream"] for b in hour) >= 64 << 10, "bytes fetched upstream: %r" % hour[-3:])
        check(0 < ov["hit_ratio"]["hour"] < 1, "hit ratio %r" % ov["hit_ratio"])
        up = ov["upstreams"]
        check_eq([(u["name"], u["url"], u["state"]) for u in up], [("docker.io", m.hub.url, "ok")], "upstreams")
        check_eq((up[0]["ratelimit_limit"], up[0]["last_error"]), (RATE_LIMIT, None), "docker.io rate limit")
        check(isinstance(up[0]["ratelimit_remaining"], int), "ratelimit_remaining %r" % up[0])

        repo = "docker.io/library/uitest"
        listed = api(reg, "GET", "/api/repositories?kind=mirror").json()["items"]
        check_eq([(i["name"], i["kind"], i["upstream"]) for i in listed], [(repo, "mirror", "docker.io")],
                 "mirrored repositories")
        detail = api(reg, "GET", "/api/repository?name=" + repo).json()
        check_eq([t["tag"] for t in detail["tags"]], ["v1"], "cached tags")
        check(detail["tags"][0]["last_pull"], "no last pull time: %r" % detail["tags"][0])
        check(detail["pull"]["podman"] == "podman pull %s/%s:v1" % (reg.host, repo), "pull line %r" % detail["pull"])

        csrf = {"X-CSRF-Token": api(reg, "GET", "/api/session").json()["csrf"]}
        check_eq(api(reg, "POST", "/api/evict", {"name": repo, "tag": "v1"}, csrf).status, 204, "evict")
        expect(api(reg, "POST", "/api/evict", {"name": repo, "tag": "v1"}, csrf), 404, "MANIFEST_UNKNOWN",
               "evict again")
        check_eq(api(reg, "GET", "/api/repository?name=" + repo).json()["tags"], [], "tags after evict")
        # Evicted means not served from the cache any more: with the upstream gone, /v2/ cannot answer it.
        m.hub.stop()
        gone = reg.manifest(repo, "v1")
        check(gone.status in (404, 503), "GET of the evicted manifest with the upstream stopped: %r" % gone)
        ov = api(reg, "GET", "/api/overview").json()
        check_eq(ov["upstreams"][0]["state"], "down", "upstream state after it stopped (%r)" % ov["upstreams"])
        check(ov["upstreams"][0]["last_error"] and ov["upstreams"][0]["last_error_at"], "no last error recorded")

        # Rate limited: Docker Hub's 429 puts the upstream into back-off, with its remaining count.
        m.hub.come_up()
        m.hub.set_pull_limit(0, heads_too=True)
        limited = reg.manifest(repo, "v1")
        check(limited.status in (404, 429, 503), "GET through the rate-limited upstream: %r" % limited)
        up = api(reg, "GET", "/api/overview").json()["upstreams"][0]
        check_eq((up["state"], up["ratelimit_remaining"]), ("backing_off", 0), "upstream after a 429 (%r)" % up)
        check("429" in (up["last_error"] or ""), "last error after a 429: %r" % up)
