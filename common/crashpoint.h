/*
 * crashpoint.h -- named places where a test can have a child kill itself
 * (SIGKILL), to check that what a kill there leaves behind is recovered
 * (PostgreSQL's injection points, in small).  Off unless the environment
 * variable RINGMQ_CRASH_POINT names one: "NAME" or "NAME:N" (the N-th
 * time a child passes it, default 1), and "/assert" after it makes the
 * child fail an RMQ_ASSERT there instead (last words, then SIGABRT).  A
 * point fires once per broker (a word in shm says it did), in whichever
 * child gets there first, so the respawned child and the others run
 * through.  Costs one predictable branch per point when off.
 */
#ifndef RINGMQ_CRASHPOINT_H
#define RINGMQ_CRASHPOINT_H

#include <stdint.h>

extern const char *crash_point_name;

/* Reads RINGMQ_CRASH_POINT in a child; fired: a word shared by every
 * process of the broker, 0 until a point fired. */
void crash_point_init(uint32_t *fired);

/* Kills the process (SIGKILL, or a failed assertion) when name is the
 * armed point and this is the N-th pass. */
void crash_point_hit(const char *name);

#define CRASH_POINT(name)                                                    \
    do {                                                                     \
        if (__builtin_expect(crash_point_name != 0, 0))                      \
            crash_point_hit(name);                                           \
    } while (0)

#endif
