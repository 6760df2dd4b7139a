/*
 * fcgi_fixed.c — fcgi-fixed, the bench's FastCGI ceiling (scripts/bench).
 *
 * What lighttpd → FastCGI → a worker costs when the worker does nothing: every
 * request's params are read and its body is read to the end (capped, as
 * tollgate-fcgi does), then it is answered Status 200, Content-Type
 * application/json, Content-Length and one fixed reply: the same Messages reply
 * the bench's upstream returns. No database, no upstream.
 *
 * scripts/bench starts P of these with spawn-fcgi on the socket setup and
 * lighttpd config of the Tollgate run, each with T threads (-t T), so Tollgate's
 * requests/s can be read as a fraction of this ceiling.
 *
 *   fcgi-fixed [-t THREADS] [-f REPLY_FILE]
 *
 * The listening socket is fd 0 (spawn-fcgi). SIGTERM ends the process.
 */
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
                     status, status == 200 ? "OK" : "Payload Too Large", len);
    if (n > 0 && (size_t)n < sizeof(head) && put(req->out, head, (size_t)n) == 0)
        put(req->out, body, len);
}

/* Reads the body into buf (cap bytes); 0 when it fits, -1 when it is larger. */
static int read_body(FCGX_Request *req, char *buf, size_t cap)
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
    if (body == NULL || FCGX_InitRequest(&req, LISTEN_FD, 0) != 0) {
        fprintf(stderr, "fcgi-fixed: could not set up a thread: out of memory\n");
        free(body);
        return NULL;
    }
    while (FCGX_Accept_r(&req) >= 0) {
        /* the params a worker looks at before it answers */
        (void)FCGX_GetParam("REQUEST_METHOD", req.envp);
        (void)FCGX_GetParam("REQUEST_URI", req.envp);
        (void)FCGX_GetParam("CONTENT_TYPE", req.envp);
        if (read_body(&req, body, BODY_CAP) == 0)
            respond(&req, 200, reply, reply_len);
        else
            respond(&req, 413, too_large, sizeof(too_large) - 1);
        FCGX_Finish_r(&req);
    }
    fprintf(stderr, "fcgi-fixed: could not accept a FastCGI connection: %s\n", strerror(errno));
    FCGX_Free(&req, 1);
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
    fprintf(stderr, "usage: %s [-t THREADS (1-%d, default 4)] [-f REPLY_FILE]\n", argv0,
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
        } else if (strcmp(argv[i], "-f") == 0 && i + 1 < argc) {
            if (load_reply(argv[++i]) != 0)
                return 1;
        } else {
            return usage(argv[0]);
        }
    }
    if (FCGX_Init() != 0) {
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
