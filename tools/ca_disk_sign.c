/* Licensed under the Apache License, Version 2.0 (see COPYING). */

/*
 * ca-disk-sign: approve requests that mod_ca_disk saved for later.
 *
 *   ca-disk-sign -c CA.pem -k CA.key -r REQUEST_DIR -o CERT_DIR
 *                [-d DAYS] [-e 'NAME VALUE']... (REQUEST... | --all)
 *   ca-disk-sign -r REQUEST_DIR [-o CERT_DIR] --list
 *
 * Each request is signed with the same code mod_ca_simple signs with
 * (ca_issue.c): a random 20-byte serial, notBefore now, DAYS of validity
 * capped at the CA's notAfter, the extensions given or mod_ca_simple's
 * defaults, and the request's subjectAltName.  The certificate is written
 * where mod_ca_disk looks for it (by transaction and by issuer and serial,
 * ca_disk_store.c), then the request moves to REQUEST_DIR/done.  One line
 * per request on stdout; errors on stderr.  Exit 0 when every request was
 * signed (or had been already), 1 when any failed, 2 on a usage error.
 *
 * Run as root or as the User httpd runs as; as root, new files and
 * directories are given to the owner of the directory they are made in,
 * which httpd set to its User at start-up.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_getopt.h>
#include <apr_strings.h>
#include <apr_tables.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ca_util.h"
#include "ca_issue.h"
#include "ca_disk_store.h"
#include "cli.h"

#define PROG "ca-disk-sign"

#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif
#ifndef O_NOFOLLOW
#define O_NOFOLLOW 0
#endif

/* What the operator asked for, and what it was turned into. */
typedef struct {
    const char *ca_file;
    const char *key_file;
    const char *request_dir;
    const char *cert_dir;
    int days;
    apr_array_header_t *exts;           /* ca_issue_ext; NULL: defaults */
    int all;
    int list;

    X509 *ca;
    EVP_PKEY *key;
    ca_disk_owner cert_owner, req_owner;
    const ca_disk_owner *cert_own, *req_own;
} sign_opts_t;

static void usage(FILE *f)
{
    fprintf(f,
"usage: " PROG " -c CA.pem -k CA.key -r REQUEST_DIR -o CERT_DIR\n"
"                    [-d DAYS] [-e 'NAME VALUE']... (REQUEST... | --all)\n"
"       " PROG " -r REQUEST_DIR [-o CERT_DIR] --list\n"
"\n"
"Sign requests that mod_ca_disk saved in CADiskRequestDirectory, write the\n"
"certificates where mod_ca_disk finds them (CADiskCertificateDirectory),\n"
"and move each signed request to REQUEST_DIR/done.\n"
"\n"
"  -c, --ca FILE          CA certificate (PEM or DER), as CASimpleCertificate\n"
"  -k, --key FILE         its unencrypted private key, as CASimpleKey\n"
"  -r, --requests DIR     the CADiskRequestDirectory\n"
"  -o, --certs DIR        the CADiskCertificateDirectory\n"
"  -d, --days N           validity in days, 1-%d (default %d), never past\n"
"                         the CA certificate's notAfter\n"
"  -e, --extension 'NAME VALUE'\n"
"                         an extension in OpenSSL syntax, as\n"
"                         CASimpleExtension; repeatable; replaces the\n"
"                         default set (client certificate)\n"
"  -a, --all              every pending request\n"
"  -l, --list             list the pending requests, sign nothing\n"
"  -h, --help             this text\n"
"\n"
"REQUEST: a pending request file (REQUEST_DIR/<sha256>.der), by path, by\n"
"name, or by the SHA-256 of the transaction ID alone.\n"
"\n"
"Prints one line per request: the file, the serial number (hex), the\n"
"subject and the end of validity.  Exit status: 0 all signed, 1 something\n"
"failed (reason on stderr), 2 usage error.\n",
            CA_ISSUE_DAYS_MAX, CA_ISSUE_DAYS_DEFAULT);
}

/* ---- options --------------------------------------------------------- */

static void add_extension(apr_pool_t *p, sign_opts_t *o, const char *arg)
{
    const char *err = NULL;
    const ca_issue_ext *dup;
    ca_issue_ext ext;
    char *name = apr_pstrdup(p, arg), *value;

    /* "NAME VALUE": the value may hold spaces of its own */
    value = name + strcspn(name, " \t");
    if (!*value) {
        cli_die_usage("--extension wants 'NAME VALUE', not '%s'", arg);
    }
    *value++ = '\0';
    value += strspn(value, " \t");
    if (!*name || !*value) {
        cli_die_usage("--extension wants 'NAME VALUE', not '%s'", arg);
    }
    if (ca_issue_ext_parse(p, name, value, &ext, &err) != APR_SUCCESS) {
        cli_die("--extension %s", err);
    }
    if (!o->exts) {
        o->exts = apr_array_make(p, 5, sizeof(ca_issue_ext));
    }
    if ((dup = ca_issue_ext_find(o->exts, ext.oid))) {
        cli_die("--extension %s: given twice (as %s)", name, dup->name);
    }
    APR_ARRAY_PUSH(o->exts, ca_issue_ext) = ext;
}

static void parse_days(sign_opts_t *o, const char *arg)
{
    char *end;
    long days;

    errno = 0;
    days = strtol(arg, &end, 10);
    if (errno || end == arg || *end || days < 1
        || days > CA_ISSUE_DAYS_MAX) {
        cli_die_usage("--days must be a number of days from 1 to %d, not '%s'",
                  CA_ISSUE_DAYS_MAX, arg);
    }
    o->days = (int)days;
}

/* The directory, which httpd made; as root, new files go to its owner. */
static const char *existing_dir(apr_pool_t *p, const char *opt,
                                const char *dir, ca_disk_owner *owner,
                                const ca_disk_owner **own)
{
    struct stat st;
    char *d = apr_pstrdup(p, dir);
    apr_size_t len = strlen(d);

    while (len > 1 && d[len - 1] == '/') {
        d[--len] = '\0';
    }
    if (stat(d, &st) != 0 || !S_ISDIR(st.st_mode)) {
        cli_die("%s %s: not a directory (httpd makes it at start-up)", opt, d);
    }
    if (geteuid() == 0) {
        owner->uid = st.st_uid;
        owner->gid = st.st_gid;
        *own = owner;
    }

    return d;
}

/* Load the CA and check it as mod_ca_simple does at start-up. */
static void load_ca(apr_pool_t *p, sign_opts_t *o)
{
    const ca_issue_ext *exts, *bad;
    const char *err = NULL;
    int n;

    if (ca_load_cert(p, o->ca_file, &o->ca, &err) != APR_SUCCESS) {
        cli_die("--ca %s", err);
    }
    if (ca_load_key(p, o->key_file, &o->key, &err) != APR_SUCCESS) {
        cli_die("--key %s", err);
    }
    if (X509_check_private_key(o->ca, o->key) != 1) {
        cli_die("--key %s does not match --ca %s", o->key_file, o->ca_file);
    }
    if (!ca_issue_can_sign_certs(o->ca)) {
        cli_die("--ca %s is not a CA certificate that may sign certificates "
            "(it needs basicConstraints CA:TRUE and, if it has a keyUsage, "
            "keyCertSign)", o->ca_file);
    }
    if (ca_issue_ca_expired(o->ca, apr_time_now())) {
        cli_die("--ca %s has expired", o->ca_file);
    }
    if (o->exts) {
        exts = (const ca_issue_ext *)o->exts->elts;
        n = o->exts->nelts;
    }
    else {
        exts = ca_issue_default_exts(&n);
    }
    if (ca_issue_exts_try(p, o->ca, exts, n, &bad, &err) != APR_SUCCESS) {
        cli_die("extension %s %s cannot be built with --ca %s: %s",
            bad ? bad->name : "?", bad ? bad->value : "?", o->ca_file, err);
    }
    ERR_clear_error();
}

/* ---- requests -------------------------------------------------------- */

/* "<64 lower-case hex digits>.der" */
static int is_request_name(const char *name)
{
    int i;

    if (strlen(name) != 64 + 4 || strcmp(name + 64, ".der")) {
        return 0;
    }
    for (i = 0; i < 64; i++) {
        if (!((name[i] >= '0' && name[i] <= '9')
              || (name[i] >= 'a' && name[i] <= 'f'))) {
            return 0;
        }
    }

    return 1;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The transaction hashes of every pending request, sorted. */
static apr_array_header_t *pending(apr_pool_t *p, const char *request_dir)
{
    apr_array_header_t *names = apr_array_make(p, 16, sizeof(const char *));
    struct dirent *e;
    DIR *d = opendir(request_dir);

    if (!d) {
        cli_die("cannot read the directory %s: %s", request_dir,
            strerror(errno));
    }
    while ((e = readdir(d))) {
        if (is_request_name(e->d_name)) {
            APR_ARRAY_PUSH(names, const char *) =
                apr_pstrmemdup(p, e->d_name, 64);
        }
    }
    closedir(d);
    qsort(names->elts, names->nelts, sizeof(const char *), cmp_names);

    return names;
}

/* A request named on the command line, as its transaction hash. */
static const char *request_arg(apr_pool_t *p, const sign_opts_t *o,
                               const char *arg)
{
    const char *base = strrchr(arg, '/');
    char *hash;

    if (base) {
        /* a path: it must be in REQUEST_DIR, not a copy elsewhere */
        const char *dir = apr_pstrmemdup(p, arg, base - arg);
        struct stat a, b;

        if (stat(*dir ? dir : "/", &a) != 0 || stat(o->request_dir, &b) != 0
            || a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
            cli_warn("%s is not in --requests %s", arg, o->request_dir);
            return NULL;
        }
        base++;
    }
    else {
        base = arg;
    }
    hash = apr_pstrdup(p, base);
    if (strlen(hash) == 68 && !strcmp(hash + 64, ".der")) {
        hash[64] = '\0';
    }
    if (!ca_disk_is_hex(hash, 64)) {
        cli_warn("%s is not a request file name (<sha256 hex>.der)", arg);
        return NULL;
    }

    return hash;
}

static void list_one(apr_pool_t *p, const sign_opts_t *o, const char *hash)
{
    const char *path = ca_disk_request_path(p, o->request_dir, hash);
    const char *err = NULL, *issued = "";
    X509_REQ *req;
    X509 *x;

    if (ca_disk_read_request(p, path, &req, &err) != APR_SUCCESS) {
        printf("%s.der  (unreadable: %s)\n", hash, err);
        ERR_clear_error();
        return;
    }
    if (o->cert_dir
        && ca_disk_read_cert(p, ca_disk_by_transaction_path(p, o->cert_dir,
                                                            hash),
                             &x, NULL, NULL, NULL) == APR_SUCCESS) {
        issued = apr_psprintf(p, "  (issued already, serial %s)",
                              ca_issue_serial_hex(p, x));
    }
    ERR_clear_error();
    printf("%s.der  %s%s\n", hash,
           ca_issue_name_text(p, X509_REQ_get_subject_name(req)), issued);
}

/* Sign one request; 1 done, 0 failed (said why). */
static int sign_one(apr_pool_t *p, const sign_opts_t *o, const char *hash)
{
    const char *path = ca_disk_request_path(p, o->request_dir, hash);
    const char *err = NULL, *stored = NULL;
    const unsigned char *der;
    apr_size_t der_len;
    struct stat held, now;
    ca_issue_params ip;
    apr_status_t rv;
    X509_REQ *req;
    X509 *x;
    int fd, capped = 0, tries;

    /* one approver per request: a second one running now skips it */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        cli_warn("%s: %s", path, errno == ENOENT ? "no such pending request"
                                             : strerror(errno));
        return 0;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        cli_warn("%s: being signed by another " PROG " (%s)", path,
             strerror(errno));
        close(fd);
        return 0;
    }
    if (fstat(fd, &held) != 0 || stat(path, &now) != 0
        || held.st_ino != now.st_ino || held.st_dev != now.st_dev) {
        cli_warn("%s: handled by another " PROG " just now", path);
        close(fd);
        return 0;
    }

    if (ca_disk_read_request(p, path, &req, &err) != APR_SUCCESS) {
        cli_warn("%s; not signed", err);
        close(fd);
        return 0;
    }

    /* a run that died after writing the certificate */
    if (ca_disk_read_cert(p, ca_disk_by_transaction_path(p, o->cert_dir,
                                                         hash),
                          &x, NULL, NULL, NULL) == APR_SUCCESS) {
        if (EVP_PKEY_eq(X509_get0_pubkey(x), X509_REQ_get0_pubkey(req))
            != 1) {
            ERR_clear_error();
            cli_warn("%s: the certificate of this transaction (serial %s) is "
                 "for another key; not signed", path,
                 ca_issue_serial_hex(p, x));
            close(fd);
            return 0;
        }
        if (ca_disk_request_done(p, o->request_dir, hash, o->req_own, &err)
            != APR_SUCCESS) {
            cli_warn("%s", err);
            close(fd);
            return 0;
        }
        printf("%s.der: issued already, serial %s, subject %s\n", hash,
               ca_issue_serial_hex(p, x),
               ca_issue_name_text(p, X509_get_subject_name(x)));
        close(fd);
        return 1;
    }
    ERR_clear_error();

    memset(&ip, 0, sizeof(ip));
    ip.ca = o->ca;
    ip.key = o->key;
    ip.days = o->days;
    ip.not_before = apr_time_now();
    if (o->exts) {
        ip.exts = (const ca_issue_ext *)o->exts->elts;
        ip.n_exts = o->exts->nelts;
    }
    /* a serial that is taken already (never expected with 158 random
     * bits) is not used twice: draw another */
    for (tries = 0; tries < 3; tries++) {
        if (ca_issue_random_serial(p, &ip.serial, &ip.serial_len, &err)
            != APR_SUCCESS) {
            cli_warn("%s: cannot make a serial number: %s", path, err);
            close(fd);
            return 0;
        }
        if (ca_issue_certificate(p, &ip, req, &x, &der, &der_len, &capped,
                                 &err) != APR_SUCCESS) {
            cli_warn("%s: %s; not signed", path, err);
            close(fd);
            return 0;
        }
        rv = ca_disk_store_cert(p, o->cert_dir, hash, x, o->cert_own,
                                &stored, &err);
        if (rv != APR_EEXIST) {
            break;
        }
        cli_warn("%s", err);
    }
    if (rv != APR_SUCCESS) {
        cli_warn("%s: the certificate could not be stored: %s", path, err);
        close(fd);
        return 0;
    }
    if (ca_disk_request_done(p, o->request_dir, hash, o->req_own, &err)
        != APR_SUCCESS) {
        /* issued and visible; only the clearing up failed */
        cli_warn("%s: issued, but %s", path, err);
    }
    printf("%s.der: issued serial %s, subject %s, valid until %s%s\n", hash,
           ca_issue_serial_hex(p, x),
           ca_issue_name_text(p, X509_get_subject_name(x)),
           ca_issue_time_text(p, X509_get0_notAfter(x)),
           capped ? " (capped at the CA's notAfter)" : "");
    close(fd);

    return 1;
}

int main(int argc, const char *const *argv)
{
    static const apr_getopt_option_t opts[] = {
        { "ca",         'c', 1, "CA certificate" },
        { "key",        'k', 1, "CA private key" },
        { "requests",   'r', 1, "CADiskRequestDirectory" },
        { "certs",      'o', 1, "CADiskCertificateDirectory" },
        { "days",       'd', 1, "validity in days" },
        { "extension",  'e', 1, "extension 'NAME VALUE'" },
        { "all",        'a', 0, "every pending request" },
        { "list",       'l', 0, "list pending requests" },
        { "help",       'h', 0, "help" },
        { NULL, 0, 0, NULL }
    };
    apr_array_header_t *hashes;
    sign_opts_t o;
    apr_getopt_t *g;
    apr_pool_t *p;
    apr_status_t rv;
    const char *arg;
    int opt, i, failed = 0;

    cli_init(PROG, usage);
    apr_app_initialize(&argc, &argv, NULL);
    atexit(apr_terminate);
    apr_pool_create(&p, NULL);

    memset(&o, 0, sizeof(o));
    o.days = CA_ISSUE_DAYS_DEFAULT;
    apr_getopt_init(&g, p, argc, argv);
    while ((rv = apr_getopt_long(g, opts, &opt, &arg)) == APR_SUCCESS) {
        switch (opt) {
        case 'c': o.ca_file = arg; break;
        case 'k': o.key_file = arg; break;
        case 'r': o.request_dir = arg; break;
        case 'o': o.cert_dir = arg; break;
        case 'd': parse_days(&o, arg); break;
        case 'e': add_extension(p, &o, arg); break;
        case 'a': o.all = 1; break;
        case 'l': o.list = 1; break;
        case 'h': usage(stdout); return 0;
        }
    }
    if (rv != APR_EOF) {
        cli_die_usage("bad option");
    }
    if (!o.request_dir) {
        cli_die_usage("--requests is required");
    }
    o.request_dir = existing_dir(p, "--requests", o.request_dir,
                                 &o.req_owner, &o.req_own);
    if (o.cert_dir) {
        o.cert_dir = existing_dir(p, "--certs", o.cert_dir, &o.cert_owner,
                                  &o.cert_own);
    }

    if (o.list) {
        if (g->ind < argc || o.all) {
            cli_die_usage("--list takes no requests and no --all");
        }
        hashes = pending(p, o.request_dir);
        for (i = 0; i < hashes->nelts; i++) {
            list_one(p, &o, APR_ARRAY_IDX(hashes, i, const char *));
        }
        return 0;
    }

    if (!o.ca_file || !o.key_file || !o.cert_dir) {
        cli_die_usage("signing needs --ca, --key and --certs");
    }
    if (o.all == (g->ind < argc)) {
        cli_die_usage("name the requests to sign, or give --all");
    }
    load_ca(p, &o);

    /* what killed runs left behind */
    ca_disk_sweep(p, o.request_dir, 0);
    ca_disk_sweep(p, apr_pstrcat(p, o.cert_dir, "/" CA_DISK_BY_TRANSACTION,
                                 NULL), 0);
    ca_disk_sweep(p, apr_pstrcat(p, o.cert_dir, "/" CA_DISK_BY_SERIAL, NULL),
                  1);

    if (o.all) {
        hashes = pending(p, o.request_dir);
        if (!hashes->nelts) {
            printf("no requests pending in %s\n", o.request_dir);
        }
    }
    else {
        hashes = apr_array_make(p, argc - g->ind, sizeof(const char *));
        for (i = g->ind; i < argc; i++) {
            const char *hash = request_arg(p, &o, argv[i]);

            if (!hash) {
                failed = 1;
                continue;
            }
            APR_ARRAY_PUSH(hashes, const char *) = hash;
        }
    }
    for (i = 0; i < hashes->nelts; i++) {
        apr_pool_t *sub;

        apr_pool_create(&sub, p);
        if (!sign_one(sub, &o, APR_ARRAY_IDX(hashes, i, const char *))) {
            failed = 1;
        }
        fflush(stdout);
        apr_pool_destroy(sub);
    }
    fflush(stdout);
    apr_pool_destroy(p);

    return failed;
}
