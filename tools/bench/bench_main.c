/*
 * bench_main.c -- entry point of ringmq-bench: parse the command line, run
 * the scenario, print the report, draw the plot, and turn the outcome into
 * the exit status (0 clean, 1 loss or errors, 2 usage, 3 plot failed).
 */
#include <stdio.h>

#include "bench.h"

/* One line on stderr saying why the exit status is not 0. */
static void
bench_say_why(const bench_cfg_t *cfg, const bench_result_t *r)
{
    if (r->setup_failed) {
        fprintf(stderr, "ringmq-bench: %s\n", r->setup_error);
        return;
    }
    if (cfg->scenario == BENCH_STORM) {
        fprintf(stderr, "ringmq-bench: FAILED: %lu of %lu connections "
                "failed%s%s\n", (unsigned long) r->connects_failed,
                (unsigned long) (r->connects_ok + r->connects_failed),
                r->first_error[0] ? "; first: " : "", r->first_error);
        return;
    }
    if (r->expected == 0) {
        fprintf(stderr, "ringmq-bench: FAILED: no message was sent in the "
                "measured interval (duration too short for the rate?)\n");
        return;
    }
    fprintf(stderr, "ringmq-bench: FAILED: %lu of %lu messages lost, %lu "
            "duplicates, %lu unexpected, %lu connections lost, %lu protocol "
            "errors%s%s\n", (unsigned long) r->lost,
            (unsigned long) r->expected, (unsigned long) r->duplicates,
            (unsigned long) r->unexpected, (unsigned long) r->conn_lost,
            (unsigned long) r->protocol_errors,
            r->first_error[0] ? "; first error: " : "", r->first_error);
}

int
main(int argc, char **argv)
{
    bench_result_t res;
    bench_cfg_t cfg;
    bool help, ok;
    int code;

    if (bench_opts_parse(argc, argv, &cfg, &help) < 0) {
        return BENCH_EXIT_USAGE;
    }
    if (help) {
        return BENCH_EXIT_OK;
    }
    if (cfg.plot != NULL && !bench_plot_available()) {
        fprintf(stderr, "ringmq-bench: --plot: gnuplot is not installed "
                "(apt-get install gnuplot-nox): the run goes on, but no "
                "plot will be written and the exit status will be %d\n",
                BENCH_EXIT_PLOT);
    }

    bench_run(&cfg, &res);
    ok = bench_result_ok(&cfg, &res);
    if (cfg.json) {
        bench_report_json(&cfg, &res);
    } else if (!res.setup_failed) {
        bench_report_text(&cfg, &res);
    }
    fflush(stdout);
    code = ok ? BENCH_EXIT_OK : BENCH_EXIT_FAIL;
    if (!ok) {
        bench_say_why(&cfg, &res);
    }
    if (cfg.plot != NULL && !res.setup_failed) {
        if (bench_plot(&cfg, &res) < 0) {
            if (code == BENCH_EXIT_OK) {
                code = BENCH_EXIT_PLOT;
            }
        } else if (!cfg.quiet) {
            fprintf(stderr, "ringmq-bench: plot written to %s\n", cfg.plot);
        }
    }
    bench_result_free(&res);
    return code;
}
