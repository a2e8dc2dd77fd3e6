/*
 * fo_session.c -- a worker's side of sessions: connect (new, resumed,
 * taken over), detach, subscription changes and expiry.  The worker is
 * the only writer of its slots' owner fields and their subscription lists.
 */
#include <string.h>
#include <time.h>

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

static void release_if(fo_t *fo, arena_h h)
{
    if (h)
        arena_release(&fo->shm->arena, h);
}

/* Empties a session: subscriptions, queued records, inflight entries and
 * inbound QoS 2 state.  The caller holds the role (no frontend attached). */
static void wipe(fo_t *fo, uint32_t slot)
{
    arena_t *a = &fo->shm->arena;
    sess_slot_t *s = shm_slot(fo->shm, slot);
    arena_h h = s->subs;
    while (h) {
        sess_sub_t *sub = arena_get(a, h, NULL);
        if (sub == NULL) {
            log_err("slot %u: stale subscription record", slot);
            break;
        }
        fo_index_remove(fo->ix, sub->filter, sub->len, slot);
        arena_h next = sub->next;
        arena_release(a, h);
        h = next;
    }
    s->subs = 0;
    ring_t *r = sess_ring(fo->shm, slot);
    uint32_t n = ring_count(r);
    for (uint32_t i = 0; i < n; i++) {
        out_rec_t *o = ring_peek(r, i);
        if (o->h)
            arena_release(a, o->h);
    }
    ring_consume(r, n);
    sess_inflight_t *inf = sess_inflight(fo->shm, slot);
    for (uint32_t i = 0; i < fo->shm->hdr->max_inflight; i++) {
        if (inf[i].state != INF_FREE)
            release_if(fo, inf[i].h);
        memset(&inf[i], 0, sizeof(inf[i]));
    }
    s->n_inflight = 0;
    memset(sess_qos2(fo->shm, slot), 0, SHM_QOS2_BITMAP);
}

static void free_slot(fo_t *fo, uint32_t slot)
{
    sess_slot_t *s = shm_slot(fo->shm, slot);
    wipe(fo, slot);
    uint8_t *id = arena_get(&fo->shm->arena, s->client_id, NULL);
    if (id)
        strmap_del(&fo->ids, id + 2, msg_topic_len(id));
    release_if(fo, s->client_id);
    release_if(fo, s->will);
    s->client_id = 0;
    s->will = 0;
    s->state = SESS_FREE;
    fo->free_slots[fo->n_free++] = slot;
}

static void attach(fo_t *fo, uint32_t slot, const ing_rec_t *r, int present)
{
    sess_slot_t *s = shm_slot(fo->shm, slot);
    release_if(fo, s->will);
    s->will = r->h2;
    s->will_qos = r->qos;
    s->will_retain = (r->flags & ING_F_WILL_RETAIN) != 0;
    s->clean = (r->flags & ING_F_CLEAN) != 0;
    s->level = (uint8_t)(r->b & 0xff);
    s->host_fe = r->fe;
    s->conn_gen++;
    /* The reply ring's release commit publishes these fields (and the
     * ring and inflight state we may have wiped) to the new host. */
    s->state = SESS_ONLINE;
    rep_rec_t rep = {.type = REP_CONNECT_OK,
                     .session_present = (uint8_t)present,
                     .cookie = r->a,
                     .slot = slot,
                     .conn_gen = s->conn_gen};
    reply(fo, r->fe, &rep);
}

static void refuse(fo_t *fo, const ing_rec_t *r, uint8_t rc)
{
    release_if(fo, r->h1);
    release_if(fo, r->h2);
    rep_rec_t rep = {.type = REP_CONNECT_FAIL, .rc = rc, .cookie = r->a};
    reply(fo, r->fe, &rep);
}

void fo_on_connect(fo_t *fo, const ing_rec_t *r)
{
    arena_t *a = &fo->shm->arena;
    uint32_t blen;
    uint8_t *blob = arena_get(a, r->h1, &blen);
    if (blob == NULL || blen < 2 || 2u + msg_topic_len(blob) > blen) {
        log_err("CONNECT from frontend %u with bad client-id blob", r->fe);
        refuse(fo, r, MQTT_RC_UNAVAILABLE);
        return;
    }
    const char *id = (const char *)blob + 2;
    uint16_t idlen = msg_topic_len(blob);
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
        ring_init(sess_ring(fo->shm, slot), fo->shm->hdr->out_cap,
                  sizeof(out_rec_t));
        memset(sess_inflight(fo->shm, slot), 0,
               fo->shm->hdr->max_inflight * sizeof(sess_inflight_t));
        memset(sess_qos2(fo->shm, slot), 0, SHM_QOS2_BITMAP);
        s->subs = 0;
        s->will = 0;
        s->drops = 0;
        s->next_pid = 0;
        s->n_inflight = 0;
        s->queued = 0;
        s->client_id = r->h1; /* keeps the blob's reference */
        strmap_put(&fo->ids, id, idlen, slot);
        attach(fo, slot, r, 0);
        return;
    }

    uint32_t slot = (uint32_t)e->val;
    sess_slot_t *s = shm_slot(fo->shm, slot);
    arena_release(a, r->h1); /* the slot keeps its own copy of the id */
    switch (s->state) {
    case SESS_OFFLINE:
        if (clean)
            wipe(fo, slot);
        attach(fo, slot, r, !clean);
        break;
    case SESS_ONLINE: {
        /* Takeover: ask the host to close the old connection; continue
         * when its DETACH arrives. */
        out_rec_t kick = {.type = OUT_KICK, .aux = s->conn_gen};
        fo_push(fo, slot, &kick);
        s->state = SESS_HANDOFF;
        fo->pending[fo_local(fo, slot)] = *r;
        fo->pending[fo_local(fo, slot)].h1 = 0;
        break;
    }
    case SESS_HANDOFF: {
        /* A third connection while the second waits: the newest wins. */
        ing_rec_t *old = &fo->pending[fo_local(fo, slot)];
        refuse(fo, old, 0xff);
        *old = *r;
        old->h1 = 0;
        break;
    }
    default:
        log_err("client-id map points at free slot %u", slot);
        refuse(fo, r, MQTT_RC_UNAVAILABLE);
    }
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
    if ((s->state != SESS_ONLINE && s->state != SESS_HANDOFF) ||
        s->conn_gen != r->a || s->host_fe != r->fe) {
        log_debug("stale DETACH for slot %u ignored", slot);
        return;
    }
    /* The frontend published the will if the close was not clean. */
    release_if(fo, s->will);
    s->will = 0;
    int was_clean = s->clean;
    ing_rec_t *p = &fo->pending[fo_local(fo, slot)];
    if (s->state == SESS_HANDOFF && p->type == ING_CONNECT) {
        ing_rec_t next = *p;
        memset(p, 0, sizeof(*p));
        int clean = (next.flags & ING_F_CLEAN) != 0;
        if (clean || was_clean)
            wipe(fo, slot);
        attach(fo, slot, &next, !clean && !was_clean);
        return;
    }
    if (was_clean) {
        free_slot(fo, slot);
    } else {
        s->state = SESS_OFFLINE;
        s->offline_since = (uint64_t)time(NULL);
    }
}

/* Finds the subscription record of slot for filter; *prev gets the link
 * that points at it. */
static sess_sub_t *find_sub(fo_t *fo, uint32_t slot, const char *f,
                            uint16_t flen, arena_h **prev, arena_h *hp)
{
    arena_t *a = &fo->shm->arena;
    arena_h *link = &shm_slot(fo->shm, slot)->subs;
    while (*link) {
        sess_sub_t *sub = arena_get(a, *link, NULL);
        if (sub == NULL) {
            log_err("slot %u: stale subscription record", slot);
            *link = 0;
            return NULL;
        }
        if (sub->len == flen && memcmp(sub->filter, f, flen) == 0) {
            *prev = link;
            *hp = *link;
            return sub;
        }
        link = &sub->next;
    }
    return NULL;
}

void fo_on_subscribe(fo_t *fo, const ing_rec_t *r, int unsubscribe)
{
    arena_t *a = &fo->shm->arena;
    uint32_t slot = r->slot;
    sess_slot_t *s = shm_slot(fo->shm, slot);
    uint32_t blen;
    uint8_t *b = arena_get(a, r->h1, &blen);
    if (b == NULL) {
        log_err("SUBSCRIBE from frontend %u with stale blob", r->fe);
        return;
    }
    if (slot >= fo->shm->hdr->max_clients ||
        shm_slot_owner(fo->shm, slot) != fo->idx ||
        s->state != SESS_ONLINE || s->conn_gen != r->a) {
        arena_release(a, r->h1); /* connection gone meanwhile */
        return;
    }
    uint16_t ack_len = msg_topic_len(b);
    const uint8_t *p = b + 2 + ack_len;
    const uint8_t *end = b + blen;
    uint16_t n = (uint16_t)(p[0] << 8 | p[1]);
    p += 2;
    const uint8_t *entries = p;
    for (uint16_t i = 0; i < n && p + 3 <= end; i++) {
        uint8_t qos = p[0];
        uint16_t flen = (uint16_t)(p[1] << 8 | p[2]);
        const char *f = (const char *)p + 3;
        p += 3 + flen;
        arena_h *prev;
        arena_h h;
        sess_sub_t *sub = find_sub(fo, slot, f, flen, &prev, &h);
        if (unsubscribe) {
            if (sub) {
                *prev = sub->next;
                arena_release(a, h);
                fo_index_remove(fo->ix, f, flen, slot);
            }
            continue;
        }
        if (sub) {
            sub->qos = qos;
        } else {
            void *d;
            h = arena_alloc(a, fo->part, sizeof(sess_sub_t) + flen, &d);
            if (h == 0) {
                log_err("worker %u arena partition full: subscription of "
                        "slot %u to %.*s not stored", fo->idx, slot,
                        (int)flen, f);
                continue;
            }
            sub = d;
            sub->qos = qos;
            sub->len = flen;
            memcpy(sub->filter, f, flen);
            sub->next = s->subs;
            s->subs = h;
        }
        if (fo_index_add(fo->ix, f, flen, slot, qos) < 0)
            log_err("out of memory adding subscription");
    }
    /* The SUBACK/UNSUBACK goes out through the slot's ring, so it precedes
     * the retained messages and follows earlier deliveries. */
    out_rec_t ack = {.h = r->h1, .type = OUT_RAW, .aux = ack_len};
    fo_push(fo, slot, &ack);
    if (unsubscribe)
        return;
    p = entries;
    for (uint16_t i = 0; i < n && p + 3 <= end; i++) {
        uint8_t qos = p[0];
        uint16_t flen = (uint16_t)(p[1] << 8 | p[2]);
        if (fo->cfg->retain_available)
            fo_send_retained(fo, slot, (const char *)p + 3, flen, qos);
        p += 3 + flen;
    }
}

void fo_expire_sessions(fo_t *fo)
{
    uint32_t exp = fo->cfg->persistent_client_expiration;
    if (exp == 0)
        return;
    uint64_t now = (uint64_t)time(NULL);
    for (uint32_t slot = fo->idx; slot < fo->shm->hdr->max_clients;
         slot += fo->n_fo) {
        sess_slot_t *s = shm_slot(fo->shm, slot);
        if (s->state == SESS_OFFLINE && now - s->offline_since >= exp) {
            log_notice("expiring offline session in slot %u", slot);
            free_slot(fo, slot);
        }
    }
}
