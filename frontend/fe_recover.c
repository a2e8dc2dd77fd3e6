/*
 * fe_recover.c -- what a frontend does when it starts, before it accepts
 * a connection: it takes over what a previous incarnation of the same
 * frontend index may have left (its arena partition, the references of
 * its output queues, an inbound QoS 2 message it was posting, the
 * sessions it hosted).  On a first start all of it finds nothing to do.
 * See docs/architecture.md, "Crash story".
 */
#include <string.h>

#include "fe.h"
#include "log.h"
#include "mem.h"

/* Releases every reference held by an output queue of the previous
 * incarnation (their handles are in shm; see rel_drop() in fe_conn.c).
 * Connection ids at or above the high-water mark were never used. */
static uint64_t release_queues(void)
{
    uint64_t n = fe->proc->held_n + fe->proc->bc_n;
    shm_held_release(fe->shm, fe->proc); /* its batch (Batched references) */
    shm_count_release(fe->shm, fe->proc->bc_h, &fe->proc->bc_n); /* a group's */
    uint32_t hw = __atomic_load_n(&fe->proc->high_water, __ATOMIC_RELAXED);
    if (hw > fe->shm->hdr->fe_conns)
        hw = fe->shm->hdr->fe_conns;
    for (uint32_t id = 0; id < hw; id++) {
        arena_h *rel = shm_fe_rel(fe->shm, fe->idx, id);
        for (uint32_t k = 0; k < SHM_FE_IOV; k++) {
            if (rel[k] == 0)
                continue;
            arena_drop(&fe->shm->arena, &rel[k]);
            n++;
        }
    }
    return n;
}

/* Calls fn for every slot ever used that is ONLINE or HANDOFF on this
 * frontend (each worker's slots below its high-water mark). */
static uint32_t each_hosted_slot(void (*fn)(uint32_t, sess_slot_t *))
{
    uint32_t n = 0, n_fo = fe->n_fo, max = fe->shm->hdr->max_clients;
    for (uint32_t w = 0; w < n_fo; w++) {
        uint32_t hw = __atomic_load_n(&shm_fo_proc(fe->shm, w)->high_water,
                                      __ATOMIC_ACQUIRE);
        for (uint32_t k = 0; k < hw; k++) {
            uint32_t slot = w + k * n_fo;
            if (slot >= max)
                break;
            sess_slot_t *s = shm_slot(fe->shm, slot);
            uint32_t st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
            if ((st != SESS_ONLINE && st != SESS_HANDOFF) ||
                s->host_fe != fe->idx)
                continue;
            fn(slot, s);
            n++;
        }
    }
    return n;
}

/* An inbound QoS 2 PUBLISH the previous incarnation was posting when it
 * died (handle_publish.c): posted to some workers, it is posted to the
 * rest and its packet id remembered, so the client's re-send is not
 * forwarded again.  Posted to none, it is forgotten: the client's re-send
 * is forwarded once.  Runs before anything is posted by this incarnation,
 * so the last record of each ingest ring is the dead one's. */
static void finish_posting(uint32_t slot, sess_slot_t *s)
{
    if (!s->in_posting)
        return;
    const ing_rec_t *have = NULL;
    uint32_t n_have = 0;
    for (uint32_t w = 0; w < fe->n_fo; w++) {
        const ing_rec_t *last = ring_last(shm_ingest(fe->shm, fe->idx, w));
        if (last && last->type == ING_PUBLISH && last->h1 == s->in_h) {
            have = last;
            n_have++;
        }
    }
    if (n_have > 0) {
        /* fe_post_publish() took every worker's reference before the
         * first post: the missing posts' references exist. */
        for (uint32_t w = 0; w < fe->n_fo; w++) {
            const ing_rec_t *last =
                ring_last(shm_ingest(fe->shm, fe->idx, w));
            if (last && last->type == ING_PUBLISH && last->h1 == s->in_h)
                continue;
            ing_rec_t rec = *have;
            fe_post(w, &rec);
        }
        uint8_t *b = &sess_qos2(fe->shm, slot)[s->in_pid >> 3];
        uint8_t bit = (uint8_t)(1u << (s->in_pid & 7));
        if (!(*b & bit)) {
            *b |= bit;
            s->n_qos2++;
        }
        log_notice("slot %u: inbound QoS 2 message %u finished posting "
                   "(%u of %u workers had it)", slot, s->in_pid, n_have,
                   fe->n_fo);
    }
    ARENA_CRASH_ORDER();
    s->in_posting = 0;
}

void fe_recover_start(void)
{
    arena_part_recover(&fe->shm->arena, fe->part);
    uint64_t n = release_queues();
    if (n)
        log_notice("frontend %u: released %llu references left in output "
                   "queues by its previous incarnation", fe->idx,
                   (unsigned long long)n);
    fe->proc->conns = 0;
    each_hosted_slot(finish_posting);
    /* Every record the previous incarnation posted is handled before a
     * worker answers this; until all have, replies are for it. */
    fe->syncing = fe->n_fo;
    fe->synced = mem_calloc(fe->n_fo, 1);
    for (uint32_t w = 0; w < fe->n_fo; w++) {
        ing_rec_t rec = {.type = ING_SYNC};
        fe_post(w, &rec);
    }
    fe_flush_dirty(); /* wakes the workers */
}

/* Hands back a session the previous incarnation hosted: we are the role
 * holder of the slot until the DETACH. */
static void detach_orphan(uint32_t slot, sess_slot_t *s)
{
    sess_repair(fe->shm, slot);
    fe_detach(slot, s->conn_gen, false, false, -1);
}

void fe_recover_synced(uint32_t w)
{
    if (fe->syncing == 0 || w >= fe->n_fo || fe->synced[w]) {
        /* A worker that died after answering and redid the record. */
        log_info("frontend %u: extra SYNC answer from worker %u ignored",
                 fe->idx, w);
        return;
    }
    fe->synced[w] = 1;
    if (--fe->syncing > 0)
        return;
    mem_free(fe->synced);
    fe->synced = NULL;
    uint32_t n = each_hosted_slot(detach_orphan);
    if (n)
        log_notice("frontend %u: %u sessions of its previous incarnation "
                   "handed back to their owners (wills published)",
                   fe->idx, n);
    for (int i = 0; i < fe->n_listen; i++)
        event_add(fe->ev_listen[i], NULL);
    log_info("frontend %u accepting connections", fe->idx);
}
