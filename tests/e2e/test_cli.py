"""The wharf binary's command line: verbs, help, version and configuration errors."""
from harness import SERVER_BIN, check, check_eq, run, wharf_only


@wharf_only("wharf's own CLI")
def test_version_and_help(ctx):
    res = run([SERVER_BIN, "--version"])
    check(res.stdout.startswith("wharf "), "--version prints 'wharf <version>': %r" % res.stdout)
    res = run([SERVER_BIN, "--help"])
    for verb in ("serve", "check-config"):
        check(verb in res.stdout, "--help lists %s" % verb)
    res = run([SERVER_BIN, "no-such-verb"], check_rc=False)
    check(res.returncode != 0, "an unknown verb exits non-zero")


@wharf_only("wharf's own CLI")
def test_check_config_names_the_bad_key(ctx):
    good = ctx.path("good.yml")
    with open(good, "w") as f:
        f.write("version: 0.1\nhttp:\n  addr: 127.0.0.1:5999\n  bogus: 1\nstorage:\n  filesystem:\n"
                "    rootdirectory: %s\n" % ctx.path("root"))
    res = run([SERVER_BIN, "check-config", good])
    check("http.bogus" in res.stderr, "an unknown key is a warning naming it: %r" % res.stderr)

    bad = ctx.path("bad.yml")
    with open(bad, "w") as f:
        f.write("version: 0.1\nhttp:\n  addr: 127.0.0.1:notaport\n")
    res = run([SERVER_BIN, "check-config", bad], check_rc=False)
    check_eq(res.returncode, 1, "exit code for an invalid http.addr")
    check("http.addr" in res.stderr, "the error names http.addr: %r" % res.stderr)

    # The environment override is validated the same way, and named.
    res = run([SERVER_BIN, "check-config", good], check_rc=False,
              env={"REGISTRY_STORAGE_DELETE_ENABLED": "maybe"})
    check_eq(res.returncode, 1, "exit code for REGISTRY_STORAGE_DELETE_ENABLED=maybe")
    check("storage.delete.enabled" in res.stderr, "the error names the key: %r" % res.stderr)

    res = run([SERVER_BIN, "serve", bad], check_rc=False, timeout=20)
    check_eq(res.returncode, 1, "serve refuses an invalid config")


@wharf_only("wharf's own CLI")
def test_check_config_checks_what_serve_checks(ctx):
    """check-config runs serve's preflight: a config it accepts must not stop serve for a missing file."""
    def config(name, root, extra_http="", extra=""):
        path = ctx.path(name + ".yml")
        with open(path, "w") as f:
            f.write("version: 0.1\nhttp:\n  addr: 127.0.0.1:5990\n%sstorage:\n  filesystem:\n"
                    "    rootdirectory: %s\n%s" % (extra_http, root, extra))
        return path

    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=a", "-days", "1",
         "-keyout", ctx.path("a.key"), "-out", ctx.path("a.crt")])
    run(["openssl", "genrsa", "-out", ctx.path("b.key"), "2048"])
    with open(ctx.path("plainfile"), "w") as f:
        f.write("x")
    cases = [
        ("htpasswd", config("htpasswd", ctx.path("r1"), extra="auth:\n  htpasswd:\n    realm: r\n    path: %s\n"
                            % ctx.path("missing.htpasswd")), "auth.htpasswd.path"),
        ("tls", config("tls", ctx.path("r2"), extra_http="  tls:\n    certificate: %s\n    key: %s\n"
                       % (ctx.path("a.crt"), ctx.path("b.key"))), "http.tls.key"),
        ("root", config("root", ctx.path("plainfile") + "/data"), "storage.filesystem.rootdirectory"),
    ]
    for name, cfg, key in cases:
        res = run([SERVER_BIN, "check-config", cfg], check_rc=False)
        check_eq(res.returncode, 1, "check-config exit code with a bad %s" % name)
        check(key in res.stderr, "check-config names %s: %r" % (key, res.stderr))
        res = run([SERVER_BIN, "serve", cfg], check_rc=False, timeout=20)
        check_eq(res.returncode, 1, "serve refuses the same %s config" % name)
    # The matching pair passes both.
    good = config("good", ctx.path("r3"), extra_http="  tls:\n    certificate: %s\n    key: %s\n"
                  % (ctx.path("a.crt"), ctx.path("a.key")))
    res = run([SERVER_BIN, "check-config", good], check_rc=False)
    check_eq(res.returncode, 0, "check-config accepts a matching certificate and key (%s)" % res.stderr.strip())


@wharf_only("wharf's own CLI")
def test_help_and_readme_say_the_same_about_garbage_collect(ctx):
    """What garbage-collect removes, with and without --delete-untagged, in the same words in both."""
    import os
    import re
    from harness import REPO_ROOT
    help_text = run([SERVER_BIN, "--help"]).stdout
    m = re.search(r"^  wharf garbage-collect CONFIG\.yml \[--dry-run\] \[--delete-untagged\]\n((?: {20,}.*\n)+)",
                  help_text, re.M)
    check(m, "--help describes garbage-collect: %r" % help_text)
    from_help = " ".join(m.group(1).split())
    with open(os.path.join(REPO_ROOT, "README.md")) as f:
        readme = f.read()
    row = re.search(r"^\| `wharf garbage-collect CONFIG\.yml \[--dry-run\] \[--delete-untagged\]` \| (.*) \|$", readme, re.M)
    check(row, "README's verb table has a garbage-collect row")
    check_eq(" ".join(row.group(1).split()), from_help, "README's garbage-collect description")
    check("--delete-untagged" in from_help and "stray" in from_help, "it says what the flag changes: %r" % from_help)
