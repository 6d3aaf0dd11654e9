/* Flag parsing with pflag's grammar and Docker's messages (see args.h).
 * Docker users paste commands between docker and swarmctl, so the same
 * spellings must work and the same mistakes must get the same words. */
#include "args.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "format.h"
#include "vec.h"

struct cli_parser {
    struct cli_spec *spec;
    int argc;
    char **argv;
    int i; /* next word */
    char *errmsg; /* SWARM_ERRMSG_SIZE bytes */
};

__attribute__((format(printf, 2, 3))) static enum cli_parse_result
cli_flag_error(struct cli_parser *p, const char *fmt, ...)
{
    char msg[SWARM_ERRMSG_SIZE / 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    errmsg_printf(p->errmsg, SWARM_ERRMSG_SIZE, "%s\nSee '%s --help'.", msg,
                  p->spec->path);
    return CLI_PARSE_ERROR;
}

int cli_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *const no[] = {"0", "f", "F", "FALSE", "false", "False"};
    for (size_t i = 0; i < 6; i++) {
        if (strcmp(s, yes[i]) == 0 || strcmp(s, no[i]) == 0) {
            *out = strcmp(s, yes[i]) == 0;
            return 0;
        }
    }
    return -1;
}

int cli_parse_int(const char *s, int64_t *out, char *errmsg)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 0);
    if (*s == '\0' || *end != '\0' || s[0] == ' ' || s[0] == '\t') {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "strconv.ParseInt: parsing \"%s\": invalid syntax", s);
        return SWARM_EINVAL;
    }
    if (errno == ERANGE) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "strconv.ParseInt: parsing \"%s\": value out of range", s);
        return SWARM_EINVAL;
    }
    *out = v;
    return 0;
}

int cli_parse_uint(const char *s, uint64_t *out, char *errmsg)
{
    char *end;
    errno = 0;
    if (*s < '0' || *s > '9') { /* strtoull would take "-1" and " 1" */
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "strconv.ParseUint: parsing \"%s\": invalid syntax", s);
        return SWARM_EINVAL;
    }
    unsigned long long v = strtoull(s, &end, 0);
    if (*end != '\0') {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "strconv.ParseUint: parsing \"%s\": invalid syntax", s);
        return SWARM_EINVAL;
    }
    if (errno == ERANGE) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "strconv.ParseUint: parsing \"%s\": value out of range", s);
        return SWARM_EINVAL;
    }
    *out = v;
    return 0;
}

void cli_strlist_free(struct cli_strlist *l)
{
    free(l->items);
    l->items = NULL;
    l->n = 0;
    l->cap = 0;
}

const char *cli_resolve_socket(const char *flag, const char *env,
                               const char *fallback)
{
    if (flag != NULL && *flag) {
        return flag;
    }
    return env != NULL && *env ? env : fallback;
}

int cli_host_to_socket(const char *host, const char **path)
{
    if (strncmp(host, "unix://", 7) == 0) {
        *path = host + 7;
        return **path != '\0' ? 0 : -1;
    }
    if (strstr(host, "://") != NULL || *host == '\0') {
        return -1;
    }
    *path = host;
    return 0;
}

static int cli_strlist_append(struct cli_strlist *l, const char *s)
{
    if (vec_grow(l->items, l->cap, l->n + 1) != 0) {
        return -1;
    }
    l->items[l->n++] = s;
    return 0;
}

/* "-f, --filter" or "--force", as pflag names a flag in value errors. */
static void cli_flag_display(const struct cli_flag *f, char *buf, size_t size)
{
    if (f->shorthand != 0) {
        snprintf(buf, size, "-%c, --%s", f->shorthand, f->name);
    } else {
        snprintf(buf, size, "--%s", f->name);
    }
}

static enum cli_parse_result cli_flag_set(struct cli_parser *p,
                                          struct cli_flag *f, const char *v)
{
    char err[SWARM_ERRMSG_SIZE], name[128];
    int rv = 0;
    switch (f->type) {
        case CLI_FLAG_BOOL:
            if (cli_parse_bool(v, f->value) != 0) {
                snprintf(err, sizeof err,
                         "strconv.ParseBool: parsing \"%s\": invalid syntax", v);
                rv = SWARM_EINVAL;
            }
            break;
        case CLI_FLAG_STRING:
            *(const char **)f->value = v;
            break;
        case CLI_FLAG_LIST:
            if (cli_strlist_append(f->value, v) != 0) {
                snprintf(err, sizeof err, "out of memory");
                rv = SWARM_ENOMEM;
            }
            break;
        case CLI_FLAG_DURATION:
            rv = cli_parse_duration(v, f->value, err);
            break;
        case CLI_FLAG_INT:
            rv = cli_parse_int(v, f->value, err);
            break;
        case CLI_FLAG_UINT:
            rv = cli_parse_uint(v, f->value, err);
            break;
        case CLI_FLAG_CUSTOM:
            rv = f->parse(v, f->value, err);
            break;
    }
    if (rv != 0) {
        cli_flag_display(f, name, sizeof name);
        return cli_flag_error(p, "invalid argument \"%s\" for \"%s\" flag: %s", v,
                              name, err);
    }
    f->changed = true;
    return CLI_PARSE_OK;
}

static struct cli_flag *cli_flag_find(struct cli_spec *spec, const char *name,
                                      size_t len, char shorthand)
{
    for (struct cli_flag *f = spec->flags; f != NULL && f->name != NULL; f++) {
        if (shorthand != 0 ? f->shorthand == shorthand
                           : strlen(f->name) == len && strncmp(f->name, name, len) == 0) {
            return f;
        }
    }
    return NULL;
}

/* "--name", "--name=value", "--name value". */
static enum cli_parse_result cli_parse_long(struct cli_parser *p, const char *word)
{
    const char *name = word + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq != NULL ? (size_t)(eq - name) : strlen(name);
    struct cli_flag *f = cli_flag_find(p->spec, name, len, 0);
    if (f == NULL) {
        if (len == 4 && strncmp(name, "help", 4) == 0) {
            return CLI_PARSE_HELP;
        }
        return cli_flag_error(p, "unknown flag: --%.*s", (int)len, name);
    }
    if (eq != NULL) {
        return cli_flag_set(p, f, eq + 1);
    }
    if (f->type == CLI_FLAG_BOOL) {
        return cli_flag_set(p, f, "true");
    }
    if (p->i >= p->argc) {
        return cli_flag_error(p, "flag needs an argument: --%s", f->name);
    }
    return cli_flag_set(p, f, p->argv[p->i++]);
}

/* "-q", "-qa", "-f value", "-fvalue", "-f=value". */
static enum cli_parse_result cli_parse_short(struct cli_parser *p, const char *word)
{
    for (const char *c = word + 1; *c != '\0'; c++) {
        struct cli_flag *f = cli_flag_find(p->spec, NULL, 0, *c);
        if (f == NULL) {
            if (*c == 'h') {
                return CLI_PARSE_HELP;
            }
            return cli_flag_error(p, "unknown shorthand flag: '%c' in %s", *c, word);
        }
        if (c[1] == '=') {
            return cli_flag_set(p, f, c + 2);
        }
        if (f->type == CLI_FLAG_BOOL) {
            if (cli_flag_set(p, f, "true") != CLI_PARSE_OK) {
                return CLI_PARSE_ERROR;
            }
            continue;
        }
        if (c[1] != '\0') {
            return cli_flag_set(p, f, c + 1);
        }
        if (p->i >= p->argc) {
            return cli_flag_error(p, "flag needs an argument: '%c' in %s", *c, word);
        }
        return cli_flag_set(p, f, p->argv[p->i++]);
    }
    return CLI_PARSE_OK;
}

/* cobra's argument validators, with docker/cli's wording. */
static enum cli_parse_result cli_check_nargs(struct cli_parser *p, int n)
{
    const struct cli_spec *s = p->spec;
    char what[96];
    const char *noun = "arguments";
    switch (s->rule) {
        case CLI_ARGS_ANY:
            return CLI_PARSE_OK;
        case CLI_ARGS_NONE:
            if (n == 0) {
                return CLI_PARSE_OK;
            }
            snprintf(what, sizeof what, "accepts no arguments");
            break;
        case CLI_ARGS_EXACT:
            if (n == s->min) {
                return CLI_PARSE_OK;
            }
            noun = s->min == 1 ? "argument" : noun;
            snprintf(what, sizeof what, "requires exactly %d %s", s->min, noun);
            break;
        case CLI_ARGS_MIN:
            if (n >= s->min) {
                return CLI_PARSE_OK;
            }
            noun = s->min == 1 ? "argument" : noun;
            snprintf(what, sizeof what, "requires at least %d %s", s->min, noun);
            break;
        case CLI_ARGS_MAX:
            if (n <= s->max) {
                return CLI_PARSE_OK;
            }
            noun = s->max == 1 ? "argument" : noun;
            snprintf(what, sizeof what, "requires at most %d %s", s->max, noun);
            break;
        case CLI_ARGS_RANGE:
            if (n >= s->min && n <= s->max) {
                return CLI_PARSE_OK;
            }
            snprintf(what, sizeof what, "requires at least %d and at most %d %s",
                     s->min, s->max, s->max == 1 ? "argument" : noun);
            break;
    }
    errmsg_printf(p->errmsg, SWARM_ERRMSG_SIZE,
                  "\"%s\" %s.\nSee '%s --help'.\n\nUsage:  %s %s\n\n%s", s->path,
                  what, s->path, s->path, s->use, s->summary);
    return CLI_PARSE_ERROR;
}

enum cli_parse_result cli_args_parse(struct cli_spec *spec, int argc,
                                     char **argv, char ***pos, int *npos,
                                     char *errmsg)
{
    struct cli_parser p = {spec, argc, argv, 0, errmsg};
    enum cli_parse_result rv = CLI_PARSE_OK;
    bool flags_done = false;
    *npos = 0;
    *pos = argc > 0 ? cli_xcalloc((size_t)argc, sizeof **pos) : NULL;
    while (rv == CLI_PARSE_OK && p.i < argc) {
        char *word = argv[p.i++];
        if (flags_done || word[0] != '-' || word[1] == '\0') {
            (*pos)[(*npos)++] = word;
            flags_done = flags_done || spec->stop_at_args;
        } else if (strcmp(word, "--") == 0) {
            flags_done = true;
        } else if (word[1] == '-') {
            rv = cli_parse_long(&p, word);
        } else {
            rv = cli_parse_short(&p, word);
        }
    }
    if (rv == CLI_PARSE_OK) {
        rv = cli_check_nargs(&p, *npos);
    }
    if (rv != CLI_PARSE_OK) {
        free(*pos);
        *pos = NULL;
        *npos = 0;
    }
    return rv;
}

bool cli_flag_changed(const struct cli_spec *spec, const char *name)
{
    for (const struct cli_flag *f = spec->flags; f != NULL && f->name != NULL; f++) {
        if (strcmp(f->name, name) == 0) {
            return f->changed;
        }
    }
    return false;
}

static const char *cli_flag_varname(const struct cli_flag *f)
{
    static const char *const names[] = {
        [CLI_FLAG_BOOL] = "", [CLI_FLAG_STRING] = "string",
        [CLI_FLAG_LIST] = "list", [CLI_FLAG_DURATION] = "duration",
        [CLI_FLAG_INT] = "int", [CLI_FLAG_UINT] = "uint",
        [CLI_FLAG_CUSTOM] = "string",
    };
    return f->varname != NULL ? f->varname : names[f->type];
}

/* pflag's FlagUsages: "  -q, --quiet          Only display IDs", the
 * descriptions aligned 3 spaces after the longest "flag type" part. */
static void cli_print_flags(FILE *out, const struct cli_flag *flags)
{
    char line[256];
    size_t maxlen = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (const struct cli_flag *f = flags; f->name != NULL; f++) {
            const char *var = cli_flag_varname(f);
            int n = f->shorthand != 0
                        ? snprintf(line, sizeof line, "  -%c, --%s%s%s", f->shorthand,
                                   f->name, *var ? " " : "", var)
                        : snprintf(line, sizeof line, "      --%s%s%s", f->name,
                                   *var ? " " : "", var);
            if (pass == 0) {
                maxlen = (size_t)n > maxlen ? (size_t)n : maxlen;
            } else {
                /* A usage of several lines continues under its first line,
                 * as pflag lays it out. */
                const char *u = f->usage;
                size_t len = strcspn(u, "\n");
                fprintf(out, "%s%*s   %.*s\n", line, (int)(maxlen - (size_t)n), "", (int)len,
                        u);
                while (u[len] == '\n') {
                    u += len + 1;
                    len = strcspn(u, "\n");
                    fprintf(out, "%*s%.*s\n", (int)maxlen + 3, "", (int)len, u);
                }
            }
        }
    }
}

void cli_print_usage(FILE *out, const struct cli_spec *spec)
{
    fprintf(out, "\nUsage:  %s %s\n\n%s\n", spec->path, spec->use, spec->summary);
    if (spec->aliases != NULL) {
        fprintf(out, "\nAliases:\n  %s\n", spec->aliases);
    }
    if (spec->flags != NULL && spec->flags[0].name != NULL) {
        fputs("\nOptions:\n", out);
        cli_print_flags(out, spec->flags);
    }
}
