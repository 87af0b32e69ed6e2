/* Licensed under the Apache License, Version 2.0 (see COPYING). */

/*
 * libFuzzer target: the query string of a SCEP GET, as mod_scep decodes it.
 *
 * Each input is r->args: operation= and message= are taken out with
 * ca_query_param(), message= is percent-decoded and read as lenient base64
 * (RFC, sscep, macOS and unpadded escapings), and what decodes goes
 * through the pkiMessage path of fuzz_pkimessage.  Besides the sanitizers
 * it checks that what the decoder returns comes back unchanged from
 * standard base64 (abort() when not).
 *
 *   make fuzz
 *   test/fuzz/fuzz_getdecode -max_total_time=120 test/fuzz/corpus/getdecode
 *
 * The seed corpus (test/fuzz/make-corpus.sh getdecode) is the
 * pkiMessages of corpus/pkimessage in every escaping, among other
 * parameters.
 */

#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <apr_pools.h>
#include <apr_strings.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "ca_util.h"
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ScepSize's default: larger GET messages are refused before parsing */
#define GET_SIZE_MAX 131072

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_init("fuzz_getdecode");
    return 0;
}

/* What the lenient decoder returned must be what it gives back for the
 * same bytes in plain RFC 4648 base64. */
static void check_round_trip(apr_pool_t *p, const unsigned char *der,
                             apr_size_t len)
{
    unsigned char *b64 = apr_palloc(p, (len + 2) / 3 * 4 + 1), *back;
    apr_size_t back_len;
    int n = EVP_EncodeBlock(b64, der, (int)len);

    if (n < 0
        || ca_base64_decode_lenient(p, (const char *)b64, (apr_size_t)n,
                                    &back, &back_len) != APR_SUCCESS
        || back_len != len || memcmp(back, der, len)) {
        fprintf(stderr, "fuzz_getdecode: %lu decoded bytes do not survive "
                "a base64 round trip\n", (unsigned long)len);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    const char *args, *message;
    unsigned char *der;
    apr_size_t mlen = 0, der_len = 0;

    if (apr_pool_create(&p, fuzz_root) != APR_SUCCESS) {
        abort();
    }
    /* r->args is a C string: a NUL ends it */
    args = apr_pstrmemdup(p, (const char *)data, size);

    (void)ca_query_param(p, args, "operation", NULL);
    message = ca_query_param(p, args, "message", &mlen);
    if (message && message[mlen] != '\0') {
        fprintf(stderr, "fuzz_getdecode: message= is not terminated at its "
                "length\n");
        abort();
    }
    if (message && ca_base64_decode_lenient(p, message, mlen, &der,
                                            &der_len) == APR_SUCCESS
        && der_len > 0 && der_len <= GET_SIZE_MAX) {
        check_round_trip(p, der, der_len);
        fuzz_pkimessage(p, der, der_len);
    }

    ERR_clear_error();
    apr_pool_destroy(p);
    return 0;
}
