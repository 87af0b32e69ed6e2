/* Licensed under the Apache License, Version 2.0 (see COPYING). */

/*
 * scep_rebuild: the request mod_scep hands to the backends, rebuilt from
 * the client's PKCS#10 request and the ScepSubject* / ScepSubjectAltName*
 * rules.  Only the configured subject fields and subjectAltNames and the
 * client's public key survive.  No httpd here: the rules' expressions are
 * evaluated by a callback, so that the fuzzer and the unit tests can run
 * the same code with values of their own.
 */

#ifndef SCEP_REBUILD_H
#define SCEP_REBUILD_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <openssl/x509.h>

/* One ScepSubject* or ScepSubjectAltName* line, in configuration order. */
typedef struct scep_name_rule {
    const char *field;          /* as configured, for messages */
    ASN1_OBJECT *obj;           /* subject: the attribute, NULL for '*' */
    int gen_type;               /* subjectAltName: GEN_*, -1 for '*' */
    int limit;                  /* Request: most values taken, 0 = any */
    const void *expr;           /* Set: the value (the caller's expression,
                                 * opaque here), NULL for Request */
} scep_name_rule;

/*
 * The value of a Set rule: "" leaves the field out; NULL fails the rebuild
 * with *why set (a text safe to send to the client).
 */
typedef const char *scep_rule_eval_fn(void *ctx, const scep_name_rule *rule,
                                      const char **why);

/*
 * Fill in rule->field and rule->obj (an OpenSSL short or long name, or a
 * dotted OID) or rule->field and rule->gen_type (the RFC 5280 name of a
 * GeneralName choice, any case).  NULL, or an error message starting with
 * directive, from p.  The ASN1_OBJECT is freed with p.
 */
const char *scep_rule_subject_field(apr_pool_t *p, const char *directive,
                                    const char *field, scep_name_rule *rule);
const char *scep_rule_san_field(apr_pool_t *p, const char *directive,
                                const char *field, scep_name_rule *rule);

/* The RFC 5280 name of a GeneralName choice (GEN_*), or "unknown". */
const char *scep_san_name(int type);

/*
 * The request handed to the backends, as DER from p: version 1, the
 * subject the subject rules allow, a subjectAltName extension with the
 * names the san rules allow (critical when the subject is empty), the
 * public key of orig copied as it is, and an empty signature.  On failure
 * APR_EINVAL (or the encoding's status) and *why says why, in words safe to
 * send to the client.  orig may come from ca_req_parse_nokey().
 */
apr_status_t scep_rebuild(apr_pool_t *p, const apr_array_header_t *subject,
                          const apr_array_header_t *san,
                          scep_rule_eval_fn *eval, void *ctx, X509_REQ *orig,
                          const unsigned char **der, apr_size_t *len,
                          const char **why);

#endif /* SCEP_REBUILD_H */
