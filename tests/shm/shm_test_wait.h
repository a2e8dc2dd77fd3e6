/*
 * shm_test_wait.h -- how the shm tests wait for another process: spin a
 * little, then yield, then sleep in short naps.  On an idle machine the
 * two sides run on their own CPUs and never get past the spin; when they
 * share a CPU with a busy neighbour, sched_yield() alone would hand that
 * neighbour a whole time slice per round trip, while a nap lets the other
 * side run at once.
 */
#ifndef RINGMQ_SHM_TEST_WAIT_H
#define RINGMQ_SHM_TEST_WAIT_H

#include <sched.h>
#include <time.h>

/* One round of waiting; *n counts the rounds (reset it after progress). */
static inline void backoff(unsigned *n)
{
    unsigned k = (*n)++;

    if (k < 64) {
        return;
    }
    if (k < 64 + 8) {
        sched_yield();
        return;
    }
    struct timespec ts = {0, 20000};
    nanosleep(&ts, NULL);
}

#endif
