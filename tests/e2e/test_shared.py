"""
test_shared.py -- shared subscriptions ($share/GROUP/FILTER, MQTT 5.0
section 4.8.2, and for 3.1.1 clients as Mosquitto does) end to end with the
raw clients: each message of a group goes to exactly one member, groups and
plain subscriptions each get their own copy, wildcards, no retained
messages for a shared subscription, UNSUBSCRIBE, granted QoS, invalid
shared filters, No Local, Subscription Identifiers, the CONNACK property,
persistent members offline, hand-over of what a member held when its
session ended, the Mosquitto tools, and bad input from one member.

Where Mosquitto 2.0.11 deviates, the test or the assertion is ringmq-only
(ringmq_only() / ringmq_checks()) with what Mosquitto does in a comment.
"""

import collections
import select
import time

from harness import (
    DISCONNECT, PUBLISH, SUBACK, Broker, Closed, check, check_eq,
    enc_subscribe, fail, finish_process, mosquitto_pub, mosquitto_sub_start,
    packet, raw_client, read_line, ringmq_checks, ringmq_only)
from mqtt5_wire import (
    RC_MALFORMED, RC_NO_SUBSCRIPTION_EXISTED, RC_PROTOCOL_ERROR,
    RC_TOPIC_FILTER_INVALID, RECEIVE_MAXIMUM, SESSION_EXPIRY,
    SHARED_SUB_AVAILABLE, SUBSCRIPTION_ID, client5, enc_subscribe5, sub_opts)

Q1 = sub_opts(1)


# ------------------------------------------------------------------ helpers

def _member(b, cid, filt, qos=1, v5=True, props=(), **connect_kw):
    """A client (v5 Client5 or 3.1.1 RawClient) subscribed to filt at qos;
    fails unless the SUBACK grants qos."""
    if v5:
        c = client5(b.port, cid, **connect_kw)
        codes = c.subscribe([(filt, sub_opts(qos))], props=props)
    else:
        c = raw_client(b.port, cid, **connect_kw)
        codes = c.subscribe([(filt, qos)])
    check_eq(codes, [qos], "%s: SUBACK for %s qos %d" % (cid, filt, qos))
    return c


def _bodies(prefix, n):
    return [b"%s-%02d" % (prefix.encode(), i) for i in range(n)]


def _publish_all(pub, topic, bodies, qos=1):
    for body in bodies:
        pub.publish(topic, body, qos=qos)


def _drain(c, i, got, acks, what):
    """Every PUBLISH already readable on c into got[i] (acknowledged when
    acks[i]); anything else, or the close, fails."""
    while True:
        try:
            p = c.read(0.001)
        except Closed:
            fail("%s: %s: the broker closed the connection (after %d "
                 "messages)" % (what, c.client_id, len(got[i])))
        if p is None:
            return
        if p.type != PUBLISH:
            fail("%s: %s: expected PUBLISH, got %r" % (what, c.client_id, p))
        if acks[i]:
            c.ack(p)
        got[i].append(p)


def _gather(clients, total, what, timeout=10.0, quiet=0.5, ack=True):
    """Reads PUBLISHes from all clients at once until total arrived in
    all, then for quiet more seconds (to catch extra copies).  ack: a bool,
    or one per client.  Returns [[Packet] per client]."""
    acks = list(ack) if isinstance(ack, (list, tuple)) else [ack] * len(
        clients)
    got = [[] for _ in clients]
    deadline = time.monotonic() + timeout

    def count():
        return sum(len(g) for g in got)

    def poll(until):
        left = until - time.monotonic()
        if left > 0:
            select.select([c.sock for c in clients], [], [], min(left, 0.05))
        for i, c in enumerate(clients):
            _drain(c, i, got, acks, what)

    while count() < total:
        if time.monotonic() >= deadline:
            fail("%s: %d of %d messages within %.0f s (per client %s)"
                 % (what, count(), total, timeout, _counts(clients, got)))
        poll(deadline)
    end = time.monotonic() + quiet
    while time.monotonic() < end:
        poll(end)
    return got


def _counts(clients, got):
    return ", ".join("%s %d" % (c.client_id, len(g))
                     for c, g in zip(clients, got))


def _check_once(clients, got, bodies, what):
    """Every body in exactly one client's deliveries, and nothing else."""
    seen = collections.Counter(p.payload for g in got for p in g)
    missing = [x for x in bodies if seen[x] == 0]
    dups = sorted(x for x, n in seen.items() if n > 1)
    extra = sorted(x for x in seen if x not in bodies)
    check(not missing and not dups and not extra,
          "%s: %d messages published; missing %r, more than once %r, "
          "unknown %r (per client %s)" % (what, len(bodies), missing, dups,
                                          extra, _counts(clients, got)))


def _check_spread(clients, got, at_least, what):
    for c, g in zip(clients, got):
        check(len(g) >= at_least, "%s: %s got %d messages, want at least "
              "%d (per client %s)" % (what, c.client_id, len(g), at_least,
                                      _counts(clients, got)))


def _check_round_robin(clients, got, what):
    """ringmq chooses members round robin: an even spread, exactly."""
    total = sum(len(g) for g in got)
    for c, g in zip(clients, got):
        check_eq(len(g), total // len(clients),
                 "%s: messages to %s with round robin (per client %s)"
                 % (what, c.client_id, _counts(clients, got)))


# -------------------------------------------------------------- distribution

def test_share_spreads_over_members():
    """Three members of $share/g/s/t (two v5, one 3.1.1): 30 QoS 1
    messages each reach exactly one member, each member gets at least 5
    (ringmq, round robin: exactly 10)."""
    with Broker() as b:
        members = [_member(b, "sh-a", "$share/g/s/t"),
                   _member(b, "sh-b", "$share/g/s/t", v5=False),
                   _member(b, "sh-c", "$share/g/s/t")]
        pub = raw_client(b.port, "sh-pub")
        bodies = _bodies("s", 30)
        _publish_all(pub, "s/t", bodies)
        got = _gather(members, 30, "group g")
        _check_once(members, got, bodies, "group g")
        _check_spread(members, got, 5, "group g")
        for c, g in zip(members, got):
            check(all(p.qos == 1 and p.topic == "s/t" for p in g),
                  "%s: deliveries not QoS 1 on s/t: %r" % (c.client_id, g))
        if ringmq_checks():
            _check_round_robin(members, got, "group g")


def test_share_and_plain_subscriber():
    """A plain subscriber of s/t next to the group gets all 30; the group
    still gets each message once."""
    with Broker() as b:
        members = [_member(b, "shp-a", "$share/g/s/t"),
                   _member(b, "shp-b", "$share/g/s/t", v5=False)]
        plain = _member(b, "shp-plain", "s/t")
        pub = client5(b.port, "shp-pub")
        bodies = _bodies("p", 30)
        _publish_all(pub, "s/t", bodies)
        got = _gather(members + [plain], 60, "group g and plain s/t")
        _check_once(members, got[:2], bodies, "group g")
        _check_spread(members, got[:2], 5, "group g")
        check_eq([p.payload for p in got[2]], bodies,
                 "plain subscriber of s/t: every message, in order")


def test_share_two_groups():
    """$share/g/s/t and $share/h/s/t: each group gets all 30, spread over
    its own members."""
    with Broker() as b:
        g = [_member(b, "sh2-g1", "$share/g/s/t"),
             _member(b, "sh2-g2", "$share/g/s/t", v5=False)]
        h = [_member(b, "sh2-h1", "$share/h/s/t", v5=False),
             _member(b, "sh2-h2", "$share/h/s/t"),
             _member(b, "sh2-h3", "$share/h/s/t")]
        pub = raw_client(b.port, "sh2-pub")
        bodies = _bodies("two", 30)
        _publish_all(pub, "s/t", bodies)
        got = _gather(g + h, 60, "groups g and h")
        _check_once(g, got[:2], bodies, "group g")
        _check_once(h, got[2:], bodies, "group h")
        _check_spread(g, got[:2], 5, "group g")
        _check_spread(h, got[2:], 5, "group h")
        if ringmq_checks():
            _check_round_robin(g, got[:2], "group g")
            _check_round_robin(h, got[2:], "group h")


def test_share_member_with_plain_subscription():
    """A client subscribed to $share/g/s/t and to s/t gets every message
    once for s/t plus its share of the group's (a second copy); the other
    member gets the rest of the group's share."""
    with Broker() as b:
        both = client5(b.port, "shb-both")
        check_eq(both.subscribe([("$share/g/s/t", Q1), ("s/t", Q1)]),
                 [1, 1], "SUBACK for $share/g/s/t and s/t")
        other = _member(b, "shb-other", "$share/g/s/t", v5=False)
        pub = raw_client(b.port, "shb-pub")
        bodies = _bodies("b", 20)
        _publish_all(pub, "s/t", bodies)
        got = _gather([both, other], 40, "plain + group g")
        seen = collections.Counter(p.payload for p in got[0])
        check(all(seen[x] in (1, 2) for x in bodies) and
              set(seen) == set(bodies),
              "the client with both subscriptions: copies per message %r"
              % sorted(seen.items()))
        share = [x for x in bodies if seen[x] == 2]
        group = collections.Counter(share + [p.payload for p in got[1]])
        check(set(group) == set(bodies) and max(group.values()) == 1,
              "group g: second copies to the client with both %r and "
              "messages to the other member %r: not every message exactly "
              "once" % (share, [p.payload for p in got[1]]))
        check(len(share) >= 5 and len(got[1]) >= 5,
              "group g spread: %d to the client with both, %d to the other"
              % (len(share), len(got[1])))


def test_share_wildcards():
    """$share/g/s/# gets s/a and s/b/c (and not t/a), each message once
    over the members, with the real topic name; $share/w/s/+ gets s/a
    only."""
    with Broker() as b:
        hash_members = [_member(b, "shw-1", "$share/g/s/#"),
                        _member(b, "shw-2", "$share/g/s/#", v5=False)]
        plus = _member(b, "shw-plus", "$share/w/s/+")
        pub = raw_client(b.port, "shw-pub")
        sent = []
        for i in range(6):
            for topic in ("s/a", "s/b/c", "t/a"):
                body = b"%s-%d" % (topic.encode(), i)
                pub.publish(topic, body, qos=1)
                if topic != "t/a":
                    sent.append((topic, body))
        got = _gather(hash_members + [plus], 12 + 6, "wildcard groups")
        _check_once(hash_members, got[:2], [x for _, x in sent],
                    "group g on s/#")
        for g in got[:2]:
            for p in g:
                check_eq(p.topic, p.payload.decode().rsplit("-", 1)[0],
                         "topic of a delivery on $share/g/s/#")
        check_eq(sorted((p.topic, p.payload) for p in got[2]),
                 sorted(x for x in sent if x[0] == "s/a"),
                 "deliveries to the only member of $share/w/s/+")


# ------------------------------------------------------------------ retained

def test_share_no_retained_message():
    """A retained message on r/t is not sent to a new shared subscription
    (v5 or 3.1.1), while a plain subscription gets it; the shared
    subscription then gets live messages."""
    with Broker() as b:
        pub = client5(b.port, "shr-pub")
        pub.publish("r/t", b"kept", qos=1, retain=True)
        s5 = _member(b, "shr-5", "$share/g/r/t")
        s3 = _member(b, "shr-3", "$share/h/r/t", v5=False)
        plain = _member(b, "shr-plain", "r/t")
        m = plain.recv_publish(what="retained message to a plain "
                               "subscription")
        check_eq((m.payload, m.retain), (b"kept", True),
                 "retained message to the plain subscription")
        early = _gather([s5, s3], 0, "retained", quiet=0.7)
        if ringmq_checks():
            # Mosquitto 2.0.11 sends the retained message to a new shared
            # subscription like to any other.
            check_eq([[p.payload for p in g] for g in early], [[], []],
                     "retained messages to new shared subscriptions "
                     "($share/g/r/t v5, $share/h/r/t 3.1.1)")
        pub.publish("r/t", b"live", qos=1)
        for c in (s5, s3, plain):
            m = c.recv_publish(what="%s: live message" % c.client_id)
            check_eq((m.payload, m.retain), (b"live", False),
                     "%s: live message (payload, retain)" % c.client_id)


# --------------------------------------------------------------- unsubscribe

def test_share_unsubscribe():
    """A member that unsubscribes (UNSUBACK 0x00) gets nothing more; the
    two remaining members get every message once; when the 3.1.1 member
    leaves too, the last one gets everything."""
    with Broker() as b:
        a = _member(b, "shu-a", "$share/g/u/t")
        rest = [_member(b, "shu-b", "$share/g/u/t"),
                _member(b, "shu-c", "$share/g/u/t", v5=False)]
        check_eq(a.unsubscribe(["$share/g/u/t"]), [0x00],
                 "UNSUBACK for the shared filter")
        pub = raw_client(b.port, "shu-pub")
        bodies = _bodies("u", 20)
        _publish_all(pub, "u/t", bodies)
        got = _gather(rest + [a], 20, "after shu-a unsubscribed")
        check_eq(got[2], [], "deliveries to the member that unsubscribed")
        _check_once(rest, got[:2], bodies, "the two remaining members")
        _check_spread(rest, got[:2], 5, "the two remaining members")
        # The 3.1.1 member leaves too: the last one gets everything.
        rest[1].unsubscribe(["$share/g/u/t"])
        _publish_all(pub, "u/t", bodies[:5])
        got = _gather(rest + [a], 5, "after shu-c unsubscribed")
        check_eq([[p.payload for p in g] for g in got],
                 [bodies[:5], [], []],
                 "deliveries when one member is left")


def test_share_unsubscribe_twice():
    """UNSUBSCRIBE of a shared filter the client is no longer in, or
    never was in (a group that exists through another client): 0x11 (No
    subscription existed), as for a plain filter; a filter the client
    still has in the same packet: 0x00."""
    with Broker() as b:
        _member(b, "shu2-other", "$share/g/u/t")
        c = _member(b, "shu2", "$share/g/u/t")
        check_eq(c.subscribe([("$share/h/u/t", Q1)]), [1],
                 "SUBACK for $share/h/u/t")
        check_eq(c.unsubscribe(["$share/g/u/t"]), [0x00],
                 "UNSUBACK for $share/g/u/t")
        check_eq(c.unsubscribe(["$share/g/u/t", "$share/x/u/t",
                                "$share/h/u/t"]),
                 [RC_NO_SUBSCRIPTION_EXISTED, RC_NO_SUBSCRIPTION_EXISTED,
                  0x00],
                 "UNSUBACK for $share/g/u/t again, $share/x/u/t (never), "
                 "$share/h/u/t (still there)")


# ----------------------------------------------------------------------- QoS

def test_share_granted_qos():
    """SUBACK grants the requested QoS for $share filters (0, 1, 2, v5
    and 3.1.1); a member granted QoS 0 gets a QoS 1 message at QoS 0, one
    granted 1 at QoS 1, one granted 2 at QoS 1 (the publish QoS); QoS 2
    messages go out at min(granted, published)."""
    with Broker() as b:
        m0 = _member(b, "shq-0", "$share/g/q/t", qos=0)
        m1 = _member(b, "shq-1", "$share/g/q/t", qos=1, v5=False)
        m2 = _member(b, "shq-2", "$share/h/q/t", qos=2)
        pub = client5(b.port, "shq-pub")
        bodies = _bodies("q", 10)
        _publish_all(pub, "q/t", bodies, qos=1)
        got = _gather([m0, m1, m2], 20, "groups g and h")
        _check_once([m0, m1], got[:2], bodies, "group g")
        _check_spread([m0, m1], got[:2], 2, "group g")
        check_eq([p.qos for p in got[0]], [0] * len(got[0]),
                 "delivery QoS to the member granted 0")
        check_eq([p.qos for p in got[1]], [1] * len(got[1]),
                 "delivery QoS to the member granted 1")
        check_eq([(p.payload, p.qos) for p in got[2]],
                 [(x, 1) for x in bodies],
                 "(payload, QoS) to the only member of group h, granted 2")
        # A 3.1.1 client: three $share filters in one SUBSCRIBE.
        v3 = raw_client(b.port, "shq-3")
        check_eq(v3.subscribe([("$share/k/q3/a", 0), ("$share/k/q3/b", 1),
                               ("$share/k/q3/c", 2)]), [0, 1, 2],
                 "3.1.1 SUBACK for three $share filters")
        for topic, qos, want in (("q3/a", 2, 0), ("q3/b", 2, 1),
                                 ("q3/c", 2, 2), ("q3/c", 1, 1)):
            pub.publish(topic, b"%s %d" % (topic.encode(), qos), qos=qos)
            m = v3.recv_publish(what="QoS %d message on %s" % (qos, topic))
            check_eq((m.topic, m.payload, m.qos),
                     (topic, b"%s %d" % (topic.encode(), qos), want),
                     "QoS %d message to the member of $share/k/%s "
                     "(topic, payload, QoS)" % (qos, topic))
        v3.expect_nothing(0.3, "extra delivery to shq-3")
        for c in (m0, m1, m2):
            c.expect_nothing(0.1, "%s: delivery of a q3/ message"
                             % c.client_id)


# ----------------------------------------------------------- invalid filters

_INVALID_SHARES = ["$share/g", "$share//t", "$share/g+/t", "$share/g#/t",
                   "$share/g/"]


def test_share_invalid_filters_v5():
    """"$share/g" (no filter), "$share//t" (empty share name),
    "$share/g+/t" and "$share/g#/t" (wildcard in the share name),
    "$share/g/" (empty filter): SUBACK 0x8F each, also next to a valid
    filter, and the connection stays usable."""
    # Mosquitto 2.0.11 grants "$share/g", "$share//t" and "$share/g/"
    # (QoS 1) and answers a wildcard in the share name with DISCONNECT
    # 0x81.
    ringmq_only("Mosquitto grants $share/g, $share//t, $share/g/ and "
                "disconnects (0x81) on a wildcard in the share name")
    with Broker() as b:
        c = client5(b.port, "shi5")
        pub = raw_client(b.port, "shi5-pub")
        for i, f in enumerate(_INVALID_SHARES):
            check_eq(c.subscribe([(f, Q1)]), [RC_TOPIC_FILTER_INVALID],
                     "SUBACK for %r" % f)
            ok = "$share/ok%d/i/t" % i
            check_eq(c.subscribe([(ok, Q1), (f, Q1)]),
                     [1, RC_TOPIC_FILTER_INVALID],
                     "SUBACK for %r then %r" % (ok, f))
            c.ping()
            pub.publish("i/t", b"after %d" % i, qos=1)
            m = c.recv_publish(what="message on %s after %r" % (ok, f))
            check_eq(m.payload, b"after %d" % i, "message on %s" % ok)
            check_eq(c.unsubscribe([ok]), [0], "UNSUBACK for %s" % ok)


def test_share_invalid_filters_v311():
    """The same filters from a 3.1.1 client: SUBACK 0x80 each, and the
    connection stays usable."""
    ringmq_only("Mosquitto grants $share/g, $share//t, $share/g/ and "
                "closes the connection on a wildcard in the share name")
    with Broker() as b:
        c = raw_client(b.port, "shi3")
        pub = raw_client(b.port, "shi3-pub")
        for i, f in enumerate(_INVALID_SHARES):
            ok = "$share/ok%d/i/t" % i
            check_eq(c.subscribe([(f, 1), (ok, 1)]), [0x80, 1],
                     "3.1.1 SUBACK for %r then %r" % (f, ok))
            c.ping()
            pub.publish("i/t", b"after %d" % i, qos=1)
            m = c.recv_publish(what="message on %s after %r" % (ok, f))
            check_eq(m.payload, b"after %d" % i, "message on %s" % ok)
            c.unsubscribe([ok])


# ----------------------------------------------------------------- No Local

def test_share_no_local_is_protocol_error():
    """No Local on a shared subscription is a Protocol Error
    (MQTT-3.8.3-4): DISCONNECT 0x82 (or the close without one), no
    SUBACK; the other member of the group gets everything."""
    # Mosquitto 2.0.11 grants it (SUBACK 1).
    ringmq_only("Mosquitto grants No Local on a shared subscription")
    with Broker() as b:
        other = _member(b, "shn-other", "$share/g/n/t")
        c = client5(b.port, "shn")
        c.send(enc_subscribe5(1, [("$share/g/n/t",
                                   sub_opts(1, no_local=True))]))
        closed = c.wait_closed(3.0)
        check(closed, "No Local on $share/g/n/t: the connection was not "
              "closed within 3 s (packets: %r)" % c.before_close)
        check(all(p.type != SUBACK for p in c.before_close),
              "No Local on $share/g/n/t: SUBACK sent: %r" % c.before_close)
        if c.before_close:
            check_eq([(p.name, p.rc) for p in c.before_close],
                     [("DISCONNECT", RC_PROTOCOL_ERROR)],
                     "packets before the close")
        pub = raw_client(b.port, "shn-pub")
        bodies = _bodies("n", 6)
        _publish_all(pub, "n/t", bodies)
        got = _gather([other], 6, "the other member")
        check_eq([p.payload for p in got[0]], bodies,
                 "messages to the one real member")


# --------------------------------------------------- Subscription Identifier

def test_share_subscription_identifier():
    """Members with Subscription Identifiers 5 and 6 get their own id on
    every delivery; a member without one gets none; a client with
    $share/h/i/t (id 7) and plain i/t (id 8) gets the plain copy with
    [8] and its share with [7]."""
    with Broker() as b:
        a = _member(b, "shs-a", "$share/g/i/t", props=[(SUBSCRIPTION_ID, 5)])
        c = _member(b, "shs-c", "$share/g/i/t", props=[(SUBSCRIPTION_ID, 6)])
        x = client5(b.port, "shs-x")
        check_eq(x.subscribe([("$share/h/i/t", Q1)],
                             props=[(SUBSCRIPTION_ID, 7)]), [1],
                 "SUBACK for $share/h/i/t id 7")
        check_eq(x.subscribe([("i/t", Q1)], props=[(SUBSCRIPTION_ID, 8)]),
                 [1], "SUBACK for i/t id 8")
        y = _member(b, "shs-y", "$share/h/i/t")
        pub = raw_client(b.port, "shs-pub")
        bodies = _bodies("i", 10)
        _publish_all(pub, "i/t", bodies)
        got = _gather([a, c, x, y], 30, "ids")
        _check_once([a, c], got[:2], bodies, "group g")
        for cl, g, sid in ((a, got[0], 5), (c, got[1], 6)):
            check_eq([p.props.all(SUBSCRIPTION_ID) for p in g],
                     [[sid]] * len(g),
                     "Subscription Identifiers on deliveries to %s"
                     % cl.client_id)
        check_eq([list(p.props) for p in got[3]], [[]] * len(got[3]),
                 "properties on deliveries to the member without an id")
        ids = collections.Counter(tuple(p.props.all(SUBSCRIPTION_ID))
                                  for p in got[2])
        check(set(ids) <= {(7,), (8,)},
              "ids on deliveries to the client in group h and on i/t: %r"
              % ids)
        plain = [p.payload for p in got[2] if p.props.all(SUBSCRIPTION_ID)
                 == [8]]
        share = [p.payload for p in got[2] if p.props.all(SUBSCRIPTION_ID)
                 == [7]]
        check_eq(plain, bodies, "deliveries with id 8 (plain i/t)")
        group = collections.Counter(share + [p.payload for p in got[3]])
        check(set(group) == set(bodies) and max(group.values()) == 1,
              "group h: id 7 copies %r and the other member's %r: not "
              "every message exactly once"
              % (share, [p.payload for p in got[3]]))


# ------------------------------------------------------------------- CONNACK

def test_share_connack_available():
    """A v5 CONNACK has Shared Subscription Available absent or 1, and a
    shared subscription is then granted."""
    with Broker() as b:
        c = client5(b.port, "sha")
        v = c.connack.props.get(SHARED_SUB_AVAILABLE, 1)
        check_eq(v, 1, "Shared Subscription Available in CONNACK (absent "
                 "counts as 1): %r" % list(c.connack.props))
        check_eq(c.subscribe([("$share/g/a/t", Q1)]), [1],
                 "SUBACK for $share/g/a/t")


# ------------------------------------------------------- persistent members

def test_share_offline_persistent_member():
    """A v5 member with Session Expiry 60 disconnects normally; the QoS 1
    messages published while it is away are still shared between it and
    the online member: it gets its share on reconnect (session present
    1), and the two together have every message once."""
    with Broker() as b:
        props = [(SESSION_EXPIRY, 60)]
        away = client5(b.port, "sho-away", clean=False, props=props)
        check_eq(away.subscribe([("$share/g/o/t", Q1)]), [1],
                 "SUBACK for $share/g/o/t")
        online = _member(b, "sho-online", "$share/g/o/t")
        away.disconnect()
        away.expect_closed(3, "after DISCONNECT")
        pub = raw_client(b.port, "sho-pub")
        bodies = _bodies("o", 20)
        _publish_all(pub, "o/t", bodies)
        first = _gather([online], 0, "online member while the other is "
                        "away", quiet=1.0)[0]
        check(len(first) < 20, "the online member got all %d messages: "
              "nothing was kept for the offline member" % len(first))
        back = client5(b.port, "sho-away", clean=False, props=props)
        check_eq(back.connack.session_present, 1,
                 "session present on reconnect")
        rest = 20 - len(first)
        got = _gather([back, online], rest, "after the reconnect")
        check_eq(got[1], [], "more messages to the online member after "
                 "the reconnect")
        check(all(p.qos == 1 for p in got[0]),
              "QoS of the kept messages: %r" % got[0])
        _check_once([online, back], [first, got[0]], bodies,
                    "online member, then the member that was away")
        check(len(first) >= 5 and len(got[0]) >= 5,
              "spread: %d to the online member, %d kept for the other"
              % (len(first), len(got[0])))
        if ringmq_checks():
            check_eq((len(first), len(got[0])), (10, 10),
                     "round robin over an offline persistent member "
                     "(online, kept)")


# -------------------------------------------------------------- hand-over

def test_share_handover_unacknowledged():
    """A v5 member with Session Expiry 0 receives QoS 1 messages and
    acknowledges none, then its connection drops: what it held goes to
    the other member, which ends with every message once."""
    # Mosquitto 2.0.11 drops what the ended session held.
    ringmq_only("Mosquitto drops the messages of a member whose session "
                "ends")
    with Broker() as b:
        holder = _member(b, "shh-holder", "$share/g/h/t")
        other = _member(b, "shh-other", "$share/g/h/t")
        pub = raw_client(b.port, "shh-pub")
        bodies = _bodies("h", 20)
        _publish_all(pub, "h/t", bodies)
        got = _gather([holder, other], 20, "before the drop",
                      ack=[False, True])
        held = [p.payload for p in got[0]]
        check(len(held) >= 5, "the holder got %d messages; want at least "
              "5 unacknowledged" % len(held))
        _check_once([holder, other], got, bodies, "before the drop")
        holder.abort()
        later = _gather([other], len(held), "messages handed over")[0]
        check_eq(sorted(p.payload for p in later), sorted(held),
                 "messages handed over to the other member")
        _check_once([other], [got[1] + later], bodies,
                    "the other member in all")


def test_share_handover_queued():
    """A v5 member with Receive Maximum 1 and Session Expiry 0 that
    acknowledges nothing: one message in flight, the rest of its share
    queued; it disconnects (session ends): the in-flight and the queued
    messages go to the other member, which ends with every message."""
    ringmq_only("Mosquitto drops the messages of a member whose session "
                "ends")
    with Broker() as b:
        slow = client5(b.port, "shk-slow", props=[(RECEIVE_MAXIMUM, 1)])
        check_eq(slow.subscribe([("$share/g/k/t", Q1)]), [1],
                 "SUBACK for the slow member")
        other = _member(b, "shk-other", "$share/g/k/t")
        pub = raw_client(b.port, "shk-pub")
        bodies = _bodies("k", 20)
        _publish_all(pub, "k/t", bodies)
        got = _gather([slow, other], 0, "before the disconnect",
                      ack=[False, True], quiet=1.0)
        check_eq(len(got[0]), 1, "messages in flight to the member with "
                 "Receive Maximum 1 that does not acknowledge")
        check(len(got[0]) + len(got[1]) < 20,
              "nothing held back for the slow member (per client %s)"
              % _counts([slow, other], got))
        slow.disconnect()
        slow.expect_closed(3, "after DISCONNECT")
        rest = 20 - len(got[1])
        later = _gather([other], rest, "messages handed over")[0]
        _check_once([other], [got[1] + later], bodies,
                    "the other member in all")


# --------------------------------------------------------- Mosquitto tools

def test_share_mosquitto_tools():
    """Two mosquitto_sub -t '$share/g/x/t' (one -V 5, one 3.1.1) and ten
    mosquitto_pub -t x/t: the two outputs together have each of the ten
    messages exactly once."""
    with Broker() as b:
        # A retained message on a plain topic after the shared one tells
        # when a mosquitto_sub is subscribed (none is sent for $share).
        subs = []
        for i, version in enumerate(("5", "311")):
            r = mosquitto_pub(b.port, ["-t", "x/ready/%d" % i, "-m",
                                       "ready", "-r", "-q", "1"])
            check_eq(r.returncode, 0, "mosquitto_pub -r exit (%r)"
                     % r.stderr)
            p = mosquitto_sub_start(b.port, [
                "-V", version, "-q", "1", "-v", "-i", "shm-sub-%d" % i,
                "-t", "$share/g/x/t", "-t", "x/ready/%d" % i])
            subs.append(p)
            check_eq(read_line(p, 5), b"x/ready/%d ready\n" % i,
                     "mosquitto_sub %d first line (retained ready)" % i)
        bodies = ["x%d" % i for i in range(10)]
        for body in bodies:
            r = mosquitto_pub(b.port, ["-q", "1", "-t", "x/t", "-m", body])
            check_eq(r.returncode, 0, "mosquitto_pub exit (%r)" % r.stderr)
        lines = [[], []]
        deadline = time.monotonic() + 5.0
        while sum(map(len, lines)) < 10 and time.monotonic() < deadline:
            for i, p in enumerate(subs):
                line = read_line(p, 0.05)
                if line:
                    lines[i].append(line)
        for i, p in enumerate(subs):
            while True:
                line = read_line(p, 0.3)
                if not line:
                    break
                lines[i].append(line)
            p.terminate()
            finish_process(p, 5)
        outs = [[ln.decode().rstrip("\n") for ln in ls] for ls in lines]
        seen = collections.Counter(x for o in outs for x in o)
        check_eq(sorted(seen.elements()),
                 sorted("x/t " + x for x in bodies),
                 "lines of the two mosquitto_sub outputs together (%r)"
                 % outs)
        check(all(len(o) >= 1 for o in outs),
              "a mosquitto_sub got nothing: %r" % outs)
        if ringmq_checks():
            check_eq([len(o) for o in outs], [5, 5],
                     "lines per mosquitto_sub with round robin")


# ------------------------------------------------------------- bad input

def test_share_bad_input_does_not_disturb():
    """In a group of three: one member's SUBSCRIBE to "$share/g/" (empty
    filter) is refused (ringmq: SUBACK 0x8F) and it stays a member; then
    another member sends a SUBSCRIBE whose filter runs past the packet
    end and is closed, a non-member's Subscription Identifier 0 on
    $share/g/m/t and another's share name that is not UTF-8 close those
    two: the members left get every message once, before and after."""
    with Broker() as b:
        a = _member(b, "shd-a", "$share/g/m/t")
        bb = _member(b, "shd-b", "$share/g/m/t")
        c = _member(b, "shd-c", "$share/g/m/t", v5=False)
        members = [a, bb, c]
        codes = a.subscribe([("$share/g/", Q1)])
        if ringmq_checks():
            # Mosquitto 2.0.11 grants "$share/g/" (QoS 1).
            check_eq(codes, [RC_TOPIC_FILTER_INVALID],
                     "SUBACK for $share/g/")
        a.ping()
        pub = raw_client(b.port, "shd-pub")
        first = _bodies("d1", 15)
        _publish_all(pub, "m/t", first)
        got = _gather(members, 15, "after the empty filter")
        _check_once(members, got, first, "after the empty filter")
        _check_spread(members, got, 2, "after the empty filter")

        # A filter of 200 bytes announced, 12 there: malformed.
        c.send(packet(0x82, b"\x00\x07\x00\xc8$share/g/m/t\x01"))
        c.expect_closed(3, "SUBSCRIBE with a filter past the packet end")
        d = client5(b.port, "shd-d")
        d.send(enc_subscribe5(1, [("$share/g/m/t", Q1)],
                              props=[(SUBSCRIPTION_ID, 0)]))
        closed = d.wait_closed(3.0)
        bad = (RC_PROTOCOL_ERROR, RC_MALFORMED)
        check(closed and all(p.type == DISCONNECT and p.rc in bad
                             for p in d.before_close),
              "Subscription Identifier 0: want DISCONNECT 0x82/0x81 and "
              "the close, got %r (closed %s)" % (d.before_close, closed))
        e = raw_client(b.port, "shd-e")
        e.send(enc_subscribe(1, [(b"$share/\xff/m/t", 1)]))
        e.expect_closed(3, "share name that is not UTF-8")
        pub2 = raw_client(b.port, "shd-pub2")
        second = _bodies("d2", 12)
        _publish_all(pub2, "m/t", second)
        got = _gather([a, bb], 12, "after the bad input")
        _check_once([a, bb], got, second, "after the bad input")
        _check_spread([a, bb], got, 3, "after the bad input")
