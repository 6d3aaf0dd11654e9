/* gRPC client: one HTTP/2 connection (nghttp2) carrying concurrent calls.
 *
 * Connecting, happy path: dial (unix, or TCP + TLS 1.3 with ALPN h2 and the
 * server name checked) -> our SETTINGS out -> the server's SETTINGS in ->
 * connect cb(0), and calls started meanwhile are submitted. Waiting for the
 * server's SETTINGS matters with TLS 1.3: a server that rejects our
 * certificate says so only after our side of the handshake is complete.
 * Failure paths: dial error ("connection refused"), TLS failure ("TLS
 * handshake failed: ..."), no ALPN h2, timeout; each ends the pending calls
 * with UNAVAILABLE and the connect cb with the same message.
 *
 * A call, happy path: HEADERS + DATA (one framed message, END_STREAM) out ->
 * response HEADERS (:status 200) -> DATA (messages, decoded with the
 * method's output descriptor) -> trailers grpc-status -> done cb.
 * Failure paths: trailers-only response (grpc-status in the HEADERS), HTTP
 * error status (mapped like gRPC: 404 UNIMPLEMENTED, 503 UNAVAILABLE, other
 * UNKNOWN...), RST_STREAM, local deadline (DEADLINE_EXCEEDED + RST_STREAM),
 * cancel (CANCELLED + RST_STREAM), oversized or undecodable response,
 * connection loss (UNAVAILABLE), api_client_close (UNAVAILABLE).
 *
 * Completion is two-step: the status is settled wherever it is learnt (often
 * inside an nghttp2 callback), and the done cb runs later from the `defer`
 * zero timer, outside nghttp2 and never inside api_client_unary/stream. A
 * call object lives until both its done cb ran and its stream is gone. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "err.h"
#include "grpc.h"
#include "h2.h"
#include "tls.h"

#define CLIENT_CONNECT_TIMEOUT_MS 10000
#define CLIENT_WINDOW (1 << 20)

enum client_state {
    CLIENT_IDLE,
    CLIENT_CONNECTING,
    CLIENT_CONNECTED,
    CLIENT_FAILED,
};

struct api_client {
    uv_loop_t *loop;
    size_t max_msg;
    struct h2_io io; /* io.tls NULL when there is no connection */
    enum client_state state;
    bool tls;
    bool settings_seen;
    bool goaway;
    SSL_CTX *ctx;
    char authority[128];
    char errmsg[SWARM_ERRMSG_SIZE];
    api_connect_cb connect_cb;
    void *connect_data;
    struct api_client_call *calls; /* every call object still allocated */
    struct api_client_call *done_head, *done_tail;
    uv_timer_t defer;
    uv_timer_t connect_timer;
    int open; /* handles (and the tls_conn) not yet closed */
    bool closing;
    bool torn_down;
    void (*close_done)(void *data);
    void *close_data;
};

struct api_client_call {
    struct api_client *c; /* NULL once the client is torn down */
    struct api_client_call *prev, *next;
    struct api_client_call *dnext;
    int32_t stream_id;
    uv_timer_t timer;
    const ProtobufCMessageDescriptor *output;
    bool streaming;
    api_stream_cb on_msg;
    api_response_cb done;
    void *data;
    char path[256];
    char forwarded[256]; /* API_FORWARDED_HEADER value, or "" */
    uint64_t timeout_ms;
    struct grpc_buf req;
    struct grpc_buf in;
    ProtobufCMessage *resp;
    int http_status;
    int grpc_status; /* -1 until seen */
    char grpc_message[512];
    enum api_status status;
    char message[512];
    bool submitted;
    bool completed; /* status settled, done cb queued */
    bool remote_ended; /* the server ended the stream (END_STREAM or reset) */
    bool delivered; /* done cb ran */
    bool stream_done;
    bool freeing;
};

static void client_teardown_conn(struct api_client *c);

/* ---------------------------------------------------------------- calls */

static void ccall_free_cb(uv_handle_t *h)
{
    struct api_client_call *call = h->data;
    if (call->resp != NULL) {
        protobuf_c_message_free_unpacked(call->resp, NULL);
    }
    grpc_buf_free(&call->req);
    grpc_buf_free(&call->in);
    free(call);
}

static void ccall_maybe_free(struct api_client_call *call)
{
    struct api_client *c = call->c;
    if (call->freeing || !call->delivered || !call->stream_done) {
        return;
    }
    call->freeing = true;
    if (c != NULL) {
        if (call->prev != NULL) {
            call->prev->next = call->next;
        } else {
            c->calls = call->next;
        }
        if (call->next != NULL) {
            call->next->prev = call->prev;
        }
    }
    uv_close((uv_handle_t *)&call->timer, ccall_free_cb);
}

static void client_defer_cb(uv_timer_t *t);

/* Settle the call's status and queue its done cb. Does not flush. */
static void ccall_complete(struct api_client_call *call, enum api_status st,
                           const char *msg)
{
    struct api_client *c = call->c;
    if (call->completed) {
        return;
    }
    call->completed = true;
    call->status = st;
    snprintf(call->message, sizeof call->message, "%s", msg ? msg : "");
    uv_timer_stop(&call->timer);
    /* Reset only a stream the server has not ended: a reset after a normal
     * end is noise, and nghttp2 peers count resets as abuse (a connection
     * is closed after ~1000 of them). */
    if (!call->stream_done && !call->remote_ended && call->submitted && c->io.session != NULL) {
        nghttp2_session *s = c->io.session;
        if (nghttp2_session_get_stream_local_close(s, call->stream_id) != 1 ||
            nghttp2_session_get_stream_remote_close(s, call->stream_id) != 1) {
            nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, call->stream_id,
                                      NGHTTP2_CANCEL);
        }
    }
    call->dnext = NULL;
    if (c->done_tail != NULL) {
        c->done_tail->dnext = call;
    } else {
        c->done_head = call;
    }
    c->done_tail = call;
    uv_timer_start(&c->defer, client_defer_cb, 0, 0);
}

static enum api_status http_to_grpc(int http)
{
    switch (http) {
    case 400: return API_INTERNAL;
    case 401: return API_UNAUTHENTICATED;
    case 403: return API_PERMISSION_DENIED;
    case 404: return API_UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504: return API_UNAVAILABLE;
    default: return API_UNKNOWN;
    }
}

/* The server ended the stream (END_STREAM, or a reset with error_code). */
static void ccall_server_end(struct api_client_call *call, uint32_t error_code)
{
    char msg[700];
    call->remote_ended = true;
    if (call->http_status != 0 && call->http_status != 200) {
        snprintf(msg, sizeof msg, "unexpected HTTP status %d%s%s",
                 call->http_status, call->grpc_message[0] ? ": " : "",
                 call->grpc_message);
        ccall_complete(call, http_to_grpc(call->http_status), msg);
    } else if (call->grpc_status >= 0) {
        int st = call->grpc_status;
        if (st > API_UNAUTHENTICATED) {
            st = API_UNKNOWN;
        }
        if (st == API_OK && !call->streaming && call->resp == NULL) {
            ccall_complete(call, API_INTERNAL,
                           "server sent no response message");
            return;
        }
        ccall_complete(call, (enum api_status)st, call->grpc_message);
    } else if (error_code == NGHTTP2_REFUSED_STREAM) {
        ccall_complete(call, API_UNAVAILABLE, "stream refused by server");
    } else if (error_code == NGHTTP2_CANCEL) {
        ccall_complete(call, API_CANCELLED, "stream cancelled by server");
    } else if (error_code == NGHTTP2_ENHANCE_YOUR_CALM) {
        /* gRPC's mapping: the server's response budget for this connection
         * was exceeded (this client took too little of what it asked for). */
        ccall_complete(call, API_RESOURCE_EXHAUSTED,
                       "stream reset by server: too many response bytes waiting for this "
                       "connection");
    } else if (error_code != NGHTTP2_NO_ERROR) {
        snprintf(msg, sizeof msg, "stream reset by server: %s",
                 nghttp2_http2_strerror(error_code));
        ccall_complete(call, API_INTERNAL, msg);
    } else {
        ccall_complete(call, API_INTERNAL,
                       "server closed the stream without a grpc-status");
    }
}

static void ccall_timer_cb(uv_timer_t *t)
{
    struct api_client_call *call = t->data;
    if (call->completed || call->c == NULL) {
        return;
    }
    ccall_complete(call, API_DEADLINE_EXCEEDED, "deadline exceeded");
    h2_flush(&call->c->io);
}

static ssize_t ccall_read_cb(nghttp2_session *session, int32_t stream_id,
                             uint8_t *buf, size_t length, uint32_t *flags,
                             nghttp2_data_source *source, void *user_data)
{
    struct api_client_call *call = source->ptr;
    size_t avail = call->req.len - call->req.off;
    size_t n = avail < length ? avail : length;
    memcpy(buf, call->req.data + call->req.off, n);
    call->req.off += n;
    if (call->req.off == call->req.len) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        grpc_buf_free(&call->req);
    }
    return (ssize_t)n;
}

static void ccall_submit(struct api_client_call *call)
{
    struct api_client *c = call->c;
    char timeout[16];
    nghttp2_nv nva[9] = {
        H2_NV(":method", "POST"),
        H2_NV(":scheme", c->tls ? "https" : "http"),
        H2_NV(":path", call->path),
        H2_NV(":authority", c->authority),
        H2_NV("content-type", "application/grpc"),
        H2_NV("te", "trailers"),
        H2_NV("user-agent", "swarmd/" SWARM_VERSION),
    };
    size_t n = 7;
    if (call->timeout_ms > 0) {
        grpc_timeout_format(call->timeout_ms, timeout);
        nghttp2_nv t = H2_NV("grpc-timeout", timeout);
        nva[n++] = t;
    }
    if (call->forwarded[0] != '\0') {
        nghttp2_nv f = H2_NV(API_FORWARDED_HEADER, call->forwarded);
        nva[n++] = f;
    }
    nghttp2_data_provider prd = {.source.ptr = call, .read_callback = ccall_read_cb};
    int32_t id = nghttp2_submit_request(c->io.session, NULL, nva, n, &prd, call);
    if (id < 0) {
        ccall_complete(call, API_INTERNAL, nghttp2_strerror(id));
        return;
    }
    call->stream_id = id;
    call->submitted = true;
    call->stream_done = false;
}

/* ---------------------------------------------------- nghttp2 callbacks */

static struct api_client_call *stream_ccall(nghttp2_session *s, int32_t id)
{
    struct api_client_call *call = nghttp2_session_get_stream_user_data(s, id);
    return call != NULL && !call->completed ? call : NULL;
}

static int con_header_cb(nghttp2_session *session, const nghttp2_frame *frame,
                         const uint8_t *name, size_t namelen,
                         const uint8_t *value, size_t valuelen, uint8_t flags,
                         void *user_data)
{
    struct api_client_call *call = stream_ccall(session, frame->hd.stream_id);
    char v[16];
    if (call == NULL || frame->hd.type != NGHTTP2_HEADERS) {
        return 0;
    }
#define HDR_IS(s) (namelen == sizeof(s) - 1 && memcmp(name, s, namelen) == 0)
    if (HDR_IS(":status") || HDR_IS("grpc-status")) {
        size_t n = valuelen < sizeof v - 1 ? valuelen : sizeof v - 1;
        memcpy(v, value, n);
        v[n] = '\0';
        if (name[0] == ':') {
            call->http_status = atoi(v);
        } else {
            call->grpc_status = (n > 0 && n < 4) ? atoi(v) : API_UNKNOWN;
        }
    } else if (HDR_IS("grpc-message")) {
        grpc_message_decode((const char *)value, valuelen, call->grpc_message,
                            sizeof call->grpc_message);
    }
#undef HDR_IS
    return 0;
}

static int con_data_chunk_cb(nghttp2_session *session, uint8_t flags,
                             int32_t stream_id, const uint8_t *data,
                             size_t len, void *user_data)
{
    struct api_client_call *call = stream_ccall(session, stream_id);
    struct api_client *c = user_data;
    char msg[128];
    if (call == NULL || call->http_status != 200) {
        return 0;
    }
    if (grpc_buf_append(&call->in, data, len) != 0) {
        ccall_complete(call, API_RESOURCE_EXHAUSTED, "out of memory");
        return 0;
    }
    while (!call->completed) {
        const uint8_t *m;
        size_t n;
        enum grpc_frame_result r = grpc_frame_next(&call->in, c->max_msg, &m, &n);
        if (r == GRPC_FRAME_NEED_MORE) {
            break;
        }
        if (r == GRPC_FRAME_COMPRESSED) {
            ccall_complete(call, API_INTERNAL,
                           "compressed response messages are not supported");
            break;
        }
        if (r == GRPC_FRAME_TOO_LARGE) {
            snprintf(msg, sizeof msg,
                     "response message exceeds the limit of %zu bytes",
                     c->max_msg);
            ccall_complete(call, API_RESOURCE_EXHAUSTED, msg);
            break;
        }
        ProtobufCMessage *pm = protobuf_c_message_unpack(call->output, NULL, n, m);
        if (pm == NULL) {
            ccall_complete(call, API_INTERNAL, "could not decode response");
            break;
        }
        if (call->streaming) {
            if (call->on_msg != NULL) {
                call->on_msg(pm, call->data);
            }
            protobuf_c_message_free_unpacked(pm, NULL);
        } else if (call->resp != NULL) {
            protobuf_c_message_free_unpacked(pm, NULL);
            ccall_complete(call, API_INTERNAL,
                           "more than one response message for a unary call");
        } else {
            call->resp = pm;
        }
    }
    grpc_buf_compact(&call->in);
    return 0;
}

static int con_frame_recv_cb(nghttp2_session *session,
                             const nghttp2_frame *frame, void *user_data)
{
    struct api_client *c = user_data;
    if (frame->hd.type == NGHTTP2_SETTINGS) {
        c->settings_seen = true;
        return 0;
    }
    if (frame->hd.type == NGHTTP2_GOAWAY) {
        c->goaway = true;
        return 0;
    }
    struct api_client_call *call = stream_ccall(session, frame->hd.stream_id);
    if (call != NULL &&
        (frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        ccall_server_end(call, NGHTTP2_NO_ERROR);
    }
    return 0;
}

static void ccall_stream_gone(struct api_client_call *call)
{
    call->stream_done = true;
    ccall_maybe_free(call);
}

static int con_stream_close_cb(nghttp2_session *session, int32_t stream_id,
                               uint32_t error_code, void *user_data)
{
    struct api_client_call *call =
        nghttp2_session_get_stream_user_data(session, stream_id);
    if (call == NULL) {
        return 0;
    }
    nghttp2_session_set_stream_user_data(session, stream_id, NULL);
    if (!call->completed) {
        ccall_server_end(call, error_code);
    }
    ccall_stream_gone(call);
    return 0;
}

static int con_frame_not_send_cb(nghttp2_session *session,
                                 const nghttp2_frame *frame, int lib_error,
                                 void *user_data)
{
    if (frame->hd.type != NGHTTP2_HEADERS) {
        return 0;
    }
    struct api_client_call *call =
        nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (call == NULL) {
        return 0;
    }
    /* The request never left: no stream will close for it. */
    ccall_complete(call, API_UNAVAILABLE, nghttp2_strerror(lib_error));
    ccall_stream_gone(call);
    return 0;
}

/* ---------------------------------------------------------- connection */

static void client_maybe_free(struct api_client *c)
{
    if (!c->torn_down || c->open > 0) {
        return;
    }
    void (*done)(void *) = c->close_done;
    void *data = c->close_data;
    SSL_CTX_free(c->ctx);
    free(c);
    if (done != NULL) {
        done(data);
    }
}

static void client_tls_closed_cb(struct tls_conn *tls, void *data)
{
    struct api_client *c = data;
    c->open--;
    client_maybe_free(c);
}

static void client_handle_closed_cb(uv_handle_t *h)
{
    struct api_client *c = h->data;
    c->open--;
    client_maybe_free(c);
}

/* Drop the connection; every call still open ends with UNAVAILABLE. Never
 * called from inside an nghttp2 callback. */
static void client_teardown_conn(struct api_client *c)
{
    struct api_client_call *next;
    for (struct api_client_call *call = c->calls; call != NULL; call = next) {
        next = call->next;
        call->stream_done = true;
        if (!call->completed) {
            ccall_complete(call, API_UNAVAILABLE, c->errmsg);
        }
        ccall_maybe_free(call);
    }
    if (c->io.session != NULL) {
        assert(!c->io.in_session);
        nghttp2_session_del(c->io.session);
        c->io.session = NULL;
    }
    if (c->io.tls != NULL) {
        tls_conn_close(c->io.tls, client_tls_closed_cb, c);
        c->io.tls = NULL;
    }
}

static void client_fail(struct api_client *c, int rv, const char *msg)
{
    api_connect_cb cb = c->connect_cb;
    if (c->state == CLIENT_FAILED) {
        return;
    }
    c->state = CLIENT_FAILED;
    snprintf(c->errmsg, sizeof c->errmsg, "%s", msg);
    uv_timer_stop(&c->connect_timer);
    client_teardown_conn(c);
    c->connect_cb = NULL;
    if (cb != NULL) {
        cb(c, rv, msg, c->connect_data);
    }
}

static void client_connected(struct api_client *c)
{
    api_connect_cb cb = c->connect_cb;
    c->state = CLIENT_CONNECTED;
    uv_timer_stop(&c->connect_timer);
    for (struct api_client_call *call = c->calls; call != NULL; call = call->next) {
        if (!call->completed && !call->submitted) {
            ccall_submit(call);
        }
    }
    h2_flush(&c->io);
    c->connect_cb = NULL;
    if (cb != NULL) {
        cb(c, 0, NULL, c->connect_data);
    }
}

static void client_read_cb(struct tls_conn *tls, int status, const uint8_t *buf,
                           size_t len, const char *errmsg, void *data)
{
    struct api_client *c = data;
    char em[SWARM_ERRMSG_SIZE];
    if (c->torn_down) {
        return;
    }
    if (status != 0) {
        /* With TLS 1.3 the server's verdict on our certificate arrives
         * after our handshake finished: still a handshake failure to us. */
        bool hs = c->state == CLIENT_CONNECTING &&
                  strncmp(errmsg, "TLS error: ", 11) == 0;
        snprintf(em, sizeof em, "%s: %s%s", tls_conn_addr(tls),
                 hs ? "TLS handshake failed: " : "", hs ? errmsg + 11 : errmsg);
        client_fail(c, SWARM_EUNAVAIL, em);
        return;
    }
    if (h2_recv(&c->io, buf, len, em) != 0) {
        client_fail(c, SWARM_EPROTO, em);
        return;
    }
    if (c->state == CLIENT_CONNECTING && c->settings_seen) {
        client_connected(c);
        if (c->state != CLIENT_CONNECTED || c->torn_down) {
            return;
        }
    }
    if (c->io.session != NULL && h2_finished(&c->io)) {
        client_fail(c, SWARM_EUNAVAIL, "server closed the connection");
    }
}

static int client_start_h2(struct api_client *c)
{
    nghttp2_session_callbacks *cbs;
    if (nghttp2_session_callbacks_new(&cbs) != 0) {
        return SWARM_ENOMEM;
    }
    nghttp2_session_callbacks_set_on_header_callback(cbs, con_header_cb);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, con_frame_recv_cb);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, con_data_chunk_cb);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, con_stream_close_cb);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs, con_frame_not_send_cb);
    int rv = nghttp2_session_client_new(&c->io.session, cbs, c);
    nghttp2_session_callbacks_del(cbs);
    if (rv != 0) {
        c->io.session = NULL;
        return SWARM_ENOMEM;
    }
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, CLIENT_WINDOW},
    };
    nghttp2_submit_settings(c->io.session, NGHTTP2_FLAG_NONE, iv, 2);
    nghttp2_session_set_local_window_size(c->io.session, NGHTTP2_FLAG_NONE, 0,
                                          4 * CLIENT_WINDOW);
    if (h2_flush(&c->io) != 0 ||
        tls_conn_read_start(c->io.tls, client_read_cb, c) != 0) {
        return SWARM_EIO;
    }
    return 0;
}

static void client_handshake_cb(struct tls_conn *tls, int status,
                                const char *errmsg, void *data)
{
    struct api_client *c = data;
    char msg[SWARM_ERRMSG_SIZE];
    if (c->torn_down) {
        return;
    }
    if (status != 0) {
        snprintf(msg, sizeof msg, "%s: %s", tls_conn_addr(tls), errmsg);
        client_fail(c, status, msg);
        return;
    }
    if (c->tls && strcmp(tls_conn_alpn(tls), "h2") != 0) {
        snprintf(msg, sizeof msg, "%s: server did not negotiate HTTP/2 (ALPN)",
                 tls_conn_addr(tls));
        client_fail(c, SWARM_EPROTO, msg);
        return;
    }
    if (client_start_h2(c) != 0) {
        client_fail(c, SWARM_ENOMEM, "cannot start HTTP/2 session");
    }
}

static void client_connect_timeout_cb(uv_timer_t *t)
{
    struct api_client *c = t->data;
    if (c->torn_down || c->state != CLIENT_CONNECTING) {
        return;
    }
    client_fail(c, SWARM_ETIMEDOUT, "timed out waiting for the server");
}

struct api_client *api_client_new(uv_loop_t *loop, size_t max_msg)
{
    struct api_client *c = calloc(1, sizeof *c);
    if (c == NULL) {
        return NULL;
    }
    c->loop = loop;
    c->max_msg = max_msg ? max_msg : API_DEFAULT_MAX_MSG;
    uv_timer_init(loop, &c->defer);
    uv_timer_init(loop, &c->connect_timer);
    c->defer.data = c;
    c->connect_timer.data = c;
    c->open = 2;
    return c;
}

int api_client_connect_unix(struct api_client *c, const char *path,
                            api_connect_cb cb, void *data)
{
    char em[SWARM_ERRMSG_SIZE];
    if (c->state != CLIENT_IDLE || c->closing) {
        return SWARM_ESTATE;
    }
    snprintf(c->authority, sizeof c->authority, "localhost");
    int rv = tls_conn_dial_unix(c->loop, path, client_handshake_cb, c,
                                &c->io.tls, em);
    if (rv != 0) {
        return rv;
    }
    c->open++;
    c->state = CLIENT_CONNECTING;
    c->connect_cb = cb;
    c->connect_data = data;
    uv_timer_start(&c->connect_timer, client_connect_timeout_cb,
                   CLIENT_CONNECT_TIMEOUT_MS, 0);
    return 0;
}

int api_client_connect_tls(struct api_client *c, const char *addr,
                           SSL_CTX *ctx, const char *server_name,
                           uint64_t timeout_ms, api_connect_cb cb, void *data)
{
    static const char *const alpn[] = {"h2", NULL};
    char em[SWARM_ERRMSG_SIZE];
    if (c->state != CLIENT_IDLE || c->closing) {
        return SWARM_ESTATE;
    }
    if (server_name == NULL) {
        server_name = API_SERVER_NAME;
    }
    if (timeout_ms == 0) {
        timeout_ms = CLIENT_CONNECT_TIMEOUT_MS;
    }
    snprintf(c->authority, sizeof c->authority, "%s", server_name);
    int rv = tls_conn_dial(c->loop, addr, ctx, server_name, alpn, timeout_ms,
                           client_handshake_cb, c, &c->io.tls, em);
    if (rv != 0) {
        return rv;
    }
    SSL_CTX_up_ref(ctx);
    c->ctx = ctx;
    c->tls = true;
    c->open++;
    c->state = CLIENT_CONNECTING;
    c->connect_cb = cb;
    c->connect_data = data;
    uv_timer_start(&c->connect_timer, client_connect_timeout_cb, timeout_ms, 0);
    return 0;
}

X509 *api_client_peer_cert(struct api_client *c)
{
    if (c->io.tls == NULL || c->state != CLIENT_CONNECTED) {
        return NULL;
    }
    return tls_conn_peer_cert(c->io.tls);
}

bool api_client_connected(const struct api_client *c)
{
    return c->state == CLIENT_CONNECTED && !c->goaway && !c->closing;
}

static int client_start_call(struct api_client *c,
                             const ProtobufCServiceDescriptor *service,
                             const char *method, const ProtobufCMessage *req,
                             uint64_t timeout_ms, const struct api_peer *origin,
                             bool streaming, api_stream_cb on_msg,
                             api_response_cb done, void *data,
                             struct api_client_call **handle)
{
    const ProtobufCMethodDescriptor *m = NULL;
    if (c->closing) {
        return SWARM_ESTATE;
    }
    for (unsigned i = 0; i < service->n_methods; i++) {
        if (strcmp(service->methods[i].name, method) == 0) {
            m = &service->methods[i];
        }
    }
    if (m == NULL) {
        return SWARM_EINVAL;
    }
    struct api_client_call *call = calloc(1, sizeof *call);
    if (call == NULL) {
        return SWARM_ENOMEM;
    }
    call->c = c;
    call->output = m->output;
    call->streaming = streaming;
    call->on_msg = on_msg;
    call->done = done;
    call->data = data;
    call->timeout_ms = timeout_ms;
    call->grpc_status = -1;
    call->stream_done = true; /* until submitted */
    snprintf(call->path, sizeof call->path, "/%s/%s", service->name, method);
    if (origin != NULL) {
        api_peer_format_forwarded(origin, call->forwarded, sizeof call->forwarded);
    }
    uv_timer_init(c->loop, &call->timer);
    call->timer.data = call;
    call->next = c->calls;
    if (c->calls != NULL) {
        c->calls->prev = call;
    }
    c->calls = call;
    if (handle != NULL) {
        *handle = call;
    }
    if (grpc_frame_pack(&call->req, req, c->max_msg) != 0) {
        ccall_complete(call, API_RESOURCE_EXHAUSTED,
                       "request message exceeds the size limit");
        return 0;
    }
    if (timeout_ms > 0) {
        uv_timer_start(&call->timer, ccall_timer_cb, timeout_ms, 0);
    }
    if (c->state == CLIENT_FAILED || c->state == CLIENT_IDLE) {
        ccall_complete(call, API_UNAVAILABLE,
                       c->state == CLIENT_IDLE ? "not connected" : c->errmsg);
    } else if (c->state == CLIENT_CONNECTED) {
        if (c->goaway) {
            ccall_complete(call, API_UNAVAILABLE,
                           "server is shutting down (GOAWAY)");
        } else {
            ccall_submit(call);
            h2_flush(&c->io);
        }
    }
    return 0;
}

int api_client_unary(struct api_client *c,
                     const ProtobufCServiceDescriptor *service,
                     const char *method, const ProtobufCMessage *req,
                     uint64_t timeout_ms, api_response_cb cb, void *data)
{
    return client_start_call(c, service, method, req, timeout_ms, NULL, false,
                             NULL, cb, data, NULL);
}

int api_client_unary_as(struct api_client *c,
                        const ProtobufCServiceDescriptor *service,
                        const char *method, const ProtobufCMessage *req,
                        uint64_t timeout_ms, const struct api_peer *origin,
                        api_response_cb cb, void *data)
{
    return client_start_call(c, service, method, req, timeout_ms, origin, false,
                             NULL, cb, data, NULL);
}

int api_client_stream_as(struct api_client *c,
                         const ProtobufCServiceDescriptor *service,
                         const char *method, const ProtobufCMessage *req,
                         uint64_t timeout_ms, const struct api_peer *origin,
                         api_stream_cb on_msg, api_response_cb done, void *data,
                         struct api_client_call **handle)
{
    return client_start_call(c, service, method, req, timeout_ms, origin, true,
                             on_msg, done, data, handle);
}

int api_client_stream(struct api_client *c,
                      const ProtobufCServiceDescriptor *service,
                      const char *method, const ProtobufCMessage *req,
                      uint64_t timeout_ms, api_stream_cb on_msg,
                      api_response_cb done, void *data,
                      struct api_client_call **handle)
{
    return client_start_call(c, service, method, req, timeout_ms, NULL, true,
                             on_msg, done, data, handle);
}

void api_client_call_cancel(struct api_client_call *call)
{
    if (call->completed || call->c == NULL) {
        return;
    }
    ccall_complete(call, API_CANCELLED, "cancelled by the client");
    h2_flush(&call->c->io);
}

static void client_defer_cb(uv_timer_t *t)
{
    struct api_client *c = t->data;
    struct api_client_call *call;
    while ((call = c->done_head) != NULL) {
        c->done_head = call->dnext;
        if (c->done_head == NULL) {
            c->done_tail = NULL;
        }
        api_response_cb cb = call->done;
        call->done = NULL;
        call->delivered = true;
        if (cb != NULL) {
            bool ok = call->status == API_OK;
            cb(call->status, ok ? NULL : call->message,
               ok && !call->streaming ? call->resp : NULL, call->data);
        }
        ccall_maybe_free(call);
    }
    if (c->closing && !c->torn_down) {
        api_connect_cb ccb = c->connect_cb;
        c->connect_cb = NULL;
        snprintf(c->errmsg, sizeof c->errmsg, "client closed");
        c->torn_down = true;
        client_teardown_conn(c);
        if (ccb != NULL) {
            ccb(c, SWARM_ECANCELED, "client closed", c->connect_data);
        }
        /* Calls settled by the teardown were queued again: deliver them. */
        while ((call = c->done_head) != NULL) {
            c->done_head = call->dnext;
            call->delivered = true;
            ccall_maybe_free(call);
        }
        c->done_tail = NULL;
        for (call = c->calls; call != NULL; call = call->next) {
            call->c = NULL;
        }
        c->calls = NULL;
        uv_close((uv_handle_t *)&c->defer, client_handle_closed_cb);
        uv_close((uv_handle_t *)&c->connect_timer, client_handle_closed_cb);
    }
}

void api_client_close(struct api_client *c, void (*done)(void *data),
                      void *data)
{
    if (c->closing) {
        return;
    }
    c->closing = true;
    c->close_done = done;
    c->close_data = data;
    for (struct api_client_call *call = c->calls; call != NULL; call = call->next) {
        if (!call->completed) {
            ccall_complete(call, API_UNAVAILABLE, "client closed");
        }
    }
    if (c->io.session != NULL) {
        h2_flush(&c->io);
    }
    uv_timer_start(&c->defer, client_defer_cb, 0, 0);
}
