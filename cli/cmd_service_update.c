/* `swarmctl service update|scale|rollback`: read the service, change its
 * spec, write it back with compare-and-set on the version read (once more
 * from a fresh read if another client won the race), then wait for the
 * service to converge unless -d. */
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "err.h"
#include "format.h"
#include "specvalid.h"
#include "cmd_service_opts.h"

/* Edits a spec in place; returns 0, or 1 after printing an error. */
typedef int (*service_edit_fn)(struct cli_ctx *ctx, Swarm__ServiceSpec *spec, void *data);

/* GetService, edit, UpdateService with the version read. `rollback` sends
 * the rollback flag (swarmd restores the previous spec; edit may be NULL).
 * On success *id gets the service ID (caller frees). Returns 0 or 1. */
static int service_write(struct cli_ctx *ctx, const char *ref, service_edit_fn edit,
                         void *data, bool rollback, const char *resolve_image, char **id)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        struct cli_reply got, r;
        Swarm__Service *svc = cli_service_get(ctx, ref, &got);
        if (svc == NULL) {
            return cli_service_report(ctx, ref, &got);
        }
        char errmsg[SWARM_ERRMSG_SIZE];
        int rv = svc->spec == NULL ? cli_cmd_errorf(ctx, "service %s has no spec", ref)
                 : edit != NULL    ? edit(ctx, svc->spec, data)
                                   : 0;
        /* The rules swarmd applies (specvalid.h), before anything is sent. */
        if (rv == 0 && edit != NULL && spec_validate_service(svc->spec, errmsg) != 0) {
            rv = cli_cmd_errorf(ctx, "%s", errmsg);
        }
        if (rv != 0) {
            cli_cmd_free(got.resp);
            return rv;
        }
        Swarm__UpdateServiceRequest req = SWARM__UPDATE_SERVICE_REQUEST__INIT;
        req.service_id = svc->id;
        req.service_version = svc->meta != NULL ? svc->meta->version : 0;
        req.spec = svc->spec;
        req.rollback = rollback;
        req.resolve_image = (char *)(resolve_image != NULL ? resolve_image : "");
        rv = cli_conn_call(ctx->conn, &swarm__control__descriptor, "UpdateService", &req.base,
                           &r);
        if (rv == 0) {
            *id = strdup(svc->id);
            /* Docker prints the daemon's warnings (an image left unpinned). */
            const Swarm__UpdateServiceResponse *u = (const Swarm__UpdateServiceResponse *)r.resp;
            for (size_t i = 0; u != NULL && i < u->n_warnings; i++) {
                fputs(u->warnings[i], ctx->err);
            }
        }
        cli_cmd_free(got.resp);
        cli_cmd_free(r.resp);
        if (rv == 0) {
            return *id != NULL ? 0 : cli_cmd_errorf(ctx, "out of memory");
        }
        if (attempt == 1 || r.status != API_ABORTED) {
            return cli_conn_report(ctx->conn, &r, ctx->err);
        }
    }
    return 1;
}

/* ------------------------------------------------------------------ update */

struct service_update {
    const struct cli_flag *flags;
    const struct cli_svc_opts *opts;
};

static int service_update_edit(struct cli_ctx *ctx, Swarm__ServiceSpec *spec, void *data)
{
    const struct service_update *u = data;
    char err[SWARM_ERRMSG_SIZE];
    if (cli_svc_spec_update(spec, u->flags, u->opts, err) != 0) {
        return cli_cmd_errorf(ctx, "%s", err);
    }
    if (u->opts->with_registry_auth && spec->task != NULL) {
        return cli_registry_auth_fill(ctx, spec->task->container);
    }
    return 0;
}

int cmd_service_update(struct cli_ctx *ctx, int argc, char **argv)
{
    struct cli_svc_opts o = {0};
    struct cli_flag flags[CLI_SVC_MAX_FLAGS];
    cli_svc_flags(&o, true, flags);
    struct cli_spec spec = {"swarmctl service update", "[OPTIONS] SERVICE", "Update a service",
                            NULL, CLI_ARGS_EXACT, 1, 0, flags, false};
    char **pos, *id = NULL;
    int npos, rc;
    if (!cli_cmd_parse(ctx, &spec, argc, argv, &pos, &npos, &rc)) {
        cli_svc_opts_free(&o);
        return rc;
    }
    /* --network-rm NAME: the spec holds network IDs. */
    size_t n_resolved = o.network_rm.n;
    char **resolved = cli_xcalloc(n_resolved + 1, sizeof *resolved);
    for (size_t i = 0; i < o.network_rm.n; i++) {
        Swarm__GetNetworkRequest nreq = SWARM__GET_NETWORK_REQUEST__INIT;
        struct cli_reply nr;
        nreq.network_id = (char *)o.network_rm.items[i];
        if (cli_conn_call(ctx->conn, &swarm__control__descriptor, "GetNetwork", &nreq.base, &nr) == 0 &&
            ((Swarm__GetNetworkResponse *)nr.resp)->network != NULL) {
            resolved[i] = strdup(((Swarm__GetNetworkResponse *)nr.resp)->network->id);
            if (resolved[i] != NULL) {
                o.network_rm.items[i] = resolved[i];
            }
        }
        cli_cmd_free(nr.resp);
    }
    if (o.resolve_image != NULL && strcmp(o.resolve_image, "always") != 0 &&
        strcmp(o.resolve_image, "changed") != 0 && strcmp(o.resolve_image, "never") != 0) {
        rc = cli_cmd_errorf(ctx, "Invalid option %s for flag --resolve-image", o.resolve_image);
        free(pos);
        cli_svc_opts_free(&o);
        for (size_t i = 0; i < n_resolved; i++) {
            free(resolved[i]);
        }
        free(resolved);
        return rc;
    }
    struct service_update u = {flags, &o};
    int64_t since = cli_now_ms() - 1000;
    rc = service_write(ctx, pos[0], o.do_rollback ? NULL : service_update_edit, &u,
                       o.do_rollback, o.resolve_image, &id);
    if (rc == 0) {
        fprintf(ctx->out, "%s\n", pos[0]);
        fflush(ctx->out);
        if (!o.detach) {
            rc = cli_service_wait(ctx, id, since, o.do_rollback, o.quiet);
        }
    }
    free(id);
    free(pos);
    cli_svc_opts_free(&o);
    for (size_t i = 0; i < n_resolved; i++) {
        free(resolved[i]);
    }
    free(resolved);
    return rc;
}

/* ---------------------------------------------------------------- rollback */

int cmd_service_rollback(struct cli_ctx *ctx, int argc, char **argv)
{
    bool detach = false, quiet = false;
    struct cli_flag flags[] = {
        {'d', "detach", CLI_FLAG_BOOL, &detach,
         "Exit immediately instead of waiting for the service to converge", NULL, false, NULL},
        {'q', "quiet", CLI_FLAG_BOOL, &quiet, "Suppress progress output", NULL, false, NULL},
        {0},
    };
    struct cli_spec spec = {"swarmctl service rollback", "[OPTIONS] SERVICE",
                            "Revert changes to a service's configuration", NULL, CLI_ARGS_EXACT,
                            1, 0, flags, false};
    char **pos, *id = NULL;
    int npos, rc;
    if (!cli_cmd_parse(ctx, &spec, argc, argv, &pos, &npos, &rc)) {
        return rc;
    }
    int64_t since = cli_now_ms() - 1000;
    rc = service_write(ctx, pos[0], NULL, NULL, true, NULL, &id);
    if (rc == 0) {
        fprintf(ctx->out, "%s\n", pos[0]);
        if (!detach && !quiet) {
            fputs("rollback: manually requested rollback\n", ctx->out);
        }
        fflush(ctx->out);
        if (!detach) {
            rc = cli_service_wait(ctx, id, since, true, quiet);
        }
    }
    free(id);
    free(pos);
    return rc;
}

/* ------------------------------------------------------------------- scale */

static int service_scale_edit(struct cli_ctx *ctx, Swarm__ServiceSpec *spec, void *data)
{
    if (cli_svc_spec_scale(spec, *(const uint64_t *)data) != 0) {
        return cli_cmd_errorf(ctx, "scale can only be used with replicated mode");
    }
    return 0;
}

/* "web=4" -> name and count; Docker checks every argument before any call. */
static int service_scale_arg(const char *arg, char *name, size_t size, uint64_t *n)
{
    const char *eq = strchr(arg, '=');
    char err[SWARM_ERRMSG_SIZE];
    if (eq == NULL || eq == arg || (size_t)(eq - arg) >= size ||
        cli_parse_uint(eq + 1, n, err) != 0) {
        return -1;
    }
    snprintf(name, size, "%.*s", (int)(eq - arg), arg);
    return 0;
}

int cmd_service_scale(struct cli_ctx *ctx, int argc, char **argv)
{
    bool detach = false, quiet = false;
    struct cli_flag flags[] = {
        {'d', "detach", CLI_FLAG_BOOL, &detach,
         "Exit immediately instead of waiting for the service to converge", NULL, false, NULL},
        {'q', "quiet", CLI_FLAG_BOOL, &quiet, "Suppress progress output", NULL, false, NULL},
        {0},
    };
    struct cli_spec spec = {"swarmctl service scale", "SERVICE=REPLICAS [SERVICE=REPLICAS...]",
                            "Scale one or multiple replicated services", NULL, CLI_ARGS_MIN, 1,
                            0, flags, false};
    char **pos, name[256];
    int npos, rc;
    uint64_t n;
    if (!cli_cmd_parse(ctx, &spec, argc, argv, &pos, &npos, &rc)) {
        return rc;
    }
    for (int i = 0; i < npos; i++) {
        if (service_scale_arg(pos[i], name, sizeof name, &n) != 0) {
            fprintf(ctx->err, "Invalid scale specifier '%s'.\nSee '%s --help'.\n\nUsage:  %s %s\n\n%s\n",
                    pos[i], spec.path, spec.path, spec.use, spec.summary);
            free(pos);
            return 1;
        }
    }
    rc = 0;
    for (int i = 0; i < npos; i++) {
        char *id = NULL;
        int64_t since = cli_now_ms() - 1000;
        service_scale_arg(pos[i], name, sizeof name, &n);
        int rv = service_write(ctx, name, service_scale_edit, &n, false, NULL, &id);
        if (rv == 0) {
            fprintf(ctx->out, "%s scaled to %llu\n", name, (unsigned long long)n);
            fflush(ctx->out);
            if (!detach) {
                rv = cli_service_wait(ctx, id, since, false, quiet);
            }
        }
        rc |= rv;
        free(id);
    }
    free(pos);
    return rc;
}
