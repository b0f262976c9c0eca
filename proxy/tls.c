/*
 * tls: OpenSSL contexts. h2o terminates TLS with OpenSSL; we build its contexts here.
 *
 * Listener: one SSL_CTX per certificate (TLS 1.2 and 1.3 only, ALPN h2 + http/1.1). The first is the listener's
 * default; a servername callback moves the connection to the certificate whose subjectAltName (or CN) matches the SNI
 * name, wildcards included. A TLS listener without certificates gets a self-signed one (EC P-256, names localhost and
 * 127.0.0.1), generated under data_dir/tls/ on first run and reused after.
 *
 * Origin: a client SSL_CTX per https origin that verifies the chain and lets OpenSSL check the host name through
 * X509_VERIFY_PARAM, because libh2o 2.2.5 skips its own name check when TLS 1.3 is negotiated (LIBH2O_NOTES 5.3).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include "proxy/internal.h"

typedef struct sni_entry {
    SSL_CTX *ctx;
    char **names; /* lower-case; "*.example.com" wildcards kept as written */
    size_t nnames;
} sni_entry_t;

typedef struct sni_table {
    size_t n;
    sni_entry_t *entries;
} sni_table_t;

static int sni_index = -1;

static void ssl_error(char *err, size_t errlen, const char *what, const char *file)
{
    char buf[256];
    unsigned long e = ERR_get_error();
    ERR_error_string_n(e, buf, sizeof(buf));
    snprintf(err, errlen, "%s %s: %s", what, file, e != 0 ? buf : "unknown error");
    ERR_clear_error();
}

static int name_matches(const char *pattern, const char *name)
{
    if (pattern[0] == '*' && pattern[1] == '.') {
        const char *dot = strchr(name, '.');
        return dot != NULL && strcasecmp(dot, pattern + 1) == 0;
    }
    return strcasecmp(pattern, name) == 0;
}

static int on_servername(SSL *ssl, int *ad, void *arg)
{
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    sni_table_t *t = arg;
    (void)ad;

    if (name == NULL)
        return SSL_TLSEXT_ERR_OK;
    for (size_t i = 0; i != t->n; ++i)
        for (size_t j = 0; j != t->entries[i].nnames; ++j)
            if (name_matches(t->entries[i].names[j], name)) {
                if (i != 0)
                    SSL_set_SSL_CTX(ssl, t->entries[i].ctx);
                return SSL_TLSEXT_ERR_OK;
            }
    return SSL_TLSEXT_ERR_OK; /* unknown names get the default certificate */
}

static void free_sni_table(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    sni_table_t *t = ptr;
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    if (t == NULL)
        return;
    for (size_t i = 0; i != t->n; ++i) {
        for (size_t j = 0; j != t->entries[i].nnames; ++j)
            free(t->entries[i].names[j]);
        free(t->entries[i].names);
        if (i != 0)
            SSL_CTX_free(t->entries[i].ctx);
    }
    free(t->entries);
    free(t);
}

static void add_name(sni_entry_t *e, const char *s, size_t len)
{
    char *n = h2o_mem_alloc(len + 1);
    for (size_t i = 0; i != len; ++i)
        n[i] = (char)h2o_tolower(s[i]);
    n[len] = '\0';
    e->names = h2o_mem_realloc(e->names, sizeof(*e->names) * (e->nnames + 1));
    e->names[e->nnames++] = n;
}

static void collect_names(sni_entry_t *e, X509 *cert)
{
    GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    if (sans != NULL) {
        for (int i = 0; i != sk_GENERAL_NAME_num(sans); ++i) {
            const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
            if (gn->type == GEN_DNS)
                add_name(e, (const char *)ASN1_STRING_get0_data(gn->d.dNSName), (size_t)ASN1_STRING_length(gn->d.dNSName));
        }
        GENERAL_NAMES_free(sans);
    }
    if (e->nnames == 0) {
        char cn[256];
        int len = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn));
        if (len > 0)
            add_name(e, cn, (size_t)len);
    }
}

static SSL_CTX *new_server_ctx(const conf_tls_cert_t *c, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        ssl_error(err, errlen, "cannot create a TLS context for", c->cert);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(ctx, c->cert) != 1) {
        ssl_error(err, errlen, "cannot load the certificate", c->cert);
        goto Fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, c->key, SSL_FILETYPE_PEM) != 1) {
        ssl_error(err, errlen, "cannot load the private key", c->key);
        goto Fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ssl_error(err, errlen, "the private key does not match the certificate", c->cert);
        goto Fail;
    }
    h2o_ssl_register_alpn_protocols(ctx, h2o_alpn_protocols);
    return ctx;
Fail:
    SSL_CTX_free(ctx);
    return NULL;
}

static int mkdir_p(const char *dir)
{
    char buf[4096];
    size_t len = strlen(dir);
    if (len >= sizeof(buf))
        return -1;
    memcpy(buf, dir, len + 1);
    for (char *p = buf + 1; *p != '\0'; ++p) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* Writes a self-signed EC P-256 certificate for localhost / 127.0.0.1 / ::1, valid ten years. */
static int make_self_signed(const char *crt_path, const char *key_path, char *err, size_t errlen)
{
    EVP_PKEY *pkey = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509V3_CTX v3;
    X509_EXTENSION *ext;
    unsigned char serial[16];
    BIGNUM *bn = NULL;
    FILE *fp = NULL;
    int ret = -1, fd;

    if (pkey == NULL || x == NULL)
        goto Exit;
    X509_set_version(x, 2);
    if (RAND_bytes(serial, sizeof(serial)) != 1)
        goto Exit;
    serial[0] &= 0x7f;
    bn = BN_bin2bn(serial, sizeof(serial), NULL);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 10L * 365 * 24 * 3600);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "O", MBSTRING_ASC, (const unsigned char *)"edgeproxy self-signed", -1, -1,
                               0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_set_pubkey(x, pkey);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    if ((ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1")) == NULL)
        goto Exit;
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    if (X509_sign(x, pkey, EVP_sha256()) == 0)
        goto Exit;

    if ((fd = open(key_path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1 || (fp = fdopen(fd, "w")) == NULL ||
        PEM_write_PrivateKey(fp, pkey, NULL, NULL, 0, NULL, NULL) != 1 || fclose(fp) != 0) {
        fp = NULL;
        snprintf(err, errlen, "cannot write %s: %s", key_path, strerror(errno));
        goto Exit;
    }
    if ((fp = fopen(crt_path, "w")) == NULL || PEM_write_X509(fp, x) != 1 || fclose(fp) != 0) {
        fp = NULL;
        snprintf(err, errlen, "cannot write %s: %s", crt_path, strerror(errno));
        goto Exit;
    }
    fp = NULL;
    ret = 0;
Exit:
    if (ret != 0 && err[0] == '\0')
        ssl_error(err, errlen, "cannot generate the self-signed certificate", crt_path);
    if (fp != NULL)
        fclose(fp);
    BN_free(bn);
    X509_free(x);
    EVP_PKEY_free(pkey);
    return ret;
}

int px_tls_listener_ctx(const conf_t *conf, const conf_listener_t *l, SSL_CTX **out, char *err, size_t errlen)
{
    conf_tls_cert_t self_signed;
    const conf_tls_cert_t *certs = l->certs;
    size_t ncerts = l->ncerts;
    char dir[4096], crt[4200], key[4200];
    sni_table_t *t;

    err[0] = '\0';
    if (ncerts == 0) {
        struct stat st;
        snprintf(dir, sizeof(dir), "%s/tls", conf->data_dir);
        snprintf(crt, sizeof(crt), "%s/self-signed.crt", dir);
        snprintf(key, sizeof(key), "%s/self-signed.key", dir);
        if (stat(crt, &st) != 0 || stat(key, &st) != 0) {
            if (mkdir_p(dir) != 0) {
                snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
                return -1;
            }
            if (make_self_signed(crt, key, err, errlen) != 0)
                return -1;
            fprintf(stderr, "edgeproxy: generated a self-signed certificate: %s\n", crt);
        }
        self_signed = (conf_tls_cert_t){crt, key};
        certs = &self_signed;
        ncerts = 1;
    }

    if (sni_index == -1)
        sni_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, free_sni_table);
    t = h2o_mem_alloc(sizeof(*t));
    t->n = 0;
    t->entries = h2o_mem_alloc(sizeof(*t->entries) * ncerts);
    for (size_t i = 0; i != ncerts; ++i) {
        sni_entry_t *e = t->entries + i;
        if ((e->ctx = new_server_ctx(certs + i, err, errlen)) == NULL) {
            if (t->n != 0) {
                SSL_CTX_set_ex_data(t->entries[0].ctx, sni_index, t);
                SSL_CTX_free(t->entries[0].ctx);
            } else {
                free(t->entries);
                free(t);
            }
            return -1;
        }
        e->names = NULL;
        e->nnames = 0;
        collect_names(e, SSL_CTX_get0_certificate(e->ctx));
        ++t->n;
    }
    SSL_CTX_set_ex_data(t->entries[0].ctx, sni_index, t);
    if (ncerts > 1) {
        SSL_CTX_set_tlsext_servername_callback(t->entries[0].ctx, on_servername);
        SSL_CTX_set_tlsext_servername_arg(t->entries[0].ctx, t);
    }
    *out = t->entries[0].ctx;
    return 0;
}

int px_tls_origin_ctx(const conf_origin_t *o, SSL_CTX **out, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    X509_VERIFY_PARAM *param;
    unsigned char ip[16];

    if (ctx == NULL) {
        ssl_error(err, errlen, "cannot create a TLS context for", o->url);
        return -1;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if ((o->ca_file != NULL ? SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL) : SSL_CTX_set_default_verify_paths(ctx)) != 1) {
        ssl_error(err, errlen, "cannot load the CA file", o->ca_file != NULL ? o->ca_file : "(system default)");
        SSL_CTX_free(ctx);
        return -1;
    }
    param = SSL_CTX_get0_param(ctx);
    if (inet_pton(AF_INET, o->host, ip) == 1 || inet_pton(AF_INET6, o->host, ip) == 1)
        X509_VERIFY_PARAM_set1_ip_asc(param, o->host);
    else
        X509_VERIFY_PARAM_set1_host(param, o->host, 0);
    *out = ctx;
    return 0;
}
