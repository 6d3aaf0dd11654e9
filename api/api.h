/* The RPC runtime: gRPC over HTTP/2 (nghttp2) on libuv, on a unix socket in
 * plaintext or on TCP with TLS 1.3 (OpenSSL, ALPN "h2") and mutual
 * authentication.
 *
 * Server side: methods are registered from protobuf-c service descriptors;
 * each declares which peer roles may call it. A handler gets the decoded
 * request and answers later, from any loop callback, with api_call_reply(),
 * api_call_error() or (server streaming) api_call_send() + api_call_finish().
 * Every handler must eventually finish its call exactly once, even when the
 * call was cancelled in the meantime (client gone, deadline passed): the
 * runtime then discards the answer and frees the call.
 *
 * Client side: one api_client is one HTTP/2 connection carrying any number of
 * concurrent calls.
 *
 * Threading: everything runs on one uv loop; nothing here is thread-safe. */
#ifndef SWARM_API_H
#define SWARM_API_H

#include <openssl/ssl.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

/* gRPC status codes (grpc/doc/statuscodes.md). */
enum api_status {
    API_OK = 0,
    API_CANCELLED = 1,
    API_UNKNOWN = 2,
    API_INVALID_ARGUMENT = 3,
    API_DEADLINE_EXCEEDED = 4,
    API_NOT_FOUND = 5,
    API_ALREADY_EXISTS = 6,
    API_PERMISSION_DENIED = 7,
    API_RESOURCE_EXHAUSTED = 8,
    API_FAILED_PRECONDITION = 9,
    API_ABORTED = 10,
    API_OUT_OF_RANGE = 11,
    API_UNIMPLEMENTED = 12,
    API_INTERNAL = 13,
    API_UNAVAILABLE = 14,
    API_DATA_LOSS = 15,
    API_UNAUTHENTICATED = 16,
};

/* Who is calling. A bit mask, so a method can allow several roles. */
enum api_role {
    API_ROLE_ANONYMOUS = 1u << 0, /* TLS peer without a client certificate */
    API_ROLE_WORKER = 1u << 1,    /* certificate OU swarm-worker */
    API_ROLE_MANAGER = 1u << 2,   /* certificate OU swarm-manager */
    API_ROLE_LOCAL = 1u << 3,     /* the control socket (root on this host) */
};

#define API_OU_MANAGER "swarm-manager"
#define API_OU_WORKER "swarm-worker"
/* The server name managers present and clients verify. */
#define API_SERVER_NAME "swarm-manager"
/* Default maximum message size, both directions. */
#define API_DEFAULT_MAX_MSG (4u * 1024 * 1024)

/* Limits on what one peer can make the server hold or do (the README's
 * "Limits" section gives the reason for each number).
 *
 * Peers without a certificate (they may call only the CA methods: a CSR is
 * under 1 KiB): */
#define API_ANON_MAX_MSG (64u << 10)     /* request message size */
#define API_ANON_MAX_STREAMS 4           /* concurrent streams a connection */
#define API_ANON_WINDOW (64u << 10)      /* HTTP/2 window, stream and connection */
#define API_ANON_CALL_MS 10000           /* first request byte to END_STREAM */
#define API_ANON_PER_SOURCE 32           /* connections from one IP address */
#define API_ANON_TOTAL 512               /* connections in all */
#define API_ANON_IDLE_MS 30000           /* no call and nothing received */
#define API_ANON_RESP_BUDGET (1u << 20)  /* response bytes held a connection */
/* Certificate holders (workers, managers) and the control socket: */
#define API_PEER_MAX_STREAMS 100
#define API_PEER_WINDOW (1u << 20)       /* a stream's window */
#define API_PEER_CONN_WINDOW (4u << 20)  /* the connection's window */
#define API_PEER_BUDGET (32u << 20)      /* request bytes buffered a connection */
#define API_PEER_IDLE_MS (5u * 60 * 1000) /* no call and nothing received; also
                                           * how long response bytes may wait
                                           * for a peer that takes none */
#define API_PEER_RESP_BUDGET (32u << 20) /* response bytes held a connection */
/* Every TLS connection: */
#define API_HANDSHAKES_PER_SOURCE 256    /* TLS handshakes under way from one IP */
#define API_TLS_CONNS_MAX 4096           /* TLS connections in all... */
#define API_FD_RESERVE 256               /* ...and at most RLIMIT_NOFILE - this */
/* Decoding: */
#define API_DECODE_TURN_BYTES (1u << 20) /* request bytes decoded a loop turn */
#define API_UNKNOWN_FIELDS_MAX 1024      /* unknown protobuf fields a request */

struct api_peer {
    enum api_role role;
    char node_id[64];    /* certificate CN; empty for LOCAL and ANONYMOUS */
    char cluster_id[64]; /* certificate O */
    char addr[64];       /* "IP:PORT" of the TCP peer, "unix" on the socket */
    char via[64];        /* a forwarded call: the node ID of the manager that
                          * forwarded it (the fields above are the caller's);
                          * empty for a direct call */
};

/* Request header naming the original caller of a call one manager forwards
 * to another: "ROLE;NODE_ID;CLUSTER_ID;ADDR" with ROLE one of local,
 * anonymous, worker, manager. Believed only from a peer the authorizer
 * grants API_ROLE_MANAGER; anyone else sending it is refused. */
#define API_FORWARDED_HEADER "swarm-forwarded-for"

/* ------------------------------------------------------------------ server */

struct api_server;
struct api_call;

/* `req` belongs to the runtime and stays valid until the call finishes. */
typedef void (*api_handler_cb)(struct api_call *call,
                               const ProtobufCMessage *req,
                               void *data);

/* The server's TLS context must request, but not require, a client
 * certificate (SSL_VERIFY_PEER without FAIL_IF_NO_PEER_CERT) and verify it
 * against the root CA: then an unknown certificate fails the handshake and no
 * certificate means API_ROLE_ANONYMOUS. */
struct api_server *api_server_new(uv_loop_t *loop, size_t max_msg);

/* The limits applied to a class of peers: API_ROLE_ANONYMOUS, or any other
 * role for certificate holders and the control socket (which has no idle
 * timeout and no per-call deadline). Defaults are the API_ANON_* and
 * API_PEER_* values; a caller may change them before listening (tests use
 * short timeouts). */
struct api_limits {
    size_t max_msg;       /* request message size */
    uint32_t max_streams; /* SETTINGS_MAX_CONCURRENT_STREAMS */
    uint32_t window;      /* a stream's flow-control window */
    uint32_t conn_window; /* the connection's flow-control window */
    size_t budget;        /* request bytes buffered on a connection before
                           * windows stop refilling */
    uint64_t call_ms;     /* first request byte to END_STREAM; 0: none */
    uint64_t idle_ms;     /* no call and nothing received; 0: none. TLS
                           * peers that take no response bytes for this long
                           * (zero window, unread socket) are closed too */
    size_t resp_budget;   /* response bytes held on a connection: queued on
                           * its calls (not yet granted window by the peer)
                           * plus its TLS write queue (not yet taken by the
                           * socket). Over it, the stream holding the most
                           * unsent bytes is reset (RST_STREAM
                           * ENHANCE_YOUR_CALM, which gRPC clients report as
                           * RESOURCE_EXHAUSTED; its handler gets on_cancel),
                           * until the rest fits; a TLS queue over it alone
                           * closes the connection. */
};
struct api_limits *api_server_limits(struct api_server *s, enum api_role role);
/* Request bytes decoded per loop turn before the rest wait for the next
 * turns (default API_DECODE_TURN_BYTES). */
void api_server_set_decode_budget(struct api_server *s, size_t bytes);

/* Route "/<package>.<Service>/<Method>" to `cb`; the path and request type
 * come from the descriptor. `roles` is a mask of enum api_role; callers of
 * other roles get PERMISSION_DENIED (ANONYMOUS: UNAUTHENTICATED). Returns 0 or
 * SWARM_EINVAL for an unknown method name. */
int api_server_register(struct api_server *s,
                        const ProtobufCServiceDescriptor *service,
                        const char *method,
                        unsigned roles,
                        api_handler_cb cb,
                        void *data);

/* Authorization beyond the certificate (e.g. from the cluster store): called
 * for every call of a certificate holder (WORKER or MANAGER) before its
 * method's role mask is checked, and again for the original caller of a
 * forwarded call. It may lower peer->role (a demoted manager whose
 * certificate still says manager is a worker) and returns API_OK, or a status
 * (PERMISSION_DENIED, UNAVAILABLE) with a message in `errmsg`
 * (SWARM_ERRMSG_SIZE bytes) that refuses the call. It must not raise the
 * role. */
typedef enum api_status (*api_authorize_cb)(struct api_peer *peer, void *data, char *errmsg);
void api_server_set_authorize(struct api_server *s, api_authorize_cb cb, void *data);

/* Run the authorizer again for every open TLS connection of node `node_id`
 * (NULL: of every node) whose peer was granted a role by an earlier call,
 * and close those it now refuses or
 * grants less (a node removed, demoted or revoked since): their calls in
 * flight are cancelled, long-lived streams included. Connections busy in an
 * HTTP/2 callback are left alone (their next call is checked anyway). */
void api_server_recheck(struct api_server *s, const char *node_id);

/* Listen on a unix socket (mode 0600; a stale socket file is replaced). Every
 * peer there is API_ROLE_LOCAL. */
int api_server_listen_unix(struct api_server *s,
                           const char *path,
                           char *errmsg);

/* Listen on TCP "IP:PORT" with TLS. TLS connections are capped at
 * API_TLS_CONNS_MAX and at RLIMIT_NOFILE minus API_FD_RESERVE, so that the
 * control socket, raft and the store always find a file descriptor (the
 * soft RLIMIT_NOFILE is raised to the hard one first); a connection over a
 * cap is accepted and closed at once. The server keeps a reference to ctx
 * (SSL_CTX_up_ref); api_server_set_tls_ctx swaps it for new connections (e.g.
 * after a certificate renewal). */
int api_server_listen_tls(struct api_server *s,
                          const char *addr,
                          SSL_CTX *ctx,
                          char *errmsg);
void api_server_set_tls_ctx(struct api_server *s, SSL_CTX *ctx);
/* The port the TLS listener is bound to (useful after listening on port 0),
 * or -1 if there is none. */
int api_server_tls_port(const struct api_server *s);

/* Stop listening on TLS and close the TLS connections (the node left the
 * swarm or its manager restarts); the unix socket keeps serving. In-flight
 * calls on those connections are cancelled. No-op without a TLS listener. */
void api_server_close_tls(struct api_server *s);

/* Graceful shutdown: stop accepting, send GOAWAY, let in-flight calls finish
 * for at most `grace_ms`, then close every connection and free the server.
 * `done` runs once everything is closed. */
void api_server_shutdown(struct api_server *s,
                         uint64_t grace_ms,
                         void (*done)(void *data),
                         void *data);

const struct api_peer *api_call_peer(const struct api_call *call);
/* Full method path, e.g. "/swarm.Control/ListNodes". */
const char *api_call_method(const struct api_call *call);
/* Absolute deadline in uv_now() milliseconds, or 0 if the client set none. */
uint64_t api_call_deadline(const struct api_call *call);
/* True once the client went away or the deadline passed. */
bool api_call_cancelled(const struct api_call *call);
/* Called at most once, when the call becomes cancelled before the handler
 * finished it. The handler must still finish the call. */
void api_call_on_cancel(struct api_call *call,
                        void (*cb)(struct api_call *call, void *data),
                        void *data);

/* Unary: send `resp` and status OK. Finishes the call. */
void api_call_reply(struct api_call *call, const ProtobufCMessage *resp);
/* Finish with `status` and a message (printf format; NULL for none). */
void api_call_error(struct api_call *call, enum api_status status,
                    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Server streaming: queue one message. Returns 0, or SWARM_ECANCELED once
 * the call is cancelled (the handler should then finish it), or SWARM_EINVAL
 * for a message larger than max_msg (not sent; the call goes on). Messages
 * queue in memory until the peer grants window and the socket takes them,
 * within the connection's resp_budget (api_limits): a producer that goes on
 * past it gets its stream reset and SWARM_ECANCELED, its on_cancel called
 * from a later loop turn (never from inside this call). */
int api_call_send(struct api_call *call, const ProtobufCMessage *msg);
/* Response bytes held on this call's connection and not yet written (the
 * figure resp_budget bounds): a streaming producer slows down before it
 * reaches api_call_send_room() == 0. */
size_t api_call_pending_bytes(const struct api_call *call);
/* How many more response bytes the connection takes before its budget is
 * exceeded (0 once cancelled). */
size_t api_call_send_room(const struct api_call *call);
/* Server streaming: finish with status OK. */
void api_call_finish(struct api_call *call);

/* ------------------------------------------------------------------ client */

struct api_client;
struct api_client_call;

/* status 0 on success, else a SWARM_E* code with a message. */
typedef void (*api_connect_cb)(struct api_client *c, int status,
                               const char *errmsg, void *data);

/* Unary answer or end of a stream. On success status is API_OK and, for
 * unary calls, `resp` is the decoded answer (freed after the callback
 * returns). On failure `resp` is NULL and `message` says why; transport
 * failures are reported as API_UNAVAILABLE. */
typedef void (*api_response_cb)(enum api_status status,
                                const char *message,
                                const ProtobufCMessage *resp,
                                void *data);
/* One message of a server stream, freed after the callback returns. */
typedef void (*api_stream_cb)(const ProtobufCMessage *msg, void *data);

struct api_client *api_client_new(uv_loop_t *loop, size_t max_msg);

int api_client_connect_unix(struct api_client *c,
                            const char *path,
                            api_connect_cb cb,
                            void *data);

/* Connect to "HOST:PORT" with TLS 1.3, ALPN h2. The server certificate is
 * verified against ctx's trust store and must carry `server_name` (NULL:
 * API_SERVER_NAME). ctx may carry a client certificate. The client keeps a
 * reference to ctx. `timeout_ms` bounds connect + handshake (0: 10 s). */
int api_client_connect_tls(struct api_client *c,
                           const char *addr,
                           SSL_CTX *ctx,
                           const char *server_name,
                           uint64_t timeout_ms,
                           api_connect_cb cb,
                           void *data);

/* The peer certificate of a TLS connection (owned by the client), or NULL. */
X509 *api_client_peer_cert(struct api_client *c);

/* Start a unary call. `timeout_ms` 0 means no deadline; otherwise it is sent
 * as grpc-timeout and also enforced locally. `req` is serialized before this
 * returns. `cb` is always called exactly once, never from inside this
 * function. Returns 0, or an error if the client is closed. */
int api_client_unary(struct api_client *c,
                     const ProtobufCServiceDescriptor *service,
                     const char *method,
                     const ProtobufCMessage *req,
                     uint64_t timeout_ms,
                     api_response_cb cb,
                     void *data);

/* Start a server-streaming call: `on_msg` for each message, then `done`
 * exactly once. `*handle` (if not NULL) lets the caller cancel it. */
int api_client_stream(struct api_client *c,
                      const ProtobufCServiceDescriptor *service,
                      const char *method,
                      const ProtobufCMessage *req,
                      uint64_t timeout_ms,
                      api_stream_cb on_msg,
                      api_response_cb done,
                      void *data,
                      struct api_client_call **handle);

/* The same, on behalf of `origin` (sent as API_FORWARDED_HEADER; NULL:
 * none): a manager relaying a call it received. */
int api_client_unary_as(struct api_client *c,
                        const ProtobufCServiceDescriptor *service,
                        const char *method,
                        const ProtobufCMessage *req,
                        uint64_t timeout_ms,
                        const struct api_peer *origin,
                        api_response_cb cb,
                        void *data);
int api_client_stream_as(struct api_client *c,
                         const ProtobufCServiceDescriptor *service,
                         const char *method,
                         const ProtobufCMessage *req,
                         uint64_t timeout_ms,
                         const struct api_peer *origin,
                         api_stream_cb on_msg,
                         api_response_cb done,
                         void *data,
                         struct api_client_call **handle);

/* Cancel (RST_STREAM); `done` then runs with API_CANCELLED. */
void api_client_call_cancel(struct api_client_call *call);

/* True while the connection is up. */
bool api_client_connected(const struct api_client *c);

/* Close the connection: pending calls end with API_UNAVAILABLE (their
 * callbacks run), then `done` runs and the client is freed. */
void api_client_close(struct api_client *c, void (*done)(void *data),
                      void *data);

/* ------------------------------------------------------------ conversions */

/* gRPC code name, e.g. "NOT_FOUND". */
const char *api_status_name(enum api_status status);

/* API_FORWARDED_HEADER's value for `origin`, and back. Parsing fails
 * (SWARM_EINVAL) on anything but the four fields with a known role. */
void api_peer_format_forwarded(const struct api_peer *origin, char *out, size_t size);
int api_peer_parse_forwarded(const char *value, struct api_peer *out);

#endif
