/* Licensed under the Apache License, Version 2.0 (see COPYING). */

/*
 * mod_ca_simple: a backend that signs certificate requests with a CA
 * certificate and private key held in files, and that can answer the
 * serial number and time hooks for itself and for other backends.
 *
 * Every file is read and parsed once, by the directive handlers while
 * httpd still runs as root; the DER handed out by getca, getnextca and
 * getchain is encoded then too.  Requests only read the configuration.
 *
 * CASimpleCertificate, CASimpleKey and CASimpleChain describe one signer
 * and are inherited together: a section that sets any of them replaces
 * all three, so a request can never be signed with a key from one section
 * and a certificate from another that the start-up checks never paired.
 */

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"

#include "apr_strings.h"

#include <errno.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "mod_ca.h"
#include "ca_util.h"
#include "ca_issue.h"
#include "ca_sign.h"

module AP_MODULE_DECLARE_DATA ca_simple_module;

#define CA_SIMPLE_DAYS_DEFAULT  CA_ISSUE_DAYS_DEFAULT

/* A certificate read from a file, with what the hooks hand out. */
typedef struct ca_simple_dir_conf {
    /* the signer: inherited as a unit, see the top of the file */
    ca_sign_cert *cert;               /* CASimpleCertificate */
    const char *key_file;               /* CASimpleKey */
    EVP_PKEY *key;
    ca_sign_chain *chain;             /* CASimpleChain */

    ca_sign_cert *next;               /* CASimpleNextCertificate */
    int days;                           /* CASimpleDays */
    apr_array_header_t *extensions;     /* CASimpleExtension, replaces;
                                         * of ca_issue_ext */
    int time;                           /* CASimpleTime */
    int serial_random;                  /* CASimpleSerialRandom */

    const char *where;                  /* file:line, for start-up errors */

    unsigned int cert_set:1;
    unsigned int key_set:1;
    unsigned int chain_set:1;
    unsigned int next_set:1;
    unsigned int days_set:1;
    unsigned int extensions_set:1;
    unsigned int time_set:1;
    unsigned int serial_random_set:1;
    unsigned int registered:1;          /* in ca_simple_sections already */
} ca_simple_dir_conf;

/*
 * Every section that set a certificate or key, for the start-up checks.
 * Allocated from pconf in pre_config and filled by the directive handlers;
 * only the main thread touches it, while it reads the configuration, and
 * requests never do.
 */
static apr_array_header_t *ca_simple_sections;

/* ---- configuration ------------------------------------------------- */

static void *ca_simple_create_dir_conf(apr_pool_t *p, char *dir)
{
    ca_simple_dir_conf *conf = apr_pcalloc(p, sizeof(*conf));

    conf->days = CA_SIMPLE_DAYS_DEFAULT;

    return conf;
}

static void *ca_simple_merge_dir_conf(apr_pool_t *p, void *basev, void *addv)
{
    ca_simple_dir_conf *new = apr_pcalloc(p, sizeof(*new));
    ca_simple_dir_conf *base = basev;
    ca_simple_dir_conf *add = addv;

    if (add->cert_set || add->key_set || add->chain_set) {
        new->cert = add->cert;
        new->key_file = add->key_file;
        new->key = add->key;
        new->chain = add->chain;
    }
    else {
        new->cert = base->cert;
        new->key_file = base->key_file;
        new->key = base->key;
        new->chain = base->chain;
    }
    new->cert_set = base->cert_set || add->cert_set;
    new->key_set = base->key_set || add->key_set;
    new->chain_set = base->chain_set || add->chain_set;

    new->next = add->next_set ? add->next : base->next;
    new->next_set = base->next_set || add->next_set;

    new->days = add->days_set ? add->days : base->days;
    new->days_set = base->days_set || add->days_set;

    new->extensions = add->extensions_set ? add->extensions
                                          : base->extensions;
    new->extensions_set = base->extensions_set || add->extensions_set;

    new->time = add->time_set ? add->time : base->time;
    new->time_set = base->time_set || add->time_set;

    new->serial_random = add->serial_random_set ? add->serial_random
                                                : base->serial_random;
    new->serial_random_set = base->serial_random_set
                             || add->serial_random_set;

    return new;
}

static apr_status_t ca_simple_reset_sections(void *data)
{
    ca_simple_sections = NULL;

    return APR_SUCCESS;
}

/* A fresh registry for each reading of the configuration. */
static void ca_simple_make_sections(apr_pool_t *pconf)
{
    ca_simple_sections = apr_array_make(pconf, 4,
                                        sizeof(ca_simple_dir_conf *));
    apr_pool_cleanup_register(pconf, NULL, ca_simple_reset_sections,
                              apr_pool_cleanup_null);
}

/* Remember a section for the start-up checks, once. */
static void ca_simple_register_section(cmd_parms *cmd,
                                       ca_simple_dir_conf *conf)
{
    if (conf->registered) {
        return;
    }
    if (!ca_simple_sections) {
        /* pre_config runs first; cmd->pool is pconf in any case */
        ca_simple_make_sections(cmd->pool);
    }
    conf->where = cmd->directive
        ? apr_psprintf(cmd->pool, "%s:%d", cmd->directive->filename,
                       cmd->directive->line_num)
        : "(unknown)";
    APR_ARRAY_PUSH(ca_simple_sections, ca_simple_dir_conf *) = conf;
    conf->registered = 1;
}

static const char *ca_simple_set_certificate(cmd_parms *cmd, void *dconf,
                                             const char *arg)
{
    ca_simple_dir_conf *conf = dconf;
    const char *err;

    if ((err = ca_sign_load_cert(cmd, arg, &conf->cert))) {
        return err;
    }
    conf->cert_set = 1;
    ca_simple_register_section(cmd, conf);

    return NULL;
}

static const char *ca_simple_set_key(cmd_parms *cmd, void *dconf,
                                     const char *arg)
{
    ca_simple_dir_conf *conf = dconf;
    const char *path, *err = NULL;

    if ((err = ca_sign_path(cmd, arg, &path))) {
        return err;
    }
    if (ca_load_key(cmd->pool, path, &conf->key, &err) != APR_SUCCESS) {
        const char *why = err ? err : ca_openssl_errors(cmd->temp_pool);

        ERR_clear_error();
        return apr_psprintf(cmd->pool, "%s %s: cannot load the private key: "
                            "%s", cmd->cmd->name, path, why);
    }
    conf->key_file = path;
    conf->key_set = 1;
    ca_simple_register_section(cmd, conf);

    return NULL;
}

static const char *ca_simple_set_next_certificate(cmd_parms *cmd,
                                                  void *dconf,
                                                  const char *arg)
{
    ca_simple_dir_conf *conf = dconf;
    const char *err;

    if ((err = ca_sign_load_cert(cmd, arg, &conf->next))) {
        return err;
    }
    conf->next_set = 1;
    ca_simple_register_section(cmd, conf);

    return NULL;
}

static const char *ca_simple_set_chain(cmd_parms *cmd, void *dconf,
                                       const char *arg)
{
    ca_simple_dir_conf *conf = dconf;
    const char *err;

    if ((err = ca_sign_load_chain(cmd, arg, &conf->chain))) {
        return err;
    }
    conf->chain_set = 1;
    ca_simple_register_section(cmd, conf);

    return NULL;
}

static const char *ca_simple_set_days(cmd_parms *cmd, void *dconf,
                                      const char *arg)
{
    ca_simple_dir_conf *conf = dconf;
    const char *err;

    if ((err = ca_sign_parse_days(cmd, arg, &conf->days))) {
        return err;
    }
    conf->days_set = 1;

    return NULL;
}

static const char *ca_simple_add_extension(cmd_parms *cmd, void *dconf,
                                           const char *name,
                                           const char *value)
{
    ca_simple_dir_conf *conf = dconf;
    const char *err;

    if ((err = ca_sign_add_extension(cmd, &conf->extensions,
                                     !conf->extensions_set, name, value))) {
        return err;
    }
    conf->extensions_set = 1;

    return NULL;
}

static const char *ca_simple_set_time(cmd_parms *cmd, void *dconf, int flag)
{
    ca_simple_dir_conf *conf = dconf;

    conf->time = flag;
    conf->time_set = 1;

    return NULL;
}

static const char *ca_simple_set_serial_random(cmd_parms *cmd, void *dconf,
                                               int flag)
{
    ca_simple_dir_conf *conf = dconf;

    conf->serial_random = flag;
    conf->serial_random_set = 1;

    return NULL;
}

/* Keys and certificates are read once, at start-up, so never .htaccess. */
static const command_rec ca_simple_cmds[] = {
    AP_INIT_TAKE1("CASimpleCertificate", ca_simple_set_certificate, NULL,
                  RSRC_CONF | ACCESS_CONF,
                  "The CA certificate that signs requests (PEM or DER)"),
    AP_INIT_TAKE1("CASimpleKey", ca_simple_set_key, NULL,
                  RSRC_CONF | ACCESS_CONF,
                  "The unencrypted private key of CASimpleCertificate"),
    AP_INIT_TAKE1("CASimpleNextCertificate", ca_simple_set_next_certificate,
                  NULL, RSRC_CONF | ACCESS_CONF,
                  "The CA certificate that will sign next (rollover)"),
    AP_INIT_TAKE1("CASimpleChain", ca_simple_set_chain, NULL,
                  RSRC_CONF | ACCESS_CONF,
                  "PEM file of the certificates above CASimpleCertificate, "
                  "its issuer first"),
    AP_INIT_TAKE1("CASimpleDays", ca_simple_set_days, NULL,
                  RSRC_CONF | ACCESS_CONF,
                  "Days an issued certificate is valid (1-36500, "
                  "default 365)"),
    AP_INIT_TAKE2("CASimpleExtension", ca_simple_add_extension, NULL,
                  RSRC_CONF | ACCESS_CONF,
                  "An X.509v3 extension in OpenSSL syntax, repeatable; a "
                  "section that sets any replaces the inherited list"),
    AP_INIT_FLAG("CASimpleTime", ca_simple_set_time, NULL,
                 RSRC_CONF | ACCESS_CONF,
                 "Answer the time hook with the system clock (default off)"),
    AP_INIT_FLAG("CASimpleSerialRandom", ca_simple_set_serial_random, NULL,
                 RSRC_CONF | ACCESS_CONF,
                 "Answer the serial hook with 20 random bytes "
                 "(default off)"),
    { NULL }
};

/* ---- helpers shared by the start-up checks and signing -------------- */

/* The extensions that apply: the configured list, or the defaults. */
static const ca_issue_ext *ca_simple_exts(const ca_simple_dir_conf *conf,
                                          int *n)
{
    return ca_sign_exts(conf->extensions_set ? conf->extensions : NULL, n);
}

/* ---- start-up checks ----------------------------------------------- */

static const char *const ca_simple_exts_tags[3] = {
    CA_LOGNO(02001), CA_LOGNO(02002), CA_LOGNO(02003)
};

static int ca_simple_check_section(apr_pool_t *ptemp, server_rec *s,
                                   const ca_simple_dir_conf *conf)
{
    apr_time_t now = apr_time_now();
    int ok = 1;

    if (conf->next) {
        if (!ca_issue_can_sign_certs(conf->next->x)) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, CA_LOGNO(02005)
                         "CASimpleNextCertificate %s (%s) is not a CA "
                         "certificate that may sign certificates",
                         conf->next->file, conf->where);
            ok = 0;
        }
        else if (conf->next->not_after <= now) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, CA_LOGNO(02006)
                         "CASimpleNextCertificate %s (%s) has expired",
                         conf->next->file, conf->where);
        }
    }

    if (!conf->cert_set && !conf->key_set && !conf->chain_set) {
        return ok;
    }
    if (!conf->cert) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, CA_LOGNO(02007)
                     "%s %s (%s) is set but CASimpleCertificate is "
                     "missing from the same section",
                     conf->key_set ? "CASimpleKey" : "CASimpleChain",
                     conf->key_set ? conf->key_file : conf->chain->file,
                     conf->where);
        return 0;
    }
    if (!conf->key) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, CA_LOGNO(02008)
                     "CASimpleCertificate %s (%s) is set but CASimpleKey "
                     "is missing from the same section", conf->cert->file,
                     conf->where);
        return 0;
    }
    if (X509_check_private_key(conf->cert->x, conf->key) != 1) {
        ERR_clear_error();
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, CA_LOGNO(02009)
                     "CASimpleKey %s does not match CASimpleCertificate %s "
                     "(%s)", conf->key_file, conf->cert->file, conf->where);
        ok = 0;
    }
    if (!ca_issue_can_sign_certs(conf->cert->x)) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, CA_LOGNO(02010)
                     "CASimpleCertificate %s (%s) is not a CA certificate "
                     "that may sign certificates (it needs basicConstraints "
                     "CA:TRUE and, if it has a keyUsage, keyCertSign)",
                     conf->cert->file, conf->where);
        ok = 0;
    }
    else if (conf->cert->not_after <= now) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, CA_LOGNO(02011)
                     "CASimpleCertificate %s (%s) has expired, requests "
                     "signed here will fail", conf->cert->file,
                     conf->where);
    }
    if (conf->chain
        && !ca_sign_check_chain(ptemp, s, APLOG_MODULE_INDEX,
                                "CASimple", CA_LOGNO(02004),
                                conf->cert, conf->chain, conf->where)) {
        ok = 0;
    }
    if (ok && !ca_sign_check_exts(ptemp, s, APLOG_MODULE_INDEX,
                                  "CASimple", ca_simple_exts_tags,
                                  conf->cert, conf->extensions_set
                                              ? conf->extensions : NULL,
                                  conf->where)) {
        ok = 0;
    }

    return ok;
}

static int ca_simple_pre_config(apr_pool_t *pconf, apr_pool_t *plog,
                                apr_pool_t *ptemp)
{
    ca_simple_make_sections(pconf);

    return OK;
}

/*
 * The checks run in check_config rather than post_config: that hook runs
 * on every reading of the configuration, including "apachectl configtest",
 * so a mismatched key is reported before a restart is even attempted.
 * Every problem is logged before httpd is told to stop.
 */
static int ca_simple_check_config(apr_pool_t *pconf, apr_pool_t *plog,
                                  apr_pool_t *ptemp, server_rec *s)
{
    int i, ok = 1;

    if (!ca_simple_sections) {
        return OK;
    }
    for (i = 0; i < ca_simple_sections->nelts; i++) {
        const ca_simple_dir_conf *conf =
            APR_ARRAY_IDX(ca_simple_sections, i, ca_simple_dir_conf *);

        if (!ca_simple_check_section(ptemp, s, conf)) {
            ok = 0;
        }
    }
    ERR_clear_error();

    return ok ? OK : HTTP_INTERNAL_SERVER_ERROR;
}

/* ---- the hooks ----------------------------------------------------- */

/* Every step of signing logs under this module's tags (ca_sign.h). */
static const char *const ca_simple_sign_tags[CA_SIGN_LOG_COUNT] = {
    [CA_SIGN_LOG_REQUEST] = CA_LOGNO(02018),
    [CA_SIGN_LOG_NAMES] = CA_LOGNO(02015),
    [CA_SIGN_LOG_NO_TIME] = CA_LOGNO(02019),
    [CA_SIGN_LOG_EXPIRED] = CA_LOGNO(02020),
    [CA_SIGN_LOG_NO_SERIAL] = CA_LOGNO(02021),
    [CA_SIGN_LOG_BUILD] = CA_LOGNO(02022),
    [CA_SIGN_LOG_SERIAL_BAD] = CA_LOGNO(02012),
    [CA_SIGN_LOG_SERIAL_SET] = CA_LOGNO(02014),
    [CA_SIGN_LOG_EXTENSION] = CA_LOGNO(02023),
    [CA_SIGN_LOG_SAN] = CA_LOGNO(02024),
    [CA_SIGN_LOG_SIGN] = CA_LOGNO(02025),
    [CA_SIGN_LOG_ENCODE] = CA_LOGNO(02026),
    [CA_SIGN_LOG_ISSUED] = CA_LOGNO(02027)
};

static apr_status_t ca_simple_sign_cert(request_rec *r, const ca_signer *sg,
                                        X509 *x, const char **why)
{
    const ca_simple_dir_conf *conf = sg->ctx;

    return ca_issue_sign(r->pool, x, conf->key, why);
}

static int ca_simple_sign(request_rec *r, apr_hash_t *params,
                          const unsigned char *csr, apr_size_t csr_len,
                          const unsigned char **cert, apr_size_t *cert_len)
{
    const ca_simple_dir_conf *conf =
        ap_get_module_config(r->per_dir_config, &ca_simple_module);
    ca_signer sg;

    if (!conf->cert || !conf->key) {
        return DECLINED;
    }
    memset(&sg, 0, sizeof(sg));
    sg.ca = conf->cert;
    sg.days = conf->days;
    sg.exts = ca_simple_exts(conf, &sg.n_exts);
    sg.sign = ca_simple_sign_cert;
    sg.ctx = conf;
    sg.prefix = "CASimple";
    sg.key_name = conf->key_file;
    sg.time_hint = "set CASimpleTime on";
    sg.serial_hint = "set CASimpleSerialRandom on";
    sg.tags = ca_simple_sign_tags;
    sg.module_index = APLOG_MODULE_INDEX;

    return ca_sign_request(r, &sg, params, csr, csr_len, cert, cert_len);
}

static int ca_simple_getca(request_rec *r, const unsigned char **der,
                           apr_size_t *len, apr_time_t *valid_until)
{
    const ca_simple_dir_conf *conf =
        ap_get_module_config(r->per_dir_config, &ca_simple_module);

    if (!conf->cert || !conf->key) {
        return DECLINED;
    }
    *der = conf->cert->der;
    *len = conf->cert->der_len;
    *valid_until = conf->cert->not_after;

    return OK;
}

static int ca_simple_getnextca(request_rec *r, const unsigned char **der,
                               apr_size_t *len, apr_time_t *valid_until)
{
    const ca_simple_dir_conf *conf =
        ap_get_module_config(r->per_dir_config, &ca_simple_module);

    if (!conf->next) {
        return DECLINED;
    }
    *der = conf->next->der;
    *len = conf->next->der_len;
    *valid_until = conf->next->not_after;

    return OK;
}

static int ca_simple_getchain(request_rec *r, const unsigned char **der,
                              apr_size_t *len, apr_time_t *valid_until)
{
    const ca_simple_dir_conf *conf =
        ap_get_module_config(r->per_dir_config, &ca_simple_module);

    if (!conf->chain || !conf->cert || !conf->key) {
        return DECLINED;
    }
    *der = conf->chain->der;
    *len = conf->chain->der_len;
    *valid_until = conf->chain->not_after;

    return OK;
}

static int ca_simple_makeserial(request_rec *r, apr_hash_t *params,
                                const unsigned char **serial,
                                apr_size_t *len)
{
    const ca_simple_dir_conf *conf =
        ap_get_module_config(r->per_dir_config, &ca_simple_module);
    const char *why = "";

    if (!conf->serial_random) {
        return DECLINED;
    }
    /* 20 bytes, positive, never 0 and always 20 octets (ca_issue.h) */
    if (ca_issue_random_serial(r->pool, serial, len, &why)
        != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CA_LOGNO(02028)
                      "cannot make a random serial number: %s", why);
        return HTTP_INTERNAL_SERVER_ERROR;
    }

    return OK;
}

static int ca_simple_gettime(request_rec *r, apr_time_t *now)
{
    const ca_simple_dir_conf *conf =
        ap_get_module_config(r->per_dir_config, &ca_simple_module);

    if (!conf->time) {
        return DECLINED;
    }
    *now = apr_time_now();

    return OK;
}

static void ca_simple_register_hooks(apr_pool_t *p)
{
    ap_hook_pre_config(ca_simple_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(ca_simple_check_config, NULL, NULL,
                         APR_HOOK_MIDDLE);

    APR_OPTIONAL_HOOK(ca, ca_sign, ca_simple_sign, NULL, NULL,
                      APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ca, ca_getca, ca_simple_getca, NULL, NULL,
                      APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ca, ca_getnextca, ca_simple_getnextca, NULL, NULL,
                      APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ca, ca_getchain, ca_simple_getchain, NULL, NULL,
                      APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ca, ca_makeserial, ca_simple_makeserial, NULL, NULL,
                      APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ca, ca_gettime, ca_simple_gettime, NULL, NULL,
                      APR_HOOK_MIDDLE);
}

AP_DECLARE_MODULE(ca_simple) =
{
    STANDARD20_MODULE_STUFF,
    ca_simple_create_dir_conf,  /* create per-directory config */
    ca_simple_merge_dir_conf,   /* merge per-directory config */
    NULL,                       /* create per-server config */
    NULL,                       /* merge per-server config */
    ca_simple_cmds,             /* command table */
    ca_simple_register_hooks,   /* register hooks */
#if defined(AP_MODULE_HAS_FLAGS)
    0                           /* flags */
#endif
};
