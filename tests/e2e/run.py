#!/usr/bin/python3
"""
run.py -- runs the end-to-end tests: every test_* function in
tests/e2e/test_*.py, each in a child process of its own (so a hang or a crash
costs one test, and its broker is killed with it), under a per-test timeout.

    /usr/bin/python3 tests/e2e/run.py [-j N] [-v] [--list] [FILTER ...]

FILTER keeps the tests whose "file::name" contains one of the substrings.
Prints "PASS file::name", "FAIL file::name: reason" or "SKIP file::name:
reason" (a ringmq-only test under BROKER=mosquitto) per test, and ends with
"e2e: N passed, M failed".  Exits 1 when a test failed or none ran.
Environment: BROKER (ringmq|mosquitto), RINGMQ_BIN, E2E_JOBS (default 1),
E2E_KEEP_LOGS (keep broker logs in /tmp).
"""

import argparse
import importlib
import inspect
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_TIMEOUT = 60
SYSTEM_PYTHON = "/usr/bin/python3"

try:
    import paho.mqtt.client  # noqa: F401
except ImportError:
    # Another python3 came first on PATH: the tests need Debian's paho.
    if os.path.realpath(sys.executable) != os.path.realpath(SYSTEM_PYTHON) \
            and os.path.exists(SYSTEM_PYTHON):
        os.execv(SYSTEM_PYTHON, [SYSTEM_PYTHON] + sys.argv)
    raise

sys.path.insert(0, HERE)


def discover(filters):
    """[(file, name, timeout)] in file order, then definition order."""
    tests = []
    for fname in sorted(os.listdir(HERE)):
        if not (fname.startswith("test_") and fname.endswith(".py")):
            continue
        mod = importlib.import_module(fname[:-3])
        fns = [f for n, f in vars(mod).items()
               if n.startswith("test_") and inspect.isfunction(f)
               and f.__module__ == mod.__name__]
        fns.sort(key=lambda f: f.__code__.co_firstlineno)
        for f in fns:
            full = "%s::%s" % (fname, f.__name__)
            if filters and not any(s in full for s in filters):
                continue
            tests.append((fname, f.__name__,
                          getattr(f, "timeout", DEFAULT_TIMEOUT)))
    return tests


def child(fname, name, result_file):
    """Runs one test in this process; writes 'PASS', 'SKIP reason' or
    'FAIL reason' to result_file."""
    import harness
    outcome = "FAIL test did not finish"
    try:
        mod = importlib.import_module(fname[:-3])
        getattr(mod, name)()
        outcome = "PASS"
    except harness.Skip as e:
        outcome = "SKIP %s" % e
    except BaseException as e:  # noqa: B902 -- report everything
        traceback.print_exc()
        for b in harness.started_brokers:
            print("---- broker log (port %s), last lines:" % b.port)
            print(b.log_tail(30))
        msg = str(e).strip() or type(e).__name__
        first = msg.splitlines()[0] if msg else type(e).__name__
        if not isinstance(e, AssertionError):
            first = "%s: %s" % (type(e).__name__, first)
        outcome = "FAIL %s" % first
    finally:
        try:
            harness.cleanup_all()
        except BaseException as e:  # noqa: B902
            if outcome == "PASS":
                outcome = "FAIL cleanup: %s" % e
        with open(result_file, "w") as f:
            f.write(outcome)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def clean_after(runner_file, child_pid):
    """Kills the test's process group and the brokers' groups it noted, and
    removes the brokers' temp dirs (a test that hung or died cannot)."""
    pgids, dirs = {child_pid}, []
    try:
        with open(runner_file) as f:
            for line in f:
                kind, _, value = line.strip().partition(" ")
                if kind == "pgid":
                    pgids.add(int(value))
                elif kind == "dir":
                    dirs.append(value)
    except (OSError, ValueError):
        pass
    for g in pgids:
        try:
            os.killpg(g, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    if not os.environ.get("E2E_KEEP_LOGS"):
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)


def run_one(fname, name, tmo):
    """Returns (status, reason, output) with status PASS, FAIL or SKIP."""
    tmpdir = tempfile.mkdtemp(prefix="ringmq-e2e-run-")
    result_file = os.path.join(tmpdir, "result")
    runner_file = os.path.join(tmpdir, "noted")
    out_file = os.path.join(tmpdir, "output")
    env = dict(os.environ, E2E_RUNNER_FILE=runner_file)
    with open(out_file, "wb") as out:
        p = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--child", fname,
             name, result_file],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env=env, start_new_session=True)
        try:
            p.wait(tmo)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
        # Whatever the test left behind (a broker on a hang) goes too.
        clean_after(runner_file, p.pid)
        p.wait()
    with open(out_file, "rb") as f:
        output = f.read().decode("utf-8", "replace")
    try:
        with open(result_file) as f:
            res = f.read()
    except OSError:
        res = ""
    for fn in (result_file, runner_file, out_file):
        try:
            os.unlink(fn)
        except OSError:
            pass
    try:
        os.rmdir(tmpdir)
    except OSError:
        pass
    if timed_out:
        return "FAIL", "timed out after %d s" % tmo, output
    if not res:
        return "FAIL", "test process died (status %s)" % p.returncode, output
    status, _, reason = res.partition(" ")
    return status, reason, output


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-j", type=int,
                    default=int(os.environ.get("E2E_JOBS", "1")),
                    help="tests run at once (default 1)")
    ap.add_argument("-v", action="store_true",
                    help="show the output of passing tests too")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("filters", nargs="*")
    a = ap.parse_args()
    if a.child:
        child(*a.child)
        return 0

    tests = discover(a.filters)
    if a.list:
        for f, n, t in tests:
            print("%s::%s (timeout %d s)" % (f, n, t))
        return 0
    broker = os.environ.get("BROKER", "ringmq")
    if broker == "ringmq":
        # One clear failure instead of one per test.
        import harness
        try:
            harness.Broker().command()
        except harness.TestFailure as e:
            print("FAIL e2e: %s" % e)
            print("e2e: 0 passed, 1 failed")
            return 1

    counts = {"PASS": 0, "FAIL": 0, "SKIP": 0}
    lock = threading.Lock()
    t0 = time.monotonic()
    queue = list(tests)

    def report(fname, name, status, reason, output, secs):
        with lock:
            counts[status if status in counts else "FAIL"] += 1
            full = "%s::%s" % (fname, name)
            if status == "PASS":
                print("PASS %s (%.1f s)" % (full, secs), flush=True)
            else:
                print("%s %s: %s" % (status if status in counts else "FAIL",
                                     full, reason), flush=True)
            if output and (status == "FAIL" or a.v):
                for line in output.rstrip().splitlines()[-80:]:
                    print("    | " + line)
                sys.stdout.flush()

    def worker():
        while True:
            with lock:
                if not queue:
                    return
                fname, name, tmo = queue.pop(0)
            s = time.monotonic()
            status, reason, output = run_one(fname, name, tmo)
            report(fname, name, status, reason, output, time.monotonic() - s)

    threads = [threading.Thread(target=worker) for _ in range(max(1, a.j))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    if counts["SKIP"]:
        print("(%d skipped: ringmq-only under BROKER=%s)"
              % (counts["SKIP"], broker))
    print("(broker %s, %.0f s)" % (broker, time.monotonic() - t0))
    print("e2e: %d passed, %d failed" % (counts["PASS"], counts["FAIL"]),
          flush=True)
    return 1 if counts["FAIL"] or not tests else 0


if __name__ == "__main__":
    sys.exit(main())
