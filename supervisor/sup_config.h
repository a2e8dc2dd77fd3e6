/*
 * sup_config.h -- the configuration as the admin socket shows it, and
 * reload (SIGHUP, admin "reload"): re-read the file, apply what can change
 * while the broker runs, name what needs a restart.
 */
#ifndef RINGMQ_SUP_CONFIG_H
#define RINGMQ_SUP_CONFIG_H

#include <cjson/cJSON.h>

#include "config.h"
#include "sup_admin_req.h"

#define SUP_CFG_MAX_KEYS 32

/* A new object with the effective configuration c (log_type: the types
 * enabled now, which log_level or reload may have changed). */
cJSON *sup_cfg_json(const cfg_t *c);

/*
 * Names the keys whose value differs between the running configuration
 * run (with log types live_types enabled now) and the newly read next.
 * applied gets the keys that reload applies live (log_type), restart the
 * others; each array holds SUP_CFG_MAX_KEYS names and *n_applied,
 * *n_restart their counts.
 */
void sup_cfg_diff(const cfg_t *run, unsigned live_types, const cfg_t *next,
                  const char **applied, int *n_applied,
                  const char **restart, int *n_restart);

/*
 * Re-reads run->config_file with run's command-line options (-v, -p),
 * applies the log types and returns {"applied": [...], "needs_restart":
 * [...], "messages": [...]} (messages: what the parser printed), or NULL
 * with err set (code config_error: the file has an error, nothing
 * changed).  Everything is also logged.
 */
cJSON *sup_cfg_reload(const cfg_t *run, adm_err_t *err);

#endif
