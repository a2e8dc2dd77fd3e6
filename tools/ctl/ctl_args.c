/*
 * ctl_args.c -- ringmqctl's command line words to a JSON request, typed
 * by the admin protocol's own command table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "sup_admin_req.h"

/* True when s is a decimal number of at most 10 digits. */
static int is_uint(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && n <= 10 && strspn(s, "0123456789") == n;
}

static cJSON *typed_value(const adm_arg_spec_t *a, const char *v)
{
    if (a != NULL && a->type == ADM_ARG_UINT && is_uint(v))
        return cJSON_CreateNumber((double)strtoull(v, NULL, 10));
    if (a != NULL && a->type == ADM_ARG_BOOL) {
        if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "1") ||
            !strcmp(v, "on"))
            return cJSON_CreateTrue();
        if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "0") ||
            !strcmp(v, "off"))
            return cJSON_CreateFalse();
    }
    /* Anything else goes as a string; the broker says what is wrong. */
    return cJSON_CreateString(v);
}

cJSON *ctl_build_request(const char *cmd, int argc, char **argv, char *err,
                         size_t errlen)
{
    const adm_cmd_t *c = adm_cmd_find(cmd);
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "cmd", cmd);
    cJSON_AddNumberToObject(req, "id", 1);
    for (int i = 0; i < argc; i++) {
        char key[128];
        const char *w = argv[i], *eq = strchr(w, '=');
        const char *val;
        if (eq == NULL) {
            /* "ringmqctl retained get topic=x": the action. */
            if (c == NULL || adm_arg_find(c, "action") == NULL ||
                cJSON_GetObjectItemCaseSensitive(req, "action")) {
                snprintf(err, errlen, "'%s' is not of the form key=value",
                         w);
                goto fail;
            }
            snprintf(key, sizeof(key), "action");
            val = w;
        } else {
            size_t kl = (size_t)(eq - w);
            if (kl == 0 || kl >= sizeof(key)) {
                snprintf(err, errlen, "'%s': bad argument name", w);
                goto fail;
            }
            memcpy(key, w, kl);
            key[kl] = '\0';
            val = eq + 1;
        }
        if (!strcmp(key, "cmd") || !strcmp(key, "id")) {
            snprintf(err, errlen, "'%s' is not an argument (the command "
                     "is the first word)", key);
            goto fail;
        }
        if (cJSON_GetObjectItemCaseSensitive(req, key)) {
            snprintf(err, errlen, "argument '%s' given twice", key);
            goto fail;
        }
        const adm_arg_spec_t *a = c ? adm_arg_find(c, key) : NULL;
        cJSON_AddItemToObject(req, key, typed_value(a, val));
    }
    return req;
fail:
    cJSON_Delete(req);
    return NULL;
}
