"""
test_subscribe.py -- SUBSCRIBE/SUBACK, UNSUBSCRIBE/UNSUBACK, PINGREQ, topic
wildcards and $-topics, overlapping subscriptions (MQTT 3.1.1 sections
3.8-3.13, 4.7).
"""

import time

from harness import (
    SUBACK, Broker, RawClient, check, check_eq, check_broker_serves,
    enc_subscribe, raw_client, ringmq_only)


def test_suback_granted_qos():
    """One return code per entry, in order, equal to the requested QoS."""
    with Broker() as b:
        c = raw_client(b.port, "sa")
        c.send(enc_subscribe(0x1234, [("sa/0", 0), ("sa/1", 1), ("sa/2", 2),
                                      ("sa/+/x", 1), ("sa/#", 2)]))
        p = c.expect(SUBACK)
        check_eq(p.first, 0x90, "SUBACK first byte")
        check_eq(p.body, b"\x12\x34\x00\x01\x02\x01\x02", "SUBACK body")


def test_suback_invalid_filter_failure_code():
    """An ill-placed wildcard in one entry earns 0x80 for that entry; the
    valid entries of the same SUBSCRIBE are granted and work."""
    # Mosquitto 2.0.11 closes the whole connection on an invalid filter
    # ("Invalid subscription string ..., disconnecting"); ringmq's rule
    # (common/mqtt.h) is a 0x80 return code for the entry.
    ringmq_only("Mosquitto disconnects on an invalid topic filter")
    with Broker() as b:
        c = raw_client(b.port, "inv")
        codes = c.subscribe([("ok/a", 1), ("a/#/b", 1), ("ok/+", 2),
                             ("a+", 0), ("#x", 0), ("ok/#", 0), ("a/b#", 2)])
        check_eq(codes, [1, 0x80, 2, 0x80, 0x80, 0, 0x80], "SUBACK codes")
        pub = raw_client(b.port, "inv-pub")
        pub.publish("ok/a", b"x", qos=2)
        m = c.recv_publish()
        check_eq((m.topic, m.qos), ("ok/a", 2), "delivery (max of ok/a "
                 "qos1, ok/+ qos2, ok/# qos0)")
        c.expect_nothing(0.5, "second copy")
        c.ping()


def test_unsubscribe_stops_delivery():
    with Broker() as b:
        c = raw_client(b.port, "uns")
        check_eq(c.subscribe([("u/a", 1), ("u/b", 1)]), [1, 1], "SUBACK")
        pub = raw_client(b.port, "uns-pub")
        pub.publish("u/a", b"1", qos=1)
        check_eq(c.recv_publish().payload, b"1", "before UNSUBSCRIBE")
        c.unsubscribe(["u/a"], pid=0x0102)
        pub.publish("u/a", b"2", qos=1)
        pub.publish("u/b", b"3", qos=1)
        m = c.recv_publish()
        check_eq((m.topic, m.payload), ("u/b", b"3"),
                 "only the remaining subscription delivers")
        c.expect_nothing(0.7, "delivery after UNSUBSCRIBE")
        # Unsubscribing what was never subscribed still gets UNSUBACK.
        c.unsubscribe(["never/subscribed", "u/a"])
        c.ping()


def test_pingreq_pingresp():
    with Broker() as b:
        c = raw_client(b.port, "ping")
        for _ in range(3):
            c.ping()


def _matches(b, filters, topics, cid):
    """{filter: [topics delivered]} for one subscriber per filter."""
    subs = {}
    for i, f in enumerate(filters):
        s = raw_client(b.port, "%s-%d" % (cid, i))
        check_eq(s.subscribe([(f, 1)]), [1], "SUBACK for %r" % f)
        subs[f] = s
    pub = raw_client(b.port, cid + "-pub")
    for t in topics:
        pub.publish(t, t.encode(), qos=1)
    # Every delivery is due by now; then drain each subscriber.
    time.sleep(0.6)
    got = {}
    for f, s in subs.items():
        got[f] = []
        while True:
            p = s.read(0.1)
            if p is None:
                break
            s.ack(p)
            got[f].append(p.topic)
    return got


def test_wildcards():
    """+ matches one level (including an empty one), # any number of levels
    including the parent (4.7.1)."""
    topics = ["sport/tennis/player1", "sport/tennis/player2",
              "sport/tennis/player1/ranking", "sport", "sport/", "/finance",
              "finance", "a/b/c/d"]
    expect = {
        "sport/tennis/player1/#": ["sport/tennis/player1",
                                   "sport/tennis/player1/ranking"],
        "sport/#": ["sport/tennis/player1", "sport/tennis/player2",
                    "sport/tennis/player1/ranking", "sport", "sport/"],
        "sport/tennis/+": ["sport/tennis/player1", "sport/tennis/player2"],
        "sport/+": ["sport/"],
        "+": ["sport", "finance"],
        "+/+": ["sport/", "/finance"],
        "/+": ["/finance"],
        "#": topics,
        "a/+/c/+": ["a/b/c/d"],
        "+/+/+/+": ["sport/tennis/player1/ranking", "a/b/c/d"],
        "sport/tennis/player1": ["sport/tennis/player1"],
    }
    with Broker() as b:
        got = _matches(b, list(expect), topics, "wc")
        for f, want in expect.items():
            check_eq(got[f], want, "topics delivered for filter %r" % f)


def test_dollar_topics_not_matched_by_leading_wildcards():
    """Topics starting with $ are not matched by filters starting with # or
    + (4.7.2), but by filters naming the $ level."""
    topics = ["$test/x", "test/x"]
    expect = {
        "#": ["test/x"],
        "+/x": ["test/x"],
        "$test/#": ["$test/x"],
        "$test/+": ["$test/x"],
        "$test/x": ["$test/x"],
        "+/#": ["test/x"],
    }
    with Broker() as b:
        got = _matches(b, list(expect), topics, "dl")
        for f, want in expect.items():
            check_eq(got[f], want, "topics delivered for filter %r" % f)


def test_overlapping_subscriptions_one_copy_max_qos():
    """Overlapping filters of one client: the message is delivered once, at
    the highest granted QoS of the matching subscriptions (3.3.5)."""
    with Broker() as b:
        c = raw_client(b.port, "ov")
        check_eq(c.subscribe([("a/#", 0), ("a/+", 1), ("a/b", 2)]),
                 [0, 1, 2], "SUBACK")
        pub = raw_client(b.port, "ov-pub")
        cases = [("a/b", 2, 2), ("a/b", 1, 1), ("a/c", 2, 1), ("a/c/d", 2, 0),
                 ("a", 2, 0)]
        for topic, pq, want in cases:
            pub.publish(topic, b"%s q%d" % (topic.encode(), pq), qos=pq)
            m = c.recv_publish(what="%s qos %d" % (topic, pq))
            check_eq((m.topic, m.qos), (topic, want),
                     "delivery of %s published at qos %d" % (topic, pq))
            c.expect_nothing(0.4, "second copy of %s" % topic)


def test_resubscribe_replaces_qos():
    """A SUBSCRIBE for an existing filter replaces its QoS (3.8.4)."""
    with Broker() as b:
        c = raw_client(b.port, "rs")
        check_eq(c.subscribe([("rs/t", 0)]), [0], "first SUBACK")
        check_eq(c.subscribe([("rs/t", 2)]), [2], "second SUBACK")
        pub = raw_client(b.port, "rs-pub")
        pub.publish("rs/t", b"x", qos=2)
        check_eq(c.recv_publish().qos, 2, "delivery qos after re-subscribe")
        c.expect_nothing(0.5, "second copy")
        check_eq(c.subscribe([("rs/t", 1)]), [1], "third SUBACK")
        pub.publish("rs/t", b"y", qos=2)
        check_eq(c.recv_publish().qos, 1, "delivery qos after downgrade")
        c.expect_nothing(0.5, "second copy")


def test_many_subscribers_one_topic():
    """Every subscriber of a topic gets its own copy."""
    with Broker() as b:
        subs = [raw_client(b.port, "many-%d" % i) for i in range(20)]
        for s in subs:
            s.subscribe([("many/t", 1)])
        pub = raw_client(b.port, "many-pub")
        pub.publish("many/t", b"all", qos=1)
        for s in subs:
            m = s.recv_publish()
            check(m.payload == b"all", "%s got %r" % (s.client_id, m))
        check_broker_serves(b)


def test_many_pipelined_subscribes_all_answered_in_order():
    """3000 SUBSCRIBE packets sent in one go, more than a frontend keeps
    waiting for a worker at once (it stops reading the client meanwhile
    and reads on as SUBACKs come back): 3000 SUBACKs in order, each
    granting its QoS, and the last filter delivers."""
    with Broker() as b:
        c = RawClient(b.port, timeout=30)
        c.connect("msub")
        n = 3000
        c.send(b"".join(enc_subscribe(i + 1, [("msub/%d" % i, 1)])
                        for i in range(n)))
        pids = []
        for _ in range(n):
            p = c.expect(SUBACK, what="SUBACK %d of %d" % (len(pids) + 1, n))
            check_eq(p.codes, [1], "SUBACK %d codes" % p.pid)
            pids.append(p.pid)
        check_eq(pids, list(range(1, n + 1)), "SUBACK packet ids")
        pub = raw_client(b.port, "msub-pub")
        pub.publish("msub/%d" % (n - 1), b"last", qos=1)
        check_eq(c.recv_publish().payload, b"last", "message on the last "
                 "filter")
        check_broker_serves(b)
