/*
 * fo_publish.c -- what a worker does with a PUBLISH: retained store,
 * matching against its subscription index, one delivery per client at the
 * highest granted QoS, and the queue limits (the retained messages a new
 * subscription gets: fo_retsend.c).
 */
#include <string.h>

#include "crashpoint.h"
#include "fo.h"
#include "log.h"
#include "mem.h"

/* The publisher of the message being matched (No Local), for on_match. */
static uint32_t match_publisher;

static void on_match(void *arg, uint32_t slot, uint8_t opts, uint32_t sub_id)
{
    fo_t *fo = arg;
    if ((opts & MQTT_SUBOPT_NO_LOCAL) && slot == match_publisher)
        return; /* MQTT 5 No Local: not back to its own publisher */
    uint32_t l = fo_local(fo, slot);
    uint8_t qos = opts & MQTT_SUBOPT_QOS_MASK;
    uint8_t rap = (opts & MQTT_SUBOPT_RAP) ? OUT_F_RETAIN : 0;
    fo_match_t *m;
    if (fo->stamp[l] != fo->epoch) {
        fo->stamp[l] = fo->epoch;
        fo->pos[l] = fo->n_match;
        m = &fo->match[fo->n_match++];
        m->slot = slot;
        m->qos = qos;
        m->rap = rap;
        m->bc = FO_BC_RING;
        m->sub_id = sub_id;
        m->xids = UINT32_MAX;
        return;
    }
    /* One delivery per client: the highest QoS, and every Subscription
     * Identifier of the subscriptions it matched (MQTT 5 3.3.4). */
    m = &fo->match[fo->pos[l]];
    if (m->qos < qos)
        m->qos = qos;
    m->rap |= rap;
    if (sub_id == 0)
        return;
    if (m->sub_id == 0) {
        m->sub_id = sub_id;
        return;
    }
    if (fo->n_xid == fo->xid_cap) {
        fo->xid_cap = fo->xid_cap ? fo->xid_cap * 2 : 64;
        fo->xid = mem_realloc(fo->xid, fo->xid_cap * sizeof(fo->xid[0]));
    }
    fo->xid[fo->n_xid].id = sub_id;
    fo->xid[fo->n_xid].next = m->xids;
    m->xids = fo->n_xid++;
}

/* Records a delivery takes: its OUT_SUBID records and itself. */
static uint32_t delivery_recs(const fo_t *fo, const fo_match_t *m)
{
    uint32_t n = 1;
    for (uint32_t x = m->xids; x != UINT32_MAX; x = fo->xid[x].next)
        n++;
    return n;
}

void fo_push_delivery(fo_t *fo, const fo_match_t *m, arena_h h,
                      uint8_t flags, uint32_t bytes)
{
    for (uint32_t x = m->xids; x != UINT32_MAX; x = fo->xid[x].next) {
        out_rec_t id = {.type = OUT_SUBID, .aux = fo->xid[x].id};
        fo_push(fo, m->slot, &id, 0);
    }
    out_rec_t o = {.h = h,
                   .type = OUT_DELIVER,
                   .qos = m->qos,
                   .flags = flags,
                   .aux = m->sub_id};
    fo_push(fo, m->slot, &o, bytes);
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

/* Whether delivery d can go in its host's broadcast group
 * (docs/architecture.md, "QoS 0 to many"): QoS 0 with at most one
 * Subscription Identifier, to an ONLINE session whose connection its
 * host has attached and takes broadcasts for, with nothing queued in the
 * slot's rings.  Reads no slot line (fo_online(), shm_bc_gen()) unless
 * the rings have to be looked at. */
static bool bcast_ok(fo_t *fo, const fo_match_t *d)
{
    uint32_t l = fo_local(fo, d->slot);
    uint32_t gen = fo->on_gen[l];
    if (d->qos != 0 || d->xids != UINT32_MAX || gen == 0 ||
        fo->on_fe[l] >= fo->n_fe ||
        __atomic_load_n(shm_bc_gen(fo->shm, d->slot), __ATOMIC_RELAXED) !=
            gen)
        return false;
    uint8_t *ringed = &fo->ringed[l];
    if (*ringed) {
        /* Has the host taken every record?  (Acquire loads of the tails,
         * pairing with its release stores.) */
        if (ring_used_producer(sess_ring(fo->shm, d->slot)) ||
            ring_used_producer(sess_ctl(fo->shm, d->slot)))
            return false;
        *ringed = 0;
    }
    return true;
}

/* A redo after a restart: a slot named in a broadcast group of message h
 * that the previous incarnation committed got it.  Such a group is the
 * last record of its ring (groups are committed after the message's other
 * pushes, and the next message was not handled). */
static void mark_bcast_done(fo_t *fo, arena_h h)
{
    for (uint32_t f = 0; f < fo->n_fe; f++) {
        const ring_t *b = shm_bcast(fo->shm, fo->idx, f);
        const bc_rec_t *end = ring_last(b);
        if (end == NULL || end->type != BC_MSG || end->u.h != h ||
            end->aux >= b->head)
            continue;
        uint64_t since = b->head - 1 - end->aux;
        for (uint64_t pos = since; pos + 1 < b->head; pos++) {
            const bc_rec_t *t = ring_at(b, since, pos);
            if (t == NULL || t->type != BC_TO ||
                t->u.to.slot >= fo->shm->hdr->max_clients ||
                t->u.to.slot % fo->n_fo != fo->idx)
                continue;
            uint32_t l = fo_local(fo, t->u.to.slot);
            if (fo->stamp[l] == fo->epoch)
                fo->match[fo->pos[l]].bc = FO_BC_DONE;
        }
    }
}

/* Writes the BC_TO record of delivery m into its host's group (not yet
 * committed: commit_groups()). */
static void group_add(fo_t *fo, const fo_match_t *m, uint8_t flags)
{
    uint32_t *k = &fo->n_bc[fo->n_fe + m->fe];
    bc_rec_t *t = ring_slot(shm_bcast(fo->shm, fo->idx, m->fe), (*k)++);
    t->u.to.slot = m->slot;
    t->u.to.conn_gen = fo->on_gen[fo_local(fo, m->slot)];
    t->aux = m->sub_id;
    t->type = BC_TO;
    t->flags = flags;
    t->pad = 0;
}

/* Closes and commits the broadcast groups of message h: each takes its
 * references from the count before its commit (a kill in between leaks
 * them), and its frontend is woken with the notifications. */
static void commit_groups(fo_t *fo, arena_h h)
{
    for (uint32_t f = 0; f < fo->n_fe; f++) {
        uint32_t n = fo->n_bc[f];
        if (n == 0)
            continue;
        ring_t *b = shm_bcast(fo->shm, fo->idx, f);
        bc_rec_t *end = ring_slot(b, n);
        end->u.h = h;
        end->aux = n;
        end->type = BC_MSG;
        end->flags = 0;
        end->pad = 0;
        fo->proc->held_n -= n;
        ARENA_CRASH_ORDER(); /* out of the count before the ring has them */
        ring_commit(b, n + 1);
        CRASH_POINT("fo_bcast_committed");
        fo->fe_dirty[f] = 1;
    }
}

void fo_on_publish(fo_t *fo, const ing_rec_t *r, bool redo)
{
    arena_t *a = &fo->shm->arena;
    uint32_t len;
    msg_view_t v;
    uint8_t *m = arena_get(a, r->h1, &len);
    if (m == NULL || msg_open(m, len, &v) < 0) {
        log_err("PUBLISH from frontend %u with stale or bad message handle",
                r->fe);
        return;
    }
    fo->proc->msgs_in++;
    /* The ingest reference goes once the record is consumed. */
    fo_release_after(fo, r->h1);
    if (msg_expired(&v, fo->now))
        return; /* MQTT 5 Message Expiry: nobody gets it any more */

    if (r->flags & ING_F_RETAIN)
        fo_ret_set(fo, v.topic, v.tlen, r->h1, r->qos, v.plen == 0);

    if (++fo->epoch == 0) {
        /* Stamps wrapped: forget them all once every 4 billion messages. */
        memset(fo->stamp, 0, fo->n_owned * sizeof(uint32_t));
        fo->epoch = 1;
    }
    fo->n_match = 0;
    fo->n_xid = 0;
    match_publisher = r->slot;
    fo_index_match(fo->ix, v.topic, v.tlen, on_match, fo);
    if (redo)
        mark_bcast_done(fo, r->h1);

    /* Decide first, then push.  A redo sends nothing by broadcast, and
     * neither does a worker with retained backlogs (which watch every
     * live delivery: fo_ret_jobs_pushed()). */
    bool bcast = !redo && fo->n_jobs == 0;
    memset(fo->n_bc, 0, 2 * (size_t)fo->n_fe * sizeof(uint32_t));
    uint32_t n = 0, skipped = 0;
    for (uint32_t i = 0; i < fo->n_match; i++) {
        fo_match_t d = fo->match[i];
        if (d.qos > r->qos)
            d.qos = r->qos;
        if (bcast && bcast_ok(fo, &d)) {
            /* Its rings are empty: nothing to wait for, room for one. */
            d.bc = FO_BC_GROUP;
            d.fe = fo->on_fe[fo_local(fo, d.slot)];
            fo->n_bc[d.fe]++;
            fo->match[n++] = d;
            continue;
        }
        sess_slot_t *s = shm_slot(fo->shm, d.slot);
        if (s->state == SESS_FREE)
            continue;
        if (redo && (d.bc == FO_BC_DONE || pushed_already(fo, d.slot, r->h1))) {
            skipped++; /* delivered before the restart */
            continue;
        }
        if (s->state == SESS_OFFLINE && d.qos == 0) {
            fo->proc->drops_offline0++;
            continue;
        }
        if (!fo_has_room(fo, d.slot, v.plen, delivery_recs(fo, &d)))
            continue; /* counted */
        d.bc = FO_BC_RING;
        fo->match[n++] = d;
    }
    for (uint32_t f = 0; f < fo->n_fe; f++)
        if (fo->n_bc[f] &&
            ring_space(shm_bcast(fo->shm, fo->idx, f), fo->n_bc[f] + 1) <
                fo->n_bc[f] + 1)
            fo->n_bc[f] = 0; /* no room for the group: the data rings */
    /* One reference per record, taken from the count just before its
     * push (a frontend may release it as soon as it sees the record): a
     * kill between the two leaks one reference, and a redo of this record
     * after a restart skips the slots that got theirs (pushed_already())
     * once fo_recover() has released what the count still held.  Retain
     * As Published keeps the RETAIN flag of what the publisher sent. */
    uint8_t retain = (r->flags & ING_F_RETAIN) ? OUT_F_RETAIN : 0;
    proc_t *p = fo->proc;
    if (n) {
        /* All n at once, counted as ours (docs/architecture.md, "Batched
         * references"): added before counted, so a kill leaks them and a
         * new incarnation never releases one it did not get. */
        p->held_h = r->h1;
        ARENA_CRASH_ORDER();
        arena_ref_add(a, r->h1, n);
        ARENA_CRASH_ORDER();
        p->held_n = n;
    }
    for (uint32_t i = 0; i < n; i++) {
        const fo_match_t *d = &fo->match[i];
        if (d->bc == FO_BC_GROUP && fo->n_bc[d->fe]) {
            group_add(fo, d, d->rap & retain); /* counted until the commit */
            continue;
        }
        p->held_n--;
        ARENA_CRASH_ORDER(); /* out of the count before the ring has it */
        fo_push_delivery(fo, d, r->h1, d->rap & retain, v.plen);
        CRASH_POINT("fo_pushed_one"); /* the rest still counted */
        if (fo->n_jobs)
            fo_ret_jobs_pushed(fo, d->slot, v.topic, v.tlen);
    }
    commit_groups(fo, r->h1);
    fo->proc->msgs_out += n;
    if (n)
        CRASH_POINT("fo_published");
    if (fo->idx == 0)
        fo_share_publish(fo, r, &v, redo);
    if (skipped)
        log_notice("worker %u: PUBLISH on %.*s redone after a restart: %u "
                   "deliveries made before it skipped, %u made now",
                   fo->idx, (int)v.tlen, v.topic, skipped, n);
}
