/*
 * sup.h -- the supervisor: listeners, children, signals.
 */
#ifndef RINGMQ_SUP_H
#define RINGMQ_SUP_H

#include "config.h"

#define RINGMQ_VERSION "0.1.0"

/* Runs the broker described by cfg until SIGTERM/SIGINT (returns 0) or a
 * fatal problem (returns non-zero after logging it). */
int sup_run(const cfg_t *cfg);

#endif
