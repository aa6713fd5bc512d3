"""The web page (issue 13) in a real browser: headless chromium driven through chromedriver (browser.py).

With auth on (htpasswd): nothing but the login form and 401s before signing in; a wrong password is
refused; a pushed repository, its tags and a referrer under its subject; search; delete a tag through
the confirmation dialog (cancel first); CSRF refused; hostile strings shown as text; the activity
page; log out (a reload shows the login form again); no delete button when deleting is off.
With auth off, as a pull-through mirror: hits go up on the overview (by its own 10 s refresh) after
pulls through the mirror, with the page at http.ui.path /console/; the mirrored image's page; evict
it with confirmation; the overview at phone width and in dark mode.

Each test fails if the browser console shows an error the test did not provoke itself. Screenshots
of every page go to tests/out/ui/; with WHARF_UI_SCREENSHOTS_TO_DOCS=1 the overview and repository
pages (1280x800) are also written to docs/ui-overview.png and docs/ui-repository.png."""
import json
import os
import re
import shutil

from browser import Browser
from harness import REPO_ROOT, check, check_eq, imagegen, timeout, wharf_only
from http_util import request
from mirror_util import Mirror

UI = "web UI (http.ui, /api/)"
USERS = {"alice": "alice-pass", "bob": "bob-pass"}
# Would set window.__xss if it ever ran as markup; shown as text it is harmless.
HOSTILE = 'application/x-<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'
OUT = os.path.join(REPO_ROOT, "tests", "out", "ui")
MAIN = "document.getElementById('main')"


def shot(b, name, docs=None):
    """Screenshot into tests/out/ui/<name>.png (and docs/<docs>.png when asked to refresh the docs)."""
    path = b.screenshot(os.path.join(OUT, name + ".png"))
    if docs and os.environ.get("WHARF_UI_SCREENSHOTS_TO_DOCS") == "1":
        shutil.copy(path, os.path.join(REPO_ROOT, "docs", docs + ".png"))


def view(b, name, after=None, tries=300):
    """Waits until the page shows view `name` (rendered after the render stamp `after`); returns the stamp."""
    return b.wait("const m = %s; return m.dataset.view === arguments[0] && m.dataset.loaded !== arguments[1] "
                  "&& m.dataset.loaded;" % MAIN, "the %s page" % name, name, after, tries=tries)


def goto(b, url, name):
    """Opens `url` (often only a new hash) and waits for a fresh render of view `name`."""
    before = stamp(b)
    b.get(url)
    return view(b, name, after=before)


def stamp(b):
    return b.js("return %s.dataset.loaded || null;" % MAIN)


def rows(b, css, attr):
    return b.js("return [...document.querySelectorAll(arguments[0])].map((e) => e.dataset[arguments[1]]);", css, attr)


class Console:
    """Fails on any browser console error except those matching the patterns a test expects."""

    def __init__(self, b):
        self.b = b

    def clean(self, what, allowed=()):
        errors = [e["message"] for e in self.b.console() if e.get("level") == "SEVERE"]
        bad = [m for m in errors if not any(re.search(p, m) for p in allowed)]
        check(not bad, "browser console errors %s: %s" % (what, bad[:3]))


def no_script_ran(b, what):
    """The hostile strings stayed text: no alert, nothing they would set, no element they would inject."""
    check_eq(b.alert_text(), None, "%s: an alert is open" % what)
    found = b.js("return {xss: window.__xss === undefined ? null : window.__xss, "
                 "imgs: document.querySelectorAll('img[src=\"x\"], img[onerror]').length, "
                 "scripts: [...document.scripts].map((s) => s.getAttribute('src'))};")
    check_eq(found, {"xss": None, "imgs": 0, "scripts": ["assets/app.js"]}, "%s: effects of hostile markup" % what)


def push_referrer(reg, repo, subject_digest, artifact_type):
    """Pushes an OCI artifact manifest whose subject is `subject_digest`; returns its digest."""
    empty = reg.push_blob(repo, b"{}")
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "artifactType": artifact_type,
                "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
                "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2}],
                "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": subject_digest,
                            "size": len(reg.manifest(repo, subject_digest).body)}}
    body = json.dumps(manifest).encode()
    digest = imagegen.sha256(body)
    r, _ = reg.push_manifest(repo, digest, body)
    check_eq(r.status, 201, "referrer manifest PUT (%r)" % r)
    return digest


def fetch_status(b, path, method="GET", headers=None, body=None):
    """The status of a fetch() the page itself makes (same origin, with its cookie)."""
    res = b.js_async("const r = await fetch(arguments[0], {method: arguments[1], headers: arguments[2], "
                     "body: arguments[3], credentials: 'same-origin'}); return r.status;",
                     path, method, headers or {}, body)
    check(isinstance(res, int), "fetch %s %s failed in the page: %r" % (method, path, res))
    return res


def tags_list(reg, repo):
    r = reg.req("GET", "/v2/%s/tags/list" % repo)
    return sorted(r.json().get("tags") or []) if r.status == 200 else []


@wharf_only(UI)
@timeout(300)
def test_login_repos_search_delete_logout(ctx):
    reg = ctx.registry(users=USERS).start()
    one = reg.push_image("team/app", "1.0", seed=11)
    two = reg.push_image("team/app", "2.0", seed=12, layers=2)
    sig = push_referrer(reg, "team/app", one["manifest_digest"], "application/vnd.dev.cosign.artifact.sig.v1+json")
    probe = reg.push_image("tools/xss-probe", "1", seed=13)
    push_referrer(reg, "tools/xss-probe", probe["manifest_digest"], HOSTILE)

    # Without signing in: the shell (no data) is served with the CSP, every data endpoint is 401.
    shell = request("GET", reg.url + "/")
    check_eq(shell.status, 200, "GET / without credentials")
    check("script-src 'self'" in (shell.header("Content-Security-Policy") or ""), "CSP on the page: %r" % shell.headers)
    check(b"team/app" not in shell.body, "the page shell holds repository data")
    for path in ("overview", "repositories", "repository?name=team/app", "activity?limit=10"):
        r = request("GET", reg.url + "/api/" + path)
        check_eq(r.status, 401, "GET /api/%s without credentials (%r)" % (path, r))

    b = Browser(ctx)
    con = Console(b)
    b.get(reg.url + "/")
    view(b, "login")
    check("team/app" not in b.main_text(), "data shown before signing in")
    check_eq(b.js("return document.getElementById('nav').hidden;"), True, "navigation hidden before signing in")
    shot(b, "login")

    b.type("#login-user", "alice")
    b.type("#login-pass", "wrong-password")
    b.click("#login-submit")
    b.wait("return document.getElementById('login-error').textContent;", "the wrong-password message")
    check_eq(b.js("return %s.dataset.view;" % MAIN), "login", "view after a wrong password")
    con.clean("after a wrong password", allowed=[r"/api/login .*\b401\b"])

    b.type("#login-pass", USERS["alice"])
    b.click("#login-submit")
    view(b, "overview")
    check_eq(b.text("#who-name"), "alice", "signed-in user shown")
    shot(b, "overview-signed-in")

    # Repositories: both pushed repositories, then search narrows to one.
    b.click('nav a[data-route="repos"]')
    view(b, "repos")
    check_eq(sorted(rows(b, "tr[data-repo]", "repo")), ["team/app", "tools/xss-probe"], "repositories listed")
    shot(b, "repositories")
    before = stamp(b)
    b.type("#repo-search", "xss")
    view(b, "repos", after=before)
    b.wait("return location.hash.includes('q=xss') && %s.dataset.view === 'repos' && "
           "document.querySelector('#repo-search').value === 'xss' && "
           "document.querySelectorAll('tr[data-repo]').length === 1;" % MAIN, "the search for 'xss' to narrow the list")
    check_eq(rows(b, "tr[data-repo]", "repo"), ["tools/xss-probe"], "repositories matching 'xss'")

    # The hostile artifact type shows as text and runs nothing.
    b.click('tr[data-repo="tools/xss-probe"] a')
    view(b, "repo")
    check(HOSTILE in b.text(".tag-list"), "the hostile artifact type is not shown as text: %r" % b.text(".tag-list"))
    no_script_ran(b, "repository page with a hostile referrer")

    # A repository: tags, digests, referrer under its subject, pull lines.
    goto(b, reg.url + "/#/repo/team%2Fapp", "repo")
    check_eq(b.text("#repo-name"), "team/app", "repository heading")
    check_eq(rows(b, "tr.tag", "tag"), ["1.0", "2.0"], "tags listed")
    digests = b.js("return [...document.querySelectorAll('tr.tag td.mono')].map((e) => e.title);")
    check_eq(digests, [one["manifest_digest"], two["manifest_digest"]], "tag digests")
    ref_after = b.js("const r = document.querySelector('tr.tag[data-tag=\"1.0\"]').nextElementSibling; "
                     "return r && r.classList.contains('ref') ? r.querySelector('td.mono').title : null;")
    check_eq(ref_after, sig, "the signature listed under its subject (tag 1.0)")
    check(reg.host + "/team/app" in b.text("#pull-docker") and b.text("#pull-docker").startswith("docker pull "),
          "docker pull line: %r" % b.text("#pull-docker"))
    check(b.text("#pull-podman").startswith("podman pull " + reg.host + "/team/app"),
          "podman pull line: %r" % b.text("#pull-podman"))
    shot(b, "repository", docs="ui-repository")

    # Delete a tag: cancelling the dialog keeps it, confirming deletes it.
    b.click('button[data-action="delete"][data-tag="1.0"]')
    b.wait("return document.getElementById('confirm').open;", "the confirmation dialog")
    check("team/app:1.0" in b.text("#confirm-text"), "dialog names the tag: %r" % b.text("#confirm-text"))
    shot(b, "delete-confirm")
    b.click("#confirm-cancel")
    b.wait("return !document.getElementById('confirm').open;", "the dialog to close")
    check_eq(tags_list(reg, "team/app"), ["1.0", "2.0"], "tags after cancelling the delete")
    before = stamp(b)
    b.click('button[data-action="delete"][data-tag="1.0"]')
    b.wait("return document.getElementById('confirm').open;", "the confirmation dialog")
    b.click("#confirm-ok")
    view(b, "repo", after=before)
    check_eq(rows(b, "tr.tag", "tag"), ["2.0"], "tags shown after the delete")
    check_eq(tags_list(reg, "team/app"), ["2.0"], "tags the registry lists after the delete")

    # CSRF: the page's own cookie without the token (or with a wrong one) is refused.
    body = json.dumps({"name": "team/app", "tag": "2.0"})
    check_eq(fetch_status(b, "/api/delete-tag", "POST", {"Content-Type": "application/json"}, body), 403,
             "delete-tag with the session cookie but no X-CSRF-Token")
    check_eq(fetch_status(b, "/api/delete-tag", "POST", {"Content-Type": "application/json",
                                                         "X-CSRF-Token": "0" * 43}, body), 403,
             "delete-tag with a wrong X-CSRF-Token")
    check_eq(tags_list(reg, "team/app"), ["2.0"], "tags after the refused requests")
    con.clean("on the repository page", allowed=[r"/api/delete-tag .*\b403\b"])

    # Activity: the pushes and the delete, newest first.
    b.click('nav a[data-route="activity"]')
    view(b, "activity")
    events = b.js("return [...document.querySelectorAll('tr.event')].map((r) => r.textContent);")
    check(any("delete" in e and "team/app" in e for e in events), "no delete of team/app in the activity: %r" % events[:5])
    check(any("push" in e and "team/app" in e for e in events), "no push to team/app in the activity: %r" % events[:5])
    shot(b, "activity")

    # Log out: the login form, also after a reload, and the cookie no longer opens the API.
    b.click("#logout")
    view(b, "login")
    b.refresh()
    view(b, "login")
    check("team/app" not in b.main_text(), "data shown after logging out")
    check_eq(fetch_status(b, "/api/overview"), 401, "GET /api/overview from the page after logging out")
    con.clean("after logging out", allowed=[r"/api/overview .*\b401\b"])
    no_script_ran(b, "the whole session")

    # With storage.delete.enabled off (and auth off) the page offers no delete button.
    plain = ctx.registry(name="nodelete", delete=False).start()
    plain.push_image("team/app", "1.0", seed=14)
    b.get(plain.url + "/#/repo/team%2Fapp")
    view(b, "repo")
    check_eq(rows(b, "tr.tag", "tag"), ["1.0"], "tags on the registry without delete")
    check_eq(b.js("return document.querySelectorAll('button[data-action]').length;"), 0,
             "delete/evict buttons with storage.delete.enabled off")
    con.clean("on the registry without delete")


@wharf_only(UI)
@timeout(300)
def test_mirror_hits_and_evict(ctx):
    # The page at a non-default http.ui.path: its assets are relative, the API stays at /api/.
    with Mirror(ctx, extra={"http": {"ui": {"path": "/console/"}}}) as m:
        page = m.wharf.url + "/console/"
        img = ctx.image(name="mirrored", layers=2, size=128 << 10, seed=31)
        m.hub.push(img, "library/mirrored", "1.0")
        b = Browser(ctx)
        con = Console(b)
        b.get(page)
        view(b, "overview")  # auth off: no login form
        check_eq(b.js("return document.getElementById('who').hidden;"), True, "user box with auth off")
        hits_before = int(b.js("return %s.dataset.hits;" % MAIN))

        m.skopeo_pull("library/mirrored", "1.0", ctx.path("pull-1"))  # fetched upstream: misses
        m.skopeo_pull("library/mirrored", "1.0", ctx.path("pull-2"))  # served from the cache: hits
        # The overview refreshes itself every 10 s; wait (bounded) for the new hits to show.
        b.wait("return Number(%s.dataset.hits) > arguments[0];" % MAIN, "hits to go up on the overview",
               hits_before, tries=240, interval=0.25)
        check(b.js("return document.querySelector('#upstreams td strong').textContent;") == "docker.io",
              "upstream docker.io listed on the overview")
        check(b.js("return document.querySelectorAll('#traffic rect').length;") > 0, "no bars in the traffic chart")
        shot(b, "overview", docs="ui-overview")

        goto(b, page + "#/repos?kind=mirror", "repos")
        check_eq(rows(b, "tr[data-repo]", "repo"), ["docker.io/library/mirrored"], "mirrored repositories listed")
        b.click('tr[data-repo="docker.io/library/mirrored"] a')
        view(b, "repo")
        check_eq(rows(b, "tr.tag", "tag"), ["1.0"], "cached tags of the mirrored repository")
        check_eq(b.js("return document.querySelector('tr.tag td.mono').title;"), img["manifest_digest"],
                 "digest of the cached tag")
        check(b.js("return document.querySelector('tr.tag').children[6].textContent;") not in ("", "–"),
              "last pull of the cached tag not shown")
        shot(b, "repository-mirrored")

        gets_before = m.hub.log.manifest_gets("library/mirrored")
        before = stamp(b)
        b.click('button[data-action="evict"][data-tag="1.0"]')
        b.wait("return document.getElementById('confirm').open;", "the evict confirmation dialog")
        b.click("#confirm-ok")
        view(b, "repo", after=before)
        check_eq(rows(b, "tr.tag", "tag"), [], "cached tags after evicting")
        r = m.manifest("library/mirrored/manifests/1.0")
        check_eq(r.status, 200, "pull after evicting (%r)" % r)
        check(m.hub.log.manifest_gets("library/mirrored") > gets_before,
              "the evicted tag was served without asking upstream (%s)" % m.seen())

        # A phone-sized window: nothing wider than the screen; and dark mode.
        b.set_size(375, 812)
        goto(b, page + "#/", "overview")
        widths = b.js("return [document.documentElement.scrollWidth, window.innerWidth];")
        check(widths[0] <= widths[1], "the overview is wider than a 375 px window: %r" % widths)
        shot(b, "overview-phone")
        b.set_size(1280, 800)
        b.color_scheme("dark")
        goto(b, page + "#/repos", "repos")
        shot(b, "repositories-dark")
        con.clean("on the mirror's pages")
