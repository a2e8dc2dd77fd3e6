"""
test_regressions.py -- end-to-end regression tests for bugs a code review
found (and that are fixed): each test replays the review's reproducer and
asserts what a client must see.  The docstring of each test says what once
went wrong.
"""

import random
import re
import select
import socket
import struct
import threading
import time

from harness import (
    PUBACK, PUBCOMP, PUBLISH, PUBREC, PUBREL, SUBACK, Broker, Closed,
    Packet, RawClient, check, check_broker_serves, check_eq, enc_ack,
    enc_connect, enc_publish, enc_subscribe, enc_unsubscribe, raw_client,
    ringmq_only, timeout, DISCONNECT_BYTES)


def _read_bytes(c, quiet=1.5, limit=15.0):
    """Every byte that reaches c until nothing came for quiet seconds (at
    most limit seconds in all), after what c had already buffered."""
    data = bytearray(c.buf)
    c.buf = b""
    deadline = time.monotonic() + limit
    while True:
        left = min(quiet, deadline - time.monotonic())
        if left <= 0:
            break
        r, _, _ = select.select([c.sock], [], [], left)
        if not r:
            break
        try:
            chunk = c.sock.recv(1 << 20)
        except (ConnectionResetError, BrokenPipeError):
            break
        if not chunk:
            break
        data += chunk
    return bytes(data)


def _parse_stream(data, what):
    """The MQTT packets in data, which must hold whole, well-formed packets
    and nothing else."""
    out = []
    i = 0
    while i < len(data):
        check(i + 2 <= len(data), "%s: %d stray byte(s) at the end"
              % (what, len(data) - i))
        mult, value, j = 1, 0, i + 1
        while True:
            check(j < len(data), "%s: truncated remaining length at byte %d"
                  % (what, i))
            byte = data[j]
            value += (byte & 0x7F) * mult
            mult *= 128
            j += 1
            if not byte & 0x80:
                break
            check(j - i - 1 < 4, "%s: remaining length over 4 bytes at byte"
                  " %d" % (what, i))
        check(j + value <= len(data), "%s: packet at byte %d claims %d bytes,"
              " only %d follow" % (what, i, value, len(data) - j))
        out.append(Packet(data[i], data[j:j + value]))
        i = j + value
    return out


def test_takeover_with_full_inflight_window():
    """A takeover used to wait behind the old connection's deliveries: when
    the old client had a full inflight window (unacknowledged QoS 1
    messages), the takeover request never reached it, the new CONNECT got
    no CONNACK and the old connection stayed open."""
    with Broker({"max_inflight_messages": 2}) as b:
        old = raw_client(b.port, "rg-win", clean=False, keepalive=0)
        old.subscribe([("rg/win", 1)])
        pub = raw_client(b.port, "rg-win-pub")
        for i in range(5):
            pub.publish("rg/win", b"m%d" % i, qos=1)
        first = [old.recv_publish(ack=False).payload for _ in range(2)]
        check_eq(first, [b"m0", b"m1"], "the window, unacknowledged")
        old.expect_nothing(0.3, "PUBLISH beyond a full window")
        new = RawClient(b.port)
        t0 = time.monotonic()
        check_eq(new.connect("rg-win", clean=False, keepalive=0), (1, 0),
                 "takeover CONNECT (sp, rc)")
        took = time.monotonic() - t0
        check(took < 3.0, "CONNACK for the takeover took %.1f s" % took)
        old.expect_closed(3, "taken-over connection with a full window")
        check_eq(old.before_close, [], "packets to the old connection")
        # The session moved: unacknowledged messages again (DUP), then the
        # queued ones, in order.
        got = [(p.payload, p.dup) for p in new.recv_publishes(5)]
        check_eq(got, [(b"m0", True), (b"m1", True), (b"m2", False),
                       (b"m3", False), (b"m4", False)],
                 "(payload, dup) on the new connection")
        new.expect_nothing(0.3, "extra packet on the new connection")


def test_takeover_of_client_that_does_not_read():
    """A takeover used to queue behind the deliveries of an old connection
    whose socket was full (a client that stopped reading): the new CONNECT
    never got a CONNACK, every retry was 'superseded' in turn."""
    with Broker() as b:
        old = RawClient(b.port, rcvbuf=4096)
        old.connect("rg-stuck", keepalive=0)
        old.subscribe([("rg/stuck", 0)])
        pub = raw_client(b.port, "rg-stuck-pub")
        payload = b"y" * 60000
        for _ in range(400):
            pub.send(enc_publish("rg/stuck", payload))
        pub.ping()  # the broker has read all 400
        time.sleep(0.5)
        new = RawClient(b.port)
        t0 = time.monotonic()
        check_eq(new.connect("rg-stuck", keepalive=0), (0, 0),
                 "takeover CONNECT (sp, rc)")
        took = time.monotonic() - t0
        check(took < 3.0, "CONNACK for the takeover took %.1f s" % took)
        old.expect_closed(5, "taken-over connection that did not read")
        check(all(p.type == PUBLISH and p.payload == payload
                  for p in old.before_close),
              "the old connection got something else than whole PUBLISHes")
        new.ping()
        new.subscribe([("rg/stuck", 0)])
        pub.publish("rg/stuck", b"after", qos=0)
        check_eq(new.recv_publish().payload, b"after",
                 "delivery to the new connection")


def test_takeover_of_client_with_suback_stuck_behind_full_socket():
    """A takeover used to wait behind SUBACKs that could not be written to
    an old connection that did not read (its socket full): the KICK sat
    behind them in the control ring, the new CONNECT timed out after
    connect_timeout + 30 s and the old connection kept the session."""
    with Broker(ringmq_options={"frontends": 1, "fanout_workers": 1}) as b:
        old = RawClient(b.port, rcvbuf=4096)
        old.connect("rg-kick", keepalive=0)
        old.subscribe([("rg/kick", 0)])
        pub = raw_client(b.port, "rg-kick-pub")
        payload = b"z" * 60000
        for _ in range(300):
            pub.send(enc_publish("rg/kick", payload))
        pub.ping()
        time.sleep(0.5)
        old.send(b"".join(enc_subscribe(10 + i, [("rg/k/%d" % i, 0)])
                          for i in range(4)))
        time.sleep(0.5)
        new = RawClient(b.port)
        t0 = time.monotonic()
        check_eq(new.connect("rg-kick", keepalive=0), (0, 0),
                 "takeover CONNECT (sp, rc)")
        took = time.monotonic() - t0
        check(took < 3.0, "CONNACK for the takeover took %.1f s" % took)
        old.expect_closed(5, "taken-over connection with stuck SUBACKs")


def test_subscribe_with_65535_filters():
    """A SUBSCRIBE with more than 65529 filters made a SUBACK longer than
    the 16-bit length the worker was told: the client got a truncated
    SUBACK and the worker parsed SUBACK bytes as filters (and could write
    outside the blob).  Now: one SUBACK with every code, and the
    subscriptions work."""
    ringmq_only("Mosquitto closes the connection on an invalid filter "
                "instead of answering 0x80")
    n = 65535
    with Broker({"max_packet_size": 2000000}) as b:
        c = RawClient(b.port, timeout=30)
        c.connect("rg-many")
        entries = [("m/%d" % i, i % 3) for i in range(n - 1)] + [("a#", 1)]
        c.send(enc_subscribe(7, entries))
        p = c.expect(SUBACK, timeout=30)
        check_eq(len(p.body), 2 + n, "SUBACK length")
        codes = list(p.body[2:])
        check_eq(codes[:6], [0, 1, 2, 0, 1, 2], "first codes")
        check_eq(codes[-1], 0x80, "code of the invalid filter")
        check(all(codes[i] == i % 3 for i in range(n - 1)),
              "every valid filter granted its QoS")
        pub = raw_client(b.port, "rg-many-pub")
        pub.publish("m/65000", b"deep", qos=1)
        m = c.recv_publish(timeout=10)
        check_eq((m.topic, m.payload), ("m/65000", b"deep"), "delivery")
        check_broker_serves(b)


def test_early_puback_does_not_free_bytes_still_queued():
    """A PUBACK that came before the broker had written the PUBLISH (the
    client acknowledged packet ids it had not read yet) freed the message's
    arena block while it still waited for writev(); the block was reused for
    another client's messages, whose bytes then went to this subscriber
    (data disclosure, and a corrupt stream)."""
    n, size = 20, 400000
    # One frontend: the other client's messages come from the same arena
    # partition as the subscriber's.
    with Broker({"max_inflight_messages": n},
                {"frontends": 1, "fanout_workers": 1}) as b:
        sub = RawClient(b.port, rcvbuf=4096)
        sub.connect("rg-early")
        sub.subscribe([("rg/early", 1)])
        pub = raw_client(b.port, "rg-early-pub")
        for i in range(n):
            pub.publish("rg/early", bytes([65 + i]) * size, qos=1)
        time.sleep(0.5)
        # Acknowledge every packet id before reading any of them.
        sub.send(b"".join(enc_ack(PUBACK, pid) for pid in range(1, n + 1)))
        time.sleep(0.3)
        other = raw_client(b.port, "rg-early-other")
        for i in range(n):
            other.publish("rg/secret", b"SECRET!!" * (size // 8), qos=1)
        time.sleep(0.3)
        data = _read_bytes(sub)
        check_eq(data.count(b"SECRET!!"), 0,
                 "copies of another client's payload in the subscriber's "
                 "stream")
        packets = _parse_stream(data, "subscriber's stream")
        check_eq([p.type for p in packets], [PUBLISH] * n,
                 "packet types in the subscriber's stream")
        check_eq([p.pid for p in packets], list(range(1, n + 1)),
                 "packet ids (the ones acknowledged early)")
        for i, p in enumerate(packets):
            check_eq((p.topic, p.qos, len(p.payload)),
                     ("rg/early", 1, size), "PUBLISH %d (topic, qos, size)"
                     % i)
            check(p.payload == bytes([65 + i]) * size,
                  "PUBLISH %d: payload is not the one published" % i)
        other.ping()
        sub.ping()


def test_resend_keeps_original_order():
    """Unacknowledged messages used to be re-sent on reconnect in inflight
    table order: a message that took the table entry freed by an earlier
    PUBACK went out before older ones (m5 m1 m6 m3 m4 instead of
    m1 m3 m4 m5 m6)."""
    with Broker(ringmq_options={"frontends": 1, "fanout_workers": 1}) as b:
        s = raw_client(b.port, "rg-order", clean=False)
        s.subscribe([("rg/order", 1)])
        pub = raw_client(b.port, "rg-order-pub")
        for i in range(5):
            pub.publish("rg/order", b"m%d" % i, qos=1)
        first = [s.recv_publish(ack=False) for _ in range(5)]
        check_eq([p.payload for p in first],
                 [b"m%d" % i for i in range(5)], "first deliveries")
        s.send(enc_ack(PUBACK, first[0].pid) + enc_ack(PUBACK, first[2].pid))
        time.sleep(0.2)
        for i in (5, 6):
            pub.publish("rg/order", b"m%d" % i, qos=1)
        later = [s.recv_publish(ack=False).payload for _ in range(2)]
        check_eq(later, [b"m5", b"m6"], "deliveries after two PUBACKs")
        s.close()
        time.sleep(0.3)
        s = RawClient(b.port)
        check_eq(s.connect("rg-order", clean=False), (1, 0), "resume (sp, rc)")
        again = s.recv_publishes(5)
        check_eq([(p.payload, p.dup) for p in again],
                 [(b"m1", True), (b"m3", True), (b"m4", True), (b"m5", True),
                  (b"m6", True)], "re-sent (payload, dup), in order")
        s.expect_nothing(0.5, "extra packet after the re-sends")


def test_no_stale_suback_after_reconnect():
    """A SUBACK used to wait behind deliveries held by a full inflight
    window; it did not come while the window stayed full, and came to the
    *next* connection of the client after a reconnect (a SUBACK for a
    packet id that connection never sent)."""
    with Broker({"max_inflight_messages": 1},
                {"frontends": 1, "fanout_workers": 1}) as b:
        s = raw_client(b.port, "rg-suback", clean=False)
        s.subscribe([("rg/suback", 1)])
        pub = raw_client(b.port, "rg-suback-pub")
        for i in range(2):
            pub.publish("rg/suback", b"m%d" % i, qos=1)
        check_eq(s.recv_publish(ack=False).payload, b"m0", "first delivery")
        # The window (1) is full: a SUBACK is still answered at once.
        s.send(enc_subscribe(77, [("rg/other", 0)]))
        p = s.expect(SUBACK, 2.0, what="SUBSCRIBE 77 with a full window")
        check_eq((p.pid, p.codes), (77, [0]), "SUBACK (pid, codes)")
        # A SUBSCRIBE whose answer cannot reach this connection any more.
        s.send(enc_subscribe(78, [("rg/other2", 0)]))
        s.close()
        time.sleep(0.3)
        s = RawClient(b.port)
        check_eq(s.connect("rg-suback", clean=False), (1, 0),
                 "resume (sp, rc)")
        p = s.recv_publish()
        check_eq((p.payload, p.dup), (b"m0", True), "re-sent message")
        p = s.recv_publish()
        check_eq((p.payload, p.dup), (b"m1", False), "queued message")
        s.expect_nothing(1.0, "packet after the session's messages "
                              "(a SUBACK from the earlier connection?)")
        s.ping()


def test_pipelined_subscribes_with_full_window():
    """17 SUBSCRIBEs written at once by a client whose inflight window was
    full, followed by the PUBACKs that open it: the SUBACKs waited behind
    the held deliveries, the frontend stopped reading after 16 outstanding
    SUBSCRIBEs, so the PUBACKs were never read: a deadlock, nothing more
    reached the client."""
    with Broker({"max_inflight_messages": 2},
                {"frontends": 1, "fanout_workers": 1}) as b:
        s = raw_client(b.port, "rg-pipe", keepalive=0)
        s.subscribe([("rg/pipe", 1)])
        pub = raw_client(b.port, "rg-pipe-pub")
        for i in range(5):
            pub.publish("rg/pipe", b"m%d" % i, qos=1)
        got = [s.recv_publish(ack=False) for _ in range(2)]
        check_eq([p.payload for p in got], [b"m0", b"m1"], "the window")
        s.send(b"".join(enc_subscribe(100 + i, [("rg/x/%d" % i, 0)])
                        for i in range(17))
               + enc_ack(PUBACK, got[0].pid) + enc_ack(PUBACK, got[1].pid))
        subacks, pubs = [], []
        deadline = time.monotonic() + 5.0
        while len(subacks) < 17 or len(pubs) < 3:
            left = deadline - time.monotonic()
            try:
                p = s.read(max(left, 0.01))
            except Closed:
                check(False, "the broker closed the connection after %d "
                      "SUBACKs and %d PUBLISHes" % (len(subacks), len(pubs)))
            check(p is not None, "within 5 s: %d of 17 SUBACKs, %d of 3 "
                  "PUBLISHes" % (len(subacks), len(pubs)))
            if p.type == SUBACK:
                subacks.append((p.pid, p.codes))
            else:
                check_eq(p.type, PUBLISH, "packet type")
                pubs.append(p.payload)
                s.send(enc_ack(PUBACK, p.pid))
        check_eq(subacks, [(100 + i, [0]) for i in range(17)],
                 "SUBACKs (pid, codes), in order")
        check_eq(pubs, [b"m2", b"m3", b"m4"], "deliveries after the PUBACKs")
        s.expect_nothing(0.5, "extra packet")
        pub.publish("rg/x/16", b"x16", qos=0)
        check_eq(s.recv_publish().payload, b"x16",
                 "delivery on the 17th subscription")


def test_suback_failure_when_worker_partition_full():
    """When a fan-out worker's arena partition was full, a subscription
    was not stored but the SUBACK still granted it: the client was told it
    was subscribed and silently got nothing.  Now the SUBACK says 0x80."""
    ringmq_only("arena_size and its worker partitions are ringmq's; "
                "Mosquitto has no fixed memory for subscriptions")
    # arena_size 4M gives the only worker 4M/8 = 512 KiB for subscription
    # records: 16 filters of 20000 bytes (a 32 KiB block each) fill it.
    with Broker(ringmq_options={"arena_size": "4M", "fanout_workers": 1}) as b:
        filler = raw_client(b.port, "rg-filler")
        codes = []
        for k in range(3):
            codes += filler.subscribe(
                [("rg/%d/%d/" % (k, j) + "x" * 20000, 0) for j in range(8)])
        ok = codes.count(0)
        check(ok > 0, "no filter stored at all: %r" % codes)
        check_eq(codes, [0] * ok + [0x80] * (len(codes) - ok),
                 "filler's SUBACK codes (stored, then refused)")
        victim = raw_client(b.port, "rg-victim")
        check_eq(victim.subscribe([("rg/victim", 1)]), [0x80],
                 "SUBACK with the worker partition full")
        pub = raw_client(b.port, "rg-victim-pub")
        pub.publish("rg/victim", b"lost", qos=1)
        victim.expect_nothing(0.5, "delivery on a refused subscription")
        # The filler leaves: its records are freed and the victim can
        # subscribe again.
        filler.disconnect()
        filler.close()
        deadline = time.monotonic() + 5.0
        while True:
            codes = victim.subscribe([("rg/victim", 1)])
            if codes != [0x80] or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        check_eq(codes, [1], "SUBACK once the filler is gone")
        pub.publish("rg/victim", b"hello", qos=1)
        check_eq(victim.recv_publish().payload, b"hello", "delivery")


def test_refused_connect_then_reset():
    """A CONNECT refused with a CONNACK (here: protocol level 3 under the
    name MQTT) whose client had already reset the connection: writing the
    CONNACK failed and closed the connection, then the refusal code used
    the freed connection (use-after-free; under ASan the frontend died and
    took the broker down).  A release build usually survives the bad read:
    run this test against the sanitizer build (make SAN=1) to catch it."""
    with Broker(ringmq_options={"frontends": 1, "fanout_workers": 1}) as b:
        c = RawClient(b.port)
        check_eq(c.connect("rg-refused", level=3, proto_name="MQTT",
                           check=False), (0, 1),
                 "CONNACK (sp, rc) for level 3 named MQTT")
        c.expect_closed(3, "refused connection")
        for i in range(20):
            s = socket.create_connection(("127.0.0.1", b.port), timeout=5)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                         struct.pack("ii", 1, 0))
            s.sendall(enc_connect("rg-rst-%d" % i, level=3,
                                  proto_name="MQTT"))
            s.close()  # RST
            time.sleep(0.05)
        time.sleep(0.3)
        check(b.alive(), "broker died after refused CONNECTs with RST")
        check_broker_serves(b, "after refused CONNECTs reset by the client")


# ------------------------------------------------------------ arena leaks

_IDS = ["rg-st-%d" % i for i in range(12)]
_TOPICS = ["rgs/a", "rgs/b", "rgu/c", "rgr/x", "rgr/y"]


def _stress_thread(port, seed, stop_at):
    """Random clients (ids from _IDS): clean or persistent sessions, wills,
    subscribe/unsubscribe, QoS 0/1/2 publishes with and without retain,
    acks given or withheld, closes with and without DISCONNECT."""
    rnd = random.Random(seed)
    while time.monotonic() < stop_at:
        try:
            c = RawClient(port, timeout=3.0)
            will = None
            if rnd.random() < 0.4:
                will = {"topic": rnd.choice(_TOPICS), "payload": b"w",
                        "qos": rnd.randint(0, 2),
                        "retain": rnd.random() < 0.3}
            c.send(enc_connect(rnd.choice(_IDS), rnd.random() < 0.5, 30,
                               will))
            if rnd.random() < 0.1:
                c.abort()
                continue
            c.read(rnd.choice([0.01, 0.3, 1.0]))
            pid = 1
            for _ in range(rnd.randint(0, 30)):
                r = rnd.random()
                if r < 0.2:
                    c.send(enc_subscribe(pid, [(rnd.choice(
                        _TOPICS + ["rgs/#", "#", "rgr/+"]),
                        rnd.randint(0, 2))]))
                elif r < 0.3:
                    c.send(enc_unsubscribe(pid, [rnd.choice(
                        _TOPICS + ["rgs/#", "#"])]))
                elif r < 0.7:
                    q = rnd.randint(0, 2)
                    c.send(enc_publish(
                        rnd.choice(_TOPICS),
                        b"p" * rnd.choice([0, 1, 10, 3000]), q,
                        pid if q else None, retain=rnd.random() < 0.2))
                else:
                    for _ in range(5):
                        p = c.read(0.01)
                        if p is None:
                            break
                        if p.type == PUBLISH and p.qos and rnd.random() < 0.8:
                            c.send(enc_ack(PUBACK if p.qos == 1 else PUBREC,
                                           p.pid))
                        elif p.type == PUBREL and rnd.random() < 0.8:
                            c.send(enc_ack(PUBCOMP, p.pid))
                        elif p.type == PUBREC:
                            c.send(enc_ack(PUBREL, p.pid))
                pid = pid % 60000 + 1
            if rnd.random() < 0.5:
                c.send(DISCONNECT_BYTES)
            if rnd.random() < 0.3:
                c.abort()
            else:
                c.close()
        except (OSError, Closed):
            pass


@timeout(60)
def test_no_arena_blocks_left_after_regression_scenarios():
    """The fixes above added arena references (queued QoS 1/2 bytes hold
    their own, SUBACK blobs wait in a per-connection control ring): none
    may leak.  The review's scenarios -- a slow reader that acknowledges
    early and resets, a takeover of a stuck client, a SUBSCRIBE whose
    connection is gone, pipelined SUBSCRIBEs, refused CONNECTs -- then
    random clients from several threads; once every session is wiped and
    the retained messages cleared, the broker reports 0 arena blocks in
    use at exit, and every client id can still connect."""
    ringmq_only("the arena report is ringmq's")
    b = Broker({"max_inflight_messages": 4, "max_queued_messages": 50},
               {"ingest_ring_size": 64, "max_clients": 256}).start()
    port = b.port
    pub = raw_client(port, "rg-lk-pub")
    # A slow reader with QoS 0/1/2 bytes queued, early PUBACKs, then RST.
    slow = RawClient(port, rcvbuf=4096)
    slow.connect("rg-lk-slow")
    slow.subscribe([("rgl/big", 1), ("rgl/big0", 0), ("rgl/big2", 2)])
    for i in range(8):
        pub.publish("rgl/big", b"b" * 100000, qos=1)
        pub.publish("rgl/big0", b"z" * 100000, qos=0)
        pub.publish("rgl/big2", b"t" * 100000, qos=2)
    slow.send(b"".join(enc_ack(PUBACK, pid) for pid in range(1, 5)))
    time.sleep(0.2)
    slow.abort()
    # A stuck client taken over by a clean session.
    stuck = RawClient(port, rcvbuf=4096)
    stuck.connect("rg-lk-stuck", clean=False)
    stuck.subscribe([("rgl/stuck", 1)])
    for i in range(30):
        pub.publish("rgl/stuck", b"s" * 60000, qos=1)
    take = raw_client(port, "rg-lk-stuck")
    stuck.wait_closed(5)
    take.disconnect()
    take.close()
    # A persistent session with a full window, a SUBSCRIBE sent just
    # before the connection goes, then pipelined SUBSCRIBEs and RST.
    ps = raw_client(port, "rg-lk-ps", clean=False)
    ps.subscribe([("rgl/ps", 2)])
    for i in range(8):
        pub.publish("rgl/ps", b"q%d" % i, qos=1 + i % 2)
    ps.send(enc_subscribe(50, [("rgl/ps2", 1)]))
    ps.close()
    ps = raw_client(port, "rg-lk-ps", clean=False)
    ps.send(b"".join(enc_subscribe(100 + i, [("rgl/p/%d" % i, 1)])
                     for i in range(17)))
    ps.abort()
    # Refused CONNECTs reset by the client.
    for i in range(5):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     struct.pack("ii", 1, 0))
        s.sendall(enc_connect("rg-lk-rst", level=3, proto_name="MQTT"))
        s.close()
    # Random traffic.
    stop_at = time.monotonic() + 4.0
    threads = [threading.Thread(target=_stress_thread,
                                args=(port, 1000 + k, stop_at), daemon=True)
               for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    check(not any(t.is_alive() for t in threads), "stress threads hang")
    time.sleep(1.0)
    # Wipe every session and the retained messages.
    failed = []
    for cid in _IDS + ["rg-lk-slow", "rg-lk-stuck", "rg-lk-ps"]:
        for attempt in range(5):
            try:
                c = RawClient(port, timeout=3.0)
                if c.connect(cid, clean=True, check=False)[1] == 0:
                    c.disconnect()
                    c.close()
                    break
                c.close()
            except (OSError, Closed, AssertionError):
                pass
            time.sleep(0.5)
        else:
            failed.append(cid)
    check_eq(failed, [], "client ids that could not reconnect")
    for t in _TOPICS + ["rgl/big", "rgl/stuck", "rgl/ps"]:
        pub.publish(t, b"", qos=1, retain=True)
    pub.disconnect()
    pub.close()
    time.sleep(1.5)
    b.stop()
    m = re.search(r"arena at exit: (\d+) blocks, (\d+) bytes", b.log())
    check(m, "no arena report in the log")
    check_eq((int(m.group(1)), int(m.group(2))), (0, 0),
             "arena (blocks, bytes) in use at exit")


@timeout(60)
def test_flooding_publisher_does_not_starve_the_frontend():
    """Edge-triggered reads: a handler that read eight full buffers ran
    itself again at once, ahead of every other event, so a client that
    kept its socket full held the frontend (no other client read, no
    wake-up, no timer) for as long as it kept sending.  One frontend; a
    publisher floods QoS 0 to a topic nobody reads while another client
    publishes a probe every 100 ms to a subscriber: every probe must
    arrive within 2 s of being sent, during the flood."""
    with Broker(ringmq_options={"frontends": 1, "fanout_workers": 1}) as b:
        sub = raw_client(b.port, "starve-sub")
        sub.subscribe([("starve/probe", 0)])
        prober = raw_client(b.port, "starve-prober")
        flood = raw_client(b.port, "starve-flood")
        chunk = enc_publish("starve/flood", b"x" * 1000) * 256
        stop = threading.Event()

        def flooder():
            try:
                while not stop.is_set():
                    flood.sock.sendall(chunk)
            except OSError:
                pass

        t = threading.Thread(target=flooder, daemon=True)
        t.start()
        time.sleep(0.5)  # the flood's socket is full by now
        late = []
        worst = 0.0
        try:
            for i in range(20):
                sent = time.monotonic()
                prober.publish("starve/probe", b"p%02d" % i)
                m = sub.recv_publish(timeout=10,
                                     what="probe %d during the flood" % i)
                check_eq(m.payload, b"p%02d" % i, "probe")
                waited = time.monotonic() - sent
                worst = max(worst, waited)
                if waited > 2.0:
                    late.append((i, round(waited, 1)))
                time.sleep(0.1)
        finally:
            stop.set()
            t.join(5)
        print("slowest probe: %.0f ms" % (worst * 1000))
        check(not late, "probes that took over 2 s during the flood "
              "(index, seconds): %s" % late)
        check_broker_serves(b)
