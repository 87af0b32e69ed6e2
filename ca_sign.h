/* Licensed under the Apache License, Version 2.0 (see COPYING). */

/*
 * ca_sign: the ca_sign hook of a backend that holds a CA key
 * (mod_ca_simple, mod_ca_engine), from the request to the certificate:
 *
 *   parse the request (its key checked, never re-encoded)
 *   check its subject and subjectAltName (before a serial is taken, so
 *   that a refused request never uses one up)
 *   ca_gettime, then refuse if the CA certificate has expired
 *   ca_makeserial
 *   build the certificate with ca_issue, the backend's extensions
 *   have the backend sign it, encode it, log what was issued
 *
 * Linked into each such module; needs httpd for the hooks and the log.
 * Shared code has no log tags of its own: every message carries the tag
 * the calling module passes for that step (ca_signer.tags), and is logged
 * as that module's (its LogLevel applies).
 */

#ifndef CA_SIGN_H
#define CA_SIGN_H

#include "httpd.h"
#include "http_config.h"

#include <apr_hash.h>
#include <openssl/x509.h>

#include "ca_issue.h"

/* ---- configuration ---------------------------------------------------- */

/* A certificate read at start-up, with what the hooks hand out. */
typedef struct ca_sign_cert {
    const char *file;           /* or where in the token it came from */
    X509 *x;
    const unsigned char *der;
    apr_size_t der_len;
    apr_time_t not_after;
} ca_sign_cert;

/* The intermediates above the CA certificate. */
typedef struct ca_sign_chain {
    const char *file;
    STACK_OF(X509) *certs;
    const unsigned char *der;   /* degenerate PKCS#7 */
    apr_size_t der_len;
    apr_time_t not_after;       /* earliest of the chain */
} ca_sign_chain;

/* The directive handlers' parts the signing backends share.  Each returns
 * NULL or the error message httpd prints, naming the directive. */

/* A file name resolved the way the rest of httpd does. */
const char *ca_sign_path(cmd_parms *cmd, const char *arg, const char **path);

/* DER and notAfter of cert->x. */
apr_status_t ca_sign_cert_fill(apr_pool_t *p, ca_sign_cert *cert);

const char *ca_sign_load_cert(cmd_parms *cmd, const char *arg,
                              ca_sign_cert **cert);
const char *ca_sign_load_chain(cmd_parms *cmd, const char *arg,
                               ca_sign_chain **chain);

/* A number of days from 1 to CA_ISSUE_DAYS_MAX. */
const char *ca_sign_parse_days(cmd_parms *cmd, const char *arg, int *days);

/* One extension line added to *list; a fresh list replaces the inherited
 * one when replace is set (the first line of a section). */
const char *ca_sign_add_extension(cmd_parms *cmd, apr_array_header_t **list,
                                  int replace, const char *name,
                                  const char *value);

/* The extension lines that apply: list's, or the defaults when NULL. */
const ca_issue_ext *ca_sign_exts(const apr_array_header_t *list, int *n);

/*
 * Start-up: build the extension lines that apply (own, or the defaults
 * when NULL) once with the real CA certificate, so that a line that only
 * fails with an issuer (authorityKeyIdentifier keyid:always and a CA
 * certificate without a subjectKeyIdentifier) shows at start-up.  mi is
 * the caller's APLOG_MODULE_INDEX (so are the tags its own); prefix
 * names the directives ("CASimple"); tags: no test certificate at all, an
 * own line fails, a default line fails (a warning: the section may
 * inherit lines).  Returns 0 when the section cannot sign.
 */
int ca_sign_check_exts(apr_pool_t *ptemp, server_rec *s, int mi,
                       const char *prefix,
                       const char *const tags[3], const ca_sign_cert *ca,
                       const apr_array_header_t *own, const char *where);

/* Start-up: the chain must start at the CA certificate's issuer and go
 * upwards.  Returns 0, logged under tag, when it does not. */
int ca_sign_check_chain(apr_pool_t *ptemp, server_rec *s, int mi,
                        const char *prefix,
                        const char *tag, const ca_sign_cert *ca,
                        const ca_sign_chain *chain, const char *where);

/* ---- requests --------------------------------------------------------- */

/* The steps that log, indexing ca_signer.tags. */
typedef enum {
    CA_SIGN_LOG_REQUEST,        /* the request does not parse */
    CA_SIGN_LOG_NAMES,          /* its names cannot be issued */
    CA_SIGN_LOG_NO_TIME,        /* no backend answered ca_gettime */
    CA_SIGN_LOG_EXPIRED,        /* the CA certificate has expired */
    CA_SIGN_LOG_NO_SERIAL,      /* no backend answered ca_makeserial */
    CA_SIGN_LOG_BUILD,          /* the certificate cannot be built */
    CA_SIGN_LOG_SERIAL_BAD,     /* ca_makeserial answered an unusable one */
    CA_SIGN_LOG_SERIAL_SET,     /* the serial cannot be set */
    CA_SIGN_LOG_EXTENSION,      /* a configured extension fails */
    CA_SIGN_LOG_SAN,            /* the subjectAltName cannot be copied */
    CA_SIGN_LOG_SIGN,           /* the signature failed */
    CA_SIGN_LOG_ENCODE,         /* the certificate cannot be encoded */
    CA_SIGN_LOG_ISSUED,         /* info: what was issued */
    CA_SIGN_LOG_COUNT
} ca_sign_log;

typedef struct ca_signer ca_signer;

/* Sign x with the backend's key; on failure *why says why. */
typedef apr_status_t ca_signer_sign_fn(request_rec *r, const ca_signer *sg,
                                       X509 *x, const char **why);

struct ca_signer {
    const ca_sign_cert *ca;     /* the issuing certificate */
    int days;                   /* validity, capped at the CA's notAfter */
    const ca_issue_ext *exts;   /* the extension lines that apply */
    int n_exts;
    ca_signer_sign_fn *sign;
    const void *ctx;            /* the backend's, for sign */
    /* for messages, all set at start-up: the directives' prefix
     * ("CASimple": CASimpleCertificate names ca->file, CASimpleKey
     * key_name), and what to configure when no backend answers
     * ca_gettime or ca_makeserial */
    const char *prefix;
    const char *key_name;
    const char *time_hint;
    const char *serial_hint;
    const char *const *tags;    /* CA_SIGN_LOG_COUNT CA_LOGNO() strings */
    int module_index;           /* the caller's APLOG_MODULE_INDEX */
};

/*
 * The ca_sign hook for this signer: OK with the certificate in *cert
 * (pool-owned DER), HTTP_BAD_REQUEST for a request that cannot be issued,
 * HTTP_INTERNAL_SERVER_ERROR (or what a hook answered) otherwise.  Every
 * failure is logged.
 */
int ca_sign_request(request_rec *r, const ca_signer *sg, apr_hash_t *params,
                    const unsigned char *csr, apr_size_t csr_len,
                    const unsigned char **cert, apr_size_t *cert_len);

#endif /* CA_SIGN_H */
