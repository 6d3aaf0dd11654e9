/* The dispatcher: the sessions every node holds with the leader.
 *
 * Session (server stream): the node's certificate names it; a node missing
 *   from the store (removed) is refused. On a follower the answer is one
 *   message naming the leader (redirect) and the end of the stream. On the
 *   leader: a session ID, the node object, the managers, the heartbeat
 *   period; the node is marked Ready. Later messages carry changes of the
 *   node or of the manager set.
 * Heartbeat: must name the current session; refreshes it.
 * Assignments (server stream): the node's tasks, first the complete set,
 *   then incremental changes from store events (queued per session and sent
 *   once per loop turn). Both go out in messages of at most MSGCHUNK_BOUND
 *   bytes (more = true on all but the last of a set), as fast as the node
 *   takes them: a message waits while the connection's response budget
 *   (api_call_send_room) has no room for it, and changes queue behind the
 *   set being sent. A send that fails ends the stream: the node opens a new
 *   session and gets the complete set.
 * NetworkMaps (server stream): the maps of the networks the node's own
 *   tasks use, COMPLETE then INCREMENTAL, by netmaps.c (see netmaps.h);
 *   the stream lives and ends with the node's session.
 * UpdateTaskStatus: the request is checked whole first (report_check: count,
 *   IDs, states, timestamps, string sizes; then each task by ID in the
 *   store: it must exist, be this node's, and not go back in state); a bad
 *   one is refused and records nothing. Accepted statuses are queued and
 *   committed in one raft entry per flush (STORE_ACTION_TASK_STATUS:
 *   forward-only, never clobbering the desired state); the call is answered
 *   once its statuses are committed.
 * Managers: the list of managers goes to every session when it opens and
 *   again whenever a manager joins, leaves or changes its address.
 * Removal: a removed node's session ends, and its new sessions are refused,
 *   with PERMISSION_DENIED "node ... is removed from the swarm" (the agent
 *   then stops its tasks and leaves).
 * Failure detection: a session whose last heartbeat is older than
 *   DISPATCHER_MISSED x period is ended and its node marked Down; one whose
 *   connection closed gets a single period to come back. After a
 *   leader change, Ready nodes without a session get the same grace from the
 *   moment this manager became leader before they are marked Down. On
 *   leadership loss every session ends (nodes reconnect to the new leader).
 * Lifecycle and ownership: dispatcher.h. */
#include "dispatcher.h"
#include "pki.h"

#include <assert.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#include "allocator.h"
#include "dispatcher.pb-c.h"
#include "err.h"
#include "id.h"
#include "mslot.h"
#include "pbcopy.h"
#include "log.h"
#include "smetrics.h"
#include "msgchunk.h"
#include "netmaps.h"
#include "specvalid.h"
#include "taskreport.h"
#include "vec.h"

#define DISPATCHER_MISSED 3
#define DISPATCHER_BUCKETS 1024
#define DISPATCHER_FLUSH_MS 50
#define DISPATCHER_REMOVED_FMT "node %s is removed from the swarm"

/* One queued assignment change: a task (new or changed) or a removed ID. */
struct passign {
    Swarm__Task *task; /* owned, or NULL */
    char *remove;      /* owned, or NULL */
};

struct dsession {
    struct dispatcher *d;
    char node_id[64];
    char id[ID_LEN + 1];
    struct api_call *session_call;
    struct api_call *assign_call;
    uint64_t last_heartbeat;
    struct passign *pend; /* changes not sent yet (assign_call only) */
    size_t n_pend, cap_pend;
    struct passign *set; /* a set being sent (owned), from set_sent on */
    size_t n_set, set_sent;
    Swarm__AssignmentsType set_type;
    unsigned char renew_sent[32]; /* SHA-256 of the issuer key last asked for */
    struct dsession *next; /* bucket chain */
};

/* A pending UpdateTaskStatus call, answered after its flush commits. */
struct status_waiter {
    struct api_call *call;
    struct status_waiter *next;
};

struct dispatcher {
    const struct menv *env;
    struct dispatcher_config cfg;
    bool leader;
    bool closing;
    uint64_t leader_since;
    struct dsession *buckets[DISPATCHER_BUCKETS];
    size_t n_sessions;
    uv_timer_t check_timer;
    uv_timer_t flush_timer;
    uv_timer_t assign_timer; /* sends queued assignment changes */
    bool flush_running;
    /* Queued status reports (latest per task wins at flush). */
    Swarm__StoreAction **pending;
    size_t n_pending, cap_pending;
    struct status_waiter *waiters;
    /* Node status changes to write: node ID -> state, queued. */
    struct node_change {
        char node_id[64];
        Swarm__NodeState state;
        Swarm__NodeDescription *desc; /* owned, may be NULL */
        char addr[64];
    } *node_changes;
    size_t n_node_changes, cap_node_changes;
    /* Close after drain: what is still to come back before the free. */
    unsigned open_handles;
    unsigned n_proposals; /* flushes proposed whose callback has not run */
    void (*close_cb)(void *data);
    void *close_data;
    uint64_t period;        /* heartbeat period, from the cluster spec (cached) */
    uint64_t check_due;     /* when check_cb should run next (loop time) */
    bool orphans_checked;   /* nodes without a session marked down this term */
    struct netmaps *nm;     /* the NetworkMaps streams (netmaps.h) */
};

static uint64_t period_ms(struct dispatcher *d);
static void assign_flush_cb(uv_timer_t *t);

/* ---------------------------------------------------------------- sessions */

static unsigned bucket_of(const char *node_id)
{
    unsigned h = 5381;
    for (const char *c = node_id; *c; c++) {
        h = h * 33 + (unsigned char)*c;
    }
    return h % DISPATCHER_BUCKETS;
}

static struct dsession *session_find(struct dispatcher *d, const char *node_id)
{
    for (struct dsession *s = d->buckets[bucket_of(node_id)]; s != NULL; s = s->next) {
        if (strcmp(s->node_id, node_id) == 0) {
            return s;
        }
    }
    return NULL;
}

static void session_unlink(struct dispatcher *d, struct dsession *s)
{
    struct dsession **pp = &d->buckets[bucket_of(s->node_id)];
    while (*pp != NULL && *pp != s) {
        pp = &(*pp)->next;
    }
    if (*pp == s) {
        *pp = s->next;
        d->n_sessions--;
        smetrics_session_closed();
    }
}

static void pend_free(struct passign *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i].task != NULL) {
            swarm__task__free_unpacked(p[i].task, NULL);
        }
        free(p[i].remove);
    }
    free(p);
}

/* Forget the changes not sent yet, and the rest of a set being sent. */
static void pend_clear(struct dsession *s)
{
    pend_free(s->pend, s->n_pend);
    s->pend = NULL;
    s->n_pend = s->cap_pend = 0;
    pend_free(s->set, s->n_set);
    s->set = NULL;
    s->n_set = s->set_sent = 0;
}

/* End a session with `status` (UNAVAILABLE: the node reconnects) and forget
 * it. */
static void session_end_status(struct dispatcher *d, struct dsession *s, enum api_status status,
                               const char *why)
{
    struct api_call *sc = s->session_call, *ac = s->assign_call;
    session_unlink(d, s);
    s->session_call = NULL;
    s->assign_call = NULL;
    pend_clear(s);
    netmaps_end(d->nm, s->node_id, status, why);
    free(s);
    if (sc != NULL) {
        api_call_error(sc, status, "session ended: %s", why);
    }
    if (ac != NULL) {
        api_call_error(ac, status, "session ended: %s", why);
    }
}

static void session_end(struct dispatcher *d, struct dsession *s, const char *why)
{
    session_end_status(d, s, API_UNAVAILABLE, why);
}

/* End the assignments stream (the node then opens a new session and gets
 * the complete set again); the session itself stays until then. */
static void assign_fail(struct dsession *s, const char *why)
{
    struct api_call *ac = s->assign_call;
    s->assign_call = NULL;
    pend_clear(s);
    if (ac != NULL) {
        log_warn("dispatcher", "node %s: assignments stream ended: %s", s->node_id, why);
        api_call_error(ac, API_UNAVAILABLE, "assignments stream ended: %s", why);
    }
}

static void session_cancel_cb(struct api_call *call, void *data)
{
    struct dsession *s = data;
    struct dispatcher *d = s->d;
    uint64_t now = uv_now(d->env->loop), p = period_ms(d);
    /* The node's connection is gone (its process died, or the network
     * dropped the connection): it gets one more period to open a new
     * session before it is marked Down, instead of the three periods a
     * silent node gets. */
    if (now - s->last_heartbeat < (DISPATCHER_MISSED - 1) * p) {
        s->last_heartbeat = now - (DISPATCHER_MISSED - 1) * p;
    }
    s->session_call = NULL;
    api_call_error(call, API_CANCELLED, "cancelled");
    assign_fail(s, "session ended");
    netmaps_end(d->nm, s->node_id, API_UNAVAILABLE, "session ended");
}

static void assign_cancel_cb(struct api_call *call, void *data)
{
    struct dsession *s = data;
    if (s->assign_call == call) {
        s->assign_call = NULL;
        pend_clear(s);
    }
    api_call_error(call, API_CANCELLED, "cancelled");
}

/* --------------------------------------------------------- node changes */

static void flush_cb(uv_timer_t *t);

static void flush_schedule(struct dispatcher *d)
{
    if (!uv_is_active((uv_handle_t *)&d->flush_timer)) {
        uv_timer_start(&d->flush_timer, flush_cb, 0, 0);
    }
}

static void node_change_queue(struct dispatcher *d, const char *node_id, Swarm__NodeState state,
                              const Swarm__NodeDescription *desc, const char *addr)
{
    struct node_change *c = NULL;
    for (size_t i = 0; i < d->n_node_changes; i++) {
        if (strcmp(d->node_changes[i].node_id, node_id) == 0) {
            c = &d->node_changes[i];
            break;
        }
    }
    if (c == NULL) {
        if (vec_grow(d->node_changes, d->cap_node_changes, d->n_node_changes + 1) != 0) {
            log_warn("dispatcher", "node %s: state not recorded: out of memory", node_id);
            return;
        }
        c = &d->node_changes[d->n_node_changes++];
        memset(c, 0, sizeof *c);
        snprintf(c->node_id, sizeof c->node_id, "%s", node_id);
    }
    c->state = state;
    if (desc != NULL) {
        Swarm__NodeDescription *copy = pb_copy(&desc->base);
        if (copy == NULL) {
            /* The state still goes; the stored description stays. */
            log_warn("dispatcher", "node %s: description not recorded: out of memory", node_id);
        } else {
            if (c->desc != NULL) {
                swarm__node_description__free_unpacked(c->desc, NULL);
            }
            c->desc = copy;
        }
    }
    if (addr != NULL) {
        snprintf(c->addr, sizeof c->addr, "%s", addr);
    }
    flush_schedule(d);
}

/* ------------------------------------------------------------------ flush */

struct flush_ctx {
    struct dispatcher *d;
    struct status_waiter *waiters;
};

static void dispatcher_maybe_free(struct dispatcher *d);

static void flush_done_cb(int status, const struct store_result *res, void *data)
{
    struct flush_ctx *f = data;
    struct dispatcher *d = f->d;
    struct status_waiter *w = f->waiters;
    Swarm__UpdateTaskStatusResponse resp = SWARM__UPDATE_TASK_STATUS_RESPONSE__INIT;
    while (w != NULL) {
        struct status_waiter *next = w->next;
        if (status == 0 && res->status == 0) {
            api_call_reply(w->call, &resp.base);
        } else {
            api_call_error(w->call, API_UNAVAILABLE, "status not recorded: %s",
                           status != 0 ? swarm_strerror(status) : res->message);
        }
        free(w);
        w = next;
    }
    free(f);
    d->n_proposals--;
    if (d->closing) {
        dispatcher_maybe_free(d);
        return;
    }
    if (status != 0 || res->status != 0) {
        log_warn("dispatcher", "flush failed: %s",
                 status != 0 ? swarm_strerror(status) : res->message);
    }
    d->flush_running = false;
    if (d->n_pending > 0 || d->n_node_changes > 0) {
        flush_schedule(d);
    }
}

/* Status (and description) of queued node changes, appended to cmd. */
static void flush_nodes(struct dispatcher *d, Swarm__StoreCommand *cmd)
{
    for (size_t i = 0; i < d->n_node_changes; i++) {
        struct node_change *c = &d->node_changes[i];
        Swarm__StoreAction *a = calloc(1, sizeof *a);
        Swarm__Node *node = calloc(1, sizeof *node);
        Swarm__NodeStatus *st = calloc(1, sizeof *st);
        char *id = strdup(c->node_id), *addr = strdup(c->addr);
        if (a == NULL || node == NULL || st == NULL || id == NULL || addr == NULL) {
            log_warn("dispatcher", "node %s: state not recorded: out of memory", c->node_id);
            free(a);
            free(node);
            free(st);
            free(id);
            free(addr);
            continue;
        }
        swarm__store_action__init(a);
        swarm__node__init(node);
        swarm__node_status__init(st);
        node->id = id;
        st->state = c->state;
        st->addr = addr;
        node->status = st;
        node->description = c->desc; /* may be NULL: keep the stored one */
        c->desc = NULL;
        a->kind = SWARM__STORE_ACTION_KIND__STORE_ACTION_NODE_STATUS;
        a->target_case = SWARM__STORE_ACTION__TARGET_NODE;
        a->node = node;
        cmd->actions[cmd->n_actions++] = a;
    }
    d->n_node_changes = 0;
}

static void flush_cb(uv_timer_t *t)
{
    struct dispatcher *d = t->data;
    Swarm__StoreCommand *cmd;
    struct flush_ctx *f;
    int rv;

    if (d->closing || d->flush_running || !d->leader) {
        return;
    }
    if (d->n_pending == 0 && d->n_node_changes == 0) {
        return;
    }
    cmd = calloc(1, sizeof *cmd);
    f = calloc(1, sizeof *f);
    if (cmd != NULL) {
        swarm__store_command__init(cmd);
        cmd->actions = calloc(d->n_pending + d->n_node_changes + 1, sizeof *cmd->actions);
    }
    if (cmd == NULL || f == NULL || cmd->actions == NULL) {
        /* Everything stays queued: try again shortly. */
        log_warn("dispatcher", "flush: out of memory (will retry)");
        if (cmd != NULL) {
            free(cmd->actions);
        }
        free(cmd);
        free(f);
        uv_timer_start(&d->flush_timer, flush_cb, DISPATCHER_FLUSH_MS, 0);
        return;
    }
    for (size_t i = 0; i < d->n_pending; i++) {
        cmd->actions[cmd->n_actions++] = d->pending[i];
    }
    d->n_pending = 0;
    flush_nodes(d, cmd);
    f->d = d;
    f->waiters = d->waiters;
    d->waiters = NULL;
    d->flush_running = true;
    d->n_proposals++;
    rv = menv_propose(d->env, cmd, flush_done_cb, f);
    if (rv != 0) {
        struct store_result res = {.status = rv, .action_index = -1};
        snprintf(res.message, sizeof res.message, "%s", swarm_strerror(rv));
        flush_done_cb(0, &res, f);
    }
    swarm__store_command__free_unpacked(cmd, NULL);
}

/* ------------------------------------------------------------- messages */

static void managers_free(Swarm__ManagerPeer **peers, size_t n);

static Swarm__ManagerPeer **managers_list(struct store *store, size_t *n_out)
{
    Swarm__Node **nodes = NULL;
    Swarm__ManagerPeer **peers;
    size_t n = 0, k = 0;
    *n_out = 0;
    if (store_node_list(store, &nodes, &n) != 0) {
        return NULL;
    }
    peers = calloc(n ? n : 1, sizeof *peers);
    for (size_t i = 0; peers != NULL && i < n; i++) {
        if (nodes[i]->role != SWARM__NODE_ROLE__NODE_ROLE_MANAGER ||
            nodes[i]->manager_status == NULL || nodes[i]->manager_status->raft_id == 0) {
            continue;
        }
        Swarm__ManagerPeer *p = calloc(1, sizeof *p);
        if (p != NULL) {
            swarm__manager_peer__init(p);
            p->node_id = strdup(nodes[i]->id);
            p->raft_id = nodes[i]->manager_status->raft_id;
            p->addr = strdup(nodes[i]->manager_status->addr);
        }
        if (p == NULL || p->node_id == NULL || p->addr == NULL) {
            /* A partial list would tell nodes a manager left: none. */
            if (p != NULL) {
                swarm__manager_peer__free_unpacked(p, NULL);
            }
            managers_free(peers, k);
            store_node_free_list(nodes, n);
            return NULL;
        }
        peers[k++] = p;
    }
    store_node_free_list(nodes, n);
    *n_out = k;
    return peers;
}

static void managers_free(Swarm__ManagerPeer **peers, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        swarm__manager_peer__free_unpacked(peers[i], NULL);
    }
    free(peers);
}

/* A message on the session stream. A send that fails ends the session (the
 * node reconnects and starts over): nothing it was meant to learn is lost
 * silently. Returns 0, or -1 when the session was ended (`s` is freed). */
static int session_msg_send(struct dispatcher *d, struct dsession *s,
                            const Swarm__SessionMessage *msg)
{
    int rv;
    if (s->session_call == NULL) {
        return 0; /* its stream is gone: the session ends with its heartbeats */
    }
    rv = api_call_send(s->session_call, &msg->base);
    if (rv != 0) {
        log_warn("dispatcher", "node %s: session message not sent: %s", s->node_id,
                 swarm_strerror(rv));
        session_end(d, s, rv == SWARM_EINVAL ? "a session message exceeds the size limit"
                                             : "the stream was cancelled");
        return -1;
    }
    return 0;
}

static void session_send(struct dispatcher *d, struct dsession *s, const Swarm__Node *node)
{
    Swarm__SessionMessage msg = SWARM__SESSION_MESSAGE__INIT;
    size_t n = 0;
    Swarm__ManagerPeer **peers = managers_list(d->env->store, &n);
    msg.session_id = s->id;
    msg.node = (Swarm__Node *)node;
    msg.managers = peers;
    msg.n_managers = n;
    msg.heartbeat_period_ms = (int64_t)period_ms(d);
    char *root_pem = NULL;
    size_t root_len = 0;
    X509 *root = d->cfg.root_cert != NULL ? d->cfg.root_cert(d->cfg.data) : NULL;
    if (root != NULL && pki_cert_to_pem(root, &root_pem, &root_len) == 0) {
        msg.root_ca.data = (uint8_t *)root_pem;
        msg.root_ca.len = root_len;
    }
    session_msg_send(d, s, &msg);
    free(root_pem);
    managers_free(peers, n);
}

/* A manager counts for the list when it is a raft member with an address. */
static bool node_is_listed_manager(const Swarm__Node *n)
{
    return n != NULL && n->role == SWARM__NODE_ROLE__NODE_ROLE_MANAGER &&
           n->manager_status != NULL && n->manager_status->raft_id != 0;
}

static bool managers_changed(const Swarm__Node *o, const Swarm__Node *n)
{
    bool was = node_is_listed_manager(o), is = node_is_listed_manager(n);
    if (was != is) {
        return true;
    }
    return was && (o->manager_status->raft_id != n->manager_status->raft_id ||
                   strcmp(o->manager_status->addr, n->manager_status->addr) != 0);
}

/* The same message on every open session, each with its own session id. */
static void sessions_send_all(struct dispatcher *d, Swarm__SessionMessage *msg)
{
    for (unsigned b = 0; b < DISPATCHER_BUCKETS; b++) {
        struct dsession *next;
        for (struct dsession *s = d->buckets[b]; s != NULL; s = next) {
            next = s->next;
            msg->session_id = s->id;
            session_msg_send(d, s, msg);
        }
    }
}

/* The manager list to every session (a message without the node). */
static void managers_broadcast(struct dispatcher *d)
{
    Swarm__SessionMessage msg = SWARM__SESSION_MESSAGE__INIT;
    size_t n = 0;
    Swarm__ManagerPeer **peers = managers_list(d->env->store, &n);
    if (peers == NULL || n == 0) {
        managers_free(peers, n);
        return;
    }
    msg.managers = peers;
    msg.n_managers = n;
    msg.heartbeat_period_ms = (int64_t)period_ms(d);
    sessions_send_all(d, &msg);
    managers_free(peers, n);
}

/* ---------------------------------------------------------- assignments */

/* Room to keep on the connection beyond a message: the session stream's
 * messages and the answers to the node's unary calls share it. */
#define ASSIGN_ROOM_SPARE (1u << 20)
/* How soon a set waiting for room is looked at again. */
#define ASSIGN_RETRY_MS 10

static void assign_flush_cb(uv_timer_t *t);

/* Send what the connection has room for of the set being sent (s->set
 * from s->set_sent on), in messages of at most MSGCHUNK_BOUND bytes; the
 * set is freed once all of it went. Returns 0 (sent, or waiting for room:
 * the assign timer comes back), or -1 when a send failed and the stream was
 * ended (assign_fail). */
static int assign_pump(struct dsession *s)
{
    struct dispatcher *d = s->d;
    const struct passign *items = s->set + s->set_sent;
    size_t n = s->n_set - s->set_sent;
    struct msgchunk_item *sizes = calloc(n ? n : 1, sizeof *sizes);
    size_t *ends = calloc(n ? n : 1, sizeof *ends);
    Swarm__Task **upd = calloc(n ? n : 1, sizeof *upd);
    char **rem = calloc(n ? n : 1, sizeof *rem);
    size_t chunks, start = 0;
    int rv = 0;

    if (sizes == NULL || ends == NULL || upd == NULL || rem == NULL) {
        assign_fail(s, "out of memory");
        rv = -1;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        sizes[i].second = items[i].task == NULL;
        sizes[i].size = items[i].task != NULL
                            ? protobuf_c_message_get_packed_size(&items[i].task->base)
                            : strlen(items[i].remove);
    }
    chunks = msgchunk_plan(sizes, n, MSGCHUNK_BOUND, ends);
    if (chunks == 0) { /* an empty complete set is one empty message */
        ends[0] = 0;
        chunks = 1;
    }
    for (size_t c = 0; c < chunks && rv == 0; c++) {
        Swarm__AssignmentsMessage out = SWARM__ASSIGNMENTS_MESSAGE__INIT;
        size_t bytes = 0;
        out.type = s->set_type;
        out.update = upd;
        out.remove = rem;
        for (size_t i = start; i < ends[c]; i++) {
            bytes += sizes[i].size;
            if (items[i].task != NULL) {
                upd[out.n_update++] = items[i].task;
            } else {
                rem[out.n_remove++] = items[i].remove;
            }
        }
        if (s->assign_call != NULL &&
            api_call_send_room(s->assign_call) < bytes + ASSIGN_ROOM_SPARE &&
            api_call_pending_bytes(s->assign_call) > 0) {
            /* The node has not taken what it was sent yet: later. */
            s->set_sent += start;
            uv_timer_start(&d->assign_timer, assign_flush_cb, ASSIGN_RETRY_MS, 0);
            goto out;
        }
        out.more = c + 1 < chunks;
        start = ends[c];
        int e = s->assign_call != NULL ? api_call_send(s->assign_call, &out.base) : SWARM_ECANCELED;
        if (e != 0) {
            assign_fail(s, e == SWARM_EINVAL ? "an assignment exceeds the message size limit"
                                             : "the stream was cancelled");
            rv = -1;
        }
    }
    if (rv == 0) {
        pend_free(s->set, s->n_set);
        s->set = NULL;
        s->n_set = s->set_sent = 0;
        if (s->n_pend > 0) { /* changes that queued behind the set */
            uv_timer_start(&d->assign_timer, assign_flush_cb, 0, 0);
        }
    }
out:
    free(sizes);
    free(ends);
    free(upd);
    free(rem);
    return rv;
}

/* Send items[0..n) (updates and removals, in order, owned: freed once sent)
 * as one set of `type`, as the connection has room for it (assign_pump). */
static int assign_send(struct dsession *s, Swarm__AssignmentsType type, struct passign *items,
                       size_t n)
{
    assert(s->set == NULL);
    s->set = items;
    s->n_set = n;
    s->set_sent = 0;
    s->set_type = type;
    return assign_pump(s);
}

/* Queue one change for the session's next incremental batch. */
static void assign_queue(struct dispatcher *d, struct dsession *s, const Swarm__Task *task,
                         const char *remove)
{
    struct passign p = {NULL, NULL};
    if (vec_grow(s->pend, s->cap_pend, s->n_pend + 1) != 0) {
        assign_fail(s, "out of memory");
        return;
    }
    p.task = task != NULL ? pb_copy(&task->base) : NULL;
    p.remove = remove != NULL ? strdup(remove) : NULL;
    if (p.task == NULL && p.remove == NULL) {
        assign_fail(s, "out of memory");
        return;
    }
    s->pend[s->n_pend++] = p;
    if (!uv_is_active((uv_handle_t *)&d->assign_timer)) {
        uv_timer_start(&d->assign_timer, assign_flush_cb, 0, 0);
    }
}

static void assign_flush_cb(uv_timer_t *t)
{
    struct dispatcher *d = t->data;
    if (d->closing || !d->leader) {
        return;
    }
    for (unsigned b = 0; b < DISPATCHER_BUCKETS; b++) {
        struct dsession *next;
        for (struct dsession *s = d->buckets[b]; s != NULL; s = next) {
            next = s->next;
            if (s->assign_call == NULL) {
                continue;
            }
            if (s->set != NULL) {
                assign_pump(s); /* changes wait behind it */
                continue;
            }
            if (s->n_pend == 0) {
                continue;
            }
            struct passign *p = s->pend;
            size_t n = s->n_pend;
            s->pend = NULL;
            s->n_pend = s->cap_pend = 0;
            assign_send(s, SWARM__ASSIGNMENTS_TYPE__ASSIGNMENTS_INCREMENTAL, p, n);
        }
    }
}

/* After a root rotation: every node trusts the new root from now on. */
static void broadcast_root(struct dispatcher *d, const ProtobufCBinaryData *pem)
{
    Swarm__SessionMessage msg = SWARM__SESSION_MESSAGE__INIT;
    msg.root_ca = *pem;
    sessions_send_all(d, &msg);
}

int dispatcher_request_renewal(struct dispatcher *d, const char *node_id,
                               const uint8_t *issuer_key, size_t len)
{
    Swarm__SessionMessage msg = SWARM__SESSION_MESSAGE__INIT;
    unsigned char digest[32];
    struct dsession *s;
    if (d == NULL || !d->leader || d->closing || (s = session_find(d, node_id)) == NULL ||
        s->session_call == NULL) {
        return SWARM_ENOTFOUND;
    }
    SHA256(issuer_key, len, digest);
    if (memcmp(digest, s->renew_sent, sizeof digest) == 0) {
        return 0; /* asked on this session already */
    }
    memcpy(s->renew_sent, digest, sizeof digest);
    msg.session_id = s->id;
    msg.renew_issuer_key.data = (uint8_t *)issuer_key;
    msg.renew_issuer_key.len = len;
    return session_msg_send(d, s, &msg) == 0 ? 1 : SWARM_ENOTFOUND;
}

/* Tasks a node must know about: those it should run, those it still runs
 * although they should stop, and those that ended on their own (retired by
 * the orchestrator with desired shutdown): the node keeps their directory
 * and logs until the task leaves the store's history, as Docker keeps an
 * exited container until its task is reaped. */
static bool task_for_node(const Swarm__Task *t)
{
    if (t->node_id == NULL || t->node_id[0] == '\0') {
        return false;
    }
    if (t->desired_state <= SWARM__TASK_STATE__TASK_STATE_RUNNING) {
        if (alloc_task_waits(t)) {
            return false; /* never started without its addresses (allocator.h) */
        }
        return t->desired_state >= SWARM__TASK_STATE__TASK_STATE_ASSIGNED ||
               (t->status != NULL && t->status->state >= SWARM__TASK_STATE__TASK_STATE_ASSIGNED);
    }
    return t->ended_on_its_own ||
           (t->status != NULL && t->status->state < SWARM__TASK_STATE__TASK_STATE_COMPLETE);
}

/* ------------------------------------------------------------- handlers */

static struct dispatcher *require_leader_dispatcher(struct api_call *call, void *data)
{
    struct dispatcher *d = *(struct dispatcher *const *)data;
    if (d == NULL || d->closing) {
        api_call_error(call, API_UNAVAILABLE, "%s", MANAGER_NOT_MANAGER_MSG);
        return NULL;
    }
    return d;
}

static struct dsession *require_session(struct dispatcher *d, struct api_call *call,
                                        const char *session_id)
{
    const struct api_peer *peer = api_call_peer(call);
    struct dsession *s = d->leader ? session_find(d, peer->node_id) : NULL;
    if (s == NULL || strcmp(s->id, session_id) != 0) {
        api_call_error(call, API_NOT_FOUND, "session invalid");
        return NULL;
    }
    return s;
}

static void session_cb(struct api_call *call, const ProtobufCMessage *msg, void *data)
{
    const Swarm__SessionRequest *req = (const Swarm__SessionRequest *)msg;
    const struct api_peer *peer = api_call_peer(call);
    struct dispatcher *d = require_leader_dispatcher(call, data);
    struct dsession *s;
    Swarm__Node *node = NULL;
    char ip[64], errmsg[SWARM_ERRMSG_SIZE];

    if (d == NULL) {
        return;
    }
    if (req->description != NULL && spec_validate_node_description(req->description, errmsg) != 0) {
        api_call_error(call, API_INVALID_ARGUMENT, "%s", errmsg);
        return;
    }
    if (!d->leader) {
        raft_id leader = 0;
        const char *addr = NULL;
        menv_leader(d->env, &leader, &addr);
        if (leader == 0 || addr == NULL) {
            api_call_error(call, API_UNAVAILABLE, "%s", MANAGER_NO_LEADER_MSG);
            return;
        }
        Swarm__SessionMessage redirect = SWARM__SESSION_MESSAGE__INIT;
        redirect.redirect_addr = (char *)addr;
        api_call_send(call, &redirect.base);
        api_call_finish(call);
        return;
    }
    if (store_node_get(d->env->store, peer->node_id, &node) != 0) {
        api_call_error(call, API_PERMISSION_DENIED, DISPATCHER_REMOVED_FMT, peer->node_id);
        return;
    }
    s = session_find(d, peer->node_id);
    if (s != NULL) {
        session_end(d, s, "replaced by a new session");
    }
    s = calloc(1, sizeof *s);
    if (s == NULL || id_generate(s->id) != 0) {
        free(s);
        swarm__node__free_unpacked(node, NULL);
        api_call_error(call, API_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    s->d = d;
    snprintf(s->node_id, sizeof s->node_id, "%s", peer->node_id);
    s->session_call = call;
    s->last_heartbeat = uv_now(d->env->loop);
    s->next = d->buckets[bucket_of(s->node_id)];
    d->buckets[bucket_of(s->node_id)] = s;
    d->n_sessions++;
    smetrics_session_opened();
    api_call_on_cancel(call, session_cancel_cb, s);
    /* The address the node advertises, else the one its connection came
     * from (a node behind NAT may advertise nothing useful). */
    snprintf(ip, sizeof ip, "%s",
             node->advertise_addr != NULL && node->advertise_addr[0] ? node->advertise_addr
                                                                      : peer->addr);
    char *colon = strrchr(ip, ':');
    if (colon != NULL) {
        *colon = '\0';
    }
    node_change_queue(d, peer->node_id, SWARM__NODE_STATE__NODE_STATE_READY, req->description,
                      ip);
    session_send(d, s, node);
    swarm__node__free_unpacked(node, NULL);
}

static void heartbeat_cb(struct api_call *call, const ProtobufCMessage *msg, void *data)
{
    const Swarm__HeartbeatRequest *req = (const Swarm__HeartbeatRequest *)msg;
    Swarm__HeartbeatResponse resp = SWARM__HEARTBEAT_RESPONSE__INIT;
    struct dispatcher *d = require_leader_dispatcher(call, data);
    struct dsession *s;
    if (d == NULL || (s = require_session(d, call, req->session_id)) == NULL) {
        return;
    }
    s->last_heartbeat = uv_now(d->env->loop);
    smetrics_heartbeat();
    resp.period_ms = (int64_t)period_ms(d);
    api_call_reply(call, &resp.base);
}

static void assignments_cb(struct api_call *call, const ProtobufCMessage *msg, void *data)
{
    const Swarm__AssignmentsRequest *req = (const Swarm__AssignmentsRequest *)msg;
    struct dispatcher *d = require_leader_dispatcher(call, data);
    struct dsession *s;
    Swarm__Task **tasks = NULL;
    struct passign *sel;
    size_t n = 0, k = 0;

    if (d == NULL || (s = require_session(d, call, req->session_id)) == NULL) {
        return;
    }
    if (s->assign_call != NULL) {
        struct api_call *old = s->assign_call;
        s->assign_call = NULL;
        api_call_error(old, API_CANCELLED, "replaced by a new assignments stream");
    }
    pend_clear(s); /* the complete set below supersedes them */
    if (store_task_list_by_node(d->env->store, s->node_id, &tasks, &n) != 0) {
        api_call_error(call, API_INTERNAL, "reading tasks failed");
        return;
    }
    sel = calloc(n ? n : 1, sizeof *sel);
    if (sel == NULL) {
        store_task_free_list(tasks, n);
        api_call_error(call, API_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) { /* the set owns the tasks it sends */
        if (task_for_node(tasks[i])) {
            sel[k++].task = tasks[i];
        } else {
            swarm__task__free_unpacked(tasks[i], NULL);
        }
    }
    free(tasks);
    s->assign_call = call;
    api_call_on_cancel(call, assign_cancel_cb, s);
    assign_send(s, SWARM__ASSIGNMENTS_TYPE__ASSIGNMENTS_COMPLETE, sel, k);
}

static void network_maps_cb(struct api_call *call, const ProtobufCMessage *msg, void *data)
{
    const Swarm__NetworkMapsRequest *req = (const Swarm__NetworkMapsRequest *)msg;
    struct dispatcher *d = require_leader_dispatcher(call, data);
    struct dsession *s;
    if (d == NULL || (s = require_session(d, call, req->session_id)) == NULL) {
        return;
    }
    netmaps_open(d->nm, s->node_id, call);
}

static enum api_status report_status(enum taskreport_result r)
{
    switch (r) {
    case TASKREPORT_OK:
        return API_OK;
    case TASKREPORT_NOT_FOUND:
        return API_NOT_FOUND;
    case TASKREPORT_FOREIGN:
        return API_PERMISSION_DENIED;
    case TASKREPORT_REGRESSION:
        return API_FAILED_PRECONDITION;
    case TASKREPORT_INVALID:
    default:
        return API_INVALID_ARGUMENT;
    }
}

/* Check every update against the store (one lookup by ID each: the count
 * is bounded by taskreport_check). */
static enum taskreport_result report_check_store(struct dispatcher *d, const char *node_id,
                                                 const Swarm__UpdateTaskStatusRequest *req,
                                                 char *errmsg)
{
    for (size_t i = 0; i < req->n_updates; i++) {
        const Swarm__TaskStatusUpdate *u = req->updates[i];
        Swarm__Task *cur = NULL;
        int rv = store_task_get(d->env->store, u->task_id, &cur);
        enum taskreport_result r;
        if (rv != 0 && rv != SWARM_ENOTFOUND) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "task %s: reading it failed: %s", u->task_id,
                          swarm_strerror(rv));
            return TASKREPORT_NOT_FOUND;
        }
        r = taskreport_check_task(rv == 0 ? cur : NULL, node_id, u, errmsg);
        if (cur != NULL) {
            swarm__task__free_unpacked(cur, NULL);
        }
        if (r != TASKREPORT_OK) {
            return r;
        }
    }
    return TASKREPORT_OK;
}

static int pending_reserve(struct dispatcher *d, size_t more)
{
    return vec_grow(d->pending, d->cap_pending, d->n_pending + more);
}

/* One accepted update as a STORE_ACTION_TASK_STATUS: only the task ID and
 * status travel, the store keeps the rest. NULL when out of memory. */
static Swarm__StoreAction *status_action(const Swarm__TaskStatusUpdate *u)
{
    Swarm__StoreAction *a = calloc(1, sizeof *a);
    Swarm__Task *t = calloc(1, sizeof *t);
    if (a == NULL || t == NULL) {
        free(a);
        free(t);
        return NULL;
    }
    swarm__store_action__init(a);
    swarm__task__init(t);
    a->kind = SWARM__STORE_ACTION_KIND__STORE_ACTION_TASK_STATUS;
    a->target_case = SWARM__STORE_ACTION__TARGET_TASK;
    a->task = t;
    t->id = strdup(u->task_id);
    t->status = pb_copy(&u->status->base);
    if (t->id == NULL || t->status == NULL) {
        swarm__store_action__free_unpacked(a, NULL);
        return NULL;
    }
    return a;
}

static void update_task_status_cb(struct api_call *call, const ProtobufCMessage *msg, void *data)
{
    const Swarm__UpdateTaskStatusRequest *req = (const Swarm__UpdateTaskStatusRequest *)msg;
    struct dispatcher *d = require_leader_dispatcher(call, data);
    char errmsg[SWARM_ERRMSG_SIZE];
    enum taskreport_result r;
    struct status_waiter *w;
    struct dsession *s;

    if (d == NULL || (s = require_session(d, call, req->session_id)) == NULL) {
        return;
    }
    /* Nothing is recorded unless every update passes. */
    r = taskreport_check(req, menv_now(d->env), errmsg);
    if (r == TASKREPORT_OK) {
        r = report_check_store(d, s->node_id, req, errmsg);
    }
    if (r != TASKREPORT_OK) {
        log_warn("dispatcher", "node %s: status report refused: %s", s->node_id, errmsg);
        api_call_error(call, report_status(r), "%s", errmsg);
        return;
    }
    w = calloc(1, sizeof *w);
    if (w == NULL || pending_reserve(d, req->n_updates) != 0) {
        free(w);
        api_call_error(call, API_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    /* All or nothing: the actions go after the queued ones, and are taken
     * back if one of them cannot be made. */
    size_t first = d->n_pending;
    for (size_t i = 0; i < req->n_updates; i++) {
        Swarm__StoreAction *a = status_action(req->updates[i]);
        if (a == NULL) {
            while (d->n_pending > first) {
                swarm__store_action__free_unpacked(d->pending[--d->n_pending], NULL);
            }
            free(w);
            api_call_error(call, API_RESOURCE_EXHAUSTED, "out of memory");
            return;
        }
        d->pending[d->n_pending++] = a;
    }
    w->call = call;
    w->next = d->waiters;
    d->waiters = w;
    flush_schedule(d);
}

/* ---------------------------------------------------------- store events */

static void notify_task(struct dispatcher *d, const Swarm__Task *old_t, const Swarm__Task *new_t)
{
    const Swarm__Task *t = new_t != NULL ? new_t : old_t;
    struct dsession *s = session_find(d, t->node_id);
    bool was = old_t != NULL && task_for_node(old_t);
    bool is = new_t != NULL && task_for_node(new_t);

    /* A task moved to another node is a removal for the old one. */
    if (old_t != NULL && new_t != NULL && strcmp(old_t->node_id, new_t->node_id) != 0) {
        notify_task(d, old_t, NULL);
        notify_task(d, NULL, new_t);
        return;
    }
    if (s == NULL || s->assign_call == NULL || (!was && !is)) {
        return;
    }
    assign_queue(d, s, is ? new_t : NULL, is ? NULL : t->id);
}

void dispatcher_on_event(struct dispatcher *d, const struct store_event *ev)
{
    if (d == NULL || !d->leader || d->closing) {
        return;
    }
    netmaps_on_event(d->nm, ev);
    if (ev->kind == STORE_KIND_TASK) {
        notify_task(d, (const Swarm__Task *)ev->old_obj, (const Swarm__Task *)ev->new_obj);
        return;
    }
    if (ev->kind == STORE_KIND_CLUSTER) {
        const Swarm__Cluster *o = (const Swarm__Cluster *)ev->old_obj;
        const Swarm__Cluster *n = (const Swarm__Cluster *)ev->new_obj;
        d->period = 0; /* re-read on next use */
        if (o != NULL && n != NULL && o->root_ca != NULL && n->root_ca != NULL &&
            (o->root_ca->ca_cert_pem.len != n->root_ca->ca_cert_pem.len ||
             memcmp(o->root_ca->ca_cert_pem.data, n->root_ca->ca_cert_pem.data,
                    n->root_ca->ca_cert_pem.len) != 0)) {
            broadcast_root(d, &n->root_ca->ca_cert_pem);
        }
        return;
    }
    if (ev->kind == STORE_KIND_NODE &&
        managers_changed((const Swarm__Node *)ev->old_obj, (const Swarm__Node *)ev->new_obj)) {
        managers_broadcast(d);
    }
    if (ev->kind == STORE_KIND_NODE && ev->new_obj != NULL) {
        const Swarm__Node *n = (const Swarm__Node *)ev->new_obj;
        const Swarm__Node *o = (const Swarm__Node *)ev->old_obj;
        struct dsession *s = session_find(d, n->id);
        /* Tell the node when its role or availability changed. */
        if (s != NULL && o != NULL && o->spec != NULL && n->spec != NULL &&
            (o->spec->desired_role != n->spec->desired_role || o->role != n->role ||
             o->spec->availability != n->spec->availability)) {
            session_send(d, s, n);
        }
    }
    if (ev->kind == STORE_KIND_NODE && ev->new_obj == NULL && ev->old_obj != NULL) {
        const Swarm__Node *o = (const Swarm__Node *)ev->old_obj;
        struct dsession *s = session_find(d, o->id);
        if (s != NULL) {
            char why[128];
            snprintf(why, sizeof why, DISPATCHER_REMOVED_FMT, o->id);
            session_end_status(d, s, API_PERMISSION_DENIED, why);
        }
    }
}

/* ------------------------------------------------------------- liveness */

/* The heartbeat period is read on every heartbeat: cache it, and refresh it
 * when the cluster object changes. */
static void period_refresh(struct dispatcher *d)
{
    Swarm__Cluster *c = NULL;
    uint64_t p = 1000;
    if (store_cluster_get_default(d->env->store, &c) == 0) {
        if (c->spec && c->spec->dispatcher && c->spec->dispatcher->heartbeat_period_ms > 0) {
            p = (uint64_t)c->spec->dispatcher->heartbeat_period_ms;
        }
        swarm__cluster__free_unpacked(c, NULL);
    }
    d->period = p;
}

static uint64_t period_ms(struct dispatcher *d)
{
    if (d->period == 0) {
        period_refresh(d);
    }
    return d->period;
}

/* Timers before reads: when the loop itself was late (a long callback: a
 * big store transaction, a large orchestrator pass), the heartbeats that
 * came meanwhile still wait unread on the sockets, and libuv runs this
 * timer before it reads them. The time the loop did not look is not the
 * nodes' fault: every deadline moves by it (a node that is really gone is
 * found that much later). Jitter of up to one check interval is ignored. */
static void check_forgive_stall(struct dispatcher *d, uint64_t now)
{
    uint64_t interval = uv_timer_get_repeat(&d->check_timer);
    uint64_t late = now > d->check_due ? now - d->check_due : 0;
    d->check_due = now + interval;
    if (late <= interval) {
        return;
    }
    log_info("dispatcher", "the loop was %llu ms late: heartbeat deadlines moved by as much",
             (unsigned long long)late);
    for (unsigned b = 0; b < DISPATCHER_BUCKETS; b++) {
        for (struct dsession *s = d->buckets[b]; s != NULL; s = s->next) {
            s->last_heartbeat = now - s->last_heartbeat > late ? s->last_heartbeat + late : now;
        }
    }
    d->leader_since = now - d->leader_since > late ? d->leader_since + late : now;
}

static void check_cb(uv_timer_t *t)
{
    struct dispatcher *d = t->data;
    uint64_t now = uv_now(d->env->loop);
    uint64_t limit = DISPATCHER_MISSED * period_ms(d);
    Swarm__Node **nodes = NULL;
    size_t n = 0;

    if (d->closing || !d->leader) {
        return;
    }
    check_forgive_stall(d, now);
    for (unsigned b = 0; b < DISPATCHER_BUCKETS; b++) {
        struct dsession *s = d->buckets[b], *next;
        for (; s != NULL; s = next) {
            next = s->next;
            if (now - s->last_heartbeat > limit) {
                char node_id[64];
                snprintf(node_id, sizeof node_id, "%s", s->node_id);
                log_info("dispatcher", "node %s missed its heartbeats: down", node_id);
                session_end(d, s, "heartbeat timeout");
                node_change_queue(d, node_id, SWARM__NODE_STATE__NODE_STATE_DOWN, NULL, NULL);
            }
        }
    }
    /* Nodes that never reconnected after this manager became leader: once
     * the grace is over (later, nodes become ready only through sessions). */
    if (d->orphans_checked || now - d->leader_since <= limit ||
        store_node_list(d->env->store, &nodes, &n) != 0) {
        return;
    }
    d->orphans_checked = true;
    for (size_t i = 0; i < n; i++) {
        if (nodes[i]->status != NULL &&
            nodes[i]->status->state == SWARM__NODE_STATE__NODE_STATE_READY &&
            session_find(d, nodes[i]->id) == NULL) {
            node_change_queue(d, nodes[i]->id, SWARM__NODE_STATE__NODE_STATE_DOWN, NULL, NULL);
        }
    }
    store_node_free_list(nodes, n);
}

/* ------------------------------------------------------------ lifecycle */

static void end_all_sessions(struct dispatcher *d, const char *why)
{
    for (unsigned b = 0; b < DISPATCHER_BUCKETS; b++) {
        while (d->buckets[b] != NULL) {
            session_end(d, d->buckets[b], why);
        }
    }
}

static void drop_pending(struct dispatcher *d, const char *why)
{
    struct status_waiter *w = d->waiters;
    d->waiters = NULL;
    while (w != NULL) {
        struct status_waiter *next = w->next;
        api_call_error(w->call, API_UNAVAILABLE, "%s", why);
        free(w);
        w = next;
    }
    for (size_t i = 0; i < d->n_pending; i++) {
        swarm__store_action__free_unpacked(d->pending[i], NULL);
    }
    d->n_pending = 0;
    for (size_t i = 0; i < d->n_node_changes; i++) {
        if (d->node_changes[i].desc != NULL) {
            swarm__node_description__free_unpacked(d->node_changes[i].desc, NULL);
        }
    }
    d->n_node_changes = 0;
}

struct dispatcher *dispatcher_new(const struct menv *env, const struct dispatcher_config *cfg)
{
    struct dispatcher *d = calloc(1, sizeof *d);
    if (d == NULL) {
        return NULL;
    }
    d->env = env;
    d->cfg = *cfg;
    if ((d->nm = netmaps_new(env->loop, env->store)) == NULL) {
        free(d);
        return NULL;
    }
    uv_timer_init(env->loop, &d->check_timer);
    d->check_timer.data = d;
    uv_timer_init(env->loop, &d->flush_timer);
    d->flush_timer.data = d;
    uv_timer_init(env->loop, &d->assign_timer);
    d->assign_timer.data = d;
    return d;
}

void dispatcher_set_leader(struct dispatcher *d, bool leader)
{
    if (d == NULL || d->closing || d->leader == leader) {
        return;
    }
    d->leader = leader;
    if (leader) {
        uint64_t p;
        period_refresh(d);
        p = period_ms(d);
        d->orphans_checked = false;
        d->leader_since = uv_now(d->env->loop);
        d->check_due = d->leader_since + p / 4;
        uv_timer_start(&d->check_timer, check_cb, p / 4, p / 4);
        return;
    }
    uv_timer_stop(&d->check_timer);
    end_all_sessions(d, "this manager is no longer the leader");
    netmaps_end_all(d->nm, "this manager is no longer the leader");
    drop_pending(d, "this manager is no longer the leader");
}

/* Free once nothing the dispatcher started can come back to it. */
static void dispatcher_maybe_free(struct dispatcher *d)
{
    void (*cb)(void *) = d->close_cb;
    void *data = d->close_data;
    if (d->open_handles > 0 || d->n_proposals > 0) {
        return;
    }
    free(d->pending);
    free(d->node_changes);
    free(d);
    if (cb != NULL) {
        cb(data);
    }
}

static void dispatcher_handle_closed_cb(uv_handle_t *h)
{
    struct dispatcher *d = h->data;
    d->open_handles--;
    dispatcher_maybe_free(d);
}

static void dispatcher_netmaps_closed_cb(void *data)
{
    struct dispatcher *d = data;
    d->open_handles--;
    dispatcher_maybe_free(d);
}

void dispatcher_close(struct dispatcher *d, void (*cb)(void *data), void *data)
{
    if (d == NULL) {
        if (cb != NULL) {
            cb(data);
        }
        return;
    }
    d->closing = true;
    d->close_cb = cb;
    d->close_data = data;
    end_all_sessions(d, "manager shutting down");
    drop_pending(d, "manager shutting down");
    d->open_handles = 4;
    uv_close((uv_handle_t *)&d->check_timer, dispatcher_handle_closed_cb);
    uv_close((uv_handle_t *)&d->flush_timer, dispatcher_handle_closed_cb);
    uv_close((uv_handle_t *)&d->assign_timer, dispatcher_handle_closed_cb);
    netmaps_close(d->nm, dispatcher_netmaps_closed_cb, d);
    d->nm = NULL;
}

int dispatcher_send_log_subscription(struct dispatcher *d, const char *node_id,
                                     const Swarm__LogSubscription *sub)
{
    Swarm__SessionMessage msg = SWARM__SESSION_MESSAGE__INIT;
    Swarm__LogSubscription *one[1] = {(Swarm__LogSubscription *)sub};
    struct dsession *s;
    if (d == NULL || !d->leader || d->closing || (s = session_find(d, node_id)) == NULL ||
        s->session_call == NULL) {
        return SWARM_ENOTFOUND;
    }
    msg.session_id = s->id;
    msg.log_subscriptions = one;
    msg.n_log_subscriptions = 1;
    return session_msg_send(d, s, &msg) == 0 ? 0 : SWARM_ENOTFOUND;
}

void dispatcher_register(struct api_server *api, struct dispatcher *const *current)
{
    const unsigned roles = API_ROLE_WORKER | API_ROLE_MANAGER;
    void *data = (void *)current;
    api_server_register(api, &swarm__dispatcher__descriptor, "Session", roles, session_cb, data);
    api_server_register(api, &swarm__dispatcher__descriptor, "Heartbeat", roles, heartbeat_cb,
                        data);
    api_server_register(api, &swarm__dispatcher__descriptor, "Assignments", roles,
                        assignments_cb, data);
    api_server_register(api, &swarm__dispatcher__descriptor, "UpdateTaskStatus", roles,
                        update_task_status_cb, data);
    api_server_register(api, &swarm__dispatcher__descriptor, "NetworkMaps", roles,
                        network_maps_cb, data);
}
