/* Licensed under the Apache License, Version 2.0 (see COPYING). */

#include <string.h>
#include <stdlib.h>

#include <apr_strings.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pkcs7.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "ca_util.h"
#include "scep_msg.h"

/* The SCEP attributes (RFC 8894 section 3.2.1.x). */
static const struct {
    const char *oid, *sn, *ln;
} scep_oids[] = {
    { "2.16.840.1.113733.1.9.2", "messageType", "SCEP messageType" },
    { "2.16.840.1.113733.1.9.3", "pkiStatus", "SCEP pkiStatus" },
    { "2.16.840.1.113733.1.9.4", "failInfo", "SCEP failInfo" },
    { "2.16.840.1.113733.1.9.5", "senderNonce", "SCEP senderNonce" },
    { "2.16.840.1.113733.1.9.6", "recipientNonce", "SCEP recipientNonce" },
    { "2.16.840.1.113733.1.9.7", "transactionID", "SCEP transactionID" },
    { "1.3.6.1.5.5.7.24.1", "failInfoText", "SCEP failInfoText" }
};

enum {
    A_MESSAGE_TYPE, A_PKI_STATUS, A_FAIL_INFO, A_SENDER_NONCE,
    A_RECIPIENT_NONCE, A_TRANSACTION_ID, A_FAIL_INFO_TEXT, A_COUNT
};

/* Written once by scep_msg_init() before any thread starts. */
static int scep_nids[A_COUNT];

/* The providers scep_msg_init() loaded, held for the life of the process:
 * OSSL_PROVIDER_load() hands out a reference, and a reference dropped on
 * the floor outlives OPENSSL_cleanup() as unreachable memory (LeakSanitizer
 * reports it at exit once the legacy provider has been used). */
static OSSL_PROVIDER *scep_legacy_provider;
static OSSL_PROVIDER *scep_default_provider;

apr_status_t scep_msg_init(const char **err)
{
    int i;

    for (i = 0; i < A_COUNT; i++) {
        int nid = OBJ_txt2nid(scep_oids[i].oid);

        if (nid == NID_undef) {
            nid = OBJ_create(scep_oids[i].oid, scep_oids[i].sn,
                             scep_oids[i].ln);
        }
        if (nid == NID_undef) {
            if (err) {
                *err = "cannot register the SCEP attribute OIDs";
            }
            return APR_EGENERAL;
        }
        scep_nids[i] = nid;
    }
    /* Naming "legacy" makes the default provider load only when named too. */
    if (!scep_legacy_provider && !OSSL_PROVIDER_available(NULL, "legacy")) {
        if (!(scep_legacy_provider = OSSL_PROVIDER_load(NULL, "legacy"))) {
            /* DES requests will fail with badAlg, everything else works */
            ERR_clear_error();
        }
    }
    if (!scep_default_provider && !OSSL_PROVIDER_available(NULL, "default")
        && !(scep_default_provider = OSSL_PROVIDER_load(NULL, "default"))) {
        if (err) {
            *err = "cannot load the OpenSSL default provider";
        }
        return APR_EGENERAL;
    }
    return APR_SUCCESS;
}

static apr_status_t p7_cleanup(void *data)
{
    PKCS7_free(data);
    return APR_SUCCESS;
}

static const char *attr_string(apr_pool_t *p, PKCS7_SIGNER_INFO *si,
                               int which, int *bad_type)
{
    ASN1_TYPE *t = PKCS7_get_signed_attribute(si, scep_nids[which]);

    if (!t) {
        return NULL;
    }
    switch (t->type) {
    case V_ASN1_PRINTABLESTRING:
    case V_ASN1_IA5STRING:
    case V_ASN1_UTF8STRING:
        return apr_pstrmemdup(p, (const char *)t->value.asn1_string->data,
                              t->value.asn1_string->length);
    default:
        *bad_type = 1;
        return NULL;
    }
}

static const unsigned char *attr_octets(PKCS7_SIGNER_INFO *si, int which,
                                        apr_size_t *len, int *bad_type)
{
    ASN1_TYPE *t = PKCS7_get_signed_attribute(si, scep_nids[which]);

    if (!t) {
        return NULL;
    }
    if (t->type != V_ASN1_OCTET_STRING) {
        *bad_type = 1;
        return NULL;
    }
    *len = t->value.octet_string->length;
    return t->value.octet_string->data;
}

/* A small decimal number, or -1. */
static int decimal(const char *s)
{
    char *end;
    long v;

    if (!s || !*s || strlen(s) > 4) {
        return -1;
    }
    v = strtol(s, &end, 10);
    return *end ? -1 : (int)v;
}

apr_status_t scep_msg_parse(apr_pool_t *p, const unsigned char *der,
                            apr_size_t len, scep_msg_t **pmsg,
                            const char **err)
{
    const unsigned char *q = der;
    scep_msg_t *msg;
    PKCS7 *p7;
    PKCS7_SIGNER_INFO *si;
    PKCS7_ISSUER_AND_SERIAL *ias;
    ASN1_OCTET_STRING *os = NULL;
    BIO *content;
    int bad_type = 0;

    int slow = 0;

    if (len == 0 || len > LONG_MAX) {
        *err = "empty message";
        return APR_EINVAL;
    }
    /* the certificates' keys undecoded first: only the signer's is
     * needed, and ca_x509_load_pubkey() gets RSA keys far faster */
again:
    q = der;
    p7 = slow ? d2i_PKCS7(NULL, &q, (long)len)
              : ca_p7_parse_nokey(&q, (long)len);
    if (!p7) {
        *err = apr_psprintf(p, "not a PKCS#7 message: %s",
                            ca_openssl_errors(p));
        return APR_EINVAL;
    }
    apr_pool_cleanup_register(p, p7, p7_cleanup, apr_pool_cleanup_null);
    if (q != der + len) {
        *err = apr_psprintf(p, "%" APR_SIZE_T_FMT " bytes of garbage after "
                            "the message", (apr_size_t)(der + len - q));
        return APR_EINVAL;
    }
    if (!PKCS7_type_is_signed(p7) || !p7->d.sign || !p7->d.sign->contents) {
        *err = "not a PKCS#7 SignedData";
        return APR_EINVAL;
    }
    if (!PKCS7_type_is_data(p7->d.sign->contents)) {
        *err = "SignedData does not wrap id-data";
        return APR_EINVAL;
    }
    if (sk_PKCS7_SIGNER_INFO_num(PKCS7_get_signer_info(p7)) != 1) {
        *err = "SignedData must have exactly one signer";
        return APR_EINVAL;
    }
    si = sk_PKCS7_SIGNER_INFO_value(PKCS7_get_signer_info(p7), 0);
    ias = si->issuer_and_serial;

    msg = apr_pcalloc(p, sizeof(*msg));
    msg->p7 = p7;
    msg->certs = p7->d.sign->cert;
    msg->signer = ias ? X509_find_by_issuer_and_serial(p7->d.sign->cert,
                                                       ias->issuer,
                                                       ias->serial) : NULL;
    if (!msg->signer) {
        *err = "the signer's certificate is not in the message";
        return APR_EINVAL;
    }
    if (!slow && !ca_x509_load_pubkey(msg->signer)) {
        /* not RSA, or an encoding the key cannot be set into unchanged */
        ERR_clear_error();
        slow = 1;
        goto again;
    }
    msg->md = EVP_get_digestbyobj(si->digest_alg->algorithm);
    msg->cipher_nid = NID_undef;

    msg->transaction_id = attr_string(p, si, A_TRANSACTION_ID, &bad_type);
    msg->message_type = decimal(attr_string(p, si, A_MESSAGE_TYPE,
                                            &bad_type));
    msg->sender_nonce = attr_octets(si, A_SENDER_NONCE,
                                    &msg->sender_nonce_len, &bad_type);
    msg->recipient_nonce = attr_octets(si, A_RECIPIENT_NONCE,
                                       &msg->recipient_nonce_len, &bad_type);
    msg->pki_status = decimal(attr_string(p, si, A_PKI_STATUS, &bad_type));
    msg->fail_info = decimal(attr_string(p, si, A_FAIL_INFO, &bad_type));
    msg->fail_info_text = attr_string(p, si, A_FAIL_INFO_TEXT, &bad_type);
    if (bad_type) {
        *err = "a SCEP attribute has the wrong ASN.1 type";
        return APR_EINVAL;
    }

    if (PKCS7_type_is_data(p7->d.sign->contents)) {
        os = p7->d.sign->contents->d.data;
    }
    if (os && os->length > 0) {
        PKCS7 *env;

        msg->envelope = os->data;
        msg->envelope_len = os->length;
        q = os->data;
        env = d2i_PKCS7(NULL, &q, os->length);
        /* the [0] content of a ContentInfo is optional: d.enveloped may
         * be NULL even when the type says envelopedData */
        if (env && PKCS7_type_is_enveloped(env) && env->d.enveloped) {
            if (env->d.enveloped->enc_data
                && env->d.enveloped->enc_data->algorithm) {
                msg->cipher_nid = OBJ_obj2nid(
                    env->d.enveloped->enc_data->algorithm->algorithm);
            }
            /* kept for scep_msg_decrypt(), which would parse it again */
            msg->env = env;
            apr_pool_cleanup_register(p, env, p7_cleanup,
                                      apr_pool_cleanup_null);
        }
        else {
            PKCS7_free(env);
        }
        ERR_clear_error();
    }

    /* the signature over the content (empty when there is none) */
    content = BIO_new_mem_buf(msg->envelope ? msg->envelope
                                            : (const unsigned char *)"",
                              (int)msg->envelope_len);
    if (!content) {
        *err = "out of memory";
        return APR_ENOMEM;
    }
    msg->signature_ok = PKCS7_verify(p7, NULL, NULL,
                                     os ? NULL : content, NULL,
                                     PKCS7_NOVERIFY | PKCS7_BINARY) == 1;
    BIO_free(content);
    if (!msg->signature_ok) {
        msg->signature_error = apr_pstrcat(p, "signature does not verify: ",
                                           ca_openssl_errors(p), NULL);
    }
    ERR_clear_error();

    *pmsg = msg;
    return APR_SUCCESS;
}

apr_status_t scep_msg_decrypt(apr_pool_t *p, const scep_msg_t *msg,
                              X509 *cert, EVP_PKEY *key,
                              const unsigned char **data, apr_size_t *len,
                              const char **err)
{
    PKCS7 *env = msg->env;
    BIO *out;
    char *buf;
    long n;
    apr_status_t rv = APR_EINVAL;

    if (!msg->envelope) {
        *err = "the message has no pkcsPKIEnvelope";
        return APR_ENOENT;
    }
    if (!env) {
        /* scep_msg_parse() keeps every envelope that parses */
        *err = "the pkcsPKIEnvelope is not a PKCS#7 EnvelopedData";
        return APR_EINVAL;
    }
    out = BIO_new(BIO_s_mem());
    if (out && PKCS7_decrypt(env, key, cert, out, PKCS7_BINARY) == 1) {
        n = BIO_get_mem_data(out, &buf);
        *data = apr_pmemdup(p, buf, n > 0 ? n : 0);
        *len = n > 0 ? n : 0;
        rv = APR_SUCCESS;
    }
    else {
        *err = apr_psprintf(p, "cannot open the pkcsPKIEnvelope (cipher %s): "
                            "%s", OBJ_nid2sn(msg->cipher_nid),
                            ca_openssl_errors(p));
    }
    BIO_free(out);
    ERR_clear_error();
    return rv;
}

static int add_string(PKCS7_SIGNER_INFO *si, int which, int type,
                      const char *value)
{
    ASN1_STRING *s = ASN1_STRING_type_new(type);

    if (!s || !ASN1_STRING_set(s, value, (int)strlen(value))
        || !PKCS7_add_signed_attribute(si, scep_nids[which], type, s)) {
        ASN1_STRING_free(s);
        return 0;
    }
    return 1;
}

static int add_octets(PKCS7_SIGNER_INFO *si, int which,
                      const unsigned char *value, apr_size_t len)
{
    ASN1_OCTET_STRING *s = ASN1_OCTET_STRING_new();

    if (!s || !ASN1_OCTET_STRING_set(s, value, (int)len)
        || !PKCS7_add_signed_attribute(si, scep_nids[which],
                                       V_ASN1_OCTET_STRING, s)) {
        ASN1_OCTET_STRING_free(s);
        return 0;
    }
    return 1;
}

apr_status_t scep_msg_build(apr_pool_t *p, const scep_build_t *b,
                            const unsigned char **der, apr_size_t *len,
                            const char **err)
{
    unsigned char nonce[SCEP_NONCE_LEN];
    unsigned char *env_der = NULL, *out = NULL, *q;
    int env_len = 0, n, i;
    PKCS7 *env = NULL, *p7 = NULL;
    PKCS7_SIGNER_INFO *si;
    BIO *in = NULL;
    apr_status_t rv = APR_EGENERAL;

    if (b->content) {
        in = BIO_new_mem_buf(b->content, (int)b->content_len);
        env = in ? PKCS7_encrypt(b->recipients, in, b->cipher,
                                 PKCS7_BINARY) : NULL;
        BIO_free(in);
        in = NULL;
        if (!env || (env_len = i2d_PKCS7(env, &env_der)) <= 0) {
            *err = apr_psprintf(p, "cannot build the pkcsPKIEnvelope: %s",
                                ca_openssl_errors(p));
            goto out;
        }
    }

    p7 = PKCS7_sign(NULL, NULL, NULL, NULL, PKCS7_PARTIAL | PKCS7_BINARY);
    si = p7 ? PKCS7_sign_add_signer(p7, b->signer, b->signer_key, b->md,
                                    PKCS7_NOSMIMECAP) : NULL;
    if (!si) {
        *err = apr_psprintf(p, "cannot set up the signature: %s",
                            ca_openssl_errors(p));
        goto out;
    }
    for (i = 0; b->extra_certs && i < sk_X509_num(b->extra_certs); i++) {
        PKCS7_add_certificate(p7, sk_X509_value(b->extra_certs, i));
    }

    if (!b->sender_nonce && RAND_bytes(nonce, sizeof(nonce)) != 1) {
        *err = "no random numbers for the senderNonce";
        goto out;
    }
    if ((b->transaction_id
         && !add_string(si, A_TRANSACTION_ID, V_ASN1_PRINTABLESTRING,
                        b->transaction_id))
        || !add_string(si, A_MESSAGE_TYPE, V_ASN1_PRINTABLESTRING,
                       apr_itoa(p, b->message_type))
        || !add_octets(si, A_SENDER_NONCE,
                       b->sender_nonce ? b->sender_nonce : nonce,
                       SCEP_NONCE_LEN)) {
        *err = "cannot add the SCEP attributes";
        goto out;
    }
    if (b->pki_status != SCEP_STATUS_NONE) {
        if (!add_string(si, A_PKI_STATUS, V_ASN1_PRINTABLESTRING,
                        apr_itoa(p, b->pki_status))
            || (b->recipient_nonce
                && !add_octets(si, A_RECIPIENT_NONCE, b->recipient_nonce,
                               b->recipient_nonce_len))
            || (b->fail_info != SCEP_FAIL_NONE
                && !add_string(si, A_FAIL_INFO, V_ASN1_PRINTABLESTRING,
                               apr_itoa(p, b->fail_info)))
            || (b->fail_info_text
                && !add_string(si, A_FAIL_INFO_TEXT, V_ASN1_UTF8STRING,
                               b->fail_info_text))) {
            *err = "cannot add the CertRep attributes";
            goto out;
        }
    }

    /* no messageData: the outer content is left out entirely */
    if (!env_der) {
        PKCS7_set_detached(p7, 1);
    }
    in = BIO_new_mem_buf(env_der ? env_der : (unsigned char *)"", env_len);
    if (!in || !PKCS7_final(p7, in, PKCS7_BINARY)
        || (n = i2d_PKCS7(p7, NULL)) <= 0) {
        *err = apr_psprintf(p, "cannot sign the message: %s",
                            ca_openssl_errors(p));
        goto out;
    }
    q = out = apr_palloc(p, n);
    i2d_PKCS7(p7, &q);
    *der = out;
    *len = n;
    rv = APR_SUCCESS;
out:
    BIO_free(in);
    OPENSSL_free(env_der);
    PKCS7_free(env);
    PKCS7_free(p7);
    ERR_clear_error();
    return rv;
}

const char *scep_req_challenge(apr_pool_t *p, X509_REQ *req)
{
    int loc = X509_REQ_get_attr_by_NID(req, NID_pkcs9_challengePassword, -1);
    X509_ATTRIBUTE *attr;
    ASN1_TYPE *t;
    unsigned char *utf8 = NULL;
    const char *out;
    int n;

    if (loc < 0 || !(attr = X509_REQ_get_attr(req, loc))
        || !(t = X509_ATTRIBUTE_get0_type(attr, 0))) {
        return NULL;
    }
    switch (t->type) {
    case V_ASN1_PRINTABLESTRING:
    case V_ASN1_UTF8STRING:
    case V_ASN1_IA5STRING:
    case V_ASN1_T61STRING:
    case V_ASN1_BMPSTRING:
    case V_ASN1_UNIVERSALSTRING:
        break;
    default:
        return NULL;
    }
    n = ASN1_STRING_to_UTF8(&utf8, t->value.asn1_string);
    if (n < 0) {
        ERR_clear_error();
        return NULL;
    }
    out = apr_pstrmemdup(p, (const char *)utf8, n);
    OPENSSL_clear_free(utf8, n);
    return out;
}

const EVP_CIPHER *scep_reply_cipher(int request_cipher_nid)
{
    switch (request_cipher_nid) {
    case NID_aes_256_cbc:
        return EVP_aes_256_cbc();
    case NID_aes_192_cbc:
        return EVP_aes_192_cbc();
    case NID_des_ede3_cbc:
        return EVP_des_ede3_cbc();
    default:
        /* AES-128 too, and the answer to single DES and the unknown */
        return EVP_aes_128_cbc();
    }
}

const EVP_MD *scep_reply_md(const EVP_MD *request_md)
{
    switch (request_md ? EVP_MD_get_type(request_md) : NID_undef) {
    case NID_sha1:
        return EVP_sha1();
    case NID_sha224:
        return EVP_sha224();
    case NID_sha384:
        return EVP_sha384();
    case NID_sha512:
        return EVP_sha512();
    default:
        return EVP_sha256();
    }
}

const char *scep_msg_type_name(int type)
{
    switch (type) {
    case SCEP_MSG_CERTREP:
        return "CertRep";
    case SCEP_MSG_RENEWALREQ:
        return "RenewalReq";
    case SCEP_MSG_UPDATEREQ:
        return "UpdateReq";
    case SCEP_MSG_PKCSREQ:
        return "PKCSReq";
    case SCEP_MSG_CERTPOLL:
        return "CertPoll";
    case SCEP_MSG_GETCERT:
        return "GetCert";
    case SCEP_MSG_GETCRL:
        return "GetCRL";
    default:
        return "unknown";
    }
}

const char *scep_fail_name(int fail)
{
    switch (fail) {
    case SCEP_FAIL_BADALG:
        return "badAlg";
    case SCEP_FAIL_BADMESSAGECHECK:
        return "badMessageCheck";
    case SCEP_FAIL_BADREQUEST:
        return "badRequest";
    case SCEP_FAIL_BADTIME:
        return "badTime";
    case SCEP_FAIL_BADCERTID:
        return "badCertId";
    default:
        return "none";
    }
}
