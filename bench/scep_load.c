/* Licensed under the Apache License, Version 2.0 (see COPYING). */

/*
 * scep-load: a load generator for SCEP servers, for the benchmark and the
 * soak test in bench/.  Not a test client: it builds its requests up front
 * (the expensive part, RSA signatures by the clients) and then only moves
 * bytes, so that its own share of the machine stays small.
 *
 *   scep-load keys   --cache DIR --count K
 *   scep-load enroll --port P --ra RA.pem --ca CA.pem --cache DIR -n N -c C
 *   scep-load get    --port P --path '/scep?operation=GetCACert' -d SECONDS
 *   scep-load soak   --port P --ra RA.pem --ca CA.pem --ca-key CA.key
 *                    --cache DIR -n N -c C
 *
 * Options: --port (the server on 127.0.0.1; nothing else is ever
 * contacted), --path (default /scep), --cache DIR (client keys, made there
 * once when missing), --keys K (how many of them to use, default 256),
 * --ra (the certificate requests are encrypted to; for enroll also the one
 * that must sign the answers unless --signer is given), --ca (the issuer
 * the certificates are verified against), --ca-key (soak: to make renewal
 * signers), -n/--requests, --distinct (build this many and cycle them),
 * --warmup (requests sent before the clock starts), -c/--concurrency
 * (connections), -t/--threads (event loops), -d/--duration (get: seconds
 * instead of -n), --verify S (answers opened and checked in full),
 * --cipher des|des3|aes128|aes192|aes256, --digest (sha256 ...),
 * --form post|get|chunked, --tag (subject prefix, keep runs apart),
 * --timeout SECONDS (per request), --server-pids "PID ..." (their CPU
 * time is reported), --expect FILE (get: the body every answer must have
 * the length of), --seed (soak: the order of the classes).
 *
 * It only ever connects to 127.0.0.1.  HTTP/1.1 with keep-alive, an epoll
 * loop per thread.  Results are "key=value" lines on stdout; progress and
 * errors go to stderr.  Exit 0 when the run went as it should (for soak:
 * no 5xx, no unexpected answer, no connection error), 1 otherwise, 2 on a
 * usage error.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <apr_general.h>
#include <apr_getopt.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca_util.h"
#include "scep_msg.h"
#include "tools/cli.h"

#define PROG "scep-load"

/* ---- small helpers ---------------------------------------------------- */

static void die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, PROG ": ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void note(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, PROG ": ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (!p) {
        die("out of memory (%zu bytes)", n);
    }
    return p;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);

    if (!p) {
        die("out of memory (%zu x %zu bytes)", n, size);
    }
    return p;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6
           + (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* utime + stime of a process, in seconds (0 when it cannot be read). */
static double proc_cpu_s(long pid)
{
    char path[64], buf[1024], *c;
    unsigned long ut = 0, st = 0;
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    if (!(f = fopen(path, "r"))) {
        return 0;
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* the command name may hold spaces: fields start after the last ')' */
    if (!(c = strrchr(buf, ')'))
        || sscanf(c + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                  &ut, &st) != 2) {
        return 0;
    }
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double pids_cpu_s(const long *pids, int n)
{
    double t = 0;
    int i;

    for (i = 0; i < n; i++) {
        t += proc_cpu_s(pids[i]);
    }
    return t;
}

static const char *hex(char *out, const unsigned char *b, size_t n)
{
    static const char digits[] = "0123456789ABCDEF";
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
    return out;
}

static unsigned char *read_whole(const char *file, size_t *len)
{
    FILE *f = fopen(file, "rb");
    unsigned char *buf;
    struct stat st;

    if (!f || fstat(fileno(f), &st) != 0) {
        die("cannot read '%s': %s", file, strerror(errno));
    }
    buf = xmalloc((size_t)st.st_size + 1);
    if (fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        die("cannot read '%s'", file);
    }
    fclose(f);
    *len = (size_t)st.st_size;
    return buf;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* ---- the key pool ----------------------------------------------------- */

/*
 * RSA-2048 key generation is slow (tens per second per core), so the
 * clients' keys are made once into a cache directory and reused: every
 * request still gets a subject, a transactionID and a nonce of its own.
 * Each cache file holds a key and a self-signed signer certificate for it
 * (what a first-time SCEP client signs its request with).
 */
typedef struct {
    EVP_PKEY *key;
    X509 *cert;
} pool_key;

static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer,
                       EVP_PKEY *issuer_key, int ca)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    BIGNUM *bn = BN_new();
    X509V3_CTX v3;
    X509_EXTENSION *ext;
    int ok;

    ok = x && name && bn
         && X509_set_version(x, X509_VERSION_3)
         && BN_rand(bn, 63, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY)
         && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x))
         && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                       (const unsigned char *)cn, -1, -1, 0)
         && X509_set_subject_name(x, name)
         && X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer)
                                           : name)
         && X509_gmtime_adj(X509_getm_notBefore(x), -3600)
         && X509_gmtime_adj(X509_getm_notAfter(x), 3L * 365 * 86400)
         && X509_set_pubkey(x, key);
    X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
    if (ok) {
        ext = X509V3_EXT_conf_nid(NULL, &v3, NID_key_usage, ca
                                  ? "critical,keyCertSign,cRLSign,"
                                    "digitalSignature"
                                  : "critical,digitalSignature,"
                                    "keyEncipherment");
        ok = ext && X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    if (ok && ca) {
        ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
                                  "critical,CA:TRUE");
        ok = ext && X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    ok = ok && X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0;
    BN_free(bn);
    X509_NAME_free(name);
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

typedef struct {
    const char *dir;
    int count;
    atomic_int next;
    atomic_int made;
} keygen_job;

static void *keygen_thread(void *arg)
{
    keygen_job *job = arg;
    int i;

    while ((i = atomic_fetch_add(&job->next, 1)) < job->count) {
        char file[4096], tmp[4200], cn[64];
        struct stat st;
        EVP_PKEY *k;
        X509 *x;
        FILE *f;

        snprintf(file, sizeof(file), "%s/key-%05d.pem", job->dir, i);
        if (stat(file, &st) == 0) {
            continue;
        }
        snprintf(cn, sizeof(cn), "scep-load signer %05d", i);
        k = EVP_RSA_gen(2048);
        x = k ? make_cert(k, cn, NULL, NULL, 0) : NULL;
        if (!x) {
            die("cannot make key %d: %s", i,
                ERR_error_string(ERR_get_error(), NULL));
        }
        snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", file, (long)getpid());
        if (!(f = fopen(tmp, "w"))) {
            die("cannot write '%s': %s", tmp, strerror(errno));
        }
        fchmod(fileno(f), 0600);
        if (!PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL)
            || !PEM_write_X509(f, x) || fclose(f) != 0
            || rename(tmp, file) != 0) {
            die("cannot write '%s'", file);
        }
        EVP_PKEY_free(k);
        X509_free(x);
        atomic_fetch_add(&job->made, 1);
    }
    return NULL;
}

static int ncpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    return n > 0 ? (int)n : 1;
}

static void make_keys(const char *dir, int count, int threads)
{
    keygen_job job;
    pthread_t *t;
    double t0 = now_s();
    int i;

    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        die("cannot create '%s': %s", dir, strerror(errno));
    }
    job.dir = dir;
    job.count = count;
    atomic_init(&job.next, 0);
    atomic_init(&job.made, 0);
    t = xcalloc((size_t)threads, sizeof(*t));
    for (i = 0; i < threads; i++) {
        pthread_create(&t[i], NULL, keygen_thread, &job);
    }
    for (i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
    }
    free(t);
    if (atomic_load(&job.made)) {
        note("made %d RSA-2048 client keys in %s (%.1f s)",
             atomic_load(&job.made), dir, now_s() - t0);
    }
}

/* Up to count keys from the cache, making what is missing first. */
static pool_key *load_pool(const char *dir, int count, int *got)
{
    pool_key *pool = xcalloc((size_t)count, sizeof(*pool));
    int i;

    make_keys(dir, count, ncpus());
    for (i = 0; i < count; i++) {
        char file[4096];
        FILE *f;

        snprintf(file, sizeof(file), "%s/key-%05d.pem", dir, i);
        if (!(f = fopen(file, "r"))) {
            die("cannot read '%s': %s", file, strerror(errno));
        }
        pool[i].key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        pool[i].cert = PEM_read_X509(f, NULL, NULL, NULL);
        fclose(f);
        if (!pool[i].key || !pool[i].cert
            || X509_check_private_key(pool[i].cert, pool[i].key) != 1) {
            die("'%s' does not hold a key and its certificate (remove it)",
                file);
        }
    }
    *got = count;
    return pool;
}

/* ---- building requests ------------------------------------------------ */

enum content_kind {
    CONTENT_CSR, CONTENT_NONE, CONTENT_RAW, CONTENT_IAS, CONTENT_IASUBJ
};

/* What one pkiMessage is made of. */
typedef struct {
    int type;
    const EVP_CIPHER *cipher;
    const EVP_MD *md;           /* outer signature */
    X509 *signer;
    EVP_PKEY *signer_key;
    EVP_PKEY *csr_key;          /* the key certified */
    const char *cn;             /* CSR subject CN */
    int content;                /* content_kind */
    const unsigned char *raw;   /* CONTENT_RAW */
    size_t raw_len;
    X509 *ias_issuer;           /* CONTENT_IAS / CONTENT_IASUBJ */
    STACK_OF(X509) *recipients;
    int bad_signature;
    int bad_csr_signature;
    int no_transaction_id;
} msg_spec;

/* Flip one bit in the middle of the first copy of needle in buf. */
static int flip_inside(unsigned char *buf, size_t len,
                       const unsigned char *needle, size_t nlen)
{
    size_t i;

    for (i = 0; nlen && i + nlen <= len; i++) {
        if (!memcmp(buf + i, needle, nlen)) {
            buf[i + nlen / 2] ^= 0x01;
            return 1;
        }
    }
    return 0;
}

static int make_csr(apr_pool_t *p, EVP_PKEY *key, const char *cn, int bad,
                    const unsigned char **der, apr_size_t *len)
{
    X509_REQ *req = ca_req_own(p, X509_REQ_new());
    X509_NAME *name = X509_NAME_new();
    int ok;

    ok = req && name
         && X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                       (const unsigned char *)"scep-load",
                                       -1, -1, 0)
         && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                       (const unsigned char *)cn, -1, -1, 0)
         && X509_REQ_set_version(req, 0)
         && X509_REQ_set_subject_name(req, name)
         && X509_REQ_set_pubkey(req, key)
         && X509_REQ_sign(req, key, EVP_sha256()) > 0
         && ca_req_der(p, req, der, len) == APR_SUCCESS;
    X509_NAME_free(name);
    if (ok && bad) {
        const ASN1_BIT_STRING *sig;

        X509_REQ_get0_signature(req, &sig, NULL);
        ok = flip_inside((unsigned char *)*der, *len, sig->data,
                         (size_t)sig->length);
    }
    return ok;
}

static int make_ias(apr_pool_t *p, X509 *issuer, const unsigned char **der,
                    apr_size_t *len)
{
    PKCS7_ISSUER_AND_SERIAL *ias = PKCS7_ISSUER_AND_SERIAL_new();
    unsigned char serial[12], *buf = NULL;
    BIGNUM *bn;
    int n = 0;

    RAND_bytes(serial, sizeof(serial));
    serial[0] &= 0x7f;
    bn = BN_bin2bn(serial, sizeof(serial), NULL);
    if (ias && bn && X509_NAME_set(&ias->issuer,
                                   X509_get_subject_name(issuer))
        && BN_to_ASN1_INTEGER(bn, ias->serial)) {
        n = i2d_PKCS7_ISSUER_AND_SERIAL(ias, &buf);
    }
    BN_free(bn);
    PKCS7_ISSUER_AND_SERIAL_free(ias);
    if (n <= 0) {
        return 0;
    }
    *der = apr_pmemdup(p, buf, (apr_size_t)n);
    *len = (apr_size_t)n;
    OPENSSL_free(buf);
    return 1;
}

/* IssuerAndSubject ::= SEQUENCE { issuer Name, subject Name } */
static int make_iasubj(apr_pool_t *p, X509 *issuer, const char *cn,
                       const unsigned char **der, apr_size_t *len)
{
    unsigned char *i = NULL, *s = NULL, *buf;
    X509_NAME *name = X509_NAME_new();
    int ni, ns, n;
    size_t hl;

    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                               (const unsigned char *)cn, -1, -1, 0);
    ni = i2d_X509_NAME(X509_get_subject_name(issuer), &i);
    ns = i2d_X509_NAME(name, &s);
    X509_NAME_free(name);
    if (ni <= 0 || ns <= 0) {
        return 0;
    }
    n = ni + ns;
    buf = apr_palloc(p, (apr_size_t)n + 4);
    buf[0] = 0x30;
    if (n < 128) {
        buf[1] = (unsigned char)n;
        hl = 2;
    }
    else if (n < 256) {
        buf[1] = 0x81;
        buf[2] = (unsigned char)n;
        hl = 3;
    }
    else {
        buf[1] = 0x82;
        buf[2] = (unsigned char)(n >> 8);
        buf[3] = (unsigned char)n;
        hl = 4;
    }
    memcpy(buf + hl, i, (size_t)ni);
    memcpy(buf + hl + ni, s, (size_t)ns);
    OPENSSL_free(i);
    OPENSSL_free(s);
    *der = buf;
    *len = hl + (size_t)n;
    return 1;
}

/* A pkiMessage as DER, its senderNonce and transactionID. */
static int build_message(apr_pool_t *p, const msg_spec *s,
                         const unsigned char **der, apr_size_t *len,
                         unsigned char nonce[SCEP_NONCE_LEN], char *tid)
{
    const unsigned char *content = NULL;
    apr_size_t content_len = 0;
    unsigned char r[16];
    const char *err = NULL;
    scep_build_t b;

    switch (s->content) {
    case CONTENT_CSR:
        if (!make_csr(p, s->csr_key, s->cn, s->bad_csr_signature, &content,
                      &content_len)) {
            return 0;
        }
        break;
    case CONTENT_RAW:
        content = s->raw;
        content_len = s->raw_len;
        break;
    case CONTENT_IAS:
        if (!make_ias(p, s->ias_issuer, &content, &content_len)) {
            return 0;
        }
        break;
    case CONTENT_IASUBJ:
        if (!make_iasubj(p, s->ias_issuer, s->cn, &content, &content_len)) {
            return 0;
        }
        break;
    default:
        break;
    }
    RAND_bytes(nonce, SCEP_NONCE_LEN);
    RAND_bytes(r, sizeof(r));
    hex(tid, r, sizeof(r));

    memset(&b, 0, sizeof(b));
    b.message_type = s->type;
    b.transaction_id = s->no_transaction_id ? NULL : tid;
    b.sender_nonce = nonce;
    b.pki_status = SCEP_STATUS_NONE;
    b.fail_info = SCEP_FAIL_NONE;
    b.content = content;
    b.content_len = content_len;
    b.recipients = s->recipients;
    b.cipher = s->cipher;
    b.signer = s->signer;
    b.signer_key = s->signer_key;
    b.md = s->md;
    if (scep_msg_build(p, &b, der, len, &err) != APR_SUCCESS) {
        note("cannot build a pkiMessage: %s", err);
        return 0;
    }
    if (s->bad_signature) {
        const unsigned char *q = *der;
        PKCS7 *p7 = d2i_PKCS7(NULL, &q, (long)*len);
        PKCS7_SIGNER_INFO *si = p7 ? sk_PKCS7_SIGNER_INFO_value(
                                         PKCS7_get_signer_info(p7), 0)
                                   : NULL;
        unsigned char *copy = apr_pmemdup(p, *der, *len);
        int ok = si && flip_inside(copy, *len, si->enc_digest->data,
                                   (size_t)si->enc_digest->length);

        PKCS7_free(p7);
        if (!ok) {
            return 0;
        }
        *der = copy;
    }
    return 1;
}

/* ---- HTTP requests on the wire ---------------------------------------- */

enum wire_form {
    WIRE_POST, WIRE_POST_CHUNKED, WIRE_GET, WIRE_POST_ABORT
};

/* One request, ready to send, and what is needed to check its answer. */
typedef struct {
    unsigned char *wire;
    size_t wire_len;
    int head;                   /* HEAD: no body in the answer */
    int abort;                  /* close after sending, expect nothing */
    int cls;                    /* soak: its class */
    unsigned char nonce[SCEP_NONCE_LEN];
    char tid[33];
    char cn[64];
    int pki;                    /* a pkiMessage was sent */
    X509 *signer;               /* to open the answer's envelope */
    EVP_PKEY *signer_key;
    EVP_PKEY *csr_key;          /* the key the issued certificate carries */
} wire_req;

static int g_port;
static const char *g_path = "/scep";

static char *b64_query(const unsigned char *der, size_t len)
{
    size_t n = 4 * ((len + 2) / 3), i, o = 0;
    unsigned char *b = xmalloc(n + 1);
    char *out = xmalloc(3 * n + 1);

    EVP_EncodeBlock(b, der, (int)len);
    for (i = 0; i < n; i++) {
        switch (b[i]) {
        case '+':
            memcpy(out + o, "%2B", 3);
            o += 3;
            break;
        case '/':
            memcpy(out + o, "%2F", 3);
            o += 3;
            break;
        case '=':
            memcpy(out + o, "%3D", 3);
            o += 3;
            break;
        default:
            out[o++] = (char)b[i];
        }
    }
    out[o] = '\0';
    free(b);
    return out;
}

static void set_wire(wire_req *w, const char *head, const unsigned char *body,
                     size_t body_len)
{
    size_t hl = strlen(head);

    w->wire = xmalloc(hl + body_len);
    memcpy(w->wire, head, hl);
    if (body_len) {
        memcpy(w->wire + hl, body, body_len);
    }
    w->wire_len = hl + body_len;
}

/* A PKIOperation in one of the wire forms. */
static void wire_pki(wire_req *w, int form, const unsigned char *der,
                     size_t len)
{
    char head[1024];

    switch (form) {
    case WIRE_GET: {
        char *q = b64_query(der, len);
        size_t n = strlen(q) + strlen(g_path) + 256;
        char *h = xmalloc(n);

        snprintf(h, n, "GET %s?operation=PKIOperation&message=%s HTTP/1.1\r\n"
                 "Host: 127.0.0.1:%d\r\n\r\n", g_path, q, g_port);
        set_wire(w, h, NULL, 0);
        free(h);
        free(q);
        return;
    }
    case WIRE_POST_CHUNKED: {
        size_t half = len / 2;
        char c1[32], c2[32];
        unsigned char *b = xmalloc(len + 64);
        size_t o = 0;

        snprintf(head, sizeof(head), "POST %s?operation=PKIOperation "
                 "HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: "
                 "application/x-pki-message\r\nTransfer-Encoding: chunked"
                 "\r\n\r\n", g_path, g_port);
        snprintf(c1, sizeof(c1), "%zx\r\n", half);
        snprintf(c2, sizeof(c2), "\r\n%zx\r\n", len - half);
        memcpy(b + o, c1, strlen(c1));
        o += strlen(c1);
        memcpy(b + o, der, half);
        o += half;
        memcpy(b + o, c2, strlen(c2));
        o += strlen(c2);
        memcpy(b + o, der + half, len - half);
        o += len - half;
        memcpy(b + o, "\r\n0\r\n\r\n", 7);
        o += 7;
        set_wire(w, head, b, o);
        free(b);
        return;
    }
    case WIRE_POST_ABORT:
        /* the whole length announced, half of it sent, then closed */
        snprintf(head, sizeof(head), "POST %s?operation=PKIOperation "
                 "HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: "
                 "application/x-pki-message\r\nContent-Length: %zu\r\n\r\n",
                 g_path, g_port, len);
        set_wire(w, head, der, len / 2);
        w->abort = 1;
        return;
    default:
        snprintf(head, sizeof(head), "POST %s?operation=PKIOperation "
                 "HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: "
                 "application/x-pki-message\r\nContent-Length: %zu\r\n\r\n",
                 g_path, g_port, len);
        set_wire(w, head, der, len);
        return;
    }
}

/* Any other request: METHOD TARGET, an optional body. */
static void wire_plain(wire_req *w, const char *method, const char *target,
                       const unsigned char *body, size_t body_len)
{
    char head[4096];

    if (body) {
        snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                 "Content-Type: application/x-pki-message\r\n"
                 "Content-Length: %zu\r\n\r\n", method, target, g_port,
                 body_len);
    }
    else {
        snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d"
                 "\r\n\r\n", method, target, g_port);
    }
    set_wire(w, head, body, body_len);
    w->head = !strcmp(method, "HEAD");
}

/* ---- the load engine --------------------------------------------------- */

#define ST_ABORTED      0       /* closed by us on purpose, no answer */
#define ST_CONN_ERROR   (-1)    /* refused, reset, closed before the answer */
#define ST_TIMEOUT      (-2)
#define ST_BAD_HTTP     (-3)    /* not a parseable HTTP answer */

typedef struct {
    float lat_ms;
    int32_t status;
    uint32_t body_len;
} result;

typedef struct {
    wire_req *reqs;
    const int *order;           /* index into reqs, or NULL: i % nreqs */
    long nreqs;
    long base, end;             /* the slice of results run now */
    result *res;
    unsigned char **bodies;     /* kept answers, or NULL */
    atomic_long next;
    double stop_at;             /* 0: until end */
    double timeout;
    int conc, threads;
    atomic_long completed;
    atomic_long retries;
} load_run;

enum { C_IDLE, C_CONNECTING, C_WRITING, C_READING, C_DONE };

typedef struct {
    int fd;
    int state;
    long idx;
    const wire_req *req;
    size_t woff;
    unsigned char *rbuf;
    size_t rlen, rcap;
    size_t hdr_end;             /* 0 until the header is in */
    int status;
    long clen;                  /* -1 unknown */
    int chunked, close;
    int reused, retried;
    double t0;
} conn;

typedef struct {
    load_run *run;
    int nconn;
    int ep;
    conn *conns;
    int active;
} worker;

static const wire_req *req_of(load_run *r, long i)
{
    long k = r->order ? r->order[i] : i % r->nreqs;

    return &r->reqs[k];
}

static void ep_set(worker *w, conn *c, uint32_t events, int add)
{
    struct epoll_event ev;

    ev.events = events;
    ev.data.ptr = c;
    if (epoll_ctl(w->ep, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c->fd, &ev)
        != 0) {
        die("epoll_ctl: %s", strerror(errno));
    }
}

static void conn_close(worker *w, conn *c)
{
    if (c->fd >= 0) {
        epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
    c->reused = 0;
}

static int conn_open(worker *w, conn *c)
{
    struct sockaddr_in sa;
    int one = 1;

    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        return 0;
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)g_port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);   /* never anything else */
    c->reused = 0;
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0
        && errno != EINPROGRESS) {
        close(c->fd);
        c->fd = -1;
        return 0;
    }
    c->state = C_CONNECTING;
    ep_set(w, c, EPOLLOUT, 1);
    return 1;
}

static void conn_next(worker *w, conn *c);

static void conn_record(worker *w, conn *c, int status, const unsigned char *body,
                        size_t body_len)
{
    load_run *r = w->run;
    result *res = &r->res[c->idx];

    res->lat_ms = (float)((now_s() - c->t0) * 1000.0);
    res->status = status;
    res->body_len = (uint32_t)body_len;
    if (r->bodies && body && body_len) {
        r->bodies[c->idx] = xmalloc(body_len);
        memcpy(r->bodies[c->idx], body, body_len);
    }
    atomic_fetch_add(&r->completed, 1);
}

static void conn_fail(worker *w, conn *c, int status)
{
    conn_record(w, c, status, NULL, 0);
    conn_close(w, c);
    conn_next(w, c);
}

static void conn_write(worker *w, conn *c);

/* Start (or restart, on a fresh connection) the current request. */
static void conn_start(worker *w, conn *c)
{
    c->woff = 0;
    c->rlen = 0;
    c->hdr_end = 0;
    c->status = 0;
    c->clen = -1;
    c->chunked = 0;
    c->close = 0;
    if (c->fd < 0) {
        if (!conn_open(w, c)) {
            /* recorded now, the next request is started by the loop (no
             * recursion through a server that refuses everything) */
            conn_record(w, c, ST_CONN_ERROR, NULL, 0);
            c->state = C_IDLE;
        }
        return;
    }
    c->state = C_WRITING;
    ep_set(w, c, EPOLLOUT, 0);
    conn_write(w, c);
}

static void conn_next(worker *w, conn *c)
{
    load_run *r = w->run;
    long i;

    if (r->stop_at && now_s() >= r->stop_at) {
        i = r->end;
    }
    else {
        i = atomic_fetch_add(&r->next, 1);
    }
    if (i >= r->end) {
        conn_close(w, c);
        c->state = C_DONE;
        w->active--;
        return;
    }
    c->idx = i;
    c->req = req_of(r, i);
    c->retried = 0;
    c->t0 = now_s();
    conn_start(w, c);
}

/* A stale keep-alive connection closed under us: once more, afresh. */
static int conn_retry(worker *w, conn *c)
{
    if (!c->reused || c->retried || c->rlen) {
        return 0;
    }
    c->retried = 1;
    atomic_fetch_add(&w->run->retries, 1);
    conn_close(w, c);
    conn_start(w, c);
    return 1;
}

static void conn_write(worker *w, conn *c)
{
    const wire_req *q = c->req;

    while (c->woff < q->wire_len) {
        ssize_t n = send(c->fd, q->wire + c->woff, q->wire_len - c->woff,
                         MSG_NOSIGNAL);

        if (n > 0) {
            c->woff += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            return;             /* EPOLLOUT brings us back */
        }
        if (conn_retry(w, c)) {
            return;
        }
        /* the server may have answered early (413) and closed: read */
        c->state = C_READING;
        ep_set(w, c, EPOLLIN, 0);
        return;
    }
    if (q->abort) {
        conn_record(w, c, ST_ABORTED, NULL, 0);
        conn_close(w, c);
        conn_next(w, c);
        return;
    }
    c->state = C_READING;
    ep_set(w, c, EPOLLIN, 0);
}

static long find_crlf(const unsigned char *b, size_t from, size_t len)
{
    const unsigned char *e = memmem(b + from, len - from, "\r\n", 2);

    return e ? (long)(e - b) : -1;
}

/*
 * Whether the chunked body from off is complete; if out is given, the
 * decoded body is written there.  1 complete, 0 more needed, -1 garbage.
 */
static int dechunk(const unsigned char *b, size_t off, size_t len,
                   unsigned char *out, size_t *out_len)
{
    size_t o = 0;

    for (;;) {
        long e = find_crlf(b, off, len);
        char tmp[20];
        size_t sz, sl;
        char *end;

        if (e < 0) {
            return len - off > 64 ? -1 : 0;
        }
        sl = (size_t)e - off;
        if (sl == 0 || sl >= sizeof(tmp)) {
            return -1;
        }
        memcpy(tmp, b + off, sl);
        tmp[sl] = '\0';
        sz = strtoul(tmp, &end, 16);
        if (end == tmp || (*end && *end != ';')) {
            return -1;
        }
        off = (size_t)e + 2;
        if (sz == 0) {
            /* trailers, then an empty line */
            for (;;) {
                e = find_crlf(b, off, len);
                if (e < 0) {
                    return 0;
                }
                if ((size_t)e == off) {
                    if (out_len) {
                        *out_len = o;
                    }
                    return 1;
                }
                off = (size_t)e + 2;
            }
        }
        if (len < off + sz + 2) {
            return 0;
        }
        if (out) {
            memcpy(out + o, b + off, sz);
        }
        o += sz;
        off += sz + 2;
    }
}

static int header_is(const char *line, size_t n, const char *name)
{
    size_t k = strlen(name);

    return n > k && !strncasecmp(line, name, k) && line[k] == ':';
}

static int value_has(const char *v, size_t n, const char *word)
{
    size_t k = strlen(word), i;

    for (i = 0; i + k <= n; i++) {
        if (!strncasecmp(v + i, word, k)) {
            return 1;
        }
    }
    return 0;
}

/* Parse what has arrived: 1 a whole answer, 0 more needed, -1 garbage. */
static int conn_parse(conn *c)
{
    if (!c->hdr_end) {
        const unsigned char *e = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
        const char *line, *end;

        if (!e) {
            return c->rlen > 65536 ? -1 : 0;
        }
        c->hdr_end = (size_t)(e - c->rbuf) + 4;
        if (c->rlen < 12 || memcmp(c->rbuf, "HTTP/1.", 7)) {
            return -1;
        }
        c->status = atoi((const char *)c->rbuf + 9);
        if (c->rbuf[7] == '0') {
            c->close = 1;
        }
        line = (const char *)c->rbuf;
        end = (const char *)c->rbuf + c->hdr_end - 2;
        while (line < end) {
            const char *nl = memmem(line, (size_t)(end - line), "\r\n", 2);
            size_t n = nl ? (size_t)(nl - line) : (size_t)(end - line);

            if (header_is(line, n, "Content-Length")) {
                c->clen = strtol(line + 15, NULL, 10);
            }
            else if (header_is(line, n, "Transfer-Encoding")) {
                c->chunked = value_has(line, n, "chunked");
            }
            else if (header_is(line, n, "Connection")) {
                if (value_has(line, n, "close")) {
                    c->close = 1;
                }
            }
            line += n + 2;
        }
        if (c->req->head || c->status == 204 || c->status == 304) {
            c->clen = 0;
            c->chunked = 0;
        }
        if (c->status >= 100 && c->status < 200) {
            /* an interim answer: drop it, wait for the real one */
            memmove(c->rbuf, c->rbuf + c->hdr_end, c->rlen - c->hdr_end);
            c->rlen -= c->hdr_end;
            c->hdr_end = 0;
            c->clen = -1;
            return conn_parse(c);
        }
    }
    if (c->chunked) {
        return dechunk(c->rbuf, c->hdr_end, c->rlen, NULL, NULL);
    }
    if (c->clen >= 0) {
        return c->rlen - c->hdr_end >= (size_t)c->clen;
    }
    return 0;                   /* until the server closes */
}

static void conn_done(worker *w, conn *c)
{
    if (c->chunked) {
        unsigned char *out = xmalloc(c->rlen);
        size_t n = 0;

        dechunk(c->rbuf, c->hdr_end, c->rlen, out, &n);
        conn_record(w, c, c->status, out, n);
        free(out);
    }
    else {
        size_t n = c->clen >= 0 ? (size_t)c->clen : c->rlen - c->hdr_end;

        conn_record(w, c, c->status, c->rbuf + c->hdr_end, n);
    }
    if (c->close) {
        conn_close(w, c);
    }
    else {
        c->reused = 1;
    }
    conn_next(w, c);
}

static void conn_read(worker *w, conn *c)
{
    for (;;) {
        ssize_t n;
        int rv;

        if (c->rcap - c->rlen < 16384) {
            c->rcap = c->rcap ? c->rcap * 2 : 65536;
            c->rbuf = realloc(c->rbuf, c->rcap);
            if (!c->rbuf) {
                die("out of memory");
            }
        }
        n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
        if (n > 0) {
            c->rlen += (size_t)n;
            rv = conn_parse(c);
            if (rv < 0) {
                conn_fail(w, c, ST_BAD_HTTP);
                return;
            }
            if (rv > 0) {
                conn_done(w, c);
                return;
            }
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            return;
        }
        /* closed (or reset) */
        if (c->hdr_end && !c->chunked && c->clen < 0) {
            conn_done(w, c);    /* an answer delimited by the close */
            return;
        }
        if (conn_retry(w, c)) {
            return;
        }
        conn_fail(w, c, ST_CONN_ERROR);
        return;
    }
}

static void conn_event(worker *w, conn *c, uint32_t ev)
{
    switch (c->state) {
    case C_CONNECTING: {
        int err = 0;
        socklen_t l = sizeof(err);

        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err) {
            conn_fail(w, c, ST_CONN_ERROR);
            return;
        }
        c->state = C_WRITING;
        conn_write(w, c);
        return;
    }
    case C_WRITING:
        conn_write(w, c);
        return;
    case C_READING:
        conn_read(w, c);
        return;
    default:
        (void)ev;
        return;
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    struct epoll_event evs[64];
    double last = now_s();
    int i;

    w->ep = epoll_create1(EPOLL_CLOEXEC);
    if (w->ep < 0) {
        die("epoll_create1: %s", strerror(errno));
    }
    w->active = w->nconn;
    for (i = 0; i < w->nconn; i++) {
        w->conns[i].fd = -1;
        conn_next(w, &w->conns[i]);
    }
    while (w->active > 0) {
        int idle = 0, n;
        double t;

        for (i = 0; i < w->nconn; i++) {
            idle |= w->conns[i].state == C_IDLE;
        }
        n = epoll_wait(w->ep, evs, 64, idle ? 0 : 100);

        for (i = 0; i < n; i++) {
            conn_event(w, evs[i].data.ptr, evs[i].events);
        }
        for (i = 0; i < w->nconn; i++) {
            if (w->conns[i].state == C_IDLE) {
                conn_next(w, &w->conns[i]);
            }
        }
        t = now_s();
        if (t - last > 0.1) {
            last = t;
            for (i = 0; i < w->nconn; i++) {
                conn *c = &w->conns[i];

                if (c->state != C_DONE && c->state != C_IDLE
                    && t - c->t0 > w->run->timeout) {
                    conn_fail(w, c, ST_TIMEOUT);
                }
            }
        }
    }
    for (i = 0; i < w->nconn; i++) {
        free(w->conns[i].rbuf);
    }
    close(w->ep);
    return NULL;
}

/* Send requests base..end-1 (or until stop_at); returns the wall time. */
static double run_load(load_run *r)
{
    pthread_t *t = xcalloc((size_t)r->threads, sizeof(*t));
    worker *w = xcalloc((size_t)r->threads, sizeof(*w));
    double t0;
    int i, left = r->conc;

    atomic_init(&r->next, r->base);
    atomic_init(&r->completed, 0);
    atomic_init(&r->retries, 0);
    t0 = now_s();
    for (i = 0; i < r->threads; i++) {
        w[i].run = r;
        w[i].nconn = left / (r->threads - i);
        left -= w[i].nconn;
        w[i].conns = xcalloc((size_t)w[i].nconn, sizeof(conn));
        pthread_create(&t[i], NULL, worker_main, &w[i]);
    }
    for (i = 0; i < r->threads; i++) {
        pthread_join(t[i], NULL);
        free(w[i].conns);
    }
    free(t);
    free(w);
    return now_s() - t0;
}

/* ---- reporting --------------------------------------------------------- */

static void report_latency(const char *prefix, const result *res, long from,
                           long to)
{
    double *lat = xmalloc(sizeof(double) * (size_t)(to - from + 1));
    long i, n = 0;

    for (i = from; i < to; i++) {
        if (res[i].status > 0) {
            lat[n++] = res[i].lat_ms;
        }
    }
    if (n) {
        qsort(lat, (size_t)n, sizeof(double), cmp_double);
        printf("%slat_p50_ms=%.2f\n", prefix, lat[(long)(n * 0.50)]);
        printf("%slat_p90_ms=%.2f\n", prefix, lat[(long)(n * 0.90)]);
        printf("%slat_p99_ms=%.2f\n", prefix, lat[(long)(n * 0.99)]);
        printf("%slat_p999_ms=%.2f\n", prefix, lat[(long)(n * 0.999)]);
        printf("%slat_max_ms=%.2f\n", prefix, lat[n - 1]);
    }
    free(lat);
}

typedef struct {
    long s2xx, s3xx, s4xx, s5xx, other, conn_err, timeout, bad_http,
         aborted;
} http_tally;

static void tally(http_tally *t, int status)
{
    if (status >= 200 && status < 300) {
        t->s2xx++;
    }
    else if (status >= 300 && status < 400) {
        t->s3xx++;
    }
    else if (status >= 400 && status < 500) {
        t->s4xx++;
    }
    else if (status >= 500) {
        t->s5xx++;
    }
    else if (status == ST_CONN_ERROR) {
        t->conn_err++;
    }
    else if (status == ST_TIMEOUT) {
        t->timeout++;
    }
    else if (status == ST_BAD_HTTP) {
        t->bad_http++;
    }
    else if (status == ST_ABORTED) {
        t->aborted++;
    }
    else {
        t->other++;
    }
}

static void print_tally(const http_tally *t)
{
    printf("http_2xx=%ld\nhttp_3xx=%ld\nhttp_4xx=%ld\nhttp_5xx=%ld\n"
           "conn_errors=%ld\ntimeouts=%ld\nbad_http=%ld\n", t->s2xx, t->s3xx,
           t->s4xx, t->s5xx, t->conn_err, t->timeout, t->bad_http);
}

/* ---- checking CertReps ------------------------------------------------- */

typedef struct {
    X509 *expect_signer;        /* who must have signed every CertRep */
    X509_STORE *store;          /* the CA, to verify issued certificates */
} checker;

enum {
    R_NOT_PKI = -10, R_BAD_SIG, R_WRONG_SIGNER, R_WRONG_TID, R_WRONG_NONCE,
    R_NOT_CERTREP
};

/*
 * The pkiStatus of an answer after the checks every CertRep must pass
 * (signature, RA, transactionID, recipientNonce), or an R_* code.  With
 * full set, a SUCCESS is opened and its certificate checked too: *why
 * says what failed (NULL when all held).
 */
static int check_certrep(apr_pool_t *p, const checker *ck, const wire_req *q,
                         const unsigned char *body, size_t len, int full,
                         int *fail_info, int *cipher, const char **why)
{
    scep_msg_t *msg;
    const char *err = NULL;
    const unsigned char *data;
    apr_size_t dlen;
    STACK_OF(X509) *certs;
    X509 *x;
    X509_STORE_CTX *ctx;
    char cn[128];
    int ok;

    *why = NULL;
    if (!body || scep_msg_parse(p, body, len, &msg, &err) != APR_SUCCESS) {
        *why = err ? err : "no body";
        return R_NOT_PKI;
    }
    *fail_info = msg->fail_info;
    *cipher = msg->cipher_nid;
    if (!msg->signature_ok) {
        *why = msg->signature_error;
        return R_BAD_SIG;
    }
    if (ck->expect_signer && X509_cmp(msg->signer, ck->expect_signer)) {
        *why = "signed by another certificate than the RA";
        return R_WRONG_SIGNER;
    }
    if (msg->message_type != SCEP_MSG_CERTREP) {
        *why = "not a CertRep";
        return R_NOT_CERTREP;
    }
    if (!msg->transaction_id || strcmp(msg->transaction_id, q->tid)) {
        *why = "transactionID differs from the request's";
        return R_WRONG_TID;
    }
    if (!msg->recipient_nonce || msg->recipient_nonce_len != SCEP_NONCE_LEN
        || memcmp(msg->recipient_nonce, q->nonce, SCEP_NONCE_LEN)) {
        *why = "recipientNonce is not the request's senderNonce";
        return R_WRONG_NONCE;
    }
    if (!full || msg->pki_status != SCEP_STATUS_SUCCESS) {
        return msg->pki_status;
    }

    /* open the envelope with the key that signed the request */
    if (scep_msg_decrypt(p, msg, q->signer, q->signer_key, &data, &dlen,
                         &err) != APR_SUCCESS) {
        *why = apr_pstrcat(p, "cannot open the envelope: ", err, NULL);
        return msg->pki_status;
    }
    if (!(certs = ca_p7_certs_parse(p, data, dlen))
        || sk_X509_num(certs) < 1) {
        *why = "the envelope holds no certificates";
        return msg->pki_status;
    }
    x = sk_X509_value(certs, 0);
    if (EVP_PKEY_eq(X509_get0_pubkey(x), q->csr_key) != 1) {
        *why = "the certificate does not carry the requested key";
        return msg->pki_status;
    }
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName,
                                  cn, sizeof(cn)) < 0 || strcmp(cn, q->cn)) {
        *why = apr_psprintf(p, "the certificate's CN is not '%s'", q->cn);
        return msg->pki_status;
    }
    ctx = X509_STORE_CTX_new();
    ok = ctx && X509_STORE_CTX_init(ctx, ck->store, x, certs)
         && X509_verify_cert(ctx) == 1;
    if (!ok) {
        *why = apr_pstrcat(p, "the certificate does not verify against the "
                           "CA: ", ctx ? X509_verify_cert_error_string(
                                             X509_STORE_CTX_get_error(ctx))
                                       : "?", NULL);
    }
    X509_STORE_CTX_free(ctx);
    ERR_clear_error();
    return msg->pki_status;
}

static X509_STORE *ca_store(X509 *ca)
{
    X509_STORE *st = X509_STORE_new();

    if (!st || !X509_STORE_add_cert(st, ca)) {
        die("cannot make a certificate store");
    }
    /* the issuing CA is the anchor even when it is an intermediate */
    X509_STORE_set_flags(st, X509_V_FLAG_PARTIAL_CHAIN);
    return st;
}

/* ---- prebuilding in parallel ------------------------------------------- */

typedef struct build_job build_job;
typedef void (*build_fn)(build_job *job, apr_pool_t *p, long i);

struct build_job {
    build_fn fn;
    long count;
    atomic_long next;
    void *ctx;
};

static void *build_thread(void *arg)
{
    build_job *job = arg;
    apr_pool_t *p;
    long i;

    apr_pool_create(&p, NULL);
    while ((i = atomic_fetch_add(&job->next, 1)) < job->count) {
        job->fn(job, p, i);
        apr_pool_clear(p);
    }
    apr_pool_destroy(p);
    return NULL;
}

static double build_all(build_fn fn, void *ctx, long count, int threads)
{
    build_job job;
    pthread_t *t = xcalloc((size_t)threads, sizeof(*t));
    double t0 = now_s();
    int i;

    job.fn = fn;
    job.count = count;
    job.ctx = ctx;
    atomic_init(&job.next, 0);
    for (i = 0; i < threads; i++) {
        pthread_create(&t[i], NULL, build_thread, &job);
    }
    for (i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
    }
    free(t);
    return now_s() - t0;
}

/* ---- common options ---------------------------------------------------- */

typedef struct {
    const char *cache;
    const char *ra_file;
    const char *ca_file;
    const char *ca_key_file;
    const char *signer_file;
    const char *expect_file;
    const char *tag;
    const char *cipher;
    const char *digest;
    const char *form;
    long n;
    long distinct;
    long warmup;
    long verify;
    int conc;
    int threads;
    int keys;
    double duration;
    double timeout;
    long pids[64];
    int npids;
    unsigned seed;
} opts;

static void parse_pids(opts *o, const char *arg)
{
    char *copy = strdup(arg), *tok, *st = NULL;

    for (tok = strtok_r(copy, " ,", &st); tok && o->npids < 64;
         tok = strtok_r(NULL, " ,", &st)) {
        o->pids[o->npids++] = strtol(tok, NULL, 10);
    }
    free(copy);
}

static void parse_opts(apr_pool_t *p, int argc, const char *const *argv,
                       opts *o)
{
    static const apr_getopt_option_t spec[] = {
        { "port", 'P', 1, "" }, { "path", 'u', 1, "" },
        { "cache", 'K', 1, "" }, { "keys", 'k', 1, "" },
        { "count", 'k', 1, "" },
        { "ra", 'r', 1, "" }, { "ca", 'a', 1, "" },
        { "ca-key", 'A', 1, "" }, { "signer", 's', 1, "" },
        { "expect", 'e', 1, "" }, { "tag", 'T', 1, "" },
        { "cipher", 'C', 1, "" }, { "digest", 'D', 1, "" },
        { "form", 'F', 1, "" },
        { "requests", 'n', 1, "" }, { "distinct", 'N', 1, "" },
        { "warmup", 'w', 1, "" }, { "verify", 'v', 1, "" },
        { "concurrency", 'c', 1, "" }, { "threads", 't', 1, "" },
        { "duration", 'd', 1, "" }, { "timeout", 'o', 1, "" },
        { "server-pids", 'p', 1, "" }, { "seed", 'S', 1, "" },
        { NULL, 0, 0, NULL }
    };
    apr_getopt_t *g;
    const char *arg;
    apr_status_t rv;
    int ch;

    memset(o, 0, sizeof(*o));
    o->cache = "bench/cache";
    o->n = 1000;
    o->conc = 16;
    o->threads = 1;
    o->keys = 256;
    o->verify = 100;
    o->timeout = 60;
    o->tag = "scep-load";
    o->cipher = "aes128";
    o->digest = "sha256";
    o->form = "post";
    o->seed = 1;
    apr_getopt_init(&g, p, argc, argv);
    while ((rv = apr_getopt_long(g, spec, &ch, &arg)) == APR_SUCCESS) {
        switch (ch) {
        case 'P':
            g_port = atoi(arg);
            break;
        case 'u':
            g_path = arg;
            break;
        case 'K':
            o->cache = arg;
            break;
        case 'k':
            o->keys = atoi(arg);
            break;
        case 'r':
            o->ra_file = arg;
            break;
        case 'a':
            o->ca_file = arg;
            break;
        case 'A':
            o->ca_key_file = arg;
            break;
        case 's':
            o->signer_file = arg;
            break;
        case 'e':
            o->expect_file = arg;
            break;
        case 'T':
            o->tag = arg;
            break;
        case 'C':
            o->cipher = arg;
            break;
        case 'D':
            o->digest = arg;
            break;
        case 'F':
            o->form = arg;
            break;
        case 'n':
            o->n = atol(arg);
            break;
        case 'N':
            o->distinct = atol(arg);
            break;
        case 'w':
            o->warmup = atol(arg);
            break;
        case 'v':
            o->verify = atol(arg);
            break;
        case 'c':
            o->conc = atoi(arg);
            break;
        case 't':
            o->threads = atoi(arg);
            break;
        case 'd':
            o->duration = atof(arg);
            break;
        case 'o':
            o->timeout = atof(arg);
            break;
        case 'p':
            parse_pids(o, arg);
            break;
        case 'S':
            o->seed = (unsigned)strtoul(arg, NULL, 10);
            break;
        }
    }
    if (rv != APR_EOF) {
        die("bad option (see the comment at the top of bench/scep_load.c)");
    }
    if (g->ind < argc) {
        die("unexpected argument '%s'", argv[g->ind]);
    }
    if (o->conc < 1 || o->threads < 1 || o->keys < 1 || o->n < 0) {
        die("concurrency, threads, keys and requests must be positive");
    }
    if (o->threads > o->conc) {
        o->threads = o->conc;
    }
}

static void need_port(void)
{
    if (g_port <= 0 || g_port > 65535) {
        die("--port is required (the server on 127.0.0.1)");
    }
}

static const EVP_CIPHER *cipher_by_name(const char *name)
{
    static const struct {
        const char *opt, *ossl;
    } map[] = {
        { "des", "DES-CBC" }, { "des3", "DES-EDE3-CBC" },
        { "aes128", "AES-128-CBC" }, { "aes192", "AES-192-CBC" },
        { "aes256", "AES-256-CBC" }
    };
    size_t i;

    for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (!strcmp(name, map[i].opt)) {
            const EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, map[i].ossl, NULL);

            if (!c) {
                die("cipher %s is not available", map[i].ossl);
            }
            return c;
        }
    }
    die("unknown cipher '%s' (des, des3, aes128, aes192, aes256)", name);
}

static const EVP_MD *md_by_name(const char *name)
{
    const EVP_MD *md = EVP_get_digestbyname(name);

    if (!md) {
        die("unknown digest '%s'", name);
    }
    return md;
}

/* ---- enroll ------------------------------------------------------------ */

typedef struct {
    wire_req *reqs;
    pool_key *pool;
    int npool;
    STACK_OF(X509) *recipients;
    const EVP_CIPHER *cipher;
    const EVP_MD *md;
    const char *tag;
    int form;
    atomic_long failed;
} enroll_ctx;

static void build_enroll(build_job *job, apr_pool_t *p, long i)
{
    enroll_ctx *e = job->ctx;
    wire_req *w = &e->reqs[i];
    pool_key *k = &e->pool[i % e->npool];
    const unsigned char *der;
    apr_size_t len;
    msg_spec s;

    snprintf(w->cn, sizeof(w->cn), "%s-%ld", e->tag, i);
    memset(&s, 0, sizeof(s));
    s.type = SCEP_MSG_PKCSREQ;
    s.cipher = e->cipher;
    s.md = e->md;
    s.signer = k->cert;
    s.signer_key = k->key;
    s.csr_key = k->key;
    s.cn = w->cn;
    s.content = CONTENT_CSR;
    s.recipients = e->recipients;
    if (!build_message(p, &s, &der, &len, w->nonce, w->tid)) {
        atomic_fetch_add(&e->failed, 1);
        return;
    }
    wire_pki(w, e->form, der, len);
    w->pki = 1;
    w->signer = k->cert;
    w->signer_key = k->key;
    w->csr_key = k->key;
}

static int form_by_name(const char *name)
{
    if (!strcmp(name, "post")) {
        return WIRE_POST;
    }
    if (!strcmp(name, "get")) {
        return WIRE_GET;
    }
    if (!strcmp(name, "chunked")) {
        return WIRE_POST_CHUNKED;
    }
    die("unknown --form '%s' (post, get, chunked)", name);
}

static int cmd_enroll(apr_pool_t *p, int argc, const char *const *argv)
{
    opts o;
    enroll_ctx e;
    load_run r;
    checker ck;
    pool_key *pool;
    X509 *ra, *ca;
    long total, i, ok = 0, fail = 0, pending = 0, bad = 0, sampled = 0,
         verified = 0, verify_failed = 0, every;
    double build_s, wall, c0, c1, s0 = 0, s1 = 0;
    http_tally ht;
    const char *first_bad = NULL, *first_fail = NULL;
    int reply_cipher = NID_undef;
    apr_pool_t *vp;

    parse_opts(p, argc, argv, &o);
    need_port();
    if (!o.ra_file || !o.ca_file) {
        die("enroll needs --ra (who the requests are encrypted to) and --ca "
            "(who issues)");
    }
    ra = cli_load_cert(p, o.ra_file);
    ca = cli_load_cert(p, o.ca_file);
    total = o.warmup + o.n;
    if (!o.distinct || o.distinct > total) {
        o.distinct = total;
    }
    if (o.keys > o.distinct) {
        o.keys = (int)o.distinct;
    }
    pool = load_pool(o.cache, o.keys, &e.npool);

    memset(&e, 0, sizeof(e));
    e.npool = o.keys;
    e.pool = pool;
    e.reqs = xcalloc((size_t)o.distinct, sizeof(wire_req));
    e.recipients = ca_x509_stack_own(p, sk_X509_new_null());
    X509_up_ref(ra);
    sk_X509_push(e.recipients, ra);
    e.cipher = cipher_by_name(o.cipher);
    e.md = md_by_name(o.digest);
    e.tag = o.tag;
    e.form = form_by_name(o.form);
    atomic_init(&e.failed, 0);
    note("building %ld requests (%d client keys, %s, %s, %s)", o.distinct,
         e.npool, o.cipher, o.digest, o.form);
    build_s = build_all(build_enroll, &e, o.distinct, ncpus());
    if (atomic_load(&e.failed)) {
        die("%ld requests could not be built", atomic_load(&e.failed));
    }

    memset(&r, 0, sizeof(r));
    r.reqs = e.reqs;
    r.nreqs = o.distinct;
    r.res = xcalloc((size_t)total, sizeof(result));
    r.bodies = xcalloc((size_t)total, sizeof(unsigned char *));
    r.timeout = o.timeout;
    r.conc = o.conc;
    r.threads = o.threads;
    if (o.warmup) {
        r.base = 0;
        r.end = o.warmup;
        note("warm-up: %ld requests", o.warmup);
        run_load(&r);
    }
    r.base = o.warmup;
    r.end = total;
    note("run: %ld requests at concurrency %d", o.n, o.conc);
    c0 = cpu_s();
    s0 = pids_cpu_s(o.pids, o.npids);
    wall = run_load(&r);
    s1 = pids_cpu_s(o.pids, o.npids);
    c1 = cpu_s();

    /* every answer is checked; a sample is opened and verified in full */
    memset(&ck, 0, sizeof(ck));
    ck.expect_signer = o.signer_file ? cli_load_cert(p, o.signer_file) : ra;
    ck.store = ca_store(ca);
    memset(&ht, 0, sizeof(ht));
    every = o.verify > 0 ? (o.n + o.verify - 1) / o.verify : 0;
    apr_pool_create(&vp, p);
    for (i = o.warmup; i < total; i++) {
        const wire_req *q = req_of(&r, i);
        int fi = -1, cnid = NID_undef, full, st;
        const char *why = NULL;

        tally(&ht, r.res[i].status);
        if (r.res[i].status != 200) {
            continue;
        }
        full = every && (i - o.warmup) % every == 0;
        st = check_certrep(vp, &ck, q, r.bodies[i], r.res[i].body_len, full,
                           &fi, &cnid, &why);
        if (st == SCEP_STATUS_SUCCESS) {
            ok++;
            if (cnid != NID_undef) {
                reply_cipher = cnid;
            }
            if (full) {
                sampled++;
                if (why) {
                    verify_failed++;
                    if (!first_bad) {
                        first_bad = apr_pstrdup(p, why);
                    }
                }
                else {
                    verified++;
                }
            }
        }
        else if (st == SCEP_STATUS_FAILURE) {
            fail++;
            if (!first_fail) {
                first_fail = apr_psprintf(p, "failInfo %s",
                                          scep_fail_name(fi));
            }
        }
        else if (st == SCEP_STATUS_PENDING) {
            pending++;
        }
        else {
            bad++;
            if (!first_bad) {
                first_bad = apr_pstrdup(p, why ? why : "?");
            }
        }
        apr_pool_clear(vp);
    }

    printf("mode=enroll\n");
    printf("requests=%ld\nconcurrency=%d\nthreads=%d\nclient_keys=%d\n",
           o.n, o.conc, o.threads, e.npool);
    printf("request_cipher=%s\nrequest_digest=%s\nform=%s\n", o.cipher,
           o.digest, o.form);
    printf("prebuild_s=%.2f\n", build_s);
    printf("elapsed_s=%.3f\n", wall);
    print_tally(&ht);
    printf("scep_success=%ld\nscep_failure=%ld\nscep_pending=%ld\n"
           "bad_certrep=%ld\n", ok, fail, pending, bad);
    printf("errors=%ld\n", o.n - ok);
    printf("verified=%ld\nverify_failed=%ld\n", verified, verify_failed);
    printf("reply_cipher=%s\n", reply_cipher != NID_undef
                                ? OBJ_nid2sn(reply_cipher) : "none");
    printf("retries=%ld\n", atomic_load(&r.retries));
    printf("enroll_per_s=%.1f\n", wall > 0 ? ok / wall : 0);
    report_latency("", r.res, o.warmup, total);
    printf("client_cpu_s=%.3f\n", c1 - c0);
    printf("client_cpu_share=%.3f\n",
           wall > 0 ? (c1 - c0) / (wall * ncpus()) : 0);
    if (o.npids) {
        printf("server_cpu_s=%.3f\n", s1 - s0);
        printf("server_cpu_ms_per_enroll=%.3f\n",
               ok ? (s1 - s0) * 1000.0 / ok : 0);
    }
    if (first_fail) {
        printf("first_failure=%s\n", first_fail);
    }
    if (first_bad) {
        printf("first_bad=%s\n", first_bad);
    }
    return ok == o.n && verify_failed == 0 ? 0 : 1;
}

/* ---- get --------------------------------------------------------------- */

static int cmd_get(apr_pool_t *p, int argc, const char *const *argv)
{
    opts o;
    load_run r;
    wire_req w;
    http_tally ht;
    long total, i, done = 0, wrong_len = 0;
    size_t expect_len = 0;
    double wall, c0, c1, s0 = 0, s1 = 0;

    parse_opts(p, argc, argv, &o);
    need_port();
    memset(&w, 0, sizeof(w));
    wire_plain(&w, "GET", g_path, NULL, 0);
    if (o.expect_file) {
        free(read_whole(o.expect_file, &expect_len));
    }
    total = o.duration > 0 ? 20000000L : o.n;

    memset(&r, 0, sizeof(r));
    r.reqs = &w;
    r.nreqs = 1;
    r.res = xcalloc((size_t)total, sizeof(result));
    r.timeout = o.timeout;
    r.conc = o.conc;
    r.threads = o.threads;
    r.base = 0;
    r.end = total;
    if (o.warmup) {
        r.end = o.warmup;
        run_load(&r);
        memset(r.res, 0, sizeof(result) * (size_t)o.warmup);
        r.end = total;
    }
    r.stop_at = o.duration > 0 ? now_s() + o.duration : 0;
    s0 = pids_cpu_s(o.pids, o.npids);
    c0 = cpu_s();
    wall = run_load(&r);
    c1 = cpu_s();
    s1 = pids_cpu_s(o.pids, o.npids);
    done = atomic_load(&r.completed);
    memset(&ht, 0, sizeof(ht));
    for (i = 0; i < done && i < total; i++) {
        tally(&ht, r.res[i].status);
        if (expect_len && r.res[i].status == 200
            && r.res[i].body_len != expect_len) {
            wrong_len++;
        }
    }
    printf("mode=get\npath=%s\nconcurrency=%d\nthreads=%d\n", g_path, o.conc,
           o.threads);
    printf("requests=%ld\nelapsed_s=%.3f\n", done, wall);
    print_tally(&ht);
    printf("wrong_length=%ld\n", wrong_len);
    printf("retries=%ld\n", atomic_load(&r.retries));
    printf("rps=%.1f\n", wall > 0 ? ht.s2xx / wall : 0);
    report_latency("", r.res, 0, done < total ? done : total);
    printf("client_cpu_s=%.3f\nclient_cpu_share=%.3f\n", c1 - c0,
           wall > 0 ? (c1 - c0) / (wall * ncpus()) : 0);
    if (o.npids) {
        /* one HTTP exchange with nothing to compute: httpd's floor */
        printf("server_cpu_s=%.3f\nserver_cpu_ms_per_req=%.4f\n", s1 - s0,
               ht.s2xx ? (s1 - s0) * 1000.0 / ht.s2xx : 0);
    }
    return ht.s2xx == done && !wrong_len ? 0 : 1;
}

/* ---- soak -------------------------------------------------------------- */

/* What a soak request class expects. */
#define EXPECT_ANY_FAIL (-1)

typedef struct {
    const char *name;
    int weight;
    int http;                   /* expected HTTP status, 0: no answer */
    int scep;                   /* -1: not a CertRep; else pkiStatus */
    int fail;                   /* expected failInfo, EXPECT_ANY_FAIL */
    int variants;
} soak_class;

enum {
    K_ENROLL, K_ENROLL_GET, K_ENROLL_CHUNKED, K_ENROLL_DES, K_ENROLL_DES3,
    K_ENROLL_AES256_SHA512, K_ENROLL_SHA1, K_RENEWAL, K_RENEWAL_PKCSREQ,
    K_POLL, K_GETCERT, K_GETCRL,
    K_BAD_SIGNATURE, K_BAD_CSR_SIGNATURE, K_WRONG_RECIPIENT, K_NOT_CSR,
    K_NO_CONTENT, K_MD5, K_UNKNOWN_TYPE, K_RENEWAL_SELF_SIGNED,
    K_FOREIGN_SIGNER, K_GARBAGE_ENVELOPE,
    K_NO_TID, K_GARBAGE, K_EMPTY, K_TRUNCATED, K_TRAILING, K_TOO_LARGE,
    K_BAD_BASE64, K_NO_MESSAGE, K_UNKNOWN_OP, K_NO_OP, K_PUT, K_DELETE,
    K_CERTS_ONLY, K_ABORT,
    K_GETCACERT, K_GETCACAPS, K_GETNEXTCACERT, K_OPTIONS, K_HEAD_CAPS,
    K_COUNT
};

static soak_class soak_classes[K_COUNT] = {
    [K_ENROLL] = { "enroll-post", 14, 200, SCEP_STATUS_SUCCESS, -1, 0 },
    [K_ENROLL_GET] = { "enroll-get", 3, 200, SCEP_STATUS_SUCCESS, -1, 0 },
    [K_ENROLL_CHUNKED] = { "enroll-chunked", 2, 200, SCEP_STATUS_SUCCESS,
                           -1, 0 },
    [K_ENROLL_DES] = { "enroll-des", 2, 200, SCEP_STATUS_SUCCESS, -1, 0 },
    [K_ENROLL_DES3] = { "enroll-des3", 2, 200, SCEP_STATUS_SUCCESS, -1, 0 },
    [K_ENROLL_AES256_SHA512] = { "enroll-aes256-sha512", 2, 200,
                                 SCEP_STATUS_SUCCESS, -1, 0 },
    [K_ENROLL_SHA1] = { "enroll-sha1", 1, 200, SCEP_STATUS_SUCCESS, -1, 0 },
    [K_RENEWAL] = { "renewalreq", 2, 200, SCEP_STATUS_SUCCESS, -1, 0 },
    [K_RENEWAL_PKCSREQ] = { "renewal-by-pkcsreq", 1, 200,
                            SCEP_STATUS_SUCCESS, -1, 0 },
    [K_POLL] = { "certpoll", 4, 200, SCEP_STATUS_FAILURE,
                 SCEP_FAIL_BADCERTID, 0 },
    [K_GETCERT] = { "getcert", 2, 200, SCEP_STATUS_FAILURE,
                    SCEP_FAIL_BADCERTID, 0 },
    [K_GETCRL] = { "getcrl", 1, 302, -1, -1, 0 },
    [K_BAD_SIGNATURE] = { "bad-signature", 3, 200, SCEP_STATUS_FAILURE,
                          SCEP_FAIL_BADMESSAGECHECK, 0 },
    [K_BAD_CSR_SIGNATURE] = { "bad-csr-signature", 2, 200,
                              SCEP_STATUS_FAILURE,
                              SCEP_FAIL_BADMESSAGECHECK, 0 },
    [K_WRONG_RECIPIENT] = { "wrong-recipient", 2, 200, SCEP_STATUS_FAILURE,
                            SCEP_FAIL_BADMESSAGECHECK, 0 },
    [K_NOT_CSR] = { "not-a-csr", 2, 200, SCEP_STATUS_FAILURE,
                    SCEP_FAIL_BADREQUEST, 0 },
    [K_NO_CONTENT] = { "no-content", 2, 200, SCEP_STATUS_FAILURE,
                       SCEP_FAIL_BADREQUEST, 0 },
    [K_MD5] = { "md5-signature", 1, 200, SCEP_STATUS_FAILURE,
                SCEP_FAIL_BADALG, 0 },
    [K_UNKNOWN_TYPE] = { "unknown-messagetype", 1, 200, SCEP_STATUS_FAILURE,
                         SCEP_FAIL_BADREQUEST, 0 },
    [K_RENEWAL_SELF_SIGNED] = { "renewalreq-self-signed", 1, 200,
                                SCEP_STATUS_FAILURE, SCEP_FAIL_BADREQUEST,
                                0 },
    [K_FOREIGN_SIGNER] = { "foreign-signer", 1, 200, SCEP_STATUS_FAILURE,
                           SCEP_FAIL_BADREQUEST, 0 },
    [K_GARBAGE_ENVELOPE] = { "garbage-envelope", 1, 200, SCEP_STATUS_FAILURE,
                             EXPECT_ANY_FAIL, 0 },
    [K_NO_TID] = { "no-transactionid", 2, 400, -1, -1, 0 },
    [K_GARBAGE] = { "garbage-body", 3, 400, -1, -1, 0 },
    [K_EMPTY] = { "empty-body", 2, 400, -1, -1, 0 },
    [K_TRUNCATED] = { "truncated-der", 2, 400, -1, -1, 0 },
    [K_TRAILING] = { "trailing-garbage", 2, 400, -1, -1, 0 },
    [K_TOO_LARGE] = { "too-large", 1, 413, -1, -1, 0 },
    [K_BAD_BASE64] = { "get-bad-base64", 2, 400, -1, -1, 0 },
    [K_NO_MESSAGE] = { "get-no-message", 1, 400, -1, -1, 0 },
    [K_UNKNOWN_OP] = { "unknown-operation", 2, 400, -1, -1, 0 },
    [K_NO_OP] = { "no-operation", 1, 400, -1, -1, 0 },
    [K_PUT] = { "put", 1, 405, -1, -1, 0 },
    [K_DELETE] = { "delete", 1, 405, -1, -1, 0 },
    [K_CERTS_ONLY] = { "certs-only-p7", 1, 400, -1, -1, 0 },
    [K_ABORT] = { "abort-mid-body", 1, 0, -1, -1, 0 },
    [K_GETCACERT] = { "getcacert", 6, 200, -1, -1, 0 },
    [K_GETCACAPS] = { "getcacaps", 6, 200, -1, -1, 0 },
    [K_GETNEXTCACERT] = { "getnextcacert", 1, 200, -1, -1, 0 },
    [K_OPTIONS] = { "options", 1, 200, -1, -1, 0 },
    [K_HEAD_CAPS] = { "head-getcacaps", 1, 200, -1, -1, 0 },
};

typedef struct {
    wire_req *reqs;
    long *first;                /* first request of each class */
    pool_key *pool;
    int npool;
    STACK_OF(X509) *to_ra;
    STACK_OF(X509) *to_other;
    X509 *ca;
    EVP_PKEY *ca_key;
    X509 *foreign;              /* a certificate of another CA */
    EVP_PKEY *foreign_key;
    const unsigned char *certs_only;
    size_t certs_only_len;
    const EVP_CIPHER *aes128, *aes256, *des, *des3;
    atomic_long failed;
} soak_ctx;

/* The class of request number i of the table. */
static int soak_class_of(const soak_ctx *s, long i)
{
    int k;

    for (k = K_COUNT - 1; k > 0 && i < s->first[k]; k--) {
    }
    return k;
}

static void build_soak(build_job *job, apr_pool_t *p, long i)
{
    soak_ctx *s = job->ctx;
    wire_req *w = &s->reqs[i];
    int k = soak_class_of(s, i);
    long v = i - s->first[k];
    pool_key *key = &s->pool[i % s->npool];
    pool_key *key2 = &s->pool[(i + 1) % s->npool];
    const unsigned char *der = NULL;
    apr_size_t len = 0;
    unsigned char junk[600];
    char target[512];
    msg_spec m;
    int form = WIRE_POST, pki = 1;

    w->cls = k;
    snprintf(w->cn, sizeof(w->cn), "soak-%s-%ld", soak_classes[k].name, v);
    memset(&m, 0, sizeof(m));
    m.type = SCEP_MSG_PKCSREQ;
    m.cipher = s->aes128;
    m.md = EVP_sha256();
    m.signer = key->cert;
    m.signer_key = key->key;
    m.csr_key = key->key;
    m.cn = w->cn;
    m.content = CONTENT_CSR;
    m.recipients = s->to_ra;
    RAND_bytes(junk, sizeof(junk));

    switch (k) {
    case K_ENROLL:
        break;
    case K_ENROLL_GET:
        form = WIRE_GET;
        break;
    case K_ENROLL_CHUNKED:
        form = WIRE_POST_CHUNKED;
        break;
    case K_ENROLL_DES:
        m.cipher = s->des;
        break;
    case K_ENROLL_DES3:
        m.cipher = s->des3;
        m.md = EVP_sha1();
        break;
    case K_ENROLL_AES256_SHA512:
        m.cipher = s->aes256;
        m.md = EVP_sha512();
        break;
    case K_ENROLL_SHA1:
        m.md = EVP_sha1();
        break;
    case K_RENEWAL:
    case K_RENEWAL_PKCSREQ: {
        /* signed by a certificate this CA issued, for a new key */
        X509 *old = make_cert(key2->key, w->cn, s->ca, s->ca_key, 0);

        if (!old) {
            atomic_fetch_add(&s->failed, 1);
            return;
        }
        ca_x509_own(p, old);
        /* the table outlives the pool: keep a reference of our own */
        X509_up_ref(old);
        m.type = k == K_RENEWAL ? SCEP_MSG_RENEWALREQ : SCEP_MSG_PKCSREQ;
        m.signer = old;
        m.signer_key = key2->key;
        break;
    }
    case K_POLL:
        m.type = SCEP_MSG_CERTPOLL;
        m.content = CONTENT_IASUBJ;
        m.ias_issuer = s->ca;
        break;
    case K_GETCERT:
        m.type = SCEP_MSG_GETCERT;
        m.content = CONTENT_IAS;
        m.ias_issuer = s->ca;
        break;
    case K_GETCRL:
        m.type = SCEP_MSG_GETCRL;
        m.content = CONTENT_IAS;
        m.ias_issuer = s->ca;
        break;
    case K_BAD_SIGNATURE:
        m.bad_signature = 1;
        break;
    case K_BAD_CSR_SIGNATURE:
        m.bad_csr_signature = 1;
        break;
    case K_WRONG_RECIPIENT:
        m.recipients = s->to_other;
        break;
    case K_NOT_CSR:
        m.content = CONTENT_RAW;
        m.raw = junk;
        m.raw_len = 100 + (size_t)(v % 400);
        break;
    case K_NO_CONTENT:
        m.content = CONTENT_NONE;
        break;
    case K_MD5:
        m.md = EVP_md5();
        break;
    case K_UNKNOWN_TYPE:
        m.type = (int)(23 + v % 70);
        break;
    case K_RENEWAL_SELF_SIGNED:
        m.type = SCEP_MSG_RENEWALREQ;
        break;
    case K_FOREIGN_SIGNER: {
        X509 *x = make_cert(key->key, w->cn, s->foreign, s->foreign_key, 0);

        if (!x) {
            atomic_fetch_add(&s->failed, 1);
            return;
        }
        ca_x509_own(p, x);
        X509_up_ref(x);
        m.signer = x;
        break;
    }
    case K_GARBAGE_ENVELOPE: {
        /* a SignedData whose content is not an EnvelopedData */
        BIO *in = BIO_new_mem_buf(junk, 200);
        PKCS7 *p7 = PKCS7_sign(key->cert, key->key, NULL, in,
                               PKCS7_BINARY | PKCS7_NOSMIMECAP
                               | PKCS7_PARTIAL);
        PKCS7_SIGNER_INFO *si = p7 ? sk_PKCS7_SIGNER_INFO_value(
                                         PKCS7_get_signer_info(p7), 0)
                                   : NULL;
        unsigned char *out = NULL;
        char tid[33];
        int n = 0;

        RAND_bytes(w->nonce, SCEP_NONCE_LEN);
        RAND_bytes(junk + 300, 16);
        hex(tid, junk + 300, 16);
        memcpy(w->tid, tid, sizeof(tid));
        if (si) {
            ASN1_STRING *t = ASN1_STRING_type_new(V_ASN1_PRINTABLESTRING);
            ASN1_STRING *mt = ASN1_STRING_type_new(V_ASN1_PRINTABLESTRING);
            ASN1_OCTET_STRING *nn = ASN1_OCTET_STRING_new();

            ASN1_STRING_set(t, tid, -1);
            ASN1_STRING_set(mt, "19", -1);
            ASN1_OCTET_STRING_set(nn, w->nonce, SCEP_NONCE_LEN);
            PKCS7_add_signed_attribute(si, OBJ_txt2nid(
                                           "2.16.840.1.113733.1.9.7"),
                                       V_ASN1_PRINTABLESTRING, t);
            PKCS7_add_signed_attribute(si, OBJ_txt2nid(
                                           "2.16.840.1.113733.1.9.2"),
                                       V_ASN1_PRINTABLESTRING, mt);
            PKCS7_add_signed_attribute(si, OBJ_txt2nid(
                                           "2.16.840.1.113733.1.9.5"),
                                       V_ASN1_OCTET_STRING, nn);
            BIO_free(in);
            in = BIO_new_mem_buf(junk, 200);
            if (PKCS7_final(p7, in, PKCS7_BINARY)) {
                n = i2d_PKCS7(p7, &out);
            }
        }
        BIO_free(in);
        PKCS7_free(p7);
        if (n <= 0) {
            atomic_fetch_add(&s->failed, 1);
            return;
        }
        wire_pki(w, WIRE_POST, out, (size_t)n);
        OPENSSL_free(out);
        w->pki = 1;
        w->signer = key->cert;
        w->signer_key = key->key;
        w->csr_key = key->key;
        return;
    }
    case K_NO_TID:
        m.no_transaction_id = 1;
        break;
    default:
        pki = 0;
        break;
    }

    if (pki) {
        if (!build_message(p, &m, &der, &len, w->nonce, w->tid)) {
            atomic_fetch_add(&s->failed, 1);
            return;
        }
        w->pki = 1;
        w->signer = m.signer;
        w->signer_key = m.signer_key;
        w->csr_key = m.csr_key;
        if (k == K_RENEWAL || k == K_RENEWAL_PKCSREQ) {
            w->csr_key = key->key;
            m.csr_key = key->key;
        }
        wire_pki(w, form, der, len);
        return;
    }

    /* HTTP-level classes: made from a valid message where it helps */
    if (k == K_TRUNCATED || k == K_TRAILING || k == K_ABORT) {
        if (!build_message(p, &m, &der, &len, w->nonce, w->tid)) {
            atomic_fetch_add(&s->failed, 1);
            return;
        }
    }
    switch (k) {
    case K_GARBAGE:
        snprintf(target, sizeof(target), "%s?operation=PKIOperation",
                 g_path);
        wire_plain(w, "POST", target, junk, 50 + (size_t)(v % 500));
        break;
    case K_EMPTY:
        snprintf(target, sizeof(target), "%s?operation=PKIOperation",
                 g_path);
        wire_plain(w, "POST", target, (const unsigned char *)"", 0);
        break;
    case K_TRUNCATED:
        snprintf(target, sizeof(target), "%s?operation=PKIOperation",
                 g_path);
        wire_plain(w, "POST", target, der, len - 1 - (size_t)(v % 200));
        break;
    case K_TRAILING: {
        unsigned char *b = apr_palloc(p, len + 16);

        memcpy(b, der, len);
        memcpy(b + len, junk, 16);
        snprintf(target, sizeof(target), "%s?operation=PKIOperation",
                 g_path);
        wire_plain(w, "POST", target, b, len + 16);
        break;
    }
    case K_TOO_LARGE: {
        size_t n = 140000;
        unsigned char *b = apr_pcalloc(p, n);

        snprintf(target, sizeof(target), "%s?operation=PKIOperation",
                 g_path);
        wire_plain(w, "POST", target, b, n);
        break;
    }
    case K_BAD_BASE64:
        snprintf(target, sizeof(target), "%s?operation=PKIOperation&"
                 "message=%s", g_path, v % 2 ? "%25%25%25not-base64!!"
                                             : "MIIB*&$$");
        wire_plain(w, "GET", target, NULL, 0);
        break;
    case K_NO_MESSAGE:
        snprintf(target, sizeof(target), "%s?operation=PKIOperation",
                 g_path);
        wire_plain(w, "GET", target, NULL, 0);
        break;
    case K_UNKNOWN_OP:
        snprintf(target, sizeof(target), "%s?operation=GetSomething%ld",
                 g_path, v);
        wire_plain(w, "GET", target, NULL, 0);
        break;
    case K_NO_OP:
        wire_plain(w, "GET", g_path, NULL, 0);
        break;
    case K_PUT:
        snprintf(target, sizeof(target), "%s?operation=PKIOperation",
                 g_path);
        wire_plain(w, "PUT", target, junk, 64);
        break;
    case K_DELETE:
        wire_plain(w, "DELETE", g_path, NULL, 0);
        break;
    case K_CERTS_ONLY:
        snprintf(target, sizeof(target), "%s?operation=PKIOperation",
                 g_path);
        wire_plain(w, "POST", target, s->certs_only, s->certs_only_len);
        break;
    case K_ABORT:
        wire_pki(w, WIRE_POST_ABORT, der, len);
        break;
    case K_GETCACERT:
        snprintf(target, sizeof(target), "%s?operation=GetCACert%s", g_path,
                 v % 2 ? "&message=x" : "");
        wire_plain(w, "GET", target, NULL, 0);
        break;
    case K_GETCACAPS:
        snprintf(target, sizeof(target), "%s?operation=GetCACaps", g_path);
        wire_plain(w, "GET", target, NULL, 0);
        break;
    case K_GETNEXTCACERT:
        snprintf(target, sizeof(target), "%s?operation=GetNextCACert",
                 g_path);
        wire_plain(w, "GET", target, NULL, 0);
        break;
    case K_OPTIONS:
        wire_plain(w, "OPTIONS", g_path, NULL, 0);
        break;
    case K_HEAD_CAPS:
        snprintf(target, sizeof(target), "%s?operation=GetCACaps", g_path);
        wire_plain(w, "HEAD", target, NULL, 0);
        break;
    default:
        break;
    }
    w->pki = 0;
}

static int cmd_soak(apr_pool_t *p, int argc, const char *const *argv)
{
    opts o;
    soak_ctx s;
    load_run r;
    checker ck;
    X509 *ra, *ca, *other;
    EVP_PKEY *fkey;
    long per_class[K_COUNT], sent[K_COUNT], good[K_COUNT], bad[K_COUNT],
         fivexx[K_COUNT], total_reqs = 0, i, every, sampled = 0,
         verify_failed = 0, unexpected = 0;
    long weights = 0;
    int *order;
    int k;
    double build_s, wall;
    http_tally ht;
    apr_pool_t *vp;
    const char *first_bad[K_COUNT];

    parse_opts(p, argc, argv, &o);
    need_port();
    if (!o.ra_file || !o.ca_file || !o.ca_key_file) {
        die("soak needs --ra, --ca and --ca-key (renewal signers are made "
            "with the CA key)");
    }
    ra = cli_load_cert(p, o.ra_file);
    ca = cli_load_cert(p, o.ca_file);
    memset(&s, 0, sizeof(s));
    s.ca = ca;
    s.ca_key = cli_load_key(p, o.ca_key_file);
    s.pool = load_pool(o.cache, o.keys < 2 ? 2 : o.keys, &s.npool);
    s.aes128 = cipher_by_name("aes128");
    s.aes256 = cipher_by_name("aes256");
    s.des = cipher_by_name("des");
    s.des3 = cipher_by_name("des3");
    s.to_ra = ca_x509_stack_own(p, sk_X509_new_null());
    X509_up_ref(ra);
    sk_X509_push(s.to_ra, ra);
    /* a recipient that is not the RA: the signer of another pool key */
    other = s.pool[s.npool - 1].cert;
    s.to_other = ca_x509_stack_own(p, sk_X509_new_null());
    X509_up_ref(other);
    sk_X509_push(s.to_other, other);
    fkey = s.pool[s.npool - 2 >= 0 ? s.npool - 2 : 0].key;
    s.foreign_key = fkey;
    s.foreign = ca_x509_own(p, make_cert(fkey, "scep-load foreign CA", NULL,
                                         NULL, 1));
    {
        STACK_OF(X509) *sk = ca_x509_stack_own(p, sk_X509_new_null());
        const unsigned char *d;
        apr_size_t l;

        X509_up_ref(ca);
        sk_X509_push(sk, ca);
        if (ca_p7_certs_der(p, sk, &d, &l) != APR_SUCCESS) {
            die("cannot encode a certificates-only message");
        }
        s.certs_only = d;
        s.certs_only_len = l;
    }
    atomic_init(&s.failed, 0);

    /* variants per class: enough distinct enrollments, a few of the rest */
    if (!o.distinct) {
        o.distinct = o.n / 10 > 2000 ? 2000 : (o.n / 10 > 100 ? o.n / 10
                                                              : 100);
    }
    s.first = apr_pcalloc(p, sizeof(long) * K_COUNT);
    for (k = 0; k < K_COUNT; k++) {
        long v = soak_classes[k].weight * o.distinct / 14;

        if (v < 8) {
            v = 8;
        }
        if (k >= K_NO_TID) {
            v = 16;
        }
        soak_classes[k].variants = (int)v;
        s.first[k] = total_reqs;
        total_reqs += v;
        weights += soak_classes[k].weight;
    }
    s.reqs = xcalloc((size_t)total_reqs, sizeof(wire_req));
    note("soak: building %ld distinct requests in %d classes", total_reqs,
         K_COUNT);
    build_s = build_all(build_soak, &s, total_reqs, ncpus());
    if (atomic_load(&s.failed)) {
        die("%ld soak requests could not be built", atomic_load(&s.failed));
    }

    /* the order: classes by weight, variants in turn, shuffled */
    order = xmalloc(sizeof(int) * (size_t)o.n);
    srand(o.seed);
    memset(per_class, 0, sizeof(per_class));
    for (i = 0; i < o.n; i++) {
        long pick = rand() % weights, acc = 0;

        for (k = 0; k < K_COUNT; k++) {
            acc += soak_classes[k].weight;
            if (pick < acc) {
                break;
            }
        }
        order[i] = (int)(s.first[k]
                         + per_class[k]++ % soak_classes[k].variants);
    }

    memset(&r, 0, sizeof(r));
    r.reqs = s.reqs;
    r.order = order;
    r.nreqs = total_reqs;
    r.res = xcalloc((size_t)o.n, sizeof(result));
    r.bodies = xcalloc((size_t)o.n, sizeof(unsigned char *));
    r.timeout = o.timeout;
    r.conc = o.conc;
    r.threads = o.threads;
    r.base = 0;
    r.end = o.n;
    note("soak: %ld requests at concurrency %d", o.n, o.conc);
    wall = run_load(&r);

    memset(&ck, 0, sizeof(ck));
    ck.expect_signer = ra;
    ck.store = ca_store(ca);
    memset(&ht, 0, sizeof(ht));
    memset(sent, 0, sizeof(sent));
    memset(good, 0, sizeof(good));
    memset(bad, 0, sizeof(bad));
    memset(fivexx, 0, sizeof(fivexx));
    memset(first_bad, 0, sizeof(first_bad));
    every = o.verify > 0 ? (o.n + o.verify - 1) / o.verify : 0;
    apr_pool_create(&vp, p);
    for (i = 0; i < o.n; i++) {
        const wire_req *q = req_of(&r, i);
        const soak_class *c = &soak_classes[q->cls];
        int st = r.res[i].status, ok = st == c->http;
        const char *why = NULL;

        sent[q->cls]++;
        tally(&ht, st);
        if (st >= 500) {
            fivexx[q->cls]++;
        }
        if (ok && c->scep >= 0) {
            int fi = -1, cnid, full = every && i % every == 0
                                    && c->scep == SCEP_STATUS_SUCCESS;
            int ps = check_certrep(vp, &ck, q, r.bodies[i], r.res[i].body_len,
                                   full, &fi, &cnid, &why);

            if (ps != c->scep) {
                ok = 0;
                why = apr_psprintf(vp, "pkiStatus %d (failInfo %s)%s%s", ps,
                                   scep_fail_name(fi), why ? ": " : "",
                                   why ? why : "");
            }
            else if (c->fail != EXPECT_ANY_FAIL && c->scep
                     == SCEP_STATUS_FAILURE && fi != c->fail) {
                ok = 0;
                why = apr_psprintf(vp, "failInfo %s, expected %s",
                                   scep_fail_name(fi),
                                   scep_fail_name(c->fail));
            }
            else if (why) {
                ok = 0;
            }
            if (full) {
                sampled++;
                if (why) {
                    verify_failed++;
                }
            }
        }
        else if (!ok) {
            why = apr_psprintf(vp, "HTTP %d, expected %d", st, c->http);
        }
        if (ok) {
            good[q->cls]++;
        }
        else {
            bad[q->cls]++;
            unexpected++;
            if (!first_bad[q->cls]) {
                first_bad[q->cls] = apr_pstrdup(p, why ? why : "?");
            }
        }
        apr_pool_clear(vp);
    }

    printf("mode=soak\nrequests=%ld\nconcurrency=%d\ndistinct_requests=%ld\n",
           o.n, o.conc, total_reqs);
    printf("prebuild_s=%.2f\nelapsed_s=%.3f\nrps=%.1f\n", build_s, wall,
           wall > 0 ? o.n / wall : 0);
    print_tally(&ht);
    printf("aborted_on_purpose=%ld\n", ht.aborted);
    printf("unexpected=%ld\n", unexpected);
    printf("verified=%ld\nverify_failed=%ld\n", sampled - verify_failed,
           verify_failed);
    printf("retries=%ld\n", atomic_load(&r.retries));
    report_latency("", r.res, 0, o.n);
    for (k = 0; k < K_COUNT; k++) {
        printf("class %-24s sent=%-6ld as_expected=%-6ld unexpected=%-4ld "
               "5xx=%ld%s%s\n", soak_classes[k].name, sent[k], good[k],
               bad[k], fivexx[k], first_bad[k] ? " first: " : "",
               first_bad[k] ? first_bad[k] : "");
    }
    k = ht.s5xx == 0 && unexpected == 0 && ht.conn_err == 0
        && ht.timeout == 0 && ht.bad_http == 0;
    printf("result=%s\n", k ? "PASS" : "FAIL");
    return k ? 0 : 1;
}

/* ---- main -------------------------------------------------------------- */

static int cmd_keys(apr_pool_t *p, int argc, const char *const *argv)
{
    opts o;
    int got;

    parse_opts(p, argc, argv, &o);
    load_pool(o.cache, o.keys, &got);
    printf("keys=%d\ncache=%s\n", got, o.cache);
    return 0;
}

int main(int argc, const char *const *argv)
{
    apr_pool_t *p;
    const char *err = NULL;
    int rv;

    if (argc < 2) {
        fprintf(stderr, "usage: " PROG " keys|enroll|get|soak [options]\n"
                "(see the comment at the top of bench/scep_load.c)\n");
        return 2;
    }
    apr_app_initialize(&argc, &argv, NULL);
    apr_pool_create(&p, NULL);
    cli_init(PROG, NULL);
    if (scep_msg_init(&err) != APR_SUCCESS) {
        die("%s", err);
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!strcmp(argv[1], "keys")) {
        rv = cmd_keys(p, argc - 1, argv + 1);
    }
    else if (!strcmp(argv[1], "enroll")) {
        rv = cmd_enroll(p, argc - 1, argv + 1);
    }
    else if (!strcmp(argv[1], "get")) {
        rv = cmd_get(p, argc - 1, argv + 1);
    }
    else if (!strcmp(argv[1], "soak")) {
        rv = cmd_soak(p, argc - 1, argv + 1);
    }
    else {
        die("unknown command '%s' (keys, enroll, get, soak)", argv[1]);
    }
    fflush(stdout);
    /* the request tables are left to the exit */
    _exit(rv);
}
