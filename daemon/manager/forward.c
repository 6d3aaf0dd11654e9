/* Routing of writes: the leader serves them, a follower forwards them to the
 * leader over mutual TLS with its own manager certificate, and while there
 * is no leader a call waits a bounded time for one.
 *
 * A forwarded call names its original caller (API_FORWARDED_HEADER): the
 * leader checks that we are a manager and then the caller, both against its
 * own store, and its handlers see the caller, not us.
 *
 * Reads are routed the same way, so that a follower answers what the leader
 * knows (a compare-and-set that follows sees the current version), but when
 * no leader can be reached they answer from the local store at once.
 *
 *   handler wrapper -> leader?        -> local handler
 *                   -> leader known   -> forward (queued until the connection
 *                                        to the leader is up) -> relay answer
 *                   -> no leader      -> poll every ROUTE_POLL_MS, re-route;
 *                                        after ROUTE_WAIT_MS (or at once when
 *                                        no leader was seen for that long):
 *                                        UNAVAILABLE with Docker's message.
 * A forwarded call that fails in transport is answered UNAVAILABLE; the
 * caller may retry (writes are compare-and-set). */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "forward.h"
#include "log.h"
#include "pbcopy.h"

#define ROUTE_POLL_MS 50
#define ROUTE_WAIT_MS 3000
#define FORWARD_TIMEOUT_MS 15000
#define ROUTE_POOL_SIZE 32

struct route {
    const ProtobufCServiceDescriptor *svc;
    const char *method;
    api_handler_cb local;
    struct manager_slot *slot;
    bool read; /* served locally when the leader cannot be reached */
};

struct forward {
    const struct menv *env;
    struct forward_config cfg;
    struct api_client *leader_client;
    char leader_client_addr[64];
    bool leader_connecting;
    struct routed_call *queue; /* waiting for the leader connection */
    uv_timer_t watch;          /* watches the leader while forwarding */
    /* In flight (close after drain): routed calls, leader connections
     * closing, and the watch timer until its close callback. */
    unsigned routed;
    unsigned clients_closing;
    bool timer_open;
    bool closing;
    void (*close_cb)(void *data);
    void *close_data;
};

struct routed_call {
    struct api_call *call;
    const ProtobufCMessage *req;
    const struct route *route;
    struct forward *f;
    uv_timer_t timer;
    uint64_t started;
    struct routed_call *next; /* queue waiting for the leader connection */
};

static void route_call(struct routed_call *rc);

static void forward_maybe_free(struct forward *f)
{
    if (!f->closing || f->routed > 0 || f->clients_closing > 0 || f->timer_open) {
        return;
    }
    void (*cb)(void *) = f->close_cb;
    void *data = f->close_data;
    free(f);
    if (cb != NULL) {
        cb(data);
    }
}

static void client_closed_cb(void *data)
{
    struct forward *f = data;
    f->clients_closing--;
    forward_maybe_free(f);
}

/* Drop the connection to the leader; its calls end UNAVAILABLE. */
static void leader_client_drop(struct forward *f)
{
    struct api_client *c = f->leader_client;
    f->leader_client = NULL;
    f->leader_connecting = false;
    if (c != NULL) {
        f->clients_closing++;
        api_client_close(c, client_closed_cb, f);
    }
}

static void routed_free_cb(uv_handle_t *h)
{
    struct routed_call *rc = h->data;
    struct forward *f = rc->f;
    free(rc);
    f->routed--;
    forward_maybe_free(f);
}

static void routed_done(struct routed_call *rc)
{
    uv_close((uv_handle_t *)&rc->timer, routed_free_cb);
}

/* ------------------------------------------------------------- forwarding */

static void forward_answer_cb(enum api_status status, const char *message,
                              const ProtobufCMessage *resp, void *data)
{
    struct routed_call *rc = data;
    if (status == API_OK && resp != NULL) {
        api_call_reply(rc->call, resp);
    } else if (status == API_UNAVAILABLE && rc->route->read && rc->f == rc->route->slot->forward) {
        /* The leader is gone: the last known state is better than nothing. */
        rc->route->local(rc->call, rc->req, rc->route->slot);
    } else if (status == API_UNAVAILABLE && resp == NULL && message != NULL &&
               strstr(message, "swarm does not have a leader") == NULL) {
        api_call_error(rc->call, API_UNAVAILABLE, "could not reach the leader: %s", message);
    } else {
        api_call_error(rc->call, status, "%s", message ? message : "");
    }
    routed_done(rc);
}

static void forward_now(struct forward *f, struct routed_call *rc)
{
    uint64_t timeout = FORWARD_TIMEOUT_MS;
    uint64_t deadline = api_call_deadline(rc->call);
    if (deadline != 0) {
        uint64_t now = uv_now(f->env->loop);
        timeout = deadline > now ? deadline - now : 1;
    }
    /* The leader authorizes us (a current manager) and then the caller we
     * name, against its own store. */
    if (api_client_unary_as(f->leader_client, rc->route->svc, rc->route->method, rc->req,
                            timeout, api_call_peer(rc->call), forward_answer_cb, rc) != 0) {
        api_call_error(rc->call, API_UNAVAILABLE, "could not reach the leader");
        routed_done(rc);
    }
}

static void leader_connected_cb(struct api_client *c, int status, const char *errmsg, void *data)
{
    struct forward *f = data;
    struct routed_call *q;
    if (c != f->leader_client) {
        return; /* dropped while connecting (forward_close) */
    }
    q = f->queue;
    f->queue = NULL;
    f->leader_connecting = false;
    if (status != 0) {
        log_warn("manager", "connecting to the leader at %s: %s", f->leader_client_addr,
                 errmsg ? errmsg : swarm_strerror(status));
    }
    while (q != NULL) {
        struct routed_call *next = q->next;
        if (status == 0) {
            forward_now(f, q);
        } else if (q->route->read) {
            q->route->local(q->call, q->req, q->route->slot);
            routed_done(q);
        } else {
            api_call_error(q->call, API_UNAVAILABLE, "could not reach the leader at %s: %s",
                           f->leader_client_addr, errmsg ? errmsg : swarm_strerror(status));
            routed_done(q);
        }
        q = next;
    }
    if (status != 0) {
        leader_client_drop(f);
    }
}

/* Calls forwarded to a leader that is no longer the leader (it may have
 * vanished without closing its connection: a partition) end at once with
 * UNAVAILABLE instead of waiting for their deadline. */
static void forward_watch_cb(uv_timer_t *t)
{
    struct forward *f = t->data;
    raft_id id = 0;
    const char *addr = NULL;
    if (f->closing || f->leader_client == NULL) {
        uv_timer_stop(t);
        return;
    }
    menv_leader(f->env, &id, &addr);
    if (id != 0 && addr != NULL && strcmp(addr, f->leader_client_addr) == 0) {
        return;
    }
    if (f->leader_connecting) {
        return; /* the connect callback ends the queued calls */
    }
    leader_client_drop(f);
    uv_timer_stop(t);
}

static void forward(struct forward *f, struct routed_call *rc, const char *leader_addr)
{
    if (f->leader_client != NULL && !f->leader_connecting &&
        (strcmp(f->leader_client_addr, leader_addr) != 0 ||
         !api_client_connected(f->leader_client))) {
        leader_client_drop(f);
    }
    if (f->leader_client == NULL) {
        SSL_CTX *ctx = f->cfg.client_ctx(f->cfg.impl);
        if (ctx == NULL) {
            api_call_error(rc->call, API_INTERNAL, "TLS setup: no client context");
            routed_done(rc);
            return;
        }
        f->leader_client = api_client_new(f->env->loop, API_DEFAULT_MAX_MSG);
        if (f->leader_client == NULL) {
            api_call_error(rc->call, API_RESOURCE_EXHAUSTED, "out of memory");
            routed_done(rc);
            return;
        }
        snprintf(f->leader_client_addr, sizeof f->leader_client_addr, "%s", leader_addr);
        uv_timer_start(&f->watch, forward_watch_cb, 50, 50);
        f->leader_connecting = true;
        if (api_client_connect_tls(f->leader_client, leader_addr, ctx, NULL, 5000,
                                   leader_connected_cb, f) != 0) {
            leader_client_drop(f);
            api_call_error(rc->call, API_UNAVAILABLE, "could not reach the leader at %s",
                           leader_addr);
            routed_done(rc);
            return;
        }
    }
    if (f->leader_connecting) {
        rc->next = f->queue;
        f->queue = rc;
        return;
    }
    forward_now(f, rc);
}

/* ---------------------------------------------------------------- routing */

static void route_timer_cb(uv_timer_t *t)
{
    route_call(t->data);
}

static void route_call(struct routed_call *rc)
{
    const struct manager_slot *slot = rc->route->slot;
    struct forward *f = rc->f;
    raft_id leader = 0;
    const char *addr = NULL;

    if (slot->forward != f || !slot->running) {
        api_call_error(rc->call, API_UNAVAILABLE, "%s", MANAGER_NOT_MANAGER_MSG);
        routed_done(rc);
        return;
    }
    if (api_call_cancelled(rc->call)) {
        api_call_error(rc->call, API_CANCELLED, "cancelled");
        routed_done(rc);
        return;
    }
    if (menv_is_leader(f->env)) {
        rc->route->local(rc->call, rc->req, rc->route->slot);
        routed_done(rc);
        return;
    }
    menv_leader(f->env, &leader, &addr);
    if (leader != 0 && addr != NULL) {
        forward(f, rc, addr);
        return;
    }
    /* No leader (or we are a leader still committing its barrier): reads
     * answer from the local store; writes wait a little, unless the swarm
     * has been leaderless for long already. */
    if (rc->route->read) {
        rc->route->local(rc->call, rc->req, rc->route->slot);
        routed_done(rc);
        return;
    }
    uint64_t now = uv_now(f->env->loop);
    if (now - rc->started >= ROUTE_WAIT_MS ||
        f->cfg.leaderless_ms(f->cfg.impl) >= ROUTE_WAIT_MS) {
        api_call_error(rc->call, API_UNAVAILABLE, "%s", MANAGER_NO_LEADER_MSG);
        routed_done(rc);
        return;
    }
    uv_timer_start(&rc->timer, route_timer_cb, ROUTE_POLL_MS, 0);
}

static void routed_entry_cb(struct api_call *call, const ProtobufCMessage *req, void *data)
{
    const struct route *route = data;
    const struct manager_slot *slot = mslot_require(call, route->slot);
    struct routed_call *rc;
    if (slot == NULL) {
        return;
    }
    if (slot->forward == NULL) {
        api_call_error(call, API_UNAVAILABLE, "%s", MANAGER_NOT_MANAGER_MSG);
        return;
    }
    rc = calloc(1, sizeof *rc);
    if (rc == NULL) {
        api_call_error(call, API_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    rc->call = call;
    rc->req = req;
    rc->route = route;
    rc->f = slot->forward;
    rc->started = uv_now(rc->f->env->loop);
    uv_timer_init(rc->f->env->loop, &rc->timer);
    rc->timer.data = rc;
    rc->f->routed++;
    route_call(rc);
}

struct route *forward_route_new(const ProtobufCServiceDescriptor *svc, const char *method,
                                bool read, api_handler_cb local, struct manager_slot *slot)
{
    /* Routes are registered once per process and live as long as it: a
     * fixed pool, so nothing is left allocated at exit. */
    static struct route pool[ROUTE_POOL_SIZE];
    static size_t used;
    struct route *r;
    assert(used < ROUTE_POOL_SIZE); /* more routed methods than the pool holds */
    r = &pool[used++];
    r->svc = svc;
    r->method = method;
    r->local = local;
    r->slot = slot;
    r->read = read;
    return r;
}

void forward_route_call(struct route *route, struct api_call *call, const ProtobufCMessage *req)
{
    routed_entry_cb(call, req, route);
}

void forward_register_routed(struct api_server *server, const ProtobufCServiceDescriptor *svc,
                             const char *method, unsigned roles, bool read,
                             api_handler_cb local, struct manager_slot *slot)
{
    struct route *r = forward_route_new(svc, method, read, local, slot);
    api_server_register(server, svc, method, roles, routed_entry_cb, r);
}

/* ------------------------------------------------------------ lifecycle */

struct forward *forward_new(const struct menv *env, const struct forward_config *cfg)
{
    struct forward *f = calloc(1, sizeof *f);
    if (f == NULL) {
        return NULL;
    }
    f->env = env;
    f->cfg = *cfg;
    uv_timer_init(env->loop, &f->watch);
    f->watch.data = f;
    f->timer_open = true;
    return f;
}

static void watch_closed_cb(uv_handle_t *h)
{
    struct forward *f = h->data;
    f->timer_open = false;
    forward_maybe_free(f);
}

void forward_close(struct forward *f, void (*cb)(void *data), void *data)
{
    struct routed_call *q = f->queue;
    f->closing = true;
    f->close_cb = cb;
    f->close_data = data;
    f->queue = NULL;
    f->routed++; /* hold: the calls failed below must not free f under us */
    while (q != NULL) {
        struct routed_call *next = q->next;
        api_call_error(q->call, API_UNAVAILABLE, "manager shutting down");
        routed_done(q);
        q = next;
    }
    leader_client_drop(f);
    uv_close((uv_handle_t *)&f->watch, watch_closed_cb);
    f->routed--;
    forward_maybe_free(f);
}

/* ------------------------------------------------------ stream relaying */

/* A server-streaming call relayed from a follower to the leader on a
 * connection of its own (a stream may last as long as its client wants,
 * unlike the unary calls sharing the forwarder's leader connection):
 *   connect (TLS, our manager certificate) -> api_client_stream -> each
 *   message relayed with api_call_send -> the leader's end status relayed.
 * Failure paths: connect fails -> UNAVAILABLE; our caller goes away ->
 *   the relayed call is cancelled, then the call finished CANCELLED. The
 *   relay is freed in its client's close callback. */
struct stream_relay {
    struct api_call *call; /* NULL once finished */
    struct api_client *client;
    struct api_client_call *handle;
    const ProtobufCServiceDescriptor *svc;
    const char *method;
    ProtobufCMessage *req; /* owned copy until sent */
    bool cancelled;
    char addr[64];
    struct api_peer origin; /* the caller, named to the leader */
};

static void relay_closed_cb(void *data)
{
    struct stream_relay *r = data;
    if (r->req != NULL) {
        protobuf_c_message_free_unpacked(r->req, NULL);
    }
    free(r);
}

static void relay_end(struct stream_relay *r, enum api_status status, const char *message)
{
    struct api_call *call = r->call;
    r->call = NULL;
    if (call != NULL) {
        if (status == API_OK) {
            api_call_finish(call);
        } else {
            api_call_error(call, status, "%s", message != NULL ? message : "");
        }
    }
    if (r->client != NULL) {
        struct api_client *c = r->client;
        r->client = NULL;
        api_client_close(c, relay_closed_cb, r);
    }
}

static void relay_msg_cb(const ProtobufCMessage *msg, void *data)
{
    struct stream_relay *r = data;
    if (r->call != NULL && !r->cancelled) {
        api_call_send(r->call, msg);
    }
}

static void relay_done_cb(enum api_status status, const char *message,
                          const ProtobufCMessage *resp, void *data)
{
    struct stream_relay *r = data;
    (void)resp;
    r->handle = NULL;
    if (status == API_UNAVAILABLE) {
        char buf[512];
        snprintf(buf, sizeof buf, "could not reach the leader at %s: %s", r->addr,
                 message != NULL ? message : "");
        relay_end(r, status, buf);
        return;
    }
    relay_end(r, status, message);
}

static void relay_connected_cb(struct api_client *c, int status, const char *errmsg, void *data)
{
    struct stream_relay *r = data;
    int rv;
    if (r->client == NULL) {
        return; /* already ended */
    }
    if (r->cancelled) {
        relay_end(r, API_CANCELLED, "cancelled");
        return;
    }
    if (status != 0) {
        char buf[512];
        snprintf(buf, sizeof buf, "could not reach the leader at %s: %s", r->addr,
                 errmsg != NULL ? errmsg : swarm_strerror(status));
        relay_end(r, API_UNAVAILABLE, buf);
        return;
    }
    rv = api_client_stream_as(c, r->svc, r->method, r->req, 0, &r->origin, relay_msg_cb,
                              relay_done_cb, r, &r->handle);
    protobuf_c_message_free_unpacked(r->req, NULL);
    r->req = NULL;
    if (rv != 0) {
        relay_end(r, API_UNAVAILABLE, "could not reach the leader");
    }
}

static void relay_cancel_cb(struct api_call *call, void *data)
{
    struct stream_relay *r = data;
    (void)call;
    r->cancelled = true;
    if (r->handle != NULL) {
        api_client_call_cancel(r->handle); /* relay_done_cb ends the call */
    }
}

int forward_stream(struct forward *f, struct api_call *call, const ProtobufCServiceDescriptor *svc,
                   const char *method, const ProtobufCMessage *req, const char *leader_addr)
{
    SSL_CTX *ctx = f->cfg.client_ctx(f->cfg.impl);
    struct stream_relay *r;
    if (ctx == NULL) {
        api_call_error(call, API_INTERNAL, "TLS setup: no client context");
        return SWARM_ETLS;
    }
    r = calloc(1, sizeof *r);
    if (r == NULL || (r->req = pb_copy(req)) == NULL ||
        (r->client = api_client_new(f->env->loop, API_DEFAULT_MAX_MSG)) == NULL) {
        if (r != NULL && r->req != NULL) {
            protobuf_c_message_free_unpacked(r->req, NULL);
        }
        free(r);
        api_call_error(call, API_RESOURCE_EXHAUSTED, "out of memory");
        return SWARM_ENOMEM;
    }
    r->call = call;
    r->origin = *api_call_peer(call);
    r->svc = svc;
    r->method = method;
    snprintf(r->addr, sizeof r->addr, "%s", leader_addr);
    api_call_on_cancel(call, relay_cancel_cb, r);
    if (api_client_connect_tls(r->client, leader_addr, ctx, NULL, 5000, relay_connected_cb,
                               r) != 0) {
        relay_end(r, API_UNAVAILABLE, "could not reach the leader");
        return SWARM_EUNAVAIL;
    }
    return 0;
}
