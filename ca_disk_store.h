/* Licensed under the Apache License, Version 2.0 (see COPYING). */

/*
 * ca_disk_store: the on-disk layout of mod_ca_disk, shared by the module
 * and by tools/ca-disk-sign so that both read and write exactly the same
 * files.  POSIX, APR and OpenSSL only, no httpd.
 *
 *   REQUEST_DIR/<T>.der                 a pending request (DER PKCS#10)
 *   REQUEST_DIR/done/<T>.der            a request after it was signed
 *   CERT_DIR/by-transaction/<T>.pem     the certificate of a transaction
 *   CERT_DIR/by-serial/<I>/<S>.pem      the same certificate by issuer and
 *                                       serial (a hard link where the file
 *                                       system allows, else a copy)
 *
 *   T  lower-case hex SHA-256 of the transactionID as the client sent it
 *   I  lower-case hex SHA-256 of the DER of the issuer name
 *   S  lower-case hex of the serial number, whole bytes without leading
 *      zero bytes, as BN_bn2hex() prints it (ca_issue_serial_hex())
 *
 * Every file is written to a fresh ".tmp.<pid>.<random>" name in the
 * directory it ends up in (O_CREAT|O_EXCL, mode 0600), written whole,
 * fsync()ed and then given its name with link() (create if absent: of two
 * writers exactly one wins) or rename() (replace); the directory is
 * fsync()ed after.  A reader therefore sees a complete file or none.  A
 * process killed half-way leaves at most a ".tmp." file, which no lookup
 * ever opens and which ca_disk_sweep() removes once its process is gone.
 *
 * Functions return apr_status_t: APR_ENOENT when a file is absent,
 * APR_EINVAL when one is there but is not what it should be (too large,
 * not a regular file, does not parse), the errno of a failed system call
 * otherwise; *err, when err is not NULL, then says why.
 */

#ifndef CA_DISK_STORE_H
#define CA_DISK_STORE_H

#include <sys/types.h>

#include <apr_pools.h>
#include <openssl/x509.h>

#define CA_DISK_BY_TRANSACTION  "by-transaction"
#define CA_DISK_BY_SERIAL       "by-serial"
#define CA_DISK_DONE            "done"
#define CA_DISK_TMP_PREFIX      ".tmp."

/* Files larger than this are corrupt: a request or a certificate is a few
 * kilobytes. */
#define CA_DISK_MAX_FILE        (256 * 1024)

/* Who new files and directories are given to (root running the tool on
 * behalf of httpd's User); NULL: leave them to the writing process. */
typedef struct ca_disk_owner {
    uid_t uid;
    gid_t gid;
} ca_disk_owner;

/* Lower-case hex SHA-256; NULL only when OpenSSL cannot compute one. */
const char *ca_disk_sha256_hex(apr_pool_t *p, const void *data,
                               apr_size_t len);

/* Whether s is exactly n lower-case hex digits (n 0: any length >= 1). */
int ca_disk_is_hex(const char *s, apr_size_t n);

/* The file names of the layout above. */
const char *ca_disk_request_path(apr_pool_t *p, const char *request_dir,
                                 const char *tid_hash);
const char *ca_disk_done_path(apr_pool_t *p, const char *request_dir,
                              const char *tid_hash);
const char *ca_disk_by_transaction_path(apr_pool_t *p, const char *cert_dir,
                                        const char *tid_hash);
const char *ca_disk_by_serial_path(apr_pool_t *p, const char *cert_dir,
                                   const char *issuer_hash,
                                   const char *serial_hex);

/*
 * Make a directory (and any missing parents, those with the default mode)
 * with mode 0700, and give it to owner when owner is not NULL.  An
 * existing directory keeps its mode but is given to owner all the same.
 * APR_ENOTDIR when the name is taken by something else.
 */
apr_status_t ca_disk_mkdir(apr_pool_t *p, const char *dir,
                           const ca_disk_owner *owner, const char **err);

/* Read a whole file of at most CA_DISK_MAX_FILE bytes, never following a
 * symbolic link. */
apr_status_t ca_disk_read(apr_pool_t *p, const char *path,
                          unsigned char **data, apr_size_t *len,
                          const char **err);

/* Read a certificate (PEM) or a request (DER); both owned by the pool.
 * der may be NULL. */
apr_status_t ca_disk_read_cert(apr_pool_t *p, const char *path, X509 **px,
                               const unsigned char **der, apr_size_t *len,
                               const char **err);
apr_status_t ca_disk_read_request(apr_pool_t *p, const char *path,
                                  X509_REQ **preq, const char **err);

/*
 * Save a request as pending unless one is pending for the transaction
 * already: APR_SUCCESS when this call saved it, APR_EEXIST when a request
 * was there (it is left untouched; the caller compares).  With replace
 * set the file is replaced whatever is there (for a corrupt one).
 * *path is the request's file name either way.
 */
apr_status_t ca_disk_save_request(apr_pool_t *p, const char *request_dir,
                                  const char *tid_hash,
                                  const unsigned char *der, apr_size_t len,
                                  int replace, const ca_disk_owner *owner,
                                  const char **path, const char **err);

/*
 * Store a certificate under its issuer and serial and, when tid_hash is
 * not NULL, under its transaction (replacing an earlier certificate of
 * the transaction: the newest is the one the client has).  Storing the
 * same certificate again changes nothing.  APR_EEXIST, and nothing
 * stored, when another certificate with the same issuer and serial is
 * stored already: a serial number never repeats.  *path is the by-serial
 * file name.
 */
apr_status_t ca_disk_store_cert(apr_pool_t *p, const char *cert_dir,
                                const char *tid_hash, X509 *x,
                                const ca_disk_owner *owner,
                                const char **path, const char **err);

/* Move a signed request to REQUEST_DIR/done (replacing an older one). */
apr_status_t ca_disk_request_done(apr_pool_t *p, const char *request_dir,
                                  const char *tid_hash,
                                  const ca_disk_owner *owner,
                                  const char **err);

/*
 * Remove the ".tmp." files left in dir by processes that no longer exist
 * (killed while writing).  Files of live processes, and of processes the
 * caller may not signal, are left alone.  With recurse, the directories
 * one level below dir are swept too (CERT_DIR/by-serial/<I>).  Returns
 * the number of files removed.
 */
int ca_disk_sweep(apr_pool_t *p, const char *dir, int recurse);

#endif /* CA_DISK_STORE_H */
