/* Licensed under the Apache License, Version 2.0 (see COPYING). */

/*
 * scep-test-client: the project's own SCEP client for tests.
 *
 * It crafts pkiMessages that real clients cannot be made to send (bad
 * signatures, missing attributes, odd message types) and takes CertReps
 * apart attribute by attribute.  There is no HTTP in here: requests and
 * replies are DER files, and the Perl tests do the transport so that they
 * control the POST and GET encodings.
 *
 *   scep-test-client request --ra RA.pem --key KEY --out REQ.der [...]
 *   scep-test-client reply --in REP.der --ra RA.pem [--key K --signer C]
 *
 * Output is "key=value" lines on stdout; errors go to stderr.  Exit 0 on
 * success, 1 on failure, 2 on a usage error.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>

#include <apr_general.h>
#include <apr_getopt.h>
#include <apr_file_io.h>
#include <apr_strings.h>
#include <apr_tables.h>

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
#include "cli.h"

#define PROG "scep-test-client"

/* What "request" was asked to do. */
typedef struct {
    apr_array_header_t *ra_files;   /* const char * */
    const char *key_file;
    const char *signer_file;
    const char *signer_key_file;
    const char *signer_cn;
    const char *signer_out;
    const char *subject;
    const char *san;
    const char *challenge;
    const char *challenge_type;
    const char *csr_file;
    const char *content_raw;
    const char *issuer_and_serial;
    const char *issuer_and_subject;
    const char *transaction_id;
    const char *cipher;
    const char *digest;
    const char *out;
    int type;
    int bad_signature;
    int bad_csr_signature;
    int no_transaction_id;
    int no_content;
} request_opts_t;

/* What "reply" was asked to do. */
typedef struct {
    const char *in;
    const char *ra_file;
    const char *key_file;
    const char *signer_file;
    const char *cert_out;
    const char *expect_nonce;
    const char *csr_key_file;
} reply_opts_t;

static void usage(FILE *f)
{
    fprintf(f,
"usage: " PROG " request [options] --ra FILE --out FILE\n"
"       " PROG " reply [options] --in FILE\n"
"       " PROG " certrep [options] --in FILE --out FILE\n"
"\n"
"request: build a SCEP pkiMessage and write it as DER.\n"
"  --ra FILE             recipient certificate(s), PEM or DER; repeatable,\n"
"                        a PEM file may hold several (all become recipients)\n"
"  --key FILE            client RSA key (the CSR key); generated (RSA 2048)\n"
"                        and written there when the file does not exist\n"
"  --signer FILE         certificate that signs the message; default: a\n"
"                        self-signed one made from the signer key\n"
"  --signer-key FILE     key of --signer when it is not --key (renewal)\n"
"  --signer-cn CN        CN of the self-signed signer (default: random UUID)\n"
"  --signer-out FILE     write the self-signed signer certificate (PEM)\n"
"  --subject /CN=x/O=y   CSR subject (default /CN=scep-test-client)\n"
"  --san LIST            CSR subjectAltName request, e.g.\n"
"                        DNS:a.example,email:x@y,IP:1.2.3.4,URI:http://u\n"
"  --challenge STR       CSR challengePassword\n"
"  --challenge-type T    printable (default when possible) or utf8\n"
"  --csr FILE            use this CSR (PEM or DER) instead of making one\n"
"  --bad-csr-signature   make the CSR's own signature wrong\n"
"  --content-raw FILE    use the bytes of FILE as messageData\n"
"  --issuer-and-serial CAFILE:SERIALHEX\n"
"                        messageData IssuerAndSerialNumber (GetCert/GetCRL)\n"
"  --issuer-and-subject CAFILE:/CN=x\n"
"                        messageData IssuerAndSubject (CertPoll)\n"
"  --no-content          send no pkcsPKIEnvelope at all\n"
"  --type N              messageType (default 19, PKCSReq)\n"
"  --cipher NAME         des, des3, aes128 (default), aes192, aes256\n"
"  --digest NAME         sha1, sha256 (default), sha512\n"
"  --transaction-id STR  default: upper-case hex SHA-1 of the public key\n"
"  --no-transaction-id   leave the transactionID attribute out\n"
"  --bad-signature       corrupt the outer signature value\n"
"  --out FILE            where to write the DER (required)\n"
"  prints: transactionID=..., senderNonce=<hex>\n"
"\n"
"reply: take a CertRep apart.\n"
"  --in FILE             the CertRep, DER (required)\n"
"  --ra FILE             certificate expected to have signed it\n"
"  --key FILE            key of the request's signer, to open the envelope\n"
"  --signer FILE         certificate that signed the request\n"
"  --cert-out FILE       write the certificates of a SUCCESS reply (PEM,\n"
"                        in the order they appear)\n"
"  --expect-nonce HEX    fail unless recipientNonce is HEX\n"
"  --csr-key FILE        key the issued certificate must carry (default:\n"
"                        --key; differs for renewals)\n"
"  prints: messageType, pkiStatus, failInfo, failInfoText, transactionID,\n"
"          recipientNonce, senderNonce, signatureOk, signerIsRA,\n"
"          attributeTypesOk, envelope, cipher, certs, and for the first\n"
"          certificate certSubject, certSAN, certKeyMatch\n"
"\n"
"certrep: answer a request as a minimal server would (to test this tool\n"
"and to make fuzzer seeds; mod_scep is the real server).\n"
"  --in FILE             the request, DER (required)\n"
"  --ra FILE --ra-key FILE\n"
"                        RA certificate and key: open the request, sign\n"
"                        the reply (required)\n"
"  --status S            SUCCESS (default), FAILURE or PENDING\n"
"  --fail-info NAME      badAlg, badMessageCheck, badRequest (default),\n"
"                        badTime or badCertId\n"
"  --fail-info-text STR  failInfoText of a FAILURE\n"
"  --ca FILE --ca-key FILE\n"
"                        issuer of the certificate of a SUCCESS (default:\n"
"                        the RA), made from the CSR's subject and key\n"
"  --out FILE            where to write the DER (required)\n"
"\n"
"Exit status: 0 done, 1 failed (reason on stderr), 2 usage error.\n");
}

static int file_exists(apr_pool_t *p, const char *file)
{
    apr_finfo_t fi;

    return apr_stat(&fi, file, APR_FINFO_TYPE, p) == APR_SUCCESS;
}

static void read_file(apr_pool_t *p, const char *file,
                      unsigned char **buf, apr_size_t *len)
{
    apr_file_t *f;
    apr_finfo_t fi;
    apr_status_t rv;
    char msg[120];

    rv = apr_file_open(&f, file, APR_FOPEN_READ | APR_FOPEN_BINARY,
                       APR_OS_DEFAULT, p);
    if (rv == APR_SUCCESS) {
        rv = apr_file_info_get(&fi, APR_FINFO_SIZE, f);
    }
    if (rv == APR_SUCCESS) {
        *len = (apr_size_t)fi.size;
        *buf = apr_palloc(p, *len + 1);
        rv = *len ? apr_file_read_full(f, *buf, *len, NULL) : APR_SUCCESS;
        (*buf)[*len] = '\0';
        apr_file_close(f);
    }
    if (rv != APR_SUCCESS) {
        cli_die("cannot read '%s': %s", file, apr_strerror(rv, msg, sizeof(msg)));
    }
}

static void write_file(apr_pool_t *p, const char *file,
                       const void *buf, apr_size_t len, int private)
{
    apr_file_t *f;
    apr_status_t rv;
    char msg[120];

    rv = apr_file_open(&f, file, APR_FOPEN_WRITE | APR_FOPEN_CREATE
                       | APR_FOPEN_TRUNCATE | APR_FOPEN_BINARY,
                       private ? (APR_FPROT_UREAD | APR_FPROT_UWRITE)
                               : APR_OS_DEFAULT, p);
    if (rv == APR_SUCCESS) {
        rv = apr_file_write_full(f, buf, len, NULL);
        if (rv == APR_SUCCESS) {
            rv = apr_file_close(f);
        }
        else {
            apr_file_close(f);
        }
    }
    if (rv != APR_SUCCESS) {
        cli_die("cannot write '%s': %s", file, apr_strerror(rv, msg, sizeof(msg)));
    }
}

/* The contents of a memory BIO written to a file, then the BIO freed. */
static void write_bio(apr_pool_t *p, const char *file, BIO *bio, int private)
{
    char *data;
    long n = BIO_get_mem_data(bio, &data);

    write_file(p, file, data, n > 0 ? (apr_size_t)n : 0, private);
    BIO_free(bio);
}

static const char *hex_upper(apr_pool_t *p, const unsigned char *buf,
                             apr_size_t len)
{
    char *s = apr_pstrdup(p, ca_hex(p, buf, len));
    char *c;

    for (c = s; *c; c++) {
        if (*c >= 'a' && *c <= 'f') {
            *c = (char)(*c - 'a' + 'A');
        }
    }
    return s;
}

/* The key in file, or a fresh RSA 2048 key written there. */
static EVP_PKEY *load_or_make_key(apr_pool_t *p, const char *file)
{
    EVP_PKEY *k;
    BIO *bio;

    if (file_exists(p, file)) {
        return cli_load_key(p, file);
    }
    k = ca_pkey_own(p, EVP_RSA_gen(2048));
    bio = BIO_new(BIO_s_mem());
    if (!k || !bio || !PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0,
                                                NULL, NULL)) {
        cli_die("cannot make an RSA key: %s", ca_openssl_errors(p));
    }
    write_bio(p, file, bio, 1);
    return k;
}

/* Every certificate of a PEM file, or the one certificate of a DER file,
 * added to a stack that holds a reference of its own. */
static void add_certs(apr_pool_t *p, STACK_OF(X509) *to, const char *file)
{
    STACK_OF(X509) *sk;
    const char *err = NULL;
    X509 *x;
    int i;

    if (ca_load_certs(p, file, &sk, &err) == APR_SUCCESS) {
        for (i = 0; i < sk_X509_num(sk); i++) {
            x = sk_X509_value(sk, i);
            X509_up_ref(x);
            sk_X509_push(to, x);
        }
        return;
    }
    x = cli_load_cert(p, file);
    X509_up_ref(x);
    sk_X509_push(to, x);
}

/*
 * "/CN=x/O=y" as openssl req -subj reads it: a backslash escapes the next
 * character.  Fields with several values ("+") are not supported.
 */
static X509_NAME *parse_name(apr_pool_t *p, const char *s)
{
    X509_NAME *name = X509_NAME_new();
    char *buf = apr_palloc(p, strlen(s) + 1);
    const char *c = s;

    if (!name) {
        cli_die("out of memory");
    }
    if (*c != '/') {
        X509_NAME_free(name);
        cli_die("a name must start with '/': '%s'", s);
    }
    c++;
    while (*c) {
        char *field, *value = NULL, *o = buf;

        while (*c && *c != '/') {
            if (*c == '\\' && c[1]) {
                c++;
                *o++ = *c++;
                continue;
            }
            if (*c == '=' && !value) {
                *o++ = '\0';
                value = o;
                c++;
                continue;
            }
            *o++ = *c++;
        }
        *o = '\0';
        if (*c == '/') {
            c++;
        }
        field = buf;
        if (!*field && !value) {
            continue;
        }
        if (!value || !*field) {
            X509_NAME_free(name);
            cli_die("bad name component in '%s' (want FIELD=value)", s);
        }
        if (!X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                        (unsigned char *)value, -1, -1, 0)) {
            X509_NAME_free(name);
            cli_die("bad name component '%s=%s': %s", field, value,
                ca_openssl_errors(p));
        }
    }
    return name;
}

/* Whether every character fits a PrintableString. */
static int is_printable(const char *s)
{
    for (; *s; s++) {
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')
              || (*s >= '0' && *s <= '9') || strchr(" '()+,-./:=?", *s))) {
            return 0;
        }
    }
    return 1;
}

/* Flip one bit in the middle of the first copy of needle inside buf. */
static void flip_inside(unsigned char *buf, apr_size_t len,
                        const unsigned char *needle, apr_size_t nlen,
                        const char *what)
{
    apr_size_t i;

    if (nlen > 0 && nlen <= len) {
        for (i = 0; i + nlen <= len; i++) {
            if (memcmp(buf + i, needle, nlen) == 0) {
                buf[i + nlen / 2] ^= 0x01;
                return;
            }
        }
    }
    cli_die("cannot find the %s to corrupt", what);
}

static const char *random_uuid(apr_pool_t *p)
{
    unsigned char b[16];
    const char *h;

    if (RAND_bytes(b, sizeof(b)) != 1) {
        cli_die("no random numbers");
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    h = hex_upper(p, b, sizeof(b));
    return apr_psprintf(p, "%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12,
                        h + 16, h + 20);
}

/* A temporary self-signed signer, as Apple makes it. */
static X509 *make_signer(apr_pool_t *p, EVP_PKEY *key, const char *cn)
{
    X509 *x = ca_x509_own(p, X509_new());
    X509_NAME *name = X509_NAME_new();
    X509_EXTENSION *ext;
    BIGNUM *bn = BN_new();
    int ok;

    ok = x && name && bn
         && X509_set_version(x, X509_VERSION_3)
         && BN_rand(bn, 63, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY)
         && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x))
         && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                       (const unsigned char *)cn, -1, -1, 0)
         && X509_set_subject_name(x, name)
         && X509_set_issuer_name(x, name)
         && X509_gmtime_adj(X509_getm_notBefore(x), -3600)
         && X509_gmtime_adj(X509_getm_notAfter(x), 365L * 86400)
         && X509_set_pubkey(x, key);
    if (ok) {
        ext = X509V3_EXT_conf_nid(NULL, NULL, NID_key_usage,
                                  "critical,digitalSignature,keyEncipherment");
        ok = ext && X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    ok = ok && X509_sign(x, key, EVP_sha256()) > 0;
    BN_free(bn);
    X509_NAME_free(name);
    if (!ok) {
        cli_die("cannot make the self-signed signer: %s", ca_openssl_errors(p));
    }
    return x;
}

static void make_csr(apr_pool_t *p, const request_opts_t *o, EVP_PKEY *key,
                     const unsigned char **der, apr_size_t *len)
{
    X509_REQ *req = ca_req_own(p, X509_REQ_new());
    X509_NAME *name;
    int ok;

    if (!req) {
        cli_die("out of memory");
    }
    name = parse_name(p, o->subject ? o->subject : "/CN=scep-test-client");
    ok = X509_REQ_set_version(req, 0)
         && X509_REQ_set_subject_name(req, name)
         && X509_REQ_set_pubkey(req, key);
    X509_NAME_free(name);
    if (ok && o->san) {
        STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, NULL,
                                                  NID_subject_alt_name,
                                                  o->san);

        ok = exts && ext && sk_X509_EXTENSION_push(exts, ext)
             && X509_REQ_add_extensions(req, exts);
        if (!ok) {
            cli_die("bad --san '%s': %s", o->san, ca_openssl_errors(p));
        }
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    }
    if (ok && o->challenge) {
        int type = V_ASN1_PRINTABLESTRING;

        if (o->challenge_type && !strcmp(o->challenge_type, "utf8")) {
            type = V_ASN1_UTF8STRING;
        }
        else if (o->challenge_type && strcmp(o->challenge_type, "printable")) {
            cli_die_usage("--challenge-type is printable or utf8");
        }
        else if (!is_printable(o->challenge)) {
            type = V_ASN1_UTF8STRING;
        }
        ok = X509_REQ_add1_attr_by_NID(req, NID_pkcs9_challengePassword,
                                       type,
                                       (const unsigned char *)o->challenge,
                                       (int)strlen(o->challenge));
    }
    ok = ok && X509_REQ_sign(req, key, EVP_sha256()) > 0;
    if (!ok || ca_req_der(p, req, der, len) != APR_SUCCESS) {
        cli_die("cannot make the CSR: %s", ca_openssl_errors(p));
    }
    if (o->bad_csr_signature) {
        const ASN1_BIT_STRING *sig;

        X509_REQ_get0_signature(req, &sig, NULL);
        flip_inside((unsigned char *)*der, *len, sig->data,
                    (apr_size_t)sig->length, "CSR signature");
    }
}

/* A CSR from a file, PEM or DER, as DER. */
static void load_csr(apr_pool_t *p, const char *file,
                     const unsigned char **der, apr_size_t *len)
{
    unsigned char *buf;
    apr_size_t n;
    X509_REQ *req;
    BIO *bio;

    read_file(p, file, &buf, &n);
    if (ca_req_parse(p, buf, n)) {
        *der = buf;
        *len = n;
        return;
    }
    bio = BIO_new_mem_buf(buf, (int)n);
    req = ca_req_own(p, bio ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL)
                            : NULL);
    BIO_free(bio);
    if (!req || ca_req_der(p, req, der, len) != APR_SUCCESS) {
        cli_die("'%s' holds no CSR (PEM or DER)", file);
    }
}

/* Split "CAFILE:REST" at the first ':' after which REST starts. */
static void split_spec(apr_pool_t *p, const char *spec, const char *opt,
                       char **file, char **rest)
{
    char *s = apr_pstrdup(p, spec);
    char *c = strchr(s, ':');

    if (!c || c == s || !c[1]) {
        cli_die_usage("%s wants CAFILE:VALUE, not '%s'", opt, spec);
    }
    *c = '\0';
    *file = s;
    *rest = c + 1;
}

static void make_issuer_and_serial(apr_pool_t *p, const char *spec,
                                   const unsigned char **der,
                                   apr_size_t *len)
{
    PKCS7_ISSUER_AND_SERIAL *ias = PKCS7_ISSUER_AND_SERIAL_new();
    BIGNUM *bn = NULL;
    unsigned char *buf = NULL;
    char *file, *hex;
    int n = 0;

    split_spec(p, spec, "--issuer-and-serial", &file, &hex);
    if (!ias || !BN_hex2bn(&bn, hex) || bn == NULL
        || !X509_NAME_set(&ias->issuer,
                          X509_get_subject_name(cli_load_cert(p, file)))
        || !BN_to_ASN1_INTEGER(bn, ias->serial)
        || (n = i2d_PKCS7_ISSUER_AND_SERIAL(ias, &buf)) <= 0) {
        cli_die("cannot build IssuerAndSerialNumber from '%s': %s", spec,
            ca_openssl_errors(p));
    }
    *der = apr_pmemdup(p, buf, n);
    *len = (apr_size_t)n;
    OPENSSL_free(buf);
    BN_free(bn);
    PKCS7_ISSUER_AND_SERIAL_free(ias);
}

/* DER length octets for len, into out (at most 5 bytes); their count. */
static apr_size_t der_length(unsigned char *out, apr_size_t len)
{
    apr_size_t n = 0, i;

    if (len < 0x80) {
        out[0] = (unsigned char)len;
        return 1;
    }
    for (i = len; i; i >>= 8) {
        n++;
    }
    out[0] = (unsigned char)(0x80 | n);
    for (i = 0; i < n; i++) {
        out[n - i] = (unsigned char)(len >> (8 * i));
    }
    return n + 1;
}

/* IssuerAndSubject ::= SEQUENCE { issuer Name, subject Name } */
static void make_issuer_and_subject(apr_pool_t *p, const char *spec,
                                    const unsigned char **der,
                                    apr_size_t *len)
{
    unsigned char *issuer = NULL, *subject = NULL, *buf, hdr[6];
    X509_NAME *name;
    char *file, *subj;
    int ni, ns;
    apr_size_t nh;

    split_spec(p, spec, "--issuer-and-subject", &file, &subj);
    ni = i2d_X509_NAME(X509_get_subject_name(cli_load_cert(p, file)), &issuer);
    name = parse_name(p, subj);
    ns = i2d_X509_NAME(name, &subject);
    X509_NAME_free(name);
    if (ni <= 0 || ns <= 0) {
        cli_die("cannot build IssuerAndSubject from '%s'", spec);
    }
    hdr[0] = 0x30;
    nh = 1 + der_length(hdr + 1, (apr_size_t)(ni + ns));
    buf = apr_palloc(p, nh + ni + ns);
    memcpy(buf, hdr, nh);
    memcpy(buf + nh, issuer, ni);
    memcpy(buf + nh + ni, subject, ns);
    OPENSSL_free(issuer);
    OPENSSL_free(subject);
    *der = buf;
    *len = nh + ni + ns;
}

static const EVP_CIPHER *cipher_by_name(apr_pool_t *p, const char *name)
{
    static const struct {
        const char *opt, *ossl;
    } map[] = {
        { "des", "DES-CBC" },
        { "des3", "DES-EDE3-CBC" },
        { "aes128", "AES-128-CBC" },
        { "aes192", "AES-192-CBC" },
        { "aes256", "AES-256-CBC" }
    };
    const EVP_CIPHER *c;
    apr_size_t i;

    for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (!strcmp(name, map[i].opt)) {
            /* fetched, so that single DES comes from the legacy provider */
            c = EVP_CIPHER_fetch(NULL, map[i].ossl, NULL);
            if (!c) {
                cli_die("cipher %s is not available here: %s", map[i].ossl,
                    ca_openssl_errors(p));
            }
            return c;
        }
    }
    cli_die_usage("unknown --cipher '%s'", name);
}

static const EVP_MD *md_by_name(const char *name)
{
    if (!strcmp(name, "sha1")) {
        return EVP_sha1();
    }
    if (!strcmp(name, "sha256")) {
        return EVP_sha256();
    }
    if (!strcmp(name, "sha512")) {
        return EVP_sha512();
    }
    cli_die_usage("unknown --digest '%s'", name);
}

/* Upper-case hex SHA-1 of the public key (RSAPublicKey), as Apple does. */
static const char *key_transaction_id(apr_pool_t *p, EVP_PKEY *key)
{
    unsigned char *pub = NULL, md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int n = i2d_PublicKey(key, &pub);

    if (n <= 0 || !EVP_Digest(pub, n, md, &mdlen, EVP_sha1(), NULL)) {
        cli_die("cannot hash the public key: %s", ca_openssl_errors(p));
    }
    OPENSSL_free(pub);
    return hex_upper(p, md, mdlen);
}

static int cmd_request(apr_pool_t *p, int argc, const char *const *argv)
{
    static const apr_getopt_option_t opts[] = {
        { "ra", 'r', 1, "" },
        { "key", 'k', 1, "" },
        { "signer", 's', 1, "" },
        { "signer-key", 'K', 1, "" },
        { "signer-cn", 'N', 1, "" },
        { "signer-out", 'S', 1, "" },
        { "subject", 'j', 1, "" },
        { "san", 'a', 1, "" },
        { "challenge", 'c', 1, "" },
        { "challenge-type", 'C', 1, "" },
        { "csr", 'q', 1, "" },
        { "type", 't', 1, "" },
        { "cipher", 'e', 1, "" },
        { "digest", 'd', 1, "" },
        { "transaction-id", 'i', 1, "" },
        { "bad-signature", 'B', 0, "" },
        { "bad-csr-signature", 'Q', 0, "" },
        { "no-transaction-id", 'I', 0, "" },
        { "no-content", 'n', 0, "" },
        { "content-raw", 'w', 1, "" },
        { "issuer-and-serial", 'l', 1, "" },
        { "issuer-and-subject", 'u', 1, "" },
        { "out", 'o', 1, "" },
        { "help", 'h', 0, "" },
        { NULL, 0, 0, NULL }
    };
    request_opts_t o;
    apr_getopt_t *g;
    const char *arg, *err = NULL;
    char *end;
    int ch, i, sources;
    apr_status_t rv;
    EVP_PKEY *key, *signer_key;
    X509 *signer;
    STACK_OF(X509) *recipients;
    const unsigned char *content = NULL, *der;
    apr_size_t content_len = 0, der_len;
    unsigned char nonce[SCEP_NONCE_LEN];
    scep_build_t b;

    memset(&o, 0, sizeof(o));
    o.ra_files = apr_array_make(p, 2, sizeof(const char *));
    o.type = SCEP_MSG_PKCSREQ;
    o.cipher = "aes128";
    o.digest = "sha256";

    apr_getopt_init(&g, p, argc, argv);
    while ((rv = apr_getopt_long(g, opts, &ch, &arg)) == APR_SUCCESS) {
        switch (ch) {
        case 'r':
            APR_ARRAY_PUSH(o.ra_files, const char *) = arg;
            break;
        case 'k':
            o.key_file = arg;
            break;
        case 's':
            o.signer_file = arg;
            break;
        case 'K':
            o.signer_key_file = arg;
            break;
        case 'N':
            o.signer_cn = arg;
            break;
        case 'S':
            o.signer_out = arg;
            break;
        case 'j':
            o.subject = arg;
            break;
        case 'a':
            o.san = arg;
            break;
        case 'c':
            o.challenge = arg;
            break;
        case 'C':
            o.challenge_type = arg;
            break;
        case 'q':
            o.csr_file = arg;
            break;
        case 't':
            o.type = (int)strtol(arg, &end, 10);
            if (!*arg || *end) {
                cli_die_usage("--type wants a number, not '%s'", arg);
            }
            break;
        case 'e':
            o.cipher = arg;
            break;
        case 'd':
            o.digest = arg;
            break;
        case 'i':
            o.transaction_id = arg;
            break;
        case 'B':
            o.bad_signature = 1;
            break;
        case 'Q':
            o.bad_csr_signature = 1;
            break;
        case 'I':
            o.no_transaction_id = 1;
            break;
        case 'n':
            o.no_content = 1;
            break;
        case 'w':
            o.content_raw = arg;
            break;
        case 'l':
            o.issuer_and_serial = arg;
            break;
        case 'u':
            o.issuer_and_subject = arg;
            break;
        case 'o':
            o.out = arg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        }
    }
    if (rv != APR_EOF) {
        cli_die_usage("bad option for request");
    }
    if (g->ind < argc) {
        cli_die_usage("unexpected argument '%s'", argv[g->ind]);
    }
    if (!o.out) {
        cli_die_usage("request needs --out");
    }
    sources = !!o.csr_file + !!o.content_raw + !!o.issuer_and_serial
              + !!o.issuer_and_subject + !!o.no_content;
    if (sources > 1) {
        cli_die_usage("--csr, --content-raw, --issuer-and-serial, "
                  "--issuer-and-subject and --no-content exclude each other");
    }
    if (o.transaction_id && o.no_transaction_id) {
        cli_die_usage("--transaction-id and --no-transaction-id exclude each "
                  "other");
    }
    if (!o.no_content && o.ra_files->nelts == 0) {
        cli_die_usage("request needs --ra to encrypt to");
    }
    if (!o.key_file && !(o.signer_file && o.signer_key_file)) {
        cli_die_usage("request needs --key (or --signer and --signer-key)");
    }

    key = o.key_file ? load_or_make_key(p, o.key_file) : NULL;
    signer_key = o.signer_key_file ? cli_load_key(p, o.signer_key_file) : key;
    if (o.signer_file) {
        signer = cli_load_cert(p, o.signer_file);
    }
    else {
        signer = make_signer(p, signer_key, o.signer_cn ? o.signer_cn
                                                        : random_uuid(p));
        if (o.signer_out) {
            BIO *bio = BIO_new(BIO_s_mem());

            if (!bio || !PEM_write_bio_X509(bio, signer)) {
                cli_die("cannot encode the signer: %s", ca_openssl_errors(p));
            }
            write_bio(p, o.signer_out, bio, 0);
        }
    }
    if (!X509_check_private_key(signer, signer_key)) {
        cli_die("the signer certificate does not match its key");
    }

    recipients = ca_x509_stack_own(p, sk_X509_new_null());
    for (i = 0; i < o.ra_files->nelts; i++) {
        add_certs(p, recipients, APR_ARRAY_IDX(o.ra_files, i, const char *));
    }

    if (o.content_raw) {
        unsigned char *buf;

        read_file(p, o.content_raw, &buf, &content_len);
        content = buf;
    }
    else if (o.issuer_and_serial) {
        make_issuer_and_serial(p, o.issuer_and_serial, &content,
                               &content_len);
    }
    else if (o.issuer_and_subject) {
        make_issuer_and_subject(p, o.issuer_and_subject, &content,
                                &content_len);
    }
    else if (o.csr_file) {
        load_csr(p, o.csr_file, &content, &content_len);
    }
    else if (!o.no_content) {
        if (!key) {
            cli_die_usage("making a CSR needs --key");
        }
        make_csr(p, &o, key, &content, &content_len);
    }

    if (RAND_bytes(nonce, sizeof(nonce)) != 1) {
        cli_die("no random numbers");
    }
    memset(&b, 0, sizeof(b));
    b.message_type = o.type;
    if (!o.no_transaction_id) {
        b.transaction_id = o.transaction_id
                           ? o.transaction_id
                           : key_transaction_id(p, key ? key : signer_key);
    }
    b.sender_nonce = nonce;
    b.pki_status = SCEP_STATUS_NONE;
    b.fail_info = SCEP_FAIL_NONE;
    b.content = content;
    b.content_len = content_len;
    b.recipients = recipients;
    b.cipher = cipher_by_name(p, o.cipher);
    b.signer = signer;
    b.signer_key = signer_key;
    b.md = md_by_name(o.digest);

    rv = scep_msg_build(p, &b, &der, &der_len, &err);
    EVP_CIPHER_free((EVP_CIPHER *)b.cipher);
    if (rv != APR_SUCCESS) {
        cli_die("cannot build the pkiMessage: %s", err);
    }
    if (o.bad_signature) {
        const unsigned char *q = der;
        PKCS7 *p7 = d2i_PKCS7(NULL, &q, (long)der_len);
        PKCS7_SIGNER_INFO *si;
        unsigned char *copy = apr_pmemdup(p, der, der_len);

        si = p7 ? sk_PKCS7_SIGNER_INFO_value(PKCS7_get_signer_info(p7), 0)
                : NULL;
        if (!si) {
            cli_die("cannot re-read the message to corrupt it");
        }
        flip_inside(copy, der_len, si->enc_digest->data,
                    (apr_size_t)si->enc_digest->length, "signature value");
        PKCS7_free(p7);
        der = copy;
    }
    write_file(p, o.out, der, der_len, 0);

    printf("transactionID=%s\n", b.transaction_id ? b.transaction_id : "");
    printf("senderNonce=%s\n", ca_hex(p, nonce, sizeof(nonce)));
    return 0;
}

/* The wire types of the SCEP attributes: PrintableString for the text ones,
 * OCTET STRING for the nonces, one value each (what Apple and sscep check).
 * failInfoText, when there, is UTF8String. */
static int attribute_types_ok(const unsigned char *der, apr_size_t len)
{
    static const struct {
        const char *oid;
        int type;
    } want[] = {
        { "2.16.840.1.113733.1.9.7", V_ASN1_PRINTABLESTRING },
        { "2.16.840.1.113733.1.9.2", V_ASN1_PRINTABLESTRING },
        { "2.16.840.1.113733.1.9.3", V_ASN1_PRINTABLESTRING },
        { "2.16.840.1.113733.1.9.4", V_ASN1_PRINTABLESTRING },
        { "2.16.840.1.113733.1.9.5", V_ASN1_OCTET_STRING },
        { "2.16.840.1.113733.1.9.6", V_ASN1_OCTET_STRING },
        { "1.3.6.1.5.5.7.24.1", V_ASN1_UTF8STRING }
    };
    const unsigned char *q = der;
    PKCS7 *p7 = d2i_PKCS7(NULL, &q, (long)len);
    PKCS7_SIGNER_INFO *si;
    apr_size_t i;
    int ok = 1;

    si = p7 ? sk_PKCS7_SIGNER_INFO_value(PKCS7_get_signer_info(p7), 0)
            : NULL;
    if (!si) {
        PKCS7_free(p7);
        return 0;
    }
    for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        ASN1_OBJECT *obj = OBJ_txt2obj(want[i].oid, 1);
        int loc = obj ? X509at_get_attr_by_OBJ(si->auth_attr, obj, -1) : -1;
        X509_ATTRIBUTE *attr;
        ASN1_TYPE *t;

        ASN1_OBJECT_free(obj);
        if (loc < 0) {
            continue;
        }
        attr = X509at_get_attr(si->auth_attr, loc);
        t = X509_ATTRIBUTE_get0_type(attr, 0);
        if (X509_ATTRIBUTE_count(attr) != 1 || !t || t->type != want[i].type) {
            fprintf(stderr, PROG ": attribute %s has the wrong ASN.1 type "
                    "(%d)\n", want[i].oid, t ? t->type : -1);
            ok = 0;
        }
    }
    PKCS7_free(p7);
    ERR_clear_error();
    return ok;
}

/* A name in its own order: /O=Example Org/CN=x */
static const char *name_text(apr_pool_t *p, const X509_NAME *name)
{
    const char *out = "";
    int i;

    for (i = 0; i < X509_NAME_entry_count(name); i++) {
        const X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
        unsigned char *utf8 = NULL;
        int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
        int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));

        out = apr_pstrcat(p, out, "/",
                          nid != NID_undef ? OBJ_nid2sn(nid) : "?", "=",
                          n >= 0 ? apr_pstrmemdup(p, (char *)utf8, n) : "?",
                          NULL);
        OPENSSL_free(utf8);
    }
    return out;
}

/* subjectAltName as "DNS:a,DNS:b,email:x@y,IP:1.2.3.4,URI:u", "" if none */
static const char *san_text(apr_pool_t *p, X509 *x)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL,
                                           NULL);
    const char *out = "";
    int i;

    for (i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        const char *item;

        switch (g->type) {
        case GEN_DNS:
            item = apr_pstrcat(p, "DNS:", apr_pstrmemdup(p,
                               (char *)g->d.dNSName->data,
                               g->d.dNSName->length), NULL);
            break;
        case GEN_EMAIL:
            item = apr_pstrcat(p, "email:", apr_pstrmemdup(p,
                               (char *)g->d.rfc822Name->data,
                               g->d.rfc822Name->length), NULL);
            break;
        case GEN_URI:
            item = apr_pstrcat(p, "URI:", apr_pstrmemdup(p,
                               (char *)g->d.uniformResourceIdentifier->data,
                               g->d.uniformResourceIdentifier->length), NULL);
            break;
        case GEN_IPADD:
            if (g->d.iPAddress->length == 4) {
                const unsigned char *a = g->d.iPAddress->data;

                item = apr_psprintf(p, "IP:%d.%d.%d.%d", a[0], a[1], a[2],
                                    a[3]);
            }
            else {
                item = apr_pstrcat(p, "IP:", ca_hex(p, g->d.iPAddress->data,
                                   g->d.iPAddress->length), NULL);
            }
            break;
        case GEN_DIRNAME:
            item = apr_pstrcat(p, "dirName:", name_text(p, g->d.dirn), NULL);
            break;
        default:
            item = apr_psprintf(p, "other%d:?", g->type);
            break;
        }
        out = apr_pstrcat(p, out, *out ? "," : "", item, NULL);
    }
    GENERAL_NAMES_free(gens);
    return out;
}

static const char *status_name(int status)
{
    switch (status) {
    case SCEP_STATUS_SUCCESS:
        return "SUCCESS";
    case SCEP_STATUS_FAILURE:
        return "FAILURE";
    case SCEP_STATUS_PENDING:
        return "PENDING";
    default:
        return "none";
    }
}

static int cmd_reply(apr_pool_t *p, int argc, const char *const *argv)
{
    static const apr_getopt_option_t opts[] = {
        { "in", 'i', 1, "" },
        { "ra", 'r', 1, "" },
        { "key", 'k', 1, "" },
        { "signer", 's', 1, "" },
        { "cert-out", 'o', 1, "" },
        { "expect-nonce", 'n', 1, "" },
        { "csr-key", 'c', 1, "" },
        { "help", 'h', 0, "" },
        { NULL, 0, 0, NULL }
    };
    reply_opts_t o;
    apr_getopt_t *g;
    const char *arg, *err = NULL;
    int ch, i, failed = 0;
    apr_status_t rv;
    unsigned char *der;
    apr_size_t der_len;
    scep_msg_t *msg;
    X509 *ra = NULL;
    STACK_OF(X509) *certs = NULL;

    memset(&o, 0, sizeof(o));
    apr_getopt_init(&g, p, argc, argv);
    while ((rv = apr_getopt_long(g, opts, &ch, &arg)) == APR_SUCCESS) {
        switch (ch) {
        case 'i':
            o.in = arg;
            break;
        case 'r':
            o.ra_file = arg;
            break;
        case 'k':
            o.key_file = arg;
            break;
        case 's':
            o.signer_file = arg;
            break;
        case 'o':
            o.cert_out = arg;
            break;
        case 'n':
            o.expect_nonce = arg;
            break;
        case 'c':
            o.csr_key_file = arg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        }
    }
    if (rv != APR_EOF) {
        cli_die_usage("bad option for reply");
    }
    if (g->ind < argc) {
        cli_die_usage("unexpected argument '%s'", argv[g->ind]);
    }
    if (!o.in) {
        cli_die_usage("reply needs --in");
    }
    if (!o.key_file != !o.signer_file) {
        cli_die_usage("--key and --signer go together");
    }
    if (o.ra_file) {
        ra = cli_load_cert(p, o.ra_file);
    }

    read_file(p, o.in, &der, &der_len);
    if (scep_msg_parse(p, der, der_len, &msg, &err) != APR_SUCCESS) {
        cli_die("not a pkiMessage: %s", err);
    }

    printf("messageType=%d\n", msg->message_type);
    printf("pkiStatus=%s\n", status_name(msg->pki_status));
    printf("failInfo=%s\n", scep_fail_name(msg->fail_info));
    printf("failInfoText=%s\n", msg->fail_info_text ? msg->fail_info_text
                                                    : "");
    printf("transactionID=%s\n", msg->transaction_id ? msg->transaction_id
                                                     : "");
    printf("recipientNonce=%s\n",
           msg->recipient_nonce ? ca_hex(p, msg->recipient_nonce,
                                         msg->recipient_nonce_len) : "");
    printf("senderNonce=%s\n",
           msg->sender_nonce ? ca_hex(p, msg->sender_nonce,
                                      msg->sender_nonce_len) : "");
    printf("signatureOk=%d\n", msg->signature_ok);
    if (!msg->signature_ok && msg->signature_error) {
        fprintf(stderr, PROG ": %s\n", msg->signature_error);
    }
    printf("signerIsRA=%d\n", ra ? X509_cmp(msg->signer, ra) == 0 : 0);
    printf("attributeTypesOk=%d\n", attribute_types_ok(der, der_len));
    printf("envelope=%s\n", msg->envelope ? "present" : "absent");
    printf("cipher=%s\n", msg->cipher_nid != NID_undef
                          ? OBJ_nid2sn(msg->cipher_nid) : "none");

    if (msg->envelope && o.key_file) {
        X509 *signer = cli_load_cert(p, o.signer_file);
        EVP_PKEY *key = cli_load_key(p, o.key_file);
        const unsigned char *data;
        apr_size_t len;

        if (scep_msg_decrypt(p, msg, signer, key, &data, &len, &err)
            != APR_SUCCESS) {
            fprintf(stderr, PROG ": %s\n", err);
            failed = 1;
        }
        else if (!(certs = ca_p7_certs_parse(p, data, len))) {
            fprintf(stderr, PROG ": the envelope holds no degenerate "
                    "certificates-only SignedData\n");
            failed = 1;
        }
    }
    printf("certs=%d\n", certs ? sk_X509_num(certs) : 0);
    if (certs && sk_X509_num(certs) > 0) {
        X509 *x = sk_X509_value(certs, 0);

        printf("certSubject=%s\n", name_text(p, X509_get_subject_name(x)));
        printf("certSAN=%s\n", san_text(p, x));
        if (o.csr_key_file || o.key_file) {
            /* the issued certificate carries the CSR key; for renewals
             * that is not the key that signed the request */
            EVP_PKEY *k = cli_load_key(p, o.csr_key_file ? o.csr_key_file
                                                     : o.key_file);

            printf("certKeyMatch=%d\n", X509_check_private_key(x, k) == 1);
            ERR_clear_error();
        }
    }
    if (certs && o.cert_out) {
        BIO *bio = BIO_new(BIO_s_mem());

        for (i = 0; bio && i < sk_X509_num(certs); i++) {
            if (!PEM_write_bio_X509(bio, sk_X509_value(certs, i))) {
                cli_die("cannot encode a certificate: %s", ca_openssl_errors(p));
            }
        }
        if (!bio) {
            cli_die("out of memory");
        }
        write_bio(p, o.cert_out, bio, 0);
    }
    if (o.expect_nonce) {
        const char *got = msg->recipient_nonce
                          ? ca_hex(p, msg->recipient_nonce,
                                   msg->recipient_nonce_len) : "";

        if (strcasecmp(got, o.expect_nonce)) {
            fprintf(stderr, PROG ": recipientNonce %s is not the expected "
                    "%s\n", *got ? got : "(absent)", o.expect_nonce);
            failed = 1;
        }
    }
    return failed;
}

static int fail_by_name(const char *name)
{
    int i;

    for (i = SCEP_FAIL_BADALG; i <= SCEP_FAIL_BADCERTID; i++) {
        if (!strcasecmp(name, scep_fail_name(i))) {
            return i;
        }
    }
    cli_die_usage("unknown --fail-info '%s'", name);
}

/* A certificate for the CSR's subject and key, signed by ca. */
static X509 *issue(apr_pool_t *p, X509_REQ *req, X509 *ca, EVP_PKEY *ca_key)
{
    X509 *x = ca_x509_own(p, X509_new());
    EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
    BIGNUM *bn = BN_new();
    int ok;

    ok = x && bn && pub
         && X509_set_version(x, X509_VERSION_3)
         && BN_rand(bn, 63, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY)
         && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x))
         && X509_set_subject_name(x, X509_REQ_get_subject_name(req))
         && X509_set_issuer_name(x, X509_get_subject_name(ca))
         && X509_gmtime_adj(X509_getm_notBefore(x), -60)
         && X509_gmtime_adj(X509_getm_notAfter(x), 86400)
         && X509_set_pubkey(x, pub)
         && X509_sign(x, ca_key, EVP_sha256()) > 0;
    BN_free(bn);
    if (!ok) {
        cli_die("cannot issue the certificate: %s", ca_openssl_errors(p));
    }
    return x;
}

static int cmd_certrep(apr_pool_t *p, int argc, const char *const *argv)
{
    static const apr_getopt_option_t opts[] = {
        { "in", 'i', 1, "" },
        { "ra", 'r', 1, "" },
        { "ra-key", 'R', 1, "" },
        { "status", 's', 1, "" },
        { "fail-info", 'f', 1, "" },
        { "fail-info-text", 'F', 1, "" },
        { "ca", 'c', 1, "" },
        { "ca-key", 'C', 1, "" },
        { "out", 'o', 1, "" },
        { "help", 'h', 0, "" },
        { NULL, 0, 0, NULL }
    };
    const char *in = NULL, *ra_file = NULL, *ra_key_file = NULL;
    const char *ca_file = NULL, *ca_key_file = NULL, *out = NULL;
    const char *arg, *err = NULL;
    const unsigned char *data, *der;
    apr_size_t len, der_len;
    apr_getopt_t *g;
    apr_status_t rv;
    unsigned char *req_der;
    scep_msg_t *msg;
    scep_build_t b;
    X509 *ra;
    EVP_PKEY *ra_key;
    int ch;

    memset(&b, 0, sizeof(b));
    b.pki_status = SCEP_STATUS_SUCCESS;
    b.fail_info = SCEP_FAIL_NONE;
    apr_getopt_init(&g, p, argc, argv);
    while ((rv = apr_getopt_long(g, opts, &ch, &arg)) == APR_SUCCESS) {
        switch (ch) {
        case 'i':
            in = arg;
            break;
        case 'r':
            ra_file = arg;
            break;
        case 'R':
            ra_key_file = arg;
            break;
        case 's':
            if (!strcasecmp(arg, "SUCCESS")) {
                b.pki_status = SCEP_STATUS_SUCCESS;
            }
            else if (!strcasecmp(arg, "FAILURE")) {
                b.pki_status = SCEP_STATUS_FAILURE;
            }
            else if (!strcasecmp(arg, "PENDING")) {
                b.pki_status = SCEP_STATUS_PENDING;
            }
            else {
                cli_die_usage("unknown --status '%s'", arg);
            }
            break;
        case 'f':
            b.fail_info = fail_by_name(arg);
            break;
        case 'F':
            b.fail_info_text = arg;
            break;
        case 'c':
            ca_file = arg;
            break;
        case 'C':
            ca_key_file = arg;
            break;
        case 'o':
            out = arg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        }
    }
    if (rv != APR_EOF) {
        cli_die_usage("bad option for certrep");
    }
    if (g->ind < argc) {
        cli_die_usage("unexpected argument '%s'", argv[g->ind]);
    }
    if (!in || !ra_file || !ra_key_file || !out) {
        cli_die_usage("certrep needs --in, --ra, --ra-key and --out");
    }
    if (!ca_file != !ca_key_file) {
        cli_die_usage("--ca and --ca-key go together");
    }
    ra = cli_load_cert(p, ra_file);
    ra_key = cli_load_key(p, ra_key_file);

    read_file(p, in, &req_der, &len);
    if (scep_msg_parse(p, req_der, len, &msg, &err) != APR_SUCCESS) {
        cli_die("not a pkiMessage: %s", err);
    }
    if (b.pki_status == SCEP_STATUS_FAILURE && b.fail_info == SCEP_FAIL_NONE) {
        b.fail_info = SCEP_FAIL_BADREQUEST;
    }
    if (b.pki_status != SCEP_STATUS_FAILURE) {
        b.fail_info = SCEP_FAIL_NONE;
        b.fail_info_text = NULL;
    }
    if (b.pki_status == SCEP_STATUS_SUCCESS) {
        X509_REQ *req;
        STACK_OF(X509) *certs;

        if (scep_msg_decrypt(p, msg, ra, ra_key, &data, &len, &err)
            != APR_SUCCESS) {
            cli_die("%s", err);
        }
        if (!(req = ca_req_parse(p, data, len))) {
            cli_die("the request holds no CSR");
        }
        certs = ca_x509_stack_own(p, sk_X509_new_null());
        /* the stack owns what it holds: give it a copy */
        sk_X509_push(certs, X509_dup(
            issue(p, req, ca_file ? cli_load_cert(p, ca_file) : ra,
                  ca_key_file ? cli_load_key(p, ca_key_file) : ra_key)));
        if (ca_p7_certs_der(p, certs, &b.content, &b.content_len)
            != APR_SUCCESS) {
            cli_die("cannot encode the certificates");
        }
        b.recipients = ca_x509_stack_own(p, sk_X509_new_null());
        X509_up_ref(msg->signer);
        sk_X509_push(b.recipients, msg->signer);
        b.cipher = scep_reply_cipher(msg->cipher_nid);
    }
    b.message_type = SCEP_MSG_CERTREP;
    b.transaction_id = msg->transaction_id ? msg->transaction_id : "";
    b.recipient_nonce = msg->sender_nonce;
    b.recipient_nonce_len = msg->sender_nonce_len;
    b.signer = ra;
    b.signer_key = ra_key;
    b.md = scep_reply_md(msg->md);
    if (scep_msg_build(p, &b, &der, &der_len, &err) != APR_SUCCESS) {
        cli_die("cannot build the CertRep: %s", err);
    }
    write_file(p, out, der, der_len, 0);
    return 0;
}

int main(int argc, const char *const *argv)
{
    apr_pool_t *p;
    const char *err = NULL;
    int rc;

    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")
        || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    cli_init(PROG, usage);
    apr_app_initialize(&argc, &argv, NULL);
    atexit(apr_terminate);
    apr_pool_create(&p, NULL);
    if (scep_msg_init(&err) != APR_SUCCESS) {
        cli_die("%s", err);
    }
    if (!strcmp(argv[1], "request")) {
        rc = cmd_request(p, argc - 1, argv + 1);
    }
    else if (!strcmp(argv[1], "reply")) {
        rc = cmd_reply(p, argc - 1, argv + 1);
    }
    else if (!strcmp(argv[1], "certrep")) {
        rc = cmd_certrep(p, argc - 1, argv + 1);
    }
    else {
        cli_die_usage("unknown command '%s'", argv[1]);
    }
    fflush(stdout);
    apr_pool_destroy(p);
    return rc;
}
