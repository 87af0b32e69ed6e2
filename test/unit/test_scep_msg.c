/* Licensed under the Apache License, Version 2.0 (see COPYING). */

/* Unit tests of scep_msg.c. */

#include <string.h>

#include <apr_strings.h>

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pkcs7.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "test_common.h"
#include "ca_util.h"
#include "scep_msg.h"

#define OID_MESSAGE_TYPE     "2.16.840.1.113733.1.9.2"
#define OID_PKI_STATUS       "2.16.840.1.113733.1.9.3"
#define OID_FAIL_INFO        "2.16.840.1.113733.1.9.4"
#define OID_SENDER_NONCE     "2.16.840.1.113733.1.9.5"
#define OID_RECIPIENT_NONCE  "2.16.840.1.113733.1.9.6"
#define OID_TRANSACTION_ID   "2.16.840.1.113733.1.9.7"
#define OID_FAIL_INFO_TEXT   "1.3.6.1.5.5.7.24.1"

/* A transaction ID in micromdm's style: base64, with '+', '/' and '='. */
#define TID "q+/Zm4VxG2yfR0=="

/* Made once for the TCase (RSA key generation is slow), freed after it:
 * the RA (decrypts requests, signs replies), a client with its temporary
 * self-signed certificate, and a stranger. */
static EVP_PKEY *ra_key, *client_key, *other_key;
static X509 *ra_cert, *client_cert, *other_cert;

static apr_pool_t *pool;

static void keys_setup(void)
{
    ra_key = test_rsa_key(2048);
    client_key = test_rsa_key(2048);
    other_key = test_rsa_key(2048);
    ra_cert = test_self_signed(ra_key, "Unit Test RA",
                               X509v3_KU_DIGITAL_SIGNATURE
                               | X509v3_KU_KEY_ENCIPHERMENT);
    client_cert = test_self_signed(client_key,
                                   "9C1A57C6-1F55-4C1A-8B0E-4D7A2B5E9F01",
                                   X509v3_KU_DIGITAL_SIGNATURE
                                   | X509v3_KU_KEY_ENCIPHERMENT);
    other_cert = test_self_signed(other_key, "Stranger", 0);
}

static void keys_teardown(void)
{
    X509_free(other_cert);
    X509_free(client_cert);
    X509_free(ra_cert);
    EVP_PKEY_free(other_key);
    EVP_PKEY_free(client_key);
    EVP_PKEY_free(ra_key);
}

static void pool_setup(void)
{
    ck_assert_int_eq(apr_pool_create(&pool, NULL), APR_SUCCESS);
}

static void pool_teardown(void)
{
    apr_pool_destroy(pool);
    pool = NULL;
    ERR_clear_error();
}

/* ---- helpers ----------------------------------------------------------- */

static apr_status_t cipher_cleanup(void *data)
{
    EVP_CIPHER_free(data);
    return APR_SUCCESS;
}

static const EVP_CIPHER *fetch_cipher(const char *name)
{
    EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, name, NULL);

    ck_assert_msg(c != NULL, "cipher %s unavailable (legacy provider?)",
                  name);
    /* freed with the test's pool */
    apr_pool_cleanup_register(pool, c, cipher_cleanup, apr_pool_cleanup_null);
    return c;
}

static STACK_OF(X509) *one_cert(X509 *x)
{
    STACK_OF(X509) *sk = ca_x509_stack_own(pool, sk_X509_new_null());

    X509_up_ref(x);
    sk_X509_push(sk, x);
    return sk;
}

static void csr_der(const char *cn, const char *challenge, int type,
                    const unsigned char **der, apr_size_t *len)
{
    X509_REQ *req = ca_req_own(pool, test_csr(client_key, cn, challenge,
                                              type));

    ck_assert_int_eq(ca_req_der(pool, req, der, len), APR_SUCCESS);
}

/* A PKCSReq from the client to the RA. */
static void build_request(const EVP_CIPHER *cipher, const EVP_MD *md,
                          const unsigned char *nonce,
                          const unsigned char *content, apr_size_t clen,
                          const unsigned char **der, apr_size_t *len)
{
    scep_build_t b;
    const char *err = NULL;

    memset(&b, 0, sizeof(b));
    b.message_type = SCEP_MSG_PKCSREQ;
    b.transaction_id = TID;
    b.sender_nonce = nonce;
    b.pki_status = SCEP_STATUS_NONE;
    b.fail_info = SCEP_FAIL_NONE;
    b.content = content;
    b.content_len = clen;
    b.recipients = one_cert(ra_cert);
    b.cipher = cipher;
    b.signer = client_cert;
    b.signer_key = client_key;
    b.md = md;
    ck_assert_msg(scep_msg_build(pool, &b, der, len, &err) == APR_SUCCESS,
                  "build: %s", err);
}

/* A request with a CSR in AES-128 and SHA-256. */
static void plain_request(const unsigned char **der, apr_size_t *len)
{
    const unsigned char *csr;
    apr_size_t csr_len;

    csr_der("plain", NULL, 0, &csr, &csr_len);
    build_request(EVP_aes_128_cbc(), EVP_sha256(), NULL, csr, csr_len,
                  der, len);
}

static scep_msg_t *parse_ok(const unsigned char *der, apr_size_t len)
{
    scep_msg_t *msg = NULL;
    const char *err = NULL;

    ck_assert_msg(scep_msg_parse(pool, der, len, &msg, &err) == APR_SUCCESS,
                  "parse: %s", err);
    ck_assert_ptr_nonnull(msg);
    return msg;
}

static void parse_fails(const unsigned char *der, apr_size_t len)
{
    scep_msg_t *msg = NULL;
    const char *err = NULL;

    ck_assert_int_eq(scep_msg_parse(pool, der, len, &msg, &err), APR_EINVAL);
    ck_assert_ptr_nonnull(err);
}

/* A copy of der with one bit flipped in the middle of needle. */
static unsigned char *flip_inside(const unsigned char *der, apr_size_t len,
                                  const unsigned char *needle,
                                  apr_size_t nlen)
{
    unsigned char *copy = apr_pmemdup(pool, der, len);
    apr_size_t i;

    for (i = 0; nlen && i + nlen <= len; i++) {
        if (memcmp(copy + i, needle, nlen) == 0) {
            copy[i + nlen / 2] ^= 0x01;
            return copy;
        }
    }
    ck_abort_msg("needle not found");
    return NULL;
}

/* The universal tag of the one value of attribute oid, -1 if absent. */
static int attr_type(const unsigned char *der, apr_size_t len,
                     const char *oid)
{
    const unsigned char *q = der;
    PKCS7 *p7 = d2i_PKCS7(NULL, &q, (long)len);
    PKCS7_SIGNER_INFO *si;
    ASN1_TYPE *t;
    int type = -1;

    ck_assert_ptr_nonnull(p7);
    si = sk_PKCS7_SIGNER_INFO_value(PKCS7_get_signer_info(p7), 0);
    ck_assert_ptr_nonnull(si);
    t = PKCS7_get_signed_attribute(si, OBJ_txt2nid(oid));
    if (t) {
        type = t->type;
    }
    PKCS7_free(p7);
    return type;
}

/*
 * A pkiMessage put together by hand, for what scep_msg_build will not
 * make: BER with indefinite lengths at both layers (as Apple sends) and
 * a messageType of the wrong ASN.1 type.
 */
static void handmade(int ber, int message_type_tag, int nocerts,
                     const unsigned char *content, apr_size_t clen,
                     const unsigned char **der, apr_size_t *len)
{
    int flags = PKCS7_BINARY | (ber ? PKCS7_STREAM : 0);
    BIO *in, *out;
    PKCS7 *env, *p7;
    PKCS7_SIGNER_INFO *si;
    ASN1_STRING *s;
    ASN1_OCTET_STRING *nonce;
    unsigned char nb[SCEP_NONCE_LEN];
    unsigned char *env_der;
    char *buf;
    long n;

    /* the envelope */
    in = BIO_new_mem_buf(content, (int)clen);
    env = PKCS7_encrypt(one_cert(ra_cert), in, EVP_aes_128_cbc(), flags);
    ck_assert_ptr_nonnull(env);
    out = BIO_new(BIO_s_mem());
    if (ber) {
        ck_assert_int_eq(i2d_PKCS7_bio_stream(out, env, in, flags), 1);
    }
    else {
        ck_assert_int_eq(i2d_PKCS7_bio(out, env), 1);
    }
    n = BIO_get_mem_data(out, &buf);
    env_der = apr_pmemdup(pool, buf, n);
    BIO_free(out);
    BIO_free(in);
    PKCS7_free(env);
    if (ber) {
        /* SEQUENCE with indefinite length */
        ck_assert_uint_eq(env_der[0], 0x30);
        ck_assert_uint_eq(env_der[1], 0x80);
    }

    /* the signature */
    p7 = PKCS7_sign(NULL, NULL, NULL, NULL, PKCS7_PARTIAL | flags);
    ck_assert_ptr_nonnull(p7);
    si = PKCS7_sign_add_signer(p7, client_cert, client_key, EVP_sha256(),
                               PKCS7_NOSMIMECAP
                               | (nocerts ? PKCS7_NOCERTS : 0));
    ck_assert_ptr_nonnull(si);
    s = ASN1_STRING_type_new(V_ASN1_PRINTABLESTRING);
    ASN1_STRING_set(s, TID, -1);
    ck_assert_int_eq(PKCS7_add_signed_attribute(si,
                         OBJ_txt2nid(OID_TRANSACTION_ID),
                         V_ASN1_PRINTABLESTRING, s), 1);
    if (message_type_tag == V_ASN1_INTEGER) {
        ASN1_INTEGER *i = ASN1_INTEGER_new();

        ASN1_INTEGER_set(i, 19);
        ck_assert_int_eq(PKCS7_add_signed_attribute(si,
                             OBJ_txt2nid(OID_MESSAGE_TYPE), V_ASN1_INTEGER,
                             i), 1);
    }
    else {
        s = ASN1_STRING_type_new(message_type_tag);
        ASN1_STRING_set(s, "19", -1);
        ck_assert_int_eq(PKCS7_add_signed_attribute(si,
                             OBJ_txt2nid(OID_MESSAGE_TYPE),
                             message_type_tag, s), 1);
    }
    ck_assert_int_eq(RAND_bytes(nb, sizeof(nb)), 1);
    nonce = ASN1_OCTET_STRING_new();
    ASN1_OCTET_STRING_set(nonce, nb, sizeof(nb));
    ck_assert_int_eq(PKCS7_add_signed_attribute(si,
                         OBJ_txt2nid(OID_SENDER_NONCE), V_ASN1_OCTET_STRING,
                         nonce), 1);

    in = BIO_new_mem_buf(env_der, (int)n);
    out = BIO_new(BIO_s_mem());
    if (ber) {
        ck_assert_int_eq(i2d_PKCS7_bio_stream(out, p7, in, flags), 1);
    }
    else {
        ck_assert_int_eq(PKCS7_final(p7, in, flags), 1);
        ck_assert_int_eq(i2d_PKCS7_bio(out, p7), 1);
    }
    n = BIO_get_mem_data(out, &buf);
    *der = apr_pmemdup(pool, buf, n);
    *len = (apr_size_t)n;
    BIO_free(out);
    BIO_free(in);
    PKCS7_free(p7);
    if (ber) {
        ck_assert_uint_eq((*der)[1], 0x80);
    }
}

/* ---- build and parse round trips --------------------------------------- */

static const struct {
    const char *name;
    int nid;
} ciphers[] = {
    { "AES-128-CBC", NID_aes_128_cbc },
    { "AES-192-CBC", NID_aes_192_cbc },
    { "AES-256-CBC", NID_aes_256_cbc },
    { "DES-EDE3-CBC", NID_des_ede3_cbc },
    { "DES-CBC", NID_des_cbc }          /* legacy provider, scep_msg_init */
};
#define N_CIPHERS ((int)(sizeof(ciphers) / sizeof(ciphers[0])))

static const EVP_MD *digest(int i)
{
    switch (i) {
    case 0:
        return EVP_sha1();
    case 1:
        return EVP_sha256();
    default:
        return EVP_sha512();
    }
}
#define N_DIGESTS 3

/* Loop test: _i picks a cipher and a digest. */
START_TEST(request_round_trip)
{
    const EVP_CIPHER *cipher = fetch_cipher(ciphers[_i / N_DIGESTS].name);
    const EVP_MD *md = digest(_i % N_DIGESTS);
    unsigned char nonce[SCEP_NONCE_LEN];
    const unsigned char *csr, *der, *data;
    apr_size_t csr_len, len, data_len;
    const char *err = NULL;
    scep_msg_t *msg;

    ck_assert_int_eq(RAND_bytes(nonce, sizeof(nonce)), 1);
    csr_der("round trip", "s3cret", V_ASN1_PRINTABLESTRING, &csr, &csr_len);
    build_request(cipher, md, nonce, csr, csr_len, &der, &len);

    msg = parse_ok(der, len);
    ck_assert_int_eq(msg->message_type, SCEP_MSG_PKCSREQ);
    ck_assert_str_eq(msg->transaction_id, TID);
    ck_assert_uint_eq(msg->sender_nonce_len, SCEP_NONCE_LEN);
    ck_assert_int_eq(memcmp(msg->sender_nonce, nonce, SCEP_NONCE_LEN), 0);
    ck_assert_ptr_null(msg->recipient_nonce);
    ck_assert_int_eq(msg->pki_status, SCEP_STATUS_NONE);
    ck_assert_int_eq(msg->fail_info, SCEP_FAIL_NONE);
    ck_assert_ptr_null(msg->fail_info_text);
    ck_assert_msg(msg->signature_ok, "signature: %s", msg->signature_error);
    ck_assert_int_eq(X509_cmp(msg->signer, client_cert), 0);
    ck_assert_ptr_nonnull(msg->md);
    ck_assert_int_eq(EVP_MD_get_type(msg->md), EVP_MD_get_type(md));
    ck_assert_ptr_nonnull(msg->envelope);
    ck_assert_int_eq(msg->cipher_nid, ciphers[_i / N_DIGESTS].nid);

    /* the RA opens it and finds the CSR, byte for byte */
    ck_assert_msg(scep_msg_decrypt(pool, msg, ra_cert, ra_key, &data,
                                   &data_len, &err) == APR_SUCCESS,
                  "decrypt: %s", err);
    ck_assert_uint_eq(data_len, csr_len);
    ck_assert_int_eq(memcmp(data, csr, csr_len), 0);
}
END_TEST

START_TEST(request_attribute_types)
{
    const unsigned char *der;
    apr_size_t len;

    plain_request(&der, &len);
    ck_assert_int_eq(attr_type(der, len, OID_TRANSACTION_ID),
                     V_ASN1_PRINTABLESTRING);
    ck_assert_int_eq(attr_type(der, len, OID_MESSAGE_TYPE),
                     V_ASN1_PRINTABLESTRING);
    ck_assert_int_eq(attr_type(der, len, OID_SENDER_NONCE),
                     V_ASN1_OCTET_STRING);
    /* not in a request */
    ck_assert_int_eq(attr_type(der, len, OID_PKI_STATUS), -1);
    ck_assert_int_eq(attr_type(der, len, OID_RECIPIENT_NONCE), -1);
    ck_assert_int_eq(attr_type(der, len, OID_FAIL_INFO), -1);
}
END_TEST

START_TEST(fresh_nonce_when_none_given)
{
    const unsigned char *der1, *der2;
    apr_size_t len1, len2;
    scep_msg_t *m1, *m2;

    plain_request(&der1, &len1);
    plain_request(&der2, &len2);
    m1 = parse_ok(der1, len1);
    m2 = parse_ok(der2, len2);
    ck_assert_uint_eq(m1->sender_nonce_len, SCEP_NONCE_LEN);
    ck_assert_uint_eq(m2->sender_nonce_len, SCEP_NONCE_LEN);
    ck_assert_int_ne(memcmp(m1->sender_nonce, m2->sender_nonce,
                            SCEP_NONCE_LEN), 0);
}
END_TEST

START_TEST(no_transaction_id)
{
    scep_build_t b;
    const unsigned char *der;
    apr_size_t len;
    const char *err = NULL;
    scep_msg_t *msg;

    memset(&b, 0, sizeof(b));
    b.message_type = SCEP_MSG_PKCSREQ;
    b.transaction_id = NULL;
    b.pki_status = SCEP_STATUS_NONE;
    b.fail_info = SCEP_FAIL_NONE;
    b.signer = client_cert;
    b.signer_key = client_key;
    b.md = EVP_sha256();
    ck_assert_msg(scep_msg_build(pool, &b, &der, &len, &err) == APR_SUCCESS,
                  "build: %s", err);
    msg = parse_ok(der, len);
    ck_assert_ptr_null(msg->transaction_id);
    ck_assert_int_eq(msg->message_type, SCEP_MSG_PKCSREQ);
    ck_assert_ptr_null(msg->envelope);
    ck_assert(msg->signature_ok);
}
END_TEST

START_TEST(wrong_recipient)
{
    const unsigned char *der, *data;
    apr_size_t len, data_len;
    const char *err = NULL;
    scep_msg_t *msg;

    plain_request(&der, &len);
    msg = parse_ok(der, len);
    /* a stranger's certificate and key */
    ck_assert_int_eq(scep_msg_decrypt(pool, msg, other_cert, other_key,
                                      &data, &data_len, &err), APR_EINVAL);
    ck_assert_ptr_nonnull(err);
    /* the RA's certificate with the wrong key */
    err = NULL;
    ck_assert_int_eq(scep_msg_decrypt(pool, msg, ra_cert, other_key,
                                      &data, &data_len, &err), APR_EINVAL);
    ck_assert_ptr_nonnull(err);
}
END_TEST

/* A CertRep SUCCESS from the RA, encrypted to the client's self-signed
 * certificate, holding the issued certificate. */
START_TEST(certrep_success)
{
    const unsigned char *req, *der, *p7der, *data;
    apr_size_t req_len, len, p7len, data_len;
    unsigned char nonce[SCEP_NONCE_LEN];
    STACK_OF(X509) *issued, *got;
    const char *err = NULL;
    scep_msg_t *rq, *msg;
    scep_build_t b;

    plain_request(&req, &req_len);
    rq = parse_ok(req, req_len);
    ck_assert_int_eq(RAND_bytes(nonce, sizeof(nonce)), 1);

    issued = ca_x509_stack_own(pool, sk_X509_new_null());
    sk_X509_push(issued, test_issue(client_key, "issued", ra_cert, ra_key));
    X509_up_ref(ra_cert);
    sk_X509_push(issued, ra_cert);
    ck_assert_int_eq(ca_p7_certs_der(pool, issued, &p7der, &p7len),
                     APR_SUCCESS);

    memset(&b, 0, sizeof(b));
    b.message_type = SCEP_MSG_CERTREP;
    b.transaction_id = rq->transaction_id;
    b.sender_nonce = nonce;
    b.recipient_nonce = rq->sender_nonce;
    b.recipient_nonce_len = rq->sender_nonce_len;
    b.pki_status = SCEP_STATUS_SUCCESS;
    b.fail_info = SCEP_FAIL_NONE;
    b.content = p7der;
    b.content_len = p7len;
    b.recipients = one_cert(rq->signer);
    b.cipher = scep_reply_cipher(rq->cipher_nid);
    b.signer = ra_cert;
    b.signer_key = ra_key;
    b.md = scep_reply_md(rq->md);
    ck_assert_msg(scep_msg_build(pool, &b, &der, &len, &err) == APR_SUCCESS,
                  "build: %s", err);

    ck_assert_int_eq(attr_type(der, len, OID_PKI_STATUS),
                     V_ASN1_PRINTABLESTRING);
    ck_assert_int_eq(attr_type(der, len, OID_RECIPIENT_NONCE),
                     V_ASN1_OCTET_STRING);
    ck_assert_int_eq(attr_type(der, len, OID_FAIL_INFO), -1);

    msg = parse_ok(der, len);
    ck_assert_int_eq(msg->message_type, SCEP_MSG_CERTREP);
    ck_assert_int_eq(msg->pki_status, SCEP_STATUS_SUCCESS);
    ck_assert_int_eq(msg->fail_info, SCEP_FAIL_NONE);
    ck_assert_str_eq(msg->transaction_id, TID);
    ck_assert_uint_eq(msg->recipient_nonce_len, SCEP_NONCE_LEN);
    ck_assert_int_eq(memcmp(msg->recipient_nonce, rq->sender_nonce,
                            SCEP_NONCE_LEN), 0);
    ck_assert_int_eq(memcmp(msg->sender_nonce, nonce, SCEP_NONCE_LEN), 0);
    ck_assert(msg->signature_ok);
    ck_assert_int_eq(X509_cmp(msg->signer, ra_cert), 0);
    ck_assert_int_eq(msg->cipher_nid, NID_aes_128_cbc);

    /* only the client can open it */
    ck_assert_int_eq(scep_msg_decrypt(pool, msg, ra_cert, ra_key, &data,
                                      &data_len, &err), APR_EINVAL);
    ck_assert_msg(scep_msg_decrypt(pool, msg, client_cert, client_key,
                                   &data, &data_len, &err) == APR_SUCCESS,
                  "decrypt: %s", err);
    got = ca_p7_certs_parse(pool, data, data_len);
    ck_assert_ptr_nonnull(got);
    ck_assert_int_eq(sk_X509_num(got), 2);
    ck_assert_int_eq(X509_cmp(sk_X509_value(got, 0),
                              sk_X509_value(issued, 0)), 0);
}
END_TEST

START_TEST(certrep_failure)
{
    unsigned char rn[SCEP_NONCE_LEN];
    const unsigned char *der, *data;
    apr_size_t len, data_len;
    const char *err = NULL;
    scep_msg_t *msg;
    scep_build_t b;

    ck_assert_int_eq(RAND_bytes(rn, sizeof(rn)), 1);
    memset(&b, 0, sizeof(b));
    b.message_type = SCEP_MSG_CERTREP;
    b.transaction_id = TID;
    b.recipient_nonce = rn;
    b.recipient_nonce_len = sizeof(rn);
    b.pki_status = SCEP_STATUS_FAILURE;
    b.fail_info = SCEP_FAIL_BADREQUEST;
    b.fail_info_text = "challenge password \xc3\xa9" "chou\xc3\xa9";
    b.signer = ra_cert;
    b.signer_key = ra_key;
    b.md = EVP_sha256();
    ck_assert_msg(scep_msg_build(pool, &b, &der, &len, &err) == APR_SUCCESS,
                  "build: %s", err);

    ck_assert_int_eq(attr_type(der, len, OID_FAIL_INFO),
                     V_ASN1_PRINTABLESTRING);
    ck_assert_int_eq(attr_type(der, len, OID_FAIL_INFO_TEXT),
                     V_ASN1_UTF8STRING);

    msg = parse_ok(der, len);
    ck_assert_int_eq(msg->message_type, SCEP_MSG_CERTREP);
    ck_assert_int_eq(msg->pki_status, SCEP_STATUS_FAILURE);
    ck_assert_int_eq(msg->fail_info, SCEP_FAIL_BADREQUEST);
    ck_assert_str_eq(msg->fail_info_text, b.fail_info_text);
    ck_assert_int_eq(memcmp(msg->recipient_nonce, rn, sizeof(rn)), 0);
    ck_assert_msg(msg->signature_ok, "signature: %s", msg->signature_error);
    /* no pkcsPKIEnvelope at all */
    ck_assert_ptr_null(msg->envelope);
    ck_assert_uint_eq(msg->envelope_len, 0);
    ck_assert_int_eq(msg->cipher_nid, NID_undef);
    ck_assert_int_eq(scep_msg_decrypt(pool, msg, client_cert, client_key,
                                      &data, &data_len, &err), APR_ENOENT);
}
END_TEST

START_TEST(certrep_pending)
{
    const unsigned char *der;
    apr_size_t len;
    const char *err = NULL;
    scep_msg_t *msg;
    scep_build_t b;

    memset(&b, 0, sizeof(b));
    b.message_type = SCEP_MSG_CERTREP;
    b.transaction_id = TID;
    b.pki_status = SCEP_STATUS_PENDING;
    b.fail_info = SCEP_FAIL_NONE;
    b.signer = ra_cert;
    b.signer_key = ra_key;
    b.md = EVP_sha1();
    ck_assert_msg(scep_msg_build(pool, &b, &der, &len, &err) == APR_SUCCESS,
                  "build: %s", err);
    msg = parse_ok(der, len);
    ck_assert_int_eq(msg->pki_status, SCEP_STATUS_PENDING);
    ck_assert_int_eq(msg->fail_info, SCEP_FAIL_NONE);
    ck_assert_ptr_null(msg->fail_info_text);
    ck_assert_ptr_null(msg->envelope);
    ck_assert(msg->signature_ok);
}
END_TEST

/* ---- damaged and foreign input ----------------------------------------- */

START_TEST(flipped_signature)
{
    const unsigned char *der, *q;
    apr_size_t len;
    unsigned char *bad;
    PKCS7 *p7;
    PKCS7_SIGNER_INFO *si;
    scep_msg_t *msg;

    plain_request(&der, &len);
    q = der;
    p7 = d2i_PKCS7(NULL, &q, (long)len);
    ck_assert_ptr_nonnull(p7);
    si = sk_PKCS7_SIGNER_INFO_value(PKCS7_get_signer_info(p7), 0);
    bad = flip_inside(der, len, si->enc_digest->data,
                      (apr_size_t)si->enc_digest->length);
    PKCS7_free(p7);

    msg = parse_ok(bad, len);
    ck_assert_int_eq(msg->signature_ok, 0);
    ck_assert_ptr_nonnull(msg->signature_error);
    /* the attributes are still there for the FAILURE reply */
    ck_assert_str_eq(msg->transaction_id, TID);
    ck_assert_uint_eq(msg->sender_nonce_len, SCEP_NONCE_LEN);
}
END_TEST

START_TEST(flipped_content)
{
    const unsigned char *der;
    apr_size_t len;
    unsigned char *bad;
    scep_msg_t *msg;

    plain_request(&der, &len);
    msg = parse_ok(der, len);
    ck_assert_uint_gt(msg->envelope_len, 64);
    /* a bit near the end of the encrypted content: the messageDigest
     * no longer matches */
    bad = flip_inside(der, len, msg->envelope + msg->envelope_len - 40, 32);
    msg = parse_ok(bad, len);
    ck_assert_int_eq(msg->signature_ok, 0);
}
END_TEST

START_TEST(truncated)
{
    const unsigned char *der;
    apr_size_t len, cut;

    plain_request(&der, &len);
    for (cut = 1; cut < len; cut += (cut < 64 ? 1 : 97)) {
        parse_fails(der, len - cut);
    }
    parse_fails(der, 1);
    parse_fails(der, 2);
}
END_TEST

START_TEST(garbage_and_empty)
{
    unsigned char junk[1024];
    scep_msg_t *msg;
    const char *err = NULL;
    int i;

    parse_fails((const unsigned char *)"", 0);
    parse_fails((const unsigned char *)"\x30\x00", 2);
    parse_fails((const unsigned char *)"\x30\x80\x00\x00", 4);
    parse_fails((const unsigned char *)"hello, world", 12);
    for (i = 0; i < 50; i++) {
        ck_assert_int_eq(RAND_bytes(junk, sizeof(junk)), 1);
        ck_assert_int_eq(scep_msg_parse(pool, junk, sizeof(junk), &msg, &err),
                         APR_EINVAL);
    }
}
END_TEST

START_TEST(trailing_bytes)
{
    const unsigned char *der;
    apr_size_t len;
    unsigned char *longer;

    plain_request(&der, &len);
    longer = apr_palloc(pool, len + 2);
    memcpy(longer, der, len);
    longer[len] = 0x00;
    longer[len + 1] = 0x00;
    parse_fails(longer, len + 1);
    parse_fails(longer, len + 2);
}
END_TEST

START_TEST(not_a_pkimessage)
{
    const unsigned char *der, *p7der;
    apr_size_t len, p7len;
    scep_msg_t *msg;

    /* the envelope alone is a PKCS#7, but no SignedData */
    plain_request(&der, &len);
    msg = parse_ok(der, len);
    parse_fails(msg->envelope, msg->envelope_len);
    /* a degenerate certificates-only SignedData has no signer */
    ck_assert_int_eq(ca_p7_certs_der(pool, one_cert(ra_cert), &p7der, &p7len),
                     APR_SUCCESS);
    parse_fails(p7der, p7len);
}
END_TEST

START_TEST(signer_cert_missing)
{
    const unsigned char *csr, *der;
    apr_size_t csr_len, len;

    csr_der("nocerts", NULL, 0, &csr, &csr_len);
    handmade(0, V_ASN1_PRINTABLESTRING, 1, csr, csr_len, &der, &len);
    parse_fails(der, len);
}
END_TEST

START_TEST(two_signers)
{
    const unsigned char *der;
    unsigned char *out;
    PKCS7 *p7;
    BIO *in;
    int n;

    p7 = PKCS7_sign(NULL, NULL, NULL, NULL, PKCS7_PARTIAL | PKCS7_BINARY);
    ck_assert_ptr_nonnull(p7);
    ck_assert_ptr_nonnull(PKCS7_sign_add_signer(p7, client_cert, client_key,
                                                EVP_sha256(), 0));
    ck_assert_ptr_nonnull(PKCS7_sign_add_signer(p7, ra_cert, ra_key,
                                                EVP_sha256(), 0));
    in = BIO_new_mem_buf("x", 1);
    ck_assert_int_eq(PKCS7_final(p7, in, PKCS7_BINARY), 1);
    BIO_free(in);
    out = NULL;
    n = i2d_PKCS7(p7, &out);
    ck_assert_int_gt(n, 0);
    der = apr_pmemdup(pool, out, n);
    OPENSSL_free(out);
    PKCS7_free(p7);
    parse_fails(der, (apr_size_t)n);
}
END_TEST

START_TEST(wrong_attribute_type)
{
    const unsigned char *csr, *der;
    apr_size_t csr_len, len;

    csr_der("badtype", NULL, 0, &csr, &csr_len);
    handmade(0, V_ASN1_INTEGER, 0, csr, csr_len, &der, &len);
    parse_fails(der, len);
    handmade(0, V_ASN1_OCTET_STRING, 0, csr, csr_len, &der, &len);
    parse_fails(der, len);
}
END_TEST

/* Apple sends BER with indefinite lengths inside PKIOperation. */
START_TEST(ber_indefinite)
{
    const unsigned char *csr, *der, *data;
    apr_size_t csr_len, len, data_len;
    const char *err = NULL;
    scep_msg_t *msg;

    csr_der("ber", "s3cret", V_ASN1_PRINTABLESTRING, &csr, &csr_len);
    handmade(1, V_ASN1_PRINTABLESTRING, 0, csr, csr_len, &der, &len);
    msg = parse_ok(der, len);
    ck_assert_int_eq(msg->message_type, SCEP_MSG_PKCSREQ);
    ck_assert_str_eq(msg->transaction_id, TID);
    ck_assert_msg(msg->signature_ok, "signature: %s", msg->signature_error);
    ck_assert_int_eq(msg->cipher_nid, NID_aes_128_cbc);
    ck_assert_msg(scep_msg_decrypt(pool, msg, ra_cert, ra_key, &data,
                                   &data_len, &err) == APR_SUCCESS,
                  "decrypt: %s", err);
    ck_assert_uint_eq(data_len, csr_len);
    ck_assert_int_eq(memcmp(data, csr, csr_len), 0);
}
END_TEST

/* A signed message whose content is ContentInfo(envelopedData) without
 * its optional [0] content: parsing once dereferenced the missing
 * EnvelopedData before any signature check. */
START_TEST(envelope_without_content)
{
    static const unsigned char env[] = {
        0x30, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01,
        0x07, 0x03
    };
    const unsigned char *data;
    unsigned char *out = NULL;
    apr_size_t data_len;
    const char *err = NULL;
    scep_msg_t *msg;
    PKCS7 *p7;
    BIO *in;
    int n;

    in = BIO_new_mem_buf(env, sizeof(env));
    p7 = PKCS7_sign(client_cert, client_key, NULL, in, PKCS7_BINARY);
    BIO_free(in);
    ck_assert_ptr_nonnull(p7);
    n = i2d_PKCS7(p7, &out);
    PKCS7_free(p7);
    ck_assert_int_gt(n, 0);

    msg = parse_ok(apr_pmemdup(pool, out, n), (apr_size_t)n);
    OPENSSL_free(out);
    ck_assert(msg->signature_ok);
    ck_assert_uint_eq(msg->envelope_len, sizeof(env));
    ck_assert_int_eq(msg->cipher_nid, NID_undef);
    ck_assert_int_eq(scep_msg_decrypt(pool, msg, ra_cert, ra_key, &data,
                                      &data_len, &err), APR_EINVAL);
}
END_TEST

/* ---- challengePassword ------------------------------------------------- */

static const char *challenge_of(X509_REQ *req)
{
    const unsigned char *der;
    apr_size_t len;
    X509_REQ *again;

    /* through DER, as it arrives */
    ck_assert_int_eq(ca_req_der(pool, req, &der, &len), APR_SUCCESS);
    again = ca_req_parse(pool, der, len);
    ck_assert_ptr_nonnull(again);
    return scep_req_challenge(pool, again);
}

START_TEST(challenge_types)
{
    static const unsigned char bmp[] = { 0x00, 'p', 0x00, 'i', 0x00, 'n' };
    const char *c;
    X509_REQ *req;

    req = ca_req_own(pool, test_csr(client_key, "c", "s3cret-Pass",
                                    V_ASN1_PRINTABLESTRING));
    c = challenge_of(req);
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(c, "s3cret-Pass");

    req = ca_req_own(pool, test_csr(client_key, "c",
                                    "p\xc3\xa4ssw\xc3\xb6rd_!",
                                    V_ASN1_UTF8STRING));
    c = challenge_of(req);
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(c, "p\xc3\xa4ssw\xc3\xb6rd_!");

    req = ca_req_own(pool, test_csr(client_key, "c", NULL, 0));
    ck_assert_int_eq(X509_REQ_add1_attr_by_NID(req,
                         NID_pkcs9_challengePassword, V_ASN1_BMPSTRING,
                         bmp, sizeof(bmp)), 1);
    c = challenge_of(req);
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(c, "pin");
}
END_TEST

START_TEST(challenge_absent_or_odd)
{
    X509_REQ *req;

    req = ca_req_own(pool, test_csr(client_key, "c", NULL, 0));
    ck_assert_ptr_null(challenge_of(req));

    /* an OCTET STRING is no DirectoryString */
    req = ca_req_own(pool, test_csr(client_key, "c", "s3cret",
                                    V_ASN1_OCTET_STRING));
    ck_assert_ptr_null(challenge_of(req));
}
END_TEST

/* ---- reply algorithms -------------------------------------------------- */

START_TEST(reply_cipher)
{
    static const int others[] = {
        NID_undef, NID_des_cbc, NID_des_ede3_cbc, NID_aes_128_cbc,
        NID_aes_192_cbc, NID_aes_256_cbc, NID_rc2_cbc, NID_bf_cbc,
        NID_aes_128_gcm, NID_sha256
    };
    apr_size_t i;

    ck_assert_int_eq(EVP_CIPHER_get_nid(scep_reply_cipher(NID_des_cbc)),
                     NID_aes_128_cbc);
    ck_assert_int_eq(EVP_CIPHER_get_nid(scep_reply_cipher(NID_undef)),
                     NID_aes_128_cbc);
    ck_assert_int_eq(EVP_CIPHER_get_nid(scep_reply_cipher(NID_aes_128_cbc)),
                     NID_aes_128_cbc);
    ck_assert_int_eq(EVP_CIPHER_get_nid(scep_reply_cipher(NID_aes_192_cbc)),
                     NID_aes_192_cbc);
    ck_assert_int_eq(EVP_CIPHER_get_nid(scep_reply_cipher(NID_aes_256_cbc)),
                     NID_aes_256_cbc);
    ck_assert_int_eq(EVP_CIPHER_get_nid(scep_reply_cipher(NID_des_ede3_cbc)),
                     NID_des_ede3_cbc);
    /* never single DES, whatever comes in */
    for (i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        const EVP_CIPHER *c = scep_reply_cipher(others[i]);

        ck_assert_ptr_nonnull(c);
        ck_assert_int_ne(EVP_CIPHER_get_nid(c), NID_des_cbc);
    }
}
END_TEST

START_TEST(reply_md)
{
    ck_assert_int_eq(EVP_MD_get_type(scep_reply_md(EVP_md5())), NID_sha256);
    ck_assert_int_eq(EVP_MD_get_type(scep_reply_md(NULL)), NID_sha256);
    ck_assert_int_eq(EVP_MD_get_type(scep_reply_md(EVP_sha1())), NID_sha1);
    ck_assert_int_eq(EVP_MD_get_type(scep_reply_md(EVP_sha256())),
                     NID_sha256);
    ck_assert_int_eq(EVP_MD_get_type(scep_reply_md(EVP_sha512())),
                     NID_sha512);
}
END_TEST

START_TEST(names)
{
    ck_assert_str_eq(scep_msg_type_name(SCEP_MSG_PKCSREQ), "PKCSReq");
    ck_assert_str_eq(scep_msg_type_name(SCEP_MSG_CERTPOLL), "CertPoll");
    ck_assert_str_eq(scep_msg_type_name(99), "unknown");
    ck_assert_str_eq(scep_fail_name(SCEP_FAIL_BADMESSAGECHECK),
                     "badMessageCheck");
    ck_assert_str_eq(scep_fail_name(SCEP_FAIL_BADREQUEST), "badRequest");
    ck_assert_str_eq(scep_fail_name(SCEP_FAIL_NONE), "none");
}
END_TEST

START_TEST(init_idempotent)
{
    const char *err = NULL;

    ck_assert_int_eq(scep_msg_init(&err), APR_SUCCESS);
    ck_assert_int_eq(scep_msg_init(&err), APR_SUCCESS);
}
END_TEST

Suite *scep_msg_suite(void)
{
    Suite *s = suite_create("scep_msg");
    TCase *tc = tcase_create("scep_msg");

    tcase_add_unchecked_fixture(tc, keys_setup, keys_teardown);
    tcase_add_checked_fixture(tc, pool_setup, pool_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, request_round_trip, 0, N_CIPHERS * N_DIGESTS);
    tcase_add_test(tc, request_attribute_types);
    tcase_add_test(tc, fresh_nonce_when_none_given);
    tcase_add_test(tc, no_transaction_id);
    tcase_add_test(tc, wrong_recipient);
    tcase_add_test(tc, certrep_success);
    tcase_add_test(tc, certrep_failure);
    tcase_add_test(tc, certrep_pending);
    tcase_add_test(tc, flipped_signature);
    tcase_add_test(tc, flipped_content);
    tcase_add_test(tc, truncated);
    tcase_add_test(tc, garbage_and_empty);
    tcase_add_test(tc, trailing_bytes);
    tcase_add_test(tc, not_a_pkimessage);
    tcase_add_test(tc, signer_cert_missing);
    tcase_add_test(tc, two_signers);
    tcase_add_test(tc, wrong_attribute_type);
    tcase_add_test(tc, ber_indefinite);
    tcase_add_test(tc, envelope_without_content);
    tcase_add_test(tc, challenge_types);
    tcase_add_test(tc, challenge_absent_or_odd);
    tcase_add_test(tc, reply_cipher);
    tcase_add_test(tc, reply_md);
    tcase_add_test(tc, names);
    tcase_add_test(tc, init_idempotent);
    suite_add_tcase(s, tc);
    return s;
}
