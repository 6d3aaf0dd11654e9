/* `swarmctl service create|ls|ps|inspect|scale|rm|update|rollback`, with
 * Docker's flags and messages (docker/cli cli/command/service). SERVICE is
 * anything swarmd's GetService resolves: an ID, a unique ID prefix or a
 * name. Flags -> spec is cmd_service_opts.c; rendering view_service.c; the
 * wait for convergence cmd_service_wait.c. */
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "err.h"
#include "format.h"
#include "cmd_service_opts.h"
#include "json.h"
#include "specvalid.h"
#include "view_format.h"
#include "view_service.h"

/* ------------------------------------------------------------------ create */

static int cmd_service_create(struct cli_ctx *ctx, int argc, char **argv)
{
    struct cli_svc_opts o = {0};
    struct cli_flag flags[CLI_SVC_MAX_FLAGS];
    cli_svc_flags(&o, false, flags);
    struct cli_spec spec = {"swarmctl service create", "[OPTIONS] IMAGE [COMMAND] [ARG...]",
                            "Create a new service", NULL, CLI_ARGS_MIN, 1, 0, flags, true};
    char **pos, err[SWARM_ERRMSG_SIZE];
    int npos, rc;
    if (!cli_cmd_parse(ctx, &spec, argc, argv, &pos, &npos, &rc)) {
        cli_svc_opts_free(&o);
        return rc;
    }
    Swarm__ServiceSpec *s =
        cli_svc_spec_new(flags, &o, pos[0], pos + 1, (size_t)npos - 1, err);
    free(pos);
    if (o.resolve_image != NULL && strcmp(o.resolve_image, "always") != 0 &&
        strcmp(o.resolve_image, "changed") != 0 && strcmp(o.resolve_image, "never") != 0) {
        rc = cli_cmd_errorf(ctx, "Invalid option %s for flag --resolve-image", o.resolve_image);
        if (s != NULL) {
            protobuf_c_message_free_unpacked(&s->base, NULL);
        }
        cli_svc_opts_free(&o);
        return rc;
    }
    if (s != NULL && o.with_registry_auth && s->task != NULL &&
        cli_registry_auth_fill(ctx, s->task->container) != 0) {
        protobuf_c_message_free_unpacked(&s->base, NULL);
        cli_svc_opts_free(&o);
        return 1;
    }
    if (s != NULL && spec_validate_service(s, err) != 0) {
        protobuf_c_message_free_unpacked(&s->base, NULL);
        s = NULL;
    }
    if (s == NULL) {
        cli_svc_opts_free(&o);
        return cli_cmd_errorf(ctx, "%s", err);
    }
    int64_t since = cli_now_ms() - 1000;
    Swarm__CreateServiceRequest req = SWARM__CREATE_SERVICE_REQUEST__INIT;
    req.spec = s;
    req.resolve_image = (char *)(o.resolve_image != NULL ? o.resolve_image : "");
    Swarm__CreateServiceResponse *resp =
        (Swarm__CreateServiceResponse *)cli_cmd_control(ctx, "CreateService", &req.base);
    protobuf_c_message_free_unpacked(&s->base, NULL);
    rc = 1;
    for (size_t i = 0; resp != NULL && i < resp->n_warnings; i++) {
        fputs(resp->warnings[i], ctx->err);
    }
    if (resp != NULL && resp->service != NULL) {
        /* Docker prints the ID first, then the progress. */
        fprintf(ctx->out, "%s\n", resp->service->id);
        fflush(ctx->out);
        rc = o.detach ? 0 : cli_service_wait(ctx, resp->service->id, since, false, o.quiet);
    }
    cli_cmd_free(resp);
    cli_svc_opts_free(&o);
    return rc;
}

/* ---------------------------------------------------------------------- ls */

/* "bad format of filter (expected name=value)" as Docker, before sending. */
static bool service_filters_ok(struct cli_ctx *ctx, const struct cli_strlist *filters)
{
    for (size_t i = 0; i < filters->n; i++) {
        if (strchr(filters->items[i], '=') == NULL) {
            cli_cmd_errorf(ctx, "bad format of filter (expected name=value)");
            return false;
        }
    }
    return true;
}

static int cmd_service_ls(struct cli_ctx *ctx, int argc, char **argv)
{
    bool quiet = false;
    const char *format = NULL;
    struct cli_strlist filters = {0};
    struct cli_flag flags[] = {
        {'f', "filter", CLI_FLAG_LIST, &filters, "Filter output based on conditions provided",
         "filter", false, NULL},
        {0, "format", CLI_FLAG_STRING, &format,
         "Format output using a custom template:\n'table':            Print output in table "
         "format with column headers (default)\n'table TEMPLATE':   Print output in table "
         "format using the given Go template\n'json':             Print in JSON format\n"
         "'TEMPLATE':         Print output using the given Go template",
         "string", false, NULL},
        {'q', "quiet", CLI_FLAG_BOOL, &quiet, "Only display IDs", NULL, false, NULL},
        {0},
    };
    struct cli_spec spec = {"swarmctl service ls", "[OPTIONS]", "List services", "ls, list",
                            CLI_ARGS_NONE, 0, 0, flags, false};
    char **pos;
    int npos, rc = 1;
    if (!cli_cmd_parse(ctx, &spec, argc, argv, &pos, &npos, &rc)) {
        cli_strlist_free(&filters);
        return rc;
    }
    free(pos);
    Swarm__ListServicesRequest req = SWARM__LIST_SERVICES_REQUEST__INIT;
    req.filters = (char **)filters.items;
    req.n_filters = filters.n;
    Swarm__ListServicesResponse *list = NULL;
    if (service_filters_ok(ctx, &filters)) {
        list = (Swarm__ListServicesResponse *)cli_cmd_control(ctx, "ListServices", &req.base);
    }
    cli_strlist_free(&filters);
    if (list == NULL) {
        return 1;
    }
    bool warned = false;
    cli_cmd_warn_stale(ctx, list->stale, &warned);
    bool counts = list->n_running == list->n_services && list->n_desired == list->n_services;
    int rc_fmt = 0;
    char ferr[SWARM_ERRMSG_SIZE];
    if (cli_format_is_default(format)) {
        cli_view_service_table(ctx->out, list->services, list->n_services,
                               counts ? list->running : NULL, counts ? list->desired : NULL,
                               quiet);
    } else {
        rc_fmt = cli_cmd_format_result(
            ctx,
            cli_view_service_format(ctx->out, format, list->services, list->n_services,
                                    counts ? list->running : NULL,
                                    counts ? list->desired : NULL, ferr),
            ferr);
    }
    cli_cmd_free(list);
    return rc_fmt;
}

/* ---------------------------------------------------------------------- ps */

static int cmd_service_ps(struct cli_ctx *ctx, int argc, char **argv)
{
    struct cli_task_view view = {0};
    struct cli_strlist filters = {0};
    struct cli_flag flags[] = {
        {'f', "filter", CLI_FLAG_LIST, &filters, "Filter output based on conditions provided",
         "filter", false, NULL},
        {0, "no-trunc", CLI_FLAG_BOOL, &view.no_trunc, "Do not truncate output", NULL, false,
         NULL},
        {0, "format", CLI_FLAG_STRING, &view.format, "Pretty-print tasks using a Go template",
         "string", false, NULL},
        {'q', "quiet", CLI_FLAG_BOOL, &view.quiet, "Only display task IDs", NULL, false, NULL},
        {0},
    };
    struct cli_spec spec = {"swarmctl service ps", "[OPTIONS] SERVICE [SERVICE...]",
                            "List the tasks of one or more services", NULL, CLI_ARGS_MIN, 1, 0,
                            flags, false};
    char **pos;
    int npos, rc = 1;
    if (!cli_cmd_parse(ctx, &spec, argc, argv, &pos, &npos, &rc)) {
        cli_strlist_free(&filters);
        return rc;
    }
    char **scopes = cli_xcalloc((size_t)npos, sizeof *scopes);
    size_t nscopes = 0;
    bool unreachable = false;
    rc = service_filters_ok(ctx, &filters) && scopes != NULL ? 0 : 1;
    /* Resolve every SERVICE first; unknown ones are reported after the
     * table, as Docker does. */
    for (int i = 0; i < npos && rc == 0 && !unreachable; i++) {
        struct cli_reply r;
        Swarm__Service *s = cli_service_get(ctx, pos[i], &r);
        if (s != NULL) {
            size_t len = strlen(s->id) + 16;
            scopes[nscopes] = cli_xrealloc(NULL, len);
            snprintf(scopes[nscopes++], len, "service=%s", s->id);
        } else if (r.status != API_NOT_FOUND) {
            unreachable = true;
            rc = cli_conn_report(ctx->conn, &r, ctx->err);
        }
        cli_cmd_free(r.resp);
    }
    if (rc == 0 && nscopes > 0) {
        rc = cli_task_ps(ctx, scopes, nscopes, (char *const *)filters.items, filters.n, &view);
    }
    for (size_t i = 0; i < nscopes; i++) {
        free(scopes[i]);
    }
    if (rc == 0 && nscopes < (size_t)npos) {
        fflush(ctx->out);
        for (int i = 0; i < npos; i++) {
            struct cli_reply r;
            if (cli_service_get(ctx, pos[i], &r) == NULL) {
                fprintf(ctx->err, "no such service: %s\n", pos[i]);
                rc = 1;
            }
            cli_cmd_free(r.resp);
        }
    }
    free(scopes);
    free(pos);
    cli_strlist_free(&filters);
    return rc;
}

/* ----------------------------------------------------------------- inspect */

static int cmd_service_inspect(struct cli_ctx *ctx, int argc, char **argv)
{
    bool pretty = false;
    const char *format = NULL;
    struct cli_flag flags[] = {
        {'f', "format", CLI_FLAG_STRING, &format,
         "Format output using a custom template:\n'json':             Print in JSON format\n"
         "'TEMPLATE':         Print output using the given Go template",
         "string", false, NULL},
        {0, "pretty", CLI_FLAG_BOOL, &pretty, "Print the information in a human friendly format",
         NULL, false, NULL},
        {0},
    };
    struct cli_spec spec = {"swarmctl service inspect", "[OPTIONS] SERVICE [SERVICE...]",
                            "Display detailed information on one or more services", NULL,
                            CLI_ARGS_MIN, 1, 0, flags, false};
    char **pos;
    int npos, rc = 0;
    if (!cli_cmd_parse(ctx, &spec, argc, argv, &pos, &npos, &rc)) {
        return rc;
    }
    if (!cli_cmd_inspect_format(ctx, &format, &pretty)) {
        free(pos);
        return 1;
    }
    struct cli_reply *replies = cli_xcalloc((size_t)npos, sizeof *replies);
    const ProtobufCMessage **found = cli_xcalloc((size_t)npos, sizeof *found);
    size_t nfound = 0;
    for (int i = 0; i < npos; i++) {
        Swarm__Service *s = cli_service_get(ctx, pos[i], &replies[i]);
        if (s != NULL) {
            found[nfound++] = &s->base;
        } else if (replies[i].unreachable) {
            rc = 1;
            break;
        }
    }
    if (rc == 0 && format != NULL) {
        rc = cli_format_inspect(ctx->out, ctx->err, format, found, nfound) == 0 ? 0 : 1;
    } else if (rc == 0 && !pretty) {
        cli_json_print_array(ctx->out, found, nfound);
    }
    for (size_t i = 0; rc == 0 && pretty && i < nfound; i++) {
        cli_view_service_pretty(ctx->out, (const Swarm__Service *)found[i]);
    }
    fflush(ctx->out);
    for (int i = 0; i < npos; i++) {
        if (replies[i].status != API_OK) {
            rc = cli_service_report(ctx, pos[i], &replies[i]);
        }
        cli_cmd_free(replies[i].resp);
    }
    free(found);
    free(replies);
    free(pos);
    return rc;
}

/* ---------------------------------------------------------------------- rm */

static int cmd_service_rm(struct cli_ctx *ctx, int argc, char **argv)
{
    struct cli_spec spec = {"swarmctl service rm", "SERVICE [SERVICE...]",
                            "Remove one or more services", "rm, remove", CLI_ARGS_MIN, 1, 0, NULL,
                            false};
    char **pos;
    int npos, rc;
    if (!cli_cmd_parse(ctx, &spec, argc, argv, &pos, &npos, &rc)) {
        return rc;
    }
    struct cli_reply *replies = cli_xcalloc((size_t)npos, sizeof *replies);
    for (int i = 0; i < npos; i++) {
        Swarm__RemoveServiceRequest req = SWARM__REMOVE_SERVICE_REQUEST__INIT;
        req.service_id = pos[i];
        if (cli_conn_call(ctx->conn, &swarm__control__descriptor, "RemoveService", &req.base,
                          &replies[i]) == 0) {
            fprintf(ctx->out, "%s\n", pos[i]);
        } else if (replies[i].unreachable) {
            break;
        }
    }
    fflush(ctx->out);
    rc = 0;
    for (int i = 0; i < npos; i++) {
        if (replies[i].status != API_OK) {
            rc = cli_service_report(ctx, pos[i], &replies[i]);
        }
        cli_cmd_free(replies[i].resp);
    }
    free(replies);
    free(pos);
    return rc;
}

const struct cli_command cli_service_commands[] = {
    {"create", NULL, "Create a new service", cmd_service_create, NULL},
    {"inspect", NULL, "Display detailed information on one or more services",
     cmd_service_inspect, NULL},
    {"logs", NULL, "Fetch the logs of a service or task", cmd_service_logs, NULL},
    {"ls", "list", "List services", cmd_service_ls, NULL},
    {"ps", NULL, "List the tasks of one or more services", cmd_service_ps, NULL},
    {"rm", "remove", "Remove one or more services", cmd_service_rm, NULL},
    {"rollback", NULL, "Revert changes to a service's configuration", cmd_service_rollback,
     NULL},
    {"scale", NULL, "Scale one or multiple replicated services", cmd_service_scale, NULL},
    {"update", NULL, "Update a service", cmd_service_update, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};
