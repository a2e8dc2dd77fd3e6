/*
 * sup_child.h -- what the supervisor does when a child exits: the respawn
 * policy, a pure function of the child's history and its exit status, so
 * that it is tested on its own (tests/supervisor/test_sup_child.c).
 */
#ifndef RINGMQ_SUP_CHILD_H
#define RINGMQ_SUP_CHILD_H

#include <stdbool.h>
#include <stdint.h>

#define SUP_START_MS 1000 /* a death sooner than this is a start-up failure */
#define SUP_BACKOFF_MIN_MS 100
#define SUP_BACKOFF_MAX_MS 5000

typedef enum sup_action {
    SUP_RESPAWN,    /* respawn after *delay_ms (0: at once) */
    SUP_STOP_FATAL  /* exit status 2: do not respawn, stop the broker */
} sup_action_e;

/*
 * Decides what follows a child's exit.  status is waitpid()'s, lived_ms
 * how long the child ran, restart_asked whether an administrator asked
 * for the restart (an expected exit: no backoff).  *fails counts the
 * child's consecutive start-up failures and is updated.  Returns the
 * action; *delay_ms is set for SUP_RESPAWN: 0, or for the n-th start-up
 * failure in a row 100 ms << (n - 1), at most 5 s.
 */
sup_action_e sup_child_exited(int status, uint64_t lived_ms,
                              bool restart_asked, uint32_t *fails,
                              uint32_t *delay_ms);

#endif
