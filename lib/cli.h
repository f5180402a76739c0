/* SPDX-License-Identifier: MIT */
/* cli.h: table-driven command lines. A tool declares its options in one
 * table; the parser, the --help text (with every default, taken from the
 * values the variables hold before parsing) and the JSON record of the
 * options for the db's runs table all come from that table.
 *
 * Values are parsed strictly (whole string, range checked); unknown
 * options, missing values and bad values are usage errors: a one-line
 * message, then exit 2. -h/--help prints usage to stdout and exits 0;
 * --version prints "<prog> <version>" and exits 0. */
#ifndef SFC_CLI_H
#define SFC_CLI_H

#include <stdio.h>

enum sfc_opt_type {
    SFC_OPT_END = 0,
    SFC_OPT_FLAG,   /* int *: set to 1 */
    SFC_OPT_INT,    /* int *, range [min, max] */
    SFC_OPT_DOUBLE, /* double *, range [min, max] */
    SFC_OPT_STRING, /* const char **; if choices != NULL, one of them */
    SFC_OPT_SHARD   /* struct sfc_shard *: "i/n", 0 <= i < n */
};

struct sfc_opt {
    const char *name; /* long name without "--" */
    int short_name;   /* e.g. 'q', or 0 */
    enum sfc_opt_type type;
    void *value;
    const char *argname; /* "N", "DIR", ... (ignored for flags) */
    const char *help;    /* one line, lowercase */
    double min, max;     /* INT and DOUBLE */
    const char *const *choices; /* STRING: NULL-terminated, or NULL */
};

#define SFC_OPT_FLAG_(name, sh, ptr, help)                                   \
    {name, sh, SFC_OPT_FLAG, ptr, NULL, help, 0, 0, NULL}
#define SFC_OPT_INT_(name, ptr, arg, lo, hi, help)                           \
    {name, 0, SFC_OPT_INT, ptr, arg, help, lo, hi, NULL}
#define SFC_OPT_DOUBLE_(name, ptr, arg, lo, hi, help)                        \
    {name, 0, SFC_OPT_DOUBLE, ptr, arg, help, lo, hi, NULL}
#define SFC_OPT_STRING_(name, ptr, arg, help)                                \
    {name, 0, SFC_OPT_STRING, ptr, arg, help, 0, 0, NULL}
#define SFC_OPT_CHOICE_(name, ptr, choices, help)                            \
    {name, 0, SFC_OPT_STRING, ptr, "WORD", help, 0, 0, choices}
#define SFC_OPT_SHARD_(ptr)                                                  \
    {"shard", 0, SFC_OPT_SHARD, ptr, "I/N",                                  \
     "process only the items whose index modulo N is I", 0, 0, NULL}
#define SFC_OPT_END_ {NULL, 0, SFC_OPT_END, NULL, NULL, NULL, 0, 0, NULL}

struct sfc_shard {
    int i, n; /* this shard and the count; default 0/1 */
};

/* 1 if item number k (0-based, in list order) belongs to this shard. */
static inline int sfc_shard_mine(const struct sfc_shard *s, long k)
{
    return s->n <= 1 || k % s->n == s->i;
}

struct sfc_cli {
    const char *const *usage;  /* synopsis lines, NULL-terminated */
    const char *description;   /* a paragraph, may be NULL */
    const struct sfc_opt *opts; /* terminated by SFC_OPT_END_ */
};

/* Parse argv. Options and positionals may interleave; "--" ends options.
 * On return argv[0..n) are the positionals (argv is permuted) and n is
 * returned. Exits 2 on a usage error and 0 after --help or --version. */
int sfc_cli_parse(const struct sfc_cli *cli, int argc, char **argv);

/* Print the usage text with every option and its default. */
void sfc_cli_usage(const struct sfc_cli *cli, FILE *fp);

/* Print a usage error ("<prog>: <msg>" plus a pointer to --help) to
 * stderr and exit 2; for conflicts found after parsing. */
_Noreturn void sfc_cli_die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* Every option's current value as a JSON object (heap string), for the
 * runs table's configuration column. Flags are booleans. */
char *sfc_cli_config_json(const struct sfc_cli *cli);
/* The same object with one more member "key": value (a JSON string), e.g.
 * the input the tool read. */
char *sfc_cli_config_json_with(const struct sfc_cli *cli, const char *key,
                               const char *value);

/* Append s to *buf as a JSON string literal (with quotes). *buf is a heap
 * string that is reallocated; *len is its length. */
void sfc_json_append_string(char **buf, size_t *len, const char *s);

#endif
