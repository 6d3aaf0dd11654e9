/* Unit tests of the cluster store: apply semantics (stamping, CAS, all or
 * nothing, replay), events, reads and finds, list orders, snapshot/restore,
 * persistence, and a large batch. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "err.h"
#include "store.h"
#include "test.h"

/* ---- builders: heap messages, freed with protobuf_c_message_free_unpacked */

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (d == NULL) {
        abort();
    }
    return d;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (p == NULL) {
        abort();
    }
    return p;
}

static Swarm__Meta *meta_new(uint64_t version)
{
    Swarm__Meta *m = xmalloc(sizeof *m);
    swarm__meta__init(m);
    m->version = version;
    return m;
}

static Swarm__Annotations *annotations_new(const char *name)
{
    Swarm__Annotations *a = xmalloc(sizeof *a);
    swarm__annotations__init(a);
    if (name != NULL) {
        a->name = xstrdup(name);
    }
    return a;
}

static Swarm__Node *node_new(const char *id, const char *hostname, const char *spec_name)
{
    Swarm__Node *n = xmalloc(sizeof *n);
    swarm__node__init(n);
    n->id = xstrdup(id);
    n->description = xmalloc(sizeof *n->description);
    swarm__node_description__init(n->description);
    n->description->hostname = xstrdup(hostname);
    n->spec = xmalloc(sizeof *n->spec);
    swarm__node_spec__init(n->spec);
    n->spec->annotations = annotations_new(spec_name);
    n->status = xmalloc(sizeof *n->status);
    swarm__node_status__init(n->status);
    n->status->state = SWARM__NODE_STATE__NODE_STATE_READY;
    return n;
}

static Swarm__Service *service_new(const char *id, const char *name, uint64_t replicas)
{
    Swarm__Service *s = xmalloc(sizeof *s);
    swarm__service__init(s);
    s->id = xstrdup(id);
    s->spec = xmalloc(sizeof *s->spec);
    swarm__service_spec__init(s->spec);
    s->spec->annotations = annotations_new(name);
    s->spec->mode_case = SWARM__SERVICE_SPEC__MODE_REPLICATED;
    s->spec->replicated = xmalloc(sizeof *s->spec->replicated);
    swarm__replicated_service__init(s->spec->replicated);
    s->spec->replicated->replicas = replicas;
    return s;
}

static Swarm__Task *task_new(const char *id, const char *service_id, const char *node_id, uint64_t slot)
{
    Swarm__Task *t = xmalloc(sizeof *t);
    swarm__task__init(t);
    t->id = xstrdup(id);
    t->service_id = xstrdup(service_id);
    t->node_id = xstrdup(node_id);
    t->slot = slot;
    t->desired_state = SWARM__TASK_STATE__TASK_STATE_RUNNING;
    t->status = xmalloc(sizeof *t->status);
    swarm__task_status__init(t->status);
    t->status->state = SWARM__TASK_STATE__TASK_STATE_PENDING;
    return t;
}

static Swarm__Cluster *cluster_new(const char *id, const char *name)
{
    Swarm__Cluster *c = xmalloc(sizeof *c);
    swarm__cluster__init(c);
    c->id = xstrdup(id);
    c->spec = xmalloc(sizeof *c->spec);
    swarm__cluster_spec__init(c->spec);
    c->spec->annotations = annotations_new(name);
    return c;
}

static Swarm__Network *network_new(const char *id, const char *name, const char *subnet, uint32_t vni)
{
    Swarm__Network *n = xmalloc(sizeof *n);
    swarm__network__init(n);
    n->id = xstrdup(id);
    n->spec = xmalloc(sizeof *n->spec);
    swarm__network_spec__init(n->spec);
    n->spec->annotations = annotations_new(name);
    n->spec->driver = xstrdup("overlay");
    n->ipam = xmalloc(sizeof *n->ipam);
    swarm__ipamconfig__init(n->ipam);
    n->ipam->subnet = xstrdup(subnet);
    n->vni = vni;
    return n;
}

/* A command under construction; cmd_free releases it and every target. */
static Swarm__StoreCommand *cmd_new(int64_t timestamp)
{
    Swarm__StoreCommand *c = xmalloc(sizeof *c);
    swarm__store_command__init(c);
    c->timestamp = timestamp;
    return c;
}

static void cmd_add(Swarm__StoreCommand *c, Swarm__StoreActionKind kind, void *obj)
{
    Swarm__StoreAction *a = xmalloc(sizeof *a);
    swarm__store_action__init(a);
    a->kind = kind;
    if (obj != NULL) {
        const ProtobufCMessageDescriptor *d = ((ProtobufCMessage *)obj)->descriptor;
        if (d == &swarm__node__descriptor) {
            a->target_case = SWARM__STORE_ACTION__TARGET_NODE;
            a->node = obj;
        } else if (d == &swarm__service__descriptor) {
            a->target_case = SWARM__STORE_ACTION__TARGET_SERVICE;
            a->service = obj;
        } else if (d == &swarm__task__descriptor) {
            a->target_case = SWARM__STORE_ACTION__TARGET_TASK;
            a->task = obj;
        } else if (d == &swarm__network__descriptor) {
            a->target_case = SWARM__STORE_ACTION__TARGET_NETWORK;
            a->network = obj;
        } else {
            a->target_case = SWARM__STORE_ACTION__TARGET_CLUSTER;
            a->cluster = obj;
        }
    }
    c->actions = realloc(c->actions, (c->n_actions + 1) * sizeof *c->actions);
    if (c->actions == NULL) {
        abort();
    }
    c->actions[c->n_actions++] = a;
}

static void cmd_free(Swarm__StoreCommand *c)
{
    protobuf_c_message_free_unpacked(&c->base, NULL);
}

#define CREATE SWARM__STORE_ACTION_KIND__STORE_ACTION_CREATE
#define UPDATE SWARM__STORE_ACTION_KIND__STORE_ACTION_UPDATE
#define REMOVE SWARM__STORE_ACTION_KIND__STORE_ACTION_REMOVE

/* Apply a one-action command; returns store_apply's code, fills *r. */
static int apply1(struct store *s, uint64_t index, Swarm__StoreActionKind kind, void *obj,
                  struct store_result *r)
{
    Swarm__StoreCommand *c = cmd_new((int64_t)index * 1000);
    int rv;
    cmd_add(c, kind, obj);
    rv = store_apply(s, index, c, r);
    cmd_free(c);
    return rv;
}

static struct store *mem_store(void)
{
    struct store *s = NULL;
    char err[SWARM_ERRMSG_SIZE];
    if (store_open(":memory:", &s, err) != 0) {
        fprintf(stderr, "store_open: %s\n", err);
        abort();
    }
    return s;
}

/* Everything a store holds, as one comparable byte string. */
struct dump {
    uint8_t *buf;
    size_t len;
};

static void dump_add(struct dump *d, const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    d->buf = realloc(d->buf, d->len + n + 1);
    if (d->buf == NULL) {
        abort();
    }
    protobuf_c_message_pack(m, d->buf + d->len);
    d->len += n;
    d->buf[d->len++] = '|';
}

static struct dump store_dump(struct store *s)
{
    struct dump d = {NULL, 0};
    Swarm__Node **nodes;
    Swarm__Service **services;
    Swarm__Task **tasks;
    Swarm__Cluster **clusters;
    size_t n;
    if (store_node_list(s, &nodes, &n) != 0) {
        abort();
    }
    for (size_t i = 0; i < n; i++) {
        dump_add(&d, &nodes[i]->base);
    }
    store_node_free_list(nodes, n);
    if (store_service_list(s, &services, &n) != 0) {
        abort();
    }
    for (size_t i = 0; i < n; i++) {
        dump_add(&d, &services[i]->base);
    }
    store_service_free_list(services, n);
    if (store_task_list(s, &tasks, &n) != 0) {
        abort();
    }
    for (size_t i = 0; i < n; i++) {
        dump_add(&d, &tasks[i]->base);
    }
    store_task_free_list(tasks, n);
    if (store_cluster_list(s, &clusters, &n) != 0) {
        abort();
    }
    for (size_t i = 0; i < n; i++) {
        dump_add(&d, &clusters[i]->base);
    }
    store_cluster_free_list(clusters, n);
    return d;
}

static int dump_eq(struct dump a, struct dump b)
{
    int eq = a.len == b.len && (a.len == 0 || memcmp(a.buf, b.buf, a.len) == 0);
    free(a.buf);
    free(b.buf);
    return eq;
}

/* A store with one object of each kind, created at index 1..4. */
static void populate(struct store *s)
{
    struct store_result r;
    if (apply1(s, 1, CREATE, cluster_new("c1", "default"), &r) != 0 || r.status != 0 ||
        apply1(s, 2, CREATE, node_new("n1", "host1", NULL), &r) != 0 || r.status != 0 ||
        apply1(s, 3, CREATE, service_new("s1", "web", 2), &r) != 0 || r.status != 0 ||
        apply1(s, 4, CREATE, task_new("t1", "s1", "n1", 1), &r) != 0 || r.status != 0) {
        abort();
    }
}

/* ---- create, get, list ------------------------------------------------- */

TEST(create_get_list_each_kind)
{
    struct store *s = mem_store();
    Swarm__StoreCommand *c = cmd_new(1700000000000);
    struct store_result r;
    Swarm__Node *n = NULL;
    Swarm__Service *svc = NULL;
    Swarm__Task *t = NULL;
    Swarm__Cluster *cl = NULL;
    Swarm__Task **tasks;
    size_t count = 99;

    ASSERT_INT_EQ(store_last_index(s), 0);
    cmd_add(c, CREATE, cluster_new("c1", "default"));
    cmd_add(c, CREATE, node_new("n1", "host1", NULL));
    cmd_add(c, CREATE, service_new("s1", "web", 3));
    cmd_add(c, CREATE, task_new("t1", "s1", "n1", 1));
    ASSERT_INT_EQ(store_apply(s, 7, c, &r), 0);
    cmd_free(c);
    ASSERT_INT_EQ(r.status, 0);
    ASSERT_INT_EQ(r.action_index, -1);
    ASSERT_INT_EQ(store_last_index(s), 7);

    ASSERT_INT_EQ(store_node_get(s, "n1", &n), 0);
    ASSERT_STR_EQ(n->description->hostname, "host1");
    ASSERT_INT_EQ(n->meta->version, 7);
    ASSERT_INT_EQ(n->meta->created_at, 1700000000000);
    ASSERT_INT_EQ(n->meta->updated_at, 1700000000000);
    protobuf_c_message_free_unpacked(&n->base, NULL);

    ASSERT_INT_EQ(store_service_get(s, "s1", &svc), 0);
    ASSERT_STR_EQ(svc->spec->annotations->name, "web");
    ASSERT_INT_EQ(svc->spec->replicated->replicas, 3);
    ASSERT_INT_EQ(svc->meta->version, 7);
    protobuf_c_message_free_unpacked(&svc->base, NULL);
    ASSERT_INT_EQ(store_service_get_by_name(s, "web", &svc), 0);
    ASSERT_STR_EQ(svc->id, "s1");
    protobuf_c_message_free_unpacked(&svc->base, NULL);

    ASSERT_INT_EQ(store_task_get(s, "t1", &t), 0);
    ASSERT_STR_EQ(t->service_id, "s1");
    ASSERT_STR_EQ(t->node_id, "n1");
    ASSERT_INT_EQ(t->slot, 1);
    protobuf_c_message_free_unpacked(&t->base, NULL);

    ASSERT_INT_EQ(store_cluster_get(s, "c1", &cl), 0);
    ASSERT_STR_EQ(cl->spec->annotations->name, "default");
    protobuf_c_message_free_unpacked(&cl->base, NULL);
    ASSERT_INT_EQ(store_cluster_get_default(s, &cl), 0);
    ASSERT_STR_EQ(cl->id, "c1");
    protobuf_c_message_free_unpacked(&cl->base, NULL);

    ASSERT_INT_EQ(store_node_get(s, "nope", &n), SWARM_ENOTFOUND);
    ASSERT_INT_EQ(store_service_get_by_name(s, "nope", &svc), SWARM_ENOTFOUND);
    ASSERT_INT_EQ(store_node_count(s, &count), 0);
    ASSERT_INT_EQ(count, 1);
    ASSERT_INT_EQ(store_task_list_by_service(s, "s1", &tasks, &count), 0);
    ASSERT_INT_EQ(count, 1);
    store_task_free_list(tasks, count);
    ASSERT_INT_EQ(store_task_list_by_node(s, "n1", &tasks, &count), 0);
    ASSERT_INT_EQ(count, 1);
    store_task_free_list(tasks, count);
    ASSERT_INT_EQ(store_task_list_by_node(s, "n2", &tasks, &count), 0);
    ASSERT_INT_EQ(count, 0);
    store_task_free_list(tasks, count);
    store_close(s);
}

TEST(empty_store_reads)
{
    struct store *s = mem_store();
    Swarm__Cluster *cl;
    Swarm__Node **nodes;
    size_t n = 99;
    ASSERT_INT_EQ(store_cluster_get_default(s, &cl), SWARM_ENOTFOUND);
    ASSERT_INT_EQ(store_node_list(s, &nodes, &n), 0);
    ASSERT_INT_EQ(n, 0);
    store_node_free_list(nodes, n);
    store_close(s);
}

/* ---- update, CAS, all or nothing ---------------------------------------- */

TEST(update_cas_success)
{
    struct store *s = mem_store();
    struct store_result r;
    Swarm__Service *svc, *got;

    ASSERT_INT_EQ(apply1(s, 1, CREATE, service_new("s1", "web", 1), &r), 0);
    svc = service_new("s1", "web", 5);
    svc->meta = meta_new(1);
    ASSERT_INT_EQ(apply1(s, 2, UPDATE, svc, &r), 0);
    ASSERT_INT_EQ(r.status, 0);
    ASSERT_INT_EQ(store_service_get(s, "s1", &got), 0);
    ASSERT_INT_EQ(got->spec->replicated->replicas, 5);
    ASSERT_INT_EQ(got->meta->version, 2);
    ASSERT_INT_EQ(got->meta->created_at, 1000);
    ASSERT_INT_EQ(got->meta->updated_at, 2000);
    protobuf_c_message_free_unpacked(&got->base, NULL);

    /* Version 0: no check, last writer wins. */
    ASSERT_INT_EQ(apply1(s, 3, UPDATE, service_new("s1", "web2", 7), &r), 0);
    ASSERT_INT_EQ(r.status, 0);
    ASSERT_INT_EQ(store_service_get_by_name(s, "web2", &got), 0);
    ASSERT_INT_EQ(got->meta->version, 3);
    ASSERT_INT_EQ(got->meta->created_at, 1000);
    protobuf_c_message_free_unpacked(&got->base, NULL);
    ASSERT_INT_EQ(store_service_get_by_name(s, "web", &got), SWARM_ENOTFOUND);
    store_close(s);
}

TEST(update_version_conflict)
{
    struct store *s = mem_store();
    struct store_result r;
    Swarm__StoreCommand *c;
    Swarm__Node *n;
    struct dump before;

    populate(s);
    n = node_new("n1", "host1", "renamed");
    n->meta = meta_new(2);
    ASSERT_INT_EQ(apply1(s, 5, UPDATE, n, &r), 0);
    ASSERT_INT_EQ(r.status, 0);
    before = store_dump(s);

    /* A writer that read version 2 loses to the one that wrote version 5. */
    c = cmd_new(6000);
    cmd_add(c, UPDATE, service_new("s1", "web", 9));
    n = node_new("n1", "host1", "stale");
    n->meta = meta_new(2);
    cmd_add(c, UPDATE, n);
    ASSERT_INT_EQ(store_apply(s, 6, c, &r), 0);
    cmd_free(c);
    ASSERT_INT_EQ(r.status, SWARM_ECONFLICT);
    ASSERT_INT_EQ(r.action_index, 1);
    ASSERT_STR_EQ(r.message, "update out of sequence: node n1 has version 5, expected 2");
    ASSERT(dump_eq(before, store_dump(s)));
    /* The entry was applied (as a failure): a replay skips it. */
    ASSERT_INT_EQ(store_last_index(s), 6);
    store_close(s);
}

TEST(all_or_nothing)
{
    struct store *s = mem_store();
    struct store_result r;
    Swarm__StoreCommand *c;
    Swarm__Service *got;
    struct dump before;

    populate(s);
    before = store_dump(s);
    c = cmd_new(5000);
    cmd_add(c, CREATE, service_new("s2", "api", 1));
    cmd_add(c, CREATE, task_new("t9", "s2", "n1", 1));
    cmd_add(c, UPDATE, task_new("t-missing", "s2", "n1", 2));
    ASSERT_INT_EQ(store_apply(s, 5, c, &r), 0);
    cmd_free(c);
    ASSERT_INT_EQ(r.status, SWARM_ENOTFOUND);
    ASSERT_INT_EQ(r.action_index, 2);
    ASSERT_STR_EQ(r.message, "task t-missing not found");
    ASSERT_INT_EQ(store_service_get(s, "s2", &got), SWARM_ENOTFOUND);
    ASSERT(dump_eq(before, store_dump(s)));
    store_close(s);
}

TEST(duplicate_service_name)
{
    struct store *s = mem_store();
    struct store_result r;
    struct dump before;

    populate(s);
    before = store_dump(s);
    ASSERT_INT_EQ(apply1(s, 5, CREATE, service_new("s2", "web", 1), &r), 0);
    ASSERT_INT_EQ(r.status, SWARM_EEXIST);
    ASSERT_INT_EQ(r.action_index, 0);
    ASSERT_STR_EQ(r.message, "service name web is already in use");

    /* Renaming into a taken name fails the same way. */
    ASSERT_INT_EQ(apply1(s, 6, CREATE, service_new("s2", "api", 1), &r), 0);
    ASSERT_INT_EQ(r.status, 0);
    free(before.buf);
    before = store_dump(s);
    ASSERT_INT_EQ(apply1(s, 7, UPDATE, service_new("s2", "web", 1), &r), 0);
    ASSERT_INT_EQ(r.status, SWARM_EEXIST);
    ASSERT_STR_EQ(r.message, "service name web is already in use");

    /* A reused ID, and a second cluster name. */
    ASSERT_INT_EQ(apply1(s, 8, CREATE, service_new("s1", "other", 1), &r), 0);
    ASSERT_INT_EQ(r.status, SWARM_EEXIST);
    ASSERT_STR_EQ(r.message, "service s1 already exists");
    ASSERT_INT_EQ(apply1(s, 9, CREATE, cluster_new("c2", "default"), &r), 0);
    ASSERT_INT_EQ(r.status, SWARM_EEXIST);
    ASSERT_STR_EQ(r.message, "cluster name default is already in use");
    ASSERT(dump_eq(before, store_dump(s)));

    /* Unnamed services do not collide with each other; hostnames may repeat. */
    ASSERT_INT_EQ(apply1(s, 10, CREATE, service_new("s3", NULL, 1), &r), 0);
    ASSERT_INT_EQ(r.status, 0);
    ASSERT_INT_EQ(apply1(s, 11, CREATE, service_new("s4", NULL, 1), &r), 0);
    ASSERT_INT_EQ(r.status, 0);
    ASSERT_INT_EQ(apply1(s, 12, CREATE, node_new("n2", "host1", NULL), &r), 0);
    ASSERT_INT_EQ(r.status, 0);
    store_close(s);
}

TEST(remove)
{
    struct store *s = mem_store();
    struct store_result r;
    Swarm__Task *t;
    Swarm__Service *svc;

    populate(s);
    t = task_new("t1", "", "", 0);
    t->meta = meta_new(3);
    ASSERT_INT_EQ(apply1(s, 5, REMOVE, t, &r), 0);
    ASSERT_INT_EQ(r.status, SWARM_ECONFLICT);
    ASSERT_STR_EQ(r.message, "remove out of sequence: task t1 has version 4, expected 3");
    ASSERT_INT_EQ(store_task_get(s, "t1", &t), 0);
    protobuf_c_message_free_unpacked(&t->base, NULL);

    t = task_new("t1", "", "", 0);
    t->meta = meta_new(4);
    ASSERT_INT_EQ(apply1(s, 6, REMOVE, t, &r), 0);
    ASSERT_INT_EQ(r.status, 0);
    ASSERT_INT_EQ(store_task_get(s, "t1", &t), SWARM_ENOTFOUND);

    ASSERT_INT_EQ(apply1(s, 7, REMOVE, service_new("s1", NULL, 0), &r), 0);
    ASSERT_INT_EQ(r.status, 0);
    ASSERT_INT_EQ(store_service_get(s, "s1", &svc), SWARM_ENOTFOUND);
    /* The name is free again. */
    ASSERT_INT_EQ(apply1(s, 8, CREATE, service_new("s9", "web", 1), &r), 0);
    ASSERT_INT_EQ(r.status, 0);

    ASSERT_INT_EQ(apply1(s, 9, REMOVE, node_new("zz", "", NULL), &r), 0);
    ASSERT_INT_EQ(r.status, SWARM_ENOTFOUND);
    ASSERT_STR_EQ(r.message, "node zz not found");
    store_close(s);
}

TEST(invalid_actions)
{
    struct store *s = mem_store();
    struct store_result r;
    Swarm__StoreCommand *c = cmd_new(1);

    cmd_add(c, CREATE, node_new("n1", "h", NULL));
    cmd_add(c, CREATE, NULL);
    ASSERT_INT_EQ(store_apply(s, 1, c, &r), 0);
    cmd_free(c);
    ASSERT_INT_EQ(r.status, SWARM_EINVAL);
    ASSERT_INT_EQ(r.action_index, 1);
    ASSERT(strstr(r.message, "no target") != NULL);

    ASSERT_INT_EQ(apply1(s, 2, CREATE, service_new("", "web", 1), &r), 0);
    ASSERT_INT_EQ(r.status, SWARM_EINVAL);
    ASSERT_INT_EQ(r.action_index, 0);
    ASSERT(strstr(r.message, "empty id") != NULL);

    c = cmd_new(1);
    cmd_add(c, (Swarm__StoreActionKind)42, node_new("n1", "h", NULL));
    ASSERT_INT_EQ(store_apply(s, 3, c, &r), 0);
    cmd_free(c);
    ASSERT_INT_EQ(r.status, SWARM_EINVAL);

    {
        size_t n = 9;
        ASSERT_INT_EQ(store_node_count(s, &n), 0);
        ASSERT_INT_EQ(n, 0);
    }
    store_close(s);
}

TEST(replay_skipped)
{
    struct store *s = mem_store();
    struct store_result r;
    struct dump before;

    populate(s);
    before = store_dump(s);
    /* The same index again, and an older one: both skipped, status 0. */
    ASSERT_INT_EQ(apply1(s, 4, CREATE, service_new("s2", "api", 1), &r), 0);
    ASSERT_INT_EQ(r.status, 0);
    ASSERT_INT_EQ(apply1(s, 2, REMOVE, node_new("n1", "", NULL), &r), 0);
    ASSERT_INT_EQ(r.status, 0);
    ASSERT_INT_EQ(store_last_index(s), 4);
    ASSERT(dump_eq(before, store_dump(s)));
    store_close(s);
}

/* ---- events ------------------------------------------------------------- */

struct seen {
    int n;
    struct {
        Swarm__StoreActionKind action;
        enum store_kind kind;
        uint64_t index;
        char old_id[32], new_id[32];
        uint64_t old_version, new_version;
        int64_t new_created;
    } ev[16];
};

static void seen_cb(const struct store_event *ev, void *data)
{
    struct seen *seen = data;
    const Swarm__Node *o = (const Swarm__Node *)ev->old_obj; /* id, meta lead every kind */
    const Swarm__Node *n = (const Swarm__Node *)ev->new_obj;
    int i = seen->n++;
    if (i >= 16) {
        return;
    }
    memset(&seen->ev[i], 0, sizeof seen->ev[i]);
    seen->ev[i].action = ev->action;
    seen->ev[i].kind = ev->kind;
    seen->ev[i].index = ev->index;
    if (o != NULL) {
        snprintf(seen->ev[i].old_id, sizeof seen->ev[i].old_id, "%s", o->id);
        seen->ev[i].old_version = o->meta->version;
    }
    if (n != NULL) {
        snprintf(seen->ev[i].new_id, sizeof seen->ev[i].new_id, "%s", n->id);
        seen->ev[i].new_version = n->meta->version;
        seen->ev[i].new_created = n->meta->created_at;
    }
}

TEST(events_in_order)
{
    struct store *s = mem_store();
    struct store_result r;
    struct seen seen = {0};
    Swarm__StoreCommand *c;

    populate(s);
    store_set_event_cb(s, seen_cb, &seen);
    c = cmd_new(9000);
    cmd_add(c, CREATE, service_new("s2", "api", 1));
    cmd_add(c, UPDATE, node_new("n1", "host1", "renamed"));
    cmd_add(c, REMOVE, task_new("t1", "", "", 0));
    cmd_add(c, CREATE, task_new("t2", "s2", "n1", 1));
    ASSERT_INT_EQ(store_apply(s, 9, c, &r), 0);
    cmd_free(c);
    ASSERT_INT_EQ(r.status, 0);
    ASSERT_INT_EQ(seen.n, 4);

    ASSERT_INT_EQ(seen.ev[0].action, CREATE);
    ASSERT_INT_EQ(seen.ev[0].kind, STORE_KIND_SERVICE);
    ASSERT_STR_EQ(seen.ev[0].old_id, "");
    ASSERT_STR_EQ(seen.ev[0].new_id, "s2");
    ASSERT_INT_EQ(seen.ev[0].new_version, 9);
    ASSERT_INT_EQ(seen.ev[0].new_created, 9000);
    ASSERT_INT_EQ(seen.ev[0].index, 9);

    ASSERT_INT_EQ(seen.ev[1].action, UPDATE);
    ASSERT_INT_EQ(seen.ev[1].kind, STORE_KIND_NODE);
    ASSERT_STR_EQ(seen.ev[1].old_id, "n1");
    ASSERT_INT_EQ(seen.ev[1].old_version, 2);
    ASSERT_INT_EQ(seen.ev[1].new_version, 9);
    ASSERT_INT_EQ(seen.ev[1].new_created, 2000);

    ASSERT_INT_EQ(seen.ev[2].action, REMOVE);
    ASSERT_INT_EQ(seen.ev[2].kind, STORE_KIND_TASK);
    ASSERT_STR_EQ(seen.ev[2].old_id, "t1");
    ASSERT_INT_EQ(seen.ev[2].old_version, 4);
    ASSERT_STR_EQ(seen.ev[2].new_id, "");

    ASSERT_INT_EQ(seen.ev[3].action, CREATE);
    ASSERT_STR_EQ(seen.ev[3].new_id, "t2");

    /* None for a failed command, nor for a skipped one. */
    seen.n = 0;
    c = cmd_new(10000);
    cmd_add(c, CREATE, service_new("s3", "db", 1));
    cmd_add(c, CREATE, service_new("s4", "db", 1));
    ASSERT_INT_EQ(store_apply(s, 10, c, &r), 0);
    cmd_free(c);
    ASSERT_INT_EQ(r.status, SWARM_EEXIST);
    ASSERT_INT_EQ(apply1(s, 10, CREATE, service_new("s5", "x", 1), &r), 0);
    ASSERT_INT_EQ(seen.n, 0);

    /* Cleared: nothing more. */
    store_set_event_cb(s, NULL, NULL);
    ASSERT_INT_EQ(apply1(s, 11, CREATE, service_new("s6", "y", 1), &r), 0);
    ASSERT_INT_EQ(seen.n, 0);
    store_close(s);
}

/* ---- find --------------------------------------------------------------- */

/* A task as the orchestrator or a worker would send it (the command takes
 * ownership). */
static Swarm__Task *status_task(const char *id, Swarm__TaskState desired, Swarm__TaskState state)
{
    Swarm__Task *t = task_new(id, "svc", "n1", 1);
    t->desired_state = desired;
    t->status->state = state;
    return t;
}

/* Task status reports: forward only, never clobbering the rest of the
 * task, and a report for a missing task is no error. */
TEST(task_status_reports)
{
    struct store *s = mem_store();
    struct store_result r;
    struct seen seen = {0};
    Swarm__Task *got = NULL;
    const Swarm__TaskState RUN = SWARM__TASK_STATE__TASK_STATE_RUNNING;
    const Swarm__TaskState SHUT = SWARM__TASK_STATE__TASK_STATE_SHUTDOWN;
    ASSERT_INT_EQ(apply1(s, 1, CREATE, status_task("t1", RUN, SWARM__TASK_STATE__TASK_STATE_PENDING), &r), 0);
    /* The orchestrator changes the desired state... */
    ASSERT_INT_EQ(apply1(s, 2, UPDATE, status_task("t1", SHUT, SWARM__TASK_STATE__TASK_STATE_PENDING), &r), 0);
    /* ...and a status report built from an older copy keeps it. */
    store_set_event_cb(s, seen_cb, &seen);
    ASSERT_INT_EQ(apply1(s, 3, SWARM__STORE_ACTION_KIND__STORE_ACTION_TASK_STATUS,
                         status_task("t1", RUN, RUN), &r), 0);
    ASSERT_INT_EQ(r.status, 0);
    ASSERT_INT_EQ(store_task_get(s, "t1", &got), 0);
    ASSERT_INT_EQ(got->status->state, RUN);
    ASSERT_INT_EQ(got->desired_state, SHUT);
    ASSERT_INT_EQ(got->meta->version, 3);
    swarm__task__free_unpacked(got, NULL);
    ASSERT_INT_EQ(seen.n, 1);
    ASSERT_INT_EQ(seen.ev[0].action, UPDATE);
    /* Going backwards changes nothing and fires nothing. */
    ASSERT_INT_EQ(apply1(s, 4, SWARM__STORE_ACTION_KIND__STORE_ACTION_TASK_STATUS,
                         status_task("t1", RUN, SWARM__TASK_STATE__TASK_STATE_STARTING), &r), 0);
    ASSERT_INT_EQ(r.status, 0);
    ASSERT_INT_EQ(store_task_get(s, "t1", &got), 0);
    ASSERT_INT_EQ(got->status->state, RUN);
    ASSERT_INT_EQ(got->meta->version, 3);
    swarm__task__free_unpacked(got, NULL);
    ASSERT_INT_EQ(seen.n, 1);
    /* A report for a task that is gone is not an error either. */
    ASSERT_INT_EQ(apply1(s, 5, SWARM__STORE_ACTION_KIND__STORE_ACTION_TASK_STATUS,
                         status_task("gone", RUN, RUN), &r), 0);
    ASSERT_INT_EQ(r.status, 0);
    ASSERT_INT_EQ(store_last_index(s), 5);
    store_close(s);
}

/* Counts on the index (REPLICAS, a scale-up's free slots) follow every
 * change of state, desired state and slot, per service. */
TEST(task_counts_by_state_and_slot)
{
    struct store *s = mem_store();
    struct store_result r;
    size_t n = 99;
    const Swarm__TaskState RUN = SWARM__TASK_STATE__TASK_STATE_RUNNING;
    const Swarm__TaskState SHUT = SWARM__TASK_STATE__TASK_STATE_SHUTDOWN;
    const Swarm__TaskState PEND = SWARM__TASK_STATE__TASK_STATE_PENDING;
    Swarm__Task *other = task_new("o1", "svc2", "n1", 9);
    other->status->state = RUN;
    ASSERT_INT_EQ(apply1(s, 1, CREATE, status_task("t1", RUN, RUN), &r), 0);
    ASSERT_INT_EQ(apply1(s, 2, CREATE, status_task("t2", RUN, PEND), &r), 0);
    ASSERT_INT_EQ(apply1(s, 3, CREATE, other, &r), 0);
    Swarm__Task *t3 = status_task("t3", RUN, RUN);
    t3->slot = 5;
    ASSERT_INT_EQ(apply1(s, 4, CREATE, t3, &r), 0);
    ASSERT_INT_EQ(store_task_count_by_state(s, "svc", RUN, RUN, &n), 0);
    ASSERT_INT_EQ(n, 2);
    ASSERT_INT_EQ(store_task_count_by_state(s, "svc", RUN, -1, &n), 0);
    ASSERT_INT_EQ(n, 3);
    ASSERT_INT_EQ(store_task_count_by_state(s, "svc", SHUT, -1, &n), 0);
    ASSERT_INT_EQ(n, 0);
    /* Stopped: no longer counted as running, nor as desired running. */
    ASSERT_INT_EQ(apply1(s, 5, UPDATE, status_task("t1", SHUT, RUN), &r), 0);
    ASSERT_INT_EQ(store_task_count_by_state(s, "svc", RUN, RUN, &n), 0);
    ASSERT_INT_EQ(n, 1);
    ASSERT_INT_EQ(store_task_count_by_state(s, "svc", RUN, -1, &n), 0);
    ASSERT_INT_EQ(n, 2);
    ASSERT_INT_EQ(store_task_count_by_state(s, "nope", RUN, -1, &n), 0);
    ASSERT_INT_EQ(n, 0);
    /* Slots 1, 1, 5 in svc; 9 in svc2. */
    ASSERT_INT_EQ(store_task_count_from_slot(s, "svc", 1, &n), 0);
    ASSERT_INT_EQ(n, 3);
    ASSERT_INT_EQ(store_task_count_from_slot(s, "svc", 2, &n), 0);
    ASSERT_INT_EQ(n, 1);
    ASSERT_INT_EQ(store_task_count_from_slot(s, "svc", 6, &n), 0);
    ASSERT_INT_EQ(n, 0);
    ASSERT_INT_EQ(store_task_count_from_slot(s, "svc2", 6, &n), 0);
    ASSERT_INT_EQ(n, 1);
    ASSERT_INT_EQ(store_task_count_from_slot(s, "svc", UINT64_MAX, &n), 0);
    ASSERT_INT_EQ(n, 0);
    store_close(s);
}

/* Orchestrator and scheduler patches merge into the stored task. */
TEST(task_patch_merges)
{
    struct store *s = mem_store();
    struct store_result r;
    Swarm__Task *got = NULL, *p;
    const Swarm__TaskState RUN = SWARM__TASK_STATE__TASK_STATE_RUNNING;
    const Swarm__TaskState SHUT = SWARM__TASK_STATE__TASK_STATE_SHUTDOWN;
    const Swarm__StoreActionKind PATCH = SWARM__STORE_ACTION_KIND__STORE_ACTION_TASK_PATCH;
    Swarm__Task *t = status_task("t1", RUN, SWARM__TASK_STATE__TASK_STATE_PENDING);
    free(t->node_id);
    t->node_id = xstrdup("");
    ASSERT_INT_EQ(apply1(s, 1, CREATE, t, &r), 0);
    /* The scheduler assigns a node and moves the status to assigned. */
    p = status_task("t1", 0, SWARM__TASK_STATE__TASK_STATE_ASSIGNED);
    free(p->node_id);
    p->node_id = xstrdup("n7");
    ASSERT_INT_EQ(apply1(s, 2, PATCH, p, &r), 0);
    /* The worker reports running. */
    ASSERT_INT_EQ(apply1(s, 3, SWARM__STORE_ACTION_KIND__STORE_ACTION_TASK_STATUS,
                         status_task("t1", RUN, RUN), &r), 0);
    /* A late patch with an older status and another node changes neither,
     * but its higher desired state applies. */
    p = status_task("t1", SHUT, SWARM__TASK_STATE__TASK_STATE_ASSIGNED);
    free(p->node_id);
    p->node_id = xstrdup("n9");
    ASSERT_INT_EQ(apply1(s, 4, PATCH, p, &r), 0);
    ASSERT_INT_EQ(r.status, 0);
    ASSERT_INT_EQ(store_task_get(s, "t1", &got), 0);
    ASSERT_STR_EQ(got->node_id, "n7");
    ASSERT_INT_EQ(got->status->state, RUN);
    ASSERT_INT_EQ(got->desired_state, SHUT);
    swarm__task__free_unpacked(got, NULL);
    /* A lower desired state never goes back. */
    ASSERT_INT_EQ(apply1(s, 5, PATCH, status_task("t1", RUN, RUN), &r), 0);
    ASSERT_INT_EQ(store_task_get(s, "t1", &got), 0);
    ASSERT_INT_EQ(got->desired_state, SHUT);
    swarm__task__free_unpacked(got, NULL);
    store_close(s);
}

/* The store keeps when a task started running once its status moves on,
 * and the orchestrator's ended_on_its_own mark merges in and stays. */
TEST(task_started_at_and_ended_mark)
{
    struct store *s = mem_store();
    struct store_result r;
    Swarm__Task *got = NULL, *rep;
    const Swarm__TaskState RUN = SWARM__TASK_STATE__TASK_STATE_RUNNING;
    const Swarm__TaskState SHUT = SWARM__TASK_STATE__TASK_STATE_SHUTDOWN;
    const Swarm__TaskState FAILED = SWARM__TASK_STATE__TASK_STATE_FAILED;
    const Swarm__StoreActionKind STATUS = SWARM__STORE_ACTION_KIND__STORE_ACTION_TASK_STATUS;
    const Swarm__StoreActionKind PATCH = SWARM__STORE_ACTION_KIND__STORE_ACTION_TASK_PATCH;
    ASSERT_INT_EQ(apply1(s, 1, CREATE, status_task("t1", RUN, SWARM__TASK_STATE__TASK_STATE_PENDING), &r), 0);
    rep = status_task("t1", RUN, RUN);
    rep->status->timestamp = 500;
    ASSERT_INT_EQ(apply1(s, 2, STATUS, rep, &r), 0);
    rep = status_task("t1", RUN, FAILED);
    rep->status->timestamp = 900;
    ASSERT_INT_EQ(apply1(s, 3, STATUS, rep, &r), 0);
    ASSERT_INT_EQ(store_task_get(s, "t1", &got), 0);
    ASSERT_INT_EQ(got->status->state, FAILED);
    ASSERT_INT_EQ(got->started_at, 500);
    ASSERT(!got->ended_on_its_own);
    swarm__task__free_unpacked(got, NULL);
    rep = status_task("t1", SHUT, FAILED);
    rep->ended_on_its_own = true;
    ASSERT_INT_EQ(apply1(s, 4, PATCH, rep, &r), 0);
    /* A later patch without the mark does not clear it. */
    ASSERT_INT_EQ(apply1(s, 5, PATCH, status_task("t1", SWARM__TASK_STATE__TASK_STATE_REMOVE, FAILED), &r), 0);
    ASSERT_INT_EQ(store_task_get(s, "t1", &got), 0);
    ASSERT(got->ended_on_its_own);
    ASSERT_INT_EQ(got->desired_state, SWARM__TASK_STATE__TASK_STATE_REMOVE);
    ASSERT_INT_EQ(got->started_at, 500);
    swarm__task__free_unpacked(got, NULL);
    /* A task that never ran has no start. */
    ASSERT_INT_EQ(apply1(s, 6, CREATE, status_task("t2", RUN, SWARM__TASK_STATE__TASK_STATE_PENDING), &r), 0);
    ASSERT_INT_EQ(apply1(s, 7, STATUS, status_task("t2", RUN, SWARM__TASK_STATE__TASK_STATE_REJECTED), &r), 0);
    ASSERT_INT_EQ(store_task_get(s, "t2", &got), 0);
    ASSERT_INT_EQ(got->started_at, 0);
    swarm__task__free_unpacked(got, NULL);
    store_close(s);
}

TEST(find_by_id_prefix_name)
{
    struct store *s = mem_store();
    struct store_result r;
    Swarm__StoreCommand *c = cmd_new(1);
    Swarm__Node *n;
    Swarm__Service *svc;
    Swarm__Task *t;
    size_t nm;

    cmd_add(c, CREATE, node_new("abc111", "alpha", NULL));
    cmd_add(c, CREATE, node_new("abc222", "beta", "db-box"));
    cmd_add(c, CREATE, node_new("xyz333", "gamma", NULL));
    cmd_add(c, CREATE, node_new("xyz444", "gamma", NULL));
    cmd_add(c, CREATE, service_new("q1w2e3", "web", 1));
    cmd_add(c, CREATE, service_new("abcd", "abc", 1));
    cmd_add(c, CREATE, task_new("t0a", "q1w2e3", "abc111", 1));
    cmd_add(c, CREATE, task_new("t0b", "q1w2e3", "abc111", 2));
    ASSERT_INT_EQ(store_apply(s, 1, c, &r), 0);
    cmd_free(c);
    ASSERT_INT_EQ(r.status, 0);

    ASSERT_INT_EQ(store_node_find(s, "abc222", &n, &nm), 0);
    ASSERT_STR_EQ(n->id, "abc222");
    ASSERT_INT_EQ(nm, 1);
    protobuf_c_message_free_unpacked(&n->base, NULL);
    ASSERT_INT_EQ(store_node_find(s, "abc1", &n, &nm), 0);
    ASSERT_STR_EQ(n->id, "abc111");
    protobuf_c_message_free_unpacked(&n->base, NULL);
    ASSERT_INT_EQ(store_node_find(s, "abc", &n, &nm), SWARM_EAMBIGUOUS);
    ASSERT_INT_EQ(nm, 2);
    ASSERT_INT_EQ(store_node_find(s, "alpha", &n, &nm), 0);
    ASSERT_STR_EQ(n->id, "abc111");
    protobuf_c_message_free_unpacked(&n->base, NULL);
    /* The spec name and the hostname both resolve. */
    ASSERT_INT_EQ(store_node_find(s, "db-box", &n, NULL), 0);
    ASSERT_STR_EQ(n->id, "abc222");
    protobuf_c_message_free_unpacked(&n->base, NULL);
    ASSERT_INT_EQ(store_node_find(s, "beta", &n, NULL), 0);
    ASSERT_STR_EQ(n->id, "abc222");
    protobuf_c_message_free_unpacked(&n->base, NULL);
    ASSERT_INT_EQ(store_node_find(s, "gamma", &n, &nm), SWARM_EAMBIGUOUS);
    ASSERT_INT_EQ(nm, 2);
    ASSERT_INT_EQ(store_node_find(s, "nothing", &n, &nm), SWARM_ENOTFOUND);
    ASSERT_INT_EQ(nm, 0);
    ASSERT_INT_EQ(store_node_find(s, "", &n, &nm), SWARM_ENOTFOUND);

    ASSERT_INT_EQ(store_service_find(s, "web", &svc, &nm), 0);
    ASSERT_STR_EQ(svc->id, "q1w2e3");
    protobuf_c_message_free_unpacked(&svc->base, NULL);
    ASSERT_INT_EQ(store_service_find(s, "q1", &svc, &nm), 0);
    ASSERT_STR_EQ(svc->id, "q1w2e3");
    protobuf_c_message_free_unpacked(&svc->base, NULL);
    /* A name that is also its own ID's prefix. */
    ASSERT_INT_EQ(store_service_find(s, "abc", &svc, &nm), 0);
    ASSERT_STR_EQ(svc->id, "abcd");
    protobuf_c_message_free_unpacked(&svc->base, NULL);

    ASSERT_INT_EQ(store_task_find(s, "t0a", &t, &nm), 0);
    ASSERT_STR_EQ(t->id, "t0a");
    protobuf_c_message_free_unpacked(&t->base, NULL);
    ASSERT_INT_EQ(store_task_find(s, "t0", &t, &nm), SWARM_EAMBIGUOUS);
    ASSERT_INT_EQ(nm, 2);
    store_close(s);
}

TEST(find_name_beats_ambiguous_prefix)
{
    struct store *s = mem_store();
    struct store_result r;
    Swarm__StoreCommand *c = cmd_new(1);
    Swarm__Service *svc;
    size_t nm;

    cmd_add(c, CREATE, service_new("web1", "x", 1));
    cmd_add(c, CREATE, service_new("web2", "y", 1));
    cmd_add(c, CREATE, service_new("zzz", "web", 1));
    ASSERT_INT_EQ(store_apply(s, 1, c, &r), 0);
    cmd_free(c);
    ASSERT_INT_EQ(store_service_find(s, "web", &svc, &nm), 0);
    ASSERT_STR_EQ(svc->id, "zzz");
    protobuf_c_message_free_unpacked(&svc->base, NULL);
    store_close(s);
}

/* Docker's order: an exact name wins over another object's unique ID
 * prefix (`service inspect b` while service a's ID starts with "b"). */
TEST(find_name_beats_unique_prefix)
{
    struct store *s = mem_store();
    struct store_result r;
    Swarm__StoreCommand *c = cmd_new(1);
    Swarm__Service *svc;
    Swarm__Node *n;
    size_t nm;

    cmd_add(c, CREATE, service_new("b4qq", "a", 1));
    cmd_add(c, CREATE, service_new("x1y2", "b", 1));
    cmd_add(c, CREATE, node_new("h1aa", "h2", NULL));
    cmd_add(c, CREATE, node_new("h2bb", "other", NULL));
    ASSERT_INT_EQ(store_apply(s, 1, c, &r), 0);
    cmd_free(c);
    ASSERT_INT_EQ(store_service_find(s, "b", &svc, &nm), 0);
    ASSERT_STR_EQ(svc->id, "x1y2");
    protobuf_c_message_free_unpacked(&svc->base, NULL);
    ASSERT_INT_EQ(store_service_find(s, "b4", &svc, &nm), 0);
    ASSERT_STR_EQ(svc->id, "b4qq");
    protobuf_c_message_free_unpacked(&svc->base, NULL);
    ASSERT_INT_EQ(store_node_find(s, "h2", &n, &nm), 0);
    ASSERT_STR_EQ(n->id, "h1aa");
    protobuf_c_message_free_unpacked(&n->base, NULL);
    store_close(s);
}

/* ---- list orders -------------------------------------------------------- */

TEST(list_orders)
{
    struct store *s = mem_store();
    struct store_result r;
    Swarm__StoreCommand *c = cmd_new(5);
    Swarm__Node **nodes;
    Swarm__Service **svcs;
    Swarm__Task **tasks;
    size_t n;

    cmd_add(c, CREATE, node_new("n3", "bravo", NULL));
    cmd_add(c, CREATE, node_new("n2", "alpha", NULL));
    cmd_add(c, CREATE, node_new("n1", "bravo", NULL));
    cmd_add(c, CREATE, service_new("s1", "zeta", 1));
    cmd_add(c, CREATE, service_new("s2", "alpha", 1));
    cmd_add(c, CREATE, service_new("s3", "mid", 1));
    cmd_add(c, CREATE, task_new("t5", "sB", "n1", 2));
    cmd_add(c, CREATE, task_new("t4", "sA", "n2", 2));
    cmd_add(c, CREATE, task_new("t3", "sA", "n1", 2));
    cmd_add(c, CREATE, task_new("t2", "sA", "n1", 1));
    ASSERT_INT_EQ(store_apply(s, 1, c, &r), 0);
    cmd_free(c);
    /* Same slot and node, created later (a restart): after its elder even
     * though its ID sorts first. */
    ASSERT_INT_EQ(apply1(s, 2, CREATE, task_new("t0", "sA", "n1", 1), &r), 0);
    ASSERT_INT_EQ(r.status, 0);

    ASSERT_INT_EQ(store_node_list(s, &nodes, &n), 0);
    ASSERT_INT_EQ(n, 3);
    ASSERT_STR_EQ(nodes[0]->id, "n2");
    ASSERT_STR_EQ(nodes[1]->id, "n1");
    ASSERT_STR_EQ(nodes[2]->id, "n3");
    store_node_free_list(nodes, n);

    ASSERT_INT_EQ(store_service_list(s, &svcs, &n), 0);
    ASSERT_INT_EQ(n, 3);
    ASSERT_STR_EQ(svcs[0]->spec->annotations->name, "alpha");
    ASSERT_STR_EQ(svcs[1]->spec->annotations->name, "mid");
    ASSERT_STR_EQ(svcs[2]->spec->annotations->name, "zeta");
    store_service_free_list(svcs, n);

    ASSERT_INT_EQ(store_task_list(s, &tasks, &n), 0);
    ASSERT_INT_EQ(n, 5);
    ASSERT_STR_EQ(tasks[0]->id, "t2");
    ASSERT_STR_EQ(tasks[1]->id, "t0");
    ASSERT_STR_EQ(tasks[2]->id, "t3");
    ASSERT_STR_EQ(tasks[3]->id, "t4");
    ASSERT_STR_EQ(tasks[4]->id, "t5");
    store_task_free_list(tasks, n);

    ASSERT_INT_EQ(store_task_list_by_service(s, "sA", &tasks, &n), 0);
    ASSERT_INT_EQ(n, 4);
    ASSERT_STR_EQ(tasks[0]->id, "t2");
    ASSERT_STR_EQ(tasks[1]->id, "t0");
    ASSERT_STR_EQ(tasks[3]->id, "t4");
    store_task_free_list(tasks, n);

    ASSERT_INT_EQ(store_task_list_by_node(s, "n1", &tasks, &n), 0);
    ASSERT_INT_EQ(n, 4);
    ASSERT_STR_EQ(tasks[0]->id, "t2");
    ASSERT_STR_EQ(tasks[1]->id, "t0");
    ASSERT_STR_EQ(tasks[2]->id, "t3");
    ASSERT_STR_EQ(tasks[3]->id, "t5");
    store_task_free_list(tasks, n);
    store_close(s);
}

/* ---- files, snapshot, restore ------------------------------------------- */

struct tmpdir {
    char path[64];
};

static int tmpdir_make(struct tmpdir *d)
{
    snprintf(d->path, sizeof d->path, "/tmp/test_store.XXXXXX");
    return mkdtemp(d->path) != NULL ? 0 : -1;
}

static void tmpdir_file(const struct tmpdir *d, const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", d->path, name);
}

static void tmpdir_remove(const struct tmpdir *d)
{
    static const char *const names[] = {"a.db", "a.db-wal", "a.db-shm", "b.db", "b.db-wal", "b.db-shm"};
    char path[128];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        tmpdir_file(d, names[i], path, sizeof path);
        unlink(path);
    }
    rmdir(d->path);
}

/* A case with files: its dir made before, removed after (passed or not). */
static void tmpdir_setup(struct tmpdir *d)
{
    ASSERT(tmpdir_make(d) == 0);
}

#define TMPDIR_TEST(tname) TEST_F(tname, struct tmpdir, tmpdir_setup, tmpdir_remove)

TMPDIR_TEST(reopen_file_store)
{
    struct tmpdir *d = f;
    char path[128], err[SWARM_ERRMSG_SIZE];
    struct store *s;
    struct dump before;
    Swarm__Service *svc;

    tmpdir_file(d, "a.db", path, sizeof path);
    ASSERT_INT_EQ(store_open(path, &s, err), 0);
    populate(s);
    before = store_dump(s);
    store_close(s);

    ASSERT_INT_EQ(store_open(path, &s, err), 0);
    ASSERT_INT_EQ(store_last_index(s), 4);
    ASSERT(dump_eq(before, store_dump(s)));
    ASSERT_INT_EQ(store_service_find(s, "web", &svc, NULL), 0);
    protobuf_c_message_free_unpacked(&svc->base, NULL);
    store_close(s);
}

TMPDIR_TEST(open_rejects_foreign_file)
{
    struct tmpdir *d = f;
    char path[128], err[SWARM_ERRMSG_SIZE] = "";
    struct store *s = NULL;
    FILE *fp;

    tmpdir_file(d, "a.db", path, sizeof path);
    fp = fopen(path, "w");
    ASSERT(fp != NULL);
    fputs("this is not a database, not even close; it is just some text\n", fp);
    fclose(fp);
    ASSERT(store_open(path, &s, err) < 0);
    ASSERT(s == NULL);
    ASSERT(err[0] != '\0');
}

/* A store found not to match its raft log is emptied in place and rebuilt
 * by replaying the log: after reset it is a new store, and the same entries
 * give the same content. The durability setting is the one store.c names. */
TMPDIR_TEST(reset_then_replay_rebuilds)
{
    struct tmpdir *d = f;
    char path[128], err[SWARM_ERRMSG_SIZE];
    struct store *s, *fresh;
    struct dump before;
    sqlite3 *db;
    sqlite3_stmt *st;

    tmpdir_file(d, "a.db", path, sizeof path);
    ASSERT_INT_EQ(store_open(path, &s, err), 0);
    populate(s);
    before = store_dump(s);
    ASSERT_INT_EQ(store_reset(s, err), 0);
    ASSERT_INT_EQ(store_last_index(s), 0);
    fresh = mem_store();
    ASSERT(dump_eq(store_dump(fresh), store_dump(s)));
    store_close(fresh);
    populate(s);
    ASSERT_INT_EQ(store_last_index(s), 4);
    ASSERT(dump_eq(before, store_dump(s)));
    store_close(s);
    /* Reopened: the reset and the replay were both committed. */
    ASSERT_INT_EQ(store_open(path, &s, err), 0);
    ASSERT_INT_EQ(store_last_index(s), 4);
    fresh = mem_store();
    populate(fresh);
    ASSERT(dump_eq(store_dump(fresh), store_dump(s)));
    store_close(fresh);
    store_close(s);
    /* WAL is a property of the file: a second connection sees it. */
    ASSERT_INT_EQ(sqlite3_open(path, &db), SQLITE_OK);
    ASSERT_INT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    ASSERT_INT_EQ(sqlite3_step(st), SQLITE_ROW);
    ASSERT_STR_EQ((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

TMPDIR_TEST(snapshot_restore_file_backed)
{
    struct tmpdir *d = f;
    char a[128], b[128], err[SWARM_ERRMSG_SIZE];
    struct store *src, *dst;
    struct store_result r;
    struct dump before;
    void *img;
    size_t len;
    struct seen seen = {0};

    tmpdir_file(d, "a.db", a, sizeof a);
    tmpdir_file(d, "b.db", b, sizeof b);
    ASSERT_INT_EQ(store_open(a, &src, err), 0);
    populate(src);
    ASSERT_INT_EQ(apply1(src, 9, CREATE, node_new("n2", "host2", "named"), &r), 0);
    ASSERT_INT_EQ(store_snapshot(src, &img, &len, err), 0);
    ASSERT(len > 0);
    before = store_dump(src);
    store_close(src);

    /* The target has content of its own, all replaced. */
    ASSERT_INT_EQ(store_open(b, &dst, err), 0);
    ASSERT_INT_EQ(apply1(dst, 50, CREATE, service_new("other", "other", 1), &r), 0);
    store_set_event_cb(dst, seen_cb, &seen);
    ASSERT_INT_EQ(store_restore(dst, img, len, err), 0);
    ASSERT_INT_EQ(seen.n, 0);
    ASSERT_INT_EQ(store_last_index(dst), 9);
    {
        struct dump copy = {malloc(before.len), before.len};
        memcpy(copy.buf, before.buf, before.len);
        ASSERT(dump_eq(copy, store_dump(dst)));
    }
    /* It keeps working, and stays on disk. */
    ASSERT_INT_EQ(apply1(dst, 10, CREATE, service_new("s2", "api", 1), &r), 0);
    ASSERT_INT_EQ(r.status, 0);
    ASSERT_INT_EQ(seen.n, 1);
    store_close(dst);
    ASSERT_INT_EQ(store_open(b, &dst, err), 0);
    ASSERT_INT_EQ(store_last_index(dst), 10);
    ASSERT_INT_EQ(apply1(dst, 11, REMOVE, service_new("s2", NULL, 0), &r), 0);
    ASSERT_INT_EQ(r.status, 0);
    ASSERT(dump_eq(before, store_dump(dst)));
    store_close(dst);

    /* And into an in-memory store. */
    dst = mem_store();
    ASSERT_INT_EQ(store_restore(dst, img, len, err), 0);
    ASSERT_INT_EQ(store_last_index(dst), 9);
    store_close(dst);
    free(img);
}

TEST(restore_garbage_changes_nothing)
{
    struct store *s = mem_store();
    struct store *other = mem_store();
    char err[SWARM_ERRMSG_SIZE];
    struct dump before;
    uint8_t junk[8192];
    void *img;
    size_t len;

    populate(s);
    before = store_dump(s);
    for (size_t i = 0; i < sizeof junk; i++) {
        junk[i] = (uint8_t)(i * 131 + 7);
    }
    err[0] = '\0';
    ASSERT(store_restore(s, junk, sizeof junk, err) < 0);
    ASSERT(err[0] != '\0');
    ASSERT(store_restore(s, junk, 0, err) < 0);

    /* A real image with its pages trampled past the header. */
    ASSERT_INT_EQ(store_snapshot(other, &img, &len, err), 0);
    ASSERT(len > 4096);
    memset((uint8_t *)img + 100, 0xa5, len - 100);
    ASSERT(store_restore(s, img, len, err) < 0);
    free(img);

    /* A real image cut short. */
    ASSERT_INT_EQ(store_snapshot(other, &img, &len, err), 0);
    ASSERT(store_restore(s, img, 4096, err) < 0);
    free(img);

    /* A sound SQLite database that is not a store. */
    {
        sqlite3 *db;
        sqlite3_int64 size;
        unsigned char *raw;
        ASSERT_INT_EQ(sqlite3_open(":memory:", &db), SQLITE_OK);
        ASSERT_INT_EQ(sqlite3_exec(db, "CREATE TABLE nodes (x); INSERT INTO nodes VALUES (1);", NULL, NULL, NULL),
                      SQLITE_OK);
        raw = sqlite3_serialize(db, "main", &size, 0);
        sqlite3_close(db);
        ASSERT(raw != NULL);
        err[0] = '\0';
        ASSERT_INT_EQ(store_restore(s, raw, (size_t)size, err), SWARM_ECORRUPT);
        ASSERT(strstr(err, "not a swarm store") != NULL);
        sqlite3_free(raw);
    }

    ASSERT_INT_EQ(store_last_index(s), 4);
    ASSERT(dump_eq(before, store_dump(s)));
    store_close(other);
    store_close(s);
}

/* ---- scale -------------------------------------------------------------- */

TEST(batch_of_10000_tasks)
{
    struct store *s = mem_store();
    struct store_result r;
    Swarm__StoreCommand *c = cmd_new(42);
    struct timespec t0, t1;
    size_t n;
    Swarm__Task **tasks;
    char id[32];

    cmd_add(c, CREATE, service_new("svc", "big", 10000));
    for (int i = 0; i < 10000; i++) {
        snprintf(id, sizeof id, "task%05d", i);
        cmd_add(c, CREATE, task_new(id, "svc", i % 2 ? "n1" : "n2", (uint64_t)i + 1));
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ASSERT_INT_EQ(store_apply(s, 1, c, &r), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cmd_free(c);
    ASSERT_INT_EQ(r.status, 0);
    printf("INFO batch_of_10000_tasks: applied in %.1f ms\n",
           (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    ASSERT_INT_EQ(store_task_list_by_service(s, "svc", &tasks, &n), 0);
    ASSERT_INT_EQ(n, 10000);
    ASSERT_INT_EQ(tasks[9999]->slot, 10000);
    store_task_free_list(tasks, n);
    store_close(s);
}

static void count_cb(const struct store_event *ev, void *data)
{
    (void)ev;
    (*(int *)data)++;
}

/* The raft path: one small command per entry, file-backed, with a listener. */
TMPDIR_TEST(commands_of_one_action_file_backed)
{
    struct tmpdir *d = f;
    char path[128], err[SWARM_ERRMSG_SIZE], id[32];
    struct store *s;
    struct store_result r;
    struct timespec t0, t1;
    int events = 0;
    size_t n = 0;

    tmpdir_file(d, "a.db", path, sizeof path);
    ASSERT_INT_EQ(store_open(path, &s, err), 0);
    store_set_event_cb(s, count_cb, &events);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 10000; i++) {
        snprintf(id, sizeof id, "node%05d", i);
        if (apply1(s, (uint64_t)i + 1, CREATE, node_new(id, id, NULL), &r) != 0 || r.status != 0) {
            break;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("INFO commands_of_one_action_file_backed: 10000 commands in %.1f ms\n",
           (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    ASSERT_INT_EQ(events, 10000);
    ASSERT_INT_EQ(store_last_index(s), 10000);
    ASSERT_INT_EQ(store_node_count(s, &n), 0);
    ASSERT_INT_EQ(n, 10000);
    store_close(s);
}

/* ---- the event history (store/events.c) ---------------------------------- */

static const char *ev_attr(const Swarm__Event *e, const char *key)
{
    for (size_t i = 0; i < e->n_attributes; i++) {
        if (strcmp(e->attributes[i]->key, key) == 0) {
            return e->attributes[i]->value;
        }
    }
    return NULL;
}

static void ev_expect(const Swarm__Event *e, uint64_t index, uint32_t pos, const char *type,
                      const char *action, const char *id)
{
    ASSERT_INT_EQ(e->index, index);
    ASSERT_INT_EQ(e->position, pos);
    ASSERT_STR_EQ(e->type, type);
    ASSERT_STR_EQ(e->action, action);
    ASSERT_STR_EQ(e->actor_id, id);
}

TEST(event_history_of_changes)
{
    struct store *s = mem_store();
    struct store_result r;
    Swarm__Event **ev = NULL;
    size_t n = 0;
    Swarm__Service *svc;
    Swarm__StoreCommand *c;

    ASSERT_INT_EQ(apply1(s, 1, CREATE, service_new("s1", "web", 1), &r), 0);
    svc = service_new("s1", "web", 3);
    ASSERT_INT_EQ(apply1(s, 2, UPDATE, svc, &r), 0);
    ASSERT_INT_EQ(apply1(s, 3, CREATE, cluster_new("c1", "default"), &r), 0); /* no event */
    c = cmd_new(4000); /* two events in one entry: positions 0 and 1 */
    Swarm__Task *t1 = task_new("t1", "s1", "n1", 1), *t2 = task_new("t2", "s1", "n1", 2);
    t1->service_name = xstrdup("web");
    t2->service_name = xstrdup("web");
    cmd_add(c, CREATE, t1);
    cmd_add(c, CREATE, t2);
    ASSERT_INT_EQ(store_apply(s, 4, c, &r), 0);
    cmd_free(c);
    ASSERT_INT_EQ(apply1(s, 5, REMOVE, service_new("s1", "web", 3), &r), 0);

    ASSERT_INT_EQ(store_events_list(s, 0, 0, 0, 100, &ev, &n), 0);
    ASSERT_INT_EQ(n, 5);
    ev_expect(ev[0], 1, 0, "service", "create", "s1");
    ASSERT_INT_EQ(ev[0]->time_nano, 1000LL * 1000000);
    ASSERT_INT_EQ(ev[0]->n_attributes, 1);
    ASSERT_STR_EQ(ev_attr(ev[0], "name"), "web");
    ev_expect(ev[1], 2, 0, "service", "update", "s1");
    ASSERT_STR_EQ(ev_attr(ev[1], "replicas.old"), "1");
    ASSERT_STR_EQ(ev_attr(ev[1], "replicas.new"), "3");
    ASSERT(ev_attr(ev[1], "image.new") == NULL); /* unchanged: not listed */
    ev_expect(ev[2], 4, 0, "task", "create", "t1");
    ASSERT_STR_EQ(ev_attr(ev[2], "name"), "web.1");
    ASSERT_STR_EQ(ev_attr(ev[2], "service.id"), "s1");
    ASSERT_STR_EQ(ev_attr(ev[2], "node.id"), "n1");
    ev_expect(ev[3], 4, 1, "task", "create", "t2");
    ev_expect(ev[4], 5, 0, "service", "remove", "s1");
    ASSERT_STR_EQ(ev_attr(ev[4], "name"), "web");
    /* Attributes are sorted by key. */
    for (size_t i = 1; i < ev[2]->n_attributes; i++) {
        ASSERT(strcmp(ev[2]->attributes[i - 1]->key, ev[2]->attributes[i]->key) < 0);
    }
    store_events_free_list(ev, n);

    /* The cursor: strictly after (index, position). */
    ASSERT_INT_EQ(store_events_list(s, 4, 0, 0, 100, &ev, &n), 0);
    ASSERT_INT_EQ(n, 2);
    ev_expect(ev[0], 4, 1, "task", "create", "t2");
    store_events_free_list(ev, n);
    /* since: the entry's timestamp (ms); limit. */
    ASSERT_INT_EQ(store_events_list(s, 0, 0, 4000, 1, &ev, &n), 0);
    ASSERT_INT_EQ(n, 1);
    ev_expect(ev[0], 4, 0, "task", "create", "t1");
    store_events_free_list(ev, n);
    store_close(s);
}

TEST(event_history_failed_command_writes_none)
{
    struct store *s = mem_store();
    struct store_result r;
    Swarm__Event **ev = NULL;
    size_t n = 0;
    Swarm__StoreCommand *c = cmd_new(1000);
    ASSERT_INT_EQ(apply1(s, 1, CREATE, service_new("s1", "web", 1), &r), 0);
    /* The first action would make an event, the second breaks a rule. */
    cmd_add(c, CREATE, service_new("s2", "api", 1));
    cmd_add(c, CREATE, service_new("s3", "web", 1));
    ASSERT_INT_EQ(store_apply(s, 2, c, &r), 0);
    ASSERT_INT_EQ(r.status, SWARM_EEXIST);
    cmd_free(c);
    ASSERT_INT_EQ(store_events_list(s, 0, 0, 0, 100, &ev, &n), 0);
    ASSERT_INT_EQ(n, 1);
    ev_expect(ev[0], 1, 0, "service", "create", "s1");
    store_events_free_list(ev, n);
    store_close(s);
}

TEST(event_history_window_and_snapshot)
{
    struct store *src = mem_store(), *dst = mem_store();
    struct store_result r;
    Swarm__Event **ev = NULL, **ev2 = NULL;
    size_t n = 0, n2 = 0, len = 0;
    void *img = NULL;
    char err[SWARM_ERRMSG_SIZE], id[32];
    Swarm__StoreCommand *c = cmd_new(5000);
    for (int i = 0; i < STORE_EVENTS_WINDOW + 5; i++) {
        snprintf(id, sizeof id, "t%05d", i);
        cmd_add(c, CREATE, task_new(id, "s1", "n1", (uint64_t)i + 1));
    }
    ASSERT_INT_EQ(store_apply(src, 7, c, &r), 0);
    ASSERT_INT_EQ(r.status, 0);
    cmd_free(c);
    ASSERT_INT_EQ(store_events_list(src, 0, 0, 0, STORE_EVENTS_WINDOW * 2, &ev, &n), 0);
    ASSERT_INT_EQ(n, STORE_EVENTS_WINDOW); /* the oldest five are gone */
    ev_expect(ev[0], 7, 5, "task", "create", "t00005");
    /* A snapshot carries the history: a restored manager serves the same. */
    ASSERT_INT_EQ(store_snapshot(src, &img, &len, err), 0);
    ASSERT_INT_EQ(store_restore(dst, img, len, err), 0);
    ASSERT_INT_EQ(store_events_list(dst, 0, 0, 0, STORE_EVENTS_WINDOW * 2, &ev2, &n2), 0);
    ASSERT_INT_EQ(n2, n);
    ev_expect(ev2[n2 - 1], 7, STORE_EVENTS_WINDOW + 4, "task", "create", "t10004");
    store_events_free_list(ev, n);
    store_events_free_list(ev2, n2);
    free(img);
    store_close(src);
    store_close(dst);
}

TEST(event_describe_updates)
{
    struct store_evdesc d;
    Swarm__Node *o = node_new("n1", "host1", NULL), *nw = node_new("n1", "host1", "named");
    o->status->state = SWARM__NODE_STATE__NODE_STATE_READY;
    nw->status->state = SWARM__NODE_STATE__NODE_STATE_DOWN;
    ASSERT(store_event_describe(STORE_KIND_NODE, SWARM__STORE_ACTION_KIND__STORE_ACTION_NODE_STATUS,
                                &o->base, &nw->base, &d));
    ASSERT_STR_EQ(d.type, "node");
    ASSERT_STR_EQ(d.action, "update");
    ASSERT_STR_EQ(d.actor_id, "n1");
    ASSERT_INT_EQ(d.n_attrs, 3);
    ASSERT_STR_EQ(d.attrs[0].key, "name");
    ASSERT_STR_EQ(d.attrs[0].value, "named");
    ASSERT_STR_EQ(d.attrs[1].key, "state.new");
    ASSERT_STR_EQ(d.attrs[1].value, "down");
    ASSERT_STR_EQ(d.attrs[2].key, "state.old");
    ASSERT_STR_EQ(d.attrs[2].value, "ready");
    /* A remove names the object as it was. */
    ASSERT(store_event_describe(STORE_KIND_NODE, REMOVE, &o->base, NULL, &d));
    ASSERT_STR_EQ(d.action, "remove");
    ASSERT_INT_EQ(d.n_attrs, 1);
    ASSERT_STR_EQ(d.attrs[0].value, "host1");

    Swarm__Task *to = task_new("t1", "s1", "n1", 2), *tn = task_new("t1", "s1", "n1", 2);
    tn->status->state = SWARM__TASK_STATE__TASK_STATE_RUNNING;
    tn->desired_state = SWARM__TASK_STATE__TASK_STATE_SHUTDOWN;
    ASSERT(store_event_describe(STORE_KIND_TASK, SWARM__STORE_ACTION_KIND__STORE_ACTION_TASK_STATUS, &to->base,
                                &tn->base, &d));
    ASSERT_STR_EQ(d.type, "task");
    ASSERT_STR_EQ(d.action, "update");
    ASSERT_INT_EQ(d.n_attrs, 7);
    ASSERT_STR_EQ(d.attrs[0].key, "desiredstate.new");
    ASSERT_STR_EQ(d.attrs[0].value, "shutdown");
    ASSERT_STR_EQ(d.attrs[1].value, "running");
    ASSERT_STR_EQ(d.attrs[2].key, "name");
    ASSERT_STR_EQ(d.attrs[2].value, ".2"); /* no service name known */
    ASSERT_STR_EQ(d.attrs[5].key, "state.new");
    ASSERT_STR_EQ(d.attrs[5].value, "running");
    ASSERT_STR_EQ(d.attrs[6].value, "pending");

    Swarm__Cluster *cl = cluster_new("c1", "default");
    ASSERT(!store_event_describe(STORE_KIND_CLUSTER, CREATE, NULL, &cl->base, &d));
    protobuf_c_message_free_unpacked(&o->base, NULL);
    protobuf_c_message_free_unpacked(&nw->base, NULL);
    protobuf_c_message_free_unpacked(&to->base, NULL);
    protobuf_c_message_free_unpacked(&tn->base, NULL);
    protobuf_c_message_free_unpacked(&cl->base, NULL);
}

/* Networks: typed access, unique names, no two networks on overlapping
 * subnets or one VNI (the allocator's guarantee, held at apply), events,
 * and the table in snapshots. */
TEST(networks)
{
    struct store *s = mem_store(), *s2 = mem_store();
    struct store_result r;
    Swarm__Network *got = NULL, **list = NULL;
    Swarm__Event **evs = NULL;
    size_t n = 0, m = 0;
    void *img = NULL;
    size_t len = 0;
    char err[SWARM_ERRMSG_SIZE];

    ASSERT_INT_EQ(apply1(s, 1, CREATE, network_new("nw1", "front", "10.0.1.0/24", 4097), &r), 0);
    ASSERT_INT_EQ(r.status, 0);
    ASSERT_INT_EQ(apply1(s, 2, CREATE, network_new("nw2", "front", "10.0.2.0/24", 4098), &r), 0);
    ASSERT_INT_EQ(r.status, SWARM_EEXIST);
    ASSERT_STR_EQ(r.message, "network name front is already in use");
    ASSERT_INT_EQ(apply1(s, 3, CREATE, network_new("nw2", "back", "10.0.0.0/16", 4098), &r), 0);
    ASSERT_INT_EQ(r.status, SWARM_EEXIST);
    ASSERT_STR_EQ(r.message, "invalid pool request: Pool overlaps with other one on this address space");
    ASSERT_INT_EQ(apply1(s, 4, CREATE, network_new("nw2", "back", "10.0.2.0/24", 4097), &r), 0);
    ASSERT_INT_EQ(r.status, SWARM_EEXIST);
    ASSERT_INT_EQ(apply1(s, 5, CREATE, network_new("nw2", "back", "10.0.2.0/24", 4098), &r), 0);
    ASSERT_INT_EQ(r.status, 0);
    ASSERT_INT_EQ(store_network_get(s, "nw2", &got), 0);
    ASSERT_STR_EQ(got->ipam->subnet, "10.0.2.0/24");
    ASSERT_INT_EQ(got->meta->version, 5);
    protobuf_c_message_free_unpacked(&got->base, NULL);
    ASSERT_INT_EQ(store_network_get_by_name(s, "front", &got), 0);
    ASSERT_STR_EQ(got->id, "nw1");
    protobuf_c_message_free_unpacked(&got->base, NULL);
    ASSERT_INT_EQ(store_network_find(s, "back", &got, NULL), 0);
    ASSERT_STR_EQ(got->id, "nw2");
    protobuf_c_message_free_unpacked(&got->base, NULL);
    ASSERT_INT_EQ(store_network_find(s, "nw", &got, &m), SWARM_EAMBIGUOUS);
    ASSERT_INT_EQ(store_network_list(s, &list, &n), 0);
    ASSERT_INT_EQ(n, 2);
    ASSERT_STR_EQ(list[0]->spec->annotations->name, "back");
    store_network_free_list(list, n);

    /* Snapshot and restore carry the table. */
    ASSERT_INT_EQ(store_snapshot(s, &img, &len, err), 0);
    ASSERT_INT_EQ(store_restore(s2, img, len, err), 0);
    free(img);
    ASSERT_INT_EQ(store_network_get(s2, "nw1", &got), 0);
    protobuf_c_message_free_unpacked(&got->base, NULL);

    ASSERT_INT_EQ(apply1(s, 6, REMOVE, network_new("nw1", "front", "", 0), &r), 0);
    ASSERT_INT_EQ(r.status, 0);
    ASSERT_INT_EQ(store_network_get(s, "nw1", &got), SWARM_ENOTFOUND);

    /* `events -f type=network`: create and remove, with name and driver. */
    ASSERT_INT_EQ(store_events_list(s, 0, 0, 0, 100, &evs, &n), 0);
    ASSERT_INT_EQ(n, 3);
    ASSERT_STR_EQ(evs[0]->type, "network");
    ASSERT_STR_EQ(evs[0]->action, "create");
    ASSERT_STR_EQ(evs[0]->actor_id, "nw1");
    ASSERT_STR_EQ(evs[0]->attributes[0]->key, "name");
    ASSERT_STR_EQ(evs[0]->attributes[0]->value, "front");
    ASSERT_STR_EQ(evs[0]->attributes[1]->value, "overlay");
    ASSERT_STR_EQ(evs[2]->action, "remove");
    store_events_free_list(evs, n);
    store_close(s);
    store_close(s2);
}

/* A service on a network named `target`. */
static Swarm__Service *service_on(const char *id, const char *name, const char *target)
{
    Swarm__Service *svc = service_new(id, name, 1);
    svc->spec->task = xmalloc(sizeof *svc->spec->task);
    swarm__task_spec__init(svc->spec->task);
    svc->spec->task->n_networks = 1;
    svc->spec->task->networks = xmalloc(sizeof *svc->spec->task->networks);
    svc->spec->task->networks[0] = xmalloc(sizeof **svc->spec->task->networks);
    swarm__network_attachment_config__init(svc->spec->task->networks[0]);
    svc->spec->task->networks[0]->target = xstrdup(target);
    return svc;
}

/* A service names only networks that exist, and a network a service names
 * cannot go, whatever raced (checked at apply): a `network rm` and a
 * `service create` that both passed the API's checks cannot leave a service
 * on a missing network. An update may keep a network that went missing
 * before this rule (only added ones are checked). */
TEST(networks_named_by_services)
{
    struct store *s = mem_store();
    struct store_result r;
    Swarm__Service *got = NULL;
    ASSERT_INT_EQ(apply1(s, 1, CREATE, network_new("nw1", "front", "10.0.1.0/24", 4097), &r), 0);
    ASSERT_INT_EQ(r.status, 0);
    ASSERT_INT_EQ(apply1(s, 2, CREATE, service_on("s1", "web", "nw9"), &r), 0);
    ASSERT_INT_EQ(r.status, SWARM_ENOTFOUND);
    ASSERT_STR_EQ(r.message, "network nw9 not found");
    ASSERT_INT_EQ(store_service_get(s, "s1", &got), SWARM_ENOTFOUND);
    ASSERT_INT_EQ(apply1(s, 3, CREATE, service_on("s1", "web", "nw1"), &r), 0);
    ASSERT_INT_EQ(r.status, 0);
    ASSERT_INT_EQ(apply1(s, 4, REMOVE, network_new("nw1", "front", "", 0), &r), 0);
    ASSERT_INT_EQ(r.status, SWARM_ESTATE);
    ASSERT_STR_EQ(r.message, "network front is in use by service s1");
    /* An update adding an unknown network is refused; one keeping its
     * existing network passes. */
    ASSERT_INT_EQ(apply1(s, 5, UPDATE, service_on("s1", "web", "nw8"), &r), 0);
    ASSERT_INT_EQ(r.status, SWARM_ENOTFOUND);
    ASSERT_INT_EQ(apply1(s, 6, UPDATE, service_on("s1", "web", "nw1"), &r), 0);
    ASSERT_INT_EQ(r.status, 0);
    /* Once the service goes, so may the network. */
    ASSERT_INT_EQ(apply1(s, 7, REMOVE, service_new("s1", "web", 1), &r), 0);
    ASSERT_INT_EQ(r.status, 0);
    ASSERT_INT_EQ(apply1(s, 8, REMOVE, network_new("nw1", "front", "", 0), &r), 0);
    ASSERT_INT_EQ(r.status, 0);
    store_close(s);
}

/* Tasks still to be placed or started: new or pending and desired to run,
 * whether or not they name a node (global tasks do). */
TEST(task_list_unplaced)
{
    struct store *s = mem_store();
    struct store_result r;
    Swarm__Task **list = NULL, *t;
    size_t n = 0;
    ASSERT_INT_EQ(apply1(s, 1, CREATE, task_new("t1", "svc", "", 1), &r), 0);
    ASSERT_INT_EQ(apply1(s, 2, CREATE, task_new("t2", "svc", "n1", 0), &r), 0);
    t = task_new("t3", "svc", "n1", 2);
    t->status->state = SWARM__TASK_STATE__TASK_STATE_RUNNING;
    ASSERT_INT_EQ(apply1(s, 3, CREATE, t, &r), 0);
    t = task_new("t4", "svc", "", 3);
    t->desired_state = SWARM__TASK_STATE__TASK_STATE_SHUTDOWN;
    ASSERT_INT_EQ(apply1(s, 4, CREATE, t, &r), 0);
    ASSERT_INT_EQ(store_task_list_unplaced(s, &list, &n), 0);
    ASSERT_INT_EQ(n, 2);
    ASSERT_STR_EQ(list[0]->id, "t2"); /* slot 0 first */
    ASSERT_STR_EQ(list[1]->id, "t1");
    store_task_free_list(list, n);
    store_close(s);
}

TEST_MAIN()
