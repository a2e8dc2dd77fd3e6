"""
mqtt5_wire.py -- MQTT 5.0 on the wire for the end-to-end tests: property
blocks (encoder and decoder), the v5 CONNECT, PUBLISH, SUBSCRIBE (with
subscription options), UNSUBSCRIBE, acks with reason codes, DISCONNECT and
AUTH, Packet5 (a packet from the broker read as v5) and Client5, a
RawClient that speaks v5.

Properties are given and returned as [(identifier, value)] in wire order:
numbers as int, UTF-8 strings as str, binary data as bytes, a User
Property as a (name, value) pair of str.  An entry (None, raw_bytes) is
written as it is, to build malformed blocks.
"""

import struct

from harness import (
    CONNACK, DISCONNECT, PACKET_NAMES, PUBACK, PUBCOMP, PUBLISH, PUBREC,
    PUBREL, SUBACK, UNSUBACK, Closed, Packet, RawClient, check, check_eq,
    enc_ack, enc_connect, enc_str, enc_varint, fail, packet)

AUTH = 15  # packet type

# Property identifiers (MQTT 5.0 section 2.2.2.2).
PAYLOAD_FORMAT = 0x01
MESSAGE_EXPIRY = 0x02
CONTENT_TYPE = 0x03
RESPONSE_TOPIC = 0x08
CORRELATION_DATA = 0x09
SUBSCRIPTION_ID = 0x0B
SESSION_EXPIRY = 0x11
ASSIGNED_CLIENT_ID = 0x12
SERVER_KEEP_ALIVE = 0x13
AUTH_METHOD = 0x15
AUTH_DATA = 0x16
REQUEST_PROBLEM_INFO = 0x17
WILL_DELAY = 0x18
REQUEST_RESPONSE_INFO = 0x19
RESPONSE_INFO = 0x1A
SERVER_REFERENCE = 0x1C
REASON_STRING = 0x1F
RECEIVE_MAXIMUM = 0x21
TOPIC_ALIAS_MAXIMUM = 0x22
TOPIC_ALIAS = 0x23
MAXIMUM_QOS = 0x24
RETAIN_AVAILABLE = 0x25
USER_PROPERTY = 0x26
MAXIMUM_PACKET_SIZE = 0x27
WILDCARD_SUB_AVAILABLE = 0x28
SUB_ID_AVAILABLE = 0x29
SHARED_SUB_AVAILABLE = 0x2A

_BYTE, _U16, _U32, _VARINT, _STR, _BIN, _PAIR = range(7)

PROP_TYPES = {
    PAYLOAD_FORMAT: _BYTE, MESSAGE_EXPIRY: _U32, CONTENT_TYPE: _STR,
    RESPONSE_TOPIC: _STR, CORRELATION_DATA: _BIN, SUBSCRIPTION_ID: _VARINT,
    SESSION_EXPIRY: _U32, ASSIGNED_CLIENT_ID: _STR, SERVER_KEEP_ALIVE: _U16,
    AUTH_METHOD: _STR, AUTH_DATA: _BIN, REQUEST_PROBLEM_INFO: _BYTE,
    WILL_DELAY: _U32, REQUEST_RESPONSE_INFO: _BYTE, RESPONSE_INFO: _STR,
    SERVER_REFERENCE: _STR, REASON_STRING: _STR, RECEIVE_MAXIMUM: _U16,
    TOPIC_ALIAS_MAXIMUM: _U16, TOPIC_ALIAS: _U16, MAXIMUM_QOS: _BYTE,
    RETAIN_AVAILABLE: _BYTE, USER_PROPERTY: _PAIR, MAXIMUM_PACKET_SIZE: _U32,
    WILDCARD_SUB_AVAILABLE: _BYTE, SUB_ID_AVAILABLE: _BYTE,
    SHARED_SUB_AVAILABLE: _BYTE,
}

# Reason codes used by the tests (MQTT 5.0 section 2.4).
RC_SUCCESS = 0x00
RC_NO_MATCHING_SUBSCRIBERS = 0x10
RC_NO_SUBSCRIPTION_EXISTED = 0x11
RC_UNSPECIFIED = 0x80
RC_MALFORMED = 0x81
RC_PROTOCOL_ERROR = 0x82
RC_BAD_AUTH_METHOD = 0x8C
RC_SESSION_TAKEN_OVER = 0x8E
RC_TOPIC_FILTER_INVALID = 0x8F
RC_PACKET_ID_NOT_FOUND = 0x92
RC_RECEIVE_MAXIMUM_EXCEEDED = 0x93
RC_TOPIC_ALIAS_INVALID = 0x94
RC_PACKET_TOO_LARGE = 0x95
RC_QUOTA_EXCEEDED = 0x97
RC_PAYLOAD_FORMAT_INVALID = 0x99


# ----------------------------------------------------------- properties

def enc_prop(pid, value):
    """One property: identifier and value."""
    if pid is None:
        return bytes(value)
    t = PROP_TYPES[pid]
    out = enc_varint(pid)
    if t == _BYTE:
        return out + bytes([value])
    if t == _U16:
        return out + struct.pack("!H", value)
    if t == _U32:
        return out + struct.pack("!I", value)
    if t == _VARINT:
        return out + enc_varint(value)
    if t == _STR:
        return out + enc_str(value)
    if t == _BIN:
        return out + enc_str(bytes(value))
    return out + enc_str(value[0]) + enc_str(value[1])


def enc_props(props=()):
    """A property block: Property Length, then the properties."""
    body = b"".join(enc_prop(pid, v) for pid, v in props)
    return enc_varint(len(body)) + body


def dec_varint(buf, pos):
    """(value, new pos); fails on a varint longer than 4 bytes or cut
    short."""
    mult, value = 1, 0
    for i in range(4):
        if pos >= len(buf):
            fail("variable byte integer cut short at offset %d" % pos)
        byte = buf[pos]
        pos += 1
        value += (byte & 0x7F) * mult
        mult *= 128
        if not byte & 0x80:
            return value, pos
    fail("variable byte integer longer than 4 bytes")


def _dec_bin(buf, pos, what):
    if pos + 2 > len(buf):
        fail("%s length cut short" % what)
    n = struct.unpack("!H", buf[pos:pos + 2])[0]
    if pos + 2 + n > len(buf):
        fail("%s of %d bytes cut short" % (what, n))
    return bytes(buf[pos + 2:pos + 2 + n]), pos + 2 + n


def _dec_str(buf, pos, what):
    raw, pos = _dec_bin(buf, pos, what)
    try:
        return raw.decode("utf-8"), pos
    except UnicodeDecodeError:
        fail("%s is not UTF-8: %r" % (what, raw))


class Props(list):
    """A decoded property block: [(identifier, value)] in wire order."""

    def get(self, pid, default=None):
        """The value of the first property pid, else default."""
        for k, v in self:
            if k == pid:
                return v
        return default

    def all(self, pid):
        return [v for k, v in self if k == pid]

    def has(self, pid):
        return any(k == pid for k, _ in self)

    def ids(self):
        return [k for k, _ in self]


def dec_props(buf, pos=0):
    """Decodes the property block at buf[pos]: (Props, pos after it).
    Fails on anything malformed: an unknown identifier, a value cut short,
    a block running past the end of buf, a string that is not UTF-8."""
    n, pos = dec_varint(buf, pos)
    end = pos + n
    if end > len(buf):
        fail("property length %d runs past the end of the packet" % n)
    out = Props()
    while pos < end:
        pid, pos = dec_varint(buf, pos)
        t = PROP_TYPES.get(pid)
        if t is None:
            fail("unknown property identifier 0x%02x" % pid)
        what = "property 0x%02x" % pid
        if t == _BYTE:
            size = 1
        elif t == _U16:
            size = 2
        elif t == _U32:
            size = 4
        else:
            size = 0
        if size and pos + size > end:
            fail("%s cut short" % what)
        if t == _BYTE:
            v = buf[pos]
        elif t == _U16:
            v = struct.unpack("!H", buf[pos:pos + 2])[0]
        elif t == _U32:
            v = struct.unpack("!I", buf[pos:pos + 4])[0]
        elif t == _VARINT:
            v, pos = dec_varint(buf, pos)
        elif t == _STR:
            v, pos = _dec_str(buf[:end], pos, what)
        elif t == _BIN:
            v, pos = _dec_bin(buf[:end], pos, what)
        else:
            k, pos = _dec_str(buf[:end], pos, what + " name")
            val, pos = _dec_str(buf[:end], pos, what + " value")
            v = (k, val)
        pos += size
        if pos > end:
            fail("%s runs past the property block" % what)
        out.append((pid, v))
    return out, end


# ------------------------------------------------------------- encoders

def sub_opts(qos=0, no_local=False, retain_as_published=False,
             retain_handling=0):
    """The Subscription Options byte of a v5 SUBSCRIBE."""
    return (qos | (0x04 if no_local else 0)
            | (0x08 if retain_as_published else 0) | (retain_handling << 4))


def enc_connect5(client_id, clean=True, keepalive=60, props=(), will=None,
                 username=None, password=None, flags_extra=0,
                 raw_props=None):
    """A v5 CONNECT.  will: dict(topic, payload, qos=0, retain=False,
    props=()).  raw_props: the property block as bytes, instead of
    props."""
    block = raw_props if raw_props is not None else enc_props(props)
    wblock = enc_props(will.get("props", ())) if will is not None else b""
    return enc_connect(client_id, clean, keepalive, will, username, password,
                       level=5, flags_extra=flags_extra, props_block=block,
                       will_props_block=wblock)


def enc_publish5(topic, payload=b"", qos=0, pid=None, retain=False,
                 dup=False, props=(), first=None):
    """A v5 PUBLISH.  first: the whole first byte (to send bad flags)."""
    if isinstance(payload, str):
        payload = payload.encode()
    if first is None:
        first = (0x30 | (qos << 1) | (0x08 if dup else 0)
                 | (0x01 if retain else 0))
    body = enc_str(topic)
    if qos > 0:
        body += struct.pack("!H", pid if pid is not None else 1)
    return packet(first, body + enc_props(props) + payload)


def enc_ack5(ptype, pid, rc=None, props=None):
    """PUBACK, PUBREC, PUBREL or PUBCOMP: the 2-byte form (rc None), the
    3-byte form (rc, props None) or the full form (rc and props, () for an
    empty block: 4 bytes)."""
    flags = 0x02 if ptype == PUBREL else 0
    body = struct.pack("!H", pid)
    if rc is not None:
        body += bytes([rc])
        if props is not None:
            body += enc_props(props)
    return packet((ptype << 4) | flags, body)


def enc_subscribe5(pid, entries, props=(), flags=0x02):
    """entries: [(filter, options byte)] (see sub_opts())."""
    body = struct.pack("!H", pid) + enc_props(props)
    for f, opts in entries:
        body += enc_str(f) + bytes([opts])
    return packet(0x80 | flags, body)


def enc_unsubscribe5(pid, filters, props=(), flags=0x02):
    body = struct.pack("!H", pid) + enc_props(props)
    for f in filters:
        body += enc_str(f)
    return packet(0xA0 | flags, body)


def enc_disconnect5(rc=None, props=None):
    """DISCONNECT: empty (rc None), reason code only, or reason code and
    properties."""
    body = b""
    if rc is not None:
        body = bytes([rc])
        if props is not None:
            body += enc_props(props)
    return packet(0xE0, body)


def enc_auth(rc=0x18, props=()):
    """AUTH (0x18: Continue authentication)."""
    return packet(AUTH << 4, bytes([rc]) + enc_props(props))


# -------------------------------------------------------------- decoding

class Packet5(Packet):
    """A packet from the broker read as MQTT 5.0.  Adds props (Props) to
    every packet type that has them and rc (reason code) to CONNACK,
    PUB*, DISCONNECT and AUTH; codes for SUBACK and UNSUBACK.  For PUBLISH
    the payload no longer holds the property block.  Fails on a packet
    that is not well-formed v5."""

    def __init__(self, first, body):
        Packet.__init__(self, first, body)
        self.props = Props()
        self.rc = None
        t = self.type
        if t == PUBLISH:
            tlen = struct.unpack("!H", body[:2])[0]
            pos = 2 + tlen + (2 if self.qos > 0 else 0)
            self.props, pos = dec_props(body, pos)
            self.payload = body[pos:]
        elif t == CONNACK:
            check(len(body) >= 3, "v5 CONNACK of %d bytes has no property "
                  "length (body %r: a 3.1.1 CONNACK?)" % (len(body), body))
            check_eq(body[0] & 0xFE, 0, "CONNACK acknowledge flags bits 7-1")
            self.session_present = body[0] & 1
            self.rc = body[1]
            self.props, end = dec_props(body, 2)
            check_eq(end, len(body), "CONNACK length after the properties")
        elif t in (PUBACK, PUBREC, PUBREL, PUBCOMP):
            check(len(body) >= 2, "%s without a packet id" % self.name)
            self.rc = body[2] if len(body) > 2 else 0
            if len(body) > 3:
                self.props, end = dec_props(body, 3)
                check_eq(end, len(body), "%s length after the properties"
                         % self.name)
        elif t in (SUBACK, UNSUBACK):
            self.pid = struct.unpack("!H", body[:2])[0]
            self.props, pos = dec_props(body, 2)
            self.codes = list(body[pos:])
        elif t in (DISCONNECT, AUTH):
            self.rc = body[0] if body else 0
            if len(body) > 1:
                self.props, end = dec_props(body, 1)
                check_eq(end, len(body), "%s length after the properties"
                         % self.name)

    def __repr__(self):
        if self.type == PUBLISH:
            return ("PUBLISH5(topic=%r, payload=%r, qos=%d, dup=%d, "
                    "retain=%d, pid=%r, props=%r)"
                    % (self.topic, self.payload[:40], self.qos, self.dup,
                       self.retain, self.pid, list(self.props)))
        if self.rc is not None:
            return "%s(rc=0x%02x, pid=%r, props=%r)" % (
                self.name, self.rc, self.pid, list(self.props))
        if self.type in (SUBACK, UNSUBACK):
            return "%s(pid=%r, codes=%r, props=%r)" % (
                self.name, self.pid, self.codes, list(self.props))
        return Packet.__repr__(self)


# ---------------------------------------------------------------- client

class Client5(RawClient):
    """A RawClient that speaks MQTT 5.0: every packet read is a Packet5."""

    def __init__(self, port, **kw):
        RawClient.__init__(self, port, **kw)
        self.connack = None

    def _take_packet(self):
        p = RawClient._take_packet(self)
        if p is None:
            return None
        return Packet5(p.first, p.body)

    # -- protocol steps
    def connect(self, client_id, clean=True, keepalive=60, props=(),
                will=None, check=True, **kw):
        """Sends a v5 CONNECT and reads the CONNACK (a Packet5, also kept
        in self.connack); fails unless its reason code is 0 when check is
        true."""
        self.client_id = client_id
        self.send(enc_connect5(client_id, clean, keepalive, props, will,
                               **kw))
        p = self.expect(CONNACK, what="v5 CONNECT %s" % client_id)
        self.connack = p
        if check and p.rc != 0:
            fail("v5 CONNACK for %s: reason code 0x%02x %r"
                 % (client_id, p.rc, list(p.props)))
        return p

    def subscribe(self, entries, props=(), pid=None):
        """entries: [(filter, options byte)], or a filter alone (QoS 0).
        Returns the SUBACK reason codes."""
        if isinstance(entries, str):
            entries = [(entries, 0)]
        if pid is None:
            pid = self.pid()
        self.send(enc_subscribe5(pid, entries, props))
        p = self.expect(SUBACK, what="SUBSCRIBE %r" % (entries,))
        check_eq(p.pid, pid, "SUBACK packet id")
        check_eq(p.flags, 0, "SUBACK flags")
        self.suback = p
        return p.codes

    def unsubscribe(self, filters, props=(), pid=None):
        """Returns the UNSUBACK reason codes."""
        if pid is None:
            pid = self.pid()
        self.send(enc_unsubscribe5(pid, filters, props))
        p = self.expect(UNSUBACK, what="UNSUBSCRIBE %r" % (filters,))
        check_eq(p.pid, pid, "UNSUBACK packet id")
        check_eq(p.flags, 0, "UNSUBACK flags")
        return p.codes

    def publish(self, topic, payload=b"", qos=0, retain=False, props=(),
                pid=None, dup=False, complete=True, ok=(0, 0x10)):
        """Publishes; with complete, runs the QoS 1/2 flow (2-byte acks
        from this side) and checks that the broker's PUBACK / PUBREC
        reason code is in ok (Success or No matching subscribers).
        Returns the PUBACK or PUBREC (None at QoS 0 or without
        complete)."""
        if qos > 0 and pid is None:
            pid = self.pid()
        self.send(enc_publish5(topic, payload, qos, pid, retain, dup, props))
        if not complete or qos == 0:
            return None
        what = "v5 PUBLISH qos %d to %s" % (qos, topic)
        a = self._await_ack(PUBACK if qos == 1 else PUBREC, pid, what)
        check(a.rc in ok, "%s: %s reason code 0x%02x, want one of %s"
              % (what, a.name, a.rc, ["0x%02x" % c for c in ok]))
        if qos == 2:
            self.send(enc_ack(PUBREL, pid))
            self._await_ack(PUBCOMP, pid, "PUBREL %d" % pid)
        return a

    def _await_ack(self, ptype, pid, what):
        """As RawClient's, without the 2-byte length check (a v5 ack may
        carry a reason code and properties)."""
        while True:
            try:
                p = self._read_wire()
            except Closed:
                fail("%s: waiting for %s: the broker closed the connection"
                     % (what, PACKET_NAMES[ptype]))
            if p is None:
                fail("%s: no %s within %.1f s" % (what,
                                                  PACKET_NAMES[ptype],
                                                  self.timeout))
            if p.type in (PUBLISH, PUBREL) and p.type != ptype:
                self.stash.append(p)
                continue
            if p.type != ptype:
                fail("%s: expected %s, got %r" % (what,
                                                 PACKET_NAMES[ptype],
                                                 p))
            check_eq(p.pid, pid, "%s: %s packet id" % (what, p.name))
            check_eq(p.flags, 2 if ptype == PUBREL else 0,
                     "%s: %s flags" % (what, p.name))
            return p

    def disconnect(self, rc=None, props=None):
        """Sends DISCONNECT (empty by default: Normal disconnection)."""
        self.try_send(enc_disconnect5(rc, props))

    def expect_disconnect(self, codes, what, timeout=3.0):
        """The broker sends DISCONNECT with a reason code in codes (an int
        or a collection), then closes.  PUBLISHes and acks that come
        first are skipped.  Returns the DISCONNECT."""
        if isinstance(codes, int):
            codes = (codes,)
        closed = self.wait_closed(timeout)
        got = [p for p in self.before_close if p.type == DISCONNECT]
        if not got:
            fail("%s: no DISCONNECT from the broker (%s; packets: %r)"
                 % (what, "closed" if closed else
                    "and the connection was not closed within %.1f s"
                    % timeout, self.before_close[-5:]))
        d = got[0]
        check(d.rc in codes, "%s: DISCONNECT reason code 0x%02x, want %s"
              % (what, d.rc, " or ".join("0x%02x" % c for c in codes)))
        check(closed, "%s: the broker sent %r but did not close the "
              "connection within %.1f s" % (what, d, timeout))
        check_eq(self.before_close[-1].type, DISCONNECT,
                 "%s: last packet before the close" % what)
        return d


def client5(port, client_id, **kw):
    """A Client5 already connected (CONNACK 0) as client_id."""
    c = Client5(port)
    c.connect(client_id, **kw)
    return c
