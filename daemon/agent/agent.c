/* The agent: lifecycle, the node's task set, and what the executor reports.
 * The dispatcher session (connection, heartbeats, streams, status batches)
 * is in session.c; the local task database in taskdb.c.
 *
 * A session, happy path (session.c has the details):
 *   connect (TLS, worker cert) to a manager -> Session stream -> first
 *   SessionMessage opens the session (id, node, managers, heartbeat period)
 *   -> Heartbeat every period, Assignments stream (COMPLETE, then
 *   INCREMENTAL), UpdateTaskStatus batches every 100 ms or at 256 updates.
 * Failure paths:
 *   - connect/handshake fails or times out (5 s): next manager after a
 *     backoff (100 ms doubling to 2 s, with jitter, forever);
 *   - the first message is a redirect: close, connect to the named address
 *     at once (after AGENT_REDIRECT_MAX redirects in a row, with backoff);
 *   - no first message within 5 s, or one without a session ID: as a
 *     failed connect;
 *   - a failed heartbeat or status batch, or a stream that ends: close the
 *     connection and reconnect, the last leader first, then the others in
 *     turn. Unacknowledged statuses stay queued and are resent on the next
 *     session; tasks keep running meanwhile;
 *   - agent_stop: close the connection (its calls end), stop the tasks if
 *     asked, close the executor and the DB, then `done`.
 *
 * Tasks: an assigned task whose desired state is <= RUNNING is started
 * once; desired > RUNNING stops it; a task no longer assigned is stopped and
 * removed once ended. A task that reached a terminal state is never started
 * again (a restart is a new task, made by the orchestrator). */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agent_int.h"
#include "err.h"
#include "hostinfo.h"
#include "id.h"
#include "log.h"
#include "netplan.h"
#include "netplane.h"
#include "pbcopy.h"
#include "statedir.h"
#include "vec.h"

/* ------------------------------------------------------------- tasks */

static Swarm__Task *agent_task_copy(const Swarm__Task *t)
{
    return pb_copy(&t->base);
}

static void agent_task_free(struct agent_task *at)
{
    if (at->task != NULL) {
        swarm__task__free_unpacked(at->task, NULL);
    }
    free(at->st.message);
    free(at->st.err);
    free(at->id);
    free(at);
}

/* A new entry for `task` (owned by the entry on success). */
static struct agent_task *agent_task_new(struct agent *a, Swarm__Task *task)
{
    struct agent_task *at = calloc(1, sizeof *at);
    if (at == NULL || (at->id = strdup(task->id)) == NULL) {
        free(at);
        return NULL;
    }
    at->task = task;
    at->st.state = SWARM__TASK_STATE__TASK_STATE_NEW;
    if (agent_table_put(&a->tasks, at) != 0) {
        free(at->id);
        free(at);
        return NULL;
    }
    return at;
}

static void agent_task_drop(struct agent *a, struct agent_task *at)
{
    agent_rep_del(a, at);
    agent_table_del(&a->tasks, at);
    agent_task_free(at);
}

void agent_rep_add(struct agent *a, struct agent_task *at)
{
    at->status_seq++;
    if (at->in_rep) {
        return;
    }
    at->in_rep = true;
    at->rep_next = NULL;
    at->rep_prev = a->rep_tail;
    if (a->rep_tail != NULL) {
        a->rep_tail->rep_next = at;
    } else {
        a->rep_head = at;
    }
    a->rep_tail = at;
    a->n_rep++;
}

void agent_rep_del(struct agent *a, struct agent_task *at)
{
    if (!at->in_rep) {
        return;
    }
    if (at->rep_prev != NULL) {
        at->rep_prev->rep_next = at->rep_next;
    } else {
        a->rep_head = at->rep_next;
    }
    if (at->rep_next != NULL) {
        at->rep_next->rep_prev = at->rep_prev;
    } else {
        a->rep_tail = at->rep_prev;
    }
    at->in_rep = false;
    at->rep_prev = at->rep_next = NULL;
    a->n_rep--;
}

/* A copy of a status string, cut to what the dispatcher accepts (at a
 * UTF-8 character boundary). */
static char *agent_status_str(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    if (n > AGENT_STATUS_STR_MAX) {
        n = AGENT_STATUS_STR_MAX;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) {
            n--;
        }
    }
    return strndup(s != NULL ? s : "", n);
}

/* Record a status: remember it, persist it (committed with the next flush)
 * and queue it for the manager. */
static void agent_task_set_status(struct agent *a, struct agent_task *at, Swarm__TaskState state,
                                  const char *message, const char *err, int exit_code, int pid)
{
    Swarm__TaskStatus ts = SWARM__TASK_STATUS__INIT;
    char *m = agent_status_str(message);
    char *e = agent_status_str(err);
    if (m == NULL || e == NULL) {
        free(m);
        free(e);
        log_error("agent", "task %s: out of memory recording its status", at->id);
        return;
    }
    free(at->st.message);
    free(at->st.err);
    at->st.state = state;
    at->st.timestamp = (int64_t)agent_wall_ms();
    at->st.message = m;
    at->st.err = e;
    at->st.exit_code = exit_code;
    at->st.pid = pid;
    ts.timestamp = at->st.timestamp;
    ts.state = state;
    ts.message = m;
    ts.err = e;
    ts.exit_code = exit_code;
    ts.pid = pid;
    if (a->db_open) {
        taskdb_put_status(&a->db, at->id, &ts);
    }
    agent_rep_add(a, at);
    agent_reporter_kick(a);
}

static void agent_net_for_task(struct agent *a, const Swarm__Task *t);

/* Make the executor match the task's desired state. */
static void agent_task_reconcile(struct agent *a, struct agent_task *at)
{
    Swarm__TaskState desired = at->task->desired_state;
    int rv;
    if (agent_state_terminal(at->st.state)) {
        return; /* never again: the orchestrator makes a new task */
    }
    if (desired <= SWARM__TASK_STATE__TASK_STATE_RUNNING) {
        if (at->started) {
            return;
        }
        agent_net_for_task(a, at->task);
        rv = executor_start(a->exec, at->task);
        if (rv != 0) {
            agent_task_set_status(a, at, SWARM__TASK_STATE__TASK_STATE_REJECTED, "rejected",
                                  rv == SWARM_EINVAL ? "invalid task: no program to run"
                                                     : swarm_strerror(rv),
                                  0, 0);
            return;
        }
        at->started = true;
    } else if (at->started) {
        executor_stop(a->exec, at->id);
    } else {
        /* Never ran here: it is shut down as it stands. */
        agent_task_set_status(a, at, SWARM__TASK_STATE__TASK_STATE_SHUTDOWN, "shutdown", "", 0,
                              0);
    }
}

/* The task is no longer assigned: stop it, forget it once it ended. */
static void agent_task_unassign(struct agent *a, struct agent_task *at)
{
    if (a->db_open) {
        taskdb_delete(&a->db, at->id);
    }
    agent_rep_del(a, at); /* the manager no longer wants to hear about it */
    if (at->started && !agent_state_terminal(at->st.state)) {
        at->removing = true;
        executor_stop(a->exec, at->id);
        return;
    }
    executor_remove(a->exec, at->id);
    agent_task_drop(a, at);
}

static void agent_task_update(struct agent *a, const Swarm__Task *t)
{
    struct agent_task *at;
    Swarm__Task *copy;
    if (!id_is_path_safe(t->id)) {
        /* It would name a directory on this node: never trust a manager with
         * a path. Nothing is stored or run, nothing reported. */
        log_warn("agent", "refusing an assigned task with an invalid ID (%zu bytes)",
                 t->id != NULL ? strlen(t->id) : (size_t)0);
        return;
    }
    if ((copy = agent_task_copy(t)) == NULL) {
        log_error("agent", "task %s: out of memory", t->id);
        return;
    }
    at = agent_table_get(&a->tasks, t->id);
    if (at == NULL) {
        if ((at = agent_task_new(a, copy)) == NULL) {
            swarm__task__free_unpacked(copy, NULL);
            log_error("agent", "task %s: out of memory", t->id);
            return;
        }
        /* New to this node but already ended (as far as the manager knows):
         * nothing to run. */
        if (t->status != NULL && agent_state_terminal(t->status->state)) {
            at->st.state = t->status->state;
        }
    } else {
        swarm__task__free_unpacked(at->task, NULL);
        at->task = copy;
        at->removing = false;
    }
    at->seen_gen = a->complete_gen;
    if (a->db_open) {
        taskdb_put_task(&a->db, at->task);
    }
    agent_task_reconcile(a, at);
}

static void agent_unassign_unseen_cb(struct agent_task *at, void *arg)
{
    struct agent *a = arg;
    if (at->seen_gen != a->complete_gen && !at->removing) {
        agent_task_unassign(a, at);
    }
}

void agent_staged_clear(struct agent *a)
{
    for (size_t i = 0; i < a->n_staged; i++) {
        swarm__task__free_unpacked(a->staged[i], NULL);
    }
    free(a->staged);
    a->staged = NULL;
    a->n_staged = a->cap_staged = 0;
}

/* Hold the tasks of a COMPLETE message that is not the last of its set. */
static int agent_stage(struct agent *a, const Swarm__AssignmentsMessage *m)
{
    if (vec_grow(a->staged, a->cap_staged, a->n_staged + m->n_update) != 0) {
        return SWARM_ENOMEM;
    }
    for (size_t i = 0; i < m->n_update; i++) {
        if (m->update[i] == NULL) {
            continue;
        }
        if ((a->staged[a->n_staged] = agent_task_copy(m->update[i])) == NULL) {
            return SWARM_ENOMEM;
        }
        a->n_staged++;
    }
    return 0;
}

/* Returns 0, or SWARM_ENOMEM when a COMPLETE set could not be held (the
 * caller ends the session: the next one sends the set again). */
int agent_apply_assignments(struct agent *a, const Swarm__AssignmentsMessage *m)
{
    bool complete = m->type == SWARM__ASSIGNMENTS_TYPE__ASSIGNMENTS_COMPLETE;
    if (complete) {
        /* Nothing of a set applies before its last message: a stream cut
         * in the middle leaves the previous set in force. */
        if (agent_stage(a, m) != 0) {
            agent_staged_clear(a);
            return SWARM_ENOMEM;
        }
        if (m->more) {
            return 0;
        }
        a->complete_gen++;
        for (size_t i = 0; i < a->n_staged; i++) {
            agent_task_update(a, a->staged[i]);
        }
        agent_staged_clear(a);
    } else {
        for (size_t i = 0; i < m->n_update; i++) {
            if (m->update[i] != NULL) {
                agent_task_update(a, m->update[i]);
            }
        }
    }
    for (size_t i = 0; i < m->n_remove; i++) {
        struct agent_task *at = agent_table_get(&a->tasks, m->remove[i]);
        if (at != NULL && !at->removing) {
            agent_task_unassign(a, at);
        }
    }
    if (complete) {
        agent_table_foreach(&a->tasks, agent_unassign_unseen_cb, a);
    }
    if (a->db_open) {
        taskdb_commit(&a->db);
    }
    return 0;
}

/* Host-mode published ports (issue 13): the node's running tasks' ports,
 * mapped by the netplane's table; redone when a task's state changes. */
static int agent_net_ensure(struct agent *a);

struct agent_hostports {
    const Swarm__Task **tasks;
    size_t n, cap;
};

static bool agent_task_has_host_ports(const Swarm__Task *t)
{
    for (size_t i = 0; t != NULL && t->endpoint != NULL && i < t->endpoint->n_ports; i++) {
        const char *m = t->endpoint->ports[i]->publish_mode;
        if (m != NULL && strcmp(m, "host") == 0) {
            return true;
        }
    }
    return false;
}

static void agent_hostports_cb(struct agent_task *at, void *arg)
{
    struct agent_hostports *h = arg;
    const Swarm__Task *t = at->task;
    if (!agent_task_has_host_ports(t) || at->removing || at->st.state != SWARM__TASK_STATE__TASK_STATE_RUNNING) {
        return;
    }
    if (h->n == h->cap) {
        size_t cap = h->cap > 0 ? h->cap * 2 : 8;
        const Swarm__Task **g = realloc(h->tasks, cap * sizeof *g);
        if (g == NULL) {
            return;
        }
        h->tasks = g;
        h->cap = cap;
    }
    h->tasks[h->n++] = t;
}

static void agent_hostports_sync(struct agent *a)
{
    struct agent_hostports h = {0};
    char why[SWARM_ERRMSG_SIZE] = "";
    agent_table_foreach(&a->tasks, agent_hostports_cb, &h);
    if (h.n == 0 && a->net == NULL) {
        free(h.tasks);
        return;
    }
    /* A task in a sandbox is reached at its gateway bridge address. */
    uint32_t *gw = h.n > 0 ? calloc(h.n, sizeof *gw) : NULL;
    for (size_t i = 0; gw != NULL && a->net != NULL && i < h.n; i++) {
        gw[i] = netplane_sandbox_gw_addr(a->net, h.tasks[i]->id);
    }
    char *rules = h.n == 0 || gw != NULL ? netplan_host_rules(h.tasks, gw, h.n) : NULL;
    free(gw);
    free(h.tasks);
    if (rules != NULL && (rules[0] == '\0' || agent_net_ensure(a) == 0) && a->net != NULL &&
        netplane_host_ports(a->net, rules, why) != 0) {
        log_warn("agent", "host-mode ports: %s", why);
    }
    free(rules);
}

static void agent_exec_status_cb(const char *task_id, const struct exec_status *st, void *data)
{
    struct agent *a = data;
    struct agent_task *at = agent_table_get(&a->tasks, task_id);
    if (at == NULL || !a->exec_open) {
        return;
    }
    /* Only a task with host-mode ports changes them (the scan below visits
     * every task: not once per status of 100,000 others). */
    bool host = agent_task_has_host_ports(at->task);
    if (at->removing) {
        at->st.state = st->state;
        if (agent_state_terminal(st->state)) {
            executor_remove(a->exec, at->id);
            agent_task_drop(a, at);
        }
    } else {
        agent_task_set_status(a, at, st->state, st->message, st->err, st->exit_code, st->pid);
    }
    if (host) {
        agent_hostports_sync(a);
    }
    if (a->closing && agent_state_terminal(st->state) && a->n_stopping > 0) {
        if (--a->n_stopping == 0) {
            uv_timer_stop(&a->stop_timer);
            agent_maybe_finish(a);
        }
    }
}

/* ----------------------------------------------------- start from the DB */

static void agent_load_row_cb(Swarm__Task *task, Swarm__TaskStatus *st, void *arg)
{
    struct agent *a = arg;
    struct agent_task *at = NULL;
    if (!id_is_path_safe(task->id)) {
        log_warn("agent", "task db: skipping a task with an invalid ID");
    } else {
        at = agent_task_new(a, task);
    }
    if (at == NULL) {
        swarm__task__free_unpacked(task, NULL);
    } else if (st != NULL) {
        at->st.state = st->state;
        at->st.timestamp = st->timestamp;
        at->st.message = agent_status_str(st->message);
        at->st.err = agent_status_str(st->err);
        at->st.exit_code = st->exit_code;
        at->st.pid = st->pid;
    }
    if (st != NULL) {
        swarm__task_status__free_unpacked(st, NULL);
    }
}

/* Resume what the previous run was running; what it was told to stop
 * ended with it. The last known statuses are reported again to the first
 * manager we reach (status updates are forward-only there). */
static void agent_resume_cb(struct agent_task *at, void *arg)
{
    struct agent *a = arg;
    if (at->task->desired_state <= SWARM__TASK_STATE__TASK_STATE_RUNNING &&
        !agent_state_terminal(at->st.state)) {
        agent_task_reconcile(a, at);
    } else if (!agent_state_terminal(at->st.state)) {
        agent_task_set_status(a, at, SWARM__TASK_STATE__TASK_STATE_SHUTDOWN, "shutdown",
                              "stopped while the node was down", 0, 0);
    } else if (at->st.state != SWARM__TASK_STATE__TASK_STATE_NEW) {
        agent_rep_add(a, at);
    }
}

static int agent_open_db(struct agent *a, char *errmsg)
{
    char *path = NULL;
    int rv;
    if (mkdir(a->state_dir, 0700) != 0 && errno != EEXIST) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "agent: mkdir %s: %s", a->state_dir,
                      strerror(errno));
        return SWARM_EIO;
    }
    if (mkdir(a->worker_dir, 0700) != 0 && errno != EEXIST) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "agent: mkdir %s: %s", a->worker_dir,
                      strerror(errno));
        return SWARM_EIO;
    }
    if (asprintf(&path, "%s/" STATEDIR_TASKS_DB_NAME, a->worker_dir) < 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "agent: out of memory");
        return SWARM_ENOMEM;
    }
    rv = taskdb_open(&a->db, path, errmsg);
    free(path);
    if (rv == 0) {
        a->db_open = true;
    }
    return rv;
}

/* ---------------------------------------------------------- lifecycle */

static void agent_free_task_cb(struct agent_task *at, void *arg)
{
    struct agent *a = arg;
    agent_rep_del(a, at);
    agent_table_del(&a->tasks, at);
    agent_task_free(at);
}

static void agent_handle_closed_cb(uv_handle_t *h)
{
    struct agent *a = h->data;
    a->open_handles--;
    agent_maybe_finish(a);
}

static void agent_free(struct agent *a)
{
    agent_staged_clear(a);
    agent_netmaps_free(a);
    for (size_t i = 0; i < a->n_mgrs; i++) {
        free(a->mgrs[i]);
    }
    free(a->mgrs);
    for (size_t i = 0; i < a->n_cfg_mgrs; i++) {
        free(a->cfg_mgrs[i]);
    }
    free(a->cfg_mgrs);
    if (a->desc != NULL) {
        swarm__node_description__free_unpacked(a->desc, NULL);
    }
    if (a->client_ctx != NULL) {
        SSL_CTX_free(a->client_ctx);
    }
    free(a->state_dir);
    free(a->worker_dir);
    free(a->task_dir);
    free(a->node_id);
    free(a->hostname);
    free(a->underlay_ip);
    free(a);
}

static int agent_copy_config(struct agent *a, const struct agent_config *cfg, char *errmsg)
{
    a->loop = cfg->loop;
    a->managers_cb = cfg->managers_cb;
    a->node_cb = cfg->node_cb;
    a->removed_cb = cfg->removed_cb;
    a->root_ca_cb = cfg->root_ca_cb;
    a->renew_cb = cfg->renew_cb;
    a->conn_error_cb = cfg->conn_error_cb;
    a->data = cfg->data;
    a->state_dir = strdup(cfg->state_dir);
    a->node_id = strdup(cfg->node_id != NULL ? cfg->node_id : "");
    a->hostname = cfg->hostname != NULL ? strdup(cfg->hostname) : NULL;
    a->mgrs = calloc(cfg->n_managers ? cfg->n_managers : 1, sizeof *a->mgrs);
    a->cfg_mgrs = calloc(cfg->n_managers ? cfg->n_managers : 1, sizeof *a->cfg_mgrs);
    if (a->state_dir == NULL || a->node_id == NULL || a->mgrs == NULL || a->cfg_mgrs == NULL ||
        (cfg->hostname != NULL && a->hostname == NULL) ||
        asprintf(&a->worker_dir, "%s/" STATEDIR_WORKER, cfg->state_dir) < 0) {
        a->worker_dir = NULL;
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "agent: out of memory");
        return SWARM_ENOMEM;
    }
    size_t len = strlen(cfg->state_dir);
    while (len > 1 && cfg->state_dir[len - 1] == '/') {
        len--;
    }
    if ((cfg->task_dir != NULL && (a->task_dir = strdup(cfg->task_dir)) == NULL) ||
        (cfg->task_dir == NULL &&
         asprintf(&a->task_dir, "%.*s-tasks", (int)len, cfg->state_dir) < 0)) {
        a->task_dir = NULL;
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "agent: out of memory");
        return SWARM_ENOMEM;
    }
    for (size_t i = 0; i < cfg->n_managers; i++) {
        if (cfg->managers[i] == NULL || strlen(cfg->managers[i]) >= AGENT_ADDR_MAX) {
            continue;
        }
        if ((a->mgrs[a->n_mgrs] = strdup(cfg->managers[i])) == NULL ||
            (a->cfg_mgrs[a->n_cfg_mgrs] = strdup(cfg->managers[i])) == NULL) {
            free(a->mgrs[a->n_mgrs]);
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "agent: out of memory");
            return SWARM_ENOMEM;
        }
        a->n_mgrs++;
        a->n_cfg_mgrs++;
    }
    a->insecure_registries = cfg->insecure_registries;
    a->images = cfg->images;
    a->n_insecure_registries = cfg->n_insecure_registries;
    a->desc = hostinfo_describe(cfg->hostname);
    if (a->desc == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "agent: out of memory");
        return SWARM_ENOMEM;
    }
    SSL_CTX_up_ref(cfg->client_ctx);
    a->client_ctx = cfg->client_ctx;
    a->rng = uv_hrtime() ^ (uint64_t)(uintptr_t)a ^ 0x9e3779b97f4a7c15ULL;
    a->backoff_ms = AGENT_BACKOFF_MIN_MS;
    a->hb_period_ms = AGENT_HEARTBEAT_DEFAULT_MS;
    return 0;
}

/* ---------------------------------------------------------- networking */

/* The node's netplane, made on first need: when a network map or a task
 * with networks arrives, or at start when a previous run left networking
 * state behind (to clean it up). A node that never runs a task on a
 * network makes nothing. 0, or SWARM_E* (logged). */
static int agent_net_ensure(struct agent *a)
{
    char why[SWARM_ERRMSG_SIZE] = "";
    int rv;
    if (a->net != NULL) {
        return 0;
    }
    if (a->underlay_ip == NULL) {
        return SWARM_EPERM; /* no networking on this node */
    }
    struct netplane_config nc = {
        .loop = a->loop,
        .state_dir = a->state_dir,
        .underlay_ip = a->underlay_ip,
    };
    if ((rv = netplane_new(&nc, &a->net, why)) != 0) {
        log_error("agent", "networking: %s", why);
        a->net = NULL;
        return rv;
    }
    netplane_cleanup_leftovers(a->net);
    if (a->exec != NULL) {
        executor_set_net(a->exec, a->net);
    }
    log_info("agent", "networking on, underlay address %s", a->underlay_ip);
    return 0;
}

static int agent_np_update_cb(void *impl, const Swarm__NetworkMap *map, char *errmsg)
{
    struct agent *a = impl;
    int rv = agent_net_ensure(a);
    if (rv != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "networking unavailable: %s",
                      swarm_strerror(rv));
        return rv;
    }
    return netplane_map_update(a->net, map, errmsg);
}

static int agent_np_remove_cb(void *impl, const char *network_id)
{
    struct agent *a = impl;
    return a->net != NULL ? netplane_map_remove(a->net, network_id) : SWARM_ENOTFOUND;
}

/* The node's networking (see agent_config.underlay_ip). A host that cannot
 * do it is not an error: the description says why, tasks without networks
 * run as ever. 0, or SWARM_ENOMEM. */
static int agent_net_start(struct agent *a, const struct agent_config *cfg)
{
    char why[SWARM_ERRMSG_SIZE] = "", dir[PATH_MAX];
    struct stat st;
    if (cfg->netsink != NULL) {
        a->netsink = *cfg->netsink;
        a->has_netsink = true;
        return 0;
    }
    if (cfg->underlay_ip == NULL || cfg->underlay_ip[0] == '\0' ||
        (cfg->executor != NULL && strcmp(cfg->executor, "process") != 0)) {
        return 0;
    }
    if (netplane_probe(why) != 0) {
        log_warn("agent", "tasks on networks cannot run on this node: %s", why);
        char *copy = strdup(why);
        if (copy == NULL) {
            return SWARM_ENOMEM;
        }
        /* An unset string field is protobuf-c's static "", never freed. */
        if (a->desc->network_error != protobuf_c_empty_string) {
            free(a->desc->network_error);
        }
        a->desc->network_error = copy;
        return 0;
    }
    if ((a->underlay_ip = strdup(cfg->underlay_ip)) == NULL) {
        return SWARM_ENOMEM;
    }
    a->netsink.update = agent_np_update_cb;
    a->netsink.remove = agent_np_remove_cb;
    a->netsink.impl = a;
    a->has_netsink = true;
    snprintf(dir, sizeof dir, "%s/net", a->state_dir);
    if (stat(dir, &st) == 0) {
        (void)agent_net_ensure(a); /* what a previous run left goes now */
    }
    return 0;
}

/* A task with networks is about to start: its sandbox needs the netplane. */
static void agent_net_for_task(struct agent *a, const Swarm__Task *t)
{
    if (t->n_networks > 0 && a->underlay_ip != NULL) {
        (void)agent_net_ensure(a);
    }
}

static void agent_net_close(struct agent *a)
{
    agent_netmaps_free(a);
    if (a->net != NULL) {
        netplane_close(a->net);
        a->net = NULL;
    }
    a->has_netsink = false;
}

/* The process executor, and the container executor where the node offers
 * containers (hostinfo: runc, root), behind one that dispatches each task
 * by its runtime. A container executor that cannot start leaves the node
 * with processes only (its container tasks are rejected). */
static int agent_new_runtimes(struct agent *a, const struct executor_config *ec, char *errmsg)
{
    struct executor *proc = NULL, *ctr = NULL;
    char runc[PATH_MAX], why[SWARM_ERRMSG_SIZE];
    int rv = executor_process_new(ec, &proc, errmsg);
    if (rv != 0) {
        return rv;
    }
    if (hostinfo_container_runtime(runc, sizeof runc) &&
        executor_container_new(ec, runc, &ctr, why) != 0) {
        log_error("agent", "container runtime: %s; container tasks will be rejected", why);
        ctr = NULL;
    }
    rv = executor_dispatch_new(ec, proc, ctr, &a->exec, errmsg);
    if (rv != 0) {
        executor_close(proc, 0, NULL, NULL);
        if (ctr != NULL) {
            executor_close(ctr, 0, NULL, NULL);
        }
    }
    return rv;
}

static int agent_new_executor(struct agent *a, const char *kind, char *errmsg)
{
    char old_dir[PATH_MAX];
    snprintf(old_dir, sizeof old_dir, "%s/tasks", a->worker_dir);
    struct executor_config ec = {
        .loop = a->loop,
        .dir = a->task_dir,
        .hide_dir = a->state_dir,
        .old_dir = old_dir,
        .node_id = a->node_id,
        .cb = agent_exec_status_cb,
        .data = a,
        .net = a->net, /* NULL until first needed (agent_net_ensure) */
        .images = a->images,
        .insecure_registries = a->insecure_registries,
        .n_insecure_registries = a->n_insecure_registries,
    };
    int rv;
    if (kind == NULL || strcmp(kind, "process") == 0) {
        rv = agent_new_runtimes(a, &ec, errmsg);
    } else if (strcmp(kind, "sim") == 0) {
        rv = executor_sim_new(&ec, &a->exec, errmsg);
    } else {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "agent: unknown executor \"%s\" (process or sim)", kind);
        return SWARM_EINVAL;
    }
    a->exec_open = rv == 0;
    return rv;
}

int agent_start(const struct agent_config *cfg, struct agent **out, char *errmsg)
{
    struct agent *a;
    int rv;
    if (cfg == NULL || cfg->loop == NULL || cfg->state_dir == NULL || cfg->client_ctx == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "agent: loop, state dir and TLS context required");
        return SWARM_EINVAL;
    }
    if ((a = calloc(1, sizeof *a)) == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "agent: out of memory");
        return SWARM_ENOMEM;
    }
    if ((rv = agent_copy_config(a, cfg, errmsg)) != 0) {
        goto err_after_alloc;
    }
    if ((rv = agent_table_init(&a->tasks)) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "agent: out of memory");
        goto err_after_alloc;
    }
    if ((rv = agent_open_db(a, errmsg)) != 0) {
        goto err_after_table;
    }
    if ((rv = agent_net_start(a, cfg)) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "agent: out of memory");
        goto err_after_db;
    }
    if ((rv = taskdb_load(&a->db, agent_load_row_cb, a, errmsg)) != 0) {
        goto err_after_db;
    }
    if ((rv = agent_new_executor(a, cfg->executor, errmsg)) != 0) {
        goto err_after_db;
    }
    uv_timer_t *timers[] = {&a->retry_timer, &a->open_timer, &a->hb_timer, &a->flush_timer,
                            &a->stop_timer, &a->report_timer};
    for (size_t i = 0; i < sizeof timers / sizeof timers[0]; i++) {
        uv_timer_init(a->loop, timers[i]);
        timers[i]->data = a;
        a->open_handles++;
    }
    executor_cleanup_leftovers(a->exec);
    agent_table_foreach(&a->tasks, agent_resume_cb, a);
    taskdb_commit(&a->db);
    agent_session_connect(a);
    *out = a;
    return 0;

err_after_db:
    agent_net_close(a);
    taskdb_close(&a->db);
err_after_table:
    agent_table_foreach(&a->tasks, agent_free_task_cb, a);
    agent_table_free(&a->tasks);
err_after_alloc:
    agent_free(a);
    return rv;
}

void agent_set_client_ctx(struct agent *a, SSL_CTX *ctx)
{
    SSL_CTX_up_ref(ctx);
    SSL_CTX_free(a->client_ctx);
    a->client_ctx = ctx;
}

static void agent_report_cb(uv_timer_t *t)
{
    struct agent *a = t->data;
    if (!a->closing && a->conn != NULL && a->conn->state != AGENT_CONN_CONNECTING) {
        agent_session_restart(a, "this node's certificate changed");
    }
}

void agent_set_tls_info(struct agent *a, const Swarm__NodeTLSInfo *info, uint64_t spread_ms)
{
    Swarm__NodeTLSInfo *copy = info != NULL ? pb_copy(&info->base) : NULL;
    if (a->closing || a->desc == NULL || (info != NULL && copy == NULL)) {
        if (copy != NULL) {
            swarm__node_tlsinfo__free_unpacked(copy, NULL);
        }
        return;
    }
    if (a->desc->tls_info != NULL) {
        swarm__node_tlsinfo__free_unpacked(a->desc->tls_info, NULL);
    }
    a->desc->tls_info = copy;
    /* A connection still connecting sends the new description anyway. A
     * change every node makes at once (a new trust root) is spread out, so
     * that the leader does not take every reconnection in the same moment. */
    uint64_t delay = 0;
    if (spread_ms > 0) {
        a->rng ^= a->rng << 13;
        a->rng ^= a->rng >> 7;
        a->rng ^= a->rng << 17;
        delay = a->rng % spread_ms;
    }
    if (a->db_open) {
        uv_timer_start(&a->report_timer, agent_report_cb, delay, 0);
    }
}

const char *agent_any_manager_addr(const struct agent *a)
{
    if (agent_connected(a)) {
        return a->conn->addr;
    }
    if (a->last_leader[0] != '\0') {
        return a->last_leader;
    }
    return a->n_mgrs > 0 ? a->mgrs[0] : NULL;
}

bool agent_connected(const struct agent *a)
{
    return a->conn != NULL && a->conn->state == AGENT_CONN_OPEN;
}

const char *agent_manager_addr(const struct agent *a)
{
    return agent_connected(a) ? a->conn->addr : NULL;
}

static void agent_stop_timeout_cb(uv_timer_t *t)
{
    struct agent *a = t->data;
    if (a->n_stopping > 0) {
        log_warn("agent", "%u task(s) did not report their end in time", a->n_stopping);
    }
    a->n_stopping = 0;
    agent_maybe_finish(a);
}

static void agent_exec_closed_cb(void *data)
{
    struct agent *a = data;
    a->exec = NULL;
    agent_maybe_finish(a);
}

struct agent_stop_ctx {
    struct agent *a;
    uint64_t grace_ms;
};

static void agent_stop_task_cb(struct agent_task *at, void *arg)
{
    struct agent_stop_ctx *sc = arg;
    if (!at->started || agent_state_terminal(at->st.state)) {
        return;
    }
    const Swarm__ContainerSpec *c = at->task->spec ? at->task->spec->container : NULL;
    uint64_t g = c != NULL && c->stop_grace_period_ms > 0 ? (uint64_t)c->stop_grace_period_ms
                                                           : EXECUTOR_DEFAULT_STOP_GRACE_MS;
    if (g > sc->grace_ms) {
        sc->grace_ms = g;
    }
    if (executor_stop(sc->a->exec, at->id) == 0) {
        sc->a->n_stopping++;
    }
}

/* The steps of agent_stop, each resumed from the callback that ends the
 * previous one: tasks ended (stop_tasks) -> executor closed -> DB closed,
 * timers and connections closed -> done. */
void agent_maybe_finish(struct agent *a)
{
    if (!a->closing || a->n_stopping > 0) {
        return;
    }
    if (a->exec_open) {
        a->exec_open = false;
        /* Without stop_tasks the DB still says the tasks run, so the next
         * start resumes them; the process executor cannot leave them
         * running (they die with the daemon anyway, by PDEATHSIG). */
        executor_close(a->exec, a->stop_tasks ? 1000 : EXECUTOR_DEFAULT_STOP_GRACE_MS,
                       agent_exec_closed_cb, a);
        return;
    }
    if (a->exec != NULL) {
        return;
    }
    if (a->db_open) {
        a->db_open = false;
        agent_net_close(a); /* after the executor: its sandboxes are gone */
        taskdb_close(&a->db);
        uv_timer_t *timers[] = {&a->retry_timer, &a->open_timer, &a->hb_timer, &a->flush_timer,
                                &a->stop_timer, &a->report_timer};
        for (size_t i = 0; i < sizeof timers / sizeof timers[0]; i++) {
            uv_close((uv_handle_t *)timers[i], agent_handle_closed_cb);
        }
        return;
    }
    if (a->open_handles > 0 || a->n_conns_closing > 0 || a->conn != NULL) {
        return;
    }
    void (*done)(void *) = a->done;
    void *done_data = a->done_data;
    a->done = NULL;
    agent_table_foreach(&a->tasks, agent_free_task_cb, a);
    agent_table_free(&a->tasks);
    agent_free(a);
    if (done != NULL) {
        done(done_data);
    }
}

void agent_stop(struct agent *a, bool stop_tasks, void (*done)(void *data), void *data)
{
    if (a->closing) {
        return;
    }
    a->closing = true;
    a->stop_tasks = stop_tasks;
    a->done = done;
    a->done_data = data;
    agent_session_close(a);
    agent_logs_stop(a);
    uv_timer_stop(&a->flush_timer);
    if (stop_tasks) {
        struct agent_stop_ctx sc = {.a = a, .grace_ms = 0};
        agent_table_foreach(&a->tasks, agent_stop_task_cb, &sc);
        if (a->n_stopping > 0) {
            uv_timer_start(&a->stop_timer, agent_stop_timeout_cb, sc.grace_ms + 1000, 0);
            return;
        }
    }
    agent_maybe_finish(a);
}

struct volume_users {
    const char *name;
    char *out;
    size_t size, off;
};

static void agent_volume_user_cb(struct agent_task *at, void *arg)
{
    struct volume_users *u = arg;
    const Swarm__TaskSpec *spec = at->task != NULL ? at->task->spec : NULL;
    const Swarm__ContainerSpec *c = spec != NULL ? spec->container : NULL;
    if (c == NULL || agent_state_terminal(at->st.state) || at->removing) {
        return;
    }
    for (size_t i = 0; i < c->n_mounts; i++) {
        const Swarm__Mount *m = c->mounts[i];
        if (m->type != NULL && strcmp(m->type, "volume") == 0 && m->source != NULL &&
            strcmp(m->source, u->name) == 0 && u->off < u->size) {
            int n = snprintf(u->out + u->off, u->size - u->off, "%s%s", u->off > 0 ? ", " : "",
                             at->id);
            u->off += n > 0 ? (size_t)n : 0;
            return;
        }
    }
}

void agent_volume_users(struct agent *a, const char *name, char *out, size_t size)
{
    struct volume_users u = {name, out, size, 0};
    if (size > 0) {
        out[0] = '\0';
    }
    if (a != NULL) {
        agent_table_foreach(&a->tasks, agent_volume_user_cb, &u);
    }
    if (u.off >= size && size > 0) {
        out[size - 1] = '\0';
    }
}
