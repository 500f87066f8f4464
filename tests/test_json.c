/*
 * JSON string escaping: what scripts parsing --json depend on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "harness.h"

#include "report.h"

static void check(const char *in, const char *want)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    ib_json_string(f, in);
    fclose(f);
    assert_string_equal(buf, want);
    free(buf);
}

static void plain_and_quoted(void **state)
{
    (void)state;
    check("a/b.jpg", "\"a/b.jpg\"");
    check("say \"hi\"\\", "\"say \\\"hi\\\"\\\\\"");
    check("", "\"\"");
}

static void control_characters(void **state)
{
    (void)state;
    check("a\nb\tc\rd\be\f", "\"a\\nb\\tc\\rd\\be\\f\"");
    check("\x01\x1f", "\"\\u0001\\u001f\"");
}

static void utf8_passes_invalid_is_replaced(void **state)
{
    (void)state;
    check("Crémieux11.tiff", "\"Crémieux11.tiff\"");
    check("\xe2\x82\xac \xf0\x9f\x98\x80", "\"\xe2\x82\xac \xf0\x9f\x98\x80\"");
    /* Latin-1 bytes, a lone continuation, an overlong form, a surrogate. */
    check("caf\xe9", "\"caf\\ufffd\"");
    check("\x80x", "\"\\ufffdx\"");
    check("\xc0\xaf", "\"\\ufffd\\ufffd\"");
    check("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"");
    check("\xe2\x82", "\"\\ufffd\\ufffd\"");
}

/* The tests' own reader (tests/decode.c) takes back what ib_json_string
 * writes, in a document of every kind of value, and refuses what is not
 * strict JSON: the manifest tests rely on both. */
static void reader_takes_back_what_is_written(void **state)
{
    (void)state;
    static const char *const strings[] = {"plain", "a \"quote\" and \\", "tab\tnew\nline\x01",
                                          "caf\xc3\xa9 \xe2\x82\xac"};
    char *buf = NULL, err[256];
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    fputs("{\"s\":[", f);
    for (size_t i = 0; i < 4; i++) {
        fputs(i > 0 ? "," : "", f);
        ib_json_string(f, strings[i]);
    }
    fputs("],\"v\":{\"n\":-2.5e1,\"t\":true,\"f\":false,\"z\":null}}", f);
    fclose(f);
    ib_test_json_t doc;
    if (ib_test_json_parse(buf, len, &doc, err, sizeof err) < 0)
        fail_msg("%s: %s", buf, err);
    const ib_test_json_t *s = ib_test_json_get(&doc, "s"), *v = ib_test_json_get(&doc, "v");
    assert_true(s != NULL && s->type == IB_TEST_JSON_ARRAY && s->n == 4);
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(s->items[i].string, strings[i]);
    assert_true(ib_test_json_get(v, "n")->number == -25.0);
    assert_true(ib_test_json_get(v, "t")->type == IB_TEST_JSON_BOOL &&
                ib_test_json_get(v, "t")->number == 1);
    assert_true(ib_test_json_get(v, "f")->number == 0);
    assert_int_equal(ib_test_json_get(v, "z")->type, IB_TEST_JSON_NULL);
    assert_null(ib_test_json_get(v, "missing"));
    ib_test_json_free(&doc);
    free(buf);

    static const char *const bad[] = {"{\"a\":1,\"a\":2}", "[1,]", "{} {}", "[01]", "\"\x01\""};
    for (size_t i = 0; i < 5; i++)
        if (ib_test_json_parse(bad[i], strlen(bad[i]), &doc, err, sizeof err) == 0)
            fail_msg("the reader took %s", bad[i]);
}

IB_TEST_MAIN(NULL, NULL,
             {
                 cmocka_unit_test(plain_and_quoted),
                 cmocka_unit_test(control_characters),
                 cmocka_unit_test(utf8_passes_invalid_is_replaced),
                 cmocka_unit_test(reader_takes_back_what_is_written),
             })
