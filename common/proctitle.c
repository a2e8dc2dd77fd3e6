/*
 * proctitle.c -- rewriting argv so ps shows what each process is.
 */
#include "proctitle.h"

#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>

#include "mem.h"

extern char **environ;

static char *pt_start;
static char *pt_end;

void proctitle_init(int argc, char **argv)
{
    if (argc < 1 || argv[0] == NULL)
        return;
    pt_start = argv[0];
    char *last = argv[0];
    for (int i = 0; i < argc; i++)
        if (argv[i] == last)
            last = argv[i] + strlen(argv[i]) + 1;
    size_t n = 0;
    while (environ[n])
        n++;
    for (size_t i = 0; i < n; i++)
        if (environ[i] == last)
            last = environ[i] + strlen(environ[i]) + 1;
    /* Move the environment out of the area we will overwrite. */
    char **env = mem_calloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        env[i] = mem_strdup(environ[i]);
    environ = env;
    /* argv[1..] are read before any title is set; keep them valid by
     * copying them too. */
    for (int i = 1; i < argc; i++)
        argv[i] = mem_strdup(argv[i]);
    pt_end = last;
}

void proctitle_set(const char *title)
{
    if (pt_start == NULL || pt_end <= pt_start)
        return;
    size_t room = (size_t)(pt_end - pt_start);
    size_t len = strlen(title);
    if (len >= room)
        len = room - 1;
    memcpy(pt_start, title, len);
    memset(pt_start + len, 0, room - len);
    char comm[16];
    snprintf(comm, sizeof(comm), "%s", title);
    prctl(PR_SET_NAME, comm, 0, 0, 0);
}
