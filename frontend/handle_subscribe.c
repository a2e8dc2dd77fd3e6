/*
 * handle_subscribe.c -- SUBSCRIBE and UNSUBSCRIBE: validated here, applied
 * by the owner worker, acknowledged through the client's output ring so
 * the SUBACK precedes the retained messages it brings.
 */
#include <stdio.h>
#include <string.h>

#include "fe.h"
#include "log.h"
#include "mem.h"
#include "topic.h"

/* Bytes after the fixed header of a SUBACK/UNSUBACK with n codes. */
static size_t ack_body(size_t n, bool v5)
{
    return 2 + (v5 ? 1 : 0) + n;
}

/* Writes the fixed header and packet id of a SUBACK or UNSUBACK whose n
 * reason codes are already in place after them, with an empty property
 * block for MQTT 5. */
static void ack_header(uint8_t *o, uint8_t type, uint16_t pid, size_t n,
                       bool v5)
{
    size_t body = ack_body(n, v5);
    o[0] = (uint8_t)(type << 4);
    size_t v = mqtt_varint_encode(o + 1, (uint32_t)body);
    o[1 + v] = (uint8_t)(pid >> 8);
    o[2 + v] = (uint8_t)pid;
    if (v5)
        o[3 + v] = 0; /* Property Length */
}

/* Bytes of a SUBACK/UNSUBACK with n codes. */
static size_t ack_size(size_t n, bool v5)
{
    size_t body = ack_body(n, v5);
    return 1 + mqtt_varint_size((uint32_t)body) + body;
}

/* Releases the k shared-subscription records allocated (nothing was
 * posted) and the array that held them. */
static void drop_share(arena_h *share, size_t k, const arena_h *stack)
{
    while (k > 0)
        arena_release(&fe->shm->arena, share[--k]);
    if (share != stack)
        mem_free(share);
}

int handle_subscribe(fe_conn_t *c, const mqtt_fixed_t *fh, const uint8_t *b)
{
    bool sub = fh->type == MQTT_SUBSCRIBE;
    bool v5 = c->level == MQTT_V5;
    uint16_t pid;
    mqtt_props_t pr;
    mqtt_iter_t it;
    const char *why = NULL;
    int r = sub ? mqtt_parse_subscribe(c->level, fh->flags, b, fh->remaining,
                                       &pid, &pr, &it, &why)
                : mqtt_parse_unsubscribe(c->level, fh->flags, b,
                                         fh->remaining, &pid, &pr, &it,
                                         &why);
    if (r < 0)
        return fe_bad_packet(c, sub ? "SUBSCRIBE" : "UNSUBSCRIBE", r, 0, why);
    uint32_t owner = shm_slot_owner(fe->shm, c->slot);
    if (c->pending_acks >= FE_MAX_PENDING_ACKS || !fe_post_room(owner) ||
        !fe_post_room(0)) {
        fe_pause(c);
        return 1;
    }
    uint32_t sub_id = pr.sub_id; /* 0 when absent (0 is refused) */
    /* Count entries and bytes for the blob, and the shared ones. */
    mqtt_iter_t walk = it;
    mqtt_str_t f;
    uint8_t opts;
    uint16_t foff;
    size_t n = 0, fbytes = 0, n_share = 0;
    while (mqtt_iter_next(&walk, &f, &opts)) {
        n++;
        fbytes += SUBB_ENT_HDR + f.len;
        if (topic_share_split((const char *)f.p, f.len, &foff) != 1)
            continue;
        n_share++;
        if (sub && v5 && (opts & MQTT_SUBOPT_NO_LOCAL))
            return fe_disconnect(c, MQTT5_RC_PROTOCOL_ERROR,
                                 "No Local on a shared subscription");
    }
    /* Shared filters go to worker 0 (docs/architecture.md, "Shared
     * subscriptions"): a member record each for SUBSCRIBE, a name blob
     * each for UNSUBSCRIBE; all allocated before anything is posted. */
    arena_h share_stack[8];
    arena_h *share = n_share <= 8 ? share_stack
                                  : mem_alloc(n_share * sizeof(arena_h));
    size_t k = 0;
    walk = it;
    while (k < n_share && mqtt_iter_next(&walk, &f, &opts)) {
        if (topic_share_split((const char *)f.p, f.len, &foff) != 1)
            continue;
        void *d;
        size_t sz = sub ? sizeof(fo_share_rec_t) + f.len : 2u + f.len;
        arena_h h = arena_alloc(&fe->shm->arena, fe->part, sz, &d);
        if (h == 0)
            goto full;
        if (sub) {
            uint8_t q = opts & MQTT_SUBOPT_QOS_MASK;
            fo_share_rec_t *m = d;
            memset(m, 0, sizeof(*m));
            m->slot = c->slot;
            m->epoch = c->epoch;
            m->conn_gen = c->conn_gen;
            m->sub_id = sub_id;
            m->opts = (uint8_t)((q > fe->cfg->max_qos ? fe->cfg->max_qos : q) |
                                (opts & MQTT_SUBOPT_RAP));
            m->len = f.len;
            memcpy(m->filter, f.p, f.len);
        } else {
            uint8_t *b2 = d;
            b2[0] = (uint8_t)(f.len >> 8);
            b2[1] = (uint8_t)f.len;
            memcpy(b2 + 2, f.p, f.len);
        }
        share[k++] = h;
    }
    /* SUBACK always carries a code per filter; UNSUBACK only for MQTT 5
     * (the worker sets 0x11 where nothing was subscribed). */
    size_t n_codes = sub || v5 ? n : 0;
    size_t ack_len = ack_size(n_codes, v5);
    if (fe_never_fits(12 + ack_len + fbytes)) {
        drop_share(share, k, share_stack);
        return fe_disconnect(c, MQTT5_RC_PACKET_TOO_LARGE,
                             sub ? "SUBSCRIBE with more filters than a "
                                   "frontend's share of arena_size holds"
                                 : "UNSUBSCRIBE with more filters than a "
                                   "frontend's share of arena_size holds");
    }
    void *d;
    arena_h h = arena_alloc(&fe->shm->arena, fe->part,
                            12 + ack_len + fbytes, &d);
    if (h == 0)
        goto full;
    for (size_t j = 0; j < k; j++) {
        ing_rec_t rec = {.type = sub ? ING_SHARE : ING_UNSHARE,
                         .slot = c->slot,
                         .h1 = share[j],
                         .a = c->epoch};
        fe_post(0, &rec);
    }
    if (share != share_stack)
        mem_free(share);
    uint8_t *blob = d;
    rec_wr32(blob, (uint32_t)ack_len);
    uint8_t *codes = blob + 4 + (ack_len - n_codes);
    uint8_t *ents = blob + 12 + ack_len;
    uint32_t kept = 0;
    size_t i = 0;
    walk = it;
    while (mqtt_iter_next(&walk, &f, &opts)) {
        uint8_t code;
        int shared = topic_share_split((const char *)f.p, f.len, &foff);
        uint8_t qos = opts & MQTT_SUBOPT_QOS_MASK;
        if (qos > fe->cfg->max_qos)
            qos = fe->cfg->max_qos;
        if (shared < 0 || !topic_filter_valid((const char *)f.p, f.len))
            code = v5 ? MQTT5_RC_TOPIC_FILTER_INVALID : MQTT_SUBACK_FAILURE;
        else
            code = sub ? qos : MQTT5_RC_SUCCESS;
        if (n_codes)
            codes[i] = code;
        if (sub && (log_types() & LOG_T_SUBSCRIBE))
            log_msg(LOG_T_SUBSCRIBE, "%s %u %.*s", c->client_id, code,
                    (int)f.len, (const char *)f.p);
        else if (!sub && (log_types() & LOG_T_UNSUBSCRIBE))
            log_msg(LOG_T_UNSUBSCRIBE, "%s %.*s", c->client_id, (int)f.len,
                    (const char *)f.p);
        i++;
        if (code >= 0x80)
            continue;
        /* A shared filter is also kept in the session (for its UNSUBACK
         * and the session's subscription list), not matched there:
         * worker 0 serves it (posted above). */
        ents[0] = sub ? (uint8_t)(qos | (opts & (uint8_t)~MQTT_SUBOPT_QOS_MASK))
                      : 0;
        rec_wr32(ents + 1, (uint32_t)(i - 1)); /* index of its code */
        rec_wr32(ents + 5, sub ? sub_id : 0);
        ents[9] = (uint8_t)(f.len >> 8);
        ents[10] = (uint8_t)f.len;
        memcpy(ents + SUBB_ENT_HDR, f.p, f.len);
        ents += SUBB_ENT_HDR + f.len;
        kept++;
    }
    /* The codes are already in place after the header: write the header
     * around them. */
    ack_header(blob + 4, sub ? MQTT_SUBACK : MQTT_UNSUBACK, pid, n_codes,
               v5);
    rec_wr32(blob + 4 + ack_len, (uint32_t)n_codes);
    rec_wr32(blob + 8 + ack_len, kept);
    ing_rec_t rec = {.type = sub ? ING_SUBSCRIBE : ING_UNSUBSCRIBE,
                     .slot = c->slot,
                     .h1 = h,
                     .a = c->conn_gen};
    fe_post(owner, &rec);
    c->pending_acks++;
    return 0;
full:
    /* The arena is full: nothing was posted; retry shortly. */
    drop_share(share, k, share_stack);
    fe_pause_arena_full(c);
    return 1;
}
