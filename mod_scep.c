/* Licensed under the Apache License, Version 2.0 (see COPYING). */

/*
 * mod_scep: the SCEP (RFC 8894) frontend.
 *
 * GetCACaps, GetCACert, GetNextCACert and PKIOperation (PKCSReq, CertPoll,
 * GetCert, GetCRL) over GET and POST.  The client's request is rebuilt from
 * the ScepSubject* directives before any backend sees it; backends are
 * reached only through the hooks of mod_ca.h.  Every request that parses
 * as a pkiMessage is answered with a CertRep signed by the RA certificate.
 */

#include <string.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "ap_expr.h"
#include "apr_strings.h"
#include "apr_hash.h"
#include "apr_thread_mutex.h"

#include <openssl/err.h>
#include <openssl/pkcs7.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "mod_ca.h"
#include "ca_util.h"
#include "scep_msg.h"
#include "scep_rebuild.h"

module AP_MODULE_DECLARE_DATA scep_module;

#define SCEP_HANDLER            "scep"
#define SCEP_SIZE_DEFAULT       131072
#define SCEP_SIZE_MIN           4096
#define SCEP_FRESHNESS_DEFAULT  2
#define SCEP_FRESHNESS_MAX      86400
#define SCEP_CACHE_MAX          64

#define CT_PKI_MESSAGE  "application/x-pki-message"
#define CT_CA_CERT      "application/x-x509-ca-cert"
#define CT_CA_RA_CERT   "application/x-x509-ca-ra-cert"
#define CT_NEXT_CA_CERT "application/x-x509-next-ca-cert"
#define CT_WADL         "application/vnd.sun.wadl+xml"

typedef struct scep_dir_conf {
    X509 *ra_cert;
    EVP_PKEY *ra_key;
    X509 *ra_next;
    const unsigned char *ra_der;        /* ra_cert, encoded once */
    apr_size_t ra_der_len;
    const unsigned char *ra_next_der;   /* ra_next, encoded once */
    apr_size_t ra_next_der_len;
    const char *ra_cert_file;
    const char *ra_key_file;
    apr_off_t size;
    apr_array_header_t *subject;        /* scep_name_rule */
    apr_array_header_t *san;            /* scep_name_rule */
    int freshness;
    int freshness_max;
    const char *location;
    const char *crl_url;

    unsigned int ra_cert_set:1;
    unsigned int ra_key_set:1;
    unsigned int ra_next_set:1;
    unsigned int size_set:1;
    unsigned int subject_set:1;
    unsigned int san_set:1;
    unsigned int freshness_set:1;
    unsigned int location_set:1;
    unsigned int crl_url_set:1;
    unsigned int registered:1;
} scep_dir_conf;

/*
 * Every section that names an RA certificate or key, so that post_config
 * can check them as pairs.  Written only while the configuration is read.
 */
static apr_array_header_t *scep_ra_confs;

/*
 * Built GetCACert/GetNextCACert answers, per child, keyed by the exact
 * bytes they were built from so that a backend changing its answer can
 * never be served a stale one.
 */
typedef struct scep_cache {
    apr_pool_t *pool;
    apr_thread_mutex_t *mutex;
    apr_hash_t *entries;
} scep_cache;

static scep_cache *scep_response_cache;

typedef struct scep_blob {
    const unsigned char *data;
    apr_size_t len;
} scep_blob;

/* ---- configuration --------------------------------------------------- */

static void *scep_create_dir_conf(apr_pool_t *p, char *dir)
{
    scep_dir_conf *conf = apr_pcalloc(p, sizeof(*conf));

    conf->size = SCEP_SIZE_DEFAULT;
    conf->freshness = SCEP_FRESHNESS_DEFAULT;
    conf->freshness_max = SCEP_FRESHNESS_MAX;
    conf->subject = apr_array_make(p, 4, sizeof(scep_name_rule));
    conf->san = apr_array_make(p, 4, sizeof(scep_name_rule));

    return conf;
}

#define SCEP_MERGE(field, flag) do {                                   \
        new->field = add->flag ? add->field : base->field;             \
    } while (0)

static void *scep_merge_dir_conf(apr_pool_t *p, void *basev, void *addv)
{
    const scep_dir_conf *base = basev;
    const scep_dir_conf *add = addv;
    scep_dir_conf *new = apr_pcalloc(p, sizeof(*new));

    /* the RA certificate and key are inherited together, never mixed
     * across sections, so that start-up checks see every pair in use */
    if (add->ra_cert_set || add->ra_key_set) {
        new->ra_cert = add->ra_cert;
        new->ra_der = add->ra_der;
        new->ra_der_len = add->ra_der_len;
        new->ra_cert_file = add->ra_cert_file;
        new->ra_key = add->ra_key;
        new->ra_key_file = add->ra_key_file;
    }
    else {
        new->ra_cert = base->ra_cert;
        new->ra_der = base->ra_der;
        new->ra_der_len = base->ra_der_len;
        new->ra_cert_file = base->ra_cert_file;
        new->ra_key = base->ra_key;
        new->ra_key_file = base->ra_key_file;
    }
    SCEP_MERGE(ra_next, ra_next_set);
    SCEP_MERGE(ra_next_der, ra_next_set);
    SCEP_MERGE(ra_next_der_len, ra_next_set);
    SCEP_MERGE(size, size_set);
    SCEP_MERGE(subject, subject_set);
    SCEP_MERGE(san, san_set);
    SCEP_MERGE(freshness, freshness_set);
    SCEP_MERGE(freshness_max, freshness_set);
    SCEP_MERGE(location, location_set);
    SCEP_MERGE(crl_url, crl_url_set);

    new->ra_cert_set = base->ra_cert_set || add->ra_cert_set;
    new->ra_key_set = base->ra_key_set || add->ra_key_set;
    new->ra_next_set = base->ra_next_set || add->ra_next_set;
    new->size_set = base->size_set || add->size_set;
    new->subject_set = base->subject_set || add->subject_set;
    new->san_set = base->san_set || add->san_set;
    new->freshness_set = base->freshness_set || add->freshness_set;
    new->location_set = base->location_set || add->location_set;
    new->crl_url_set = base->crl_url_set || add->crl_url_set;

    return new;
}

static void scep_register_ra(scep_dir_conf *conf)
{
    if (!conf->registered && scep_ra_confs) {
        APR_ARRAY_PUSH(scep_ra_confs, scep_dir_conf *) = conf;
        conf->registered = 1;
    }
}

static const char *scep_file_arg(cmd_parms *cmd, const char *arg,
                                 const char **path)
{
    *path = ap_server_root_relative(cmd->pool, arg);
    if (!*path) {
        return apr_psprintf(cmd->pool, "%s: invalid path '%s'",
                            cmd->cmd->name, arg);
    }
    return NULL;
}

static const char *scep_set_ra_cert(cmd_parms *cmd, void *dconf,
                                    const char *arg)
{
    scep_dir_conf *conf = dconf;
    const char *path, *err = scep_file_arg(cmd, arg, &path);

    if (err) {
        return err;
    }
    if (ca_load_cert(cmd->pool, path, &conf->ra_cert, &err) != APR_SUCCESS
        || ca_x509_der(cmd->pool, conf->ra_cert, &conf->ra_der,
                       &conf->ra_der_len) != APR_SUCCESS) {
        return apr_psprintf(cmd->pool, "%s: %s", cmd->cmd->name,
                            err ? err : "cannot encode the certificate");
    }
    conf->ra_cert_file = path;
    conf->ra_cert_set = 1;
    scep_register_ra(conf);

    return NULL;
}

static const char *scep_set_ra_key(cmd_parms *cmd, void *dconf,
                                   const char *arg)
{
    scep_dir_conf *conf = dconf;
    const char *path, *err = scep_file_arg(cmd, arg, &path);

    if (err) {
        return err;
    }
    if (ca_load_key(cmd->pool, path, &conf->ra_key, &err) != APR_SUCCESS) {
        return apr_psprintf(cmd->pool, "%s: %s", cmd->cmd->name, err);
    }
    if (EVP_PKEY_get_base_id(conf->ra_key) != EVP_PKEY_RSA) {
        /* SCEP clients encrypt to the RA with RSA key transport only */
        return apr_psprintf(cmd->pool, "%s: '%s' is not an RSA key; SCEP "
                            "clients can only encrypt to RSA", cmd->cmd->name,
                            path);
    }
    conf->ra_key_file = path;
    conf->ra_key_set = 1;
    scep_register_ra(conf);

    return NULL;
}

static const char *scep_set_ra_next(cmd_parms *cmd, void *dconf,
                                    const char *arg)
{
    scep_dir_conf *conf = dconf;
    const char *path, *err = scep_file_arg(cmd, arg, &path);

    if (err) {
        return err;
    }
    if (ca_load_cert(cmd->pool, path, &conf->ra_next, &err) != APR_SUCCESS
        || ca_x509_der(cmd->pool, conf->ra_next, &conf->ra_next_der,
                       &conf->ra_next_der_len) != APR_SUCCESS) {
        return apr_psprintf(cmd->pool, "%s: %s", cmd->cmd->name,
                            err ? err : "cannot encode the certificate");
    }
    conf->ra_next_set = 1;

    return NULL;
}

static const char *scep_set_size(cmd_parms *cmd, void *dconf, const char *arg)
{
    scep_dir_conf *conf = dconf;
    char *end;
    apr_int64_t size = apr_strtoi64(arg, &end, 10);

    if (*end || size < SCEP_SIZE_MIN || size > APR_INT32_MAX) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a size in bytes of "
                            "at least %d", cmd->cmd->name, arg, SCEP_SIZE_MIN);
    }
    conf->size = (apr_off_t)size;
    conf->size_set = 1;

    return NULL;
}

static const char *scep_parse_count(cmd_parms *cmd, const char *arg,
                                    int *count)
{
    char *end;
    apr_int64_t n = apr_strtoi64(arg, &end, 10);

    if (*end || n < 1 || n > 1000) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a number of fields "
                            "between 1 and 1000", cmd->cmd->name, arg);
    }
    *count = (int)n;
    return NULL;
}

/* ScepSubjectRequest / ScepSubjectAltNameRequest field|* [number] */
static const char *scep_add_request(cmd_parms *cmd, void *dconf,
                                    const char *field, const char *count)
{
    scep_dir_conf *conf = dconf;
    int san = cmd->info != NULL;
    apr_array_header_t *rules = san ? conf->san : conf->subject;
    scep_name_rule rule;
    const char *err = NULL;

    memset(&rule, 0, sizeof(rule));
    /* a field is taken once unless said otherwise; '*' takes them all */
    rule.limit = strcmp(field, "*") ? 1 : 0;
    rule.gen_type = -1;
    rule.field = field;
    if (count && (err = scep_parse_count(cmd, count, &rule.limit))) {
        return err;
    }
    if (strcmp(field, "*")) {
        err = san ? scep_rule_san_field(cmd->pool, cmd->cmd->name, field,
                                        &rule)
                  : scep_rule_subject_field(cmd->pool, cmd->cmd->name, field,
                                            &rule);
        if (err) {
            return err;
        }
    }
    APR_ARRAY_PUSH(rules, scep_name_rule) = rule;
    if (san) {
        conf->san_set = 1;
    }
    else {
        conf->subject_set = 1;
    }
    return NULL;
}

/* ScepSubjectSet / ScepSubjectAltNameSet field expression */
static const char *scep_add_set(cmd_parms *cmd, void *dconf,
                                const char *field, const char *value)
{
    scep_dir_conf *conf = dconf;
    int san = cmd->info != NULL;
    scep_name_rule rule;
    const char *err;

    memset(&rule, 0, sizeof(rule));
    err = san ? scep_rule_san_field(cmd->pool, cmd->cmd->name, field, &rule)
              : scep_rule_subject_field(cmd->pool, cmd->cmd->name, field,
                                        &rule);
    if (err) {
        return err;
    }
    if (san && (rule.gen_type == GEN_X400 || rule.gen_type == GEN_EDIPARTY)) {
        return apr_psprintf(cmd->pool, "%s: %s has no text form and can "
                            "only be taken from the request",
                            cmd->cmd->name, field);
    }
    rule.expr = ap_expr_parse_cmd(cmd, value, AP_EXPR_FLAG_STRING_RESULT,
                                  &err, NULL);
    if (err) {
        return apr_psprintf(cmd->pool, "%s: cannot parse expression '%s': %s",
                            cmd->cmd->name, value, err);
    }
    if (san) {
        APR_ARRAY_PUSH(conf->san, scep_name_rule) = rule;
        conf->san_set = 1;
    }
    else {
        APR_ARRAY_PUSH(conf->subject, scep_name_rule) = rule;
        conf->subject_set = 1;
    }
    return NULL;
}

static const char *scep_set_freshness(cmd_parms *cmd, void *dconf,
                                      const char *factor, const char *max)
{
    scep_dir_conf *conf = dconf;
    char *end;
    apr_int64_t f = apr_strtoi64(factor, &end, 10);

    if (*end || f < 0 || f > 1000000) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a factor (0 "
                            "disables)", cmd->cmd->name, factor);
    }
    conf->freshness = (int)f;
    conf->freshness_max = SCEP_FRESHNESS_MAX;
    if (max) {
        apr_int64_t m = apr_strtoi64(max, &end, 10);

        if (*end || m < 0 || m > APR_INT32_MAX) {
            return apr_psprintf(cmd->pool, "%s: '%s' is not a number of "
                                "seconds", cmd->cmd->name, max);
        }
        conf->freshness_max = (int)m;
    }
    conf->freshness_set = 1;

    return NULL;
}

static const char *scep_set_location(cmd_parms *cmd, void *dconf,
                                     const char *arg)
{
    scep_dir_conf *conf = dconf;

    conf->location = arg;
    conf->location_set = 1;

    return NULL;
}

static const char *scep_set_crl_url(cmd_parms *cmd, void *dconf,
                                    const char *arg)
{
    scep_dir_conf *conf = dconf;

    if (!ap_is_url(arg)) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not an absolute URL",
                            cmd->cmd->name, arg);
    }
    conf->crl_url = arg;
    conf->crl_url_set = 1;

    return NULL;
}

/* Keys and certificates are read once at start-up: never in .htaccess. */
#define SCEP_KEY_CONF (RSRC_CONF | ACCESS_CONF)
#define SCEP_ANY_CONF (RSRC_CONF | ACCESS_CONF | OR_OPTIONS)

static const command_rec scep_cmds[] = {
    AP_INIT_TAKE1("ScepRACertificate", scep_set_ra_cert, NULL, SCEP_KEY_CONF,
                  "The RA certificate that signs SCEP responses and to "
                  "which clients encrypt their requests."),
    AP_INIT_TAKE1("ScepRAKey", scep_set_ra_key, NULL, SCEP_KEY_CONF,
                  "The private key of the RA certificate (RSA)."),
    AP_INIT_TAKE1("ScepRANextCertificate", scep_set_ra_next, NULL,
                  SCEP_KEY_CONF,
                  "The next RA certificate, returned by GetNextCACert."),
    AP_INIT_TAKE1("ScepSize", scep_set_size, NULL, SCEP_ANY_CONF,
                  "Largest SCEP request accepted, in bytes (at least 4096). "
                  "Default: 131072"),
    AP_INIT_TAKE12("ScepSubjectRequest", scep_add_request, NULL,
                   SCEP_ANY_CONF,
                   "A subject field (or *) copied from the request, with "
                   "the most values allowed (default 1)."),
    AP_INIT_TAKE2("ScepSubjectSet", scep_add_set, NULL, SCEP_ANY_CONF,
                  "A subject field and the expression giving its value."),
    AP_INIT_TAKE12("ScepSubjectAltNameRequest", scep_add_request, "san",
                   SCEP_ANY_CONF,
                   "A subjectAltName type (or *) copied from the request, "
                   "with the most values allowed (default 1)."),
    AP_INIT_TAKE2("ScepSubjectAltNameSet", scep_add_set, "san", SCEP_ANY_CONF,
                  "A subjectAltName type and the expression giving its "
                  "value."),
    AP_INIT_TAKE12("ScepFreshness", scep_set_freshness, NULL, SCEP_ANY_CONF,
                   "Divide the remaining lifetime of the CA certificates by "
                   "this factor for Cache-Control max-age, capped at "
                   "max-seconds. Default: 2 86400"),
    AP_INIT_TAKE1("ScepLocation", scep_set_location, NULL, SCEP_ANY_CONF,
                  "URL of the endpoint given in the WADL answer to OPTIONS."),
    AP_INIT_TAKE1("ScepCRLURL", scep_set_crl_url, NULL, SCEP_ANY_CONF,
                  "URL to which GetCRL requests are redirected."),
    { NULL }
};

/* ---- start-up -------------------------------------------------------- */

static int scep_pre_config(apr_pool_t *pconf, apr_pool_t *plog,
                           apr_pool_t *ptemp)
{
    scep_ra_confs = apr_array_make(pconf, 8, sizeof(scep_dir_conf *));
    return OK;
}

static int scep_check_ra(apr_pool_t *ptemp, server_rec *s,
                         const scep_dir_conf *conf)
{
    if (conf->ra_cert && !conf->ra_key) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, CA_LOGNO(01033)
                     "ScepRACertificate %s has no ScepRAKey in the same "
                     "section (they are inherited together)",
                     conf->ra_cert_file);
        return 0;
    }
    if (conf->ra_key && !conf->ra_cert) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, CA_LOGNO(01034)
                     "ScepRAKey %s has no ScepRACertificate in the same "
                     "section (they are inherited together)",
                     conf->ra_key_file);
        return 0;
    }
    if (X509_check_private_key(conf->ra_cert, conf->ra_key) != 1) {
        ERR_clear_error();
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, CA_LOGNO(01003)
                     "ScepRAKey %s does not match ScepRACertificate %s",
                     conf->ra_key_file, conf->ra_cert_file);
        return 0;
    }
    if (!ca_x509_allows_ku(conf->ra_cert, KU_DIGITAL_SIGNATURE
                                          | KU_KEY_ENCIPHERMENT)) {
        /* Apple clients look for an RA with both bits and give up */
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, CA_LOGNO(01004)
                     "ScepRACertificate %s lacks keyUsage digitalSignature "
                     "and keyEncipherment: Apple clients will refuse it",
                     conf->ra_cert_file);
    }
    return 1;
}

/* check_config runs for configtest and before a graceful restart too */
static int scep_check_config(apr_pool_t *pconf, apr_pool_t *plog,
                             apr_pool_t *ptemp, server_rec *s)
{
    const char *err = NULL;
    int i;

    if (scep_msg_init(&err) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, CA_LOGNO(01005)
                     "cannot initialise the SCEP message code: %s", err);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    for (i = 0; i < scep_ra_confs->nelts; i++) {
        if (!scep_check_ra(ptemp, s,
                           APR_ARRAY_IDX(scep_ra_confs, i, scep_dir_conf *))) {
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    return OK;
}

static void scep_child_init(apr_pool_t *pchild, server_rec *s)
{
    scep_cache *cache = apr_pcalloc(pchild, sizeof(*cache));

    apr_pool_create(&cache->pool, pchild);
    cache->entries = apr_hash_make(cache->pool);
    if (apr_thread_mutex_create(&cache->mutex, APR_THREAD_MUTEX_DEFAULT,
                                pchild) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, CA_LOGNO(01006)
                     "no mutex for the response cache: answers are built "
                     "per request");
        return;
    }
    scep_response_cache = cache;
}

/* ---- small helpers --------------------------------------------------- */

static void scep_log_openssl(request_rec *r, int level, const char *what)
{
    ap_log_rerror(APLOG_MARK, level, 0, r, CA_LOGNO(01007) "%s: %s", what,
                  ca_openssl_errors(r->pool));
}

static int scep_send(request_rec *r, const char *type,
                     const unsigned char *body, apr_size_t len)
{
    ap_set_content_type(r, type);
    ap_set_content_length(r, (apr_off_t)len);
    if (!r->header_only) {
        ap_rwrite(body, (int)len, r);
    }
    return OK;
}

/* Cache-Control from the remaining lifetime of what we hand out. */
static void scep_set_freshness_header(request_rec *r,
                                      const scep_dir_conf *conf,
                                      apr_time_t valid_until)
{
    apr_int64_t age;

    if (!conf->freshness || !valid_until) {
        return;
    }
    age = apr_time_sec(valid_until - apr_time_now()) / conf->freshness;
    if (age > conf->freshness_max) {
        age = conf->freshness_max;
    }
    if (age < 0) {
        age = 0;
    }
    apr_table_setn(r->headers_out, "Cache-Control",
                   apr_psprintf(r->pool, "max-age=%" APR_INT64_T_FMT, age));
}

static apr_time_t scep_min_time(apr_time_t a, apr_time_t b)
{
    if (!a) {
        return b;
    }
    if (!b) {
        return a;
    }
    return a < b ? a : b;
}

/* Look up, or remember, an answer built from the given key bytes. */
static const scep_blob *scep_cache_get(const char *key, apr_size_t klen)
{
    const scep_blob *hit = NULL;

    if (scep_response_cache
        && apr_thread_mutex_lock(scep_response_cache->mutex) == APR_SUCCESS) {
        hit = apr_hash_get(scep_response_cache->entries, key, klen);
        apr_thread_mutex_unlock(scep_response_cache->mutex);
    }
    return hit;
}

static void scep_cache_put(const char *key, apr_size_t klen,
                           const unsigned char *data, apr_size_t len)
{
    scep_cache *c = scep_response_cache;

    if (c && apr_thread_mutex_lock(c->mutex) == APR_SUCCESS) {
        if (apr_hash_count(c->entries) < SCEP_CACHE_MAX
            && !apr_hash_get(c->entries, key, klen)) {
            scep_blob *b = apr_palloc(c->pool, sizeof(*b));

            b->data = apr_pmemdup(c->pool, data, len);
            b->len = len;
            apr_hash_set(c->entries, apr_pmemdup(c->pool, key, klen), klen, b);
        }
        apr_thread_mutex_unlock(c->mutex);
    }
}

static const char *scep_cache_key(apr_pool_t *p, const char *kind,
                                  const scep_blob *parts, int n,
                                  apr_size_t *klen)
{
    apr_size_t len = strlen(kind) + 1, off;
    char *key;
    int i;

    for (i = 0; i < n; i++) {
        len += sizeof(apr_size_t) + parts[i].len;
    }
    key = apr_palloc(p, len);
    off = strlen(kind) + 1;
    memcpy(key, kind, off);
    for (i = 0; i < n; i++) {
        /* lengths keep "ab"+"c" apart from "a"+"bc" */
        memcpy(key + off, &parts[i].len, sizeof(apr_size_t));
        off += sizeof(apr_size_t);
        if (parts[i].len) {
            memcpy(key + off, parts[i].data, parts[i].len);
            off += parts[i].len;
        }
    }
    *klen = len;
    return key;
}

static int scep_push_der(apr_pool_t *p, STACK_OF(X509) *sk,
                         const unsigned char *der, apr_size_t len)
{
    X509 *x = ca_x509_parse(p, der, len);

    if (!x) {
        return 0;
    }
    X509_up_ref(x);
    sk_X509_push(sk, x);
    return 1;
}

/* The same, for certificates only passed on: their keys stay undecoded. */
static int scep_push_der_nokey(apr_pool_t *p, STACK_OF(X509) *sk,
                               const unsigned char *der, apr_size_t len)
{
    X509 *x = ca_x509_parse_nokey(p, der, len);

    if (!x) {
        return 0;
    }
    X509_up_ref(x);
    sk_X509_push(sk, x);
    return 1;
}

static int scep_push_p7(apr_pool_t *p, STACK_OF(X509) *sk,
                        const unsigned char *der, apr_size_t len)
{
    STACK_OF(X509) *chain = ca_p7_certs_parse(p, der, len);
    int i;

    if (!chain) {
        return 0;
    }
    for (i = 0; i < sk_X509_num(chain); i++) {
        X509 *x = sk_X509_value(chain, i);

        X509_up_ref(x);
        sk_X509_push(sk, x);
    }
    return 1;
}

static const scep_dir_conf *scep_ra_or_log(request_rec *r,
                                           const scep_dir_conf *conf)
{
    if (!conf->ra_cert || !conf->ra_key) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CA_LOGNO(01008)
                      "no ScepRACertificate/ScepRAKey configured for %s",
                      r->uri);
        return NULL;
    }
    return conf;
}

/* ---- GetCACaps, GetCACert, GetNextCACert, OPTIONS --------------------- */

static int scep_has_next_ca(request_rec *r)
{
    const unsigned char *der = NULL;
    apr_size_t len = 0;
    apr_time_t until = 0;

    return ca_run_ca_getnextca(r, &der, &len, &until) == OK && der;
}

static int scep_get_ca_caps(request_rec *r, const scep_dir_conf *conf)
{
    /* exact case, one per line (RFC 8894 section 3.5.2) */
    const char *caps = apr_pstrcat(r->pool,
                                   scep_has_next_ca(r) ? "GetNextCACert\n" : "",
                                   "POSTPKIOperation\n"
                                   "Renewal\n"
                                   "SHA-1\n"
                                   "SHA-256\n"
                                   "SHA-512\n"
                                   "AES\n"
                                   "DES3\n"
                                   "SCEPStandard\n", NULL);

    return scep_send(r, "text/plain", (const unsigned char *)caps,
                     strlen(caps));
}

static int scep_get_ca_cert(request_rec *r, const scep_dir_conf *conf)
{
    const unsigned char *ca = NULL, *chain = NULL, *der;
    apr_size_t ca_len = 0, chain_len = 0, len, klen;
    apr_time_t ca_until = 0, chain_until = 0;
    scep_blob parts[3];
    const scep_blob *hit;
    const char *key;
    STACK_OF(X509) *sk;
    int rv;

    if (!scep_ra_or_log(r, conf)) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    rv = ca_run_ca_getca(r, &ca, &ca_len, &ca_until);
    if (rv == DECLINED || (rv == OK && !ca)) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CA_LOGNO(01009)
                      "GetCACert: no backend answered the ca_getca hook for "
                      "%s (is a CA such as CASimpleCertificate configured "
                      "here?)", r->uri);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (rv != OK) {
        return rv;
    }
    if (ca_run_ca_getchain(r, &chain, &chain_len, &chain_until) != OK) {
        chain = NULL;
        chain_len = 0;
    }
    scep_set_freshness_header(r, conf,
                              scep_min_time(scep_min_time(ca_until,
                                                          chain_until),
                                            ca_asn1_time_to_apr(
                                             X509_get0_notAfter(
                                                 conf->ra_cert))));

    parts[0].data = ca;
    parts[0].len = ca_len;
    parts[1].data = conf->ra_der;
    parts[1].len = conf->ra_der_len;
    parts[2].data = chain;
    parts[2].len = chain_len;
    key = scep_cache_key(r->pool, "GetCACert", parts, 3, &klen);
    if ((hit = scep_cache_get(key, klen))) {
        return scep_send(r, CT_CA_RA_CERT, hit->data, hit->len);
    }

    /* the CA, the RA beside it, then the CA's own issuers */
    sk = ca_x509_stack_own(r->pool, sk_X509_new_null());
    if (!scep_push_der(r->pool, sk, ca, ca_len)
        || !scep_push_der(r->pool, sk, conf->ra_der, conf->ra_der_len)
        || (chain && !scep_push_p7(r->pool, sk, chain, chain_len))
        || ca_p7_certs_der(r->pool, sk, &der, &len) != APR_SUCCESS) {
        scep_log_openssl(r, APLOG_ERR, "GetCACert: cannot encode the "
                         "certificates a backend returned");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    scep_cache_put(key, klen, der, len);

    return scep_send(r, CT_CA_RA_CERT, der, len);
}

static int scep_get_next_ca_cert(request_rec *r, const scep_dir_conf *conf)
{
    const unsigned char *next = NULL, *der;
    apr_size_t next_len = 0, len, klen;
    apr_time_t until = 0;
    scep_blob parts[3];
    const scep_blob *hit;
    const char *key;
    STACK_OF(X509) *sk;
    PKCS7 *p7 = NULL;
    BIO *in = NULL;
    unsigned char *out = NULL;
    int rv, n;

    if (!scep_ra_or_log(r, conf)) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    rv = ca_run_ca_getnextca(r, &next, &next_len, &until);
    if (rv == DECLINED || (rv == OK && !next)) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, CA_LOGNO(01010)
                      "GetNextCACert: there is no next CA certificate here");
        return HTTP_NOT_FOUND;
    }
    if (rv != OK) {
        return rv;
    }
    scep_set_freshness_header(r, conf, until);

    parts[0].data = next;
    parts[0].len = next_len;
    parts[1].data = conf->ra_der;
    parts[1].len = conf->ra_der_len;
    parts[2].data = conf->ra_next_der;
    parts[2].len = conf->ra_next_der_len;
    key = scep_cache_key(r->pool, "GetNextCACert", parts, 3, &klen);
    if ((hit = scep_cache_get(key, klen))) {
        return scep_send(r, CT_NEXT_CA_CERT, hit->data, hit->len);
    }

    sk = ca_x509_stack_own(r->pool, sk_X509_new_null());
    if (!scep_push_der(r->pool, sk, next, next_len)) {
        scep_log_openssl(r, APLOG_ERR, "GetNextCACert: cannot parse the "
                         "next CA certificate a backend returned");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (conf->ra_next) {
        X509_up_ref(conf->ra_next);
        sk_X509_push(sk, conf->ra_next);
    }
    if (ca_p7_certs_der(r->pool, sk, &der, &len) != APR_SUCCESS) {
        scep_log_openssl(r, APLOG_ERR, "GetNextCACert: cannot encode");
        return HTTP_INTERNAL_SERVER_ERROR;
    }

    /* signed by the RA the client already trusts from GetCACert */
    in = BIO_new_mem_buf(der, (int)len);
    p7 = in ? PKCS7_sign(conf->ra_cert, conf->ra_key, NULL, in,
                         PKCS7_BINARY | PKCS7_NOSMIMECAP) : NULL;
    if (!p7 || (n = i2d_PKCS7(p7, &out)) <= 0) {
        scep_log_openssl(r, APLOG_ERR, "GetNextCACert: cannot sign");
        BIO_free(in);
        PKCS7_free(p7);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    der = apr_pmemdup(r->pool, out, n);
    len = n;
    OPENSSL_free(out);
    BIO_free(in);
    PKCS7_free(p7);
    scep_cache_put(key, klen, der, len);

    return scep_send(r, CT_NEXT_CA_CERT, der, len);
}

static int scep_options(request_rec *r, const scep_dir_conf *conf)
{
    const char *base = conf->location ? conf->location
                                      : ap_construct_url(r->pool, r->uri, r);
    const char *wadl = apr_pstrcat(r->pool,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<application xmlns=\"http://wadl.dev.java.net/2009/02\" "
        "xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\">\n"
        " <resources base=\"", ap_escape_html(r->pool, base), "\">\n"
        "  <resource path=\"\">\n"
        "   <method name=\"GET\" id=\"scep-get\">\n"
        "    <request>\n"
        "     <param name=\"operation\" style=\"query\" required=\"true\" "
        "type=\"xsd:string\">\n"
        "      <option value=\"GetCACaps\" mediaType=\"text/plain\"/>\n"
        "      <option value=\"GetCACert\" mediaType=\"" CT_CA_RA_CERT "\"/>\n"
        "      <option value=\"GetNextCACert\" mediaType=\""
        CT_NEXT_CA_CERT "\"/>\n"
        "      <option value=\"PKIOperation\" mediaType=\""
        CT_PKI_MESSAGE "\"/>\n"
        "     </param>\n"
        "     <param name=\"message\" style=\"query\" type=\"xsd:string\"/>\n"
        "    </request>\n"
        "    <response status=\"200\">\n"
        "     <representation mediaType=\"text/plain\"/>\n"
        "     <representation mediaType=\"" CT_CA_RA_CERT "\"/>\n"
        "     <representation mediaType=\"" CT_NEXT_CA_CERT "\"/>\n"
        "     <representation mediaType=\"" CT_PKI_MESSAGE "\"/>\n"
        "    </response>\n"
        "   </method>\n"
        "   <method name=\"POST\" id=\"scep-post\">\n"
        "    <request>\n"
        "     <param name=\"operation\" style=\"query\" fixed=\"PKIOperation\""
        " type=\"xsd:string\"/>\n"
        "     <representation mediaType=\"" CT_PKI_MESSAGE "\"/>\n"
        "    </request>\n"
        "    <response status=\"200\">\n"
        "     <representation mediaType=\"" CT_PKI_MESSAGE "\"/>\n"
        "    </response>\n"
        "   </method>\n"
        "  </resource>\n"
        " </resources>\n"
        "</application>\n", NULL);

    apr_table_setn(r->headers_out, "Allow", "GET, HEAD, POST, OPTIONS");
    return scep_send(r, CT_WADL, (const unsigned char *)wadl, strlen(wadl));
}

/* ---- PKIOperation ---------------------------------------------------- */

/* What a PKIOperation is answered with. */
typedef struct scep_answer {
    int status;                         /* scep_status_e */
    int fail;                           /* scep_fail_e */
    const char *text;                   /* failInfoText */
    const unsigned char *certs;         /* SUCCESS: degenerate PKCS#7 */
    apr_size_t certs_len;
} scep_answer;

static void scep_fail(scep_answer *a, int fail, const char *text)
{
    a->status = SCEP_STATUS_FAILURE;
    a->fail = fail;
    a->text = text;
}

static int scep_reply(request_rec *r, const scep_dir_conf *conf,
                      const scep_msg_t *msg, const scep_answer *a)
{
    scep_build_t b;
    const unsigned char *der;
    apr_size_t len;
    const char *err = NULL;
    STACK_OF(X509) *recipients = NULL;

    memset(&b, 0, sizeof(b));
    b.message_type = SCEP_MSG_CERTREP;
    b.transaction_id = msg->transaction_id;
    b.recipient_nonce = msg->sender_nonce;
    b.recipient_nonce_len = msg->sender_nonce_len;
    b.pki_status = a->status;
    b.fail_info = a->status == SCEP_STATUS_FAILURE ? a->fail : SCEP_FAIL_NONE;
    b.fail_info_text = b.fail_info != SCEP_FAIL_NONE ? a->text : NULL;
    b.signer = conf->ra_cert;
    b.signer_key = conf->ra_key;
    b.md = scep_reply_md(msg->md);
    if (a->status == SCEP_STATUS_SUCCESS) {
        /* to the certificate that signed the request, in its cipher */
        recipients = ca_x509_stack_own(r->pool, sk_X509_new_null());
        X509_up_ref(msg->signer);
        sk_X509_push(recipients, msg->signer);
        b.content = a->certs;
        b.content_len = a->certs_len;
        b.recipients = recipients;
        b.cipher = scep_reply_cipher(msg->cipher_nid);
    }
    if (scep_msg_build(r->pool, &b, &der, &len, &err) != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CA_LOGNO(01011)
                      "PKIOperation: cannot build the CertRep for "
                      "transaction %s: %s", msg->transaction_id, err);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (a->status == SCEP_STATUS_FAILURE) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, CA_LOGNO(01012)
                      "%s transaction %s: FAILURE %s: %s",
                      scep_msg_type_name(msg->message_type),
                      msg->transaction_id, scep_fail_name(a->fail),
                      a->text ? a->text : "");
    }
    else {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, CA_LOGNO(01013)
                      "%s transaction %s: %s",
                      scep_msg_type_name(msg->message_type),
                      msg->transaction_id,
                      a->status == SCEP_STATUS_SUCCESS ? "SUCCESS"
                                                       : "PENDING");
    }
    return scep_send(r, CT_PKI_MESSAGE, der, len);
}

/* Read a POST body, refusing what is larger than ScepSize (413). */
static int scep_read_body(request_rec *r, const scep_dir_conf *conf,
                          unsigned char **body, apr_size_t *len)
{
    const char *clen = apr_table_get(r->headers_in, "Content-Length");
    apr_size_t size = (apr_size_t)conf->size, n = 0, cap;
    unsigned char *buf;
    int rv;

    /* room for the announced length (and a byte more, to notice a body
     * larger than ScepSize), else 16 KiB that grow: not ScepSize for
     * every request (128 KiB by default, kept by each thread's pools) */
    cap = size + 1 < 16384 ? size + 1 : 16384;
    if (clen) {
        char *end;
        apr_int64_t cl = apr_strtoi64(clen, &end, 10);

        if (*end == '\0' && cl > conf->size) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, CA_LOGNO(01014)
                          "PKIOperation: request of %s bytes is larger than "
                          "ScepSize %" APR_OFF_T_FMT, clen, conf->size);
            return HTTP_REQUEST_ENTITY_TOO_LARGE;
        }
        if (*end == '\0' && cl >= 0) {
            cap = (apr_size_t)cl + 1;
        }
    }
    if ((rv = ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK)) != OK) {
        return rv;
    }
    buf = apr_palloc(r->pool, cap);
    if (ap_should_client_block(r)) {
        /* the input filters, not ap_get_client_block(), which keeps the
         * status of a failed read to itself: a client too slow for
         * mod_reqtimeout (APR_TIMEUP) gets 408, not 400 */
        apr_bucket_brigade *bb = apr_brigade_create(r->pool,
                                     r->connection->bucket_alloc);
        apr_status_t st;
        int eos = 0;

        while (!eos) {
            apr_size_t got = cap - n;

            st = ap_get_brigade(r->input_filters, bb, AP_MODE_READBYTES,
                                APR_BLOCK_READ, got);
            if (st == APR_SUCCESS) {
                eos = !APR_BRIGADE_EMPTY(bb)
                      && APR_BUCKET_IS_EOS(APR_BRIGADE_LAST(bb));
                st = apr_brigade_flatten(bb, (char *)buf + n, &got);
            }
            apr_brigade_cleanup(bb);
            if (st != APR_SUCCESS) {
                /* a filter that has answered already (LimitRequestBody)
                 * gets its way */
                ap_log_rerror(APLOG_MARK, APLOG_WARNING, st, r,
                              CA_LOGNO(01016) "PKIOperation: cannot read "
                              "the request body");
                return ap_map_http_request_error(st, HTTP_BAD_REQUEST);
            }
            n += got;
            if (n > size) {
                ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                              CA_LOGNO(01015) "PKIOperation: request body "
                              "is larger than ScepSize %" APR_OFF_T_FMT,
                              conf->size);
                return HTTP_REQUEST_ENTITY_TOO_LARGE;
            }
            if (n == cap) {
                unsigned char *more;

                cap = cap * 2 < size + 1 ? cap * 2 : size + 1;
                more = apr_palloc(r->pool, cap);
                memcpy(more, buf, n);
                buf = more;
            }
        }
    }
    *body = buf;
    *len = n;
    return OK;
}

/* Open the envelope; on failure fill in the answer and return NULL. */
static const unsigned char *scep_open(request_rec *r,
                                      const scep_dir_conf *conf,
                                      const scep_msg_t *msg, apr_size_t *len,
                                      scep_answer *a)
{
    const unsigned char *data = NULL;
    const char *err = NULL;
    EVP_CIPHER *cipher;

    if (!msg->envelope) {
        scep_fail(a, SCEP_FAIL_BADREQUEST, "the request carries no data");
        return NULL;
    }
    cipher = EVP_CIPHER_fetch(NULL, OBJ_nid2sn(msg->cipher_nid), NULL);
    if (!cipher) {
        ERR_clear_error();
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, CA_LOGNO(01017)
                      "transaction %s: content cipher %s is not available",
                      msg->transaction_id, OBJ_nid2sn(msg->cipher_nid));
        scep_fail(a, SCEP_FAIL_BADALG, "unsupported content encryption "
                  "algorithm");
        return NULL;
    }
    EVP_CIPHER_free(cipher);
    if (scep_msg_decrypt(r->pool, msg, conf->ra_cert, conf->ra_key, &data,
                         len, &err) != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, CA_LOGNO(01018)
                      "transaction %s: %s", msg->transaction_id, err);
        scep_fail(a, SCEP_FAIL_BADMESSAGECHECK, "the request could not be "
                  "decrypted with the RA certificate");
        return NULL;
    }
    return data;
}

/* scep_rebuild's view of a Set rule: the expression, for this request. */
static const char *scep_eval(void *ctx, const scep_name_rule *rule,
                             const char **why)
{
    request_rec *r = ctx;
    const char *err = NULL;
    const char *val = ap_expr_str_exec(r, rule->expr, &err);

    if (err) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CA_LOGNO(01019)
                      "cannot evaluate the expression for %s: %s",
                      rule->field, err);
        *why = "the server could not build the certificate name";
        return NULL;
    }
    return val ? val : "";
}

static apr_hash_t *scep_params(request_rec *r, const scep_msg_t *msg)
{
    apr_hash_t *params = apr_hash_make(r->pool);

    apr_hash_set(params, CA_PARAM_PROTOCOL, APR_HASH_KEY_STRING, "scep");
    apr_hash_set(params, CA_PARAM_TRANSACTION_ID, APR_HASH_KEY_STRING,
                 msg->transaction_id);
    apr_hash_set(params, CA_PARAM_MESSAGE_TYPE, APR_HASH_KEY_STRING,
                 apr_itoa(r->pool, msg->message_type));
    return params;
}

/* The SUCCESS payload: the certificate, then the chain above its CA. */
static int scep_success(request_rec *r, const unsigned char *cert,
                        apr_size_t cert_len, scep_answer *a)
{
    const unsigned char *chain = NULL;
    apr_size_t chain_len = 0;
    apr_time_t until;
    STACK_OF(X509) *sk = ca_x509_stack_own(r->pool, sk_X509_new_null());

    if (!scep_push_der_nokey(r->pool, sk, cert, cert_len)) {
        scep_log_openssl(r, APLOG_ERR, "a backend returned a certificate "
                         "that does not parse");
        scep_fail(a, SCEP_FAIL_BADREQUEST, "the certificate could not be "
                  "issued");
        return 0;
    }
    if (ca_run_ca_getchain(r, &chain, &chain_len, &until) == OK && chain
        && !scep_push_p7(r->pool, sk, chain, chain_len)) {
        scep_log_openssl(r, APLOG_ERR, "a backend returned a chain that "
                         "does not parse");
    }
    if (ca_p7_certs_der(r->pool, sk, &a->certs, &a->certs_len)
        != APR_SUCCESS) {
        scep_fail(a, SCEP_FAIL_BADREQUEST, "the certificate could not be "
                  "encoded");
        return 0;
    }
    a->status = SCEP_STATUS_SUCCESS;
    return 1;
}

/*
 * Who signed the request: a self-signed certificate (first enrollment), or
 * a certificate of this CA still within its validity (renewal, RFC 8894
 * section 2.3; macOS and sscep renew with PKCSReq, so the signer decides,
 * not only the messageType).  Anything else is refused.
 */
static int scep_classify_signer(request_rec *r, const scep_msg_t *msg,
                                int *renewal, const char **why)
{
    const unsigned char *ca = NULL, *chain = NULL;
    apr_size_t ca_len = 0, chain_len = 0;
    apr_time_t until;
    X509 *signer = msg->signer, *cacert;
    X509_STORE *store = NULL;
    X509_STORE_CTX *ctx = NULL;
    STACK_OF(X509) *untrusted = NULL;
    int ok = 0, err = X509_V_OK;

    *renewal = 0;
    /* names and key identifiers only: Apple's temporary identity has no
     * keyCertSign, and a forged self-signature would gain nothing */
    if (X509_self_signed(signer, 0) == 1) {
        ERR_clear_error();
        if (msg->message_type == SCEP_MSG_RENEWALREQ) {
            *why = "a RenewalReq must be signed by the certificate it renews";
            return 0;
        }
        return 1;
    }
    ERR_clear_error();
    if (ca_run_ca_getca(r, &ca, &ca_len, &until) != OK || !ca
        || !(cacert = ca_x509_parse(r->pool, ca, ca_len))) {
        *why = "no CA is configured here to check the signer against";
        return 0;
    }
    if (ca_run_ca_getchain(r, &chain, &chain_len, &until) == OK && chain) {
        untrusted = ca_p7_certs_parse(r->pool, chain, chain_len);
    }
    /* the issuing CA is the anchor even when it is an intermediate */
    store = X509_STORE_new();
    ctx = X509_STORE_CTX_new();
    if (store && ctx && X509_STORE_add_cert(store, cacert)
        && X509_STORE_CTX_init(ctx, store, signer, untrusted)) {
        X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_PARTIAL_CHAIN);
        ok = X509_verify_cert(ctx) == 1;
        err = X509_STORE_CTX_get_error(ctx);
    }
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    ERR_clear_error();
    if (!ok) {
        char *subject = X509_NAME_oneline(X509_get_subject_name(signer),
                                          NULL, 0);

        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, CA_LOGNO(01032)
                      "transaction %s: signer %s is neither self-signed nor "
                      "a valid certificate of this CA: %s",
                      msg->transaction_id, subject ? subject : "?",
                      X509_verify_cert_error_string(err));
        OPENSSL_free(subject);
        *why = err == X509_V_ERR_CERT_HAS_EXPIRED
               || err == X509_V_ERR_CERT_NOT_YET_VALID
               ? "the certificate that signed the request is not valid now"
               : "the request is signed by a certificate this CA did not "
                 "issue";
        return 0;
    }
    *renewal = 1;
    return 1;
}

static void scep_enroll(request_rec *r, const scep_dir_conf *conf,
                        const scep_msg_t *msg, scep_answer *a)
{
    const unsigned char *data, *csr = NULL, *cert = NULL;
    apr_size_t len, csr_len = 0, cert_len = 0;
    const char *why = NULL, *challenge;
    apr_hash_t *params;
    X509_REQ *req;
    EVP_PKEY *pub;
    int rv, renewal;

    if (!scep_classify_signer(r, msg, &renewal, &why)) {
        scep_fail(a, SCEP_FAIL_BADREQUEST, why);
        return;
    }
    if (!(data = scep_open(r, conf, msg, &len, a))) {
        return;
    }
    if (!(req = ca_req_parse_nokey(r->pool, data, len))) {
        ERR_clear_error();
        scep_fail(a, SCEP_FAIL_BADREQUEST, "the request data is not a "
                  "PKCS#10 certificate request");
        return;
    }
    /* the CSR signature is the only proof of possession of the new key */
    if (!(pub = ca_pubkey_get(r->pool, X509_REQ_get_X509_PUBKEY(req)))
        || X509_REQ_verify(req, pub) != 1) {
        ERR_clear_error();
        scep_fail(a, SCEP_FAIL_BADMESSAGECHECK, "the signature of the "
                  "certificate request does not verify");
        return;
    }
    if (scep_rebuild(r->pool, conf->subject, conf->san, scep_eval, r, req,
                     &csr, &csr_len, &why) != APR_SUCCESS) {
        scep_fail(a, SCEP_FAIL_BADREQUEST, why);
        return;
    }

    params = scep_params(r, msg);
    if (renewal) {
        apr_hash_set(params, CA_PARAM_RENEWAL, APR_HASH_KEY_STRING, "1");
    }
    if ((challenge = scep_req_challenge(r->pool, req))) {
        apr_hash_set(params, CA_PARAM_CHALLENGE, APR_HASH_KEY_STRING,
                     challenge);
    }

    rv = ca_run_ca_reqauthz(r, params, csr, csr_len);
    if (rv != OK && rv != DECLINED) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, CA_LOGNO(01020)
                      "transaction %s: not authorised (%d)",
                      msg->transaction_id, rv);
        scep_fail(a, SCEP_FAIL_BADREQUEST, "the request was not authorised");
        return;
    }

    rv = ca_run_ca_sign(r, params, csr, csr_len, &cert, &cert_len);
    if (rv == DECLINED) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CA_LOGNO(01021)
                      "no backend answered the ca_sign hook for %s (is a CA "
                      "such as CASimpleCertificate configured here?)",
                      r->uri);
        scep_fail(a, SCEP_FAIL_BADREQUEST, "no certificate authority is "
                  "configured here");
        return;
    }
    if (rv != OK) {
        scep_fail(a, SCEP_FAIL_BADREQUEST, "the certificate could not be "
                  "issued");
        return;
    }
    if (!cert) {
        a->status = SCEP_STATUS_PENDING;
        return;
    }

    rv = ca_run_ca_certstore(r, params, cert, cert_len);
    if (rv != OK && rv != DECLINED) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CA_LOGNO(01022)
                      "transaction %s: the issued certificate could not be "
                      "stored (%d); not handing it out", msg->transaction_id,
                      rv);
        scep_fail(a, SCEP_FAIL_BADREQUEST, "the certificate could not be "
                  "stored");
        return;
    }
    scep_success(r, cert, cert_len, a);
}

/* CertPoll and GetCert: a certificate through the ca_getcert hook. */
static void scep_lookup(request_rec *r, const scep_dir_conf *conf,
                        const scep_msg_t *msg, scep_answer *a)
{
    const unsigned char *data, *cert = NULL;
    apr_size_t len, cert_len = 0;
    apr_hash_t *params = scep_params(r, msg);
    int rv;

    if (!(data = scep_open(r, conf, msg, &len, a))) {
        return;
    }
    if (msg->message_type == SCEP_MSG_GETCERT) {
        const unsigned char *q = data;
        PKCS7_ISSUER_AND_SERIAL *ias =
            d2i_PKCS7_ISSUER_AND_SERIAL(NULL, &q, (long)len);
        unsigned char *name = NULL;
        BIGNUM *bn;
        char *hex;
        int n;

        if (!ias || (n = i2d_X509_NAME(ias->issuer, &name)) <= 0
            || !(bn = ASN1_INTEGER_to_BN(ias->serial, NULL))) {
            PKCS7_ISSUER_AND_SERIAL_free(ias);
            ERR_clear_error();
            scep_fail(a, SCEP_FAIL_BADREQUEST, "the request data is not an "
                      "IssuerAndSerialNumber");
            return;
        }
        hex = BN_bn2hex(bn);
        apr_hash_set(params, CA_PARAM_ISSUER, APR_HASH_KEY_STRING,
                     ca_hex(r->pool, name, n));
        apr_hash_set(params, CA_PARAM_SERIAL, APR_HASH_KEY_STRING,
                     apr_pstrdup(r->pool, hex));
        apr_hash_set(params, CA_PARAM_TRANSACTION_ID, APR_HASH_KEY_STRING,
                     NULL);
        ap_str_tolower(apr_hash_get(params, CA_PARAM_SERIAL,
                                    APR_HASH_KEY_STRING));
        OPENSSL_free(hex);
        OPENSSL_free(name);
        BN_free(bn);
        PKCS7_ISSUER_AND_SERIAL_free(ias);
    }

    rv = ca_run_ca_getcert(r, params, &cert, &cert_len);
    if (rv == OK && cert) {
        scep_success(r, cert, cert_len, a);
    }
    else if (rv == OK) {
        a->status = SCEP_STATUS_PENDING;
    }
    else if (rv == DECLINED || rv == HTTP_NOT_FOUND) {
        scep_fail(a, SCEP_FAIL_BADCERTID, "no such certificate or request");
    }
    else {
        scep_fail(a, SCEP_FAIL_BADREQUEST, "the certificate store failed");
    }
}

static int scep_get_crl(request_rec *r, const scep_dir_conf *conf)
{
    if (!conf->crl_url) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, CA_LOGNO(01023)
                      "GetCRL: no ScepCRLURL configured for %s", r->uri);
        return HTTP_BAD_REQUEST;
    }
    apr_table_setn(r->headers_out, "Location", conf->crl_url);
    return HTTP_MOVED_TEMPORARILY;
}

static int scep_pki_operation(request_rec *r, const scep_dir_conf *conf)
{
    unsigned char *body = NULL;
    apr_size_t len = 0;
    scep_msg_t *msg;
    scep_answer a;
    const char *err = NULL;
    int rv;

    if (!scep_ra_or_log(r, conf)) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (r->method_number == M_POST) {
        if ((rv = scep_read_body(r, conf, &body, &len)) != OK) {
            return rv;
        }
    }
    else {
        apr_size_t mlen = 0;
        const char *message = ca_query_param(r->pool, r->args, "message",
                                             &mlen);

        if (!message || ca_base64_decode_lenient(r->pool, message, mlen,
                                                 &body, &len)
                        != APR_SUCCESS) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, CA_LOGNO(01024)
                          "PKIOperation: the message parameter is %s",
                          message ? "not base64" : "missing");
            return HTTP_BAD_REQUEST;
        }
        if (len > (apr_size_t)conf->size) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, CA_LOGNO(01025)
                          "PKIOperation: request of %" APR_SIZE_T_FMT
                          " bytes is larger than ScepSize %" APR_OFF_T_FMT,
                          len, conf->size);
            return HTTP_REQUEST_ENTITY_TOO_LARGE;
        }
    }
    if (len == 0) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, CA_LOGNO(01026)
                      "PKIOperation: empty request");
        return HTTP_BAD_REQUEST;
    }
    if (scep_msg_parse(r->pool, body, len, &msg, &err) != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, CA_LOGNO(01027)
                      "PKIOperation: not a pkiMessage: %s", err);
        return HTTP_BAD_REQUEST;
    }
    if (!msg->transaction_id || !msg->sender_nonce) {
        /* without them no CertRep can be matched to the request */
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, CA_LOGNO(01028)
                      "PKIOperation: pkiMessage without %s",
                      msg->transaction_id ? "senderNonce" : "transactionID");
        return HTTP_BAD_REQUEST;
    }

    memset(&a, 0, sizeof(a));
    a.fail = SCEP_FAIL_NONE;
    if (!msg->signature_ok) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, CA_LOGNO(01029)
                      "transaction %s: %s", msg->transaction_id,
                      msg->signature_error);
        scep_fail(&a, SCEP_FAIL_BADMESSAGECHECK, "the signature of the "
                  "message does not verify");
    }
    else if (!msg->md || EVP_MD_get_type(msg->md) == NID_md5) {
        scep_fail(&a, SCEP_FAIL_BADALG, "unsupported digest algorithm");
    }
    else {
        switch (msg->message_type) {
        case SCEP_MSG_PKCSREQ:
        case SCEP_MSG_RENEWALREQ:
            scep_enroll(r, conf, msg, &a);
            break;
        case SCEP_MSG_CERTPOLL:
        case SCEP_MSG_GETCERT:
            scep_lookup(r, conf, msg, &a);
            break;
        case SCEP_MSG_GETCRL:
            return scep_get_crl(r, conf);
        default:
            scep_fail(&a, SCEP_FAIL_BADREQUEST,
                      apr_psprintf(r->pool, "messageType %d is not "
                                   "supported here", msg->message_type));
            break;
        }
    }
    return scep_reply(r, conf, msg, &a);
}

/* ---- the handler ----------------------------------------------------- */

static int scep_handler(request_rec *r)
{
    const scep_dir_conf *conf;
    const char *op;
    int rv;

    if (!r->handler || strcmp(r->handler, SCEP_HANDLER)) {
        return DECLINED;
    }
    conf = ap_get_module_config(r->per_dir_config, &scep_module);

    r->allowed = (AP_METHOD_BIT << M_GET) | (AP_METHOD_BIT << M_POST)
                 | (AP_METHOD_BIT << M_OPTIONS);
    if (r->method_number == M_OPTIONS) {
        return scep_options(r, conf);
    }
    if (r->method_number != M_GET && r->method_number != M_POST) {
        return HTTP_METHOD_NOT_ALLOWED;
    }

    op = ca_query_param(r->pool, r->args, "operation", NULL);
    if (r->method_number == M_POST && (!op || !strcmp(op, "PKIOperation"))) {
        /* many clients POST without naming the operation */
        return scep_pki_operation(r, conf);
    }
    if ((rv = ap_discard_request_body(r)) != OK) {
        return rv;
    }
    if (!op) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, CA_LOGNO(01030)
                      "SCEP request without an operation");
        return HTTP_BAD_REQUEST;
    }
    if (!strcmp(op, "GetCACaps")) {
        return scep_get_ca_caps(r, conf);
    }
    if (!strcmp(op, "GetCACert")) {
        return scep_get_ca_cert(r, conf);
    }
    if (!strcmp(op, "GetNextCACert")) {
        return scep_get_next_ca_cert(r, conf);
    }
    if (!strcmp(op, "PKIOperation")) {
        return scep_pki_operation(r, conf);
    }
    if (!strcmp(op, "GetCRL")) {
        return scep_get_crl(r, conf);
    }
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, CA_LOGNO(01031)
                  "unknown SCEP operation '%s'", op);
    return HTTP_BAD_REQUEST;
}

static void scep_register_hooks(apr_pool_t *p)
{
    static const char *const pre[] = { "mod_ca.c", NULL };

    ap_hook_pre_config(scep_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(scep_check_config, pre, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(scep_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(scep_handler, NULL, NULL, APR_HOOK_MIDDLE);
}

AP_DECLARE_MODULE(scep) =
{
    STANDARD20_MODULE_STUFF,
    scep_create_dir_conf,       /* create per-directory config */
    scep_merge_dir_conf,        /* merge per-directory config */
    NULL,                       /* create per-server config */
    NULL,                       /* merge per-server config */
    scep_cmds,                  /* command table */
    scep_register_hooks,        /* register hooks */
#if defined(AP_MODULE_HAS_FLAGS)
    0                           /* flags */
#endif
};
