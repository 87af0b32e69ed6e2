/* Licensed under the Apache License, Version 2.0 (see COPYING). */

#include <string.h>

#include <apr_strings.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "ca_util.h"
#include "ca_issue.h"

/* Issued when no extension is configured: an end-entity client
 * certificate, as SCEP clients usually want. */
static const ca_issue_ext ca_issue_defaults[] = {
    { "basicConstraints",       "critical,CA:FALSE", NULL },
    { "keyUsage",  "critical,digitalSignature,keyEncipherment", NULL },
    { "extendedKeyUsage",       "clientAuth", NULL },
    { "subjectKeyIdentifier",   "hash", NULL },
    { "authorityKeyIdentifier", "keyid:always", NULL }
};

static void set_err(const char **err, const char *msg)
{
    if (err) {
        *err = msg;
    }
}

/* ---- extension lines ------------------------------------------------- */

const ca_issue_ext *ca_issue_default_exts(int *n)
{
    *n = (int)(sizeof(ca_issue_defaults) / sizeof(ca_issue_defaults[0]));

    return ca_issue_defaults;
}

apr_status_t ca_issue_ext_parse(apr_pool_t *p, const char *name,
                                const char *value, ca_issue_ext *ext,
                                const char **err)
{
    const char *given = name;
    X509V3_CTX ctx;
    X509_EXTENSION *x;
    char oid[128];
    int nid;

    /* OpenSSL looks extensions up by short name only; accept the long
     * name and the dotted OID of a known extension too */
    if ((nid = OBJ_txt2nid(name)) != NID_undef && OBJ_nid2sn(nid)) {
        name = OBJ_nid2sn(nid);
    }
    ERR_clear_error();                  /* a name that is no OID */

    /* test mode: syntax only, no issuer or subject to take keys from */
    memset(&ctx, 0, sizeof(ctx));
    X509V3_set_ctx_test(&ctx);
    X509V3_set_ctx_nodb(&ctx);
    x = X509V3_EXT_nconf(NULL, &ctx, name, value);
    if (!x) {
        set_err(err, apr_psprintf(p, "%s %s: not a valid extension: %s",
                                  given, value, ca_openssl_errors(p)));
        return APR_EINVAL;
    }
    nid = OBJ_obj2nid(X509_EXTENSION_get_object(x));
    OBJ_obj2txt(oid, sizeof(oid), X509_EXTENSION_get_object(x), 1);
    X509_EXTENSION_free(x);

    if (nid == NID_subject_alt_name) {
        /* the frontend decides the names; they arrive in the request */
        set_err(err, apr_psprintf(p, "%s: the subjectAltName is taken "
                                  "from the request the frontend built; set "
                                  "it with the frontend's SubjectAltName "
                                  "directives", given));
        return APR_ENOTIMPL;
    }

    ext->name = name;
    ext->value = value;
    ext->oid = apr_pstrdup(p, oid);

    return APR_SUCCESS;
}

const ca_issue_ext *ca_issue_ext_find(const apr_array_header_t *exts,
                                      const char *oid)
{
    int i;

    for (i = 0; exts && i < exts->nelts; i++) {
        const ca_issue_ext *e = &APR_ARRAY_IDX(exts, i, ca_issue_ext);

        if (e->oid && !strcmp(e->oid, oid)) {
            return e;
        }
    }

    return NULL;
}

apr_status_t ca_issue_add_exts(apr_pool_t *p, X509 *x, X509 *ca,
                               X509_REQ *req, const ca_issue_ext *exts,
                               int n, const ca_issue_ext **bad,
                               const char **err)
{
    X509V3_CTX ctx;
    int i;

    *bad = NULL;
    memset(&ctx, 0, sizeof(ctx));
    X509V3_set_ctx(&ctx, ca, x, req, NULL, 0);
    X509V3_set_ctx_nodb(&ctx);
    for (i = 0; i < n; i++) {
        X509_EXTENSION *ext = X509V3_EXT_nconf(NULL, &ctx, exts[i].name,
                                               exts[i].value);
        int ok = 0;

        if (ext) {
            ok = X509_add_ext(x, ext, -1);
            X509_EXTENSION_free(ext);
        }
        if (!ext || !ok) {
            *bad = &exts[i];
            set_err(err, ca_openssl_errors(p));
            return APR_EINVAL;
        }
    }

    return APR_SUCCESS;
}

apr_status_t ca_issue_exts_try(apr_pool_t *p, X509 *ca,
                               const ca_issue_ext *exts, int n,
                               const ca_issue_ext **bad, const char **err)
{
    X509 *x = ca_x509_own(p, X509_new());

    *bad = NULL;
    if (!x || !X509_set_version(x, X509_VERSION_3)
        || !X509_set_pubkey(x, X509_get0_pubkey(ca))) {
        set_err(err, ca_openssl_errors(p));
        return APR_EGENERAL;
    }

    return ca_issue_add_exts(p, x, ca, NULL, exts, n, bad, err);
}

/* ---- the CA ------------------------------------------------------------ */

int ca_issue_chain_broken(X509 *ca, STACK_OF(X509) *chain)
{
    X509 *below = ca;
    int i;

    for (i = 0; i < sk_X509_num(chain); i++) {
        X509 *above = sk_X509_value(chain, i);

        if (X509_check_issued(above, below) != X509_V_OK
            || X509_verify(below, X509_get0_pubkey(above)) != 1) {
            ERR_clear_error();
            return i;
        }
        below = above;
    }
    return -1;
}

int ca_issue_can_sign_certs(X509 *x)
{
    return X509_check_ca(x) != 0
           && ca_x509_allows_ku(x, KU_KEY_CERT_SIGN);
}

int ca_issue_ca_expired(X509 *ca, apr_time_t now)
{
    time_t now_t = (time_t)apr_time_sec(now);

    return X509_cmp_time(X509_get0_notAfter(ca), &now_t) <= 0;
}

/* ---- the steps --------------------------------------------------------- */

static apr_status_t free_exts(void *data)
{
    sk_X509_EXTENSION_pop_free(data, X509_EXTENSION_free);

    return APR_SUCCESS;
}

apr_status_t ca_issue_req_names(apr_pool_t *p, X509_REQ *req,
                                X509_NAME **subject, X509_EXTENSION **san,
                                const char **err)
{
    STACK_OF(X509_EXTENSION) *exts;
    int idx;

    *san = NULL;
    *subject = X509_REQ_get_subject_name(req);
    ERR_clear_error();
    exts = X509_REQ_get_extensions(req);
    if (!exts && ERR_peek_error()) {
        set_err(err, apr_psprintf(p, "cannot read the extension request of "
                                  "the certificate request: %s",
                                  ca_openssl_errors(p)));
        return APR_EINVAL;
    }
    if (exts) {
        apr_pool_cleanup_register(p, exts, free_exts,
                                  apr_pool_cleanup_null);
        idx = X509v3_get_ext_by_NID(exts, NID_subject_alt_name, -1);
        if (idx >= 0) {
            if (X509v3_get_ext_by_NID(exts, NID_subject_alt_name,
                                      idx) >= 0) {
                set_err(err, "the certificate request has more than one "
                        "subjectAltName extension");
                return APR_EEXIST;
            }
            *san = X509v3_get_ext(exts, idx);
        }
    }
    if (X509_NAME_entry_count(*subject) == 0) {
        if (!*san) {
            set_err(err, "the certificate request has neither a subject "
                    "nor a subjectAltName; refusing to issue");
            return APR_ENOENT;
        }
        /* RFC 5280 4.2.1.6: critical when the subject is empty */
        X509_EXTENSION_set_critical(*san, 1);
    }

    return APR_SUCCESS;
}

apr_status_t ca_issue_cert_new(apr_pool_t *p, X509 *ca, X509_REQ *req,
                               apr_time_t not_before, int days, X509 **px,
                               int *capped, const char **err)
{
    time_t now_t = (time_t)apr_time_sec(not_before), until_t;
    X509_PUBKEY *pubkey = X509_REQ_get_X509_PUBKEY(req);
    X509 *x;

    /* never outlive the CA certificate */
    until_t = now_t + (time_t)days * 86400;
    *capped = X509_cmp_time(X509_get0_notAfter(ca), &until_t) < 0;

    x = ca_x509_own(p, X509_new());
    if (!x || !pubkey || !X509_set_version(x, X509_VERSION_3)
        || !X509_set_issuer_name(x, X509_get_subject_name(ca))
        || !X509_set_subject_name(x, X509_REQ_get_subject_name(req))
        || !ca_pubkey_copy(X509_get_X509_PUBKEY(x), pubkey)
        || !ASN1_TIME_set(X509_getm_notBefore(x), now_t)
        || !(*capped ? X509_set1_notAfter(x, X509_get0_notAfter(ca))
                     : ASN1_TIME_adj(X509_getm_notAfter(x), now_t,
                                     days, 0) != NULL)) {
        set_err(err, ca_openssl_errors(p));
        return APR_EGENERAL;
    }
    *px = x;

    return APR_SUCCESS;
}

apr_status_t ca_issue_set_serial(apr_pool_t *p, X509 *x,
                                 const unsigned char *serial,
                                 apr_size_t len, const char **err)
{
    BIGNUM *bn;
    int ok;

    /* positive and at most 20 octets: a 20-byte magnitude with the top bit
     * set would need a 21st */
    if (!serial || !len || len > CA_ISSUE_SERIAL_LEN
        || (len == CA_ISSUE_SERIAL_LEN && (serial[0] & 0x80))) {
        set_err(err, apr_psprintf(p, "a serial of %" APR_SIZE_T_FMT
                                  " bytes, which does not fit in 20 octets",
                                  len));
        return APR_EINVAL;
    }
    bn = BN_bin2bn(serial, (int)len, NULL);
    if (bn && BN_is_zero(bn)) {
        BN_free(bn);
        set_err(err, "the serial 0");
        return APR_ERANGE;
    }
    ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
    BN_free(bn);
    if (!ok) {
        set_err(err, ca_openssl_errors(p));
        return APR_EGENERAL;
    }

    return APR_SUCCESS;
}

apr_status_t ca_issue_add_san(apr_pool_t *p, X509 *x, X509_EXTENSION *san,
                              const char **err)
{
    if (san && !X509_add_ext(x, san, -1)) {
        set_err(err, ca_openssl_errors(p));
        return APR_EGENERAL;
    }

    return APR_SUCCESS;
}

/* SHA-256, unless the key type signs without a separate digest (Ed25519,
 * where OpenSSL names the mandatory digest "UNDEF") or insists on its own
 * (SM2).  The nid variant cannot express "none" and fails for Ed25519. */
static const EVP_MD *issue_digest(EVP_PKEY *key)
{
    char name[80];

    if (EVP_PKEY_get_default_digest_name(key, name, sizeof(name)) == 2) {
        return strcmp(name, "UNDEF") ? EVP_get_digestbyname(name) : NULL;
    }

    return EVP_sha256();
}

apr_status_t ca_issue_sign(apr_pool_t *p, X509 *x, EVP_PKEY *key,
                           const char **err)
{
    if (X509_sign(x, key, issue_digest(key)) <= 0) {
        set_err(err, ca_openssl_errors(p));
        return APR_EGENERAL;
    }

    return APR_SUCCESS;
}

/* ---- all in one ------------------------------------------------------ */

apr_status_t ca_issue_certificate(apr_pool_t *p, const ca_issue_params *ip,
                                  X509_REQ *req, X509 **px,
                                  const unsigned char **der,
                                  apr_size_t *der_len, int *capped,
                                  const char **err)
{
    const ca_issue_ext *exts = ip->exts, *bad;
    X509_EXTENSION *san;
    X509_NAME *subject;
    const char *why = NULL;
    apr_status_t rv;
    X509 *x;
    int n = ip->n_exts;

    if ((rv = ca_issue_req_names(p, req, &subject, &san, err))
        != APR_SUCCESS) {
        return rv;
    }
    if (ca_issue_ca_expired(ip->ca, ip->not_before)) {
        set_err(err, "the CA certificate has expired (or its notAfter "
                "cannot be read)");
        return APR_EGENERAL;
    }
    if (ca_issue_cert_new(p, ip->ca, req, ip->not_before, ip->days, &x,
                          capped, &why) != APR_SUCCESS) {
        set_err(err, apr_pstrcat(p, "cannot build the certificate: ", why,
                                 NULL));
        return APR_EGENERAL;
    }
    if ((rv = ca_issue_set_serial(p, x, ip->serial, ip->serial_len, &why))
        != APR_SUCCESS) {
        set_err(err, apr_pstrcat(p, "cannot set the serial number: ", why,
                                 NULL));
        return rv == APR_EGENERAL ? rv : APR_EGENERAL;
    }
    if (!exts) {
        exts = ca_issue_default_exts(&n);
    }
    if (ca_issue_add_exts(p, x, ip->ca, req, exts, n, &bad, &why)
        != APR_SUCCESS) {
        set_err(err, apr_psprintf(p, "cannot add extension %s %s: %s",
                                  bad->name, bad->value, why));
        return APR_EGENERAL;
    }
    if (ca_issue_add_san(p, x, san, &why) != APR_SUCCESS) {
        set_err(err, apr_pstrcat(p, "cannot copy the subjectAltName: ", why,
                                 NULL));
        return APR_EGENERAL;
    }
    if (ca_issue_sign(p, x, ip->key, &why) != APR_SUCCESS) {
        set_err(err, apr_pstrcat(p, "cannot sign the certificate: ", why,
                                 NULL));
        return APR_EGENERAL;
    }
    if (ca_x509_der(p, x, der, der_len) != APR_SUCCESS) {
        set_err(err, apr_pstrcat(p, "cannot encode the certificate: ",
                                 ca_openssl_errors(p), NULL));
        return APR_EGENERAL;
    }
    *px = x;

    return APR_SUCCESS;
}

/* ---- helpers --------------------------------------------------------- */

apr_status_t ca_issue_random_serial(apr_pool_t *p,
                                    const unsigned char **serial,
                                    apr_size_t *len, const char **err)
{
    unsigned char *buf = apr_palloc(p, CA_ISSUE_SERIAL_LEN);

    if (RAND_bytes(buf, CA_ISSUE_SERIAL_LEN) != 1) {
        set_err(err, ca_openssl_errors(p));
        return APR_EGENERAL;
    }
    /* positive, no leading zero byte, so never 0 and always 20 octets */
    buf[0] = (unsigned char)((buf[0] & 0x7f) | 0x40);
    *serial = buf;
    *len = CA_ISSUE_SERIAL_LEN;

    return APR_SUCCESS;
}

const char *ca_issue_name_text(apr_pool_t *p, const X509_NAME *name)
{
    BIO *bio = BIO_new(BIO_s_mem());
    const char *text = "";
    char *data;
    long len;

    if (!bio) {
        return "(unknown)";
    }
    if (X509_NAME_print_ex(bio, name, 0,
                           XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
        len = BIO_get_mem_data(bio, &data);
        if (len > 0) {
            text = apr_pstrmemdup(p, data, (apr_size_t)len);
        }
    }
    BIO_free(bio);

    return text;
}

const char *ca_issue_time_text(apr_pool_t *p, const ASN1_TIME *t)
{
    BIO *bio = BIO_new(BIO_s_mem());
    const char *text = "(unknown)";
    char *data;
    long len;

    if (!bio) {
        return text;
    }
    if (ASN1_TIME_print(bio, t)) {
        len = BIO_get_mem_data(bio, &data);
        if (len > 0) {
            text = apr_pstrmemdup(p, data, (apr_size_t)len);
        }
    }
    BIO_free(bio);

    return text;
}

const char *ca_issue_serial_hex(apr_pool_t *p, X509 *x)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    char *out, *c;

    BN_free(bn);
    if (!hex) {
        ERR_clear_error();
        return NULL;
    }
    out = apr_pstrdup(p, hex);
    OPENSSL_free(hex);
    for (c = out; *c; c++) {
        if (*c >= 'A' && *c <= 'F') {
            *c = (char)(*c - 'A' + 'a');
        }
    }

    return out;
}
