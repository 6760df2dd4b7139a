/*
 * sigv4.h — AWS Signature Version 4 for one HTTP request with the signature in
 * the Authorization header, as the Bedrock provider sends it. Pure: the caller
 * passes the request's parts, the credentials and the time; nothing here reads a
 * clock, an environment variable or the network.
 *
 * The rules are those of every AWS service but S3: the path is normalised
 * (empty and "." segments dropped, ".." removes the segment before it) and then
 * URI-encoded once more than it is sent, so a Bedrock model id's ':' is sent as
 * "%3A" and signed as "%253A"; the query string's names and values are decoded,
 * re-encoded strictly (RFC 3986 unreserved characters only) and sorted; header
 * names are lower-cased, values trimmed with inner runs of blanks collapsed, and
 * repeated names joined with ',' in the order given.
 *
 * Not here: presigned URLs (signature in the query), chunked payload signing,
 * SigV4a, S3's rules (no normalisation, single encoding), fetching credentials.
 *
 * Secrets: the secret access key is used and never copied into any output.
 * The canonical request holds the session token when there is one: do not log
 * it as it is.
 */
#ifndef TG_SIGV4_H
#define TG_SIGV4_H

#include "common.h"

#define TG_SIGV4_MAX_HEADERS 32       /* headers the caller may add to the signed set */
#define TG_SIGV4_MAX_OUTPUT (1 << 20) /* cap on the canonical request and its parts */
#define TG_SIGV4_AMZ_DATE_LEN 16      /* "20150830T123600Z" */

/* A header to sign (borrowed strings). */
struct tg_sigv4_header {
    const char *name;
    const char *value;
};

/* What is signed. Every pointer is borrowed for the duration of the call. */
struct tg_sigv4_request {
    const char *method; /* "POST" */
    const char *host;   /* the Host header: "bedrock-runtime.us-east-1.amazonaws.com" */
    const char *path;   /* as it is sent, already URI-encoded: "/model/m%3A0/converse" */
    const char *query;  /* as it is sent, without the '?'; NULL or "" when none */
    /*
     * Further headers to sign, such as content-type. Not host, x-amz-date,
     * x-amz-security-token, x-amz-content-sha256 nor authorization: the signer
     * adds those itself (TG_ERROR if given here).
     */
    const struct tg_sigv4_header *headers;
    size_t n_headers;
    const void *payload; /* the body as sent; NULL with payload_len 0 when none */
    size_t payload_len;
    bool sign_content_sha256; /* also send and sign x-amz-content-sha256 */
    const char *region;       /* "us-east-1" */
    const char *service;      /* "bedrock" */
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token; /* NULL or "" without temporary credentials */
    const char *amz_date;      /* the time of signing, UTC: "YYYYMMDDTHHMMSSZ" */
};

/*
 * The result: the headers to send with the request, and the intermediate
 * strings of the signature (for tests and diagnosis). Fields are owned by the
 * struct (released by tg_sigv4_signed_release) except security_token.
 */
struct tg_sigv4_signed {
    char *authorization;                      /* the Authorization header's value */
    char amz_date[TG_SIGV4_AMZ_DATE_LEN + 1]; /* the X-Amz-Date header's value */
    char content_sha256[65]; /* hex SHA-256 of the payload: X-Amz-Content-Sha256 when asked */
    const char
        *security_token;     /* X-Amz-Security-Token's value (borrowed from the request) or NULL */
    char *canonical_request; /* holds the session token: not for logs */
    char *string_to_sign;
};

/*
 * Signs req. On TG_OK, *out holds new strings (release with
 * tg_sigv4_signed_release). On TG_ERROR (a malformed input: a date not in the
 * basic format, a header name or value with a control character, a header the
 * signer sets itself, too many headers, an output over TG_SIGV4_MAX_OUTPUT;
 * or out of memory), *out holds nothing to release and err gets a message
 * naming the problem (never a credential).
 */
int tg_sigv4_sign(const struct tg_sigv4_request *req, struct tg_sigv4_signed *out, char *err,
                  size_t err_size);

/* Frees what out holds (not out itself); safe to call twice. */
void tg_sigv4_signed_release(struct tg_sigv4_signed *out);

/*
 * URI-encodes len bytes of in as SigV4 does: every byte but A-Z a-z 0-9 '-' '.'
 * '_' '~' (and '/' when keep_slash) becomes %XX with upper-case hex. Appends at
 * most out_size - 1 bytes and a NUL; returns the encoded length, or TG_ERROR
 * when out is too small. The Bedrock provider encodes model ids with it.
 */
int tg_sigv4_uri_encode(const char *in, size_t len, bool keep_slash, char *out, size_t out_size);

#endif
