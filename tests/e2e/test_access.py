"""Access control: wharf's own token server, an external (registry:2-style) token server, access rules,
robot accounts and the audit log, with real clients (docker, skopeo) and with hand-made bad input.

Keys and certificates are made by the openssl CLI in the test; the external token server is a small
stdlib HTTP server in this file that signs ES256 JWTs with that key (openssl dgst), like docker_auth."""
import base64
import http.server
import json
import os
import re
import subprocess
import threading
import time

from harness import SERVER_BIN, check, check_eq, run, tail, timeout, wait_for
from http_util import basic_auth, request
from mirror_util import Mirror
from registry import htpasswd_file
from test_docker import Dockerd

USERS = {"alice": "alice-pass", "bob": "bob-pass", "carol": "carol-pass"}
SERVICE = "wharf-e2e-registry"
ISSUER = "wharf-e2e-issuer"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_key(ctx, name):
    """A P-256 key (PEM) and a self-signed certificate for it, made by openssl."""
    key, cert = ctx.path(name + ".key"), ctx.path(name + ".crt")
    run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key])
    run(["openssl", "req", "-x509", "-new", "-key", key, "-out", cert, "-days", "2", "-subj", "/CN=" + name])
    return key, cert


def der_to_raw(der):
    """ECDSA-Sig-Value (DER) -> r||s, 32 bytes each."""
    check(der[0] == 0x30, "openssl did not write a DER signature")
    i = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    out = b""
    for _ in range(2):
        check(der[i] == 0x02, "malformed DER signature")
        n = der[i + 1]
        out += der[i + 2:i + 2 + n].lstrip(b"\0").rjust(32, b"\0")
        i += 2 + n
    return out


def sign_jwt(key, claims, header=None):
    """An ES256 JWT signed by `key` through `openssl dgst`."""
    head = b64url(json.dumps(header or {"alg": "ES256", "typ": "JWT"}).encode())
    body = b64url(json.dumps(claims).encode())
    signing = (head + "." + body).encode()
    der = _openssl_sign(key, signing)
    return head + "." + body + "." + b64url(der_to_raw(der))


def _openssl_sign(key, data):
    p = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=data, capture_output=True, timeout=30)
    check(p.returncode == 0, "openssl dgst -sign failed: %s" % p.stderr.decode(errors="replace")[-200:])
    return p.stdout


def claims(sub, access, aud=SERVICE, iss=ISSUER, ttl=300):
    now = int(time.time())
    return {"iss": iss, "sub": sub, "aud": aud, "exp": now + ttl, "nbf": now - 5, "iat": now, "access": access}


class TokenServer:
    """A registry:2-style external token server: Basic credentials from USERS, grants from `policy`
    (user -> [(repo prefix, actions)]), ES256 tokens signed with `key`. Runs on a thread, loopback only."""

    def __init__(self, ctx, key, policy):
        self.key, self.policy, self.requests = key, policy, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                from urllib.parse import parse_qs, urlparse
                q = parse_qs(urlparse(self.path).query)
                user = ""
                auth = self.headers.get("Authorization", "")
                if auth.startswith("Basic "):
                    u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
                    if USERS.get(u) != p:
                        self.send_response(401)
                        self.end_headers()
                        return
                    user = u
                outer.requests.append((user, q.get("scope", [])))
                access = []
                for scope in q.get("scope", []):
                    typ, name, acts = scope.split(":")[0], scope.split(":")[1], scope.split(":")[2]
                    allowed = [a for a in acts.split(",")
                               if any(name.startswith(pfx) and a in grant for pfx, grant in outer.policy.get(user, []))]
                    if typ == "repository" and allowed:
                        access.append({"type": "repository", "name": name, "actions": allowed})
                token = sign_jwt(outer.key, claims(user, access))
                body = json.dumps({"token": token, "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/token" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        ctx.cleanups.append(self.stop)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


RULES = [
    {"match": "team-a/*", "groups": ["team-a"], "actions": ["pull", "push"]},
    {"match": "open/*", "anonymous": True, "users": ["alice"], "actions": ["pull", "push"]},
]


def own_token_registry(ctx, name="registry"):
    key, _ = make_key(ctx, name + "-token")
    reg = ctx.registry(name=name, users=USERS, extra={"auth": {
        "token": {"service": SERVICE, "issuer": ISSUER, "signingkeys": [key]},
        "groups": {"team-a": ["alice", "bob"]},
        "access": RULES,
        "audit": {"path": ctx.path(name + "-audit.log")},
    }})
    return reg, key


def get_token(reg, scopes, creds=None, service=SERVICE):
    q = "service=" + service + "".join("&scope=" + s for s in scopes)
    hdrs = {"Authorization": basic_auth(*creds)} if creds else {}
    return request("GET", reg.url + "/auth/token?" + q, hdrs)


def bearer(token):
    return {"Authorization": "Bearer " + token}


def test_own_token_server_rules_robots_and_bad_tokens(ctx):
    reg, key = own_token_registry(ctx)
    reg.start()
    img = ctx.image(layers=1, size=64 << 10, seed=71)

    # The challenge names the realm, the service and the scope.
    anon = request("GET", reg.url + "/v2/team-a/app/manifests/v1")
    check_eq(anon.status, 401, "anonymous GET of a closed repository")
    challenge = anon.header("WWW-Authenticate", "")
    check(challenge.startswith('Bearer realm="%s/auth/token",service="%s"' % (reg.url, SERVICE)) and
          'scope="repository:team-a/app:pull"' in challenge, "challenge: %r" % challenge)

    # skopeo speaks the token flow: alice may push to team-a/* and open/*.
    for repo in ("team-a/app", "open/base"):
        ctx.skopeo("copy", "--dest-creds", "alice:alice-pass", "--dest-tls-verify=false", "oci:" + img["dir"],
                   "docker://%s/%s:v1" % (reg.host, repo))

    # Tokens grant only what the rules allow; a grant-less token gets 401 (anonymous) or 403 (signed in).
    t = get_token(reg, ["repository:team-a/app:pull,push", "repository:team-b/app:pull,push"], ("bob", "bob-pass"))
    check_eq(t.status, 200, "token for bob")
    body = t.json()
    check(body["expires_in"] > 0 and body["token"] == body["access_token"], "token response: %r" % body)
    payload = json.loads(base64.urlsafe_b64decode(body["token"].split(".")[1] + "=="))
    check_eq(payload["access"], [{"type": "repository", "name": "team-a/app", "actions": ["pull", "push"]}],
             "bob's granted access")
    check_eq(request("GET", reg.url + "/v2/team-a/app/tags/list", bearer(body["token"])).status, 200,
             "bob pulls team-a/app with his token")
    denied = request("POST", reg.url + "/v2/team-b/app/blobs/uploads/", bearer(body["token"]))
    check_eq(denied.status, 403, "bob pushes to team-b/app")
    check("DENIED" in denied.error_codes() and "bob may not push" in denied.body.decode(), "403 body: %r" % denied)
    check('error="insufficient_scope"' in denied.header("WWW-Authenticate", ""), "403 challenge: %r" % denied)

    anon_tok = get_token(reg, ["repository:open/base:pull", "repository:team-a/app:pull"]).json()["token"]
    check_eq(request("GET", reg.url + "/v2/open/base/manifests/v1", bearer(anon_tok)).status, 200,
             "anonymous pull of an open repository")
    check_eq(request("GET", reg.url + "/v2/team-a/app/manifests/v1", bearer(anon_tok)).status, 401,
             "anonymous pull of a closed repository")
    check_eq(request("GET", reg.url + "/v2/open/base/manifests/v1").status, 200,
             "anonymous pull of an open repository without any token")

    # The catalog shows only what the caller may pull.
    def catalog(headers):
        r = request("GET", reg.url + "/v2/_catalog", headers)
        check_eq(r.status, 200, "catalog")
        return r.json()["repositories"]
    check_eq(catalog({"Authorization": basic_auth("carol", "carol-pass")}), ["open/base"], "carol's catalog")
    check_eq(catalog({"Authorization": basic_auth("bob", "bob-pass")}), ["open/base", "team-a/app"], "bob's catalog")
    check_eq(catalog({}), ["open/base"], "anonymous catalog")

    # Bad input: each gets a 401 that says what is wrong.
    wrong_service = sign_jwt(key, claims("alice", [{"type": "repository", "name": "team-a/app", "actions": ["pull"]}],
                                         aud="other-service"))
    dotdot = sign_jwt(key, claims("alice", [{"type": "repository", "name": "team-a/../x", "actions": ["pull"]}]))
    none_alg = b64url(b'{"alg":"none"}') + "." + b64url(json.dumps(claims("alice", [])).encode()) + "."
    cases = [("malformed", "not.a.jwt", "malformed token"),
             ("another service", wrong_service, "another service"),
             ("scope with ..", dotdot, "invalid repository"),
             ("alg none", none_alg, "not accepted"),
             ("huge", "a" * 40000, "too large")]
    for what, token, message in cases:
        r = request("GET", reg.url + "/v2/team-a/app/tags/list", bearer(token))
        check_eq(r.status, 401, "%s token" % what)
        check("UNAUTHORIZED" in r.error_codes() and message in r.body.decode(), "%s token: %r" % (what, r.body[:300]))
    r = get_token(reg, ["repository:team-a/../etc:pull"], ("alice", "alice-pass"))
    check(r.status == 401 and "invalid scope" in r.body.decode(), "token request with ..: %r" % r)
    r = get_token(reg, ["repository:team-a/app:pull"], ("alice", "alice-pass"), service="elsewhere")
    check(r.status == 401 and "service" in r.body.decode(), "token for another service: %r" % r)
    check_eq(get_token(reg, [], ("alice", "wrong")).status, 401, "token request with a wrong password")

    # A robot pushes with skopeo, is revoked, and is refused at once.
    out = run([SERVER_BIN, "robot", reg.config_path, "create", "ci", "--allow", "team-a/*:pull,push",
               "--expires", "1d"])
    secret = out.stdout.strip()
    check(len(secret) >= 40, "robot secret: %r" % secret)
    robots_text = open(os.path.join(reg.root, "robots.json")).read()
    check(secret not in robots_text and "sha256:" in robots_text, "robots file holds the secret in clear")
    listed = run([SERVER_BIN, "robot", reg.config_path, "list"]).stdout
    check("robot$ci" in listed and "team-a/*:pull,push" in listed, "robot list: %r" % listed)
    ctx.skopeo("copy", "--dest-creds", "robot$ci:" + secret, "--dest-tls-verify=false", "oci:" + img["dir"],
               "docker://%s/team-a/robot:v1" % reg.host)
    robo = get_token(reg, ["repository:team-a/robot:pull"], ("robot$ci", secret)).json()["token"]
    check_eq(request("GET", reg.url + "/v2/team-a/robot/manifests/v1", bearer(robo)).status, 200, "robot's token")
    no = ctx.skopeo("copy", "--dest-creds", "robot$ci:" + secret, "--dest-tls-verify=false", "oci:" + img["dir"],
                    "docker://%s/team-b/robot:v1" % reg.host, check_rc=False)
    check(no.returncode != 0, "the robot pushed outside its allow list")
    run([SERVER_BIN, "robot", reg.config_path, "revoke", "ci"])
    check_eq(request("GET", reg.url + "/v2/team-a/robot/manifests/v1", bearer(robo)).status, 401,
             "the revoked robot's token")
    again = ctx.skopeo("copy", "--dest-creds", "robot$ci:" + secret, "--dest-tls-verify=false", "oci:" + img["dir"],
                       "docker://%s/team-a/robot:v2" % reg.host, check_rc=False)
    check(again.returncode != 0, "a revoked robot pushed")

    # The audit log has logins, tokens, pushes and denials, and no secret.
    audit = open(ctx.path("registry-audit.log")).read()
    events = {json.loads(line)["audit"] for line in audit.splitlines() if line.strip()}
    for e in ("login", "token", "push", "denied"):
        check(e in events, "audit log lacks %s events: %s" % (e, tail(audit, 3)))
    for s in (secret, "alice-pass", "bob-pass", body["token"]):
        check(s not in audit, "audit log holds a secret")


def test_rules_with_basic_auth(ctx):
    reg = ctx.registry(users=USERS, extra={"auth": {"groups": {"team-a": ["alice", "bob"]}, "access": RULES}}).start()
    alice = {"Authorization": basic_auth("alice", "alice-pass")}
    carol = {"Authorization": basic_auth("carol", "carol-pass")}
    check_eq(request("POST", reg.url + "/v2/team-a/x/blobs/uploads/", alice).status, 202, "alice starts an upload")
    r = request("POST", reg.url + "/v2/team-a/x/blobs/uploads/", carol)
    check(r.status == 403 and "DENIED" in r.error_codes(), "carol starts an upload in team-a: %r" % r)
    r = request("GET", reg.url + "/v2/team-a/x/tags/list")
    check_eq(r.status, 401, "anonymous tags list of a closed repository")
    check(r.header("WWW-Authenticate", "").startswith("Basic realm="), "Basic challenge: %r" % r)
    check_eq(request("GET", reg.url + "/v2/open/x/tags/list").status, 404, "anonymous read of an open repository")
    check_eq(request("GET", reg.url + "/v2/", carol).status, 200, "carol signs in")
    check_eq(request("GET", reg.url + "/v2/").status, 401, "anonymous /v2/")


@timeout(900)
def test_docker_with_own_and_external_token_servers(ctx):
    own, _ = own_token_registry(ctx, "own")
    own.start()
    ext_key, ext_cert = make_key(ctx, "external")
    tokens = TokenServer(ctx, ext_key, {"alice": [("team-a/", ("pull", "push"))], "bob": [("team-a/", ("pull",))]})
    ext = ctx.registry(name="external", extra={"auth": {"token": {
        "realm": tokens.url, "service": SERVICE, "issuer": ISSUER, "rootcertbundle": ext_cert}}})
    ext.start()
    img = ctx.image(layers=2, size=256 << 10, seed=72, fmt="docker")
    archive = ctx.path("image.tar")
    ctx.skopeo("copy", "oci:" + img["dir"], "docker-archive:%s:%s" % (archive, "e2e/img:v1"))
    dk = Dockerd(ctx).start()
    dk.docker("load", "-i", archive)

    for reg in (own, ext):
        out = dk.docker("login", reg.host, "-u", "alice", "--password-stdin", input="alice-pass\n")
        check("Login Succeeded" in out.stdout, "docker login to %s: %s" % (reg.name, tail(out.stdout + out.stderr, 2)))
        good = "%s/team-a/app:v1" % reg.host
        dk.docker("tag", "e2e/img:v1", good)
        dk.docker("push", good)
        dk.docker("rmi", good)
        dk.docker("pull", good)
        bad = "%s/team-b/app:v1" % reg.host
        dk.docker("tag", "e2e/img:v1", bad)
        res = dk.docker("push", bad, check_rc=False)
        text = res.stdout + res.stderr
        check(res.returncode != 0, "docker pushed to team-b on %s" % reg.name)
        check(re.search(r"denied|insufficient_scope|unauthorized", text, re.I), "docker's refusal on %s: %s"
              % (reg.name, tail(text, 3)))
        if reg is own:
            check("alice may not push repository team-b/app" in text, "docker shows wharf's message: %s" % tail(text, 3))
    check(any(u == "alice" for u, _ in tokens.requests), "docker never asked the external token server")
    # skopeo against the external token server too.
    ctx.skopeo("copy", "--src-creds", "bob:bob-pass", "--src-tls-verify=false",
               "docker://%s/team-a/app:v1" % ext.host, "oci:" + ctx.path("pulled"))
    no = ctx.skopeo("copy", "--dest-creds", "bob:bob-pass", "--dest-tls-verify=false", "oci:" + img["dir"],
                    "docker://%s/team-a/bob:v1" % ext.host, check_rc=False)
    check(no.returncode != 0, "bob pushed with a pull-only token")


def test_fetch_rules_limit_who_fills_the_mirror(ctx):
    """auth.fetch: only alice may make wharf fetch from docker.io; bob sees what is cached, nothing more."""
    htpasswd = ctx.path("fetch.htpasswd")
    htpasswd_file(htpasswd, USERS)
    extra = {"auth": {"htpasswd": {"realm": "wharf-e2e", "path": htpasswd},
                      "fetch": [{"upstream": "docker.io", "users": ["alice"]}]}}
    with Mirror(ctx, extra=extra) as m:
        img = ctx.image(layers=1, size=4096, seed=73)
        m.hub.push(img, "library/fetched", "v1")
        alice = {"Authorization": basic_auth("alice", "alice-pass"), "Accept": "application/vnd.oci.image.manifest.v1+json"}
        bob = {"Authorization": basic_auth("bob", "bob-pass"), "Accept": "application/vnd.oci.image.manifest.v1+json"}
        url = m.wharf.url + "/v2/library/fetched/manifests/v1"
        before = m.hub.log.count(repo="library/fetched")
        r = request("GET", url, bob)
        check_eq(r.status, 404, "bob's pull of an uncached image")
        check_eq(m.hub.log.count(repo="library/fetched"), before, "upstream requests caused by bob")
        check_eq(request("GET", url, alice).status, 200, "alice's pull (fetches)")
        # wharf publishes a fetched manifest to its index just after answering alice.
        wait_for(lambda: request("GET", url, bob).status == 200, "bob's pull of the cached image to succeed",
                 tries=100, interval=0.1)


def test_immutable_tags_refuse_overwrite_and_delete(ctx):
    reg = ctx.registry(users=USERS, extra={"auth": {"immutabletags": ["team-a/*:v*"]}}).start()
    first = reg.push_image("team-a/app", "v1", seed=1)
    r, _ = reg.push_manifest("team-a/app", "v1", reg.push_image("team-a/app", "scratch", seed=2)["manifest"])
    check(r.status == 403 and "DENIED" in r.error_codes() and "immutable" in r.body.decode(),
          "overwrite of immutable tag v1: %r" % r)
    check_eq(reg.manifest("team-a/app", "v1").header("Docker-Content-Digest"), first["manifest_digest"],
             "v1 after the refused overwrite")
    reg.push_image("team-a/app", "latest", seed=3)
    reg.push_image("team-a/app", "latest", seed=4)  # mutable tags stay mutable
    for ref in ("v1", first["manifest_digest"]):
        r = reg.req("DELETE", "/v2/team-a/app/manifests/" + ref)
        check(r.status == 403 and "immutable" in r.body.decode(), "DELETE %s: %r" % (ref, r))
    check_eq(reg.manifest("team-a/app", "v1").status, 200, "v1 after the refused deletes")
    reg.push_image("team-a/app", "v2", seed=5)  # new immutable tags can be created


def test_retention_keeps_the_newest_tags(ctx):
    """storage.retention: of pr-1..pr-8 in team-a/app the 3 pushed last stay, pr-1 too (immutable), v1
    too (no rule); a --dry-run lists what would go and removes nothing; then the online GC applies it."""
    root = ctx.mkdir("retention-data")
    storage = {"retention": [{"match": "team-a/*", "tags": "pr-*", "keep": 3}]}
    auth = {"immutabletags": ["team-a/*:pr-1"]}
    reg = ctx.registry(root=root, extra={"storage": dict(storage), "auth": auth}).start()
    for i in range(1, 9):  # pushed in order: push times never decrease, ties go to the later tag
        reg.push_image("team-a/app", "pr-%d" % i, seed=100 + i)
    reg.push_image("team-a/app", "v1", seed=99)
    reg.push_image("team-b/app", "pr-1", seed=98)

    def tags(r):
        resp = r.req("GET", "/v2/team-a/app/tags/list")
        check_eq(resp.status, 200, "tags list")
        return sorted(json.loads(resp.body)["tags"])

    everything = tags(reg)
    reg.stop()
    res = run([SERVER_BIN, "garbage-collect", reg.config_path, "--dry-run"], timeout=120)
    gone = ["pr-%d" % i for i in range(2, 6)]
    for t in gone:
        check("would delete tag team-a/app:%s\n" % t in res.stdout, "--dry-run lists %s: %s" % (t, tail(res.stdout, 5)))
    for t in ("pr-1", "pr-6", "pr-7", "pr-8", "v1"):
        check("team-a/app:%s\n" % t not in res.stdout, "--dry-run would remove %s: %s" % (t, tail(res.stdout, 5)))
    check("team-b/app" not in res.stdout, "--dry-run touches team-b: %s" % tail(res.stdout, 5))
    reg.start()
    check_eq(tags(reg), everything, "tags after --dry-run")
    reg.stop()

    storage["gc"] = {"interval": "1s"}
    online = ctx.registry(root=root, name="online", extra={"storage": storage, "auth": auth}).start()
    expected = sorted(["pr-1", "pr-6", "pr-7", "pr-8", "v1"])
    wait_for(lambda: tags(online) == expected, "online GC to apply retention (tags %s)" % expected,
             tries=100, interval=0.2)
    check_eq(online.manifest("team-a/app", "pr-3").status, 404, "GET of a tag retention removed")
    check_eq(online.manifest("team-a/app", "pr-8").status, 200, "GET of a kept tag")
    check_eq(online.manifest("team-b/app", "pr-1").status, 200, "GET of a tag no rule governs")


@timeout(600)
def test_podman_and_containerd_with_own_token_server(ctx):
    """podman and containerd (ctr --hosts-dir with --user) go through wharf's own token server: alice
    (team-a) pulls and pushes, a push to team-b is refused, anonymous pulls of team-a are refused."""
    from mirror_util import Containerd, Podman
    reg, _ = own_token_registry(ctx, "tokpod")
    reg.start()
    img = ctx.image(layers=2, size=64 << 10, seed=74)
    ref = "%s/team-a/app:v1" % reg.host
    ctx.skopeo("copy", "--dest-creds", "alice:alice-pass", "--dest-tls-verify=false", "oci:" + img["dir"],
               "docker://" + ref)

    podman = Podman(ctx)
    anon = podman("pull", "--tls-verify=false", ref, check_rc=False, timeout=120)
    check(anon.returncode != 0, "podman pulled a closed repository anonymously")
    podman("login", "--tls-verify=false", "-u", "alice", "--password-stdin", reg.host, input="alice-pass\n", timeout=60)
    podman("pull", "--tls-verify=false", ref, timeout=300)
    info = json.loads(podman("image", "inspect", ref).stdout)
    check_eq(info[0].get("Digest"), img["manifest_digest"], "podman's manifest digest")
    pushed = "%s/team-a/podman:v1" % reg.host
    podman("tag", ref, pushed)
    podman("push", "--tls-verify=false", pushed, timeout=300)
    check_eq(reg.req("GET", "/v2/team-a/podman/tags/list", auth=False).status, 401, "anonymous tags list")
    tok = get_token(reg, ["repository:team-a/podman:pull"], ("bob", "bob-pass"))
    r = request("GET", reg.url + "/v2/team-a/podman/tags/list", bearer(json.loads(tok.body)["token"]))
    check(r.status == 200 and json.loads(r.body)["tags"] == ["v1"], "tags of podman's push: %r" % r)
    bad = "%s/team-b/podman:v1" % reg.host
    podman("tag", ref, bad)
    res = podman("push", "--tls-verify=false", bad, check_rc=False, timeout=120)
    check(res.returncode != 0, "podman pushed to team-b")
    check(re.search(r"denied|unauthorized|insufficient|403|forbidden", res.stderr + res.stdout, re.I),
          "podman's refusal: %s" % tail(res.stderr, 3))

    ctd = Containerd(ctx).start()
    d = os.path.join(ctd.hosts, reg.host)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "hosts.toml"), "w") as f:
        f.write('server = "http://%s"\n\n[host."http://%s"]\n  capabilities = ["pull", "resolve", "push"]\n'
                % (reg.host, reg.host))
    pull = ["images", "pull", "--snapshotter", "native", "--hosts-dir", ctd.hosts, "--plain-http"]
    no = ctd.ctr(*(pull + [ref]), check_rc=False)
    check(no.returncode != 0, "ctr pulled a closed repository without credentials")
    ctd.ctr(*(pull + ["--user", "bob:bob-pass", ref]))
    check_eq(ctd.image_digest(ref), img["manifest_digest"], "ctr's manifest digest")
    wrong = ctd.ctr(*(pull + ["--user", "carol:carol-pass", pushed]), check_rc=False)
    check(wrong.returncode != 0, "ctr pulled team-a as carol (not in team-a)")


def test_check_config_prints_auth_mode_and_checks_token_keys(ctx):
    key, cert = make_key(ctx, "cc")
    garbage = ctx.path("garbage.pem")
    with open(garbage, "w") as f:
        f.write("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    token_own = {"service": SERVICE, "issuer": ISSUER, "signingkeys": [key]}
    token_ext = {"realm": "http://127.0.0.1:9/token", "service": SERVICE, "issuer": ISSUER, "rootcertbundle": cert}
    cases = [
        ("off", {}, "auth off,"),
        ("htpasswd", {"users": USERS}, "auth htpasswd,"),
        ("own", {"extra": {"auth": {"token": token_own, "access": RULES, "groups": {"team-a": ["alice"]}}}},
         "auth token (wharf issues them at /auth/token, service %s), 2 access rule(s)," % SERVICE),
        ("ext", {"extra": {"auth": {"token": token_ext}}}, "auth token (external realm http://127.0.0.1:9/token"),
    ]
    for name, kw, expected in cases:
        reg = ctx.registry(name="cc-" + name, **kw)
        res = run([SERVER_BIN, "check-config", reg.config_path])
        check(expected in res.stdout, "check-config of %s prints %r: %s" % (name, expected, res.stdout.strip()))
    bad = [
        ("badsign", {"service": SERVICE, "issuer": ISSUER, "signingkeys": [key, garbage]}, "auth.token.signingkeys[1]: "),
        ("nosign", {"service": SERVICE, "issuer": ISSUER, "signingkeys": [ctx.path("missing.pem")]},
         "auth.token.signingkeys[0]: "),
        ("badcerts", dict(token_ext, rootcertbundle=garbage), "auth.token.rootcertbundle: "),
    ]
    for name, token, expected in bad:
        reg = ctx.registry(name="cc-" + name, extra={"auth": {"token": token}})
        res = run([SERVER_BIN, "check-config", reg.config_path], check_rc=False)
        check_eq(res.returncode, 1, "check-config exit code with %s" % name)
        check(expected in res.stderr, "check-config names %r: %s" % (expected, res.stderr.strip()))


def test_mirror_catalog_ns_is_filtered_by_pull_permission(ctx):
    """GET /v2/_catalog?ns=docker.io lists only the mirrored repositories the caller may pull (by the name a
    ?ns= pull uses, or by the explicit docker.io/ name)."""
    htpasswd = ctx.path("ns.htpasswd")
    htpasswd_file(htpasswd, USERS)
    rules = [{"match": "library/pub", "anonymous": True, "users": ["alice"], "actions": ["pull"]},
             {"match": "*", "users": ["alice"], "actions": ["pull"]},
             {"match": "docker.io/library/explicit", "users": ["bob"], "actions": ["pull"]}]
    extra = {"auth": {"htpasswd": {"realm": "wharf-e2e", "path": htpasswd}, "access": rules}}
    with Mirror(ctx, extra=extra) as m:
        img = ctx.image(layers=1, size=4096, seed=75)
        names = ["library/explicit", "library/priv", "library/pub"]
        alice = {"Authorization": basic_auth("alice", "alice-pass"), "Accept": "application/vnd.oci.image.manifest.v1+json"}
        for repo in names:
            m.hub.push(img, repo, "v1")
            check_eq(request("GET", m.wharf.url + "/v2/%s/manifests/v1" % repo, alice).status, 200, "alice pulls " + repo)

        def catalog(who):
            hdrs = {"Authorization": basic_auth(who, USERS[who])} if who else {}
            r = request("GET", m.wharf.url + "/v2/_catalog?ns=docker.io", hdrs)
            check_eq(r.status, 200, "catalog?ns=docker.io for %s (%r)" % (who or "anonymous", r))
            return sorted(json.loads(r.body)["repositories"])
        wait_for(lambda: catalog("alice") == names, "the three pulls to be cached", tries=100, interval=0.1)
        check_eq(catalog(""), ["library/pub"], "anonymous caller's ?ns= catalog")
        check_eq(catalog("bob"), ["library/explicit", "library/pub"], "bob's ?ns= catalog")
        check_eq(catalog("carol"), ["library/pub"], "carol's ?ns= catalog")


def jwk_of(ctx, key, kid):
    """The public JWK (P-256) of an openssl EC key file, read from `openssl ec -text`."""
    text = run(["openssl", "ec", "-in", key, "-text", "-noout"]).stdout
    m = re.search(r"pub:\s*\n((?:\s+[0-9a-f:]+\n)+)", text)
    check(m, "openssl ec -text printed no public key")
    pub = bytes.fromhex(re.sub(r"[\s:]", "", m.group(1)))
    check(len(pub) == 65 and pub[0] == 4, "unexpected EC public key encoding")
    return {"kty": "EC", "crv": "P-256", "use": "sig", "kid": kid, "x": b64url(pub[1:33]), "y": b64url(pub[33:])}


def test_external_token_server_keys_from_jwks(ctx):
    """auth.token.jwks: tokens signed by a key of the JWKS file (chosen by kid) are accepted; a token whose
    kid names a key of the set that did not sign it, or signed by a key outside it, is refused with 401."""
    key1, _ = make_key(ctx, "jwks-1")
    key2, _ = make_key(ctx, "jwks-2")
    outsider, _ = make_key(ctx, "jwks-outsider")
    jwks = ctx.path("keys.jwks")
    with open(jwks, "w") as f:
        json.dump({"keys": [jwk_of(ctx, key1, "k1"), jwk_of(ctx, key2, "k2")]}, f)
    reg = ctx.registry(name="jwks", extra={"auth": {"token": {
        "realm": "http://127.0.0.1:9/token", "service": SERVICE, "issuer": ISSUER, "jwks": jwks}}}).start()
    url = reg.url + "/v2/team-a/app/tags/list"
    grant = [{"type": "repository", "name": "team-a/app", "actions": ["pull"]}]

    def status(key, kid):
        token = sign_jwt(key, claims("alice", grant), {"alg": "ES256", "typ": "JWT", "kid": kid})
        return request("GET", url, bearer(token)).status

    check_eq(status(key2, "k2"), 404, "a token signed by k2 (authorized: the repository is unknown)")
    check_eq(status(key1, "k1"), 404, "a token signed by k1")
    check_eq(status(key1, "k2"), 401, "a token signed by k1 that names k2")
    check_eq(status(outsider, "k1"), 401, "a token signed by a key outside the set")
    check_eq(request("GET", url).status, 401, "no token")

    bad = ctx.path("bad.jwks")
    with open(bad, "w") as f:
        f.write('{"keys": [{"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}]}')
    broken = ctx.registry(name="jwks-bad", extra={"auth": {"token": {
        "realm": "http://127.0.0.1:9/token", "service": SERVICE, "issuer": ISSUER, "jwks": bad}}})
    res = run([SERVER_BIN, "serve", broken.config_path], check_rc=False, timeout=30)
    check(res.returncode != 0 and "auth.token.jwks" in res.stdout + res.stderr,
          "wharf serve with a broken JWKS file: rc %s, %s" % (res.returncode, tail(res.stdout + res.stderr, 2)))


def test_external_token_server_x5c_chain_to_rootcertbundle(ctx):
    """A token whose x5c header carries a certificate issued by a rootcertbundle CA is verified with that
    certificate's key; a chain to another CA, or a signature by another key, is refused with 401."""
    ca_key, ca_cert = make_key(ctx, "x5c-ca")
    leaf_key = ctx.path("x5c-leaf.key")
    run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", leaf_key])
    run(["openssl", "req", "-new", "-key", leaf_key, "-subj", "/CN=x5c-leaf", "-out", ctx.path("leaf.csr")])
    run(["openssl", "x509", "-req", "-in", ctx.path("leaf.csr"), "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial",
         "-days", "2", "-out", ctx.path("x5c-leaf.crt")])
    stranger_key, stranger_cert = make_key(ctx, "x5c-stranger")

    def der_b64(cert):  # a PEM body is the DER's base64
        with open(cert) as f:
            return "".join(line.strip() for line in f if line.strip() and not line.startswith("-----"))

    reg = ctx.registry(name="x5c", extra={"auth": {"token": {
        "realm": "http://127.0.0.1:9/token", "service": SERVICE, "issuer": ISSUER, "rootcertbundle": ca_cert}}}).start()
    url = reg.url + "/v2/team-a/app/tags/list"
    grant = [{"type": "repository", "name": "team-a/app", "actions": ["pull"]}]
    leaf, stranger = der_b64(ctx.path("x5c-leaf.crt")), der_b64(stranger_cert)

    def status(key, x5c):
        header = {"alg": "ES256", "typ": "JWT"}
        if x5c:
            header["x5c"] = x5c
        return request("GET", url, bearer(sign_jwt(key, claims("alice", grant), header))).status

    check_eq(status(leaf_key, [leaf]), 404, "a token with an x5c chain to the CA (authorized: unknown repository)")
    check_eq(status(leaf_key, None), 401, "the same key without x5c (not in rootcertbundle)")
    check_eq(status(stranger_key, [stranger]), 401, "a self-signed x5c outside rootcertbundle")
    check_eq(status(stranger_key, [leaf]), 401, "the CA's certificate in x5c, signed by another key")
    check_eq(status(leaf_key, ["not base64!"]), 401, "a malformed x5c")
