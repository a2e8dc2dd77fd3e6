/*
 * fe_bcast.c -- QoS 0 deliveries a worker sent in broadcast groups
 * (docs/architecture.md, "QoS 0 to many"): one group per message and
 * frontend, BC_TO records (slot, connection generation, Subscription
 * Identifier, RETAIN) closed by a BC_MSG (the message, the count), for
 * sessions with nothing queued.  Each goes into its connection's queue as
 * a drained DELIVER record would, without touching the session's rings.
 *
 * References: a group holds one per BC_TO.  It is consumed, then its
 * references are counted as this frontend's (proc_t.bc_n; a kill in
 * between leaks them), each queued delivery takes one from the count
 * before its handle is stored in the queue, and what no connection took
 * is released at the end.  A full queue is written out first, as a drain
 * of the data ring would; what that writes is counted apart (held_n).
 */
#include <string.h>

#include "crashpoint.h"
#include "fe.h"
#include "log.h"
#include "mem.h"

static bc_rec_t *to;   /* the BC_TO records of the group at hand */
static uint32_t to_cap;
static uint32_t *later; /* cookies of connections to drain after them */
static uint32_t n_later, later_cap;

/* One delivery of message h (opened as v), its reference in the count. */
static void deliver(const bc_rec_t *t, const msg_view_t *v, arena_h h)
{
    uint32_t slot = t->u.to.slot;
    fe_conn_t *c = slot < fe->shm->hdr->max_clients ? fe->by_slot[slot]
                                                    : NULL;
    if (c == NULL || c->state != C_ACTIVE ||
        c->conn_gen != t->u.to.conn_gen) {
        /* Its connection ended before the group came (as OUT_F_STALE). */
        fe->proc->drops_offline0++;
        return;
    }
    /* A full queue is written out first (the written references go to
     * held_n, not to the group's count). */
    int rc = fe_deliver_held(c, v, h, t->aux,
                             (t->flags & OUT_F_RETAIN) != 0);
    if (rc == -2) {
        fe->proc->drops_offline0++; /* closed by that write */
        return;
    }
    /* Half full: the worker sends the following ones through the data
     * ring, where max_queued_messages holds them, before the groups on
     * their way fill the queue up. */
    uint32_t *gen = shm_bc_gen(fe->shm, slot);
    if ((rc < 0 || fe_out_half_full(c)) &&
        __atomic_load_n(gen, __ATOMIC_RELAXED) != 0)
        __atomic_store_n(gen, 0, __ATOMIC_RELAXED); /* the ring, for now */
    if (rc >= 0)
        return;
    /* A client that does not read: this message is lost, the following
     * ones wait in its data ring until it is drained (fe_drain_slot()). */
    fe->proc->drops_queue++;
    if (c->bc_drops++ % 1000 == 0)
        log_warn("Outgoing messages are being dropped for client %s "
                 "(connected, output queue full: it does not read; %u "
                 "QoS 0 messages dropped so far).",
                 c->client_id ? c->client_id : "", c->bc_drops);
}

/* Takes the group of k BC_TO records at the tail of r (worker w's). */
static void take_group(uint32_t w, ring_t *r, uint32_t k)
{
    bc_rec_t end;
    memcpy(&end, ring_peek(r, k), sizeof(end));
    if (k > to_cap) {
        to_cap = k > 2 * to_cap ? k : 2 * to_cap;
        to = mem_realloc(to, to_cap * sizeof(*to));
    }
    for (uint32_t i = 0; i < k; i++)
        memcpy(&to[i], ring_peek(r, i), sizeof(*to));
    uint32_t len;
    msg_view_t v;
    uint8_t *m = arena_get(&fe->shm->arena, end.u.h, &len);
    if (m == NULL || msg_open(m, len, &v) < 0) {
        log_err("broadcast group from worker %u with a stale or bad "
                "message handle: %u deliveries skipped", w, k);
        ring_consume(r, k + 1);
        return;
    }
    proc_t *p = fe->proc;
    ring_consume(r, k + 1);
    ARENA_CRASH_ORDER(); /* consumed before counted: a kill leaks them */
    p->bc_h = end.u.h;
    ARENA_CRASH_ORDER(); /* the handle before its count */
    p->bc_n = k;
    CRASH_POINT("fe_bcast_taken");
    for (uint32_t i = 0; i < k; i++)
        deliver(&to[i], &v, end.u.h);
    shm_count_release(fe->shm, p->bc_h, &p->bc_n); /* what was not taken */
}

bool fe_bcast_first(fe_conn_t *c)
{
    uint32_t w = shm_slot_owner(fe->shm, c->slot);
    if (ring_count(shm_bcast(fe->shm, w, fe->idx)) == 0)
        return false;
    if (!c->bc_later) {
        c->bc_later = true;
        if (n_later == later_cap) {
            later_cap = later_cap ? 2 * later_cap : 64;
            later = mem_realloc(later, later_cap * sizeof(*later));
        }
        later[n_later++] = fe_cookie(c);
    }
    event_active(fe->ev_wake, EV_READ, 0); /* on_wake() takes the groups */
    return true;
}

static void take_groups(void)
{
    for (uint32_t w = 0; w < fe->n_fo; w++) {
        ring_t *r = shm_bcast(fe->shm, w, fe->idx);
        uint32_t n = ring_count(r);
        while (n > 0) {
            uint32_t k = 0;
            while (k < n &&
                   ((const bc_rec_t *)ring_peek(r, k))->type == BC_TO)
                k++;
            const bc_rec_t *end = k < n ? ring_peek(r, k) : NULL;
            if (end == NULL || end->type != BC_MSG || end->aux != k) {
                /* A group is committed whole: this is not one. */
                uint32_t skip = end ? k + 1 : n;
                log_err("broadcast ring from worker %u: %u records that "
                        "are not a group skipped", w, skip);
                ring_consume(r, skip);
                n -= skip;
                continue;
            }
            take_group(w, r, k);
            n -= k + 1;
        }
    }
}

void fe_bcast_drain(void)
{
    take_groups();
    /* Those that waited.  Each: its data ring's head, then the groups
     * committed before those records (newer ones may have come), then
     * those records, and no more: it does not wait again, however busy
     * the broadcast ring is. */
    for (uint32_t i = 0; i < n_later; i++) {
        fe_conn_t *c = fe_conn_by_cookie(later[i]);
        if (c == NULL || !c->bc_later)
            continue;
        c->bc_later = false;
        if (c->state != C_ACTIVE)
            continue;
        uint32_t n = ring_count(sess_ring(fe->shm, c->slot));
        take_groups(); /* may close any connection */
        c = fe_conn_by_cookie(later[i]);
        if (c != NULL && c->state == C_ACTIVE)
            fe_drain_slot_n(c, n);
    }
    n_later = 0;
}
