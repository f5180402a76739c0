/* SPDX-License-Identifier: MIT */
/* err.h: the two tiers of error reporting.
 *
 * Library tier: a failing lib/ function records one message in a
 * thread-local slot with sfc_error() and returns -1 (or NULL). The message
 * is "<domain>: <problem>", the domain being the file or tensor it is about.
 * Tool tier: main() turns it into one line on stderr, "<prog>: <message>",
 * and exits 1 (bad input, runtime failure) or 2 (usage error).
 */
#ifndef SFC_ERR_H
#define SFC_ERR_H

#include <stdarg.h>

#define SFC_EXIT_FAILURE 1 /* bad input or runtime failure */
#define SFC_EXIT_USAGE 2   /* unknown option, bad value, missing argument */

/* Set the program name used in messages (basename of argv0). */
void sfc_proginit(const char *argv0);
const char *sfc_progname(void);

/* Record "domain: message" in the error slot; domain may be NULL. A format
 * ending in ':' appends strerror(errno). Always returns -1. */
int sfc_error(const char *domain, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int sfc_verror(const char *domain, const char *fmt, va_list ap);

/* The last message recorded on this thread ("" if none). */
const char *sfc_errmsg(void);
void sfc_error_clear(void);

/* Print "<prog>: <message>" to stderr and exit 1. A format ending in ':'
 * appends strerror(errno). */
_Noreturn void sfc_die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
/* Same, exit status given. */
_Noreturn void sfc_die_status(int status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* sfc_die("%s", sfc_errmsg()). */
_Noreturn void sfc_die_errmsg(void);
/* Print "<prog>: warning: <message>" to stderr. */
void sfc_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Broken invariants: print file, line and expression, then abort().
 * Active in every build. */
#define SFC_ASSERT(x)                                                        \
    do {                                                                     \
        if (!(x)) sfc_assert_fail(__FILE__, __LINE__, #x);                   \
    } while (0)
_Noreturn void sfc_assert_fail(const char *file, int line, const char *expr);

#endif
