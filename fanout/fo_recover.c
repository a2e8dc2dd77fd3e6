/*
 * fo_recover.c -- what a fan-out worker does when it starts: it rebuilds
 * its private state (client-id map, subscription index, free slots,
 * retained map) from what shared memory holds for its slots, and takes
 * over its arena partition from a previous incarnation that may have died
 * at any instruction.  On a first start all of it finds nothing.  See
 * docs/architecture.md, "Crash story".
 */
#include <string.h>

#include "fo.h"
#include "log.h"
#include "mem.h"
#include "mqtt.h"
#include "topic.h"

#define FO_CHAIN_MAX 10000000u /* subscription records per session walked */

/* Rebuilds the subscriptions of slot from its chain.  A stale record ends
 * the chain there (logged).  Returns the records found. */
static uint32_t rebuild_subs(fo_t *fo, uint32_t slot)
{
    arena_t *a = &fo->shm->arena;
    sess_slot_t *s = shm_slot(fo->shm, slot);
    char key[4 + 65536];
    uint32_t n = 0;
    arena_h prev = 0;
    for (arena_h h = s->subs; h; n++) {
        uint32_t blen;
        sess_sub_t *sub = arena_get(a, h, &blen);
        if (sub == NULL || n >= FO_CHAIN_MAX ||
            sizeof(sess_sub_t) + sub->len > blen) {
            log_err("slot %u: subscription chain cut at a bad record", slot);
            if (prev)
                ((sess_sub_t *)arena_get(a, prev, NULL))->next = 0;
            else
                s->subs = 0;
            break;
        }
        sub->prev = prev; /* a kill may have left the head's prev behind */
        memcpy(key, &slot, sizeof(slot));
        memcpy(key + sizeof(slot), sub->filter, sub->len);
        strmap_put(&fo->subs, key, sizeof(slot) + sub->len, h);
        uint16_t foff;
        if (topic_share_split(sub->filter, sub->len, &foff) != 1)
            fo_index_add(fo->ix, sub->filter, sub->len, slot, sub->opts,
                         sub->sub_id); /* shared ones: worker 0's */
        prev = h;
        h = sub->next;
    }
    return n;
}

void fo_recover(fo_t *fo)
{
    arena_part_recover(&fo->shm->arena, fo->part);
    /* References taken for a publish's deliveries and not pushed, before
     * the redo takes its own (docs/architecture.md, "Batched
     * references"). */
    if (fo->proc->held_n)
        log_notice("worker %u: %llu references its predecessor had taken "
                   "for deliveries and not pushed released", fo->idx,
                   (unsigned long long)fo->proc->held_n);
    shm_held_release(fo->shm, fo->proc);
    uint32_t n_sess = 0, n_subs = 0, n_bad = 0;
    uint32_t *bad = NULL;
    uint32_t max = fo->shm->hdr->max_clients;
    uint32_t hw = fo->proc->high_water;
    /* Free slots go on the stack highest first, so the lowest is on top
     * (a fresh broker hands out slots in order). */
    for (int64_t i = (int64_t)max - 1; i >= 0; i--) {
        uint32_t slot = (uint32_t)i;
        if (slot % fo->n_fo != fo->idx)
            continue;
        sess_slot_t *s = shm_slot(fo->shm, slot);
        /* Above the high-water mark: never used (and not read, which
         * would allocate its page). */
        if (fo_local(fo, slot) >= hw || s->state == SESS_FREE) {
            fo->free_slots[fo->n_free++] = slot;
            continue;
        }
        fo_share_recover_slot(fo, slot); /* before anything is pushed */
        n_subs += rebuild_subs(fo, slot);
        uint16_t idlen;
        const char *id = blob_get(&fo->shm->arena, s->client_id, &idlen);
        if (id == NULL) {
            /* Caught half freed: finish the job below. */
            if (bad == NULL)
                bad = mem_calloc(max / fo->n_fo + 1, sizeof(uint32_t));
            bad[n_bad++] = slot;
            continue;
        }
        strmap_put(&fo->ids, id, idlen, slot);
        fo_online(fo, slot, s);
        n_sess++;
        if (s->state == SESS_ONLINE || s->state == SESS_HANDOFF)
            fo_touch(fo, slot); /* its host may have missed a wake-up */
    }
    for (uint32_t i = 0; i < n_bad; i++) {
        log_err("slot %u: session without a client id freed", bad[i]);
        fo_free_slot(fo, bad[i]);
    }
    mem_free(bad);
    fo_ret_rebuild(fo);
    if (fo->idx == 0)
        fo_share_rebuild(fo);
    /* The record the previous incarnation was handling is redone first.
     * Every frontend gets a wake-up: it may have died between a notify
     * record and the eventfd write. */
    uint32_t busy = fo->proc->busy_fe;
    fo->redo_fe = busy >= 1 && busy <= fo->n_fe + fo->n_fo ? (int)busy - 1
                                                            : -1;
    for (uint32_t f = 0; f < fo->n_fe; f++)
        fo->fe_dirty[f] = 1;
    if (n_sess)
        log_notice("fan-out worker %u: %u sessions with %u subscriptions "
                   "recovered", fo->idx, n_sess, n_subs);
}
