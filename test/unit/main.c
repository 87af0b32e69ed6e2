/* Licensed under the Apache License, Version 2.0 (see COPYING). */

/*
 * Runs every unit test suite and reports in TAP on stdout.  Set
 * CK_FORK=no to debug a failing test in one process, CK_RUN_SUITE or
 * CK_RUN_CASE to run only some (libcheck's own variables).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_file_io.h>
#include <apr_strings.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "test_common.h"
#include "scep_msg.h"

EVP_PKEY *test_rsa_key(int bits)
{
    EVP_PKEY *k = EVP_RSA_gen((unsigned int)bits);

    ck_assert_ptr_nonnull(k);
    return k;
}

static void set_serial(X509 *x)
{
    BIGNUM *bn = BN_new();

    ck_assert_ptr_nonnull(bn);
    ck_assert_int_eq(BN_rand(bn, 63, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY), 1);
    ck_assert_ptr_nonnull(BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)));
    BN_free(bn);
}

static X509 *new_cert(EVP_PKEY *key, const char *cn)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_get_subject_name(x);

    ck_assert_ptr_nonnull(x);
    ck_assert_int_eq(X509_set_version(x, X509_VERSION_3), 1);
    set_serial(x);
    ck_assert_int_eq(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                                (const unsigned char *)cn,
                                                -1, -1, 0), 1);
    ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notBefore(x), -3600));
    ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notAfter(x),
                                          365L * 86400));
    ck_assert_int_eq(X509_set_pubkey(x, key), 1);
    return x;
}

X509 *test_self_signed(EVP_PKEY *key, const char *cn, int ku)
{
    X509 *x = new_cert(key, cn);

    ck_assert_int_eq(X509_set_issuer_name(x, X509_get_subject_name(x)), 1);
    if (ku) {
        ASN1_BIT_STRING *bits = ASN1_BIT_STRING_new();
        int i;

        ck_assert_ptr_nonnull(bits);
        for (i = 0; i < 9; i++) {
            /* X509v3_KU_DIGITAL_SIGNATURE is 0x80 = bit 0, and so on */
            int mask = i < 8 ? (0x80 >> i) : 0x8000;

            if (ku & mask) {
                ck_assert_int_eq(ASN1_BIT_STRING_set_bit(bits, i, 1), 1);
            }
        }
        ck_assert_int_eq(X509_add1_ext_i2d(x, NID_key_usage, bits, 1, 0), 1);
        ASN1_BIT_STRING_free(bits);
    }
    ck_assert_int_gt(X509_sign(x, key, EVP_sha256()), 0);
    return x;
}

X509 *test_issue(EVP_PKEY *subject_key, const char *cn, X509 *ca,
                 EVP_PKEY *ca_key)
{
    X509 *x = new_cert(subject_key, cn);

    ck_assert_int_eq(X509_set_issuer_name(x, X509_get_subject_name(ca)), 1);
    ck_assert_int_gt(X509_sign(x, ca_key, EVP_sha256()), 0);
    return x;
}

X509_REQ *test_csr(EVP_PKEY *key, const char *cn, const char *challenge,
                   int challenge_type)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_REQ_get_subject_name(req);

    ck_assert_ptr_nonnull(req);
    ck_assert_int_eq(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                                (const unsigned char *)cn,
                                                -1, -1, 0), 1);
    ck_assert_int_eq(X509_REQ_set_pubkey(req, key), 1);
    if (challenge) {
        ck_assert_int_eq(X509_REQ_add1_attr_by_NID(req,
                             NID_pkcs9_challengePassword, challenge_type,
                             (const unsigned char *)challenge,
                             (int)strlen(challenge)), 1);
    }
    ck_assert_int_gt(X509_REQ_sign(req, key, EVP_sha256()), 0);
    return req;
}

static apr_status_t remove_file(void *data)
{
    remove(data);
    return APR_SUCCESS;
}

const char *test_temp_file(apr_pool_t *p, const void *data, apr_size_t len)
{
    char *name = apr_pstrdup(p, "/tmp/ca-unit-XXXXXX");
    apr_file_t *f;

    ck_assert_int_eq(apr_file_mktemp(&f, name, APR_FOPEN_CREATE
                                     | APR_FOPEN_READ | APR_FOPEN_WRITE
                                     | APR_FOPEN_EXCL | APR_FOPEN_BINARY, p),
                     APR_SUCCESS);
    /* removed when the test's pool goes */
    apr_pool_cleanup_register(p, name, remove_file, apr_pool_cleanup_null);
    ck_assert_int_eq(apr_file_write_full(f, data, len, NULL), APR_SUCCESS);
    ck_assert_int_eq(apr_file_close(f), APR_SUCCESS);
    return name;
}

int main(void)
{
    SRunner *sr;
    const char *err = NULL;
    int failed;

    if (apr_initialize() != APR_SUCCESS) {
        fprintf(stderr, "apr_initialize failed\n");
        return EXIT_FAILURE;
    }
    atexit(apr_terminate);
    if (scep_msg_init(&err) != APR_SUCCESS) {
        fprintf(stderr, "scep_msg_init: %s\n", err);
        return EXIT_FAILURE;
    }

    sr = srunner_create(ca_util_suite());
    srunner_add_suite(sr, scep_msg_suite());
    srunner_add_suite(sr, scep_rebuild_suite());
    srunner_set_tap(sr, "-");
    srunner_run_all(sr, CK_SILENT);
    failed = srunner_ntests_failed(sr);
    printf("# %d test(s) failed\n", failed);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
