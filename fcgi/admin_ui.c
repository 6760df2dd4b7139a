/*
 * admin_ui.c — the dashboard's static files (admin_ui.h): an allow-list
 * matched by exact name, so no path from a client ever reaches open() but
 * one of the names below, and each file read whole within a cap.
 */
#include "admin_ui.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "config.h"
#include "log.h"
#include "request.h"

#define UI_MAX_FILE_BYTES (1024 * 1024)

/*
 * The page's own policy: its scripts, styles, images and API calls from this
 * origin only; no inline script or style, no plugin, no framing, no <base>.
 */
#define UI_CSP                                                                                     \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"               \
    " connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self';"                 \
    " frame-ancestors 'none'"

struct ui_file {
    const char *name; /* the path after /admin/ui/, and the file under the ui directory */
    const char *content_type;
};

static const struct ui_file ui_files[] = {
    {"index.html", "text/html; charset=utf-8"},
    {"app.js", "text/javascript; charset=utf-8"},
    {"views.js", "text/javascript; charset=utf-8"},
    {"money.js", "text/javascript; charset=utf-8"},
    {"app.css", "text/css; charset=utf-8"},
    {"print.css", "text/css; charset=utf-8"},
    {"favicon.svg", "image/svg+xml"},
    {"vendor/chart.umd.min.js", "text/javascript; charset=utf-8"},
};

bool tg_admin_ui_owns(const char *path)
{
    return strcmp(path, "/admin/ui") == 0 ||
           strncmp(path, TG_ADMIN_UI_PREFIX, strlen(TG_ADMIN_UI_PREFIX)) == 0;
}

const char *tg_admin_ui_lookup(const char *path, const char **content_type)
{
    if (strncmp(path, TG_ADMIN_UI_PREFIX, strlen(TG_ADMIN_UI_PREFIX)) != 0)
        return NULL;
    const char *name = path + strlen(TG_ADMIN_UI_PREFIX);
    if (name[0] == '\0')
        name = "index.html";
    for (size_t i = 0; i < TG_ARRAY_LEN(ui_files); i++) {
        if (strcmp(ui_files[i].name, name) == 0) {
            *content_type = ui_files[i].content_type;
            return ui_files[i].name;
        }
    }
    return NULL;
}

static int not_found(struct tg_request *r, const char *why)
{
    tg_request_fail(r, 404, "not_found_error", "not found", "dashboard: %s: %s", r->path, why);
    return TG_ERROR;
}

/* name's bytes into the arena (*len of them), or NULL with errno's reason in *why. */
static char *read_file(struct tg_request *r, const char *name, size_t *len, const char **why)
{
    const char *file = tg_arena_printf(r->arena, "%s/%s", r->config->admin_ui_dir, name);
    int fd = file != NULL ? open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
    struct stat st;
    char *data = NULL;
    *why = "out of memory";
    if (fd < 0 || fstat(fd, &st) != 0) {
        *why = file != NULL ? strerror(errno) : *why;
    } else if (!S_ISREG(st.st_mode) || st.st_size > UI_MAX_FILE_BYTES) {
        *why = "not a regular file within 1 MiB";
    } else if ((data = tg_arena_alloc(r->arena, (size_t)st.st_size + 1)) != NULL) {
        size_t got = 0;
        while (got < (size_t)st.st_size) {
            ssize_t n = read(fd, data + got, (size_t)st.st_size - got);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        *len = got;
        if (got != (size_t)st.st_size) {
            *why = "short read";
            data = NULL;
        }
    }
    if (fd >= 0)
        close(fd);
    return data;
}

int tg_admin_ui_handle(struct tg_request *r)
{
    if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0) {
        tg_request_add_header(r, "Allow", "GET, HEAD");
        tg_request_fail(r, 405, "invalid_request_error", "method not allowed", "%s %s", r->method,
                        r->path);
        return TG_ERROR;
    }
    if (strcmp(r->path, "/admin/ui") == 0) {
        tg_request_add_header(r, "Location", TG_ADMIN_UI_PREFIX);
        tg_request_respond(r, 301, "text/plain; charset=utf-8", "", 0);
        return TG_OK;
    }
    const char *content_type;
    const char *name = tg_admin_ui_lookup(r->path, &content_type);
    if (name == NULL)
        return not_found(r, "not a file of the dashboard");
    if (r->config->admin_ui_dir == NULL)
        return not_found(r, "admin.ui_dir is not set");
    size_t len = 0;
    const char *why;
    const char *data = read_file(r, name, &len, &why);
    if (data == NULL) {
        tg_log_error(r->request_id, "could not read dashboard file \"%s/%s\": %s",
                     r->config->admin_ui_dir, name, why);
        return not_found(r, why);
    }
    tg_request_add_header(r, "Cache-Control", "no-cache");
    tg_request_add_header(r, "Content-Security-Policy", UI_CSP);
    tg_request_add_header(r, "X-Content-Type-Options", "nosniff");
    tg_request_add_header(r, "Referrer-Policy", "no-referrer");
    tg_request_add_header(r, "X-Frame-Options", "DENY");
    tg_request_respond(r, 200, content_type, data, len); /* the server drops it for HEAD */
    return TG_OK;
}
