/*
 * sup_admin_shm.h -- the one way the supervisor reads shared memory for
 * the admin socket: counters and slot fields by plain (relaxed) loads,
 * arena blobs (client ids, subscription records, replies) only through
 * arena_get() and a bounded, length-checked copy, subscription chains with
 * a bounded walk.  A concurrent change can make an answer momentarily
 * stale; it can never make the supervisor crash, hang or read outside the
 * mapping.  Slots whose pages were never touched are skipped without
 * touching them (mincore), so a scan costs no shared memory.
 */
#ifndef RINGMQ_SUP_ADMIN_SHM_H
#define RINGMQ_SUP_ADMIN_SHM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shm.h"

#define SUP_ID_MAX 65535           /* bytes of a client id */
#define SUP_SUBS_WALK_MAX 1000000u /* records followed in one chain */

/* A copy of one session slot, as far as the admin socket shows it. */
typedef struct sup_slot {
    uint32_t slot;
    uint32_t state;       /* SESS_ONLINE, SESS_HANDOFF, SESS_OFFLINE */
    uint32_t conn_gen;
    uint32_t host_fe;
    bool clean;
    uint8_t level;        /* MQTT_V31, MQTT_V311 */
    uint16_t keepalive;
    uint32_t inflight;
    uint32_t queued;      /* deliveries waiting in the data ring */
    uint64_t connected_at;
    uint64_t offline_since;
    arena_h subs;
    char peer[64];        /* sanitized, NUL-terminated */
    uint32_t id_len;
    char id[SUP_ID_MAX + 1]; /* raw bytes, NUL-terminated */
} sup_slot_t;

/*
 * Finds out, without touching them, which slots were ever used (mincore
 * over the slot table, slots already known skipped).  Call once before a
 * scan: sup_shm_slot_read() only reads slots found so far.
 */
void sup_shm_refresh(const shm_t *shm);

/*
 * Reads slot i into v.  Returns 0 when the slot holds a session (online,
 * taken over or offline) whose client id could be read, -1 otherwise
 * (free, never used, or changing under us).
 */
int sup_shm_slot_read(const shm_t *shm, uint32_t i, sup_slot_t *v);

/* Called per subscription record: filter (len bytes, raw) and QoS.
 * Returns 0 to go on, non-zero to stop. */
typedef int (*sup_sub_fn)(void *arg, const char *filter, uint16_t len,
                          uint8_t qos);

/*
 * Walks the subscription chain of v (read by sup_shm_slot_read), at most
 * max records.  Stops early at a stale or malformed record.  Returns the
 * number of records reported.
 */
uint32_t sup_shm_subs_walk(const shm_t *shm, const sup_slot_t *v,
                           uint32_t max, sup_sub_fn fn, void *arg);

/*
 * Copies the arena blob h, at most max bytes, into a new buffer (free with
 * mem_free) and sets *len to the bytes copied and *full (if not NULL) to
 * the blob's length.  Returns NULL when h is stale or out of bounds.
 */
uint8_t *sup_shm_copy(const shm_t *shm, arena_h h, size_t max,
                      uint32_t *len, uint32_t *full);

/*
 * sup_shm_copy() for message h (records.h) without its span of forwarded
 * properties, however long that is: header (span length 0), packet
 * header, topic and payload, at most max bytes in all.  *full is the
 * length the copy would have whole.  NULL when h is stale or not a
 * message.
 */
uint8_t *sup_shm_copy_msg(const shm_t *shm, arena_h h, size_t max,
                          uint32_t *len, uint32_t *full);

/* Records in ring r as its reader would count them, clamped to its
 * capacity (head and tail are loaded separately). */
uint32_t sup_shm_ring_used(const ring_t *r);

#endif
