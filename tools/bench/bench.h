/*
 * bench.h -- ringmq-bench, a load generator for MQTT brokers on the local
 * machine: the run configuration, the run state the modules share, and the
 * interfaces of the tool's modules (options, wire codec, statistics, /proc
 * sampling, event loop, report).
 *
 * NOTES: one process, one thread.  Every connection, counter and histogram
 * belongs to the single bench_run_t built by bench_run(); the report reads
 * it after the event loop has ended.  The tool never touches the broker's
 * memory: it only reads /proc for the pid given with --broker-pid.
 */
#ifndef RINGMQ_BENCH_H
#define RINGMQ_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/* Exit codes. */
#define BENCH_EXIT_OK 0      /* every measured message arrived once */
#define BENCH_EXIT_FAIL 1    /* loss, duplicates, errors, or no run */
#define BENCH_EXIT_USAGE 2   /* bad command line */
#define BENCH_EXIT_PLOT 3    /* the run was clean but --plot failed */

/* Function results. */
#define BENCH_OK 0
#define BENCH_ERR (-1)

/* Smallest payload: publisher id, sequence number, send timestamp. */
#define BENCH_PAYLOAD_MIN 16
#define BENCH_PAYLOAD_MAX (16u << 20)

enum bench_scenario {
    BENCH_FANOUT, /* P publishers -> S subscribers, one topic */
    BENCH_FANIN,  /* P publishers -> 1 subscriber, one topic */
    BENCH_PAIRS,  /* publisher i -> subscriber i, topic of its own */
    BENCH_SHARED, /* P publishers -> S subscribers of $share/g/topic */
    BENCH_STORM   /* S clients connect and disconnect, in rounds */
};

typedef struct bench_cfg {
    const char *host;
    int port;
    struct sockaddr_storage addr; /* host:port resolved, loopback */
    socklen_t addrlen;
    int scenario;
    int publishers;
    int subscribers;       /* storm: clients per round */
    int qos;
    int version;           /* protocol level: 4 (3.1.1) or 5 */
    size_t payload;
    double rate;           /* msgs/s per publisher; 0 when closed loop */
    int window;            /* closed loop window per publisher; 0: rate */
    double duration;       /* measured seconds */
    double warmup;         /* seconds before the measured interval */
    double drain;          /* seconds to wait for stragglers at the end */
    pid_t broker_pid;      /* 0: no broker figures */
    bool json;
    bool quiet;            /* no progress lines */
    const char *plot;      /* PNG path or NULL */
    int connect_batch;     /* connection attempts at once */
    double connect_timeout;
    int keepalive;
    char topic[128];       /* topic prefix, "ringmq-bench/PID" */
} bench_cfg_t;

/*
 * Parses argv into *cfg.  Returns BENCH_OK, or BENCH_ERR after printing a
 * message on stderr (the caller exits 2); sets *help when --help was given
 * (usage already printed on stdout).
 */
int bench_opts_parse(int argc, char **argv, bench_cfg_t *cfg, bool *help);

/* Name of a scenario for reports ("fanout"). */
const char *bench_scenario_name(int scenario);

/* ------------------------------------------------------------ statistics */

/*
 * Log-bucketed histogram of nanosecond values (HDR style): exact below 128,
 * then 64 buckets per power of two, so a reported value is within 1/64
 * (1.6 %) of the true one.  Fixed size, no allocation.
 */
#define BENCH_HIST_BUCKETS (128 + 57 * 64)

typedef struct bench_hist {
    uint64_t count;
    uint64_t min;
    uint64_t max;
    double sum;
    uint64_t b[BENCH_HIST_BUCKETS];
} bench_hist_t;

void bench_hist_reset(bench_hist_t *h);
void bench_hist_add(bench_hist_t *h, uint64_t v);

/* The value at percentile p (0..100): the top of its bucket, clamped to
 * [min, max].  0 when the histogram is empty. */
uint64_t bench_hist_pct(const bench_hist_t *h, double p);

/*
 * Sequence tracking of one stream (one publisher as seen by one receiver):
 * the highest sequence number seen and which of the 64 below it are still
 * missing, so a late arrival is told apart from a duplicate.
 */
typedef struct bench_track {
    uint32_t next;          /* highest seen + 1 (0: none yet) */
    uint64_t gaps;          /* bit i: sequence next-1-i not seen yet */
    uint64_t measured;      /* distinct measured messages received */
} bench_track_t;

enum bench_seen {
    BENCH_SEEN_NEW,       /* in order (or after a gap) */
    BENCH_SEEN_REORDERED, /* filled a gap below the highest */
    BENCH_SEEN_DUP,       /* seen before, or too old to tell */
};

/* Records seq on t; returns what it was. */
int bench_track_seen(bench_track_t *t, uint32_t seq);

/* ------------------------------------------------------------ /proc */

typedef struct bench_proc {
    int nproc;          /* processes in the tree */
    uint64_t cpu_us;    /* utime+stime (+ reaped children) of the tree */
    uint64_t hwm_kb;    /* sum of VmHWM */
    uint64_t rss_kb;    /* sum of VmRSS */
    uint64_t pss_kb;    /* sum of Pss: shared pages counted once overall */
} bench_proc_t;

/*
 * Samples the process tree rooted at pid (pid and every descendant, found
 * by scanning /proc).  Returns BENCH_OK, or BENCH_ERR when pid is gone.
 */
int bench_proc_sample(pid_t pid, bench_proc_t *out);

/* CPU time (user + system) of this process in microseconds. */
uint64_t bench_self_cpu_us(void);

/* ------------------------------------------------------------ results */

/* One second of the run, for the progress line and the plot. */
typedef struct bench_tick {
    double t;              /* seconds since publishing started */
    int phase;             /* BENCH_PH_* */
    uint64_t sent;         /* messages published in this second */
    uint64_t delivered;    /* messages received in this second */
    uint64_t p50, p90, p99, p999, max; /* latency ns, 0 when none */
} bench_tick_t;

enum bench_phase {
    BENCH_PH_SETUP,
    BENCH_PH_WARMUP,
    BENCH_PH_MEASURE,
    BENCH_PH_DRAIN,
    BENCH_PH_DONE
};

/* What a run measured; filled by bench_run(), read by the report. */
typedef struct bench_result {
    bool setup_failed;
    char setup_error[256];

    /* messages (measured interval only, unless said otherwise) */
    uint64_t sent_total;       /* every PUBLISH, warm-up included */
    uint64_t sent;             /* measured PUBLISHes */
    uint64_t expected;         /* sent x receivers */
    uint64_t delivered;        /* distinct measured deliveries */
    uint64_t lost;
    uint64_t duplicates;
    uint64_t reordered;
    uint64_t unexpected;       /* not ours, misrouted, malformed payload */
    uint64_t streams;          /* (publisher, receiver) streams tracked */
    uint64_t streams_lossy;    /* streams with at least one loss */
    uint64_t send_skipped;     /* rate mode: sends dropped by back-pressure */
    uint64_t window_timeouts;  /* closed loop: released after 1 s */
    uint64_t pub_refused;      /* v5 acks with a failure reason code */

    double measured_s;         /* length of the measured interval */
    double drain_s;            /* time spent waiting after it */
    bool drain_complete;       /* everything arrived before the timeout */

    bench_hist_t latency;      /* ns, measured deliveries */
    bench_hist_t connect;      /* ns, CONNECT to CONNACK */
    uint64_t connects_ok;
    uint64_t connects_failed;
    uint64_t conn_lost;        /* connections closed during the run */
    uint64_t protocol_errors;  /* unparsable or unexpected packets */
    char first_error[256];     /* first connection error, for the report */

    /* storm */
    uint64_t storm_rounds;

    bool have_broker;
    bench_proc_t broker_before;
    bench_proc_t broker_after;
    uint64_t client_cpu_us;

    bench_tick_t *ticks;
    size_t nticks;
} bench_result_t;

/*
 * Runs the scenario of cfg against the broker and fills *res.  Returns
 * BENCH_OK when the run happened (its figures may still show loss), or
 * BENCH_ERR when it could not start (res->setup_error says why).
 * res->ticks is allocated here and freed by bench_result_free().
 */
int bench_run(const bench_cfg_t *cfg, bench_result_t *res);
void bench_result_free(bench_result_t *res);

/* True when the run is clean: what the exit code 0 means. */
bool bench_result_ok(const bench_cfg_t *cfg, const bench_result_t *res);

/* Prints the human-readable report on stdout. */
void bench_report_text(const bench_cfg_t *cfg, const bench_result_t *res);

/* Prints every figure as one JSON object on stdout. */
void bench_report_json(const bench_cfg_t *cfg, const bench_result_t *res);

/* True when gnuplot is found on PATH. */
bool bench_plot_available(void);

/*
 * Writes cfg->plot (PNG: latency percentiles and delivery rate per second)
 * with gnuplot.  Returns BENCH_OK, or BENCH_ERR after a message on stderr.
 */
int bench_plot(const bench_cfg_t *cfg, const bench_result_t *res);

/* Monotonic clock in nanoseconds. */
uint64_t bench_now_ns(void);

#endif
