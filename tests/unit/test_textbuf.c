/*
 * test_textbuf.c — textbuf.c: pieces appended and the buffer grown, a text over
 * its cap refused whole (never cut), and nothing written after a failure.
 */
/* cmocka.h needs these before it */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "textbuf.h"

static void test_grows_and_takes(void **state)
{
    (void)state;
    struct tg_textbuf t;
    tg_textbuf_init(&t, 4, 1 << 20);
    for (int i = 0; i < 1000; i++)
        tg_textbuf_put(&t, "line %d\n", i);
    size_t len = 0;
    char *text = tg_textbuf_take(&t, &len);
    assert_non_null(text);
    assert_int_equal(len, strlen(text));
    assert_non_null(strstr(text, "line 0\nline 1\n"));
    assert_non_null(strstr(text, "line 999\n"));
    free(text);
}

static void test_over_the_cap_is_refused_whole(void **state)
{
    (void)state;
    struct tg_textbuf t;
    tg_textbuf_init(&t, 16, 64);
    tg_textbuf_put(&t, "%s", "short");
    tg_textbuf_put(&t, "%0100d", 7); /* over 64 bytes */
    assert_true(t.failed);
    tg_textbuf_put(&t, "%s", "later"); /* dropped */
    size_t len = 99;
    assert_null(tg_textbuf_take(&t, &len));
    assert_int_equal(len, 99);
}

static void test_empty_text(void **state)
{
    (void)state;
    struct tg_textbuf t;
    tg_textbuf_init(&t, 8, 64);
    size_t len = 1;
    char *text = tg_textbuf_take(&t, &len);
    assert_non_null(text);
    assert_int_equal(len, 0);
    assert_string_equal(text, "");
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grows_and_takes),
        cmocka_unit_test(test_over_the_cap_is_refused_whole),
        cmocka_unit_test(test_empty_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
