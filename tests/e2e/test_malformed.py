"""
test_malformed.py -- malformed and forbidden input on a raw socket (MQTT 3.1.1
sections 1.5.3, 2.2, 2.3.1, 3.x, 4.7.3, 4.8): each closes the offending
connection without an answer, while subscribers connected to every frontend
keep receiving as if nothing happened, and new clients are served.
"""

import struct

from harness import (
    PUBREC, Broker, RawClient, check_eq, check_broker_serves, enc_connect,
    enc_publish, enc_subscribe, enc_unsubscribe, packet, raw_client,
    raw_clients_on_frontends, ringmq_only)


def _raw_publish(topic_bytes, payload=b"x", first=0x30, pid=None):
    body = struct.pack("!H", len(topic_bytes)) + topic_bytes
    if pid is not None:
        body += struct.pack("!H", pid)
    return packet(first, body + payload)


def _bad_input(data, what, connect=True, prepare=None, options=None):
    """
    Sends data on a fresh connection (after CONNECT unless connect is
    false, and after prepare(client) if given) and checks: the broker closes
    that connection without answering, subscribers on two frontends get the
    messages published before and after, and a new client is served.
    """
    with Broker(options) as b:
        watchers = raw_clients_on_frontends(b, "watch")
        for w, _ in watchers:
            w.subscribe([("watch/t", 1)])
        feeder = raw_client(b.port, "feeder")
        feeder.publish("watch/t", b"before", qos=1)
        for w, fe in watchers:
            check_eq(w.recv_publish().payload, b"before",
                     "watcher on frontend %s before the bad input" % fe)
        bad = RawClient(b.port)
        if connect:
            bad.connect("bad")
        if prepare:
            prepare(bad)
        bad.try_send(data)
        bad.expect_closed(3, what)
        check_eq(bad.before_close, [], what + ": answer before the close")
        for i in range(3):
            feeder.publish("watch/t", b"after %d" % i, qos=1)
        for w, fe in watchers:
            got = [w.recv_publish().payload for _ in range(3)]
            check_eq(got, [b"after 0", b"after 1", b"after 2"],
                     "watcher on frontend %s after the bad input" % fe)
            w.ping()
        check_broker_serves(b)


# -- fixed header

def test_remaining_length_five_bytes():
    _bad_input(b"\x30\xff\xff\xff\xff\x7f" + b"\x00" * 16,
               "remaining length of 5 bytes")


def test_reserved_packet_type_0():
    _bad_input(b"\x00\x00", "packet type 0")


def test_packet_type_15_in_v311():
    _bad_input(b"\xf0\x00", "packet type 15 (AUTH) from a 3.1.1 client")


def test_subscribe_flags_0():
    _bad_input(enc_subscribe(1, [("a/b", 0)], flags=0),
               "SUBSCRIBE with fixed-header flags 0000")


def test_unsubscribe_flags_0():
    _bad_input(enc_unsubscribe(1, ["a/b"], flags=0),
               "UNSUBSCRIBE with fixed-header flags 0000")


def test_pubrel_flags_0():
    def prepare(c):
        c.send(enc_publish("p/t", b"x", qos=2, pid=7))
        check_eq(c.expect(PUBREC).pid, 7, "PUBREC")
    _bad_input(packet(0x60, b"\x00\x07"), "PUBREL with flags 0000",
               prepare=prepare)


def test_disconnect_flags():
    _bad_input(b"\xe1\x00", "DISCONNECT with flags 0001")


def test_pingreq_flags():
    # Mosquitto 2.0.11 does not check the PINGREQ flags and answers
    # PINGRESP; reserved flags must be 0 (2.2.2-2), ringmq closes.
    ringmq_only("Mosquitto ignores PINGREQ flag bits")
    _bad_input(b"\xc1\x00", "PINGREQ with flags 0001")


def test_puback_flags():
    ringmq_only("Mosquitto ignores PUBACK flag bits")
    _bad_input(b"\x41\x02\x00\x01", "PUBACK with flags 0001")


# -- PUBLISH

def test_publish_qos3():
    _bad_input(bytes([0x36]) + enc_publish("q/t", b"x", qos=1, pid=1)[1:],
               "PUBLISH QoS 3")


def test_publish_qos1_packet_id_0():
    _bad_input(enc_publish("q/t", b"x", qos=1, pid=0),
               "QoS 1 PUBLISH with packet id 0")


def test_publish_qos2_packet_id_0():
    _bad_input(enc_publish("q/t", b"x", qos=2, pid=0),
               "QoS 2 PUBLISH with packet id 0")


def test_publish_topic_with_plus():
    _bad_input(enc_publish("a/+/c", b"x"), "PUBLISH topic with '+'")


def test_publish_topic_with_hash():
    _bad_input(enc_publish("a/#", b"x", qos=1, pid=3),
               "PUBLISH topic with '#'")


def test_publish_empty_topic():
    _bad_input(enc_publish("", b"x"), "PUBLISH with an empty topic")


def test_publish_topic_invalid_utf8():
    _bad_input(_raw_publish(b"a/\xff\xfe"), "PUBLISH topic 0xFF 0xFE")


def test_publish_topic_overlong_utf8():
    _bad_input(_raw_publish(b"a/\xc0\xaf"), "PUBLISH topic overlong '/'")


def test_publish_topic_surrogate():
    _bad_input(_raw_publish(b"a/\xed\xa0\x80"), "PUBLISH topic U+D800")


def test_publish_topic_nul():
    _bad_input(_raw_publish(b"a/\x00b"), "PUBLISH topic with U+0000")


def test_publish_truncated_topic():
    _bad_input(packet(0x30, b"\x00\x32ab"),
               "PUBLISH topic length beyond the packet")


def test_publish_dup_with_qos0():
    # DUP must be 0 for QoS 0 (3.3.1-2); Mosquitto 2.0.11 accepts it.
    ringmq_only("Mosquitto accepts DUP=1 on QoS 0")
    _bad_input(bytes([0x38]) + enc_publish("d/t", b"x")[1:],
               "QoS 0 PUBLISH with DUP set")


# -- SUBSCRIBE / UNSUBSCRIBE / acks

def test_subscribe_qos3():
    _bad_input(enc_subscribe(1, [("a/b", 3)]), "SUBSCRIBE requesting QoS 3")


def test_subscribe_reserved_qos_bits():
    _bad_input(packet(0x82, b"\x00\x01\x00\x01a\x04"),
               "SUBSCRIBE options with reserved bits")


def test_subscribe_no_entries():
    _bad_input(packet(0x82, b"\x00\x01"), "SUBSCRIBE without topics")


def test_subscribe_packet_id_0():
    _bad_input(enc_subscribe(0, [("a/b", 0)]), "SUBSCRIBE with packet id 0")


def test_subscribe_filter_invalid_utf8():
    _bad_input(packet(0x82, b"\x00\x01\x00\x02\xc0\xaf\x00"),
               "SUBSCRIBE filter with invalid UTF-8")


def test_subscribe_truncated():
    _bad_input(packet(0x82, b"\x00\x01\x00\x32ab"),
               "SUBSCRIBE filter length beyond the packet")


def test_unsubscribe_no_entries():
    _bad_input(packet(0xA2, b"\x00\x01"), "UNSUBSCRIBE without topics")


def test_pubrel_packet_id_0():
    _bad_input(packet(0x62, b"\x00\x00"), "PUBREL with packet id 0")


def test_puback_too_short():
    _bad_input(packet(0x40, b"\x00"), "PUBACK with 1 byte")


def test_puback_too_long():
    ringmq_only("Mosquitto ignores bytes after a PUBACK's packet id")
    _bad_input(packet(0x40, b"\x00\x01\x00"), "PUBACK with 3 bytes")


def test_pingreq_with_payload():
    ringmq_only("Mosquitto answers a PINGREQ that carries a byte")
    _bad_input(b"\xc0\x01\x00", "PINGREQ with remaining length 1")


def test_server_packets_from_client():
    """CONNACK, SUBACK or PINGRESP sent by a client break the protocol."""
    # Mosquitto 2.0.11 closes on CONNACK but ignores SUBACK and PINGRESP.
    ringmq_only("Mosquitto ignores SUBACK and PINGRESP from a client")
    for data, what in ((b"\x20\x02\x00\x00", "CONNACK"),
                       (b"\x90\x03\x00\x01\x00", "SUBACK"),
                       (b"\xd0\x00", "PINGRESP")):
        _bad_input(data, what + " sent by a client")


# -- before CONNECT

def test_publish_before_connect():
    _bad_input(enc_publish("a/b", b"x"), "PUBLISH before CONNECT",
               connect=False)


def test_connect_with_trailing_bytes():
    c = enc_connect("trail")
    _bad_input(bytes([c[0], c[1] + 1]) + c[2:] + b"z",
               "CONNECT with a byte after its payload", connect=False)


def test_second_connect():
    _bad_input(enc_connect("bad"), "second CONNECT")


def test_oversized_packet():
    _bad_input(enc_publish("big/t", b"y" * 3000, qos=1, pid=1),
               "3 kB PUBLISH with max_packet_size 1024",
               options={"max_packet_size": 1024})


def test_garbage_bytes():
    """Random-looking bytes as first packet."""
    _bad_input(bytes(range(255, 0, -7)) * 4, "garbage", connect=False)
