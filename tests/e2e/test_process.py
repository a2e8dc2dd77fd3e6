"""
test_process.py -- ringmq's processes: names in ps, clean stop on SIGTERM,
what happens when a child or the supervisor dies, configuration errors and
the command line, and no arena leak after a busy session.
"""

import os
import re
import signal
import socket
import subprocess
import tempfile
import time

from harness import (
    REPO, Broker, PahoClient, Skip, check, check_eq, free_port, raw_client,
    ringmq_only, timeout, wait_for)


def _bin():
    b = os.environ.get("RINGMQ_BIN", "bin/ringmq")
    return b if os.path.isabs(b) else os.path.join(REPO, b)


def _children(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                out.append(int(d))
        except (OSError, IndexError, ValueError):
            pass
    return out


def _cmdline(pid):
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        return f.read().rstrip(b"\0").replace(b"\0", b" ").decode()


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _port_free(port):
    """True when a new server could listen on port (SO_REUSEADDR, as
    every broker sets: closed connections in TIME_WAIT do not count)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


_wait = wait_for  # harness


def test_process_names():
    """Supervisor, 2 frontends and 2 workers name themselves in ps."""
    ringmq_only("process layout is ringmq's")
    with Broker() as b:
        names = sorted(_cmdline(p) for p in _children(b.proc.pid))
        check_eq(_cmdline(b.proc.pid), "ringmq: supervisor", "supervisor")
        check_eq(names, ["ringmq: fanout 0", "ringmq: fanout 1",
                         "ringmq: frontend 0", "ringmq: frontend 1"],
                 "children")


@timeout(30)
def test_sigterm_with_clients_exits_zero_quickly():
    """SIGTERM under connected clients: exit 0 within 5 s, no process
    left, the port free again."""
    ringmq_only("process layout is ringmq's")
    b = Broker().start()
    clients = [PahoClient(b.port, "term-%d" % i) for i in range(10)]
    for c in clients:
        c.connect()
        c.subscribe("t/#", 1)
    kids = _children(b.proc.pid)
    t0 = time.monotonic()
    b.proc.send_signal(signal.SIGTERM)
    rc = b.proc.wait(10)
    took = time.monotonic() - t0
    b._cleanup()
    for c in clients:
        c.disconnect()
    check_eq(rc, 0, "exit status after SIGTERM")
    check(took < 5.0, "stop took %.1f s" % took)
    check(not any(_alive(k) for k in kids), "children left running")
    check(_wait(lambda: _port_free(b.port), 2), "port still bound")


@timeout(30)
def test_dead_frontend_respawned_with_log_line():
    """A frontend killed with -9 is logged by name and respawned at once;
    the broker keeps serving on the same port."""
    ringmq_only("process layout is ringmq's")
    with Broker() as b:
        old = b.kill_child("frontend", 1)
        new = b.wait_child("frontend", 1, old)
        check(new != old, "same pid after respawn")
        check(_wait(lambda: "frontend 1 respawned" in b.log(), 5),
              "no respawn line in the log")
        log = b.log()
        check(re.search(r"frontend 1 \(pid %d\) killed by signal 9" % old,
                        log), "no log line names the dead frontend")
        for i in range(6):  # lands on both frontends
            c = raw_client(b.port, "after-respawn-%d" % i)
            c.disconnect()
            c.close()


@timeout(60)
def test_child_dying_during_start_up_backs_off():
    """A child that dies again within a second of its start waits before
    its next start (100 ms, then 200 ms, ...); one that ran longer is
    respawned at once.  The broker serves throughout."""
    ringmq_only("process layout is ringmq's")
    with Broker() as b:
        time.sleep(1.1)  # past start-up: this one is respawned at once
        pid = b.kill_child("frontend", 1)
        pid = b.wait_child("frontend", 1, pid)
        for _ in range(3):  # each within 1 s of the previous start
            b.kill_child("frontend", 1)
            pid = b.wait_child("frontend", 1, pid)
        log = b.log()
        for ms, n in ((100, 1), (200, 2), (400, 3)):
            check("frontend 1 died during start-up (%d times in a row): "
                  "respawning in %d ms" % (n, ms) in log,
                  "no %d ms backoff line in the log:\n%s" % (ms, log))
        time.sleep(1.2)  # a good run ends the series
        pid = b.wait_child("frontend", 1, b.kill_child("frontend", 1))
        check_eq(b.log().count("respawning in"), 3, "backoff lines")
        c = raw_client(b.port, "after-backoff")
        c.disconnect()
        c.close()


@timeout(30)
def test_supervisor_killed_children_exit():
    """kill -9 of the supervisor: every child notices and exits, so no
    orphan keeps the port."""
    ringmq_only("process layout is ringmq's")
    b = Broker().start()
    kids = _children(b.proc.pid)
    check_eq(len(kids), 4, "children")
    os.kill(b.proc.pid, signal.SIGKILL)
    b.proc.wait(5)
    gone = _wait(lambda: not any(_alive(k) for k in kids), 5)
    b._cleanup()
    if not gone:
        for k in kids:
            if _alive(k):
                os.kill(k, signal.SIGKILL)
    check(gone, "children still alive 5 s after the supervisor died")
    check(_wait(lambda: _port_free(b.port), 2), "port still bound")


def _run(args, conf=None):
    d = tempfile.mkdtemp(prefix="ringmq-e2e-")
    cmd = [_bin()] + args
    if conf is not None:
        path = os.path.join(d, "bad.conf")
        with open(path, "w") as f:
            f.write(conf)
        cmd += ["-c", path]
    p = subprocess.run(cmd, capture_output=True, timeout=10, cwd=d)
    return p.returncode, (p.stdout + p.stderr).decode(errors="replace")


def test_config_errors_exit_2_with_file_and_line():
    ringmq_only("exit codes and messages are ringmq's")
    port = free_port()
    rc, out = _run([], "listener %d 127.0.0.1\nno_such_key 1\n" % port)
    check_eq(rc, 2, "exit status for an unknown key")
    check(re.search(r"bad\.conf:2:.*no_such_key", out),
          "message names file, line and key: %r" % out)
    rc, out = _run([], "listener %d 127.0.0.1\nmax_inflight_messages x\n"
                   % port)
    check_eq(rc, 2, "exit status for a bad value")
    check("bad.conf:2:" in out, "message names file and line: %r" % out)
    rc, out = _run(["--no-such-option"])
    check_eq(rc, 2, "exit status for an unknown option")
    rc, out = _run(["-h"])
    check_eq(rc, 0, "exit status of -h")
    check("-c" in out and "-p" in out, "usage lists the options")


def test_port_in_use_by_another_broker_is_an_error():
    """A second broker on a port the first listens on exits 1 with
    "Address already in use", as Mosquitto does: every listening socket
    has SO_REUSEPORT, which must not let two brokers share a port (each
    would get some of the clients)."""
    with Broker() as b:
        rc, out = _run([], "listener %d 127.0.0.1\nadmin_socket none\n"
                       "allow_anonymous true\n" % b.port)
        check_eq(rc, 1, "exit status of the second broker")
        check("Address already in use" in out, "the reason: %r" % out[-600:])
        c = raw_client(b.port, "still-first")
        c.ping()
        c.disconnect()


def _mqtt_connects(family, host, port):
    """CONNECT (3.1.1, clean session) on host and port: CONNACK 0?"""
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        s.connect((host, port))
        s.sendall(b"\x10\x0e\x00\x04MQTT\x04\x02\x00\x3c\x00\x02id")
        return s.recv(4) == b"\x20\x02\x00\x00"
    except OSError:
        return False
    finally:
        s.close()


@timeout(30)
def test_listener_name_with_two_addresses_binds_both():
    """`listener PORT NAME` binds every address NAME resolves to, as
    Mosquitto does: here 127.0.0.1 and ::1, from an /etc/hosts of the
    test's own (a mount namespace; skipped where that is not allowed)."""
    ringmq_only("uses ringmq's binary directly")
    d = tempfile.mkdtemp(prefix="ringmq-e2e-")
    hosts = os.path.join(d, "hosts")
    with open(hosts, "w") as f:
        f.write("127.0.0.1 localhost\n127.0.0.1 dualhost\n::1 dualhost\n")
    probe = subprocess.run(["unshare", "-m", "sh", "-c",
                            "mount --bind %s /etc/hosts" % hosts],
                           capture_output=True)
    if probe.returncode != 0:
        raise Skip("needs unshare -m and mount (root)")
    port = free_port()
    conf = os.path.join(d, "dual.conf")
    with open(conf, "w") as f:
        f.write("listener %d dualhost\nallow_anonymous true\n"
                "admin_socket none\nlog_dest stderr\n" % port)
    log = open(os.path.join(d, "log"), "w+")
    p = subprocess.Popen(["unshare", "-m", "sh", "-c",
                          "mount --bind %s /etc/hosts && exec %s -c %s"
                          % (hosts, _bin(), conf)],
                         cwd=d, stdout=log, stderr=log,
                         start_new_session=True)
    try:
        check(_wait(lambda: _mqtt_connects(socket.AF_INET, "127.0.0.1",
                                           port), 5),
              "no CONNACK on 127.0.0.1")
        check(_mqtt_connects(socket.AF_INET6, "::1", port),
              "no CONNACK on ::1")
    finally:
        p.send_signal(signal.SIGTERM)
        rc = p.wait(10)
        log.seek(0)
        out = log.read()
    check_eq(rc, 0, "exit status after SIGTERM")
    check("dualhost (::1)" in out and "dualhost (127.0.0.1)" in out,
          "both addresses logged: %r" % out[:800])


@timeout(30)
def test_two_listeners_of_the_config_on_one_port():
    """`listener P` and `listener P 127.0.0.1` in one file: both open (the
    check for another process on the port runs before any socket of the
    broker's own is open)."""
    ringmq_only("uses ringmq's binary directly")
    port = free_port()
    d = tempfile.mkdtemp(prefix="ringmq-e2e-")
    conf = os.path.join(d, "two.conf")
    with open(conf, "w") as f:
        f.write("listener %d\nlistener %d 127.0.0.1\nallow_anonymous true\n"
                "admin_socket none\n" % (port, port))
    p = subprocess.Popen([_bin(), "-c", conf], cwd=d,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    try:
        check(_wait(lambda: _mqtt_connects(socket.AF_INET, "127.0.0.1",
                                           port), 5),
              "no CONNACK on 127.0.0.1 port %d" % port)
    finally:
        p.send_signal(signal.SIGTERM)
        rc = p.wait(10)
    check_eq(rc, 0, "exit status after SIGTERM")


_NO_IPV6_CHECK = """
import socket, sys, time
port = int(sys.argv[1])
for _ in range(50):
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect(("127.0.0.1", port))
        s.sendall(b"\\x10\\x0e\\x00\\x04MQTT\\x04\\x02\\x00\\x3c\\x00\\x02id")
        sys.exit(0 if s.recv(4) == b"\\x20\\x02\\x00\\x00" else 1)
    except OSError:
        time.sleep(0.1)
    finally:
        s.close()
sys.exit(2)
"""


@timeout(30)
def test_listener_name_skips_an_address_the_machine_cannot_bind():
    """A host name with an IPv6 and an IPv4 address on a machine without
    IPv6 (a network namespace with IPv6 disabled, as in many containers):
    the IPv6 address is skipped with a warning and the broker serves on
    IPv4 (binding only the first address used to be enough here)."""
    ringmq_only("uses ringmq's binary directly")
    d = tempfile.mkdtemp(prefix="ringmq-e2e-")
    hosts = os.path.join(d, "hosts")
    with open(hosts, "w") as f:
        f.write("127.0.0.1 localhost\n::1 dualhost\n127.0.0.1 dualhost\n")
    check_py = os.path.join(d, "check.py")
    with open(check_py, "w") as f:
        f.write(_NO_IPV6_CHECK)
    port = free_port()
    conf = os.path.join(d, "dual.conf")
    with open(conf, "w") as f:
        f.write("listener %d dualhost\nallow_anonymous true\n"
                "admin_socket none\nlog_dest stderr\n" % port)
    setup = ("mount --bind %s /etc/hosts && ip link set lo up && "
             "sysctl -qw net.ipv6.conf.all.disable_ipv6=1 "
             "net.ipv6.conf.lo.disable_ipv6=1" % hosts)
    probe = subprocess.run(["unshare", "-mn", "sh", "-c", setup],
                           capture_output=True)
    if probe.returncode != 0:
        raise Skip("needs unshare -mn, mount, ip and sysctl (root)")
    log = os.path.join(d, "log")
    script = ("%s && { %s -c %s > %s 2>&1 & pid=$!; /usr/bin/python3 %s %d; "
              "rc=$?; kill -TERM $pid; wait $pid; exit $rc; }"
              % (setup, _bin(), conf, log, check_py, port))
    r = subprocess.run(["unshare", "-mn", "sh", "-c", script], cwd=d,
                       capture_output=True, timeout=20)
    with open(log) as f:
        out = f.read()
    check_eq(r.returncode, 0, "CONNACK on 127.0.0.1 (log: %r)" % out[-800:])
    check("address ::1 skipped" in out, "the warning: %r" % out[-800:])


@timeout(30)
def test_port_option_without_config():
    """`ringmq -p PORT`: local-only listener, anonymous clients allowed."""
    ringmq_only("uses ringmq's binary directly")
    port = free_port()
    d = tempfile.mkdtemp(prefix="ringmq-e2e-")
    p = subprocess.Popen([_bin(), "-p", str(port)], cwd=d,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    try:
        ok = _wait(lambda: not _port_free(port), 5)
        check(ok, "broker did not listen on port %d" % port)
        c = raw_client(port, "port-opt")
        c.disconnect()
    finally:
        p.send_signal(signal.SIGTERM)
        rc = p.wait(10)
    check_eq(rc, 0, "exit status after SIGTERM")


@timeout(60)
def test_no_arena_blocks_left_after_busy_clean_sessions():
    """QoS 0/1/2 traffic, overlapping subscriptions, a retained message set
    and cleared, wills, takeover: once every clean-session client is gone,
    the arena holds no block."""
    ringmq_only("the arena report is ringmq's")
    b = Broker().start()
    subs = [PahoClient(b.port, "leak-sub-%d" % i) for i in range(6)]
    for i, s in enumerate(subs):
        s.connect()
        s.subscribe("leak/#", i % 3)
        s.subscribe("leak/+/x", 2)
    pub = PahoClient(b.port, "leak-pub")
    pub.connect()
    for q in (0, 1, 2):
        for i in range(30):
            pub.publish("leak/%d/x" % i, b"p" * (i * 40), qos=q)
    pub.publish("leak/ret", b"kept", qos=1, retain=True)
    late = PahoClient(b.port, "leak-late")
    late.connect()
    late.subscribe("leak/ret", 1)
    check_eq(late.get().payload, b"kept", "retained")
    pub.publish("leak/ret", b"", qos=1, retain=True)  # clears it
    for s in subs:
        s.get_n(90, 10)
    # a will, fired by an abrupt close, and a takeover
    w = raw_client(b.port, "leak-will",
                   will={"topic": "leak/will", "payload": b"gone", "qos": 1})
    w.abort()
    t1 = raw_client(b.port, "leak-take")
    t2 = raw_client(b.port, "leak-take")
    t1.wait_closed()
    t2.disconnect()
    for c in subs + [pub, late]:
        c.disconnect()
    time.sleep(1.0)
    b.stop()
    m = re.search(r"arena at exit: (\d+) blocks", b.log())
    check(m, "no arena report in the log")
    check_eq(int(m.group(1)), 0, "arena blocks in use at exit")


@timeout(30)
def test_daemon_pid_file_and_user():
    """-d detaches and returns at once, pid_file names the supervisor, and
    (as root) `user nobody` drops the privileges of every process."""
    ringmq_only("uses ringmq's binary directly")
    port = free_port()
    d = tempfile.mkdtemp(prefix="ringmq-e2e-")
    os.chmod(d, 0o755)
    pidf = os.path.join(d, "ringmq.pid")
    conf = os.path.join(d, "d.conf")
    lines = ["listener %d 127.0.0.1" % port, "allow_anonymous true",
             "pid_file %s" % pidf, "frontends 2", "fanout_workers 2"]
    as_root = os.geteuid() == 0
    if as_root:
        lines.append("user nobody")
    with open(conf, "w") as f:
        f.write("\n".join(lines) + "\n")
    p = subprocess.run([_bin(), "-d", "-c", conf], cwd=d, timeout=10,
                       capture_output=True)
    check_eq(p.returncode, 0, "exit status of the -d parent")
    check(_wait(lambda: os.path.exists(pidf), 5), "no pid file")
    with open(pidf) as f:
        sup = int(f.read().strip())
    try:
        check(_wait(lambda: not _port_free(port), 5), "not listening")
        check_eq(_cmdline(sup), "ringmq: supervisor", "pid file names")
        # The listeners open before the children are forked: wait for all.
        _wait(lambda: len(_children(sup)) == 4, 5)
        kids = _children(sup)
        check_eq(len(kids), 4, "children of the daemon")
        if as_root:
            for k in [sup] + kids:
                with open("/proc/%d/status" % k) as f:
                    uid = [ln for ln in f if ln.startswith("Uid:")][0]
                check_eq(int(uid.split()[1]), 65534, "uid of %d" % k)
        c = raw_client(port, "daemon-client")
        c.disconnect()
    finally:
        os.kill(sup, signal.SIGTERM)
    check(_wait(lambda: not _alive(sup), 5), "daemon did not stop")
    check(_wait(lambda: _port_free(port), 3), "port still bound")
