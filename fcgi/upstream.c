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
};

static size_t header_cb(char *buf, size_t size, size_t n, void *userdata);
static size_t write_cb(char *data, size_t size, size_t n, void *userdata);
static int progress_cb(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow);

int tg_upstream_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? TG_OK : TG_ERROR;
}

void tg_upstream_global_cleanup(void)
{
    curl_global_cleanup();
}

struct tg_upstream *tg_upstream_new(void)
{
    struct tg_upstream *u = calloc(1, sizeof(*u));
    if (u == NULL)
        return NULL;
    u->easy = curl_easy_init();
    if (u->easy == NULL) {
        free(u);
        return NULL;
    }
    /* the options every call shares, set once: no curl_easy_reset per call */
    CURL *easy = u->easy;
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, progress_cb);
    curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, NULL); /* bodies pass through as sent */
    return u;
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
};

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
    CURL *easy = u->easy;
    struct curl_slist *list = NULL;
    for (size_t i = 0; i < call->n_headers; i++) {
        struct curl_slist *grown = curl_slist_append(list, call->headers[i]);
        if (grown == NULL) {
            curl_slist_free_all(list);
            snprintf(call->error, sizeof(call->error), "out of memory");
            return TG_UPSTREAM_FAILED;
        }
        list = grown;
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    struct write_ctx w = {call, easy};
    int64_t started = tg_now_ms();

    curl_easy_setopt(easy, CURLOPT_URL, call->url);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, call->body);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->body_len);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, call->connect_timeout_ms);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, call->timeout_ms);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, call);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &w);
    curl_easy_setopt(easy, CURLOPT_XFERINFODATA, &w);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errbuf);

    CURLcode code = curl_easy_perform(easy);
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &call->status);
    call->elapsed_ms = tg_now_ms() - started;
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, NULL); /* errbuf is this frame's */
    curl_slist_free_all(list);
    if (code != CURLE_OK)
        snprintf(call->error, sizeof(call->error), "%s",
                 errbuf[0] != '\0' ? errbuf : curl_easy_strerror(code));
    return classify(code);
}
