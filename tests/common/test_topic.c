/*
 * test_topic.c -- topic name and filter validation and matching against
 * MQTT 3.1.1 section 4.7, its examples and the '$' rule.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "topic.h"

typedef struct {
    const char *s;
    size_t len;                 /* 0: strlen(s) */
} str_case_t;

typedef struct {
    const char *filter;
    const char *topic;
    bool match;
} match_case_t;

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static size_t
case_len(const str_case_t *c)
{
    return c->len != 0 ? c->len : strlen(c->s);
}

/* Copies s into a heap buffer of exactly len bytes, so that ASan catches
 * any read past len. */
static char *
exact_copy(const char *s, size_t len)
{
    char *p;

    p = malloc(len != 0 ? len : 1);
    assert_non_null(p);
    memcpy(p, s, len);
    return p;
}

static bool
name_valid(const char *s, size_t len)
{
    char *p;
    bool r;

    p = exact_copy(s, len);
    r = topic_name_valid(p, len);
    free(p);
    return r;
}

static bool
filter_valid(const char *s, size_t len)
{
    char *p;
    bool r;

    p = exact_copy(s, len);
    r = topic_filter_valid(p, len);
    free(p);
    return r;
}

static const str_case_t valid_names[] = {
    { "a", 0 },
    { "/", 0 },
    { "//", 0 },
    { "a/", 0 },
    { "/a", 0 },
    { " ", 0 },
    { "sport/tennis/player1", 0 },
    { "Accounts payable", 0 },
    { "$SYS/broker/uptime", 0 },
    { "a/$b", 0 },
    { "caf\xc3\xa9/\xe2\x82\xac/\xf0\x9f\x98\x80", 0 }, /* U+E9 U+20AC U+1F600 */
    { "\xef\xbf\xbf", 0 },                       /* U+FFFF is allowed */
    { "\xf4\x8f\xbf\xbf", 0 },                   /* U+10FFFF */
};

static const str_case_t invalid_names[] = {
    { "", 1 },                                  /* U+0000, len 1 */
    { "a\0b", 3 },                              /* U+0000 inside */
    { "+", 0 },
    { "#", 0 },
    { "a+", 0 },
    { "+a", 0 },
    { "a/+/b", 0 },
    { "a/#", 0 },
    { "sport/tennis#", 0 },
    { "\xc0\xaf", 0 },                           /* overlong '/' */
    { "\xe0\x80\xaf", 0 },                       /* overlong '/' */
    { "\xed\xa0\x80", 0 },                       /* surrogate U+D800 */
    { "\xf4\x90\x80\x80", 0 },                   /* above U+10FFFF */
    { "\xc3", 0 },                               /* truncated */
    { "\x80", 0 },                               /* stray continuation */
    { "\xff", 0 },
};

static const str_case_t valid_filters[] = {
    { "#", 0 },
    { "+", 0 },
    { "/", 0 },
    { "+/+", 0 },
    { "/+", 0 },
    { "+/", 0 },
    { "/#", 0 },
    { "sport/#", 0 },
    { "sport/tennis/#", 0 },
    { "sport/tennis/player1/#", 0 },
    { "sport/+", 0 },
    { "sport/tennis/+", 0 },
    { "sport/+/player1", 0 },
    { "+/tennis/#", 0 },
    { "+/+/+/#", 0 },
    { "$SYS/#", 0 },
    { "$SYS/monitor/+", 0 },
    { "a//b", 0 },
    { "caf\xc3\xa9/+", 0 },
};

static const str_case_t invalid_filters[] = {
    { "", 1 },                                  /* U+0000 */
    { "a/\0", 3 },
    { "sport/tennis#", 0 },
    { "sport/tennis/#/ranking", 0 },
    { "#/a", 0 },
    { "#/", 0 },
    { "##", 0 },
    { "a#", 0 },
    { "#a", 0 },
    { "a/#b", 0 },
    { "sport+", 0 },
    { "a+", 0 },
    { "+a", 0 },
    { "++", 0 },
    { "a/+b/c", 0 },
    { "+#", 0 },
    { "\xc0\xaf/#", 0 },
    { "+/\xed\xbf\xbf", 0 },                     /* surrogate U+DFFF */
};

static void
test_name_valid(void **state)
{
    size_t i;

    (void) state;

    for (i = 0; i < NELEM(valid_names); i++) {
        if (!name_valid(valid_names[i].s, case_len(&valid_names[i]))) {
            fail_msg("name %zu \"%s\" should be valid", i, valid_names[i].s);
        }
    }
    for (i = 0; i < NELEM(invalid_names); i++) {
        if (name_valid(invalid_names[i].s, case_len(&invalid_names[i]))) {
            fail_msg("name %zu \"%s\" should be invalid", i,
                     invalid_names[i].s);
        }
    }
}

static void
test_filter_valid(void **state)
{
    size_t i;

    (void) state;

    for (i = 0; i < NELEM(valid_filters); i++) {
        if (!filter_valid(valid_filters[i].s, case_len(&valid_filters[i]))) {
            fail_msg("filter %zu \"%s\" should be valid", i,
                     valid_filters[i].s);
        }
    }
    for (i = 0; i < NELEM(invalid_filters); i++) {
        if (filter_valid(invalid_filters[i].s,
                         case_len(&invalid_filters[i])))
        {
            fail_msg("filter %zu \"%s\" should be invalid", i,
                     invalid_filters[i].s);
        }
    }
}

static void
test_empty_and_length_limits(void **state)
{
    char *big;

    (void) state;

    assert_false(topic_name_valid("a", 0));
    assert_false(topic_filter_valid("a", 0));

    big = malloc(65536);
    assert_non_null(big);
    memset(big, 'x', 65536);

    assert_true(name_valid(big, 65535));
    assert_true(filter_valid(big, 65535));
    assert_false(name_valid(big, 65536));
    assert_false(filter_valid(big, 65536));

    /* all-slash 65535 bytes: 32768 empty levels */
    memset(big, '/', 65535);
    assert_true(name_valid(big, 65535));
    assert_true(filter_valid(big, 65535));
    big[65534] = '#';
    assert_true(filter_valid(big, 65535));
    assert_false(name_valid(big, 65535));
    big[0] = '#';
    assert_false(filter_valid(big, 65535));

    free(big);
}

static void
test_length_is_respected(void **state)
{
    (void) state;

    /* bytes past len are not part of the string */
    assert_true(topic_name_valid("a/b+#", 3));
    assert_true(topic_filter_valid("a/#/b", 3));
    assert_true(topic_filter_valid("a/+b", 3));
    assert_true(topic_matches("a/b/c", 3, "a/bx", 3));
    assert_false(topic_matches("a/b/c", 5, "a/b/cd", 6));
    assert_false(topic_matches("a/b/cd", 6, "a/b/c", 5));
}

/* MQTT 3.1.1 section 4.7 examples and the cases around them. */
static const match_case_t match_table[] = {
    /* 4.7.1.2 multi-level wildcard */
    { "sport/tennis/player1/#", "sport/tennis/player1", true },
    { "sport/tennis/player1/#", "sport/tennis/player1/ranking", true },
    { "sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true },
    { "sport/tennis/player1/#", "sport/tennis/player12", false },
    { "sport/tennis/player1/#", "sport/tennis", false },
    { "sport/#", "sport", true },
    { "sport/#", "sport/", true },
    { "sport/#", "sports", false },
    { "sport/#", "spor", false },
    { "sport/tennis/#", "sport/tennis", true },
    { "#", "sport", true },
    { "#", "sport/tennis/player1", true },
    { "#", "/", true },
    { "#", "/finance", true },
    { "/#", "/finance", true },
    { "/#", "/", true },
    { "/#", "finance", false },

    /* 4.7.1.3 single-level wildcard */
    { "sport/tennis/+", "sport/tennis/player1", true },
    { "sport/tennis/+", "sport/tennis/player2", true },
    { "sport/tennis/+", "sport/tennis/player1/ranking", false },
    { "sport/tennis/+", "sport/tennis", false },
    { "sport/tennis/+", "sport/tennis/", true },
    { "sport/+", "sport", false },
    { "sport/+", "sport/", true },
    { "+", "sport", true },
    { "+", "", true },
    { "+/+", "/", true },
    { "+/+", "a/", true },
    { "+/+", "/a", true },
    { "+/+", "a", false },
    { "+/+", "a/b/c", false },
    { "/+", "/finance", true },
    { "+", "/finance", false },
    { "+/tennis/#", "sport/tennis", true },
    { "+/tennis/#", "sport/tennis/player1", true },
    { "+/tennis/#", "sport/golf", false },
    { "sport/+/player1", "sport/tennis/player1", true },
    { "sport/+/player1", "sport//player1", true },
    { "sport/+/player1", "sport/tennis/player2", false },
    { "a/+/b", "a//b", true },
    { "+/+/+/#", "a/b", false },
    { "+/+/+/#", "a/b/c", true },

    /* plain levels: exact, case-sensitive, spaces significant */
    { "sport/tennis", "sport/tennis", true },
    { "sport/tennis", "sport/tennis/", false },
    { "sport/tennis/", "sport/tennis", false },
    { "ACCOUNTS", "Accounts", false },
    { "Accounts payable", "Accounts payable", true },
    { "Accounts payable", "Accounts  payable", false },
    { "/", "/", true },
    { "//", "/", false },
    { "a", "ab", false },
    { "ab", "a", false },

    /* 4.7.2 topics beginning with '$' */
    { "#", "$SYS/monitor/Clients", false },
    { "#", "$SYS", false },
    { "#", "$", false },
    { "+", "$SYS", false },
    { "+/monitor/Clients", "$SYS/monitor/Clients", false },
    { "+/#", "$SYS/monitor", false },
    { "$SYS/#", "$SYS/monitor/Clients", true },
    { "$SYS/#", "$SYS", true },
    { "$SYS/monitor/+", "$SYS/monitor/Clients", true },
    { "$SYS/monitor/Clients", "$SYS/monitor/Clients", true },
    { "$SYS/+", "$SYS/monitor/Clients", false },
    { "a/+", "a/$x", true },
    { "a/#", "a/$x/y", true },
    { "+/$x", "a/$x", true },
    { "#", "a$", true },
    { "+", "a$", true },
};

static void
test_matching_table(void **state)
{
    const match_case_t *c;
    char *f, *t;
    size_t i, flen, tlen;

    (void) state;

    for (i = 0; i < NELEM(match_table); i++) {
        c = &match_table[i];
        flen = strlen(c->filter);
        tlen = strlen(c->topic);

        /* the table holds only valid filters and (nonempty) valid names */
        if (!topic_filter_valid(c->filter, flen)) {
            fail_msg("table filter \"%s\" invalid", c->filter);
        }
        if (tlen > 0 && !topic_name_valid(c->topic, tlen)) {
            fail_msg("table topic \"%s\" invalid", c->topic);
        }

        f = exact_copy(c->filter, flen);
        t = exact_copy(c->topic, tlen);
        if (topic_matches(f, flen, t, tlen) != c->match) {
            fail_msg("filter \"%s\" topic \"%s\": expected %s", c->filter,
                     c->topic, c->match ? "match" : "no match");
        }
        free(f);
        free(t);
    }
}

static void
test_deep_topics(void **state)
{
    char *f, *t;
    size_t i, flen, tlen;

    (void) state;

    /* "+/+/.../+": 32768 levels in 65535 bytes */
    flen = 65535;
    f = malloc(flen);
    assert_non_null(f);
    for (i = 0; i < flen; i++) {
        f[i] = (i % 2 == 0) ? '+' : '/';
    }

    /* 32767 slashes: 32768 empty levels */
    tlen = 32767;
    t = malloc(tlen);
    assert_non_null(t);
    memset(t, '/', tlen);

    assert_true(topic_filter_valid(f, flen));
    assert_true(topic_name_valid(t, tlen));
    assert_true(topic_matches(f, flen, t, tlen));
    assert_false(topic_matches(f, flen - 2, t, tlen));
    assert_false(topic_matches(f, flen, t, tlen - 1));
    assert_true(topic_matches("#", 1, t, tlen));

    free(f);
    free(t);
}

/* $share/NAME/FILTER: split where FILTER starts; bad shares refused. */
static void
test_share_split(void **state)
{
    static const struct {
        const char *f;
        int want;
        uint16_t foff;
    } cases[] = {
        { "$share/g/a/b", 1, 9 },
        { "$share/grp/#", 1, 11 },
        { "$share/g/+/x", 1, 9 },
        { "$share/g//", 1, 9 },     /* FILTER "/" is a valid filter */
        { "$share/g", -1, 0 },      /* no filter part */
        { "$share/g/", -1, 0 },     /* empty filter */
        { "$share//t", -1, 0 },     /* empty share name */
        { "$share/g+/t", -1, 0 },   /* wildcard in the name */
        { "$share/g#/t", -1, 0 },
        { "$share/g/a/#/b", -1, 0 }, /* invalid filter */
        { "$shared/g/t", 0, 0 },    /* not a share */
        { "$SHARE/g/t", 0, 0 },
        { "a/$share/g/t", 0, 0 },
        { "$share", 0, 0 },
    };
    (void) state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint16_t foff = 0;
        int r = topic_share_split(cases[i].f, strlen(cases[i].f), &foff);
        if (r != cases[i].want || (r == 1 && foff != cases[i].foff)) {
            fail_msg("%s: got %d (filter at %u), want %d (at %u)",
                     cases[i].f, r, foff, cases[i].want, cases[i].foff);
        }
    }
    /* The names records carry: never 0, stable, and different here. */
    assert_int_not_equal(topic_share_hash("", 0), 0);
    assert_int_equal(topic_share_hash("$share/g/t", 10),
                     topic_share_hash("$share/g/t", 10));
    assert_int_not_equal(topic_share_hash("$share/g/t", 10),
                         topic_share_hash("$share/h/t", 10));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_valid),
        cmocka_unit_test(test_filter_valid),
        cmocka_unit_test(test_empty_and_length_limits),
        cmocka_unit_test(test_length_is_respected),
        cmocka_unit_test(test_matching_table),
        cmocka_unit_test(test_deep_topics),
        cmocka_unit_test(test_share_split),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
