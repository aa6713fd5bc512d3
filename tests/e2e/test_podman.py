"""podman (rootful, vfs storage under the test directory) pulls an image pushed with skopeo."""
import json

from harness import check, check_eq, run


def test_podman_pull(ctx):
    reg = ctx.registry(users={"pod": "pod-pass"}).start()
    img = ctx.image(layers=2, size=256 << 10, seed=51)
    ref = "%s/e2e/podman:v1" % reg.host
    ctx.skopeo("copy", "--dest-creds", reg.creds, "--dest-tls-verify=false", "oci:" + img["dir"], "docker://" + ref)

    base = ctx.mkdir("podman")
    auth = ctx.path("podman", "auth.json")
    with open(auth, "w") as f:
        f.write("{}")
    # podman refuses a runroot path of 50 characters or more, hence short_dir.
    podman = ["podman", "--root", base + "/root", "--runroot", ctx.short_dir("wp-"),
              "--tmpdir", ctx.mkdir("podman", "tmp"), "--storage-driver", "vfs", "--events-backend", "none",
              "--cgroup-manager", "cgroupfs"]
    env = {"REGISTRY_AUTH_FILE": auth}

    denied = run(podman + ["pull", "--tls-verify=false", "--creds", "pod:wrong", ref], env=env, check_rc=False,
                 timeout=120)
    check(denied.returncode != 0, "podman pull with a wrong password succeeded")

    run(podman + ["pull", "--tls-verify=false", "--creds", reg.creds, ref], env=env, timeout=300)
    info = json.loads(run(podman + ["image", "inspect", ref], env=env).stdout)
    check(info, "podman image inspect returned nothing")
    check_eq(info[0].get("Digest"), img["manifest_digest"], "podman's manifest digest")
    check_eq("sha256:" + info[0].get("Id", ""), img["config_digest"], "podman's image ID")
