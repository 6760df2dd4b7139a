/*
 * admin_ui.h — the dashboard's static files under /admin/ui/ (ui/ in the
 * source tree, installed in $(pkgdatadir)/ui): a fixed allow-list of files
 * read from config->admin_ui_dir, answered with their content type, no
 * caching without revalidation, and a strict Content-Security-Policy.
 *
 * Served only when the admin API is on (route.c sends /admin/ here only
 * then) and to the addresses of admin.allow; no credential is needed for
 * the files themselves (the page is a login form), every figure and change
 * the page shows goes to the admin API with the admin credential.
 *
 * Not here: any data. The page calls /admin/reports/ and /admin/ (admin.c).
 */
#ifndef TG_ADMIN_UI_H
#define TG_ADMIN_UI_H

#include <stdbool.h>

struct tg_request;

/* The path prefix this module answers ("/admin/ui" alone redirects to it). */
#define TG_ADMIN_UI_PREFIX "/admin/ui/"

/* True when path is the dashboard's: "/admin/ui" or under TG_ADMIN_UI_PREFIX. */
bool tg_admin_ui_owns(const char *path);

/*
 * The allow-listed file for path (a path tg_admin_ui_owns), as a name
 * relative to the ui directory ("index.html" for "/admin/ui/"), with its
 * content type in *content_type; NULL for anything else, "..", percent
 * escapes and doubled slashes included. Borrowed static strings.
 */
const char *tg_admin_ui_lookup(const char *path, const char **content_type);

/*
 * Answers one request for the dashboard: GET or HEAD of an allow-listed
 * file (200 with Content-Type, Cache-Control, Content-Security-Policy,
 * X-Content-Type-Options, Referrer-Policy, X-Frame-Options), "/admin/ui"
 * redirected (301) to "/admin/ui/". 404 for any other path or a file
 * missing from the directory, 405 (with Allow) for other methods. TG_OK
 * once answered, else TG_ERROR with r->error set.
 */
int tg_admin_ui_handle(struct tg_request *r);

#endif
