"""The fakehub (tests/e2e/fakehub.py) checked on its own, without wharf: skopeo pulls from it as from
Docker Hub (token dance, 307 to the CDN), and each control the mirror tests rely on does what it says.
If this fails, the mirror tests' failures say nothing about wharf."""
import datetime
import json
import os

from fakehub import FakeHub
from harness import blob_path, check, check_eq, files_equal, timeout
from http_util import request
from registry import MANIFEST_ACCEPT


def token_for(hub, repo, headers=None):
    r = request("GET", "%s/token?service=%s&scope=repository:%s:pull" % (hub.url, hub.service, repo), headers)
    check_eq(r.status, 200, "GET /token status (%r)" % r)
    body = r.json()
    check(body.get("token") and body.get("access_token") == body["token"], "token response: %r" % body)
    check_eq(body.get("expires_in"), hub.expires_in, "token expires_in")
    datetime.datetime.strptime(body["issued_at"], "%Y-%m-%dT%H:%M:%S.%fZ")  # RFC 3339, UTC
    return {"Authorization": "Bearer " + body["token"]}


def check_challenges(hub, repo):
    realm = 'Bearer realm="%s/token",service="registry.docker.io"' % hub.url
    r = request("GET", hub.url + "/v2/")
    check_eq((r.status, r.header("WWW-Authenticate")), (401, realm), "GET /v2/ without a token")
    r = request("GET", "%s/v2/%s/manifests/v1" % (hub.url, repo), {"Accept": MANIFEST_ACCEPT})
    check_eq((r.status, r.header("WWW-Authenticate")), (401, realm + ',scope="repository:%s:pull"' % repo),
             "manifest GET without a token")
    check_eq(r.error_codes(), ["UNAUTHORIZED"], "error codes of the 401")
    other = token_for(hub, "library/other")
    r = request("GET", "%s/v2/%s/manifests/v1" % (hub.url, repo), dict(other, Accept=MANIFEST_ACCEPT))
    check_eq(r.status, 401, "manifest GET with a token for another repository")


def check_manifest_and_blobs(hub, repo, img):
    bearer = token_for(hub, repo)
    r = request("GET", "%s/v2/%s/manifests/v1" % (hub.url, repo), dict(bearer, Accept=MANIFEST_ACCEPT))
    check_eq((r.status, r.header("Docker-Content-Digest")), (200, img["manifest_digest"]), "manifest GET")
    check_eq(r.header("ratelimit-limit"), "100;w=21600", "ratelimit-limit")
    check(r.header("ratelimit-remaining", "").endswith(";w=21600") and r.header("docker-ratelimit-source"),
          "rate-limit headers missing: %s" % dict(r.headers))
    layer = img["layers"][0]
    with open(blob_path(img["dir"], layer), "rb") as f:
        data = f.read()
    r = request("HEAD", "%s/v2/%s/blobs/%s" % (hub.url, repo, layer), bearer)
    check_eq((r.status, r.header("Content-Length"), r.header("Docker-Content-Digest")),
             (200, str(len(data)), layer), "blob HEAD")
    r = request("GET", "%s/v2/%s/blobs/%s" % (hub.url, repo, layer), bearer)
    check_eq(r.status, 307, "blob GET status")
    location = r.header("Location")
    check(location.startswith(hub.cdn_url + "/blobs/" + layer + "?sig="), "blob Location: %s" % location)
    got = request("GET", location)
    check(got.status == 200 and got.body == data, "CDN GET: %r" % got)
    check_eq(request("GET", location, bearer).status, 400, "CDN GET with an Authorization header")
    check_eq(len(hub.violations), 1, "violations recorded for the CDN GET with Authorization")
    hub.violations.clear()
    check_eq(request("GET", location.split("?")[0] + "?sig=forged").status, 403, "CDN GET with a forged sig")

    hub.cut_blobs(True)
    cut = request("GET", location)
    hub.cut_blobs(False)
    check(cut.incomplete and len(cut.body) == len(data) // 2, "cut CDN GET: incomplete=%s, %d of %d bytes" % (
        cut.incomplete, len(cut.body), len(data)))
    return bearer


def check_rate_limit(hub, repo, bearer):
    url = "%s/v2/%s/manifests/v1" % (hub.url, repo)
    first = request("GET", url, dict(bearer, Accept=MANIFEST_ACCEPT))
    hub.set_pull_limit(1)
    check_eq(request("GET", url, dict(bearer, Accept=MANIFEST_ACCEPT)).status, 200, "manifest GET within the limit")
    r = request("GET", url, dict(bearer, Accept=MANIFEST_ACCEPT))
    check_eq((r.status, r.error_codes()), (429, ["TOOMANYREQUESTS"]), "manifest GET past the limit")
    check_eq(request("HEAD", url, dict(bearer, Accept=MANIFEST_ACCEPT)).status, 200, "HEAD past the GET limit")
    hub.set_pull_limit(0, heads_too=True)
    check_eq(request("HEAD", url, dict(bearer, Accept=MANIFEST_ACCEPT)).status, 429, "HEAD with heads_too")
    hub.set_pull_limit(None)
    left = lambda resp: int(resp.header("ratelimit-remaining").split(";")[0])  # noqa: E731
    check_eq(left(first) - left(request("GET", url, dict(bearer, Accept=MANIFEST_ACCEPT))), 2,
             "ratelimit-remaining drop over two counted GETs")


@timeout(180)
def test_fakehub_selfcheck(ctx):
    hub = FakeHub(ctx).start()
    img = ctx.image(layers=3, size=256 << 10, seed=61)
    repo = "library/selfcheck"
    hub.push(img, repo, "v1")

    check_challenges(hub, repo)
    bearer = check_manifest_and_blobs(hub, repo, img)
    check_rate_limit(hub, repo, bearer)

    hub.reset_counters()
    out = ctx.path("pulled")
    ctx.skopeo("copy", "--src-tls-verify=false", "docker://%s/%s:v1" % (hub.host, repo), "oci:" + out)
    for d in img["layers"] + [img["config_digest"]]:
        check(files_equal(blob_path(img["dir"], d), blob_path(out, d)), "skopeo copied %s wrongly" % d)
        check_eq(hub.log.cdn_gets(d), 1, "CDN GETs of %s during skopeo copy (%s)" % (d[:19], hub.log.summary()))
    check(1 <= hub.token_requests() <= 2, "skopeo's token requests: %s" % hub.log.summary())
    info = json.loads(ctx.skopeo("inspect", "--tls-verify=false", "docker://%s/%s:v1" % (hub.host, repo)).stdout)
    check_eq(info.get("Digest"), img["manifest_digest"], "skopeo inspect digest")

    hub.set_credentials("hubuser", "hubpass")
    hub.reset_counters()
    ref = "docker://%s/%s:v1" % (hub.host, repo)
    denied = ctx.skopeo("inspect", "--tls-verify=false", "--no-creds", ref, check_rc=False)
    check(denied.returncode != 0, "skopeo inspect without credentials succeeded")
    ctx.skopeo("inspect", "--tls-verify=false", "--creds", "hubuser:hubpass", ref)
    check(hub.log.count("GET", "token", status=200) and all(
        e["auth"] == "Basic" for e in hub.log.entries(kind="token", status=200)), "token requests without Basic")
    hub.set_credentials(None, None)

    hub.go_down()
    try:
        request("GET", hub.url + "/v2/", timeout=5)
        check(False, "the hub still answers after go_down()")
    except ConnectionRefusedError:
        pass
    hub.come_up()
    check_eq(request("GET", hub.url + "/v2/").status, 401, "GET /v2/ after come_up()")
    check_eq(hub.violations, [], "CDN violations")
    check(os.path.getsize(ctx.path("hub.log")) > 0, "the hub wrote no log")
