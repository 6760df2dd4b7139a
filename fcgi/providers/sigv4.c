/*
 * sigv4.c — AWS Signature Version 4 (header form) for services other than S3.
 * The steps follow AWS's description: canonical request, string to sign,
 * derived signing key, signature; each output is built in a capped buffer.
 */
#include "sigv4.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"

#define ALGORITHM "AWS4-HMAC-SHA256"
#define MAX_NAME 128   /* a header name, a region, a service */
#define MAX_SECRET 256 /* a secret access key (AWS's are 40 characters) */

/* A growable string, capped at TG_SIGV4_MAX_OUTPUT; a failed append sticks. */
struct sbuf {
    char *buf;
    size_t len, cap;
    bool failed;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (n > TG_SIGV4_MAX_OUTPUT - b->len) {
        b->failed = true;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap > 0 ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *grown = realloc(b->buf, cap);
        if (grown == NULL) {
            b->failed = true;
            return;
        }
        b->buf = grown;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = '\0';
}

static void sb_adds(struct sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

static void sb_addc(struct sbuf *b, char c)
{
    sb_add(b, &c, 1);
}

/* Makes b a string even when nothing was appended (b->buf non-NULL unless it failed). */
static void sb_terminate(struct sbuf *b)
{
    sb_add(b, "", 0);
}

static bool is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

static void sb_encode(struct sbuf *b, const char *s, size_t n, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_unreserved(c) || (keep_slash && c == '/')) {
            sb_addc(b, (char)c);
        } else {
            char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
            sb_add(b, esc, 3);
        }
    }
}

int tg_sigv4_uri_encode(const char *in, size_t len, bool keep_slash, char *out, size_t out_size)
{
    struct sbuf b = {0};
    sb_encode(&b, in, len, keep_slash);
    if (b.failed || b.len + 1 > out_size || out_size == 0) {
        free(b.buf);
        return TG_ERROR;
    }
    memcpy(out, b.len > 0 ? b.buf : "", b.len);
    out[b.len] = '\0';
    free(b.buf);
    return (int)b.len;
}

static int fail(char *err, size_t err_size, const char *fmt, ...) TG_PRINTF(3, 4);

static int fail(char *err, size_t err_size, const char *fmt, ...)
{
    if (err != NULL && err_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_size, fmt, ap);
        va_end(ap);
    }
    return TG_ERROR;
}

/*
 * The canonical URI: the path normalised as botocore and the AWS test suite do
 * (empty and "." segments dropped, ".." drops the one before, a trailing '/'
 * kept), each segment encoded once more than it was sent.
 */
static void canonical_uri(struct sbuf *b, const char *path)
{
    size_t n = strlen(path);
    size_t *starts = malloc((n / 2 + 1) * sizeof(*starts));
    size_t *lens = malloc((n / 2 + 1) * sizeof(*lens));
    size_t kept = 0;
    if (starts == NULL || lens == NULL) {
        b->failed = true;
        free(starts);
        free(lens);
        return;
    }
    for (size_t i = 0; i < n;) {
        size_t end = i;
        while (end < n && path[end] != '/')
            end++;
        size_t len = end - i;
        if (len == 2 && path[i] == '.' && path[i + 1] == '.') {
            if (kept > 0)
                kept--;
        } else if (len > 0 && !(len == 1 && path[i] == '.')) {
            starts[kept] = i;
            lens[kept] = len;
            kept++;
        }
        i = end + 1;
    }
    sb_addc(b, '/');
    for (size_t k = 0; k < kept; k++) {
        if (k > 0)
            sb_addc(b, '/');
        sb_encode(b, path + starts[k], lens[k], false);
    }
    if (kept > 0 && n > 0 && path[n - 1] == '/')
        sb_addc(b, '/');
    free(starts);
    free(lens);
}

/* Percent-decodes s[0..n) and encodes it strictly into b ('%' not before two hex digits is kept).
 */
static void sb_reencode(struct sbuf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%' && i + 2 < n && tg_crypto_hex_value(s[i + 1]) >= 0 &&
            tg_crypto_hex_value(s[i + 2]) >= 0) {
            c = (char)(tg_crypto_hex_value(s[i + 1]) * 16 + tg_crypto_hex_value(s[i + 2]));
            i += 2;
        }
        sb_encode(b, &c, 1, false);
    }
}

struct query_pair {
    char *key; /* encoded, NUL-terminated */
    char *value;
};

static int cmp_pairs(const void *a, const void *b)
{
    const struct query_pair *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c != 0 ? c : strcmp(x->value, y->value);
}

/* The canonical query string: pairs decoded, encoded strictly, sorted by name then value. */
static void canonical_query(struct sbuf *b, const char *query)
{
    if (query == NULL || query[0] == '\0')
        return;
    size_t n = strlen(query), max_pairs = n / 2 + 1, count = 0;
    struct query_pair *pairs = calloc(max_pairs, sizeof(*pairs));
    if (pairs == NULL) {
        b->failed = true;
        return;
    }
    for (size_t i = 0; i < n && !b->failed;) {
        size_t end = i;
        while (end < n && query[end] != '&')
            end++;
        if (end > i) {
            const char *eq = memchr(query + i, '=', end - i);
            size_t key_end = eq != NULL ? (size_t)(eq - query) : end;
            struct sbuf k = {0}, v = {0};
            sb_reencode(&k, query + i, key_end - i);
            sb_terminate(&k);
            if (eq != NULL)
                sb_reencode(&v, eq + 1, end - key_end - 1);
            sb_terminate(&v);
            if (k.failed || v.failed) {
                b->failed = true;
                free(k.buf);
                free(v.buf);
                break;
            }
            pairs[count].key = k.buf;
            pairs[count].value = v.buf;
            count++;
        }
        i = end + 1;
    }
    if (!b->failed) {
        qsort(pairs, count, sizeof(*pairs), cmp_pairs);
        for (size_t k = 0; k < count; k++) {
            if (k > 0)
                sb_addc(b, '&');
            sb_adds(b, pairs[k].key);
            sb_addc(b, '=');
            sb_adds(b, pairs[k].value);
        }
    }
    for (size_t k = 0; k < count; k++) {
        free(pairs[k].key);
        free(pairs[k].value);
    }
    free(pairs);
}

struct header_entry {
    char name[MAX_NAME + 1]; /* lower-cased */
    const char *value;       /* borrowed, not yet trimmed */
    size_t order;            /* position given: repeated names keep it */
};

static int cmp_headers(const void *a, const void *b)
{
    const struct header_entry *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c != 0)
        return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

static bool is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Appends value trimmed, with each inner run of blanks as one space. */
static void sb_trimmed(struct sbuf *b, const char *value)
{
    const char *p = value;
    while (*p == ' ' || *p == '\t')
        p++;
    bool pending_space = false;
    for (; *p != '\0'; p++) {
        if (*p == ' ' || *p == '\t') {
            pending_space = true;
            continue;
        }
        if (pending_space)
            sb_addc(b, ' ');
        pending_space = false;
        sb_addc(b, *p);
    }
}

static const char *const signer_headers[] = {"host", "x-amz-date", "x-amz-security-token",
                                             "x-amz-content-sha256", "authorization"};

/* Adds one header to entries after checking it; TG_ERROR with err set. */
static int add_header(struct header_entry *entries, size_t *count, const char *name,
                      const char *value, bool from_caller, char *err, size_t err_size)
{
    size_t len = name != NULL ? strlen(name) : 0;
    if (len == 0 || len > MAX_NAME)
        return fail(err, err_size, "header name of %zu bytes is not between 1 and %d", len,
                    MAX_NAME);
    struct header_entry *e = &entries[*count];
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!is_tchar(c))
            return fail(err, err_size, "invalid character 0x%02x in header name", c);
        e->name[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    e->name[len] = '\0';
    if (value == NULL)
        return fail(err, err_size, "header \"%s\" has no value", e->name);
    for (const char *p = value; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return fail(err, err_size, "invalid character 0x%02x in the value of header \"%s\"", c,
                        e->name);
    }
    if (from_caller) {
        for (size_t i = 0; i < TG_ARRAY_LEN(signer_headers); i++)
            if (strcmp(e->name, signer_headers[i]) == 0)
                return fail(err, err_size, "header \"%s\" is set by the signer", e->name);
    }
    e->value = value;
    e->order = *count;
    (*count)++;
    return TG_OK;
}

/* Canonical headers (each "name:value\n") into b, the signed list ("a;b") into signed_list. */
static void canonical_headers(struct sbuf *b, struct sbuf *signed_list,
                              struct header_entry *entries, size_t count)
{
    qsort(entries, count, sizeof(*entries), cmp_headers);
    for (size_t i = 0; i < count; i++) {
        bool same = i > 0 && strcmp(entries[i].name, entries[i - 1].name) == 0;
        if (same) {
            sb_addc(b, ',');
        } else {
            if (i > 0) {
                sb_addc(b, '\n');
                sb_addc(signed_list, ';');
            }
            sb_adds(b, entries[i].name);
            sb_addc(b, ':');
            sb_adds(signed_list, entries[i].name);
        }
        sb_trimmed(b, entries[i].value);
    }
    if (count > 0)
        sb_addc(b, '\n');
}

static bool is_amz_date(const char *s)
{
    if (s == NULL || strlen(s) != TG_SIGV4_AMZ_DATE_LEN || s[8] != 'T' || s[15] != 'Z')
        return false;
    for (int i = 0; i < 15; i++)
        if (i != 8 && (s[i] < '0' || s[i] > '9'))
            return false;
    return true;
}

/* A region, a service or an access key id: letters, digits and '-' only, 1..MAX_NAME. */
static bool is_scope_word(const char *s)
{
    size_t len = s != NULL ? strlen(s) : 0;
    if (len == 0 || len > MAX_NAME)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-'))
            return false;
    }
    return true;
}

static int check_request(const struct tg_sigv4_request *req, char *err, size_t err_size)
{
    const char *m = req->method;
    if (m == NULL || m[0] == '\0' || strlen(m) > 16)
        return fail(err, err_size, "missing or overlong method");
    for (; *m != '\0'; m++)
        if (*m < 'A' || *m > 'Z')
            return fail(err, err_size, "method \"%.16s\" is not upper-case letters", req->method);
    if (req->path == NULL || req->path[0] != '/')
        return fail(err, err_size, "path does not begin with '/'");
    if (!is_amz_date(req->amz_date))
        return fail(err, err_size, "date \"%.32s\" is not in the form YYYYMMDDTHHMMSSZ",
                    req->amz_date != NULL ? req->amz_date : "");
    if (!is_scope_word(req->region))
        return fail(err, err_size, "invalid region \"%.64s\"",
                    req->region != NULL ? req->region : "");
    if (!is_scope_word(req->service))
        return fail(err, err_size, "invalid service \"%.64s\"",
                    req->service != NULL ? req->service : "");
    if (!is_scope_word(req->access_key_id))
        return fail(err, err_size, "invalid access key id");
    if (req->secret_access_key == NULL || req->secret_access_key[0] == '\0' ||
        strlen(req->secret_access_key) > MAX_SECRET)
        return fail(err, err_size, "missing or overlong secret access key");
    if (req->n_headers > TG_SIGV4_MAX_HEADERS)
        return fail(err, err_size, "%zu headers to sign exceed the limit of %d", req->n_headers,
                    TG_SIGV4_MAX_HEADERS);
    if (req->payload == NULL && req->payload_len > 0)
        return fail(err, err_size, "payload length without a payload");
    return TG_OK;
}

/* The signature: HMAC chain over date, region, service, "aws4_request", then the string. */
static int sign(const struct tg_sigv4_request *req, const char *string_to_sign, char hex_out[65])
{
    unsigned char key[TG_SHA256_LEN], next[TG_SHA256_LEN];
    char first[4 + MAX_SECRET];
    size_t secret_len = strlen(req->secret_access_key);
    memcpy(first, "AWS4", 4);
    memcpy(first + 4, req->secret_access_key, secret_len);
    int rc = tg_crypto_hmac_sha256(first, 4 + secret_len, req->amz_date, 8, key);
    const char *steps[] = {req->region, req->service, "aws4_request"};
    for (size_t i = 0; i < TG_ARRAY_LEN(steps) && rc == TG_OK; i++) {
        rc = tg_crypto_hmac_sha256(key, sizeof(key), steps[i], strlen(steps[i]), next);
        memcpy(key, next, sizeof(key));
    }
    if (rc == TG_OK)
        rc = tg_crypto_hmac_sha256(key, sizeof(key), string_to_sign, strlen(string_to_sign), next);
    if (rc == TG_OK)
        tg_crypto_hex(next, sizeof(next), hex_out);
    explicit_bzero(first, sizeof(first));
    explicit_bzero(key, sizeof(key));
    explicit_bzero(next, sizeof(next));
    return rc;
}

int tg_sigv4_sign(const struct tg_sigv4_request *req, struct tg_sigv4_signed *out, char *err,
                  size_t err_size)
{
    memset(out, 0, sizeof(*out));
    if (check_request(req, err, err_size) != TG_OK)
        return TG_ERROR;

    unsigned char digest[TG_SHA256_LEN];
    tg_crypto_sha256(req->payload != NULL ? req->payload : "", req->payload_len, digest);
    tg_crypto_hex(digest, sizeof(digest), out->content_sha256);
    memcpy(out->amz_date, req->amz_date, TG_SIGV4_AMZ_DATE_LEN + 1);
    bool has_token = req->session_token != NULL && req->session_token[0] != '\0';

    struct header_entry entries[TG_SIGV4_MAX_HEADERS + 4];
    size_t count = 0;
    int rc = add_header(entries, &count, "host", req->host, false, err, err_size);
    if (rc == TG_OK)
        rc = add_header(entries, &count, "x-amz-date", req->amz_date, false, err, err_size);
    if (rc == TG_OK && has_token)
        rc = add_header(entries, &count, "x-amz-security-token", req->session_token, false, err,
                        err_size);
    if (rc == TG_OK && req->sign_content_sha256)
        rc = add_header(entries, &count, "x-amz-content-sha256", out->content_sha256, false, err,
                        err_size);
    for (size_t i = 0; i < req->n_headers && rc == TG_OK; i++)
        rc = add_header(entries, &count, req->headers[i].name, req->headers[i].value, true, err,
                        err_size);
    if (rc != TG_OK)
        return TG_ERROR;

    struct sbuf canon = {0}, signed_list = {0}, sts = {0}, auth = {0};
    sb_adds(&canon, req->method);
    sb_addc(&canon, '\n');
    canonical_uri(&canon, req->path);
    sb_addc(&canon, '\n');
    canonical_query(&canon, req->query);
    sb_addc(&canon, '\n');
    canonical_headers(&canon, &signed_list, entries, count);
    sb_addc(&canon, '\n');
    sb_add(&canon, signed_list.buf != NULL ? signed_list.buf : "", signed_list.len);
    sb_addc(&canon, '\n');
    sb_adds(&canon, out->content_sha256);

    char scope[8 + 3 * (MAX_NAME + 1) + 16];
    snprintf(scope, sizeof(scope), "%.8s/%s/%s/aws4_request", req->amz_date, req->region,
             req->service);
    char canon_hex[65] = "";
    if (!canon.failed) {
        tg_crypto_sha256(canon.buf, canon.len, digest);
        tg_crypto_hex(digest, sizeof(digest), canon_hex);
    }
    sb_adds(&sts, ALGORITHM "\n");
    sb_adds(&sts, req->amz_date);
    sb_addc(&sts, '\n');
    sb_adds(&sts, scope);
    sb_addc(&sts, '\n');
    sb_adds(&sts, canon_hex);

    char signature[65];
    bool built = !canon.failed && !signed_list.failed && !sts.failed;
    if (built && sign(req, sts.buf, signature) != TG_OK) {
        free(canon.buf);
        free(signed_list.buf);
        free(sts.buf);
        return fail(err, err_size, "could not compute the signature: HMAC failed");
    }
    sb_adds(&auth, ALGORITHM " Credential=");
    sb_adds(&auth, req->access_key_id);
    sb_addc(&auth, '/');
    sb_adds(&auth, scope);
    sb_adds(&auth, ", SignedHeaders=");
    sb_add(&auth, signed_list.buf != NULL ? signed_list.buf : "", signed_list.len);
    sb_adds(&auth, ", Signature=");
    sb_adds(&auth, built ? signature : "");
    free(signed_list.buf);
    if (!built || auth.failed) {
        free(canon.buf);
        free(sts.buf);
        free(auth.buf);
        return fail(err, err_size,
                    "could not build the canonical request: over %d bytes or "
                    "out of memory",
                    TG_SIGV4_MAX_OUTPUT);
    }
    out->canonical_request = canon.buf;
    out->string_to_sign = sts.buf;
    out->authorization = auth.buf;
    out->security_token = has_token ? req->session_token : NULL;
    return TG_OK;
}

void tg_sigv4_signed_release(struct tg_sigv4_signed *out)
{
    free(out->authorization);
    free(out->canonical_request);
    free(out->string_to_sign);
    out->authorization = NULL;
    out->canonical_request = NULL;
    out->string_to_sign = NULL;
    out->security_token = NULL;
}
