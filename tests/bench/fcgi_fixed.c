/*
 * fcgi_fixed.c — fcgi-fixed, the bench's FastCGI ceiling (scripts/bench).
 *
 * What lighttpd → FastCGI → a worker costs when the worker does nothing: every
 * request's params are read and its body is read to the end (capped, as
 * tollgate-fcgi does), then it is answered Status 200, Content-Type
 * application/json, Content-Length and one fixed reply: the same Messages reply
 * the bench's upstream returns. No database, no upstream.
 *
 * With -u URL it is the forwarding ceiling instead: each request's body is
 * POSTed with libcurl (one keep-alive handle per thread, as tollgate-fcgi keeps
 * one) to URL, and the upstream's status and reply (capped) are relayed. That
 * is what any gateway built as a FastCGI worker that forwards through libcurl
 * costs before it does any work of its own: no database, no parsing.
 *
 * scripts/bench starts P of these with spawn-fcgi on the socket setup and
 * lighttpd config of the Tollgate run, each with T threads (-t T), so Tollgate's
 * requests/s can be read as a fraction of this ceiling.
 *
 *   fcgi-fixed [-t THREADS] [-f REPLY_FILE | -u UPSTREAM_URL]
 *
 * The listening socket is fd 0 (spawn-fcgi). SIGTERM ends the process.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcgiapp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LISTEN_FD 0
#define MAX_THREADS 256
#define BODY_CAP (1 << 20)  /* tollgate-fcgi's server.max_body_bytes in the bench */
#define REPLY_CAP (1 << 16) /* a reply file larger than this is refused */

/* What the bench's static upstream answers (tests/bench/bench.py REPLY). */
static const char default_reply[] =
    "{\"id\":\"msg_bench\",\"type\":\"message\",\"role\":\"assistant\","
    "\"model\":\"claude-haiku-4-5\",\"content\":[{\"type\":\"text\","
    "\"text\":\"Hello from the bench upstream.\"}],\"stop_reason\":\"end_turn\","
    "\"stop_sequence\":null,\"usage\":{\"input_tokens\":12,\"cache_creation_input_tokens\":0,"
    "\"cache_read_input_tokens\":0,\"output_tokens\":8}}";

static char reply_buf[REPLY_CAP + 1];
static const char *upstream_url; /* -u: forward instead of the fixed reply */
static const char *reply = default_reply;
static size_t reply_len = sizeof(default_reply) - 1;

static const char too_large[] = "{\"type\":\"error\",\"error\":{\"type\":\"request_too_large\","
                                "\"message\":\"request body is too large\"}}";

/* Writes len bytes; 0 on success, -1 when the web server went away. */
static int put(FCGX_Stream *out, const char *data, size_t len)
{
    return FCGX_PutStr(data, (int)len, out) == (int)len ? 0 : -1;
}

static void respond(FCGX_Request *req, int status, const char *body, size_t len)
{
    char head[160];
    int n = snprintf(head, sizeof(head),
                     "Status: %d %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     status, status == 200 ? "OK" : "Other", len);
    if (n > 0 && (size_t)n < sizeof(head) && put(req->out, head, (size_t)n) == 0)
        put(req->out, body, len);
}

/* An upstream reply being received: at most REPLY_CAP bytes are kept. */
struct fetched {
    char data[REPLY_CAP];
    size_t len;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct fetched *f = userdata;
    size_t n = size * nmemb;
    if (n > REPLY_CAP - f->len)
        return 0; /* over the cap: curl fails the transfer */
    memcpy(f->data + f->len, ptr, n);
    f->len += n;
    return n;
}

/* Sets the options tollgate-fcgi sets once per handle; NULL when curl cannot. */
static CURL *forwarder_new(struct curl_slist **headers)
{
    CURL *curl = curl_easy_init();
    *headers = curl_slist_append(NULL, "Content-Type: application/json");
    if (curl == NULL || *headers == NULL)
        return curl;
    curl_easy_setopt(curl, CURLOPT_URL, upstream_url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, *headers);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
    return curl;
}

/* POSTs body to the upstream and relays its answer; 502 when it fails. */
static void forward(FCGX_Request *req, CURL *curl, struct fetched *got, const char *body,
                    size_t len)
{
    static const char bad_gateway[] = "{\"type\":\"error\",\"error\":{\"type\":\"api_error\","
                                      "\"message\":\"upstream failed\"}}";
    long status = 0;
    got->len = 0;
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)len);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, got);
    if (curl_easy_perform(curl) == CURLE_OK &&
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK)
        respond(req, (int)status, got->data, got->len);
    else
        respond(req, 502, bad_gateway, sizeof(bad_gateway) - 1);
}

/* Reads the body into buf (cap bytes), its length into *len; 0 when it fits,
 * -1 when it is larger. */
static int read_body(FCGX_Request *req, char *buf, size_t cap, size_t *len_out)
{
    const char *cl = FCGX_GetParam("CONTENT_LENGTH", req->envp);
    if (cl != NULL && cl[0] != '\0') {
        char *end;
        unsigned long long declared = strtoull(cl, &end, 10);
        if (*end != '\0' || declared > cap)
            return -1;
    }
    size_t len = 0;
    for (;;) {
        *len_out = len;
        size_t want = cap - len;
        if (want == 0) {
            char probe; /* a body of exactly cap bytes is fine; one more is not */
            return FCGX_GetStr(&probe, 1, req->in) > 0 ? -1 : 0;
        }
        int n = FCGX_GetStr(buf + len, want > (1 << 30) ? (1 << 30) : (int)want, req->in);
        if (n <= 0)
            return 0;
        len += (size_t)n;
    }
}

static void *serve(void *arg)
{
    (void)arg;
    FCGX_Request req;
    char *body = malloc(BODY_CAP);
    struct fetched *got = malloc(sizeof(*got));
    struct curl_slist *headers = NULL;
    CURL *curl = upstream_url != NULL ? forwarder_new(&headers) : NULL;
    if (body == NULL || got == NULL ||
        (upstream_url != NULL && (curl == NULL || headers == NULL)) ||
        FCGX_InitRequest(&req, LISTEN_FD, 0) != 0) {
        fprintf(stderr, "fcgi-fixed: could not set up a thread: out of memory\n");
        goto out;
    }
    while (FCGX_Accept_r(&req) >= 0) {
        /* the params a worker looks at before it answers */
        (void)FCGX_GetParam("REQUEST_METHOD", req.envp);
        (void)FCGX_GetParam("REQUEST_URI", req.envp);
        (void)FCGX_GetParam("CONTENT_TYPE", req.envp);
        size_t len;
        if (read_body(&req, body, BODY_CAP, &len) != 0)
            respond(&req, 413, too_large, sizeof(too_large) - 1);
        else if (curl != NULL)
            forward(&req, curl, got, body, len);
        else
            respond(&req, 200, reply, reply_len);
        FCGX_Finish_r(&req);
    }
    fprintf(stderr, "fcgi-fixed: could not accept a FastCGI connection: %s\n", strerror(errno));
    FCGX_Free(&req, 1);
out:
    curl_easy_cleanup(curl);
    curl_slist_free_all(headers);
    free(got);
    free(body);
    return NULL;
}

/* Loads the reply from path (at most REPLY_CAP bytes); 0 on success. */
static int load_reply(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "fcgi-fixed: could not open reply file \"%s\": %s\n", path,
                strerror(errno));
        return -1;
    }
    size_t n = fread(reply_buf, 1, sizeof(reply_buf), f);
    int failed = ferror(f);
    fclose(f);
    if (failed || n == 0 || n > REPLY_CAP) {
        fprintf(stderr, "fcgi-fixed: reply file \"%s\" is unreadable, empty or over %d bytes\n",
                path, REPLY_CAP);
        return -1;
    }
    reply = reply_buf;
    reply_len = n;
    return 0;
}

static int usage(const char *argv0)
{
    fprintf(stderr, "usage: %s [-t THREADS (1-%d, default 4)] [-f REPLY_FILE | -u URL]\n", argv0,
            MAX_THREADS);
    return 2;
}

int main(int argc, char **argv)
{
    long threads = 4;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-t") == 0 && i + 1 < argc) {
            char *end;
            threads = strtol(argv[++i], &end, 10);
            if (*end != '\0' || threads < 1 || threads > MAX_THREADS)
                return usage(argv[0]);
        } else if (strcmp(argv[i], "-u") == 0 && i + 1 < argc) {
            upstream_url = argv[++i];
        } else if (strcmp(argv[i], "-f") == 0 && i + 1 < argc) {
            if (load_reply(argv[++i]) != 0)
                return 1;
        } else {
            return usage(argv[0]);
        }
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || FCGX_Init() != 0) {
        fprintf(stderr, "fcgi-fixed: could not initialise libfcgi\n");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    pthread_t ids[MAX_THREADS];
    long started = 0;
    for (long i = 0; i < threads; i++) {
        if (pthread_create(&ids[i], NULL, serve, NULL) != 0)
            break;
        started++;
    }
    for (long i = 0; i < started; i++)
        pthread_join(ids[i], NULL);
    return started == threads ? 0 : 1;
}
