/* See transport.h.
 *
 * A bridge joins one raft connection to one TLS connection. Its states:
 *
 *   dial:   DIALING --handshake ok, checks ok--> UP (preamble sent, raft's
 *           connect cb gets its pipe) --EOF/error either side--> CLOSING
 *   accept: PREAMBLE (peer checked from its certificate, waiting for the
 *           dialer's address) --preamble ok--> UP (raft's accept cb gets its
 *           pipe) --EOF/error either side--> CLOSING
 *
 * Failure paths:
 *   - tls_conn_dial fails at once (bad address): connect returns
 *     RAFT_NOCONNECTION, no callback; raft retries after its delay.
 *   - TCP connect / handshake fails or times out, wrong ALPN, server
 *     certificate not a manager of our cluster, or a node with another raft
 *     id: connect cb with RAFT_NOCONNECTION (from the handshake callback, so
 *     never inside connect).
 *   - the transport closes while a dial is pending: connect cb with
 *     RAFT_CANCELED, once the TLS connection is closed, before the
 *     transport's close cb.
 *   - accepted peer not a manager, of another cluster, unknown node, a
 *     transport that is closing / not listening, or RTRANSPORT_ACCEPT_MAX
 *     inbound connections already: the TLS connection is closed, raft never
 *     hears of it.
 *   - preamble malformed or not complete within RTRANSPORT_DIAL_TIMEOUT_MS:
 *     closed, raft never hears of it.
 *   - EOF or error on either side of a live bridge (raft closed its pipe, a
 *     TLS alert, the peer went away, a write failed): both sides are closed.
 *     Bytes still queued towards raft are dropped: raft tolerates lost
 *     messages and reconnects. Raft never reads its outbound pipes, so it
 *     learns of the close from its next write (EPIPE).
 *   - bytes from an accepted peer that are not well-framed raft messages
 *     (wire.h: unknown type, a length out of bounds or inconsistent, a
 *     malformed configuration): closed before raft sees the bad message,
 *     since libraft's decoder trusts those lengths.
 *
 * Backpressure: raft -> TLS stops reading the pipe while the TLS connection
 * has more than RTRANSPORT_HIGH_WATER ciphertext queued (a short timer polls
 * for it to drain: tls_conn has no drain callback); TLS -> raft stops TLS
 * delivery while the pipe's write queue is above it (resumed from the pipe's
 * write callback). */
#include "transport.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "tls.h"
#include "wire.h"

#define RTRANSPORT_MAGIC "SWRT"
#define RTRANSPORT_VERSION 1
#define RTRANSPORT_PREAMBLE_HDR 8
#define RTRANSPORT_ADDR_MAX 255
#define RTRANSPORT_DRAIN_POLL_MS 2
#define RTRANSPORT_BUF 65536

/* One per api_server ever used, kept for the life of the process: the server
 * holds a pointer to it (there is no api_server_remove_alpn), so it must not
 * dangle after rtransport_free; a transport created later on the same server
 * takes it over. Reachable from `regs`, so leak checkers stay quiet. */
struct rtransport_reg {
    struct api_server *server;
    struct rtransport *tr; /* NULL when no live transport */
    struct rtransport_reg *next;
};
static struct rtransport_reg *regs;

struct rtransport_bridge;

struct rtransport {
    struct raft_uv_transport *t;
    uv_loop_t *loop;
    struct rtransport_reg *reg;
    SSL_CTX *client_ctx;
    char cluster_id[64];
    raft_id (*raft_id_of_node)(const char *node_id, char *addr, size_t addr_size, void *data,
                               char *errmsg);
    void *data;
    raft_id id;
    char address[RTRANSPORT_ADDR_MAX + 1];
    raft_uv_accept_cb accept_cb; /* set by listen */
    bool closing;
    bool closer_closed;
    uv_timer_t closer; /* makes the close callback asynchronous */
    raft_uv_transport_close_cb close_cb;
    struct rtransport_bridge *bridges;
    size_t n_accepted; /* bridges from accept, not yet freed */
};

enum bridge_state {
    BRIDGE_DIALING = 1,
    BRIDGE_PREAMBLE,
    BRIDGE_UP,
    BRIDGE_CLOSING,
};

struct rtransport_bridge {
    struct rtransport *tr;
    enum bridge_state state;
    struct tls_conn *tls;
    uv_pipe_t pipe;   /* our end of the socketpair */
    uv_timer_t timer; /* preamble timeout, then drain polling */
    bool pipe_inited;
    bool pipe_paused; /* raft -> TLS stopped: TLS queue full */
    bool tls_paused;  /* TLS -> raft stopped: pipe queue full */
    int open;         /* timer, pipe and tls not yet closed */
    struct rwire *wire; /* accept side: checks every byte bound for raft */
    struct raft_uv_connect *req; /* pending dial */
    raft_uv_connect_cb connect_cb;
    raft_id id;
    bool accepted;
    char node_id[64]; /* accepted: the peer certificate's CN */
    char address[RTRANSPORT_ADDR_MAX + 1]; /* dialed, or the peer's from the store */
    uint8_t pre[RTRANSPORT_PREAMBLE_HDR + RTRANSPORT_ADDR_MAX];
    size_t pre_len;
    struct rtransport_bridge *prev, *next;
    char rbuf[RTRANSPORT_BUF];
};

struct pipe_write {
    uv_write_t req;
    struct rtransport_bridge *b;
    char data[];
};

static const char *const rtransport_alpn[] = {RTRANSPORT_ALPN, NULL};

/* ---------------------------------------------------------------- bridges */

static void bridge_maybe_done(struct rtransport *tr);

static struct rtransport_bridge *bridge_new(struct rtransport *tr)
{
    struct rtransport_bridge *b = calloc(1, sizeof *b);
    if (b == NULL) {
        return NULL;
    }
    b->tr = tr;
    uv_timer_init(tr->loop, &b->timer);
    b->timer.data = b;
    b->open = 1;
    b->next = tr->bridges;
    if (tr->bridges != NULL) {
        tr->bridges->prev = b;
    }
    tr->bridges = b;
    return b;
}

static void bridge_free(struct rtransport_bridge *b)
{
    struct rtransport *tr = b->tr;
    struct raft_uv_connect *req = b->req;
    raft_uv_connect_cb cb = b->connect_cb;
    if (b->prev != NULL) {
        b->prev->next = b->next;
    } else {
        tr->bridges = b->next;
    }
    if (b->next != NULL) {
        b->next->prev = b->prev;
    }
    if (b->wire != NULL) {
        rwire_close(b->wire);
        free(b->wire);
        tr->n_accepted--;
    }
    free(b);
    if (req != NULL) {
        /* Only left pending when the transport closed first. */
        cb(req, NULL, RAFT_CANCELED);
    }
    bridge_maybe_done(tr);
}

static void bridge_unref(struct rtransport_bridge *b)
{
    if (--b->open == 0) {
        bridge_free(b);
    }
}

static void bridge_handle_close_cb(uv_handle_t *h)
{
    bridge_unref(h->data);
}

static void bridge_tls_close_cb(struct tls_conn *conn, void *data)
{
    bridge_unref(data);
}

static void bridge_close(struct rtransport_bridge *b)
{
    struct rtransport *tr = b->tr;
    if (b->state == BRIDGE_CLOSING) {
        return;
    }
    b->state = BRIDGE_CLOSING;
    uv_close((uv_handle_t *)&b->timer, bridge_handle_close_cb);
    if (b->pipe_inited) {
        uv_close((uv_handle_t *)&b->pipe, bridge_handle_close_cb);
    }
    if (b->tls != NULL) {
        tls_conn_close(b->tls, bridge_tls_close_cb, b);
    }
    if (b->req != NULL && !tr->closing) {
        struct raft_uv_connect *req = b->req;
        b->req = NULL;
        b->connect_cb(req, NULL, RAFT_NOCONNECTION);
    }
}

static void raft_pipe_close_cb(uv_handle_t *h)
{
    raft_free(h);
}

static void bridge_tls_read_cb(struct tls_conn *conn, int status, const uint8_t *buf,
                               size_t len, const char *errmsg, void *data);

/* TLS -> raft. The TLS buffer is only valid now: what the pipe does not take
 * at once is copied. */
static void bridge_to_raft(struct rtransport_bridge *b, const uint8_t *buf, size_t len);

static void pipe_write_cb(uv_write_t *req, int status)
{
    struct pipe_write *w = (struct pipe_write *)req;
    struct rtransport_bridge *b = w->b;
    free(w);
    if (b->state == BRIDGE_CLOSING) {
        return;
    }
    if (status < 0) {
        log_debug("raft", "transport: write to raft (%s): %s", b->address,
                  uv_strerror(status));
        bridge_close(b);
        return;
    }
    if (b->tls_paused &&
        uv_stream_get_write_queue_size((uv_stream_t *)&b->pipe) < RTRANSPORT_LOW_WATER) {
        b->tls_paused = false;
        tls_conn_read_start(b->tls, bridge_tls_read_cb, b);
    }
}

static void bridge_to_raft(struct rtransport_bridge *b, const uint8_t *buf, size_t len)
{
    uv_stream_t *s = (uv_stream_t *)&b->pipe;
    if (uv_stream_get_write_queue_size(s) == 0) {
        uv_buf_t ub = uv_buf_init((char *)buf, (unsigned)len);
        int n = uv_try_write(s, &ub, 1);
        if (n < 0 && n != UV_EAGAIN) {
            log_debug("raft", "transport: write to raft (%s): %s", b->address,
                      uv_strerror(n));
            bridge_close(b);
            return;
        }
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
        }
    }
    if (len == 0) {
        return;
    }
    struct pipe_write *w = malloc(sizeof *w + len);
    if (w == NULL) {
        bridge_close(b);
        return;
    }
    w->b = b;
    memcpy(w->data, buf, len);
    uv_buf_t ub = uv_buf_init(w->data, (unsigned)len);
    int rv = uv_write(&w->req, s, &ub, 1, pipe_write_cb);
    if (rv != 0) {
        free(w);
        bridge_close(b);
        return;
    }
    if (!b->tls_paused && uv_stream_get_write_queue_size(s) > RTRANSPORT_HIGH_WATER) {
        b->tls_paused = true;
        tls_conn_read_stop(b->tls);
    }
}

/* Bytes from the TLS peer: on an accepted connection they must pass the
 * framing check before raft gets them. */
static void bridge_from_peer(struct rtransport_bridge *b, const uint8_t *buf, size_t len)
{
    char em[SWARM_ERRMSG_SIZE];
    if (b->wire != NULL && rwire_feed(b->wire, buf, len, em) != 0) {
        log_warn("raft", "transport: raft peer %llu (%s) sent a malformed stream, closing: %s",
                 (unsigned long long)b->id, b->address, em);
        bridge_close(b);
        return;
    }
    bridge_to_raft(b, buf, len);
}

static void bridge_tls_read_cb(struct tls_conn *conn, int status, const uint8_t *buf,
                               size_t len, const char *errmsg, void *data)
{
    struct rtransport_bridge *b = data;
    if (b->state == BRIDGE_CLOSING) {
        return;
    }
    if (status != 0) {
        log_debug("raft", "transport: connection with %llu (%s) ended: %s",
                  (unsigned long long)b->id, b->address,
                  errmsg != NULL ? errmsg : swarm_strerror(status));
        bridge_close(b);
        return;
    }
    bridge_from_peer(b, buf, len);
}

static void pipe_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void pipe_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct rtransport_bridge *b = h->data;
    buf->base = b->rbuf;
    buf->len = sizeof b->rbuf;
}

static void drain_poll_cb(uv_timer_t *t)
{
    struct rtransport_bridge *b = t->data;
    if (b->state == BRIDGE_CLOSING) {
        return;
    }
    if (tls_conn_pending(b->tls) < RTRANSPORT_LOW_WATER) {
        uv_timer_stop(&b->timer);
        b->pipe_paused = false;
        if (uv_read_start((uv_stream_t *)&b->pipe, pipe_alloc_cb, pipe_read_cb) != 0) {
            bridge_close(b);
        }
    }
}

/* raft -> TLS. */
static void pipe_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct rtransport_bridge *b = s->data;
    if (b->state == BRIDGE_CLOSING || n == 0) {
        return;
    }
    if (n < 0) {
        /* Raft closed its end (or the socketpair failed). */
        bridge_close(b);
        return;
    }
    if (tls_conn_write(b->tls, buf->base, (size_t)n) != 0) {
        log_debug("raft", "transport: write to %llu (%s) failed",
                  (unsigned long long)b->id, b->address);
        bridge_close(b);
        return;
    }
    if (tls_conn_pending(b->tls) > RTRANSPORT_HIGH_WATER) {
        uv_read_stop(s);
        b->pipe_paused = true;
        uv_timer_start(&b->timer, drain_poll_cb, RTRANSPORT_DRAIN_POLL_MS,
                       RTRANSPORT_DRAIN_POLL_MS);
    }
}

/* Make the socketpair, start pumping both ways, and return raft's end (a
 * raft_malloc'd uv_pipe_t that raft closes and frees). `extra` are bytes
 * already read from TLS that belong to raft. */
static int bridge_up(struct rtransport_bridge *b, const uint8_t *extra, size_t n_extra,
                     uv_stream_t **out)
{
    struct rtransport *tr = b->tr;
    int fds[2];
    int rv;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
        log_warn("raft", "transport: socketpair: %s", strerror(errno));
        return SWARM_EIO;
    }
    uv_pipe_t *rp = raft_malloc(sizeof *rp);
    if (rp == NULL) {
        close(fds[0]);
        close(fds[1]);
        return SWARM_ENOMEM;
    }
    uv_pipe_init(tr->loop, rp, 0);
    rv = uv_pipe_open(rp, fds[1]);
    if (rv != 0) {
        close(fds[1]);
        close(fds[0]);
        uv_close((uv_handle_t *)rp, raft_pipe_close_cb);
        return SWARM_EIO;
    }
    uv_pipe_init(tr->loop, &b->pipe, 0);
    b->pipe.data = b;
    b->pipe_inited = true;
    b->open++;
    rv = uv_pipe_open(&b->pipe, fds[0]);
    if (rv != 0) {
        close(fds[0]); /* not adopted by the pipe */
    }
    if (rv == 0) {
        rv = uv_read_start((uv_stream_t *)&b->pipe, pipe_alloc_cb, pipe_read_cb);
    }
    if (rv == 0) {
        rv = tls_conn_read_start(b->tls, bridge_tls_read_cb, b);
    }
    if (rv != 0) {
        uv_close((uv_handle_t *)rp, raft_pipe_close_cb);
        return SWARM_EIO;
    }
    b->state = BRIDGE_UP;
    if (n_extra > 0) {
        bridge_from_peer(b, extra, n_extra);
        if (b->state == BRIDGE_CLOSING) {
            uv_close((uv_handle_t *)rp, raft_pipe_close_cb);
            return SWARM_EPROTO;
        }
    }
    *out = (uv_stream_t *)rp;
    return 0;
}

/* ------------------------------------------------------------------- dial */

/* The server must be a manager of our cluster, reached with our ALPN, and not
 * a known node with another raft id. */
static int dial_check_server(struct rtransport_bridge *b, char *errmsg)
{
    struct rtransport *tr = b->tr;
    struct api_peer peer;
    if (strcmp(tls_conn_alpn(b->tls), RTRANSPORT_ALPN) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "server did not select ALPN %s", RTRANSPORT_ALPN);
        return SWARM_EPROTO;
    }
    if (tls_conn_peer(b->tls, &peer, errmsg) != 0) {
        return SWARM_EPERM;
    }
    if (peer.role != API_ROLE_MANAGER) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "server certificate is not a manager's");
        return SWARM_EPERM;
    }
    if (strcmp(peer.cluster_id, tr->cluster_id) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "server belongs to cluster \"%s\"", peer.cluster_id);
        return SWARM_EPERM;
    }
    char addr[RTRANSPORT_ADDR_MAX + 1], unused[SWARM_ERRMSG_SIZE];
    raft_id id = tr->raft_id_of_node(peer.node_id, addr, sizeof addr, tr->data, unused);
    if (id != 0 && id != b->id) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "server is node %s, raft id %llu", peer.node_id,
                      (unsigned long long)id);
        return SWARM_EPERM;
    }
    return 0;
}

static void dial_handshake_cb(struct tls_conn *conn, int status, const char *errmsg,
                              void *data)
{
    struct rtransport_bridge *b = data;
    struct rtransport *tr = b->tr;
    uint8_t pre[RTRANSPORT_PREAMBLE_HDR + RTRANSPORT_ADDR_MAX];
    size_t alen = strlen(tr->address);
    char why[SWARM_ERRMSG_SIZE];
    uv_stream_t *stream;
    if (b->state == BRIDGE_CLOSING) {
        return;
    }
    if (status != 0) {
        log_debug("raft", "transport: connect to %llu (%s): %s",
                  (unsigned long long)b->id, b->address, errmsg);
        bridge_close(b);
        return;
    }
    if (dial_check_server(b, why) != 0) {
        log_warn("raft", "transport: refusing %s as raft peer %llu: %s", b->address,
                 (unsigned long long)b->id, why);
        bridge_close(b);
        return;
    }
    memcpy(pre, RTRANSPORT_MAGIC, 4);
    pre[4] = RTRANSPORT_VERSION;
    pre[5] = 0;
    pre[6] = (uint8_t)(alen & 0xff);
    pre[7] = (uint8_t)(alen >> 8);
    memcpy(pre + RTRANSPORT_PREAMBLE_HDR, tr->address, alen);
    if (tls_conn_write(b->tls, pre, RTRANSPORT_PREAMBLE_HDR + alen) != 0 ||
        bridge_up(b, NULL, 0, &stream) != 0) {
        bridge_close(b);
        return;
    }
    struct raft_uv_connect *req = b->req;
    b->req = NULL;
    b->connect_cb(req, stream, 0);
}

static int rtransport_connect(struct raft_uv_transport *t, struct raft_uv_connect *req,
                              raft_id id, const char *address, raft_uv_connect_cb cb)
{
    struct rtransport *tr = t->impl;
    char em[SWARM_ERRMSG_SIZE] = "";
    assert(!tr->closing);
    if (strlen(address) > RTRANSPORT_ADDR_MAX) {
        return RAFT_NOCONNECTION;
    }
    struct rtransport_bridge *b = bridge_new(tr);
    if (b == NULL) {
        return RAFT_NOMEM;
    }
    b->state = BRIDGE_DIALING;
    b->id = id;
    snprintf(b->address, sizeof b->address, "%s", address);
    int rv = tls_conn_dial(tr->loop, address, tr->client_ctx, API_SERVER_NAME,
                           rtransport_alpn, RTRANSPORT_DIAL_TIMEOUT_MS,
                           dial_handshake_cb, b, &b->tls, em);
    if (rv != 0) {
        b->tls = NULL; /* tls_conn_dial cleaned up after itself */
        log_debug("raft", "transport: connect to %llu (%s): %s", (unsigned long long)id,
                  address, em);
        bridge_close(b);
        return RAFT_NOCONNECTION;
    }
    b->open++;
    b->req = req;
    b->connect_cb = cb;
    return 0;
}

/* ----------------------------------------------------------------- accept */

static void preamble_timeout_cb(uv_timer_t *t)
{
    struct rtransport_bridge *b = t->data;
    if (b->state == BRIDGE_CLOSING) {
        return;
    }
    log_warn("raft", "transport: raft peer %llu sent no preamble, closing",
             (unsigned long long)b->id);
    bridge_close(b);
}

/* 0 when the preamble is complete (*used bytes of buf consumed), 1 when more
 * is needed, SWARM_EPROTO when it is malformed. */
static int preamble_feed(struct rtransport_bridge *b, const uint8_t *buf, size_t len,
                         size_t *used)
{
    size_t alen = 0;
    *used = 0;
    for (;;) {
        size_t want = RTRANSPORT_PREAMBLE_HDR;
        if (b->pre_len >= RTRANSPORT_PREAMBLE_HDR) {
            alen = (size_t)b->pre[6] | ((size_t)b->pre[7] << 8);
            if (memcmp(b->pre, RTRANSPORT_MAGIC, 4) != 0 ||
                b->pre[4] != RTRANSPORT_VERSION || alen == 0 ||
                alen > RTRANSPORT_ADDR_MAX) {
                return SWARM_EPROTO;
            }
            want += alen;
            if (b->pre_len == want) {
                break;
            }
        }
        size_t n = want - b->pre_len;
        if (n > len - *used) {
            n = len - *used;
        }
        if (n == 0) {
            return 1;
        }
        memcpy(b->pre + b->pre_len, buf + *used, n);
        b->pre_len += n;
        *used += n;
    }
    for (size_t i = 0; i < alen; i++) {
        uint8_t c = b->pre[RTRANSPORT_PREAMBLE_HDR + i];
        if (c <= 0x20 || c >= 0x7f) {
            return SWARM_EPROTO;
        }
    }
    /* The address the peer claims is not used: b->address came from the
     * store when the connection was accepted. */
    return 0;
}

static void preamble_read_cb(struct tls_conn *conn, int status, const uint8_t *buf,
                             size_t len, const char *errmsg, void *data)
{
    struct rtransport_bridge *b = data;
    struct rtransport *tr = b->tr;
    uv_stream_t *stream;
    size_t used;
    int rv;
    if (b->state == BRIDGE_CLOSING) {
        return;
    }
    if (status != 0) {
        bridge_close(b);
        return;
    }
    rv = preamble_feed(b, buf, len, &used);
    if (rv == 1) {
        return;
    }
    if (rv != 0) {
        log_warn("raft", "transport: raft peer %llu sent a bad preamble, closing",
                 (unsigned long long)b->id);
        bridge_close(b);
        return;
    }
    uv_timer_stop(&b->timer);
    if (tr->closing || tr->accept_cb == NULL || bridge_up(b, buf + used, len - used, &stream) != 0) {
        bridge_close(b);
        return;
    }
    log_debug("raft", "transport: raft peer %llu (%s) connected", (unsigned long long)b->id,
              b->address);
    tr->accept_cb(tr->t, b->id, b->address, stream);
}

/* Called by the api_server once a client offering "swarm-raft" completed its
 * handshake with a certificate of our root CA (or none). */
static struct log_limit refused_peer_limit;

static void rtransport_accept_cb(struct tls_conn *conn, const struct api_peer *peer,
                                 void *data)
{
    struct rtransport_reg *reg = data;
    struct rtransport *tr = reg->tr;
    char addr[RTRANSPORT_ADDR_MAX + 1] = "";
    char reason[SWARM_ERRMSG_SIZE] = "";
    const char *why = NULL;
    raft_id id = 0;
    if (tr == NULL || tr->closing || tr->accept_cb == NULL) {
        /* Peers retry every second while raft is down here: not news. */
        log_debug("raft", "transport: refusing raft connection from %s (node \"%s\"): "
                  "raft is not running here", peer->addr, peer->node_id);
        tls_conn_close(conn, NULL, NULL);
        return;
    }
    if (peer->role != API_ROLE_MANAGER) {
        why = "not a manager certificate";
    } else if (strcmp(peer->cluster_id, tr->cluster_id) != 0) {
        why = "certificate of another cluster";
    } else if ((id = tr->raft_id_of_node(peer->node_id, addr, sizeof addr, tr->data,
                                         reason)) == 0) {
        why = reason[0] ? reason : "not a raft member";
    } else if (addr[0] == '\0') {
        why = "no raft address known for it";
    } else if (tr->n_accepted >= RTRANSPORT_ACCEPT_MAX) {
        why = "too many raft connections";
    }
    if (why != NULL) {
        log_warn_limited(&refused_peer_limit, "raft",
                         "transport: refusing raft peer from %s (node \"%s\"): %s", peer->addr,
                         peer->node_id, why);
        tls_conn_close(conn, NULL, NULL);
        return;
    }
    struct rtransport_bridge *b = bridge_new(tr);
    if (b == NULL) {
        tls_conn_close(conn, NULL, NULL);
        return;
    }
    b->tls = conn;
    b->open++;
    b->state = BRIDGE_PREAMBLE;
    b->wire = malloc(sizeof *b->wire);
    if (b->wire == NULL) {
        bridge_close(b);
        return;
    }
    rwire_init(b->wire);
    tr->n_accepted++;
    b->id = id;
    b->accepted = true;
    snprintf(b->node_id, sizeof b->node_id, "%s", peer->node_id);
    snprintf(b->address, sizeof b->address, "%s", addr);
    if (tls_conn_read_start(conn, preamble_read_cb, b) != 0) {
        bridge_close(b);
        return;
    }
    uv_timer_start(&b->timer, preamble_timeout_cb, RTRANSPORT_DIAL_TIMEOUT_MS, 0);
}

/* ------------------------------------------------------- transport methods */

static int rtransport_init_cb(struct raft_uv_transport *t, raft_id id, const char *address)
{
    struct rtransport *tr = t->impl;
    if (strlen(address) > RTRANSPORT_ADDR_MAX) {
        snprintf(t->errmsg, sizeof t->errmsg, "address too long");
        return RAFT_INVALID;
    }
    tr->id = id;
    snprintf(tr->address, sizeof tr->address, "%s", address);
    return 0;
}

static int rtransport_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
    struct rtransport *tr = t->impl;
    tr->accept_cb = cb;
    return 0;
}

static void bridge_maybe_done(struct rtransport *tr)
{
    if (!tr->closing || !tr->closer_closed || tr->bridges != NULL || tr->close_cb == NULL) {
        return;
    }
    raft_uv_transport_close_cb cb = tr->close_cb;
    tr->close_cb = NULL;
    cb(tr->t);
}

static void closer_close_cb(uv_handle_t *h)
{
    struct rtransport *tr = h->data;
    tr->closer_closed = true;
    bridge_maybe_done(tr);
}

static void rtransport_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
    struct rtransport *tr = t->impl;
    assert(!tr->closing);
    tr->closing = true;
    tr->accept_cb = NULL;
    tr->close_cb = cb;
    for (struct rtransport_bridge *b = tr->bridges; b != NULL; b = b->next) {
        bridge_close(b);
    }
    uv_timer_init(tr->loop, &tr->closer);
    tr->closer.data = tr;
    uv_close((uv_handle_t *)&tr->closer, closer_close_cb);
}

/* --------------------------------------------------------------- lifecycle */

static int rtransport_register(struct rtransport *tr, struct api_server *server,
                               char *errmsg)
{
    struct rtransport_reg *reg;
    bool fresh = false;
    for (reg = regs; reg != NULL; reg = reg->next) {
        if (reg->server == server) {
            break;
        }
    }
    if (reg == NULL) {
        reg = calloc(1, sizeof *reg);
        if (reg == NULL) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
            return SWARM_ENOMEM;
        }
        reg->server = server;
        fresh = true;
    }
    int rv = api_server_add_alpn(server, RTRANSPORT_ALPN, rtransport_accept_cb, reg);
    if (rv == SWARM_EEXIST && !fresh) {
        rv = 0; /* ours, from an earlier transport on this server */
    }
    if (rv != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "registering ALPN %s: %s",
                      RTRANSPORT_ALPN, swarm_strerror(rv));
        if (fresh) {
            free(reg);
        }
        return rv;
    }
    if (fresh) {
        reg->next = regs;
        regs = reg;
    }
    reg->tr = tr;
    tr->reg = reg;
    return 0;
}

int rtransport_init(struct raft_uv_transport *t, const struct rtransport_config *cfg,
                    char *errmsg)
{
    struct rtransport *tr;
    int rv;
    if (cfg->loop == NULL || cfg->client_ctx == NULL || cfg->cluster_id == NULL ||
        cfg->cluster_id[0] == '\0' || strlen(cfg->cluster_id) >= sizeof tr->cluster_id ||
        cfg->raft_id_of_node == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "raft transport: loop, client TLS context, cluster id and "
                      "node mapping are required");
        return SWARM_EINVAL;
    }
    tr = calloc(1, sizeof *tr);
    if (tr == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
        return SWARM_ENOMEM;
    }
    tr->t = t;
    tr->loop = cfg->loop;
    snprintf(tr->cluster_id, sizeof tr->cluster_id, "%s", cfg->cluster_id);
    tr->raft_id_of_node = cfg->raft_id_of_node;
    tr->data = cfg->data;
    if (cfg->server != NULL) {
        rv = rtransport_register(tr, cfg->server, errmsg);
        if (rv != 0) {
            free(tr);
            return rv;
        }
    }
    SSL_CTX_up_ref(cfg->client_ctx);
    tr->client_ctx = cfg->client_ctx;
    memset(t, 0, sizeof *t);
    t->impl = tr;
    t->init = rtransport_init_cb;
    t->listen = rtransport_listen;
    t->connect = rtransport_connect;
    t->close = rtransport_close;
    return 0;
}

void rtransport_set_client_ctx(struct raft_uv_transport *t, SSL_CTX *ctx)
{
    struct rtransport *tr = t->impl;
    SSL_CTX_up_ref(ctx);
    SSL_CTX_free(tr->client_ctx);
    tr->client_ctx = ctx;
}

void rtransport_recheck(struct raft_uv_transport *t, const char *node_id)
{
    struct rtransport *tr = t->impl;
    char addr[RTRANSPORT_ADDR_MAX + 1], why[SWARM_ERRMSG_SIZE];
    if (tr == NULL || tr->closing) {
        return;
    }
    /* bridge_close frees nothing now (only in close callbacks): the list
     * stays walkable. */
    for (struct rtransport_bridge *b = tr->bridges; b != NULL; b = b->next) {
        if (!b->accepted || b->state == BRIDGE_CLOSING ||
            (node_id != NULL && strcmp(b->node_id, node_id) != 0)) {
            continue;
        }
        why[0] = '\0';
        raft_id id = tr->raft_id_of_node(b->node_id, addr, sizeof addr, tr->data, why);
        if (id == b->id) {
            continue;
        }
        log_warn("raft", "transport: closing the raft connection of node \"%s\" (raft id %llu): %s",
                 b->node_id, (unsigned long long)b->id, why[0] ? why : "no longer a raft member");
        bridge_close(b);
    }
}

void rtransport_free(struct raft_uv_transport *t)
{
    struct rtransport *tr = t->impl;
    if (tr == NULL) {
        return;
    }
    assert(tr->bridges == NULL);
    if (tr->reg != NULL && tr->reg->tr == tr) {
        tr->reg->tr = NULL;
    }
    SSL_CTX_free(tr->client_ctx);
    free(tr);
    t->impl = NULL;
}
