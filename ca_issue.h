/* Licensed under the Apache License, Version 2.0 (see COPYING). */

/*
 * ca_issue: building and signing a certificate from a certificate request,
 * the part every signing backend shares (mod_ca_simple, mod_ca_engine and
 * the tools/ca-disk-sign approval tool).  OpenSSL and APR only, no httpd.
 *
 * A certificate is issued in steps, so that a caller can take the time and
 * the serial number from wherever it likes in between and can log each
 * failure its own way:
 *
 *   ca_issue_req_names()    the request's subject and subjectAltName
 *   ca_issue_ca_expired()   refuse once the CA certificate has expired
 *   ca_issue_cert_new()     version, issuer, subject, key, validity
 *   ca_issue_set_serial()   the serial number
 *   ca_issue_add_exts()     the configured extensions
 *   ca_issue_add_san()      the request's subjectAltName, unchanged
 *   ca_issue_sign()         the CA key's signature (a file key or an
 *                           ENGINE/provider key alike)
 *
 * ca_issue_certificate() runs them all for callers without hooks.
 *
 * The request handed in is the one the frontend rebuilt (mod_ca.h): its
 * signature is never checked here, and only its subject, its public key
 * and the subjectAltName of its extensionRequest are used, nothing else.
 *
 * Functions return apr_status_t; on failure *err, when err is not NULL,
 * says why in words allocated from the pool (OpenSSL's error queue is
 * drained into it).
 */

#ifndef CA_ISSUE_H
#define CA_ISSUE_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>
#include <openssl/x509.h>
#include <openssl/evp.h>

/* RFC 5280 4.1.2.2: a serial number is at most 20 octets. */
#define CA_ISSUE_SERIAL_LEN     20
#define CA_ISSUE_DAYS_DEFAULT   365
#define CA_ISSUE_DAYS_MAX       36500

/* One extension line, in OpenSSL configuration syntax. */
typedef struct ca_issue_ext {
    const char *name;           /* short name, e.g. "basicConstraints" */
    const char *value;          /* e.g. "critical,CA:FALSE" */
    const char *oid;            /* dotted OID, to refuse duplicates */
} ca_issue_ext;

/* What to issue with; everything but the request. */
typedef struct ca_issue_params {
    X509 *ca;                   /* the issuing CA certificate */
    EVP_PKEY *key;              /* its private key */
    const unsigned char *serial;        /* big-endian magnitude */
    apr_size_t serial_len;
    apr_time_t not_before;      /* usually now */
    int days;                   /* validity, capped at the CA's notAfter */
    const ca_issue_ext *exts;   /* NULL: ca_issue_default_exts() */
    int n_exts;
} ca_issue_params;

/* ---- extension lines ------------------------------------------------- */

/* The extensions of an end-entity client certificate, used when none are
 * configured: basicConstraints critical,CA:FALSE; keyUsage critical,
 * digitalSignature,keyEncipherment; extendedKeyUsage clientAuth;
 * subjectKeyIdentifier hash; authorityKeyIdentifier keyid:always. */
const ca_issue_ext *ca_issue_default_exts(int *n);

/*
 * Check the syntax of one line (without an issuer) and fill *ext.  The
 * name may be the short name, the long name or the dotted OID of a known
 * extension; ext->name becomes the short name.  APR_EINVAL when the line
 * does not build, APR_ENOTIMPL for subjectAltName (the names come from the
 * request the frontend built).  *err starts with the name as given.
 */
apr_status_t ca_issue_ext_parse(apr_pool_t *p, const char *name,
                                const char *value, ca_issue_ext *ext,
                                const char **err);

/* The line of a list (of ca_issue_ext) with the same OID, or NULL. */
const ca_issue_ext *ca_issue_ext_find(const apr_array_header_t *exts,
                                      const char *oid);

/*
 * Build the lines against a real CA certificate, to find at start-up a
 * line that only fails with an issuer (authorityKeyIdentifier keyid:always
 * with a CA certificate that has no subjectKeyIdentifier).  On failure
 * *bad is the line (NULL when the test certificate itself failed).
 */
apr_status_t ca_issue_exts_try(apr_pool_t *p, X509 *ca,
                               const ca_issue_ext *exts, int n,
                               const ca_issue_ext **bad, const char **err);

/* ---- the CA ------------------------------------------------------------ */

/* Whether a certificate may sign certificates: basicConstraints CA:TRUE
 * (or a v1 self-signed certificate) and keyCertSign when it has a
 * keyUsage. */
int ca_issue_can_sign_certs(X509 *x);

/* Whether a chain starts at the CA certificate's issuer and goes upwards,
 * each certificate having issued (and signed) the one below it: -1 when
 * it does, else the index of the first certificate that did not issue the
 * one below it. */
int ca_issue_chain_broken(X509 *ca, STACK_OF(X509) *chain);

/* Whether the CA certificate has expired at now (or its notAfter cannot
 * be read). */
int ca_issue_ca_expired(X509 *ca, apr_time_t now);

/* ---- the steps --------------------------------------------------------- */

/*
 * The names of the request: *subject (never NULL) and *san, its one
 * subjectAltName extension or NULL.  With an empty subject the
 * subjectAltName is made critical (RFC 5280 4.2.1.6).  Objects owned by
 * the pool.  The request is at fault on failure:
 *   APR_EINVAL   the extensionRequest cannot be read
 *   APR_EEXIST   more than one subjectAltName extension
 *   APR_ENOENT   neither a subject nor a subjectAltName
 */
apr_status_t ca_issue_req_names(apr_pool_t *p, X509_REQ *req,
                                X509_NAME **subject, X509_EXTENSION **san,
                                const char **err);

/*
 * A new version 3 certificate: issuer the CA's subject, subject and
 * public key those of the request, notBefore at not_before, notAfter
 * days later but never after the CA's notAfter (*capped says so then).
 */
apr_status_t ca_issue_cert_new(apr_pool_t *p, X509 *ca, X509_REQ *req,
                               apr_time_t not_before, int days, X509 **px,
                               int *capped, const char **err);

/*
 * Set the serial.  The magnitude must fit a positive INTEGER of at most 20
 * octets and must not be 0:
 *   APR_EINVAL   too long (or empty)   *err "a serial of N bytes, which
 *                                            does not fit in 20 octets"
 *   APR_ERANGE   zero                  *err "the serial 0"
 *   APR_EGENERAL OpenSSL failed
 */
apr_status_t ca_issue_set_serial(apr_pool_t *p, X509 *x,
                                 const unsigned char *serial,
                                 apr_size_t len, const char **err);

/* Add the extension lines (issuer ca, subject x, request req may be NULL);
 * on failure *bad is the line that failed. */
apr_status_t ca_issue_add_exts(apr_pool_t *p, X509 *x, X509 *ca,
                               X509_REQ *req, const ca_issue_ext *exts,
                               int n, const ca_issue_ext **bad,
                               const char **err);

/* Copy the subjectAltName (from ca_issue_req_names) unchanged. */
apr_status_t ca_issue_add_san(apr_pool_t *p, X509 *x, X509_EXTENSION *san,
                              const char **err);

/* Sign with SHA-256, or with the key type's own algorithm where it has no
 * separate digest (Ed25519) or insists on one (SM2). */
apr_status_t ca_issue_sign(apr_pool_t *p, X509 *x, EVP_PKEY *key,
                           const char **err);

/* ---- all in one ------------------------------------------------------ */

/*
 * Every step above, in order, for a request in DER.  The certificate is
 * returned as *px (owned by the pool) and as DER in *der.  Failures of the
 * request itself return APR_EINVAL, APR_EEXIST or APR_ENOENT as
 * ca_issue_req_names(); an expired CA APR_EGENERAL.
 */
apr_status_t ca_issue_certificate(apr_pool_t *p, const ca_issue_params *ip,
                                  X509_REQ *req, X509 **px,
                                  const unsigned char **der,
                                  apr_size_t *der_len, int *capped,
                                  const char **err);

/* ---- helpers --------------------------------------------------------- */

/* 20 random bytes from the OpenSSL generator, the first forced into
 * 0x40-0x7f: positive, no leading zero byte, never 0, always 20 octets. */
apr_status_t ca_issue_random_serial(apr_pool_t *p,
                                    const unsigned char **serial,
                                    apr_size_t *len, const char **err);

/* A name as RFC 2253 text (UTF-8 left readable), for logs and output. */
const char *ca_issue_name_text(apr_pool_t *p, const X509_NAME *name);

/* A time as OpenSSL prints it ("Nov 27 10:00:00 2026 GMT"). */
const char *ca_issue_time_text(apr_pool_t *p, const ASN1_TIME *t);

/* A certificate's serial number as lower-case hex, the way frontends pass
 * CA_PARAM_SERIAL: BN_bn2hex() of the INTEGER (whole bytes, no leading
 * zero byte, "-" in front of a negative number), lowered. */
const char *ca_issue_serial_hex(apr_pool_t *p, X509 *x);

#endif /* CA_ISSUE_H */
