"""
test_tls.py -- TLS listeners: mosquitto_pub/mosquitto_sub with --cafile
and with client certificates, use_identity_as_username, tls_version,
session resumption across frontends, certificate reload on SIGHUP, bad
certificates at start-up (exit 2), and bad input (garbage, a client that
stalls in the handshake) costing only its own connection.  Certificates are
made at test time with the openssl command.
"""

import os
import signal
import socket
import ssl
import subprocess
import tempfile
import time

from harness import (
    PUBLISH, REPO, Broker, check, check_broker_serves, check_eq, fail,
    finish_process, mosquitto_pub, mosquitto_sub_start, paho_client,
    ringmq_only, timeout)
from transport import (
    WsRawClient, _key_and_cert, client_context, make_certs,
    recv_all_until_closed, tls_listener, tls_raw_client)


def _certs():
    return make_certs(tempfile.mkdtemp(prefix="ringmq-tls-"))


def _wait_log(b, text, timeout_s=5.0, since=0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if text in b.log()[since:]:
            return
        time.sleep(0.05)
    fail("log line %r not found; log tail:\n%s" % (text, b.log_tail()))


@timeout(60)
def test_tls_mosquitto_clients_cafile():
    """mosquitto_sub and mosquitto_pub over TLS, checking the server's
    certificate against the CA (--cafile): QoS 0, 1 and 2 arrive."""
    certs = _certs()
    with Broker(listeners=[tls_listener(certs)]) as b:
        port = b.ports[0]
        tls = ["--cafile", certs["ca"]]
        sub = mosquitto_sub_start(port, tls + ["-t", "tls/#", "-v", "-q",
                                               "1", "-C", "3"])
        time.sleep(0.7)
        for qos in (0, 1, 2):
            r = mosquitto_pub(port, tls + ["-t", "tls/q%d" % qos, "-m",
                                           "over tls %d" % qos, "-q",
                                           str(qos)])
            check_eq(r.returncode, 0, "mosquitto_pub rc (stderr %r)"
                     % r.stderr)
        rc, out, err = finish_process(sub)
        check_eq(rc, 0, "mosquitto_sub rc (stderr %r)" % err)
        check_eq(sorted(out.decode().splitlines()),
                 ["tls/q0 over tls 0", "tls/q1 over tls 1",
                  "tls/q2 over tls 2"], "messages over TLS")
        # A client that does not trust the CA is refused by its own check,
        # and the broker logs the failed handshake.
        other = make_certs(tempfile.mkdtemp(prefix="ringmq-tls-"), "ca2")
        r = mosquitto_pub(port, ["--cafile", other["ca"], "-t", "x", "-m",
                                 "y"])
        check(r.returncode != 0, "a client with the wrong CA connected")
        check_broker_serves(b)


@timeout(60)
def test_tls_client_certificates_required():
    """require_certificate: mosquitto_pub with a client certificate gets
    in and its CN is its username (use_identity_as_username); without a
    certificate, or with one from another CA, the handshake fails with a
    log line and nothing else is affected."""
    ringmq_only("checks ringmq's log lines")
    certs = _certs()
    ls = tls_listener(certs, cafile=certs["ca"], require_certificate=True,
                      use_identity_as_username=True)
    with Broker(listeners=[ls]) as b:
        port = b.ports[0]
        sub = paho_client(b.port, "cert-sub", subscribe=("cert/#", 1))
        r = mosquitto_pub(port, ["--cafile", certs["ca"], "--cert",
                                 certs["client_cert"], "--key",
                                 certs["client_key"], "-i", "cert-pub",
                                 "-t", "cert/a", "-m", "with cert", "-q",
                                 "1"])
        check_eq(r.returncode, 0, "mosquitto_pub with a certificate (%r)"
                 % r.stderr)
        check_eq(sub.get().payload, b"with cert", "message")
        _wait_log(b, "as cert-pub (")
        check("u'alice'" in b.log(), "CN alice not logged as the username")

        mark = len(b.log())
        r = mosquitto_pub(port, ["--cafile", certs["ca"], "-t", "cert/b",
                                 "-m", "no cert"])
        check(r.returncode != 0, "a client without certificate connected")
        _wait_log(b, "TLS handshake failed", since=mark)

        other = make_certs(tempfile.mkdtemp(prefix="ringmq-tls-"), "ca2",
                           client_cn="mallory")
        mark = len(b.log())
        r = mosquitto_pub(port, ["--cafile", certs["ca"], "--cert",
                                 other["client_cert"], "--key",
                                 other["client_key"], "-t", "cert/c", "-m",
                                 "foreign cert"])
        check(r.returncode != 0, "a client with a foreign certificate "
                                 "connected")
        _wait_log(b, "TLS handshake failed", since=mark)
        sub.expect_none(0.5, "message from a refused client")
        check_broker_serves(b)
        sub.disconnect()


@timeout(60)
def test_tls_client_certificate_optional():
    """cafile without require_certificate: clients without a certificate
    connect; a certificate that does not verify is refused."""
    certs = _certs()
    with Broker(listeners=[tls_listener(certs, cafile=certs["ca"])]) as b:
        port = b.ports[0]
        c = tls_raw_client(port, client_context(certs))
        c.connect("opt-nocert")
        c.disconnect()
        c = tls_raw_client(port, client_context(certs, client_cert=True))
        c.connect("opt-cert")
        c.disconnect()
        other = make_certs(tempfile.mkdtemp(prefix="ringmq-tls-"), "ca2")
        ctx = client_context(certs)
        ctx.load_cert_chain(other["client_cert"], other["client_key"])
        try:
            c = tls_raw_client(port, ctx)
            # TLS 1.3: the server's verdict arrives after the handshake.
            c.connect("opt-foreign", check=False)
            fail("a foreign client certificate was accepted")
        except (ssl.SSLError, OSError, AssertionError) as e:
            if "was accepted" in str(e):
                raise
        check_broker_serves(b)


@timeout(60)
def test_tls_versions():
    """TLS 1.2 and 1.3 by default; tls_version tlsv1.3 refuses 1.2."""
    certs = _certs()
    with Broker(listeners=[tls_listener(certs),
                           tls_listener(certs, tls_version="tlsv1.3")]) as b:
        for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            c = tls_raw_client(b.ports[0], client_context(certs, version=v))
            check_eq(c.sock.version(), v.name.replace("v1_", "v1."),
                     "negotiated version")
            c.connect("ver-%s" % v.name)
            c.disconnect()
        c = tls_raw_client(b.ports[1], client_context(
            certs, version=ssl.TLSVersion.TLSv1_3))
        c.connect("ver13-only")
        c.disconnect()
        try:
            tls_raw_client(b.ports[1], client_context(
                certs, version=ssl.TLSVersion.TLSv1_2))
            fail("TLS 1.2 accepted by a tls_version tlsv1.3 listener")
        except (ssl.SSLError, OSError):
            pass


@timeout(60)
def test_tls_session_resumption():
    """A client resumes its TLS session (TLS 1.2 and 1.3), whichever
    frontend its next connection lands on: the ticket keys are shared."""
    ringmq_only("checks ringmq's log lines")
    certs = _certs()
    with Broker(listeners=[tls_listener(certs)],
                ringmq_options={"frontends": 3}) as b:
        for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            ctx = client_context(certs, version=v)
            c = tls_raw_client(b.ports[0], ctx)
            c.connect("res-first")  # TLS 1.3 tickets come after the
            c.disconnect()          # handshake: read something first
            session = c.sock.session
            check(session is not None, "no session to resume")
            fes = set()
            for i in range(8):
                c = tls_raw_client(b.ports[0], ctx, session=session)
                check(c.sock.session_reused, "%s session not resumed on "
                      "connection %d" % (v.name, i))
                c.connect("res-%d" % i)
                fes.add(b.frontend_of("res-%d" % i, timeout=2.0))
                c.disconnect()
            check(len(fes) > 1, "all resumed connections on one frontend:"
                  " the test proves nothing (%r)" % fes)
        check("session resumed" in b.log(), "resumption not logged")


@timeout(60)
def test_tls_stalled_handshake_and_garbage():
    """A client that opens a TLS connection and sends nothing, or half a
    ClientHello, is closed after connect_timeout with a log line; plain
    MQTT bytes on the TLS port fail the handshake at once; other clients
    keep working meanwhile."""
    ringmq_only("connect_timeout is a ringmq key")
    certs = _certs()
    with Broker(listeners=[tls_listener(certs)],
                ringmq_options={"connect_timeout": 2}) as b:
        port = b.ports[0]
        mark = len(b.log())
        silent = socket.create_connection(("127.0.0.1", port))
        half = socket.create_connection(("127.0.0.1", port))
        half.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        garbage = socket.create_connection(("127.0.0.1", port))
        garbage.sendall(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00")
        _, closed = recv_all_until_closed(garbage, 2.0)
        check(closed, "garbage on the TLS port: connection still open")
        # Another TLS client works while the stalled ones wait.
        c = tls_raw_client(port, client_context(certs))
        c.connect("tls-while-stalled")
        t0 = time.monotonic()
        for s, what in ((silent, "silent client"), (half, "half hello")):
            _, closed = recv_all_until_closed(s, 5.0)
            check(closed, "%s not closed" % what)
        check(time.monotonic() - t0 < 4.5, "stalled clients closed late")
        log = b.log()[mark:]
        check_eq(log.count("TLS handshake not finished within "
                           "connect_timeout"), 2, "timeout log lines")
        check("TLS handshake failed" in log, "garbage not logged")
        c.ping()
        c.disconnect()
        check_broker_serves(b)


@timeout(60)
def test_tls_bad_certificates_exit_2():
    """A missing certificate is a FILE:LINE error, a certificate or key
    that does not load (or does not match) a start-up error: exit 2."""
    ringmq_only("ringmq's exit status and messages")
    certs = _certs()
    other = make_certs(os.path.dirname(certs["ca"]), "ca2")
    d = os.path.dirname(certs["ca"])
    junk = os.path.join(d, "junk.pem")
    with open(junk, "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\nnot base64\n")
    binary = os.environ.get("RINGMQ_BIN", "bin/ringmq")
    if not os.path.isabs(binary):
        binary = os.path.join(REPO, binary)
    cases = [
        ("certfile /nonexistent/cert.pem\nkeyfile %s\n"
         % certs["server_key"], "t.conf:3: certfile: cannot read"),
        ("certfile %s\nkeyfile %s\n" % (junk, certs["server_key"]),
         "listener 18999: certfile"),
        ("certfile %s\nkeyfile %s\n" % (certs["server_cert"],
                                        other["server_key"]),
         "key values mismatch"),
        ("certfile %s\nkeyfile %s\ntls_version tlsv1.1\n"
         % (certs["server_cert"], certs["server_key"]), "t.conf:5: "),
        ("certfile %s\nkeyfile %s\nciphers NOSUCHCIPHER\n"
         % (certs["server_cert"], certs["server_key"]), "ciphers"),
    ]
    for text, want in cases:
        conf = os.path.join(d, "t.conf")
        with open(conf, "w") as f:
            f.write("allow_anonymous true\nlistener 18999 127.0.0.1\n"
                    + text + "admin_socket none\n")
        r = subprocess.run([binary, "-c", "t.conf"], cwd=d,
                           capture_output=True, timeout=10)
        out = r.stderr.decode()
        check_eq(r.returncode, 2, "exit status for %r (%s)" % (text, out))
        check(want in out, "message for %r: %s" % (text, out))


@timeout(60)
def test_tls_certificate_reload_on_sighup():
    """SIGHUP: frontends load the certificate files again; new
    connections get the new certificate, a connection opened before keeps
    working."""
    ringmq_only("SIGHUP certificate reload")
    d = tempfile.mkdtemp(prefix="ringmq-tls-")
    old = make_certs(d, "ca1")
    new = make_certs(d, "ca2")
    cert, key = os.path.join(d, "live.crt"), os.path.join(d, "live.key")
    for src, dst in ((old["server_cert"], cert), (old["server_key"], key)):
        with open(src, "rb") as f, open(dst, "wb") as g:
            g.write(f.read())
    with Broker(listeners=[{"certfile": cert, "keyfile": key}]) as b:
        port = b.ports[0]
        before = tls_raw_client(port, client_context(old))
        before.connect("before-reload")
        for src, dst in ((new["server_cert"], cert),
                         (new["server_key"], key)):
            with open(src, "rb") as f, open(dst + ".tmp", "wb") as g:
                g.write(f.read())
            os.rename(dst + ".tmp", dst)
        mark = len(b.log())
        os.kill(b.proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + 5
        # the supervisor and both frontends
        while b.log()[mark:].count("certificates reloaded") < 3:
            if time.monotonic() > deadline:
                fail("frontends did not reload:\n%s" % b.log_tail())
            time.sleep(0.05)
        for i in range(4):
            c = tls_raw_client(port, client_context(new))
            c.connect("after-reload-%d" % i)
            c.disconnect()
            try:
                tls_raw_client(port, client_context(old))
                fail("the old certificate is still served")
            except ssl.SSLError:
                pass
        before.ping()
        before.disconnect()


@timeout(90)
def test_tls_publisher_reaches_tcp_ws_wss():
    """One TLS publisher (mosquitto_pub) reaches subscribers on plain TCP,
    WebSocket and WebSocket over TLS, small and large messages alike."""
    certs = _certs()
    ls = [tls_listener(certs), {"protocol": "websockets"},
          tls_listener(certs, protocol="websockets")]
    with Broker(listeners=ls) as b:
        tls_port, ws_port, wss_port = b.ports
        subs = [paho_client(b.port, "mix-tcp", subscribe=("mix/#", 1)),
                paho_client(ws_port, "mix-ws", subscribe=("mix/#", 1),
                            transport="websockets"),
                paho_client(wss_port, "mix-wss", subscribe=("mix/#", 1),
                            transport="websockets", ca_certs=certs["ca"],
                            host="localhost")]
        raw_ws = WsRawClient(ws_port)
        raw_ws.connect("mix-raw-ws")
        raw_ws.subscribe([("mix/#", 0)])
        big = os.path.join(os.path.dirname(certs["ca"]), "big.bin")
        with open(big, "wb") as f:
            f.write(bytes(range(256)) * 1200)  # 300 KiB
        r = mosquitto_pub(tls_port, ["--cafile", certs["ca"], "-t",
                                     "mix/small", "-m", "hello all", "-q",
                                     "1"])
        check_eq(r.returncode, 0, "small publish (%r)" % r.stderr)
        r = mosquitto_pub(tls_port, ["--cafile", certs["ca"], "-t",
                                     "mix/big", "-f", big, "-q", "1"])
        check_eq(r.returncode, 0, "big publish (%r)" % r.stderr)
        for s in subs:
            m1, m2 = s.get_n(2, timeout=10.0)
            check_eq((m1.topic, m1.payload), ("mix/small", b"hello all"),
                     s.client_id + " small message")
            check_eq((m2.topic, len(m2.payload)), ("mix/big", 307200),
                     s.client_id + " big message")
            check(m2.payload == bytes(range(256)) * 1200,
                  s.client_id + " big payload differs")
        p1 = raw_ws.recv_publish(timeout=10.0)
        p2 = raw_ws.recv_publish(timeout=10.0)
        check_eq((p1.type, p1.payload), (PUBLISH, b"hello all"),
                 "raw ws small")
        check_eq(len(p2.payload), 307200, "raw ws big")
        for s in subs:
            s.disconnect()
        raw_ws.disconnect()


@timeout(60)
def test_tls_identity_common_name_checked():
    """use_identity_as_username: a client certificate whose CN is longer
    than 64 bytes or holds a control character is refused with a log
    line, not truncated or logged raw; a normal CN still gets in."""
    ringmq_only("checks ringmq's log lines")
    certs = _certs()
    d = os.path.dirname(certs["ca"])
    # 40 characters (X.509 allows 64) but 80 bytes of UTF-8
    _key_and_cert(d, "long", "/CN=" + "\u00e9" * 40, "ca")
    _key_and_cert(d, "ctrl", "/CN=bad\x01name", "ca")
    ls = tls_listener(certs, cafile=certs["ca"], require_certificate=True,
                      use_identity_as_username=True)
    with Broker(listeners=[ls]) as b:
        port = b.ports[0]
        for name, want in (("long", "common name longer than 64 bytes"),
                           ("ctrl", "common name with non-printable")):
            mark = len(b.log())
            ctx = client_context(certs)
            ctx.load_cert_chain(os.path.join(d, name + ".crt"),
                                os.path.join(d, name + ".key"))
            try:
                c = tls_raw_client(port, ctx)
                c.send(b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x3c\x00\x01x")
                _, closed = recv_all_until_closed(c.sock, 3.0)
                check(closed, "client with the %s CN not closed" % name)
            except (ssl.SSLError, OSError):
                pass
            _wait_log(b, want, since=mark)
            check("bad\x01name" not in b.log(), "raw CN in the log")
        c = tls_raw_client(port, client_context(certs, client_cert=True))
        c.connect("cn-ok")
        c.disconnect()
        check("u'alice'" in b.log(), "CN alice not the username")


def _replace(src, dst):
    """Puts a copy of src at dst by renaming (a reload never reads half a
    file)."""
    with open(src, "rb") as f, open(dst + ".tmp", "wb") as g:
        g.write(f.read())
    os.rename(dst + ".tmp", dst)


@timeout(60)
def test_tls_no_resumption_after_ca_change():
    """require_certificate: a client whose CA is replaced by another in
    cafile, then SIGHUP, cannot resume the session it made before (TLS 1.2
    and 1.3): the handshake is a full one and its certificate is
    refused."""
    ringmq_only("SIGHUP certificate reload")
    d = tempfile.mkdtemp(prefix="ringmq-tls-")
    certs = make_certs(d, "ca1")
    other = make_certs(d, "ca2")
    cafile = os.path.join(d, "live-ca.crt")
    _replace(certs["ca"], cafile)
    ls = tls_listener(certs, cafile=cafile, require_certificate=True,
                      use_identity_as_username=True)
    with Broker(listeners=[ls]) as b:
        port = b.ports[0]
        sessions = {}
        for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            ctx = client_context(certs, client_cert=True, version=v)
            c = tls_raw_client(port, ctx)
            c.connect("ca-%s" % v.name)  # TLS 1.3: the ticket comes after
            c.disconnect()
            sessions[v] = (ctx, c.sock.session)
            c = tls_raw_client(port, ctx, session=c.sock.session)
            check(c.sock.session_reused, "%s: no resumption before the "
                  "reload: the test proves nothing" % v.name)
            c.connect("ca-again-%s" % v.name)
            c.disconnect()
        _replace(other["ca"], cafile)
        mark = len(b.log())
        os.kill(b.proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + 5
        while b.log()[mark:].count("certificates reloaded") < 3:
            if time.monotonic() > deadline:
                fail("not reloaded everywhere:\n%s" % b.log_tail())
            time.sleep(0.05)
        for v, (ctx, session) in sessions.items():
            for i in range(4):  # whichever frontend the kernel picks
                try:
                    c = tls_raw_client(port, ctx, session=session)
                except (ssl.SSLError, OSError):
                    continue  # TLS 1.2: refused in the handshake
                check(not c.sock.session_reused, "%s: session made before "
                      "the CA change resumed" % v.name)
                # TLS 1.3: the server's verdict comes after the handshake
                try:
                    c.send(b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x3c\x00\x01x")
                    data, closed = recv_all_until_closed(c.sock, 3.0)
                except (ssl.SSLError, OSError):
                    data, closed = b"", True
                check(closed and not data.startswith(b"\x20"),
                      "%s: client of the old CA served after the reload"
                      % v.name)
        # a client of the new CA gets in
        ctx = client_context(certs)
        ctx.load_cert_chain(other["client_cert"], other["client_key"])
        c = tls_raw_client(port, ctx)
        c.connect("ca-new-client")
        c.disconnect()
