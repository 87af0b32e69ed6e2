/* Licensed under the Apache License, Version 2.0 (see COPYING). */

/* Unit tests of scep_rebuild.c. */

#include <string.h>

#include <apr_strings.h>
#include <apr_tables.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "test_common.h"
#include "ca_util.h"
#include "scep_rebuild.h"

static EVP_PKEY *key;
static apr_pool_t *pool;

/* The client's request: CN=a, CN=b, O=Org; DNS:x.example, DNS:y.example,
 * email:e@example.org, IP:192.0.2.1; a challengePassword.  Parsed the
 * way mod_scep does. */
static X509_REQ *orig;

/* Rules, filled in per test. */
static apr_array_header_t *subject, *san;

/* What a Set rule's "expression" is here: the value itself, or this. */
static const char eval_fails[] = "(fails)";

static const char *eval(void *ctx, const scep_name_rule *rule,
                        const char **why)
{
    (void)ctx;
    if (rule->expr == eval_fails) {
        *why = "the test expression failed";
        return NULL;
    }
    return rule->expr;
}

static void key_setup(void)
{
    key = EVP_EC_gen("P-256");
    ck_assert_ptr_nonnull(key);
}

static void key_teardown(void)
{
    EVP_PKEY_free(key);
}

static void add_cn(X509_NAME *name, const char *field, const char *value)
{
    ck_assert_int_eq(X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                                (const unsigned char *)value,
                                                -1, -1, 0), 1);
}

/* Sign req and make it the client's request, parsed as mod_scep does. */
static void use_as_orig(X509_REQ *req)
{
    unsigned char *der = NULL;
    int len;

    ck_assert_int_gt(X509_REQ_sign(req, key, EVP_sha256()), 0);
    len = i2d_X509_REQ(req, &der);
    ck_assert_int_gt(len, 0);
    orig = ca_req_parse_nokey(pool, der, (apr_size_t)len);
    ck_assert_ptr_nonnull(orig);
    OPENSSL_free(der);
}

static void pool_setup(void)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_REQ_get_subject_name(req);
    X509V3_CTX v3;
    X509_EXTENSION *ext;
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();

    ck_assert_int_eq(apr_pool_create(&pool, NULL), APR_SUCCESS);
    add_cn(name, "CN", "a");
    add_cn(name, "CN", "b");
    add_cn(name, "O", "Org");
    ck_assert_int_eq(X509_REQ_set_pubkey(req, key), 1);
    X509V3_set_ctx(&v3, NULL, NULL, req, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name,
                              "DNS:x.example,DNS:y.example,"
                              "email:e@example.org,IP:192.0.2.1");
    ck_assert_ptr_nonnull(ext);
    ck_assert_int_eq(sk_X509_EXTENSION_push(exts, ext) > 0, 1);
    ck_assert_int_eq(X509_REQ_add_extensions(req, exts), 1);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    ck_assert_int_eq(X509_REQ_add1_attr_by_NID(req,
                         NID_pkcs9_challengePassword, MBSTRING_ASC,
                         (const unsigned char *)"s3cret", -1), 1);
    use_as_orig(req);
    X509_REQ_free(req);

    subject = apr_array_make(pool, 4, sizeof(scep_name_rule));
    san = apr_array_make(pool, 4, sizeof(scep_name_rule));
}

static void pool_teardown(void)
{
    apr_pool_destroy(pool);
    pool = NULL;
    ERR_clear_error();
}

/* Add a rule: Request when value is NULL, Set otherwise; "*" for all. */
static void rule(int is_san, const char *field, int limit, const char *value)
{
    scep_name_rule r;

    memset(&r, 0, sizeof(r));
    r.gen_type = -1;
    r.field = field;
    r.limit = limit;
    r.expr = value;
    if (strcmp(field, "*")) {
        ck_assert_ptr_null(is_san
                           ? scep_rule_san_field(pool, "Test", field, &r)
                           : scep_rule_subject_field(pool, "Test", field,
                                                     &r));
    }
    APR_ARRAY_PUSH(is_san ? san : subject, scep_name_rule) = r;
}

/* Rebuild, expecting success; the result parsed again. */
static X509_REQ *rebuild_ok(void)
{
    const unsigned char *der = NULL;
    apr_size_t len = 0;
    const char *why = "stale";
    X509_REQ *req;

    ck_assert_int_eq(scep_rebuild(pool, subject, san, eval, NULL, orig, &der,
                                  &len, &why), APR_SUCCESS);
    ck_assert_ptr_null(why);
    req = ca_req_parse_nokey(pool, der, len);
    ck_assert_ptr_nonnull(req);
    return req;
}

/* Rebuild, expecting failure; the reason. */
static const char *rebuild_fails(void)
{
    const unsigned char *der = NULL;
    apr_size_t len = 0;
    const char *why = NULL;

    ck_assert_int_ne(scep_rebuild(pool, subject, san, eval, NULL, orig, &der,
                                  &len, &why), APR_SUCCESS);
    ck_assert_ptr_nonnull(why);
    return why;
}

static const char *subject_of(X509_REQ *req)
{
    char *s = X509_NAME_oneline(X509_REQ_get_subject_name(req), NULL, 0);
    const char *copy = apr_pstrdup(pool, s);

    OPENSSL_free(s);
    return copy;
}

/* The subjectAltNames as "DNS:x,IP:..." and whether critical (-1: none). */
static const char *sans_of(X509_REQ *req, int *critical)
{
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    GENERAL_NAMES *gens;
    STACK_OF(CONF_VALUE) *vals;
    const char *out = "";
    int i;

    *critical = -1;
    if (!exts) {
        return out;
    }
    gens = X509V3_get_d2i(exts, NID_subject_alt_name, critical, NULL);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    ck_assert_ptr_nonnull(gens);
    vals = i2v_GENERAL_NAMES(NULL, gens, NULL);
    for (i = 0; vals && i < sk_CONF_VALUE_num(vals); i++) {
        CONF_VALUE *v = sk_CONF_VALUE_value(vals, i);

        out = apr_pstrcat(pool, out, *out ? "," : "", v->name, ":", v->value,
                          NULL);
    }
    sk_CONF_VALUE_pop_free(vals, X509V3_conf_free);
    GENERAL_NAMES_free(gens);
    return out;
}

START_TEST(request_everything)
{
    X509_REQ *req;
    int critical;

    rule(0, "*", 0, NULL);
    rule(1, "*", 0, NULL);
    req = rebuild_ok();
    ck_assert_str_eq(subject_of(req), "/CN=a/CN=b/O=Org");
    ck_assert_str_eq(sans_of(req, &critical), "DNS:x.example,DNS:y.example,"
                     "email:e@example.org,IP Address:192.0.2.1");
    ck_assert_int_eq(critical, 0);
    ck_assert_int_eq(X509_REQ_get_version(req), X509_REQ_VERSION_1);
    /* the key is the client's, copied as it is */
    ck_assert_int_eq(EVP_PKEY_eq(ca_pubkey_get(pool,
                                               X509_REQ_get_X509_PUBKEY(req)),
                                 key), 1);
    /* the challengePassword is gone: only the extensionRequest is left */
    ck_assert_int_eq(X509_REQ_get_attr_count(req), 1);
}
END_TEST

START_TEST(request_in_rule_order)
{
    int critical;
    X509_REQ *req;

    rule(0, "O", 1, NULL);
    rule(0, "CN", 2, NULL);
    rule(1, "iPAddress", 1, NULL);
    rule(1, "DNSNAME", 0, NULL);
    req = rebuild_ok();
    ck_assert_str_eq(subject_of(req), "/O=Org/CN=a/CN=b");
    ck_assert_str_eq(sans_of(req, &critical),
                     "IP Address:192.0.2.1,DNS:x.example,DNS:y.example");
}
END_TEST

START_TEST(request_over_limit)
{
    rule(0, "CN", 1, NULL);
    ck_assert_str_eq(rebuild_fails(),
                     "the request has more than 1 CN field in its subject");
    apr_array_clear(subject);
    rule(0, "*", 2, NULL);
    ck_assert_str_eq(rebuild_fails(),
                     "the request has more than 2 fields in its subject");
    apr_array_clear(subject);
    rule(0, "O", 1, NULL);
    rule(1, "dNSName", 1, NULL);
    ck_assert_str_eq(rebuild_fails(),
                     "the request has more than 1 dNSName subjectAltName");
    apr_array_clear(san);
    rule(1, "*", 3, NULL);
    ck_assert_str_eq(rebuild_fails(),
                     "the request has more than 3 subjectAltNames");
}
END_TEST

START_TEST(set_values)
{
    int critical;
    X509_REQ *req;

    rule(0, "CN", 0, "from-expression");
    rule(0, "OU", 0, "");                /* empty: left out */
    rule(0, "O", 1, NULL);
    rule(1, "dNSName", 0, "");
    rule(1, "directoryName", 0, "/CN=dir/O=Example");
    rule(1, "otherName", 0, "1.3.6.1.4.1.311.20.2.3;UTF8:user@example.org");
    rule(1, "uniformResourceIdentifier", 0, "https://example.org/");
    rule(1, "registeredID", 0, "1.2.3.4");
    rule(1, "rfc822Name", 0, "u@example.org");
    req = rebuild_ok();
    ck_assert_str_eq(subject_of(req), "/CN=from-expression/O=Org");
    ck_assert_str_eq(sans_of(req, &critical),
                     "DirName:/CN=dir/O=Example,"
                     "othername: UPN::user@example.org,"
                     "URI:https://example.org/,"
                     "Registered ID:1.2.3.4,email:u@example.org");
    ck_assert_int_eq(critical, 0);
}
END_TEST

START_TEST(set_invalid_values)
{
    rule(0, "C", 0, "not a country");
    ck_assert_str_eq(rebuild_fails(), "'not a country' is not a valid C");
    apr_array_clear(subject);
    rule(1, "iPAddress", 0, "192.0.2.300");
    ck_assert_str_eq(rebuild_fails(),
                     "'192.0.2.300' is not a valid iPAddress");
    apr_array_clear(san);
    rule(1, "directoryName", 0, "CN=x,no-equals-sign");
    ck_assert_str_eq(rebuild_fails(),
                     "'CN=x,no-equals-sign' is not a valid directoryName");
    apr_array_clear(san);
    rule(1, "x400Address", 0, "anything");
    ck_assert_str_eq(rebuild_fails(), "'anything' is not a valid x400Address");
    /* IA5String types take 7-bit values only */
    apr_array_clear(san);
    rule(1, "rfc822Name", 0, "j\303\266rg@example.org");
    ck_assert_str_eq(rebuild_fails(),
                     "'j\303\266rg@example.org' is not a valid rfc822Name");
    apr_array_clear(san);
    rule(1, "dNSName", 0, "h\303\266st.example");
    ck_assert_str_eq(rebuild_fails(),
                     "'h\303\266st.example' is not a valid dNSName");
    apr_array_clear(san);
    rule(1, "uniformResourceIdentifier", 0, "https://example.org/\377");
    ck_assert_str_eq(rebuild_fails(), "'https://example.org/\377' is not a "
                     "valid uniformResourceIdentifier");
}
END_TEST

/* The client's request replaced by one with this subject entry (given as
 * raw bytes of the given string type) and this dNSName (raw bytes). */
static void client_names(int str_type, const char *cn, int cn_len,
                         const char *dns, int dns_len)
{
    X509_REQ *req = X509_REQ_new();
    GENERAL_NAMES *gens = GENERAL_NAMES_new();
    GENERAL_NAME *gen = GENERAL_NAME_new();
    ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();

    ck_assert_int_eq(X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req),
                                                "CN", str_type,
                                                (const unsigned char *)cn,
                                                cn_len, -1, 0), 1);
    ck_assert_int_eq(ASN1_STRING_set(ia5, dns, dns_len), 1);
    GENERAL_NAME_set0_value(gen, GEN_DNS, ia5);
    ck_assert_int_gt(sk_GENERAL_NAME_push(gens, gen), 0);
    ck_assert_int_gt(sk_X509_EXTENSION_push(exts,
                         X509V3_EXT_i2d(NID_subject_alt_name, 0, gens)), 0);
    ck_assert_int_eq(X509_REQ_add_extensions(req, exts), 1);
    ck_assert_int_eq(X509_REQ_set_pubkey(req, key), 1);
    use_as_orig(req);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    GENERAL_NAMES_free(gens);
    X509_REQ_free(req);
}

START_TEST(request_names_checked)
{
    rule(0, "*", 0, NULL);
    rule(1, "*", 0, NULL);
    /* clean names pass, in any string type */
    client_names(V_ASN1_IA5STRING, "host.example", -1, "host.example", 12);
    ck_assert_str_eq(subject_of(rebuild_ok()), "/CN=host.example");
    client_names(MBSTRING_BMP, "\0h\0\xf6\0s\0t", 8, "h.example", 9);
    ck_assert_str_eq(subject_of(rebuild_ok()), "/CN=h\\xC3\\xB6st");
    /* a NUL in the subject, plain or inside a BMPString */
    client_names(V_ASN1_IA5STRING, "bank.example\0.evil.example", 25,
                 "host.example", 12);
    ck_assert_str_eq(rebuild_fails(),
                     "the CN field of the request's subject is not valid "
                     "text");
    client_names(MBSTRING_BMP, "\0b\0\0\0x", 6, "host.example", 12);
    ck_assert_str_eq(rebuild_fails(),
                     "the CN field of the request's subject is not valid "
                     "text");
    /* a dNSName with a NUL, or with 8-bit bytes */
    client_names(V_ASN1_IA5STRING, "host", -1, "bank.example\0.evil.example",
                 25);
    ck_assert_str_eq(rebuild_fails(), "a dNSName subjectAltName of the "
                     "request is not 7-bit text without NUL");
    client_names(V_ASN1_IA5STRING, "host", -1, "h\303\266st.example", 13);
    ck_assert_str_eq(rebuild_fails(), "a dNSName subjectAltName of the "
                     "request is not 7-bit text without NUL");
}
END_TEST

START_TEST(set_fails_to_evaluate)
{
    rule(0, "CN", 0, eval_fails);
    ck_assert_str_eq(rebuild_fails(), "the test expression failed");
    apr_array_clear(subject);
    rule(0, "CN", 0, "ok");
    rule(1, "dNSName", 0, eval_fails);
    ck_assert_str_eq(rebuild_fails(), "the test expression failed");
}
END_TEST

START_TEST(names_only_in_san)
{
    int critical;
    X509_REQ *req;

    rule(1, "dNSName", 2, NULL);
    req = rebuild_ok();
    ck_assert_str_eq(subject_of(req), "");
    ck_assert_str_eq(sans_of(req, &critical), "DNS:x.example,DNS:y.example");
    /* the only name: critical (RFC 5280 4.2.1.6) */
    ck_assert_int_eq(critical, 1);
}
END_TEST

START_TEST(nothing_allowed)
{
    ck_assert_str_eq(rebuild_fails(),
                     "the configuration allows no subject for this request");
    rule(0, "OU", 0, NULL);
    rule(1, "uniformResourceIdentifier", 0, NULL);
    ck_assert_str_eq(rebuild_fails(),
                     "the configuration allows no subject for this request");
}
END_TEST

START_TEST(rule_fields)
{
    scep_name_rule r;

    memset(&r, 0, sizeof(r));
    ck_assert_ptr_null(scep_rule_subject_field(pool, "D", "commonName", &r));
    ck_assert_int_eq(OBJ_obj2nid(r.obj), NID_commonName);
    ck_assert_int_eq(r.gen_type, -1);
    ck_assert_ptr_null(scep_rule_subject_field(pool, "D", "2.5.4.10", &r));
    ck_assert_int_eq(OBJ_obj2nid(r.obj), NID_organizationName);
    ck_assert_ptr_null(scep_rule_subject_field(pool, "D", "1.2.3.4.5", &r));
    ck_assert_str_eq(r.field, "1.2.3.4.5");
    ck_assert_str_eq(scep_rule_subject_field(pool, "D", "bogus", &r),
                     "D: 'bogus' is neither a known subject attribute name "
                     "nor an OID");
    ck_assert_ptr_null(scep_rule_san_field(pool, "D", "ipaddress", &r));
    ck_assert_int_eq(r.gen_type, GEN_IPADD);
    ck_assert_ptr_nonnull(strstr(scep_rule_san_field(pool, "D", "DNS", &r),
                                 "D: 'DNS' is not one of otherName, "));
    ck_assert_str_eq(scep_san_name(GEN_DIRNAME), "directoryName");
    ck_assert_str_eq(scep_san_name(99), "unknown");
}
END_TEST

Suite *scep_rebuild_suite(void)
{
    Suite *s = suite_create("scep_rebuild");
    TCase *tc = tcase_create("scep_rebuild");

    tcase_add_unchecked_fixture(tc, key_setup, key_teardown);
    tcase_add_checked_fixture(tc, pool_setup, pool_teardown);
    tcase_add_test(tc, request_everything);
    tcase_add_test(tc, request_in_rule_order);
    tcase_add_test(tc, request_over_limit);
    tcase_add_test(tc, set_values);
    tcase_add_test(tc, set_invalid_values);
    tcase_add_test(tc, request_names_checked);
    tcase_add_test(tc, set_fails_to_evaluate);
    tcase_add_test(tc, names_only_in_san);
    tcase_add_test(tc, nothing_allowed);
    tcase_add_test(tc, rule_fields);
    suite_add_tcase(s, tc);
    return s;
}
