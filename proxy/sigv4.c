/*
 * sigv4: AWS Signature Version 4 verification of the DynamoDB API's requests, when the conf lists access keys
 * (store: { access_keys: [ { id, secret } ] }). Without them, signatures are accepted unchecked, as DynamoDB Local does.
 *
 * The check is the one AWS documents ("Create a signed AWS API request"): the canonical request (method, the path
 * URI-encoded again, the sorted query, the signed headers lower-cased with trimmed values, the signed header names,
 * the payload's SHA-256, which an x-amz-content-sha256 header must match), the string to sign (AWS4-HMAC-SHA256, x-amz-date, the
 * scope, the canonical request's SHA-256), the signing key (HMAC-SHA256 chain of "AWS4" + secret, date, region, service,
 * "aws4_request"), compared in constant time with the Signature. x-amz-date must be within 15 minutes of now, and the
 * scope's date must be its date. Errors as DynamoDB words them (their __type and message).
 */
#include <mbedtls/md.h>
#include <mbedtls/sha256.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "proxy/internal.h"

#define SKEW_S (15 * 60)

static const char *const T_MISSING = "com.amazon.coral.service#MissingAuthenticationTokenException";
static const char *const T_INCOMPLETE = "com.amazon.coral.service#IncompleteSignatureException";
static const char *const T_UNRECOGNIZED = "com.amazon.coral.service#UnrecognizedClientException";
static const char *const T_INVALID = "com.amazon.coral.service#InvalidSignatureException";

/* A growing text in the request's pool. */
typedef struct text {
    h2o_mem_pool_t *pool;
    char *p;
    size_t len, cap;
} text_t;

#define TEXT_MAX ((size_t)1 << 31) /* no canonical request comes near: requests are at most 1 GiB */

static void put(text_t *t, const char *s, size_t n)
{
    if (n >= TEXT_MAX || t->len >= TEXT_MAX)
        h2o_fatal("sigv4: text too long"); /* cannot be (see TEXT_MAX); says so to the compiler too */
    if (t->len + n + 1 > t->cap) {
        size_t cap = (t->len + n + 1) * 2;
        char *p = h2o_mem_alloc_pool(t->pool, cap);
        if (t->len != 0)
            memcpy(p, t->p, t->len);
        t->p = p, t->cap = cap;
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
}

static void puts_(text_t *t, const char *s)
{
    put(t, s, strlen(s));
}

static void hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i != n; ++i)
        out[2 * i] = digits[in[i] >> 4], out[2 * i + 1] = digits[in[i] & 15];
    out[2 * n] = '\0';
}

static void sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char h[32];
    mbedtls_sha256_ret(data, len, h, 0);
    hex(h, 32, out);
}

static void hmac(const unsigned char *key, size_t klen, const char *msg, size_t mlen, unsigned char out[32])
{
    mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), key, klen, (const unsigned char *)msg, mlen, out);
}

/*
 * The signing key of a secret for a day, region and service: four HMACs, the same for every request of that day. Each
 * thread keeps the last few (as the AWS SDKs do on their side), found by the secret itself and the scope, never by a
 * pointer into a configuration that a reload may replace.
 */
#define SIGNING_KEYS 4
typedef struct signing_key {
    char secret[128]; /* "" : empty slot; longer secrets are not kept */
    char date[9], region[64], service[64];
    unsigned char k[32];
} signing_key_t;

static void signing_key(const char *secret, const char *date, const char *region, const char *service, unsigned char k[32])
{
    static _Thread_local signing_key_t kept[SIGNING_KEYS];
    static _Thread_local unsigned next;
    size_t slen = strlen(secret), dlen = strlen(date), rlen = strlen(region), svlen = strlen(service);
    unsigned char k0[64];
    size_t k0len;

    for (unsigned i = 0; i != SIGNING_KEYS; ++i) {
        signing_key_t *e = &kept[i];
        if (e->secret[0] != '\0' && strcmp(e->secret, secret) == 0 && strcmp(e->date, date) == 0 &&
            strcmp(e->region, region) == 0 && strcmp(e->service, service) == 0) {
            memcpy(k, e->k, 32);
            return;
        }
    }
    /* the first key, "AWS4" + secret; HMAC-SHA256 hashes a key longer than its 64-byte block, so a long one is
     * given as that hash (the same HMAC), made without a copy of the secret */
    if (4 + slen <= sizeof(k0)) {
        memcpy(k0, "AWS4", 4);
        memcpy(k0 + 4, secret, slen);
        k0len = 4 + slen;
    } else {
        mbedtls_sha256_context c;
        mbedtls_sha256_init(&c);
        mbedtls_sha256_starts_ret(&c, 0);
        mbedtls_sha256_update_ret(&c, (const unsigned char *)"AWS4", 4);
        mbedtls_sha256_update_ret(&c, (const unsigned char *)secret, slen);
        mbedtls_sha256_finish_ret(&c, k0);
        mbedtls_sha256_free(&c);
        k0len = 32;
    }
    hmac(k0, k0len, date, dlen, k);
    hmac(k, 32, region, rlen, k);
    hmac(k, 32, service, svlen, k);
    hmac(k, 32, "aws4_request", 12, k);
    if (slen != 0 && slen < sizeof(kept[0].secret) && dlen < sizeof(kept[0].date) && rlen < sizeof(kept[0].region) &&
        svlen < sizeof(kept[0].service)) {
        signing_key_t *e = &kept[next++ % SIGNING_KEYS];
        memcpy(e->secret, secret, slen + 1);
        memcpy(e->date, date, dlen + 1);
        memcpy(e->region, region, rlen + 1);
        memcpy(e->service, service, svlen + 1);
        memcpy(e->k, k, 32);
    }
}

/* The path as SigV4 canonicalizes it for services other than S3: the path as sent, URI-encoded once more. */
static void canonical_path(text_t *t, const char *p, size_t n)
{
    if (n == 0) {
        puts_(t, "/");
        return;
    }
    for (size_t i = 0; i != n; ++i) {
        unsigned char c = (unsigned char)p[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
            c == '~' || c == '/') {
            put(t, (const char *)&c, 1);
        } else {
            char e[4];
            snprintf(e, sizeof(e), "%%%02X", c);
            put(t, e, 3);
        }
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The query's parameters sorted (as sent: the SDKs encode them as SigV4 wants). */
static void canonical_query(text_t *t, h2o_mem_pool_t *pool, const char *q, size_t n)
{
    size_t count = 1, i = 0;
    for (size_t j = 0; j != n; ++j)
        count += q[j] == '&';
    const char **params = h2o_mem_alloc_pool(pool, count * sizeof(*params));
    for (const char *s = q, *end = q + n; s <= end && n != 0;) {
        const char *amp = memchr(s, '&', (size_t)(end - s));
        size_t len = amp != NULL ? (size_t)(amp - s) : (size_t)(end - s);
        char *p = h2o_mem_alloc_pool(pool, len + 2);
        memcpy(p, s, len);
        p[len] = '\0';
        if (memchr(p, '=', len) == NULL)
            strcat(p, "="); /* "a" is "a=" */
        params[i++] = p;
        if (amp == NULL)
            break;
        s = amp + 1;
    }
    qsort(params, i, sizeof(*params), cmp_str);
    for (size_t j = 0; j != i; ++j) {
        if (j != 0)
            puts_(t, "&");
        puts_(t, params[j]);
    }
}

/* A header's canonical value: every value of that name, trimmed, inner runs of spaces made one, joined with ','. 0, or
 * -1 when the request has no such header. */
static int canonical_header(text_t *t, h2o_req_t *req, const char *name, size_t nlen)
{
    int found = 0;
    if (nlen == 4 && memcmp(name, "host", 4) == 0) {
        put(t, req->authority.base, req->authority.len); /* h2o keeps Host (or :authority) there */
        return 0;
    }
    for (ssize_t i = -1; (i = h2o_find_header_by_str(&req->headers, name, nlen, i)) != -1;) {
        h2o_iovec_t v = req->headers.entries[i].value;
        size_t a = 0, b = v.len;
        while (a < b && (v.base[a] == ' ' || v.base[a] == '\t'))
            ++a;
        while (b > a && (v.base[b - 1] == ' ' || v.base[b - 1] == '\t'))
            --b;
        if (found++)
            puts_(t, ",");
        for (size_t k = a; k < b; ++k)
            if (!(v.base[k] == ' ' && k > a && v.base[k - 1] == ' '))
                put(t, v.base + k, 1);
    }
    if (!found && nlen == 14 && memcmp(name, "content-length", 14) == 0) {
        char num[32];
        puts_(t, (snprintf(num, sizeof(num), "%zu", req->entity.base != NULL ? req->entity.len : 0), num));
        return 0;
    }
    return found ? 0 : -1;
}

/* The value of `name=` in the Authorization header's list (into the pool), or NULL. */
static const char *auth_param(h2o_mem_pool_t *pool, h2o_iovec_t auth, const char *name)
{
    size_t nlen = strlen(name);
    for (size_t i = 0; i + nlen < auth.len; ++i) {
        if ((i == 0 || auth.base[i - 1] == ' ' || auth.base[i - 1] == ',') && memcmp(auth.base + i, name, nlen) == 0 &&
            auth.base[i + nlen] == '=') {
            size_t s = i + nlen + 1, e = s;
            while (e < auth.len && auth.base[e] != ',' && auth.base[e] != ' ')
                ++e;
            return h2o_strdup(pool, auth.base + s, e - s).base;
        }
    }
    return NULL;
}

/* x-amz-date (YYYYMMDDTHHMMSSZ) as a time. -1 when malformed. */
static time_t parse_amz_date(const char *s)
{
    struct tm tm = {0};
    if (strlen(s) != 16 || s[8] != 'T' || s[15] != 'Z' ||
        sscanf(s, "%4d%2d%2dT%2d%2d%2dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return timegm(&tm);
}

const char *px_sigv4_verify(h2o_req_t *req, const conf_access_key_t *keys, size_t nkeys, const char **type)
{
    return px_sigv4_verify_at(req, keys, nkeys, time(NULL), type);
}

const char *px_sigv4_verify_at(h2o_req_t *req, const conf_access_key_t *keys, size_t nkeys, time_t now, const char **type)
{
    h2o_mem_pool_t *pool = &req->pool;
    ssize_t ai = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    static const char algo[] = "AWS4-HMAC-SHA256 ";

    *type = T_MISSING;
    if (ai == -1)
        return "Request is missing Authentication Token";
    h2o_iovec_t auth = req->headers.entries[ai].value;
    *type = T_INCOMPLETE;
    if (auth.len < sizeof(algo) - 1 || memcmp(auth.base, algo, sizeof(algo) - 1) != 0)
        return "Authorization header requires the AWS4-HMAC-SHA256 algorithm";
    auth.base += sizeof(algo) - 1, auth.len -= sizeof(algo) - 1;
    const char *cred = auth_param(pool, auth, "Credential"), *signed_headers = auth_param(pool, auth, "SignedHeaders"),
               *sig = auth_param(pool, auth, "Signature");
    if (cred == NULL || signed_headers == NULL || sig == NULL)
        return "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters";
    /* the Host must be signed (AWS requires it): else a signed request could be replayed to another host */
    if (strcmp(signed_headers, "host") != 0 && strncmp(signed_headers, "host;", 5) != 0 &&
        strstr(signed_headers, ";host;") == NULL &&
        (strlen(signed_headers) < 5 || strcmp(signed_headers + strlen(signed_headers) - 5, ";host") != 0))
        return "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.";
    /* Credential=AKID/DATE/REGION/SERVICE/aws4_request */
    const char *slash = strchr(cred, '/');
    if (slash == NULL)
        return "Credential should be scoped to a valid region";
    const char *scope = slash + 1;
    char date[9] = "", region[64] = "", service[64] = "", term[16] = "";
    if (sscanf(scope, "%8[0-9]/%63[^/]/%63[^/]/%15s", date, region, service, term) != 4 || strcmp(term, "aws4_request") != 0)
        return "Credential should be scoped to a valid region";
    const conf_access_key_t *key = NULL;
    for (size_t i = 0; i != nkeys && key == NULL; ++i)
        if (strlen(keys[i].id) == (size_t)(slash - cred) && memcmp(keys[i].id, cred, (size_t)(slash - cred)) == 0)
            key = &keys[i];
    if (key == NULL) {
        *type = T_UNRECOGNIZED;
        return "The security token included in the request is invalid.";
    }
    ssize_t di = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-amz-date"), -1);
    if (di == -1)
        return "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.";
    const char *amz_date = h2o_strdup(pool, req->headers.entries[di].value.base, req->headers.entries[di].value.len).base;
    time_t when = parse_amz_date(amz_date);
    *type = T_INVALID;
    if (when == -1 || memcmp(amz_date, date, 8) != 0)
        return "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP";
    if (when < now - SKEW_S || when > now + SKEW_S)
        return "Signature expired: the request's X-Amz-Date is more than 15 minutes away from the server's time";

    /* the canonical request */
    text_t cr = {.pool = pool};
    const char *path = req->path.base, *q = memchr(path, '?', req->path.len);
    size_t plen = q != NULL ? (size_t)(q - path) : req->path.len;
    put(&cr, req->method.base, req->method.len);
    puts_(&cr, "\n");
    canonical_path(&cr, path, plen);
    puts_(&cr, "\n");
    if (q != NULL)
        canonical_query(&cr, pool, q + 1, req->path.len - plen - 1);
    puts_(&cr, "\n");
    for (const char *h = signed_headers; *h;) {
        const char *semi = strchr(h, ';');
        size_t n = semi != NULL ? (size_t)(semi - h) : strlen(h);
        put(&cr, h, n);
        puts_(&cr, ":");
        if (canonical_header(&cr, req, h, n) != 0) {
            *type = T_INCOMPLETE;
            return "A header named in SignedHeaders is missing from the request";
        }
        puts_(&cr, "\n");
        h += n + (semi != NULL);
    }
    puts_(&cr, "\n");
    puts_(&cr, signed_headers);
    puts_(&cr, "\n");
    /* the body's hash, computed (an x-amz-content-sha256 header must say the same: UNSIGNED-PAYLOAD is not accepted) */
    char payload[65];
    sha256_hex(req->entity.base != NULL ? req->entity.base : "", req->entity.base != NULL ? req->entity.len : 0, payload);
    ssize_t pi = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-amz-content-sha256"), -1);
    if (pi != -1 && !h2o_memis(req->headers.entries[pi].value.base, req->headers.entries[pi].value.len, payload, 64))
        return "The provided 'x-amz-content-sha256' header does not match what was computed.";
    puts_(&cr, payload);

    /* the string to sign, the key, the signature */
    char crh[65];
    sha256_hex(cr.p, cr.len, crh);
    text_t sts = {.pool = pool};
    puts_(&sts, "AWS4-HMAC-SHA256\n");
    puts_(&sts, amz_date);
    puts_(&sts, "\n");
    puts_(&sts, scope);
    puts_(&sts, "\n");
    puts_(&sts, crh);
    unsigned char k[32];
    signing_key(key->secret, date, region, service, k);
    hmac(k, 32, sts.p, sts.len, k);
    char want[65];
    hex(k, 32, want);
    size_t siglen = strlen(sig);
    unsigned diff = siglen != 64;
    for (size_t i = 0; i != 64; ++i) /* in constant time */
        diff |= (unsigned)(want[i] ^ (i < siglen ? sig[i] : 0));
    if (diff != 0)
        return "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access "
               "Key and signing method. Consult the service documentation for details.";
    *type = NULL;
    return NULL;
}
