/* Licensed under the Apache License, Version 2.0 (see COPYING). */

/*
 * ca_util: helpers shared by the modules, the unit tests, the fuzzers and
 * the test client.  OpenSSL and APR only, no httpd.  Every OpenSSL object
 * handed out is owned by the pool it was made in (a cleanup frees it).
 * Functions return apr_status_t; on failure *err, when err is not NULL,
 * says why in words allocated from the pool.
 */

#ifndef CA_UTIL_H
#define CA_UTIL_H

#include <apr_pools.h>
#include <apr_time.h>
#include <openssl/x509.h>
#include <openssl/evp.h>
#include <openssl/pkcs7.h>

/* Make the pool own an object: it is freed when the pool is cleared. */
X509 *ca_x509_own(apr_pool_t *p, X509 *x);
EVP_PKEY *ca_pkey_own(apr_pool_t *p, EVP_PKEY *k);
X509_REQ *ca_req_own(apr_pool_t *p, X509_REQ *req);
STACK_OF(X509) *ca_x509_stack_own(apr_pool_t *p, STACK_OF(X509) *sk);

/* Empty the OpenSSL error queue into one line ("; "-separated), or "" */
const char *ca_openssl_errors(apr_pool_t *p);

/* Read one certificate (PEM or DER) from a file. */
apr_status_t ca_load_cert(apr_pool_t *p, const char *file, X509 **px,
                          const char **err);
/* Read every certificate of a PEM file (at least one). */
apr_status_t ca_load_certs(apr_pool_t *p, const char *file,
                           STACK_OF(X509) **psk, const char **err);
/* Read an unencrypted private key (PEM or DER). */
apr_status_t ca_load_key(apr_pool_t *p, const char *file, EVP_PKEY **pk,
                         const char **err);

/* DER encodings, allocated from the pool. */
apr_status_t ca_x509_der(apr_pool_t *p, X509 *x, const unsigned char **der,
                         apr_size_t *len);
apr_status_t ca_req_der(apr_pool_t *p, X509_REQ *req,
                        const unsigned char **der, apr_size_t *len);
X509 *ca_x509_parse(apr_pool_t *p, const unsigned char *der, apr_size_t len);
X509_REQ *ca_req_parse(apr_pool_t *p, const unsigned char *der,
                       apr_size_t len);

/* A degenerate certificates-only PKCS#7 SignedData holding certs, in order;
 * and back: the certificates of one (NULL when it is not one). */
apr_status_t ca_p7_certs_der(apr_pool_t *p, STACK_OF(X509) *certs,
                             const unsigned char **der, apr_size_t *len);
STACK_OF(X509) *ca_p7_certs_parse(apr_pool_t *p, const unsigned char *der,
                                  apr_size_t len);

/* notAfter/notBefore of a certificate as an apr_time_t (0 on error). */
apr_time_t ca_asn1_time_to_apr(const ASN1_TIME *t);

/* Constant-time comparison of two secrets (the time taken depends only on
 * the length of b, the supplied value).  1 when equal. */
int ca_secret_equal(const char *expected, const char *supplied);

/* Lower-case hex of a buffer. */
const char *ca_hex(apr_pool_t *p, const unsigned char *buf, apr_size_t len);

/* Base64 as real SCEP clients send it in a GET query (already
 * percent-decoded): standard alphabet, '+' kept, whitespace and line
 * breaks ignored, missing '=' padding tolerated.  APR_EINVAL on anything
 * else. */
apr_status_t ca_base64_decode_lenient(apr_pool_t *p, const char *in,
                                      apr_size_t inlen, unsigned char **out,
                                      apr_size_t *outlen);

/* Percent-decode a query value without turning '+' into a space. */
char *ca_percent_decode(apr_pool_t *p, const char *in, apr_size_t inlen,
                        apr_size_t *outlen);

/* The value of the first name= (or bare name) parameter of a query string
 * (r->args), percent-decoded as above; NULL when args is NULL or has no
 * such parameter.  *len, when len is not NULL, is its length. */
const char *ca_query_param(apr_pool_t *p, const char *args, const char *name,
                           apr_size_t *len);

/* Whether a certificate's key usage allows a purpose (absent KU allows
 * everything, as RFC 5280 says). */
int ca_x509_allows_ku(X509 *x, uint32_t ku_bits);

/*
 * Parsing without decoding public keys.  OpenSSL 3.0 decodes the public key
 * of every certificate and request it parses, eagerly, through its provider
 * decoders, and setting a decoder up costs about half an RSA-2048
 * signature (150 us on the benchmark machine; docs/performance.md).  These
 * parse the structure only: X509_get0_pubkey() / X509_REQ_get0_pubkey() of
 * the result are NULL, everything else is as after d2i.  Use them where the
 * key is not needed, or get it with ca_pubkey_get() / ca_x509_load_pubkey().
 */
X509 *ca_x509_parse_nokey(apr_pool_t *p, const unsigned char *der,
                          apr_size_t len);
X509_REQ *ca_req_parse_nokey(apr_pool_t *p, const unsigned char *der,
                             apr_size_t len);
/* The same for a PKCS#7 (its certificates); not owned by a pool. */
PKCS7 *ca_p7_parse_nokey(const unsigned char **der, long len);

/* The public key of a SubjectPublicKeyInfo, owned by the pool: RSA keys
 * are decoded directly (about 1 us), others through the decoders. */
EVP_PKEY *ca_pubkey_get(apr_pool_t *p, X509_PUBKEY *xpk);

/* Give a certificate parsed by ca_*_nokey its public key.  0 when it
 * cannot be done without changing the certificate's encoding; the
 * certificate must then be parsed again the ordinary way. */
int ca_x509_load_pubkey(X509 *x);

/* Copy a SubjectPublicKeyInfo as it is (algorithm, parameters, key bits)
 * without decoding it: X509_set_pubkey() and X509_REQ_set_pubkey() cost an
 * encoder and a decoder each in OpenSSL 3.0 (about 250 us). */
int ca_pubkey_copy(X509_PUBKEY *to, X509_PUBKEY *from);

#endif /* CA_UTIL_H */
