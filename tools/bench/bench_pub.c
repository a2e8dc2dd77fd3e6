/*
 * bench_pub.c -- the publishing side of a ringmq-bench run: the open-loop
 * schedule (rate per publisher, spread evenly over all publishers), the
 * closed-loop window (messages sent but not yet received by all their
 * receivers), packet ids of QoS 1 and 2 publications and their
 * acknowledgements, and the payload every message carries.
 *
 * NOTES: called from the event loop in bench_run.c only; owns nothing but
 * the state of each bench_pub_t.  Payload: publisher id (bit 31: sent
 * during the measured interval), sequence number, CLOCK_MONOTONIC send
 * time in ns, little-endian, then filler up to the payload size.
 */
#include <string.h>

#include "bench_run.h"
#include "mqtt.h"

#define NS 1000000000ull
/* A publisher with this much unwritten output sends no more for now. */
#define BENCH_BACKLOG_MAX (4u << 20)
/* Closed loop: a message not received by all after this leaves the window. */
#define BENCH_WINDOW_TIMEOUT NS

#define BENCH_MEASURED_BIT 0x80000000u

static void
bench_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) v;
    p[1] = (uint8_t) (v >> 8);
    p[2] = (uint8_t) (v >> 16);
    p[3] = (uint8_t) (v >> 24);
}

static uint32_t
bench_get32(const uint8_t *p)
{
    return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16
           | (uint32_t) p[3] << 24;
}

static void
bench_put64(uint8_t *p, uint64_t v)
{
    bench_put32(p, (uint32_t) v);
    bench_put32(p + 4, (uint32_t) (v >> 32));
}

static uint64_t
bench_get64(const uint8_t *p)
{
    return bench_get32(p) | (uint64_t) bench_get32(p + 4) << 32;
}

void
bench_payload_write(uint8_t *pl, uint32_t pubid, bool measured,
                    uint32_t seq, uint64_t ts)
{
    bench_put32(pl, pubid | (measured ? BENCH_MEASURED_BIT : 0));
    bench_put32(pl + 4, seq);
    bench_put64(pl + 8, ts);
}

void
bench_payload_read(const uint8_t *pl, uint32_t *pubid, bool *measured,
                   uint32_t *seq, uint64_t *ts)
{
    uint32_t w0 = bench_get32(pl);

    *pubid = w0 & ~BENCH_MEASURED_BIT;
    *measured = (w0 & BENCH_MEASURED_BIT) != 0;
    *seq = bench_get32(pl + 4);
    *ts = bench_get64(pl + 8);
}

/* Closed loop: p may be able to send again (window, packet ids or
 * back-pressure freed).  Open loop sends only on its schedule. */
void
bench_pub_kick(bench_ctx_t *x, bench_pub_t *p)
{
    if (x->cfg->window > 0 && !p->kicked) {
        p->kicked = true;
        x->kicked[x->nkicked++] = p;
    }
}

static bool
bench_can_send(const bench_ctx_t *x, const bench_pub_t *p)
{
    const bench_cfg_t *cfg = x->cfg;

    if (p->c->state != BC_READY
        || bench_conn_backlog(p->c) >= BENCH_BACKLOG_MAX) {
        return false;
    }
    if (cfg->qos > 0 && p->inflight >= p->c->recv_max) {
        return false;
    }
    if (cfg->window > 0 && p->seq - p->win_base >= (uint32_t) cfg->window) {
        return false;
    }
    return true;
}

/* A packet id not in use (p->inflight < 65535). */
static uint16_t
bench_take_pid(bench_pub_t *p)
{
    for (;;) {
        uint16_t id = p->next_pid;

        p->next_pid = (uint16_t) (id == 65535 ? 1 : id + 1);
        if ((p->pid_used[id / 64] & ((uint64_t) 1 << (id % 64))) == 0) {
            p->pid_used[id / 64] |= (uint64_t) 1 << (id % 64);
            p->inflight++;
            return id;
        }
    }
}

/* Releases a packet id; false when it was not in use. */
static bool
bench_release_pid(bench_pub_t *p, uint16_t id)
{
    uint64_t bit = (uint64_t) 1 << (id % 64);

    if ((p->pid_used[id / 64] & bit) == 0) {
        return false;
    }
    p->pid_used[id / 64] &= ~bit;
    p->inflight--;
    return true;
}

/* Publishes the next message of p (bench_can_send() was true). */
static void
bench_send_one(bench_ctx_t *x, bench_pub_t *p)
{
    const bench_cfg_t *cfg = x->cfg;
    bool measured = x->phase == BENCH_PH_MEASURE;
    size_t head_max = BENCH_WIRE_PUB_HEAD_MAX(p->topic_len);
    uint16_t pid = cfg->qos > 0 ? bench_take_pid(p) : 0;
    uint8_t *w, *pl;
    size_t h;
    uint64_t now;

    w = bench_conn_reserve(p->c, head_max + cfg->payload);
    h = bench_wire_publish_head(w, cfg->version, cfg->qos, p->topic,
                                p->topic_len, pid, cfg->payload);
    pl = w + h;
    memcpy(pl + 16, x->payload + 16, cfg->payload - 16);
    now = bench_now_ns();
    bench_payload_write(pl, (uint32_t) (p - x->pubs), measured, p->seq, now);
    bench_conn_commit(x, p->c, h + cfg->payload, now);

    if (cfg->window > 0) {
        uint32_t slot = p->seq % (uint32_t) cfg->window;

        p->win_left[slot] = p->receivers;
        p->win_ts[slot] = now;
    }
    p->seq++;
    x->res->sent_total++;
    x->sec_sent++;
    if (measured) {
        p->measured_sent++;
        x->res->sent++;
        x->res->expected += p->receivers;
    }
}

bool
bench_pub_active(const bench_ctx_t *x)
{
    return x->phase == BENCH_PH_WARMUP || x->phase == BENCH_PH_MEASURE;
}

/* Open loop: every send whose time has come; one that cannot go out is
 * skipped (and counted), the schedule does not slip. */
void
bench_pub_rate(bench_ctx_t *x, uint64_t now)
{
    size_t np = (size_t) x->cfg->publishers;
    int budget = 100000;

    while (bench_pub_active(x) && budget-- > 0) {
        uint64_t due = x->t0 + (uint64_t) ((double) x->g * x->interval_ns);
        bench_pub_t *p;

        if (due > now) {
            break;
        }
        p = &x->pubs[x->g % np];
        if (bench_can_send(x, p)) {
            bench_send_one(x, p);
        } else if (x->phase == BENCH_PH_MEASURE) {
            x->res->send_skipped++;
        }
        x->g++;
    }
}

/* Closed loop: kicked publishers send while their window has room.  One
 * that still has room after its budget is kicked again for the next turn;
 * it lands at an index already read, so the walk over the list is safe. */
void
bench_pub_window(bench_ctx_t *x)
{
    size_t n = x->nkicked, i;

    x->nkicked = 0;
    for (i = 0; i < n; i++) {
        bench_pub_t *p = x->kicked[i];
        int budget = 4096;

        p->kicked = false;
        while (bench_pub_active(x) && budget > 0 && bench_can_send(x, p)) {
            bench_send_one(x, p);
            budget--;
        }
        if (budget == 0 && bench_can_send(x, p)) {
            bench_pub_kick(x, p);
        }
    }
}

/* A distinct delivery of seq from p: frees its window slot when all its
 * receivers have it. */
void
bench_pub_release(bench_ctx_t *x, bench_pub_t *p, uint32_t seq)
{
    uint32_t w = (uint32_t) x->cfg->window;

    if (w == 0 || seq < p->win_base || seq >= p->seq) {
        return;
    }
    if (p->win_left[seq % w] > 0 && --p->win_left[seq % w] == 0) {
        while (p->win_base < p->seq && p->win_left[p->win_base % w] == 0) {
            p->win_base++;
        }
        bench_pub_kick(x, p);
    }
}

/* Closed loop: messages that did not reach every receiver within a second
 * leave the window (they count as lost if they never arrive). */
void
bench_pub_expire(bench_ctx_t *x, uint64_t now)
{
    uint32_t w = (uint32_t) x->cfg->window;
    size_t i;

    if (w == 0) {
        return;
    }
    for (i = 0; i < (size_t) x->cfg->publishers; i++) {
        bench_pub_t *p = &x->pubs[i];
        bool moved = false;

        while (p->win_base < p->seq
               && now - p->win_ts[p->win_base % w] > BENCH_WINDOW_TIMEOUT) {
            if (p->win_left[p->win_base % w] > 0) {
                x->res->window_timeouts++;
                p->win_left[p->win_base % w] = 0;
            }
            p->win_base++;
            moved = true;
        }
        if (moved) {
            bench_pub_kick(x, p);
        }
    }
}

/* An acknowledgement for one of p's publications. */
void
bench_pub_ack(bench_ctx_t *x, bench_pub_t *p, const bench_pkt_t *pk,
                 uint64_t now)
{
    uint8_t rel[4];

    if (x->cfg->qos == 0) {
        x->res->protocol_errors++;
        return;
    }
    if (pk->type == MQTT_PUBREC && pk->reason < 0x80) {
        if ((p->pid_used[pk->pid / 64] & ((uint64_t) 1 << (pk->pid % 64)))
            == 0) {
            x->res->protocol_errors++;
            return;
        }
        bench_conn_send(x, p->c, rel,
                        bench_wire_ack(rel, MQTT_PUBREL, pk->pid), now);
        return;
    }
    if (pk->reason >= 0x80) {
        x->res->pub_refused++;
    }
    if (!bench_release_pid(p, pk->pid)) {
        x->res->protocol_errors++;
        return;
    }
    bench_pub_kick(x, p);
}

