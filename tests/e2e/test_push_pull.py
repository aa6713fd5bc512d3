"""Push and pull with skopeo through htpasswd (bcrypt) auth; content must round-trip byte for byte."""
import hashlib
import json
import os
import re

from harness import blob_path, check, check_eq, files_equal
from http_util import basic_auth, request

USERS = {"alice": "s3cret-Pass", "bob": "other-pass"}


def test_skopeo_roundtrip_with_auth(ctx):
    reg = ctx.registry(users=USERS).start()
    img = ctx.image(layers=3, size=512 << 10, seed=11)
    dest = "docker://%s/e2e/roundtrip:v1" % reg.host

    ctx.skopeo("copy", "--dest-creds", reg.creds, "--dest-tls-verify=false", "oci:" + img["dir"], dest)

    raw = ctx.skopeo("inspect", "--raw", "--creds", reg.creds, "--tls-verify=false", dest).stdout
    # skopeo prints the manifest bytes as stored; its digest must be the one imagegen wrote.
    check_eq("sha256:" + hashlib.sha256(raw.encode()).hexdigest(), img["manifest_digest"],
             "digest of the manifest served by the registry")

    out = ctx.path("pulled")
    ctx.skopeo("copy", "--src-creds", reg.creds, "--src-tls-verify=false", dest, "oci:" + out)
    index = json.load(open(os.path.join(out, "index.json")))
    check_eq(index["manifests"][0]["digest"], img["manifest_digest"], "digest of the pulled manifest")
    for digest in img["layers"] + [img["config_digest"], img["manifest_digest"]]:
        pulled = blob_path(out, digest)
        check(os.path.exists(pulled), "pulled layout lacks blob %s" % digest)
        check(files_equal(blob_path(img["dir"], digest), pulled), "blob %s differs after the round trip" % digest)


def test_push_without_credentials_is_refused(ctx):
    reg = ctx.registry(users=USERS).start()
    img = ctx.image(layers=1, size=4096, seed=12)
    res = ctx.skopeo("copy", "--dest-tls-verify=false", "oci:" + img["dir"],
                     "docker://%s/e2e/anon:v1" % reg.host, check_rc=False)
    check(res.returncode != 0, "anonymous skopeo push succeeded")
    check(re.search(r"401|unauthorized|authentication required", res.stderr, re.I),
          "anonymous push failed, but not for auth: %s" % res.stderr.strip()[-200:])
    r = reg.req("GET", "/v2/e2e/anon/tags/list")
    check(r.status == 404, "repository exists after a refused anonymous push: %r" % r)


def test_basic_auth_challenge(ctx):
    reg = ctx.registry(users=USERS).start()
    url = reg.url + "/v2/"

    anon = request("GET", url)
    check_eq(anon.status, 401, "anonymous GET /v2/ status")
    challenge = anon.header("WWW-Authenticate", "")
    check(re.fullmatch(r'Basic realm="%s"(,.*)?' % re.escape(reg.REALM), challenge),
          "WWW-Authenticate: expected Basic realm=\"%s\", got %r" % (reg.REALM, challenge))

    wrong = request("GET", url, {"Authorization": basic_auth("alice", "wrong-password")})
    check_eq(wrong.status, 401, "GET /v2/ with a wrong password")
    unknown = request("GET", url, {"Authorization": basic_auth("mallory", USERS["alice"])})
    check_eq(unknown.status, 401, "GET /v2/ as an unknown user")
    other = request("GET", url, {"Authorization": basic_auth("alice", USERS["bob"])})
    check_eq(other.status, 401, "GET /v2/ with another user's password")

    for user, password in USERS.items():
        ok = request("GET", url, {"Authorization": basic_auth(user, password)})
        check_eq(ok.status, 200, "GET /v2/ as %s with the right password" % user)
