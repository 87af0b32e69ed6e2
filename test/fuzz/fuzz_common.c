/* Licensed under the Apache License, Version 2.0 (see COPYING). */

/*
 * What the libFuzzer targets share: APR and scep_msg set up once, a root
 * pool, the throwaway RA that the seed corpora are encrypted to, and what
 * mod_scep does with a pkiMessage short of answering it.
 */

#include <stdlib.h>
#include <stdio.h>

#include <apr_general.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "ca_util.h"
#include "scep_msg.h"
#include "fuzz_common.h"

apr_pool_t *fuzz_root;

/*
 * THROWAWAY TEST KEY, NOT A SECRET.  It exists only so that the seed
 * corpus can be encrypted to something the fuzzer can open; it protects
 * nothing and must never be trusted for anything.  Identical to
 * test/fuzz/ra.pem and test/fuzz/ra.key.
 */
static const char fuzz_ra_cert_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIDjDCCAnSgAwIBAgIUDUKKMfakm0+B6uVH1YBCAELO2LQwDQYJKoZIhvcNAQEL\n"
    "BQAwTjEZMBcGA1UECgwQbW9kX3NjZXAgZnV6emluZzExMC8GA1UEAwwoRnV6eiBS\n"
    "QSAodGhyb3dhd2F5IHRlc3Qga2V5LCBub3Qgc2VjcmV0KTAgFw0yNjExMjYyMzU0\n"
    "MDFaGA8yMTI2MTEwMjIzNTQwMVowTjEZMBcGA1UECgwQbW9kX3NjZXAgZnV6emlu\n"
    "ZzExMC8GA1UEAwwoRnV6eiBSQSAodGhyb3dhd2F5IHRlc3Qga2V5LCBub3Qgc2Vj\n"
    "cmV0KTCCASIwDQYJKoZIhvcNAQEBBQADggEPADCCAQoCggEBAMeRXVA8/WQmPznX\n"
    "p10z4vuQJ1Y5LLTJgdEeM8W/dhzPGGx4SGJU9sLuFxCbuEh1U4aYEX2Uepvht2ta\n"
    "wTO394jVf3r6gzeb2WVcRTcYSHIKXG5FnVK/FyjkIR/lS/lzi7SHXh0/6rOxMRmq\n"
    "1W5pMBwdIAsIa5lbzoIQfAr0VN8U2PCp+nyQOAqBIy4vBgxZ8RO20OtEZuLgpItx\n"
    "0gQ1oRwAAAMKET99wzTrceoLLMmlVAtv+kFHgVv1/Vc90QGoJY40BHW5zkut2DxH\n"
    "ZFs1l83oIMirOfaTd8vSrBJdgcnL3Rrzn/KGzwofRBzmrbtBCcCGwpXdxXZpi3s8\n"
    "eWGDHUMCAwEAAaNgMF4wHQYDVR0OBBYEFMd075MaFBwrFjEc5WACeeQVq1OKMB8G\n"
    "A1UdIwQYMBaAFMd075MaFBwrFjEc5WACeeQVq1OKMA4GA1UdDwEB/wQEAwIFoDAM\n"
    "BgNVHRMBAf8EAjAAMA0GCSqGSIb3DQEBCwUAA4IBAQBUPgvcYHnwK4az9itU7Ysc\n"
    "MW6CTqrg3KSM/NBY6175ekeXnLHX0EpeANZetv+uO89KtbHS0Ez0UY32RjoR+l6G\n"
    "Y3r4+SapHKV88qoGTce10SmEWz77f85dz2bIJpgUEPlxpj//J22xZt2FuMooMJ8r\n"
    "Y4Uef80+1rUJ2khrPa1fhGVsprk0hEN6MctRvUYsXVHkoRwt2JcGZDVuIk8scj1E\n"
    "623EWTMuZkfzeInOPp1jPhr5h1N9Yn4PrxowccAbvK80EHvKe01yg6OMR0RmDDTf\n"
    "eQHv2hNpt8L64wnEZUVNnyCI81Opt72Mhe9gGH1T2v6EJYfD6MiTbFDPTIAP4cG1\n"
    "-----END CERTIFICATE-----\n";

static const char fuzz_ra_key_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDHkV1QPP1kJj85\n"
    "16ddM+L7kCdWOSy0yYHRHjPFv3YczxhseEhiVPbC7hcQm7hIdVOGmBF9lHqb4bdr\n"
    "WsEzt/eI1X96+oM3m9llXEU3GEhyClxuRZ1Svxco5CEf5Uv5c4u0h14dP+qzsTEZ\n"
    "qtVuaTAcHSALCGuZW86CEHwK9FTfFNjwqfp8kDgKgSMuLwYMWfETttDrRGbi4KSL\n"
    "cdIENaEcAAADChE/fcM063HqCyzJpVQLb/pBR4Fb9f1XPdEBqCWONAR1uc5Lrdg8\n"
    "R2RbNZfN6CDIqzn2k3fL0qwSXYHJy90a85/yhs8KH0Qc5q27QQnAhsKV3cV2aYt7\n"
    "PHlhgx1DAgMBAAECggEAH3Xrk3gh7BVZd0lncXp6CHVntiCKSy/PHsPXno95073U\n"
    "GFl388R4KC+3hB9AVG/mjHvRmg37rDJPo4VpmrkgNTqO/7iZUf1oLqH2qWJTHWND\n"
    "wgCIdiB4yrH4BNq1eOw9tGZ4sDzAx7Yhyu2S+vZrJqtyvzqDF+iQrBFkNKfi703H\n"
    "KNVen4Nzho+8TaQ4KNpiNydaWUbIXnuBKS5+3ccweZboiuFf4/bYuj7kg3lrIzV+\n"
    "4AiCSPYVJUvTSjtop1PpiHJfKoTaFP5LcTtUEs/es8NVV52DnJfBYfnCb2BrPbc5\n"
    "PL7dA3olReLx1RwFWDD5YYT07xHjfzgiDLx5G2w3ZQKBgQDvgNUEq7MyfHcXZuGI\n"
    "6Z4nMXRLpCjvtY9ofs8atFXVrXdWxXg2HqVhkfw0YLOEiBLjEP6+Z9SgqdXfdqmc\n"
    "ascAJ8wBtnTohC7u3SXyBz48Z5Ki6Q6Tr+15QB/dO1AmAAHH/8QFgxDYDOWB5Rij\n"
    "/INIGODaR+Cu/nQh8WlT1kGetQKBgQDVUFmWtMZl20SDspMoo45uAP75X+hLTMoN\n"
    "KeUu9gaRHu99LVEqLQ4iQCOqWt8xgGhA8bxK6mA0U5iJ3GYYZdp4wjnIkdl62eJv\n"
    "uHA4+Xa+UAUbep4xSylSSqaxhgrNrgBGPi7nLbtNLkHOaF/fpBiq1X4Tt1B9qAag\n"
    "cEcKPZRPFwKBgQCORqZExAsL7syAZmmMf9unxMUlOjvnSqAKn2pAnuhuq0G9lkk3\n"
    "PTVZpPOB2gBKttshcLMkQWIan0miGkff176n5PxX+B+zEPMgitdD0/GwyIZfqLs0\n"
    "GMqlwOYs8lNGf7KPMO0tqRKUhfTBGWtt30/NwJmykghzbE1o7JR5bUpGEQKBgQCq\n"
    "tFhdcGFs1aHoupllZi3u/kENk6Cz0cnH6wULJbtvmxAQXpmbZN7wrd9czsfaN2Y2\n"
    "wrzqPtGqTlO9z3CsiaXiCZxwU7d0xrScrz6veYN7HVJZATFjRUDWKANqAVjX7C0w\n"
    "CUdDnadMRn5HDePbdth+rcbtRD/XrwVOk0tmeI0dFQKBgBhggc98mbyczuW58Vgn\n"
    "2fshMoJUJhUK0+eEIiLuDUg2VNpVukmQFyJp8BJFdKLDz+JUilZzsXM8bzyYiObV\n"
    "Sosze90qKSEB/aulAJov75N1rVY9dV2uIGln1mh4PUPUd5kdkmzoOsZGyYID+A5C\n"
    "Rs26mC7GFjzf1Wq8N2Tzzs1W\n"
    "-----END PRIVATE KEY-----\n";

static X509 *ra_cert;
static EVP_PKEY *ra_key;

void fuzz_init(const char *target)
{
    const char *err = NULL;
    BIO *bio;

    if (apr_initialize() != APR_SUCCESS
        || apr_pool_create(&fuzz_root, NULL) != APR_SUCCESS) {
        fprintf(stderr, "%s: cannot initialise APR\n", target);
        abort();
    }
    if (scep_msg_init(&err) != APR_SUCCESS) {
        fprintf(stderr, "%s: %s\n", target, err);
        abort();
    }
    bio = BIO_new_mem_buf(fuzz_ra_cert_pem, -1);
    ra_cert = ca_x509_own(fuzz_root, PEM_read_bio_X509(bio, NULL, NULL,
                                                       NULL));
    BIO_free(bio);
    bio = BIO_new_mem_buf(fuzz_ra_key_pem, -1);
    ra_key = ca_pkey_own(fuzz_root, PEM_read_bio_PrivateKey(bio, NULL, NULL,
                                                            NULL));
    BIO_free(bio);
    if (!ra_cert || !ra_key) {
        fprintf(stderr, "%s: cannot read the embedded RA\n", target);
        abort();
    }
}

void fuzz_pkimessage(apr_pool_t *p, const unsigned char *der,
                     apr_size_t len)
{
    scep_msg_t *msg;
    const unsigned char *data;
    apr_size_t data_len;
    const char *err = NULL;
    X509_REQ *req;

    if (scep_msg_parse(p, der, len, &msg, &err) != APR_SUCCESS) {
        return;
    }
    (void)scep_msg_type_name(msg->message_type);
    (void)scep_fail_name(msg->fail_info);
    (void)scep_reply_cipher(msg->cipher_nid);
    (void)scep_reply_md(msg->md);
    if (msg->transaction_id) {
        (void)ca_secret_equal(msg->transaction_id, "transaction");
    }
    if (msg->sender_nonce) {
        (void)ca_hex(p, msg->sender_nonce, msg->sender_nonce_len);
    }
    if (msg->recipient_nonce) {
        (void)ca_hex(p, msg->recipient_nonce, msg->recipient_nonce_len);
    }
    if (scep_msg_decrypt(p, msg, ra_cert, ra_key, &data, &data_len, &err)
        != APR_SUCCESS) {
        return;
    }
    if ((req = ca_req_parse(p, data, data_len))) {
        (void)scep_req_challenge(p, req);
    }
    else {
        (void)ca_p7_certs_parse(p, data, data_len);
    }
}
