"""
test_crash.py -- ringmq's crash story (docs/architecture.md, "Crash
story"): a frontend killed with -9 under QoS 1/2 load is respawned and its
persistent sessions lose nothing (QoS 2 exactly once, QoS 1 at least once
with DUP re-sends, order kept), its clients' wills are published, and the
clients of the other frontend notice nothing; several kills in a row leak
no arena block; SIGTERM and kill -9 of the supervisor leave no process and
free the port; a frontend's fatal signal is logged as its last words.

Fan-out workers: kill -9 of each worker and an admin restart_worker under
QoS 1/2 load lose, duplicate and disconnect nothing, and the new worker
has rebuilt its subscriptions, sessions and retained store; a seeded chaos
test kills random children for 20 s (CHAOS_SEED=N replays a run) and
checks delivery and that the arena comes back to its starting level.
"""

import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time

from harness import (
    PUBACK, PUBCOMP, PUBLISH, PUBREC, PUBREL, Broker, Closed, PahoClient,
    RawClient, TestFailure, _group_pids, _pgid_alive, admin, check,
    check_broker_serves, check_eq, enc_ack, enc_publish, fail, raw_client,
    ringmq_only, timeout, wait_for)

WHY = "frontend crash recovery is ringmq's"

T_Q1 = "crash/q1"   # QoS 1 publisher's topic
T_Q2 = "crash/q2"   # QoS 2 publisher's topic
T_WILL = "crash/will"


_wait = wait_for  # harness


def _port_free(port):
    """True when a new server could listen on port (SO_REUSEADDR, as every
    broker sets: connections in TIME_WAIT do not count)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        s.listen(1)
        return True
    except OSError:
        return False
    finally:
        s.close()


def _pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _arena(a):
    """(total blocks_used, total bytes_used, per-partition blocks) from the
    admin stats."""
    s = a.call("stats")
    parts = ([("fe%d" % f["index"], f["arena"]["blocks_used"])
              for f in s["frontends"]]
             + [("fo%d" % w["index"], w["arena"]["blocks_used"])
                for w in s["workers"]])
    return s["arena"]["blocks_used"], s["arena"]["bytes_used"], parts


def _connect_raw(port, cid, clean, will=None, timeout=5.0):
    """A RawClient connected as cid: (client, session_present)."""
    c = RawClient(port, timeout=timeout)
    try:
        sp, _ = c.connect(cid, clean=clean, will=will)
    except BaseException:
        c.close()
        raise
    return c, sp


def _place(b, prefix, want, clean=False, will=None):
    """Connects PREFIX-i clients until want[fe] of them sit on frontend fe
    (read from the log).  Returns {fe: [(cid, RawClient)]}; the others are
    disconnected and their sessions discarded."""
    got = {fe: [] for fe in want}
    for i in range(80):
        if all(len(got[fe]) >= n for fe, n in want.items()):
            return got
        cid = "%s-%d" % (prefix, i)
        c, _ = _connect_raw(b.port, cid, clean, will)
        fe = b.frontend_of(cid)
        if fe in got and len(got[fe]) < want[fe]:
            got[fe].append((cid, c))
            continue
        c.disconnect()
        c.close()
        if not clean:   # discard the session it left
            d, _ = _connect_raw(b.port, cid, True)
            d.disconnect()
            d.close()
    fail("80 connections did not give %r clients per frontend (%r)"
         % (want, {fe: len(v) for fe, v in got.items()}))


# ------------------------------------------------------------ subscriber

class Sub(threading.Thread):
    """
    A persistent subscriber (clean session 0) on T_Q1 at QoS 1 and T_Q2 at
    QoS 2 that acknowledges everything, keeps its QoS 2 receiver state
    (PUBREC sent, PUBREL not yet received) across reconnects as MQTT
    requires, and reconnects at once (same id, clean 0) when the broker
    closes its connection.

    Per topic it records first deliveries (seq), QoS 1 re-deliveries
    (seq, DUP flag), QoS 2 protocol re-sends (a PUBLISH for a packet id
    still awaiting PUBREL: not a new delivery) and QoS 2 duplicates (a
    second delivery of a message: a broker bug).
    """

    def __init__(self, b, cid, client, fe, ack_delay=0.05):
        super().__init__(daemon=True, name=cid)
        self.ack_delay = ack_delay
        self.pending = []                # (due, ack bytes) not yet sent
        self.b = b
        self.cid = cid
        self.c = client
        self.fe = fe
        self.lock = threading.Lock()
        self.firsts = {T_Q1: [], T_Q2: []}
        self.seen = {T_Q1: set(), T_Q2: set()}
        self.q1_redeliveries = []        # (seq, dup flag)
        self.q2_resends = 0              # legitimate PUBLISH re-sends
        self.q2_dups = []                # (seq, pid, dup flag): bugs
        self.bad = []                    # protocol oddities
        self.awaiting_rel = {}           # pid -> seq
        self.arrivals = []               # monotonic time of each PUBLISH
        self.disconnects = []            # monotonic times
        self.reconnects = []             # (took s, session_present)
        self.errors = []
        self.stop_ev = threading.Event()

    def subscribe(self):
        codes = self.c.subscribe([(T_Q1, 1), (T_Q2, 2)])
        check_eq(codes, [1, 2], "%s SUBACK" % self.cid)

    def total(self, topic):
        with self.lock:
            return len(self.firsts[topic])

    def _on_publish(self, p):
        seq = int(p.payload)
        now = time.monotonic()
        with self.lock:
            self.arrivals.append(now)
            if p.topic == T_Q2:
                if p.qos != 2:
                    self.bad.append("QoS %d on %s" % (p.qos, p.topic))
                if p.pid in self.awaiting_rel:
                    # The broker did not get our PUBREC: a re-send of the
                    # same message, which must carry DUP and the same
                    # message; not a new delivery.
                    self.q2_resends += 1
                    if self.awaiting_rel[p.pid] != seq or not p.dup:
                        self.bad.append("QoS 2 re-send of pid %d: seq %d "
                                        "(had %d), dup %d"
                                        % (p.pid, seq,
                                           self.awaiting_rel[p.pid], p.dup))
                elif seq in self.seen[T_Q2]:
                    self.q2_dups.append((seq, p.pid, p.dup))
                else:
                    self.seen[T_Q2].add(seq)
                    self.firsts[T_Q2].append(seq)
                    self.awaiting_rel[p.pid] = seq
                self.awaiting_rel.setdefault(p.pid, seq)
                self._ack(enc_ack(PUBREC, p.pid), now)
            elif p.topic == T_Q1:
                if p.qos != 1:
                    self.bad.append("QoS %d on %s" % (p.qos, p.topic))
                if seq in self.seen[T_Q1]:
                    self.q1_redeliveries.append((seq, p.dup))
                else:
                    self.seen[T_Q1].add(seq)
                    self.firsts[T_Q1].append(seq)
                self._ack(enc_ack(PUBACK, p.pid), now)
            else:
                self.bad.append("PUBLISH on %r" % p.topic)

    def _ack(self, data, now):
        if self.ack_delay:
            self.pending.append((now + self.ack_delay, data))
        else:
            self.c.send(data)

    def _flush(self, force=False):
        now = time.monotonic()
        while self.pending and (force or self.pending[0][0] <= now):
            self.c.send(self.pending.pop(0)[1])

    def _on_pubrel(self, p):
        with self.lock:
            self.awaiting_rel.pop(p.pid, None)
        self._ack(enc_ack(PUBCOMP, p.pid), time.monotonic())

    def _reconnect(self):
        t0 = time.monotonic()
        deadline = t0 + 15
        last = None
        while time.monotonic() < deadline and not self.stop_ev.is_set():
            try:
                c, sp = _connect_raw(self.b.port, self.cid, False)
                self.c = c
                self.reconnects.append((time.monotonic() - t0, sp))
                return
            except (TestFailure, OSError, Closed) as e:
                last = e
                time.sleep(0.05)
        raise TestFailure("%s: no reconnect within 15 s: %s"
                          % (self.cid, last))

    def run(self):
        try:
            while not self.stop_ev.is_set():
                try:
                    self._flush()
                    p = self.c.read(0.01 if self.pending else 0.1)
                    if p is None:
                        continue
                    if p.type == PUBLISH:
                        self._on_publish(p)
                    elif p.type == PUBREL:
                        self._on_pubrel(p)
                    else:
                        with self.lock:
                            self.bad.append("unexpected %r" % p)
                except (Closed, OSError):
                    if self.stop_ev.is_set():
                        return
                    self.disconnects.append(time.monotonic())
                    self.pending = []  # never sent: the broker re-sends
                    self.c.close()
                    self._reconnect()
        except BaseException as e:  # noqa: B902 -- reported by the test
            self.errors.append(e)

    def finish(self):
        """Stops reading; disconnects cleanly."""
        self.stop_ev.set()
        self.join(10)
        check(not self.is_alive(), "%s: reader did not stop" % self.cid)
        try:
            self._flush(force=True)
        except OSError:
            pass
        self.c.disconnect()
        self.c.close()

    def max_gap(self, t_from, t_to):
        """Longest time without a PUBLISH between t_from and t_to."""
        with self.lock:
            ts = [t for t in self.arrivals if t_from <= t <= t_to]
        ts = [t_from] + ts + [t_to]
        return max(b - a for a, b in zip(ts, ts[1:]))


# ------------------------------------------------------------- publisher

class Pub(threading.Thread):
    """
    Publishes "%08d" % seq to topic at qos, rate messages a second, one
    flow at a time (PUBACK, or PUBREC/PUBREL/PUBCOMP, before the next), until
    stopped.  With a persistent session it reconnects when the broker
    closes the connection and completes the interrupted flow as MQTT says:
    the PUBLISH again with DUP and the same packet id until PUBREC/PUBACK
    came, else the PUBREL.  sent: messages whose flow completed.
    """

    def __init__(self, b, cid, client, topic, qos, rate, persistent):
        super().__init__(daemon=True, name=cid)
        self.b = b
        self.cid = cid
        self.c = client
        self.topic = topic
        self.qos = qos
        self.period = 1.0 / rate
        self.persistent = persistent
        self.sent = 0
        self.next_pid = 1
        self.resends = 0
        self.disconnects = 0
        self.reconnects = []       # (took s, session_present)
        self.max_flow = 0.0        # longest flow, in s
        self.errors = []
        self.stop_ev = threading.Event()

    def _await(self, ptype, pid):
        deadline = time.monotonic() + 10
        while True:
            p = self.c.read(max(deadline - time.monotonic(), 0.01))
            if p is None:
                fail("%s: no %s for pid %d within 10 s"
                     % (self.cid, {PUBACK: "PUBACK", PUBREC: "PUBREC",
                                   PUBCOMP: "PUBCOMP"}[ptype], pid))
            if p.type == ptype and p.pid == pid:
                return
            fail("%s: waiting for type %d pid %d, got %r"
                 % (self.cid, ptype, pid, p))

    def _reconnect(self):
        self.disconnects += 1
        if not self.persistent:
            fail("%s: the broker closed the publisher's connection"
                 % self.cid)
        self.c.close()
        t0 = time.monotonic()
        last = None
        while time.monotonic() - t0 < 15 and not self.stop_ev.is_set():
            try:
                self.c, sp = _connect_raw(self.b.port, self.cid, False)
                self.reconnects.append((time.monotonic() - t0, sp))
                if not sp:
                    fail("%s: session present 0 on reconnect" % self.cid)
                return
            except (OSError, Closed) as e:
                last = e
                time.sleep(0.05)
            except TestFailure as e:
                if "session present" in str(e):
                    raise
                last = e
                time.sleep(0.05)
        fail("%s: no reconnect within 15 s: %s" % (self.cid, last))

    def _one(self, seq):
        pid = self.next_pid
        self.next_pid = self.next_pid % 65535 + 1
        payload = b"%08d" % seq
        state, dup = "publish", False
        t0 = time.monotonic()
        while True:
            try:
                if state == "publish":
                    self.c.send(enc_publish(self.topic, payload, self.qos,
                                            pid, dup=dup))
                    self._await(PUBACK if self.qos == 1 else PUBREC, pid)
                    if self.qos == 1:
                        break
                    state = "pubrel"
                self.c.send(enc_ack(PUBREL, pid))
                self._await(PUBCOMP, pid)
                break
            except (Closed, OSError):
                self._reconnect()
                if self.stop_ev.is_set() and not self.persistent:
                    return
                dup = True
                self.resends += 1
        self.max_flow = max(self.max_flow, time.monotonic() - t0)

    def run(self):
        try:
            nxt = time.monotonic()
            while not self.stop_ev.is_set():
                self._one(self.sent)
                self.sent += 1
                nxt += self.period
                delay = nxt - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                else:
                    nxt = time.monotonic()
        except BaseException as e:  # noqa: B902 -- reported by the test
            self.errors.append(e)

    def finish(self):
        self.stop_ev.set()
        self.join(20)
        check(not self.is_alive(), "%s did not stop" % self.cid)
        if self.errors:
            raise self.errors[0]
        self.c.disconnect()
        self.c.close()


def _qos12_pubs(b, prefix, persistent):
    """The two publishers of the crash tests, 100 messages a second each:
    PREFIX-pub1 at QoS 1 to T_Q1 and PREFIX-pub2 at QoS 2 to T_Q2, with
    persistent sessions (clean session 0) or clean ones."""
    pubs = []
    for i, (topic, qos) in enumerate(((T_Q1, 1), (T_Q2, 2)), 1):
        cid = "%s-pub%d" % (prefix, i)
        c, _ = _connect_raw(b.port, cid, not persistent)
        pubs.append(Pub(b, cid, c, topic, qos, 100, persistent=persistent))
    return pubs


def _wait_all_delivered(subs, pubs, secs=15):
    """Waits until every subscriber has every message of every publisher
    (first deliveries)."""
    want = {p.topic: p.sent for p in pubs}

    def done():
        return all(s.total(t) >= n for s in subs for t, n in want.items())
    _wait(done, secs, 0.1)
    for s in subs:
        if s.errors:
            raise s.errors[0]


def _check_deliveries(subs, pubs, q1_dup_flag_required=True):
    """Every subscriber got every message of every publisher once, in
    order (QoS 2 exactly once; QoS 1 re-deliveries only as DUP re-sends
    when q1_dup_flag_required).  A subscriber thread's own failure is
    raised first.  Returns a summary per subscriber."""
    for s in subs:
        if s.errors:
            raise s.errors[0]
    summary = []
    for s in subs:
        with s.lock:
            for p in pubs:
                got = s.firsts[p.topic]
                want = list(range(p.sent))
                if got != want:
                    missing = sorted(set(want) - set(got))
                    extra = sorted(set(got) - set(want))
                    out_of_order = [(a, b) for a, b in zip(got, got[1:])
                                    if b < a]
                    fail("%s (fe %d) on %s: %d of %d messages; missing %s "
                         "(%d), unexpected %s, out of order %s"
                         % (s.cid, s.fe, p.topic, len(got), p.sent,
                            missing[:20], len(missing), extra[:10],
                            out_of_order[:10]))
            check(not s.q2_dups, "%s (fe %d): QoS 2 messages delivered "
                  "twice (seq, pid, dup): %r" % (s.cid, s.fe, s.q2_dups[:20]))
            check(not s.bad, "%s (fe %d): %r" % (s.cid, s.fe, s.bad[:10]))
            if q1_dup_flag_required:
                nodup = [q for q, d in s.q1_redeliveries if not d]
                check(not nodup, "%s (fe %d): QoS 1 re-deliveries without "
                      "DUP: %r" % (s.cid, s.fe, nodup[:20]))
            summary.append((s.cid, s.fe, len(s.q1_redeliveries),
                            s.q2_resends, len(s.disconnects)))
    return summary


def _check_after_kills(subs, pubs, min_sent):
    """After kills of publishers' and subscribers' frontends: no client
    thread failed, every message arrived (QoS 1 repeats may lack DUP: a
    publisher's re-send is a new message), every reconnect found its
    session, and each publisher got at least min_sent messages out.
    Returns _check_deliveries()'s summary."""
    summary = _check_deliveries(subs, pubs, q1_dup_flag_required=False)
    for s in subs:
        check(all(sp == 1 for _, sp in s.reconnects),
              "%s: session present 0 on reconnect: %r"
              % (s.cid, s.reconnects))
    for p in pubs:
        check(p.sent >= min_sent, "%s sent only %d" % (p.cid, p.sent))
    return summary


def _check_not_disturbed(s):
    """Subscriber s saw no disconnect, no QoS 1 copy and no QoS 2 re-send
    (what a worker's death or restart must leave untouched)."""
    check_eq(s.disconnects, [], "%s (fe %d, worker %d) disconnects"
             % (s.cid, s.fe, s.owner))
    check_eq(s.q1_redeliveries, [], "%s (worker %d) QoS 1 copies"
             % (s.cid, s.owner))
    check_eq(s.q2_resends, 0, "%s QoS 2 re-sends" % s.cid)


def _stop_all(subs, pubs):
    for p in pubs:
        p.stop_ev.set()
    for s in subs:
        s.stop_ev.set()


# ------------------------------------------------------------- the tests

@timeout(60)
def test_kill_frontend_under_qos12_load():
    """
    kill -9 of a frontend while a QoS 1 and a QoS 2 publisher (on the
    other frontend) stream to persistent subscribers on both frontends.
    What a user relies on: the killed frontend's subscribers reconnect
    (same id, clean session 0) to a session that is present and get every
    message: QoS 2 exactly once, QoS 1 at least once (a second copy only
    as a DUP re-send), each publisher's order kept; a will of a client of
    the dead frontend is published; the other frontend's subscribers and
    the publishers see no disconnect, no gap and no stall; the frontend
    comes back with a new pid and serves.
    """
    ringmq_only(WHY)
    with Broker() as b:
        # Publishers first: the frontend they land on is the one that
        # survives.
        alive_fe, dead_fe = 0, 1
        placed = _place(b, "cr-pub", {alive_fe: 2})
        subs_placed = _place(b, "cr-sub", {0: 2, 1: 2})
        will = {"topic": T_WILL, "payload": b"cr-will gone", "qos": 1}
        will_c = _place(b, "cr-will", {dead_fe: 1}, clean=True,
                        will=will)[dead_fe][0][1]
        watch = _place(b, "cr-watch", {alive_fe: 1},
                       clean=True)[alive_fe][0][1]
        watch.subscribe([(T_WILL, 1)])

        subs = []
        for fe in (0, 1):
            for cid, c in subs_placed[fe]:
                s = Sub(b, cid, c, fe)
                s.subscribe()
                subs.append(s)
        for s in subs:
            s.start()
        (c1id, c1), (c2id, c2) = placed[alive_fe]
        pubs = [Pub(b, c1id, c1, T_Q1, 1, 100, persistent=False),
                Pub(b, c2id, c2, T_Q2, 2, 100, persistent=False)]
        try:
            for p in pubs:
                p.start()
            time.sleep(1.5)
            t_kill = time.monotonic()
            old = b.kill_child("frontend", dead_fe)
            new = b.wait_child("frontend", dead_fe, old, timeout=10)
            t_back = time.monotonic()
            check(new != old, "pid unchanged")
            time.sleep(2.0)
            for p in pubs:
                p.finish()
            t_end = time.monotonic()
            _wait_all_delivered(subs, pubs)
            # Quiet time for late duplicates.
            time.sleep(0.5)
        finally:
            _stop_all(subs, pubs)

        summary = _check_deliveries(subs, pubs, q1_dup_flag_required=True)
        for s in subs:
            if s.fe == dead_fe:
                check(s.disconnects, "%s on the killed frontend was not "
                      "disconnected" % s.cid)
                check_eq(len(s.reconnects), len(s.disconnects),
                         "%s reconnects" % s.cid)
                check(all(sp == 1 for _, sp in s.reconnects),
                      "%s: session present 0 on reconnect: %r"
                      % (s.cid, s.reconnects))
            else:
                check_eq(s.disconnects, [], "%s (other frontend) "
                         "disconnects" % s.cid)
                check_eq(s.q1_redeliveries, [], "%s (other frontend) QoS 1 "
                         "re-deliveries" % s.cid)
                check_eq(s.q2_resends, 0, "%s (other frontend) QoS 2 "
                         "re-sends" % s.cid)
                gap = s.max_gap(t_kill - 0.2, t_end - 0.05)
                check(gap < 1.5, "%s (other frontend): no message for "
                      "%.2f s around the kill" % (s.cid, gap))
        for p in pubs:
            check_eq(p.disconnects, 0, "%s disconnects" % p.cid)
            check(p.max_flow < 1.5, "%s: a flow took %.2f s"
                  % (p.cid, p.max_flow))
            check(p.sent >= 200, "%s sent only %d" % (p.cid, p.sent))

        m = watch.recv_publish(timeout=5, what="will of cr-will")
        check_eq((m.topic, m.payload), (T_WILL, b"cr-will gone"), "will")
        watch.expect_nothing(0.3, "second copy of the will")
        will_c.close()
        log = b.log()
        check(re.search(r"frontend %d \(pid %d\) killed by signal 9"
                        % (dead_fe, old), log),
              "no log line for the kill")
        check_broker_serves(b, "after the frontend was killed")
        a = admin(b)
        fes = {f["index"]: f for f in a.call("stats")["frontends"]}
        check_eq(fes[dead_fe]["restarts"], 1, "restarts of the killed one")
        check_eq(fes[dead_fe]["pid"], new, "pid in stats")
        check_eq(fes[alive_fe]["restarts"], 0, "restarts of the other one")
        a.close()
        print("respawn %.2f s; pubs (cid, sent, longest flow): %s; per sub "
              "(cid, fe, q1 redeliveries, q2 re-sends, disconnects): %s; "
              "reconnects %s"
              % (t_back - t_kill, [(p.cid, p.sent, round(p.max_flow, 3))
                                   for p in pubs], summary,
                 [(s.cid, [(round(t, 2), sp) for t, sp in s.reconnects])
                  for s in subs if s.reconnects]))


@timeout(60)
def test_repeated_frontend_kills_lose_nothing_and_leak_nothing():
    """
    Frontends 0 and 1 killed with -9 alternately, 6 times, 1.2 s apart,
    while persistent QoS 1 and QoS 2 publishers (anywhere, so they lose
    connections too and complete their flows on reconnect, PUBLISH with
    DUP or PUBREL) stream to persistent subscribers on both frontends.
    What a user relies on: every subscriber ends with every message, QoS 2
    exactly once, in order; every child is running again (frontends with
    new pids, the workers untouched, stats counting the restarts); once
    every client is gone and every session discarded, the arena holds what
    it held before any client came (stats and the exit report).
    """
    ringmq_only(WHY)
    with Broker() as b:
        a = admin(b)
        check(_wait(lambda: a.call("clients")["total"] == 0, 3),
              "clients at start")
        base = _wait(lambda: (lambda x: x if x[0] == 0 else None)(_arena(a)),
                     2) or _arena(a)
        start_children = b.children()
        check_eq(len(start_children), 4, "children at start")

        subs_placed = _place(b, "rk-sub", {0: 2, 1: 2})
        subs = []
        for fe in (0, 1):
            for cid, c in subs_placed[fe]:
                s = Sub(b, cid, c, fe)
                s.subscribe()
                subs.append(s)
        pubs = _qos12_pubs(b, "rk", persistent=True)
        kills = []
        try:
            for s in subs:
                s.start()
            for p in pubs:
                p.start()
            time.sleep(1.0)
            for k in range(6):
                fe = k % 2
                t0 = time.monotonic()
                old = b.kill_child("frontend", fe)
                new = b.wait_child("frontend", fe, old, timeout=10)
                kills.append((fe, old, new, time.monotonic() - t0))
                time.sleep(1.2)
            time.sleep(0.8)
            for p in pubs:
                p.finish()
            _wait_all_delivered(subs, pubs, 20)
            time.sleep(0.5)
        finally:
            _stop_all(subs, pubs)
        summary = _check_after_kills(subs, pubs, min_sent=500)

        # Every child back; the workers never restarted.
        kids = b.children()
        check_eq(sorted(kids), sorted(start_children), "children at the end")
        for role_idx in (("fanout", 0), ("fanout", 1)):
            check_eq(kids[role_idx], start_children[role_idx],
                     "%s %d pid" % role_idx)
        for fe in (0, 1):
            check(kids[("frontend", fe)] != start_children[("frontend", fe)],
                  "frontend %d pid unchanged" % fe)
        st = a.call("stats")
        check_eq([f["restarts"] for f in st["frontends"]], [3, 3],
                 "frontend restarts in stats")
        check_eq([w["restarts"] for w in st["workers"]], [0, 0],
                 "worker restarts in stats")

        # Everything goes: connections, then the persistent sessions.
        for s in subs:
            s.finish()
        check(_wait(lambda: a.call("clients")["total"] == 0, 5),
              "clients left: %r" % a.call("clients"))
        sess = a.call("sessions", limit=1000)
        names = sorted(x["client_id"] for x in sess["sessions"])
        check_eq(names, sorted([s.cid for s in subs] + ["rk-pub1",
                                                         "rk-pub2"]),
                 "offline sessions")
        for cid in names:
            r = a.call("sessions", action="expire", client_id=cid)
            check_eq(r["session_discarded"], True, "expire %s" % cid)
        check_eq(a.call("sessions")["total"], 0, "sessions after expire")
        end = _wait(lambda: (lambda x: x if x[0] == base[0] else None)(
            _arena(a)), 5) or _arena(a)
        a.close()
        print("kills (fe, old pid, new pid, respawn s): %s; pubs (cid, sent,"
              " resends, disconnects, longest flow): %s; per sub (cid, fe, "
              "q1 redeliveries, q2 re-sends, disconnects): %s; arena at "
              "start %r, at the end %r"
              % ([(f, o, n, round(t, 2)) for f, o, n, t in kills],
                 [(p.cid, p.sent, p.resends, p.disconnects,
                   round(p.max_flow, 3)) for p in pubs], summary, base, end))
        check_eq(end[0], base[0], "arena blocks in use after every client "
                 "and session is gone (start %r, end %r)" % (base, end))
    m = re.search(r"arena at exit: (\d+) blocks", b.log())
    check(m, "no arena report in the log")
    check_eq(int(m.group(1)), 0, "arena blocks in use at exit")
    # A respawned frontend handles its signals without libevent warning
    # about the supervisor's event base it inherited with the fork.
    check_eq([ln for ln in b.log().splitlines() if "libevent" in ln], [],
             "libevent warnings in the log")


def _start_load(b, prefix):
    """Two persistent subscribers and a QoS 1 and a QoS 2 publisher, all
    running: (subs, pubs)."""
    subs = []
    for i in range(2):
        cid = "%s-sub-%d" % (prefix, i)
        c, _ = _connect_raw(b.port, cid, False)
        s = Sub(b, cid, c, b.frontend_of(cid))
        s.subscribe()
        subs.append(s)
    pubs = []
    for qos, topic in ((1, T_Q1), (2, T_Q2)):
        cid = "%s-pub-%d" % (prefix, qos)
        c, _ = _connect_raw(b.port, cid, True)
        pubs.append(Pub(b, cid, c, topic, qos, 100, persistent=False))
    for t in subs + pubs:
        t.start()
    return subs, pubs


def _quiet_stop(threads):
    """Stops load threads whose broker is gone (their errors are
    expected)."""
    for t in threads:
        t.stop_ev.set()
    for t in threads:
        t.join(5)
        try:
            t.c.close()
        except OSError:
            pass


@timeout(40)
def test_sigterm_under_load_exits_cleanly():
    """
    SIGTERM to the supervisor while QoS 1/2 traffic flows: exit status 0
    within a few seconds, no process left in the broker's process group,
    every client connection closed, the port free for the next broker.
    """
    ringmq_only(WHY)
    b = Broker().start()
    try:
        subs, pubs = _start_load(b, "st")
        check(_wait(lambda: all(s.total(T_Q2) > 50 for s in subs), 5),
              "load not flowing")
        for s in subs:
            s.stop_ev.set()   # no reconnect attempts once it stops
        kids = _group_pids(b.proc.pid) - {b.proc.pid}
        check_eq(len(kids), 4, "children")
        t0 = time.monotonic()
        b.proc.send_signal(signal.SIGTERM)
        try:
            rc = b.proc.wait(10)
        except Exception:
            fail("broker still running 10 s after SIGTERM; log:\n"
                 + b.log_tail())
        took = time.monotonic() - t0
        gone = _wait(lambda: not _pgid_alive(b.proc.pid), 3)
        t_gone = time.monotonic() - t0
        left = _group_pids(b.proc.pid)
        free = _wait(lambda: _port_free(b.port), 3)
        log = b.log()
    finally:
        _quiet_stop(subs + pubs)
        b._cleanup()
    check_eq(rc, 0, "exit status after SIGTERM")
    check(took < 5.0, "exit took %.2f s" % took)
    check(gone, "processes left in the broker's group: %r" % sorted(left))
    check(not any(_pid_alive(k) for k in kids), "children left running")
    check(free, "port %d still bound after the exit" % b.port)
    check("children still alive" not in log,
          "the supervisor had to kill its children:\n%s" % log[-2000:])
    print("exit %.3f s, group empty %.3f s" % (took, t_gone))


@timeout(40)
def test_supervisor_kill9_under_load_children_exit():
    """
    kill -9 of the supervisor while traffic flows: every frontend and
    worker exits by itself within a few seconds (PR_SET_PDEATHSIG), so no
    orphan keeps the port or serves clients; the port is free afterwards.
    (The harness's stop() would report the dead broker: the test reaps it
    itself.)
    """
    ringmq_only(WHY)
    b = Broker().start()
    kids = {}
    try:
        subs, pubs = _start_load(b, "sk")
        check(_wait(lambda: all(s.total(T_Q2) > 50 for s in subs), 5),
              "load not flowing")
        for s in subs:
            s.stop_ev.set()
        kids = b.children()
        check_eq(len(kids), 4, "children")
        t0 = time.monotonic()
        os.kill(b.proc.pid, signal.SIGKILL)
        b.proc.wait(5)
        gone = _wait(lambda: not any(_pid_alive(p) for p in kids.values()),
                     5)
        took = time.monotonic() - t0
        left = {k: p for k, p in kids.items() if _pid_alive(p)}
        free = _wait(lambda: _port_free(b.port), 3)
    finally:
        _quiet_stop(subs + pubs)
        # Whatever is left of the group we started goes now.
        try:
            os.killpg(b.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        b._cleanup()
    check(gone, "children still alive 5 s after the supervisor died: %r"
          % left)
    check(free, "port %d still bound after the children exited" % b.port)
    print("children gone %.3f s after kill -9 of the supervisor" % took)


@timeout(40)
def test_frontend_sigsegv_last_words_and_respawn():
    """
    A frontend that dies of SIGSEGV: the supervisor logs its last words
    ("fatal signal 11", from the child's panic buffer) and the signal,
    respawns it, and its persistent client resumes its session with the
    QoS 1 message queued meanwhile.
    """
    ringmq_only(WHY)
    with Broker() as b:
        fe = 1
        (cid, c), = _place(b, "sg", {fe: 1})[fe]
        check_eq(c.subscribe([("sg/t", 1)]), [1], "SUBACK")
        time.sleep(1.1)   # past start-up: respawned at once
        old = b.kill_child("frontend", fe, signal.SIGSEGV)
        t0 = time.monotonic()
        new = b.wait_child("frontend", fe, old, timeout=10)
        took = time.monotonic() - t0
        c.expect_closed(3, "client of the crashed frontend")
        line = _wait(lambda: re.search(
            r"frontend %d last words: fatal signal 11[^\n]*" % fe, b.log()),
            3)
        check(line, "no 'last words: fatal signal 11' line; log:\n%s"
              % b.log_tail())
        check(re.search(r"frontend %d \(pid %d\) killed by signal 11"
                        % (fe, old), b.log()), "no 'killed by signal 11'")
        pub = raw_client(b.port, "sg-pub")
        pub.publish("sg/t", b"after the crash", qos=1)
        c2, sp = _connect_raw(b.port, cid, False)
        check_eq(sp, 1, "session present after the crash")
        m = c2.recv_publish(what="queued message after the crash")
        check_eq(m.payload, b"after the crash", "payload")
        check_broker_serves(b, "after SIGSEGV")
        a = admin(b)
        st = {f["index"]: f for f in a.call("stats")["frontends"]}
        check_eq((st[fe]["pid"], st[fe]["restarts"]), (new, 1),
                 "stats of the crashed frontend")
        a.close()
        c2.disconnect()
        pub.disconnect()
        print("respawned in %.2f s; %s" % (took, line.group(0)[:200]))


@timeout(60)
def test_sigterm_just_after_a_respawn_stops_at_once():
    """
    SIGTERM to the supervisor just after it respawned a frontend (here
    after an admin restart_frontend) stops the broker at once.  Regression:
    the supervisor forked from its event loop with SIGTERM unblocked and
    libevent's handler installed; a SIGTERM that reached the new child
    before the child's signal(SIGTERM, SIG_DFL) was taken by the inherited
    handler and lost, and the child was SIGKILLed 4 s later.  spawn() now
    blocks every signal across the fork.  The window is the time until the
    child is first scheduled, so two CPU hogs (started and stopped by this
    test) make it show.
    """
    ringmq_only(WHY)
    hogs = [subprocess.Popen([sys.executable, "-c", "while 1: pass"])
            for _ in range(max(2, (os.cpu_count() or 2)))]
    try:
        for i in range(20):
            b = Broker().start()
            try:
                a = admin(b)
                b.expect_restart("frontend", 1)
                a.call("restart_frontend", index=1)
                t0 = time.monotonic()
                b.proc.send_signal(signal.SIGTERM)
                try:
                    rc = b.proc.wait(10)
                except subprocess.TimeoutExpired:
                    rc = None
                took = time.monotonic() - t0
                a.close()
                log = b.log()
            finally:
                if b.proc.poll() is None:
                    b._kill_hard()
                b._cleanup()
            check(rc == 0 and took < 2.0
                  and "children still alive" not in log,
                  "try %d: SIGTERM right after a respawn: exit status %s "
                  "after %.2f s; log:\n%s"
                  % (i, rc, took,
                     "\n".join(ln for ln in log.splitlines()[-14:]
                               if "libevent" not in ln)))
    finally:
        for h in hogs:
            h.kill()
            h.wait()


# ------------------------------------------------------ fan-out workers

WHY_FO = "fan-out worker crash recovery is ringmq's"
N_FO = 2   # Broker()'s default fanout_workers


def _owner(cid, n_fo=N_FO):
    """The fan-out worker that owns client id cid: 64-bit FNV-1a of its
    bytes (common/strmap.c strmap_hash(), used by
    frontend/handle_connect.c) modulo the number of workers."""
    h = 0xcbf29ce484222325
    for ch in cid.encode():
        h ^= ch
        h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h % n_fo


def _cid_owned_by(prefix, w, n_fo=N_FO):
    """The first PREFIX-i client id owned by worker w."""
    for i in range(1000):
        cid = "%s-%d" % (prefix, i)
        if _owner(cid, n_fo) == w:
            return cid
    fail("no %s-i client id owned by worker %d" % (prefix, w))


def _worker_deliveries(a):
    return [w["deliveries_queued"] for w in a.call("stats")["workers"]]


def _check_owner_hash(b, a, prefix):
    """_owner() agrees with the broker: a client subscribed to a topic of
    its own gets one message, and only the worker _owner() names counts a
    delivery (every worker sees every PUBLISH; only the owner holds the
    subscription).  Needs a broker without other traffic."""
    for w in range(N_FO):
        cid = _cid_owned_by(prefix, w)
        c = raw_client(b.port, cid)
        c.subscribe([("own/%s" % cid, 1)])
        before = _worker_deliveries(a)
        c.publish("own/%s" % cid, b"x", qos=1)
        c.recv_publish(what="own message of %s" % cid)
        want = [n + (1 if i == w else 0) for i, n in enumerate(before)]
        got = _wait(lambda: (lambda d: d if d == want else None)(
            _worker_deliveries(a)), 2) or _worker_deliveries(a)
        check_eq(got, want, "deliveries_queued per worker after one "
                 "delivery to %s (hash says worker %d)" % (cid, w))
        c.disconnect()
        c.close()


def _place_grid(b, prefix, per_cell, clean=False):
    """Connects PREFIX-i clients until each (frontend, owner worker) cell
    holds per_cell of them.  Returns [(cid, RawClient, fe, owner)]; the
    others are disconnected and their sessions discarded."""
    cells = {(fe, w): [] for fe in (0, 1) for w in range(N_FO)}
    for i in range(300):
        if all(len(v) >= per_cell for v in cells.values()):
            break
        cid = "%s-%d" % (prefix, i)
        w = _owner(cid)
        if all(len(cells[(fe, w)]) >= per_cell for fe in (0, 1)):
            continue   # this owner's cells are full: skip the connection
        c, _ = _connect_raw(b.port, cid, clean)
        fe = b.frontend_of(cid)
        if len(cells[(fe, w)]) < per_cell:
            cells[(fe, w)].append((cid, c, fe, w))
            continue
        c.disconnect()
        c.close()
        if not clean:
            d, _ = _connect_raw(b.port, cid, True)
            d.disconnect()
            d.close()
    else:
        fail("300 client ids did not fill every (frontend, worker) cell: "
             "%r" % {k: len(v) for k, v in cells.items()})
    return [x for k in sorted(cells) for x in cells[k]]


def _grid_subs(b, prefix, per_cell):
    """Persistent subscribers (Sub) in every (frontend, owner) cell,
    subscribed, not started; each has .owner."""
    subs = []
    for cid, c, fe, w in _place_grid(b, prefix, per_cell):
        s = Sub(b, cid, c, fe)
        s.owner = w
        s.subscribe()
        subs.append(s)
    return subs


def _recovery_lines(log, n=40):
    """The broker's log lines about recovery and deaths."""
    pat = re.compile(r"recovered|last words|stale|released|killed by|"
                     r"respawned|exited with|restart|chain|without a client")
    lines = [ln for ln in log.splitlines() if pat.search(ln)]
    return "\n".join(lines[-n:])


def _expect_retained(b, cid, want, what):
    """A new clean client cid subscribes to wk/ret/# and must get exactly
    the retained messages want ({topic: payload}), each once, with
    RETAIN."""
    c = raw_client(b.port, cid)
    check_eq(c.subscribe([("wk/ret/#", 1)]), [1], "SUBACK of %s" % cid)
    got = []
    for _ in want:
        p = c.recv_publish(timeout=3, what="retained message for %s (%s)"
                           % (cid, what))
        got.append((p.topic, p.payload, p.retain))
    extra = []
    while True:
        p = c.read(0.4)
        if p is None:
            break
        extra.append(p)
    c.disconnect()
    c.close()
    check_eq(sorted(got), sorted((t, v, True) for t, v in want.items()),
             "retained messages for a new subscriber %s" % what)
    check_eq(extra, [], "more retained messages than published %s" % what)


def _stop_and_check_stream(subs, pubs, settle=1.5):
    """Lets publishers run for settle seconds, stops them, waits for
    every delivery; raises thread errors."""
    time.sleep(settle)
    for p in pubs:
        p.finish()
    _wait_all_delivered(subs, pubs, 20)
    time.sleep(0.5)   # quiet time for late duplicates


@timeout(60)
def test_kill_workers_under_qos12_load():
    """
    kill -9 of fan-out worker 0, then of worker 1, while a QoS 1 and a
    QoS 2 publisher stream to 8 persistent subscribers (QoS 1 and QoS 2
    subscriptions) spread over both frontends and owned by both workers.
    What a user relies on: no subscriber or publisher connection drops
    (the frontends keep the sockets); every message reaches every
    subscriber once, in order (QoS 2 exactly once, and no QoS 1 copy
    either, since nobody reconnected); subscribers owned by the dead worker
    keep getting messages after the respawn (their subscriptions were
    rebuilt); retained messages published before the kill are delivered
    once each to a new subscriber owned by the new worker (its retained
    store was rebuilt); a new client owned by it can connect; a persistent
    client owned by it, offline across the kill, reconnects with session
    present, gets the message queued before the kill and still gets
    messages on its subscription; stats count one restart per worker.
    """
    ringmq_only(WHY_FO)
    with Broker() as b:
        a = admin(b)
        _check_owner_hash(b, a, "wk-own")
        retained = {"wk/ret/%d" % i: b"ret-%d" % i for i in range(3)}
        rp = raw_client(b.port, "wk-retainer")
        for t, v in retained.items():
            rp.publish(t, v, qos=1, retain=True)
        rp.disconnect()
        rp.close()
        # One persistent client per worker, offline, with a QoS 1
        # message queued.
        pers = {}
        for w in range(N_FO):
            cid = _cid_owned_by("wk-pers", w)
            c = raw_client(b.port, cid, clean=False)
            check_eq(c.subscribe([("wk/pers/%d" % w, 1)]), [1], "SUBACK")
            c.disconnect()
            c.close()
            pers[w] = cid
        qp = raw_client(b.port, "wk-queuer")
        for w in range(N_FO):
            qp.publish("wk/pers/%d" % w, b"before-%d" % w, qos=1)

        subs = _grid_subs(b, "wk-sub", 2)
        pubs = _qos12_pubs(b, "wk", persistent=False)
        start_kids = b.children()
        kills = {}
        try:
            for t in subs + pubs:
                t.start()
            time.sleep(1.5)
            for w in range(N_FO):
                t_kill = time.monotonic()
                old = b.kill_child("fanout", w)
                new = b.wait_child("fanout", w, old, timeout=10)
                t_back = time.monotonic()
                kills[w] = (old, new, t_kill, t_back)
                # CONNECT handled by the new worker; its retained store.
                _expect_retained(b, _cid_owned_by("wk-fresh%d" % w, w),
                                 retained, "after worker %d's respawn" % w)
                # The offline session it owns survived, with its queue
                # and its subscription.
                c = RawClient(b.port)
                check_eq(c.connect(pers[w], clean=False), (1, 0),
                         "%s (worker %d) reconnect: (session present, rc)"
                         % (pers[w], w))
                m = c.recv_publish(timeout=3, what="message queued for %s "
                                   "before the kill" % pers[w])
                check_eq(m.payload, b"before-%d" % w, "queued payload")
                qp.publish("wk/pers/%d" % w, b"after-%d" % w, qos=1)
                m = c.recv_publish(timeout=3, what="message for %s after "
                                   "the kill" % pers[w])
                check_eq(m.payload, b"after-%d" % w, "payload after")
                c.disconnect()
                c.close()
                time.sleep(1.5)
            t_end = time.monotonic()
            _stop_and_check_stream(subs, pubs, 0.5)
        finally:
            _stop_all(subs, pubs)
        summary = _check_deliveries(subs, pubs, q1_dup_flag_required=True)
        for s in subs:
            _check_not_disturbed(s)
            _, _, t_kill, t_back = kills[s.owner]
            with s.lock:
                after = sum(1 for t in s.arrivals if t > t_back + 0.1)
            check(after >= 100, "%s (worker %d): only %d messages after "
                  "its worker came back" % (s.cid, s.owner, after))
            gap = s.max_gap(t_kill - 0.2, t_end)
            check(gap < 1.5, "%s (worker %d): no message for %.2f s "
                  "around the kill" % (s.cid, s.owner, gap))
        for p in pubs:
            check_eq(p.disconnects, 0, "%s disconnects" % p.cid)
            check(p.max_flow < 1.5, "%s: a flow took %.2f s"
                  % (p.cid, p.max_flow))
        qp.disconnect()
        qp.close()
        kids = b.children()
        for w in range(N_FO):
            check_eq(kids[("fanout", w)], kills[w][1], "worker %d pid" % w)
        for fe in (0, 1):
            check_eq(kids[("frontend", fe)], start_kids[("frontend", fe)],
                     "frontend %d pid" % fe)
        st = a.call("stats")
        check_eq([(w["pid"], w["restarts"]) for w in st["workers"]],
                 [(kills[w][1], 1) for w in range(N_FO)],
                 "workers (pid, restarts) in stats")
        check_eq([f["restarts"] for f in st["frontends"]], [0, 0],
                 "frontend restarts")
        log = b.log()
        for w in range(N_FO):
            check(re.search(r"fanout %d \(pid %d\) killed by signal 9"
                            % (w, kills[w][0]), log),
                  "no log line for the kill of worker %d" % w)
            check(re.search(r"fan-out worker %d: \d+ sessions with \d+ "
                            r"subscriptions recovered" % w, log),
                  "no 'recovered' line of worker %d; recovery lines:\n%s"
                  % (w, _recovery_lines(log)))
        check_broker_serves(b, "after the workers were killed")
        for s in subs:
            s.finish()
        a.close()
        print("owners %s; kills (worker, old, new, respawn s) %s; pubs "
              "(cid, sent, longest flow) %s; subs (cid, fe, q1 redeliveries,"
              " q2 re-sends, disconnects) %s"
              % (sorted((s.cid, s.fe, s.owner) for s in subs),
                 [(w, o, n, round(tb - tk, 3))
                  for w, (o, n, tk, tb) in sorted(kills.items())],
                 [(p.cid, p.sent, round(p.max_flow, 3)) for p in pubs],
                 summary))


@timeout(60)
def test_stopped_worker_makes_publishers_wait_not_subscribers_lose():
    """
    A fan-out worker that takes nothing for seconds (stopped here; a
    worker in a crash loop waits as long for its respawn) holds the
    publishers back: a frontend takes no PUBLISH while that worker leaves
    its ring untouched for 100 ms, so the outage does not pile up,
    acknowledged, in the ring, to reach the subscribers' queues at once when
    the worker is back.  With max_queued_messages 50, a persistent QoS 1
    subscriber that keeps reading gets every message a QoS 1 publisher sent
    at about 200/s across 2 s of the worker stopped, in order (before: about
    400 were acknowledged during the stop and all but about 50 of them
    dropped at SIGCONT).  The frontend says what happens.
    """
    ringmq_only(WHY)
    with Broker({"max_queued_messages": 50},
                ringmq_options={"fanout_workers": 1}) as b:
        sub = PahoClient(b.port, "sw-sub", clean=False)
        sub.connect()
        sub.subscribe("sw/t", 1)
        pub = PahoClient(b.port, "sw-pub")
        pub.connect()
        sent, stop = [], threading.Event()

        def publish():
            i = 0
            while not stop.is_set():
                pub.publish("sw/t", b"%d" % i, qos=1, timeout=15)
                sent.append(i)
                i += 1
                time.sleep(0.005)

        t = threading.Thread(target=publish, daemon=True)
        t.start()
        time.sleep(0.5)
        pid = b.children()[("fanout", 0)]
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(2.0)
            during = len(sent)
        finally:
            os.kill(pid, signal.SIGCONT)
        time.sleep(1.0)
        stop.set()
        t.join(20)
        check(not t.is_alive(), "publisher did not finish")
        got = [int(m.payload) for m in sub.get_n(len(sent), 10)]
        sub.expect_none(0.3)
        print("sent %d (%d by the end of the stop), received %d"
              % (len(sent), during, len(got)))
        check_eq(got, sent, "messages received, in order")
        check(re.search(r"worker 0 has taken nothing from frontend \d's "
                        r"ring for \d+ ms \(down, recovering, stopped or "
                        r"busy\): PUBLISH, CONNECT and SUBSCRIBE of its "
                        r"clients wait", b.log()),
              "no stall warning in the log:\n" + b.log_tail())
        check(re.search(r"worker 0 takes frontend \d's records again",
                        b.log()), "no recovery notice:\n" + b.log_tail())
        sub.stop()
        pub.stop()


@timeout(60)
def test_worker_stopped_again_and_again_loses_no_accepted_publish():
    """
    A publisher streams 32 kB QoS 0 messages as fast as it can while the
    only worker is stopped and continued 25 times (250 ms each, past the
    100 ms after which the frontend holds publishers back).  Every PUBLISH
    the frontend took in was posted (its counters of messages taken and of
    messages by QoS agree) and no message block is left behind at exit.
    (A PUBLISH whose stall check flipped between the check before the copy
    and the post after it was acknowledged and dropped, its block leaked;
    found by a review.)
    """
    ringmq_only(WHY)
    with Broker(ringmq_options={"fanout_workers": 1, "frontends": 1}) as b:
        pub = RawClient(b.port, timeout=30)
        pub.connect("sr-pub")
        chunk = b"".join(enc_publish("sr/t", b"p" * 32000, 0)
                         for _ in range(50))
        stop = threading.Event()

        def blast():
            while not stop.is_set():
                try:
                    pub.sock.sendall(chunk)
                except OSError:
                    return

        t = threading.Thread(target=blast, daemon=True)
        t.start()
        pid = b.children()[("fanout", 0)]
        for _ in range(25):
            time.sleep(0.15)
            os.kill(pid, signal.SIGSTOP)
            time.sleep(0.25)
            os.kill(pid, signal.SIGCONT)
        stop.set()
        t.join(30)
        time.sleep(1.0)
        st = admin(b).call("stats")["frontends"][0]
        print("messages_in %d, by QoS %r, stall warnings %d"
              % (st["messages_in"], st["messages_in_qos"],
                 b.log().count("has taken nothing")))
        check_eq(st["messages_in"], sum(st["messages_in_qos"]),
                 "PUBLISHes taken in against those posted")
        pub.close()
    m = re.search(r"arena at exit: (\d+) blocks", b.log())
    check(m, "no arena report in the log")
    check_eq(int(m.group(1)), 0, "arena blocks in use at exit")


@timeout(60)
def test_restart_worker_under_qos12_load():
    """
    restart_worker index 0 through the admin socket while a QoS 1 and a
    QoS 2 publisher stream to persistent subscribers on both frontends,
    owned by both workers.  What an operator relies on: the answer says it
    is restarting; worker 0 exits cleanly (status 0) and comes back with a
    new pid, stats count 1 restart for it and none for the others; no
    client is disconnected; every message reaches every subscriber once,
    in order (QoS 2 exactly once, no QoS 1 copy), and the subscribers
    owned by worker 0 keep getting messages after the restart.
    """
    ringmq_only(WHY_FO)
    with Broker() as b:
        a = admin(b)
        subs = _grid_subs(b, "rw-sub", 1)
        pubs = _qos12_pubs(b, "rw", persistent=False)
        start_kids = b.children()
        try:
            for t in subs + pubs:
                t.start()
            time.sleep(1.2)
            old = b.expect_restart("fanout", 0)
            t0 = time.monotonic()
            check_eq(a.call("restart_worker", index=0),
                     {"role": "fanout", "index": 0, "restarting": True},
                     "restart_worker result")
            new = b.wait_child("fanout", 0, old, timeout=10)
            t_back = time.monotonic()
            check(new != old, "worker 0 pid unchanged")
            _stop_and_check_stream(subs, pubs, 1.5)
        finally:
            _stop_all(subs, pubs)
        summary = _check_deliveries(subs, pubs, q1_dup_flag_required=True)
        for s in subs:
            _check_not_disturbed(s)
            with s.lock:
                after = sum(1 for t in s.arrivals if t > t_back + 0.1)
            check(after >= 100, "%s (worker %d): only %d messages after "
                  "the restart" % (s.cid, s.owner, after))
        for p in pubs:
            check_eq(p.disconnects, 0, "%s disconnects" % p.cid)
        kids = b.children()
        check_eq(kids, {k: (new if k == ("fanout", 0) else v)
                        for k, v in start_kids.items()}, "children after")
        st = a.call("stats")
        check_eq([(w["pid"], w["restarts"]) for w in st["workers"]],
                 [(new, 1), (start_kids[("fanout", 1)], 0)],
                 "workers (pid, restarts) in stats")
        check_eq([f["restarts"] for f in st["frontends"]], [0, 0],
                 "frontend restarts in stats")
        log = b.log()
        check("fanout 0: restart asked by the administrator" in log,
              "no log line for the restart")
        check("fanout 0 (pid %d) exited with status 0" % old in log,
              "worker 0 did not exit cleanly; recovery lines:\n%s"
              % _recovery_lines(log))
        check_broker_serves(b, "after restart_worker")
        for s in subs:
            s.finish()
        a.close()
        print("restart took %.3f s; pubs (cid, sent) %s; subs (cid, fe, "
              "worker) %s; %s"
              % (t_back - t0, [(p.cid, p.sent) for p in pubs],
                 [(s.cid, s.fe, s.owner) for s in subs], summary))


class Churn(threading.Thread):
    """
    Clean-session clients (PREFIX-0..3, in turn) that connect, subscribe to
    a topic of their own, publish a QoS 1 message to it and get it back,
    unsubscribe and disconnect, in a loop: CONNECT, SUBSCRIBE and
    UNSUBSCRIBE records for the workers while they die.  A cycle cut by a
    closed connection (its frontend died) is counted, not an error; any
    other failure (an answer that never came on a live connection, a wrong
    answer) is kept in errors.
    """

    def __init__(self, b, prefix):
        super().__init__(daemon=True, name=prefix)
        self.b = b
        self.prefix = prefix
        self.done = 0
        self.cut = 0
        self.errors = []
        self.stop_ev = threading.Event()
        self.c = None

    def _cycle(self, i):
        cid = "%s-%d" % (self.prefix, i % 4)
        topic = "ch/churn/%s" % cid
        self.c = RawClient(self.b.port, timeout=5.0)
        self.c.connect(cid, clean=True)
        check_eq(self.c.subscribe([(topic, 1)]), [1], "%s SUBACK" % cid)
        self.c.publish(topic, b"%d" % i, qos=1)
        m = self.c.recv_publish(what="%s: own message" % cid)
        check_eq((m.topic, m.payload), (topic, b"%d" % i), "%s message"
                 % cid)
        self.c.unsubscribe([topic])
        self.c.disconnect()
        self.c.close()

    def run(self):
        i = 0
        while not self.stop_ev.is_set():
            try:
                self._cycle(i)
                self.done += 1
            except (Closed, OSError):
                self.cut += 1
            except TestFailure as e:
                if "closed the connection" in str(e):
                    self.cut += 1
                else:
                    self.errors.append(e)
            finally:
                if self.c is not None:
                    self.c.close()
            i += 1
            time.sleep(0.005)

    def finish(self):
        self.stop_ev.set()
        self.join(15)
        check(not self.is_alive(), "%s did not stop" % self.prefix)


CHILDREN = [("frontend", 0), ("frontend", 1), ("fanout", 0), ("fanout", 1)]


# CHAOS_KILLS=N makes the run N kills long (the issue asks for 100 once).
CHAOS_KILLS = int(os.environ.get("CHAOS_KILLS") or 20)


@timeout(40 + 2 * CHAOS_KILLS)
def test_chaos_random_kills_lose_nothing_and_leak_nothing():
    """
    Chaos: for 20 s (CHAOS_KILLS=N: N s), every second, kill -9 of a
    child chosen at random (frontend or fan-out worker; seeded: the seed
    is printed and given in
    any failure, CHAOS_SEED=N replays it) while persistent QoS 1 and QoS 2
    publishers (reconnecting and completing their flows the MQTT way)
    stream to 8 persistent subscribers on both frontends, owned by both
    workers, and clean clients connect, subscribe, get their own message
    and unsubscribe in a loop (Churn).  What a user relies on: every
    subscriber ends with every message, in order, QoS 2 exactly once; a
    churn cycle fails only by a closed connection; every child is running
    again and stats count each one's restarts; the broker serves; once every
    client is gone and every session discarded, the arena holds what it
    held before any client came (stats, and 0 blocks at exit).
    """
    ringmq_only(WHY_FO)
    seed = int(os.environ.get("CHAOS_SEED") or
               int.from_bytes(os.urandom(4), "big"))
    print("chaos seed %d" % seed)
    rng = random.Random(seed)
    kills = []

    def context(log):
        return ("\nchaos seed %d (replay: CHAOS_SEED=%d); kills (child, "
                "old pid, new pid, respawn s): %s\nrecovery log lines:\n%s"
                % (seed, seed, kills, _recovery_lines(log, 60)))

    with Broker() as b:
        try:
            a = admin(b)
            check(_wait(lambda: a.call("clients")["total"] == 0, 3),
                  "clients at start")
            base = _wait(lambda: (lambda x: x if x[0] == 0 else None)(
                _arena(a)), 2) or _arena(a)
            start_kids = b.children()
            check_eq(sorted(start_kids), sorted(CHILDREN), "children")
            subs = _grid_subs(b, "ch-sub", 2)
            pubs = _qos12_pubs(b, "ch", persistent=True)
            churn = Churn(b, "ch-churn")
            try:
                churn.start()
                for t in subs + pubs:
                    t.start()
                time.sleep(1.0)
                nxt = time.monotonic()
                for _ in range(CHAOS_KILLS):
                    victim = rng.choice(CHILDREN)
                    t0 = time.monotonic()
                    old = b.kill_child(*victim)
                    new = b.wait_child(victim[0], victim[1], old,
                                       timeout=10)
                    kills.append(("%s %d" % victim, old, new,
                                  round(time.monotonic() - t0, 3)))
                    nxt += 1.0
                    time.sleep(max(0.0, nxt - time.monotonic()))
                time.sleep(0.5)
                churn.finish()
                for p in pubs:
                    p.finish()
                _wait_all_delivered(subs, pubs, 20)
                time.sleep(0.5)
            finally:
                churn.stop_ev.set()
                _stop_all(subs, pubs)
            if churn.errors:
                raise churn.errors[0]
            check(churn.done >= 100, "churn: only %d cycles (%d cut)"
                  % (churn.done, churn.cut))
            summary = _check_after_kills(subs, pubs, min_sent=1000)

            # Every child back, with the restarts counted.
            kids = b.children()
            check_eq(sorted(kids), sorted(CHILDREN), "children at the end")
            want_restarts = {c: 0 for c in CHILDREN}
            for k in kills:
                role, idx = k[0].split()
                want_restarts[(role, int(idx))] += 1
            a.close()
            a = admin(b)  # a long run idles the first past 60 s
            st = a.call("stats")
            got_restarts = dict(
                [(("frontend", f["index"]), f["restarts"])
                 for f in st["frontends"]]
                + [(("fanout", w["index"]), w["restarts"])
                   for w in st["workers"]])
            check_eq(got_restarts, want_restarts, "restarts in stats")
            check_broker_serves(b, "after the chaos")

            # Everything goes: connections, then the persistent sessions.
            for s in subs:
                s.finish()
            check(_wait(lambda: a.call("clients")["total"] == 0, 5),
                  "clients left: %r" % a.call("clients"))
            sess = a.call("sessions", limit=1000)
            names = sorted(x["client_id"] for x in sess["sessions"])
            check_eq(names, sorted([s.cid for s in subs]
                                   + ["ch-pub1", "ch-pub2"]),
                     "offline sessions")
            for cid in names:
                r = a.call("sessions", action="expire", client_id=cid)
                check_eq(r["session_discarded"], True, "expire %s" % cid)
            check_eq(a.call("sessions")["total"], 0,
                     "sessions after expire")
            end = _wait(lambda: (lambda x: x if x[0] == base[0] else None)(
                _arena(a)), 5) or _arena(a)
            a.close()
            print("churn cycles %d, cut %d" % (churn.done, churn.cut))
            print("kills (child, old pid, new pid, respawn s): %s; pubs "
                  "(cid, sent, resends, disconnects, longest flow): %s; per "
                  "sub (cid, fe, q1 redeliveries, q2 re-sends, "
                  "disconnects): %s; arena at start %r, at the end %r"
                  % (kills, [(p.cid, p.sent, p.resends, p.disconnects,
                              round(p.max_flow, 3)) for p in pubs],
                     summary, base, end))
            check_eq(end[0], base[0], "arena blocks in use after every "
                     "client and session is gone (start %r, end %r)"
                     % (base, end))
        except TestFailure as e:
            raise TestFailure(str(e) + context(b.log())) from e
    m = re.search(r"arena at exit: (\d+) blocks", b.log())
    check(m, "no arena report in the log" + context(b.log()))
    check(int(m.group(1)) == 0, "arena blocks in use at exit: %s"
          % m.group(1) + context(b.log()))
