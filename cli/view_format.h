/* --format for swarmctl's ls, ps and inspect commands, as docker/cli's
 * formatter.Context and inspect.Inspect run a Go template (tmpl.h):
 *  - "table" (alone) is the command's default table; "json" is {{json .}};
 *  - a "table " prefix prints a header row (the template run on the column
 *    names) and lays cells separated by tabs out as Docker's tabwriter;
 *  - the two characters \t and \n in a list format are a tab and a newline;
 *  - each row's output is followed by a newline.
 * Errors are Docker's: "template parsing error: template: :1:2: ...". A
 * failing template prints nothing. Pure: no I/O beyond `out` (and inspect's `errout`). */
#ifndef SWARM_CLI_VIEW_FORMAT_H
#define SWARM_CLI_VIEW_FORMAT_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "err.h"
#include "tmpl.h"

/* A column: the context's field and its header ("ManagerStatus",
 * "MANAGER STATUS"). */
struct cli_fmt_column {
    const char *field;
    const char *header;
};

/* True when `format` asks for the command's default table ("" or "table"). */
bool cli_format_is_default(const char *format);

/* Render `rows` (contexts built by the command) through `format`. Returns
 * 0, or SWARM_EINVAL with the message in errmsg (SWARM_ERRMSG_SIZE bytes,
 * common/err.h) and nothing written. */
int cli_format_list(FILE *out, const char *format, struct tmpl_value *const *rows, size_t n,
                    const struct cli_fmt_column *columns, size_t n_columns, char *errmsg);

/* `inspect -f`: the template run on each object's inspect shape (missing
 * keys are errors, as Docker's raw inspect fallback), one line per object.
 * Returns 0, or SWARM_EINVAL with the errors written to errout (one line
 * each, after `out` is flushed): a parse error prints nothing else; with
 * errors on some objects, the objects that worked are printed. The only
 * list of several messages: it is streamed, not held in an errmsg. */
int cli_format_inspect(FILE *out, FILE *errout, const char *format,
                       const ProtobufCMessage *const *msgs, size_t n);
/* The same over objects already in their inspect shape (not kept). */
int cli_format_inspect_values(FILE *out, FILE *errout, const char *format,
                              struct tmpl_value *const *objs, size_t n);

#endif
