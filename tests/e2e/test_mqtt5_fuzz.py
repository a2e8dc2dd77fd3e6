"""
test_mqtt5_fuzz.py -- mutated MQTT 5 packets against a running broker:
valid CONNECT, PUBLISH, SUBSCRIBE, UNSUBSCRIBE, ack, DISCONNECT and AUTH
packets with properties, bytes flipped, inserted, removed and cut (seeded:
FUZZ_SEED=N replays a run).  What a user relies on: bad input costs only
the connection that sent it (invariant 7): no frontend or worker dies, a
bystander keeps its connection and its messages, and the broker still
serves new clients.  Under `make SAN=1 test` the broker runs with ASan and
UBSan, so an out-of-bounds read in a parser stops the run.
"""

import os
import random
import socket
import time

from harness import Broker, check, check_eq, packet, ringmq_only
from mqtt5_wire import (
    CONTENT_TYPE, CORRELATION_DATA, MESSAGE_EXPIRY, PAYLOAD_FORMAT,
    RECEIVE_MAXIMUM, SESSION_EXPIRY, SUBSCRIPTION_ID, TOPIC_ALIAS,
    USER_PROPERTY, client5, enc_ack5, enc_auth, enc_connect5,
    enc_disconnect5, enc_publish5, enc_subscribe5, enc_unsubscribe5,
    sub_opts)
from test_mqtt5 import _Bystander

ROUNDS = 300


def _packets():
    """A valid v5 packet of every kind a client sends (after CONNECT)."""
    props = [(PAYLOAD_FORMAT, 1), (MESSAGE_EXPIRY, 30),
             (CONTENT_TYPE, "text/plain"), (CORRELATION_DATA, b"\x01\x02"),
             (USER_PROPERTY, ("k", "v")), (TOPIC_ALIAS, 1)]
    return [
        enc_publish5("fz/a", b"payload", qos=1, pid=3, props=props),
        enc_publish5("", b"by alias", qos=0, props=[(TOPIC_ALIAS, 1)]),
        enc_subscribe5(4, [("fz/#", sub_opts(1)), ("$share/g/fz/x",
                                                   sub_opts(2))],
                       props=[(SUBSCRIPTION_ID, 9)]),
        enc_unsubscribe5(5, ["fz/#"], props=[(USER_PROPERTY, ("a", "b"))]),
        enc_ack5(4, 3, 0x10, [(USER_PROPERTY, ("x", "y"))]),
        enc_disconnect5(0x04, [(SESSION_EXPIRY, 0)]),
        enc_auth(0x18, []),
    ]


def _mutate(rng, data):
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(len(b)) if b else 0
        op = rng.randrange(4)
        if op == 0 and b:
            b[at] ^= 1 << rng.randrange(8)
        elif op == 1 and b:
            b[at] = rng.randrange(256)
        elif op == 2:
            b.insert(at, rng.randrange(256))
        elif len(b) > 2:
            del b[at]
    return bytes(b)


def test_mutated_v5_packets_cost_only_their_connection():
    ringmq_only("checks that no ringmq child process dies")
    seed = int(os.environ.get("FUZZ_SEED") or
               int.from_bytes(os.urandom(4), "big"))
    print("fuzz seed %d (replay: FUZZ_SEED=%d)" % (seed, seed))
    rng = random.Random(seed)
    with Broker() as b:
        kids = b.children()
        bys = _Bystander(b, "fz")
        base = _packets()
        closed = 0
        for i in range(ROUNDS):
            c = client5(b.port, "fz-%d" % i,
                        props=[(RECEIVE_MAXIMUM, 5)])
            if rng.random() < 0.2:
                # A mutated CONNECT on a fresh socket instead.
                c.close()
                s = socket.create_connection(("127.0.0.1", b.port), 3)
                s.sendall(_mutate(rng, enc_connect5(
                    "fz-c%d" % i, props=[(SESSION_EXPIRY, 10),
                                         (USER_PROPERTY, ("k", "v"))],
                    will={"topic": "fz/w", "payload": b"w",
                          "props": [(CONTENT_TYPE, "t")]})))
                s.close()
                continue
            for _ in range(rng.randint(1, 3)):
                c.try_send(_mutate(rng, rng.choice(base)))
            # Either the broker answers / keeps going, or it closes: both
            # are fine; a packet of garbage length must not hang it.
            c.try_send(packet(0xC0))  # PINGREQ
            if not c.wait_closed(0.2):
                c.close()
            else:
                closed += 1
            if i % 50 == 49:
                bys.check("%d fuzzed connections" % (i + 1))
        time.sleep(0.3)
        check_eq(b.children(), kids, "children (none may die: seed %d)"
                 % seed)
        bys.check("the whole run")
        fresh = client5(b.port, "fz-after")
        check_eq(fresh.subscribe([("fz/after", sub_opts(1))]), [1],
                 "a new client's SUBACK after the run")
        check(closed > ROUNDS // 10, "only %d of %d fuzzed connections "
              "were closed: are the packets mutated?" % (closed, ROUNDS))
        print("fuzz seed %d: %d connections closed by the broker"
              % (seed, closed))
