/* Internals shared by server.c (listeners, connections, shutdown) and
 * call.c (one gRPC call on an HTTP/2 stream). */
#ifndef SWARM_API_SERVER_INT_H
#define SWARM_API_SERVER_INT_H

#include <nghttp2/nghttp2.h>

#include "api.h"
#include "grpc.h"
#include "h2.h"
#include "tls.h"

#define SERVER_MAX_STREAMS 1024
#define SERVER_WINDOW (1 << 20)

struct api_route {
    char *path;
    const ProtobufCMessageDescriptor *input;
    unsigned roles;
    api_handler_cb cb;
    void *data;
};

struct api_alpn {
    char proto[64];
    void (*accept_cb)(struct tls_conn *, const struct api_peer *, void *);
    void *data;
};

struct listener {
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;
    struct api_server *s;
    bool tls;
    struct listener *next;
};

struct server_conn {
    struct api_server *s;
    struct h2_io io; /* io.session is NULL until the handshake is done */
    struct api_peer peer;
    struct api_call *calls;
    size_t queued; /* response bytes in call buffers, not yet in nghttp2 */
    bool closing;
    struct server_conn *prev, *next;
};

struct api_server {
    uv_loop_t *loop;
    size_t max_msg;
    struct api_route *routes;
    size_t n_routes;
    struct api_alpn *alpns;
    size_t n_alpns;
    unsigned char alpn_wire[512];
    unsigned alpn_wire_len;
    SSL_CTX *ctx;
    struct listener *listeners;
    struct server_conn *conns;
    int tls_port;
    bool shutting_down;
    uv_timer_t grace;
    int open; /* listeners + connections + grace timer not yet closed */
    void (*done)(void *data);
    void *done_data;
};

struct api_call {
    struct server_conn *conn; /* NULL once the connection is gone */
    struct api_call *prev, *next;
    int32_t stream_id;
    uv_loop_t *loop;
    uv_timer_t timer; /* deadline; its close callback frees the call */
    struct api_peer peer;
    const struct api_route *route;
    size_t max_msg;
    char path[256];
    char method[16];
    char content_type[64];
    char timeout[16];
    char encoding[32];
    uint64_t deadline;
    struct grpc_buf in;
    ProtobufCMessage *req;
    struct grpc_buf out;
    int trailer_status; /* valid once trailers_ready */
    char trailer_msg[512];
    bool trailers_ready;
    bool headers_sent; /* response HEADERS submitted */
    bool responded;    /* final status submitted */
    bool remote_ended;
    bool dispatched;
    bool handler_done;
    bool stream_done;
    bool cancelled;
    bool freeing;
    bool rst_after_send;
    void (*on_cancel)(struct api_call *, void *);
    void *on_cancel_data;
};


/* Close a connection: its calls are cancelled and detached (they live on
 * until their handlers finish them). Never from inside an nghttp2 call. */
void server_conn_close(struct server_conn *sc);
/* Install the per-stream callbacks (call.c) on a server session. */
void call_callbacks_set(nghttp2_session_callbacks *cbs);
/* The connection of `call` is gone: detach, cancel, maybe free. */
void call_conn_lost(struct api_call *call);

#endif
