#!/usr/bin/env python3
"""wharf's end-to-end test runner (python3 stdlib only).

Finds the functions test_* in tests/e2e/test_*.py, runs each one with a fresh temp directory and a
time limit, and prints one line per test: "PASS name", "FAIL name: reason" or "SKIP name: reason".
The last line is "e2e: N passed, M failed, K skipped"; the exit status is 1 if M > 0.

    run.py [-k SUBSTRING]... [--list] [--keep]

Environment: E2E_SERVER=wharf|reference, WHARF_BIN, E2E_RUN_ALL=1 (run wharf-only tests on the
reference too), E2E_TIMEOUT (default per-test limit, s), E2E_TMPDIR (default /tmp).
Logs of a failed test are copied to tests/out/e2e/<name>/ and their tails printed to stderr.
"""
import argparse
import importlib
import inspect
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402


class TestTimeout(Exception):
    pass


def _on_alarm(signum, frame):
    raise TestTimeout()


def discover():
    """[(name, function)] in file order, then definition order; a file that fails to import becomes
    one test that fails with the import error."""
    tests = []
    for fname in sorted(os.listdir(HERE)):
        if not (fname.startswith("test_") and fname.endswith(".py")):
            continue
        try:
            module = importlib.import_module(fname[:-3])
        except Exception as exc:  # noqa: BLE001 - report it as a failing test
            def broken(ctx, exc=exc):
                raise harness.TestFailure("cannot import %s: %s" % (fname, one_line(exc)))
            tests.append((fname[len("test_"):-3] + ".import", broken))
            continue
        funcs = [f for n, f in inspect.getmembers(module, inspect.isfunction)
                 if n.startswith("test_") and f.__module__ == module.__name__]
        funcs.sort(key=lambda f: f.__code__.co_firstlineno)
        short = fname[len("test_"):-3]
        tests += [("%s.%s" % (short, f.__name__[len("test_"):]), f) for f in funcs]
    return tests


def one_line(exc):
    if isinstance(exc, TestTimeout):
        return "timed out"
    if isinstance(exc, harness.TestFailure):
        text = str(exc)
    else:
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        text = "%s: %s (%s:%d)" % (type(exc).__name__, exc, os.path.basename(frame.filename), frame.lineno)
    return " ".join(text.split())[:600]


def log_tails(directory, lines=15):
    out = []
    for name in sorted(os.listdir(directory)):
        if name.endswith(".log"):
            with open(os.path.join(directory, name), errors="replace") as f:
                rows = f.read().splitlines()[-lines:]
            out += ["    | %s:" % name] + ["    |   " + r[:300] for r in rows]
    return out


def run_one(name, fn, base, default_timeout, keep):
    """Runs one test; returns ('PASS'|'FAIL'|'SKIP', reason)."""
    reason = getattr(fn, "wharf_only", None)
    if reason and harness.SERVER_KIND != "wharf" and os.environ.get("E2E_RUN_ALL") != "1":
        return "SKIP", "wharf-only: " + reason
    directory = tempfile.mkdtemp(prefix=name.replace(".", "-")[:40] + "-", dir=base)
    ctx = harness.Context(name, directory)
    limit = int(getattr(fn, "timeout", default_timeout))
    status, why = "PASS", ""
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(limit)
    try:
        try:
            fn(ctx)
        finally:
            signal.alarm(0)
            signal.alarm(60)  # cleanup gets its own bound
            try:
                ctx.close()
            finally:
                signal.alarm(0)
    except harness.Skip as exc:
        status, why = "SKIP", str(exc)
    except TestTimeout:
        status, why = "FAIL", "timed out after %d s" % limit
    except BaseException as exc:  # noqa: BLE001 - a test's failure must not stop the run
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        status, why = "FAIL", one_line(exc)
        if os.environ.get("E2E_TRACEBACK") == "1":
            traceback.print_exc()
    if status == "FAIL":
        for row in log_tails(directory):
            print(row, file=sys.stderr)
        harness.copy_logs(directory, os.path.join(harness.REPO_ROOT, "tests", "out", "e2e", name))
    if not keep:
        shutil.rmtree(directory, ignore_errors=True)
    return status, why


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-k", action="append", default=[], help="run only tests whose name contains this")
    p.add_argument("--list", action="store_true", help="list test names and exit")
    p.add_argument("--keep", action="store_true", help="keep each test's temp directory")
    args = p.parse_args(argv)

    tests = [(n, f) for n, f in discover() if not args.k or any(k in n for k in args.k)]
    if args.list:
        for n, f in tests:
            print(n + ("  (wharf-only)" if getattr(f, "wharf_only", None) else ""))
        return 0

    # On SIGTERM (e.g. from `timeout`), unwind normally so the running test's processes are stopped.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    print("e2e: server %s (%s), %d tests" % (harness.SERVER_KIND, harness.SERVER_BIN, len(tests)), flush=True)
    base = tempfile.mkdtemp(prefix="we2e-", dir=os.environ.get("E2E_TMPDIR", "/tmp"))
    default_timeout = int(os.environ.get("E2E_TIMEOUT", "300"))
    counts = {"PASS": 0, "FAIL": 0, "SKIP": 0}
    durations = []
    failures = []
    try:
        for name, fn in tests:
            started = time.monotonic()
            status, why = run_one(name, fn, base, default_timeout, args.keep)
            counts[status] += 1
            line = "%s %s" % (status, name) + (": " + why if why else "")
            print(line, flush=True)
            if status == "FAIL":
                failures.append(line)
            durations.append((time.monotonic() - started, name))
    finally:
        harness.close_sessions()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    slowest = ", ".join("%s %.0fs" % (n, d) for d, n in sorted(durations, reverse=True)[:3])
    print("e2e: %.0f s in all; slowest: %s" % (sum(d for d, _ in durations), slowest or "-"), flush=True)
    for line in failures:  # again at the end, where a truncated log still shows them
        print("e2e: " + line, flush=True)
    print("e2e: %d passed, %d failed, %d skipped" % (counts["PASS"], counts["FAIL"], counts["SKIP"]), flush=True)
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
