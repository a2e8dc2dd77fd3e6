/*
 * ctl.h -- ringmqctl, the admin socket's command-line client: building a
 * request from key=value words (ctl_args.c), talking to the socket
 * (ctl_main.c) and printing answers as tables (ctl_print.c).
 */
#ifndef RINGMQ_CTL_H
#define RINGMQ_CTL_H

#include <stddef.h>

#include <cjson/cJSON.h>

/* Exit codes. */
#define CTL_EXIT_OK 0
#define CTL_EXIT_FAILED 1  /* the broker answered with an error */
#define CTL_EXIT_CONNECT 2 /* no answer: cannot connect, timeout, bad usage */

#define CTL_TIMEOUT_MS 10000
#define CTL_RESPONSE_MAX (256u << 20)

/*
 * Builds the request {"cmd": cmd, "id": 1, ...} from words argv[0..argc)
 * of the form key=value.  Values are converted with the command table of
 * sup_admin_req.h: integers for integer arguments, true/false for
 * booleans, strings otherwise (and for keys the table does not know: the
 * broker judges them).  A word without '=' is the action of a command
 * that has one ("retained get topic=a").  Returns the new object, or NULL
 * with a message in err (a usage error).
 */
cJSON *ctl_build_request(const char *cmd, int argc, char **argv, char *err,
                         size_t errlen);

/* Prints result, the answer to command cmd, for a human on stdout. */
void ctl_print(const char *cmd, const cJSON *request, const cJSON *result);

#endif
