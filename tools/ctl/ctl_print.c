/*
 * ctl_print.c -- ringmqctl's human-readable output: one table or a few
 * "key: value" lines per command, from the JSON result of docs/admin.md.
 * Anything this file does not know is printed as indented JSON.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

#define CTL_COLS 10

/* ---- a table: rows of strings, columns as wide as their widest cell ------ */

typedef struct table {
    int cols;
    char **cells; /* rows * cols */
    int rows, cap;
} table_t;

static void table_row(table_t *t, const char *const *v)
{
    if (t->rows == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->cells = realloc(t->cells, (size_t)t->cap * (size_t)t->cols *
                                         sizeof(char *));
        if (t->cells == NULL) {
            perror("ringmqctl: realloc");
            exit(CTL_EXIT_CONNECT);
        }
    }
    for (int c = 0; c < t->cols; c++)
        t->cells[t->rows * t->cols + c] = strdup(v[c] ? v[c] : "-");
    t->rows++;
}

static void table_print(table_t *t)
{
    size_t w[CTL_COLS] = {0};
    for (int r = 0; r < t->rows; r++)
        for (int c = 0; c < t->cols; c++) {
            size_t l = strlen(t->cells[r * t->cols + c]);
            if (l > w[c])
                w[c] = l;
        }
    for (int r = 0; r < t->rows; r++) {
        for (int c = 0; c < t->cols; c++) {
            const char *s = t->cells[r * t->cols + c];
            if (c == t->cols - 1)
                printf("%s\n", s);
            else
                printf("%-*s  ", (int)w[c], s);
            free(t->cells[r * t->cols + c]);
        }
    }
    free(t->cells);
    t->cells = NULL;
    t->rows = t->cap = 0;
}

/* ---- cells --------------------------------------------------------------- */

static const cJSON *get(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

/* The text of a scalar member, in one of a few rotating buffers. */
static const char *str(const cJSON *o, const char *k)
{
    static char buf[8][64];
    static int n;
    const cJSON *v = get(o, k);
    char *b = buf[n++ % 8];
    if (cJSON_IsString(v))
        return v->valuestring;
    if (cJSON_IsNumber(v)) {
        snprintf(b, 64, "%.0f", v->valuedouble);
        return b;
    }
    if (cJSON_IsBool(v))
        return cJSON_IsTrue(v) ? "yes" : "no";
    return "-";
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = get(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static const char *qos3(const cJSON *o, const char *k)
{
    static char buf[4][64];
    static int n;
    const cJSON *a = get(o, k);
    char *b = buf[n++ % 4];
    snprintf(b, 64, "%.0f/%.0f/%.0f",
             cJSON_IsNumber(cJSON_GetArrayItem(a, 0))
                 ? cJSON_GetArrayItem(a, 0)->valuedouble : 0,
             cJSON_IsNumber(cJSON_GetArrayItem(a, 1))
                 ? cJSON_GetArrayItem(a, 1)->valuedouble : 0,
             cJSON_IsNumber(cJSON_GetArrayItem(a, 2))
                 ? cJSON_GetArrayItem(a, 2)->valuedouble : 0);
    return b;
}

static const char *bytes(double v)
{
    static char buf[4][32];
    static int n;
    char *b = buf[n++ % 4];
    if (v >= 1 << 30)
        snprintf(b, 32, "%.1fG", v / (1 << 30));
    else if (v >= 1 << 20)
        snprintf(b, 32, "%.1fM", v / (1 << 20));
    else if (v >= 1 << 10)
        snprintf(b, 32, "%.1fk", v / (1 << 10));
    else
        snprintf(b, 32, "%.0f", v);
    return b;
}

static void page_footer(const cJSON *r, const char *what, int shown)
{
    printf("(%d of %s %s", shown, str(r, "total"), what);
    if (num(r, "offset") > 0)
        printf(", from offset %s", str(r, "offset"));
    if (shown > 0 && num(r, "offset") + shown < num(r, "total"))
        printf("; more with offset=%.0f", num(r, "offset") + shown);
    printf(")\n");
}

/* ---- per command --------------------------------------------------------- */

static void print_stats(const cJSON *r)
{
    const cJSON *t = get(r, "totals"), *d = get(t, "drops"),
                *a = get(r, "arena");
    long up = (long)num(r, "uptime");
    printf("uptime        %ldd %02ldh %02ldm %02lds (since %s)\n",
           up / 86400, up % 86400 / 3600, up % 3600 / 60, up % 60,
           str(r, "started"));
    printf("connections   %s\n", str(t, "connections"));
    printf("messages in   %s (QoS 0/1/2: %s)\n", str(t, "messages_in"),
           qos3(t, "messages_in_qos"));
    printf("messages out  %s (QoS 0/1/2: %s)\n", str(t, "messages_out"),
           qos3(t, "messages_out_qos"));
    printf("bytes in/out  %s / %s\n", bytes(num(t, "bytes_in")),
           bytes(num(t, "bytes_out")));
    printf("drops         queue full %s, offline QoS 0 %s, message size "
           "%s\n",
           str(d, "queue_full"), str(d, "offline_qos0"),
           str(d, "message_size"));
    printf("arena         %s used of %s (%s blocks)\n\n",
           bytes(num(a, "bytes_used")), bytes(num(a, "size")),
           str(a, "blocks_used"));

    table_t tb = {.cols = 10};
    const char *h[] = {"FRONTEND", "PID", "RESTARTS", "CONNS", "MSGS_IN",
                       "MSGS_OUT", "BYTES_IN", "BYTES_OUT", "ARENA_USED",
                       "INGEST_RINGS(used/cap)"};
    table_row(&tb, h);
    const cJSON *e;
    cJSON_ArrayForEach(e, get(r, "frontends"))
    {
        char rings[256] = "";
        const cJSON *ring;
        cJSON_ArrayForEach(ring, get(e, "ingest_rings"))
        {
            size_t l = strlen(rings);
            snprintf(rings + l, sizeof(rings) - l, "%sw%s:%s/%s",
                     l ? " " : "", str(ring, "worker"), str(ring, "used"),
                     str(ring, "capacity"));
        }
        const char *row[] = {str(e, "index"),
                             str(e, "pid"),
                             str(e, "restarts"),
                             str(e, "connections"),
                             str(e, "messages_in"),
                             str(e, "messages_out"),
                             bytes(num(e, "bytes_in")),
                             bytes(num(e, "bytes_out")),
                             bytes(num(get(e, "arena"), "bytes_used")),
                             rings};
        table_row(&tb, row);
    }
    table_print(&tb);
    printf("\n");
    table_t tw = {.cols = 8};
    const char *hw[] = {"WORKER",      "PID",
                        "RESTARTS",    "MSGS_IN",
                        "QUEUED",      "DROPS_QUEUE",
                        "DROPS_OFFLINE_QOS0", "ARENA_USED"};
    table_row(&tw, hw);
    cJSON_ArrayForEach(e, get(r, "workers"))
    {
        const char *row[] = {str(e, "index"),
                             str(e, "pid"),
                             str(e, "restarts"),
                             str(e, "messages_in"),
                             str(e, "deliveries_queued"),
                             str(get(e, "drops"), "queue_full"),
                             str(get(e, "drops"), "offline_qos0"),
                             bytes(num(get(e, "arena"), "bytes_used"))};
        table_row(&tw, row);
    }
    table_print(&tw);
}

static void print_clients(const cJSON *r)
{
    table_t t = {.cols = 8};
    const char *h[] = {"CLIENT_ID", "ADDRESS",  "FE",     "PROTO",
                       "KEEPALIVE", "INFLIGHT", "QUEUED", "CONNECTED_SINCE"};
    table_row(&t, h);
    const cJSON *e;
    int n = 0;
    cJSON_ArrayForEach(e, get(r, "clients"))
    {
        const char *row[] = {str(e, "client_id"), str(e, "address"),
                             str(e, "frontend"),  str(e, "protocol"),
                             str(e, "keepalive"), str(e, "inflight"),
                             str(e, "queued"),    str(e, "connected_since")};
        table_row(&t, row);
        n++;
    }
    table_print(&t);
    page_footer(r, "clients", n);
}

static void print_client(const cJSON *r)
{
    static const char *const keys[] = {
        "client_id", "state",    "address", "frontend",
        "protocol",  "keepalive", "clean_session", "inflight",
        "queued",    "connected_since", "offline_since", NULL};
    for (const char *const *k = keys; *k; k++)
        printf("%-16s %s\n", *k, str(r, *k));
    printf("subscriptions    %d%s\n", cJSON_GetArraySize(get(r,
                                                          "subscriptions")),
           cJSON_IsTrue(get(r, "subscriptions_truncated"))
               ? " (list truncated)" : "");
    const cJSON *e;
    cJSON_ArrayForEach(e, get(r, "subscriptions"))
        printf("  qos %s  %s\n", str(e, "qos"), str(e, "filter"));
}

static void print_subscriptions(const cJSON *r)
{
    table_t t = {.cols = 3};
    const char *h[] = {"CLIENT_ID", "QOS", "FILTER"};
    table_row(&t, h);
    const cJSON *e;
    int n = 0;
    cJSON_ArrayForEach(e, get(r, "subscriptions"))
    {
        const char *row[] = {str(e, "client_id"), str(e, "qos"),
                             str(e, "filter")};
        table_row(&t, row);
        n++;
    }
    table_print(&t);
    page_footer(r, "subscriptions", n);
}

static void print_retained(const cJSON *req, const cJSON *r)
{
    const char *action = str(req, "action");
    if (!strcmp(action, "delete")) {
        printf("retained message on %s deleted\n", str(r, "topic"));
        return;
    }
    if (!strcmp(action, "get")) {
        printf("topic    %s\nqos      %s\nbytes    %s%s\n", str(r, "topic"),
               str(r, "qos"), str(r, "payload_bytes"),
               cJSON_IsTrue(get(r, "truncated")) ? " (shown: the first "
                                                   "MiB)" : "");
        if (cJSON_IsString(get(r, "payload")))
            printf("payload  %s\n", str(r, "payload"));
        else
            printf("payload  (binary, base64) %s\n",
                   str(r, "payload_base64"));
        return;
    }
    table_t t = {.cols = 3};
    const char *h[] = {"TOPIC", "QOS", "BYTES"};
    table_row(&t, h);
    const cJSON *e;
    int n = 0;
    cJSON_ArrayForEach(e, get(r, "retained"))
    {
        const char *row[] = {str(e, "topic"), str(e, "qos"),
                             str(e, "payload_bytes")};
        table_row(&t, row);
        n++;
    }
    table_print(&t);
    page_footer(r, "retained messages", n);
}

static void print_sessions(const cJSON *req, const cJSON *r)
{
    if (!strcmp(str(req, "action"), "expire")) {
        printf("offline session of %s expired\n", str(r, "client_id"));
        return;
    }
    table_t t = {.cols = 5};
    const char *h[] = {"CLIENT_ID", "OFFLINE_SINCE", "QUEUED", "INFLIGHT",
                       "SUBSCRIPTIONS"};
    table_row(&t, h);
    const cJSON *e;
    int n = 0;
    cJSON_ArrayForEach(e, get(r, "sessions"))
    {
        const char *row[] = {str(e, "client_id"), str(e, "offline_since"),
                             str(e, "queued"), str(e, "inflight"),
                             str(e, "subscriptions")};
        table_row(&t, row);
        n++;
    }
    table_print(&t);
    page_footer(r, "offline sessions", n);
}

/* The configuration as config-file lines. */
static void print_config(const cJSON *r)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, r)
    {
        if (!strcmp(e->string, "listeners")) {
            const cJSON *l;
            cJSON_ArrayForEach(l, e)
            {
                printf("listener %s%s%s\n", str(l, "port"),
                       cJSON_IsString(get(l, "address")) ? " " : "",
                       cJSON_IsString(get(l, "address"))
                           ? get(l, "address")->valuestring : "");
                if (cJSON_IsString(get(l, "protocol")) &&
                    strcmp(get(l, "protocol")->valuestring, "mqtt") != 0)
                    printf("protocol %s\n", get(l, "protocol")->valuestring);
                if (cJSON_IsTrue(get(l, "tls")))
                    printf("# TLS (certfile, keyfile, ...)\n");
            }
        } else if (cJSON_IsArray(e)) {
            const cJSON *v;
            if (cJSON_GetArraySize(e) == 0)
                printf("%s none\n", e->string);
            cJSON_ArrayForEach(v, e)
                printf("%s %s\n", e->string,
                       cJSON_IsString(v) ? v->valuestring : "?");
        } else if (cJSON_IsNull(e)) {
            printf("# %s (not set)\n", e->string);
        } else if (cJSON_IsBool(e)) {
            printf("%s %s\n", e->string, cJSON_IsTrue(e) ? "true" : "false");
        } else {
            printf("%s %s\n", e->string, str(r, e->string));
        }
    }
}

static void print_names(const char *label, const cJSON *a)
{
    const cJSON *v;
    printf("%s", label);
    if (cJSON_GetArraySize(a) == 0)
        printf(" nothing");
    cJSON_ArrayForEach(v, a)
        printf(" %s", cJSON_IsString(v) ? v->valuestring : "?");
    printf("\n");
}

void ctl_print(const char *cmd, const cJSON *req, const cJSON *r)
{
    if (!strcmp(cmd, "version")) {
        printf("ringmq %s (MQTT", str(r, "version"));
        const cJSON *v;
        cJSON_ArrayForEach(v, get(r, "mqtt"))
            printf(" %s", cJSON_IsString(v) ? v->valuestring : "?");
        printf("; admin protocol %s; supervisor pid %s)\n",
               str(r, "admin_protocol"), str(r, "pid"));
    } else if (!strcmp(cmd, "stats")) {
        print_stats(r);
    } else if (!strcmp(cmd, "clients")) {
        print_clients(r);
    } else if (!strcmp(cmd, "client")) {
        print_client(r);
    } else if (!strcmp(cmd, "kick")) {
        if (cJSON_IsTrue(get(r, "disconnected")))
            printf("client %s disconnected%s\n", str(r, "client_id"),
                   cJSON_IsTrue(get(r, "session_discarded"))
                       ? ", session discarded" : "");
        else
            printf("offline session of %s discarded\n", str(r,
                                                            "client_id"));
    } else if (!strcmp(cmd, "subscriptions")) {
        print_subscriptions(r);
    } else if (!strcmp(cmd, "retained")) {
        print_retained(req, r);
    } else if (!strcmp(cmd, "sessions")) {
        print_sessions(req, r);
    } else if (!strcmp(cmd, "config")) {
        print_config(r);
    } else if (!strcmp(cmd, "reload")) {
        print_names("applied:", get(r, "applied"));
        print_names("needs a restart:", get(r, "needs_restart"));
        const cJSON *v;
        cJSON_ArrayForEach(v, get(r, "messages"))
            printf("note: %s\n", cJSON_IsString(v) ? v->valuestring : "?");
    } else if (!strcmp(cmd, "log_level")) {
        print_names("log types:", get(r, "types"));
    } else if (!strcmp(cmd, "shutdown")) {
        printf("broker stopping\n");
    } else if (!strcmp(cmd, "restart_frontend") ||
               !strcmp(cmd, "restart_worker")) {
        printf("%s %s restarting\n", str(r, "role"), str(r, "index"));
    } else {
        char *s = cJSON_Print(r);
        printf("%s\n", s ? s : "?");
        cJSON_free(s);
    }
}
