/*
 * fe_deliver.c -- from a client's output ring to its socket queue: the
 * per-subscriber PUBLISH header (first byte, remaining length, packet id)
 * is built small; topic and payload go out of the arena by reference.
 */
#include <string.h>

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

static uint16_t next_pid(fe_conn_t *c, sess_slot_t *s)
{
    sess_inflight_t *inf = sess_inflight(fe->shm, c->slot);
    uint32_t max = fe->shm->hdr->max_inflight;
    for (;;) {
        uint16_t pid = ++s->next_pid;
        if (pid == 0)
            continue;
        uint32_t i;
        for (i = 0; i < max; i++)
            if (inf[i].state != INF_FREE && inf[i].pid == pid)
                break;
        if (i == max)
            return pid;
    }
}

int fe_drain_slot(fe_conn_t *c)
{
    ring_t *r = sess_ring(fe->shm, c->slot);
    sess_slot_t *s = shm_slot(fe->shm, c->slot);
    sess_inflight_t *inf = sess_inflight(fe->shm, c->slot);
    uint32_t max_inf = fe->shm->hdr->max_inflight;
    arena_t *a = &fe->shm->arena;
    uint32_t n = ring_count(r);
    c->inflight_blocked = false;
    /* Each record is consumed as soon as its reference has moved to the
     * connection's queue or inflight table, so a close at any point
     * leaves no record owned twice. */
    for (; n > 0; n--, ring_consume(r, 1)) {
        out_rec_t *o = ring_peek(r, 0);
        if (o->type == OUT_KICK) {
            if (o->aux == c->conn_gen) {
                ring_consume(r, 1);
                fe_close(c, false, "session taken over");
                return -1;
            }
            continue;
        }
        uint32_t len;
        uint8_t *m = arena_get(a, o->h, &len);
        if (m == NULL) {
            log_err("slot %u: output record with stale handle skipped",
                    c->slot);
            continue;
        }
        uint32_t iovs = o->type == OUT_RAW ? 1 : 4;
        uint32_t bytes = o->type == OUT_RAW ? 0 : 7;
        if (!fe_out_room(c, iovs, bytes)) {
            if (fe_flush(c) < 0)
                return -1;
            if (!fe_out_room(c, iovs, bytes))
                return 0; /* socket full: EV_WRITE resumes us */
        }
        if (o->type == OUT_RAW) {
            fe_out_ref(c, m + 2, o->aux, o->h);
            if (c->pending_acks > 0)
                c->pending_acks--;
            continue;
        }
        bool retain = (o->flags & OUT_F_RETAIN) != 0;
        if (o->qos == 0) {
            queue_publish(c, m, len, 0, false, retain, 0, o->h);
        } else {
            if (s->n_inflight >= max_inf) {
                c->inflight_blocked = true;
                return 0;
            }
            uint32_t k;
            for (k = 0; k < max_inf; k++)
                if (inf[k].state == INF_FREE)
                    break;
            uint16_t pid = next_pid(c, s);
            inf[k].pid = pid;
            inf[k].qos = o->qos;
            inf[k].retain = retain;
            inf[k].h = o->h; /* the entry keeps the reference */
            inf[k].state = INF_SENT;
            s->n_inflight++;
            queue_publish(c, m, len, o->qos, false, retain, pid, 0);
        }
        fe->proc->msgs_out++;
    }
    return 0;
}

int fe_resume_session(fe_conn_t *c)
{
    sess_inflight_t *inf = sess_inflight(fe->shm, c->slot);
    uint32_t max_inf = fe->shm->hdr->max_inflight;
    arena_t *a = &fe->shm->arena;
    for (uint32_t k = 0; k < max_inf; k++) {
        if (inf[k].state == INF_FREE)
            continue;
        if (!fe_out_room(c, 4, 7)) {
            if (fe_flush(c) < 0)
                return -1;
            if (!fe_out_room(c, 4, 7)) {
                /* Cannot happen on a fresh connection with a window of
                 * at most FE_IOV_CAP / 4 entries per flush; the client
                 * re-gets the rest on its next reconnect. */
                log_warn("Client %s: output full while re-sending",
                         c->client_id);
                break;
            }
        }
        if (inf[k].state == INF_PUBREC) {
            uint8_t out[4];
            fe_out_bytes(c, out, mqtt_write_ack(out, MQTT_PUBREL,
                                                inf[k].pid));
            continue;
        }
        uint32_t len;
        uint8_t *m = arena_get(a, inf[k].h, &len);
        if (m == NULL) {
            log_err("slot %u: inflight entry with stale handle dropped",
                    c->slot);
            memset(&inf[k], 0, sizeof(inf[k]));
            shm_slot(fe->shm, c->slot)->n_inflight--;
            continue;
        }
        queue_publish(c, m, len, inf[k].qos, true, inf[k].retain,
                      inf[k].pid, 0);
    }
    /* Clear the wake flag before draining (the fence pairs with the one in
     * fo_flush_notify(): a record committed after our read of the head
     * sees queued == 0 and notifies us). */
    __atomic_store_n(&shm_slot(fe->shm, c->slot)->queued, 0,
                     __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return fe_drain_slot(c);
}
