/*
 * test_sigv4.c — providers/sigv4.c against published vectors.
 *
 * Data-driven: each directory under tests/unit/data/sigv4 is one case, in the
 * layout of AWS's SigV4 test suite (copied from awslabs/aws-c-auth,
 * tests/aws-signing-test-suite/v4, Apache-2.0: the header-signing files of every
 * case that applies to a service other than S3, i.e. "normalize": true, less
 * post-sts-header-after, which signs without the session token it then sends):
 *   request.txt                   the request as sent: request line, headers
 *                                 (a line starting with a blank continues the
 *                                 previous value), a blank line, the body
 *   context.json                  credentials, region, service, timestamp,
 *                                 sign_body (add and sign x-amz-content-sha256)
 *   header-canonical-request.txt  the canonical request, exactly
 *   header-string-to-sign.txt     the string to sign, exactly
 *   header-signed-request.txt     the signed request: its Authorization line
 * The bedrock-* cases are Bedrock-shaped requests (a model id with ':' sent as
 * %3A, an inference-profile ARN with '/' sent as %2F, a session token) in the
 * same layout, their expected files made by botocore 1.43's SigV4Auth with the
 * clock fixed: an independent implementation of the same rules.
 *
 * The rest: the URI encoder, malformed inputs refused with a message, the secret
 * in no output, x-amz-content-sha256.
 */
/* cmocka.h needs these before it */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "providers/sigv4.h"
#include "unit.h"

#define MAX_CASE_HEADERS 16

struct parsed_request {
    char *text; /* request.txt, cut in place */
    char method[16];
    char *path;
    char *query;
    char *host;
    struct tg_sigv4_header headers[MAX_CASE_HEADERS];
    char *values[MAX_CASE_HEADERS]; /* malloc'd, continuation lines joined */
    size_t n_headers;
    const char *body;
    size_t body_len;
};

static void parse_request(const char *dir, struct parsed_request *r)
{
    memset(r, 0, sizeof(*r));
    size_t len;
    r->text = unit_read_file(dir, "request.txt", &len);
    assert_non_null(r->text);
    char *line_end = strchr(r->text, '\n');
    assert_non_null(line_end);
    *line_end = '\0';
    /* the target may hold spaces ("/example space/"): it ends at the last " HTTP/" */
    char *sp = strchr(r->text, ' ');
    char *proto = strstr(r->text, " HTTP/");
    assert_non_null(sp);
    assert_non_null(proto);
    while (strstr(proto + 1, " HTTP/") != NULL)
        proto = strstr(proto + 1, " HTTP/");
    snprintf(r->method, sizeof(r->method), "%.*s", (int)(sp - r->text), r->text);
    *proto = '\0';
    r->path = sp + 1;
    char *q = strchr(r->path, '?');
    if (q != NULL) {
        *q = '\0';
        r->query = q + 1;
    }
    char *p = line_end + 1;
    r->body = r->text + len;
    while (p < r->text + len) {
        char *end = strchr(p, '\n');
        if (end == NULL)
            end = r->text + len;
        *end = '\0';
        if (*p == '\0') {
            r->body = end + 1 <= r->text + len ? end + 1 : r->text + len;
            break;
        }
        if ((*p == ' ' || *p == '\t') && r->n_headers > 0) {
            char *prev = r->values[r->n_headers - 1];
            size_t need = strlen(prev) + strlen(p) + 2;
            char *joined = malloc(need);
            assert_non_null(joined);
            snprintf(joined, need, "%s %s", prev, p);
            free(prev);
            r->values[r->n_headers - 1] = joined;
            r->headers[r->n_headers - 1].value = joined;
        } else {
            char *colon = strchr(p, ':');
            assert_non_null(colon);
            *colon = '\0';
            if (strcasecmp(p, "host") == 0) {
                r->host = colon + 1;
            } else {
                assert_true(r->n_headers < MAX_CASE_HEADERS);
                r->values[r->n_headers] = strdup(colon + 1);
                r->headers[r->n_headers].name = p;
                r->headers[r->n_headers].value = r->values[r->n_headers];
                r->n_headers++;
            }
        }
        p = end + 1;
    }
    r->body_len = (size_t)(r->text + len - r->body);
}

static void free_request(struct parsed_request *r)
{
    for (size_t i = 0; i < r->n_headers; i++)
        free(r->values[i]);
    free(r->text);
}

/* "2015-08-30T12:36:00Z" -> "20150830T123600Z" */
static void basic_date(const char *iso, char out[17])
{
    size_t o = 0;
    for (const char *p = iso; *p != '\0' && o < 16; p++)
        if (*p != '-' && *p != ':')
            out[o++] = *p;
    out[o] = '\0';
}

/* The value of the Authorization line of header-signed-request.txt, malloc'd. */
static char *expected_authorization(const char *dir)
{
    char *text = unit_read_file(dir, "header-signed-request.txt", NULL);
    assert_non_null(text);
    char *line = strstr(text, "\nAuthorization:");
    assert_non_null(line);
    line += strlen("\nAuthorization:");
    char *end = strchr(line, '\n');
    char *value = strndup(line, end != NULL ? (size_t)(end - line) : strlen(line));
    free(text);
    return value;
}

static void test_case(void **state)
{
    const char *dir = *state;
    struct parsed_request pr;
    parse_request(dir, &pr);
    char *context_text = unit_read_file(dir, "context.json", NULL);
    assert_non_null(context_text);
    json_error_t jerr;
    json_t *ctx = json_loads(context_text, 0, &jerr);
    assert_non_null(ctx);
    json_t *creds = json_object_get(ctx, "credentials");
    char amz_date[17];
    basic_date(json_string_value(json_object_get(ctx, "timestamp")), amz_date);

    struct tg_sigv4_request req = {
        .method = pr.method,
        .host = pr.host,
        .path = pr.path,
        .query = pr.query,
        .headers = pr.headers,
        .n_headers = pr.n_headers,
        .payload = pr.body,
        .payload_len = pr.body_len,
        .sign_content_sha256 = json_is_true(json_object_get(ctx, "sign_body")),
        .region = json_string_value(json_object_get(ctx, "region")),
        .service = json_string_value(json_object_get(ctx, "service")),
        .access_key_id = json_string_value(json_object_get(creds, "access_key_id")),
        .secret_access_key = json_string_value(json_object_get(creds, "secret_access_key")),
        .session_token = json_string_value(json_object_get(creds, "token")),
        .amz_date = amz_date,
    };
    struct tg_sigv4_signed out;
    char err[256] = "";
    int rc = tg_sigv4_sign(&req, &out, err, sizeof(err));
    if (rc != TG_OK)
        fail_msg("%s: %s", dir, err);

    char *want_canon = unit_read_file(dir, "header-canonical-request.txt", NULL);
    char *want_sts = unit_read_file(dir, "header-string-to-sign.txt", NULL);
    char *want_auth = expected_authorization(dir);
    assert_string_equal(out.canonical_request, want_canon);
    assert_string_equal(out.string_to_sign, want_sts);
    assert_string_equal(out.authorization, want_auth);
    assert_string_equal(out.amz_date, amz_date);
    if (req.session_token != NULL)
        assert_string_equal(out.security_token, req.session_token);
    else
        assert_null(out.security_token);
    assert_null(strstr(out.authorization, req.secret_access_key));
    assert_null(strstr(out.canonical_request, req.secret_access_key));
    assert_null(strstr(out.string_to_sign, req.secret_access_key));

    tg_sigv4_signed_release(&out);
    tg_sigv4_signed_release(&out); /* twice is harmless */
    free(want_canon);
    free(want_sts);
    free(want_auth);
    json_decref(ctx);
    free(context_text);
    free_request(&pr);
}

/* A valid Bedrock-shaped request for the fixed tests to spoil. */
static struct tg_sigv4_request bedrock_request(void)
{
    static const struct tg_sigv4_header content_type = {"Content-Type", "application/json"};
    return (struct tg_sigv4_request){
        .method = "POST",
        .host = "bedrock-runtime.us-east-1.amazonaws.com",
        .path = "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse",
        .headers = &content_type,
        .n_headers = 1,
        .payload = "{}",
        .payload_len = 2,
        .region = "us-east-1",
        .service = "bedrock",
        .access_key_id = "AKIDEXAMPLE",
        .secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        .amz_date = "20240501T093015Z",
    };
}

static void expect_refused(const struct tg_sigv4_request *req, const char *message_part)
{
    struct tg_sigv4_signed out;
    char err[256] = "";
    assert_int_equal(tg_sigv4_sign(req, &out, err, sizeof(err)), TG_ERROR);
    if (strstr(err, message_part) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", err, message_part);
    assert_null(strstr(err, "wJalrXUtnFEMI"));
    assert_null(out.authorization);
    assert_null(out.canonical_request);
    tg_sigv4_signed_release(&out);
}

static void test_refuses_malformed(void **state)
{
    (void)state;
    struct tg_sigv4_request req = bedrock_request();
    req.amz_date = "2024-05-01T09:30:15Z";
    expect_refused(&req, "is not in the form YYYYMMDDTHHMMSSZ");

    req = bedrock_request();
    req.method = "post";
    expect_refused(&req, "is not upper-case");

    req = bedrock_request();
    req.path = "model/x/converse";
    expect_refused(&req, "path does not begin with '/'");

    req = bedrock_request();
    req.region = "us-east-1/evil";
    expect_refused(&req, "invalid region");

    req = bedrock_request();
    req.secret_access_key = "";
    expect_refused(&req, "secret access key");

    struct tg_sigv4_header injected = {"X-Note", "a\r\nX-Amz-Date: 1"};
    req = bedrock_request();
    req.headers = &injected;
    expect_refused(&req, "invalid character 0x0d in the value of header \"x-note\"");

    struct tg_sigv4_header bad_name = {"X Note", "a"};
    req.headers = &bad_name;
    expect_refused(&req, "invalid character 0x20 in header name");

    struct tg_sigv4_header own = {"X-Amz-Date", "20240501T093015Z"};
    req.headers = &own;
    expect_refused(&req, "header \"x-amz-date\" is set by the signer");

    struct tg_sigv4_header many[TG_SIGV4_MAX_HEADERS + 1];
    for (size_t i = 0; i < TG_ARRAY_LEN(many); i++)
        many[i] = (struct tg_sigv4_header){"X-Many", "v"};
    req.headers = many;
    req.n_headers = TG_ARRAY_LEN(many);
    expect_refused(&req, "exceed the limit of 32");

    /* a NULL err buffer is allowed */
    req = bedrock_request();
    req.amz_date = NULL;
    struct tg_sigv4_signed out;
    assert_int_equal(tg_sigv4_sign(&req, &out, NULL, 0), TG_ERROR);
}

static void test_content_sha256_and_token(void **state)
{
    (void)state;
    struct tg_sigv4_request req = bedrock_request();
    req.sign_content_sha256 = true;
    req.session_token = "TOKEN";
    struct tg_sigv4_signed out;
    char err[256];
    assert_int_equal(tg_sigv4_sign(&req, &out, err, sizeof(err)), TG_OK);
    unsigned char digest[TG_SHA256_LEN];
    char hex[65];
    tg_crypto_sha256("{}", 2, digest);
    tg_crypto_hex(digest, sizeof(digest), hex);
    assert_string_equal(out.content_sha256, hex);
    assert_non_null(strstr(out.canonical_request, "x-amz-content-sha256:"));
    assert_non_null(strstr(out.authorization,
                           "SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;"
                           "x-amz-security-token, Signature="));
    assert_string_equal(out.security_token, "TOKEN");
    tg_sigv4_signed_release(&out);

    /* an empty token is no token */
    req.session_token = "";
    assert_int_equal(tg_sigv4_sign(&req, &out, err, sizeof(err)), TG_OK);
    assert_null(out.security_token);
    assert_null(strstr(out.canonical_request, "x-amz-security-token"));
    tg_sigv4_signed_release(&out);
}

static void test_uri_encode(void **state)
{
    (void)state;
    char out[128];
    const char *id = "anthropic.claude-3-haiku-20240307-v1:0";
    assert_int_equal(tg_sigv4_uri_encode(id, strlen(id), false, out, sizeof(out)),
                     (int)strlen("anthropic.claude-3-haiku-20240307-v1%3A0"));
    assert_string_equal(out, "anthropic.claude-3-haiku-20240307-v1%3A0");
    const char *arn = "arn:aws:bedrock:eu-west-1:1:inference-profile/eu.x";
    tg_sigv4_uri_encode(arn, strlen(arn), false, out, sizeof(out));
    assert_string_equal(out, "arn%3Aaws%3Abedrock%3Aeu-west-1%3A1%3Ainference-profile%2Feu.x");
    tg_sigv4_uri_encode("a/b c~", 6, true, out, sizeof(out));
    assert_string_equal(out, "a/b%20c~");
    tg_sigv4_uri_encode("\xe1\x88\xb4", 3, false, out, sizeof(out));
    assert_string_equal(out, "%E1%88%B4");
    /* too small: refused, not cut */
    assert_int_equal(tg_sigv4_uri_encode(":", 1, false, out, 3), TG_ERROR);
    assert_int_equal(tg_sigv4_uri_encode(":", 1, false, out, 4), 3);
    assert_int_equal(tg_sigv4_uri_encode("", 0, false, out, 1), 0);
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_refuses_malformed),
        cmocka_unit_test(test_content_sha256_and_token),
        cmocka_unit_test(test_uri_encode),
    };
    return unit_run_suite("sigv4", "sigv4", test_case, NULL, NULL, fixed, TG_ARRAY_LEN(fixed), NULL,
                          NULL);
}
