/*
 * Unit tests of gateway/jwt.c: base64url, JWKS files and JWT verification. The keys are made here with mbedTLS (the
 * RSA ones once for the group: a 2048-bit key takes about a second), the JWKS files are written as JSON text into a
 * mkdtemp() directory that the group teardown removes, and the tokens are signed here. Every token is handed to
 * gw_jwt_verify() in a heap buffer of exactly its length (no NUL), so ASan sees any read beyond it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <ftw.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/entropy.h>
#include <mbedtls/md.h>
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>
#include <mbedtls/sha256.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "gateway/gateway.h"

#define NOW 1700000000LL
#define LEEWAY 30
#define ALL_ALGS (CONF_JWT_HS256 | CONF_JWT_RS256 | CONF_JWT_ES256)
#define PAYLOAD "{\"sub\":\"alice\", \"exp\":1700000600,\"n\":[1, 2]}" /* spacing kept: claims are the exact bytes */

typedef enum kind {
    K_HS,
    K_RS,
    K_ES,
} kind_t;

/* A key the tests sign with. */
typedef struct tkey {
    kind_t kind;
    unsigned char secret[64]; /* K_HS */
    size_t secret_len;
    mbedtls_rsa_context rsa;  /* K_RS */
    mbedtls_ecdsa_context ec; /* K_ES */
} tkey_t;

static struct fixture {
    char dir[64];
    int nfiles;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    tkey_t rsa, rsa1024, ec1, ec2, ec_other, hs1, hs2, hs_other;
    char *path;     /* the main JWKS: rsa1, ec1, ec2, hs1, hs2 and a skipped "enc" key */
    char *rsa_path; /* a JWKS with the RSA key only */
    gw_jwks_t *jwks, *jwks_rsa;
} fx;

/* ---- helpers: strings, base64url, files ---- */

__attribute__((format(printf, 1, 2))) static char *str(const char *fmt, ...)
{
    va_list ap;
    char *s;
    va_start(ap, fmt);
    assert_true(vasprintf(&s, fmt, ap) >= 0);
    va_end(ap);
    return s;
}

static char *b64url(const void *data, size_t len)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *p = data;
    char *out = malloc(len / 3 * 4 + 5), *o = out;
    size_t i;

    assert_non_null(out);
    for (i = 0; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = abc[v >> 18], *o++ = abc[(v >> 12) & 63], *o++ = abc[(v >> 6) & 63], *o++ = abc[v & 63];
    }
    if (len - i == 1) {
        *o++ = abc[p[i] >> 2], *o++ = abc[(p[i] & 3) << 4];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)p[i] << 8 | p[i + 1];
        *o++ = abc[v >> 10], *o++ = abc[(v >> 4) & 63], *o++ = abc[(v & 15) << 2];
    }
    *o = '\0';
    return out;
}

static char *b64s(const char *s)
{
    return b64url(s, strlen(s));
}

/* Length of the base64url text of n bytes. */
static size_t b64len(size_t n)
{
    return n / 3 * 4 + (n % 3 != 0 ? n % 3 + 1 : 0);
}

static char *write_file(const char *text)
{
    char *path = str("%s/jwks-%d.json", fx.dir, fx.nfiles++);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(fputs(text, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
    return path;
}

static char *mpi_b64(const mbedtls_mpi *m, size_t len)
{
    unsigned char buf[1024];
    assert_true(len <= sizeof(buf));
    assert_int_equal(mbedtls_mpi_write_binary(m, buf, len), 0);
    return b64url(buf, len);
}

/* ---- helpers: JWKs ---- */

/* {"kty":"RSA","n":...,"e":... EXTRA} where extra is "" or starts with ','. */
static char *jwk_rsa(const tkey_t *k, const char *extra)
{
    char *n = mpi_b64(&k->rsa.N, mbedtls_mpi_size(&k->rsa.N)), *e = mpi_b64(&k->rsa.E, mbedtls_mpi_size(&k->rsa.E));
    char *s = str("{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"%s\"%s}", n, e, extra);
    free(n);
    free(e);
    return s;
}

static char *jwk_ec(const tkey_t *k, const char *extra)
{
    char *x = mpi_b64(&k->ec.Q.X, 32), *y = mpi_b64(&k->ec.Q.Y, 32);
    char *s = str("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"%s}", x, y, extra);
    free(x);
    free(y);
    return s;
}

static char *jwk_oct(const tkey_t *k, const char *extra)
{
    char *b = b64url(k->secret, k->secret_len);
    char *s = str("{\"kty\":\"oct\",\"k\":\"%s\"%s}", b, extra);
    free(b);
    return s;
}

/* {"keys":[k1,k2,...]} from a NULL-terminated list of JWKs, which it frees. */
static char *jwks_of(char *first, ...)
{
    va_list ap;
    char *s = str("{\"keys\":["), *k = first;
    va_start(ap, first);
    for (int i = 0; k != NULL; ++i, k = va_arg(ap, char *)) {
        char *t = str("%s%s%s", s, i != 0 ? "," : "", k);
        free(s);
        free(k);
        s = t;
    }
    va_end(ap);
    char *t = str("%s]}", s);
    free(s);
    return t;
}

static gw_jwks_t *load_ok(const char *text)
{
    char *path = write_file(text), err[256] = "";
    gw_jwks_t *j = NULL;
    int rc = gw_jwks_load(path, &j, err, sizeof(err));
    if (rc != 0)
        print_error("unexpected: %s\n", err);
    assert_int_equal(rc, 0);
    assert_non_null(j);
    free(path);
    return j;
}

/* ---- helpers: signing and tokens ---- */

static void sha256(const void *in, size_t len, unsigned char hash[32])
{
    assert_int_equal(mbedtls_sha256_ret(in, len, hash, 0), 0);
}

static size_t hmac(const void *key, size_t keylen, const char *in, size_t inlen, unsigned char *sig)
{
    assert_int_equal(
        mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), key, keylen, (const unsigned char *)in, inlen, sig), 0);
    return 32;
}

/* Signs in[0..inlen) with k as the token's algorithm does; returns the signature's length (sig: 512 bytes). */
static size_t sign(tkey_t *k, const char *in, size_t inlen, unsigned char *sig)
{
    unsigned char hash[32];
    mbedtls_mpi r, s;

    if (k->kind == K_HS)
        return hmac(k->secret, k->secret_len, in, inlen, sig);
    sha256(in, inlen, hash);
    if (k->kind == K_RS) {
        assert_int_equal(mbedtls_rsa_pkcs1_sign(&k->rsa, mbedtls_ctr_drbg_random, &fx.drbg, MBEDTLS_RSA_PRIVATE, MBEDTLS_MD_SHA256,
                                                32, hash, sig),
                         0);
        return mbedtls_rsa_get_len(&k->rsa);
    }
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    assert_int_equal(mbedtls_ecdsa_sign(&k->ec.grp, &r, &s, &k->ec.d, hash, 32, mbedtls_ctr_drbg_random, &fx.drbg), 0);
    assert_int_equal(mbedtls_mpi_write_binary(&r, sig, 32), 0);
    assert_int_equal(mbedtls_mpi_write_binary(&s, sig + 32, 32), 0);
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    return 64;
}

/* "header.payload" (both base64url-encoded). */
static char *signing_input(const char *header, const char *payload)
{
    char *h = b64s(header), *p = b64s(payload), *s = str("%s.%s", h, p);
    free(h);
    free(p);
    return s;
}

/* input "." base64url(sig). */
static char *with_sig(const char *input, const unsigned char *sig, size_t siglen)
{
    char *b = b64url(sig, siglen), *s = str("%s.%s", input, b);
    free(b);
    return s;
}

/* A token of that header and payload (JSON text), signed by k (NULL: an empty signature). */
static char *token_raw(const char *header, const char *payload, tkey_t *k)
{
    unsigned char sig[512] = {0};
    char *in = signing_input(header, payload), *t;
    t = with_sig(in, sig, k != NULL ? sign(k, in, strlen(in), sig) : 0);
    free(in);
    return t;
}

static char *header_of(const char *alg, const char *kid)
{
    return kid != NULL ? str("{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}", alg, kid)
                       : str("{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg);
}

static char *token(const char *alg, const char *kid, const char *payload, tkey_t *k)
{
    char *h = header_of(alg, kid), *t = token_raw(h, payload, k);
    free(h);
    return t;
}

/* The token with the byte at index i of its decoded signature (negative: from the end) xor 1. */
static char *flip_sig(const char *tok, long i)
{
    const char *dot = strrchr(tok, '.');
    unsigned char sig[600];
    long n = gw_b64url_decode(dot + 1, strlen(dot + 1), sig, sizeof(sig));
    char *in = strndup(tok, (size_t)(dot - tok)), *t;
    assert_true(n > 0);
    sig[i >= 0 ? i : n + i] ^= 1;
    t = with_sig(in, sig, (size_t)n);
    free(in);
    return t;
}

static gw_jwt_rules_t rules_all(void)
{
    return (gw_jwt_rules_t){.algorithms = ALL_ALGS, .leeway_s = LEEWAY};
}

/* Verifies a copy of tok[0..len) made in a buffer of exactly len bytes. */
static gw_jwt_error_t verify_n(const gw_jwks_t *j, const gw_jwt_rules_t *r, const char *tok, size_t len, int64_t now, char **claims)
{
    char *copy = malloc(len != 0 ? len : 1);
    gw_jwt_error_t e;
    assert_non_null(copy);
    memcpy(copy, tok, len);
    e = gw_jwt_verify(j, r, copy, len, now, claims);
    free(copy);
    return e;
}

static gw_jwt_error_t verify_r(const gw_jwks_t *j, const gw_jwt_rules_t *r, const char *tok)
{
    char *claims = NULL;
    gw_jwt_error_t e = verify_n(j, r, tok, strlen(tok), NOW, &claims);
    assert_true(e == GW_JWT_OK ? claims != NULL : claims == NULL);
    free(claims);
    return e;
}

/* Verifies with the main JWKS and the default rules. */
static gw_jwt_error_t verify(const char *tok)
{
    gw_jwt_rules_t r = rules_all();
    return verify_r(fx.jwks, &r, tok);
}

/* Verifies then frees tok. */
static gw_jwt_error_t verify_free(char *tok)
{
    gw_jwt_error_t e = verify(tok);
    free(tok);
    return e;
}

static gw_jwt_error_t verify_rules_free(const gw_jwt_rules_t *r, char *tok)
{
    gw_jwt_error_t e = verify_r(fx.jwks, r, tok);
    free(tok);
    return e;
}

/* An HS256 token (key hs1) of that payload. */
static char *hs(const char *payload)
{
    return token("HS256", "hs1", payload, &fx.hs1);
}

/* ---- group setup ---- */

static void make_hs(tkey_t *k, size_t len)
{
    k->kind = K_HS;
    k->secret_len = len;
    assert_int_equal(mbedtls_ctr_drbg_random(&fx.drbg, k->secret, len), 0);
}

static void make_rs(tkey_t *k, unsigned bits)
{
    k->kind = K_RS;
    mbedtls_rsa_init(&k->rsa, MBEDTLS_RSA_PKCS_V15, 0);
    assert_int_equal(mbedtls_rsa_gen_key(&k->rsa, mbedtls_ctr_drbg_random, &fx.drbg, bits, 65537), 0);
}

static void make_es(tkey_t *k)
{
    k->kind = K_ES;
    mbedtls_ecdsa_init(&k->ec);
    assert_int_equal(mbedtls_ecdsa_genkey(&k->ec, MBEDTLS_ECP_DP_SECP256R1, mbedtls_ctr_drbg_random, &fx.drbg), 0);
}

static int group_setup(void **state)
{
    char err[256];

    strcpy(fx.dir, "/tmp/ep-jwt-XXXXXX");
    if (mkdtemp(fx.dir) == NULL)
        return -1;
    mbedtls_entropy_init(&fx.entropy);
    mbedtls_ctr_drbg_init(&fx.drbg);
    if (mbedtls_ctr_drbg_seed(&fx.drbg, mbedtls_entropy_func, &fx.entropy, (const unsigned char *)"jwt", 3) != 0)
        return -1;
    make_rs(&fx.rsa, 2048);
    make_rs(&fx.rsa1024, 1024);
    make_es(&fx.ec1);
    make_es(&fx.ec2);
    make_es(&fx.ec_other);
    make_hs(&fx.hs1, 32);
    make_hs(&fx.hs2, 48);
    make_hs(&fx.hs_other, 32);

    char *text = jwks_of(jwk_rsa(&fx.rsa, ",\"kid\":\"rsa1\",\"use\":\"sig\",\"alg\":\"RS256\""),
                         jwk_ec(&fx.ec1, ",\"kid\":\"ec1\""), jwk_ec(&fx.ec2, ",\"kid\":\"ec2\",\"alg\":\"ES256\""),
                         jwk_oct(&fx.hs1, ",\"kid\":\"hs1\",\"alg\":\"HS256\""), jwk_oct(&fx.hs2, ",\"kid\":\"hs2\""),
                         /* skipped without being checked: too short for a signing key, and an encryption alg */
                         jwk_rsa(&fx.rsa1024, ",\"kid\":\"rsa-enc\",\"use\":\"enc\",\"alg\":\"RSA-OAEP\""), NULL);
    fx.path = write_file(text);
    free(text);
    text = jwks_of(jwk_rsa(&fx.rsa, ",\"kid\":\"rsa1\""), NULL);
    fx.rsa_path = write_file(text);
    free(text);
    if (gw_jwks_load(fx.path, &fx.jwks, err, sizeof(err)) != 0 || gw_jwks_load(fx.rsa_path, &fx.jwks_rsa, err, sizeof(err)) != 0) {
        print_error("%s\n", err);
        return -1;
    }
    *state = &fx;
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static int group_teardown(void **state)
{
    tkey_t *keys[] = {&fx.rsa, &fx.rsa1024, &fx.ec1, &fx.ec2, &fx.ec_other};
    (void)state;
    gw_jwks_free(fx.jwks);
    gw_jwks_free(fx.jwks_rsa);
    free(fx.path);
    free(fx.rsa_path);
    for (size_t i = 0; i != sizeof(keys) / sizeof(keys[0]); ++i) {
        if (keys[i]->kind == K_RS)
            mbedtls_rsa_free(&keys[i]->rsa);
        else
            mbedtls_ecdsa_free(&keys[i]->ec);
    }
    mbedtls_ctr_drbg_free(&fx.drbg);
    mbedtls_entropy_free(&fx.entropy);
    return nftw(fx.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- base64url ---- */

static void expect_decode(const char *in, const char *want)
{
    unsigned char out[64];
    long n = gw_b64url_decode(in, strlen(in), out, sizeof(out));
    if (n != (long)strlen(want))
        print_error("decoding \"%s\"\n", in);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(out, want, n);
}

static void expect_no_decode(const char *in, size_t len)
{
    unsigned char out[64];
    if (gw_b64url_decode(in, len, out, sizeof(out)) != -1)
        print_error("decoding \"%.*s\"\n", (int)len, in);
    assert_int_equal(gw_b64url_decode(in, len, out, sizeof(out)), -1);
}

static void test_b64url_valid(void **state)
{
    unsigned char out[4];
    (void)state;
    /* RFC 4648 10, without and with padding */
    expect_decode("", "");
    expect_decode("Zg", "f");
    expect_decode("Zm8", "fo");
    expect_decode("Zm9v", "foo");
    expect_decode("Zm9vYg", "foob");
    expect_decode("Zm9vYmE", "fooba");
    expect_decode("Zm9vYmFy", "foobar");
    expect_decode("Zg==", "f");
    expect_decode("Zm8=", "fo");
    expect_decode("Zm9vYg==", "foob");
    expect_decode("Zm9vYmE=", "fooba");
    /* the two characters that differ from base64 */
    assert_int_equal(gw_b64url_decode("-_8", 3, out, sizeof(out)), 2);
    assert_int_equal(out[0], 0xfb);
    assert_int_equal(out[1], 0xff);
    assert_int_equal(gw_b64url_decode(NULL, 0, NULL, 0), 0);
}

static void test_b64url_invalid(void **state)
{
    (void)state;
    expect_no_decode("Z", 1);     /* 6 bits are not a byte */
    expect_no_decode("Zm9vY", 5); /* likewise after a group */
    expect_no_decode("Zg=", 3);   /* padding that does not complete the group */
    expect_no_decode("Zg===", 5); /* too much padding */
    expect_no_decode("Zm9v=", 5); /* padding after a full group */
    expect_no_decode("=", 1);
    expect_no_decode("==", 2);
    expect_no_decode("====", 4);
    expect_no_decode("Zg=g", 4); /* '=' inside */
    expect_no_decode("Z=g=", 4);
    expect_no_decode("Zm+v", 4); /* base64, not base64url */
    expect_no_decode("Zm/v", 4);
    expect_no_decode("Zm9v\n", 5);
    expect_no_decode(" Zm9v", 5);
    expect_no_decode("Zm.v", 4);
    expect_no_decode("Zm\0v", 4);
    expect_no_decode("Zm9v\x80", 5);
    expect_no_decode("Zh", 2);  /* unused bits not zero: "Zg" is the encoding of "f" */
    expect_no_decode("Zm9", 3); /* "Zm8" is the encoding of "fo" */
    expect_no_decode("Zh==", 4);
}

static void test_b64url_bounds(void **state)
{
    unsigned char out[300], data[256];
    char *heap;
    (void)state;

    /* outcap: exactly the decoded length is enough, one less is not */
    assert_int_equal(gw_b64url_decode("Zm9v", 4, out, 2), -1);
    assert_int_equal(gw_b64url_decode("Zm9v", 4, out, 3), 3);
    assert_int_equal(gw_b64url_decode("Zm8=", 4, out, 1), -1);
    assert_int_equal(gw_b64url_decode("Zm8=", 4, out, 2), 2);
    assert_int_equal(gw_b64url_decode("", 0, out, 0), 0);
    /* reads only in[0..len): "Zm9v" inside a longer buffer, and in a heap buffer of exactly 4 bytes */
    assert_int_equal(gw_b64url_decode("Zm9vYmFy", 4, out, sizeof(out)), 3);
    assert_memory_equal(out, "foo", 3);
    heap = malloc(4);
    assert_non_null(heap);
    memcpy(heap, "Zg==", 4);
    assert_int_equal(gw_b64url_decode(heap, 4, out, sizeof(out)), 1);
    memcpy(heap, "====", 4);
    assert_int_equal(gw_b64url_decode(heap, 4, out, sizeof(out)), -1);
    free(heap);
    /* every byte value and every length round-trip through the test's encoder */
    for (size_t i = 0; i != sizeof(data); ++i)
        data[i] = (unsigned char)(255 - i);
    for (size_t len = 0; len <= sizeof(data); ++len) {
        char *enc = b64url(data, len);
        assert_int_equal(gw_b64url_decode(enc, strlen(enc), out, len), len);
        assert_memory_equal(out, data, len);
        free(enc);
    }
}

/* ---- JWKS ---- */

static void test_jwks_load(void **state)
{
    gw_jwks_t *j;
    (void)state;
    /* rsa1, ec1, ec2, hs1, hs2: the "enc" key is skipped */
    assert_int_equal(gw_jwks_count(fx.jwks), 5);
    assert_int_equal(gw_jwks_count(fx.jwks_rsa), 1);
    assert_int_equal(gw_jwks_count(NULL), 0);
    gw_jwks_free(NULL);
    /* members of no use here are ignored (RFC 7517 4), and so are those of the set */
    j = load_ok("{\"keys\":[{\"kty\":\"oct\",\"k\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\",\"use\":\"sig\",\"x5t\":\"abc\","
                "\"key_ops\":[\"verify\"]}],"
                "\"other\":1}");
    assert_int_equal(gw_jwks_count(j), 1);
    gw_jwks_free(j);
}

typedef struct bad_jwks {
    char *text;       /* the file, or NULL: no file */
    const char *want; /* in the message */
} bad_jwks_t;

static void expect_load_error(const char *text, const char *want)
{
    char *path = text != NULL ? write_file(text) : str("%s/missing.json", fx.dir), err[512] = "";
    gw_jwks_t *j = (gw_jwks_t *)&fx; /* must be reset */
    int rc = gw_jwks_load(path, &j, err, sizeof(err));

    if (rc != -1 || strstr(err, path) != err || strstr(err, want) == NULL)
        print_error("file %s\nwant: %s\ngot: %d %s\n", text != NULL ? text : "(missing)", want, rc, err);
    assert_int_equal(rc, -1);
    assert_null(j);
    assert_ptr_equal(strstr(err, path), err); /* the message starts with the path */
    assert_non_null(strstr(err, want));
    free(path);
}

static void test_jwks_load_errors(void **state)
{
    char *rsa = jwk_rsa(&fx.rsa, ""), *ec = jwk_ec(&fx.ec1, ""), *oct = jwk_oct(&fx.hs1, ""), *small = jwk_rsa(&fx.rsa1024, "");
    char *x = mpi_b64(&fx.ec1.ec.Q.X, 32), *y = mpi_b64(&fx.ec1.ec.Q.Y, 32), *x31, *yoff;
    unsigned char buf[32];
    (void)state;

    assert_int_equal(mbedtls_mpi_write_binary(&fx.ec1.ec.Q.Y, buf, 32), 0);
    buf[31] ^= 1; /* (x, y') is not on the curve */
    yoff = b64url(buf, 32);
    x31 = b64url(buf, 31);
    rsa[strlen(rsa) - 1] = '\0'; /* without the '}': extra members may follow */
    ec[strlen(ec) - 1] = '\0';
    oct[strlen(oct) - 1] = '\0';

    bad_jwks_t cases[] = {
        {NULL, "No such file or directory"},
        {str("{\"keys\": ["), "line 1"},
        {str("\n\n{\"keys\": [}"), "line 3"},
        {str("[]"), "no \"keys\" array"},
        {str("{}"), "no \"keys\" array"},
        {str("{\"keys\": {}}"), "no \"keys\" array"},
        {str("{\"keys\": [], \"keys\": []}"), "duplicate"},
        {str("{\"keys\": []}"), "no usable key"},
        {str("{\"keys\": [%s,\"use\":\"enc\"}]}", rsa), "no usable key"},
        {str("{\"keys\": [1]}"), "keys[0]: not an object"},
        {str("{\"keys\": [%s}, {\"kty\":\"RSA\",\"e\":\"AQAB\"}]}", ec), "keys[1]: RSA key without \"n\""},
        {str("{\"keys\": [{\"kty\":\"RSA\",\"n\":\"AQAB\"}]}"), "keys[0]: RSA key without \"e\""},
        {str("{\"keys\": [{\"kty\":\"RSA\",\"n\":\"a+b/\",\"e\":\"AQAB\"}]}"), "RSA key: \"n\" is not base64url"},
        {str("{\"keys\": [{\"kty\":\"RSA\",\"n\":\"\",\"e\":\"AQAB\"}]}"), "RSA key: \"n\" is empty"},
        {str("{\"keys\": [{\"kty\":\"RSA\",\"n\":7,\"e\":\"AQAB\"}]}"), "\"n\" is not a string"},
        {str("{\"keys\": [%s]}", small), "RSA key of 1024 bits (at least 2048"},
        {str("{\"keys\": [{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"AQ\"}]}", x), "not a valid public key"},
        {str("{\"keys\": [{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"%s\",\"y\":\"%s\"}]}", x, y), "EC key with crv \"P-384\""},
        {str("{\"keys\": [{\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}]}", x, y), "EC key without \"crv\""},
        {str("{\"keys\": [{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\"}]}", x), "EC key without \"y\""},
        {str("{\"keys\": [{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}]}", x31, y), "must be 32 bytes"},
        {str("{\"keys\": [{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}]}", x, yoff), "not a point of P-256"},
        {str("{\"keys\": [{\"kty\":\"oct\"}]}"), "oct key without \"k\""},
        {str("{\"keys\": [{\"kty\":\"oct\",\"k\":\"\"}]}"), "oct key: \"k\" is empty"},
        {str("{\"keys\": [{\"kty\":\"oct\",\"k\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}]}"),
         "oct key of 31 bytes (at least 32"},
        {str("{\"keys\": [%s,\"alg\":\"ES256\"}]}", rsa), "alg \"ES256\" is not for a key of kty \"RSA\""},
        {str("{\"keys\": [%s,\"alg\":\"RS256\"}]}", oct), "alg \"RS256\" is not for a key of kty \"oct\""},
        {str("{\"keys\": [%s,\"alg\":\"HS256\"}]}", ec), "alg \"HS256\" is not for a key of kty \"EC\""},
        {str("{\"keys\": [%s,\"alg\":\"RS512\"}]}", rsa), "unsupported alg \"RS512\""},
        {str("{\"keys\": [%s,\"alg\":\"none\"}]}", oct), "unsupported alg \"none\""},
        {str("{\"keys\": [%s,\"alg\":256}]}", oct), "\"alg\" is not a string"},
        {str("{\"keys\": [{\"k\":\"AAAAAAAAAAAAAAAAAAAAAA\"}]}"), "a key without \"kty\""},
        {str("{\"keys\": [{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AA\"}]}"), "unsupported kty \"OKP\""},
        {str("{\"keys\": [{\"kty\":\"oct\\n\\u00e9\",\"k\":\"AA\"}]}"), "unsupported kty \"oct???\""},
        {str("{\"keys\": [{\"kty\":1}]}"), "\"kty\" is not a string"},
        {str("{\"keys\": [%s,\"use\":1}]}", oct), "\"use\" is not a string"},
        {str("{\"keys\": [%s,\"kid\":5}]}", oct), "\"kid\" is not a string"},
    };
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        expect_load_error(cases[i].text, cases[i].want);
        free(cases[i].text);
    }
    free(rsa), free(ec), free(oct), free(small), free(x), free(y), free(x31), free(yoff);
}

static void test_jwks_load_error_buffer(void **state)
{
    char *path = str("%s/missing.json", fx.dir), err[8];
    gw_jwks_t *j = NULL;
    (void)state;
    memset(err, 'x', sizeof(err));
    assert_int_equal(gw_jwks_load(path, &j, err, sizeof(err)), -1);
    assert_int_equal(strlen(err), sizeof(err) - 1); /* truncated, terminated */
    assert_int_equal(gw_jwks_load(path, &j, NULL, 0), -1);
    assert_null(j);
    free(path);
}

/* ---- verification ---- */

static void test_verify_each_alg(void **state)
{
    struct {
        const char *alg, *kid;
        tkey_t *key;
    } cases[] = {
        {"RS256", "rsa1", &fx.rsa}, {"ES256", "ec1", &fx.ec1}, {"ES256", "ec2", &fx.ec2},
        {"HS256", "hs1", &fx.hs1},  {"HS256", "hs2", &fx.hs2},
    };
    gw_jwt_rules_t r = rules_all();
    (void)state;

    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        char *t = token(cases[i].alg, cases[i].kid, PAYLOAD, cases[i].key), *claims = NULL;
        assert_int_equal(verify_n(fx.jwks, &r, t, strlen(t), NOW, &claims), GW_JWT_OK);
        assert_string_equal(claims, PAYLOAD);
        free(claims);
        assert_int_equal(verify_n(fx.jwks, &r, t, strlen(t), NOW, NULL), GW_JWT_OK);
        free(t);
    }
    /* "typ" is not looked at; neither are jku/x5u (keys come only from the JWKS) */
    assert_int_equal(verify_free(token_raw("{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}", PAYLOAD, &fx.hs1)), GW_JWT_OK);
    assert_int_equal(verify_free(token_raw("{\"typ\":7,\"alg\":\"HS256\"}", PAYLOAD, &fx.hs1)), GW_JWT_OK);
    assert_int_equal(verify_free(token_raw("{\"alg\":\"ES256\",\"jku\":\"https://evil.example/jwks\"}", PAYLOAD, &fx.ec1)),
                     GW_JWT_OK);
    /* minimal claims */
    assert_int_equal(verify_free(hs("{}")), GW_JWT_OK);
}

static void test_verify_kid_selects_key(void **state)
{
    (void)state;
    /* a kid names the key: no fallback to the others */
    assert_int_equal(verify_free(token("ES256", "ec1", PAYLOAD, &fx.ec2)), GW_JWT_BAD_SIGNATURE);
    assert_int_equal(verify_free(token("ES256", "ec2", PAYLOAD, &fx.ec1)), GW_JWT_BAD_SIGNATURE);
    assert_int_equal(verify_free(token("HS256", "hs1", PAYLOAD, &fx.hs2)), GW_JWT_BAD_SIGNATURE);
    assert_int_equal(verify_free(token("HS256", "hs2", PAYLOAD, &fx.hs2)), GW_JWT_OK);
}

static void test_verify_without_kid(void **state)
{
    (void)state;
    /* every key of the alg's type is tried */
    assert_int_equal(verify_free(token("RS256", NULL, PAYLOAD, &fx.rsa)), GW_JWT_OK);
    assert_int_equal(verify_free(token("ES256", NULL, PAYLOAD, &fx.ec1)), GW_JWT_OK);
    assert_int_equal(verify_free(token("ES256", NULL, PAYLOAD, &fx.ec2)), GW_JWT_OK);
    assert_int_equal(verify_free(token("HS256", NULL, PAYLOAD, &fx.hs1)), GW_JWT_OK);
    assert_int_equal(verify_free(token("HS256", NULL, PAYLOAD, &fx.hs2)), GW_JWT_OK);
    /* none verifies */
    assert_int_equal(verify_free(token("ES256", NULL, PAYLOAD, &fx.ec_other)), GW_JWT_BAD_SIGNATURE);
    assert_int_equal(verify_free(token("HS256", NULL, PAYLOAD, &fx.hs_other)), GW_JWT_BAD_SIGNATURE);
}

static void test_verify_no_key(void **state)
{
    gw_jwt_rules_t r = rules_all();
    char *t;
    (void)state;

    assert_int_equal(verify_free(token("HS256", "nope", PAYLOAD, &fx.hs1)), GW_JWT_NO_KEY);
    assert_int_equal(verify_free(token("ES256", "EC1", PAYLOAD, &fx.ec1)), GW_JWT_NO_KEY); /* kids are case-sensitive */
    assert_int_equal(verify_free(token("ES256", "", PAYLOAD, &fx.ec1)), GW_JWT_NO_KEY);
    assert_int_equal(verify_free(token("RS256", "rsa-enc", PAYLOAD, &fx.rsa1024)), GW_JWT_NO_KEY); /* skipped key */
    /* a kid of the right name but with a NUL inside (JSON refuses \u0000) */
    assert_int_equal(verify_free(token_raw("{\"alg\":\"HS256\",\"kid\":\"hs1\\u0000x\"}", PAYLOAD, &fx.hs1)), GW_JWT_MALFORMED);
    /* without kid, no key of the alg's type */
    t = token("ES256", NULL, PAYLOAD, &fx.ec1);
    assert_int_equal(verify_r(fx.jwks_rsa, &r, t), GW_JWT_NO_KEY);
    free(t);
    t = token("HS256", NULL, PAYLOAD, &fx.hs1);
    assert_int_equal(verify_r(fx.jwks_rsa, &r, t), GW_JWT_NO_KEY);
    assert_int_equal(verify_r(NULL, &r, t), GW_JWT_NO_KEY);
    free(t);
    t = token("RS256", NULL, PAYLOAD, &fx.rsa);
    assert_int_equal(verify_r(fx.jwks_rsa, &r, t), GW_JWT_OK);
    free(t);
}

static void test_verify_bad_signature(void **state)
{
    struct {
        const char *alg, *kid;
        tkey_t *key;
    } cases[] = {{"RS256", "rsa1", &fx.rsa}, {"ES256", "ec1", &fx.ec1}, {"HS256", "hs1", &fx.hs1}, {"HS256", NULL, &fx.hs2}};
    (void)state;

    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        char *t = token(cases[i].alg, cases[i].kid, PAYLOAD, cases[i].key), *h = header_of(cases[i].alg, cases[i].kid);
        char *in = signing_input(h, "{\"sub\":\"mallory\", \"exp\":1700000600,\"n\":[1, 2]}"), *swapped;
        assert_int_equal(verify(t), GW_JWT_OK);
        assert_int_equal(verify_free(flip_sig(t, 0)), GW_JWT_BAD_SIGNATURE);
        assert_int_equal(verify_free(flip_sig(t, 17)), GW_JWT_BAD_SIGNATURE);
        assert_int_equal(verify_free(flip_sig(t, -1)), GW_JWT_BAD_SIGNATURE);
        /* another payload under the same signature */
        swapped = str("%s%s", in, strrchr(t, '.'));
        assert_int_equal(verify_free(swapped), GW_JWT_BAD_SIGNATURE);
        /* no signature */
        free(in);
        in = signing_input(h, PAYLOAD);
        assert_int_equal(verify_free(str("%s.", in)), GW_JWT_BAD_SIGNATURE);
        free(in);
        free(h);
        free(t);
    }
}

static void test_verify_alg_none(void **state)
{
    const char *algs[] = {"none",  "None",  "NONE",  "nOnE",  "HS512",  "HS384", "RS512",
                          "ES384", "PS256", "EdDSA", "hs256", "HS256 ", ""};
    (void)state;

    for (size_t i = 0; i != sizeof(algs) / sizeof(algs[0]); ++i) {
        char *h = str("{\"alg\":\"%s\"}", algs[i]), *hk = str("{\"alg\":\"%s\",\"kid\":\"hs1\"}", algs[i]);
        /* unsigned, and signed with a key of the set */
        assert_int_equal(verify_free(token_raw(h, PAYLOAD, NULL)), GW_JWT_BAD_ALG);
        assert_int_equal(verify_free(token_raw(h, PAYLOAD, &fx.hs1)), GW_JWT_BAD_ALG);
        assert_int_equal(verify_free(token_raw(hk, PAYLOAD, &fx.hs1)), GW_JWT_BAD_ALG);
        free(h);
        free(hk);
    }
    /* alg of the wrong type, or missing */
    assert_int_equal(verify_free(token_raw("{\"alg\":null}", PAYLOAD, NULL)), GW_JWT_MALFORMED);
    assert_int_equal(verify_free(token_raw("{\"alg\":256}", PAYLOAD, &fx.hs1)), GW_JWT_MALFORMED);
    assert_int_equal(verify_free(token_raw("{\"alg\":[\"HS256\"]}", PAYLOAD, &fx.hs1)), GW_JWT_MALFORMED);
    assert_int_equal(verify_free(token_raw("{\"typ\":\"JWT\"}", PAYLOAD, &fx.hs1)), GW_JWT_MALFORMED);
}

/* An HS256 token HMACed with secret[0..len), with kid or not. */
static char *hs_with(const char *kid, const void *secret, size_t len)
{
    unsigned char sig[32];
    char *h = header_of("HS256", kid), *in = signing_input(h, PAYLOAD), *t;
    hmac(secret, len, in, strlen(in), sig);
    t = with_sig(in, sig, sizeof(sig));
    free(h);
    free(in);
    return t;
}

static void test_verify_hs_rs_confusion(void **state)
{
    unsigned char der[1024], n[256], pem[1024];
    mbedtls_pk_context pk;
    char *jwk = jwk_rsa(&fx.rsa, ",\"kid\":\"rsa1\""), *nb64;
    gw_jwt_rules_t r = rules_all();
    int derlen;
    (void)state;

    /* what an attacker may take as the "secret": the public key in each of its usual forms */
    mbedtls_pk_init(&pk);
    assert_int_equal(mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_RSA)), 0);
    assert_int_equal(mbedtls_rsa_copy(mbedtls_pk_rsa(pk), &fx.rsa.rsa), 0);
    derlen = mbedtls_pk_write_pubkey_der(&pk, der, sizeof(der));
    assert_true(derlen > 256);
    assert_int_equal(mbedtls_pk_write_pubkey_pem(&pk, pem, sizeof(pem)), 0);
    assert_int_equal(mbedtls_mpi_write_binary(&fx.rsa.rsa.N, n, sizeof(n)), 0);
    nb64 = b64url(n, sizeof(n));
    struct {
        const void *p;
        size_t len;
    } secrets[] = {
        {der + sizeof(der) - derlen, (size_t)derlen},
        {pem, strlen((char *)pem)},
        {n, sizeof(n)},
        {nb64, strlen(nb64)},
        {jwk, strlen(jwk)},
    };
    for (size_t i = 0; i != sizeof(secrets) / sizeof(secrets[0]); ++i) {
        char *with_kid = hs_with("rsa1", secrets[i].p, secrets[i].len), *without = hs_with(NULL, secrets[i].p, secrets[i].len);
        /* the kid names the RSA key: HS256 is not its algorithm */
        assert_int_equal(verify_r(fx.jwks, &r, with_kid), GW_JWT_BAD_ALG);
        assert_int_equal(verify_r(fx.jwks_rsa, &r, with_kid), GW_JWT_BAD_ALG);
        /* without kid only oct keys are tried: none verifies, or there is none */
        assert_int_equal(verify_r(fx.jwks, &r, without), GW_JWT_BAD_SIGNATURE);
        assert_int_equal(verify_r(fx.jwks_rsa, &r, without), GW_JWT_NO_KEY);
        free(with_kid);
        free(without);
    }
    /* the other confusions: a kid naming a key of another type */
    assert_int_equal(verify_free(token("ES256", "rsa1", PAYLOAD, &fx.ec1)), GW_JWT_BAD_ALG);
    assert_int_equal(verify_free(token("RS256", "hs1", PAYLOAD, &fx.rsa)), GW_JWT_BAD_ALG);
    assert_int_equal(verify_free(token("RS256", "ec1", PAYLOAD, &fx.rsa)), GW_JWT_BAD_ALG);
    assert_int_equal(verify_free(token("HS256", "ec2", PAYLOAD, &fx.hs1)), GW_JWT_BAD_ALG);
    free(nb64);
    free(jwk);
    mbedtls_pk_free(&pk);
}

static void test_verify_shared_kid(void **state)
{
    /* RFC 7517 4.5: keys of different types may share a kid; two keys of one type with one kid are both tried */
    char *text =
        jwks_of(jwk_oct(&fx.hs1, ",\"kid\":\"k\""), jwk_ec(&fx.ec1, ",\"kid\":\"k\""), jwk_oct(&fx.hs2, ",\"kid\":\"k\""), NULL);
    gw_jwks_t *j = load_ok(text);
    gw_jwt_rules_t r = rules_all();
    char *t;
    (void)state;

    t = token("HS256", "k", PAYLOAD, &fx.hs1);
    assert_int_equal(verify_r(j, &r, t), GW_JWT_OK);
    free(t);
    t = token("HS256", "k", PAYLOAD, &fx.hs2);
    assert_int_equal(verify_r(j, &r, t), GW_JWT_OK);
    free(t);
    t = token("ES256", "k", PAYLOAD, &fx.ec1);
    assert_int_equal(verify_r(j, &r, t), GW_JWT_OK);
    free(t);
    t = token("ES256", "k", PAYLOAD, &fx.ec2);
    assert_int_equal(verify_r(j, &r, t), GW_JWT_BAD_SIGNATURE);
    free(t);
    t = token("RS256", "k", PAYLOAD, &fx.rsa);
    assert_int_equal(verify_r(j, &r, t), GW_JWT_BAD_ALG);
    free(t);
    gw_jwks_free(j);
    free(text);
}

static void test_verify_algorithms_rule(void **state)
{
    gw_jwt_rules_t r = rules_all();
    (void)state;

    r.algorithms = CONF_JWT_RS256 | CONF_JWT_ES256;
    assert_int_equal(verify_rules_free(&r, token("HS256", "hs1", PAYLOAD, &fx.hs1)), GW_JWT_BAD_ALG);
    assert_int_equal(verify_rules_free(&r, token("RS256", "rsa1", PAYLOAD, &fx.rsa)), GW_JWT_OK);
    assert_int_equal(verify_rules_free(&r, token("ES256", "ec1", PAYLOAD, &fx.ec1)), GW_JWT_OK);
    r.algorithms = CONF_JWT_HS256;
    assert_int_equal(verify_rules_free(&r, token("HS256", "hs1", PAYLOAD, &fx.hs1)), GW_JWT_OK);
    assert_int_equal(verify_rules_free(&r, token("RS256", "rsa1", PAYLOAD, &fx.rsa)), GW_JWT_BAD_ALG);
    assert_int_equal(verify_rules_free(&r, token("ES256", NULL, PAYLOAD, &fx.ec1)), GW_JWT_BAD_ALG);
    /* checked before the key: an unknown kid with a refused alg */
    assert_int_equal(verify_rules_free(&r, token("ES256", "nope", PAYLOAD, &fx.ec1)), GW_JWT_BAD_ALG);
    r.algorithms = 0;
    assert_int_equal(verify_rules_free(&r, token("HS256", "hs1", PAYLOAD, &fx.hs1)), GW_JWT_BAD_ALG);
}

/* An HS256 token whose claims are the JSON text of fmt, checked with leeway at NOW. */
__attribute__((format(printf, 2, 3))) static gw_jwt_error_t check_claims(const gw_jwt_rules_t *r, const char *fmt, ...)
{
    va_list ap;
    char *payload, *t;
    gw_jwt_error_t e;

    va_start(ap, fmt);
    assert_true(vasprintf(&payload, fmt, ap) >= 0);
    va_end(ap);
    t = hs(payload);
    e = verify_r(fx.jwks, r, t);
    free(t);
    free(payload);
    return e;
}

static void test_verify_exp(void **state)
{
    gw_jwt_rules_t r = rules_all();
    (void)state;

    assert_int_equal(check_claims(&r, "{\"exp\":%lld}", NOW + 600), GW_JWT_OK);
    assert_int_equal(check_claims(&r, "{\"exp\":%lld}", NOW), GW_JWT_OK);
    assert_int_equal(check_claims(&r, "{\"exp\":%lld}", NOW - LEEWAY + 1), GW_JWT_OK);
    assert_int_equal(check_claims(&r, "{\"exp\":%lld}", NOW - LEEWAY), GW_JWT_EXPIRED);       /* "on or after" exp */
    assert_int_equal(check_claims(&r, "{\"exp\":%lld.5}", NOW - LEEWAY - 1), GW_JWT_EXPIRED); /* a real: NOW - 30.5 */
    assert_int_equal(check_claims(&r, "{\"exp\":%lld.5}", NOW - LEEWAY), GW_JWT_OK);
    assert_int_equal(check_claims(&r, "{\"exp\":%lld.0}", NOW - LEEWAY), GW_JWT_EXPIRED);
    assert_int_equal(check_claims(&r, "{\"exp\":%lldE0}", NOW - LEEWAY - 1), GW_JWT_EXPIRED);
    assert_int_equal(check_claims(&r, "{\"exp\":1e300}"), GW_JWT_OK);
    assert_int_equal(check_claims(&r, "{\"exp\":-1e300}"), GW_JWT_EXPIRED);
    assert_int_equal(check_claims(&r, "{\"exp\":9223372036854775807}"), GW_JWT_OK);
    assert_int_equal(check_claims(&r, "{\"exp\":-9223372036854775808}"), GW_JWT_EXPIRED);
    assert_int_equal(check_claims(&r, "{\"exp\":0}"), GW_JWT_EXPIRED);
    /* no leeway, and a negative one counts as none */
    r.leeway_s = 0;
    assert_int_equal(check_claims(&r, "{\"exp\":%lld}", NOW + 1), GW_JWT_OK);
    assert_int_equal(check_claims(&r, "{\"exp\":%lld}", NOW), GW_JWT_EXPIRED);
    r.leeway_s = -100;
    assert_int_equal(check_claims(&r, "{\"exp\":%lld}", NOW + 1), GW_JWT_OK);
    assert_int_equal(check_claims(&r, "{\"exp\":%lld}", NOW), GW_JWT_EXPIRED);
    /* not numbers */
    r = rules_all();
    assert_int_equal(check_claims(&r, "{\"exp\":\"%lld\"}", NOW + 600), GW_JWT_MALFORMED);
    assert_int_equal(check_claims(&r, "{\"exp\":null}"), GW_JWT_MALFORMED);
    assert_int_equal(check_claims(&r, "{\"exp\":true}"), GW_JWT_MALFORMED);
    assert_int_equal(check_claims(&r, "{\"exp\":[%lld]}", NOW + 600), GW_JWT_MALFORMED);
    assert_int_equal(check_claims(&r, "{\"exp\":{}}"), GW_JWT_MALFORMED);
}

static void test_verify_exp_extreme_now(void **state)
{
    gw_jwt_rules_t r = rules_all();
    char *t = hs("{\"exp\":-9223372036854775808,\"nbf\":9223372036854775807}");
    char *t2 = hs("{\"exp\":9223372036854775807,\"nbf\":-9223372036854775808}");
    (void)state;

    /* now +- leeway saturates: no overflow (UBSan), and the comparisons still hold */
    /* exp is checked first: at now = exp (INT64_MIN) the token is expired ("on or after") */
    assert_int_equal(verify_n(fx.jwks, &r, t, strlen(t), INT64_MIN, NULL), GW_JWT_EXPIRED);
    assert_int_equal(verify_n(fx.jwks, &r, t, strlen(t), INT64_MAX, NULL), GW_JWT_EXPIRED);
    assert_int_equal(verify_n(fx.jwks, &r, t2, strlen(t2), INT64_MIN, NULL), GW_JWT_OK);
    assert_int_equal(verify_n(fx.jwks, &r, t2, strlen(t2), INT64_MAX, NULL), GW_JWT_OK);
    r.leeway_s = INT64_MAX;
    assert_int_equal(verify_n(fx.jwks, &r, t2, strlen(t2), INT64_MIN, NULL), GW_JWT_OK);
    assert_int_equal(verify_n(fx.jwks, &r, t, strlen(t), INT64_MIN, NULL), GW_JWT_EXPIRED);
    free(t);
    free(t2);
}

static void test_verify_nbf(void **state)
{
    gw_jwt_rules_t r = rules_all();
    (void)state;

    assert_int_equal(check_claims(&r, "{\"nbf\":%lld}", NOW - 600), GW_JWT_OK);
    assert_int_equal(check_claims(&r, "{\"nbf\":%lld}", NOW), GW_JWT_OK);
    assert_int_equal(check_claims(&r, "{\"nbf\":%lld}", NOW + LEEWAY), GW_JWT_OK);
    assert_int_equal(check_claims(&r, "{\"nbf\":%lld}", NOW + LEEWAY + 1), GW_JWT_NOT_YET_VALID);
    assert_int_equal(check_claims(&r, "{\"nbf\":%lld.5}", NOW + LEEWAY), GW_JWT_NOT_YET_VALID);
    assert_int_equal(check_claims(&r, "{\"nbf\":%lld.5}", NOW + LEEWAY - 1), GW_JWT_OK);
    assert_int_equal(check_claims(&r, "{\"nbf\":1e300}"), GW_JWT_NOT_YET_VALID);
    assert_int_equal(check_claims(&r, "{\"nbf\":%lld,\"exp\":%lld}", NOW - 10, NOW + 10), GW_JWT_OK);
    r.leeway_s = 0;
    assert_int_equal(check_claims(&r, "{\"nbf\":%lld}", NOW), GW_JWT_OK);
    assert_int_equal(check_claims(&r, "{\"nbf\":%lld}", NOW + 1), GW_JWT_NOT_YET_VALID);
    assert_int_equal(check_claims(&r, "{\"nbf\":\"%lld\"}", NOW), GW_JWT_MALFORMED);
    assert_int_equal(check_claims(&r, "{\"nbf\":false}"), GW_JWT_MALFORMED);
}

static void test_verify_issuer(void **state)
{
    gw_jwt_rules_t r = rules_all();
    (void)state;

    /* not checked without the rule */
    assert_int_equal(check_claims(&r, "{\"iss\":\"anyone\"}"), GW_JWT_OK);
    assert_int_equal(check_claims(&r, "{\"iss\":7}"), GW_JWT_OK);
    r.issuer = "https://issuer.example";
    assert_int_equal(check_claims(&r, "{\"iss\":\"https://issuer.example\"}"), GW_JWT_OK);
    assert_int_equal(check_claims(&r, "{\"iss\":\"https:\\/\\/issuer.example\"}"), GW_JWT_OK); /* JSON escapes */
    assert_int_equal(check_claims(&r, "{\"iss\":\"https://issuer.example/\"}"), GW_JWT_BAD_ISSUER);
    assert_int_equal(check_claims(&r, "{\"iss\":\"https://issuer.exampl\"}"), GW_JWT_BAD_ISSUER);
    assert_int_equal(check_claims(&r, "{\"iss\":\"HTTPS://issuer.example\"}"), GW_JWT_BAD_ISSUER);
    assert_int_equal(check_claims(&r, "{\"iss\":\"\"}"), GW_JWT_BAD_ISSUER);
    assert_int_equal(check_claims(&r, "{\"sub\":\"alice\"}"), GW_JWT_BAD_ISSUER);
    assert_int_equal(check_claims(&r, "{\"iss\":[\"https://issuer.example\"]}"), GW_JWT_MALFORMED);
    assert_int_equal(check_claims(&r, "{\"iss\":null}"), GW_JWT_MALFORMED);
}

static void test_verify_audience(void **state)
{
    char *auds[] = {"api", "billing"};
    gw_jwt_rules_t r = rules_all();
    (void)state;

    /* not checked without the rule */
    assert_int_equal(check_claims(&r, "{\"aud\":7}"), GW_JWT_OK);
    r.audiences = auds;
    r.naudiences = 2;
    assert_int_equal(check_claims(&r, "{\"aud\":\"api\"}"), GW_JWT_OK);
    assert_int_equal(check_claims(&r, "{\"aud\":\"billing\"}"), GW_JWT_OK);
    assert_int_equal(check_claims(&r, "{\"aud\":[\"other\",\"billing\"]}"), GW_JWT_OK);
    assert_int_equal(check_claims(&r, "{\"aud\":[\"api\"]}"), GW_JWT_OK);
    assert_int_equal(check_claims(&r, "{\"aud\":[\"api\",\"other\"]}"), GW_JWT_OK);
    assert_int_equal(check_claims(&r, "{\"aud\":\"API\"}"), GW_JWT_BAD_AUDIENCE);
    assert_int_equal(check_claims(&r, "{\"aud\":\"apis\"}"), GW_JWT_BAD_AUDIENCE);
    assert_int_equal(check_claims(&r, "{\"aud\":\"api billing\"}"), GW_JWT_BAD_AUDIENCE);
    assert_int_equal(check_claims(&r, "{\"aud\":[\"other\"]}"), GW_JWT_BAD_AUDIENCE);
    assert_int_equal(check_claims(&r, "{\"aud\":[]}"), GW_JWT_BAD_AUDIENCE);
    assert_int_equal(check_claims(&r, "{\"sub\":\"alice\"}"), GW_JWT_BAD_AUDIENCE);
    assert_int_equal(check_claims(&r, "{\"aud\":7}"), GW_JWT_MALFORMED);
    assert_int_equal(check_claims(&r, "{\"aud\":[\"api\",7]}"), GW_JWT_MALFORMED);
    assert_int_equal(check_claims(&r, "{\"aud\":{\"api\":1}}"), GW_JWT_MALFORMED);
    r.naudiences = 1; /* only "api" */
    assert_int_equal(check_claims(&r, "{\"aud\":\"billing\"}"), GW_JWT_BAD_AUDIENCE);
}

static void test_verify_order(void **state)
{
    char *auds[] = {"api"};
    gw_jwt_rules_t r = rules_all();
    char *t;
    (void)state;

    r.issuer = "https://issuer.example";
    r.audiences = auds;
    r.naudiences = 1;
    /* signature before claims */
    t = hs("{\"exp\":1,\"iss\":\"x\",\"aud\":\"x\"}");
    assert_int_equal(verify_rules_free(&r, flip_sig(t, 3)), GW_JWT_BAD_SIGNATURE);
    free(t);
    t = hs("{\"exp\":\"soon\"}");
    assert_int_equal(verify_rules_free(&r, flip_sig(t, 3)), GW_JWT_BAD_SIGNATURE);
    free(t);
    /* then exp, nbf, iss, aud */
    assert_int_equal(check_claims(&r, "{\"exp\":1,\"nbf\":1e300,\"iss\":\"x\",\"aud\":\"x\"}"), GW_JWT_EXPIRED);
    assert_int_equal(check_claims(&r, "{\"nbf\":1e300,\"iss\":\"x\",\"aud\":\"x\"}"), GW_JWT_NOT_YET_VALID);
    assert_int_equal(check_claims(&r, "{\"iss\":\"x\",\"aud\":\"x\"}"), GW_JWT_BAD_ISSUER);
    assert_int_equal(check_claims(&r, "{\"iss\":\"https://issuer.example\",\"aud\":\"x\"}"), GW_JWT_BAD_AUDIENCE);
    assert_int_equal(check_claims(&r, "{\"iss\":\"https://issuer.example\",\"aud\":\"api\",\"exp\":%lld}", NOW), GW_JWT_OK);
    /* structure before alg, alg before key */
    assert_int_equal(verify_rules_free(&r, token_raw("{\"alg\":\"none\",\"crit\":[\"b64\"]}", PAYLOAD, NULL)), GW_JWT_MALFORMED);
    assert_int_equal(verify_rules_free(&r, token("none", "nope", PAYLOAD, NULL)), GW_JWT_BAD_ALG);
}

static void test_verify_malformed_structure(void **state)
{
    char *t = token("HS256", "hs1", PAYLOAD, &fx.hs1), *h = b64s("{\"alg\":\"HS256\",\"kid\":\"hs1\"}");
    const char *dot1 = strchr(t, '.'), *dot2 = strrchr(t, '.');
    gw_jwt_rules_t r = rules_all();
    (void)state;

    assert_int_equal(verify(t), GW_JWT_OK);
    assert_int_equal(verify_n(fx.jwks, &r, t, 0, NOW, NULL), GW_JWT_MALFORMED);
    assert_int_equal(gw_jwt_verify(fx.jwks, &r, NULL, 0, NOW, NULL), GW_JWT_MALFORMED);
    assert_int_equal(verify_free(str("%.*s", (int)(dot1 - t), t)), GW_JWT_MALFORMED); /* one part */
    assert_int_equal(verify_free(str("%.*s", (int)(dot2 - t), t)), GW_JWT_MALFORMED); /* two parts */
    assert_int_equal(verify_free(str("%s.", t)), GW_JWT_MALFORMED);                   /* four parts */
    assert_int_equal(verify_free(str("%s.%s", t, dot2 + 1)), GW_JWT_MALFORMED);       /* four parts */
    assert_int_equal(verify_free(str("%s.AA.AA", t)), GW_JWT_MALFORMED);              /* five (JWE) */
    assert_int_equal(verify_free(str("%s", dot1)), GW_JWT_MALFORMED);                 /* empty header */
    assert_int_equal(verify_free(str("%s..%s", h, dot2 + 1)), GW_JWT_MALFORMED);      /* empty payload */
    assert_int_equal(verify_free(str("%s..", h)), GW_JWT_MALFORMED);
    assert_int_equal(verify_free(str("..")), GW_JWT_MALFORMED);
    assert_int_equal(verify_free(str(".")), GW_JWT_MALFORMED);
    assert_int_equal(verify_free(str("...")), GW_JWT_MALFORMED);
    /* a character outside base64url in each part; padding; unused bits set */
    const char *bad[] = {"+", "/", "=", "*", " ", "\n", "%", "\xc3\xa9"};
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i) {
        size_t l1 = (size_t)(dot1 - t), l2 = (size_t)(dot2 - t);
        assert_int_equal(verify_free(str("%.*s%s%s", (int)l1, t, bad[i], dot1)), GW_JWT_MALFORMED);
        assert_int_equal(verify_free(str("%.*s%s%s", (int)l2, t, bad[i], dot2)), GW_JWT_MALFORMED);
        assert_int_equal(verify_free(str("%s%s", t, bad[i])), GW_JWT_MALFORMED);
        assert_int_equal(verify_free(str("%.*sAA%s%s", (int)l1, t, bad[i], dot1)), GW_JWT_MALFORMED);
    }
    assert_int_equal(verify_free(str("%s=", t)), GW_JWT_MALFORMED); /* 43 characters + '=': valid base64url padding */
    {
        /* the signature part with its last character's unused bits set (43 characters: 2 of them) */
        char *u = strdup(t);
        char *last = u + strlen(u) - 1;
        const char *abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        *last = abc[(strchr(abc, *last) - abc) | 1];
        assert_int_equal(verify_free(u), GW_JWT_MALFORMED);
    }
    /* a NUL inside */
    {
        char *u = strdup(t);
        size_t len = strlen(u);
        u[3] = '\0';
        assert_int_equal(verify_n(fx.jwks, &r, u, len, NOW, NULL), GW_JWT_MALFORMED);
        free(u);
    }
    free(h);
    free(t);
}

static void test_verify_malformed_json(void **state)
{
    (void)state;
    /* header */
    assert_int_equal(verify_free(token_raw("{\"alg\":\"HS256\"", PAYLOAD, &fx.hs1)), GW_JWT_MALFORMED);
    assert_int_equal(verify_free(token_raw("not json", PAYLOAD, &fx.hs1)), GW_JWT_MALFORMED);
    assert_int_equal(verify_free(token_raw("[\"HS256\"]", PAYLOAD, &fx.hs1)), GW_JWT_MALFORMED);
    assert_int_equal(verify_free(token_raw("\"HS256\"", PAYLOAD, &fx.hs1)), GW_JWT_MALFORMED);
    assert_int_equal(verify_free(token_raw("{\"alg\":\"HS256\"}x", PAYLOAD, &fx.hs1)), GW_JWT_MALFORMED);
    assert_int_equal(verify_free(token_raw("{\"alg\":\"HS256\"}{}", PAYLOAD, &fx.hs1)), GW_JWT_MALFORMED);
    assert_int_equal(verify_free(token_raw("{\"alg\":\"none\",\"alg\":\"HS256\"}", PAYLOAD, &fx.hs1)), GW_JWT_MALFORMED);
    assert_int_equal(verify_free(token_raw("{\"alg\":\"HS256\",\"alg\":\"HS256\"}", PAYLOAD, &fx.hs1)), GW_JWT_MALFORMED);
    assert_int_equal(verify_free(token_raw("{\"alg\":\"HS256\",\"x\":\"\xff\"}", PAYLOAD, &fx.hs1)), GW_JWT_MALFORMED);
    /* crit: no extension is supported, whatever it lists */
    assert_int_equal(verify_free(token_raw("{\"alg\":\"HS256\",\"kid\":\"hs1\",\"crit\":[\"exp\"],\"exp\":1}", PAYLOAD, &fx.hs1)),
                     GW_JWT_MALFORMED);
    assert_int_equal(verify_free(token_raw("{\"alg\":\"HS256\",\"crit\":[\"b64\"],\"b64\":false}", PAYLOAD, &fx.hs1)),
                     GW_JWT_MALFORMED);
    assert_int_equal(verify_free(token_raw("{\"alg\":\"HS256\",\"crit\":[]}", PAYLOAD, &fx.hs1)), GW_JWT_MALFORMED);
    /* kid of the wrong type */
    assert_int_equal(verify_free(token_raw("{\"alg\":\"HS256\",\"kid\":1}", PAYLOAD, &fx.hs1)), GW_JWT_MALFORMED);
    assert_int_equal(verify_free(token_raw("{\"alg\":\"HS256\",\"kid\":null}", PAYLOAD, &fx.hs1)), GW_JWT_MALFORMED);
    assert_int_equal(verify_free(token_raw("{\"alg\":\"HS256\",\"kid\":[\"hs1\"]}", PAYLOAD, &fx.hs1)), GW_JWT_MALFORMED);
    /* payload, correctly signed */
    assert_int_equal(verify_free(hs("[1]")), GW_JWT_MALFORMED);
    assert_int_equal(verify_free(hs("\"sub\"")), GW_JWT_MALFORMED);
    assert_int_equal(verify_free(hs("42")), GW_JWT_MALFORMED);
    assert_int_equal(verify_free(hs("not json")), GW_JWT_MALFORMED);
    assert_int_equal(verify_free(hs("{\"sub\":\"alice\"")), GW_JWT_MALFORMED);
    assert_int_equal(verify_free(hs("{\"sub\":\"alice\"} ")), GW_JWT_OK); /* trailing whitespace is JSON */
    assert_int_equal(verify_free(hs("{\"sub\":\"alice\"}x")), GW_JWT_MALFORMED);
    assert_int_equal(verify_free(hs("{\"sub\":\"alice\",\"sub\":\"admin\"}")), GW_JWT_MALFORMED);
    assert_int_equal(verify_free(hs("{\"sub\":\"\\u0000\"}")), GW_JWT_MALFORMED);
}

/* An HS256 token of exactly len bytes (a "pad" claim and an "x" header member make it up). */
static char *token_of_len(size_t len)
{
    for (size_t hx = 0; hx != 3; ++hx) {
        char *header = str("{\"alg\":\"HS256\",\"kid\":\"hs1\",\"x\":\"%.*s\"}", (int)hx, "xxx");
        size_t base = b64len(strlen(header)) + 2 + b64len(32), fixed = strlen("{\"pad\":\"\"}");
        for (size_t m = 0; base + b64len(fixed + m) <= len; ++m) {
            if (base + b64len(fixed + m) == len) {
                char *payload = malloc(fixed + m + 1), *t;
                assert_non_null(payload);
                memset(payload, 'a', fixed + m);
                memcpy(payload, "{\"pad\":\"", 8);
                memcpy(payload + fixed + m - 2, "\"}", 3);
                t = token_raw(header, payload, &fx.hs1);
                assert_int_equal(strlen(t), len);
                free(payload);
                free(header);
                return t;
            }
        }
        free(header);
    }
    fail_msg("no token of %zu bytes", len);
    return NULL;
}

static void test_verify_size_limit(void **state)
{
    char *t;
    (void)state;

    t = token_of_len(16 * 1024);
    assert_int_equal(verify_free(t), GW_JWT_OK);
    t = token_of_len(16 * 1024 + 1);
    assert_int_equal(verify_free(t), GW_JWT_MALFORMED);
    t = token_of_len(20 * 1024);
    assert_int_equal(verify_free(t), GW_JWT_MALFORMED);
}

static void test_verify_reads_only_len(void **state)
{
    gw_jwt_rules_t r = rules_all();
    char *t = hs(PAYLOAD), *longer = str("%s.extra", t), *shorter = strdup(t);
    size_t len = strlen(t);
    (void)state;

    /* what follows len is not part of the token */
    assert_int_equal(verify_n(fx.jwks, &r, longer, len, NOW, NULL), GW_JWT_OK);
    /* one byte less: the signature's last character is cut */
    assert_int_not_equal(verify_n(fx.jwks, &r, shorter, len - 1, NOW, NULL), GW_JWT_OK);
    assert_int_not_equal(verify_n(fx.jwks, &r, shorter, len - 2, NOW, NULL), GW_JWT_OK);
    free(t);
    free(longer);
    free(shorter);
}

static void test_verify_es256_signature(void **state)
{
    unsigned char sig[200], hash[32];
    char *h = header_of("ES256", "ec1"), *in = signing_input(h, PAYLOAD);
    size_t n = sign(&fx.ec1, in, strlen(in), sig), derlen;
    (void)state;

    assert_int_equal(n, 64);
    assert_int_equal(verify_free(with_sig(in, sig, 64)), GW_JWT_OK);
    /* the length is exactly 64: a byte less or more is refused even when r and s still read the same */
    assert_int_equal(verify_free(with_sig(in, sig, 63)), GW_JWT_BAD_SIGNATURE);
    memmove(sig + 1, sig, 64);
    sig[0] = 0;
    assert_int_equal(verify_free(with_sig(in, sig, 65)), GW_JWT_BAD_SIGNATURE);
    memmove(sig, sig + 1, 64);
    sig[64] = 0;
    assert_int_equal(verify_free(with_sig(in, sig, 65)), GW_JWT_BAD_SIGNATURE);
    assert_int_equal(verify_free(with_sig(in, sig, 0)), GW_JWT_BAD_SIGNATURE);
    /* r = s = 0, and r = s = 2^256 - 1 (not below the order) */
    memset(sig, 0, 64);
    assert_int_equal(verify_free(with_sig(in, sig, 64)), GW_JWT_BAD_SIGNATURE);
    memset(sig, 0xff, 64);
    assert_int_equal(verify_free(with_sig(in, sig, 64)), GW_JWT_BAD_SIGNATURE);
    /* a valid signature in DER (what mbedTLS and OpenSSL write) is not a JWS signature */
    sha256(in, strlen(in), hash);
    assert_int_equal(
        mbedtls_ecdsa_write_signature(&fx.ec1.ec, MBEDTLS_MD_SHA256, hash, 32, sig, &derlen, mbedtls_ctr_drbg_random, &fx.drbg), 0);
    assert_int_equal(verify_free(with_sig(in, sig, derlen)), GW_JWT_BAD_SIGNATURE);
    free(in);
    free(h);
}

static void test_verify_rs256_signature(void **state)
{
    unsigned char sig[600];
    char *h = header_of("RS256", "rsa1"), *in = signing_input(h, PAYLOAD);
    size_t n = sign(&fx.rsa, in, strlen(in), sig);
    (void)state;

    assert_int_equal(n, 256);
    assert_int_equal(verify_free(with_sig(in, sig, n)), GW_JWT_OK);
    assert_int_equal(verify_free(with_sig(in, sig, n - 1)), GW_JWT_BAD_SIGNATURE);
    sig[n] = 0;
    assert_int_equal(verify_free(with_sig(in, sig, n + 1)), GW_JWT_BAD_SIGNATURE);
    memmove(sig + 1, sig, n); /* a leading zero: the same number, but not the modulus' length */
    sig[0] = 0;
    assert_int_equal(verify_free(with_sig(in, sig, n + 1)), GW_JWT_BAD_SIGNATURE);
    /* signed by another (1024-bit) key under the kid of the 2048-bit one */
    n = sign(&fx.rsa1024, in, strlen(in), sig);
    assert_int_equal(n, 128);
    assert_int_equal(verify_free(with_sig(in, sig, n)), GW_JWT_BAD_SIGNATURE);
    /* the modulus itself, and all ones (not below it) */
    assert_int_equal(mbedtls_mpi_write_binary(&fx.rsa.rsa.N, sig, 256), 0);
    assert_int_equal(verify_free(with_sig(in, sig, 256)), GW_JWT_BAD_SIGNATURE);
    memset(sig, 0xff, 256);
    assert_int_equal(verify_free(with_sig(in, sig, 256)), GW_JWT_BAD_SIGNATURE);
    free(in);
    free(h);
}

static void test_verify_claims_out(void **state)
{
    gw_jwt_rules_t r = rules_all();
    char *t = hs("{\"exp\":1}"), *claims = (char *)t; /* must be reset to NULL */
    (void)state;

    assert_int_equal(gw_jwt_verify(fx.jwks, &r, t, strlen(t), NOW, &claims), GW_JWT_EXPIRED);
    assert_null(claims);
    free(t);
    t = hs("{\"a\":\"\\u00e9\\n\",\"b\":\"\xc3\xa9\"}");
    assert_int_equal(gw_jwt_verify(fx.jwks, &r, t, strlen(t), NOW, &claims), GW_JWT_OK);
    assert_string_equal(claims, "{\"a\":\"\\u00e9\\n\",\"b\":\"\xc3\xa9\"}"); /* the bytes, not a re-encoding */
    free(claims);
    free(t);
}

static void test_strerror(void **state)
{
    (void)state;
    assert_string_equal(gw_jwt_strerror(GW_JWT_OK), "");
    assert_string_equal(gw_jwt_strerror(GW_JWT_MALFORMED), "the token is malformed");
    assert_string_equal(gw_jwt_strerror(GW_JWT_BAD_ALG), "the token's algorithm is not accepted");
    assert_string_equal(gw_jwt_strerror(GW_JWT_NO_KEY), "no key matches the token");
    assert_string_equal(gw_jwt_strerror(GW_JWT_BAD_SIGNATURE), "the token's signature does not verify");
    assert_string_equal(gw_jwt_strerror(GW_JWT_EXPIRED), "the token has expired");
    assert_string_equal(gw_jwt_strerror(GW_JWT_NOT_YET_VALID), "the token is not valid yet");
    assert_string_equal(gw_jwt_strerror(GW_JWT_BAD_ISSUER), "the token's issuer is not accepted");
    assert_string_equal(gw_jwt_strerror(GW_JWT_BAD_AUDIENCE), "the token's audience is not accepted");
}

/* ---- threads ---- */

#define THREADS 8
#define ROUNDS 4
#define PER_THREAD 6

typedef struct worker {
    pthread_t thread;
    const gw_jwks_t *jwks;
    char **tokens; /* NULL-terminated */
    atomic_int *go, *failures;
} worker_t;

static void *worker_run(void *data)
{
    worker_t *w = data;
    gw_jwt_rules_t r = rules_all();

    while (!atomic_load(w->go))
        ;
    for (int i = 0; i != PER_THREAD; ++i)
        for (char **t = w->tokens; *t != NULL; ++t)
            if (gw_jwt_verify(w->jwks, &r, *t, strlen(*t), NOW, NULL) != GW_JWT_OK)
                atomic_fetch_add(w->failures, 1);
    return NULL;
}

/*
 * Threads verify with one freshly loaded set at once, so that the first operation with each key happens in parallel:
 * were mbedTLS's lazily cached values (see jwt.c) computed then rather than at load, threads would race on them
 * (and LSan would see the table of the generator that loses the race).
 */
static void test_concurrent_verify(void **state)
{
    char *tokens[] = {token("RS256", "rsa1", PAYLOAD, &fx.rsa), token("ES256", "ec1", PAYLOAD, &fx.ec1),
                      token("ES256", NULL, PAYLOAD, &fx.ec2), token("HS256", NULL, PAYLOAD, &fx.hs2), NULL};
    worker_t w[THREADS];
    atomic_int go, failures = 0;
    char err[256];
    (void)state;

    for (int round = 0; round != ROUNDS; ++round) {
        gw_jwks_t *j;
        assert_int_equal(gw_jwks_load(fx.path, &j, err, sizeof(err)), 0);
        atomic_store(&go, 0);
        for (int i = 0; i != THREADS; ++i) {
            w[i] = (worker_t){.jwks = j, .tokens = tokens, .go = &go, .failures = &failures};
            assert_int_equal(pthread_create(&w[i].thread, NULL, worker_run, &w[i]), 0);
        }
        atomic_store(&go, 1);
        for (int i = 0; i != THREADS; ++i)
            assert_int_equal(pthread_join(w[i].thread, NULL), 0);
        gw_jwks_free(j);
    }
    assert_int_equal(atomic_load(&failures), 0);
    for (char **t = tokens; *t != NULL; ++t)
        free(*t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64url_valid),
        cmocka_unit_test(test_b64url_invalid),
        cmocka_unit_test(test_b64url_bounds),
        cmocka_unit_test(test_jwks_load),
        cmocka_unit_test(test_jwks_load_errors),
        cmocka_unit_test(test_jwks_load_error_buffer),
        cmocka_unit_test(test_verify_each_alg),
        cmocka_unit_test(test_verify_kid_selects_key),
        cmocka_unit_test(test_verify_without_kid),
        cmocka_unit_test(test_verify_no_key),
        cmocka_unit_test(test_verify_bad_signature),
        cmocka_unit_test(test_verify_alg_none),
        cmocka_unit_test(test_verify_hs_rs_confusion),
        cmocka_unit_test(test_verify_shared_kid),
        cmocka_unit_test(test_verify_algorithms_rule),
        cmocka_unit_test(test_verify_exp),
        cmocka_unit_test(test_verify_exp_extreme_now),
        cmocka_unit_test(test_verify_nbf),
        cmocka_unit_test(test_verify_issuer),
        cmocka_unit_test(test_verify_audience),
        cmocka_unit_test(test_verify_order),
        cmocka_unit_test(test_verify_malformed_structure),
        cmocka_unit_test(test_verify_malformed_json),
        cmocka_unit_test(test_verify_size_limit),
        cmocka_unit_test(test_verify_reads_only_len),
        cmocka_unit_test(test_verify_es256_signature),
        cmocka_unit_test(test_verify_rs256_signature),
        cmocka_unit_test(test_verify_claims_out),
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_concurrent_verify),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
