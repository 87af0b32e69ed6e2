/* Licensed under the Apache License, Version 2.0 (see COPYING). */

/*
 * ca_sign: the ca_sign hook of the backends that hold a CA key; see
 * ca_sign.h.  The messages are those the backends wrote before they
 * shared this code, under the tags they pass in.
 */

#include "httpd.h"
#include "http_log.h"

#include "apr_strings.h"

#include <openssl/x509.h>

#include "mod_ca.h"
#include "ca_sign.h"
#include "ca_util.h"

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
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "%scannot parse the certificate request: %s",
                      TAG(sg, REQUEST), ca_openssl_errors(r->pool));
        return HTTP_BAD_REQUEST;
    }
    /* before a serial is taken, so that a refused request never uses one */
    if (ca_issue_req_names(r->pool, req, &subject, &san, &why)
        != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "%s%s", TAG(sg, NAMES),
                      why);
        return HTTP_BAD_REQUEST;
    }

    /* the time first: an expired CA must not use up a serial */
    rv = ca_run_ca_gettime(r, &now);
    if (rv == DECLINED) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "%sno backend answered ca_gettime here; %s",
                      TAG(sg, NO_TIME), sg->time_hint);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (rv != OK) {
        return rv;
    }
    if (ca_issue_ca_expired(sg->ca, now)) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "%s%s has expired (or its notAfter cannot be read); "
                      "refusing to issue", TAG(sg, EXPIRED), sg->ca_what);
        return HTTP_INTERNAL_SERVER_ERROR;
    }

    rv = ca_run_ca_makeserial(r, params, &serial, &serial_len);
    if (rv == DECLINED) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "%sno backend answered ca_makeserial here; %s",
                      TAG(sg, NO_SERIAL), sg->serial_hint);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (rv != OK) {
        return rv;
    }

    if (ca_issue_cert_new(r->pool, sg->ca, req, now, sg->days, &x, &capped,
                          &why) != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "%scannot build the certificate: %s", TAG(sg, BUILD),
                      why);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    status = ca_issue_set_serial(r->pool, x, serial, serial_len, &why);
    if (status == APR_EINVAL || status == APR_ERANGE) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "%sca_makeserial answered %s", TAG(sg, SERIAL_BAD),
                      why);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (status != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "%scannot set the serial number: %s",
                      TAG(sg, SERIAL_SET), why);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (ca_issue_add_exts(r->pool, x, sg->ca, req, sg->exts, sg->n_exts,
                          &bad, &why) != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "%scannot add extension %s %s: %s",
                      TAG(sg, EXTENSION), bad->name, bad->value, why);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (ca_issue_add_san(r->pool, x, san, &why) != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "%scannot copy the subjectAltName: %s", TAG(sg, SAN),
                      why);
        return HTTP_INTERNAL_SERVER_ERROR;
    }

    if (sg->sign(r, sg, x, &why) != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "%scannot sign the certificate with %s: %s",
                      TAG(sg, SIGN), sg->key_what, why);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (ca_x509_der(r->pool, x, cert, cert_len) != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "%scannot encode the certificate: %s", TAG(sg, ENCODE),
                      ca_openssl_errors(r->pool));
        return HTTP_INTERNAL_SERVER_ERROR;
    }

    tid = params ? apr_hash_get(params, CA_PARAM_TRANSACTION_ID,
                                APR_HASH_KEY_STRING) : NULL;
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                  "%sissued serial %s to %s, valid until %s%s, signed by "
                  "%s with %s%s%s", TAG(sg, ISSUED),
                  ca_hex(r->pool, serial, serial_len),
                  X509_NAME_entry_count(subject)
                      ? ca_issue_name_text(r->pool, subject)
                      : "(empty subject)",
                  ca_issue_time_text(r->pool, X509_get0_notAfter(x)),
                  capped ? " (capped at the CA's notAfter)" : "",
                  sg->ca_what, sg->key_what,
                  tid ? ", transaction " : "",
                  tid ? ap_escape_logitem(r->pool, tid) : "");

    return OK;
}
