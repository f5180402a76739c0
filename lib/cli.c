/* SPDX-License-Identifier: MIT */
/* cli.c: see cli.h. A hand-written parser rather than getopt_long so that
 * values are range-checked from the table and errors name the option. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "err.h"
#include "sfc.h"
#include "util.h"

/* Default values as they were before parsing, formatted for --help. */
static void format_value(const struct sfc_opt *o, char *buf, size_t n)
{
    buf[0] = '\0';
    switch (o->type) {
    case SFC_OPT_INT:
        snprintf(buf, n, "%d", *(int *)o->value);
        break;
    case SFC_OPT_DOUBLE:
        snprintf(buf, n, "%g", *(double *)o->value);
        break;
    case SFC_OPT_STRING: {
        const char *s = *(const char **)o->value;
        if (s) snprintf(buf, n, "%s", s);
        break;
    }
    case SFC_OPT_SHARD: {
        const struct sfc_shard *s = o->value;
        snprintf(buf, n, "%d/%d", s->i, s->n ? s->n : 1);
        break;
    }
    default:
        break;
    }
}

void sfc_cli_usage(const struct sfc_cli *cli, FILE *fp)
{
    for (int i = 0; cli->usage && cli->usage[i]; i++)
        fprintf(fp, "%s %s\n", i ? "   or:" : "usage:", cli->usage[i]);
    if (cli->description) fprintf(fp, "\n%s\n", cli->description);
    fprintf(fp, "\noptions:\n");
    for (const struct sfc_opt *o = cli->opts; o && o->name; o++) {
        char head[96], def[256];
        int len;
        if (o->short_name)
            len = snprintf(head, sizeof head, "  -%c, --%s", o->short_name,
                           o->name);
        else
            len = snprintf(head, sizeof head, "      --%s", o->name);
        if (o->type != SFC_OPT_FLAG && len > 0 && (size_t)len < sizeof head)
            snprintf(head + len, sizeof head - (size_t)len, " %s",
                     o->argname ? o->argname : "VALUE");
        fprintf(fp, "%-30s %s", head, o->help ? o->help : "");
        if (o->choices) {
            fprintf(fp, " (");
            for (int c = 0; o->choices[c]; c++)
                fprintf(fp, "%s%s", c ? ", " : "", o->choices[c]);
            fprintf(fp, ")");
        }
        format_value(o, def, sizeof def);
        if (def[0]) fprintf(fp, " [default %s]", def);
        fprintf(fp, "\n");
    }
    fprintf(fp, "%-30s %s\n", "  -h, --help", "show this help and exit");
    fprintf(fp, "%-30s %s\n", "      --version", "print the version and exit");
}

void sfc_cli_die(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fflush(stdout);
    fprintf(stderr, "%s: %s (see '%s --help')\n", sfc_progname(), msg,
            sfc_progname());
    exit(SFC_EXIT_USAGE);
}

static int parse_shard(const char *s, struct sfc_shard *out)
{
    char *end;
    long i = strtol(s, &end, 10);
    if (end == s || *end != '/') return -1;
    const char *t = end + 1;
    long n = strtol(t, &end, 10);
    if (end == t || *end || n < 1 || n > 1000000 || i < 0 || i >= n)
        return -1;
    out->i = (int)i;
    out->n = (int)n;
    return 0;
}

static void set_value(const struct sfc_opt *o, const char *v)
{
    char what[96];
    snprintf(what, sizeof what, "--%s", o->name);
    switch (o->type) {
    case SFC_OPT_INT: {
        long x;
        if (sfc_parse_long(what, v, (long)o->min, (long)o->max, &x))
            sfc_cli_die("%s", sfc_errmsg());
        *(int *)o->value = (int)x;
        break;
    }
    case SFC_OPT_DOUBLE:
        if (sfc_parse_double(what, v, o->min, o->max, (double *)o->value))
            sfc_cli_die("%s", sfc_errmsg());
        break;
    case SFC_OPT_STRING:
        if (o->choices) {
            int ok = 0;
            for (int c = 0; o->choices[c] && !ok; c++)
                ok = strcmp(o->choices[c], v) == 0;
            if (!ok) sfc_cli_die("%s: unknown value '%s'", what, v);
        }
        *(const char **)o->value = v;
        break;
    case SFC_OPT_SHARD:
        if (parse_shard(v, o->value))
            sfc_cli_die("%s: '%s' is not I/N with 0 <= I < N", what, v);
        break;
    default:
        SFC_ASSERT(0);
    }
}

int sfc_cli_parse(const struct sfc_cli *cli, int argc, char **argv)
{
    int npos = 0, only_pos = 0;
    for (int k = 1; k < argc; k++) {
        char *a = argv[k];
        if (only_pos || a[0] != '-' || a[1] == '\0') {
            argv[npos++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            sfc_cli_usage(cli, stdout);
            exit(sfc_fshut(stdout, "<stdout>"));
        }
        if (strcmp(a, "--version") == 0) {
            printf("%s %s\n", sfc_progname(), SFC_VERSION);
            exit(sfc_fshut(stdout, "<stdout>"));
        }
        const struct sfc_opt *o = NULL;
        const char *val = NULL;
        if (a[1] == '-') {
            const char *name = a + 2;
            const char *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            for (const struct sfc_opt *p = cli->opts; p && p->name; p++)
                if (strlen(p->name) == len && !strncmp(p->name, name, len))
                    o = p;
            if (!o) sfc_cli_die("unknown option '%s'", a);
            if (eq) {
                if (o->type == SFC_OPT_FLAG)
                    sfc_cli_die("option '--%s' takes no value", o->name);
                val = eq + 1;
            }
        } else {
            for (const struct sfc_opt *p = cli->opts; p && p->name; p++)
                if (p->short_name && p->short_name == a[1]) o = p;
            if (!o || a[2]) sfc_cli_die("unknown option '%s'", a);
        }
        if (o->type == SFC_OPT_FLAG) {
            *(int *)o->value = 1;
            continue;
        }
        if (!val) {
            if (k + 1 >= argc)
                sfc_cli_die("option '--%s' needs a value", o->name);
            val = argv[++k];
        }
        set_value(o, val);
    }
    argv[npos] = NULL;
    return npos;
}

void sfc_json_append_string(char **buf, size_t *len, const char *s)
{
    size_t cap = *len + 2 * strlen(s) * 3 + 8;
    *buf = sfc_xrealloc(*buf, cap + 1);
    char *p = *buf + *len;
    *p++ = '"';
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            *p++ = '\\';
            *p++ = (char)c;
        } else if (c < 0x20) {
            p += sprintf(p, "\\u%04x", c);
        } else {
            *p++ = (char)c;
        }
    }
    *p++ = '"';
    *p = '\0';
    *len = (size_t)(p - *buf);
}

static void append(char **buf, size_t *len, const char *s)
{
    size_t n = strlen(s);
    *buf = sfc_xrealloc(*buf, *len + n + 1);
    memcpy(*buf + *len, s, n + 1);
    *len += n;
}

char *sfc_cli_config_json(const struct sfc_cli *cli)
{
    char *buf = sfc_xstrdup("{");
    size_t len = 1;
    int first = 1;
    for (const struct sfc_opt *o = cli->opts; o && o->name; o++) {
        char val[256];
        if (!first) append(&buf, &len, ",");
        first = 0;
        sfc_json_append_string(&buf, &len, o->name);
        append(&buf, &len, ":");
        switch (o->type) {
        case SFC_OPT_FLAG:
            append(&buf, &len, *(int *)o->value ? "true" : "false");
            break;
        case SFC_OPT_INT:
            snprintf(val, sizeof val, "%d", *(int *)o->value);
            append(&buf, &len, val);
            break;
        case SFC_OPT_DOUBLE:
            snprintf(val, sizeof val, "%.17g", *(double *)o->value);
            append(&buf, &len, val);
            break;
        case SFC_OPT_STRING:
            if (*(const char **)o->value)
                sfc_json_append_string(&buf, &len, *(const char **)o->value);
            else
                append(&buf, &len, "null");
            break;
        case SFC_OPT_SHARD:
            format_value(o, val, sizeof val);
            sfc_json_append_string(&buf, &len, val);
            break;
        default:
            SFC_ASSERT(0);
        }
    }
    append(&buf, &len, "}");
    return buf;
}

char *sfc_cli_config_json_with(const struct sfc_cli *cli, const char *key,
                               const char *value)
{
    char *buf = sfc_cli_config_json(cli);
    size_t len = strlen(buf) - 1; /* drop the closing brace */
    buf[len] = '\0';
    append(&buf, &len, ",");
    sfc_json_append_string(&buf, &len, key);
    append(&buf, &len, ":");
    sfc_json_append_string(&buf, &len, value);
    append(&buf, &len, "}");
    return buf;
}
