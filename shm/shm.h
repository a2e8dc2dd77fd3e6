/*
 * shm.h -- the layout of ringmq's shared memory: one memfd holding the
 * header, per-process blocks, the rings, the session slots and the arena.
 * This is the only place that defines these byte layouts; every process
 * compiles the same code.  See docs/architecture.md for who writes what.
 */
#ifndef RINGMQ_SHM_H
#define RINGMQ_SHM_H

#include <stdint.h>

#include "arena.h"
#include "records.h"
#include "ring.h"

#define SHM_MAGIC 0x48534d51474e4952ull /* "RINGMQSH" */
#define SHM_LAYOUT_VERSION 12
#define SHM_MAX_PROCS 128
#define SHM_FE_CONNS_MAX (1u << 20) /* connection ids per frontend */
#define SHM_QOS2_BITMAP 8192 /* one bit per packet id */
#define SHM_CTL_CAP 64 /* control ring records per slot */
#define SHM_FE_IOV 256 /* output queue entries per frontend connection */
#define SHM_PANIC 1024 /* bytes of a child's last words */
#define SHM_XRING_CAP 4096 /* records per worker ring */
#define SHM_MAX_WORKERS 64  /* fan-out workers (config's maximum) */

enum { PROC_SUPERVISOR = 0, PROC_FRONTEND = 1, PROC_FANOUT = 2 };

/* Per-process block: every field is written by that process only, except
 * `futex`, which producers bump to wake a sleeping worker.  Each block
 * starts a cache line of its own: a frontend counts every send, and the
 * next block's `sleeping` and `futex` are read and written by others. */
typedef struct __attribute__((aligned(64))) proc {
    int32_t pid;       /* set by the supervisor before fork */
    uint32_t role;
    uint32_t index;
    uint32_t sleeping; /* 1 while the process may block (see wake-ups) */
    uint32_t futex;    /* worker wake word */
    uint32_t pad0;
    uint64_t started;  /* unix time */
    /* counters */
    uint64_t conns;           /* frontend: connections now */
    uint64_t msgs_in;         /* PUBLISH received (frontend) / processed */
    uint64_t msgs_out;        /* deliveries written (frontend) / queued */
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t drops_queue;     /* worker: deliveries dropped, queue full;
                                 frontend: broadcast deliveries dropped,
                                 queue and socket full */
    uint64_t drops_offline0;  /* worker: QoS 0 not queued for offline;
                                 frontend: broadcast deliveries whose
                                 connection had ended */
    uint64_t drops_size;      /* frontend: over message_size_limit */
    uint64_t msgs_in_qos[3];  /* frontend: PUBLISH received, by QoS */
    uint64_t msgs_out_qos[3]; /* frontend: PUBLISH sent, by QoS */
    uint32_t restarts;        /* respawns (supervisor, before the fork) */
    uint32_t pad1;
    /* worker only: its retained store, a chain of fo_ret_rec_t in its
     * partition (rebuilt by a new incarnation) */
    arena_h ret_head;
    /* worker only: 1 + the input ring whose record is being handled (the
     * ingest ring of frontend i, or for i >= n_fe the worker ring from
     * worker i - n_fe), 0 between records (a new incarnation redoes that
     * ring's first record before any other) */
    uint32_t busy_fe;
    /* worker: 1 + the highest slot index (of its own) ever taken;
     * frontend: 1 + the highest connection id ever used.  Recovery scans
     * only below it. */
    uint32_t high_water;
    uint64_t drops_expired;   /* frontend: MQTT 5 Message Expiry passed */
    uint64_t drops_too_large; /* frontend: above a client's Maximum
                                 Packet Size */
    uint64_t drops_share;     /* worker: shared-subscription messages no
                                 member could take */
    /* worker 0 only: the shared-subscription members, a chain of
     * fo_share_rec_t (rebuilt into groups by a new incarnation) */
    arena_h share_head;
    /* worker 0 only: the heads of its worker rings when it began the
     * record it is handling (a redo looks only at what came after) */
    uint64_t xheads[SHM_MAX_WORKERS];
    uint64_t writes;          /* frontend: socket writes (or io_uring
                                 sends) of connections' queues */
    uint64_t writes_held;     /* frontend: writes held back to share one
                                 with the next delivery (fe_hold.c) */
    uint64_t ret_backlogs;    /* worker: subscriptions whose retained
                                 messages wait for room (fo_retsend.c) */
    uint64_t ret_backlog_msgs; /* worker: ... the messages that wait */
    /* references to message held_h that this process holds as a count
     * (docs/architecture.md, "Batched references"): a worker's taken for
     * the deliveries it is pushing, a frontend's of output it has
     * written.  held_h changes only while held_n is 0; a new incarnation
     * releases what it finds (shm_held_release()). */
    arena_h held_h;
    uint64_t held_n;
    /* a frontend's references to message bc_h of the broadcast group it
     * is taking (fe_bcast.c), counted the same way; apart from held_n, as
     * a group may make room in a full queue by writing it, which counts
     * what was written in held_n */
    arena_h bc_h;
    uint64_t bc_n;
} proc_t;

/*
 * A child's last words: written only by that child (a failed RMQ_ASSERT
 * or a fatal signal, see common/panic.c), read and cleared by the
 * supervisor after the child died.  text need not be NUL-terminated.
 */
typedef struct shm_panic {
    uint32_t len; /* bytes of text written so far */
    uint32_t pad;
    char text[SHM_PANIC - 8];
} shm_panic_t;

/*
 * Admin mailbox of one child process (issue 6, the admin socket): how the
 * supervisor asks a frontend or a worker to act on state only that child
 * may change (kick a connection, free an offline session, the retained
 * store).  One request at a time:
 *   supervisor: waits until ack_seq == req_seq, writes the request fields,
 *               then release-stores req_seq + 1 and wakes the child;
 *   child:      acquire-loads req_seq (pairs with that release store); when
 *               it differs from ack_seq it executes the request, writes rc,
 *               aux and reply, then release-stores ack_seq = req_seq;
 *   supervisor: acquire-loads ack_seq (pairs with the child's release
 *               store), reads rc, aux, copies the reply blob and
 *               arena_release()s it.
 * The supervisor never writes the request fields while a request is
 * outstanding (a request that timed out stays outstanding until the child
 * acknowledges it), so the child never reads a half-written request.
 */
#define SHM_MBOX_ARG 4096 /* bytes of a topic or filter argument */

enum {
    MBOX_KICK = 1,     /* frontend: close the connection (slot, conn_gen);
                          flags MBOX_F_DISCARD */
    MBOX_EXPIRE = 2,   /* worker: free the OFFLINE session (slot, conn_gen) */
    MBOX_RET_LIST = 3, /* worker: retained topics (offset, limit, arg: a
                          filter or empty); reply: see fo_admin.h */
    MBOX_RET_GET = 4,  /* worker: retained message of topic arg; reply: the
                          message itself (a reference), aux: its QoS */
    MBOX_RET_DEL = 5   /* worker: delete the retained message of topic arg */
};

enum {
    MBOX_OK = 0,
    MBOX_NOT_FOUND = 1, /* no such connection, session or topic */
    MBOX_AGAIN = 2,     /* no arena room for the reply: try again */
    MBOX_BAD = 3        /* unknown operation or bad argument */
};

#define MBOX_F_DISCARD 0x01 /* KICK: free the session, even a persistent one */

typedef struct shm_mbox {
    /* ---- written by the supervisor ---- */
    uint32_t req_seq;  /* release store after the fields below */
    uint32_t op;       /* MBOX_* */
    uint32_t flags;    /* MBOX_F_* */
    uint32_t slot;
    uint32_t conn_gen;
    uint32_t arg_len;  /* bytes of arg (not NUL-terminated) */
    uint32_t offset;   /* paging */
    uint32_t limit;
    uint8_t pad0[32];
    char arg[SHM_MBOX_ARG];
    /* ---- written by the child ---- */
    uint32_t ack_seq;  /* release store after rc, aux and reply */
    int32_t rc;        /* MBOX_OK, MBOX_NOT_FOUND, ... */
    uint32_t aux;
    uint32_t pad1;
    arena_h reply;     /* blob for the supervisor to copy and release, or 0 */
    uint8_t pad2[40];
} shm_mbox_t;

/* MBOX_RET_LIST reply blob (at most SHM_MBOX_REPLY_MAX bytes): this
 * header, then n entries, each an shm_ret_ent_t directly followed by its
 * topic bytes (no padding: read them with memcpy). */
#define SHM_MBOX_REPLY_MAX (1u << 20)

typedef struct shm_ret_list {
    uint32_t total; /* retained messages matching the filter */
    uint32_t n;     /* entries that follow (from offset, up to limit) */
} shm_ret_list_t;

typedef struct shm_ret_ent {
    uint8_t qos;
    uint8_t pad;
    uint16_t topic_len;
    uint32_t payload_len;
} shm_ret_ent_t;

typedef struct shm_hdr {
    uint64_t magic;
    uint32_t version;
    uint32_t hdr_size;
    uint64_t total_size;
    uint64_t created;
    uint32_t log_types;   /* LOG_T_*, written by the supervisor only */
    uint32_t crash_fired; /* a test crash point fired (crashpoint.h) */

    uint32_t n_fe;
    uint32_t n_fo;
    uint32_t max_clients;
    uint32_t max_inflight;
    uint32_t max_queued;
    uint32_t stopping;    /* the broker is stopping (set by the supervisor
                             before its SIGTERMs): a child that exits gives
                             back what it keeps in shm; one restarted alone
                             (restart_worker) keeps it for its successor */
    uint64_t max_queued_bytes; /* 0: no limit */
    uint32_t out_cap;     /* data ring records per slot */
    uint32_t ingest_cap;
    uint32_t reply_cap;
    uint32_t notify_cap;
    uint32_t bcast_cap;   /* broadcast ring records */
    uint32_t pad4;
    uint32_t pid_range;   /* outbound packet ids are 1 .. pid_range - 1
                             (a power of two, at least twice
                             max_inflight, at most 65536): the bitmap of
                             those in use is pid_range / 8 bytes, near the
                             inflight table */

    uint64_t off_ingest;  /* n_fe * n_fo rings, stride ingest_stride */
    uint64_t ingest_stride;
    uint64_t off_reply;   /* n_fo * n_fe */
    uint64_t reply_stride;
    uint64_t off_notify;  /* n_fo * n_fe */
    uint64_t notify_stride;
    uint64_t off_bcast;   /* n_fo * n_fe */
    uint64_t bcast_stride;
    uint64_t off_bc_gen;  /* uint32_t per slot (shm_bc_gen()) */
    uint64_t off_slots;
    uint64_t slot_stride;
    uint64_t slot_off_inflight; /* inside a slot */
    uint64_t slot_off_qos2;
    uint64_t slot_off_pids;
    uint64_t slot_off_ring;
    uint64_t slot_off_ctl;
    uint64_t off_xring;   /* n_fo * n_fo worker rings (fo_xrec_t) */
    uint64_t xring_stride;
    uint32_t xring_cap;
    uint32_t pad3;
    uint64_t off_fe_rel;  /* per frontend: fe_conns * SHM_FE_IOV handles */
    uint64_t fe_rel_stride;
    uint32_t fe_conns;    /* connection ids per frontend */
    uint32_t pad2;
    uint64_t off_parts;   /* arena_part_t[n_fe + n_fo] */
    uint64_t off_arena;
    uint64_t arena_size;

    proc_t procs[SHM_MAX_PROCS]; /* [0] supervisor, [1..n_fe] frontends,
                                    then workers */
    shm_mbox_t mbox[SHM_MAX_PROCS]; /* admin mailboxes, indexed as procs */
    shm_panic_t panic[SHM_MAX_PROCS]; /* last words, indexed as procs */
} shm_hdr_t;

enum { SESS_FREE = 0, SESS_ONLINE = 1, SESS_HANDOFF = 2, SESS_OFFLINE = 3 };
enum { INF_FREE = 0, INF_SENT = 1, INF_PUBREC = 2 };

/* The inflight table is a FIFO in send order: entries are appended at
 * inf_tail and acknowledged mostly at inf_head; an entry acknowledged out
 * of order is marked free and skipped when the head reaches it.  Positions
 * restart at 0 whenever the table empties, so a client with a few messages
 * in flight touches one page of it however large max_inflight is. */
typedef struct sess_inflight {
    uint16_t pid;
    uint8_t qos;
    uint8_t state; /* INF_* */
    uint8_t retain;
    uint8_t resend;    /* 1: to be sent again on this connection (its
                          re-send waits for room in the client's window;
                          written by the role holder) */
    uint8_t pad[2];
    uint32_t ring_pos; /* data ring position the message was taken from
                          (crash recovery: see sess_repair()) */
    uint32_t sub_id;   /* MQTT 5: its first Subscription Identifier, sent
                          again with it on a resend (0: none) */
    arena_h h;     /* the message (holds a reference); 0 after PUBREC */
    uint32_t group;    /* sent through a shared subscription: the group's
                          hash (0: not shared); handed to another member
                          if the session ends before the acknowledgement */
    uint32_t pad2;
} sess_inflight_t;

typedef struct sess_slot {
    /* ---- written by the owner worker ---- */
    uint32_t state;     /* SESS_* */
    uint32_t conn_gen;  /* bumped on every attach */
    uint8_t host_fe;
    uint8_t clean;
    uint8_t level;
    uint8_t will_qos;
    uint8_t will_retain;
    uint8_t pad0[3];
    arena_h client_id;  /* blob [u16 len][id] */
    arena_h subs;       /* first subscription record */
    arena_h will;       /* will message or 0 */
    uint64_t offline_since;
    uint64_t q_bytes_in; /* payload bytes ever pushed to the data ring */
    uint64_t drops;     /* deliveries dropped for this session */
    uint32_t cookie;    /* the attached connection's CONNECT cookie */
    uint8_t present;    /* session present, as answered at attach */
    uint8_t pad4[3];
    ing_rec_t pend;     /* HANDOFF: the CONNECT waiting for the old
                           connection's DETACH (type 0: none) */
    uint32_t expiry;    /* seconds the session outlives its connection
                           (CONN_EXPIRY_NEVER: forever; 0: it ends with
                           it, then `clean` is 1) */
    uint64_t will_at;   /* a delayed will: unix time it is due (0: none) */
    uint32_t epoch;     /* bumped for every new or wiped session: a shared
                           subscription member is (slot, epoch) */
    /* a shared-subscription message being handed back to worker 0 when
     * the session ends (fo_share_handover()): its record or inflight
     * entry is let go first, then the return pushed; a new incarnation
     * finishes what it finds here (fo_share_recover_slot()) */
    uint32_t ho_group;
    uint8_t ho_qos;
    uint8_t pad7[3];
    arena_h ho_h;
    /* ---- written by the role holder (host frontend, or owner when
     *      detached) ---- */
    uint16_t next_pid;
    uint16_t pad2;
    uint32_t n_inflight; /* live entries */
    uint32_t inf_head;   /* FIFO positions in the inflight table */
    uint32_t inf_tail;
    uint32_t n_qos2;     /* bits set in the inbound QoS 2 bitmap */
    /* an inbound QoS 2 PUBLISH being posted (in_posting 1): its packet
     * id and message, until its bit is set (crash recovery) */
    uint8_t in_posting;
    uint8_t pad5;
    uint16_t in_pid;
    uint32_t pad6;
    arena_h in_h;
    /* ---- written by the host frontend at attach (for the admin socket) */
    uint64_t connected_at; /* unix time */
    uint16_t keepalive;
    char peer[64];         /* "address:port", NUL-terminated */
    uint64_t q_bytes_out; /* payload bytes ever taken from the data ring */
    /* ---- handshake word: set by the owner, cleared by the host ---- */
    uint32_t queued;
    uint8_t pad3[30];
} sess_slot_t;

/* Subscription record (owner worker's arena partition), in a doubly
 * linked chain from sess_slot_t.subs. */
typedef struct sess_sub {
    arena_h next;
    arena_h prev;
    uint32_t sub_id; /* MQTT 5 Subscription Identifier, 0: none */
    uint8_t opts;    /* granted QoS | MQTT_SUBOPT_* */
    uint8_t pad;
    uint16_t len;
    char filter[];
} sess_sub_t;

/* Shared-subscription member (allocated by the subscriber's frontend,
 * linked by worker 0 in a doubly linked chain from its
 * proc_t.share_head): filter is the whole "$share/GROUP/FILTER". */
typedef struct fo_share_rec {
    arena_h next;
    arena_h prev;
    uint32_t slot;
    uint32_t epoch;
    uint32_t conn_gen; /* of the connection that subscribed: a join from a
                          connection older than the session's current one
                          is void (it may arrive after a later leave) */
    uint32_t sub_id;
    uint8_t opts;  /* granted QoS | MQTT_SUBOPT_* */
    uint8_t pad;
    uint16_t len;
    char filter[];
} fo_share_rec_t;

/* Retained message record (a worker's arena partition), in a doubly
 * linked chain from proc_t.ret_head: holds a reference to the message,
 * whose bytes give the topic. */
typedef struct fo_ret_rec {
    arena_h next;
    arena_h prev;
    arena_h msg;
    uint8_t qos;
    uint8_t pad[7];
} fo_ret_rec_t;

/* A process's view of the mapping. */
typedef struct shm {
    uint8_t *base;
    shm_hdr_t *hdr;
    arena_t arena;
    int fd;
} shm_t;

typedef struct shm_params {
    uint32_t n_fe, n_fo, max_clients, max_inflight, max_queued;
    uint32_t ingest_cap;
    uint64_t arena_size;
    uint64_t max_queued_bytes;
} shm_params_t;

/*
 * Creates the memfd, sizes it from p, maps it and initialises every
 * structure.  Returns 0, or -1 after logging the failing call.
 */
int shm_create(shm_t *s, const shm_params_t *p);

/* Checks magic, version, sizes and every ring header of a mapping that
 * might have been scribbled on.  Returns 0 or -1 (logged). */
int shm_check(const shm_t *s);

static inline ring_t *shm_ingest(const shm_t *s, uint32_t fe, uint32_t fo)
{
    return (ring_t *)(s->base + s->hdr->off_ingest +
                      (fe * s->hdr->n_fo + fo) * s->hdr->ingest_stride);
}

static inline ring_t *shm_reply(const shm_t *s, uint32_t fo, uint32_t fe)
{
    return (ring_t *)(s->base + s->hdr->off_reply +
                      (fo * s->hdr->n_fe + fe) * s->hdr->reply_stride);
}

static inline ring_t *shm_notify(const shm_t *s, uint32_t fo, uint32_t fe)
{
    return (ring_t *)(s->base + s->hdr->off_notify +
                      (fo * s->hdr->n_fe + fe) * s->hdr->notify_stride);
}

/* Written by slot's host frontend, read by its owner worker: the
 * connection generation the host has attached and takes broadcast
 * deliveries for; 0 while its queue was filling up, until it drained the
 * data ring empty (docs/architecture.md, "QoS 0 to many").  One dense
 * array, not a slot field: a fan-out reads it for every subscriber. */
static inline uint32_t *shm_bc_gen(const shm_t *s, uint32_t slot)
{
    return (uint32_t *)(s->base + s->hdr->off_bc_gen) + slot;
}

/* The broadcast ring from worker fo to frontend fe (bc_rec_t). */
static inline ring_t *shm_bcast(const shm_t *s, uint32_t fo, uint32_t fe)
{
    return (ring_t *)(s->base + s->hdr->off_bcast +
                      (fo * s->hdr->n_fe + fe) * s->hdr->bcast_stride);
}

/* The worker ring from worker `from` to worker `to`. */
static inline ring_t *shm_xring(const shm_t *s, uint32_t from, uint32_t to)
{
    return (ring_t *)(s->base + s->hdr->off_xring +
                      (from * s->hdr->n_fo + to) * s->hdr->xring_stride);
}

static inline sess_slot_t *shm_slot(const shm_t *s, uint32_t i)
{
    return (sess_slot_t *)(s->base + s->hdr->off_slots +
                           (uint64_t)i * s->hdr->slot_stride);
}

static inline sess_inflight_t *sess_inflight(const shm_t *s, uint32_t i)
{
    return (sess_inflight_t *)((uint8_t *)shm_slot(s, i) +
                               s->hdr->slot_off_inflight);
}

static inline uint8_t *sess_qos2(const shm_t *s, uint32_t i)
{
    return (uint8_t *)shm_slot(s, i) + s->hdr->slot_off_qos2;
}

/* The slot's data ring (deliveries). */
/* Bitmap of outbound packet ids in use (one bit per id). */
static inline uint8_t *sess_pids(const shm_t *s, uint32_t i)
{
    return (uint8_t *)shm_slot(s, i) + s->hdr->slot_off_pids;
}

static inline ring_t *sess_ring(const shm_t *s, uint32_t i)
{
    return (ring_t *)((uint8_t *)shm_slot(s, i) + s->hdr->slot_off_ring);
}

/* The slot's control ring (SUBACK/UNSUBACK, takeover). */
static inline ring_t *sess_ctl(const shm_t *s, uint32_t i)
{
    return (ring_t *)((uint8_t *)shm_slot(s, i) + s->hdr->slot_off_ctl);
}

static inline proc_t *shm_fe_proc(const shm_t *s, uint32_t fe)
{
    return &s->hdr->procs[1 + fe];
}

static inline proc_t *shm_fo_proc(const shm_t *s, uint32_t fo)
{
    return &s->hdr->procs[1 + s->hdr->n_fe + fo];
}

/* Admin mailbox of frontend fe / worker fo (see shm_mbox_t). */
static inline shm_mbox_t *shm_fe_mbox(const shm_t *s, uint32_t fe)
{
    return &s->hdr->mbox[1 + fe];
}

static inline shm_mbox_t *shm_fo_mbox(const shm_t *s, uint32_t fo)
{
    return &s->hdr->mbox[1 + s->hdr->n_fe + fo];
}

static inline arena_part_t *shm_fe_part(const shm_t *s, uint32_t fe)
{
    return &s->arena.parts[fe];
}

/* The largest MQTT packet a frontend can take in: max_packet_size
 * (configured), or less when a frontend's arena partition has no block
 * for its message (a packet of N bytes makes a message of at most
 * MSG_HDR + MSG_PKT0_MAX + N bytes, records.h).  Partitions of frontends
 * are all the same size. */
static inline uint32_t shm_max_packet(const shm_t *s, uint32_t configured)
{
    uint64_t len = arena_part_max_len(shm_fe_part(s, 0));
    uint64_t fit = len > MSG_HDR + MSG_PKT0_MAX ? len - MSG_HDR - MSG_PKT0_MAX
                                                : 0;
    return fit < configured ? (uint32_t)fit : configured;
}

static inline arena_part_t *shm_fo_part(const shm_t *s, uint32_t fo)
{
    return &s->arena.parts[s->hdr->n_fe + fo];
}

/* Owner worker of a slot. */
static inline uint32_t shm_slot_owner(const shm_t *s, uint32_t slot)
{
    return slot % s->hdr->n_fo;
}

/* ---- inflight table (shm/sess.c); callers hold the role ---- */

/* Entry at FIFO position pos. */
static inline sess_inflight_t *sess_inf_at(const shm_t *s, uint32_t slot,
                                           uint32_t pos)
{
    return &sess_inflight(s, slot)[pos % s->hdr->max_inflight];
}

/* True when one more message may be put in flight. */
int sess_inf_room(const shm_t *s, uint32_t slot);

/* Appends an entry (state INF_SENT) for message h, which it keeps a
 * reference of, under a fresh packet id; ring_pos is the data ring
 * position of the record h comes from (the caller consumes that record
 * right after); sub_id its first Subscription Identifier, group its
 * shared subscription's hash (0: none).  The caller checked
 * sess_inf_room().  Returns the entry. */
sess_inflight_t *sess_inf_add(const shm_t *s, uint32_t slot, uint8_t qos,
                              int retain, arena_h h, uint32_t ring_pos,
                              uint32_t sub_id, uint32_t group);

/* The live entry for pid, or NULL. */
sess_inflight_t *sess_inf_find(const shm_t *s, uint32_t slot, uint16_t pid);

/* Completes entry e: releases its message, frees its packet id. */
void sess_inf_done(shm_t *s, uint32_t slot, sess_inflight_t *e);

/* Consumes the first n records of r (a slot's data or control ring: each
 * record begins with an arena handle) one at a time, each before its
 * reference is released: a kill in between leaks, never releases twice.
 * The caller holds the consumer role. */
void sess_ring_drop(shm_t *s, ring_t *r, uint32_t n);

/* Completes every entry (session wipe). */
void sess_inf_clear(shm_t *s, uint32_t slot);

/*
 * Makes the role-holder state of slot consistent after its holder died at
 * an arbitrary instruction: recomputes the inflight count, FIFO positions
 * and packet-id bitmap from the entries, and consumes (without a release)
 * a data ring record whose reference an entry already took.  The caller
 * is the new role holder.  Returns the live inflight entries.
 */
uint32_t sess_repair(shm_t *s, uint32_t slot);

/* The output-queue handles of connection id of frontend fe (SHM_FE_IOV
 * of them; see fe_conn.c): written only by that frontend. */
static inline arena_h *shm_fe_rel(const shm_t *s, uint32_t fe, uint32_t id)
{
    return (arena_h *)(s->base + s->hdr->off_fe_rel +
                       fe * s->hdr->fe_rel_stride) +
           (uint64_t)id * SHM_FE_IOV;
}

/* Last-words buffer of process i (indexed as procs). */
static inline shm_panic_t *shm_panic(const shm_t *s, uint32_t i)
{
    return &s->hdr->panic[i];
}

/* Releases the references p holds as a count (proc_t.held_n of held_h),
 * zeroing the count first: a kill in between leaks them, never releases
 * them twice.  Nothing when the count is 0. */
void shm_held_release(shm_t *s, proc_t *p);
/* The same for a count of references to h held in *n (proc_t.bc_n). */
void shm_count_release(shm_t *s, arena_h h, uint64_t *n);

/* Adds reference h to p's count, releasing the count first when it is of
 * another message.  The caller has already cleared where h was held. */
static inline void shm_held_add(shm_t *s, proc_t *p, arena_h h)
{
    if (h != p->held_h) {
        shm_held_release(s, p);
        p->held_h = h;
        ARENA_CRASH_ORDER(); /* the new handle before its first count */
    }
    p->held_n++;
}

/* Wakes worker fo if it sleeps: the full fence orders our ring commit
 * before the load of `sleeping` (pairs with the fence the worker issues
 * after setting `sleeping` and before re-checking its rings). */
void shm_wake_worker(const shm_t *s, uint32_t fo);

#endif
