/* A byte stream over a libuv handle, encrypted with TLS 1.3 (OpenSSL with
 * two memory BIOs, ciphertext pumped to and from libuv) or in plaintext on a
 * unix socket. HTTP/2 (server.c, client.c) runs on it, and so can any raw
 * byte protocol selected by ALPN (e.g. "swarm-raft" for the raft transport).
 *
 * Life of a tls_conn: made by tls_conn_accept (server) or tls_conn_dial /
 * tls_conn_dial_unix (client); the handshake callback says whether it is up;
 * then tls_conn_read_start delivers plaintext and tls_conn_write sends it;
 * tls_conn_close ends it. After tls_conn_close no callback runs except the
 * close callback, after which the object is freed. Everything on one loop. */
#ifndef SWARM_API_TLS_H
#define SWARM_API_TLS_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "api.h"

struct tls_conn;

/* status 0: the connection is up (for a client: TCP connected, handshake
 * done, server name verified). Otherwise a SWARM_E* code and a message such
 * as "connection refused" or "TLS handshake failed: certificate verify
 * failed (hostname mismatch)"; the caller must still tls_conn_close. */
typedef void (*tls_handshake_cb)(struct tls_conn *conn, int status,
                                 const char *errmsg, void *data);
/* `len` bytes of plaintext when status is 0. status < 0 (SWARM_EIO for EOF
 * or a socket error, SWARM_ETLS for a TLS alert) ends the stream: no more
 * reads follow, and the caller closes. */
typedef void (*tls_read_cb)(struct tls_conn *conn, int status,
                            const uint8_t *buf, size_t len,
                            const char *errmsg, void *data);
typedef void (*tls_close_cb)(struct tls_conn *conn, void *data);

/* Accept the connection pending on `server` (a uv_tcp_t or uv_pipe_t
 * listener). With a ctx the TLS handshake starts now and `cb` reports it;
 * without (unix socket) the connection is up at once and `cb` is unused. */
int tls_conn_accept(uv_stream_t *server, SSL_CTX *ctx, tls_handshake_cb cb,
                    void *data, struct tls_conn **out, char *errmsg);

/* Connect to "IP:PORT" ("[IPv6]:PORT", or "localhost:PORT"), then TLS 1.3
 * with SNI and host check against `server_name` and the ALPN protocols in
 * `alpn` (NULL-terminated list). `timeout_ms` bounds connect + handshake.
 * `cb` runs exactly once, never from inside this call. */
int tls_conn_dial(uv_loop_t *loop, const char *addr, SSL_CTX *ctx,
                  const char *server_name, const char *const *alpn,
                  uint64_t timeout_ms, tls_handshake_cb cb, void *data,
                  struct tls_conn **out, char *errmsg);
/* Plaintext connection to a unix socket; `cb` as for tls_conn_dial. */
int tls_conn_dial_unix(uv_loop_t *loop, const char *path,
                       tls_handshake_cb cb, void *data,
                       struct tls_conn **out, char *errmsg);

int tls_conn_read_start(struct tls_conn *conn, tls_read_cb cb, void *data);
/* Pause delivery (e.g. a consumer that is full). Plaintext sockets stop
 * reading; TLS keeps buffering ciphertext in memory until read_start. */
void tls_conn_read_stop(struct tls_conn *conn);
/* Queue plaintext (copied). Never blocks; returns 0 or SWARM_EIO once the
 * connection failed or is closing. */
int tls_conn_write(struct tls_conn *conn, const void *buf, size_t len);
/* Ciphertext bytes handed to libuv and not yet written to the socket. */
size_t tls_conn_pending(const struct tls_conn *conn);
/* Of those, the bytes the socket has not taken yet (libuv's write queue):
 * what a peer that stops reading makes us hold. */
size_t tls_conn_write_queued(const struct tls_conn *conn);
/* How long (ms) bytes have been waiting in the write queue without a write
 * completing; 0 when nothing waits. */
uint64_t tls_conn_write_stalled_ms(const struct tls_conn *conn);
/* Flush queued writes (bounded by a short timer), send close_notify, close.
 * `cb` may be NULL. */
void tls_conn_close(struct tls_conn *conn, tls_close_cb cb, void *data);

/* The verified peer certificate (owned by the conn), or NULL. */
X509 *tls_conn_peer_cert(const struct tls_conn *conn);
/* The negotiated ALPN protocol, or "" (also for plaintext). */
const char *tls_conn_alpn(const struct tls_conn *conn);
/* Who the peer is: LOCAL on a unix socket, ANONYMOUS without certificate,
 * else MANAGER/WORKER from the certificate OU, node_id from CN, cluster_id
 * from O. Returns SWARM_EPERM with a message for an OU that is neither. */
int tls_conn_peer(const struct tls_conn *conn, struct api_peer *out,
                  char *errmsg);
bool tls_conn_is_tls(const struct tls_conn *conn);
/* "IP:PORT" of the peer (server side) or the dialed address; "unix". */
const char *tls_conn_addr(const struct tls_conn *conn);

/* Parse "IP:PORT", "[IPv6]:PORT" or "localhost:PORT". 0 or SWARM_EINVAL. */
int tls_addr_parse(const char *addr, struct sockaddr_storage *out);

/* Let the server's TLS listeners carry a raw byte protocol besides HTTP/2:
 * a client offering ALPN `proto` gets, once its handshake is done and its
 * certificate accepted, handed to `accept_cb` as a tls_conn that the callee
 * owns (read_start it, close it); `peer` is valid during the call only.
 * Such connections are no longer the server's: api_server_shutdown leaves
 * them alone. The server offers "h2" first, then the
 * registered protocols in order. Returns 0, SWARM_EINVAL (bad name, "h2"),
 * SWARM_EEXIST or SWARM_ENOMEM. Implemented in server.c. */
struct api_server;
int api_server_add_alpn(struct api_server *s, const char *proto,
                        void (*accept_cb)(struct tls_conn *conn,
                                          const struct api_peer *peer,
                                          void *data),
                        void *data);

#endif
