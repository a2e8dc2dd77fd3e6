/*
 * test_ctl_args.c -- unit tests for tools/ctl/ctl_args.c: ringmqctl's
 * key=value words become a request typed by the admin command table.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "sup_admin_req.h"

/* The request for cmd and words, printed compactly ("" on a usage
 * error, with the message in err). */
static char out[1024];
static char err[256];

static const char *build(const char *cmd, int n, ...)
{
    char *words[8];
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++)
        words[i] = va_arg(ap, char *);
    va_end(ap);
    err[0] = '\0';
    cJSON *req = ctl_build_request(cmd, n, words, err, sizeof(err));
    if (req == NULL)
        return "";
    char *s = cJSON_PrintUnformatted(req);
    snprintf(out, sizeof(out), "%s", s);
    cJSON_free(s);
    cJSON_Delete(req);
    return out;
}

static void test_types_follow_the_table(void **state)
{
    (void)state;
    assert_string_equal(build("version", 0),
                        "{\"cmd\":\"version\",\"id\":1}");
    assert_string_equal(build("clients", 2, "limit=10", "prefix=12"),
                        "{\"cmd\":\"clients\",\"id\":1,\"limit\":10,"
                        "\"prefix\":\"12\"}");
    /* A client id that looks like a number stays a string. */
    assert_string_equal(build("kick", 2, "client_id=42",
                              "discard_session=true"),
                        "{\"cmd\":\"kick\",\"id\":1,\"client_id\":\"42\","
                        "\"discard_session\":true}");
    assert_string_equal(build("kick", 2, "client_id=a", "discard_session=no"),
                        "{\"cmd\":\"kick\",\"id\":1,\"client_id\":\"a\","
                        "\"discard_session\":false}");
    /* Not a number: sent as a string, the broker refuses it. */
    assert_string_equal(build("clients", 1, "limit=ten"),
                        "{\"cmd\":\"clients\",\"id\":1,\"limit\":\"ten\"}");
    /* A value may contain '='. */
    assert_string_equal(build("client", 1, "client_id=a=b"),
                        "{\"cmd\":\"client\",\"id\":1,\"client_id\":\"a=b\"}");
    /* Keys the table does not know go as strings. */
    assert_string_equal(build("nope", 1, "x=1"),
                        "{\"cmd\":\"nope\",\"id\":1,\"x\":\"1\"}");
}

static void test_action_word(void **state)
{
    (void)state;
    assert_string_equal(build("retained", 2, "get", "topic=a/b"),
                        "{\"cmd\":\"retained\",\"id\":1,\"action\":\"get\","
                        "\"topic\":\"a/b\"}");
    assert_string_equal(build("sessions", 2, "expire", "client_id=x"),
                        "{\"cmd\":\"sessions\",\"id\":1,\"action\":"
                        "\"expire\",\"client_id\":\"x\"}");
}

static void test_usage_errors(void **state)
{
    (void)state;
    assert_string_equal(build("clients", 1, "limit"), "");
    assert_non_null(strstr(err, "key=value"));
    assert_string_equal(build("retained", 2, "get", "delete"), "");
    assert_string_equal(build("clients", 2, "limit=1", "limit=2"), "");
    assert_non_null(strstr(err, "twice"));
    assert_string_equal(build("clients", 1, "=1"), "");
    assert_string_equal(build("clients", 1, "cmd=x"), "");
    assert_non_null(strstr(err, "'cmd' is not an argument"));
    assert_string_equal(build("clients", 1, "id=7"), "");
    assert_non_null(strstr(err, "'id' is not an argument"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types_follow_the_table),
        cmocka_unit_test(test_action_word),
        cmocka_unit_test(test_usage_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
