/* --format for swarmctl's ls, ps and inspect commands, as docker/cli's
 * formatter.Context and inspect.Inspect run a Go template (tmpl.h):
 *  - "table" (alone) is the command's default table; "json" is {{json .}};
 *  - a "table " prefix prints a header row (the template run on the column
 *    names) and lays cells separated by tabs out as Docker's tabwriter;
 *  - the two characters \t and \n in a list format are a tab and a newline;
 *  - each row's output is followed by a newline.
 * Errors are Docker's: "template parsing error: template: :1:2: ...". A
 * failing template prints nothing. Pure: no I/O beyond `out`. */
#ifndef SWARM_CLI_VIEW_FORMAT_H
#define SWARM_CLI_VIEW_FORMAT_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "tmpl.h"

#define CLI_FORMAT_ERRMSG_SIZE 4096

/* A column: the context's field and its header ("ManagerStatus",
 * "MANAGER STATUS"). */
struct cli_fmt_column {
    const char *field;
    const char *header;
};

/* True when `format` asks for the command's default table ("" or "table"). */
bool cli_format_is_default(const char *format);

/* Render `rows` (contexts built by the command) through `format`. Returns
 * 0, or -1 with the message in errmsg and nothing written. */
int cli_format_list(FILE *out, const char *format, struct tmpl_value *const *rows, size_t n,
                    const struct cli_fmt_column *columns, size_t n_columns, char *errmsg,
                    size_t errmsg_size);

/* `inspect -f`: the template run on each object's inspect shape (missing
 * keys are errors, as Docker's raw inspect fallback), one line per object.
 * Returns 0, or -1 with the errors in errmsg (one per line); the objects
 * that worked are printed. A parse error prints nothing. */
int cli_format_inspect(FILE *out, const char *format, const ProtobufCMessage *const *msgs,
                       size_t n, char *errmsg, size_t errmsg_size);

#endif
