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
static uint32_t *fired_word;

void crash_point_init(uint32_t *fired)
{
    const char *v = getenv("RINGMQ_CRASH_POINT");
    crash_point_name = NULL;
    fired_word = fired;
    if (v == NULL || v[0] == '\0' ||
        __atomic_load_n(fired, __ATOMIC_RELAXED))
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
    if (strcmp(name, crash_point_name) != 0 || ++passes != nth ||
        __atomic_exchange_n(fired_word, 1, __ATOMIC_RELAXED) != 0)
        return;
    log_notice("crash point %s reached: killing myself", name);
    RMQ_ASSERT(!as_assert && "crash point");
    raise(SIGKILL);
}
