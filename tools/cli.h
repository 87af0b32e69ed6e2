/* Licensed under the Apache License, Version 2.0 (see COPYING). */

/*
 * cli: the messages every command-line tool of the project prints the same
 * way, "PROG: text" on stderr, and the loading of files that ends the tool
 * when it fails.  A tool sets its name and usage text once.
 */

#ifndef CLI_H
#define CLI_H

#include <stdio.h>

#include <apr_pools.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

/* Name the tool and its usage printer before anything can fail. */
void cli_init(const char *prog, void (*usage)(FILE *f));

/* "prog: text", then exit 1. */
void cli_die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

/* "prog: text", the usage, then exit 2. */
void cli_die_usage(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

/* "prog: text", and go on. */
void cli_warn(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* A certificate or a private key from a PEM file, or "prog: why", exit 1. */
X509 *cli_load_cert(apr_pool_t *p, const char *file);
EVP_PKEY *cli_load_key(apr_pool_t *p, const char *file);

#endif /* CLI_H */
