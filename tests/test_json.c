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

IB_TEST_MAIN(NULL, NULL,
             {
                 cmocka_unit_test(plain_and_quoted),
                 cmocka_unit_test(control_characters),
                 cmocka_unit_test(utf8_passes_invalid_is_replaced),
             })
