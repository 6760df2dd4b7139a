/*
 * test_admin_ui.c — the dashboard's allow-list: the files it names and
 * nothing else (traversal, escapes, other directories, doubled slashes).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "admin_ui.h"

static void test_allowed_files(void **state)
{
    (void)state;
    const char *type = NULL;
    assert_string_equal(tg_admin_ui_lookup("/admin/ui/", &type), "index.html");
    assert_string_equal(type, "text/html; charset=utf-8");
    assert_string_equal(tg_admin_ui_lookup("/admin/ui/app.js", &type), "app.js");
    assert_string_equal(type, "text/javascript; charset=utf-8");
    assert_string_equal(tg_admin_ui_lookup("/admin/ui/app.css", &type), "app.css");
    assert_string_equal(type, "text/css; charset=utf-8");
    assert_string_equal(tg_admin_ui_lookup("/admin/ui/vendor/chart.umd.min.js", &type),
                        "vendor/chart.umd.min.js");
}

static void test_everything_else_refused(void **state)
{
    (void)state;
    static const char *const refused[] = {
        "/admin/ui",
        "/admin/ui/../keys",
        "/admin/ui/..%2fkeys",
        "/admin/ui/%2e%2e/keys",
        "/admin/ui//app.js",
        "/admin/ui/./app.js",
        "/admin/ui/vendor/../app.js",
        "/admin/ui/app.js/",
        "/admin/ui/APP.JS",
        "/admin/ui/vendor/LICENSE.md",
        "/admin/ui/vendor/",
        "/admin/ui/vendor/chart.umd.min.js.map",
        "/admin/ui/index.html%00.js",
        "/admin/uix/app.js",
        "/admin/keys",
        "/etc/passwd",
        "/admin/ui/package.json",
        "/admin/ui/.git/config",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        const char *type = "unchanged";
        assert_null(tg_admin_ui_lookup(refused[i], &type));
        assert_string_equal(type, "unchanged");
    }
}

static void test_owns(void **state)
{
    (void)state;
    assert_true(tg_admin_ui_owns("/admin/ui"));
    assert_true(tg_admin_ui_owns("/admin/ui/"));
    assert_true(tg_admin_ui_owns("/admin/ui/../keys")); /* owned, then refused: a 404 */
    assert_false(tg_admin_ui_owns("/admin/uix"));
    assert_false(tg_admin_ui_owns("/admin/keys"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allowed_files),
        cmocka_unit_test(test_everything_else_refused),
        cmocka_unit_test(test_owns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
