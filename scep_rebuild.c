/* Licensed under the Apache License, Version 2.0 (see COPYING). */

#include <string.h>

#include <apr_strings.h>

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "ca_util.h"
#include "scep_rebuild.h"

/* ---- the rules' fields (read with the configuration) ----------------- */

static apr_status_t obj_cleanup(void *data)
{
    ASN1_OBJECT_free(data);
    return APR_SUCCESS;
}

const char *scep_rule_subject_field(apr_pool_t *p, const char *directive,
                                    const char *field, scep_name_rule *rule)
{
    int nid = OBJ_txt2nid(field);

    rule->field = field;
    rule->gen_type = -1;
    rule->obj = nid != NID_undef ? OBJ_dup(OBJ_nid2obj(nid))
                                 : OBJ_txt2obj(field, 1);
    ERR_clear_error();
    if (!rule->obj) {
        return apr_psprintf(p, "%s: '%s' is neither a known subject "
                            "attribute name nor an OID", directive, field);
    }
    apr_pool_cleanup_register(p, rule->obj, obj_cleanup,
                              apr_pool_cleanup_null);
    return NULL;
}

static const struct {
    const char *name;
    int type;
} san_types[] = {
    { "otherName", GEN_OTHERNAME },
    { "rfc822Name", GEN_EMAIL },
    { "dNSName", GEN_DNS },
    { "x400Address", GEN_X400 },
    { "directoryName", GEN_DIRNAME },
    { "ediPartyName", GEN_EDIPARTY },
    { "uniformResourceIdentifier", GEN_URI },
    { "iPAddress", GEN_IPADD },
    { "registeredID", GEN_RID }
};

const char *scep_san_name(int type)
{
    apr_size_t i;

    for (i = 0; i < sizeof(san_types) / sizeof(san_types[0]); i++) {
        if (san_types[i].type == type) {
            return san_types[i].name;
        }
    }
    return "unknown";
}

const char *scep_rule_san_field(apr_pool_t *p, const char *directive,
                                const char *field, scep_name_rule *rule)
{
    apr_size_t i;

    rule->field = field;
    for (i = 0; i < sizeof(san_types) / sizeof(san_types[0]); i++) {
        if (!strcasecmp(field, san_types[i].name)) {
            rule->gen_type = san_types[i].type;
            return NULL;
        }
    }
    return apr_psprintf(p, "%s: '%s' is not one of otherName, rfc822Name, "
                        "dNSName, x400Address, directoryName, ediPartyName, "
                        "uniformResourceIdentifier, iPAddress, registeredID",
                        directive, field);
}

/* ---- building the names (per request) -------------------------------- */

static X509_NAME *parse_dn(const char *text)
{
    /* "/C=US/O=Example/CN=x" or "CN=x,O=Example" */
    X509_NAME *name = X509_NAME_new();
    char *copy = OPENSSL_strdup(text), *tok, *state = NULL;
    const char *sep = *text == '/' ? "/" : ",";

    if (!name || !copy) {
        X509_NAME_free(name);
        OPENSSL_free(copy);
        return NULL;
    }
    for (tok = apr_strtok(copy, sep, &state); tok;
         tok = apr_strtok(NULL, sep, &state)) {
        char *eq = strchr(tok, '=');

        while (*tok == ' ') {
            tok++;
        }
        if (!eq || eq == tok) {
            goto fail;
        }
        *eq = '\0';
        if (!X509_NAME_add_entry_by_txt(name, tok, MBSTRING_UTF8,
                                        (unsigned char *)eq + 1, -1, -1, 0)) {
            goto fail;
        }
    }
    OPENSSL_free(copy);
    if (X509_NAME_entry_count(name) == 0) {
        X509_NAME_free(name);
        return NULL;
    }
    return name;
fail:
    OPENSSL_free(copy);
    X509_NAME_free(name);
    return NULL;
}

/*
 * A dNSName, rfc822Name or URI as RFC 5280 has them: an IA5String, which
 * OpenSSL does not check, so 7-bit; and no NUL, with which
 * "bank.example\0.evil.example" reads as bank.example to C code.
 */
static int ia5_clean(int type, const unsigned char *s, apr_size_t len)
{
    apr_size_t i;

    if (type != GEN_DNS && type != GEN_EMAIL && type != GEN_URI) {
        return 1;
    }
    for (i = 0; i < len; i++) {
        if (s[i] == 0 || (s[i] & 0x80)) {
            return 0;
        }
    }
    return 1;
}

/* The same for a subjectAltName of the client's. */
static int gen_clean(const GENERAL_NAME *gen)
{
    switch (gen->type) {
    case GEN_DNS:
    case GEN_EMAIL:
    case GEN_URI:
        return ia5_clean(gen->type, ASN1_STRING_get0_data(gen->d.ia5),
                         (apr_size_t)ASN1_STRING_length(gen->d.ia5));
    }
    return 1;
}

/* A name entry of the client's whose text has no NUL in it (see above),
 * in any of the string types; one that does not decode is refused too. */
static int entry_clean(const X509_NAME_ENTRY *e)
{
    unsigned char *utf8 = NULL;
    int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
    int ok = n >= 0 && (n == 0 || !memchr(utf8, 0, (size_t)n));

    OPENSSL_free(utf8);
    return ok;
}

/* A subjectAltName from a configured type and an evaluated value. */
static GENERAL_NAME *make_gen(int type, const char *value)
{
    GENERAL_NAME *gen;
    X509_NAME *dn;

    /* a UTF-8 REMOTE_USER would give a certificate strict parsers refuse */
    if (!ia5_clean(type, (const unsigned char *)value, strlen(value))) {
        return NULL;
    }
    if (type != GEN_DIRNAME) {
        return a2i_GENERAL_NAME(NULL, NULL, NULL, type, value, 0);
    }
    if (!(dn = parse_dn(value)) || !(gen = GENERAL_NAME_new())) {
        X509_NAME_free(dn);
        return NULL;
    }
    GENERAL_NAME_set0_value(gen, GEN_DIRNAME, dn);
    return gen;
}

/* Why a Request rule refuses: "the request has more than 2 CN fields in
 * its subject", "... more than 1 dNSName subjectAltName". */
static const char *over_limit(apr_pool_t *p, const scep_name_rule *rule,
                              const char *which, const char *noun,
                              const char *where)
{
    return apr_psprintf(p, "the request has more than %d %s%s%s%s%s",
                        rule->limit, which ? which : "", which ? " " : "",
                        noun, rule->limit > 1 ? "s" : "", where);
}

/* The subject the configuration allows, built in directive order. */
static X509_NAME *build_subject(apr_pool_t *p,
                                const apr_array_header_t *rules,
                                scep_rule_eval_fn *eval, void *ctx,
                                X509_NAME *src, const char **why)
{
    X509_NAME *dst = X509_NAME_new();
    int i, j;

    for (i = 0; dst && i < rules->nelts; i++) {
        const scep_name_rule *rule =
            &APR_ARRAY_IDX(rules, i, scep_name_rule);

        if (rule->expr) {
            const char *val = eval(ctx, rule, why);

            if (!val) {
                goto fail;
            }
            /* an empty value leaves the field out */
            if (*val && !X509_NAME_add_entry_by_OBJ(dst, rule->obj,
                                                    MBSTRING_UTF8,
                                                    (unsigned char *)val, -1,
                                                    -1, 0)) {
                *why = apr_psprintf(p, "'%s' is not a valid %s", val,
                                    rule->field);
                goto fail;
            }
            continue;
        }
        {
            int found = 0;

            for (j = 0; j < X509_NAME_entry_count(src); j++) {
                X509_NAME_ENTRY *e = X509_NAME_get_entry(src, j);

                if (rule->obj
                    && OBJ_cmp(X509_NAME_ENTRY_get_object(e), rule->obj)) {
                    continue;
                }
                if (rule->limit && ++found > rule->limit) {
                    *why = over_limit(p, rule, rule->obj ? rule->field
                                                         : NULL,
                                      "field", " in its subject");
                    goto fail;
                }
                if (!entry_clean(e)) {
                    ASN1_OBJECT *obj = X509_NAME_ENTRY_get_object(e);

                    *why = apr_psprintf(p, "the %s field of the request's "
                                        "subject is not valid text",
                                        OBJ_nid2sn(OBJ_obj2nid(obj)));
                    goto fail;
                }
                if (!X509_NAME_add_entry(dst, e, -1, 0)) {
                    goto fail;
                }
            }
        }
    }
    if (dst) {
        return dst;
    }
fail:
    if (!*why) {
        *why = "the subject could not be built";
    }
    X509_NAME_free(dst);
    ERR_clear_error();
    return NULL;
}

static GENERAL_NAMES *request_sans(X509_REQ *req)
{
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    GENERAL_NAMES *gens = NULL;

    if (exts) {
        gens = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    }
    ERR_clear_error();
    return gens;
}

/* The subjectAltNames the configuration allows, in directive order. */
static GENERAL_NAMES *build_sans(apr_pool_t *p,
                                 const apr_array_header_t *rules,
                                 scep_rule_eval_fn *eval, void *ctx,
                                 GENERAL_NAMES *src, const char **why)
{
    GENERAL_NAMES *dst = GENERAL_NAMES_new();
    int i, j;

    for (i = 0; dst && i < rules->nelts; i++) {
        const scep_name_rule *rule =
            &APR_ARRAY_IDX(rules, i, scep_name_rule);

        if (rule->expr) {
            const char *val = eval(ctx, rule, why);
            GENERAL_NAME *gen;

            if (!val) {
                goto fail;
            }
            if (!*val) {
                continue;
            }
            if (!(gen = make_gen(rule->gen_type, val))) {
                *why = apr_psprintf(p, "'%s' is not a valid %s", val,
                                    rule->field);
                goto fail;
            }
            sk_GENERAL_NAME_push(dst, gen);
            continue;
        }
        {
            int found = 0;

            for (j = 0; src && j < sk_GENERAL_NAME_num(src); j++) {
                GENERAL_NAME *gen = sk_GENERAL_NAME_value(src, j);

                if (rule->gen_type >= 0 && gen->type != rule->gen_type) {
                    continue;
                }
                if (rule->limit && ++found > rule->limit) {
                    *why = over_limit(p, rule, rule->gen_type >= 0
                                               ? scep_san_name(rule->gen_type)
                                               : NULL,
                                      "subjectAltName", "");
                    goto fail;
                }
                if (!gen_clean(gen)) {
                    *why = apr_psprintf(p, "a %s subjectAltName of the "
                                        "request is not 7-bit text without "
                                        "NUL", scep_san_name(gen->type));
                    goto fail;
                }
                sk_GENERAL_NAME_push(dst, GENERAL_NAME_dup(gen));
            }
        }
    }
    if (dst) {
        return dst;
    }
fail:
    if (!*why) {
        *why = "the subjectAltName could not be built";
    }
    GENERAL_NAMES_free(dst);
    ERR_clear_error();
    return NULL;
}

apr_status_t scep_rebuild(apr_pool_t *p, const apr_array_header_t *subject,
                          const apr_array_header_t *san,
                          scep_rule_eval_fn *eval, void *ctx, X509_REQ *orig,
                          const unsigned char **der, apr_size_t *len,
                          const char **why)
{
    X509_REQ *req = ca_req_own(p, X509_REQ_new());
    GENERAL_NAMES *src = request_sans(orig), *sans = NULL;
    X509_NAME *name;
    const X509_ALGOR *alg = NULL;
    apr_status_t rv = APR_EINVAL;

    *why = NULL;
    name = build_subject(p, subject, eval, ctx,
                         X509_REQ_get_subject_name(orig), why);
    if (!name || !(sans = build_sans(p, san, eval, ctx, src, why))) {
        goto out;
    }
    if (X509_NAME_entry_count(name) == 0 && sk_GENERAL_NAME_num(sans) == 0) {
        *why = "the configuration allows no subject for this request";
        goto out;
    }
    X509_REQ_get0_signature(orig, NULL, &alg);
    if (!req || !X509_REQ_set_version(req, X509_REQ_VERSION_1)
        || !X509_REQ_set_subject_name(req, name)
        || !ca_pubkey_copy(X509_REQ_get_X509_PUBKEY(req),
                           X509_REQ_get_X509_PUBKEY(orig))
        || !X509_REQ_set1_signature_algo(req, (X509_ALGOR *)alg)) {
        *why = "the request could not be rebuilt";
        goto out;
    }
    X509_REQ_set0_signature(req, ASN1_BIT_STRING_new());
    if (sk_GENERAL_NAME_num(sans) > 0) {
        STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
        /* critical when it is the only name (RFC 5280 4.2.1.6) */
        X509_EXTENSION *ext =
            X509V3_EXT_i2d(NID_subject_alt_name,
                           X509_NAME_entry_count(name) == 0, sans);

        if (!exts || !ext || !sk_X509_EXTENSION_push(exts, ext)
            || !X509_REQ_add_extensions(req, exts)) {
            X509_EXTENSION_free(ext);
            sk_X509_EXTENSION_free(exts);
            *why = "the subjectAltName could not be added";
            goto out;
        }
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    }
    rv = ca_req_der(p, req, der, len);
    if (rv != APR_SUCCESS) {
        *why = "the request could not be encoded";
    }
out:
    X509_NAME_free(name);
    GENERAL_NAMES_free(sans);
    GENERAL_NAMES_free(src);
    ERR_clear_error();
    return rv;
}
