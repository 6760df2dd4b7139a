/*
 * libfail: failure injection for the worker's request path (tests only).
 *
 * An LD_PRELOAD library, in the manner of curl's torture mode and jansson's
 * test_chaos: it counts every allocation (malloc, calloc, realloc, strdup,
 * strndup, posix_memalign, aligned_alloc) and every call into libpq and
 * libcurl made on the thread serving a request, from the moment
 * FCGX_Accept_r returns until FCGX_Finish_r, and makes the Nth of one kind
 * fail the way the library would fail: NULL from an allocator, NULL from
 * PQexec, PQexecParams, PQexecPrepared and PQprepare, 0 from PQsendQuery..., a PGRES_FATAL_ERROR
 * result from PQgetResult, CURLE_OUT_OF_MEMORY from curl_easy_setopt, NULL from curl_slist_append,
 * CURLE_COULDNT_CONNECT from curl_easy_perform.
 *
 * Steering, read at each accept from the file named by TG_CHAOS_CTL:
 * "count 0" (fail nothing), "alloc N" or "call N".  At each finish the
 * request's figures go to the file named by TG_CHAOS_OUT, one line:
 *   allocs=A calls=C injected=0|1 site=<object+offset symbol> fns=<f1,f2,...>
 * so a test reads them once it has the response (the worker writes them
 * before FastCGI's end-of-request record is sent).
 *
 * Other threads (the sweeper, settle's batcher) and startup are never
 * failed.  Not part of the gateway: tests/integration/test_chaos.py builds
 * and uses it.  Under ASan it is preloaded first with
 * verify_asan_link_order=0; the real allocators are then ASan's.
 */
#define _GNU_SOURCE
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>
#include <dlfcn.h>
#include <fcgiapp.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TLS static __thread __attribute__((tls_model("initial-exec")))

enum mode { MODE_COUNT, MODE_ALLOC, MODE_CALL };

TLS int armed;  /* this thread is serving a request */
TLS int inside; /* in the shim's own bookkeeping: pass through */
TLS enum mode mode;
TLS unsigned long fail_at;
TLS unsigned long n_allocs, n_calls;
TLS int injected;
TLS char site[256];
TLS char fns[2048];
TLS size_t fns_len;

/*
 * The real allocators: ASan's when the process has it (its interceptors are
 * exported under these names; dlsym cannot be used, ASan calls malloc while
 * it sets dlsym up), else glibc's.
 */
extern void *__interceptor_malloc(size_t) __attribute__((weak));
extern void *__interceptor_calloc(size_t, size_t) __attribute__((weak));
extern void *__interceptor_realloc(void *, size_t) __attribute__((weak));
extern void __interceptor_free(void *) __attribute__((weak));
extern char *__interceptor_strdup(const char *) __attribute__((weak));
extern char *__interceptor_strndup(const char *, size_t) __attribute__((weak));
extern int __interceptor_posix_memalign(void **, size_t, size_t) __attribute__((weak));
extern void *__interceptor_aligned_alloc(size_t, size_t) __attribute__((weak));
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);

static void *next(const char *name)
{
    return dlsym(RTLD_NEXT, name);
}

static void note_site(void *caller)
{
    Dl_info info;
    if (caller != NULL && dladdr(caller, &info) != 0 && info.dli_fname != NULL) {
        const char *base = strrchr(info.dli_fname, '/');
        snprintf(site, sizeof(site), "%s+0x%lx(%s)", base != NULL ? base + 1 : info.dli_fname,
                 (unsigned long)((uintptr_t)caller - (uintptr_t)info.dli_fbase),
                 info.dli_sname != NULL ? info.dli_sname : "?");
    } else {
        snprintf(site, sizeof(site), "%p", caller);
    }
}

/* 1 when this allocation is the one to fail */
static int alloc_fails(void *caller)
{
    if (!armed || inside)
        return 0;
    n_allocs++;
    if (mode != MODE_ALLOC || injected || n_allocs != fail_at)
        return 0;
    injected = 1;
    inside = 1;
    note_site(caller);
    inside = 0;
    return 1;
}

/* 1 when this external call is the one to fail */
static int call_fails(const char *fn)
{
    if (!armed || inside)
        return 0;
    n_calls++;
    size_t len = strlen(fn);
    if (fns_len + len + 2 < sizeof(fns)) {
        if (fns_len > 0)
            fns[fns_len++] = ',';
        memcpy(fns + fns_len, fn, len);
        fns_len += len;
        fns[fns_len] = '\0';
    }
    if (mode != MODE_CALL || injected || n_calls != fail_at)
        return 0;
    injected = 1;
    snprintf(site, sizeof(site), "%s", fn);
    return 1;
}

#define CALLER __builtin_return_address(0)

void *malloc(size_t size)
{
    if (alloc_fails(CALLER))
        return NULL;
    return __interceptor_malloc != NULL ? __interceptor_malloc(size) : __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
    if (alloc_fails(CALLER))
        return NULL;
    return __interceptor_calloc != NULL ? __interceptor_calloc(n, size) : __libc_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
    if (alloc_fails(CALLER))
        return NULL;
    return __interceptor_realloc != NULL ? __interceptor_realloc(p, size) : __libc_realloc(p, size);
}

void free(void *p)
{
    if (__interceptor_free != NULL)
        __interceptor_free(p);
    else
        __libc_free(p);
}

static char *copy(const char *s, size_t len)
{
    char *out =
        __interceptor_malloc != NULL ? __interceptor_malloc(len + 1) : __libc_malloc(len + 1);
    if (out != NULL) {
        memcpy(out, s, len);
        out[len] = '\0';
    }
    return out;
}

char *strdup(const char *s)
{
    if (alloc_fails(CALLER))
        return NULL;
    return __interceptor_strdup != NULL ? __interceptor_strdup(s) : copy(s, strlen(s));
}

char *strndup(const char *s, size_t n)
{
    if (alloc_fails(CALLER))
        return NULL;
    return __interceptor_strndup != NULL ? __interceptor_strndup(s, n) : copy(s, strnlen(s, n));
}

int posix_memalign(void **out, size_t align, size_t size)
{
    if (alloc_fails(CALLER))
        return 12; /* ENOMEM */
    if (__interceptor_posix_memalign != NULL)
        return __interceptor_posix_memalign(out, align, size);
    *out = __libc_memalign(align, size);
    return *out != NULL ? 0 : 12;
}

void *aligned_alloc(size_t align, size_t size)
{
    if (alloc_fails(CALLER))
        return NULL;
    return __interceptor_aligned_alloc != NULL ? __interceptor_aligned_alloc(align, size)
                                               : __libc_memalign(align, size);
}

/* ---- the request's bounds ---------------------------------------------- */

static void read_control(void)
{
    mode = MODE_COUNT;
    fail_at = 0;
    const char *path = getenv("TG_CHAOS_CTL");
    if (path == NULL)
        return;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    char buf[64];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return;
    buf[n] = '\0';
    char *space = strchr(buf, ' ');
    if (space == NULL)
        return;
    fail_at = strtoul(space + 1, NULL, 10);
    if (strncmp(buf, "alloc", 5) == 0)
        mode = MODE_ALLOC;
    else if (strncmp(buf, "call", 4) == 0)
        mode = MODE_CALL;
}

static void write_report(void)
{
    const char *path = getenv("TG_CHAOS_OUT");
    if (path == NULL)
        return;
    char line[4096];
    int n = snprintf(line, sizeof(line), "allocs=%lu calls=%lu injected=%d site=%s fns=%s\n",
                     n_allocs, n_calls, injected, injected ? site : "-", fns_len > 0 ? fns : "-");
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(line))
        n = (int)sizeof(line) - 1;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    if (write(fd, line, (size_t)n) != n) {
        /* the test sees a short line and fails */
    }
    close(fd);
}

static void disarm(void)
{
    if (!armed)
        return;
    armed = 0;
    inside = 1;
    write_report();
    inside = 0;
}

int FCGX_Accept_r(FCGX_Request *request)
{
    static int (*real)(FCGX_Request *);
    if (real == NULL)
        real = (int (*)(FCGX_Request *))next("FCGX_Accept_r");
    disarm();
    int rc = real(request);
    if (rc >= 0) {
        inside = 1;
        read_control();
        inside = 0;
        n_allocs = n_calls = 0;
        injected = 0;
        fns_len = 0;
        fns[0] = '\0';
        armed = 1;
    }
    return rc;
}

void FCGX_Finish_r(FCGX_Request *request)
{
    static void (*real)(FCGX_Request *);
    if (real == NULL)
        real = (void (*)(FCGX_Request *))next("FCGX_Finish_r");
    disarm();
    real(request);
}

/* ---- libpq ----------------------------------------------------------------- */

#define REAL(name)                                                                                 \
    static __typeof__(&name) real_##name;                                                          \
    if (real_##name == NULL)                                                                       \
    real_##name = (__typeof__(&name))next(#name)

PGresult *PQexec(PGconn *conn, const char *query)
{
    REAL(PQexec);
    return call_fails("PQexec") ? NULL : real_PQexec(conn, query);
}

PGresult *PQexecParams(PGconn *conn, const char *command, int nParams, const Oid *paramTypes,
                       const char *const *paramValues, const int *paramLengths,
                       const int *paramFormats, int resultFormat)
{
    REAL(PQexecParams);
    if (call_fails("PQexecParams"))
        return NULL;
    return real_PQexecParams(conn, command, nParams, paramTypes, paramValues, paramLengths,
                             paramFormats, resultFormat);
}

PGresult *PQexecPrepared(PGconn *conn, const char *stmtName, int nParams,
                         const char *const *paramValues, const int *paramLengths,
                         const int *paramFormats, int resultFormat)
{
    REAL(PQexecPrepared);
    if (call_fails("PQexecPrepared"))
        return NULL;
    return real_PQexecPrepared(conn, stmtName, nParams, paramValues, paramLengths, paramFormats,
                               resultFormat);
}

PGresult *PQprepare(PGconn *conn, const char *stmtName, const char *query, int nParams,
                    const Oid *paramTypes)
{
    REAL(PQprepare);
    return call_fails("PQprepare") ? NULL
                                   : real_PQprepare(conn, stmtName, query, nParams, paramTypes);
}

int PQsendQueryParams(PGconn *conn, const char *command, int nParams, const Oid *paramTypes,
                      const char *const *paramValues, const int *paramLengths,
                      const int *paramFormats, int resultFormat)
{
    REAL(PQsendQueryParams);
    if (call_fails("PQsendQueryParams"))
        return 0;
    return real_PQsendQueryParams(conn, command, nParams, paramTypes, paramValues, paramLengths,
                                  paramFormats, resultFormat);
}

int PQsendQueryPrepared(PGconn *conn, const char *stmtName, int nParams,
                        const char *const *paramValues, const int *paramLengths,
                        const int *paramFormats, int resultFormat)
{
    REAL(PQsendQueryPrepared);
    if (call_fails("PQsendQueryPrepared"))
        return 0;
    return real_PQsendQueryPrepared(conn, stmtName, nParams, paramValues, paramLengths,
                                    paramFormats, resultFormat);
}

PGresult *PQgetResult(PGconn *conn)
{
    REAL(PQgetResult);
    PGresult *res = real_PQgetResult(conn);
    if (res == NULL || !call_fails("PQgetResult"))
        return res;
    PQclear(res);
    return PQmakeEmptyPGresult(conn, PGRES_FATAL_ERROR);
}

PGconn *PQconnectdbParams(const char *const *keywords, const char *const *values, int expand_dbname)
{
    REAL(PQconnectdbParams);
    return call_fails("PQconnectdbParams")
               ? NULL
               : real_PQconnectdbParams(keywords, values, expand_dbname);
}

/* ---- libcurl --------------------------------------------------------------- */

CURLcode curl_easy_setopt(CURL *curl, CURLoption option, ...)
{
    REAL(curl_easy_setopt);
    va_list ap;
    va_start(ap, option);
    /* curl reads the argument by the option's range; so does this */
    CURLcode rc;
    if (option >= CURLOPTTYPE_OFF_T && option < CURLOPTTYPE_BLOB) {
        curl_off_t v = va_arg(ap, curl_off_t);
        rc = call_fails("curl_easy_setopt") ? CURLE_OUT_OF_MEMORY
                                            : real_curl_easy_setopt(curl, option, v);
    } else if (option >= CURLOPTTYPE_OBJECTPOINT) {
        void *v = va_arg(ap, void *);
        rc = call_fails("curl_easy_setopt") ? CURLE_OUT_OF_MEMORY
                                            : real_curl_easy_setopt(curl, option, v);
    } else {
        long v = va_arg(ap, long);
        rc = call_fails("curl_easy_setopt") ? CURLE_OUT_OF_MEMORY
                                            : real_curl_easy_setopt(curl, option, v);
    }
    va_end(ap);
    return rc;
}

struct curl_slist *curl_slist_append(struct curl_slist *list, const char *data)
{
    REAL(curl_slist_append);
    return call_fails("curl_slist_append") ? NULL : real_curl_slist_append(list, data);
}

CURLcode curl_easy_perform(CURL *curl)
{
    REAL(curl_easy_perform);
    return call_fails("curl_easy_perform") ? CURLE_COULDNT_CONNECT : real_curl_easy_perform(curl);
}
