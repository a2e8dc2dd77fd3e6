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
    uint8_t *b = &sess_pids(s, slot)[pid >> 3];
    if (on)
        *b |= (uint8_t)(1u << (pid & 7));
    else
        *b &= (uint8_t)~(1u << (pid & 7));
}

static inline int pid_used(const shm_t *s, uint32_t slot, uint16_t pid)
{
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
                              int retain, arena_h h)
{
    sess_slot_t *sl = shm_slot(s, slot);
    uint16_t pid;
    do
        pid = ++sl->next_pid;
    while (pid == 0 || pid_used(s, slot, pid));
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
    e->h = h;
    e->state = INF_SENT;
    sl->n_inflight++;
    return e;
}

sess_inflight_t *sess_inf_find(const shm_t *s, uint32_t slot, uint16_t pid)
{
    sess_slot_t *sl = shm_slot(s, slot);
    if (!pid_used(s, slot, pid))
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
    if (e->h)
        arena_release(&s->arena, e->h);
    pid_set(s, slot, e->pid, 0);
    memset(e, 0, sizeof(*e));
    sl->n_inflight--;
    while (sl->inf_head != sl->inf_tail &&
           sess_inf_at(s, slot, sl->inf_head)->state == INF_FREE)
        sl->inf_head++;
    if (sl->inf_head == sl->inf_tail)
        sl->inf_head = sl->inf_tail = 0;
}

void sess_inf_clear(shm_t *s, uint32_t slot)
{
    sess_slot_t *sl = shm_slot(s, slot);
    uint32_t head = sl->inf_head, n = sl->inf_tail - sl->inf_head;
    for (uint32_t k = 0; k < n; k++) {
        sess_inflight_t *e = sess_inf_at(s, slot, head + k);
        if (e->state == INF_FREE)
            continue;
        if (e->h)
            arena_release(&s->arena, e->h);
        pid_set(s, slot, e->pid, 0);
        memset(e, 0, sizeof(*e));
    }
    sl->inf_head = sl->inf_tail = 0;
    sl->n_inflight = 0;
}
