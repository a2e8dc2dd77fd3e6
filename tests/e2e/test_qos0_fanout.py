"""
test_qos0_fanout.py -- QoS 0 deliveries to many subscribers, which ringmq
sends in broadcast groups when nothing is queued for a subscriber
(docs/architecture.md, "QoS 0 to many"), and through the subscriber's
queue otherwise: one publisher's order holds across the two ways (4.6),
retained messages still come before live ones, a subscriber that stops
reading loses only what does not fit and gets the rest in order, and many
subscribers each get every message once.
"""

import threading
import time

from mqtt5_wire import (
    MAXIMUM_PACKET_SIZE, SUBSCRIPTION_ID, client5, sub_opts)
from harness import (
    IS_RINGMQ, Broker, RawClient, admin, check, check_eq, enc_publish,
    raw_client, ringmq_only)


def _numbers(c, n_max, quiet=1.5):
    """Payloads (as ints) of the PUBLISHes c gets until quiet."""
    got = []
    while len(got) < n_max:
        try:
            got.append(int(c.recv_publish(timeout=quiet).payload))
        except AssertionError:
            break
    return got


def _stream(b, client_id, topic, batch, pause, stop):
    """A thread that publishes numbered QoS 0 messages on topic, batch at
    a time with pause seconds between, until stop is set."""
    pub = RawClient(b.port, timeout=10)
    pub.connect(client_id)

    def run():
        i = 0
        while not stop.is_set():
            pub.sock.sendall(b"".join(enc_publish(topic, b"%d" % k)
                                      for k in range(i, i + batch)))
            i += batch
            time.sleep(pause)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_mixed_qos_from_one_publisher_keep_their_order():
    """A QoS 1 subscription gets one publisher's messages alternately at
    QoS 1 (queued: inflight entries) and QoS 0 (which ringmq sends
    directly whenever nothing is queued), pipelined: all arrive, each QoS
    in the order sent (MQTT 4.6), and with ringmq all of them in the order
    sent (its rule: one publisher's order on every path)."""
    n = 600
    with Broker() as b:
        subs = [raw_client(b.port, "mix-sub-%d" % i) for i in range(4)]
        for s in subs:
            check_eq(s.subscribe([("mix/t", 1)]), [1], "SUBACK")
        pub = RawClient(b.port, timeout=10)
        pub.connect("mix-pub")
        data = b"".join(enc_publish("mix/t", b"%d" % i, qos=i % 2,
                                    pid=(i // 2) % 60000 + 1 if i % 2 else None)
                        for i in range(n))
        pub.sock.sendall(data)
        for s in subs:
            got = _numbers(s, n)
            for q in (0, 1):
                check_eq([x for x in got if x % 2 == q],
                         list(range(q, n, 2)), "%s: QoS %d messages in order"
                         % (s.client_id, q))
            if IS_RINGMQ:
                # Mosquitto 2.0.11 sends QoS 0 messages past QoS 1 ones
                # that wait for its inflight window (20).
                check_eq(got, list(range(n)), "%s: messages in order"
                         % s.client_id)


def test_retained_message_comes_before_live_ones():
    """While one publisher sends QoS 0 messages non-stop on a topic with a
    retained message, clients subscribe: each gets the retained message
    first (RETAIN set), then live messages in increasing order."""
    with Broker() as b:
        setter = raw_client(b.port, "rl-set")
        setter.publish("rl/t", b"-1", qos=1, retain=True)
        stop = threading.Event()
        t = _stream(b, "rl-pub", "rl/t", 20, 0.002, stop)
        try:
            for k in range(6):
                s = raw_client(b.port, "rl-sub-%d" % k)
                s.subscribe([("rl/t", 0)])
                first = s.recv_publish(timeout=5)
                check_eq((first.retain, first.payload), (True, b"-1"),
                         "rl-sub-%d: first message" % k)
                last = -1
                for _ in range(200):
                    m = s.recv_publish(timeout=5)
                    v = int(m.payload)
                    check(not m.retain and v > last,
                          "rl-sub-%d: %d (retain %s) after %d"
                          % (k, v, m.retain, last))
                    last = v
                s.close()
        finally:
            stop.set()
            t.join()


def test_subscriber_that_stops_reading_keeps_order_and_recovers():
    """A QoS 0 subscriber with a small socket buffer stops reading while
    3000 messages of 2 kB come (6 MB, more than its queue and socket
    hold): what it gets when it reads again is in order, and once it
    keeps up it gets every message again.  Another subscriber gets
    everything."""
    with Broker() as b:
        slow = RawClient(b.port, rcvbuf=4096, timeout=10)
        slow.connect("stop-slow")
        slow.subscribe([("stop/t", 0)])
        fast = raw_client(b.port, "stop-fast")
        fast.subscribe([("stop/t", 0)])
        pub = RawClient(b.port, timeout=10)
        pub.connect("stop-pub")
        pad = b"x" * 2000
        n = 3000
        got_fast = []

        def read_fast():
            got_fast.extend(int(m[:m.index(b" ")]) for m in
                            (fast.recv_publish(timeout=10).payload
                             for _ in range(n)))

        t = threading.Thread(target=read_fast, daemon=True)
        t.start()
        for i in range(0, n, 50):
            pub.sock.sendall(b"".join(enc_publish("stop/t", b"%d %s" % (k, pad))
                                      for k in range(i, i + 50)))
        pub.ping()
        t.join(30)
        check_eq(got_fast, list(range(n)), "the subscriber that reads")
        got = []
        while True:
            try:
                m = slow.recv_publish(timeout=2)
            except AssertionError:
                break
            got.append(int(m.payload[:m.payload.index(b" ")]))
        check(len(got) > 0, "the slow subscriber got nothing")
        check_eq(got, sorted(set(got)), "slow subscriber: order, no "
                 "duplicates")
        print("slow subscriber got %d of %d" % (len(got), n))
        if IS_RINGMQ:
            # Every message it lost is counted, by a worker (its queue
            # full) or by its frontend (a broadcast delivery that found
            # the connection's queue and socket full).
            t = admin(b).call("stats")["totals"]["drops"]
            check_eq(t["queue_full"], n - len(got), "drops counted")
        # Reading again, it gets the next messages, all of them.
        pub.sock.sendall(b"".join(enc_publish("stop/t", b"%d %s" % (k, pad))
                                  for k in range(n, n + 100)))
        after = []
        while len(after) < 100:
            m = slow.recv_publish(timeout=5)
            after.append(int(m.payload[:m.payload.index(b" ")]))
        check_eq(after, list(range(n, n + 100)), "after it caught up")


def test_mqtt5_options_go_with_each_subscriber():
    """One QoS 0 message to MQTT 5 subscribers whose subscriptions differ
    only in per-subscriber options: each gets its own Subscription
    Identifier, RETAIN as its Retain As Published option says, and a
    subscriber with a smaller Maximum Packet Size does not get it."""
    with Broker() as b:
        a = client5(b.port, "o5-a")
        a.subscribe([("o5/t", sub_opts(0))], props=[(SUBSCRIPTION_ID, 7)])
        r = client5(b.port, "o5-rap")
        r.subscribe([("o5/t", sub_opts(0, retain_as_published=True))],
                    props=[(SUBSCRIPTION_ID, 9)])
        small = client5(b.port, "o5-small",
                        props=[(MAXIMUM_PACKET_SIZE, 40)])
        small.subscribe([("o5/t", sub_opts(0))])
        pub = raw_client(b.port, "o5-pub")
        pub.publish("o5/t", b"y" * 60, qos=0, retain=True)
        m = a.recv_publish()
        check_eq((m.payload, m.retain, m.props.all(SUBSCRIPTION_ID)),
                 (b"y" * 60, False, [7]), "o5-a")
        m = r.recv_publish()
        check_eq((m.retain, m.props.all(SUBSCRIPTION_ID)), (True, [9]),
                 "o5-rap")
        small.expect_nothing(0.5, "a PUBLISH above Maximum Packet Size")


def test_many_subscribers_each_get_every_message_once():
    """300 subscribers over the frontends, 50 QoS 0 messages: each gets
    all 50, in order, once."""
    ringmq_only("spread over frontends: ringmq's process layout")
    with Broker(ringmq_options={"frontends": 2}) as b:
        subs = [raw_client(b.port, "many-%d" % i) for i in range(300)]
        for s in subs:
            s.subscribe([("many/t", 0)])
        pub = RawClient(b.port, timeout=10)
        pub.connect("many-pub")
        pub.sock.sendall(b"".join(enc_publish("many/t", b"%d" % i)
                                  for i in range(50)))
        for s in subs:
            check_eq(_numbers(s, 50, quiet=3), list(range(50)),
                     s.client_id)


def test_queued_subscriber_goes_on_beside_a_busy_broadcast():
    """One subscriber's QoS 1 messages wait for its window (one in
    flight): each PUBACK lets the next one go, while another subscriber
    of the same worker and frontend gets a non-stop QoS 0 stream (which
    ringmq sends in broadcast groups; a drain of the first one's queue
    waits for the groups committed before it).  The first gets all 200,
    in order, in good time; the second's stream stays in order."""
    with Broker({"max_inflight_messages": 1},
                ringmq_options={"frontends": 1, "fanout_workers": 1}) as b:
        a = raw_client(b.port, "busy-a")
        a.subscribe([("busy/a", 1)])
        bsub = raw_client(b.port, "busy-b")
        bsub.subscribe([("busy/b", 0)])
        stop = threading.Event()
        got_b = []

        def read_b():
            while not stop.is_set():
                try:
                    got_b.append(int(bsub.recv_publish(timeout=1).payload))
                except AssertionError:
                    pass

        reader = threading.Thread(target=read_b, daemon=True)
        reader.start()
        threads = [reader, _stream(b, "busy-flood", "busy/b", 10, 0.001,
                                   stop)]
        try:
            pub = RawClient(b.port, timeout=10)
            pub.connect("busy-pub")
            pub.sock.sendall(b"".join(
                enc_publish("busy/a", b"%d" % i, qos=1, pid=i + 1)
                for i in range(200)))
            got_a = [int(a.recv_publish(timeout=5).payload)
                     for _ in range(200)]
            check_eq(got_a, list(range(200)), "busy-a: QoS 1 in order")
        finally:
            stop.set()
            for t in threads:
                t.join()
        check(len(got_b) > 0, "busy-b got nothing")
        check(all(x < y for x, y in zip(got_b, got_b[1:])),
              "busy-b: QoS 0 stream out of order")
