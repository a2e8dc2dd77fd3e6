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
#include "mem.h"
#include "panic.h"
#include "topic.h"

/* Queues an acknowledgement; MQTT 5 gets reason code rc (3.1.1 has
 * none) and, for a client that asked for problem information and when
 * the queue has room, the Reason String why.  The caller checked the room
 * for the code alone (1 iovec, 5 bytes). */
static int send_ack(fe_conn_t *c, uint8_t type, uint16_t pid, uint8_t rc,
                    const char *why)
{
    uint8_t out[128];
    if (c->level != MQTT_V5)
        return fe_out_bytes(c, out, mqtt_write_ack(out, type, pid));
    if (why && !(c->problem_info && fe_out_room(c, 1, sizeof(out))))
        why = NULL;
    size_t n = mqtt_write_ack_rc(out, sizeof(out), type, pid, rc, why);
    if (c->max_pkt && n > c->max_pkt) /* the string goes (3.4.2.2.2) */
        n = mqtt_write_ack_rc(out, sizeof(out), type, pid, rc, NULL);
    return fe_out_bytes(c, out, n);
}

/* Resolves an MQTT 5 Topic Alias of PUBLISH p: sets the alias to the
 * topic, or the empty topic to the alias's.  Returns 0, or -1 when c was
 * closed (alias 0 is refused by the parser already). */
static int topic_alias(fe_conn_t *c, mqtt_publish_t *p)
{
    uint16_t alias = p->props.topic_alias;
    if (!(p->props.present & MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS))) {
        if (p->topic.len == 0)
            return fe_disconnect(c, MQTT5_RC_PROTOCOL_ERROR,
                                 "PUBLISH with an empty topic and no "
                                 "Topic Alias");
        return 0;
    }
    if (alias > fe->cfg->max_topic_alias)
        return fe_disconnect(c, MQTT5_RC_TOPIC_ALIAS_INVALID,
                             "Topic Alias above max_topic_alias");
    if (c->alias == NULL) {
        c->n_alias = fe->cfg->max_topic_alias;
        c->alias = mem_calloc((size_t)c->n_alias + 1, sizeof(c->alias[0]));
    }
    fe_alias_t *e = &c->alias[alias];
    if (p->topic.len == 0) {
        if (e->topic == NULL)
            return fe_disconnect(c, MQTT5_RC_PROTOCOL_ERROR,
                                 "PUBLISH with a Topic Alias never set");
        p->topic.p = (const uint8_t *)e->topic;
        p->topic.len = e->len;
        return 0;
    }
    if (e->len != p->topic.len || e->topic == NULL ||
        memcmp(e->topic, p->topic.p, p->topic.len) != 0) {
        mem_free(e->topic);
        e->topic = mem_strndup((const char *)p->topic.p, p->topic.len);
        e->len = p->topic.len;
    }
    return 0;
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
    int r = mqtt_parse_publish(c->level, fh->flags, b, fh->remaining, &p,
                               &why);
    if (r < 0) /* p.reason: 0x94 for a Topic Alias of 0 */
        return fe_bad_packet(c, "PUBLISH", r, p.reason, why);
    if (p.retain && !fe->cfg->retain_available)
        return fe_disconnect(c, MQTT5_RC_RETAIN_NOT_SUPPORTED,
                             "retained PUBLISH while retain_available is "
                             "false");
    if (p.qos > fe->cfg->max_qos)
        return fe_disconnect(c, MQTT5_RC_QOS_NOT_SUPPORTED,
                             "PUBLISH QoS above max_qos");
    if (c->level == MQTT_V5 && topic_alias(c, &p) < 0)
        return -1;
    /* Room for the acknowledgement first: a client that does not read
     * stops being read. */
    if (!fe_out_room(c, 1, 5)) {
        fe_pause(c);
        return 1;
    }
    uint8_t rc = MQTT5_RC_SUCCESS;
    const char *rc_why = NULL;
    if (fe->cfg->message_size_limit &&
        p.payload_len > fe->cfg->message_size_limit) {
        log_notice("Client %s sent a %zu-byte payload over "
                   "message_size_limit; dropped.",
                   c->client_id, p.payload_len);
        fe->proc->drops_size++;
        rc = MQTT5_RC_QUOTA_EXCEEDED;
        rc_why = "payload larger than message_size_limit";
        goto ack;
    }
    if (topic_is_sys(p.topic.p, p.topic.len)) {
        log_debug("Denied PUBLISH from %s on %.*s ($SYS topics are the "
                  "broker's).", c->client_id, (int)p.topic.len,
                  (const char *)p.topic.p);
        rc = MQTT5_RC_NOT_AUTHORIZED;
        rc_why = "$SYS topics are the broker's";
        goto ack;
    }
    if (p.props.payload_format == 1 &&
        !mqtt_utf8_valid(p.payload, p.payload_len)) {
        /* Checked, as Payload Format Indicator 1 allows (3.3.2.3.2). */
        if (p.qos == 0)
            return fe_disconnect(c, MQTT5_RC_PAYLOAD_FORMAT_INVALID,
                                 "payload is not UTF-8 (Payload Format "
                                 "Indicator 1)");
        log_notice("Client %s: PUBLISH on %.*s with Payload Format "
                   "Indicator 1 and a payload that is not UTF-8; dropped.",
                   c->client_id, (int)p.topic.len, (const char *)p.topic.p);
        rc = MQTT5_RC_PAYLOAD_FORMAT_INVALID;
        rc_why = "payload is not UTF-8 (Payload Format Indicator 1)";
        goto ack;
    }
    if (p.qos == 2 && qos2_test(c, p.pid))
        goto ack; /* already forwarded, waiting for PUBREL */
    sess_slot_t *s = shm_slot(fe->shm, c->slot);
    if (p.qos == 2 && c->level == MQTT_V5 &&
        s->n_qos2 >= fe->cfg->max_inflight_messages)
        return fe_disconnect(c, MQTT5_RC_RECEIVE_MAX_EXCEEDED,
                             "more QoS 2 PUBLISHes in flight than the "
                             "Receive Maximum");
    if (!fe_post_room_all()) {
        fe_pause(c);
        return 1;
    }
    /* Copied once: what MQTT 5 properties travel, topic, payload. */
    bool never;
    arena_h h = fe_msg_alloc(c->level == MQTT_V5 ? &p.props : NULL,
                             p.topic.p, p.topic.len, p.payload,
                             p.payload_len, false, &never);
    if (never) /* the packet fits, with the topic of its alias it does not */
        return fe_disconnect(c, MQTT5_RC_PACKET_TOO_LARGE,
                             "message larger than a frontend's share of "
                             "arena_size can hold");
    if (h == 0) {
        fe_pause_arena_full(c); /* back-pressure, retry shortly */
        return 1;
    }
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
    /* The rings had room above and still have: we are their only
     * producer (fe_post_publish()). */
    int posted = fe_post_publish(c, h, p.qos, p.retain);
    RMQ_ASSERT(posted == 0);
    fe->proc->msgs_in_qos[p.qos]++;
    if (p.qos == 2) {
        CRASH_POINT("fe_qos2_posted");
        qos2_set(c, p.pid, true);
        ARENA_CRASH_ORDER();
        s->in_posting = 0;
    }
ack:
    if (p.qos == 1)
        send_ack(c, MQTT_PUBACK, p.pid, rc, rc_why);
    else if (p.qos == 2)
        send_ack(c, MQTT_PUBREC, p.pid, rc, rc_why);
    return 0;
}

/* An acknowledgement of the other QoS's flow for a packet id in flight (a
 * PUBACK for a QoS 2 message, a PUBREC or PUBCOMP for a QoS 1 one) is a
 * protocol violation (4.3.2, 4.3.3): the connection ends, as in Mosquitto,
 * and the message stays in flight for the next one. */
static int wrong_flow(fe_conn_t *c, const char *ack, uint16_t pid,
                      uint8_t qos)
{
    char why[80];
    snprintf(why, sizeof(why), "%s for packet id %u, a QoS %u message", ack,
             pid, qos);
    return fe_disconnect(c, MQTT5_RC_PROTOCOL_ERROR, why);
}

int handle_ack(fe_conn_t *c, const mqtt_fixed_t *fh, const uint8_t *b)
{
    uint16_t pid;
    uint8_t rc;
    const char *why = NULL;
    int r = mqtt_parse_ack(c->level, fh->type, fh->flags, b, fh->remaining,
                           &pid, &rc, &why);
    if (r < 0)
        return fe_bad_packet(c, "acknowledgement", r, 0, why);
    if ((fh->type == MQTT_PUBREC || fh->type == MQTT_PUBREL) &&
        !fe_out_room(c, 1, 5)) {
        fe_pause(c);
        return 1;
    }
    sess_inflight_t *e;
    switch (fh->type) {
    case MQTT_PUBACK:
        e = sess_inf_find(fe->shm, c->slot, pid);
        if (e && e->qos != 1)
            return wrong_flow(c, "PUBACK", pid, e->qos);
        if (e)
            sess_inf_done(fe->shm, c->slot, e);
        else
            log_debug("Client %s: PUBACK for unknown packet id %u",
                      c->client_id, pid);
        break;
    case MQTT_PUBREC:
        e = sess_inf_find(fe->shm, c->slot, pid);
        if (e && e->qos != 2)
            return wrong_flow(c, "PUBREC", pid, e->qos);
        if (rc >= 0x80) {
            /* MQTT 5: the client refused it; the exchange ends here, the
             * packet id is free again (4.3.3). */
            if (e && e->state == INF_SENT)
                sess_inf_done(fe->shm, c->slot, e);
            break;
        }
        if (e && e->state == INF_SENT) {
            /* The message itself is no longer needed, only the id.  The
             * entry lets go of it before the release (crash order). */
            arena_h h = e->h;
            e->h = 0;
            e->state = INF_PUBREC;
            ARENA_CRASH_ORDER();
            arena_release(&fe->shm->arena, h);
        }
        send_ack(c, MQTT_PUBREL, pid,
                 e ? MQTT5_RC_SUCCESS : MQTT5_RC_PACKET_ID_NOT_FOUND, NULL);
        break;
    case MQTT_PUBCOMP:
        e = sess_inf_find(fe->shm, c->slot, pid);
        if (e && e->qos != 2)
            return wrong_flow(c, "PUBCOMP", pid, e->qos);
        if (e)
            sess_inf_done(fe->shm, c->slot, e);
        break;
    case MQTT_PUBREL: {
        bool known = qos2_test(c, pid);
        qos2_set(c, pid, false);
        send_ack(c, MQTT_PUBCOMP, pid,
                 known ? MQTT5_RC_SUCCESS : MQTT5_RC_PACKET_ID_NOT_FOUND,
                 NULL);
        return 0;
    }
    }
    /* A freed inflight entry may unblock the output ring. */
    if (c->inflight_blocked)
        return fe_drain_slot(c);
    return 0;
}
