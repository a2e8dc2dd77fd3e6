"""
test_retained.py -- retained messages (MQTT 3.1.1 section 3.3.1.3): stored,
replaced, cleared, delivered to new subscriptions with RETAIN 1 and to
existing ones with RETAIN 0; retain_available false.
"""

from harness import (
    Broker, check_eq, check_broker_serves, enc_publish, raw_client)


def test_retained_delivered_to_new_subscription():
    """A retained message is stored and sent to a later subscriber with
    RETAIN 1, even after its publisher left."""
    with Broker() as b:
        pub = raw_client(b.port, "rt-pub")
        pub.publish("rt/a", b"kept", qos=1, retain=True)
        pub.disconnect()
        pub.close()
        for i, q in enumerate((0, 1, 2)):
            s = raw_client(b.port, "rt-sub%d" % i)
            s.subscribe([("rt/a", q)])
            m = s.recv_publish()
            check_eq((m.topic, m.payload, m.retain, m.qos),
                     ("rt/a", b"kept", True, min(q, 1)),
                     "retained delivery to a qos %d subscription" % q)
            s.expect_nothing(0.3, "second retained copy")


def test_retained_replaced():
    with Broker() as b:
        pub = raw_client(b.port, "rp-pub")
        pub.publish("rp/a", b"old", qos=1, retain=True)
        pub.publish("rp/a", b"new", qos=2, retain=True)
        s = raw_client(b.port, "rp-sub")
        s.subscribe([("rp/a", 2)])
        m = s.recv_publish()
        check_eq((m.payload, m.retain, m.qos), (b"new", True, 2),
                 "replaced retained message")
        s.expect_nothing(0.5, "old retained message")


def test_retained_cleared_by_empty_payload():
    """A retained PUBLISH with an empty payload removes the retained message
    and is delivered to current subscribers as a normal message."""
    with Broker() as b:
        pub = raw_client(b.port, "rc-pub")
        pub.publish("rc/a", b"soon gone", qos=1, retain=True)
        live = raw_client(b.port, "rc-live")
        live.subscribe([("rc/a", 1)])
        check_eq(live.recv_publish().payload, b"soon gone", "retained")
        pub.publish("rc/a", b"", qos=1, retain=True)
        m = live.recv_publish()
        check_eq((m.payload, m.retain), (b"", False),
                 "empty retained publish to an existing subscription")
        s = raw_client(b.port, "rc-sub")
        s.subscribe([("rc/a", 1), ("rc/#", 1)])
        s.expect_nothing(0.7, "retained message after clearing")


def test_live_delivery_has_retain_zero():
    """A message published with RETAIN 1 reaches established subscriptions
    with RETAIN 0 (3.3.1-9)."""
    with Broker() as b:
        s = raw_client(b.port, "rl-sub")
        s.subscribe([("rl/a", 2)])
        pub = raw_client(b.port, "rl-pub")
        for q in (0, 1, 2):
            pub.publish("rl/a", b"q%d" % q, qos=q, retain=True)
            m = s.recv_publish()
            check_eq((m.payload, m.qos, m.retain), (b"q%d" % q, q, False),
                     "live delivery of a retained publish")


def test_retained_wildcard_subscription():
    """A wildcard subscription gets every matching retained message, each
    once, at min(stored QoS, granted QoS)."""
    with Broker() as b:
        pub = raw_client(b.port, "rw-pub")
        stored = {"rw/a": 0, "rw/b": 1, "rw/c/d": 2, "other/x": 2}
        for t, q in stored.items():
            pub.publish(t, t.encode(), qos=q, retain=True)
        s = raw_client(b.port, "rw-sub")
        s.subscribe([("rw/#", 1)])
        got = {}
        for _ in range(3):
            m = s.recv_publish()
            check_eq(m.retain, True, "retain flag of %s" % m.topic)
            got[m.topic] = (m.payload, m.qos)
        check_eq(got, {"rw/a": (b"rw/a", 0), "rw/b": (b"rw/b", 1),
                       "rw/c/d": (b"rw/c/d", 1)}, "retained set")
        s.expect_nothing(0.5, "extra retained message")
        # $-topics stay out of a leading "#".
        pub.publish("$rw/x", b"dollar", qos=1, retain=True)
        s2 = raw_client(b.port, "rw-sub2")
        s2.subscribe([("#", 0)])
        topics = set()
        while True:
            p = s2.read(0.5)
            if p is None:
                break
            topics.add(p.topic)
        check_eq(topics, set(stored), "retained topics matched by '#'")


def test_resubscribe_resends_retained():
    """Repeating a SUBSCRIBE sends the retained messages again (3.8.4)."""
    with Broker() as b:
        pub = raw_client(b.port, "rr-pub")
        pub.publish("rr/a", b"r", qos=1, retain=True)
        s = raw_client(b.port, "rr-sub")
        s.subscribe([("rr/a", 1)])
        check_eq(s.recv_publish().retain, True, "first retained copy")
        s.subscribe([("rr/a", 1)])
        m = s.recv_publish()
        check_eq((m.payload, m.retain), (b"r", True), "retained on repeat")


def test_retain_available_false_disconnects_retaining_publisher():
    """With retain_available false a PUBLISH with RETAIN 1 closes the
    publisher's connection and the message goes nowhere; plain publishes
    still work (Mosquitto 2 does the same for 3.1 and 3.1.1 clients)."""
    with Broker({"retain_available": False}) as b:
        s = raw_client(b.port, "ra-sub")
        s.subscribe([("ra/#", 2)])
        for i, (q, level) in enumerate(((0, 4), (1, 4), (2, 4), (1, 3))):
            c = raw_client(b.port, "ra-pub%d" % i, level=level)
            c.send(enc_publish("ra/x", b"r", qos=q, pid=3, retain=True))
            c.expect_closed(3, "retained publish qos %d level %d" % (q, level))
        s.expect_nothing(0.5, "delivery of a refused retained message")
        p = raw_client(b.port, "ra-plain")
        p.publish("ra/y", b"plain", qos=1)
        m = s.recv_publish()
        check_eq((m.topic, m.payload, m.retain), ("ra/y", b"plain", False),
                 "plain publish")
        s2 = raw_client(b.port, "ra-sub2")
        s2.subscribe([("ra/#", 2)])
        s2.expect_nothing(0.5, "a retained message was stored")
        check_broker_serves(b)
