/*
 * handle_publish.c -- PUBLISH from a client (QoS 0, 1, 2 with exactly-once
 * for QoS 2) and the acknowledgements of both directions: PUBACK, PUBREC,
 * PUBREL, PUBCOMP.
 */
#include <stdio.h>
#include <string.h>

#include "crashpoint.h"
#include "fe.h"
#include "log.h"

static int send_ack(fe_conn_t *c, uint8_t type, uint16_t pid)
{
    uint8_t out[4];
    return fe_out_bytes(c, out, mqtt_write_ack(out, type, pid));
}

static bool qos2_test(fe_conn_t *c, uint16_t pid)
{
    return (sess_qos2(fe->shm, c->slot)[pid >> 3] >> (pid & 7)) & 1;
}

static void qos2_set(fe_conn_t *c, uint16_t pid, bool on)
{
    uint8_t *b = &sess_qos2(fe->shm, c->slot)[pid >> 3];
    uint8_t bit = (uint8_t)(1u << (pid & 7));
    sess_slot_t *s = shm_slot(fe->shm, c->slot);
    if (on && !(*b & bit)) {
        *b |= bit;
        s->n_qos2++;
    } else if (!on && (*b & bit)) {
        *b &= (uint8_t)~bit;
        s->n_qos2--;
    }
}

int handle_publish(fe_conn_t *c, const mqtt_fixed_t *fh, const uint8_t *b)
{
    mqtt_publish_t p;
    const char *why = NULL;
    if (mqtt_parse_publish(fh->flags, b, fh->remaining, &p, &why) < 0) {
        char msg[128];
        snprintf(msg, sizeof(msg), "bad PUBLISH: %s", why);
        fe_close(c, false, msg);
        return -1;
    }
    if (p.retain && !fe->cfg->retain_available) {
        fe_close(c, false, "retained PUBLISH while retain_available is "
                           "false");
        return -1;
    }
    /* Room for the acknowledgement first: a client that does not read
     * stops being read. */
    if (!fe_out_room(c, 1, 4)) {
        fe_pause(c);
        return 1;
    }
    if (fe->cfg->message_size_limit &&
        p.payload_len > fe->cfg->message_size_limit) {
        log_notice("Client %s sent a %zu-byte payload over "
                   "message_size_limit; dropped.",
                   c->client_id, p.payload_len);
        fe->proc->drops_size++;
        goto ack;
    }
    if (p.qos == 2 && qos2_test(c, p.pid))
        goto ack; /* already forwarded, waiting for PUBREL */
    if (!fe_post_room_all()) {
        fe_pause(c);
        return 1;
    }
    void *d;
    arena_h h = arena_alloc(&fe->shm->arena, fe->part,
                            2 + (size_t)p.topic.len + p.payload_len, &d);
    if (h == 0) {
        fe_pause(c); /* arena full: back-pressure, retry shortly */
        return 1;
    }
    uint8_t *m = d;
    m[0] = (uint8_t)(p.topic.len >> 8);
    m[1] = (uint8_t)p.topic.len;
    memcpy(m + 2, p.topic.p, p.topic.len);
    if (p.payload_len)
        memcpy(m + 2 + p.topic.len, p.payload, p.payload_len);
    sess_slot_t *s = shm_slot(fe->shm, c->slot);
    if (p.qos == 2) {
        /* Posting and remembering the id are two steps: the slot says
         * which message is being posted, so a frontend killed in between
         * is finished by the next one (fe_recover.c), never forwarded
         * twice when the client sends it again. */
        s->in_pid = p.pid;
        s->in_h = h;
        ARENA_CRASH_ORDER();
        s->in_posting = 1;
        ARENA_CRASH_ORDER();
    }
    fe_post_publish(c, h, p.qos, p.retain);
    fe->proc->msgs_in_qos[p.qos]++;
    if (p.qos == 2) {
        CRASH_POINT("fe_qos2_posted");
        qos2_set(c, p.pid, true);
        ARENA_CRASH_ORDER();
        s->in_posting = 0;
    }
ack:
    if (p.qos == 1)
        send_ack(c, MQTT_PUBACK, p.pid);
    else if (p.qos == 2)
        send_ack(c, MQTT_PUBREC, p.pid);
    return 0;
}

int handle_ack(fe_conn_t *c, const mqtt_fixed_t *fh, const uint8_t *b)
{
    uint16_t pid;
    const char *why = NULL;
    if (mqtt_parse_ack(fh->type, fh->flags, b, fh->remaining, &pid, &why) <
        0) {
        char msg[128];
        snprintf(msg, sizeof(msg), "bad acknowledgement: %s", why);
        fe_close(c, false, msg);
        return -1;
    }
    if ((fh->type == MQTT_PUBREC || fh->type == MQTT_PUBREL) &&
        !fe_out_room(c, 1, 4)) {
        fe_pause(c);
        return 1;
    }
    sess_inflight_t *e;
    switch (fh->type) {
    case MQTT_PUBACK:
        e = sess_inf_find(fe->shm, c->slot, pid);
        if (e && e->qos == 1)
            sess_inf_done(fe->shm, c->slot, e);
        else
            log_debug("Client %s: PUBACK for unknown packet id %u",
                      c->client_id, pid);
        break;
    case MQTT_PUBREC:
        e = sess_inf_find(fe->shm, c->slot, pid);
        if (e && e->qos == 2 && e->state == INF_SENT) {
            /* The message itself is no longer needed, only the id.  The
             * entry lets go of it before the release (crash order). */
            arena_h h = e->h;
            e->h = 0;
            e->state = INF_PUBREC;
            ARENA_CRASH_ORDER();
            arena_release(&fe->shm->arena, h);
        }
        send_ack(c, MQTT_PUBREL, pid);
        break;
    case MQTT_PUBCOMP:
        e = sess_inf_find(fe->shm, c->slot, pid);
        if (e && e->qos == 2)
            sess_inf_done(fe->shm, c->slot, e);
        break;
    case MQTT_PUBREL:
        qos2_set(c, pid, false);
        send_ack(c, MQTT_PUBCOMP, pid);
        return 0;
    }
    /* A freed inflight entry may unblock the output ring. */
    if (c->inflight_blocked)
        return fe_drain_slot(c);
    return 0;
}
