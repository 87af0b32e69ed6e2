/* Licensed under the Apache License, Version 2.0 (see COPYING). */

/*
 * mod_ca_ldap: a backend that authorises certificate requests against an
 * LDAP directory (ca_reqauthz) and stores the certificates issued in the
 * directory entry that authorised them (ca_certstore).
 *
 * Authorisation: CALdapFilter, a template evaluated per request, finds the
 * one entry that stands for the client under CALdapBase.  The request is
 * accepted when its challenge password equals an attribute of that entry
 * (CALdapChallengeAttribute), or when binding as that entry with the
 * challenge password succeeds (CALdapChallengeBind on); optionally the
 * subject's CN must also be a value of an attribute of the entry
 * (CALdapSubjectMatch).
 *
 * Storage: the DER certificate, and optionally a degenerate PKCS#7 of it
 * with its chain, are written to that entry with one modify operation, so
 * that either every value is stored or none is.
 *
 * Filter values: the literal text of CALdapFilter is the filter, as
 * written; every %{...} in it is an httpd string expression of its own,
 * evaluated per request, whose value is escaped for an LDAP filter
 * (RFC 4515) before it is put in.  Whatever a client manages to get into a
 * variable can therefore only ever be a value, never filter syntax.
 *
 * Connections: each child process keeps a small pool of directory
 * connections per server list and identity, made lazily by the first
 * request that needs one, guarded by one mutex.  A request borrows a
 * connection and gives it back (a cleanup on r->pool makes sure of it).  A
 * connection that failed (server down, connect error, timeout) is closed
 * with every idle one of its pool, and the operation is tried once more on
 * a fresh connection, so that a directory restart heals by itself.  Every
 * network wait is bounded by CALdapTimeout.
 *
 * Secrets: neither the bind password nor a challenge password is ever
 * logged; challenge passwords are compared in constant time.  Files are
 * read once, at start-up, while httpd still runs as root.
 */

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_request.h"
#include "ap_expr.h"

#include "apr_lib.h"
#include "apr_strings.h"
#include "apr_file_io.h"
#include "apr_hash.h"
#if APR_HAS_THREADS
#include "apr_thread_mutex.h"
#endif

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <ldap.h>
#include <lber.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "mod_ca.h"
#include "ca_util.h"

module AP_MODULE_DECLARE_DATA ca_ldap_module;

#define CA_LDAP_TIMEOUT_DEFAULT     10
#define CA_LDAP_TIMEOUT_MAX         300
#define CA_LDAP_CERT_ATTR_DEFAULT   "userCertificate;binary"
#define CA_LDAP_PASSWORD_FILE_MAX   4096
#define CA_LDAP_IDLE_MAX            apr_time_from_sec(300)
#define CA_LDAP_NOTE_DN             "ca-ldap-dn"
#define CA_LDAP_ENV_SUBJECT         "SCEP_SUBJECT_"
#define CA_LDAP_ENV_TRANSACTION     "SCEP_TRANSACTION_ID"

/* One piece of CALdapFilter: literal filter text, or a %{...} expression
 * whose value is escaped. */
typedef struct ca_ldap_filter_part {
    const char *text;
    ap_expr_info_t *expr;
} ca_ldap_filter_part;

typedef struct ca_ldap_filter {
    const char *source;                 /* as written, for the logs */
    apr_array_header_t *parts;          /* of ca_ldap_filter_part */
} ca_ldap_filter;

typedef struct ca_ldap_dir_conf {
    const char *url;                    /* CALdapURL, space separated */
    int starttls;                       /* CALdapStartTLS */
    const char *bind_dn;                /* CALdapBindDN */
    const char *bind_pw;                /* CALdapBindPassword(File): secret */
    int timeout;                        /* CALdapTimeout, seconds */
    const char *base;                   /* CALdapBase */
    int scope;                          /* CALdapScope, LDAP_SCOPE_* */
    ca_ldap_filter *filter;             /* CALdapFilter */
    const char *challenge_attr;         /* CALdapChallengeAttribute */
    int challenge_bind;                 /* CALdapChallengeBind */
    const char *subject_attr;           /* CALdapSubjectMatch */
    const char *cert_attr;              /* CALdapCertificateAttribute */
    const char *p7_attr;                /* CALdapPKCS7Attribute */
    int store_mode;                     /* CALdapStoreMode, LDAP_MOD_* */

    const char *where;                  /* file:line, for start-up errors */
    server_rec *server;                 /* whose defaults it inherits */
    const ap_directive_t *url_line;     /* the CALdapURL line read last */
    const char *path;                   /* of the section, NULL: server */

    unsigned int url_set:1;
    unsigned int starttls_set:1;
    unsigned int bind_dn_set:1;
    unsigned int bind_pw_set:1;
    unsigned int timeout_set:1;
    unsigned int base_set:1;
    unsigned int scope_set:1;
    unsigned int filter_set:1;
    unsigned int challenge_attr_set:1;
    unsigned int challenge_bind_set:1;
    unsigned int subject_attr_set:1;
    unsigned int cert_attr_set:1;
    unsigned int p7_attr_set:1;
    unsigned int store_mode_set:1;
    unsigned int registered:1;          /* in ca_ldap_sections already */
} ca_ldap_dir_conf;

/* What reqauthz found, for certstore later in the same request. */
typedef struct ca_ldap_req_state {
    const ca_ldap_dir_conf *conf;
    const char *dn;
} ca_ldap_req_state;

/*
 * Every section that set a CALdap directive, for the start-up checks.
 * Made from pconf in pre_config and filled by the directive handlers; only
 * the main thread touches it, while it reads the configuration.
 */
static apr_array_header_t *ca_ldap_sections;

/* ---- the connection pool ------------------------------------------- */

typedef struct ca_ldap_pool ca_ldap_pool;
typedef struct ca_ldap_conn ca_ldap_conn;

/* The connections of one server list and identity in this process. */
struct ca_ldap_pool {
    const char *url;
    const char *bind_dn;
    const char *bind_pw;
    int starttls;
    int timeout;
    ca_ldap_conn *idle;                 /* free list */
};

struct ca_ldap_conn {
    LDAP *ld;
    ca_ldap_pool *pool;
    ca_ldap_conn *next;                 /* in the free list */
    apr_pool_t *borrower;               /* the r->pool holding it */
    apr_time_t idle_since;              /* given back then */
    int bound;                          /* bound as the pool's identity */
    int broken;                         /* close instead of giving back */
};

/*
 * Per child process, made in child_init (one thread then), and afterwards
 * read or changed only with ca_ldap_mutex held: the pools by key, and the
 * memory they live in.  Connections themselves are malloc'ed so that a
 * closed one gives its memory back.
 */
#if APR_HAS_THREADS
static apr_thread_mutex_t *ca_ldap_mutex;
#endif
static apr_pool_t *ca_ldap_pools_pool;
static apr_hash_t *ca_ldap_pools;

static void ca_ldap_lock(void)
{
#if APR_HAS_THREADS
    if (ca_ldap_mutex) {
        apr_thread_mutex_lock(ca_ldap_mutex);
    }
#endif
}

static void ca_ldap_unlock(void)
{
#if APR_HAS_THREADS
    if (ca_ldap_mutex) {
        apr_thread_mutex_unlock(ca_ldap_mutex);
    }
#endif
}

static void ca_ldap_close(ca_ldap_conn *conn)
{
    if (conn->ld) {
        ldap_unbind_ext_s(conn->ld, NULL, NULL);
    }
    free(conn);
}

/* Take the idle connections out of a pool; the mutex is held. */
static ca_ldap_conn *ca_ldap_pool_detach(ca_ldap_pool *pool)
{
    ca_ldap_conn *list = pool->idle;

    pool->idle = NULL;

    return list;
}

/* Close a list of connections (without the mutex: it says goodbye to the
 * server). */
static void ca_ldap_close_all(ca_ldap_conn *list)
{
    ca_ldap_conn *conn;

    while ((conn = list)) {
        list = conn->next;
        ca_ldap_close(conn);
    }
}

/* Child exit: say goodbye to the directory on every idle connection. */
static apr_status_t ca_ldap_child_cleanup(void *data)
{
    apr_hash_index_t *hi;

    ca_ldap_lock();
    if (ca_ldap_pools) {
        for (hi = apr_hash_first(NULL, ca_ldap_pools); hi;
             hi = apr_hash_next(hi)) {
            ca_ldap_close_all(ca_ldap_pool_detach(apr_hash_this_val(hi)));
        }
    }
    ca_ldap_pools = NULL;
    ca_ldap_unlock();

    return APR_SUCCESS;
}

/*
 * libldap initialises its TLS library the first time a connection needs
 * it, without a lock.  When any section will use TLS, have that happen now,
 * while the child has one thread: a context made for a handle that never
 * connects.  The context uses the TLS settings of ldap.conf, as every
 * connection of this module does.
 */
static void ca_ldap_tls_init(server_rec *s)
{
    LDAP *ld = NULL;
    int i, tls = 0, server = 0;

    for (i = 0; ca_ldap_sections && i < ca_ldap_sections->nelts; i++) {
        const ca_ldap_dir_conf *conf =
            APR_ARRAY_IDX(ca_ldap_sections, i, ca_ldap_dir_conf *);

        if (conf->starttls
            || (conf->url && ap_strcasestr(conf->url, "ldaps://"))) {
            tls = 1;
        }
    }
    if (!tls || ldap_initialize(&ld, "ldap://localhost/") != LDAP_SUCCESS) {
        return;
    }
    if (ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &server)
        != LDAP_OPT_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, CA_LOGNO(04024)
                     "cannot set up TLS for LDAP connections (see the TLS "
                     "settings of ldap.conf); TLS connections will fail");
    }
    ldap_unbind_ext_s(ld, NULL, NULL);
}

static void ca_ldap_child_init(apr_pool_t *pchild, server_rec *s)
{
    apr_status_t rv;
    int version = 0;

    rv = apr_pool_create(&ca_ldap_pools_pool, pchild);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, CA_LOGNO(04001)
                     "cannot create the LDAP connection pool memory");
        return;
    }
    apr_pool_tag(ca_ldap_pools_pool, "ca_ldap_pools");
#if APR_HAS_THREADS
    rv = apr_thread_mutex_create(&ca_ldap_mutex, APR_THREAD_MUTEX_DEFAULT,
                                 pchild);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, CA_LOGNO(04002)
                     "cannot create the LDAP connection pool mutex");
        ca_ldap_mutex = NULL;
        return;
    }
#endif
    ca_ldap_pools = apr_hash_make(ca_ldap_pools_pool);
    /* registered after the mutex, so it runs before the mutex goes */
    apr_pool_cleanup_register(pchild, NULL, ca_ldap_child_cleanup,
                              apr_pool_cleanup_null);

    /* libldap initialises its global options on first use; do that now,
     * while this process has one thread, and not in a race of requests */
    ldap_get_option(NULL, LDAP_OPT_PROTOCOL_VERSION, &version);
    ca_ldap_tls_init(s);
}

static int ca_ldap_is_down(int rc)
{
    return rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR
           || rc == LDAP_TIMEOUT || rc == LDAP_UNAVAILABLE
           || rc == LDAP_BUSY;
}

/* The pool of this configuration, made on first use; NULL when the child
 * could not set up pooling at all. */
static ca_ldap_pool *ca_ldap_pool_get(request_rec *r,
                                      const ca_ldap_dir_conf *conf)
{
    const char *key;
    ca_ldap_pool *pool = NULL;
    apr_size_t klen;

    /* the key holds the password only to keep identities apart; it is
     * never logged */
    key = apr_psprintf(r->pool, "%s\n%s\n%s\n%d\n%d", conf->url,
                       conf->bind_dn ? conf->bind_dn : "",
                       conf->bind_pw ? conf->bind_pw : "",
                       conf->starttls, conf->timeout);
    klen = strlen(key);

    ca_ldap_lock();
    if (ca_ldap_pools) {
        pool = apr_hash_get(ca_ldap_pools, key, klen);
        if (!pool) {
            pool = apr_pcalloc(ca_ldap_pools_pool, sizeof(*pool));
            pool->url = apr_pstrdup(ca_ldap_pools_pool, conf->url);
            pool->bind_dn = conf->bind_dn
                ? apr_pstrdup(ca_ldap_pools_pool, conf->bind_dn) : NULL;
            pool->bind_pw = conf->bind_pw
                ? apr_pstrdup(ca_ldap_pools_pool, conf->bind_pw) : NULL;
            pool->starttls = conf->starttls;
            pool->timeout = conf->timeout;
            apr_hash_set(ca_ldap_pools,
                         apr_pstrmemdup(ca_ldap_pools_pool, key, klen),
                         klen, pool);
        }
    }
    ca_ldap_unlock();

    return pool;
}

/* Give a connection back to its pool, or close it when it failed. */
static apr_status_t ca_ldap_conn_return(void *data)
{
    ca_ldap_conn *conn = data, *stale = NULL;

    conn->borrower = NULL;
    conn->idle_since = apr_time_now();
    ca_ldap_lock();
    if (!conn->broken && ca_ldap_pools) {
        /* last in, first out: the oldest sink to the bottom */
        conn->next = conn->pool->idle;
        conn->pool->idle = conn;
        conn = NULL;
    }
    else if (conn->broken) {
        /* its siblings talked to the same server: most likely dead too */
        stale = ca_ldap_pool_detach(conn->pool);
    }
    ca_ldap_unlock();
    if (conn) {
        ca_ldap_close(conn);
    }
    ca_ldap_close_all(stale);

    return APR_SUCCESS;
}

static void ca_ldap_release(ca_ldap_conn *conn)
{
    if (conn && conn->borrower) {
        apr_pool_cleanup_run(conn->borrower, conn, ca_ldap_conn_return);
    }
}

/* A bind with a DN and a password; both empty is an anonymous bind. */
static int ca_ldap_simple_bind(LDAP *ld, const char *dn, const char *pw)
{
    struct berval cred;

    cred.bv_val = (char *)(pw ? pw : "");
    cred.bv_len = pw ? strlen(pw) : 0;

    return ldap_sasl_bind_s(ld, dn ? dn : "", LDAP_SASL_SIMPLE, &cred,
                            NULL, NULL, NULL);
}

/* The server's diagnostic text for the last operation, or "". */
static const char *ca_ldap_diag(apr_pool_t *p, LDAP *ld)
{
    char *msg = NULL;
    const char *out = "";

    if (ld && ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &msg)
              == LDAP_OPT_SUCCESS && msg) {
        if (*msg) {
            out = apr_pstrcat(p, " (", msg, ")", NULL);
        }
        ldap_memfree(msg);
    }

    return out;
}

/*
 * Borrow a connection bound as the configured identity.  fresh: make a new
 * one even when an idle one is there (a retry after a failure).  Idle
 * connections older than CA_LDAP_IDLE_MAX are not used either: firewalls
 * and servers drop quiet connections, often without telling.  On failure
 * NULL, with *prc the LDAP result, *what the step that failed and *diag
 * the server's words.
 */
static ca_ldap_conn *ca_ldap_acquire(request_rec *r,
                                     const ca_ldap_dir_conf *conf, int fresh,
                                     int *prc, const char **what,
                                     const char **diag)
{
    ca_ldap_pool *pool = ca_ldap_pool_get(r, conf);
    ca_ldap_conn *conn = NULL, *stale = NULL;
    apr_time_t now = apr_time_now();
    struct timeval tv;
    int rc, opt;

    *diag = "";
    if (!pool) {
        *what = "setting up the connection pool";
        *prc = LDAP_LOCAL_ERROR;
        return NULL;
    }
    ca_ldap_lock();
    if (fresh || (pool->idle
                  && now - pool->idle->idle_since > CA_LDAP_IDLE_MAX)) {
        /* the newest is on top: when it is too old, so are the others */
        stale = ca_ldap_pool_detach(pool);
    }
    else if ((conn = pool->idle)) {
        pool->idle = conn->next;
        conn->next = NULL;
    }
    ca_ldap_unlock();
    ca_ldap_close_all(stale);

    if (!conn) {
        if (!(conn = calloc(1, sizeof(*conn)))) {
            *what = "allocating a connection";
            *prc = LDAP_NO_MEMORY;
            return NULL;
        }
        conn->pool = pool;
        rc = ldap_initialize(&conn->ld, pool->url);
        if (rc != LDAP_SUCCESS) {
            conn->ld = NULL;
            ca_ldap_close(conn);
            *what = "initialising the connection";
            *prc = rc;
            return NULL;
        }
        tv.tv_sec = pool->timeout;
        tv.tv_usec = 0;
        opt = LDAP_VERSION3;
        ldap_set_option(conn->ld, LDAP_OPT_PROTOCOL_VERSION, &opt);
        ldap_set_option(conn->ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
        ldap_set_option(conn->ld, LDAP_OPT_RESTART, LDAP_OPT_ON);
        /* connect, and every synchronous operation, within the timeout */
        ldap_set_option(conn->ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
        ldap_set_option(conn->ld, LDAP_OPT_TIMEOUT, &tv);
        if (pool->starttls) {
            rc = ldap_start_tls_s(conn->ld, NULL, NULL);
            if (rc != LDAP_SUCCESS) {
                *diag = ca_ldap_diag(r->pool, conn->ld);
                ca_ldap_close(conn);
                *what = "StartTLS";
                *prc = ca_ldap_is_down(rc) ? rc : LDAP_CONNECT_ERROR;
                return NULL;
            }
        }
        /* anonymous until told otherwise: nothing to do */
        conn->bound = pool->bind_dn == NULL;
    }

    conn->borrower = r->pool;
    apr_pool_cleanup_register(r->pool, conn, ca_ldap_conn_return,
                              apr_pool_cleanup_null);

    if (!conn->bound) {
        rc = ca_ldap_simple_bind(conn->ld, pool->bind_dn, pool->bind_pw);
        if (rc != LDAP_SUCCESS) {
            *diag = ca_ldap_diag(r->pool, conn->ld);
            conn->broken = 1;
            ca_ldap_release(conn);
            *what = pool->bind_dn ? "binding as CALdapBindDN"
                                  : "binding anonymously";
            *prc = rc;
            return NULL;
        }
        conn->bound = 1;
    }

    return conn;
}

/* ---- filters ------------------------------------------------------- */

/* RFC 4515 3: escape what would be filter syntax (and, to keep filters
 * printable in the logs, every byte outside printable ASCII). */
static const char *ca_ldap_filter_escape(apr_pool_t *p, const char *in)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s;
    apr_size_t n = 0;
    char *out, *o;

    for (s = (const unsigned char *)in; *s; s++) {
        n += (*s < 0x20 || *s > 0x7e || strchr("*()\\", *s)) ? 3 : 1;
    }
    o = out = apr_palloc(p, n + 1);
    for (s = (const unsigned char *)in; *s; s++) {
        if (*s < 0x20 || *s > 0x7e || strchr("*()\\", *s)) {
            *o++ = '\\';
            *o++ = hex[*s >> 4];
            *o++ = hex[*s & 0x0f];
        }
        else {
            *o++ = (char)*s;
        }
    }
    *o = '\0';

    return out;
}

static void ca_ldap_filter_push_text(apr_pool_t *p, ca_ldap_filter *f,
                                     const char *start, const char *end)
{
    ca_ldap_filter_part *part;

    if (end > start) {
        part = apr_array_push(f->parts);
        part->text = apr_pstrmemdup(p, start, end - start);
        part->expr = NULL;
    }
}

/* Cut CALdapFilter into literal text and %{...} expressions. */
static const char *ca_ldap_filter_parse(cmd_parms *cmd, const char *arg,
                                        ca_ldap_filter **pf)
{
    ca_ldap_filter *f = apr_pcalloc(cmd->pool, sizeof(*f));
    const char *p = arg, *lit = arg, *q, *err = NULL;
    ca_ldap_filter_part *part;
    apr_size_t len = strlen(arg);
    int depth, parens = 0, nexpr = 0;

    f->source = arg;
    f->parts = apr_array_make(cmd->pool, 4, sizeof(ca_ldap_filter_part));
    while (*p && parens >= 0) {
        if (p[0] != '%' || p[1] != '{') {
            if (*p == '(') {
                parens++;
            }
            else if (*p == ')') {
                parens--;
            }
            p++;
            continue;
        }
        ca_ldap_filter_push_text(cmd->pool, f, lit, p);
        /* to the matching brace; expressions may nest %{...} */
        for (q = p + 2, depth = 1; *q && depth; q++) {
            if (q[0] == '\\' && q[1]) {
                q++;
            }
            else if (q[0] == '%' && q[1] == '{') {
                depth++;
                q++;
            }
            else if (q[0] == '}') {
                depth--;
            }
        }
        if (depth) {
            return apr_psprintf(cmd->pool, "%s: unterminated %%{ in '%s'",
                                cmd->cmd->name, arg);
        }
        part = apr_array_push(f->parts);
        part->text = NULL;
        part->expr = ap_expr_parse_cmd(cmd,
                                       apr_pstrmemdup(cmd->pool, p, q - p),
                                       AP_EXPR_FLAG_STRING_RESULT
                                       | AP_EXPR_FLAG_DONT_VARY, &err, NULL);
        if (err) {
            return apr_psprintf(cmd->pool, "%s: cannot parse '%.*s': %s",
                                cmd->cmd->name, (int)(q - p), p, err);
        }
        nexpr++;
        p = lit = q;
    }
    ca_ldap_filter_push_text(cmd->pool, f, lit, p);

    /* the values cannot break the structure; the template must have one */
    if (parens != 0 || arg[0] != '(' || arg[len - 1] != ')') {
        return apr_psprintf(cmd->pool, "%s: '%s' is not an LDAP filter: it "
                            "must be enclosed in parentheses, and they must "
                            "balance", cmd->cmd->name, arg);
    }
    if (!nexpr) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, cmd->server,
                     CA_LOGNO(04003) "%s:%d: %s '%s' has no %%{...} in it: "
                     "every request will find the same entry",
                     cmd->directive ? cmd->directive->filename : "?",
                     cmd->directive ? cmd->directive->line_num : 0,
                     cmd->cmd->name, arg);
    }
    *pf = f;

    return NULL;
}

/* The filter for this request; NULL (logged) when an expression fails. */
static const char *ca_ldap_filter_eval(request_rec *r,
                                       const ca_ldap_filter *f)
{
    const ca_ldap_filter_part *parts =
        (const ca_ldap_filter_part *)f->parts->elts;
    apr_array_header_t *pieces = apr_array_make(r->pool, f->parts->nelts,
                                                sizeof(const char *));
    const char *err = NULL, *val;
    int i;

    for (i = 0; i < f->parts->nelts; i++) {
        if (parts[i].text) {
            APR_ARRAY_PUSH(pieces, const char *) = parts[i].text;
            continue;
        }
        val = ap_expr_str_exec(r, parts[i].expr, &err);
        if (err || !val) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CA_LOGNO(04004)
                          "CALdapFilter %s: cannot evaluate: %s",
                          f->source,
                          err ? err : "no value");
            return NULL;
        }
        APR_ARRAY_PUSH(pieces, const char *) =
            ca_ldap_filter_escape(r->pool, val);
    }

    return apr_array_pstrcat(r->pool, pieces, 0);
}

/* ---- the subject, for the filter ----------------------------------- */

static const char *ca_ldap_asn1_utf8(apr_pool_t *p, const ASN1_STRING *s)
{
    unsigned char *utf8 = NULL;
    const char *out;
    int n = ASN1_STRING_to_UTF8(&utf8, s);

    if (n < 0) {
        ERR_clear_error();
        return NULL;
    }
    out = apr_pstrmemdup(p, (const char *)utf8, n);
    OPENSSL_free(utf8);
    /* a value with a NUL in it is not one we can compare or search for */
    return strlen(out) == (apr_size_t)n ? out : NULL;
}

/* RFC 2253 text of a name, UTF-8 kept as it is */
static const char *ca_ldap_name_text(apr_pool_t *p, const X509_NAME *name)
{
    BIO *bio = BIO_new(BIO_s_mem());
    const char *out = NULL;
    char *data;
    long n;

    if (bio && X509_NAME_print_ex(bio, name, 0,
                                  XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB)
               >= 0) {
        n = BIO_get_mem_data(bio, &data);
        out = apr_pstrmemdup(p, data, n > 0 ? n : 0);
    }
    BIO_free(bio);
    ERR_clear_error();

    return out;
}

/*
 * SCEP_SUBJECT_DN, SCEP_SUBJECT_<field> (a second value of a field gets
 * _1, a third _2, ...) and SCEP_TRANSACTION_ID in r->subprocess_env, as
 * CALdapFilter may use them.  Raw values: CALdapFilter escapes them.
 */
static void ca_ldap_set_env(request_rec *r, const X509_NAME *name,
                            apr_hash_t *params)
{
    apr_hash_t *seen = apr_hash_make(r->pool);
    const char *tid, *dn, *field, *val;
    int i, *count;
    char oid[80];

    if (name) {
        if ((dn = ca_ldap_name_text(r->pool, name))) {
            apr_table_set(r->subprocess_env, CA_LDAP_ENV_SUBJECT "DN", dn);
        }
        for (i = 0; i < X509_NAME_entry_count(name); i++) {
            const X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
            const ASN1_OBJECT *obj = X509_NAME_ENTRY_get_object(e);
            int nid = OBJ_obj2nid(obj);

            if (nid != NID_undef && OBJ_nid2sn(nid)) {
                field = OBJ_nid2sn(nid);
            }
            else {
                char *c;

                OBJ_obj2txt(oid, sizeof(oid), obj, 1);
                for (c = oid; *c; c++) {
                    if (*c == '.') {
                        *c = '_';
                    }
                }
                field = apr_pstrdup(r->pool, oid);
            }
            val = ca_ldap_asn1_utf8(r->pool, X509_NAME_ENTRY_get_data(e));
            if (!val) {
                continue;
            }
            count = apr_hash_get(seen, field, APR_HASH_KEY_STRING);
            if (!count) {
                count = apr_pcalloc(r->pool, sizeof(*count));
                apr_hash_set(seen, field, APR_HASH_KEY_STRING, count);
                apr_table_set(r->subprocess_env,
                              apr_pstrcat(r->pool, CA_LDAP_ENV_SUBJECT,
                                          field, NULL), val);
            }
            else {
                apr_table_set(r->subprocess_env,
                              apr_psprintf(r->pool, "%s%s_%d",
                                           CA_LDAP_ENV_SUBJECT, field,
                                           *count), val);
            }
            (*count)++;
        }
    }
    tid = params ? apr_hash_get(params, CA_PARAM_TRANSACTION_ID,
                                APR_HASH_KEY_STRING) : NULL;
    if (tid) {
        apr_table_set(r->subprocess_env, CA_LDAP_ENV_TRANSACTION, tid);
    }
}

/* The one CN of a name; NULL when there is none or more than one. */
static const char *ca_ldap_name_cn(apr_pool_t *p, const X509_NAME *name,
                                   int *count)
{
    int i = -1;
    const char *cn = NULL;

    *count = 0;
    while ((i = X509_NAME_get_index_by_NID(name, NID_commonName, i)) >= 0) {
        (*count)++;
        cn = ca_ldap_asn1_utf8(p, X509_NAME_ENTRY_get_data(
                                      X509_NAME_get_entry(name, i)));
    }

    return *count == 1 ? cn : NULL;
}

/* ---- configuration ------------------------------------------------- */

static void *ca_ldap_create_dir_conf(apr_pool_t *p, char *dir)
{
    ca_ldap_dir_conf *conf = apr_pcalloc(p, sizeof(*conf));

    conf->timeout = CA_LDAP_TIMEOUT_DEFAULT;
    conf->scope = LDAP_SCOPE_SUBTREE;
    conf->cert_attr = CA_LDAP_CERT_ATTR_DEFAULT;
    conf->store_mode = LDAP_MOD_ADD;

    return conf;
}

#define CA_LDAP_MERGE(field) do {                                       \
        new->field = add->field##_set ? add->field : base->field;       \
        new->field##_set = add->field##_set || base->field##_set;       \
    } while (0)

static void *ca_ldap_merge_dir_conf(apr_pool_t *p, void *basev, void *addv)
{
    ca_ldap_dir_conf *new = apr_pcalloc(p, sizeof(*new));
    const ca_ldap_dir_conf *base = basev;
    const ca_ldap_dir_conf *add = addv;

    CA_LDAP_MERGE(url);
    CA_LDAP_MERGE(starttls);
    CA_LDAP_MERGE(bind_dn);
    CA_LDAP_MERGE(bind_pw);
    CA_LDAP_MERGE(timeout);
    CA_LDAP_MERGE(base);
    CA_LDAP_MERGE(scope);
    CA_LDAP_MERGE(filter);
    /* the method of checking the challenge is one choice: a section that
     * sets either directive replaces both */
    if (add->challenge_attr_set || add->challenge_bind_set) {
        new->challenge_attr = add->challenge_attr;
        new->challenge_bind = add->challenge_bind;
    }
    else {
        new->challenge_attr = base->challenge_attr;
        new->challenge_bind = base->challenge_bind;
    }
    new->challenge_attr_set = add->challenge_attr_set
                              || base->challenge_attr_set;
    new->challenge_bind_set = add->challenge_bind_set
                              || base->challenge_bind_set;
    CA_LDAP_MERGE(subject_attr);
    CA_LDAP_MERGE(cert_attr);
    CA_LDAP_MERGE(p7_attr);
    CA_LDAP_MERGE(store_mode);
    new->where = add->where ? add->where : base->where;
    new->server = add->server ? add->server : base->server;
    new->path = add->path ? add->path : base->path;

    return new;
}

static apr_status_t ca_ldap_reset_sections(void *data)
{
    ca_ldap_sections = NULL;

    return APR_SUCCESS;
}

/* A fresh registry for each reading of the configuration. */
static void ca_ldap_make_sections(apr_pool_t *pconf)
{
    ca_ldap_sections = apr_array_make(pconf, 4, sizeof(ca_ldap_dir_conf *));
    apr_pool_cleanup_register(pconf, NULL, ca_ldap_reset_sections,
                              apr_pool_cleanup_null);
}

/* Remember a section for the start-up checks, once. */
static void ca_ldap_register_section(cmd_parms *cmd, ca_ldap_dir_conf *conf)
{
    if (conf->registered) {
        return;
    }
    if (!ca_ldap_sections) {
        ca_ldap_make_sections(cmd->pool);
    }
    conf->where = cmd->directive
        ? apr_psprintf(cmd->pool, "%s:%d", cmd->directive->filename,
                       cmd->directive->line_num)
        : "(unknown)";
    conf->server = cmd->server;
    conf->path = cmd->path;
    APR_ARRAY_PUSH(ca_ldap_sections, ca_ldap_dir_conf *) = conf;
    conf->registered = 1;
}

/* An attribute description: a name or an OID, then ;options. */
static int ca_ldap_attr_ok(const char *a)
{
    const char *p = a;

    if (apr_isalpha(*p)) {
        while (apr_isalnum(*p) || *p == '-') {
            p++;
        }
    }
    else if (apr_isdigit(*p)) {
        while (apr_isdigit(*p) || (*p == '.' && apr_isdigit(p[1]))) {
            p++;
        }
    }
    else {
        return 0;
    }
    while (*p == ';' && (apr_isalnum(p[1]) || p[1] == '-')) {
        for (p++; apr_isalnum(*p) || *p == '-'; p++) {
        }
    }

    return *p == '\0';
}

static const char *ca_ldap_check_dn(cmd_parms *cmd, const char *dn)
{
    LDAPDN parsed = NULL;

    if (ldap_str2dn(dn, &parsed, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a distinguished "
                            "name (RFC 4514)", cmd->cmd->name, dn);
    }
    ldap_dnfree(parsed);

    return NULL;
}

static const char *ca_ldap_set_url(cmd_parms *cmd, void *dconf,
                                   const char *arg)
{
    ca_ldap_dir_conf *conf = dconf;
    char *copy = apr_pstrdup(cmd->temp_pool, arg), *tok, *last = NULL;
    const char *urls = NULL;
    LDAPURLDesc *lud;
    int rc;

    for (tok = apr_strtok(copy, " \t", &last); tok;
         tok = apr_strtok(NULL, " \t", &last)) {
        lud = NULL;
        rc = ldap_url_parse(tok, &lud);
        if (rc != LDAP_URL_SUCCESS || !lud) {
            return apr_psprintf(cmd->pool, "%s: '%s' is not an LDAP URL "
                                "(error %d)", cmd->cmd->name, tok, rc);
        }
        if (strcasecmp(lud->lud_scheme, "ldap")
            && strcasecmp(lud->lud_scheme, "ldaps")
            && strcasecmp(lud->lud_scheme, "ldapi")) {
            ldap_free_urldesc(lud);
            return apr_psprintf(cmd->pool, "%s: '%s': the scheme must be "
                                "ldap, ldaps or ldapi", cmd->cmd->name, tok);
        }
        if ((lud->lud_dn && *lud->lud_dn) || lud->lud_attrs
            || lud->lud_filter || lud->lud_exts) {
            ldap_free_urldesc(lud);
            return apr_psprintf(cmd->pool, "%s: '%s': give the server only; "
                                "the base and filter have their own "
                                "directives (CALdapBase, CALdapFilter)",
                                cmd->cmd->name, tok);
        }
        ldap_free_urldesc(lud);
        urls = urls ? apr_pstrcat(cmd->pool, urls, " ", tok, NULL)
                    : apr_pstrdup(cmd->pool, tok);
    }
    if (!urls) {
        return apr_psprintf(cmd->pool, "%s: no URL given", cmd->cmd->name);
    }
    /* the arguments of one line (or one quoted list) are all tried in
     * turn; another CALdapURL line replaces them */
    if (conf->url_set && conf->url_line && conf->url_line == cmd->directive) {
        conf->url = apr_pstrcat(cmd->pool, conf->url, " ", urls, NULL);
    }
    else {
        conf->url = urls;
    }
    conf->url_line = cmd->directive;
    conf->url_set = 1;
    ca_ldap_register_section(cmd, conf);

    return NULL;
}

static const char *ca_ldap_set_starttls(cmd_parms *cmd, void *dconf, int flag)
{
    ca_ldap_dir_conf *conf = dconf;

    conf->starttls = flag;
    conf->starttls_set = 1;
    ca_ldap_register_section(cmd, conf);

    return NULL;
}

static const char *ca_ldap_set_bind_dn(cmd_parms *cmd, void *dconf,
                                       const char *arg)
{
    ca_ldap_dir_conf *conf = dconf;
    const char *err;

    if ((err = ca_ldap_check_dn(cmd, arg))) {
        return err;
    }
    conf->bind_dn = arg;
    conf->bind_dn_set = 1;
    ca_ldap_register_section(cmd, conf);

    return NULL;
}

static const char *ca_ldap_store_password(cmd_parms *cmd,
                                          ca_ldap_dir_conf *conf,
                                          const char *pw)
{
    if (conf->bind_pw_set) {
        return apr_psprintf(cmd->pool, "%s: the bind password is already "
                            "set in this section (CALdapBindPassword and "
                            "CALdapBindPasswordFile exclude each other)",
                            cmd->cmd->name);
    }
    if (!*pw) {
        /* an empty password makes a simple bind anonymous (RFC 4513 5.1.2) */
        return apr_psprintf(cmd->pool, "%s: the bind password is empty",
                            cmd->cmd->name);
    }
    conf->bind_pw = pw;
    conf->bind_pw_set = 1;
    ca_ldap_register_section(cmd, conf);

    return NULL;
}

static const char *ca_ldap_set_bind_pw(cmd_parms *cmd, void *dconf,
                                       const char *arg)
{
    return ca_ldap_store_password(cmd, dconf, arg);
}

/* The first line of a file, read now, at start-up, as root. */
static const char *ca_ldap_set_bind_pw_file(cmd_parms *cmd, void *dconf,
                                            const char *arg)
{
    const char *path = ap_server_root_relative(cmd->temp_pool, arg);
    apr_file_t *f;
    apr_size_t n = 0;
    apr_status_t rv;
    char *buf, *end;

    if (!path) {
        return apr_psprintf(cmd->pool, "%s: invalid file path %s",
                            cmd->cmd->name, arg);
    }
    rv = apr_file_open(&f, path, APR_FOPEN_READ, APR_FPROT_OS_DEFAULT,
                       cmd->temp_pool);
    if (rv != APR_SUCCESS) {
        return apr_psprintf(cmd->pool, "%s %s: cannot open: %pm",
                            cmd->cmd->name, path, &rv);
    }
    buf = apr_pcalloc(cmd->pool, CA_LDAP_PASSWORD_FILE_MAX + 1);
    rv = apr_file_read_full(f, buf, CA_LDAP_PASSWORD_FILE_MAX, &n);
    apr_file_close(f);
    if (rv != APR_SUCCESS && rv != APR_EOF) {
        return apr_psprintf(cmd->pool, "%s %s: cannot read: %pm",
                            cmd->cmd->name, path, &rv);
    }
    if (n == CA_LDAP_PASSWORD_FILE_MAX) {
        return apr_psprintf(cmd->pool, "%s %s: longer than %d bytes; it "
                            "should hold the password only",
                            cmd->cmd->name, path, CA_LDAP_PASSWORD_FILE_MAX);
    }
    buf[n] = '\0';
    if (strlen(buf) != n) {
        return apr_psprintf(cmd->pool, "%s %s: holds a NUL byte",
                            cmd->cmd->name, path);
    }
    /* the first line, without its line ending */
    if ((end = strpbrk(buf, "\r\n"))) {
        *end = '\0';
    }

    return ca_ldap_store_password(cmd, dconf, buf);
}

static const char *ca_ldap_set_timeout(cmd_parms *cmd, void *dconf,
                                       const char *arg)
{
    ca_ldap_dir_conf *conf = dconf;
    apr_int64_t t;
    char *end;

    errno = 0;
    t = apr_strtoi64(arg, &end, 10);
    if (errno || end == arg || *end || t < 1 || t > CA_LDAP_TIMEOUT_MAX) {
        return apr_psprintf(cmd->pool, "%s must be a number of seconds from "
                            "1 to %d, not '%s'", cmd->cmd->name,
                            CA_LDAP_TIMEOUT_MAX, arg);
    }
    conf->timeout = (int)t;
    conf->timeout_set = 1;
    ca_ldap_register_section(cmd, conf);

    return NULL;
}

static const char *ca_ldap_set_base(cmd_parms *cmd, void *dconf,
                                    const char *arg)
{
    ca_ldap_dir_conf *conf = dconf;
    const char *err;

    if ((err = ca_ldap_check_dn(cmd, arg))) {
        return err;
    }
    conf->base = arg;
    conf->base_set = 1;
    ca_ldap_register_section(cmd, conf);

    return NULL;
}

static const char *ca_ldap_set_scope(cmd_parms *cmd, void *dconf,
                                     const char *arg)
{
    ca_ldap_dir_conf *conf = dconf;

    if (!strcasecmp(arg, "base")) {
        conf->scope = LDAP_SCOPE_BASE;
    }
    else if (!strcasecmp(arg, "one")) {
        conf->scope = LDAP_SCOPE_ONELEVEL;
    }
    else if (!strcasecmp(arg, "sub")) {
        conf->scope = LDAP_SCOPE_SUBTREE;
    }
    else {
        return apr_psprintf(cmd->pool, "%s must be base, one or sub, not "
                            "'%s'", cmd->cmd->name, arg);
    }
    conf->scope_set = 1;
    ca_ldap_register_section(cmd, conf);

    return NULL;
}

static const char *ca_ldap_set_filter(cmd_parms *cmd, void *dconf,
                                      const char *arg)
{
    ca_ldap_dir_conf *conf = dconf;
    const char *err;

    if ((err = ca_ldap_filter_parse(cmd, arg, &conf->filter))) {
        return err;
    }
    conf->filter_set = 1;
    ca_ldap_register_section(cmd, conf);

    return NULL;
}

/* An attribute description, or NULL for "none" when allowed. */
static const char *ca_ldap_attr_arg(cmd_parms *cmd, const char *arg,
                                    int none_ok, const char **out)
{
    if (!strcasecmp(arg, "none")) {
        if (!none_ok) {
            /* taken as an attribute named "none", it would refuse every
             * challenge without saying why */
            return apr_psprintf(cmd->pool, "%s cannot be none: leave it "
                                "out (with CALdapChallengeBind on, or no "
                                "CALdapFilter)", cmd->cmd->name);
        }
        *out = NULL;
        return NULL;
    }
    if (!ca_ldap_attr_ok(arg)) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not an attribute "
                            "description (a name or OID, then any "
                            ";options)%s", cmd->cmd->name, arg,
                            none_ok ? ", nor none" : "");
    }
    *out = arg;

    return NULL;
}

/* The directives naming an attribute; cmd->info says which. */
enum {
    CA_LDAP_ATTR_CHALLENGE,             /* CALdapChallengeAttribute */
    CA_LDAP_ATTR_SUBJECT,               /* CALdapSubjectMatch */
    CA_LDAP_ATTR_CERT,                  /* CALdapCertificateAttribute */
    CA_LDAP_ATTR_P7                     /* CALdapPKCS7Attribute */
};
#define CA_LDAP_ATTR_INFO(which) ((void *)(apr_uintptr_t)(which))

static const char *ca_ldap_set_attr(cmd_parms *cmd, void *dconf,
                                    const char *arg)
{
    ca_ldap_dir_conf *conf = dconf;
    int which = (int)(apr_uintptr_t)cmd->info;
    const char *attr = NULL, *err;

    /* the challenge attribute cannot be "none": it is the check itself */
    if ((err = ca_ldap_attr_arg(cmd, arg, which != CA_LDAP_ATTR_CHALLENGE,
                                &attr))) {
        return err;
    }
    switch (which) {
    case CA_LDAP_ATTR_CHALLENGE:
        conf->challenge_attr = attr;
        conf->challenge_attr_set = 1;
        break;
    case CA_LDAP_ATTR_SUBJECT:
        conf->subject_attr = attr;
        conf->subject_attr_set = 1;
        break;
    case CA_LDAP_ATTR_CERT:
        conf->cert_attr = attr;
        conf->cert_attr_set = 1;
        break;
    default:
        conf->p7_attr = attr;
        conf->p7_attr_set = 1;
        break;
    }
    ca_ldap_register_section(cmd, conf);

    return NULL;
}

static const char *ca_ldap_set_challenge_bind(cmd_parms *cmd, void *dconf,
                                              int flag)
{
    ca_ldap_dir_conf *conf = dconf;

    conf->challenge_bind = flag;
    conf->challenge_bind_set = 1;
    ca_ldap_register_section(cmd, conf);

    return NULL;
}

static const char *ca_ldap_set_store_mode(cmd_parms *cmd, void *dconf,
                                          const char *arg)
{
    ca_ldap_dir_conf *conf = dconf;

    if (!strcasecmp(arg, "add")) {
        conf->store_mode = LDAP_MOD_ADD;
    }
    else if (!strcasecmp(arg, "replace")) {
        conf->store_mode = LDAP_MOD_REPLACE;
    }
    else {
        return apr_psprintf(cmd->pool, "%s must be add or replace, not '%s'",
                            cmd->cmd->name, arg);
    }
    conf->store_mode_set = 1;
    ca_ldap_register_section(cmd, conf);

    return NULL;
}

/* Secrets and files are read once, at start-up: never .htaccess. */
static const command_rec ca_ldap_cmds[] = {
    AP_INIT_ITERATE("CALdapURL", ca_ldap_set_url, NULL,
                    RSRC_CONF | ACCESS_CONF,
                    "LDAP server URLs (ldap://, ldaps://, ldapi://), tried "
                    "in turn"),
    AP_INIT_FLAG("CALdapStartTLS", ca_ldap_set_starttls, NULL,
                 RSRC_CONF | ACCESS_CONF,
                 "Upgrade ldap:// connections with StartTLS. Default: off"),
    AP_INIT_TAKE1("CALdapBindDN", ca_ldap_set_bind_dn, NULL,
                  RSRC_CONF | ACCESS_CONF,
                  "The DN to bind as. Default: anonymous"),
    AP_INIT_TAKE1("CALdapBindPassword", ca_ldap_set_bind_pw, NULL,
                  RSRC_CONF | ACCESS_CONF,
                  "The password of CALdapBindDN"),
    AP_INIT_TAKE1("CALdapBindPasswordFile", ca_ldap_set_bind_pw_file, NULL,
                  RSRC_CONF | ACCESS_CONF,
                  "A file whose first line is the password of CALdapBindDN, "
                  "read at start-up"),
    AP_INIT_TAKE1("CALdapTimeout", ca_ldap_set_timeout, NULL,
                  RSRC_CONF | ACCESS_CONF,
                  "Seconds to wait for the directory. Default: 10"),
    AP_INIT_TAKE1("CALdapBase", ca_ldap_set_base, NULL,
                  RSRC_CONF | ACCESS_CONF,
                  "The DN below which CALdapFilter searches"),
    AP_INIT_TAKE1("CALdapScope", ca_ldap_set_scope, NULL,
                  RSRC_CONF | ACCESS_CONF,
                  "base, one or sub. Default: sub"),
    AP_INIT_TAKE1("CALdapFilter", ca_ldap_set_filter, NULL,
                  RSRC_CONF | ACCESS_CONF,
                  "The LDAP filter that finds the entry of a request; each "
                  "%{...} in it is an expression, its value escaped"),
    AP_INIT_TAKE1("CALdapChallengeAttribute", ca_ldap_set_attr,
                  CA_LDAP_ATTR_INFO(CA_LDAP_ATTR_CHALLENGE),
                  RSRC_CONF | ACCESS_CONF,
                  "Accept when the challenge password equals this attribute "
                  "of the entry"),
    AP_INIT_FLAG("CALdapChallengeBind", ca_ldap_set_challenge_bind, NULL,
                 RSRC_CONF | ACCESS_CONF,
                 "Accept when binding as the entry with the challenge "
                 "password succeeds. Default: off"),
    AP_INIT_TAKE1("CALdapSubjectMatch", ca_ldap_set_attr,
                  CA_LDAP_ATTR_INFO(CA_LDAP_ATTR_SUBJECT),
                  RSRC_CONF | ACCESS_CONF,
                  "The subject's CN must be a value of this attribute of the "
                  "entry. Default: none"),
    AP_INIT_TAKE1("CALdapCertificateAttribute", ca_ldap_set_attr,
                  CA_LDAP_ATTR_INFO(CA_LDAP_ATTR_CERT),
                  RSRC_CONF | ACCESS_CONF,
                  "Where the issued certificate is stored, or none. "
                  "Default: userCertificate;binary"),
    AP_INIT_TAKE1("CALdapPKCS7Attribute", ca_ldap_set_attr,
                  CA_LDAP_ATTR_INFO(CA_LDAP_ATTR_P7),
                  RSRC_CONF | ACCESS_CONF,
                  "Where a PKCS#7 of the certificate and its chain is "
                  "stored, or none. Default: none"),
    AP_INIT_TAKE1("CALdapStoreMode", ca_ldap_set_store_mode, NULL,
                  RSRC_CONF | ACCESS_CONF,
                  "add: keep the certificates stored before; replace: only "
                  "the new one. Default: add"),
    { NULL }
};

/* ---- start-up checks ----------------------------------------------- */

/* What makes a configuration unusable, or NULL. */
static const char *ca_ldap_conf_problem(const ca_ldap_dir_conf *conf)
{
    if (conf->bind_dn && !conf->bind_pw) {
        return "CALdapBindDN is set without CALdapBindPassword or "
               "CALdapBindPasswordFile";
    }
    if (conf->bind_pw && !conf->bind_dn) {
        return "a bind password is set without CALdapBindDN";
    }
    if (conf->starttls && conf->url && ap_strcasestr(conf->url, "ldaps://")) {
        return "CALdapStartTLS on cannot be used with ldaps:// URLs, which "
               "are TLS already";
    }
    if (!conf->filter) {
        return NULL;
    }
    if (!conf->url) {
        return "CALdapFilter is set without CALdapURL";
    }
    if (!conf->base) {
        return "CALdapFilter is set without CALdapBase";
    }
    if (conf->challenge_attr && conf->challenge_bind) {
        return "CALdapChallengeAttribute and CALdapChallengeBind on exclude "
               "each other";
    }
    if (!conf->challenge_attr && !conf->challenge_bind) {
        return "CALdapFilter needs CALdapChallengeAttribute or "
               "CALdapChallengeBind on";
    }

    return NULL;
}

static int ca_ldap_pre_config(apr_pool_t *pconf, apr_pool_t *plog,
                              apr_pool_t *ptemp)
{
    ca_ldap_make_sections(pconf);

    return OK;
}

/* Whether the section at path outer applies to requests for inner, as
 * <Location> and <Directory> prefixes do (a whole path segment). */
static int ca_ldap_path_within(const char *outer, const char *inner)
{
    apr_size_t len = strlen(outer);

    return !strncmp(outer, inner, len)
           && (len == 0 || outer[len - 1] == '/' || inner[len] == '/'
               || inner[len] == '\0');
}

/*
 * Every section that sets a CALdap directive is checked as it will be
 * used: on top of the defaults of its server (virtual host) and of the
 * sections before it in the same server whose path encloses its own, the
 * way <Location> and <Directory> sections inherit.  That is close to what
 * requests see, but not exact (regular expression sections, .htaccess and
 * other modules' sections are not considered); requests check their own
 * merged configuration again, and refuse when it is unusable.
 * check_config runs for "apachectl configtest" too.  The directory itself
 * is not contacted: a directory that is down must not keep httpd from
 * starting.
 */
static int ca_ldap_check_config(apr_pool_t *pconf, apr_pool_t *plog,
                                apr_pool_t *ptemp, server_rec *s)
{
    int i, j, ok = 1;

    if (!ca_ldap_sections) {
        return OK;
    }
    for (i = 0; i < ca_ldap_sections->nelts; i++) {
        ca_ldap_dir_conf *conf =
            APR_ARRAY_IDX(ca_ldap_sections, i, ca_ldap_dir_conf *);
        ca_ldap_dir_conf *merged = conf, *outer;
        const char *problem;

        if (conf->server) {
            merged = ap_get_module_config(conf->server->lookup_defaults,
                                          &ca_ldap_module);
            for (j = 0; conf->path && j < i; j++) {
                outer = APR_ARRAY_IDX(ca_ldap_sections, j,
                                      ca_ldap_dir_conf *);
                if (outer->server == conf->server && outer->path
                    && ca_ldap_path_within(outer->path, conf->path)) {
                    merged = ca_ldap_merge_dir_conf(ptemp, merged, outer);
                }
            }
            if (merged != conf) {
                merged = ca_ldap_merge_dir_conf(ptemp, merged, conf);
            }
        }
        if ((problem = ca_ldap_conf_problem(merged))) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, CA_LOGNO(04005)
                         "mod_ca_ldap configuration at %s: %s", conf->where,
                         problem);
            ok = 0;
        }
    }

    return ok ? OK : HTTP_INTERNAL_SERVER_ERROR;
}

/* ---- directory operations ------------------------------------------ */

/* What a search found. */
typedef struct ca_ldap_entry {
    int count;                          /* 0, 1, or 2 for "more than one" */
    const char *dn;
    apr_array_header_t *challenge;      /* values of the challenge attr */
    apr_array_header_t *subject;        /* values of CALdapSubjectMatch */
} ca_ldap_entry;

/* The values of an attribute as strings (a value holding a NUL, which
 * can match no text we compare, is left out); NULL when it has none. */
static apr_array_header_t *ca_ldap_values(apr_pool_t *p, LDAP *ld,
                                          LDAPMessage *e, const char *attr)
{
    struct berval **vals = ldap_get_values_len(ld, e, attr);
    apr_array_header_t *out = NULL;
    int i;

    if (!vals) {
        return NULL;
    }
    out = apr_array_make(p, 1, sizeof(const char *));
    for (i = 0; vals[i]; i++) {
        if (!memchr(vals[i]->bv_val, '\0', vals[i]->bv_len)) {
            APR_ARRAY_PUSH(out, const char *) =
                apr_pstrmemdup(p, vals[i]->bv_val, vals[i]->bv_len);
        }
    }
    ldap_value_free_len(vals);

    return out;
}

/* Log a directory failure; 503 when the directory cannot be reached,
 * 500 for anything else (a configuration the directory refuses). */
static int ca_ldap_failed(request_rec *r, const ca_ldap_dir_conf *conf,
                          int rc, const char *what, const char *diag,
                          const char *tid)
{
    if (ca_ldap_is_down(rc)) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CA_LOGNO(04006)
                      "transaction %s: the directory %s cannot be reached "
                      "(%s: %s%s)", tid, conf->url, what,
                      ldap_err2string(rc), diag);
        return HTTP_SERVICE_UNAVAILABLE;
    }
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CA_LOGNO(04007)
                  "transaction %s: directory %s: %s failed: %s%s", tid,
                  conf->url, what, ldap_err2string(rc), diag);

    return HTTP_INTERNAL_SERVER_ERROR;
}

static void ca_ldap_log_retry(request_rec *r, const ca_ldap_dir_conf *conf,
                              int rc, const char *tid)
{
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, CA_LOGNO(04008)
                  "transaction %s: connection to %s failed (%s), trying a "
                  "new connection", tid, conf->url, ldap_err2string(rc));
}

/*
 * Search CALdapBase for the filter.  want_attrs: fetch the challenge and
 * subject attributes too.  OK with *entry filled in, or an HTTP status
 * (logged) when the directory could not answer.
 */
static int ca_ldap_search(request_rec *r, const ca_ldap_dir_conf *conf,
                          const char *filter, int want_attrs,
                          const char *tid, ca_ldap_entry *entry)
{
    const char *what = "searching", *diag = "";
    ca_ldap_conn *conn;
    LDAPMessage *res, *e;
    struct timeval tv;
    char *attrs[3], *dn;
    int n = 0, rc = LDAP_OTHER, attempt;

    if (want_attrs && conf->challenge_attr && !conf->challenge_bind) {
        attrs[n++] = (char *)conf->challenge_attr;
    }
    if (want_attrs && conf->subject_attr) {
        attrs[n++] = (char *)conf->subject_attr;
    }
    if (!n) {
        attrs[n++] = LDAP_NO_ATTRS;
    }
    attrs[n] = NULL;
    memset(entry, 0, sizeof(*entry));

    for (attempt = 0; attempt < 2; attempt++) {
        if (attempt) {
            ca_ldap_log_retry(r, conf, rc, tid);
        }
        if (!(conn = ca_ldap_acquire(r, conf, attempt, &rc, &what, &diag))) {
            if (ca_ldap_is_down(rc)) {
                continue;
            }
            break;
        }
        what = "searching";
        tv.tv_sec = conf->timeout;
        tv.tv_usec = 0;
        res = NULL;
        /* two entries are enough to know there is more than one */
        rc = ldap_search_ext_s(conn->ld, conf->base, conf->scope, filter,
                               attrs, 0, NULL, NULL, &tv, 2, &res);
        if (rc == LDAP_SUCCESS || rc == LDAP_SIZELIMIT_EXCEEDED) {
            entry->count = ldap_count_entries(conn->ld, res);
            if (rc == LDAP_SIZELIMIT_EXCEEDED || entry->count > 2) {
                entry->count = 2;
            }
            if (entry->count == 1 && (e = ldap_first_entry(conn->ld, res))) {
                if ((dn = ldap_get_dn(conn->ld, e))) {
                    entry->dn = apr_pstrdup(r->pool, dn);
                    ldap_memfree(dn);
                }
                if (want_attrs && conf->challenge_attr) {
                    entry->challenge = ca_ldap_values(r->pool, conn->ld, e,
                                                      conf->challenge_attr);
                }
                if (want_attrs && conf->subject_attr) {
                    entry->subject = ca_ldap_values(r->pool, conn->ld, e,
                                                    conf->subject_attr);
                }
            }
            ldap_msgfree(res);
            ca_ldap_release(conn);
            if (entry->count == 1 && !entry->dn) {
                rc = LDAP_DECODING_ERROR;
                what = "reading the entry found";
                break;
            }
            return OK;
        }
        diag = ca_ldap_diag(r->pool, conn->ld);
        ldap_msgfree(res);
        if (ca_ldap_is_down(rc)) {
            conn->broken = 1;
            ca_ldap_release(conn);
            continue;
        }
        ca_ldap_release(conn);
        break;
    }

    if (rc == LDAP_NO_SUCH_OBJECT) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CA_LOGNO(04009)
                      "transaction %s: CALdapBase %s does not exist in the "
                      "directory %s", tid, conf->base, conf->url);
        return HTTP_INTERNAL_SERVER_ERROR;
    }

    return ca_ldap_failed(r, conf, rc, what, diag, tid);
}

/* Answers of a bind that mean "not with this password". */
static int ca_ldap_is_refusal(int rc)
{
    return rc == LDAP_INVALID_CREDENTIALS || rc == LDAP_INAPPROPRIATE_AUTH
           || rc == LDAP_UNWILLING_TO_PERFORM
           || rc == LDAP_INSUFFICIENT_ACCESS
           || rc == LDAP_CONSTRAINT_VIOLATION;
}

/*
 * Bind as the entry with the challenge password.  OK when the directory
 * accepts it; HTTP_FORBIDDEN with *refusal set when it refuses; another
 * HTTP status (logged) when it could not be asked.  The connection is
 * bound back to the configured identity before its next use.
 */
static int ca_ldap_bind_entry(request_rec *r, const ca_ldap_dir_conf *conf,
                              const char *dn, const char *challenge,
                              const char *tid, int *refusal)
{
    const char *what = "binding as the entry", *diag = "";
    ca_ldap_conn *conn;
    int rc = LDAP_OTHER, attempt;

    for (attempt = 0; attempt < 2; attempt++) {
        if (attempt) {
            ca_ldap_log_retry(r, conf, rc, tid);
        }
        if (!(conn = ca_ldap_acquire(r, conf, attempt, &rc, &what, &diag))) {
            if (ca_ldap_is_down(rc)) {
                continue;
            }
            break;
        }
        what = "binding as the entry";
        rc = ca_ldap_simple_bind(conn->ld, dn, challenge);
        conn->bound = 0;
        diag = ca_ldap_diag(r->pool, conn->ld);
        if (ca_ldap_is_down(rc)) {
            conn->broken = 1;
            ca_ldap_release(conn);
            continue;
        }
        ca_ldap_release(conn);
        if (rc == LDAP_SUCCESS) {
            return OK;
        }
        if (ca_ldap_is_refusal(rc)) {
            *refusal = rc;
            return HTTP_FORBIDDEN;
        }
        break;
    }

    return ca_ldap_failed(r, conf, rc, what, diag, tid);
}

/* Write the modifications to the entry, in one operation. */
static int ca_ldap_modify(request_rec *r, const ca_ldap_dir_conf *conf,
                          const char *dn, LDAPMod **mods, const char *tid)
{
    const char *what = "storing the certificate", *diag = "";
    ca_ldap_conn *conn;
    int rc = LDAP_OTHER, attempt;

    for (attempt = 0; attempt < 2; attempt++) {
        if (attempt) {
            ca_ldap_log_retry(r, conf, rc, tid);
        }
        if (!(conn = ca_ldap_acquire(r, conf, attempt, &rc, &what, &diag))) {
            if (ca_ldap_is_down(rc)) {
                continue;
            }
            break;
        }
        what = "storing the certificate";
        rc = ldap_modify_ext_s(conn->ld, dn, mods, NULL, NULL);
        if (rc == LDAP_TYPE_OR_VALUE_EXISTS && attempt
            && conf->store_mode == LDAP_MOD_ADD) {
            /* the first try got through before its connection failed:
             * these very values are stored */
            rc = LDAP_SUCCESS;
        }
        diag = ca_ldap_diag(r->pool, conn->ld);
        if (ca_ldap_is_down(rc)) {
            conn->broken = 1;
            ca_ldap_release(conn);
            continue;
        }
        ca_ldap_release(conn);
        break;
    }
    if (rc == LDAP_SUCCESS) {
        return OK;
    }

    return ca_ldap_failed(r, conf, rc,
                          apr_pstrcat(r->pool, what, " in ",
                                      dn, NULL),
                          diag, tid);
}

/* ---- the hooks ----------------------------------------------------- */

/* The configuration of this request when it uses the directory; NULL
 * with *status DECLINED when it does not, or an error when it cannot. */
static const ca_ldap_dir_conf *ca_ldap_request_conf(request_rec *r,
                                                    int *status)
{
    const ca_ldap_dir_conf *conf =
        ap_get_module_config(r->per_dir_config, &ca_ldap_module);
    const char *problem;

    *status = DECLINED;
    if (!conf || !conf->url || !conf->filter) {
        return NULL;
    }
    if ((problem = ca_ldap_conf_problem(conf))) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CA_LOGNO(04010)
                      "mod_ca_ldap configuration for %s (%s): %s", r->uri,
                      conf->where ? conf->where : "?", problem);
        *status = HTTP_INTERNAL_SERVER_ERROR;
        return NULL;
    }

    return conf;
}

static const char *ca_ldap_tid(request_rec *r, apr_hash_t *params)
{
    const char *tid = params ? apr_hash_get(params, CA_PARAM_TRANSACTION_ID,
                                            APR_HASH_KEY_STRING) : NULL;

    return tid ? tid : "(none)";
}

static int ca_ldap_reqauthz(request_rec *r, apr_hash_t *params,
                            const unsigned char *csr, apr_size_t csr_len)
{
    const ca_ldap_dir_conf *conf;
    const char *tid, *challenge, *filter, *cn = NULL, *reason = NULL;
    const X509_NAME *name;
    ca_ldap_req_state *state;
    ca_ldap_entry entry;
    X509_REQ *req;
    int status, i, ncn = 0, match, refusal = 0;

    if (!(conf = ca_ldap_request_conf(r, &status))) {
        return status;
    }
    tid = ca_ldap_tid(r, params);

    if (!(req = ca_req_parse(r->pool, csr, csr_len))) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CA_LOGNO(04011)
                      "transaction %s: cannot parse the certificate request "
                      "the frontend passed on: %s", tid,
                      ca_openssl_errors(r->pool));
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    name = X509_REQ_get_subject_name(req);
    ca_ldap_set_env(r, name, params);

    challenge = params ? apr_hash_get(params, CA_PARAM_CHALLENGE,
                                      APR_HASH_KEY_STRING) : NULL;
    if (!challenge || !*challenge) {
        /* an empty password would even make a bind anonymous */
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, CA_LOGNO(04012)
                      "transaction %s: refused: the request carries no "
                      "challenge password", tid);
        return HTTP_FORBIDDEN;
    }
    if (conf->subject_attr && !(cn = ca_ldap_name_cn(r->pool, name, &ncn))) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, CA_LOGNO(04013)
                      "transaction %s: refused: CALdapSubjectMatch needs "
                      "exactly one CN in the subject, which has %d", tid,
                      ncn);
        return HTTP_FORBIDDEN;
    }

    if (!(filter = ca_ldap_filter_eval(r, conf->filter))) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    status = ca_ldap_search(r, conf, filter, 1, tid, &entry);
    if (status != OK) {
        return status;
    }
    if (entry.count != 1) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, CA_LOGNO(04014)
                      "transaction %s: refused: %s entry matches %s under %s",
                      tid, entry.count ? "more than one" : "no",
                      filter, conf->base);
        return HTTP_FORBIDDEN;
    }

    if (conf->subject_attr) {
        match = 0;
        for (i = 0; entry.subject && i < entry.subject->nelts; i++) {
            if (!strcmp(APR_ARRAY_IDX(entry.subject, i, const char *), cn)) {
                match = 1;
            }
        }
        if (!match) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, CA_LOGNO(04015)
                          "transaction %s: refused: the subject CN '%s' is "
                          "not a value of %s of %s", tid,
                          cn, conf->subject_attr,
                          entry.dn);
            return HTTP_FORBIDDEN;
        }
    }

    if (conf->challenge_attr) {
        match = 0;
        for (i = 0; entry.challenge && i < entry.challenge->nelts; i++) {
            /* every value is compared, and in constant time */
            match |= ca_secret_equal(APR_ARRAY_IDX(entry.challenge, i,
                                                   const char *), challenge);
        }
        if (!entry.challenge || !entry.challenge->nelts) {
            reason = apr_psprintf(r->pool, "the entry has no %s (or it "
                                  "cannot be read with CALdapBindDN)",
                                  conf->challenge_attr);
        }
        else if (!match) {
            reason = "the challenge password is wrong";
        }
    }
    else {
        status = ca_ldap_bind_entry(r, conf, entry.dn, challenge, tid,
                                    &refusal);
        if (status == HTTP_FORBIDDEN) {
            reason = apr_pstrcat(r->pool, "binding as the entry with the "
                                 "challenge password failed: ",
                                 ldap_err2string(refusal), NULL);
        }
        else if (status != OK) {
            return status;
        }
    }
    if (reason) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, CA_LOGNO(04016)
                      "transaction %s: refused for %s: %s", tid,
                      entry.dn, reason);
        return HTTP_FORBIDDEN;
    }

    state = apr_pcalloc(r->pool, sizeof(*state));
    state->conf = conf;
    state->dn = entry.dn;
    ap_set_module_config(r->request_config, &ca_ldap_module, state);
    apr_table_set(r->notes, CA_LDAP_NOTE_DN, entry.dn);
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, CA_LOGNO(04017)
                  "transaction %s: authorised by %s", tid,
                  entry.dn);

    return OK;
}

/* A degenerate PKCS#7 of the certificate and the chain of the CA. */
static int ca_ldap_p7(request_rec *r, X509 *x, const unsigned char **der,
                      apr_size_t *len, const char *tid)
{
    const unsigned char *chain = NULL;
    apr_size_t chain_len = 0;
    apr_time_t until = 0;
    STACK_OF(X509) *certs, *above = NULL;
    apr_status_t rv;
    int rc, i;

    rc = ca_run_ca_getchain(r, &chain, &chain_len, &until);
    if (rc != OK && rc != DECLINED) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CA_LOGNO(04018)
                      "transaction %s: the ca_getchain hook failed (%d); "
                      "cannot build the PKCS#7 to store", tid, rc);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (rc == OK && chain
        && !(above = ca_p7_certs_parse(r->pool, chain, chain_len))) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CA_LOGNO(04019)
                      "transaction %s: the chain from ca_getchain is not a "
                      "PKCS#7 of certificates: %s", tid,
                      ca_openssl_errors(r->pool));
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    /* the stack borrows the certificates, which the pool owns */
    if (!(certs = sk_X509_new_null()) || !sk_X509_push(certs, x)) {
        sk_X509_free(certs);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    for (i = 0; above && i < sk_X509_num(above); i++) {
        if (!sk_X509_push(certs, sk_X509_value(above, i))) {
            sk_X509_free(certs);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    rv = ca_p7_certs_der(r->pool, certs, der, len);
    sk_X509_free(certs);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CA_LOGNO(04020)
                      "transaction %s: cannot build the PKCS#7 to store: %s",
                      tid, ca_openssl_errors(r->pool));
        return HTTP_INTERNAL_SERVER_ERROR;
    }

    return OK;
}

static int ca_ldap_certstore(request_rec *r, apr_hash_t *params,
                             const unsigned char *cert, apr_size_t cert_len)
{
    const ca_ldap_dir_conf *conf;
    const ca_ldap_req_state *state;
    const unsigned char *p7 = NULL;
    const ASN1_INTEGER *serial;
    const char *tid, *dn = NULL, *filter;
    struct berval bv_cert, bv_p7, *vals_cert[2], *vals_p7[2];
    LDAPMod mod_cert, mod_p7, *mods[3];
    apr_size_t p7_len = 0;
    ca_ldap_entry entry;
    X509 *x;
    int status, n = 0;

    if (!(conf = ca_ldap_request_conf(r, &status))) {
        return status;
    }
    if (!conf->cert_attr && !conf->p7_attr) {
        return DECLINED;
    }
    tid = ca_ldap_tid(r, params);
    if (!(x = ca_x509_parse(r->pool, cert, cert_len))) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CA_LOGNO(04021)
                      "transaction %s: cannot parse the certificate to "
                      "store: %s", tid, ca_openssl_errors(r->pool));
        return HTTP_INTERNAL_SERVER_ERROR;
    }

    state = ap_get_module_config(r->request_config, &ca_ldap_module);
    if (state && state->conf == conf) {
        dn = state->dn;
    }
    else {
        /* authorised by someone else: find the entry the same way, with
         * the subject of the certificate */
        ca_ldap_set_env(r, X509_get_subject_name(x), params);
        if (!(filter = ca_ldap_filter_eval(r, conf->filter))) {
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        if (ca_ldap_search(r, conf, filter, 0, tid, &entry) != OK) {
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        if (entry.count != 1) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CA_LOGNO(04022)
                          "transaction %s: cannot store the certificate: "
                          "%s entry matches %s under %s", tid,
                          entry.count ? "more than one" : "no",
                          filter, conf->base);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        dn = entry.dn;
        apr_table_set(r->notes, CA_LDAP_NOTE_DN, dn);
    }

    if (conf->cert_attr) {
        bv_cert.bv_val = (char *)cert;
        bv_cert.bv_len = cert_len;
        vals_cert[0] = &bv_cert;
        vals_cert[1] = NULL;
        mod_cert.mod_op = conf->store_mode | LDAP_MOD_BVALUES;
        mod_cert.mod_type = (char *)conf->cert_attr;
        mod_cert.mod_bvalues = vals_cert;
        mods[n++] = &mod_cert;
    }
    if (conf->p7_attr) {
        if ((status = ca_ldap_p7(r, x, &p7, &p7_len, tid)) != OK) {
            return status;
        }
        bv_p7.bv_val = (char *)p7;
        bv_p7.bv_len = p7_len;
        vals_p7[0] = &bv_p7;
        vals_p7[1] = NULL;
        mod_p7.mod_op = conf->store_mode | LDAP_MOD_BVALUES;
        mod_p7.mod_type = (char *)conf->p7_attr;
        mod_p7.mod_bvalues = vals_p7;
        mods[n++] = &mod_p7;
    }
    mods[n] = NULL;

    if (ca_ldap_modify(r, conf, dn, mods, tid) != OK) {
        /* the frontend then refuses to hand the certificate out */
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    serial = X509_get0_serialNumber(x);
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, CA_LOGNO(04023)
                  "transaction %s: stored certificate serial %s in %s "
                  "(%s%s%s, %s)", tid,
                  ca_hex(r->pool, serial->data, serial->length),
                  dn,
                  conf->cert_attr ? conf->cert_attr : "",
                  conf->cert_attr && conf->p7_attr ? " and " : "",
                  conf->p7_attr ? conf->p7_attr : "",
                  conf->store_mode == LDAP_MOD_ADD ? "added"
                                                   : "replacing the old");

    return OK;
}

static void ca_ldap_register_hooks(apr_pool_t *p)
{
    ap_hook_pre_config(ca_ldap_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(ca_ldap_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(ca_ldap_child_init, NULL, NULL, APR_HOOK_MIDDLE);

    APR_OPTIONAL_HOOK(ca, ca_reqauthz, ca_ldap_reqauthz, NULL, NULL,
                      APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ca, ca_certstore, ca_ldap_certstore, NULL, NULL,
                      APR_HOOK_MIDDLE);
}

AP_DECLARE_MODULE(ca_ldap) =
{
    STANDARD20_MODULE_STUFF,
    ca_ldap_create_dir_conf,    /* create per-directory config */
    ca_ldap_merge_dir_conf,     /* merge per-directory config */
    NULL,                       /* create per-server config */
    NULL,                       /* merge per-server config */
    ca_ldap_cmds,               /* command table */
    ca_ldap_register_hooks,     /* register hooks */
#if defined(AP_MODULE_HAS_FLAGS)
    0                           /* flags */
#endif
};
