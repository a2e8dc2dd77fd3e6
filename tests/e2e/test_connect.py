"""
test_connect.py -- CONNECT and CONNACK (MQTT 3.1.1 section 3.1, 3.2), the
first-packet rules, keepalive, DISCONNECT.
"""

import time

from harness import (
    CONNACK, Broker, PINGREQ_BYTES, RawClient, check, check_eq,
    check_broker_serves, enc_connect, enc_subscribe, fail, mosquitto_pub,
    paho_client, raw_client, ringmq_only, DISCONNECT_BYTES)


def _connack_bytes(c, what):
    p = c.expect(CONNACK, what=what)
    return bytes([p.first]) + bytes([len(p.body)]) + p.body


def test_connect_accepted_v311():
    with Broker() as b:
        c = RawClient(b.port)
        c.send(enc_connect("c311", clean=True, keepalive=60))
        check_eq(_connack_bytes(c, "3.1.1 CONNECT"), b"\x20\x02\x00\x00",
                 "CONNACK bytes (session present 0, accepted)")
        c.ping()
        info = b.connect_info("c311")
        check_eq((info["proto"], info["clean"], info["keepalive"]),
                 (2, 1, 60), "log line fields (p, c, k)")
        pc = paho_client(b.port, "paho-311")
        check_eq(pc.subscribe("hello/t", 1), [1], "paho SUBACK")
        pc.publish("hello/t", b"hi", qos=1)
        check_eq(pc.get().payload, b"hi", "paho round trip payload")
        pc.disconnect()
        c.disconnect()


def test_connect_v31_mqisdp():
    """Protocol level 3 with name "MQIsdp" (MQTT 3.1) is served."""
    with Broker() as b:
        c = RawClient(b.port)
        c.send(enc_connect("c31", proto_name="MQIsdp", level=3))
        check_eq(_connack_bytes(c, "3.1 CONNECT"), b"\x20\x02\x00\x00",
                 "CONNACK bytes for MQIsdp/3")
        check_eq(b.connect_info("c31")["proto"], 1, "log line protocol p")
        sub = paho_client(b.port, "paho-31-sub", protocol=3)
        check_eq(sub.subscribe("v31/t", 2), [2], "3.1 SUBACK")
        pub = paho_client(b.port, "paho-31-pub", protocol=3)
        for q in (0, 1, 2):
            pub.publish("v31/t", b"q%d" % q, qos=q)
            m = sub.get()
            check_eq((m.payload, m.qos), (b"q%d" % q, q), "3.1 delivery")
        pub.disconnect()
        sub.disconnect()
        c.disconnect()


def test_connect_unacceptable_protocol_level():
    """A known protocol name with a level the server does not speak gets
    CONNACK 0x01 and the connection is closed (3.1.2.2)."""
    with Broker() as b:
        for name, level in (("MQTT", 6), ("MQTT", 3), ("MQIsdp", 4)):
            c = RawClient(b.port)
            c.send(enc_connect("lvl", proto_name=name, level=level))
            what = "CONNECT %s level %d" % (name, level)
            check_eq(_connack_bytes(c, what), b"\x20\x02\x00\x01",
                     what + ": CONNACK bytes")
            c.expect_closed(3, what)
        check_broker_serves(b)


def test_connect_unknown_protocol_name():
    """An unknown protocol name: the server may disconnect; it must not
    accept the connection as MQTT 3.1.1 (3.1.2.1)."""
    with Broker() as b:
        c = RawClient(b.port)
        c.send(enc_connect("foo", proto_name="FOO", level=4))
        if not c.wait_closed(3):
            fail("connection with protocol name FOO still open after 3 s")
        for p in c.before_close:
            check(p.type == CONNACK and p.rc != 0,
                  "protocol FOO answered with %r" % p)
        check_broker_serves(b)


def test_connect_empty_client_id_clean_session():
    """Empty client id with clean session 1 is accepted (3.1.3-6/7); so is
    mosquitto_pub without -i."""
    with Broker() as b:
        c = RawClient(b.port)
        c.send(enc_connect("", clean=True))
        check_eq(_connack_bytes(c, "empty id, clean 1"), b"\x20\x02\x00\x00",
                 "CONNACK bytes")
        check_eq(c.subscribe([("anon/t", 1)]), [1], "SUBACK")
        c.publish("anon/t", b"self", qos=1)
        check_eq(c.recv_publish().payload, b"self", "own message")
        r = mosquitto_pub(b.port, ["-t", "anon/t", "-m", "tool", "-q", "1"])
        check_eq(r.returncode, 0, "mosquitto_pub exit status (stderr %r)"
                 % r.stderr)
        check_eq(c.recv_publish().payload, b"tool",
                 "message from mosquitto_pub without -i")
        c.disconnect()


def test_connect_empty_client_id_persistent_rejected():
    """Empty client id with clean session 0: CONNACK 0x02, then close
    (3.1.3-8)."""
    with Broker() as b:
        c = RawClient(b.port)
        c.send(enc_connect("", clean=False))
        check_eq(_connack_bytes(c, "empty id, clean 0"), b"\x20\x02\x00\x02",
                 "CONNACK bytes")
        c.expect_closed(3, "empty id, clean 0")
        check_broker_serves(b)


def test_connect_v31_empty_client_id_rejected():
    """MQTT 3.1 requires a client id of 1 to 23 bytes: an empty one gets
    CONNACK 0x02."""
    with Broker() as b:
        c = RawClient(b.port)
        c.send(enc_connect("", proto_name="MQIsdp", level=3))
        check_eq(_connack_bytes(c, "3.1 empty id"), b"\x20\x02\x00\x02",
                 "CONNACK bytes")
        c.expect_closed(3, "3.1 empty id")


def test_connect_v31_client_id_too_long_rejected():
    """MQTT 3.1: a client id longer than 23 bytes gets CONNACK 0x02."""
    # Mosquitto 2.0.11 accepts 3.1 client ids of any length; the 3.1 spec
    # and ringmq's codec (mqtt_parse_connect) reject them.
    ringmq_only("Mosquitto accepts 3.1 client ids longer than 23 bytes")
    with Broker() as b:
        c = RawClient(b.port)
        c.send(enc_connect("x" * 24, proto_name="MQIsdp", level=3))
        check_eq(_connack_bytes(c, "3.1 24-byte id"), b"\x20\x02\x00\x02",
                 "CONNACK bytes")
        c.expect_closed(3, "3.1 24-byte id")
        c = raw_client(b.port, "y" * 23, level=3)
        c.disconnect()


def test_connect_invalid_flags_close():
    """CONNECT flag violations close the connection without CONNACK 0:
    reserved bit set (3.1.2-3), will QoS 3 (3.1.2-14), will QoS or will
    retain without will flag (3.1.2-13/15), password without user name
    (3.1.2-22), a will topic with a wildcard."""
    cases = [
        ("reserved bit", enc_connect("f1", flags_extra=0x01)),
        ("will qos 3", enc_connect("f2", will={"topic": "w", "qos": 3})),
        ("will qos without will", enc_connect("f3", flags_extra=0x08)),
        ("will retain without will", enc_connect("f4", flags_extra=0x20)),
        ("password without user name", enc_connect("f5", password="pw")),
        ("will topic with #", enc_connect("f6", will={"topic": "w/#"})),
    ]
    with Broker() as b:
        for what, data in cases:
            c = RawClient(b.port)
            c.send(data)
            c.expect_closed(3, what)
            for p in c.before_close:
                check(p.type == CONNACK and p.rc != 0,
                      "%s: answered with %r" % (what, p))
        check_broker_serves(b)


def test_second_connect_closes():
    """A second CONNECT on a connection is a protocol violation (3.1.0-2)."""
    with Broker() as b:
        w = raw_client(b.port, "watch")
        c = raw_client(b.port, "twice")
        c.send(enc_connect("twice"))
        c.expect_closed(3, "second CONNECT")
        check(not [p for p in c.before_close if p.type == CONNACK],
              "second CONNECT answered with a CONNACK")
        w.ping()
        check_broker_serves(b)


def test_first_packet_not_connect_closes():
    """The first packet must be CONNECT (3.1.0-1): PINGREQ or SUBSCRIBE
    first closes the connection, unanswered."""
    with Broker() as b:
        for what, data in (("PINGREQ first", PINGREQ_BYTES),
                           ("SUBSCRIBE first", enc_subscribe(1, [("a", 0)]))):
            c = RawClient(b.port)
            c.send(data)
            c.expect_closed(3, what)
            check_eq(c.before_close, [], what + ": packets before close")
        check_broker_serves(b)


def test_connect_timeout_silent_client():
    """A connection that sends nothing is closed after connect_timeout."""
    # Mosquitto has no connect_timeout key: it keeps such a socket for its
    # default keepalive (minutes), so the timing is ringmq's own rule.
    ringmq_only("Mosquitto has no connect_timeout")
    with Broker(ringmq_options={"connect_timeout": 2}) as b:
        t0 = time.monotonic()
        c = RawClient(b.port)
        c.expect_closed(5, "silent connection")
        dt = time.monotonic() - t0
        check(1.5 <= dt <= 4.0,
              "silent connection closed after %.2f s, connect_timeout 2" % dt)
        check_eq(c.before_close, [], "packets before close")
        check_broker_serves(b)


def test_connect_timeout_partial_connect():
    """A CONNECT that never completes is closed after connect_timeout."""
    ringmq_only("Mosquitto has no connect_timeout")
    with Broker(ringmq_options={"connect_timeout": 2}) as b:
        t0 = time.monotonic()
        c = RawClient(b.port)
        c.send(enc_connect("partial")[:7])
        c.expect_closed(5, "half-sent CONNECT")
        dt = time.monotonic() - t0
        check(1.5 <= dt <= 4.0,
              "half CONNECT closed after %.2f s, connect_timeout 2" % dt)
        check_broker_serves(b)


def test_connect_in_time_is_served():
    """A client that connects within connect_timeout stays connected past
    it."""
    with Broker(ringmq_options={"connect_timeout": 2}) as b:
        c = RawClient(b.port)
        time.sleep(0.5)
        c.connect("in-time")
        time.sleep(2.5)
        c.ping()
        c.disconnect()


def test_keepalive_pings_keep_connection():
    """A client that sends PINGREQ within its keepalive stays connected;
    keepalive 0 means no timeout."""
    with Broker() as b:
        c = raw_client(b.port, "ka1", keepalive=1)
        z = raw_client(b.port, "ka0", keepalive=0)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 4.0:
            time.sleep(0.4)
            c.ping()
        z.ping()
        c.disconnect()
        z.disconnect()


def test_disconnect_closes_connection():
    """After DISCONNECT the server closes the network connection."""
    with Broker() as b:
        c = raw_client(b.port, "bye")
        c.send(DISCONNECT_BYTES)
        c.expect_closed(3, "after DISCONNECT")
        check_eq(c.before_close, [], "packets after DISCONNECT")
        check_broker_serves(b)
