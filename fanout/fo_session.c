/*
 * fo_session.c -- a worker's side of sessions: connect (new, resumed,
 * taken over), detach, subscription changes and expiry.  The worker is
 * the only writer of its slots' owner fields and their subscription lists.
 */
#include <string.h>
#include <time.h>

#include "crashpoint.h"
#include "fo.h"
#include "log.h"
#include "mqtt.h"
#include "topic.h"


static void reply(fo_t *fo, uint32_t fe, const rep_rec_t *rep)
{
    ring_t *r = shm_reply(fo->shm, fo->idx, fe);
    if (ring_space(r, 1) < 1) {
        /* Frontends bound their outstanding connects below reply_cap. */
        log_err("reply ring to frontend %u full, connect answer lost", fe);
        return;
    }
    memcpy(ring_slot(r, 0), rep, sizeof(*rep));
    ring_commit(r, 1);
    fo->fe_dirty[fe] = 1;
}

void fo_on_sync(fo_t *fo, const ing_rec_t *r)
{
    /* Rings are FIFO: everything frontend r->fe posted before this record
     * was handled (its CONNECT answers are ahead of this one), except a
     * takeover still waiting for the old connection's DETACH: that
     * connection of the previous incarnation is gone, and its answer
     * must not meet a connection of the new one.  It is dropped. */
    uint32_t hw = fo->proc->high_water;
    for (uint32_t k = 0; k < hw; k++) {
        uint32_t slot = fo->idx + k * fo->n_fo;
        if (slot >= fo->shm->hdr->max_clients)
            break;
        sess_slot_t *s = shm_slot(fo->shm, slot);
        if (s->state != SESS_HANDOFF || s->pend.type != ING_CONNECT ||
            s->pend.fe != r->fe)
            continue;
        arena_h will = s->pend.h2;
        s->pend.type = 0;
        ARENA_CRASH_ORDER();
        if (will && will != s->will)
            arena_release(&fo->shm->arena, will);
        log_info("slot %u: takeover by a connection of a restarted "
                 "frontend %u dropped", slot, r->fe);
    }
    rep_rec_t rep = {.type = REP_SYNC};
    reply(fo, r->fe, &rep);
}


/* Key of slot's subscription to a filter in fo->subs. */
static size_t sub_key(char *key, uint32_t slot, const char *f, uint16_t flen)
{
    memcpy(key, &slot, sizeof(slot));
    memcpy(key + sizeof(slot), f, flen);
    return sizeof(slot) + flen;
}

/* Unlinks and frees the subscription record h of slot, and forgets it. */
static void sub_drop(fo_t *fo, uint32_t slot, arena_h h, sess_sub_t *sub)
{
    arena_t *a = &fo->shm->arena;
    sess_slot_t *s = shm_slot(fo->shm, slot);
    sess_sub_t *prev = sub->prev ? arena_get(a, sub->prev, NULL) : NULL;
    sess_sub_t *next = sub->next ? arena_get(a, sub->next, NULL) : NULL;
    if (prev)
        prev->next = sub->next;
    else
        s->subs = sub->next;
    if (next)
        next->prev = sub->prev;
    char key[4 + 65536];
    strmap_del(&fo->subs, key, sub_key(key, slot, sub->filter, sub->len));
    fo_index_remove(fo->ix, sub->filter, sub->len, slot);
    arena_release(a, h);
}

/* Empties a session: subscriptions, queued records, inflight entries and
 * inbound QoS 2 state.  The caller holds the role (no frontend attached). */
static void wipe(fo_t *fo, uint32_t slot)
{
    arena_t *a = &fo->shm->arena;
    sess_slot_t *s = shm_slot(fo->shm, slot);
    while (s->subs) {
        arena_h h = s->subs;
        sess_sub_t *sub = arena_get(a, h, NULL);
        if (sub == NULL) {
            log_err("slot %u: stale subscription record", slot);
            s->subs = 0;
            break;
        }
        sub_drop(fo, slot, h, sub);
    }
    /* We hold the consumer role (no frontend attached).  The session
     * ends: shared-subscription messages it holds go to another member;
     * its epoch changes, so worker 0 drops it from its groups. */
    s->epoch++;
    fo_share_handover(fo, slot);
    ring_t *data = sess_ring(fo->shm, slot), *ctl = sess_ctl(fo->shm, slot);
    sess_ring_drop(fo->shm, data, ring_count(data));
    sess_ring_drop(fo->shm, ctl, ring_count(ctl));
    s->q_bytes_out = s->q_bytes_in; /* we hold the role: the queue is empty */
    sess_inf_clear(fo->shm, slot);
    if (s->n_qos2) {
        memset(sess_qos2(fo->shm, slot), 0, SHM_QOS2_BITMAP);
        s->n_qos2 = 0;
    }
}

void fo_free_slot(fo_t *fo, uint32_t slot)
{
    sess_slot_t *s = shm_slot(fo->shm, slot);
    wipe(fo, slot);
    uint8_t *id = arena_get(&fo->shm->arena, s->client_id, NULL);
    if (id)
        strmap_del(&fo->ids, id + 2, blob_len(id));
    arena_drop(&fo->shm->arena, &s->client_id);
    arena_drop(&fo->shm->arena, &s->will);
    s->state = SESS_FREE;
    fo_online(fo, slot, s);
    fo->free_slots[fo->n_free++] = slot;
}

static void attach(fo_t *fo, uint32_t slot, const ing_rec_t *r, int present)
{
    sess_slot_t *s = shm_slot(fo->shm, slot);
    /* The record's will moves into the slot; the old one goes after.  A
     * redo of this record finds its will in place already. */
    arena_h old = s->will;
    s->will_at = 0; /* back in time: a delayed will is not sent */
    s->will = r->h2;
    ARENA_CRASH_ORDER();
    if (old && old != r->h2)
        arena_release(&fo->shm->arena, old);
    s->will_qos = r->qos;
    s->will_retain = (r->flags & ING_F_WILL_RETAIN) != 0;
    s->level = (uint8_t)(r->b & 0xff);
    /* How long the session outlives the connection: an MQTT 5 client
     * says (the record's slot field); a 3.1.1 clean session ends with it;
     * a persistent one lasts persistent_client_expiration (0: forever),
     * as an MQTT 5 session that asked for "never" does. */
    uint32_t expiry = r->slot;
    if (s->level != MQTT_V5)
        expiry = (r->flags & ING_F_CLEAN) ? 0 : CONN_EXPIRY_NEVER;
    if (expiry == CONN_EXPIRY_NEVER && fo->cfg->persistent_client_expiration)
        expiry = fo->cfg->persistent_client_expiration;
    s->expiry = expiry;
    s->clean = expiry == 0;
    s->host_fe = r->fe;
    s->cookie = r->a;
    s->present = (uint8_t)present;
    s->conn_gen++;
    CRASH_POINT("fo_attaching");
    ARENA_CRASH_ORDER(); /* ONLINE with this cookie means: attached (redo) */
    /* The reply ring's release commit publishes these fields (and the
     * ring and inflight state we may have wiped) to the new host. */
    s->state = SESS_ONLINE;
    fo_online(fo, slot, s);
    ARENA_CRASH_ORDER(); /* pend goes only once ONLINE (fo_on_detach redo) */
    s->pend.type = 0;
    rep_rec_t rep = {.type = REP_CONNECT_OK,
                     .session_present = (uint8_t)present,
                     .cookie = r->a,
                     .slot = slot,
                     .conn_gen = s->conn_gen};
    reply(fo, r->fe, &rep);
}

/* Refuses the CONNECT being handled: its blobs go once it is consumed. */
static void refuse(fo_t *fo, const ing_rec_t *r, uint8_t rc)
{
    fo_release_after(fo, r->h1);
    fo_release_after(fo, r->h2);
    rep_rec_t rep = {.type = REP_CONNECT_FAIL, .rc = rc, .cookie = r->a};
    reply(fo, r->fe, &rep);
}

/* A redo after a restart: true when the CONNECT r was handled before the
 * kill (the session is attached with its cookie, or waits in HANDOFF with
 * it); the answer is sent again only if it never reached the ring. */
static bool connect_done(fo_t *fo, uint32_t slot, const ing_rec_t *r)
{
    sess_slot_t *s = shm_slot(fo->shm, slot);
    if (s->state == SESS_HANDOFF && s->pend.type == ING_CONNECT &&
        s->pend.a == r->a && s->pend.fe == r->fe)
        return true;
    if (s->state != SESS_ONLINE || s->cookie != r->a || s->host_fe != r->fe)
        return false;
    const rep_rec_t *last = ring_last(shm_reply(fo->shm, fo->idx, r->fe));
    if (last == NULL || last->cookie != r->a ||
        last->type != REP_CONNECT_OK) {
        rep_rec_t rep = {.type = REP_CONNECT_OK,
                         .session_present = s->present,
                         .cookie = r->a,
                         .slot = slot,
                         .conn_gen = s->conn_gen};
        reply(fo, r->fe, &rep);
    }
    return true;
}

void fo_on_connect(fo_t *fo, const ing_rec_t *r, bool redo)
{
    arena_t *a = &fo->shm->arena;
    uint16_t idlen;
    const char *id = blob_get(a, r->h1, &idlen);
    if (id == NULL) {
        log_err("CONNECT from frontend %u with bad client-id blob", r->fe);
        refuse(fo, r, MQTT_RC_UNAVAILABLE);
        return;
    }
    int clean = (r->flags & ING_F_CLEAN) != 0;
    strmap_ent_t *e = strmap_get(&fo->ids, id, idlen);

    if (e == NULL) {
        if (fo->n_free == 0) {
            log_warn("no free session slot for client %.*s (max_clients)",
                     (int)idlen, id);
            refuse(fo, r, MQTT_RC_UNAVAILABLE);
            return;
        }
        uint32_t slot = fo->free_slots[--fo->n_free];
        sess_slot_t *s = shm_slot(fo->shm, slot);
        if (fo_local(fo, slot) >= fo->proc->high_water) {
            /* Recovery (ours and the frontends') reads slots below this
             * mark; the reply's release commit publishes it. */
            fo->proc->high_water = fo_local(fo, slot) + 1;
            ARENA_CRASH_ORDER();
        }
        ring_init(sess_ring(fo->shm, slot), fo->shm->hdr->out_cap,
                  sizeof(out_rec_t));
        ring_init(sess_ctl(fo->shm, slot), SHM_CTL_CAP, sizeof(ctl_rec_t));
        /* The inflight table, the packet-id and QoS 2 bitmaps are empty:
         * zero from ftruncate, or left empty by wipe(). */
        s->subs = 0;
        s->will = 0;
        s->drops = 0;
        s->q_bytes_in = 0;
        s->q_bytes_out = 0;
        s->next_pid = 0;
        s->queued = 0;
        s->client_id = r->h1; /* keeps the blob's reference */
        s->epoch++; /* a new session (shared subscription members) */
        strmap_put(&fo->ids, id, idlen, slot);
        attach(fo, slot, r, 0);
        return;
    }

    uint32_t slot = (uint32_t)e->val;
    sess_slot_t *s = shm_slot(fo->shm, slot);
    /* The slot keeps its own copy of the id (unless this very blob is it:
     * a redo of the CONNECT that made the session). */
    if (s->client_id != r->h1)
        fo_release_after(fo, r->h1);
    if (redo && connect_done(fo, slot, r)) {
        log_notice("worker %u: CONNECT for slot %u was handled before a "
                   "restart", fo->idx, slot);
        return;
    }
    switch (s->state) {
    case SESS_OFFLINE:
        if (clean)
            wipe(fo, slot);
        attach(fo, slot, r, !clean);
        break;
    case SESS_ONLINE: {
        /* Takeover: ask the host to close the old connection; continue
         * when its DETACH arrives. */
        s->pend = *r;
        s->pend.h1 = 0;
        ARENA_CRASH_ORDER();
        ctl_rec_t kick = {.type = CTL_KICK, .conn_gen = s->conn_gen};
        fo_push_ctl(fo, slot, &kick);
        s->state = SESS_HANDOFF;
        fo_online(fo, slot, s);
        break;
    }
    case SESS_HANDOFF: {
        /* A third connection while the second waits: the newest wins. */
        ing_rec_t old = s->pend;
        s->pend = *r;
        s->pend.h1 = 0;
        ARENA_CRASH_ORDER();
        rep_rec_t rep = {.type = REP_CONNECT_FAIL, .rc = 0xff,
                         .cookie = old.a};
        reply(fo, old.fe, &rep);
        if (old.h2 && old.h2 != s->will)
            arena_release(a, old.h2);
        break;
    }
    default: {
        log_err("client-id map points at free slot %u", slot);
        /* h1 is released above already */
        fo_release_after(fo, r->h2);
        rep_rec_t rep = {.type = REP_CONNECT_FAIL,
                         .rc = MQTT_RC_UNAVAILABLE,
                         .cookie = r->a};
        reply(fo, r->fe, &rep);
    }
    }
}

/*
 * Sends the delayed will of slot: the frontend that hosted the session
 * last publishes it (workers post nothing to each other).  The record
 * holds a reference of its own; the caller drops the slot's after.  A
 * full reply ring loses the will (logged): frontends keep it far from
 * full.  A kill between the push and the drop sends the will twice after
 * the restart (docs/architecture.md, "Crash story").
 */
static void will_send(fo_t *fo, uint32_t slot)
{
    sess_slot_t *s = shm_slot(fo->shm, slot);
    if (s->will == 0)
        return;
    ring_t *r = shm_reply(fo->shm, fo->idx, s->host_fe);
    if (ring_space(r, 1) < 1) {
        log_err("slot %u: reply ring to frontend %u full, will dropped",
                slot, s->host_fe);
        return;
    }
    arena_ref_add(&fo->shm->arena, s->will, 1);
    rep_rec_t rep = {.type = REP_WILL,
                     .rc = s->will_qos,
                     .session_present = s->will_retain,
                     .slot = slot,
                     .h = s->will};
    reply(fo, s->host_fe, &rep);
}

/* The connection of slot's session ended: QoS 0 deliveries still in its
 * ring are not for the next one, as in Mosquitto (queue_qos0_messages
 * false; MQTT 3.1.1 3.1.2.4 leaves keeping them to the server).  No
 * frontend reads the ring now (its host sent the DETACH we handle, and
 * the next one attaches after it), so they are marked in place, between
 * the QoS 1/2 records that stay, and the next host drops them. */
static void stale_qos0(fo_t *fo, uint32_t slot)
{
    /* We hold the consumer role (as in wipe()): the consumer's view. */
    ring_t *r = sess_ring(fo->shm, slot);
    uint32_t n = 0, count = ring_count(r);
    for (uint32_t i = 0; i < count; i++) {
        out_rec_t *o = ring_peek(r, i);
        /* Through a shared subscription: left for the group (handed to
         * another member when the session ends, fo_share_handover()). */
        if (o->type == OUT_DELIVER && o->qos == 0 &&
            !(o->flags & (OUT_F_STALE | OUT_F_SHARED))) {
            o->flags |= OUT_F_STALE;
            n++;
        }
    }
    fo->proc->drops_offline0 += n;
}

void fo_on_detach(fo_t *fo, const ing_rec_t *r)
{
    uint32_t slot = r->slot;
    if (slot >= fo->shm->hdr->max_clients ||
        shm_slot_owner(fo->shm, slot) != fo->idx) {
        log_err("DETACH for slot %u not owned by worker %u", slot, fo->idx);
        return;
    }
    sess_slot_t *s = shm_slot(fo->shm, slot);
    if (s->state == SESS_HANDOFF && s->pend.type == ING_CONNECT &&
        s->cookie == s->pend.a && s->host_fe == s->pend.fe) {
        /* A redo after a restart: the previous incarnation died inside
         * attach() of the waiting CONNECT (fields written, not ONLINE
         * yet); the old connection's DETACH was this record.  Finish. */
        ing_rec_t next = s->pend;
        log_notice("worker %u: takeover of slot %u finished after a "
                   "restart", fo->idx, slot);
        attach(fo, slot, &next, s->present);
        return;
    }
    if ((s->state != SESS_ONLINE && s->state != SESS_HANDOFF) ||
        s->conn_gen != r->a || s->host_fe != r->fe) {
        log_debug("stale DETACH for slot %u ignored", slot);
        return;
    }
    if (r->flags & ING_F_EXPIRY) {
        /* MQTT 5 DISCONNECT with a new Session Expiry Interval (the
         * frontend refused a change from 0). */
        s->expiry = r->b;
        s->clean = r->b == 0;
    }
    /* The frontend published the will if the close was not clean, unless
     * it is delayed (MQTT 5 Will Delay Interval): then it waits in the
     * slot, sent by fo_expire_sessions() at min(delay, session expiry)
     * unless the client is back before. */
    int delayed = (r->flags & ING_F_WILL_DELAY) && s->will &&
                  s->state == SESS_ONLINE && !s->clean &&
                  !(r->flags & ING_F_DISCARD);
    if (delayed) {
        uint32_t len;
        msg_view_t v;
        uint8_t *m = arena_get(&fo->shm->arena, s->will, &len);
        uint32_t d = m && msg_open(m, len, &v) == 0 ? v.will_delay : 0;
        if (d > s->expiry)
            d = s->expiry;
        /* Whole seconds: + 1 so that it is never early. */
        s->will_at = fo->now + d + 1;
    } else {
        /* The session ends now, so does the wait; a takeover is the
         * client back in time: no will. */
        if ((r->flags & ING_F_WILL_DELAY) && s->will &&
            s->state != SESS_HANDOFF)
            will_send(fo, slot);
        s->will_at = 0;
        arena_drop(&fo->shm->arena, &s->will);
    }
    int was_clean = s->clean;
    /* An administrator's kick may discard even a persistent session. */
    int discard = (r->flags & ING_F_DISCARD) != 0;
    stale_qos0(fo, slot);
    if (s->state == SESS_HANDOFF && s->pend.type == ING_CONNECT) {
        /* attach() clears pend: until then a redo finds it again. */
        ing_rec_t next = s->pend;
        int clean = (next.flags & ING_F_CLEAN) != 0;
        if (clean || was_clean || discard)
            wipe(fo, slot);
        attach(fo, slot, &next, !clean && !was_clean && !discard);
        return;
    }
    if (was_clean || discard) {
        fo_free_slot(fo, slot);
    } else {
        s->state = SESS_OFFLINE;
        fo_online(fo, slot, s);
        s->offline_since = (uint64_t)time(NULL);
    }
}

void fo_on_subscribe(fo_t *fo, const ing_rec_t *r, int unsubscribe,
                     bool redo)
{
    arena_t *a = &fo->shm->arena;
    uint32_t slot = r->slot;
    uint32_t blen;
    uint8_t *b = arena_get(a, r->h1, &blen);
    if (b == NULL) {
        log_err("SUBSCRIBE from frontend %u with stale blob", r->fe);
        return;
    }
    if (slot >= fo->shm->hdr->max_clients ||
        shm_slot_owner(fo->shm, slot) != fo->idx) {
        log_err("SUBSCRIBE for slot %u not owned by worker %u", slot,
                fo->idx);
        fo_release_after(fo, r->h1);
        return;
    }
    sess_slot_t *s = shm_slot(fo->shm, slot);
    if (redo && s->state != SESS_FREE) {
        /* Handled before a restart if its SUBACK is in the control ring
         * (the blob moved there); retained messages it was still sending
         * then are not sent again.  The reference we took for reading the
         * blob after the push is released. */
        const ctl_rec_t *last = ring_last(sess_ctl(fo->shm, slot));
        if (last != NULL && last->h == r->h1) {
            log_notice("worker %u: (UN)SUBSCRIBE for slot %u was handled "
                       "before a restart", fo->idx, slot);
            fo_release_after(fo, r->h1);
            return;
        }
    }
    if (s->state != SESS_ONLINE || s->conn_gen != r->a) {
        fo_release_after(fo, r->h1); /* connection gone meanwhile */
        return;
    }
    sub_blob_t sb;
    if (sub_blob_open(b, blen, &sb) < 0) {
        log_err("malformed subscription blob from frontend %u ignored",
                r->fe);
        fo_release_after(fo, r->h1);
        return;
    }
    char key[4 + 65536];
    const uint8_t *p = sb.ents;
    for (uint32_t i = 0; i < sb.n; i++) {
        sub_ent_t en;
        uint8_t *ent = (uint8_t *)p;
        sub_blob_next(&p, &en);
        const char *f = en.filter;
        uint16_t flen = en.len;
        uint8_t opts = en.opts & (uint8_t)~SUBB_OPT_NEW;
        uint16_t foff;
        /* A shared filter is kept with the session for its UNSUBACK and
         * bookkeeping; worker 0 delivers through it (fo_share.c). */
        bool shared = topic_share_split(f, flen, &foff) == 1;
        size_t klen = sub_key(key, slot, f, flen);
        strmap_ent_t *e = strmap_get(&fo->subs, key, klen);
        arena_h h = e ? (arena_h)e->val : 0;
        sess_sub_t *sub = h ? arena_get(a, h, NULL) : NULL;
        if (unsubscribe) {
            if (sub)
                sub_drop(fo, slot, h, sub);
            else if (en.code < sb.n_codes)
                sb.codes[en.code] = MQTT5_RC_NO_SUBSCRIPTION_EXISTED;
            continue;
        }
        if (sub) {
            sub->opts = opts;
            sub->sub_id = en.sub_id;
        } else {
            void *d;
            h = arena_alloc(a, fo->part, sizeof(sess_sub_t) + flen, &d);
            if (h == 0) {
                /* Tell the client the truth: this filter failed. */
                log_err("worker %u arena partition full: subscription of "
                        "slot %u to %.*s refused", fo->idx, slot, (int)flen,
                        f);
                if (en.code < sb.n_codes)
                    sb.codes[en.code] = MQTT_SUBACK_FAILURE;
                continue;
            }
            sub = d;
            sub->opts = opts;
            sub->sub_id = en.sub_id;
            sub->len = flen;
            memcpy(sub->filter, f, flen);
            sub->prev = 0;
            sub->next = s->subs;
            ARENA_CRASH_ORDER(); /* whole before the chain shows it */
            if (s->subs) {
                sess_sub_t *first = arena_get(a, s->subs, NULL);
                if (first)
                    first->prev = h;
            }
            s->subs = h;
            strmap_put(&fo->subs, key, klen, h);
            ent[0] |= SUBB_OPT_NEW; /* for Retain Handling 1 below */
        }
        if (!shared)
            fo_index_add(fo->ix, f, flen, slot, opts, en.sub_id);
    }
    /* The SUBACK/UNSUBACK goes through the control ring: never behind
     * deliveries, always before the retained messages pushed below. */
    ctl_rec_t ack = {.h = r->h1,
                     .type = CTL_RAW,
                     .conn_gen = s->conn_gen,
                     .len = sb.ack_len};
    /* The host may release the blob as soon as it sees the record: we
     * keep a reference of our own for reading the entries below (a kill
     * before its release leaks it, never frees early). */
    arena_ref_add(a, r->h1, 1);
    fo_release_after(fo, r->h1);
    ARENA_CRASH_ORDER(); /* taken before the push (the redo above) */
    fo_push_ctl(fo, slot, &ack);
    CRASH_POINT("fo_suback_pushed");
    if (unsubscribe || !fo->cfg->retain_available)
        return;
    p = sb.ents;
    for (uint32_t i = 0; i < sb.n; i++) {
        sub_ent_t en;
        sub_blob_next(&p, &en);
        /* Retain Handling: 0 always, 1 for a new subscription only, 2
         * never (MQTT 5 3.8.3.1); 3.1.1 entries have 0. */
        uint8_t rh = (en.opts & MQTT_SUBOPT_RH_MASK) >> MQTT_SUBOPT_RH_SHIFT;
        uint16_t foff;
        if (rh == 2 || (rh == 1 && !(en.opts & SUBB_OPT_NEW)) ||
            topic_share_split(en.filter, en.len, &foff) == 1)
            continue; /* no retained messages for a shared subscription */
        if (en.code >= sb.n_codes || sb.codes[en.code] >= 0x80)
            continue;
        strmap_ent_t *e =
            strmap_get(&fo->subs, key, sub_key(key, slot, en.filter, en.len));
        if (e)
            fo_send_retained(fo, slot, (arena_h)e->val, en.filter, en.len);
    }
}

void fo_expire_sessions(fo_t *fo)
{
    uint64_t now = fo->now;
    uint32_t hw = fo->proc->high_water;
    for (uint32_t k = 0; k < hw; k++) {
        uint32_t slot = fo->idx + k * fo->n_fo;
        if (slot >= fo->shm->hdr->max_clients)
            break;
        sess_slot_t *s = shm_slot(fo->shm, slot);
        if (s->state != SESS_OFFLINE)
            continue;
        if (s->will_at && now >= s->will_at) {
            will_send(fo, slot);
            s->will_at = 0;
            arena_drop(&fo->shm->arena, &s->will);
        }
        /* Whole seconds: only once past, never early. */
        if (s->expiry != CONN_EXPIRY_NEVER &&
            now - s->offline_since > s->expiry) {
            log_notice("expiring offline session in slot %u", slot);
            if (s->will) {
                will_send(fo, slot); /* the session ends: the will goes */
                s->will_at = 0;
                arena_drop(&fo->shm->arena, &s->will);
            }
            fo_free_slot(fo, slot);
        }
    }
}

/*
 * Admin socket (fo_admin.c): frees the OFFLINE session in slot if it still
 * has connection generation conn_gen (the session the supervisor saw).
 * Returns 0, or -1 when the slot is not such a session of this worker
 * (nothing is changed).  Declared in fo_admin.h.
 */
int fo_session_discard(fo_t *fo, uint32_t slot, uint32_t conn_gen)
{
    if (slot >= fo->shm->hdr->max_clients ||
        shm_slot_owner(fo->shm, slot) != fo->idx)
        return -1;
    sess_slot_t *s = shm_slot(fo->shm, slot);
    if (s->state != SESS_OFFLINE || s->conn_gen != conn_gen)
        return -1;
    log_notice("offline session in slot %u discarded by the administrator",
               slot);
    fo_free_slot(fo, slot);
    return 0;
}
