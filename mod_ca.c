/* Licensed under the Apache License, Version 2.0 (see COPYING). */

/*
 * mod_ca: the core of the suite.  It holds no protocol logic: it only
 * implements the runners of the hooks declared in mod_ca.h, so that
 * frontends and backends can find each other.
 */

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"

#include "mod_ca.h"

module AP_MODULE_DECLARE_DATA ca_module;

/* First answer other than DECLINED wins; DECLINED when nobody answered. */
APR_IMPLEMENT_OPTIONAL_HOOK_RUN_ALL(ca, CA, int, ca_reqauthz,
        (request_rec *r, apr_hash_t *params,
         const unsigned char *csr, apr_size_t csr_len),
        (r, params, csr, csr_len), DECLINED, DECLINED)

APR_IMPLEMENT_OPTIONAL_HOOK_RUN_ALL(ca, CA, int, ca_sign,
        (request_rec *r, apr_hash_t *params,
         const unsigned char *csr, apr_size_t csr_len,
         const unsigned char **cert, apr_size_t *cert_len),
        (r, params, csr, csr_len, cert, cert_len), DECLINED, DECLINED)

/* Every store is offered the certificate: stop only on an error. */
APR_IMPLEMENT_OPTIONAL_HOOK_RUN_ALL(ca, CA, int, ca_certstore,
        (request_rec *r, apr_hash_t *params,
         const unsigned char *cert, apr_size_t cert_len),
        (r, params, cert, cert_len), OK, DECLINED)

APR_IMPLEMENT_OPTIONAL_HOOK_RUN_ALL(ca, CA, int, ca_getcert,
        (request_rec *r, apr_hash_t *params,
         const unsigned char **cert, apr_size_t *cert_len),
        (r, params, cert, cert_len), DECLINED, DECLINED)

APR_IMPLEMENT_OPTIONAL_HOOK_RUN_ALL(ca, CA, int, ca_getca,
        (request_rec *r, const unsigned char **der, apr_size_t *len,
         apr_time_t *valid_until),
        (r, der, len, valid_until), DECLINED, DECLINED)

APR_IMPLEMENT_OPTIONAL_HOOK_RUN_ALL(ca, CA, int, ca_getnextca,
        (request_rec *r, const unsigned char **der, apr_size_t *len,
         apr_time_t *valid_until),
        (r, der, len, valid_until), DECLINED, DECLINED)

APR_IMPLEMENT_OPTIONAL_HOOK_RUN_ALL(ca, CA, int, ca_getchain,
        (request_rec *r, const unsigned char **der, apr_size_t *len,
         apr_time_t *valid_until),
        (r, der, len, valid_until), DECLINED, DECLINED)

APR_IMPLEMENT_OPTIONAL_HOOK_RUN_ALL(ca, CA, int, ca_makeserial,
        (request_rec *r, apr_hash_t *params,
         const unsigned char **serial, apr_size_t *len),
        (r, params, serial, len), DECLINED, DECLINED)

APR_IMPLEMENT_OPTIONAL_HOOK_RUN_ALL(ca, CA, int, ca_gettime,
        (request_rec *r, apr_time_t *now),
        (r, now), DECLINED, DECLINED)

static void ca_register_hooks(apr_pool_t *p)
{
    /* nothing to hook: the module exists to export the runners above */
}

AP_DECLARE_MODULE(ca) =
{
    STANDARD20_MODULE_STUFF,
    NULL,                       /* create per-directory config */
    NULL,                       /* merge per-directory config */
    NULL,                       /* create per-server config */
    NULL,                       /* merge per-server config */
    NULL,                       /* command table */
    ca_register_hooks,          /* register hooks */
#if defined(AP_MODULE_HAS_FLAGS)
    0                           /* flags */
#endif
};
