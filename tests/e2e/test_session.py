"""
test_session.py -- persistent sessions (MQTT 3.1.1 sections 3.1.2.4, 3.2.2.2,
4.1, 4.4): session present flag, subscriptions and QoS 1/2 messages kept
while the client is away, re-delivery with DUP of unacknowledged messages,
inbound QoS 2 state across a reconnect, a session resumed on another
frontend.
"""

import time

from harness import (
    IS_RINGMQ, PUBACK, PUBCOMP, PUBLISH, PUBREC, PUBREL, Broker, RawClient,
    check, check_eq, enc_ack, enc_publish, paho_client, raw_client)


def _away(c):
    """Leaves without DISCONNECT and gives the broker a moment to notice."""
    c.close()
    time.sleep(0.3)


def test_session_present_flag():
    """clean 0: session present 0 the first time, 1 on resume; clean 1
    always 0 and discards the session."""
    with Broker() as b:
        steps = [(False, 0), (False, 1), (False, 1), (True, 0), (False, 0),
                 (False, 1)]
        for i, (clean, want) in enumerate(steps):
            c = RawClient(b.port)
            sp, rc = c.connect("sp", clean=clean)
            check_eq((rc, sp), (0, want),
                     "step %d (clean %d): (rc, session present)"
                     % (i, clean))
            c.disconnect()
            c.expect_closed(3, "after DISCONNECT")


def test_subscriptions_kept_across_reconnect():
    with Broker() as b:
        c = raw_client(b.port, "keep", clean=False)
        c.subscribe([("keep/a", 1), ("keep/b", 2)])
        c.disconnect()
        c.close()
        c = RawClient(b.port)
        check_eq(c.connect("keep", clean=False), (1, 0), "(sp, rc)")
        pub = raw_client(b.port, "keep-pub")
        pub.publish("keep/a", b"a", qos=1)
        pub.publish("keep/b", b"b", qos=2)
        for topic, q in (("keep/a", 1), ("keep/b", 2)):
            m = c.recv_publish()
            check_eq((m.topic, m.qos), (topic, q), "delivery without "
                     "re-subscribing")


def test_offline_messages_delivered_on_reconnect():
    """QoS 1 and 2 messages published while the client is away are
    delivered, in order, when it comes back."""
    with Broker() as b:
        c = raw_client(b.port, "off", clean=False)
        c.subscribe([("off/t", 2)])
        _away(c)
        pub = raw_client(b.port, "off-pub")
        sent = []
        for i in range(10):
            q = 1 + i % 2
            pub.publish("off/t", b"m%d" % i, qos=q)
            sent.append((b"m%d" % i, q))
        c = RawClient(b.port)
        check_eq(c.connect("off", clean=False), (1, 0), "(sp, rc)")
        got = [(m.payload, m.qos) for m in c.recv_publishes(10)]
        check_eq(got, sent, "queued messages")
        c.expect_nothing(0.5, "extra message")
        # The session carries on: live messages still arrive.
        pub.publish("off/t", b"live", qos=1)
        check_eq(c.recv_publish().payload, b"live", "live message")


def test_clean_session_discards_state():
    """Reconnecting with clean 1 drops the subscriptions and the queued
    messages; nothing is delivered on that connection."""
    with Broker() as b:
        c = raw_client(b.port, "cd", clean=False)
        c.subscribe([("cd/t", 1)])
        _away(c)
        pub = raw_client(b.port, "cd-pub")
        pub.publish("cd/t", b"queued", qos=1)
        c = RawClient(b.port)
        check_eq(c.connect("cd", clean=True), (0, 0), "(sp, rc)")
        c.expect_nothing(0.7, "message of a discarded session")
        pub.publish("cd/t", b"after", qos=1)
        c.expect_nothing(0.7, "delivery to a discarded subscription")


def test_unacked_qos1_resent_with_dup():
    """An outbound QoS 1 message not PUBACKed before the connection dropped
    is sent again on resume with DUP 1 and the same packet id (4.4)."""
    with Broker() as b:
        c = raw_client(b.port, "dup1", clean=False)
        c.subscribe([("dup1/t", 1)])
        pub = raw_client(b.port, "dup1-pub")
        pub.publish("dup1/t", b"unacked", qos=1)
        first = c.recv_publish(ack=False)
        check_eq((first.dup, first.qos), (False, 1), "first delivery")
        _away(c)
        c = RawClient(b.port)
        check_eq(c.connect("dup1", clean=False), (1, 0), "(sp, rc)")
        again = c.recv_publish(ack=False)
        check_eq((again.payload, again.qos, again.dup, again.pid),
                 (b"unacked", 1, True, first.pid), "re-delivery")
        c.send(enc_ack(PUBACK, again.pid))
        c.expect_nothing(0.7, "after PUBACK of the re-delivery")
        _away(c)
        c = RawClient(b.port)
        c.connect("dup1", clean=False)
        c.expect_nothing(0.7, "acknowledged message sent again")


def test_unacked_qos2_resent_publish_then_pubrel():
    """Outbound QoS 2: an unacknowledged PUBLISH is re-sent with DUP 1; once
    PUBRECed, a resume re-sends the PUBREL instead (4.4)."""
    with Broker() as b:
        c = raw_client(b.port, "dup2", clean=False)
        c.subscribe([("dup2/t", 2)])
        pub = raw_client(b.port, "dup2-pub")
        pub.publish("dup2/t", b"two", qos=2)
        first = c.expect(PUBLISH)
        _away(c)
        c = RawClient(b.port)
        check_eq(c.connect("dup2", clean=False), (1, 0), "(sp, rc)")
        again = c.expect(PUBLISH)
        check_eq((again.payload, again.qos, again.dup, again.pid),
                 (b"two", 2, True, first.pid), "re-sent PUBLISH")
        c.send(enc_ack(PUBREC, again.pid))
        rel = c.expect(PUBREL)
        check_eq(rel.pid, again.pid, "PUBREL id")
        _away(c)
        c = RawClient(b.port)
        check_eq(c.connect("dup2", clean=False), (1, 0), "(sp, rc)")
        rel = c.expect(PUBREL, what="resume after PUBREC")
        check_eq((rel.pid, rel.flags), (again.pid, 2), "re-sent PUBREL")
        c.send(enc_ack(PUBCOMP, rel.pid))
        c.expect_nothing(0.7, "after PUBCOMP")


def test_inbound_qos2_state_kept_across_reconnect():
    """A QoS 2 PUBLISH PUBRECed on one connection can be PUBRELed on the
    next (clean 0): PUBCOMP comes back and the message is delivered
    exactly once."""
    with Broker() as b:
        sub = raw_client(b.port, "in2-sub")
        sub.subscribe([("in2/t", 2)])
        c = raw_client(b.port, "in2-pub", clean=False)
        c.send(enc_publish("in2/t", b"exactly once", qos=2, pid=11))
        check_eq(c.expect(PUBREC).pid, 11, "PUBREC id")
        _away(c)
        c = RawClient(b.port)
        check_eq(c.connect("in2-pub", clean=False), (1, 0), "(sp, rc)")
        c.send(enc_ack(PUBREL, 11))
        comp = c.expect(PUBCOMP)
        check_eq(comp.pid, 11, "PUBCOMP id")
        m = sub.recv_publish()
        check_eq(m.payload, b"exactly once", "payload")
        sub.expect_nothing(1.0, "second copy")


def test_v31_persistent_session_paho():
    """An MQTT 3.1 paho client with clean session false gets what was
    published while it was away."""
    with Broker() as b:
        c = paho_client(b.port, "p31", protocol=3, clean=False)
        check_eq(c.subscribe("p31/t", 1), [1], "SUBACK")
        c.disconnect()
        pub = paho_client(b.port, "p31-pub", protocol=3)
        pub.publish("p31/t", b"while away", qos=1)
        c = paho_client(b.port, "p31", protocol=3, clean=False)
        m = c.get()
        check_eq((m.topic, m.payload, m.qos), ("p31/t", b"while away", 1),
                 "queued message")
        c.disconnect()
        pub.disconnect()


def test_session_resumed_on_other_frontend():
    """A session created on one frontend and resumed on another keeps its
    subscription and its queued messages.  Each reconnect lands where the
    kernel puts it; until one lands on another frontend, every resume on the
    same frontend is checked the same way."""
    with Broker() as b:
        c = raw_client(b.port, "roam", clean=False)
        c.subscribe([("roam/t", 1)])
        home = b.frontend_of("roam")
        pub = raw_client(b.port, "roam-pub")
        for i in range(20):
            _away(c)
            pub.publish("roam/t", b"away %d" % i, qos=1)
            mark = b.log_mark()
            c = RawClient(b.port)
            check_eq(c.connect("roam", clean=False), (1, 0),
                     "resume %d: (sp, rc)" % i)
            fe = b.frontend_of("roam", since=mark)
            m = c.recv_publish(what="resume %d" % i)
            check_eq(m.payload, b"away %d" % i, "queued message")
            c.expect_nothing(0.2, "extra message")
            pub.publish("roam/t", b"live %d" % i, qos=1)
            check_eq(c.recv_publish().payload, b"live %d" % i, "live message")
            if not IS_RINGMQ or fe != home:
                break
        else:
            check(False, "20 resumes all landed on frontend %s" % home)


def _qos0_backlog_then_reconnect(end):
    """A persistent QoS 0 + QoS 1 subscriber that does not read gets a
    backlog; its connection ends by end(b, s) and it connects again: no
    QoS 0 message of the first connection comes, every QoS 1 one does, in
    order, and the session goes on."""
    with Broker({"max_queued_messages": 10000}) as b:
        s = RawClient(b.port, rcvbuf=4096)
        s.connect("q0b", clean=False)
        s.subscribe([("q0b/0", 0), ("q0b/1", 1)])
        p = raw_client(b.port, "q0b-pub")
        for i in range(5000):
            p.send(enc_publish("q0b/0", b"%05d" % i + b"." * 2000, 0))
            if i % 250 == 249:
                p.publish("q0b/1", b"q1-%d" % (i // 250), qos=1)
        p.ping()
        time.sleep(0.5)
        s = end(b, s)
        got = [m for m in s.read_until_quiet(1.5, ack=True)
               if m.type == PUBLISH]
        check_eq([m.topic for m in got if m.topic == "q0b/0"], [],
                 "QoS 0 messages of the earlier connection")
        # The first connection read none: every QoS 1 message comes.
        check_eq([m.payload for m in got if m.topic == "q0b/1"],
                 [b"q1-%d" % i for i in range(20)],
                 "QoS 1 messages after the reconnect")
        p.publish("q0b/0", b"live", qos=0)
        check_eq(s.recv_publish().payload, b"live", "live QoS 0 message")


def _reconnect(b, old, close):
    if close:
        old.abort()
        time.sleep(0.5)
    s = RawClient(b.port)
    sp, _ = s.connect("q0b", clean=False)
    check_eq(sp, 1, "session present")
    return s


def test_qos0_backlog_of_a_connection_is_not_kept_for_the_next():
    """A persistent session's QoS 0 messages that were still waiting for
    its connection when it ended (the client stopped reading, then went)
    are not delivered on the next connection, as QoS 0 messages published
    while it is away are not (queue_qos0_messages false, as in Mosquitto);
    its QoS 1 messages are."""
    _qos0_backlog_then_reconnect(lambda b, s: _reconnect(b, s, True))


def test_qos0_backlog_of_a_connection_taken_over_is_not_kept():
    """The same when the next connection takes the session over from the
    first, still open."""
    _qos0_backlog_then_reconnect(lambda b, s: _reconnect(b, s, False))
