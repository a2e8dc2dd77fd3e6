"""
test_shared_crash.py -- shared subscriptions when a fan-out worker dies
(kill -9): worker 0 holds the groups and chooses the members, each member's
owner pushes its deliveries (docs/architecture.md, "Shared
subscriptions").  What a user relies on: no member or publisher connection
drops, every QoS 1 message published reaches exactly one member of the
group, and the groups are still served (members still spread) after the
respawn; crash points in the hand-over between workers lose and duplicate
nothing either.
"""

import os
import random
import threading
import time

from harness import (
    PUBLISH, Broker, admin, check, check_eq, raw_client, ringmq_only)
from mqtt5_wire import SESSION_EXPIRY, client5, sub_opts
from test_crash import (
    CHILDREN, T_Q1, T_Q2, Sub, _cid_owned_by, _place_grid, _qos12_pubs)

WHY = "fan-out worker crash recovery is ringmq's"
TOPIC = "shc/t"
GROUP = "$share/g/" + TOPIC


class Member(threading.Thread):
    """A member of GROUP that acknowledges everything it gets."""

    def __init__(self, port, cid, group=GROUP):
        threading.Thread.__init__(self, daemon=True)
        self.c = raw_client(port, cid)
        check_eq(self.c.subscribe([(group, 1)]), [1], "SUBACK of " + cid)
        self.got = []
        self.stop = False
        self.error = None

    def run(self):
        try:
            while not self.stop:
                p = self.c.read(0.2)
                if p is None:
                    continue
                check_eq(p.type, PUBLISH, "packet type")
                self.c.ack(p)
                self.got.append(p.payload)
        except Exception as e:  # reported by _check
            self.error = e


def _publish(port, n, rate, kill_at=()):
    """n QoS 1 messages at `rate` per second; kill_at: (index, callable)
    pairs run once message index has been sent."""
    pub = raw_client(port, "shc-pub")
    todo = dict(kill_at)
    for i in range(n):
        pub.publish(TOPIC, b"%d" % i, qos=1)
        if i in todo:
            todo.pop(i)()
        time.sleep(1.0 / rate)
    return pub


def _check(members, n, what):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and \
            sum(len(m.got) for m in members) < n:
        time.sleep(0.1)
    time.sleep(0.5)
    for m in members:
        m.stop = True
    for m in members:
        m.join(2)
        check(m.error is None, "%s: member failed: %r" % (what, m.error))
    got = [p for m in members for p in m.got]
    check_eq(len(set(got)), n, "%s: distinct messages delivered" % what)
    check_eq(len(got), n, "%s: deliveries (a duplicate is a bug)" % what)
    for m in members:
        check(len(m.got) > 0, "%s: a member got nothing" % what)


def _members(b, prefix):
    """Four members, two owned by each worker, worker 0's first."""
    ms = [Member(b.port, _cid_owned_by("%s%d" % (prefix, k), w))
          for w in (0, 1) for k in (0, 1)]
    for m in ms:
        m.start()
    return ms


def test_kill_workers_under_shared_load():
    """kill -9 of worker 0 (the share worker), then of worker 1, while
    600 QoS 1 messages go to a group of four members owned by both."""
    ringmq_only(WHY)
    with Broker() as b:
        ms = _members(b, "shc-a")
        kids = b.children()
        kills = []

        def kill(w):
            old = b.kill_child("fanout", w)
            kills.append((w, old))

        _publish(b.port, 600, 200,
                 kill_at=[(150, lambda: kill(0)), (350, lambda: kill(1))])
        for w, old in kills:
            b.wait_child("fanout", w, old, timeout=10)
        _check(ms, 600, "across two worker kills")
        check_eq([b.children().get(("frontend", i)) for i in (0, 1)],
                 [kids.get(("frontend", i)) for i in (0, 1)],
                 "frontend pids (none should restart)")
        # The groups were rebuilt: a new round is still shared by all.
        ms = _members(b, "shc-b")
        _publish(b.port, 40, 400)
        _check(ms, 40, "after the respawns")


def test_crash_point_in_shared_delivery():
    """Worker 1 dies right after pushing a shared delivery it got from
    worker 0, before consuming the worker record: its next incarnation
    finds the delivery pushed and does not push it again."""
    ringmq_only(WHY)
    with Broker(env={"RINGMQ_CRASH_POINT": "fo_share_delivered:5"}) as b:
        b.allow_child_deaths()
        ms = _members(b, "shc-c")
        _publish(b.port, 100, 200)
        _check(ms, 100, "across a crash in a shared delivery")
        check("crash point fo_share_delivered reached" in b.log(),
              "the crash point did not fire")
        check("was pushed before a restart" in b.log(),
              "the new worker did not redo the interrupted record")


def test_restart_worker0_keeps_the_groups():
    """restart_worker 0 (the share worker, SIGTERM) keeps every group: a
    member subscribed before gets messages after (its successor rebuilds
    the groups from shared memory; only a stopping broker gives them
    back)."""
    ringmq_only(WHY)
    with Broker() as b:
        a = admin(b)
        m = client5(b.port, "shr-m1", clean=False,
                    props=[(SESSION_EXPIRY, 3600)])
        check_eq(m.subscribe([("$share/g/shr/t", sub_opts(1))]), [1],
                 "SUBACK")
        p = client5(b.port, "shr-pub")
        p.publish("shr/t", b"before", qos=1)
        check_eq(m.recv_publish().payload, b"before", "before the restart")
        old = b.expect_restart("fanout", 0)
        a.call("restart_worker", index=0)
        b.wait_child("fanout", 0, old, timeout=10)
        p.publish("shr/t", b"after", qos=1)
        check_eq(m.recv_publish(timeout=3).payload, b"after",
                 "after restart_worker 0")


def test_crash_point_in_redispatch():
    """Worker 0 dies while handling a message an owner handed back (an
    offline member cannot take QoS 0): its successor redoes the record
    and the message reaches the other member; nothing is lost."""
    ringmq_only(WHY)
    with Broker(env={"RINGMQ_CRASH_POINT": "fo_share_redispatch:1"}) as b:
        b.allow_child_deaths()
        off = client5(b.port, _cid_owned_by("shr-off", 1), clean=False,
                      props=[(SESSION_EXPIRY, 3600)])
        check_eq(off.subscribe([("$share/g/xr/t", sub_opts(0))]), [0],
                 "SUBACK")
        off.disconnect()
        on = client5(b.port, _cid_owned_by("shr-on", 0))
        check_eq(on.subscribe([("$share/g/xr/t", sub_opts(0))]), [0],
                 "SUBACK")
        p = client5(b.port, "xr-pub")
        for i in range(4):
            p.publish("xr/t", b"m%d" % i, qos=0)
            time.sleep(0.3)
        got = sorted(on.recv_publish(timeout=5).payload for _ in range(4))
        check_eq(got, [b"m0", b"m1", b"m2", b"m3"], "messages of the online "
                 "member (the other is offline, QoS 0)")
        check("crash point fo_share_redispatch reached" in b.log(),
              "the crash point did not fire")


def test_crash_point_in_hand_back():
    """A member's session ends with QoS 1 messages it never acknowledged;
    its owner dies in the middle of handing one back (record let go,
    return not pushed yet): the successor finishes it, the rest follow,
    and the other member gets every message once."""
    ringmq_only(WHY)
    with Broker(env={"RINGMQ_CRASH_POINT": "fo_share_handing_back:1"}) as b:
        b.allow_child_deaths()
        quiet = client5(b.port, _cid_owned_by("shh-q", 1))
        check_eq(quiet.subscribe([("$share/g/hb/t", sub_opts(1))]), [1],
                 "SUBACK")
        ms = [Member(b.port, _cid_owned_by("shh-m", 0), "$share/g/hb/t")]
        ms[0].start()
        p = client5(b.port, "hb-pub")
        for i in range(10):
            p.publish("hb/t", b"%d" % i, qos=1)
        held = [quiet.recv_publish(ack=False) for _ in range(5)]
        check(all(x.topic == "hb/t" for x in held), "held %r" % held)
        quiet.abort()  # Session Expiry 0: its session ends now
        _check(ms, 10, "hand-back across a crash")
        check("crash point fo_share_handing_back reached" in b.log(),
              "the crash point did not fire")
        check("handed back after a restart" in b.log(),
              "the successor did not finish the hand-back")


class SharedSub(Sub):
    """test_crash.Sub, a member of $share/g/ on both publishers' topics."""

    def subscribe(self):
        codes = self.c.subscribe([("$share/g/" + T_Q1, 1),
                                  ("$share/g/" + T_Q2, 2)])
        check_eq(codes, [1, 2], "%s SUBACK" % self.cid)


def test_chaos_shared_random_kills():
    """kill -9 of a random child (frontend or worker) every 0.8 s, twelve
    times, while persistent QoS 1 and QoS 2 publishers (reconnecting the
    MQTT way) stream to one group of eight persistent members on both
    frontends, owned by both workers (members reconnect when their
    frontend dies).  Every message reaches the group: QoS 1 at least
    once, QoS 2 exactly once across all members; every child runs again.
    CHAOS_SEED=N replays a run."""
    ringmq_only(WHY)
    seed = int(os.environ.get("CHAOS_SEED") or
               int.from_bytes(os.urandom(4), "big"))
    rng = random.Random(seed)
    kills = []
    with Broker() as b:
        subs = []
        for cid, c, fe, w in _place_grid(b, "shch", 2):
            s = SharedSub(b, cid, c, fe)
            s.subscribe()
            subs.append(s)
        pubs = _qos12_pubs(b, "shch", persistent=True)
        try:
            for t in subs + pubs:
                t.start()
            time.sleep(1.0)
            for _ in range(12):
                victim = rng.choice(CHILDREN)
                old = b.kill_child(*victim)
                new = b.wait_child(victim[0], victim[1], old, timeout=10)
                kills.append(("%s %d" % victim, old, new))
                time.sleep(0.8)
            time.sleep(0.5)
            for p in pubs:
                p.finish()

            def union(topic):
                got = set()
                for s in subs:
                    with s.lock:
                        got |= s.seen[topic]
                return got

            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not all(
                    len(union(p.topic)) >= p.sent for p in pubs):
                time.sleep(0.1)
            time.sleep(0.5)
        finally:
            for s in subs:
                s.stop_ev.set()
            for s in subs + pubs:
                s.join(5)
        why = "\nchaos seed %d (replay: CHAOS_SEED=%d); kills %s" % (
            seed, seed, kills)
        for s in subs:
            check(not s.errors, "%s: %r%s" % (s.cid, s.errors, why))
            check(not s.bad, "%s: %r%s" % (s.cid, s.bad, why))
            check(not s.q2_dups, "%s: QoS 2 duplicates %r%s"
                  % (s.cid, s.q2_dups, why))
        for p in pubs:
            check(p.sent > 300, "%s sent only %d%s" % (p.cid, p.sent, why))
            want = set(range(p.sent))
            got = union(p.topic)
            check(want <= got, "%s: %d of %d messages never reached the "
                  "group (first missing %r)%s"
                  % (p.topic, len(want - got), p.sent,
                     sorted(want - got)[:5], why))
        firsts = [x for s in subs for x in s.firsts[T_Q2]]
        check_eq(len(firsts), len(set(firsts)),
                 "QoS 2 deliveries across the group (each once)" + why)
        check_eq(sorted(b.children()), sorted(CHILDREN),
                 "children at the end")
        print("chaos seed %d, kills %s, per member q1/q2 firsts %s"
              % (seed, kills, [(s.cid, len(s.firsts[T_Q1]),
                                len(s.firsts[T_Q2])) for s in subs]))
