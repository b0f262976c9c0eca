/*
 * Unit tests of proxy/sigv4.c: AWS Signature Version 4 verification, against requests from AWS's SigV4 test suite
 * (get-vanilla, get-vanilla-query-order-key-case, post-vanilla, post-x-www-form-urlencoded: credentials AKIDEXAMPLE /
 * wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, us-east-1, service "service", 2015-08-30T12:36:00Z, and the signatures
 * the suite gives), one request of our own whose signature was computed independently (Python's hmac and hashlib,
 * following AWS's documented steps), and each way a request is refused, with DynamoDB's __type.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include <mbedtls/md.h>
#include "proxy/internal.h"

#define T_MISSING "com.amazon.coral.service#MissingAuthenticationTokenException"
#define T_INCOMPLETE "com.amazon.coral.service#IncompleteSignatureException"
#define T_UNRECOGNIZED "com.amazon.coral.service#UnrecognizedClientException"
#define T_INVALID "com.amazon.coral.service#InvalidSignatureException"

#define CRED "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
#define GET_VANILLA_SIG "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"

static conf_access_key_t keys[] = {{"OTHERKEY", "other-secret"}, {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}};

/* 2015-08-30T12:36:00Z */
static time_t suite_time(void)
{
    struct tm tm = {.tm_year = 115, .tm_mon = 7, .tm_mday = 30, .tm_hour = 12, .tm_min = 36, .tm_sec = 0};
    return timegm(&tm);
}

/* A request to example.amazonaws.com; headers as name, value pairs up to NULL (authorization among them, or not). */
static void make(h2o_req_t *r, const char *method, const char *path, const char *body, ...)
{
    va_list ap;
    const char *name;

    memset(r, 0, sizeof(*r));
    h2o_mem_init_pool(&r->pool);
    r->method = h2o_iovec_init(method, strlen(method));
    r->path = h2o_iovec_init(path, strlen(path));
    r->authority = h2o_iovec_init(H2O_STRLIT("example.amazonaws.com"));
    if (body != NULL)
        r->entity = h2o_iovec_init(body, strlen(body));
    va_start(ap, body);
    while ((name = va_arg(ap, const char *)) != NULL) {
        const char *value = va_arg(ap, const char *);
        h2o_add_header_by_str(&r->pool, &r->headers, name, strlen(name), 1, NULL, value, strlen(value));
    }
    va_end(ap);
}

static const char *verify(h2o_req_t *r, time_t now, const char **type)
{
    *type = NULL;
    return px_sigv4_verify_at(r, keys, sizeof(keys) / sizeof(keys[0]), now, type);
}

/* r is accepted at now; the request is done with */
static void accepted(h2o_req_t *r, time_t now)
{
    const char *type;
    assert_null(verify(r, now, &type));
    h2o_mem_clear_pool(&r->pool);
}

/* r is refused at now with a message containing `words` and DynamoDB's __type `type`; the request is done with */
static void refused(h2o_req_t *r, time_t now, const char *words, const char *type)
{
    const char *t, *msg = verify(r, now, &t);
    assert_non_null(msg);
    if (strstr(msg, words) == NULL)
        fail_msg("\"%s\" is not in \"%s\"", words, msg);
    assert_non_null(t);
    assert_string_equal(t, type);
    h2o_mem_clear_pool(&r->pool);
}

/* get-vanilla's headers: x-amz-date and its Authorization */
#define VANILLA "x-amz-date", "20150830T123600Z", "authorization", CRED "SignedHeaders=host;x-amz-date, Signature=" GET_VANILLA_SIG
#define MISMATCH "does not match the signature you provided"

static void test_suite_vectors(void **state)
{
    h2o_req_t r;
    (void)state;

    make(&r, "GET", "/", NULL, VANILLA, NULL);
    accepted(&r, suite_time());

    /* the query is sorted by name for signing */
    make(&r, "GET", "/?Param2=value2&Param1=value1", NULL, "x-amz-date", "20150830T123600Z", "authorization",
         CRED "SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500", NULL);
    accepted(&r, suite_time());

    make(&r, "POST", "/", NULL, "x-amz-date", "20150830T123600Z", "authorization",
         CRED "SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b", NULL);
    accepted(&r, suite_time());

    /* a body: its SHA-256 is part of what is signed */
    make(&r, "POST", "/", "Param1=value1", "content-type", "application/x-www-form-urlencoded", "x-amz-date", "20150830T123600Z",
         "authorization",
         CRED "SignedHeaders=content-type;host;x-amz-date, "
              "Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
         NULL);
    accepted(&r, suite_time());
}

static void test_header_values_trimmed(void **state)
{
    h2o_req_t r;
    (void)state;

    /* values are trimmed and inner runs of spaces made one before signing: "  value1  " signs as "value1" and
     * "\"a   b   c\"" as "\"a b c\"" (the signature computed from those canonical values) */
    make(&r, "GET", "/", NULL, "my-header1", "  value1  ", "my-header2", "\"a   b   c\"", "x-amz-date", "20150830T123600Z",
         "authorization",
         CRED "SignedHeaders=host;my-header1;my-header2;x-amz-date, "
              "Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
         NULL);
    accepted(&r, suite_time());
}

/* The signing keys each thread keeps: a verification from a kept key gives the same answer; a key id whose secret
 * changed (a reload) does not get the old secret's key; keys pushed out by other scopes are made again. */
static void test_signing_keys_kept(void **state)
{
    h2o_req_t r;
    char auth[512];
    char *secret = keys[1].secret, other[] = "another-secret";
    (void)state;

    for (int i = 0; i < 2; i++) {
        make(&r, "GET", "/", NULL, VANILLA, NULL);
        accepted(&r, suite_time());
    }
    keys[1].secret = other;
    make(&r, "GET", "/", NULL, VANILLA, NULL);
    refused(&r, suite_time(), MISMATCH, T_INVALID);
    keys[1].secret = secret;
    static const char *const regions[] = {"eu-west-1", "eu-west-2", "eu-west-3", "us-west-1", "us-west-2"};
    for (size_t i = 0; i != sizeof(regions) / sizeof(regions[0]); ++i) { /* more scopes than a thread keeps */
        snprintf(auth, sizeof(auth),
                 "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/%s/service/aws4_request, SignedHeaders=host;x-amz-date, "
                 "Signature=" GET_VANILLA_SIG,
                 regions[i]);
        make(&r, "GET", "/", NULL, "x-amz-date", "20150830T123600Z", "authorization", auth, NULL);
        refused(&r, suite_time(), MISMATCH, T_INVALID);
    }
    make(&r, "GET", "/", NULL, VANILLA, NULL);
    accepted(&r, suite_time());
}

/* Secrets of every length: up to 60 bytes "AWS4" + secret is an HMAC key as it is, longer ones are hashed first (HMAC's
 * rule, done by the verifier without copying the secret); 128 bytes and more are not kept. The expected signature is
 * made here with mbedTLS's HMAC given the whole key. */
static void test_secret_lengths(void **state)
{
    static const char sts[] = "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
                              "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63";
    static const size_t lens[] = {1, 59, 60, 61, 127, 128, 300};
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    char secret[301], key0[305], auth[512], sig[65];
    unsigned char k[32];
    h2o_req_t r;
    (void)state;

    for (size_t i = 0; i != sizeof(lens) / sizeof(lens[0]); ++i) {
        for (size_t j = 0; j != lens[i]; ++j)
            secret[j] = (char)('a' + (j * 7 + i) % 26);
        secret[lens[i]] = '\0';
        snprintf(key0, sizeof(key0), "AWS4%s", secret);
        mbedtls_md_hmac(md, (unsigned char *)key0, strlen(key0), (const unsigned char *)"20150830", 8, k);
        mbedtls_md_hmac(md, k, 32, (const unsigned char *)"us-east-1", 9, k);
        mbedtls_md_hmac(md, k, 32, (const unsigned char *)"service", 7, k);
        mbedtls_md_hmac(md, k, 32, (const unsigned char *)"aws4_request", 12, k);
        mbedtls_md_hmac(md, k, 32, (const unsigned char *)sts, strlen(sts), k);
        for (int j = 0; j != 32; ++j)
            snprintf(sig + 2 * j, 3, "%02x", k[j]);
        snprintf(auth, sizeof(auth), CRED "SignedHeaders=host;x-amz-date, Signature=%s", sig);
        char *was = keys[1].secret;
        keys[1].secret = secret;
        for (int twice = 0; twice != 2; ++twice) { /* made, then (up to 127 bytes) kept */
            make(&r, "GET", "/", NULL, "x-amz-date", "20150830T123600Z", "authorization", auth, NULL);
            accepted(&r, suite_time());
        }
        keys[1].secret = was;
    }
}

static void test_refused(void **state)
{
    h2o_req_t r;
    time_t t = suite_time();
    char auth[512];
    (void)state;

    make(&r, "GET", "/", NULL, "x-amz-date", "20150830T123600Z", NULL);
    refused(&r, t, "Request is missing Authentication Token", T_MISSING);

    make(&r, "GET", "/", NULL, "x-amz-date", "20150830T123600Z", "authorization", "AWS4-HMAC-SHA1 Credential=x", NULL);
    refused(&r, t, "AWS4-HMAC-SHA256", T_INCOMPLETE);

    make(&r, "GET", "/", NULL, "x-amz-date", "20150830T123600Z", "authorization", CRED "SignedHeaders=host;x-amz-date", NULL);
    refused(&r, t, "'Signature'", T_INCOMPLETE);

    /* Host not signed: the signature could be replayed to another host; a look-alike name does not count */
    make(&r, "GET", "/", NULL, "x-amz-date", "20150830T123600Z", "authorization",
         CRED "SignedHeaders=x-amz-date, Signature=" GET_VANILLA_SIG, NULL);
    refused(&r, t, "'Host'", T_INCOMPLETE);
    make(&r, "GET", "/", NULL, "myhost", "h", "x-amz-date", "20150830T123600Z", "authorization",
         CRED "SignedHeaders=myhost;x-amz-date, Signature=" GET_VANILLA_SIG, NULL);
    refused(&r, t, "'Host'", T_INCOMPLETE);

    /* a scope that is not DATE/REGION/SERVICE/aws4_request */
    make(&r, "GET", "/", NULL, "x-amz-date", "20150830T123600Z", "authorization",
         "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws5_request, SignedHeaders=host;x-amz-date, "
         "Signature=" GET_VANILLA_SIG,
         NULL);
    refused(&r, t, "scoped to a valid region", T_INCOMPLETE);

    /* an unknown key id */
    make(&r, "GET", "/", NULL, "x-amz-date", "20150830T123600Z", "authorization",
         "AWS4-HMAC-SHA256 Credential=AKIDOTHER/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, "
         "Signature=" GET_VANILLA_SIG,
         NULL);
    refused(&r, t, "The security token included in the request is invalid.", T_UNRECOGNIZED);

    /* no x-amz-date */
    make(&r, "GET", "/", NULL, "authorization", CRED "SignedHeaders=host;x-amz-date, Signature=" GET_VANILLA_SIG, NULL);
    refused(&r, t, "'X-Amz-Date'", T_INCOMPLETE);

    /* the scope's date is not x-amz-date's; a malformed x-amz-date */
    make(&r, "GET", "/", NULL, "x-amz-date", "20150831T123600Z", "authorization",
         CRED "SignedHeaders=host;x-amz-date, Signature=" GET_VANILLA_SIG, NULL);
    refused(&r, t + 86400, "does not match YYYYMMDD", T_INVALID);
    make(&r, "GET", "/", NULL, "x-amz-date", "2015-08-30T12:36:00Z", "authorization",
         CRED "SignedHeaders=host;x-amz-date, Signature=" GET_VANILLA_SIG, NULL);
    refused(&r, t, "does not match YYYYMMDD", T_INVALID);

    /* the clock: 15 minutes either way are accepted, 16 are not (the request 16 minutes in the future, too) */
    make(&r, "GET", "/", NULL, VANILLA, NULL);
    accepted(&r, t + 15 * 60);
    make(&r, "GET", "/", NULL, VANILLA, NULL);
    accepted(&r, t - 15 * 60);
    make(&r, "GET", "/", NULL, VANILLA, NULL);
    refused(&r, t + 16 * 60, "Signature expired", T_INVALID);
    make(&r, "GET", "/", NULL, VANILLA, NULL);
    refused(&r, t - 16 * 60, "Signature expired", T_INVALID);

    /* one hex digit off, the signature too short, too long */
    static const char *const bad[] = {"5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf30",
                                      "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf3", GET_VANILLA_SIG "0"};
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i) {
        snprintf(auth, sizeof(auth), CRED "SignedHeaders=host;x-amz-date, Signature=%s", bad[i]);
        make(&r, "GET", "/", NULL, "x-amz-date", "20150830T123600Z", "authorization", auth, NULL);
        refused(&r, t, MISMATCH, T_INVALID);
    }

    /* the right signature for another key (its secret differs), or for another request: refused */
    make(&r, "GET", "/", NULL, "x-amz-date", "20150830T123600Z", "authorization",
         "AWS4-HMAC-SHA256 Credential=OTHERKEY/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, "
         "Signature=" GET_VANILLA_SIG,
         NULL);
    refused(&r, t, MISMATCH, T_INVALID);
    make(&r, "GET", "/other", NULL, VANILLA, NULL);
    refused(&r, t, MISMATCH, T_INVALID);
    make(&r, "POST", "/", "Param1=value2", "content-type", "application/x-www-form-urlencoded", "x-amz-date", "20150830T123600Z",
         "authorization",
         CRED "SignedHeaders=content-type;host;x-amz-date, "
              "Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
         NULL);
    refused(&r, t, MISMATCH, T_INVALID);

    /* a signed header the request does not have */
    make(&r, "GET", "/", NULL, "x-amz-date", "20150830T123600Z", "authorization",
         CRED "SignedHeaders=host;my-header1;x-amz-date, Signature=" GET_VANILLA_SIG, NULL);
    refused(&r, t, "missing from the request", T_INCOMPLETE);

    /* x-amz-content-sha256 must be the body's hash (UNSIGNED-PAYLOAD is not accepted); the empty body's is fine */
    make(&r, "GET", "/", NULL, "x-amz-content-sha256", "UNSIGNED-PAYLOAD", VANILLA, NULL);
    refused(&r, t, "x-amz-content-sha256", T_INVALID);
    make(&r, "GET", "/", NULL, "x-amz-content-sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", VANILLA,
         NULL);
    accepted(&r, t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_suite_vectors),     cmocka_unit_test(test_header_values_trimmed),
        cmocka_unit_test(test_signing_keys_kept), cmocka_unit_test(test_secret_lengths),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
