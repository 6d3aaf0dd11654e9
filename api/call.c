/* One gRPC call on an HTTP/2 stream: request validation, decoding,
 * dispatch, the response (data provider + trailers), deadline and
 * cancellation. The life of a call is described at the top of server.c. */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "pbwire.h"
#include "server_int.h"
#include "smetrics.h"

/* ---------------------------------------------------------------- calls */

static void call_free_cb(uv_handle_t *h)
{
    struct api_call *call = h->data;
    if (call->req != NULL) {
        protobuf_c_message_free_unpacked(call->req, NULL);
    }
    grpc_buf_free(&call->in);
    grpc_buf_free(&call->out);
    free(call);
}

/* The request bytes are no longer needed: out of the connection's budget. */
static void call_in_release(struct api_call *call)
{
    if (call->conn != NULL) {
        call->conn->buffered -= call->in.len;
    }
    grpc_buf_free(&call->in);
}

static void conn_rr_remove(struct server_conn *sc)
{
    struct api_server *s = sc->s;
    if (!sc->in_rr) {
        return;
    }
    if (sc->rr_prev != NULL) {
        sc->rr_prev->rr_next = sc->rr_next;
    } else {
        s->rr_head = sc->rr_next;
    }
    if (sc->rr_next != NULL) {
        sc->rr_next->rr_prev = sc->rr_prev;
    } else {
        s->rr_tail = sc->rr_prev;
    }
    sc->rr_prev = sc->rr_next = NULL;
    sc->in_rr = false;
}

static void conn_rr_append(struct server_conn *sc)
{
    struct api_server *s = sc->s;
    sc->rr_prev = s->rr_tail;
    sc->rr_next = NULL;
    if (s->rr_tail != NULL) {
        s->rr_tail->rr_next = sc;
    } else {
        s->rr_head = sc;
    }
    s->rr_tail = sc;
    sc->in_rr = true;
}

static void call_dequeue(struct api_call *call)
{
    struct server_conn *sc = call->conn;
    if (!call->decode_queued) {
        return;
    }
    if (call->dq_prev != NULL) {
        call->dq_prev->dq_next = call->dq_next;
    } else {
        sc->dq_head = call->dq_next;
    }
    if (call->dq_next != NULL) {
        call->dq_next->dq_prev = call->dq_prev;
    } else {
        sc->dq_tail = call->dq_prev;
    }
    call->dq_prev = call->dq_next = NULL;
    call->decode_queued = false;
    if (sc->dq_head == NULL) {
        conn_rr_remove(sc);
    }
}

static void call_unlink(struct api_call *call)
{
    struct server_conn *sc = call->conn;
    if (sc == NULL) {
        return;
    }
    call_dequeue(call);
    call_in_release(call);
    if (call->unacked > 0) {
        /* Connection-level window held for this stream comes back. */
        if (!sc->closing && sc->io.session != NULL) {
            nghttp2_session_consume(sc->io.session, call->stream_id, call->unacked);
        }
        sc->unacked -= call->unacked;
        call->unacked = 0;
    }
    sc->queued -= call->out.len - call->out.off;
    if (call->prev != NULL) {
        call->prev->next = call->next;
    } else {
        sc->calls = call->next;
    }
    if (call->next != NULL) {
        call->next->prev = call->prev;
    }
    call->prev = call->next = NULL;
    call->conn = NULL;
}

static void call_maybe_free(struct api_call *call)
{
    if (call->freeing || !call->stream_done ||
        (call->dispatched && !call->handler_done)) {
        return;
    }
    call->freeing = true;
    call_unlink(call);
    uv_close((uv_handle_t *)&call->timer, call_free_cb);
}

static void call_cancel(struct api_call *call)
{
    void (*cb)(struct api_call *, void *) = call->on_cancel;
    if (call->cancelled) {
        return;
    }
    call->cancelled = true;
    uv_timer_stop(&call->timer);
    call->on_cancel = NULL;
    if (cb != NULL && call->dispatched && !call->handler_done) {
        cb(call, call->on_cancel_data);
    }
}

static ssize_t call_read_cb(nghttp2_session *session, int32_t stream_id,
                            uint8_t *buf, size_t length, uint32_t *flags,
                            nghttp2_data_source *source, void *user_data)
{
    struct api_call *call = source->ptr;
    struct server_conn *sc = user_data;
    size_t avail = call->out.len - call->out.off;
    size_t n = avail < length ? avail : length;
    if (n > 0) {
        memcpy(buf, call->out.data + call->out.off, n);
    }
    call->out.off += n;
    sc->queued -= n;
    if (n > 0) {
        sc->out_at = uv_now(call->loop);
    }
    if (call->out.off == call->out.len) {
        if (call->out.cap > CALL_OUT_KEEP) {
            grpc_buf_free(&call->out);
        }
        call->out.off = call->out.len = 0;
    }
    if (n == avail && call->trailers_ready) {
        char status[16], msg[1600];
        snprintf(status, sizeof status, "%d", call->trailer_status);
        grpc_message_encode(call->trailer_msg, msg, sizeof msg);
        nghttp2_nv nva[] = {H2_NV("grpc-status", status),
                            H2_NV("grpc-message", msg)};
        *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
        nghttp2_submit_trailer(session, stream_id, nva, msg[0] ? 2 : 1);
        return (ssize_t)n;
    }
    if (n == 0) {
        return NGHTTP2_ERR_DEFERRED;
    }
    return (ssize_t)n;
}

/* Make sure response HEADERS with a data provider are on their way, or wake
 * the provider up if they already are. */
static void call_push(struct api_call *call)
{
    struct server_conn *sc = call->conn;
    if (call->headers_sent) {
        nghttp2_session_resume_data(sc->io.session, call->stream_id);
        return;
    }
    nghttp2_nv nva[] = {H2_NV(":status", "200"),
                        H2_NV("content-type", "application/grpc")};
    nghttp2_data_provider prd = {.source.ptr = call, .read_callback = call_read_cb};
    call->headers_sent = true;
    nghttp2_submit_response(sc->io.session, call->stream_id, nva, 2, &prd);
}

/* Submit the final status: as trailers after data, or as a trailers-only
 * response (or an HTTP error when http_status != 200). Does not flush. */
static void call_respond(struct api_call *call, int http_status, int status,
                         const char *msg)
{
    struct server_conn *sc = call->conn;
    if (call->responded || sc == NULL || sc->closing) {
        return;
    }
    call->responded = true;
    smetrics_rpc_done(call->route != NULL ? call->route->path : NULL, call->streamed, status,
                      call->started_ns);
    uv_timer_stop(&call->timer);
    if (!call->dispatched) {
        call_in_release(call);
        call_conn_refill(sc);
    }
    snprintf(call->trailer_msg, sizeof call->trailer_msg, "%s", msg ? msg : "");
    call->trailer_status = status;
    if (call->headers_sent || call->out.len > call->out.off) {
        call->trailers_ready = true;
        call_push(call);
        return;
    }
    char hs[8], st[16], em[1600];
    snprintf(hs, sizeof hs, "%d", http_status);
    snprintf(st, sizeof st, "%d", status);
    grpc_message_encode(call->trailer_msg, em, sizeof em);
    nghttp2_nv nva[] = {H2_NV(":status", hs),
                        H2_NV("content-type", "application/grpc"),
                        H2_NV("grpc-status", st), H2_NV("grpc-message", em)};
    call->headers_sent = true;
    nghttp2_submit_response(sc->io.session, call->stream_id, nva,
                            em[0] ? 4 : 3, NULL);
    /* If the request is still coming, tell the client to stop sending, once
     * the response is out (nghttp2 would otherwise reset the stream first). */
    call->rst_after_send = !call->remote_ended;
}

static void call_failf(struct api_call *call, int http_status, int status,
                       const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void call_failf(struct api_call *call, int http_status, int status,
                       const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    call_respond(call, http_status, status, msg);
}

static void call_deadline_cb(uv_timer_t *t);

/* The call's timer fires at the client's deadline or, for a request still
 * arriving, at the end of the time allowed to send it, whichever is first. */
static void call_timer_arm(struct api_call *call)
{
    uint64_t due = call->deadline;
    if (call->req_until != 0 && (due == 0 || call->req_until < due)) {
        due = call->req_until;
    }
    if (due == 0) {
        uv_timer_stop(&call->timer);
        return;
    }
    uint64_t now = uv_now(call->loop);
    uv_timer_start(&call->timer, call_deadline_cb, due > now ? due - now : 0, 0);
}

static void call_deadline_cb(uv_timer_t *t)
{
    struct api_call *call = t->data;
    struct server_conn *sc = call->conn;
    if (call->freeing || call->responded || sc == NULL) {
        return;
    }
    if (!call->remote_ended && call->req_until != 0 &&
        (call->deadline == 0 || call->req_until <= call->deadline)) {
        call_failf(call, 200, API_DEADLINE_EXCEEDED,
                   "request not received in full within %llu ms",
                   (unsigned long long)sc->lim->call_ms);
    } else {
        call_respond(call, 200, API_DEADLINE_EXCEEDED, "deadline exceeded");
    }
    call_cancel(call);
    if (!sc->closing && h2_flush(&sc->io) != 0) {
        server_conn_close(sc);
    }
}

static const struct api_route *server_route(struct api_server *s,
                                            const char *path)
{
    for (size_t i = 0; i < s->n_routes; i++) {
        if (strcmp(s->routes[i].path, path) == 0) {
            return &s->routes[i];
        }
    }
    return NULL;
}

static const char *role_name(enum api_role role)
{
    switch (role) {
    case API_ROLE_ANONYMOUS: return "anonymous peers";
    case API_ROLE_WORKER: return "workers";
    case API_ROLE_MANAGER: return "managers";
    case API_ROLE_LOCAL: return "the control socket";
    }
    return "?";
}

static bool role_has_cert(enum api_role role)
{
    return role == API_ROLE_WORKER || role == API_ROLE_MANAGER;
}

/* Ask the server's authorizer about `peer`; on refusal the call is failed. */
static bool call_authorize_peer(struct api_call *call, struct api_peer *peer)
{
    struct api_server *s = call->conn->s;
    char msg[SWARM_ERRMSG_SIZE] = "";
    if (s->authorize == NULL || !role_has_cert(peer->role)) {
        return true;
    }
    enum api_status st = s->authorize(peer, s->authorize_data, msg);
    if (st != API_OK) {
        call_failf(call, 200, st, "%s", msg[0] ? msg : "permission denied");
        return false;
    }
    return true;
}

/* Who the call is from, as far as the store says: the direct peer, and for a
 * call a manager forwarded, the original caller it names. A forwarded call
 * from the control socket of a manager acts as that manager: a certificate
 * never grants more than the manager role. */
static bool call_authorize(struct api_call *call)
{
    static struct log_limit forged_limit;
    struct api_peer origin;
    if (!call_authorize_peer(call, &call->peer)) {
        return false;
    }
    if (call->conn->s->authorize != NULL && role_has_cert(call->peer.role) &&
        call->peer.role > call->conn->granted) {
        call->conn->granted = call->peer.role;
    }
    if (call->forwarded[0] == '\0') {
        return true;
    }
    if (call->peer.role != API_ROLE_MANAGER) {
        log_warn_limited(&forged_limit, "api",
                         "refusing call %s from %s (node \"%s\"): forwarded calls are "
                         "accepted from managers only", call->path, call->peer.addr,
                         call->peer.node_id);
        call_failf(call, 200, API_PERMISSION_DENIED,
                   "only managers may forward calls on behalf of others");
        return false;
    }
    if (api_peer_parse_forwarded(call->forwarded, &origin) != 0) {
        call_failf(call, 200, API_INVALID_ARGUMENT, "malformed %s header",
                   API_FORWARDED_HEADER);
        return false;
    }
    if (origin.role == API_ROLE_LOCAL) {
        snprintf(origin.node_id, sizeof origin.node_id, "%s", call->peer.node_id);
        snprintf(origin.cluster_id, sizeof origin.cluster_id, "%s", call->peer.cluster_id);
        origin.role = API_ROLE_MANAGER;
    }
    snprintf(origin.via, sizeof origin.via, "%s", call->peer.node_id);
    if (!call_authorize_peer(call, &origin)) {
        return false;
    }
    call->peer = origin;
    return true;
}

/* The request HEADERS are complete: check them before any data matters. */
static void call_headers_done(struct api_call *call)
{
    struct api_server *s = call->conn->s;
    const char *ct = call->content_type;
    if (strcmp(call->method, "POST") != 0) {
        call_failf(call, 405, API_UNIMPLEMENTED, "method %s not allowed",
                   call->method);
        return;
    }
    if (strncmp(ct, "application/grpc", 16) != 0 ||
        (ct[16] != '\0' && ct[16] != '+' && ct[16] != ';')) {
        call_failf(call, 415, API_INTERNAL,
                   "invalid gRPC request content-type \"%s\"", ct);
        return;
    }
    if (call->encoding[0] != '\0' && strcmp(call->encoding, "identity") != 0) {
        call_failf(call, 200, API_UNIMPLEMENTED,
                   "grpc-encoding \"%s\" is not supported", call->encoding);
        return;
    }
    if (call->timeout[0] != '\0') {
        uint64_t ms;
        if (grpc_timeout_parse(call->timeout, &ms) != 0) {
            call_failf(call, 200, API_INTERNAL, "malformed grpc-timeout \"%s\"",
                       call->timeout);
            return;
        }
        call->deadline = uv_now(call->loop) + ms;
        call_timer_arm(call);
    }
    call->route = server_route(s, call->path);
    if (call->route == NULL) {
        call_failf(call, 200, API_UNIMPLEMENTED, "unknown method %s",
                   call->path);
        return;
    }
    if (!call_authorize(call)) {
        return;
    }
    if ((call->route->roles & call->peer.role) == 0) {
        if (call->peer.role == API_ROLE_ANONYMOUS) {
            call_failf(call, 200, API_UNAUTHENTICATED,
                       "%s requires a client certificate", call->path);
        } else {
            call_failf(call, 200, API_PERMISSION_DENIED,
                       "%s is not allowed for %s", call->path,
                       role_name(call->peer.role));
        }
    }
}

/* Returns whether the bytes are now held in the call's buffer (and count
 * against the connection's budget). */
static bool call_data(struct api_call *call, const uint8_t *data, size_t len)
{
    if (call->responded || call->route == NULL) {
        return false;
    }
    if (grpc_buf_append(&call->in, data, len) != 0) {
        call_failf(call, 200, API_RESOURCE_EXHAUSTED, "out of memory");
        return false;
    }
    call->conn->buffered += len;
    if (call->in.len < GRPC_PREFIX_LEN) {
        return true;
    }
    const uint8_t *p = call->in.data;
    uint32_t n = ((uint32_t)p[1] << 24) | ((uint32_t)p[2] << 16) |
                 ((uint32_t)p[3] << 8) | p[4];
    if (p[0] != 0) {
        call_failf(call, 200, API_UNIMPLEMENTED,
                   "compressed messages are not supported");
    } else if (n > call->max_msg) {
        call_failf(call, 200, API_RESOURCE_EXHAUSTED,
                   "request message of %u bytes exceeds the limit of %zu",
                   n, call->max_msg);
    } else if (call->in.len > GRPC_PREFIX_LEN + (size_t)n) {
        call_failf(call, 200, API_INTERNAL,
                   "more than one request message in a unary request");
    }
    return !call->responded;
}

/* Decode the complete request and hand it to the handler. */
static void call_decode(struct api_call *call)
{
    const struct api_route *r = call->route;
    struct api_server *s = call->conn->s;
    const uint8_t *p = call->in.data + GRPC_PREFIX_LEN;
    size_t len = call->in.len - GRPC_PREFIX_LEN;
    size_t unknown = 0;
    if (call->responded) {
        return;
    }
    s->turn_bytes += len;
    /* protobuf-c keeps every unknown field, one allocation each: a few MiB
     * of them cost a quarter of a second. Count them first, cheaply. */
    if (grpc_unknown_fields(r->input, p, len, API_UNKNOWN_FIELDS_MAX, &unknown) == 0 &&
        unknown > API_UNKNOWN_FIELDS_MAX) {
        call_failf(call, 200, API_INVALID_ARGUMENT,
                   "could not decode request as %s: more than %u unknown fields",
                   r->input->name, API_UNKNOWN_FIELDS_MAX);
        return;
    }
    char field[128];
    if (pb_check_strings(r->input, p, len, field, sizeof field) != 0) {
        /* Decoding would cut the string at the NUL: refuse, never guess. */
        call_failf(call, 200, API_INVALID_ARGUMENT, "invalid %s: field %s holds a NUL byte",
                   r->input->short_name, field);
        return;
    }
    call->req = protobuf_c_message_unpack(r->input, NULL, len, p);
    if (call->req == NULL) {
        call_failf(call, 200, API_INVALID_ARGUMENT,
                   "could not decode request as %s", r->input->name);
        return;
    }
    call_in_release(call);
    call_conn_refill(call->conn);
    call->dispatched = true;
    r->cb(call, call->req, r->data);
}

static void call_decode_idle_cb(uv_idle_t *h);

/* END_STREAM from the client: decode now, or in a later loop turn when this
 * one has decoded enough already (or others are waiting their turn). */
static void call_request_end(struct api_call *call)
{
    const struct api_route *r = call->route;
    struct api_server *s = call->conn->s;
    call->remote_ended = true;
    call->req_until = 0;
    call_timer_arm(call);
    if (call->responded || r == NULL) {
        return;
    }
    size_t n = call->in.len;
    if (n < GRPC_PREFIX_LEN) {
        call_failf(call, 200, API_INTERNAL,
                   "could not decode request: %s",
                   n == 0 ? "missing message" : "truncated message prefix");
        return;
    }
    const uint8_t *p = call->in.data;
    uint32_t len = ((uint32_t)p[1] << 24) | ((uint32_t)p[2] << 16) |
                   ((uint32_t)p[3] << 8) | p[4];
    if (n != GRPC_PREFIX_LEN + (size_t)len) {
        call_failf(call, 200, API_INTERNAL,
                   "could not decode request: truncated message "
                   "(%zu of %u bytes)", n - GRPC_PREFIX_LEN, len);
        return;
    }
    /* A connection's requests are decoded in order; connections with
     * requests waiting take turns (call_decode_idle_cb), one request each. */
    struct server_conn *sc = call->conn;
    if (sc->dq_head == NULL && s->turn_bytes < s->turn_budget) {
        call_decode(call);
        return;
    }
    call->decode_queued = true;
    call->dq_prev = sc->dq_tail;
    if (sc->dq_tail != NULL) {
        sc->dq_tail->dq_next = call;
    } else {
        sc->dq_head = call;
    }
    sc->dq_tail = call;
    if (!sc->in_rr) {
        conn_rr_append(sc);
    }
    uv_idle_start(&s->decode_idle, call_decode_idle_cb);
}

static void call_decode_idle_cb(uv_idle_t *h)
{
    struct api_server *s = h->data;
    s->turn_bytes = 0;
    while (s->rr_head != NULL && s->turn_bytes < s->turn_budget) {
        struct server_conn *sc = s->rr_head;
        struct api_call *call = sc->dq_head;
        call_dequeue(call);
        if (sc->in_rr && sc != s->rr_tail) {
            conn_rr_remove(sc); /* to the back of the round */
            conn_rr_append(sc);
        }
        call_decode(call);
        if (!sc->closing && h2_flush(&sc->io) != 0) {
            server_conn_close(sc);
        }
    }
    if (s->rr_head == NULL) {
        uv_idle_stop(&s->decode_idle);
    }
}

/* The oldest call still receiving its request: it always gets window, so
 * that calls complete one after another even when partial requests fill the
 * budget (memory stays within budget + one message + the window). */
static struct api_call *conn_progress_call(struct server_conn *sc)
{
    struct api_call *best = NULL;
    for (struct api_call *c = sc->calls; c != NULL; c = c->next) {
        if (!c->remote_ended && !c->responded && c->route != NULL &&
            (best == NULL || c->stream_id < best->stream_id)) {
            best = c;
        }
    }
    return best;
}

static void call_give_window(struct api_call *c)
{
    struct server_conn *sc = c->conn;
    nghttp2_session_consume(sc->io.session, c->stream_id, c->unacked);
    sc->unacked -= c->unacked;
    c->unacked = 0;
}

void call_conn_refill(struct server_conn *sc)
{
    if (sc->unacked == 0 || sc->closing || sc->io.session == NULL) {
        return;
    }
    struct api_call *first = conn_progress_call(sc);
    if (first != NULL && first->unacked > 0) {
        call_give_window(first);
    }
    for (struct api_call *c = sc->calls; c != NULL && sc->buffered <= sc->lim->budget;
         c = c->next) {
        if (c->unacked > 0) {
            call_give_window(c);
        }
    }
}

/* ---------------------------------------------------- nghttp2 callbacks */

static struct api_call *stream_call(nghttp2_session *session, int32_t id)
{
    return nghttp2_session_get_stream_user_data(session, id);
}

static int on_begin_headers_cb(nghttp2_session *session,
                               const nghttp2_frame *frame, void *user_data)
{
    struct server_conn *sc = user_data;
    if (frame->hd.type != NGHTTP2_HEADERS ||
        frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
        return 0;
    }
    struct api_call *call = calloc(1, sizeof *call);
    if (call == NULL) {
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    call->conn = sc;
    call->loop = sc->s->loop;
    call->started_ns = smetrics_now_ns();
    call->stream_id = frame->hd.stream_id;
    call->peer = sc->peer;
    call->max_msg = sc->lim->max_msg;
    uv_timer_init(call->loop, &call->timer);
    call->timer.data = call;
    if (sc->lim->call_ms > 0) {
        call->req_until = uv_now(call->loop) + sc->lim->call_ms;
        call_timer_arm(call);
    }
    call->next = sc->calls;
    if (sc->calls != NULL) {
        sc->calls->prev = call;
    }
    sc->calls = call;
    nghttp2_session_set_stream_user_data(session, call->stream_id, call);
    return 0;
}

static void copy_value(char *dst, size_t size, const uint8_t *v, size_t len)
{
    if (len >= size) {
        len = size - 1;
    }
    memcpy(dst, v, len);
    dst[len] = '\0';
}

static int on_header_cb(nghttp2_session *session, const nghttp2_frame *frame,
                        const uint8_t *name, size_t namelen,
                        const uint8_t *value, size_t valuelen, uint8_t flags,
                        void *user_data)
{
    struct api_call *call = stream_call(session, frame->hd.stream_id);
    if (call == NULL || frame->hd.type != NGHTTP2_HEADERS ||
        frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
        return 0;
    }
#define HDR_IS(s) (namelen == sizeof(s) - 1 && memcmp(name, s, namelen) == 0)
    if (HDR_IS(":method")) {
        copy_value(call->method, sizeof call->method, value, valuelen);
    } else if (HDR_IS(":path")) {
        /* A path too long to store cannot name a method of ours. */
        copy_value(call->path, sizeof call->path, value,
                   valuelen < sizeof call->path ? valuelen : 0);
    } else if (HDR_IS("content-type")) {
        copy_value(call->content_type, sizeof call->content_type, value,
                   valuelen);
    } else if (HDR_IS("grpc-timeout")) {
        copy_value(call->timeout, sizeof call->timeout, value, valuelen);
    } else if (HDR_IS("grpc-encoding")) {
        copy_value(call->encoding, sizeof call->encoding, value, valuelen);
    } else if (HDR_IS(API_FORWARDED_HEADER)) {
        /* Too long to hold means malformed: keep a marker that fails to parse. */
        if (valuelen == 0 || valuelen >= sizeof call->forwarded) {
            snprintf(call->forwarded, sizeof call->forwarded, "?");
        } else {
            copy_value(call->forwarded, sizeof call->forwarded, value, valuelen);
        }
    }
#undef HDR_IS
    return 0;
}

static int on_frame_recv_cb(nghttp2_session *session,
                            const nghttp2_frame *frame, void *user_data)
{
    struct api_call *call = stream_call(session, frame->hd.stream_id);
    if (call == NULL) {
        return 0;
    }
    if (frame->hd.type == NGHTTP2_HEADERS &&
        frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        call_headers_done(call);
    }
    if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        call_request_end(call);
    }
    return 0;
}

static int on_data_chunk_recv_cb(nghttp2_session *session, uint8_t flags,
                                 int32_t stream_id, const uint8_t *data,
                                 size_t len, void *user_data)
{
    struct api_call *call = stream_call(session, stream_id);
    struct server_conn *sc = user_data;
    /* Windows refill as bytes are consumed: at once for bytes dropped or
     * held within the connection's budget, later for the rest (the peer
     * then waits until calls decoded or ended free their buffers). */
    if (call != NULL && call_data(call, data, len) &&
        sc->buffered > sc->lim->budget && call != conn_progress_call(sc)) {
        call->unacked += len;
        sc->unacked += len;
        return 0;
    }
    nghttp2_session_consume(session, stream_id, len);
    return 0;
}

static int on_frame_send_cb(nghttp2_session *session,
                            const nghttp2_frame *frame, void *user_data)
{
    struct api_call *call = stream_call(session, frame->hd.stream_id);
    if (call != NULL && call->rst_after_send &&
        frame->hd.type == NGHTTP2_HEADERS &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        call->rst_after_send = false;
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE,
                                  frame->hd.stream_id, NGHTTP2_NO_ERROR);
    }
    return 0;
}

static int on_stream_close_cb(nghttp2_session *session, int32_t stream_id,
                              uint32_t error_code, void *user_data)
{
    struct api_call *call = stream_call(session, stream_id);
    if (call == NULL) {
        return 0;
    }
    nghttp2_session_set_stream_user_data(session, stream_id, NULL);
    call->stream_done = true;
    call_unlink(call);
    if (!call->handler_done) {
        call_cancel(call);
    }
    call_maybe_free(call);
    return 0;
}

/* ------------------------------------------------------ response budget */

static struct log_limit budget_log;

/* Response bytes wait in call buffers until the peer grants window, then in
 * the TLS write queue until its socket takes them. A peer that does neither
 * must not make the server hold more than the budget. */
size_t call_conn_resp_held(const struct server_conn *sc)
{
    return sc->queued + tls_conn_write_queued(sc->io.tls);
}

/* Response bytes about to wait on `sc`. */
static void call_conn_queue_add(struct server_conn *sc, size_t n)
{
    if (sc->queued == 0) {
        sc->out_at = uv_now(sc->s->loop);
    }
    sc->queued += n;
}

static void call_cancel_later_cb(uv_timer_t *t)
{
    struct api_call *call = t->data;
    void (*cb)(struct api_call *, void *) = call->on_cancel;
    call->on_cancel = NULL;
    if (cb != NULL && call->dispatched && !call->handler_done) {
        cb(call, call->on_cancel_data);
    }
}

/* Drop what `call` has queued and reset its stream (ENHANCE_YOUR_CALM:
 * RESOURCE_EXHAUSTED to a gRPC client). Its handler learns it from
 * on_cancel in a later loop turn, and from api_call_send at once. */
static void call_reset_over_budget(struct api_call *call, size_t held)
{
    struct server_conn *sc = call->conn;
    size_t unsent = call->out.len - call->out.off;
    log_warn_limited(&budget_log, "api",
                     "the connection of %s%s%s%s holds %zu response bytes, over its budget "
                     "of %zu: resetting its call %s (%zu bytes unsent)",
                     sc->peer.addr, sc->peer.node_id[0] ? " (node \"" : "", sc->peer.node_id,
                     sc->peer.node_id[0] ? "\")" : "", held, sc->lim->resp_budget, call->path,
                     unsent);
    sc->queued -= unsent;
    grpc_buf_free(&call->out);
    call->responded = true;
    call->trailers_ready = false;
    call->rst_after_send = false;
    call->cancelled = true;
    nghttp2_submit_rst_stream(sc->io.session, NGHTTP2_FLAG_NONE, call->stream_id,
                              NGHTTP2_ENHANCE_YOUR_CALM);
    uv_timer_stop(&call->timer);
    if (call->on_cancel != NULL && call->dispatched && !call->handler_done) {
        uv_timer_start(&call->timer, call_cancel_later_cb, 0, 0);
    }
}

void call_conn_enforce_budget(struct server_conn *sc)
{
    size_t held;
    if (sc->closing || sc->io.session == NULL) {
        return;
    }
    while ((held = call_conn_resp_held(sc)) > sc->lim->resp_budget) {
        struct api_call *most = NULL;
        for (struct api_call *c = sc->calls; c != NULL; c = c->next) {
            if (c->out.len > c->out.off &&
                (most == NULL || c->out.len - c->out.off > most->out.len - most->out.off)) {
                most = c;
            }
        }
        if (most == NULL) {
            /* All of it in the TLS write queue: the peer reads nothing. */
            server_conn_doom(sc, "its unread bytes exceed the response budget");
            return;
        }
        call_reset_over_budget(most, held);
    }
}

/* ----------------------------------------------------------- call API */

const struct api_peer *api_call_peer(const struct api_call *call)
{
    return &call->peer;
}

const char *api_call_method(const struct api_call *call)
{
    return call->path;
}

uint64_t api_call_deadline(const struct api_call *call)
{
    return call->deadline;
}

bool api_call_cancelled(const struct api_call *call)
{
    return call->cancelled || call->conn == NULL;
}

void api_call_on_cancel(struct api_call *call,
                        void (*cb)(struct api_call *call, void *data),
                        void *data)
{
    call->on_cancel = cb;
    call->on_cancel_data = data;
}

/* After the handler let go: submit, maybe free, then flush via the saved
 * connection (the flush may close the stream and free the call). */
static void call_end(struct api_call *call, int status, const char *msg)
{
    struct server_conn *sc = call->conn;
    assert(call->dispatched && !call->handler_done);
    call->handler_done = true;
    if (sc != NULL && !call->cancelled) {
        call_respond(call, 200, status, msg);
    }
    call_maybe_free(call);
    if (sc != NULL && !sc->closing) {
        if (h2_flush(&sc->io) != 0) {
            server_conn_doom(sc, "HTTP/2 send failed");
            return;
        }
        call_conn_enforce_budget(sc);
    }
}

void api_call_reply(struct api_call *call, const ProtobufCMessage *resp)
{
    if (call->conn != NULL && !call->cancelled && !call->responded) {
        if (grpc_frame_pack(&call->out, resp, call->max_msg) != 0) {
            call_end(call, API_RESOURCE_EXHAUSTED,
                     "response message exceeds the size limit");
            return;
        }
        call_conn_queue_add(call->conn, protobuf_c_message_get_packed_size(resp) +
                                            GRPC_PREFIX_LEN);
    }
    call_end(call, API_OK, NULL);
}

void api_call_error(struct api_call *call, enum api_status status,
                    const char *fmt, ...)
{
    char msg[512] = "";
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
    }
    call_end(call, status == API_OK ? API_UNKNOWN : status, msg);
}

int api_call_send(struct api_call *call, const ProtobufCMessage *msg)
{
    struct server_conn *sc = call->conn;
    assert(call->dispatched && !call->handler_done);
    if (sc == NULL || call->cancelled || call->responded || sc->closing ||
        sc->doomed != NULL) {
        return SWARM_ECANCELED;
    }
    /* Drop what was sent once it is half the buffer: a stream that is
     * always a little behind must not grow its buffer for ever. */
    if (call->out.off > 0 && call->out.off >= call->out.len - call->out.off) {
        grpc_buf_compact(&call->out);
    }
    size_t before = call->out.len;
    int rv = grpc_frame_pack(&call->out, msg, call->max_msg);
    if (rv != 0) {
        return rv;
    }
    call_conn_queue_add(sc, call->out.len - before);
    call->streamed = true;
    call_push(call);
    if (h2_flush(&sc->io) != 0) {
        server_conn_doom(sc, "HTTP/2 send failed");
        return SWARM_ECANCELED;
    }
    call_conn_enforce_budget(sc);
    return call->cancelled || sc->doomed != NULL ? SWARM_ECANCELED : 0;
}

size_t api_call_pending_bytes(const struct api_call *call)
{
    struct server_conn *sc = call->conn;
    if (sc == NULL || sc->closing) {
        return 0;
    }
    return call_conn_resp_held(sc);
}

size_t api_call_send_room(const struct api_call *call)
{
    struct server_conn *sc = call->conn;
    if (sc == NULL || sc->closing || sc->doomed != NULL || call->cancelled) {
        return 0;
    }
    size_t held = call_conn_resp_held(sc);
    return held < sc->lim->resp_budget ? sc->lim->resp_budget - held : 0;
}

void api_call_finish(struct api_call *call)
{
    call_end(call, API_OK, NULL);
}

void call_conn_lost(struct api_call *call)
{
    call->stream_done = true;
    call_unlink(call);
    call_cancel(call);
    call_maybe_free(call);
}

void call_callbacks_set(nghttp2_session_callbacks *cbs)
{
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers_cb);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header_cb);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv_cb);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk_recv_cb);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close_cb);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send_cb);
}
