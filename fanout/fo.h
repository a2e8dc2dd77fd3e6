/*
 * fo.h -- the fan-out worker process: state shared by its files
 * (fo_main.c: loop and wake-ups; fo_session.c: connect, takeover, detach,
 * subscriptions; fo_publish.c: matching, dedup, delivery, retained).
 */
#ifndef RINGMQ_FO_H
#define RINGMQ_FO_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "mqtt.h"
#include "fo_index.h"
#include "shm.h"
#include "strmap.h"

/* One delivery being decided: a client matched by a PUBLISH. */
typedef struct fo_match {
    uint32_t slot;
    uint8_t qos;
    uint8_t rap;     /* OUT_F_RETAIN when a subscription has Retain As
                        Published */
    uint8_t bc;      /* FO_BC_*: how it goes (fo_on_publish()) */
    uint8_t fe;      /* FO_BC_GROUP: the host frontend */
    uint32_t sub_id; /* first Subscription Identifier, 0: none */
    uint32_t xids;   /* more identifiers: index in fo->xid, UINT32_MAX */
} fo_match_t;

enum {
    FO_BC_RING = 0,  /* through the slot's data ring */
    FO_BC_GROUP = 1, /* in the host frontend's broadcast group */
    FO_BC_DONE = 2   /* a redo: the group of a previous incarnation had it */
};

typedef struct fo_group fo_group_t; /* fo_share.c */

/* A new subscription's retained messages still to send (fo_retsend.c),
 * looked at every FO_RETJOB_POLL_MS while one of a connected client is
 * there, else whenever the worker wakes (at least every 100 ms). */
typedef struct fo_ret_job fo_ret_job_t;
#define FO_RETJOB_POLL_MS 2

typedef struct fo_xid {
    uint32_t id;
    uint32_t next; /* UINT32_MAX ends the list */
} fo_xid_t;

typedef struct fo {
    const cfg_t *cfg;
    shm_t *shm;
    uint32_t idx;
    uint32_t n_fe;
    uint32_t n_fo;
    proc_t *proc;
    arena_part_t *part;
    const int *fe_efd;   /* eventfd per frontend */
    uint8_t *fe_dirty;   /* frontend needs an eventfd write */

    fo_index_t *ix;
    strmap_t ids;        /* client id -> slot */
    strmap_t subs;       /* [u32 slot][filter] -> subscription record */
    strmap_t retained;   /* topic -> fo_ret_rec_t handle (fo_retain.c) */
    uint32_t *free_slots; /* stack of free owned slots */
    uint32_t n_free;
    int redo_fe;         /* ring whose first record the previous
                            incarnation was handling (-1: none; see
                            fo_in_ring()) */
    arena_h after[4];    /* releases due once the record is consumed */
    uint32_t n_after;

    /* dedup scratch, sized for every owned slot */
    uint32_t *stamp;     /* per slot / n_fo */
    uint32_t *pos;       /* per slot / n_fo: index in match[] */
    uint32_t epoch;
    fo_match_t *match;
    uint32_t n_match;
    fo_xid_t *xid;       /* extra Subscription Identifiers of this match */
    uint32_t n_xid, xid_cap;
    /* worker 0: shared subscription groups (fo_share.c) */
    fo_index_t *share_ix; /* group filters; a group's id stands for a slot */
    fo_group_t **groups;  /* by id */
    uint32_t groups_used, n_groups_cap, n_groups;
    uint32_t *free_gids;
    uint32_t n_free_gids;
    strmap_t gmap;        /* "$share/GROUP/FILTER" -> id */
    uint32_t *gmatch;     /* groups matched by the message at hand */
    uint32_t n_gmatch, gmatch_cap;

    fo_ret_job_t *jobs;  /* retained backlogs (fo_retsend.c) */
    uint32_t n_jobs;
    fo_ret_job_t **job_of; /* per slot / n_fo: its first backlog */

    uint32_t *notify;    /* slots touched in this batch */
    uint32_t n_notify;
    uint8_t *ringed;     /* per slot / n_fo: pushed to its data or control
                            ring since they were last seen empty
                            (docs/architecture.md, "QoS 0 to many") */
    uint32_t *on_gen;    /* per slot / n_fo: the connection generation
                            while ONLINE, else 0 (fo_online()) */
    uint8_t *on_fe;      /* per slot / n_fo: the host frontend then */
    uint32_t *n_bc;      /* per frontend: BC_TO records of the message at
                            hand, then (n_bc + n_fe) how many are written */
    uint32_t n_owned;    /* max_clients / n_fo + 1: the length of the
                            per-slot arrays (free_slots, stamp, pos, match,
                            ringed; notify has one more) */
    uint64_t now;
} fo_t;

/* Copies what a broadcast needs of slot's session (state, connection
 * generation, host) into the worker's private arrays, so that a fan-out
 * does not read a thousand slots' lines: called after every change of a
 * slot's state, and for every slot at start. */
void fo_online(fo_t *fo, uint32_t slot, const sess_slot_t *s);

/* Process entry: runs worker idx until SIGTERM.  Returns the exit code. */
int fo_main(const cfg_t *cfg, shm_t *shm, uint32_t idx, const int *fe_efd);

/* fo_session.c */
/* redo: the record is the first of its ring after a start and may have
 * been half handled by the previous incarnation (guards apply). */
void fo_on_connect(fo_t *fo, const ing_rec_t *r, bool redo);
void fo_on_detach(fo_t *fo, const ing_rec_t *r);
void fo_on_subscribe(fo_t *fo, const ing_rec_t *r, int unsubscribe,
                     bool redo);
void fo_expire_sessions(fo_t *fo);
/* Answers a frontend's start-up barrier (REP_SYNC). */
void fo_on_sync(fo_t *fo, const ing_rec_t *r);

/* fo_publish.c */
void fo_on_publish(fo_t *fo, const ing_rec_t *r, bool redo);
/* Pushes delivery m of message h (bytes of payload): the extra
 * Subscription Identifiers first, then the delivery; the caller asked for
 * room and took the reference the delivery holds. */
void fo_push_delivery(fo_t *fo, const fo_match_t *m, arena_h h,
                      uint8_t flags, uint32_t bytes);

/* fo_retsend.c: retained messages for a new subscription (see the file's
 * comment). */
/* Queues the retained messages matching filter to slot, at most at the
 * QoS of subscription record sub (with its Subscription Identifier);
 * what does not fit waits in a backlog.  Expired ones are skipped. */
void fo_send_retained(fo_t *fo, uint32_t slot, arena_h sub,
                      const char *filter, uint16_t flen);
/* Sends what fits of every backlog, ends those that are done or whose
 * subscription is gone.  Returns true when a backlog's client is
 * connected (it may go on as soon as the client reads). */
bool fo_ret_jobs_run(fo_t *fo);
/* A live PUBLISH on topic was queued for slot: its backlogs no longer
 * send the topic's retained message.  Only with fo->n_jobs. */
void fo_ret_jobs_pushed(fo_t *fo, uint32_t slot, const char *topic,
                        uint16_t tlen);
/* Frees every backlog (worker stop). */
void fo_ret_jobs_free(fo_t *fo);

/* fo_retain.c: the retained store (see the file's comment). */
/* Stores msg (the store takes its own reference) as the retained message
 * of topic at qos, or with clear set forgets the topic's message.  A
 * worker arena that is full is logged and the message not stored. */
void fo_ret_set(fo_t *fo, const char *topic, uint16_t tlen, arena_h msg,
                uint8_t qos, int clear);
/* The message and QoS of retained record rh (a value of fo->retained).
 * Returns 0, or -1 when the record is stale (cleared since). */
int fo_ret_at(fo_t *fo, arena_h rh, arena_h *msg, uint8_t *qos);
/* Rebuilds the topic map from the shm chain (worker start). */
void fo_ret_rebuild(fo_t *fo);
/* Releases every retained message when the broker stops (not when this
 * worker alone is restarted: its successor rebuilds the store). */
void fo_ret_free(fo_t *fo);

/* Releases h once the record being handled is consumed (an ingest
 * record's references must outlive its consumption: a worker killed
 * before the consume redoes the record with them). */
static inline void fo_release_after(struct fo *fo, arena_h h)
{
    if (h)
        fo->after[fo->n_after++] = h;
}

/* fo_recover.c: at start, rebuilds the private state from shm. */
void fo_recover(fo_t *fo);
/* fo_session.c: frees a session (wipe, id, will; slot back on the free
 * stack).  The caller holds the role (no frontend attached). */
void fo_free_slot(fo_t *fo, uint32_t slot);

/* fo_main.c: output ring helpers */
/* Pushes a delivery of a message of `bytes` bytes to slot's data ring (the
 * caller asked fo_has_room()) and remembers the slot for the end-of-batch
 * notification. */
void fo_push(fo_t *fo, uint32_t slot, const out_rec_t *rec, uint32_t bytes);
/* Pushes a control record to slot's control ring (same notification). */
void fo_push_ctl(fo_t *fo, uint32_t slot, const ctl_rec_t *rec);
/* Room for a delivery of a `bytes`-byte message taking recs records (1,
 * plus its OUT_SUBID records) in slot's data ring (max_queued_messages
 * and max_queued_bytes); when there is none the drop is counted (and
 * logged now and then). */
int fo_has_room(fo_t *fo, uint32_t slot, uint32_t bytes, uint32_t recs);
/* The same test, nothing counted. */
bool fo_room(fo_t *fo, uint32_t slot, uint32_t bytes, uint32_t recs);
/* True once SIGTERM asked the worker to stop. */
bool fo_stopping(void);

/* fo_share.c: shared subscriptions (docs/architecture.md).  Worker 0
 * holds the groups; every worker serves the deliveries of its slots. */
/* ING_SHARE / ING_UNSHARE (worker 0). */
void fo_share_join(fo_t *fo, const ing_rec_t *r);
void fo_share_leave(fo_t *fo, const ing_rec_t *r);
/* Worker 0: one member of every group matching message v gets it. */
void fo_share_publish(fo_t *fo, const ing_rec_t *r, const msg_view_t *v,
                      bool redo);
/* A record of the worker ring from worker `from`. */
void fo_share_on_xrec(fo_t *fo, uint32_t from, const fo_xrec_t *x,
                      bool redo);
/* Hands message h (its reference moves with it) back to worker 0 for
 * another member of group.  Returns false when the ring is full (the
 * caller keeps the reference; counted). */
bool fo_share_return(fo_t *fo, uint32_t slot, arena_h h, uint8_t qos,
                     uint32_t group, uint8_t hops);
/* The session of our slot ends: its shared deliveries go back. */
void fo_share_handover(fo_t *fo, uint32_t slot);
/* At start: finishes a hand-back a previous incarnation was making. */
void fo_share_recover_slot(fo_t *fo, uint32_t slot);
/* Worker 0, before each record: where its worker rings stand (redo). */
void fo_share_mark(fo_t *fo);
/* Worker 0: groups from the chain (start); stale members out (each
 * second); everything freed (stop). */
void fo_share_rebuild(fo_t *fo);
void fo_share_scan(fo_t *fo);
void fo_share_free(fo_t *fo);
/* Remembers slot for the end-of-batch notification of its host. */
void fo_touch(fo_t *fo, uint32_t slot);
/* Notifies host frontends of every slot pushed to since the last call and
 * writes the eventfds of sleeping frontends. */
void fo_flush_notify(fo_t *fo);

static inline uint32_t fo_local(const fo_t *fo, uint32_t slot)
{
    return slot / fo->n_fo;
}

/* Session s's client id for a log line ("%.*s" with *len): "" when its
 * blob is gone. */
static inline const char *fo_log_id(const fo_t *fo, const sess_slot_t *s,
                                    int *len)
{
    uint16_t n = 0;
    const char *id = blob_get(&fo->shm->arena, s->client_id, &n);
    *len = id ? (int)n : 0;
    return id ? id : "";
}

#endif
