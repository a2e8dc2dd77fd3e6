/*
 * fe_deliver.c -- from a client's output ring to its socket queue: the
 * per-subscriber PUBLISH header (first byte, remaining length, packet id)
 * is built small; topic and payload go out of the arena by reference.
 */
#include <string.h>

#include "crashpoint.h"
#include "fe.h"
#include "log.h"
#include "mem.h"

/* The per-subscriber part of a PUBLISH to c: its properties for MQTT 5
 * (remaining Message Expiry, Subscription Identifiers; the forwarded span
 * follows by reference) and the sizes.  Built once, then queued. */
typedef struct fe_pub {
    uint8_t own[5 + 3 + 5 * (FE_SUBIDS_MAX + 1)]; /* own properties */
    uint32_t own_len;
    uint16_t alias;     /* outbound Topic Alias, 0: none */
    bool alias_known;   /* the client has it: the topic is left out */
    uint32_t props_len; /* own + span: the Property Length (MQTT 5) */
    uint32_t remaining;
    uint32_t total;     /* bytes of the whole packet */
    bool oversize;      /* above what MQTT can carry (the message came in
                           under the limit, the properties or the topic
                           of an alias pushed it over): not sendable */
} fe_pub_t;

static void pub_size_as(fe_conn_t *c, const msg_view_t *v, uint8_t qos,
                        const uint32_t *ids, uint32_t n_ids, bool new_alias,
                        fe_pub_t *p)
{
    p->own_len = 0;
    p->props_len = 0;
    p->alias = 0;
    p->alias_known = false;
    p->oversize = false;
    uint64_t rem = 2u + (uint64_t)v->tlen + (qos ? 2u : 0u) + v->plen;
    if (c->level == MQTT_V5) {
        uint8_t *o = p->own;
        if (c->alias_out_max) {
            /* Outbound Topic Alias (3.3.2.3.4): the first topics get one
             * each, up to the client's maximum, for the connection's
             * life; a topic the client has one for is sent empty (not
             * when nothing else would carry the message's reference). */
            strmap_ent_t *e = c->alias_out
                                  ? strmap_get(c->alias_out, v->topic,
                                               v->tlen)
                                  : NULL;
            if (e && (v->plen || v->span_len)) {
                p->alias = (uint16_t)e->val;
                p->alias_known = true;
                rem -= v->tlen;
            } else if (new_alias && e == NULL &&
                       c->alias_out_n < c->alias_out_max) {
                p->alias = (uint16_t)(c->alias_out_n + 1);
            }
            if (p->alias) {
                *o++ = MQTT_PROP_TOPIC_ALIAS;
                *o++ = (uint8_t)(p->alias >> 8);
                *o++ = (uint8_t)p->alias;
            }
        }
        if (v->expiry) {
            /* What is left of the Message Expiry Interval (3.3.2.3.3). */
            uint32_t left = msg_expiry_left(v, (uint64_t)time(NULL));
            *o++ = MQTT_PROP_MESSAGE_EXPIRY;
            rec_wr32(o, left);
            o += 4;
        }
        for (uint32_t i = 0; i < n_ids; i++) {
            if (ids[i] == 0 || ids[i] > MQTT_PROP_SUB_ID_MAX)
                continue;
            *o++ = MQTT_PROP_SUB_ID;
            o += mqtt_varint_encode(o, ids[i]);
        }
        p->own_len = (uint32_t)(o - p->own);
        p->props_len = p->own_len + v->span_len;
        rem += 4 + (uint64_t)p->props_len; /* a varint takes at most 4 */
        if (rem <= MQTT_MAX_REMAINING)
            rem = rem - 4 + mqtt_varint_size(p->props_len);
    }
    if (rem > MQTT_MAX_REMAINING) {
        p->oversize = true;
        p->remaining = 0;
        p->total = UINT32_MAX;
        return;
    }
    p->remaining = (uint32_t)rem;
    p->total = 1u + (uint32_t)mqtt_varint_size(p->remaining) + p->remaining;
}

static void pub_size(fe_conn_t *c, const msg_view_t *v, uint8_t qos,
                     const uint32_t *ids, uint32_t n_ids, fe_pub_t *p)
{
    pub_size_as(c, v, qos, ids, n_ids, true, p);
    /* A new alias is ours to give, not when its three bytes take the
     * packet over the client's Maximum Packet Size: the message would be
     * dropped, and every later one on the topic too (the alias is
     * registered only when sent). */
    if (p->alias && !p->alias_known && c->max_pkt && p->total > c->max_pkt)
        pub_size_as(c, v, qos, ids, n_ids, false, p);
}

/* Room a PUBLISH sized by pub_size() needs in c's queue: header bytes
 * (fixed header, an empty topic, packet id, Property Length, own
 * properties) and iovecs
 * (header, topic, id and properties, span, payload; 3.1.1 QoS 0 sends
 * topic and payload as one).  PUB_*_MAX bound every PUBLISH. */
#define PUB_IOVS_MAX 5
#define PUB_BYTES_MAX (5 + 2 + 2 + 4 + sizeof(((fe_pub_t *)0)->own))
static uint32_t pub_bytes(const fe_pub_t *p)
{
    return 5 + 2 + (p->alias_known ? 2 : 0) + 4 + p->own_len;
}

static uint32_t pub_iovs(const fe_conn_t *c, const msg_view_t *v,
                         uint8_t qos)
{
    if (c->level != MQTT_V5)
        return qos ? 4 : 2;
    return 3 + (v->span_len ? 1 : 0) + (v->plen ? 1 : 0);
}

/* Queues one PUBLISH of message v at qos with pid, sized by pub_size().
 * rel is released when the last byte is written.  The caller checked the
 * room (pub_iovs(), pub_bytes()).  Topic, span and payload go by reference;
 * for 3.1.1 at QoS 0 the whole packet is one iovec (with RETAIN: topic and
 * payload are). */
static void queue_packet(fe_conn_t *c, const msg_view_t *v,
                         const fe_pub_t *p, uint8_t qos, bool dup,
                         bool retain, uint16_t pid, arena_h rel)
{
    if (c->level != MQTT_V5 && qos == 0 && !retain) {
        /* The whole packet is in the message (records.h): one iovec. */
        uint32_t n;
        const uint8_t *pkt = msg_pkt0(v, &n);
        fe_out_ref(c, pkt, n, rel);
        return;
    }
    uint8_t hdr[PUB_BYTES_MAX];
    size_t hl = mqtt_write_publish_header(hdr, qos, dup, retain, p->remaining);
    if (c->level != MQTT_V5 && qos == 0) {
        fe_out_bytes(c, hdr, hl);
        fe_out_ref(c, v->tw, 2u + v->tlen + v->plen, rel);
        return;
    }
    /* The reference goes with the last arena iovec. */
    bool span = c->level == MQTT_V5 && v->span_len > 0;
    if (p->alias_known) {
        hdr[hl++] = 0; /* empty topic: the alias stands for it */
        hdr[hl++] = 0;
        fe_out_bytes(c, hdr, hl);
    } else {
        fe_out_bytes(c, hdr, hl);
        fe_out_ref(c, v->tw, 2u + v->tlen, v->plen || span ? 0 : rel);
        if (p->alias) {
            /* A new alias: the client learns it with this packet. */
            if (c->alias_out == NULL) {
                c->alias_out = mem_alloc(sizeof(*c->alias_out));
                strmap_init(c->alias_out);
            }
            strmap_put(c->alias_out, v->topic, v->tlen, p->alias);
            c->alias_out_n++;
        }
    }
    hl = 0;
    if (qos) {
        hdr[hl++] = (uint8_t)(pid >> 8);
        hdr[hl++] = (uint8_t)pid;
    }
    if (c->level == MQTT_V5) {
        hl += mqtt_varint_encode(hdr + hl, p->props_len);
        memcpy(hdr + hl, p->own, p->own_len);
        hl += p->own_len;
    }
    fe_out_bytes(c, hdr, hl);
    if (span)
        fe_out_ref(c, v->span, v->span_len, v->plen ? 0 : rel);
    if (v->plen)
        fe_out_ref(c, v->payload, v->plen, rel);
}

/* queue_packet() for a delivery: counted as one, which may wait for the
 * next (fe_hold.c), unlike everything else queued. */
static void queue_publish(fe_conn_t *c, const msg_view_t *v,
                          const fe_pub_t *p, uint8_t qos, bool dup,
                          bool retain, uint16_t pid, arena_h rel)
{
    bool urgent = c->out_urgent;
    queue_packet(c, v, p, qos, dup, retain, pid, rel);
    c->out_urgent = urgent;
    c->out_pubs++;
    if (qos == 2)
        c->reply_next = true;
}

/* Sends what the control ring holds.  Returns 1 when it is empty, 0 when
 * the socket queue is full, -1 when c was closed. */
static int drain_ctl(fe_conn_t *c)
{
    ring_t *r = sess_ctl(fe->shm, c->slot);
    arena_t *a = &fe->shm->arena;
    uint32_t n = ring_count(r);
    /* A takeover wins over everything queued before it: a client that
     * does not read must not keep its session by leaving SUBACKs stuck in
     * front of the KICK. */
    for (uint32_t i = 0; i < n; i++) {
        ctl_rec_t *k = ring_peek(r, i);
        if (k->type != CTL_KICK || k->conn_gen != c->conn_gen)
            continue;
        sess_ring_drop(fe->shm, r, i + 1); /* the KICK holds no handle */
        return fe_disconnect(c, MQTT5_RC_SESSION_TAKEN_OVER,
                             "session taken over");
    }
    for (; n > 0; n--) {
        ctl_rec_t *o = ring_peek(r, 0);
        if (o->conn_gen != c->conn_gen) {
            /* For an earlier connection of this session: its SUBACK has
             * no one to go to any more. */
            sess_ring_drop(fe->shm, r, 1);
            continue;
        }
        if (o->type == CTL_KICK) {
            ring_consume(r, 1);
            return fe_disconnect(c, MQTT5_RC_SESSION_TAKEN_OVER,
                                 "session taken over");
        }
        uint32_t len;
        uint8_t *m = arena_get(a, o->h, &len);
        if (m == NULL || (uint64_t)o->len + 4 > len) {
            log_err("slot %u: control record with bad handle skipped",
                    c->slot);
            ring_consume(r, 1);
            continue;
        }
        if (!fe_out_room(c, 1, 0)) {
            if (fe_flush(c) < 0)
                return -1;
            if (!fe_out_room(c, 1, 0))
                return 0; /* EV_WRITE resumes us */
        }
        arena_h h = o->h;
        uint32_t olen = o->len;
        ring_consume(r, 1); /* before the queue holds the reference */
        fe_out_ref(c, m + 4, olen, h);
        if (c->pending_acks > 0 && c->pending_acks-- == FE_MAX_PENDING_ACKS &&
            c->paused)
            fe_resume_soon(c); /* a SUBSCRIBE may wait for this */
    }
    return 1;
}

static int resend_entries(fe_conn_t *c);

/* Room in c's queue for one more delivery (FE_OUT_BYTES_MAX). */
static bool delivery_room(fe_conn_t *c, uint32_t iovs, uint32_t bytes)
{
    return fe_out_room(c, iovs, bytes) &&
           (c->iov_n == 0 || c->out_bytes < FE_OUT_BYTES_MAX);
}

/* delivery_room(), writing c's queue out first when it is full: 1, 0
 * when the socket is full too (EV_WRITE resumes c), -1 when c was
 * closed. */
static int make_room(fe_conn_t *c, uint32_t iovs, uint32_t bytes)
{
    if (delivery_room(c, iovs, bytes))
        return 1;
    if (fe_flush(c) < 0)
        return -1;
    return delivery_room(c, iovs, bytes) ? 1 : 0;
}

/* Whether a delivery of v to c, sized p, is not for this client: MQTT 5
 * Message Expiry passed while it was queued, or the packet is above the
 * client's Maximum Packet Size (3.1.2.11.4), or it is QoS 0 for an
 * earlier connection (stale: OUT_F_STALE, counted by the worker).
 * Counted and logged when so; the caller drops it. */
static bool not_for_client(fe_conn_t *c, const msg_view_t *v,
                           const fe_pub_t *p, bool stale)
{
    bool expired = !stale && v->expiry &&
                   msg_expired(v, (uint64_t)time(NULL));
    bool too_big = !stale && (p->oversize ||
                              (c->max_pkt && p->total > c->max_pkt));
    if (!stale && !expired && !too_big)
        return false;
    if (too_big)
        fe->proc->drops_too_large++;
    else if (expired)
        fe->proc->drops_expired++;
    log_debug("Client %s: %s message on %.*s dropped", c->client_id,
              too_big ? "oversized"
              : expired ? "expired"
                        : "QoS 0 (earlier connection)",
              (int)v->tlen, v->topic);
    return true;
}

int fe_deliver_held(fe_conn_t *c, const msg_view_t *v, arena_h h,
                    uint32_t sub_id, bool retain)
{
    fe_pub_t p;
    pub_size(c, v, 0, &sub_id, sub_id ? 1 : 0, &p);
    if (not_for_client(c, v, &p, false))
        return 0;
    /* A full queue is written out first, as a drain would, unless the
     * socket is known to be full (EV_WRITE pending). */
    uint32_t iovs = pub_iovs(c, v, 0), bytes = pub_bytes(&p);
    int room = c->write_on ? delivery_room(c, iovs, bytes)
                           : make_room(c, iovs, bytes);
    if (room <= 0)
        return room < 0 ? -2 : -1;
    fe->proc->bc_n--;
    ARENA_CRASH_ORDER(); /* out of the count before the queue has it */
    queue_publish(c, v, &p, 0, false, retain, 0, h);
    fe->proc->msgs_out++;
    fe->proc->msgs_out_qos[0]++;
    return 1;
}

int fe_drain_slot(fe_conn_t *c)
{
    /* Data head first, then the whole control ring: every control record
     * pushed before a delivery we are about to send is visible now (the
     * worker commits them in that order), so a SUBACK always precedes the
     * retained messages it brings. */
    uint32_t n = ring_count(sess_ring(fe->shm, c->slot));
    /* Every broadcast group the worker committed before these records
     * goes first (docs/architecture.md, "QoS 0 to many"): the load of the
     * head above made them visible. */
    if (n > 0 && fe_bcast_first(c))
        return 0;
    return fe_drain_slot_n(c, n);
}

int fe_drain_slot_n(fe_conn_t *c, uint32_t n)
{
    ring_t *r = sess_ring(fe->shm, c->slot);
    sess_slot_t *s = shm_slot(fe->shm, c->slot);
    arena_t *a = &fe->shm->arena;
    int rc = drain_ctl(c);
    if (rc <= 0)
        return rc;
    c->inflight_blocked = false;
    if (c->resend_pending) {
        /* What was in flight before this connection goes first. */
        rc = resend_entries(c);
        if (rc <= 0)
            return rc;
    }
    /* Each record is consumed before its reference shows up in the
     * connection's queue (ARENA_CRASH_ORDER): a kill at any point leaves no
     * reference owned twice (docs/architecture.md, "Crash story"). */
    for (uint32_t take; n > 0; n -= take) {
        /* A delivery's further Subscription Identifiers come before it
         * as OUT_SUBID records.  They are read here and consumed with it
         * (take records at once), so a delivery that has to wait, or a
         * connection that ends, leaves them in the ring. */
        uint32_t extra[FE_SUBIDS_MAX], n_extra = 0, k = 0;
        out_rec_t o;
        for (;; k++) {
            if (k == n)
                return 0; /* its delivery is not committed yet */
            memcpy(&o, ring_peek(r, k), sizeof(o));
            if (o.type != OUT_SUBID)
                break;
            if (n_extra < FE_SUBIDS_MAX)
                extra[n_extra++] = o.aux;
        }
        take = k + 1;
        /* Through a shared subscription, aux names the group and the
         * identifier came as OUT_SUBID. */
        bool shared = (o.flags & OUT_F_SHARED) != 0;
        uint32_t ids[FE_SUBIDS_MAX + 1];
        uint32_t n_ids = 0;
        if (o.aux && !shared)
            ids[n_ids++] = o.aux;
        for (uint32_t i = 0; i < n_extra; i++)
            ids[n_ids++] = extra[i];
        uint32_t len;
        msg_view_t v;
        uint8_t *m = arena_get(a, o.h, &len);
        if (m == NULL || msg_open(m, len, &v) < 0) {
            log_err("slot %u: output record with stale handle skipped",
                    c->slot);
            ring_consume(r, take);
            continue;
        }
        fe_pub_t p;
        pub_size(c, &v, o.qos, ids, n_ids, &p);
        bool drop = not_for_client(c, &v, &p,
                                   (o.flags & OUT_F_STALE) != 0);
        if (!drop && o.qos > 0 &&
            (!sess_inf_room(fe->shm, c->slot) ||
             (c->level == MQTT_V5 && s->n_inflight >= c->recv_max))) {
            /* The inflight window (the client's Receive Maximum for MQTT
             * 5) is full: an acknowledgement resumes us. */
            c->inflight_blocked = true;
            return 0;
        }
        if (!drop) {
            rc = make_room(c, pub_iovs(c, &v, o.qos), pub_bytes(&p));
            if (rc <= 0)
                return rc; /* closed, or socket full: EV_WRITE resumes us */
        }
        if (drop) {
            ring_consume(r, take);
            __atomic_store_n(&s->q_bytes_out, s->q_bytes_out + v.plen,
                             __ATOMIC_RELEASE);
            arena_release(a, o.h);
            continue;
        }
        bool retain = (o.flags & OUT_F_RETAIN) != 0;
        uint16_t pid = 0;
        if (o.qos > 0) {
            /* The entry takes the ring's reference; it says which record
             * it came from, for a kill before the consume (sess_repair). */
            sess_inflight_t *e = sess_inf_add(fe->shm, c->slot, o.qos,
                                              retain, o.h,
                                              (uint32_t)r->tail + k,
                                              n_ids ? ids[0] : 0,
                                              shared ? o.aux : 0);
            pid = e->pid;
            CRASH_POINT("fe_inflight_added");
        }
        ring_consume(r, take);
        /* Release: the worker's acquire load in fo_has_room() sees the
         * bytes leave the queue only with the record consumed. */
        __atomic_store_n(&s->q_bytes_out, s->q_bytes_out + v.plen,
                         __ATOMIC_RELEASE);
        /* QoS 0: the record's reference moves to the queue.  QoS 1/2:
         * the queued bytes get one of their own, so an early PUBACK
         * cannot free a block still waiting for writev. */
        if (o.qos > 0)
            arena_ref_add(a, o.h, 1);
        queue_publish(c, &v, &p, o.qos, false, retain, pid, o.h);
        fe->proc->msgs_out++;
        fe->proc->msgs_out_qos[o.qos]++;
    }
    /* Drained empty: broadcasts may come again after a filling queue
     * stopped them (fe_bcast.c). */
    uint32_t *gen = shm_bc_gen(fe->shm, c->slot);
    if (__atomic_load_n(gen, __ATOMIC_RELAXED) != c->conn_gen &&
        !fe_out_half_full(c))
        __atomic_store_n(gen, c->conn_gen, __ATOMIC_RELAXED);
    return 0;
}

/*
 * Sends again, oldest first, the inflight entries marked resend (after a
 * reconnect): a PUBREL for those the client had PUBRECed, the PUBLISH
 * with DUP for the others while the client's window has room (MQTT 5
 * Receive Maximum: entries already sent on this connection count).
 * Returns 1 when none is left, 0 when the window or the socket is full
 * (an acknowledgement or EV_WRITE calls fe_drain_slot() again), -1 when
 * c was closed.
 */
static int resend_entries(fe_conn_t *c)
{
    sess_slot_t *s = shm_slot(fe->shm, c->slot);
    arena_t *a = &fe->shm->arena;
    /* Positions are taken once: completing a stale entry below may move
     * or reset them, and the entries stay where they are in the table. */
    uint32_t head = s->inf_head, n = s->inf_tail - s->inf_head;
    uint32_t unacked = 0;
    for (uint32_t k = 0; k < n; k++) {
        sess_inflight_t *e = sess_inf_at(fe->shm, c->slot, head + k);
        if (e->state != INF_FREE && !e->resend)
            unacked++;
    }
    uint32_t window = c->level == MQTT_V5 ? c->recv_max : UINT32_MAX;
    for (uint32_t k = 0; k < n; k++) {
        sess_inflight_t *e = sess_inf_at(fe->shm, c->slot, head + k);
        if (e->state == INF_FREE || !e->resend)
            continue;
        if (e->state == INF_SENT && unacked >= window) {
            c->inflight_blocked = true; /* an acknowledgement resumes us */
            return 0;
        }
        if (!fe_out_room(c, PUB_IOVS_MAX, PUB_BYTES_MAX)) {
            if (fe_flush(c) < 0)
                return -1;
            if (!fe_out_room(c, PUB_IOVS_MAX, PUB_BYTES_MAX))
                return 0; /* EV_WRITE resumes us */
        }
        e->resend = 0;
        unacked++;
        if (e->state == INF_PUBREC) {
            uint8_t out[4];
            fe_out_bytes(c, out, mqtt_write_ack(out, MQTT_PUBREL, e->pid));
            continue;
        }
        uint32_t len;
        msg_view_t v;
        uint8_t *m = arena_get(a, e->h, &len);
        if (m == NULL || msg_open(m, len, &v) < 0) {
            log_err("slot %u: inflight entry with stale handle dropped",
                    c->slot);
            e->h = 0;
            sess_inf_done(fe->shm, c->slot, e);
            unacked--;
            continue;
        }
        fe_pub_t p;
        pub_size(c, &v, e->qos, &e->sub_id, 1, &p);
        if (p.oversize || (c->max_pkt && p.total > c->max_pkt)) {
            /* The new connection allows less than the first did. */
            fe->proc->drops_too_large++;
            sess_inf_done(fe->shm, c->slot, e);
            unacked--;
            continue;
        }
        arena_ref_add(a, e->h, 1); /* for the queued bytes, as above */
        queue_publish(c, &v, &p, e->qos, true, e->retain, e->pid, e->h);
    }
    c->resend_pending = false;
    return 1;
}

int fe_resume_session(fe_conn_t *c)
{
    sess_slot_t *s = shm_slot(fe->shm, c->slot);
    /* Every entry in flight goes again, in send order, as the window
     * allows (resend_entries(), from fe_drain_slot()). */
    uint32_t head = s->inf_head, n = s->inf_tail - s->inf_head;
    for (uint32_t k = 0; k < n; k++) {
        sess_inflight_t *e = sess_inf_at(fe->shm, c->slot, head + k);
        e->resend = e->state != INF_FREE;
        c->resend_pending |= e->resend != 0;
    }
    /* Clear the wake flag before draining (the fence pairs with the one in
     * fo_flush_notify(): a record committed after our read of the head
     * sees queued == 0 and notifies us). */
    __atomic_store_n(&shm_slot(fe->shm, c->slot)->queued, 0,
                     __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return fe_drain_slot(c);
}
