/* Licensed under the Apache License, Version 2.0 (see COPYING). */

/*
 * libFuzzer target: the request mod_scep rebuilds for the backends from a
 * client's PKCS#10 request and the ScepSubject* / ScepSubjectAltName*
 * rules (scep_rebuild.c), with Set values that stand for expressions over
 * client data (REMOTE_USER, headers).
 *
 * Input: a rule set, then the request's DER.
 *
 *   byte 0        number of rules, low 4 bits (0-15)
 *   per rule      one byte: bit 0 subjectAltName (else subject), bit 1 Set
 *                 (else Request), bit 2 the expression fails to evaluate,
 *                 bits 3-7 the field, an index into subject_fields or
 *                 san_fields below (modulo their size);
 *                 Request: one byte, its low 2 bits the count (0: the
 *                 directive's default, 1 for a field, all for '*');
 *                 Set: one byte L, then L bytes of value (a NUL ends it,
 *                 as in a C string)
 *   the rest      the PKCS#10 request, parsed as mod_scep does
 *                 (ca_req_parse_nokey; its signature is not checked)
 *
 * Rule sets the configuration would refuse (Set of '*', of x400Address or
 * ediPartyName) are skipped.  A finding, abort(): a rebuilt request that
 * does not parse again or whose subjectAltName does not decode; a
 * dNSName, rfc822Name or URI that is not 7-bit text without NUL, or a
 * subject field with a NUL in its text, whether a Set value or the
 * client's request put it there; a failure without a reason for the
 * client.
 *
 *   make fuzz
 *   test/fuzz/fuzz_rebuild -max_total_time=120 -dict=test/fuzz/rebuild.dict \
 *       test/fuzz/corpus/rebuild
 *
 * Seeds: test/fuzz/make-corpus.sh rebuild (openssl req requests with
 * several subjects and subjectAltNames, under several rule sets).
 */

#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_tables.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "ca_util.h"
#include "scep_rebuild.h"
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* make-corpus.sh has the same lists: keep them in step */
static const char *const subject_fields[] = {
    "*", "CN", "O", "OU", "C", "L", "ST", "emailAddress", "serialNumber",
    "DC", "UID", "dnQualifier", "x500UniqueIdentifier", "1.2.3.4", "title",
    "street"
};
static const char *const san_fields[] = {
    "*", "otherName", "rfc822Name", "dNSName", "x400Address",
    "directoryName", "ediPartyName", "uniformResourceIdentifier",
    "iPAddress", "registeredID"
};

#define NELTS(a) (sizeof(a) / sizeof((a)[0]))

/* A Set rule's "expression": its value, or a failure. */
typedef struct {
    const char *value;
    int fails;
} fuzz_expr;

static const char *eval(void *ctx, const scep_name_rule *rule,
                        const char **why)
{
    const fuzz_expr *e = rule->expr;

    (void)ctx;
    if (e->fails) {
        *why = "the server could not build the certificate name";
        return NULL;
    }
    return e->value;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_init("fuzz_rebuild");
    return 0;
}

/* Read the rule set; 0 when the input ends first or the configuration
 * would refuse it. */
static int read_rules(apr_pool_t *p, const uint8_t **data, size_t *size,
                      apr_array_header_t *subject, apr_array_header_t *san)
{
    const uint8_t *d = *data, *end = *data + *size;
    int n, i;

    if (d == end) {
        return 0;
    }
    n = *d++ & 15;
    for (i = 0; i < n; i++) {
        scep_name_rule rule;
        int flags, is_san, is_set, idx;
        const char *field;

        if (end - d < 2) {
            return 0;
        }
        flags = *d++;
        is_san = flags & 1;
        is_set = flags & 2;
        idx = flags >> 3;
        field = is_san ? san_fields[idx % NELTS(san_fields)]
                       : subject_fields[idx % NELTS(subject_fields)];
        memset(&rule, 0, sizeof(rule));
        rule.field = field;
        rule.gen_type = -1;
        /* ScepSubjectRequest's default: one of a field, all of '*' */
        rule.limit = strcmp(field, "*") ? 1 : 0;
        if (is_set) {
            fuzz_expr *e = apr_pcalloc(p, sizeof(*e));
            size_t len = *d++;

            if ((size_t)(end - d) < len || !strcmp(field, "*")) {
                return 0;
            }
            e->value = apr_pstrmemdup(p, (const char *)d, len);
            e->fails = flags & 4;
            d += len;
            rule.expr = e;
        }
        else if (*d++ & 3) {
            rule.limit = d[-1] & 3;
        }
        if (strcmp(field, "*")
            && (is_san ? scep_rule_san_field(p, "fuzz", field, &rule)
                       : scep_rule_subject_field(p, "fuzz", field, &rule))) {
            abort();            /* the tables above are wrong */
        }
        if (is_set && (rule.gen_type == GEN_X400
                       || rule.gen_type == GEN_EDIPARTY)) {
            return 0;
        }
        APR_ARRAY_PUSH(is_san ? san : subject, scep_name_rule) = rule;
    }
    *size = (size_t)(end - d);
    *data = d;
    return 1;
}

/* The subjectAltNames of a request, NULL when none decode. */
static GENERAL_NAMES *req_sans(X509_REQ *req, int *crit)
{
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    GENERAL_NAMES *gens = NULL;

    *crit = -1;
    if (exts) {
        gens = X509V3_get_d2i(exts, NID_subject_alt_name, crit, NULL);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    }
    return gens;
}

/* Whether every dNSName, rfc822Name and URI is 7-bit text without NUL,
 * as an IA5String must be (RFC 5280 4.2.1.6) and C code must be able to
 * read it. */
static int ia5_clean(const GENERAL_NAMES *gens)
{
    int i, j;

    for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *gen = sk_GENERAL_NAME_value(gens, i);

        if (gen->type != GEN_DNS && gen->type != GEN_EMAIL
            && gen->type != GEN_URI) {
            continue;
        }
        for (j = 0; j < gen->d.ia5->length; j++) {
            if (gen->d.ia5->data[j] == 0 || (gen->d.ia5->data[j] & 0x80)) {
                return 0;
            }
        }
    }
    return 1;
}

/* Whether no subject field has a NUL in its text. */
static int subject_clean(const X509_NAME *name)
{
    int i, n, ok = 1;

    for (i = 0; ok && i < X509_NAME_entry_count(name); i++) {
        unsigned char *utf8 = NULL;

        n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(
                                           X509_NAME_get_entry(name, i)));
        ok = n >= 0 && (n == 0 || !memchr(utf8, 0, (size_t)n));
        OPENSSL_free(utf8);
    }
    return ok;
}

/* What the backends get must parse, subjectAltName and all, and hold only
 * names every relying party reads the same way. */
static void check_rebuilt(apr_pool_t *p, const unsigned char *der,
                          apr_size_t len)
{
    X509_REQ *req = ca_req_parse_nokey(p, der, len);
    GENERAL_NAMES *gens;
    int crit;

    if (!req) {
        fprintf(stderr, "fuzz_rebuild: the rebuilt request does not parse: "
                "%s\n", ca_openssl_errors(p));
        abort();
    }
    gens = req_sans(req, &crit);
    /* crit is -1 when there is none */
    if (!gens && crit != -1) {
        fprintf(stderr, "fuzz_rebuild: the rebuilt subjectAltName does not "
                "decode: %s\n", ca_openssl_errors(p));
        abort();
    }
    if (!ia5_clean(gens)) {
        fprintf(stderr, "fuzz_rebuild: a subjectAltName that is not 7-bit "
                "text without NUL\n");
        abort();
    }
    if (!subject_clean(X509_REQ_get_subject_name(req))) {
        fprintf(stderr, "fuzz_rebuild: a subject field with a NUL\n");
        abort();
    }
    GENERAL_NAMES_free(gens);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    apr_array_header_t *subject, *san;
    X509_REQ *orig;
    const unsigned char *der = NULL;
    apr_size_t len = 0;
    const char *why = NULL;

    if (apr_pool_create(&p, fuzz_root) != APR_SUCCESS) {
        abort();
    }
    subject = apr_array_make(p, 4, sizeof(scep_name_rule));
    san = apr_array_make(p, 4, sizeof(scep_name_rule));
    if (read_rules(p, &data, &size, subject, san)
        && (orig = ca_req_parse_nokey(p, data, size))) {
        if (scep_rebuild(p, subject, san, eval, NULL, orig, &der, &len,
                         &why) == APR_SUCCESS) {
            check_rebuilt(p, der, len);
        }
        else if (!why) {
            fprintf(stderr, "fuzz_rebuild: a failure without a reason\n");
            abort();
        }
    }

    ERR_clear_error();
    apr_pool_destroy(p);
    return 0;
}
