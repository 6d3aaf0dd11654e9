/* `swarmctl network create|ls|inspect|rm`, with Docker's flags, columns and
 * messages (docker/cli cli/command/network). NETWORK is anything swarmd's
 * GetNetwork resolves: an ID, a unique ID prefix or a name. Rendering is
 * view_network.c. */
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "edit.h"
#include "err.h"
#include "format.h"
#include "view_format.h"
#include "view_network.h"

/* ------------------------------------------------------------------ create */

static int cmd_network_create(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *driver = "overlay", *subnet = NULL, *gateway = NULL, *range = NULL;
    bool attachable = false, internal = false;
    struct cli_strlist labels = {0};
    struct cli_flag flags[] = {
        {0, "attachable", CLI_FLAG_BOOL, &attachable, "Enable manual container attachment", NULL, false, NULL},
        {'d', "driver", CLI_FLAG_STRING, &driver, "Driver to manage the Network (default \"overlay\")", "string",
         false, NULL},
        {0, "gateway", CLI_FLAG_STRING, &gateway, "IPv4 Gateway for the master subnet", "string", false, NULL},
        {0, "internal", CLI_FLAG_BOOL, &internal, "Restrict external access to the network", NULL, false, NULL},
        {0, "ip-range", CLI_FLAG_STRING, &range, "Allocate container ip from a sub-range", "string", false, NULL},
        {0, "label", CLI_FLAG_LIST, &labels, "Set metadata on a network", "list", false, NULL},
        {0, "subnet", CLI_FLAG_STRING, &subnet, "Subnet in CIDR format that represents a network segment",
         "string", false, NULL},
        {0},
    };
    struct cli_spec spec = {"swarmctl network create", "[OPTIONS] NETWORK", "Create a network", NULL,
                            CLI_ARGS_EXACT, 1, 0, flags, false};
    char **pos, key[256];
    const char *value;
    int npos, rc = 1;
    if (!cli_cmd_parse(ctx, &spec, argc, argv, &pos, &npos, &rc)) {
        cli_strlist_free(&labels);
        return rc;
    }
    Swarm__NetworkSpec ns = SWARM__NETWORK_SPEC__INIT;
    Swarm__IPAMConfig ipam = SWARM__IPAMCONFIG__INIT, *ipams[1] = {&ipam};
    Swarm__Annotations *ann = NULL;
    for (size_t i = 0; i < labels.n; i++) {
        if (cli_label_parse(labels.items[i], key, sizeof key, &value) != 0) {
            rc = cli_cmd_errorf(ctx, "invalid label '%s': empty key", labels.items[i]);
            goto out;
        }
        cli_labels_set(&ann, key, value);
    }
    if (ann == NULL) {
        ann = cli_xcalloc(1, sizeof *ann);
        swarm__annotations__init(ann);
    }
    if (ann->name != NULL && ann->name != protobuf_c_empty_string) {
        free(ann->name);
    }
    ann->name = strdup(pos[0]);
    if (ann->name == NULL) {
        cli_oom();
    }
    ns.annotations = ann;
    ns.driver = (char *)driver;
    ns.attachable = attachable;
    ns.internal = internal;
    if (subnet != NULL || gateway != NULL || range != NULL) {
        ipam.subnet = (char *)(subnet != NULL ? subnet : "");
        ipam.gateway = (char *)(gateway != NULL ? gateway : "");
        ipam.range = (char *)(range != NULL ? range : "");
        ns.ipam = ipams;
        ns.n_ipam = 1;
    }
    Swarm__CreateNetworkRequest req = SWARM__CREATE_NETWORK_REQUEST__INIT;
    req.spec = &ns;
    Swarm__CreateNetworkResponse *resp =
        (Swarm__CreateNetworkResponse *)cli_cmd_control(ctx, "CreateNetwork", &req.base);
    if (resp != NULL && resp->network != NULL) {
        fprintf(ctx->out, "%s\n", resp->network->id);
        rc = 0;
    }
    cli_cmd_free(resp);
out:
    if (ann != NULL) {
        swarm__annotations__free_unpacked(ann, NULL);
    }
    cli_strlist_free(&labels);
    free(pos);
    return rc;
}

/* ---------------------------------------------------------------------- ls */

static int cmd_network_ls(struct cli_ctx *ctx, int argc, char **argv)
{
    bool quiet = false;
    const char *format = NULL;
    struct cli_strlist filters = {0};
    struct cli_flag flags[] = {
        {'f', "filter", CLI_FLAG_LIST, &filters, "Provide filter values (e.g. 'driver=bridge')", "filter", false,
         NULL},
        {0, "format", CLI_FLAG_STRING, &format, "Pretty-print networks using a Go template", "string", false,
         NULL},
        {'q', "quiet", CLI_FLAG_BOOL, &quiet, "Only display network IDs", NULL, false, NULL},
        {0},
    };
    struct cli_spec spec = {"swarmctl network ls", "[OPTIONS]", "List networks", "ls, list", CLI_ARGS_NONE,
                            0, 0, flags, false};
    char **pos;
    int npos, rc = 1;
    if (!cli_cmd_parse(ctx, &spec, argc, argv, &pos, &npos, &rc)) {
        cli_strlist_free(&filters);
        return rc;
    }
    free(pos);
    for (size_t i = 0; i < filters.n; i++) {
        if (strchr(filters.items[i], '=') == NULL) {
            cli_strlist_free(&filters);
            return cli_cmd_errorf(ctx, "bad format of filter (expected name=value)");
        }
    }
    Swarm__ListNetworksRequest req = SWARM__LIST_NETWORKS_REQUEST__INIT;
    req.filters = (char **)filters.items;
    req.n_filters = filters.n;
    Swarm__ListNetworksResponse *list =
        (Swarm__ListNetworksResponse *)cli_cmd_control(ctx, "ListNetworks", &req.base);
    cli_strlist_free(&filters);
    if (list == NULL) {
        return 1;
    }
    bool warned = false;
    cli_cmd_warn_stale(ctx, list->stale, &warned);
    char ferr[SWARM_ERRMSG_SIZE];
    rc = 0;
    if (cli_format_is_default(format)) {
        cli_view_network_table(ctx->out, list->networks, list->n_networks, quiet);
    } else {
        rc = cli_cmd_format_result(
            ctx, cli_view_network_format(ctx->out, format, list->networks, list->n_networks, ferr), ferr);
    }
    cli_cmd_free(list);
    return rc;
}

/* ----------------------------------------------------------------- inspect */

/* GetNetwork without printing; NULL with r->status set when it failed. */
static Swarm__Network *network_get(struct cli_ctx *ctx, const char *ref, struct cli_reply *r)
{
    Swarm__GetNetworkRequest req = SWARM__GET_NETWORK_REQUEST__INIT;
    req.network_id = (char *)ref;
    if (cli_conn_call(ctx->conn, &swarm__control__descriptor, "GetNetwork", &req.base, r) != 0) {
        return NULL;
    }
    return ((Swarm__GetNetworkResponse *)r->resp)->network;
}

/* "Error: No such network: REF" (Docker's words), or the call's own error. */
static int network_report(struct cli_ctx *ctx, const char *ref, const struct cli_reply *r)
{
    if (r->status == API_NOT_FOUND) {
        fprintf(ctx->err, "Error: No such network: %s\n", ref);
        return 1;
    }
    return cli_conn_report(ctx->conn, r, ctx->err);
}

static int cmd_network_inspect(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *format = NULL;
    struct cli_flag flags[] = {
        {'f', "format", CLI_FLAG_STRING, &format, "Format the output using the given Go template", "string",
         false, NULL},
        {0},
    };
    struct cli_spec spec = {"swarmctl network inspect", "[OPTIONS] NETWORK [NETWORK...]",
                            "Display detailed information on one or more networks", NULL, CLI_ARGS_MIN, 1, 0,
                            flags, false};
    char **pos;
    int npos, rc = 0;
    if (!cli_cmd_parse(ctx, &spec, argc, argv, &pos, &npos, &rc)) {
        return rc;
    }
    if (format != NULL && strcmp(format, "json") == 0) {
        format = NULL;
    }
    struct cli_reply *replies = cli_xcalloc((size_t)npos, sizeof *replies);
    struct tmpl_value **found = cli_xcalloc((size_t)npos + 1, sizeof *found);
    size_t nfound = 0;
    for (int i = 0; i < npos; i++) {
        Swarm__Network *nw = network_get(ctx, pos[i], &replies[i]);
        if (nw != NULL) {
            found[nfound++] = cli_view_network_value(nw);
        } else if (replies[i].unreachable) {
            rc = 1;
            break;
        }
    }
    if (rc == 0 && format != NULL) {
        rc = cli_format_inspect_values(ctx->out, ctx->err, format, found, nfound) == 0 ? 0 : 1;
    } else if (rc == 0) {
        cli_view_network_inspect(ctx->out, found, nfound);
    }
    fflush(ctx->out);
    for (int i = 0; i < npos; i++) {
        if (replies[i].status != API_OK) {
            rc = network_report(ctx, pos[i], &replies[i]);
        }
        cli_cmd_free(replies[i].resp);
    }
    for (size_t i = 0; i < nfound; i++) {
        tmpl_value_free(found[i]);
    }
    free(found);
    free(replies);
    free(pos);
    return rc;
}

/* ---------------------------------------------------------------------- rm */

static int cmd_network_rm(struct cli_ctx *ctx, int argc, char **argv)
{
    struct cli_spec spec = {"swarmctl network rm", "NETWORK [NETWORK...]", "Remove one or more networks",
                            "rm, remove", CLI_ARGS_MIN, 1, 0, NULL, false};
    char **pos;
    int npos, rc;
    if (!cli_cmd_parse(ctx, &spec, argc, argv, &pos, &npos, &rc)) {
        return rc;
    }
    rc = 0;
    for (int i = 0; i < npos; i++) {
        Swarm__RemoveNetworkRequest req = SWARM__REMOVE_NETWORK_REQUEST__INIT;
        struct cli_reply r;
        req.network_id = pos[i];
        if (cli_conn_call(ctx->conn, &swarm__control__descriptor, "RemoveNetwork", &req.base, &r) == 0) {
            fprintf(ctx->out, "%s\n", pos[i]);
        } else if (r.status == API_FAILED_PRECONDITION) {
            /* Docker passes swarmkit's gRPC error through (REFERENCE.md). */
            fprintf(ctx->err, "Error response from daemon: rpc error: code = FailedPrecondition desc = %s\n",
                    cli_esc(r.message));
            rc = 1;
        } else {
            rc = network_report(ctx, pos[i], &r);
        }
        fflush(ctx->out);
        cli_cmd_free(r.resp);
        if (r.unreachable) {
            break;
        }
    }
    free(pos);
    return rc;
}

const struct cli_command cli_network_commands[] = {
    {"create", NULL, "Create a network", cmd_network_create, NULL},
    {"inspect", NULL, "Display detailed information on one or more networks", cmd_network_inspect, NULL},
    {"ls", "list", "List networks", cmd_network_ls, NULL},
    {"rm", "remove", "Remove one or more networks", cmd_network_rm, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};
