/*
 * handle_connect.c -- CONNECT from a client, the owner worker's answer,
 * and CONNACK.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fe.h"
#include "fe_auth.h"
#include "log.h"
#include "mem.h"
#include "strmap.h"
#include "topic.h"

/* The MQTT 5 reason code for a 3.1.1 CONNACK return code. */
static uint8_t v5_code(uint8_t rc)
{
    switch (rc) {
    case MQTT_RC_BAD_VERSION:
        return MQTT5_RC_UNSUPPORTED_VERSION;
    case MQTT_RC_ID_REJECTED:
        return MQTT5_RC_CLIENT_ID_INVALID;
    case MQTT_RC_UNAVAILABLE:
        return MQTT5_RC_SERVER_UNAVAILABLE;
    case MQTT_RC_BAD_AUTH:
        return MQTT5_RC_BAD_USERNAME_PASSWORD;
    case MQTT_RC_NOT_AUTHORIZED:
        return MQTT5_RC_NOT_AUTHORIZED;
    default:
        return rc; /* already an MQTT 5 code */
    }
}

/* Answers CONNACK with rc (a 3.1.1 return code, turned into its MQTT 5
 * reason code for a level-5 client, or an MQTT 5 code) and closes. */
static void refuse(fe_conn_t *c, uint8_t rc, const char *reason)
{
    uint8_t out[256];
    size_t n;
    if (c->level == MQTT_V5) {
        mqtt_prop_t pr = mqtt_prop_str(MQTT_PROP_REASON_STRING, reason,
                                       (uint16_t)strlen(reason));
        n = mqtt_write_connack5(out, sizeof(out), false, v5_code(rc), &pr,
                                c->problem_info ? 1 : 0);
        if (c->max_pkt && n > c->max_pkt) /* the string goes (3.2.2.3.9) */
            n = mqtt_write_connack5(out, sizeof(out), false, v5_code(rc),
                                    NULL, 0);
    } else {
        n = mqtt_write_connack(out, false, rc >= 0x80 ? MQTT_RC_UNAVAILABLE
                                                      : rc);
    }
    fe_out_bytes(c, out, n);
    if (fe_flush(c) == 0) /* else the write failed and c is gone */
        fe_close(c, false, reason);
}

/* A client id like Mosquitto's: "auto-" and 32 hex digits. */
static void assign_id(char *out, size_t n)
{
    static uint64_t counter;
    uint64_t a = strmap_hash(&counter, sizeof(counter)) ^
                 ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL);
    counter++;
    uint64_t b = strmap_hash(&a, sizeof(a)) ^ counter;
    snprintf(out, n, "auto-%016llX%016llX", (unsigned long long)a,
             (unsigned long long)b);
}

/* Allocates [u16 len][bytes] in our partition.  Returns 0 when the
 * arena is full. */
static arena_h blob(const void *s, uint16_t len)
{
    void *d;
    arena_h h = arena_alloc(&fe->shm->arena, fe->part, 2u + len, &d);
    if (h == 0)
        return 0;
    uint8_t *p = d;
    p[0] = (uint8_t)(len >> 8);
    p[1] = (uint8_t)len;
    memcpy(p + 2, s, len);
    return h;
}

int handle_connect(fe_conn_t *c, const mqtt_fixed_t *fh, const uint8_t *b)
{
    mqtt_connect_t k;
    const char *why = NULL;
    int r = mqtt_parse_connect(fh->flags, b, fh->remaining, &k, &why);
    c->level = k.level;
    c->problem_info = k.level == MQTT_V5 && k.props.request_problem_info;
    /* What we may send it, from now on (CONNACK included; 0: no limit) */
    c->max_pkt = r == MQTT_OK && k.level == MQTT_V5 ? k.props.max_packet_size
                                                    : 0;
    if (r == MQTT_E_VERSION) {
        c->level = MQTT_V311; /* answer in a version it may understand */
        refuse(c, MQTT_RC_BAD_VERSION, "unacceptable protocol version");
        return -1;
    }
    if (r == MQTT_E_CLIENTID) {
        refuse(c, MQTT_RC_ID_REJECTED, "client identifier rejected");
        return -1;
    }
    if (r < 0) {
        char msg[128];
        snprintf(msg, sizeof(msg), "bad CONNECT: %s", why);
        if (k.level == MQTT_V5 && c->level == MQTT_V5)
            refuse(c, k.reason, msg); /* MQTT 5: CONNACK 0x81/0x82 */
        else
            fe_close(c, false, msg);
        return -1;
    }
    if (k.level == MQTT_V5 &&
        (k.props.present & MQTT_PROP_BIT(MQTT_PROP_AUTH_METHOD))) {
        /* Enhanced authentication (handle_auth.c, fe_auth.c). */
        int ar = fe_auth_connect(c, fh, b, &k);
        if (ar != 0)
            return ar < 0 ? -1 : 0; /* refused, or the exchange goes on */
    }
    if (!fe->cfg->allow_anonymous && c->username == NULL) {
        /* No password file support yet: with anonymous access off only
         * clients with a verified certificate on a listener with
         * use_identity_as_username get in (the certificate's CN is their
         * username, as in Mosquitto). */
        refuse(c, MQTT_RC_NOT_AUTHORIZED, "not authorised");
        return -1;
    }
    if (k.will && !fe->cfg->retain_available && k.will_retain) {
        /* Mosquitto closes 3.1.1 clients without a CONNACK here. */
        if (k.level == MQTT_V5)
            refuse(c, MQTT5_RC_RETAIN_NOT_SUPPORTED,
                   "retained will while retain_available is false");
        else
            fe_close(c, false,
                     "retained will while retain_available is false");
        return -1;
    }
    if (k.will && k.will_qos > fe->cfg->max_qos && k.level == MQTT_V5) {
        refuse(c, MQTT5_RC_QOS_NOT_SUPPORTED, "will QoS above max_qos");
        return -1;
    }
    if (k.will && k.level == MQTT_V5 && k.will_props.payload_format == 1 &&
        !mqtt_utf8_valid(k.will_payload, k.will_payload_len)) {
        refuse(c, MQTT5_RC_PAYLOAD_FORMAT_INVALID,
               "will payload is not UTF-8 (Payload Format Indicator 1)");
        return -1;
    }
    char idbuf[48];
    const char *id = (const char *)k.client_id.p;
    uint16_t idlen = k.client_id.len;
    bool assigned = idlen == 0;
    if (assigned) {
        assign_id(idbuf, sizeof(idbuf));
        id = idbuf;
        idlen = (uint16_t)strlen(idbuf);
    }
    uint32_t w = (uint32_t)(strmap_hash(id, idlen) % fe->n_fo);
    if (fe->connects_out[w] >= fe->shm->hdr->reply_cap / 2 ||
        !fe_post_room(w)) {
        fe_pause(c);
        return 1;
    }
    arena_h hid = blob(id, idlen);
    arena_h hwill = 0;
    if (k.will && topic_is_sys(k.will_topic.p, k.will_topic.len)) {
        /* Accepted and never published, as Mosquitto does. */
        log_debug("Client %.*s: will on %.*s dropped ($SYS topics are the "
                  "broker's).", (int)idlen, id, (int)k.will_topic.len,
                  (const char *)k.will_topic.p);
        k.will = false;
    }
    if (hid && k.will) {
        bool never; /* cannot be: the CONNECT is within fe->max_packet */
        hwill = fe_msg_alloc(k.level == MQTT_V5 ? &k.will_props : NULL,
                             k.will_topic.p, k.will_topic.len,
                             k.will_payload, k.will_payload_len, true,
                             &never);
        if (hwill == 0) {
            arena_release(&fe->shm->arena, hid);
            hid = 0;
        }
    }
    if (hid == 0) {
        fe_pause_arena_full(c); /* retry shortly */
        return 1;
    }
    c->client_id = mem_strndup(id, idlen);
    c->clean = k.clean_session;
    c->keepalive = k.keepalive;
    c->id_assigned = assigned;
    if (k.level == MQTT_V5) {
        c->recv_max = k.props.receive_max;
        c->want_response_info = k.props.request_response_info == 1;
        c->alias_out_max = k.props.topic_alias_max;
        if (c->alias_out_max > fe->cfg->max_topic_alias_broker)
            c->alias_out_max = fe->cfg->max_topic_alias_broker;
        c->sess_expiry = k.props.session_expiry;
        /* Server Keep Alive: max_keepalive binds MQTT 5 clients (3.1.1
         * clients keep the interval they asked for, as with Mosquitto). */
        if (fe->cfg->max_keepalive &&
            (k.keepalive == 0 || k.keepalive > fe->cfg->max_keepalive)) {
            c->keepalive = fe->cfg->max_keepalive;
            c->server_keepalive = true;
        }
    }
    ing_rec_t rec = {.type = ING_CONNECT,
                     .qos = k.will ? k.will_qos : 0,
                     .flags = (uint8_t)((k.clean_session ? ING_F_CLEAN : 0) |
                                        (k.will && k.will_retain
                                             ? ING_F_WILL_RETAIN
                                             : 0)),
                     .slot = c->sess_expiry,
                     .h1 = hid,
                     .h2 = hwill,
                     .a = fe_cookie(c),
                     .b = (uint32_t)k.level | (uint32_t)c->keepalive << 8};
    fe_post(w, &rec);
    fe->connects_out[w]++;
    c->state = C_CONNECTING;
    return 0;
}

/* The CONNACK of an accepted MQTT 5 connection: what the server allows,
 * from the configuration (docs/mqtt5.md). */
static size_t connack5(fe_conn_t *c, uint8_t *out, size_t cap, bool present)
{
    const cfg_t *cfg = fe->cfg;
    mqtt_prop_t pr[12];
    size_t n = 0;
    if (cfg->max_inflight_messages < 65535)
        pr[n++] = mqtt_prop_num(MQTT_PROP_RECEIVE_MAX,
                                cfg->max_inflight_messages);
    if (cfg->max_qos < 2)
        pr[n++] = mqtt_prop_num(MQTT_PROP_MAX_QOS, cfg->max_qos);
    if (!cfg->retain_available)
        pr[n++] = mqtt_prop_num(MQTT_PROP_RETAIN_AVAILABLE, 0);
    pr[n++] = mqtt_prop_num(MQTT_PROP_MAX_PACKET_SIZE, fe->max_packet);
    if (c->id_assigned)
        pr[n++] = mqtt_prop_str(MQTT_PROP_ASSIGNED_CLIENT_ID, c->client_id,
                                (uint16_t)strlen(c->client_id));
    if (cfg->max_topic_alias)
        pr[n++] = mqtt_prop_num(MQTT_PROP_TOPIC_ALIAS_MAX,
                                cfg->max_topic_alias);
    if (c->server_keepalive)
        pr[n++] = mqtt_prop_num(MQTT_PROP_SERVER_KEEP_ALIVE, c->keepalive);
    if (c->auth) {
        pr[n++] = mqtt_prop_str(MQTT_PROP_AUTH_METHOD, c->auth->name,
                                (uint16_t)strlen(c->auth->name));
        if (c->auth_out)
            pr[n++] = mqtt_prop_str(MQTT_PROP_AUTH_DATA, c->auth_out,
                                    c->auth_out_len);
    }
    size_t with_info = n;
    if (c->want_response_info && cfg->response_info[0])
        pr[n++] = mqtt_prop_str(MQTT_PROP_RESPONSE_INFO, cfg->response_info,
                                (uint16_t)strlen(cfg->response_info));
    size_t len = mqtt_write_connack5(out, cap, present, 0, pr, n);
    if (c->max_pkt && len > c->max_pkt) /* what is optional goes */
        len = mqtt_write_connack5(out, cap, present, 0, pr, with_info);
    return len;
}

void fe_on_reply(uint32_t w, const rep_rec_t *r)
{
    if (r->type == REP_SYNC) {
        fe_recover_synced(w);
        return;
    }
    if (r->type == REP_WILL) {
        /* A delayed will whose time came (fo_expire_sessions()); its
         * reference becomes the posts'. */
        if (fe->n_fo > 1)
            arena_ref_add(&fe->shm->arena, r->h, fe->n_fo - 1);
        fe_post_will(r->slot, r->h, r->rc, r->session_present != 0);
        return;
    }
    if (fe->syncing) {
        /* An answer to the previous incarnation of this frontend: the
         * session scan after the SYNC detaches what it attached. */
        return;
    }
    fe_conn_t *c = fe_conn_by_cookie(r->cookie);
    if (fe->connects_out[w] > 0)
        fe->connects_out[w]--;
    if (r->type == REP_CONNECT_OK) {
        if (c == NULL || c->state != C_CONNECTING) {
            /* Nobody to attach: hand the session straight back. */
            ing_rec_t rec = {.type = ING_DETACH,
                             .slot = r->slot,
                             .a = r->conn_gen};
            fe_post(shm_slot_owner(fe->shm, r->slot), &rec);
            return;
        }
        c->slot = r->slot;
        c->conn_gen = r->conn_gen;
        c->state = C_ACTIVE;
        fe->by_slot[r->slot] = c;
        sess_slot_t *s = shm_slot(fe->shm, r->slot);
        /* Broadcast groups for this connection can come now (no group
         * overtakes this answer: docs/architecture.md, "QoS 0 to many"). */
        __atomic_store_n(shm_bc_gen(fe->shm, r->slot), c->conn_gen,
                         __ATOMIC_RELAXED);
        s->connected_at = (uint64_t)fe->now;
        c->epoch = s->epoch;
        s->keepalive = c->keepalive;
        snprintf(s->peer, sizeof(s->peer), "%s", c->peer);
        uint8_t out[1024]; /* fits every CONNACK property we send */
        size_t n = c->level == MQTT_V5
                       ? connack5(c, out, sizeof(out), r->session_present)
                       : mqtt_write_connack(out, r->session_present != 0,
                                            MQTT_RC_ACCEPTED);
        fe_out_bytes(c, out, n);
        log_notice("New client connected from %s as %s (p%d, c%d, k%u, "
                   "fe %u%s%s%s).",
                   c->peer, c->client_id, c->level == MQTT_V31 ? 1 : c->level == MQTT_V5 ? 5 : 2,
                   c->clean ? 1 : 0, c->keepalive, fe->idx,
                   c->username ? ", u'" : "",
                   c->username ? c->username : "",
                   c->username ? "'" : "");
        if (fe_resume_session(c) < 0)
            return;
        fe_resume(c);
        return;
    }
    if (c == NULL || c->state != C_CONNECTING)
        return;
    if (r->rc == 0xff) {
        fe_close(c, false, "superseded by a newer connection");
        return;
    }
    refuse(c, r->rc, "connection refused by session owner");
}
