/* `swarmctl node ls|inspect|update|promote|demote|rm`, with Docker's flags
 * and messages (docker/cli cli/command/node). NODE is anything swarmd's
 * GetNode resolves: an ID, a unique ID prefix or a hostname; `self` is this
 * node. */
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "format.h"
#include "err.h"
#include "specvalid.h"
#include "edit.h"
#include "json.h"
#include "view.h"
#include "view_format.h"
#include "view_service.h"

/* GetNode without printing; the caller decides what a failure means. */
static Swarm__Node *node_get(struct cli_ctx *ctx, const char *ref,
                             struct cli_reply *r)
{
    Swarm__GetNodeRequest req = SWARM__GET_NODE_REQUEST__INIT;
    req.node_id = (char *)ref;
    if (cli_conn_call(ctx->conn, &swarm__control__descriptor, "GetNode", &req.base, r) != 0) {
        return NULL;
    }
    Swarm__GetNodeResponse *resp = (Swarm__GetNodeResponse *)r->resp;
    if (resp->node == NULL) {
        r->status = API_NOT_FOUND;
        snprintf(r->message, sizeof r->message, "node %s not found", ref);
        cli_cmd_free(resp);
        r->resp = NULL;
        return NULL;
    }
    return resp->node;
}

/* ---------------------------------------------------------------------- ls */

static int cmd_node_ls(struct cli_ctx *ctx, int argc, char **argv)
{
    bool quiet = false;
    const char *format = NULL;
    struct cli_strlist filters = {0};
    struct cli_flag flags[] = {
        {'f', "filter", CLI_FLAG_LIST, &filters,
         "Filter output based on conditions provided", "filter", false},
        {0, "format", CLI_FLAG_STRING, &format,
         "Format output using a custom template:\n'table':            Print output in table "
         "format with column headers (default)\n'table TEMPLATE':   Print output in table "
         "format using the given Go template\n'json':             Print in JSON format\n"
         "'TEMPLATE':         Print output using the given Go template",
         "string", false},
        {'q', "quiet", CLI_FLAG_BOOL, &quiet, "Only display IDs", NULL, false},
        {0},
    };
    struct cli_spec spec = {"swarmctl node ls", "[OPTIONS]", "List nodes in the swarm",
                            "ls, list", CLI_ARGS_NONE, 0, 0, flags};
    Swarm__ListNodesRequest req = SWARM__LIST_NODES_REQUEST__INIT;
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
    req.filters = (char **)filters.items;
    req.n_filters = filters.n;
    Swarm__ListNodesResponse *list =
        (Swarm__ListNodesResponse *)cli_cmd_control(ctx, "ListNodes", &req.base);
    cli_strlist_free(&filters);
    if (list == NULL) {
        return 1;
    }
    /* The "*" mark only: without Info the table is still right. */
    Swarm__InfoRequest ireq = SWARM__INFO_REQUEST__INIT;
    struct cli_reply r;
    cli_conn_call(ctx->conn, &swarm__swarm__descriptor, "Info", &ireq.base, &r);
    Swarm__InfoResponse *info = (Swarm__InfoResponse *)r.resp;
    bool warned = false;
    cli_cmd_warn_stale(ctx, list->stale, &warned);
    int rc_fmt = 0;
    char ferr[SWARM_ERRMSG_SIZE];
    if (cli_format_is_default(format)) {
        cli_view_node_table(ctx->out, list->nodes, list->n_nodes,
                            info != NULL ? info->node_id : NULL, quiet);
    } else {
        rc_fmt = cli_cmd_format_result(ctx, cli_view_node_format(ctx->out, format, list->nodes,
                                                                 list->n_nodes,
                                                                 info != NULL ? info->node_id
                                                                              : NULL,
                                                                 ferr),
                                       ferr);
    }
    cli_cmd_free(info);
    cli_cmd_free(list);
    return rc_fmt;
}

/* ----------------------------------------------------------------- inspect */

/* Resolve "self" once. Returns the ref to send, or NULL (error printed). */
static const char *node_ref(struct cli_ctx *ctx, const char *arg,
                            Swarm__InfoResponse **info)
{
    if (strcmp(arg, "self") != 0) {
        return arg;
    }
    if (*info == NULL) {
        *info = cli_cmd_info(ctx);
    }
    return *info != NULL ? (*info)->node_id : NULL;
}

static void node_report(struct cli_ctx *ctx, const char *arg, const struct cli_reply *r)
{
    if (r->status == API_NOT_FOUND) {
        fprintf(ctx->err, "Error: No such node: %s\n", arg);
    } else {
        cli_conn_report(ctx->conn, r, ctx->err);
    }
}

static int cmd_node_inspect(struct cli_ctx *ctx, int argc, char **argv)
{
    bool pretty = false;
    const char *format = NULL;
    struct cli_flag flags[] = {
        {'f', "format", CLI_FLAG_STRING, &format,
         "Format output using a custom template:\n'json':             Print in JSON format\n"
         "'TEMPLATE':         Print output using the given Go template",
         "string", false},
        {0, "pretty", CLI_FLAG_BOOL, &pretty, "Print the information in a human friendly format",
         NULL, false},
        {0},
    };
    struct cli_spec spec = {"swarmctl node inspect", "[OPTIONS] self|NODE [NODE...]",
                            "Display detailed information on one or more nodes", NULL,
                            CLI_ARGS_MIN, 1, 0, flags};
    char **pos;
    int npos, rc = 0;
    if (!cli_cmd_parse(ctx, &spec, argc, argv, &pos, &npos, &rc)) {
        return rc;
    }
    if (!cli_cmd_inspect_format(ctx, &format, &pretty)) {
        free(pos);
        return 1;
    }
    Swarm__InfoResponse *info = NULL;
    struct cli_reply *replies = cli_xcalloc((size_t)npos, sizeof *replies);
    const ProtobufCMessage **found = cli_xcalloc((size_t)npos, sizeof *found);
    size_t nfound = 0;
    bool warned = false;
    for (int i = 0; i < npos; i++) {
        const char *ref = node_ref(ctx, pos[i], &info);
        if (ref == NULL) {
            rc = 1; /* Info failed, error printed: nothing else will work */
            break;
        }
        Swarm__Node *n = node_get(ctx, ref, &replies[i]);
        if (n != NULL) {
            cli_cmd_warn_stale(ctx, ((Swarm__GetNodeResponse *)replies[i].resp)->stale, &warned);
            found[nfound++] = &n->base;
        } else if (replies[i].unreachable) {
            rc = 1; /* say "cannot connect" once, not once per node */
            break;
        }
    }
    if (rc == 0 && format != NULL) {
        rc = cli_format_inspect(ctx->out, ctx->err, format, found, nfound) == 0 ? 0 : 1;
    } else if (rc == 0 && !pretty) {
        cli_json_print_array(ctx->out, found, nfound);
    }
    for (size_t i = 0; rc == 0 && pretty && i < nfound; i++) {
        cli_view_node_pretty(ctx->out, (const Swarm__Node *)found[i]);
    }
    fflush(ctx->out);
    for (int i = 0; i < npos; i++) {
        if (replies[i].status != API_OK) {
            node_report(ctx, pos[i], &replies[i]);
            rc = 1;
        }
        cli_cmd_free(replies[i].resp);
        /* found[] points into these answers: freed only after printing. */
    }
    cli_cmd_free(info);
    free(found);
    free(replies);
    free(pos);
    return rc;
}

/* ------------------------------------------------------------------ update */

/* Edits a node's spec in place. Returns 0, 1 after printing an error, or
 * NODE_UNCHANGED when there is nothing to write (promote of a manager). */
#define NODE_UNCHANGED 2
typedef int (*node_edit_fn)(struct cli_ctx *ctx, Swarm__Node *node, void *data);

/* GetNode, edit, UpdateNode with the version read; once more on a version
 * conflict, from a fresh read. */
static int node_update(struct cli_ctx *ctx, const char *ref, node_edit_fn edit,
                       void *data)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        struct cli_reply got, r;
        Swarm__Node *n = node_get(ctx, ref, &got);
        if (n == NULL) {
            node_report(ctx, ref, &got);
            return 1;
        }
        char errmsg[SWARM_ERRMSG_SIZE];
        int rv = n->spec != NULL ? edit(ctx, n, data) : cli_cmd_errorf(ctx, "node %s has no spec", ref);
        if (rv == 0 && spec_validate_node(n->spec, errmsg) != 0) {
            rv = cli_cmd_errorf(ctx, "%s", errmsg); /* swarmd's rules, before sending */
        }
        if (rv != 0) {
            cli_cmd_free(got.resp);
            return rv;
        }
        Swarm__UpdateNodeRequest req = SWARM__UPDATE_NODE_REQUEST__INIT;
        req.node_id = n->id;
        req.node_version = n->meta != NULL ? n->meta->version : 0;
        req.spec = n->spec;
        rv = cli_conn_call(ctx->conn, &swarm__control__descriptor, "UpdateNode", &req.base, &r);
        cli_cmd_free(got.resp);
        cli_cmd_free(r.resp);
        if (rv == 0) {
            return 0;
        }
        if (attempt == 1 || !cli_cmd_is_conflict(r.status)) {
            return cli_conn_report(ctx->conn, &r, ctx->err);
        }
    }
    return 1;
}

struct node_update_opts {
    const char *availability;
    const char *role;
    struct cli_strlist label_add;
    struct cli_strlist label_rm;
};

static int node_update_labels(struct cli_ctx *ctx, Swarm__NodeSpec *spec,
                              const struct node_update_opts *o)
{
    char key[256];
    const char *value;
    for (size_t i = 0; i < o->label_add.n; i++) {
        if (cli_label_parse(o->label_add.items[i], key, sizeof key, &value) != 0) {
            return cli_cmd_errorf(ctx, "invalid label '%s': empty key", o->label_add.items[i]);
        }
        if (cli_labels_set(&spec->annotations, key, value) != 0) {
            return cli_cmd_errorf(ctx, "out of memory");
        }
    }
    for (size_t i = 0; i < o->label_rm.n; i++) {
        if (cli_labels_remove(spec->annotations, o->label_rm.items[i]) != 0) {
            return cli_cmd_errorf(ctx, "key %s doesn't exist in node's labels",
                                  o->label_rm.items[i]);
        }
    }
    return 0;
}

static int node_update_edit(struct cli_ctx *ctx, Swarm__Node *n, void *data)
{
    const struct node_update_opts *o = data;
    if (o->availability != NULL &&
        cli_parse_availability(o->availability, &n->spec->availability) != 0) {
        return cli_cmd_errorf(ctx, "invalid availability \"%s\", only active, pause and "
                                   "drain are supported", o->availability);
    }
    if (o->role != NULL && cli_parse_role(o->role, &n->spec->desired_role) != 0) {
        return cli_cmd_errorf(ctx, "invalid role \"%s\", only worker and manager are "
                                   "supported", o->role);
    }
    return node_update_labels(ctx, n->spec, o);
}

static int cmd_node_update(struct cli_ctx *ctx, int argc, char **argv)
{
    struct node_update_opts o = {0};
    struct cli_flag flags[] = {
        {0, "availability", CLI_FLAG_STRING, &o.availability,
         "Availability of the node (\"active\"|\"pause\"|\"drain\")", NULL, false},
        {0, "label-add", CLI_FLAG_LIST, &o.label_add,
         "Add or update a node label (key=value)", NULL, false},
        {0, "label-rm", CLI_FLAG_LIST, &o.label_rm, "Remove a node label if exists", NULL,
         false},
        {0, "role", CLI_FLAG_STRING, &o.role, "Role of the node (\"worker\"|\"manager\")",
         NULL, false},
        {0},
    };
    struct cli_spec spec = {"swarmctl node update", "[OPTIONS] NODE", "Update a node", NULL,
                            CLI_ARGS_EXACT, 1, 0, flags};
    char **pos;
    int npos, rc;
    if (cli_cmd_parse(ctx, &spec, argc, argv, &pos, &npos, &rc)) {
        rc = node_update(ctx, pos[0], node_update_edit, &o);
        if (rc == 0) {
            fprintf(ctx->out, "%s\n", pos[0]);
        }
        free(pos);
    }
    cli_strlist_free(&o.label_add);
    cli_strlist_free(&o.label_rm);
    return rc;
}

/* --------------------------------------------------------- promote, demote */

static int node_role_edit(struct cli_ctx *ctx, Swarm__Node *n, void *data)
{
    Swarm__NodeRole want = *(const Swarm__NodeRole *)data;
    if (n->spec->desired_role == want) {
        /* Docker names the node by its ID here, by the argument below. */
        fprintf(ctx->out, "Node %s is already a %s.\n", n->id,
                want == SWARM__NODE_ROLE__NODE_ROLE_MANAGER ? "manager" : "worker");
        return NODE_UNCHANGED;
    }
    n->spec->desired_role = want;
    return 0;
}

static int node_set_roles(struct cli_ctx *ctx, struct cli_spec *spec, int argc,
                          char **argv, Swarm__NodeRole want)
{
    char **pos;
    int npos, rc;
    if (!cli_cmd_parse(ctx, spec, argc, argv, &pos, &npos, &rc)) {
        return rc;
    }
    rc = 0;
    for (int i = 0; i < npos && rc == 0; i++) {
        int rv = node_update(ctx, pos[i], node_role_edit, &want);
        if (rv == 0 && want == SWARM__NODE_ROLE__NODE_ROLE_MANAGER) {
            fprintf(ctx->out, "Node %s promoted to a manager in the swarm.\n", pos[i]);
        } else if (rv == 0) {
            fprintf(ctx->out, "Manager %s demoted in the swarm.\n", pos[i]);
        }
        rc = rv == NODE_UNCHANGED ? 0 : rv;
    }
    free(pos);
    return rc;
}

static int cmd_node_promote(struct cli_ctx *ctx, int argc, char **argv)
{
    struct cli_spec spec = {"swarmctl node promote", "NODE [NODE...]",
                            "Promote one or more nodes to manager in the swarm", NULL,
                            CLI_ARGS_MIN, 1, 0, NULL};
    return node_set_roles(ctx, &spec, argc, argv, SWARM__NODE_ROLE__NODE_ROLE_MANAGER);
}

static int cmd_node_demote(struct cli_ctx *ctx, int argc, char **argv)
{
    struct cli_spec spec = {"swarmctl node demote", "NODE [NODE...]",
                            "Demote one or more nodes from manager in the swarm", NULL,
                            CLI_ARGS_MIN, 1, 0, NULL};
    return node_set_roles(ctx, &spec, argc, argv, SWARM__NODE_ROLE__NODE_ROLE_WORKER);
}

/* ---------------------------------------------------------------------- rm */

/* Like Docker: try every node, print each one removed, then the errors. */
static int cmd_node_rm(struct cli_ctx *ctx, int argc, char **argv)
{
    bool force = false;
    struct cli_flag flags[] = {
        {'f', "force", CLI_FLAG_BOOL, &force, "Force remove a node from the swarm", NULL,
         false},
        {0},
    };
    struct cli_spec spec = {"swarmctl node rm", "[OPTIONS] NODE [NODE...]",
                            "Remove one or more nodes from the swarm", "rm, remove",
                            CLI_ARGS_MIN, 1, 0, flags};
    char **pos;
    int npos, rc;
    if (!cli_cmd_parse(ctx, &spec, argc, argv, &pos, &npos, &rc)) {
        return rc;
    }
    struct cli_reply *replies = cli_xcalloc((size_t)npos, sizeof *replies);
    for (int i = 0; i < npos; i++) {
        Swarm__RemoveNodeRequest req = SWARM__REMOVE_NODE_REQUEST__INIT;
        req.node_id = pos[i];
        req.force = force;
        if (cli_conn_call(ctx->conn, &swarm__control__descriptor, "RemoveNode", &req.base,
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
            rc = cli_conn_report(ctx->conn, &replies[i], ctx->err);
        }
        cli_cmd_free(replies[i].resp);
    }
    free(replies);
    free(pos);
    return rc;
}

/* ---------------------------------------------------------------------- ps */

/* `node ps [NODE...]`: the tasks on each node (default: this one), in
 * service ps's table. */
static int cmd_node_ps(struct cli_ctx *ctx, int argc, char **argv)
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
    struct cli_spec spec = {"swarmctl node ps", "[OPTIONS] [NODE...]",
                            "List tasks running on one or more nodes, defaults to current node",
                            NULL, CLI_ARGS_ANY, 0, 0, flags, false};
    char **pos;
    int npos, rc = 1;
    if (!cli_cmd_parse(ctx, &spec, argc, argv, &pos, &npos, &rc)) {
        cli_strlist_free(&filters);
        return rc;
    }
    char *self[] = {"self"};
    char **refs = npos > 0 ? pos : self;
    size_t nrefs = npos > 0 ? (size_t)npos : 1;
    char **scopes = cli_xcalloc(nrefs, sizeof *scopes);
    Swarm__InfoResponse *info = NULL;
    rc = scopes != NULL ? 0 : 1;
    for (size_t i = 0; i < nrefs && rc == 0; i++) {
        const char *ref = node_ref(ctx, refs[i], &info);
        if (ref == NULL) {
            rc = 1;
            break;
        }
        size_t len = strlen(ref) + 8;
        scopes[i] = cli_xrealloc(NULL, len);
        snprintf(scopes[i], len, "node=%s", ref);
    }
    if (rc == 0) {
        rc = cli_task_ps(ctx, scopes, nrefs, (char *const *)filters.items, filters.n, &view);
    }
    for (size_t i = 0; scopes != NULL && i < nrefs; i++) {
        free(scopes[i]);
    }
    free(scopes);
    cli_cmd_free(info);
    cli_strlist_free(&filters);
    free(pos);
    return rc;
}

const struct cli_command cli_node_commands[] = {
    {"demote", NULL, "Demote one or more nodes from manager in the swarm", cmd_node_demote, NULL},
    {"inspect", NULL, "Display detailed information on one or more nodes", cmd_node_inspect,
     NULL},
    {"ls", "list", "List nodes in the swarm", cmd_node_ls, NULL},
    {"promote", NULL, "Promote one or more nodes to manager in the swarm", cmd_node_promote,
     NULL},
    {"ps", NULL, "List tasks running on one or more nodes, defaults to current node",
     cmd_node_ps, NULL},
    {"rm", "remove", "Remove one or more nodes from the swarm", cmd_node_rm, NULL},
    {"update", NULL, "Update a node", cmd_node_update, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};
