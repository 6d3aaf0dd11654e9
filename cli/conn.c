/* Blocking calls over the async RPC client.
 *
 * Happy path of cli_conn_call: (first call only) api_client_connect_unix ->
 * run the loop until conn_connect_cb -> api_client_unary -> run the loop
 * until conn_response_cb copies the answer -> return.
 * Failure paths: the dial fails at once or in conn_connect_cb -> FAILED,
 * every call reports "unreachable"; the call fails -> its status and message;
 * the deadline passes -> the client ends the call with DEADLINE_EXCEEDED;
 * the loop runs dry without an answer (a bug below us) -> UNAVAILABLE rather
 * than a hang. */
#include "conn.h"
#include "pages.h"

#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "err.h"
#include "format.h"
#include "pbcopy.h"

const char *cli_conn_socket_path(const char *flag)
{
    return cli_resolve_socket(flag, getenv("SWARM_SOCKET"), CLI_DEFAULT_SOCKET);
}

int cli_conn_init(struct cli_conn *c, const char *path)
{
    memset(c, 0, sizeof *c);
    snprintf(c->path, sizeof c->path, "%s", path);
    c->timeout_ms = CLI_DEFAULT_TIMEOUT_MS;
    if (uv_loop_init(&c->loop) != 0) {
        return -1;
    }
    c->client = api_client_new(&c->loop, API_DEFAULT_MAX_MSG);
    if (c->client == NULL) {
        uv_loop_close(&c->loop);
        return -1;
    }
    return 0;
}

struct conn_wait {
    bool done;
    struct cli_reply *reply;
    struct cli_conn *conn;
};

static void conn_connect_cb(struct api_client *client, int status,
                            const char *errmsg, void *data)
{
    struct conn_wait *w = data;
    w->done = true;
    if (status == 0) {
        w->conn->state = CLI_CONN_CONNECTED;
        return;
    }
    w->conn->state = CLI_CONN_FAILED;
    snprintf(w->conn->errmsg, sizeof w->conn->errmsg, "%s",
             errmsg != NULL ? errmsg : swarm_strerror(status));
}

/* Run the loop until *done; false if it ran dry first. */
static bool conn_run_until(struct cli_conn *c, const bool *done)
{
    while (!*done) {
        if (uv_run(&c->loop, UV_RUN_ONCE) == 0 && !*done) {
            return false;
        }
    }
    return true;
}

static void conn_dial(struct cli_conn *c)
{
    struct conn_wait w = {.conn = c};
    int rv = api_client_connect_unix(c->client, c->path, conn_connect_cb, &w);
    if (rv != 0) {
        c->state = CLI_CONN_FAILED;
        snprintf(c->errmsg, sizeof c->errmsg, "%s", swarm_strerror(rv));
        return;
    }
    if (!conn_run_until(c, &w.done)) {
        c->state = CLI_CONN_FAILED;
        snprintf(c->errmsg, sizeof c->errmsg, "connection never completed");
    }
}

int cli_conn_dial(struct cli_conn *c)
{
    if (c->state == CLI_CONN_IDLE) {
        conn_dial(c);
    }
    return c->state == CLI_CONN_CONNECTED ? 0 : -1;
}

/* The answer is freed when this returns: keep a copy by re-encoding it. */
static ProtobufCMessage *conn_copy_message(const ProtobufCMessage *m)
{
    return pb_copy(m);
}

static void conn_response_cb(enum api_status status, const char *message,
                             const ProtobufCMessage *resp, void *data)
{
    struct conn_wait *w = data;
    struct cli_reply *r = w->reply;
    w->done = true;
    r->status = status;
    snprintf(r->message, sizeof r->message, "%s", message != NULL ? message : "");
    if (status == API_OK && resp != NULL) {
        r->resp = conn_copy_message(resp);
        if (r->resp == NULL) {
            r->status = API_INTERNAL;
            snprintf(r->message, sizeof r->message, "out of memory");
        }
    } else if (status == API_UNAVAILABLE && !api_client_connected(w->conn->client)) {
        /* The connection itself went away: swarmd stopped or crashed. */
        r->unreachable = true;
    }
}

static int conn_call_one(struct cli_conn *c, const ProtobufCServiceDescriptor *svc,
                         const char *method, const ProtobufCMessage *req,
                         struct cli_reply *r)
{
    struct conn_wait w = {.reply = r, .conn = c};
    memset(r, 0, sizeof *r);
    if (c->state == CLI_CONN_IDLE) {
        conn_dial(c);
    }
    if (c->state == CLI_CONN_FAILED) {
        r->status = API_UNAVAILABLE;
        r->unreachable = true;
        snprintf(r->message, sizeof r->message, "%s", c->errmsg);
        return -1;
    }
    int rv = api_client_unary(c->client, svc, method, req, c->timeout_ms,
                              conn_response_cb, &w);
    if (rv != 0) {
        r->status = API_INTERNAL;
        snprintf(r->message, sizeof r->message, "%s: %s", method, swarm_strerror(rv));
        return -1;
    }
    if (!conn_run_until(c, &w.done)) {
        r->status = API_UNAVAILABLE;
        r->unreachable = true;
        snprintf(r->message, sizeof r->message, "no answer from swarmd");
    }
    return r->status == API_OK ? 0 : -1;
}

int cli_conn_report(const struct cli_conn *c, const struct cli_reply *r,
                    FILE *err)
{
    if (r->unreachable) {
        fprintf(err, "Cannot connect to swarmd at unix://%s. Is swarmd running?\n",
                c->path);
    } else if (r->status == API_DEADLINE_EXCEEDED) {
        fprintf(err, "Error response from daemon: %s\n",
                *r->message ? cli_esc(r->message) : "context deadline exceeded");
    } else {
        /* The daemon may quote what a user or a node sent: escaped. */
        fprintf(err, "Error response from daemon: %s\n",
                *r->message ? cli_esc(r->message) : api_status_name(r->status));
    }
    return 1;
}

static void conn_closed_cb(void *data)
{
    *(bool *)data = true;
}

void cli_conn_close(struct cli_conn *c)
{
    bool closed = false;
    if (c->client == NULL) {
        return;
    }
    api_client_close(c->client, conn_closed_cb, &closed);
    c->client = NULL;
    conn_run_until(c, &closed);
    uv_run(&c->loop, UV_RUN_DEFAULT); /* let the last handles close */
    uv_loop_close(&c->loop);
}

/* A paged list reply (pages.h) is followed by its next pages, merged into
 * r->resp: the caller sees the whole list. A page that fails fails the
 * call (a partial list is never shown as the whole). */
int cli_conn_call(struct cli_conn *c, const ProtobufCServiceDescriptor *svc,
                  const char *method, const ProtobufCMessage *req,
                  struct cli_reply *r)
{
    char *prev = NULL;
    if (conn_call_one(c, svc, method, req, r) != 0) {
        return -1;
    }
    for (size_t pages = 1; cli_pages_token(r->resp) != NULL; pages++) {
        const char *tok = cli_pages_token(r->resp);
        struct cli_reply next;
        ProtobufCMessage *nreq;
        if (pages >= CLI_PAGES_MAX || (prev != NULL && strcmp(prev, tok) == 0)) {
            snprintf(r->message, sizeof r->message, "%s: the list does not end", method);
            break;
        }
        free(prev);
        if ((prev = strdup(tok)) == NULL || (nreq = cli_pages_request(req, prev)) == NULL) {
            snprintf(r->message, sizeof r->message, "%s: out of memory", method);
            break;
        }
        int rv = conn_call_one(c, svc, method, nreq, &next);
        free(nreq);
        if (rv != 0) {
            protobuf_c_message_free_unpacked(r->resp, NULL);
            *r = next;
            free(prev);
            return -1;
        }
        rv = cli_pages_merge(r->resp, next.resp);
        protobuf_c_message_free_unpacked(next.resp, NULL);
        if (rv != 0) {
            snprintf(r->message, sizeof r->message, "%s: out of memory", method);
            break;
        }
    }
    free(prev);
    if (cli_pages_token(r->resp) != NULL) {
        protobuf_c_message_free_unpacked(r->resp, NULL);
        r->resp = NULL;
        r->status = API_INTERNAL;
        return -1;
    }
    return 0;
}
