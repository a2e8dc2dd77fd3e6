/*
 * fo_admin.h -- a worker's side of the admin socket: the requests the
 * supervisor leaves in the worker's mailbox (shm_mbox_t in shm/shm.h).
 */
#ifndef RINGMQ_FO_ADMIN_H
#define RINGMQ_FO_ADMIN_H

#include <stdint.h>

#include "fo.h"

/*
 * Executes the request waiting in this worker's mailbox, if any, and
 * acknowledges it.  Called once per loop iteration; costs one load when
 * there is nothing to do.
 */
void fo_admin_poll(fo_t *fo);

/*
 * Frees the OFFLINE session in slot if it still has connection generation
 * conn_gen.  Returns 0, or -1 when the slot is not such a session of this
 * worker (nothing changes).  Defined at the end of fo_session.c, next to
 * the session code it uses.
 */
int fo_session_discard(fo_t *fo, uint32_t slot, uint32_t conn_gen);

#endif
