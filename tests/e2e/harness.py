"""Helpers for wharf's end-to-end tests: checks, processes, ports, commands, and the per-test Context.

HTTP lives in http_util.py, the server under test in registry.py.

Every wait here is bounded in tries and in seconds; every process a test starts goes through
Context.spawn and is stopped by PID when the test ends (and again at exit, should that fail).
"""
import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "imagegen"))
import imagegen  # noqa: E402  (tests/imagegen is not a package)

# Which server the tests run against: wharf (default) or, with E2E_SERVER=reference, Debian's
# docker-registry (distribution 2.8), so the harness itself can be checked before wharf exists.
SERVER_KIND = os.environ.get("E2E_SERVER", "wharf")
if SERVER_KIND not in ("wharf", "reference"):
    raise SystemExit("E2E_SERVER must be 'wharf' or 'reference', not %r" % SERVER_KIND)
SERVER_BIN = (os.environ.get("REFERENCE_BIN", "/usr/bin/docker-registry") if SERVER_KIND == "reference"
              else os.environ.get("WHARF_BIN", os.path.join(REPO_ROOT, "build", "wharf")))
# Docker's own client matches the daemon best; fall back to whatever `docker` is on PATH.
DOCKER_CLI = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else "docker"


class TestFailure(AssertionError):
    """A check that did not hold; its message is the one-line reason the runner prints."""


class Skip(Exception):
    """Raised to skip a test (only for tests that do not apply to the server under test)."""


def check(cond, message):
    """Fails the test with `message` unless `cond` holds."""
    if not cond:
        raise TestFailure(message)


def check_eq(actual, expected, what):
    """Fails the test unless actual == expected, naming both."""
    if actual != expected:
        raise TestFailure("%s: expected %r, got %r" % (what, expected, actual))


def wharf_only(reason):
    """Marks a test that checks wharf-specific behaviour; with E2E_SERVER=reference it is skipped
    (E2E_RUN_ALL=1 runs it anyway, to see how the reference registry differs)."""
    def mark(fn):
        fn.wharf_only = reason
        return fn
    return mark


def timeout(seconds):
    """Overrides the runner's per-test time limit."""
    def mark(fn):
        fn.timeout = seconds
        return fn
    return mark


# ---------------------------------------------------------------------------------------------
# Processes

_LIVE = {}  # pid -> Popen, every process still running; the atexit hook stops what tests left.


def stop_process(proc, grace=10.0, sig=signal.SIGTERM):
    """Sends `sig` to the process by PID, waits up to `grace` s, then SIGKILLs it; returns its exit code."""
    try:
        if proc.poll() is None:
            try:
                os.kill(proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        return proc.returncode
    finally:
        _LIVE.pop(proc.pid, None)


@atexit.register
def _stop_leftovers():
    for proc in list(_LIVE.values()):
        stop_process(proc, grace=3)


# ---------------------------------------------------------------------------------------------
# Session fixtures: started at most once per run, shared by the tests that ask for them

_SESSIONS = {}  # name -> (value, failure reason or None), in start order


def session(name, factory):
    """The run-wide fixture `name`: factory() on first use, the same object afterwards; its stop() runs
    when the run ends. If it could not start, this and every later use fail with that reason (tests
    that need it fail, they are not skipped, and the run does not pay for a second attempt)."""
    if name in _SESSIONS:
        value, reason = _SESSIONS[name]
        if reason:
            raise TestFailure(reason)
        return value
    try:
        value = factory()
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - recorded and reported to every user of the fixture
        reason = "the %s fixture could not start: %s" % (name, " ".join(str(exc).split())[:800] or type(exc).__name__)
        _SESSIONS[name] = (None, reason)
        raise TestFailure(reason) from None
    _SESSIONS[name] = (value, None)
    return value


@atexit.register
def close_sessions():
    """Stops every session fixture, newest first (run.py calls it at the end; atexit as a fallback)."""
    for name in reversed(list(_SESSIONS)):
        value, _ = _SESSIONS.pop(name)
        if value is not None and hasattr(value, "stop"):
            try:
                value.stop()
            except Exception:  # noqa: BLE001 - keep stopping the others
                pass


def pid_alive(pid):
    """True if a process with this PID exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def child_pids(pid):
    """PIDs whose parent is `pid` (from /proc/PID/task/*/children)."""
    out = []
    try:
        for task in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, task)) as f:
                out += [int(x) for x in f.read().split()]
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def wait_for(predicate, what, tries=100, interval=0.1):
    """Polls `predicate` up to `tries` times, `interval` s apart; returns its first truthy value or fails."""
    last_exc = None
    for _ in range(tries):
        try:
            value = predicate()
            if value:
                return value
        except TestFailure:
            raise  # the predicate decided it will never become true
        except Exception as exc:  # noqa: BLE001 - polled conditions fail in many ways until ready
            last_exc = exc
        time.sleep(interval)
    raise TestFailure("timed out waiting for %s after %.1f s%s" % (
        what, tries * interval, " (last error: %s)" % last_exc if last_exc else ""))


class CommandFailed(TestFailure):
    pass


def run(cmd, timeout=120, env=None, check_rc=True, input=None, cwd=None):
    """Runs `cmd` (a list) with a time limit, capturing output as text.

    Fails the test if it times out, or (with check_rc) exits non-zero, quoting stderr's tail."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env,
                             input=input, cwd=cwd, stdin=None if input is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise CommandFailed("%s timed out after %s s" % (short_cmd(cmd), timeout)) from None
    except FileNotFoundError:
        raise CommandFailed("%s: command not found" % cmd[0]) from None
    if check_rc and res.returncode != 0:
        raise CommandFailed("%s exited %d: %s" % (short_cmd(cmd), res.returncode,
                                                  tail(res.stderr or res.stdout, 3)))
    return res


def short_cmd(cmd):
    return " ".join(cmd[:3]) + (" ..." if len(cmd) > 3 else "")


def tail(text, lines):
    """The last `lines` non-empty lines of `text`, joined with ' | '."""
    rows = [r for r in (text or "").strip().splitlines() if r.strip()]
    return " | ".join(rows[-lines:])


def mounts_under(directory):
    """Mount points at or below `directory`, deepest first (from /proc/self/mountinfo)."""
    prefix = os.path.realpath(directory)
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                points.append(point)
    return sorted(points, key=len, reverse=True)


def unmount_all(directory):
    """Lazily unmounts whatever is mounted below `directory` (what a killed daemon leaves behind)."""
    for point in mounts_under(directory):
        subprocess.run(["umount", "-l", point], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# Per-test context

class Context:
    """What one test owns: a fresh directory and the processes it started."""

    def __init__(self, name, directory):
        self.name = name
        self.dir = directory
        self.procs = []
        self.servers = []  # (proc, log name) of each wharf this test started: checked when it ends
        self.cleanups = []  # callables run (last first) before processes are stopped
        self.final_cleanups = []  # callables run (last first) after processes are stopped

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def mkdir(self, *parts):
        p = self.path(*parts)
        os.makedirs(p, exist_ok=True)
        return p

    def short_dir(self, prefix):
        """A directory with a short path under /tmp (for unix sockets and podman's runroot), removed
        (after unmounting anything left below it) when the test ends."""
        d = tempfile.mkdtemp(prefix=prefix, dir="/tmp")

        def remove():
            unmount_all(d)
            shutil.rmtree(d, ignore_errors=True)
        self.final_cleanups.append(remove)
        return d

    def spawn(self, cmd, log_name, env=None):
        """Starts `cmd` with stdout+stderr appended to DIR/<log_name>.log; stopped when the test ends."""
        full_env = dict(os.environ)
        full_env.update(env or {})
        log = open(self.path(log_name + ".log"), "ab")
        try:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=full_env, cwd=self.dir)
        except FileNotFoundError:
            raise TestFailure("%s: not found" % cmd[0]) from None
        finally:
            log.close()
        _LIVE[proc.pid] = proc
        self.procs.append(proc)
        if SERVER_KIND == "wharf" and cmd[0] == SERVER_BIN:
            self.servers.append((proc, log_name))
        return proc

    def server_faults(self):
        """What went wrong inside the wharf servers of this test whatever the test checked: one that died of
        a signal nobody sent it (a crash: SIGKILL is a test's own kill -9), or a log line naming an internal
        error (a bug wharf caught itself). Call before the processes are stopped."""
        faults = []
        sent = {signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
        for proc, log_name in self.servers:
            rc = proc.poll()
            if rc is not None and rc < 0 and -rc not in sent:
                faults.append("%s died of %s during the test" % (log_name, signal.Signals(-rc).name))
            try:
                with open(self.path(log_name + ".log"), errors="replace") as f:
                    bad = [line.strip() for line in f if "internal error:" in line]
            except FileNotFoundError:
                bad = []
            if bad:
                faults.append("%s logged %d internal error(s), first: %s" % (log_name, len(bad), bad[0][:300]))
        return faults

    def close(self):
        """Runs cleanups, then stops every process this test started, newest first; fails (after stopping
        everything) if a wharf server crashed or logged an internal error meanwhile."""
        errors = []
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - keep cleaning up
                errors.append(exc)
        faults = self.server_faults()
        for proc in reversed(self.procs):
            try:
                stop_process(proc)
            except Exception as exc:  # noqa: BLE001 - keep cleaning up
                errors.append(exc)
        for fn in reversed(self.final_cleanups):
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - keep cleaning up
                errors.append(exc)
        if faults:
            raise TestFailure("; ".join(faults))
        if errors:
            raise errors[0]

    def registry(self, **kw):
        """A server under test (not started yet); see registry.Registry."""
        from registry import Registry  # registry.py builds on this module
        return Registry(self, **kw)

    def image(self, name="img", layers=2, size=256 << 10, seed=1, fmt="oci", tag="latest"):
        """Generates an OCI layout under DIR/<name>; returns imagegen's summary plus 'dir'."""
        out = self.path(name)
        info = imagegen.generate(out, layers=layers, size=size, seed=seed, tag=tag, fmt=fmt)
        info["dir"] = out
        return info

    def skopeo(self, *args, timeout=300, check_rc=True):
        """Runs skopeo with this test's own policy and auth file (nothing read from or written to $HOME)."""
        policy = self.path("policy.json")
        if not os.path.exists(policy):
            with open(policy, "w") as f:
                json.dump({"default": [{"type": "insecureAcceptAnything"}]}, f)
        env = {"REGISTRY_AUTH_FILE": self.path("skopeo-auth.json"), "TMPDIR": self.mkdir("tmp")}
        return run(["skopeo", "--policy", policy] + list(args), timeout=timeout, env=env, check_rc=check_rc)


def files_equal(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        return fa.read() == fb.read()


def blob_path(layout_dir, digest):
    return os.path.join(layout_dir, "blobs", "sha256", digest.split(":", 1)[1])


def copy_logs(src_dir, dest_dir):
    """Copies every *.log directly under src_dir to dest_dir (kept for a failed test)."""
    os.makedirs(dest_dir, exist_ok=True)
    for name in os.listdir(src_dir):
        if name.endswith(".log"):
            shutil.copy(os.path.join(src_dir, name), dest_dir)
