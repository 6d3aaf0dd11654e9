/* Loop tests of the RPC runtime: real sockets (a unix socket in a temp dir,
 * TLS on 127.0.0.1 with an ephemeral port), real certificates from pki.c,
 * the test-only Echo service. Every wait is bounded (RUN_UNTIL), and every
 * test ends with uv_loop_close() == 0. */
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <nghttp2/nghttp2.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "echo.pb-c.h"
#include "err.h"
#include "grpc.h"
#include "h2.h"
#include "pki.h"
#include "test.h"
#include "tls.h"

/* ------------------------------------------------------------ fixture */

static uv_loop_t loop;
static uv_timer_t tick;
static char tmpdir[64];
static char sock_path[128];

static void tick_cb(uv_timer_t *t)
{
    (void)t;
}

/* Run the loop until `cond` holds or `ms` pass; evaluates to cond. */
#define RUN_UNTIL(cond, ms)                                               \
    ({                                                                    \
        uint64_t end_ = uv_now(&loop) + (ms);                             \
        uv_timer_start(&tick, tick_cb, 5, 5);                             \
        while (!(cond) && uv_now(&loop) < end_) {                         \
            uv_run(&loop, UV_RUN_ONCE);                                   \
        }                                                                 \
        uv_timer_stop(&tick);                                             \
        (cond);                                                           \
    })

static void loop_setup(void)
{
    signal(SIGPIPE, SIG_IGN); /* as swarmd: a peer gone is an EPIPE */
    uv_loop_init(&loop);
    uv_timer_init(&loop, &tick);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_api.XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        abort();
    }
    snprintf(sock_path, sizeof sock_path, "%s/swarmd.sock", tmpdir);
}

/* Close what is left and check that nothing leaked a handle. */
static int loop_teardown(void)
{
    uv_close((uv_handle_t *)&tick, NULL);
    for (int i = 0; i < 1000 && uv_run(&loop, UV_RUN_NOWAIT) != 0; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL); /* a handle may be waiting for the kernel */
    }
    unlink(sock_path);
    rmdir(tmpdir);
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

/* ---------------------------------------------------------------- PKI */

struct ident {
    X509 *cert;
    EVP_PKEY *key;
};

static struct {
    bool ready;
    X509 *root;
    EVP_PKEY *root_key;
    X509 *other_root;
    EVP_PKEY *other_key;
    struct ident manager, worker, foreign, badou;
} pki;

static int make_ident(X509 *ca, EVP_PKEY *ca_key, const char *node,
                      const char *ou, struct ident *out)
{
    char em[SWARM_ERRMSG_SIZE];
    int64_t now = (int64_t)time(NULL);
    if (pki_key_generate(&out->key, em) != 0) {
        return -1;
    }
    return pki_cert_issue(ca, ca_key, out->key, node, ou, "cluster-1", now,
                          PKI_NODE_LIFETIME_S, &out->cert, em);
}

static int pki_setup(void)
{
    char em[SWARM_ERRMSG_SIZE];
    int64_t now = (int64_t)time(NULL);
    if (pki.ready) {
        return 0;
    }
    if (pki_key_generate(&pki.root_key, em) != 0 ||
        pki_root_ca_create(pki.root_key, now, PKI_ROOT_LIFETIME_S, &pki.root, em) != 0 ||
        pki_key_generate(&pki.other_key, em) != 0 ||
        pki_root_ca_create(pki.other_key, now, PKI_ROOT_LIFETIME_S, &pki.other_root, em) != 0 ||
        make_ident(pki.root, pki.root_key, "node-mgr-1", API_OU_MANAGER, &pki.manager) != 0 ||
        make_ident(pki.root, pki.root_key, "node-wrk-1", API_OU_WORKER, &pki.worker) != 0 ||
        make_ident(pki.other_root, pki.other_key, "node-evil", API_OU_MANAGER, &pki.foreign) != 0 ||
        make_ident(pki.root, pki.root_key, "node-odd", "swarm-admin", &pki.badou) != 0) {
        fprintf(stderr, "pki setup: %s\n", em);
        return -1;
    }
    pki.ready = true;
    return 0;
}

static SSL_CTX *server_ctx(const struct ident *id)
{
    SSL_CTX *ctx = NULL;
    char em[SWARM_ERRMSG_SIZE];
    pki_server_ctx(pki.root, id->cert, id->key, &ctx, em);
    return ctx;
}

static SSL_CTX *client_ctx(const struct ident *id)
{
    SSL_CTX *ctx = NULL;
    char em[SWARM_ERRMSG_SIZE];
    pki_client_ctx(pki.root, id ? id->cert : NULL, id ? id->key : NULL, &ctx, em);
    return ctx;
}

/* ----------------------------------------------------- the Echo service */

static struct api_server *server;
static bool server_done;
static int handler_calls;
static int cancels_seen;
static struct api_call *held_call; /* a call the test answers itself */
static int in_handler, max_in_handler; /* delayed calls being handled */
static unsigned turn;                  /* loop turns, counted by turn_check */
static unsigned last_turn, calls_in_turn, max_calls_in_turn;
static uv_check_t turn_check;
static int small_at; /* handler_calls when "small" arrived */

static void turn_check_cb(uv_check_t *h)
{
    (void)h;
    turn++;
}

struct delayed {
    uv_timer_t timer;
    struct api_call *call;
    char text[256];
    unsigned count, sent, interval, burst;
};

/* Count handlers: messages queued, handlers ended, of which on a failed send. */
static unsigned count_sent_total, counts_ended, counts_failed;

static void delayed_close_cb(uv_handle_t *h)
{
    free(h->data);
}

static void on_cancel_cb(struct api_call *call, void *data)
{
    (void)call;
    (void)data;
    cancels_seen++;
}

static void echo_reply(struct api_call *call, const char *text,
                       ProtobufCBinaryData payload)
{
    Swarmtest__EchoResponse resp = SWARMTEST__ECHO_RESPONSE__INIT;
    const struct api_peer *peer = api_call_peer(call);
    resp.text = (char *)text;
    resp.payload = payload;
    resp.peer_node_id = (char *)peer->node_id;
    resp.peer_role = peer->role;
    api_call_reply(call, &resp.base);
}

static void say_later_cb(uv_timer_t *t)
{
    struct delayed *d = t->data;
    ProtobufCBinaryData none = {0, NULL};
    in_handler--;
    echo_reply(d->call, d->text, none);
    uv_close((uv_handle_t *)t, delayed_close_cb);
}

static void say_cb(struct api_call *call, const ProtobufCMessage *msg,
                   void *data)
{
    const Swarmtest__EchoRequest *req = (const Swarmtest__EchoRequest *)msg;
    handler_calls++;
    if (turn != last_turn) {
        last_turn = turn;
        calls_in_turn = 0;
    }
    if (++calls_in_turn > max_calls_in_turn) {
        max_calls_in_turn = calls_in_turn;
    }
    if (strcmp(req->text, "small") == 0) {
        small_at = handler_calls;
    }
    api_call_on_cancel(call, on_cancel_cb, NULL);
    if (strcmp(req->text, "hold") == 0) {
        held_call = call;
        return;
    }
    if (strcmp(req->text, "fail") == 0) {
        api_call_error(call, API_NOT_FOUND, "no such thing: %s", "ünïcode 100%");
        return;
    }
    if (req->delay_ms == 0) {
        echo_reply(call, req->text, req->payload);
        return;
    }
    struct delayed *d = calloc(1, sizeof *d);
    if (++in_handler > max_in_handler) {
        max_in_handler = in_handler;
    }
    d->call = call;
    snprintf(d->text, sizeof d->text, "%s", req->text);
    uv_timer_init(&loop, &d->timer);
    d->timer.data = d;
    uv_timer_start(&d->timer, say_later_cb, req->delay_ms, 0);
}

static void count_next_cb(uv_timer_t *t)
{
    struct delayed *d = t->data;
    Swarmtest__CountResponse resp = SWARMTEST__COUNT_RESPONSE__INIT;
    while (d->sent < d->count) {
        resp.n = ++d->sent;
        if (api_call_send(d->call, &resp.base) != 0) {
            counts_failed++;
            counts_ended++;
            api_call_error(d->call, API_CANCELLED, "gone");
            uv_close((uv_handle_t *)t, delayed_close_cb);
            return;
        }
        count_sent_total++;
        if (d->interval > 0 && d->sent < d->count && d->sent % d->burst == 0) {
            uv_timer_start(t, count_next_cb, d->interval, 0);
            return;
        }
    }
    counts_ended++;
    api_call_finish(d->call);
    uv_close((uv_handle_t *)t, delayed_close_cb);
}

static void count_cb(struct api_call *call, const ProtobufCMessage *msg,
                     void *data)
{
    const Swarmtest__CountRequest *req = (const Swarmtest__CountRequest *)msg;
    struct delayed *d = calloc(1, sizeof *d);
    handler_calls++;
    api_call_on_cancel(call, on_cancel_cb, NULL);
    d->call = call;
    d->count = req->count;
    d->interval = req->interval_ms;
    d->burst = req->burst > 0 ? req->burst : 1;
    uv_timer_init(&loop, &d->timer);
    d->timer.data = d;
    uv_timer_start(&d->timer, count_next_cb, 0, 0);
}

static void server_done_cb(void *data)
{
    (void)data;
    server_done = true;
}

/* A server with Say (say_roles) and Count (managers, local); Count is left
 * out when count_too is false, to test unknown methods. */
static int server_start(size_t max_msg, unsigned say_roles, bool count_too,
                        SSL_CTX *ctx)
{
    char em[SWARM_ERRMSG_SIZE];
    server = api_server_new(&loop, max_msg);
    server_done = false;
    handler_calls = 0;
    cancels_seen = 0;
    held_call = NULL;
    count_sent_total = counts_ended = counts_failed = 0;
    in_handler = max_in_handler = 0;
    calls_in_turn = max_calls_in_turn = 0;
    if (api_server_register(server, &swarmtest__echo__descriptor, "Say",
                            say_roles, say_cb, NULL) != 0) {
        return -1;
    }
    if (count_too &&
        api_server_register(server, &swarmtest__echo__descriptor, "Count",
                            API_ROLE_MANAGER | API_ROLE_LOCAL, count_cb,
                            NULL) != 0) {
        return -1;
    }
    if (api_server_register(server, &swarmtest__echo__descriptor, "Nope", 0,
                            say_cb, NULL) != SWARM_EINVAL) {
        return -1;
    }
    if (api_server_listen_unix(server, sock_path, em) != 0) {
        fprintf(stderr, "listen: %s\n", em);
        return -1;
    }
    if (ctx != NULL &&
        api_server_listen_tls(server, "127.0.0.1:0", ctx, em) != 0) {
        fprintf(stderr, "listen: %s\n", em);
        return -1;
    }
    return 0;
}

static bool server_stop(void)
{
    api_server_shutdown(server, 1000, server_done_cb, NULL);
    return RUN_UNTIL(server_done, 5000);
}

/* -------------------------------------------------------------- client */

struct result {
    bool done;
    enum api_status status;
    char message[512];
    char text[256];
    char node_id[64];
    unsigned role;
    size_t payload_len;
    int msgs;
};

static bool connected_flag;
static int connect_status;
static char connect_msg[SWARM_ERRMSG_SIZE];
static bool client_closed;

static void connect_cb(struct api_client *c, int status, const char *errmsg,
                       void *data)
{
    connected_flag = true;
    connect_status = status;
    snprintf(connect_msg, sizeof connect_msg, "%s", errmsg ? errmsg : "");
}

static void response_cb(enum api_status status, const char *message,
                        const ProtobufCMessage *resp, void *data)
{
    struct result *r = data;
    r->done = true;
    r->status = status;
    snprintf(r->message, sizeof r->message, "%s", message ? message : "");
    if (resp != NULL && resp->descriptor == &swarmtest__echo_response__descriptor) {
        const Swarmtest__EchoResponse *e = (const Swarmtest__EchoResponse *)resp;
        snprintf(r->text, sizeof r->text, "%s", e->text);
        snprintf(r->node_id, sizeof r->node_id, "%s", e->peer_node_id);
        r->role = e->peer_role;
        r->payload_len = e->payload.len;
    }
}

static void stream_msg_cb(const ProtobufCMessage *msg, void *data)
{
    struct result *r = data;
    const Swarmtest__CountResponse *c = (const Swarmtest__CountResponse *)msg;
    r->msgs++;
    if (c->n != (unsigned)r->msgs) {
        r->msgs = -1000; /* out of order */
    }
}

static void client_closed_cb(void *data)
{
    client_closed = true;
}

static struct api_client *client_unix(void)
{
    struct api_client *c = api_client_new(&loop, 0);
    connected_flag = false;
    if (api_client_connect_unix(c, sock_path, connect_cb, NULL) != 0) {
        return NULL;
    }
    return c;
}

static struct api_client *client_tls(SSL_CTX *ctx, const char *name)
{
    char addr[64];
    struct api_client *c = api_client_new(&loop, 0);
    connected_flag = false;
    snprintf(addr, sizeof addr, "127.0.0.1:%d", api_server_tls_port(server));
    if (api_client_connect_tls(c, addr, ctx, name, 5000, connect_cb, NULL) != 0) {
        return NULL;
    }
    return c;
}

static bool client_stop(struct api_client *c)
{
    client_closed = false;
    api_client_close(c, client_closed_cb, NULL);
    return RUN_UNTIL(client_closed, 5000);
}

static int say(struct api_client *c, const char *text, uint32_t delay_ms,
               uint64_t timeout_ms, struct result *r)
{
    Swarmtest__EchoRequest req = SWARMTEST__ECHO_REQUEST__INIT;
    memset(r, 0, sizeof *r);
    req.text = (char *)text;
    req.delay_ms = delay_ms;
    return api_client_unary(c, &swarmtest__echo__descriptor, "Say", &req.base,
                            timeout_ms, response_cb, r);
}

/* One Say round trip on a fresh unix connection: the server still serves. */
static bool server_still_serves(void)
{
    struct result r;
    struct api_client *c = client_unix();
    bool ok = c != NULL && say(c, "still here", 0, 2000, &r) == 0 &&
              RUN_UNTIL(r.done, 3000) && r.status == API_OK &&
              strcmp(r.text, "still here") == 0;
    if (!ok) {
        fprintf(stderr, "still_serves: done=%d status=%d %s\n", r.done,
                r.status, r.message);
    }
    return c != NULL && client_stop(c) && ok;
}

/* ---------------------------------------------------------- pure parts */

TEST(grpc_helpers)
{
    uint64_t ms;
    char buf[64];
    ASSERT_INT_EQ(grpc_timeout_parse("100m", &ms), 0);
    ASSERT_INT_EQ(ms, 100);
    ASSERT_INT_EQ(grpc_timeout_parse("2S", &ms), 0);
    ASSERT_INT_EQ(ms, 2000);
    ASSERT_INT_EQ(grpc_timeout_parse("1H", &ms), 0);
    ASSERT_INT_EQ(ms, 3600000);
    ASSERT_INT_EQ(grpc_timeout_parse("1500u", &ms), 0);
    ASSERT_INT_EQ(ms, 2);
    ASSERT_INT_EQ(grpc_timeout_parse("5n", &ms), 0);
    ASSERT_INT_EQ(ms, 1);
    ASSERT_INT_EQ(grpc_timeout_parse("123456789m", &ms), SWARM_EINVAL);
    ASSERT_INT_EQ(grpc_timeout_parse("10x", &ms), SWARM_EINVAL);
    ASSERT_INT_EQ(grpc_timeout_parse("m", &ms), SWARM_EINVAL);
    grpc_timeout_format(250, buf);
    ASSERT_STR_EQ(buf, "250m");
    grpc_timeout_format(100000000ull, buf);
    ASSERT_STR_EQ(buf, "100000S");
    grpc_message_encode("a b%c\n\xc3\xa9", buf, sizeof buf);
    ASSERT_STR_EQ(buf, "a b%25c%0A%C3%A9");
    grpc_message_decode(buf, strlen(buf), buf + 32, 32);
    ASSERT_STR_EQ(buf + 32, "a b%c\n\xc3\xa9");
    grpc_message_decode("100%", 4, buf, sizeof buf);
    ASSERT_STR_EQ(buf, "100%");
    ASSERT_STR_EQ(api_status_name(API_NOT_FOUND), "NOT_FOUND");
    ASSERT_STR_EQ(api_status_name(API_UNAUTHENTICATED), "UNAUTHENTICATED");

    struct grpc_buf b = {0};
    const uint8_t *m;
    size_t n;
    Swarmtest__CountResponse cr = SWARMTEST__COUNT_RESPONSE__INIT;
    cr.n = 300;
    ASSERT_INT_EQ(grpc_frame_pack(&b, &cr.base, 100), 0);
    ASSERT_INT_EQ(b.len, 5 + protobuf_c_message_get_packed_size(&cr.base));
    ASSERT_INT_EQ(grpc_frame_pack(&b, &cr.base, 1), SWARM_EINVAL);
    b.len = 4;
    ASSERT_INT_EQ(grpc_frame_next(&b, 100, &m, &n), GRPC_FRAME_NEED_MORE);
    b.len = 5 + protobuf_c_message_get_packed_size(&cr.base);
    ASSERT_INT_EQ(grpc_frame_next(&b, 100, &m, &n), GRPC_FRAME_OK);
    ASSERT_INT_EQ(n, b.len - 5);
    ASSERT_INT_EQ(grpc_frame_next(&b, 100, &m, &n), GRPC_FRAME_NEED_MORE);
    b.off = 0;
    ASSERT_INT_EQ(grpc_frame_next(&b, 1, &m, &n), GRPC_FRAME_TOO_LARGE);
    b.data[0] = 1;
    ASSERT_INT_EQ(grpc_frame_next(&b, 100, &m, &n), GRPC_FRAME_COMPRESSED);
    grpc_buf_free(&b);
}

/* --------------------------------------------------------- unix socket */

LOOP_TEST(unary_unix)
{
    struct result r;
    struct stat st;
    ASSERT_INT_EQ(server_start(0, API_ROLE_LOCAL, true, NULL), 0);
    ASSERT_INT_EQ(stat(sock_path, &st), 0);
    ASSERT_INT_EQ(st.st_mode & 0777, 0600);
    struct api_client *c = client_unix();
    ASSERT(c != NULL);
    /* Calls may start before the connection is up; they wait for it. */
    ASSERT_INT_EQ(say(c, "hello", 0, 0, &r), 0);
    ASSERT(!r.done); /* never called back from inside api_client_unary */
    ASSERT(RUN_UNTIL(r.done, 3000));
    ASSERT(connected_flag);
    ASSERT_INT_EQ(connect_status, 0);
    ASSERT_STR_EQ(r.message, "");
    ASSERT_INT_EQ(r.status, API_OK);
    ASSERT_STR_EQ(r.text, "hello");
    ASSERT_INT_EQ(r.role, API_ROLE_LOCAL);
    ASSERT_STR_EQ(r.node_id, "");
    ASSERT(api_client_connected(c));

    /* An application error travels with its (percent-encoded) message. */
    ASSERT_INT_EQ(say(c, "fail", 0, 0, &r), 0);
    ASSERT(RUN_UNTIL(r.done, 3000));
    ASSERT_INT_EQ(r.status, API_NOT_FOUND);
    ASSERT_STR_EQ(r.message, "no such thing: ünïcode 100%");

    ASSERT(client_stop(c));
    ASSERT(server_stop());
    /* A stale socket file from a dead server is replaced. */
    server = api_server_new(&loop, 0);
    char em[SWARM_ERRMSG_SIZE];
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock_path);
    ASSERT_INT_EQ(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    close(fd);
    ASSERT_INT_EQ(api_server_listen_unix(server, sock_path, em), 0);
    ASSERT(server_stop());
}

LOOP_TEST(streaming_count)
{
    struct result r = {0};
    ASSERT_INT_EQ(server_start(0, API_ROLE_LOCAL, true, NULL), 0);
    struct api_client *c = client_unix();
    Swarmtest__CountRequest req = SWARMTEST__COUNT_REQUEST__INIT;
    req.count = 5;
    req.interval_ms = 2;
    ASSERT_INT_EQ(api_client_stream(c, &swarmtest__echo__descriptor, "Count",
                                    &req.base, 5000, stream_msg_cb,
                                    response_cb, &r, NULL), 0);
    ASSERT(RUN_UNTIL(r.done, 3000));
    ASSERT_INT_EQ(r.status, API_OK);
    ASSERT_INT_EQ(r.msgs, 5);

    /* A zero-message stream is fine too. */
    memset(&r, 0, sizeof r);
    req.count = 0;
    ASSERT_INT_EQ(api_client_stream(c, &swarmtest__echo__descriptor, "Count",
                                    &req.base, 0, stream_msg_cb, response_cb,
                                    &r, NULL), 0);
    ASSERT(RUN_UNTIL(r.done, 3000));
    ASSERT_INT_EQ(r.status, API_OK);
    ASSERT_INT_EQ(r.msgs, 0);

    /* Cancelling a long stream: CANCELLED locally, the server's handler sees
     * api_call_send fail and finishes. */
    memset(&r, 0, sizeof r);
    struct api_client_call *h;
    req.count = 1000;
    req.interval_ms = 5;
    ASSERT_INT_EQ(api_client_stream(c, &swarmtest__echo__descriptor, "Count",
                                    &req.base, 0, stream_msg_cb, response_cb,
                                    &r, &h), 0);
    ASSERT(RUN_UNTIL(r.msgs >= 3, 3000));
    api_client_call_cancel(h);
    ASSERT(RUN_UNTIL(r.done, 3000));
    ASSERT_INT_EQ(r.status, API_CANCELLED);
    ASSERT(RUN_UNTIL(cancels_seen == 1, 3000));

    ASSERT(client_stop(c));
    ASSERT(server_stop());
}

LOOP_TEST(unknown_method)
{
    struct result r = {0};
    ASSERT_INT_EQ(server_start(0, API_ROLE_LOCAL, false, NULL), 0);
    struct api_client *c = client_unix();
    Swarmtest__CountRequest req = SWARMTEST__COUNT_REQUEST__INIT;
    ASSERT_INT_EQ(api_client_stream(c, &swarmtest__echo__descriptor, "Count",
                                    &req.base, 0, stream_msg_cb, response_cb,
                                    &r, NULL), 0);
    ASSERT(RUN_UNTIL(r.done, 3000));
    ASSERT_INT_EQ(r.status, API_UNIMPLEMENTED);
    ASSERT(strstr(r.message, "/swarmtest.Echo/Count") != NULL);
    ASSERT_INT_EQ(handler_calls, 0);
    ASSERT(client_stop(c));
    ASSERT(server_stop());
}

LOOP_TEST(deadline_exceeded)
{
    struct result r;
    ASSERT_INT_EQ(server_start(0, API_ROLE_LOCAL, true, NULL), 0);
    struct api_client *c = client_unix();
    /* Connect first: on a loaded machine the 100 ms could otherwise pass
     * before the call is even written, and the server would never see it. */
    ASSERT_INT_EQ(say(c, "warm", 0, 3000, &r), 0);
    ASSERT(RUN_UNTIL(r.done, 3000));
    ASSERT_INT_EQ(r.status, API_OK);
    ASSERT_INT_EQ(say(c, "hold", 0, 100, &r), 0);
    ASSERT(RUN_UNTIL(r.done, 3000));
    ASSERT_INT_EQ(r.status, API_DEADLINE_EXCEEDED);
    /* The server enforces it too: the held call is cancelled. */
    ASSERT(RUN_UNTIL(cancels_seen == 1, 3000));
    ASSERT(held_call != NULL);
    ASSERT(api_call_cancelled(held_call));
    ASSERT(api_call_deadline(held_call) > 0);
    /* The handler's late answer is discarded without harm. */
    ProtobufCBinaryData none = {0, NULL};
    echo_reply(held_call, "too late", none);
    held_call = NULL;
    ASSERT(server_still_serves());
    ASSERT(client_stop(c));
    ASSERT(server_stop());
}

LOOP_TEST(concurrent_calls)
{
    enum { N = 200 };
    static struct result r[N];
    char text[N][16];
    ASSERT_INT_EQ(server_start(0, API_ROLE_LOCAL, true, NULL), 0);
    struct api_client *c = client_unix();
    ASSERT(RUN_UNTIL(connected_flag, 3000));
    for (int i = 0; i < N; i++) {
        snprintf(text[i], sizeof text[i], "msg-%d", i);
        ASSERT_INT_EQ(say(c, text[i], (uint32_t)(i % 7), 10000, &r[i]), 0);
    }
    int done = 0;
    ASSERT(RUN_UNTIL((done = 0, ({
                          for (int i = 0; i < N; i++) done += r[i].done;
                      }),
                      done == N),
                     10000));
    for (int i = 0; i < N; i++) {
        ASSERT_INT_EQ(r[i].status, API_OK);
        ASSERT_STR_EQ(r[i].text, text[i]);
    }
    ASSERT_INT_EQ(handler_calls, N);
    ASSERT(client_stop(c));
    ASSERT(server_stop());
}

LOOP_TEST(oversized_message)
{
    struct result r;
    static uint8_t big[64 * 1024];
    ASSERT_INT_EQ(server_start(1024, API_ROLE_LOCAL, true, NULL), 0);
    struct api_client *c = client_unix();
    Swarmtest__EchoRequest req = SWARMTEST__ECHO_REQUEST__INIT;
    req.text = "big";
    req.payload.data = big;
    req.payload.len = sizeof big;
    memset(&r, 0, sizeof r);
    ASSERT_INT_EQ(api_client_unary(c, &swarmtest__echo__descriptor, "Say",
                                   &req.base, 5000, response_cb, &r), 0);
    ASSERT(RUN_UNTIL(r.done, 3000));
    ASSERT_INT_EQ(r.status, API_RESOURCE_EXHAUSTED);
    ASSERT_INT_EQ(handler_calls, 0);
    /* The connection survives; a small message right after works. */
    req.payload.len = 100;
    memset(&r, 0, sizeof r);
    ASSERT_INT_EQ(api_client_unary(c, &swarmtest__echo__descriptor, "Say",
                                   &req.base, 5000, response_cb, &r), 0);
    ASSERT(RUN_UNTIL(r.done, 3000));
    ASSERT_INT_EQ(r.status, API_OK);
    ASSERT_INT_EQ(r.payload_len, 100);
    ASSERT(client_stop(c));
    ASSERT(server_stop());
}

LOOP_TEST(client_disconnect_pending_handler)
{
    struct result r;
    ASSERT_INT_EQ(server_start(0, API_ROLE_LOCAL, true, NULL), 0);
    struct api_client *c = client_unix();
    ASSERT_INT_EQ(say(c, "hold", 0, 0, &r), 0);
    ASSERT(RUN_UNTIL(held_call != NULL, 3000));
    ASSERT(client_stop(c));
    ASSERT(r.done);
    ASSERT_INT_EQ(r.status, API_UNAVAILABLE);
    ASSERT(RUN_UNTIL(cancels_seen == 1, 3000));
    ASSERT(api_call_cancelled(held_call));
    Swarmtest__CountResponse one = SWARMTEST__COUNT_RESPONSE__INIT;
    ASSERT_INT_EQ(api_call_send(held_call, &one.base), SWARM_ECANCELED);
    /* The server goes away too; the handler answers only now. */
    ASSERT(server_stop());
    ProtobufCBinaryData none = {0, NULL};
    echo_reply(held_call, "late", none);
    held_call = NULL;
}

LOOP_TEST(graceful_shutdown)
{
    struct result r1, r2;
    ASSERT_INT_EQ(server_start(0, API_ROLE_LOCAL, true, NULL), 0);
    struct api_client *c = client_unix();
    ASSERT_INT_EQ(say(c, "slow", 200, 5000, &r1), 0);
    ASSERT(RUN_UNTIL(handler_calls == 1, 3000));
    api_server_shutdown(server, 3000, server_done_cb, NULL);
    /* The in-flight call still completes, then everything closes. */
    ASSERT(RUN_UNTIL(r1.done, 3000));
    ASSERT_INT_EQ(r1.status, API_OK);
    ASSERT_STR_EQ(r1.text, "slow");
    ASSERT(RUN_UNTIL(server_done, 3000));
    ASSERT(RUN_UNTIL(!api_client_connected(c), 3000));
    ASSERT_INT_EQ(say(c, "after", 0, 1000, &r2), 0);
    ASSERT(RUN_UNTIL(r2.done, 3000));
    ASSERT_INT_EQ(r2.status, API_UNAVAILABLE);
    ASSERT(client_stop(c));

    /* With a handler that never answers in time, the grace timer ends it. */
    ASSERT_INT_EQ(server_start(0, API_ROLE_LOCAL, true, NULL), 0);
    c = client_unix();
    ASSERT_INT_EQ(say(c, "hold", 0, 0, &r1), 0);
    ASSERT(RUN_UNTIL(held_call != NULL, 3000));
    api_server_shutdown(server, 50, server_done_cb, NULL);
    ASSERT(RUN_UNTIL(server_done, 3000));
    ASSERT(RUN_UNTIL(r1.done, 3000));
    ASSERT_INT_EQ(r1.status, API_UNAVAILABLE);
    ASSERT_INT_EQ(cancels_seen, 1);
    api_call_error(held_call, API_INTERNAL, "bye");
    held_call = NULL;
    ASSERT(client_stop(c));
}

/* A loopback port that refuses connections for as long as the returned
 * socket is open: bound, never listening. -1 on failure. */
static int refusing_port(char *addr, size_t size)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        close(fd);
        return -1;
    }
    snprintf(addr, size, "127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
    return fd;
}

LOOP_TEST(connect_refused)
{
    struct api_client *c = api_client_new(&loop, 0);
    connected_flag = false;
    ASSERT_INT_EQ(api_client_connect_unix(c, sock_path, connect_cb, NULL), 0);
    ASSERT(RUN_UNTIL(connected_flag, 3000));
    ASSERT(connect_status != 0);
    ASSERT(strstr(connect_msg, "no such file") != NULL ||
           strstr(connect_msg, "refused") != NULL);
    ASSERT(client_stop(c));

    if (pki_setup() != 0) {
        FAILF("pki");
    }
    SSL_CTX *cctx = client_ctx(&pki.manager);
    c = api_client_new(&loop, 0);
    connected_flag = false;
    /* A port held by a bound socket that does not listen refuses. */
    char refused_addr[64];
    int held = refusing_port(refused_addr, sizeof refused_addr);
    ASSERT(held >= 0);
    ASSERT_INT_EQ(api_client_connect_tls(c, refused_addr, cctx, NULL, 2000,
                                         connect_cb, NULL), 0);
    struct result r;
    ASSERT_INT_EQ(say(c, "x", 0, 0, &r), 0);
    ASSERT(RUN_UNTIL(connected_flag && r.done, 3000));
    ASSERT(strstr(connect_msg, "connection refused") != NULL);
    ASSERT_INT_EQ(r.status, API_UNAVAILABLE);
    ASSERT(strstr(r.message, "connection refused") != NULL);
    ASSERT(client_stop(c));
    SSL_CTX_free(cctx);
    close(held);
}

/* ----------------------------------------------------------------- TLS */

LOOP_TEST(unary_tls_manager)
{
    struct result r;
    if (pki_setup() != 0) {
        FAILF("pki");
    }
    SSL_CTX *sctx = server_ctx(&pki.manager);
    SSL_CTX *cctx = client_ctx(&pki.manager);
    ASSERT_INT_EQ(server_start(0, API_ROLE_MANAGER, true, sctx), 0);
    SSL_CTX_free(sctx); /* the server holds its own reference */
    struct api_client *c = client_tls(cctx, NULL);
    SSL_CTX_free(cctx);
    ASSERT(RUN_UNTIL(connected_flag, 5000));
    ASSERT_INT_EQ(connect_status, 0);
    ASSERT(api_client_peer_cert(c) != NULL);
    ASSERT_INT_EQ(say(c, "over tls", 0, 2000, &r), 0);
    ASSERT(RUN_UNTIL(r.done, 3000));
    ASSERT_INT_EQ(r.status, API_OK);
    ASSERT_STR_EQ(r.text, "over tls");
    ASSERT_INT_EQ(r.role, API_ROLE_MANAGER);
    ASSERT_STR_EQ(r.node_id, "node-mgr-1");
    struct result s = {0};
    Swarmtest__CountRequest req = SWARMTEST__COUNT_REQUEST__INIT;
    req.count = 5;
    ASSERT_INT_EQ(api_client_stream(c, &swarmtest__echo__descriptor, "Count",
                                    &req.base, 0, stream_msg_cb, response_cb,
                                    &s, NULL), 0);
    ASSERT(RUN_UNTIL(s.done, 3000));
    ASSERT_INT_EQ(s.status, API_OK);
    ASSERT_INT_EQ(s.msgs, 5);
    ASSERT(client_stop(c));
    ASSERT(server_stop());
}

static int tls_say(SSL_CTX *cctx, const char *name, const char *method,
                   struct result *r)
{
    struct api_client *c = client_tls(cctx, name);
    memset(r, 0, sizeof *r);
    if (c == NULL) {
        return -1;
    }
    if (strcmp(method, "Say") == 0) {
        say(c, "who", 0, 3000, r);
    } else {
        Swarmtest__CountRequest req = SWARMTEST__COUNT_REQUEST__INIT;
        req.count = 1;
        api_client_stream(c, &swarmtest__echo__descriptor, "Count", &req.base,
                          3000, NULL, response_cb, r, NULL);
    }
    bool ok = RUN_UNTIL(r->done && connected_flag, 5000);
    return client_stop(c) && ok ? 0 : -1;
}

LOOP_TEST(tls_roles)
{
    struct result r;
    if (pki_setup() != 0) {
        FAILF("pki");
    }
    SSL_CTX *sctx = server_ctx(&pki.manager);
    ASSERT_INT_EQ(server_start(0, API_ROLE_ANONYMOUS | API_ROLE_MANAGER |
                                      API_ROLE_WORKER, true, sctx), 0);
    SSL_CTX_free(sctx);
    SSL_CTX *anon = client_ctx(NULL);
    SSL_CTX *worker = client_ctx(&pki.worker);
    SSL_CTX *badou = client_ctx(&pki.badou);

    /* Anonymous: allowed on Say, refused on the managers' Count. */
    ASSERT_INT_EQ(tls_say(anon, NULL, "Say", &r), 0);
    ASSERT_INT_EQ(r.status, API_OK);
    ASSERT_INT_EQ(r.role, API_ROLE_ANONYMOUS);
    ASSERT_STR_EQ(r.node_id, "");
    ASSERT_INT_EQ(tls_say(anon, NULL, "Count", &r), 0);
    ASSERT_INT_EQ(r.status, API_UNAUTHENTICATED);

    /* A worker: allowed on Say, PERMISSION_DENIED on Count. */
    ASSERT_INT_EQ(tls_say(worker, NULL, "Say", &r), 0);
    ASSERT_INT_EQ(r.status, API_OK);
    ASSERT_INT_EQ(r.role, API_ROLE_WORKER);
    ASSERT_STR_EQ(r.node_id, "node-wrk-1");
    ASSERT_INT_EQ(tls_say(worker, NULL, "Count", &r), 0);
    ASSERT_INT_EQ(r.status, API_PERMISSION_DENIED);
    ASSERT(strstr(r.message, "workers") != NULL);

    /* A certificate of our CA with an unknown OU is refused outright. */
    ASSERT_INT_EQ(tls_say(badou, NULL, "Say", &r), 0);
    ASSERT_INT_EQ(r.status, API_UNAVAILABLE);
    ASSERT(connect_status != 0);
    ASSERT_INT_EQ(handler_calls, 2);

    SSL_CTX_free(anon);
    SSL_CTX_free(worker);
    SSL_CTX_free(badou);
    ASSERT(server_stop());
}

LOOP_TEST(tls_foreign_client_cert)
{
    struct result r;
    if (pki_setup() != 0) {
        FAILF("pki");
    }
    SSL_CTX *sctx = server_ctx(&pki.manager);
    ASSERT_INT_EQ(server_start(0, API_ROLE_ANONYMOUS | API_ROLE_MANAGER | API_ROLE_LOCAL, true,
                               sctx), 0);
    SSL_CTX_free(sctx);
    SSL_CTX *foreign = client_ctx(&pki.foreign);
    ASSERT_INT_EQ(tls_say(foreign, NULL, "Say", &r), 0);
    ASSERT(connect_status != 0);
    ASSERT_INT_EQ(r.status, API_UNAVAILABLE);
    ASSERT(strstr(connect_msg, "TLS handshake failed: tlsv1 alert unknown ca") != NULL);
    ASSERT(strstr(r.message, "unknown ca") != NULL);
    ASSERT_INT_EQ(handler_calls, 0);
    SSL_CTX_free(foreign);
    ASSERT(server_still_serves());
    ASSERT(server_stop());
}

LOOP_TEST(tls_server_name_mismatch)
{
    struct result r;
    if (pki_setup() != 0) {
        FAILF("pki");
    }
    /* The server presents a worker certificate: valid CA, wrong name. */
    SSL_CTX *sctx = server_ctx(&pki.worker);
    ASSERT_INT_EQ(server_start(0, API_ROLE_MANAGER, true, sctx), 0);
    SSL_CTX_free(sctx);
    SSL_CTX *cctx = client_ctx(&pki.manager);
    ASSERT_INT_EQ(tls_say(cctx, NULL, "Say", &r), 0);
    ASSERT(connect_status != 0);
    ASSERT(strstr(connect_msg, "certificate verify failed") != NULL);
    ASSERT_INT_EQ(r.status, API_UNAVAILABLE);
    ASSERT_INT_EQ(handler_calls, 0);
    /* The same server is fine for a client expecting that name. */
    ASSERT_INT_EQ(tls_say(cctx, API_OU_WORKER, "Say", &r), 0);
    ASSERT_INT_EQ(r.status, API_OK);
    SSL_CTX_free(cctx);
    ASSERT(server_stop());
}

/* ------------------------------------------------------------ raw ALPN */

static struct api_peer raw_peer;
static struct tls_conn *raw_server_conn;
static char raw_got[64];
static bool raw_closed;

static void raw_server_read_cb(struct tls_conn *conn, int status,
                               const uint8_t *buf, size_t len,
                               const char *errmsg, void *data)
{
    if (status != 0) {
        tls_conn_close(conn, NULL, NULL);
        raw_server_conn = NULL;
        return;
    }
    /* Echo, upper-cased, so the test sees the server did it. */
    char out[256];
    for (size_t i = 0; i < len && i < sizeof out; i++) {
        out[i] = (char)(buf[i] >= 'a' && buf[i] <= 'z' ? buf[i] - 32 : buf[i]);
    }
    tls_conn_write(conn, out, len < sizeof out ? len : sizeof out);
}

static void raw_accept_cb(struct tls_conn *conn, const struct api_peer *peer,
                          void *data)
{
    raw_peer = *peer;
    raw_server_conn = conn;
    tls_conn_read_start(conn, raw_server_read_cb, NULL);
}

static int raw_hs_status = 1;
static char raw_hs_msg[SWARM_ERRMSG_SIZE];

static void raw_client_hs_cb(struct tls_conn *conn, int status,
                             const char *errmsg, void *data)
{
    raw_hs_status = status;
    snprintf(raw_hs_msg, sizeof raw_hs_msg, "%s", errmsg ? errmsg : "");
}

static void raw_client_read_cb(struct tls_conn *conn, int status,
                               const uint8_t *buf, size_t len,
                               const char *errmsg, void *data)
{
    if (status != 0) {
        raw_closed = true;
        return;
    }
    size_t have = strlen(raw_got);
    if (have + len < sizeof raw_got) {
        memcpy(raw_got + have, buf, len);
        raw_got[have + len] = '\0';
    }
}

static void raw_conn_closed_cb(struct tls_conn *conn, void *data)
{
    *(bool *)data = true;
}

LOOP_TEST(raw_alpn_protocol)
{
    static const char *const alpn[] = {"swarm-test-raw", NULL};
    char addr[64], em[SWARM_ERRMSG_SIZE];
    bool closed = false;
    struct tls_conn *conn;
    if (pki_setup() != 0) {
        FAILF("pki");
    }
    SSL_CTX *sctx = server_ctx(&pki.manager);
    ASSERT_INT_EQ(server_start(0, API_ROLE_MANAGER, true, sctx), 0);
    SSL_CTX_free(sctx);
    ASSERT_INT_EQ(api_server_add_alpn(server, "swarm-test-raw", raw_accept_cb,
                                      NULL), 0);
    ASSERT_INT_EQ(api_server_add_alpn(server, "swarm-test-raw", raw_accept_cb,
                                      NULL), SWARM_EEXIST);
    ASSERT_INT_EQ(api_server_add_alpn(server, "h2", raw_accept_cb, NULL),
                  SWARM_EINVAL);
    SSL_CTX *cctx = client_ctx(&pki.worker);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", api_server_tls_port(server));
    raw_got[0] = '\0';
    raw_hs_status = 1;
    raw_server_conn = NULL;
    ASSERT_INT_EQ(tls_conn_dial(&loop, addr, cctx, API_SERVER_NAME, alpn, 3000,
                                raw_client_hs_cb, NULL, &conn, em), 0);
    ASSERT(RUN_UNTIL(raw_hs_status != 1, 3000));
    ASSERT_INT_EQ(raw_hs_status, 0);
    ASSERT_STR_EQ(tls_conn_alpn(conn), "swarm-test-raw");
    ASSERT_INT_EQ(tls_conn_read_start(conn, raw_client_read_cb, NULL), 0);
    ASSERT_INT_EQ(tls_conn_write(conn, "hello ", 6), 0);
    ASSERT_INT_EQ(tls_conn_write(conn, "raft", 4), 0);
    ASSERT(RUN_UNTIL(strcmp(raw_got, "HELLO RAFT") == 0, 3000));
    ASSERT(raw_server_conn != NULL);
    ASSERT_INT_EQ(raw_peer.role, API_ROLE_WORKER);
    ASSERT_STR_EQ(raw_peer.node_id, "node-wrk-1");
    ASSERT_STR_EQ(raw_peer.cluster_id, "cluster-1");
    ASSERT(strncmp(raw_peer.addr, "127.0.0.1:", 10) == 0);
    ASSERT_STR_EQ(tls_conn_alpn(raw_server_conn), "swarm-test-raw");

    /* Closing one end is seen by the other. */
    raw_closed = false;
    tls_conn_close(conn, raw_conn_closed_cb, &closed);
    ASSERT(RUN_UNTIL(closed && raw_server_conn == NULL, 3000));

    /* An ALPN the server does not speak fails the handshake. */
    static const char *const bogus[] = {"nope/1", NULL};
    raw_hs_status = 1;
    ASSERT_INT_EQ(tls_conn_dial(&loop, addr, cctx, API_SERVER_NAME, bogus, 3000,
                                raw_client_hs_cb, NULL, &conn, em), 0);
    ASSERT(RUN_UNTIL(raw_hs_status != 1, 3000));
    ASSERT(raw_hs_status != 0);
    ASSERT(strstr(raw_hs_msg, "TLS handshake failed") != NULL);
    closed = false;
    tls_conn_close(conn, raw_conn_closed_cb, &closed);
    ASSERT(RUN_UNTIL(closed, 3000));

    SSL_CTX_free(cctx);
    ASSERT(server_stop());
}

/* ----------------------------------------------- hostile bytes, raw fd */

struct raw {
    int fd;
    bool eof;
    nghttp2_session *session;
    int http_status;
    int grpc_status;
    char grpc_message[256];
    bool stream_closed;
    const uint8_t *body;
    size_t body_len;
};

static int raw_connect(struct raw *r)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memset(r, 0, sizeof *r);
    r->grpc_status = -1;
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock_path);
    r->fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(r->fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        return -1;
    }
    fcntl(r->fd, F_SETFL, O_NONBLOCK);
    return 0;
}

/* Read what arrived; feed it to the session if there is one. */
static bool raw_poll(struct raw *r)
{
    uint8_t buf[16384];
    for (;;) {
        ssize_t n = recv(r->fd, buf, sizeof buf, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
            r->eof = true;
            return true;
        }
        if (n < 0) {
            break;
        }
        if (r->session != NULL) {
            nghttp2_session_mem_recv(r->session, buf, (size_t)n);
        }
    }
    if (r->session != NULL) {
        const uint8_t *out;
        ssize_t n;
        while ((n = nghttp2_session_mem_send(r->session, &out)) > 0) {
            if (send(r->fd, out, (size_t)n, MSG_NOSIGNAL) != n) {
                r->eof = true;
                return true;
            }
        }
    }
    return r->eof || r->stream_closed;
}

static int raw_header_cb(nghttp2_session *s, const nghttp2_frame *frame,
                         const uint8_t *name, size_t namelen,
                         const uint8_t *value, size_t valuelen, uint8_t flags,
                         void *user_data)
{
    struct raw *r = user_data;
    char v[256];
    snprintf(v, sizeof v, "%.*s", (int)valuelen, (const char *)value);
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        r->http_status = atoi(v);
    } else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0) {
        r->grpc_status = atoi(v);
    } else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0) {
        snprintf(r->grpc_message, sizeof r->grpc_message, "%s", v);
    }
    return 0;
}

static int raw_stream_close_cb(nghttp2_session *s, int32_t id, uint32_t ec,
                               void *user_data)
{
    ((struct raw *)user_data)->stream_closed = true;
    return 0;
}

static ssize_t raw_body_cb(nghttp2_session *s, int32_t id, uint8_t *buf,
                           size_t len, uint32_t *flags,
                           nghttp2_data_source *src, void *user_data)
{
    struct raw *r = user_data;
    size_t n = r->body_len < len ? r->body_len : len;
    memcpy(buf, r->body, n);
    r->body += n;
    r->body_len -= n;
    if (r->body_len == 0) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    }
    return (ssize_t)n;
}

/* An nghttp2 client on the raw fd sending exactly what the test says. */
static int raw_request(struct raw *r, const char *content_type,
                       const uint8_t *body, size_t body_len)
{
    nghttp2_session_callbacks *cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_header_callback(cbs, raw_header_cb);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, raw_stream_close_cb);
    nghttp2_session_client_new(&r->session, cbs, r);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_submit_settings(r->session, NGHTTP2_FLAG_NONE, NULL, 0);
    nghttp2_nv nva[] = {
        H2_NV(":method", "POST"), H2_NV(":scheme", "http"),
        H2_NV(":path", "/swarmtest.Echo/Say"), H2_NV(":authority", "x"),
        H2_NV("content-type", content_type), H2_NV("te", "trailers"),
    };
    r->body = body;
    r->body_len = body_len;
    nghttp2_data_provider prd = {.read_callback = raw_body_cb};
    return nghttp2_submit_request(r->session, NULL, nva, 6,
                                  body ? &prd : NULL, NULL) > 0 ? 0 : -1;
}

static void raw_close(struct raw *r)
{
    if (r->session != NULL) {
        nghttp2_session_del(r->session);
    }
    close(r->fd);
}

LOOP_TEST(hostile_bytes)
{
    struct raw r;
    ASSERT_INT_EQ(server_start(0, API_ROLE_LOCAL, true, NULL), 0);
    int served = 0; /* handler calls made by server_still_serves() */

    /* 1. Not HTTP/2 at all: the connection is closed. */
    ASSERT_INT_EQ(raw_connect(&r), 0);
    const char *junk = "GET / HTTP/1.1\r\nHost: x\r\n\r\n\x01\x02\x03garbage";
    ASSERT(send(r.fd, junk, strlen(junk), 0) > 0);
    ASSERT(RUN_UNTIL(raw_poll(&r), 3000));
    ASSERT(r.eof);
    raw_close(&r);
    ASSERT(server_still_serves());
    served++;

    /* 2. A valid preface, then frames that make no sense. */
    ASSERT_INT_EQ(raw_connect(&r), 0);
    const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
                           "\x00\x00\x00\x04\x00\x00\x00\x00\x00" /* SETTINGS */
                           "\x00\x00\x08\x07\x00\x00\x00\x00\x01" /* GOAWAY on a stream */
                           "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff";
    ASSERT(send(r.fd, preface, sizeof preface - 1, 0) > 0);
    ASSERT(RUN_UNTIL(raw_poll(&r), 3000));
    ASSERT(r.eof);
    raw_close(&r);
    ASSERT(server_still_serves());
    served++;

    /* 3. A request with the wrong content-type: HTTP 415. */
    ASSERT_INT_EQ(raw_connect(&r), 0);
    ASSERT_INT_EQ(raw_request(&r, "application/json", NULL, 0), 0);
    ASSERT(RUN_UNTIL(raw_poll(&r), 3000));
    ASSERT(r.stream_closed);
    ASSERT_INT_EQ(r.http_status, 415);
    ASSERT_INT_EQ(r.grpc_status, API_INTERNAL);
    raw_close(&r);
    ASSERT_INT_EQ(handler_calls, served);

    /* 4. A gRPC message announcing 100 bytes, carrying 10, then END_STREAM. */
    static const uint8_t truncated[15] = {0, 0, 0, 0, 100, 1, 2, 3, 4, 5,
                                          6, 7, 8, 9, 10};
    ASSERT_INT_EQ(raw_connect(&r), 0);
    ASSERT_INT_EQ(raw_request(&r, "application/grpc", truncated,
                              sizeof truncated), 0);
    ASSERT(RUN_UNTIL(raw_poll(&r), 3000));
    ASSERT(r.stream_closed);
    ASSERT_INT_EQ(r.http_status, 200);
    ASSERT_INT_EQ(r.grpc_status, API_INTERNAL);
    ASSERT(strstr(r.grpc_message, "could%20not%20decode") != NULL ||
           strstr(r.grpc_message, "could not decode") != NULL);
    raw_close(&r);

    /* 5. A complete prefix with bytes that are not an EchoRequest. */
    static const uint8_t notproto[8] = {0, 0, 0, 0, 3, 0xff, 0xff, 0xff};
    ASSERT_INT_EQ(raw_connect(&r), 0);
    ASSERT_INT_EQ(raw_request(&r, "application/grpc+proto", notproto,
                              sizeof notproto), 0);
    ASSERT(RUN_UNTIL(raw_poll(&r), 3000));
    ASSERT_INT_EQ(r.grpc_status, API_INVALID_ARGUMENT);
    raw_close(&r);

    /* 6. A compressed message (no grpc-encoding was negotiated). */
    static const uint8_t compressed[6] = {1, 0, 0, 0, 1, 0};
    ASSERT_INT_EQ(raw_connect(&r), 0);
    ASSERT_INT_EQ(raw_request(&r, "application/grpc", compressed,
                              sizeof compressed), 0);
    ASSERT(RUN_UNTIL(raw_poll(&r), 3000));
    ASSERT_INT_EQ(r.grpc_status, API_UNIMPLEMENTED);
    raw_close(&r);

    ASSERT_INT_EQ(handler_calls, served);
    ASSERT(server_still_serves());
    served++;
    ASSERT(server_stop());
}

/* ------------------------------------------------------------- limits */

TEST(unknown_fields_counted)
{
    /* text "hi" (known), then fields 100 (varint), 101 (bytes), 102
     * (fixed32) and 103 (fixed64) that EchoRequest does not have. */
    static const uint8_t msg[] = {0x0a, 2, 'h', 'i',
                                  0xa0, 0x06, 0x01,
                                  0xaa, 0x06, 2, 'x', 'y',
                                  0xb5, 0x06, 1, 2, 3, 4,
                                  0xb9, 0x06, 1, 2, 3, 4, 5, 6, 7, 8};
    size_t n;
    ASSERT_INT_EQ(grpc_unknown_fields(&swarmtest__echo_request__descriptor, msg,
                                      sizeof msg, 100, &n), 0);
    ASSERT_INT_EQ(n, 4);
    ASSERT_INT_EQ(grpc_unknown_fields(&swarmtest__echo_request__descriptor, msg, 4,
                                      100, &n), 0);
    ASSERT_INT_EQ(n, 0);
    /* Counting stops past the limit. */
    ASSERT_INT_EQ(grpc_unknown_fields(&swarmtest__echo_request__descriptor, msg,
                                      sizeof msg, 1, &n), 0);
    ASSERT_INT_EQ(n, 2);
    /* Truncated bytes, a length past the end, a group, field number 0. */
    ASSERT_INT_EQ(grpc_unknown_fields(&swarmtest__echo_request__descriptor, msg,
                                      sizeof msg - 1, 100, &n), SWARM_EINVAL);
    static const uint8_t past[] = {0x0a, 9, 'h'};
    ASSERT_INT_EQ(grpc_unknown_fields(&swarmtest__echo_request__descriptor, past,
                                      sizeof past, 100, &n), SWARM_EINVAL);
    static const uint8_t group[] = {0xa3, 0x06};
    ASSERT_INT_EQ(grpc_unknown_fields(&swarmtest__echo_request__descriptor, group,
                                      sizeof group, 100, &n), SWARM_EINVAL);
    static const uint8_t zero[] = {0x00, 0x01};
    ASSERT_INT_EQ(grpc_unknown_fields(&swarmtest__echo_request__descriptor, zero,
                                      sizeof zero, 100, &n), SWARM_EINVAL);
}

/* A request of a few KiB carrying thousands of unknown fields is refused
 * before protobuf-c spends an allocation on each; the handler never runs. */
LOOP_TEST(unknown_field_flood_refused)
{
    struct raw r;
    enum { FIELDS = API_UNKNOWN_FIELDS_MAX + 1 };
    static uint8_t body[5 + 3 * FIELDS];
    ASSERT_INT_EQ(server_start(0, API_ROLE_LOCAL, true, NULL), 0);
    body[4] = (uint8_t)(3 * FIELDS);
    body[3] = (uint8_t)((3 * FIELDS) >> 8);
    for (int i = 0; i < FIELDS; i++) {
        body[5 + 3 * i] = 0xa0;
        body[6 + 3 * i] = 0x06;
        body[7 + 3 * i] = 0x01;
    }
    ASSERT_INT_EQ(raw_connect(&r), 0);
    ASSERT_INT_EQ(raw_request(&r, "application/grpc", body, sizeof body), 0);
    ASSERT(RUN_UNTIL(raw_poll(&r), 3000));
    ASSERT_INT_EQ(r.grpc_status, API_INVALID_ARGUMENT);
    ASSERT(strstr(r.grpc_message, "unknown%20fields") != NULL ||
           strstr(r.grpc_message, "unknown fields") != NULL);
    raw_close(&r);
    ASSERT_INT_EQ(handler_calls, 0);
    /* A thousand is fine (a newer client's fields are not an attack). */
    body[3] = 0;
    body[4] = 3 * 10;
    ASSERT_INT_EQ(raw_connect(&r), 0);
    ASSERT_INT_EQ(raw_request(&r, "application/grpc", body, 5 + 3 * 10), 0);
    ASSERT(RUN_UNTIL(raw_poll(&r), 3000));
    ASSERT_INT_EQ(r.grpc_status, API_OK);
    raw_close(&r);
    ASSERT_INT_EQ(handler_calls, 1);
    ASSERT(server_stop());
}

/* Without a certificate: a small message limit, few streams at once, and an
 * idle connection is closed. */
LOOP_TEST(anonymous_limits)
{
    enum { N = 8 };
    static struct result r[N];
    static uint8_t big[API_ANON_MAX_MSG + 1];
    if (pki_setup() != 0) {
        FAILF("pki");
    }
    SSL_CTX *sctx = server_ctx(&pki.manager);
    ASSERT_INT_EQ(server_start(0, API_ROLE_ANONYMOUS | API_ROLE_WORKER, true, sctx), 0);
    SSL_CTX_free(sctx);
    /* Long enough that a stall of this loop on a loaded machine (client and
     * server share it) is not taken for an idle connection between steps. */
    api_server_limits(server, API_ROLE_ANONYMOUS)->idle_ms = 2000;
    SSL_CTX *anon = client_ctx(NULL);
    SSL_CTX *worker = client_ctx(&pki.worker);

    struct api_client *c = client_tls(anon, NULL);
    ASSERT(RUN_UNTIL(connected_flag, 5000));
    ASSERT_INT_EQ(connect_status, 0);
    /* 1. A message over the anonymous limit. */
    Swarmtest__EchoRequest req = SWARMTEST__ECHO_REQUEST__INIT;
    req.text = "big";
    req.payload.data = big;
    req.payload.len = sizeof big;
    memset(&r[0], 0, sizeof r[0]);
    ASSERT_INT_EQ(api_client_unary(c, &swarmtest__echo__descriptor, "Say", &req.base,
                                   5000, response_cb, &r[0]), 0);
    ASSERT(RUN_UNTIL(r[0].done, 5000));
    ASSERT_INT_EQ(r[0].status, API_RESOURCE_EXHAUSTED);
    ASSERT_INT_EQ(handler_calls, 0);
    /* 2. Eight slow calls at once: at most four streams are open. */
    for (int i = 0; i < N; i++) {
        ASSERT_INT_EQ(say(c, "slow", 200, 10000, &r[i]), 0);
    }
    int done = 0;
    ASSERT(RUN_UNTIL((done = 0, ({
                          for (int i = 0; i < N; i++) done += r[i].done;
                      }),
                      done == N),
                     10000));
    for (int i = 0; i < N; i++) {
        ASSERT_INT_EQ(r[i].status, API_OK);
    }
    ASSERT_INT_EQ(max_in_handler, API_ANON_MAX_STREAMS);
    /* 3. Nothing more to say: the server closes the connection. */
    ASSERT(RUN_UNTIL(!api_client_connected(c), 10000));
    ASSERT(client_stop(c));

    /* A certificate holder gets the big message and its eight streams. */
    max_in_handler = 0;
    c = client_tls(worker, NULL);
    ASSERT(RUN_UNTIL(connected_flag, 5000));
    memset(&r[0], 0, sizeof r[0]);
    ASSERT_INT_EQ(api_client_unary(c, &swarmtest__echo__descriptor, "Say", &req.base,
                                   5000, response_cb, &r[0]), 0);
    ASSERT(RUN_UNTIL(r[0].done, 5000));
    ASSERT_INT_EQ(r[0].status, API_OK);
    for (int i = 0; i < N; i++) {
        ASSERT_INT_EQ(say(c, "slow", 200, 10000, &r[i]), 0);
    }
    ASSERT(RUN_UNTIL((done = 0, ({
                          for (int i = 0; i < N; i++) done += r[i].done;
                      }),
                      done == N),
                     10000));
    ASSERT_INT_EQ(max_in_handler, N);
    ASSERT(api_client_connected(c));
    ASSERT(client_stop(c));

    SSL_CTX_free(anon);
    SSL_CTX_free(worker);
    ASSERT(server_stop());
}

/* A body that starts a message announcing 1 MiB, sends `*left` bytes of
 * it and then nothing more (no END_STREAM). */
struct trickle {
    size_t left;
    bool started;
};

static ssize_t raw_trickle_cb(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
                              uint32_t *flags, nghttp2_data_source *src, void *user_data)
{
    struct trickle *t = src->ptr;
    size_t n = t->left < len ? t->left : len;
    (void)s;
    (void)id;
    (void)flags;
    if (n == 0) {
        return NGHTTP2_ERR_DEFERRED;
    }
    memset(buf, 0, n);
    if (!t->started && n >= 5) {
        buf[2] = 0x10; /* prefix: uncompressed, 0x00100000 bytes */
        t->started = true;
    }
    t->left -= n;
    ((struct raw *)user_data)->body_len += n; /* total sent */
    return (ssize_t)n;
}

static void raw_session(struct raw *r)
{
    nghttp2_session_callbacks *cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_header_callback(cbs, raw_header_cb);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, raw_stream_close_cb);
    nghttp2_session_client_new(&r->session, cbs, r);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_submit_settings(r->session, NGHTTP2_FLAG_NONE, NULL, 0);
}

static int raw_trickle(struct raw *r, struct trickle *t)
{
    nghttp2_nv nva[] = {
        H2_NV(":method", "POST"), H2_NV(":scheme", "http"),
        H2_NV(":path", "/swarmtest.Echo/Say"), H2_NV(":authority", "x"),
        H2_NV("content-type", "application/grpc"), H2_NV("te", "trailers"),
    };
    nghttp2_data_provider prd = {.source.ptr = t, .read_callback = raw_trickle_cb};
    return nghttp2_submit_request(r->session, NULL, nva, 6, &prd, NULL);
}

/* A request whose END_STREAM does not come in time (a slow loris) gets
 * DEADLINE_EXCEEDED and its stream reset. */
LOOP_TEST(request_deadline_from_first_byte)
{
    struct raw r;
    struct trickle t = {1000, false};
    ASSERT_INT_EQ(server_start(0, API_ROLE_LOCAL, true, NULL), 0);
    api_server_limits(server, API_ROLE_LOCAL)->call_ms = 300;
    ASSERT_INT_EQ(raw_connect(&r), 0);
    raw_session(&r);
    ASSERT(raw_trickle(&r, &t) > 0);
    ASSERT(RUN_UNTIL(raw_poll(&r), 5000));
    ASSERT(r.stream_closed);
    ASSERT_INT_EQ(r.grpc_status, API_DEADLINE_EXCEEDED);
    ASSERT(strstr(r.grpc_message, "not%20received%20in%20full") != NULL ||
           strstr(r.grpc_message, "not received in full") != NULL);
    raw_close(&r);
    ASSERT_INT_EQ(handler_calls, 0);
    ASSERT(server_still_serves());
    ASSERT(server_stop());
}

/* Like raw_poll, but a socket buffer that is full only means "later". */
static void raw_pump(struct raw *r)
{
    static uint8_t pending[1 << 16];
    static size_t npending;
    uint8_t buf[16384];
    ssize_t n;
    while ((n = recv(r->fd, buf, sizeof buf, 0)) > 0) {
        nghttp2_session_mem_recv(r->session, buf, (size_t)n);
    }
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        r->eof = true;
        return;
    }
    for (;;) {
        if (npending == 0) {
            const uint8_t *out;
            n = nghttp2_session_mem_send(r->session, &out);
            if (n <= 0) {
                return;
            }
            size_t k = (size_t)n < sizeof pending ? (size_t)n : sizeof pending;
            memcpy(pending, out, k); /* frames are at most 16 KiB + 9 */
            npending = k;
        }
        n = send(r->fd, pending, npending, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                r->eof = true;
            }
            return;
        }
        memmove(pending, pending + n, npending - (size_t)n);
        npending -= (size_t)n;
        if (npending > 0) {
            return;
        }
    }
}

/* Many streams each sending part of a large message and never ending: the
 * windows stop refilling once the connection's budget is held, so the peer
 * cannot make the server buffer more than budget + windows + one message. */
LOOP_TEST(windows_refill_within_budget)
{
    enum { STREAMS = 16, PER_STREAM = 200 << 10 };
    static struct trickle t[STREAMS];
    struct raw r;
    ASSERT_INT_EQ(server_start(0, API_ROLE_LOCAL, true, NULL), 0);
    struct api_limits *lim = api_server_limits(server, API_ROLE_LOCAL);
    lim->budget = 256 << 10;
    lim->window = 64 << 10;
    lim->conn_window = 256 << 10;
    ASSERT_INT_EQ(raw_connect(&r), 0);
    raw_session(&r);
    for (int i = 0; i < STREAMS; i++) {
        t[i] = (struct trickle){PER_STREAM, false};
        ASSERT(raw_trickle(&r, &t[i]) > 0);
    }
    /* Push, resuming every stream whenever window comes back: until more
     * than the budget went (however slow the host), then for a while more,
     * in which nothing beyond the bound may go. */
    uv_update_time(&loop);
    uint64_t until = uv_now(&loop) + 60000;
    bool over = false;
    uv_timer_start(&tick, tick_cb, 5, 5);
    while (uv_now(&loop) < until && !r.eof) {
        for (int i = 1; i < 2 * STREAMS; i += 2) {
            nghttp2_session_resume_data(r.session, i);
        }
        raw_pump(&r);
        uv_run(&loop, UV_RUN_ONCE);
        if (!over && r.body_len > lim->budget) {
            over = true;
            until = uv_now(&loop) + 1500;
        }
    }
    uv_timer_stop(&tick);
    ASSERT(!r.eof);
    ASSERT(r.body_len > lim->budget);
    ASSERT(r.body_len <= lim->budget + lim->conn_window + PER_STREAM);
    ASSERT(server_still_serves());
    raw_close(&r);
    ASSERT(server_stop());
}

/* ------------------------------------------- response budget, raw client */

/* An nghttp2 client that grants the server only the windows the test says
 * and may stop reading, on the unix socket (fd) or over TLS (tls), with the
 * outcome of each stream (index (stream_id - 1) / 2). */
enum { MRAW_STREAMS = 32 };
struct mraw {
    int fd;
    struct tls_conn *tls;
    bool reading; /* take what the server sends */
    bool eof;
    bool up; /* TLS handshake done */
    nghttp2_session *session;
    int grpc_status[MRAW_STREAMS];
    uint32_t rst[MRAW_STREAMS];
    bool closed[MRAW_STREAMS];
    size_t data[MRAW_STREAMS];
    struct grpc_buf body[MRAW_STREAMS];
    uint8_t pending[1 << 17];
    size_t npending;
};

static int mraw_index(int32_t id)
{
    return id > 0 && (id - 1) / 2 < MRAW_STREAMS ? (id - 1) / 2 : -1;
}

static int mraw_header_cb(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name,
                          size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                          void *user_data)
{
    struct mraw *r = user_data;
    int i = mraw_index(frame->hd.stream_id);
    (void)s;
    (void)flags;
    if (i >= 0 && namelen == 11 && memcmp(name, "grpc-status", 11) == 0 && valuelen < 8) {
        char v[8];
        snprintf(v, sizeof v, "%.*s", (int)valuelen, (const char *)value);
        r->grpc_status[i] = atoi(v);
    }
    return 0;
}

static int mraw_data_cb(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                        size_t len, void *user_data)
{
    struct mraw *r = user_data;
    int i = mraw_index(id);
    (void)s;
    (void)flags;
    (void)data;
    if (i >= 0) {
        r->data[i] += len;
    }
    return 0;
}

static int mraw_close_cb(nghttp2_session *s, int32_t id, uint32_t ec, void *user_data)
{
    struct mraw *r = user_data;
    int i = mraw_index(id);
    (void)s;
    if (i >= 0) {
        r->closed[i] = true;
        r->rst[i] = ec;
    }
    return 0;
}

static ssize_t mraw_body_cb(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
                            uint32_t *flags, nghttp2_data_source *src, void *user_data)
{
    struct grpc_buf *b = src->ptr;
    size_t n = b->len - b->off < len ? b->len - b->off : len;
    (void)s;
    (void)id;
    (void)user_data;
    memcpy(buf, b->data + b->off, n);
    b->off += n;
    if (b->off == b->len) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    }
    return (ssize_t)n;
}

/* A session whose streams get `window` bytes of window (the connection
 * as much, at least the default). */
static void mraw_session(struct mraw *r, int32_t window)
{
    nghttp2_session_callbacks *cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_header_callback(cbs, mraw_header_cb);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, mraw_data_cb);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, mraw_close_cb);
    nghttp2_session_client_new(&r->session, cbs, r);
    nghttp2_session_callbacks_del(cbs);
    for (int i = 0; i < MRAW_STREAMS; i++) {
        r->grpc_status[i] = -1;
    }
    r->reading = true;
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, (uint32_t)window}};
    nghttp2_submit_settings(r->session, NGHTTP2_FLAG_NONE, iv, 1);
    if (window > 65535) {
        nghttp2_session_set_local_window_size(r->session, NGHTTP2_FLAG_NONE, 0, window);
    }
}

static int mraw_unix(struct mraw *r, int32_t window)
{
    struct raw tmp;
    memset(r, 0, sizeof *r);
    if (raw_connect(&tmp) != 0) {
        return -1;
    }
    r->fd = tmp.fd;
    mraw_session(r, window);
    return 0;
}

/* Open the stream window to `window` for every stream, the connection's too. */
static void mraw_open_window(struct mraw *r, int32_t window)
{
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, (uint32_t)window}};
    nghttp2_submit_settings(r->session, NGHTTP2_FLAG_NONE, iv, 1);
    nghttp2_session_set_local_window_size(r->session, NGHTTP2_FLAG_NONE, 0, window);
}

/* Start a call with request `req`; returns its index. */
static int mraw_call(struct mraw *r, const char *path, const ProtobufCMessage *req)
{
    int32_t id = (int32_t)nghttp2_session_get_next_stream_id(r->session);
    int i = mraw_index(id);
    if (i < 0 || grpc_frame_pack(&r->body[i], req, 16 << 20) != 0) {
        return -1;
    }
    nghttp2_nv nva[] = {
        H2_NV(":method", "POST"), H2_NV(":scheme", "http"), H2_NV(":path", path),
        H2_NV(":authority", "x"), H2_NV("content-type", "application/grpc"),
        H2_NV("te", "trailers"),
    };
    nghttp2_data_provider prd = {.source.ptr = &r->body[i], .read_callback = mraw_body_cb};
    return nghttp2_submit_request(r->session, NULL, nva, 6, &prd, NULL) == id ? i : -1;
}

/* Exchange what can be exchanged now (reading only while r->reading). */
static void mraw_pump(struct mraw *r)
{
    uint8_t buf[16384];
    ssize_t n = -1;
    while (r->tls == NULL && r->reading && (n = recv(r->fd, buf, sizeof buf, 0)) != 0) {
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                r->eof = true;
            }
            break;
        }
        nghttp2_session_mem_recv(r->session, buf, (size_t)n);
    }
    if (n == 0 && r->tls == NULL && r->reading) {
        r->eof = true;
    }
    for (;;) {
        if (r->npending == 0) {
            const uint8_t *out;
            n = nghttp2_session_mem_send(r->session, &out);
            if (n <= 0) {
                return;
            }
            memcpy(r->pending, out, (size_t)n); /* a frame: at most 16 KiB + 9 */
            r->npending = (size_t)n;
        }
        if (r->tls != NULL) {
            if (tls_conn_write(r->tls, r->pending, r->npending) != 0) {
                r->eof = true;
                return;
            }
            r->npending = 0;
            continue;
        }
        n = send(r->fd, r->pending, r->npending, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                r->eof = true;
            }
            return;
        }
        memmove(r->pending, r->pending + n, r->npending - (size_t)n);
        r->npending -= (size_t)n;
        if (r->npending > 0) {
            return;
        }
    }
}

static void mraw_tls_read_cb(struct tls_conn *c, int status, const uint8_t *buf, size_t len,
                             const char *errmsg, void *data)
{
    struct mraw *r = data;
    (void)c;
    (void)errmsg;
    if (status != 0) {
        r->eof = true;
        return;
    }
    nghttp2_session_mem_recv(r->session, buf, len);
}

static void mraw_tls_hs_cb(struct tls_conn *c, int status, const char *errmsg, void *data)
{
    struct mraw *r = data;
    (void)errmsg;
    r->up = status == 0;
    r->eof = status != 0;
    if (status == 0) {
        tls_conn_read_start(c, mraw_tls_read_cb, r);
    }
}

static int mraw_tls(struct mraw *r, SSL_CTX *ctx, int32_t window)
{
    static const char *const alpn[] = {"h2", NULL};
    char addr[64], em[SWARM_ERRMSG_SIZE];
    memset(r, 0, sizeof *r);
    r->fd = -1;
    snprintf(addr, sizeof addr, "127.0.0.1:%d", api_server_tls_port(server));
    if (tls_conn_dial(&loop, addr, ctx, API_SERVER_NAME, alpn, 3000, mraw_tls_hs_cb, r,
                      &r->tls, em) != 0) {
        return -1;
    }
    mraw_session(r, window);
    return 0;
}

static bool mraw_tls_closed;

static void mraw_tls_closed_cb(struct tls_conn *c, void *data)
{
    (void)c;
    (void)data;
    mraw_tls_closed = true;
}

static void mraw_close(struct mraw *r)
{
    nghttp2_session_del(r->session);
    for (int i = 0; i < MRAW_STREAMS; i++) {
        grpc_buf_free(&r->body[i]);
    }
    if (r->tls != NULL) {
        mraw_tls_closed = false;
        tls_conn_close(r->tls, mraw_tls_closed_cb, NULL);
        RUN_UNTIL(mraw_tls_closed, 3000);
    } else {
        close(r->fd);
    }
}

static int mraw_say(struct mraw *r, size_t payload_len)
{
    static uint8_t payload[1 << 20];
    Swarmtest__EchoRequest req = SWARMTEST__ECHO_REQUEST__INIT;
    req.text = "bulk";
    req.payload.data = payload;
    req.payload.len = payload_len;
    return mraw_call(r, "/swarmtest.Echo/Say", &req.base);
}

static int mraw_count(struct mraw *r, unsigned count, unsigned interval_ms, unsigned burst)
{
    Swarmtest__CountRequest req = SWARMTEST__COUNT_REQUEST__INIT;
    req.count = count;
    req.interval_ms = interval_ms;
    req.burst = burst;
    return mraw_call(r, "/swarmtest.Echo/Count", &req.base);
}

/* A client that grants no window: replies wait in the server, within the
 * connection's response budget. The one reply that pushes the connection
 * over it resets the stream holding the most (ENHANCE_YOUR_CALM), not the
 * newest; the others are served once the window opens. */
TEST(response_budget_resets_largest_stream)
{
    struct mraw *r = calloc(1, sizeof *r);
    int ids[9];
    loop_setup();
    ASSERT_INT_EQ(server_start(0, API_ROLE_LOCAL, true, NULL), 0);
    api_server_limits(server, API_ROLE_LOCAL)->resp_budget = 1 << 20;
    ASSERT_INT_EQ(mraw_unix(r, 0), 0);
    ids[0] = mraw_say(r, 300 << 10);
    for (int i = 1; i < 9; i++) {
        ids[i] = mraw_say(r, 100 << 10);
    }
    for (int i = 0; i < 9; i++) {
        ASSERT_INT_EQ(ids[i], i);
    }
    ASSERT(RUN_UNTIL((mraw_pump(r), handler_calls == 9 && r->closed[0]) || r->eof, 10000));
    ASSERT(!r->eof);
    ASSERT_INT_EQ(r->rst[0], NGHTTP2_ENHANCE_YOUR_CALM);
    ASSERT_INT_EQ((int)r->data[0], 0);
    for (int i = 1; i < 9; i++) {
        ASSERT(!r->closed[i]);
    }
    mraw_open_window(r, 1 << 20);
    ASSERT(RUN_UNTIL((mraw_pump(r), ({
                          bool all = true;
                          for (int i = 1; i < 9; i++) all = all && r->closed[i];
                          all;
                      })) || r->eof,
                     10000));
    for (int i = 1; i < 9; i++) {
        ASSERT_INT_EQ(r->grpc_status[i], API_OK);
        ASSERT(r->data[i] > 100 << 10);
    }
    ASSERT(server_still_serves());
    mraw_close(r);
    free(r);
    ASSERT(server_stop());
    ASSERT_INT_EQ(loop_teardown(), 0);
}

/* Streaming producers over the budget: one waiting between messages is
 * told by on_cancel, one sending without pause by api_call_send failing;
 * neither goes on queueing. */
TEST(response_budget_cancels_producers)
{
    struct mraw *r = calloc(1, sizeof *r);
    loop_setup();
    ASSERT_INT_EQ(server_start(0, API_ROLE_LOCAL, true, NULL), 0);
    api_server_limits(server, API_ROLE_LOCAL)->resp_budget = 256 << 10;
    ASSERT_INT_EQ(mraw_unix(r, 0), 0);
    /* ~180 KiB, then a pause long enough for b's 100 KiB to arrive on a
     * loaded machine: a second burst would reset a through api_call_send
     * (its handler ends, so on_cancel is never called). */
    int a = mraw_count(r, 1000000, 2000, 20000);
    ASSERT(RUN_UNTIL((mraw_pump(r), count_sent_total >= 20000) || r->eof, 10000));
    int b = mraw_say(r, 100 << 10); /* over the budget: a holds the most */
    ASSERT(RUN_UNTIL((mraw_pump(r), r->closed[a] && cancels_seen > 0) || r->eof, 10000));
    ASSERT_INT_EQ(r->rst[a], NGHTTP2_ENHANCE_YOUR_CALM);
    ASSERT_INT_EQ(cancels_seen, 1);
    ASSERT(!r->closed[b]);
    int c = mraw_count(r, 1000000, 0, 0); /* without pause: resets itself */
    ASSERT(RUN_UNTIL((mraw_pump(r), r->closed[c] && counts_ended == 2) || r->eof, 10000));
    ASSERT_INT_EQ(r->rst[c], NGHTTP2_ENHANCE_YOUR_CALM);
    ASSERT_INT_EQ(counts_failed, 2);
    ASSERT(count_sent_total < 100000);
    ASSERT(!r->closed[b]);
    mraw_open_window(r, 1 << 20);
    ASSERT(RUN_UNTIL((mraw_pump(r), r->closed[b]) || r->eof, 10000));
    ASSERT_INT_EQ(r->grpc_status[b], API_OK);
    ASSERT(server_still_serves());
    mraw_close(r);
    free(r);
    ASSERT(server_stop());
    ASSERT_INT_EQ(loop_teardown(), 0);
}

/* A client that grants huge windows and reads nothing: its bytes pile up
 * in the write queue, and past the budget the connection is closed. */
TEST(response_budget_closes_unread_connection)
{
    struct mraw *r = calloc(1, sizeof *r);
    loop_setup();
    ASSERT_INT_EQ(server_start(0, API_ROLE_LOCAL, true, NULL), 0);
    api_server_limits(server, API_ROLE_LOCAL)->resp_budget = 256 << 10;
    ASSERT_INT_EQ(mraw_unix(r, INT32_MAX), 0);
    int c = mraw_count(r, 2000000, 0, 0); /* ~18 MB if nothing stopped it */
    ASSERT(RUN_UNTIL((mraw_pump(r), handler_calls == 1), 5000));
    r->reading = false;
    ASSERT(RUN_UNTIL((mraw_pump(r), counts_ended == 1), 20000));
    ASSERT_INT_EQ(counts_failed, 1);
    /* Whatever reached the socket, then the end of the connection. */
    r->reading = true;
    ASSERT(RUN_UNTIL((mraw_pump(r), r->eof), 10000));
    ASSERT(!r->closed[c] || r->grpc_status[c] != API_OK);
    ASSERT(count_sent_total < 2000000);
    ASSERT(server_still_serves());
    mraw_close(r);
    free(r);
    ASSERT(server_stop());
    ASSERT_INT_EQ(loop_teardown(), 0);
}

/* A certificate holder that takes no response bytes (zero window) for the
 * idle time is closed, although it has calls. */
TEST(response_stall_closes_tls_connection)
{
    struct mraw *r = calloc(1, sizeof *r);
    ASSERT_INT_EQ(pki_setup(), 0);
    loop_setup();
    SSL_CTX *sctx = server_ctx(&pki.manager);
    ASSERT_INT_EQ(server_start(0, API_ROLE_MANAGER, true, sctx), 0);
    SSL_CTX_free(sctx);
    /* not shorter: a stall of the shared loop must not pass for idleness */
    api_server_limits(server, API_ROLE_MANAGER)->idle_ms = 1500;
    SSL_CTX *cctx = client_ctx(&pki.manager);
    ASSERT_INT_EQ(mraw_tls(r, cctx, 0), 0);
    ASSERT(RUN_UNTIL(r->up || r->eof, 5000));
    ASSERT(r->up);
    int a = mraw_say(r, 4096);
    ASSERT(RUN_UNTIL((mraw_pump(r), handler_calls == 1) || r->eof, 5000));
    ASSERT(!r->eof);
    ASSERT(RUN_UNTIL((mraw_pump(r), r->eof), 10000));
    ASSERT(!r->closed[a] || r->grpc_status[a] != API_OK);
    mraw_close(r);
    free(r);
    SSL_CTX_free(cctx);
    ASSERT(server_stop());
    ASSERT_INT_EQ(loop_teardown(), 0);
}

/* Requests that arrive together are decoded at most about a MiB a loop turn,
 * the rest in the turns after, so timers and other connections get their
 * turn in between. */
LOOP_TEST(decode_spread_over_turns)
{
    enum { N = 32, SIZE = 16 << 10, BUDGET = 64 << 10 };
    static struct result r[N];
    static uint8_t payload[SIZE];
    ASSERT_INT_EQ(server_start(0, API_ROLE_LOCAL, true, NULL), 0);
    api_server_set_decode_budget(server, BUDGET);
    uv_check_init(&loop, &turn_check);
    uv_check_start(&turn_check, turn_check_cb);
    struct api_client *c = client_unix();
    ASSERT(RUN_UNTIL(connected_flag, 3000));
    Swarmtest__EchoRequest req = SWARMTEST__ECHO_REQUEST__INIT;
    req.text = "bulk";
    req.payload.data = payload;
    req.payload.len = sizeof payload;
    for (int i = 0; i < N; i++) {
        ASSERT_INT_EQ(api_client_unary(c, &swarmtest__echo__descriptor, "Say", &req.base,
                                       10000, response_cb, &r[i]), 0);
    }
    int done = 0;
    ASSERT(RUN_UNTIL((done = 0, ({
                          for (int i = 0; i < N; i++) done += r[i].done;
                      }),
                      done == N),
                     10000));
    for (int i = 0; i < N; i++) {
        ASSERT_INT_EQ(r[i].status, API_OK);
    }
    ASSERT(max_calls_in_turn <= (BUDGET + SIZE - 1) / SIZE);

    /* Another connection's small request, sent while the first one's bulk
     * requests wait: it takes its turn, it does not queue behind them all. */
    struct api_client *c2 = client_unix();
    ASSERT(RUN_UNTIL(connected_flag, 3000));
    struct result small;
    ASSERT_INT_EQ(say(c2, "warm", 0, 10000, &small), 0);
    ASSERT(RUN_UNTIL(small.done, 10000));
    memset(r, 0, sizeof r);
    handler_calls = 0;
    small_at = 0;
    for (int i = 0; i < N; i++) {
        ASSERT_INT_EQ(api_client_unary(c, &swarmtest__echo__descriptor, "Say", &req.base,
                                       10000, response_cb, &r[i]), 0);
    }
    ASSERT(RUN_UNTIL(handler_calls > 0, 10000));
    ASSERT_INT_EQ(say(c2, "small", 0, 10000, &small), 0);
    ASSERT(RUN_UNTIL(small.done, 10000));
    ASSERT_INT_EQ(small.status, API_OK);
    ASSERT(RUN_UNTIL((done = 0, ({
                          for (int i = 0; i < N; i++) done += r[i].done;
                      }),
                      done == N),
                     10000));
    ASSERT(small_at > 0 && small_at <= N / 2);
    ASSERT(client_stop(c2));
    uv_close((uv_handle_t *)&turn_check, NULL);
    ASSERT(client_stop(c));
    ASSERT(server_stop());
}

/* The forwarded-caller header: what a manager writes, the server reads
 * back; anything else is malformed. */
TEST(forwarded_header_round_trip_and_malformed)
{
    struct api_peer in = {0}, out;
    char buf[256];
    in.role = API_ROLE_WORKER;
    snprintf(in.node_id, sizeof in.node_id, "node-wrk-1");
    snprintf(in.cluster_id, sizeof in.cluster_id, "cluster-1");
    snprintf(in.addr, sizeof in.addr, "127.0.0.9:4000");
    api_peer_format_forwarded(&in, buf, sizeof buf);
    ASSERT_STR_EQ(buf, "worker;node-wrk-1;cluster-1;127.0.0.9:4000");
    ASSERT_INT_EQ(api_peer_parse_forwarded(buf, &out), 0);
    ASSERT_INT_EQ(out.role, API_ROLE_WORKER);
    ASSERT_STR_EQ(out.node_id, "node-wrk-1");
    ASSERT_STR_EQ(out.cluster_id, "cluster-1");
    ASSERT_STR_EQ(out.addr, "127.0.0.9:4000");
    ASSERT_INT_EQ(api_peer_parse_forwarded("local;;;unix", &out), 0);
    ASSERT_INT_EQ(out.role, API_ROLE_LOCAL);
    ASSERT_INT_EQ(api_peer_parse_forwarded("anonymous;;;127.0.0.1:5", &out), 0);
    ASSERT_INT_EQ(out.role, API_ROLE_ANONYMOUS);
    static const char *const bad[] = {
        "", "garbage", "root;a;b;c", "manager;;cluster-1;1.2.3.4:5", "worker;n;;x",
        "worker;n;c", "worker;n;c;a;b", "worker;n o;c;a", "worker;n;c;a\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (api_peer_parse_forwarded(bad[i], &out) == 0) {
            FAILF("accepted \"%s\"", bad[i]);
        }
    }
}

/* A test policy in place of the store: node-mgr-1 may be demoted (worker)
 * or removed (refused). */
static int authz_state; /* 0 member, 1 demoted, 2 removed */
static int authz_calls;

static enum api_status test_authorize_cb(struct api_peer *peer, void *data, char *errmsg)
{
    authz_calls++;
    if (strcmp(peer->node_id, "node-mgr-1") != 0) {
        return API_OK;
    }
    if (authz_state == 2) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "node %s was removed", peer->node_id);
        return API_PERMISSION_DENIED;
    }
    if (authz_state == 1) {
        peer->role = API_ROLE_WORKER;
    }
    return API_OK;
}

static int say_as(struct api_client *c, const struct api_peer *origin, struct result *r)
{
    Swarmtest__EchoRequest req = SWARMTEST__ECHO_REQUEST__INIT;
    memset(r, 0, sizeof *r);
    req.text = "who";
    return api_client_unary_as(c, &swarmtest__echo__descriptor, "Say", &req.base, 3000,
                               origin, response_cb, r);
}

static int count_on(struct api_client *c, struct result *r)
{
    Swarmtest__CountRequest req = SWARMTEST__COUNT_REQUEST__INIT;
    memset(r, 0, sizeof *r);
    req.count = 1;
    return api_client_stream(c, &swarmtest__echo__descriptor, "Count", &req.base, 3000, NULL,
                             response_cb, r, NULL);
}

/* Per call, the authorizer has the last word over the certificate; a
 * forwarded caller is believed only from a manager and checked too; a
 * recheck closes the connections of a node that lost its role. */
LOOP_TEST(authorizer_forwarded_caller_and_recheck)
{
    struct result r;
    struct api_peer origin = {0};
    if (pki_setup() != 0) {
        FAILF("pki");
    }
    authz_state = 0;
    authz_calls = 0;
    SSL_CTX *sctx = server_ctx(&pki.manager);
    ASSERT_INT_EQ(server_start(0, API_ROLE_MANAGER | API_ROLE_WORKER | API_ROLE_ANONYMOUS,
                               true, sctx), 0);
    SSL_CTX_free(sctx);
    api_server_set_authorize(server, test_authorize_cb, NULL);
    SSL_CTX *mctx = client_ctx(&pki.manager);
    SSL_CTX *wctx = client_ctx(&pki.worker);
    struct api_client *mgr = client_tls(mctx, NULL);
    ASSERT(RUN_UNTIL(connected_flag, 5000));

    /* A manager, for itself and on behalf of a worker and of its socket. */
    ASSERT_INT_EQ(say_as(mgr, NULL, &r), 0);
    ASSERT(RUN_UNTIL(r.done, 3000));
    ASSERT_INT_EQ(r.status, API_OK);
    ASSERT_INT_EQ(r.role, API_ROLE_MANAGER);
    origin.role = API_ROLE_WORKER;
    snprintf(origin.node_id, sizeof origin.node_id, "node-wrk-1");
    snprintf(origin.cluster_id, sizeof origin.cluster_id, "cluster-1");
    snprintf(origin.addr, sizeof origin.addr, "127.0.0.9:1");
    ASSERT_INT_EQ(say_as(mgr, &origin, &r), 0);
    ASSERT(RUN_UNTIL(r.done, 3000));
    ASSERT_INT_EQ(r.status, API_OK);
    ASSERT_INT_EQ(r.role, API_ROLE_WORKER);
    ASSERT_STR_EQ(r.node_id, "node-wrk-1");
    memset(&origin, 0, sizeof origin);
    origin.role = API_ROLE_LOCAL;
    snprintf(origin.addr, sizeof origin.addr, "unix");
    ASSERT_INT_EQ(say_as(mgr, &origin, &r), 0);
    ASSERT(RUN_UNTIL(r.done, 3000));
    ASSERT_INT_EQ(r.role, API_ROLE_MANAGER); /* never LOCAL over TLS */
    ASSERT_STR_EQ(r.node_id, "node-mgr-1");

    /* A worker may not name anyone. */
    {
        struct api_client *w = client_tls(wctx, NULL);
        ASSERT(RUN_UNTIL(connected_flag, 5000));
        ASSERT_INT_EQ(say_as(w, &origin, &r), 0);
        ASSERT(RUN_UNTIL(r.done, 3000));
        ASSERT_INT_EQ(r.status, API_PERMISSION_DENIED);
        ASSERT(client_stop(w));
    }

    /* Demoted: a recheck closes the manager's connection; a new one is a
     * worker, and a worker may not name anyone either. */
    authz_state = 1;
    api_server_recheck(server, "node-wrk-1"); /* another node: nothing */
    for (int i = 0; i < 20; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    ASSERT(api_client_connected(mgr));
    api_server_recheck(server, "node-mgr-1");
    ASSERT(RUN_UNTIL(!api_client_connected(mgr), 5000));
    ASSERT(client_stop(mgr));
    mgr = client_tls(mctx, NULL);
    ASSERT(RUN_UNTIL(connected_flag, 5000));
    ASSERT_INT_EQ(count_on(mgr, &r), 0);
    ASSERT(RUN_UNTIL(r.done, 3000));
    ASSERT_INT_EQ(r.status, API_PERMISSION_DENIED);
    ASSERT_INT_EQ(say_as(mgr, NULL, &r), 0);
    ASSERT(RUN_UNTIL(r.done, 3000));
    ASSERT_INT_EQ(r.status, API_OK);
    ASSERT_INT_EQ(r.role, API_ROLE_WORKER);
    ASSERT_INT_EQ(say_as(mgr, &origin, &r), 0);
    ASSERT(RUN_UNTIL(r.done, 3000));
    ASSERT_INT_EQ(r.status, API_PERMISSION_DENIED);
    /* Still a worker at the next recheck: the connection stays. */
    api_server_recheck(server, NULL);
    for (int i = 0; i < 20; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    ASSERT(api_client_connected(mgr));

    /* Removed: refused with the authorizer's message, and closed. */
    authz_state = 2;
    ASSERT_INT_EQ(say_as(mgr, NULL, &r), 0);
    ASSERT(RUN_UNTIL(r.done, 3000));
    ASSERT_INT_EQ(r.status, API_PERMISSION_DENIED);
    ASSERT(strstr(r.message, "was removed") != NULL);
    api_server_recheck(server, NULL);
    ASSERT(RUN_UNTIL(!api_client_connected(mgr), 5000));
    ASSERT(client_stop(mgr));
    ASSERT(authz_calls > 0);

    SSL_CTX_free(mctx);
    SSL_CTX_free(wctx);
    ASSERT(server_stop());
}

TEST_MAIN()
