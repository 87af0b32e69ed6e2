/* Licensed under the Apache License, Version 2.0 (see COPYING). */

/*
 * libFuzzer target: a SCEP pkiMessage as it reaches mod_scep.
 *
 * Each input is parsed as a pkiMessage (POST body); when it parses, the
 * envelope is opened with the RA key and its content read as the PKCS#10
 * request (and its challengePassword) or as the degenerate PKCS#7 of a
 * CertRep.  The same bytes are also read as a PKCS#10 request directly,
 * and treated as the message= value of a GET (percent-decoding, lenient
 * base64, then parsed as a pkiMessage again); fuzz_getdecode takes whole
 * query strings.
 *
 *   make fuzz
 *   test/fuzz/fuzz_pkimessage -max_total_time=120 test/fuzz/corpus/pkimessage
 *
 * The seed corpus is made by test/fuzz/make-corpus.sh with
 * tools/scep-test-client, encrypted to the throwaway RA of fuzz_common.c
 * (copies in test/fuzz/ra.pem and test/fuzz/ra.key).
 */

#include <stdint.h>
#include <stdlib.h>

#include <apr_pools.h>

#include <openssl/err.h>

#include "ca_util.h"
#include "scep_msg.h"
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_init("fuzz_pkimessage");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    char *text;
    unsigned char *der;
    apr_size_t text_len, der_len;
    X509_REQ *req;

    if (apr_pool_create(&p, fuzz_root) != APR_SUCCESS) {
        abort();
    }

    /* a POST body */
    fuzz_pkimessage(p, data, size);

    /* what an envelope holds: mutated envelopes rarely decrypt to a
     * mutated request, so the request parser gets the bytes directly */
    if ((req = ca_req_parse(p, data, size))) {
        (void)scep_req_challenge(p, req);
    }

    /* the message= value of a GET */
    text = ca_percent_decode(p, (const char *)data, size, &text_len);
    if (ca_base64_decode_lenient(p, text, text_len, &der, &der_len)
        == APR_SUCCESS && der_len > 0) {
        fuzz_pkimessage(p, der, der_len);
    }

    ERR_clear_error();
    apr_pool_destroy(p);
    return 0;
}
