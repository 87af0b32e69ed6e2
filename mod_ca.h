/* Licensed under the Apache License, Version 2.0 (see COPYING). */

/**
 * @file mod_ca.h
 * @brief Hooks that join certificate frontends (mod_scep) to backends
 *        (mod_ca_simple, mod_ca_disk, mod_ca_ldap, mod_ca_engine).
 *
 * @defgroup MOD_CA mod_ca
 * @ingroup APACHE_MODS
 * @{
 *
 * Every hook is an APR optional hook in namespace "ca" whose name starts
 * with "ca_", run first-answer-wins: implementations run in order until one
 * returns something other than DECLINED, and that value is the result.
 * DECLINED means "not mine here"; the caller sees DECLINED when nobody
 * answered.  OK means answered.  Any other value is an HTTP status the
 * backend chose (and has logged); frontends map it to a protocol failure.
 *
 * Only standard objects cross the boundary, as DER: PKCS#10 requests,
 * X.509 certificates, and degenerate (certificates-only) PKCS#7 SignedData
 * for lists of certificates.  Returned buffers must live at least as long
 * as r->pool; backends typically hand out config-time buffers, which is
 * why returned pointers are const.  Frontends never free them.
 *
 * Named request parameters travel in an apr_hash_t of NUL-terminated
 * strings, keyed by the CA_PARAM_* names below; binary values are
 * lower-case hex.  mod_ca loads before every other module of the suite.
 */

#ifndef MOD_CA_H
#define MOD_CA_H

#include "httpd.h"
#include "http_config.h"
#include "apr_hash.h"
#include "apr_hooks.h"
#include "apr_optional_hooks.h"

#if !defined(WIN32)
#define CA_DECLARE(type)            type
#define CA_DECLARE_NONSTD(type)     type
#define CA_DECLARE_DATA
#elif defined(CA_DECLARE_STATIC)
#define CA_DECLARE(type)            type __stdcall
#define CA_DECLARE_NONSTD(type)     type
#define CA_DECLARE_DATA
#elif defined(CA_DECLARE_EXPORT)
#define CA_DECLARE(type)            __declspec(dllexport) type __stdcall
#define CA_DECLARE_NONSTD(type)     __declspec(dllexport) type
#define CA_DECLARE_DATA             __declspec(dllexport)
#else
#define CA_DECLARE(type)            __declspec(dllimport) type __stdcall
#define CA_DECLARE_NONSTD(type)     __declspec(dllimport) type
#define CA_DECLARE_DATA             __declspec(dllimport)
#endif

/** Log tags of the suite: "CA" plus a number; ranges per module in
 *  docs/log-tags.md, next free number in docs/log-tags/next-number. */
#define CA_LOGNO(n) "CA" #n ": "

/* ---- named parameters ------------------------------------------------ */

/** SCEP transactionID, as the client sent it (PrintableString text). */
#define CA_PARAM_TRANSACTION_ID   "transactionID"
/** challengePassword from the client's original request.  Secret: never
 *  log it, compare it in constant time (ca_util.h ca_secret_equal()). */
#define CA_PARAM_CHALLENGE        "challengePassword"
/** The protocol of the frontend, e.g. "scep". */
#define CA_PARAM_PROTOCOL         "protocol"
/** SCEP messageType of the request as decimal text ("19", "17", ...). */
#define CA_PARAM_MESSAGE_TYPE     "messageType"
/** "1" when the request is a renewal signed by a certificate of this CA. */
#define CA_PARAM_RENEWAL          "renewal"
/** Issuer name of a certificate being looked up, DER in hex (getcert). */
#define CA_PARAM_ISSUER           "issuer"
/** Serial number of a certificate being looked up, hex (getcert). */
#define CA_PARAM_SERIAL           "serial"
/** Subject name of a certificate being looked up, DER in hex (getcert). */
#define CA_PARAM_SUBJECT          "subject"

/* ---- the hooks ------------------------------------------------------- */

/**
 * Request authorisation (optional).
 *
 * @param r       the request
 * @param params  named parameters (CA_PARAM_*), including the challenge
 *                password when the client sent one
 * @param csr     DER PKCS#10 as rebuilt by the frontend: the subject and
 *                subjectAltName the configuration allows, the client's key
 * @return DECLINED: no opinion (every request is accepted when all
 *         decline); OK: authorised; HTTP_FORBIDDEN: refused, the reason
 *         logged by the backend; another HTTP status: could not decide
 *         (directory down, ...), the frontend refuses the request.
 */
APR_DECLARE_EXTERNAL_HOOK(ca, CA, int, ca_reqauthz,
        (request_rec *r, apr_hash_t *params,
         const unsigned char *csr, apr_size_t csr_len))

/**
 * Sign a request (mandatory).
 *
 * @param csr     DER PKCS#10 as rebuilt by the frontend.  Its proof of
 *                possession was checked by the frontend on the client's
 *                original request; the rebuilt request carries no valid
 *                signature and backends must not verify it.  Backends use
 *                its subject, its public key and the subjectAltName in its
 *                extensionRequest, nothing else of it.
 * @param cert    out: DER X.509 of the issued certificate
 * @return OK with *cert set: issued.  OK with *cert NULL: accepted and
 *         pending (e.g. mod_ca_disk saved it for out-of-band signing; the
 *         frontend answers PENDING and later collects it through
 *         ca_getcert).  DECLINED: not configured here.  Any other value:
 *         an HTTP status, the request failed and the reason is logged.
 */
APR_DECLARE_EXTERNAL_HOOK(ca, CA, int, ca_sign,
        (request_rec *r, apr_hash_t *params,
         const unsigned char *csr, apr_size_t csr_len,
         const unsigned char **cert, apr_size_t *cert_len))

/**
 * Store an issued certificate (optional).
 *
 * Unlike the other hooks, every implementation is offered the certificate:
 * a backend returns OK when it stored it and DECLINED when storing is not
 * configured here; either way the next one runs.  A backend returns an
 * HTTP status only when it was required to store the certificate and
 * could not: that stops the run, and the frontend refuses to hand the
 * certificate out.  The runner returns OK when nobody failed (also when
 * no store is registered).
 */
APR_DECLARE_EXTERNAL_HOOK(ca, CA, int, ca_certstore,
        (request_rec *r, apr_hash_t *params,
         const unsigned char *cert, apr_size_t cert_len))

/**
 * Find a certificate issued earlier (optional; CertPoll and GetCert).
 *
 * @param params  the search: CA_PARAM_TRANSACTION_ID (poll for a pending
 *                request), or CA_PARAM_ISSUER plus CA_PARAM_SERIAL
 *                (GetCert)
 * @param cert    out: DER X.509 of the certificate found
 * @return OK with *cert set: found.  OK with *cert NULL: known but not
 *         issued yet (still pending).  HTTP_NOT_FOUND: no such request or
 *         certificate here.  DECLINED: this backend keeps no certificates
 *         here.  Another HTTP status: the store failed (logged).
 */
APR_DECLARE_EXTERNAL_HOOK(ca, CA, int, ca_getcert,
        (request_rec *r, apr_hash_t *params,
         const unsigned char **cert, apr_size_t *cert_len))

/**
 * The CA certificate that signs requests here (mandatory for SCEP).
 *
 * @param der          out: DER X.509 of the issuing CA certificate
 * @param valid_until  out: when the answer stops being true (normally the
 *                     certificate's notAfter); frontends derive caching
 *                     headers from it
 * @return OK, DECLINED when no CA is configured here, or an HTTP status.
 */
APR_DECLARE_EXTERNAL_HOOK(ca, CA, int, ca_getca,
        (request_rec *r, const unsigned char **der, apr_size_t *len,
         apr_time_t *valid_until))

/**
 * The next CA certificate, for rollover (optional).  As ca_getca; DECLINED
 * means there is no next CA certificate.
 */
APR_DECLARE_EXTERNAL_HOOK(ca, CA, int, ca_getnextca,
        (request_rec *r, const unsigned char **der, apr_size_t *len,
         apr_time_t *valid_until))

/**
 * The intermediate certificates between the issuing CA and its root
 * (optional), as a DER degenerate PKCS#7, issuing CA's issuer first.
 * DECLINED means no chain: the CA certificate stands alone.
 */
APR_DECLARE_EXTERNAL_HOOK(ca, CA, int, ca_getchain,
        (request_rec *r, const unsigned char **der, apr_size_t *len,
         apr_time_t *valid_until))

/**
 * A new serial number (used by signing backends).
 *
 * @param serial  out: the serial as an unsigned big-endian magnitude,
 *                without leading zero bytes, never zero; positive when
 *                encoded as an INTEGER
 * @return OK, DECLINED when not configured here, or an HTTP status.
 */
APR_DECLARE_EXTERNAL_HOOK(ca, CA, int, ca_makeserial,
        (request_rec *r, apr_hash_t *params,
         const unsigned char **serial, apr_size_t *len))

/**
 * The time to put in certificates (used by signing backends).
 *
 * @param now  out: the current time
 * @return OK, DECLINED when not configured here, or an HTTP status.
 */
APR_DECLARE_EXTERNAL_HOOK(ca, CA, int, ca_gettime,
        (request_rec *r, apr_time_t *now))

/** @} */
#endif /* MOD_CA_H */
