/* SPDX-License-Identifier: MIT */
/* err.c: thread-local error slot, die/warn for tools (see err.h).
 * The only mutable global besides the slot is the program name, set once
 * at start-up by sfc_proginit(). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

#define ERRMSG_MAX 1024

static _Thread_local char errmsg[2 * ERRMSG_MAX];
static char progname[64] = "sfc";

void sfc_proginit(const char *argv0)
{
    const char *base = argv0 ? strrchr(argv0, '/') : NULL;
    base = base ? base + 1 : (argv0 ? argv0 : "sfc");
    snprintf(progname, sizeof progname, "%s", base);
}

const char *sfc_progname(void)
{
    return progname;
}

/* Format into buf; a trailing ':' in fmt appends strerror(saved errno). */
static void format_msg(char *buf, size_t n, const char *fmt, va_list ap,
                       int saved_errno)
{
    size_t flen = strlen(fmt);
    vsnprintf(buf, n, fmt, ap);
    if (flen && fmt[flen - 1] == ':') {
        size_t len = strlen(buf);
        snprintf(buf + len, n - len, " %s", strerror(saved_errno));
    }
}

int sfc_verror(const char *domain, const char *fmt, va_list ap)
{
    int saved = errno;
    char msg[ERRMSG_MAX];
    format_msg(msg, sizeof msg, fmt, ap, saved);
    if (domain)
        snprintf(errmsg, sizeof errmsg, "%.1000s: %.1023s", domain, msg);
    else
        snprintf(errmsg, sizeof errmsg, "%s", msg);
    errno = saved;
    return -1;
}

int sfc_error(const char *domain, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sfc_verror(domain, fmt, ap);
    va_end(ap);
    return -1;
}

const char *sfc_errmsg(void)
{
    return errmsg;
}

void sfc_error_clear(void)
{
    errmsg[0] = '\0';
}

static _Noreturn void vdie(int status, const char *fmt, va_list ap)
{
    int saved = errno;
    char msg[ERRMSG_MAX];
    format_msg(msg, sizeof msg, fmt, ap, saved);
    fflush(stdout);
    fprintf(stderr, "%s: %s\n", progname, msg);
    exit(status);
}

void sfc_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vdie(SFC_EXIT_FAILURE, fmt, ap);
}

void sfc_die_status(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vdie(status, fmt, ap);
}

void sfc_die_errmsg(void)
{
    sfc_die("%s", errmsg[0] ? errmsg : "unknown error");
}

void sfc_warn(const char *fmt, ...)
{
    int saved = errno;
    char msg[ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    format_msg(msg, sizeof msg, fmt, ap, saved);
    va_end(ap);
    fprintf(stderr, "%s: warning: %s\n", progname, msg);
}

void sfc_assert_fail(const char *file, int line, const char *expr)
{
    fflush(stdout);
    fprintf(stderr, "%s: %s:%d: assertion failed: %s\n", progname, file,
            line, expr);
    abort();
}
