/*
 * fo_retain.c -- a worker's retained store.  Each retained message has a
 * record (fo_ret_rec_t) in the worker's arena partition, chained from its
 * proc_t.ret_head, which holds the message's reference; a private map from
 * topic to record handle answers lookups.  A restarted worker rebuilds the
 * map from the chain (fo_ret_rebuild()), so no retained message and no
 * reference is lost with a worker.  Every change writes shm in an order a
 * kill at any instruction leaves consistent (at worst a leaked reference).
 */
#include <string.h>

#include "fo.h"
#include "log.h"

static fo_ret_rec_t *rec_of(fo_t *fo, arena_h rh)
{
    return arena_get(&fo->shm->arena, rh, NULL);
}

int fo_ret_at(fo_t *fo, arena_h rh, arena_h *msg, uint8_t *qos)
{
    fo_ret_rec_t *r = rec_of(fo, rh);
    if (r == NULL)
        return -1;
    *msg = r->msg;
    *qos = r->qos;
    return 0;
}

/* Unlinks record rh (r) from the chain, then releases message and record
 * (after the unlink: a kill in between leaks, never frees twice). */
static void unlink_rec(fo_t *fo, arena_h rh, fo_ret_rec_t *r)
{
    arena_t *a = &fo->shm->arena;
    fo_ret_rec_t *prev = r->prev ? rec_of(fo, r->prev) : NULL;
    fo_ret_rec_t *next = r->next ? rec_of(fo, r->next) : NULL;
    if (next)
        next->prev = r->prev;
    if (prev)
        prev->next = r->next;
    else
        fo->proc->ret_head = r->next;
    ARENA_CRASH_ORDER();
    arena_h msg = r->msg;
    arena_release(a, rh);
    if (msg)
        arena_release(a, msg);
}

void fo_ret_set(fo_t *fo, const char *topic, uint16_t tlen, arena_h msg,
                uint8_t qos, int clear)
{
    arena_t *a = &fo->shm->arena;
    strmap_ent_t *e = strmap_get(&fo->retained, topic, tlen);
    fo_ret_rec_t *r = e ? rec_of(fo, (arena_h)e->val) : NULL;
    if (e && r == NULL) {
        log_err("retained record of %.*s stale: forgotten", (int)tlen,
                topic);
        strmap_del(&fo->retained, topic, tlen);
        e = NULL;
    }
    if (clear) {
        if (e) {
            arena_h rh = (arena_h)e->val;
            strmap_del(&fo->retained, topic, tlen);
            unlink_rec(fo, rh, r);
        }
        return;
    }
    if (r) {
        if (r->msg == msg) {
            r->qos = qos; /* the same message again (a redone record) */
            return;
        }
        /* Our reference first, then the swap, then the old one goes. */
        arena_ref_add(a, msg, 1);
        arena_h old = r->msg;
        r->qos = qos;
        r->msg = msg;
        ARENA_CRASH_ORDER();
        if (old)
            arena_release(a, old);
        return;
    }
    void *d;
    arena_h rh = arena_alloc(a, fo->part, sizeof(fo_ret_rec_t), &d);
    if (rh == 0) {
        log_err("worker %u arena partition full: retained message on %.*s "
                "not stored", fo->idx, (int)tlen, topic);
        return;
    }
    arena_ref_add(a, msg, 1);
    r = d;
    r->msg = msg;
    r->qos = qos;
    r->prev = 0;
    r->next = fo->proc->ret_head;
    fo_ret_rec_t *first = r->next ? rec_of(fo, r->next) : NULL;
    ARENA_CRASH_ORDER(); /* the record is whole before the chain shows it */
    if (first)
        first->prev = rh;
    fo->proc->ret_head = rh;
    strmap_put(&fo->retained, topic, tlen, rh);
}

void fo_ret_rebuild(fo_t *fo)
{
    arena_t *a = &fo->shm->arena;
    uint32_t n = 0;
    arena_h prev = 0;
    for (arena_h rh = fo->proc->ret_head; rh;) {
        fo_ret_rec_t *r = rec_of(fo, rh);
        if (r == NULL) {
            log_err("retained chain of worker %u ends at a stale record: "
                    "cut there", fo->idx);
            if (prev)
                rec_of(fo, prev)->next = 0;
            else
                fo->proc->ret_head = 0;
            break;
        }
        r->prev = prev; /* a kill may have left the head's prev behind */
        uint32_t len;
        msg_view_t v;
        uint8_t *m = arena_get(a, r->msg, &len);
        if (m == NULL || msg_open(m, len, &v) < 0) {
            log_err("retained record with a stale message dropped");
            arena_h next = r->next;
            r->msg = 0;
            unlink_rec(fo, rh, r);
            rh = next;
            continue;
        }
        strmap_put(&fo->retained, v.topic, v.tlen, rh);
        n++;
        prev = rh;
        rh = r->next;
    }
    if (n)
        log_info("worker %u: %u retained messages recovered", fo->idx, n);
}

void fo_ret_free(fo_t *fo)
{
    /* The broker stops: everything goes back (the arena's leak check).
     * A worker restarted alone keeps the store for its successor. */
    if (!__atomic_load_n(&fo->shm->hdr->stopping, __ATOMIC_ACQUIRE))
        return;
    while (fo->proc->ret_head) {
        arena_h rh = fo->proc->ret_head;
        fo_ret_rec_t *r = rec_of(fo, rh);
        if (r == NULL) {
            fo->proc->ret_head = 0;
            break;
        }
        unlink_rec(fo, rh, r);
    }
}
