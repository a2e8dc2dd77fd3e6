"""
transport.py -- what the TLS and WebSocket tests share: certificates made
at test time with the openssl command (a CA, a server certificate for
localhost and 127.0.0.1, a client certificate), listener options for them,
a RawClient over TLS, and a raw WebSocket client (handshake and frames by
hand, so tests can send exactly the bytes they mean).
"""

import base64
import hashlib
import os
import select
import socket
import ssl
import struct
import subprocess
import time

from harness import Closed, RawClient, fail

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _openssl(*args, cwd):
    r = subprocess.run(["openssl"] + list(args), cwd=cwd,
                       capture_output=True, timeout=30)
    if r.returncode != 0:
        fail("openssl %s failed: %s" % (" ".join(args), r.stderr.decode()))


def _key_and_cert(d, name, subject, ca, ext=None):
    _openssl("req", "-utf8", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-nodes", "-keyout", name + ".key",
             "-out", name + ".csr", "-subj", subject, cwd=d)
    args = ["x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt",
            "-CAkey", ca + ".key", "-CAcreateserial", "-out", name + ".crt",
            "-days", "2"]
    if ext:
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write(ext + "\n")
        args += ["-extfile", name + ".ext"]
    _openssl(*args, cwd=d)


def make_certs(d, ca_name="ca", cn_ca="ringmq test CA", client_cn="alice"):
    """Writes CA_NAME.crt/.key, server-CA_NAME.crt/.key (SAN localhost and
    127.0.0.1) and client-CA_NAME.crt/.key (CN client_cn) into d.  Returns
    a dict of absolute paths: ca, server_cert, server_key, client_cert,
    client_key."""
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-nodes", "-keyout", ca_name + ".key",
             "-out", ca_name + ".crt", "-days", "2", "-subj", "/CN=" + cn_ca,
             cwd=d)
    _key_and_cert(d, "server-" + ca_name, "/CN=localhost", ca_name,
                  "subjectAltName=DNS:localhost,IP:127.0.0.1")
    _key_and_cert(d, "client-" + ca_name, "/CN=" + client_cn, ca_name)
    p = lambda n: os.path.join(d, n)  # noqa: E731
    return {"ca": p(ca_name + ".crt"),
            "server_cert": p("server-%s.crt" % ca_name),
            "server_key": p("server-%s.key" % ca_name),
            "client_cert": p("client-%s.crt" % ca_name),
            "client_key": p("client-%s.key" % ca_name)}


def tls_listener(certs, **more):
    """Listener options of a TLS listener with the server certificate."""
    opts = {"certfile": certs["server_cert"], "keyfile": certs["server_key"]}
    opts.update(more)
    return opts


def client_context(certs=None, cafile=None, client_cert=False, version=None):
    """An ssl.SSLContext that trusts the test CA; client_cert presents the
    client certificate; version pins one ssl.TLSVersion."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile or certs["ca"])
    if client_cert:
        ctx.load_cert_chain(certs["client_cert"], certs["client_key"])
    if version is not None:
        ctx.minimum_version = version
        ctx.maximum_version = version
    return ctx


def tls_raw_client(port, ctx, timeout=5.0, session=None):
    """A RawClient whose socket speaks TLS (handshake done)."""
    c = RawClient(port, timeout=timeout)
    c.sock = ctx.wrap_socket(c.sock, server_hostname="localhost",
                             session=session)
    return c


def recv_all_until_closed(sock, timeout=3.0):
    """Bytes the peer sends until it closes (b"..." and True), or what came
    within timeout (and False)."""
    data = b""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return data, False
        r, _, _ = select.select([sock], [], [], left)
        if not r:
            return data, False
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return data, True
        except ssl.SSLError:
            return data, True
        if not chunk:
            return data, True
        data += chunk


# ---------------------------------------------------------------- WebSocket

def ws_frame(payload, op=0x2, fin=True, mask=True, rsv=0):
    """A client frame (masked unless mask is False)."""
    b0 = (0x80 if fin else 0) | rsv | op
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        h = bytes([b0, mbit | n])
    elif n < 65536:
        h = bytes([b0, mbit | 126]) + struct.pack("!H", n)
    else:
        h = bytes([b0, mbit | 127]) + struct.pack("!Q", n)
    if not mask:
        return h + payload
    key = os.urandom(4)
    body = bytes(b ^ key[i & 3] for i, b in enumerate(payload))
    return h + key + body


def ws_request(path="/mqtt", key=None, proto="mqtt", extra=""):
    key = key or base64.b64encode(os.urandom(16)).decode()
    lines = ["GET %s HTTP/1.1" % path, "Host: localhost",
             "Upgrade: websocket", "Connection: Upgrade",
             "Sec-WebSocket-Key: " + key, "Sec-WebSocket-Version: 13"]
    if proto:
        lines.append("Sec-WebSocket-Protocol: " + proto)
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode(), key


def ws_accept(key):
    return base64.b64encode(hashlib.sha1(key.encode() + WS_GUID)
                            .digest()).decode()


def read_http_response(sock, timeout=5.0):
    """(status, headers dict (lower-case names), rest) of an HTTP response,
    rest being bytes after the blank line."""
    data = b""
    deadline = time.monotonic() + timeout
    while b"\r\n\r\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            fail("no HTTP response within %.0f s (got %r)" % (timeout, data))
        r, _, _ = select.select([sock], [], [], left)
        if not r:
            continue
        chunk = sock.recv(65536)
        if not chunk:
            fail("connection closed before an HTTP response (got %r)"
                 % data)
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, rest


class WsRawClient(RawClient):
    """A RawClient over WebSocket: send() puts the bytes in one masked
    binary frame (send_raw() sends bytes as they are); reads unframe
    server frames, keeping control frames in self.control."""

    def __init__(self, port, path="/mqtt", proto="mqtt", timeout=5.0,
                 ctx=None, rcvbuf=None):
        super().__init__(port, timeout=timeout, rcvbuf=rcvbuf)
        if ctx is not None:
            self.sock = ctx.wrap_socket(self.sock,
                                        server_hostname="localhost")
        req, key = ws_request(path, proto=proto)
        self.sock.sendall(req)
        status, headers, rest = read_http_response(self.sock, timeout)
        if status != 101:
            fail("WebSocket upgrade answered %d" % status)
        if headers.get("sec-websocket-accept") != ws_accept(key):
            fail("bad Sec-WebSocket-Accept %r"
                 % headers.get("sec-websocket-accept"))
        self.headers = headers
        self.wsbuf = rest
        self.control = []  # (opcode, payload) of server control frames

    def send(self, data):
        self.sock.sendall(ws_frame(data))

    def send_raw(self, data):
        self.sock.sendall(data)

    def _frames(self):
        """Unframes what is in wsbuf; returns message bytes."""
        out = b""
        while len(self.wsbuf) >= 2:
            b0, b1 = self.wsbuf[0], self.wsbuf[1]
            if b1 & 0x80:
                fail("the server sent a masked frame")
            n, h = b1 & 0x7f, 2
            if n == 126:
                if len(self.wsbuf) < 4:
                    break
                n, h = struct.unpack("!H", self.wsbuf[2:4])[0], 4
            elif n == 127:
                if len(self.wsbuf) < 10:
                    break
                n, h = struct.unpack("!Q", self.wsbuf[2:10])[0], 10
            if len(self.wsbuf) < h + n:
                break
            payload = self.wsbuf[h:h + n]
            self.wsbuf = self.wsbuf[h + n:]
            op = b0 & 0x0f
            if op in (0x0, 0x2):
                out += payload
            else:
                self.control.append((op, payload))
        return out

    def _recv_some(self, deadline):
        while True:
            data = super()._recv_some(deadline)
            if data is None:
                return None
            self.wsbuf += data
            out = self._frames()
            if out:
                return out
            if any(op == 0x8 for op, _ in self.control):
                self.closed = True
                raise Closed()

    def close_code(self):
        """The status code of the server's close frame, or None."""
        for op, p in self.control:
            if op == 0x8:
                return struct.unpack("!H", p[:2])[0] if len(p) >= 2 else 0
        return None
