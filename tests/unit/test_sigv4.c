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

typedef struct request {
    h2o_req_t req;
} request_t;

/* A request to example.amazonaws.com; headers as name, value pairs up to NULL (authorization among them, or not). */
static void make(request_t *r, const char *method, const char *path, const char *body, ...)
{
    va_list ap;
    const char *name;

    memset(r, 0, sizeof(*r));
    h2o_mem_init_pool(&r->req.pool);
    r->req.method = h2o_iovec_init(method, strlen(method));
    r->req.path = h2o_iovec_init(path, strlen(path));
    r->req.authority = h2o_iovec_init(H2O_STRLIT("example.amazonaws.com"));
    if (body != NULL)
        r->req.entity = h2o_iovec_init(body, strlen(body));
    va_start(ap, body);
    while ((name = va_arg(ap, const char *)) != NULL) {
        const char *value = va_arg(ap, const char *);
        h2o_add_header_by_str(&r->req.pool, &r->req.headers, name, strlen(name), 1, NULL, value, strlen(value));
    }
    va_end(ap);
}

static const char *verify(request_t *r, time_t now, const char **type)
{
    *type = NULL;
    return px_sigv4_verify_at(&r->req, keys, sizeof(keys) / sizeof(keys[0]), now, type);
}

static void done(request_t *r)
{
    h2o_mem_clear_pool(&r->req.pool);
}

static void test_suite_vectors(void **state)
{
    request_t r;
    const char *type;
    (void)state;

    make(&r, "GET", "/", NULL, "x-amz-date", "20150830T123600Z", "authorization",
         CRED "SignedHeaders=host;x-amz-date, Signature=" GET_VANILLA_SIG, NULL);
    assert_null(verify(&r, suite_time(), &type));
    done(&r);

    /* the query is sorted by name for signing */
    make(&r, "GET", "/?Param2=value2&Param1=value1", NULL, "x-amz-date", "20150830T123600Z", "authorization",
         CRED "SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500", NULL);
    assert_null(verify(&r, suite_time(), &type));
    done(&r);

    make(&r, "POST", "/", NULL, "x-amz-date", "20150830T123600Z", "authorization",
         CRED "SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b", NULL);
    assert_null(verify(&r, suite_time(), &type));
    done(&r);

    /* a body: its SHA-256 is part of what is signed */
    make(&r, "POST", "/", "Param1=value1", "content-type", "application/x-www-form-urlencoded", "x-amz-date", "20150830T123600Z",
         "authorization",
         CRED "SignedHeaders=content-type;host;x-amz-date, "
              "Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
         NULL);
    assert_null(verify(&r, suite_time(), &type));
    done(&r);
}

static void test_header_values_trimmed(void **state)
{
    request_t r;
    const char *type;
    (void)state;

    /* values are trimmed and inner runs of spaces made one before signing: "  value1  " signs as "value1" and
     * "\"a   b   c\"" as "\"a b c\"" (the signature computed from those canonical values) */
    make(&r, "GET", "/", NULL, "my-header1", "  value1  ", "my-header2", "\"a   b   c\"", "x-amz-date", "20150830T123600Z",
         "authorization",
         CRED "SignedHeaders=host;my-header1;my-header2;x-amz-date, "
              "Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
         NULL);
    assert_null(verify(&r, suite_time(), &type));
    done(&r);
}

static void test_refused(void **state)
{
    request_t r;
    const char *type, *msg;
    time_t t = suite_time();
    (void)state;

    /* no Authorization */
    make(&r, "GET", "/", NULL, "x-amz-date", "20150830T123600Z", NULL);
    assert_string_equal(verify(&r, t, &type), "Request is missing Authentication Token");
    assert_string_equal(type, T_MISSING);
    done(&r);

    /* another algorithm */
    make(&r, "GET", "/", NULL, "x-amz-date", "20150830T123600Z", "authorization", "AWS4-HMAC-SHA1 Credential=x", NULL);
    assert_non_null(strstr(verify(&r, t, &type), "AWS4-HMAC-SHA256"));
    assert_string_equal(type, T_INCOMPLETE);
    done(&r);

    /* a parameter missing */
    make(&r, "GET", "/", NULL, "x-amz-date", "20150830T123600Z", "authorization", CRED "SignedHeaders=host;x-amz-date", NULL);
    assert_non_null(strstr(verify(&r, t, &type), "'Signature'"));
    assert_string_equal(type, T_INCOMPLETE);
    done(&r);

    /* Host not signed: the signature could be replayed to another host */
    make(&r, "GET", "/", NULL, "x-amz-date", "20150830T123600Z", "authorization",
         CRED "SignedHeaders=x-amz-date, Signature=" GET_VANILLA_SIG, NULL);
    assert_non_null(strstr(verify(&r, t, &type), "'Host'"));
    assert_string_equal(type, T_INCOMPLETE);
    done(&r);

    /* a scope that is not DATE/REGION/SERVICE/aws4_request */
    make(&r, "GET", "/", NULL, "x-amz-date", "20150830T123600Z", "authorization",
         "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws5_request, SignedHeaders=host;x-amz-date, "
         "Signature=" GET_VANILLA_SIG,
         NULL);
    assert_non_null(strstr(verify(&r, t, &type), "scoped to a valid region"));
    done(&r);

    /* an unknown key id */
    make(&r, "GET", "/", NULL, "x-amz-date", "20150830T123600Z", "authorization",
         "AWS4-HMAC-SHA256 Credential=AKIDOTHER/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, "
         "Signature=" GET_VANILLA_SIG,
         NULL);
    assert_string_equal(verify(&r, t, &type), "The security token included in the request is invalid.");
    assert_string_equal(type, T_UNRECOGNIZED);
    done(&r);

    /* no x-amz-date */
    make(&r, "GET", "/", NULL, "authorization", CRED "SignedHeaders=host;x-amz-date, Signature=" GET_VANILLA_SIG, NULL);
    assert_non_null(strstr(verify(&r, t, &type), "'X-Amz-Date'"));
    done(&r);

    /* the scope's date is not x-amz-date's; a malformed x-amz-date */
    make(&r, "GET", "/", NULL, "x-amz-date", "20150831T123600Z", "authorization",
         CRED "SignedHeaders=host;x-amz-date, Signature=" GET_VANILLA_SIG, NULL);
    assert_non_null(strstr(verify(&r, t + 86400, &type), "does not match YYYYMMDD"));
    assert_string_equal(type, T_INVALID);
    done(&r);
    make(&r, "GET", "/", NULL, "x-amz-date", "2015-08-30T12:36:00Z", "authorization",
         CRED "SignedHeaders=host;x-amz-date, Signature=" GET_VANILLA_SIG, NULL);
    assert_non_null(strstr(verify(&r, t, &type), "does not match YYYYMMDD"));
    done(&r);

    /* the clock: 15 minutes either way are accepted, 16 are not */
    make(&r, "GET", "/", NULL, "x-amz-date", "20150830T123600Z", "authorization",
         CRED "SignedHeaders=host;x-amz-date, Signature=" GET_VANILLA_SIG, NULL);
    assert_null(verify(&r, t + 15 * 60, &type));
    assert_null(verify(&r, t - 15 * 60, &type));
    assert_non_null(strstr(verify(&r, t + 16 * 60, &type), "Signature expired"));
    assert_string_equal(type, T_INVALID);
    assert_non_null(strstr(verify(&r, t - 16 * 60, &type), "Signature expired")); /* from the future */
    done(&r);

    /* one hex digit off, the signature too short, too long */
    static const char *const bad[] = {"5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf30",
                                      "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf3", GET_VANILLA_SIG "0"};
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i) {
        char auth[512];
        snprintf(auth, sizeof(auth), CRED "SignedHeaders=host;x-amz-date, Signature=%s", bad[i]);
        make(&r, "GET", "/", NULL, "x-amz-date", "20150830T123600Z", "authorization", auth, NULL);
        msg = verify(&r, t, &type);
        assert_non_null(msg);
        assert_non_null(strstr(msg, "does not match the signature you provided"));
        assert_string_equal(type, T_INVALID);
        done(&r);
    }

    /* the right signature with another key's secret, or a changed request: refused */
    make(&r, "GET", "/other", NULL, "x-amz-date", "20150830T123600Z", "authorization",
         CRED "SignedHeaders=host;x-amz-date, Signature=" GET_VANILLA_SIG, NULL);
    assert_non_null(strstr(verify(&r, t, &type), "does not match the signature you provided"));
    done(&r);
    make(&r, "POST", "/", "Param1=value2", "content-type", "application/x-www-form-urlencoded", "x-amz-date", "20150830T123600Z",
         "authorization",
         CRED "SignedHeaders=content-type;host;x-amz-date, "
              "Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
         NULL);
    assert_non_null(strstr(verify(&r, t, &type), "does not match the signature you provided"));
    done(&r);

    /* a signed header the request does not have */
    make(&r, "GET", "/", NULL, "x-amz-date", "20150830T123600Z", "authorization",
         CRED "SignedHeaders=host;my-header1;x-amz-date, Signature=" GET_VANILLA_SIG, NULL);
    assert_non_null(strstr(verify(&r, t, &type), "missing from the request"));
    assert_string_equal(type, T_INCOMPLETE);
    done(&r);

    /* x-amz-content-sha256 must be the body's hash (UNSIGNED-PAYLOAD is not accepted) */
    make(&r, "GET", "/", NULL, "x-amz-content-sha256", "UNSIGNED-PAYLOAD", "x-amz-date", "20150830T123600Z", "authorization",
         CRED "SignedHeaders=host;x-amz-date, Signature=" GET_VANILLA_SIG, NULL);
    assert_non_null(strstr(verify(&r, t, &type), "x-amz-content-sha256"));
    done(&r);
    make(&r, "GET", "/", NULL, "x-amz-content-sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
         "x-amz-date", "20150830T123600Z", "authorization", CRED "SignedHeaders=host;x-amz-date, Signature=" GET_VANILLA_SIG, NULL);
    assert_null(verify(&r, t, &type)); /* the empty body's SHA-256: fine */
    done(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_suite_vectors),
        cmocka_unit_test(test_header_values_trimmed),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
