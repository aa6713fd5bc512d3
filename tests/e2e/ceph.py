"""A throwaway Ceph RADOS Gateway for the S3 tests (Debian's ceph-mon, ceph-osd and radosgw, 16.2).

One monitor, one OSD on memstore (RAM, about 1 GiB at most), no cephx, pool size 1, and radosgw's beast
frontend on 127.0.0.1; everything lives under one temp directory and every daemon runs in the foreground
as our child, stopped by PID. Start it through harness.session("rgw", ceph.start_rgw) so an e2e run
starts it at most once and every S3 test shares it (each test uses its own bucket).
"""
import hashlib
import hmac
import http.client
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
import uuid

import harness

ACCESS_KEY = "WHARFTESTACCESSKEY01"
SECRET_KEY = "wharf/test/secret/key/0123456789abcdefghij"
REGION = "us-east-1"  # RGW's default zonegroup answers to any region name; this one is the SDK default

_CONF = """[global]
fsid = {fsid}
mon host = v2:127.0.0.1:{mon_port}
mon initial members = a
auth cluster required = none
auth service required = none
auth client required = none
auth supported = none
auth allow insecure global id reclaim = true
ms bind msgr1 = false
ms bind ipv6 = false
public addr = 127.0.0.1
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon max pg per osd = 1000
osd crush chooseleaf type = 0
osd objectstore = memstore
memstore device bytes = 1073741824
osd max object name len = 256
osd max object namespace len = 64
run dir = {d}/run
admin socket = {d}/run/$name.asok
pid file = {d}/run/$name.pid
log file = {d}/log/$name.log
log to stderr = false
err to stderr = true
mon data = {d}/mon/$cluster-$id
osd data = {d}/osd/$cluster-$id
keyring = {d}/keyring
mon cluster log file = {d}/log/cluster.log
debug ms = 0

[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:{rgw_port}
ms mon client mode = crc
# No SSE: RGW 16.2 refuses x-amz-server-side-encryption over plain HTTP, and its testing-only
# `rgw crypt default encryption key` encrypts every object, after which CopyObject answers 501.
rgw data = {d}/rgw
rgw enable usage log = false
rgw dns name = localhost
rgw thread pool size = 64
"""


class Rgw:
    """A running cluster: `endpoint` (http://127.0.0.1:PORT), the S3 credentials, and stop()."""

    def __init__(self, directory):
        self.dir = directory
        self.conf = os.path.join(directory, "ceph.conf")
        self.procs = {}  # name -> Popen
        self.endpoint = ""
        self.port = 0
        self.access_key = ACCESS_KEY
        self.secret_key = SECRET_KEY
        self.region = REGION
        self.started_in = 0.0

    def _log(self, name):
        return open(os.path.join(self.dir, "log", name + ".out"), "ab")

    def _spawn(self, name, cmd):
        log = self._log(name)
        try:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=self.dir)
        except FileNotFoundError:
            raise harness.TestFailure("Ceph RGW fixture: %s not found (install ceph-mon, ceph-osd, radosgw)"
                                      % cmd[0]) from None
        finally:
            log.close()
        harness._LIVE[proc.pid] = proc
        self.procs[name] = proc
        return proc

    def _ceph(self, *args, timeout=60):
        """Runs `ceph ARGS` against the cluster; returns stdout; fails with its stderr."""
        res = subprocess.run(["ceph", "-c", self.conf, "--connect-timeout", "20"] + list(args),
                             capture_output=True, text=True, timeout=timeout)
        if res.returncode != 0:
            raise harness.TestFailure("Ceph RGW fixture: ceph %s: %s" % (" ".join(args), res.stderr.strip()[-500:]))
        return res.stdout

    def _run(self, cmd, what, timeout=120):
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=self.dir)
        if res.returncode != 0:
            raise harness.TestFailure("Ceph RGW fixture: %s failed (%d): %s" % (
                what, res.returncode, (res.stderr or res.stdout).strip()[-800:]))
        return res.stdout

    def _check_alive(self):
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise harness.TestFailure("Ceph RGW fixture: %s exited with %s; %s" % (
                    name, proc.returncode, self.log_tail(name)))

    def log_tail(self, name, lines=8):
        out = []
        for fname in (name + ".out", "ceph-%s.log" % name, "client.%s.log" % name):
            path = os.path.join(self.dir, "log", fname)
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    out += f.read().splitlines()[-lines:]
        return " | ".join(out)[-1500:]

    def start(self):
        started = time.monotonic()
        for sub in ("run", "log", "mon/ceph-a", "osd/ceph-0", "rgw"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        mon_port = harness.free_port()
        self.port = harness.free_port()
        self.endpoint = "http://127.0.0.1:%d" % self.port
        fsid = str(uuid.uuid4())
        with open(self.conf, "w") as f:
            f.write(_CONF.format(fsid=fsid, mon_port=mon_port, rgw_port=self.port, d=self.dir))
        # The monitor: a one-member monmap, mkfs, then run it in the foreground.
        monmap = os.path.join(self.dir, "monmap")
        self._run(["monmaptool", "--create", "--fsid", fsid, "--addv", "a", "[v2:127.0.0.1:%d]" % mon_port,
                   monmap], "monmaptool")
        keyring = os.path.join(self.dir, "keyring")
        self._run(["ceph-authtool", "--create-keyring", keyring, "--gen-key", "-n", "mon.",
                   "--cap", "mon", "allow *"], "ceph-authtool")
        self._run(["ceph-mon", "-c", self.conf, "--mkfs", "-i", "a", "--monmap", monmap, "--keyring", keyring],
                  "ceph-mon --mkfs")
        self._spawn("mon.a", ["ceph-mon", "-c", self.conf, "-f", "-i", "a"])
        harness.wait_for(lambda: self._check_alive() or self._ceph("mon", "stat", timeout=30),
                         "the Ceph monitor", tries=60, interval=0.5)
        # The OSD: registered, formatted on memstore, started.
        osd_uuid = str(uuid.uuid4())
        osd_id = self._ceph("osd", "new", osd_uuid).strip()
        if osd_id != "0":
            raise harness.TestFailure("Ceph RGW fixture: expected osd id 0, got %r" % osd_id)
        self._run(["ceph-osd", "-c", self.conf, "-i", "0", "--mkfs", "--osd-uuid", osd_uuid], "ceph-osd --mkfs")
        self._spawn("osd.0", ["ceph-osd", "-c", self.conf, "-f", "-i", "0"])
        harness.wait_for(lambda: self._check_alive() or '"num_up_osds":1' in
                         self._ceph("osd", "stat", "-f", "json", timeout=30).replace(" ", ""),
                         "the OSD to come up", tries=120, interval=0.5)
        # The gateway: it creates its pools on first start; the user is made once it answers.
        self._spawn("rgw.a", ["radosgw", "-c", self.conf, "-f", "-n", "client.rgw.a"])
        harness.wait_for(lambda: self._check_alive() or _http_answers(self.port), "radosgw to listen on %s"
                         % self.endpoint, tries=240, interval=0.25)
        self._run(["radosgw-admin", "-c", self.conf, "-n", "client.rgw.a", "user", "create", "--uid", "wharf",
                   "--display-name", "wharf tests", "--access-key", self.access_key, "--secret-key",
                   self.secret_key], "radosgw-admin user create")
        self.started_in = time.monotonic() - started
        return self

    def stop(self):
        """Stops the gateway, the OSD and the monitor (newest first) by PID, then removes the directory."""
        for name in reversed(list(self.procs)):
            try:
                harness.stop_process(self.procs[name], grace=10)
            except Exception:  # noqa: BLE001 - keep stopping the others
                pass
        self.procs.clear()
        shutil.rmtree(self.dir, ignore_errors=True)

    def stop_gateway(self):
        """Stops only radosgw (to test an unreachable endpoint); restart_gateway() brings it back."""
        proc = self.procs.pop("rgw.a", None)
        if proc is not None:
            harness.stop_process(proc, grace=10)

    def restart_gateway(self):
        if "rgw.a" in self.procs:
            return
        self._spawn("rgw.a", ["radosgw", "-c", self.conf, "-f", "-n", "client.rgw.a"])
        harness.wait_for(lambda: self._check_alive() or _http_answers(self.port), "radosgw to listen again",
                         tries=240, interval=0.25)


def _sign_v4(method, host, path, access_key, secret_key, region, payload=b""):
    """Headers for a path-style S3 request signed with SigV4 (test helper; wharf has its own signer)."""
    now = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    payload_hash = hashlib.sha256(payload).hexdigest()
    headers = {"host": host, "x-amz-content-sha256": payload_hash, "x-amz-date": now}
    signed = ";".join(sorted(headers))
    canonical = "\n".join([method, urllib.parse.quote(path, safe="/~"), "",
                           "".join("%s:%s\n" % (k, headers[k]) for k in sorted(headers)), signed, payload_hash])
    scope = "%s/%s/s3/aws4_request" % (now[:8], region)
    to_sign = "\n".join(["AWS4-HMAC-SHA256", now, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + secret_key).encode()
    for part in (now[:8], region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (
        access_key, scope, signed, sig)
    return headers


def s3_request(rgw, method, path, payload=b""):
    """(status, body) of a signed request to the gateway, e.g. ("PUT", "/bucket") to create a bucket."""
    host = "127.0.0.1:%d" % rgw.port
    conn = http.client.HTTPConnection(host, timeout=30)
    try:
        conn.request(method, urllib.parse.quote(path, safe="/~"), body=payload,
                     headers=_sign_v4(method, host, path, rgw.access_key, rgw.secret_key, rgw.region, payload))
        res = conn.getresponse()
        return res.status, res.read()
    finally:
        conn.close()


def create_bucket(rgw, name):
    status, body = s3_request(rgw, "PUT", "/" + name)
    if status != 200:
        raise harness.TestFailure("creating bucket %s on RGW: HTTP %d %s" % (name, status, body[:300]))


def _http_answers(port):
    """True once something answers an HTTP request on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.settimeout(5)
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            return s.recv(12).startswith(b"HTTP/1.1")
    except OSError:
        return False


def start_rgw():
    """Starts a new cluster under a fresh temp directory (short path: admin sockets are unix sockets)."""
    rgw = Rgw(tempfile.mkdtemp(prefix="wrgw-", dir="/tmp"))
    try:
        return rgw.start()
    except BaseException:
        logs = rgw.log_tail("mon.a", 4) + " || " + rgw.log_tail("osd.0", 4) + " || " + rgw.log_tail("rgw.a", 4)
        rgw.stop()
        if logs.strip(" |"):
            print("Ceph RGW fixture logs: " + logs, flush=True)
        raise


if __name__ == "__main__":  # manual check: python3 tests/e2e/ceph.py
    r = start_rgw()
    print("RGW at %s in %.1f s" % (r.endpoint, r.started_in))
    r.stop()
