/*
 * sup_admin_cmd.c -- the admin commands: what each one reads from shared
 * memory (through sup_admin_shm.c only) or asks a child to do (through a
 * job on its mailbox), and the JSON it answers.  docs/admin.md describes
 * every command; this file is the implementation of that page.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "mem.h"
#include "mqtt.h"
#include "sup.h"
#include "sup_admin_int.h"
#include "sup_admin_shm.h"
#include "sup_config.h"

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

#define ADM_PAYLOAD_MAX (1u << 20)    /* payload bytes retained get shows */
#define ADM_CLIENT_SUBS_MAX 10000u    /* subscriptions the client command
                                         lists */

/* One slot read at a time: a slot copy holds up to 64 KiB of client id. */
static sup_slot_t slot_buf;
static char id_buf[SUP_ID_MAX + 1];

static const char *id_text(const sup_slot_t *v)
{
    adm_utf8_sanitize(v->id, v->id_len, id_buf, sizeof(id_buf));
    return id_buf;
}

static void add_time(cJSON *o, const char *k, uint64_t t)
{
    char buf[32];
    if (t == 0) {
        cJSON_AddNullToObject(o, k);
        return;
    }
    adm_iso8601(t, buf, sizeof(buf));
    cJSON_AddStringToObject(o, k, buf);
}

static const char *protocol_name(uint8_t level)
{
    switch (level) {
    case MQTT_V31:
        return "3.1";
    case MQTT_V311:
        return "3.1.1";
    case MQTT_V5:
        return "5.0";
    default:
        return "unknown";
    }
}

static bool is_connected(const sup_slot_t *v)
{
    return v->state == SESS_ONLINE || v->state == SESS_HANDOFF;
}

/* Finds the session of client id (len bytes) into slot_buf.  Returns 0 or
 * -1 when there is none. */
static int find_client(const char *id, size_t len)
{
    uint32_t n = adm_env.shm->hdr->max_clients;
    for (uint32_t i = 0; i < n; i++)
        if (sup_shm_slot_read(adm_env.shm, i, &slot_buf) == 0 &&
            slot_buf.id_len == len && memcmp(slot_buf.id, id, len) == 0)
            return 0;
    return -1;
}

static bool has_prefix(const sup_slot_t *v, const char *prefix)
{
    size_t pl = prefix ? strlen(prefix) : 0;
    return pl == 0 || (v->id_len >= pl && memcmp(v->id, prefix, pl) == 0);
}

/* The fields every client listing shows. */
static cJSON *client_json(const sup_slot_t *v)
{
    cJSON *o = cJSON_CreateObject();
    bool on = is_connected(v);
    cJSON_AddStringToObject(o, "client_id", id_text(v));
    if (on) {
        cJSON_AddStringToObject(o, "address", v->peer);
        cJSON_AddNumberToObject(o, "frontend", v->host_fe);
        cJSON_AddStringToObject(o, "protocol", protocol_name(v->level));
        cJSON_AddNumberToObject(o, "keepalive", v->keepalive);
    } else {
        cJSON_AddNullToObject(o, "address");
        cJSON_AddNullToObject(o, "frontend");
        cJSON_AddStringToObject(o, "protocol", protocol_name(v->level));
        cJSON_AddNullToObject(o, "keepalive");
    }
    cJSON_AddNumberToObject(o, "inflight", v->inflight);
    cJSON_AddNumberToObject(o, "queued", v->queued);
    if (on)
        add_time(o, "connected_since", v->connected_at);
    else
        cJSON_AddNullToObject(o, "connected_since");
    return o;
}

static cJSON *page_json(uint32_t total, uint32_t offset, uint32_t limit,
                        const char *name, cJSON *items)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "total", total);
    cJSON_AddNumberToObject(o, "offset", offset);
    cJSON_AddNumberToObject(o, "limit", limit);
    cJSON_AddItemToObject(o, name, items);
    return o;
}

/* ---- version, stats ------------------------------------------------------ */

static cJSON *cmd_version(void)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", "ringmq");
    cJSON_AddStringToObject(o, "version", RINGMQ_VERSION);
    cJSON *p = cJSON_AddArrayToObject(o, "mqtt");
    cJSON_AddItemToArray(p, cJSON_CreateString("3.1"));
    cJSON_AddItemToArray(p, cJSON_CreateString("3.1.1"));
    cJSON_AddNumberToObject(o, "admin_protocol", ADM_PROTOCOL_VERSION);
    cJSON_AddNumberToObject(o, "shm_layout", SHM_LAYOUT_VERSION);
    cJSON_AddNumberToObject(o, "pid", getpid());
    return o;
}

static cJSON *qos_array(const uint64_t *v)
{
    cJSON *a = cJSON_CreateArray();
    for (int q = 0; q < 3; q++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber((double)LOAD(v[q])));
    return a;
}

static cJSON *arena_json(const arena_part_t *p)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "size", (double)p->size);
    cJSON_AddNumberToObject(o, "blocks_used",
                            (double)LOAD(p->blocks_used));
    cJSON_AddNumberToObject(o, "bytes_used", (double)LOAD(p->bytes_used));
    return o;
}

/* Retained messages waiting for room (fanout/fo_retsend.c). */
static cJSON *backlogs_json(uint64_t subscriptions, uint64_t messages)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "subscriptions", (double)subscriptions);
    cJSON_AddNumberToObject(o, "messages", (double)messages);
    return o;
}

static void add_proc_common(cJSON *o, const proc_t *p, uint32_t index)
{
    cJSON_AddNumberToObject(o, "index", index);
    cJSON_AddNumberToObject(o, "pid", LOAD(p->pid));
    add_time(o, "started", LOAD(p->started));
    cJSON_AddNumberToObject(o, "restarts", LOAD(p->restarts));
}

static cJSON *cmd_stats(void)
{
    const shm_t *shm = adm_env.shm;
    uint32_t n_fe = shm->hdr->n_fe, n_fo = shm->hdr->n_fo;
    uint64_t now = (uint64_t)time(NULL);
    uint64_t conns = 0, in = 0, out = 0, bin = 0, bout = 0;
    uint64_t inq[3] = {0}, outq[3] = {0};
    uint64_t d_size = 0, d_queue = 0, d_off0 = 0, d_exp = 0, d_big = 0;
    uint64_t d_share = 0, writes = 0, held = 0;
    uint64_t backlogs = 0, backlog_msgs = 0;

    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "uptime",
                            (double)(now - adm_env.started));
    add_time(o, "started", adm_env.started);
    cJSON *totals = cJSON_AddObjectToObject(o, "totals");
    cJSON *fes = cJSON_AddArrayToObject(o, "frontends");
    for (uint32_t f = 0; f < n_fe; f++) {
        proc_t *p = shm_fe_proc(shm, f);
        cJSON *e = cJSON_CreateObject();
        add_proc_common(e, p, f);
        cJSON_AddNumberToObject(e, "connections", (double)LOAD(p->conns));
        cJSON_AddNumberToObject(e, "messages_in", (double)LOAD(p->msgs_in));
        cJSON_AddItemToObject(e, "messages_in_qos", qos_array(p->msgs_in_qos));
        cJSON_AddNumberToObject(e, "messages_out",
                                (double)LOAD(p->msgs_out));
        cJSON_AddItemToObject(e, "messages_out_qos",
                              qos_array(p->msgs_out_qos));
        cJSON_AddNumberToObject(e, "bytes_in", (double)LOAD(p->bytes_in));
        cJSON_AddNumberToObject(e, "bytes_out", (double)LOAD(p->bytes_out));
        cJSON_AddNumberToObject(e, "writes", (double)LOAD(p->writes));
        cJSON_AddNumberToObject(e, "writes_held",
                                (double)LOAD(p->writes_held));
        cJSON *d = cJSON_AddObjectToObject(e, "drops");
        cJSON_AddNumberToObject(d, "message_size",
                                (double)LOAD(p->drops_size));
        cJSON_AddNumberToObject(d, "expired",
                                (double)LOAD(p->drops_expired));
        cJSON_AddNumberToObject(d, "too_large_for_client",
                                (double)LOAD(p->drops_too_large));
        /* QoS 0 broadcast deliveries (docs/architecture.md, "QoS 0 to
         * many"): the queue and socket were full, or the connection had
         * ended */
        cJSON_AddNumberToObject(d, "queue_full",
                                (double)LOAD(p->drops_queue));
        cJSON_AddNumberToObject(d, "offline_qos0",
                                (double)LOAD(p->drops_offline0));
        cJSON *rings = cJSON_AddArrayToObject(e, "ingest_rings");
        for (uint32_t w = 0; w < n_fo; w++) {
            ring_t *r = shm_ingest(shm, f, w);
            cJSON *re = cJSON_CreateObject();
            cJSON_AddNumberToObject(re, "worker", w);
            cJSON_AddNumberToObject(re, "used", sup_shm_ring_used(r));
            cJSON_AddNumberToObject(re, "capacity", LOAD(r->cap));
            cJSON_AddItemToArray(rings, re);
        }
        cJSON_AddItemToObject(e, "arena", arena_json(shm_fe_part(shm, f)));
        cJSON_AddItemToArray(fes, e);
        conns += LOAD(p->conns);
        in += LOAD(p->msgs_in);
        out += LOAD(p->msgs_out);
        bin += LOAD(p->bytes_in);
        bout += LOAD(p->bytes_out);
        writes += LOAD(p->writes);
        held += LOAD(p->writes_held);
        d_size += LOAD(p->drops_size);
        d_exp += LOAD(p->drops_expired);
        d_big += LOAD(p->drops_too_large);
        d_queue += LOAD(p->drops_queue);
        d_off0 += LOAD(p->drops_offline0);
        for (int q = 0; q < 3; q++) {
            inq[q] += LOAD(p->msgs_in_qos[q]);
            outq[q] += LOAD(p->msgs_out_qos[q]);
        }
    }
    cJSON *fos = cJSON_AddArrayToObject(o, "workers");
    for (uint32_t w = 0; w < n_fo; w++) {
        proc_t *p = shm_fo_proc(shm, w);
        cJSON *e = cJSON_CreateObject();
        add_proc_common(e, p, w);
        cJSON_AddNumberToObject(e, "messages_in", (double)LOAD(p->msgs_in));
        cJSON_AddNumberToObject(e, "deliveries_queued",
                                (double)LOAD(p->msgs_out));
        cJSON *d = cJSON_AddObjectToObject(e, "drops");
        cJSON_AddNumberToObject(d, "queue_full",
                                (double)LOAD(p->drops_queue));
        cJSON_AddNumberToObject(d, "offline_qos0",
                                (double)LOAD(p->drops_offline0));
        cJSON_AddNumberToObject(d, "shared_no_member",
                                (double)LOAD(p->drops_share));
        cJSON_AddItemToObject(e, "retained_backlogs",
                              backlogs_json(LOAD(p->ret_backlogs),
                                            LOAD(p->ret_backlog_msgs)));
        cJSON_AddItemToObject(e, "arena", arena_json(shm_fo_part(shm, w)));
        cJSON_AddItemToArray(fos, e);
        d_queue += LOAD(p->drops_queue);
        d_off0 += LOAD(p->drops_offline0);
        d_share += LOAD(p->drops_share);
        backlogs += LOAD(p->ret_backlogs);
        backlog_msgs += LOAD(p->ret_backlog_msgs);
    }
    cJSON_AddNumberToObject(totals, "connections", (double)conns);
    cJSON_AddNumberToObject(totals, "messages_in", (double)in);
    cJSON_AddItemToObject(totals, "messages_in_qos", qos_array(inq));
    cJSON_AddNumberToObject(totals, "messages_out", (double)out);
    cJSON_AddItemToObject(totals, "messages_out_qos", qos_array(outq));
    cJSON_AddNumberToObject(totals, "bytes_in", (double)bin);
    cJSON_AddNumberToObject(totals, "bytes_out", (double)bout);
    cJSON_AddNumberToObject(totals, "writes", (double)writes);
    cJSON_AddNumberToObject(totals, "writes_held", (double)held);
    cJSON *d = cJSON_AddObjectToObject(totals, "drops");
    cJSON_AddNumberToObject(d, "queue_full", (double)d_queue);
    cJSON_AddNumberToObject(d, "offline_qos0", (double)d_off0);
    cJSON_AddNumberToObject(d, "message_size", (double)d_size);
    cJSON_AddNumberToObject(d, "expired", (double)d_exp);
    cJSON_AddNumberToObject(d, "too_large_for_client", (double)d_big);
    cJSON_AddNumberToObject(d, "shared_no_member", (double)d_share);
    cJSON_AddItemToObject(totals, "retained_backlogs",
                          backlogs_json(backlogs, backlog_msgs));
    uint64_t blocks, bytes;
    arena_usage(&shm->arena, &blocks, &bytes);
    cJSON *a = cJSON_AddObjectToObject(o, "arena");
    cJSON_AddNumberToObject(a, "size", (double)shm->hdr->arena_size);
    cJSON_AddNumberToObject(a, "blocks_used", (double)blocks);
    cJSON_AddNumberToObject(a, "bytes_used", (double)bytes);
    return o;
}

/* ---- clients, client ----------------------------------------------------- */

static cJSON *cmd_clients(const adm_req_t *r)
{
    const char *prefix = adm_req_str(r, "prefix");
    bool by_fe = adm_req_arg(r, "frontend") != NULL;
    uint32_t fe = adm_req_uint(r, "frontend", 0);
    uint32_t offset = adm_req_uint(r, "offset", 0);
    uint32_t limit = adm_req_uint(r, "limit", ADM_PAGE_DEFAULT);
    uint32_t total = 0, n = 0, max = adm_env.shm->hdr->max_clients;
    cJSON *items = cJSON_CreateArray();
    for (uint32_t i = 0; i < max; i++) {
        sup_slot_t *v = &slot_buf;
        if (sup_shm_slot_read(adm_env.shm, i, v) < 0 || !is_connected(v) ||
            !has_prefix(v, prefix) || (by_fe && v->host_fe != fe))
            continue;
        if (total++ < offset || n >= limit)
            continue;
        cJSON_AddItemToArray(items, client_json(v));
        n++;
    }
    return page_json(total, offset, limit, "clients", items);
}

typedef struct sub_list {
    cJSON *items;
    uint32_t n;
} sub_list_t;

/* {"filter": ..., "qos": ...} for one subscription (the filter made safe
 * for JSON). */
static cJSON *sub_json(const char *filter, uint16_t len, uint8_t qos)
{
    char buf[65536];
    adm_utf8_sanitize(filter, len, buf, sizeof(buf));
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "filter", buf);
    cJSON_AddNumberToObject(o, "qos", qos);
    return o;
}

static int sub_add(void *arg, const char *filter, uint16_t len, uint8_t qos)
{
    sub_list_t *l = arg;
    cJSON_AddItemToArray(l->items, sub_json(filter, len, qos));
    l->n++;
    return 0;
}

static cJSON *cmd_client(const adm_req_t *r, adm_err_t *err)
{
    const char *id = adm_req_str(r, "client_id");
    if (find_client(id, strlen(id)) < 0) {
        adm_err_set(err, ADM_E_NOT_FOUND, "no client or session '%.200s'",
                    id);
        return NULL;
    }
    const sup_slot_t *v = &slot_buf;
    cJSON *o = client_json(v);
    cJSON_AddStringToObject(o, "state",
                            v->state == SESS_ONLINE    ? "connected"
                            : v->state == SESS_HANDOFF ? "taken_over"
                                                       : "offline");
    cJSON_AddBoolToObject(o, "connected", is_connected(v));
    cJSON_AddBoolToObject(o, "clean_session", v->clean);
    if (is_connected(v))
        cJSON_AddNullToObject(o, "offline_since");
    else
        add_time(o, "offline_since", v->offline_since);
    sub_list_t l = {.items = cJSON_CreateArray()};
    uint32_t walked = sup_shm_subs_walk(adm_env.shm, v,
                                        ADM_CLIENT_SUBS_MAX + 1, sub_add, &l);
    if (walked > ADM_CLIENT_SUBS_MAX) {
        cJSON_DeleteItemFromArray(l.items, (int)ADM_CLIENT_SUBS_MAX);
        cJSON_AddBoolToObject(o, "subscriptions_truncated", true);
    }
    cJSON_AddItemToObject(o, "subscriptions", l.items);
    return o;
}

/* ---- kick, sessions expire ----------------------------------------------- */

static cJSON *kick_done(adm_job_t *j, adm_err_t *err)
{
    const adm_op_t *op = &j->ops[0];
    if (op->rc == MBOX_NOT_FOUND) {
        adm_err_set(err, ADM_E_NOT_FOUND,
                    "client '%.200s' changed meanwhile (disconnected or "
                    "reconnected): try again",
                    j->text);
        return NULL;
    }
    if (op->rc != MBOX_OK) {
        adm_err_set(err, ADM_E_INTERNAL, "the child refused the request");
        return NULL;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "client_id", j->text);
    cJSON_AddBoolToObject(o, "disconnected", op->op == MBOX_KICK);
    cJSON_AddBoolToObject(o, "session_discarded",
                          j->flag || op->op == MBOX_EXPIRE);
    return o;
}

/* Starts a job asking the owner worker to free the offline session v. */
static void expire_job(adm_client_t *c, const adm_req_t *r,
                       const sup_slot_t *v, const char *id)
{
    adm_job_t *j = adm_job_new(c, r, 1, kick_done);
    j->text = mem_strdup(id);
    adm_op_t *op = &j->ops[0];
    op->proc = 1 + adm_env.shm->hdr->n_fe + shm_slot_owner(adm_env.shm,
                                                           v->slot);
    op->op = MBOX_EXPIRE;
    op->slot = v->slot;
    op->conn_gen = v->conn_gen;
    adm_job_start(j);
}

static int cmd_kick(adm_client_t *c, const adm_req_t *r, adm_err_t *err)
{
    const char *id = adm_req_str(r, "client_id");
    bool discard = adm_req_bool(r, "discard_session", false);
    if (find_client(id, strlen(id)) < 0)
        return adm_err_set(err, ADM_E_NOT_FOUND,
                           "no client or session '%.200s'", id);
    const sup_slot_t *v = &slot_buf;
    if (!is_connected(v)) {
        if (!discard)
            return adm_err_set(err, ADM_E_NOT_FOUND,
                               "client '%.200s' is not connected (its "
                               "session is offline; discard_session=true "
                               "deletes it)",
                               id);
        expire_job(c, r, v, id);
        return 0;
    }
    if (v->host_fe >= adm_env.shm->hdr->n_fe)
        return adm_err_set(err, ADM_E_NOT_FOUND,
                           "client '%.200s' changed meanwhile: try again",
                           id);
    adm_job_t *j = adm_job_new(c, r, 1, kick_done);
    j->text = mem_strdup(id);
    j->flag = discard;
    adm_op_t *op = &j->ops[0];
    op->proc = 1 + v->host_fe;
    op->op = MBOX_KICK;
    op->flags = discard ? MBOX_F_DISCARD : 0;
    op->slot = v->slot;
    op->conn_gen = v->conn_gen;
    adm_job_start(j);
    return 0;
}

/* ---- subscriptions ------------------------------------------------------- */

typedef struct sub_page {
    const char *filter;  /* only this filter, or NULL */
    size_t flen;
    uint32_t offset, limit, total, n;
    cJSON *items;
    const char *client_id;
} sub_page_t;

static int sub_page_add(void *arg, const char *filter, uint16_t len,
                        uint8_t qos)
{
    sub_page_t *p = arg;
    if (p->filter &&
        (len != p->flen || memcmp(filter, p->filter, len) != 0))
        return 0;
    if (p->total++ < p->offset || p->n >= p->limit)
        return 0;
    cJSON *o = sub_json(filter, len, qos);
    cJSON_AddStringToObject(o, "client_id", p->client_id);
    cJSON_AddItemToArray(p->items, o);
    p->n++;
    return 0;
}

static cJSON *cmd_subscriptions(const adm_req_t *r, adm_err_t *err)
{
    const char *id = adm_req_str(r, "client_id");
    sub_page_t p = {.filter = adm_req_str(r, "filter"),
                    .offset = adm_req_uint(r, "offset", 0),
                    .limit = adm_req_uint(r, "limit", ADM_PAGE_DEFAULT),
                    .items = cJSON_CreateArray()};
    p.flen = p.filter ? strlen(p.filter) : 0;
    if (id != NULL) {
        if (find_client(id, strlen(id)) < 0) {
            cJSON_Delete(p.items);
            adm_err_set(err, ADM_E_NOT_FOUND,
                        "no client or session '%.200s'", id);
            return NULL;
        }
        p.client_id = id_text(&slot_buf);
        sup_shm_subs_walk(adm_env.shm, &slot_buf, SUP_SUBS_WALK_MAX,
                          sub_page_add, &p);
    } else {
        uint32_t max = adm_env.shm->hdr->max_clients;
        for (uint32_t i = 0; i < max; i++) {
            if (sup_shm_slot_read(adm_env.shm, i, &slot_buf) < 0)
                continue;
            p.client_id = id_text(&slot_buf);
            sup_shm_subs_walk(adm_env.shm, &slot_buf, SUP_SUBS_WALK_MAX,
                              sub_page_add, &p);
        }
    }
    return page_json(p.total, p.offset, p.limit, "subscriptions", p.items);
}

/* ---- retained ------------------------------------------------------------ */

static cJSON *ret_list_done(adm_job_t *j, adm_err_t *err)
{
    const adm_op_t *op = &j->ops[0];
    if (op->rc == MBOX_AGAIN) {
        adm_err_set(err, ADM_E_BUSY, "worker 0 has no arena room for the "
                                     "answer: try a smaller limit");
        return NULL;
    }
    if (op->rc != MBOX_OK || op->reply == NULL ||
        op->reply_len < sizeof(shm_ret_list_t)) {
        adm_err_set(err, ADM_E_INTERNAL, "worker 0 gave no usable answer");
        return NULL;
    }
    shm_ret_list_t hdr;
    memcpy(&hdr, op->reply, sizeof(hdr));
    cJSON *items = cJSON_CreateArray();
    size_t at = sizeof(hdr);
    uint32_t n = 0;
    static char topic[65536];
    /* Every entry is checked against what was copied. */
    while (n < hdr.n && at + sizeof(shm_ret_ent_t) <= op->reply_len) {
        shm_ret_ent_t e;
        memcpy(&e, op->reply + at, sizeof(e));
        at += sizeof(e);
        if (e.topic_len > op->reply_len - at)
            break;
        adm_utf8_sanitize((const char *)op->reply + at, e.topic_len, topic,
                          sizeof(topic));
        at += e.topic_len;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "topic", topic);
        cJSON_AddNumberToObject(o, "qos", e.qos > 2 ? 2 : e.qos);
        cJSON_AddNumberToObject(o, "payload_bytes", e.payload_len);
        cJSON_AddItemToArray(items, o);
        n++;
    }
    cJSON *o = page_json(hdr.total, op->offset, op->limit, "retained",
                         items);
    uint32_t want = hdr.total > op->offset ? hdr.total - op->offset : 0;
    cJSON_AddBoolToObject(o, "truncated", n < want && n < op->limit);
    return o;
}

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *base64(const uint8_t *p, size_t n)
{
    char *out = mem_alloc((n + 2) / 3 * 4 + 1), *o = out;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = b64[v >> 18];
        *o++ = b64[(v >> 12) & 63];
        *o++ = b64[(v >> 6) & 63];
        *o++ = b64[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 |
                     (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        *o++ = b64[v >> 18];
        *o++ = b64[(v >> 12) & 63];
        *o++ = i + 1 < n ? b64[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o = '\0';
    return out;
}

static cJSON *ret_get_done(adm_job_t *j, adm_err_t *err)
{
    const adm_op_t *op = &j->ops[0];
    if (op->rc == MBOX_NOT_FOUND) {
        adm_err_set(err, ADM_E_NOT_FOUND,
                    "no retained message on topic '%.200s'", j->text);
        return NULL;
    }
    /* The reply is the message (records.h), its payload perhaps cut. */
    const uint8_t *m = op->reply;
    msg_view_t v;
    if (op->rc != MBOX_OK || m == NULL ||
        msg_open(m, op->reply_len, &v) < 0 ||
        op->reply_full < op->reply_len) {
        adm_err_set(err, ADM_E_INTERNAL, "worker 0 gave no usable answer");
        return NULL;
    }
    const uint8_t *payload = v.payload;
    uint32_t shown = v.plen < ADM_PAYLOAD_MAX ? v.plen : ADM_PAYLOAD_MAX;
    uint32_t size = op->reply_full - (uint32_t)(payload - m);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "topic", j->text);
    cJSON_AddNumberToObject(o, "qos", op->aux > 2 ? 2 : op->aux);
    cJSON_AddNumberToObject(o, "payload_bytes", size);
    /* A payload cut at ADM_PAYLOAD_MAX may end inside a UTF-8 sequence:
     * base64 then, which shows the bytes exactly. */
    char *text = NULL;
    if (shown == size && adm_utf8_valid((const char *)payload, shown)) {
        text = mem_alloc(shown + 1);
        memcpy(text, payload, shown);
        text[shown] = '\0';
        cJSON_AddStringToObject(o, "payload", text);
    } else {
        text = base64(payload, shown);
        cJSON_AddStringToObject(o, "payload_base64", text);
    }
    mem_free(text);
    cJSON_AddBoolToObject(o, "truncated", shown < size);
    return o;
}

static cJSON *ret_del_done(adm_job_t *j, adm_err_t *err)
{
    bool deleted = false;
    for (uint32_t i = 0; i < j->n_ops; i++)
        if (j->ops[i].rc == MBOX_OK)
            deleted = true;
    if (!deleted) {
        adm_err_set(err, ADM_E_NOT_FOUND,
                    "no retained message on topic '%.200s'", j->text);
        return NULL;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "topic", j->text);
    cJSON_AddBoolToObject(o, "deleted", true);
    return o;
}

static void set_arg(adm_op_t *op, const char *s)
{
    op->arg_len = (uint32_t)strlen(s);
    op->arg = mem_strdup(s);
}

static void cmd_retained(adm_client_t *c, const adm_req_t *r)
{
    const char *action = adm_req_str(r, "action");
    const char *topic = adm_req_str(r, "topic");
    uint32_t first_fo = 1 + adm_env.shm->hdr->n_fe;
    adm_job_t *j;
    if (action == NULL || strcmp(action, "list") == 0) {
        const char *filter = adm_req_str(r, "filter");
        j = adm_job_new(c, r, 1, ret_list_done);
        adm_op_t *op = &j->ops[0];
        op->proc = first_fo;
        op->op = MBOX_RET_LIST;
        op->offset = adm_req_uint(r, "offset", 0);
        op->limit = adm_req_uint(r, "limit", ADM_PAGE_DEFAULT);
        op->reply_max = SHM_MBOX_REPLY_MAX;
        if (filter)
            set_arg(op, filter);
    } else if (strcmp(action, "get") == 0) {
        /* Every worker holds every retained message: worker 0 answers. */
        j = adm_job_new(c, r, 1, ret_get_done);
        adm_op_t *op = &j->ops[0];
        op->proc = first_fo;
        op->op = MBOX_RET_GET;
        /* The message without its span (forwarded properties, which
         * the answer does not show, of any length): room for the longest
         * topic and the shown part of the payload. */
        op->reply_msg = true;
        op->reply_max = (uint32_t)msg_size(0, 65535, ADM_PAYLOAD_MAX);
        set_arg(op, topic);
    } else {
        uint32_t n_fo = adm_env.shm->hdr->n_fo;
        j = adm_job_new(c, r, n_fo, ret_del_done);
        for (uint32_t w = 0; w < n_fo; w++) {
            j->ops[w].proc = first_fo + w;
            j->ops[w].op = MBOX_RET_DEL;
            set_arg(&j->ops[w], topic);
        }
    }
    if (topic)
        j->text = mem_strdup(topic);
    adm_job_start(j);
}

/* ---- sessions ------------------------------------------------------------ */

static int sub_count(void *arg, const char *filter, uint16_t len,
                     uint8_t qos)
{
    (void)arg;
    (void)filter;
    (void)len;
    (void)qos;
    return 0;
}

static int cmd_sessions(adm_client_t *c, const adm_req_t *r, cJSON **res,
                        adm_err_t *err)
{
    const char *action = adm_req_str(r, "action");
    if (action != NULL && strcmp(action, "expire") == 0) {
        const char *id = adm_req_str(r, "client_id");
        if (find_client(id, strlen(id)) < 0)
            return adm_err_set(err, ADM_E_NOT_FOUND,
                               "no session '%.200s'", id);
        if (is_connected(&slot_buf))
            return adm_err_set(err, ADM_E_NOT_FOUND,
                               "client '%.200s' is connected, its session "
                               "is not offline (kick it with "
                               "discard_session=true)",
                               id);
        expire_job(c, r, &slot_buf, id);
        return ADM_PENDING;
    }
    const char *prefix = adm_req_str(r, "prefix");
    uint32_t offset = adm_req_uint(r, "offset", 0);
    uint32_t limit = adm_req_uint(r, "limit", ADM_PAGE_DEFAULT);
    uint32_t total = 0, n = 0, max = adm_env.shm->hdr->max_clients;
    cJSON *items = cJSON_CreateArray();
    for (uint32_t i = 0; i < max; i++) {
        sup_slot_t *v = &slot_buf;
        if (sup_shm_slot_read(adm_env.shm, i, v) < 0 ||
            v->state != SESS_OFFLINE || !has_prefix(v, prefix))
            continue;
        if (total++ < offset || n >= limit)
            continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "client_id", id_text(v));
        add_time(o, "offline_since", v->offline_since);
        cJSON_AddNumberToObject(o, "queued", v->queued);
        cJSON_AddNumberToObject(o, "inflight", v->inflight);
        cJSON_AddNumberToObject(
            o, "subscriptions",
            sup_shm_subs_walk(adm_env.shm, v, SUP_SUBS_WALK_MAX, sub_count,
                              NULL));
        cJSON_AddItemToArray(items, o);
        n++;
    }
    *res = page_json(total, offset, limit, "sessions", items);
    return ADM_DONE;
}

/* ---- log_level ----------------------------------------------------------- */

static cJSON *cmd_restart(const adm_req_t *r, adm_err_t *err)
{
    bool worker = r->cmd->id == ADM_CMD_RESTART_WORKER;
    uint32_t idx = (uint32_t)r->args[0]->valuedouble;
    uint32_t n = worker ? adm_env.shm->hdr->n_fo : adm_env.shm->hdr->n_fe;
    const char *what = worker ? "fan-out worker" : "frontend";
    if (idx >= n) {
        adm_err_set(err, ADM_E_NOT_FOUND, "no %s %u (there are %u)", what,
                    idx, n);
        return NULL;
    }
    if (adm_env.restart(worker ? PROC_FANOUT : PROC_FRONTEND, idx) < 0) {
        adm_err_set(err, ADM_E_BUSY,
                    "%s %u is not running (restarting already)", what, idx);
        return NULL;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "role", worker ? "fanout" : "frontend");
    cJSON_AddNumberToObject(o, "index", idx);
    cJSON_AddBoolToObject(o, "restarting", true);
    return o;
}

static cJSON *cmd_log_level(const adm_req_t *r, adm_err_t *err)
{
    const cJSON *v = adm_req_arg(r, "types");
    if (v != NULL) {
        unsigned t;
        if (adm_log_types_parse(v, &t, err) < 0)
            return NULL;
        /* One shared word: every process logs by it from its next
         * line on. */
        log_set_types(t);
        log_notice("log types changed by the administrator");
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "types", adm_log_types_json(log_types()));
    return o;
}

/* ---- dispatch ------------------------------------------------------------ */

int adm_exec(adm_client_t *c, const adm_req_t *r, cJSON **result,
             adm_err_t *err)
{
    *result = NULL;
    /* Commands that scan the slots see the slots used since the last
     * scan. */
    switch (r->cmd->id) {
    case ADM_CMD_CLIENTS:
    case ADM_CMD_CLIENT:
    case ADM_CMD_KICK:
    case ADM_CMD_SUBSCRIPTIONS:
    case ADM_CMD_SESSIONS:
        sup_shm_refresh(adm_env.shm);
        break;
    default:
        break;
    }
    switch (r->cmd->id) {
    case ADM_CMD_VERSION:
        *result = cmd_version();
        break;
    case ADM_CMD_STATS:
        *result = cmd_stats();
        break;
    case ADM_CMD_CLIENTS:
        *result = cmd_clients(r);
        break;
    case ADM_CMD_CLIENT:
        *result = cmd_client(r, err);
        break;
    case ADM_CMD_KICK:
        return cmd_kick(c, r, err) < 0 ? ADM_DONE : ADM_PENDING;
    case ADM_CMD_SUBSCRIPTIONS:
        *result = cmd_subscriptions(r, err);
        break;
    case ADM_CMD_RETAINED:
        cmd_retained(c, r);
        return ADM_PENDING;
    case ADM_CMD_SESSIONS:
        return cmd_sessions(c, r, result, err) < 0 ? ADM_DONE
               : *result                          ? ADM_DONE
                                                  : ADM_PENDING;
    case ADM_CMD_CONFIG:
        *result = sup_cfg_json(adm_env.cfg);
        break;
    case ADM_CMD_RELOAD:
        *result = sup_cfg_reload(adm_env.cfg, err);
        if (*result) /* as with SIGHUP */
            adm_env.reload_tls();
        break;
    case ADM_CMD_RESTART_FRONTEND:
    case ADM_CMD_RESTART_WORKER:
        *result = cmd_restart(r, err);
        break;
    case ADM_CMD_LOG_LEVEL:
        *result = cmd_log_level(r, err);
        break;
    case ADM_CMD_SHUTDOWN: {
        adm_request_stop();
        *result = cJSON_CreateObject();
        cJSON_AddBoolToObject(*result, "stopping", true);
        break;
    }
    default:
        adm_err_set(err, ADM_E_INTERNAL, "command not implemented");
        break;
    }
    if (*result == NULL && err->code == NULL)
        adm_err_set(err, ADM_E_INTERNAL, "the command produced no answer");
    return ADM_DONE;
}
