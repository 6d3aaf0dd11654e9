/* Internals shared by server.c (listeners, connections, shutdown) and
 * call.c (one gRPC call on an HTTP/2 stream). */
#ifndef SWARM_API_SERVER_INT_H
#define SWARM_API_SERVER_INT_H

#include <nghttp2/nghttp2.h>

#include "api.h"
#include "grpc.h"
#include "h2.h"
#include "tls.h"

/* How often idle connections are looked for. */
#define SERVER_SWEEP_MS 1000
/* The server's own handles: grace, sweep, decode_idle, turn_end, reap. */
#define SERVER_HANDLES 5
/* A drained response buffer larger than this is freed, not kept. */
#define CALL_OUT_KEEP (64u << 10)

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
    const struct api_limits *lim; /* set with the peer, after the handshake */
    struct api_call *calls;
    unsigned granted; /* role the authorizer last granted; 0: none yet */
    size_t queued;   /* response bytes in call buffers, not yet in nghttp2 */
    uint64_t out_at; /* uv_now() when response bytes last moved to nghttp2,
                      * or began to wait */
    size_t buffered; /* request bytes in call buffers (the memory budget) */
    size_t unacked;  /* received bytes not yet given back as window */
    uint64_t last_read; /* uv_now() of the last bytes received */
    char src[48];    /* the peer's IP address, "" on the unix socket */
    bool tls;        /* counted in n_tls */
    bool handshaking; /* counted in the handshakes of its source */
    bool anon;       /* counted in n_anon */
    bool closing;
    const char *doomed; /* why it is to be closed from the reap timer */
    struct api_call *dq_head, *dq_tail; /* requests waiting to be decoded */
    struct server_conn *rr_prev, *rr_next; /* in the server's round */
    bool in_rr;
    struct server_conn *prev, *next;
};

struct api_server {
    uv_loop_t *loop;
    size_t max_msg;
    struct api_route *routes;
    size_t n_routes, cap_routes;
    struct api_alpn *alpns;
    size_t n_alpns, cap_alpns;
    unsigned char alpn_wire[512];
    unsigned alpn_wire_len;
    SSL_CTX *ctx;
    api_authorize_cb authorize;
    void *authorize_data;
    struct listener *listeners;
    struct server_conn *conns;
    struct api_limits anon_limits;
    struct api_limits peer_limits;
    size_t n_tls;      /* TLS connections (handshaking or serving) */
    size_t n_anon;     /* of which anonymous, handshake done */
    size_t max_tls;    /* from API_TLS_CONNS_MAX and RLIMIT_NOFILE */
    uint64_t refused;  /* connections refused for a cap */
    uint64_t refused_logged_at;
    uv_timer_t sweep;  /* idle connections */
    uv_idle_t decode_idle;  /* decodes requests left over from a turn */
    uv_check_t turn_end;    /* a loop turn ended: a fresh decode budget */
    uv_timer_t reap;        /* closes doomed connections, outside handlers */
    size_t turn_bytes;      /* request bytes decoded this turn */
    size_t turn_budget;     /* API_DECODE_TURN_BYTES unless a test says */
    /* Connections with requests waiting to be decoded, served in turn. */
    struct server_conn *rr_head, *rr_tail;
    int tls_port;
    bool shutting_down;
    uv_timer_t grace;
    int open; /* listeners + connections + server handles not yet closed */
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
    char forwarded[256];
    uint64_t deadline;
    uint64_t started_ns; /* smetrics_now_ns() at HEADERS, for the RPC latency */
    uint64_t req_until; /* uv_now() by which END_STREAM must arrive; 0: none */
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
    bool streamed;     /* sent a message with api_call_send (metrics' grpc_type) */
    bool decode_queued; /* in its connection's decode queue */
    struct api_call *dq_prev, *dq_next;
    size_t unacked;     /* bytes of this stream not yet given back as window */
    void (*on_cancel)(struct api_call *, void *);
    void *on_cancel_data;
};


/* Close a connection: its calls are cancelled and detached (they live on
 * until their handlers finish them). Never from inside an nghttp2 call. */
void server_conn_close(struct server_conn *sc);
/* Close `sc` from a later loop turn (from inside a handler, closing at once
 * would run other calls' on_cancel under its feet); `why` is static. Sends
 * on it fail meanwhile. */
void server_conn_doom(struct server_conn *sc, const char *why);
/* Keep the connection's response bytes within its budget: reset the streams
 * holding the most until the rest fits; doom the connection when its TLS
 * write queue alone is over. */
void call_conn_enforce_budget(struct server_conn *sc);
/* Response bytes held on the connection (call buffers + TLS write queue). */
size_t call_conn_resp_held(const struct server_conn *sc);
/* Install the per-stream callbacks (call.c) on a server session. */
void call_callbacks_set(nghttp2_session_callbacks *cbs);
/* The connection of `call` is gone: detach, cancel, maybe free. */
void call_conn_lost(struct api_call *call);
/* Give back flow-control window held for the memory budget, as far as the
 * budget allows now. Does not flush. */
void call_conn_refill(struct server_conn *sc);

#endif
