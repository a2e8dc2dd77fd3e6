/*
 * bench_run.c -- one ringmq-bench run: connection set-up in batches, the
 * warm-up / measure / drain phases of the epoll loop, what each received
 * PUBLISH means for loss, duplicates, order and latency, the storm rounds,
 * and the per-second timeline.  Publishing is in bench_pub.c.
 *
 * NOTES: single-threaded.  Owns every connection and counter of the run;
 * the result is only read by the report after bench_run() returns.  Reads
 * the broker's /proc entries, never anything else of it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench_run.h"
#include "mem.h"
#include "mqtt.h"

#define NS 1000000000ull
/* Storm: how long to wait for the broker to close after DISCONNECT. */
#define BENCH_CLOSE_WAIT (2 * NS)
#define BENCH_HOUSE_NS (100u * 1000000u)
#define BENCH_EVENTS 1024

static volatile sig_atomic_t bench_interrupted;

static void
bench_on_sigint(int sig)
{
    (void) sig;
    bench_interrupted = 1;
    signal(SIGINT, SIG_DFL); /* a second ^C ends the process */
}

/* Records the first connection error for the report. */
static void
bench_note_error(bench_ctx_t *x, const bench_conn_t *c, const char *why)
{
    static const char *const roles[] = {"subscriber", "publisher", "client"};

    if (x->res->first_error[0] == '\0') {
        snprintf(x->res->first_error, sizeof(x->res->first_error),
                 "%s %d: %s", roles[c->role], c->idx, why);
    }
}

/* ------------------------------------------------------------ set-up */

/* Raises RLIMIT_NOFILE to what nconns sockets need, when the hard limit
 * allows.  Returns BENCH_OK or BENCH_ERR. */
static int
bench_fd_limit(bench_ctx_t *x, size_t nconns)
{
    struct rlimit rl;
    rlim_t want = (rlim_t) nconns + 64;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
        return BENCH_OK;
    }
    if (rl.rlim_cur >= want) {
        return BENCH_OK;
    }
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) {
        snprintf(x->res->setup_error, sizeof(x->res->setup_error),
                 "%zu connections need %lu file descriptors; the hard limit "
                 "is %lu (raise it: ulimit -Hn)", nconns,
                 (unsigned long) want, (unsigned long) rl.rlim_max);
        return BENCH_ERR;
    }
    rl.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
        snprintf(x->res->setup_error, sizeof(x->res->setup_error),
                 "setrlimit(RLIMIT_NOFILE, %lu) failed: %s",
                 (unsigned long) want, strerror(errno));
        return BENCH_ERR;
    }
    return BENCH_OK;
}

/* Number of deliveries one message of a publisher should make. */
static uint32_t
bench_receivers(const bench_cfg_t *cfg)
{
    return cfg->scenario == BENCH_FANOUT ? (uint32_t) cfg->subscribers : 1;
}

/* Allocates connections, publishers, subscribers and trackers. */
static void
bench_build(bench_ctx_t *x)
{
    const bench_cfg_t *cfg = x->cfg;
    size_t np = (size_t) cfg->publishers, ns = (size_t) cfg->subscribers;
    size_t i;

    x->nconns = ns + np;
    x->conns = mem_calloc(x->nconns, sizeof(*x->conns));
    for (i = 0; i < x->nconns; i++) {
        bench_conn_t *c = &x->conns[i];

        c->fd = -1;
        c->role = cfg->scenario == BENCH_STORM ? BR_STORM
                  : i < ns                     ? BR_SUB
                                               : BR_PUB;
        c->idx = (int) (i < ns ? i : i - ns);
    }
    if (cfg->scenario == BENCH_STORM) {
        return;
    }
    x->subs = mem_calloc(ns, sizeof(*x->subs));
    for (i = 0; i < ns; i++) {
        x->subs[i].c = &x->conns[i];
        if (cfg->scenario == BENCH_PAIRS) {
            x->subs[i].tracks = mem_calloc(1, sizeof(bench_track_t));
        } else if (cfg->scenario != BENCH_SHARED) {
            x->subs[i].tracks = mem_calloc(np, sizeof(bench_track_t));
        }
    }
    if (cfg->scenario == BENCH_SHARED) {
        x->group = mem_calloc(np, sizeof(bench_track_t));
    }
    x->pubs = mem_calloc(np, sizeof(*x->pubs));
    x->kicked = mem_calloc(np, sizeof(*x->kicked));
    for (i = 0; i < np; i++) {
        bench_pub_t *p = &x->pubs[i];
        char topic[256];

        p->c = &x->conns[ns + i];
        if (cfg->scenario == BENCH_PAIRS) {
            snprintf(topic, sizeof(topic), "%s/pair/%zu", cfg->topic, i);
        } else {
            snprintf(topic, sizeof(topic), "%s/%s", cfg->topic,
                     bench_scenario_name(cfg->scenario));
        }
        p->topic = mem_strdup(topic);
        p->topic_len = strlen(topic);
        p->receivers = bench_receivers(cfg);
        p->next_pid = 1;
        if (cfg->qos > 0) {
            p->pid_used = mem_calloc(65536 / 64, sizeof(uint64_t));
        }
        if (cfg->window > 0) {
            p->win_left = mem_calloc((size_t) cfg->window, sizeof(uint32_t));
            p->win_ts = mem_calloc((size_t) cfg->window, sizeof(uint64_t));
        }
    }
    if (cfg->scenario == BENCH_SHARED) {
        snprintf(x->filter, sizeof(x->filter), "$share/g/%s/shared",
                 cfg->topic);
    } else {
        snprintf(x->filter, sizeof(x->filter), "%s/%s", cfg->topic,
                 bench_scenario_name(cfg->scenario));
    }
    x->payload = mem_calloc(1, cfg->payload);
    for (i = 16; i < cfg->payload; i++) {
        x->payload[i] = (uint8_t) ('a' + i % 26);
    }
}

static void
bench_free(bench_ctx_t *x)
{
    size_t i;

    for (i = 0; i < x->nconns; i++) {
        if (x->conns[i].fd >= 0) {
            bench_conn_close(x, &x->conns[i], BC_DONE);
        }
        mem_free(x->conns[i].rbuf);
        mem_free(x->conns[i].wbuf);
    }
    for (i = 0; x->subs != NULL && i < (size_t) x->cfg->subscribers; i++) {
        mem_free(x->subs[i].tracks);
    }
    for (i = 0; x->pubs != NULL && i < (size_t) x->cfg->publishers; i++) {
        mem_free(x->pubs[i].topic);
        mem_free(x->pubs[i].pid_used);
        mem_free(x->pubs[i].win_left);
        mem_free(x->pubs[i].win_ts);
    }
    mem_free(x->conns);
    mem_free(x->subs);
    mem_free(x->pubs);
    mem_free(x->group);
    mem_free(x->kicked);
    mem_free(x->scratch);
    mem_free(x->payload);
    if (x->ep >= 0) {
        close(x->ep);
    }
}

/* Starts setting up the connections [first, end). */
static void
bench_group_begin(bench_ctx_t *x, size_t first, size_t end, int role)
{
    x->grp_first = first;
    x->grp_end = end;
    x->grp_next = first;
    x->grp_pending = 0;
    x->grp_ok = 0;
    x->grp_failed = 0;
    x->grp_role = role;
}

/* Launches connection attempts up to the batch size. */
static void
bench_group_launch(bench_ctx_t *x, uint64_t now)
{
    while (x->grp_next < x->grp_end
           && x->grp_pending < (size_t) x->cfg->connect_batch) {
        bench_conn_t *c = &x->conns[x->grp_next++];

        c->counted = x->storm_counted;
        c->pending = true;
        x->grp_pending++;
        (void) bench_conn_start(x, c, now);
    }
}

static bool
bench_group_done(const bench_ctx_t *x)
{
    return x->grp_next == x->grp_end && x->grp_pending == 0;
}

/* A connection of the current group finished its set-up (ok), or failed
 * before finishing it. */
static void
bench_group_finished(bench_ctx_t *x, bench_conn_t *c, bool ok)
{
    if (!c->pending) {
        return;
    }
    c->pending = false;
    x->grp_pending--;
    if (ok) {
        x->grp_ok++;
    } else {
        x->grp_failed++;
    }
}

/* ------------------------------------------------------------ receiving */

static void
bench_on_publish(bench_ctx_t *x, bench_conn_t *c, const bench_pkt_t *pk,
                 uint64_t now)
{
    const bench_cfg_t *cfg = x->cfg;
    bench_track_t *t;
    uint32_t pubid, seq;
    uint64_t ts, lat;
    bool measured;
    uint8_t ack[4];
    int seen;

    if (pk->qos == 1) {
        bench_conn_send(x, c, ack, bench_wire_ack(ack, MQTT_PUBACK, pk->pid),
                        now);
    } else if (pk->qos == 2) {
        bench_conn_send(x, c, ack, bench_wire_ack(ack, MQTT_PUBREC, pk->pid),
                        now);
    }
    if (pk->payload_len != cfg->payload) {
        x->res->unexpected++;
        return;
    }
    bench_payload_read(pk->payload, &pubid, &measured, &seq, &ts);
    if (pubid >= (uint32_t) cfg->publishers) {
        x->res->unexpected++;
        return;
    }
    switch (cfg->scenario) {
    case BENCH_PAIRS:
        if (pubid != (uint32_t) c->idx) {
            x->res->unexpected++;
            return;
        }
        t = &x->subs[c->idx].tracks[0];
        break;
    case BENCH_SHARED:
        t = &x->group[pubid];
        break;
    default:
        t = &x->subs[c->idx].tracks[pubid];
        break;
    }
    seen = bench_track_seen(t, seq);
    if (seen == BENCH_SEEN_DUP) {
        if (measured) {
            x->res->duplicates++;
        }
        return;
    }
    if (seen == BENCH_SEEN_REORDERED && measured) {
        x->res->reordered++;
    }
    lat = now > ts ? now - ts : 0;
    bench_hist_add(&x->sec_hist, lat);
    if (measured) {
        bench_hist_add(&x->res->latency, lat);
    }
    x->sec_delivered++;
    if (measured) {
        t->measured++;
        x->res->delivered++;
    }
    bench_pub_release(x, &x->pubs[pubid], seq);
}

/* What subscriber c subscribes to. */
static const char *
bench_sub_filter(const bench_ctx_t *x, const bench_conn_t *c)
{
    return x->cfg->scenario == BENCH_PAIRS ? x->pubs[c->idx].topic
                                           : x->filter;
}

int
bench_run_on_packet(bench_ctx_t *x, bench_conn_t *c, const bench_pkt_t *p,
                    uint64_t now)
{
    const bench_cfg_t *cfg = x->cfg;
    uint8_t buf[BENCH_WIRE_CTRL_MAX];
    char why[160];

    switch (p->type) {
    case MQTT_CONNACK:
        if (c->state != BC_CONNACK) {
            break;
        }
        if (p->reason != 0) {
            snprintf(why, sizeof(why), "CONNACK 0x%02x (%s)", p->reason,
                     bench_wire_connack_text(cfg->version, p->reason));
            bench_conn_close(x, c, BC_FAILED);
            bench_run_on_close(x, c, false, why, now);
            return BENCH_ERR;
        }
        if (c->role != BR_STORM || c->counted) {
            bench_hist_add(&x->res->connect, now - c->t_start);
        }
        if (c->role == BR_STORM) {
            bench_hist_add(&x->sec_hist, now - c->t_start);
            x->sec_delivered++;
        }
        if (p->recv_max > 0) {
            c->recv_max = p->recv_max;
        }
        if (c->role == BR_PUB && cfg->qos > p->max_qos) {
            snprintf(why, sizeof(why), "the broker's Maximum QoS is %d",
                     p->max_qos);
            bench_conn_close(x, c, BC_FAILED);
            bench_run_on_close(x, c, false, why, now);
            return BENCH_ERR;
        }
        c->t_state = now;
        if (c->role == BR_SUB) {
            bench_conn_send(x, c, buf,
                            bench_wire_subscribe(buf, cfg->version, 1,
                                                 bench_sub_filter(x, c),
                                                 cfg->qos),
                            now);
            c->state = BC_SUBACK;
        } else if (c->role == BR_PUB) {
            c->state = BC_READY;
            x->res->connects_ok++;
            bench_group_finished(x, c, true);
        } else {
            bench_conn_send(x, c, buf, bench_wire_empty(buf, MQTT_DISCONNECT),
                            now);
            c->state = BC_CLOSING;
        }
        return BENCH_OK;
    case MQTT_SUBACK:
        if (c->state != BC_SUBACK) {
            break;
        }
        if (p->reason >= 0x80) {
            snprintf(why, sizeof(why), "SUBACK 0x%02x: subscription to %.100s "
                     "refused", p->reason, bench_sub_filter(x, c));
            bench_conn_close(x, c, BC_FAILED);
            bench_run_on_close(x, c, false, why, now);
            return BENCH_ERR;
        }
        c->state = BC_READY;
        c->t_state = now;
        x->res->connects_ok++;
        bench_group_finished(x, c, true);
        return BENCH_OK;
    case MQTT_PUBLISH:
        if (c->role != BR_SUB || c->state != BC_READY) {
            break;
        }
        bench_on_publish(x, c, p, now);
        return BENCH_OK;
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBCOMP:
        if (c->role != BR_PUB) {
            break;
        }
        bench_pub_ack(x, &x->pubs[c->idx], p, now);
        return BENCH_OK;
    case MQTT_PUBREL:
        if (c->role != BR_SUB) {
            break;
        }
        bench_conn_send(x, c, buf, bench_wire_ack(buf, MQTT_PUBCOMP, p->pid),
                        now);
        return BENCH_OK;
    case MQTT_PINGRESP:
    case MQTT_UNSUBACK:
        return BENCH_OK;
    case MQTT_DISCONNECT:
        snprintf(why, sizeof(why), "DISCONNECT 0x%02x from the broker",
                 p->reason);
        bench_conn_close(x, c, BC_FAILED);
        bench_run_on_close(x, c, false, why, now);
        return BENCH_ERR;
    default:
        break;
    }
    x->res->protocol_errors++;
    snprintf(why, sizeof(why), "unexpected %s from the broker",
             bench_wire_name(p->type));
    bench_conn_close(x, c, BC_FAILED);
    bench_run_on_close(x, c, false, why, now);
    return BENCH_ERR;
}

void
bench_run_on_connected(bench_ctx_t *x, bench_conn_t *c, uint64_t now)
{
    uint8_t buf[BENCH_WIRE_CTRL_MAX];
    static const char *const tag[] = {"s", "p", "c"};
    char id[64];

    snprintf(id, sizeof(id), "rb-%d-%s%d", (int) getpid(), tag[c->role],
             c->idx);
    bench_conn_send(x, c, buf,
                    bench_wire_connect(buf, x->cfg->version, id,
                                       (uint16_t) x->cfg->keepalive),
                    now);
}

void
bench_run_on_close(bench_ctx_t *x, bench_conn_t *c, bool clean,
                   const char *why, uint64_t now)
{
    (void) now;
    if (c->role == BR_STORM) {
        if (!clean && c->state == BC_FAILED) {
            if (c->counted) {
                x->res->connects_failed++;
                bench_note_error(x, c, why);
            }
        } else if (c->counted) {
            x->res->connects_ok++;
        }
        bench_group_finished(x, c, clean);
        return;
    }
    if (c->pending) {
        /* Failed during its set-up. */
        x->res->connects_failed++;
        bench_note_error(x, c, why);
        bench_group_finished(x, c, false);
        return;
    }
    if (x->phase != BENCH_PH_DONE) {
        x->res->conn_lost++;
        bench_note_error(x, c, why);
    }
}

void
bench_run_on_drained(bench_ctx_t *x, bench_conn_t *c)
{
    if (c->role == BR_PUB && x->pubs != NULL) {
        bench_pub_kick(x, &x->pubs[c->idx]);
    }
}

/* ------------------------------------------------------------ timeline */

static const char *
bench_phase_name(int phase)
{
    static const char *const names[] = {"setup", "warmup", "measure",
                                        "drain", "done"};

    return names[phase];
}

/* Closes the current second: one timeline entry and the progress line. */
static void
bench_tick(bench_ctx_t *x, uint64_t now)
{
    bench_result_t *res = x->res;
    bench_tick_t *t;

    if (res->nticks == x->ticks_cap) {
        x->ticks_cap = x->ticks_cap ? x->ticks_cap * 2 : 64;
        res->ticks = mem_realloc(res->ticks,
                                 x->ticks_cap * sizeof(*res->ticks));
    }
    t = &res->ticks[res->nticks++];
    t->t = (double) (now - x->t0) / NS;
    t->phase = x->sec_phase;
    t->sent = x->sec_sent;
    t->delivered = x->sec_delivered;
    t->p50 = bench_hist_pct(&x->sec_hist, 50);
    t->p90 = bench_hist_pct(&x->sec_hist, 90);
    t->p99 = bench_hist_pct(&x->sec_hist, 99);
    t->p999 = bench_hist_pct(&x->sec_hist, 99.9);
    t->max = x->sec_hist.max;
    if (!x->cfg->quiet) {
        if (x->cfg->scenario == BENCH_STORM) {
            fprintf(stderr,
                    "[%4.0f s %-7s] connects %6lu/s  round %lu  connect "
                    "p50 %.3f  p99 %.3f  max %.3f ms  failed %lu\n",
                    t->t, bench_phase_name(t->phase),
                    (unsigned long) t->delivered,
                    (unsigned long) res->storm_rounds, t->p50 / 1e6,
                    t->p99 / 1e6, t->max / 1e6,
                    (unsigned long) res->connects_failed);
        } else {
            fprintf(stderr,
                    "[%4.0f s %-7s] sent %6lu/s  delivered %8lu/s  latency "
                    "p50 %.3f  p99 %.3f  max %.3f ms  conns %zu\n",
                    t->t, bench_phase_name(t->phase),
                    (unsigned long) t->sent, (unsigned long) t->delivered,
                    t->p50 / 1e6, t->p99 / 1e6, t->max / 1e6, x->nopen);
        }
    }
    bench_hist_reset(&x->sec_hist);
    x->sec_sent = 0;
    x->sec_delivered = 0;
    x->sec_phase = x->phase;
}

/* ------------------------------------------------------------ phases */

static void
bench_sample_broker(bench_ctx_t *x, bench_proc_t *out)
{
    if (x->cfg->broker_pid > 0
        && bench_proc_sample(x->cfg->broker_pid, out) < 0) {
        x->res->have_broker = false;
    }
}

static void
bench_start_measure(bench_ctx_t *x, uint64_t now)
{
    x->phase = BENCH_PH_MEASURE;
    x->t_measure = now;
    x->client_cpu_before = bench_self_cpu_us();
    x->res->have_broker = x->cfg->broker_pid > 0;
    bench_sample_broker(x, &x->res->broker_before);
}

static void
bench_finish(bench_ctx_t *x, uint64_t now)
{
    bench_result_t *res = x->res;

    x->t_done = now;
    res->client_cpu_us = bench_self_cpu_us() - x->client_cpu_before;
    if (res->have_broker) {
        bench_sample_broker(x, &res->broker_after);
    }
    x->phase = BENCH_PH_DONE;
}

/* Starts the warm-up (or the measured interval) once set-up is over. */
static void
bench_start_publishing(bench_ctx_t *x, uint64_t now)
{
    const bench_cfg_t *cfg = x->cfg;
    size_t i;

    x->t0 = now;
    x->next_tick = now + NS;
    x->sec_phase = cfg->warmup > 0 ? BENCH_PH_WARMUP : BENCH_PH_MEASURE;
    x->t_end = now + (uint64_t) ((cfg->warmup + cfg->duration) * NS);
    if (cfg->warmup > 0) {
        x->phase = BENCH_PH_WARMUP;
        x->t_measure = now + (uint64_t) (cfg->warmup * NS);
    } else {
        bench_start_measure(x, now);
    }
    if (cfg->scenario == BENCH_STORM) {
        return;
    }
    if (cfg->rate > 0) {
        x->interval_ns = (double) NS / (cfg->rate * cfg->publishers);
    }
    for (i = 0; cfg->window > 0 && i < (size_t) cfg->publishers; i++) {
        bench_pub_kick(x, &x->pubs[i]);
    }
}

/* Storm: starts a round of connections. */
static void
bench_storm_round(bench_ctx_t *x, uint64_t now)
{
    size_t i;

    for (i = 0; i < x->nconns; i++) {
        x->conns[i].state = BC_IDLE;
    }
    x->storm_counted = x->phase == BENCH_PH_MEASURE;
    if (x->storm_counted) {
        x->res->storm_rounds++;
    }
    bench_group_begin(x, 0, x->nconns, BR_STORM);
    bench_group_launch(x, now);
}

/* Set-up: subscribers, then publishers.  Returns BENCH_ERR on failure. */
static int
bench_setup_step(bench_ctx_t *x, uint64_t now)
{
    const bench_cfg_t *cfg = x->cfg;
    size_t ns = (size_t) cfg->subscribers;

    bench_group_launch(x, now);
    if (!bench_group_done(x)) {
        return BENCH_OK;
    }
    if (x->grp_failed > 0) {
        snprintf(x->res->setup_error, sizeof(x->res->setup_error),
                 "%zu of %zu %s could not connect%s; first error: %.150s",
                 x->grp_failed, x->grp_end - x->grp_first,
                 x->grp_role == BR_SUB ? "subscribers" : "publishers",
                 x->grp_role == BR_SUB ? " and subscribe" : "",
                 x->res->first_error);
        return BENCH_ERR;
    }
    if (x->grp_role == BR_SUB) {
        bench_group_begin(x, ns, x->nconns, BR_PUB);
        bench_group_launch(x, now);
        return BENCH_OK;
    }
    bench_start_publishing(x, now);
    return BENCH_OK;
}

/* Timeouts of connections in set-up or closing; keep-alive pings. */
static void
bench_housekeeping(bench_ctx_t *x, uint64_t now)
{
    uint64_t tmo = (uint64_t) (x->cfg->connect_timeout * NS);
    uint64_t ka = (uint64_t) x->cfg->keepalive * NS / 2;
    bool pings = now >= x->next_ping_check;
    size_t i;

    if (pings) {
        x->next_ping_check = now + NS;
    }
    for (i = 0; i < x->nconns; i++) {
        bench_conn_t *c = &x->conns[i];
        uint8_t buf[2];

        switch (c->state) {
        case BC_CONNECTING:
        case BC_CONNACK:
        case BC_SUBACK:
            if (now - c->t_start > tmo) {
                bench_conn_close(x, c, BC_FAILED);
                bench_run_on_close(x, c, false,
                                   c->state == BC_SUBACK
                                       ? "no SUBACK in time"
                                       : "no CONNACK in time",
                                   now);
            }
            break;
        case BC_CLOSING:
            if (now - c->t_last_send > BENCH_CLOSE_WAIT) {
                bench_conn_close(x, c, BC_DONE);
                bench_run_on_close(x, c, true, "closed by the client", now);
            }
            break;
        case BC_READY:
            if (pings && ka > 0 && now - c->t_last_send >= ka) {
                bench_conn_send(x, c, buf, bench_wire_empty(buf, MQTT_PINGREQ),
                                now);
            }
            break;
        default:
            break;
        }
    }
    bench_pub_expire(x, now);
}

/* Moves the run along: phase changes, ticks.  Returns BENCH_ERR when the
 * set-up failed. */
static int
bench_advance(bench_ctx_t *x, uint64_t now)
{
    const bench_cfg_t *cfg = x->cfg;
    bench_result_t *res = x->res;

    if (now >= x->next_house) {
        x->next_house = now + BENCH_HOUSE_NS;
        bench_housekeeping(x, now);
    }
    if (x->phase == BENCH_PH_SETUP) {
        if (bench_interrupted) {
            snprintf(res->setup_error, sizeof(res->setup_error),
                     "interrupted during set-up");
            return BENCH_ERR;
        }
        if (bench_setup_step(x, now) < 0) {
            return BENCH_ERR;
        }
        if (x->phase == BENCH_PH_SETUP) {
            return BENCH_OK;
        }
        if (cfg->scenario == BENCH_STORM) {
            bench_storm_round(x, now);
        }
    }
    if (x->phase == BENCH_PH_WARMUP && now >= x->t_measure) {
        bench_start_measure(x, now);
    }
    if (bench_interrupted && bench_pub_active(x)) {
        if (x->phase == BENCH_PH_WARMUP) {
            bench_start_measure(x, now);
        }
        x->t_end = now;
    }
    if (x->phase == BENCH_PH_MEASURE && now >= x->t_end) {
        res->measured_s = (double) (now - x->t_measure) / NS;
        x->phase = BENCH_PH_DRAIN;
        x->t_drain_end = now + (uint64_t) (cfg->drain * NS);
    }
    if (cfg->scenario == BENCH_STORM) {
        if (bench_group_done(x) && x->phase != BENCH_PH_DONE) {
            if (bench_pub_active(x)) {
                bench_storm_round(x, now);
            } else {
                res->drain_s = (double) (now - x->t_end) / NS;
                res->measured_s = (double) (now - x->t_measure) / NS;
                res->drain_complete = true;
                bench_finish(x, now);
            }
        } else {
            bench_group_launch(x, now);
        }
    } else if (x->phase == BENCH_PH_DRAIN
               && (res->delivered >= res->expected
                   || now >= x->t_drain_end)) {
        res->drain_complete = res->delivered >= res->expected;
        res->drain_s = (double) (now - x->t_end) / NS;
        bench_finish(x, now);
    }
    if (x->phase != BENCH_PH_SETUP && now >= x->next_tick) {
        bench_tick(x, now);
        x->next_tick += NS;
        if (x->next_tick < now) {
            x->next_tick = now + NS;
        }
    }
    return BENCH_OK;
}

/* Milliseconds until something is due (at least 1 unless overdue). */
static int
bench_wait_ms(const bench_ctx_t *x, uint64_t now)
{
    uint64_t next = x->next_house;

    if (x->phase != BENCH_PH_SETUP && x->next_tick < next) {
        next = x->next_tick;
    }
    if (x->phase == BENCH_PH_WARMUP && x->t_measure < next) {
        next = x->t_measure;
    }
    if (bench_pub_active(x) && x->t_end < next) {
        next = x->t_end;
    }
    if (bench_pub_active(x) && x->cfg->rate > 0
        && x->cfg->scenario != BENCH_STORM) {
        uint64_t due = x->t0 + (uint64_t) ((double) x->g * x->interval_ns);

        if (due < next) {
            next = due;
        }
    }
    if (x->phase == BENCH_PH_DRAIN && x->t_drain_end < next) {
        next = x->t_drain_end;
    }
    if (x->nkicked > 0 && bench_pub_active(x)) {
        return 0;
    }
    if (next <= now) {
        return 0;
    }
    return (int) ((next - now + 999999) / 1000000);
}

/* Tells the broker goodbye on every open connection. */
static void
bench_disconnect_all(bench_ctx_t *x)
{
    uint8_t buf[2];
    size_t n = bench_wire_empty(buf, MQTT_DISCONNECT), i;

    for (i = 0; i < x->nconns; i++) {
        bench_conn_t *c = &x->conns[i];

        if (c->fd >= 0 && c->state == BC_READY) {
            bench_conn_send(x, c, buf, n, bench_now_ns());
        }
    }
    bench_conn_flush_all(x);
}

static void
bench_totals(bench_ctx_t *x)
{
    const bench_cfg_t *cfg = x->cfg;
    bench_result_t *res = x->res;
    size_t i, j;

    if (cfg->scenario == BENCH_STORM) {
        return;
    }
    res->lost = res->expected - res->delivered;
    /* Streams with loss: every (publisher, receiver) tracker. */
    for (i = 0; i < (size_t) cfg->publishers; i++) {
        uint64_t sent = x->pubs[i].measured_sent;

        switch (cfg->scenario) {
        case BENCH_SHARED:
            res->streams++;
            res->streams_lossy += x->group[i].measured < sent;
            break;
        case BENCH_PAIRS:
            res->streams++;
            res->streams_lossy += x->subs[i].tracks[0].measured < sent;
            break;
        default:
            for (j = 0; j < (size_t) cfg->subscribers; j++) {
                res->streams++;
                res->streams_lossy += x->subs[j].tracks[i].measured < sent;
            }
            break;
        }
    }
}

int
bench_run(const bench_cfg_t *cfg, bench_result_t *res)
{
    struct epoll_event evs[BENCH_EVENTS];
    bench_ctx_t ctx, *x = &ctx;
    uint64_t now;
    int rc = BENCH_OK;

    memset(res, 0, sizeof(*res));
    memset(x, 0, sizeof(*x));
    x->cfg = cfg;
    x->res = res;
    x->ep = -1;
    x->phase = BENCH_PH_SETUP;

    if (bench_fd_limit(x, (size_t) cfg->publishers + cfg->subscribers) < 0) {
        res->setup_failed = true;
        return BENCH_ERR;
    }
    x->ep = epoll_create1(EPOLL_CLOEXEC);
    if (x->ep < 0) {
        snprintf(res->setup_error, sizeof(res->setup_error),
                 "epoll_create1() failed: %s", strerror(errno));
        res->setup_failed = true;
        return BENCH_ERR;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, bench_on_sigint);
    bench_build(x);

    now = bench_now_ns();
    x->next_house = now + BENCH_HOUSE_NS;
    x->next_ping_check = now + NS;
    if (cfg->scenario == BENCH_STORM) {
        bench_group_begin(x, 0, 0, BR_STORM);
    } else {
        bench_group_begin(x, 0, (size_t) cfg->subscribers, BR_SUB);
    }

    while (x->phase != BENCH_PH_DONE) {
        int n, i;

        if (bench_advance(x, now) < 0) {
            res->setup_failed = true;
            rc = BENCH_ERR;
            break;
        }
        if (x->phase == BENCH_PH_DONE) {
            break;
        }
        if (cfg->rate > 0 && cfg->scenario != BENCH_STORM) {
            bench_pub_rate(x, now);
        }
        if (x->nkicked > 0) {
            bench_pub_window(x);
        }
        bench_conn_flush_all(x);

        n = epoll_wait(x->ep, evs, BENCH_EVENTS, bench_wait_ms(x, now));
        if (n < 0 && errno != EINTR) {
            snprintf(res->setup_error, sizeof(res->setup_error),
                     "epoll_wait() failed: %s", strerror(errno));
            res->setup_failed = true;
            rc = BENCH_ERR;
            break;
        }
        now = bench_now_ns();
        for (i = 0; i < n; i++) {
            bench_conn_event(x, evs[i].data.ptr, evs[i].events, now);
        }
        if (n > 0) {
            now = bench_now_ns();
        }
    }
    if (rc == BENCH_OK) {
        bench_totals(x);
    }
    bench_disconnect_all(x);
    signal(SIGINT, SIG_DFL);
    bench_free(x);
    return rc;
}

void
bench_result_free(bench_result_t *res)
{
    mem_free(res->ticks);
    res->ticks = NULL;
    res->nticks = 0;
}

bool
bench_result_ok(const bench_cfg_t *cfg, const bench_result_t *res)
{
    if (res->setup_failed || res->conn_lost > 0 || res->protocol_errors > 0
        || res->connects_failed > 0) {
        return false;
    }
    if (cfg->scenario == BENCH_STORM) {
        return res->connects_ok > 0;
    }
    return res->expected > 0 && res->lost == 0 && res->duplicates == 0
           && res->unexpected == 0 && res->pub_refused == 0;
}
