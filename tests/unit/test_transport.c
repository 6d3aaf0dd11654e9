/* The raft transport over mutual TLS (raft/transport.h), in one process on one
 * loop with real TLS listeners on 127.0.0.2x:
 *   - refusals on the accept side: a certificate of another CA, a worker, a
 *     manager of another cluster, an unknown node, a bad preamble; none of
 *     them reaches raft;
 *   - the bridge itself with a stub raft: identity from the certificate,
 *     address from the preamble, 8 MiB each way intact with a reader that
 *     stalls (backpressure), EOF from either side;
 *   - the dial side: nothing listening, a server of another cluster, close
 *     with a dial pending (RAFT_CANCELED, then the close callback);
 *   - three managers with real raft nodes and stores: bootstrap, add two
 *     voters, commands (one of 1.5 MiB) applied on every store, garbage from
 *     an authenticated peer survived, the leader stopped and a new one elected
 *     that accepts a proposal;
 *   - the framing check (raft/wire.h), pure: well-formed messages of every
 *     type pass whole and byte by byte, each malformed one is refused before
 *     its last byte. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "statedir.h"
#include "api.h"
#include "err.h"
#include "pki.h"
#include "raftnode.h"
#include "store.h"
#include "test.h"
#include "tls.h"
#include "transport.h"
#include "wire.h"

#define CLUSTER "clusterA"
#define BIG (8u << 20)

static uv_loop_t loop;
static uv_timer_t tick; /* bounds each UV_RUN_ONCE */

/* What the stub raft and the dialer expect at each offset of a stream. */
static const uint8_t *stream_expect;

static uint8_t stream_byte(size_t off)
{
    return stream_expect != NULL ? stream_expect[off] : (uint8_t)(off * 7);
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

/* `total` bytes of well-framed raft traffic (the bridge checks the framing of
 * what goes to raft): one install-snapshot message whose data is the i * 7
 * pattern. */
static void frame_snapshot(uint8_t *p, size_t total)
{
    static const uint8_t conf[24] = {1, 1, 0, 0, 0, 0, 0, 0, 0, /* format, n = 1 */
                                     1, 0, 0, 0, 0, 0, 0, 0,    /* id 1 */
                                     'a', 0, 1};                /* address, voter */
    memset(p, 0, 16 + 80);
    put_le64(p, RAFT_IO_INSTALL_SNAPSHOT);
    put_le64(p + 8, 56 + sizeof conf);
    put_le64(p + 16 + 32, sizeof conf);
    memcpy(p + 16 + 40, conf, sizeof conf);
    put_le64(p + 16 + 64, total - 16 - 80);
    for (size_t i = 16 + 80; i < total; i++) {
        p[i] = (uint8_t)(i * 7);
    }
}

/* ------------------------------------------------------------- helpers */

static void tick_cb(uv_timer_t *t)
{
}

typedef bool (*pred_fn)(void *arg);

static bool run_until(pred_fn pred, void *arg, uint64_t ms)
{
    uv_update_time(&loop);
    uint64_t deadline = uv_now(&loop) + ms;
    bool ok;
    uv_timer_start(&tick, tick_cb, 10, 10);
    while (!(ok = pred(arg)) && uv_now(&loop) < deadline) {
        uv_run(&loop, UV_RUN_ONCE);
        uv_update_time(&loop);
    }
    uv_timer_stop(&tick);
    return ok;
}

static bool flag_set(void *arg)
{
    return *(bool *)arg;
}

struct counter {
    int *p;
    int want;
};

static bool counter_reached(void *arg)
{
    struct counter *c = arg;
    return *c->p >= c->want;
}

static void loop_setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&loop);
    uv_timer_init(&loop, &tick);
}

static int loop_teardown(void)
{
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    return uv_loop_close(&loop);
}

/* The cases that use the loop: set up before, and after (passed or failed)
 * drained and closed; uv_loop_close must return 0. */
struct loop_fx {
    int unused;
};

static void loop_fx_setup(struct loop_fx *f)
{
    (void)f;
    loop_setup();
}

static void loop_fx_teardown(struct loop_fx *f)
{
    (void)f;
    ASSERT_INT_EQ(loop_teardown(), 0);
}

#define LOOP_TEST(tname) TEST_F(tname, struct loop_fx, loop_fx_setup, loop_fx_teardown)

struct ca {
    EVP_PKEY *key;
    X509 *cert;
};

struct ident {
    EVP_PKEY *key;
    X509 *cert;
    SSL_CTX *server_ctx;
    SSL_CTX *client_ctx;
};

static int ca_make(struct ca *ca)
{
    char em[SWARM_ERRMSG_SIZE];
    int rv = pki_key_generate(&ca->key, em);
    if (rv == 0) {
        rv = pki_root_ca_create(ca->key, time(NULL), PKI_ROOT_LIFETIME_S, &ca->cert, em);
    }
    return rv;
}

static void ca_free(struct ca *ca)
{
    X509_free(ca->cert);
    EVP_PKEY_free(ca->key);
}

static int ident_make(struct ca *ca, const char *node_id, const char *ou,
                      const char *cluster, struct ident *out)
{
    char em[SWARM_ERRMSG_SIZE];
    int rv;
    memset(out, 0, sizeof *out);
    if ((rv = pki_key_generate(&out->key, em)) != 0 ||
        (rv = pki_cert_issue(ca->cert, ca->key, out->key, node_id, ou, cluster,
                             time(NULL), PKI_NODE_LIFETIME_S, &out->cert, em)) != 0 ||
        (rv = pki_server_ctx(ca->cert, out->cert, out->key, &out->server_ctx, em)) != 0 ||
        (rv = pki_client_ctx(ca->cert, out->cert, out->key, &out->client_ctx, em)) != 0) {
        fprintf(stderr, "ident %s: %s\n", node_id, em);
    }
    return rv;
}

static void ident_free(struct ident *id)
{
    SSL_CTX_free(id->server_ctx);
    SSL_CTX_free(id->client_ctx);
    X509_free(id->cert);
    EVP_PKEY_free(id->key);
}

/* node1..node3 are raft ids 1..3 with the addresses in map_addr (the
 * "store"), unless map_gone says the store no longer lists them; anything
 * else is unknown. */
static char map_addr[4][64];
static bool map_gone[4];

static void map_reset(void)
{
    for (int i = 1; i <= 3; i++) {
        snprintf(map_addr[i], sizeof map_addr[i], "127.0.0.2%d:4242", i);
        map_gone[i] = false;
    }
}

static raft_id map_node(const char *node_id, char *addr, size_t addr_size, void *data, char *errmsg)
{
    if (strncmp(node_id, "node", 4) == 0 && node_id[4] >= '1' && node_id[4] <= '3' &&
        node_id[5] == '\0' && !map_gone[node_id[4] - '0']) {
        snprintf(addr, addr_size, "%s", map_addr[node_id[4] - '0']);
        return (raft_id)(node_id[4] - '0');
    }
    errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "%s is not a raft member", node_id);
    return 0;
}

static void server_done_cb(void *data)
{
    *(bool *)data = true;
}

static bool server_stop(struct api_server *s)
{
    bool done = false;
    api_server_shutdown(s, 0, server_done_cb, &done);
    return run_until(flag_set, &done, 5000);
}

/* A TLS client speaking raw bytes on ALPN swarm-raft. */
struct dialer {
    struct tls_conn *conn;
    bool up;
    bool ended;
    int hs_status;
    int end_status;
    bool closed;
    size_t received;
    size_t bad; /* bytes not matching the expected pattern */
    const uint8_t *send_after_up;
    size_t send_len;
};

static void dialer_read_cb(struct tls_conn *c, int status, const uint8_t *buf, size_t len,
                           const char *errmsg, void *data)
{
    struct dialer *d = data;
    if (status != 0) {
        d->ended = true;
        d->end_status = status;
        return;
    }
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != stream_byte(d->received + i)) {
            d->bad++;
        }
    }
    d->received += len;
}

static void dialer_hs_cb(struct tls_conn *c, int status, const char *errmsg, void *data)
{
    struct dialer *d = data;
    d->hs_status = status;
    if (status != 0) {
        d->ended = true;
        d->end_status = status;
        return;
    }
    d->up = true;
    if (d->send_len > 0) {
        tls_conn_write(c, d->send_after_up, d->send_len);
    }
    tls_conn_read_start(c, dialer_read_cb, d);
}

static int dialer_start(struct dialer *d, const char *addr, SSL_CTX *ctx)
{
    static const char *const alpn[] = {RTRANSPORT_ALPN, NULL};
    char em[SWARM_ERRMSG_SIZE];
    return tls_conn_dial(&loop, addr, ctx, API_SERVER_NAME, alpn, 3000, dialer_hs_cb, d,
                         &d->conn, em);
}

static void dialer_close_cb(struct tls_conn *c, void *data)
{
    ((struct dialer *)data)->closed = true;
}

static bool dialer_stop(struct dialer *d)
{
    tls_conn_close(d->conn, dialer_close_cb, d);
    return run_until(flag_set, &d->closed, 5000);
}

static bool dialer_ended(void *arg)
{
    return ((struct dialer *)arg)->ended;
}

/* Preamble + `extra` bytes, as the transport's dial side would send. */
static size_t preamble(uint8_t *out, const char *address)
{
    size_t n = strlen(address);
    memcpy(out, "SWRT\x01\x00", 6);
    out[6] = (uint8_t)n;
    out[7] = 0;
    memcpy(out + 8, address, n);
    return 8 + n;
}

/* ----------------------------------------------- a transport with stub raft */

struct stub {
    struct ca ca;
    struct ident mgr;   /* the server's identity: node1 */
    struct api_server *server;
    char address[64];
    struct raft_uv_transport t;
    int accepted;
    raft_id peer_id;
    char peer_address[64];
    uv_pipe_t *stream;
    bool stream_closed;
    bool stream_eof;
    size_t stream_received;
    size_t stream_bad;
    bool transport_closed;
};

static struct stub *the_stub;

static void raft_stream_close_cb(uv_handle_t *h)
{
    raft_free(h);
}

static void stub_accept_cb(struct raft_uv_transport *t, raft_id id, const char *address,
                           uv_stream_t *stream)
{
    struct stub *s = the_stub;
    s->accepted++;
    s->peer_id = id;
    snprintf(s->peer_address, sizeof s->peer_address, "%s", address);
    if (s->stream != NULL) {
        uv_close((uv_handle_t *)stream, raft_stream_close_cb);
        return;
    }
    s->stream = (uv_pipe_t *)stream;
    s->stream->data = s;
}

static int stub_setup(struct stub *s)
{
    char em[SWARM_ERRMSG_SIZE];
    memset(s, 0, sizeof *s);
    the_stub = s;
    map_reset();
    if (ca_make(&s->ca) != 0 || ident_make(&s->ca, "node1", API_OU_MANAGER, CLUSTER, &s->mgr) != 0) {
        return -1;
    }
    s->server = api_server_new(&loop, 0);
    if (api_server_listen_tls(s->server, "127.0.0.24:0", s->mgr.server_ctx, em) != 0) {
        fprintf(stderr, "listen: %s\n", em);
        return -1;
    }
    snprintf(s->address, sizeof s->address, "127.0.0.24:%d", api_server_tls_port(s->server));
    snprintf(map_addr[1], sizeof map_addr[1], "%s", s->address);
    struct rtransport_config cfg = {
        .loop = &loop,
        .server = s->server,
        .client_ctx = s->mgr.client_ctx,
        .cluster_id = CLUSTER,
        .raft_id_of_node = map_node,
    };
    if (rtransport_init(&s->t, &cfg, em) != 0) {
        fprintf(stderr, "rtransport_init: %s\n", em);
        return -1;
    }
    if (s->t.init(&s->t, 1, s->address) != 0 || s->t.listen(&s->t, stub_accept_cb) != 0) {
        return -1;
    }
    return 0;
}

static void stub_transport_close_cb(struct raft_uv_transport *t)
{
    the_stub->transport_closed = true;
}

static void stub_stream_close_cb(uv_handle_t *h)
{
    the_stub->stream_closed = true;
    raft_free(h);
}

static int stub_teardown(struct stub *s)
{
    if (s->stream != NULL) {
        uv_close((uv_handle_t *)s->stream, stub_stream_close_cb);
        if (!run_until(flag_set, &s->stream_closed, 5000)) {
            return -1;
        }
    }
    s->t.close(&s->t, stub_transport_close_cb);
    if (!run_until(flag_set, &s->transport_closed, 5000)) {
        return -2;
    }
    rtransport_free(&s->t);
    if (!server_stop(s->server)) {
        return -3;
    }
    ident_free(&s->mgr);
    ca_free(&s->ca);
    return 0;
}

/* A client with `client_ctx` dials the stub's server and sends `send`; the
 * connection must end without raft hearing of it. */
static int refused(struct stub *s, SSL_CTX *client_ctx, const uint8_t *send, size_t len)
{
    struct dialer d = {.send_after_up = send, .send_len = len};
    if (dialer_start(&d, s->address, client_ctx) != 0) {
        return -1;
    }
    if (!run_until(dialer_ended, &d, 5000)) {
        return -2;
    }
    if (!dialer_stop(&d)) {
        return -3;
    }
    return s->accepted == 0 ? 0 : -4;
}

LOOP_TEST(accept_refuses_foreign_ca_worker_other_cluster_unknown_node)
{
    struct stub s;
    struct ca other_ca;
    struct ident foreign, worker, other_cluster, unknown;
    uint8_t pre[300];
    size_t n;
    ASSERT_INT_EQ(stub_setup(&s), 0);
    ASSERT_INT_EQ(ca_make(&other_ca), 0);
    /* A manager of "our" cluster, but signed by another root CA. */
    ASSERT_INT_EQ(ident_make(&other_ca, "node2", API_OU_MANAGER, CLUSTER, &foreign), 0);
    /* Same CA, OU swarm-worker. */
    ASSERT_INT_EQ(ident_make(&s.ca, "node2", API_OU_WORKER, CLUSTER, &worker), 0);
    /* Same CA, manager of another cluster. */
    ASSERT_INT_EQ(ident_make(&s.ca, "node2", API_OU_MANAGER, "clusterB", &other_cluster), 0);
    /* Same CA and cluster, but a node raft does not know. */
    ASSERT_INT_EQ(ident_make(&s.ca, "node9", API_OU_MANAGER, CLUSTER, &unknown), 0);
    n = preamble(pre, "127.0.0.99:2377");

    /* The foreign certificate fails the server's verification (the api_server
     * refuses it before the transport sees it). Its own client context trusts
     * the other CA, so make one that trusts ours and presents it. */
    {
        SSL_CTX *ctx = NULL;
        char em[SWARM_ERRMSG_SIZE];
        ASSERT_INT_EQ(pki_client_ctx(s.ca.cert, foreign.cert, foreign.key, &ctx, em), 0);
        ASSERT_INT_EQ(refused(&s, ctx, pre, n), 0);
        SSL_CTX_free(ctx);
    }
    ASSERT_INT_EQ(refused(&s, worker.client_ctx, pre, n), 0);
    ASSERT_INT_EQ(refused(&s, other_cluster.client_ctx, pre, n), 0);
    ASSERT_INT_EQ(refused(&s, unknown.client_ctx, pre, n), 0);

    /* A good manager with a bad preamble (raft bytes straight away, or a
     * wrong magic) is refused too. */
    {
        struct ident good;
        static const uint8_t junk[40] = {99, 0, 0, 0, 0, 0, 0, 0, 24};
        ASSERT_INT_EQ(ident_make(&s.ca, "node2", API_OU_MANAGER, CLUSTER, &good), 0);
        ASSERT_INT_EQ(refused(&s, good.client_ctx, junk, sizeof junk), 0);
        ident_free(&good);
    }

    ident_free(&foreign);
    ident_free(&worker);
    ident_free(&other_cluster);
    ident_free(&unknown);
    ca_free(&other_ca);
    ASSERT_INT_EQ(stub_teardown(&s), 0);
}

static bool stub_accepted(void *arg)
{
    return ((struct stub *)arg)->accepted > 0;
}

static void stub_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    static char b[65536];
    buf->base = b;
    buf->len = sizeof b;
}

static void stub_read_cb(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct stub *s = st->data;
    if (n < 0) {
        s->stream_eof = true;
        uv_read_stop(st);
        return;
    }
    for (ssize_t i = 0; i < n; i++) {
        if ((uint8_t)buf->base[i] != stream_byte(s->stream_received + (size_t)i)) {
            s->stream_bad++;
        }
    }
    s->stream_received += (size_t)n;
}

static bool stub_got_all(void *arg)
{
    return ((struct stub *)arg)->stream_received >= BIG;
}

static bool dialer_got_all(void *arg)
{
    return ((struct dialer *)arg)->received >= BIG;
}

static bool stub_eof(void *arg)
{
    return ((struct stub *)arg)->stream_eof;
}

struct stub_write {
    uv_write_t req;
    bool done;
    int status;
};

static void stub_write_cb(uv_write_t *req, int status)
{
    struct stub_write *w = (struct stub_write *)req;
    w->done = true;
    w->status = status;
}

LOOP_TEST(bridge_carries_bytes_both_ways_with_backpressure)
{
    struct stub s;
    struct ident peer;
    struct dialer d = {0};
    uint8_t *big = malloc(BIG + 300);
    size_t n;
    ASSERT(big != NULL);
    ASSERT_INT_EQ(stub_setup(&s), 0);
    ASSERT_INT_EQ(ident_make(&s.ca, "node2", API_OU_MANAGER, CLUSTER, &peer), 0);

    /* Preamble then 8 MiB in one go; the stub raft does not read yet. The
     * preamble names an address the store does not give node2. */
    n = preamble(big, "127.0.0.99:4242");
    frame_snapshot(big + n, BIG);
    stream_expect = big + n;
    d.send_after_up = big;
    d.send_len = n + BIG;
    ASSERT_INT_EQ(dialer_start(&d, s.address, peer.client_ctx), 0);
    ASSERT(run_until(stub_accepted, &s, 5000));
    ASSERT_INT_EQ(s.accepted, 1);
    ASSERT_INT_EQ(s.peer_id, 2); /* from the certificate's CN */
    ASSERT_STR_EQ(s.peer_address, "127.0.0.22:4242"); /* from the store, not the preamble */
    /* Let the bridge fill the socketpair and stop reading TLS. */
    for (int i = 0; i < 20; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    ASSERT_INT_EQ(uv_read_start((uv_stream_t *)s.stream, stub_alloc_cb, stub_read_cb), 0);
    ASSERT(run_until(stub_got_all, &s, 20000));
    ASSERT_INT_EQ(s.stream_received, BIG);
    ASSERT_INT_EQ(s.stream_bad, 0);

    /* raft -> peer: 8 MiB written on raft's end arrive intact. */
    {
        struct stub_write w = {0};
        uv_buf_t b = uv_buf_init((char *)big + n, BIG);
        /* The peer stalls for a while, then reads everything. */
        tls_conn_read_stop(d.conn);
        ASSERT_INT_EQ(uv_write(&w.req, (uv_stream_t *)s.stream, &b, 1, stub_write_cb), 0);
        for (int i = 0; i < 50; i++) {
            uv_run(&loop, UV_RUN_NOWAIT);
        }
        ASSERT_INT_EQ(tls_conn_read_start(d.conn, dialer_read_cb, &d), 0);
        ASSERT(run_until(dialer_got_all, &d, 20000));
        ASSERT(run_until(flag_set, &w.done, 5000));
        ASSERT_INT_EQ(w.status, 0);
        ASSERT_INT_EQ(d.received, BIG);
        ASSERT_INT_EQ(d.bad, 0);
    }

    /* The peer goes away: raft's end sees EOF. */
    ASSERT(dialer_stop(&d));
    ASSERT(run_until(stub_eof, &s, 5000));

    ident_free(&peer);
    stream_expect = NULL;
    free(big);
    ASSERT_INT_EQ(stub_teardown(&s), 0);
}

LOOP_TEST(bridge_closes_tls_when_raft_closes_its_end)
{
    struct stub s;
    struct ident peer;
    struct dialer d = {0};
    uint8_t pre[300];
    ASSERT_INT_EQ(stub_setup(&s), 0);
    ASSERT_INT_EQ(ident_make(&s.ca, "node3", API_OU_MANAGER, CLUSTER, &peer), 0);
    d.send_after_up = pre;
    d.send_len = preamble(pre, "127.0.0.23:1");
    ASSERT_INT_EQ(dialer_start(&d, s.address, peer.client_ctx), 0);
    ASSERT(run_until(stub_accepted, &s, 5000));
    ASSERT_INT_EQ(s.peer_id, 3);
    uv_close((uv_handle_t *)s.stream, stub_stream_close_cb);
    s.stream = NULL;
    ASSERT(run_until(dialer_ended, &d, 5000));
    ASSERT(dialer_stop(&d));
    ident_free(&peer);
    ASSERT_INT_EQ(stub_teardown(&s), 0);
}

/* A raft peer that the store stops listing (removed, demoted) loses its open
 * connection on the next recheck; other peers keep theirs. */
LOOP_TEST(recheck_closes_connections_of_peers_no_longer_members)
{
    struct stub s;
    struct ident peer2;
    struct dialer d2 = {0};
    uint8_t pre2[300];
    ASSERT_INT_EQ(stub_setup(&s), 0);
    ASSERT_INT_EQ(ident_make(&s.ca, "node2", API_OU_MANAGER, CLUSTER, &peer2), 0);
    d2.send_after_up = pre2;
    d2.send_len = preamble(pre2, "127.0.0.22:1");
    ASSERT_INT_EQ(dialer_start(&d2, s.address, peer2.client_ctx), 0);
    ASSERT(run_until(stub_accepted, &s, 5000));
    ASSERT_INT_EQ(s.peer_id, 2);

    /* Nothing changed, or another node changed: the connection stays. */
    rtransport_recheck(&s.t, NULL);
    map_gone[3] = true;
    rtransport_recheck(&s.t, "node3");
    for (int i = 0; i < 20; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    ASSERT(!d2.ended);

    /* node2 leaves the store: its open connection closes... */
    map_gone[2] = true;
    rtransport_recheck(&s.t, "node2");
    ASSERT(run_until(dialer_ended, &d2, 5000));
    /* ...and a new connection with its certificate never reaches raft. */
    {
        struct dialer d = {0};
        uint8_t pre[300];
        s.accepted = 0;
        d.send_after_up = pre;
        d.send_len = preamble(pre, "127.0.0.22:1");
        ASSERT_INT_EQ(dialer_start(&d, s.address, peer2.client_ctx), 0);
        ASSERT(run_until(dialer_ended, &d, 5000));
        ASSERT_INT_EQ(s.accepted, 0);
        ASSERT(dialer_stop(&d));
    }
    ASSERT(dialer_stop(&d2));
    ident_free(&peer2);
    ASSERT_INT_EQ(stub_teardown(&s), 0);
}

/* ------------------------------------------------------------- dial side */

struct connect_result {
    struct raft_uv_connect req;
    bool done;
    int status;
    uv_stream_t *stream;
};

static void connect_cb(struct raft_uv_connect *req, uv_stream_t *stream, int status)
{
    struct connect_result *r = req->data;
    r->done = true;
    r->status = status;
    r->stream = stream;
}

LOOP_TEST(dial_fails_cleanly_and_close_cancels_pending_dials)
{
    struct stub s;
    struct ca ca2;
    struct ident other;
    struct api_server *other_server;
    char other_addr[64];
    char em[SWARM_ERRMSG_SIZE];
    struct connect_result r1 = {0}, r2 = {0}, r3 = {0}, r4 = {0};
    ASSERT_INT_EQ(stub_setup(&s), 0);

    /* Nothing listens there. */
    r1.req.data = &r1;
    ASSERT_INT_EQ(s.t.connect(&s.t, &r1.req, 2, "127.0.0.25:1", connect_cb), 0);
    ASSERT(!r1.done); /* never inside connect */
    ASSERT(run_until(flag_set, &r1.done, 5000));
    ASSERT_INT_EQ(r1.status, RAFT_NOCONNECTION);

    /* A manager of another cluster (same CA) answers: refused by the dialer. */
    ASSERT_INT_EQ(ident_make(&s.ca, "node2", API_OU_MANAGER, "clusterB", &other), 0);
    other_server = api_server_new(&loop, 0);
    ASSERT_INT_EQ(api_server_listen_tls(other_server, "127.0.0.25:0", other.server_ctx, em), 0);
    snprintf(other_addr, sizeof other_addr, "127.0.0.25:%d", api_server_tls_port(other_server));
    r2.req.data = &r2;
    ASSERT_INT_EQ(s.t.connect(&s.t, &r2.req, 2, other_addr, connect_cb), 0);
    ASSERT(run_until(flag_set, &r2.done, 5000));
    ASSERT_INT_EQ(r2.status, RAFT_NOCONNECTION);

    /* A server whose certificate is not from our CA fails the handshake. */
    ASSERT_INT_EQ(ca_make(&ca2), 0);
    {
        struct ident foreign;
        struct api_server *fs = api_server_new(&loop, 0);
        struct connect_result r = {0};
        char addr[64];
        ASSERT_INT_EQ(ident_make(&ca2, "node2", API_OU_MANAGER, CLUSTER, &foreign), 0);
        ASSERT_INT_EQ(api_server_listen_tls(fs, "127.0.0.26:0", foreign.server_ctx, em), 0);
        snprintf(addr, sizeof addr, "127.0.0.26:%d", api_server_tls_port(fs));
        r.req.data = &r;
        ASSERT_INT_EQ(s.t.connect(&s.t, &r.req, 2, addr, connect_cb), 0);
        ASSERT(run_until(flag_set, &r.done, 5000));
        ASSERT_INT_EQ(r.status, RAFT_NOCONNECTION);
        ASSERT(server_stop(fs));
        ident_free(&foreign);
    }
    ca_free(&ca2);

    /* An invalid address fails at once, without a callback. */
    r3.req.data = &r3;
    ASSERT_INT_EQ(s.t.connect(&s.t, &r3.req, 2, "nowhere", connect_cb), RAFT_NOCONNECTION);

    /* Dial ourselves (node1 is raft id 1), then close the transport before
     * the handshake completes: the connect callback gets RAFT_CANCELED, then
     * the transport's close callback runs. */
    r4.req.data = &r4;
    ASSERT_INT_EQ(s.t.connect(&s.t, &r4.req, 1, s.address, connect_cb), 0);
    s.t.close(&s.t, stub_transport_close_cb);
    ASSERT(!r4.done);
    ASSERT(run_until(flag_set, &s.transport_closed, 5000));
    ASSERT(r4.done);
    ASSERT_INT_EQ(r4.status, RAFT_CANCELED);
    ASSERT(!r3.done);
    rtransport_free(&s.t);
    ASSERT(server_stop(other_server));
    ASSERT(server_stop(s.server));
    ident_free(&other);
    ident_free(&s.mgr);
    ca_free(&s.ca);
}

static bool stub_got_64(void *arg)
{
    return ((struct stub *)arg)->stream_received >= 64;
}

LOOP_TEST(dial_to_a_manager_of_our_cluster_gives_raft_a_stream)
{
    struct stub s;
    struct connect_result r = {0};
    ASSERT_INT_EQ(stub_setup(&s), 0);
    /* Loopback: the transport dials its own server, so both sides run. */
    r.req.data = &r;
    ASSERT_INT_EQ(s.t.connect(&s.t, &r.req, 1, s.address, connect_cb), 0);
    ASSERT(run_until(flag_set, &r.done, 5000));
    ASSERT_INT_EQ(r.status, 0);
    ASSERT(r.stream != NULL);
    ASSERT(run_until(stub_accepted, &s, 5000));
    ASSERT_INT_EQ(s.peer_id, 1);
    ASSERT_STR_EQ(s.peer_address, s.address);
    {
        struct stub_write w = {0};
        /* Two request-vote results (16-byte headers), as raft sends them. */
        static uint8_t msg[64];
        for (size_t i = 0; i < sizeof msg; i++) {
            msg[i] = (uint8_t)(i * 7);
        }
        put_le64(msg, RAFT_IO_REQUEST_VOTE_RESULT);
        put_le64(msg + 8, 16);
        put_le64(msg + 32, RAFT_IO_REQUEST_VOTE_RESULT);
        put_le64(msg + 40, 16);
        stream_expect = msg;
        uv_buf_t b = uv_buf_init((char *)msg, sizeof msg);
        ASSERT_INT_EQ(uv_read_start((uv_stream_t *)s.stream, stub_alloc_cb, stub_read_cb), 0);
        ASSERT_INT_EQ(uv_write(&w.req, r.stream, &b, 1, stub_write_cb), 0);
        ASSERT(run_until(stub_got_64, &s, 5000));
        stream_expect = NULL;
        ASSERT_INT_EQ(s.stream_received, sizeof msg);
        ASSERT_INT_EQ(s.stream_bad, 0);
    }
    /* Raft closes its outbound stream: the accept side sees EOF. */
    uv_close((uv_handle_t *)r.stream, raft_stream_close_cb);
    ASSERT(run_until(stub_eof, &s, 5000));
    ASSERT_INT_EQ(stub_teardown(&s), 0);
}

/* ------------------------------------------------- three managers on raft */

struct mgr {
    struct ident id;
    struct api_server *server;
    char address[64];
    struct raft_uv_transport transport;
    struct store *store;
    struct rnode *node;
    char dir[300];
    bool closed;
};

struct cluster {
    struct ca ca;
    struct mgr m[3];
    char tmp[256];
    int done;
    int status;
    struct store_result result;
};

static int mgr_setup(struct cluster *c, int i)
{
    struct mgr *m = &c->m[i];
    char em[SWARM_ERRMSG_SIZE] = "";
    char name[16];
    char listen[32];
    snprintf(name, sizeof name, "node%d", i + 1);
    if (ident_make(&c->ca, name, API_OU_MANAGER, CLUSTER, &m->id) != 0) {
        return -1;
    }
    m->server = api_server_new(&loop, 0);
    snprintf(listen, sizeof listen, "127.0.0.%d:0", 21 + i);
    if (api_server_listen_tls(m->server, listen, m->id.server_ctx, em) != 0) {
        fprintf(stderr, "listen %s: %s\n", listen, em);
        return -1;
    }
    snprintf(m->address, sizeof m->address, "127.0.0.%d:%d", 21 + i,
             api_server_tls_port(m->server));
    snprintf(map_addr[i + 1], sizeof map_addr[i + 1], "%s", m->address);
    struct rtransport_config tcfg = {
        .loop = &loop,
        .server = m->server,
        .client_ctx = m->id.client_ctx,
        .cluster_id = CLUSTER,
        .raft_id_of_node = map_node,
    };
    if (rtransport_init(&m->transport, &tcfg, em) != 0) {
        fprintf(stderr, "rtransport_init: %s\n", em);
        return -1;
    }
    if (store_open(":memory:", &m->store, em) != 0) {
        return -1;
    }
    snprintf(m->dir, sizeof m->dir, "%s/raft%d", c->tmp, i + 1);
    mkdir(m->dir, 0700);
    struct rnode_config cfg = {
        .id = (raft_id)(i + 1),
        .address = m->address,
        .dir = m->dir,
        /* Three managers share this process's one loop: a stall of it (a
         * 1.5 MiB entry through three TLS bridges under ASan on a busy
         * machine) stalls all three, so the timeout is generous. */
        .election_timeout_ms = 2000,
        .heartbeat_timeout_ms = 100,
        .transport = &m->transport,
    };
    if (rnode_new(&loop, m->store, &cfg, &m->node, em) != 0) {
        fprintf(stderr, "rnode_new: %s\n", em);
        return -1;
    }
    return 0;
}

static void node_closed_cb(void *data)
{
    *(bool *)data = true;
}

/* Stop raft (and so the transport), then free the transport. */
static bool mgr_stop_raft(struct mgr *m)
{
    bool closed = false;
    rnode_close(m->node, node_closed_cb, &closed);
    if (!run_until(flag_set, &closed, 10000)) {
        return false;
    }
    m->node = NULL;
    rtransport_free(&m->transport);
    return true;
}

static void change_cb(int status, void *data)
{
    struct cluster *c = data;
    c->status = status;
    c->done++;
}

static void propose_cb(int status, const struct store_result *res, void *data)
{
    struct cluster *c = data;
    c->status = status;
    if (res != NULL) {
        c->result = *res;
    }
    c->done++;
}

static int propose_service(struct cluster *c, struct rnode *n, const char *id,
                           const char *name, size_t label_len)
{
    Swarm__StoreCommand cmd = SWARM__STORE_COMMAND__INIT;
    Swarm__StoreAction action = SWARM__STORE_ACTION__INIT;
    Swarm__StoreAction *actions[1] = {&action};
    Swarm__Service svc = SWARM__SERVICE__INIT;
    Swarm__ServiceSpec spec = SWARM__SERVICE_SPEC__INIT;
    Swarm__Annotations ann = SWARM__ANNOTATIONS__INIT;
    Swarm__Label label = SWARM__LABEL__INIT;
    Swarm__Label *labels[1] = {&label};
    char *value = NULL;
    ann.name = (char *)name;
    if (label_len > 0) {
        value = malloc(label_len + 1);
        memset(value, 'x', label_len);
        value[label_len] = '\0';
        label.key = "big";
        label.value = value;
        ann.n_labels = 1;
        ann.labels = labels;
    }
    spec.annotations = &ann;
    svc.id = (char *)id;
    svc.spec = &spec;
    action.kind = SWARM__STORE_ACTION_KIND__STORE_ACTION_CREATE;
    action.target_case = SWARM__STORE_ACTION__TARGET_SERVICE;
    action.service = &svc;
    cmd.n_actions = 1;
    cmd.actions = actions;
    cmd.timestamp = 1700000000000;
    int rv = rnode_propose(n, &cmd, propose_cb, c);
    free(value);
    return rv;
}

struct has_service {
    struct cluster *c;
    const char *id;
    int first, last;
};

static bool all_have_service(void *arg)
{
    struct has_service *h = arg;
    for (int i = h->first; i <= h->last; i++) {
        Swarm__Service *svc = NULL;
        if (store_service_get(h->c->m[i].store, h->id, &svc) != 0) {
            return false;
        }
        swarm__service__free_unpacked(svc, NULL);
    }
    return true;
}

static bool m0_leader(void *arg)
{
    return rnode_is_leader(((struct cluster *)arg)->m[0].node);
}

static bool new_leader(void *arg)
{
    struct cluster *c = arg;
    return rnode_is_leader(c->m[1].node) || rnode_is_leader(c->m[2].node);
}

static bool any_leader(void *arg)
{
    struct cluster *c = arg;
    for (int i = 0; i < 3; i++) {
        if (c->m[i].node != NULL && rnode_is_leader(c->m[i].node)) {
            return true;
        }
    }
    return false;
}

/* Propose on `n`; if `n` is no longer the leader (an election on a loaded
 * machine: three managers on one loop under ASan and a busy CPU), propose
 * again on whichever manager leads now. These tests are about replication,
 * not about which manager leads. A retry that finds the service already
 * there (the first attempt committed after all) succeeded. */
static int run_proposal(struct cluster *c, struct rnode *n, const char *id, const char *name,
                        size_t label_len)
{
    for (int attempt = 0; attempt < 5; attempt++) {
        int want = c->done + 1;
        struct counter k = {.p = &c->done, .want = want};
        int rv = propose_service(c, n, id, name, label_len);
        if (rv == 0) {
            if (!run_until(counter_reached, &k, 10000)) {
                return -2;
            }
            rv = c->status;
        }
        if (rv == SWARM_ENOTLEADER || rv == SWARM_ENOLEADER) {
            fprintf(stderr, "proposal %s: %s: retried on the leader\n", id, swarm_strerror(rv));
            if (!run_until(any_leader, c, 10000)) {
                return -2;
            }
            for (int i = 0; i < 3; i++) {
                if (c->m[i].node != NULL && rnode_is_leader(c->m[i].node)) {
                    n = c->m[i].node;
                }
            }
            continue;
        }
        if (rv != 0) {
            fprintf(stderr, "proposal %s: %s\n", id, swarm_strerror(rv));
            return -1;
        }
        if (attempt > 0 && c->result.status == SWARM_EEXIST) {
            return 0;
        }
        if (c->result.status != 0) {
            fprintf(stderr, "proposal %s: %s / %s\n", id, swarm_strerror(c->result.status),
                    c->result.message);
            return -3;
        }
        return 0;
    }
    return -4;
}

static int add_voter(struct cluster *c, raft_id id)
{
    int want = c->done + 1;
    struct counter k = {.p = &c->done, .want = want};
    if (rnode_add_voter(c->m[0].node, id, c->m[id - 1].address, change_cb, c) != 0) {
        return -1;
    }
    if (!run_until(counter_reached, &k, 10000)) {
        return -2;
    }
    return c->status;
}

static unsigned voters(struct rnode *n)
{
    const struct raft_configuration *conf = rnode_configuration(n);
    unsigned v = 0;
    for (unsigned i = 0; i < conf->n; i++) {
        v += conf->servers[i].role == RAFT_VOTER;
    }
    return v;
}


/* --------------------------------------------------- framing check (pure) */

struct wmsg {
    uint8_t b[4096];
    size_t n;
};

static void w64(struct wmsg *m, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        m->b[m->n++] = (uint8_t)(v >> (8 * i));
    }
}

static void w32(struct wmsg *m, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        m->b[m->n++] = (uint8_t)(v >> (8 * i));
    }
}

static void wbytes(struct wmsg *m, const void *p, size_t n)
{
    memcpy(m->b + m->n, p, n);
    m->n += n;
}

static void wpad(struct wmsg *m)
{
    while (m->n % 8 != 0) {
        m->b[m->n++] = 0;
    }
}

/* A configuration in raft's format 1 (id, address, role per server), padded
 * as configurationEncode pads it. */
static void wconf(struct wmsg *m, unsigned n, uint8_t role)
{
    size_t start = m->n;
    m->b[m->n++] = 1;
    w64(m, n);
    for (unsigned i = 0; i < n; i++) {
        char addr[32];
        w64(m, i + 1);
        snprintf(addr, sizeof addr, "127.0.0.%u:2377", i + 1);
        wbytes(m, addr, strlen(addr) + 1);
        m->b[m->n++] = role;
    }
    (void)start;
    wpad(m);
}

static void wfixed(struct wmsg *m, uint64_t type, uint64_t hlen)
{
    w64(m, type);
    w64(m, hlen);
    for (uint64_t i = 0; i < hlen; i++) {
        m->b[m->n++] = (uint8_t)(i * 7);
    }
}

struct wentry {
    uint8_t type;
    const struct wmsg *data;
};

static void wappend(struct wmsg *m, const struct wentry *e, unsigned n)
{
    w64(m, RAFT_IO_APPEND_ENTRIES);
    w64(m, 48 + 16 * (uint64_t)n);
    w64(m, 7);  /* term */
    w64(m, 10); /* prev index */
    w64(m, 6);  /* prev term */
    w64(m, 9);  /* commit */
    w64(m, n);
    for (unsigned i = 0; i < n; i++) {
        w64(m, 7);
        m->b[m->n++] = e[i].type;
        m->n += 3;
        w32(m, (uint32_t)e[i].data->n);
    }
    w64(m, 0);
    for (unsigned i = 0; i < n; i++) {
        wbytes(m, e[i].data->b, e[i].data->n);
    }
}

static void wsnapshot(struct wmsg *m, const struct wmsg *conf, uint64_t data_len)
{
    w64(m, RAFT_IO_INSTALL_SNAPSHOT);
    w64(m, 56 + conf->n);
    w64(m, 7);
    w64(m, 100);
    w64(m, 6);
    w64(m, 90);
    w64(m, conf->n);
    wbytes(m, conf->b, conf->n);
    w64(m, data_len);
    w64(m, 0);
    for (uint64_t i = 0; i < data_len; i++) {
        m->b[m->n++] = 0xab;
    }
}

/* Whole: 0 or the error. */
static int wfeed_whole(const struct wmsg *m, uint64_t *messages)
{
    struct rwire w;
    char em[SWARM_ERRMSG_SIZE];
    rwire_init(&w);
    int rv = rwire_feed(&w, m->b, m->n, em);
    *messages = w.messages;
    rwire_close(&w);
    return rv;
}

/* Byte by byte: how many bytes were accepted before the first refusal. */
static size_t wfeed_bytes(const struct wmsg *m)
{
    struct rwire w;
    char em[SWARM_ERRMSG_SIZE];
    size_t i;
    rwire_init(&w);
    for (i = 0; i < m->n; i++) {
        if (rwire_feed(&w, m->b + i, 1, em) != 0) {
            break;
        }
    }
    rwire_close(&w);
    return i;
}

TEST(wire_accepts_every_well_formed_message)
{
    static struct wmsg m, cmd, conf, last, barrier;
    uint64_t k;
    memset(&m, 0, sizeof m);
    wfixed(&m, RAFT_IO_REQUEST_VOTE, 40);
    wfixed(&m, RAFT_IO_REQUEST_VOTE, 32); /* the legacy form raft still decodes */
    wfixed(&m, RAFT_IO_REQUEST_VOTE_RESULT, 24);
    wfixed(&m, RAFT_IO_REQUEST_VOTE_RESULT, 16);
    wfixed(&m, RAFT_IO_APPEND_ENTRIES_RESULT, 24);
    wfixed(&m, RAFT_IO_TIMEOUT_NOW, 24);
    wappend(&m, NULL, 0); /* heartbeat */
    cmd.n = 0;
    wbytes(&cmd, "0123456789abcdef", 16);
    barrier.n = 8;
    memset(barrier.b, 0, 8);
    conf.n = 0;
    wconf(&conf, 3, RAFT_VOTER);
    last.n = 0;
    wbytes(&last, "odd", 3); /* only the last entry may be unaligned */
    struct wentry e[] = {{RAFT_COMMAND, &cmd}, {RAFT_BARRIER, &barrier},
                         {RAFT_CHANGE, &conf}, {RAFT_COMMAND, &last}};
    wappend(&m, e, 4);
    wsnapshot(&m, &conf, 40);
    ASSERT_INT_EQ(wfeed_whole(&m, &k), 0);
    ASSERT_INT_EQ(k, 9);
    ASSERT_INT_EQ(wfeed_bytes(&m), m.n);
}

/* Each malformed message, after a good one, is refused: whole, and byte by
 * byte before its last byte (so raft never holds it complete). */
static int wire_refused(const struct wmsg *bad)
{
    static struct wmsg m;
    uint64_t k;
    m.n = 0;
    wfixed(&m, RAFT_IO_TIMEOUT_NOW, 24);
    size_t good = m.n;
    wbytes(&m, bad->b, bad->n);
    if (wfeed_whole(&m, &k) != SWARM_EPROTO) {
        return 1;
    }
    size_t accepted = wfeed_bytes(&m);
    if (accepted < good || accepted >= m.n) {
        return 2;
    }
    return 0;
}

TEST(wire_refuses_malformed_messages)
{
    static struct wmsg bad, cmd, conf, odd, badconf;
    cmd.n = 0;
    wbytes(&cmd, "0123456789abcdef", 16);
    odd.n = 0;
    wbytes(&odd, "odd", 3);
    conf.n = 0;
    wconf(&conf, 2, RAFT_VOTER);

    /* Unknown types. */
    bad.n = 0;
    wfixed(&bad, 0, 24);
    ASSERT_INT_EQ(wire_refused(&bad), 0);
    bad.n = 0;
    wfixed(&bad, 7, 24);
    ASSERT_INT_EQ(wire_refused(&bad), 0);
    bad.n = 0;
    w64(&bad, UINT64_MAX);
    w64(&bad, 24);
    ASSERT_INT_EQ(wire_refused(&bad), 0);

    /* Header lengths raft would read past (it decodes fixed fields). */
    bad.n = 0;
    wfixed(&bad, RAFT_IO_REQUEST_VOTE, 8);
    ASSERT_INT_EQ(wire_refused(&bad), 0);
    bad.n = 0;
    wfixed(&bad, RAFT_IO_REQUEST_VOTE_RESULT, 20);
    ASSERT_INT_EQ(wire_refused(&bad), 0);
    bad.n = 0;
    wfixed(&bad, RAFT_IO_TIMEOUT_NOW, 0);
    ASSERT_INT_EQ(wire_refused(&bad), 0);
    bad.n = 0;
    w64(&bad, RAFT_IO_APPEND_ENTRIES);
    w64(&bad, UINT64_MAX - 7);
    ASSERT_INT_EQ(wire_refused(&bad), 0);

    /* Append entries: a count that the header cannot hold. */
    bad.n = 0;
    w64(&bad, RAFT_IO_APPEND_ENTRIES);
    w64(&bad, 48);
    w64(&bad, 1);
    w64(&bad, 1);
    w64(&bad, 1);
    w64(&bad, 1);
    w64(&bad, 1u << 24);
    w64(&bad, 0);
    ASSERT_INT_EQ(wire_refused(&bad), 0);
    /* Too many entries for the limit, even if consistent. */
    bad.n = 0;
    w64(&bad, RAFT_IO_APPEND_ENTRIES);
    w64(&bad, 48 + 16 * ((uint64_t)RWIRE_ENTRIES_MAX + 1));
    ASSERT_INT_EQ(wire_refused(&bad), 0);

    /* An entry type raft does not know. */
    struct wentry e1[] = {{9, &cmd}};
    bad.n = 0;
    wappend(&bad, e1, 1);
    ASSERT_INT_EQ(wire_refused(&bad), 0);
    /* An unaligned entry that is not the last: raft's padded walk would
     * point the next entry past the payload. */
    struct wentry e2[] = {{RAFT_COMMAND, &odd}, {RAFT_COMMAND, &cmd}};
    bad.n = 0;
    wappend(&bad, e2, 2);
    ASSERT_INT_EQ(wire_refused(&bad), 0);
    /* An entry over the size limit. */
    bad.n = 0;
    w64(&bad, RAFT_IO_APPEND_ENTRIES);
    w64(&bad, 64);
    for (int i = 0; i < 4; i++) {
        w64(&bad, 1);
    }
    w64(&bad, 1);
    w64(&bad, 1);
    bad.b[bad.n++] = RAFT_COMMAND;
    bad.n += 3;
    w32(&bad, RWIRE_ENTRY_MAX + 1);
    w64(&bad, 0);
    ASSERT_INT_EQ(wire_refused(&bad), 0);

    /* Configuration changes that configurationDecode would overrun or
     * assert on: server id 0, a role out of range, an address without NUL, a
     * server count beyond the bytes. */
    const struct {
        size_t at;
        uint8_t v;
    } breaks[] = {{9, 0}, {9 + 8 + 15, 7}, {9 + 8 + 14, 'x'}, {1, 0xff}};
    for (size_t i = 0; i < sizeof breaks / sizeof breaks[0]; i++) {
        badconf = conf;
        if (breaks[i].at == 9) {
            memset(badconf.b + 9, 0, 8); /* id 0 */
        } else {
            badconf.b[breaks[i].at] = breaks[i].v;
        }
        if (i == 2) {
            /* no NUL anywhere after the first address */
            memset(badconf.b + 9 + 8, 'x', badconf.n - 9 - 8);
        }
        struct wentry e3[] = {{RAFT_COMMAND, &cmd}, {RAFT_CHANGE, &badconf}};
        bad.n = 0;
        wappend(&bad, e3, 2);
        ASSERT_INT_EQ(wire_refused(&bad), 0);
        bad.n = 0;
        wsnapshot(&bad, &badconf, 16);
        ASSERT_INT_EQ(wire_refused(&bad), 0);
    }

    /* Install snapshot: configuration length off the header, no data. */
    bad.n = 0;
    wsnapshot(&bad, &conf, 16);
    bad.b[16 + 32] ^= 8;
    ASSERT_INT_EQ(wire_refused(&bad), 0);
    bad.n = 0;
    wsnapshot(&bad, &conf, 0);
    ASSERT_INT_EQ(wire_refused(&bad), 0);
}

LOOP_TEST(three_managers_replicate_over_mtls_and_survive_losing_the_leader)
{
    struct cluster c;
    char em[SWARM_ERRMSG_SIZE] = "";
    memset(&c, 0, sizeof c);
    snprintf(c.tmp, sizeof c.tmp, "/tmp/swarm-test-rt-XXXXXX");
    ASSERT(mkdtemp(c.tmp) != NULL);
    map_reset();
    ASSERT_INT_EQ(ca_make(&c.ca), 0);
    for (int i = 0; i < 3; i++) {
        ASSERT_INT_EQ(mgr_setup(&c, i), 0);
    }
    ASSERT_INT_EQ(rnode_bootstrap(c.m[0].node, em), 0);
    for (int i = 0; i < 3; i++) {
        ASSERT_INT_EQ(rnode_start(c.m[i].node, em), 0);
    }
    ASSERT(run_until(m0_leader, &c, 10000));

    ASSERT_INT_EQ(add_voter(&c, 2), 0);
    ASSERT_INT_EQ(add_voter(&c, 3), 0);
    ASSERT_INT_EQ(voters(c.m[0].node), 3);
    /* One change at a time, and no duplicate. */
    ASSERT_INT_EQ(rnode_add_voter(c.m[0].node, 2, c.m[1].address, change_cb, &c), SWARM_EEXIST);

    /* Commands reach every store through the TLS bridges. */
    static const char *ids[] = {"aaaaaaaaaaaaaaaaaaaaaaaa1", "aaaaaaaaaaaaaaaaaaaaaaaa2",
                                "aaaaaaaaaaaaaaaaaaaaaaaa3"};
    static const char *names[] = {"web", "api", "db"};
    for (int i = 0; i < 3; i++) {
        ASSERT_INT_EQ(run_proposal(&c, c.m[0].node, ids[i], names[i], 0), 0);
    }
    for (int i = 0; i < 3; i++) {
        struct has_service h = {&c, ids[i], 0, 2};
        ASSERT(run_until(all_have_service, &h, 10000));
    }
    /* A 1.5 MiB entry: bigger than the bridges' high-water mark. */
    ASSERT_INT_EQ(run_proposal(&c, c.m[0].node, "bbbbbbbbbbbbbbbbbbbbbbbbb", "big",
                               3u << 19), 0);
    {
        struct has_service h = {&c, "bbbbbbbbbbbbbbbbbbbbbbbbb", 0, 2};
        ASSERT(run_until(all_have_service, &h, 10000));
    }

    /* An authenticated manager (node1's certificate) sends garbage to node2's
     * raft after a valid preamble: raft drops that connection, nothing else. */
    {
        uint8_t buf[400];
        struct dialer d = {0};
        size_t n = preamble(buf, c.m[0].address);
        static const uint8_t junk[40] = {99, 0, 0, 0, 0, 0, 0, 0, 24};
        memcpy(buf + n, junk, sizeof junk);
        d.send_after_up = buf;
        d.send_len = n + sizeof junk;
        ASSERT_INT_EQ(dialer_start(&d, c.m[1].address, c.m[0].id.client_ctx), 0);
        ASSERT(run_until(dialer_ended, &d, 5000));
        ASSERT(d.up);
        ASSERT(dialer_stop(&d));
        ASSERT_INT_EQ(run_proposal(&c, c.m[0].node, "ccccccccccccccccccccccccc", "after",
                                   0), 0);
        struct has_service h = {&c, "ccccccccccccccccccccccccc", 0, 2};
        ASSERT(run_until(all_have_service, &h, 10000));
    }

    /* The same with bytes libraft's decoder trusts: an append-entries header
     * of 48 bytes announcing 16 million entries. Without the framing check
     * raft reads the entry records far past its 48-byte buffer and the
     * process dies of SIGSEGV; with it the connection is closed. */
    {
        uint8_t buf[400];
        struct dialer d = {0};
        size_t n = preamble(buf, c.m[0].address);
        uint8_t ae[16 + 48] = {RAFT_IO_APPEND_ENTRIES, 0, 0, 0, 0, 0, 0, 0, 48};
        ae[16 + 32 + 3] = 1; /* n = 1 << 24 */
        memcpy(buf + n, ae, sizeof ae);
        d.send_after_up = buf;
        d.send_len = n + sizeof ae;
        ASSERT_INT_EQ(dialer_start(&d, c.m[1].address, c.m[0].id.client_ctx), 0);
        ASSERT(run_until(dialer_ended, &d, 5000));
        ASSERT(d.up);
        ASSERT(dialer_stop(&d));
        ASSERT_INT_EQ(run_proposal(&c, c.m[0].node, "eeeeeeeeeeeeeeeeeeeeeeeee", "after2",
                                   0), 0);
        struct has_service h = {&c, "eeeeeeeeeeeeeeeeeeeeeeeee", 0, 2};
        ASSERT(run_until(all_have_service, &h, 10000));
    }

    /* A worker certificate of the same CA and cluster is refused by node2's
     * listener and never reaches raft (raft would log a message from it). */
    {
        struct ident worker;
        uint8_t buf[100];
        struct dialer d = {0};
        ASSERT_INT_EQ(ident_make(&c.ca, "node3", API_OU_WORKER, CLUSTER, &worker), 0);
        d.send_after_up = buf;
        d.send_len = preamble(buf, c.m[2].address);
        ASSERT_INT_EQ(dialer_start(&d, c.m[1].address, worker.client_ctx), 0);
        ASSERT(run_until(dialer_ended, &d, 5000));
        ASSERT(dialer_stop(&d));
        ident_free(&worker);
    }

    /* Stop the leader: the other two elect one that accepts proposals. Its
     * api_server keeps running (it serves gRPC too) and refuses raft. */
    ASSERT(mgr_stop_raft(&c.m[0]));
    ASSERT(run_until(new_leader, &c, 15000));
    struct rnode *leader = rnode_is_leader(c.m[1].node) ? c.m[1].node : c.m[2].node;
    ASSERT_INT_EQ(run_proposal(&c, leader, "ddddddddddddddddddddddddd", "failover", 0), 0);
    {
        struct has_service h = {&c, "ddddddddddddddddddddddddd", 1, 2};
        ASSERT(run_until(all_have_service, &h, 10000));
    }

    for (int i = 1; i < 3; i++) {
        ASSERT(mgr_stop_raft(&c.m[i]));
    }
    for (int i = 0; i < 3; i++) {
        ASSERT(server_stop(c.m[i].server));
        store_close(c.m[i].store);
        ident_free(&c.m[i].id);
    }
    ca_free(&c.ca);
    statedir_remove_tree(c.tmp);
}

TEST_MAIN()
