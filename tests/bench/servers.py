"""The servers the benchmark compares: wharf and Debian's docker-registry (registry:2, distribution 2.8)
from the same registry:2 config.yml, and nginx serving the same bytes as static files.

Every process is started through harness.Context.spawn, so it is stopped by PID when the run ends
(also on an exception, SIGINT or SIGTERM)."""
import http.client
import os
import re
import ssl
import subprocess
import time

from harness import TestFailure, child_pids, free_port, stop_process, tail
from registry import htpasswd_file, to_yaml

REFERENCE_BIN = "/usr/bin/docker-registry"


def peak_rss_kib(pid):
    """VmHWM of a live process in KiB (0 if it is gone)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def unverified_context():
    """A client TLS context that accepts the bench's self-signed certificate."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def negotiated_tls(host_port):
    """'TLSv1.3 TLS_AES_256_GCM_SHA384' as `openssl s_client` (the library wrk uses) negotiates it."""
    try:
        out = subprocess.run(["openssl", "s_client", "-connect", host_port, "-brief"], input=b"",
                             capture_output=True, timeout=20).stderr.decode(errors="replace")
    except (OSError, subprocess.SubprocessError):
        return "?"
    proto = re.search(r"Protocol version:\s*(\S+)", out)
    cipher = re.search(r"Ciphersuite:\s*(\S+)", out)
    return "%s %s" % (proto.group(1) if proto else "?", cipher.group(1) if cipher else "?")


def wait_http(proc, host, port, what, log_path, tries=150, interval=0.1, tls=False):
    """Waits until GET /v2/ gets any HTTP answer (401 counts); fails with the log's tail otherwise."""
    for _ in range(tries):
        if proc.poll() is not None:
            raise TestFailure("%s exited with %s during startup: %s" % (what, proc.returncode, log_tail(log_path)))
        try:
            conn = (http.client.HTTPSConnection(host, port, timeout=2, context=unverified_context()) if tls
                    else http.client.HTTPConnection(host, port, timeout=2))
            conn.request("GET", "/v2/")
            conn.getresponse().read()
            conn.close()
            return
        except (OSError, http.client.HTTPException):
            time.sleep(interval)
    raise TestFailure("%s did not answer within %.0f s: %s" % (what, tries * interval, log_tail(log_path)))


def log_tail(path, lines=3):
    try:
        with open(path, errors="replace") as f:
            return tail(f.read(), lines)
    except FileNotFoundError:
        return ""


class Server:
    """wharf or docker-registry ('kind') serving a config.yml written into the run directory.

    root: storage directory (kept across restarts); users: {name: password} turns on htpasswd auth;
    proxy: the upstream URL (pull-through mode); accesslog: keep the per-request log (the origin's);
    tls: (certificate, key) serves https (http.tls); loglevel: the server log's level; auth: more keys
    of the auth section (e.g. token, access)."""

    def __init__(self, ctx, kind, binary, name, root, users=None, proxy=None, accesslog=False, tls=None,
                 loglevel=None, auth=None):
        self.ctx, self.kind, self.binary, self.name = ctx, kind, binary, name
        self.port = free_port()
        self.host = "127.0.0.1:%d" % self.port
        self.tls = tls
        self.url = ("https://" if tls else "http://") + self.host
        self.users = dict(users or {})
        self.proc = None
        self.peak_kib = 0
        cfg = {"version": 0.1,
               "log": {"level": loglevel or ("info" if accesslog else "warn"),
                       "accesslog": {"disabled": not accesslog}},
               "storage": {"filesystem": {"rootdirectory": root}, "delete": {"enabled": True}},
               "http": {"addr": self.host, "secret": "bench-not-a-secret-%d" % self.port}}
        if kind == "registry":  # as in registry:2's stock config.yml (Debian's and the image's)
            cfg["storage"]["cache"] = {"blobdescriptor": "inmemory"}
        if self.users:
            cfg["auth"] = {"htpasswd": {"realm": "wharf-bench",
                                        "path": htpasswd_file(ctx.path(name + ".htpasswd"), self.users)}}
        if auth:
            cfg.setdefault("auth", {}).update(auth)
        if proxy:
            cfg["proxy"] = {"remoteurl": proxy}
        if tls:
            cfg["http"]["tls"] = {"certificate": tls[0], "key": tls[1]}
        self.config_path = ctx.path(name + ".yml")
        with open(self.config_path, "w") as f:
            f.write(to_yaml(cfg) + "\n")
        self.log_path = ctx.path(name + ".log")

    def start(self):
        self.proc = self.ctx.spawn([self.binary, "serve", self.config_path], self.name)
        wait_http(self.proc, "127.0.0.1", self.port, self.name, self.log_path, tls=bool(self.tls))
        return self

    def log_lines(self, needle):
        """Lines of this server's log that contain `needle`."""
        try:
            with open(self.log_path, errors="replace") as f:
                return [line.rstrip("\n") for line in f if needle in line]
        except FileNotFoundError:
            return []

    def rss_kib(self):
        """Peak RSS so far (VmHWM); remembered, so it can still be read after stop()."""
        if self.proc is not None and self.proc.poll() is None:
            self.peak_kib = max(self.peak_kib, peak_rss_kib(self.proc.pid))
        return self.peak_kib

    def stop(self):
        if self.proc is not None:
            self.rss_kib()
            stop_process(self.proc)

    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except FileNotFoundError:
            return 0

    def blob_gets_since(self, offset):
        """GETs of blobs answered 200 in this server's access log after byte `offset` (docker-registry's
        combined log format: '"GET /v2/<repo>/blobs/sha256:<hex> HTTP/1.1" 200')."""
        with open(self.log_path, "rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
        return len(re.findall(r'"GET /v2/\S+/blobs/sha256:[0-9a-f]{64} HTTP/[\d.]+" 200 ', text))


class NginxProcess:
    """One nginx (1 worker process) in its own directory under the run directory: the config boilerplate
    (pid, logs, temp paths inside that directory), start on a free port, peak RSS and stop by PID."""

    def __init__(self, ctx, name, binary="/usr/sbin/nginx"):
        self.ctx, self.name, self.binary = ctx, name, binary
        self.port = free_port()
        self.host = "127.0.0.1:%d" % self.port
        self.url = "http://" + self.host
        self.dir = ctx.mkdir(name)
        self.conf_path = os.path.join(self.dir, "nginx.conf")
        self.proc = None
        self.peak_kib = 0

    def write_conf(self, http_body):
        """nginx.conf with `http_body` (may use %(dir)s and %(port)d) inside the http block."""
        conf = """daemon off;
worker_processes 1;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path %(dir)s/tmp-body;
    proxy_temp_path %(dir)s/tmp-proxy;
    fastcgi_temp_path %(dir)s/tmp-fastcgi;
    uwsgi_temp_path %(dir)s/tmp-uwsgi;
    scgi_temp_path %(dir)s/tmp-scgi;
""" + http_body + "}\n"
        with open(self.conf_path, "w") as f:
            f.write(conf % {"dir": self.dir, "port": self.port})

    def start(self):
        self.proc = self.ctx.spawn([self.binary, "-p", self.dir, "-c", self.conf_path], self.name)
        wait_http(self.proc, "127.0.0.1", self.port, self.name, self.ctx.path(self.name + ".log"))
        return self

    def rss_kib(self):
        """Peak RSS of master + worker processes."""
        if self.proc is not None and self.proc.poll() is None:
            total = peak_rss_kib(self.proc.pid) + sum(peak_rss_kib(p) for p in child_pids(self.proc.pid))
            self.peak_kib = max(self.peak_kib, total)
        return self.peak_kib

    def stop(self):
        if self.proc is not None:
            self.rss_kib()
            stop_process(self.proc)  # SIGTERM: nginx's fast shutdown stops its worker too


class Nginx(NginxProcess):
    """nginx serving DIR/www as static files with sendfile: every path as application/octet-stream,
    manifests under /v2/<repo>/manifests/ with their media type. With tls=(certificate, key) it also
    serves the same tree over TLS on tls_port / tls_url: TLS 1.3 with the suite wharf and registry:2 pick
    (TLS_AES_128_GCM_SHA256), ssl_buffer_size at its default."""

    def __init__(self, ctx, manifest_type, binary="/usr/sbin/nginx", tls=None):
        super().__init__(ctx, "nginx", binary)
        self.www = ctx.mkdir("nginx", "www")
        self.tls_port = free_port() if tls else None
        self.tls_host = "127.0.0.1:%d" % self.tls_port if tls else None
        self.tls_url = "https://" + self.tls_host if tls else None
        tls_server = ""
        if tls:
            tls_server = """    server {
        listen 127.0.0.1:%d ssl;
        ssl_certificate %s;
        ssl_certificate_key %s;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256;
        root %s;
        location ~ ^/v2/.+/manifests/ {
            types { }
            default_type %s;
        }
    }
""" % (self.tls_port, tls[0], tls[1], self.www, manifest_type)
        self.write_conf(tls_server.replace("%", "%%") + """    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    default_type application/octet-stream;
    types { }
    server {
        listen 127.0.0.1:%%(port)d;
        root %s;
        location ~ ^/v2/.+/manifests/ {
            types { }
            default_type %s;
        }
    }
""" % (self.www, manifest_type))

    def put(self, url_path, data):
        """Writes `data` as the file served at `url_path`."""
        path = os.path.join(self.www, url_path.lstrip("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)

    def start(self):
        # nginx's worker runs as nobody when started by root: let it read the tree.
        for d in (self.ctx.dir, self.dir):
            os.chmod(d, 0o755)
        for top, dirs, files in os.walk(self.www):
            os.chmod(top, 0o755)
            for name in files:
                os.chmod(os.path.join(top, name), 0o644)
        return super().start()


class NginxCache(NginxProcess):
    """nginx as a caching reverse proxy of `origin_host` (proxy_cache on disk, keep-alive to the origin):
    what a mirror that neither verifies digests nor syncs its cache costs on a cold pull."""

    def __init__(self, ctx, name, origin_host, binary="/usr/sbin/nginx"):
        super().__init__(ctx, name, binary)
        self.write_conf("""    proxy_cache_path %%(dir)s/cache levels=1:2 keys_zone=mirror:10m max_size=1g;
    upstream origin { server %s; keepalive 16; }
    server {
        listen 127.0.0.1:%%(port)d;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache mirror;
            proxy_cache_key $uri;
            proxy_cache_valid 200 1h;
        }
    }
""" % origin_host)

    def start(self):
        os.chmod(self.ctx.dir, 0o755)
        os.chmod(self.dir, 0o777)  # the worker (nobody) writes the cache
        return super().start()
