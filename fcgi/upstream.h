/*
 * upstream.h — HTTP calls to providers, the only module that includes curl.h.
 *
 * Each worker thread owns one struct tg_upstream (one libcurl easy handle), so
 * connections to a provider are kept alive and reused across that thread's
 * requests. The options that never change are set once, when the handle is made;
 * a call sets only its own (URL, body, headers, deadlines, callbacks). Response headers and body
 * are handed to callbacks as they arrive, which is what lets a stream pass through without
 * buffering.
 */
#ifndef TG_UPSTREAM_H
#define TG_UPSTREAM_H

#include "common.h"

struct tg_upstream;

enum tg_upstream_result {
    TG_UPSTREAM_OK,          /* a complete HTTP response (any status) */
    TG_UPSTREAM_UNREACHABLE, /* could not connect / resolve / handshake */
    TG_UPSTREAM_TIMEOUT,     /* connect or total deadline passed */
    TG_UPSTREAM_FAILED,      /* the connection broke or the reply was not HTTP */
    TG_UPSTREAM_ABORTED,     /* a callback asked to stop */
};

struct tg_upstream_call {
    /* in */
    const char *method; /* NULL or "POST": body posted; "GET" or "DELETE": no body */
    const char *url;
    const char *const *headers; /* "Name: value" lines; borrowed */
    size_t n_headers;
    const char *body;
    size_t body_len;
    long connect_timeout_ms;
    long timeout_ms;
    /* name is lower-cased; both NUL-terminated and valid during the call only */
    int (*on_header)(void *ctx, const char *name, const char *value);
    /* a piece of the body; status is the response's HTTP status; non-TG_OK aborts */
    int (*on_body)(void *ctx, long status, const char *data, size_t len);
    void *ctx;
    /*
     * Optional: when *abort_at_ms is non-zero and tg_now_ms() passes it, the
     * transfer is aborted (TG_UPSTREAM_ABORTED) even if no byte arrives, checked
     * about once a second. The callbacks may set it during the call.
     */
    const int64_t *abort_at_ms;
    /* Optional: called with ctx about once a second while the transfer waits. */
    void (*on_wait)(void *ctx);
    /* out */
    long status;
    int64_t elapsed_ms;
    char error[256]; /* why it failed, for the log (no secrets: URLs carry none) */
};

/* Process-wide set-up and tear-down (curl_global_*). */
int tg_upstream_global_init(void);
void tg_upstream_global_cleanup(void);

/* A thread's reusable handle; NULL when out of memory. */
struct tg_upstream *tg_upstream_new(void);
void tg_upstream_free(struct tg_upstream *u);

/* Performs the call, blocking until done or a deadline. Returns the result kind. */
enum tg_upstream_result tg_upstream_perform(struct tg_upstream *u, struct tg_upstream_call *call);

#endif
