/* Licensed under the Apache License, Version 2.0 (see COPYING). */

/*
 * cli: the messages every command-line tool of the project prints the same
 * way, "PROG: text" on stderr.  A tool sets its name and usage text once.
 */

#ifndef CLI_H
#define CLI_H

#include <stdio.h>

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

#endif /* CLI_H */
