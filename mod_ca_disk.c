/* Licensed under the Apache License, Version 2.0 (see COPYING). */

/*
 * mod_ca_disk: a backend that keeps certificate requests and certificates
 * in directories on local disk.
 *
 * With CADiskRequestDirectory, ca_sign does not sign: it saves the request
 * for an operator to approve out of band (tools/ca-disk-sign) and answers
 * "pending".  With CADiskCertificateDirectory, ca_certstore keeps every
 * certificate issued at the location, whoever signed it, and ca_getcert
 * finds certificates by transaction (CertPoll) or by issuer and serial
 * number (GetCert), and reports requests still pending.
 *
 * The layout and the crash-safe writing are in ca_disk_store.[ch], shared
 * with the approval tool.  Every lookup is a single open() of a name made
 * from hex digests, never a directory scan, and client text never becomes
 * part of a file name.  The directories are made at start-up, as root, and
 * given to the User httpd runs as; requests only read and write files.
 */

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "unixd.h"

#include "apr_strings.h"

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "mod_ca.h"
#include "ca_util.h"
#include "ca_issue.h"
#include "ca_disk_store.h"

module AP_MODULE_DECLARE_DATA ca_disk_module;

/* Longest CA_PARAM_ISSUER (hex of a name) and CA_PARAM_SERIAL looked up. */
#define CA_DISK_ISSUER_HEX_MAX  (16 * 1024)
#define CA_DISK_SERIAL_HEX_MAX  128

typedef struct ca_disk_dir_conf {
    const char *request_dir;            /* CADiskRequestDirectory */
    const char *cert_dir;               /* CADiskCertificateDirectory */

    const char *where;                  /* file:line, for start-up errors */

    unsigned int request_dir_set:1;
    unsigned int cert_dir_set:1;
    unsigned int registered:1;          /* in ca_disk_sections already */
} ca_disk_dir_conf;

/*
 * Every section that set a directory, for the start-up work.  Allocated
 * from pconf and filled by the directive handlers; only the main thread
 * touches it, while it reads the configuration, and requests never do.
 */
static apr_array_header_t *ca_disk_sections;

/* ---- configuration ------------------------------------------------- */

static void *ca_disk_create_dir_conf(apr_pool_t *p, char *dir)
{
    ca_disk_dir_conf *conf = apr_pcalloc(p, sizeof(*conf));

    return conf;
}

static void *ca_disk_merge_dir_conf(apr_pool_t *p, void *basev, void *addv)
{
    ca_disk_dir_conf *new = apr_pcalloc(p, sizeof(*new));
    ca_disk_dir_conf *base = basev;
    ca_disk_dir_conf *add = addv;

    new->request_dir = add->request_dir_set ? add->request_dir
                                            : base->request_dir;
    new->request_dir_set = base->request_dir_set || add->request_dir_set;

    new->cert_dir = add->cert_dir_set ? add->cert_dir : base->cert_dir;
    new->cert_dir_set = base->cert_dir_set || add->cert_dir_set;

    return new;
}

static apr_status_t ca_disk_reset_sections(void *data)
{
    ca_disk_sections = NULL;

    return APR_SUCCESS;
}

/* A fresh registry for each reading of the configuration. */
static void ca_disk_make_sections(apr_pool_t *pconf)
{
    ca_disk_sections = apr_array_make(pconf, 4, sizeof(ca_disk_dir_conf *));
    apr_pool_cleanup_register(pconf, NULL, ca_disk_reset_sections,
                              apr_pool_cleanup_null);
}

/* Remember a section for the start-up work, once. */
static void ca_disk_register_section(cmd_parms *cmd, ca_disk_dir_conf *conf)
{
    if (conf->registered) {
        return;
    }
    if (!ca_disk_sections) {
        /* pre_config runs first; cmd->pool is pconf in any case */
        ca_disk_make_sections(cmd->pool);
    }
    conf->where = cmd->directive
        ? apr_psprintf(cmd->pool, "%s:%d", cmd->directive->filename,
                       cmd->directive->line_num)
        : "(unknown)";
    APR_ARRAY_PUSH(ca_disk_sections, ca_disk_dir_conf *) = conf;
    conf->registered = 1;
}

/* A directory, relative to the ServerRoot unless absolute; "none" turns
 * an inherited one off. */
static const char *ca_disk_dir_arg(cmd_parms *cmd, const char *arg,
                                   const char **dir)
{
    char *path;
    apr_size_t len;

    if (!strcasecmp(arg, "none")) {
        *dir = NULL;
        return NULL;
    }
    path = *arg ? ap_server_root_relative(cmd->pool, arg) : NULL;
    if (!path) {
        return apr_psprintf(cmd->pool, "%s: invalid directory path '%s'",
                            cmd->cmd->name, arg);
    }
    /* no trailing slashes: the names made from it are compared */
    len = strlen(path);
    while (len > 1 && path[len - 1] == '/') {
        path[--len] = '\0';
    }
    *dir = path;

    return NULL;
}

static const char *ca_disk_set_request_dir(cmd_parms *cmd, void *dconf,
                                           const char *arg)
{
    ca_disk_dir_conf *conf = dconf;
    const char *err;

    if ((err = ca_disk_dir_arg(cmd, arg, &conf->request_dir))) {
        return err;
    }
    conf->request_dir_set = 1;
    ca_disk_register_section(cmd, conf);

    return NULL;
}

static const char *ca_disk_set_cert_dir(cmd_parms *cmd, void *dconf,
                                        const char *arg)
{
    ca_disk_dir_conf *conf = dconf;
    const char *err;

    if ((err = ca_disk_dir_arg(cmd, arg, &conf->cert_dir))) {
        return err;
    }
    conf->cert_dir_set = 1;
    ca_disk_register_section(cmd, conf);

    return NULL;
}

/* The directories are made at start-up, so never .htaccess. */
static const command_rec ca_disk_cmds[] = {
    AP_INIT_TAKE1("CADiskRequestDirectory", ca_disk_set_request_dir, NULL,
                  RSRC_CONF | ACCESS_CONF,
                  "Directory where requests wait for out-of-band approval; "
                  "signing here answers pending ('none' to turn off, "
                  "default none)"),
    AP_INIT_TAKE1("CADiskCertificateDirectory", ca_disk_set_cert_dir, NULL,
                  RSRC_CONF | ACCESS_CONF,
                  "Directory where issued certificates are stored and "
                  "looked up ('none' to turn off, default none)"),
    { NULL }
};

/* ---- start-up ------------------------------------------------------ */

static int ca_disk_pre_config(apr_pool_t *pconf, apr_pool_t *plog,
                              apr_pool_t *ptemp)
{
    ca_disk_make_sections(pconf);

    return OK;
}

/* Something other than a directory where one is wanted. */
static int ca_disk_check_path(server_rec *s, const ca_disk_dir_conf *conf,
                              const char *directive, const char *dir)
{
    struct stat st;

    if (dir && stat(dir, &st) == 0 && !S_ISDIR(st.st_mode)) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, CA_LOGNO(03001)
                     "%s %s (%s) is not a directory", directive, dir,
                     conf->where);
        return 0;
    }

    return 1;
}

/*
 * Checks that need no change on disk run in check_config, so that
 * "apachectl configtest" reports them; the directories are made in
 * post_config, which configtest does not run.
 */
static int ca_disk_check_config(apr_pool_t *pconf, apr_pool_t *plog,
                                apr_pool_t *ptemp, server_rec *s)
{
    int i, ok = 1;

    if (!ca_disk_sections) {
        return OK;
    }
    for (i = 0; i < ca_disk_sections->nelts; i++) {
        const ca_disk_dir_conf *conf =
            APR_ARRAY_IDX(ca_disk_sections, i, ca_disk_dir_conf *);

        if (conf->request_dir && conf->cert_dir
            && !strcmp(conf->request_dir, conf->cert_dir)) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, CA_LOGNO(03002)
                         "CADiskRequestDirectory and "
                         "CADiskCertificateDirectory (%s) are both %s; "
                         "they must be different directories",
                         conf->where, conf->cert_dir);
            ok = 0;
        }
        if (!ca_disk_check_path(s, conf, "CADiskRequestDirectory",
                                conf->request_dir)
            || !ca_disk_check_path(s, conf, "CADiskCertificateDirectory",
                                   conf->cert_dir)) {
            ok = 0;
        }
    }

    return ok ? OK : HTTP_INTERNAL_SERVER_ERROR;
}

/* Make one directory (and its fixed subdirectories) for the children. */
static int ca_disk_prepare(apr_pool_t *ptemp, server_rec *s,
                           const ca_disk_owner *owner, const char *directive,
                           const char *dir, const char *where,
                           const char *const *subdirs)
{
    const char *err = NULL;
    int i, removed;

    if (ca_disk_mkdir(ptemp, dir, owner, &err) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, CA_LOGNO(03003)
                     "%s %s (%s): %s", directive, dir, where, err);
        return 0;
    }
    removed = ca_disk_sweep(ptemp, dir, 0);
    for (i = 0; subdirs[i]; i++) {
        const char *sub = apr_pstrcat(ptemp, dir, "/", subdirs[i], NULL);

        if (ca_disk_mkdir(ptemp, sub, owner, &err) != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, CA_LOGNO(03004)
                         "%s %s (%s): %s", directive, dir, where, err);
            return 0;
        }
        /* CERT_DIR/by-serial/<issuer> one level further down */
        removed += ca_disk_sweep(ptemp, sub,
                                 !strcmp(subdirs[i], CA_DISK_BY_SERIAL));
    }
    if (removed) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, CA_LOGNO(03005)
                     "%s %s: removed %d temporary file(s) left by "
                     "processes that died while writing", directive, dir,
                     removed);
    }
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, CA_LOGNO(03006)
                 "%s %s (%s) ready", directive, dir, where);

    return 1;
}

static int ca_disk_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                               apr_pool_t *ptemp, server_rec *s)
{
    static const char *const request_subdirs[] = { CA_DISK_DONE, NULL };
    static const char *const cert_subdirs[] = {
        CA_DISK_BY_TRANSACTION, CA_DISK_BY_SERIAL, NULL
    };
    apr_hash_t *seen;
    ca_disk_owner owner, *own = NULL;
    int i, ok = 1;

    /* the first reading of the configuration only checks it */
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG
        || !ca_disk_sections) {
        return OK;
    }
    /* started as root: the children, running as User, write here */
    if (geteuid() == 0) {
        owner.uid = ap_unixd_config.user_id;
        owner.gid = ap_unixd_config.group_id;
        own = &owner;
    }

    seen = apr_hash_make(ptemp);
    for (i = 0; i < ca_disk_sections->nelts; i++) {
        const ca_disk_dir_conf *conf =
            APR_ARRAY_IDX(ca_disk_sections, i, ca_disk_dir_conf *);

        if (conf->request_dir
            && !apr_hash_get(seen, conf->request_dir, APR_HASH_KEY_STRING)) {
            apr_hash_set(seen, conf->request_dir, APR_HASH_KEY_STRING, "");
            if (!ca_disk_prepare(ptemp, s, own, "CADiskRequestDirectory",
                                 conf->request_dir, conf->where,
                                 request_subdirs)) {
                ok = 0;
            }
        }
        if (conf->cert_dir
            && !apr_hash_get(seen, conf->cert_dir, APR_HASH_KEY_STRING)) {
            apr_hash_set(seen, conf->cert_dir, APR_HASH_KEY_STRING, "");
            if (!ca_disk_prepare(ptemp, s, own, "CADiskCertificateDirectory",
                                 conf->cert_dir, conf->where,
                                 cert_subdirs)) {
                ok = 0;
            }
        }
    }

    return ok ? OK : HTTP_INTERNAL_SERVER_ERROR;
}

/* ---- helpers for the hooks ----------------------------------------- */

static const char *ca_disk_param(apr_hash_t *params, const char *name)
{
    const char *v = params ? apr_hash_get(params, name, APR_HASH_KEY_STRING)
                           : NULL;

    return v && *v ? v : NULL;
}

/* mod_ca_disk's name for a transaction (ca_disk_store.h); NULL logged */
static const char *ca_disk_tid_hash(request_rec *r, const char *tid)
{
    const char *hash = ca_disk_sha256_hex(r->pool, tid, strlen(tid));

    if (!hash) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CA_LOGNO(03012)
                      "cannot compute the SHA-256 of a transaction ID");
    }

    return hash;
}

/* Whether a certificate or request found on disk is for this key. */
static int ca_disk_same_key(EVP_PKEY *a, EVP_PKEY *b)
{
    int eq = a && b && EVP_PKEY_eq(a, b) == 1;

    ERR_clear_error();

    return eq;
}

/* Bytes from lower-case hex of even length; NULL when it is not that. */
static unsigned char *ca_disk_unhex(apr_pool_t *p, const char *hex,
                                    apr_size_t *len)
{
    apr_size_t n = strlen(hex), i;
    unsigned char *out;

    if (!n || n % 2 || !ca_disk_is_hex(hex, n)) {
        return NULL;
    }
    out = apr_palloc(p, n / 2);
    for (i = 0; i < n / 2; i++) {
        char c1 = hex[2 * i], c2 = hex[2 * i + 1];
        int hi = c1 <= '9' ? c1 - '0' : c1 - 'a' + 10;
        int lo = c2 <= '9' ? c2 - '0' : c2 - 'a' + 10;

        out[i] = (unsigned char)(hi << 4 | lo);
    }
    *len = n / 2;

    return out;
}

/* The certificate of a transaction: OK with it, HTTP_NOT_FOUND, or
 * HTTP_INTERNAL_SERVER_ERROR (logged). */
static int ca_disk_find_by_transaction(request_rec *r, const char *cert_dir,
                                       const char *tid_hash, X509 **px,
                                       const unsigned char **der,
                                       apr_size_t *len)
{
    const char *path = ca_disk_by_transaction_path(r->pool, cert_dir,
                                                   tid_hash);
    const char *err = NULL;
    apr_status_t rv;

    rv = ca_disk_read_cert(r->pool, path, px, der, len, &err);
    if (rv == APR_SUCCESS) {
        return OK;
    }
    if (rv == APR_ENOENT) {
        return HTTP_NOT_FOUND;
    }
    if (rv == APR_EINVAL) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CA_LOGNO(03010)
                      "ignoring a corrupt certificate file: %s", err);
        return HTTP_NOT_FOUND;
    }
    ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, CA_LOGNO(03011)
                  "CADiskCertificateDirectory: %s", err);

    return HTTP_INTERNAL_SERVER_ERROR;
}

/* ---- the hooks ----------------------------------------------------- */

static int ca_disk_sign(request_rec *r, apr_hash_t *params,
                        const unsigned char *csr, apr_size_t csr_len,
                        const unsigned char **cert, apr_size_t *cert_len)
{
    const ca_disk_dir_conf *conf =
        ap_get_module_config(r->per_dir_config, &ca_disk_module);
    const char *tid, *tid_hash, *etid, *path = NULL, *err = NULL;
    const unsigned char *der;
    apr_size_t der_len;
    apr_status_t rv;
    X509_REQ *req, *pending;
    X509 *x;
    int replace = 0, attempt, status;

    if (!conf->request_dir) {
        return DECLINED;
    }
    if (!(tid = ca_disk_param(params, CA_PARAM_TRANSACTION_ID))) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CA_LOGNO(03020)
                      "the frontend passed no transaction ID: cannot save "
                      "the request for later (CADiskRequestDirectory %s)",
                      conf->request_dir);
        return HTTP_BAD_REQUEST;
    }
    if (!(tid_hash = ca_disk_tid_hash(r, tid))) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    etid = ap_escape_logitem(r->pool, tid);

    req = ca_req_parse(r->pool, csr, csr_len);
    if (!req || !X509_REQ_get0_pubkey(req)) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CA_LOGNO(03021)
                      "transaction %s: cannot parse the certificate "
                      "request: %s", etid, ca_openssl_errors(r->pool));
        return HTTP_BAD_REQUEST;
    }

    /* approved already: hand the certificate out (a client that sends
     * its request again instead of polling) */
    if (conf->cert_dir) {
        status = ca_disk_find_by_transaction(r, conf->cert_dir, tid_hash, &x,
                                             &der, &der_len);
        if (status == OK) {
            if (!ca_disk_same_key(X509_get0_pubkey(x),
                                  X509_REQ_get0_pubkey(req))) {
                ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                              CA_LOGNO(03022) "transaction %s: a "
                              "certificate for another key was issued in "
                              "this transaction already; refusing", etid);
                return HTTP_CONFLICT;
            }
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, CA_LOGNO(03023)
                          "transaction %s: answered with the certificate "
                          "issued already, serial %s", etid,
                          ca_issue_serial_hex(r->pool, x));
            *cert = der;
            *cert_len = der_len;
            return OK;
        }
        if (status != HTTP_NOT_FOUND) {
            return status;
        }
    }

    for (attempt = 0; attempt < 3; attempt++) {
        rv = ca_disk_save_request(r->pool, conf->request_dir, tid_hash, csr,
                                  csr_len, replace, NULL, &path, &err);
        if (rv == APR_SUCCESS) {
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, CA_LOGNO(03024)
                          "transaction %s: request for %s saved for "
                          "approval as %s", etid,
                          ca_issue_name_text(r->pool,
                                             X509_REQ_get_subject_name(req)),
                          path);
            *cert = NULL;
            *cert_len = 0;
            return OK;
        }
        if (rv != APR_EEXIST) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, CA_LOGNO(03025)
                          "transaction %s: cannot save the request: %s",
                          etid, err);
            return HTTP_INTERNAL_SERVER_ERROR;
        }

        /* one is pending: the same client asking again */
        rv = ca_disk_read_request(r->pool, path, &pending, &err);
        if (rv == APR_SUCCESS) {
            if (!ca_disk_same_key(X509_REQ_get0_pubkey(pending),
                                  X509_REQ_get0_pubkey(req))) {
                ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                              CA_LOGNO(03026) "transaction %s: a request "
                              "for another key is pending in this "
                              "transaction (%s); refusing", etid, path);
                return HTTP_CONFLICT;
            }
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, CA_LOGNO(03027)
                          "transaction %s: still pending (%s)", etid, path);
            *cert = NULL;
            *cert_len = 0;
            return OK;
        }
        if (rv == APR_ENOENT) {
            /* approved (or removed) just now: the client polls next */
            *cert = NULL;
            *cert_len = 0;
            return OK;
        }
        if (rv != APR_EINVAL) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, CA_LOGNO(03028)
                          "transaction %s: %s", etid, err);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CA_LOGNO(03029)
                      "transaction %s: replacing a corrupt pending "
                      "request: %s", etid, err);
        replace = 1;
    }

    return HTTP_INTERNAL_SERVER_ERROR;
}

static int ca_disk_certstore(request_rec *r, apr_hash_t *params,
                             const unsigned char *cert, apr_size_t cert_len)
{
    const ca_disk_dir_conf *conf =
        ap_get_module_config(r->per_dir_config, &ca_disk_module);
    const char *tid, *tid_hash = NULL, *path = NULL, *err = NULL;
    apr_status_t rv;
    X509 *x;

    if (!conf->cert_dir) {
        return DECLINED;
    }
    tid = ca_disk_param(params, CA_PARAM_TRANSACTION_ID);
    if (tid && !(tid_hash = ca_disk_tid_hash(r, tid))) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (!(x = ca_x509_parse(r->pool, cert, cert_len))) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CA_LOGNO(03030)
                      "cannot store a certificate that does not parse: %s",
                      ca_openssl_errors(r->pool));
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    rv = ca_disk_store_cert(r->pool, conf->cert_dir, tid_hash, x, NULL,
                            &path, &err);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv == APR_EEXIST ? 0 : rv, r,
                      CA_LOGNO(03031) "cannot store the certificate with "
                      "serial %s%s%s: %s",
                      ca_issue_serial_hex(r->pool, x),
                      tid ? " of transaction " : "",
                      tid ? ap_escape_logitem(r->pool, tid) : "", err);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, CA_LOGNO(03032)
                  "stored the certificate with serial %s as %s",
                  ca_issue_serial_hex(r->pool, x), path);

    /* stored; the runner offers it to the next store all the same */
    return OK;
}

static int ca_disk_getcert_by_serial(request_rec *r,
                                     const ca_disk_dir_conf *conf,
                                     const char *issuer_hex,
                                     const char *serial_hex,
                                     const unsigned char **cert,
                                     apr_size_t *cert_len)
{
    const char *path, *err = NULL, *have, *issuer_hash;
    const unsigned char *der;
    unsigned char *issuer, *have_issuer = NULL;
    apr_size_t issuer_len, der_len;
    apr_status_t rv;
    X509 *x;
    int n, same;

    /* only names we could have made; anything else cannot be here */
    if (strlen(issuer_hex) > CA_DISK_ISSUER_HEX_MAX
        || !(issuer = ca_disk_unhex(r->pool, issuer_hex, &issuer_len))
        || strlen(serial_hex) > CA_DISK_SERIAL_HEX_MAX
        || !ca_disk_is_hex(serial_hex[0] == '-' ? serial_hex + 1
                                                : serial_hex, 0)) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, CA_LOGNO(03040)
                      "not a lower-case hex issuer and serial: %s",
                      ap_escape_logitem(r->pool, serial_hex));
        return HTTP_NOT_FOUND;
    }
    if (!(issuer_hash = ca_disk_sha256_hex(r->pool, issuer, issuer_len))) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CA_LOGNO(03047)
                      "cannot compute the SHA-256 of an issuer name");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    path = ca_disk_by_serial_path(r->pool, conf->cert_dir, issuer_hash,
                                  serial_hex);
    rv = ca_disk_read_cert(r->pool, path, &x, &der, &der_len, &err);
    if (rv == APR_ENOENT) {
        return HTTP_NOT_FOUND;
    }
    if (rv == APR_EINVAL) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CA_LOGNO(03041)
                      "ignoring a corrupt certificate file: %s", err);
        return HTTP_NOT_FOUND;
    }
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, CA_LOGNO(03042)
                      "CADiskCertificateDirectory: %s", err);
        return HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the file must hold what its name says */
    have = ca_issue_serial_hex(r->pool, x);
    n = i2d_X509_NAME(X509_get_issuer_name(x), &have_issuer);
    same = have && !strcmp(have, serial_hex) && n > 0
           && (apr_size_t)n == issuer_len
           && !memcmp(have_issuer, issuer, issuer_len);
    OPENSSL_free(have_issuer);
    if (!same) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CA_LOGNO(03043)
                      "ignoring %s: it holds the certificate with serial "
                      "%s of another issuer or serial", path,
                      have ? have : "(unreadable)");
        return HTTP_NOT_FOUND;
    }
    *cert = der;
    *cert_len = der_len;

    return OK;
}

static int ca_disk_getcert(request_rec *r, apr_hash_t *params,
                           const unsigned char **cert, apr_size_t *cert_len)
{
    const ca_disk_dir_conf *conf =
        ap_get_module_config(r->per_dir_config, &ca_disk_module);
    const char *tid, *issuer, *serial, *tid_hash, *path, *err = NULL;
    const unsigned char *der;
    apr_size_t der_len;
    apr_status_t rv;
    X509_REQ *req;
    X509 *x;
    int status;

    if (!conf->request_dir && !conf->cert_dir) {
        return DECLINED;
    }
    issuer = ca_disk_param(params, CA_PARAM_ISSUER);
    serial = ca_disk_param(params, CA_PARAM_SERIAL);
    tid = ca_disk_param(params, CA_PARAM_TRANSACTION_ID);

    /* GetCert */
    if (issuer && serial) {
        if (!conf->cert_dir) {
            return DECLINED;
        }
        return ca_disk_getcert_by_serial(r, conf, issuer, serial, cert,
                                         cert_len);
    }
    if (!tid) {
        return DECLINED;
    }

    /* CertPoll: issued, pending or unknown */
    if (!(tid_hash = ca_disk_tid_hash(r, tid))) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (conf->cert_dir) {
        status = ca_disk_find_by_transaction(r, conf->cert_dir, tid_hash, &x,
                                             &der, &der_len);
        if (status == OK) {
            *cert = der;
            *cert_len = der_len;
            return OK;
        }
        if (status != HTTP_NOT_FOUND) {
            return status;
        }
    }
    if (conf->request_dir) {
        path = ca_disk_request_path(r->pool, conf->request_dir, tid_hash);
        rv = ca_disk_read_request(r->pool, path, &req, &err);
        if (rv == APR_SUCCESS) {
            *cert = NULL;
            *cert_len = 0;
            return OK;
        }
        if (rv == APR_EINVAL) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CA_LOGNO(03044)
                          "ignoring a corrupt pending request: %s", err);
        }
        else if (rv != APR_ENOENT) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, CA_LOGNO(03045)
                          "CADiskRequestDirectory: %s", err);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, CA_LOGNO(03046)
                  "transaction %s: no such request or certificate",
                  ap_escape_logitem(r->pool, tid));

    return HTTP_NOT_FOUND;
}

static void ca_disk_register_hooks(apr_pool_t *p)
{
    ap_hook_pre_config(ca_disk_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(ca_disk_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(ca_disk_post_config, NULL, NULL, APR_HOOK_MIDDLE);

    /* first: where requests wait for approval, nothing signs them here,
     * whatever signing backend is configured as well */
    APR_OPTIONAL_HOOK(ca, ca_sign, ca_disk_sign, NULL, NULL,
                      APR_HOOK_FIRST);
    APR_OPTIONAL_HOOK(ca, ca_certstore, ca_disk_certstore, NULL, NULL,
                      APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ca, ca_getcert, ca_disk_getcert, NULL, NULL,
                      APR_HOOK_MIDDLE);
}

AP_DECLARE_MODULE(ca_disk) =
{
    STANDARD20_MODULE_STUFF,
    ca_disk_create_dir_conf,    /* create per-directory config */
    ca_disk_merge_dir_conf,     /* merge per-directory config */
    NULL,                       /* create per-server config */
    NULL,                       /* merge per-server config */
    ca_disk_cmds,               /* command table */
    ca_disk_register_hooks,     /* register hooks */
#if defined(AP_MODULE_HAS_FLAGS)
    0                           /* flags */
#endif
};
