"""wharf as it is shipped: the container image built without a base image (deploy/image), the compose
file (deploy/compose), the Debian package (debian/) and the Kubernetes manifests (deploy/kubernetes).
Each test runs the real tool (dockerd, docker-compose, dpkg-buildpackage + dpkg in a chroot, kubectl
kustomize). They run once per CI run, in the release stage (skipped under E2E_SANITIZED=1)."""
import json
import os
import shutil

from harness import (REPO_ROOT, SERVER_BIN, check, check_eq, free_port, run, stop_process, tail, timeout, unmount_all,
                     wait_for, wharf_only)
from http_util import request
from packaging_util import (BUILD_SCRIPT, DEBIAN_ROOT, PURGE_ALLOWED, SIZE_LIMIT, build_layout, container_uid, kustomize,
                            load_image, only, pull_fresh, push_pull, skip_unless_packaging, source_copy, tree,
                            wait_healthy)
from registry import htpasswd_file
from test_docker import Dockerd


@timeout(600)
def test_container_image(ctx):
    skip_unless_packaging()
    layout, tag, size = build_layout(ctx, ctx.path("oci"))
    check(size < SIZE_LIMIT, "image is %d bytes uncompressed, over %d" % (size, SIZE_LIMIT))
    again, _, _ = build_layout(ctx, ctx.path("oci-again"))
    with open(os.path.join(layout, "index.json")) as a, open(os.path.join(again, "index.json")) as b:
        check_eq(a.read(), b.read(), "index.json of two builds from the same binary (reproducible)")

    # The same files as a directory (what the Dockerfile copies into scratch): wharf runs from them
    # alone, and nothing else executable is there (no shell).
    rootfs = ctx.path("rootfs")
    run([BUILD_SCRIPT, "--binary", SERVER_BIN, "--rootfs", rootfs], timeout=300)
    check(run(["chroot", rootfs, "/usr/bin/wharf", "--version"]).stdout.startswith("wharf "),
          "wharf --version from the image's files alone")
    files = sorted(p for p in tree(rootfs) if not p.endswith("/") and not os.path.islink(os.path.join(rootfs, p)))
    extra = [p for p in files if not (p == "usr/bin/wharf" or p.startswith("etc/") or ".so" in os.path.basename(p))]
    check_eq(extra, [], "files in the image besides wharf, its libraries and /etc")
    check(not os.path.lexists(os.path.join(rootfs, "usr/bin/sh")), "the image has a shell")

    dk = Dockerd(ctx).start()
    image = load_image(ctx, dk, layout, tag, "wharf:test")
    cfg = json.loads(dk.docker("image", "inspect", "--format", "{{json .Config}}", image).stdout)
    check_eq(cfg.get("User"), "65532:65532", "image user")
    check_eq(sorted(cfg.get("ExposedPorts") or {}), ["5000/tcp"], "exposed ports")
    check_eq(sorted(cfg.get("Volumes") or {}), ["/var/lib/registry"], "volumes")
    check_eq((cfg.get("Healthcheck") or {}).get("Test", [])[:3], ["CMD", "/usr/bin/wharf", "healthcheck"],
             "HEALTHCHECK command")
    labels = cfg.get("Labels") or {}
    for key in ("version", "source", "licenses"):
        check(labels.get("org.opencontainers.image." + key), "label org.opencontainers.image.%s missing" % key)

    port = free_port()
    auth = ctx.mkdir("auth")
    htpasswd_file(os.path.join(auth, "htpasswd"), {"ci-user": "ci-pass"})
    dk.docker("volume", "create", "wharf-data")
    # --read-only: wharf writes only to its volume (the Kubernetes manifests set readOnlyRootFilesystem).
    run_args = ["run", "-d", "--name", "wharf", "--network", "host", "--read-only", "-v", "wharf-data:/var/lib/registry",
                "-v", auth + ":/auth:ro", "-e", "REGISTRY_HTTP_ADDR=127.0.0.1:%d" % port,
                "-e", "REGISTRY_AUTH_HTPASSWD_REALM=wharf", "-e", "REGISTRY_AUTH_HTPASSWD_PATH=/auth/htpasswd", image]
    ctx.cleanups.append(lambda: dk.proc and dk.docker("rm", "-f", "wharf", check_rc=False))
    dk.docker(*run_args)
    wait_healthy(dk, "wharf")
    uid = container_uid(dk, "wharf")
    check(uid != 0, "the container's wharf runs as root")
    check_eq(uid, 65532, "UID of the container's wharf")

    host = "127.0.0.1:%d" % port
    denied = dk.docker("pull", host + "/none/here:v1", check_rc=False)
    check(denied.returncode != 0, "a pull without login succeeded")
    dk.docker("login", host, "-u", "ci-user", "--password-stdin", input="ci-pass\n")
    img = ctx.image(layers=2, size=256 << 10, seed=51, fmt="docker")
    ref = host + "/ci/app:v1"
    push_pull(ctx, dk, ref, img)

    # The build script pushes the image it builds into the running wharf; docker pulls it back: the
    # same image ID (config digest) as the layout loaded above.
    loaded_id = dk.docker("image", "inspect", "--format", "{{.Id}}", image).stdout.strip()
    run([BUILD_SCRIPT, "--binary", SERVER_BIN, "--out", ctx.path("oci-push"), "--tag", tag, "--push",
         host + "/wharf/wharf:" + tag, "--dest-creds", "ci-user:ci-pass", "--dest-tls-verify=false"],
        timeout=300, env={"REGISTRY_AUTH_FILE": ctx.path("push-auth.json"), "TMPDIR": ctx.mkdir("push-tmp")})
    dk.docker("pull", host + "/wharf/wharf:" + tag)
    check_eq(dk.docker("image", "inspect", "--format", "{{.Id}}", host + "/wharf/wharf:" + tag).stdout.strip(),
             loaded_id, "image ID of the pushed wharf image vs. the loaded one")

    dk.docker("restart", "-t", "20", "wharf")
    wait_healthy(dk, "wharf")
    pull_fresh(dk, ref, img)  # the pushed image survived the restart, in the named volume


def self_signed(ctx, directory):
    """tls.crt/tls.key for 127.0.0.1 in `directory`; the key readable by the image's non-root user."""
    crt, key = os.path.join(directory, "tls.crt"), os.path.join(directory, "tls.key")
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", crt], timeout=60)
    os.chmod(key, 0o644)
    return crt, key


@timeout(600)
def test_compose(ctx):
    skip_unless_packaging()
    layout, tag, _ = build_layout(ctx, ctx.path("oci"))
    dk = Dockerd(ctx).start()
    image = load_image(ctx, dk, layout, tag, "wharf:compose")

    # The mirror's upstream: a plain wharf on loopback holding library/mirrored:v1.
    upstream = ctx.registry(name="upstream").start()
    mirrored = ctx.image(name="mirrored", layers=1, size=128 << 10, seed=61, fmt="docker")
    ctx.skopeo("copy", "--dest-tls-verify=false", "oci:" + mirrored["dir"],
               "docker://%s/library/mirrored:v1" % upstream.host)

    project = ctx.mkdir("compose")
    for name in ("docker-compose.yml", "docker-compose.override.yml", "docker-compose.host.yml"):
        shutil.copy(os.path.join(REPO_ROOT, "deploy", "compose", name), project)
    htpasswd_file(os.path.join(ctx.mkdir("compose", "auth"), "htpasswd"), {"compose-user": "compose-pass"})
    self_signed(ctx, ctx.mkdir("compose", "certs"))
    reg_port, mirror_port = free_port(), free_port()
    env = dict(dk.env, WHARF_IMAGE=image, REGISTRY_BIND="127.0.0.1",
               REGISTRY_PORT=str(reg_port), MIRROR_PORT=str(mirror_port),
               MIRROR_REMOTEURL="http://" + upstream.host)
    # The test's dockerd has no bridge: the host-network variant, as its header says.
    compose = ["docker-compose", "--project-name", "wharfci", "-f", "docker-compose.yml", "-f",
               "docker-compose.host.yml", "--profile", "mirror"]

    def down():
        if dk.proc:
            run(compose + ["down", "-v", "--timeout", "20"], env=env, cwd=project, check_rc=False, timeout=180)
    ctx.cleanups.append(down)
    run(compose + ["up", "-d"], env=env, cwd=project, timeout=300)
    ids = {}
    for service in ("registry", "mirror"):
        ids[service] = run(compose + ["ps", "-q", service], env=env, cwd=project).stdout.strip()
        check(ids[service], "docker-compose ps shows no %s container" % service)
        wait_healthy(dk, ids[service])

    host = "127.0.0.1:%d" % reg_port  # TLS + basic auth (docker skips verification for 127.0.0.0/8)
    check(dk.docker("pull", host + "/none/here:v1", check_rc=False).returncode != 0, "pull without login worked")
    dk.docker("login", host, "-u", "compose-user", "--password-stdin", input="compose-pass\n")
    img = ctx.image(layers=2, size=256 << 10, seed=62, fmt="docker")
    push_pull(ctx, dk, host + "/ci/app:v1", img)

    pull_fresh(dk, "127.0.0.1:%d/library/mirrored:v1" % mirror_port, mirrored)  # through the mirror

    res = run(compose + ["down", "-v", "--timeout", "20"], env=env, cwd=project, timeout=180)
    left = dk.docker("ps", "-aq", "--filter", "label=com.docker.compose.project=wharfci").stdout.split()
    check_eq(left, [], "containers left after docker-compose down (%s)" % tail(res.stderr, 2))
    volumes = dk.docker("volume", "ls", "-q", "--filter", "label=com.docker.compose.project=wharfci").stdout.split()
    check_eq(volumes, [], "volumes left after docker-compose down -v")


@timeout(2400)
def test_debian_package(ctx):
    skip_unless_packaging()
    check(os.path.exists(os.path.join(DEBIAN_ROOT, ".complete")),
          "no Debian 12 root at %s: tests/run's install phase makes it (tests/e2e/make-debian-root)" % DEBIAN_ROOT)
    src = source_copy(ctx.mkdir("src", "wharf"))
    run(["nice", "dpkg-buildpackage", "-b", "-us", "-uc"], cwd=src, timeout=2000,
        env={"DEB_BUILD_OPTIONS": "nocheck noautodbgsym parallel=2"})
    debs = [f for f in os.listdir(ctx.path("src")) if f.startswith("wharf_") and f.endswith(".deb")]
    check_eq(len(debs), 1, "wharf .deb files built (%s)" % debs)
    deb = ctx.path("src", debs[0])
    lint = run(["lintian", "--fail-on", "error", "--no-tag-display-limit", deb], check_rc=False, timeout=600)
    errors = [l for l in lint.stdout.splitlines() if l.startswith("E:")]
    check(lint.returncode == 0 and not errors, "lintian errors: %s" % (" | ".join(errors) or tail(lint.stderr, 3)))

    root = ctx.path("root")
    run(["cp", "-a", DEBIAN_ROOT, root], timeout=300)
    ctx.final_cleanups.append(lambda: unmount_all(root))
    before = tree(root)
    shutil.copy(deb, os.path.join(root, "tmp", "wharf.deb"))
    run(["mount", "-t", "proc", "proc", os.path.join(root, "proc")])
    inside = lambda *cmd, **kw: run(["chroot", root] + list(cmd), **kw)  # noqa: E731
    inside("dpkg", "-i", "/tmp/wharf.deb", timeout=300)

    check(os.access(os.path.join(root, "usr/bin/wharf"), os.X_OK), "/usr/bin/wharf missing")
    check(inside("/usr/bin/wharf", "--version").stdout.startswith("wharf "), "wharf --version in the root")
    conffiles = inside("dpkg-query", "-W", "-f=${Conffiles}", "wharf").stdout
    check("/etc/wharf/config.yml" in conffiles, "/etc/wharf/config.yml is not a conffile: %r" % conffiles)
    with open(os.path.join(root, "etc/wharf/config.yml")) as f:
        check("rootdirectory: /var/lib/wharf" in f.read(), "the conffile's root is not /var/lib/wharf")
    user = inside("getent", "passwd", "wharf", check_rc=False).stdout.split(":")
    check(len(user) == 7 and int(user[2]) < 1000 and user[5] == "/var/lib/wharf",
          "wharf system user: %r" % ":".join(user))
    units = ["wharf.service", "wharf-gc.service", "wharf-gc.timer"]
    for unit in units:
        check(os.path.exists(os.path.join(root, "lib/systemd/system", unit)), "unit %s not installed" % unit)
    with open(os.path.join(root, "lib/systemd/system/wharf.service")) as f:
        text = f.read()
    check("ExecStart=/usr/bin/wharf serve /etc/wharf/config.yml" in text and "User=wharf" in text
          and "DynamicUser" not in text, "wharf.service does not run /usr/bin/wharf as user wharf")
    for wants, unit in (("multi-user.target.wants", "wharf.service"), ("timers.target.wants", "wharf-gc.timer")):
        check(os.path.lexists(os.path.join(root, "etc/systemd/system", wants, unit)), "%s is not enabled" % unit)
    verify = inside("systemd-analyze", "verify", "--man=no", *["/lib/systemd/system/" + u for u in units],
                    check_rc=False, timeout=120)
    check_eq((verify.returncode, verify.stderr.strip()), (0, ""), "systemd-analyze verify in the root")
    check(os.path.exists(os.path.join(root, "usr/share/doc/wharf/copyright")), "no /usr/share/doc/wharf/copyright")

    # The installed layout serves, as the unit runs it: user wharf, the conffile, data in /var/lib/wharf.
    port = free_port()
    proc = ctx.spawn(["chroot", "--userspec=wharf:wharf", root, "/usr/bin/wharf", "serve", "/etc/wharf/config.yml"],
                     "deb-wharf", env={"REGISTRY_HTTP_ADDR": "127.0.0.1:%d" % port})
    url = "http://127.0.0.1:%d" % port

    def serving():
        check(proc.poll() is None, "wharf from the .deb exited with %s" % proc.returncode)
        return request("GET", url + "/v2/", timeout=2).status == 200
    wait_for(serving, "wharf from the .deb to answer GET /v2/", tries=100, interval=0.2)
    check_eq(request("GET", url + "/debug/health", timeout=10).status, 200, "/debug/health of the installed wharf")
    check(os.listdir(os.path.join(root, "var/lib/wharf")), "wharf wrote nothing to /var/lib/wharf")
    check_eq(stop_process(proc), 0, "exit code of the installed wharf after SIGTERM")

    run(["umount", os.path.join(root, "proc")])
    inside("dpkg", "--purge", "wharf", timeout=300)
    check(inside("dpkg-query", "-W", "wharf", check_rc=False).returncode != 0
          or "not-installed" in inside("dpkg-query", "-W", "-f=${Status}", "wharf", check_rc=False).stdout,
          "wharf still known to dpkg after purge")
    left = sorted(p for p in tree(root) - before if not p.startswith(PURGE_ALLOWED))
    check_eq(left, [], "files left after dpkg --purge")
    check(inside("getent", "passwd", "wharf", check_rc=False).returncode == 0, "purge removed the wharf user")


def test_kubernetes_manifests(ctx):
    skip_unless_packaging()
    kube = os.path.join(REPO_ROOT, "deploy", "kubernetes")
    base = kustomize(os.path.join(kube, "base"))
    check_eq(sorted(k for k, _ in base), ["ConfigMap", "Service", "StatefulSet"], "kinds in the base")
    for (kind, name), obj in base.items():
        check_eq(obj["metadata"].get("namespace"), "wharf", "namespace of %s %s" % (kind, name))
    sts, svc, cm = only(base, "StatefulSet"), only(base, "Service"), only(base, "ConfigMap")
    with open(os.path.join(REPO_ROOT, "deploy", "image", "config.yml")) as f:
        check_eq(cm["data"]["config.yml"], f.read(), "the ConfigMap's config.yml vs. the image's")
    pod = sts["spec"]["template"]["spec"]
    check_eq(sts["spec"]["replicas"], 1, "StatefulSet replicas (single-node mode)")
    claims = {c["metadata"]["name"]: c for c in sts["spec"]["volumeClaimTemplates"]}
    check("data" in claims, "no PVC template named data")
    (container,) = pod["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    check_eq(mounts.get("data"), "/var/lib/registry", "PVC mount path")
    check_eq(mounts.get("config"), "/etc/docker/registry", "config mount path")
    volumes = {v["name"]: v for v in pod["volumes"]}
    check_eq(volumes["config"]["configMap"]["name"], cm["metadata"]["name"], "config volume → generated ConfigMap")
    check_eq(volumes["htpasswd"]["secret"]["secretName"], "wharf-htpasswd", "htpasswd Secret")
    env = {e["name"]: e["value"] for e in container["env"]}
    check_eq(env.get("REGISTRY_AUTH_HTPASSWD_PATH"), mounts.get("htpasswd", "") + "/htpasswd", "htpasswd path")
    check_eq(pod["securityContext"].get("runAsUser"), 65532, "pod UID (the image's user)")
    check_eq(container["readinessProbe"]["httpGet"]["path"], "/debug/health", "readiness probe path")
    check_eq([p["containerPort"] for p in container["ports"]], [5000], "container port")
    check_eq(svc["spec"]["selector"], sts["spec"]["selector"]["matchLabels"], "Service selector vs. pods")

    tls = kustomize(os.path.join(kube, "overlays", "tls"))
    (container,) = only(tls, "StatefulSet")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    check_eq(env.get("REGISTRY_HTTP_TLS_CERTIFICATE"), "/certs/tls.crt", "tls overlay: certificate")
    check_eq(container["livenessProbe"]["httpGet"]["scheme"], "HTTPS", "tls overlay: probe scheme")
    volumes = {v["name"]: v for v in only(tls, "StatefulSet")["spec"]["template"]["spec"]["volumes"]}
    check_eq(volumes["tls"]["secret"]["secretName"], "wharf-tls", "tls overlay: Secret")
    check("REGISTRY_AUTH_HTPASSWD_PATH" in env, "tls overlay lost the htpasswd setting")

    mirror = kustomize(os.path.join(kube, "overlays", "mirror"))
    pod = only(mirror, "StatefulSet")["spec"]["template"]["spec"]
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    check_eq(env.get("REGISTRY_PROXY_REMOTEURL"), "https://registry-1.docker.io", "mirror overlay: upstream")
    check_eq(env.get("REGISTRY_HTTP_ADDR"), ":5000", "mirror overlay kept the listen address")
    check("REGISTRY_AUTH_HTPASSWD_PATH" not in env and "htpasswd" not in {v["name"] for v in pod["volumes"]},
          "mirror overlay still requires the htpasswd Secret")
    svc = only(mirror, "Service")
    node_port = svc["spec"]["ports"][0]["nodePort"]
    check_eq(svc["spec"]["type"], "NodePort", "mirror overlay: Service type")
    hosts = [o for (k, n), o in mirror.items() if k == "ConfigMap" and n.startswith("containerd-hosts-docker-io")]
    check_eq(len(hosts), 1, "containerd hosts.toml ConfigMap")
    toml = hosts[0]["data"]["hosts.toml"]
    check('server = "https://registry-1.docker.io"' in toml, "hosts.toml names no docker.io server")
    check('[host."http://127.0.0.1:%d"]' % node_port in toml, "hosts.toml does not point at the NodePort")


@wharf_only("wharf healthcheck, the image's HEALTHCHECK command")
def test_healthcheck_verb(ctx):
    reg = ctx.registry().start()
    ok = run([SERVER_BIN, "healthcheck", reg.config_path], check_rc=False, timeout=60)
    check_eq(ok.returncode, 0, "wharf healthcheck against a serving wharf (%s)" % tail(ok.stdout + ok.stderr, 2))
    check(ok.stdout.startswith("healthy: %s/debug/health" % reg.url), "healthcheck output: %r" % ok.stdout)
    reg.stop()
    down = run([SERVER_BIN, "healthcheck", reg.config_path], check_rc=False, timeout=60)
    check_eq(down.returncode, 1, "wharf healthcheck with nothing listening")
    check(down.stdout.startswith("unhealthy:"), "healthcheck output when down: %r" % down.stdout)
    usage = run([SERVER_BIN, "healthcheck", reg.config_path, "a", "b"], check_rc=False, timeout=60)
    check_eq(usage.returncode, 2, "wharf healthcheck with too many arguments")
