/*
 * handle_auth.c -- MQTT 5 enhanced authentication (MQTT 5.0 4.12): the
 * exchange a CONNECT with an Authentication Method starts, AUTH packets
 * in both directions, and re-authentication (AUTH 0x19) of a connected
 * client.  The methods are fe_auth.c's.
 */
#include <stdio.h>
#include <string.h>

#include "fe.h"
#include "fe_auth.h"
#include "log.h"
#include "mem.h"

/* Ends the method's exchange (its state is freed). */
static void exchange_end(fe_conn_t *c)
{
    if (c->auth && c->auth_state)
        c->auth->free(c->auth_state);
    c->auth_state = NULL;
    c->reauth = false;
}

void fe_auth_free(fe_conn_t *c)
{
    exchange_end(c);
    mem_free(c->auth_connect);
    c->auth_connect = NULL;
    mem_free(c->auth_out);
    c->auth_out = NULL;
}

/* Queues AUTH with reason rc and the method's out data.  Returns 0, or -1
 * when c was closed. */
static int send_auth(fe_conn_t *c, uint8_t rc, const uint8_t *out,
                     size_t out_len)
{
    uint8_t buf[FE_HB_CAP / 2];
    size_t n = mqtt_write_auth(buf, sizeof(buf), rc, c->auth->name,
                               strlen(c->auth->name), out, out_len);
    if (n == 0 || !fe_out_room(c, 1, (uint32_t)n))
        return fe_disconnect(c, MQTT5_RC_IMPL_SPECIFIC,
                             "authentication data too large to send");
    fe_out_bytes(c, buf, n);
    return 0;
}

/* Keeps the method's last out data for the CONNACK. */
static void keep_out(fe_conn_t *c, const uint8_t *out, size_t out_len)
{
    mem_free(c->auth_out);
    c->auth_out = NULL;
    c->auth_out_len = 0;
    if (out && out_len <= UINT16_MAX) {
        c->auth_out = mem_alloc(out_len ? out_len : 1);
        memcpy(c->auth_out, out, out_len);
        c->auth_out_len = (uint16_t)out_len;
    }
}

/* Refuses a connection during the exchange: CONNACK with rc, close. */
static int refuse_connect(fe_conn_t *c, uint8_t rc, const char *why)
{
    uint8_t out[256];
    mqtt_prop_t pr = mqtt_prop_str(MQTT_PROP_REASON_STRING, why,
                                   (uint16_t)strlen(why));
    size_t n = mqtt_write_connack5(out, sizeof(out), false, rc, &pr,
                                   c->problem_info ? 1 : 0);
    if (c->max_pkt && n > c->max_pkt)
        n = mqtt_write_connack5(out, sizeof(out), false, rc, NULL, 0);
    fe_out_bytes(c, out, n);
    if (fe_flush(c) == 0)
        fe_close(c, false, why);
    return -1;
}

/* A method's step handed back more data than FE_AUTH_OUT_MAX. */
static int too_much(fe_conn_t *c, bool in_connect)
{
    exchange_end(c);
    log_err("authentication method %s handed back more than %d bytes",
            c->auth->name, FE_AUTH_OUT_MAX);
    if (in_connect)
        return refuse_connect(c, MQTT5_RC_IMPL_SPECIFIC,
                              "authentication data too large");
    return fe_disconnect(c, MQTT5_RC_IMPL_SPECIFIC,
                         "authentication data too large");
}

int fe_auth_connect(fe_conn_t *c, const mqtt_fixed_t *fh, const uint8_t *b,
                    const mqtt_connect_t *k)
{
    if (c->auth_done)
        return 0; /* the exchange ended well: the saved CONNECT goes on */
    const mqtt_str_t *name = &k->props.auth_method;
    c->auth = fe_auth_find((const char *)name->p, name->len);
    if (c->auth == NULL) {
        char msg[128];
        snprintf(msg, sizeof(msg), "unsupported authentication method "
                 "'%.*s'", (int)(name->len > 64 ? 64 : name->len),
                 (const char *)name->p);
        return refuse_connect(c, MQTT5_RC_BAD_AUTH_METHOD, msg);
    }
    const uint8_t *out;
    size_t out_len;
    int r = c->auth->step(&c->auth_state, k->props.auth_data.p,
                          k->props.auth_data.len, &out, &out_len);
    if (r == FE_AUTH_FAIL) {
        exchange_end(c);
        return refuse_connect(c, MQTT5_RC_NOT_AUTHORIZED,
                              "authentication failed");
    }
    if (out_len > FE_AUTH_OUT_MAX)
        return too_much(c, true);
    if (r == FE_AUTH_DONE) {
        keep_out(c, out, out_len);
        exchange_end(c);
        c->auth_done = true;
        return 0;
    }
    /* Continue: the CONNECT waits until the exchange ends. */
    c->auth_connect_len = 1u + fh->remaining;
    c->auth_connect = mem_alloc(c->auth_connect_len);
    c->auth_connect[0] = (uint8_t)(fh->type << 4 | fh->flags);
    memcpy(c->auth_connect + 1, b, fh->remaining);
    c->state = C_AUTH;
    if (send_auth(c, MQTT5_RC_CONTINUE_AUTH, out, out_len) < 0)
        return -1;
    return 1;
}

/* The saved CONNECT, again, now that the exchange ended well. */
static int resume_connect(fe_conn_t *c)
{
    mqtt_fixed_t fh = {.type = (uint8_t)(c->auth_connect[0] >> 4),
                       .flags = (uint8_t)(c->auth_connect[0] & 0x0f),
                       .remaining = c->auth_connect_len - 1};
    c->state = C_NEW;
    int r = handle_connect(c, &fh, c->auth_connect + 1);
    if (r < 0)
        return -1;
    if (r > 0) {
        /* Paused (broker back-pressure): this AUTH is read again later
         * and lands here again (auth_done). */
        c->state = C_AUTH;
        return 1;
    }
    mem_free(c->auth_connect);
    c->auth_connect = NULL;
    return 0;
}

int handle_auth(fe_conn_t *c, const mqtt_fixed_t *fh, const uint8_t *b)
{
    if (c->level != MQTT_V5)
        return fe_disconnect(c, MQTT5_RC_PROTOCOL_ERROR,
                             "AUTH from a client below MQTT 5");
    if (c->state == C_AUTH && c->auth_done)
        return resume_connect(c);
    uint8_t rc;
    mqtt_props_t pr;
    const char *why = NULL;
    int r = mqtt_parse_auth(fh->flags, b, fh->remaining, &rc, &pr, &why);
    if (r < 0)
        return fe_bad_packet(c, "AUTH", r, 0, why);
    const mqtt_str_t *m = &pr.auth_method;
    if (c->auth == NULL)
        return fe_disconnect(c, MQTT5_RC_PROTOCOL_ERROR,
                             "AUTH without an authentication method");
    if (m->len != strlen(c->auth->name) ||
        memcmp(m->p, c->auth->name, m->len) != 0)
        return fe_disconnect(c, MQTT5_RC_PROTOCOL_ERROR,
                             "AUTH with another authentication method");
    bool in_connect = c->state == C_AUTH;
    if (rc == MQTT5_RC_REAUTHENTICATE) {
        if (in_connect || c->reauth)
            return fe_disconnect(c, MQTT5_RC_PROTOCOL_ERROR,
                                 "re-authentication during an exchange");
        exchange_end(c); /* a fresh exchange */
        c->reauth = true;
    } else if (rc != MQTT5_RC_CONTINUE_AUTH || (!in_connect && !c->reauth)) {
        return fe_disconnect(c, MQTT5_RC_PROTOCOL_ERROR,
                             "AUTH out of an exchange");
    }
    const uint8_t *out;
    size_t out_len;
    r = c->auth->step(&c->auth_state, pr.auth_data.p, pr.auth_data.len,
                      &out, &out_len);
    if (r != FE_AUTH_FAIL && out_len > FE_AUTH_OUT_MAX)
        return too_much(c, in_connect);
    if (r == FE_AUTH_CONTINUE)
        return send_auth(c, MQTT5_RC_CONTINUE_AUTH, out, out_len);
    if (r == FE_AUTH_FAIL) {
        exchange_end(c);
        if (in_connect)
            return refuse_connect(c, MQTT5_RC_NOT_AUTHORIZED,
                                  "authentication failed");
        return fe_disconnect(c, MQTT5_RC_NOT_AUTHORIZED,
                             "re-authentication failed");
    }
    if (in_connect) {
        keep_out(c, out, out_len);
        exchange_end(c);
        c->auth_done = true;
        return resume_connect(c);
    }
    /* Re-authenticated. */
    int sr = send_auth(c, MQTT5_RC_SUCCESS, out, out_len);
    exchange_end(c);
    log_info("Client %s re-authenticated (%s).", c->client_id,
             c->auth->name);
    return sr;
}
