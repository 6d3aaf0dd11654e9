/* See node.h.
 *
 * Node states: INACTIVE (no swarm) -> PENDING (init running) -> ACTIVE, or
 * back to INACTIVE when init fails (the manager removes what it wrote).
 * ACTIVE -> INACTIVE on `swarm leave --force`, which erases the swarm state.
 *
 * swarm init:  InitSwarm -> validate -> manager_init_cluster -> ... ->
 *              init_ready_cb(0) -> reply (node ID, worker token, address). */
#include "node_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "allocator.h"
#include "api.h"
#include "err.h"
#include "executor.h"
#include "image.h"
#include "hostinfo.h"
#include "join.h"
#include "localstate.h"
#include "localstate.pb-c.h"
#include "log.h"
#include "pbcopy.h"
#include "manager/manager.h"
#include "pki.h"
#include "pkichain.h"
#include "smetrics.h"
#include "vizstate.h"
#include "statedir.h"
#include "specvalid.h"
#include "swarm.pb-c.h"

struct manager_config node_manager_cfg(struct swarm_node *n)
{
    struct manager_config cfg = {
        .state_dir = n->state_dir,
        .hostname = n->hostname[0] ? n->hostname : NULL,
        .api = n->api,
        .slot = &n->mslot,
        .insecure_registries = n->insecure_registries,
        .n_insecure_registries = n->n_insecure_registries,
        .changed_cb = n->changed_cb,
        .changed_data = n->changed_data,
    };
    return cfg;
}

/* The node is (again) in a swarm: run its agent. A failure is logged; the
 * node still serves, and `swarmctl info` shows the error. */
static void start_agent(struct swarm_node *n)
{
    char errmsg[SWARM_ERRMSG_SIZE] = "";
    if (node_agent_start(n, errmsg) != 0) {
        log_error("node", "agent: %s", errmsg);
        snprintf(n->error, sizeof n->error, "agent: %s", errmsg);
    }
}

/* -------------------------------------------------------------- init */

static void init_reply(struct swarm_node *n, struct manager *m)
{
    Swarm__InitResponse resp = SWARM__INIT_RESPONSE__INIT;
    const Swarm__LocalState *ls = manager_local_state(m);
    struct api_call *call = n->pending_call;
    char *token = manager_worker_token(m);

    n->pending_call = NULL;
    resp.node_id = ls->node_id;
    resp.join_addr = ls->advertise_addr;
    resp.worker_join_token = token != NULL ? token : "";
    api_call_reply(call, &resp.base);
    free(token);
}

static void failed_init_closed_cb(void *data)
{
    struct swarm_node *n = data;
    n->state = NODE_INACTIVE;
}

static void init_ready_cb(struct manager *m, int status, const char *errmsg, void *data)
{
    struct swarm_node *n = data;
    if (status == 0) {
        n->state = NODE_ACTIVE;
        init_reply(n, m);
        start_agent(n);
        return;
    }
    log_error("node", "swarm init failed: %s", errmsg ? errmsg : swarm_strerror(status));
    api_call_error(n->pending_call, API_INTERNAL, "swarm init failed: %s",
                   errmsg ? errmsg : swarm_strerror(status));
    n->pending_call = NULL;
    n->mslot.m = NULL;
    api_server_close_tls(n->api);
    manager_close(m, failed_init_closed_cb, n);
}

static int spec_check(const Swarm__ClusterSpec *spec, char *errmsg)
{
    if (spec == NULL) {
        return 0;
    }
    if (spec_validate_cluster(spec, errmsg) != 0) {
        return SWARM_EINVAL;
    }
    if (spec->orchestration && spec->orchestration->task_history_retention_limit < 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "task history limit must be >= 0");
        return SWARM_EINVAL;
    }
    if (spec->dispatcher && spec->dispatcher->heartbeat_period_ms != 0 &&
        spec->dispatcher->heartbeat_period_ms < 100) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "dispatcher heartbeat period must be at least 100ms");
        return SWARM_EINVAL;
    }
    if (spec->ca_config && spec->ca_config->node_cert_expiry_s != 0 &&
        pki_check_cert_expiry(spec->ca_config->node_cert_expiry_s, errmsg) != 0) {
        return SWARM_EINVAL;
    }
    return 0;
}

/* The advertised address: as given, else the listen IP if specific, else
 * this host's first non-loopback IPv4 address, else 127.0.0.1. */
static int choose_advertise(const char *given, const char *listen, char *out, char *errmsg)
{
    char ip[ADDR_STRLEN];
    int port;
    addr_split(listen, ip, &port);
    if (given != NULL && given[0] != '\0') {
        return addr_parse(given, port, "advertise address", out, errmsg);
    }
    if (!addr_is_unspecified(ip)) {
        snprintf(out, ADDR_STRLEN, "%s", listen);
        return 0;
    }
    uv_interface_address_t *ifs;
    int count;
    snprintf(out, ADDR_STRLEN, "127.0.0.1:%d", port);
    if (uv_interface_addresses(&ifs, &count) == 0) {
        for (int i = 0; i < count; i++) {
            if (!ifs[i].is_internal && ifs[i].address.address4.sin_family == AF_INET) {
                char a[ADDR_STRLEN];
                uv_ip4_name(&ifs[i].address.address4, a, sizeof a);
                snprintf(out, ADDR_STRLEN, "%s:%d", a, port);
                break;
            }
        }
        uv_free_interface_addresses(ifs, count);
    }
    return 0;
}

static void force_new_cluster(struct swarm_node *n, struct api_call *call);

/* --default-addr-pool and its mask length, with Docker's messages. */
static int pool_check(const Swarm__InitRequest *req, char *errmsg)
{
    const struct alloc_pool_config pc = {req->default_addr_pool, req->n_default_addr_pool,
                                         req->default_addr_pool_mask_length};
    return alloc_pool_validate(&pc, errmsg);
}

static void init_swarm_cb(struct api_call *call, const ProtobufCMessage *msg, void *data)
{
    const Swarm__InitRequest *req = (const Swarm__InitRequest *)msg;
    struct swarm_node *n = data;
    struct manager_config cfg = node_manager_cfg(n);
    char errmsg[SWARM_ERRMSG_SIZE] = "";
    char listen[ADDR_STRLEN], advertise[ADDR_STRLEN];
    struct manager *m = NULL;
    int rv;

    if (n->state == NODE_PENDING) {
        api_call_error(call, API_FAILED_PRECONDITION, "%s", NODE_MSG_PENDING);
        return;
    }
    if (n->state == NODE_ACTIVE) {
        if (req->force_new_cluster && n->mslot.m != NULL) {
            force_new_cluster(n, call);
            return;
        }
        api_call_error(call, API_FAILED_PRECONDITION, "%s", NODE_MSG_ALREADY_IN_SWARM);
        return;
    }
    if (req->availability > SWARM__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN) {
        api_call_error(call, API_INVALID_ARGUMENT, "invalid availability");
        return;
    }
    if ((rv = addr_parse(req->listen_addr[0] ? req->listen_addr : n->listen_addr,
                         ADDR_DEFAULT_PORT, "listen address", listen, errmsg)) != 0 ||
        (rv = choose_advertise(req->advertise_addr, listen, advertise, errmsg)) != 0 ||
        (rv = spec_check(req->spec, errmsg)) != 0 || (rv = pool_check(req, errmsg)) != 0) {
        api_call_error(call, API_INVALID_ARGUMENT, "%s", errmsg);
        return;
    }
    n->state = NODE_PENDING;
    n->pending_call = call;
    rv = manager_init_cluster(n->loop, &cfg, req, listen, advertise, init_ready_cb, n, &m, errmsg);
    n->mslot.m = m;
    if (rv != 0) {
        init_ready_cb(m, rv, errmsg, n);
    }
}

/* ------------------------------------------------- force-new-cluster */

struct force_ctx {
    struct swarm_node *n;
    struct api_call *call;
    Swarm__LocalState *state;
};

static void forced_ready_cb(struct manager *m, int status, const char *errmsg, void *data)
{
    struct force_ctx *f = data;
    struct swarm_node *n = f->n;
    n->pending_call = f->call;
    swarm__local_state__free_unpacked(f->state, NULL);
    free(f);
    if (status != 0) {
        api_call_error(n->pending_call, API_INTERNAL, "force-new-cluster failed: %s",
                       errmsg ? errmsg : swarm_strerror(status));
        n->pending_call = NULL;
        n->state = NODE_ERROR;
        snprintf(n->error, sizeof n->error, "%s", errmsg ? errmsg : swarm_strerror(status));
        return;
    }
    n->state = NODE_ACTIVE;
    init_reply(n, m);
}

static void forced_closed_cb(void *data)
{
    struct force_ctx *f = data;
    struct swarm_node *n = f->n;
    struct manager_config cfg = node_manager_cfg(n);
    char errmsg[SWARM_ERRMSG_SIZE] = "";
    struct manager *m = NULL;
    int rv = manager_open(n->loop, &cfg, f->state, true, forced_ready_cb, f, &m, errmsg);
    n->mslot.m = m;
    if (rv != 0) {
        forced_ready_cb(m, rv, errmsg, f);
    }
}

static void force_new_cluster(struct swarm_node *n, struct api_call *call)
{
    struct force_ctx *f = calloc(1, sizeof *f);
    struct manager *m = n->mslot.m;
    if (f == NULL) {
        api_call_error(call, API_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    f->n = n;
    f->call = call;
    f->state = manager_local_state_copy(m);
    n->state = NODE_PENDING;
    n->mslot.m = NULL;
    api_server_close_tls(n->api);
    manager_close(m, forced_closed_cb, f);
}

/* -------------------------------------------------------------- join */

#define JOIN_CATCH_UP_MS 20000

struct join_ctx {
    char remote[ADDR_STRLEN];
    char listen[ADDR_STRLEN];
    char advertise[ADDR_STRLEN];
    Swarm__NodeDescription *description;
};

static void join_ctx_free(struct join_ctx *jc)
{
    if (jc == NULL) {
        return;
    }
    if (jc->description != NULL) {
        swarm__node_description__free_unpacked(jc->description, NULL);
    }
    free(jc);
}

Swarm__LocalState *node_local_state_copy(const Swarm__LocalState *ls)
{
    return pb_copy(&ls->base);
}

static void erase_swarm_state(struct swarm_node *n);

static void join_reply(struct swarm_node *n)
{
    Swarm__JoinResponse resp = SWARM__JOIN_RESPONSE__INIT;
    struct api_call *call = n->pending_call;
    n->pending_call = NULL;
    n->state = NODE_ACTIVE;
    resp.role = n->join_role;
    api_call_reply(call, &resp.base);
    start_agent(n);
}

static void join_wait_cb(uv_timer_t *t)
{
    struct swarm_node *n = t->data;
    if (n->mslot.m == NULL) {
        uv_timer_stop(t);
        return;
    }
    if (manager_caught_up(n->mslot.m) ||
        uv_now(n->loop) - n->join_started > JOIN_CATCH_UP_MS) {
        if (!manager_caught_up(n->mslot.m)) {
            log_warn("node", "joined, but the store has not caught up with the leader yet");
        }
        uv_timer_stop(t);
        join_reply(n);
    }
}

static int encode_chain(void *obj, char **pem, size_t *len)
{
    void **pair = obj;
    return pki_chain_to_pem(pair[0], pair[1], pem, len);
}

int node_write_certs(struct swarm_node *n, X509 *root, X509 *cert, STACK_OF(X509) *chain,
                     EVP_PKEY *key, char *errmsg)
{
    void *leaf_chain[2] = {cert, chain};
    char path[PATH_MAX];
    char *pem;
    size_t len;
    int rv;
    struct {
        const char *name;
        int (*encode)(void *, char **, size_t *);
        void *obj;
    } files[] = {
        {STATEDIR_ROOT_CA_CERT, (int (*)(void *, char **, size_t *))pki_cert_to_pem, root},
        {STATEDIR_NODE_CERT, encode_chain, leaf_chain},
        {STATEDIR_NODE_KEY, (int (*)(void *, char **, size_t *))pki_key_to_pem, key},
    };
    snprintf(path, sizeof path, "%s/" STATEDIR_CERTS, n->state_dir);
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "mkdir %s: %s", path, strerror(errno));
        return SWARM_EIO;
    }
    /* The key last: a crash in between leaves an old key with a new
     * certificate at worst, which the next start refuses loudly. */
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", n->state_dir, files[i].name);
        if ((rv = files[i].encode(files[i].obj, &pem, &len)) != 0) {
            return rv;
        }
        rv = pki_write_file(path, pem, len, 0600, errmsg);
        free(pem);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

int node_local_state_save(struct swarm_node *n, const Swarm__LocalState *ls, char *errmsg)
{
    return localstate_save(n->state_dir, ls, errmsg);
}

static int write_join_files(struct swarm_node *n, struct join_result *res,
                            Swarm__LocalState *ls, char *errmsg)
{
    int rv = node_write_certs(n, res->root, res->cert, res->chain, res->key, errmsg);
    return rv != 0 ? rv : node_local_state_save(n, ls, errmsg);
}

static void joined_manager_ready_cb(struct manager *m, int status, const char *errmsg, void *data)
{
    struct swarm_node *n = data;
    if (status != 0) {
        api_call_error(n->pending_call, API_INTERNAL, "joined, but the manager failed to start: %s",
                       errmsg ? errmsg : swarm_strerror(status));
        n->pending_call = NULL;
        n->state = NODE_ERROR;
        snprintf(n->error, sizeof n->error, "%s", errmsg ? errmsg : swarm_strerror(status));
        return;
    }
    n->join_started = uv_now(n->loop);
    uv_timer_start(&n->join_timer, join_wait_cb, 0, 50);
}

static void joined_cb(int status, const char *errmsg, struct join_result *res, void *data)
{
    struct swarm_node *n = data;
    struct join_ctx *jc = n->join_ctx;
    char emsg[SWARM_ERRMSG_SIZE] = "";
    Swarm__LocalState ls = SWARM__LOCAL_STATE__INIT;
    char **managers = NULL;
    int rv;

    n->join_req = NULL;
    n->join_ctx = NULL;
    if (n->stopping) {
        /* The server still waits for this call (its grace period). */
        struct api_call *call = n->pending_call;
        n->pending_call = NULL;
        api_call_error(call, API_UNAVAILABLE, "the node is shutting down");
    }
    if (node_call_end(n)) {
        join_result_free(res);
        join_ctx_free(jc);
        return;
    }
    if (status != 0) {
        api_call_error(n->pending_call,
                       status == SWARM_ETOKEN ? API_INVALID_ARGUMENT : API_UNAVAILABLE, "%s",
                       errmsg ? errmsg : swarm_strerror(status));
        n->pending_call = NULL;
        n->state = NODE_INACTIVE;
        join_ctx_free(jc);
        return;
    }
    managers = calloc(res->resp->n_managers + 1, sizeof *managers);
    if (managers == NULL) {
        api_call_error(n->pending_call, API_RESOURCE_EXHAUSTED, "out of memory");
        n->pending_call = NULL;
        n->state = NODE_INACTIVE;
        join_result_free(res);
        join_ctx_free(jc);
        return;
    }
    for (size_t i = 0; i < res->resp->n_managers; i++) {
        managers[ls.n_managers++] = res->resp->managers[i]->addr;
    }
    ls.node_id = res->resp->node_id;
    ls.cluster_id = res->resp->cluster_id;
    ls.role = res->resp->role;
    ls.raft_id = res->resp->raft_id;
    ls.listen_addr = jc->listen;
    ls.advertise_addr = jc->advertise;
    ls.managers = managers;
    n->join_role = res->resp->role;
    rv = write_join_files(n, res, &ls, emsg);
    if (rv == 0 && ls.role != SWARM__NODE_ROLE__NODE_ROLE_MANAGER &&
        (n->worker_state = node_local_state_copy(&ls)) == NULL) {
        errmsg_printf(emsg, SWARM_ERRMSG_SIZE, "out of memory");
        rv = SWARM_ENOMEM;
    }
    if (rv != 0) {
        erase_swarm_state(n);
        api_call_error(n->pending_call, API_INTERNAL, "could not save the node's state: %s", emsg);
        n->pending_call = NULL;
        n->state = NODE_INACTIVE;
    } else if (ls.role == SWARM__NODE_ROLE__NODE_ROLE_MANAGER) {
        struct manager_config cfg = node_manager_cfg(n);
        struct manager *m = NULL;
        cfg.seed_peers = res->resp->managers;
        cfg.n_seed_peers = res->resp->n_managers;
        rv = manager_open(n->loop, &cfg, &ls, false, joined_manager_ready_cb, n, &m, emsg);
        n->mslot.m = m;
        if (rv != 0) {
            joined_manager_ready_cb(m, rv, emsg, n);
        }
    } else {
        n->mslot.worker = true; /* worker_state was copied above */
        join_reply(n);
    }
    free(managers);
    join_result_free(res);
    join_ctx_free(jc);
}

static void join_swarm_cb(struct api_call *call, const ProtobufCMessage *msg, void *data)
{
    const Swarm__JoinRequest *req = (const Swarm__JoinRequest *)msg;
    struct swarm_node *n = data;
    char errmsg[SWARM_ERRMSG_SIZE] = "";
    struct join_ctx *jc;
    struct join_params p = {0};
    int rv;

    if (n->state == NODE_PENDING) {
        api_call_error(call, API_FAILED_PRECONDITION, "%s", NODE_MSG_PENDING);
        return;
    }
    if (n->state != NODE_INACTIVE) {
        api_call_error(call, API_FAILED_PRECONDITION, "%s", NODE_MSG_ALREADY_IN_SWARM);
        return;
    }
    jc = calloc(1, sizeof *jc);
    if (jc == NULL) {
        api_call_error(call, API_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    if ((rv = addr_parse(req->remote_addr, ADDR_DEFAULT_PORT, "remote address", jc->remote,
                         errmsg)) != 0 ||
        (rv = addr_parse(req->listen_addr[0] ? req->listen_addr : n->listen_addr,
                         ADDR_DEFAULT_PORT, "listen address", jc->listen, errmsg)) != 0 ||
        (rv = choose_advertise(req->advertise_addr, jc->listen, jc->advertise, errmsg)) != 0) {
        api_call_error(call, API_INVALID_ARGUMENT, "%s", errmsg);
        free(jc);
        return;
    }
    if (req->availability > SWARM__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN) {
        api_call_error(call, API_INVALID_ARGUMENT, "invalid availability");
        free(jc);
        return;
    }
    jc->description = hostinfo_describe(n->hostname[0] ? n->hostname : NULL);
    if (jc->description == NULL) {
        api_call_error(call, API_RESOURCE_EXHAUSTED, "out of memory");
        free(jc);
        return;
    }
    p.remote_addr = jc->remote;
    p.token = req->join_token;
    p.advertise_addr = jc->advertise;
    p.availability = req->availability;
    p.description = jc->description;
    n->state = NODE_PENDING;
    n->pending_call = call;
    n->join_ctx = jc;
    rv = join_start(n->loop, &p, joined_cb, n, &n->join_req, errmsg);
    if (rv == 0) {
        n->calls_pending++;
    } else {
        n->join_ctx = NULL;
        n->pending_call = NULL;
        n->state = NODE_INACTIVE;
        api_call_error(call, rv == SWARM_ETOKEN ? API_INVALID_ARGUMENT : API_UNAVAILABLE, "%s",
                       errmsg);
        join_ctx_free(jc);
    }
}

/* -------------------------------------------------------------- leave */

/* Erase everything a swarm left in the state dir; keep the dir and socket. */
static void erase_swarm_state(struct swarm_node *n)
{
    (void)statedir_erase(n->state_dir, STATEDIR_PART_SWARM);
}

static void left_cb(void *data)
{
    struct swarm_node *n = data;
    Swarm__LeaveResponse resp = SWARM__LEAVE_RESPONSE__INIT;
    struct api_call *call = n->pending_call;
    n->pending_call = NULL;
    erase_swarm_state(n);
    n->state = NODE_INACTIVE;
    log_info("node", "left the swarm");
    api_call_reply(call, &resp.base);
}

static void removed_left_cb(void *data)
{
    struct swarm_node *n = data;
    erase_swarm_state(n);
    n->state = NODE_INACTIVE;
    log_info("node", "removed from the swarm: its tasks are stopped and it left the swarm");
}

void node_leave_removed(struct swarm_node *n)
{
    /* Only a worker: a manager cannot be removed before its demotion. */
    if (n->stopping || n->state != NODE_ACTIVE || n->worker_state == NULL ||
        n->mslot.m != NULL || n->role_switching) {
        return;
    }
    swarm__local_state__free_unpacked(n->worker_state, NULL);
    n->worker_state = NULL;
    n->mslot.worker = false;
    n->state = NODE_PENDING;
    node_agent_stop(n, true, removed_left_cb, n);
}

static void leave_manager_cb(void *data)
{
    struct swarm_node *n = data;
    struct manager *m = n->mslot.m;
    n->mslot.m = NULL;
    api_server_close_tls(n->api);
    if (m == NULL) {
        left_cb(n);
        return;
    }
    manager_close(m, left_cb, n);
}

static void leave_swarm_cb(struct api_call *call, const ProtobufCMessage *msg, void *data)
{
    const Swarm__LeaveRequest *req = (const Swarm__LeaveRequest *)msg;
    struct swarm_node *n = data;
    struct manager *m = n->mslot.m;

    if (n->state == NODE_PENDING) {
        api_call_error(call, API_FAILED_PRECONDITION, "%s", NODE_MSG_PENDING);
        return;
    }
    if (n->state == NODE_ACTIVE && n->worker_state != NULL) {
        swarm__local_state__free_unpacked(n->worker_state, NULL);
        n->worker_state = NULL;
        n->mslot.worker = false;
        n->pending_call = call;
        n->state = NODE_PENDING;
        node_agent_stop(n, true, left_cb, n);
        return;
    }
    if (n->state == NODE_INACTIVE || m == NULL) {
        api_call_error(call, API_FAILED_PRECONDITION, "%s", NODE_MSG_NOT_IN_SWARM);
        return;
    }
    if (!req->force) {
        Swarm__InfoResponse info = SWARM__INFO_RESPONSE__INIT;
        manager_fill_info(m, &info);
        uint32_t managers = info.managers;
        free(info.raft_state);
        free(info.leader_addr);
        for (size_t i = 0; i < info.n_manager_addrs; i++) {
            free(info.manager_addrs[i]);
        }
        free(info.manager_addrs);
        if (info.cluster_spec != NULL) {
            swarm__cluster_spec__free_unpacked(info.cluster_spec, NULL);
        }
        if (managers <= 1) {
            api_call_error(call, API_FAILED_PRECONDITION, "%s", NODE_MSG_LAST_MANAGER);
        } else {
            /* Docker's words; the quorum sentence only when it applies. */
            api_call_error(call, API_FAILED_PRECONDITION,
                           "You are attempting to leave the swarm on a node that is "
                           "participating as a manager. Removing this node leaves %u managers "
                           "out of %u.%s The only way to restore a swarm that has lost consensus "
                           "is to reinitialize it with `--force-new-cluster`. Use `--force` to "
                           "suppress this message.",
                           managers - 1, managers,
                           managers - 1 <= managers / 2
                               ? " Without a Raft quorum your swarm will be inaccessible."
                               : "");
        }
        return;
    }
    n->state = NODE_PENDING;
    n->pending_call = call;
    node_agent_stop(n, true, leave_manager_cb, n);
}

/* --------------------------------------------------------- info, version */

/* Replace a string field of a message that is freed with free_unpacked. */
static int node_info_set_str(char **field, const char *v)
{
    char *copy = strdup(v);
    if (copy == NULL) {
        return SWARM_ENOMEM;
    }
    if (*field != (char *)protobuf_c_empty_string) {
        free(*field);
    }
    *field = copy;
    return 0;
}

static void info_cb(struct api_call *call, const ProtobufCMessage *msg, void *data)
{
    struct swarm_node *n = data;
    Swarm__InfoResponse info = SWARM__INFO_RESPONSE__INIT;
    char ip[ADDR_STRLEN] = "";
    int port;

    info.hostname = n->hostname;
    info.version = SWARM_VERSION;
    switch (n->state) {
        case NODE_INACTIVE:
            info.state = SWARM__LOCAL_NODE_STATE__LOCAL_NODE_STATE_INACTIVE;
            break;
        case NODE_PENDING:
            info.state = SWARM__LOCAL_NODE_STATE__LOCAL_NODE_STATE_PENDING;
            break;
        case NODE_ERROR:
            info.state = SWARM__LOCAL_NODE_STATE__LOCAL_NODE_STATE_ERROR;
            info.error = n->error;
            break;
        case NODE_ACTIVE:
            info.state = SWARM__LOCAL_NODE_STATE__LOCAL_NODE_STATE_ACTIVE;
            break;
    }
    if (n->state == NODE_ACTIVE && n->mslot.m != NULL) {
        const Swarm__LocalState *ls = manager_local_state(n->mslot.m);
        Swarm__InfoResponse *filled = calloc(1, sizeof *filled);
        if (filled == NULL) {
            api_call_error(call, API_RESOURCE_EXHAUSTED, "out of memory");
            return;
        }
        swarm__info_response__init(filled);
        manager_fill_info(n->mslot.m, filled);
        filled->state = info.state;
        addr_split(ls->advertise_addr, ip, &port);
        if (node_info_set_str(&filled->hostname, n->hostname) != 0 ||
            node_info_set_str(&filled->version, SWARM_VERSION) != 0 ||
            node_info_set_str(&filled->node_id, ls->node_id) != 0 ||
            node_info_set_str(&filled->cluster_id, ls->cluster_id) != 0 ||
            node_info_set_str(&filled->node_addr, ip) != 0 ||
            (n->cert_error[0] != '\0' && node_info_set_str(&filled->error, n->cert_error) != 0)) {
            api_call_error(call, API_RESOURCE_EXHAUSTED, "out of memory");
        } else {
            filled->cert_not_after = n->cert_not_after;
            filled->cert_renew_at = n->cert_renew_at;
            /* Borrowed for the reply only (free_unpacked below must not see them). */
            filled->insecure_registries = (char **)n->insecure_registries;
            filled->n_insecure_registries = n->n_insecure_registries;
            api_call_reply(call, &filled->base);
            filled->insecure_registries = NULL;
            filled->n_insecure_registries = 0;
        }
        swarm__info_response__free_unpacked(filled, NULL);
        return;
    }
    if (n->state == NODE_ACTIVE && n->worker_state != NULL) {
        const Swarm__LocalState *ls = n->worker_state;
        info.node_id = ls->node_id;
        info.cluster_id = ls->cluster_id;
        addr_split(ls->advertise_addr, ip, &port);
        info.node_addr = ip;
        info.manager_addrs = ls->managers;
        info.n_manager_addrs = ls->n_managers;
        info.cert_not_after = n->cert_not_after;
        info.cert_renew_at = n->cert_renew_at;
        if (n->cert_error[0] != '\0') {
            info.error = n->cert_error;
        }
    }
    info.insecure_registries = (char **)n->insecure_registries;
    info.n_insecure_registries = n->n_insecure_registries;
    api_call_reply(call, &info.base);
}

static void version_cb(struct api_call *call, const ProtobufCMessage *msg, void *data)
{
    Swarm__VersionResponse resp = SWARM__VERSION_RESPONSE__INIT;
    uv_utsname_t uts;
    resp.version = SWARM_VERSION;
    resp.api_version = NODE_API_VERSION;
    if (uv_os_uname(&uts) == 0) {
        for (char *c = uts.sysname; *c; c++) {
            if (*c >= 'A' && *c <= 'Z') {
                *c = (char)(*c - 'A' + 'a');
            }
        }
        resp.os = uts.sysname;
        resp.arch = uts.machine;
    }
    api_call_reply(call, &resp.base);
}

/* -------------------------------------------------------------- start */

int node_local_state_load(struct swarm_node *n, Swarm__LocalState **out, char *errmsg)
{
    return localstate_load(n->state_dir, out, errmsg);
}

static void resume_ready_cb(struct manager *m, int status, const char *errmsg, void *data)
{
    struct swarm_node *n = data;
    if (status != 0) {
        n->state = NODE_ERROR;
        snprintf(n->error, sizeof n->error, "%s", errmsg ? errmsg : swarm_strerror(status));
        log_error("node", "manager failed to start: %s", n->error);
        return;
    }
    n->state = NODE_ACTIVE;
}

/* Where tasks' dirs go: out of the state dir, which tasks must not see. */
static int node_task_dir(struct swarm_node *n, const char *task_dir, char *errmsg)
{
    if (task_dir != NULL) {
        snprintf(n->task_dir, sizeof n->task_dir, "%s", task_dir);
    } else {
        size_t len = strlen(n->state_dir);
        while (len > 1 && n->state_dir[len - 1] == '/') {
            len--;
        }
        snprintf(n->task_dir, sizeof n->task_dir, "%.*s-tasks", (int)len, n->state_dir);
    }
    return executor_dirs_check(n->task_dir, n->state_dir, errmsg);
}

static int lock_state_dir(struct swarm_node *n, char *errmsg)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/swarmd.lock", n->state_dir);
    n->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (n->lock_fd < 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "%s: %s", path, strerror(errno));
        return SWARM_EIO;
    }
    if (flock(n->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "another swarmd is already using the state dir %s", n->state_dir);
        close(n->lock_fd);
        n->lock_fd = -1;
        return SWARM_ESTATE;
    }
    return 0;
}

/* --------------------------------------------------------------- images */

struct imgstore *node_images(struct swarm_node *n, char *errmsg)
{
    char dir[PATH_MAX];
    struct imgstore_opts opts = {
        .insecure_registries = n->insecure_registries,
        .n_insecure_registries = n->n_insecure_registries,
        .prune_after_s = n->image_prune_after_s,
    };
    if (n->images != NULL || n->stopping) {
        if (n->images == NULL) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "the node is stopping");
        }
        return n->images;
    }
    snprintf(dir, sizeof dir, "%s/images", n->state_dir);
    if (imgstore_open(n->loop, dir, &opts, &n->images, errmsg) != 0) {
        log_warn("node", "image store: %s", errmsg);
        n->images = NULL;
    }
    return n->images;
}

static void prune_images_cb(struct api_call *call, const ProtobufCMessage *msg, void *data)
{
    const Swarm__PruneImagesRequest *req = (const Swarm__PruneImagesRequest *)msg;
    struct swarm_node *n = data;
    Swarm__PruneImagesResponse resp = SWARM__PRUNE_IMAGES_RESPONSE__INIT;
    struct imgstore_prune_result r;
    char errmsg[SWARM_ERRMSG_SIZE];
    if (node_images(n, errmsg) == NULL) {
        api_call_error(call, API_FAILED_PRECONDITION, "image store: %s", errmsg);
        return;
    }
    if (req->until_s < 0) {
        api_call_error(call, API_INVALID_ARGUMENT, "invalid filter 'until': negative duration");
        return;
    }
    int rv = imgstore_prune(n->images, req->until_s, &r, errmsg);
    if (rv != 0) {
        api_call_error(call, rv == SWARM_EUNAVAIL ? API_UNAVAILABLE : API_INTERNAL, "%s", errmsg);
        return;
    }
    resp.deleted = r.deleted;
    resp.n_deleted = r.n_images;
    resp.space_reclaimed = r.bytes;
    resp.layers_deleted = (uint32_t)r.n_layers;
    resp.blobs_deleted = (uint32_t)r.n_blobs;
    api_call_reply(call, &resp.base);
    imgstore_prune_result_free(&r);
}

static void register_local_api(struct swarm_node *n)
{
    static const struct {
        const char *method;
        api_handler_cb cb;
    } methods[] = {
        {"InitSwarm", init_swarm_cb},
        {"JoinSwarm", join_swarm_cb},
        {"LeaveSwarm", leave_swarm_cb},
        {"Info", info_cb},
        {"Version", version_cb},
        {"PruneImages", prune_images_cb},
    };
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        api_server_register(n->api, &swarm__swarm__descriptor, methods[i].method, API_ROLE_LOCAL,
                            methods[i].cb, n);
    }
    node_volumes_register(n);
    manager_register_api(n->api, &n->mslot);
}

int node_start(uv_loop_t *loop, const struct node_config *cfg, struct swarm_node **out,
               char *errmsg)
{
    struct swarm_node *n = calloc(1, sizeof *n);
    Swarm__LocalState *ls = NULL;
    int rv;

    if (n == NULL) {
        return SWARM_ENOMEM;
    }
    n->loop = loop;
    n->lock_fd = -1;
    uv_timer_init(loop, &n->join_timer);
    uv_timer_init(loop, &n->renew_timer);
    n->renew_timer.data = n;
    n->join_timer.data = n;
    snprintf(n->state_dir, sizeof n->state_dir, "%s", cfg->state_dir);
    snprintf(n->socket_path, sizeof n->socket_path, "%s/swarmd.sock", cfg->state_dir);
    snprintf(n->executor, sizeof n->executor, "%s", cfg->executor ? cfg->executor : "process");
    n->insecure_registries = cfg->insecure_registries;
    n->n_insecure_registries = cfg->n_insecure_registries;
    n->changed_cb = cfg->changed_cb;
    n->changed_data = cfg->changed_data;
    n->image_prune_after_s = cfg->image_prune_after_s;
    if (cfg->hostname != NULL) {
        snprintf(n->hostname, sizeof n->hostname, "%s", cfg->hostname);
    } else {
        size_t len = sizeof n->hostname;
        uv_os_gethostname(n->hostname, &len);
    }
    rv = addr_parse(cfg->listen_addr, ADDR_DEFAULT_PORT, "listen address", n->listen_addr,
                    errmsg);
    if (rv != 0) {
        goto err;
    }
    if ((rv = statedir_prepare(n->state_dir, errmsg)) != 0) {
        goto err;
    }
    if ((rv = lock_state_dir(n, errmsg)) != 0) {
        goto err;
    }
    if ((rv = node_task_dir(n, cfg->task_dir, errmsg)) != 0) {
        goto err_after_lock;
    }
    if ((rv = node_local_state_load(n, &ls, errmsg)) != 0) {
        goto err_after_lock;
    }
    if (ls == NULL && (rv = node_local_state_recover(n, &ls, errmsg)) != 0) {
        goto err_after_lock;
    }
    n->api = api_server_new(loop, API_DEFAULT_MAX_MSG);
    if (n->api == NULL) {
        rv = SWARM_ENOMEM;
        goto err_after_state;
    }
    register_local_api(n);
    rv = api_server_listen_unix(n->api, n->socket_path, errmsg);
    if (rv != 0) {
        goto err_after_api;
    }
    if (ls != NULL && ls->role == SWARM__NODE_ROLE__NODE_ROLE_MANAGER) {
        struct manager_config mc = node_manager_cfg(n);
        n->state = NODE_PENDING;
        rv = manager_open(loop, &mc, ls, false, resume_ready_cb, n, &n->mslot.m, errmsg);
        if (rv != 0) {
            goto err_after_api;
        }
        log_info("node", "resumed as manager %s of cluster %s", ls->node_id, ls->cluster_id);
        start_agent(n);
    } else if (ls != NULL) {
        log_info("node", "resumed as worker %s of cluster %s", ls->node_id, ls->cluster_id);
        n->worker_state = ls; /* ownership moves: nothing to allocate */
        ls = NULL;
        n->mslot.worker = true;
        n->state = NODE_ACTIVE;
        start_agent(n);
    } else {
        log_info("node", "not in a swarm; waiting for swarm init or join on %s", n->socket_path);
    }
    if (ls != NULL) {
        swarm__local_state__free_unpacked(ls, NULL);
    }
    *out = n;
    return 0;

err_after_api:
    /* The loop is about to end with an error; the server goes with it. */
    api_server_shutdown(n->api, 0, NULL, NULL);
err_after_state:
    if (ls != NULL) {
        swarm__local_state__free_unpacked(ls, NULL);
    }
err_after_lock:
    close(n->lock_fd);
err:
    /* The caller exits; the timer handles die with the loop. */
    uv_close((uv_handle_t *)&n->join_timer, NULL);
    uv_close((uv_handle_t *)&n->renew_timer, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    free(n);
    return rv;
}

/* -------------------------------------------------------------- stop */

/* Free the node once its handles are closed and every request it started
 * has called back. */
static void node_maybe_free(struct swarm_node *n)
{
    if (!n->handles_closed || n->calls_pending > 0) {
        return;
    }
    void (*done)(void *) = n->stop_cb;
    void *done_data = n->stop_data;
    if (n->lock_fd >= 0) {
        close(n->lock_fd);
    }
    if (n->worker_state != NULL) {
        swarm__local_state__free_unpacked(n->worker_state, NULL);
    }
    join_ctx_free(n->join_ctx);
    free(n);
    if (done != NULL) {
        done(done_data);
    }
}

bool node_call_end(struct swarm_node *n)
{
    n->calls_pending--;
    if (!n->stopping) {
        return false;
    }
    node_maybe_free(n);
    return true;
}

static void node_free_cb(uv_handle_t *h)
{
    struct swarm_node *n = h->data;
    if (--n->timers_open > 0) {
        return;
    }
    n->handles_closed = true;
    node_maybe_free(n);
}

static void api_stopped_cb(void *data)
{
    struct swarm_node *n = data;
    n->timers_open = 2;
    uv_close((uv_handle_t *)&n->join_timer, node_free_cb);
    uv_close((uv_handle_t *)&n->renew_timer, node_free_cb);
}

static void images_closed_cb(void *data)
{
    struct swarm_node *n = data;
    api_server_shutdown(n->api, 2000, api_stopped_cb, n);
}

static void manager_stopped_cb(void *data)
{
    struct swarm_node *n = data;
    struct imgstore *images = n->images;
    n->images = NULL;
    if (images != NULL) {
        imgstore_close(images, images_closed_cb, n);
        return;
    }
    images_closed_cb(n);
}

static void agent_stopped_cb(void *data)
{
    struct swarm_node *n = data;
    struct manager *m = n->mslot.m;
    n->mslot.m = NULL;
    if (m != NULL) {
        manager_close(m, manager_stopped_cb, n);
        return;
    }
    manager_stopped_cb(n);
}

int node_viz_render(struct swarm_node *n, char **json, size_t *len)
{
    if (n->mslot.m != NULL) {
        return manager_viz_render(n->mslot.m, json, len);
    }
    return vizstate_render_none(n->mslot.worker ? MANAGER_WORKER_MSG : MANAGER_NOT_MANAGER_MSG,
                                json, len);
}

void node_collect_metrics(struct swarm_node *n)
{
    manager_collect_metrics(n->mslot.m);
    smetrics_collect_process();
}

void node_stop(struct swarm_node *n, void (*done)(void *data), void *data)
{
    struct join *reqs[] = {n->join_req, n->renew_req, n->stale_req, n->role_req};
    n->stopping = true;
    n->stop_cb = done;
    n->stop_data = data;
    uv_timer_stop(&n->join_timer);
    uv_timer_stop(&n->renew_timer);
    /* Their callbacks run later (they see `stopping`); the node is freed
     * after the last one. */
    for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
        if (reqs[i] != NULL) {
            join_cancel(reqs[i]);
        }
    }
    /* Tasks do not outlive a stopped node. */
    node_agent_stop(n, true, agent_stopped_cb, n);
}
