/* The log broker (leader): `swarmctl service logs`.
 *
 * SubscribeLogs (server stream, LOCAL|MANAGER): on a follower the call is
 *   relayed to the leader (logbroker_config.forward_stream). On the leader: resolve
 *   the selector (a service: its tasks that have a node; a task: its node),
 *   make a subscription with an ID, and send a LogSubscription to the
 *   session of every node involved. With follow, tasks of a selected service
 *   placed later on another node get that node subscribed too (store
 *   events).
 * PublishLogs (unary, WORKER|MANAGER): a node sends what its tasks wrote;
 *   the messages are relayed to the subscriber's stream. `close` says that
 *   the node has nothing more. The first publish (possibly empty) is the
 *   node's acknowledgement.
 * End of a subscription:
 *   - without follow: every node closed -> finish OK;
 *   - a node with no session, or silent for LOGBROKER_NODE_TIMEOUT_MS (never
 *     acknowledged, or stopped publishing before its close) -> one message
 *     with `error` "error from node HOST: ..." and the node counts as closed;
 *   - the subscriber went away -> the nodes are told (close=true);
 *   - this manager lost the leadership or stopped -> UNAVAILABLE (the nodes
 *     find out from their next publish: NOT_FOUND).
 * The subscriptions live in their broker; closing it ends them all
 * (lifecycle and ownership: logbroker.h). */
#include "logbroker.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "id.h"
#include "log.h"
#include "logs.pb-c.h"
#include "pbcopy.h"
#include "vec.h"

#define LOGBROKER_NODE_TIMEOUT_MS 5000
#define LOGBROKER_CHECK_MS 250
/* A subscriber that reads slower than nodes publish: publishers wait. */
#define LOGBROKER_MAX_PENDING (8u * 1024 * 1024)
#define LOGBROKER_LEADER_CHANGED "the leader changed while streaming logs"

struct logbroker_node {
    char node_id[64];
    bool acked;
    bool closed;
    uint64_t last_seen; /* uv_now of the subscription or the last publish */
};

struct logbroker_sub {
    struct logbroker *lb;
    struct api_call *call; /* NULL once finished */
    char id[ID_LEN + 1];
    Swarm__LogSubscription *sub; /* what the nodes get (owned) */
    bool follow;
    struct logbroker_node *nodes;
    size_t n_nodes, cap_nodes;
    uv_timer_t timer;
    bool closing;
    struct logbroker_sub *next;
};

struct logbroker {
    const struct menv *env;
    struct logbroker_config cfg;
    struct logbroker_sub *subs;
    /* Close after drain: subscriptions not yet freed (their timer closing). */
    unsigned n_subs;
    bool closing;
    void (*close_cb)(void *data);
    void *close_data;
};

static void logbroker_maybe_free(struct logbroker *lb);

/* ------------------------------------------------------------ lifecycle */

static void logbroker_sub_closed_cb(uv_handle_t *h)
{
    struct logbroker_sub *s = h->data;
    struct logbroker *lb = s->lb;
    swarm__log_subscription__free_unpacked(s->sub, NULL);
    free(s->nodes);
    free(s);
    lb->n_subs--;
    logbroker_maybe_free(lb);
}

static void logbroker_unlink(struct logbroker_sub *s)
{
    struct logbroker_sub **pp = &s->lb->subs;
    while (*pp != NULL && *pp != s) {
        pp = &(*pp)->next;
    }
    if (*pp == s) {
        *pp = s->next;
    }
}

/* Finish the subscriber's call (status OK when message is NULL), tell the
 * nodes still publishing to stop (not when the broker closes: the nodes
 * find out from their next publish), and free. */
static void logbroker_sub_end(struct logbroker_sub *s, enum api_status status, const char *message)
{
    struct api_call *call = s->call;
    if (s->closing) {
        return;
    }
    s->closing = true;
    s->call = NULL;
    logbroker_unlink(s);
    if (!s->lb->closing) {
        s->sub->close = true;
        for (size_t i = 0; i < s->n_nodes; i++) {
            if (!s->nodes[i].closed) {
                dispatcher_send_log_subscription(s->lb->cfg.dispatcher, s->nodes[i].node_id,
                                                 s->sub);
            }
        }
    }
    if (call != NULL) {
        if (status == API_OK) {
            api_call_finish(call);
        } else {
            api_call_error(call, status, "%s", message != NULL ? message : "");
        }
    }
    uv_close((uv_handle_t *)&s->timer, logbroker_sub_closed_cb);
}

static bool logbroker_all_closed(const struct logbroker_sub *s)
{
    for (size_t i = 0; i < s->n_nodes; i++) {
        if (!s->nodes[i].closed) {
            return false;
        }
    }
    return true;
}

static void logbroker_maybe_done(struct logbroker_sub *s)
{
    if (!s->follow && !s->closing && logbroker_all_closed(s)) {
        logbroker_sub_end(s, API_OK, NULL);
    }
}

/* ------------------------------------------------------------- messages */

static void logbroker_send_error(struct logbroker_sub *s, const char *node_id, const char *why)
{
    Swarm__SubscribeLogsMessage msg = SWARM__SUBSCRIBE_LOGS_MESSAGE__INIT;
    Swarm__Node *node = NULL;
    char buf[512];
    const char *name = node_id;
    if (store_node_get(s->lb->env->store, node_id, &node) == 0 && node->description != NULL &&
        node->description->hostname != NULL && node->description->hostname[0] != '\0') {
        name = node->description->hostname;
    }
    snprintf(buf, sizeof buf, "error from node %s: %s", name, why);
    if (node != NULL) {
        swarm__node__free_unpacked(node, NULL);
    }
    msg.error = buf;
    if (s->call != NULL) {
        api_call_send(s->call, &msg.base);
    }
}

static struct logbroker_node *logbroker_node_find(struct logbroker_sub *s, const char *node_id)
{
    for (size_t i = 0; i < s->n_nodes; i++) {
        if (strcmp(s->nodes[i].node_id, node_id) == 0) {
            return &s->nodes[i];
        }
    }
    return NULL;
}

/* Subscribe `node_id` (once). A node without a session is reported. */
static void logbroker_node_add(struct logbroker_sub *s, const char *node_id)
{
    struct logbroker_node *n;
    if (node_id == NULL || node_id[0] == '\0' || logbroker_node_find(s, node_id) != NULL) {
        return;
    }
    if (vec_grow(s->nodes, s->cap_nodes, s->n_nodes + 1) != 0) {
        logbroker_send_error(s, node_id, "out of memory subscribing the node");
        return;
    }
    n = &s->nodes[s->n_nodes++];
    memset(n, 0, sizeof *n);
    snprintf(n->node_id, sizeof n->node_id, "%s", node_id);
    n->last_seen = uv_now(s->lb->env->loop);
    if (dispatcher_send_log_subscription(s->lb->cfg.dispatcher, node_id, s->sub) != 0) {
        n->closed = true;
        logbroker_send_error(s, node_id, "node is not connected (it may be down)");
    }
}

static void logbroker_check_cb(uv_timer_t *t)
{
    struct logbroker_sub *s = t->data;
    uint64_t now;
    if (s->closing) {
        return;
    }
    if (!menv_is_leader(s->lb->env)) {
        logbroker_sub_end(s, API_UNAVAILABLE, LOGBROKER_LEADER_CHANGED);
        return;
    }
    now = uv_now(s->lb->env->loop);
    for (size_t i = 0; i < s->n_nodes; i++) {
        struct logbroker_node *n = &s->nodes[i];
        /* With follow, an acknowledged node may stay silent for ever. */
        if (n->closed || (s->follow && n->acked) ||
            now - n->last_seen < LOGBROKER_NODE_TIMEOUT_MS) {
            continue;
        }
        n->closed = true;
        logbroker_send_error(s, n->node_id,
                             n->acked ? "node stopped sending logs"
                                      : "node did not answer (it may be down)");
    }
    logbroker_maybe_done(s);
}

/* ------------------------------------------------------------- handlers */

static bool logbroker_strv_has(char *const *v, size_t n, const char *x)
{
    for (size_t i = 0; x != NULL && i < n; i++) {
        if (strcmp(v[i], x) == 0) {
            return true;
        }
    }
    return false;
}

/* The nodes of the selected tasks into s; false when a selected service or
 * task does not exist (the message names it). */
static bool logbroker_resolve(struct logbroker_sub *s, char *missing, size_t size)
{
    const Swarm__LogSelector *sel = s->sub->selector;
    for (size_t i = 0; i < sel->n_service_ids; i++) {
        Swarm__Service *svc = NULL;
        Swarm__Task **tasks = NULL;
        size_t n = 0;
        if (store_service_get(s->lb->env->store, sel->service_ids[i], &svc) != 0) {
            snprintf(missing, size, "%s", sel->service_ids[i]);
            return false;
        }
        if (store_task_list_by_service(s->lb->env->store, svc->id, &tasks, &n) == 0) {
            for (size_t k = 0; k < n; k++) {
                logbroker_node_add(s, tasks[k]->node_id);
            }
            store_task_free_list(tasks, n);
        }
        swarm__service__free_unpacked(svc, NULL);
    }
    for (size_t i = 0; i < sel->n_task_ids; i++) {
        Swarm__Task *task = NULL;
        if (store_task_get(s->lb->env->store, sel->task_ids[i], &task) != 0) {
            snprintf(missing, size, "%s", sel->task_ids[i]);
            return false;
        }
        logbroker_node_add(s, task->node_id);
        swarm__task__free_unpacked(task, NULL);
    }
    return true;
}

static void logbroker_cancel_cb(struct api_call *call, void *data)
{
    struct logbroker_sub *s = data;
    (void)call;
    logbroker_sub_end(s, API_CANCELLED, "cancelled");
}

/* What the nodes get: the subscription's ID, selector and options. NULL
 * when out of memory. */
static Swarm__LogSubscription *logbroker_sub_msg(const char *id,
                                                 const Swarm__SubscribeLogsRequest *req)
{
    Swarm__LogSubscription *sub = calloc(1, sizeof *sub);
    if (sub == NULL) {
        return NULL;
    }
    swarm__log_subscription__init(sub);
    sub->id = strdup(id);
    if (req->selector != NULL) {
        sub->selector = pb_copy(&req->selector->base);
    } else if ((sub->selector = calloc(1, sizeof *sub->selector)) != NULL) {
        swarm__log_selector__init(sub->selector);
    }
    if ((sub->options = calloc(1, sizeof *sub->options)) != NULL) {
        swarm__log_options__init(sub->options);
    }
    if (sub->id == NULL || sub->selector == NULL || sub->options == NULL) {
        swarm__log_subscription__free_unpacked(sub, NULL);
        return NULL;
    }
    return sub;
}

static void logbroker_subscribe_local(struct logbroker *lb, struct api_call *call,
                                      const Swarm__SubscribeLogsRequest *req)
{
    struct logbroker_sub *s = calloc(1, sizeof *s);
    char missing[256] = "";
    if (s == NULL || id_generate(s->id) != 0 || (s->sub = logbroker_sub_msg(s->id, req)) == NULL) {
        free(s);
        api_call_error(call, API_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    if (req->options != NULL) {
        s->sub->options->follow = req->options->follow;
        s->sub->options->tail = req->options->tail;
        s->sub->options->since_ms = req->options->since_ms;
    } else {
        s->sub->options->tail = -1;
    }
    s->lb = lb;
    s->call = call;
    s->follow = s->sub->options->follow;
    uv_timer_init(lb->env->loop, &s->timer);
    s->timer.data = s;
    s->next = lb->subs;
    lb->subs = s;
    lb->n_subs++;
    if (s->sub->selector->n_service_ids + s->sub->selector->n_task_ids == 0) {
        logbroker_sub_end(s, API_INVALID_ARGUMENT, "no service or task selected");
        return;
    }
    if (!logbroker_resolve(s, missing, sizeof missing)) {
        char buf[300];
        snprintf(buf, sizeof buf, "No such service or task: %s", missing);
        logbroker_sub_end(s, API_NOT_FOUND, buf);
        return;
    }
    api_call_on_cancel(call, logbroker_cancel_cb, s);
    uv_timer_start(&s->timer, logbroker_check_cb, LOGBROKER_CHECK_MS, LOGBROKER_CHECK_MS);
    logbroker_maybe_done(s);
}

static void logbroker_subscribe_cb(struct api_call *call, const ProtobufCMessage *msg, void *data)
{
    const struct manager_slot *slot = data;
    struct logbroker *lb = slot->logbroker;
    raft_id leader = 0;
    const char *addr = NULL;
    if (lb == NULL || lb->closing) {
        api_call_error(call, API_FAILED_PRECONDITION, "%s",
                       slot->worker ? MANAGER_WORKER_MSG : MANAGER_NOT_MANAGER_MSG);
        return;
    }
    if (menv_is_leader(lb->env)) {
        logbroker_subscribe_local(lb, call, (const Swarm__SubscribeLogsRequest *)msg);
        return;
    }
    menv_leader(lb->env, &leader, &addr);
    if (leader == 0 || addr == NULL) {
        api_call_error(call, API_UNAVAILABLE, "%s", MANAGER_NO_LEADER_MSG);
        return;
    }
    lb->cfg.forward_stream(lb->cfg.data, call, msg, addr);
}

static struct logbroker_sub *logbroker_find(struct logbroker *lb, const char *id)
{
    for (struct logbroker_sub *s = lb != NULL ? lb->subs : NULL; s != NULL; s = s->next) {
        if (id != NULL && strcmp(s->id, id) == 0) {
            return s;
        }
    }
    return NULL;
}

static void logbroker_publish_cb(struct api_call *call, const ProtobufCMessage *msg, void *data)
{
    const Swarm__PublishLogsRequest *req = (const Swarm__PublishLogsRequest *)msg;
    const struct api_peer *peer = api_call_peer(call);
    Swarm__PublishLogsResponse resp = SWARM__PUBLISH_LOGS_RESPONSE__INIT;
    Swarm__SubscribeLogsMessage out = SWARM__SUBSCRIBE_LOGS_MESSAGE__INIT;
    const struct manager_slot *slot = data;
    struct logbroker_sub *s = logbroker_find(slot->logbroker, req->subscription_id);
    struct logbroker_node *n;
    if (s == NULL || s->closing || s->call == NULL) {
        api_call_error(call, API_NOT_FOUND, "no such log subscription");
        return;
    }
    if ((n = logbroker_node_find(s, peer->node_id)) == NULL) {
        api_call_error(call, API_PERMISSION_DENIED, "node not part of this log subscription");
        return;
    }
    if (api_call_pending_bytes(s->call) > LOGBROKER_MAX_PENDING) {
        api_call_error(call, API_RESOURCE_EXHAUSTED, "subscriber is slow: try again");
        return;
    }
    n->acked = true;
    n->last_seen = uv_now(s->lb->env->loop);
    if (req->n_messages > 0 && !n->closed) {
        /* The node is the one the certificate names, whatever it claims:
         * shallow copies (the request stays the runtime's). */
        Swarm__LogMessage *copies = calloc(req->n_messages, sizeof *copies);
        Swarm__LogMessage **ptrs = calloc(req->n_messages, sizeof *ptrs);
        if (copies == NULL || ptrs == NULL) {
            free(copies);
            free(ptrs);
            api_call_error(call, API_RESOURCE_EXHAUSTED, "out of memory");
            return;
        }
        for (size_t i = 0; i < req->n_messages; i++) {
            copies[i] = *req->messages[i];
            copies[i].node_id = (char *)peer->node_id;
            ptrs[i] = &copies[i];
        }
        out.messages = ptrs;
        out.n_messages = req->n_messages;
        api_call_send(s->call, &out.base);
        free(copies);
        free(ptrs);
    }
    if (req->error != NULL && req->error[0] != '\0' && !n->closed) {
        logbroker_send_error(s, n->node_id, req->error);
    }
    if (req->close) {
        n->closed = true;
    }
    api_call_reply(call, &resp.base);
    logbroker_maybe_done(s);
}

/* -------------------------------------------------------------- events */

void logbroker_on_event(struct logbroker *lb, const struct store_event *ev)
{
    const Swarm__Task *t;
    if (lb == NULL || lb->closing || ev->kind != STORE_KIND_TASK || ev->new_obj == NULL) {
        return;
    }
    t = (const Swarm__Task *)ev->new_obj;
    if (t->node_id == NULL || t->node_id[0] == '\0') {
        return;
    }
    for (struct logbroker_sub *s = lb->subs; s != NULL; s = s->next) {
        const Swarm__LogSelector *sel = s->sub->selector;
        if (s->closing || !s->follow ||
            (!logbroker_strv_has(sel->service_ids, sel->n_service_ids, t->service_id) &&
             !logbroker_strv_has(sel->task_ids, sel->n_task_ids, t->id))) {
            continue;
        }
        logbroker_node_add(s, t->node_id);
    }
}

/* ------------------------------------------------------------ lifecycle */

struct logbroker *logbroker_new(const struct menv *env, const struct logbroker_config *cfg)
{
    struct logbroker *lb = calloc(1, sizeof *lb);
    if (lb == NULL) {
        return NULL;
    }
    lb->env = env;
    lb->cfg = *cfg;
    return lb;
}

/* Free once every subscription's timer is closed. */
static void logbroker_maybe_free(struct logbroker *lb)
{
    void (*cb)(void *) = lb->close_cb;
    void *data = lb->close_data;
    if (!lb->closing || lb->n_subs > 0) {
        return;
    }
    free(lb);
    if (cb != NULL) {
        cb(data);
    }
}

void logbroker_close(struct logbroker *lb, void (*cb)(void *data), void *data)
{
    if (lb == NULL) {
        if (cb != NULL) {
            cb(data);
        }
        return;
    }
    lb->closing = true;
    lb->close_cb = cb;
    lb->close_data = data;
    while (lb->subs != NULL) {
        logbroker_sub_end(lb->subs, API_UNAVAILABLE, LOGBROKER_LEADER_CHANGED);
    }
    logbroker_maybe_free(lb);
}

void logbroker_register(struct api_server *api, const struct manager_slot *slot)
{
    void *data = (void *)slot;
    api_server_register(api, &swarm__logs__descriptor, "SubscribeLogs",
                        API_ROLE_LOCAL | API_ROLE_MANAGER, logbroker_subscribe_cb, data);
    api_server_register(api, &swarm__logs__descriptor, "PublishLogs",
                        API_ROLE_WORKER | API_ROLE_MANAGER, logbroker_publish_cb, data);
}
