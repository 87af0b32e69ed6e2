/* Licensed under the Apache License, Version 2.0 (see COPYING). */

/*
 * codec-cost: what OpenSSL 3's key decoders and encoders cost next to an
 * RSA-2048 signature, on this machine (docs/performance.md, "Hot path").
 *
 *   bench/codec-cost CERT.pem KEY.pem [ITERATIONS]
 *
 * CERT and KEY: an RSA certificate and its key (e.g. the RA of
 * scripts/make-pki.sh).  Prints microseconds per operation, one thread.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1t.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/x509.h>

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define MEASURE(label, n, body) do {                                    \
        double t0_ = now_s();                                           \
        int i_;                                                         \
        for (i_ = 0; i_ < (n); i_++) {                                  \
            body;                                                       \
        }                                                               \
        printf("%-58s %9.1f us\n", label, (now_s() - t0_) / (n) * 1e6); \
    } while (0)

int main(int argc, char **argv)
{
    OSSL_LIB_CTX *nokey = OSSL_LIB_CTX_new();
    unsigned char *cder = NULL, *rder = NULL, md[32] = { 1 }, sig[512];
    const unsigned char *bits;
    int clen, rlen, blen, n = argc > 3 ? atoi(argv[3]) : 2000;
    X509_REQ *req;
    X509 *cert;
    EVP_PKEY *key, *pub;
    FILE *f;

    if (argc < 3 || !(f = fopen(argv[1], "r"))) {
        fprintf(stderr, "usage: codec-cost CERT.pem KEY.pem [ITERATIONS]\n");
        return 2;
    }
    cert = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (!(f = fopen(argv[2], "r"))) {
        fprintf(stderr, "codec-cost: cannot read %s\n", argv[2]);
        return 2;
    }
    key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (!cert || !key || !nokey || !OSSL_PROVIDER_load(nokey, "null")) {
        fprintf(stderr, "codec-cost: cannot load the certificate and key\n");
        return 1;
    }
    /* as mod_scep has it: the legacy provider next to the default one */
    OSSL_PROVIDER_load(NULL, "legacy");
    OSSL_PROVIDER_load(NULL, "default");

    pub = X509_get0_pubkey(cert);
    clen = i2d_X509(cert, &cder);
    req = X509_REQ_new();
    X509_REQ_set_subject_name(req, X509_get_subject_name(cert));
    X509_REQ_set_pubkey(req, key);
    X509_REQ_sign(req, key, EVP_sha256());
    rlen = i2d_X509_REQ(req, &rder);
    X509_PUBKEY_get0_param(NULL, &bits, &blen, NULL,
                           X509_get_X509_PUBKEY(cert));
    printf("OpenSSL %s, %d iterations\n", OpenSSL_version(OPENSSL_VERSION), n);

    MEASURE("RSA-2048 signature (EVP_PKEY_sign, new context)", n / 4, {
        EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(key, NULL);
        size_t sl = sizeof(sig);

        EVP_PKEY_sign_init(c);
        EVP_PKEY_CTX_set_signature_md(c, EVP_sha256());
        EVP_PKEY_sign(c, sig, &sl, md, sizeof(md));
        EVP_PKEY_CTX_free(c);
    });
    MEASURE("d2i_X509 (the key decoded by the provider decoders)", n, {
        const unsigned char *q = cder;
        X509_free(d2i_X509(NULL, &q, clen));
    });
    MEASURE("d2i_X509 in a library context without decoders", n, {
        const unsigned char *q = cder;
        X509_free((X509 *)ASN1_item_d2i_ex(NULL, &q, clen,
                                           ASN1_ITEM_rptr(X509), nokey,
                                           NULL));
    });
    ERR_clear_error();
    MEASURE("d2i_X509_REQ (the key decoded by the provider decoders)", n, {
        const unsigned char *q = rder;
        X509_REQ_free(d2i_X509_REQ(NULL, &q, rlen));
    });
    MEASURE("d2i_X509_REQ in a library context without decoders", n, {
        const unsigned char *q = rder;
        X509_REQ_free((X509_REQ *)ASN1_item_d2i_ex(NULL, &q, rlen,
                                                   ASN1_ITEM_rptr(X509_REQ),
                                                   nokey, NULL));
    });
    ERR_clear_error();
    MEASURE("d2i_PublicKey(EVP_PKEY_RSA) of the key bits", n, {
        const unsigned char *q = bits;
        EVP_PKEY_free(d2i_PublicKey(EVP_PKEY_RSA, NULL, &q, blen));
    });
    MEASURE("X509_set_pubkey (provider key: encoder + decoder)", n, {
        X509 *x = X509_new();
        X509_set_pubkey(x, pub);
        X509_free(x);
    });
    MEASURE("X509_PUBKEY_set0_param copy of the SubjectPublicKeyInfo", n, {
        X509 *x = X509_new();
        X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x),
                               OBJ_nid2obj(NID_rsaEncryption), V_ASN1_NULL,
                               NULL, OPENSSL_memdup(bits, blen), blen);
        X509_free(x);
    });
    MEASURE("EVP_CIPHER_fetch(AES-128-CBC)", n, {
        EVP_CIPHER_free(EVP_CIPHER_fetch(NULL, "AES-128-CBC", NULL));
    });

    OPENSSL_free(cder);
    OPENSSL_free(rder);
    X509_REQ_free(req);
    X509_free(cert);
    EVP_PKEY_free(key);
    OSSL_LIB_CTX_free(nokey);
    return 0;
}
