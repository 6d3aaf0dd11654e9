/* swarmctl's commands. Each group lives in its own file (cmd_swarm.c,
 * cmd_node.c, cmd_info.c) and exports a table; main.c dispatches. To add a
 * group (e.g. `service`), write cmd_service.c with a cli_service_commands[]
 * table and add one line to main.c's top-level table.
 *
 * A command returns the process exit code: 0, or 1 after printing one clear
 * error on ctx->err. */
#ifndef SWARM_CLI_CMD_H
#define SWARM_CLI_CMD_H

#include <stdbool.h>
#include <stdio.h>

#include "args.h"
#include "conn.h"
#include "control.pb-c.h"
#include "swarm.pb-c.h"

struct cli_ctx {
    struct cli_conn *conn;
    FILE *out;
    FILE *err;
};

typedef int (*cli_cmd_fn)(struct cli_ctx *ctx, int argc, char **argv);

struct cli_command {
    const char *name;
    const char *alias;   /* another accepted name, or NULL */
    const char *summary; /* one line, for help listings */
    cli_cmd_fn run;      /* leaf commands */
    const struct cli_command *subs; /* groups: ends with a NULL name */
};

extern const struct cli_command cli_swarm_commands[];
extern const struct cli_command cli_node_commands[];
int cmd_info(struct cli_ctx *ctx, int argc, char **argv);
int cmd_version(struct cli_ctx *ctx, int argc, char **argv);

/* ---------------------------------------------------------------- helpers */

/* Parse flags and arguments for spec. Returns true to go on; false when the
 * command is over (help printed: *rc = 0; error printed: *rc = 1). */
bool cli_cmd_parse(struct cli_ctx *ctx, struct cli_spec *spec, int argc,
                   char **argv, char ***pos, int *npos, int *rc);

/* "Error: <message>" on ctx->err; returns 1. */
int cli_cmd_errorf(struct cli_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* One call; on failure prints the error (cli_conn_report) and returns NULL.
 * The answer is the caller's: protobuf_c_message_free_unpacked(m, NULL). */
ProtobufCMessage *cli_cmd_call(struct cli_ctx *ctx,
                               const ProtobufCServiceDescriptor *svc,
                               const char *method, const ProtobufCMessage *req);

/* Shorthands for the two services. */
ProtobufCMessage *cli_cmd_swarm(struct cli_ctx *ctx, const char *method,
                                const ProtobufCMessage *req);
ProtobufCMessage *cli_cmd_control(struct cli_ctx *ctx, const char *method,
                                  const ProtobufCMessage *req);

/* Info of the local node, or NULL (error printed). */
Swarm__InfoResponse *cli_cmd_info(struct cli_ctx *ctx);

/* True for the errors a compare-and-set loses with: worth one re-read. */
bool cli_cmd_is_conflict(enum api_status status);

void cli_cmd_free(void *msg);

#endif
