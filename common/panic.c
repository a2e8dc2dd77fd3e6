/*
 * panic.c -- a child's last words.  Everything that runs in the signal
 * handler is async-signal-safe: no stdio, no allocation, formatting by
 * hand; backtrace() is called once at init so that its library is loaded
 * before a crash needs it.
 */
#include "panic.h"

#include <execinfo.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *pan_text;
static uint32_t *pan_len;
static uint32_t pan_cap;
static char alt_stack[64 * 1024];

static void put(const char *s, size_t n)
{
    if (pan_text == NULL)
        return;
    uint32_t at = *pan_len;
    for (size_t i = 0; i < n && at < pan_cap; i++)
        pan_text[at++] = s[i];
    *pan_len = at;
}

static void puts_(const char *s)
{
    put(s, strlen(s));
}

static void put_uint(uint64_t v, unsigned base)
{
    char b[24];
    int i = (int)sizeof(b);
    do {
        b[--i] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v && i > 0);
    if (base == 16)
        puts_("0x");
    put(b + i, sizeof(b) - (size_t)i);
}

static void put_stack(void)
{
    void *frames[24];
    int n = backtrace(frames, 24);
    puts_("; stack:");
    for (int i = 0; i < n; i++) {
        puts_(" ");
        put_uint((uint64_t)(uintptr_t)frames[i], 16);
    }
}

static void on_fatal(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    puts_("fatal signal ");
    put_uint((uint64_t)sig, 10);
    puts_(" (");
    puts_(sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");
    puts_(")");
    if (si->si_code <= 0) {
        /* sent (kill, raise, abort): si_addr means nothing then */
        puts_(" sent by pid ");
        put_uint((uint64_t)si->si_pid, 10);
    } else {
        puts_(" at address ");
        put_uint((uint64_t)(uintptr_t)si->si_addr, 16);
    }
    put_stack();
    /* SA_RESETHAND restored the default action: returning re-executes
     * the faulting instruction (or raise() for the rest) and dies. */
    if (sig == SIGABRT || si->si_code <= 0)
        raise(sig);
}

void panic_init(char *text, uint32_t *len, uint32_t cap)
{
    pan_text = text;
    pan_len = len;
    pan_cap = cap;
    *pan_len = 0;
    void *warm[2];
    backtrace(warm, 2);
    stack_t ss = {.ss_sp = alt_stack, .ss_size = sizeof(alt_stack)};
    sigaltstack(&ss, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_fatal;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        sigaction(sigs[i], &sa, NULL);
}

void panic_assert(const char *expr, const char *file, int line)
{
    if (pan_text == NULL) {
        /* Not a child (the supervisor, a tool): straight to stderr. */
        static const char m[] = "ringmq: assertion failed: ";
        ssize_t w = write(2, m, sizeof(m) - 1);
        w = write(2, expr, strlen(expr));
        w = write(2, "\n", 1);
        (void)w;
        (void)file;
        (void)line;
        abort();
    }
    puts_("assertion failed: ");
    puts_(expr);
    puts_(" at ");
    puts_(file);
    puts_(":");
    put_uint((uint64_t)(line > 0 ? line : 0), 10);
    puts_("; ");
    abort(); /* the SIGABRT handler adds the stack to the same line */
}
