/* Licensed under the Apache License, Version 2.0 (see COPYING). */

/*
 * scep_msg: parse and build SCEP pkiMessages (RFC 8894 section 3).
 *
 * A pkiMessage is a PKCS#7 SignedData over id-data whose content, when
 * present, is the DER of a PKCS#7 EnvelopedData (the pkcsPKIEnvelope).
 * The SCEP attributes travel as signed attributes.  No httpd here: the
 * same code serves the module, the unit tests, the fuzzer and the
 * project's test client.
 */

#ifndef SCEP_MSG_H
#define SCEP_MSG_H

#include <apr_pools.h>
#include <openssl/x509.h>
#include <openssl/evp.h>

typedef enum {
    SCEP_MSG_CERTREP = 3,
    SCEP_MSG_RENEWALREQ = 17,
    SCEP_MSG_UPDATEREQ = 18,
    SCEP_MSG_PKCSREQ = 19,
    SCEP_MSG_CERTPOLL = 20,         /* GetCertInitial in the drafts */
    SCEP_MSG_GETCERT = 21,
    SCEP_MSG_GETCRL = 22
} scep_msg_type_e;

typedef enum {
    SCEP_STATUS_NONE = -1,          /* not a CertRep */
    SCEP_STATUS_SUCCESS = 0,
    SCEP_STATUS_FAILURE = 2,
    SCEP_STATUS_PENDING = 3
} scep_status_e;

typedef enum {
    SCEP_FAIL_NONE = -1,
    SCEP_FAIL_BADALG = 0,
    SCEP_FAIL_BADMESSAGECHECK = 1,
    SCEP_FAIL_BADREQUEST = 2,
    SCEP_FAIL_BADTIME = 3,
    SCEP_FAIL_BADCERTID = 4
} scep_fail_e;

#define SCEP_NONCE_LEN 16

/* A parsed pkiMessage.  Everything is owned by the pool it was parsed in. */
typedef struct scep_msg_t {
    int message_type;               /* -1: absent or not a number */
    const char *transaction_id;     /* NULL: absent */
    const unsigned char *sender_nonce;
    apr_size_t sender_nonce_len;
    const unsigned char *recipient_nonce;
    apr_size_t recipient_nonce_len;
    int pki_status;                 /* scep_status_e, CertRep only */
    int fail_info;                  /* scep_fail_e, CertRep only */
    const char *fail_info_text;     /* CertRep only, may be NULL */

    X509 *signer;                   /* the certificate that signed it */
    const EVP_MD *md;               /* the digest the signer used */
    int signature_ok;               /* outer signature verified */
    const char *signature_error;    /* why not, when !signature_ok */

    const unsigned char *envelope;  /* DER ContentInfo(EnvelopedData) */
    apr_size_t envelope_len;        /* 0: no pkcsPKIEnvelope */
    int cipher_nid;                 /* its content cipher, NID_undef */

    STACK_OF(X509) *certs;          /* every certificate in the message */
    void *p7;                       /* the PKCS7, for the implementation */
    void *env;                      /* the envelope parsed, or NULL */
} scep_msg_t;

/*
 * Parse a pkiMessage and verify its outer signature against the signer
 * certificate it carries.  APR_SUCCESS whenever the bytes are a SignedData
 * with exactly one signer whose certificate is included: the attributes
 * are then filled in as far as they are present and well-typed, and
 * signature_ok says whether the signature holds.  Anything else (not DER,
 * truncated, another content type, no signer certificate) is APR_EINVAL
 * with *err saying why.  Tolerates BER (indefinite lengths).
 */
apr_status_t scep_msg_parse(apr_pool_t *p, const unsigned char *der,
                            apr_size_t len, scep_msg_t **pmsg,
                            const char **err);

/*
 * Open the pkcsPKIEnvelope with a recipient certificate and key.
 * APR_ENOENT when there is no envelope; APR_EINVAL when it cannot be
 * decrypted (not for this recipient, unsupported cipher, garbage).
 */
apr_status_t scep_msg_decrypt(apr_pool_t *p, const scep_msg_t *msg,
                              X509 *cert, EVP_PKEY *key,
                              const unsigned char **data, apr_size_t *len,
                              const char **err);

/* What to put in a pkiMessage. */
typedef struct scep_build_t {
    int message_type;               /* scep_msg_type_e */
    const char *transaction_id;     /* NULL: left out (negative tests) */
    const unsigned char *sender_nonce;  /* NULL: 16 fresh random bytes */
    const unsigned char *recipient_nonce;   /* CertRep: request's nonce */
    apr_size_t recipient_nonce_len;
    int pki_status;                 /* SCEP_STATUS_NONE for requests */
    int fail_info;                  /* SCEP_FAIL_NONE unless FAILURE */
    const char *fail_info_text;     /* optional, FAILURE only */

    const unsigned char *content;   /* messageData to envelope, or NULL */
    apr_size_t content_len;
    STACK_OF(X509) *recipients;     /* who can open the envelope */
    const EVP_CIPHER *cipher;       /* content cipher of the envelope */

    X509 *signer;                   /* signs the message */
    EVP_PKEY *signer_key;
    const EVP_MD *md;               /* digest of the signature */
    STACK_OF(X509) *extra_certs;    /* added after the signer, may be NULL */
} scep_build_t;

/* Build, envelope and sign a pkiMessage; DER allocated from the pool. */
apr_status_t scep_msg_build(apr_pool_t *p, const scep_build_t *b,
                            const unsigned char **der, apr_size_t *len,
                            const char **err);

/* The challengePassword attribute of a PKCS#10 request (NULL if none). */
const char *scep_req_challenge(apr_pool_t *p, X509_REQ *req);

/* Reply cipher and digest for a request: the request's own when it is a
 * modern choice, else AES-128-CBC / SHA-256 (single DES is never used to
 * answer; MD5 never to sign). */
const EVP_CIPHER *scep_reply_cipher(int request_cipher_nid);
const EVP_MD *scep_reply_md(const EVP_MD *request_md);

/* Names for logs. */
const char *scep_msg_type_name(int type);
const char *scep_fail_name(int fail);

/* Register the SCEP attribute OIDs and load OpenSSL's legacy provider next
 * to the default one, so that single-DES requests from old clients can be
 * decrypted.  Idempotent; call once at start-up before threads exist. */
apr_status_t scep_msg_init(const char **err);

#endif /* SCEP_MSG_H */
