"""TLS: a self-signed certificate for 127.0.0.1 in http.tls; clients that trust it get through,
clients that do not (or that speak plain HTTP) do not."""
import json
import os
import re
import shutil

from harness import blob_path, check, check_eq, files_equal, run
from http_util import request


def make_cert(ctx):
    """Self-signed certificate + key for IP 127.0.0.1; returns (cert, key, cert_dir with ca.crt)."""
    cert, key = ctx.path("server.crt"), ctx.path("server.key")
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", key, "-out", cert], timeout=60)
    cert_dir = ctx.mkdir("certs.d")
    shutil.copy(cert, os.path.join(cert_dir, "ca.crt"))
    return cert, key, cert_dir


def test_tls_curl_and_plain_http(ctx):
    cert, key, _ = make_cert(ctx)
    reg = ctx.registry(tls=(cert, key)).start()
    check(reg.url.startswith("https://"), "registry URL is not https: " + reg.url)

    ok = run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "20", "--cacert", cert,
              reg.url + "/v2/"], check_rc=False)
    check_eq((ok.returncode, ok.stdout), (0, "200"), "curl --cacert https://.../v2/ (exit code, status)")

    untrusted = run(["curl", "-sS", "-o", "/dev/null", "--max-time", "20", reg.url + "/v2/"], check_rc=False)
    check_eq(untrusted.returncode, 60, "curl without the CA (60 = certificate not trusted)")

    try:
        plain = request("GET", "http://%s/v2/" % reg.host, timeout=10)
        outcome = "HTTP %d" % plain.status
        refused = plain.status >= 400
    except Exception as exc:  # noqa: BLE001 - a reset or a garbled reply are both refusals
        outcome, refused = type(exc).__name__, True
    check(refused, "plain HTTP to the TLS port was served: " + outcome)

    # TLS 1.2 and newer only.
    old_tls = run(["curl", "-sS", "-o", "/dev/null", "--max-time", "20", "--cacert", cert, "--tlsv1.0",
                   "--tls-max", "1.1", reg.url + "/v2/"], check_rc=False)
    check(old_tls.returncode != 0, "a TLS 1.1 handshake was accepted")
    tls12 = run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "20", "--cacert", cert,
                 "--tlsv1.2", "--tls-max", "1.2", reg.url + "/v2/"], check_rc=False)
    check_eq((tls12.returncode, tls12.stdout), (0, "200"), "TLS 1.2 exactly (exit code, status)")


def test_tls_skopeo_push_pull(ctx):
    cert, key, cert_dir = make_cert(ctx)
    reg = ctx.registry(tls=(cert, key), users={"tls-user": "tls-pass"}).start()
    img = ctx.image(layers=2, size=300 << 10, seed=21)
    dest = "docker://%s/e2e/tls:v1" % reg.host

    refused = ctx.skopeo("copy", "--dest-creds", reg.creds, "oci:" + img["dir"], dest, check_rc=False)
    check(refused.returncode != 0, "skopeo push succeeded without trusting the self-signed certificate")
    check(re.search(r"x509|certificate", refused.stderr, re.I),
          "untrusted push failed, but not for the certificate: " + refused.stderr.strip()[-200:])

    ctx.skopeo("copy", "--dest-creds", reg.creds, "--dest-cert-dir", cert_dir, "oci:" + img["dir"], dest)
    out = ctx.path("pulled")
    ctx.skopeo("copy", "--src-creds", reg.creds, "--src-cert-dir", cert_dir, dest, "oci:" + out)
    index = json.load(open(os.path.join(out, "index.json")))
    check_eq(index["manifests"][0]["digest"], img["manifest_digest"], "manifest digest pulled over TLS")
    for digest in img["layers"] + [img["config_digest"]]:
        check(files_equal(blob_path(img["dir"], digest), blob_path(out, digest)), "blob %s differs" % digest)

    insecure = ctx.path("pulled-insecure")
    ctx.skopeo("copy", "--src-creds", reg.creds, "--src-tls-verify=false", dest, "oci:" + insecure)
    check(os.path.exists(blob_path(insecure, img["manifest_digest"])), "pull with --src-tls-verify=false")


def test_sighup_reloads_the_certificate_without_dropping_connections(ctx):
    import http.client
    import signal
    import ssl
    import time
    from harness import SERVER_KIND, Skip
    if SERVER_KIND != "wharf":
        raise Skip("wharf-only: SIGHUP reloads TLS files")
    cert, key, _ = make_cert(ctx)
    reg = ctx.registry(tls=(cert, key)).start()

    def fingerprint(conn):
        return conn.sock.getpeercert(binary_form=True)

    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    old_conn = http.client.HTTPSConnection("127.0.0.1", reg.port, timeout=10, context=unverified)
    old_conn.request("GET", "/v2/")
    first = old_conn.getresponse()
    first.read()
    check_eq(first.status, 200, "first request")
    old_cert = fingerprint(old_conn)

    # New certificate and key in place of the old files, then SIGHUP.
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
         "-subj", "/CN=renewed", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", key + ".new", "-out", cert + ".new"], timeout=60)
    os.replace(key + ".new", key)
    os.replace(cert + ".new", cert)
    reg.proc.send_signal(signal.SIGHUP)
    new_cert = None
    for _ in range(50):
        conn = http.client.HTTPSConnection("127.0.0.1", reg.port, timeout=10, context=unverified)
        conn.request("GET", "/v2/")
        conn.getresponse().read()
        new_cert = fingerprint(conn)
        conn.close()
        if new_cert != old_cert:
            break
        time.sleep(0.1)
    check(new_cert != old_cert, "new connections still get the old certificate after SIGHUP")
    # The connection opened before the reload keeps working.
    old_conn.request("GET", "/v2/")
    check_eq(old_conn.getresponse().status, 200, "request on the connection opened before the reload")
    old_conn.close()
