/*
 * sup_admin.h -- the supervisor's admin socket: a Unix stream socket that
 * speaks one JSON object per line each way (docs/admin.md).
 */
#ifndef RINGMQ_SUP_ADMIN_H
#define RINGMQ_SUP_ADMIN_H

#include <event2/event.h>

#include "config.h"
#include "shm.h"

/* What the admin socket needs from the rest of the supervisor. */
typedef struct sup_admin_env {
    struct event_base *base;
    const cfg_t *cfg;     /* the running configuration */
    shm_t *shm;
    const int *efd;       /* eventfd per frontend (wake-ups) */
    uint64_t started;     /* unix time the broker started */
    void (*stop)(void);   /* begins stopping the broker (shutdown) */
    /* restarts child (role PROC_*, index) gracefully: 0, or -1 when it is
     * not running */
    int (*restart)(int role, uint32_t idx);
    /* reloads the TLS certificates (supervisor and every frontend) */
    void (*reload_tls)(void);
} sup_admin_env_t;

/*
 * Before the forks: if path exists and a broker answers on it, logs
 * "admin socket PATH in use by another broker" and returns -2; a stale
 * socket file is removed; anything else at path is an error.  Then binds
 * and listens (mode 0660).  Returns the listening fd, or -1 (logged).
 * The children must close the fd.
 */
int sup_admin_open(const char *path);

/* After the forks: serves the socket lfd in env->base.  env is copied. */
void sup_admin_start(const sup_admin_env_t *env, int lfd);

/* Stops accepting, writes what is still queued for each admin client if
 * the socket takes it, closes them all and forgets pending requests. */
void sup_admin_stop(void);

/* Removes the socket file (at exit). */
void sup_admin_unlink(void);

#endif
