/*
 * main.c -- ringmq's entry point: command line and configuration, then the
 * supervisor.
 */
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "log.h"
#include "proctitle.h"
#include "sup.h"

int main(int argc, char **argv)
{
    static cfg_t cfg;
    proctitle_init(argc, argv);
    cfg_defaults(&cfg);
    int r = cfg_parse_args(&cfg, argc, argv);
    if (r == 1)
        return 0;
    if (r < 0 || cfg_finish(&cfg) < 0)
        return CFG_EXIT_FATAL;
    if (log_setup(cfg.log_types, cfg.log_dests,
                  cfg.log_file[0] ? cfg.log_file : NULL) < 0)
        return CFG_EXIT_FATAL;
    return sup_run(&cfg);
}
