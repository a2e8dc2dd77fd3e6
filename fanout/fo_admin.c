/*
 * fo_admin.c -- what a fan-out worker does for the admin socket: it reads
 * the request the supervisor left in its mailbox (shm_mbox_t), executes it
 * between two passes over its ingest rings, and acknowledges it.  Requests:
 * free an offline session, list, get and delete retained messages.
 *
 * NOTES
 *   Owns: the child half of its own mailbox (ack_seq, rc, aux, reply);
 *   reply blobs it allocates in its arena partition until the supervisor
 *   releases them.
 *   Reads: the supervisor half of its mailbox, after the acquire load of
 *   req_seq.
 *   Never touches: other processes' mailboxes.
 */
#include <stdbool.h>
#include <string.h>

#include "fo_admin.h"
#include "log.h"
#include "mem.h"
#include "topic.h"

/* Payload bytes of retained message h (0 when its handle went stale). */
static uint32_t ret_payload_len(fo_t *fo, arena_h h)
{
    uint32_t len;
    const uint8_t *m = arena_get(&fo->shm->arena, h, &len);
    return m == NULL ? 0 : msg_payload_len(m, len);
}

/* MBOX_RET_LIST: one page of the retained topics matching the filter in
 * the mailbox (all when empty), as an shm_ret_list_t blob. */
static int ret_list(fo_t *fo, shm_mbox_t *m, arena_h *reply)
{
    const char *filter = m->arg;
    uint32_t flen = m->arg_len;
    if (flen > SHM_MBOX_ARG || (flen && !topic_filter_valid(filter, flen)))
        return MBOX_BAD;
    /* First pass: count the matches and size the page. */
    uint32_t total = 0, n = 0;
    size_t bytes = sizeof(shm_ret_list_t);
    size_t i;
    bool full = false; /* the page ends at the first entry that does not
                          fit: the second pass takes n entries in a row */
    for (strmap_ent_t *e = strmap_first(&fo->retained, &i); e;
         e = strmap_next(&fo->retained, e, &i)) {
        if (flen && !topic_matches(filter, flen, e->key, e->len))
            continue;
        if (total >= m->offset && n < m->limit && !full) {
            if (bytes + sizeof(shm_ret_ent_t) + e->len <=
                SHM_MBOX_REPLY_MAX) {
                bytes += sizeof(shm_ret_ent_t) + e->len;
                n++;
            } else {
                full = true;
            }
        }
        total++;
    }
    void *d;
    arena_h h = arena_alloc(&fo->shm->arena, fo->part, bytes, &d);
    if (h == 0)
        return MBOX_AGAIN;
    uint8_t *out = d;
    shm_ret_list_t hdr = {.total = total, .n = n};
    memcpy(out, &hdr, sizeof(hdr));
    size_t at = sizeof(hdr);
    uint32_t seen = 0, put = 0;
    for (strmap_ent_t *e = strmap_first(&fo->retained, &i); e && put < n;
         e = strmap_next(&fo->retained, e, &i)) {
        if (flen && !topic_matches(filter, flen, e->key, e->len))
            continue;
        if (seen++ < m->offset)
            continue;
        if (at + sizeof(shm_ret_ent_t) + e->len > bytes)
            break; /* cannot happen: the first pass sized the page */
        arena_h rh = 0;
        uint8_t rq = 0;
        fo_ret_at(fo, (arena_h)e->val, &rh, &rq);
        shm_ret_ent_t ent = {.qos = rq,
                             .topic_len = (uint16_t)e->len,
                             .payload_len = ret_payload_len(fo, rh)};
        memcpy(out + at, &ent, sizeof(ent));
        memcpy(out + at + sizeof(ent), e->key, e->len);
        at += sizeof(ent) + e->len;
        put++;
    }
    if (put < n) {
        /* Keep the header true to what follows. */
        hdr.n = put;
        memcpy(out, &hdr, sizeof(hdr));
    }
    *reply = h;
    return MBOX_OK;
}

/* MBOX_RET_GET: a reference to the retained message of the topic, its QoS
 * in aux. */
static int ret_get(fo_t *fo, shm_mbox_t *m, arena_h *reply, uint32_t *aux)
{
    if (m->arg_len == 0 || m->arg_len > SHM_MBOX_ARG)
        return MBOX_BAD;
    strmap_ent_t *e = strmap_get(&fo->retained, m->arg, m->arg_len);
    if (e == NULL)
        return MBOX_NOT_FOUND;
    arena_h rh;
    uint8_t rq;
    if (fo_ret_at(fo, (arena_h)e->val, &rh, &rq) < 0 ||
        arena_get(&fo->shm->arena, rh, NULL) == NULL)
        return MBOX_NOT_FOUND;
    /* The supervisor releases this reference after copying. */
    arena_ref_add(&fo->shm->arena, rh, 1);
    *reply = rh;
    *aux = rq;
    return MBOX_OK;
}

/* MBOX_RET_DEL: forgets the retained message of the topic. */
static int ret_del(fo_t *fo, shm_mbox_t *m)
{
    if (m->arg_len == 0 || m->arg_len > SHM_MBOX_ARG)
        return MBOX_BAD;
    strmap_ent_t *e = strmap_get(&fo->retained, m->arg, m->arg_len);
    if (e == NULL)
        return MBOX_NOT_FOUND;
    fo_ret_set(fo, m->arg, (uint16_t)m->arg_len, 0, 0, 1);
    log_notice("retained message on %.*s deleted by the administrator",
               (int)m->arg_len, m->arg);
    return MBOX_OK;
}

void fo_admin_poll(fo_t *fo)
{
    shm_mbox_t *m = shm_fo_mbox(fo->shm, fo->idx);
    /* Acquire: pairs with the supervisor's release store of req_seq, so
     * the request fields it wrote before are visible. */
    uint32_t seq = __atomic_load_n(&m->req_seq, __ATOMIC_ACQUIRE);
    if (seq == m->ack_seq)
        return;
    arena_h reply = 0;
    uint32_t aux = 0;
    int rc;
    switch (m->op) {
    case MBOX_EXPIRE:
        rc = fo_session_discard(fo, m->slot, m->conn_gen) == 0
                 ? MBOX_OK
                 : MBOX_NOT_FOUND;
        break;
    case MBOX_RET_LIST:
        rc = ret_list(fo, m, &reply);
        break;
    case MBOX_RET_GET:
        rc = ret_get(fo, m, &reply, &aux);
        break;
    case MBOX_RET_DEL:
        rc = ret_del(fo, m);
        break;
    default:
        log_err("admin request of unknown type %u ignored", m->op);
        rc = MBOX_BAD;
    }
    m->rc = rc;
    m->aux = aux;
    m->reply = reply;
    /* Release: rc, aux, reply and the reply blob's bytes are visible
     * before the acknowledgement (pairs with the supervisor's acquire load
     * of ack_seq). */
    __atomic_store_n(&m->ack_seq, seq, __ATOMIC_RELEASE);
}
