/*
 * fe_deliver.c -- from a client's output ring to its socket queue: the
 * per-subscriber PUBLISH header (first byte, remaining length, packet id)
 * is built small; topic and payload go out of the arena by reference.
 */
#include <string.h>

#include "crashpoint.h"
#include "fe.h"
#include "log.h"

/* Queues one PUBLISH of message m (len bytes) at qos with pid.  rel is
 * released when the last byte is written.  The caller checked the room
 * (4 iovecs, 7 header bytes). */
static void queue_publish(fe_conn_t *c, const uint8_t *m, uint32_t len,
                          uint8_t qos, bool dup, bool retain, uint16_t pid,
                          arena_h rel)
{
    uint16_t tlen = msg_topic_len(m);
    uint32_t remaining = len + (qos ? 2 : 0);
    uint8_t hdr[5];
    size_t hl = mqtt_write_publish_header(hdr, qos, dup, retain, remaining);
    fe_out_bytes(c, hdr, hl);
    if (qos == 0) {
        fe_out_ref(c, m, len, rel);
        return;
    }
    uint8_t id[2] = {(uint8_t)(pid >> 8), (uint8_t)pid};
    uint32_t plen = len - 2 - tlen;
    fe_out_ref(c, m, 2u + tlen, plen ? 0 : rel);
    fe_out_bytes(c, id, 2);
    if (plen)
        fe_out_ref(c, m + 2 + tlen, plen, rel);
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
        fe_close(c, false, "session taken over");
        return -1;
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
            fe_close(c, false, "session taken over");
            return -1;
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
        if (c->pending_acks > 0)
            c->pending_acks--;
    }
    return 1;
}

int fe_drain_slot(fe_conn_t *c)
{
    ring_t *r = sess_ring(fe->shm, c->slot);
    sess_slot_t *s = shm_slot(fe->shm, c->slot);
    arena_t *a = &fe->shm->arena;
    /* Data head first, then the whole control ring: every control record
     * pushed before a delivery we are about to send is visible now (the
     * worker commits them in that order), so a SUBACK always precedes the
     * retained messages it brings. */
    uint32_t n = ring_count(r);
    int rc = drain_ctl(c);
    if (rc <= 0)
        return rc;
    c->inflight_blocked = false;
    /* Each record is consumed before its reference shows up in the
     * connection's queue (ARENA_CRASH_ORDER): a kill at any point leaves no
     * reference owned twice (docs/architecture.md, "Crash story"). */
    for (; n > 0; n--) {
        out_rec_t o;
        memcpy(&o, ring_peek(r, 0), sizeof(o));
        uint32_t len;
        uint8_t *m = arena_get(a, o.h, &len);
        if (m == NULL) {
            log_err("slot %u: output record with stale handle skipped",
                    c->slot);
            ring_consume(r, 1);
            continue;
        }
        if (o.qos > 0 && !sess_inf_room(fe->shm, c->slot)) {
            c->inflight_blocked = true;
            return 0;
        }
        if (!fe_out_room(c, 4, 7)) {
            if (fe_flush(c) < 0)
                return -1;
            if (!fe_out_room(c, 4, 7))
                return 0; /* socket full: EV_WRITE resumes us */
        }
        bool retain = (o.flags & OUT_F_RETAIN) != 0;
        uint16_t pid = 0;
        if (o.qos > 0) {
            /* The entry takes the ring's reference; it says which record
             * it came from, for a kill before the consume (sess_repair). */
            sess_inflight_t *e = sess_inf_add(fe->shm, c->slot, o.qos,
                                              retain, o.h,
                                              (uint32_t)r->tail);
            pid = e->pid;
            CRASH_POINT("fe_inflight_added");
        }
        ring_consume(r, 1);
        /* Release: the worker's acquire load in fo_has_room() sees the
         * bytes leave the queue only with the record consumed. */
        __atomic_store_n(&s->q_bytes_out,
                         s->q_bytes_out + msg_payload_len(m, len),
                         __ATOMIC_RELEASE);
        /* QoS 0: the record's reference moves to the queue.  QoS 1/2:
         * the queued bytes get one of their own, so an early PUBACK
         * cannot free a block still waiting for writev. */
        if (o.qos > 0)
            arena_ref_add(a, o.h, 1);
        queue_publish(c, m, len, o.qos, false, retain, pid, o.h);
        fe->proc->msgs_out++;
        fe->proc->msgs_out_qos[o.qos]++;
    }
    return 0;
}

int fe_resume_session(fe_conn_t *c)
{
    sess_slot_t *s = shm_slot(fe->shm, c->slot);
    arena_t *a = &fe->shm->arena;
    /* The table is in send order: re-send from the oldest.  Positions are
     * taken once: completing a stale entry below may move or reset them,
     * and the entries stay where they are in the table. */
    uint32_t head = s->inf_head, n = s->inf_tail - s->inf_head;
    for (uint32_t k = 0; k < n; k++) {
        sess_inflight_t *e = sess_inf_at(fe->shm, c->slot, head + k);
        if (e->state == INF_FREE)
            continue;
        if (!fe_out_room(c, 4, 7)) {
            if (fe_flush(c) < 0)
                return -1;
            if (!fe_out_room(c, 4, 7)) {
                /* The socket of a fresh connection is full: the client
                 * gets the rest on its next reconnect. */
                log_warn("Client %s: output full while re-sending",
                         c->client_id);
                break;
            }
        }
        if (e->state == INF_PUBREC) {
            uint8_t out[4];
            fe_out_bytes(c, out, mqtt_write_ack(out, MQTT_PUBREL, e->pid));
            continue;
        }
        uint32_t len;
        uint8_t *m = arena_get(a, e->h, &len);
        if (m == NULL) {
            log_err("slot %u: inflight entry with stale handle dropped",
                    c->slot);
            e->h = 0;
            sess_inf_done(fe->shm, c->slot, e);
            continue;
        }
        arena_ref_add(a, e->h, 1); /* for the queued bytes, as above */
        queue_publish(c, m, len, e->qos, true, e->retain, e->pid, e->h);
    }
    /* Clear the wake flag before draining (the fence pairs with the one in
     * fo_flush_notify(): a record committed after our read of the head
     * sees queued == 0 and notifies us). */
    __atomic_store_n(&shm_slot(fe->shm, c->slot)->queued, 0,
                     __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return fe_drain_slot(c);
}
