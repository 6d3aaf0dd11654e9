/* See fakemenv.h. */
#include "fakemenv.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "pbcopy.h"
#include "store.h"

static int fake_propose(void *impl, Swarm__StoreCommand *cmd, menv_propose_cb cb, void *data)
{
    struct fakemenv *f = impl;
    if (f->propose_rv != 0) {
        return f->propose_rv;
    }
    if (f->n_pending == FAKEMENV_MAX_PENDING) {
        abort();
    }
    cmd->timestamp = f->now;
    if (f->last != NULL) {
        swarm__store_command__free_unpacked(f->last, NULL);
    }
    f->last = pb_copy(&cmd->base);
    if (f->last == NULL) {
        abort();
    }
    f->pending[f->n_pending].cb = cb;
    f->pending[f->n_pending].data = data;
    f->n_pending++;
    f->n_proposed++;
    return 0;
}

static bool fake_is_leader(void *impl)
{
    return ((struct fakemenv *)impl)->leader;
}

static void fake_leader(void *impl, raft_id *id, const char **address)
{
    (void)impl;
    *id = 0; /* the test's manager leads or knows no leader */
    *address = NULL;
}

static int64_t fake_now(void *impl)
{
    return ((struct fakemenv *)impl)->now;
}

int fakemenv_init(struct fakemenv *f)
{
    char err[SWARM_ERRMSG_SIZE];
    struct store *s = NULL;
    memset(f, 0, sizeof *f);
    if (uv_loop_init(&f->loop) != 0) {
        return -1;
    }
    if (store_open(":memory:", &s, err) != 0) {
        uv_loop_close(&f->loop);
        return -1;
    }
    f->now = 1000000;
    f->env = (struct menv){
        .loop = &f->loop,
        .store = s,
        .propose = fake_propose,
        .is_leader = fake_is_leader,
        .leader = fake_leader,
        .now = fake_now,
        .impl = f,
    };
    return 0;
}

int fakemenv_close(struct fakemenv *f)
{
    store_close(f->env.store);
    f->env.store = NULL;
    if (f->last != NULL) {
        swarm__store_command__free_unpacked(f->last, NULL);
        f->last = NULL;
    }
    uv_run(&f->loop, UV_RUN_DEFAULT);
    return uv_loop_close(&f->loop);
}

void fakemenv_apply(struct fakemenv *f, uint64_t index, Swarm__StoreActionKind kind, void *obj)
{
    Swarm__StoreCommand cmd = SWARM__STORE_COMMAND__INIT;
    Swarm__StoreAction a = SWARM__STORE_ACTION__INIT;
    Swarm__StoreAction *actions[1] = {&a};
    const ProtobufCMessageDescriptor *d = ((ProtobufCMessage *)obj)->descriptor;
    struct store_result r;
    a.kind = kind;
    if (d == &swarm__node__descriptor) {
        a.target_case = SWARM__STORE_ACTION__TARGET_NODE;
        a.node = obj;
    } else if (d == &swarm__service__descriptor) {
        a.target_case = SWARM__STORE_ACTION__TARGET_SERVICE;
        a.service = obj;
    } else if (d == &swarm__task__descriptor) {
        a.target_case = SWARM__STORE_ACTION__TARGET_TASK;
        a.task = obj;
    } else {
        a.target_case = SWARM__STORE_ACTION__TARGET_CLUSTER;
        a.cluster = obj;
    }
    cmd.timestamp = f->now;
    cmd.actions = actions;
    cmd.n_actions = 1;
    if (store_apply(f->env.store, index, &cmd, &r) != 0 || r.status != 0) {
        abort();
    }
    protobuf_c_message_free_unpacked(obj, NULL);
}

int fakemenv_complete(struct fakemenv *f, int status)
{
    struct store_result res = {.status = 0, .action_index = -1};
    menv_propose_cb cb;
    void *data;
    if (f->n_pending == 0) {
        return -1;
    }
    cb = f->pending[0].cb;
    data = f->pending[0].data;
    f->n_pending--;
    memmove(&f->pending[0], &f->pending[1], f->n_pending * sizeof f->pending[0]);
    cb(status, &res, data);
    return 0;
}

bool fakemenv_run_until(struct fakemenv *f, const bool *flag)
{
    for (int i = 0; i < 500 && !*flag; i++) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    return *flag;
}

bool fakemenv_run_until_proposed(struct fakemenv *f)
{
    for (int i = 0; i < 500 && f->n_pending == 0; i++) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    return f->n_pending > 0;
}

void fakemenv_closed_cb(void *data)
{
    ((struct fakemenv *)data)->n_closed++;
}

static void *xcalloc(size_t size)
{
    void *p = calloc(1, size);
    if (p == NULL) {
        abort();
    }
    return p;
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (d == NULL) {
        abort();
    }
    return d;
}

Swarm__Node *fakemenv_node(const char *id, Swarm__NodeState state)
{
    Swarm__Node *n = xcalloc(sizeof *n);
    swarm__node__init(n);
    n->id = xstrdup(id);
    n->spec = xcalloc(sizeof *n->spec);
    swarm__node_spec__init(n->spec);
    n->spec->availability = SWARM__NODE_AVAILABILITY__NODE_AVAILABILITY_ACTIVE;
    n->status = xcalloc(sizeof *n->status);
    swarm__node_status__init(n->status);
    n->status->state = state;
    return n;
}

Swarm__Service *fakemenv_service(const char *id, const char *name, uint64_t replicas)
{
    Swarm__Service *svc = xcalloc(sizeof *svc);
    swarm__service__init(svc);
    svc->id = xstrdup(id);
    svc->spec = xcalloc(sizeof *svc->spec);
    swarm__service_spec__init(svc->spec);
    svc->spec->annotations = xcalloc(sizeof *svc->spec->annotations);
    swarm__annotations__init(svc->spec->annotations);
    svc->spec->annotations->name = xstrdup(name);
    svc->spec->task = xcalloc(sizeof *svc->spec->task);
    swarm__task_spec__init(svc->spec->task);
    svc->spec->mode_case = SWARM__SERVICE_SPEC__MODE_REPLICATED;
    svc->spec->replicated = xcalloc(sizeof *svc->spec->replicated);
    swarm__replicated_service__init(svc->spec->replicated);
    svc->spec->replicated->replicas = replicas;
    return svc;
}

Swarm__Cluster *fakemenv_cluster(const char *id, int64_t heartbeat_period_ms)
{
    Swarm__Cluster *c = xcalloc(sizeof *c);
    swarm__cluster__init(c);
    c->id = xstrdup(id);
    c->spec = xcalloc(sizeof *c->spec);
    swarm__cluster_spec__init(c->spec);
    c->spec->annotations = xcalloc(sizeof *c->spec->annotations);
    swarm__annotations__init(c->spec->annotations);
    c->spec->annotations->name = xstrdup("default");
    c->spec->dispatcher = xcalloc(sizeof *c->spec->dispatcher);
    swarm__dispatcher_config__init(c->spec->dispatcher);
    c->spec->dispatcher->heartbeat_period_ms = heartbeat_period_ms;
    return c;
}
