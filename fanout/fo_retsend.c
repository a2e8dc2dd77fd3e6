/*
 * fo_retsend.c -- the retained messages a new subscription gets
 * (MQTT-3.3.1-6: every matching one, RETAIN set).
 *
 * They go to the subscriber's data ring like any delivery, and the ring
 * takes max_queued_messages (and max_queued_bytes) at a time.  What does
 * not fit when the SUBSCRIBE is handled waits in a backlog (fo_ret_job_t,
 * private to the worker): the handles of the retained records still to
 * send, sorted.  The worker's loop sends more as the frontend drains the
 * ring (fo_ret_jobs_run(), every FO_RETJOB_POLL_MS at most), reading each
 * record when it sends it: a topic whose retained message was replaced
 * meanwhile sends the new one, a cleared one nothing.  Retained messages
 * fill the ring to half of max_queued_messages at most, at SUBSCRIBE time
 * too, so that live messages still find room.
 *
 * A backlog ends when everything is sent, when its subscription is gone
 * (unsubscribed, subscribed again, or the session ended or started anew),
 * or after FO_RETJOB_STUCK_S seconds in which none of it could be sent
 * (the rest is then dropped, counted and logged, as a full queue drops):
 * a client that does not read, or a session that stays offline that long
 * (while offline nothing is sent; a reconnect in time goes on).
 *
 * A live PUBLISH queued for the subscriber on a topic still in its backlog
 * takes that topic out of it (fo_ret_jobs_pushed()): the subscriber has a
 * newer message on the topic, and an older retained one must not follow
 * it.
 *
 * Backlogs are process memory: a worker that dies loses them (the
 * subscriber keeps what was queued), as it loses nothing else -- the
 * retained store and the subscriptions are in shm.
 */
#include <stdlib.h>
#include <string.h>

#include "fo.h"
#include "log.h"
#include "mem.h"
#include "topic.h"

#define FO_RETJOB_STUCK_S 60
/* All backlogs together hold at most this many record handles (8 bytes
 * each); beyond, retained messages that do not fit are dropped. */
#define FO_RETJOB_MAX_RECS (8u << 20)

struct fo_ret_job {
    fo_ret_job_t *next;      /* every backlog of the worker */
    fo_ret_job_t *next_same; /* the other backlogs of the same slot */
    uint32_t slot;
    uint32_t epoch;   /* the session's: a new one ends the backlog */
    arena_h sub;      /* the subscription record: gone, the backlog ends */
    arena_h *recs;    /* retained records to send, sorted */
    uint8_t *out;     /* out[i]: recs[i] taken out (fo_ret_jobs_pushed()) */
    uint32_t n, at;   /* recs[at..n) are left */
    uint64_t moved;   /* fo->now when it last sent (or began) */
};

static size_t n_recs_total;

/* The admin socket's gauges (stats: retained_backlogs). */
static void gauges(fo_t *fo, int64_t jobs, int64_t msgs)
{
    __atomic_store_n(&fo->proc->ret_backlogs,
                     fo->proc->ret_backlogs + (uint64_t)jobs,
                     __ATOMIC_RELAXED);
    __atomic_store_n(&fo->proc->ret_backlog_msgs,
                     fo->proc->ret_backlog_msgs + (uint64_t)msgs,
                     __ATOMIC_RELAXED);
}

static int cmp_h(const void *a, const void *b)
{
    arena_h x = *(const arena_h *)a, y = *(const arena_h *)b;
    return x < y ? -1 : x > y;
}

/* Unlinks *at (in the list of every backlog) and frees it. */
static void job_free(fo_t *fo, fo_ret_job_t **at)
{
    fo_ret_job_t *j = *at;
    *at = j->next;
    fo_ret_job_t **s = &fo->job_of[fo_local(fo, j->slot)];
    while (*s != j)
        s = &(*s)->next_same;
    *s = j->next_same;
    fo->n_jobs--;
    n_recs_total -= j->n;
    gauges(fo, -1, -(int64_t)(j->n - j->at));
    mem_free(j->recs);
    mem_free(j->out);
    mem_free(j);
}

/* Pushes the retained message of record rh to slot with the options of
 * subscription sub.  Returns 1 pushed or nothing to push (a stale record,
 * an expired message), 0 when the ring has no room. */
static int send_rec(fo_t *fo, uint32_t slot, const sess_sub_t *sub,
                    arena_h rh)
{
    arena_t *a = &fo->shm->arena;
    arena_h h;
    uint8_t rq;
    if (fo_ret_at(fo, rh, &h, &rq) < 0)
        return 1; /* cleared since */
    uint32_t len;
    msg_view_t v;
    uint8_t *m = arena_get(a, h, &len);
    if (m == NULL || msg_open(m, len, &v) < 0 || msg_expired(&v, fo->now))
        return 1;
    /* Half the queue at most: live messages keep room beside it. */
    uint32_t half = (fo->shm->hdr->max_queued + 1) / 2;
    if (ring_used_producer(sess_ring(fo->shm, slot)) >= half ||
        !fo_room(fo, slot, v.plen, 1))
        return 0;
    uint8_t qos = sub->opts & MQTT_SUBOPT_QOS_MASK;
    fo_match_t d = {.slot = slot,
                    .qos = rq < qos ? rq : qos,
                    .sub_id = sub->sub_id,
                    .xids = UINT32_MAX};
    arena_ref_add(a, h, 1);
    fo_push_delivery(fo, &d, h, OUT_F_RETAIN, v.plen);
    return 1;
}

/* Sends what fits of backlog j; *online says whether its client is
 * connected.  Returns false when the backlog is over. */
static bool job_run(fo_t *fo, fo_ret_job_t *j, bool *online)
{
    sess_slot_t *s = shm_slot(fo->shm, j->slot);
    const sess_sub_t *sub = arena_get(&fo->shm->arena, j->sub, NULL);
    if (s->state == SESS_FREE || s->epoch != j->epoch || sub == NULL)
        return false; /* the subscription is gone */
    *online = s->state == SESS_ONLINE;
    uint32_t at = j->at;
    while (*online && j->at < j->n) {
        if (!j->out[j->at] && !send_rec(fo, j->slot, sub, j->recs[j->at]))
            break;
        j->at++;
        j->moved = fo->now;
    }
    gauges(fo, 0, -(int64_t)(j->at - at));
    if (j->at == j->n)
        return false;
    if (fo->now - j->moved >= FO_RETJOB_STUCK_S) {
        uint32_t left = j->n - j->at;
        int n;
        const char *id = fo_log_id(fo, s, &n);
        log_warn("Client %.*s (%s) has taken none of its %u remaining "
                 "retained messages for %d s: they are dropped "
                 "(max_queued_messages or max_queued_bytes).",
                 n, id, *online ? "connected" : "offline", left,
                 FO_RETJOB_STUCK_S);
        fo->proc->drops_queue += left;
        return false;
    }
    return true;
}

bool fo_ret_jobs_run(fo_t *fo)
{
    bool any_online = false;
    for (fo_ret_job_t **at = &fo->jobs; *at;) {
        bool online = false;
        if (job_run(fo, *at, &online)) {
            any_online |= online;
            at = &(*at)->next;
        } else {
            job_free(fo, at);
        }
    }
    return any_online;
}

void fo_ret_jobs_pushed(fo_t *fo, uint32_t slot, const char *topic,
                        uint16_t tlen)
{
    fo_ret_job_t *j = fo->job_of[fo_local(fo, slot)];
    if (j == NULL)
        return;
    strmap_ent_t *e = strmap_get(&fo->retained, topic, tlen);
    if (e == NULL)
        return;
    arena_h rh = (arena_h)e->val;
    for (; j; j = j->next_same) {
        arena_h *at = bsearch(&rh, j->recs + j->at, j->n - j->at,
                              sizeof(rh), cmp_h);
        if (at)
            j->out[at - j->recs] = 1;
    }
}

/* Ends the backlogs of subscription sub of slot. */
static void jobs_end(fo_t *fo, uint32_t slot, arena_h sub)
{
    for (fo_ret_job_t **at = &fo->jobs; *at;) {
        if ((*at)->slot == slot && (*at)->sub == sub)
            job_free(fo, at);
        else
            at = &(*at)->next;
    }
}

/* A backlog of the n records in recs (taken over) for subscription sub of
 * slot. */
static void job_add(fo_t *fo, uint32_t slot, arena_h sub, arena_h *recs,
                    uint32_t n)
{
    if (fo->job_of == NULL)
        fo->job_of = mem_calloc(fo->n_owned, sizeof(fo->job_of[0]));
    qsort(recs, n, sizeof(recs[0]), cmp_h);
    fo_ret_job_t *j = mem_alloc(sizeof(*j));
    fo_ret_job_t **same = &fo->job_of[fo_local(fo, slot)];
    *j = (fo_ret_job_t){
        .next = fo->jobs,
        .next_same = *same,
        .slot = slot,
        .epoch = shm_slot(fo->shm, slot)->epoch,
        .sub = sub,
        .recs = recs,
        .out = mem_calloc(n, 1),
        .n = n,
        .moved = fo->now};
    fo->jobs = j;
    *same = j;
    fo->n_jobs++;
    n_recs_total += n;
    gauges(fo, 1, n);
}

void fo_send_retained(fo_t *fo, uint32_t slot, arena_h sub_h,
                      const char *filter, uint16_t flen)
{
    const sess_sub_t *sub = arena_get(&fo->shm->arena, sub_h, NULL);
    if (sub == NULL)
        return;
    /* A SUBSCRIBE again sends everything again: not what an earlier
     * backlog of it still holds as well. */
    if (fo->n_jobs)
        jobs_end(fo, slot, sub_h);
    bool wild = memchr(filter, '+', flen) || memchr(filter, '#', flen);
    arena_h *left = NULL;
    uint32_t n_left = 0, cap_left = 0;
    size_t i = 0;
    /* Without a wildcard: one lookup. */
    strmap_ent_t *e = wild ? strmap_first(&fo->retained, &i)
                           : strmap_get(&fo->retained, filter, flen);
    for (; e; e = wild ? strmap_next(&fo->retained, e, &i) : NULL) {
        if (wild && !topic_matches(filter, flen, e->key, e->len))
            continue;
        arena_h rh = (arena_h)e->val;
        /* Once one waits, the rest wait behind it. */
        if (n_left == 0 && send_rec(fo, slot, sub, rh))
            continue;
        if (n_recs_total + n_left >= FO_RETJOB_MAX_RECS) {
            if (fo->proc->drops_queue++ % 1000 == 0)
                log_warn("worker %u: retained backlogs hold %u messages: "
                         "retained messages for a new subscription that "
                         "do not fit its queue are dropped",
                         fo->idx, FO_RETJOB_MAX_RECS);
            continue;
        }
        if (n_left == cap_left) {
            cap_left = cap_left ? cap_left * 2 : 64;
            left = mem_realloc(left, cap_left * sizeof(left[0]));
        }
        left[n_left++] = rh;
    }
    if (n_left)
        job_add(fo, slot, sub_h, left, n_left);
}

void fo_ret_jobs_free(fo_t *fo)
{
    while (fo->jobs)
        job_free(fo, &fo->jobs);
    mem_free(fo->job_of);
    fo->job_of = NULL;
}
