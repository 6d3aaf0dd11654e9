/* Raft benchmark: three managers in one process, on one loop, over the real
 * mutual-TLS transport (raft/transport.h) on 127.0.0.31-33, with file-backed
 * stores and raft dirs in a temp dir, as a real manager has them. Election
 * and heartbeat are the daemon's defaults (1000 / 100 ms).
 *
 * Figures (lines "name: value unit"):
 *   (a) replicated write throughput: committed store mutations per second on
 *       the leader with many proposals in flight: 256 in flight x 32 task
 *       creates per command, and 256 in flight x 1 per command;
 *   (b) latency of one write with one in flight, p50 / p99;
 *   (c) a 4th manager joining a swarm that holds 10,000 tasks: time from
 *       rnode_add_voter until its store has all of them, with a small
 *       snapshot threshold so the catch-up goes through a snapshot install.
 *
 * Usage: bench_raft [seconds per throughput run, default 3]
 * Not a test: it never fails for being slow; it exits non-zero only when
 * the cluster itself does not work. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "statedir.h"
#include "api.h"
#include "err.h"
#include "log.h"
#include "pki.h"
#include "raftnode.h"
#include "store.h"
#include "transport.h"

#define CLUSTER "benchcluster"
#define MAX_MGRS 4
#define JOIN_TASKS 10000

static uv_loop_t loop;
static uv_timer_t tick; /* bounds each UV_RUN_ONCE */

static void die(const char *what)
{
    fprintf(stderr, "bench_raft: %s\n", what);
    exit(1);
}

static double now_s(void)
{
    return (double)uv_hrtime() / 1e9;
}

static void tick_cb(uv_timer_t *t)
{
}

typedef bool (*pred_fn)(void *arg);

/* Run the loop until pred(arg) or `ms` elapsed; every wait is bounded. */
static bool run_until(pred_fn pred, void *arg, uint64_t ms)
{
    uv_update_time(&loop);
    uint64_t deadline = uv_now(&loop) + ms;
    bool ok;
    uv_timer_start(&tick, tick_cb, 10, 10);
    while (!(ok = pred(arg)) && uv_now(&loop) < deadline) {
        uv_run(&loop, UV_RUN_ONCE);
        uv_update_time(&loop);
    }
    uv_timer_stop(&tick);
    return ok;
}

static bool never(void *arg)
{
    return false;
}

static bool flag_set(void *arg)
{
    return *(bool *)arg;
}

/* ------------------------------------------------------------ identities */

struct ca {
    EVP_PKEY *key;
    X509 *cert;
};

struct ident {
    EVP_PKEY *key;
    X509 *cert;
    SSL_CTX *server_ctx;
    SSL_CTX *client_ctx;
};

static int ident_make(struct ca *ca, const char *node_id, struct ident *out)
{
    char em[SWARM_ERRMSG_SIZE];
    int rv;
    memset(out, 0, sizeof *out);
    if ((rv = pki_key_generate(&out->key, em)) != 0 ||
        (rv = pki_cert_issue(ca->cert, ca->key, out->key, node_id, API_OU_MANAGER, CLUSTER,
                             time(NULL), PKI_NODE_LIFETIME_S, &out->cert, em)) != 0 ||
        (rv = pki_server_ctx(ca->cert, out->cert, out->key, &out->server_ctx, em)) != 0 ||
        (rv = pki_client_ctx(ca->cert, out->cert, out->key, &out->client_ctx, em)) != 0) {
        fprintf(stderr, "ident %s: %s\n", node_id, em);
    }
    return rv;
}

static void ident_free(struct ident *id)
{
    SSL_CTX_free(id->server_ctx);
    SSL_CTX_free(id->client_ctx);
    X509_free(id->cert);
    EVP_PKEY_free(id->key);
}

/* node1..node4 are raft ids 1..4. */
/* The managers' raft addresses, as a store would give them. */
static char map_addr[5][64];

static raft_id map_node(const char *node_id, char *addr, size_t addr_size, void *data, char *errmsg)
{
    if (strncmp(node_id, "node", 4) == 0 && node_id[4] >= '1' && node_id[4] <= '4' &&
        node_id[5] == '\0') {
        snprintf(addr, addr_size, "%s", map_addr[node_id[4] - '0']);
        return (raft_id)(node_id[4] - '0');
    }
    errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "unknown node");
    return 0;
}

/* -------------------------------------------------------------- managers */

struct mgr {
    bool up;
    struct ident id;
    struct api_server *server;
    char address[64];
    struct raft_uv_transport transport;
    struct store *store;
    struct rnode *node;
    char dir[300];
};

struct cluster {
    struct ca ca;
    struct mgr m[MAX_MGRS];
    char tmp[256];
    unsigned threshold, trailing;
    int done;
    int status;
};

static int mgr_setup(struct cluster *c, int i)
{
    struct mgr *m = &c->m[i];
    char em[SWARM_ERRMSG_SIZE] = "";
    char name[16], listen[32], path[400];
    snprintf(name, sizeof name, "node%d", i + 1);
    if (ident_make(&c->ca, name, &m->id) != 0) {
        return -1;
    }
    m->server = api_server_new(&loop, 0);
    snprintf(listen, sizeof listen, "127.0.0.%d:0", 31 + i);
    if (api_server_listen_tls(m->server, listen, m->id.server_ctx, em) != 0) {
        fprintf(stderr, "listen %s: %s\n", listen, em);
        return -1;
    }
    snprintf(m->address, sizeof m->address, "127.0.0.%d:%d", 31 + i,
             api_server_tls_port(m->server));
    snprintf(map_addr[i + 1], sizeof map_addr[i + 1], "%s", m->address);
    struct rtransport_config tcfg = {
        .loop = &loop,
        .server = m->server,
        .client_ctx = m->id.client_ctx,
        .cluster_id = CLUSTER,
        .raft_id_of_node = map_node,
    };
    if (rtransport_init(&m->transport, &tcfg, em) != 0) {
        fprintf(stderr, "rtransport_init: %s\n", em);
        return -1;
    }
    snprintf(path, sizeof path, "%s/store%d.db", c->tmp, i + 1);
    if (store_open(path, &m->store, em) != 0) {
        fprintf(stderr, "store_open: %s\n", em);
        return -1;
    }
    snprintf(m->dir, sizeof m->dir, "%s/raft%d", c->tmp, i + 1);
    mkdir(m->dir, 0700);
    struct rnode_config cfg = {
        .id = (raft_id)(i + 1),
        .address = m->address,
        .dir = m->dir,
        .election_timeout_ms = 1000,
        .heartbeat_timeout_ms = 100,
        .snapshot_threshold = c->threshold,
        .snapshot_trailing = c->trailing,
        .transport = &m->transport,
    };
    if (rnode_new(&loop, m->store, &cfg, &m->node, em) != 0) {
        fprintf(stderr, "rnode_new: %s\n", em);
        return -1;
    }
    m->up = true;
    return 0;
}

static void closed_cb(void *data)
{
    *(bool *)data = true;
}

static void mgr_teardown(struct mgr *m)
{
    bool closed = false;
    if (!m->up) {
        return;
    }
    rnode_close(m->node, closed_cb, &closed);
    if (!run_until(flag_set, &closed, 10000)) {
        die("rnode_close did not finish");
    }
    rtransport_free(&m->transport);
    closed = false;
    api_server_shutdown(m->server, 0, closed_cb, &closed);
    if (!run_until(flag_set, &closed, 5000)) {
        die("api_server_shutdown did not finish");
    }
    store_close(m->store);
    ident_free(&m->id);
    m->up = false;
}

static void change_cb(int status, void *data)
{
    struct cluster *c = data;
    c->status = status;
    c->done++;
}

static bool done_reached(void *arg)
{
    struct cluster *c = arg;
    return c->done > 0;
}

static int add_voter(struct cluster *c, raft_id id)
{
    c->done = 0;
    if (rnode_add_voter(c->m[0].node, id, c->m[id - 1].address, change_cb, c) != 0) {
        return -1;
    }
    if (!run_until(done_reached, c, 20000)) {
        return -2;
    }
    return c->status;
}

static bool m0_leader(void *arg)
{
    return rnode_is_leader(((struct cluster *)arg)->m[0].node);
}

static void cluster_up(struct cluster *c, unsigned threshold, unsigned trailing)
{
    char em[SWARM_ERRMSG_SIZE] = "";
    const char *tmpdir = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
    memset(c, 0, sizeof *c);
    c->threshold = threshold;
    c->trailing = trailing;
    snprintf(c->tmp, sizeof c->tmp, "%s/swarm-bench-raft-XXXXXX", tmpdir);
    if (mkdtemp(c->tmp) == NULL) {
        die("mkdtemp");
    }
    if (pki_key_generate(&c->ca.key, em) != 0 ||
        pki_root_ca_create(c->ca.key, time(NULL), PKI_ROOT_LIFETIME_S, &c->ca.cert, em) != 0) {
        die(em);
    }
    for (int i = 0; i < 3; i++) {
        if (mgr_setup(c, i) != 0) {
            die("manager setup");
        }
    }
    if (rnode_bootstrap(c->m[0].node, em) != 0) {
        die(em);
    }
    for (int i = 0; i < 3; i++) {
        if (rnode_start(c->m[i].node, em) != 0) {
            die(em);
        }
    }
    if (!run_until(m0_leader, c, 15000)) {
        die("no leader after bootstrap");
    }
    if (add_voter(c, 2) != 0 || add_voter(c, 3) != 0) {
        die("adding voters failed");
    }
}

static void cluster_down(struct cluster *c)
{
    for (int i = MAX_MGRS - 1; i >= 0; i--) {
        mgr_teardown(&c->m[i]);
    }
    X509_free(c->ca.cert);
    EVP_PKEY_free(c->ca.key);
    statedir_remove_tree(c->tmp);
}

/* ------------------------------------------------------------------ load */

struct load {
    struct rnode *leader;
    int per_cmd;       /* task creates per command */
    int max_inflight;
    int inflight;
    bool stop;
    uint64_t committed; /* commands committed, applied and accepted */
    uint64_t failed;
    int first_error;
    char first_message[256];
    /* latencies (ns) of commands completed while `record` */
    bool record;
    uint64_t *lat;
    size_t nlat, caplat;
};

struct req {
    struct load *l;
    uint64_t t0;
};

static uint64_t next_task = 1;

static int propose_one(struct load *l);

static void load_cb(int status, const struct store_result *res, void *data)
{
    struct req *rq = data;
    struct load *l = rq->l;
    uint64_t t1 = uv_hrtime();
    l->inflight--;
    if (status == 0 && res != NULL && res->status == 0) {
        l->committed++;
        if (l->record && l->nlat < l->caplat) {
            l->lat[l->nlat++] = t1 - rq->t0;
        }
    } else {
        if (l->failed++ == 0) {
            l->first_error = status != 0 ? status : res->status;
            snprintf(l->first_message, sizeof l->first_message, "%s",
                     status != 0 ? swarm_strerror(status) : res->message);
        }
    }
    free(rq);
    while (!l->stop && l->inflight < l->max_inflight) {
        if (propose_one(l) != 0) {
            break;
        }
    }
}

/* One command of l->per_cmd task creates. */
static int propose_one(struct load *l)
{
    enum { MAXB = 64 };
    Swarm__StoreCommand cmd = SWARM__STORE_COMMAND__INIT;
    Swarm__StoreAction actions[MAXB];
    Swarm__StoreAction *aptr[MAXB];
    Swarm__Task tasks[MAXB];
    Swarm__TaskSpec specs[MAXB];
    Swarm__ContainerSpec cs[MAXB];
    Swarm__TaskStatus st[MAXB];
    char ids[MAXB][32];
    static char *args[] = {"sleep", "infinity"};
    int n = l->per_cmd < MAXB ? l->per_cmd : MAXB;
    for (int i = 0; i < n; i++) {
        swarm__store_action__init(&actions[i]);
        swarm__task__init(&tasks[i]);
        swarm__task_spec__init(&specs[i]);
        swarm__container_spec__init(&cs[i]);
        swarm__task_status__init(&st[i]);
        snprintf(ids[i], sizeof ids[i], "b%024llu", (unsigned long long)next_task++);
        cs[i].image = "busybox";
        cs[i].n_args = 2;
        cs[i].args = args;
        specs[i].container = &cs[i];
        st[i].state = SWARM__TASK_STATE__TASK_STATE_NEW;
        st[i].timestamp = 1700000000000;
        st[i].message = "created";
        tasks[i].id = ids[i];
        tasks[i].service_id = "benchservice0000000000000";
        tasks[i].service_name = "bench";
        tasks[i].slot = next_task;
        tasks[i].spec = &specs[i];
        tasks[i].status = &st[i];
        tasks[i].desired_state = SWARM__TASK_STATE__TASK_STATE_RUNNING;
        actions[i].kind = SWARM__STORE_ACTION_KIND__STORE_ACTION_CREATE;
        actions[i].target_case = SWARM__STORE_ACTION__TARGET_TASK;
        actions[i].task = &tasks[i];
        aptr[i] = &actions[i];
    }
    cmd.n_actions = (size_t)n;
    cmd.actions = aptr;
    cmd.timestamp = 1700000000000;
    struct req *rq = malloc(sizeof *rq);
    if (rq == NULL) {
        return -1;
    }
    rq->l = l;
    rq->t0 = uv_hrtime();
    int rv = rnode_propose(l->leader, &cmd, load_cb, rq);
    if (rv != 0) {
        free(rq);
        if (l->failed++ == 0) {
            l->first_error = rv;
            snprintf(l->first_message, sizeof l->first_message, "propose: %s",
                     swarm_strerror(rv));
        }
        return rv;
    }
    l->inflight++;
    return 0;
}

static bool load_drained(void *arg)
{
    return ((struct load *)arg)->inflight == 0;
}

static void load_start(struct load *l)
{
    while (l->inflight < l->max_inflight) {
        if (propose_one(l) != 0) {
            die("propose failed at start");
        }
    }
}

static void load_finish(struct load *l)
{
    l->stop = true;
    if (!run_until(load_drained, l, 30000)) {
        die("proposals still in flight 30 s after stopping");
    }
}

struct caught_up {
    struct cluster *c;
    int first, last;
    uint64_t index;
};

static bool stores_at(void *arg)
{
    struct caught_up *k = arg;
    for (int i = k->first; i <= k->last; i++) {
        if (store_last_index(k->c->m[i].store) < k->index) {
            return false;
        }
    }
    return true;
}

/* (a): mutations/s over `secs` after a 0.5 s warm-up. */
static void bench_throughput(struct cluster *c, int per_cmd, int inflight, double secs)
{
    struct load l = {.leader = c->m[0].node, .per_cmd = per_cmd, .max_inflight = inflight};
    load_start(&l);
    run_until(never, NULL, 500);
    uint64_t c0 = l.committed;
    double t0 = now_s();
    run_until(never, NULL, (uint64_t)(secs * 1000));
    uint64_t c1 = l.committed;
    double t1 = now_s();
    load_finish(&l);
    /* Replicated: every follower's store reaches the leader's index. */
    struct caught_up k = {c, 1, 2, store_last_index(c->m[0].store)};
    double tc = now_s();
    bool ok = run_until(stores_at, &k, 30000);
    double catchup = now_s() - tc;
    if (l.failed > 0) {
        fprintf(stderr, "bench_raft: %llu proposals failed, first: %s\n",
                (unsigned long long)l.failed, l.first_message);
    }
    double cmds = (double)(c1 - c0) / (t1 - t0);
    printf("raft_throughput_%dx%d_mutations: %.0f mutations/s\n", inflight, per_cmd,
           cmds * per_cmd);
    printf("raft_throughput_%dx%d_entries: %.0f entries/s\n", inflight, per_cmd, cmds);
    printf("raft_throughput_%dx%d_followers_catchup: %.3f s%s\n", inflight, per_cmd, catchup,
           ok ? "" : " (NOT caught up after 30 s)");
    fflush(stdout);
    if (!ok) {
        die("followers did not catch up");
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* (b): one write in flight, for `secs`. */
static void bench_latency(struct cluster *c, double secs)
{
    struct load l = {.leader = c->m[0].node, .per_cmd = 1, .max_inflight = 1};
    l.caplat = 1000000;
    l.lat = calloc(l.caplat, sizeof *l.lat);
    if (l.lat == NULL) {
        die("out of memory");
    }
    load_start(&l);
    run_until(never, NULL, 300);
    l.record = true;
    run_until(never, NULL, (uint64_t)(secs * 1000));
    l.record = false;
    load_finish(&l);
    if (l.nlat == 0) {
        die("no write completed");
    }
    qsort(l.lat, l.nlat, sizeof *l.lat, cmp_u64);
    double p50 = (double)l.lat[l.nlat / 2] / 1e6;
    double p99 = (double)l.lat[(size_t)((double)(l.nlat - 1) * 0.99)] / 1e6;
    printf("raft_write_latency_p50: %.3f ms\n", p50);
    printf("raft_write_latency_p99: %.3f ms\n", p99);
    printf("raft_write_latency_samples: %zu writes\n", l.nlat);
    fflush(stdout);
    free(l.lat);
}

/* (c): a 4th manager joins a swarm of JOIN_TASKS tasks. */
static bool m3_done(void *arg)
{
    return ((struct cluster *)arg)->done > 0;
}

static void bench_join(void)
{
    struct cluster c;
    char em[SWARM_ERRMSG_SIZE] = "";
    /* Small threshold: the leader keeps only a short log tail, so the new
     * manager must be sent a snapshot. */
    cluster_up(&c, 64, 16);
    struct load l = {.leader = c.m[0].node, .per_cmd = 50, .max_inflight = 64};
    while (l.committed * 50 < JOIN_TASKS) {
        uint64_t want = JOIN_TASKS / 50 - l.committed;
        l.max_inflight = want < 64 ? (int)want : 64;
        l.stop = false;
        load_start(&l);
        load_finish(&l);
        if (l.failed > 0) {
            die(l.first_message);
        }
    }
    size_t ntasks = 0;
    {
        Swarm__Task **tasks = NULL;
        if (store_task_list(c.m[0].store, &tasks, &ntasks) != 0) {
            die("task list");
        }
        store_task_free_list(tasks, ntasks);
    }
    uint64_t target = store_last_index(c.m[0].store);
    struct raft *lr = rnode_raft_testonly(c.m[0].node);
    unsigned long long leader_snap = (unsigned long long)lr->log.snapshot.last_index;

    if (mgr_setup(&c, 3) != 0 || rnode_start(c.m[3].node, em) != 0) {
        die("4th manager setup");
    }
    c.done = 0;
    double t0 = now_s();
    if (rnode_add_voter(c.m[0].node, 4, c.m[3].address, change_cb, &c) != 0) {
        die("rnode_add_voter");
    }
    struct caught_up k = {&c, 3, 3, target};
    bool ok = run_until(stores_at, &k, 120000);
    double t_store = now_s() - t0;
    bool voted = run_until(m3_done, &c, 30000);
    double t_voter = now_s() - t0;
    if (!ok) {
        die("the 4th manager's store did not catch up within 120 s");
    }
    Swarm__Task **tasks = NULL;
    size_t n4 = 0;
    if (store_task_list(c.m[3].store, &tasks, &n4) != 0) {
        die("task list on the 4th manager");
    }
    store_task_free_list(tasks, n4);
    struct raft *r4 = rnode_raft_testonly(c.m[3].node);
    unsigned long long snap4 = (unsigned long long)r4->log.snapshot.last_index;
    printf("raft_join_%zu_tasks_store_complete: %.3f s\n", ntasks, t_store);
    if (voted && c.status == 0) {
        printf("raft_join_%zu_tasks_voter_committed: %.3f s\n", ntasks, t_voter);
    } else {
        printf("raft_join_voter_committed: failed (%s)\n", swarm_strerror(c.status));
    }
    printf("raft_join_tasks_on_new_manager: %zu tasks (of %zu)\n", n4, ntasks);
    printf("raft_join_via_snapshot: %s (new manager's snapshot index %llu, leader's %llu, "
           "log index %llu)\n", snap4 > 0 ? "yes" : "no", snap4, leader_snap,
           (unsigned long long)target);
    fflush(stdout);
    cluster_down(&c);
    if (n4 != ntasks) {
        die("the 4th manager is missing tasks");
    }
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 3.0;
    if (secs <= 0) {
        secs = 3.0;
    }
    signal(SIGPIPE, SIG_IGN);
    log_set_level(LOG_WARN);
    uv_loop_init(&loop);
    uv_timer_init(&loop, &tick);

    struct cluster c;
    /* The daemon's defaults: snapshot every 10000 entries, 5000 kept. */
    cluster_up(&c, 0, 0);
    printf("raft_managers: 3 (one process, mTLS on 127.0.0.31-33, stores on disk in %s)\n",
           c.tmp);
    bench_throughput(&c, 32, 256, secs);
    bench_throughput(&c, 1, 256, secs);
    bench_latency(&c, secs < 2 ? secs : 2);
    cluster_down(&c);

    bench_join();

    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 0;
}
