/*
 * sup_child.c -- the respawn policy (see sup_child.h).
 */
#include "sup_child.h"

#include <sys/wait.h>

#include "config.h"

sup_action_e sup_child_exited(int status, uint64_t lived_ms,
                              bool restart_asked, uint32_t *fails,
                              uint32_t *delay_ms)
{
    *delay_ms = 0;
    if (WIFEXITED(status) && WEXITSTATUS(status) == CFG_EXIT_FATAL)
        return SUP_STOP_FATAL;
    if (restart_asked || lived_ms >= SUP_START_MS) {
        *fails = 0;
        return SUP_RESPAWN;
    }
    (*fails)++;
    uint32_t d = SUP_BACKOFF_MIN_MS;
    for (uint32_t i = 1; i < *fails && d < SUP_BACKOFF_MAX_MS; i++)
        d *= 2;
    *delay_ms = d > SUP_BACKOFF_MAX_MS ? SUP_BACKOFF_MAX_MS : d;
    return SUP_RESPAWN;
}
