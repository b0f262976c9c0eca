/*
 * gateway/jwt.c: JWKS files (RFC 7517) and the verification of JWTs (RFC 7519) in the compact JWS form (RFC 7515)
 * with HS256, RS256 and ES256 (RFC 7518 3.2 to 3.4), on mbedTLS 2.28 and jansson.
 *
 * Security choices:
 *   - No "none", and only HS256, RS256 and ES256: any other "alg" (other case, other hash) is refused (BAD_ALG).
 *   - The algorithm decides the key type, never the other way round: HS256 verifies only with "oct" keys, RS256 only
 *     with RSA keys, ES256 only with EC P-256 keys, and a key's own "alg" must match the token's. A token whose kid
 *     names a key of another type is refused (BAD_ALG), so the HS/RS confusion (an HS256 token HMACed with the RSA
 *     public key as the secret) never verifies: public keys are never used as HMAC secrets.
 *   - Keys come only from the JWKS file: the header parameters jwk, jku, x5u and x5c are ignored, and "crit" is refused
 *     since no extension is supported (so neither is RFC 7797's unencoded payload).
 *   - HMACs are compared in constant time. RSA keys have at least 2048 bits and a signature must be exactly as long as
 *     the modulus; ES256 signatures are raw r || s (64 bytes, RFC 7518 3.4), never DER.
 *   - Strict parsing, so one set of claims has one encoding: exactly three parts, base64url without padding and with
 *     zero trailing bits, no duplicate JSON member names (RFC 7515 5.2 and RFC 7519 7.2 allow refusing them: a backend
 *     reading the claims with a first-wins parser must not see other claims than those checked here), at most
 *     GW_JWT_MAX_LEN bytes. The payload's JSON is parsed only once the signature has verified.
 *   - Errors fail closed: an allocation failure is an error (GW_JWT_MALFORMED here, GW_JWT_BAD_SIGNATURE inside mbedTLS),
 *     never GW_JWT_OK. Claims of the wrong type are GW_JWT_MALFORMED: exp and nbf always, iss and aud when checked.
 *
 * Threads: a gw_jwks_t is read-only once loaded, and verifications share it. mbedTLS 2.28 caches two values lazily,
 * on the first operation with a key: R^2 mod N of an RSA key (ctx->RN, written by mbedtls_rsa_public() under the
 * context's mutex since Debian builds with MBEDTLS_THREADING_C), and the comb table of the curve's generator
 * (grp->T, written by ecp_mul_comb() without any lock: two threads doing the first ES256 verification at once race,
 * and ASan then sees one table freed twice or leaked). The loader therefore does one operation with each key
 * (warm_up()) before the set is published, so verifications only read them. RS256 verifications with one key still
 * take its mutex in turn.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <mbedtls/bignum.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/md.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/rsa.h>
#include <mbedtls/sha256.h>
#include "gateway/gateway.h"

#define GW_JWT_MAX_LEN (16 * 1024) /* longer tokens are refused before any work */
#define GW_RSA_MIN_BITS 2048
#define GW_HMAC_MIN_LEN 32 /* bytes of an "oct" key: RFC 7518 3.2 wants a key as long as the hash */
#define GW_P256_LEN 32     /* bytes of a P-256 coordinate, and of r and s */

/* ---- algorithms and keys ---- */

typedef enum jwk_type {
    JWK_OCT,
    JWK_RSA,
    JWK_EC,
} jwk_type_t;

static const char *const jwk_type_names[] = {"oct", "RSA", "EC"};

typedef struct jwt_alg {
    const char *name;
    unsigned mask; /* CONF_JWT_* */
    jwk_type_t type;
} jwt_alg_t;

static const jwt_alg_t jwt_algs[] = {
    {"HS256", CONF_JWT_HS256, JWK_OCT},
    {"RS256", CONF_JWT_RS256, JWK_RSA},
    {"ES256", CONF_JWT_ES256, JWK_EC},
};

typedef struct jwk {
    jwk_type_t type;
    const jwt_alg_t *alg; /* the key's "alg", or NULL */
    char *kid;            /* NULL: none (a kid may hold any byte, hence kid_len) */
    size_t kid_len;
    unsigned char *secret; /* oct */
    size_t secret_len;
    mbedtls_pk_context pk;  /* RSA */
    mbedtls_ecp_keypair ec; /* EC: grp and Q */
} jwk_t;

struct gw_jwks {
    size_t n;
    jwk_t *keys;
};

/* The algorithm named s[0..len), or NULL. */
static const jwt_alg_t *find_alg(const char *s, size_t len)
{
    for (size_t i = 0; i != sizeof(jwt_algs) / sizeof(jwt_algs[0]); ++i)
        if (strlen(jwt_algs[i].name) == len && memcmp(jwt_algs[i].name, s, len) == 0)
            return jwt_algs + i;
    return NULL;
}

static int json_str_is(const json_t *s, const char *v)
{
    return json_string_length(s) == strlen(v) && memcmp(json_string_value(s), v, strlen(v)) == 0;
}

/* Compares n bytes without a branch on their values. */
static int ct_equal(const unsigned char *a, const unsigned char *b, size_t n)
{
    volatile unsigned char d = 0;
    for (size_t i = 0; i != n; ++i)
        d |= a[i] ^ b[i];
    return d == 0;
}

/* ---- base64url ---- */

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* Also refuses a last character whose unused bits are not zero (RFC 4648 3.5): each value has one encoding. */
long gw_b64url_decode(const char *in, size_t len, unsigned char *out, size_t outcap)
{
    size_t pad = 0, n, need, o = 0;
    uint32_t acc = 0;
    unsigned bits = 0;

    while (pad != 2 && pad != len && in[len - pad - 1] == '=')
        ++pad;
    n = len - pad;
    if (n % 4 == 1 || (pad != 0 && (n + pad) % 4 != 0))
        return -1;
    need = n / 4 * 3 + (n % 4 != 0 ? n % 4 - 1 : 0);
    if (need > outcap || need > LONG_MAX)
        return -1;
    for (size_t i = 0; i != n; ++i) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    if ((acc & ((1u << bits) - 1)) != 0)
        return -1;
    return (long)o;
}

/* ---- JWKS ---- */

__attribute__((format(printf, 3, 4))) static int set_msg(char *msg, size_t msglen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msglen, fmt, ap);
    va_end(ap);
    return -1;
}

/* A member's text for a message: printable ASCII, at most 32 characters. */
static const char *printable(const json_t *s, char *buf, size_t buflen)
{
    const char *v = json_string_value(s);
    size_t len = json_string_length(s), i;

    for (i = 0; i != len && i + 1 < buflen && i != 32; ++i)
        buf[i] = v[i] >= 0x20 && v[i] < 0x7f ? v[i] : '?';
    buf[i] = '\0';
    return buf;
}

/* The string member `name` of key o: 1 found, 0 missing, -1 not a string (with a message). */
static int get_string(const json_t *o, const char *name, const json_t **out, char *msg, size_t msglen)
{
    const json_t *v = json_object_get(o, name);

    *out = v;
    if (v == NULL)
        return 0;
    if (!json_is_string(v))
        return set_msg(msg, msglen, "\"%s\" is not a string", name);
    return 1;
}

/* The bytes of the base64url member `name`, malloc'ed; NULL with a message when missing, empty or not base64url. */
static unsigned char *get_bytes(const json_t *o, const char *kty, const char *name, size_t *len, char *msg, size_t msglen)
{
    const json_t *v;
    unsigned char *buf;
    long n;
    int rc = get_string(o, name, &v, msg, msglen);

    if (rc <= 0) {
        if (rc == 0)
            set_msg(msg, msglen, "%s key without \"%s\"", kty, name);
        return NULL;
    }
    if ((buf = malloc(json_string_length(v) + 1)) == NULL) {
        set_msg(msg, msglen, "out of memory");
        return NULL;
    }
    n = gw_b64url_decode(json_string_value(v), json_string_length(v), buf, json_string_length(v) + 1);
    if (n <= 0) {
        set_msg(msg, msglen, "%s key: \"%s\" is %s", kty, name, n == 0 ? "empty" : "not base64url");
        free(buf);
        return NULL;
    }
    *len = (size_t)n;
    return buf;
}

static void jwk_free(jwk_t *k)
{
    free(k->kid);
    if (k->secret != NULL)
        mbedtls_platform_zeroize(k->secret, k->secret_len);
    free(k->secret);
    mbedtls_pk_free(&k->pk);
    mbedtls_ecp_keypair_free(&k->ec);
}

static int load_rsa(const json_t *o, jwk_t *k, char *msg, size_t msglen)
{
    size_t nlen = 0, elen = 0;
    unsigned char *n = get_bytes(o, "RSA", "n", &nlen, msg, msglen), *e = NULL;
    mbedtls_rsa_context *rsa;
    int rc = -1;

    if (n == NULL || (e = get_bytes(o, "RSA", "e", &elen, msg, msglen)) == NULL)
        goto done;
    if (mbedtls_pk_setup(&k->pk, mbedtls_pk_info_from_type(MBEDTLS_PK_RSA)) != 0) {
        set_msg(msg, msglen, "out of memory");
        goto done;
    }
    rsa = mbedtls_pk_rsa(k->pk);
    if (mbedtls_rsa_import_raw(rsa, n, nlen, NULL, 0, NULL, 0, NULL, 0, e, elen) != 0 || mbedtls_rsa_complete(rsa) != 0 ||
        mbedtls_rsa_check_pubkey(rsa) != 0) {
        set_msg(msg, msglen, "RSA key: \"n\" and \"e\" are not a valid public key");
        goto done;
    }
    if (mbedtls_pk_get_bitlen(&k->pk) < GW_RSA_MIN_BITS) {
        set_msg(msg, msglen, "RSA key of %zu bits (at least %d are required)", mbedtls_pk_get_bitlen(&k->pk), GW_RSA_MIN_BITS);
        goto done;
    }
    rc = 0;
done:
    free(n);
    free(e);
    return rc;
}

static int load_ec_point(const json_t *o, jwk_t *k, char *msg, size_t msglen)
{
    unsigned char point[1 + 2 * GW_P256_LEN], *x = NULL, *y = NULL;
    size_t xlen = 0, ylen = 0;
    int rc = -1;

    if ((x = get_bytes(o, "EC", "x", &xlen, msg, msglen)) == NULL || (y = get_bytes(o, "EC", "y", &ylen, msg, msglen)) == NULL)
        goto done;
    if (xlen != GW_P256_LEN || ylen != GW_P256_LEN) {
        set_msg(msg, msglen, "EC key: \"x\" and \"y\" must be %d bytes each", GW_P256_LEN);
        goto done;
    }
    point[0] = 0x04; /* uncompressed */
    memcpy(point + 1, x, GW_P256_LEN);
    memcpy(point + 1 + GW_P256_LEN, y, GW_P256_LEN);
    if (mbedtls_ecp_point_read_binary(&k->ec.grp, &k->ec.Q, point, sizeof(point)) != 0 ||
        mbedtls_ecp_check_pubkey(&k->ec.grp, &k->ec.Q) != 0) {
        set_msg(msg, msglen, "EC key: (\"x\", \"y\") is not a point of P-256");
        goto done;
    }
    rc = 0;
done:
    free(x);
    free(y);
    return rc;
}

static int load_ec(const json_t *o, jwk_t *k, char *msg, size_t msglen)
{
    const json_t *crv;
    char buf[40];
    int rc = get_string(o, "crv", &crv, msg, msglen);

    if (rc <= 0)
        return rc < 0 ? -1 : set_msg(msg, msglen, "EC key without \"crv\"");
    if (!json_str_is(crv, "P-256"))
        return set_msg(msg, msglen, "EC key with crv \"%s\" (only P-256 is supported)", printable(crv, buf, sizeof(buf)));
    if (mbedtls_ecp_group_load(&k->ec.grp, MBEDTLS_ECP_DP_SECP256R1) != 0)
        return set_msg(msg, msglen, "out of memory");
    return load_ec_point(o, k, msg, msglen);
}

static int load_oct(const json_t *o, jwk_t *k, char *msg, size_t msglen)
{
    if ((k->secret = get_bytes(o, "oct", "k", &k->secret_len, msg, msglen)) == NULL)
        return -1;
    if (k->secret_len < GW_HMAC_MIN_LEN)
        return set_msg(msg, msglen, "oct key of %zu bytes (at least %d are required)", k->secret_len, GW_HMAC_MIN_LEN);
    return 0;
}

/*
 * Does one public operation with the key so that mbedTLS computes the values it caches (see the top of the file) now,
 * before other threads share the key.
 */
static int warm_up(jwk_t *k)
{
    int rc = 0;

    if (k->type == JWK_RSA) {
        unsigned char in[MBEDTLS_MPI_MAX_SIZE] = {0}, out[MBEDTLS_MPI_MAX_SIZE];
        mbedtls_rsa_context *rsa = mbedtls_pk_rsa(k->pk);
        in[mbedtls_rsa_get_len(rsa) - 1] = 2;
        rc = mbedtls_rsa_public(rsa, in, out);
    } else if (k->type == JWK_EC) {
        mbedtls_ecp_point r;
        mbedtls_mpi two, one;
        mbedtls_ecp_point_init(&r);
        mbedtls_mpi_init(&two);
        mbedtls_mpi_init(&one);
        /* 2G + Q: multiplying G by anything but 0 or +-1 builds and keeps the generator's table */
        if ((rc = mbedtls_mpi_lset(&two, 2)) == 0 && (rc = mbedtls_mpi_lset(&one, 1)) == 0)
            rc = mbedtls_ecp_muladd(&k->ec.grp, &r, &two, &k->ec.grp.G, &one, &k->ec.Q);
        mbedtls_ecp_point_free(&r);
        mbedtls_mpi_free(&two);
        mbedtls_mpi_free(&one);
    }
    return rc;
}

/* kty, and "alg" when present: one of ours, and for that key type. */
static int load_type(const json_t *o, jwk_t *k, char *msg, size_t msglen)
{
    const json_t *kty, *alg;
    char buf[40];
    int rc, t;

    if ((rc = get_string(o, "kty", &kty, msg, msglen)) <= 0)
        return rc < 0 ? -1 : set_msg(msg, msglen, "a key without \"kty\"");
    for (t = JWK_OCT; t <= JWK_EC && !json_str_is(kty, jwk_type_names[t]); ++t)
        ;
    if (t > JWK_EC)
        return set_msg(msg, msglen, "unsupported kty \"%s\" (RSA, EC or oct)", printable(kty, buf, sizeof(buf)));
    k->type = (jwk_type_t)t;
    if ((rc = get_string(o, "alg", &alg, msg, msglen)) <= 0)
        return rc;
    if ((k->alg = find_alg(json_string_value(alg), json_string_length(alg))) == NULL)
        return set_msg(msg, msglen, "unsupported alg \"%s\" (HS256, RS256 or ES256)", printable(alg, buf, sizeof(buf)));
    if (k->alg->type != k->type)
        return set_msg(msg, msglen, "alg \"%s\" is not for a key of kty \"%s\"", k->alg->name, jwk_type_names[k->type]);
    return 0;
}

static int load_kid(const json_t *o, jwk_t *k, char *msg, size_t msglen)
{
    const json_t *kid;
    int rc = get_string(o, "kid", &kid, msg, msglen);

    if (rc <= 0)
        return rc;
    k->kid_len = json_string_length(kid);
    if ((k->kid = malloc(k->kid_len + 1)) == NULL)
        return set_msg(msg, msglen, "out of memory");
    memcpy(k->kid, json_string_value(kid), k->kid_len + 1);
    return 0;
}

/* One key of the set: 1 loaded into k, 0 skipped ("use" other than "sig"), -1 with a message. */
static int load_key(const json_t *o, jwk_t *k, char *msg, size_t msglen)
{
    static int (*const loaders[])(const json_t *, jwk_t *, char *, size_t) = {load_oct, load_rsa, load_ec};
    const json_t *use;
    int rc;

    if (!json_is_object(o))
        return set_msg(msg, msglen, "not an object");
    if ((rc = get_string(o, "use", &use, msg, msglen)) < 0)
        return -1;
    if (rc > 0 && !json_str_is(use, "sig"))
        return 0;
    if (load_type(o, k, msg, msglen) != 0 || load_kid(o, k, msg, msglen) != 0 || loaders[k->type](o, k, msg, msglen) != 0)
        return -1;
    if (warm_up(k) != 0)
        return set_msg(msg, msglen, "%s key: the first operation with it failed", jwk_type_names[k->type]);
    return 1;
}

static json_t *read_json(const char *path, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root;
    FILE *fp = fopen(path, "r");

    if (fp == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    root = json_loadf(fp, JSON_REJECT_DUPLICATES, &jerr);
    fclose(fp);
    if (root == NULL)
        snprintf(err, errlen, "%s: line %d: %s", path, jerr.line, jerr.text);
    return root;
}

/* The keys of the set, appended to jwks->keys (allocated for all of them by the caller). */
static int load_keys(const char *path, const json_t *keys, gw_jwks_t *jwks, char *err, size_t errlen)
{
    char msg[200];

    for (size_t i = 0; i != json_array_size(keys); ++i) {
        jwk_t *k = jwks->keys + jwks->n;
        int rc;
        memset(k, 0, sizeof(*k));
        mbedtls_pk_init(&k->pk);
        mbedtls_ecp_keypair_init(&k->ec);
        rc = load_key(json_array_get(keys, i), k, msg, sizeof(msg));
        if (rc <= 0)
            jwk_free(k);
        if (rc < 0) {
            snprintf(err, errlen, "%s: keys[%zu]: %s", path, i, msg);
            return -1;
        }
        jwks->n += (size_t)rc;
    }
    if (jwks->n == 0) {
        snprintf(err, errlen, "%s: no usable key (a key of kty RSA, EC or oct whose \"use\" is \"sig\" or absent)", path);
        return -1;
    }
    return 0;
}

int gw_jwks_load(const char *path, gw_jwks_t **out, char *err, size_t errlen)
{
    char dummy[1];
    json_t *root, *keys;
    gw_jwks_t *jwks = NULL;
    int rc = -1;

    if (err == NULL || errlen == 0)
        err = dummy, errlen = sizeof(dummy);
    *out = NULL;
    if ((root = read_json(path, err, errlen)) == NULL)
        return -1;
    keys = json_object_get(root, "keys");
    if (!json_is_array(keys)) {
        snprintf(err, errlen, "%s: not a JWKS: no \"keys\" array", path);
        goto done;
    }
    if ((jwks = calloc(1, sizeof(*jwks))) == NULL ||
        (jwks->keys = calloc(json_array_size(keys) != 0 ? json_array_size(keys) : 1, sizeof(jwk_t))) == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto done;
    }
    if ((rc = load_keys(path, keys, jwks, err, errlen)) == 0) {
        *out = jwks;
        jwks = NULL;
    }
done:
    gw_jwks_free(jwks);
    json_decref(root);
    return rc;
}

void gw_jwks_free(gw_jwks_t *jwks)
{
    if (jwks == NULL)
        return;
    for (size_t i = 0; i != jwks->n; ++i)
        jwk_free(jwks->keys + i);
    free(jwks->keys);
    free(jwks);
}

size_t gw_jwks_count(const gw_jwks_t *jwks)
{
    return jwks != NULL ? jwks->n : 0;
}

/* ---- signatures ---- */

static int verify_hs256(const jwk_t *k, const unsigned char *in, size_t inlen, const unsigned char *sig, size_t siglen)
{
    unsigned char mac[32];
    int ok;

    if (siglen != sizeof(mac) ||
        mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), k->secret, k->secret_len, in, inlen, mac) != 0)
        return 0;
    ok = ct_equal(mac, sig, sizeof(mac));
    mbedtls_platform_zeroize(mac, sizeof(mac));
    return ok;
}

/* mbedTLS takes the key non-const; it only reads it (and takes the RSA context's mutex): see the top of the file. */
static int verify_rs256(const jwk_t *k, const unsigned char hash[32], const unsigned char *sig, size_t siglen)
{
    mbedtls_pk_context *pk = (mbedtls_pk_context *)&k->pk;

    return siglen == mbedtls_pk_get_len(pk) && mbedtls_pk_verify(pk, MBEDTLS_MD_SHA256, hash, 32, sig, siglen) == 0;
}

static int verify_es256(const jwk_t *k, const unsigned char hash[32], const unsigned char *sig, size_t siglen)
{
    mbedtls_mpi r, s;
    int ok;

    if (siglen != 2 * GW_P256_LEN)
        return 0;
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    ok = mbedtls_mpi_read_binary(&r, sig, GW_P256_LEN) == 0 && mbedtls_mpi_read_binary(&s, sig + GW_P256_LEN, GW_P256_LEN) == 0 &&
         mbedtls_ecdsa_verify((mbedtls_ecp_group *)&k->ec.grp, hash, 32, &k->ec.Q, &r, &s) == 0;
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    return ok;
}

/* What is signed, and its SHA-256 (computed once for every key tried). */
typedef struct jwt_signed {
    const unsigned char *in; /* the ASCII "header.payload" */
    size_t inlen;
    unsigned char hash[32];
    const unsigned char *sig;
    size_t siglen;
} jwt_signed_t;

static int verify_with(const jwk_t *k, const jwt_signed_t *d)
{
    switch (k->type) {
    case JWK_OCT:
        return verify_hs256(k, d->in, d->inlen, d->sig, d->siglen);
    case JWK_RSA:
        return verify_rs256(k, d->hash, d->sig, d->siglen);
    case JWK_EC:
        return verify_es256(k, d->hash, d->sig, d->siglen);
    }
    return 0;
}

/* The token's header as far as verification needs it; kid points into json. */
typedef struct jwt_header {
    json_t *json;
    const jwt_alg_t *alg;
    const char *kid; /* NULL: none */
    size_t kid_len;
} jwt_header_t;

/*
 * With a kid, the keys of that kid (NO_KEY when there is none, BAD_ALG when none is for the algorithm); without, every
 * key for the algorithm (NO_KEY when there is none). OK when one of them verifies the signature.
 */
static gw_jwt_error_t check_signature(const gw_jwks_t *jwks, const jwt_header_t *h, const jwt_signed_t *d)
{
    size_t named = 0, fitting = 0;

    for (size_t i = 0; jwks != NULL && i != jwks->n; ++i) {
        const jwk_t *k = jwks->keys + i;
        if (h->kid != NULL && (k->kid == NULL || k->kid_len != h->kid_len || memcmp(k->kid, h->kid, h->kid_len) != 0))
            continue;
        ++named;
        if (k->type != h->alg->type || (k->alg != NULL && k->alg != h->alg))
            continue;
        ++fitting;
        if (verify_with(k, d))
            return GW_JWT_OK;
    }
    if (fitting != 0)
        return GW_JWT_BAD_SIGNATURE;
    return h->kid != NULL && named != 0 ? GW_JWT_BAD_ALG : GW_JWT_NO_KEY;
}

/* ---- tokens ---- */

/* The three parts of a token, as written and decoded (into one allocation). */
typedef struct jwt_parts {
    const char *enc[3];
    size_t enc_len[3];
    unsigned char *buf;
    unsigned char *dec[3];
    size_t dec_len[3];
} jwt_parts_t;

static gw_jwt_error_t split_token(const char *token, size_t len, jwt_parts_t *t)
{
    const char *p = token, *end = token + len, *dot;

    if (len == 0 || len > GW_JWT_MAX_LEN)
        return GW_JWT_MALFORMED;
    for (int i = 0; i != 3; ++i) {
        dot = memchr(p, '.', (size_t)(end - p));
        if ((dot == NULL) != (i == 2))
            return GW_JWT_MALFORMED;
        t->enc[i] = p;
        t->enc_len[i] = (size_t)((dot != NULL ? dot : end) - p);
        if (dot != NULL)
            p = dot + 1;
    }
    return t->enc_len[0] != 0 && t->enc_len[1] != 0 ? GW_JWT_OK : GW_JWT_MALFORMED;
}

/* Decodes the parts; padding is refused (RFC 7515 2: base64url "with all trailing '=' characters omitted"). */
static gw_jwt_error_t decode_parts(jwt_parts_t *t)
{
    unsigned char *p;

    if ((p = t->buf = malloc(t->enc_len[0] + t->enc_len[1] + t->enc_len[2] + 1)) == NULL)
        return GW_JWT_MALFORMED;
    for (int i = 0; i != 3; ++i) {
        long n;
        if (memchr(t->enc[i], '=', t->enc_len[i]) != NULL || (n = gw_b64url_decode(t->enc[i], t->enc_len[i], p, t->enc_len[i])) < 0)
            return GW_JWT_MALFORMED;
        t->dec[i] = p;
        t->dec_len[i] = (size_t)n;
        p += n;
    }
    return GW_JWT_OK;
}

static json_t *parse_object(const unsigned char *s, size_t len)
{
    json_t *v = json_loadb((const char *)s, len, JSON_REJECT_DUPLICATES, NULL);

    if (v != NULL && !json_is_object(v)) {
        json_decref(v);
        v = NULL;
    }
    return v;
}

static gw_jwt_error_t parse_header(const jwt_parts_t *t, const gw_jwt_rules_t *rules, jwt_header_t *h)
{
    const json_t *alg, *kid;

    if ((h->json = parse_object(t->dec[0], t->dec_len[0])) == NULL)
        return GW_JWT_MALFORMED;
    alg = json_object_get(h->json, "alg");
    kid = json_object_get(h->json, "kid");
    if (!json_is_string(alg) || json_object_get(h->json, "crit") != NULL || (kid != NULL && !json_is_string(kid)))
        return GW_JWT_MALFORMED;
    h->alg = find_alg(json_string_value(alg), json_string_length(alg));
    if (h->alg == NULL || (h->alg->mask & rules->algorithms) == 0)
        return GW_JWT_BAD_ALG;
    if (kid != NULL) {
        h->kid = json_string_value(kid);
        h->kid_len = json_string_length(kid);
    }
    return GW_JWT_OK;
}

/* ---- claims ---- */

static int64_t sat_add(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

/* The sign of t - v for a JSON number v (integer or real), without overflow. */
static int cmp_time(int64_t t, const json_t *v)
{
    if (json_is_integer(v)) {
        json_int_t n = json_integer_value(v);
        return t < n ? -1 : t > n;
    }
    double d = json_real_value(v);
    return (double)t < d ? -1 : (double)t > d;
}

static gw_jwt_error_t check_times(const json_t *claims, const gw_jwt_rules_t *rules, int64_t now_s)
{
    const json_t *exp = json_object_get(claims, "exp"), *nbf = json_object_get(claims, "nbf");
    int64_t leeway = rules->leeway_s > 0 ? rules->leeway_s : 0;

    if ((exp != NULL && !json_is_number(exp)) || (nbf != NULL && !json_is_number(nbf)))
        return GW_JWT_MALFORMED;
    if (exp != NULL && cmp_time(sat_add(now_s, -leeway), exp) >= 0) /* now - leeway >= exp: RFC 7519 4.1.4, "on or after" */
        return GW_JWT_EXPIRED;
    if (nbf != NULL && cmp_time(sat_add(now_s, leeway), nbf) < 0) /* now + leeway < nbf */
        return GW_JWT_NOT_YET_VALID;
    return GW_JWT_OK;
}

static gw_jwt_error_t check_issuer(const json_t *claims, const gw_jwt_rules_t *rules)
{
    const json_t *iss = json_object_get(claims, "iss");

    if (rules->issuer == NULL)
        return GW_JWT_OK;
    if (iss == NULL)
        return GW_JWT_BAD_ISSUER;
    if (!json_is_string(iss))
        return GW_JWT_MALFORMED;
    return json_str_is(iss, rules->issuer) ? GW_JWT_OK : GW_JWT_BAD_ISSUER;
}

static int audience_is_accepted(const json_t *aud, const gw_jwt_rules_t *rules)
{
    for (size_t i = 0; i != rules->naudiences; ++i)
        if (json_str_is(aud, rules->audiences[i]))
            return 1;
    return 0;
}

/* aud: a string, or an array of strings (RFC 7519 4.1.3); one of them must be accepted. */
static gw_jwt_error_t check_audience(const json_t *claims, const gw_jwt_rules_t *rules)
{
    const json_t *aud = json_object_get(claims, "aud");
    int found = 0;

    if (rules->naudiences == 0)
        return GW_JWT_OK;
    if (aud == NULL)
        return GW_JWT_BAD_AUDIENCE;
    if (json_is_string(aud))
        return audience_is_accepted(aud, rules) ? GW_JWT_OK : GW_JWT_BAD_AUDIENCE;
    if (!json_is_array(aud))
        return GW_JWT_MALFORMED;
    for (size_t i = 0; i != json_array_size(aud); ++i) {
        const json_t *a = json_array_get(aud, i);
        if (!json_is_string(a))
            return GW_JWT_MALFORMED;
        found |= audience_is_accepted(a, rules);
    }
    return found ? GW_JWT_OK : GW_JWT_BAD_AUDIENCE;
}

static gw_jwt_error_t check_claims(const jwt_parts_t *t, const gw_jwt_rules_t *rules, int64_t now_s)
{
    json_t *claims = parse_object(t->dec[1], t->dec_len[1]);
    gw_jwt_error_t e;

    if (claims == NULL)
        return GW_JWT_MALFORMED;
    if ((e = check_times(claims, rules, now_s)) == GW_JWT_OK && (e = check_issuer(claims, rules)) == GW_JWT_OK)
        e = check_audience(claims, rules);
    json_decref(claims);
    return e;
}

static gw_jwt_error_t copy_claims(const jwt_parts_t *t, char **claims)
{
    if (claims == NULL)
        return GW_JWT_OK;
    if ((*claims = malloc(t->dec_len[1] + 1)) == NULL)
        return GW_JWT_MALFORMED;
    memcpy(*claims, t->dec[1], t->dec_len[1]);
    (*claims)[t->dec_len[1]] = '\0';
    return GW_JWT_OK;
}

gw_jwt_error_t gw_jwt_verify(const gw_jwks_t *jwks, const gw_jwt_rules_t *rules, const char *token, size_t len, int64_t now_s,
                             char **claims)
{
    jwt_parts_t t = {0};
    jwt_header_t h = {0};
    jwt_signed_t d = {0};
    gw_jwt_error_t e;

    if (claims != NULL)
        *claims = NULL;
    if ((e = split_token(token, len, &t)) != GW_JWT_OK || (e = decode_parts(&t)) != GW_JWT_OK ||
        (e = parse_header(&t, rules, &h)) != GW_JWT_OK)
        goto done;
    d.in = (const unsigned char *)token;
    d.inlen = t.enc_len[0] + 1 + t.enc_len[1];
    d.sig = t.dec[2];
    d.siglen = t.dec_len[2];
    if (mbedtls_sha256_ret(d.in, d.inlen, d.hash, 0) != 0) {
        e = GW_JWT_MALFORMED;
        goto done;
    }
    if ((e = check_signature(jwks, &h, &d)) == GW_JWT_OK && (e = check_claims(&t, rules, now_s)) == GW_JWT_OK)
        e = copy_claims(&t, claims);
done:
    json_decref(h.json);
    free(t.buf);
    return e;
}

const char *gw_jwt_strerror(gw_jwt_error_t e)
{
    switch (e) {
    case GW_JWT_OK:
        return "";
    case GW_JWT_MALFORMED:
        return "the token is malformed";
    case GW_JWT_BAD_ALG:
        return "the token's algorithm is not accepted";
    case GW_JWT_NO_KEY:
        return "no key matches the token";
    case GW_JWT_BAD_SIGNATURE:
        return "the token's signature does not verify";
    case GW_JWT_EXPIRED:
        return "the token has expired";
    case GW_JWT_NOT_YET_VALID:
        return "the token is not valid yet";
    case GW_JWT_BAD_ISSUER:
        return "the token's issuer is not accepted";
    case GW_JWT_BAD_AUDIENCE:
        return "the token's audience is not accepted";
    }
    return "the token is not accepted";
}
