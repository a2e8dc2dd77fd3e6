"""
test_scale.py -- fan-out at scale: one publisher, 1000 subscribers spread over
both frontends, at QoS 0, 1 and 2; every subscriber gets every message
exactly once and in order.
"""

import asyncio
import time

from harness import (
    IS_RINGMQ, AsyncClient, Broker, check, check_eq, timeout)

SUBSCRIBERS = 1000
MESSAGES = 20  # per QoS level
CONNECT_BATCH = 100


async def _scale(port):
    subs = [AsyncClient("scale-%04d" % i) for i in range(SUBSCRIBERS)]

    async def connect(c):
        await c.connect(port, timeout=20)
        codes = await c.subscribe([("scale/t", 2)], timeout=20)
        check_eq(codes, [2], "%s SUBACK" % c.client_id)

    t0 = time.monotonic()
    for i in range(0, SUBSCRIBERS, CONNECT_BATCH):
        await asyncio.gather(*(connect(c) for c in
                               subs[i:i + CONNECT_BATCH]))
    t_conn = time.monotonic() - t0

    pub = AsyncClient("scale-pub")
    await pub.connect(port)
    phases = []
    for q in (0, 1, 2):
        want = [b"q%d-%02d" % (q, i) for i in range(MESSAGES)]

        async def receive(c, q=q, want=want):
            got = []
            for _ in range(MESSAGES):
                m = await c.recv_publish(timeout=30)
                if m.qos != q:
                    return "%s: qos %d message %r arrived at qos %d" % (
                        c.client_id, q, m.payload, m.qos)
                got.append(m.payload)
            await c.finish_qos2(timeout=30)
            if got != want:
                return "%s: qos %d got %r" % (c.client_id, q, got)
            return None

        t1 = time.monotonic()
        readers = [asyncio.ensure_future(receive(c)) for c in subs]
        for payload in want:
            await pub.publish("scale/t", payload, qos=q, timeout=30)
        errors = [e for e in await asyncio.gather(*readers) if e]
        check(not errors, "%d of %d subscribers wrong, e.g. %s"
              % (len(errors), SUBSCRIBERS, errors[:3]))
        phases.append(time.monotonic() - t1)

    # Nothing more: no duplicate arrives late.
    async def quiet(c):
        try:
            p = await asyncio.wait_for(c.reader.read(1), 0.5)
        except asyncio.TimeoutError:
            return None
        return "%s: extra bytes %r" % (c.client_id, p)
    extra = [e for e in await asyncio.gather(*(quiet(c) for c in subs[:50]))
             if e]
    check(not extra, "late extra data: %s" % extra[:3])

    await asyncio.gather(*(c.disconnect() for c in subs + [pub]))
    return t_conn, phases


async def _burst(port, n):
    """Opens n connections at once, each sending CONNECT at once; returns
    the ids that got no CONNACK 0 within 5 s."""
    async def one(i):
        c = AsyncClient("burst-%04d" % i)
        try:
            await c.connect(port, timeout=5)
            return c, None
        except (AssertionError, OSError):
            return c, c.client_id
    res = await asyncio.gather(*(one(i) for i in range(n)))
    for c, _ in res:
        if c.writer is not None:
            c.writer.close()
    return [cid for _, cid in res if cid]


def test_connect_burst():
    """200 clients connecting at the same moment all get their CONNACK."""
    with Broker() as b:
        missing = asyncio.run(_burst(b.port, 200))
        check(not missing, "%d of 200 concurrent clients got no CONNACK "
              "within 5 s, e.g. %s" % (len(missing), missing[:5]))


@timeout(120)
def test_fanout_1000_subscribers_qos012():
    with Broker() as b:
        t_conn, phases = asyncio.run(_scale(b.port))
        print("connect+subscribe %d clients: %.1f s; qos 0/1/2 phases: %s"
              % (SUBSCRIBERS, t_conn, ", ".join("%.1f s" % p
                                               for p in phases)))
        if IS_RINGMQ:
            per_fe = {}
            for cid, f in b.connections():
                if cid.startswith("scale-") and cid != "scale-pub":
                    per_fe[f["fe"]] = per_fe.get(f["fe"], 0) + 1
            print("subscribers per frontend: %s" % per_fe)
            check_eq(sum(per_fe.values()), SUBSCRIBERS,
                     "subscriber connections in the log")
            check(len(per_fe) >= 2 and min(per_fe.values()) > 0,
                  "subscribers per frontend: %s" % per_fe)
