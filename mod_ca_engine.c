/* Licensed under the Apache License, Version 2.0 (see COPYING). */

/*
 * mod_ca_engine: a backend that signs certificate requests with a private
 * key held in an HSM or smartcard, reached through an OpenSSL ENGINE
 * (typically libp11's "pkcs11" engine), and a CA certificate held on disk
 * or in the token.  It answers ca_sign, ca_getca, ca_getnextca and
 * ca_getchain exactly as mod_ca_simple does, through the same issuing code
 * (ca_issue.c); only where the key lives differs.  The serial number and
 * the time come from the ca_makeserial and ca_gettime hooks, which this
 * module does not answer (mod_ca_simple's CASimpleSerialRandom and
 * CASimpleTime, or mod_ca_disk's counter, do).
 *
 * Life of an engine and its keys:
 *
 *   directives    the files (certificates, the PIN) are read as root;
 *                 nothing touches an engine
 *   check_config  on every reading of the configuration, also for
 *                 "apachectl configtest": a process forked for the purpose
 *                 (the probe), running as the children's user, does what a
 *                 child will do (ENGINE_by_id, the CAEngineControl commands
 *                 and the PIN, ENGINE_init, ENGINE_load_private_key) and
 *                 checks that key and certificate belong together, then
 *                 exits.  A missing engine, a refused PIN or a missing key
 *                 stops httpd with a line that says which of them it was.
 *                 The parent itself never initialises an engine: why is
 *                 told at ca_engine_check_config().
 *   child_init    every child initialises its own engines and loads its
 *                 own keys, before it serves a request: a PKCS#11 module
 *                 is initialised once per process (C_Initialize), and its
 *                 sessions and object handles never cross a fork.  They
 *                 live as long as the child, which serves one generation
 *                 of the configuration.
 *   child exit    the pool cleanups free the keys, then ENGINE_finish,
 *                 then ENGINE_free: see ca_engine_get_handle() for the
 *                 order.
 *
 * An engine that is not loaded through "dynamic" exists once per process:
 * every section that names it must configure it the same way.  Sections
 * with the same engine configuration share one initialised engine; each
 * may load its own key.
 *
 * CAEngine, CAEngineControl, CAEnginePINFile, CAEngineKey,
 * CAEngineCertificate, CAEngineChain and CAEngineSerialize describe one
 * signer and are inherited together, as CASimpleCertificate, CASimpleKey
 * and CASimpleChain are in mod_ca_simple: a section that sets any of them
 * replaces all, so that a key is never paired with a certificate or engine
 * from another section that the start-up checks did not see together.
 */

/*
 * The ENGINE API is deprecated in OpenSSL 3 (providers replace it) but is
 * still there, and libp11's pkcs11 engine is what Debian 12 ships for
 * PKCS#11 keys.  Asking the headers for the 1.1.1 API declares the ENGINE
 * functions without deprecation attributes, so this file builds without
 * warnings; it must come before the first OpenSSL header, and applies to
 * this file only.
 */
#define OPENSSL_API_COMPAT 0x10101000L

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "unixd.h"

#include "apr_lib.h"
#include "apr_strings.h"
#include "apr_file_io.h"
#if APR_HAS_THREADS
#include "apr_thread_mutex.h"
#endif

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ui.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "mod_ca.h"
#include "ca_util.h"
#include "ca_issue.h"
#include "ca_sign.h"

module AP_MODULE_DECLARE_DATA ca_engine_module;

#define CA_ENGINE_DAYS_DEFAULT  CA_ISSUE_DAYS_DEFAULT

/* CAEngineCertificate engine:<id> loads the certificate from the token */
#define CA_ENGINE_CERT_PREFIX   "engine:"
/* the engine control command CAEnginePINFile hands the PIN to */
#define CA_ENGINE_PIN_CMD       "PIN"
/* the longest PIN file accepted */
#define CA_ENGINE_PIN_MAX       256
/* the lock file around opening the engines, in the DefaultRuntimeDir */
#define CA_ENGINE_LOCK_FILE     "ca-engine-init.lock"

/* One CAEngineControl line; value NULL for a command without input. */
typedef struct ca_engine_ctrl {
    const char *name;
    const char *value;
} ca_engine_ctrl;

/* An initialised engine, shared by the sections configuring it alike. */
typedef struct ca_engine_handle {
    const char *id;
    ENGINE *e;
    const struct ca_engine_signer *first;   /* the section that made it */
    int serialize;                      /* some section wants a lock */
#if APR_HAS_THREADS
    apr_thread_mutex_t *mutex;          /* per process, from child_init */
#endif
} ca_engine_handle;

/*
 * The signer of a section.  Allocated by the first signer directive of a
 * section; merged configurations point at it, so what child_init fills in
 * (each child in its own copy of the memory) is what requests see.
 */
typedef struct ca_engine_signer {
    const char *where;                  /* file:line, for messages */
    const char *engine_id;              /* CAEngine */
    apr_array_header_t *controls;       /* CAEngineControl, in order */
    const char *pin_file;               /* CAEnginePINFile */
    char *pin;                          /* its contents: kept for the
                                         * children, wiped with the
                                         * configuration and by each child
                                         * once its engines have it */
    apr_size_t pin_len;
    const char *key_id;                 /* CAEngineKey */
    const char *key_label;              /* the same, any PIN in it hidden */
    const char *key_name;               /* "label (engine id)", messages */
    ca_sign_cert *cert;               /* CAEngineCertificate */
    const char *cert_token_id;          /* CAEngineCertificate engine:id */
    ca_sign_chain *chain;             /* CAEngineChain */
    int serialize;                      /* CAEngineSerialize */

    ca_engine_handle *handle;           /* this process's engine */
    EVP_PKEY *key;                      /* this process's key, or NULL */
} ca_engine_signer;

typedef struct ca_engine_dir_conf {
    ca_engine_signer *signer;           /* inherited as a unit, see top */
    ca_sign_cert *next;               /* CAEngineNextCertificate */
    int days;                           /* CAEngineDays */
    apr_array_header_t *extensions;     /* CAEngineExtension, replaces;
                                         * of ca_issue_ext */
    const char *where;                  /* file:line, for start-up errors */

    unsigned int signer_set:1;
    unsigned int next_set:1;
    unsigned int days_set:1;
    unsigned int extensions_set:1;
    unsigned int registered:1;          /* in ca_engine_sections already */
} ca_engine_dir_conf;

/*
 * Every section that configured a signer or a next certificate, for the
 * start-up checks and child_init: allocated from pconf (pre_config) and
 * filled while the configuration is read, by the main thread.  And the
 * engines this process initialised (the probe's, or a child's): made by
 * check_config's probe and by child_init while the process has one
 * thread.  Requests only read the handles their signers point to.
 */
static apr_array_header_t *ca_engine_sections;
static apr_array_header_t *ca_engine_handles;

/* Never prompt for a PIN: httpd has no terminal (ca_engine_ui_read). */
static UI_METHOD *ca_engine_ui;

/*
 * Processes open their engines one at a time: a PKCS#11 module may update
 * the token when it logs in (SoftHSM2 rewrites its token file at every
 * C_Login), and processes starting together then fail with
 * CKR_GENERAL_ERROR or find no objects.  Who opens engines at the same
 * time: the children of one generation; after a graceful restart, late
 * children of the old generation and the probe and children of the new
 * one; and the probe of "apachectl graceful" or "configtest", which runs
 * in a process tree of its own.  So the lock is a POSIX record lock
 * (fcntl) on a file all of them find from the configuration:
 * DefaultRuntimeDir/ca-engine-init.lock.  Record locks belong to a
 * process, so children sharing the descriptor they inherit still exclude
 * each other.  Opened (as root) in check_config, per configuration.
 */
static apr_file_t *ca_engine_lock_file;

/* What ca_engine_ui_read() saw while a key was loaded. */
typedef struct ca_engine_ui_data {
    int asked;
} ca_engine_ui_data;

/* ---- small helpers -------------------------------------------------- */

/*
 * A key id for messages: the value of a PKCS#11 URI "pin-value" attribute
 * replaced by "***" (RFC 7512 allows the PIN in the URI).
 */
static const char *ca_engine_redact(apr_pool_t *p, const char *id)
{
    const char *at = id ? strstr(id, "pin-value=") : NULL;
    const char *end;

    if (!at) {
        return id;
    }
    at += sizeof("pin-value=") - 1;
    end = at + strcspn(at, ";?&");

    return apr_pstrcat(p, apr_pstrmemdup(p, id, (apr_size_t)(at - id)),
                       "***", ca_engine_redact(p, end), NULL);
}

/* Whether a control command may carry a secret: its value is never shown
 * (PIN, SO_PIN, PASSWORD, ...; hiding one value too many is harmless). */
static int ca_engine_secret_ctrl(const char *name)
{
    return ap_strcasestr(name, "PIN") || ap_strcasestr(name, "PASS");
}

/*
 * Empty the OpenSSL error queue into one line.  *pin_refused is set when
 * an error names the PIN: libp11 puts the PKCS#11 return value of a failed
 * C_Login into the queue (CKR_PIN_INCORRECT as "PIN incorrect", likewise
 * PIN invalid, locked, expired).  Any occurrence of the PIN itself is
 * blanked, should an engine ever echo it.
 */
static const char *ca_engine_errors(apr_pool_t *p, const ca_engine_signer *sg,
                                    int *pin_refused)
{
    const char *data, *text = NULL;
    unsigned long e;
    int flags;
    char buf[256];

    while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
        const char *reason = ERR_reason_error_string(e);
        const char *one;

        if (pin_refused && reason && strstr(reason, "PIN")) {
            *pin_refused = 1;
        }
        ERR_error_string_n(e, buf, sizeof(buf));
        one = ((flags & ERR_TXT_STRING) && data && *data)
              ? apr_pstrcat(p, buf, " (", data, ")", NULL)
              : apr_pstrdup(p, buf);
        text = text ? apr_pstrcat(p, text, "; ", one, NULL) : one;
    }
    if (!text) {
        return "no details from OpenSSL";
    }
    if (sg && sg->pin && sg->pin_len && strstr(text, sg->pin)) {
        char *copy = apr_pstrdup(p, text), *hit;

        while ((hit = strstr(copy, sg->pin))) {
            memset(hit, '*', sg->pin_len);
        }
        text = copy;
    }

    return text;
}

/* The UI reader: never read a PIN, remember that one was wanted. */
static int ca_engine_ui_read(UI *ui, UI_STRING *uis)
{
    ca_engine_ui_data *d = UI_get0_user_data(ui);

    if (d) {
        d->asked = 1;
    }

    return 0;
}

static apr_status_t ca_engine_ui_free(void *data)
{
    UI_destroy_method(data);
    ca_engine_ui = NULL;

    return APR_SUCCESS;
}

/* Forget a signer's PIN (on pconf clear; in a child once it is used). */
static apr_status_t ca_engine_pin_wipe(void *data)
{
    ca_engine_signer *sg = data;

    if (sg->pin) {
        OPENSSL_cleanse(sg->pin, sg->pin_len);
        sg->pin = NULL;
        sg->pin_len = 0;
    }

    return APR_SUCCESS;
}

/* ---- configuration ------------------------------------------------- */

static void *ca_engine_create_dir_conf(apr_pool_t *p, char *dir)
{
    ca_engine_dir_conf *conf = apr_pcalloc(p, sizeof(*conf));

    conf->days = CA_ENGINE_DAYS_DEFAULT;

    return conf;
}

static void *ca_engine_merge_dir_conf(apr_pool_t *p, void *basev,
                                      void *addv)
{
    ca_engine_dir_conf *new = apr_pcalloc(p, sizeof(*new));
    ca_engine_dir_conf *base = basev;
    ca_engine_dir_conf *add = addv;

    new->signer = add->signer_set ? add->signer : base->signer;
    new->signer_set = base->signer_set || add->signer_set;

    new->next = add->next_set ? add->next : base->next;
    new->next_set = base->next_set || add->next_set;

    new->days = add->days_set ? add->days : base->days;
    new->days_set = base->days_set || add->days_set;

    new->extensions = add->extensions_set ? add->extensions
                                          : base->extensions;
    new->extensions_set = base->extensions_set || add->extensions_set;

    return new;
}

static apr_status_t ca_engine_reset_registry(void *data)
{
    ca_engine_sections = NULL;

    return APR_SUCCESS;
}

/* A fresh registry for each reading of the configuration. */
static void ca_engine_make_registry(apr_pool_t *pconf)
{
    ca_engine_sections = apr_array_make(pconf, 4,
                                        sizeof(ca_engine_dir_conf *));
    apr_pool_cleanup_register(pconf, NULL, ca_engine_reset_registry,
                              apr_pool_cleanup_null);
}

static const char *ca_engine_where(cmd_parms *cmd)
{
    return cmd->directive
        ? apr_psprintf(cmd->pool, "%s:%d", cmd->directive->filename,
                       cmd->directive->line_num)
        : "(unknown)";
}

/* Remember a section for the start-up checks, once. */
static void ca_engine_register_section(cmd_parms *cmd,
                                       ca_engine_dir_conf *conf)
{
    if (conf->registered) {
        return;
    }
    if (!ca_engine_sections) {
        /* pre_config runs first; cmd->pool is pconf in any case */
        ca_engine_make_registry(cmd->pool);
    }
    conf->where = ca_engine_where(cmd);
    APR_ARRAY_PUSH(ca_engine_sections, ca_engine_dir_conf *) = conf;
    conf->registered = 1;
}

/* The signer of the section, made by its first signer directive. */
static ca_engine_signer *ca_engine_section_signer(cmd_parms *cmd,
                                                  ca_engine_dir_conf *conf)
{
    if (!conf->signer_set) {
        conf->signer = apr_pcalloc(cmd->pool, sizeof(*conf->signer));
        conf->signer->where = ca_engine_where(cmd);
        conf->signer->controls = apr_array_make(cmd->pool, 4,
                                                sizeof(ca_engine_ctrl));
        conf->signer_set = 1;
    }
    ca_engine_register_section(cmd, conf);

    return conf->signer;
}

/* The key as the signing messages name it, once both lines are read. */
static void ca_engine_name_key(apr_pool_t *p, ca_engine_signer *sg)
{
    if (sg->key_label && sg->engine_id) {
        sg->key_name = apr_psprintf(p, "%s (engine %s)", sg->key_label,
                                    sg->engine_id);
    }
}

static const char *ca_engine_set_engine(cmd_parms *cmd, void *dconf,
                                        const char *arg)
{
    ca_engine_signer *sg = ca_engine_section_signer(cmd, dconf);

    if (!*arg) {
        return apr_psprintf(cmd->pool, "%s needs an engine id, such as "
                            "pkcs11", cmd->cmd->name);
    }
    sg->engine_id = arg;
    ca_engine_name_key(cmd->pool, sg);

    return NULL;
}

static const char *ca_engine_add_control(cmd_parms *cmd, void *dconf,
                                         const char *name, const char *value)
{
    ca_engine_signer *sg = ca_engine_section_signer(cmd, dconf);
    ca_engine_ctrl *ctrl;

    if (!*name) {
        return apr_psprintf(cmd->pool, "%s needs a command name",
                            cmd->cmd->name);
    }
    ctrl = apr_array_push(sg->controls);
    ctrl->name = name;
    ctrl->value = value;

    return NULL;
}

/* The PIN, read once as root; the file's contents are never shown. */
static const char *ca_engine_set_pin_file(cmd_parms *cmd, void *dconf,
                                          const char *arg)
{
    ca_engine_signer *sg = ca_engine_section_signer(cmd, dconf);
    char buf[CA_ENGINE_PIN_MAX + 2];
    const char *path, *err;
    apr_size_t len = 0;
    apr_file_t *f;
    apr_status_t rv;
    char errbuf[120];

    if ((err = ca_sign_path(cmd, arg, &path))) {
        return err;
    }
    rv = apr_file_open(&f, path, APR_FOPEN_READ, APR_FPROT_OS_DEFAULT,
                       cmd->temp_pool);
    if (rv == APR_SUCCESS) {
        rv = apr_file_read_full(f, buf, sizeof(buf) - 1, &len);
        apr_file_close(f);
        if (rv == APR_EOF) {
            rv = APR_SUCCESS;
        }
    }
    if (rv != APR_SUCCESS) {
        OPENSSL_cleanse(buf, sizeof(buf));
        return apr_psprintf(cmd->pool, "%s %s: cannot read the file: %s",
                            cmd->cmd->name, path,
                            apr_strerror(rv, errbuf, sizeof(errbuf)));
    }
    /* one line: the end of line and trailing white space are not part of
     * the PIN */
    while (len && apr_isspace(buf[len - 1])) {
        len--;
    }
    if (!len || len > CA_ENGINE_PIN_MAX || memchr(buf, '\n', len)
        || memchr(buf, '\0', len)) {
        OPENSSL_cleanse(buf, sizeof(buf));
        return apr_psprintf(cmd->pool, "%s %s: the file must hold the PIN "
                            "on one line, 1 to %d characters",
                            cmd->cmd->name, path, CA_ENGINE_PIN_MAX);
    }
    ca_engine_pin_wipe(sg);             /* a second line replaces it */
    sg->pin = apr_pstrmemdup(cmd->pool, buf, len);
    sg->pin_len = len;
    sg->pin_file = path;
    OPENSSL_cleanse(buf, sizeof(buf));
    /* kept for the child processes, which log in themselves; wiped with
     * the configuration */
    apr_pool_cleanup_register(cmd->pool, sg, ca_engine_pin_wipe,
                              apr_pool_cleanup_null);

    return NULL;
}

static const char *ca_engine_set_key(cmd_parms *cmd, void *dconf,
                                     const char *arg)
{
    ca_engine_signer *sg = ca_engine_section_signer(cmd, dconf);

    if (!*arg) {
        return apr_psprintf(cmd->pool, "%s needs a key id", cmd->cmd->name);
    }
    sg->key_id = arg;
    sg->key_label = ca_engine_redact(cmd->pool, arg);
    ca_engine_name_key(cmd->pool, sg);

    return NULL;
}

static const char *ca_engine_set_certificate(cmd_parms *cmd, void *dconf,
                                             const char *arg)
{
    ca_engine_signer *sg = ca_engine_section_signer(cmd, dconf);

    if (!strncmp(arg, CA_ENGINE_CERT_PREFIX,
                 sizeof(CA_ENGINE_CERT_PREFIX) - 1)) {
        const char *id = arg + sizeof(CA_ENGINE_CERT_PREFIX) - 1;

        if (!*id) {
            return apr_psprintf(cmd->pool, "%s %s: give the certificate's "
                                "id in the token after '%s'",
                                cmd->cmd->name, arg, CA_ENGINE_CERT_PREFIX);
        }
        /* loaded at start-up, once the engine is initialised */
        sg->cert_token_id = id;
        sg->cert = NULL;
        return NULL;
    }
    sg->cert_token_id = NULL;

    return ca_sign_load_cert(cmd, arg, &sg->cert);
}

static const char *ca_engine_set_chain(cmd_parms *cmd, void *dconf,
                                       const char *arg)
{
    ca_engine_signer *sg = ca_engine_section_signer(cmd, dconf);

    return ca_sign_load_chain(cmd, arg, &sg->chain);
}

static const char *ca_engine_set_serialize(cmd_parms *cmd, void *dconf,
                                           int flag)
{
    ca_engine_signer *sg = ca_engine_section_signer(cmd, dconf);

    sg->serialize = flag;

    return NULL;
}

static const char *ca_engine_set_next_certificate(cmd_parms *cmd,
                                                  void *dconf,
                                                  const char *arg)
{
    ca_engine_dir_conf *conf = dconf;
    const char *err;

    if ((err = ca_sign_load_cert(cmd, arg, &conf->next))) {
        return err;
    }
    conf->next_set = 1;
    ca_engine_register_section(cmd, conf);

    return NULL;
}

static const char *ca_engine_set_days(cmd_parms *cmd, void *dconf,
                                      const char *arg)
{
    ca_engine_dir_conf *conf = dconf;
    const char *err;

    if ((err = ca_sign_parse_days(cmd, arg, &conf->days))) {
        return err;
    }
    conf->days_set = 1;

    return NULL;
}

static const char *ca_engine_add_extension(cmd_parms *cmd, void *dconf,
                                           const char *name,
                                           const char *value)
{
    ca_engine_dir_conf *conf = dconf;
    const char *err;

    if ((err = ca_sign_add_extension(cmd, &conf->extensions,
                                     !conf->extensions_set, name, value))) {
        return err;
    }
    conf->extensions_set = 1;

    return NULL;
}

/* The engine is used at start-up, as root, so never from .htaccess. */
static const command_rec ca_engine_cmds[] = {
    AP_INIT_TAKE1("CAEngine", ca_engine_set_engine, NULL,
                  RSRC_CONF | ACCESS_CONF,
                  "The id of the OpenSSL engine holding the CA key, "
                  "e.g. pkcs11"),
    AP_INIT_TAKE12("CAEngineControl", ca_engine_add_control, NULL,
                   RSRC_CONF | ACCESS_CONF,
                   "An engine control command and its value, sent before "
                   "the engine is initialised; repeatable, in order"),
    AP_INIT_TAKE1("CAEnginePINFile", ca_engine_set_pin_file, NULL,
                  RSRC_CONF | ACCESS_CONF,
                  "A file holding the token PIN, read with the "
                  "configuration and passed as the engine's PIN command"),
    AP_INIT_TAKE1("CAEngineKey", ca_engine_set_key, NULL,
                  RSRC_CONF | ACCESS_CONF,
                  "The engine's id of the CA private key, e.g. a PKCS#11 "
                  "URI"),
    AP_INIT_TAKE1("CAEngineCertificate", ca_engine_set_certificate, NULL,
                  RSRC_CONF | ACCESS_CONF,
                  "The CA certificate that signs requests: a file (PEM or "
                  "DER), or engine:<id> to load it from the token"),
    AP_INIT_TAKE1("CAEngineChain", ca_engine_set_chain, NULL,
                  RSRC_CONF | ACCESS_CONF,
                  "PEM file of the certificates above CAEngineCertificate, "
                  "its issuer first"),
    AP_INIT_FLAG("CAEngineSerialize", ca_engine_set_serialize, NULL,
                 RSRC_CONF | ACCESS_CONF,
                 "Sign one request at a time per process, for engines "
                 "that are not thread-safe (default off)"),
    AP_INIT_TAKE1("CAEngineNextCertificate", ca_engine_set_next_certificate,
                  NULL, RSRC_CONF | ACCESS_CONF,
                  "The CA certificate that will sign next (rollover)"),
    AP_INIT_TAKE1("CAEngineDays", ca_engine_set_days, NULL,
                  RSRC_CONF | ACCESS_CONF,
                  "Days an issued certificate is valid (1-36500, "
                  "default 365)"),
    AP_INIT_TAKE2("CAEngineExtension", ca_engine_add_extension, NULL,
                  RSRC_CONF | ACCESS_CONF,
                  "An X.509v3 extension in OpenSSL syntax, repeatable; a "
                  "section that sets any replaces the inherited list"),
    { NULL }
};

/* ---- the engine ---------------------------------------------------- */

static apr_status_t ca_engine_free_engine(void *data)
{
    ENGINE_free(data);

    return APR_SUCCESS;
}

static apr_status_t ca_engine_finish_engine(void *data)
{
    ENGINE_finish(data);

    return APR_SUCCESS;
}

/* Whether two sections configure an engine alike. */
static int ca_engine_same_setup(const ca_engine_signer *a,
                                const ca_engine_signer *b)
{
    int i;

    if (strcmp(a->engine_id, b->engine_id)
        || a->controls->nelts != b->controls->nelts
        || (a->pin == NULL) != (b->pin == NULL)
        || (a->pin && strcmp(a->pin, b->pin))) {
        return 0;
    }
    for (i = 0; i < a->controls->nelts; i++) {
        const ca_engine_ctrl *x = &APR_ARRAY_IDX(a->controls, i,
                                                 ca_engine_ctrl);
        const ca_engine_ctrl *y = &APR_ARRAY_IDX(b->controls, i,
                                                 ca_engine_ctrl);

        if (strcmp(x->name, y->name)
            || (x->value == NULL) != (y->value == NULL)
            || (x->value && strcmp(x->value, y->value))) {
            return 0;
        }
    }

    return 1;
}

/*
 * The initialised engine for a section, owned by p (pchild, or the
 * probe's pool): one this process already made for a section configured
 * alike, or a new one.  Logs why not and returns NULL.
 *
 * Cleanups run in the reverse order of their registration (LIFO): the
 * structural reference's ENGINE_free is registered first, right after
 * ENGINE_by_id, then ENGINE_finish once ENGINE_init succeeded, and every
 * key (ca_pkey_own) and token certificate after that.  Destroying the pool
 * therefore frees the keys first, then releases the functional reference,
 * then the structural one, which is the order the ENGINE API requires.
 * (libp11 keeps a reference of its own from each key it handed out, so its
 * engine really finishes only at exit; see check_config.)
 */
static ca_engine_handle *ca_engine_get_handle(apr_pool_t *p,
                                              apr_pool_t *ptemp,
                                              server_rec *s,
                                              const ca_engine_signer *sg)
{
    ca_engine_handle *h;
    ENGINE *e;
    int i;

    for (i = 0; i < ca_engine_handles->nelts; i++) {
        h = APR_ARRAY_IDX(ca_engine_handles, i, ca_engine_handle *);
        if (ca_engine_same_setup(h->first, sg)) {
            return h;
        }
    }

    e = ENGINE_by_id(sg->engine_id);
    if (!e) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, CA_LOGNO(05001)
                     "CAEngine %s (%s): no such engine: OpenSSL has none "
                     "built in and cannot load one by that name from its "
                     "engines directory: %s", sg->engine_id, sg->where,
                     ca_engine_errors(ptemp, sg, NULL));
        return NULL;
    }
    apr_pool_cleanup_register(p, e, ca_engine_free_engine,
                              apr_pool_cleanup_null);

    /* an engine not loaded through "dynamic" is one object per process:
     * configuring it differently again would change the first section's
     * engine under its feet */
    for (i = 0; i < ca_engine_handles->nelts; i++) {
        h = APR_ARRAY_IDX(ca_engine_handles, i, ca_engine_handle *);
        if (h->e == e) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, CA_LOGNO(05002)
                         "CAEngine %s (%s) is configured differently from "
                         "the same engine at %s: an engine exists once per "
                         "process, so every section using it must give the "
                         "same CAEngineControl lines and CAEnginePINFile "
                         "(the keys may differ; put the engine lines in an "
                         "enclosing section)", sg->engine_id, sg->where,
                         h->first->where);
            return NULL;
        }
    }

    for (i = 0; i < sg->controls->nelts; i++) {
        const ca_engine_ctrl *c = &APR_ARRAY_IDX(sg->controls, i,
                                                 ca_engine_ctrl);

        if (!ENGINE_ctrl_cmd_string(e, c->name, c->value, 0)) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, CA_LOGNO(05003)
                         "CAEngineControl %s %s (%s): engine %s refused the "
                         "command: %s", c->name,
                         !c->value ? "(no value)"
                         : ca_engine_secret_ctrl(c->name) ? "(value hidden)"
                         : c->value, sg->where, sg->engine_id,
                         ca_engine_errors(ptemp, sg, NULL));
            return NULL;
        }
    }
    if (sg->pin
        && !ENGINE_ctrl_cmd_string(e, CA_ENGINE_PIN_CMD, sg->pin, 0)) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, CA_LOGNO(05004)
                     "CAEnginePINFile %s (%s): engine %s does not take a PIN "
                     "with a %s command: %s", sg->pin_file, sg->where,
                     sg->engine_id, CA_ENGINE_PIN_CMD,
                     ca_engine_errors(ptemp, sg, NULL));
        return NULL;
    }

    if (!ENGINE_init(e)) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, CA_LOGNO(05005)
                     "CAEngine %s (%s): the engine cannot be initialised "
                     "(for pkcs11: is CAEngineControl MODULE_PATH a "
                     "PKCS#11 module?): %s", sg->engine_id, sg->where,
                     ca_engine_errors(ptemp, sg, NULL));
        return NULL;
    }
    apr_pool_cleanup_register(p, e, ca_engine_finish_engine,
                              apr_pool_cleanup_null);

    h = apr_pcalloc(p, sizeof(*h));
    h->id = sg->engine_id;
    h->e = e;
    h->first = sg;
    APR_ARRAY_PUSH(ca_engine_handles, ca_engine_handle *) = h;

    return h;
}

/* Why a key could not be loaded. */
typedef enum {
    CA_ENGINE_KEY_FAILED = 0,           /* the engine could not look */
    CA_ENGINE_KEY_PIN,                  /* PIN refused, or none given */
    CA_ENGINE_KEY_MISSING               /* no such key */
} ca_engine_key_error;

/*
 * Load the key of a signer into p.  On failure *why says what went wrong
 * and *kind which of the causes it was: the PIN (a reason naming the PIN,
 * or the engine asked for one), a missing key (libp11: "object not found",
 * also when no token matches), or anything else (the engine cannot reach
 * its module or token).
 */
static EVP_PKEY *ca_engine_load_key(apr_pool_t *p, apr_pool_t *ptemp,
                                    const ca_engine_signer *sg,
                                    const char **why,
                                    ca_engine_key_error *kind)
{
    ca_engine_ui_data ui = { 0 };
    EVP_PKEY *key;
    int refused = 0;

    ERR_clear_error();
    key = ENGINE_load_private_key(sg->handle->e, sg->key_id, ca_engine_ui,
                                  &ui);
    if (key) {
        ERR_clear_error();
        return ca_pkey_own(p, key);
    }
    *why = ca_engine_errors(ptemp, sg, &refused);
    if (ui.asked) {
        *kind = CA_ENGINE_KEY_PIN;
        *why = apr_pstrcat(ptemp, "the token wants a PIN and none is "
                           "configured (CAEnginePINFile): ", *why, NULL);
    }
    else if (refused) {
        *kind = CA_ENGINE_KEY_PIN;
        *why = apr_pstrcat(ptemp, "the token refused the PIN", sg->pin_file
                           ? apr_pstrcat(ptemp, " of CAEnginePINFile ",
                                         sg->pin_file, NULL) : "",
                           ": ", *why, NULL);
    }
    else if (strstr(*why, "not found")) {
        *kind = CA_ENGINE_KEY_MISSING;
        *why = apr_pstrcat(ptemp, "engine ", sg->engine_id, " has no such "
                           "private key: ", *why, NULL);
    }
    else {
        *kind = CA_ENGINE_KEY_FAILED;
        *why = apr_pstrcat(ptemp, "engine ", sg->engine_id, " cannot load "
                           "keys (for pkcs11: is CAEngineControl MODULE_PATH "
                           "a PKCS#11 module, and can it find its tokens?): ",
                           *why, NULL);
    }

    return NULL;
}

/* CAEngineCertificate engine:<id>, through libp11's LOAD_CERT_CTRL, into
 * p (registered after the engine: freed before it). */
static int ca_engine_load_token_cert(apr_pool_t *p, apr_pool_t *ptemp,
                                     server_rec *s, ca_engine_signer *sg)
{
    struct {
        const char *id;
        X509 *cert;
    } params;
    ca_sign_cert *cert;

    params.id = sg->cert_token_id;
    params.cert = NULL;
    ERR_clear_error();
    if (!ENGINE_ctrl_cmd(sg->handle->e, "LOAD_CERT_CTRL", 0, &params, NULL,
                         0) || !params.cert) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, CA_LOGNO(05006)
                     "CAEngineCertificate %s%s (%s): engine %s cannot load "
                     "the certificate: %s", CA_ENGINE_CERT_PREFIX,
                     ca_engine_redact(ptemp, sg->cert_token_id), sg->where,
                     sg->engine_id, ca_engine_errors(ptemp, sg, NULL));
        return 0;
    }
    cert = apr_pcalloc(p, sizeof(*cert));
    cert->file = apr_pstrcat(p, CA_ENGINE_CERT_PREFIX,
                             ca_engine_redact(p, sg->cert_token_id),
                             NULL);
    cert->x = ca_x509_own(p, params.cert);
    if (ca_sign_cert_fill(p, cert) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, CA_LOGNO(05007)
                     "CAEngineCertificate %s (%s): cannot encode the "
                     "certificate: %s", cert->file, sg->where,
                     ca_engine_errors(ptemp, sg, NULL));
        return 0;
    }
    sg->cert = cert;

    return 1;
}

/* ---- helpers shared by the start-up checks and signing -------------- */

/* The extensions that apply: the configured list, or the defaults. */
static const ca_issue_ext *ca_engine_exts(const ca_engine_dir_conf *conf,
                                          int *n)
{
    return ca_sign_exts(conf->extensions_set ? conf->extensions : NULL, n);
}

/* ---- start-up checks ----------------------------------------------- */

static const char *const ca_engine_exts_tags[3] = {
    CA_LOGNO(05008), CA_LOGNO(05009), CA_LOGNO(05010)
};

/* The UI method that never prompts, made once per process. */
static int ca_engine_ui_make(apr_pool_t *p, server_rec *s)
{
    if (ca_engine_ui) {
        return 1;
    }
    ca_engine_ui = UI_create_method("mod_ca_engine");
    if (!ca_engine_ui
        || UI_method_set_reader(ca_engine_ui, ca_engine_ui_read) < 0) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, CA_LOGNO(05021)
                     "cannot make an OpenSSL UI method: %s",
                     ca_engine_errors(p, NULL, NULL));
        return 0;
    }
    /* registered before any engine: destroyed after them (LIFO) */
    apr_pool_cleanup_register(p, ca_engine_ui, ca_engine_ui_free,
                              apr_pool_cleanup_null);

    return 1;
}

/*
 * Make a signer usable in this process: its engine (shared with sections
 * configured alike), its key and, for CAEngineCertificate engine:<id>, its
 * certificate, all owned by p.  Logs why not and returns 0.
 */
static int ca_engine_open_signer(apr_pool_t *p, apr_pool_t *ptemp,
                                 server_rec *s, ca_engine_signer *sg)
{
    const char *why = "";
    ca_engine_key_error kind = CA_ENGINE_KEY_FAILED;

    if (!(sg->handle = ca_engine_get_handle(p, ptemp, s, sg))) {
        return 0;
    }
    if (sg->serialize) {
        sg->handle->serialize = 1;
    }
    if (!(sg->key = ca_engine_load_key(p, ptemp, sg, &why, &kind))) {
        switch (kind) {
        case CA_ENGINE_KEY_PIN:
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, CA_LOGNO(05014)
                         "CAEngineKey %s (%s): wrong or missing PIN: %s",
                         sg->key_label, sg->where, why);
            break;
        case CA_ENGINE_KEY_MISSING:
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, CA_LOGNO(05015)
                         "CAEngineKey %s (%s): missing key: %s",
                         sg->key_label, sg->where, why);
            break;
        default:
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, CA_LOGNO(05042)
                         "CAEngineKey %s (%s): the engine failed: %s",
                         sg->key_label, sg->where, why);
            break;
        }
        return 0;
    }
    if (sg->cert_token_id && !ca_engine_load_token_cert(p, ptemp, s, sg)) {
        return 0;
    }

    return 1;
}

/* A signer: complete, its engine, its key, its certificate. */
static int ca_engine_check_signer(apr_pool_t *p, server_rec *s,
                                  ca_engine_signer *sg)
{
    const char *missing = NULL;
    int i;

    if (!sg->engine_id) {
        missing = "CAEngine";
    }
    else if (!sg->key_id) {
        missing = "CAEngineKey";
    }
    else if (!sg->cert && !sg->cert_token_id) {
        missing = "CAEngineCertificate";
    }
    if (missing) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, CA_LOGNO(05012)
                     "mod_ca_engine signer at %s: %s is missing from the "
                     "section; CAEngine, CAEngineKey and CAEngineCertificate "
                     "go together in one section (which replaces every "
                     "signer directive it would inherit)", sg->where,
                     missing);
        return 0;
    }
    for (i = 0; sg->pin && i < sg->controls->nelts; i++) {
        const ca_engine_ctrl *c = &APR_ARRAY_IDX(sg->controls, i,
                                                 ca_engine_ctrl);

        if (!strcasecmp(c->name, CA_ENGINE_PIN_CMD)) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, CA_LOGNO(05013)
                         "mod_ca_engine signer at %s: both CAEnginePINFile "
                         "and CAEngineControl %s give a PIN; keep one",
                         sg->where, CA_ENGINE_PIN_CMD);
            return 0;
        }
    }
    if (sg->key_label != sg->key_id) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, CA_LOGNO(05041)
                     "CAEngineKey %s (%s) holds the PIN: it is then in the "
                     "configuration file, and an engine may print the key "
                     "id when it fails (libp11 does, on stderr); prefer "
                     "CAEnginePINFile", sg->key_label, sg->where);
    }

    if (!ca_engine_open_signer(p, p, s, sg)) {
        return 0;
    }

    if (X509_check_private_key(sg->cert->x, sg->key) != 1) {
        ERR_clear_error();
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, CA_LOGNO(05016)
                     "CAEngineKey %s does not match CAEngineCertificate %s "
                     "(%s)", sg->key_label, sg->cert->file, sg->where);
        return 0;
    }
    if (!ca_issue_can_sign_certs(sg->cert->x)) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, CA_LOGNO(05017)
                     "CAEngineCertificate %s (%s) is not a CA certificate "
                     "that may sign certificates (it needs basicConstraints "
                     "CA:TRUE and, if it has a keyUsage, keyCertSign)",
                     sg->cert->file, sg->where);
        return 0;
    }
    if (sg->cert->not_after <= apr_time_now()) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, CA_LOGNO(05018)
                     "CAEngineCertificate %s (%s) has expired, requests "
                     "signed here will fail", sg->cert->file, sg->where);
    }
    if (sg->chain
        && !ca_sign_check_chain(p, s, APLOG_MODULE_INDEX,
                                "CAEngine", CA_LOGNO(05011), sg->cert,
                                sg->chain, sg->where)) {
        return 0;
    }

    return 1;
}

static int ca_engine_check_section(apr_pool_t *p, server_rec *s,
                                   ca_engine_dir_conf *conf)
{
    int ok = 1;

    if (conf->next) {
        if (!ca_issue_can_sign_certs(conf->next->x)) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, CA_LOGNO(05019)
                         "CAEngineNextCertificate %s (%s) is not a CA "
                         "certificate that may sign certificates",
                         conf->next->file, conf->where);
            ok = 0;
        }
        else if (conf->next->not_after <= apr_time_now()) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, CA_LOGNO(05020)
                         "CAEngineNextCertificate %s (%s) has expired",
                         conf->next->file, conf->where);
        }
    }
    if (!conf->signer_set) {
        return ok;
    }
    if (!ca_engine_check_signer(p, s, conf->signer)) {
        return 0;
    }
    if (ok && !ca_sign_check_exts(p, s, APLOG_MODULE_INDEX,
                                  "CAEngine", ca_engine_exts_tags,
                                  conf->signer->cert, conf->extensions_set
                                                      ? conf->extensions
                                                      : NULL,
                                  conf->where)) {
        ok = 0;
    }

    return ok;
}

/*
 * Become the user the child processes run as (User, Group), when started
 * as root, so that the check opens the token as they will.  *who says
 * which user it was, or NULL when nothing changed.
 */
static int ca_engine_become_child_user(server_rec *s, const char **who)
{
    uid_t uid = ap_unixd_config.user_id;
    gid_t gid = ap_unixd_config.group_id;

    *who = NULL;
    if (geteuid() != 0 || uid == 0 || uid == (uid_t)-1) {
        return 1;
    }
    if ((gid != (gid_t)-1 && setgid(gid) != 0)
        || (ap_unixd_config.user_name
            && initgroups(ap_unixd_config.user_name, gid) != 0)
        || setuid(uid) != 0) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, errno, s, CA_LOGNO(05043)
                     "cannot become user %s to check the engines as the "
                     "child processes will use them",
                     ap_unixd_config.user_name);
        return 0;
    }
    *who = ap_unixd_config.user_name;

    return 1;
}

/* Open the lock file (see its definition); without it, no lock. */
static void ca_engine_lock_open(apr_pool_t *pconf, server_rec *s)
{
    const char *path = ap_runtime_dir_relative(pconf, CA_ENGINE_LOCK_FILE);
    apr_status_t rv;

    ca_engine_lock_file = NULL;
    if (!path) {
        return;
    }
    rv = apr_file_open(&ca_engine_lock_file, path,
                       APR_FOPEN_WRITE | APR_FOPEN_CREATE,
                       APR_FPROT_UREAD | APR_FPROT_UWRITE, pconf);
    if (rv != APR_SUCCESS) {
        /* e.g. a configtest by a user who may not write there */
        ap_log_error(APLOG_MARK, APLOG_DEBUG, rv, s, CA_LOGNO(05048)
                     "cannot open %s; the engines are opened without a "
                     "lock", path);
        ca_engine_lock_file = NULL;
    }
}

/* Lock (F_WRLCK) or unlock (F_UNLCK) the whole lock file. */
static int ca_engine_lock(server_rec *s, short type)
{
    struct flock fl;
    apr_os_file_t fd;
    int rc;

    if (!ca_engine_lock_file
        || apr_os_file_get(&fd, ca_engine_lock_file) != APR_SUCCESS) {
        return 0;
    }
    memset(&fl, 0, sizeof(fl));
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    do {
        rc = fcntl(fd, type == F_UNLCK ? F_SETLK : F_SETLKW, &fl);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, s, CA_LOGNO(05049)
                     "cannot %s %s; opening the engines without it",
                     type == F_UNLCK ? "unlock" : "lock",
                     CA_ENGINE_LOCK_FILE);
        return 0;
    }
    ap_log_error(APLOG_MARK, APLOG_TRACE1, 0, s, "%s %s",
                 type == F_UNLCK ? "unlocked" : "locked",
                 CA_ENGINE_LOCK_FILE);

    return 1;
}

/* The probe's work, see ca_engine_check_all(). */
static int ca_engine_check_all_locked(apr_pool_t *p, server_rec *s)
{
    const char *who = NULL;
    int i, ok = 1;

    if (!ca_engine_become_child_user(s, &who)) {
        return 0;
    }
    ca_engine_handles = apr_array_make(p, 2, sizeof(ca_engine_handle *));
    if (!ca_engine_ui_make(p, s)) {
        return 0;
    }
    for (i = 0; i < ca_engine_sections->nelts; i++) {
        ca_engine_dir_conf *conf =
            APR_ARRAY_IDX(ca_engine_sections, i, ca_engine_dir_conf *);

        if (!ca_engine_check_section(p, s, conf)) {
            ok = 0;
        }
    }
    if (!ok && who) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, CA_LOGNO(05044)
                     "the engines were checked as user %s, as the child "
                     "processes will use them: that user must be able to "
                     "open the token", who);
    }

    return ok;
}

/*
 * The probe: every section, in a process of its own (see check_config),
 * under the lock (see ca_engine_lock_file).
 */
static int ca_engine_check_all(apr_pool_t *p, server_rec *s)
{
    int locked = ca_engine_lock(s, F_WRLCK);
    int ok = ca_engine_check_all_locked(p, s);

    if (locked) {
        ca_engine_lock(s, F_UNLCK);
    }

    return ok;
}

static int ca_engine_pre_config(apr_pool_t *pconf, apr_pool_t *plog,
                                apr_pool_t *ptemp)
{
    ca_engine_make_registry(pconf);

    return OK;
}

/*
 * The start-up checks run in check_config, not post_config: check_config
 * runs on every reading of the configuration, also for "apachectl
 * configtest", so a wrong PIN or a missing key shows before a restart is
 * even attempted.  Every section is checked before httpd is told to stop.
 *
 * They run in a process forked for them (the probe), as the user of the
 * child processes, and the parent never initialises an engine itself.
 * An engine, once it handed out a key, stays initialised for the life of
 * the process: libp11 (0.4.12) caches the key, the cached key holds a
 * functional reference to the engine, and ENGINE_finish therefore never
 * reaches the engine's finish function, which alone would release the
 * cache.  Had the parent loaded the key, every later configuration would
 * silently keep the first one's PKCS#11 module and login (a graceful
 * restart with a changed MODULE_PATH, token or PIN would change nothing,
 * and a wrong PIN would pass), and the children would inherit PKCS#11
 * state across fork().  So the probe starts from a clean process for each
 * reading and exits, and each child initialises its own engine.  The
 * probe and the children take turns (ca_engine_lock_file).
 *
 * A wrong PIN costs one login attempt per reading that finds it: one per
 * start, configtest or restart, and one more for "apachectl graceful",
 * which checks the configuration in a process of its own first.  Mind a
 * token's retry counter.
 */
static int ca_engine_check_config(apr_pool_t *pconf, apr_pool_t *plog,
                                  apr_pool_t *ptemp, server_rec *s)
{
    apr_exit_why_e why;
    apr_proc_t proc;
    apr_status_t rv;
    int code = 0;

    if (!ca_engine_sections || !ca_engine_sections->nelts) {
        return OK;
    }
    ca_engine_lock_open(pconf, s);

    rv = apr_proc_fork(&proc, ptemp);
    if (rv == APR_INCHILD) {
        int ok = ca_engine_check_all(ptemp, s);

        /* no pool cleanups, no atexit handlers: this copy of httpd only
         * reports */
        _exit(ok ? 0 : 1);
    }
    if (rv != APR_INPARENT) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, CA_LOGNO(05045)
                     "cannot fork the start-up check of the engines");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    rv = apr_proc_wait(&proc, &code, &why, APR_WAIT);
    if (rv != APR_CHILD_DONE) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, CA_LOGNO(05046)
                     "cannot wait for the start-up check of the engines "
                     "(pid %" APR_PID_T_FMT ")", proc.pid);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (APR_PROC_CHECK_SIGNALED(why)) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, CA_LOGNO(05047)
                     "the start-up check of the engines (pid %"
                     APR_PID_T_FMT ") died of signal %d", proc.pid, code);
        return HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the reasons are logged by the probe */
    return code == 0 ? OK : HTTP_INTERNAL_SERVER_ERROR;
}

/*
 * Each child initialises its own engines and loads its keys (see the top
 * of the file and check_config), while it has one thread and before it
 * serves a request.  Everything is owned by pchild, so the keys, then the
 * engines go when the child exits (LIFO, see ca_engine_get_handle).  A
 * signer that cannot be opened stays unusable in this process: its
 * requests fail, logged.  Then the child forgets the PINs: the engines
 * keep their own copies, to log in again.
 */
static void ca_engine_child_init(apr_pool_t *pchild, server_rec *s)
{
    int i, locked = 0;

    if (!ca_engine_sections || !ca_engine_sections->nelts) {
        return;
    }
    ca_engine_handles = apr_array_make(pchild, 2,
                                       sizeof(ca_engine_handle *));
    if (!ca_engine_ui_make(pchild, s)) {
        return;
    }
    locked = ca_engine_lock(s, F_WRLCK);
    for (i = 0; i < ca_engine_sections->nelts; i++) {
        ca_engine_dir_conf *conf =
            APR_ARRAY_IDX(ca_engine_sections, i, ca_engine_dir_conf *);
        ca_engine_signer *sg = conf->signer;

        if (!conf->signer_set) {
            continue;
        }
        if (!ca_engine_open_signer(pchild, pchild, s, sg)) {
            sg->key = NULL;
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, CA_LOGNO(05023)
                         "CAEngineKey %s (%s) cannot be used in child "
                         "process %" APR_PID_T_FMT ", requests signed here "
                         "will fail (the reason is logged above)",
                         sg->key_label, sg->where, getpid());
            continue;
        }
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, CA_LOGNO(05024)
                     "CAEngineKey %s (%s): loaded in child process %"
                     APR_PID_T_FMT, sg->key_label, sg->where, getpid());
    }
    if (locked) {
        ca_engine_lock(s, F_UNLCK);
    }
#if APR_HAS_THREADS
    for (i = 0; i < ca_engine_handles->nelts; i++) {
        ca_engine_handle *h = APR_ARRAY_IDX(ca_engine_handles, i,
                                            ca_engine_handle *);
        apr_status_t rv;

        if (!h->serialize) {
            continue;
        }
        rv = apr_thread_mutex_create(&h->mutex, APR_THREAD_MUTEX_DEFAULT,
                                     pchild);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, CA_LOGNO(05022)
                         "CAEngineSerialize: cannot create the mutex of "
                         "engine %s", h->id);
            h->mutex = NULL;
        }
    }
#endif
    for (i = 0; i < ca_engine_sections->nelts; i++) {
        ca_engine_dir_conf *conf =
            APR_ARRAY_IDX(ca_engine_sections, i, ca_engine_dir_conf *);

        if (conf->signer_set) {
            ca_engine_pin_wipe(conf->signer);
        }
    }
    ERR_clear_error();
}

/* ---- the hooks ----------------------------------------------------- */

/* Whether this process could open the signer (child_init); logs if not. */
static int ca_engine_usable(request_rec *r, const ca_engine_signer *sg)
{
    if (sg->key && sg->cert) {
        return 1;
    }
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CA_LOGNO(05025)
                  "CAEngineKey %s (%s) could not be opened in this process "
                  "(see CA05023 at its start); cannot answer",
                  sg->key_label, sg->where);

    return 0;
}

/* Sign with the engine key, one at a time where CAEngineSerialize says. */
static apr_status_t ca_engine_sign_cert(request_rec *r, const ca_signer *csg,
                                        X509 *x, const char **why)
{
    const ca_engine_signer *sg = csg->ctx;
    apr_status_t status;
#if APR_HAS_THREADS
    apr_thread_mutex_t *mutex = sg->handle->mutex;

    if (mutex && (status = apr_thread_mutex_lock(mutex)) != APR_SUCCESS) {
        *why = "cannot lock the CAEngineSerialize mutex";
        return status;
    }
#endif
    status = ca_issue_sign(r->pool, x, sg->key, why);
#if APR_HAS_THREADS
    if (mutex) {
        apr_thread_mutex_unlock(mutex);
    }
#endif

    return status;
}

/* Every step of signing logs under this module's tags (ca_sign.h). */
static const char *const ca_engine_sign_tags[CA_SIGN_LOG_COUNT] = {
    [CA_SIGN_LOG_REQUEST] = CA_LOGNO(05026),
    [CA_SIGN_LOG_NAMES] = CA_LOGNO(05027),
    [CA_SIGN_LOG_NO_TIME] = CA_LOGNO(05030),
    [CA_SIGN_LOG_EXPIRED] = CA_LOGNO(05031),
    [CA_SIGN_LOG_NO_SERIAL] = CA_LOGNO(05032),
    [CA_SIGN_LOG_BUILD] = CA_LOGNO(05033),
    [CA_SIGN_LOG_SERIAL_BAD] = CA_LOGNO(05034),
    [CA_SIGN_LOG_SERIAL_SET] = CA_LOGNO(05035),
    [CA_SIGN_LOG_EXTENSION] = CA_LOGNO(05036),
    [CA_SIGN_LOG_SAN] = CA_LOGNO(05037),
    [CA_SIGN_LOG_SIGN] = CA_LOGNO(05038),
    [CA_SIGN_LOG_ENCODE] = CA_LOGNO(05039),
    [CA_SIGN_LOG_ISSUED] = CA_LOGNO(05040)
};

static int ca_engine_sign(request_rec *r, apr_hash_t *params,
                          const unsigned char *csr, apr_size_t csr_len,
                          const unsigned char **cert, apr_size_t *cert_len)
{
    const ca_engine_dir_conf *conf =
        ap_get_module_config(r->per_dir_config, &ca_engine_module);
    const ca_engine_signer *esg = conf->signer;
    ca_signer sg;

    if (!esg) {
        return DECLINED;
    }
    if (!ca_engine_usable(r, esg)) {
        return HTTP_SERVICE_UNAVAILABLE;
    }
    memset(&sg, 0, sizeof(sg));
    sg.ca = esg->cert;
    sg.days = conf->days;
    sg.exts = ca_engine_exts(conf, &sg.n_exts);
    sg.sign = ca_engine_sign_cert;
    sg.ctx = esg;
    sg.prefix = "CAEngine";
    sg.key_name = esg->key_name;
    sg.time_hint = "load mod_ca_simple and set CASimpleTime on";
    sg.serial_hint = "load mod_ca_simple and set CASimpleSerialRandom on";
    sg.tags = ca_engine_sign_tags;
    sg.module_index = APLOG_MODULE_INDEX;

    return ca_sign_request(r, &sg, params, csr, csr_len, cert, cert_len);
}

static int ca_engine_getca(request_rec *r, const unsigned char **der,
                           apr_size_t *len, apr_time_t *valid_until)
{
    const ca_engine_dir_conf *conf =
        ap_get_module_config(r->per_dir_config, &ca_engine_module);
    const ca_engine_signer *sg = conf->signer;

    if (!sg) {
        return DECLINED;
    }
    if (!sg->cert && !ca_engine_usable(r, sg)) {
        /* a certificate from the token, which this process lacks */
        return HTTP_SERVICE_UNAVAILABLE;
    }
    *der = sg->cert->der;
    *len = sg->cert->der_len;
    *valid_until = sg->cert->not_after;

    return OK;
}

static int ca_engine_getnextca(request_rec *r, const unsigned char **der,
                               apr_size_t *len, apr_time_t *valid_until)
{
    const ca_engine_dir_conf *conf =
        ap_get_module_config(r->per_dir_config, &ca_engine_module);

    if (!conf->next) {
        return DECLINED;
    }
    *der = conf->next->der;
    *len = conf->next->der_len;
    *valid_until = conf->next->not_after;

    return OK;
}

static int ca_engine_getchain(request_rec *r, const unsigned char **der,
                              apr_size_t *len, apr_time_t *valid_until)
{
    const ca_engine_dir_conf *conf =
        ap_get_module_config(r->per_dir_config, &ca_engine_module);
    const ca_engine_signer *sg = conf->signer;

    if (!sg || !sg->chain) {
        return DECLINED;
    }
    *der = sg->chain->der;
    *len = sg->chain->der_len;
    *valid_until = sg->chain->not_after;

    return OK;
}

static void ca_engine_register_hooks(apr_pool_t *p)
{
    /* where the engine is configured it answers before mod_ca_simple, so
     * that a CASimpleCertificate inherited from an enclosing section does
     * not sign in its place; mod_ca_disk (APR_HOOK_FIRST) still sets
     * requests aside before anybody signs */
    static const char *const before_simple[] = { "mod_ca_simple.c", NULL };

    ap_hook_pre_config(ca_engine_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(ca_engine_check_config, NULL, NULL,
                         APR_HOOK_MIDDLE);
    ap_hook_child_init(ca_engine_child_init, NULL, NULL, APR_HOOK_MIDDLE);

    APR_OPTIONAL_HOOK(ca, ca_sign, ca_engine_sign, NULL, before_simple,
                      APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ca, ca_getca, ca_engine_getca, NULL, before_simple,
                      APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ca, ca_getnextca, ca_engine_getnextca, NULL,
                      before_simple, APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ca, ca_getchain, ca_engine_getchain, NULL,
                      before_simple, APR_HOOK_MIDDLE);
}

AP_DECLARE_MODULE(ca_engine) =
{
    STANDARD20_MODULE_STUFF,
    ca_engine_create_dir_conf,  /* create per-directory config */
    ca_engine_merge_dir_conf,   /* merge per-directory config */
    NULL,                       /* create per-server config */
    NULL,                       /* merge per-server config */
    ca_engine_cmds,             /* command table */
    ca_engine_register_hooks,   /* register hooks */
#if defined(AP_MODULE_HAS_FLAGS)
    0                           /* flags */
#endif
};
