/* Loop tests of the agent against fake dispatchers: the real RPC server
 * (TLS on 127.0.0.41 with real certificates from pki.c) with handlers for
 * swarm.Dispatcher written here, the simulated executor (and the process
 * executor running /bin/sleep, through this binary as the shim). Every wait
 * is bounded (RUN_UNTIL) and every test ends with uv_loop_close() == 0. */
#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "statedir.h"
#include "agent.h"
#include "api.h"
#include "dispatcher.pb-c.h"
#include "err.h"
#include "executor.h"
#include "pki.h"
#include "test.h"

/* The process executor spawns /proc/self/exe --task-exec ...: be the shim
 * (glibc passes argc/argv to constructors). */
__attribute__((constructor)) static void shim_ctor(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--task-exec") == 0) {
        _exit(executor_shim_main(argc, argv));
    }
}

/* ------------------------------------------------------------ fixture */

static uv_loop_t loop;
static uv_timer_t tick;
static char tmpdir[64];

static void tick_cb(uv_timer_t *t)
{
    (void)t;
}

#define RUN_UNTIL(cond, ms)                                               \
    ({                                                                    \
        uint64_t end_ = uv_now(&loop) + (ms);                             \
        uv_timer_start(&tick, tick_cb, 5, 5);                             \
        while (!(cond) && uv_now(&loop) < end_) {                         \
            uv_run(&loop, UV_RUN_ONCE);                                   \
        }                                                                 \
        uv_timer_stop(&tick);                                             \
        (cond);                                                           \
    })

/* Run the loop for `ms` whatever happens. */
#define RUN_FOR(ms) ((void)RUN_UNTIL(false, ms))

static void loop_setup(void)
{
    signal(SIGPIPE, SIG_IGN); /* as swarmd does: a peer may close first */
    uv_loop_init(&loop);
    uv_timer_init(&loop, &tick);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_agent.XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        abort();
    }
}

static int loop_teardown(void)
{
    uv_close((uv_handle_t *)&tick, NULL);
    for (int i = 0; i < 1000 && uv_run(&loop, UV_RUN_NOWAIT) != 0; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    char tasks[96];
    snprintf(tasks, sizeof tasks, "%s-tasks", tmpdir); /* the default task dir */
    statedir_remove_tree(tmpdir);
    statedir_remove_tree(tasks);
    return uv_loop_close(&loop);
}

static int64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Every case: the PKI, a loop and a temp dir before; after, whether the
 * case passed or failed, the loop is drained and closed (uv_loop_close must
 * return 0) and the temp dirs removed. */
struct agent_fx {
    int unused;
};

static int pki_setup(void);

static void agent_fx_setup(struct agent_fx *f)
{
    (void)f;
    ASSERT(pki_setup() == 0);
    loop_setup();
}

static void agent_fx_teardown(struct agent_fx *f)
{
    (void)f;
    ASSERT_INT_EQ(loop_teardown(), 0);
}

#define AGENT_TEST(tname) TEST_F(tname, struct agent_fx, agent_fx_setup, agent_fx_teardown)

/* ---------------------------------------------------------------- PKI */

struct ident {
    X509 *cert;
    EVP_PKEY *key;
};

static struct {
    bool ready;
    X509 *root;
    EVP_PKEY *root_key;
    struct ident manager, worker;
} pki;

static int make_ident(const char *node, const char *ou, struct ident *out)
{
    char em[SWARM_ERRMSG_SIZE];
    if (pki_key_generate(&out->key, em) != 0) {
        return -1;
    }
    return pki_cert_issue(pki.root, pki.root_key, out->key, node, ou, "cluster-1",
                          (int64_t)time(NULL), PKI_NODE_LIFETIME_S, &out->cert, em);
}

static int pki_setup(void)
{
    char em[SWARM_ERRMSG_SIZE];
    if (pki.ready) {
        return 0;
    }
    if (pki_key_generate(&pki.root_key, em) != 0 ||
        pki_root_ca_create(pki.root_key, (int64_t)time(NULL), PKI_ROOT_LIFETIME_S, &pki.root,
                           em) != 0 ||
        make_ident("node-mgr-1", API_OU_MANAGER, &pki.manager) != 0 ||
        make_ident("node-wrk-1", API_OU_WORKER, &pki.worker) != 0) {
        return -1;
    }
    pki.ready = true;
    return 0;
}

__attribute__((destructor)) static void pki_free(void)
{
    X509_free(pki.root);
    EVP_PKEY_free(pki.root_key);
    X509_free(pki.manager.cert);
    EVP_PKEY_free(pki.manager.key);
    X509_free(pki.worker.cert);
    EVP_PKEY_free(pki.worker.key);
}

/* ------------------------------------------------- the fake dispatcher */

#define FAKE_TASKS 1024

struct fake_mgr;

struct fake_call {
    struct fake_mgr *m;
    struct api_call *call;
    bool assignments;
    bool netmaps;
    struct fake_call *next;
};

struct fake_mgr {
    struct api_server *srv;
    char addr[64];
    char redirect[64];    /* Session answers with a redirect to this */
    int64_t hb_period_ms;
    int sessions;         /* sessions opened (not redirects) */
    int session_reqs;
    int heartbeats;
    int status_calls;
    int status_updates;
    size_t max_batch;
    int early_statuses;   /* updates with a state below RUNNING */
    int ts_skew;          /* updates with a timestamp far from now */
    int fail_heartbeats;  /* answer the next N heartbeats NOT_FOUND */
    int fail_statuses;    /* answer the next N status batches UNAVAILABLE */
    char refuse_id[64];   /* refuse batches naming this task (NOT_FOUND) */
    int refused;          /* batches refused so */
    bool removed;         /* refuse sessions: the node is removed */
    int netmaps_calls;    /* NetworkMaps streams opened */
    char network_error[SWARM_ERRMSG_SIZE]; /* as the last session request said */
    struct fake_call *calls;
    struct {
        char id[64];
        Swarm__TaskState state;
        int updates;
        int pid;
    } st[FAKE_TASKS];
    int n_st;
    bool down;
};

static void fake_call_del(struct fake_call *fc)
{
    struct fake_call **p = &fc->m->calls;
    while (*p != NULL && *p != fc) {
        p = &(*p)->next;
    }
    if (*p == fc) {
        *p = fc->next;
    }
    free(fc);
}

static void fake_cancel_cb(struct api_call *call, void *data)
{
    struct fake_call *fc = data;
    fake_call_del(fc);
    api_call_error(call, API_CANCELLED, "cancelled");
}

static struct fake_call *fake_call_add(struct fake_mgr *m, struct api_call *call, bool assign)
{
    struct fake_call *fc = calloc(1, sizeof *fc);
    fc->m = m;
    fc->call = call;
    fc->assignments = assign;
    fc->next = m->calls;
    m->calls = fc;
    api_call_on_cancel(call, fake_cancel_cb, fc);
    return fc;
}

static void fake_session_cb(struct api_call *call, const ProtobufCMessage *req, void *data)
{
    struct fake_mgr *m = data;
    Swarm__SessionMessage msg = SWARM__SESSION_MESSAGE__INIT;
    Swarm__Node node = SWARM__NODE__INIT;
    Swarm__ManagerPeer peer = SWARM__MANAGER_PEER__INIT;
    Swarm__ManagerPeer *peers[1] = {&peer};
    char sid[32];
    const Swarm__SessionRequest *r = (const Swarm__SessionRequest *)req;
    m->session_reqs++;
    snprintf(m->network_error, sizeof m->network_error, "%s",
             r->description != NULL && r->description->network_error != NULL
                 ? r->description->network_error
                 : "");
    if (m->removed) {
        api_call_error(call, API_PERMISSION_DENIED, "node %s is removed from the swarm",
                       api_call_peer(call)->node_id);
        return;
    }
    if (m->redirect[0] != '\0') {
        msg.redirect_addr = m->redirect;
        api_call_send(call, &msg.base);
        api_call_finish(call);
        return;
    }
    m->sessions++;
    snprintf(sid, sizeof sid, "sess-%d", m->sessions);
    node.id = (char *)api_call_peer(call)->node_id;
    peer.node_id = "node-mgr-1";
    peer.raft_id = 1;
    peer.addr = m->addr;
    msg.session_id = sid;
    msg.node = &node;
    msg.managers = peers;
    msg.n_managers = 1;
    msg.heartbeat_period_ms = m->hb_period_ms;
    fake_call_add(m, call, false);
    api_call_send(call, &msg.base);
}

static void fake_heartbeat_cb(struct api_call *call, const ProtobufCMessage *req, void *data)
{
    struct fake_mgr *m = data;
    Swarm__HeartbeatResponse resp = SWARM__HEARTBEAT_RESPONSE__INIT;
    m->heartbeats++;
    if (m->fail_heartbeats > 0) {
        m->fail_heartbeats--;
        api_call_error(call, API_NOT_FOUND, "session invalid");
        return;
    }
    resp.period_ms = m->hb_period_ms;
    api_call_reply(call, &resp.base);
}

static void fake_assignments_cb(struct api_call *call, const ProtobufCMessage *req, void *data)
{
    fake_call_add(data, call, true);
}

static void fake_netmaps_cb(struct api_call *call, const ProtobufCMessage *req, void *data)
{
    struct fake_mgr *m = data;
    m->netmaps_calls++;
    fake_call_add(m, call, false)->netmaps = true;
}

static int fake_find(struct fake_mgr *m, const char *id)
{
    for (int i = 0; i < m->n_st; i++) {
        if (strcmp(m->st[i].id, id) == 0) {
            return i;
        }
    }
    return -1;
}

static void fake_status_cb(struct api_call *call, const ProtobufCMessage *req, void *data)
{
    struct fake_mgr *m = data;
    const Swarm__UpdateTaskStatusRequest *r = (const Swarm__UpdateTaskStatusRequest *)req;
    Swarm__UpdateTaskStatusResponse resp = SWARM__UPDATE_TASK_STATUS_RESPONSE__INIT;
    int64_t now = wall_ms();
    if (m->fail_statuses > 0) {
        m->fail_statuses--;
        api_call_error(call, API_UNAVAILABLE, "no quorum");
        return;
    }
    for (size_t i = 0; m->refuse_id[0] != '\0' && i < r->n_updates; i++) {
        if (strcmp(r->updates[i]->task_id, m->refuse_id) == 0) {
            m->refused++;
            api_call_error(call, API_NOT_FOUND, "task %s: not found", m->refuse_id);
            return;
        }
    }
    m->status_calls++;
    if (r->n_updates > m->max_batch) {
        m->max_batch = r->n_updates;
    }
    for (size_t i = 0; i < r->n_updates; i++) {
        const Swarm__TaskStatusUpdate *u = r->updates[i];
        int k = fake_find(m, u->task_id);
        if (k < 0 && m->n_st < FAKE_TASKS) {
            k = m->n_st++;
            snprintf(m->st[k].id, sizeof m->st[k].id, "%s", u->task_id);
        }
        m->status_updates++;
        if (u->status->state < SWARM__TASK_STATE__TASK_STATE_RUNNING) {
            m->early_statuses++;
        }
        if (u->status->timestamp < now - 60000 || u->status->timestamp > now + 1000) {
            m->ts_skew++;
        }
        if (k >= 0) {
            m->st[k].state = u->status->state;
            m->st[k].updates++;
            m->st[k].pid = u->status->pid;
        }
    }
    api_call_reply(call, &resp.base);
}

static Swarm__TaskState fake_state(struct fake_mgr *m, const char *id)
{
    int k = fake_find(m, id);
    return k < 0 ? SWARM__TASK_STATE__TASK_STATE_NEW : m->st[k].state;
}

static int fake_updates(struct fake_mgr *m, const char *id)
{
    int k = fake_find(m, id);
    return k < 0 ? 0 : m->st[k].updates;
}

static int fake_start(struct fake_mgr *m)
{
    char em[SWARM_ERRMSG_SIZE];
    SSL_CTX *ctx = NULL;
    static const char *const methods[] = {"Session", "Heartbeat", "Assignments",
                                          "UpdateTaskStatus", "NetworkMaps"};
    static const api_handler_cb cbs[] = {fake_session_cb, fake_heartbeat_cb,
                                         fake_assignments_cb, fake_status_cb, fake_netmaps_cb};
    memset(m, 0, sizeof *m);
    m->hb_period_ms = 50;
    if (pki_server_ctx(pki.root, pki.manager.cert, pki.manager.key, &ctx, em) != 0) {
        return -1;
    }
    m->srv = api_server_new(&loop, 0);
    for (int i = 0; i < 5; i++) {
        api_server_register(m->srv, &swarm__dispatcher__descriptor, methods[i],
                            API_ROLE_WORKER | API_ROLE_MANAGER, cbs[i], m);
    }
    int rv = api_server_listen_tls(m->srv, "127.0.0.41:0", ctx, em);
    SSL_CTX_free(ctx);
    if (rv != 0) {
        fprintf(stderr, "listen: %s\n", em);
        return -1;
    }
    snprintf(m->addr, sizeof m->addr, "127.0.0.41:%d", api_server_tls_port(m->srv));
    return 0;
}

static void fake_down_cb(void *data)
{
    struct fake_mgr *m = data;
    m->down = true;
}

static void fake_stop(struct fake_mgr *m)
{
    if (m->srv != NULL) {
        struct api_server *s = m->srv;
        m->srv = NULL;
        api_server_shutdown(s, 0, fake_down_cb, m);
    }
}

/* Send an assignments message on every open Assignments stream (`more`:
 * further messages of the set follow). */
static int fake_assign_more(struct fake_mgr *m, Swarm__AssignmentsType type, Swarm__Task **upd,
                            size_t n, char **rm, size_t nrm, bool more)
{
    Swarm__AssignmentsMessage msg = SWARM__ASSIGNMENTS_MESSAGE__INIT;
    int sent = 0;
    msg.more = more;
    msg.type = type;
    msg.update = upd;
    msg.n_update = n;
    msg.remove = rm;
    msg.n_remove = nrm;
    for (struct fake_call *fc = m->calls; fc != NULL; fc = fc->next) {
        if (fc->assignments && api_call_send(fc->call, &msg.base) == 0) {
            sent++;
        }
    }
    return sent;
}

static int fake_assign(struct fake_mgr *m, Swarm__AssignmentsType type, Swarm__Task **upd,
                       size_t n, char **rm, size_t nrm)
{
    return fake_assign_more(m, type, upd, n, rm, nrm, false);
}

/* Send a network maps message on every open NetworkMaps stream. */
static int fake_netmaps(struct fake_mgr *m, Swarm__AssignmentsType type, Swarm__NetworkMap **upd,
                        size_t n, char **rm, size_t nrm, bool more)
{
    Swarm__NetworkMapsMessage msg = SWARM__NETWORK_MAPS_MESSAGE__INIT;
    int sent = 0;
    msg.more = more;
    msg.type = type;
    msg.update = upd;
    msg.n_update = n;
    msg.remove = rm;
    msg.n_remove = nrm;
    for (struct fake_call *fc = m->calls; fc != NULL; fc = fc->next) {
        if (fc->netmaps && api_call_send(fc->call, &msg.base) == 0) {
            sent++;
        }
    }
    return sent;
}

static bool fake_has_netmaps(struct fake_mgr *m)
{
    for (struct fake_call *fc = m->calls; fc != NULL; fc = fc->next) {
        if (fc->netmaps) {
            return true;
        }
    }
    return false;
}

static bool fake_has_assign(struct fake_mgr *m)
{
    for (struct fake_call *fc = m->calls; fc != NULL; fc = fc->next) {
        if (fc->assignments) {
            return true;
        }
    }
    return false;
}

/* End every open stream with `status` and `why`. */
static void fake_end_streams_with(struct fake_mgr *m, enum api_status status, const char *why)
{
    while (m->calls != NULL) {
        struct fake_call *fc = m->calls;
        struct api_call *call = fc->call;
        fake_call_del(fc);
        api_call_on_cancel(call, NULL, NULL);
        api_call_error(call, status, "%s", why);
    }
}

/* End every open stream (the manager went away from the sessions). */
static void fake_end_streams(struct fake_mgr *m)
{
    fake_end_streams_with(m, API_UNAVAILABLE, "session ended");
}

/* ------------------------------------------------------------- tasks */

struct tspec {
    Swarm__Task t;
    Swarm__TaskSpec spec;
    Swarm__ContainerSpec c;
    char id[32];
    char *args[2];
};

static Swarm__Task *tspec_init(struct tspec *ts, const char *id, Swarm__TaskState desired,
                               const char *image, const char *arg)
{
    swarm__task__init(&ts->t);
    swarm__task_spec__init(&ts->spec);
    swarm__container_spec__init(&ts->c);
    snprintf(ts->id, sizeof ts->id, "%s", id);
    ts->t.id = ts->id;
    ts->t.node_id = "node-wrk-1";
    ts->t.desired_state = desired;
    ts->t.spec = &ts->spec;
    ts->spec.container = &ts->c;
    ts->c.image = (char *)(image != NULL ? image : "sim");
    ts->c.stop_grace_period_ms = 2000;
    if (arg != NULL) {
        ts->args[0] = (char *)arg;
        ts->c.args = ts->args;
        ts->c.n_args = 1;
    }
    return &ts->t;
}

/* ------------------------------------------------------------- agents */

struct agent_obs {
    int removed;
    int node_msgs;
    int manager_msgs;
    char last_manager[64];
    bool stopped;
};

static void obs_managers_cb(Swarm__ManagerPeer *const *peers, size_t n, void *data)
{
    struct agent_obs *o = data;
    o->manager_msgs++;
    if (n > 0) {
        snprintf(o->last_manager, sizeof o->last_manager, "%s", peers[0]->addr);
    }
}

static void obs_node_cb(const Swarm__Node *node, void *data)
{
    struct agent_obs *o = data;
    (void)node;
    o->node_msgs++;
}

static void obs_removed_cb(void *data)
{
    struct agent_obs *o = data;
    o->removed++;
}

static void obs_stopped_cb(void *data)
{
    struct agent_obs *o = data;
    o->stopped = true;
}

static struct agent *agent_make_net(const char *dir, const char *const *mgrs, size_t n,
                                    const char *executor, struct agent_obs *obs,
                                    const char *underlay_ip, const struct agent_netsink *sink);

static struct agent *agent_make(const char *dir, const char *const *mgrs, size_t n,
                                const char *executor, struct agent_obs *obs)
{
    return agent_make_net(dir, mgrs, n, executor, obs, NULL, NULL);
}

static struct agent *agent_make_net(const char *dir, const char *const *mgrs, size_t n,
                                    const char *executor, struct agent_obs *obs,
                                    const char *underlay_ip, const struct agent_netsink *sink)
{
    char em[SWARM_ERRMSG_SIZE] = "";
    SSL_CTX *ctx = NULL;
    struct agent *a = NULL;
    if (pki_client_ctx(pki.root, pki.worker.cert, pki.worker.key, &ctx, em) != 0) {
        return NULL;
    }
    struct agent_config cfg = {
        .loop = &loop,
        .state_dir = dir,
        .node_id = "node-wrk-1",
        .client_ctx = ctx,
        .managers = mgrs,
        .n_managers = n,
        .executor = executor,
        .hostname = "worker-1",
        .managers_cb = obs_managers_cb,
        .node_cb = obs_node_cb,
        .removed_cb = obs_removed_cb,
        .data = obs,
        .underlay_ip = underlay_ip,
        .netsink = sink,
    };
    memset(obs, 0, sizeof *obs);
    if (agent_start(&cfg, &a, em) != 0) {
        fprintf(stderr, "agent_start: %s\n", em);
        a = NULL;
    }
    SSL_CTX_free(ctx); /* the agent took its own reference */
    return a;
}

/* Rows in DIR/worker/tasks.db; state of one task's status (-1: no row). */
static int db_rows(const char *dir)
{
    char path[256];
    sqlite3 *db;
    sqlite3_stmt *q;
    int n = -1;
    snprintf(path, sizeof path, "%s/worker/tasks.db", dir);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM tasks", -1, &q, NULL) == SQLITE_OK) {
        if (sqlite3_step(q) == SQLITE_ROW) {
            n = sqlite3_column_int(q, 0);
        }
        sqlite3_finalize(q);
    }
    sqlite3_close(db);
    return n;
}

/* The status recorded for `id`: state and timestamp (state -1: none). */
static int db_status(const char *dir, const char *id, int64_t *ts)
{
    char path[256];
    sqlite3 *db;
    sqlite3_stmt *q;
    int state = -1;
    snprintf(path, sizeof path, "%s/worker/tasks.db", dir);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "SELECT status FROM tasks WHERE id = ?1", -1, &q, NULL) ==
            SQLITE_OK) {
        sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
        if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_blob(q, 0) != NULL) {
            Swarm__TaskStatus *st = swarm__task_status__unpack(
                NULL, (size_t)sqlite3_column_bytes(q, 0), sqlite3_column_blob(q, 0));
            if (st != NULL) {
                state = st->state;
                if (ts != NULL) {
                    *ts = st->timestamp;
                }
                swarm__task_status__free_unpacked(st, NULL);
            }
        }
        sqlite3_finalize(q);
    }
    sqlite3_close(db);
    return state;
}

#define RUNNING SWARM__TASK_STATE__TASK_STATE_RUNNING
#define SHUTDOWN SWARM__TASK_STATE__TASK_STATE_SHUTDOWN
#define COMPLETE_MSG SWARM__ASSIGNMENTS_TYPE__ASSIGNMENTS_COMPLETE
#define INCR_MSG SWARM__ASSIGNMENTS_TYPE__ASSIGNMENTS_INCREMENTAL

/* Stop the agent and the managers, drain the loop. */
#define FINISH(a, obs, stop_tasks, ...)                                     \
    do {                                                                    \
        struct fake_mgr *ms_[] = {__VA_ARGS__};                             \
        if ((a) != NULL) {                                                  \
            agent_stop((a), (stop_tasks), obs_stopped_cb, &(obs));          \
            ASSERT(RUN_UNTIL((obs).stopped, 15000));                        \
        }                                                                   \
        for (size_t i_ = 0; i_ < sizeof ms_ / sizeof ms_[0]; i_++) {        \
            fake_stop(ms_[i_]);                                             \
        }                                                                   \
        for (size_t i_ = 0; i_ < sizeof ms_ / sizeof ms_[0]; i_++) {        \
            ASSERT(RUN_UNTIL(ms_[i_]->down, 10000));                         \
        }                                                                   \
    } while (0)

/* -------------------------------------------------------------- tests */

AGENT_TEST(session_opens_and_heartbeats)
{
    struct fake_mgr m;
    struct agent_obs obs;
    ASSERT(fake_start(&m) == 0);
    const char *mgrs[] = {m.addr};
    struct agent *a = agent_make(tmpdir, mgrs, 1, "sim", &obs);
    ASSERT(a != NULL);
    ASSERT(!agent_connected(a));
    ASSERT(RUN_UNTIL(agent_connected(a), 10000));
    ASSERT_STR_EQ(agent_manager_addr(a), m.addr);
    ASSERT(RUN_UNTIL(m.heartbeats >= 3, 10000));
    ASSERT(RUN_UNTIL(fake_has_assign(&m), 10000));
    ASSERT_INT_EQ(m.sessions, 1);
    ASSERT(obs.node_msgs >= 1);
    ASSERT(obs.manager_msgs >= 1);
    ASSERT_STR_EQ(obs.last_manager, m.addr);
    FINISH(a, obs, true, &m);
}

AGENT_TEST(assignments_statuses_shutdown_remove)
{
    struct fake_mgr m;
    struct agent_obs obs;
    struct tspec ts[3];
    Swarm__Task *upd[3];
    ASSERT(fake_start(&m) == 0);
    const char *mgrs[] = {m.addr};
    struct agent *a = agent_make(tmpdir, mgrs, 1, "sim", &obs);
    ASSERT(a != NULL);
    ASSERT(RUN_UNTIL(fake_has_assign(&m), 10000));
    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof id, "task-%d", i);
        upd[i] = tspec_init(&ts[i], id, RUNNING, NULL, NULL);
    }
    ASSERT_INT_EQ(fake_assign(&m, COMPLETE_MSG, upd, 3, NULL, 0), 1);
    ASSERT(RUN_UNTIL(fake_state(&m, "task-0") == RUNNING && fake_state(&m, "task-1") == RUNNING &&
                         fake_state(&m, "task-2") == RUNNING,
                     10000));
    /* Batched: 9 transitions (preparing, starting, running x 3) in a few
     * calls, and only the latest status per task in each. */
    ASSERT(m.status_calls <= 3);
    ASSERT(m.status_updates < 9);
    ASSERT(m.max_batch >= 2);
    ASSERT_INT_EQ(m.ts_skew, 0);
    ASSERT(RUN_UNTIL(db_status(tmpdir, "task-2", NULL) == RUNNING, 10000));
    ASSERT_INT_EQ(db_rows(tmpdir), 3);

    /* Desired state SHUTDOWN: stopped and reported. */
    ts[0].t.desired_state = SHUTDOWN;
    ASSERT_INT_EQ(fake_assign(&m, INCR_MSG, upd, 1, NULL, 0), 1);
    ASSERT(RUN_UNTIL(fake_state(&m, "task-0") == SHUTDOWN, 10000));
    /* Never started again once ended, even if asked. */
    int before = fake_updates(&m, "task-0");
    ts[0].t.desired_state = RUNNING;
    ASSERT_INT_EQ(fake_assign(&m, INCR_MSG, upd, 1, NULL, 0), 1);
    RUN_FOR(300);
    ASSERT_INT_EQ(fake_updates(&m, "task-0"), before);
    ASSERT_INT_EQ(fake_state(&m, "task-0"), SHUTDOWN);

    /* Removal: forgotten (no row); a COMPLETE without task-0 drops it too. */
    char *rm[] = {"task-1"};
    ASSERT_INT_EQ(fake_assign(&m, INCR_MSG, NULL, 0, rm, 1), 1);
    ASSERT(RUN_UNTIL(db_rows(tmpdir) == 2, 10000));
    ASSERT_INT_EQ(db_status(tmpdir, "task-1", NULL), -1);
    ASSERT_INT_EQ(fake_assign(&m, COMPLETE_MSG, &upd[2], 1, NULL, 0), 1);
    ASSERT(RUN_UNTIL(db_rows(tmpdir) == 1, 10000));
    ASSERT_INT_EQ(db_status(tmpdir, "task-2", NULL), RUNNING);
    FINISH(a, obs, true, &m);
}

AGENT_TEST(reconnect_and_failover_keep_tasks)
{
    struct fake_mgr m1, m2;
    struct agent_obs obs;
    struct tspec ts[2];
    Swarm__Task *upd[2];
    ASSERT(fake_start(&m1) == 0);
    ASSERT(fake_start(&m2) == 0);
    const char *mgrs[] = {m1.addr, m2.addr};
    struct agent *a = agent_make(tmpdir, mgrs, 2, "sim", &obs);
    ASSERT(a != NULL);
    ASSERT(RUN_UNTIL(fake_has_assign(&m1), 10000));
    upd[0] = tspec_init(&ts[0], "task-a", RUNNING, NULL, NULL);
    upd[1] = tspec_init(&ts[1], "task-b", RUNNING, NULL, NULL);
    ASSERT_INT_EQ(fake_assign(&m1, COMPLETE_MSG, upd, 2, NULL, 0), 1);
    ASSERT(RUN_UNTIL(fake_state(&m1, "task-a") == RUNNING && fake_state(&m1, "task-b") == RUNNING,
                     10000));

    /* The manager ends the streams: the agent comes back (same manager). */
    fake_end_streams(&m1);
    ASSERT(RUN_UNTIL(m1.sessions == 2 && fake_has_assign(&m1), 10000));
    ASSERT(agent_connected(a));

    /* The manager goes away: the agent fails over to the second one. */
    int early = m1.early_statuses;
    fake_stop(&m1);
    ASSERT(RUN_UNTIL(m1.down, 10000));
    ASSERT(RUN_UNTIL(m2.sessions == 1 && fake_has_assign(&m2), 10000));
    ASSERT_STR_EQ(agent_manager_addr(a), m2.addr);
    ASSERT_INT_EQ(fake_assign(&m2, COMPLETE_MSG, upd, 2, NULL, 0), 1);
    RUN_FOR(400);
    /* Tasks kept running: nothing restarted (no preparing/starting again). */
    ASSERT_INT_EQ(m2.early_statuses, 0);
    ASSERT_INT_EQ(m1.early_statuses, early);
    ASSERT_INT_EQ(db_status(tmpdir, "task-a", NULL), RUNNING);
    ASSERT(m2.heartbeats >= 1);
    FINISH(a, obs, true, &m2);
}

AGENT_TEST(failed_heartbeat_or_status_reconnects_and_resends)
{
    struct fake_mgr m;
    struct agent_obs obs;
    struct tspec ts[1];
    Swarm__Task *upd[1];
    ASSERT(fake_start(&m) == 0);
    const char *mgrs[] = {m.addr};
    struct agent *a = agent_make(tmpdir, mgrs, 1, "sim", &obs);
    ASSERT(a != NULL);
    ASSERT(RUN_UNTIL(agent_connected(a), 10000));
    m.fail_heartbeats = 1;
    ASSERT(RUN_UNTIL(m.sessions == 2 && agent_connected(a), 10000));
    /* A status batch fails: kept, resent on the next session. */
    m.fail_statuses = 1;
    ASSERT(RUN_UNTIL(fake_has_assign(&m), 10000));
    upd[0] = tspec_init(&ts[0], "task-r", RUNNING, NULL, NULL);
    ASSERT_INT_EQ(fake_assign(&m, COMPLETE_MSG, upd, 1, NULL, 0), 1);
    ASSERT(RUN_UNTIL(fake_state(&m, "task-r") == RUNNING, 10000));
    ASSERT_INT_EQ(m.fail_statuses, 0);
    ASSERT_INT_EQ(m.sessions, 3);
    FINISH(a, obs, true, &m);
}

AGENT_TEST(large_assignment_batches)
{
    enum { N = 600 };
    struct fake_mgr m;
    struct agent_obs obs;
    static struct tspec ts[N];
    static Swarm__Task *upd[N];
    ASSERT(fake_start(&m) == 0);
    const char *mgrs[] = {m.addr};
    struct agent *a = agent_make(tmpdir, mgrs, 1, "sim", &obs);
    ASSERT(a != NULL);
    ASSERT(RUN_UNTIL(fake_has_assign(&m), 10000));
    for (int i = 0; i < N; i++) {
        char id[16];
        snprintf(id, sizeof id, "t%03d", i);
        upd[i] = tspec_init(&ts[i], id, RUNNING, NULL, NULL);
    }
    ASSERT_INT_EQ(fake_assign(&m, COMPLETE_MSG, upd, N, NULL, 0), 1);
    int running = 0;
    ASSERT(RUN_UNTIL((running = 0, ({
                         for (int i = 0; i < m.n_st; i++) {
                             running += m.st[i].state == RUNNING;
                         }
                     }), running == N),
                     10000));
    ASSERT(m.max_batch <= 256);
    ASSERT(m.max_batch >= 200);
    ASSERT_INT_EQ(db_rows(tmpdir), N);
    FINISH(a, obs, true, &m);
}

/* A COMPLETE set in several messages applies only with its last one; a
 * stream cut before leaves the previous set in force. */
AGENT_TEST(complete_set_in_chunks_applies_at_its_end)
{
    struct fake_mgr m;
    struct agent_obs obs;
    struct tspec ts[3];
    Swarm__Task *x, *y, *z;
    ASSERT(fake_start(&m) == 0);
    const char *mgrs[] = {m.addr};
    struct agent *a = agent_make(tmpdir, mgrs, 1, "sim", &obs);
    ASSERT(a != NULL);
    ASSERT(RUN_UNTIL(fake_has_assign(&m), 10000));
    x = tspec_init(&ts[0], "task-x", RUNNING, NULL, NULL);
    y = tspec_init(&ts[1], "task-y", RUNNING, NULL, NULL);
    z = tspec_init(&ts[2], "task-z", RUNNING, NULL, NULL);
    ASSERT_INT_EQ(fake_assign(&m, COMPLETE_MSG, &x, 1, NULL, 0), 1);
    ASSERT(RUN_UNTIL(fake_state(&m, "task-x") == RUNNING, 10000));

    /* First part of a new set: nothing changes yet. */
    ASSERT_INT_EQ(fake_assign_more(&m, COMPLETE_MSG, &y, 1, NULL, 0, true), 1);
    RUN_FOR(300);
    ASSERT_INT_EQ(fake_state(&m, "task-y"), SWARM__TASK_STATE__TASK_STATE_NEW);
    ASSERT_INT_EQ(db_rows(tmpdir), 1);
    /* The stream ends there: the part is dropped, task-x still runs. */
    fake_end_streams(&m);
    ASSERT(RUN_UNTIL(m.sessions == 2 && fake_has_assign(&m), 10000));
    RUN_FOR(200);
    ASSERT_INT_EQ(fake_state(&m, "task-y"), SWARM__TASK_STATE__TASK_STATE_NEW);
    ASSERT_INT_EQ(db_status(tmpdir, "task-x", NULL), RUNNING);

    /* A whole set in two parts: y, then z; x is no longer in it. */
    ASSERT_INT_EQ(fake_assign_more(&m, COMPLETE_MSG, &y, 1, NULL, 0, true), 1);
    RUN_FOR(200);
    ASSERT_INT_EQ(db_rows(tmpdir), 1);
    ASSERT_INT_EQ(fake_assign_more(&m, COMPLETE_MSG, &z, 1, NULL, 0, false), 1);
    ASSERT(RUN_UNTIL(fake_state(&m, "task-y") == RUNNING && fake_state(&m, "task-z") == RUNNING,
                     10000));
    ASSERT(RUN_UNTIL(db_rows(tmpdir) == 2, 10000));
    ASSERT_INT_EQ(db_status(tmpdir, "task-x", NULL), -1);
    FINISH(a, obs, true, &m);
}

/* A batch refused for one task's sake: that status is dropped, the others
 * are sent again, the session goes on. */
AGENT_TEST(refused_status_is_dropped_session_kept)
{
    struct fake_mgr m;
    struct agent_obs obs;
    struct tspec ts[2];
    Swarm__Task *upd[2];
    ASSERT(fake_start(&m) == 0);
    snprintf(m.refuse_id, sizeof m.refuse_id, "task-gone");
    const char *mgrs[] = {m.addr};
    struct agent *a = agent_make(tmpdir, mgrs, 1, "sim", &obs);
    ASSERT(a != NULL);
    ASSERT(RUN_UNTIL(fake_has_assign(&m), 10000));
    upd[0] = tspec_init(&ts[0], "task-gone", RUNNING, NULL, NULL);
    upd[1] = tspec_init(&ts[1], "task-ok", RUNNING, NULL, NULL);
    ASSERT_INT_EQ(fake_assign(&m, COMPLETE_MSG, upd, 2, NULL, 0), 1);
    ASSERT(RUN_UNTIL(fake_state(&m, "task-ok") == RUNNING, 10000));
    ASSERT(m.refused >= 1);
    ASSERT_INT_EQ(fake_updates(&m, "task-gone"), 0);
    RUN_FOR(300);
    ASSERT_INT_EQ(m.sessions, 1);
    ASSERT(agent_connected(a));
    FINISH(a, obs, true, &m);
}

/* Removed from the swarm: told once (refused session, or an open session
 * ended so), the agent stops connecting and says so. */
AGENT_TEST(removed_node_stops_connecting)
{
    struct fake_mgr m;
    struct agent_obs obs;
    ASSERT(fake_start(&m) == 0);
    const char *mgrs[] = {m.addr};
    struct agent *a = agent_make(tmpdir, mgrs, 1, "sim", &obs);
    ASSERT(a != NULL);
    ASSERT(RUN_UNTIL(agent_connected(a), 10000));
    /* Other refusals are retried; so is one removal refusal followed by
     * a session. */
    fake_end_streams_with(&m, API_PERMISSION_DENIED, "certificate not trusted");
    ASSERT(RUN_UNTIL(m.sessions == 2 && agent_connected(a), 10000));
    m.removed = true;
    fake_end_streams(&m);
    ASSERT(RUN_UNTIL(m.session_reqs >= 4, 10000));
    m.removed = false;
    ASSERT(RUN_UNTIL(m.sessions == 3 && agent_connected(a), 10000));
    ASSERT_INT_EQ(obs.removed, 0);
    /* The open session ends: removed. */
    fake_end_streams_with(&m, API_PERMISSION_DENIED,
                          "session ended: node node-wrk-1 is removed from the swarm");
    ASSERT(RUN_UNTIL(obs.removed == 1, 10000));
    int reqs = m.session_reqs;
    RUN_FOR(500);
    ASSERT_INT_EQ(m.session_reqs, reqs);
    ASSERT(!agent_connected(a));
    FINISH(a, obs, true, &m);

    /* A new agent refused as removed: it believes it after refusals in a
     * row for a while (a lagging manager may not know a new node yet). */
    ASSERT(fake_start(&m) == 0);
    m.removed = true;
    const char *mgrs2[] = {m.addr};
    a = agent_make(tmpdir, mgrs2, 1, "sim", &obs);
    ASSERT(a != NULL);
    ASSERT(RUN_UNTIL(m.session_reqs >= 2, 10000));
    ASSERT_INT_EQ(obs.removed, 0);
    ASSERT(RUN_UNTIL(obs.removed == 1, 10000));
    reqs = m.session_reqs;
    RUN_FOR(500);
    ASSERT_INT_EQ(m.session_reqs, reqs);
    FINISH(a, obs, true, &m);
}

AGENT_TEST(redirect_to_leader)
{
    struct fake_mgr follower, leader;
    struct agent_obs obs;
    ASSERT(fake_start(&follower) == 0);
    ASSERT(fake_start(&leader) == 0);
    snprintf(follower.redirect, sizeof follower.redirect, "%s", leader.addr);
    const char *mgrs[] = {follower.addr};
    struct agent *a = agent_make(tmpdir, mgrs, 1, "sim", &obs);
    ASSERT(a != NULL);
    ASSERT(RUN_UNTIL(agent_connected(a), 10000));
    ASSERT_INT_EQ(follower.session_reqs, 1);
    ASSERT_INT_EQ(follower.sessions, 0);
    ASSERT_INT_EQ(leader.sessions, 1);
    ASSERT_STR_EQ(agent_manager_addr(a), leader.addr);
    FINISH(a, obs, true, &follower, &leader);
}

AGENT_TEST(restart_resumes_tasks_without_manager)
{
    struct fake_mgr m;
    struct agent_obs obs;
    struct tspec ts[3];
    Swarm__Task *upd[3];
    int64_t t_before = 0, t_after = 0;
    ASSERT(fake_start(&m) == 0);
    const char *mgrs[] = {m.addr};
    struct agent *a = agent_make(tmpdir, mgrs, 1, "sim", &obs);
    ASSERT(a != NULL);
    ASSERT(RUN_UNTIL(fake_has_assign(&m), 10000));
    upd[0] = tspec_init(&ts[0], "task-x", RUNNING, NULL, NULL);
    upd[1] = tspec_init(&ts[1], "task-y", RUNNING, NULL, NULL);
    upd[2] = tspec_init(&ts[2], "task-z", SHUTDOWN, NULL, NULL);
    ASSERT_INT_EQ(fake_assign(&m, COMPLETE_MSG, upd, 3, NULL, 0), 1);
    ASSERT(RUN_UNTIL(fake_state(&m, "task-x") == RUNNING && fake_state(&m, "task-y") == RUNNING &&
                         fake_state(&m, "task-z") == SHUTDOWN,
                     10000));
    ASSERT(RUN_UNTIL(db_status(tmpdir, "task-x", &t_before) == RUNNING, 10000));
    /* Leave the tasks to the next start; the manager goes away. */
    FINISH(a, obs, false, &m);
    ASSERT_INT_EQ(db_status(tmpdir, "task-x", NULL), RUNNING);

    usleep(20 * 1000);
    int64_t restart = wall_ms();
    const char *nowhere[] = {"127.0.0.41:1"};
    a = agent_make(tmpdir, nowhere, 1, "sim", &obs);
    ASSERT(a != NULL);
    /* Started again from the DB: fresh RUNNING statuses, no manager. */
    ASSERT(RUN_UNTIL(db_status(tmpdir, "task-x", &t_after) == RUNNING && t_after >= restart &&
                         db_status(tmpdir, "task-y", &t_after) == RUNNING && t_after >= restart,
                     10000));
    ASSERT(t_before < restart);
    ASSERT_INT_EQ(db_status(tmpdir, "task-z", NULL), SHUTDOWN);
    ASSERT(!agent_connected(a));
    RUN_FOR(300); /* a few failed connection attempts */
    ASSERT(!agent_connected(a));
    agent_stop(a, true, obs_stopped_cb, &obs);
    ASSERT(RUN_UNTIL(obs.stopped, 10000));
    /* Stopped with stop_tasks: recorded as shut down, not resumed later. */
    ASSERT_INT_EQ(db_status(tmpdir, "task-x", NULL), SHUTDOWN);
}

AGENT_TEST(process_executor_runs_sleep)
{
    struct fake_mgr m;
    struct agent_obs obs;
    struct tspec ts[1];
    Swarm__Task *upd[1];
    ASSERT(fake_start(&m) == 0);
    const char *mgrs[] = {m.addr};
    struct agent *a = agent_make(tmpdir, mgrs, 1, "process", &obs);
    ASSERT(a != NULL);
    ASSERT(RUN_UNTIL(fake_has_assign(&m), 10000));
    upd[0] = tspec_init(&ts[0], "task-sleep", RUNNING, "/bin/sleep", "30");
    ASSERT_INT_EQ(fake_assign(&m, COMPLETE_MSG, upd, 1, NULL, 0), 1);
    ASSERT(RUN_UNTIL(fake_state(&m, "task-sleep") == RUNNING, 10000));
    int pid = m.st[fake_find(&m, "task-sleep")].pid;
    ASSERT(pid > 0);
    ASSERT_INT_EQ(kill(pid, 0), 0);
    ts[0].t.desired_state = SHUTDOWN;
    ASSERT_INT_EQ(fake_assign(&m, INCR_MSG, upd, 1, NULL, 0), 1);
    ASSERT(RUN_UNTIL(fake_state(&m, "task-sleep") == SHUTDOWN, 10000));
    ASSERT(RUN_UNTIL(kill(pid, 0) != 0, 10000));
    FINISH(a, obs, true, &m);
}

/* A task ID names a directory on the worker: one with a '/' or ".." from a
 * manager is refused (never stored, run or reported), the others run. */
AGENT_TEST(refuses_task_ids_that_are_paths)
{
    struct fake_mgr m;
    struct agent_obs obs;
    struct tspec ts[4];
    Swarm__Task *upd[4];
    char esc[32], path[PATH_MAX];
    ASSERT(fake_start(&m) == 0);
    const char *mgrs[] = {m.addr};
    struct agent *a = agent_make(tmpdir, mgrs, 1, "process", &obs);
    ASSERT(a != NULL);
    ASSERT(RUN_UNTIL(fake_has_assign(&m), 10000));
    snprintf(esc, sizeof esc, "../../esc%d", (int)getpid());
    upd[0] = tspec_init(&ts[0], esc, RUNNING, "/bin/sleep", "30");
    upd[1] = tspec_init(&ts[1], "a/b", RUNNING, "/bin/sleep", "30");
    upd[2] = tspec_init(&ts[2], "..", RUNNING, "/bin/sleep", "30");
    upd[3] = tspec_init(&ts[3], "task-ok", RUNNING, "/bin/sleep", "30");
    char *rm[] = {esc};
    ASSERT_INT_EQ(fake_assign(&m, COMPLETE_MSG, upd, 4, rm, 1), 1);
    ASSERT(RUN_UNTIL(fake_state(&m, "task-ok") == RUNNING, 10000));
    RUN_FOR(200);
    ASSERT_INT_EQ(m.n_st, 1);
    ASSERT_INT_EQ(fake_find(&m, esc), -1);
    ASSERT_INT_EQ(db_rows(tmpdir), 1);
    ASSERT_INT_EQ(db_status(tmpdir, "a/b", NULL), -1);
    for (int up = 0; up < 3; up++) { /* no dir made along the way up */
        snprintf(path, sizeof path, "%s/%.*sesc%d", tmpdir, up * 3, "../../../", (int)getpid());
        ASSERT(access(path, F_OK) != 0);
    }
    FINISH(a, obs, true, &m);
}

AGENT_TEST(many_agents_one_loop)
{
    enum { N = 100 };
    struct fake_mgr m;
    static struct agent_obs obs[N];
    struct agent *as[N];
    char dirs[N][96];
    struct tspec ts[1];
    Swarm__Task *upd[1];
    ASSERT(fake_start(&m) == 0);
    const char *mgrs[] = {m.addr};
    for (int i = 0; i < N; i++) {
        snprintf(dirs[i], sizeof dirs[i], "%s/n%d", tmpdir, i);
        as[i] = agent_make(dirs[i], mgrs, 1, "sim", &obs[i]);
        ASSERT(as[i] != NULL);
    }
    int connected = 0;
    ASSERT(RUN_UNTIL((connected = 0, ({
                         for (int i = 0; i < N; i++) {
                             connected += agent_connected(as[i]);
                         }
                     }), connected == N),
                     20000));
    /* Every agent gets the same task id (the fake does not care): each
     * runs it and reports it. */
    int streams = 0;
    ASSERT(RUN_UNTIL((streams = 0, ({
                         for (struct fake_call *fc = m.calls; fc != NULL; fc = fc->next) {
                             streams += fc->assignments;
                         }
                     }), streams == N),
                     10000));
    upd[0] = tspec_init(&ts[0], "task-many", RUNNING, NULL, NULL);
    ASSERT_INT_EQ(fake_assign(&m, COMPLETE_MSG, upd, 1, NULL, 0), N);
    ASSERT(RUN_UNTIL(m.status_updates >= N, 10000));
    for (int i = 0; i < N; i++) {
        agent_stop(as[i], true, obs_stopped_cb, &obs[i]);
    }
    int stopped = 0;
    ASSERT(RUN_UNTIL((stopped = 0, ({
                         for (int i = 0; i < N; i++) {
                             stopped += obs[i].stopped;
                         }
                     }), stopped == N),
                     10000));
    fake_stop(&m);
    ASSERT(RUN_UNTIL(m.down, 10000));
}

/* ------------------------------------------------------ network maps */

/* A sink that records what it was given: the networks it holds (with
 * their endpoint counts), and refuses a network named "bad". */
struct fake_sink {
    char ids[8][32];
    size_t endpoints[8];
    int n;
    int updates, removes, refused;
};

static int fake_sink_find(const struct fake_sink *k, const char *id)
{
    for (int i = 0; i < k->n; i++) {
        if (strcmp(k->ids[i], id) == 0) {
            return i;
        }
    }
    return -1;
}

static int fake_sink_update_cb(void *impl, const Swarm__NetworkMap *map, char *errmsg)
{
    struct fake_sink *k = impl;
    if (strcmp(map->network->id, "bad") == 0) {
        k->refused++;
        snprintf(errmsg, SWARM_ERRMSG_SIZE, "bad address");
        return SWARM_EINVAL;
    }
    int i = fake_sink_find(k, map->network->id);
    if (i < 0 && k->n < 8) {
        i = k->n++;
        snprintf(k->ids[i], sizeof k->ids[i], "%s", map->network->id);
    }
    if (i >= 0) {
        k->endpoints[i] = map->n_endpoints;
    }
    k->updates++;
    return 0;
}

static int fake_sink_remove_cb(void *impl, const char *network_id)
{
    struct fake_sink *k = impl;
    int i = fake_sink_find(k, network_id);
    k->removes++;
    if (i < 0) {
        return SWARM_ENOTFOUND;
    }
    k->n--;
    memmove(&k->ids[i], &k->ids[i + 1], (size_t)(k->n - i) * sizeof k->ids[0]);
    memmove(&k->endpoints[i], &k->endpoints[i + 1], (size_t)(k->n - i) * sizeof k->endpoints[0]);
    return 0;
}

struct nmap {
    Swarm__NetworkMap map;
    Swarm__Network net;
    Swarm__NetworkEndpoint ep[3], *eps[3];
};

static Swarm__NetworkMap *nmap_init(struct nmap *m, const char *id, size_t n_endpoints)
{
    swarm__network_map__init(&m->map);
    swarm__network__init(&m->net);
    m->net.id = (char *)id;
    m->map.network = &m->net;
    for (size_t i = 0; i < n_endpoints && i < 3; i++) {
        swarm__network_endpoint__init(&m->ep[i]);
        m->ep[i].task_id = "t";
        m->eps[i] = &m->ep[i];
    }
    m->map.endpoints = m->eps;
    m->map.n_endpoints = n_endpoints;
    return &m->map;
}

AGENT_TEST(network_maps_applied_complete_replaces_on_reconnect)
{
    struct fake_mgr m;
    struct agent_obs obs;
    struct fake_sink sink = {0};
    struct agent_netsink ns = {fake_sink_update_cb, fake_sink_remove_cb, &sink};
    struct nmap n1, n2, n3, bad;
    Swarm__NetworkMap *up[2];
    char *rm[1];
    ASSERT(fake_start(&m) == 0);
    const char *mgrs[] = {m.addr};
    struct agent *a = agent_make_net(tmpdir, mgrs, 1, "sim", &obs, NULL, &ns);
    ASSERT(a != NULL);
    ASSERT(RUN_UNTIL(fake_has_netmaps(&m) && fake_has_assign(&m), 10000));
    ASSERT_INT_EQ(m.netmaps_calls, 1);

    /* A complete set in two parts applies only at its end. */
    up[0] = nmap_init(&n1, "net1", 1);
    ASSERT_INT_EQ(fake_netmaps(&m, COMPLETE_MSG, up, 1, NULL, 0, true), 1);
    RUN_FOR(200);
    ASSERT_INT_EQ(sink.updates, 0);
    up[0] = nmap_init(&n2, "net2", 1);
    ASSERT_INT_EQ(fake_netmaps(&m, COMPLETE_MSG, up, 1, NULL, 0, false), 1);
    ASSERT(RUN_UNTIL(sink.n == 2, 10000));
    ASSERT(fake_sink_find(&sink, "net1") >= 0 && fake_sink_find(&sink, "net2") >= 0);

    /* Changes: net1's new map, net2 dropped; a map the sink refuses is
     * skipped and the stream goes on. */
    up[0] = nmap_init(&n1, "net1", 2);
    up[1] = nmap_init(&bad, "bad", 1);
    rm[0] = "net2";
    ASSERT_INT_EQ(fake_netmaps(&m, INCR_MSG, up, 2, rm, 1, false), 1);
    ASSERT(RUN_UNTIL(sink.n == 1 && sink.refused == 1, 10000));
    ASSERT_INT_EQ(sink.endpoints[fake_sink_find(&sink, "net1")], 2);
    up[0] = nmap_init(&n3, "net3", 3);
    ASSERT_INT_EQ(fake_netmaps(&m, INCR_MSG, up, 1, NULL, 0, false), 1);
    ASSERT(RUN_UNTIL(sink.n == 2, 10000));
    ASSERT_INT_EQ(m.sessions, 1); /* the refusal did not end the session */

    /* The stream ends: the node reconnects, and the new session's complete
     * set replaces everything (net1 is gone, net3 stays). */
    int removes = sink.removes;
    fake_end_streams(&m);
    ASSERT(RUN_UNTIL(m.sessions == 2 && fake_has_netmaps(&m), 10000));
    ASSERT_INT_EQ(m.netmaps_calls, 2);
    ASSERT_INT_EQ(sink.n, 2); /* nothing torn down meanwhile */
    ASSERT_INT_EQ(sink.removes, removes);
    up[0] = nmap_init(&n3, "net3", 1);
    ASSERT_INT_EQ(fake_netmaps(&m, COMPLETE_MSG, up, 1, NULL, 0, false), 1);
    ASSERT(RUN_UNTIL(sink.n == 1, 10000));
    ASSERT(fake_sink_find(&sink, "net3") == 0);
    ASSERT_INT_EQ(sink.endpoints[0], 1);
    FINISH(a, obs, true, &m);
}

AGENT_TEST(network_maps_stream_only_with_networking)
{
    struct fake_mgr m;
    struct agent_obs obs;
    ASSERT(fake_start(&m) == 0);
    const char *mgrs[] = {m.addr};
    /* The simulated executor never does networking, even with an address. */
    struct agent *a = agent_make_net(tmpdir, mgrs, 1, "sim", &obs, "127.0.0.41", NULL);
    ASSERT(a != NULL);
    ASSERT(RUN_UNTIL(fake_has_assign(&m), 10000));
    RUN_FOR(200);
    ASSERT_INT_EQ(m.netmaps_calls, 0);
    ASSERT_STR_EQ(m.network_error, "");
    FINISH(a, obs, true, &m);
}

/* The process executor with an underlay address: as root the node does
 * networking (the maps stream, no error in its description; its netplane
 * made with the first map, gone with the agent); otherwise its description
 * says why not. Either way tasks without networks run. */
AGENT_TEST(network_capability_in_the_description)
{
    struct fake_mgr m;
    struct agent_obs obs;
    struct tspec ts[1];
    struct nmap n1;
    struct stat st;
    Swarm__Task *upd[1];
    Swarm__NetworkMap *up[1];
    char netdir[128];
    snprintf(netdir, sizeof netdir, "%s/net", tmpdir);
    ASSERT(fake_start(&m) == 0);
    const char *mgrs[] = {m.addr};
    struct agent *a = agent_make_net(tmpdir, mgrs, 1, "process", &obs, "127.0.0.41", NULL);
    ASSERT(a != NULL);
    ASSERT(RUN_UNTIL(fake_has_assign(&m), 10000));
    upd[0] = tspec_init(&ts[0], "task-plain", RUNNING, "/bin/sleep", "30");
    ASSERT_INT_EQ(fake_assign(&m, COMPLETE_MSG, upd, 1, NULL, 0), 1);
    ASSERT(RUN_UNTIL(fake_state(&m, "task-plain") == RUNNING, 10000));
    if (geteuid() == 0) {
        ASSERT(RUN_UNTIL(fake_has_netmaps(&m), 10000));
        ASSERT_STR_EQ(m.network_error, "");
        ASSERT(stat(netdir, &st) != 0); /* nothing made before it is needed */
        up[0] = nmap_init(&n1, "net1", 0);
        n1.net.vni = 4097;
        ASSERT_INT_EQ(fake_netmaps(&m, COMPLETE_MSG, up, 1, NULL, 0, false), 1);
        ASSERT(RUN_UNTIL(stat(netdir, &st) == 0, 10000)); /* the netplane's records */
    } else {
        ASSERT(strstr(m.network_error, "root") != NULL);
        RUN_FOR(200);
        ASSERT_INT_EQ(m.netmaps_calls, 0);
    }
    FINISH(a, obs, true, &m);
    ASSERT(stat(netdir, &st) != 0); /* closed with the agent: nothing left */
}

/* Not root: the description says why, no maps stream, plain tasks run.
 * As root, the case drops to nobody first (it runs in a child of its own). */
AGENT_TEST(network_error_when_not_root)
{
    struct fake_mgr m;
    struct agent_obs obs;
    struct tspec ts[1];
    Swarm__Task *upd[1];
    if (geteuid() == 0) {
        ASSERT(chown(tmpdir, 65534, 65534) == 0);
        ASSERT(setresgid(65534, 65534, 65534) == 0);
        ASSERT(setresuid(65534, 65534, 65534) == 0);
        /* Changing uid clears "dumpable", which LeakSanitizer needs to
         * stop this process's threads at exit. */
        ASSERT(prctl(PR_SET_DUMPABLE, 1) == 0);
    }
    ASSERT(fake_start(&m) == 0);
    const char *mgrs[] = {m.addr};
    struct agent *a = agent_make_net(tmpdir, mgrs, 1, "process", &obs, "127.0.0.41", NULL);
    ASSERT(a != NULL);
    ASSERT(RUN_UNTIL(fake_has_assign(&m), 10000));
    ASSERT(strstr(m.network_error, "networking needs swarmd to run as root") != NULL);
    upd[0] = tspec_init(&ts[0], "task-plain", RUNNING, "/bin/sleep", "30");
    ASSERT_INT_EQ(fake_assign(&m, COMPLETE_MSG, upd, 1, NULL, 0), 1);
    ASSERT(RUN_UNTIL(fake_state(&m, "task-plain") == RUNNING, 10000));
    ASSERT_INT_EQ(m.netmaps_calls, 0);
    FINISH(a, obs, true, &m);
}

TEST_MAIN()