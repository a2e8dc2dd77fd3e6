/*
 * bench_report.c -- what ringmq-bench prints: a human-readable summary, the
 * same figures as one JSON object, and a PNG timeline drawn by gnuplot.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "mqtt.h"

static const char *
bench_version_name(int version)
{
    return version == MQTT_V5 ? "5" : "3.1.1";
}

static double
bench_pct_of(uint64_t part, uint64_t whole)
{
    return whole > 0 ? 100.0 * (double) part / (double) whole : 0.0;
}

/* Broker CPU microseconds over the measured interval. */
static uint64_t
bench_broker_cpu(const bench_result_t *r)
{
    return r->broker_after.cpu_us > r->broker_before.cpu_us
               ? r->broker_after.cpu_us - r->broker_before.cpu_us
               : 0;
}

/* What the broker's CPU time is divided by: deliveries, or connects. */
static uint64_t
bench_work_units(const bench_cfg_t *cfg, const bench_result_t *r)
{
    return cfg->scenario == BENCH_STORM ? r->connects_ok : r->delivered;
}

static double
bench_ms(uint64_t ns)
{
    return (double) ns / 1e6;
}

static double
bench_us(uint64_t ns)
{
    return (double) ns / 1e3;
}

void
bench_report_text(const bench_cfg_t *cfg, const bench_result_t *r)
{
    const bench_hist_t *l = &r->latency, *c = &r->connect;
    bool storm = cfg->scenario == BENCH_STORM;
    double secs = r->measured_s > 0 ? r->measured_s : 1;

    printf("ringmq-bench: %s, MQTT %s, ", bench_scenario_name(cfg->scenario),
           bench_version_name(cfg->version));
    if (storm) {
        printf("%d clients per round\n", cfg->subscribers);
    } else {
        printf("QoS %d, %d publisher(s) -> %d subscriber(s), %zu-byte "
               "payload, ", cfg->qos, cfg->publishers, cfg->subscribers,
               cfg->payload);
        if (cfg->window > 0) {
            printf("closed loop, window %d\n", cfg->window);
        } else {
            printf("%g msg/s per publisher\n", cfg->rate);
        }
    }
    printf("interval   measured %.2f s (warm-up %.2f s, drain %.2f s%s)\n",
           r->measured_s, cfg->warmup, r->drain_s,
           storm || r->drain_complete ? "" : ", timed out");
    if (!storm) {
        printf("messages   sent %lu  expected %lu  delivered %lu (%.3f %%)  "
               "lost %lu  duplicates %lu  reordered %lu  unexpected %lu\n",
               (unsigned long) r->sent, (unsigned long) r->expected,
               (unsigned long) r->delivered,
               bench_pct_of(r->delivered, r->expected),
               (unsigned long) r->lost, (unsigned long) r->duplicates,
               (unsigned long) r->reordered, (unsigned long) r->unexpected);
        printf("streams    %lu (publisher, receiver) streams, %lu with loss",
               (unsigned long) r->streams, (unsigned long) r->streams_lossy);
        if (r->send_skipped > 0) {
            printf("; %lu sends skipped (back-pressure)",
                   (unsigned long) r->send_skipped);
        }
        if (r->window_timeouts > 0) {
            printf("; %lu window timeouts", (unsigned long) r->window_timeouts);
        }
        printf("\n");
        printf("rate       sent %.1f msg/s  delivered %.1f msg/s\n",
               (double) r->sent / secs, (double) r->delivered / secs);
        printf("latency    p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max "
               "%.3f ms  (mean %.3f ms, %lu samples)\n",
               bench_ms(bench_hist_pct(l, 50)), bench_ms(bench_hist_pct(l, 90)),
               bench_ms(bench_hist_pct(l, 99)),
               bench_ms(bench_hist_pct(l, 99.9)), bench_ms(l->max),
               l->count ? l->sum / (double) l->count / 1e6 : 0.0,
               (unsigned long) l->count);
    } else {
        printf("storm      %lu rounds, %.1f connects/s\n",
               (unsigned long) r->storm_rounds,
               (double) r->connects_ok / secs);
    }
    printf("connect    %lu ok, %lu failed  p50 %.3f  p99 %.3f  max %.3f ms\n",
           (unsigned long) r->connects_ok, (unsigned long) r->connects_failed,
           bench_ms(bench_hist_pct(c, 50)), bench_ms(bench_hist_pct(c, 99)),
           bench_ms(c->max));
    if (r->have_broker) {
        uint64_t cpu = bench_broker_cpu(r), units = bench_work_units(cfg, r);

        printf("broker     pid %d, %d processes: cpu %lu us (%.2f us per %s), "
               "peak RSS %lu kB (sum of VmHWM), Pss %lu kB at the end\n",
               (int) cfg->broker_pid, r->broker_after.nproc,
               (unsigned long) cpu,
               units ? (double) cpu / (double) units : 0.0,
               storm ? "connect" : "delivered message",
               (unsigned long) r->broker_after.hwm_kb,
               (unsigned long) r->broker_after.pss_kb);
    } else if (cfg->broker_pid > 0) {
        printf("broker     pid %d could not be read\n", (int) cfg->broker_pid);
    }
    printf("client     cpu %lu us\n", (unsigned long) r->client_cpu_us);
    if (r->conn_lost || r->protocol_errors || r->pub_refused) {
        printf("errors     %lu connections lost, %lu protocol errors, %lu "
               "publications refused; first: %s\n",
               (unsigned long) r->conn_lost,
               (unsigned long) r->protocol_errors,
               (unsigned long) r->pub_refused, r->first_error);
    } else if (r->first_error[0] != '\0') {
        printf("errors     first: %s\n", r->first_error);
    }
    printf("result     %s\n", bench_result_ok(cfg, r) ? "OK" : "FAILED");
}

/* ------------------------------------------------------------ JSON */

static void
bench_json_str(const char *s)
{
    putchar('"');
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char) *s;

        if (ch == '"' || ch == '\\') {
            printf("\\%c", ch);
        } else if (ch < 0x20) {
            printf("\\u%04x", ch);
        } else {
            putchar(ch);
        }
    }
    putchar('"');
}

static void
bench_json_hist(const char *name, const bench_hist_t *h, double (*unit)(
                    uint64_t))
{
    printf("\"%s\": {\"count\": %lu, \"min\": %.3f, \"mean\": %.3f, "
           "\"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, \"p999\": %.3f, "
           "\"max\": %.3f}",
           name, (unsigned long) h->count, unit(h->min),
           h->count ? unit((uint64_t) (h->sum / (double) h->count)) : 0.0,
           unit(bench_hist_pct(h, 50)), unit(bench_hist_pct(h, 90)),
           unit(bench_hist_pct(h, 99)), unit(bench_hist_pct(h, 99.9)),
           unit(h->max));
}

void
bench_report_json(const bench_cfg_t *cfg, const bench_result_t *r)
{
    double secs = r->measured_s > 0 ? r->measured_s : 1;
    size_t i;

    printf("{\n  \"tool\": \"ringmq-bench\",\n  \"config\": {\"scenario\": ");
    bench_json_str(bench_scenario_name(cfg->scenario));
    printf(", \"host\": ");
    bench_json_str(cfg->host);
    printf(", \"port\": %d, \"publishers\": %d, \"subscribers\": %d, "
           "\"qos\": %d, \"mqtt\": \"%s\", \"payload\": %zu, \"rate\": %g, "
           "\"window\": %d, \"duration_s\": %g, \"warmup_s\": %g, "
           "\"drain_s\": %g, \"broker_pid\": %d, \"topic\": ",
           cfg->port, cfg->publishers, cfg->subscribers, cfg->qos,
           bench_version_name(cfg->version), cfg->payload, cfg->rate,
           cfg->window, cfg->duration, cfg->warmup, cfg->drain,
           (int) cfg->broker_pid);
    bench_json_str(cfg->topic);
    printf("},\n  \"ok\": %s,\n  \"setup_error\": ",
           bench_result_ok(cfg, r) ? "true" : "false");
    if (r->setup_failed) {
        bench_json_str(r->setup_error);
    } else {
        printf("null");
    }
    printf(",\n  \"interval\": {\"measured_s\": %.3f, \"drain_s\": %.3f, "
           "\"drain_complete\": %s},\n",
           r->measured_s, r->drain_s, r->drain_complete ? "true" : "false");
    printf("  \"messages\": {\"sent_total\": %lu, \"sent\": %lu, "
           "\"expected\": %lu, \"delivered\": %lu, \"delivered_pct\": %.4f, "
           "\"lost\": %lu, \"duplicates\": %lu, \"reordered\": %lu, "
           "\"unexpected\": %lu, \"streams\": %lu, \"streams_lossy\": %lu, "
           "\"send_skipped\": %lu, \"window_timeouts\": %lu, "
           "\"pub_refused\": %lu},\n",
           (unsigned long) r->sent_total, (unsigned long) r->sent,
           (unsigned long) r->expected, (unsigned long) r->delivered,
           bench_pct_of(r->delivered, r->expected), (unsigned long) r->lost,
           (unsigned long) r->duplicates, (unsigned long) r->reordered,
           (unsigned long) r->unexpected, (unsigned long) r->streams,
           (unsigned long) r->streams_lossy, (unsigned long) r->send_skipped,
           (unsigned long) r->window_timeouts, (unsigned long) r->pub_refused);
    printf("  \"rates\": {\"sent_per_s\": %.3f, \"delivered_per_s\": %.3f, "
           "\"connects_per_s\": %.3f},\n",
           (double) r->sent / secs, (double) r->delivered / secs,
           cfg->scenario == BENCH_STORM ? (double) r->connects_ok / secs
                                        : 0.0);
    printf("  ");
    bench_json_hist("latency_us", &r->latency, bench_us);
    printf(",\n  ");
    bench_json_hist("connect_ms", &r->connect, bench_ms);
    printf(",\n  \"connections\": {\"ok\": %lu, \"failed\": %lu, "
           "\"lost\": %lu, \"protocol_errors\": %lu, \"storm_rounds\": %lu, "
           "\"first_error\": ",
           (unsigned long) r->connects_ok, (unsigned long) r->connects_failed,
           (unsigned long) r->conn_lost, (unsigned long) r->protocol_errors,
           (unsigned long) r->storm_rounds);
    if (r->first_error[0] != '\0') {
        bench_json_str(r->first_error);
    } else {
        printf("null");
    }
    printf("},\n  \"broker\": ");
    if (r->have_broker) {
        uint64_t cpu = bench_broker_cpu(r), units = bench_work_units(cfg, r);

        printf("{\"pid\": %d, \"processes\": %d, \"cpu_us\": %lu, "
               "\"cpu_us_per_msg\": %.4f, \"cpu_us_per_connect\": %.4f, "
               "\"peak_rss_kb\": %lu, \"rss_kb\": %lu, \"pss_kb\": %lu, "
               "\"cpu_us_before\": %lu, \"cpu_us_after\": %lu}",
               (int) cfg->broker_pid, r->broker_after.nproc,
               (unsigned long) cpu,
               cfg->scenario != BENCH_STORM && units
                   ? (double) cpu / (double) units : 0.0,
               cfg->scenario == BENCH_STORM && units
                   ? (double) cpu / (double) units : 0.0,
               (unsigned long) r->broker_after.hwm_kb,
               (unsigned long) r->broker_after.rss_kb,
               (unsigned long) r->broker_after.pss_kb,
               (unsigned long) r->broker_before.cpu_us,
               (unsigned long) r->broker_after.cpu_us);
    } else {
        printf("null");
    }
    printf(",\n  \"client\": {\"cpu_us\": %lu},\n  \"timeline\": [",
           (unsigned long) r->client_cpu_us);
    for (i = 0; i < r->nticks; i++) {
        const bench_tick_t *t = &r->ticks[i];
        static const char *const ph[] = {"setup", "warmup", "measure",
                                         "drain", "done"};

        printf("%s\n    {\"t\": %.3f, \"phase\": \"%s\", \"sent\": %lu, "
               "\"delivered\": %lu, \"p50_us\": %.3f, \"p90_us\": %.3f, "
               "\"p99_us\": %.3f, \"p999_us\": %.3f, \"max_us\": %.3f}",
               i ? "," : "", t->t, ph[t->phase], (unsigned long) t->sent,
               (unsigned long) t->delivered, bench_us(t->p50),
               bench_us(t->p90), bench_us(t->p99), bench_us(t->p999),
               bench_us(t->max));
    }
    printf("%s]\n}\n", r->nticks ? "\n  " : "");
}

/* ------------------------------------------------------------ plot */

bool
bench_plot_available(void)
{
    const char *path = getenv("PATH");
    char buf[4096];

    if (path == NULL) {
        path = "/usr/bin:/bin";
    }
    while (*path != '\0') {
        size_t n = strcspn(path, ":");

        if (n > 0 && n < sizeof(buf) - 16) {
            memcpy(buf, path, n);
            strcpy(buf + n, "/gnuplot");
            if (access(buf, X_OK) == 0) {
                return true;
            }
        }
        path += n;
        if (*path == ':') {
            path++;
        }
    }
    return false;
}

/* Writes the timeline as columns for gnuplot ('?' where no value). */
static int
bench_plot_data(const char *path, const bench_result_t *r)
{
    FILE *f = fopen(path, "w");
    size_t i;

    if (f == NULL) {
        fprintf(stderr, "ringmq-bench: --plot: fopen(%s) failed: %s\n", path,
                strerror(errno));
        return BENCH_ERR;
    }
    fprintf(f, "# t sent delivered p50_ms p90_ms p99_ms p999_ms max_ms\n");
    for (i = 0; i < r->nticks; i++) {
        const bench_tick_t *t = &r->ticks[i];

        if (t->max == 0) {
            fprintf(f, "%.3f %lu %lu ? ? ? ? ?\n", t->t,
                    (unsigned long) t->sent, (unsigned long) t->delivered);
        } else {
            fprintf(f, "%.3f %lu %lu %.6f %.6f %.6f %.6f %.6f\n", t->t,
                    (unsigned long) t->sent, (unsigned long) t->delivered,
                    bench_ms(t->p50), bench_ms(t->p90), bench_ms(t->p99),
                    bench_ms(t->p999), bench_ms(t->max));
        }
    }
    if (fclose(f) != 0) {
        fprintf(stderr, "ringmq-bench: --plot: writing %s failed: %s\n", path,
                strerror(errno));
        return BENCH_ERR;
    }
    return BENCH_OK;
}

int
bench_plot(const bench_cfg_t *cfg, const bench_result_t *r)
{
    char dir[] = "/tmp/ringmq-bench-plot-XXXXXX";
    char dat[64], gp[64];
    bool storm = cfg->scenario == BENCH_STORM;
    int rc = BENCH_ERR, status;
    pid_t pid;
    FILE *f;

    if (!bench_plot_available()) {
        fprintf(stderr, "ringmq-bench: --plot: gnuplot is not installed "
                "(apt-get install gnuplot-nox); no plot written\n");
        return BENCH_ERR;
    }
    if (r->nticks == 0) {
        fprintf(stderr, "ringmq-bench: --plot: the run was shorter than a "
                "second; nothing to plot\n");
        return BENCH_ERR;
    }
    if (mkdtemp(dir) == NULL) {
        fprintf(stderr, "ringmq-bench: --plot: mkdtemp() failed: %s\n",
                strerror(errno));
        return BENCH_ERR;
    }
    snprintf(dat, sizeof(dat), "%s/timeline.dat", dir);
    snprintf(gp, sizeof(gp), "%s/plot.gp", dir);
    if (bench_plot_data(dat, r) < 0) {
        goto fail;
    }
    f = fopen(gp, "w");
    if (f == NULL) {
        fprintf(stderr, "ringmq-bench: --plot: fopen(%s) failed: %s\n", gp,
                strerror(errno));
        goto fail;
    }
    fprintf(f,
            "set terminal pngcairo size 1100,800 font ',10'\n"
            "set output '%s'\n"
            "set datafile missing '?'\n"
            "set multiplot layout 2,1 title 'ringmq-bench %s, MQTT %s, "
            "QoS %d, %d pub -> %d sub, %zu B'\n"
            "set grid\nset key top left\nset xlabel 'seconds since start "
            "(shaded: measured interval)'\nset xrange [0:*]\n"
            "set object 1 rect from %.3f, graph 0 to %.3f, graph 1 "
            "fc rgb '#e8f0ff' fs solid 1.0 behind\n"
            "set logscale y\nset ylabel '%s (ms)'\n"
            "plot '%s' using 1:4 with linespoints pt 7 ps 0.5 title 'p50', "
            "'' using 1:6 with linespoints pt 7 ps 0.5 title 'p99', "
            "'' using 1:7 with linespoints pt 7 ps 0.5 title 'p99.9', "
            "'' using 1:8 with linespoints pt 7 ps 0.5 title 'max'\n"
            "unset logscale y\nset yrange [0:*]\n"
            "set offsets 0, 0, graph 0.1, 0\nset ylabel '%s per second'\n"
            "plot '%s' using 1:3 with steps lw 2 title '%s'%s\n"
            "unset multiplot\n",
            cfg->plot, bench_scenario_name(cfg->scenario),
            bench_version_name(cfg->version), cfg->qos, cfg->publishers,
            cfg->subscribers, cfg->payload, cfg->warmup,
            cfg->warmup + r->measured_s,
            storm ? "connect time" : "latency", dat,
            storm ? "connects" : "messages", dat,
            storm ? "connects" : "delivered",
            storm ? "" : ", '' using 1:2 with steps title 'sent'");
    if (fclose(f) != 0) {
        fprintf(stderr, "ringmq-bench: --plot: writing %s failed\n", gp);
        goto fail;
    }
    fflush(stdout);
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "ringmq-bench: --plot: fork() failed: %s\n",
                strerror(errno));
        goto fail;
    }
    if (pid == 0) {
        /* gnuplot's chatter goes to stderr, never into --json output. */
        dup2(STDERR_FILENO, STDOUT_FILENO);
        execlp("gnuplot", "gnuplot", gp, (char *) NULL);
        fprintf(stderr, "ringmq-bench: --plot: exec gnuplot failed: %s\n",
                strerror(errno));
        _exit(127);
    }
    if (waitpid(pid, &status, 0) < 0) {
        fprintf(stderr, "ringmq-bench: --plot: waitpid() failed: %s\n",
                strerror(errno));
        goto fail;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "ringmq-bench: --plot: gnuplot failed (status %d); "
                "no plot written\n", status);
        goto fail;
    }
    if (access(cfg->plot, R_OK) != 0) {
        fprintf(stderr, "ringmq-bench: --plot: gnuplot wrote no %s\n",
                cfg->plot);
        goto fail;
    }
    rc = BENCH_OK;
fail:
    unlink(dat);
    unlink(gp);
    rmdir(dir);
    return rc;
}
