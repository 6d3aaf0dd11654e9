/* `swarmctl service logs [OPTIONS] SERVICE|TASK` (Docker's): the lines of
 * every task of a service, or of one task, from whatever node runs it.
 *
 * Happy path: resolve the argument (GetService, else GetTask) -> task names
 * (ListTasks) and node hostnames (ListNodes) for the prefixes ->
 * Logs/SubscribeLogs stream on the control socket -> each message is
 * copied into a queue by the stream callback and printed from the command's
 * own loop (so that a task or node seen for the first time can be looked up
 * with a blocking call) -> the stream ends (no --follow) -> exit 0.
 * SIGINT (--follow): the call is cancelled, the queue printed, exit 0.
 * Failures: unknown SERVICE|TASK -> "Error: No such service or task: X",
 *   exit 1; a node that does not answer -> "error from node X: ..." on
 *   stderr, the others go on; the stream fails -> Docker's error, exit 1. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "err.h"
#include "format.h"
#include "logs.pb-c.h"
#include "logs_fmt.h"
#include "pbcopy.h"
#include "vec.h"

struct logs_name {
    char *id;
    char *name; /* task: "web.1"; node: hostname */
    struct logs_name *next;
};

struct logs_run {
    struct cli_ctx *ctx;
    struct cli_logs_fmt fmt;
    bool no_resolve;
    struct logs_name *tasks, *nodes;
    Swarm__SubscribeLogsMessage **queue;
    size_t n_queue, cap_queue;
    struct api_client_call *handle;
    bool done, interrupted;
    enum api_status status;
    char message[512];
    uv_signal_t sigint;
    bool sig_closed;
};

/* ----------------------------------------------------------------- names */

static const char *logs_name_get(struct logs_name *l, const char *id)
{
    for (; l != NULL; l = l->next) {
        if (strcmp(l->id, id) == 0) {
            return l->name;
        }
    }
    return NULL;
}

static void logs_name_put(struct logs_name **l, const char *id, const char *name)
{
    struct logs_name *n = calloc(1, sizeof *n);
    if (n == NULL || (n->id = strdup(id)) == NULL || (n->name = strdup(name)) == NULL) {
        if (n != NULL) {
            free(n->id);
        }
        free(n);
        return;
    }
    n->next = *l;
    *l = n;
}

static void logs_names_free(struct logs_name *l)
{
    while (l != NULL) {
        struct logs_name *next = l->next;
        free(l->id);
        free(l->name);
        free(l);
        l = next;
    }
}

/* "web.1" (replicated) or "web.<node id>" (global), as Docker names tasks. */
static void logs_task_put(struct logs_run *r, const Swarm__Task *t)
{
    char name[512];
    if (t->annotations != NULL && t->annotations->name != NULL && t->annotations->name[0]) {
        snprintf(name, sizeof name, "%s", t->annotations->name);
    } else if (t->slot > 0) {
        snprintf(name, sizeof name, "%s.%llu", t->service_id, (unsigned long long)t->slot);
    } else {
        snprintf(name, sizeof name, "%s.%s", t->service_id, t->node_id);
    }
    if (logs_name_get(r->tasks, t->id) == NULL) {
        logs_name_put(&r->tasks, t->id, name);
    }
}

static void logs_node_put(struct logs_run *r, const Swarm__Node *n)
{
    const char *host = n->description != NULL && n->description->hostname != NULL &&
                               n->description->hostname[0] != '\0' && !r->no_resolve
                           ? n->description->hostname
                           : n->id;
    if (logs_name_get(r->nodes, n->id) == NULL) {
        logs_name_put(&r->nodes, n->id, host);
    }
}

/* The context of a message's task and node, looked up once. */
static void logs_context(struct logs_run *r, const Swarm__LogMessage *m, char *out, size_t size)
{
    const char *task = logs_name_get(r->tasks, m->task_id);
    const char *node = logs_name_get(r->nodes, m->node_id);
    struct cli_reply rep;
    if (task == NULL) {
        Swarm__GetTaskRequest req = SWARM__GET_TASK_REQUEST__INIT;
        req.task_id = m->task_id;
        if (cli_conn_call(r->ctx->conn, &swarm__control__descriptor, "GetTask", &req.base,
                          &rep) == 0 &&
            ((Swarm__GetTaskResponse *)rep.resp)->task != NULL) {
            logs_task_put(r, ((Swarm__GetTaskResponse *)rep.resp)->task);
        } else {
            logs_name_put(&r->tasks, m->task_id, m->task_id);
        }
        cli_cmd_free(rep.resp);
        task = logs_name_get(r->tasks, m->task_id);
    }
    if (node == NULL) {
        Swarm__GetNodeRequest req = SWARM__GET_NODE_REQUEST__INIT;
        req.node_id = m->node_id;
        if (cli_conn_call(r->ctx->conn, &swarm__control__descriptor, "GetNode", &req.base,
                          &rep) == 0 &&
            ((Swarm__GetNodeResponse *)rep.resp)->node != NULL) {
            logs_node_put(r, ((Swarm__GetNodeResponse *)rep.resp)->node);
        } else {
            logs_name_put(&r->nodes, m->node_id, m->node_id);
        }
        cli_cmd_free(rep.resp);
        node = logs_name_get(r->nodes, m->node_id);
    }
    cli_logs_context(&r->fmt, task != NULL ? task : m->task_id, m->task_id,
                     node != NULL ? node : m->node_id, out, size);
}

/* Task names and node hostnames known up front, and the padding they need. */
static void logs_preload(struct logs_run *r, const char *service_id, const Swarm__Task *task)
{
    char filter[128], ctxbuf[1024];
    char *filters[1] = {filter};
    Swarm__ListNodesRequest nreq = SWARM__LIST_NODES_REQUEST__INIT;
    Swarm__ListTasksRequest treq = SWARM__LIST_TASKS_REQUEST__INIT;
    struct cli_reply rep;
    if (cli_conn_call(r->ctx->conn, &swarm__control__descriptor, "ListNodes", &nreq.base,
                      &rep) == 0) {
        Swarm__ListNodesResponse *nl = (Swarm__ListNodesResponse *)rep.resp;
        for (size_t i = 0; i < nl->n_nodes; i++) {
            logs_node_put(r, nl->nodes[i]);
        }
    }
    cli_cmd_free(rep.resp);
    if (task != NULL) {
        logs_task_put(r, task);
    } else {
        snprintf(filter, sizeof filter, "service=%s", service_id);
        treq.filters = filters;
        treq.n_filters = 1;
        if (cli_conn_call(r->ctx->conn, &swarm__control__descriptor, "ListTasks", &treq.base,
                          &rep) == 0) {
            Swarm__ListTasksResponse *tl = (Swarm__ListTasksResponse *)rep.resp;
            for (size_t i = 0; i < tl->n_tasks; i++) {
                logs_task_put(r, tl->tasks[i]);
            }
        }
        cli_cmd_free(rep.resp);
    }
    /* Pad for the tasks that have a node (those that can have logs). */
    for (struct logs_name *t = r->tasks; t != NULL; t = t->next) {
        cli_logs_context(&r->fmt, t->name, t->id, "", ctxbuf, sizeof ctxbuf);
        size_t widest = 0;
        for (struct logs_name *n = r->nodes; n != NULL; n = n->next) {
            size_t len = strlen(n->name);
            widest = len > widest ? len : widest;
        }
        cli_logs_fit(&r->fmt, strlen(ctxbuf) + widest);
    }
}

/* ---------------------------------------------------------------- stream */

static void logs_msg_cb(const ProtobufCMessage *msg, void *data)
{
    struct logs_run *r = data;
    Swarm__SubscribeLogsMessage *copy;
    if (vec_grow(r->queue, r->cap_queue, r->n_queue + 1) != 0) {
        return;
    }
    copy = pb_copy(msg);
    if (copy != NULL) {
        r->queue[r->n_queue++] = copy;
    }
}

static void logs_done_cb(enum api_status status, const char *message,
                         const ProtobufCMessage *resp, void *data)
{
    struct logs_run *r = data;
    (void)resp;
    r->done = true;
    r->handle = NULL;
    r->status = status;
    snprintf(r->message, sizeof r->message, "%s", message != NULL ? message : "");
}

static void logs_sigint_cb(uv_signal_t *h, int signum)
{
    struct logs_run *r = h->data;
    (void)signum;
    r->interrupted = true;
    if (r->handle != NULL) {
        api_client_call_cancel(r->handle);
    }
}

static void logs_sig_closed_cb(uv_handle_t *h)
{
    struct logs_run *r = h->data;
    r->sig_closed = true;
}

static void logs_print(struct logs_run *r, const Swarm__SubscribeLogsMessage *m)
{
    char context[1024];
    if (m->error != NULL && m->error[0] != '\0') {
        fprintf(r->ctx->err, "%s\n", cli_esc(m->error));
        fflush(r->ctx->err);
    }
    for (size_t i = 0; i < m->n_messages; i++) {
        const Swarm__LogMessage *lm = m->messages[i];
        char *line;
        logs_context(r, lm, context, sizeof context);
        cli_logs_fit(&r->fmt, strlen(context));
        line = cli_logs_line(&r->fmt, context, lm->timestamp_ms, (const char *)lm->data.data,
                             lm->data.len);
        if (line != NULL) {
            fputs(line, lm->stream == 2 ? r->ctx->err : r->ctx->out);
            free(line);
        }
    }
    fflush(r->ctx->out);
    fflush(r->ctx->err);
}

/* Print what the stream callback queued (lookups may queue more). */
static void logs_drain(struct logs_run *r)
{
    size_t i = 0;
    while (i < r->n_queue) {
        logs_print(r, r->queue[i]);
        swarm__subscribe_logs_message__free_unpacked(r->queue[i], NULL);
        i++;
    }
    r->n_queue = 0;
}

static int logs_stream(struct logs_run *r, Swarm__SubscribeLogsRequest *req)
{
    struct cli_conn *c = r->ctx->conn;
    int rc = 0;
    if (api_client_stream(c->client, &swarm__logs__descriptor, "SubscribeLogs", &req->base, 0,
                          logs_msg_cb, logs_done_cb, r, &r->handle) != 0) {
        return cli_cmd_errorf(r->ctx, "cannot start the logs stream");
    }
    uv_signal_init(&c->loop, &r->sigint);
    r->sigint.data = r;
    uv_signal_start(&r->sigint, logs_sigint_cb, SIGINT);
    while (!r->done) {
        if (uv_run(&c->loop, UV_RUN_ONCE) == 0 && !r->done) {
            r->status = API_UNAVAILABLE;
            snprintf(r->message, sizeof r->message, "no answer from swarmd");
            break;
        }
        logs_drain(r);
    }
    logs_drain(r);
    uv_close((uv_handle_t *)&r->sigint, logs_sig_closed_cb);
    while (!r->sig_closed) {
        uv_run(&c->loop, UV_RUN_ONCE);
    }
    if (r->status == API_OK || (r->interrupted && r->status == API_CANCELLED)) {
        return 0;
    }
    if (r->status == API_NOT_FOUND) {
        fprintf(r->ctx->err, "Error: %s\n", cli_esc(r->message));
        return 1;
    }
    struct cli_reply rep = {.status = r->status};
    snprintf(rep.message, sizeof rep.message, "%s", r->message);
    rep.unreachable = r->status == API_UNAVAILABLE && !api_client_connected(c->client);
    rc = cli_conn_report(c, &rep, r->ctx->err);
    return rc;
}

/* ------------------------------------------------------------- options */

/* --since: RFC 3339 time ("2024-03-01T10:00:00Z"), unix seconds, or a Go
 * duration before now ("10m"). */
static int logs_parse_since(const char *s, int64_t *out_ms, char *errmsg)
{
    int64_t ns;
    struct tm tm = {0};
    char *end;
    if (s == NULL || s[0] == '\0') {
        *out_ms = 0;
        return 0;
    }
    if (cli_parse_duration(s, &ns, errmsg) == 0) {
        *out_ms = cli_now_ms() - ns / 1000000;
        return 0;
    }
    double secs = strtod(s, &end);
    if (end != s && *end == '\0') {
        *out_ms = (int64_t)(secs * 1000);
        return 0;
    }
    end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (end == NULL) {
        end = strptime(s, "%Y-%m-%d", &tm);
    }
    if (end != NULL) {
        int64_t ms = (int64_t)timegm(&tm) * 1000;
        if (*end == '.') {
            double frac = strtod(end, &end);
            ms += (int64_t)(frac * 1000);
        }
        if (*end == 'Z' || *end == '\0') {
            *out_ms = ms;
            return 0;
        }
    }
    errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                  "invalid value for \"since\": could not parse \"%s\" as a time or a duration",
                  s);
    return SWARM_EINVAL;
}

int cmd_service_logs(struct cli_ctx *ctx, int argc, char **argv)
{
    struct logs_run r = {.ctx = ctx};
    const char *tail = "all", *since = NULL;
    bool follow = false, details = false;
    struct cli_flag flags[] = {
        {0, "details", CLI_FLAG_BOOL, &details, "Show extra details provided to logs", NULL,
         false, NULL},
        {'f', "follow", CLI_FLAG_BOOL, &follow, "Follow log output", NULL, false, NULL},
        {0, "no-resolve", CLI_FLAG_BOOL, &r.no_resolve, "Do not map IDs to Names in output",
         NULL, false, NULL},
        {0, "no-task-ids", CLI_FLAG_BOOL, &r.fmt.no_task_ids, "Do not include task IDs in output",
         NULL, false, NULL},
        {0, "no-trunc", CLI_FLAG_BOOL, &r.fmt.no_trunc, "Do not truncate output", NULL, false,
         NULL},
        {0, "raw", CLI_FLAG_BOOL, &r.fmt.raw, "Do not neatly format logs", NULL, false, NULL},
        {0, "since", CLI_FLAG_STRING, &since,
         "Show logs since timestamp (e.g. \"2013-01-02T13:23:37Z\") or relative (e.g. \"42m\" "
         "for 42 minutes)",
         "string", false, NULL},
        {'n', "tail", CLI_FLAG_STRING, &tail, "Number of lines to show from the end of the logs",
         "string", false, NULL},
        {'t', "timestamps", CLI_FLAG_BOOL, &r.fmt.timestamps, "Show timestamps", NULL, false,
         NULL},
        {0},
    };
    struct cli_spec spec = {"swarmctl service logs", "[OPTIONS] SERVICE|TASK",
                            "Fetch the logs of a service or task", NULL, CLI_ARGS_EXACT, 1, 0,
                            flags, false};
    Swarm__SubscribeLogsRequest req = SWARM__SUBSCRIBE_LOGS_REQUEST__INIT;
    Swarm__LogSelector sel = SWARM__LOG_SELECTOR__INIT;
    Swarm__LogOptions opts = SWARM__LOG_OPTIONS__INIT;
    struct cli_reply srep, trep = {0};
    char **pos, err[SWARM_ERRMSG_SIZE], *id;
    int npos, rc;
    (void)details;
    if (!cli_cmd_parse(ctx, &spec, argc, argv, &pos, &npos, &rc)) {
        return rc;
    }
    opts.follow = follow;
    opts.tail = -1;
    if (strcmp(tail, "all") != 0 && tail[0] != '\0') {
        if (cli_parse_int(tail, &opts.tail, err) != 0 || opts.tail < 0) {
            opts.tail = -1; /* Docker: anything else means all */
        }
    }
    if (logs_parse_since(since, &opts.since_ms, err) != 0) {
        free(pos);
        return cli_cmd_errorf(ctx, "%s", err);
    }
    Swarm__Service *svc = cli_service_get(ctx, pos[0], &srep);
    Swarm__Task *task = NULL;
    if (svc == NULL && srep.status == API_NOT_FOUND) {
        Swarm__GetTaskRequest treq = SWARM__GET_TASK_REQUEST__INIT;
        treq.task_id = pos[0];
        if (cli_conn_call(ctx->conn, &swarm__control__descriptor, "GetTask", &treq.base,
                          &trep) == 0) {
            task = ((Swarm__GetTaskResponse *)trep.resp)->task;
        }
        if (task == NULL && !trep.unreachable) {
            rc = cli_cmd_errorf(ctx, "No such service or task: %s", pos[0]);
            goto out;
        }
    }
    if (svc == NULL && task == NULL) {
        rc = cli_conn_report(ctx->conn, trep.status != API_OK ? &trep : &srep, ctx->err);
        goto out;
    }
    id = svc != NULL ? svc->id : task->id;
    if (svc != NULL) {
        sel.service_ids = &id;
        sel.n_service_ids = 1;
    } else {
        sel.task_ids = &id;
        sel.n_task_ids = 1;
    }
    req.selector = &sel;
    req.options = &opts;
    logs_preload(&r, svc != NULL ? svc->id : NULL, task);
    rc = logs_stream(&r, &req);
out:
    for (size_t i = 0; i < r.n_queue; i++) {
        swarm__subscribe_logs_message__free_unpacked(r.queue[i], NULL);
    }
    free(r.queue);
    logs_names_free(r.tasks);
    logs_names_free(r.nodes);
    cli_cmd_free(srep.resp);
    cli_cmd_free(trep.resp);
    free(pos);
    return rc;
}
