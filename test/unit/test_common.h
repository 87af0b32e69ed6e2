/* Licensed under the Apache License, Version 2.0 (see COPYING). */

/*
 * Shared declarations of the C unit tests: one libcheck Suite per source
 * file under test, collected by main.c, plus fixture helpers that make
 * keys, certificates and requests with the OpenSSL API.
 */

#ifndef TEST_COMMON_H
#define TEST_COMMON_H

#include <check.h>

#include <apr_pools.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

/* The suites, one per source file. */
Suite *ca_util_suite(void);
Suite *scep_msg_suite(void);
Suite *scep_rebuild_suite(void);

/* A fresh RSA key of the given size (caller frees). */
EVP_PKEY *test_rsa_key(int bits);

/* A self-signed certificate for key with CN=cn, valid an hour ago to a
 * year ahead; key usage ku (X509v3_KU_* bits) when non-zero (caller
 * frees). */
X509 *test_self_signed(EVP_PKEY *key, const char *cn, int ku);

/* A certificate for subject_key with CN=cn issued by ca (caller frees). */
X509 *test_issue(EVP_PKEY *subject_key, const char *cn, X509 *ca,
                 EVP_PKEY *ca_key);

/* A PKCS#10 request with CN=cn signed by key; with a challengePassword of
 * ASN.1 type challenge_type (V_ASN1_PRINTABLESTRING, ...) when challenge
 * is not NULL (caller frees). */
X509_REQ *test_csr(EVP_PKEY *key, const char *cn, const char *challenge,
                   int challenge_type);

/* Write len bytes to a fresh temporary file; its name, from the pool. */
const char *test_temp_file(apr_pool_t *p, const void *data, apr_size_t len);

#endif /* TEST_COMMON_H */
