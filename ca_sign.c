/* Licensed under the Apache License, Version 2.0 (see COPYING). */

/*
 * ca_sign: the ca_sign hook of the backends that hold a CA key; see
 * ca_sign.h.  The messages are those the backends wrote before they
 * shared this code, under the tags they pass in.
 */

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"

#include "apr_strings.h"

#include <errno.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "mod_ca.h"
#include "ca_sign.h"
#include "ca_util.h"

/* APLOG_MARK with the calling module's index: this file is linked into
 * several modules, and their LogLevel and "[module:level]" must apply. */
#define CA_SIGN_MARK(mi) __FILE__, __LINE__, (mi)

/* ---- configuration ---------------------------------------------------- */

const char *ca_sign_path(cmd_parms *cmd, const char *arg, const char **path)
{
    *path = ap_server_root_relative(cmd->pool, arg);
    if (!*path) {
        return apr_psprintf(cmd->pool, "%s: invalid file path %s",
                            cmd->cmd->name, arg);
    }

    return NULL;
}

apr_status_t ca_sign_cert_fill(apr_pool_t *p, ca_sign_cert *cert)
{
    apr_status_t rv = ca_x509_der(p, cert->x, &cert->der, &cert->der_len);

    cert->not_after = ca_asn1_time_to_apr(X509_get0_notAfter(cert->x));

    return rv;
}

/* The message for a file that did not load: the loader's reason, or
 * OpenSSL's. */
static const char *ca_sign_load_error(cmd_parms *cmd, const char *path,
                                      const char *what, const char *err)
{
    const char *why = err ? err : ca_openssl_errors(cmd->temp_pool);

    ERR_clear_error();
    return apr_psprintf(cmd->pool, "%s %s: cannot load the %s: %s",
                        cmd->cmd->name, path, what, why);
}

const char *ca_sign_load_cert(cmd_parms *cmd, const char *arg,
                              ca_sign_cert **pcert)
{
    ca_sign_cert *cert;
    const char *path, *err = NULL;

    if ((err = ca_sign_path(cmd, arg, &path))) {
        return err;
    }
    cert = apr_pcalloc(cmd->pool, sizeof(*cert));
    cert->file = path;
    if (ca_load_cert(cmd->pool, path, &cert->x, &err) != APR_SUCCESS
        || ca_sign_cert_fill(cmd->pool, cert) != APR_SUCCESS) {
        return ca_sign_load_error(cmd, path, "certificate", err);
    }
    *pcert = cert;

    return NULL;
}

const char *ca_sign_load_chain(cmd_parms *cmd, const char *arg,
                               ca_sign_chain **pchain)
{
    ca_sign_chain *chain;
    const char *path, *err = NULL;
    int i;

    if ((err = ca_sign_path(cmd, arg, &path))) {
        return err;
    }
    chain = apr_pcalloc(cmd->pool, sizeof(*chain));
    chain->file = path;
    if (ca_load_certs(cmd->pool, path, &chain->certs, &err) != APR_SUCCESS
        || ca_p7_certs_der(cmd->pool, chain->certs, &chain->der,
                           &chain->der_len) != APR_SUCCESS) {
        return ca_sign_load_error(cmd, path, "certificates", err);
    }
    for (i = 0; i < sk_X509_num(chain->certs); i++) {
        apr_time_t t = ca_asn1_time_to_apr(
                           X509_get0_notAfter(sk_X509_value(chain->certs, i)));

        if (i == 0 || t < chain->not_after) {
            chain->not_after = t;
        }
    }
    *pchain = chain;

    return NULL;
}

const char *ca_sign_parse_days(cmd_parms *cmd, const char *arg, int *days)
{
    char *end;
    apr_int64_t n;

    errno = 0;
    n = apr_strtoi64(arg, &end, 10);
    if (errno || end == arg || *end || n < 1 || n > CA_ISSUE_DAYS_MAX) {
        return apr_psprintf(cmd->pool, "%s must be a number of days from "
                            "1 to %d, not '%s'", cmd->cmd->name,
                            CA_ISSUE_DAYS_MAX, arg);
    }
    *days = (int)n;

    return NULL;
}

const char *ca_sign_add_extension(cmd_parms *cmd, apr_array_header_t **list,
                                  int replace, const char *name,
                                  const char *value)
{
    const ca_issue_ext *dup;
    const char *err = NULL;
    ca_issue_ext ext;

    if (ca_issue_ext_parse(cmd->pool, name, value, &ext, &err)
        != APR_SUCCESS) {
        return apr_pstrcat(cmd->pool, cmd->cmd->name, " ", err, NULL);
    }
    if (replace || !*list) {
        *list = apr_array_make(cmd->pool, 5, sizeof(ca_issue_ext));
    }
    if ((dup = ca_issue_ext_find(*list, ext.oid))) {
        /* RFC 5280 4.2: an extension appears at most once */
        return apr_psprintf(cmd->pool, "%s %s: already set in this "
                            "section as %s", cmd->cmd->name, name,
                            dup->name);
    }
    APR_ARRAY_PUSH(*list, ca_issue_ext) = ext;

    return NULL;
}

const ca_issue_ext *ca_sign_exts(const apr_array_header_t *list, int *n)
{
    if (list) {
        *n = list->nelts;
        return (const ca_issue_ext *)list->elts;
    }

    return ca_issue_default_exts(n);
}

int ca_sign_check_exts(apr_pool_t *ptemp, server_rec *s, int mi,
                       const char *prefix,
                       const char *const tags[3], const ca_sign_cert *ca,
                       const apr_array_header_t *own, const char *where)
{
    const ca_issue_ext *exts, *bad;
    const char *why = "";
    int n;

    exts = ca_sign_exts(own, &n);
    if (ca_issue_exts_try(ptemp, ca->x, exts, n, &bad, &why)
        == APR_SUCCESS) {
        return 1;
    }
    if (!bad) {
        ap_log_error(CA_SIGN_MARK(mi), APLOG_ERR, 0, s,
                     "%scannot make a test certificate: %s", tags[0], why);
        return 0;
    }
    if (own) {
        ap_log_error(CA_SIGN_MARK(mi), APLOG_ERR, 0, s,
                     "%s%sExtension %s %s cannot be built with "
                     "%sCertificate %s (%s): %s", tags[1], prefix,
                     bad->name, bad->value, prefix, ca->file, where, why);
        return 0;
    }
    ap_log_error(CA_SIGN_MARK(mi), APLOG_WARNING, 0, s,
                 "%sthe default extension %s %s cannot be built with "
                 "%sCertificate %s (%s), signing will fail where no "
                 "%sExtension applies: %s", tags[2], bad->name, bad->value,
                 prefix, ca->file, where, prefix, why);

    return 1;
}

int ca_sign_check_chain(apr_pool_t *ptemp, server_rec *s, int mi,
                        const char *prefix,
                        const char *tag, const ca_sign_cert *ca,
                        const ca_sign_chain *chain, const char *where)
{
    int i = ca_issue_chain_broken(ca->x, chain->certs);

    if (i < 0) {
        return 1;
    }
    ap_log_error(CA_SIGN_MARK(mi), APLOG_ERR, 0, s,
                 "%s%sChain %s (%s): certificate %d (%s) did not issue %s; "
                 "the chain must start with the issuer of %sCertificate %s "
                 "and go up", tag, prefix, chain->file, where, i + 1,
                 ca_issue_name_text(ptemp, X509_get_subject_name(
                                           sk_X509_value(chain->certs, i))),
                 ca_issue_name_text(ptemp, X509_get_subject_name(
                                           i ? sk_X509_value(chain->certs,
                                                             i - 1)
                                             : ca->x)),
                 prefix, ca->file);
    return 0;
}

/* ---- requests --------------------------------------------------------- */

#define TAG(sg, step) ((sg)->tags[CA_SIGN_LOG_ ## step])

int ca_sign_request(request_rec *r, const ca_signer *sg, apr_hash_t *params,
                    const unsigned char *csr, apr_size_t csr_len,
                    const unsigned char **cert, apr_size_t *cert_len)
{
    const unsigned char *serial = NULL;
    apr_size_t serial_len = 0;
    apr_time_t now = 0;
    const ca_issue_ext *bad;
    const char *tid, *why = "";
    apr_status_t status;
    X509_REQ *req;
    X509_EXTENSION *san;
    X509_NAME *subject;
    X509 *x;
    int rv, capped = 0;

    /* the key is checked (cheaply for RSA) and copied, never re-encoded */
    req = ca_req_parse_nokey(r->pool, csr, csr_len);
    if (!req || !ca_pubkey_get(r->pool, X509_REQ_get_X509_PUBKEY(req))) {
        ap_log_rerror(CA_SIGN_MARK(sg->module_index), APLOG_ERR, 0, r,
                      "%scannot parse the certificate request: %s",
                      TAG(sg, REQUEST), ca_openssl_errors(r->pool));
        return HTTP_BAD_REQUEST;
    }
    /* before a serial is taken, so that a refused request never uses one */
    if (ca_issue_req_names(r->pool, req, &subject, &san, &why)
        != APR_SUCCESS) {
        ap_log_rerror(CA_SIGN_MARK(sg->module_index), APLOG_ERR, 0, r,
                      "%s%s", TAG(sg, NAMES), why);
        return HTTP_BAD_REQUEST;
    }

    /* the time first: an expired CA must not use up a serial */
    rv = ca_run_ca_gettime(r, &now);
    if (rv == DECLINED) {
        ap_log_rerror(CA_SIGN_MARK(sg->module_index), APLOG_ERR, 0, r,
                      "%sno backend answered ca_gettime here; %s",
                      TAG(sg, NO_TIME), sg->time_hint);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (rv != OK) {
        return rv;
    }
    if (ca_issue_ca_expired(sg->ca->x, now)) {
        ap_log_rerror(CA_SIGN_MARK(sg->module_index), APLOG_ERR, 0, r,
                      "%s%sCertificate %s has expired (or its notAfter "
                      "cannot be read); refusing to issue", TAG(sg, EXPIRED),
                      sg->prefix, sg->ca->file);
        return HTTP_INTERNAL_SERVER_ERROR;
    }

    rv = ca_run_ca_makeserial(r, params, &serial, &serial_len);
    if (rv == DECLINED) {
        ap_log_rerror(CA_SIGN_MARK(sg->module_index), APLOG_ERR, 0, r,
                      "%sno backend answered ca_makeserial here; %s",
                      TAG(sg, NO_SERIAL), sg->serial_hint);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (rv != OK) {
        return rv;
    }

    if (ca_issue_cert_new(r->pool, sg->ca->x, req, now, sg->days, &x, &capped,
                          &why) != APR_SUCCESS) {
        ap_log_rerror(CA_SIGN_MARK(sg->module_index), APLOG_ERR, 0, r,
                      "%scannot build the certificate: %s", TAG(sg, BUILD),
                      why);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    status = ca_issue_set_serial(r->pool, x, serial, serial_len, &why);
    if (status == APR_EINVAL || status == APR_ERANGE) {
        ap_log_rerror(CA_SIGN_MARK(sg->module_index), APLOG_ERR, 0, r,
                      "%sca_makeserial answered %s", TAG(sg, SERIAL_BAD),
                      why);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (status != APR_SUCCESS) {
        ap_log_rerror(CA_SIGN_MARK(sg->module_index), APLOG_ERR, 0, r,
                      "%scannot set the serial number: %s",
                      TAG(sg, SERIAL_SET), why);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (ca_issue_add_exts(r->pool, x, sg->ca->x, req, sg->exts, sg->n_exts,
                          &bad, &why) != APR_SUCCESS) {
        ap_log_rerror(CA_SIGN_MARK(sg->module_index), APLOG_ERR, 0, r,
                      "%scannot add extension %s %s: %s",
                      TAG(sg, EXTENSION), bad->name, bad->value, why);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (ca_issue_add_san(r->pool, x, san, &why) != APR_SUCCESS) {
        ap_log_rerror(CA_SIGN_MARK(sg->module_index), APLOG_ERR, 0, r,
                      "%scannot copy the subjectAltName: %s", TAG(sg, SAN),
                      why);
        return HTTP_INTERNAL_SERVER_ERROR;
    }

    if (sg->sign(r, sg, x, &why) != APR_SUCCESS) {
        ap_log_rerror(CA_SIGN_MARK(sg->module_index), APLOG_ERR, 0, r,
                      "%scannot sign the certificate with %sKey %s: %s",
                      TAG(sg, SIGN), sg->prefix, sg->key_name, why);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (ca_x509_der(r->pool, x, cert, cert_len) != APR_SUCCESS) {
        ap_log_rerror(CA_SIGN_MARK(sg->module_index), APLOG_ERR, 0, r,
                      "%scannot encode the certificate: %s", TAG(sg, ENCODE),
                      ca_openssl_errors(r->pool));
        return HTTP_INTERNAL_SERVER_ERROR;
    }

    tid = params ? apr_hash_get(params, CA_PARAM_TRANSACTION_ID,
                                APR_HASH_KEY_STRING) : NULL;
    ap_log_rerror(CA_SIGN_MARK(sg->module_index), APLOG_INFO, 0, r,
                  "%sissued serial %s to %s, valid until %s%s, signed by "
                  "%sCertificate %s with %sKey %s%s%s", TAG(sg, ISSUED),
                  ca_hex(r->pool, serial, serial_len),
                  X509_NAME_entry_count(subject)
                      ? ca_issue_name_text(r->pool, subject)
                      : "(empty subject)",
                  ca_issue_time_text(r->pool, X509_get0_notAfter(x)),
                  capped ? " (capped at the CA's notAfter)" : "",
                  sg->prefix, sg->ca->file, sg->prefix, sg->key_name,
                  tid ? ", transaction " : "",
                  tid ? ap_escape_logitem(r->pool, tid) : "");

    return OK;
}
