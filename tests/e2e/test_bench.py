"""
test_bench.py -- ringmq-bench (bin/ringmq-bench) against a real broker:
short smoke scenarios (fanout QoS 1 open loop, pairs QoS 2 closed loop, a
connection storm) end with every message delivered exactly once, exit 0
and consistent JSON figures; a broker paused mid-run makes it report the
loss and exit 1; bad options exit 2.  ringmq-sendfloor (the kernel's
cost of one write per delivery) writes every frame in both modes, and
tools/bench-compare --floor prints it next to Mosquitto's figure.  MQTT 5 and shared subscriptions run
under BROKER=mosquitto only (ringmq does not speak them yet).

The binary is RINGMQ_BENCH_BIN, else ringmq-bench next to RINGMQ_BIN (so
`make SAN=1 test` runs the sanitizer build of both).
"""

import json
import os
import signal
import subprocess
import time

from harness import (
    IS_RINGMQ, REPO, Broker, check, check_eq, fail, ringmq_only, timeout)


def _bench_bin():
    b = os.environ.get("RINGMQ_BENCH_BIN")
    if not b:
        broker = os.environ.get("RINGMQ_BIN", "bin/ringmq")
        if not os.path.isabs(broker):
            broker = os.path.join(REPO, broker)
        b = os.path.join(os.path.dirname(broker), "ringmq-bench")
    if not os.access(b, os.X_OK):
        fail("%s not found or not executable (make, or set "
             "RINGMQ_BENCH_BIN)" % b)
    return b


def _tool_bin(name, env):
    """A tool of bin/: the env variable, else next to ringmq-bench."""
    t = os.environ.get(env) or os.path.join(
        os.path.dirname(_bench_bin()), name)
    if not os.access(t, os.X_OK):
        fail("%s not found or not executable (make, or set %s)" % (t, env))
    return t


def _start(b, args):
    cmd = [_bench_bin(), "-p", str(b.port), "--broker-pid",
           str(b.proc.pid), "--json", "--quiet"] + list(args)
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _finish(p, limit=40):
    """(exit status, parsed JSON, stderr) of a bench process."""
    try:
        out, err = p.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        fail("ringmq-bench did not finish within %d s: it must stop by "
             "itself" % limit)
    err = err.decode("utf-8", "replace")
    try:
        data = json.loads(out)
    except ValueError:
        fail("ringmq-bench --json printed no JSON (status %s): %r; stderr: "
             "%s" % (p.returncode, out[:300], err[-500:]))
    return p.returncode, data, err


def _bench(b, args, limit=40):
    return _finish(_start(b, args), limit)


def _check_clean(b, rc, d, err, receivers):
    """Exit 0 and every measured message delivered exactly once to each of
    its receivers, with figures that agree with each other."""
    m = d["messages"]
    check_eq(rc, 0, "exit status (stderr: %s)" % err.strip()[-300:])
    check(d["ok"] is True and d["setup_error"] is None, "ok / setup_error")
    check(m["sent"] > 0, "nothing was sent in the measured interval")
    check_eq(m["expected"], m["sent"] * receivers, "expected deliveries")
    check_eq(m["delivered"], m["expected"], "delivered")
    check_eq(m["lost"], 0, "lost")
    check_eq(m["duplicates"], 0, "duplicates")
    check_eq(m["unexpected"], 0, "unexpected")
    check_eq(m["streams_lossy"], 0, "streams with loss")
    check_eq(m["delivered_pct"], 100.0, "delivered %")
    check(d["interval"]["drain_complete"], "drain did not complete")
    lat = d["latency_us"]
    check_eq(lat["count"], m["delivered"], "latency samples")
    check(0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"]
          <= lat["p999"] <= lat["max"], "latency percentiles out of order: "
          "%r" % lat)
    check_eq(d["connections"]["failed"], 0, "failed connections")
    check_eq(d["connections"]["lost"], 0, "lost connections")
    _check_broker(b, d)


def _check_broker(b, d):
    br = d["broker"]
    check(br is not None, "no broker figures for --broker-pid")
    # ringmq: the supervisor, its frontends and fan-out workers; Mosquitto:
    # one process.
    want = 1
    if IS_RINGMQ:
        want += (b.ringmq_options["frontends"]
                 + b.ringmq_options["fanout_workers"])
    check_eq(br["processes"], want, "broker processes (the whole tree)")
    check(br["peak_rss_kb"] > 0, "broker peak RSS")
    check(br["cpu_us_after"] >= br["cpu_us_before"], "broker CPU went back")
    check_eq(br["cpu_us"], br["cpu_us_after"] - br["cpu_us_before"],
             "broker CPU delta")


@timeout(60)
def test_bench_fanout_qos1_smoke():
    """The issue's smoke run: 1 publisher at 100 msg/s to 20 subscribers,
    QoS 1, 2 s: about 200 messages, each delivered 20 times, exit 0."""
    with Broker() as b:
        rc, d, err = _bench(b, ["--scenario", "fanout", "-P", "1", "-S", "20",
                                "-q", "1", "-r", "100", "-d", "2",
                                "--warmup", "0"])
        _check_clean(b, rc, d, err, 20)
        m = d["messages"]
        check(180 <= m["sent"] <= 202, "sent %d messages in 2 s at 100/s"
              % m["sent"])
        check_eq(m["streams"], 20, "(publisher, subscriber) streams")
        check_eq(d["connections"]["ok"], 21, "connections")
        check_eq(d["connect_ms"]["count"], 21, "connect time samples")
        check(d["broker"]["cpu_us_per_msg"] > 0, "broker CPU per message")
        check(len(d["timeline"]) >= 1, "no timeline")


@timeout(60)
def test_bench_pairs_closed_loop_qos2():
    """5 pairs, QoS 2, closed loop with a window of 4, after a warm-up:
    only measured messages count, none is lost, none times out."""
    with Broker() as b:
        rc, d, err = _bench(b, ["--scenario", "pairs", "-P", "5", "-q", "2",
                                "-w", "4", "-d", "1", "--warmup", "0.5"])
        _check_clean(b, rc, d, err, 1)
        m = d["messages"]
        check_eq(m["streams"], 5, "streams")
        check_eq(m["window_timeouts"], 0, "window timeouts")
        check(m["sent_total"] > m["sent"], "warm-up messages were measured")
        check(m["sent"] >= 20, "closed loop sent only %d" % m["sent"])


@timeout(60)
def test_bench_storm():
    """Connection storm: rounds of 50 clients that connect and disconnect
    for 1 s; every connect succeeds and has a connect time."""
    with Broker() as b:
        rc, d, err = _bench(b, ["--scenario", "storm", "-S", "50", "-d", "1",
                                "--warmup", "0"])
        check_eq(rc, 0, "exit status (stderr: %s)" % err.strip()[-300:])
        c = d["connections"]
        check(c["storm_rounds"] >= 1, "no storm round")
        check_eq(c["failed"], 0, "failed connects")
        check_eq(c["ok"], 50 * c["storm_rounds"], "connects")
        check_eq(d["connect_ms"]["count"], c["ok"], "connect time samples")
        check(d["rates"]["connects_per_s"] > 0, "connects per second")
        check(d["broker"]["cpu_us_per_connect"] >= 0, "CPU per connect")


@timeout(60)
def test_bench_reports_loss_of_paused_broker():
    """The broker stopped (SIGSTOP) 1 s into a 2 s run: the bench reports
    the messages that never came as lost after its drain timeout, exits 1
    and still stops by itself."""
    with Broker() as b:
        p = _start(b, ["--scenario", "fanout", "-P", "1", "-S", "5", "-q",
                       "1", "-r", "100", "-d", "2", "--warmup", "0",
                       "--drain", "1"])
        time.sleep(1.0)
        os.killpg(b.proc.pid, signal.SIGSTOP)
        try:
            rc, d, err = _finish(p)
        finally:
            os.killpg(b.proc.pid, signal.SIGCONT)
        m = d["messages"]
        check_eq(rc, 1, "exit status with messages lost")
        check(d["ok"] is False, "ok is true despite loss")
        check(m["lost"] > 0, "no loss reported: %r" % m)
        check_eq(m["delivered"] + m["lost"], m["expected"],
                 "delivered + lost")
        check(not d["interval"]["drain_complete"], "drain said complete")
        check("lost" in err, "no reason on stderr: %r" % err)


@timeout(30)
def test_bench_bad_options_exit_2():
    """Bad values and impossible combinations are refused with a message
    and exit status 2, before any connection."""
    for args, says in (
            (["--scenario", "nope"], "--scenario"),
            (["-s", "8"], "-s"),
            (["-q", "3"], "-q"),
            (["-V", "4"], "-V"),
            (["-r", "10", "-w", "5"], "exclude"),
            (["--bogus"], "unknown option"),
            (["-h", "10.1.2.3"], "loopback"),
            (["--scenario", "pairs", "-P", "2", "-S", "3"], "pairs"),
    ):
        p = subprocess.run([_bench_bin()] + args, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=10)
        err = p.stderr.decode()
        check_eq(p.returncode, 2, "exit status of %s" % args)
        check(says in err, "%s: message %r does not mention %r"
              % (args, err, says))
        check_eq(p.stdout, b"", "stdout of %s" % args)


@timeout(60)
def test_bench_mqtt5_fanout():
    """The bench speaks MQTT 5 to the broker: a QoS 2 fan-out over v5
    connections is delivered whole, in order, without duplicates."""
    with Broker() as b:
        rc, d, err = _bench(b, ["-V", "5", "--scenario", "fanout", "-P", "2",
                                "-S", "4", "-q", "2", "-r", "50", "-d", "1",
                                "--warmup", "0"])
        _check_clean(b, rc, d, err, 4)
        check_eq(d["config"]["mqtt"], "5", "protocol")


@timeout(60)
def test_bench_mqtt5_shared():
    """MQTT 5 with a shared subscription: each message reaches exactly one
    subscriber of the group."""
    with Broker() as b:
        rc, d, err = _bench(b, ["-V", "5", "--scenario", "shared", "-P", "2",
                                "-S", "4", "-q", "1", "-r", "50", "-d", "1",
                                "--warmup", "0"])
        _check_clean(b, rc, d, err, 1)
        check_eq(d["config"]["mqtt"], "5", "protocol")
        check_eq(d["messages"]["streams"], 2, "streams (one per publisher)")


@timeout(60)
def test_sendfloor_writes_every_frame_in_both_modes():
    """ringmq-sendfloor: 20 sockets, 100 rounds a second for 0.5 s, with
    io_uring and with send(): every frame of every round written whole,
    the sender's CPU per frame reported, exit 0."""
    tool = _tool_bin("ringmq-sendfloor", "RINGMQ_SENDFLOOR_BIN")
    for mode in ("uring", "send"):
        p = subprocess.run([tool, "--json", "--mode", mode, "-n", "20", "-r",
                            "100", "-b", "93", "-d", "0.5", "--warmup",
                            "0.2"], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=30)
        check_eq(p.returncode, 0, "exit status (%s): %s"
                 % (mode, p.stderr.decode()[-300:]))
        d = json.loads(p.stdout)
        check_eq(d["mode"], mode, "mode")
        check_eq((d["sockets"], d["bytes"]), (20, 93), "sockets, bytes")
        check(40 <= d["rounds"] <= 60, "%s: %d rounds in 0.5 s at 100/s"
              % (mode, d["rounds"]))
        check_eq(d["frames"], 20 * d["rounds"], "%s: frames written whole"
                 % mode)
        check(d["cpu_us_per_frame"] > 0, "%s: CPU per frame" % mode)


def test_sendfloor_bad_options_exit_2():
    """Bad values are refused with a message naming the option and exit
    status 2."""
    tool = _tool_bin("ringmq-sendfloor", "RINGMQ_SENDFLOOR_BIN")
    for args, says in ((["-n", "0"], "-n"), (["--mode", "x"], "--mode"),
                       (["-d", "-1"], "-d"), (["--bogus"], "usage"),
                       (["extra"], "extra")):
        p = subprocess.run([tool] + args, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=10)
        err = p.stderr.decode()
        check_eq(p.returncode, 2, "exit status of %s" % args)
        check(says in err, "%s: message %r does not mention %r"
              % (args, err, says))


@timeout(120)
def test_bench_compare_floor_row():
    """tools/bench-compare --floor, F1 against ringmq alone, short: exit 0,
    the CPU row and the kernel floor row (io_uring and send()) carry
    numbers (what they say is a benchmark's business, not a test's)."""
    ringmq_only("runs bin/ringmq itself")
    env = dict(os.environ)
    env["RINGMQ_BENCH_BIN"] = _bench_bin()
    env["RINGMQ_SENDFLOOR_BIN"] = _tool_bin("ringmq-sendfloor",
                                            "RINGMQ_SENDFLOOR_BIN")
    env.setdefault("RINGMQ_BIN", "bin/ringmq")
    p = subprocess.run([os.path.join(REPO, "tools", "bench-compare"),
                        "--only", "F1", "--brokers", "ringmq", "--floor",
                        "-d", "1", "--warmup", "0.5", "--drain", "3"],
                       cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=110)
    out = p.stdout.decode()
    check_eq(p.returncode, 0, "exit status: %s" % p.stderr.decode()[-500:])
    rows = {}
    for line in out.splitlines():
        for label in ("broker CPU us/msg", "kernel floor us/msg"):
            if line.strip().startswith(label):
                rows[label] = line.split(label)[1].split()
    check("broker CPU us/msg" in rows and "kernel floor us/msg" in rows,
          "rows missing from:\n%s" % out)
    cpu = float(rows["broker CPU us/msg"][0])
    floor_uring, floor_send = (float(x) for x in
                               rows["kernel floor us/msg"][:2])
    check(cpu > 0 and floor_uring > 0 and floor_send > 0,
          "CPU %.3f, floor %.3f / %.3f us/msg" % (cpu, floor_uring,
                                                  floor_send))
