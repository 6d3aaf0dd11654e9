/* Loop tests of the dispatcher's NetworkMaps streams (netmaps.h): a real
 * RPC server on a unix socket whose NetworkMaps handler opens the stream of
 * a node the test names, a real client reading it, and an in-memory store
 * (fakemenv) whose events reach netmaps as they reach the dispatcher. Every
 * wait is bounded. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "dispatcher.pb-c.h"
#include "err.h"
#include "fakemenv.h"
#include "msgchunk.h"
#include "netmaps.h"
#include "test.h"

#define CREATE SWARM__STORE_ACTION_KIND__STORE_ACTION_CREATE
#define UPDATE SWARM__STORE_ACTION_KIND__STORE_ACTION_UPDATE
#define ST(x) SWARM__TASK_STATE__TASK_STATE_##x
#define MAXMSG 64

/* What the client received. */
struct got {
    Swarm__NetworkMapsMessage *msg[MAXMSG];
    int n;
    bool done;
    enum api_status status;
    char message[256];
};

struct fx {
    struct fakemenv f;
    struct netmaps *nm;
    struct api_server *srv;
    struct api_client *cli;
    char sock[64];
    char open_as[32]; /* the node whose stream the handler opens */
    bool connected, srv_down, cli_closed, nm_closed;
    struct got got;
    uint64_t index;
};

static void event_cb(const struct store_event *ev, void *data)
{
    netmaps_on_event(data, ev);
}

static void handler_cb(struct api_call *call, const ProtobufCMessage *msg, void *data)
{
    struct fx *x = data;
    (void)msg;
    netmaps_open(x->nm, x->open_as, call);
}

static void connect_cb(struct api_client *c, int status, const char *errmsg, void *data)
{
    struct fx *x = data;
    (void)c;
    (void)errmsg;
    x->connected = status == 0;
}

static void run_until(struct fx *x, const bool *flag)
{
    for (int i = 0; i < 2000 && !*flag; i++) {
        uv_run(&x->f.loop, UV_RUN_NOWAIT);
        usleep(200);
    }
}

/* Run the loop for a while (to see that nothing more comes). */
static void run_some(struct fx *x)
{
    for (int i = 0; i < 200; i++) {
        uv_run(&x->f.loop, UV_RUN_NOWAIT);
        usleep(200);
    }
}

static void setup(struct fx *x)
{
    char em[SWARM_ERRMSG_SIZE];
    ASSERT(fakemenv_init(&x->f) == 0);
    x->nm = netmaps_new(&x->f.loop, x->f.env.store);
    ASSERT(x->nm != NULL);
    store_set_event_cb(x->f.env.store, event_cb, x->nm);
    snprintf(x->sock, sizeof x->sock, "/tmp/test_netmaps.%d.sock", (int)getpid());
    x->srv = api_server_new(&x->f.loop, 0);
    ASSERT(x->srv != NULL);
    ASSERT_INT_EQ(api_server_register(x->srv, &swarm__dispatcher__descriptor, "NetworkMaps",
                                      API_ROLE_LOCAL, handler_cb, x),
                  0);
    ASSERT_INT_EQ(api_server_listen_unix(x->srv, x->sock, em), 0);
    x->cli = api_client_new(&x->f.loop, 0);
    ASSERT_INT_EQ(api_client_connect_unix(x->cli, x->sock, connect_cb, x), 0);
    run_until(x, &x->connected);
    ASSERT(x->connected);
    x->index = 1;
}

static void down_cb(void *data)
{
    *(bool *)data = true;
}

static void teardown(struct fx *x)
{
    for (int i = 0; i < x->got.n; i++) {
        swarm__network_maps_message__free_unpacked(x->got.msg[i], NULL);
    }
    if (x->cli != NULL) {
        api_client_close(x->cli, down_cb, &x->cli_closed);
        run_until(x, &x->cli_closed);
    }
    netmaps_close(x->nm, down_cb, &x->nm_closed);
    api_server_shutdown(x->srv, 0, down_cb, &x->srv_down);
    run_until(x, &x->srv_down);
    run_until(x, &x->nm_closed);
    unlink(x->sock);
    ASSERT_INT_EQ(fakemenv_close(&x->f), 0);
}

static void msg_cb(const ProtobufCMessage *msg, void *data)
{
    struct got *g = data;
    if (g->n < MAXMSG) {
        size_t len = protobuf_c_message_get_packed_size(msg);
        uint8_t *buf = malloc(len);
        protobuf_c_message_pack(msg, buf);
        g->msg[g->n++] = swarm__network_maps_message__unpack(NULL, len, buf);
        free(buf);
    }
}

static void done_cb(enum api_status status, const char *message, const ProtobufCMessage *resp,
                    void *data)
{
    struct got *g = data;
    (void)resp;
    g->done = true;
    g->status = status;
    snprintf(g->message, sizeof g->message, "%s", message != NULL ? message : "");
}

/* Open the stream as node `node_id`, its messages into `g`. */
static void open_stream_into(struct fx *x, const char *node_id, struct got *g)
{
    Swarm__NetworkMapsRequest req = SWARM__NETWORK_MAPS_REQUEST__INIT;
    snprintf(x->open_as, sizeof x->open_as, "%s", node_id);
    req.session_id = "s1";
    ASSERT_INT_EQ(api_client_stream(x->cli, &swarm__dispatcher__descriptor, "NetworkMaps",
                                    &req.base, 0, msg_cb, done_cb, g, NULL),
                  0);
}

static void open_stream(struct fx *x, const char *node_id)
{
    open_stream_into(x, node_id, &x->got);
}

static bool got_n(struct fx *x, int n)
{
    for (int i = 0; i < 2000 && x->got.n < n && !x->got.done; i++) {
        uv_run(&x->f.loop, UV_RUN_NOWAIT);
        usleep(200);
    }
    return x->got.n >= n;
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (d == NULL) {
        abort();
    }
    return d;
}

static Swarm__Node *node_at(const char *id, const char *addr)
{
    Swarm__Node *n = fakemenv_node(id, SWARM__NODE_STATE__NODE_STATE_READY);
    n->status->addr = xstrdup(addr);
    return n;
}

/* A task of service web on `node_id`, attached to `net` at `addr` (NULL:
 * no network), with one alias of `alias_len` bytes (0: none). */
static Swarm__Task *net_task(const char *id, unsigned slot, const char *node_id,
                             Swarm__TaskState desired, Swarm__TaskState state, const char *net,
                             const char *addr, size_t alias_len)
{
    Swarm__Task *t = calloc(1, sizeof *t);
    swarm__task__init(t);
    t->id = xstrdup(id);
    t->service_id = xstrdup("svcweb");
    t->service_name = xstrdup("web");
    t->slot = slot;
    t->node_id = xstrdup(node_id);
    t->desired_state = desired;
    t->status = calloc(1, sizeof *t->status);
    swarm__task_status__init(t->status);
    t->status->state = state;
    t->spec = calloc(1, sizeof *t->spec);
    swarm__task_spec__init(t->spec);
    if (net == NULL) {
        return t;
    }
    Swarm__NetworkAttachment *a = calloc(1, sizeof *a);
    swarm__network_attachment__init(a);
    a->network = calloc(1, sizeof *a->network);
    swarm__network__init(a->network);
    a->network->id = xstrdup(net);
    a->network->vni = 4097;
    a->addresses = calloc(1, sizeof *a->addresses);
    a->addresses[0] = xstrdup(addr);
    a->n_addresses = 1;
    t->networks = calloc(1, sizeof *t->networks);
    t->networks[0] = a;
    t->n_networks = 1;
    if (alias_len > 0) {
        Swarm__NetworkAttachmentConfig *c = calloc(1, sizeof *c);
        swarm__network_attachment_config__init(c);
        c->target = xstrdup(net);
        c->aliases = calloc(1, sizeof *c->aliases);
        c->aliases[0] = malloc(alias_len + 1);
        memset(c->aliases[0], 'a', alias_len);
        c->aliases[0][alias_len] = '\0';
        c->n_aliases = 1;
        t->spec->networks = calloc(1, sizeof *t->spec->networks);
        t->spec->networks[0] = c;
        t->spec->n_networks = 1;
    }
    return t;
}

static void apply(struct fx *x, Swarm__StoreActionKind kind, void *obj)
{
    fakemenv_apply(&x->f, ++x->index, kind, obj);
}

static const Swarm__NetworkMapsMessage *last(struct fx *x)
{
    return x->got.msg[x->got.n - 1];
}

TEST_F(complete_then_changes_of_the_nodes_networks_only, struct fx, setup, teardown)
{
    apply(f, CREATE, node_at("A", "192.0.2.1"));
    apply(f, CREATE, node_at("B", "192.0.2.2"));
    apply(f, CREATE, net_task("t1", 1, "A", ST(RUNNING), ST(RUNNING), "net1", "10.0.1.3/24", 0));
    apply(f, CREATE, net_task("t9", 9, "B", ST(RUNNING), ST(RUNNING), "net9", "10.0.9.3/24", 0));
    open_stream(f, "A");
    ASSERT(got_n(f, 1));
    const Swarm__NetworkMapsMessage *m = last(f);
    ASSERT_INT_EQ(m->type, SWARM__ASSIGNMENTS_TYPE__ASSIGNMENTS_COMPLETE);
    ASSERT(!m->more);
    ASSERT_INT_EQ(m->n_update, 1); /* net1 only: net9 is B's */
    ASSERT_INT_EQ(m->n_remove, 0);
    ASSERT_STR_EQ(m->update[0]->network->id, "net1");
    ASSERT_INT_EQ(m->update[0]->n_endpoints, 1);
    ASSERT_STR_EQ(m->update[0]->endpoints[0]->node_addr, "192.0.2.1");
    ASSERT_INT_EQ(netmaps_count(f->nm), 1);

    /* A task of B joins net1: A gets the whole new map of net1. */
    apply(f, CREATE, net_task("t2", 2, "B", ST(RUNNING), ST(RUNNING), "net1", "10.0.1.4/24", 0));
    ASSERT(got_n(f, 2));
    m = last(f);
    ASSERT_INT_EQ(m->type, SWARM__ASSIGNMENTS_TYPE__ASSIGNMENTS_INCREMENTAL);
    ASSERT_INT_EQ(m->n_update, 1);
    ASSERT_INT_EQ(m->update[0]->n_endpoints, 2);
    ASSERT_STR_EQ(m->update[0]->endpoints[1]->node_addr, "192.0.2.2");

    /* Changes that touch no network of A: nothing. */
    apply(f, CREATE, net_task("t3", 3, "A", ST(RUNNING), ST(RUNNING), NULL, NULL, 0));
    apply(f, UPDATE, net_task("t9", 9, "B", ST(RUNNING), ST(FAILED), "net9", "10.0.9.3/24", 0));
    run_some(f);
    ASSERT_INT_EQ(f->got.n, 2);

    /* B goes Down: t2 is no longer ready on A's map. */
    Swarm__Node *b = node_at("B", "192.0.2.2");
    b->status->state = SWARM__NODE_STATE__NODE_STATE_DOWN;
    apply(f, UPDATE, b);
    ASSERT(got_n(f, 3));
    m = last(f);
    ASSERT_INT_EQ(m->n_update, 1);
    ASSERT(m->update[0]->endpoints[0]->ready);
    ASSERT(!m->update[0]->endpoints[1]->ready);

    /* A's only task on net1 is stopped: A no longer needs net1. */
    apply(f, UPDATE, net_task("t1", 1, "A", ST(SHUTDOWN), ST(RUNNING), "net1", "10.0.1.3/24", 0));
    ASSERT(got_n(f, 4));
    m = last(f);
    ASSERT_INT_EQ(m->type, SWARM__ASSIGNMENTS_TYPE__ASSIGNMENTS_INCREMENTAL);
    ASSERT_INT_EQ(m->n_update, 0);
    ASSERT_INT_EQ(m->n_remove, 1);
    ASSERT_STR_EQ(m->remove[0], "net1");
    ASSERT(!f->got.done);
}

TEST_F(node_without_networks_gets_an_empty_complete_set, struct fx, setup, teardown)
{
    apply(f, CREATE, node_at("A", "192.0.2.1"));
    apply(f, CREATE, net_task("t1", 1, "A", ST(RUNNING), ST(RUNNING), NULL, NULL, 0));
    open_stream(f, "A");
    ASSERT(got_n(f, 1));
    ASSERT_INT_EQ(last(f)->type, SWARM__ASSIGNMENTS_TYPE__ASSIGNMENTS_COMPLETE);
    ASSERT_INT_EQ(last(f)->n_update, 0);
    ASSERT(!last(f)->more);
}

TEST_F(events_of_one_turn_make_one_message, struct fx, setup, teardown)
{
    char id[16], addr[32];
    apply(f, CREATE, node_at("A", "192.0.2.1"));
    apply(f, CREATE, net_task("t00", 1, "A", ST(RUNNING), ST(RUNNING), "net1", "10.0.1.2/24", 0));
    open_stream(f, "A");
    ASSERT(got_n(f, 1));
    /* Forty new tasks on net1 (and ten on net2 of nobody here), all
     * committed before the loop turns: one batch, one map of net1. */
    for (int i = 1; i <= 50; i++) {
        snprintf(id, sizeof id, "t%02d", i);
        snprintf(addr, sizeof addr, "10.0.%d.%d/24", i <= 40 ? 1 : 2, 10 + i);
        const char *net = i <= 40 ? "net1" : "net2";
        apply(f, CREATE, net_task(id, (unsigned)i + 1, "B", ST(RUNNING), ST(RUNNING), net, addr, 0));
    }
    ASSERT(got_n(f, 2));
    run_some(f);
    ASSERT_INT_EQ(f->got.n, 2);
    ASSERT_INT_EQ(last(f)->n_update, 1);
    ASSERT_INT_EQ(last(f)->update[0]->n_endpoints, 41);
}

TEST_F(large_sets_are_chunked_with_more, struct fx, setup, teardown)
{
    char id[16], net[16], addr[32];
    apply(f, CREATE, node_at("A", "192.0.2.1"));
    /* Six networks whose maps are ~300 KiB each: the complete set is more
     * than MSGCHUNK_BOUND and goes out in several messages. */
    for (int i = 0; i < 6; i++) {
        snprintf(id, sizeof id, "t%d", i);
        snprintf(net, sizeof net, "net%d", i);
        snprintf(addr, sizeof addr, "10.0.%d.2/24", i);
        apply(f, CREATE,
              net_task(id, (unsigned)i + 1, "A", ST(RUNNING), ST(RUNNING), net, addr, 300000));
    }
    open_stream(f, "A");
    size_t maps = 0;
    for (int i = 0; i < 10 && got_n(f, f->got.n + 1); i++) {
        const Swarm__NetworkMapsMessage *m = last(f);
        ASSERT_INT_EQ(m->type, SWARM__ASSIGNMENTS_TYPE__ASSIGNMENTS_COMPLETE);
        ASSERT(protobuf_c_message_get_packed_size(&m->base) <= MSGCHUNK_BOUND + 1024);
        maps += m->n_update;
        if (!m->more) {
            break;
        }
    }
    ASSERT(f->got.n >= 2);
    ASSERT(!last(f)->more);
    ASSERT_INT_EQ(maps, 6);
}

TEST_F(session_end_ends_the_stream, struct fx, setup, teardown)
{
    apply(f, CREATE, node_at("A", "192.0.2.1"));
    open_stream(f, "A");
    ASSERT(got_n(f, 1));
    netmaps_end(f->nm, "A", API_UNAVAILABLE, "heartbeat timeout");
    run_until(f, &f->got.done);
    ASSERT(f->got.done);
    ASSERT_INT_EQ(f->got.status, API_UNAVAILABLE);
    ASSERT(strstr(f->got.message, "heartbeat timeout") != NULL);
    ASSERT_INT_EQ(netmaps_count(f->nm), 0);
    /* Nobody listens: events cost nothing and send nothing. */
    apply(f, CREATE, net_task("t1", 1, "A", ST(RUNNING), ST(RUNNING), "net1", "10.0.1.3/24", 0));
    run_some(f);
    ASSERT_INT_EQ(f->got.n, 1);
}

TEST_F(a_new_stream_replaces_the_old, struct fx, setup, teardown)
{
    static struct got first;
    apply(f, CREATE, node_at("A", "192.0.2.1"));
    apply(f, CREATE, net_task("t1", 1, "A", ST(RUNNING), ST(RUNNING), "net1", "10.0.1.3/24", 0));
    open_stream_into(f, "A", &first);
    for (int i = 0; i < 2000 && first.n < 1; i++) {
        uv_run(&f->f.loop, UV_RUN_NOWAIT);
        usleep(200);
    }
    ASSERT_INT_EQ(first.n, 1);
    open_stream(f, "A");
    ASSERT(got_n(f, 1));
    run_until(f, &first.done);
    ASSERT(first.done);
    ASSERT_INT_EQ(first.status, API_CANCELLED);
    ASSERT_INT_EQ(last(f)->type, SWARM__ASSIGNMENTS_TYPE__ASSIGNMENTS_COMPLETE);
    ASSERT_INT_EQ(last(f)->n_update, 1);
    ASSERT_INT_EQ(netmaps_count(f->nm), 1);
    for (int i = 0; i < first.n; i++) {
        swarm__network_maps_message__free_unpacked(first.msg[i], NULL);
    }
}

TEST_MAIN()
