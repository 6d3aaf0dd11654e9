/* Unit tests of the scheduler's pure logic: constraints (parse, match) and
 * placement (filters, reasons, spread, preferences, failures). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "constraint.h"
#include "err.h"
#include "scheduler.h"
#include "test.h"

/* ---- fixtures: plain objects built by hand, freed with free_unpacked ---- */

static char *dup(const char *s)
{
    return strdup(s);
}

static Swarm__Node *node_new(const char *id, const char *hostname)
{
    Swarm__Node *n = calloc(1, sizeof *n);
    swarm__node__init(n);
    n->id = dup(id);
    n->spec = calloc(1, sizeof *n->spec);
    swarm__node_spec__init(n->spec);
    n->spec->annotations = calloc(1, sizeof *n->spec->annotations);
    swarm__annotations__init(n->spec->annotations);
    n->description = calloc(1, sizeof *n->description);
    swarm__node_description__init(n->description);
    n->description->hostname = dup(hostname);
    n->description->platform = calloc(1, sizeof *n->description->platform);
    swarm__platform__init(n->description->platform);
    n->description->platform->os = dup("linux");
    n->description->platform->architecture = dup("x86_64");
    n->description->resources = calloc(1, sizeof *n->description->resources);
    swarm__resources__init(n->description->resources);
    n->description->resources->nano_cpus = 2000000000;
    n->description->resources->memory_bytes = 4LL << 30;
    n->status = calloc(1, sizeof *n->status);
    swarm__node_status__init(n->status);
    n->status->state = SWARM__NODE_STATE__NODE_STATE_READY;
    return n;
}

static void node_label(Swarm__Node *n, const char *k, const char *v)
{
    Swarm__Annotations *a = n->spec->annotations;
    Swarm__Label *l = calloc(1, sizeof *l);
    swarm__label__init(l);
    l->key = dup(k);
    l->value = dup(v);
    a->labels = realloc(a->labels, (a->n_labels + 1) * sizeof *a->labels);
    a->labels[a->n_labels++] = l;
}

static Swarm__Task *task_new(const char *id, const char *service_id)
{
    Swarm__Task *t = calloc(1, sizeof *t);
    swarm__task__init(t);
    t->id = dup(id);
    t->service_id = dup(service_id);
    t->spec = calloc(1, sizeof *t->spec);
    swarm__task_spec__init(t->spec);
    t->desired_state = SWARM__TASK_STATE__TASK_STATE_RUNNING;
    t->status = calloc(1, sizeof *t->status);
    swarm__task_status__init(t->status);
    t->status->state = SWARM__TASK_STATE__TASK_STATE_PENDING;
    return t;
}

static void task_on(Swarm__Task *t, const char *node_id, Swarm__TaskState state)
{
    t->node_id = dup(node_id);
    t->status->state = state;
}

static Swarm__Placement *task_placement(Swarm__Task *t)
{
    if (t->spec->placement == NULL) {
        t->spec->placement = calloc(1, sizeof *t->spec->placement);
        swarm__placement__init(t->spec->placement);
    }
    return t->spec->placement;
}

static void task_constraint(Swarm__Task *t, const char *c)
{
    Swarm__Placement *p = task_placement(t);
    p->constraints = realloc(p->constraints, (p->n_constraints + 1) * sizeof *p->constraints);
    p->constraints[p->n_constraints++] = dup(c);
}

static void task_spread(Swarm__Task *t, const char *descriptor)
{
    Swarm__Placement *p = task_placement(t);
    Swarm__PlacementPreference *pp = calloc(1, sizeof *pp);
    swarm__placement_preference__init(pp);
    pp->spread_descriptor = dup(descriptor);
    p->preferences = realloc(p->preferences, (p->n_preferences + 1) * sizeof *p->preferences);
    p->preferences[p->n_preferences++] = pp;
}

static void task_reserve(Swarm__Task *t, int64_t cpus, int64_t mem)
{
    t->spec->resources = calloc(1, sizeof *t->spec->resources);
    swarm__resource_requirements__init(t->spec->resources);
    t->spec->resources->reservations = calloc(1, sizeof(Swarm__Resources));
    swarm__resources__init(t->spec->resources->reservations);
    t->spec->resources->reservations->nano_cpus = cpus;
    t->spec->resources->reservations->memory_bytes = mem;
}

/* A cluster of nodes and pending tasks, placed in one pass. */
struct fx {
    Swarm__Node *nodes[16];
    size_t n_nodes;
    Swarm__Task *tasks[64];
    size_t n_tasks;
    struct sched_decision out[64];
    struct sched *s;
};

static Swarm__Node *fx_node(struct fx *f, const char *id, const char *hostname)
{
    return f->nodes[f->n_nodes++] = node_new(id, hostname);
}

/* n pending tasks of `service`, sharing one spec setup via `setup`. */
static void fx_tasks(struct fx *f, const char *service, size_t n, void (*setup)(Swarm__Task *))
{
    for (size_t i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof id, "%s-t%zu", service, f->n_tasks);
        Swarm__Task *t = task_new(id, service);
        if (setup != NULL) {
            setup(t);
        }
        f->tasks[f->n_tasks++] = t;
    }
}

static int fx_place(struct fx *f, int64_t now)
{
    return sched_place(f->s, f->tasks, f->n_tasks, now, f->out);
}

static size_t fx_count_on(const struct fx *f, const char *node_id)
{
    size_t c = 0;
    for (size_t i = 0; i < f->n_tasks; i++) {
        c += f->out[i].node_id != NULL && strcmp(f->out[i].node_id, node_id) == 0;
    }
    return c;
}

static void fx_free(struct fx *f)
{
    sched_free(f->s);
    for (size_t i = 0; i < f->n_nodes; i++) {
        swarm__node__free_unpacked(f->nodes[i], NULL);
    }
    for (size_t i = 0; i < f->n_tasks; i++) {
        swarm__task__free_unpacked(f->tasks[i], NULL);
    }
    memset(f, 0, sizeof *f);
}

/* Give the nodes to a fresh scheduler. */
static void fx_start(struct fx *f)
{
    f->s = sched_new();
    sched_set_nodes(f->s, f->nodes, f->n_nodes);
}

/* ---- constraints ---------------------------------------------------------- */

TEST(constraint_parse_good)
{
    struct constraint c;
    char err[SWARM_ERRMSG_SIZE];
    ASSERT_INT_EQ(constraint_parse("node.role==manager", &c, err), 0);
    ASSERT_INT_EQ(c.key, CONSTRAINT_NODE_ROLE);
    ASSERT(c.equal);
    ASSERT_STR_EQ(c.value, "manager");
    ASSERT_INT_EQ(constraint_parse("  node.hostname != web-1  ", &c, err), 0);
    ASSERT_INT_EQ(c.key, CONSTRAINT_NODE_HOSTNAME);
    ASSERT(!c.equal);
    ASSERT_STR_EQ(c.value, "web-1");
    ASSERT_INT_EQ(constraint_parse("node.labels.Zone==eu-1", &c, err), 0);
    ASSERT_INT_EQ(c.key, CONSTRAINT_NODE_LABEL);
    ASSERT_STR_EQ(c.label, "Zone");
    ASSERT_STR_EQ(c.value, "eu-1");
    ASSERT_INT_EQ(constraint_parse("Node.Platform.OS==linux", &c, err), 0);
    ASSERT_INT_EQ(c.key, CONSTRAINT_NODE_OS);
    ASSERT_INT_EQ(constraint_parse("node.platform.arch!=arm64", &c, err), 0);
    ASSERT_INT_EQ(c.key, CONSTRAINT_NODE_ARCH);
    ASSERT_INT_EQ(constraint_parse("node.id==abc123", &c, err), 0);
    ASSERT_INT_EQ(c.key, CONSTRAINT_NODE_ID);
}

TEST(constraint_parse_bad)
{
    struct constraint c;
    char err[SWARM_ERRMSG_SIZE];
    ASSERT_INT_EQ(constraint_parse("node.foo==x", &c, err), SWARM_EINVAL);
    ASSERT_STR_EQ(err, "invalid constraint \"node.foo==x\": unknown key node.foo");
    ASSERT_INT_EQ(constraint_parse("node.role=manager", &c, err), SWARM_EINVAL);
    ASSERT_STR_EQ(err, "invalid constraint \"node.role=manager\": expected == or !=");
    ASSERT_INT_EQ(constraint_parse("engine.labels.x==y", &c, err), SWARM_EINVAL);
    ASSERT_STR_EQ(err, "invalid constraint \"engine.labels.x==y\": unknown key engine.labels.x");
    ASSERT_INT_EQ(constraint_parse("node.hostname==", &c, err), SWARM_EINVAL);
    ASSERT_STR_EQ(err, "invalid constraint \"node.hostname==\": missing value");
    ASSERT_INT_EQ(constraint_parse("==x", &c, err), SWARM_EINVAL);
    ASSERT_STR_EQ(err, "invalid constraint \"==x\": missing key");
    ASSERT_INT_EQ(constraint_parse("node.labels.==x", &c, err), SWARM_EINVAL);
    ASSERT_INT_EQ(constraint_parse("node.hostname==a==b", &c, err), SWARM_EINVAL);
    ASSERT_STR_EQ(err, "invalid constraint \"node.hostname==a==b\": invalid value \"a==b\"");
    ASSERT_INT_EQ(constraint_parse("node.role==boss", &c, err), SWARM_EINVAL);
    ASSERT_STR_EQ(err, "invalid constraint \"node.role==boss\": node.role must be manager or worker");
    ASSERT_INT_EQ(constraint_parse("", &c, err), SWARM_EINVAL);

    char *exprs[] = {"node.role==worker", "node.bogus!=1"};
    struct constraint *cs = (struct constraint *)1;
    ASSERT_INT_EQ(constraint_parse_all(exprs, 2, &cs, err), SWARM_EINVAL);
    ASSERT(cs == NULL);
    ASSERT_INT_EQ(constraint_parse_all(exprs, 1, &cs, err), 0);
    ASSERT(cs != NULL);
    free(cs);
}

static bool matches(const char *expr, const Swarm__Node *n)
{
    struct constraint c;
    char err[SWARM_ERRMSG_SIZE];
    if (constraint_parse(expr, &c, err) != 0) {
        fprintf(stderr, "unexpected parse error: %s\n", err);
        abort();
    }
    return constraint_match(&c, n);
}

TEST(constraint_match_keys)
{
    Swarm__Node *n = node_new("nodeid1", "web-1");
    n->role = SWARM__NODE_ROLE__NODE_ROLE_MANAGER;
    node_label(n, "zone", "eu");
    ASSERT(matches("node.id==nodeid1", n));
    ASSERT(!matches("node.id==nodeid", n));  /* whole IDs only */
    ASSERT(matches("node.hostname==web-1", n));
    ASSERT(matches("node.hostname==WEB-1", n));  /* values: case-insensitive, as Docker */
    ASSERT(!matches("node.hostname!=web-1", n));
    ASSERT(matches("node.role==manager", n));
    ASSERT(!matches("node.role==worker", n));
    ASSERT(matches("node.role!=worker", n));
    ASSERT(matches("node.platform.os==linux", n));
    ASSERT(matches("node.platform.arch==x86_64", n));
    ASSERT(!matches("node.platform.arch==arm64", n));
    ASSERT(matches("node.labels.zone==eu", n));
    ASSERT(!matches("node.labels.zone==us", n));
    ASSERT(matches("node.labels.zone!=us", n));
    ASSERT(!matches("node.labels.Zone==eu", n));   /* label names are exact */
    ASSERT(!matches("node.labels.disk==ssd", n));  /* missing label */
    ASSERT(matches("node.labels.disk!=ssd", n));

    struct constraint *cs;
    char err[SWARM_ERRMSG_SIZE];
    char *both[] = {"node.role==manager", "node.labels.zone==eu"};
    char *one_off[] = {"node.role==manager", "node.labels.zone==us"};
    ASSERT_INT_EQ(constraint_parse_all(both, 2, &cs, err), 0);
    ASSERT(constraint_match_all(cs, 2, n));
    free(cs);
    ASSERT_INT_EQ(constraint_parse_all(one_off, 2, &cs, err), 0);
    ASSERT(!constraint_match_all(cs, 2, n));
    free(cs);
    swarm__node__free_unpacked(n, NULL);
}

/* ---- placement -------------------------------------------------------------- */

TEST(sched_spread_evenly)
{
    struct fx f = {0};
    fx_node(&f, "n3", "c");
    fx_node(&f, "n1", "a");
    fx_node(&f, "n2", "b");
    fx_tasks(&f, "web", 9, NULL);
    fx_start(&f);
    ASSERT_INT_EQ(fx_place(&f, 0), 0);
    ASSERT_INT_EQ(fx_count_on(&f, "n1"), 3);
    ASSERT_INT_EQ(fx_count_on(&f, "n2"), 3);
    ASSERT_INT_EQ(fx_count_on(&f, "n3"), 3);
    /* Ties break by node ID: the first lands on the lowest. */
    ASSERT_STR_EQ(f.out[0].node_id, "n1");
    fx_free(&f);
}

TEST(sched_existing_tasks_count)
{
    struct fx f = {0};
    fx_node(&f, "n1", "a");
    fx_node(&f, "n2", "b");
    fx_node(&f, "n3", "c");
    fx_start(&f);
    /* n1 already runs 2 of web; a finished one on n2 does not count. */
    Swarm__Task *old[3] = {task_new("o1", "web"), task_new("o2", "web"), task_new("o3", "web")};
    task_on(old[0], "n1", SWARM__TASK_STATE__TASK_STATE_RUNNING);
    task_on(old[1], "n1", SWARM__TASK_STATE__TASK_STATE_ASSIGNED);
    task_on(old[2], "n2", SWARM__TASK_STATE__TASK_STATE_FAILED);
    for (int i = 0; i < 3; i++) {
        ASSERT_INT_EQ(sched_add_task(f.s, old[i]), 0);
        swarm__task__free_unpacked(old[i], NULL);
    }
    fx_tasks(&f, "web", 4, NULL);
    ASSERT_INT_EQ(fx_place(&f, 0), 0);
    ASSERT_INT_EQ(fx_count_on(&f, "n1"), 0);
    ASSERT_INT_EQ(fx_count_on(&f, "n2"), 2);
    ASSERT_INT_EQ(fx_count_on(&f, "n3"), 2);
    fx_free(&f);
}

TEST(sched_other_services_break_ties)
{
    struct fx f = {0};
    fx_node(&f, "n1", "a");
    fx_node(&f, "n2", "b");
    fx_start(&f);
    Swarm__Task *db = task_new("d1", "db");
    task_on(db, "n1", SWARM__TASK_STATE__TASK_STATE_RUNNING);
    ASSERT_INT_EQ(sched_add_task(f.s, db), 0);
    swarm__task__free_unpacked(db, NULL);
    fx_tasks(&f, "web", 1, NULL);
    ASSERT_INT_EQ(fx_place(&f, 0), 0);
    ASSERT_STR_EQ(f.out[0].node_id, "n2");
    fx_free(&f);
}

TEST(sched_unavailable_nodes)
{
    struct fx f = {0};
    fx_node(&f, "n1", "a")->spec->availability = SWARM__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN;
    fx_node(&f, "n2", "b")->spec->availability = SWARM__NODE_AVAILABILITY__NODE_AVAILABILITY_PAUSE;
    fx_node(&f, "n3", "c")->status->state = SWARM__NODE_STATE__NODE_STATE_DOWN;
    fx_node(&f, "n4", "d");
    fx_tasks(&f, "web", 2, NULL);
    fx_start(&f);
    ASSERT_INT_EQ(fx_place(&f, 0), 0);
    ASSERT_INT_EQ(fx_count_on(&f, "n4"), 2);
    fx_free(&f);

    fx_node(&f, "n1", "a")->spec->availability = SWARM__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN;
    fx_node(&f, "n2", "b")->spec->availability = SWARM__NODE_AVAILABILITY__NODE_AVAILABILITY_PAUSE;
    fx_node(&f, "n3", "c")->status->state = SWARM__NODE_STATE__NODE_STATE_DOWN;
    fx_tasks(&f, "web", 2, NULL);
    fx_start(&f);
    ASSERT_INT_EQ(fx_place(&f, 0), 0);
    ASSERT(f.out[0].node_id == NULL);
    ASSERT_STR_EQ(f.out[0].reason, "no suitable node (3 nodes not available for new tasks)");
    ASSERT_STR_EQ(f.out[1].reason, f.out[0].reason);
    fx_free(&f);

    fx_node(&f, "n1", "a")->status->state = SWARM__NODE_STATE__NODE_STATE_DOWN;
    fx_tasks(&f, "web", 1, NULL);
    fx_start(&f);
    ASSERT_INT_EQ(fx_place(&f, 0), 0);
    ASSERT_STR_EQ(f.out[0].reason, "no suitable node (1 node not available for new tasks)");
    fx_free(&f);

    fx_tasks(&f, "web", 1, NULL);
    fx_start(&f);
    ASSERT_INT_EQ(fx_place(&f, 0), 0);
    ASSERT_STR_EQ(f.out[0].reason, "no suitable node");
    fx_free(&f);
}

static void reserve_3cpu(Swarm__Task *t)
{
    task_reserve(t, 3000000000, 0);
}

TEST(sched_resources)
{
    struct fx f = {0};
    fx_node(&f, "n1", "a");
    fx_node(&f, "n2", "b");
    fx_tasks(&f, "big", 2, reserve_3cpu);
    fx_start(&f);
    ASSERT_INT_EQ(fx_place(&f, 0), 0);
    ASSERT(f.out[0].node_id == NULL);
    ASSERT_STR_EQ(f.out[0].reason, "no suitable node (insufficient resources on 2 nodes)");
    ASSERT_STR_EQ(f.out[1].reason, f.out[0].reason);
    sched_free(f.s);

    /* A bigger node joins: one fits, the second no longer does. */
    fx_node(&f, "n3", "c")->description->resources->nano_cpus = 4000000000;
    fx_start(&f);
    ASSERT_INT_EQ(fx_place(&f, 0), 0);
    ASSERT_STR_EQ(f.out[0].node_id, "n3");
    ASSERT(f.out[1].node_id == NULL);
    ASSERT_STR_EQ(f.out[1].reason, "no suitable node (insufficient resources on 3 nodes)");
    fx_free(&f);
}

TEST(sched_resources_held_by_existing_tasks)
{
    struct fx f = {0};
    fx_node(&f, "n1", "a");
    fx_node(&f, "n2", "b");
    fx_start(&f);
    Swarm__Task *t = task_new("o1", "db");
    task_reserve(t, 0, 3LL << 30);
    task_on(t, "n1", SWARM__TASK_STATE__TASK_STATE_RUNNING);
    ASSERT_INT_EQ(sched_add_task(f.s, t), 0);
    swarm__task__free_unpacked(t, NULL);
    for (int i = 0; i < 3; i++) {
        fx_tasks(&f, "web", 1, NULL);
        task_reserve(f.tasks[i], 0, 2LL << 30);
    }
    ASSERT_INT_EQ(fx_place(&f, 0), 0);
    ASSERT_STR_EQ(f.out[0].node_id, "n2");
    ASSERT_STR_EQ(f.out[1].node_id, "n2");
    ASSERT(f.out[2].node_id == NULL);
    ASSERT_STR_EQ(f.out[2].reason, "no suitable node (insufficient resources on 2 nodes)");
    fx_free(&f);
}

static void only_managers(Swarm__Task *t)
{
    task_constraint(t, "node.role==manager");
}

static void not_host_b(Swarm__Task *t)
{
    task_constraint(t, "node.hostname!=b");
}

static void ssd_only(Swarm__Task *t)
{
    task_constraint(t, "node.labels.disk==ssd");
}

TEST(sched_constraints)
{
    struct fx f = {0};
    fx_node(&f, "n1", "a")->role = SWARM__NODE_ROLE__NODE_ROLE_MANAGER;
    fx_node(&f, "n2", "b");
    node_label(fx_node(&f, "n3", "c"), "disk", "ssd");
    fx_tasks(&f, "mgr", 2, only_managers);
    fx_tasks(&f, "notb", 4, not_host_b);
    fx_tasks(&f, "ssd", 1, ssd_only);
    fx_start(&f);
    ASSERT_INT_EQ(fx_place(&f, 0), 0);
    ASSERT_STR_EQ(f.out[0].node_id, "n1");
    ASSERT_STR_EQ(f.out[1].node_id, "n1");
    for (int i = 2; i < 6; i++) {
        ASSERT(f.out[i].node_id != NULL && strcmp(f.out[i].node_id, "n2") != 0);
    }
    /* notb spread over n1 and n3: 2 each. */
    ASSERT_STR_EQ(f.out[6].node_id, "n3");
    fx_free(&f);

    /* Nothing matches; a down node counts as down, not as a mismatch. */
    fx_node(&f, "n1", "a");
    fx_node(&f, "n2", "b");
    fx_node(&f, "n3", "c")->status->state = SWARM__NODE_STATE__NODE_STATE_DOWN;
    fx_tasks(&f, "mgr", 1, only_managers);
    fx_start(&f);
    ASSERT_INT_EQ(fx_place(&f, 0), 0);
    ASSERT_STR_EQ(f.out[0].reason, "no suitable node (1 node not available for new tasks; "
                                   "scheduling constraints not satisfied on 2 nodes)");
    fx_free(&f);
}

TEST(sched_reason_order)
{
    struct fx f = {0};
    fx_node(&f, "n1", "a")->status->state = SWARM__NODE_STATE__NODE_STATE_DOWN;
    fx_node(&f, "n2", "b")->description->resources->nano_cpus = 1;
    fx_node(&f, "n3", "c")->description->resources->nano_cpus = 1;
    fx_node(&f, "n4", "d");
    fx_node(&f, "n5", "e");
    fx_node(&f, "n6", "f");
    fx_tasks(&f, "web", 1, NULL);
    task_reserve(f.tasks[0], 1000, 0);
    task_constraint(f.tasks[0], "node.role==manager");
    fx_start(&f);
    ASSERT_INT_EQ(fx_place(&f, 0), 0);
    ASSERT_STR_EQ(f.out[0].reason, "no suitable node (1 node not available for new tasks; "
                                   "insufficient resources on 2 nodes; "
                                   "scheduling constraints not satisfied on 3 nodes)");
    fx_free(&f);
}

static void max2(Swarm__Task *t)
{
    task_placement(t)->max_replicas = 2;
}

TEST(sched_max_replicas)
{
    struct fx f = {0};
    fx_node(&f, "n1", "a");
    fx_node(&f, "n2", "b");
    fx_tasks(&f, "web", 5, max2);
    fx_start(&f);
    ASSERT_INT_EQ(fx_place(&f, 0), 0);
    ASSERT_INT_EQ(fx_count_on(&f, "n1"), 2);
    ASSERT_INT_EQ(fx_count_on(&f, "n2"), 2);
    ASSERT(f.out[4].node_id == NULL);
    ASSERT_STR_EQ(f.out[4].reason, "no suitable node (max replicas per node limit exceed)");
    fx_free(&f);
}

static void spread_zone(Swarm__Task *t)
{
    task_spread(t, "node.labels.zone");
}

TEST(sched_placement_preference)
{
    struct fx f = {0};
    node_label(fx_node(&f, "n1", "a"), "zone", "a");
    node_label(fx_node(&f, "n2", "b"), "zone", "b");
    node_label(fx_node(&f, "n3", "c"), "zone", "b");
    node_label(fx_node(&f, "n4", "d"), "zone", "b");
    fx_tasks(&f, "web", 4, spread_zone);
    fx_start(&f);
    ASSERT_INT_EQ(fx_place(&f, 0), 0);
    ASSERT_INT_EQ(fx_count_on(&f, "n1"), 2);
    ASSERT_INT_EQ(fx_count_on(&f, "n2") + fx_count_on(&f, "n3") + fx_count_on(&f, "n4"), 2);
    ASSERT(fx_count_on(&f, "n2") <= 1 && fx_count_on(&f, "n3") <= 1);
    fx_free(&f);

    /* Nodes without the label form a group of their own. */
    node_label(fx_node(&f, "n1", "a"), "zone", "a");
    fx_node(&f, "n2", "b");
    fx_node(&f, "n3", "c");
    fx_tasks(&f, "web", 4, spread_zone);
    fx_start(&f);
    ASSERT_INT_EQ(fx_place(&f, 0), 0);
    ASSERT_INT_EQ(fx_count_on(&f, "n1"), 2);
    ASSERT_INT_EQ(fx_count_on(&f, "n2"), 1);
    ASSERT_INT_EQ(fx_count_on(&f, "n3"), 1);
    fx_free(&f);
}

TEST(sched_preference_full_zone_overflows)
{
    struct fx f = {0};
    node_label(fx_node(&f, "n1", "a"), "zone", "a");
    node_label(fx_node(&f, "n2", "b"), "zone", "b");
    fx_tasks(&f, "web", 4, spread_zone);
    for (size_t i = 0; i < f.n_tasks; i++) {
        task_placement(f.tasks[i])->max_replicas = 3;
    }
    f.nodes[0]->description->resources->memory_bytes = 1LL << 30;
    for (size_t i = 0; i < f.n_tasks; i++) {
        task_reserve(f.tasks[i], 0, 1LL << 30);
    }
    fx_start(&f);
    ASSERT_INT_EQ(fx_place(&f, 0), 0);
    ASSERT_INT_EQ(fx_count_on(&f, "n1"), 1);
    ASSERT_INT_EQ(fx_count_on(&f, "n2"), 3);
    fx_free(&f);
}

TEST(sched_recent_failure_goes_last)
{
    const int64_t now = 10LL * 60 * 1000;
    struct fx f = {0};
    fx_node(&f, "n1", "a");
    fx_node(&f, "n2", "b");
    fx_node(&f, "n3", "c");
    fx_tasks(&f, "web", 2, NULL);
    fx_start(&f);
    sched_note_failure(f.s, "web", "n1", now - 1000);
    sched_note_failure(f.s, "web", "n2", now - SCHED_FAILURE_WINDOW_MS - 1); /* too old */
    sched_note_failure(f.s, "db", "n3", now - 1000);                         /* other service */
    ASSERT_INT_EQ(fx_place(&f, now), 0);
    ASSERT_STR_EQ(f.out[0].node_id, "n2");
    ASSERT_STR_EQ(f.out[1].node_id, "n3");
    fx_free(&f);

    /* Last, not excluded. */
    fx_node(&f, "n1", "a");
    fx_tasks(&f, "web", 1, NULL);
    fx_start(&f);
    sched_note_failure(f.s, "web", "n1", now - 1000);
    ASSERT_INT_EQ(fx_place(&f, now), 0);
    ASSERT_STR_EQ(f.out[0].node_id, "n1");
    fx_free(&f);
}

TEST(sched_preassigned)
{
    struct fx f = {0};
    fx_node(&f, "n1", "a");
    fx_node(&f, "n2", "b")->spec->availability = SWARM__NODE_AVAILABILITY__NODE_AVAILABILITY_PAUSE;
    fx_node(&f, "n3", "c");
    fx_tasks(&f, "glob", 4, NULL);
    f.tasks[0]->node_id = dup("n1");
    f.tasks[1]->node_id = dup("n2");
    f.tasks[2]->node_id = dup("n3");
    f.tasks[3]->node_id = dup("gone");
    task_constraint(f.tasks[2], "node.hostname==a");
    fx_start(&f);
    ASSERT_INT_EQ(fx_place(&f, 0), 0);
    ASSERT_STR_EQ(f.out[0].node_id, "n1");
    ASSERT(f.out[1].node_id == NULL);
    ASSERT_STR_EQ(f.out[1].reason, "no suitable node (1 node not available for new tasks)");
    ASSERT(f.out[2].node_id == NULL);
    ASSERT_STR_EQ(f.out[2].reason, "no suitable node (scheduling constraints not satisfied on 1 node)");
    ASSERT(f.out[3].node_id == NULL);
    ASSERT_STR_EQ(f.out[3].reason, "no suitable node");
    fx_free(&f);
}

TEST(sched_preassigned_counts_for_others)
{
    struct fx f = {0};
    fx_node(&f, "n1", "a");
    fx_node(&f, "n2", "b");
    /* The pending one comes first in the input, but the bound one takes
     * n1 before it chooses. */
    fx_tasks(&f, "web", 2, NULL);
    f.tasks[1]->node_id = dup("n1");
    fx_start(&f);
    ASSERT_INT_EQ(fx_place(&f, 0), 0);
    ASSERT_STR_EQ(f.out[1].node_id, "n1");
    ASSERT_STR_EQ(f.out[0].node_id, "n2");
    fx_free(&f);
}

TEST(sched_host_ports)
{
    struct fx f = {0};
    Swarm__EndpointSpec ep;
    Swarm__PortConfig host, ingress;
    Swarm__PortConfig *ports[2] = {&host, &ingress};
    swarm__endpoint_spec__init(&ep);
    swarm__port_config__init(&host);
    swarm__port_config__init(&ingress);
    host.protocol = "tcp";
    host.published_port = 8080;
    host.target_port = 80;
    host.publish_mode = "host";
    ingress.protocol = "tcp";
    ingress.published_port = 9090;
    ingress.publish_mode = "ingress";
    ep.ports = ports;
    ep.n_ports = 2;

    fx_node(&f, "n1", "a");
    fx_node(&f, "n2", "b");
    fx_node(&f, "n3", "c");
    fx_start(&f);
    Swarm__Task *old = task_new("o1", "web");
    task_on(old, "n2", SWARM__TASK_STATE__TASK_STATE_RUNNING);
    ASSERT_INT_EQ(sched_add_task(f.s, old), 0);
    swarm__task__free_unpacked(old, NULL);
    ASSERT_INT_EQ(sched_set_service_ports(f.s, "web", &ep), 0);  /* after the task: fine */
    fx_tasks(&f, "web", 3, NULL);
    ASSERT_INT_EQ(fx_place(&f, 0), 0);
    ASSERT_STR_EQ(f.out[0].node_id, "n1");
    ASSERT_STR_EQ(f.out[1].node_id, "n3");
    ASSERT(f.out[2].node_id == NULL);
    ASSERT_STR_EQ(f.out[2].reason, "no suitable node (host-mode port already in use on 3 nodes)");
    fx_free(&f);
}

TEST(sched_deterministic)
{
    char first[40][16];
    for (int round = 0; round < 2; round++) {
        struct fx f = {0};
        const char *ids[] = {"n5", "n2", "n9", "n1", "n7"};
        for (int i = 0; i < 5; i++) {
            Swarm__Node *n = fx_node(&f, ids[i], ids[i]);
            node_label(n, "zone", i % 2 ? "x" : "y");
        }
        fx_tasks(&f, "a", 13, spread_zone);
        fx_tasks(&f, "b", 17, NULL);
        fx_tasks(&f, "c", 10, max2);
        fx_start(&f);
        sched_note_failure(f.s, "b", "n1", 5);
        ASSERT_INT_EQ(fx_place(&f, 10), 0);
        for (size_t i = 0; i < f.n_tasks; i++) {
            const char *got = f.out[i].node_id ? f.out[i].node_id : "-";
            if (round == 0) {
                snprintf(first[i], sizeof first[i], "%s", got);
            } else {
                ASSERT_STR_EQ(got, first[i]);
            }
        }
        fx_free(&f);
    }
}

TEST(sched_node_copy_outlives_input)
{
    struct fx f = {0};
    fx_node(&f, "n1", "a");
    fx_start(&f);
    /* The caller may free its nodes once they are handed over. */
    swarm__node__free_unpacked(f.nodes[0], NULL);
    f.n_nodes = 0;
    fx_tasks(&f, "web", 1, not_host_b);
    ASSERT_INT_EQ(fx_place(&f, 0), 0);
    ASSERT_STR_EQ(f.out[0].node_id, "n1");
    fx_free(&f);
}

TEST(sched_without_nodes)
{
    struct fx f = {0};
    f.s = sched_new();  /* sched_set_nodes never called */
    fx_tasks(&f, "web", 2, NULL);
    f.tasks[1]->node_id = dup("n1");
    ASSERT_INT_EQ(fx_place(&f, 0), 0);
    ASSERT(f.out[0].node_id == NULL);
    ASSERT_STR_EQ(f.out[0].reason, "no suitable node");
    ASSERT_STR_EQ(f.out[1].reason, "no suitable node");
    fx_free(&f);
}

/* ---- runtimes ------------------------------------------------------------- */

static void node_runtimes(Swarm__Node *n, const char *a, const char *b)
{
    Swarm__NodeDescription *d = n->description;
    d->runtimes = calloc(2, sizeof *d->runtimes);
    d->runtimes[d->n_runtimes++] = dup(a);
    if (b != NULL) {
        d->runtimes[d->n_runtimes++] = dup(b);
    }
}

static void task_container(Swarm__Task *t)
{
    t->spec->runtime = dup("container");
}

TEST(sched_runtime_offered)
{
    Swarm__Node *n = node_new("n1", "a");
    ASSERT(sched_node_offers_runtime(n->description, ""));        /* "" is process */
    ASSERT(sched_node_offers_runtime(n->description, "process")); /* older node */
    ASSERT(!sched_node_offers_runtime(n->description, "container"));
    node_runtimes(n, "process", "container");
    ASSERT(sched_node_offers_runtime(n->description, "container"));
    ASSERT(!sched_node_offers_runtime(n->description, "vm"));
    ASSERT(!sched_node_offers_runtime(NULL, "container"));
    swarm__node__free_unpacked(n, NULL);
}

TEST(sched_runtime_filter)
{
    struct fx f = {0};
    node_runtimes(fx_node(&f, "n1", "a"), "process", NULL);
    node_runtimes(fx_node(&f, "n2", "b"), "process", "container");
    fx_tasks(&f, "ctr", 3, task_container);
    fx_tasks(&f, "proc", 4, NULL);
    fx_start(&f);
    ASSERT_INT_EQ(fx_place(&f, 0), 0);
    for (size_t i = 0; i < 3; i++) {
        ASSERT_STR_EQ(f.out[i].node_id, "n2");
    }
    ASSERT_INT_EQ(fx_count_on(&f, "n1"), 2); /* the process tasks spread over both */
    fx_free(&f);

    node_runtimes(fx_node(&f, "n1", "a"), "process", NULL);
    fx_node(&f, "n2", "b"); /* lists nothing: processes only */
    fx_node(&f, "n3", "c")->status->state = SWARM__NODE_STATE__NODE_STATE_DOWN;
    fx_tasks(&f, "ctr", 1, task_container);
    fx_start(&f);
    ASSERT_INT_EQ(fx_place(&f, 0), 0);
    ASSERT(f.out[0].node_id == NULL);
    ASSERT_STR_EQ(f.out[0].reason, "no suitable node (1 node not available for new tasks; "
                                   "runtime not offered on 2 nodes)");
    fx_free(&f);
}

/* ---- networking ------------------------------------------------------------ */

static void task_networked(Swarm__Task *t)
{
    t->spec->networks = calloc(1, sizeof *t->spec->networks);
    t->spec->networks[0] = calloc(1, sizeof **t->spec->networks);
    swarm__network_attachment_config__init(t->spec->networks[0]);
    t->spec->networks[0]->target = dup("net1");
    t->spec->n_networks = 1;
}

TEST(sched_network_filter)
{
    struct fx f = {0};
    fx_node(&f, "n1", "a")->description->network_error = dup("not root: no network namespaces");
    fx_node(&f, "n2", "b");
    fx_tasks(&f, "net", 3, task_networked);
    fx_tasks(&f, "plain", 4, NULL);
    fx_start(&f);
    ASSERT_INT_EQ(fx_place(&f, 0), 0);
    for (size_t i = 0; i < 3; i++) {
        ASSERT_STR_EQ(f.out[i].node_id, "n2");
    }
    ASSERT_INT_EQ(fx_count_on(&f, "n1"), 2); /* only plain tasks there, spread as usual */
    ASSERT_INT_EQ(fx_count_on(&f, "n2"), 5);
    fx_free(&f);

    fx_node(&f, "n1", "a")->description->network_error = dup("no VXLAN");
    fx_node(&f, "n2", "b")->description->network_error = dup("no nftables");
    fx_node(&f, "n3", "c")->status->state = SWARM__NODE_STATE__NODE_STATE_DOWN;
    fx_tasks(&f, "net", 1, task_networked);
    fx_start(&f);
    ASSERT_INT_EQ(fx_place(&f, 0), 0);
    ASSERT(f.out[0].node_id == NULL);
    ASSERT_STR_EQ(f.out[0].reason, "no suitable node (1 node not available for new tasks; "
                                   "networking not available on 2 nodes)");
    fx_free(&f);
}

TEST_MAIN()
