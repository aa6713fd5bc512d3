"""proxy.forwardcredentials: wharf (its own sign-in off) forwards each client's Basic credentials to
the upstream as that client's account, and keeps what one account fetched from everyone the upstream
would not show it to. The fakehub makes alice/secret private to alice (Docker Hub's 401 for anyone else)."""
import base64
import json
import os

from harness import blob_path, check, check_eq, files_equal, timeout
from http_util import basic_auth, request
from mirror_util import Mirror, mirror_dockerd
from registry import MANIFEST_ACCEPT
from test_docker import image_id

ALICE = ("alice", "alice-hub-pass")
BOB = ("bob", "bob-hub-pass")


def headers(creds, accept=True):
    h = {"Accept": MANIFEST_ACCEPT} if accept else {}
    if creds:
        h["Authorization"] = basic_auth(*creds)
    return h


def check_kept_out(m, who, creds, repo, img):
    """Neither the private manifest (by tag or digest), nor its blobs, nor its tags reach `who`."""
    for ref in ("v1", img["manifest_digest"]):
        for method in ("GET", "HEAD"):
            r = request(method, "%s/v2/%s/manifests/%s" % (m.wharf.url, repo, ref), headers(creds), timeout=60)
            check(r.status in (401, 403, 404) and r.header("Docker-Content-Digest") is None,
                  "%s's %s of the private manifest %s: %r (%s)" % (who, method, ref[:19], r, m.seen()))
    for d in img["layers"] + [img["config_digest"]]:
        r = request("GET", "%s/v2/%s/blobs/%s" % (m.wharf.url, repo, d), headers(creds, False), timeout=60)
        check_eq((r.status, r.error_codes()), (404, ["BLOB_UNKNOWN"]), "%s's GET of private blob %s" % (who, d[:19]))
        # Probing through a repository the caller may pull does not reach the private bytes either.
        r = request("GET", "%s/v2/library/shared/blobs/%s" % (m.wharf.url, d), headers(creds, False), timeout=60)
        check_eq(r.status, 404, "%s's GET of private blob %s through library/shared" % (who, d[:19]))
    r = request("GET", "%s/v2/%s/tags/list" % (m.wharf.url, repo), headers(creds, False), timeout=60)
    check(r.status != 200, "%s's tags list of the private repository: %r" % (who, r))


@timeout(300)
def test_forwarded_credentials_keep_private_upstream_images_private(ctx):
    with Mirror(ctx, extra={"proxy": {"forwardcredentials": True}}) as m:
        secret = ctx.image("secret", layers=2, size=32 << 10, seed=91)
        shared = ctx.image("shared", layers=1, size=16 << 10, seed=92)
        m.hub.push(secret, "alice/secret", "v1")
        m.hub.push(shared, "library/shared", "v1")
        m.hub.set_private("alice/secret", {ALICE[0]: ALICE[1]})

        r = request("GET", m.wharf.url + "/v2/")
        check_eq((r.status, (r.header("WWW-Authenticate") or "").split(" ")[0]), (401, "Basic"),
                 "GET /v2/ without credentials (the invitation to send them)")
        check_eq(request("GET", m.wharf.url + "/v2/", headers(BOB, False)).status, 200, "GET /v2/ with credentials")

        # A public image fetched for bob is shared with everyone (checked at the end, from the cache).
        r = request("GET", m.wharf.url + "/v2/library/shared/manifests/v1", headers(BOB))
        check_eq((r.status, r.header("Docker-Content-Digest")), (200, shared["manifest_digest"]), "bob's pull of shared")

        check_kept_out(m, "bob (nothing cached yet)", BOB, "alice/secret", secret)

        # alice pulls her private image with a real client; her account goes to the hub's token service.
        m.hub.reset_counters()
        out = ctx.path("alice-pull")
        ctx.skopeo("copy", "--src-tls-verify=false", "--src-creds", "%s:%s" % ALICE,
                   "docker://%s/alice/secret:v1" % m.wharf.host, "oci:" + out, timeout=180)
        for d in secret["layers"] + [secret["config_digest"]]:
            check(files_equal(blob_path(secret["dir"], d), blob_path(out, d)), "alice's copy of %s" % d[:19])
        tokens = m.hub.log.entries(kind="token", status=200)
        check(tokens and all(e["auth"] == "Basic" for e in tokens), "hub token requests: %s" % tokens)
        for d in secret["layers"]:
            check(os.path.exists(m.stored_blob(d)), "private layer %s cached" % d[:19])

        # Cached now, and still neither bob nor an anonymous caller gets any of it.
        check_kept_out(m, "bob", BOB, "alice/secret", secret)
        check_kept_out(m, "anonymous", None, "alice/secret", secret)
        def catalog(creds):
            r = request("GET", m.wharf.url + "/v2/_catalog", headers(creds, False))
            check_eq(r.status, 200, "catalog status")
            return r.json().get("repositories", [])
        check(any(n.endswith("alice/secret") for n in catalog(ALICE)), "alice's catalog: %s" % catalog(ALICE))
        for creds in (BOB, None):
            check(not any("secret" in n for n in catalog(creds)), "catalog of %s lists alice's repository" % (creds,))
        # Nor the web page's API (it has no upstream account: it shows what everyone may pull).
        for path in ("/api/repositories?per_page=200", "/api/activity"):
            r = request("GET", m.wharf.url + path, {})
            check(r.status == 200 and b"alice/secret" not in r.body,
                  "%s shows alice's repository: %d %r" % (path, r.status, r.body[:300]))
        cached_name = next(n for n in catalog(ALICE) if n.endswith("alice/secret"))
        r = request("GET", m.wharf.url + "/api/repository?name=" + cached_name, {})
        check_eq(r.status, 404, "the page's API on alice's repository (%r)" % r.body[:200])
        res = ctx.skopeo("inspect", "--tls-verify=false", "--creds", "%s:%s" % BOB,
                         "docker://%s/alice/secret:v1" % m.wharf.host, check_rc=False)
        check(res.returncode != 0, "skopeo inspect as bob succeeded: %s" % res.stdout[:200])

        # alice again: the cache answers her (no manifest GET upstream within the freshness window).
        m.hub.reset_counters()
        r = request("GET", m.wharf.url + "/v2/alice/secret/manifests/v1", headers(ALICE))
        check_eq((r.status, r.header("Docker-Content-Digest")), (200, secret["manifest_digest"]), "alice's second pull")
        check_eq(m.hub.log.manifest_gets(), 0, "manifest GETs upstream for alice's second pull")

        anon = ctx.path("anon-pull")
        ctx.skopeo("copy", "--src-tls-verify=false", "docker://%s/library/shared:v1" % m.wharf.host, "oci:" + anon,
                   timeout=120)
        check(files_equal(blob_path(shared["dir"], shared["layers"][0]), blob_path(anon, shared["layers"][0])),
              "anonymous copy of the shared layer")

        # No secret in wharf's log: neither the password nor its Basic encoding.
        with open(ctx.path(m.wharf.name + ".log"), errors="replace") as f:
            log = f.read()
        encoded = base64.b64encode(("%s:%s" % ALICE).encode()).decode()
        check(ALICE[1] not in log and encoded not in log, "alice's upstream secret appears in wharf's log")


@timeout(60)
def test_forwarded_credentials_refuse_wharf_sign_in(ctx):
    """proxy.forwardcredentials needs wharf's own sign-in off: the config check names the key."""
    reg = ctx.registry(users={"u": "p"}, extra={"proxy": {"remoteurl": "http://127.0.0.1:9", "forwardcredentials": True}})
    from harness import SERVER_BIN, run
    res = run([SERVER_BIN, "check-config", reg.config_path], check_rc=False, timeout=30)
    check(res.returncode != 0 and "proxy.forwardcredentials" in res.stdout + res.stderr,
          "wharf check accepted forwardcredentials with htpasswd: %s %s" % (res.stdout[-300:], res.stderr[-300:]))


@timeout(300)
def test_dockerd_mirror_forwards_the_docker_io_login(ctx):
    """The common case: dockerd with registry-mirrors sends the docker.io account its user logged in with
    (here written into the CLI's config.json, as `docker login` does) to the mirror, which pulls the
    user's private image under it; without that login the same pull fails, though the image is cached."""
    with Mirror(ctx, extra={"proxy": {"forwardcredentials": True}}) as m:
        img = ctx.image("private", layers=2, size=64 << 10, seed=93, fmt="docker")
        m.hub.push(img, "alice/private", "v1")
        m.hub.set_private("alice/private", {ALICE[0]: ALICE[1]})
        dk = mirror_dockerd(ctx, m.wharf.url).start()
        config = os.path.join(dk.env["DOCKER_CONFIG"], "config.json")
        with open(config, "w") as f:
            json.dump({"auths": {"https://index.docker.io/v1/": {
                "auth": base64.b64encode(("%s:%s" % ALICE).encode()).decode()}}}, f)
        m.attempt("docker pull of alice's private image via registry-mirrors with her login",
                  lambda: dk.docker("pull", "docker.io/alice/private:v1"), "alice/private", "v1")
        check_eq(image_id(dk, "alice/private:v1"), img["config_digest"], "image ID after docker pull")
        check(any(e["auth"] == "Basic" for e in m.hub.log.entries(kind="token", status=200)),
              "no token request carried alice's account: %s" % m.seen())
        dk.docker("rmi", "alice/private:v1")
        os.remove(config)
        res = dk.docker("pull", "docker.io/alice/private:v1", check_rc=False)
        check(res.returncode != 0, "docker pulled alice's private image without her login")
        dk.stop()
