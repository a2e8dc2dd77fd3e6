/*
 * clock.h -- milliseconds of the monotonic clock, for timeouts and pacing
 * (never wall time: it does not jump).
 */
#ifndef RINGMQ_CLOCK_H
#define RINGMQ_CLOCK_H

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in ms (precise; through the vDSO, no system call). */
static inline uint64_t clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* CLOCK_MONOTONIC_COARSE in ms: cheaper, a few ms of resolution (the
 * last timer tick); a timeout counted from it is never early. */
static inline uint64_t clock_coarse_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#endif
