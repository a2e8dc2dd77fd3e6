"""
test_will.py -- the Will Message (MQTT 3.1.1 section 3.1.2.5): published when
the connection ends without DISCONNECT (keepalive timeout, socket closed or
reset, protocol error, takeover), never after DISCONNECT; will QoS and retain
honoured.
"""

import time

from harness import (
    Broker, check, check_eq, enc_publish, raw_client, ringmq_only)


def _watcher(b, cid="will-watch", qos=2):
    w = raw_client(b.port, cid)
    w.subscribe([("will/#", qos)])
    return w


def _will(topic="will/t", payload=b"gone", qos=0, retain=False):
    return {"topic": topic, "payload": payload, "qos": qos, "retain": retain}


def _keepalive_will(ka, limit):
    """Connects a client with keepalive ka and a will, stays silent, and
    returns the seconds until the will arrived (fails after limit + 1)."""
    with Broker() as b:
        w = _watcher(b)
        t0 = time.monotonic()
        c = raw_client(b.port, "ka-silent", keepalive=ka,
                       will=_will("will/ka", b"timeout", qos=1))
        m = w.recv_publish(timeout=limit + 1)
        dt = time.monotonic() - t0
        check_eq((m.topic, m.payload, m.qos), ("will/ka", b"timeout", 1),
                 "will message")
        check(dt >= ka - 0.1, "will published after %.2f s, before the "
              "keepalive of %d s ran out" % (dt, ka))
        c.expect_closed(2, "silent client after keepalive timeout")
        return dt


def test_will_on_keepalive_timeout():
    """A client silent for 1.5 x keepalive is disconnected and its will is
    published (3.1.2-24)."""
    # Loose bound: Mosquitto 2.0.11 checks keepalives only every 5 s or so
    # (its will came after 5-6 s for keepalives of 1-3 s).  The timing is
    # checked by test_keepalive_timeout_within_one_and_a_half.
    _keepalive_will(2, 1.5 * 2 + 6.0)


def test_keepalive_timeout_within_one_and_a_half():
    """The silent client is cut off between keepalive and 1.5 x keepalive
    (plus 1.5 s of slack for a timer tick and a busy machine)."""
    ringmq_only("Mosquitto 2.0.11 checks keepalives only every ~5 s")
    ka = 2
    limit = 1.5 * ka + 1.5
    dt = _keepalive_will(ka, limit)
    check(dt <= limit, "will published after %.2f s, keepalive %d s "
          "(limit %.1f s)" % (dt, ka, limit))


def test_will_on_socket_close():
    """Closing the socket without DISCONNECT publishes the will."""
    with Broker() as b:
        w = _watcher(b)
        c = raw_client(b.port, "wc", will=_will("will/close", b"closed"))
        c.close()
        m = w.recv_publish(timeout=3)
        check_eq((m.topic, m.payload, m.qos, m.retain),
                 ("will/close", b"closed", 0, False), "will message")
        w.expect_nothing(0.5, "second will")


def test_will_on_connection_reset():
    """A connection reset (RST) publishes the will."""
    with Broker() as b:
        w = _watcher(b)
        c = raw_client(b.port, "wr", will=_will("will/reset", b"reset"))
        c.abort()
        m = w.recv_publish(timeout=3)
        check_eq((m.topic, m.payload), ("will/reset", b"reset"),
                 "will message")


def test_will_on_protocol_error():
    """A protocol error closes the connection and publishes the will."""
    with Broker() as b:
        w = _watcher(b)
        c = raw_client(b.port, "wp", will=_will("will/proto", b"bad"))
        # PUBLISH with QoS 3.
        c.send(bytes([0x36]) + enc_publish("x", b"y", qos=1, pid=1)[1:])
        c.expect_closed(3, "PUBLISH QoS 3")
        m = w.recv_publish(timeout=3)
        check_eq((m.topic, m.payload), ("will/proto", b"bad"), "will")


def test_will_on_takeover():
    """When a second connection takes over the client id, the first
    connection's will is published, once; the new one's is kept."""
    with Broker() as b:
        w = _watcher(b)
        first = raw_client(b.port, "wt", will=_will("will/tk", b"first"))
        second = raw_client(b.port, "wt", will=_will("will/tk", b"second"))
        first.expect_closed(3, "taken-over connection")
        m = w.recv_publish(timeout=3)
        check_eq((m.topic, m.payload), ("will/tk", b"first"),
                 "will of the taken-over connection")
        w.expect_nothing(0.5, "another will")
        second.disconnect()
        second.close()
        w.expect_nothing(0.7, "will after a clean DISCONNECT")


def test_no_will_after_disconnect():
    with Broker() as b:
        w = _watcher(b)
        c = raw_client(b.port, "wd", will=_will("will/dc", b"never"))
        c.disconnect()
        c.expect_closed(3, "after DISCONNECT")
        w.expect_nothing(1.0, "will after DISCONNECT")


def test_will_qos_and_retain():
    """Will QoS 2 with retain: delivered live at QoS 2 (RETAIN 0 to the
    established subscription), then retained for new subscribers (RETAIN 1,
    QoS 2); a QoS 1 subscription gets it at QoS 1."""
    with Broker() as b:
        w2 = _watcher(b, "will-q2", qos=2)
        w1 = _watcher(b, "will-q1", qos=1)
        w0 = _watcher(b, "will-q0", qos=0)
        c = raw_client(b.port, "wq",
                       will=_will("will/qr", b"last", qos=2, retain=True))
        c.close()
        for w, q in ((w2, 2), (w1, 1), (w0, 0)):
            m = w.recv_publish(timeout=3)
            check_eq((m.topic, m.payload, m.qos, m.retain),
                     ("will/qr", b"last", q, False),
                     "will to a qos %d subscription" % q)
        late = raw_client(b.port, "will-late")
        late.subscribe([("will/qr", 2)])
        m = late.recv_publish()
        check_eq((m.payload, m.qos, m.retain), (b"last", 2, True),
                 "retained will for a new subscription")


def test_will_v31_client():
    """An MQTT 3.1 client's will is published too."""
    with Broker() as b:
        w = _watcher(b)
        c = raw_client(b.port, "w31", level=3,
                       will=_will("will/v31", b"old proto", qos=1))
        c.close()
        m = w.recv_publish(timeout=3)
        check_eq((m.topic, m.payload, m.qos), ("will/v31", b"old proto", 1),
                 "3.1 will")
