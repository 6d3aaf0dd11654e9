/* Deterministic tests of the manager glue: the store, the orchestration
 * loop, the dispatcher and the role manager on a fixture of three raft
 * servers with a fake clock (mgrfix.h). Nothing here reads the real clock
 * or sleeps: every wait is a number of simulated milliseconds. */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "mgrfix.h"
#include "orchestrator.h"
#include "orchloop.h"
#include "test.h"

/* The modules of each server, wired as manager.c wires them: every
 * committed change of its store goes to each module, and leadership (after
 * the barrier) to the leader-only loops. */
struct mods {
    struct mfx_server *s;
    struct orchloop *orch;
    unsigned closed; /* close callbacks that ran */
    unsigned opened; /* modules made */
};

struct glue {
    struct mfx *fx;
    struct mods m[MFX_N];
};

static void mods_event_cb(const struct store_event *ev, void *data)
{
    struct mods *m = data;
    orchloop_on_event(m->orch, ev);
}

static void mods_leader_cb(struct mfx_server *s, bool leader, void *data)
{
    struct mods *m = data;
    orchloop_set_leader(m->orch, leader);
}

static void mods_closed_cb(void *data)
{
    struct mods *m = data;
    m->closed++;
}

/* Make server i's modules and tell them whether it leads now. */
static void mods_open(struct glue *g, unsigned i)
{
    struct mods *m = &g->m[i];
    m->s = &g->fx->s[i];
    m->orch = orchloop_new(&m->s->env);
    m->opened++;
    store_set_event_cb(m->s->store, mods_event_cb, m);
    m->s->on_leader = mods_leader_cb;
    m->s->on_leader_data = m;
    orchloop_set_leader(m->orch, menv_is_leader(&m->s->env));
}

/* Close server i's modules, as manager_close does: no more events or
 * leadership reports, then each module's close (which waits for what it
 * has in flight). */
static void mods_close(struct glue *g, unsigned i)
{
    struct mods *m = &g->m[i];
    if (m->s == NULL || m->orch == NULL) {
        return;
    }
    store_set_event_cb(m->s->store, NULL, NULL);
    m->s->on_leader = NULL;
    orchloop_close(m->orch, mods_closed_cb, m);
    m->orch = NULL;
}

/* Each test body runs between mfx_init and mfx_close with every server's
 * modules open: an assertion that fails returns from the body, and the
 * modules and the cluster are still torn down, after which every module
 * must have called back its close (drained). */
#define MFX_TEST(tname)                                                     \
    static void body_##tname(struct mfx *fx, struct glue *g);               \
    TEST(tname)                                                             \
    {                                                                       \
        struct mfx fx;                                                      \
        struct glue g;                                                      \
        char errmsg_[SWARM_ERRMSG_SIZE] = "";                               \
        if (mfx_init(&fx, errmsg_, sizeof errmsg_) != 0) {                  \
            FAILF("mfx_init: %s", errmsg_);                                 \
        }                                                                   \
        memset(&g, 0, sizeof g);                                            \
        g.fx = &fx;                                                         \
        for (unsigned i_ = 0; i_ < fx.n; i_++) {                            \
            mods_open(&g, i_);                                              \
        }                                                                   \
        body_##tname(&fx, &g);                                              \
        for (unsigned i_ = 0; i_ < fx.n; i_++) {                            \
            mods_close(&g, i_);                                             \
        }                                                                   \
        mfx_close(&fx);                                                     \
        for (unsigned i_ = 0; i_ < fx.n; i_++) {                            \
            if (g.m[i_].closed != g.m[i_].opened) {                         \
                FAILF("server %u: %u module(s) never finished closing", i_, \
                      g.m[i_].opened - g.m[i_].closed);                     \
            }                                                               \
            if (fx.s[i_].n_done != fx.s[i_].n_proposed) {                   \
                FAILF("server %u: %u proposal(s), %u callback(s)", i_,      \
                      fx.s[i_].n_proposed, fx.s[i_].n_done);                \
            }                                                               \
        }                                                                   \
    }                                                                       \
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
    uv_timer_t timer;
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
}

/* ------------------------------------------------------- scenarios */

/* The cluster (heartbeat period `period_ms`) and three Ready workers. */
static int seed(struct mfx *fx, unsigned l, int64_t period_ms)
{
    Swarm__StoreCommand cmd = SWARM__STORE_COMMAND__INIT;
    static const char *const ids[] = {"nodeaaaaaaaaaaaaaaaaaaaaa", "nodebbbbbbbbbbbbbbbbbbbbb",
                                      "nodeccccccccccccccccccccc"};
    int rv;
    cmd_add(&cmd, cluster_create(period_ms));
    for (unsigned i = 0; i < 3; i++) {
        char host[16];
        snprintf(host, sizeof host, "worker%u", i);
        cmd_add(&cmd, node_create(ids[i], host, SWARM__NODE_ROLE__NODE_ROLE_WORKER, 0,
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
    ASSERT_INT_EQ(seed(fx, l, 1000), 0);
    ASSERT_INT_EQ(write1(fx, l, service_create(SVC_ID, "web", replicas, pad)), 0);

    /* First pass committed (1 task), second in flight: cut the leader off. */
    memset(&w, 0, sizeof w);
    w.leader = l;
    w.tasks = 1;
    if (!mfx_run_until(fx, midway, &w, 5000)) {
        FAILF("no pass in flight after the first: leader %u has %zu tasks, %u proposed, %u done, is_leader %d", l,
              census_of(fx->s[l].store, SVC_ID, replicas).tasks, fx->s[l].n_proposed,
              fx->s[l].n_done, menv_is_leader(&fx->s[l].env));
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
    ASSERT_INT_EQ(seed(fx, l, 1000), 0);
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
    if (test_failed_flag) {
        return;
    }
    mods_close(g, l);
    mfx_run(fx, 50);
    ASSERT_INT_EQ(g->m[l].closed, 0); /* still waiting for its pass */
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
    if (test_failed_flag) {
        return;
    }
    mods_close(g, l);
    proposed = fx->s[l].n_proposed;
    ASSERT(mfx_run_until_leader(fx, l, 10000));
    ASSERT_INT_EQ(g->m[l].closed, 1);
    ASSERT_INT_EQ(fx->s[l].n_done, proposed);
    mfx_heal(fx, l);
    ASSERT(mfx_run_until(fx, all_settled, &settled, 10000));
    ASSERT_INT_EQ(fx->s[l].n_proposed, proposed);
}

TEST_MAIN()
