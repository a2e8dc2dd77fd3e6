/*
 * fe.h -- the frontend process: connections, their input and output
 * queues, and the packet handlers (handle_*.c), shared by its files.
 */
#ifndef RINGMQ_FE_H
#define RINGMQ_FE_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <time.h>

#include "clock.h"
#include "config.h"
#include "mqtt.h"
#include "shm.h"
#include "strmap.h"

#define FE_IOV_CAP SHM_FE_IOV /* iovecs per connection output queue */
#define FE_HB_CAP 2048     /* per-connection header/control byte buffer */
#define FE_MAX_PENDING_ACKS 16 /* SUBSCRIBE/UNSUBSCRIBE awaiting a worker */
/* A connection's queue takes no further delivery while it holds this many
 * bytes: what a client does not read stays in its session's ring, where
 * max_queued_messages and max_queued_bytes count it, instead of holding
 * up to FE_IOV_CAP messages of the arena here. */
#define FE_OUT_BYTES_MAX (1u << 20)
#define FE_ID_BITS 20
#define FE_CONNECTING_GRACE 30 /* s past connect_timeout to wait for the
                                  owner worker's answer to a CONNECT */

enum {
    C_NEW = 0,        /* accepted, waiting for CONNECT */
    C_CONNECTING = 1, /* CONNECT posted to the owner worker */
    C_ACTIVE = 2,     /* attached to its session slot */
    C_AUTH = 3        /* MQTT 5 enhanced authentication under way: the
                         CONNECT waits in auth_connect (handle_auth.c) */
};

/* TLS / WebSocket state of a connection (fe_xport.c). */
typedef struct fe_xport fe_xport_t;

struct fe_auth_method;

/* An inbound MQTT 5 Topic Alias: the topic it stands for. */
typedef struct fe_alias {
    char *topic; /* NULL: not set */
    uint16_t len;
} fe_alias_t;

#define FE_SUBIDS_MAX 32 /* Subscription Identifiers on one delivery */

typedef struct fe_conn {
    /* ---- hot: what a delivery touches (fe_drain_slot(), the flush and
     * its completion), in the first two cache lines ---- */
    int fd;
    int state;
    fe_xport_t *x; /* TLS / WebSocket transport; NULL for plain TCP */
    /* output: a FIFO of iovecs (iov[], at the end); rel[i] is released
     * once iov[i] is sent.  rel lives in shm (shm_fe_rel()), so that a new
     * incarnation of this frontend can release what a dead one held; see
     * fe_rel_set().  hb[] (at the end) holds copied bytes. */
    arena_h *rel;
    uint64_t out_bytes; /* bytes in the queue */
    struct fe_conn *dirty_next;
    uint64_t last_tx_ms; /* fe_t.round_ms of our last write (coalescing
                            on) */
    uint64_t hold_until; /* held: written at this fe_hold_clock() at the
                            latest; 0: not held */
    uint32_t slot;
    uint32_t conn_gen;
    /* second line */
    uint32_t id;   /* index in fe_t.conns (and its registered file) */
    uint32_t iov_head;
    uint32_t iov_n;
    uint32_t hb_used;
    uint32_t max_pkt;     /* client's Maximum Packet Size (0: no limit) */
    uint32_t pending_acks;
    uint32_t bc_drops;    /* broadcast deliveries lost to a full queue */
    uint16_t out_pubs;    /* deliveries in the queue (fe_hold.c) */
    uint16_t recv_max;    /* client's Receive Maximum: its inflight window */
    uint16_t alias_out_max; /* client's Topic Alias Maximum */
    uint8_t level;
    bool inflight_blocked; /* drain stopped: inflight window full */
    bool resend_pending;   /* inflight entries wait to be sent again */
    bool paused;        /* input processing stopped (back-pressure) */
    bool resume_soon;   /* in fe_t.resume */
    bool bc_later;      /* its drain waits for the broadcast groups */
    bool read_off;      /* ev_read removed */
    bool write_on;      /* ev_write added */
    bool dirty;         /* in the flush list */
    /* write coalescing (fe_hold.c) */
    bool out_urgent;     /* the queue holds something else than
                            deliveries (an ack, a SUBACK) */
    bool rx_since_tx;    /* the client sent bytes since our last write */
    bool reply_next;     /* a QoS 2 PUBLISH is queued: we answer the
                            client's PUBREC at once, so the socket may
                            delay its ACK (fe_delay_ack()) */
    bool ack_delayed;    /* ... and it does: input we do not answer is
                            acknowledged at once (fe_process_input()) */
    strmap_t *alias_out;    /* topic -> outbound alias */

    /* ---- the rest ---- */
    int listener;  /* index in cfg->listeners */
    uint32_t gen;  /* bumped each time the index is reused */
    char *username; /* client certificate's common name, when the listener
                       has use_identity_as_username */
    struct event *ev_read;
    struct event *ev_write;
    char *client_id;

    /* input */
    uint8_t *in;
    size_t in_len;
    size_t in_cap;

    /* session */
    bool clean;
    uint16_t keepalive;
    bool disconnecting;    /* DISCONNECT received: close cleanly */
    bool discard_session;  /* on close, free even a persistent session */
    uint64_t accepted_ms; /* fe_clock_ms() at accept */
    uint64_t last_rx_ms;  /* fe_clock_ms() at the last byte read */

    /* MQTT 5 (level 5 only; see docs/mqtt5.md; Receive Maximum, Maximum
     * Packet Size and Topic Alias Maximum are above) */
    bool problem_info;    /* Request Problem Information: Reason Strings */
    uint32_t sess_expiry; /* Session Expiry Interval from CONNECT */
    bool expiry_changed;  /* ... and a DISCONNECT changed it */
    bool id_assigned;     /* the client id is ours (Assigned Client Id) */
    bool server_keepalive; /* keepalive is max_keepalive, not the client's */
    bool want_response_info; /* Request Response Information 1 */
    fe_alias_t *alias;    /* inbound Topic Aliases [1..n_alias] */
    uint16_t n_alias;
    uint16_t alias_out_n;   /* outbound aliases assigned (1..n) */
    uint32_t epoch;       /* the session's (shared subscription members) */
    /* MQTT 5 enhanced authentication (handle_auth.c) */
    const struct fe_auth_method *auth; /* the method in use, or NULL */
    void *auth_state;     /* the method's, during an exchange */
    uint8_t *auth_connect; /* the CONNECT waiting for the exchange: its
                              first byte, then its body */
    uint32_t auth_connect_len;
    uint8_t *auth_out;    /* Authentication Data for the CONNACK */
    uint16_t auth_out_len;
    bool auth_done;       /* the exchange ended well: CONNECT goes on */
    bool reauth;          /* a re-authentication (AUTH 0x19) under way */

    /* Large and cold last: every field above is near the others, so an
     * event on a connection touches a few cache lines, not a few pages. */
    char peer[64];
    struct iovec iov[FE_IOV_CAP];
    uint8_t hb[FE_HB_CAP];
} fe_conn_t;

/* The hot fields fill the first two cache lines (jemalloc's size class
 * for fe_conn_t is a multiple of 64 bytes, so they are aligned). */
_Static_assert(offsetof(fe_conn_t, listener) <= 128,
               "fe_conn_t: the hot fields outgrew two cache lines");

typedef struct fe_backlog {
    ing_rec_t *recs;
    uint32_t head, n, cap;
} fe_backlog_t;

/* What we last saw of a worker taking records from our ingest ring
 * (worker_stalled() in fe_conn.c). */
typedef struct fe_stall {
    uint64_t tail;       /* its consumer position */
    uint64_t since_ms;   /* fe_clock_ms() since when it has not moved */
    uint64_t checked_ms; /* fe_clock_ms() of the last look */
    bool pending;        /* records were waiting at the last look */
    bool stalled;        /* at the last look */
} fe_stall_t;

typedef struct fe {
    const cfg_t *cfg;
    shm_t *shm;
    uint32_t idx;
    uint32_t n_fo;
    proc_t *proc;
    arena_part_t *part;
    struct event_base *base;
    struct event *ev_wake;
    struct event *ev_tick;
    struct event *ev_retry;
    struct event *ev_flush; /* fe_flush_soon(): after this batch of events */
    struct event **ev_listen;
    int n_listen;
    int efd;

    fe_conn_t **conns;   /* by id */
    uint32_t conns_cap;
    uint32_t *free_ids;
    uint32_t n_free_ids;
    uint32_t *conn_gens; /* next generation per id */
    uint32_t n_conns;
    fe_conn_t **by_slot; /* attached connection per session slot */
    uint32_t *connects_out; /* outstanding CONNECTs per worker */

    fe_conn_t *dirty;    /* connections with output to flush */
    uint32_t n_dirty;    /* ... how many (fe_hold.c) */
    uint64_t round_ms;   /* fe_hold_clock() when the last flush round began
                            (coalescing on): the time of its writes */
    uint8_t *wake_fo;    /* workers to wake at the end of this callback */
    fe_backlog_t *backlog; /* per worker: records waiting for ring room */
    fe_stall_t *stall;     /* per worker: is it taking our records? */
    bool retry_armed;
    bool flush_armed;    /* ev_flush is active */
    uint32_t syncing;    /* workers yet to answer the start-up SYNC */
    uint8_t *synced;     /* per worker: answered (while syncing) */
    uint32_t gen_base;   /* connection generations start here: cookies of
                            this incarnation differ from the last one's */
    time_t now;
    uint32_t *resume;    /* cookies of connections to resume at the end of
                            the wake-up (fe_resume_soon()) */
    uint32_t n_resume, resume_cap;
    uint32_t max_packet; /* the largest packet we take: max_packet_size, or
                            what our arena partition can hold
                            (shm_max_packet()) */
    uint64_t max_block;  /* arena_part_max_len() of our partition */
} fe_t;

extern fe_t *fe;

/* Milliseconds of a monotonic clock (coarse: a few ms resolution, no
 * system call): timeouts count from it, never early. */
static inline uint64_t fe_clock_ms(void)
{
    return clock_coarse_ms();
}

/* Process entry: runs frontend idx until SIGTERM, accepting on the n_lfd
 * listening sockets lfd (lfd_listener[i]: the cfg listener of lfd[i]).
 * Returns the exit code. */
int fe_main(const cfg_t *cfg, shm_t *shm, uint32_t idx, const int *lfd,
            const int *lfd_listener, int n_lfd, int efd);

/* fe_conn.c */
void fe_accept(evutil_socket_t lfd, short what, void *arg);
/* Closes c for a protocol error or a limit: an MQTT 5 client that is
 * attached is sent DISCONNECT with reason code rc first (and why as the
 * Reason String when it asked for problem information); why is logged.
 * Returns -1 (c is freed), for the handlers to pass on. */
int fe_disconnect(fe_conn_t *c, uint8_t rc, const char *why);
/* fe_disconnect() for a WHAT packet that did not parse: the parser's
 * result r and reason why; rc is the MQTT 5 reason code, or 0 for the one
 * r's error class calls for (mqtt5_error_reason()).  Returns -1. */
int fe_bad_packet(fe_conn_t *c, const char *what, int r, uint8_t rc,
                  const char *why);
/* Only the DISCONNECT of fe_disconnect() (nothing for 3.1.1 or before
 * CONNACK), written out now.  Returns 0, or -1 when the write failed and
 * c was closed. */
int fe_send_disconnect(fe_conn_t *c, uint8_t rc, const char *why);
/* Closes c.  clean: a DISCONNECT was received (no will).  reason is
 * logged.  c is freed.  With c->discard_session set, the owner worker
 * frees the session even when it is persistent (admin kick). */
void fe_close(fe_conn_t *c, bool clean, const char *reason);
/* Runs the packet handlers over buffered input until it is used up or the
 * connection pauses.  Returns 0, or -1 when c was closed. */
int fe_process_input(fe_conn_t *c);
/* Stops processing input until fe_resume(); arms the retry timer. */
void fe_pause(fe_conn_t *c);
void fe_resume(fe_conn_t *c);
/* fe_pause() because our arena partition is full, and a warning (at most
 * every 10 s) saying so. */
void fe_pause_arena_full(fe_conn_t *c);
/* Resumes paused c at the end of this wake-up (fe_resume_due()), not
 * after the retry timer: what it waited for has come. */
void fe_resume_soon(fe_conn_t *c);
void fe_resume_due(void);
/* Queues bytes (copied) for c.  Returns 0 or -1 when the queue is full. */
int fe_out_bytes(fe_conn_t *c, const void *p, size_t n);
/* Queues arena bytes for c (not copied); rel is released once they are
 * written (0: nothing to release).  Returns 0 or -1 when full. */
int fe_out_ref(fe_conn_t *c, const void *p, size_t n, arena_h rel);
/* Whether c's queue is half full (bytes, iovecs or header buffer). */
bool fe_out_half_full(const fe_conn_t *c);
/* Drops the first n bytes of c's queue, releasing the references of
 * the iovecs that are used up (they were written or copied). */
void fe_out_consume(fe_conn_t *c, size_t n);
/* Free iovecs and header bytes in c's queue. */
bool fe_out_room(fe_conn_t *c, uint32_t iovs, uint32_t bytes);
void fe_mark_dirty(fe_conn_t *c);
/* Writes queued output of every dirty connection. */
void fe_flush_dirty(void);
/* fe_flush_dirty() once every socket that epoll found ready together has
 * been read: one io_uring submission for the answers to all of them. */
void fe_flush_soon(void);
void fe_flush_init(void);
/* Writes c's queue now; returns 0, or -1 when c was closed. */
int fe_flush(fe_conn_t *c);
/* Puts c's socket into delayed-ACK (pingpong) mode before a QoS 2 PUBLISH
 * goes out (fe_ack_delay_set()). */
void fe_delay_ack(fe_conn_t *c);
/* The state change that goes with it, for fe_delay_ack() and its io_uring
 * command (fe_uring.c): clears reply_next, sets ack_delayed. */
static inline void fe_ack_delay_set(fe_conn_t *c)
{
    c->reply_next = false;
    c->ack_delayed = true;
}
/* Applies the result of one write of c's queue: w bytes written, or w < 0
 * with errno err.  Sent iovecs are dropped (their references released);
 * EAGAIN arms EV_WRITE; another error closes c.  Returns 1 when output is
 * left, 0 when the queue is empty or the socket is full, -1 when c was
 * closed. */
int fe_out_written(fe_conn_t *c, ssize_t w, int err);

/* fe_xport.c: TLS, WebSocket and WSS connections (plain TCP never
 * gets there).  Functions that return int return 0, or -1 when c was
 * closed. */
/* Sets up c's transport for listener li (c->fd is open).  Returns 0 or -1
 * (logged; c untouched). */
int fe_xp_init(fe_conn_t *c, int li);
/* The socket is readable: decrypts and unframes what it has into c->in
 * and runs the packet handlers; answers the WebSocket upgrade, pings and
 * close frames. */
int fe_xp_on_read(fe_conn_t *c);
/* The socket is writable: continues a TLS read or write that waited. */
int fe_xp_on_write(fe_conn_t *c);
/* Frames and encrypts c's queue batch by batch and writes it; arms
 * EV_WRITE when the socket is full. */
int fe_xp_flush(fe_conn_t *c);
/* False while the transport keeps c's socket unread: its framed output
 * is backed up, or an SSL_read waits for the socket to be writable.
 * fe_resume() leaves reading off then; the transport turns it on again. */
bool fe_xp_may_read(const fe_conn_t *c);
/* Rearms reading when OpenSSL holds decrypted bytes (after a pause). */
void fe_xp_kick(fe_conn_t *c);
/* From fe_resume(): a WebSocket close frame that came while c waited for
 * its session (or for room) is answered and c closed once the packets
 * before it are handled.  -1 when c was closed. */
int fe_xp_close_due(fe_conn_t *c);
/* For fe_close(): a best-effort goodbye (WebSocket close frame, TLS
 * close_notify), then frees the transport.  Does not close the fd. */
void fe_xp_free(fe_conn_t *c);
/* What c's transport still waits for before MQTT can flow ("TLS
 * handshake", "WebSocket upgrade"), or NULL. */
const char *fe_xp_pending(const fe_conn_t *c);

/* fe_hold.c: write coalescing.  A flush round that writes to at least
 * this many connections may hold lone deliveries back. */
#define FE_HOLD_MIN_ROUND 32
/* Milliseconds of CLOCK_MONOTONIC (precise, unlike fe_clock_ms()). */
uint64_t fe_hold_clock(void);
void fe_hold_init(void);
/* Writes go out at once from now on; held connections are dirty again. */
void fe_hold_stop(void);
/* Whether c's queue may wait for the next delivery at now, with the
 * window write_coalesce_ms (the rules are at the top of fe_hold.c). */
bool fe_hold_wanted(const fe_conn_t *c, uint64_t now, uint32_t window);
/* Called by fe_flush_dirty() first: puts back held connections whose time
 * has come, and takes those that may wait off the dirty list. */
void fe_hold_round(void);

/* fe_uring.c: batched writes.  fe_uring_init() returns 0, or -1 when
 * io_uring is not available (writes then go one writev() each). */
int fe_uring_init(void);
/* Registers / unregisters c's socket with the ring (after accept; before
 * close).  Nothing without io_uring. */
void fe_uring_add(const fe_conn_t *c);
void fe_uring_forget(const fe_conn_t *c);
/* Writes the queues of every connection on the dirty list with one
 * io_uring submission per batch and empties the list.  Returns 0, or -1
 * when io_uring is not in use (the list is untouched). */
int fe_uring_flush_dirty(void);
fe_conn_t *fe_conn_by_cookie(uint32_t cookie);
static inline uint32_t fe_cookie(const fe_conn_t *c)
{
    return c->gen << FE_ID_BITS | c->id;
}

/* Posts rec to worker fo's ingest ring; when the ring is full the record
 * waits, in order, in a private backlog (never lost). */
void fe_post(uint32_t fo, ing_rec_t *rec);
/* True when a record posted to fo now goes straight into the ring (empty
 * backlog and room): producers that can wait check this first. */
bool fe_post_room(uint32_t fo);
/* fe_post_room() for every worker. */
bool fe_post_room_all(void);
/* Moves backlogged records into the rings; true when none is left. */
bool fe_retry_backlogs(void);
/* Hands session slot (connection generation conn_gen) back to its owner
 * worker: publishes the will first unless clean (a DISCONNECT was
 * received), then posts DETACH (discard: free even a persistent
 * session; new_expiry >= 0: the Session Expiry Interval an MQTT 5
 * DISCONNECT set).  A will with a Will Delay Interval of a session that
 * outlives the connection is left to the owner worker to send later. */
void fe_detach(uint32_t slot, uint32_t conn_gen, bool clean, bool discard,
               int64_t new_expiry);
/* Posts the will h of slot (holding one reference per worker, consumed)
 * to every worker, starting its Message Expiry now. */
void fe_post_will(uint32_t slot, arena_h h, uint8_t qos, bool retain);
/* Copies a PUBLISH, or with will set a will, into a message (records.h
 * layout) in this frontend's partition: the forwardable MQTT 5
 * properties of props (NULL for 3.1.1), the topic and the payload.  The
 * Message Expiry Interval of props counts from now, for a will from when
 * it is sent; a will keeps its Will Delay Interval.  Returns 0 when the
 * arena is full, and sets *never when no block of our partition could
 * hold it. */
arena_h fe_msg_alloc(const mqtt_props_t *props, const void *t,
                     uint16_t tlen, const void *payload, size_t plen,
                     bool will, bool *never);
/* True when len bytes exceed the largest block of our arena partition:
 * such an allocation can never succeed, so it is refused, not waited
 * for. */
bool fe_never_fits(size_t len);
/* Posts the message h (holding one reference, consumed) as PUBLISH to
 * every worker.  Returns 0 or -1 when a ring is full (h untouched). */
int fe_post_publish(fe_conn_t *c, arena_h h, uint8_t qos, bool retain);

/* handlers (handle_*.c); each returns 0, or -1 when c was closed */
int handle_connect(fe_conn_t *c, const mqtt_fixed_t *fh, const uint8_t *b);
int handle_publish(fe_conn_t *c, const mqtt_fixed_t *fh, const uint8_t *b);
int handle_ack(fe_conn_t *c, const mqtt_fixed_t *fh, const uint8_t *b);
int handle_subscribe(fe_conn_t *c, const mqtt_fixed_t *fh,
                     const uint8_t *b);
int handle_auth(fe_conn_t *c, const mqtt_fixed_t *fh, const uint8_t *b);
int handle_disconnect(fe_conn_t *c, const mqtt_fixed_t *fh,
                      const uint8_t *b);
/* handle_auth.c: CONNECT k (fh, b) names an Authentication Method.
 * Returns 0 when the connect goes on (authenticated: the CONNACK carries
 * the method), 1 when an exchange started (c is in C_AUTH, the CONNECT
 * saved), -1 when c was closed (unknown method: CONNACK 0x8C; refused:
 * 0x87). */
int fe_auth_connect(fe_conn_t *c, const mqtt_fixed_t *fh, const uint8_t *b,
                    const mqtt_connect_t *k);
/* Ends c's exchange, if any, and frees what it holds (fe_close()). */
void fe_auth_free(fe_conn_t *c);
/* Reply from a worker about a CONNECT. */
void fe_on_reply(uint32_t fo, const rep_rec_t *r);

/* fe_recover.c: what a new incarnation of this frontend does before it
 * accepts connections (docs/architecture.md, "Crash story"). */
/* Rebuilds the arena partition, releases the references the previous
 * incarnation held in its output queues and posts SYNC to every worker. */
void fe_recover_start(void);
/* A worker answered SYNC; after the last one, the sessions the previous
 * incarnation hosted are detached (wills published) and the listeners
 * start. */
void fe_recover_synced(uint32_t w);

/* fe_deliver.c */
/* Moves records from c's output ring into its queue.  Returns 0, or -1
 * when c was closed (takeover). */
int fe_drain_slot(fe_conn_t *c);
/* The same for at most the first n records of the data ring, a count
 * loaded before the broadcast groups that precede them were taken. */
int fe_drain_slot_n(fe_conn_t *c, uint32_t n);
/* Queues a QoS 0 delivery of message h (opened as v) to c, with
 * Subscription Identifier sub_id (0: none), as a drained record would be
 * (a full queue is written out first); its reference is taken from the
 * broadcast group's count (proc_t.bc_n of h).  Returns 1 when queued, 0
 * when it is not for this client (expired, too large: counted), -1 when
 * c's queue and socket are full (left to the caller), -2 when writing
 * the queue out closed c. */
int fe_deliver_held(fe_conn_t *c, const msg_view_t *v, arena_h h,
                    uint32_t sub_id, bool retain);

/* fe_bcast.c */
/* Takes every broadcast group in this frontend's rings
 * (docs/architecture.md, "QoS 0 to many"), then drains the connections
 * that waited for them (fe_bcast_first()). */
void fe_bcast_drain(void);
/* Called by fe_drain_slot() after it loaded the head of c's data ring:
 * true when groups of c's worker wait in its broadcast ring.  They go
 * first, and a drain cannot take them itself (a group may close a
 * connection, c too): c is drained after them, in this turn of the event
 * loop (fe_bcast_drain()). */
bool fe_bcast_first(fe_conn_t *c);
/* After attach: re-sends inflight entries, then drains. */
int fe_resume_session(fe_conn_t *c);
/* Releases c's inflight entry for pid after PUBACK/PUBCOMP etc. */

#endif
