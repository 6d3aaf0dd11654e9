/* The agent's session with the dispatcher: one connection at a time, its
 * Session, Assignments and (with networking) NetworkMaps streams
 * (agent_netmaps.c), heartbeats, and the status reporter.
 *
 * Happy path:
 *   agent_session_connect: pick an address (a pending redirect, else the
 *     last leader after a session loss, else the managers in turn) ->
 *     api_client_connect_tls (worker cert, 5 s) -> CONNECTING
 *   connected: open Dispatcher/Session with the node description ->
 *     OPENING, 5 s deadline for the first message
 *   first SessionMessage with a session ID -> OPEN: backoff reset, last
 *     leader remembered, Assignments stream opened (and NetworkMaps when
 *     the node does networking), Heartbeat timer armed,
 *     pending statuses flushed; node_cb / managers_cb
 *   later SessionMessages: node_cb, managers_cb (and the list to try),
 *     a new heartbeat period
 *   Heartbeat every period (the answer may change the period); status
 *     batches (latest status per task, at most 256) every 100 ms, one call
 *     in flight; a batch's statuses leave the queue once acknowledged,
 *     unless they changed again meanwhile.
 * Failure paths (all end in agent_conn_end: close the connection, retry):
 *   - connect or handshake fails / times out -> retry after the backoff
 *     (100 ms doubling to 2 s, jitter 50-100 %), next address;
 *   - first message is a redirect -> retry at once at the named address
 *     (with backoff after AGENT_REDIRECT_MAX redirects in a row);
 *   - no first message in time, or one without a session ID -> retry;
 *   - Session, Assignments or NetworkMaps stream ends, a heartbeat or a status batch
 *     fails -> retry, the last leader first; queued statuses are kept;
 *   - a status batch refused for its content (the dispatcher names the
 *     task: unknown, another node's, older than recorded, malformed): that
 *     task's status is dropped, the others are sent again; the session
 *     goes on;
 *   - the open session is ended by the leader with PERMISSION_DENIED "node
 *     ... is removed from the swarm" (it saw the node deleted), or new
 *     sessions are refused with PERMISSION_DENIED naming a removal, in a
 *     row, for AGENT_REMOVED_CONFIRM_MS (a manager whose store lags may
 *     not know a node that just joined; the connection may also just be
 *     closed first): agent_removed: close, no retry, removed_cb (the node
 *     stops its tasks and leaves the swarm);
 *   - agent_session_close (agent_stop): close, no retry.
 * A closed connection's calls still complete (UNAVAILABLE): every callback
 * checks conn->closing first. The conn is freed in the client's close
 * callback. */
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"
#include "err.h"
#include "log.h"

static void agent_conn_end(struct agent *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

uint64_t agent_wall_ms(void)
{
    uv_timeval64_t tv;
    if (uv_gettimeofday(&tv) != 0) {
        return 0;
    }
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

/* 50-100 % of ms (xorshift64, per agent: no shared state). */
static uint64_t agent_jitter(struct agent *a, uint64_t ms)
{
    a->rng ^= a->rng << 13;
    a->rng ^= a->rng >> 7;
    a->rng ^= a->rng << 17;
    return ms / 2 + a->rng % (ms / 2 + 1);
}

/* ------------------------------------------------------- connections */

static void agent_conn_closed_cb(void *data)
{
    struct agent_conn *conn = data;
    struct agent *a = conn->a;
    free(conn);
    a->n_conns_closing--;
    agent_maybe_finish(a);
}

static void agent_retry_cb(uv_timer_t *t)
{
    struct agent *a = t->data;
    if (a->closing) {
        return;
    }
    agent_session_connect(a);
}

static void agent_schedule_retry(struct agent *a)
{
    uint64_t delay;
    if (a->closing) {
        return;
    }
    if (a->redirect[0] != '\0' && a->redirects <= AGENT_REDIRECT_MAX) {
        delay = 0;
    } else {
        delay = agent_jitter(a, a->backoff_ms);
        a->backoff_ms *= 2;
        if (a->backoff_ms > AGENT_BACKOFF_MAX_MS) {
            a->backoff_ms = AGENT_BACKOFF_MAX_MS;
        }
    }
    uv_timer_start(&a->retry_timer, agent_retry_cb, delay, 0);
}

static void agent_conn_close(struct agent *a, struct agent_conn *conn)
{
    conn->closing = true;
    a->n_conns_closing++;
    api_client_close(conn->client, agent_conn_closed_cb, conn);
}

/* End the current connection (whatever its state) and schedule the next. */
static void agent_conn_end(struct agent *a, const char *fmt, ...)
{
    struct agent_conn *conn = a->conn;
    char why[SWARM_ERRMSG_SIZE];
    va_list ap;
    if (conn == NULL) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    a->conn = NULL;
    uv_timer_stop(&a->open_timer);
    uv_timer_stop(&a->hb_timer);
    if (conn->state == AGENT_CONN_OPEN) {
        log_warn("agent", "session %s with %s ended: %s", a->session_id, conn->addr, why);
        a->leader_first = true;
        a->backoff_ms = AGENT_BACKOFF_MIN_MS;
    } else if (a->redirect[0] == '\0') {
        log_info("agent", "manager %s: %s", conn->addr, why);
        a->conn_failures++;
        if (a->conn_error_cb != NULL) {
            a->conn_error_cb(conn->addr, a->conn_failures, why, a->data);
        }
    }
    a->session_id[0] = '\0';
    agent_staged_clear(a);
    agent_netmaps_staged_clear(a);
    agent_conn_close(a, conn);
    if (!a->removed) {
        agent_schedule_retry(a);
    }
}

/* Did a manager refuse us because the swarm removed this node? The
 * dispatcher answers PERMISSION_DENIED "node ... is removed from the
 * swarm"; a manager checking certificates against its store may say the
 * node "was removed" or "may have been removed". */
static bool agent_refused_as_removed(enum api_status status, const char *message)
{
    return status == API_PERMISSION_DENIED && message != NULL &&
           strstr(message, "removed") != NULL;
}

/* A Session or Assignments call ended with `message` (a removal refusal):
 * act on it when it is certain, else retry and see. */
static void agent_on_removed_refusal(struct agent_conn *conn, const char *message)
{
    struct agent *a = conn->a;
    uint64_t now = uv_now(a->loop);
    if (conn->state == AGENT_CONN_OPEN && strstr(message, "removed from the swarm") != NULL) {
        agent_removed(a, message); /* the leader saw the node deleted */
        return;
    }
    if (a->removed_since == 0) {
        a->removed_since = now;
    } else if (now - a->removed_since >= AGENT_REMOVED_CONFIRM_MS) {
        agent_removed(a, message);
        return;
    }
    agent_conn_end(a, "refused: %s", message);
}

void agent_removed(struct agent *a, const char *why)
{
    if (a->removed || a->closing) {
        return;
    }
    a->removed = true;
    log_warn("agent", "this node was removed from the swarm (%s): stopping its tasks", why);
    uv_timer_stop(&a->retry_timer);
    agent_conn_end(a, "%s", why);
    if (a->removed_cb != NULL) {
        a->removed_cb(a->data);
    }
}

/* The next address to try, in `out` (which holds the previous attempt's);
 * false when there is none. */
static bool agent_pick_addr(struct agent *a, char out[AGENT_ADDR_MAX])
{
    if (a->redirect[0] != '\0') {
        memcpy(out, a->redirect, AGENT_ADDR_MAX);
        a->redirect[0] = '\0';
        return true;
    }
    if (a->leader_first && a->last_leader[0] != '\0') {
        a->leader_first = false;
        memcpy(out, a->last_leader, AGENT_ADDR_MAX);
        return true;
    }
    a->leader_first = false;
    if (a->n_mgrs == 0) {
        memcpy(out, a->last_leader, AGENT_ADDR_MAX);
        return out[0] != '\0';
    }
    /* Not the one that just failed, when there is another. */
    if (a->n_mgrs > 1 && strcmp(a->mgrs[a->rr % a->n_mgrs], out) == 0) {
        a->rr++;
    }
    snprintf(out, AGENT_ADDR_MAX, "%s", a->mgrs[a->rr++ % a->n_mgrs]);
    return true;
}

static void agent_connected_cb(struct api_client *c, int status, const char *errmsg, void *data);

void agent_session_connect(struct agent *a)
{
    struct agent_conn *conn;
    int rv;
    if (a->closing || a->removed || a->conn != NULL) {
        return;
    }
    if ((conn = calloc(1, sizeof *conn)) == NULL) {
        agent_schedule_retry(a);
        return;
    }
    conn->a = a;
    memcpy(conn->addr, a->last_tried, AGENT_ADDR_MAX);
    if (!agent_pick_addr(a, conn->addr)) {
        free(conn);
        agent_schedule_retry(a);
        return;
    }
    if ((conn->client = api_client_new(a->loop, 0)) == NULL) {
        free(conn);
        agent_schedule_retry(a);
        return;
    }
    memcpy(a->last_tried, conn->addr, AGENT_ADDR_MAX);
    conn->state = AGENT_CONN_CONNECTING;
    rv = api_client_connect_tls(conn->client, conn->addr, a->client_ctx, NULL,
                                AGENT_CONNECT_TIMEOUT_MS, agent_connected_cb, conn);
    a->conn = conn;
    if (rv != 0) {
        agent_conn_end(a, "cannot connect: %s", swarm_strerror(rv));
    }
}

void agent_session_restart(struct agent *a, const char *why)
{
    if (a->conn == NULL || a->closing) {
        return;
    }
    if (a->conn->state == AGENT_CONN_OPEN) {
        /* Back to the same manager at once: the session is not lost. */
        memcpy(a->redirect, a->conn->addr, AGENT_ADDR_MAX);
        a->redirects = 0;
    }
    agent_conn_end(a, "%s", why);
}

void agent_session_close(struct agent *a)
{
    uv_timer_stop(&a->retry_timer);
    uv_timer_stop(&a->open_timer);
    uv_timer_stop(&a->hb_timer);
    if (a->conn != NULL) {
        struct agent_conn *conn = a->conn;
        a->conn = NULL;
        a->session_id[0] = '\0';
        agent_conn_close(a, conn);
    }
}

/* ------------------------------------------------------------ session */

static void agent_session_msg_cb(const ProtobufCMessage *msg, void *data);
static void agent_session_done_cb(enum api_status status, const char *message,
                                  const ProtobufCMessage *resp, void *data);

static void agent_open_timeout_cb(uv_timer_t *t)
{
    struct agent *a = t->data;
    if (a->closing || a->conn == NULL || a->conn->state != AGENT_CONN_OPENING) {
        return;
    }
    agent_conn_end(a, "no answer to the session request");
}

static void agent_connected_cb(struct api_client *c, int status, const char *errmsg, void *data)
{
    struct agent_conn *conn = data;
    struct agent *a = conn->a;
    Swarm__SessionRequest req = SWARM__SESSION_REQUEST__INIT;
    int rv;
    if (conn->closing) {
        return;
    }
    if (status != 0) {
        agent_conn_end(a, "%s", errmsg != NULL ? errmsg : swarm_strerror(status));
        return;
    }
    conn->state = AGENT_CONN_OPENING;
    req.description = a->desc;
    rv = api_client_stream(c, &swarm__dispatcher__descriptor, "Session", &req.base, 0,
                           agent_session_msg_cb, agent_session_done_cb, conn, NULL);
    if (rv != 0) {
        agent_conn_end(a, "cannot open a session: %s", swarm_strerror(rv));
        return;
    }
    uv_timer_start(&a->open_timer, agent_open_timeout_cb, AGENT_CONNECT_TIMEOUT_MS, 0);
}

static bool agent_list_has(char *const *list, size_t n, const char *addr)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(list[i], addr) == 0) {
            return true;
        }
    }
    return false;
}

/* 0, or SWARM_ENOMEM (the list is as it was). */
static int agent_list_add(char **list, size_t *n, const char *addr)
{
    if (addr == NULL || addr[0] == '\0' || strlen(addr) >= AGENT_ADDR_MAX ||
        agent_list_has(list, *n, addr)) {
        return 0;
    }
    if ((list[*n] = strdup(addr)) == NULL) {
        return SWARM_ENOMEM;
    }
    (*n)++;
    return 0;
}

/* The addresses to try: the managers the leader announced, then those
 * given at start (the leader may know a manager by another address than
 * the one that reaches it from here). */
static void agent_set_managers(struct agent *a, Swarm__ManagerPeer *const *peers, size_t n)
{
    size_t k = 0;
    int rv = 0;
    char **list = calloc(n + a->n_cfg_mgrs + 1, sizeof *list);
    for (size_t i = 0; list != NULL && rv == 0 && i < n; i++) {
        rv = agent_list_add(list, &k, peers[i] != NULL ? peers[i]->addr : NULL);
    }
    for (size_t i = 0; list != NULL && rv == 0 && i < a->n_cfg_mgrs; i++) {
        rv = agent_list_add(list, &k, a->cfg_mgrs[i]);
    }
    if (list == NULL || rv != 0) {
        /* Whole or not at all: the next session message brings the list again. */
        for (size_t i = 0; i < k; i++) {
            free(list[i]);
        }
        free(list);
        log_warn("agent", "manager list: out of memory, keeping the previous one");
        return;
    }
    for (size_t i = 0; i < a->n_mgrs; i++) {
        free(a->mgrs[i]);
    }
    free(a->mgrs);
    a->mgrs = list;
    a->n_mgrs = k;
    a->rr = 0;
}

static void agent_heartbeat_cb(uv_timer_t *t);
static void agent_assign_msg_cb(const ProtobufCMessage *msg, void *data);
static void agent_assign_done_cb(enum api_status status, const char *message,
                                 const ProtobufCMessage *resp, void *data);

/* The first SessionMessage: the session is open. */
static void agent_session_open(struct agent_conn *conn, const Swarm__SessionMessage *m)
{
    struct agent *a = conn->a;
    Swarm__AssignmentsRequest req = SWARM__ASSIGNMENTS_REQUEST__INIT;
    int rv;
    snprintf(a->session_id, sizeof a->session_id, "%s", m->session_id);
    conn->state = AGENT_CONN_OPEN;
    a->removed_since = 0;
    uv_timer_stop(&a->open_timer);
    a->redirects = 0;
    a->backoff_ms = AGENT_BACKOFF_MIN_MS;
    memcpy(a->last_leader, conn->addr, AGENT_ADDR_MAX);
    log_info("agent", "session %s with %s open", a->session_id, conn->addr);
    req.session_id = a->session_id;
    rv = api_client_stream(conn->client, &swarm__dispatcher__descriptor, "Assignments",
                           &req.base, 0, agent_assign_msg_cb, agent_assign_done_cb, conn, NULL);
    if (rv != 0) {
        agent_conn_end(a, "cannot open the assignments stream: %s", swarm_strerror(rv));
        return;
    }
    if ((rv = agent_netmaps_open(conn)) != 0) {
        agent_conn_end(a, "cannot open the network maps stream: %s", swarm_strerror(rv));
        return;
    }
    uv_timer_start(&a->hb_timer, agent_heartbeat_cb, a->hb_period_ms, 0);
    agent_reporter_kick(a);
}

static void agent_session_msg_cb(const ProtobufCMessage *msg, void *data)
{
    struct agent_conn *conn = data;
    struct agent *a = conn->a;
    const Swarm__SessionMessage *m = (const Swarm__SessionMessage *)msg;
    if (conn->closing) {
        return;
    }
    if (conn->state == AGENT_CONN_OPENING) {
        if (m->redirect_addr != NULL && m->redirect_addr[0] != '\0') {
            if (strlen(m->redirect_addr) >= AGENT_ADDR_MAX) {
                agent_conn_end(a, "redirect to an invalid address");
                return;
            }
            snprintf(a->redirect, sizeof a->redirect, "%s", m->redirect_addr);
            a->redirects++;
            log_info("agent", "manager %s is not the leader: redirected to %s", conn->addr,
                     a->redirect);
            agent_conn_end(a, "redirected to %s", m->redirect_addr);
            return;
        }
        if (m->session_id == NULL || m->session_id[0] == '\0') {
            agent_conn_end(a, "protocol error: the first session message has no session ID");
            return;
        }
    }
    if (m->heartbeat_period_ms > 0) {
        a->hb_period_ms = (uint64_t)m->heartbeat_period_ms;
    }
    if (m->n_managers > 0) {
        agent_set_managers(a, m->managers, m->n_managers);
    }
    if (conn->state == AGENT_CONN_OPENING) {
        a->conn_failures = 0;
        agent_session_open(conn, m);
        if (conn->closing) {
            return;
        }
    }
    /* Certificates first: a root change or a renewal request may restart
     * the session, after which this message's other parts are stale. */
    if (m->root_ca.len > 0 && a->root_ca_cb != NULL) {
        a->root_ca_cb(m->root_ca.data, m->root_ca.len, a->data);
        if (conn->closing || a->closing) {
            return;
        }
    }
    if (m->renew_issuer_key.len > 0 && a->renew_cb != NULL) {
        a->renew_cb(m->renew_issuer_key.data, m->renew_issuer_key.len, a->data);
        if (conn->closing || a->closing) {
            return;
        }
    }
    /* The callbacks may stop the agent: check before the next one. */
    if (m->node != NULL && a->node_cb != NULL) {
        a->node_cb(m->node, a->data);
    }
    if (!conn->closing && m->n_managers > 0 && a->managers_cb != NULL) {
        a->managers_cb(m->managers, m->n_managers, a->data);
    }
    for (size_t i = 0; !conn->closing && !a->closing && i < m->n_log_subscriptions; i++) {
        agent_logs_subscribe(a, m->log_subscriptions[i]);
    }
}

static void agent_session_done_cb(enum api_status status, const char *message,
                                  const ProtobufCMessage *resp, void *data)
{
    struct agent_conn *conn = data;
    if (conn->closing) {
        return;
    }
    if (agent_refused_as_removed(status, message)) {
        agent_on_removed_refusal(conn, message);
    } else if (status == API_OK) {
        agent_conn_end(conn->a, "the manager ended the session");
    } else {
        agent_conn_end(conn->a, "session stream: %s: %s", api_status_name(status),
                       message != NULL ? message : "");
    }
}

/* ---------------------------------------------------------- heartbeat */

static void agent_heartbeat_done_cb(enum api_status status, const char *message,
                                    const ProtobufCMessage *resp, void *data)
{
    struct agent_conn *conn = data;
    struct agent *a = conn->a;
    conn->hb_inflight = false;
    if (conn->closing) {
        return;
    }
    if (status != API_OK) {
        agent_conn_end(a, "heartbeat failed: %s: %s", api_status_name(status),
                       message != NULL ? message : "");
        return;
    }
    const Swarm__HeartbeatResponse *r = (const Swarm__HeartbeatResponse *)resp;
    if (r != NULL && r->period_ms > 0) {
        a->hb_period_ms = (uint64_t)r->period_ms;
    }
    uv_timer_start(&a->hb_timer, agent_heartbeat_cb, a->hb_period_ms, 0);
}

static void agent_heartbeat_cb(uv_timer_t *t)
{
    struct agent *a = t->data;
    struct agent_conn *conn = a->conn;
    Swarm__HeartbeatRequest req = SWARM__HEARTBEAT_REQUEST__INIT;
    if (a->closing || conn == NULL || conn->state != AGENT_CONN_OPEN || conn->hb_inflight) {
        return;
    }
    /* An answer later than two periods means the manager will soon count
     * us as missing: better find another one. */
    uint64_t timeout = 2 * a->hb_period_ms < 1000 ? 1000 : 2 * a->hb_period_ms;
    req.session_id = a->session_id;
    if (api_client_unary(conn->client, &swarm__dispatcher__descriptor, "Heartbeat", &req.base,
                         timeout, agent_heartbeat_done_cb, conn) != 0) {
        agent_conn_end(a, "cannot send a heartbeat");
        return;
    }
    conn->hb_inflight = true;
}

/* -------------------------------------------------------- assignments */

static void agent_assign_msg_cb(const ProtobufCMessage *msg, void *data)
{
    struct agent_conn *conn = data;
    if (conn->closing || conn->a->closing) {
        return;
    }
    if (agent_apply_assignments(conn->a, (const Swarm__AssignmentsMessage *)msg) != 0) {
        agent_conn_end(conn->a, "out of memory holding the assignments");
    }
}

static void agent_assign_done_cb(enum api_status status, const char *message,
                                 const ProtobufCMessage *resp, void *data)
{
    struct agent_conn *conn = data;
    if (conn->closing) {
        return;
    }
    agent_session_lost(conn->a, status, message, "assignments stream");
}

void agent_session_lost(struct agent *a, enum api_status status, const char *message,
                        const char *what)
{
    struct agent_conn *conn = a->conn;
    if (conn == NULL) {
        return;
    }
    if (agent_refused_as_removed(status, message)) {
        agent_on_removed_refusal(conn, message);
        return;
    }
    agent_conn_end(a, "%s: %s: %s", what, api_status_name(status),
                   message != NULL && message[0] != '\0' ? message : "ended by the manager");
}

/* ----------------------------------------------------------- reporter */

/* One UpdateTaskStatus in flight: which statuses it carries. */
struct agent_batch {
    struct agent_conn *conn;
    size_t n;
    char **ids;
    uint64_t *seqs;
};

static void agent_batch_free(struct agent_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->ids[i]);
    }
    free(b->ids);
    free(b->seqs);
    free(b);
}

/* The dispatcher refused a batch for its content (it records nothing of a
 * refused batch, and names the task at fault): drop that task's status
 * (keeping the others queued) and return true; false for other failures
 * (transport, session), which end the connection. */
static bool agent_status_refused(struct agent *a, const struct agent_batch *b,
                                 enum api_status status, const char *message)
{
    if (status != API_NOT_FOUND && status != API_PERMISSION_DENIED &&
        status != API_FAILED_PRECONDITION && status != API_INVALID_ARGUMENT) {
        return false;
    }
    for (size_t i = 0; message != NULL && i < b->n; i++) {
        if (strstr(message, b->ids[i]) == NULL) {
            continue;
        }
        struct agent_task *at = agent_table_get(&a->tasks, b->ids[i]);
        log_warn("agent", "the manager refused a status: %s", message);
        if (at != NULL && at->status_seq == b->seqs[i]) {
            agent_rep_del(a, at);
        }
        return true;
    }
    if (status != API_INVALID_ARGUMENT) {
        return false; /* e.g. NOT_FOUND "session invalid" */
    }
    /* Malformed as a whole (cannot happen with this agent): drop it, so
     * the same batch does not come back forever. */
    log_warn("agent", "the manager refused a status batch: %s", message ? message : "");
    for (size_t i = 0; i < b->n; i++) {
        struct agent_task *at = agent_table_get(&a->tasks, b->ids[i]);
        if (at != NULL && at->status_seq == b->seqs[i]) {
            agent_rep_del(a, at);
        }
    }
    return true;
}

static void agent_status_done_cb(enum api_status status, const char *message,
                                 const ProtobufCMessage *resp, void *data)
{
    struct agent_batch *b = data;
    struct agent_conn *conn = b->conn;
    struct agent *a = conn->a;
    conn->status_inflight = false;
    if (conn->closing) {
        agent_batch_free(b); /* resent on the next session */
        return;
    }
    if (status != API_OK && agent_status_refused(a, b, status, message)) {
        agent_batch_free(b);
        if (a->n_rep > 0) {
            agent_reporter_kick(a);
        }
        return;
    }
    if (status != API_OK) {
        agent_batch_free(b);
        agent_conn_end(a, "reporting task status failed: %s: %s", api_status_name(status),
                       message != NULL ? message : "");
        return;
    }
    for (size_t i = 0; i < b->n; i++) {
        struct agent_task *at = agent_table_get(&a->tasks, b->ids[i]);
        log_debug("agent", "task %s: status acknowledged at %.3f ms", b->ids[i],
                  (double)uv_hrtime() / 1e6);
        if (at != NULL && at->status_seq == b->seqs[i]) {
            agent_rep_del(a, at);
        }
    }
    agent_batch_free(b);
    if (a->n_rep > 0) {
        agent_reporter_kick(a);
    }
}

static void agent_reporter_send(struct agent *a)
{
    struct agent_conn *conn = a->conn;
    Swarm__UpdateTaskStatusRequest req = SWARM__UPDATE_TASK_STATUS_REQUEST__INIT;
    size_t n = a->n_rep < AGENT_BATCH_MAX ? a->n_rep : AGENT_BATCH_MAX;
    if (conn == NULL || conn->state != AGENT_CONN_OPEN || conn->status_inflight || n == 0) {
        return;
    }
    struct agent_batch *b = calloc(1, sizeof *b);
    Swarm__TaskStatusUpdate *ups = calloc(n, sizeof *ups);
    Swarm__TaskStatusUpdate **ptrs = calloc(n, sizeof *ptrs);
    Swarm__TaskStatus *sts = calloc(n, sizeof *sts);
    if (b == NULL || ups == NULL || ptrs == NULL || sts == NULL ||
        (b->ids = calloc(n, sizeof *b->ids)) == NULL ||
        (b->seqs = calloc(n, sizeof *b->seqs)) == NULL) {
        goto out;
    }
    b->conn = conn;
    struct agent_task *at = a->rep_head;
    for (size_t i = 0; i < n && at != NULL; i++, at = at->rep_next) {
        if ((b->ids[i] = strdup(at->id)) == NULL) {
            goto out;
        }
        b->n++;
        b->seqs[i] = at->status_seq;
        swarm__task_status__init(&sts[i]);
        sts[i].timestamp = at->st.timestamp;
        sts[i].state = at->st.state;
        sts[i].message = at->st.message != NULL ? at->st.message : "";
        sts[i].err = at->st.err != NULL ? at->st.err : "";
        sts[i].exit_code = at->st.exit_code;
        sts[i].pid = at->st.pid;
        swarm__task_status_update__init(&ups[i]);
        ups[i].task_id = at->id;
        ups[i].status = &sts[i];
        ptrs[i] = &ups[i];
        /* bench/bench_containers.py's breakdown (monotonic ms) */
        log_debug("agent", "task %s: status %d sent at %.3f ms", at->id, (int)at->st.state,
                  (double)uv_hrtime() / 1e6);
    }
    req.session_id = a->session_id;
    req.updates = ptrs;
    req.n_updates = b->n;
    if (api_client_unary(conn->client, &swarm__dispatcher__descriptor, "UpdateTaskStatus",
                         &req.base, AGENT_STATUS_TIMEOUT_MS, agent_status_done_cb, b) != 0) {
        goto out;
    }
    conn->status_inflight = true;
    b = NULL;
out:
    if (b != NULL) {
        agent_batch_free(b);
    }
    free(ups);
    free(ptrs);
    free(sts);
}

static void agent_flush_cb(uv_timer_t *t)
{
    struct agent *a = t->data;
    if (a->closing) {
        return;
    }
    if (a->db_open) {
        taskdb_commit(&a->db);
    }
    agent_reporter_send(a);
}

void agent_reporter_kick(struct agent *a)
{
    if (a->closing) {
        return;
    }
    if (a->n_rep >= AGENT_BATCH_MAX && a->conn != NULL && !a->conn->status_inflight) {
        agent_reporter_send(a);
    }
    /* Idle reporter: send almost at once (a task's preparing, starting and
     * running come in one burst, so a couple of ms still batch them); a
     * batch in flight: the next one gathers for the usual interval. */
    if (!uv_is_active((uv_handle_t *)&a->flush_timer)) {
        bool idle = a->conn != NULL && !a->conn->status_inflight;
        uv_timer_start(&a->flush_timer, agent_flush_cb, idle ? AGENT_FLUSH_IDLE_MS : AGENT_FLUSH_MS,
                       0);
    }
}
