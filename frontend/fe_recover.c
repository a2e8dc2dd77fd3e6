/*
 * fe_recover.c -- what a frontend does when it starts, before it accepts
 * a connection: it takes over what a previous incarnation of the same
 * frontend index may have left (its arena partition, the references of
 * its output queues, the sessions it hosted).  On a first start all of it
 * finds nothing to do.  See docs/architecture.md, "Crash story".
 */
#include <string.h>

#include "fe.h"
#include "log.h"

/* Releases every reference held by an output queue of the previous
 * incarnation (their handles are in shm; see rel_drop() in fe_conn.c). */
static uint64_t release_queues(void)
{
    uint64_t n = 0;
    for (uint32_t id = 0; id < fe->shm->hdr->fe_conns; id++) {
        arena_h *rel = shm_fe_rel(fe->shm, fe->idx, id);
        if (!shm_resident(rel))
            continue; /* never used: reading would allocate the page */
        for (uint32_t k = 0; k < SHM_FE_IOV; k++) {
            arena_h h = rel[k];
            if (h == 0)
                continue;
            rel[k] = 0;
            FE_CRASH_ORDER();
            arena_release(&fe->shm->arena, h);
            n++;
        }
    }
    return n;
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
    /* Every record the previous incarnation posted is handled before a
     * worker answers this; until all have, replies are for it. */
    fe->syncing = fe->n_fo;
    for (uint32_t w = 0; w < fe->n_fo; w++) {
        ing_rec_t rec = {.type = ING_SYNC};
        fe_post(w, &rec);
    }
    fe_flush_dirty(); /* wakes the workers */
}

/* Hands back every session the previous incarnation hosted. */
static uint32_t detach_orphans(void)
{
    uint32_t n = 0;
    for (uint32_t slot = 0; slot < fe->shm->hdr->max_clients; slot++) {
        sess_slot_t *s = shm_slot(fe->shm, slot);
        if (!shm_resident(s))
            continue;
        uint32_t st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
        if ((st != SESS_ONLINE && st != SESS_HANDOFF) ||
            s->host_fe != fe->idx)
            continue;
        /* We are the role holder of this slot until the DETACH. */
        sess_repair(fe->shm, slot);
        fe_detach(slot, s->conn_gen, false, false);
        n++;
    }
    return n;
}

void fe_recover_synced(void)
{
    if (fe->syncing == 0) {
        log_err("frontend %u: unexpected SYNC answer", fe->idx);
        return;
    }
    if (--fe->syncing > 0)
        return;
    uint32_t n = detach_orphans();
    if (n)
        log_notice("frontend %u: %u sessions of its previous incarnation "
                   "handed back to their owners (wills published)",
                   fe->idx, n);
    for (int i = 0; i < fe->n_listen; i++)
        event_add(fe->ev_listen[i], NULL);
    log_info("frontend %u accepting connections", fe->idx);
}
