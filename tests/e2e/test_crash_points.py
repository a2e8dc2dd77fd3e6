"""
test_crash_points.py -- a child killed at the exact instruction windows the
crash story names (docs/architecture.md): the broker's crash points
(RINGMQ_CRASH_POINT=NAME[:N], common/crashpoint.h) make the first
incarnation of a child kill itself there with SIGKILL.  Each test checks
what the respawned child makes of it: no QoS 2 message twice, none lost,
no session stuck, no reference leaked.
"""

import re
import time

from harness import (
    Broker, RawClient, TestFailure, check, check_eq, raw_client, ringmq_only,
    timeout)

WHY = "crash points are ringmq's"


def _wait_log(b, text, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while text not in b.log():
        if time.monotonic() > deadline:
            raise TestFailure("log line %r not seen; log tail:\n%s"
                              % (text, b.log_tail()))
        time.sleep(0.05)


def _drain(c, quiet=1.5):
    """Every PUBLISH c receives until quiet (acknowledged), as payloads."""
    got = []
    while True:
        try:
            got.append(c.recv_publish(timeout=quiet).payload)
        except TestFailure:
            return got


def _armed(point, options=None):
    """A broker whose crash point `point` is armed (children may die)."""
    b = Broker(ringmq_options=options or {},
               env={"RINGMQ_CRASH_POINT": point}).start()
    b.allow_child_deaths()
    return b


def _subscribers(b, prefix, topic, qos, n=3):
    """n clients subscribed to topic, named prefix-0 ..."""
    subs = [raw_client(b.port, "%s-%d" % (prefix, i)) for i in range(n)]
    for s in subs:
        s.subscribe([(topic, qos)])
    return subs


def _goodbye(clients):
    for c in clients:
        c.disconnect()
        c.close()


def _arena_empty_at_exit(b):
    b.stop()
    check("arena at exit: 0 blocks" in b.log(),
          "arena not empty at exit:\n%s" % b.log_tail())


def _published_to_killed_frontend(point, options, prefix):
    """Three QoS 0 subscribers and a publisher on frontend 0, whose crash
    point `point` fires as a message goes out.  Once frontend 0 is back,
    the old clients gone, a new client gets its own message; returns the
    broker and how many references the new incarnation said it released
    (checking that none was released twice)."""
    b = _armed(point, options)
    topic = prefix.replace("-", "/")
    subs = _subscribers(b, prefix, topic, 0)
    pub = raw_client(b.port, prefix + "-pub")
    pub.publish(topic, b"m", qos=0)
    _wait_log(b, "frontend 0 respawned")
    for c in subs + [pub]:
        c.close()
    c = raw_client(b.port, prefix + "-after")  # the new frontend serves
    c.subscribe([(topic, 0)])
    c.publish(topic, b"after", qos=0)
    check_eq(_drain(c), [b"after"], "own message after the respawn")
    log = b.log()
    check("stale handle" not in log, "a reference released twice:\n%s"
          % b.log_tail())
    c.disconnect()
    c.close()
    time.sleep(0.3)
    m = re.search(r"released (\d+) references left in output queues", log)
    return b, int(m.group(1)) if m else 0


@timeout(60)
def test_worker_killed_after_fanning_out_redoes_without_duplicates():
    """Worker killed after pushing a QoS 2 PUBLISH to its subscribers but
    before consuming the record, while a message from the other frontend
    waits: the new worker redoes the record first, skips the subscribers
    that have it, and each subscriber gets every message once."""
    ringmq_only(WHY)
    b = _armed("fo_published", {"fanout_workers": 1})
    subs = _subscribers(b, "cp-sub", "cp/t", 2)
    p1 = raw_client(b.port, "cp-pub-1")
    p2 = raw_client(b.port, "cp-pub-2")
    p1.publish("cp/t", b"first", qos=2, complete=False)
    p2.publish("cp/t", b"second", qos=2, complete=False)
    _wait_log(b, "fanout 0 respawned")
    for s in subs:
        got = _drain(s)
        check_eq(sorted(got), [b"first", b"second"],
                 "%s deliveries" % s.client_id)
    check("redone after a restart" in b.log(),
          "the redo skipped nothing:\n%s" % b.log_tail())
    _goodbye(subs + [p1, p2])
    time.sleep(0.3)
    _arena_empty_at_exit(b)


@timeout(60)
def test_worker_killed_amid_a_fan_out_releases_the_references_left():
    """Worker killed after pushing a message to two of its three
    subscribers, while it still counts the third delivery's reference
    (proc_t.held_n, "Batched references"): the new worker releases that
    reference, the redo gives the third subscriber its copy, and the
    message's block is freed at the end: nothing leaked, nothing
    released twice."""
    ringmq_only(WHY)
    b = _armed("fo_pushed_one:2", {"fanout_workers": 1})
    subs = _subscribers(b, "cp-fan", "cp/fan", 1)
    pub = raw_client(b.port, "cp-fan-pub")
    pub.publish("cp/fan", b"m", qos=1, complete=False)
    _wait_log(b, "fanout 0 respawned")
    for s in subs:
        check_eq(_drain(s), [b"m"], "%s deliveries" % s.client_id)
    log = b.log()
    check("1 references its predecessor had taken for deliveries and not "
          "pushed released" in log,
          "the count left by the kill was not released:\n%s" % b.log_tail())
    check("stale handle" not in log, "a reference released twice:\n%s"
          % b.log_tail())
    _goodbye(subs + [pub])
    time.sleep(0.3)
    _arena_empty_at_exit(b)


@timeout(60)
def test_frontend_killed_holding_written_references_releases_them():
    """Frontend killed after writing a message to two of its three
    subscribers, whose references it counts until the end of the flush
    round (proc_t.held_n): the new frontend releases them, so the block
    is freed once the rest is gone, and none is released twice."""
    ringmq_only(WHY)
    # References written and counted: the three SUBACKs', then the
    # message's (held_n 2 at the fifth).
    b, n = _published_to_killed_frontend("fe_written_held:5",
                                         {"frontends": 1}, "cp-held")
    check(n >= 2, "the two counted references were not released:\n%s"
          % b.log_tail())
    _arena_empty_at_exit(b)


@timeout(60)
def test_worker_killed_after_a_broadcast_group_redoes_without_duplicates():
    """Worker killed after committing the first broadcast group of a QoS 0
    message (docs/architecture.md, "QoS 0 to many") but before consuming
    its record: the new worker redoes the record, skips the subscribers
    named in the committed group, sends the others theirs, and each
    subscriber gets the message once; nothing leaks."""
    ringmq_only(WHY)
    b = _armed("fo_bcast_committed", {"fanout_workers": 1, "frontends": 2})
    subs = _subscribers(b, "cp-bc", "cp/bc", 0, n=6)
    pub = raw_client(b.port, "cp-bc-pub")
    pub.publish("cp/bc", b"m", qos=0)
    _wait_log(b, "fanout 0 respawned")
    for s in subs:
        check_eq(_drain(s, 0.5), [b"m"], "%s deliveries" % s.client_id)
    m = re.search(r"redone after a restart: (\d+) deliveries made before it "
                  r"skipped, (\d+) made now", b.log())
    check(m is not None and int(m.group(1)) >= 1
          and int(m.group(1)) + int(m.group(2)) == len(subs),
          "the redo did not skip the group's subscribers:\n%s"
          % b.log_tail())
    pub.publish("cp/bc", b"after", qos=0)
    for s in subs:
        check_eq(_drain(s, 0.5), [b"after"],
                 "%s after the respawn" % s.client_id)
    _goodbye(subs + [pub])
    time.sleep(0.3)
    _arena_empty_at_exit(b)


@timeout(60)
def test_frontend_killed_after_taking_a_broadcast_group_releases_it():
    """Frontend killed after it consumed a broadcast group and counted the
    group's references as its own, before queueing any delivery: the new
    frontend releases the count, so the message's block is freed; no
    reference is released twice."""
    ringmq_only(WHY)
    b, n = _published_to_killed_frontend(
        "fe_bcast_taken", {"frontends": 1, "fanout_workers": 1}, "cp-bct")
    check(n >= 3, "the group's references were not released:\n%s"
          % b.log_tail())
    _arena_empty_at_exit(b)


@timeout(60)
def test_frontend_killed_between_qos2_post_and_its_packet_id():
    """Frontend killed after posting an inbound QoS 2 PUBLISH and before
    remembering its packet id: the new frontend finishes the posting, and
    the client's re-send (DUP, same id) is acknowledged, not forwarded."""
    ringmq_only(WHY)
    b = _armed("fe_qos2_posted")
    sub = RawClient(b.port)
    sub.connect("cp-q2-sub", clean=False)
    sub.subscribe([("cp/q2", 2)])
    pub = RawClient(b.port)
    pub.connect("cp-q2-pub", clean=False)
    pid = pub.publish("cp/q2", b"once", qos=2, complete=False)
    pub.expect_closed(5, "publisher's frontend killed")
    _wait_log(b, "finished posting")
    _wait_log(b, "handed back to their owners")
    pub = RawClient(b.port)
    present, _ = pub.connect("cp-q2-pub", clean=False)
    check_eq(present, 1, "publisher's session present")
    pub.publish("cp/q2", b"once", qos=2, pid=pid, dup=True)
    got = []
    try:
        got = _drain(sub)
    except TestFailure:
        pass  # the subscriber was on the killed frontend too
    if sub.closed or not got:
        sub.close()
        sub = RawClient(b.port)
        sub.connect("cp-q2-sub", clean=False)
        got += _drain(sub)
    check_eq(got, [b"once"], "subscriber's copies")
    _goodbye((sub, pub))
    b.stop()


@timeout(60)
def test_frontend_killed_between_inflight_entry_and_consume():
    """Frontend killed after putting a QoS 2 delivery in the inflight
    table and before consuming its record: on reconnect the subscriber
    gets it once (the record is recognised as the entry's)."""
    ringmq_only(WHY)
    b = _armed("fe_inflight_added")
    sub = RawClient(b.port)
    sub.connect("cp-inf-sub", clean=False)
    sub.subscribe([("cp/inf", 2)])
    pub = raw_client(b.port, "cp-inf-pub")
    pub.publish("cp/inf", b"m1", qos=2, complete=False)
    sub.expect_closed(5, "subscriber's frontend killed")
    pub.close()  # it may have been on that frontend too
    _wait_log(b, "handed back to their owners")
    sub = RawClient(b.port)
    present, _ = sub.connect("cp-inf-sub", clean=False)
    check_eq(present, 1, "session present")
    got = _drain(sub)
    check_eq(got, [b"m1"], "deliveries after the crash")
    pub = raw_client(b.port, "cp-inf-pub-2")
    pub.publish("cp/inf", b"m2", qos=2)
    check_eq(_drain(sub), [b"m2"], "deliveries afterwards")
    sub.disconnect()
    sub.close()
    pub.disconnect()
    pub.close()
    b.stop()


@timeout(60)
def test_worker_killed_inside_a_takeover_finishes_it():
    """Worker killed in the middle of attaching the CONNECT that took a
    session over: the new worker finishes the attach when it redoes the
    old connection's DETACH; the new connection gets its CONNACK with
    the session, and the client id is not locked out."""
    ringmq_only(WHY)
    # Attaches in worker 0: the harness's readiness probe, then cp-to,
    # then the takeover.
    b = _armed("fo_attaching:3", {"fanout_workers": 1})
    old = RawClient(b.port)
    old.connect("cp-to", clean=False)
    old.subscribe([("cp/to", 1)])
    new = RawClient(b.port, timeout=10.0)
    present, _ = new.connect("cp-to", clean=False)
    check_eq(present, 1, "session present after the takeover")
    _wait_log(b, "takeover of slot")
    pub = raw_client(b.port, "cp-to-pub")
    pub.publish("cp/to", b"after", qos=1)
    check_eq(_drain(new), [b"after"], "the session's subscription")
    again = RawClient(b.port)
    again.connect("cp-to", clean=True)  # not locked out
    _goodbye((new, again, pub))
    time.sleep(0.3)
    _arena_empty_at_exit(b)


@timeout(60)
def test_worker_killed_after_a_suback_sends_it_once():
    """Worker killed after queueing a SUBACK: the redone SUBSCRIBE is
    recognised, the client gets one SUBACK and the subscription works."""
    ringmq_only(WHY)
    b = _armed("fo_suback_pushed", {"fanout_workers": 1})
    c = raw_client(b.port, "cp-sa")
    check_eq(c.subscribe([("cp/sa", 1)]), [1], "SUBACK")
    _wait_log(b, "fanout 0 respawned")
    _wait_log(b, "was handled before a restart")
    c.publish("cp/sa", b"x", qos=1)
    check_eq(_drain(c), [b"x"], "own message, once")
    c.disconnect()
    c.close()
    time.sleep(0.3)
    _arena_empty_at_exit(b)


@timeout(60)
def test_worker_killed_after_a_connect_answers_it_once():
    """Worker killed after answering a CONNECT and before consuming it:
    the redo sees the session attached with that cookie; the client gets
    exactly one CONNACK and a working session."""
    ringmq_only(WHY)
    # Records of worker 0: the probe's CONNECT and DETACH, then ours.
    b = _armed("fo_handled:3", {"fanout_workers": 1})
    c = RawClient(b.port, timeout=10.0)
    c.connect("cp-conn")
    _wait_log(b, "fanout 0 respawned")
    check_eq(c.subscribe([("cp/conn", 1)]), [1], "SUBACK")
    c.publish("cp/conn", b"y", qos=1)
    check_eq(_drain(c), [b"y"], "own message")
    check("was handled before a restart" in b.log(),
          "no redo seen:\n%s" % b.log_tail())
    c.disconnect()
    c.close()
    time.sleep(0.3)
    _arena_empty_at_exit(b)


@timeout(60)
def test_failed_assertion_leaves_last_words_and_is_respawned():
    """A failed RMQ_ASSERT in a worker (armed with "/assert") writes its
    last words to the panic buffer; the supervisor logs them and respawns
    the worker, which carries on."""
    ringmq_only(WHY)
    b = _armed("fo_handled:3/assert", {"fanout_workers": 1})
    c = RawClient(b.port, timeout=10.0)
    c.connect("cp-assert")
    _wait_log(b, "fanout 0 respawned")
    log = b.log()
    check("fanout 0 last words: assertion failed: !as_assert && \"crash "
          "point\" at common/crashpoint.c:" in log,
          "no last words for the assertion:\n%s" % b.log_tail())
    check("killed by signal 6" in log, "not killed by SIGABRT")
    check_eq(c.subscribe([("cp/as", 1)]), [1], "SUBACK after the respawn")
    c.disconnect()
    c.close()
    b.stop()
