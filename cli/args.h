/* Command-line parsing with Docker's (cobra + pflag) behaviour and messages:
 * flags and arguments may be interleaved, `--name=value`, `--name value`,
 * `-q`, `-qf value`, `-fvalue`, repeated list flags, `--` ends the flags.
 * Errors are the exact texts Docker prints, e.g.
 *
 *     unknown flag: --x
 *     See 'swarmctl node ls --help'.
 *
 * Pure: the caller prints what comes back. */
#ifndef SWARM_CLI_ARGS_H
#define SWARM_CLI_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"

enum cli_flag_type {
    CLI_FLAG_BOOL,     /* value: bool * */
    CLI_FLAG_STRING,   /* value: const char ** (points into argv) */
    CLI_FLAG_LIST,     /* value: struct cli_strlist * (repeatable) */
    CLI_FLAG_DURATION, /* value: int64_t * nanoseconds, Go syntax */
    CLI_FLAG_INT,      /* value: int64_t * */
    CLI_FLAG_UINT,     /* value: uint64_t *, Go's ParseUint */
    CLI_FLAG_CUSTOM,   /* value: anything; `parse` converts and stores */
};

/* A custom flag's converter: store what `word` means into `value`; return 0,
 * or a negative SWARM_E* code with the reason in errmsg (SWARM_ERRMSG_SIZE
 * bytes; Docker prints it after "invalid argument"). */
typedef int (*cli_flag_parse_fn)(const char *word, void *value, char *errmsg);

/* Values of a repeatable flag, in command-line order. The array is owned
 * (cli_strlist_free); the strings point into argv. */
struct cli_strlist {
    const char **items;
    size_t n, cap;
};

struct cli_flag {
    char shorthand; /* 0: none */
    const char *name;
    enum cli_flag_type type;
    void *value;
    const char *usage;
    const char *varname; /* help's value name; NULL: from the type */
    bool changed;        /* set by the parser */
    cli_flag_parse_fn parse; /* CLI_FLAG_CUSTOM only */
};

enum cli_args_rule {
    CLI_ARGS_ANY,
    CLI_ARGS_NONE,
    CLI_ARGS_EXACT, /* min */
    CLI_ARGS_MIN,   /* min */
    CLI_ARGS_MAX,   /* max */
    CLI_ARGS_RANGE, /* min..max */
};

/* One leaf command. `flags` ends with an entry whose name is NULL. */
struct cli_spec {
    const char *path;    /* "swarmctl node update" */
    const char *use;     /* "[OPTIONS] NODE" */
    const char *summary; /* "Update a node" */
    const char *aliases; /* "ls, list" or NULL */
    enum cli_args_rule rule;
    int min, max;
    struct cli_flag *flags;
    bool stop_at_args; /* flags end at the first argument (`service create
                          IMAGE CMD -x`: -x is the command's), as cobra's
                          SetInterspersed(false) */
};

enum cli_parse_result {
    CLI_PARSE_OK,
    CLI_PARSE_HELP,  /* -h/--help: print cli_print_usage, exit 0 */
    CLI_PARSE_ERROR, /* print errmsg on stderr, exit 1 */
};

/* Parse argv (the words after the command name) against spec. Positional
 * arguments go to *pos (allocated, free() it; may be NULL when *npos is 0).
 * On CLI_PARSE_ERROR, errmsg (SWARM_ERRMSG_SIZE bytes, common/err.h) holds
 * the whole text for stderr without the final newline. */
enum cli_parse_result cli_args_parse(struct cli_spec *spec, int argc,
                                     char **argv, char ***pos, int *npos,
                                     char *errmsg);

/* Docker's help text for a command: "\nUsage:  PATH USE\n\nSUMMARY\n..." */
void cli_print_usage(FILE *out, const struct cli_spec *spec);

/* True when the flag named `name` was given. */
bool cli_flag_changed(const struct cli_spec *spec, const char *name);

void cli_strlist_free(struct cli_strlist *l);

/* The control socket: `flag` (--socket) if set, else `env` ($SWARM_SOCKET)
 * if set, else `fallback`. */
const char *cli_resolve_socket(const char *flag, const char *env,
                               const char *fallback);

/* -H/--host value to a socket path: "unix:///run/x.sock" or a plain path.
 * Returns 0, or -1 for another scheme (tcp:// is not served). */
int cli_host_to_socket(const char *host, const char **path);

/* Go's strconv.ParseBool. Returns 0 or -1. */
int cli_parse_bool(const char *s, bool *out);

/* Go's strconv.ParseInt(s, 0, 64); on error the Go message in errmsg. */
int cli_parse_int(const char *s, int64_t *out, char *errmsg);

/* Go's strconv.ParseUint(s, 0, 64), likewise ("-1" is invalid syntax). */
int cli_parse_uint(const char *s, uint64_t *out, char *errmsg);

#endif
