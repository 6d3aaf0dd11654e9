/* Raft's transport between managers, inside mutual TLS on the cluster port.
 *
 * A `struct raft_uv_transport` (raft/uv.h) for raft_uv_init. Raft never sees
 * a socket to another host: each raft connection is one end of a local
 * socketpair (a uv_pipe_t), and this module pumps the bytes between the other
 * end and a TLS 1.3 connection (api/tls.h) negotiated with ALPN "swarm-raft":
 *
 *   raft --pipe--> [socketpair] --bridge--> tls_conn ==TLS==> api_server of
 *   the peer --> accept side bridge --> [socketpair] --pipe--> peer's raft
 *
 * Identity: both sides present certificates of the swarm's root CA. The
 * dialer checks that the server is a manager (OU swarm-manager) of our
 * cluster (O); the acceptor checks the same of the client and takes the
 * peer's raft id and address from its certificate (CN -> raft_id_of_node,
 * which looks them up in the store), never from bytes the peer sends. The
 * dialer still sends its advertised raft address in an 8-byte-headed
 * preamble before raft's own bytes (the wire format), but the acceptor only
 * checks its form: a peer naming another address would otherwise become
 * the leader address followers forward to. Raft itself needs no handshake
 * bytes.
 *
 * Everything runs on one loop. SIGPIPE must be ignored by the process: raft
 * learns that an outbound connection died when its next write fails.
 */
#ifndef SWARM_RAFT_TRANSPORT_H
#define SWARM_RAFT_TRANSPORT_H

#include <openssl/ssl.h>
#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "api.h"

#define RTRANSPORT_ALPN "swarm-raft"
/* Bound on TCP connect + TLS handshake of a dial, and on the wait for the
 * dialer's preamble on the accept side. */
#define RTRANSPORT_DIAL_TIMEOUT_MS 3000
/* Backpressure: stop reading one side while the other has more than HIGH
 * bytes queued, resume below LOW. */
#define RTRANSPORT_HIGH_WATER (1u << 20)
#define RTRANSPORT_LOW_WATER (256u << 10)
/* Inbound raft connections at once. A manager holds one from each peer (a
 * few more while they reconnect); these leave the api_server's connection
 * count, so they are bounded here. */
#define RTRANSPORT_ACCEPT_MAX 64

struct rtransport_config {
    uv_loop_t *loop;
    /* Accept side: "swarm-raft" is registered on this server's TLS listeners
     * (once per server; a later transport on the same server takes the
     * registration over). May be NULL for a transport that only dials. */
    struct api_server *server;
    /* Dial side: client certificate of this manager, trusts the root CA.
     * The transport keeps a reference (SSL_CTX_up_ref). */
    SSL_CTX *client_ctx;
    /* Peers must present O=<cluster_id> and OU=swarm-manager. */
    const char *cluster_id;
    /* Map the node ID of a verified peer certificate (CN) to its raft id and
     * raft address (into `addr`); 0 if it is not a current raft member (the
     * connection is refused and `errmsg`, SWARM_ERRMSG_SIZE bytes, says
     * why). Called for every accepted connection, by rtransport_recheck,
     * and on dial to check that the manager reached is the one raft asked
     * for (a known node with another raft id is refused; an unknown one is
     * accepted, the mapping may lag behind raft). */
    raft_id (*raft_id_of_node)(const char *node_id, char *addr, size_t addr_size, void *data,
                               char *errmsg);
    void *data;
};

/* Fill `t` (its init/listen/connect/close methods and impl; raft owns
 * t->data). Returns 0, SWARM_EINVAL (missing loop, ctx, cluster id or
 * callback), SWARM_ENOMEM, or SWARM_EEXIST if another module registered
 * "swarm-raft" on the server; errmsg says which. */
int rtransport_init(struct raft_uv_transport *t, const struct rtransport_config *cfg,
                    char *errmsg);

/* Use `ctx` for the next dials (after a certificate renewal); connections
 * already up keep theirs. Takes a reference. */
void rtransport_set_client_ctx(struct raft_uv_transport *t, SSL_CTX *ctx);

/* Ask raft_id_of_node again about the accepted connections of `node_id`
 * (NULL: all) and close those it no longer maps to the same raft id: a
 * member removed from the store loses its open raft connections at once. */
void rtransport_recheck(struct raft_uv_transport *t, const char *node_id);

/* Free what rtransport_init allocated: after raft called the transport's
 * close callback (raft_close / rnode_close done), or if raft never started.
 * The server registration stays valid: connections arriving afterwards are
 * refused until another transport is initialised on the same server. */
void rtransport_free(struct raft_uv_transport *t);

#endif
