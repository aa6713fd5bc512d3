"""Several wharf fronts sharing one PostgreSQL index (tests/e2e/postgres.py) and one storage directory
(the fronts run on this machine; in a real fleet the blobs are in S3): each front's manifest lookup
cache is kept fresh by LISTEN/NOTIFY (a tag moved through one front is served through another once the
notification arrives, and a lost LISTEN connection empties the cache); a mirrored tag is revalidated
with the upstream by one front per freshness window for the whole fleet; 8 concurrent cold pulls over
3 fronts make one upstream GET per blob (a lease row in PostgreSQL); kill -9 of the front that holds
the lease mid-download: the pulls waiting on the other fronts complete after one more download.

Three fronts are started side by side without a load balancer; the tests hit them in turn."""
import hashlib
import re
import threading
import time

import harness
import postgres
from fakehub import FakeHub
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


@wharf_only("wharf's PostgreSQL index")
@harness.timeout(FLEET_TIMEOUT)
def test_fleet_cache_one_revalidation_per_window_for_the_fleet(ctx):
    pg = pg_server()
    db = pg.create_database(ctx.name)
    hub = FakeHub(ctx).start()
    img = ctx.image(layers=1, size=4096, seed=71)
    repo = "library/fleetwin"
    hub.push(img, repo, "v1")
    proxy = {"remoteurl": hub.url, "tagfreshness": "600s", "upstreams": [{"name": "docker.io", "url": hub.url}]}
    fronts = start_fleet(ctx, pg, db, extra={"proxy": proxy})
    # The first pull fetches; the fronts share the index once it is written (a cold tag fetched by two
    # fronts at once is not merged across fronts yet).
    check_eq(tag_digest(fronts[0], repo, "v1"), (200, img["manifest_digest"]), "first pull through front0")
    wait_for(lambda: pg.psql("SELECT count(*) FROM tags", db=db).stdout.strip() == "1",
             "front0 to record the fetched tag", tries=200, interval=0.05)
    for i in range(30):  # a window of 600 s holds the whole loop
        front = fronts[i % len(fronts)]
        check_eq(tag_digest(front, repo, "v1"), (200, img["manifest_digest"]),
                 "pull %d of %s:v1 through %s" % (i, repo, front.name))
    heads = hub.log.count("HEAD", "manifest-tag", repo=repo, status=200)
    gets = hub.log.count("GET", "manifest-tag", repo=repo, status=200)
    check_eq(gets, 1, "upstream GETs of the tag for 30 pulls over 3 fronts (%s)" % hub.log.summary())
    check(heads <= 1, "at most one upstream revalidation in the window for the fleet, saw %d (%s)" % (
        heads, hub.log.summary()))
    check_eq(hub.violations, [], "CDN violations")


def mirror_fleet(ctx, pg, db, hub):
    proxy = {"remoteurl": hub.url, "tagfreshness": "600s", "upstreams": [{"name": "docker.io", "url": hub.url}]}
    return start_fleet(ctx, pg, db, extra={"proxy": proxy})


def get_blob(front, repo, digest, out, key):
    """GET a blob through `front` into out[key] as (status, sha256 of the body or an error)."""
    try:
        r = request("GET", front.url + "/v2/%s/blobs/%s" % (repo, digest), timeout=180)
        out[key] = (r.status, "sha256:" + hashlib.sha256(r.body).hexdigest() if not r.incomplete else "incomplete")
    except Exception as exc:  # noqa: BLE001 - recorded, checked by the caller
        out[key] = (None, repr(exc))


@wharf_only("wharf's PostgreSQL index")
@harness.timeout(FLEET_TIMEOUT)
def test_fleet_cache_eight_cold_pulls_one_upstream_get_per_blob(ctx):
    pg = pg_server()
    db = pg.create_database(ctx.name)
    hub = FakeHub(ctx).start()
    img = ctx.image(layers=2, size=512 << 10, seed=72)
    repo = "library/fleetcold"
    hub.push(img, repo, "v1")
    hub.throttle(1 << 20)  # about a second per layer: the pulls overlap
    fronts = mirror_fleet(ctx, pg, db, hub)
    blobs = [img["config_digest"]] + list(img["layers"])
    out = {}

    def pull(i):
        front = fronts[i % len(fronts)]
        for dg in blobs:
            get_blob(front, repo, dg, out, (i, dg))
    threads = [threading.Thread(target=pull, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(240)
    for i in range(8):
        for dg in blobs:
            check_eq(out.get((i, dg)), (200, dg), "pull %d of %s through %s" % (i, dg[:19], fronts[i % 3].name))
    for dg in blobs:
        check_eq(hub.log.cdn_gets(dg), 1, "upstream GETs of %s for 8 pulls over 3 fronts (%s)" % (
            dg[:19], hub.log.summary()))


@wharf_only("wharf's PostgreSQL index")
@harness.timeout(FLEET_TIMEOUT)
def test_fleet_cache_kill9_of_the_fetching_front(ctx):
    pg = pg_server()
    db = pg.create_database(ctx.name)
    hub = FakeHub(ctx).start()
    img = ctx.image(layers=1, size=4 << 20, seed=73)
    repo = "library/fleetkill"
    hub.push(img, repo, "v1")
    layer = img["layers"][0]
    hub.throttle(512 << 10)  # about 8 s for the layer: time to kill its fetcher mid-way
    owner, b, c = mirror_fleet(ctx, pg, db, hub)
    out = {}
    first = threading.Thread(target=get_blob, args=(owner, repo, layer, out, "owner"))
    first.start()
    wait_for(lambda: hub.log.cdn_gets(layer) == 1, "front0 to start the upstream download", tries=200, interval=0.05)
    waiters = [threading.Thread(target=get_blob, args=(f, repo, layer, out, f.name)) for f in (b, c)]
    for t in waiters:
        t.start()
    time.sleep(1.0)  # the waiters reach front1 and front2 and park behind front0's lease
    owner.kill9()
    first.join(30)
    for t in waiters:
        t.join(240)
    for f in (b, c):
        check_eq(out.get(f.name), (200, layer), "the pull through %s after front0 was killed" % f.name)
    check(out.get("owner", (None,))[0] != 200 or out["owner"][1] == layer,
          "front0's own client got a clean error or the right bytes: %r" % (out.get("owner"),))
    check(hub.log.cdn_gets(layer) <= 2, "at most one more upstream download after the kill (%s)" % hub.log.summary())
