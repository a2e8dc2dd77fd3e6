"""
test_takeover.py -- a CONNECT with a client id already connected closes the
existing connection (MQTT 3.1.1 section 3.1.4-2), on the same frontend and
across frontends; the session follows the new connection.
"""

from harness import (
    IS_RINGMQ, Broker, RawClient, check, check_eq, check_broker_serves,
    raw_client)


def test_takeover_closes_first_connection():
    with Broker() as b:
        first = raw_client(b.port, "tk")
        second = RawClient(b.port)
        check_eq(second.connect("tk"), (0, 0), "second CONNECT (sp, rc)")
        first.expect_closed(3, "taken-over connection")
        check_eq(first.before_close, [], "packets to the old connection")
        second.ping()


def test_takeover_keeps_persistent_session():
    """clean 0 takes over clean 0: session present 1, the subscription
    delivers to the new connection and not to the old one."""
    with Broker() as b:
        first = raw_client(b.port, "tks", clean=False)
        first.subscribe([("tks/t", 1)])
        second = RawClient(b.port)
        check_eq(second.connect("tks", clean=False), (1, 0),
                 "second CONNECT (sp, rc)")
        first.expect_closed(3, "taken-over connection")
        pub = raw_client(b.port, "tks-pub")
        pub.publish("tks/t", b"for the new one", qos=1)
        check_eq(second.recv_publish().payload, b"for the new one",
                 "delivery after takeover")
        second.expect_nothing(0.3, "second copy")


def test_takeover_with_clean_session_discards_old():
    """clean 1 takes over clean 0: session present 0, old subscriptions
    gone."""
    with Broker() as b:
        first = raw_client(b.port, "tkc", clean=False)
        first.subscribe([("tkc/t", 1)])
        second = RawClient(b.port)
        check_eq(second.connect("tkc", clean=True), (0, 0),
                 "second CONNECT (sp, rc)")
        first.expect_closed(3, "taken-over connection")
        pub = raw_client(b.port, "tkc-pub")
        pub.publish("tkc/t", b"nobody", qos=1)
        second.expect_nothing(0.7, "delivery to a discarded subscription")


def test_takeover_across_frontends():
    """The taken-over connection may sit on another frontend: it is closed
    all the same.  Each new connection takes over the previous one until a
    takeover crosses frontends (every step is checked)."""
    with Broker() as b:
        cur = raw_client(b.port, "tkx", clean=False)
        cur.subscribe([("tkx/t", 1)])
        cur_fe = b.frontend_of("tkx")
        pub = raw_client(b.port, "tkx-pub")
        crossed = False
        for i in range(20):
            mark = b.log_mark()
            new = RawClient(b.port)
            check_eq(new.connect("tkx", clean=False), (1, 0),
                     "takeover %d (sp, rc)" % i)
            new_fe = b.frontend_of("tkx", since=mark)
            cur.expect_closed(3, "takeover %d: old connection (fe %s -> %s)"
                              % (i, cur_fe, new_fe))
            pub.publish("tkx/t", b"%d" % i, qos=1)
            check_eq(new.recv_publish().payload, b"%d" % i,
                     "takeover %d: delivery to the new connection" % i)
            crossed = cur_fe != new_fe
            cur, cur_fe = new, new_fe
            if crossed or not IS_RINGMQ:
                break
        check(crossed or not IS_RINGMQ,
              "20 takeovers all stayed on frontend %s" % cur_fe)
        cur.ping()


def test_repeated_takeovers():
    """Ten quick takeovers: only the last connection stays, the broker keeps
    serving."""
    with Broker() as b:
        conns = []
        for i in range(10):
            c = RawClient(b.port)
            check_eq(c.connect("tkr", clean=False)[1], 0, "rc %d" % i)
            conns.append(c)
        for i, c in enumerate(conns[:-1]):
            c.expect_closed(3, "connection %d" % i)
        conns[-1].ping()
        check_broker_serves(b)
