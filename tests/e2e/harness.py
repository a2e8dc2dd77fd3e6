"""
harness.py -- what every end-to-end test uses: a broker started on a free
loopback port with a generated config, paho clients, a raw-socket MQTT client
for byte-exact and malformed traffic, an asyncio raw client for many
connections, the Mosquitto command-line tools, and frontend detection from the
broker log.

The broker is ringmq (BROKER=ringmq, the default; binary RINGMQ_BIN, default
bin/ringmq) or the Debian Mosquitto (BROKER=mosquitto), so the tests can be
checked against a known-good broker.  Only the standard library and
paho-mqtt 1.6 are used; run with /usr/bin/python3.
"""

import asyncio
import atexit
import json
import os
import queue
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

import paho.mqtt.client as paho

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

BROKER = os.environ.get("BROKER", "ringmq")
if BROKER not in ("ringmq", "mosquitto"):
    raise SystemExit("BROKER must be ringmq or mosquitto, not %r" % BROKER)
MOSQUITTO_BIN = "/usr/sbin/mosquitto"

IS_RINGMQ = BROKER == "ringmq"
IS_MOSQUITTO = BROKER == "mosquitto"

STOP_TIMEOUT = 5.0
READY_TIMEOUT = 5.0

# Packet types.
CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = range(1, 8)
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK = 8, 9, 10, 11
PINGREQ, PINGRESP, DISCONNECT = 12, 13, 14

PACKET_NAMES = {
    1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC",
    6: "PUBREL", 7: "PUBCOMP", 8: "SUBSCRIBE", 9: "SUBACK",
    10: "UNSUBSCRIBE", 11: "UNSUBACK", 12: "PINGREQ", 13: "PINGRESP",
    14: "DISCONNECT", 15: "AUTH",
}


class TestFailure(AssertionError):
    pass


class Skip(Exception):
    """Raised by a test that does not apply to the broker under test."""


def fail(msg):
    raise TestFailure(msg)


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def check_eq(got, want, what):
    if got != want:
        raise TestFailure("%s: got %r, want %r" % (what, got, want))


def ringmq_only(why):
    """Skips the calling test under Mosquitto; why says what Mosquitto does
    differently.  E2E_NO_SKIP=1 runs it anyway, to see Mosquitto fail it."""
    if not IS_RINGMQ and not os.environ.get("E2E_NO_SKIP"):
        raise Skip("ringmq-only: " + why)


def ringmq_checks():
    """True when the assertions a test marks ringmq-only are to be made:
    under ringmq, or with E2E_NO_SKIP=1 (to see Mosquitto fail them).  For
    a test whose other assertions hold under Mosquitto too; say next to
    the call what Mosquitto does differently."""
    return IS_RINGMQ or bool(os.environ.get("E2E_NO_SKIP"))


def timeout(seconds):
    """Decorator: per-test timeout for run.py (default 60 s)."""
    def deco(fn):
        fn.timeout = seconds
        return fn
    return deco


def _raise_fd_limit(want=8192):
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < want:
            new = want if hard == resource.RLIM_INFINITY else min(want, hard)
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    except (ImportError, ValueError, OSError):
        pass


_raise_fd_limit()


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to 0)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


# ---------------------------------------------------------------- broker

_live_brokers = []
started_brokers = []  # every Broker started in this process, in order

# "New client connected from 127.0.0.1:54321 as ID (p2, c1, k60, fe 1)."
# (Mosquitto: no "fe"; either may add fields such as u'user'.)
_CONNECTED_RE = re.compile(
    r"New client connected from (\S+) as (\S+) \(([^)]*)\)")


class Broker:
    """
    A broker process on a free loopback port.

    options: extra config keys for both brokers ({"max_inflight_messages":
    5}); a value of None removes a default key.  ringmq_options: keys only
    ringmq understands (frontends, fanout_workers, connect_timeout, ...).
    Use as a context manager, or call start() and stop().
    """

    def __init__(self, options=None, ringmq_options=None, listeners=None,
                 env=None):
        # env: extra environment variables for the broker (crash points).
        # listeners: more listeners after the first (plain MQTT) one, each
        # a dict of its options ({"protocol": "websockets"}, {"certfile":
        # ...}); their ports are in self.ports, in the same order.
        self.listeners = [dict(ls) for ls in (listeners or [])]
        self.env = dict(env or {})
        self.ports = []
        self.options = dict(options or {})
        self.ringmq_options = {"frontends": 2, "fanout_workers": 2}
        self.ringmq_options.update(ringmq_options or {})
        self.port = None
        self.proc = None
        self.dir = None
        self.conf_path = None
        self.log_path = None
        self._logf = None
        self.exit_code = None
        self.start_pids = set()
        self.admin_socket = None  # ringmq: the admin socket (in self.dir)

    # -- lifecycle
    def config_text(self):
        lines = ["listener %d 127.0.0.1" % self.port, "allow_anonymous true"]
        keys = {"log_type": "all", "log_dest": "stderr"}
        keys.update(self.options)
        if IS_RINGMQ:
            keys.update(self.ringmq_options)
        for k, v in keys.items():
            if v is None:
                continue
            if isinstance(v, bool):
                v = "true" if v else "false"
            if isinstance(v, (list, tuple)):
                for item in v:
                    lines.append("%s %s" % (k, item))
            else:
                lines.append("%s %s" % (k, v))
        # Listener options apply to the listener line above them: last.
        for port, ls in zip(self.ports, self.listeners):
            lines.append("listener %d 127.0.0.1" % port)
            for k, v in ls.items():
                if isinstance(v, bool):
                    v = "true" if v else "false"
                lines.append("%s %s" % (k, v))
        return "\n".join(lines) + "\n"

    def command(self):
        if IS_RINGMQ:
            b = os.environ.get("RINGMQ_BIN", "bin/ringmq")
            if not os.path.isabs(b):
                # Relative to the current directory, else to the repository.
                cand = os.path.abspath(b)
                b = cand if os.path.exists(cand) else os.path.join(REPO, b)
            if not os.access(b, os.X_OK):
                fail("broker binary %s not found or not executable "
                     "(set RINGMQ_BIN, or BROKER=mosquitto)" % b)
            return [b, "-c", self.conf_path]
        return [MOSQUITTO_BIN, "-c", self.conf_path]

    def start(self):
        self.dir = tempfile.mkdtemp(prefix="ringmq-e2e-")
        started_brokers.append(self)
        _note_for_runner("dir", self.dir)
        self.conf_path = os.path.join(self.dir, "broker.conf")
        self.log_path = os.path.join(self.dir, "broker.log")
        if IS_RINGMQ and "admin_socket" not in self.ringmq_options:
            # In the temp dir: brokers of parallel tests never share one.
            self.ringmq_options["admin_socket"] = os.path.join(self.dir,
                                                               "admin.sock")
        if IS_RINGMQ:
            self.admin_socket = self.ringmq_options["admin_socket"]
        last_err = None
        for _attempt in range(3):
            self.port = free_port()
            self.ports = [free_port() for _ in self.listeners]
            with open(self.conf_path, "w") as f:
                f.write(self.config_text())
            self._logf = open(self.log_path, "ab")
            env = dict(os.environ)
            env.update(self.env)
            self.proc = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=self._logf,
                stderr=self._logf, cwd=self.dir, start_new_session=True,
                env=env)
            _live_brokers.append(self)
            _note_for_runner("pgid", self.proc.pid)
            try:
                self._wait_ready()
                self.start_pids = _group_pids(self.proc.pid)
                return self
            except TestFailure as e:
                last_err = e
                self._kill_hard()
                # A port stolen between free_port() and bind: try another.
                if "Address already in use" not in self.log():
                    break
        raise last_err

    def _wait_ready(self):
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                fail("broker exited with %s during start-up; log:\n%s"
                     % (self.proc.returncode, self.log_tail()))
            try:
                s = socket.create_connection(("127.0.0.1", self.port),
                                             timeout=0.5)
                s.close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            fail("broker did not accept connections on port %d within %.0f s;"
                 " log:\n%s" % (self.port, READY_TIMEOUT, self.log_tail()))
        # The port accepts: now check that it speaks MQTT.
        while True:
            try:
                c = RawClient(self.port, timeout=1.0)
                rc = c.connect("e2e-ready-probe", check=False)[1]
                c.disconnect()
                c.close()
                if rc == 0:
                    return
            except (TestFailure, OSError):
                pass
            if time.monotonic() > deadline:
                fail("broker accepts TCP on port %d but answers no CONNECT; "
                     "log:\n%s" % (self.port, self.log_tail()))
            time.sleep(0.05)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def children(self):
        """ringmq: {("frontend", i) or ("fanout", i): pid} of the running
        children, from their process titles ("ringmq: frontend 0")."""
        out = {}
        for pid in _group_pids(self.proc.pid):
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    title = f.read().split(b"\0")[0].decode(errors="replace")
            except OSError:
                continue
            m = re.match(r"ringmq: (frontend|fanout) (\d+)", title)
            if m:
                out[(m.group(1), int(m.group(2)))] = pid
        return out

    def allow_child_deaths(self):
        """Children of this broker die on purpose (crash points): stop()
        does not report them."""
        self.start_pids = set()
        self._deaths_allowed = True

    def kill_child(self, role, index, sig=signal.SIGKILL):
        """Sends sig to child (role, index); its death is then expected
        (not reported by stop()).  Returns the pid."""
        pid = self.children().get((role, index))
        if pid is None:
            fail("no running %s %d to kill" % (role, index))
        self.start_pids.discard(pid)
        os.kill(pid, sig)
        return pid

    def expect_restart(self, role, index):
        """The child (role, index) is about to be restarted on purpose
        (admin restart): its death is not reported by stop()."""
        pid = self.children().get((role, index))
        if pid is not None:
            self.start_pids.discard(pid)
        return pid

    def wait_child(self, role, index, old_pid, timeout=10.0):
        """Waits until (role, index) runs with a pid other than old_pid;
        returns the new pid (then watched like the others)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = self.children().get((role, index))
            if pid is not None and pid != old_pid:
                if not getattr(self, "_deaths_allowed", False):
                    self.start_pids.add(pid)
                return pid
            time.sleep(0.05)
        fail("%s %d was not respawned within %.0f s; log tail:\n%s"
             % (role, index, timeout, self.log_tail()))

    def stop(self):
        """SIGTERM, wait up to 5 s, else kill -9.  Fails when the broker
        had already died, did not exit in time, or (ringmq) exited non-zero
        or left processes behind."""
        if self.proc is None:
            return
        problems = []
        if self.proc.poll() is not None:
            problems.append("broker died during the test (exit status %s)"
                            % self.proc.returncode)
        else:
            # A child (frontend, worker) that vanished was a crash, even if
            # the supervisor replaced it.
            gone = self.start_pids - _group_pids(self.proc.pid)
            if gone:
                problems.append("broker process(es) %s died during the test"
                                % sorted(gone))
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                problems.append("broker did not exit within %.0f s of SIGTERM"
                                % STOP_TIMEOUT)
                self._kill_hard()
        self.exit_code = self.proc.returncode
        if not problems and self.exit_code != 0:
            msg = "broker exited with status %s after SIGTERM" % self.exit_code
            if IS_RINGMQ:
                problems.append(msg)
        # Children (ringmq frontends and workers) must not outlive it.
        deadline = time.monotonic() + 2.0
        while _pgid_alive(self.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _pgid_alive(self.proc.pid):
            problems.append("broker processes were left running after the "
                            "main process exited")
            _killpg(self.proc.pid)
        self._cleanup()
        if problems:
            fail("; ".join(problems) + "; log tail:\n" + self.log_tail())

    def _kill_hard(self):
        _killpg(self.proc.pid)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        if self in _live_brokers:
            _live_brokers.remove(self)
        if self._logf:
            self._logf.close()
            self._logf = None

    def _cleanup(self):
        # The temp dir (with the log) stays until cleanup_all(), so a
        # failing test can still show the log.
        if self in _live_brokers:
            _live_brokers.remove(self)
        if self._logf:
            self._logf.close()
            self._logf = None

    def __enter__(self):
        return self.start()

    def __exit__(self, et, ev, tb):
        if et is not None:
            # The test already failed: stop without hiding its error,
            # but keep a broker death visible.
            try:
                self.stop()
            except TestFailure as e:
                if "died" in str(e) or "did not exit" in str(e):
                    raise TestFailure("%s (and: %s)" % (ev, e)) from ev
            return False
        self.stop()
        return False

    # -- log
    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, n=40):
        return "\n".join(self.log().splitlines()[-n:])

    def log_mark(self):
        """Position in the log; pass to frontend_of(since=...)."""
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def connections(self, since=0):
        """[(client_id, fields)] for each 'New client connected' line."""
        with open(self.log_path, "rb") as f:
            f.seek(since)
            text = f.read().decode("utf-8", "replace")
        out = []
        for m in _CONNECTED_RE.finditer(text):
            fields = {"addr": m.group(1), "proto": None, "clean": None,
                      "keepalive": None, "fe": None}
            for tok in m.group(3).split(", "):
                for key, pfx in (("proto", "p"), ("clean", "c"),
                                 ("keepalive", "k"), ("fe", "fe ")):
                    if tok.startswith(pfx) and tok[len(pfx):].isdigit():
                        fields[key] = int(tok[len(pfx):])
            out.append((m.group(2), fields))
        return out

    def connect_info(self, client_id, since=0, timeout=5.0):
        """Fields of the first 'New client connected' line for client_id
        after log position since; fails when none appears in time."""
        deadline = time.monotonic() + timeout
        while True:
            for cid, fields in self.connections(since):
                if cid == client_id:
                    return fields
            if time.monotonic() > deadline:
                fail("no 'New client connected ... as %s' in the broker log "
                     "within %.0f s" % (client_id, timeout))
            time.sleep(0.02)

    def frontend_of(self, client_id, since=0, timeout=5.0):
        """The frontend index ('fe N') the client landed on, from the log;
        None under Mosquitto, which has no frontends."""
        if not IS_RINGMQ:
            return None
        fields = self.connect_info(client_id, since, timeout)
        if fields["fe"] is None:
            fail("ringmq log line for %s carries no 'fe N'" % client_id)
        return fields["fe"]


_runner_file = os.environ.get("E2E_RUNNER_FILE")


def _note_for_runner(kind, value):
    """Tells run.py which process groups to kill ("pgid N") and which temp
    dirs to remove ("dir PATH") if this test hangs or dies."""
    if _runner_file:
        with open(_runner_file, "a") as f:
            f.write("%s %s\n" % (kind, value))


def _group_pids(pgid):
    """Pids of the processes in process group pgid (from /proc)."""
    pids = set()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...: comm may hold spaces.
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != "Z":
            pids.add(int(d))
    return pids


def _pgid_alive(pgid):
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _killpg(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def cleanup_all():
    """Kills brokers still running (a failed or interrupted test) and removes
    their temp dirs unless E2E_KEEP_LOGS is set.  run.py calls it after each
    test."""
    for b in list(_live_brokers):
        if b.proc is not None:
            b._kill_hard()
    _live_brokers.clear()
    if os.environ.get("E2E_KEEP_LOGS"):
        for b in started_brokers:
            print("broker log kept: %s" % b.log_path)
    else:
        for b in started_brokers:
            shutil.rmtree(b.dir, ignore_errors=True)
    started_brokers.clear()


# A script that dies without stopping its broker (run.py also kills the
# process groups of a test that hangs).
atexit.register(cleanup_all)


# ---------------------------------------------------------- wire encoding

def enc_varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        if n:
            b |= 0x80
        out.append(b)
        if not n:
            return bytes(out)


def enc_str(s):
    if isinstance(s, str):
        s = s.encode("utf-8")
    return struct.pack("!H", len(s)) + s


def packet(first_byte, body=b""):
    return bytes([first_byte]) + enc_varint(len(body)) + body


def enc_connect(client_id, clean=True, keepalive=60, will=None,
                username=None, password=None, proto_name="MQTT", level=4,
                flags_extra=0, props_block=b"", will_props_block=b""):
    """will: dict(topic, payload, qos=0, retain=False).  For MQTT 5
    (mqtt5_wire.enc_connect5): props_block, the encoded CONNECT properties
    after the keep-alive, and will_props_block before the will topic."""
    flags = flags_extra
    if clean:
        flags |= 0x02
    payload = enc_str(client_id)
    if will is not None:
        flags |= 0x04 | (will.get("qos", 0) << 3)
        if will.get("retain"):
            flags |= 0x20
        payload += (will_props_block + enc_str(will["topic"])
                    + enc_str(will.get("payload", b"")))
    if username is not None:
        flags |= 0x80
        payload += enc_str(username)
    if password is not None:
        flags |= 0x40
        payload += enc_str(password)
    body = (enc_str(proto_name) + bytes([level, flags])
            + struct.pack("!H", keepalive) + props_block + payload)
    return packet(0x10, body)


def enc_publish(topic, payload=b"", qos=0, pid=None, retain=False, dup=False):
    if isinstance(payload, str):
        payload = payload.encode()
    first = 0x30 | (qos << 1) | (0x08 if dup else 0) | (0x01 if retain else 0)
    body = enc_str(topic)
    if qos > 0:
        body += struct.pack("!H", pid if pid is not None else 1)
    return packet(first, body + payload)


def enc_ack(ptype, pid):
    flags = 0x02 if ptype == PUBREL else 0
    return packet((ptype << 4) | flags, struct.pack("!H", pid))


def enc_subscribe(pid, entries, flags=0x02):
    """entries: [(filter, qos)]."""
    body = struct.pack("!H", pid)
    for f, q in entries:
        body += enc_str(f) + bytes([q])
    return packet(0x80 | flags, body)


def enc_unsubscribe(pid, filters, flags=0x02):
    body = struct.pack("!H", pid)
    for f in filters:
        body += enc_str(f)
    return packet(0xA0 | flags, body)


PINGREQ_BYTES = b"\xc0\x00"
DISCONNECT_BYTES = b"\xe0\x00"


class Packet:
    """A packet read from the broker.  For PUBLISH: topic, payload, qos, dup,
    retain, pid.  For acks: pid.  For CONNACK: session_present, rc.  For
    SUBACK: pid, codes."""

    def __init__(self, first, body):
        self.first = first
        self.type = first >> 4
        self.flags = first & 0x0F
        self.body = body
        self.pid = None
        if self.type == PUBLISH:
            self.qos = (self.flags >> 1) & 3
            self.dup = bool(self.flags & 0x08)
            self.retain = bool(self.flags & 0x01)
            tlen = struct.unpack("!H", body[:2])[0]
            self.topic = body[2:2 + tlen].decode("utf-8", "replace")
            pos = 2 + tlen
            if self.qos > 0:
                self.pid = struct.unpack("!H", body[pos:pos + 2])[0]
                pos += 2
            self.payload = body[pos:]
        elif self.type == CONNACK:
            self.session_present = body[0] & 1 if len(body) > 0 else None
            self.rc = body[1] if len(body) > 1 else None
        elif self.type in (PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK):
            if len(body) >= 2:
                self.pid = struct.unpack("!H", body[:2])[0]
        elif self.type == SUBACK:
            self.pid = struct.unpack("!H", body[:2])[0]
            self.codes = list(body[2:])

    @property
    def name(self):
        return PACKET_NAMES.get(self.type, "type%d" % self.type)

    def __repr__(self):
        if self.type == PUBLISH:
            return ("PUBLISH(topic=%r, payload=%r, qos=%d, dup=%d, retain=%d,"
                    " pid=%r)" % (self.topic, self.payload[:40], self.qos,
                                   self.dup, self.retain, self.pid))
        return "%s(flags=%d, body=%r)" % (self.name, self.flags, self.body)


class Closed(Exception):
    """The broker closed the connection."""


class RawClient:
    """A blocking MQTT client that writes and reads packets byte for byte."""

    def __init__(self, port, timeout=5.0, host="127.0.0.1", rcvbuf=None):
        """rcvbuf: SO_RCVBUF set before connecting (a small one makes a
        client whose socket fills up fast: a slow reader)."""
        self.port = port
        self.timeout = timeout
        if rcvbuf is None:
            self.sock = socket.create_connection((host, port),
                                                 timeout=timeout)
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.sock.settimeout(timeout)
            self.sock.connect((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.stash = []  # packets read ahead by ack(), returned first
        self.closed = False
        self.client_id = None
        self.next_pid = 1

    def send(self, data):
        self.sock.sendall(data)

    def try_send(self, data):
        """send() that ignores a connection the broker already closed."""
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def _recv_some(self, deadline):
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                return None
            try:
                data = self.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                data = b""
            except socket.timeout:
                continue
            if not data:
                self.closed = True
                raise Closed()
            return data

    def _take_packet(self):
        b = self.buf
        if len(b) < 2:
            return None
        mult, value, i = 1, 0, 1
        while True:
            if i >= len(b):
                return None
            byte = b[i]
            value += (byte & 0x7F) * mult
            mult *= 128
            i += 1
            if not byte & 0x80:
                break
            if i > 4:
                fail("broker sent a remaining length longer than 4 bytes")
        if len(b) < i + value:
            return None
        p = Packet(b[0], b[i:i + value])
        self.buf = b[i + value:]
        return p

    def read(self, timeout=None):
        """Next packet, or None after timeout seconds.  Raises Closed when
        the broker closed the connection first."""
        if self.stash:
            return self.stash.pop(0)
        return self._read_wire(timeout)

    def read_until_quiet(self, quiet=1.0, ack=False):
        """Every packet until none came for quiet seconds; with ack, each
        PUBLISH is acknowledged as it arrives (so a window can move on)."""
        got = []
        while True:
            p = self.read(quiet)
            if p is None:
                return got
            if ack and p.type == PUBLISH:
                self.ack(p)
            got.append(p)

    def _read_wire(self, timeout=None):
        deadline = time.monotonic() + (self.timeout if timeout is None
                                       else timeout)
        while True:
            p = self._take_packet()
            if p is not None:
                return p
            if self.closed:
                raise Closed()
            data = self._recv_some(deadline)
            if data is None:
                return None
            self.buf += data

    def expect(self, ptype, timeout=None, what=None):
        """The next packet, which must be of type ptype."""
        try:
            p = self.read(timeout)
        except Closed:
            fail("%swaiting for %s: the broker closed the connection"
                 % (what + ": " if what else "", PACKET_NAMES[ptype]))
        if p is None:
            fail("%sno %s within %.1f s" % (what + ": " if what else "",
                                            PACKET_NAMES[ptype],
                                            self.timeout if timeout is None
                                            else timeout))
        if p.type != ptype:
            fail("%sexpected %s, got %r" % (what + ": " if what else "",
                                           PACKET_NAMES[ptype], p))
        return p

    def expect_nothing(self, duration=0.5, what="unexpected packet"):
        """Fails when a packet arrives within duration (EOF also fails)."""
        try:
            p = self.read(duration)
        except Closed:
            fail("%s: the broker closed the connection" % what)
        if p is not None:
            fail("%s: %r" % (what, p))

    def wait_closed(self, timeout=3.0):
        """True when the broker closes the connection within timeout
        (packets sent before the close are dropped into self.before_close)."""
        self.before_close = []
        deadline = time.monotonic() + timeout
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                p = self.read(left)
                if p is None:
                    return False
                self.before_close.append(p)
        except Closed:
            return True

    def expect_closed(self, timeout=3.0, what="connection"):
        if not self.wait_closed(timeout):
            fail("%s: the broker did not close the connection within %.1f s"
                 % (what, timeout))

    # -- protocol steps
    def connect(self, client_id, clean=True, keepalive=60, will=None,
                level=4, proto_name=None, check=True, **kw):
        """Sends CONNECT and reads CONNACK.  Returns (session_present, rc);
        fails unless rc is 0 when check is true."""
        if proto_name is None:
            proto_name = "MQIsdp" if level == 3 else "MQTT"
        self.client_id = client_id
        self.send(enc_connect(client_id, clean, keepalive, will,
                              proto_name=proto_name, level=level, **kw))
        p = self.expect(CONNACK, what="CONNECT %s" % client_id)
        check_eq(len(p.body), 2, "CONNACK remaining length")
        if check and p.rc != 0:
            fail("CONNACK for %s: return code %d" % (client_id, p.rc))
        return p.session_present, p.rc

    def pid(self):
        p = self.next_pid
        self.next_pid = self.next_pid % 65535 + 1
        return p

    def subscribe(self, entries, pid=None):
        """entries: [(filter, qos)] or a filter with qos given by a single
        tuple.  Returns the SUBACK return codes."""
        if isinstance(entries, str):
            entries = [(entries, 0)]
        if pid is None:
            pid = self.pid()
        self.send(enc_subscribe(pid, entries))
        p = self.expect(SUBACK, what="SUBSCRIBE %r" % (entries,))
        check_eq(p.pid, pid, "SUBACK packet id")
        return p.codes

    def unsubscribe(self, filters, pid=None):
        if pid is None:
            pid = self.pid()
        self.send(enc_unsubscribe(pid, filters))
        p = self.expect(UNSUBACK, what="UNSUBSCRIBE %r" % (filters,))
        check_eq(p.pid, pid, "UNSUBACK packet id")
        check_eq(p.flags, 0, "UNSUBACK flags")

    def publish(self, topic, payload=b"", qos=0, retain=False, pid=None,
                dup=False, complete=True):
        """Publishes; with complete, runs the whole QoS 1/2 flow and checks
        the broker's acks.  Returns the packet id used."""
        if qos > 0 and pid is None:
            pid = self.pid()
        self.send(enc_publish(topic, payload, qos, pid, retain, dup))
        if complete and qos == 1:
            self._await_ack(PUBACK, pid, "PUBLISH qos 1 to %s" % topic)
        elif complete and qos == 2:
            self._await_ack(PUBREC, pid, "PUBLISH qos 2 to %s" % topic)
            self.send(enc_ack(PUBREL, pid))
            self._await_ack(PUBCOMP, pid, "PUBREL %d" % pid)
        return pid

    def _await_ack(self, ptype, pid, what):
        """Reads until the ack ptype for pid; PUBLISH and PUBREL packets
        that come first (deliveries to this client) are kept for read()."""
        while True:
            try:
                p = self._read_wire()
            except Closed:
                fail("%s: waiting for %s: the broker closed the connection"
                     % (what, PACKET_NAMES[ptype]))
            if p is None:
                fail("%s: no %s within %.1f s" % (what, PACKET_NAMES[ptype],
                                                  self.timeout))
            if p.type in (PUBLISH, PUBREL) and p.type != ptype:
                self.stash.append(p)
                continue
            if p.type != ptype:
                fail("%s: expected %s, got %r" % (what, PACKET_NAMES[ptype],
                                                 p))
            check_eq(p.pid, pid, "%s: %s packet id" % (what,
                                                      PACKET_NAMES[ptype]))
            check_eq(p.flags, 0, "%s: %s flags" % (what, PACKET_NAMES[ptype]))
            check_eq(len(p.body), 2, "%s: %s remaining length"
                     % (what, PACKET_NAMES[ptype]))
            return p

    def recv_publish(self, timeout=None, ack=True, what=None):
        """The next packet, which must be a PUBLISH; with ack, acknowledges
        it (PUBACK, or PUBREC -> PUBREL -> PUBCOMP)."""
        p = self.expect(PUBLISH, timeout, what=what)
        if p.qos > 0:
            check(p.pid, "PUBLISH qos %d with packet id 0" % p.qos)
        if ack:
            self.ack(p)
        return p

    def ack(self, p):
        if p.qos == 1:
            self.send(enc_ack(PUBACK, p.pid))
        elif p.qos == 2:
            self.send(enc_ack(PUBREC, p.pid))
            # Other PUBLISHes may come before the PUBREL: keep them.
            while True:
                try:
                    r = self._read_wire()
                except Closed:
                    fail("waiting for PUBREL %d: the broker closed the "
                         "connection" % p.pid)
                if r is None:
                    fail("no PUBREL %d after PUBREC" % p.pid)
                if r.type == PUBREL:
                    break
                self.stash.append(r)
            check_eq(r.pid, p.pid, "PUBREL packet id")
            check_eq(r.flags, 2, "PUBREL fixed-header flags")
            self.send(enc_ack(PUBCOMP, p.pid))

    def recv_publishes(self, n, timeout=None, ack=True):
        return [self.recv_publish(timeout, ack) for _ in range(n)]

    def ping(self):
        self.send(PINGREQ_BYTES)
        p = self.expect(PINGRESP, what="PINGREQ")
        check_eq(p.body, b"", "PINGRESP body")
        check_eq(p.flags, 0, "PINGRESP flags")

    def disconnect(self):
        self.try_send(DISCONNECT_BYTES)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
        self.closed = True

    def abort(self):
        """Closes with RST: an ungraceful network drop."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close()


def raw_client(port, client_id, **kw):
    """A RawClient already connected (CONNACK 0) as client_id."""
    c = RawClient(port)
    c.connect(client_id, **kw)
    return c


# ------------------------------------------------------------ paho client

class Msg:
    def __init__(self, m):
        self.topic = m.topic
        self.payload = m.payload
        self.qos = m.qos
        self.retain = bool(m.retain)
        self.dup = bool(m.dup)
        self.mid = m.mid

    def __repr__(self):
        return "Msg(%r, %r, qos=%d, retain=%d)" % (
            self.topic, self.payload[:40], self.qos, self.retain)


class MessageQueue:
    """get / get_n / expect_none over self.messages, a queue.Queue that a
    client's network thread fills.  Failures name the client as
    "LABEL client_id" and show messages with show()."""

    label = "paho"

    def show(self, m):
        return repr(m)

    def get(self, timeout=5.0, what="message"):
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            fail("%s %s: no %s within %.1f s" % (self.label, self.client_id,
                                                 what, timeout))

    def get_n(self, n, timeout=5.0, what="messages"):
        """n messages within timeout seconds in total."""
        deadline = time.monotonic() + timeout
        out = []
        while len(out) < n:
            left = deadline - time.monotonic()
            try:
                out.append(self.messages.get(timeout=max(left, 0.001)))
            except queue.Empty:
                fail("%s %s: %s: got %d of %d within %.1f s: %s"
                     % (self.label, self.client_id, what, len(out), n,
                        timeout, [self.show(m) for m in out[-5:]]))
        return out

    def expect_none(self, duration=0.5, what="unexpected message"):
        try:
            m = self.messages.get(timeout=duration)
        except queue.Empty:
            return
        fail("%s %s: %s: %s" % (self.label, self.client_id, what,
                                self.show(m)))


class PahoClient(MessageQueue):
    """A paho client with its network loop in a thread, whose received
    messages land in a queue."""

    def __init__(self, port, client_id="", clean=True, protocol=4,
                 keepalive=60, will=None, transport="tcp", ca_certs=None,
                 certfile=None, keyfile=None, host="127.0.0.1"):
        """transport "websockets" speaks MQTT over WebSocket (path
        /mqtt); ca_certs turns TLS on (certfile/keyfile: a client
        certificate)."""
        proto = paho.MQTTv31 if protocol == 3 else paho.MQTTv311
        self.port = port
        self.host = host
        self.client_id = client_id
        self.c = paho.Client(client_id=client_id, clean_session=clean,
                             protocol=proto, transport=transport)
        if ca_certs is not None:
            self.c.tls_set(ca_certs=ca_certs, certfile=certfile,
                           keyfile=keyfile)
        self.keepalive = keepalive
        if will is not None:
            self.c.will_set(will["topic"], will.get("payload", b""),
                            will.get("qos", 0), will.get("retain", False))
        self.messages = queue.Queue()
        self._connack = queue.Queue()
        self._subacks = {}
        self._unsubacks = {}
        self._lock = threading.Lock()
        self._disconnected = threading.Event()
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_subscribe
        self.c.on_unsubscribe = self._on_unsubscribe
        self.c.on_disconnect = self._on_disconnect

    def _on_connect(self, c, u, flags, rc):
        self._connack.put((flags.get("session present", 0), rc))

    def _on_message(self, c, u, m):
        self.messages.put(Msg(m))

    def _on_subscribe(self, c, u, mid, granted):
        with self._lock:
            ev = self._subacks.setdefault(mid, [threading.Event(), None])
            ev[1] = list(granted)
            ev[0].set()

    def _on_unsubscribe(self, c, u, mid):
        with self._lock:
            ev = self._unsubacks.setdefault(mid, threading.Event())
            ev.set()

    def _on_disconnect(self, c, u, rc):
        self._disconnected.set()

    def connect(self, timeout=5.0, check=True):
        """Connects and returns (session_present, rc)."""
        self.c.connect(self.host, self.port, self.keepalive)
        self.c.loop_start()
        try:
            sp, rc = self._connack.get(timeout=timeout)
        except queue.Empty:
            self.stop()
            fail("paho %s: no CONNACK within %.0f s" % (self.client_id,
                                                        timeout))
        if check and rc != 0:
            self.stop()
            fail("paho %s: CONNACK rc %d" % (self.client_id, rc))
        return sp, rc

    def subscribe(self, topic, qos=0, timeout=5.0):
        """topic: a filter (with qos) or [(filter, qos)].  Waits for SUBACK
        and returns the granted QoS list."""
        if isinstance(topic, str):
            rc, mid = self.c.subscribe(topic, qos)
        else:
            rc, mid = self.c.subscribe(list(topic))
        check_eq(rc, 0, "paho subscribe rc")
        with self._lock:
            ev = self._subacks.setdefault(mid, [threading.Event(), None])
        if not ev[0].wait(timeout):
            fail("paho %s: no SUBACK for %r" % (self.client_id, topic))
        return ev[1]

    def unsubscribe(self, topic, timeout=5.0):
        rc, mid = self.c.unsubscribe(topic)
        check_eq(rc, 0, "paho unsubscribe rc")
        with self._lock:
            ev = self._unsubacks.setdefault(mid, threading.Event())
        if not ev.wait(timeout):
            fail("paho %s: no UNSUBACK for %r" % (self.client_id, topic))

    def publish(self, topic, payload=b"", qos=0, retain=False, timeout=5.0):
        """Publishes and waits until the QoS flow completed (for QoS 0:
        until written)."""
        info = self.c.publish(topic, payload, qos, retain)
        info.wait_for_publish(timeout)
        if not info.is_published():
            fail("paho %s: publish to %s qos %d not completed within %.0f s"
                 % (self.client_id, topic, qos, timeout))

    def disconnect(self):
        """Clean DISCONNECT, then stops the loop."""
        try:
            self.c.disconnect()
        except Exception:
            pass
        self._disconnected.wait(2.0)
        self.stop()

    def stop(self):
        try:
            self.c.loop_stop()
        except Exception:
            pass

    def is_disconnected(self, timeout=0.0):
        return self._disconnected.wait(timeout)


def paho_client(port, client_id="", subscribe=None, **kw):
    """A connected PahoClient; subscribe: filter or [(filter, qos)], with
    (filter, qos) also accepted."""
    c = PahoClient(port, client_id, **kw)
    c.connect()
    if subscribe is not None:
        if isinstance(subscribe, tuple):
            c.subscribe(subscribe[0], subscribe[1])
        else:
            c.subscribe(subscribe)
    return c


# ----------------------------------------------------- clients per frontend

def clients_on_frontends(b, make, count=2, tries=20):
    """
    Opens clients with make(i) -> (client, client_id) until count of them
    sit on different frontends (read from the log), closes the others with
    close(client) semantics (client.close() or .disconnect()), and returns
    [(client, fe)].  Under Mosquitto the first count clients are returned
    with fe None.  Fails when ringmq puts every try on the same frontends.
    """
    chosen = {}
    order = []
    extra = []
    for i in range(tries if IS_RINGMQ else count):
        client, cid = make(i)
        fe = b.frontend_of(cid, since=0)
        if not IS_RINGMQ:
            order.append((client, None))
            continue
        if fe in chosen:
            extra.append(client)
        else:
            chosen[fe] = client
            order.append((client, fe))
        if len(order) == count:
            break
    for c in extra:
        _close_any(c)
    if len(order) < count:
        for c, _ in order:
            _close_any(c)
        fail("%d connections all landed on frontends %s; wanted %d "
             "different ones" % (tries, sorted(chosen), count))
    return order


def wait_for(cond, secs, step=0.05):
    """Polls cond() until it returns something true or secs pass; returns
    its last value."""
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(step)
    return cond()


def raw_clients_on_frontends(b, prefix, count=2, **connect_kw):
    """count RawClients connected as PREFIX-i on different frontends:
    [(client, fe)] (fe None under Mosquitto)."""
    def make(i):
        cid = "%s-%d" % (prefix, i)
        return raw_client(b.port, cid, **connect_kw), cid
    return clients_on_frontends(b, make, count)


def check_broker_serves(b, what="after the bad input"):
    """A fresh client can connect, subscribe and get its own QoS 1
    message back."""
    c = RawClient(b.port)
    c.connect("e2e-serves-check")
    codes = c.subscribe([("e2e/serves", 1)])
    check_eq(codes, [1], "SUBACK " + what)
    c.publish("e2e/serves", b"ok", qos=1)
    m = c.recv_publish(what="own message " + what)
    check_eq(m.payload, b"ok", "payload " + what)
    c.disconnect()
    c.close()


def _close_any(c):
    if isinstance(c, PahoClient):
        c.disconnect()
    else:
        c.disconnect()
        c.close()


# ---------------------------------------------------------- mosquitto tools

def mosquitto_pub(port, args, timeout=10.0):
    """Runs mosquitto_pub -h 127.0.0.1 -p PORT ARGS; returns the
    CompletedProcess (fails on a timeout)."""
    cmd = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port)] + list(args)
    try:
        return subprocess.run(cmd, stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        fail("%s did not finish within %.0f s" % (" ".join(cmd), timeout))


def mosquitto_sub_start(port, args):
    """Starts mosquitto_sub -h 127.0.0.1 -p PORT ARGS; returns the Popen
    (stdout piped).  Collect it with finish_process()."""
    cmd = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port)] + list(args)
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def read_line(p, timeout=5.0):
    """One line of p's stdout (bytes with its newline); b"" when the line
    does not come within timeout or p closed its output."""
    fd = p.stdout.fileno()
    buf = getattr(p, "_e2e_buf", b"")
    deadline = time.monotonic() + timeout
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            break
        data = os.read(fd, 65536)
        if not data:
            break
        buf += data
    line, nl, rest = buf.partition(b"\n")
    if not nl:
        p._e2e_buf = buf
        return b""
    p._e2e_buf = rest
    return line + nl


def finish_process(p, timeout=10.0):
    """(returncode, stdout, stderr) of p; kills it and fails on a timeout."""
    try:
        out, err = p.communicate(timeout=timeout)
        return p.returncode, getattr(p, "_e2e_buf", b"") + out, err
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        fail("%s did not finish within %.0f s (stdout %r, stderr %r)"
             % (" ".join(p.args), timeout, out[-200:], err[-200:]))


# ------------------------------------------------------ asyncio raw client

class AsyncClient:
    """A minimal asyncio MQTT 3.1.1 client for tests with many
    connections."""

    def __init__(self, client_id):
        self.client_id = client_id
        self.reader = None
        self.writer = None
        self.next_pid = 1
        self.awaiting_rel = set()

    async def connect(self, port, clean=True, keepalive=60, timeout=10.0):
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port), timeout)
        self.writer.write(enc_connect(self.client_id, clean, keepalive))
        p = await self.read(timeout)
        if p.type != CONNACK or p.rc != 0:
            fail("%s: bad CONNACK %r" % (self.client_id, p))
        return p

    async def read(self, timeout=10.0):
        """Next packet; fails on EOF or timeout."""
        async def _read():
            first = await self.reader.readexactly(1)
            mult, value = 1, 0
            for _ in range(4):
                byte = (await self.reader.readexactly(1))[0]
                value += (byte & 0x7F) * mult
                mult *= 128
                if not byte & 0x80:
                    break
            body = await self.reader.readexactly(value) if value else b""
            return Packet(first[0], body)
        try:
            return await asyncio.wait_for(_read(), timeout)
        except asyncio.TimeoutError:
            fail("%s: no packet within %.0f s" % (self.client_id, timeout))
        except (asyncio.IncompleteReadError, ConnectionError):
            fail("%s: the broker closed the connection" % self.client_id)

    async def subscribe(self, entries, timeout=10.0):
        pid = self.next_pid
        self.next_pid += 1
        self.writer.write(enc_subscribe(pid, entries))
        p = await self.read(timeout)
        if p.type != SUBACK or p.pid != pid:
            fail("%s: expected SUBACK %d, got %r" % (self.client_id, pid, p))
        return p.codes

    async def publish(self, topic, payload, qos=0, timeout=10.0):
        """Publishes and completes the QoS flow."""
        pid = None
        if qos:
            pid = self.next_pid
            self.next_pid = self.next_pid % 65535 + 1
        self.writer.write(enc_publish(topic, payload, qos, pid))
        if qos == 1:
            p = await self.read(timeout)
            if p.type != PUBACK or p.pid != pid:
                fail("%s: expected PUBACK %d, got %r" % (self.client_id,
                                                         pid, p))
        elif qos == 2:
            p = await self.read(timeout)
            if p.type != PUBREC or p.pid != pid:
                fail("%s: expected PUBREC %d, got %r" % (self.client_id,
                                                         pid, p))
            self.writer.write(enc_ack(PUBREL, pid))
            p = await self.read(timeout)
            if p.type != PUBCOMP or p.pid != pid:
                fail("%s: expected PUBCOMP %d, got %r" % (self.client_id,
                                                          pid, p))
        else:
            await self.writer.drain()

    async def recv_publish(self, timeout=10.0):
        """Next PUBLISH, acknowledged: PUBACK for QoS 1, PUBREC for QoS 2
        (the PUBREL that follows, possibly after other PUBLISHes, gets its
        PUBCOMP here or in finish_qos2)."""
        while True:
            p = await self.read(timeout)
            if p.type == PUBREL:
                self._pubrel(p)
                continue
            if p.type != PUBLISH:
                fail("%s: expected PUBLISH, got %r" % (self.client_id, p))
            if p.qos == 1:
                self.writer.write(enc_ack(PUBACK, p.pid))
            elif p.qos == 2:
                self.writer.write(enc_ack(PUBREC, p.pid))
                self.awaiting_rel.add(p.pid)
            return p

    def _pubrel(self, p):
        if p.flags != 2 or p.pid not in self.awaiting_rel:
            fail("%s: unexpected %r (awaiting PUBREL for %s)"
                 % (self.client_id, p, sorted(self.awaiting_rel)))
        self.awaiting_rel.discard(p.pid)
        self.writer.write(enc_ack(PUBCOMP, p.pid))

    async def finish_qos2(self, timeout=10.0):
        """Waits for the PUBRELs still owed and answers them."""
        while self.awaiting_rel:
            p = await self.read(timeout)
            if p.type != PUBREL:
                fail("%s: expected PUBREL, got %r" % (self.client_id, p))
            self._pubrel(p)
        await self.writer.drain()

    async def disconnect(self):
        if self.writer is not None:
            try:
                self.writer.write(DISCONNECT_BYTES)
                await self.writer.drain()
            except ConnectionError:
                pass
            self.writer.close()


# ------------------------------------------------------------ admin socket

class AdminClient:
    """A client of ringmq's admin socket (docs/admin.md): one JSON object
    per line each way."""

    def __init__(self, path, timeout=10.0):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.next_id = 1

    def send_raw(self, data):
        self.sock.sendall(data)

    def read_line(self, timeout=10.0):
        """The next response line as a dict; raises Closed on EOF."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                fail("admin socket %s: no response within %.0f s"
                     % (self.path, timeout))
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(1 << 20)
            except socket.timeout:
                continue
            except (ConnectionResetError, BrokenPipeError):
                data = b""
            if not data:
                raise Closed()
            self.buf += data
        line, _, self.buf = self.buf.partition(b"\n")
        return json.loads(line.decode("utf-8"))

    def request(self, cmd, **args):
        """Sends {"cmd": cmd, "id": N, **args}; returns the response
        (a dict with id, ok and result or error)."""
        rid = self.next_id
        self.next_id += 1
        req = dict(args, cmd=cmd, id=rid)
        self.send_raw(json.dumps(req).encode() + b"\n")
        resp = self.read_line()
        check_eq(resp.get("id"), rid, "admin response id for %s" % cmd)
        return resp

    def call(self, cmd, **args):
        """request() that must succeed; returns the result."""
        resp = self.request(cmd, **args)
        if not resp.get("ok"):
            fail("admin %s %r failed: %r" % (cmd, args, resp.get("error")))
        return resp["result"]

    def error(self, cmd, **args):
        """request() that must fail; returns the error code."""
        resp = self.request(cmd, **args)
        if resp.get("ok") is not False:
            fail("admin %s %r should fail: %r" % (cmd, args, resp))
        return resp["error"]["code"]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def admin(b):
    """An AdminClient connected to broker b (ringmq only)."""
    if b.admin_socket is None:
        fail("this broker has no admin socket")
    return AdminClient(b.admin_socket)


def ringmqctl_bin():
    """bin/ringmqctl next to the broker binary under test."""
    b = os.environ.get("RINGMQ_BIN", "bin/ringmq")
    if not os.path.isabs(b):
        cand = os.path.abspath(b)
        b = cand if os.path.exists(cand) else os.path.join(REPO, b)
    return os.path.join(os.path.dirname(b), "ringmqctl")


def ringmqctl(args, timeout=15.0):
    """Runs ringmqctl ARGS; returns (exit status, stdout, stderr) as
    text."""
    cmd = [ringmqctl_bin()] + list(args)
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        fail("%s did not finish within %.0f s" % (" ".join(cmd), timeout))
    return (p.returncode, p.stdout.decode("utf-8", "replace"),
            p.stderr.decode("utf-8", "replace"))


def elapsed_since(t0):
    return time.monotonic() - t0
