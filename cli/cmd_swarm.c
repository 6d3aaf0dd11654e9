/* `swarmctl swarm init|join|join-token|leave|update`, with Docker's flags
 * and messages (docker/cli cli/command/swarm). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ca_progress.h"
#include "cmd.h"
#include "err.h"
#include "specvalid.h"
#include "format.h"
#include "view.h"
#include "vec.h"

/* The cluster settings `init` and `update` share. Zero fields in the spec
 * sent to InitSwarm mean "swarmd's default". */
struct swarm_spec_opts {
    int64_t task_history;
    int64_t heartbeat_ns;
    int64_t cert_expiry_ns;
};

#define SWARM_SPEC_FLAGS(o)                                                   \
    {0, "task-history-limit", CLI_FLAG_INT, &(o)->task_history,               \
     "Task history retention limit (default 5)", NULL, false},                \
    {0, "dispatcher-heartbeat", CLI_FLAG_DURATION, &(o)->heartbeat_ns,        \
     "Dispatcher heartbeat period (ns|us|ms|s|m|h) (default 1s)", NULL, false}, \
    {0, "cert-expiry", CLI_FLAG_DURATION, &(o)->cert_expiry_ns,               \
     "Validity period for node certificates (ns|us|ms|s|m|h) (default 2160h0m0s)", \
     NULL, false}

/* Sub-messages a spec may lack, borrowed for one request. */
struct swarm_spec_parts {
    Swarm__OrchestrationConfig orch;
    Swarm__DispatcherConfig disp;
    Swarm__CAConfig ca;
};

static void swarm_spec_borrow(Swarm__ClusterSpec *s, struct swarm_spec_parts *p)
{
    swarm__orchestration_config__init(&p->orch);
    swarm__dispatcher_config__init(&p->disp);
    swarm__caconfig__init(&p->ca);
    s->orchestration = s->orchestration != NULL ? s->orchestration : &p->orch;
    s->dispatcher = s->dispatcher != NULL ? s->dispatcher : &p->disp;
    s->ca_config = s->ca_config != NULL ? s->ca_config : &p->ca;
}

/* Undo swarm_spec_borrow before the spec is freed. */
static void swarm_spec_return(Swarm__ClusterSpec *s, struct swarm_spec_parts *p)
{
    s->orchestration = s->orchestration == &p->orch ? NULL : s->orchestration;
    s->dispatcher = s->dispatcher == &p->disp ? NULL : s->dispatcher;
    s->ca_config = s->ca_config == &p->ca ? NULL : s->ca_config;
}

/* Apply the flags that were given. Returns 0, or 1 after an error. */
static int swarm_spec_apply(struct cli_ctx *ctx, const struct cli_spec *spec,
                            const struct swarm_spec_opts *o, Swarm__ClusterSpec *s)
{
    if (cli_flag_changed(spec, "task-history-limit")) {
        s->orchestration->task_history_retention_limit = o->task_history;
    }
    if (cli_flag_changed(spec, "dispatcher-heartbeat")) {
        if (o->heartbeat_ns < CLI_NS_PER_MS) {
            return cli_cmd_errorf(ctx, "invalid dispatcher heartbeat period: must be at least 1ms");
        }
        s->dispatcher->heartbeat_period_ms = o->heartbeat_ns / CLI_NS_PER_MS;
    }
    if (cli_flag_changed(spec, "cert-expiry")) {
        if (o->cert_expiry_ns < CLI_NS_PER_S) {
            return cli_cmd_errorf(ctx, "invalid certificate expiry: must be at least 1s");
        }
        s->ca_config->node_cert_expiry_s = o->cert_expiry_ns / CLI_NS_PER_S;
    }
    return 0;
}

/* The bounds swarmd applies (specvalid.h), before anything is sent. */
static int swarm_spec_check(struct cli_ctx *ctx, const Swarm__ClusterSpec *s)
{
    char errmsg[SWARM_ERRMSG_SIZE];
    if (spec_validate_cluster(s, errmsg) != 0) {
        return cli_cmd_errorf(ctx, "%s", errmsg);
    }
    return 0;
}

static int swarm_availability(struct cli_ctx *ctx, const char *s,
                              Swarm__NodeAvailability *out)
{
    if (s == NULL) {
        *out = SWARM__NODE_AVAILABILITY__NODE_AVAILABILITY_ACTIVE;
        return 0;
    }
    if (cli_parse_availability(s, out) != 0) {
        return cli_cmd_errorf(ctx, "invalid availability \"%s\", only active, pause "
                                   "and drain are supported", s);
    }
    return 0;
}

/* ------------------------------------------------------------------ init */

static int cmd_swarm_init(struct cli_ctx *ctx, int argc, char **argv)
{
    struct swarm_spec_opts so = {0};
    const char *advertise = NULL, *listen = NULL, *availability = NULL;
    bool force_new = false;
    struct cli_strlist pools = {0};
    uint64_t mask_length = 24;
    struct cli_flag flags[] = {
        {0, "advertise-addr", CLI_FLAG_STRING, &advertise,
         "Advertised address (format: <ip|interface>[:port])", NULL, false},
        {0, "availability", CLI_FLAG_STRING, &availability,
         "Availability of the node (\"active\"|\"pause\"|\"drain\") (default \"active\")",
         NULL, false},
        {0, "default-addr-pool", CLI_FLAG_LIST, &pools,
         "default address pool in CIDR format (default [])", "ipNetSlice", false},
        {0, "default-addr-pool-mask-length", CLI_FLAG_UINT, &mask_length,
         "default address pool subnet mask length (default 24)", "uint32", false},
        {0, "force-new-cluster", CLI_FLAG_BOOL, &force_new,
         "Force create a new cluster from current state", NULL, false},
        {0, "listen-addr", CLI_FLAG_STRING, &listen,
         "Listen address (format: <ip|interface>[:port]) (default 0.0.0.0:2377)",
         "node-addr", false},
        SWARM_SPEC_FLAGS(&so),
        {0},
    };
    struct cli_spec spec = {"swarmctl swarm init", "[OPTIONS]", "Initialize a swarm",
                            NULL, CLI_ARGS_NONE, 0, 0, flags};
    Swarm__InitRequest req = SWARM__INIT_REQUEST__INIT;
    Swarm__ClusterSpec cs = SWARM__CLUSTER_SPEC__INIT;
    struct swarm_spec_parts parts;
    char **pos;
    int npos, rc;
    if (!cli_cmd_parse(ctx, &spec, argc, argv, &pos, &npos, &rc)) {
        cli_strlist_free(&pools);
        return rc;
    }
    free(pos);
    swarm_spec_borrow(&cs, &parts);
    if (swarm_spec_apply(ctx, &spec, &so, &cs) != 0 ||
        swarm_spec_check(ctx, &cs) != 0 ||
        swarm_availability(ctx, availability, &req.availability) != 0) {
        cli_strlist_free(&pools);
        return 1;
    }
    if (mask_length > UINT32_MAX) {
        cli_strlist_free(&pools);
        return cli_cmd_errorf(ctx, "invalid argument \"%llu\" for \"--default-addr-pool-mask-length\" flag: "
                              "value out of range", (unsigned long long)mask_length);
    }
    /* pflag's ipNetSlice: each value may hold several, comma-separated. */
    struct cli_strlist split = {0};
    char **pool_copy = cli_xcalloc(pools.n + 1, sizeof *pool_copy);
    size_t n_copy = 0;
    for (size_t i = 0; i < pools.n; i++) {
        char *dup = strdup(pools.items[i]), *save = NULL;
        if (dup == NULL) {
            cli_oom();
        }
        pool_copy[n_copy++] = dup;
        for (char *tok = strtok_r(dup, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
            split.items = cli_xrealloc(split.items, (split.n + 1) * sizeof *split.items);
            split.items[split.n++] = tok;
        }
    }
    req.default_addr_pool = (char **)split.items;
    req.n_default_addr_pool = split.n;
    req.default_addr_pool_mask_length = (uint32_t)mask_length;
    req.listen_addr = (char *)(listen != NULL ? listen : "");
    req.advertise_addr = (char *)(advertise != NULL ? advertise : "");
    req.force_new_cluster = force_new;
    req.spec = &cs;
    Swarm__InitResponse *resp =
        (Swarm__InitResponse *)cli_cmd_swarm(ctx, "InitSwarm", &req.base);
    free(split.items);
    for (size_t i = 0; i < n_copy; i++) {
        free(pool_copy[i]);
    }
    free(pool_copy);
    cli_strlist_free(&pools);
    if (resp == NULL) {
        return 1;
    }
    cli_view_init(ctx->out, resp);
    cli_cmd_free(resp);
    return 0;
}

/* ------------------------------------------------------------------ join */

static int cmd_swarm_join(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *token = NULL, *advertise = NULL, *listen = NULL, *availability = NULL;
    struct cli_flag flags[] = {
        {0, "advertise-addr", CLI_FLAG_STRING, &advertise,
         "Advertised address (format: <ip|interface>[:port])", NULL, false},
        {0, "availability", CLI_FLAG_STRING, &availability,
         "Availability of the node (\"active\"|\"pause\"|\"drain\") (default \"active\")",
         NULL, false},
        {0, "listen-addr", CLI_FLAG_STRING, &listen,
         "Listen address (format: <ip|interface>[:port]) (default 0.0.0.0:2377)",
         "node-addr", false},
        {0, "token", CLI_FLAG_STRING, &token, "Token for entry into the swarm", NULL, false},
        {0},
    };
    struct cli_spec spec = {"swarmctl swarm join", "[OPTIONS] HOST:PORT",
                            "Join a swarm as a node and/or manager", NULL,
                            CLI_ARGS_EXACT, 1, 0, flags};
    Swarm__JoinRequest req = SWARM__JOIN_REQUEST__INIT;
    char **pos;
    int npos, rc;
    if (!cli_cmd_parse(ctx, &spec, argc, argv, &pos, &npos, &rc)) {
        return rc;
    }
    req.remote_addr = pos[0];
    free(pos);
    if (token == NULL || *token == '\0') {
        return cli_cmd_errorf(ctx, "a join token is required (--token)");
    }
    if (swarm_availability(ctx, availability, &req.availability) != 0) {
        return 1;
    }
    req.join_token = (char *)token;
    req.listen_addr = (char *)(listen != NULL ? listen : "");
    req.advertise_addr = (char *)(advertise != NULL ? advertise : "");
    Swarm__JoinResponse *resp =
        (Swarm__JoinResponse *)cli_cmd_swarm(ctx, "JoinSwarm", &req.base);
    if (resp == NULL) {
        return 1;
    }
    fprintf(ctx->out, "This node joined a swarm as a %s.\n",
            resp->role == SWARM__NODE_ROLE__NODE_ROLE_MANAGER ? "manager" : "worker");
    cli_cmd_free(resp);
    return 0;
}

/* ----------------------------------------------------------------- leave */

static int cmd_swarm_leave(struct cli_ctx *ctx, int argc, char **argv)
{
    bool force = false;
    struct cli_flag flags[] = {
        {'f', "force", CLI_FLAG_BOOL, &force,
         "Force this node to leave the swarm, ignoring warnings", NULL, false},
        {0},
    };
    struct cli_spec spec = {"swarmctl swarm leave", "[OPTIONS]",
                            "Leave the swarm", NULL, CLI_ARGS_NONE, 0, 0, flags};
    Swarm__LeaveRequest req = SWARM__LEAVE_REQUEST__INIT;
    char **pos;
    int npos, rc;
    if (!cli_cmd_parse(ctx, &spec, argc, argv, &pos, &npos, &rc)) {
        return rc;
    }
    free(pos);
    req.force = force;
    ProtobufCMessage *resp = cli_cmd_swarm(ctx, "LeaveSwarm", &req.base);
    if (resp == NULL) {
        return 1;
    }
    fputs("Node left the swarm.\n", ctx->out);
    cli_cmd_free(resp);
    return 0;
}

/* ------------------------------------------------------- cluster updates */

/* The one cluster of this swarm, or NULL (error printed). */
static Swarm__ListClustersResponse *swarm_get_cluster(struct cli_ctx *ctx)
{
    Swarm__ListClustersRequest req = SWARM__LIST_CLUSTERS_REQUEST__INIT;
    Swarm__ListClustersResponse *resp =
        (Swarm__ListClustersResponse *)cli_cmd_control(ctx, "ListClusters", &req.base);
    if (resp != NULL && (resp->n_clusters == 0 || resp->clusters[0]->spec == NULL)) {
        cli_cmd_errorf(ctx, "no cluster found: is this node a swarm manager?");
        cli_cmd_free(resp);
        return NULL;
    }
    return resp;
}

/* The edit a cluster update makes: called on a fresh read each attempt. */
typedef int (*swarm_edit_fn)(struct cli_ctx *ctx, Swarm__Cluster *cluster,
                             Swarm__UpdateClusterRequest *req, void *data);

/* Read, edit, compare-and-set; one more try if another writer won. Returns
 * the updated cluster or NULL (error printed). */
static Swarm__UpdateClusterResponse *swarm_update_cluster(struct cli_ctx *ctx,
                                                          swarm_edit_fn edit,
                                                          void *data)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        Swarm__ListClustersResponse *list = swarm_get_cluster(ctx);
        if (list == NULL) {
            return NULL;
        }
        Swarm__Cluster *cl = list->clusters[0];
        Swarm__UpdateClusterRequest req = SWARM__UPDATE_CLUSTER_REQUEST__INIT;
        struct swarm_spec_parts parts;
        struct cli_reply r;
        req.cluster_id = cl->id;
        req.cluster_version = cl->meta != NULL ? cl->meta->version : 0;
        swarm_spec_borrow(cl->spec, &parts);
        req.spec = cl->spec;
        if (edit(ctx, cl, &req, data) != 0) {
            swarm_spec_return(cl->spec, &parts);
            cli_cmd_free(list);
            return NULL;
        }
        int rv = cli_conn_call(ctx->conn, &swarm__control__descriptor,
                               "UpdateCluster", &req.base, &r);
        swarm_spec_return(cl->spec, &parts);
        cli_cmd_free(list);
        if (rv == 0) {
            return (Swarm__UpdateClusterResponse *)r.resp;
        }
        if (attempt == 1 || !cli_cmd_is_conflict(r.status)) {
            cli_conn_report(ctx->conn, &r, ctx->err);
            return NULL;
        }
    }
    return NULL;
}

struct swarm_update_args {
    const struct cli_spec *spec;
    const struct swarm_spec_opts *opts;
};

static int swarm_update_edit(struct cli_ctx *ctx, Swarm__Cluster *cl,
                             Swarm__UpdateClusterRequest *req, void *data)
{
    struct swarm_update_args *a = data;
    if (swarm_spec_apply(ctx, a->spec, a->opts, cl->spec) != 0) {
        return 1;
    }
    return swarm_spec_check(ctx, cl->spec);
}

static int cmd_swarm_update(struct cli_ctx *ctx, int argc, char **argv)
{
    struct swarm_spec_opts so = {0};
    struct cli_flag flags[] = {SWARM_SPEC_FLAGS(&so), {0}};
    struct cli_spec spec = {"swarmctl swarm update", "[OPTIONS]", "Update the swarm",
                            NULL, CLI_ARGS_NONE, 0, 0, flags};
    struct swarm_update_args args = {&spec, &so};
    char **pos;
    int npos, rc;
    if (!cli_cmd_parse(ctx, &spec, argc, argv, &pos, &npos, &rc)) {
        return rc;
    }
    free(pos);
    Swarm__UpdateClusterResponse *resp = swarm_update_cluster(ctx, swarm_update_edit, &args);
    if (resp == NULL) {
        return 1;
    }
    fputs("Swarm updated.\n", ctx->out);
    cli_cmd_free(resp);
    return 0;
}

/* ------------------------------------------------------------ join-token */

static int swarm_rotate_edit(struct cli_ctx *ctx, Swarm__Cluster *cl,
                             Swarm__UpdateClusterRequest *req, void *data)
{
    static Swarm__KeyRotation rot;
    swarm__key_rotation__init(&rot);
    rot.worker_join_token = !*(bool *)data;
    rot.manager_join_token = *(bool *)data;
    req->rotation = &rot;
    return 0;
}

/* The address others join at: this manager's own advertised address, as
 * Docker prints it; else the first known manager, else the node address. */
static char *swarm_join_addr(struct cli_ctx *ctx)
{
    Swarm__InfoResponse *info = cli_cmd_info(ctx);
    Swarm__GetNodeRequest req = SWARM__GET_NODE_REQUEST__INIT;
    struct cli_reply r;
    char *addr = NULL;
    if (info == NULL) {
        return NULL;
    }
    req.node_id = info->node_id;
    if (cli_conn_call(ctx->conn, &swarm__control__descriptor, "GetNode", &req.base, &r) == 0) {
        Swarm__Node *n = ((Swarm__GetNodeResponse *)r.resp)->node;
        if (n != NULL && n->manager_status != NULL && *n->manager_status->addr) {
            addr = strdup(n->manager_status->addr);
        }
        cli_cmd_free(r.resp);
    }
    if (addr == NULL) {
        addr = strdup(info->n_manager_addrs > 0 ? info->manager_addrs[0] : info->node_addr);
    }
    cli_cmd_free(info);
    return addr;
}

static int swarm_print_token(struct cli_ctx *ctx, const Swarm__Cluster *cl,
                             bool manager, bool quiet)
{
    const Swarm__JoinTokens *t = cl->root_ca != NULL ? cl->root_ca->join_tokens : NULL;
    const char *token = t == NULL ? "" : manager ? t->manager : t->worker;
    if (quiet) {
        fprintf(ctx->out, "%s\n", token);
        return 0;
    }
    char *addr = swarm_join_addr(ctx);
    if (addr == NULL) {
        return 1;
    }
    cli_view_join_command(ctx->out, manager, token, addr);
    free(addr);
    return 0;
}

static int cmd_swarm_join_token(struct cli_ctx *ctx, int argc, char **argv)
{
    bool quiet = false, rotate = false;
    struct cli_flag flags[] = {
        {'q', "quiet", CLI_FLAG_BOOL, &quiet, "Only display token", NULL, false},
        {0, "rotate", CLI_FLAG_BOOL, &rotate, "Rotate join token", NULL, false},
        {0},
    };
    struct cli_spec spec = {"swarmctl swarm join-token", "[OPTIONS] (worker|manager)",
                            "Manage join tokens", NULL, CLI_ARGS_EXACT, 1, 0, flags};
    char **pos;
    int npos, rc;
    if (!cli_cmd_parse(ctx, &spec, argc, argv, &pos, &npos, &rc)) {
        return rc;
    }
    const char *role = pos[0];
    free(pos);
    if (strcmp(role, "worker") != 0 && strcmp(role, "manager") != 0) {
        return cli_cmd_errorf(ctx, "unknown role %s", role);
    }
    bool manager = strcmp(role, "manager") == 0;
    if (rotate) {
        Swarm__UpdateClusterResponse *up = swarm_update_cluster(ctx, swarm_rotate_edit, &manager);
        if (up == NULL || up->cluster == NULL) {
            cli_cmd_free(up);
            return 1;
        }
        if (!quiet) {
            fprintf(ctx->out, "Successfully rotated %s join token.\n\n", role);
        }
        rc = swarm_print_token(ctx, up->cluster, manager, quiet);
        cli_cmd_free(up);
        return rc;
    }
    Swarm__ListClustersResponse *list = swarm_get_cluster(ctx);
    if (list == NULL) {
        return 1;
    }
    rc = swarm_print_token(ctx, list->clusters[0], manager, quiet);
    cli_cmd_free(list);
    return rc;
}

/* -------------------------------------------------------------------- ca */

struct swarm_ca_args {
    const struct cli_spec *spec;
    const struct swarm_spec_opts *opts;
    char *cert, *key;  /* file contents, or NULL */
    size_t cert_len, key_len;
};

/* docker/cli's updateSwarmSpec: the given root (and key), else a forced
 * rotation to a new root; --cert-expiry applies to what is issued next. */
static int swarm_ca_edit(struct cli_ctx *ctx, Swarm__Cluster *cl,
                         Swarm__UpdateClusterRequest *req, void *data)
{
    struct swarm_ca_args *a = data;
    if (swarm_spec_apply(ctx, a->spec, a->opts, cl->spec) != 0) {
        return 1;
    }
    /* Copies: the cluster read (and these with it) is freed after the call. */
    Swarm__CAConfig *ca = cl->spec->ca_config;
    if (a->cert != NULL && (ca->signing_ca_cert.data = malloc(a->cert_len)) != NULL) {
        memcpy(ca->signing_ca_cert.data, a->cert, a->cert_len);
        ca->signing_ca_cert.len = a->cert_len;
    }
    if (a->key != NULL && (ca->signing_ca_key.data = malloc(a->key_len)) != NULL) {
        memcpy(ca->signing_ca_key.data, a->key, a->key_len);
        ca->signing_ca_key.len = a->key_len;
    }
    if (a->cert == NULL && a->key == NULL) {
        ca->force_rotate++;
    }
    return 0;
}

/* The PEM file a flag names, read whole. Returns 0, or 1 after an error. */
static int swarm_ca_read_pem(struct cli_ctx *ctx, const char *flag, const char *path,
                             char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0;
    if (f == NULL) {
        return cli_cmd_errorf(ctx, "invalid argument \"%s\" for \"--%s\" flag: open %s: %s",
                              path, flag, path, strerror(errno));
    }
    for (;;) {
        if (n == cap) {
            if (cap >= (1u << 20) || vec_grow(buf, cap, n < 4096 ? 4096 : n + 1) != 0) {
                free(buf);
                fclose(f);
                return cli_cmd_errorf(ctx, "invalid argument \"%s\" for \"--%s\" flag: "
                                           "file too large", path, flag);
            }
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            break;
        }
    }
    fclose(f);
    if (n == 0 || memmem(buf, n, "-----BEGIN ", 11) == NULL) {
        free(buf);
        return cli_cmd_errorf(ctx, "invalid argument \"%s\" for \"--%s\" flag: file "
                                   "contents must be in PEM format", path, flag);
    }
    *out = buf;
    *len = n;
    return 0;
}

/* docker/cli's displayTrustRoot: the root PEM, trimmed, and a newline. */
static void swarm_ca_print_root(struct cli_ctx *ctx, const ProtobufCBinaryData *pem)
{
    size_t n = pem != NULL ? pem->len : 0;
    while (n > 0 && (pem->data[n - 1] == '\n' || pem->data[n - 1] == ' ')) {
        n--;
    }
    if (n > 0) {
        fwrite(pem->data, 1, n, ctx->out);
    }
    fputc('\n', ctx->out);
}

/* Redraw the three progress lines (in place on a terminal; only changed
 * lines elsewhere). */
static void swarm_ca_draw(struct cli_ctx *ctx, bool tty, char (*shown)[CLI_PROGRESS_LINE],
                          bool *drawn, char (*lines)[CLI_PROGRESS_LINE])
{
    if (tty && *drawn) {
        fputs("\033[3A", ctx->out);
    }
    for (int i = 0; i < 3; i++) {
        if (tty) {
            fprintf(ctx->out, "\033[2K%s\n", lines[i]);
        } else if (!*drawn || strcmp(shown[i], lines[i]) != 0) {
            fprintf(ctx->out, "%s\n", lines[i]);
        }
    }
    memcpy(shown, lines, 3 * sizeof *lines);
    *drawn = true;
    fflush(ctx->out);
}

/* Poll the cluster and the nodes until the rotation is over everywhere
 * (docker/cli's RootRotationProgress, 200 ms apart). Returns 0, or 1 after
 * an error. */
static int swarm_ca_wait(struct cli_ctx *ctx, bool quiet)
{
    bool tty = isatty(fileno(ctx->out)) == 1, drawn = false;
    char shown[3][CLI_PROGRESS_LINE], lines[3][CLI_PROGRESS_LINE];
    struct timespec pause = {0, 200 * 1000000L};
    for (;;) {
        Swarm__ListNodesRequest nreq = SWARM__LIST_NODES_REQUEST__INIT;
        struct cli_ca_progress p;
        Swarm__ListClustersResponse *list = swarm_get_cluster(ctx);
        if (list == NULL) {
            return 1;
        }
        Swarm__ListNodesResponse *nodes =
            (Swarm__ListNodesResponse *)cli_cmd_control(ctx, "ListNodes", &nreq.base);
        if (nodes == NULL) {
            cli_cmd_free(list);
            return 1;
        }
        int rv = cli_ca_progress_eval(list->clusters[0], nodes->nodes, nodes->n_nodes, &p);
        if (rv == 0 && !quiet) {
            cli_ca_progress_render(&p, lines);
            swarm_ca_draw(ctx, tty, shown, &drawn, lines);
        }
        if (rv == 0 && p.done && !quiet) {
            swarm_ca_print_root(ctx, cli_ca_desired_root(list->clusters[0]));
        }
        cli_cmd_free(nodes);
        cli_cmd_free(list);
        if (rv != 0) {
            return cli_cmd_errorf(ctx, "the cluster has no readable root CA");
        }
        if (p.done) {
            return 0;
        }
        nanosleep(&pause, NULL);
    }
}

static int cmd_swarm_ca(struct cli_ctx *ctx, int argc, char **argv)
{
    struct swarm_spec_opts so = {0};
    const char *cert_file = NULL, *key_file = NULL;
    bool rotate = false, quiet = false, detach = false;
    struct cli_flag flags[] = {
        {0, "ca-cert", CLI_FLAG_STRING, &cert_file,
         "Path to the PEM-formatted root CA certificate to use for the new cluster", NULL, false},
        {0, "ca-key", CLI_FLAG_STRING, &key_file,
         "Path to the PEM-formatted root CA key to use for the new cluster", NULL, false},
        {0, "cert-expiry", CLI_FLAG_DURATION, &so.cert_expiry_ns,
         "Validity period for node certificates (ns|us|ms|s|m|h) (default 2160h0m0s)", NULL,
         false},
        {'d', "detach", CLI_FLAG_BOOL, &detach,
         "Exit immediately instead of waiting for the root rotation to converge", NULL, false},
        {'q', "quiet", CLI_FLAG_BOOL, &quiet, "Suppress progress output", NULL, false},
        {0, "rotate", CLI_FLAG_BOOL, &rotate,
         "Rotate the swarm CA - if no certificate or key are provided, new ones will be "
         "generated", NULL, false},
        {0},
    };
    struct cli_spec spec = {"swarmctl swarm ca", "[OPTIONS]",
                            "Display and rotate the root CA", NULL, CLI_ARGS_NONE, 0, 0, flags};
    struct swarm_ca_args args = {&spec, &so, NULL, NULL, 0, 0};
    char **pos;
    int npos, rc;
    if (!cli_cmd_parse(ctx, &spec, argc, argv, &pos, &npos, &rc)) {
        return rc;
    }
    free(pos);
    if (!rotate) {
        static const char *const need_rotate[] = {"ca-cert", "ca-key", "cert-expiry"};
        for (size_t i = 0; i < 3; i++) {
            if (cli_flag_changed(&spec, need_rotate[i])) {
                return cli_cmd_errorf(ctx, "`--%s` flag requires the `--rotate` flag to update "
                                           "the CA", need_rotate[i]);
            }
        }
        Swarm__ListClustersResponse *list = swarm_get_cluster(ctx);
        if (list == NULL) {
            return 1;
        }
        const Swarm__RootCA *ca = list->clusters[0]->root_ca;
        swarm_ca_print_root(ctx, ca != NULL ? &ca->ca_cert_pem : NULL);
        cli_cmd_free(list);
        return 0;
    }
    if (cert_file != NULL && key_file == NULL) {
        return cli_cmd_errorf(ctx, "the --ca-cert flag requires that a --ca-key flag and/or "
                                   "--external-ca flag be provided as well");
    }
    if ((cert_file != NULL &&
         swarm_ca_read_pem(ctx, "ca-cert", cert_file, &args.cert, &args.cert_len) != 0) ||
        (key_file != NULL &&
         swarm_ca_read_pem(ctx, "ca-key", key_file, &args.key, &args.key_len) != 0)) {
        free(args.cert);
        return 1;
    }
    Swarm__UpdateClusterResponse *resp = swarm_update_cluster(ctx, swarm_ca_edit, &args);
    if (args.key != NULL) {
        memset(args.key, 0, args.key_len);
    }
    free(args.cert);
    free(args.key);
    if (resp == NULL) {
        return 1;
    }
    if (detach) {
        const Swarm__RootCA *ca = resp->cluster != NULL ? resp->cluster->root_ca : NULL;
        if (!quiet) {
            swarm_ca_print_root(ctx, ca != NULL ? &ca->ca_cert_pem : NULL);
        }
        cli_cmd_free(resp);
        return 0;
    }
    cli_cmd_free(resp);
    return swarm_ca_wait(ctx, quiet);
}

const struct cli_command cli_swarm_commands[] = {
    {"ca", NULL, "Display and rotate the root CA", cmd_swarm_ca, NULL},
    {"init", NULL, "Initialize a swarm", cmd_swarm_init, NULL},
    {"join", NULL, "Join a swarm as a node and/or manager", cmd_swarm_join, NULL},
    {"join-token", NULL, "Manage join tokens", cmd_swarm_join_token, NULL},
    {"leave", NULL, "Leave the swarm", cmd_swarm_leave, NULL},
    {"update", NULL, "Update the swarm", cmd_swarm_update, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};
