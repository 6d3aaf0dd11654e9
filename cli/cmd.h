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
extern const struct cli_command cli_service_commands[];
extern const struct cli_command cli_network_commands[];
extern const struct cli_command cli_image_commands[];
extern const struct cli_command cli_stack_commands[];
extern const struct cli_command cli_volume_commands[]; /* cmd_volume.c */
int cmd_info(struct cli_ctx *ctx, int argc, char **argv);
/* `inspect` (cmd_inspect.c): any object by name or ID, tasks included. */
int cmd_inspect(struct cli_ctx *ctx, int argc, char **argv);
/* The commands that change a service (cmd_service_update.c). */
int cmd_service_update(struct cli_ctx *ctx, int argc, char **argv);
int cmd_service_scale(struct cli_ctx *ctx, int argc, char **argv);
int cmd_service_rollback(struct cli_ctx *ctx, int argc, char **argv);
/* `service logs` (cmd_service_logs.c). */
int cmd_service_logs(struct cli_ctx *ctx, int argc, char **argv);
/* `events` (cmd_events.c). */
int cmd_events(struct cli_ctx *ctx, int argc, char **argv);
int cmd_version(struct cli_ctx *ctx, int argc, char **argv);
/* `login`, `logout` and --with-registry-auth (cmd_login.c). */
int cmd_login(struct cli_ctx *ctx, int argc, char **argv);
int cmd_logout(struct cli_ctx *ctx, int argc, char **argv);
/* Put the stored credentials of c->image's registry (if any) into
 * c->registry_auth. 0, or 1 after printing an error. */
int cli_registry_auth_fill(struct cli_ctx *ctx, Swarm__ContainerSpec *c);

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

/* A reply answered without a leader (its `stale` field): print the warning
 * on stderr once per command (*warned), so the output is never taken as
 * the cluster's current state. */
void cli_cmd_warn_stale(struct cli_ctx *ctx, bool stale, bool *warned);

/* --------------------------------------- services (cmd_service_wait.c) */

struct cli_task_view;

/* GetService (ID, unique prefix or name) without printing; NULL with
 * r->status API_NOT_FOUND when there is no such service. The answer is in
 * r->resp (the caller frees it). */
Swarm__Service *cli_service_get(struct cli_ctx *ctx, const char *ref,
                                struct cli_reply *r);

/* "Error: No such service: REF", or the call's own error. Returns 1. */
int cli_service_report(struct cli_ctx *ctx, const char *ref,
                       const struct cli_reply *r);

/* Poll until the service converged, failed to, or CLI_SERVICE_WAIT_MS
 * passed, showing Docker's progress on ctx->out unless quiet (redrawn on a
 * terminal, changed lines only otherwise). since_ms: when the command
 * started (older task failures do not count). Returns 0 when converged,
 * else 1 after printing why. */
#define CLI_SERVICE_WAIT_MS 60000
int cli_service_wait(struct cli_ctx *ctx, const char *service_id,
                     int64_t since_ms, bool rollback, bool quiet);

/* The task table of `service ps` and `node ps`: one ListTasks per scope
 * ("service=ID", "node=REF"), each with every filter of the user's -f, the
 * answers merged into one table; node hostnames from one ListNodes.
 * Returns 0 or 1 (error printed). */
int cli_task_ps(struct cli_ctx *ctx, char *const *scopes, size_t n_scopes,
                char *const *filters, size_t n_filters,
                const struct cli_task_view *view);

/* --format results: rv != 0 prints errmsg (Docker's "template parsing
 * error: ...", no "Error:" prefix, as docker prints it) and returns 1. */
int cli_cmd_format_result(struct cli_ctx *ctx, int rv, const char *errmsg);

/* inspect's -f/--format with --pretty: "pretty" means --pretty, "json" the
 * default JSON (*format set to NULL); both at once is Docker's error.
 * Returns false after printing it. */
bool cli_cmd_inspect_format(struct cli_ctx *ctx, const char **format, bool *pretty);

/* Wall clock in unix ms (task timestamps are stamped that way). */
int64_t cli_now_ms(void);

#endif
