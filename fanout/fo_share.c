/*
 * fo_share.c -- shared subscriptions ($share/GROUP/FILTER).  Worker 0 is
 * the share worker: it holds every group (members in join order, a
 * round-robin cursor) and chooses one member per message and group; the
 * member's owner worker pushes the delivery into the member's ring (each
 * ring has one producer), or hands the message back when the member
 * cannot take it.  See docs/architecture.md, "Shared subscriptions".
 *
 * NOTES: the group table, the group index and the cursors are worker 0's
 * private memory, rebuilt from the chain of fo_share_rec_t anchored in
 * its proc_t.share_head (only worker 0 writes the links).  Members are
 * (slot, epoch): a slot of another worker is only read here (state,
 * epoch), never written; a member whose session ended is dropped when
 * met.  Any worker sends XR_RETURN records (fo_share_return()).
 */
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crashpoint.h"
#include "fo.h"
#include "log.h"
#include "mem.h"
#include "topic.h"


typedef struct fo_member {
    uint32_t slot;
    uint32_t epoch;
    uint32_t sub_id;
    uint8_t opts;
    arena_h rec; /* its fo_share_rec_t */
} fo_member_t;

struct fo_group {
    char *key;      /* "$share/GROUP/FILTER" */
    uint16_t klen;
    uint16_t foff;  /* where FILTER starts in key */
    uint32_t hash;  /* of key: names the group in records */
    uint32_t id;    /* index in fo->groups, and "slot" in the index */
    fo_member_t *m;
    uint32_t n, cap;
    uint32_t next;  /* round-robin cursor */
};

/* ---- the chain of membership records (shm) ---- */

static fo_share_rec_t *rec_of(fo_t *fo, arena_h h, uint32_t *len)
{
    return arena_get(&fo->shm->arena, h, len);
}

static void chain_link(fo_t *fo, arena_h h, fo_share_rec_t *r)
{
    arena_h head = fo->proc->share_head;
    r->prev = 0;
    r->next = head;
    ARENA_CRASH_ORDER(); /* whole before the chain shows it */
    fo_share_rec_t *first = head ? rec_of(fo, head, NULL) : NULL;
    if (first)
        first->prev = h;
    fo->proc->share_head = h;
}

/* Unlinks record h, then releases it (a kill in between leaks). */
static void chain_unlink(fo_t *fo, arena_h h)
{
    fo_share_rec_t *r = rec_of(fo, h, NULL);
    if (r == NULL)
        return;
    fo_share_rec_t *prev = r->prev ? rec_of(fo, r->prev, NULL) : NULL;
    fo_share_rec_t *next = r->next ? rec_of(fo, r->next, NULL) : NULL;
    if (next)
        next->prev = r->prev;
    if (prev)
        prev->next = r->next;
    else if (fo->proc->share_head == h)
        fo->proc->share_head = r->next;
    ARENA_CRASH_ORDER();
    arena_release(&fo->shm->arena, h);
}

/* ---- groups (private) ---- */

static fo_group_t *group_get(fo_t *fo, const char *key, uint16_t klen)
{
    strmap_ent_t *e = strmap_get(&fo->gmap, key, klen);
    return e ? fo->groups[e->val] : NULL;
}

static fo_group_t *group_new(fo_t *fo, const char *key, uint16_t klen,
                             uint16_t foff)
{
    uint32_t id;
    if (fo->n_free_gids)
        id = fo->free_gids[--fo->n_free_gids];
    else {
        if (fo->n_groups_cap == fo->groups_used) {
            fo->n_groups_cap = fo->n_groups_cap ? fo->n_groups_cap * 2 : 16;
            fo->groups = mem_realloc(fo->groups,
                                     fo->n_groups_cap * sizeof(*fo->groups));
            fo->free_gids = mem_realloc(fo->free_gids, fo->n_groups_cap *
                                        sizeof(*fo->free_gids));
        }
        id = fo->groups_used++;
    }
    fo_group_t *g = mem_calloc(1, sizeof(*g));
    g->key = mem_strndup(key, klen);
    g->klen = klen;
    g->foff = foff;
    g->hash = topic_share_hash(key, klen);
    g->id = id;
    fo->groups[id] = g;
    fo->n_groups++;
    strmap_put(&fo->gmap, key, klen, id);
    fo_index_add(fo->share_ix, key + foff, (size_t)(klen - foff), id, 0, 0);
    return g;
}

static void group_free(fo_t *fo, fo_group_t *g)
{
    fo_index_remove(fo->share_ix, g->key + g->foff,
                    (size_t)(g->klen - g->foff), g->id);
    strmap_del(&fo->gmap, g->key, g->klen);
    fo->groups[g->id] = NULL;
    fo->free_gids[fo->n_free_gids++] = g->id;
    fo->n_groups--;
    mem_free(g->m);
    mem_free(g->key);
    mem_free(g);
}

/* Removes member i of g (and its record); frees g when it empties.
 * Returns false when g was freed. */
static bool member_drop(fo_t *fo, fo_group_t *g, uint32_t i)
{
    chain_unlink(fo, g->m[i].rec);
    memmove(&g->m[i], &g->m[i + 1], (g->n - i - 1) * sizeof(g->m[0]));
    g->n--;
    if (g->next > i)
        g->next--;
    if (g->n == 0) {
        group_free(fo, g);
        return false;
    }
    return true;
}

static int member_find(const fo_group_t *g, uint32_t slot, uint32_t epoch)
{
    for (uint32_t i = 0; i < g->n; i++)
        if (g->m[i].slot == slot && g->m[i].epoch == epoch)
            return (int)i;
    return -1;
}

/* Whether the session a member joined from still exists.  The slot may
 * be another worker's: its state and epoch are only read. */
static bool member_valid(fo_t *fo, const fo_member_t *m)
{
    if (m->slot >= fo->shm->hdr->max_clients)
        return false;
    sess_slot_t *s = shm_slot(fo->shm, m->slot);
    return __atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != SESS_FREE &&
           __atomic_load_n(&s->epoch, __ATOMIC_RELAXED) == m->epoch;
}

/* Adds the member of record h (r, linked already) to its group.  A
 * member already there is updated from r, or with keep_old (the rebuild,
 * which meets the newest record first) keeps its own record and r's
 * goes. */
static void member_add(fo_t *fo, arena_h h, const fo_share_rec_t *r,
                       bool keep_old)
{
    uint16_t foff;
    if (topic_share_split(r->filter, r->len, &foff) != 1) {
        log_err("shared subscription record with a bad filter dropped");
        chain_unlink(fo, h);
        return;
    }
    fo_group_t *g = group_get(fo, r->filter, r->len);
    if (g == NULL)
        g = group_new(fo, r->filter, r->len, foff);
    int i = member_find(g, r->slot, r->epoch);
    if (i >= 0 && keep_old) {
        chain_unlink(fo, h);
        return;
    }
    if (i >= 0) {
        /* Subscribed again: the new options, the old record goes. */
        arena_h old = g->m[i].rec;
        g->m[i].rec = h;
        g->m[i].opts = r->opts;
        g->m[i].sub_id = r->sub_id;
        if (old != h)
            chain_unlink(fo, old);
        return;
    }
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 4;
        g->m = mem_realloc(g->m, g->cap * sizeof(g->m[0]));
    }
    g->m[g->n++] = (fo_member_t){.slot = r->slot,
                                 .epoch = r->epoch,
                                 .sub_id = r->sub_id,
                                 .opts = r->opts,
                                 .rec = h};
}

void fo_share_join(fo_t *fo, const ing_rec_t *r)
{
    uint32_t len;
    fo_share_rec_t *rec = rec_of(fo, r->h1, &len);
    if (rec == NULL || len < sizeof(*rec) ||
        (uint64_t)sizeof(*rec) + rec->len > len) {
        log_err("shared subscription record from frontend %u is bad",
                r->fe);
        if (rec)
            fo_release_after(fo, r->h1);
        return;
    }
    if (fo->idx != 0) {
        log_err("shared subscription record sent to worker %u", fo->idx);
        fo_release_after(fo, r->h1);
        return;
    }
    /* The record's reference moves to the chain.  A redo finds it there
     * (it is the head, or has a predecessor) and only rebuilds. */
    bool linked = fo->proc->share_head == r->h1 || rec->prev != 0;
    if (!linked) {
        /* The client connected again since (perhaps through another
         * frontend, whose records to us are not ordered with these): a
         * leave it sent then may have been handled already.  Void. */
        sess_slot_t *s = rec->slot < fo->shm->hdr->max_clients
                             ? shm_slot(fo->shm, rec->slot)
                             : NULL;
        if (s == NULL ||
            __atomic_load_n(&s->conn_gen, __ATOMIC_ACQUIRE) != rec->conn_gen ||
            __atomic_load_n(&s->epoch, __ATOMIC_RELAXED) != rec->epoch) {
            log_info("shared subscription of slot %u from an earlier "
                     "connection ignored", rec->slot);
            fo_release_after(fo, r->h1);
            return;
        }
        chain_link(fo, r->h1, rec);
    }
    member_add(fo, r->h1, rec, false);
}

void fo_share_leave(fo_t *fo, const ing_rec_t *r)
{
    uint16_t len;
    const char *name = blob_get(&fo->shm->arena, r->h1, &len);
    fo_release_after(fo, r->h1);
    if (name == NULL || fo->idx != 0)
        return;
    fo_group_t *g = group_get(fo, name, len);
    int i = g ? member_find(g, r->slot, r->a) : -1;
    if (i >= 0)
        member_drop(fo, g, (uint32_t)i);
}

void fo_share_rebuild(fo_t *fo)
{
    /* First the links (a kill may have left a prev behind, or a record
     * that does not read), then the groups: adding a member may unlink a
     * duplicate record, which needs its neighbours' links right. */
    uint32_t n = 0;
    arena_h prev = 0;
    for (arena_h h = fo->proc->share_head; h;) {
        uint32_t len;
        fo_share_rec_t *r = rec_of(fo, h, &len);
        if (r == NULL || len < sizeof(*r) ||
            (uint64_t)sizeof(*r) + r->len > len) {
            log_err("worker 0: shared subscription chain cut at a bad "
                    "record");
            if (prev)
                rec_of(fo, prev, NULL)->next = 0;
            else
                fo->proc->share_head = 0;
            break;
        }
        r->prev = prev;
        prev = h;
        h = r->next;
    }
    for (arena_h h = fo->proc->share_head; h;) {
        fo_share_rec_t *r = rec_of(fo, h, NULL);
        arena_h next = r->next;
        member_add(fo, h, r, true);
        n++;
        h = next;
    }
    if (n)
        log_info("worker 0: %u shared subscriptions in %u groups recovered",
                 n, fo->n_groups);
}

void fo_share_scan(fo_t *fo)
{
    for (uint32_t id = 0; id < fo->groups_used; id++) {
        fo_group_t *g = fo->groups[id];
        for (uint32_t i = 0; g && i < g->n;) {
            if (member_valid(fo, &g->m[i]))
                i++;
            else if (!member_drop(fo, g, i))
                g = NULL;
        }
    }
}

void fo_share_free(fo_t *fo)
{
    /* The broker stops: the members' records go, as the retained store's
     * messages do; a worker 0 restarted alone keeps them for its
     * successor. */
    bool release = __atomic_load_n(&fo->shm->hdr->stopping,
                                   __ATOMIC_ACQUIRE) != 0;
    for (uint32_t id = 0; id < fo->groups_used; id++)
        if (fo->groups[id]) {
            fo_group_t *g = fo->groups[id];
            for (uint32_t i = 0; release && i < g->n; i++)
                chain_unlink(fo, g->m[i].rec);
            mem_free(g->m);
            mem_free(g->key);
            mem_free(g);
        }
    mem_free(fo->groups);
    mem_free(fo->free_gids);
    mem_free(fo->gmatch);
    strmap_free(&fo->gmap);
    fo_index_free(fo->share_ix);
}

/* ---- deliveries ---- */

/* Pushes a delivery through a shared subscription to slot (ours): its
 * Subscription Identifier, then the record; the reference is the
 * caller's to give. */
static void push_shared(fo_t *fo, uint32_t slot, arena_h h, uint8_t qos,
                        uint8_t flags, uint32_t group, uint32_t sub_id,
                        uint32_t plen)
{
    if (sub_id) {
        out_rec_t id = {.type = OUT_SUBID, .aux = sub_id};
        fo_push(fo, slot, &id, 0);
    }
    out_rec_t o = {.h = h,
                   .type = OUT_DELIVER,
                   .qos = qos,
                   .flags = (uint8_t)(flags | OUT_F_SHARED),
                   .aux = group};
    fo_push(fo, slot, &o, plen);
}

/* Whether our slot can take a delivery now: a session of that epoch,
 * online unless at QoS > 0, room in its queue (not counted as a drop:
 * another member may take it). */
static bool can_take(fo_t *fo, uint32_t slot, uint32_t epoch, uint8_t qos,
                     uint32_t plen, uint32_t sub_id)
{
    sess_slot_t *s = shm_slot(fo->shm, slot);
    if (s->state == SESS_FREE || s->epoch != epoch)
        return false;
    if (s->state == SESS_OFFLINE && qos == 0)
        return false;
    return fo_room(fo, slot, plen, sub_id ? 2 : 1);
}

/* Pushes x to worker `to`, waiting while its ring is full (the owner
 * never waits on us, so this ends unless it is dead; then until it is
 * back). */
static void xpush(fo_t *fo, uint32_t to, const fo_xrec_t *x)
{
    ring_t *r = shm_xring(fo->shm, fo->idx, to);
    while (ring_space(r, 1) < 1) {
        fo_flush_notify(fo);
        shm_wake_worker(fo->shm, to);
        if (fo_stopping()) {
            /* Exit with the record unconsumed: the next incarnation
             * redoes it (busy_fe), nothing is lost. */
            log_info("worker %u stopping while its ring to worker %u is "
                     "full", fo->idx, to);
            _exit(0);
        }
        usleep(100);
    }
    memcpy(ring_slot(r, 0), x, sizeof(*x));
    ring_commit(r, 1);
    shm_wake_worker(fo->shm, to);
}

/*
 * Gives message h to one member of g that can take it, trying each member
 * once from the cursor, skipping `exclude` while another exists.  own_ref:
 * the caller's reference moves to the delivery; else one is taken.
 * Returns true when handed on, false when no member could take it.
 */
static bool dispatch(fo_t *fo, fo_group_t *g, arena_h h, uint8_t qos,
                     uint8_t rflags, uint32_t plen, uint32_t exclude,
                     uint8_t hops, bool own_ref)
{
    uint32_t tries = g->n;
    while (tries > 0 && g->n > 0) {
        tries--;
        uint32_t i = g->next++ % g->n;
        fo_member_t *m = &g->m[i];
        if (!member_valid(fo, m)) {
            if (!member_drop(fo, g, i))
                return false; /* the group is gone with its last member */
            continue;
        }
        if (m->slot == exclude && g->n > 1)
            continue;
        uint8_t q = qos < (m->opts & MQTT_SUBOPT_QOS_MASK)
                        ? qos
                        : (m->opts & MQTT_SUBOPT_QOS_MASK);
        uint8_t fl = (m->opts & MQTT_SUBOPT_RAP) ? rflags : 0;
        uint32_t owner = shm_slot_owner(fo->shm, m->slot);
        if (owner == fo->idx) {
            if (!can_take(fo, m->slot, m->epoch, q, plen, m->sub_id))
                continue;
            if (!own_ref)
                arena_ref_add(&fo->shm->arena, h, 1);
            push_shared(fo, m->slot, h, q, fl, g->hash, m->sub_id, plen);
            return true;
        }
        fo_xrec_t x = {.type = XR_DELIVER,
                       .qos = q,
                       .flags = fl,
                       .hops = hops,
                       .slot = m->slot,
                       .h = h,
                       .epoch = m->epoch,
                       .group = g->hash,
                       .sub_id = m->sub_id};
        if (!own_ref)
            arena_ref_add(&fo->shm->arena, h, 1);
        xpush(fo, owner, &x);
        return true;
    }
    return false;
}

void fo_share_mark(fo_t *fo)
{
    for (uint32_t j = 0; j < fo->n_fo; j++)
        fo->proc->xheads[j] = shm_xring(fo->shm, fo->idx, j)->head;
    ARENA_CRASH_ORDER(); /* before anything the record pushes */
}

/*
 * A redo: whether g already got message h from the record being redone,
 * before the restart.  For a member of another worker: a record with h
 * and g's hash pushed to its owner since the record began (fo_share_mark());
 * for one of ours: the last record of its ring (a member of ours gets a
 * message of a group once: only a session that ended gives it back).
 */
static bool dispatched_already(fo_t *fo, const fo_group_t *g, arena_h h)
{
    for (uint32_t i = 0; i < g->n; i++) {
        uint32_t owner = shm_slot_owner(fo->shm, g->m[i].slot);
        if (owner == fo->idx) {
            const out_rec_t *o = ring_last(sess_ring(fo->shm, g->m[i].slot));
            if (o && o->h == h && (o->flags & OUT_F_SHARED) &&
                o->aux == g->hash)
                return true;
            continue;
        }
        ring_t *r = shm_xring(fo->shm, fo->idx, owner);
        uint64_t since = fo->proc->xheads[owner];
        for (uint64_t pos = since; pos < r->head; pos++) {
            const fo_xrec_t *x = ring_at(r, since, pos);
            if (x && x->h == h && x->group == g->hash)
                return true;
        }
    }
    return false;
}

static void on_group(void *arg, uint32_t gid, uint8_t opts, uint32_t sub_id)
{
    fo_t *fo = arg;
    (void)opts;
    (void)sub_id;
    if (fo->n_gmatch == fo->gmatch_cap) {
        fo->gmatch_cap = fo->gmatch_cap ? fo->gmatch_cap * 2 : 16;
        fo->gmatch = mem_realloc(fo->gmatch,
                                 fo->gmatch_cap * sizeof(fo->gmatch[0]));
    }
    fo->gmatch[fo->n_gmatch++] = gid;
}

static void drop_counted(fo_t *fo, const fo_group_t *g, const char *why)
{
    if (fo->proc->drops_share++ % 1000 == 0)
        log_warn("shared subscription %.*s: a message no member could take "
                 "was dropped (%s; %llu so far)",
                 g ? (int)g->klen : 1, g ? g->key : "?", why,
                 (unsigned long long)fo->proc->drops_share);
}

void fo_share_publish(fo_t *fo, const ing_rec_t *r, const msg_view_t *v,
                      bool redo)
{
    if (fo->n_groups == 0)
        return;
    fo->n_gmatch = 0;
    fo_index_match(fo->share_ix, v->topic, v->tlen, on_group, fo);
    uint8_t rflags = (r->flags & ING_F_RETAIN) ? OUT_F_RETAIN : 0;
    for (uint32_t k = 0; k < fo->n_gmatch; k++) {
        fo_group_t *g = fo->groups[fo->gmatch[k]];
        if (g == NULL)
            continue; /* emptied by an earlier group's dispatch */
        if (redo && dispatched_already(fo, g, r->h1))
            continue;
        if (!dispatch(fo, g, r->h1, r->qos, rflags, v->plen, UINT32_MAX, 0,
                      false))
            drop_counted(fo, fo->groups[fo->gmatch[k]] ? g : NULL,
                         "no member can take it");
    }
}

/* Whether the last record we pushed to worker 0 returns h for slot and
 * group: after a restart, before we pushed anything, it tells whether
 * the return we were making got out. */
static bool returned_already(fo_t *fo, uint32_t slot, arena_h h,
                             uint32_t group)
{
    const fo_xrec_t *x = ring_last(shm_xring(fo->shm, fo->idx, 0));
    return x && x->type == XR_RETURN && x->h == h && x->slot == slot &&
           x->group == group;
}

bool fo_share_return(fo_t *fo, uint32_t slot, arena_h h, uint8_t qos,
                     uint32_t group, uint8_t hops)
{
    ring_t *r = shm_xring(fo->shm, fo->idx, 0);
    if (ring_space(r, 1) < 1) {
        /* Owners never wait on worker 0 (it may be waiting on us). */
        log_warn("worker %u: ring to worker 0 full, a shared-subscription "
                 "message for slot %u dropped", fo->idx, slot);
        fo->proc->drops_share++;
        return false;
    }
    fo_xrec_t x = {.type = XR_RETURN,
                   .qos = qos,
                   .hops = hops,
                   .slot = slot,
                   .h = h,
                   .group = group};
    memcpy(ring_slot(r, 0), &x, sizeof(x));
    ring_commit(r, 1);
    shm_wake_worker(fo->shm, 0);
    return true;
}

/* The group of hash `group` among those matching message m's topic. */
static fo_group_t *group_of(fo_t *fo, const msg_view_t *v, uint32_t group)
{
    fo->n_gmatch = 0;
    fo_index_match(fo->share_ix, v->topic, v->tlen, on_group, fo);
    for (uint32_t k = 0; k < fo->n_gmatch; k++) {
        fo_group_t *g = fo->groups[fo->gmatch[k]];
        if (g && g->hash == group)
            return g;
    }
    return NULL;
}

void fo_share_on_xrec(fo_t *fo, uint32_t from, const fo_xrec_t *x,
                      bool redo)
{
    uint32_t len;
    msg_view_t v;
    uint8_t *m = arena_get(&fo->shm->arena, x->h, &len);
    if (m == NULL || msg_open(m, len, &v) < 0) {
        log_err("worker record from worker %u with a stale message", from);
        return;
    }
    if (x->type == XR_DELIVER) {
        /* We own the member's slot: push, or hand it back. */
        if (x->slot >= fo->shm->hdr->max_clients ||
            shm_slot_owner(fo->shm, x->slot) != fo->idx) {
            log_err("shared delivery for slot %u sent to worker %u",
                    x->slot, fo->idx);
            fo_release_after(fo, x->h);
            return;
        }
        if (redo) {
            const out_rec_t *o = ring_last(sess_ring(fo->shm, x->slot));
            if (o && o->h == x->h && (o->flags & OUT_F_SHARED) &&
                o->aux == x->group) {
                log_notice("worker %u: shared delivery to slot %u was "
                           "pushed before a restart", fo->idx, x->slot);
                return;
            }
        }
        if (msg_expired(&v, fo->now)) {
            fo_release_after(fo, x->h);
            return;
        }
        if (can_take(fo, x->slot, x->epoch, x->qos, v.plen, x->sub_id)) {
            push_shared(fo, x->slot, x->h, x->qos, x->flags, x->group,
                        x->sub_id, v.plen);
            CRASH_POINT("fo_share_delivered");
            return;
        }
        if (redo && returned_already(fo, x->slot, x->h, x->group))
            return; /* bounced before the restart */
        if (!fo_share_return(fo, x->slot, x->h, x->qos, x->group,
                             (uint8_t)(x->hops + 1)))
            fo_release_after(fo, x->h);
        return;
    }
    if (x->type != XR_RETURN || fo->idx != 0) {
        log_err("worker record of type %u from worker %u ignored", x->type,
                from);
        fo_release_after(fo, x->h);
        return;
    }
    /* Worker 0: another member of the same group, if one can take it. */
    fo_group_t *g = group_of(fo, &v, x->group);
    CRASH_POINT("fo_share_redispatch");
    if (g && redo && dispatched_already(fo, g, x->h))
        return;
    uint32_t gid = g ? g->id : 0;
    /* Hops: members that had it (a session that ended counts one, and
     * has left the group by now): after more than the group has, it goes
     * (every member's queue full, or all offline for QoS 0). */
    if (g == NULL || msg_expired(&v, fo->now) || x->hops > g->n ||
        !dispatch(fo, g, x->h, x->qos, 0, v.plen, x->slot, x->hops, true)) {
        /* dispatch() may have freed g with its last member. */
        drop_counted(fo, g && fo->groups[gid] == g ? g : NULL,
                     g == NULL ? "the group is gone"
                               : "no other member can take it");
        fo_release_after(fo, x->h);
    }
}

/* Hands message h of our slot back (parked in the slot first: see
 * ho_h in shm.h); done is the step that lets go of it in the session
 * (consume its ring record, or zero its inflight entry). */
static void hand_back(fo_t *fo, uint32_t slot, arena_h h, uint8_t qos,
                      uint32_t group, ring_t *consume, sess_inflight_t *e)
{
    sess_slot_t *s = shm_slot(fo->shm, slot);
    s->ho_group = group;
    s->ho_qos = qos;
    s->ho_h = h;
    ARENA_CRASH_ORDER(); /* parked before the session lets go of it */
    if (consume)
        ring_consume(consume, 1);
    else
        e->h = 0;
    ARENA_CRASH_ORDER();
    CRASH_POINT("fo_share_handing_back");
    if (!fo_share_return(fo, slot, h, qos, group, 1))
        arena_release(&fo->shm->arena, h); /* counted, logged */
    ARENA_CRASH_ORDER();
    s->ho_h = 0;
}

/*
 * The session of slot (ours, no frontend attached) ends: the shared
 * deliveries still queued for it and those sent but not acknowledged go
 * back to worker 0 for another member (MQTT 5.0 4.8.2).  Queued records
 * are consumed here one at a time; the caller drops the rest of the
 * ring.  A return counts as one hop.
 */
void fo_share_handover(fo_t *fo, uint32_t slot)
{
    ring_t *data = sess_ring(fo->shm, slot);
    uint32_t n = ring_count(data);
    for (uint32_t i = 0; i < n; i++) {
        const out_rec_t *o = ring_peek(data, 0);
        if (o->type == OUT_DELIVER && (o->flags & OUT_F_SHARED))
            hand_back(fo, slot, o->h, o->qos, o->aux, data, NULL);
        else
            sess_ring_drop(fo->shm, data, 1);
    }
    sess_slot_t *s = shm_slot(fo->shm, slot);
    uint32_t head = s->inf_head, k = s->inf_tail - s->inf_head;
    for (uint32_t j = 0; j < k; j++) {
        sess_inflight_t *e = sess_inf_at(fo->shm, slot, head + j);
        if (e->state == INF_SENT && e->group != 0 && e->h != 0)
            hand_back(fo, slot, e->h, e->qos, e->group, NULL, e);
    }
}

void fo_share_recover_slot(fo_t *fo, uint32_t slot)
{
    sess_slot_t *s = shm_slot(fo->shm, slot);
    arena_h h = s->ho_h;
    if (h == 0)
        return;
    /* The session may not have let go of it yet. */
    ring_t *data = sess_ring(fo->shm, slot);
    const out_rec_t *o = ring_count(data) ? ring_peek(data, 0) : NULL;
    if (o && o->type == OUT_DELIVER && o->h == h && o->aux == s->ho_group)
        ring_consume(data, 1);
    uint32_t head = s->inf_head, k = s->inf_tail - s->inf_head;
    for (uint32_t j = 0; j < k; j++) {
        sess_inflight_t *e = sess_inf_at(fo->shm, slot, head + j);
        if (e->h == h && e->group == s->ho_group) {
            e->h = 0;
            break;
        }
    }
    ARENA_CRASH_ORDER();
    if (!returned_already(fo, slot, h, s->ho_group) &&
        !fo_share_return(fo, slot, h, s->ho_qos, s->ho_group, 1))
        arena_release(&fo->shm->arena, h);
    ARENA_CRASH_ORDER();
    s->ho_h = 0;
    log_notice("worker %u: a shared-subscription message of slot %u handed "
               "back after a restart", fo->idx, slot);
}
