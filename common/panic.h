/*
 * panic.h -- a child process's last words: a failed RMQ_ASSERT or a fatal
 * signal writes one line into a buffer in shared memory (shm_panic_t),
 * which the supervisor logs after the child died.
 */
#ifndef RINGMQ_PANIC_H
#define RINGMQ_PANIC_H

#include <stdint.h>

/* Where this process's last words go: text (cap bytes) and its length
 * word.  Installs handlers for SIGSEGV, SIGBUS, SIGFPE, SIGILL and
 * SIGABRT on an alternate stack; each writes the signal, the faulting
 * address and the stack's return addresses, then lets the signal kill the
 * process.  Call once, early in the child. */
void panic_init(char *text, uint32_t *len, uint32_t cap);

/* Writes "assertion failed: EXPR at FILE:LINE" and aborts. */
__attribute__((noreturn)) void panic_assert(const char *expr,
                                            const char *file, int line);

/* An invariant checked in release builds too: a failure kills this child
 * (never the supervisor, which has no panic buffer of its own and
 * aborts). */
#define RMQ_ASSERT(cond)                                                     \
    do {                                                                     \
        if (__builtin_expect(!(cond), 0))                                    \
            panic_assert(#cond, __FILE__, __LINE__);                         \
    } while (0)

#endif
