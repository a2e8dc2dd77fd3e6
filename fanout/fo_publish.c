/*
 * fo_publish.c -- what a worker does with a PUBLISH: retained store,
 * matching against its subscription index, one delivery per client at the
 * highest granted QoS, and the queue limits.
 */
#include <string.h>

#include "crashpoint.h"
#include "fo.h"
#include "log.h"
#include "mem.h"
#include "topic.h"

static void on_match(void *arg, uint32_t slot, uint8_t qos)
{
    fo_t *fo = arg;
    uint32_t l = fo_local(fo, slot);
    if (fo->stamp[l] != fo->epoch) {
        fo->stamp[l] = fo->epoch;
        fo->pos[l] = fo->n_match;
        fo->match[fo->n_match].slot = slot;
        fo->match[fo->n_match].qos = qos;
        fo->n_match++;
    } else if (fo->match[fo->pos[l]].qos < qos) {
        fo->match[fo->pos[l]].qos = qos;
    }
}

/* Queues the retained message of e to slot at most at qos. */
static void send_one_retained(fo_t *fo, uint32_t slot, strmap_ent_t *e,
                              uint8_t qos)
{
    arena_h h;
    uint8_t rq;
    if (fo_ret_at(fo, e, &h, &rq) < 0)
        return;
    uint32_t len;
    uint8_t *m = arena_get(&fo->shm->arena, h, &len);
    if (m == NULL || !fo_has_room(fo, slot, msg_payload_len(m, len)))
        return; /* counted */
    out_rec_t o = {.h = h,
                   .type = OUT_DELIVER,
                   .qos = rq < qos ? rq : qos,
                   .flags = OUT_F_RETAIN};
    arena_ref_add(&fo->shm->arena, h, 1);
    fo_push(fo, slot, &o, msg_payload_len(m, len));
}

void fo_send_retained(fo_t *fo, uint32_t slot, const char *filter,
                      uint16_t flen, uint8_t qos)
{
    if (memchr(filter, '+', flen) == NULL &&
        memchr(filter, '#', flen) == NULL) {
        /* No wildcard: one lookup. */
        strmap_ent_t *e = strmap_get(&fo->retained, filter, flen);
        if (e)
            send_one_retained(fo, slot, e, qos);
        return;
    }
    size_t i;
    for (strmap_ent_t *e = strmap_first(&fo->retained, &i); e;
         e = strmap_next(&fo->retained, e, &i))
        if (topic_matches(filter, flen, e->key, e->len))
            send_one_retained(fo, slot, e, qos);
}

/* True when slot's data ring already ends with a delivery of h: the
 * record holding h is being redone after a restart and this slot got it
 * before the kill.  The last pushed record stays readable after the
 * frontend consumed it: only we write the ring, and we pushed nothing
 * since. */
static bool pushed_already(fo_t *fo, uint32_t slot, arena_h h)
{
    const out_rec_t *last = ring_last(sess_ring(fo->shm, slot));
    return last != NULL && last->h == h;
}

void fo_on_publish(fo_t *fo, const ing_rec_t *r, bool redo)
{
    arena_t *a = &fo->shm->arena;
    uint32_t len;
    uint8_t *m = arena_get(a, r->h1, &len);
    if (m == NULL || len < 2 || (uint32_t)msg_topic_len(m) + 2 > len) {
        log_err("PUBLISH from frontend %u with stale or bad message handle",
                r->fe);
        return;
    }

    uint16_t tlen = msg_topic_len(m);
    const char *topic = (const char *)m + 2;
    fo->proc->msgs_in++;

    if (r->flags & ING_F_RETAIN)
        fo_ret_set(fo, topic, tlen, r->h1, r->qos, len == 2u + tlen);

    if (++fo->epoch == 0) {
        /* Stamps wrapped: forget them all once every 4 billion messages. */
        memset(fo->stamp, 0,
               (fo->shm->hdr->max_clients / fo->n_fo + 1) * sizeof(uint32_t));
        fo->epoch = 1;
    }
    fo->n_match = 0;
    fo_index_match(fo->ix, topic, tlen, on_match, fo);

    /* Decide first, then push. */
    uint32_t n = 0, skipped = 0;
    for (uint32_t i = 0; i < fo->n_match; i++) {
        uint32_t slot = fo->match[i].slot;
        sess_slot_t *s = shm_slot(fo->shm, slot);
        uint8_t q = fo->match[i].qos < r->qos ? fo->match[i].qos : r->qos;
        if (s->state == SESS_FREE)
            continue;
        if (redo && pushed_already(fo, slot, r->h1)) {
            skipped++; /* delivered before the restart */
            continue;
        }
        if (s->state == SESS_OFFLINE && q == 0) {
            fo->proc->drops_offline0++;
            continue;
        }
        if (!fo_has_room(fo, slot, len - 2u - tlen))
            continue; /* counted */
        fo->match[n].slot = slot;
        fo->match[n].qos = q;
        n++;
    }
    /* One reference per record, taken just before its push (a frontend
     * may release it as soon as it sees the record): a kill between the
     * two leaks one reference, and a redo of this record after a restart
     * skips the slots that got theirs (pushed_already()). */
    for (uint32_t i = 0; i < n; i++) {
        out_rec_t o = {.h = r->h1,
                       .type = OUT_DELIVER,
                       .qos = fo->match[i].qos};
        arena_ref_add(a, r->h1, 1);
        fo_push(fo, fo->match[i].slot, &o, len - 2u - tlen);
    }
    fo->proc->msgs_out += n;
    if (n)
        CRASH_POINT("fo_published");
    if (skipped)
        log_notice("worker %u: PUBLISH on %.*s redone after a restart: %u "
                   "deliveries made before it skipped, %u made now",
                   fo->idx, (int)tlen, topic, skipped, n);
    /* The ingest reference goes once the record is consumed. */
    fo_release_after(fo, r->h1);
}
