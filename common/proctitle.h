/*
 * proctitle.h -- process names in ps and /proc/PID/cmdline, nginx style
 * ("ringmq: frontend 1"): the argv area is rewritten in place, after the
 * environment strings were moved out of its way.
 */
#ifndef RINGMQ_PROCTITLE_H
#define RINGMQ_PROCTITLE_H

/* Call once at start, before anything keeps pointers into environ. */
void proctitle_init(int argc, char **argv);

/* Sets the title (truncated to the argv area) and the thread name. */
void proctitle_set(const char *title);

#endif
