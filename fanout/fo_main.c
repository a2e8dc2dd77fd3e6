/*
 * fo_main.c -- the fan-out worker process: its loop over the ingest rings,
 * its sleep on a futex, and the wake-ups it sends to frontends.
 *
 * NOTES
 *   Owns: its proc_t; the producer side of the reply and notify rings it
 *   writes; the producer side and the owner-written fields of the slots it
 *   owns (slot % n_fo == idx); its arena partition (subscription records).
 *   Private: subscription index, client-id map, the retained store's
 *   topic map -- all derived state that a restarted worker rebuilds from
 *   shm (fo_recover.c).
 *   Reads: the ingest rings addressed to it; arena blocks it holds
 *   references to.
 *   Never touches: sockets, other workers' slots, frontends' partitions
 *   except through arena_release().
 */
#include <errno.h>
#include <linux/futex.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "crashpoint.h"
#include "fo.h"
#include "fo_admin.h"
#include "log.h"
#include "mem.h"

static volatile sig_atomic_t fo_stop;

/* A spin-wait hint to the CPU. */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static void on_term(int sig)
{
    (void)sig;
    fo_stop = 1;
}

bool fo_stopping(void)
{
    return fo_stop != 0;
}

bool fo_room(fo_t *fo, uint32_t slot, uint32_t bytes, uint32_t recs)
{
    ring_t *r = sess_ring(fo->shm, slot);
    sess_slot_t *s = shm_slot(fo->shm, slot);
    /* The ring may hold max_queued records. */
    uint32_t need = r->cap - fo->shm->hdr->max_queued + recs;
    uint64_t maxb = fo->shm->hdr->max_queued_bytes;
    if (ring_space(r, need) < need)
        return false;
    if (maxb == 0)
        return true;
    /* q_bytes_out is the role holder's; acquire pairs with its release
     * store after it consumed the record. */
    uint64_t out = __atomic_load_n(&s->q_bytes_out, __ATOMIC_ACQUIRE);
    /* As in Mosquitto: queue until the limit is exceeded (the message
     * that crosses it is kept). */
    (void)bytes;
    return s->q_bytes_in - out < maxb;
}

int fo_has_room(fo_t *fo, uint32_t slot, uint32_t bytes, uint32_t recs)
{
    if (fo_room(fo, slot, bytes, recs))
        return 1;
    sess_slot_t *s = shm_slot(fo->shm, slot);
    if (s->drops++ % 1000 == 0) {
        /* As Mosquitto words it, with what an operator needs to tell a
         * client that does not read from one that is offline. */
        int n;
        const char *id = fo_log_id(fo, s, &n);
        log_warn("Outgoing messages are being dropped for client %.*s "
                 "(%s, queue full: max_queued_messages or "
                 "max_queued_bytes; %llu dropped so far).",
                 n, id, s->state == SESS_OFFLINE ? "offline" : "connected",
                 (unsigned long long)s->drops);
    }
    fo->proc->drops_queue++;
    return 0;
}

void fo_online(fo_t *fo, uint32_t slot, const sess_slot_t *s)
{
    uint32_t l = fo_local(fo, slot);
    fo->on_gen[l] = s->state == SESS_ONLINE ? s->conn_gen : 0;
    fo->on_fe[l] = s->host_fe;
}

void fo_touch(fo_t *fo, uint32_t slot)
{
    fo->notify[fo->n_notify++] = slot;
    if (fo->n_notify >= fo->n_owned)
        fo_flush_notify(fo);
}

void fo_push(fo_t *fo, uint32_t slot, const out_rec_t *rec, uint32_t bytes)
{
    ring_t *r = sess_ring(fo->shm, slot);
    shm_slot(fo->shm, slot)->q_bytes_in += bytes;
    /* fo_has_room() was asked first: there is room. */
    memcpy(ring_slot(r, 0), rec, sizeof(*rec));
    ring_commit(r, 1);
    fo->ringed[fo_local(fo, slot)] = 1;
    fo_touch(fo, slot);
}

void fo_push_ctl(fo_t *fo, uint32_t slot, const ctl_rec_t *rec)
{
    ring_t *r = sess_ctl(fo->shm, slot);
    if (ring_space(r, 1) < 1) {
        /* A frontend keeps at most FE_MAX_PENDING_ACKS acknowledgements
         * outstanding per connection and there is one takeover at a time,
         * so this means a broken invariant: drop rather than wedge. */
        log_err("control ring of slot %u full, record type %u dropped", slot,
                rec->type);
        if (rec->h)
            arena_release(&fo->shm->arena, rec->h);
        return;
    }
    memcpy(ring_slot(r, 0), rec, sizeof(*rec));
    ring_commit(r, 1);
    fo->ringed[fo_local(fo, slot)] = 1;
    fo_touch(fo, slot);
}

void fo_flush_notify(fo_t *fo)
{
    /* Orders the output ring commits above before the loads of `queued`
     * below; pairs with the fence a frontend issues after clearing
     * `queued` and before it reads the ring head (fe_drain_slot()). */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    for (uint32_t i = 0; i < fo->n_notify; i++) {
        uint32_t slot = fo->notify[i];
        sess_slot_t *s = shm_slot(fo->shm, slot);
        /* ONLINE: the host drains.  HANDOFF: the old host still consumes
         * until it has seen the KICK.  Otherwise the next host drains on
         * attach. */
        if (s->state != SESS_ONLINE && s->state != SESS_HANDOFF)
            continue;
        if (__atomic_load_n(&s->queued, __ATOMIC_RELAXED))
            continue;
        ring_t *nr = shm_notify(fo->shm, fo->idx, s->host_fe);
        if (ring_space(nr, 1) < 1) {
            /* Cannot happen while each slot is queued at most once; if it
             * does, the frontend's periodic sweep drains the slot. */
            log_err("notify ring to frontend %u full", s->host_fe);
            continue;
        }
        __atomic_store_n(&s->queued, 1, __ATOMIC_RELAXED);
        *(uint32_t *)ring_slot(nr, 0) = slot;
        ring_commit(nr, 1);
        fo->fe_dirty[s->host_fe] = 1;
    }
    fo->n_notify = 0;
    /* Orders the notify ring commits before the loads of `sleeping`;
     * pairs with the fence in the frontend's wake handler after it sets
     * `sleeping` and before it re-checks its notify rings. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    for (uint32_t f = 0; f < fo->n_fe; f++) {
        if (!fo->fe_dirty[f])
            continue;
        fo->fe_dirty[f] = 0;
        if (__atomic_load_n(&shm_fe_proc(fo->shm, f)->sleeping,
                            __ATOMIC_RELAXED)) {
            uint64_t one = 1;
            if (write(fo->fe_efd[f], &one, sizeof(one)) < 0 &&
                errno != EAGAIN)
                log_err("write(eventfd of frontend %u) failed: %s", f,
                        strerror(errno));
        }
    }
}

static void handle(fo_t *fo, const ing_rec_t *r, bool redo)
{
    switch (r->type) {
    case ING_PUBLISH:
        fo_on_publish(fo, r, redo);
        break;
    case ING_CONNECT:
        fo_on_connect(fo, r, redo);
        break;
    case ING_DETACH:
        fo_on_detach(fo, r);
        break;
    case ING_SUBSCRIBE:
        fo_on_subscribe(fo, r, 0, redo);
        break;
    case ING_UNSUBSCRIBE:
        fo_on_subscribe(fo, r, 1, redo);
        break;
    case ING_SYNC:
        fo_on_sync(fo, r);
        break;
    case ING_SHARE:
        fo_share_join(fo, r);
        break;
    case ING_UNSHARE:
        fo_share_leave(fo, r);
        break;
    default:
        log_err("ingest record of unknown type %u from frontend %u ignored",
                r->type, r->fe);
    }
}

/* Input ring i of this worker: the ingest ring of frontend i, then (i >=
 * n_fe) the worker ring from worker i - n_fe. */
static ring_t *fo_in_ring(fo_t *fo, uint32_t i)
{
    return i < fo->n_fe ? shm_ingest(fo->shm, i, fo->idx)
                        : shm_xring(fo->shm, i - fo->n_fe, fo->idx);
}

/* Handles the first record of input ring i: handled, consumed, then the
 * references it held are released.  busy_fe says which ring is at it: a
 * worker killed at any point leaves the record in the ring with its
 * references, and the next incarnation redoes it first (redo), its
 * handlers skipping what was done. */
static void handle_one(fo_t *fo, uint32_t i, bool redo)
{
    ring_t *r = fo_in_ring(fo, i);
    /* A redo uses the marks of the first try.  Without groups nothing is
     * dispatched (and a restart never adds groups before the redo), so
     * the marks are not needed then. */
    if (fo->idx == 0 && !redo && fo->n_groups)
        fo_share_mark(fo);
    fo->proc->busy_fe = i + 1;
    ARENA_CRASH_ORDER();
    fo->n_after = 0;
    if (i >= fo->n_fe) {
        fo_xrec_t x;
        memcpy(&x, ring_peek(r, 0), sizeof(x));
        fo_share_on_xrec(fo, i - fo->n_fe, &x, redo);
    } else {
        ing_rec_t rec;
        memcpy(&rec, ring_peek(r, 0), sizeof(rec));
        if (rec.fe != i) {
            log_err("ingest record claims frontend %u on ring of %u",
                    rec.fe, i);
            rec.fe = (uint8_t)i;
        }
        handle(fo, &rec, redo);
    }
    CRASH_POINT("fo_handled");
    ring_consume(r, 1);
    ARENA_CRASH_ORDER(); /* consumed first */
    for (uint32_t k = 0; k < fo->n_after; k++)
        arena_release(&fo->shm->arena, fo->after[k]);
    ARENA_CRASH_ORDER();
    fo->proc->busy_fe = 0;
}

/* One pass over every input ring.  Returns the records handled. */
static uint32_t poll_rings(fo_t *fo)
{
    uint32_t total = 0;
    for (uint32_t f = 0; f < fo->n_fe + fo->n_fo; f++) {
        ring_t *r = fo_in_ring(fo, f);
        uint32_t n = ring_count(r);
        if (n > 256)
            n = 256;
        for (uint32_t i = 0; i < n; i++)
            handle_one(fo, f, false);
        total += n;
    }
    return total;
}

static int rings_empty(fo_t *fo)
{
    for (uint32_t f = 0; f < fo->n_fe + fo->n_fo; f++)
        if (ring_count(fo_in_ring(fo, f)))
            return 0;
    return 1;
}

/* Sleeps until a producer wakes us, or ms milliseconds. */
static void sleep_until_woken(fo_t *fo, long ms)
{
    proc_t *p = fo->proc;
    uint32_t v = __atomic_load_n(&p->futex, __ATOMIC_ACQUIRE);
    __atomic_store_n(&p->sleeping, 1, __ATOMIC_RELAXED);
    /* Orders the store of `sleeping` before the ring re-check; pairs with
     * the fence in shm_wake_worker() between a producer's commit and its
     * load of `sleeping`. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (rings_empty(fo) && !fo_stop) {
        struct timespec ts = {0, ms * 1000 * 1000};
        syscall(SYS_futex, &p->futex, FUTEX_WAIT, v, &ts, NULL, 0);
    }
    __atomic_store_n(&p->sleeping, 0, __ATOMIC_RELAXED);
}

int fo_main(const cfg_t *cfg, shm_t *shm, uint32_t idx, const int *fe_efd)
{
    fo_t fo;
    memset(&fo, 0, sizeof(fo));
    fo.cfg = cfg;
    fo.shm = shm;
    fo.idx = idx;
    fo.n_fe = shm->hdr->n_fe;
    fo.n_fo = shm->hdr->n_fo;
    fo.proc = shm_fo_proc(shm, idx);
    fo.part = shm_fo_part(shm, idx);
    fo.fe_efd = fe_efd;
    fo.fe_dirty = mem_calloc(fo.n_fe, 1);
    fo.ix = fo_index_new();
    strmap_init(&fo.ids);
    strmap_init(&fo.subs);
    strmap_init(&fo.retained);
    strmap_init(&fo.gmap);
    fo.share_ix = fo_index_new();

    uint32_t owned = shm->hdr->max_clients / fo.n_fo + 1;
    fo.n_owned = owned;
    fo.free_slots = mem_calloc(owned, sizeof(uint32_t));
    fo.stamp = mem_calloc(owned, sizeof(uint32_t));
    fo.pos = mem_calloc(owned, sizeof(uint32_t));
    fo.match = mem_calloc(owned, sizeof(fo_match_t));
    fo.notify = mem_calloc(owned + 1, sizeof(uint32_t));
    /* What a previous incarnation pushed is not known: every ring is
     * looked at before its first broadcast. */
    fo.ringed = mem_alloc(owned);
    memset(fo.ringed, 1, owned);
    fo.n_bc = mem_calloc(2 * (size_t)fo.n_fe, sizeof(uint32_t));
    fo.on_gen = mem_calloc(owned, sizeof(uint32_t)); /* fo_recover() */
    fo.on_fe = mem_calloc(owned, 1);

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    fo.proc->started = (uint64_t)time(NULL);
    /* Retained backlogs died with a previous incarnation. */
    fo.proc->ret_backlogs = 0;
    fo.proc->ret_backlog_msgs = 0;
    fo_recover(&fo);
    if (fo.redo_fe >= 0 &&
        ring_count(fo_in_ring(&fo, (uint32_t)fo.redo_fe)) > 0)
        handle_one(&fo, (uint32_t)fo.redo_fe, true);
    fo.redo_fe = -1;
    fo_flush_notify(&fo);
    log_info("fan-out worker %u started, %u free slots", idx, fo.n_free);

    uint32_t idle = 0;
    uint64_t jobs_ms = 0; /* when the retained backlogs were last run */
    bool jobs_online = false;
    time_t last_tick = time(NULL);
    fo.now = (uint64_t)last_tick;
    while (!fo_stop) {
        uint32_t n = poll_rings(&fo);
        fo_admin_poll(&fo); /* admin socket requests (one load if none) */
        if (fo.n_jobs) {
            /* At most once per FO_RETJOB_POLL_MS, not on every spin. */
            uint64_t ms = clock_ms();
            if (ms - jobs_ms >= FO_RETJOB_POLL_MS) {
                jobs_ms = ms;
                jobs_online = fo_ret_jobs_run(&fo);
            }
        }
        fo_flush_notify(&fo);
        if (n == 0) {
            if (++idle < 64) {
                cpu_relax();
                continue;
            }
            idle = 0;
            /* A retained backlog looks for room every few ms (the
             * frontends do not say when they drain). */
            sleep_until_woken(&fo, fo.n_jobs && jobs_online
                                       ? FO_RETJOB_POLL_MS
                                       : 100);
        } else {
            idle = 0;
        }
        time_t now = time(NULL);
        if (now != last_tick) {
            last_tick = now;
            fo.now = (uint64_t)now;
            fo_expire_sessions(&fo);
            if (idx == 0)
                fo_share_scan(&fo);
            fo_flush_notify(&fo);
            if (getppid() == 1)
                break; /* supervisor gone */
        }
    }
    log_info("fan-out worker %u stopping", idx);
    fo_ret_free(&fo);
    fo_ret_jobs_free(&fo);
    fo_share_free(&fo);
    fo_index_free(fo.ix);
    strmap_free(&fo.ids);
    strmap_free(&fo.subs);
    strmap_free(&fo.retained);
    mem_free(fo.fe_dirty);
    mem_free(fo.free_slots);
    mem_free(fo.stamp);
    mem_free(fo.pos);
    mem_free(fo.match);
    mem_free(fo.xid);
    mem_free(fo.notify);
    mem_free(fo.ringed);
    mem_free(fo.n_bc);
    mem_free(fo.on_gen);
    mem_free(fo.on_fe);
    return 0;
}
