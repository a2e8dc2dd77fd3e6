/*
 * shm.c -- creates, lays out and checks the shared memory.  Only the
 * supervisor creates it (before forking); children inherit the mapping.
 */
#include "shm.h"

#include <errno.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

_Static_assert(CFG_PROCS_MAX == SHM_MAX_PROCS,
               "the configuration's process limit is the shared memory's");

static uint64_t align64(uint64_t v)
{
    return (v + 63) & ~(uint64_t)63;
}

static uint32_t pow2_at_least(uint64_t v)
{
    uint32_t p = 1;
    while (p < v)
        p <<= 1;
    return p;
}

int shm_create(shm_t *s, const shm_params_t *p)
{
    if (p->n_fe + p->n_fo + 1 > SHM_MAX_PROCS || p->n_fo > SHM_MAX_WORKERS) {
        log_err("shm: too many processes (%u)", p->n_fe + p->n_fo + 1);
        return -1;
    }
    shm_hdr_t h;
    memset(&h, 0, sizeof(h));
    h.magic = SHM_MAGIC;
    h.version = SHM_LAYOUT_VERSION;
    h.hdr_size = sizeof(shm_hdr_t);
    h.created = (uint64_t)time(NULL);
    h.n_fe = p->n_fe;
    h.n_fo = p->n_fo;
    h.max_clients = p->max_clients;
    h.max_inflight = p->max_inflight;
    h.max_queued = p->max_queued;
    h.max_queued_bytes = p->max_queued_bytes;
    h.out_cap = pow2_at_least(p->max_queued);
    /* Packet ids cycle through a range that keeps the bitmap of those in
     * use small (128 bytes with the defaults): the ids of a window of
     * max_inflight are never all taken. */
    uint64_t want = 2 * (uint64_t)p->max_inflight + 2;
    h.pid_range = want >= 65536 ? 65536 : pow2_at_least((uint32_t)want);
    if (h.pid_range < 1024)
        h.pid_range = 1024;
    h.ingest_cap = p->ingest_cap;
    /* A frontend has at most reply_cap connects outstanding per worker. */
    h.reply_cap = 1024;
    /* A slot is in at most one notify ring at a time (the queued flag). */
    h.notify_cap = pow2_at_least(p->max_clients);
    /* Room for a group to every client of a frontend and then some; a
     * group that does not fit goes through the data rings. */
    h.bcast_cap = pow2_at_least(p->max_clients + 1);
    if (h.bcast_cap < 1024)
        h.bcast_cap = 1024;
    if (h.bcast_cap > 65536)
        h.bcast_cap = 65536;

    uint64_t off = align64(sizeof(shm_hdr_t));
    h.off_ingest = off;
    h.ingest_stride = ring_bytes(h.ingest_cap, sizeof(ing_rec_t));
    off += (uint64_t)p->n_fe * p->n_fo * h.ingest_stride;
    h.off_reply = off;
    h.reply_stride = ring_bytes(h.reply_cap, sizeof(rep_rec_t));
    off += (uint64_t)p->n_fo * p->n_fe * h.reply_stride;
    h.off_notify = off;
    h.notify_stride = ring_bytes(h.notify_cap, sizeof(uint32_t));
    off += (uint64_t)p->n_fo * p->n_fe * h.notify_stride;
    h.off_bcast = off;
    h.bcast_stride = ring_bytes(h.bcast_cap, sizeof(bc_rec_t));
    off += (uint64_t)p->n_fo * p->n_fe * h.bcast_stride;
    h.off_bc_gen = off;
    off = align64(off + (uint64_t)p->max_clients * sizeof(uint32_t));

    /* What every delivery touches first, so that it shares pages (and TLB
     * entries: a fan-out touches a thousand slots at once): the slot, the
     * inflight table, the bitmap of its packet ids, the data ring's
     * indexes and records; then the control ring and the 8 KiB bitmap of
     * inbound QoS 2 ids. */
    h.slot_off_inflight = align64(sizeof(sess_slot_t));
    h.slot_off_pids = align64(h.slot_off_inflight +
                              (uint64_t)p->max_inflight *
                                  sizeof(sess_inflight_t));
    h.slot_off_ring = align64(h.slot_off_pids + h.pid_range / 8);
    h.slot_off_ctl = align64(h.slot_off_ring +
                             ring_bytes(h.out_cap, sizeof(out_rec_t)));
    h.slot_off_qos2 = align64(h.slot_off_ctl +
                              ring_bytes(SHM_CTL_CAP, sizeof(ctl_rec_t)));
    h.slot_stride = align64(h.slot_off_qos2 + SHM_QOS2_BITMAP);
    h.off_slots = off;
    off += (uint64_t)p->max_clients * h.slot_stride;

    h.xring_cap = SHM_XRING_CAP;
    h.off_xring = off;
    h.xring_stride = ring_bytes(h.xring_cap, sizeof(fo_xrec_t));
    off += (uint64_t)p->n_fo * p->n_fo * h.xring_stride;

    /* Connection ids per frontend: as many as slots, plus room for
     * clients that have not finished connecting. */
    h.fe_conns = p->max_clients + 1024;
    if (h.fe_conns > SHM_FE_CONNS_MAX)
        h.fe_conns = SHM_FE_CONNS_MAX;
    h.off_fe_rel = off;
    h.fe_rel_stride = align64((uint64_t)h.fe_conns * SHM_FE_IOV *
                              sizeof(arena_h));
    off += (uint64_t)p->n_fe * h.fe_rel_stride;

    uint32_t n_parts = p->n_fe + p->n_fo;
    h.off_parts = off;
    off += align64((uint64_t)n_parts * sizeof(arena_part_t));
    off = (off + 4095) & ~(uint64_t)4095;
    h.off_arena = off;
    h.arena_size = p->arena_size & ~(uint64_t)4095;
    off += h.arena_size;
    h.total_size = off;

    int fd = memfd_create("ringmq-shm", MFD_CLOEXEC);
    if (fd < 0) {
        log_err("memfd_create() failed: %s", strerror(errno));
        return -1;
    }
    if (ftruncate(fd, (off_t)h.total_size) < 0) {
        log_err("ftruncate(%llu) of shared memory failed: %s",
                (unsigned long long)h.total_size, strerror(errno));
        goto fail;
    }
    void *base = mmap(NULL, h.total_size, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_NORESERVE, fd, 0);
    if (base == MAP_FAILED) {
        log_err("mmap(%llu) of shared memory failed: %s",
                (unsigned long long)h.total_size, strerror(errno));
        goto fail;
    }
    s->base = base;
    s->fd = fd;
    s->hdr = base;
    memcpy(s->hdr, &h, sizeof(h));

    for (uint32_t f = 0; f < p->n_fe; f++)
        for (uint32_t w = 0; w < p->n_fo; w++) {
            ring_init(shm_ingest(s, f, w), h.ingest_cap, sizeof(ing_rec_t));
            ring_init(shm_reply(s, w, f), h.reply_cap, sizeof(rep_rec_t));
            ring_init(shm_notify(s, w, f), h.notify_cap, sizeof(uint32_t));
            ring_init(shm_bcast(s, w, f), h.bcast_cap, sizeof(bc_rec_t));
        }
    for (uint32_t a = 0; a < p->n_fo; a++)
        for (uint32_t b = 0; b < p->n_fo; b++)
            ring_init(shm_xring(s, a, b), h.xring_cap, sizeof(fo_xrec_t));
    /* Slots stay zero (SESS_FREE) from ftruncate and cost no memory until
     * used: the owner worker initialises a slot's ring when it takes it. */
    s->arena.base = s->base;
    s->arena.lo = h.off_arena;
    s->arena.hi = h.off_arena + h.arena_size;
    s->arena.parts = (arena_part_t *)(s->base + h.off_parts);
    s->arena.n_parts = n_parts;
    /* Frontends hold every message in flight; workers only subscription
     * records.  Workers get an eighth of the arena between them. */
    uint64_t fo_total = (h.arena_size / 8) & ~(uint64_t)4095;
    uint64_t fo_each = (fo_total / p->n_fo) & ~(uint64_t)4095;
    uint64_t fe_each = ((h.arena_size - fo_each * p->n_fo) / p->n_fe) &
                       ~(uint64_t)4095;
    uint64_t at = h.off_arena;
    for (uint32_t i = 0; i < n_parts; i++) {
        uint64_t sz = i < p->n_fe ? fe_each : fo_each;
        arena_part_init(&s->arena, &s->arena.parts[i], i, at, sz);
        at += sz;
    }
    return 0;
fail:
    close(fd);
    return -1;
}

int shm_check(const shm_t *s)
{
    const shm_hdr_t *h = s->hdr;
    if (h->magic != SHM_MAGIC || h->version != SHM_LAYOUT_VERSION ||
        h->hdr_size != sizeof(shm_hdr_t)) {
        log_err("shm: bad magic or layout version");
        return -1;
    }
    if (h->n_fe + h->n_fo + 1 > SHM_MAX_PROCS ||
        h->off_arena + h->arena_size != h->total_size ||
        h->pid_range < 1024 || h->pid_range > 65536 ||
        (h->pid_range & (h->pid_range - 1)) ||
        h->pid_range <= h->max_inflight ||
        h->slot_off_ring - h->slot_off_pids < h->pid_range / 8) {
        log_err("shm: header parameters out of bounds");
        return -1;
    }
    for (uint32_t f = 0; f < h->n_fe; f++)
        for (uint32_t w = 0; w < h->n_fo; w++)
            if (ring_check(shm_ingest(s, f, w), sizeof(ing_rec_t),
                           h->ingest_stride) ||
                ring_check(shm_reply(s, w, f), sizeof(rep_rec_t),
                           h->reply_stride) ||
                ring_check(shm_notify(s, w, f), sizeof(uint32_t),
                           h->notify_stride) ||
                ring_check(shm_bcast(s, w, f), sizeof(bc_rec_t),
                           h->bcast_stride)) {
                log_err("shm: ring header damaged (frontend %u, worker %u)",
                        f, w);
                return -1;
            }
    for (uint32_t a = 0; a < h->n_fo; a++)
        for (uint32_t b = 0; b < h->n_fo; b++)
            if (ring_check(shm_xring(s, a, b), sizeof(fo_xrec_t),
                           h->xring_stride)) {
                log_err("shm: worker ring %u -> %u damaged", a, b);
                return -1;
            }
    for (uint32_t i = 0; i < h->n_fe + h->n_fo; i++)
        if (s->arena.parts[i].magic != ARENA_MAGIC) {
            log_err("shm: arena partition %u damaged", i);
            return -1;
        }
    return 0;
}

void shm_count_release(shm_t *s, arena_h h, uint64_t *n)
{
    uint64_t k = *n;
    if (k == 0)
        return;
    *n = 0;
    ARENA_CRASH_ORDER();
    /* References to one block: no more than its 32-bit count. */
    arena_release_n(&s->arena, h, (uint32_t)k);
}

void shm_held_release(shm_t *s, proc_t *p)
{
    shm_count_release(s, p->held_h, &p->held_n);
}

void shm_wake_worker(const shm_t *s, uint32_t fo)
{
    proc_t *p = shm_fo_proc(s, fo);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__atomic_load_n(&p->sleeping, __ATOMIC_RELAXED)) {
        __atomic_add_fetch(&p->futex, 1, __ATOMIC_RELEASE);
        syscall(SYS_futex, &p->futex, FUTEX_WAKE, 1, NULL, NULL, 0);
    }
}
