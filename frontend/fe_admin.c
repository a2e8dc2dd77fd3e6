/*
 * fe_admin.c -- what a frontend does for the admin socket: it reads the
 * request the supervisor left in its mailbox (shm_mbox_t) when woken
 * through its eventfd, executes it and acknowledges it.  The one request
 * is a kick: close a client's connection as a server-initiated disconnect
 * (the will is published), optionally asking the owner worker to discard
 * the session.
 *
 * NOTES
 *   Owns: the child half of its own mailbox (ack_seq, rc, aux, reply).
 *   Reads: the supervisor half of its mailbox, after the acquire load of
 *   req_seq; owner-written fields (will) of the slots it hosts.
 *   Never touches: other processes' mailboxes, connections of other
 *   frontends.
 */
#include "fe_admin.h"

#include "fe.h"
#include "log.h"

/* MBOX_KICK: closes the connection attached to slot with generation
 * conn_gen.  Returns MBOX_OK or MBOX_NOT_FOUND. */
static int kick(uint32_t slot, uint32_t conn_gen, bool discard)
{
    if (slot >= fe->shm->hdr->max_clients)
        return MBOX_BAD;
    fe_conn_t *c = fe->by_slot[slot];
    if (c == NULL || c->state != C_ACTIVE || c->conn_gen != conn_gen)
        return MBOX_NOT_FOUND;
    c->discard_session = discard;
    fe_disconnect(c, MQTT5_RC_ADMINISTRATIVE_ACTION,
                  discard ? "kicked by the administrator, session discarded"
                          : "kicked by the administrator");
    return MBOX_OK;
}

void fe_admin_poll(void)
{
    shm_mbox_t *m = shm_fe_mbox(fe->shm, fe->idx);
    /* Acquire: pairs with the supervisor's release store of req_seq, so
     * the request fields it wrote before are visible. */
    uint32_t seq = __atomic_load_n(&m->req_seq, __ATOMIC_ACQUIRE);
    if (seq == m->ack_seq)
        return;
    int rc;
    if (m->op == MBOX_KICK) {
        rc = kick(m->slot, m->conn_gen, (m->flags & MBOX_F_DISCARD) != 0);
    } else {
        log_err("admin request of unknown type %u ignored", m->op);
        rc = MBOX_BAD;
    }
    m->rc = rc;
    m->aux = 0;
    m->reply = 0;
    /* Release: rc is visible before the acknowledgement (pairs with the
     * supervisor's acquire load of ack_seq). */
    __atomic_store_n(&m->ack_seq, seq, __ATOMIC_RELEASE);
}
