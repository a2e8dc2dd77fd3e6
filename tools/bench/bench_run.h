/*
 * bench_run.h -- the run state shared by the event loop (bench_run.c),
 * the publishing side (bench_pub.c) and the connection I/O (bench_conn.c)
 * of ringmq-bench.  Private to those files.
 */
#ifndef RINGMQ_BENCH_RUN_H
#define RINGMQ_BENCH_RUN_H

#include <sys/socket.h>

#include "bench.h"
#include "bench_wire.h"

/* Connection states. */
enum bench_conn_state {
    BC_IDLE,       /* not started (or closed and reusable: storm) */
    BC_CONNECTING, /* connect() in progress */
    BC_CONNACK,    /* CONNECT sent */
    BC_SUBACK,     /* SUBSCRIBE sent */
    BC_READY,      /* publishing or subscribed */
    BC_CLOSING,    /* DISCONNECT sent, waiting for the broker to close */
    BC_DONE,       /* closed normally */
    BC_FAILED      /* closed on an error */
};

enum bench_role { BR_SUB, BR_PUB, BR_STORM };

typedef struct bench_conn {
    int fd;
    int state;
    int role;
    int idx;                /* index among subscribers / publishers */
    bool out_armed;         /* EPOLLOUT registered */
    bool dirty;             /* on the flush list */
    bool counted;           /* storm: this round's figures count */
    bool pending;           /* counted in the set-up group's pending */
    uint16_t recv_max;      /* v5: broker's Receive Maximum */
    uint64_t t_start;       /* connect() called, ns */
    uint64_t t_state;       /* entered the current state, ns */
    uint64_t t_last_send;   /* last packet queued, for keep alive */
    uint8_t *rbuf;          /* partial packet kept between reads */
    size_t rlen, rcap;
    uint8_t *wbuf;          /* output not yet written */
    size_t woff, wlen, wcap;
    struct bench_conn *next_dirty;
} bench_conn_t;

typedef struct bench_pub {
    bench_conn_t *c;
    char *topic;
    size_t topic_len;
    uint32_t receivers;     /* deliveries one message should make */
    uint32_t seq;           /* next sequence number */
    uint64_t measured_sent;
    bool kicked;            /* on the kick list */
    /* QoS 1 and 2: packet ids in use */
    uint64_t *pid_used;     /* 65536 bits */
    uint16_t next_pid;
    uint32_t inflight;
    /* closed loop: deliveries still missing per sequence in the window */
    uint32_t win_base;      /* oldest sequence not fully delivered */
    uint32_t *win_left;
    uint64_t *win_ts;
} bench_pub_t;

typedef struct bench_sub {
    bench_conn_t *c;
    bench_track_t *tracks;  /* by publisher (pairs: 1; shared: NULL) */
} bench_sub_t;

typedef struct bench_ctx {
    const bench_cfg_t *cfg;
    bench_result_t *res;
    int ep;
    char filter[256];       /* what subscribers subscribe to (not pairs) */

    bench_conn_t *conns;    /* subscribers, then publishers; storm: all */
    size_t nconns;
    bench_pub_t *pubs;
    bench_sub_t *subs;
    bench_track_t *group;   /* shared: one stream per publisher */
    bench_conn_t *dirty;    /* flush list */
    bench_pub_t **kicked;   /* publishers that may send again */
    size_t nkicked;
    uint8_t *scratch;       /* read buffer */
    size_t scratch_cap;
    uint8_t *payload;       /* payload template */
    size_t nopen;           /* sockets open */

    int phase;
    uint64_t t0;            /* end of set-up: warm-up starts */
    uint64_t t_measure;     /* measured interval starts */
    uint64_t t_end;         /* ... and ends */
    uint64_t t_drain_end;
    uint64_t t_done;
    uint64_t g;             /* open loop: sends scheduled so far */
    double interval_ns;     /* open loop: between two sends, all pubs */

    /* connection set-up of the group [grp_first, grp_end) */
    size_t grp_first, grp_end, grp_next, grp_pending;
    size_t grp_ok, grp_failed;
    int grp_role;
    bool storm_counted;     /* the current storm round is measured */

    /* current second */
    bench_hist_t sec_hist;
    uint64_t sec_sent, sec_delivered;
    int sec_phase;          /* phase when the second began */
    uint64_t next_tick;
    size_t ticks_cap;
    uint64_t next_house;
    uint64_t next_ping_check;
    uint64_t client_cpu_before;
} bench_ctx_t;

/* ---- bench_conn.c: socket I/O of one connection ---- */

/* Starts a non-blocking connect() for c.  Returns BENCH_OK, or BENCH_ERR
 * with c closed as failed (bench_run_on_close was called). */
int bench_conn_start(bench_ctx_t *x, bench_conn_t *c, uint64_t now);

/* Handles epoll events for c. */
void bench_conn_event(bench_ctx_t *x, bench_conn_t *c, uint32_t ev,
                      uint64_t now);

/* Room for n more output bytes; returns where to write them.  Commit them
 * with bench_conn_commit(). */
uint8_t *bench_conn_reserve(bench_conn_t *c, size_t n);
void bench_conn_commit(bench_ctx_t *x, bench_conn_t *c, size_t n,
                       uint64_t now);

/* Queues n bytes of output (copied). */
void bench_conn_send(bench_ctx_t *x, bench_conn_t *c, const void *p,
                     size_t n, uint64_t now);

/* Writes what is queued for every connection on the flush list. */
void bench_conn_flush_all(bench_ctx_t *x);

/* Closes c's socket and sets state (BC_DONE, BC_FAILED or BC_IDLE);
 * buffers are kept for reuse.  Does not call back. */
void bench_conn_close(bench_ctx_t *x, bench_conn_t *c, int state);

/* Output bytes queued and not yet written. */
size_t bench_conn_backlog(const bench_conn_t *c);

/* ---- bench_pub.c: publishing ---- */

/* True during warm-up and the measured interval, when publishers send. */
bool bench_pub_active(const bench_ctx_t *x);

/* Open loop: sends every message whose time has come by now; one that
 * cannot go out (back-pressure, no packet id) is skipped and counted. */
void bench_pub_rate(bench_ctx_t *x, uint64_t now);

/* Closed loop: kicked publishers send while their window has room. */
void bench_pub_window(bench_ctx_t *x);

/* Closed loop: p may be able to send again; a no-op in open loop. */
void bench_pub_kick(bench_ctx_t *x, bench_pub_t *p);

/* A distinct delivery of seq from p arrived: frees its window slot once
 * every receiver has it. */
void bench_pub_release(bench_ctx_t *x, bench_pub_t *p, uint32_t seq);

/* Releases window slots older than a second (counted as timeouts). */
void bench_pub_expire(bench_ctx_t *x, uint64_t now);

/* PUBACK, PUBREC or PUBCOMP for one of p's publications. */
void bench_pub_ack(bench_ctx_t *x, bench_pub_t *p, const bench_pkt_t *pk,
                   uint64_t now);

/* The first 16 payload bytes: publisher id, measured flag, sequence
 * number, send time (ns). */
void bench_payload_write(uint8_t *pl, uint32_t pubid, bool measured,
                         uint32_t seq, uint64_t ts);
void bench_payload_read(const uint8_t *pl, uint32_t *pubid, bool *measured,
                        uint32_t *seq, uint64_t *ts);

/* ---- bench_run.c: what the connection layer reports ---- */

/* A whole packet arrived on c.  Returns BENCH_OK, or BENCH_ERR when c was
 * closed while handling it. */
int bench_run_on_packet(bench_ctx_t *x, bench_conn_t *c,
                        const bench_pkt_t *p, uint64_t now);

/* The TCP connection of c is up: send CONNECT. */
void bench_run_on_connected(bench_ctx_t *x, bench_conn_t *c, uint64_t now);

/* c failed or was closed by the broker (why: a message); c is already
 * closed.  clean: the close was expected (after DISCONNECT). */
void bench_run_on_close(bench_ctx_t *x, bench_conn_t *c, bool clean,
                        const char *why, uint64_t now);

/* c's output was fully written after back-pressure. */
void bench_run_on_drained(bench_ctx_t *x, bench_conn_t *c);

#endif
