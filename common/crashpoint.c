/*
 * crashpoint.c -- test crash points (see crashpoint.h).
 */
#include "crashpoint.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "panic.h"

const char *crash_point_name;
static char point[64];
static uint32_t nth = 1, passes;
static int as_assert;

void crash_point_init(uint32_t restarts)
{
    const char *v = getenv("RINGMQ_CRASH_POINT");
    crash_point_name = NULL;
    if (v == NULL || v[0] == '\0' || restarts > 0)
        return;
    size_t n = strcspn(v, ":/");
    if (n >= sizeof(point))
        n = sizeof(point) - 1;
    memcpy(point, v, n);
    point[n] = '\0';
    if (v[n] == ':' && atoi(v + n + 1) > 0)
        nth = (uint32_t)atoi(v + n + 1);
    as_assert = strstr(v + n, "/assert") != NULL;
    crash_point_name = point;
    log_notice("crash point %s armed (pass %u)", point, nth);
}

void crash_point_hit(const char *name)
{
    if (strcmp(name, crash_point_name) != 0 || ++passes != nth)
        return;
    log_notice("crash point %s reached: killing myself", name);
    RMQ_ASSERT(!as_assert && "crash point");
    raise(SIGKILL);
}
