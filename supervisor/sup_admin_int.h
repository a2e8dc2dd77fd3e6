/*
 * sup_admin_int.h -- what the files of the admin socket share: the
 * client connections (sup_admin.c), requests to children through their
 * mailboxes (sup_admin.c) and the command handlers (sup_admin_cmd.c).
 */
#ifndef RINGMQ_SUP_ADMIN_INT_H
#define RINGMQ_SUP_ADMIN_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "sup_admin.h"
#include "sup_admin_req.h"

#define ADM_MAX_CLIENTS 32
#define ADM_IDLE_TIMEOUT 60            /* s without a request */
#define ADM_OUTPUT_MAX (4u << 20)      /* queued response bytes */
#define ADM_CHILD_TIMEOUT_MS 5000      /* a child must answer in this */
#define ADM_POLL_MS 2                  /* mailbox poll period */
#define ADM_LINES_PER_TURN 8           /* requests of one client handled
                                          per event loop turn */

typedef struct adm_client adm_client_t;
typedef struct adm_job adm_job_t;

/* One request to one child through its mailbox. */
typedef struct adm_op {
    /* request */
    uint32_t proc;        /* index in shm procs[] and mbox[] */
    uint32_t op;          /* MBOX_* */
    uint32_t flags, slot, conn_gen, offset, limit;
    uint32_t arg_len;
    char *arg;            /* owned, or NULL */
    size_t reply_max;     /* bytes of the reply blob to copy */
    bool reply_msg;       /* the reply is a message: copied without its
                             span (sup_shm_copy_msg()) */
    /* result */
    int state;            /* ADM_OP_* */
    int32_t rc;           /* MBOX_* result code */
    uint32_t aux;
    uint8_t *reply;       /* copy of the reply blob, or NULL (owned) */
    uint32_t reply_len;   /* bytes copied */
    uint32_t reply_full;  /* the blob's length */
    /* queue */
    struct adm_op *next;
    adm_job_t *job;
} adm_op_t;

enum { ADM_OP_NEW, ADM_OP_QUEUED, ADM_OP_SENT, ADM_OP_DONE };

/* Builds the answer of a job whose operations all completed: returns the
 * result (the response takes it) or NULL with err set. */
typedef cJSON *(*adm_finish_fn)(adm_job_t *j, adm_err_t *err);

/* A request that waits for children. */
struct adm_job {
    adm_job_t *next;      /* live jobs */
    adm_client_t *client; /* NULL once the client went away */
    cJSON *id;            /* copy of the request's id, or NULL */
    adm_finish_fn finish;
    uint64_t deadline;    /* monotonic ms */
    uint32_t n_ops, n_done;
    adm_op_t *ops;
    /* for the finish function */
    char *text;           /* a client id or topic (owned) */
    bool flag;
};

/* The environment given to sup_admin_start(). */
extern sup_admin_env_t adm_env;

/*
 * A new job of n operations (zeroed; the caller fills proc, op and the
 * arguments of each) for the request r of client c.  Start it with
 * adm_job_start(); the response is sent when finish has run, or an error
 * "timeout" after ADM_CHILD_TIMEOUT_MS.
 */
adm_job_t *adm_job_new(adm_client_t *c, const adm_req_t *r, uint32_t n,
                       adm_finish_fn finish);
void adm_job_start(adm_job_t *j);

/* Handler results. */
enum { ADM_DONE = 0, ADM_PENDING = 1 };

/*
 * Executes request r of client c (sup_admin_cmd.c).  Returns ADM_DONE with
 * *result set (ownership passes) or NULL and err set, or ADM_PENDING when
 * a job was started (it answers later).
 */
int adm_exec(adm_client_t *c, const adm_req_t *r, cJSON **result,
             adm_err_t *err);

/* Asks the server to stop the broker once the current response is
 * queued (shutdown). */
void adm_request_stop(void);

/* Supervisor-wide things the handlers need (sup.c, sup_config.c). */
#endif
