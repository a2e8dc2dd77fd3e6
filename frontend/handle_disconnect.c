/*
 * handle_disconnect.c -- DISCONNECT from a client: a normal end (the will
 * is deleted), or for MQTT 5 a reason code (anything but 0x00 publishes
 * the will) and a new Session Expiry Interval.
 */
#include <stdio.h>

#include "fe.h"

/* MQTT 5: a reason other than 0x00 (0x04 asks for it) publishes the
 * will; a Session Expiry Interval may change, but not from 0
 * (3.14.2.2.2).  Always closes c: returns -1. */
int handle_disconnect(fe_conn_t *c, const mqtt_fixed_t *fh,
                      const uint8_t *b)
{
    uint8_t rc;
    mqtt_props_t pr;
    const char *why = NULL;
    int r = mqtt_parse_disconnect(c->level, fh->flags, b, fh->remaining, &rc,
                                  &pr, &why);
    if (r < 0)
        return fe_bad_packet(c, "DISCONNECT", r, 0, why);
    if (pr.present & MQTT_PROP_BIT(MQTT_PROP_SESSION_EXPIRY)) {
        if (c->sess_expiry == 0 && pr.session_expiry != 0)
            return fe_disconnect(c, MQTT5_RC_PROTOCOL_ERROR,
                                 "DISCONNECT sets a Session Expiry Interval "
                                 "after CONNECT said 0");
        c->sess_expiry = pr.session_expiry;
        c->expiry_changed = true;
    }
    if (rc != MQTT5_RC_NORMAL_DISCONNECTION) {
        /* Only a normal disconnection deletes the will (3.14.4): 0x04
         * asks for it, and an error code is no normal end. */
        char msg[96];
        snprintf(msg, sizeof(msg), "client disconnected with reason 0x%02x "
                 "(%s)%s", rc, mqtt5_reason_str(rc),
                 c->state == C_ACTIVE && shm_slot(fe->shm, c->slot)->will
                     ? ": will published"
                     : "");
        fe_close(c, false, msg);
        return -1;
    }
    fe_close(c, true, NULL);
    return -1;
}
