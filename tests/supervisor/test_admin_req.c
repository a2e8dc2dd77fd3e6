/*
 * test_admin_req.c -- unit tests for supervisor/sup_admin_req.c (the admin
 * protocol's request parsing, validation and command table) and the pure
 * parts of supervisor/sup_config.c (configuration as JSON, reload diff).
 * No broker: what a hostile or careless admin client can send is checked
 * here line by line.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "sup_admin_req.h"
#include "sup_config.h"

/* Parses line; returns 0 or -1, the error code in *code (may be NULL). */
static int parse(const char *line, adm_req_t *r, adm_err_t *err)
{
    memset(err, 0, sizeof(*err));
    return adm_req_parse(line, strlen(line), r, err);
}

/* line must parse; the request is released. */
static void ok(const char *line)
{
    adm_req_t r;
    adm_err_t err;
    if (parse(line, &r, &err) != 0)
        fail_msg("'%s' should parse; got %s: %s", line, err.code,
                 err.message);
    adm_req_free(&r);
}

/* line must fail with code. */
static void bad(const char *line, const char *code)
{
    adm_req_t r;
    adm_err_t err;
    if (parse(line, &r, &err) == 0)
        fail_msg("'%s' should be refused with %s", line, code);
    if (err.code == NULL || strcmp(err.code, code) != 0)
        fail_msg("'%s': want %s, got %s: %s", line, code,
                 err.code ? err.code : "(null)", err.message);
    assert_true(err.message[0] != '\0');
    adm_req_free(&r);
}

static void test_every_command_parses(void **state)
{
    (void)state;
    ok("{\"cmd\":\"version\"}");
    ok("{\"cmd\":\"stats\",\"id\":1}");
    ok("{\"cmd\":\"clients\"}");
    ok("{\"cmd\":\"clients\",\"prefix\":\"sensor-\",\"frontend\":1,"
       "\"offset\":10,\"limit\":1000}");
    ok("{\"cmd\":\"client\",\"client_id\":\"a\"}");
    ok("{\"cmd\":\"kick\",\"client_id\":\"a\"}");
    ok("{\"cmd\":\"kick\",\"client_id\":\"a\",\"discard_session\":true}");
    ok("{\"cmd\":\"subscriptions\"}");
    ok("{\"cmd\":\"subscriptions\",\"client_id\":\"a\"}");
    ok("{\"cmd\":\"subscriptions\",\"filter\":\"a/+/#\",\"limit\":5}");
    ok("{\"cmd\":\"retained\"}");
    ok("{\"cmd\":\"retained\",\"action\":\"list\",\"filter\":\"#\"}");
    ok("{\"cmd\":\"retained\",\"action\":\"get\",\"topic\":\"a/b\"}");
    ok("{\"cmd\":\"retained\",\"action\":\"delete\",\"topic\":\"a/b\"}");
    ok("{\"cmd\":\"sessions\"}");
    ok("{\"cmd\":\"sessions\",\"prefix\":\"x\",\"offset\":0}");
    ok("{\"cmd\":\"sessions\",\"action\":\"expire\",\"client_id\":\"a\"}");
    ok("{\"cmd\":\"config\"}");
    ok("{\"cmd\":\"reload\"}");
    ok("{\"cmd\":\"restart_frontend\",\"index\":0}");
    ok("{\"cmd\":\"restart_worker\",\"index\":1}");
    ok("{\"cmd\":\"log_level\"}");
    ok("{\"cmd\":\"log_level\",\"types\":\"all\"}");
    ok("{\"cmd\":\"shutdown\"}");
    /* Every entry of the table is reachable by its name. */
    for (size_t i = 0; i < ADM_CMD_COUNT; i++) {
        assert_ptr_equal(adm_cmd_find(adm_cmds[i].name), &adm_cmds[i]);
        assert_int_equal(adm_cmds[i].id, i);
    }
    assert_null(adm_cmd_find("nope"));
}

static void test_not_json(void **state)
{
    (void)state;
    bad("", ADM_E_BAD_JSON);
    bad("hello", ADM_E_BAD_JSON);
    bad("{\"cmd\":\"version\"", ADM_E_BAD_JSON);
    bad("{\"cmd\":\"version\"} trailing", ADM_E_BAD_JSON);
    bad("{cmd:\"version\"}", ADM_E_BAD_JSON);
    bad("\xff\xfe", ADM_E_BAD_JSON);

    /* Deep nesting is refused, not recursed into without bound. */
    size_t n = 20000;
    char *deep = malloc(2 * n + 1);
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    deep[2 * n] = '\0';
    adm_req_t r;
    adm_err_t err;
    assert_int_equal(adm_req_parse(deep, 2 * n, &r, &err), -1);
    adm_req_free(&r);
    free(deep);
}

static void test_not_a_request(void **state)
{
    (void)state;
    bad("[1,2]", ADM_E_BAD_REQUEST);
    bad("\"version\"", ADM_E_BAD_REQUEST);
    bad("42", ADM_E_BAD_REQUEST);
    bad("null", ADM_E_BAD_REQUEST);
    bad("{}", ADM_E_BAD_REQUEST);
    bad("{\"id\":1}", ADM_E_BAD_REQUEST);
    bad("{\"cmd\":1}", ADM_E_BAD_REQUEST);
    bad("{\"cmd\":null}", ADM_E_BAD_REQUEST);
    bad("{\"cmd\":[\"version\"]}", ADM_E_BAD_REQUEST);
    bad("{\"cmd\":\"nope\"}", ADM_E_UNKNOWN_COMMAND);
    bad("{\"cmd\":\"\"}", ADM_E_UNKNOWN_COMMAND);
    bad("{\"cmd\":\"VERSION\"}", ADM_E_UNKNOWN_COMMAND);
    /* cJSON's C strings would end at a NUL: "shutdown\0no" would run. */
    bad("{\"cmd\":\"shutdown\\u0000no\"}", ADM_E_BAD_REQUEST);
    bad("{\"cmd\":\"kick\",\"client_id\":\"victim\\u0000x\"}",
        ADM_E_BAD_REQUEST);
    bad("{\"cmd\":\"version\",\"x\\u0000\":1}", ADM_E_BAD_REQUEST);
    /* A backslash, then u0000: no NUL. */
    ok("{\"cmd\":\"kick\",\"client_id\":\"a\\\\u0000\"}");
    ok("{\"cmd\":\"kick\",\"client_id\":\"a\\u0001\"}");
    /* cmd and id once, as every argument. */
    bad("{\"cmd\":\"version\",\"cmd\":\"shutdown\"}", ADM_E_BAD_REQUEST);
    bad("{\"id\":1,\"cmd\":\"version\",\"id\":2}", ADM_E_BAD_REQUEST);
}

static void test_line_too_long(void **state)
{
    (void)state;
    size_t n = ADM_LINE_MAX + 1;
    char *line = malloc(n);
    memset(line, ' ', n);
    adm_req_t r;
    adm_err_t err;
    assert_int_equal(adm_req_parse(line, n, &r, &err), -1);
    assert_string_equal(err.code, ADM_E_LINE_TOO_LONG);
    adm_req_free(&r);
    /* Exactly the limit is fine (whitespace around a request). */
    const char *req = "{\"cmd\":\"version\"}";
    memcpy(line, req, strlen(req));
    assert_int_equal(adm_req_parse(line, ADM_LINE_MAX, &r, &err), 0);
    adm_req_free(&r);
    free(line);
}

static void test_id_is_kept(void **state)
{
    (void)state;
    adm_req_t r;
    adm_err_t err;
    /* On success and on failure: the error response must carry it. */
    assert_int_equal(parse("{\"cmd\":\"version\",\"id\":\"abc\"}", &r, &err),
                     0);
    assert_true(cJSON_IsString(r.id));
    assert_string_equal(r.id->valuestring, "abc");
    adm_req_free(&r);
    assert_int_equal(parse("{\"cmd\":\"nope\",\"id\":7}", &r, &err), -1);
    assert_true(cJSON_IsNumber(r.id));
    assert_int_equal(r.id->valueint, 7);
    adm_req_free(&r);
    assert_int_equal(parse("{\"id\":{\"a\":[1]},\"cmd\":\"clients\","
                           "\"limit\":0}", &r, &err), -1);
    assert_true(cJSON_IsObject(r.id));
    cJSON *resp = adm_response_err(r.id, &err);
    adm_req_free(&r); /* the response holds its own copy */
    char *s = cJSON_PrintUnformatted(resp);
    assert_non_null(strstr(s, "\"id\":{\"a\":[1]}"));
    assert_non_null(strstr(s, "\"ok\":false"));
    assert_non_null(strstr(s, "\"code\":\"bad_argument\""));
    cJSON_free(s);
    cJSON_Delete(resp);
    /* No id: null. */
    assert_int_equal(parse("{\"cmd\":\"version\"}", &r, &err), 0);
    assert_null(r.id);
    resp = adm_response_ok(r.id, NULL);
    adm_req_free(&r);
    s = cJSON_PrintUnformatted(resp);
    assert_string_equal(s, "{\"id\":null,\"ok\":true,\"result\":{}}");
    cJSON_free(s);
    cJSON_Delete(resp);
}

static void test_unknown_and_repeated_arguments(void **state)
{
    (void)state;
    bad("{\"cmd\":\"version\",\"verbose\":true}", ADM_E_BAD_ARGUMENT);
    bad("{\"cmd\":\"clients\",\"client_id\":\"a\"}", ADM_E_BAD_ARGUMENT);
    bad("{\"cmd\":\"kick\",\"client_id\":\"a\",\"client_id\":\"b\"}",
        ADM_E_BAD_ARGUMENT);
    bad("{\"cmd\":\"kick\",\"clientid\":\"a\"}", ADM_E_BAD_ARGUMENT);
}

static void test_integer_arguments(void **state)
{
    (void)state;
    ok("{\"cmd\":\"clients\",\"limit\":1}");
    ok("{\"cmd\":\"clients\",\"limit\":1e3}");
    ok("{\"cmd\":\"clients\",\"offset\":0}");
    ok("{\"cmd\":\"clients\",\"frontend\":63}");
    bad("{\"cmd\":\"clients\",\"limit\":\"10\"}", ADM_E_BAD_ARGUMENT);
    bad("{\"cmd\":\"clients\",\"limit\":0}", ADM_E_BAD_ARGUMENT);
    bad("{\"cmd\":\"clients\",\"limit\":1001}", ADM_E_BAD_ARGUMENT);
    bad("{\"cmd\":\"clients\",\"limit\":-1}", ADM_E_BAD_ARGUMENT);
    bad("{\"cmd\":\"clients\",\"limit\":1.5}", ADM_E_BAD_ARGUMENT);
    bad("{\"cmd\":\"clients\",\"limit\":true}", ADM_E_BAD_ARGUMENT);
    bad("{\"cmd\":\"clients\",\"limit\":null}", ADM_E_BAD_ARGUMENT);
    bad("{\"cmd\":\"clients\",\"limit\":[10]}", ADM_E_BAD_ARGUMENT);
    bad("{\"cmd\":\"clients\",\"offset\":1e300}", ADM_E_BAD_ARGUMENT);
    bad("{\"cmd\":\"clients\",\"offset\":4294967296}", ADM_E_BAD_ARGUMENT);
    bad("{\"cmd\":\"clients\",\"frontend\":64}", ADM_E_BAD_ARGUMENT);
    bad("{\"cmd\":\"restart_worker\",\"index\":\"0\"}", ADM_E_BAD_ARGUMENT);
    bad("{\"cmd\":\"restart_frontend\"}", ADM_E_BAD_ARGUMENT);

    adm_req_t r;
    adm_err_t err;
    assert_int_equal(parse("{\"cmd\":\"clients\",\"limit\":7}", &r, &err),
                     0);
    assert_int_equal(adm_req_uint(&r, "limit", 100), 7);
    assert_int_equal(adm_req_uint(&r, "offset", 3), 3);
    assert_null(adm_req_arg(&r, "prefix"));
    adm_req_free(&r);
}

static void test_boolean_arguments(void **state)
{
    (void)state;
    ok("{\"cmd\":\"kick\",\"client_id\":\"a\",\"discard_session\":false}");
    bad("{\"cmd\":\"kick\",\"client_id\":\"a\",\"discard_session\":\"true\"}",
        ADM_E_BAD_ARGUMENT);
    bad("{\"cmd\":\"kick\",\"client_id\":\"a\",\"discard_session\":1}",
        ADM_E_BAD_ARGUMENT);

    adm_req_t r;
    adm_err_t err;
    assert_int_equal(parse("{\"cmd\":\"kick\",\"client_id\":\"a\","
                           "\"discard_session\":true}", &r, &err), 0);
    assert_true(adm_req_bool(&r, "discard_session", false));
    assert_string_equal(adm_req_str(&r, "client_id"), "a");
    adm_req_free(&r);
}

static void test_string_arguments(void **state)
{
    (void)state;
    /* client ids */
    bad("{\"cmd\":\"client\"}", ADM_E_BAD_ARGUMENT);
    bad("{\"cmd\":\"kick\"}", ADM_E_BAD_ARGUMENT);
    bad("{\"cmd\":\"client\",\"client_id\":\"\"}", ADM_E_BAD_ARGUMENT);
    bad("{\"cmd\":\"client\",\"client_id\":5}", ADM_E_BAD_ARGUMENT);
    bad("{\"cmd\":\"client\",\"client_id\":null}", ADM_E_BAD_ARGUMENT);
    bad("{\"cmd\":\"client\",\"client_id\":\"\xff\xfe\"}",
        ADM_E_BAD_ARGUMENT);
    bad("{\"cmd\":\"client\",\"client_id\":\"\xed\xa0\x80\"}",
        ADM_E_BAD_ARGUMENT); /* a surrogate */
    ok("{\"cmd\":\"client\",\"client_id\":\"caf\xc3\xa9 \\u00e9\"}");
    /* topics and filters */
    bad("{\"cmd\":\"retained\",\"action\":\"get\",\"topic\":\"a/#\"}",
        ADM_E_BAD_ARGUMENT);
    bad("{\"cmd\":\"retained\",\"action\":\"get\",\"topic\":\"a/+/b\"}",
        ADM_E_BAD_ARGUMENT);
    bad("{\"cmd\":\"retained\",\"action\":\"get\",\"topic\":\"\"}",
        ADM_E_BAD_ARGUMENT);
    bad("{\"cmd\":\"subscriptions\",\"filter\":\"a/#/b\"}",
        ADM_E_BAD_ARGUMENT);
    bad("{\"cmd\":\"subscriptions\",\"filter\":\"a+\"}", ADM_E_BAD_ARGUMENT);
    bad("{\"cmd\":\"retained\",\"filter\":\"\"}", ADM_E_BAD_ARGUMENT);
    ok("{\"cmd\":\"retained\",\"action\":\"get\",\"topic\":\"/\"}");
    /* A topic longer than a child's mailbox carries. */
    size_t n = ADM_TOPIC_MAX + 1;
    char *line = malloc(n + 64);
    int len = sprintf(line, "{\"cmd\":\"retained\",\"action\":\"get\","
                            "\"topic\":\"");
    memset(line + len, 'a', n);
    strcpy(line + len + n, "\"}");
    bad(line, ADM_E_BAD_ARGUMENT);
    line[len + n - 1] = '\0';
    strcat(line, "\"}");
    ok(line); /* exactly ADM_TOPIC_MAX */
    free(line);
    /* choices */
    bad("{\"cmd\":\"retained\",\"action\":\"purge\"}", ADM_E_BAD_ARGUMENT);
    bad("{\"cmd\":\"retained\",\"action\":1}", ADM_E_BAD_ARGUMENT);
    bad("{\"cmd\":\"sessions\",\"action\":\"delete\"}", ADM_E_BAD_ARGUMENT);
    /* prefixes may be empty */
    ok("{\"cmd\":\"clients\",\"prefix\":\"\"}");
    bad("{\"cmd\":\"clients\",\"prefix\":false}", ADM_E_BAD_ARGUMENT);
}

static void test_argument_rules(void **state)
{
    (void)state;
    bad("{\"cmd\":\"retained\",\"action\":\"get\"}", ADM_E_BAD_ARGUMENT);
    bad("{\"cmd\":\"retained\",\"action\":\"delete\"}", ADM_E_BAD_ARGUMENT);
    bad("{\"cmd\":\"retained\",\"topic\":\"a\"}", ADM_E_BAD_ARGUMENT);
    bad("{\"cmd\":\"retained\",\"action\":\"get\",\"topic\":\"a\","
        "\"filter\":\"#\"}", ADM_E_BAD_ARGUMENT);
    bad("{\"cmd\":\"retained\",\"action\":\"delete\",\"topic\":\"a\","
        "\"limit\":1}", ADM_E_BAD_ARGUMENT);
    bad("{\"cmd\":\"sessions\",\"action\":\"expire\"}", ADM_E_BAD_ARGUMENT);
    bad("{\"cmd\":\"sessions\",\"action\":\"expire\",\"client_id\":\"a\","
        "\"prefix\":\"a\"}", ADM_E_BAD_ARGUMENT);
    bad("{\"cmd\":\"sessions\",\"client_id\":\"a\"}", ADM_E_BAD_ARGUMENT);
}

static unsigned types_of(const char *json, int *rc)
{
    cJSON *v = cJSON_Parse(json);
    assert_non_null(v);
    unsigned t = 12345;
    adm_err_t err;
    *rc = adm_log_types_parse(v, &t, &err);
    if (*rc < 0)
        assert_string_equal(err.code, ADM_E_BAD_ARGUMENT);
    cJSON_Delete(v);
    return t;
}

static void test_log_types(void **state)
{
    (void)state;
    int rc;
    assert_int_equal(types_of("\"all\"", &rc), LOG_T_ALL);
    assert_int_equal(rc, 0);
    assert_int_equal(types_of("\"none\"", &rc), 0);
    assert_int_equal(rc, 0);
    assert_int_equal(types_of("\"error\"", &rc), LOG_T_ERR);
    assert_int_equal(types_of("\"error,warning\"", &rc),
                     LOG_T_ERR | LOG_T_WARNING);
    assert_int_equal(types_of("\" error , debug \"", &rc),
                     LOG_T_ERR | LOG_T_DEBUG);
    assert_int_equal(types_of("[\"information\",\"subscribe\"]", &rc),
                     LOG_T_INFO | LOG_T_SUBSCRIBE);
    assert_int_equal(types_of("[]", &rc), 0);
    assert_int_equal(rc, 0);
    assert_int_equal(types_of("\"websockets\"", &rc), 0);
    assert_int_equal(rc, 0);
    types_of("\"bogus\"", &rc);
    assert_int_equal(rc, -1);
    types_of("\"error,,warning\"", &rc);
    assert_int_equal(rc, -1);
    types_of("\"\"", &rc);
    assert_int_equal(rc, -1);
    types_of("5", &rc);
    assert_int_equal(rc, -1);
    types_of("[\"error\",1]", &rc);
    assert_int_equal(rc, -1);
    types_of("{\"error\":true}", &rc);
    assert_int_equal(rc, -1);
    bad("{\"cmd\":\"log_level\",\"types\":\"loud\"}", ADM_E_BAD_ARGUMENT);
    bad("{\"cmd\":\"log_level\",\"types\":3}", ADM_E_BAD_ARGUMENT);

    cJSON *a = adm_log_types_json(LOG_T_ERR | LOG_T_NOTICE);
    char *s = cJSON_PrintUnformatted(a);
    assert_string_equal(s, "[\"error\",\"notice\"]");
    cJSON_free(s);
    cJSON_Delete(a);
}

static void test_utf8_sanitize(void **state)
{
    (void)state;
    char out[64];
    adm_utf8_sanitize("abc", 3, out, sizeof(out));
    assert_string_equal(out, "abc");
    adm_utf8_sanitize("a\xff" "b\x01" "c", 5, out, sizeof(out));
    assert_string_equal(out, "a?b?c");
    adm_utf8_sanitize("caf\xc3\xa9", 5, out, sizeof(out));
    assert_string_equal(out, "caf\xc3\xa9");
    adm_utf8_sanitize("x\xc3", 2, out, sizeof(out)); /* cut sequence */
    assert_string_equal(out, "x?");
    adm_utf8_sanitize("a\0b", 3, out, sizeof(out));
    assert_string_equal(out, "a?b");
    /* Never more than size bytes, always terminated. */
    assert_int_equal(adm_utf8_sanitize("abcdef", 6, out, 4), 3);
    assert_string_equal(out, "abc");
    assert_int_equal(adm_utf8_sanitize("ab\xc3\xa9", 4, out, 4), 2);
    assert_true(adm_utf8_valid("caf\xc3\xa9", 5));
    assert_false(adm_utf8_valid("\xc0\x80", 2));
}

static void test_iso8601(void **state)
{
    (void)state;
    char buf[32];
    adm_iso8601(0, buf, sizeof(buf));
    assert_string_equal(buf, "1970-01-01T00:00:00Z");
    adm_iso8601(1700000000, buf, sizeof(buf));
    assert_string_equal(buf, "2023-11-14T22:13:20Z");
}

static void base_cfg(cfg_t *c)
{
    cfg_defaults(c);
    c->listeners[0].port = 1883;
    strcpy(c->listeners[0].address, "127.0.0.1");
    c->n_listeners = 1;
    c->frontends = 2;
    c->fanout_workers = 1;
    strcpy(c->admin_socket, "/tmp/ringmq-1883.sock");
}

static int has(const char **names, int n, const char *want)
{
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], want) == 0)
            return 1;
    return 0;
}

static void test_reload_diff(void **state)
{
    (void)state;
    static cfg_t run, next;
    const char *ap[SUP_CFG_MAX_KEYS], *rs[SUP_CFG_MAX_KEYS];
    int na, nr;
    base_cfg(&run);
    base_cfg(&next);
    sup_cfg_diff(&run, run.log_types, &next, ap, &na, rs, &nr);
    assert_int_equal(na, 0);
    assert_int_equal(nr, 0);

    next.log_types = LOG_T_ERR;
    next.max_inflight_messages = 5;
    next.listeners[0].port = 1884;
    strcpy(next.admin_socket, "/run/x.sock");
    sup_cfg_diff(&run, run.log_types, &next, ap, &na, rs, &nr);
    assert_int_equal(na, 1);
    assert_string_equal(ap[0], "log_type");
    assert_int_equal(nr, 3);
    assert_true(has(rs, nr, "max_inflight_messages"));
    assert_true(has(rs, nr, "listener"));
    assert_true(has(rs, nr, "admin_socket"));

    /* Compared with the types in force now, not with those of the file
     * at start: log_level may have changed them since. */
    base_cfg(&next);
    sup_cfg_diff(&run, LOG_T_ALL, &next, ap, &na, rs, &nr);
    assert_int_equal(na, 1);
    assert_int_equal(nr, 0);

    base_cfg(&next);
    next.log_dests = LOG_D_SYSLOG;
    next.n_listeners = 2;
    sup_cfg_diff(&run, run.log_types, &next, ap, &na, rs, &nr);
    assert_int_equal(na, 0);
    assert_true(has(rs, nr, "log_dest"));
    assert_true(has(rs, nr, "listener"));

    base_cfg(&next);
    next.max_qos = 1;
    next.max_topic_alias = 0;
    next.max_topic_alias_broker = 0;
    next.write_coalesce_ms = 0;
    strcpy(next.response_info, "resp/");
    sup_cfg_diff(&run, run.log_types, &next, ap, &na, rs, &nr);
    assert_int_equal(nr, 5);
    assert_true(has(rs, nr, "max_qos"));
    assert_true(has(rs, nr, "max_topic_alias"));
    assert_true(has(rs, nr, "max_topic_alias_broker"));
    assert_true(has(rs, nr, "write_coalesce_ms"));
    assert_true(has(rs, nr, "response_information"));
}

static void test_config_json(void **state)
{
    (void)state;
    static cfg_t c;
    base_cfg(&c);
    cJSON *o = sup_cfg_json(&c);
    static const char *const keys[] = {
        "listeners", "allow_anonymous", "max_inflight_messages",
        "max_queued_messages", "max_queued_bytes", "max_packet_size",
        "message_size_limit", "max_keepalive", "max_qos",
        "max_topic_alias", "max_topic_alias_broker", "write_coalesce_ms",
        "response_information", "retain_available",
        "persistent_client_expiration", "log_type", "log_dest", "log_file",
        "pid_file", "user", "frontends", "fanout_workers", "max_clients",
        "arena_size", "ingest_ring_size", "connect_timeout",
        "admin_socket", "config_file", NULL};
    for (const char *const *k = keys; *k; k++)
        if (cJSON_GetObjectItemCaseSensitive(o, *k) == NULL)
            fail_msg("config JSON lacks %s", *k);
    const cJSON *l = cJSON_GetArrayItem(
        cJSON_GetObjectItemCaseSensitive(o, "listeners"), 0);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(l, "port")->valueint,
                     1883);
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "user")));
    assert_string_equal(
        cJSON_GetObjectItemCaseSensitive(o, "admin_socket")->valuestring,
        "/tmp/ringmq-1883.sock");
    cJSON_Delete(o);
}

int main(void)
{
    adm_json_init();
    log_setup(0, 0, NULL); /* silence */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_command_parses),
        cmocka_unit_test(test_not_json),
        cmocka_unit_test(test_not_a_request),
        cmocka_unit_test(test_line_too_long),
        cmocka_unit_test(test_id_is_kept),
        cmocka_unit_test(test_unknown_and_repeated_arguments),
        cmocka_unit_test(test_integer_arguments),
        cmocka_unit_test(test_boolean_arguments),
        cmocka_unit_test(test_string_arguments),
        cmocka_unit_test(test_argument_rules),
        cmocka_unit_test(test_log_types),
        cmocka_unit_test(test_utf8_sanitize),
        cmocka_unit_test(test_iso8601),
        cmocka_unit_test(test_reload_diff),
        cmocka_unit_test(test_config_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
