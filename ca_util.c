/* Licensed under the Apache License, Version 2.0 (see COPYING). */

#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>
#include <apr_file_io.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/provider.h>
#include <openssl/x509v3.h>

#include "ca_util.h"

static apr_status_t x509_cleanup(void *data)
{
    X509_free(data);
    return APR_SUCCESS;
}

static apr_status_t pkey_cleanup(void *data)
{
    EVP_PKEY_free(data);
    return APR_SUCCESS;
}

static apr_status_t req_cleanup(void *data)
{
    X509_REQ_free(data);
    return APR_SUCCESS;
}

static apr_status_t x509_stack_cleanup(void *data)
{
    sk_X509_pop_free(data, X509_free);
    return APR_SUCCESS;
}

X509 *ca_x509_own(apr_pool_t *p, X509 *x)
{
    if (x) {
        apr_pool_cleanup_register(p, x, x509_cleanup,
                                  apr_pool_cleanup_null);
    }
    return x;
}

EVP_PKEY *ca_pkey_own(apr_pool_t *p, EVP_PKEY *k)
{
    if (k) {
        apr_pool_cleanup_register(p, k, pkey_cleanup,
                                  apr_pool_cleanup_null);
    }
    return k;
}

X509_REQ *ca_req_own(apr_pool_t *p, X509_REQ *req)
{
    if (req) {
        apr_pool_cleanup_register(p, req, req_cleanup,
                                  apr_pool_cleanup_null);
    }
    return req;
}

STACK_OF(X509) *ca_x509_stack_own(apr_pool_t *p, STACK_OF(X509) *sk)
{
    if (sk) {
        apr_pool_cleanup_register(p, sk, x509_stack_cleanup,
                                  apr_pool_cleanup_null);
    }
    return sk;
}

const char *ca_openssl_errors(apr_pool_t *p)
{
    const char *out = "";
    const char *file, *data;
    int line, flags;
    unsigned long e;
    char buf[256];

    while ((e = ERR_get_error_all(&file, &line, NULL, &data, &flags))) {
        ERR_error_string_n(e, buf, sizeof(buf));
        out = apr_pstrcat(p, out, *out ? "; " : "", buf,
                          (flags & ERR_TXT_STRING) && data && *data ? " (" : "",
                          (flags & ERR_TXT_STRING) && data ? data : "",
                          (flags & ERR_TXT_STRING) && data && *data ? ")" : "",
                          NULL);
    }
    return out;
}

static BIO *open_file(apr_pool_t *p, const char *file, const char **err)
{
    BIO *bio = BIO_new_file(file, "rb");

    if (!bio && err) {
        *err = apr_psprintf(p, "cannot read '%s': %s", file,
                            ca_openssl_errors(p));
    }
    return bio;
}

apr_status_t ca_load_cert(apr_pool_t *p, const char *file, X509 **px,
                          const char **err)
{
    BIO *bio = open_file(p, file, err);
    X509 *x;

    if (!bio) {
        return APR_ENOENT;
    }
    x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    if (!x) {
        /* not PEM: try DER from the start */
        ERR_clear_error();
        (void)BIO_reset(bio);
        x = d2i_X509_bio(bio, NULL);
    }
    BIO_free(bio);
    if (!x) {
        if (err) {
            *err = apr_psprintf(p, "'%s' holds no certificate (PEM or DER): "
                                "%s", file, ca_openssl_errors(p));
        }
        return APR_EINVAL;
    }
    *px = ca_x509_own(p, x);
    return APR_SUCCESS;
}

apr_status_t ca_load_certs(apr_pool_t *p, const char *file,
                           STACK_OF(X509) **psk, const char **err)
{
    BIO *bio = open_file(p, file, err);
    STACK_OF(X509) *sk;
    X509 *x;

    if (!bio) {
        return APR_ENOENT;
    }
    sk = ca_x509_stack_own(p, sk_X509_new_null());
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
        sk_X509_push(sk, x);
    }
    BIO_free(bio);
    /* the loop ends with a harmless "no start line" */
    ERR_clear_error();
    if (sk_X509_num(sk) == 0) {
        if (err) {
            *err = apr_psprintf(p, "'%s' holds no PEM certificate", file);
        }
        return APR_EINVAL;
    }
    *psk = sk;
    return APR_SUCCESS;
}

apr_status_t ca_load_key(apr_pool_t *p, const char *file, EVP_PKEY **pk,
                         const char **err)
{
    BIO *bio = open_file(p, file, err);
    EVP_PKEY *k;

    if (!bio) {
        return APR_ENOENT;
    }
    /* an empty passphrase callback: encrypted keys fail, never prompt */
    k = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)"");
    if (!k) {
        ERR_clear_error();
        (void)BIO_reset(bio);
        k = d2i_PrivateKey_bio(bio, NULL);
    }
    BIO_free(bio);
    if (!k) {
        if (err) {
            *err = apr_psprintf(p, "'%s' holds no unencrypted private key: %s",
                                file, ca_openssl_errors(p));
        }
        return APR_EINVAL;
    }
    *pk = ca_pkey_own(p, k);
    return APR_SUCCESS;
}

apr_status_t ca_x509_der(apr_pool_t *p, X509 *x, const unsigned char **der,
                         apr_size_t *len)
{
    int n = i2d_X509(x, NULL);
    unsigned char *buf, *q;

    if (n <= 0) {
        return APR_EINVAL;
    }
    q = buf = apr_palloc(p, n);
    i2d_X509(x, &q);
    *der = buf;
    *len = n;
    return APR_SUCCESS;
}

apr_status_t ca_req_der(apr_pool_t *p, X509_REQ *req,
                        const unsigned char **der, apr_size_t *len)
{
    int n = i2d_X509_REQ(req, NULL);
    unsigned char *buf, *q;

    if (n <= 0) {
        return APR_EINVAL;
    }
    q = buf = apr_palloc(p, n);
    i2d_X509_REQ(req, &q);
    *der = buf;
    *len = n;
    return APR_SUCCESS;
}

X509 *ca_x509_parse(apr_pool_t *p, const unsigned char *der, apr_size_t len)
{
    const unsigned char *q = der;

    return ca_x509_own(p, d2i_X509(NULL, &q, (long)len));
}

X509_REQ *ca_req_parse(apr_pool_t *p, const unsigned char *der,
                       apr_size_t len)
{
    const unsigned char *q = der;

    return ca_req_own(p, d2i_X509_REQ(NULL, &q, (long)len));
}

apr_status_t ca_p7_certs_der(apr_pool_t *p, STACK_OF(X509) *certs,
                             const unsigned char **der, apr_size_t *len)
{
    PKCS7 *p7 = PKCS7_new();
    unsigned char *buf = NULL, *q;
    apr_status_t rv = APR_EINVAL;
    int i, n;

    /* signed-data with no signers and the id-data content left out */
    if (!p7 || !PKCS7_set_type(p7, NID_pkcs7_signed)
        || !PKCS7_content_new(p7, NID_pkcs7_data)) {
        goto out;
    }
    for (i = 0; i < sk_X509_num(certs); i++) {
        if (!PKCS7_add_certificate(p7, sk_X509_value(certs, i))) {
            goto out;
        }
    }
    PKCS7_set_detached(p7, 1);
    n = i2d_PKCS7(p7, NULL);
    if (n <= 0) {
        goto out;
    }
    q = buf = apr_palloc(p, n);
    i2d_PKCS7(p7, &q);
    *der = buf;
    *len = n;
    rv = APR_SUCCESS;
out:
    PKCS7_free(p7);
    return rv;
}

STACK_OF(X509) *ca_p7_certs_parse(apr_pool_t *p, const unsigned char *der,
                                  apr_size_t len)
{
    const unsigned char *q = der;
    PKCS7 *p7 = d2i_PKCS7(NULL, &q, (long)len);
    STACK_OF(X509) *sk = NULL;
    int i;

    if (p7 && PKCS7_type_is_signed(p7) && p7->d.sign
        && p7->d.sign->cert) {
        sk = ca_x509_stack_own(p, sk_X509_new_null());
        for (i = 0; i < sk_X509_num(p7->d.sign->cert); i++) {
            X509 *x = sk_X509_value(p7->d.sign->cert, i);

            X509_up_ref(x);
            sk_X509_push(sk, x);
        }
    }
    PKCS7_free(p7);
    return sk;
}

apr_time_t ca_asn1_time_to_apr(const ASN1_TIME *t)
{
    struct tm tm;
    apr_time_exp_t xt;
    apr_time_t out;

    if (!t || !ASN1_TIME_to_tm(t, &tm)) {
        return 0;
    }
    memset(&xt, 0, sizeof(xt));
    xt.tm_sec = tm.tm_sec;
    xt.tm_min = tm.tm_min;
    xt.tm_hour = tm.tm_hour;
    xt.tm_mday = tm.tm_mday;
    xt.tm_mon = tm.tm_mon;
    xt.tm_year = tm.tm_year;
    if (apr_time_exp_gmt_get(&out, &xt) != APR_SUCCESS) {
        return 0;
    }
    return out;
}

int ca_secret_equal(const char *expected, const char *supplied)
{
    size_t elen = strlen(expected), slen = strlen(supplied), i;
    unsigned char diff = (unsigned char)(elen != slen);

    /* walk the supplied value whole, whatever the expected length */
    for (i = 0; i < slen; i++) {
        diff |= (unsigned char)(supplied[i] ^ (elen ? expected[i % elen] : 0));
    }
    return diff == 0;
}

const char *ca_hex(apr_pool_t *p, const unsigned char *buf, apr_size_t len)
{
    static const char digits[] = "0123456789abcdef";
    char *out = apr_palloc(p, len * 2 + 1);
    apr_size_t i;

    for (i = 0; i < len; i++) {
        out[2 * i] = digits[buf[i] >> 4];
        out[2 * i + 1] = digits[buf[i] & 0x0f];
    }
    out[2 * len] = '\0';
    return out;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+') {
        return 62;
    }
    if (c == '/') {
        return 63;
    }
    return -1;
}

apr_status_t ca_base64_decode_lenient(apr_pool_t *p, const char *in,
                                      apr_size_t inlen, unsigned char **out,
                                      apr_size_t *outlen)
{
    unsigned char *buf = apr_palloc(p, inlen / 4 * 3 + 3);
    apr_size_t i, n = 0;
    unsigned int acc = 0;
    int bits = 0, pad = 0;

    for (i = 0; i < inlen; i++) {
        unsigned char c = (unsigned char)in[i];
        int v;

        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            continue;
        }
        if (c == '=') {
            pad++;
            continue;
        }
        v = b64_value(c);
        if (v < 0 || pad) {
            /* a foreign character, or data after the padding */
            return APR_EINVAL;
        }
        acc = (acc << 6) | (unsigned int)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* six leftover bits cannot come from whole bytes */
    if (bits == 6 || pad > 2) {
        return APR_EINVAL;
    }
    *out = buf;
    *outlen = n;
    return APR_SUCCESS;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

char *ca_percent_decode(apr_pool_t *p, const char *in, apr_size_t inlen,
                        apr_size_t *outlen)
{
    char *out = apr_palloc(p, inlen + 1);
    apr_size_t i, n = 0;

    for (i = 0; i < inlen; i++) {
        int hi, lo;

        if (in[i] == '%' && i + 2 < inlen
            && (hi = hex_value(in[i + 1])) >= 0
            && (lo = hex_value(in[i + 2])) >= 0) {
            out[n++] = (char)(hi << 4 | lo);
            i += 2;
        }
        else {
            /* '+' stays '+': it is base64, not a form-encoded space */
            out[n++] = in[i];
        }
    }
    out[n] = '\0';
    if (outlen) {
        *outlen = n;
    }
    return out;
}

const char *ca_query_param(apr_pool_t *p, const char *args, const char *name,
                           apr_size_t *len)
{
    const char *end;
    apr_size_t nlen = strlen(name);

    while (args && *args) {
        end = strchr(args, '&');
        if (!end) {
            end = args + strlen(args);
        }
        if ((apr_size_t)(end - args) >= nlen && !strncmp(args, name, nlen)
            && (args[nlen] == '=' || args + nlen == end)) {
            const char *v = args[nlen] == '=' ? args + nlen + 1 : end;

            return ca_percent_decode(p, v, (apr_size_t)(end - v), len);
        }
        args = *end ? end + 1 : end;
    }
    return NULL;
}

int ca_x509_allows_ku(X509 *x, uint32_t ku_bits)
{
    if (!(X509_get_extension_flags(x) & EXFLAG_KUSAGE)) {
        return 1;
    }
    return (X509_get_key_usage(x) & ku_bits) == ku_bits;
}

/* ---- parsing without decoding public keys ---------------------------- */

/*
 * A library context with no algorithms at all (the null provider keeps the
 * default one from being loaded into it on first use): parsed in it, a
 * public key finds no decoder, quickly, and stays undecoded.  Only the
 * SubjectPublicKeyInfo decoding sees this context; the objects themselves
 * keep the default one for digests and signatures.  Made once, kept for
 * the life of the code: nokey_free() gives it back at exit, or when the
 * module holding this copy of the code is unloaded.
 */
static CRYPTO_ONCE nokey_once = CRYPTO_ONCE_STATIC_INIT;
static OSSL_LIB_CTX *nokey_ctx;
static OSSL_PROVIDER *nokey_null;

/*
 * Registered with atexit() after OpenSSL has registered its own cleanup,
 * so it runs first at exit (handlers run in reverse order); glibc also
 * runs it when the module holding this code is unloaded.  Without it, the
 * context is lost in httpd -X: httpd unloads its modules (apr_terminate)
 * only after exit() has run OpenSSL's cleanup, and then nothing points to
 * the context any more.  The context is only used while requests are
 * served, never while a process exits or reloads its modules.
 */
static void nokey_free(void)
{
    OSSL_LIB_CTX *ctx = nokey_ctx;

    nokey_ctx = NULL;
    if (nokey_null) {
        OSSL_PROVIDER_unload(nokey_null);
        nokey_null = NULL;
    }
    OSSL_LIB_CTX_free(ctx);
}

static void nokey_init(void)
{
    OSSL_LIB_CTX *ctx = OSSL_LIB_CTX_new();

    if (!ctx) {
        return;
    }
    if (!(nokey_null = OSSL_PROVIDER_load(ctx, "null"))
        || atexit(nokey_free) != 0) {
        if (nokey_null) {
            OSSL_PROVIDER_unload(nokey_null);
            nokey_null = NULL;
        }
        OSSL_LIB_CTX_free(ctx);
        return;
    }
    nokey_ctx = ctx;
}

static ASN1_VALUE *parse_nokey(const ASN1_ITEM *it, const unsigned char **q,
                               long len)
{
    ASN1_VALUE *v;

    if (!CRYPTO_THREAD_run_once(&nokey_once, nokey_init) || !nokey_ctx) {
        return ASN1_item_d2i(NULL, q, len, it);
    }
    ERR_set_mark();
    v = ASN1_item_d2i_ex(NULL, q, len, it, nokey_ctx, NULL);
    if (v) {
        /* the decoders that were not found */
        ERR_pop_to_mark();
    }
    else {
        ERR_clear_last_mark();
    }
    return v;
}

X509 *ca_x509_parse_nokey(apr_pool_t *p, const unsigned char *der,
                          apr_size_t len)
{
    const unsigned char *q = der;

    return ca_x509_own(p, (X509 *)parse_nokey(ASN1_ITEM_rptr(X509), &q,
                                              (long)len));
}

X509_REQ *ca_req_parse_nokey(apr_pool_t *p, const unsigned char *der,
                             apr_size_t len)
{
    const unsigned char *q = der;

    return ca_req_own(p, (X509_REQ *)parse_nokey(ASN1_ITEM_rptr(X509_REQ),
                                                 &q, (long)len));
}

PKCS7 *ca_p7_parse_nokey(const unsigned char **der, long len)
{
    return (PKCS7 *)parse_nokey(ASN1_ITEM_rptr(PKCS7), der, len);
}

static EVP_PKEY *pubkey_decode(X509_PUBKEY *xpk)
{
    ASN1_OBJECT *alg = NULL;
    const unsigned char *bits = NULL, *q;
    unsigned char *der = NULL;
    EVP_PKEY *k = NULL;
    int n = 0;

    X509_PUBKEY_get0_param(&alg, &bits, &n, NULL, xpk);
    if (OBJ_obj2nid(alg) == NID_rsaEncryption) {
        /* RSAPublicKey, by the ASN.1 code, not the decoders */
        q = bits;
        k = d2i_PublicKey(EVP_PKEY_RSA, NULL, &q, n);
        if (k && q != bits + n) {
            EVP_PKEY_free(k);
            k = NULL;
        }
        return k;
    }
    if ((n = i2d_X509_PUBKEY(xpk, &der)) > 0) {
        q = der;
        k = d2i_PUBKEY(NULL, &q, n);
    }
    OPENSSL_free(der);
    return k;
}

EVP_PKEY *ca_pubkey_get(apr_pool_t *p, X509_PUBKEY *xpk)
{
    return xpk ? ca_pkey_own(p, pubkey_decode(xpk)) : NULL;
}

int ca_x509_load_pubkey(X509 *x)
{
    unsigned char *before = NULL, *after = NULL;
    EVP_PKEY *k;
    int nb, na = 0, ok;

    ERR_set_mark();
    if (X509_get0_pubkey(x)) {
        ERR_pop_to_mark();
        return 1;
    }
    ERR_pop_to_mark();
    /* only where the key can be set without changing a byte of the
     * certificate as it was sent: its signature must still verify */
    if (!(k = pubkey_decode(X509_get_X509_PUBKEY(x)))
        || EVP_PKEY_get_base_id(k) != EVP_PKEY_RSA) {
        EVP_PKEY_free(k);
        return 0;
    }
    nb = i2d_X509(x, &before);
    ok = nb > 0 && X509_set_pubkey(x, k)
         && (na = i2d_X509(x, &after)) == nb && !memcmp(before, after, nb);
    OPENSSL_free(before);
    OPENSSL_free(after);
    EVP_PKEY_free(k);
    return ok;
}

int ca_pubkey_copy(X509_PUBKEY *to, X509_PUBKEY *from)
{
    ASN1_OBJECT *alg = NULL;
    const unsigned char *bits = NULL;
    X509_ALGOR *algor = NULL;
    const ASN1_OBJECT *aobj;
    const void *pval;
    void *param = NULL;
    unsigned char *copy;
    int n = 0, ptype;

    if (!to || !from
        || !X509_PUBKEY_get0_param(&alg, &bits, &n, &algor, from)
        || !bits || n <= 0) {
        return 0;
    }
    X509_ALGOR_get0(&aobj, &ptype, &pval, algor);
    if (ptype == V_ASN1_SEQUENCE || ptype == V_ASN1_OBJECT) {
        param = ptype == V_ASN1_SEQUENCE
                ? (void *)ASN1_STRING_dup(pval)
                : (void *)OBJ_dup(pval);
        if (!param) {
            return 0;
        }
    }
    else if (ptype != V_ASN1_NULL && ptype != V_ASN1_UNDEF) {
        return 0;
    }
    if (!(copy = OPENSSL_memdup(bits, n))) {
        goto fail;
    }
    if (!X509_PUBKEY_set0_param(to, OBJ_dup(aobj), ptype, param, copy, n)) {
        OPENSSL_free(copy);
        goto fail;
    }
    return 1;
fail:
    if (ptype == V_ASN1_SEQUENCE) {
        ASN1_STRING_free(param);
    }
    else if (ptype == V_ASN1_OBJECT) {
        ASN1_OBJECT_free(param);
    }
    return 0;
}
