"""The fleet's shared caches and single flight.

Each front's manifest lookup cache is kept fresh by LISTEN/NOTIFY (a tag moved through one front is
served through another once the notification arrives, and a lost LISTEN connection empties the cache):
three fronts on one PostgreSQL index and one storage directory, hit in turn.

Mirroring through tests/e2e/fleet.py's Fleet (PostgreSQL + RGW + 3 fronts + haproxy round-robin, one
http.secret): 8 concurrent cold pulls of one image make one upstream GET per blob (a lease row in
PostgreSQL), the clients of the fronts without the lease stream the blob from the holder's in-flight
download (/internal/inflight/<digest>) before it is published; 30 pulls of the cached tag make at most
one revalidation per freshness window; kill -9 of the front that holds a lease mid-download: the pulls
through the other fronts complete with the right bytes after at most one more upstream download."""
import hashlib
import hmac
import http.client
import json
import os
import re
import threading
import time

import harness
import postgres
from fakehub import FakeHub
from fleet import SECRET, Fleet
from harness import check, check_eq, free_port, wait_for, wharf_only
from http_util import request
from registry import MANIFEST_ACCEPT

FLEET_TIMEOUT = 300


def pg_server():
    return harness.session("postgres", postgres.start)


def start_fleet(ctx, pg, db, n=3, extra=None):
    """n fronts on one database and one storage root, each with /metrics on its own debug port."""
    root = ctx.mkdir("fleet-data")
    fronts = []
    for i in range(n):
        debug_port = free_port()
        cfg = {"database": {"dsn": pg.dsn(db), "poolsize": 4},
               "http": {"debug": {"addr": "127.0.0.1:%d" % debug_port,
                                  "prometheus": {"enabled": True, "path": "/metrics"}}}}
        for section, values in (extra or {}).items():
            cfg.setdefault(section, {}).update(values)
        f = ctx.registry(name="front%d" % i, root=root, extra=cfg)
        f.metrics_url = "http://127.0.0.1:%d/metrics" % debug_port
        fronts.append(f)
    for f in fronts:
        f.start(tries=300)
    for f in fronts:  # the LISTEN connection is up: the cache is in use
        wait_for(lambda: metric(f, "wharf_index_cache_enabled") == 1, "%s's cache to be enabled (log: %s)" % (
            f.name, f.log_tail(3)), tries=300, interval=0.05)
    return fronts


def metric(front, name):
    """The value of an unlabelled sample on the front's /metrics (None when absent)."""
    text = request("GET", front.metrics_url, timeout=10).body.decode()
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    return float(m.group(1)) if m else None


def tag_digest(front, repo, tag):
    """(status, Docker-Content-Digest) of GET manifest by tag."""
    r = request("GET", front.url + "/v2/%s/manifests/%s" % (repo, tag), {"Accept": MANIFEST_ACCEPT}, timeout=30)
    return r.status, r.header("Docker-Content-Digest", "")


def wait_digest(front, repo, tag, want, what):
    wait_for(lambda: tag_digest(front, repo, tag) == want, "%s: %s (last answer %r)" % (
        front.name, what, tag_digest(front, repo, tag)), tries=200, interval=0.05)


def check_cached(front, repo, tag, digest):
    """GETs repo:tag through `front` until one is answered from its cache (a lookup that overlapped a
    notification is not kept), then checks that three more are, all with `digest`."""
    def hit():
        before = metric(front, "wharf_index_cache_hits_total")
        check_eq(tag_digest(front, repo, tag), (200, digest), "%s's GET of %s:%s" % (front.name, repo, tag))
        return metric(front, "wharf_index_cache_hits_total") > before
    wait_for(hit, "%s to answer %s:%s from its cache" % (front.name, repo, tag), tries=20, interval=0.05)
    before = metric(front, "wharf_index_cache_hits_total")
    for _ in range(3):
        check_eq(tag_digest(front, repo, tag), (200, digest), "%s's GET of %s:%s" % (front.name, repo, tag))
    after = metric(front, "wharf_index_cache_hits_total")
    check(after >= before + 3, "%s answered %s:%s from its cache (hits %r then %r)" % (
        front.name, repo, tag, before, after))


@wharf_only("wharf's PostgreSQL index")
@harness.timeout(FLEET_TIMEOUT)
def test_fleet_cache_tag_move_reaches_other_fronts_by_notify(ctx):
    pg = pg_server()
    db = pg.create_database(ctx.name)
    a, b, _ = start_fleet(ctx, pg, db)
    repo = "e2e/moving"
    d1 = a.push_image(repo, "v1", seed=1)["manifest_digest"]
    check_cached(b, repo, "v1", d1)

    # Without the notification, front1 would serve d1 from its cache forever.
    d2 = a.push_image(repo, "v1", seed=2)["manifest_digest"]
    check(d2 != d1, "the second push has another digest")
    wait_digest(b, repo, "v1", (200, d2), "v1 moved through front0 is served after the notify")
    check(metric(b, "wharf_index_notifications_total") >= 1, "front1 received notifications")
    lag = metric(b, "wharf_index_notify_lag_max_seconds")
    check(lag is not None and lag >= 0, "front1 reports its notify lag (%r)" % lag)

    check_eq(a.req("DELETE", "/v2/%s/manifests/v1" % repo).status, 202, "DELETE of tag v1 through front0")
    wait_digest(b, repo, "v1", (404, ""), "v1 deleted through front0 is gone after the notify")

    # A lost LISTEN connection empties the cache: a change made meanwhile is never hidden by it.
    d3 = a.push_image(repo, "v1", seed=3)["manifest_digest"]
    check_cached(b, repo, "v1", d3)
    drops = metric(b, "wharf_index_listen_drops_total")
    killed = pg.psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '%s' AND "
                     "application_name = 'wharf-listen'" % db, db=db).stdout.strip()
    check_eq(killed, "3", "LISTEN connections terminated (one per front)")
    d4 = a.push_image(repo, "v1", seed=4)["manifest_digest"]
    wait_digest(b, repo, "v1", (200, d4), "v1 moved while the LISTEN connection was down")
    wait_for(lambda: metric(b, "wharf_index_listen_drops_total") > drops and
             metric(b, "wharf_index_cache_enabled") == 1, "front1 to notice the drop and listen again",
             tries=300, interval=0.05)
    check_cached(b, repo, "v1", d4)


class MirrorFleet(Fleet):
    """fleet.py's Fleet whose fronts mirror `hub` (tag freshness 600 s) and serve /metrics on a debug port."""

    def __init__(self, ctx, hub):
        self.hub = hub
        super().__init__(ctx, extra={"proxy": {"remoteurl": hub.url, "tagfreshness": "600s",
                                               "upstreams": [{"name": "docker.io", "url": hub.url}]}})

    def _front(self, i, chunksize):
        reg = super()._front(i, chunksize)
        reg.metrics_url = reg.debug_url + "/metrics"
        return reg

    def holder(self, digest):
        """The front whose address the lease on `digest` names (None when no lease row)."""
        owner = self.pg.psql("SELECT owner FROM claims WHERE key = 'blob' || chr(9) || '%s'" % digest,
                             db=self.db).stdout.strip()
        for f in self.fronts:
            if owner.endswith("@" + f.host):
                return f
        return None

    def total(self, name):
        return sum(metric(f, name) or 0 for f in self.fronts if f.proc.poll() is None)


def get_blob(url, repo, digest, out, key, tries=1):
    """GET a blob from `url` into out[key] as (status, digest of the body, or why not); a cut body or a 5xx
    is retried up to `tries` times, as clients do."""
    for _ in range(tries):
        try:
            r = request("GET", url + "/v2/%s/blobs/%s" % (repo, digest), timeout=180)
            out[key] = (r.status, "sha256:" + hashlib.sha256(r.body).hexdigest() if not r.incomplete else "incomplete")
        except Exception as exc:  # noqa: BLE001 - recorded, checked by the caller
            out[key] = (None, repr(exc))
        if out[key][0] is not None and out[key][0] < 500 and out[key][1] != "incomplete":
            return


def pull_image(url, repo, tag, blobs, out, key):
    """A client's pull: the manifest by tag, then each blob; out[(key, what)] as get_blob records it."""
    try:
        r = request("GET", url + "/v2/%s/manifests/%s" % (repo, tag), {"Accept": MANIFEST_ACCEPT}, timeout=180)
        out[(key, "manifest")] = (r.status, "sha256:" + hashlib.sha256(r.body).hexdigest())
    except Exception as exc:  # noqa: BLE001 - recorded, checked by the caller
        out[(key, "manifest")] = (None, repr(exc))
    for dg in blobs:
        get_blob(url, repo, dg, out, (key, dg))


def mirror_fleet(ctx):
    hub = FakeHub(ctx).start()
    return hub, MirrorFleet(ctx, hub).start()


@wharf_only("wharf's PostgreSQL index")
@harness.timeout(FLEET_TIMEOUT)
def test_fleet_cache_cold_pulls_through_the_balancer(ctx):
    hub, fleet = mirror_fleet(ctx)
    img = ctx.image(layers=3, size=512 << 10, seed=72)
    repo = "library/fleetcold"
    hub.push(img, repo, "v1")
    hub.throttle(1 << 20)  # about half a second per layer: the pulls overlap
    blobs = [img["config_digest"]] + list(img["layers"])
    out = {}
    threads = [threading.Thread(target=pull_image, args=(fleet.url, repo, "v1", blobs, out, i)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(240)
    for i in range(8):
        check_eq(out.get((i, "manifest")), (200, img["manifest_digest"]), "pull %d's manifest" % i)
        for dg in blobs:
            check_eq(out.get((i, dg)), (200, dg), "pull %d of %s through haproxy" % (i, dg[:19]))
    for dg in blobs:
        check_eq(hub.log.cdn_gets(dg), 1, "upstream GETs of %s for 8 pulls over 3 fronts (%s)" % (
            dg[:19], hub.log.summary()))
    served = {i for i, method, target, status in fleet.requests("/blobs/sha256:") if status == 200}
    check(len(served) >= 2, "haproxy spread the blob GETs over the fronts (%r)" % served)

    # A client of a front without the lease gets the bytes as they arrive, before the holder's upstream
    # download has finished: its first piece comes while the holder has fetched only part of the layer.
    big = ctx.image(name="big", layers=1, size=3 << 19, seed=74)
    hub.push(big, "library/fleetstream", "v1")
    layer = big["layers"][0]
    size = os.path.getsize(harness.blob_path(big["dir"], layer))
    hub.throttle(512 << 10)  # about 3 s for the layer
    first = {}
    fetched_before = metric(fleet.fronts[0], "wharf_upstream_fetched_bytes_total")
    owner_pull = threading.Thread(target=get_blob, args=(fleet.fronts[0].url, "library/fleetstream", layer, first,
                                                         "owner"))
    owner_pull.start()
    wait_for(lambda: hub.log.cdn_gets(layer) == 1, "front0 to start the upstream download", tries=200, interval=0.05)
    holder = wait_for(lambda: fleet.holder(layer), "the lease row of the layer", tries=100, interval=0.05)
    check(holder is fleet.fronts[0], "front0 holds the lease (%r)" % holder.name)
    waiter = fleet.fronts[1]
    conn = http.client.HTTPConnection(waiter.host, timeout=60)
    conn.request("GET", "/v2/library/fleetstream/blobs/%s" % layer)
    resp = conn.getresponse()
    check_eq(resp.status, 200, "the waiting front's answer")
    check_eq(int(resp.getheader("Content-Length")), size, "Content-Length of the relayed blob")
    piece = resp.read1(65536)
    fetched = metric(holder, "wharf_upstream_fetched_bytes_total") - fetched_before
    check(piece, "a first piece of the relayed body")
    check(fetched < size, "the first relayed piece arrived while front0 had fetched %r of %d bytes" % (
        fetched, size))
    body = piece + resp.read()
    conn.close()
    check_eq("sha256:" + hashlib.sha256(body).hexdigest(), layer, "the relayed bytes")
    owner_pull.join(60)
    check_eq(first.get("owner"), (200, layer), "front0's own client")
    check_eq(hub.log.cdn_gets(layer), 1, "one upstream GET of the streamed layer")
    check(metric(waiter, "wharf_fleet_relayed_bytes_total") >= size, "front1 counted the relayed bytes")
    check(fleet.total("wharf_fleet_remote_waits_total") >= 1, "remote waits are counted")
    check_eq(fleet.total("wharf_fleet_remote_waits"), 0, "no client waits any more")
    check_eq(fleet.total("wharf_fleet_relays_total{result=\"cut\"}"), 0, "no relay was cut")

    # Backpressure: a client that stops reading holds its relay back (the holder serves from its staged
    # file; nothing piles up in the waiting front) while the holder's own client gets the whole blob.
    huge = ctx.image(name="huge", layers=1, size=32 << 20, seed=75)
    hub.push(huge, "library/fleetslow", "v1")
    slow_layer = huge["layers"][0]
    slow_size = os.path.getsize(harness.blob_path(huge["dir"], slow_layer))
    hub.throttle(16 << 20)
    relayed_before = metric(waiter, "wharf_fleet_relayed_bytes_total")
    owner_pull = threading.Thread(target=get_blob, args=(fleet.fronts[0].url, "library/fleetslow", slow_layer, first,
                                                         "slow owner"))
    owner_pull.start()
    wait_for(lambda: hub.log.cdn_gets(slow_layer) == 1, "front0 to start the upstream download", tries=200,
             interval=0.05)
    conn = http.client.HTTPConnection(waiter.host, timeout=120)
    conn.request("GET", "/v2/library/fleetslow/blobs/%s" % slow_layer)
    resp = conn.getresponse()
    check_eq(resp.status, 200, "the waiting front's answer to the slow client")
    piece = resp.read1(65536)
    owner_pull.join(120)
    check_eq(first.get("slow owner"), (200, slow_layer), "front0's own client of the big layer")
    relayed = metric(waiter, "wharf_fleet_relayed_bytes_total") - relayed_before
    check(relayed < slow_size // 2, "a client that stopped reading held its relay back: %d of %d bytes relayed" % (
        relayed, slow_size))
    body = piece + resp.read()
    conn.close()
    check_eq("sha256:" + hashlib.sha256(body).hexdigest(), slow_layer, "the slow client's bytes")

    # The internal endpoint answers only a front's token (HMAC of digest and expiry under http.secret).
    def inflight(dg, token=None, method="GET"):
        r = request(method, fleet.fronts[2].url + "/internal/inflight/" + dg,
                    {"X-Wharf-Inflight-Token": token} if token is not None else {}, timeout=10)
        return r.status, json.loads(r.body or b"{}").get("errors", [{}])[0].get("code")

    def token(dg, expires, secret=SECRET):
        mac = hmac.new(secret.encode(), ("%s\n%d" % (dg, expires)).encode(), hashlib.sha256).hexdigest()
        return "%d.%s" % (expires, mac)
    now = int(time.time())
    check_eq(inflight(layer), (401, "UNAUTHORIZED"), "no token")
    check_eq(inflight(layer, "garbage"), (401, "UNAUTHORIZED"), "a garbage token")
    check_eq(inflight(layer, token(layer, now + 30, "other")), (401, "UNAUTHORIZED"), "a token under another secret")
    check_eq(inflight(layer, token(layer, now - 1)), (401, "UNAUTHORIZED"), "an expired token")
    check_eq(inflight(layer, token(blobs[0], now + 30)), (401, "UNAUTHORIZED"), "another digest's token")
    check_eq(inflight(layer, token(layer, now + 30)), (404, "BLOB_UNKNOWN"), "a digest no download of which runs")
    check_eq(inflight(layer, token(layer, now + 30), "DELETE"), (405, "UNSUPPORTED"), "DELETE")

    # 30 pulls of the cached tag across the fronts: one revalidation per freshness window for the fleet.
    hub.log.reset()
    for i in range(30):
        check_eq(fleet.req("GET", "/v2/%s/manifests/v1" % repo, {"Accept": MANIFEST_ACCEPT}).status, 200,
                 "pull %d of %s:v1 through haproxy" % (i, repo))
    check_eq(hub.log.manifest_gets(repo), 0, "upstream GETs of the cached tag (%s)" % hub.log.summary())
    check(hub.log.count("HEAD", "manifest-tag", repo=repo) <= 1,
          "at most one upstream revalidation in the window for the fleet (%s)" % hub.log.summary())
    check_eq(hub.violations, [], "CDN violations")


@wharf_only("wharf's PostgreSQL index")
@harness.timeout(FLEET_TIMEOUT)
def test_fleet_cache_kill9_of_the_fetching_front(ctx):
    hub, fleet = mirror_fleet(ctx)
    img = ctx.image(layers=1, size=4 << 20, seed=73)
    repo = "library/fleetkill"
    hub.push(img, repo, "v1")
    layer = img["layers"][0]
    hub.throttle(512 << 10)  # about 8 s for the layer: time to kill its fetcher mid-way
    owner, b, c = fleet.fronts
    out = {}
    first = threading.Thread(target=get_blob, args=(owner.url, repo, layer, out, "owner"))
    first.start()
    wait_for(lambda: hub.log.cdn_gets(layer) == 1, "front0 to start the upstream download", tries=200, interval=0.05)
    waiters = [threading.Thread(target=get_blob, args=(fleet.url, repo, layer, out, i, 3)) for i in range(4)]
    for t in waiters:
        t.start()
    # The waiters park behind front0's lease: front1 and front2 relay its download.
    wait_for(lambda: metric(b, "wharf_fleet_remote_waits") + metric(c, "wharf_fleet_remote_waits") >= 2,
             "the pulls to wait on front0's download", tries=200, interval=0.05)
    owner.kill9()
    first.join(30)
    for t in waiters:
        t.join(240)
    for i in range(4):
        check_eq(out.get(i), (200, layer), "pull %d through haproxy after front0 was killed" % i)
    check(out.get("owner", (None,))[0] != 200 or out["owner"][1] == layer,
          "front0's own client got a clean error or the right bytes: %r" % (out.get("owner"),))
    check(hub.log.cdn_gets(layer) <= 2, "at most one more upstream download after the kill (%s)" % hub.log.summary())
    check(fleet.total("wharf_fleet_lease_takeovers_total") >= 1, "a surviving front took the lease over")
