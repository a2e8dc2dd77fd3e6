"""
test_admin.py -- ringmq's JSON admin socket and ringmqctl (docs/admin.md):
every command against a running broker with real clients connected, kick
while traffic flows, hostile admin clients (bad JSON, wrong types, an
oversized line, one that sends nothing, one that never reads, many at
once), the socket file's life, and ringmqctl's output and exit codes.
"""

import base64
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time

from harness import (
    Broker, Closed, RawClient, admin, check, check_broker_serves, check_eq,
    enc_publish,
    fail, free_port, raw_client, ringmq_only, ringmqctl, ringmqctl_bin,
    timeout, wait_for)
from mqtt5_wire import PUBLISH, USER_PROPERTY, client5

WHY = "the admin socket is ringmq's"
ISO_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


_wait = wait_for  # harness


def _client_entry(a, client_id):
    """The client's entry in the 'clients' listing, or None."""
    for c in a.call("clients", limit=1000)["clients"]:
        if c["client_id"] == client_id:
            return c
    return None


# ------------------------------------------------------------ the socket

def test_socket_file_mode_and_removal():
    """The socket exists with mode 0660 while the broker runs and is gone
    after SIGTERM."""
    ringmq_only(WHY)
    b = Broker().start()
    st = os.stat(b.admin_socket)
    check(stat.S_ISSOCK(st.st_mode), "admin socket is not a socket")
    check_eq(stat.S_IMODE(st.st_mode), 0o660, "admin socket mode")
    a = admin(b)
    check_eq(a.call("config")["admin_socket"], b.admin_socket,
             "config admin_socket")
    a.close()
    b.stop()
    check(not os.path.exists(b.admin_socket),
          "admin socket still there after the broker stopped")


def test_second_broker_on_same_socket_refused():
    """A second broker configured with a socket a broker answers on exits
    1 and leaves the first one alone; a stale socket file (nobody
    answers) is replaced."""
    ringmq_only(WHY)
    with Broker() as b:
        conf = os.path.join(b.dir, "second.conf")
        with open(conf, "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous true\n"
                    "frontends 1\nfanout_workers 1\nadmin_socket %s\n"
                    % (free_port(), b.admin_socket))
        p = subprocess.run([Broker().command()[0], "-c", conf],
                           stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=10)
        check_eq(p.returncode, 1, "second broker's exit status")
        check(b"in use by another broker" in p.stderr,
              "no 'in use' message: %r" % p.stderr[-300:])
        a = admin(b)
        check_eq(a.call("version")["name"], "ringmq", "first broker serves")
        a.close()

    # A socket file left behind by a broker killed with -9.
    d = tempfile.mkdtemp(prefix="ringmq-e2e-stale-")
    try:
        path = os.path.join(d, "admin.sock")
        s = socket.socket(socket.AF_UNIX)
        s.bind(path)
        s.close()
        check(os.path.exists(path), "stale socket file")
        with Broker(ringmq_options={"admin_socket": path}) as b2:
            a = admin(b2)
            check_eq(a.call("version")["name"], "ringmq", "version")
            a.close()
            check("removed stale admin socket" in b2.log(),
                  "no log line for the stale socket")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_admin_socket_none():
    """admin_socket none: no socket, the broker runs."""
    ringmq_only(WHY)
    with Broker(ringmq_options={"admin_socket": "none"}) as b:
        check(not os.path.exists(os.path.join(b.dir, "admin.sock")),
              "socket created despite admin_socket none")
        check("Admin socket listening" not in b.log(), "socket announced")
        check_broker_serves(b, "without an admin socket")


# ----------------------------------------------------------- read-only

def test_version_config_and_restart_bounds():
    ringmq_only(WHY)
    with Broker(options={"max_inflight_messages": 7}) as b:
        a = admin(b)
        v = a.call("version")
        check_eq(v["name"], "ringmq", "name")
        check(re.match(r"^\d+\.\d+\.\d+$", v["version"]), "version %r" % v)
        check("3.1.1" in v["mqtt"], "mqtt levels %r" % v["mqtt"])
        check_eq(v["pid"], b.proc.pid, "supervisor pid")
        c = a.call("config")
        check_eq(c["listeners"], [{"port": b.port, "address": "127.0.0.1",
                                   "protocol": "mqtt", "tls": False}],
                 "listeners")
        check_eq(c["max_inflight_messages"], 7, "max_inflight_messages")
        check_eq(c["frontends"], 2, "frontends")
        check_eq(c["fanout_workers"], 2, "fanout_workers")
        check_eq(c["config_file"], b.conf_path, "config_file")
        check("debug" in c["log_type"], "log_type all: %r" % c["log_type"])
        r = a.request("restart_worker", index=2)
        check_eq(r["ok"], False, "restart_worker 2")
        check_eq(r["error"]["code"], "not_found", "restart_worker 2 code")
        r = a.request("restart_frontend", index=2)
        check_eq(r["error"]["code"], "not_found", "restart_frontend 2")
        a.close()


@timeout(60)
def test_stats_count_traffic():
    """Counters by QoS, connections, rings, arena, per process."""
    ringmq_only(WHY)
    with Broker() as b:
        sub = raw_client(b.port, "st-sub")
        sub.subscribe([("st/#", 2)])
        pub = raw_client(b.port, "st-pub")
        for qos, n in ((0, 5), (1, 3), (2, 2)):
            for i in range(n):
                pub.publish("st/%d" % qos, b"x" * 10, qos=qos)
        got = sub.recv_publishes(10)
        check_eq(len(got), 10, "deliveries")
        a = admin(b)

        def settled():
            s = a.call("stats")
            t = s["totals"]
            return s if (t["messages_in_qos"] == [5, 3, 2]
                         and t["messages_out_qos"] == [5, 3, 2]) else None
        s = _wait(settled, 3)
        check(s, "stats totals by QoS: %r" % a.call("stats")["totals"])
        t = s["totals"]
        check_eq(t["messages_in"], 10, "messages_in")
        check_eq(t["messages_out"], 10, "messages_out")
        check(t["connections"] >= 2, "connections %r" % t["connections"])
        check(t["bytes_in"] > 100 and t["bytes_out"] > 100, "bytes %r" % t)
        check_eq(set(t["drops"]), {"queue_full", "offline_qos0",
                                   "message_size", "expired",
                                   "too_large_for_client",
                                   "shared_no_member"}, "drop reasons")
        check_eq(set(t["drops"].values()), {0}, "drops %r" % t["drops"])
        check(s["uptime"] >= 0 and ISO_RE.match(s["started"]), "uptime")
        check_eq(len(s["frontends"]), 2, "frontends")
        check_eq(len(s["workers"]), 2, "workers")
        for f in s["frontends"]:
            check_eq(f["restarts"], 0, "restarts")
            check_eq([r["worker"] for r in f["ingest_rings"]], [0, 1],
                     "ingest rings of frontend %d" % f["index"])
            for r in f["ingest_rings"]:
                check(0 <= r["used"] <= r["capacity"], "ring %r" % r)
            check(f["arena"]["size"] > 0, "arena size")
            check(f["pid"] in b.start_pids, "frontend pid %r" % f["pid"])
        for w in s["workers"]:
            check(w["pid"] in b.start_pids, "worker pid %r" % w["pid"])
            check_eq(w["messages_in"], 10, "worker %d messages_in"
                     % w["index"])
        check_eq(sum(w["deliveries_queued"] for w in s["workers"]), 10,
                 "deliveries queued by the workers")
        check(s["arena"]["size"] >= sum(f["arena"]["size"]
                                        for f in s["frontends"]),
              "arena size")
        a.close()


def test_clients_listing_filters_and_paging():
    ringmq_only(WHY)
    with Broker() as b:
        clients = {}
        for i in range(6):
            cid = "cl-%d" % i
            c = RawClient(b.port)
            c.connect(cid, keepalive=30 + i, level=3 if i == 0 else 4)
            clients[cid] = c
        other = raw_client(b.port, "zz-other")
        a = admin(b)
        r = a.call("clients", prefix="cl-")
        check_eq(r["total"], 6, "clients with prefix cl-")
        check_eq(r["offset"], 0, "offset")
        check_eq(r["limit"], 100, "default limit")
        by_id = {c["client_id"]: c for c in r["clients"]}
        check_eq(sorted(by_id), sorted(clients), "client ids")
        for cid, c in clients.items():
            e = by_id[cid]
            check_eq(e["address"], "127.0.0.1:%d" % c.sock.getsockname()[1],
                     cid + " address")
            check_eq(e["frontend"], b.frontend_of(cid), cid + " frontend")
            check_eq(e["protocol"], "3.1" if cid == "cl-0" else "3.1.1",
                     cid + " protocol")
            check_eq(e["keepalive"], 30 + int(cid[3:]), cid + " keepalive")
            check_eq(e["inflight"], 0, cid + " inflight")
            check_eq(e["queued"], 0, cid + " queued")
            check(ISO_RE.match(e["connected_since"]), "connected_since")
        # Everything: 6 + zz-other (the harness's probe disconnected).
        check_eq(a.call("clients")["total"], 7, "all clients")
        # Frontend filter.
        for fe in (0, 1):
            r = a.call("clients", frontend=fe, limit=1000)
            want = sorted(cid for cid in list(clients) + ["zz-other"]
                          if b.frontend_of(cid) == fe)
            check_eq(sorted(c["client_id"] for c in r["clients"]), want,
                     "clients on frontend %d" % fe)
        # Paging: pages of 4 cover everything once.
        seen = []
        for off in (0, 4):
            r = a.call("clients", prefix="cl-", offset=off, limit=4)
            check_eq(r["total"], 6, "total on page %d" % off)
            seen += [c["client_id"] for c in r["clients"]]
        check_eq(sorted(seen), sorted(clients), "pages")
        check_eq(a.call("clients", offset=100)["clients"], [], "past end")
        # A disconnected client leaves the list.
        clients["cl-5"].disconnect()
        check(_wait(lambda: _client_entry(a, "cl-5") is None, 3),
              "cl-5 still listed after DISCONNECT")
        other.ping()
        a.close()


def test_client_and_subscriptions():
    ringmq_only(WHY)
    with Broker() as b:
        c = raw_client(b.port, "cs-a", clean=False)
        c.subscribe([("cs/one", 1), ("cs/+/two", 2)])
        d = raw_client(b.port, "cs-b")
        d.subscribe([("cs/one", 0), ("other/#", 0)])
        a = admin(b)
        r = a.call("client", client_id="cs-a")
        check_eq(r["state"], "connected", "state")
        check_eq(r["connected"], True, "connected")
        check_eq(r["clean_session"], False, "clean_session")
        check_eq(r["frontend"], b.frontend_of("cs-a"), "frontend")
        check_eq(sorted((s["filter"], s["qos"]) for s in r["subscriptions"]),
                 [("cs/+/two", 2), ("cs/one", 1)], "subscriptions")
        check_eq(a.error("client", client_id="nobody"), "not_found",
                 "unknown client")

        allsubs = a.call("subscriptions")
        check_eq(allsubs["total"], 4, "all subscriptions")
        r = a.call("subscriptions", filter="cs/one")
        check_eq(sorted((s["client_id"], s["qos"])
                        for s in r["subscriptions"]),
                 [("cs-a", 1), ("cs-b", 0)], "subscribers of cs/one")
        r = a.call("subscriptions", client_id="cs-b")
        check_eq(sorted(s["filter"] for s in r["subscriptions"]),
                 ["cs/one", "other/#"], "subscriptions of cs-b")
        r = a.call("subscriptions", limit=1, offset=1)
        check_eq((r["total"], len(r["subscriptions"])), (4, 1), "paging")
        check_eq(a.error("subscriptions", client_id="nobody"), "not_found",
                 "subscriptions of an unknown client")
        c.unsubscribe(["cs/one"])
        r = a.call("client", client_id="cs-a")
        check_eq([s["filter"] for s in r["subscriptions"]], ["cs/+/two"],
                 "after UNSUBSCRIBE")

        # Offline: the session and its subscriptions stay.
        c.disconnect()
        r = _wait(lambda: (lambda x: x if x["state"] == "offline" else None)(
            a.call("client", client_id="cs-a")), 3)
        check(r, "cs-a not offline after DISCONNECT")
        check_eq(r["connected"], False, "connected")
        check(ISO_RE.match(r["offline_since"]), "offline_since")
        check_eq(r["address"], None, "address of an offline session")
        check_eq(len(r["subscriptions"]), 1, "offline subscriptions")
        a.close()


def test_retained_list_get_delete():
    ringmq_only(WHY)
    with Broker() as b:
        p = raw_client(b.port, "rt-pub")
        binary = bytes(range(256))
        p.publish("rt/text", "héllo wörld".encode(), qos=1, retain=True)
        p.publish("rt/bin", binary, qos=0, retain=True)
        p.publish("other/t", b"o", qos=2, retain=True)
        a = admin(b)

        def listed():
            r = a.call("retained")
            return r if r["total"] == 3 else None
        r = _wait(listed, 3)
        check(r, "retained list: %r" % a.call("retained"))
        got = {e["topic"]: (e["qos"], e["payload_bytes"])
               for e in r["retained"]}
        check_eq(got, {"rt/text": (1, len("héllo wörld".encode())),
                       "rt/bin": (0, 256), "other/t": (2, 1)}, "list")
        r = a.call("retained", action="list", filter="rt/#")
        check_eq(sorted(e["topic"] for e in r["retained"]),
                 ["rt/bin", "rt/text"], "list with a filter")
        r = a.call("retained", limit=2)
        check_eq((r["total"], len(r["retained"])), (3, 2), "limit")

        r = a.call("retained", action="get", topic="rt/text")
        check_eq(r["payload"], "héllo wörld", "text payload")
        check_eq(r["qos"], 1, "qos")
        check("payload_base64" not in r, "text payload as base64")
        r = a.call("retained", action="get", topic="rt/bin")
        check_eq(base64.b64decode(r["payload_base64"]), binary,
                 "binary payload")
        check_eq(r["payload_bytes"], 256, "payload_bytes")
        check_eq(a.error("retained", action="get", topic="rt/none"),
                 "not_found", "get of nothing")
        check_eq(a.error("retained", action="get", topic="rt/#"),
                 "bad_argument", "get with a wildcard")

        r = a.call("retained", action="delete", topic="rt/text")
        check_eq(r["deleted"], True, "deleted")
        check_eq(a.error("retained", action="get", topic="rt/text"),
                 "not_found", "get after delete")
        check_eq(a.error("retained", action="delete", topic="rt/text"),
                 "not_found", "second delete")
        # Every worker forgot it: a new subscriber gets only rt/bin.
        s = raw_client(b.port, "rt-sub")
        s.subscribe([("rt/#", 0)])
        m = s.recv_publish()
        check_eq((m.topic, m.retain), ("rt/bin", True), "retained left")
        s.expect_nothing(0.5, "deleted retained message delivered")
        a.close()


def test_retained_get_with_long_forwarded_properties():
    """A retained MQTT 5 message whose User Properties take 1.3 MB, more
    than the answer's 1 MiB of payload plus room for a topic, is shown by
    `retained get` (the answer leaves the properties out, so their length
    does not matter), and they still reach a new subscriber whole."""
    ringmq_only(WHY)
    with Broker(options={"max_packet_size": 4 * 1024 * 1024}) as b:
        big = [(USER_PROPERTY, ("k%d" % i, chr(ord("a") + i) * 65000))
               for i in range(20)]
        p = client5(b.port, "rtp-pub")
        p.publish("rtp/t", b"with properties", qos=1, retain=True,
                  props=big)
        a = admin(b)
        r = _wait(lambda: a.call("retained", action="get", topic="rtp/t")
                  if a.call("retained")["total"] == 1 else None, 3)
        check(r, "retained message not listed")
        check_eq((r["payload"], r["payload_bytes"], r["qos"],
                  r["truncated"]), ("with properties", 15, 1, False),
                 "retained get")
        s = client5(b.port, "rtp-sub")
        s.subscribe([("rtp/t", 1)])
        m = s.expect(PUBLISH)
        check_eq((m.payload, m.props.all(USER_PROPERTY)),
                 (b"with properties", [v for _, v in big]),
                 "retained message delivered")
        a.close()


@timeout(60)
def test_retained_list_pages_of_long_topics():
    """A list page holds at most 1 MiB of topics: it ends early, says so,
    and the pages together hold every topic exactly once."""
    ringmq_only(WHY)
    with Broker() as b:
        p = raw_client(b.port, "rtp-pub")
        topics = []
        for i in range(400):
            t = "rtp/%03d/" % i + ("x" * 4000 if i % 4 else "s")
            topics.append(t)
            p.publish(t, b"%d" % i, qos=0, retain=True)
        p.ping()
        a = admin(b)
        check(_wait(lambda: a.call("retained", filter="rtp/#",
                                   limit=1)["total"] == 400, 5),
              "not every retained message stored")
        seen, offset = [], 0
        for _ in range(10):
            r = a.call("retained", filter="rtp/#", offset=offset,
                       limit=1000)
            check_eq(r["total"], 400, "total")
            got = [e["topic"] for e in r["retained"]]
            check(got or offset >= 400, "empty page at offset %d" % offset)
            if offset == 0:
                check(r["truncated"] and len(got) < 400,
                      "first page not cut at 1 MiB: %d entries" % len(got))
            seen += got
            offset += len(got)
            if offset >= 400:
                break
        check_eq(sorted(seen), sorted(topics), "topics over all pages")
        check_eq(a.call("retained", action="get",
                        topic=topics[1])["payload"], "1", "long topic get")
        a.close()


@timeout(60)
def test_sessions_list_and_expire():
    ringmq_only(WHY)
    with Broker() as b:
        c = raw_client(b.port, "ss-a", clean=False)
        c.subscribe([("ss/t", 1), ("ss/u", 1)])
        c.disconnect()
        c.close()
        live = raw_client(b.port, "ss-live", clean=False)
        p = raw_client(b.port, "ss-pub")
        a = admin(b)
        check(_wait(lambda: a.call("sessions")["total"] == 1, 3),
              "offline session not listed: %r" % a.call("sessions"))
        for i in range(3):
            p.publish("ss/t", b"%d" % i, qos=1)
        r = _wait(lambda: (lambda s: s if s["sessions"] and
                           s["sessions"][0]["queued"] == 3 else None)(
            a.call("sessions")), 3)
        check(r, "queued messages: %r" % a.call("sessions"))
        e = r["sessions"][0]
        check_eq(e["client_id"], "ss-a", "client_id")
        check_eq(e["subscriptions"], 2, "subscriptions")
        check(ISO_RE.match(e["offline_since"]), "offline_since")
        check_eq(a.call("sessions", prefix="zz")["total"], 0, "prefix")

        check_eq(a.error("sessions", action="expire", client_id="ss-live"),
                 "not_found", "expire a connected client")
        check_eq(a.error("sessions", action="expire", client_id="nobody"),
                 "not_found", "expire an unknown session")
        r = a.call("sessions", action="expire", client_id="ss-a")
        check_eq(r["session_discarded"], True, "expired")
        check_eq(a.call("sessions")["total"], 0, "sessions after expire")
        check_eq(a.error("client", client_id="ss-a"), "not_found",
                 "client after expire")
        c = RawClient(b.port)
        check_eq(c.connect("ss-a", clean=False), (0, 0),
                 "reconnect after expire (session present, rc)")
        c.expect_nothing(0.5, "queued message of an expired session")
        live.ping()
        a.close()


# ---------------------------------------------------------------- kick

class _Publisher(threading.Thread):
    """Publishes QoS 1 messages with a sequence number until stopped."""

    def __init__(self, port, topic):
        super().__init__(daemon=True)
        self.c = raw_client(port, "kick-pub")
        self.topic = topic
        self.stop_ev = threading.Event()
        self.sent = 0
        self.error = None

    def run(self):
        try:
            while not self.stop_ev.is_set():
                self.c.publish(self.topic, b"%08d" % self.sent, qos=1)
                self.sent += 1
                time.sleep(0.002)
        except BaseException as e:  # noqa: B902 -- reported by the test
            self.error = e

    def finish(self):
        self.stop_ev.set()
        self.join(10)
        check(not self.is_alive(), "publisher did not stop")
        if self.error:
            raise self.error
        check(self.sent > 50, "only %d messages published" % self.sent)


def _seqs(packets):
    return [int(p.payload) for p in packets if p.topic == "kt/data"]


@timeout(60)
def test_kick_while_traffic_flows():
    """kick closes the connection as a server-initiated disconnect (the
    will is published); without discard_session the persistent session
    stays (queued messages arrive in order after reconnecting), with it
    the session is gone.  The publisher never notices."""
    ringmq_only(WHY)
    with Broker() as b:
        will = {"topic": "kt/will", "payload": b"gone", "qos": 1}
        w = raw_client(b.port, "kick-watch")
        w.subscribe([("kt/will", 1)])
        s = raw_client(b.port, "kick-me", clean=False, will=will)
        s.subscribe([("kt/data", 1)])
        pub = _Publisher(b.port, "kt/data")
        pub.start()
        first = s.recv_publishes(20)
        a = admin(b)

        r = a.call("kick", client_id="kick-me")
        check_eq((r["client_id"], r["disconnected"], r["session_discarded"]),
                 ("kick-me", True, False), "kick result")
        s.expect_closed(3, "kicked connection")
        check_eq(w.recv_publish(what="will after kick").payload, b"gone",
                 "will")
        before = _seqs(first) + _seqs([p for p in s.before_close
                                       if p.type == 3])
        check("kicked by the administrator" in b.log(), "no log line")
        # The session stays and collects messages.
        r = _wait(lambda: (lambda x: x if x["state"] == "offline" and
                           x["queued"] > 0 else None)(
            a.call("client", client_id="kick-me")), 3)
        check(r, "session after kick: %r"
              % a.call("client", client_id="kick-me"))
        check_eq(a.error("kick", client_id="kick-me"), "not_found",
                 "kick of an offline client")

        s2 = RawClient(b.port)
        check_eq(s2.connect("kick-me", clean=False, will=will), (1, 0),
                 "reconnect after kick (session present, rc)")
        after = _seqs(s2.recv_publishes(20))
        check(after == sorted(after), "order after kick: %r" % after)
        check(after[0] > before[0], "old messages again: %r %r"
              % (before[:3], after[:3]))

        r = a.call("kick", client_id="kick-me", discard_session=True)
        check_eq((r["disconnected"], r["session_discarded"]), (True, True),
                 "kick with discard")
        s2.expect_closed(3, "kicked connection (discard)")
        check_eq(w.recv_publish(what="will after the second kick").payload,
                 b"gone", "will")
        check(_wait(lambda: a.request("client", client_id="kick-me")["ok"]
                    is False, 3),
              "session still there after kick with discard_session")
        s3 = RawClient(b.port)
        check_eq(s3.connect("kick-me", clean=False), (0, 0),
                 "reconnect after discard (session present, rc)")
        s3.expect_nothing(0.3, "message of the discarded session")
        pub.finish()
        check_eq(a.error("kick", client_id="nobody"), "not_found",
                 "kick of an unknown client")

        # An offline session can be discarded by kick too.
        s3.disconnect()
        check(_wait(lambda: a.call("client", client_id="kick-me")["state"]
                    == "offline", 3), "kick-me not offline")
        r = a.call("kick", client_id="kick-me", discard_session=True)
        check_eq((r["disconnected"], r["session_discarded"]),
                 (False, True), "kick of an offline session with discard")
        check_eq(a.error("client", client_id="kick-me"), "not_found",
                 "after discarding the offline session")
        check_broker_serves(b, "after the kicks")
        a.close()


# ----------------------------------------------------- log_level, reload

def test_log_level_changes_every_process():
    """log_level sets the types of the supervisor, the frontends and the
    workers at once."""
    ringmq_only(WHY)
    with Broker() as b:
        a = admin(b)
        check_eq(a.call("log_level", types="error,warning")["types"],
                 ["error", "warning"], "types")
        mark = b.log_mark()
        raw_client(b.port, "ll-quiet").disconnect()
        time.sleep(0.3)
        check("ll-quiet" not in b.log()[mark:],
              "a frontend still logs notices")
        check_eq(a.call("log_level")["types"], ["error", "warning"],
                 "types read back")
        check_eq(a.call("config")["log_type"], ["error", "warning"],
                 "config log_type")
        a.call("log_level", types=["all"])
        raw_client(b.port, "ll-loud").disconnect()
        check(_wait(lambda: "ll-loud" in b.log(), 3),
              "no notice after log_level all")
        check_eq(a.error("log_level", types="loud"), "bad_argument",
                 "unknown type")
        check_eq(a.call("log_level", types="none")["types"], [], "none")
        a.call("log_level", types="all")
        a.close()


def test_reload_and_sighup():
    ringmq_only(WHY)
    with Broker() as b:
        a = admin(b)
        with open(b.conf_path) as f:
            orig = f.read()
        conf = re.sub(r"(?m)^log_type all$", "log_type error\nlog_type "
                      "warning", orig)
        conf += "max_inflight_messages 3\npersistence false\n"
        with open(b.conf_path, "w") as f:
            f.write(conf)
        r = a.call("reload")
        check_eq(r["applied"], ["log_type"], "applied")
        check_eq(r["needs_restart"], ["max_inflight_messages"],
                 "needs_restart")
        check(any("persistence" in m for m in r["messages"]),
              "parser messages: %r" % r["messages"])
        check_eq(a.call("log_level")["types"], ["error", "warning"],
                 "types after reload")
        check_eq(a.call("config")["max_inflight_messages"], 20,
                 "the running max_inflight_messages")

        with open(b.conf_path, "w") as f:
            f.write(conf + "no_such_key 1\n")
        r = a.request("reload")
        check_eq(r["error"]["code"], "config_error", "bad file")
        check("no_such_key" in r["error"]["message"], "message %r" % r)
        check_eq(a.call("log_level")["types"], ["error", "warning"],
                 "nothing changed after a bad reload")

        with open(b.conf_path, "w") as f:
            f.write(orig)
        b.proc.send_signal(signal.SIGHUP)
        check(_wait(lambda: "debug" in a.call("log_level")["types"], 3),
              "SIGHUP did not reload the log types")
        check("reload of %s" % b.conf_path in b.log(), "no reload log line")
        a.close()


def test_reload_names_every_changed_key():
    """Every key a reload cannot apply is named under needs_restart, and
    `config` shows its running value (these five were once left out of
    both)."""
    ringmq_only(WHY)
    with Broker() as b:
        a = admin(b)
        before = a.call("config")
        check_eq((before["max_qos"], before["max_topic_alias"],
                  before["max_topic_alias_broker"],
                  before["write_coalesce_ms"],
                  before["response_information"]),
                 (2, 10, 10, 10, None), "config before the reload")
        with open(b.conf_path, "a") as f:
            f.write("max_qos 1\nmax_topic_alias 0\nmax_topic_alias_broker 0\n"
                    "write_coalesce_ms 0\nresponse_information resp/\n")
        r = a.call("reload")
        check_eq(sorted(r["needs_restart"]),
                 ["max_qos", "max_topic_alias", "max_topic_alias_broker",
                  "response_information", "write_coalesce_ms"],
                 "needs_restart")
        check_eq(a.call("config")["max_qos"], 2, "the running max_qos")
        a.close()


def test_reload_error_after_many_warnings():
    """The line a reload fails on is reported even when the parser printed
    more than the capture holds before it."""
    ringmq_only(WHY)
    with Broker() as b:
        a = admin(b)
        with open(b.conf_path, "a") as f:
            f.write("persistence true\n" * 300 + "max_keepalive abc\n")
        r = a.request("reload")
        check_eq(r["error"]["code"], "config_error", "error code")
        check("abc" in r["error"]["message"],
              "the fatal line in the error: %r" % r["error"]["message"])
        check("max_keepalive" in a.call("config") and
              a.call("config")["max_keepalive"] == 65535,
              "nothing changed")
        a.close()


def test_reload_keeps_a_whole_first_line():
    """When the window of parser output a reload keeps begins exactly at a
    line, that line is kept (the byte before the window says so)."""
    ringmq_only(WHY)
    keep = 8191  # SUP_CAPTURE_MAX - 1 bytes of the end are kept
    broker_bin = os.path.join(os.path.dirname(ringmqctl_bin()), "ringmq")
    with Broker() as b:
        a = admin(b)
        with open(b.conf_path) as f:
            orig = f.read()
        # Vary the fatal line's length until the window starts at a line.
        for bad in range(1, 200):
            conf = (orig + "persistence true\n" * 200 +
                    "max_keepalive %s\n" % ("x" * bad))
            with open(b.conf_path, "w") as f:
                f.write(conf)
            # The same parser, run directly, prints the same text.
            out = subprocess.run([broker_bin, "-c", b.conf_path],
                                 capture_output=True, timeout=10).stderr
            start = len(out) - keep
            if start > 0 and out[start - 1:start] == b"\n":
                break
        else:
            fail("no fatal line length puts the window at a line start")
        first = out[start:].split(b"\n")[0].decode()
        check(first.startswith("ringmq: "), "a parser line: %r" % first)
        r = a.request("reload")
        check_eq(r["error"]["code"], "config_error", "error code")
        with open(b.conf_path, "w") as f:
            f.write(orig + "persistence true\n" * 200)
        # The messages of a failed reload are logged: the first one kept.
        check(_wait(lambda: "reload: " + first[len("ringmq: "):] in b.log(),
                    3), "the whole first line of the window is logged")
        a.close()


# ------------------------------------------------------------- shutdown

def test_shutdown():
    ringmq_only(WHY)
    b = Broker().start()
    c = raw_client(b.port, "sd-client")
    a = admin(b)
    t0 = time.monotonic()
    check_eq(a.call("shutdown"), {"stopping": True}, "shutdown result")
    try:
        rc = b.proc.wait(5)
    except subprocess.TimeoutExpired:
        fail("broker still running 5 s after shutdown")
    took = time.monotonic() - t0
    b._cleanup()
    check_eq(rc, 0, "exit status after shutdown")
    check(took < 5, "shutdown took %.1f s" % took)
    check(not os.path.exists(b.admin_socket), "socket left behind")
    c.expect_closed(2, "client connection after shutdown")
    a.close()


# -------------------------------------------------------- hostile clients

def test_bad_requests_get_errors_and_the_connection_stays():
    ringmq_only(WHY)
    with Broker() as b:
        mqtt = raw_client(b.port, "hb-client")
        a = admin(b)
        cases = [
            (b"this is not json", "bad_json"),
            (b"{\"cmd\": \"version\"", "bad_json"),
            (b"\xff\xfe\x00", "bad_json"),
            (b"[1, 2, 3]", "bad_request"),
            (b"{\"id\": 5}", "bad_request"),
            (b"{\"cmd\": 42}", "bad_request"),
            (b"{\"cmd\": \"frobnicate\"}", "unknown_command"),
            (b"{\"cmd\": \"clients\", \"limit\": \"10\"}", "bad_argument"),
            (b"{\"cmd\": \"clients\", \"limit\": -1}", "bad_argument"),
            (b"{\"cmd\": \"clients\", \"limit\": 5000}", "bad_argument"),
            (b"{\"cmd\": \"kick\", \"client_id\": 7}", "bad_argument"),
            (b"{\"cmd\": \"kick\"}", "bad_argument"),
            (b"{\"cmd\": \"kick\", \"client_id\": \"x\", "
             b"\"discard_session\": \"yes\"}", "bad_argument"),
            (b"{\"cmd\": \"version\", \"extra\": 1}", "bad_argument"),
            (b"{\"cmd\": \"retained\", \"action\": \"get\"}",
             "bad_argument"),
            (b"{\"cmd\": \"client\", \"client_id\": \"\\ud800\"}",
             "bad_json"),
            (b"{\"cmd\": \"client\", \"client_id\": \"a\xc3\"}",
             "bad_argument"),
        ]
        for line, code in cases:
            a.send_raw(line + b"\n")
            r = a.read_line()
            check_eq(r["ok"], False, "ok for %r" % line)
            check_eq(r["error"]["code"], code, "code for %r" % line)
            check(r["error"]["message"], "message for %r" % line)
        # The id comes back even with an error.
        a.send_raw(b"{\"cmd\": \"nope\", \"id\": [\"x\", 1]}\n")
        check_eq(a.read_line()["id"], ["x", 1], "id of an error")
        # Several requests in one write, CRLF, blank lines.
        a.send_raw(b"{\"cmd\":\"version\",\"id\":1}\r\n\n"
                   b"{\"cmd\":\"version\",\"id\":2}\n")
        check_eq([a.read_line()["id"], a.read_line()["id"]], [1, 2],
                 "pipelined ids")
        check_eq(a.call("version")["name"], "ringmq", "still serving")
        a.close()
        mqtt.ping()
        check_broker_serves(b, "after bad admin requests")


def test_oversized_line_error_then_close():
    ringmq_only(WHY)
    with Broker() as b:
        for tail in (b"", b"\n"):
            a = admin(b)
            try:
                a.send_raw(b"{\"cmd\":\"version\",\"pad\":\""
                           + b"x" * 70000 + b"\"}" + tail)
            except (BrokenPipeError, ConnectionResetError):
                pass
            r = a.read_line()
            check_eq(r["error"]["code"], "line_too_long", "code")
            try:
                extra = a.read_line(timeout=3)
                fail("response after line_too_long: %r" % extra)
            except Closed:
                pass
            a.close()
        a = admin(b)
        check_eq(a.call("version")["name"], "ringmq", "next client served")
        a.close()


@timeout(120)
def test_silent_client_closed_after_idle_timeout():
    """An admin client that connects and sends nothing costs nothing: the
    broker and other admin clients carry on, and it is closed after 60 s
    without a request.  So is one that trickles a line byte by byte."""
    ringmq_only(WHY)
    with Broker() as b:
        idle = admin(b)
        slow = admin(b)
        t0 = time.monotonic()
        a = admin(b)
        c = raw_client(b.port, "idle-check")
        while time.monotonic() - t0 < 50:
            check_eq(a.call("version")["name"], "ringmq", "other client")
            c.ping()
            slow.send_raw(b" ")  # never a newline
            time.sleep(5)
        for who in (idle, slow):
            who.sock.settimeout(75 - (time.monotonic() - t0))
            try:
                data = who.sock.recv(100)
            except socket.timeout:
                fail("idle admin client not closed within 75 s")
            took = time.monotonic() - t0
            check_eq(data, b"", "data sent to an idle client")
            check(58 <= took <= 75, "closed after %.1f s" % took)
        check("sent no request for 60 s" in b.log(), "no log line")
        check_eq(a.call("version")["name"], "ringmq", "after the close")
        a.close()


@timeout(90)
def test_client_that_never_reads_is_closed():
    """A client that sends requests and never reads its answers is closed
    once more than 4 MiB wait for it; nobody else waits meanwhile."""
    ringmq_only(WHY)
    with Broker() as b:
        mqtt = [raw_client(b.port, "nr-%d" % i) for i in range(20)]
        hog = socket.socket(socket.AF_UNIX)
        hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        hog.connect(b.admin_socket)
        req = b"{\"cmd\":\"stats\"}\n"
        sent = 0
        errors = []

        def flood():
            nonlocal sent
            try:
                for _ in range(4000):
                    hog.sendall(req * 10)
                    sent += 10
            except OSError as e:  # the broker closed it: expected
                errors.append(e)
        t = threading.Thread(target=flood, daemon=True)
        t.start()
        a = admin(b)
        t_end = time.monotonic() + 60
        while t.is_alive() and time.monotonic() < t_end:
            t1 = time.monotonic()
            check_eq(a.call("version")["name"], "ringmq", "other client")
            check(time.monotonic() - t1 < 2, "other client waited")
            time.sleep(0.2)
        t.join(5)
        check(not t.is_alive(), "flooding client never stopped")
        check(_wait(lambda: "does not read its responses" in b.log(), 5),
              "no log line about the client that does not read")
        # What it can still read ends: bounded, then EOF.
        total, lines = 0, 0
        hog.settimeout(10)
        try:
            while True:
                d = hog.recv(1 << 20)
                if not d:
                    break
                total += len(d)
                lines += d.count(b"\n")
        except (ConnectionResetError, socket.timeout):
            pass
        hog.close()
        check(total < 8 << 20, "%d bytes queued for a client that does not "
                               "read" % total)
        check(lines < sent, "every one of %d requests answered" % sent)
        check_eq(a.call("version")["name"], "ringmq", "after")
        check_eq(a.call("clients", prefix="nr-")["total"], 20, "clients")
        for c in mqtt:
            c.ping()
        check_broker_serves(b, "after the flood")
        a.close()


@timeout(60)
def test_pipelined_requests_do_not_starve_others():
    """A client that sends hundreds of slot-table scans in one go gets
    them all answered, in order, while another client's request is
    answered at once."""
    ringmq_only(WHY)
    with Broker() as b:
        mqtt = raw_client(b.port, "pipe-client")
        hog = admin(b)
        n = 400
        hog.send_raw(b"".join(b"{\"cmd\":\"clients\",\"id\":%d}\n" % i
                              for i in range(n)))
        a = admin(b)
        worst = 0.0
        for _ in range(5):
            t1 = time.monotonic()
            check_eq(a.call("version")["name"], "ringmq", "other client")
            worst = max(worst, time.monotonic() - t1)
        check(worst < 1.0, "other client waited %.2f s" % worst)
        ids = [hog.read_line(timeout=30)["id"] for _ in range(n)]
        check_eq(ids, list(range(n)), "answers in request order")
        mqtt.ping()
        a.close()
        hog.close()


@timeout(60)
def test_many_admin_clients_at_once():
    """20 admin clients work at once; past 32 a client gets 'busy'."""
    ringmq_only(WHY)
    with Broker() as b:
        mqtt = []
        for i in range(5):
            mqtt.append(raw_client(b.port, "many-%d" % i))
            mqtt[-1].subscribe([("m/%d" % i, 1)])
        clients = [admin(b) for _ in range(20)]
        errors = []

        def work(a, k):
            try:
                for j in range(10):
                    check_eq(a.call("clients", prefix="many-")["total"], 5,
                             "clients")
                    check_eq(len(a.call("stats")["frontends"]), 2, "stats")
                    check_eq(a.call("subscriptions")["total"], 5, "subs")
                    r = a.request("retained", action="get",
                                  topic="m/%d/%d" % (k, j))
                    check_eq(r["error"]["code"], "not_found", "retained")
            except BaseException as e:  # noqa: B902
                errors.append(e)
        threads = [threading.Thread(target=work, args=(a, k))
                   for k, a in enumerate(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        check(not any(t.is_alive() for t in threads), "admin clients hung")
        if errors:
            raise errors[0]
        more = [admin(b) for _ in range(12)]  # 32 in all
        over = admin(b)
        r = over.read_line()
        check_eq(r["error"]["code"], "busy", "33rd client")
        for a in clients + more:
            a.close()
        over.close()

        def served():
            a = admin(b)
            a.send_raw(b"{\"cmd\":\"version\"}\n")
            r = a.read_line()
            a.close()
            return r["ok"]  # busy until the broker has seen the closes
        check(_wait(served, 3, step=0.1), "no admin client served after "
              "the others left")
        for c in mqtt:
            c.ping()


# ------------------------------------------------------------- ringmqctl

def test_ringmqctl_output_and_exit_codes():
    ringmq_only(WHY)
    check(os.access(ringmqctl_bin(), os.X_OK),
          "%s not built" % ringmqctl_bin())
    with Broker() as b:
        s = ["-s", b.admin_socket]
        c = raw_client(b.port, "ctl-client", keepalive=42)
        c.subscribe([("ctl/t", 1)])
        rc, out, err = ringmqctl(s + ["version"])
        check_eq(rc, 0, "version exit status (%s)" % err)
        check(re.match(r"^ringmq \d+\.\d+\.\d+ ", out), "version: %r" % out)

        rc, out, err = ringmqctl(s + ["clients", "limit=10"])
        check_eq(rc, 0, "clients exit status (%s)" % err)
        lines = out.splitlines()
        check(lines[0].split()[:3] == ["CLIENT_ID", "ADDRESS", "FE"],
              "clients header: %r" % lines[0])
        row = [ln for ln in lines if ln.startswith("ctl-client ")]
        check(row and " 42 " in row[0], "clients row: %r" % out)
        check("(1 of 1 clients)" in out, "clients footer: %r" % out)

        rc, out, err = ringmqctl(s + ["--json", "clients"])
        check_eq(rc, 0, "--json exit status")
        r = json.loads(out)
        check_eq([x["client_id"] for x in r["clients"]], ["ctl-client"],
                 "--json clients")

        rc, out, err = ringmqctl(s + ["client", "client_id=ctl-client"])
        check_eq(rc, 0, "client exit status (%s)" % err)
        check("ctl/t" in out and "keepalive        42" in out,
              "client: %r" % out)
        for args in (["stats"], ["subscriptions"], ["sessions"],
                     ["retained"], ["config"], ["log_level"], ["reload"]):
            rc, out, err = ringmqctl(s + args)
            check_eq(rc, 0, "%s exit status (%s)" % (args, err))
            check(out.strip(), "%s printed nothing" % args)
        rc, out, _ = ringmqctl(s + ["config"])
        check("listener %d 127.0.0.1" % b.port in out, "config: %r" % out)

        # Failed commands: exit 1, the error on stderr.
        rc, out, err = ringmqctl(s + ["clients", "limit=ten"])
        check_eq(rc, 1, "bad argument exit status")
        check("bad_argument" in err, "stderr: %r" % err)
        rc, out, err = ringmqctl(s + ["client", "client_id=nobody"])
        check_eq(rc, 1, "not found exit status")
        check("not_found" in err, "stderr: %r" % err)
        rc, out, err = ringmqctl(s + ["--json", "frobnicate"])
        check_eq(rc, 1, "unknown command exit status")
        check_eq(json.loads(out)["code"], "unknown_command", "--json error")
        rc, out, err = ringmqctl(s + ["restart_worker", "index=7"])
        check_eq(rc, 1, "restart_worker exit status")
        check("not_found" in err, "stderr: %r" % err)
        rc, out, err = ringmqctl(s + ["clients", "limit"])
        check_eq(rc, 2, "usage error exit status")

        rc, out, err = ringmqctl(s + ["retained", "get", "topic=ctl/none"])
        check_eq(rc, 1, "retained get of nothing")
        rc, out, err = ringmqctl(s + ["kick", "client_id=ctl-client"])
        check_eq(rc, 0, "kick exit status (%s)" % err)
        check("ctl-client disconnected" in out, "kick: %r" % out)
        c.expect_closed(3, "connection kicked by ringmqctl")

        # Cannot connect: exit 2 with a clear message.
        missing = os.path.join(b.dir, "missing.sock")
        rc, out, err = ringmqctl(["-s", missing, "version"])
        check_eq(rc, 2, "missing socket exit status")
        check("no broker listening at %s (is admin_socket set?)" % missing
              in err, "missing socket: %r" % err)
        rc, out, err = ringmqctl(["-p", "1", "version"])
        check_eq(rc, 2, "-p exit status")
        check("/tmp/ringmq-1.sock" in err, "-p path: %r" % err)

        # Permission denied.
        if os.geteuid() == 0:
            setpriv = shutil.which("setpriv")
            if setpriv:
                p = subprocess.run(
                    [setpriv, "--reuid=65534", "--regid=65534",
                     "--clear-groups", ringmqctl_bin()] + s + ["version"],
                    capture_output=True, timeout=15)
                check_eq(p.returncode, 2, "permission denied exit status")
                check(b"permission denied" in p.stderr,
                      "permission denied: %r" % p.stderr)
        else:
            os.chmod(b.admin_socket, 0)
            try:
                rc, out, err = ringmqctl(s + ["version"])
            finally:
                os.chmod(b.admin_socket, 0o660)
            check_eq(rc, 2, "permission denied exit status")
            check("permission denied" in err, "permission denied: %r" % err)


@timeout(40)
def test_ringmqctl_times_out():
    """Something that accepts and never answers: exit 2 after 10 s."""
    ringmq_only(WHY)
    d = tempfile.mkdtemp(prefix="ringmq-e2e-ctl-")
    try:
        path = os.path.join(d, "mute.sock")
        srv = socket.socket(socket.AF_UNIX)
        srv.bind(path)
        srv.listen(1)
        t0 = time.monotonic()
        rc, out, err = ringmqctl(["-s", path, "version"], timeout=30)
        took = time.monotonic() - t0
        srv.close()
        check_eq(rc, 2, "exit status")
        check("no answer" in err, "stderr: %r" % err)
        check(9 <= took <= 15, "gave up after %.1f s" % took)
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ------------------------------------------------------ restart_frontend

class _RsSub(threading.Thread):
    """A persistent QoS 1 subscriber that acknowledges every message,
    records sequence numbers, and reconnects at once (same id, clean 0,
    same will) when the broker closes its connection; .fe follows the
    frontend it is on (from the log)."""

    def __init__(self, b, cid, will):
        super().__init__(daemon=True, name=cid)
        self.b, self.cid, self.will = b, cid, will
        self.c = raw_client(b.port, cid, clean=False, will=will)
        self.fe = b.frontend_of(cid)
        self.c.subscribe([("rs/data", 1)])
        self.seqs = []
        self.disconnects = 0
        self.reconnects = []  # (session_present, fe)
        self.error = None
        self.stop_ev = threading.Event()

    def run(self):
        try:
            while not self.stop_ev.is_set():
                try:
                    p = self.c.read(0.1)
                except (Closed, OSError):
                    if self.stop_ev.is_set():
                        return
                    self.disconnects += 1
                    self.c.close()
                    mark = self.b.log_mark()
                    deadline = time.monotonic() + 10
                    while True:
                        try:
                            self.c = RawClient(self.b.port)
                            sp, _ = self.c.connect(self.cid, clean=False,
                                                   will=self.will)
                            break
                        except (OSError, Closed, AssertionError):
                            self.c.close()
                            if time.monotonic() > deadline:
                                raise
                            time.sleep(0.05)
                    self.fe = self.b.frontend_of(self.cid, since=mark)
                    self.reconnects.append((sp, self.fe))
                    continue
                if p is None:
                    continue
                check_eq(p.type, 3, "%s: packet type" % self.cid)
                self.c.ack(p)
                self.seqs.append(int(p.payload))
        except BaseException as e:  # noqa: B902 -- reported by the test
            self.error = e

    def finish(self):
        self.stop_ev.set()
        self.join(10)
        check(not self.is_alive(), "%s did not stop" % self.cid)
        if self.error:
            raise self.error
        self.c.disconnect()
        self.c.close()


class _RsPub(threading.Thread):
    """Publishes QoS 1 sequence numbers on rs/data (persistent session);
    when the broker closes the connection (its frontend restarts), it
    reconnects and re-sends the unacknowledged PUBLISH with DUP."""

    def __init__(self, b):
        super().__init__(daemon=True)
        self.b = b
        self.c = raw_client(b.port, "rs-pub", clean=False)
        self.sent = 0
        self.disconnects = 0
        self.error = None
        self.stop_ev = threading.Event()

    def run(self):
        try:
            while not self.stop_ev.is_set():
                payload = b"%08d" % self.sent
                pid = self.c.pid()
                dup = False
                while True:
                    try:
                        self.c.send(enc_publish("rs/data", payload, 1, pid,
                                                dup=dup))
                        p = self.c.read(5)
                        check(p is not None and p.type == 4 and
                              p.pid == pid, "rs-pub: PUBACK %d: %r"
                              % (pid, p))
                        break
                    except (Closed, OSError):
                        self.disconnects += 1
                        self.c.close()
                        time.sleep(0.02)
                        nxt = self.c.next_pid
                        self.c = RawClient(self.b.port)
                        self.c.next_pid = nxt
                        check_eq(self.c.connect("rs-pub", clean=False)[0], 1,
                                 "rs-pub: session present on reconnect")
                        dup = True
                self.sent += 1
                time.sleep(0.005)
        except BaseException as e:  # noqa: B902 -- reported by the test
            self.error = e

    def finish(self):
        self.stop_ev.set()
        self.join(15)
        check(not self.is_alive(), "publisher did not stop")
        if self.error:
            raise self.error
        self.c.disconnect()
        self.c.close()


@timeout(60)
def test_restart_frontend():
    """
    restart_frontend (admin socket for frontend 0, ringmqctl for frontend
    1 later) while a QoS 1 publisher streams to a persistent subscriber on
    each frontend.  What an operator relies on: the answer says it is
    restarting; the frontend comes back with a new pid and stats count the
    restart; its clients are disconnected cleanly (no will) and, on
    reconnect, find their session and every QoS 1 message; clients of the
    other frontend see no disconnect.
    """
    ringmq_only(WHY)
    with Broker() as b:
        a = admin(b)
        will = {"topic": "rs/will", "payload": b"will", "qos": 1}
        # Persistent: its own frontend restarts too.
        watch = raw_client(b.port, "rs-watch", clean=False)
        watch.subscribe([("rs/will", 1)])
        subs = {}
        for i in range(40):
            s = _RsSub(b, "rs-sub-%d" % i, will)
            if s.fe in subs:
                s.c.disconnect()
                s.c.close()
                raw_client(b.port, s.cid, clean=True).disconnect()
                continue
            subs[s.fe] = s
            if len(subs) == 2:
                break
        check_eq(sorted(subs), [0, 1], "subscribers' frontends")
        for s in subs.values():
            s.start()
        pub = _RsPub(b)
        pub.start()
        time.sleep(0.5)

        def restart(fe, how):
            on_it = [s for s in subs.values() if s.fe == fe]
            others = [s for s in subs.values() if s.fe != fe]
            before = {s.cid: s.disconnects for s in subs.values()}
            n0 = pub.sent
            old = b.expect_restart("frontend", fe)
            if how == "admin":
                check_eq(a.call("restart_frontend", index=fe),
                         {"role": "frontend", "index": fe,
                          "restarting": True}, "restart_frontend result")
            else:
                rc, out, err = ringmqctl(["-s", b.admin_socket,
                                          "restart_frontend",
                                          "index=%d" % fe])
                check_eq(rc, 0, "ringmqctl restart_frontend exit status "
                         "(%s%s)" % (out, err))
            new = b.wait_child("frontend", fe, old, timeout=10)
            check(new != old, "frontend %d pid unchanged" % fe)
            for s in on_it:
                check(_wait(lambda: s.disconnects > before[s.cid], 5),
                      "%s on frontend %d not disconnected by its restart"
                      % (s.cid, fe))
            check(_wait(lambda: pub.sent > n0 + 100, 10),
                  "publishing stalled after restart of frontend %d" % fe)
            for s in others:
                check_eq(s.disconnects, before[s.cid],
                         "%s (frontend %d) disconnects during restart of "
                         "frontend %d" % (s.cid, s.fe, fe))
            return old, new

        old0, new0 = restart(0, "admin")
        st = {f["index"]: f for f in a.call("stats")["frontends"]}
        check_eq((st[0]["pid"], st[0]["restarts"]), (new0, 1),
                 "frontend 0 (pid, restarts) in stats")
        check_eq(st[1]["restarts"], 0, "frontend 1 restarts in stats")
        time.sleep(0.5)
        old1, new1 = restart(1, "ringmqctl")
        st = {f["index"]: f for f in a.call("stats")["frontends"]}
        check_eq([(st[i]["pid"], st[i]["restarts"]) for i in (0, 1)],
                 [(new0, 1), (new1, 1)], "frontends (pid, restarts)")
        time.sleep(0.3)
        pub.finish()
        ok = _wait(lambda: all(set(range(pub.sent)) <= set(s.seqs)
                               for s in subs.values()), 10)
        for s in subs.values():
            s.finish()
            missing = sorted(set(range(pub.sent)) - set(s.seqs))
            check(ok or not missing, "%s: %d of %d QoS 1 messages missing: "
                  "%r" % (s.cid, len(missing), pub.sent, missing[:20]))
            firsts, seen = [], set()
            for q in s.seqs:   # publisher re-sends may repeat one
                if q not in seen:
                    seen.add(q)
                    firsts.append(q)
            check_eq(firsts, list(range(pub.sent)), "%s: order" % s.cid)
            check(s.reconnects and all(sp == 1 for sp, _ in s.reconnects),
                  "%s: reconnects (session present, fe) %r"
                  % (s.cid, s.reconnects))
        got = []
        try:
            while True:
                p = watch.read(0.3)
                if p is None:
                    break
                got.append(p)
        except Closed:
            pass
        watch.close()
        watch = RawClient(b.port)
        check_eq(watch.connect("rs-watch", clean=False), (1, 0),
                 "watcher's reconnect (session present, rc)")
        watch.expect_nothing(0.5, "will queued by a graceful restart")
        check_eq(got, [], "will published by a graceful restart")
        watch.disconnect()
        log = b.log()
        for fe, old in ((0, old0), (1, old1)):
            check("frontend %d: restart asked by the administrator" % fe
                  in log, "no log line for the restart of frontend %d" % fe)
            check("frontend %d (pid %d) exited with status 0" % (fe, old)
                  in log, "frontend %d did not exit cleanly" % fe)
        a.close()
        print("published %d; reconnects %s; publisher disconnects %d"
              % (pub.sent, {s.cid: s.reconnects for s in subs.values()},
                 pub.disconnects))
