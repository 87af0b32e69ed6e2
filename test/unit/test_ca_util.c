/* Licensed under the Apache License, Version 2.0 (see COPYING). */

/* Unit tests of ca_util.c. */

#include <string.h>

#include <apr_strings.h>
#include <apr_time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "test_common.h"
#include "ca_util.h"

/* Made once for the TCase (RSA key generation is slow), freed after it. */
static EVP_PKEY *ca_key, *leaf_key;
static X509 *ca_cert, *leaf_cert;

static apr_pool_t *pool;

static void keys_setup(void)
{
    ca_key = test_rsa_key(2048);
    leaf_key = test_rsa_key(2048);
    ca_cert = test_self_signed(ca_key, "Unit Test CA",
                               X509v3_KU_KEY_CERT_SIGN | X509v3_KU_CRL_SIGN);
    leaf_cert = test_issue(leaf_key, "leaf", ca_cert, ca_key);
}

static void keys_teardown(void)
{
    X509_free(leaf_cert);
    X509_free(ca_cert);
    EVP_PKEY_free(leaf_key);
    EVP_PKEY_free(ca_key);
}

static void pool_setup(void)
{
    ck_assert_int_eq(apr_pool_create(&pool, NULL), APR_SUCCESS);
}

static void pool_teardown(void)
{
    apr_pool_destroy(pool);
    pool = NULL;
    ERR_clear_error();
}

/* Decode a NUL-terminated string; its status, and the bytes in *out. */
static apr_status_t b64(const char *in, const char **out, apr_size_t *len)
{
    unsigned char *buf = NULL;
    apr_status_t rv;

    rv = ca_base64_decode_lenient(pool, in, strlen(in), &buf, len);
    *out = rv == APR_SUCCESS ? apr_pstrmemdup(pool, (char *)buf, *len)
                             : NULL;
    return rv;
}

/* ---- ca_base64_decode_lenient ----------------------------------------- */

START_TEST(b64_standard)
{
    const char *out;
    apr_size_t len;

    ck_assert_int_eq(b64("SGVsbG8sIHdvcmxkIQ==", &out, &len), APR_SUCCESS);
    ck_assert_uint_eq(len, 13);
    ck_assert_str_eq(out, "Hello, world!");
    ck_assert_int_eq(b64("SGVsbG8=", &out, &len), APR_SUCCESS);
    ck_assert_str_eq(out, "Hello");
    ck_assert_int_eq(b64("SGVsbA==", &out, &len), APR_SUCCESS);
    ck_assert_str_eq(out, "Hell");
    ck_assert_int_eq(b64("SGVs", &out, &len), APR_SUCCESS);
    ck_assert_str_eq(out, "Hel");
    ck_assert_int_eq(b64("", &out, &len), APR_SUCCESS);
    ck_assert_uint_eq(len, 0);
}
END_TEST

START_TEST(b64_whitespace)
{
    const char *out;
    apr_size_t len;

    /* sscep: a newline every 64 characters, arriving as %0A */
    ck_assert_int_eq(b64("SGVs\nbG8s\r\nIHdv cmxk\tIQ==\n", &out, &len),
                     APR_SUCCESS);
    ck_assert_str_eq(out, "Hello, world!");
    ck_assert_int_eq(b64("  SGVsbG8=  ", &out, &len), APR_SUCCESS);
    ck_assert_str_eq(out, "Hello");
}
END_TEST

START_TEST(b64_percent_decoded_line_breaks)
{
    /* what a GET query carries from sscep, once percent-decoded */
    const char *query = "SGVsbG8s%0AIHdvcmxk%0AIQ%3D%3D";
    apr_size_t qlen, len;
    char *text = ca_percent_decode(pool, query, strlen(query), &qlen);
    const char *out;

    ck_assert_str_eq(text, "SGVsbG8s\nIHdvcmxk\nIQ==");
    ck_assert_int_eq(b64(text, &out, &len), APR_SUCCESS);
    ck_assert_str_eq(out, "Hello, world!");
}
END_TEST

START_TEST(b64_missing_padding)
{
    const char *out;
    apr_size_t len;

    ck_assert_int_eq(b64("SGVsbG8", &out, &len), APR_SUCCESS);
    ck_assert_str_eq(out, "Hello");
    ck_assert_int_eq(b64("SGVsbA", &out, &len), APR_SUCCESS);
    ck_assert_str_eq(out, "Hell");
    ck_assert_int_eq(b64("SGVsbG8sIHdvcmxkIQ", &out, &len), APR_SUCCESS);
    ck_assert_str_eq(out, "Hello, world!");
    /* one padding character of two */
    ck_assert_int_eq(b64("SGVsbA=", &out, &len), APR_SUCCESS);
    ck_assert_str_eq(out, "Hell");
}
END_TEST

START_TEST(b64_plus_and_slash)
{
    unsigned char *buf;
    apr_size_t len;

    ck_assert_int_eq(ca_base64_decode_lenient(pool, "+/+/", 4, &buf, &len),
                     APR_SUCCESS);
    ck_assert_uint_eq(len, 3);
    ck_assert_uint_eq(buf[0], 0xfb);
    ck_assert_uint_eq(buf[1], 0xff);
    ck_assert_uint_eq(buf[2], 0xbf);
}
END_TEST

START_TEST(b64_round_trip_random)
{
    unsigned char data[2790], enc[4 * (sizeof(data) / 3 + 1) + 1];
    unsigned char *buf;
    char *wrapped, *w;
    apr_size_t len, i;
    int n;

    ck_assert_int_eq(RAND_bytes(data, sizeof(data)), 1);
    n = EVP_EncodeBlock(enc, data, (int)sizeof(data));
    ck_assert_int_gt(n, 0);
    /* wrap at 64 like sscep's BIO, drop the padding like a sloppy client */
    wrapped = w = apr_palloc(pool, n + n / 64 + 1);
    for (i = 0; i < (apr_size_t)n; i++) {
        if (enc[i] == '=') {
            break;
        }
        if (i && i % 64 == 0) {
            *w++ = '\n';
        }
        *w++ = (char)enc[i];
    }
    *w = '\0';
    ck_assert_int_eq(ca_base64_decode_lenient(pool, wrapped, strlen(wrapped),
                                              &buf, &len), APR_SUCCESS);
    ck_assert_uint_eq(len, sizeof(data));
    ck_assert_int_eq(memcmp(buf, data, len), 0);
}
END_TEST

START_TEST(b64_rejects_base64url)
{
    const char *out;
    apr_size_t len;

    ck_assert_int_eq(b64("-_-_", &out, &len), APR_EINVAL);
    ck_assert_int_eq(b64("SGVs-G8=", &out, &len), APR_EINVAL);
    ck_assert_int_eq(b64("SGVs_G8=", &out, &len), APR_EINVAL);
}
END_TEST

START_TEST(b64_rejects_foreign)
{
    static const char *const bad[] = {
        "SGVs!G8=", "SGVs%0A", "SGVs.bG8", "SGVs\001", "SGVs*", "\xc3\xa9"
    };
    const char *out;
    apr_size_t len, i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(b64(bad[i], &out, &len) == APR_EINVAL,
                      "'%s' should not decode", bad[i]);
    }
    /* an embedded NUL is foreign too */
    ck_assert_int_eq(ca_base64_decode_lenient(pool, "SG\0s", 4,
                                              (unsigned char **)&out, &len),
                     APR_EINVAL);
}
END_TEST

START_TEST(b64_rejects_data_after_padding)
{
    const char *out;
    apr_size_t len;

    ck_assert_int_eq(b64("SGVs=bG8", &out, &len), APR_EINVAL);
    ck_assert_int_eq(b64("SGVsbA==SGVs", &out, &len), APR_EINVAL);
    ck_assert_int_eq(b64("SGVsbA==\nQQ", &out, &len), APR_EINVAL);
    /* three '=' are never right */
    ck_assert_int_eq(b64("SGV===", &out, &len), APR_EINVAL);
    /* a single character left over is not a whole byte */
    ck_assert_int_eq(b64("SGVsb", &out, &len), APR_EINVAL);
    ck_assert_int_eq(b64("A", &out, &len), APR_EINVAL);
}
END_TEST

/* ---- ca_percent_decode ------------------------------------------------- */

START_TEST(pct_plus_stays_plus)
{
    apr_size_t len;
    char *s = ca_percent_decode(pool, "a+b+", 4, &len);

    ck_assert_str_eq(s, "a+b+");
    ck_assert_uint_eq(len, 4);
}
END_TEST

START_TEST(pct_escapes)
{
    apr_size_t len;
    char *s;

    s = ca_percent_decode(pool, "%2B%2b%2F%3D%3d%0A%0d", 21, &len);
    ck_assert_str_eq(s, "++/==\n\r");
    ck_assert_uint_eq(len, 7);
    s = ca_percent_decode(pool, "x%41y", 5, &len);
    ck_assert_str_eq(s, "xAy");
    /* %00 decodes to a NUL inside the output, counted in the length */
    s = ca_percent_decode(pool, "a%00b", 5, &len);
    ck_assert_uint_eq(len, 3);
    ck_assert_int_eq(memcmp(s, "a\0b", 3), 0);
    /* the length given is honoured, not the NUL */
    s = ca_percent_decode(pool, "%41%42", 3, &len);
    ck_assert_str_eq(s, "A");
    /* outlen may be NULL */
    ck_assert_str_eq(ca_percent_decode(pool, "%3D", 3, NULL), "=");
}
END_TEST

START_TEST(pct_truncated_and_bad)
{
    apr_size_t len;

    ck_assert_str_eq(ca_percent_decode(pool, "abc%", 4, &len), "abc%");
    ck_assert_uint_eq(len, 4);
    ck_assert_str_eq(ca_percent_decode(pool, "abc%4", 5, &len), "abc%4");
    ck_assert_str_eq(ca_percent_decode(pool, "%zz", 3, &len), "%zz");
    ck_assert_str_eq(ca_percent_decode(pool, "%4g", 3, &len), "%4g");
    ck_assert_str_eq(ca_percent_decode(pool, "%%41", 4, &len), "%A");
    ck_assert_str_eq(ca_percent_decode(pool, "", 0, &len), "");
    ck_assert_uint_eq(len, 0);
}
END_TEST

/* ---- ca_query_param ---------------------------------------------------- */

START_TEST(query_param_found)
{
    const char *q = "operation=PKIOperation&message=abc";
    apr_size_t len = 99;

    ck_assert_str_eq(ca_query_param(pool, q, "operation", NULL),
                     "PKIOperation");
    ck_assert_str_eq(ca_query_param(pool, q, "message", &len), "abc");
    ck_assert_uint_eq(len, 3);
    /* the value ends at the next '&' only; '=' inside is data */
    ck_assert_str_eq(ca_query_param(pool, "message=a=b&x", "message", &len),
                     "a=b");
    /* the first of two wins; empty parameters are passed over */
    ck_assert_str_eq(ca_query_param(pool, "&&message=1&message=2&",
                                    "message", NULL), "1");
}
END_TEST

START_TEST(query_param_decoded)
{
    apr_size_t len;

    /* '+' is base64 here, not a space */
    ck_assert_str_eq(ca_query_param(pool, "message=a%2Bb+c%2f%3D%0A",
                                    "message", &len), "a+b+c/=\n");
    ck_assert_uint_eq(len, 8);
}
END_TEST

START_TEST(query_param_empty_and_bare)
{
    apr_size_t len = 99;

    ck_assert_str_eq(ca_query_param(pool, "message=&operation=x", "message",
                                    &len), "");
    ck_assert_uint_eq(len, 0);
    len = 99;
    ck_assert_str_eq(ca_query_param(pool, "x=1&message", "message", &len),
                     "");
    ck_assert_uint_eq(len, 0);
    ck_assert_str_eq(ca_query_param(pool, "message&message=1", "message",
                                    NULL), "");
}
END_TEST

START_TEST(query_param_absent)
{
    ck_assert_ptr_null(ca_query_param(pool, NULL, "message", NULL));
    ck_assert_ptr_null(ca_query_param(pool, "", "message", NULL));
    ck_assert_ptr_null(ca_query_param(pool, "&", "message", NULL));
    /* a name only starts or contains the one asked for */
    ck_assert_ptr_null(ca_query_param(pool, "messages=1&mess=2&xmessage=3",
                                      "message", NULL));
    ck_assert_ptr_null(ca_query_param(pool, "mess", "message", NULL));
    /* not decoded before it is matched */
    ck_assert_ptr_null(ca_query_param(pool, "m%65ssage=1", "message", NULL));
    ck_assert_str_eq(ca_query_param(pool, "messages=1&message=2", "message",
                                    NULL), "2");
}
END_TEST

/* ---- ca_secret_equal --------------------------------------------------- */

START_TEST(secret_equal)
{
    ck_assert_int_eq(ca_secret_equal("s3cret", "s3cret"), 1);
    ck_assert_int_eq(ca_secret_equal("s3cret", "s3creT"), 0);
    ck_assert_int_eq(ca_secret_equal("s3cret", "t3cret"), 0);
    /* prefixes either way */
    ck_assert_int_eq(ca_secret_equal("s3cret", "s3cr"), 0);
    ck_assert_int_eq(ca_secret_equal("s3cr", "s3cret"), 0);
    /* a value that repeats the expected one */
    ck_assert_int_eq(ca_secret_equal("ab", "abab"), 0);
    /* empty values */
    ck_assert_int_eq(ca_secret_equal("", "x"), 0);
    ck_assert_int_eq(ca_secret_equal("x", ""), 0);
    ck_assert_int_eq(ca_secret_equal("", ""), 1);
}
END_TEST

/* ---- ca_hex ------------------------------------------------------------ */

START_TEST(hex)
{
    static const unsigned char b[] = { 0x00, 0x01, 0x7f, 0x80, 0xab, 0xff };

    ck_assert_str_eq(ca_hex(pool, b, sizeof(b)), "00017f80abff");
    ck_assert_str_eq(ca_hex(pool, b, 0), "");
}
END_TEST

/* ---- DER, PKCS#7, loading ---------------------------------------------- */

START_TEST(p7_certs_round_trip)
{
    STACK_OF(X509) *in = ca_x509_stack_own(pool, sk_X509_new_null());
    STACK_OF(X509) *out;
    const unsigned char *der, *q;
    apr_size_t len;
    PKCS7 *p7;

    X509_up_ref(leaf_cert);
    sk_X509_push(in, leaf_cert);
    X509_up_ref(ca_cert);
    sk_X509_push(in, ca_cert);
    ck_assert_int_eq(ca_p7_certs_der(pool, in, &der, &len), APR_SUCCESS);
    ck_assert_uint_gt(len, 0);

    out = ca_p7_certs_parse(pool, der, len);
    ck_assert_ptr_nonnull(out);
    ck_assert_int_eq(sk_X509_num(out), 2);
    /* order kept: the issued certificate first */
    ck_assert_int_eq(X509_cmp(sk_X509_value(out, 0), leaf_cert), 0);
    ck_assert_int_eq(X509_cmp(sk_X509_value(out, 1), ca_cert), 0);

    /* degenerate: no signers, id-data content left out */
    q = der;
    p7 = d2i_PKCS7(NULL, &q, (long)len);
    ck_assert_ptr_nonnull(p7);
    ck_assert(PKCS7_type_is_signed(p7));
    ck_assert_int_eq(sk_PKCS7_SIGNER_INFO_num(PKCS7_get_signer_info(p7)), 0);
    ck_assert(PKCS7_type_is_data(p7->d.sign->contents));
    ck_assert_ptr_null(p7->d.sign->contents->d.data);
    PKCS7_free(p7);
}
END_TEST

START_TEST(p7_certs_empty_and_bad)
{
    STACK_OF(X509) *in = ca_x509_stack_own(pool, sk_X509_new_null());
    const unsigned char *der, *cder;
    apr_size_t len, clen;

    /* an empty list still encodes (what ca_p7_certs_parse makes of it,
     * NULL or an empty stack, is left open by the header) */
    ck_assert_int_eq(ca_p7_certs_der(pool, in, &der, &len), APR_SUCCESS);
    ck_assert_uint_gt(len, 0);

    ck_assert_ptr_null(ca_p7_certs_parse(pool, (const unsigned char *)"xx",
                                         2));
    ck_assert_ptr_null(ca_p7_certs_parse(pool, der, 0));
    /* a certificate is not a PKCS#7 */
    ck_assert_int_eq(ca_x509_der(pool, leaf_cert, &cder, &clen),
                     APR_SUCCESS);
    ck_assert_ptr_null(ca_p7_certs_parse(pool, cder, clen));
}
END_TEST

START_TEST(der_round_trip)
{
    const unsigned char *der;
    apr_size_t len;
    X509 *x;
    X509_REQ *req = ca_req_own(pool, test_csr(leaf_key, "der", NULL, 0));
    X509_REQ *req2;

    ck_assert_int_eq(ca_x509_der(pool, leaf_cert, &der, &len), APR_SUCCESS);
    x = ca_x509_parse(pool, der, len);
    ck_assert_ptr_nonnull(x);
    ck_assert_int_eq(X509_cmp(x, leaf_cert), 0);
    ck_assert_ptr_null(ca_x509_parse(pool, der, len / 2));

    ck_assert_int_eq(ca_req_der(pool, req, &der, &len), APR_SUCCESS);
    req2 = ca_req_parse(pool, der, len);
    ck_assert_ptr_nonnull(req2);
    ck_assert_int_eq(X509_NAME_cmp(X509_REQ_get_subject_name(req),
                                   X509_REQ_get_subject_name(req2)), 0);
    ck_assert_ptr_null(ca_req_parse(pool, der, len - 1));
}
END_TEST

START_TEST(load_files)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem;
    long n;
    const unsigned char *der;
    apr_size_t len;
    const char *file, *err = NULL;
    X509 *x;
    EVP_PKEY *k;
    STACK_OF(X509) *sk;

    ck_assert_ptr_nonnull(bio);
    ck_assert_int_eq(PEM_write_bio_X509(bio, leaf_cert), 1);
    ck_assert_int_eq(PEM_write_bio_X509(bio, ca_cert), 1);
    n = BIO_get_mem_data(bio, &pem);
    file = test_temp_file(pool, pem, (apr_size_t)n);
    BIO_free(bio);

    ck_assert_int_eq(ca_load_cert(pool, file, &x, &err), APR_SUCCESS);
    ck_assert_int_eq(X509_cmp(x, leaf_cert), 0);
    ck_assert_int_eq(ca_load_certs(pool, file, &sk, &err), APR_SUCCESS);
    ck_assert_int_eq(sk_X509_num(sk), 2);
    ck_assert_int_eq(X509_cmp(sk_X509_value(sk, 1), ca_cert), 0);

    /* DER certificate */
    ck_assert_int_eq(ca_x509_der(pool, ca_cert, &der, &len), APR_SUCCESS);
    file = test_temp_file(pool, der, len);
    ck_assert_int_eq(ca_load_cert(pool, file, &x, &err), APR_SUCCESS);
    ck_assert_int_eq(X509_cmp(x, ca_cert), 0);

    /* PEM key */
    bio = BIO_new(BIO_s_mem());
    ck_assert_int_eq(PEM_write_bio_PrivateKey(bio, leaf_key, NULL, NULL, 0,
                                              NULL, NULL), 1);
    n = BIO_get_mem_data(bio, &pem);
    file = test_temp_file(pool, pem, (apr_size_t)n);
    BIO_free(bio);
    ck_assert_int_eq(ca_load_key(pool, file, &k, &err), APR_SUCCESS);
    ck_assert_int_eq(EVP_PKEY_eq(k, leaf_key), 1);

    /* not there, not a certificate */
    err = NULL;
    ck_assert_int_eq(ca_load_cert(pool, "/nonexistent/x.pem", &x, &err),
                     APR_ENOENT);
    ck_assert_ptr_nonnull(err);
    file = test_temp_file(pool, "junk", 4);
    err = NULL;
    ck_assert_int_eq(ca_load_cert(pool, file, &x, &err), APR_EINVAL);
    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(ca_load_certs(pool, file, &sk, &err), APR_EINVAL);
    ck_assert_int_eq(ca_load_key(pool, file, &k, &err), APR_EINVAL);
}
END_TEST

START_TEST(key_usage)
{
    X509 *ra = ca_x509_own(pool, test_self_signed(leaf_key, "ra",
                               X509v3_KU_DIGITAL_SIGNATURE
                               | X509v3_KU_KEY_ENCIPHERMENT));

    ck_assert_int_eq(ca_x509_allows_ku(ra, X509v3_KU_DIGITAL_SIGNATURE), 1);
    ck_assert_int_eq(ca_x509_allows_ku(ra, X509v3_KU_DIGITAL_SIGNATURE
                                           | X509v3_KU_KEY_ENCIPHERMENT), 1);
    ck_assert_int_eq(ca_x509_allows_ku(ra, X509v3_KU_KEY_CERT_SIGN), 0);
    ck_assert_int_eq(ca_x509_allows_ku(ca_cert, X509v3_KU_KEY_ENCIPHERMENT),
                     0);
    /* no key usage at all allows everything */
    ck_assert_int_eq(ca_x509_allows_ku(leaf_cert, X509v3_KU_KEY_ENCIPHERMENT),
                     1);
}
END_TEST

/* ---- ca_asn1_time_to_apr ----------------------------------------------- */

static apr_time_t gmt(int y, int mon, int d, int h, int min, int s)
{
    apr_time_exp_t xt;
    apr_time_t t;

    memset(&xt, 0, sizeof(xt));
    xt.tm_year = y - 1900;
    xt.tm_mon = mon - 1;
    xt.tm_mday = d;
    xt.tm_hour = h;
    xt.tm_min = min;
    xt.tm_sec = s;
    ck_assert_int_eq(apr_time_exp_gmt_get(&t, &xt), APR_SUCCESS);
    return t;
}

START_TEST(asn1_time)
{
    ASN1_TIME *t = ASN1_TIME_new();

    ck_assert_ptr_nonnull(t);
    /* GeneralizedTime */
    ck_assert_int_eq(ASN1_TIME_set_string(t, "20300102030405Z"), 1);
    ck_assert(ca_asn1_time_to_apr(t) == gmt(2030, 1, 2, 3, 4, 5));
    /* UTCTime, 20th and 21st century */
    ck_assert_int_eq(ASN1_TIME_set_string(t, "491231235959Z"), 1);
    ck_assert(ca_asn1_time_to_apr(t) == gmt(2049, 12, 31, 23, 59, 59));
    ck_assert_int_eq(ASN1_TIME_set_string(t, "700101000001Z"), 1);
    ck_assert(ca_asn1_time_to_apr(t) == apr_time_from_sec(1));
    /* a leap day */
    ck_assert_int_eq(ASN1_TIME_set_string(t, "20240229120000Z"), 1);
    ck_assert(ca_asn1_time_to_apr(t) == gmt(2024, 2, 29, 12, 0, 0));
    /* a real certificate: notAfter a year from now, give or take */
    ck_assert(ca_asn1_time_to_apr(X509_get0_notAfter(leaf_cert))
              > apr_time_now() + apr_time_from_sec(364L * 86400));
    /* nothing, and before the epoch: 0 */
    ck_assert(ca_asn1_time_to_apr(NULL) == 0);
    ck_assert_int_eq(ASN1_TIME_set_string(t, "19691231235959Z"), 1);
    ck_assert(ca_asn1_time_to_apr(t) == 0);
    ASN1_TIME_free(t);
}
END_TEST

/* DER of a certificate or of a request, from the pool */
static const unsigned char *der_of(int (*i2d)(const void *, unsigned char **),
                                   const void *obj, apr_size_t *len)
{
    unsigned char *buf = NULL, *copy;
    int n = i2d(obj, &buf);

    ck_assert_int_gt(n, 0);
    *len = n;
    copy = apr_pmemdup(pool, buf, n);
    OPENSSL_free(buf);
    return copy;
}

static int i2d_cert(const void *x, unsigned char **out)
{
    return i2d_X509((X509 *)x, out);
}

static int i2d_req(const void *x, unsigned char **out)
{
    return i2d_X509_REQ((X509_REQ *)x, out);
}

START_TEST(nokey_cert_parse_and_load)
{
    apr_size_t len, len2;
    const unsigned char *der = der_of(i2d_cert, leaf_cert, &len);
    X509 *x = ca_x509_parse_nokey(pool, der, len);
    unsigned char *again = NULL;
    int n;

    ck_assert_ptr_nonnull(x);
    /* everything but the key is there, byte for byte */
    ck_assert_int_eq(X509_NAME_cmp(X509_get_subject_name(x),
                                   X509_get_subject_name(leaf_cert)), 0);
    n = i2d_X509(x, &again);
    len2 = n;
    ck_assert_uint_eq(len2, len);
    ck_assert_int_eq(memcmp(again, der, len), 0);
    OPENSSL_free(again);
    /* the key, on demand, without changing the encoding: it verifies */
    ck_assert_int_eq(ca_x509_load_pubkey(x), 1);
    ck_assert_ptr_nonnull(X509_get0_pubkey(x));
    ck_assert_int_eq(EVP_PKEY_eq(X509_get0_pubkey(x), leaf_key), 1);
    ck_assert_int_eq(X509_verify(x, ca_key), 1);
    /* truncated: nothing */
    ck_assert_ptr_null(ca_x509_parse_nokey(pool, der, len - 10));
}
END_TEST

START_TEST(nokey_req_pubkey_get_and_copy)
{
    X509_REQ *orig = test_csr(leaf_key, "nokey", NULL, 0);
    apr_size_t len;
    const unsigned char *der = der_of(i2d_req, orig, &len);
    X509_REQ *req = ca_req_parse_nokey(pool, der, len);
    X509 *x = X509_new();
    EVP_PKEY *k;

    ck_assert_ptr_nonnull(req);
    k = ca_pubkey_get(pool, X509_REQ_get_X509_PUBKEY(req));
    ck_assert_ptr_nonnull(k);
    ck_assert_int_eq(EVP_PKEY_eq(k, leaf_key), 1);
    /* the CSR's own signature still verifies with the fetched key */
    ck_assert_int_eq(X509_REQ_verify(req, k), 1);
    /* copied as it is into a certificate: the same key comes out (the
     * copy is not decoded, so fetch it the same way) */
    ck_assert_int_eq(ca_pubkey_copy(X509_get_X509_PUBKEY(x),
                                    X509_REQ_get_X509_PUBKEY(req)), 1);
    ck_assert_int_eq(EVP_PKEY_eq(ca_pubkey_get(pool,
                                               X509_get_X509_PUBKEY(x)),
                                 leaf_key), 1);
    ck_assert_int_eq(ca_pubkey_copy(NULL, X509_REQ_get_X509_PUBKEY(req)), 0);
    ck_assert_ptr_null(ca_pubkey_get(pool, NULL));
    X509_free(x);
    X509_REQ_free(orig);
}
END_TEST

Suite *ca_util_suite(void)
{
    Suite *s = suite_create("ca_util");
    TCase *tc = tcase_create("ca_util");

    tcase_add_unchecked_fixture(tc, keys_setup, keys_teardown);
    tcase_add_checked_fixture(tc, pool_setup, pool_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, b64_standard);
    tcase_add_test(tc, b64_whitespace);
    tcase_add_test(tc, b64_percent_decoded_line_breaks);
    tcase_add_test(tc, b64_missing_padding);
    tcase_add_test(tc, b64_plus_and_slash);
    tcase_add_test(tc, b64_round_trip_random);
    tcase_add_test(tc, b64_rejects_base64url);
    tcase_add_test(tc, b64_rejects_foreign);
    tcase_add_test(tc, b64_rejects_data_after_padding);
    tcase_add_test(tc, pct_plus_stays_plus);
    tcase_add_test(tc, pct_escapes);
    tcase_add_test(tc, pct_truncated_and_bad);
    tcase_add_test(tc, query_param_found);
    tcase_add_test(tc, query_param_decoded);
    tcase_add_test(tc, query_param_empty_and_bare);
    tcase_add_test(tc, query_param_absent);
    tcase_add_test(tc, secret_equal);
    tcase_add_test(tc, hex);
    tcase_add_test(tc, p7_certs_round_trip);
    tcase_add_test(tc, p7_certs_empty_and_bad);
    tcase_add_test(tc, der_round_trip);
    tcase_add_test(tc, load_files);
    tcase_add_test(tc, key_usage);
    tcase_add_test(tc, asn1_time);
    tcase_add_test(tc, nokey_cert_parse_and_load);
    tcase_add_test(tc, nokey_req_pubkey_get_and_copy);
    suite_add_tcase(s, tc);
    return s;
}
