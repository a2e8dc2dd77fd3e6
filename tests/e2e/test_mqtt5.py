"""
test_mqtt5.py -- MQTT 5.0 end to end, byte for byte with the v5 raw client
of mqtt5_wire.py: CONNACK properties, Session Expiry, Message Expiry,
Receive Maximum and Maximum Packet Size in both directions, inbound Topic
Aliases, subscription options and Subscription Identifiers, reason codes
in acks, forwarded PUBLISH properties, v5 and 3.1.1 clients mixed, the
Mosquitto tools with -V 5, server-sent DISCONNECT, and malformed v5 input
closing only the connection that sent it.

Where Mosquitto 2.0.11 deviates, the test or the assertion is ringmq-only
(ringmq_only() / ringmq_checks()) with what Mosquitto does in a comment.
"""

import socket
import time

from harness import (
    CONNACK, PUBACK, PUBCOMP, PUBLISH, PUBREC, PUBREL, Broker, admin, check,
    check_eq, enc_ack, enc_str, enc_subscribe, fail, finish_process, mosquitto_pub,
    mosquitto_sub_start, raw_client, read_line, ringmq_checks, ringmq_only)
from mqtt5_wire import (
    ASSIGNED_CLIENT_ID, AUTH, AUTH_DATA, AUTH_METHOD, CONTENT_TYPE,
    CORRELATION_DATA,
    MAXIMUM_PACKET_SIZE, MAXIMUM_QOS, MESSAGE_EXPIRY, PAYLOAD_FORMAT,
    RC_BAD_AUTH_METHOD, RC_MALFORMED, RC_NO_MATCHING_SUBSCRIBERS,
    RC_NO_SUBSCRIPTION_EXISTED, RC_PACKET_TOO_LARGE,
    RC_PAYLOAD_FORMAT_INVALID, RC_PROTOCOL_ERROR,
    RC_RECEIVE_MAXIMUM_EXCEEDED, RC_SESSION_TAKEN_OVER,
    RC_TOPIC_ALIAS_INVALID, RC_TOPIC_FILTER_INVALID, RECEIVE_MAXIMUM,
    RESPONSE_TOPIC, RETAIN_AVAILABLE, SERVER_KEEP_ALIVE, SESSION_EXPIRY,
    SUBSCRIPTION_ID, TOPIC_ALIAS, TOPIC_ALIAS_MAXIMUM, USER_PROPERTY,
    WILL_DELAY, REASON_STRING, REQUEST_PROBLEM_INFO, REQUEST_RESPONSE_INFO,
    RESPONSE_INFO, Client5, client5, enc_ack5, enc_auth, enc_connect5,
    enc_disconnect5, enc_prop, enc_props, enc_publish5, enc_subscribe5,
    sub_opts)

Q1 = sub_opts(1)
Q2 = sub_opts(2)


def _payloads(packets):
    return [p.payload for p in packets]


def _recv_exactly(c, n, what, quiet=0.5, ack=True):
    """n PUBLISHes (acknowledged unless ack is false), then none for
    quiet seconds."""
    got = [c.recv_publish(ack=ack, what="%s, %d of %d" % (what, i + 1, n))
           for i in range(n)]
    c.expect_nothing(quiet, "%s: PUBLISH after the %d expected (%r)"
                     % (what, n, _payloads(got)))
    return got


def _check_unique_props(p, what):
    """Only User Property (and Subscription Identifier in PUBLISH) may
    appear more than once (MQTT 5.0 2.2.2.2)."""
    ids = [i for i in p.props.ids()
           if i not in (USER_PROPERTY, SUBSCRIPTION_ID)]
    check_eq(len(ids), len(set(ids)), "%s: properties given twice in %r"
             % (what, p))


class _Bystander:
    """A v5 subscriber and a 3.1.1 publisher that stay connected while
    other connections are closed for bad input; check() proves they still
    work."""

    def __init__(self, b, name):
        self.topic = "bystander/%s" % name
        self.sub = client5(b.port, name + "-bys-sub")
        check_eq(self.sub.subscribe([(self.topic, Q1)]), [1],
                 "bystander SUBACK")
        self.pub = raw_client(b.port, name + "-bys-pub")
        self.n = 0

    def check(self, what):
        self.n += 1
        body = b"still-%d" % self.n
        self.pub.publish(self.topic, body, qos=1)
        m = self.sub.recv_publish(what="bystander after %s" % what)
        check_eq(m.payload, body, "bystander's message after %s" % what)


def _expect_refused(c, codes, what):
    """A CONNECT refused: CONNACK with a reason code in codes then the
    close, or the close without a CONNACK (MQTT 5.0 4.13: either is
    allowed for a malformed CONNECT)."""
    if not c.wait_closed(3.0):
        fail("%s: the connection was not closed within 3 s (packets: %r)"
             % (what, c.before_close))
    if c.before_close:
        check_eq(len(c.before_close), 1, "%s: packets before the close "
                 "(%r)" % (what, c.before_close))
        p = c.before_close[0]
        check_eq(p.type, CONNACK, "%s: packet before the close" % what)
        check(p.rc in codes, "%s: CONNACK reason code 0x%02x, want %s"
              % (what, p.rc, " or ".join("0x%02x" % x for x in codes)))


# ---------------------------------------------------------- CONNECT / CONNACK

def test_connack_defaults():
    """A plain v5 CONNECT: reason code 0, session present 0, Receive
    Maximum 20 (max_inflight_messages default), Topic Alias Maximum 10
    (max_topic_alias default); no Assigned Client Identifier for a given
    id, no Maximum QoS (2 is the default and may not be sent), Retain
    Available absent or 1, no Server Keep Alive for keep-alive 60."""
    with Broker() as b:
        c = Client5(b.port)
        p = c.connect("v5-defaults", keepalive=60)
        check_eq((p.rc, p.session_present), (0, 0),
                 "CONNACK (reason code, session present)")
        _check_unique_props(p, "CONNACK")
        check_eq(p.props.get(RECEIVE_MAXIMUM), 20, "Receive Maximum")
        check_eq(p.props.get(TOPIC_ALIAS_MAXIMUM), 10, "Topic Alias Maximum")
        check(not p.props.has(ASSIGNED_CLIENT_ID),
              "Assigned Client Identifier sent for a client with an id: %r"
              % p)
        check(not p.props.has(MAXIMUM_QOS), "Maximum QoS sent when 2 is "
              "available: %r" % p)
        check(p.props.get(RETAIN_AVAILABLE, 1) == 1,
              "Retain Available 0 by default: %r" % p)
        check(p.props.get(SERVER_KEEP_ALIVE, 60) == 60,
              "Server Keep Alive other than the client's 60: %r" % p)
        c.ping()
        c.disconnect()
        c.expect_closed(3, "after DISCONNECT")


def test_connack_receive_maximum():
    with Broker(options={"max_inflight_messages": 7}) as b:
        p = client5(b.port, "v5-rm").connack
        check_eq(p.props.get(RECEIVE_MAXIMUM), 7,
                 "Receive Maximum with max_inflight_messages 7")


def test_connack_maximum_packet_size():
    with Broker(options={"max_packet_size": 2000}) as b:
        p = client5(b.port, "v5-mps").connack
        check_eq(p.props.get(MAXIMUM_PACKET_SIZE), 2000,
                 "Maximum Packet Size with max_packet_size 2000")


def test_connack_topic_alias_maximum():
    with Broker(options={"max_topic_alias": 3}) as b:
        p = client5(b.port, "v5-tam").connack
        check_eq(p.props.get(TOPIC_ALIAS_MAXIMUM), 3,
                 "Topic Alias Maximum with max_topic_alias 3")


def test_connack_retain_available_and_maximum_qos():
    with Broker(options={"retain_available": False, "max_qos": 1}) as b:
        p = client5(b.port, "v5-ra").connack
        _check_unique_props(p, "CONNACK")
        check_eq(p.props.get(RETAIN_AVAILABLE), 0,
                 "Retain Available with retain_available false")
        check_eq(p.props.get(MAXIMUM_QOS), 1, "Maximum QoS with max_qos 1")


def test_assigned_client_identifier():
    """An empty client id gets an Assigned Client Identifier, unique per
    connection, that the broker then uses; a given id gets none."""
    with Broker() as b:
        ids = []
        for _ in range(2):
            c = Client5(b.port)
            p = c.connect("")
            aid = p.props.get(ASSIGNED_CLIENT_ID)
            check(aid, "no Assigned Client Identifier for an empty client "
                  "id: %r" % p)
            ids.append(aid)
            c.ping()
        check(ids[0] != ids[1], "the same identifier assigned twice: %r"
              % ids)
        p = client5(b.port, "v5-named").connack
        check(not p.props.has(ASSIGNED_CLIENT_ID),
              "Assigned Client Identifier for a named client: %r" % p)


def test_server_keep_alive():
    """max_keepalive 30: a client asking for 60 is told 30 (Server Keep
    Alive); one asking for 20 keeps 20 (no property, or 20)."""
    with Broker(options={"max_keepalive": 30}) as b:
        p = client5(b.port, "v5-ka60", keepalive=60).connack
        check_eq(p.props.get(SERVER_KEEP_ALIVE), 30,
                 "Server Keep Alive for keep-alive 60, max_keepalive 30")
        p = client5(b.port, "v5-ka20", keepalive=20).connack
        check(p.props.get(SERVER_KEEP_ALIVE, 20) == 20,
              "Server Keep Alive for keep-alive 20 (max 30): %r" % p)


def test_unsupported_authentication_method():
    """An Authentication Method the broker does not support: CONNACK 0x8C
    (Bad authentication method), then the close."""
    with Broker() as b:
        bys = _Bystander(b, "am")
        c = Client5(b.port)
        p = c.connect("v5-auth", props=[(AUTH_METHOD, "SCRAM-SHA-1")],
                      check=False)
        check_eq(p.rc, RC_BAD_AUTH_METHOD, "CONNACK reason code for an "
                 "unknown Authentication Method")
        check_eq(p.session_present, 0, "session present in a refusal")
        c.expect_closed(3, "after CONNACK 0x8C")
        bys.check("the refused CONNECT")


def test_malformed_connect_properties():
    """A CONNECT property block with a duplicate Session Expiry Interval,
    an unknown identifier 0x7f or a Will property (Will Delay Interval)
    in the CONNECT's own properties: CONNACK 0x81/0x82 or no CONNACK, and
    the close; other clients go on."""
    cases = [
        ("duplicate Session Expiry Interval",
         enc_props([(SESSION_EXPIRY, 5), (SESSION_EXPIRY, 6)])),
        ("unknown property 0x7f", enc_props([(None, b"\x7f\x00")])),
        ("Will Delay Interval in CONNECT properties",
         enc_props([(WILL_DELAY, 5)])),
        ("Property Length past the end of the packet", b"\x20"),
    ]
    with Broker() as b:
        bys = _Bystander(b, "mcp")
        for what, block in cases:
            c = Client5(b.port)
            c.send(enc_connect5("v5-badprops", raw_props=block))
            _expect_refused(c, (RC_MALFORMED, RC_PROTOCOL_ERROR), what)
            bys.check(what)


# ------------------------------------------------------------ Session Expiry

def test_session_expiry_zero_is_fresh_session():
    """Session Expiry 0 (no property): even with Clean Start 0 the next
    connection finds no session (session present 0, no subscriptions)."""
    with Broker() as b:
        c = client5(b.port, "se0", clean=False)
        check_eq(c.connack.session_present, 0, "first session present")
        c.subscribe([("se0/t", Q1)])
        c.disconnect()
        c.expect_closed(3, "after DISCONNECT")
        c = client5(b.port, "se0", clean=False)
        check_eq(c.connack.session_present, 0, "session present after a "
                 "session with expiry 0 ended")
        pub = client5(b.port, "se0-pub")
        pub.publish("se0/t", b"x", qos=1)
        c.expect_nothing(0.5, "delivery on a subscription of the ended "
                         "session")


def test_session_kept_with_expiry():
    """Session Expiry 60, Clean Start 0: subscriptions and QoS 1 messages
    queued while away survive a disconnect (session present 1)."""
    with Broker() as b:
        props = [(SESSION_EXPIRY, 60)]
        c = client5(b.port, "se60", clean=False, props=props)
        check_eq(c.connack.session_present, 0, "first session present")
        c.subscribe([("se60/t", Q1)])
        c.disconnect()
        c.expect_closed(3, "after DISCONNECT")
        pub = client5(b.port, "se60-pub")
        for i in range(3):
            pub.publish("se60/t", b"q%d" % i, qos=1)
        c = client5(b.port, "se60", clean=False, props=props)
        check_eq(c.connack.session_present, 1, "session present on resume")
        got = c.recv_publishes(3)
        check_eq(_payloads(got), [b"q0", b"q1", b"q2"], "queued messages")
        check(all(m.qos == 1 for m in got), "queued delivery QoS: %r" % got)
        pub.publish("se60/t", b"live", qos=1)
        check_eq(c.recv_publish().payload, b"live",
                 "live message on the kept subscription")
        c.expect_nothing(0.3, "extra delivery")


def test_session_expires():
    """Session Expiry 2: the session is there right after a disconnect,
    and gone 3.5 s later, with the message queued for it."""
    with Broker() as b:
        props = [(SESSION_EXPIRY, 2)]
        c = client5(b.port, "se2", clean=False, props=props)
        c.subscribe([("se2/t", Q1)])
        c.disconnect()
        c.expect_closed(3, "after DISCONNECT")
        c = client5(b.port, "se2", clean=False, props=props)
        check_eq(c.connack.session_present, 1, "session present at once")
        c.disconnect()
        c.expect_closed(3, "after DISCONNECT")
        pub = client5(b.port, "se2-pub")
        pub.publish("se2/t", b"queued", qos=1)
        time.sleep(3.5)
        c = client5(b.port, "se2", clean=False, props=props)
        check_eq(c.connack.session_present, 0,
                 "session present 3.5 s after a disconnect with expiry 2")
        c.expect_nothing(0.5, "message queued for the expired session")
        pub.publish("se2/t", b"after", qos=1)
        c.expect_nothing(0.3, "delivery on the expired session's "
                         "subscription")


def test_clean_start_discards_session():
    """Clean Start 1 drops a kept session: session present 0, no queued
    messages, no subscriptions."""
    with Broker() as b:
        props = [(SESSION_EXPIRY, 60)]
        c = client5(b.port, "cs", clean=False, props=props)
        c.subscribe([("cs/t", Q1)])
        c.close()
        pub = client5(b.port, "cs-pub")
        pub.publish("cs/t", b"queued", qos=1)
        c = client5(b.port, "cs", clean=True, props=props)
        check_eq(c.connack.session_present, 0, "session present with "
                 "Clean Start 1")
        c.expect_nothing(0.5, "message queued for the discarded session")
        pub.publish("cs/t", b"after", qos=1)
        c.expect_nothing(0.3, "delivery on a discarded subscription")


def test_disconnect_sets_session_expiry_zero():
    """DISCONNECT with Session Expiry Interval 0 (CONNECT said 60) ends
    the session at the disconnect."""
    with Broker() as b:
        props = [(SESSION_EXPIRY, 60)]
        c = client5(b.port, "dz", clean=False, props=props)
        c.subscribe([("dz/t", Q1)])
        c.disconnect(0, [(SESSION_EXPIRY, 0)])
        c.expect_closed(3, "after DISCONNECT")
        c = client5(b.port, "dz", clean=False, props=props)
        check_eq(c.connack.session_present, 0, "session present after "
                 "DISCONNECT with Session Expiry 0")
        # The same without the change keeps it (control).
        c.subscribe([("dz/t", Q1)])
        c.disconnect(0, [])
        c.expect_closed(3, "after DISCONNECT")
        c = client5(b.port, "dz", clean=False, props=props)
        check_eq(c.connack.session_present, 1, "session present after a "
                 "DISCONNECT without Session Expiry")


def test_disconnect_raises_session_expiry_from_zero():
    """CONNECT without Session Expiry, DISCONNECT with Session Expiry 30:
    a Protocol Error (3.14.2.2.2): DISCONNECT 0x82 from the broker, close,
    and no session is kept."""
    with Broker() as b:
        bys = _Bystander(b, "dr")
        c = client5(b.port, "dr", clean=False)
        c.subscribe([("dr/t", Q1)])
        c.send(enc_disconnect5(0, [(SESSION_EXPIRY, 30)]))
        c.expect_disconnect(RC_PROTOCOL_ERROR, "Session Expiry raised from "
                            "0 in DISCONNECT")
        bys.check("the bad DISCONNECT")
        c = client5(b.port, "dr", clean=False)
        check_eq(c.connack.session_present, 0, "session present after the "
                 "refused expiry change")


# ------------------------------------------------------------ Message Expiry

def test_message_expiry_queued():
    """Two QoS 1 messages queued for an offline persistent subscriber:
    Message Expiry 2 is dropped after 3.5 s; Message Expiry 60 is
    delivered with the remaining time (0 < interval <= 57)."""
    with Broker() as b:
        props = [(SESSION_EXPIRY, 60)]
        c = client5(b.port, "me", clean=False, props=props)
        c.subscribe([("me/#", Q1)])
        c.disconnect()
        c.expect_closed(3, "after DISCONNECT")
        pub = client5(b.port, "me-pub")
        pub.publish("me/short", b"short", qos=1, props=[(MESSAGE_EXPIRY, 2)])
        pub.publish("me/long", b"long", qos=1, props=[(MESSAGE_EXPIRY, 60)])
        pub.publish("me/none", b"none", qos=1)
        time.sleep(3.5)
        c = client5(b.port, "me", clean=False, props=props)
        check_eq(c.connack.session_present, 1, "session present")
        got = _recv_exactly(c, 2, "queued messages")
        check_eq([(m.topic, m.payload) for m in got],
                 [("me/long", b"long"), ("me/none", b"none")],
                 "queued messages delivered 3.5 s later")
        left = got[0].props.get(MESSAGE_EXPIRY)
        check(left is not None and 0 < left <= 57,
              "Message Expiry Interval after 3.5 s queued of 60: %r"
              % (left,))
        check(not got[1].props.has(MESSAGE_EXPIRY),
              "Message Expiry Interval on a message that had none: %r"
              % got[1])
        if ringmq_checks():
            drops = admin(b).call("stats")["totals"]["drops"]
            check_eq(drops["expired"], 1, "stats drops.expired")


def test_message_expiry_retained():
    """A retained message with Message Expiry 2 is not sent to a new
    subscriber 3.5 s later; one with 60 is, with its remaining time."""
    with Broker() as b:
        pub = client5(b.port, "mr-pub")
        pub.publish("mr/short", b"short", qos=1, retain=True,
                    props=[(MESSAGE_EXPIRY, 2)])
        pub.publish("mr/long", b"long", qos=1, retain=True,
                    props=[(MESSAGE_EXPIRY, 60)])
        time.sleep(3.5)
        c = client5(b.port, "mr-sub")
        c.subscribe([("mr/#", Q1)])
        got = _recv_exactly(c, 1, "retained messages")
        check_eq([(m.topic, m.payload, m.retain) for m in got],
                 [("mr/long", b"long", True)],
                 "retained messages for a subscriber 3.5 s later")
        left = got[0].props.get(MESSAGE_EXPIRY)
        check(left is not None and 0 < left <= 57,
              "Message Expiry Interval of a retained message 3.5 s after "
              "60: %r" % (left,))


# ----------------------------------------------------------- Receive Maximum

def test_client_receive_maximum():
    """A subscriber with Receive Maximum 2 that does not ack gets 2 of 5
    QoS 1 PUBLISHes; each PUBACK lets one more through."""
    with Broker() as b:
        s = client5(b.port, "crm", props=[(RECEIVE_MAXIMUM, 2)])
        s.subscribe([("crm/t", Q1)])
        pub = client5(b.port, "crm-pub")
        want = [b"m%d" % i for i in range(5)]
        for body in want:
            pub.publish("crm/t", body, qos=1)
        first = _recv_exactly(s, 2, "before any PUBACK", ack=False)
        check_eq(_payloads(first), want[:2], "PUBLISHes before any PUBACK "
                 "with Receive Maximum 2")
        if ringmq_checks():
            # Mosquitto 2.0.11 sends two more after the first PUBACK (three
            # in flight): its inflight-quota bug, fixed in 2.0.13.
            inflight = list(first)
            for nxt in want[2:]:
                done = inflight.pop(0)
                s.send(enc_ack(PUBACK, done.pid))
                more = _recv_exactly(s, 1, "after the PUBACK of %r"
                                     % done.payload, ack=False)
                check_eq(_payloads(more), [nxt], "PUBLISH after the "
                         "PUBACK of %r" % done.payload)
                inflight += more
            for p in inflight:
                s.send(enc_ack(PUBACK, p.pid))
            s.expect_nothing(0.5, "after the last PUBACK")
        else:
            for p in first:
                s.send(enc_ack(PUBACK, p.pid))
            rest = _recv_exactly(s, 3, "after the PUBACKs")
            check_eq(_payloads(first + rest), want, "all five in order")


def test_server_receive_maximum_exceeded():
    """max_inflight_messages 3 (Receive Maximum 3): a client sending a
    fourth QoS 2 PUBLISH without PUBREL gets DISCONNECT 0x93 (Receive
    Maximum exceeded, 3.3.4) and is closed; others go on."""
    # Mosquitto 2.0.11 answers the fourth with PUBREC 0x97 (Quota
    # exceeded) and accepts the fifth again, without a DISCONNECT.
    ringmq_only("Mosquitto answers PUBREC 0x97 instead of DISCONNECT 0x93")
    with Broker(options={"max_inflight_messages": 3}) as b:
        bys = _Bystander(b, "srm")
        c = client5(b.port, "srm")
        check_eq(c.connack.props.get(RECEIVE_MAXIMUM), 3, "Receive Maximum")
        for pid in (1, 2, 3):
            c.send(enc_publish5("srm/t", b"x", qos=2, pid=pid))
            r = c.expect(PUBREC, what="QoS 2 PUBLISH %d of 3" % pid)
            check_eq((r.pid, r.rc), (pid, 0), "PUBREC (id, reason code)")
        c.send(enc_publish5("srm/t", b"x", qos=2, pid=4))
        c.expect_disconnect(RC_RECEIVE_MAXIMUM_EXCEEDED, "fourth QoS 2 "
                            "PUBLISH in flight")
        bys.check("the DISCONNECT 0x93")


# -------------------------------------------------------- Maximum Packet Size

def test_client_maximum_packet_size():
    """A subscriber with Maximum Packet Size 100 gets the small messages
    and not the 500-byte one, and stays connected; a subscriber without a
    limit gets all three."""
    with Broker() as b:
        small = client5(b.port, "cmps-small",
                        props=[(MAXIMUM_PACKET_SIZE, 100)])
        small.subscribe([("cmps/t", Q1)])
        big = client5(b.port, "cmps-big")
        big.subscribe([("cmps/t", Q1)])
        pub = client5(b.port, "cmps-pub")
        bodies = [b"small", b"B" * 500, b"small2"]
        for body in bodies:
            pub.publish("cmps/t", body, qos=1)
        check_eq(_payloads(big.recv_publishes(3)), bodies,
                 "subscriber without a limit")
        got = _recv_exactly(small, 2, "Maximum Packet Size 100")
        check_eq(_payloads(got), [b"small", b"small2"],
                 "subscriber with Maximum Packet Size 100")
        small.ping()
        pub.publish("cmps/t", b"later", qos=1)
        check_eq(small.recv_publish().payload, b"later",
                 "delivery after the dropped message")
        if ringmq_checks():
            # The drop is counted where an operator looks (docs/admin.md).
            drops = admin(b).call("stats")["totals"]["drops"]
            check_eq(drops["too_large_for_client"], 1,
                     "stats drops.too_large_for_client")


def test_server_maximum_packet_size():
    """max_packet_size 200: a 500-byte PUBLISH from a v5 client gets
    DISCONNECT 0x95 (Packet too large) and the close; others go on."""
    with Broker(options={"max_packet_size": 200}) as b:
        bys = _Bystander(b, "smps")
        c = client5(b.port, "smps")
        check_eq(c.connack.props.get(MAXIMUM_PACKET_SIZE), 200,
                 "Maximum Packet Size")
        c.send(enc_publish5("smps/t", b"x" * 500, qos=1, pid=1))
        c.expect_disconnect(RC_PACKET_TOO_LARGE, "PUBLISH of 500 bytes")
        bys.check("the DISCONNECT 0x95")


# ------------------------------------------------------------- Topic aliases

def test_topic_alias_inbound():
    """Topic + alias 1, then empty topic + alias 1, then the alias moved to
    another topic: subscribers get full topics and, not having allowed
    aliases, no Topic Alias property."""
    with Broker() as b:
        s5 = client5(b.port, "ta-sub5")
        s5.subscribe([("ta/#", Q1)])
        s3 = raw_client(b.port, "ta-sub3")
        s3.subscribe([("ta/#", 1)])
        pub = client5(b.port, "ta-pub")
        sends = [("ta/b", b"1"), ("", b"2"), ("ta/c", b"3"), ("", b"4")]
        for topic, body in sends:
            pub.publish(topic, body, qos=1, props=[(TOPIC_ALIAS, 1)])
        want = [("ta/b", b"1"), ("ta/b", b"2"), ("ta/c", b"3"),
                ("ta/c", b"4")]
        got = s5.recv_publishes(4)
        check_eq([(m.topic, m.payload) for m in got], want,
                 "v5 subscriber (topic, payload)")
        for m in got:
            check(not m.props.has(TOPIC_ALIAS),
                  "Topic Alias sent to a client that allowed none: %r" % m)
        got = s3.recv_publishes(4)
        check_eq([(m.topic, m.payload) for m in got], want,
                 "3.1.1 subscriber (topic, payload)")
        s5.expect_nothing(0.3, "extra delivery")


def test_topic_alias_invalid():
    """Alias 0 and an alias above max_topic_alias (default 10): DISCONNECT
    0x94; an empty topic with an alias never set: DISCONNECT 0x82.  Each
    closes only that connection."""
    cases = [
        ("Topic Alias 0", enc_publish5("tai/t", b"x", qos=1, pid=1,
                                       props=[(TOPIC_ALIAS, 0)]),
         # Mosquitto 2.0.11 answers alias 0 with 0x81 (Malformed Packet);
         # MQTT 5.0 3.3.2.3.4 says 0x94.
         (RC_TOPIC_ALIAS_INVALID,) if ringmq_checks()
         else (RC_TOPIC_ALIAS_INVALID, RC_MALFORMED)),
        ("Topic Alias 11 above the maximum 10",
         enc_publish5("tai/t", b"x", qos=1, pid=1,
                      props=[(TOPIC_ALIAS, 11)]),
         (RC_TOPIC_ALIAS_INVALID,)),
        ("empty topic with an unknown Topic Alias",
         enc_publish5("", b"x", qos=1, pid=1, props=[(TOPIC_ALIAS, 5)]),
         (RC_PROTOCOL_ERROR,)),
        ("empty topic without a Topic Alias",
         enc_publish5("", b"x", qos=1, pid=1),
         (RC_PROTOCOL_ERROR,)),
    ]
    with Broker() as b:
        bys = _Bystander(b, "tai")
        check_eq(bys.sub.connack.props.get(TOPIC_ALIAS_MAXIMUM), 10,
                 "Topic Alias Maximum")
        s = client5(b.port, "tai-sub")
        s.subscribe([("tai/#", Q1)])
        for i, (what, pkt, codes) in enumerate(cases):
            c = client5(b.port, "tai-%d" % i)
            # An alias set on this connection does not help the bad one.
            c.publish("tai/ok", b"ok", qos=1, props=[(TOPIC_ALIAS, 5 + i)])
            check_eq(s.recv_publish().topic, "tai/ok", "aliased topic")
            c.send(pkt)
            c.expect_disconnect(codes, what)
            bys.check(what)
        s.expect_nothing(0.3, "delivery of a refused PUBLISH")


# ------------------------------------------------------ Subscription options

def test_no_local():
    """No Local: the publisher's own message is not sent back to it;
    other subscribers get it, and it still gets other clients'
    messages."""
    with Broker() as b:
        a = client5(b.port, "nl-a")
        a.subscribe([("nl/#", sub_opts(1, no_local=True))])
        o = client5(b.port, "nl-o")
        o.subscribe([("nl/#", Q1)])
        a.publish("nl/t", b"own", qos=1)
        check_eq(o.recv_publish().payload, b"own", "other subscriber")
        a.expect_nothing(0.5, "own message back with No Local")
        o.publish("nl/t", b"from-o", qos=1)
        check_eq(a.recv_publish().payload, b"from-o",
                 "No Local subscriber, another client's message")
        # Without No Local (control) the own message comes back.
        o.expect(PUBLISH, what="own message without No Local")


def test_retain_as_published():
    """Retain As Published: on normal forwarding the RETAIN flag is kept
    with it and cleared without it; a retained message sent because of a
    new subscription has RETAIN 1 either way."""
    with Broker() as b:
        rap = client5(b.port, "rap-1")
        rap.subscribe([("rap/t", sub_opts(1, retain_as_published=True))])
        plain = client5(b.port, "rap-0")
        plain.subscribe([("rap/t", Q1)])
        pub = client5(b.port, "rap-pub")
        pub.publish("rap/t", b"ret", qos=1, retain=True)
        pub.publish("rap/t", b"plain", qos=1)
        got = [(m.payload, m.retain) for m in rap.recv_publishes(2)]
        check_eq(got, [(b"ret", True), (b"plain", False)],
                 "Retain As Published 1 (payload, retain)")
        got = [(m.payload, m.retain) for m in plain.recv_publishes(2)]
        check_eq(got, [(b"ret", False), (b"plain", False)],
                 "Retain As Published 0 (payload, retain)")
        late = client5(b.port, "rap-late")
        late.subscribe([("rap/t", Q1)])
        m = late.recv_publish()
        check_eq((m.payload, m.retain), (b"ret", True),
                 "retained message to a new subscription")


def test_retain_handling():
    """Retain Handling 0: retained message at every SUBSCRIBE; 1: only when
    the subscription is new (not on a re-subscribe, again after an
    UNSUBSCRIBE); 2: never."""
    with Broker() as b:
        pub = client5(b.port, "rh-pub")
        pub.publish("rh/t", b"kept", qos=1, retain=True)

        def subscribe_expect(c, rh, n, what):
            c.subscribe([("rh/t", sub_opts(1, retain_handling=rh))])
            for m in _recv_exactly(c, n, "Retain Handling %d, %s"
                                   % (rh, what), quiet=0.3):
                check_eq((m.payload, m.retain), (b"kept", True),
                         "Retain Handling %d, %s: retained message"
                         % (rh, what))

        # Retained messages wanted at the first SUBSCRIBE, then at a
        # re-SUBSCRIBE of the same filter.
        steps = {0: (1, 1), 1: (1, 0), 2: (0, 0)}
        for rh, (first, again) in steps.items():
            c = client5(b.port, "rh-%d" % rh)
            subscribe_expect(c, rh, first, "first SUBSCRIBE")
            subscribe_expect(c, rh, again, "re-SUBSCRIBE")
            if rh == 1:
                c.unsubscribe(["rh/t"])
                subscribe_expect(c, rh, 1, "SUBSCRIBE after UNSUBSCRIBE")
            # The subscription works whatever the option.
            pub.publish("rh/t", b"live", qos=1)
            m = c.recv_publish(what="rh %d live message" % rh)
            check_eq((m.payload, m.retain), (b"live", False),
                     "rh %d live message" % rh)


def test_subscription_identifiers():
    """Two overlapping subscriptions with ids 1 and 2: one PUBLISH with
    both ids; a subscription with id 7: id 7; without an id: no
    Subscription Identifier; a re-subscribe with id 9 replaces 7."""
    with Broker() as b:
        c = client5(b.port, "sid")
        c.subscribe([("sid/+", Q1)], props=[(SUBSCRIPTION_ID, 1)])
        c.subscribe([("sid/a", Q1)], props=[(SUBSCRIPTION_ID, 2)])
        c.subscribe([("sid7/t", Q1)], props=[(SUBSCRIPTION_ID, 7)])
        c.subscribe([("sidn/t", Q1)])
        pub = client5(b.port, "sid-pub")
        pub.publish("sid/a", b"both", qos=1)
        got = [c.recv_publish()] + c.read_until_quiet(0.5, ack=True)
        check(all(m.payload == b"both" for m in got),
              "deliveries for the overlapping subscriptions: %r" % got)
        if ringmq_checks():
            # Mosquitto 2.0.11 sends one copy per subscription, each with
            # its own id: allowed by MQTT-3.3.4-5, but ringmq sends one.
            check_eq(len(got), 1, "PUBLISHes for two overlapping "
                     "subscriptions")
            check_eq(sorted(got[0].props.all(SUBSCRIPTION_ID)), [1, 2],
                     "Subscription Identifiers in the one PUBLISH")
        else:
            check_eq(sorted(i for m in got
                            for i in m.props.all(SUBSCRIPTION_ID)), [1, 2],
                     "Subscription Identifiers over the copies")
            for m in got:
                check_eq(len(m.props.all(SUBSCRIPTION_ID)), 1,
                         "ids per copy (MQTT-3.3.4-5)")
        pub.publish("sid/b", b"one", qos=1)
        m = c.recv_publish()
        check_eq((m.payload, m.props.all(SUBSCRIPTION_ID)), (b"one", [1]),
                 "only sid/+ matches: (payload, ids)")
        pub.publish("sid7/t", b"seven", qos=1)
        m = c.recv_publish()
        check_eq((m.payload, m.props.all(SUBSCRIPTION_ID)), (b"seven", [7]),
                 "(payload, ids) for the subscription with id 7")
        pub.publish("sidn/t", b"none", qos=1)
        m = c.recv_publish()
        check_eq((m.payload, list(m.props)), (b"none", []),
                 "(payload, properties) for a subscription without id")
        c.subscribe([("sid7/t", Q1)], props=[(SUBSCRIPTION_ID, 9)])
        pub.publish("sid7/t", b"nine", qos=1)
        m = c.recv_publish()
        check_eq((m.payload, m.props.all(SUBSCRIPTION_ID)), (b"nine", [9]),
                 "(payload, ids) after re-subscribing with id 9")
        c.expect_nothing(0.3, "extra delivery")


# ------------------------------------------------------------- Reason codes

def test_suback_granted_qos():
    with Broker() as b:
        c = client5(b.port, "suba")
        codes = c.subscribe([("suba/0", sub_opts(0)), ("suba/1", Q1),
                             ("suba/2", Q2), ("suba/#", Q1)])
        check_eq(codes, [0, 1, 2, 1], "SUBACK reason codes")
        check_eq(list(c.suback.props), [], "SUBACK properties")


def test_suback_invalid_filter():
    """An invalid filter among valid ones: 0x8F (Topic Filter invalid) for
    it, the others granted and working; the connection stays."""
    # Mosquitto 2.0.11 answers the whole SUBSCRIBE with DISCONNECT 0x81.
    ringmq_only("Mosquitto disconnects (0x81) on an invalid filter instead "
                "of SUBACK 0x8F")
    with Broker() as b:
        c = client5(b.port, "subx")
        codes = c.subscribe([("subx/a", Q1), ("subx/#/b", Q1),
                             ("subx/c", Q2)])
        check_eq(codes, [1, RC_TOPIC_FILTER_INVALID, 2], "SUBACK reason "
                 "codes")
        pub = client5(b.port, "subx-pub")
        pub.publish("subx/a", b"a", qos=1)
        check_eq(c.recv_publish().payload, b"a", "granted filter delivers")


def test_unsuback_reason_codes():
    """UNSUBACK: 0x00 for a subscription that existed, 0x11 (No
    subscription existed) for one that did not."""
    with Broker() as b:
        c = client5(b.port, "unsa")
        c.subscribe([("unsa/a", Q1)])
        codes = c.unsubscribe(["unsa/a", "unsa/none", "unsa/a"])
        check_eq(codes, [0, RC_NO_SUBSCRIPTION_EXISTED,
                         RC_NO_SUBSCRIPTION_EXISTED],
                 "UNSUBACK reason codes (existing, never, already gone)")
        pub = client5(b.port, "unsa-pub")
        pub.publish("unsa/a", b"x", qos=1)
        c.expect_nothing(0.3, "delivery after UNSUBSCRIBE")


def test_puback_pubrec_reason_codes():
    """PUBACK and PUBREC to a v5 publisher: 0x00 or 0x10 (No matching
    subscribers) without subscribers, 0x00 with one."""
    with Broker() as b:
        pub = client5(b.port, "prc")
        for qos in (1, 2):
            a = pub.publish("prc/none", b"x", qos=qos,
                            ok=(0, RC_NO_MATCHING_SUBSCRIBERS))
            _check_unique_props(a, a.name)
        s = client5(b.port, "prc-sub")
        s.subscribe([("prc/t", Q2)])
        for qos in (1, 2):
            pub.publish("prc/t", b"x", qos=qos, ok=(0,))
            check_eq(s.recv_publish().qos, qos, "delivery QoS")


def test_pubrec_for_a_qos1_delivery_is_a_protocol_error():
    """MQTT 5: a PUBREC answering a QoS 1 delivery gets DISCONNECT 0x82,
    not a PUBREL (4.3.2: a QoS 1 PUBLISH is answered with PUBACK)."""
    ringmq_only("Mosquitto 2.0.11 closes the connection without a DISCONNECT")
    with Broker() as b:
        s = client5(b.port, "wf5-sub")
        s.subscribe([("wf5/t", Q1)])
        pub = client5(b.port, "wf5-pub")
        pub.publish("wf5/t", b"one", qos=1)
        m = s.expect(PUBLISH, what="QoS 1 delivery")
        check_eq(m.qos, 1, "delivery QoS")
        s.send(enc_ack5(PUBREC, m.pid))
        s.expect_disconnect((RC_PROTOCOL_ERROR,), "PUBREC for a QoS 1 "
                            "delivery")
        pub.ping()


def test_qos2_ack_forms():
    """The QoS 2 flow in both directions with acks in the 2-byte (id), the
    3-byte (id, reason code) and the 4-byte (id, reason code, empty
    properties) forms."""
    forms = [("2-byte", {}), ("3-byte", {"rc": 0}),
             ("4-byte", {"rc": 0, "props": ()})]
    with Broker() as b:
        s = client5(b.port, "q2f-sub")
        s.subscribe([("q2f/t", Q2)])
        pub = client5(b.port, "q2f-pub")
        for name, kw in forms:
            body = name.encode()
            pid = pub.pid()
            pub.send(enc_publish5("q2f/t", body, qos=2, pid=pid))
            r = pub._await_ack(PUBREC, pid, "PUBLISH (%s acks)" % name)
            check_eq(r.rc, 0, "PUBREC reason code")
            pub.send(enc_ack5(PUBREL, pid, **kw))
            c = pub._await_ack(PUBCOMP, pid, "%s PUBREL" % name)
            check_eq(c.rc, 0, "PUBCOMP reason code after a %s PUBREL" % name)
            m = s.expect(PUBLISH, what="delivery (%s acks)" % name)
            check_eq((m.payload, m.qos), (body, 2), "delivery")
            s.send(enc_ack5(PUBREC, m.pid, **kw))
            rel = s.expect(PUBREL, what="after a %s PUBREC" % name)
            check_eq((rel.pid, rel.flags, rel.rc), (m.pid, 2, 0),
                     "PUBREL (id, flags, reason code)")
            s.send(enc_ack5(PUBCOMP, m.pid, **kw))
        s.expect_nothing(0.5, "a re-sent packet after the QoS 2 flows")
        s.ping()
        pub.ping()


# ------------------------------------------------------- Forwarded properties

def test_forwarded_properties():
    """User Properties (order kept, a name repeated), Content Type,
    Response Topic, Correlation Data, Payload Format Indicator reach a v5
    subscriber unchanged at QoS 0 and 1, with the Message Expiry
    Interval at most the one sent and nothing else."""
    users = [(USER_PROPERTY, ("a", "1")), (USER_PROPERTY, ("b", "2")),
             (USER_PROPERTY, ("a", "3")), (USER_PROPERTY, ("", "empty")),
             (USER_PROPERTY, ("a", "1"))]
    others = [(CONTENT_TYPE, "text/plain; charset=utf-8"),
              (RESPONSE_TOPIC, "fp/reply"),
              (CORRELATION_DATA, b"\x00\x01\xffcorr"), (PAYLOAD_FORMAT, 1)]
    props = users[:2] + others[:2] + users[2:] + others[2:] + \
        [(MESSAGE_EXPIRY, 100)]
    with Broker() as b:
        s = client5(b.port, "fp-sub")
        s.subscribe([("fp/t", Q1)])
        pub = client5(b.port, "fp-pub")
        for qos in (0, 1):
            body = "héllo %d" % qos
            pub.publish("fp/t", body, qos=qos, props=props)
            m = s.recv_publish(what="qos %d" % qos)
            check_eq((m.payload, m.qos), (body.encode(), qos), "delivery")
            check_eq(m.props.all(USER_PROPERTY), [v for _, v in users],
                     "User Properties, in order (qos %d)" % qos)
            for pid, v in others:
                check_eq(m.props.get(pid), v, "property 0x%02x (qos %d)"
                         % (pid, qos))
            left = m.props.get(MESSAGE_EXPIRY)
            check(left is not None and 0 < left <= 100,
                  "Message Expiry Interval forwarded: %r" % (left,))
            _check_unique_props(m, "PUBLISH")
            check_eq(sorted(set(m.props.ids())),
                     sorted({USER_PROPERTY, MESSAGE_EXPIRY}
                            | {k for k, _ in others}),
                     "properties of the forwarded PUBLISH (qos %d)" % qos)


def test_payload_format_invalid():
    """Payload Format Indicator 1 with a payload that is not UTF-8: PUBACK
    0x99 (Payload format invalid), not delivered; the same bytes without
    the indicator, and valid UTF-8 with it, are delivered."""
    # MQTT 5.0 3.3.2.3.2 lets a receiver validate (MAY); Mosquitto 2.0.11
    # does not: PUBACK 0x00 and the payload is forwarded.
    ringmq_only("Mosquitto 2.0.11 does not check the payload format")
    with Broker() as b:
        s = client5(b.port, "pfi-sub")
        s.subscribe([("pfi/t", Q1)])
        pub = client5(b.port, "pfi-pub")
        a = pub.publish("pfi/t", b"\xff\xfe", qos=1,
                        props=[(PAYLOAD_FORMAT, 1)],
                        ok=(RC_PAYLOAD_FORMAT_INVALID,))
        check_eq(a.rc, RC_PAYLOAD_FORMAT_INVALID, "PUBACK reason code")
        check("UTF-8" in (a.props.get(REASON_STRING) or ""),
              "Reason String of the PUBACK: %r" % list(a.props))
        s.expect_nothing(0.5, "delivery of an invalid UTF-8 payload")
        # A client that asked for no problem information gets the code
        # alone (3.1.2.11.7).
        quiet = client5(b.port, "pfi-quiet",
                        props=[(REQUEST_PROBLEM_INFO, 0)])
        a = quiet.publish("pfi/t", b"\xff", qos=1,
                          props=[(PAYLOAD_FORMAT, 1)],
                          ok=(RC_PAYLOAD_FORMAT_INVALID,))
        check(not a.props.has(REASON_STRING),
              "Reason String despite Request Problem Information 0")
        pub.publish("pfi/t", b"\xff\xfe", qos=1, ok=(0,))
        check_eq(s.recv_publish().payload, b"\xff\xfe",
                 "binary payload without the indicator")
        pub.publish("pfi/t", "ok \u00e9", qos=1, props=[(PAYLOAD_FORMAT, 1)],
                    ok=(0,))
        check_eq(s.recv_publish().payload, "ok \u00e9".encode(),
                 "UTF-8 payload with the indicator")


# ------------------------------------------------------------ Mixed versions

def test_v5_publisher_to_v311_subscriber():
    """A v5 PUBLISH with properties (and a Topic Alias) reaches a 3.1.1
    subscriber as a plain 3.1.1 PUBLISH: topic, id, payload, nothing
    else."""
    with Broker() as b:
        s = raw_client(b.port, "mx3-sub")
        s.subscribe([("mx3/#", 1)])
        pub = client5(b.port, "mx3-pub")
        props = [(USER_PROPERTY, ("k", "v")), (CONTENT_TYPE, "text/x"),
                 (MESSAGE_EXPIRY, 60), (RESPONSE_TOPIC, "mx3/reply"),
                 (TOPIC_ALIAS, 2)]
        pub.publish("mx3/t", b"q0", qos=0, props=props)
        m = s.recv_publish(what="qos 0")
        check_eq(m.body, enc_str("mx3/t") + b"q0", "3.1.1 QoS 0 PUBLISH "
                 "body")
        pub.publish("", b"q1", qos=1, props=[(TOPIC_ALIAS, 2)] + props[:4])
        m = s.recv_publish(what="qos 1", ack=False)
        check_eq(m.body, enc_str("mx3/t") + m.body[7:9] + b"q1",
                 "3.1.1 QoS 1 PUBLISH body (topic from the alias)")
        check(m.pid, "QoS 1 packet id 0")
        s.send(enc_ack(PUBACK, m.pid))
        s.expect_nothing(0.3, "extra delivery")


def test_v311_publisher_to_v5_subscriber():
    """A 3.1.1 PUBLISH reaches a v5 subscriber as a valid v5 PUBLISH with
    Property Length 0, or with only its Subscription Identifier."""
    with Broker() as b:
        s = client5(b.port, "mx5-sub")
        s.subscribe([("mx5/a", Q1)])
        s.subscribe([("mx5/b", Q1)], props=[(SUBSCRIPTION_ID, 3)])
        pub = raw_client(b.port, "mx5-pub")
        pub.publish("mx5/a", b"zero", qos=0)
        m = s.recv_publish(what="qos 0")
        check_eq(m.body, enc_str("mx5/a") + b"\x00zero",
                 "v5 QoS 0 PUBLISH body")
        pub.publish("mx5/a", b"one", qos=1)
        m = s.recv_publish(what="qos 1")
        check_eq(m.body, enc_str("mx5/a") + m.body[7:9] + b"\x00one",
                 "v5 QoS 1 PUBLISH body")
        pub.publish("mx5/b", b"sid", qos=1)
        m = s.recv_publish(what="with a subscription id")
        check_eq(m.body, enc_str("mx5/b") + m.body[7:9] + b"\x02\x0b\x03sid",
                 "v5 PUBLISH body with Subscription Identifier 3")


def test_mosquitto_tools_v5():
    """mosquitto_pub -V 5 -D publish user-property/content-type reaches a
    raw v5 subscriber; mosquitto_sub -V 5 -F prints the properties a raw
    v5 client published."""
    with Broker() as b:
        s = client5(b.port, "tools5-sub")
        s.subscribe([("tools5/pub", Q1)])
        r = mosquitto_pub(b.port, [
            "-V", "5", "-q", "1", "-t", "tools5/pub", "-m", "hi",
            "-D", "publish", "user-property", "k", "v",
            "-D", "publish", "user-property", "k", "v2",
            "-D", "publish", "content-type", "text/x"])
        check_eq(r.returncode, 0, "mosquitto_pub -V 5 exit (%r)" % r.stderr)
        m = s.recv_publish()
        check_eq((m.payload, m.props.all(USER_PROPERTY),
                  m.props.get(CONTENT_TYPE)),
                 (b"hi", [("k", "v"), ("k", "v2")], "text/x"),
                 "(payload, user properties, content type) from "
                 "mosquitto_pub")
        # A retained first message tells when mosquitto_sub is subscribed.
        r = mosquitto_pub(b.port, ["-V", "5", "-t", "tools5/sub/ready",
                                   "-m", "ready", "-r"])
        check_eq(r.returncode, 0, "mosquitto_pub -r exit (%r)" % r.stderr)
        sub = mosquitto_sub_start(b.port, [
            "-V", "5", "-t", "tools5/sub/#", "-q", "1", "-C", "2",
            "-i", "tools5-msub", "-F", "%t|%P|%C|%R|%p"])
        check_eq(read_line(sub, 5), b"tools5/sub/ready||||ready\n",
                 "mosquitto_sub first line (retained)")
        pub = client5(b.port, "tools5-pub")
        pub.publish("tools5/sub/x", b"yo", qos=1, props=[
            (USER_PROPERTY, ("k", "v")), (USER_PROPERTY, ("k2", "v2")),
            (CONTENT_TYPE, "text/y"), (RESPONSE_TOPIC, "tools5/reply")])
        rc, out, err = finish_process(sub, 10)
        check_eq(rc, 0, "mosquitto_sub -C 2 exit status (stderr %r)" % err)
        check_eq(out, b"tools5/sub/x|k:v k2:v2|text/y|tools5/reply|yo\n",
                 "mosquitto_sub -F output")


# ------------------------------------------------- Server-sent DISCONNECT

def test_session_takeover_disconnect():
    """A second connection with the same client id: the first (v5) gets
    DISCONNECT 0x8E (Session taken over), then the close; the second
    works."""
    with Broker() as b:
        first = client5(b.port, "tko")
        second = Client5(b.port)
        second.connect("tko")
        if ringmq_checks():
            # Mosquitto 2.0.11 closes the old connection without a
            # DISCONNECT.
            first.expect_disconnect(RC_SESSION_TAKEN_OVER, "taken over")
        else:
            first.expect_closed(3, "taken over")
        second.subscribe([("tko/t", Q1)])
        second.publish("tko/t", b"x", qos=1)
        check_eq(second.recv_publish().payload, b"x",
                 "the new connection's own message")


def test_protocol_errors_disconnect():
    """Protocol errors from a v5 client each get DISCONNECT 0x82 or 0x81,
    then the close, and leave other clients alone: a second CONNECT, a
    PUBLISH with QoS 3, AUTH without an Authentication Method, a
    Subscription Identifier in a client's PUBLISH, a PUBLISH with a
    malformed property block."""
    errs = (RC_PROTOCOL_ERROR, RC_MALFORMED)
    # strict: whether Mosquitto 2.0.11 sends the DISCONNECT too.
    cases = [
        ("second CONNECT", enc_connect5("pe-again"), False),
        ("PUBLISH with QoS 3", enc_publish5("pe/t", b"x", pid=1,
                                            first=0x36), True),
        ("AUTH without Authentication Method", enc_auth(), False),
        ("Subscription Identifier in a client PUBLISH",
         enc_publish5("pe/t", b"x", qos=1, pid=1,
                      props=[(SUBSCRIPTION_ID, 1)]), None),
        ("PUBLISH property length past the end",
         b"\x32\x09\x00\x04pe/t\x00\x01\x09", True),
        ("PUBLISH with an unknown property",
         enc_publish5("pe/t", b"x", qos=1, pid=1,
                      props=[(None, enc_prop(PAYLOAD_FORMAT, 1)),
                             (None, b"\x7f\x01")]), True),
    ]
    with Broker() as b:
        bys = _Bystander(b, "pe")
        for i, (what, pkt, mosq) in enumerate(cases):
            c = client5(b.port, "pe-%d" % i)
            c.send(pkt)
            if mosq or ringmq_checks():
                c.expect_disconnect(errs, what)
            elif mosq is False:
                # Mosquitto 2.0.11 closes without a DISCONNECT here.
                c.expect_closed(3, what)
            else:
                # Mosquitto 2.0.11 accepts a Subscription Identifier from a
                # client (MQTT-3.3.4-6 forbids it): nothing to check.
                pass
            bys.check(what)


# -- Will Delay Interval (MQTT 5.0 3.1.3.2.2) --------------------------------

def _will_client(port, cid, delay, expiry, props=()):
    """A v5 client with a QoS 1 will on wd/<cid> delayed by `delay` s and a
    Session Expiry of `expiry` s."""
    will = {"topic": "wd/" + cid, "payload": b"gone " + cid.encode(),
            "qos": 1, "props": [(WILL_DELAY, delay)] + list(props)}
    return client5(port, cid, clean=False, props=[(SESSION_EXPIRY, expiry)],
                   will=will)


def _watcher(port, cid):
    w = client5(port, cid)
    w.subscribe([("wd/#", Q1)])
    return w


def test_will_delay_sends_after_the_delay():
    """The connection drops: the will waits the Will Delay Interval (2 s),
    then goes out once."""
    with Broker() as b:
        w = _watcher(b.port, "wd-watch1")
        c = _will_client(b.port, "wd1", delay=2, expiry=60)
        t0 = time.monotonic()
        c.abort()
        w.expect_nothing(1.0, "will before its delay")
        m = w.recv_publish(timeout=4.0, what="delayed will")
        waited = time.monotonic() - t0
        check_eq((m.topic, m.payload), ("wd/wd1", b"gone wd1"), "will")
        check(waited >= 1.5, "will after %.1f s, delay was 2 s" % waited)
        w.expect_nothing(1.5, "second will")


def test_will_delay_cancelled_by_reconnect():
    """The client is back (Clean Start 0) before its will's delay passed:
    no will at all."""
    with Broker() as b:
        w = _watcher(b.port, "wd-watch2")
        c = _will_client(b.port, "wd2", delay=2, expiry=60)
        c.abort()
        time.sleep(0.5)
        c = client5(b.port, "wd2", clean=False, props=[(SESSION_EXPIRY, 60)])
        check_eq(c.connack.session_present, 1, "session present")
        w.expect_nothing(3.5, "will of a client that came back")
        c.disconnect()


def test_will_delay_capped_by_session_expiry():
    """Will delay 30 s, session expiry 1 s: the will goes when the session
    ends; Session Expiry 0: at once."""
    with Broker() as b:
        w = _watcher(b.port, "wd-watch3")
        c = _will_client(b.port, "wd3", delay=30, expiry=1)
        t0 = time.monotonic()
        c.abort()
        m = w.recv_publish(timeout=4.0, what="will at session expiry")
        check_eq(m.payload, b"gone wd3", "will")
        check(time.monotonic() - t0 < 4.0, "will came late")
        c = _will_client(b.port, "wd4", delay=30, expiry=0)
        c.abort()
        m = w.recv_publish(timeout=1.5, what="will with Session Expiry 0")
        check_eq(m.payload, b"gone wd4", "will")


def test_disconnect_with_will_and_will_properties():
    """DISCONNECT 0x04 publishes the will; its properties (Content Type,
    User Property) travel with it and the Will Delay Interval does not;
    a normal DISCONNECT publishes nothing."""
    with Broker() as b:
        w = _watcher(b.port, "wd-watch5")
        c = _will_client(b.port, "wd5", delay=0, expiry=0,
                         props=[(CONTENT_TYPE, "text/plain"),
                                (USER_PROPERTY, ("k", "v"))])
        c.disconnect(rc=0x04)
        m = w.recv_publish(timeout=2.0, what="will after DISCONNECT 0x04")
        check_eq((m.payload, m.props.get(CONTENT_TYPE),
                  m.props.all(USER_PROPERTY)),
                 (b"gone wd5", "text/plain", [("k", "v")]),
                 "will with its properties")
        check(not m.props.has(WILL_DELAY), "Will Delay forwarded")
        c = _will_client(b.port, "wd6", delay=0, expiry=0)
        c.disconnect()
        w.expect_nothing(0.8, "will after a normal DISCONNECT")


def test_topic_alias_outbound():
    """A subscriber that allows 2 Topic Aliases: the first two topics get
    aliases 1 and 2 (full topic plus alias the first time, empty topic
    after); a third topic goes without; a subscriber that allows none gets
    full topics only.  (Mosquitto 2.0 never assigns aliases: allowed.)"""
    ringmq_only("the server's choice of outbound aliases is ringmq's")
    with Broker() as b:
        s = client5(b.port, "tao-sub", props=[(TOPIC_ALIAS_MAXIMUM, 2)])
        s.subscribe([("tao/#", Q1)])
        plain = client5(b.port, "tao-plain")
        plain.subscribe([("tao/#", Q1)])
        pub = client5(b.port, "tao-pub")
        sent = ["tao/a", "tao/a", "tao/b", "tao/c", "tao/b", "tao/a",
                "tao/c"]
        for i, t in enumerate(sent):
            pub.publish(t, b"m%d" % i, qos=1)
        got = [s.recv_publish() for _ in sent]
        check_eq([(m.topic, m.props.get(TOPIC_ALIAS)) for m in got],
                 [("tao/a", 1), ("", 1), ("tao/b", 2), ("tao/c", None),
                  ("", 2), ("", 1), ("tao/c", None)],
                 "(topic, alias) of each delivery")
        check_eq([m.payload for m in got],
                 [b"m%d" % i for i in range(len(sent))], "payloads")
        for m in [plain.recv_publish() for _ in sent]:
            check(not m.props.has(TOPIC_ALIAS) and m.topic.startswith("tao/"),
                  "alias to a client that allows none: %r" % m)
        # A new connection starts without aliases.
        s.disconnect()
        s = client5(b.port, "tao-sub", props=[(TOPIC_ALIAS_MAXIMUM, 2)])
        s.subscribe([("tao/#", Q1)])
        pub.publish("tao/b", b"again", qos=1)
        m = s.recv_publish()
        check_eq((m.topic, m.props.get(TOPIC_ALIAS)), ("tao/b", 1),
                 "first delivery on a new connection")


def test_topic_alias_outbound_not_over_maximum_packet_size():
    """A message that fits the client's Maximum Packet Size only without a
    Topic Alias goes without one (the alias would take it over and drop
    it, and the next message on the topic too); a smaller one later on
    the topic gets the alias."""
    with Broker() as b:
        s = client5(b.port, "tam-sub", props=[(MAXIMUM_PACKET_SIZE, 60),
                                              (TOPIC_ALIAS_MAXIMUM, 5)])
        s.subscribe([("tam/t", Q1)])
        pub = client5(b.port, "tam-pub")
        # 1 + 1 + (2 + 5 + 2 + 1 + 47) = 59 bytes; 62 with an alias.
        pub.publish("tam/t", b"a" * 47, qos=1)
        pub.publish("tam/t", b"b" * 47, qos=1)
        pub.publish("tam/t", b"small", qos=1)
        got = [s.recv_publish() for _ in range(3)]
        check_eq([(m.topic, m.payload[:1]) for m in got[:2]],
                 [("tam/t", b"a"), ("tam/t", b"b")],
                 "the two 59-byte messages, topic in full")
        check(not got[0].props.has(TOPIC_ALIAS) and
              not got[1].props.has(TOPIC_ALIAS), "no alias on them")
        check_eq(got[2].payload, b"small", "the small one")
        if ringmq_checks():
            check_eq((got[2].topic, got[2].props.get(TOPIC_ALIAS)),
                     ("tam/t", 1), "the small one gets the alias")


def test_topic_alias_outbound_off():
    """max_topic_alias_broker 0: no alias is assigned even to a client that
    allows them (paho-mqtt 1.6 announces a maximum but cannot resolve
    aliases: with this setting it gets every topic in full)."""
    ringmq_only("max_topic_alias_broker is ringmq's")
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties
    with Broker(options={"max_topic_alias_broker": 0}) as b:
        got = []
        c = mqtt.Client(client_id="tao-paho", protocol=mqtt.MQTTv5)
        c.on_message = lambda cl, ud, m: got.append((m.topic, m.payload))
        cp = Properties(PacketTypes.CONNECT)
        cp.TopicAliasMaximum = 5
        c.connect("127.0.0.1", b.port, properties=cp)
        c.loop_start()
        try:
            c.subscribe("taop/#", options=mqtt.SubscribeOptions(qos=1))
            time.sleep(0.3)
            pub = client5(b.port, "tao-paho-pub")
            want = [("taop/%d" % (i % 3), b"%d" % i) for i in range(9)]
            for t, p in want:
                pub.publish(t, p, qos=1)
            deadline = time.monotonic() + 5
            while len(got) < len(want) and time.monotonic() < deadline:
                time.sleep(0.05)
            check_eq(got, want, "(topic, payload) seen by paho")
        finally:
            c.loop_stop()
            c.disconnect()
        raw = client5(b.port, "tao-raw", props=[(TOPIC_ALIAS_MAXIMUM, 5)])
        raw.subscribe([("taop/#", Q1)])
        pub.publish("taop/0", b"x", qos=1)
        pub.publish("taop/0", b"y", qos=1)
        for m in raw.recv_publishes(2):
            check_eq((m.topic, m.props.get(TOPIC_ALIAS)), ("taop/0", None),
                     "(topic, alias) with max_topic_alias_broker 0")


def test_response_information():
    """Request Response Information 1 gets the configured Response
    Information in CONNACK (ringmq's response_information); without the
    request, or without the setting, there is none."""
    ringmq_only("response_information is a ringmq setting")
    with Broker(options={"response_information": "replies/"}) as b:
        c = client5(b.port, "ri-yes", props=[(REQUEST_RESPONSE_INFO, 1)])
        check_eq(c.connack.props.get(RESPONSE_INFO), "replies/",
                 "Response Information")
        c = client5(b.port, "ri-no")
        check(not c.connack.props.has(RESPONSE_INFO),
              "Response Information without the request")
    with Broker() as b:
        c = client5(b.port, "ri-unset", props=[(REQUEST_RESPONSE_INFO, 1)])
        check(not c.connack.props.has(RESPONSE_INFO),
              "Response Information without response_information")


# -- Enhanced authentication (MQTT 5.0 4.12), through the hook's test method
# ("ringmq-test", enabled by RINGMQ_TEST_AUTH=1: frontend/fe_auth.c) ----------

AUTH_ENV = {"RINGMQ_TEST_AUTH": "1"}
TEST_METHOD = "ringmq-test"


def _auth_start(port, cid, data):
    """A v5 CONNECT with the test method and Authentication Data data; the
    client (not waiting for a CONNACK)."""
    c = Client5(port)
    c.send(enc_connect5(cid, props=[(AUTH_METHOD, TEST_METHOD),
                                    (AUTH_DATA, data)]))
    return c


def test_enhanced_auth_challenge_response():
    """CONNECT (hello) -> AUTH 0x18 (challenge) -> AUTH 0x18 (response) ->
    CONNACK 0x00 with the method and the server's final data; the client
    then works like any other.  A packet other than AUTH during the
    exchange closes the connection."""
    ringmq_only("the test authentication method is ringmq's")
    with Broker(env=AUTH_ENV) as b:
        c = _auth_start(b.port, "ea1", b"hello")
        a = c.expect(AUTH, what="server's challenge")
        check_eq((a.rc, a.props.get(AUTH_METHOD), a.props.get(AUTH_DATA)),
                 (0x18, TEST_METHOD, b"challenge"), "AUTH from the server")
        c.send(enc_auth(0x18, [(AUTH_METHOD, TEST_METHOD),
                               (AUTH_DATA, b"response")]))
        k = c.expect(CONNACK, what="CONNACK after the exchange")
        check_eq((k.rc, k.props.get(AUTH_METHOD), k.props.get(AUTH_DATA)),
                 (0, TEST_METHOD, b"welcome"), "CONNACK")
        c.subscribe([("ea/t", Q1)])
        pub = client5(b.port, "ea1-pub")
        pub.publish("ea/t", b"in", qos=1)
        check_eq(c.recv_publish().payload, b"in", "delivery after AUTH")
        # Re-authentication: AUTH 0x19 starts a new exchange.
        c.send(enc_auth(0x19, [(AUTH_METHOD, TEST_METHOD),
                               (AUTH_DATA, b"hello")]))
        a = c.expect(AUTH, what="re-authentication challenge")
        check_eq((a.rc, a.props.get(AUTH_DATA)), (0x18, b"challenge"),
                 "re-authentication challenge")
        c.send(enc_auth(0x18, [(AUTH_METHOD, TEST_METHOD),
                               (AUTH_DATA, b"response")]))
        a = c.expect(AUTH, what="re-authentication result")
        check_eq(a.rc, 0, "AUTH 0x00 (Success) after re-authentication")
        pub.publish("ea/t", b"still", qos=1)
        check_eq(c.recv_publish().payload, b"still", "after re-auth")
        # A PUBLISH in the middle of an exchange: closed, no CONNACK.
        d = _auth_start(b.port, "ea2", b"hello")
        d.expect(AUTH, what="challenge")
        d.send(enc_publish5("ea/t", b"early"))
        d.expect_closed(3, "PUBLISH during authentication")
        c.expect_nothing(0.3, "the early PUBLISH must not be delivered")


def test_enhanced_auth_refused_and_quick():
    """A wrong response gets CONNACK 0x87 (Not authorized) and the close;
    data the method accepts at once gets CONNACK 0x00 straight away;
    without RINGMQ_TEST_AUTH the method does not exist (0x8C)."""
    ringmq_only("the test authentication method is ringmq's")
    with Broker(env=AUTH_ENV) as b:
        c = _auth_start(b.port, "ea3", b"hello")
        c.expect(AUTH, what="challenge")
        c.send(enc_auth(0x18, [(AUTH_METHOD, TEST_METHOD),
                               (AUTH_DATA, b"wrong")]))
        k = c.expect(CONNACK, what="CONNACK after a wrong response")
        check_eq(k.rc, 0x87, "CONNACK reason code")
        c.expect_closed(3, "after CONNACK 0x87")
        q = _auth_start(b.port, "ea4", b"quick")
        k = q.expect(CONNACK, what="CONNACK without an exchange")
        check_eq((k.rc, k.props.get(AUTH_METHOD)), (0, TEST_METHOD),
                 "CONNACK")
        # AUTH with another method than the connection's: protocol error.
        q.send(enc_auth(0x19, [(AUTH_METHOD, "other")]))
        q.expect_disconnect((RC_PROTOCOL_ERROR,), "AUTH with another method")
    with Broker() as b:
        c = _auth_start(b.port, "ea5", b"quick")
        k = c.expect(CONNACK, what="CONNACK")
        check_eq(k.rc, RC_BAD_AUTH_METHOD, "method without RINGMQ_TEST_AUTH")


# -- regressions found by review ---------------------------------------------

def _read_all(c, quiet=0.5):
    """Every byte the broker sends until it is quiet, raw."""
    c.sock.settimeout(quiet)
    buf = b""
    while True:
        try:
            d = c.sock.recv(65536)
        except socket.timeout:
            return buf
        if not d:
            return buf
        buf += d


def test_suback_at_a_remaining_length_boundary():
    """A SUBACK whose body is exactly 127 bytes (3.1.1: 125 filters; MQTT
    5: 124, with the Property Length) says 127 in one length byte and is
    129 bytes long."""
    with Broker() as b:
        c = raw_client(b.port, "sb125")
        c.send(enc_subscribe(7, [("t/%d" % i, 0) for i in range(125)]))
        raw = _read_all(c)
        check_eq((raw[0], raw[1], len(raw)), (0x90, 127, 129),
                 "3.1.1 SUBACK (first byte, length byte, size)")
        c5 = client5(b.port, "sb124")
        c5.send(enc_subscribe5(7, [("t/%d" % i, sub_opts(0))
                                   for i in range(124)]))
        raw = _read_all(c5)
        check_eq((raw[0], raw[1], len(raw)), (0x90, 127, 129),
                 "MQTT 5 SUBACK (first byte, length byte, size)")


def test_message_expiry_largest():
    """Message Expiry Interval 0xFFFFFFFF: delivered (its end does not
    wrap into the past), with the interval left."""
    with Broker() as b:
        s = client5(b.port, "mex-sub")
        s.subscribe([("mex/t", Q1)])
        p = client5(b.port, "mex-pub")
        p.publish("mex/t", b"far", qos=1, props=[(MESSAGE_EXPIRY, 0xFFFFFFFF)])
        m = s.recv_publish()
        check_eq(m.payload, b"far", "payload")
        check(m.props.get(MESSAGE_EXPIRY, 0) > 0xFFFF0000 or not ringmq_checks(),
              "Message Expiry Interval left: %r" % m.props.get(MESSAGE_EXPIRY))


def test_disconnect_with_error_code_publishes_the_will():
    """Only DISCONNECT 0x00 deletes the will (3.14.4): a client closing
    with 0x80 (Unspecified error) gets its will published."""
    with Broker() as b:
        s = client5(b.port, "dw-sub")
        s.subscribe([("dw/t", Q1)])
        c = client5(b.port, "dw-cli", will={"topic": "dw/t",
                                            "payload": b"gone"})
        c.disconnect(rc=0x80)
        check_eq(s.recv_publish(timeout=3).payload, b"gone",
                 "will after DISCONNECT 0x80")


def test_reason_string_left_out_above_client_maximum():
    """A client with Maximum Packet Size 30 never gets a longer packet: the
    PUBACK 0x97 comes without its Reason String (3.1.2.11.4)."""
    ringmq_only("ringmq's Reason String on PUBACK 0x97")
    with Broker(options={"message_size_limit": 10}) as b:
        c = client5(b.port, "rsm", props=[(MAXIMUM_PACKET_SIZE, 30)])
        a = c.publish("rsm/t", b"x" * 20, qos=1, ok=(0x97,))
        check(2 + len(a.body) <= 30, "PUBACK of %d bytes" % (2 + len(a.body)))
        check(not a.props.has(REASON_STRING), "Reason String sent anyway")
        big = client5(b.port, "rsm-big")
        a = big.publish("rsm/t", b"x" * 20, qos=1, ok=(0x97,))
        check(a.props.has(REASON_STRING),
              "Reason String to a client without a limit")


def test_waiting_delivery_keeps_its_subscription_identifiers():
    """A delivery that waits for the Receive Maximum window keeps all its
    Subscription Identifiers when the connection ends before it is sent:
    the new connection gets it with both (MQTT-3.3.4-3)."""
    ringmq_only("Mosquitto sends one copy per subscription, each with its "
                "own identifier")
    with Broker() as b:
        props = [(SESSION_EXPIRY, 60), (RECEIVE_MAXIMUM, 1)]
        c = client5(b.port, "wsi", clean=False, props=props)
        c.subscribe([("wsi/+", Q1)], props=[(SUBSCRIPTION_ID, 1)])
        c.subscribe([("wsi/a", Q1)], props=[(SUBSCRIPTION_ID, 2)])
        pub = client5(b.port, "wsi-pub")
        pub.publish("wsi/a", b"A", qos=1)
        pub.publish("wsi/a", b"B", qos=1)
        m = c.recv_publish(ack=False)
        check_eq((m.payload, sorted(m.props.all(SUBSCRIPTION_ID))),
                 (b"A", [1, 2]), "first delivery (payload, identifiers)")
        c.expect_nothing(0.5, "B beyond Receive Maximum 1")
        c.close()
        time.sleep(0.3)
        c = client5(b.port, "wsi", clean=False, props=props)
        got = {}
        for _ in range(2):
            m = c.recv_publish()
            got[m.payload] = m
        check_eq(sorted(got[b"B"].props.all(SUBSCRIPTION_ID)), [1, 2],
                 "identifiers of the delivery that waited")
        c.disconnect()


def test_resend_after_reconnect_respects_receive_maximum():
    """Five QoS 1 messages in flight, never acknowledged; the client comes
    back (Clean Start 0) announcing Receive Maximum 2: it gets two of them
    again (DUP, in order), one more per PUBACK, then new messages."""
    with Broker() as b:
        props = [(SESSION_EXPIRY, 60), (RECEIVE_MAXIMUM, 10)]
        c = client5(b.port, "rsrm", clean=False, props=props)
        c.subscribe([("rsrm/t", Q1)])
        pub = client5(b.port, "rsrm-pub")
        for i in range(5):
            pub.publish("rsrm/t", b"m%d" % i, qos=1)
        first = [c.recv_publish(ack=False) for _ in range(5)]
        check_eq([m.payload for m in first], [b"m%d" % i for i in range(5)],
                 "first deliveries")
        c.close()
        time.sleep(0.3)
        c = client5(b.port, "rsrm", clean=False,
                    props=[(SESSION_EXPIRY, 60), (RECEIVE_MAXIMUM, 2)])
        check_eq(c.connack.session_present, 1, "session present")
        got = [c.recv_publish(ack=False) for _ in range(2)]
        check_eq([(m.payload, m.dup) for m in got],
                 [(b"m0", True), (b"m1", True)], "re-sent within the window")
        c.expect_nothing(0.5, "a third PUBLISH beyond Receive Maximum 2")
        pub.publish("rsrm/t", b"new", qos=1)
        c.expect_nothing(0.3, "a new message while the window is full")
        for m in got:
            c.ack(m)
        rest = [c.recv_publish() for _ in range(4)]
        check_eq([m.payload for m in rest], [b"m2", b"m3", b"m4", b"new"],
                 "the rest in order, then the new message")
        check(all(m.dup for m in rest[:3]) and not rest[3].dup,
              "DUP on the re-sent ones only: %r" % rest)
