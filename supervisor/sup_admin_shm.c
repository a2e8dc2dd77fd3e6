/*
 * sup_admin_shm.c -- how the supervisor reads shared memory for the admin
 * socket (see sup_admin_shm.h): relaxed loads of single fields, checked
 * and bounded copies of arena blobs, bounded chain walks, and mincore() so
 * that never-used slots are not faulted in.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "log.h"
#include "mem.h"
#include "mqtt.h"
#include "records.h"
#include "sup_admin_req.h"
#include "sup_admin_shm.h"

/* A single field written by another process: one untorn load. */
#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

#define SUP_SCAN_CHUNK 4096    /* slots per mincore() call */
#define SUP_SCAN_STRIDE_MAX 32 /* pages per slot up to which one call
                                  covers a whole chunk of slots */

static uint8_t *seen;     /* bitmap: slots known to be resident */
static uint32_t seen_cap; /* slots the bitmap covers */
static uintptr_t page_size;
static unsigned char *vec;
static size_t vec_cap;

static bool is_seen(uint32_t i)
{
    return (seen[i >> 3] >> (i & 7)) & 1;
}

/* Pages [lo, hi) of the slot headers of slots [i0, i1). */
static void chunk_range(const shm_t *shm, uint32_t i0, uint32_t i1,
                        uintptr_t *lo, uintptr_t *hi)
{
    *lo = (uintptr_t)shm_slot(shm, i0) & ~(page_size - 1);
    *hi = ((uintptr_t)shm_slot(shm, i1 - 1) + sizeof(sess_slot_t) +
           page_size - 1) & ~(page_size - 1);
}

void sup_shm_refresh(const shm_t *shm)
{
    if (seen == NULL) {
        seen_cap = shm->hdr->max_clients;
        seen = mem_calloc(seen_cap / 8 + 1, 1);
        long ps = sysconf(_SC_PAGESIZE);
        page_size = ps > 0 ? (uintptr_t)ps : 4096;
    }
    /* A slot whose header pages exist was used at least once.  Reading
     * an untouched page of the memfd would allocate it; mincore() tells
     * without touching, a chunk of slots per call.  A slot once resident
     * stays so (shared memory is never given back): those are not asked
     * about again. */
    for (uint32_t i0 = 0; i0 < seen_cap; i0 += SUP_SCAN_CHUNK) {
        uint32_t i1 = i0 + SUP_SCAN_CHUNK < seen_cap ? i0 + SUP_SCAN_CHUNK
                                                     : seen_cap;
        uint32_t i;
        for (i = i0; i < i1 && is_seen(i); i++)
            ;
        if (i == i1)
            continue;
        uintptr_t lo, hi;
        if (shm->hdr->slot_stride > SUP_SCAN_STRIDE_MAX * page_size) {
            /* Large slots (long queues): ask only about the header pages,
             * one call per slot. */
            for (i = i0; i < i1; i++) {
                unsigned char v[4];
                if (is_seen(i))
                    continue;
                chunk_range(shm, i, i + 1, &lo, &hi);
                if ((hi - lo) / page_size > sizeof(v) ||
                    mincore((void *)lo, hi - lo, v) < 0) {
                    seen[i >> 3] |= (uint8_t)(1u << (i & 7));
                    continue;
                }
                bool all = true;
                for (size_t p = 0; p < (hi - lo) / page_size; p++)
                    all = all && (v[p] & 1);
                if (all)
                    seen[i >> 3] |= (uint8_t)(1u << (i & 7));
            }
            continue;
        }
        chunk_range(shm, i0, i1, &lo, &hi);
        size_t pages = (hi - lo) / page_size;
        if (pages > vec_cap) {
            mem_free(vec);
            vec = mem_alloc(pages);
            vec_cap = pages;
        }
        if (mincore((void *)lo, hi - lo, vec) < 0) {
            /* Without mincore every slot is read (and faulted in once). */
            static bool warned;
            if (!warned)
                log_warn("mincore() failed: %s; admin scans touch every "
                         "session slot", strerror(errno));
            warned = true;
            memset(seen + i0 / 8, 0xff, (i1 - i0 + 7) / 8);
            continue;
        }
        for (i = i0; i < i1; i++) {
            if (is_seen(i))
                continue;
            uintptr_t a = (uintptr_t)shm_slot(shm, i);
            size_t p0 = ((a & ~(page_size - 1)) - lo) / page_size;
            size_t p1 = ((a + sizeof(sess_slot_t) - 1) & ~(page_size - 1));
            p1 = (p1 - lo) / page_size;
            bool all = true;
            for (size_t p = p0; p <= p1; p++)
                all = all && (vec[p] & 1);
            if (all)
                seen[i >> 3] |= (uint8_t)(1u << (i & 7));
        }
    }
}

/* True when slot i was found resident by the last sup_shm_refresh(). */
static bool slot_touched(const shm_t *shm, uint32_t i)
{
    (void)shm;
    return seen != NULL && i < seen_cap && is_seen(i);
}

/* Blob h and its length, or NULL when h is stale or out of bounds. */
static const uint8_t *blob_at(const shm_t *shm, arena_h h, uint32_t *len)
{
    if (h == 0)
        return NULL;
    const uint8_t *p = arena_get(&shm->arena, h, len);
    if (p == NULL)
        return NULL;
    /* arena_get() checked the block against its partition; check again
     * against the arena itself, so a copy stays inside the mapping
     * whatever the block header said. */
    uint64_t off = (uint64_t)(p - shm->base);
    if (off < shm->arena.lo || off > shm->arena.hi ||
        *len > shm->arena.hi - off)
        return NULL;
    return p;
}

/* Copies blob h (at most cap bytes) into buf.  Returns the bytes copied
 * and sets *full to the blob's length, or -1 when h is stale. */
static long copy_into(const shm_t *shm, arena_h h, void *buf, size_t cap,
                      uint32_t *full)
{
    uint32_t len;
    const uint8_t *p = blob_at(shm, h, &len);
    if (p == NULL)
        return -1;
    size_t n = len < cap ? len : cap;
    memcpy(buf, p, n);
    if (full)
        *full = len;
    return (long)n;
}

uint8_t *sup_shm_copy(const shm_t *shm, arena_h h, size_t max,
                      uint32_t *len, uint32_t *full)
{
    uint32_t size;
    if (h == 0 || arena_get(&shm->arena, h, &size) == NULL)
        return NULL;
    size_t cap = size < max ? size : max;
    uint8_t *buf = mem_alloc(cap ? cap : 1);
    long n = copy_into(shm, h, buf, cap, full);
    if (n < 0) {
        mem_free(buf);
        return NULL;
    }
    *len = (uint32_t)n;
    return buf;
}

uint8_t *sup_shm_copy_msg(const shm_t *shm, arena_h h, size_t max,
                          uint32_t *len, uint32_t *full)
{
    uint32_t size;
    const uint8_t *p = blob_at(shm, h, &size);
    if (p == NULL || size < MSG_HDR || max < MSG_HDR)
        return NULL;
    uint32_t w[4];
    memcpy(w, p, sizeof(w));
    uint32_t span = w[3];
    if (span > size - MSG_HDR)
        return NULL;
    uint32_t rest = size - MSG_HDR - span; /* packet header, topic, payload */
    size_t cap = MSG_HDR + (rest < max - MSG_HDR ? rest : max - MSG_HDR);
    uint8_t *buf = mem_alloc(cap);
    w[3] = 0;
    memcpy(buf, w, sizeof(w));
    memcpy(buf + MSG_HDR, p + MSG_HDR + span, cap - MSG_HDR);
    *len = (uint32_t)cap;
    *full = size - span;
    return buf;
}

uint32_t sup_shm_ring_used(const ring_t *r)
{
    /* Tail first: both only grow, so head loaded later is >= tail. */
    uint64_t tail = LOAD(r->tail);
    uint64_t head = LOAD(r->head);
    uint32_t cap = LOAD(r->cap);
    if (head < tail)
        return 0;
    return head - tail > cap ? cap : (uint32_t)(head - tail);
}

int sup_shm_slot_read(const shm_t *shm, uint32_t i, sup_slot_t *v)
{
    if (i >= shm->hdr->max_clients || !slot_touched(shm, i))
        return -1;
    sess_slot_t *s = shm_slot(shm, i);
    uint32_t st = LOAD(s->state);
    if (st != SESS_ONLINE && st != SESS_HANDOFF && st != SESS_OFFLINE)
        return -1;
    v->slot = i;
    v->state = st;
    v->conn_gen = LOAD(s->conn_gen);
    v->host_fe = LOAD(s->host_fe);
    v->clean = LOAD(s->clean) != 0;
    v->level = LOAD(s->level);
    v->keepalive = LOAD(s->keepalive);
    v->inflight = LOAD(s->n_inflight);
    v->connected_at = LOAD(s->connected_at);
    v->offline_since = LOAD(s->offline_since);
    v->subs = LOAD(s->subs);
    v->queued = sup_shm_ring_used(sess_ring(shm, i));
    char peer[sizeof(s->peer)];
    memcpy(peer, (const char *)s->peer, sizeof(peer));
    adm_utf8_sanitize(peer, strnlen(peer, sizeof(peer)), v->peer,
                      sizeof(v->peer));
    /* The client-id blob: [u16 len][id]. */
    uint8_t buf[2 + SUP_ID_MAX];
    uint32_t full;
    long n = copy_into(shm, LOAD(s->client_id), buf, sizeof(buf), &full);
    if (n < 2)
        return -1;
    uint32_t idlen = (uint32_t)(buf[0] << 8 | buf[1]);
    if (2 + idlen > (uint32_t)n)
        return -1;
    memcpy(v->id, buf + 2, idlen);
    v->id[idlen] = '\0';
    v->id_len = idlen;
    return 0;
}

uint32_t sup_shm_subs_walk(const shm_t *shm, const sup_slot_t *v,
                           uint32_t max, sup_sub_fn fn, void *arg)
{
    static uint8_t *buf;
    const size_t cap = offsetof(sess_sub_t, filter) + 65535;
    if (buf == NULL)
        buf = mem_alloc(cap);
    arena_h h = v->subs;
    uint32_t n = 0;
    /* Bounded: a chain changing under us ends at a stale handle (every
     * allocation has a fresh generation), and never runs longer than
     * SUP_SUBS_WALK_MAX records. */
    for (uint32_t steps = 0; h && steps < SUP_SUBS_WALK_MAX && n < max;
         steps++) {
        long got = copy_into(shm, h, buf, cap, NULL);
        if (got < (long)offsetof(sess_sub_t, filter))
            break;
        sess_sub_t hdr;
        memcpy(&hdr, buf, offsetof(sess_sub_t, filter));
        if (hdr.len == 0 || (hdr.opts & MQTT_SUBOPT_QOS_MASK) > 2 ||
            offsetof(sess_sub_t, filter) + hdr.len > (size_t)got)
            break;
        n++;
        if (fn(arg, (const char *)buf + offsetof(sess_sub_t, filter),
               hdr.len, hdr.opts & MQTT_SUBOPT_QOS_MASK))
            break;
        h = hdr.next;
    }
    return n;
}
