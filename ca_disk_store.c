/* Licensed under the Apache License, Version 2.0 (see COPYING). */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <apr_errno.h>
#include <apr_file_info.h>
#include <apr_file_io.h>
#include <apr_strings.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "ca_util.h"
#include "ca_issue.h"
#include "ca_disk_store.h"

#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif
#ifndef O_NOFOLLOW
#define O_NOFOLLOW 0
#endif
#ifndef O_DIRECTORY
#define O_DIRECTORY 0
#endif

static void set_err(const char **err, const char *msg)
{
    if (err) {
        *err = msg;
    }
}

/* "cannot <what> <path>: <strerror>", and the errno as a status */
static apr_status_t sys_err(apr_pool_t *p, const char **err, int e,
                            const char *what, const char *path)
{
    char buf[120];

    if (err) {
        *err = apr_psprintf(p, "cannot %s %s: %s", what, path,
                            apr_strerror(APR_FROM_OS_ERROR(e), buf,
                                         sizeof(buf)));
    }

    return APR_FROM_OS_ERROR(e);
}

const char *ca_disk_sha256_hex(apr_pool_t *p, const void *data,
                               apr_size_t len)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;

    if (!EVP_Digest(data, len, md, &md_len, EVP_sha256(), NULL)) {
        ERR_clear_error();
        return NULL;
    }

    return ca_hex(p, md, md_len);
}

int ca_disk_is_hex(const char *s, apr_size_t n)
{
    apr_size_t i;

    for (i = 0; s[i]; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return 0;
        }
    }

    return n ? i == n : i > 0;
}

const char *ca_disk_request_path(apr_pool_t *p, const char *request_dir,
                                 const char *tid_hash)
{
    return apr_pstrcat(p, request_dir, "/", tid_hash, ".der", NULL);
}

const char *ca_disk_done_path(apr_pool_t *p, const char *request_dir,
                              const char *tid_hash)
{
    return apr_pstrcat(p, request_dir, "/" CA_DISK_DONE "/", tid_hash,
                       ".der", NULL);
}

const char *ca_disk_by_transaction_path(apr_pool_t *p, const char *cert_dir,
                                        const char *tid_hash)
{
    return apr_pstrcat(p, cert_dir, "/" CA_DISK_BY_TRANSACTION "/",
                       tid_hash, ".pem", NULL);
}

const char *ca_disk_by_serial_path(apr_pool_t *p, const char *cert_dir,
                                   const char *issuer_hash,
                                   const char *serial_hex)
{
    return apr_pstrcat(p, cert_dir, "/" CA_DISK_BY_SERIAL "/", issuer_hash,
                       "/", serial_hex, ".pem", NULL);
}

/* ---- directories ----------------------------------------------------- */

apr_status_t ca_disk_mkdir(apr_pool_t *p, const char *dir,
                           const ca_disk_owner *owner, const char **err)
{
    struct stat st;

    if (stat(dir, &st) != 0) {
        char *parent = apr_pstrdup(p, dir), *slash;
        apr_status_t rv;

        if (errno != ENOENT) {
            return sys_err(p, err, errno, "look at", dir);
        }
        /* the parents as "mkdir -p" makes them */
        while ((slash = strrchr(parent, '/')) && slash > parent
               && slash[1] == '\0') {
            *slash = '\0';
        }
        if ((slash = strrchr(parent, '/')) && slash > parent) {
            *slash = '\0';
            rv = apr_dir_make_recursive(parent, APR_FPROT_OS_DEFAULT, p);
            if (rv != APR_SUCCESS && !APR_STATUS_IS_EEXIST(rv)) {
                char buf[120];

                set_err(err, apr_psprintf(p, "cannot make the directory "
                                          "%s: %s", parent,
                                          apr_strerror(rv, buf,
                                                       sizeof(buf))));
                return rv;
            }
        }
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
            return sys_err(p, err, errno, "make the directory", dir);
        }
        if (stat(dir, &st) != 0) {
            return sys_err(p, err, errno, "look at", dir);
        }
    }
    if (!S_ISDIR(st.st_mode)) {
        set_err(err, apr_psprintf(p, "%s is not a directory", dir));
        return APR_ENOTDIR;
    }
    if (owner && (st.st_uid != owner->uid || st.st_gid != owner->gid)
        && chown(dir, owner->uid, owner->gid) != 0) {
        return sys_err(p, err, errno, "change the owner of", dir);
    }

    return APR_SUCCESS;
}

/* Make a name durable after link() or rename(); best effort, as not
 * every file system can sync a directory. */
static void fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

static const char *dir_of(apr_pool_t *p, const char *path)
{
    const char *slash = strrchr(path, '/');

    return slash ? apr_pstrmemdup(p, path, slash - path) : ".";
}

/* ---- reading --------------------------------------------------------- */

apr_status_t ca_disk_read(apr_pool_t *p, const char *path,
                          unsigned char **data, apr_size_t *len,
                          const char **err)
{
    struct stat st;
    unsigned char *buf;
    apr_size_t got = 0;
    int fd, e;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        e = errno;
        if (e == ENOENT) {
            set_err(err, apr_psprintf(p, "%s does not exist", path));
            return APR_ENOENT;
        }
        if (e == ELOOP) {
            set_err(err, apr_psprintf(p, "%s is a symbolic link", path));
            return APR_EINVAL;
        }
        return sys_err(p, err, e, "open", path);
    }
    if (fstat(fd, &st) != 0) {
        e = errno;
        close(fd);
        return sys_err(p, err, e, "look at", path);
    }
    if (!S_ISREG(st.st_mode) || st.st_size > CA_DISK_MAX_FILE) {
        close(fd);
        set_err(err, apr_psprintf(p, "%s is not a regular file of at most "
                                  "%d bytes", path, CA_DISK_MAX_FILE));
        return APR_EINVAL;
    }
    buf = apr_palloc(p, (apr_size_t)st.st_size + 1);
    while (got < (apr_size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (apr_size_t)st.st_size - got);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            e = errno;
            close(fd);
            return sys_err(p, err, e, "read", path);
        }
        if (n == 0) {
            break;
        }
        got += (apr_size_t)n;
    }
    close(fd);
    if (got != (apr_size_t)st.st_size || got == 0) {
        set_err(err, apr_psprintf(p, "%s is empty or shorter than its size",
                                  path));
        return APR_EINVAL;
    }
    buf[got] = '\0';
    *data = buf;
    *len = got;

    return APR_SUCCESS;
}

apr_status_t ca_disk_read_cert(apr_pool_t *p, const char *path, X509 **px,
                               const unsigned char **der, apr_size_t *len,
                               const char **err)
{
    unsigned char *data;
    apr_size_t data_len;
    apr_status_t rv;
    BIO *bio;
    X509 *x;

    if ((rv = ca_disk_read(p, path, &data, &data_len, err))
        != APR_SUCCESS) {
        return rv;
    }
    bio = BIO_new_mem_buf(data, (int)data_len);
    x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (!x) {
        const unsigned char *q = data;

        /* not PEM: perhaps DER dropped in by hand */
        ERR_clear_error();
        x = d2i_X509(NULL, &q, (long)data_len);
        if (x && q != data + data_len) {
            X509_free(x);
            x = NULL;
        }
    }
    if (!x) {
        set_err(err, apr_psprintf(p, "%s holds no certificate: %s", path,
                                  ca_openssl_errors(p)));
        return APR_EINVAL;
    }
    *px = ca_x509_own(p, x);
    if (der && ca_x509_der(p, x, der, len) != APR_SUCCESS) {
        set_err(err, apr_psprintf(p, "%s: cannot encode the certificate: "
                                  "%s", path, ca_openssl_errors(p)));
        return APR_EINVAL;
    }

    return APR_SUCCESS;
}

apr_status_t ca_disk_read_request(apr_pool_t *p, const char *path,
                                  X509_REQ **preq, const char **err)
{
    const unsigned char *q;
    unsigned char *data;
    apr_size_t len;
    apr_status_t rv;
    X509_REQ *req;

    if ((rv = ca_disk_read(p, path, &data, &len, err)) != APR_SUCCESS) {
        return rv;
    }
    q = data;
    req = d2i_X509_REQ(NULL, &q, (long)len);
    if (!req || q != data + len || !X509_REQ_get0_pubkey(req)) {
        X509_REQ_free(req);
        set_err(err, apr_psprintf(p, "%s holds no DER certificate request: "
                                  "%s", path, ca_openssl_errors(p)));
        return APR_EINVAL;
    }
    *preq = ca_req_own(p, req);

    return APR_SUCCESS;
}

/* ---- writing --------------------------------------------------------- */

static const char *tmp_name(apr_pool_t *p, const char *dir)
{
    unsigned char rnd[8];

    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        ERR_clear_error();
        return NULL;
    }

    return apr_psprintf(p, "%s/" CA_DISK_TMP_PREFIX "%ld.%s", dir,
                        (long)getpid(), ca_hex(p, rnd, sizeof(rnd)));
}

/* A new file in dir holding data, complete and on disk. */
static apr_status_t write_tmp(apr_pool_t *p, const char *dir,
                              const void *data, apr_size_t len,
                              const ca_disk_owner *owner,
                              const char **tmp, const char **err)
{
    const char *name = NULL;
    apr_size_t done = 0;
    int fd = -1, i, e;

    for (i = 0; i < 16 && fd < 0; i++) {
        if (!(name = tmp_name(p, dir))) {
            set_err(err, "cannot make a random file name");
            return APR_EGENERAL;
        }
        fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                  0600);
        if (fd < 0 && errno != EEXIST) {
            return sys_err(p, err, errno, "create", name);
        }
    }
    if (fd < 0) {
        return sys_err(p, err, EEXIST, "create a temporary file in", dir);
    }
    while (done < len) {
        ssize_t n = write(fd, (const char *)data + done, len - done);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            e = n < 0 ? errno : EIO;
            goto fail;
        }
        done += (apr_size_t)n;
    }
    if (owner && fchown(fd, owner->uid, owner->gid) != 0) {
        e = errno;
        goto fail;
    }
    if (fsync(fd) != 0) {
        e = errno;
        goto fail;
    }
    if (close(fd) != 0) {
        e = errno;
        fd = -1;
        goto fail;
    }
    *tmp = name;

    return APR_SUCCESS;

fail:
    if (fd >= 0) {
        close(fd);
    }
    unlink(name);

    return sys_err(p, err, e, "write", name);
}

/* link() is the create-if-absent; some file systems have no hard links */
static int link_unsupported(int e)
{
    return e == EPERM || e == ENOTSUP || e == EOPNOTSUPP || e == EXDEV
           || e == EMLINK || e == ENOSYS;
}

apr_status_t ca_disk_save_request(apr_pool_t *p, const char *request_dir,
                                  const char *tid_hash,
                                  const unsigned char *der, apr_size_t len,
                                  int replace, const ca_disk_owner *owner,
                                  const char **path, const char **err)
{
    const char *final = ca_disk_request_path(p, request_dir, tid_hash);
    const char *tmp = NULL;
    struct stat st;
    apr_status_t rv;
    int e;

    *path = final;
    /* the common case of a client sending its request again: write
     * nothing at all */
    if (!replace && lstat(final, &st) == 0) {
        return APR_EEXIST;
    }
    if ((rv = write_tmp(p, request_dir, der, len, owner, &tmp, err))
        != APR_SUCCESS) {
        return rv;
    }
    if (!replace && link(tmp, final) != 0) {
        e = errno;
        if (e == EEXIST) {
            /* another request of the same transaction won the race */
            unlink(tmp);
            return APR_EEXIST;
        }
        if (!link_unsupported(e)) {
            unlink(tmp);
            return sys_err(p, err, e, "link", final);
        }
        /* no hard links: a narrow race in which the later of two
         * identical writers replaces the earlier */
        if (lstat(final, &st) == 0) {
            unlink(tmp);
            return APR_EEXIST;
        }
        replace = 1;
    }
    if (replace) {
        if (rename(tmp, final) != 0) {
            e = errno;
            unlink(tmp);
            return sys_err(p, err, e, "rename to", final);
        }
    }
    else {
        unlink(tmp);
    }
    fsync_dir(request_dir);

    return APR_SUCCESS;
}

/* Whether path holds this certificate: APR_SUCCESS it does, APR_EEXIST
 * another one, APR_EINVAL a corrupt file, APR_ENOENT nothing. */
static apr_status_t holds_cert(apr_pool_t *p, const char *path,
                               const unsigned char *der, apr_size_t len)
{
    const unsigned char *have;
    apr_size_t have_len;
    apr_status_t rv;
    X509 *x;

    rv = ca_disk_read_cert(p, path, &x, &have, &have_len, NULL);
    if (rv == APR_SUCCESS) {
        return have_len == len && !memcmp(have, der, len) ? APR_SUCCESS
                                                          : APR_EEXIST;
    }

    return rv == APR_ENOENT ? APR_ENOENT : APR_EINVAL;
}

/* A second name for tmp in dir, for a rename() over the final name: a
 * hard link where possible, else a copy of data. */
static apr_status_t second_tmp(apr_pool_t *p, const char *tmp,
                               const char *dir, const void *data,
                               apr_size_t len, const ca_disk_owner *owner,
                               const char **tmp2, const char **err)
{
    int i;

    for (i = 0; i < 16; i++) {
        const char *name = tmp_name(p, dir);

        if (!name) {
            break;
        }
        if (link(tmp, name) == 0) {
            *tmp2 = name;
            return APR_SUCCESS;
        }
        if (errno != EEXIST) {
            if (link_unsupported(errno)) {
                break;
            }
            return sys_err(p, err, errno, "link", name);
        }
    }

    return write_tmp(p, dir, data, len, owner, tmp2, err);
}

apr_status_t ca_disk_store_cert(apr_pool_t *p, const char *cert_dir,
                                const char *tid_hash, X509 *x,
                                const ca_disk_owner *owner,
                                const char **path, const char **err)
{
    const unsigned char *der;
    const char *serial_hex, *by_serial, *serial_dir, *serial_path;
    const char *tid_dir, *tid_path, *tmp = NULL, *tmp2 = NULL;
    unsigned char *issuer = NULL;
    apr_size_t der_len;
    apr_status_t rv;
    char *pem;
    long pem_len;
    BIO *bio;
    int n, e;

    /* the names */
    if (ca_x509_der(p, x, &der, &der_len) != APR_SUCCESS
        || (n = i2d_X509_NAME(X509_get_issuer_name(x), &issuer)) <= 0
        || !(serial_hex = ca_issue_serial_hex(p, x))) {
        set_err(err, apr_pstrcat(p, "cannot encode the certificate: ",
                                 ca_openssl_errors(p), NULL));
        return APR_EINVAL;
    }
    by_serial = apr_pstrcat(p, cert_dir, "/" CA_DISK_BY_SERIAL, NULL);
    serial_dir = ca_disk_sha256_hex(p, issuer, (apr_size_t)n);
    OPENSSL_free(issuer);
    if (!serial_dir) {
        set_err(err, "cannot compute SHA-256");
        return APR_EGENERAL;
    }
    serial_dir = apr_pstrcat(p, by_serial, "/", serial_dir, NULL);
    serial_path = apr_pstrcat(p, serial_dir, "/", serial_hex, ".pem", NULL);
    *path = serial_path;

    /* the text */
    bio = BIO_new(BIO_s_mem());
    if (!bio || !PEM_write_bio_X509(bio, x)
        || (pem_len = BIO_get_mem_data(bio, &pem)) <= 0) {
        BIO_free(bio);
        set_err(err, apr_pstrcat(p, "cannot encode the certificate: ",
                                 ca_openssl_errors(p), NULL));
        return APR_EINVAL;
    }
    pem = apr_pstrmemdup(p, pem, (apr_size_t)pem_len);
    BIO_free(bio);

    if ((rv = ca_disk_mkdir(p, by_serial, owner, err)) != APR_SUCCESS
        || (rv = ca_disk_mkdir(p, serial_dir, owner, err))
           != APR_SUCCESS) {
        return rv;
    }
    if ((rv = write_tmp(p, serial_dir, pem, (apr_size_t)pem_len, owner,
                        &tmp, err)) != APR_SUCCESS) {
        return rv;
    }

    /* by serial: create if absent; a serial is never given twice */
    if (link(tmp, serial_path) != 0) {
        e = errno;
        if (e != EEXIST && !link_unsupported(e)) {
            unlink(tmp);
            return sys_err(p, err, e, "link", serial_path);
        }
        rv = holds_cert(p, serial_path, der, der_len);
        if (rv == APR_EEXIST) {
            unlink(tmp);
            set_err(err, apr_psprintf(p, "%s holds another certificate "
                                      "with the serial number %s of the "
                                      "same issuer", serial_path,
                                      serial_hex));
            return APR_EEXIST;
        }
        if (rv != APR_SUCCESS) {
            /* absent (no hard links here) or corrupt: put ours there */
            if ((rv = second_tmp(p, tmp, serial_dir, pem,
                                 (apr_size_t)pem_len, owner, &tmp2, err))
                != APR_SUCCESS) {
                unlink(tmp);
                return rv;
            }
            if (rename(tmp2, serial_path) != 0) {
                e = errno;
                unlink(tmp2);
                unlink(tmp);
                return sys_err(p, err, e, "rename to", serial_path);
            }
        }
    }
    fsync_dir(serial_dir);

    /* by transaction: the newest certificate replaces an older one */
    if (tid_hash) {
        tid_dir = apr_pstrcat(p, cert_dir, "/" CA_DISK_BY_TRANSACTION, NULL);
        tid_path = ca_disk_by_transaction_path(p, cert_dir, tid_hash);
        if ((rv = ca_disk_mkdir(p, tid_dir, owner, err)) != APR_SUCCESS) {
            unlink(tmp);
            return rv;
        }
        if (holds_cert(p, tid_path, der, der_len) != APR_SUCCESS) {
            if ((rv = second_tmp(p, tmp, tid_dir, pem, (apr_size_t)pem_len,
                                 owner, &tmp2, err)) != APR_SUCCESS) {
                unlink(tmp);
                return rv;
            }
            if (rename(tmp2, tid_path) != 0) {
                e = errno;
                unlink(tmp2);
                unlink(tmp);
                return sys_err(p, err, e, "rename to", tid_path);
            }
            fsync_dir(tid_dir);
        }
    }
    unlink(tmp);

    return APR_SUCCESS;
}

apr_status_t ca_disk_request_done(apr_pool_t *p, const char *request_dir,
                                  const char *tid_hash,
                                  const ca_disk_owner *owner,
                                  const char **err)
{
    const char *from = ca_disk_request_path(p, request_dir, tid_hash);
    const char *to = ca_disk_done_path(p, request_dir, tid_hash);
    apr_status_t rv;

    if ((rv = ca_disk_mkdir(p, dir_of(p, to), owner, err)) != APR_SUCCESS) {
        return rv;
    }
    if (rename(from, to) != 0) {
        if (errno == ENOENT) {
            set_err(err, apr_psprintf(p, "%s does not exist", from));
            return APR_ENOENT;
        }
        return sys_err(p, err, errno, "rename to", to);
    }
    fsync_dir(request_dir);

    return APR_SUCCESS;
}

/* ---- clearing up ----------------------------------------------------- */

int ca_disk_sweep(apr_pool_t *p, const char *dir, int recurse)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int removed = 0;

    if (!d) {
        return 0;
    }
    while ((e = readdir(d))) {
        const char *name = e->d_name;

        if (!strncmp(name, CA_DISK_TMP_PREFIX,
                     sizeof(CA_DISK_TMP_PREFIX) - 1)) {
            char *end;
            long pid = strtol(name + sizeof(CA_DISK_TMP_PREFIX) - 1, &end,
                              10);

            /* only when the writer is known to be gone */
            if (pid > 0 && *end == '.' && kill((pid_t)pid, 0) != 0
                && errno == ESRCH
                && unlink(apr_pstrcat(p, dir, "/", name, NULL)) == 0) {
                removed++;
            }
        }
        else if (recurse && name[0] != '.') {
            const char *sub = apr_pstrcat(p, dir, "/", name, NULL);
            struct stat st;

            if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode)) {
                removed += ca_disk_sweep(p, sub, 0);
            }
        }
    }
    closedir(d);

    return removed;
}
