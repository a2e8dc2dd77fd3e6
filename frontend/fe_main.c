/*
 * fe_main.c -- the frontend process: its libevent loop, listeners, the
 * eventfd wake-up from workers, and the one-second tick (keepalive,
 * connect timeout, a sweep for output nobody was told about).
 *
 * NOTES
 *   Owns: its proc_t; its arena partition (allocation); the producer side
 *   of its ingest rings; for each client it hosts, the consumer side of
 *   the slot's output ring, the inflight table, next packet id and the
 *   inbound QoS 2 bitmap.  Sockets and connection state are private.
 *   Reads: reply and notify rings addressed to it; owner-written slot
 *   fields (will handle) of the clients it hosts.
 *   At start it takes over what a previous incarnation left (fe_recover.c).
 *   Never touches: slots of clients it does not host, other frontends'
 *   partitions except through arena_release(), the subscription lists.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "fe.h"
#include "fe_admin.h"
#include "fe_tls.h"
#include "log.h"
#include "mem.h"

fe_t *fe;

static void drain_rings(void)
{
    for (uint32_t w = 0; w < fe->n_fo; w++) {
        ring_t *r = shm_reply(fe->shm, w, fe->idx);
        uint32_t n = ring_count(r);
        for (uint32_t i = 0; i < n; i++) {
            rep_rec_t rep;
            memcpy(&rep, ring_peek(r, 0), sizeof(rep));
            ring_consume(r, 1);
            fe_on_reply(w, &rep);
        }
    }
    /* After the answers: a connection attached by one can take the
     * groups that follow it. */
    fe_bcast_drain();
    for (uint32_t w = 0; w < fe->n_fo; w++) {
        ring_t *r = shm_notify(fe->shm, w, fe->idx);
        uint32_t n = ring_count(r);
        for (uint32_t i = 0; i < n; i++) {
            uint32_t slot = *(uint32_t *)ring_peek(r, 0);
            ring_consume(r, 1);
            if (slot >= fe->shm->hdr->max_clients)
                continue;
            fe_conn_t *c = fe->by_slot[slot];
            if (c == NULL)
                continue; /* not ours (any more): the new host drains */
            /* Clear, fence, then read the ring: pairs with the fence in
             * fo_flush_notify() between the worker's commit and its load
             * of `queued`. */
            __atomic_store_n(&shm_slot(fe->shm, slot)->queued, 0,
                             __ATOMIC_RELAXED);
            __atomic_thread_fence(__ATOMIC_SEQ_CST);
            fe_drain_slot(c);
        }
    }
}

static bool rings_pending(void)
{
    for (uint32_t w = 0; w < fe->n_fo; w++)
        if (ring_count(shm_reply(fe->shm, w, fe->idx)) ||
            ring_count(shm_notify(fe->shm, w, fe->idx)) ||
            ring_count(shm_bcast(fe->shm, w, fe->idx)))
            return true;
    return false;
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    (void)arg;
    uint64_t v;
    if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        log_err("read(eventfd) failed: %s", strerror(errno));
    fe_admin_poll(); /* the supervisor's requests come this way too */
    for (;;) {
        __atomic_store_n(&fe->proc->sleeping, 0, __ATOMIC_RELAXED);
        drain_rings();
        fe_resume_due();
        fe_flush_dirty();
        __atomic_store_n(&fe->proc->sleeping, 1, __ATOMIC_RELAXED);
        /* Orders the store of `sleeping` before the re-check; pairs with
         * the fence in fo_flush_notify() before it loads `sleeping`. */
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if (!rings_pending())
            break;
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    fe->now = time(NULL);
    uint64_t now_ms = fe_clock_ms();
    for (uint32_t id = 0; id < fe->conns_cap; id++) {
        fe_conn_t *c = fe->conns[id];
        if (c == NULL)
            continue;
        if ((c->state == C_NEW || c->state == C_AUTH) &&
            now_ms - c->accepted_ms >=
                (uint64_t)fe->cfg->connect_timeout * 1000) {
            const char *wait = fe_xp_pending(c);
            char why[96];
            snprintf(why, sizeof(why), "%s not finished within "
                     "connect_timeout", wait);
            fe_close(c, false,
                     wait ? why
                     : c->state == C_AUTH
                         ? "authentication not finished within "
                           "connect_timeout"
                         : "no CONNECT within connect_timeout");
            continue;
        }
        if (c->state == C_CONNECTING &&
            now_ms - c->accepted_ms >=
                ((uint64_t)fe->cfg->connect_timeout + FE_CONNECTING_GRACE) *
                    1000) {
            /* The owner has not answered (a takeover that cannot finish);
             * its late answer finds no connection and detaches. */
            fe_close(c, false, "session owner did not answer in time");
            continue;
        }
        /* A connection we stopped reading because the broker is behind
         * (arena or ingest ring full: its output queue is empty) is not
         * idle; one paused because it does not read its own output is. */
        if (c->state == C_ACTIVE && c->keepalive &&
            !(c->paused && c->iov_n == 0) &&
            (now_ms - c->last_rx_ms) * 2 >= (uint64_t)c->keepalive * 3000) {
            fe_disconnect(c, MQTT5_RC_KEEP_ALIVE_TIMEOUT,
                          "keepalive timeout");
            continue;
        }
        /* Safety sweep: output that arrived without a notification (a
         * full notify ring) is picked up within a second (broadcast
         * groups: below). */
        if (c->state == C_ACTIVE && !c->write_on &&
            ((!c->inflight_blocked &&
              ring_count(sess_ring(fe->shm, c->slot))) ||
             ring_count(sess_ctl(fe->shm, c->slot))))
            fe_drain_slot(c);
    }
    fe_bcast_drain();
    if (fe->syncing && fe->now % 5 == 0)
        log_warn("frontend %u: %u workers have not answered SYNC yet; not "
                 "accepting connections", fe->idx, fe->syncing);
    if (getppid() == 1)
        event_base_loopbreak(fe->base);
    fe_flush_dirty();
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    fe->retry_armed = false;
    if (!fe_retry_backlogs()) {
        struct timeval tv = {0, 2000};
        event_add(fe->ev_retry, &tv);
        fe->retry_armed = true;
    }
    for (uint32_t id = 0; id < fe->conns_cap; id++) {
        fe_conn_t *c = fe->conns[id];
        if (c && c->paused && !c->write_on)
            fe_resume(c);
    }
    fe_flush_dirty();
}

/* Signals come through a signalfd, not libevent's signal events: a
 * frontend the supervisor respawns inherits the supervisor's event base,
 * and libevent keeps signal events in one base per process (it warned
 * "Added a signal to event base ... with signals already added" on every
 * respawn). */
static void on_signal(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    (void)arg;
    struct signalfd_siginfo si;
    while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGHUP) {
            /* The supervisor passes SIGHUP on: certificates are read
             * again for new connections. */
            fe_tls_reload();
            continue;
        }
        event_base_loopbreak(fe->base);
    }
}

int fe_main(const cfg_t *cfg, shm_t *shm, uint32_t idx, const int *lfd,
            const int *lfd_listener, int n_lfd, int efd)
{
    static fe_t self;
    fe = &self;
    fe->cfg = cfg;
    fe->shm = shm;
    fe->idx = idx;
    fe->n_fo = shm->hdr->n_fo;
    fe->proc = shm_fe_proc(shm, idx);
    fe->part = shm_fe_part(shm, idx);
    fe->efd = efd;
    fe->now = time(NULL);
    /* Connection ids index the output-queue handles in shm. */
    fe->conns_cap = shm->hdr->fe_conns;
    /* Cookies (generation << id bits) of a new incarnation start far
     * from the previous one's. */
    fe->gen_base = fe->proc->restarts * 257u;
    fe->conns = mem_calloc(fe->conns_cap, sizeof(fe_conn_t *));
    fe->conn_gens = mem_calloc(fe->conns_cap, sizeof(uint32_t));
    fe->free_ids = mem_calloc(fe->conns_cap, sizeof(uint32_t));
    for (uint32_t i = 0; i < fe->conns_cap; i++)
        fe->free_ids[fe->n_free_ids++] = fe->conns_cap - 1 - i;
    fe->by_slot = mem_calloc(shm->hdr->max_clients, sizeof(fe_conn_t *));
    fe->connects_out = mem_calloc(fe->n_fo, sizeof(uint32_t));
    fe->wake_fo = mem_calloc(fe->n_fo, 1);
    fe->backlog = mem_calloc(fe->n_fo, sizeof(fe_backlog_t));
    fe->stall = mem_calloc(fe->n_fo, sizeof(fe_stall_t));
    fe->max_packet = shm_max_packet(shm, cfg->max_packet_size);
    fe->max_block = arena_part_max_len(fe->part);

    signal(SIGPIPE, SIG_IGN);
    /* Back to epoll and the timers after at most 64 callbacks: a
     * connection that re-activates itself (edge-triggered reads, see
     * on_read()) gets its turn again after the others, not before them.
     * Not EVENT_BASE_FLAG_PRECISE_TIMER: it costs a timerfd_settime() per
     * loop iteration (30 % more CPU per message in the pairs benchmark);
     * a held write (fe_hold.c) may be released a few ms late instead. */
    struct event_config *ecfg = event_config_new();
    if (ecfg)
        event_config_set_max_dispatch_interval(ecfg, NULL, 64, 0);
    fe->base = ecfg ? event_base_new_with_config(ecfg) : NULL;
    if (ecfg)
        event_config_free(ecfg);
    if (fe->base == NULL) {
        log_err("event_base_new() failed");
        return 1;
    }
    fe_uring_init();
    fe_hold_init();
    fe->ev_listen = mem_calloc((size_t)n_lfd, sizeof(struct event *));
    fe->n_listen = n_lfd;
    for (int i = 0; i < n_lfd; i++) {
        /* Added once recovery is done (fe_recover_synced()). */
        fe->ev_listen[i] = event_new(fe->base, lfd[i], EV_READ | EV_PERSIST,
                                     fe_accept,
                                     (void *)(intptr_t)lfd_listener[i]);
    }
    fe->ev_wake = event_new(fe->base, efd, EV_READ | EV_PERSIST, on_wake,
                            NULL);
    event_add(fe->ev_wake, NULL);
    fe->ev_tick = event_new(fe->base, -1, EV_PERSIST, on_tick, NULL);
    struct timeval sec = {1, 0};
    event_add(fe->ev_tick, &sec);
    fe->ev_retry = event_new(fe->base, -1, 0, on_retry, NULL);
    fe_flush_init();
    /* The supervisor forked us with SIGHUP blocked: one sent before now
     * waits in the signalfd. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    sigprocmask(SIG_BLOCK, &sigs, NULL);
    int sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0) {
        log_err("signalfd() failed: %s", strerror(errno));
        return 1;
    }
    struct event *ev_sig = event_new(fe->base, sfd, EV_READ | EV_PERSIST,
                                     on_signal, NULL);
    event_add(ev_sig, NULL);

    fe->proc->started = (uint64_t)fe->now;
    log_info("frontend %u started", idx);
    fe_recover_start();
    __atomic_store_n(&fe->proc->sleeping, 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    /* Answers that came before we slept wait in the rings: look once. */
    on_wake(efd, EV_READ, NULL);

    event_base_dispatch(fe->base);

    log_info("frontend %u stopping", idx);
    fe_hold_stop(); /* what waits goes out before the goodbyes */
    fe_flush_dirty();
    for (uint32_t id = 0; id < fe->conns_cap; id++)
        if (fe->conns[id] &&
            fe_send_disconnect(fe->conns[id], MQTT5_RC_SERVER_SHUTTING_DOWN,
                               "broker stopping") == 0)
            fe_close(fe->conns[id], true, "broker stopping");
    fe_flush_dirty();
    for (int i = 0; i < n_lfd; i++)
        event_free(fe->ev_listen[i]);
    event_free(fe->ev_wake);
    event_free(fe->ev_tick);
    event_free(fe->ev_retry);
    event_free(fe->ev_flush);
    event_free(ev_sig);
    close(sfd);
    event_base_free(fe->base);
    fe_tls_free();
    mem_free(fe->ev_listen);
    mem_free(fe->conns);
    mem_free(fe->conn_gens);
    mem_free(fe->free_ids);
    mem_free(fe->by_slot);
    mem_free(fe->connects_out);
    mem_free(fe->wake_fo);
    for (uint32_t w = 0; w < fe->n_fo; w++)
        mem_free(fe->backlog[w].recs);
    mem_free(fe->backlog);
    mem_free(fe->stall);
    mem_free(fe->resume);
    return 0;
}
