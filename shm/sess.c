/*
 * sess.c -- a session slot's inflight table: a FIFO of outbound QoS 1/2
 * messages in send order, with a bitmap of the packet ids in use.  Only the
 * role holder of the slot (host frontend, or owner worker while detached)
 * calls these.
 */
#include <string.h>

#include "shm.h"

static inline void pid_set(const shm_t *s, uint32_t slot, uint16_t pid,
                           int on)
{
    if (pid >= s->hdr->pid_range)
        return; /* never ours */
    uint8_t *b = &sess_pids(s, slot)[pid >> 3];
    if (on)
        *b |= (uint8_t)(1u << (pid & 7));
    else
        *b &= (uint8_t)~(1u << (pid & 7));
}

/* FIFO length up to which sess_inf_find() scans without the bitmap */
#define SESS_INF_SCAN 4

/* Whether our packet id pid is in use; a pid outside our range (a
 * client's acknowledgement can name any) is not. */
static inline int pid_used(const shm_t *s, uint32_t slot, uint16_t pid)
{
    if (pid >= s->hdr->pid_range)
        return 0;
    return (sess_pids(s, slot)[pid >> 3] >> (pid & 7)) & 1;
}

int sess_inf_room(const shm_t *s, uint32_t slot)
{
    sess_slot_t *sl = shm_slot(s, slot);
    uint32_t max = s->hdr->max_inflight;
    /* Out-of-order acknowledgements leave holes until the head passes
     * them; a hole still takes a place in the table. */
    return sl->n_inflight < max && sl->inf_tail - sl->inf_head < max;
}

sess_inflight_t *sess_inf_add(const shm_t *s, uint32_t slot, uint8_t qos,
                              int retain, arena_h h, uint32_t ring_pos,
                              uint32_t sub_id, uint32_t group)
{
    sess_slot_t *sl = shm_slot(s, slot);
    uint16_t pid;
    do {
        pid = (uint16_t)((sl->next_pid + 1u) & (s->hdr->pid_range - 1));
        sl->next_pid = pid;
    } while (pid == 0 || pid_used(s, slot, pid));
    pid_set(s, slot, pid, 1);
    sess_inflight_t *e = sess_inf_at(s, slot, sl->inf_tail++);
    /* Keep the positions small (below 2 * max) so they never wrap:
     * subtracting max leaves every position's table index unchanged. */
    if (sl->inf_head >= s->hdr->max_inflight) {
        sl->inf_head -= s->hdr->max_inflight;
        sl->inf_tail -= s->hdr->max_inflight;
    }
    e->pid = pid;
    e->qos = qos;
    e->retain = (uint8_t)(retain != 0);
    e->ring_pos = ring_pos;
    e->sub_id = sub_id;
    e->group = group;
    e->resend = 0;
    e->h = h;
    ARENA_CRASH_ORDER(); /* an entry counts (sess_repair) only once complete */
    e->state = INF_SENT;
    sl->n_inflight++;
    return e;
}

sess_inflight_t *sess_inf_find(const shm_t *s, uint32_t slot, uint16_t pid)
{
    sess_slot_t *sl = shm_slot(s, slot);
    /* A few entries are scanned at once (acknowledgements come mostly in
     * order: the first matches); the bitmap, one more cache line, answers
     * for a long FIFO whether the scan can find anything. */
    if (sl->inf_tail - sl->inf_head > SESS_INF_SCAN && !pid_used(s, slot, pid))
        return NULL;
    for (uint32_t i = sl->inf_head; i != sl->inf_tail; i++) {
        sess_inflight_t *e = sess_inf_at(s, slot, i);
        if (e->state != INF_FREE && e->pid == pid)
            return e;
    }
    return NULL;
}

void sess_inf_done(shm_t *s, uint32_t slot, sess_inflight_t *e)
{
    sess_slot_t *sl = shm_slot(s, slot);
    arena_h h = e->h;
    pid_set(s, slot, e->pid, 0);
    /* The entry goes before its reference: a kill in between leaks the
     * message, never releases it twice. */
    e->state = INF_FREE;
    ARENA_CRASH_ORDER();
    memset(e, 0, sizeof(*e));
    sl->n_inflight--;
    while (sl->inf_head != sl->inf_tail &&
           sess_inf_at(s, slot, sl->inf_head)->state == INF_FREE)
        sl->inf_head++;
    if (sl->inf_head == sl->inf_tail)
        sl->inf_head = sl->inf_tail = 0;
    ARENA_CRASH_ORDER();
    if (h)
        arena_release(&s->arena, h);
}

void sess_inf_clear(shm_t *s, uint32_t slot)
{
    sess_slot_t *sl = shm_slot(s, slot);
    uint32_t head = sl->inf_head, n = sl->inf_tail - sl->inf_head;
    for (uint32_t k = 0; k < n; k++) {
        sess_inflight_t *e = sess_inf_at(s, slot, head + k);
        if (e->state == INF_FREE)
            continue;
        arena_h h = e->h;
        pid_set(s, slot, e->pid, 0);
        memset(e, 0, sizeof(*e));
        ARENA_CRASH_ORDER();
        if (h)
            arena_release(&s->arena, h);
    }
    sl->inf_head = sl->inf_tail = 0;
    sl->n_inflight = 0;
}

uint32_t sess_repair(shm_t *s, uint32_t slot)
{
    sess_slot_t *sl = shm_slot(s, slot);
    uint32_t max = s->hdr->max_inflight;
    /* Positions: a kill between the two stores of the rebase in
     * sess_inf_add() leaves the tail max too far. */
    if (sl->inf_tail < sl->inf_head)
        sl->inf_tail = sl->inf_head;
    if (sl->inf_tail - sl->inf_head > max)
        sl->inf_tail -= max;
    if (sl->inf_tail - sl->inf_head > max)
        sl->inf_head = sl->inf_tail = 0; /* garbage: start empty */
    while (sl->inf_head != sl->inf_tail &&
           sess_inf_at(s, slot, sl->inf_head)->state == INF_FREE)
        sl->inf_head++;
    while (sl->inf_head != sl->inf_tail &&
           sess_inf_at(s, slot, sl->inf_tail - 1)->state == INF_FREE)
        sl->inf_tail--;
    if (sl->inf_head == sl->inf_tail)
        sl->inf_head = sl->inf_tail = 0;
    /* Count and packet ids from the live entries. */
    memset(sess_pids(s, slot), 0, s->hdr->pid_range / 8);
    uint32_t n = 0;
    sess_inflight_t *newest = NULL;
    for (uint32_t i = sl->inf_head; i != sl->inf_tail; i++) {
        sess_inflight_t *e = sess_inf_at(s, slot, i);
        if (e->state == INF_FREE)
            continue;
        pid_set(s, slot, e->pid, 1);
        newest = e;
        n++;
    }
    sl->n_inflight = n;
    /* An entry is added before its record is consumed: if the holder died
     * in between, the record at ring_pos is the entry's (same handle) and
     * its reference is the entry's now; it and the OUT_SUBID records
     * before it at the tail are consumed together (fe_drain_slot()). */
    ring_t *r = sess_ring(s, slot);
    uint32_t k = newest ? newest->ring_pos - (uint32_t)r->tail : 0;
    if (newest && newest->state == INF_SENT && k < ring_count(r) &&
        ((out_rec_t *)ring_peek(r, k))->h == newest->h) {
        bool ids_only = true;
        for (uint32_t j = 0; j < k; j++)
            ids_only &= ((out_rec_t *)ring_peek(r, j))->type == OUT_SUBID;
        if (ids_only)
            ring_consume(r, k + 1);
    }
    /* Inbound QoS 2 ids awaiting PUBREL: the count from the bitmap. */
    const uint64_t *q = (const uint64_t *)sess_qos2(s, slot);
    uint32_t n2 = 0;
    for (uint32_t i = 0; i < SHM_QOS2_BITMAP / 8; i++)
        n2 += (uint32_t)__builtin_popcountll(q[i]);
    sl->n_qos2 = n2;
    return n;
}

void sess_ring_drop(shm_t *s, ring_t *r, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        arena_h h = *(const arena_h *)ring_peek(r, 0);
        ring_consume(r, 1);
        ARENA_CRASH_ORDER();
        if (h)
            arena_release(&s->arena, h);
    }
}
