/* Licensed under the Apache License, Version 2.0 (see COPYING). */

#include <stdarg.h>
#include <stdlib.h>

#include "ca_util.h"
#include "cli.h"

static const char *cli_prog = "tool";
static void (*cli_usage)(FILE *f);

void cli_init(const char *prog, void (*usage)(FILE *f))
{
    cli_prog = prog;
    cli_usage = usage;
}

static void cli_vsay(const char *fmt, va_list ap)
{
    fprintf(stderr, "%s: ", cli_prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void cli_die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    cli_vsay(fmt, ap);
    va_end(ap);
    exit(1);
}

void cli_die_usage(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    cli_vsay(fmt, ap);
    va_end(ap);
    if (cli_usage) {
        fputc('\n', stderr);
        cli_usage(stderr);
    }
    exit(2);
}

void cli_warn(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    cli_vsay(fmt, ap);
    va_end(ap);
}

X509 *cli_load_cert(apr_pool_t *p, const char *file)
{
    X509 *x;
    const char *err = NULL;

    if (ca_load_cert(p, file, &x, &err) != APR_SUCCESS) {
        cli_die("%s", err);
    }
    return x;
}

EVP_PKEY *cli_load_key(apr_pool_t *p, const char *file)
{
    EVP_PKEY *k;
    const char *err = NULL;

    if (ca_load_key(p, file, &k, &err) != APR_SUCCESS) {
        cli_die("%s", err);
    }
    return k;
}
