/* Licensed under the Apache License, Version 2.0 (see COPYING). */

/* Shared by the libFuzzer targets in test/fuzz (fuzz_common.c). */

#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <apr_pools.h>

/* Made by fuzz_init(); each input gets a subpool, destroyed after it. */
extern apr_pool_t *fuzz_root;

/* APR, scep_msg_init() and the embedded RA; aborts naming target when any
 * of them fails. */
void fuzz_init(const char *target);

/* What mod_scep does with a pkiMessage, short of answering it: parse it,
 * read its attributes, open the envelope with the RA (test/fuzz/ra.pem,
 * ra.key) and read the content as a PKCS#10 request or a degenerate
 * PKCS#7. */
void fuzz_pkimessage(apr_pool_t *p, const unsigned char *der,
                     apr_size_t len);

#endif /* FUZZ_COMMON_H */
