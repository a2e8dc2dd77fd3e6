/*
 * fe_admin.h -- a frontend's side of the admin socket: the requests the
 * supervisor leaves in the frontend's mailbox (shm_mbox_t in shm/shm.h).
 */
#ifndef RINGMQ_FE_ADMIN_H
#define RINGMQ_FE_ADMIN_H

/*
 * Executes the request waiting in this frontend's mailbox, if any, and
 * acknowledges it.  Called from the eventfd handler (the supervisor writes
 * the eventfd after posting a request); costs one load when there is
 * nothing to do.
 */
void fe_admin_poll(void);

#endif
