/*
 * handle_subscribe.c -- SUBSCRIBE and UNSUBSCRIBE: validated here, applied
 * by the owner worker, acknowledged through the client's output ring so
 * the SUBACK precedes the retained messages it brings.
 */
#include <stdio.h>
#include <string.h>

#include "fe.h"
#include "log.h"
#include "topic.h"

int handle_subscribe(fe_conn_t *c, const mqtt_fixed_t *fh, const uint8_t *b)
{
    bool sub = fh->type == MQTT_SUBSCRIBE;
    uint16_t pid;
    mqtt_iter_t it;
    const char *why = NULL;
    int r = sub ? mqtt_parse_subscribe(fh->flags, b, fh->remaining, &pid,
                                       &it, &why)
                : mqtt_parse_unsubscribe(fh->flags, b, fh->remaining, &pid,
                                         &it, &why);
    if (r < 0) {
        char msg[128];
        snprintf(msg, sizeof(msg), "bad %s: %s",
                 sub ? "SUBSCRIBE" : "UNSUBSCRIBE", why);
        fe_close(c, false, msg);
        return -1;
    }
    uint32_t owner = shm_slot_owner(fe->shm, c->slot);
    if (c->pending_acks >= FE_MAX_PENDING_ACKS || !fe_post_room(owner)) {
        fe_pause(c);
        return 1;
    }
    /* Count entries and bytes for the blob. */
    mqtt_iter_t walk = it;
    mqtt_str_t f;
    uint8_t qos;
    size_t n = 0, fbytes = 0;
    while (mqtt_iter_next(&walk, &f, &qos)) {
        n++;
        fbytes += SUBB_ENT_HDR + f.len;
    }
    size_t ack_len = sub ? mqtt_suback_size(n) : 4;
    void *d;
    arena_h h = arena_alloc(&fe->shm->arena, fe->part,
                            12 + ack_len + fbytes, &d);
    if (h == 0) {
        fe_pause(c);
        return 1;
    }
    uint8_t *blob = d;
    rec_wr32(blob, (uint32_t)ack_len);
    uint8_t *codes = sub ? blob + 4 + (ack_len - n) : NULL; /* SUBACK codes */
    uint8_t *ents = blob + 12 + ack_len;
    uint32_t kept = 0;
    size_t i = 0;
    walk = it;
    while (mqtt_iter_next(&walk, &f, &qos)) {
        bool ok = topic_filter_valid((const char *)f.p, f.len);
        if (sub) {
            codes[i] = ok ? qos : MQTT_SUBACK_FAILURE;
            if (log_types() & LOG_T_SUBSCRIBE)
                log_msg(LOG_T_SUBSCRIBE, "%s %u %.*s", c->client_id,
                        ok ? qos : 0x80, (int)f.len, (const char *)f.p);
        } else if (log_types() & LOG_T_UNSUBSCRIBE) {
            log_msg(LOG_T_UNSUBSCRIBE, "%s %.*s", c->client_id, (int)f.len,
                    (const char *)f.p);
        }
        i++;
        if (!ok)
            continue;
        ents[0] = qos;
        rec_wr32(ents + 1, (uint32_t)(i - 1)); /* index of its SUBACK code */
        ents[5] = (uint8_t)(f.len >> 8);
        ents[6] = (uint8_t)f.len;
        memcpy(ents + SUBB_ENT_HDR, f.p, f.len);
        ents += SUBB_ENT_HDR + f.len;
        kept++;
    }
    if (sub) {
        /* The codes are already in place after the header: write the
         * header around them (mqtt_write_suback would copy them onto
         * themselves). */
        uint8_t *o = blob + 4;
        o[0] = MQTT_SUBACK << 4;
        size_t v = mqtt_varint_encode(o + 1, (uint32_t)(n + 2));
        o[1 + v] = (uint8_t)(pid >> 8);
        o[2 + v] = (uint8_t)pid;
    } else {
        mqtt_write_ack(blob + 4, MQTT_UNSUBACK, pid);
    }
    rec_wr32(blob + 4 + ack_len, sub ? (uint32_t)n : 0);
    rec_wr32(blob + 8 + ack_len, kept);
    ing_rec_t rec = {.type = sub ? ING_SUBSCRIBE : ING_UNSUBSCRIBE,
                     .slot = c->slot,
                     .h1 = h,
                     .a = c->conn_gen};
    fe_post(owner, &rec);
    c->pending_acks++;
    return 0;
}
