/* See manager.h.
 *
 * swarm init (manager_init_cluster):
 *   keys + certificates -> files -> TLS listener -> store -> raft bootstrap
 *   + start -> (leader after barrier) -> propose Cluster + Node -> committed
 *   -> local state written (from here on the node is a manager) -> ready_cb(0)
 * Failures: any step before the local state is written reports ready_cb
 *   with an error; the owner then closes the manager, which deletes what init
 *   wrote (certificates, raft dir, store), so the node stays inactive with
 *   nothing half-written. No leader within MANAGER_READY_TIMEOUT_MS counts as a
 *   failure too.
 * Restart (manager_open): certificates and store from disk, raft start
 *   without bootstrap; ready at once (reads work without a leader). */
#include "manager.h"

#include <errno.h>
#include <limits.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>

#include "access.h"
#include "bootstrap.h"
#include "carotate.h"
#include "caserver.h"
#include "controlapi.h"
#include "dispatcher.h"
#include "err.h"
#include "forward.h"
#include "hostinfo.h"
#include "id.h"
#include "identity.h"
#include "localstate.h"
#include "log.h"
#include "events.h"
#include "logbroker.h"
#include "menv.h"
#include "mgrinfo.h"
#include "mgrmetrics.h"
#include "mslot.h"
#include "orchloop.h"
#include "pbcopy.h"
#include "peers.h"
#include "rolemgr.h"
#include "selfreg.h"
#include "serviceapi.h"
#include "netapi.h"
#include "statedir.h"
#include "storefile.h"
#include "token.h"
#include "transport.h"
#include "vec.h"
#include "vizstate.h"

/* The manager: what it owns itself and the modules it wires (each module's
 * header says what that module owns). Only this file sees it. */
enum manager_phase {
    MANAGER_STARTING,    /* raft started, waiting for a leader */
    MANAGER_BOOTSTRAP,   /* swarm init: first entry proposed */
    MANAGER_RUNNING,
    MANAGER_FAILED,
    MANAGER_CLOSING,
};

struct manager {
    uv_loop_t *loop;
    enum manager_phase phase;
    char state_dir[PATH_MAX];
    char hostname[256];
    const char *const *insecure_registries; /* the config's (outlive the manager) */
    size_t n_insecure_registries;
    struct api_server *api;
    struct manager_slot *slot; /* where this manager publishes its modules, or NULL */
    void (*changed_cb)(void *data); /* manager_config's */
    void *changed_data;
    Swarm__LocalState *local;
    struct store *store;
    struct rnode *raft;
    /* What the modules see of this manager (menv.h); env.store is set
     * when the store opens. */
    struct menv env;
    struct identity id; /* certificates, key, TLS contexts (identity.h) */
    /* The API-side modules (their headers say what each owns). */
    struct forward *forward;
    struct peers *peers;
    struct rolemgr *rolemgr;
    struct controlapi *control;
    struct serviceapi *service;
    struct netapi *network;
    struct caserver *ca;
    bool published;               /* ... and this manager published them */
    struct carotate *carotate; /* root CA rotation (carotate.h) */
    struct raft_uv_transport transport;
    bool transport_ready;
    struct access *access; /* authorization, raft peers (access.h) */
    unsigned closing_handles;
    unsigned closing_modules; /* modules closed but not yet drained */
    struct dispatcher *dispatcher;
    struct orchloop *orchloop;
    struct logbroker *logbroker;
    struct events *events;
    /* swarm init only: the first command, until selfreg takes it. */
    Swarm__StoreCommand *bootstrap_cmd;
    struct selfreg *selfreg; /* what this manager proposes of itself (selfreg.h) */
    bool is_init;           /* made by swarm init ... */
    bool committed;         /* ... and its local state is on disk */
    uv_timer_t ready_timer;
    manager_ready_cb ready_cb;
    void *ready_data;
    void (*close_cb)(void *data);
    void *close_data;
};

/* Called with the outcome of manager_write. On status 0 the command was
 * committed and `res` says whether the store accepted it. */
typedef void (*manager_write_cb)(struct manager *m, int status, const struct store_result *res,
                                 void *data);



#define MANAGER_READY_TIMEOUT_MS 10000

static int64_t manager_now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}


static void path_join(char *out, size_t size, const char *dir, const char *name)
{
    snprintf(out, size, "%s/%s", dir, name);
}

/* ------------------------------------------------------------- local state */

const Swarm__LocalState *manager_local_state(struct manager *m)
{
    return m->local;
}

Swarm__LocalState *manager_local_state_copy(struct manager *m)
{
    return pb_copy(&m->local->base);
}

bool manager_caught_up(struct manager *m)
{
    Swarm__Node *node = NULL;
    if (m->store == NULL || store_node_get(m->store, m->local->node_id, &node) != 0) {
        return false;
    }
    swarm__node__free_unpacked(node, NULL);
    return true;
}

char *manager_worker_token(struct manager *m)
{
    Swarm__Cluster *c = NULL;
    char *token = NULL;
    if (m->store == NULL || store_cluster_get_default(m->store, &c) != 0) {
        return NULL;
    }
    if (c->root_ca != NULL && c->root_ca->join_tokens != NULL) {
        token = strdup(c->root_ca->join_tokens->worker);
    }
    swarm__cluster__free_unpacked(c, NULL);
    return token;
}

/* ------------------------------------------------------------------ writes */

struct write_req {
    struct manager *m;
    manager_write_cb cb;
    void *data;
};

static void write_done_cb(int status, const struct store_result *res, void *data)
{
    struct write_req *w = data;
    w->cb(w->m, status, res, w->data);
    free(w);
}

/* Stamp `cmd` with the time and propose it. Fails at once with
 * SWARM_ENOLEADER when no leader is known or SWARM_ENOTLEADER when another
 * manager leads. `cmd` is only read during the call. */
static int manager_write(struct manager *m, Swarm__StoreCommand *cmd, manager_write_cb cb,
                         void *data)
{
    struct write_req *w;
    int rv;
    if (m->phase == MANAGER_CLOSING) {
        return SWARM_ENOTLEADER; /* see manager_close */
    }
    if (m->raft == NULL || !rnode_is_leader(m->raft)) {
        raft_id id = 0;
        const char *addr = NULL;
        if (m->raft != NULL) {
            rnode_leader(m->raft, &id, &addr);
        }
        return (id == 0 || id == rnode_id(m->raft)) ? SWARM_ENOLEADER : SWARM_ENOTLEADER;
    }
    w = malloc(sizeof *w);
    if (w == NULL) {
        return SWARM_ENOMEM;
    }
    w->m = m;
    w->cb = cb;
    w->data = data;
    cmd->timestamp = manager_now_ms();
    rv = rnode_propose(m->raft, cmd, write_done_cb, w);
    if (rv != 0) {
        free(w);
    }
    return rv;
}

/* ------------------------------------------------------- the modules' env */

struct env_write {
    menv_propose_cb cb;
    void *data;
};

static void env_write_done_cb(struct manager *m, int status, const struct store_result *res,
                              void *data)
{
    struct env_write *w = data;
    (void)m;
    w->cb(status, res, w->data);
    free(w);
}

static int env_propose(void *impl, Swarm__StoreCommand *cmd, menv_propose_cb cb, void *data)
{
    struct env_write *w = malloc(sizeof *w);
    if (w == NULL) {
        return SWARM_ENOMEM;
    }
    w->cb = cb;
    w->data = data;
    int rv = manager_write(impl, cmd, env_write_done_cb, w);
    if (rv != 0) {
        free(w);
    }
    return rv;
}

static bool env_is_leader(void *impl)
{
    struct manager *m = impl;
    return m->phase != MANAGER_CLOSING && m->raft != NULL && rnode_is_leader(m->raft);
}

static void env_leader(void *impl, raft_id *id, const char **address)
{
    struct manager *m = impl;
    *id = 0;
    *address = NULL;
    if (m->raft != NULL) {
        rnode_leader(m->raft, id, address);
    }
    if (*id == 0 || *address == NULL || *id == rnode_id(m->raft)) {
        *id = 0;
        *address = NULL;
    }
}

static int64_t env_now(void *impl)
{
    (void)impl;
    return manager_now_ms();
}

/* ------------------------------------------------- the modules' interfaces */

/* Close what `node_id` may no longer hold (access.c decides when). */
static void manager_recheck_cb(void *data, const char *node_id)
{
    struct manager *m = data;
    api_server_recheck(m->api, node_id);
    if (m->transport_ready) {
        rtransport_recheck(&m->transport, node_id);
    }
}

/* The dispatcher's, the rotation's and the CA's view of the trust root. */
static X509 *manager_root_cert_cb(void *data)
{
    struct manager *m = data;
    return m->id.root_cert;
}

/* Trust a new root (carotate_sync_root): before the TLS contexts exist it
 * is simply the root they will be made with. */
static int manager_trust_root_cb(void *data, X509 *root, char *errmsg)
{
    struct manager *m = data;
    return identity_trust_root(&m->id, root, errmsg);
}

static int manager_forward_logs_cb(void *data, struct api_call *call, const ProtobufCMessage *req,
                                   const char *leader_addr)
{
    struct manager *m = data;
    if (m->forward == NULL) {
        api_call_error(call, API_UNAVAILABLE, "%s", MANAGER_NOT_MANAGER_MSG);
        return SWARM_ESTATE;
    }
    return forward_stream(m->forward, call, &swarm__logs__descriptor, "SubscribeLogs", req,
                          leader_addr);
}

static SSL_CTX *mod_client_ctx(void *impl)
{
    struct manager *m = impl;
    return m->id.client_ctx;
}

static uint64_t mod_leaderless_ms(void *impl)
{
    struct manager *m = impl;
    return m->raft != NULL ? rnode_leaderless_ms(m->raft) : UINT64_MAX;
}

/* The leader as raft names it, this manager included (menv's leader()
 * names only another one). */
static raft_id mod_leader_id(void *impl)
{
    struct manager *m = impl;
    raft_id id = 0;
    const char *addr = NULL;
    if (m->raft != NULL) {
        rnode_leader(m->raft, &id, &addr);
    }
    return id;
}

static const struct raft_configuration *mod_raft_members(void *impl)
{
    static const struct raft_configuration none = {0};
    struct manager *m = impl;
    return m->raft != NULL ? rnode_configuration(m->raft) : &none;
}

static int mod_add_voter(void *impl, raft_id id, const char *address, rnode_change_cb cb,
                         void *data)
{
    struct manager *m = impl;
    return m->raft != NULL ? rnode_add_voter(m->raft, id, address, cb, data) : SWARM_ENOTLEADER;
}

static int mod_remove(void *impl, raft_id id, rnode_change_cb cb, void *data)
{
    struct manager *m = impl;
    return m->raft != NULL ? rnode_remove(m->raft, id, cb, data) : SWARM_ENOTLEADER;
}

static Swarm__Reachability mod_reachability(void *impl, const char *node_id)
{
    struct manager *m = impl;
    return peers_reachability(m->peers, node_id);
}

/* The API-side modules, each given the menv and only the extras it uses. */
static int manager_modules_new(struct manager *m)
{
    const struct forward_config fc = {
        .client_ctx = mod_client_ctx, .leaderless_ms = mod_leaderless_ms, .impl = m};
    const struct peers_config pc = {
        .node_id = m->local->node_id, .client_ctx = mod_client_ctx, .impl = m};
    const struct rolemgr_config rc = {
        .raft_members = mod_raft_members,
        .add_voter = mod_add_voter,
        .remove = mod_remove,
        .reachability = mod_reachability,
        .impl = m,
    };
    const struct controlapi_config cc = {
        .node_id = m->local->node_id,
        .leader_id = mod_leader_id,
        .raft_members = mod_raft_members,
        .reachability = mod_reachability,
        .root_cert = manager_root_cert_cb,
        .impl = m,
    };
    const struct caserver_config sc = {.root_cert = manager_root_cert_cb, .impl = m};

    m->forward = forward_new(&m->env, &fc);
    m->peers = peers_new(&m->env, &pc);
    m->rolemgr = rolemgr_new(&m->env, &rc);
    m->control = controlapi_new(&m->env, &cc);
    m->service = serviceapi_new(&m->env);
    m->network = netapi_new(&m->env);
    if (m->service != NULL &&
        serviceapi_set_insecure_registries(m->service, m->insecure_registries,
                                           m->n_insecure_registries) != 0) {
        return SWARM_ENOMEM;
    }
    m->ca = caserver_new(&m->env, &sc);
    if (m->forward == NULL || m->peers == NULL || m->rolemgr == NULL || m->control == NULL ||
        m->service == NULL || m->network == NULL || m->ca == NULL) {
        return SWARM_ENOMEM;
    }
    return 0;
}

/* The handlers reach the modules through the slot from here on (mslot.h). */
static void manager_publish(struct manager *m)
{
    if (m->slot == NULL) {
        return;
    }
    m->slot->forward = m->forward;
    m->slot->control = m->control;
    m->slot->service = m->service;
    m->slot->network = m->network;
    m->slot->ca = m->ca;
    m->slot->running = m->phase == MANAGER_RUNNING;
    m->published = true;
}

/* Before any module closes: no handler reaches them any more. */
static void manager_unpublish(struct manager *m)
{
    if (!m->published) {
        return;
    }
    if (m->slot->dispatcher == m->dispatcher) {
        m->slot->dispatcher = NULL;
    }
    if (m->slot->logbroker == m->logbroker) {
        m->slot->logbroker = NULL;
    }
    if (m->slot->events == m->events) {
        m->slot->events = NULL;
    }
    if (m->slot->access == m->access) {
        m->slot->access = NULL;
    }
    m->slot->forward = NULL;
    m->slot->control = NULL;
    m->slot->service = NULL;
    m->slot->network = NULL;
    m->slot->ca = NULL;
    m->slot->running = false;
    m->published = false;
}

/* The manager serves: its API answers (the dispatcher and the log broker
 * are published only now), and the probing of the other managers and the
 * role manager's passes start. */
static void manager_run(struct manager *m)
{
    m->phase = MANAGER_RUNNING;
    if (m->published) {
        m->slot->running = true;
        m->slot->dispatcher = m->dispatcher;
        m->slot->logbroker = m->logbroker;
        m->slot->events = m->events;
        m->slot->access = m->access;
    }
    peers_start(m->peers);
    rolemgr_start(m->rolemgr);
}

/* --------------------------------------------------------------- the API */

void manager_register_api(struct api_server *api, struct manager_slot *slot)
{
    access_register(api, &slot->access);
    controlapi_register(api, slot);
    serviceapi_register(api, slot);
    netapi_register(api, slot);
    caserver_register(api, slot);
    dispatcher_register(api, &slot->dispatcher);
    logbroker_register(api, slot);
    events_register(api, slot);
}

/* ------------------------------------------------------------ ready / fail */

static void report_ready(struct manager *m, int status, const char *errmsg)
{
    manager_ready_cb cb = m->ready_cb;
    m->ready_cb = NULL;
    uv_timer_stop(&m->ready_timer);
    if (status != 0) {
        m->phase = MANAGER_FAILED;
        if (m->published) {
            m->slot->running = false;
        }
    }
    if (cb != NULL) {
        cb(m, status, errmsg, m->ready_data);
    }
}

static void ready_timeout_cb(uv_timer_t *t)
{
    struct manager *m = t->data;
    if (m->phase == MANAGER_CLOSING) {
        return;
    }
    report_ready(m, SWARM_ETIMEDOUT, "raft did not elect this manager leader in time");
}

/* ------------------------------------------------------- self-registration */

/* swarm init's first command came back (selfreg.h). */
static int manager_bootstrapped_cb(void *impl, int status, const char *why)
{
    struct manager *m = impl;
    char errmsg[SWARM_ERRMSG_SIZE] = "";
    int rv;
    if (m->phase == MANAGER_CLOSING) {
        return SWARM_ESTATE;
    }
    if (status != 0) {
        report_ready(m, status, why);
        return status;
    }
    /* From this write on, a restart finds a manager. */
    rv = localstate_save(m->state_dir, m->local, errmsg);
    if (rv != 0) {
        report_ready(m, rv, errmsg);
        return rv;
    }
    m->committed = true;
    manager_run(m);
    orchloop_set_leader(m->orchloop, rnode_is_leader(m->raft));
    log_info("manager", "swarm initialized: cluster %s, node %s", m->local->cluster_id,
             m->local->node_id);
    report_ready(m, 0, NULL);
    return 0;
}

static void leadership_cb(bool leader, void *data)
{
    struct manager *m = data;
    if (m->phase == MANAGER_CLOSING || m->phase == MANAGER_FAILED) {
        return;
    }
    dispatcher_set_leader(m->dispatcher, leader);
    orchloop_set_leader(m->orchloop, leader && m->phase == MANAGER_RUNNING);
    carotate_set_leader(m->carotate, leader);
    selfreg_set_leader(m->selfreg, leader);
}

/* ------------------------------------------------------------ bring-up */

static struct manager *manager_alloc(uv_loop_t *loop, const struct manager_config *cfg)
{
    struct manager *m = calloc(1, sizeof *m);
    if (m == NULL) {
        return NULL;
    }
    m->loop = loop;
    m->api = cfg->api;
    m->slot = cfg->slot;
    m->changed_cb = cfg->changed_cb;
    m->changed_data = cfg->changed_data;
    m->env = (struct menv){
        .loop = loop,
        .propose = env_propose,
        .is_leader = env_is_leader,
        .leader = env_leader,
        .now = env_now,
        .impl = m,
    };
    snprintf(m->state_dir, sizeof m->state_dir, "%s", cfg->state_dir);
    snprintf(m->hostname, sizeof m->hostname, "%s", cfg->hostname ? cfg->hostname : "");
    m->insecure_registries = cfg->insecure_registries;
    m->n_insecure_registries = cfg->n_insecure_registries;
    uv_timer_init(loop, &m->ready_timer);
    m->ready_timer.data = m;
    return m;
}

static int mkdir_private(const char *path, char *errmsg)
{
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "mkdir %s: %s", path, strerror(errno));
        return SWARM_EIO;
    }
    return 0;
}

/* Every committed change, on every manager, fans out to the leader-only
 * loops (each ignores events while this manager does not lead). */
static void manager_event_cb(const struct store_event *ev, void *data)
{
    struct manager *m = data;
    carotate_on_event(m->carotate, ev);
    access_on_event(m->access, ev);
    dispatcher_on_event(m->dispatcher, ev);
    orchloop_on_event(m->orchloop, ev);
    logbroker_on_event(m->logbroker, ev);
    events_on_event(m->events, ev);
    if (m->changed_cb != NULL) {
        m->changed_cb(m->changed_data);
    }
}

/* A store being rebuilt from the log does not know the managers yet: the
 * ones the log names serve raft_id_of_node until it has replayed what the
 * log held at start (the store is asked first, always). */
static void add_log_peers(struct manager *m)
{
    Swarm__ManagerPeer **peers = NULL;
    size_t n = 0;
    if (storefile_log_peers(m->raft, &peers, &n) != 0) {
        log_warn("manager", "out of memory reading the managers from the raft log");
        return;
    }
    access_set_log_peers(m->access, peers, n, rnode_last_index(m->raft));
}

/* Raft timing from the cluster spec (election and heartbeat ticks times the
 * tick length): the one being created at init, else the stored one; a
 * manager joining for the first time starts with the defaults. Changes take
 * effect when a manager restarts. */
static void raft_timing(struct manager *m, struct rnode_config *rc)
{
    const Swarm__RaftConfig *raft = NULL;
    Swarm__Cluster *c = NULL;
    if (m->bootstrap_cmd != NULL && m->bootstrap_cmd->n_actions > 0 &&
        m->bootstrap_cmd->actions[0]->cluster != NULL) {
        raft = m->bootstrap_cmd->actions[0]->cluster->spec->raft;
    } else if (store_cluster_get_default(m->store, &c) == 0 && c->spec != NULL) {
        raft = c->spec->raft;
    }
    if (raft != NULL && raft->tick_ms > 0 && raft->election_tick > raft->heartbeat_tick &&
        raft->heartbeat_tick > 0) {
        rc->election_timeout_ms = raft->election_tick * raft->tick_ms;
        rc->heartbeat_timeout_ms = raft->heartbeat_tick * raft->tick_ms;
    }
    if (raft != NULL && raft->snapshot_interval > 0 && raft->snapshot_interval < UINT32_MAX) {
        rc->snapshot_threshold = (unsigned)raft->snapshot_interval;
    }
    if (c != NULL) {
        swarm__cluster__free_unpacked(c, NULL);
    }
}

/* Store, raft node, TLS listener: shared by init and open. */
static int manager_start_common(struct manager *m, const struct manager_config *cfg,
                                bool bootstrap, bool force_new_cluster, char *errmsg)
{
    char path[PATH_MAX];
    struct rnode_config rc = {0};
    int rv;

    rv = identity_contexts_new(&m->id, errmsg);
    if (rv != 0) {
        return rv;
    }
    rv = api_server_listen_tls(m->api, m->local->listen_addr, m->id.server_ctx, errmsg);
    if (rv != 0) {
        errmsg_wrapf(errmsg, SWARM_ERRMSG_SIZE, "failed to listen on %s", m->local->listen_addr);
        return rv;
    }
    rv = storefile_open(m->state_dir, m->local->cluster_id, &m->store, errmsg);
    if (rv != 0) {
        return rv;
    }
    m->env.store = m->store;
    struct dispatcher_config dc = {.root_cert = manager_root_cert_cb, .data = m};
    m->dispatcher = dispatcher_new(&m->env, &dc);
    m->orchloop = orchloop_new(&m->env);
    if (m->dispatcher == NULL || m->orchloop == NULL || manager_modules_new(m) != 0) {
        return SWARM_ENOMEM;
    }
    struct carotate_config cc = {
        .dispatcher = m->dispatcher,
        .root_cert = manager_root_cert_cb,
        .trust_root = manager_trust_root_cb,
        .data = m,
    };
    m->carotate = carotate_new(&m->env, &cc);
    if (m->carotate == NULL) {
        return SWARM_ENOMEM;
    }
    /* The store knows best which root the swarm trusts (a rotation may have
     * finished while this manager was down). */
    carotate_sync_root(m->carotate);
    struct logbroker_config lc = {
        .dispatcher = m->dispatcher,
        .forward_stream = manager_forward_logs_cb,
        .data = m,
    };
    m->logbroker = logbroker_new(&m->env, &lc);
    m->events = events_new(&m->env);
    if (m->logbroker == NULL || m->events == NULL) {
        return SWARM_ENOMEM;
    }
    struct access_config ac = {
        .node_id = m->local->node_id,
        .cluster_id = m->local->cluster_id,
        .seed_peers = cfg->seed_peers,
        .n_seed_peers = cfg->n_seed_peers,
        .recheck = manager_recheck_cb,
        .data = m,
    };
    if ((rv = access_new(&m->env, &ac, &m->access)) != 0) {
        return rv;
    }
    store_set_event_cb(m->store, manager_event_cb, m);
    path_join(path, sizeof path, m->state_dir, STATEDIR_RAFT);
    rv = mkdir_private(path, errmsg);
    if (rv != 0) {
        return rv;
    }
    struct rtransport_config tc = {
        .loop = m->loop,
        .server = m->api,
        .client_ctx = m->id.client_ctx,
        .cluster_id = m->local->cluster_id,
        .raft_id_of_node = access_raft_peer,
        .data = m->access,
    };
    rv = rtransport_init(&m->transport, &tc, errmsg);
    if (rv != 0) {
        return rv;
    }
    m->transport_ready = true;
    rc.id = m->local->raft_id;
    rc.address = m->local->advertise_addr;
    rc.dir = path;
    rc.transport = &m->transport;
    raft_timing(m, &rc);
    const struct selfreg_config sc = {
        .raft_id = m->local->raft_id,
        .forced = force_new_cluster,
        .raft_members = mod_raft_members,
        .bootstrapped = manager_bootstrapped_cb,
        .impl = m,
    };
    m->selfreg = selfreg_new(&m->env, &sc, &m->bootstrap_cmd);
    if (m->selfreg == NULL) {
        return SWARM_ENOMEM;
    }
    rv = rnode_new(m->loop, m->store, &rc, &m->raft, errmsg);
    if (rv != 0) {
        return rv;
    }
    rnode_set_leadership_cb(m->raft, leadership_cb, m);
    if (bootstrap) {
        rv = rnode_bootstrap(m->raft, errmsg);
    } else if (force_new_cluster) {
        rv = rnode_force_new_cluster(m->raft, errmsg);
    }
    if (rv != 0) {
        return rv;
    }
    rv = rnode_start(m->raft, errmsg);
    if (rv != 0) {
        return rv;
    }
    add_log_peers(m);
    manager_publish(m);
    if (m->phase == MANAGER_RUNNING) {
        manager_run(m);
    }
    return 0;
}

int manager_init_cluster(uv_loop_t *loop, const struct manager_config *cfg,
                         const Swarm__InitRequest *req, const char *listen_addr,
                         const char *advertise_addr, manager_ready_cb cb, void *data,
                         struct manager **out, char *errmsg)
{
    struct manager *m = manager_alloc(loop, cfg);
    EVP_PKEY *root_key = NULL;
    char node_id[ID_LEN + 1], cluster_id[ID_LEN + 1], ingress_id[ID_LEN + 1];
    uint64_t raft_id = 0;
    int rv;

    if (m == NULL) {
        return SWARM_ENOMEM;
    }
    *out = m;
    m->ready_cb = cb;
    m->ready_data = data;
    m->phase = MANAGER_BOOTSTRAP;
    m->is_init = true;
    m->local = calloc(1, sizeof *m->local);
    if (m->local == NULL) {
        return SWARM_ENOMEM;
    }
    swarm__local_state__init(m->local);
    while (raft_id == 0) {
        random_bytes(&raft_id, sizeof raft_id);
    }
    if (id_generate(node_id) != 0 || id_generate(cluster_id) != 0 || id_generate(ingress_id) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "no randomness for IDs");
        return SWARM_EIO;
    }
    m->local->node_id = strdup(node_id);
    m->local->cluster_id = strdup(cluster_id);
    m->local->role = SWARM__NODE_ROLE__NODE_ROLE_MANAGER;
    m->local->raft_id = raft_id;
    m->local->listen_addr = strdup(listen_addr);
    m->local->advertise_addr = strdup(advertise_addr);
    if (m->local->node_id == NULL || m->local->cluster_id == NULL ||
        m->local->listen_addr == NULL || m->local->advertise_addr == NULL) {
        return SWARM_ENOMEM;
    }

    /* The first manager's certificate follows --cert-expiry like every
     * other (node.c checked its bounds). */
    int64_t lifetime = req->spec != NULL && req->spec->ca_config != NULL &&
                               req->spec->ca_config->node_cert_expiry_s > 0
                           ? req->spec->ca_config->node_cert_expiry_s
                           : BOOTSTRAP_CERT_EXPIRY_S;
    if ((rv = identity_create(&m->id, m->state_dir, m->local->node_id, m->local->cluster_id,
                              manager_now_ms() / 1000, lifetime, &root_key, errmsg)) != 0) {
        return rv;
    }
    const struct bootstrap_identity id = {
        .cluster_id = m->local->cluster_id,
        .node_id = m->local->node_id,
        .raft_id = m->local->raft_id,
        .advertise_addr = m->local->advertise_addr,
        .root_cert = m->id.root_cert,
        .root_key = root_key,
        .ingress_id = ingress_id,
    };
    rv = bootstrap_cmd_build(&id, req, hostinfo_describe(m->hostname[0] ? m->hostname : NULL),
                             &m->bootstrap_cmd);
    EVP_PKEY_free(root_key);
    if (rv != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "building the cluster object: %s",
                      swarm_strerror(rv));
        return rv;
    }
    if ((rv = manager_start_common(m, cfg, true, false, errmsg)) != 0) {
        return rv;
    }
    uv_timer_start(&m->ready_timer, ready_timeout_cb, MANAGER_READY_TIMEOUT_MS, 0);
    return 0;
}

int manager_open(uv_loop_t *loop, const struct manager_config *cfg,
                 const Swarm__LocalState *state, bool force_new_cluster,
                 manager_ready_cb cb, void *data, struct manager **out, char *errmsg)
{
    struct manager *m = manager_alloc(loop, cfg);
    int rv;
    if (m == NULL) {
        return SWARM_ENOMEM;
    }
    *out = m;
    m->phase = MANAGER_RUNNING;
    m->local = pb_copy(&state->base);
    if (m->local == NULL) {
        return SWARM_ENOMEM;
    }
    if ((rv = identity_load(&m->id, m->state_dir, errmsg)) != 0) {
        return rv;
    }
    if ((rv = manager_start_common(m, cfg, false, force_new_cluster, errmsg)) != 0) {
        return rv;
    }
    m->ready_cb = cb;
    m->ready_data = data;
    /* Serving started (manager_run); leadership comes on its own. */
    report_ready(m, 0, NULL);
    return 0;
}

/* ------------------------------------------------------------------- info */

/* The TLS contexts change in place (identity.h): the API server, the raft
 * transport and the forwarders hold them and dial or accept with the new
 * material from now on. */
int manager_reload_identity(struct manager *m, X509 *root, X509 *cert, STACK_OF(X509) *chain,
                            EVP_PKEY *key, char *errmsg)
{
    return identity_reload(&m->id, root, cert, chain, key, errmsg);
}

void manager_collect_metrics(struct manager *m)
{
    if (m == NULL) {
        mgrmetrics_clear();
    } else {
        mgrmetrics_collect(m->store, m->raft);
    }
}

int manager_viz_render(struct manager *m, char **json, size_t *len)
{
    Swarm__Node **nodes = NULL;
    Swarm__Service **services = NULL;
    Swarm__Task **tasks = NULL;
    struct vizstate_in in = {.leader_raft_id = mod_leader_id(m)};
    int rv;
    if (m->store == NULL) {
        return vizstate_render_none("This manager is starting.", json, len);
    }
    if ((rv = store_node_list(m->store, &nodes, &in.n_nodes)) != 0 ||
        (rv = store_service_list(m->store, &services, &in.n_services)) != 0 ||
        (rv = store_task_list(m->store, &tasks, &in.n_tasks)) != 0) {
        goto out;
    }
    in.nodes = nodes;
    in.services = services;
    in.tasks = tasks;
    rv = vizstate_render(&in, json, len);
out:
    store_node_free_list(nodes, in.n_nodes);
    store_service_free_list(services, in.n_services);
    store_task_free_list(tasks, in.n_tasks);
    return rv;
}

void manager_fill_info(struct manager *m, Swarm__InfoResponse *info)
{
    raft_id leader = 0;
    const char *leader_addr = NULL;

    info->is_manager = true;
    info->raft_id = m->local->raft_id;
    if (m->raft != NULL) {
        rnode_leader(m->raft, &leader, &leader_addr);
        info->raft_state = strdup(rnode_state_name(m->raft));
        info->leader_addr = strdup(leader_addr != NULL ? leader_addr : "");
    }
    if (m->store != NULL) {
        mgrinfo_fill(m->store, info);
    }
}


/* ------------------------------------------------------------------ close */

/* Undo what a failed init wrote, so the node stays cleanly inactive. */
static void discard_files(struct manager *m)
{
    (void)statedir_erase(m->state_dir, STATEDIR_PART_CERTS | STATEDIR_PART_MANAGER);
}

static void manager_free(struct manager *m)
{
    void (*done)(void *) = m->close_cb;
    void *data = m->close_data;
    if (m->store != NULL) {
        store_close(m->store);
    }
    if (m->is_init && !m->committed) {
        discard_files(m);
    }
    if (m->bootstrap_cmd != NULL) {
        swarm__store_command__free_unpacked(m->bootstrap_cmd, NULL);
    }
    if (m->local != NULL) {
        swarm__local_state__free_unpacked(m->local, NULL);
    }
    identity_free(&m->id);
    free(m);
    if (done != NULL) {
        done(data);
    }
}

/* One module drained (or this function's own hold released): the manager
 * goes once every module has reported. */
static void module_closed_cb(void *data)
{
    struct manager *m = data;
    if (--m->closing_modules == 0) {
        manager_free(m);
    }
}

/* Start closing one module: it reports to module_closed_cb once drained. */
#define MODULE_CLOSE(m, field, close_fn)                   \
    do {                                                   \
        if ((m)->field != NULL) {                          \
            (m)->closing_modules++;                        \
            close_fn((m)->field, module_closed_cb, (m));   \
            (m)->field = NULL;                             \
        }                                                  \
    } while (0)

/* Raft is closed: every proposal a module made has had its callback (raft
 * fails the pending ones inside raft_close), so nothing new reaches a
 * module; each is closed and reports once what it started has come back
 * (close after drain), and the manager is freed after the last. */
static void raft_closed_cb(void *data)
{
    struct manager *m = data;
    m->raft = NULL;
    /* The broker first: it sends through the dispatcher until closed. */
    MODULE_CLOSE(m, logbroker, logbroker_close);
    MODULE_CLOSE(m, dispatcher, dispatcher_close);
    MODULE_CLOSE(m, orchloop, orchloop_close);
    MODULE_CLOSE(m, control, controlapi_close);
    MODULE_CLOSE(m, service, serviceapi_close);
    MODULE_CLOSE(m, network, netapi_close);
    MODULE_CLOSE(m, ca, caserver_close);
    if (m->transport_ready) {
        rtransport_free(&m->transport);
    }
    /* After the transport, which asks it about raft peers. */
    MODULE_CLOSE(m, access, access_close);
    module_closed_cb(m); /* manager_close's hold */
}

static void timer_closed_cb(uv_handle_t *h)
{
    struct manager *m = h->data;
    if (--m->closing_handles > 0) {
        return;
    }
    if (m->raft != NULL) {
        rnode_close(m->raft, raft_closed_cb, m);
        return;
    }
    raft_closed_cb(m);
}

/* Close after drain, the one path for shutdown, leave and demotion (and a
 * failed init): the handlers stop reaching the modules (unpublished), the
 * modules stop starting work (phase CLOSING makes manager_write refuse),
 * forwarding, probing and the role manager close, raft closes and calls
 * back every pending proposal and membership change with a failure while
 * the modules that made them are still allocated, then the modules that
 * propose close too, and the manager is freed once every module reported it
 * drained (module_closed_cb), as dqlite's leader__close and raft's
 * uvMaybeFireCloseCb wait for their requests. */
void manager_close(struct manager *m, void (*done)(void *data), void *data)
{
    m->phase = MANAGER_CLOSING;
    manager_unpublish(m);
    if (m->store != NULL) {
        store_set_event_cb(m->store, NULL, NULL);
    }
    orchloop_set_leader(m->orchloop, false);
    m->close_cb = done;
    m->close_data = data;
    m->ready_cb = NULL;
    m->closing_modules = 1; /* a hold, released in raft_closed_cb */
    /* The rotation reconciler stops now and drains its proposal when raft
     * fails it. */
    MODULE_CLOSE(m, carotate, carotate_close);
    /* Its subscribers hear UNAVAILABLE now and resume elsewhere. */
    MODULE_CLOSE(m, events, events_close);
    /* Swarm init's outcome is no longer reported. */
    MODULE_CLOSE(m, selfreg, selfreg_close);
    MODULE_CLOSE(m, forward, forward_close);
    MODULE_CLOSE(m, peers, peers_close);
    MODULE_CLOSE(m, rolemgr, rolemgr_close);
    m->closing_handles = 1;
    uv_close((uv_handle_t *)&m->ready_timer, timer_closed_cb);
}
