/* Deterministic tests of the manager glue: the store, the orchestration
 * loop, the dispatcher and the role manager on a fixture of three raft
 * servers with a fake clock (mgrfix.h). Nothing here reads the real clock
 * or sleeps: every wait is a number of simulated milliseconds. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "dispatcher.h"
#include "dispatcher.pb-c.h"
#include "err.h"
#include "mgrfix.h"
#include "orchestrator.h"
#include "orchloop.h"
#include "pki.h"
#include "rolemgr.h"
#include "test.h"

/* ------------------------------------------------------------- wiring */

/* The modules of each server, wired as manager.c wires them: every
 * committed change of its store goes to each module, and leadership (after
 * the barrier) to the leader-only loops. A server may also serve the
 * Dispatcher service over mutual TLS (serve_dispatcher), for nodes that
 * hold real sessions (struct wnode below). */
struct mods {
    struct mfx_server *s;
    struct orchloop *orch;
    struct dispatcher *disp;
    struct rolemgr *role;
    struct dispatcher *slot; /* what the API handlers serve from */
    struct api_server *api;
    char api_addr[64];
    unsigned closed; /* close callbacks that ran */
    unsigned opened; /* modules made */
    bool orch_closed; /* the orchestration loop's close callback ran */
    bool disp_closed; /* the dispatcher's */
    bool role_closed; /* the role manager's */
};

#define WNODES 3

/* A worker node's side of the dispatcher protocol, as the agent speaks it:
 * a TLS connection with its own certificate, a Session stream, and a
 * Heartbeat on every half period of the loop's (fake) clock until it is
 * told to go silent. */
struct wnode {
    struct glue *g;
    const char *node_id;
    struct api_client *c;
    uv_timer_t hb;
    bool made;
    bool silent;
    char session_id[64];
    unsigned sessions_ended;
    unsigned hb_ok;
    bool closed;
};

struct glue {
    struct mfx *fx;
    struct mods m[MFX_N];
    struct wnode w[WNODES];
    /* Test PKI: a root, the managers' server identity, the nodes'. */
    X509 *root;
    EVP_PKEY *root_key;
    X509 *mgr_cert;
    EVP_PKEY *mgr_key;
    unsigned net_opened, net_closed; /* API servers and node connections */
};

static X509 *root_cert_cb(void *data)
{
    struct glue *g = data;
    return g->root;
}

static void mods_event_cb(const struct store_event *ev, void *data)
{
    struct mods *m = data;
    dispatcher_on_event(m->disp, ev);
    orchloop_on_event(m->orch, ev);
}

static void mods_leader_cb(struct mfx_server *s, bool leader, void *data)
{
    struct mods *m = data;
    dispatcher_set_leader(m->disp, leader);
    orchloop_set_leader(m->orch, leader);
}

static void disp_closed_cb(void *data)
{
    struct mods *m = data;
    m->disp_closed = true;
    m->closed++;
}

static void role_closed_cb(void *data)
{
    struct mods *m = data;
    m->role_closed = true;
    m->closed++;
}

/* The role manager's raft membership: the server's, through the fixture
 * (mgrfix.h); every manager counts as reachable (peer probes are the peers
 * module's business, not tested here). */
static const struct raft_configuration *role_members(void *impl)
{
    return mfx_members(impl);
}

static int role_add_voter(void *impl, raft_id id, const char *address, rnode_change_cb cb,
                          void *data)
{
    return mfx_add_voter(impl, id, address, cb, data);
}

static int role_remove(void *impl, raft_id id, rnode_change_cb cb, void *data)
{
    return mfx_remove(impl, id, cb, data);
}

static Swarm__Reachability role_reachability(void *impl, const char *node_id)
{
    return SWARM__REACHABILITY__REACHABILITY_REACHABLE;
}

static void orch_closed_cb(void *data)
{
    struct mods *m = data;
    m->orch_closed = true;
    m->closed++;
}

/* Make server i's modules and tell them whether it leads now. */
static void mods_open(struct glue *g, unsigned i)
{
    struct mods *m = &g->m[i];
    struct dispatcher_config dc = {.root_cert = root_cert_cb, .data = g};
    bool leader;
    m->s = &g->fx->s[i];
    struct rolemgr_config rc = {.raft_members = role_members,
                                .add_voter = role_add_voter,
                                .remove = role_remove,
                                .reachability = role_reachability,
                                .impl = &g->fx->s[i]};
    m->orch = orchloop_new(&m->s->env);
    m->disp = dispatcher_new(&m->s->env, &dc);
    m->role = rolemgr_new(&m->s->env, &rc);
    m->opened += 3;
    rolemgr_start(m->role);
    m->slot = m->disp;
    store_set_event_cb(m->s->store, mods_event_cb, m);
    m->s->on_leader = mods_leader_cb;
    m->s->on_leader_data = m;
    leader = menv_is_leader(&m->s->env);
    dispatcher_set_leader(m->disp, leader);
    orchloop_set_leader(m->orch, leader);
}

/* Close server i's modules, as manager_close does: no more events or
 * leadership reports, the handlers' slot cleared, then each module's close
 * (which waits for what it has in flight). */
static void mods_close(struct glue *g, unsigned i)
{
    struct mods *m = &g->m[i];
    if (m->s == NULL || m->orch == NULL) {
        return;
    }
    store_set_event_cb(m->s->store, NULL, NULL);
    m->s->on_leader = NULL;
    m->slot = NULL;
    dispatcher_close(m->disp, disp_closed_cb, m);
    m->disp = NULL;
    orchloop_close(m->orch, orch_closed_cb, m);
    m->orch = NULL;
    rolemgr_close(m->role, role_closed_cb, m);
    m->role = NULL;
}

static void net_closed_cb(void *data)
{
    struct glue *g = data;
    g->net_closed++;
}

static void wnode_hb_closed_cb(uv_handle_t *h)
{
    struct wnode *w = h->data;
    w->g->net_closed++;
}

/* Close the node connections and the API servers. */
static void net_close(struct glue *g)
{
    for (unsigned k = 0; k < WNODES; k++) {
        struct wnode *w = &g->w[k];
        if (!w->made || w->closed) {
            continue;
        }
        w->closed = true;
        uv_close((uv_handle_t *)&w->hb, wnode_hb_closed_cb);
        api_client_close(w->c, net_closed_cb, g);
    }
    for (unsigned i = 0; i < MFX_N; i++) {
        if (g->m[i].api != NULL) {
            g->m[i].slot = NULL;
            api_server_shutdown(g->m[i].api, 0, net_closed_cb, g);
            g->m[i].api = NULL;
        }
    }
}

static bool net_done(struct mfx *fx, void *arg)
{
    struct glue *g = arg;
    return g->net_closed == g->net_opened;
}

static void pki_drop(struct glue *g)
{
    X509_free(g->root);
    EVP_PKEY_free(g->root_key);
    X509_free(g->mgr_cert);
    EVP_PKEY_free(g->mgr_key);
}

/* Each case runs on a fresh cluster (TEST_F): setup starts the fixture and
 * every server's modules; teardown, which also runs after a failed
 * assertion, closes the network, the modules and the cluster, and then
 * checks that every module called back its close (drained) and every
 * proposal and membership change its callback, once. */
struct mfx_case {
    struct mfx fx;
    struct glue g;
};

static void case_setup(struct mfx_case *c)
{
    char errmsg[SWARM_ERRMSG_SIZE] = "";
    if (mfx_init(&c->fx, errmsg) != 0) {
        FAILF("mfx_init: %s", errmsg);
    }
    c->g.fx = &c->fx;
    for (unsigned i = 0; i < c->fx.n; i++) {
        mods_open(&c->g, i);
    }
}

static void case_teardown(struct mfx_case *c)
{
    struct mfx *fx = &c->fx;
    struct glue *g = &c->g;
    char why[256] = "";
    net_close(g);
    if (!mfx_run_until(fx, net_done, g, 5000)) {
        snprintf(why, sizeof why, "connections or API servers never finished closing");
    }
    for (unsigned i = 0; i < fx->n; i++) {
        mods_close(g, i);
    }
    mfx_close(fx);
    pki_drop(g);
    for (unsigned i = 0; i < fx->n && why[0] == '\0'; i++) {
        const struct mfx_server *s = &fx->s[i];
        if (g->m[i].closed != g->m[i].opened) {
            snprintf(why, sizeof why, "server %u: %u module(s) never finished closing", i,
                     g->m[i].opened - g->m[i].closed);
        } else if (s->n_done != s->n_proposed) {
            snprintf(why, sizeof why, "server %u: %u proposal(s), %u callback(s)", i,
                     s->n_proposed, s->n_done);
        } else if (s->n_changes_done != s->n_changes) {
            snprintf(why, sizeof why, "server %u: %u membership change(s), %u callback(s)", i,
                     s->n_changes, s->n_changes_done);
        }
    }
    if (why[0] != '\0') {
        FAILF("%s", why);
    }
}

#define MFX_TEST(tname)                                                \
    static void body_##tname(struct mfx *fx, struct glue *g);          \
    TEST_F(tname, struct mfx_case, case_setup, case_teardown)          \
    {                                                                  \
        body_##tname(&f->fx, &f->g);                                   \
    }                                                                  \
    static void body_##tname(struct mfx *fx, struct glue *g)

/* ------------------------------------------------------------ objects */

static Swarm__StoreAction *action_new(Swarm__StoreActionKind kind)
{
    Swarm__StoreAction *a = calloc(1, sizeof *a);
    swarm__store_action__init(a);
    a->kind = kind;
    return a;
}

static void cmd_add(Swarm__StoreCommand *cmd, Swarm__StoreAction *a)
{
    cmd->actions = realloc(cmd->actions, (cmd->n_actions + 1) * sizeof *cmd->actions);
    cmd->actions[cmd->n_actions++] = a;
}

static void cmd_clear(Swarm__StoreCommand *cmd)
{
    for (size_t i = 0; i < cmd->n_actions; i++) {
        swarm__store_action__free_unpacked(cmd->actions[i], NULL);
    }
    free(cmd->actions);
    cmd->actions = NULL;
    cmd->n_actions = 0;
}

/* A cluster object whose heartbeat period is `period_ms`. */
static Swarm__StoreAction *cluster_create(int64_t period_ms)
{
    Swarm__StoreAction *a = action_new(SWARM__STORE_ACTION_KIND__STORE_ACTION_CREATE);
    Swarm__Cluster *c = calloc(1, sizeof *c);
    Swarm__ClusterSpec *spec = calloc(1, sizeof *spec);
    Swarm__Annotations *ann = calloc(1, sizeof *ann);
    Swarm__DispatcherConfig *dc = calloc(1, sizeof *dc);
    Swarm__OrchestrationConfig *oc = calloc(1, sizeof *oc);
    swarm__cluster__init(c);
    swarm__cluster_spec__init(spec);
    swarm__annotations__init(ann);
    swarm__dispatcher_config__init(dc);
    swarm__orchestration_config__init(oc);
    c->id = strdup("cluster000000000000000000");
    ann->name = strdup("default");
    spec->annotations = ann;
    dc->heartbeat_period_ms = period_ms;
    spec->dispatcher = dc;
    oc->task_history_retention_limit = 5;
    spec->orchestration = oc;
    c->spec = spec;
    a->target_case = SWARM__STORE_ACTION__TARGET_CLUSTER;
    a->cluster = c;
    return a;
}

static Swarm__StoreAction *node_create(const char *id, const char *hostname, Swarm__NodeRole role,
                                       raft_id raft, Swarm__NodeState state)
{
    Swarm__StoreAction *a = action_new(SWARM__STORE_ACTION_KIND__STORE_ACTION_CREATE);
    Swarm__Node *n = calloc(1, sizeof *n);
    Swarm__NodeSpec *spec = calloc(1, sizeof *spec);
    Swarm__NodeDescription *desc = calloc(1, sizeof *desc);
    Swarm__NodeStatus *st = calloc(1, sizeof *st);
    char addr[32];
    swarm__node__init(n);
    swarm__node_spec__init(spec);
    swarm__node_description__init(desc);
    swarm__node_status__init(st);
    n->id = strdup(id);
    spec->desired_role = role;
    spec->availability = SWARM__NODE_AVAILABILITY__NODE_AVAILABILITY_ACTIVE;
    n->spec = spec;
    desc->hostname = strdup(hostname);
    n->description = desc;
    st->state = state;
    n->status = st;
    n->role = role;
    snprintf(addr, sizeof addr, "10.0.0.%u:2377", (unsigned)(raft != 0 ? raft : 100));
    n->advertise_addr = strdup(addr);
    if (role == SWARM__NODE_ROLE__NODE_ROLE_MANAGER) {
        Swarm__ManagerStatus *ms = calloc(1, sizeof *ms);
        swarm__manager_status__init(ms);
        ms->raft_id = raft;
        ms->addr = strdup(addr);
        n->manager_status = ms;
    }
    a->target_case = SWARM__STORE_ACTION__TARGET_NODE;
    a->node = n;
    return a;
}

/* A replicated service whose task spec carries `pad` bytes (in one env
 * variable): the orchestrator creates at most ORCH_MAX_CREATE_BYTES of task
 * specs per pass, so a large spec spreads a scale-up over several passes. */
static Swarm__StoreAction *service_create(const char *id, const char *name, uint64_t replicas,
                                          size_t pad)
{
    Swarm__StoreAction *a = action_new(SWARM__STORE_ACTION_KIND__STORE_ACTION_CREATE);
    Swarm__Service *s = calloc(1, sizeof *s);
    Swarm__ServiceSpec *spec = calloc(1, sizeof *spec);
    Swarm__Annotations *ann = calloc(1, sizeof *ann);
    Swarm__TaskSpec *task = calloc(1, sizeof *task);
    Swarm__ContainerSpec *ctr = calloc(1, sizeof *ctr);
    Swarm__ReplicatedService *rep = calloc(1, sizeof *rep);
    swarm__service__init(s);
    swarm__service_spec__init(spec);
    swarm__annotations__init(ann);
    swarm__task_spec__init(task);
    swarm__container_spec__init(ctr);
    swarm__replicated_service__init(rep);
    s->id = strdup(id);
    ann->name = strdup(name);
    spec->annotations = ann;
    ctr->image = strdup("/bin/true");
    if (pad > 0) {
        char *env = malloc(pad + 3);
        memcpy(env, "P=", 2);
        memset(env + 2, 'x', pad);
        env[pad + 2] = '\0';
        ctr->env = calloc(1, sizeof *ctr->env);
        ctr->env[0] = env;
        ctr->n_env = 1;
    }
    task->container = ctr;
    spec->task = task;
    rep->replicas = replicas;
    spec->mode_case = SWARM__SERVICE_SPEC__MODE_REPLICATED;
    spec->replicated = rep;
    s->spec = spec;
    a->target_case = SWARM__STORE_ACTION__TARGET_SERVICE;
    a->service = s;
    return a;
}

/* Propose one action through server i and wait for it: 0 or an error. */
static int write1(struct mfx *fx, unsigned i, Swarm__StoreAction *a)
{
    Swarm__StoreCommand cmd = SWARM__STORE_COMMAND__INIT;
    int rv;
    cmd_add(&cmd, a);
    rv = mfx_propose_wait(fx, i, &cmd, 5000);
    cmd_clear(&cmd);
    return rv;
}

/* ------------------------------------------------------------ harness */

static void count_cb(int status, const struct store_result *res, void *data)
{
    int *calls = data;
    calls[0]++;
    calls[1] = status != 0 ? status : res->status;
}

/* A write on the leader reaches every server's store through raftnode's
 * FSM, with the leader's fake wall clock stamped in. */
MFX_TEST(harness_write_reaches_every_store)
{
    unsigned l;
    ASSERT(mfx_run_until_leader(fx, fx->n, 5000));
    l = mfx_leader(fx);
    ASSERT_INT_EQ(write1(fx, l, cluster_create(1000)), 0);
    ASSERT(mfx_run_until_converged(fx, 2000));
    for (unsigned i = 0; i < fx->n; i++) {
        Swarm__Cluster *c = NULL;
        ASSERT_INT_EQ(store_cluster_get_default(fx->s[i].store, &c), 0);
        ASSERT(c->meta->created_at >= MFX_WALL_BASE_MS);
        ASSERT(c->meta->created_at < MFX_WALL_BASE_MS + 10000);
        swarm__cluster__free_unpacked(c, NULL);
    }
    /* A follower refuses at once, naming no error from raft. */
    ASSERT_INT_EQ(write1(fx, (l + 1) % fx->n, cluster_create(1000)), SWARM_ENOTLEADER);
}

/* A proposal pending when its leader is cut off gets exactly one callback,
 * a failure, once raft deposes that leader; a new leader is elected. */
MFX_TEST(harness_lost_leadership_fails_pending)
{
    Swarm__StoreCommand cmd = SWARM__STORE_COMMAND__INIT;
    int calls[2] = {0, 0};
    unsigned l;
    ASSERT(mfx_run_until_leader(fx, fx->n, 5000));
    l = mfx_leader(fx);
    mfx_partition(fx, l);
    cmd_add(&cmd, cluster_create(1000));
    ASSERT_INT_EQ(menv_propose(&fx->s[l].env, &cmd, count_cb, calls), 0);
    cmd_clear(&cmd);
    ASSERT(mfx_run_until_leader(fx, l, 10000));
    ASSERT(!menv_is_leader(&fx->s[l].env));
    mfx_run(fx, 2000);
    ASSERT_INT_EQ(calls[0], 1);
    ASSERT_INT_EQ(calls[1], SWARM_ENOTLEADER);
    for (unsigned i = 0; i < fx->n; i++) {
        Swarm__Cluster *c = NULL;
        ASSERT_INT_EQ(store_cluster_get_default(fx->s[i].store, &c), SWARM_ENOTFOUND);
    }
}

static void timer_fired_cb(uv_timer_t *t)
{
    uint64_t *at = t->data;
    *at = uv_now(t->loop);
}

static bool timer_fired(struct mfx *fx, void *arg)
{
    return *(uint64_t *)arg != 0;
}

/* The loop's timers run on the fixture's time: a 500 ms timer fires once
 * 500 simulated ms have passed, not before, whatever the real clock did. */
MFX_TEST(harness_loop_timers_follow_fixture_time)
{
    static uv_timer_t timer; /* outlives the body: teardown closes it on a failure */
    uint64_t fired = 0, start = mfx_time(fx), loop_start;
    uv_update_time(&fx->loop);
    loop_start = uv_now(&fx->loop);
    uv_timer_init(&fx->loop, &timer);
    timer.data = &fired;
    uv_timer_start(&timer, timer_fired_cb, 500, 0);
    mfx_run(fx, 400);
    ASSERT_INT_EQ(fired, 0);
    ASSERT(mfx_run_until(fx, timer_fired, &fired, 1000));
    ASSERT(fired - loop_start >= 500);
    ASSERT(mfx_time(fx) - start >= 500);
    ASSERT(mfx_time(fx) - start < 700);
    uv_close((uv_handle_t *)&timer, NULL);
    mfx_step(fx); /* the close completes on the loop */
}

/* ------------------------------------------------------- scenarios */

/* A heartbeat period long enough that the dispatcher never marks the seeded
 * nodes Down (they hold no session) within a test that is not about it. */
#define QUIET_PERIOD_MS 600000

static const char *const node_ids[WNODES] = {"nodeaaaaaaaaaaaaaaaaaaaaa",
                                             "nodebbbbbbbbbbbbbbbbbbbbb",
                                             "nodeccccccccccccccccccccc"};

/* The cluster (heartbeat period `period_ms`) and three Ready workers. */
static int seed(struct mfx *fx, unsigned l, int64_t period_ms)
{
    Swarm__StoreCommand cmd = SWARM__STORE_COMMAND__INIT;
    int rv;
    cmd_add(&cmd, cluster_create(period_ms));
    for (unsigned i = 0; i < WNODES; i++) {
        char host[16];
        snprintf(host, sizeof host, "worker%u", i);
        cmd_add(&cmd, node_create(node_ids[i], host, SWARM__NODE_ROLE__NODE_ROLE_WORKER, 0,
                                  SWARM__NODE_STATE__NODE_STATE_READY));
    }
    rv = mfx_propose_wait(fx, l, &cmd, 5000);
    cmd_clear(&cmd);
    return rv;
}

/* What a store holds of a replicated service's tasks. */
struct census {
    size_t tasks;       /* all of the service's tasks */
    size_t running;     /* desired running (or earlier) */
    size_t assigned;    /* of those, on a node */
    size_t dup_slots;   /* desired-running tasks sharing a slot */
    size_t bad_slots;   /* desired-running tasks outside 1..replicas */
};

static struct census census_of(struct store *st, const char *service_id, uint64_t replicas)
{
    struct census c = {0};
    Swarm__Task **tasks = NULL;
    size_t n = 0;
    unsigned char *seen = calloc(replicas + 1, 1);
    if (store_task_list_by_service(st, service_id, &tasks, &n) != 0) {
        free(seen);
        c.tasks = (size_t)-1;
        return c;
    }
    c.tasks = n;
    for (size_t i = 0; i < n; i++) {
        const Swarm__Task *t = tasks[i];
        if (t->desired_state > SWARM__TASK_STATE__TASK_STATE_RUNNING) {
            continue;
        }
        c.running++;
        c.assigned += t->node_id != NULL && t->node_id[0] != '\0';
        if (t->slot < 1 || t->slot > replicas) {
            c.bad_slots++;
        } else if (seen[t->slot]++) {
            c.dup_slots++;
        }
    }
    free(seen);
    store_task_free_list(tasks, n);
    return c;
}

#define SVC_ID "svcaaaaaaaaaaaaaaaaaaaaaa"

struct midway {
    unsigned leader;
    size_t tasks;
    uint64_t seen;  /* last index of the last census */
    size_t count;   /* tasks then */
};

/* The leader has committed some of the scale-up and has the next pass in
 * flight. */
static bool midway(struct mfx *fx, void *arg)
{
    struct midway *w = arg;
    struct mfx_server *s = &fx->s[w->leader];
    uint64_t idx = store_last_index(s->store);
    if (s->n_proposed == s->n_done) {
        return false; /* nothing in flight */
    }
    if (idx != w->seen) {
        w->seen = idx;
        w->count = census_of(s->store, SVC_ID, 1000).tasks;
    }
    return w->count >= w->tasks;
}

/* Waits look at the stores after every fixture step: a census is taken
 * only when a store's last index moved (the tasks carry large specs). */
struct settled_arg {
    const char *service_id;
    uint64_t replicas;
    unsigned skip;             /* this server is not looked at (< n) */
    uint64_t seen[MFX_N];      /* last index of the last census, +1 */
    bool ok[MFX_N];
};

/* Server i's store holds exactly `replicas` tasks desired running, on nodes. */
static bool settled_on(struct mfx *fx, unsigned i, struct settled_arg *a)
{
    uint64_t idx = store_last_index(fx->s[i].store) + 1;
    if (a->seen[i] != idx) {
        struct census c = census_of(fx->s[i].store, a->service_id, a->replicas);
        a->seen[i] = idx;
        a->ok[i] = c.running == a->replicas && c.assigned == a->replicas;
    }
    return a->ok[i];
}

static bool all_settled(struct mfx *fx, void *arg)
{
    struct settled_arg *a = arg;
    for (unsigned i = 0; i < fx->n; i++) {
        if (i != a->skip && !settled_on(fx, i, a)) {
            return false;
        }
    }
    return true;
}

/* (a) A scale-up spread over several passes (a large task spec: the
 * orchestrator creates at most ORCH_MAX_CREATE_BYTES of specs per pass).
 * The leader commits the first pass, then is cut off with the second in
 * flight; the new leader's orchestration loop finishes the job from the
 * store alone: exactly `replicas` tasks desired running, one per slot, each
 * on a node, on every server, also on the old leader once it is back. */
MFX_TEST(scale_up_survives_leader_change)
{
    const size_t pad = ORCH_MAX_CREATE_BYTES / 2 + 1024; /* one task per pass */
    const uint64_t replicas = 3;
    struct settled_arg settled = {SVC_ID, replicas, MFX_N, {0}, {0}};
    struct midway w;
    unsigned l, l2;
    unsigned proposed_when_cut;

    ASSERT(mfx_run_until_leader(fx, fx->n, 5000));
    l = mfx_leader(fx);
    ASSERT_INT_EQ(seed(fx, l, QUIET_PERIOD_MS), 0);
    ASSERT_INT_EQ(write1(fx, l, service_create(SVC_ID, "web", replicas, pad)), 0);

    /* First pass committed (1 task), second in flight: cut the leader off. */
    memset(&w, 0, sizeof w);
    w.leader = l;
    w.tasks = 1;
    if (!mfx_run_until(fx, midway, &w, 5000)) {
        FAILF("no pass in flight after the first: leader %u has %zu tasks, %u proposed, "
              "%u done", l, census_of(fx->s[l].store, SVC_ID, replicas).tasks,
              fx->s[l].n_proposed, fx->s[l].n_done);
    }
    ASSERT_INT_EQ(census_of(fx->s[l].store, SVC_ID, replicas).tasks, 1);
    mfx_partition(fx, l);
    proposed_when_cut = fx->s[l].n_proposed;

    ASSERT(mfx_run_until_leader(fx, l, 10000));
    l2 = mfx_leader(fx);
    ASSERT(l2 != l);
    /* The new leader finishes the scale-up among the servers it reaches. */
    settled.skip = l;
    ASSERT(mfx_run_until(fx, all_settled, &settled, 10000));
    /* The old leader stepped down: its pass failed, once, and it proposed
     * nothing more. */
    ASSERT(!menv_is_leader(&fx->s[l].env));
    ASSERT_INT_EQ(fx->s[l].n_done, fx->s[l].n_proposed);
    ASSERT_INT_EQ(fx->s[l].n_proposed, proposed_when_cut);
    ASSERT(fx->s[l].n_failed >= 1);

    mfx_heal(fx, l);
    settled.skip = fx->n;
    ASSERT(mfx_run_until(fx, all_settled, &settled, 10000));
    ASSERT(mfx_run_until_converged(fx, 5000));
    /* Nothing more happens: the count stays put and no slot is doubled. */
    mfx_run(fx, 2000);
    for (unsigned i = 0; i < fx->n; i++) {
        struct census c = census_of(fx->s[i].store, SVC_ID, replicas);
        ASSERT_INT_EQ(c.tasks, replicas);
        ASSERT_INT_EQ(c.running, replicas);
        ASSERT_INT_EQ(c.assigned, replicas);
        ASSERT_INT_EQ(c.dup_slots, 0);
        ASSERT_INT_EQ(c.bad_slots, 0);
    }
    ASSERT_INT_EQ(mfx_leader(fx), l2);
}

/* Followers' answers to server l are dropped: its entries stay
 * uncommitted, and it stays leader until its election timeout. */
static void mute_followers(struct mfx *fx, unsigned l)
{
    for (unsigned j = 0; j < fx->n; j++) {
        if (j != l) {
            raft_fixture_saturate(&fx->f, j, l);
        }
    }
}

static bool pass_in_flight(struct mfx *fx, void *arg)
{
    struct mfx_server *s = &fx->s[*(unsigned *)arg];
    return s->n_proposed > s->n_done;
}

/* Commit the service, then mute the followers before the leader's
 * orchestration loop proposes its first pass (10 ms after the service is
 * applied): that pass stays in flight. */
static void start_stuck_pass(struct mfx *fx, unsigned l)
{
    ASSERT_INT_EQ(seed(fx, l, QUIET_PERIOD_MS), 0);
    ASSERT_INT_EQ(write1(fx, l, service_create(SVC_ID, "web", 3, 0)), 0);
    mute_followers(fx, l);
    ASSERT(mfx_run_until(fx, pass_in_flight, &l, 1000));
    mfx_run(fx, 200);
    ASSERT(pass_in_flight(fx, &l));
    ASSERT(menv_is_leader(&fx->s[l].env));
}

/* (c) Shutdown with a proposal in flight: the leader's orchestration loop
 * has a pass proposed that its followers never acknowledge when the
 * manager shuts down. Closing the module must not free it while raft still
 * holds its callback: the close completes only once raft's shutdown failed
 * the pass (the callback ran once, on live memory; with a close that does
 * not drain, ASan reports a heap-use-after-free here). MFX_TEST's teardown
 * checks that every module called back its close and every proposal its
 * callback, once. */
MFX_TEST(shutdown_drains_pending_pass)
{
    unsigned l;
    ASSERT(mfx_run_until_leader(fx, fx->n, 5000));
    l = mfx_leader(fx);
    start_stuck_pass(fx, l);
    mods_close(g, l);
    mfx_run(fx, 50);
    ASSERT(!g->m[l].orch_closed); /* still waiting for its pass */
    ASSERT(pass_in_flight(fx, &l));
    /* The teardown shuts every server down: raft fails the pass. */
}

/* The same close, then the leadership is lost instead (the followers never
 * answered): raft fails the pass, the loop finishes closing, and the
 * cluster goes on without it: the new leader's loop creates the tasks and
 * the closed loop is never called again. */
MFX_TEST(close_then_leadership_loss_drains)
{
    struct settled_arg settled = {SVC_ID, 3, MFX_N, {0}, {0}};
    unsigned l, proposed;
    ASSERT(mfx_run_until_leader(fx, fx->n, 5000));
    l = mfx_leader(fx);
    start_stuck_pass(fx, l);
    mods_close(g, l);
    proposed = fx->s[l].n_proposed;
    ASSERT(mfx_run_until_leader(fx, l, 10000));
    ASSERT(g->m[l].orch_closed);
    ASSERT_INT_EQ(fx->s[l].n_done, proposed);
    mfx_heal(fx, l);
    ASSERT(mfx_run_until(fx, all_settled, &settled, 10000));
    ASSERT_INT_EQ(fx->s[l].n_proposed, proposed);
}

/* ------------------------------------------------- nodes with sessions */

#define CLUSTER_ID "cluster000000000000000000"

static int pki_make(struct glue *g)
{
    char em[SWARM_ERRMSG_SIZE];
    int64_t now = (int64_t)time(NULL); /* certificates: the real wall clock */
    if (g->root != NULL) {
        return 0;
    }
    if (pki_key_generate(&g->root_key, em) != 0 ||
        pki_root_ca_create(g->root_key, now, PKI_ROOT_LIFETIME_S, &g->root, em) != 0 ||
        pki_key_generate(&g->mgr_key, em) != 0 ||
        pki_cert_issue(g->root, g->root_key, g->mgr_key, "managerxxxxxxxxxxxxxxxxxx",
                       "swarm-manager", CLUSTER_ID, now, PKI_NODE_LIFETIME_S, &g->mgr_cert,
                       em) != 0) {
        fprintf(stderr, "pki: %s\n", em);
        return -1;
    }
    return 0;
}

/* Server i serves the Dispatcher service on 127.0.0.1 (any port), from its
 * dispatcher (the slot, as mslot.h). */
static int serve_dispatcher(struct glue *g, unsigned i)
{
    char em[SWARM_ERRMSG_SIZE];
    struct mods *m = &g->m[i];
    SSL_CTX *ctx = NULL;
    int rv;
    if (pki_make(g) != 0 || pki_server_ctx(g->root, g->mgr_cert, g->mgr_key, &ctx, em) != 0) {
        return -1;
    }
    m->api = api_server_new(&g->fx->loop, 0);
    g->net_opened++;
    dispatcher_register(m->api, &m->slot);
    rv = api_server_listen_tls(m->api, "127.0.0.1:0", ctx, em);
    SSL_CTX_free(ctx);
    if (rv != 0) {
        fprintf(stderr, "listen: %s\n", em);
        return -1;
    }
    snprintf(m->api_addr, sizeof m->api_addr, "127.0.0.1:%d", api_server_tls_port(m->api));
    return 0;
}

static void wnode_hb_done_cb(enum api_status status, const char *message,
                             const ProtobufCMessage *resp, void *data)
{
    struct wnode *w = data;
    if (status == API_OK) {
        w->hb_ok++;
    }
}

static void wnode_hb_cb(uv_timer_t *t)
{
    struct wnode *w = t->data;
    Swarm__HeartbeatRequest req = SWARM__HEARTBEAT_REQUEST__INIT;
    if (w->silent || w->session_id[0] == '\0' || w->closed) {
        return;
    }
    req.session_id = w->session_id;
    api_client_unary(w->c, &swarm__dispatcher__descriptor, "Heartbeat", &req.base, 0,
                     wnode_hb_done_cb, w);
}

static void wnode_session_msg_cb(const ProtobufCMessage *msg, void *data)
{
    struct wnode *w = data;
    const Swarm__SessionMessage *m = (const Swarm__SessionMessage *)msg;
    if (m->session_id != NULL && m->session_id[0] != '\0') {
        snprintf(w->session_id, sizeof w->session_id, "%s", m->session_id);
    }
}

static void wnode_session_done_cb(enum api_status status, const char *message,
                                  const ProtobufCMessage *resp, void *data)
{
    struct wnode *w = data;
    w->session_id[0] = '\0';
    w->sessions_ended++;
}

static void wnode_connect_cb(struct api_client *c, int status, const char *errmsg, void *data)
{
    struct wnode *w = data;
    Swarm__SessionRequest req = SWARM__SESSION_REQUEST__INIT;
    if (status != 0 || w->closed) {
        fprintf(stderr, "node %s: connect: %s\n", w->node_id, errmsg ? errmsg : "");
        return;
    }
    api_client_stream(c, &swarm__dispatcher__descriptor, "Session", &req.base, 0,
                      wnode_session_msg_cb, wnode_session_done_cb, w, NULL);
}

/* Node k connects to `addr` with its own worker certificate, opens its
 * session and heartbeats every half period (`period_ms`). */
static int wnode_start(struct glue *g, unsigned k, const char *addr, uint64_t period_ms)
{
    char em[SWARM_ERRMSG_SIZE];
    struct wnode *w = &g->w[k];
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    SSL_CTX *ctx = NULL;
    int rv = -1;
    w->g = g;
    w->node_id = node_ids[k];
    if (pki_make(g) != 0 || pki_key_generate(&key, em) != 0 ||
        pki_cert_issue(g->root, g->root_key, key, w->node_id, "swarm-worker", CLUSTER_ID,
                       (int64_t)time(NULL), PKI_NODE_LIFETIME_S, &cert, em) != 0 ||
        pki_client_ctx(g->root, cert, key, &ctx, em) != 0) {
        goto out;
    }
    w->c = api_client_new(&g->fx->loop, 0);
    uv_timer_init(&g->fx->loop, &w->hb);
    w->hb.data = w;
    w->made = true;
    g->net_opened += 2;
    uv_timer_start(&w->hb, wnode_hb_cb, period_ms / 2, period_ms / 2);
    rv = api_client_connect_tls(w->c, addr, ctx, NULL, 0, wnode_connect_cb, w);
out:
    SSL_CTX_free(ctx);
    X509_free(cert);
    EVP_PKEY_free(key);
    return rv;
}

static bool sessions_open(struct mfx *fx, void *arg)
{
    struct glue *g = arg;
    for (unsigned k = 0; k < WNODES; k++) {
        if (g->w[k].session_id[0] == '\0' || g->w[k].hb_ok == 0) {
            return false;
        }
    }
    return true;
}

static Swarm__NodeState node_state(struct store *st, const char *id)
{
    Swarm__Node *n = NULL;
    Swarm__NodeState state;
    if (store_node_get(st, id, &n) != 0) {
        return (Swarm__NodeState)-1;
    }
    state = n->status != NULL ? n->status->state : SWARM__NODE_STATE__NODE_STATE_UNKNOWN;
    swarm__node__free_unpacked(n, NULL);
    return state;
}

struct down_arg {
    unsigned server;
    const char *node_id;
};

static bool node_down(struct mfx *fx, void *arg)
{
    struct down_arg *a = arg;
    return node_state(fx->s[a->server].store, a->node_id) == SWARM__NODE_STATE__NODE_STATE_DOWN;
}

/* Tasks of the service desired running on `node_id` in a store. */
static size_t tasks_on(struct store *st, const char *node_id)
{
    Swarm__Task **tasks = NULL;
    size_t n = 0, k = 0;
    if (store_task_list_by_node(st, node_id, &tasks, &n) != 0) {
        return (size_t)-1;
    }
    for (size_t i = 0; i < n; i++) {
        k += tasks[i]->desired_state <= SWARM__TASK_STATE__TASK_STATE_RUNNING;
    }
    store_task_free_list(tasks, n);
    return k;
}

#define PERIOD_MS 1000

struct hb_arg {
    struct wnode *w;
    unsigned before;
};

static bool hb_answered(struct mfx *fx, void *arg)
{
    struct hb_arg *a = arg;
    return a->w->hb_ok > a->before;
}

struct moved_arg {
    struct settled_arg *settled;
    const char *from;
};

/* Every store: the service settled again and nothing desired running on
 * the node `from`. */
static bool task_moved(struct mfx *fx, void *arg)
{
    struct moved_arg *a = arg;
    if (!all_settled(fx, a->settled)) {
        return false;
    }
    for (unsigned i = 0; i < fx->n; i++) {
        if (tasks_on(fx->s[i].store, a->from) != 0) {
            return false;
        }
    }
    return true;
}

/* (d) A node missing its heartbeats: three workers hold real sessions with
 * the leader's dispatcher (mutual TLS, their own certificates) and
 * heartbeat on the fake clock; one tasks of a 3-replica service runs on
 * each. One node goes silent (its connection stays up): it is still Ready
 * until DISPATCHER_MISSED (3) periods have passed since its last heartbeat,
 * then the dispatcher marks it Down, on every server, the others stay
 * Ready, and the orchestrator moves its task to a live node: again 3 tasks
 * desired running, one per slot, none on the silent node. */
MFX_TEST(missed_heartbeats_mark_node_down_and_move_its_tasks)
{
    struct settled_arg settled = {SVC_ID, 3, MFX_N, {0}, {0}};
    struct down_arg down;
    uint64_t silent_at, last_hb;
    unsigned l, hb_before;

    ASSERT(mfx_run_until_leader(fx, fx->n, 5000));
    l = mfx_leader(fx);
    ASSERT_INT_EQ(seed(fx, l, PERIOD_MS), 0);
    ASSERT_INT_EQ(serve_dispatcher(g, l), 0);
    for (unsigned k = 0; k < WNODES; k++) {
        ASSERT_INT_EQ(wnode_start(g, k, g->m[l].api_addr, PERIOD_MS), 0);
    }
    ASSERT(mfx_run_until(fx, sessions_open, g, 2000));
    ASSERT_INT_EQ(write1(fx, l, service_create(SVC_ID, "web", 3, 0)), 0);
    ASSERT(mfx_run_until(fx, all_settled, &settled, 5000));
    for (unsigned k = 0; k < WNODES; k++) {
        ASSERT_INT_EQ(tasks_on(fx->s[l].store, node_ids[k]), 1);
    }
    /* Well past the grace for nodes without a session: every node is
     * Ready, since each keeps heartbeating. */
    mfx_run(fx, 4 * PERIOD_MS);
    for (unsigned k = 0; k < WNODES; k++) {
        ASSERT_INT_EQ(node_state(fx->s[l].store, node_ids[k]),
                      SWARM__NODE_STATE__NODE_STATE_READY);
        ASSERT_INT_EQ(g->w[k].sessions_ended, 0);
    }

    /* Node a goes silent right after a heartbeat was answered. */
    hb_before = g->w[0].hb_ok;
    ASSERT(mfx_run_until(fx, hb_answered, &(struct hb_arg){&g->w[0], hb_before}, 2000));
    g->w[0].silent = true;
    silent_at = mfx_time(fx);
    last_hb = silent_at;
    /* Still Ready just short of three periods. */
    mfx_run(fx, 3 * PERIOD_MS - PERIOD_MS / 2);
    ASSERT_INT_EQ(node_state(fx->s[l].store, node_ids[0]), SWARM__NODE_STATE__NODE_STATE_READY);
    down.server = l;
    down.node_id = node_ids[0];
    ASSERT(mfx_run_until(fx, node_down, &down, 2 * PERIOD_MS));
    ASSERT(mfx_time(fx) - last_hb >= 3 * PERIOD_MS);
    ASSERT_INT_EQ(g->w[0].sessions_ended, 1); /* its session was ended */
    /* The orchestrator moves its task; the others stay up. */
    settled.skip = MFX_N;
    memset(settled.seen, 0, sizeof settled.seen);
    ASSERT(mfx_run_until(fx, task_moved, &(struct moved_arg){&settled, node_ids[0]}, 5000));
    ASSERT(mfx_run_until_converged(fx, 2000));
    for (unsigned i = 0; i < fx->n; i++) {
        struct census c = census_of(fx->s[i].store, SVC_ID, 3);
        ASSERT_INT_EQ(node_state(fx->s[i].store, node_ids[0]), SWARM__NODE_STATE__NODE_STATE_DOWN);
        ASSERT_INT_EQ(node_state(fx->s[i].store, node_ids[1]), SWARM__NODE_STATE__NODE_STATE_READY);
        ASSERT_INT_EQ(node_state(fx->s[i].store, node_ids[2]), SWARM__NODE_STATE__NODE_STATE_READY);
        ASSERT_INT_EQ(tasks_on(fx->s[i].store, node_ids[0]), 0);
        ASSERT_INT_EQ(tasks_on(fx->s[i].store, node_ids[1]) + tasks_on(fx->s[i].store, node_ids[2]),
                      3);
        ASSERT_INT_EQ(c.running, 3);
        ASSERT_INT_EQ(c.dup_slots, 0);
        ASSERT_INT_EQ(c.bad_slots, 0);
    }
    ASSERT_INT_EQ(g->w[1].sessions_ended, 0);
    ASSERT_INT_EQ(g->w[2].sessions_ended, 0);
}

/* (c) again, for the dispatcher: a node opens its session while the
 * leader's followers do not answer, so the flush that marks it Ready stays
 * in flight; closing the dispatcher then waits for it (raft fails it when
 * the leader loses its leadership or shuts down), and the flush's callback
 * runs on live memory. */
MFX_TEST(close_drains_pending_flush)
{
    unsigned l, proposed;
    ASSERT(mfx_run_until_leader(fx, fx->n, 5000));
    l = mfx_leader(fx);
    ASSERT_INT_EQ(seed(fx, l, QUIET_PERIOD_MS), 0);
    mfx_run(fx, 100); /* the orchestration loop's pass over the seed */
    ASSERT(!pass_in_flight(fx, &l));
    ASSERT_INT_EQ(serve_dispatcher(g, l), 0);
    mute_followers(fx, l);
    proposed = fx->s[l].n_proposed;
    ASSERT_INT_EQ(wnode_start(g, 0, g->m[l].api_addr, QUIET_PERIOD_MS), 0);
    ASSERT(mfx_run_until(fx, pass_in_flight, &l, 1000));
    ASSERT_INT_EQ(fx->s[l].n_proposed, proposed + 1);
    ASSERT(g->w[0].session_id[0] != '\0');
    mods_close(g, l);
    mfx_run(fx, 50);
    ASSERT(!g->m[l].disp_closed); /* still waiting for its flush */
    ASSERT(mfx_run_until_leader(fx, l, 10000));
    ASSERT(g->m[l].disp_closed);
    ASSERT_INT_EQ(fx->s[l].n_done, fx->s[l].n_proposed);
}

/* -------------------------------------------------------------- demotion */

static const char *const mgr_ids[MFX_N] = {"mgraaaaaaaaaaaaaaaaaaaaaa", "mgrbbbbbbbbbbbbbbbbbbbbbb",
                                           "mgrccccccccccccccccccccca"};

/* Server i's Node: a manager whose raft id and address are the fixture's. */
static Swarm__StoreAction *manager_node(struct mfx *fx, unsigned i)
{
    char host[16];
    Swarm__StoreAction *a;
    snprintf(host, sizeof host, "manager%u", i);
    a = node_create(mgr_ids[i], host, SWARM__NODE_ROLE__NODE_ROLE_MANAGER, fx->s[i].id,
                    SWARM__NODE_STATE__NODE_STATE_READY);
    free(a->node->manager_status->addr);
    a->node->manager_status->addr = strdup(fx->f.servers[i].address);
    /* Drained: the service's tasks go to the workers. */
    a->node->spec->availability = SWARM__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN;
    return a;
}

/* `node_id` asked to become a worker (what `node demote` writes). */
static Swarm__StoreAction *demote_action(struct store *st, const char *node_id)
{
    Swarm__StoreAction *a = action_new(SWARM__STORE_ACTION_KIND__STORE_ACTION_UPDATE);
    Swarm__Node *n = NULL;
    if (store_node_get(st, node_id, &n) != 0) {
        return a;
    }
    n->spec->desired_role = SWARM__NODE_ROLE__NODE_ROLE_WORKER;
    a->target_case = SWARM__STORE_ACTION__TARGET_NODE;
    a->node = n;
    return a;
}

static Swarm__StoreAction *scale_action(struct store *st, const char *service_id,
                                        uint64_t replicas)
{
    Swarm__StoreAction *a = action_new(SWARM__STORE_ACTION_KIND__STORE_ACTION_UPDATE);
    Swarm__Service *svc = NULL;
    if (store_service_get(st, service_id, &svc) != 0) {
        return a;
    }
    svc->spec->replicated->replicas = replicas;
    a->target_case = SWARM__STORE_ACTION__TARGET_SERVICE;
    a->service = svc;
    return a;
}

static bool is_not_leader(struct mfx *fx, void *arg)
{
    return !menv_is_leader(&fx->s[*(unsigned *)arg].env);
}

struct role_arg {
    unsigned server;
    const char *node_id;
};

/* The Node records the demotion: a worker without manager status. */
static bool demotion_recorded(struct mfx *fx, void *arg)
{
    struct role_arg *a = arg;
    Swarm__Node *n = NULL;
    bool done;
    if (store_node_get(fx->s[a->server].store, a->node_id, &n) != 0) {
        return false;
    }
    done = n->role == SWARM__NODE_ROLE__NODE_ROLE_WORKER && n->manager_status == NULL;
    swarm__node__free_unpacked(n, NULL);
    return done;
}

static bool in_config(const struct raft_configuration *conf, raft_id id)
{
    for (unsigned i = 0; i < conf->n; i++) {
        if (conf->servers[i].id == id) {
            return true;
        }
    }
    return false;
}

/* (b) Demotion of the leader: `node demote` on the leading manager. Its role
 * manager removes it from raft (one change, called back once); raft then
 * deposes it, and its leader-only loops (orchestration, dispatcher, role
 * manager) propose nothing from then on. A new leader's role manager
 * records the demotion in the Node, the configuration holds the two others
 * as voters, and the new leader's orchestration loop serves a scale-up. */
MFX_TEST(demoted_leader_leaves_raft_and_stops_proposing)
{
    Swarm__StoreCommand cmd = SWARM__STORE_COMMAND__INIT;
    struct settled_arg settled = {SVC_ID, 3, MFX_N, {0}, {0}};
    struct role_arg recorded;
    unsigned l, l2, proposed;
    const struct raft_configuration *conf;

    ASSERT(mfx_run_until_leader(fx, fx->n, 5000));
    l = mfx_leader(fx);
    ASSERT_INT_EQ(seed(fx, l, QUIET_PERIOD_MS), 0);
    for (unsigned i = 0; i < fx->n; i++) {
        cmd_add(&cmd, manager_node(fx, i));
    }
    ASSERT_INT_EQ(mfx_propose_wait(fx, l, &cmd, 5000), 0);
    cmd_clear(&cmd);
    ASSERT_INT_EQ(write1(fx, l, service_create(SVC_ID, "web", 3, 0)), 0);
    ASSERT(mfx_run_until(fx, all_settled, &settled, 5000));
    /* Store and raft agree: the role manager changes nothing. */
    mfx_run(fx, 1000);
    ASSERT_INT_EQ(fx->s[l].n_changes, 0);

    ASSERT_INT_EQ(write1(fx, l, demote_action(fx->s[l].store, mgr_ids[l])), 0);
    ASSERT(mfx_run_until(fx, is_not_leader, &l, 5000));
    proposed = fx->s[l].n_proposed;
    ASSERT_INT_EQ(fx->s[l].n_changes, 1);
    ASSERT_INT_EQ(fx->s[l].n_changes_done, 1);
    ASSERT(!in_config(mfx_members(&fx->s[l]), fx->s[l].id));

    ASSERT(mfx_run_until_leader(fx, l, 10000));
    l2 = mfx_leader(fx);
    recorded.server = l2;
    recorded.node_id = mgr_ids[l];
    ASSERT(mfx_run_until(fx, demotion_recorded, &recorded, 5000));
    conf = mfx_members(&fx->s[l2]);
    ASSERT_INT_EQ(conf->n, 2);
    ASSERT(!in_config(conf, fx->s[l].id));
    for (unsigned i = 0; i < conf->n; i++) {
        ASSERT_INT_EQ(conf->servers[i].role, RAFT_VOTER);
    }

    /* The new leader's loop scales the service; the demoted one stays quiet. */
    ASSERT_INT_EQ(write1(fx, l2, scale_action(fx->s[l2].store, SVC_ID, 5)), 0);
    settled.replicas = 5;
    settled.skip = l; /* out of the configuration: its store stops here */
    memset(settled.seen, 0, sizeof settled.seen);
    ASSERT(mfx_run_until(fx, all_settled, &settled, 5000));
    mfx_run(fx, 2000);
    ASSERT_INT_EQ(fx->s[l].n_proposed, proposed);
    ASSERT(!menv_is_leader(&fx->s[l].env));
    ASSERT_INT_EQ(mfx_leader(fx), l2);
}

static bool role_closed(struct mfx *fx, void *arg)
{
    return ((struct mods *)arg)->role_closed;
}

static bool change_in_flight(struct mfx *fx, void *arg)
{
    struct mfx_server *s = &fx->s[*(unsigned *)arg];
    return s->n_changes > s->n_changes_done;
}

/* (c) again, for the role manager: a follower's demotion is committed, then
 * the leader's followers stop answering, so the removal the role manager
 * starts stays uncommitted; closing the role manager waits for that change
 * to call back (committed once the followers answer again, or failed if
 * the leader was deposed meanwhile). */
MFX_TEST(close_drains_pending_membership_change)
{
    Swarm__StoreCommand cmd = SWARM__STORE_COMMAND__INIT;
    unsigned l, f;
    ASSERT(mfx_run_until_leader(fx, fx->n, 5000));
    l = mfx_leader(fx);
    f = (l + 1) % fx->n;
    ASSERT_INT_EQ(seed(fx, l, QUIET_PERIOD_MS), 0);
    for (unsigned i = 0; i < fx->n; i++) {
        cmd_add(&cmd, manager_node(fx, i));
    }
    ASSERT_INT_EQ(mfx_propose_wait(fx, l, &cmd, 5000), 0);
    cmd_clear(&cmd);
    mfx_run(fx, 500);
    ASSERT_INT_EQ(fx->s[l].n_changes, 0);
    ASSERT_INT_EQ(write1(fx, l, demote_action(fx->s[l].store, mgr_ids[f])), 0);
    mute_followers(fx, l);
    ASSERT(mfx_run_until(fx, change_in_flight, &l, 1000));
    mods_close(g, l);
    mfx_run(fx, 50);
    ASSERT(!g->m[l].role_closed); /* still waiting for its change */
    mfx_heal(fx, l);
    ASSERT(mfx_run_until(fx, role_closed, &g->m[l], 10000));
    ASSERT_INT_EQ(fx->s[l].n_changes, 1);
    ASSERT_INT_EQ(fx->s[l].n_changes_done, 1);
}

/* ------------------------------------------------ network allocation */

#define NET_ID "netaaaaaaaaaaaaaaaaaaaaaa"

static Swarm__StoreAction *network_create(void)
{
    Swarm__StoreAction *a = action_new(SWARM__STORE_ACTION_KIND__STORE_ACTION_CREATE);
    Swarm__Network *n = calloc(1, sizeof *n);
    Swarm__NetworkSpec *spec = calloc(1, sizeof *spec);
    Swarm__Annotations *ann = calloc(1, sizeof *ann);
    Swarm__IPAMConfig *ipam = calloc(1, sizeof *ipam);
    swarm__network__init(n);
    swarm__network_spec__init(spec);
    swarm__annotations__init(ann);
    swarm__ipamconfig__init(ipam);
    n->id = strdup(NET_ID);
    ann->name = strdup("front");
    spec->annotations = ann;
    spec->driver = strdup("overlay");
    n->spec = spec;
    ipam->subnet = strdup("10.0.1.0/24");
    ipam->gateway = strdup("10.0.1.1");
    n->ipam = ipam;
    n->vni = 4098;
    a->target_case = SWARM__STORE_ACTION__TARGET_NETWORK;
    a->network = n;
    return a;
}

static Swarm__StoreAction *service_on_network(uint64_t replicas)
{
    Swarm__StoreAction *a = service_create(SVC_ID, "web", replicas, 0);
    Swarm__TaskSpec *t = a->service->spec->task;
    t->networks = calloc(1, sizeof *t->networks);
    t->networks[0] = calloc(1, sizeof **t->networks);
    swarm__network_attachment_config__init(t->networks[0]);
    t->networks[0]->target = strdup(NET_ID);
    t->n_networks = 1;
    return a;
}

/* The service's VIP on the network, as a server's store holds it ("" if none). */
static void vip_of(struct store *st, char *out, size_t size)
{
    Swarm__Service *svc = NULL;
    out[0] = '\0';
    if (store_service_get(st, SVC_ID, &svc) == 0) {
        if (svc->endpoint != NULL && svc->endpoint->n_virtual_ips == 1) {
            snprintf(out, size, "%s", svc->endpoint->virtual_ips[0]->addr);
        }
        swarm__service__free_unpacked(svc, NULL);
    }
}

static bool vip_committed(struct mfx *fx, void *arg)
{
    char vip[32];
    vip_of(fx->s[*(unsigned *)arg].store, vip, sizeof vip);
    return vip[0] != '\0';
}

/* No address has two live owners in server i's store: every live task (up
 * to running) of the service is attached once to the network, and its
 * address is neither another live task's, nor the VIP, nor the gateway.
 * Returns the number of live tasks desired running, or -1 (why set). */
static long addresses_check(struct store *st, char *why, size_t size)
{
    Swarm__Task **tasks = NULL;
    size_t n = 0;
    long live = 0;
    char vip[32];
    const char **seen;
    size_t n_seen = 0;
    vip_of(st, vip, sizeof vip);
    if (vip[0] == '\0' || store_task_list_by_service(st, SVC_ID, &tasks, &n) != 0) {
        snprintf(why, size, "no VIP or no tasks");
        return -1;
    }
    seen = calloc(n + 1, sizeof *seen);
    for (size_t i = 0; i < n && live >= 0; i++) {
        const Swarm__Task *t = tasks[i];
        if (t->status != NULL && t->status->state > SWARM__TASK_STATE__TASK_STATE_RUNNING) {
            continue;
        }
        if (t->n_networks != 1 || t->networks[0]->n_addresses != 1 || t->networks[0]->network == NULL ||
            strcmp(t->networks[0]->network->id, NET_ID) != 0) {
            snprintf(why, size, "task %s is not attached once to the network", t->id);
            live = -1;
            break;
        }
        const char *addr = t->networks[0]->addresses[0];
        if (strcmp(addr, vip) == 0 || strcmp(addr, "10.0.1.1/24") == 0) {
            snprintf(why, size, "task %s holds %s, the VIP or the gateway", t->id, addr);
            live = -1;
            break;
        }
        for (size_t k = 0; k < n_seen; k++) {
            if (strcmp(seen[k], addr) == 0) {
                snprintf(why, size, "address %s has two live owners", addr);
                live = -1;
                break;
            }
        }
        seen[n_seen++] = addr;
        if (live >= 0 && t->desired_state <= SWARM__TASK_STATE__TASK_STATE_RUNNING) {
            live++;
        }
    }
    free(seen);
    store_task_free_list(tasks, n);
    return live;
}

/* (d) A leader change in the middle of allocating: the service's VIP is
 * committed, then the leader's pass creating its tasks (each with an
 * address) is left in flight, acknowledged by nobody, and the leader loses
 * its followers. The new leader (which may commit that pass after its
 * barrier, or not) allocates from the store alone; a scale-up to 12 on it,
 * then the old leader back: on every server, 12 tasks, every address
 * distinct, none the VIP's or the gateway's. */
MFX_TEST(allocation_survives_leader_change)
{
    struct settled_arg settled = {SVC_ID, 12, MFX_N, {0}, {0}};
    char why[256] = "";
    unsigned l, l2;

    ASSERT(mfx_run_until_leader(fx, fx->n, 5000));
    l = mfx_leader(fx);
    ASSERT_INT_EQ(seed(fx, l, QUIET_PERIOD_MS), 0);
    ASSERT_INT_EQ(write1(fx, l, network_create()), 0);
    ASSERT_INT_EQ(write1(fx, l, service_on_network(3)), 0);
    ASSERT(mfx_run_until(fx, vip_committed, &l, 2000));
    mute_followers(fx, l);
    ASSERT(mfx_run_until(fx, pass_in_flight, &l, 1000));
    mfx_run(fx, 200);
    ASSERT(pass_in_flight(fx, &l));

    ASSERT(mfx_run_until_leader(fx, l, 10000));
    l2 = mfx_leader(fx);
    ASSERT(l2 != l);
    ASSERT_INT_EQ(write1(fx, l2, scale_action(fx->s[l2].store, SVC_ID, 12)), 0);
    settled.skip = l;
    ASSERT(mfx_run_until(fx, all_settled, &settled, 10000));
    mfx_heal(fx, l);
    settled.skip = fx->n;
    ASSERT(mfx_run_until(fx, all_settled, &settled, 10000));
    ASSERT(mfx_run_until_converged(fx, 5000));
    mfx_run(fx, 1000);
    for (unsigned i = 0; i < fx->n; i++) {
        long live = addresses_check(fx->s[i].store, why, sizeof why);
        if (live != 12) {
            FAILF("server %u: %ld live tasks: %s", i, live, why);
        }
    }
}

TEST_MAIN()
