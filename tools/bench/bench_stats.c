/*
 * bench_stats.c -- ringmq-bench's measuring instruments: the log-bucketed
 * latency histogram, per-stream sequence tracking (loss, duplicates,
 * reordering), the monotonic clock, and CPU / memory figures of a process
 * tree read from /proc.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "mem.h"

uint64_t
bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/* ------------------------------------------------------------ histogram */

/* Bucket of v: exact below 128; above, 64 buckets per power of two. */
static size_t
bench_hist_index(uint64_t v)
{
    int msb, shift;

    if (v < 128) {
        return (size_t) v;
    }
    msb = 63 - __builtin_clzll(v);
    shift = msb - 6;
    return 128 + (size_t) (msb - 7) * 64 + (size_t) ((v >> shift) - 64);
}

/* Largest value that falls in bucket i. */
static uint64_t
bench_hist_top(size_t i)
{
    size_t msb, sub;

    if (i < 128) {
        return i;
    }
    msb = (i - 128) / 64 + 7;
    sub = (i - 128) % 64 + 64;
    return (((uint64_t) sub + 1) << (msb - 6)) - 1;
}

void
bench_hist_reset(bench_hist_t *h)
{
    memset(h, 0, sizeof(*h));
}

void
bench_hist_add(bench_hist_t *h, uint64_t v)
{
    if (h->count == 0 || v < h->min) {
        h->min = v;
    }
    if (v > h->max) {
        h->max = v;
    }
    h->count++;
    h->sum += (double) v;
    h->b[bench_hist_index(v)]++;
}

uint64_t
bench_hist_pct(const bench_hist_t *h, double p)
{
    uint64_t want, seen = 0;
    size_t i;

    if (h->count == 0) {
        return 0;
    }
    if (p >= 100.0) {
        return h->max;
    }
    want = (uint64_t) ((p / 100.0) * (double) h->count + 0.999999);
    if (want == 0) {
        want = 1;
    }
    for (i = 0; i < BENCH_HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= want) {
            uint64_t v = bench_hist_top(i);

            if (v > h->max) {
                v = h->max;
            }
            if (v < h->min) {
                v = h->min;
            }
            return v;
        }
    }
    return h->max;
}

/* ------------------------------------------------------------ sequences */

int
bench_track_seen(bench_track_t *t, uint32_t seq)
{
    uint32_t back;

    if (seq >= t->next) {
        uint32_t shift = seq - t->next + 1;

        /* The numbers skipped over (t->next .. seq-1) become gaps: bits 1
         * .. shift-1 after the shift; bit 0 is seq itself. */
        if (shift >= 64) {
            t->gaps = ~(uint64_t) 0 << 1;
        } else {
            t->gaps = (t->gaps << shift)
                      | ((((uint64_t) 1 << (shift - 1)) - 1) << 1);
        }
        t->next = seq + 1;
        return BENCH_SEEN_NEW;
    }
    back = t->next - 1 - seq;
    if (back < 64 && (t->gaps & ((uint64_t) 1 << back))) {
        t->gaps &= ~((uint64_t) 1 << back);
        return BENCH_SEEN_REORDERED;
    }
    /* Seen before, or more than 64 behind: counted as a duplicate, which
     * makes the run fail rather than hide a possible duplicate. */
    return BENCH_SEEN_DUP;
}

/* ------------------------------------------------------------ /proc */

typedef struct bench_pstat {
    pid_t pid;
    pid_t ppid;
} bench_pstat_t;

/* Reads pid, ppid and utime+stime+cutime+cstime (clock ticks) from
 * /proc/PID/stat.  Returns 0, or -1 when the process is gone. */
static int
bench_read_stat(pid_t pid, pid_t *ppid, uint64_t *ticks)
{
    char path[64], buf[1024], *p;
    unsigned long long ut, st;
    long long cut, cst;
    int ppid_i;
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
    f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* comm may hold spaces and parentheses: fields follow the last ')'. */
    p = strrchr(buf, ')');
    if (p == NULL) {
        return -1;
    }
    /* state ppid pgrp session tty tpgid flags minflt cminflt majflt
     * cmajflt utime stime cutime cstime */
    if (sscanf(p + 2,
               "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %lld "
               "%lld",
               &ppid_i, &ut, &st, &cut, &cst) != 5) {
        return -1;
    }
    *ppid = ppid_i;
    if (ticks != NULL) {
        *ticks = ut + st + (uint64_t) (cut > 0 ? cut : 0)
                 + (uint64_t) (cst > 0 ? cst : 0);
    }
    return 0;
}

/* VmHWM and VmRSS (kB) from /proc/PID/status; 0 when absent. */
static void
bench_read_status(pid_t pid, uint64_t *hwm, uint64_t *rss)
{
    char path[64], line[256];
    unsigned long long v;
    FILE *f;

    *hwm = 0;
    *rss = 0;
    snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
    f = fopen(path, "r");
    if (f == NULL) {
        return;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "VmHWM: %llu", &v) == 1) {
            *hwm = v;
        } else if (sscanf(line, "VmRSS: %llu", &v) == 1) {
            *rss = v;
        }
    }
    fclose(f);
}

/* Pss (kB) from /proc/PID/smaps_rollup; 0 when unreadable. */
static uint64_t
bench_read_pss(pid_t pid)
{
    char path[64], line[256];
    unsigned long long v = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int) pid);
    f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "Pss: %llu", &v) == 1) {
            break;
        }
    }
    fclose(f);
    return v;
}

int
bench_proc_sample(pid_t root, bench_proc_t *out)
{
    bench_pstat_t *all = NULL;
    size_t n = 0, cap = 0, i;
    pid_t *tree = NULL;
    size_t ntree = 0, head = 0;
    long hz = sysconf(_SC_CLK_TCK);
    uint64_t ticks = 0;
    struct dirent *de;
    DIR *d;
    pid_t ppid;

    memset(out, 0, sizeof(*out));
    if (bench_read_stat(root, &ppid, NULL) < 0) {
        return BENCH_ERR;
    }
    d = opendir("/proc");
    if (d == NULL) {
        fprintf(stderr, "ringmq-bench: opendir(/proc) failed: %s\n",
                strerror(errno));
        return BENCH_ERR;
    }
    while ((de = readdir(d)) != NULL) {
        char *end;
        long v = strtol(de->d_name, &end, 10);

        if (*end != '\0' || v <= 0) {
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 512;
            all = mem_realloc(all, cap * sizeof(*all));
        }
        all[n].pid = (pid_t) v;
        if (bench_read_stat(all[n].pid, &all[n].ppid, NULL) == 0) {
            n++;
        }
    }
    closedir(d);

    /* Breadth first from root over the parent links. */
    tree = mem_alloc((n + 1) * sizeof(*tree));
    tree[ntree++] = root;
    while (head < ntree) {
        pid_t parent = tree[head++];

        for (i = 0; i < n; i++) {
            if (all[i].ppid == parent && all[i].pid != root) {
                tree[ntree++] = all[i].pid;
            }
        }
    }
    for (i = 0; i < ntree; i++) {
        uint64_t t, hwm, rss;

        if (bench_read_stat(tree[i], &ppid, &t) < 0) {
            continue; /* exited meanwhile */
        }
        ticks += t;
        bench_read_status(tree[i], &hwm, &rss);
        out->hwm_kb += hwm;
        out->rss_kb += rss;
        out->pss_kb += bench_read_pss(tree[i]);
        out->nproc++;
    }
    out->cpu_us = hz > 0 ? ticks * 1000000u / (uint64_t) hz : 0;
    mem_free(all);
    mem_free(tree);
    return out->nproc > 0 ? BENCH_OK : BENCH_ERR;
}

uint64_t
bench_self_cpu_us(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_SELF, &ru) < 0) {
        return 0;
    }
    return (uint64_t) ru.ru_utime.tv_sec * 1000000u
           + (uint64_t) ru.ru_utime.tv_usec
           + (uint64_t) ru.ru_stime.tv_sec * 1000000u
           + (uint64_t) ru.ru_stime.tv_usec;
}
