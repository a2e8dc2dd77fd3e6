/*
 * fe_hold.c -- write coalescing (`write_coalesce_ms`, docs/configuration.md).
 *
 * On this machine one write to a socket costs the frontend a few
 * microseconds of kernel time (TCP send and loopback delivery), whatever
 * it carries; the message itself is a hundred bytes.  When a message fans
 * out to many subscribers that each get a steady stream, two deliveries
 * in one write halve that cost.  So a lone delivery to a subscriber we
 * wrote to less than W ms ago waits, at most until W ms after that write,
 * for the next one; the two then go out together.  Only when every one of
 * these holds:
 *   - the flush round writes to at least FE_HOLD_MIN_ROUND connections (a
 *     message fanning out: one-to-one streams and request/response keep
 *     their latency);
 *   - the connection's queue is exactly one delivery: no acknowledgement,
 *     SUBACK, PINGRESP or DISCONNECT waits with it (those go at once), and
 *     a second delivery ends the wait;
 *   - the client sent nothing since our last write to it, and bytes
 *     from it end the wait (on_read()): a client that talks to us, as
 *     QoS 1/2 subscribers do with their acknowledgements and
 *     request/response clients with their requests, is not kept waiting;
 *   - plain TCP (TLS and WebSocket frame their output at flush time).
 * A held connection leaves the dirty list; a timer (or any flush round
 * after its time) puts it back.  libevent's timers run on the coarse
 * monotonic clock, so the timer may fire a few ms (one clock tick) late or
 * early; early, it finds nothing due and is armed again.  What waits is
 * only the queue in process memory: a crash loses nothing more than it
 * did (QoS 0 output of a dead frontend is lost, QoS 1/2 are in the
 * session's inflight table).
 */
#include <time.h>

#include <event2/event.h>

#include "clock.h"
#include "fe.h"
#include "log.h"
#include "mem.h"

typedef struct held {
    uint64_t until; /* fe_hold_clock() at which it is written at the latest */
    uint32_t cookie;
} held_t;

static held_t *held;
static uint32_t n_held, cap_held;
static uint64_t armed; /* the timer's deadline, 0: not armed */
static struct event *ev_hold;
static bool stopped;

uint64_t fe_hold_clock(void)
{
    return clock_ms();
}

static void arm(uint64_t until, uint64_t now)
{
    if (armed && armed <= until)
        return;
    uint64_t ms = until > now ? until - now : 0;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    event_add(ev_hold, &tv);
    armed = until;
}

/* Puts back on the dirty list every held connection whose time has come
 * (all of them with now == UINT64_MAX) and re-arms the timer for the
 * rest.  Each entry is looked at once per millisecond at most: the timer
 * fires at the earliest deadline, which is then past. */
static void release_due(uint64_t now)
{
    uint32_t k = 0;
    uint64_t next = 0;
    for (uint32_t i = 0; i < n_held; i++) {
        held_t h = held[i];
        fe_conn_t *c = fe_conn_by_cookie(h.cookie);
        if (c == NULL || c->hold_until != h.until)
            continue; /* closed, or written meanwhile */
        if (h.until > now) {
            held[k++] = h;
            if (next == 0 || h.until < next)
                next = h.until;
            continue;
        }
        c->hold_until = 0;
        fe_mark_dirty(c);
    }
    n_held = k;
    if (next)
        arm(next, now);
}

static void on_hold(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    armed = 0;
    release_due(fe_hold_clock());
    fe_flush_dirty();
}

void fe_hold_init(void)
{
    ev_hold = evtimer_new(fe->base, on_hold, NULL);
}

void fe_hold_stop(void)
{
    stopped = true;
    release_due(UINT64_MAX);
    if (ev_hold) {
        event_free(ev_hold);
        ev_hold = NULL;
    }
    armed = 0;
    mem_free(held);
    held = NULL;
    n_held = cap_held = 0;
}

bool fe_hold_wanted(const fe_conn_t *c, uint64_t now, uint32_t window)
{
    return c->x == NULL && c->state == C_ACTIVE && !c->write_on &&
           c->out_pubs == 1 && !c->out_urgent && !c->rx_since_tx &&
           now < c->last_tx_ms + window;
}

void fe_hold_round(void)
{
    uint32_t window = fe->cfg->write_coalesce_ms;
    if (window == 0 || stopped)
        return;
    uint64_t now = fe_hold_clock();
    fe->round_ms = now;
    if (n_held && (armed == 0 || armed <= now))
        release_due(now); /* the timer may be behind a busy loop */
    if (fe->n_dirty < FE_HOLD_MIN_ROUND)
        return;
    for (fe_conn_t **pp = &fe->dirty; *pp;) {
        fe_conn_t *c = *pp;
        if (!fe_hold_wanted(c, now, window)) {
            pp = &c->dirty_next;
            continue;
        }
        *pp = c->dirty_next;
        c->dirty = false;
        fe->n_dirty--;
        if (c->hold_until)
            continue; /* already waiting */
        c->hold_until = c->last_tx_ms + window;
        if (n_held == cap_held) {
            cap_held = cap_held ? cap_held * 2 : 1024;
            held = mem_realloc(held, cap_held * sizeof(*held));
        }
        held[n_held++] = (held_t){c->hold_until, fe_cookie(c)};
        fe->proc->writes_held++;
        arm(c->hold_until, now);
    }
}
