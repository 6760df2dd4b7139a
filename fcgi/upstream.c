/*
 * upstream.c — libcurl easy handles, one per thread, reused for keep-alive.
 */
#include "upstream.h"

#include <ctype.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tg_upstream {
    CURL *easy;
    /*
     * A call's options could not all be set or cleared (curl_easy_setopt
     * failed: the handle may hold the previous call's URL, headers, or
     * pointers into freed memory), or libcurl ran out of memory inside a
     * transfer: a new handle replaces this one before the next call. Not
     * curl_easy_reset: after one, and a transfer that ran out of memory,
     * curl 7.88 answered every later transfer of the process "Empty reply
     * from server" (tests/integration/test_chaos.py found both).
     */
    bool stale;
};

static size_t header_cb(char *buf, size_t size, size_t n, void *userdata);
static size_t write_cb(char *data, size_t size, size_t n, void *userdata);
static int progress_cb(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow);
static int prereq_cb(void *userdata, char *conn_primary_ip, char *conn_local_ip,
                     int conn_primary_port, int conn_local_port);

/*
 * A kept-alive connection idle this long is not reused: a fresh one is made.
 * Below the 60 s idle timeout of the common load balancers in front of
 * providers, so that a provider closing an idle connection just as it is
 * reused (the request then lost, see prereq_cb) stays a rare race.
 */
#define UPSTREAM_MAX_IDLE_S 50L

int tg_upstream_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? TG_OK : TG_ERROR;
}

void tg_upstream_global_cleanup(void)
{
    curl_global_cleanup();
}

/* The options every call shares, set once: no curl_easy_reset per call. */
static int set_shared_options(CURL *easy)
{
    CURLcode rc = CURLE_OK;
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(easy, CURLOPT_POST, 1L);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, header_cb);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(easy, CURLOPT_PREREQFUNCTION, prereq_cb);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(easy, CURLOPT_MAXAGE_CONN, UPSTREAM_MAX_IDLE_S);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, write_cb);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, progress_cb);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L);
    if (rc == CURLE_OK) /* bodies pass through as sent */
        rc = curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, NULL);
    return rc == CURLE_OK ? TG_OK : TG_ERROR;
}

struct tg_upstream *tg_upstream_new(void)
{
    struct tg_upstream *u = calloc(1, sizeof(*u));
    if (u == NULL)
        return NULL;
    u->easy = curl_easy_init();
    if (u->easy == NULL || set_shared_options(u->easy) != TG_OK) {
        if (u->easy != NULL)
            curl_easy_cleanup(u->easy);
        free(u);
        return NULL;
    }
    return u;
}

/* Before a call: a stale handle is replaced (its connections go with it). */
static int make_clean(struct tg_upstream *u)
{
    if (!u->stale)
        return TG_OK;
    CURL *fresh = curl_easy_init();
    if (fresh == NULL || set_shared_options(fresh) != TG_OK) {
        if (fresh != NULL)
            curl_easy_cleanup(fresh);
        return TG_ERROR;
    }
    curl_easy_cleanup(u->easy);
    u->easy = fresh;
    u->stale = false;
    return TG_OK;
}

void tg_upstream_free(struct tg_upstream *u)
{
    if (u == NULL)
        return;
    curl_easy_cleanup(u->easy);
    free(u);
}

static size_t header_cb(char *buf, size_t size, size_t n, void *userdata)
{
    struct tg_upstream_call *call = userdata;
    size_t len = size * n;
    const char *colon = memchr(buf, ':', len);
    if (colon == NULL || call->on_header == NULL)
        return len; /* the status line or the blank line ending the headers */
    char name[128], value[1024];
    size_t name_len = (size_t)(colon - buf);
    if (name_len == 0 || name_len >= sizeof(name))
        return len;
    for (size_t i = 0; i < name_len; i++)
        name[i] = (char)tolower((unsigned char)buf[i]);
    name[name_len] = '\0';
    const char *v = colon + 1;
    const char *end = buf + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    size_t value_len = (size_t)(end - v);
    if (value_len >= sizeof(value))
        return len; /* an absurd header is dropped, not truncated */
    memcpy(value, v, value_len);
    value[value_len] = '\0';
    return call->on_header(call->ctx, name, value) == TG_OK ? len : 0;
}

struct write_ctx {
    struct tg_upstream_call *call;
    CURL *easy;
    int sends;           /* times libcurl was about to send the request */
    bool resend_refused; /* prereq_cb stopped a second send */
};

/*
 * Called by libcurl just before it sends the request. libcurl sends a request
 * again, once, when a reused connection closes before any byte of the reply,
 * taking it for a stale keep-alive connection; but the provider may well have
 * received (and billed) the first one. So a second send within one call is
 * refused: a provider never gets one call twice unless the balancer sends it
 * again, and every attempt the balancer makes is on the access line. (Not a
 * body libcurl cannot rewind: that sends headers and body apart, in two writes.)
 */
static int prereq_cb(void *userdata, char *conn_primary_ip, char *conn_local_ip,
                     int conn_primary_port, int conn_local_port)
{
    (void)conn_primary_ip, (void)conn_local_ip, (void)conn_primary_port, (void)conn_local_port;
    struct write_ctx *w = userdata;
    if (++w->sends == 1)
        return CURL_PREREQFUNC_OK;
    w->resend_refused = true;
    return CURL_PREREQFUNC_ABORT;
}

static size_t write_cb(char *data, size_t size, size_t n, void *userdata)
{
    struct write_ctx *w = userdata;
    size_t len = size * n;
    long status = 0;
    curl_easy_getinfo(w->easy, CURLINFO_RESPONSE_CODE, &status);
    w->call->status = status;
    if (w->call->on_body(w->call->ctx, status, data, len) != TG_OK)
        return CURL_WRITEFUNC_ERROR;
    return len;
}

/* Aborts a transfer whose caller set a deadline that passed (a drain after the client left). */
static int progress_cb(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    const struct tg_upstream_call *call = ((const struct write_ctx *)userdata)->call;
    if (call->on_wait != NULL)
        call->on_wait(call->ctx);
    if (call->abort_at_ms != NULL && *call->abort_at_ms != 0 && tg_now_ms() > *call->abort_at_ms)
        return 1;
    return 0;
}

static enum tg_upstream_result classify(CURLcode code)
{
    switch (code) {
    case CURLE_OK: return TG_UPSTREAM_OK;
    case CURLE_OPERATION_TIMEDOUT: return TG_UPSTREAM_TIMEOUT;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION: return TG_UPSTREAM_UNREACHABLE;
    case CURLE_WRITE_ERROR:
    case CURLE_ABORTED_BY_CALLBACK: return TG_UPSTREAM_ABORTED;
    default: return TG_UPSTREAM_FAILED;
    }
}

enum tg_upstream_result tg_upstream_perform(struct tg_upstream *u, struct tg_upstream_call *call)
{
    if (make_clean(u) != TG_OK) {
        snprintf(call->error, sizeof(call->error), "could not set up the call: out of memory");
        return TG_UPSTREAM_FAILED;
    }
    CURL *easy = u->easy;
    struct curl_slist *list = NULL;
    /* no "Expect: 100-continue" (a second's wait for big bodies, and a 417 a second send) */
    for (size_t i = 0; i <= call->n_headers; i++) {
        struct curl_slist *grown =
            curl_slist_append(list, i < call->n_headers ? call->headers[i] : "Expect:");
        if (grown == NULL) {
            curl_slist_free_all(list);
            snprintf(call->error, sizeof(call->error), "out of memory");
            return TG_UPSTREAM_FAILED;
        }
        list = grown;
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    struct write_ctx w = {.call = call, .easy = easy, .sends = 0, .resend_refused = false};
    int64_t started = tg_now_ms();

    /* every option of the call, or none: a failed one must not leave the
     * previous call's URL (another provider) or its freed body in place */
    bool get = call->method != NULL && strcmp(call->method, "GET") == 0;
    bool delete = call->method != NULL && strcmp(call->method, "DELETE") == 0;
    CURLcode set = curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errbuf);
    if (set == CURLE_OK)
        set = curl_easy_setopt(easy, CURLOPT_URL, call->url);
    if (set == CURLE_OK)
        set = curl_easy_setopt(easy, CURLOPT_PREREQDATA, &w);
    if (set == CURLE_OK)
        set = curl_easy_setopt(easy, CURLOPT_POSTFIELDS,
                               get                  ? NULL
                               : call->body != NULL ? call->body
                                                    : "");
    if (set == CURLE_OK && !get)
        set = curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                               (curl_off_t)(call->body != NULL ? call->body_len : 0));
    /* every call sets its method (after POSTFIELDS, which means POST to libcurl):
     * a GET or DELETE must not stay for the next call */
    if (set == CURLE_OK)
        set = curl_easy_setopt(easy, get ? CURLOPT_HTTPGET : CURLOPT_POST, 1L);
    if (set == CURLE_OK)
        set = curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, delete ? "DELETE" : NULL);
    if (set == CURLE_OK)
        set = curl_easy_setopt(easy, CURLOPT_HTTPHEADER, list);
    if (set == CURLE_OK)
        set = curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, call->connect_timeout_ms);
    if (set == CURLE_OK)
        set = curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, call->timeout_ms);
    if (set == CURLE_OK)
        set = curl_easy_setopt(easy, CURLOPT_HEADERDATA, call);
    if (set == CURLE_OK)
        set = curl_easy_setopt(easy, CURLOPT_WRITEDATA, &w);
    if (set == CURLE_OK)
        set = curl_easy_setopt(easy, CURLOPT_XFERINFODATA, &w);
    if (set != CURLE_OK) {
        u->stale = true; /* it may point at errbuf and list: never used again */
        curl_slist_free_all(list);
        snprintf(call->error, sizeof(call->error), "could not set up the call: %s",
                 curl_easy_strerror(set));
        return TG_UPSTREAM_FAILED;
    }

    CURLcode code = curl_easy_perform(easy);
    if (curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &call->status) != CURLE_OK)
        call->status = 0;
    call->elapsed_ms = tg_now_ms() - started;
    /* the list and errbuf die with this call; the body with the request */
    if (curl_easy_setopt(easy, CURLOPT_HTTPHEADER, NULL) != CURLE_OK ||
        curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, NULL) != CURLE_OK ||
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, NULL) != CURLE_OK ||
        curl_easy_setopt(easy, CURLOPT_PREREQDATA, NULL) != CURLE_OK)
        u->stale = true;
    if (code == CURLE_OUT_OF_MEMORY || code == CURLE_GOT_NOTHING)
        u->stale = true;
    curl_slist_free_all(list);
    if (w.resend_refused) {
        snprintf(call->error, sizeof(call->error),
                 "the provider closed a reused connection before answering; "
                 "not sent again (it may have been received)");
        return TG_UPSTREAM_FAILED;
    }
    if (code != CURLE_OK)
        snprintf(call->error, sizeof(call->error), "%s",
                 errbuf[0] != '\0' ? errbuf : curl_easy_strerror(code));
    return classify(code);
}
