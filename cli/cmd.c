/* Helpers shared by the command groups: parsing with Docker's help and
 * error texts, calls that print Docker's error lines. */
#include "cmd.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "tmpl.h"

bool cli_cmd_parse(struct cli_ctx *ctx, struct cli_spec *spec, int argc,
                   char **argv, char ***pos, int *npos, int *rc)
{
    char errmsg[SWARM_ERRMSG_SIZE];
    switch (cli_args_parse(spec, argc, argv, pos, npos, errmsg)) {
        case CLI_PARSE_OK:
            return true;
        case CLI_PARSE_HELP:
            cli_print_usage(ctx->out, spec);
            *rc = 0;
            return false;
        default:
            fprintf(ctx->err, "%s\n", errmsg);
            *rc = 1;
            return false;
    }
}

int cli_cmd_errorf(struct cli_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    fputs("Error: ", ctx->err);
    va_start(ap, fmt);
    vfprintf(ctx->err, fmt, ap);
    va_end(ap);
    fputc('\n', ctx->err);
    return 1;
}

ProtobufCMessage *cli_cmd_call(struct cli_ctx *ctx,
                               const ProtobufCServiceDescriptor *svc,
                               const char *method, const ProtobufCMessage *req)
{
    struct cli_reply r;
    if (cli_conn_call(ctx->conn, svc, method, req, &r) != 0) {
        cli_conn_report(ctx->conn, &r, ctx->err);
        return NULL;
    }
    return r.resp;
}

ProtobufCMessage *cli_cmd_swarm(struct cli_ctx *ctx, const char *method,
                                const ProtobufCMessage *req)
{
    return cli_cmd_call(ctx, &swarm__swarm__descriptor, method, req);
}

ProtobufCMessage *cli_cmd_control(struct cli_ctx *ctx, const char *method,
                                  const ProtobufCMessage *req)
{
    return cli_cmd_call(ctx, &swarm__control__descriptor, method, req);
}

Swarm__InfoResponse *cli_cmd_info(struct cli_ctx *ctx)
{
    Swarm__InfoRequest req = SWARM__INFO_REQUEST__INIT;
    return (Swarm__InfoResponse *)cli_cmd_swarm(ctx, "Info", &req.base);
}

bool cli_cmd_is_conflict(enum api_status status)
{
    return status == API_ABORTED || status == API_FAILED_PRECONDITION;
}

void cli_cmd_warn_stale(struct cli_ctx *ctx, bool stale, bool *warned)
{
    if (stale && !*warned) {
        fprintf(ctx->err, "WARNING: no leader is known; this is this manager's last known "
                          "state and may be stale (nodes it cannot hear from show Unknown)\n");
        *warned = true;
    }
}

void cli_cmd_free(void *msg)
{
    if (msg != NULL) {
        protobuf_c_message_free_unpacked(msg, NULL);
    }
}

int cli_cmd_format_result(struct cli_ctx *ctx, int rv, const char *errmsg)
{
    if (rv == 0) {
        return 0;
    }
    fprintf(ctx->err, "%s\n", errmsg);
    return 1;
}

bool cli_cmd_inspect_format(struct cli_ctx *ctx, const char **format, bool *pretty)
{
    if (*format != NULL && *pretty) {
        cli_cmd_errorf(ctx, "--format is incompatible with human friendly format");
        return false;
    }
    if (*format != NULL && strcmp(*format, "pretty") == 0) {
        *pretty = true;
        *format = NULL;
    } else if (*format != NULL && (**format == '\0' || strcmp(*format, "json") == 0)) {
        *format = NULL; /* Docker: the indented JSON array */
    }
    if (*format != NULL) {
        /* Docker parses the template before looking anything up. */
        char err[SWARM_ERRMSG_SIZE];
        struct tmpl *t = tmpl_parse(*format, err);
        if (t == NULL) {
            fprintf(ctx->err, "template parsing error: %s\n", err);
            return false;
        }
        tmpl_free(t);
    }
    return true;
}
