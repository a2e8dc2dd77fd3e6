/*
 * handle_connect.c -- CONNECT from a client, the owner worker's answer,
 * and CONNACK.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fe.h"
#include "log.h"
#include "mem.h"
#include "strmap.h"

static void refuse(fe_conn_t *c, uint8_t rc, const char *reason)
{
    uint8_t out[4];
    fe_out_bytes(c, out, mqtt_write_connack(out, false, rc));
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

/* Allocates [u16 len][bytes] (or [u16 tlen][topic][payload] when payload
 * is given) in our partition.  Returns 0 when the arena is full. */
static arena_h blob(const void *s, uint16_t len, const void *payload,
                    size_t plen)
{
    void *d;
    arena_h h = arena_alloc(&fe->shm->arena, fe->part, 2 + len + plen, &d);
    if (h == 0)
        return 0;
    uint8_t *p = d;
    p[0] = (uint8_t)(len >> 8);
    p[1] = (uint8_t)len;
    memcpy(p + 2, s, len);
    if (plen)
        memcpy(p + 2 + len, payload, plen);
    return h;
}

int handle_connect(fe_conn_t *c, const mqtt_fixed_t *fh, const uint8_t *b)
{
    mqtt_connect_t k;
    const char *why = NULL;
    int r = mqtt_parse_connect(fh->flags, b, fh->remaining, &k, &why);
    if (r == MQTT_E_VERSION) {
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
        fe_close(c, false, msg);
        return -1;
    }
    if (!fe->cfg->allow_anonymous && c->username == NULL) {
        /* No password file support yet: with anonymous access off only
         * clients with a verified certificate on a listener with
         * use_identity_as_username get in (the certificate's CN is their
         * username, as in Mosquitto). */
        refuse(c, MQTT_RC_NOT_AUTHORIZED, "not authorised");
        return -1;
    }
    /* max_keepalive only binds MQTT 5 clients (Server Keep Alive); 3.1.1
     * clients keep the interval they asked for, as with Mosquitto. */
    if (k.will && !fe->cfg->retain_available && k.will_retain) {
        /* Mosquitto closes 3.1.1 clients without a CONNACK here. */
        fe_close(c, false, "retained will while retain_available is false");
        return -1;
    }
    char idbuf[48];
    const char *id = (const char *)k.client_id.p;
    uint16_t idlen = k.client_id.len;
    if (idlen == 0) {
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
    arena_h hid = blob(id, idlen, NULL, 0);
    arena_h hwill = 0;
    if (hid && k.will) {
        hwill = blob(k.will_topic.p, k.will_topic.len, k.will_payload,
                     k.will_payload_len);
        if (hwill == 0) {
            arena_release(&fe->shm->arena, hid);
            hid = 0;
        }
    }
    if (hid == 0) {
        fe_pause(c); /* arena full: retry shortly */
        return 1;
    }
    c->client_id = mem_strndup(id, idlen);
    c->level = k.level;
    c->clean = k.clean_session;
    c->keepalive = k.keepalive;
    ing_rec_t rec = {.type = ING_CONNECT,
                     .qos = k.will ? k.will_qos : 0,
                     .flags = (uint8_t)((k.clean_session ? ING_F_CLEAN : 0) |
                                        (k.will && k.will_retain
                                             ? ING_F_WILL_RETAIN
                                             : 0)),
                     .h1 = hid,
                     .h2 = hwill,
                     .a = fe_cookie(c),
                     .b = (uint32_t)k.level | (uint32_t)k.keepalive << 8};
    fe_post(w, &rec);
    fe->connects_out[w]++;
    c->state = C_CONNECTING;
    return 0;
}

void fe_on_reply(uint32_t w, const rep_rec_t *r)
{
    if (r->type == REP_SYNC) {
        fe_recover_synced(w);
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
        s->connected_at = (uint64_t)fe->now;
        s->keepalive = c->keepalive;
        snprintf(s->peer, sizeof(s->peer), "%s", c->peer);
        uint8_t out[4];
        fe_out_bytes(c, out,
                     mqtt_write_connack(out, r->session_present != 0,
                                        MQTT_RC_ACCEPTED));
        log_notice("New client connected from %s as %s (p%d, c%d, k%u, "
                   "fe %u%s%s%s).",
                   c->peer, c->client_id, c->level == MQTT_V31 ? 1 : 2,
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
