"""
test_websocket.py -- WebSocket and secure WebSocket listeners: paho over
ws and wss, MQTT.js from node, the upgrade and frames byte by byte
(packets split across frames, several packets in one frame, ping, close),
plain HTTP requests, and bad input (garbage, oversized headers, a wrong
Sec-WebSocket-Key, unmasked and oversized frames, a stalled upgrade)
costing only the offending connection.
"""

import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time

from harness import (
    HERE, PINGRESP, SUBACK, Broker, Skip,
    check, check_broker_serves, check_eq, enc_connect, enc_publish,
    enc_subscribe, fail, paho_client, ringmq_checks, ringmq_only, timeout)
from transport import (
    WsRawClient, make_certs, read_http_response, recv_all_until_closed,
    tls_listener, ws_frame, ws_request, client_context)

WS = {"protocol": "websockets"}


def _wait_log(b, text, since=0, count=1, timeout_s=3.0):
    """Waits until text appears count times in the log after since (a
    line may come just after the close it explains)."""
    deadline = time.monotonic() + timeout_s
    while b.log()[since:].count(text) < count:
        if time.monotonic() > deadline:
            fail("log line %r not found %d times:\n%s"
                 % (text, count, b.log()[since:]))
        time.sleep(0.05)


def _ws_serves(port, what="after the bad input"):
    c = WsRawClient(port)
    c.connect("ws-serves-check")
    c.subscribe([("ws/serves", 1)])
    c.publish("ws/serves", b"ok", qos=1)
    check_eq(c.recv_publish(what="own message " + what).payload, b"ok",
             "payload " + what)
    c.disconnect()


@timeout(60)
def test_ws_paho_pubsub():
    """paho over WebSocket: QoS 0, 1, 2 and a 200 KiB message, to a
    WebSocket and a TCP subscriber."""
    with Broker(listeners=[WS]) as b:
        wsp = b.ports[0]
        s_ws = paho_client(wsp, "ws-sub", subscribe=("ws/#", 2),
                           transport="websockets")
        s_tcp = paho_client(b.port, "tcp-sub", subscribe=("ws/#", 2))
        pub = paho_client(wsp, "ws-pub", transport="websockets")
        big = os.urandom(200 * 1024)
        for qos in (0, 1, 2):
            pub.publish("ws/q%d" % qos, b"m%d" % qos, qos=qos)
        pub.publish("ws/big", big, qos=1)
        for s in (s_ws, s_tcp):
            got = s.get_n(4, timeout=10.0)
            # Order is kept per QoS (MQTT 4.6); paho hands a QoS 2 message
            # to the application only at PUBREL, so across QoS levels the
            # order the test sees is paho's.
            by_topic = {m.topic: m for m in got}
            check_eq(sorted(by_topic),
                     ["ws/big", "ws/q0", "ws/q1", "ws/q2"],
                     s.client_id + " topics")
            check_eq([m.topic for m in got if m.qos == 1],
                     ["ws/q1", "ws/big"], s.client_id + " QoS 1 order")
            check(by_topic["ws/big"].payload == big,
                  s.client_id + " big payload")
        for c in (s_ws, s_tcp, pub):
            c.disconnect()


@timeout(60)
def test_wss_paho_pubsub():
    """paho over WebSocket over TLS, checking the server certificate."""
    certs = make_certs(tempfile.mkdtemp(prefix="ringmq-ws-"))
    with Broker(listeners=[tls_listener(certs, protocol="websockets")]) as b:
        kw = {"transport": "websockets", "ca_certs": certs["ca"],
              "host": "localhost"}
        sub = paho_client(b.ports[0], "wss-sub", subscribe=("wss/#", 1),
                          **kw)
        pub = paho_client(b.ports[0], "wss-pub", **kw)
        big = os.urandom(100 * 1024)
        pub.publish("wss/a", b"secure", qos=1)
        pub.publish("wss/b", big, qos=1)
        m1, m2 = sub.get_n(2, timeout=10.0)
        check_eq(m1.payload, b"secure", "small message")
        check(m2.payload == big, "big message")
        sub.disconnect()
        pub.disconnect()


@timeout(120)
def test_ws_mqttjs():
    """MQTT.js (npm package mqtt) over ws from node: subscribe, publish
    QoS 1, receive its own message."""
    node = shutil.which("node")
    mods = os.path.join(HERE, "node", "node_modules", "mqtt")
    if node is None or not os.path.isdir(mods):
        raise Skip("MQTT.js not installed (node missing or npm ci "
                   "--prefix tests/e2e/node failed): test skipped")
    with Broker(listeners=[WS]) as b:
        r = subprocess.run([node, os.path.join(HERE, "node", "ws_client.js"),
                            "ws://127.0.0.1:%d/mqtt" % b.ports[0]],
                           capture_output=True, timeout=60)
        out = r.stdout.decode()
        check_eq(r.returncode, 0, "node client (stdout %r, stderr %r)"
                 % (out, r.stderr.decode()[-500:]))
        check("got js/t hello from MQTT.js" in out, "message: %r" % out)
        check("got js/big 100000" in out, "big message: %r" % out)


@timeout(60)
def test_ws_frames_by_hand():
    """The upgrade answers Sec-WebSocket-Accept and the subprotocol; a
    CONNECT split over fragments and frames, SUBSCRIBE and PUBLISH in one
    frame, a ping answered with a pong, a close echoed and the connection
    closed."""
    with Broker(listeners=[WS]) as b:
        c = WsRawClient(b.ports[0], proto="mqttv3.1, mqtt")
        check_eq(c.headers.get("sec-websocket-protocol"), "mqttv3.1",
                 "subprotocol")
        connect = enc_connect("ws-hand")
        # CONNECT in three fragments of one message, then SUBSCRIBE and
        # PUBLISH together in one frame, with a ping in between.
        c.send_raw(ws_frame(connect[:3], fin=False)
                   + ws_frame(b"ping-data", op=0x9)
                   + ws_frame(connect[3:7], op=0x0, fin=False))
        time.sleep(0.2)
        c.send_raw(ws_frame(connect[7:], op=0x0))
        p = c.read()
        check_eq(p.name, "CONNACK", "answer to a fragmented CONNECT")
        c.send_raw(ws_frame(enc_subscribe(1, [("hand/t", 0)])
                            + enc_publish("hand/t", b"one frame")))
        p = c.read()
        check_eq(p.type, SUBACK, "SUBACK")
        p = c.recv_publish()
        check_eq(p.payload, b"one frame", "own message")
        # A packet split across frames, a byte at a time.
        for byte in enc_publish("hand/t", b"split"):
            c.send_raw(ws_frame(bytes([byte])))
        check_eq(c.recv_publish().payload, b"split", "split message")
        check(any(op == 0xA and p == b"ping-data" for op, p in c.control),
              "no pong with the ping's data: %r" % c.control)
        c.send_raw(ws_frame(b"\xc0\x00"))  # PINGREQ
        check_eq(c.read().type, PINGRESP, "PINGRESP")
        c.send_raw(ws_frame(struct.pack("!H", 1000) + b"bye", op=0x8))
        c.expect_closed(3.0, "after a close frame")
        check_eq(c.close_code(), 1000, "echoed close code")


def test_ws_close_frame_right_after_connect():
    """CONNECT (with a will), PUBLISH and a close frame in one write: the
    close is answered after the CONNECT got its session and the PUBLISH
    went out, and the will is published (the close frame is not a
    DISCONNECT), as when a FIN follows the CONNECT (MQTT-3.1.2-8; RFC
    6455 7.1: a close frame does not cancel what came before it)."""
    with Broker(listeners=[WS]) as b:
        watch = paho_client(b.port, "wsc-watch", subscribe=("wsc/#", 0))
        c = WsRawClient(b.ports[0])
        c.send_raw(ws_frame(enc_connect("wsc-pub", will={
                       "topic": "wsc/will", "payload": b"gone"}))
                   + ws_frame(enc_publish("wsc/data", b"data"))
                   + ws_frame(struct.pack("!H", 1000), op=0x8))
        c.expect_closed(3.0, "after the close frame")
        if ringmq_checks():
            check_eq(c.close_code(), 1000, "echoed close code")
        got = {m.topic: m.payload for m in watch.get_n(2, timeout=5.0)}
        check_eq(got, {"wsc/data": b"data", "wsc/will": b"gone"},
                 "the PUBLISH and the will")
        watch.disconnect()


def _http(port, data, timeout_s=3.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
    s.sendall(data)
    return s


@timeout(60)
def test_ws_plain_http_requests():
    """A plain HTTP request gets a short HTTP answer and the connection
    closes: 426 without an upgrade, 404 for another path, 405 for POST."""
    with Broker(listeners=[WS]) as b:
        for req, status in (
                (b"GET /mqtt HTTP/1.1\r\nHost: x\r\n\r\n", 426),
                (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 404),
                (ws_request("/other")[0], 404),
                (b"POST /mqtt HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Length: 0\r\n\r\n", 405)):
            s = _http(b.ports[0], req)
            got, headers, body = read_http_response(s)
            check_eq(got, status, "status for %r" % req[:30])
            check_eq(headers.get("connection"), "close", "Connection")
            check_eq(len(body), int(headers["content-length"]), "body")
            _, closed = recv_all_until_closed(s, 3.0)
            check(closed, "connection open after HTTP %d" % status)
            s.close()
        _ws_serves(b.ports[0])


@timeout(60)
def test_ws_bad_handshakes():
    """Handshake garbage, oversized headers, a wrong or missing
    Sec-WebSocket-Key, no mqtt subprotocol: HTTP 400/431, close, a log
    line; other clients are not affected."""
    with Broker(listeners=[WS]) as b:
        port = b.ports[0]
        keep = WsRawClient(port)
        keep.connect("ws-keep")
        keep.subscribe([("keep/t", 0)])
        mark = len(b.log())
        cases = [
            (b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00", 400),
            (b"GET /mqtt HTTP/1.1\r\n" + b"X-Long: " + b"a" * 9000, 431),
            (ws_request(key="not-a-valid-key")[0], 400),
            (ws_request(key="c2hvcnQ=")[0], 400),
            (b"GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
             b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
             400),
            (ws_request(proto="chat")[0], 400),
        ]
        for req, status in cases:
            s = _http(port, req)
            got, _, _ = read_http_response(s)
            check_eq(got, status, "status for %r" % req[:40])
            _, closed = recv_all_until_closed(s, 3.0)
            check(closed, "connection open after HTTP %d" % status)
            s.close()
        if "[frontend" in b.log():  # ringmq's log lines
            _wait_log(b, "WebSocket handshake refused", mark, len(cases))
        keep.publish("keep/t", b"still here")
        check_eq(keep.recv_publish().payload, b"still here",
                 "client after bad handshakes")
        keep.disconnect()
        check_broker_serves(b)


@timeout(60)
def test_ws_bad_frames():
    """An unmasked client frame (1002), a frame over
    websockets_max_frame_size (1009) and a text frame (1003) are answered
    with a close frame and the connection closes with a log line; the
    others keep working."""
    ringmq_only("websockets_max_frame_size is a ringmq key")
    ls = dict(WS, websockets_max_frame_size=1024)
    with Broker(listeners=[ls]) as b:
        port = b.ports[0]
        keep = WsRawClient(port)
        keep.connect("frames-keep")
        mark = len(b.log())
        for frame, code, why in (
                (ws_frame(enc_connect("unmasked"), mask=False), 1002,
                 "unmasked frame"),
                (ws_frame(b"x" * 2000), 1009, "websockets_max_frame_size"),
                (ws_frame(b"text", op=0x1), 1003, "text frame"),
                (ws_frame(b"x", rsv=0x40), 1002, "reserved bits"),
                (ws_frame(b"x", op=0x0), 1002, "continuation")):
            c = WsRawClient(port)
            c.send_raw(frame)
            c.expect_closed(3.0, why)
            check_eq(c.close_code(), code, "close code for " + why)
            _wait_log(b, why, mark)
        # a frame at the limit is fine
        c = WsRawClient(port)
        c.connect("frames-limit")
        c.subscribe([("lim/t", 0)])
        pkt = enc_publish("lim/t", b"y" * 1000)
        check(len(pkt) <= 1024, "packet fits the limit")
        c.send_raw(ws_frame(pkt))
        check_eq(len(c.recv_publish().payload), 1000, "message at limit")
        c.disconnect()
        keep.ping()
        keep.disconnect()
        _ws_serves(port)
        check_broker_serves(b)


@timeout(60)
def test_ws_stalled_upgrade():
    """A WebSocket client that sends half an upgrade request and stops is
    closed after connect_timeout with a log line; a wss client that never
    starts its TLS handshake too."""
    ringmq_only("connect_timeout is a ringmq key")
    certs = make_certs(tempfile.mkdtemp(prefix="ringmq-ws-"))
    with Broker(listeners=[WS, tls_listener(certs, protocol="websockets")],
                ringmq_options={"connect_timeout": 1}) as b:
        mark = len(b.log())
        half = _http(b.ports[0], b"GET /mqtt HTTP/1.1\r\nHost: x\r\n")
        silent = _http(b.ports[1], b"")
        _ws_serves(b.ports[0], "while a client stalls")
        for s, what in ((half, "half upgrade"), (silent, "silent wss")):
            _, closed = recv_all_until_closed(s, 4.0)
            check(closed, what + " not closed")
        log = b.log()[mark:]
        check("WebSocket upgrade not finished within connect_timeout" in log,
              "no log line for the stalled upgrade")
        check("TLS handshake not finished within connect_timeout" in log,
              "no log line for the stalled TLS handshake")
        c = WsRawClient(b.ports[1], ctx=client_context(certs))
        c.connect("wss-after-stall")
        c.disconnect()


@timeout(60)
def test_ws_close_codes():
    """A client's close frame is echoed only with a code a peer may send
    (1000-1003, 1007-1011, 3000-4999); another code is answered with 1002
    and a reason that is not UTF-8 with 1007."""
    ringmq_only("checks the close codes ringmq answers with")
    with Broker(listeners=[WS]) as b:
        port = b.ports[0]
        for payload, want in (
                (struct.pack("!H", 1001) + b"going", 1001),
                (struct.pack("!H", 4321) + "d\u00e9j\u00e0".encode(), 4321),
                (struct.pack("!H", 1005), 1002),
                (struct.pack("!H", 1015), 1002),
                (struct.pack("!H", 999), 1002),
                (struct.pack("!H", 2500), 1002),
                (struct.pack("!H", 1000) + b"\xc0\xaf", 1007),
                (struct.pack("!H", 1000) + b"\xed\xa0\x80", 1007)):
            c = WsRawClient(port)
            c.send_raw(ws_frame(payload, op=0x8))
            c.expect_closed(3.0, "after close %r" % payload)
            check_eq(c.close_code(), want, "answer to close %r" % payload)
        _ws_serves(port)


def _rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    fail("no VmRSS for pid %d" % pid)


# Freed memory goes back to the kernel at once, so RSS shows what the
# frontend keeps (jemalloc and ASan otherwise hold freed pages a while).
_PROMPT_FREE = {
    "MALLOC_CONF": "dirty_decay_ms:0,muzzy_decay_ms:0",
    "ASAN_OPTIONS": ":".join(filter(None, [
        os.environ.get("ASAN_OPTIONS"), "quarantine_size_mb=0",
        "release_to_os_interval_ms=0"])),
}


@timeout(120)
def test_ws_ping_flood_memory_bounded():
    """A client that sends 200 MB of pings and never reads: the frontend
    answers only the latest ping, so its memory stays bounded (it stops
    reading when its output backs up), and other clients keep working."""
    ringmq_only("reads the frontend's RSS")
    with Broker(listeners=[WS], ringmq_options={"frontends": 1},
                env=_PROMPT_FREE) as b:
        port = b.ports[0]
        fe_pid = b.children()[("frontend", 0)]
        flood = WsRawClient(port, rcvbuf=4096)
        flood.connect("ping-flood", keepalive=0)
        time.sleep(0.3)
        before = _rss_kib(fe_pid)
        ping = ws_frame(b"P" * 125, op=0x9)
        block = ping * 8000  # about 1 MB
        flood.sock.settimeout(10.0)
        sent = 0
        t0 = time.monotonic()
        try:
            while sent < 200 << 20 and time.monotonic() - t0 < 60:
                flood.sock.sendall(block)
                sent += len(block)
        except socket.timeout:
            pass  # the broker stopped reading: what a bound looks like
        time.sleep(1.0)
        grown = _rss_kib(fe_pid) - before
        check(grown < 64 * 1024, "frontend RSS grew by %d KiB after %d MB "
              "of pings" % (grown, sent >> 20))
        _ws_serves(port, "during a ping flood")
        check_broker_serves(b)
        flood.sock.close()


@timeout(120)
def test_ws_buffers_freed_when_idle():
    """After one large delivery to each of many WebSocket clients, the
    frontend frees the buffers it framed them in: its RSS comes back near
    what it was before the delivery."""
    ringmq_only("reads the frontend's RSS")
    n = 150
    with Broker(listeners=[WS], ringmq_options={"frontends": 1},
                env=_PROMPT_FREE) as b:
        port = b.ports[0]
        fe_pid = b.children()[("frontend", 0)]
        subs = []
        for i in range(n):
            c = WsRawClient(port)
            c.connect("idle-%d" % i, keepalive=0)
            c.subscribe([("idle/big", 0)])
            subs.append(c)
        time.sleep(0.5)
        before = _rss_kib(fe_pid)
        pub = WsRawClient(port)
        pub.connect("idle-pub", keepalive=0)
        payload = os.urandom(100 * 1024)
        pub.publish("idle/big", payload)
        for c in subs:
            check(c.recv_publish(timeout=10.0).payload == payload,
                  "payload of " + c.client_id)
        # What the frontend keeps per connection settles within a moment.
        deadline = time.monotonic() + 5.0
        while True:
            kept = _rss_kib(fe_pid) - before
            if kept < 4 * 1024 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        check(kept < 4 * 1024, "frontend RSS %d KiB above its level before "
              "the delivery (%.1f KiB per connection)"
              % (kept, kept / float(n)))
        _ws_serves(port)
        for c in subs + [pub]:
            c.disconnect()
