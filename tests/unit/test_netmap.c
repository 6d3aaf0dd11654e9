/* Unit tests of netmap: which networks a node needs and what their maps
 * hold, from hand-made tasks, services and nodes. */
#include <stdlib.h>
#include <string.h>

#include "netmap.h"
#include "test.h"

#define ST(x) SWARM__TASK_STATE__TASK_STATE_##x

static char **strs(const char *a, const char *b, size_t *n)
{
    char **v = calloc(2, sizeof *v);
    *n = 0;
    if (a != NULL) {
        v[(*n)++] = strdup(a);
    }
    if (b != NULL) {
        v[(*n)++] = strdup(b);
    }
    return v;
}

static Swarm__Network *network(const char *id)
{
    Swarm__Network *n = calloc(1, sizeof *n);
    swarm__network__init(n);
    n->id = strdup(id);
    n->vni = 4096;
    n->spec = calloc(1, sizeof *n->spec);
    swarm__network_spec__init(n->spec);
    n->spec->annotations = calloc(1, sizeof *n->spec->annotations);
    swarm__annotations__init(n->spec->annotations);
    n->spec->annotations->name = strdup(id);
    n->spec->driver = strdup("overlay");
    return n;
}

static Swarm__Node *node(const char *id, const char *addr, Swarm__NodeState state)
{
    Swarm__Node *n = calloc(1, sizeof *n);
    swarm__node__init(n);
    n->id = strdup(id);
    n->status = calloc(1, sizeof *n->status);
    swarm__node_status__init(n->status);
    n->status->state = state;
    n->status->addr = strdup(addr);
    n->advertise_addr = strdup("192.0.2.99:2377");
    return n;
}

/* A task of service `svc` (ID "S" + svc) in `slot` on `node_id`, attached to
 * net1 (addr1) and optionally net2 (addr2), with alias `alias` on net1. */
static Swarm__Task *task(const char *id, const char *svc, unsigned slot, const char *node_id,
                         Swarm__TaskState desired, Swarm__TaskState state, const char *addr1,
                         const char *addr2, const char *alias)
{
    Swarm__Task *t = calloc(1, sizeof *t);
    char buf[128];
    swarm__task__init(t);
    t->id = strdup(id);
    snprintf(buf, sizeof buf, "S%s", svc);
    t->service_id = strdup(buf);
    t->service_name = strdup(svc);
    t->slot = slot;
    t->node_id = strdup(node_id);
    t->desired_state = desired;
    t->status = calloc(1, sizeof *t->status);
    swarm__task_status__init(t->status);
    t->status->state = state;
    t->annotations = calloc(1, sizeof *t->annotations);
    swarm__annotations__init(t->annotations);
    snprintf(buf, sizeof buf, "%s.%u", svc, slot);
    t->annotations->name = strdup(buf);
    t->spec = calloc(1, sizeof *t->spec);
    swarm__task_spec__init(t->spec);
    t->networks = calloc(2, sizeof *t->networks);
    t->spec->networks = calloc(2, sizeof *t->spec->networks);
    const char *addrs[2] = {addr1, addr2}, *nets[2] = {"net1", "net2"};
    for (int i = 0; i < 2; i++) {
        if (addrs[i] == NULL) {
            continue;
        }
        Swarm__NetworkAttachment *a = calloc(1, sizeof *a);
        swarm__network_attachment__init(a);
        a->network = network(nets[i]);
        a->addresses = strs(addrs[i], NULL, &a->n_addresses);
        t->networks[t->n_networks++] = a;
        Swarm__NetworkAttachmentConfig *c = calloc(1, sizeof *c);
        swarm__network_attachment_config__init(c);
        c->target = strdup(nets[i]);
        if (i == 0 && alias != NULL) {
            c->aliases = strs(alias, NULL, &c->n_aliases);
        }
        t->spec->networks[t->spec->n_networks++] = c;
    }
    return t;
}

/* Service "S<name>" on net1 with `vip` (NULL: none), mode, alias on net1
 * and one published port. */
static Swarm__Service *service(const char *name, const char *vip, const char *mode,
                               const char *alias)
{
    Swarm__Service *s = calloc(1, sizeof *s);
    char buf[128];
    swarm__service__init(s);
    snprintf(buf, sizeof buf, "S%s", name);
    s->id = strdup(buf);
    s->spec = calloc(1, sizeof *s->spec);
    swarm__service_spec__init(s->spec);
    s->spec->annotations = calloc(1, sizeof *s->spec->annotations);
    swarm__annotations__init(s->spec->annotations);
    s->spec->annotations->name = strdup(name);
    s->spec->task = calloc(1, sizeof *s->spec->task);
    swarm__task_spec__init(s->spec->task);
    s->spec->task->networks = calloc(1, sizeof *s->spec->task->networks);
    Swarm__NetworkAttachmentConfig *c = calloc(1, sizeof *c);
    swarm__network_attachment_config__init(c);
    c->target = strdup("net1");
    if (alias != NULL) {
        c->aliases = strs(alias, NULL, &c->n_aliases);
    }
    s->spec->task->networks[s->spec->task->n_networks++] = c;
    s->spec->endpoint = calloc(1, sizeof *s->spec->endpoint);
    swarm__endpoint_spec__init(s->spec->endpoint);
    s->spec->endpoint->mode = strdup(mode);
    s->endpoint = calloc(1, sizeof *s->endpoint);
    swarm__endpoint__init(s->endpoint);
    s->endpoint->ports = calloc(1, sizeof *s->endpoint->ports);
    Swarm__PortConfig *p = calloc(1, sizeof *p);
    swarm__port_config__init(p);
    p->protocol = strdup("tcp");
    p->target_port = 80;
    p->published_port = 8080;
    p->publish_mode = strdup("ingress");
    s->endpoint->ports[s->endpoint->n_ports++] = p;
    if (vip != NULL) {
        s->endpoint->virtual_ips = calloc(1, sizeof *s->endpoint->virtual_ips);
        Swarm__EndpointVirtualIP *v = calloc(1, sizeof *v);
        swarm__endpoint_virtual_ip__init(v);
        v->network_id = strdup("net1");
        v->addr = strdup(vip);
        s->endpoint->virtual_ips[s->endpoint->n_virtual_ips++] = v;
    }
    return s;
}

struct world {
    Swarm__Task *tasks[8];
    Swarm__Service *services[4];
    Swarm__Node *nodes[4];
    struct netmap_view v;
};

/* web (vip 10.0.1.2, alias www): web.1 running on A, web.2 running on B
 * (B is Down), web.3 starting on C; web.4 desired shutdown on A, web.5
 * failed on C; db (dnsrr): db.1 running on C on net1 and net2; an
 * unassigned task; a task without networks on B. */
static void world_init(struct world *w)
{
    memset(w, 0, sizeof *w);
    w->nodes[0] = node("A", "192.0.2.1", SWARM__NODE_STATE__NODE_STATE_READY);
    w->nodes[1] = node("B", "192.0.2.2:2377", SWARM__NODE_STATE__NODE_STATE_DOWN);
    w->nodes[2] = node("C", "", SWARM__NODE_STATE__NODE_STATE_READY);
    w->services[0] = service("web", "10.0.1.2/24", "vip", "www");
    w->services[1] = service("db", NULL, "dnsrr", NULL);
    w->services[2] = service("idle", "10.0.1.9/24", "", NULL); /* a VIP, no task */
    w->tasks[0] = task("t1", "web", 1, "A", ST(RUNNING), ST(RUNNING), "10.0.1.3/24", NULL, "www");
    w->tasks[1] = task("t2", "web", 2, "B", ST(RUNNING), ST(RUNNING), "10.0.1.4/24", NULL, "www");
    w->tasks[2] = task("t3", "web", 3, "C", ST(RUNNING), ST(STARTING), "10.0.1.5/24", NULL, "www");
    w->tasks[3] = task("t4", "web", 4, "A", ST(SHUTDOWN), ST(RUNNING), "10.0.1.6/24", NULL, NULL);
    w->tasks[4] = task("t5", "web", 5, "C", ST(RUNNING), ST(FAILED), "10.0.1.7/24", NULL, NULL);
    w->tasks[5] = task("t6", "db", 1, "C", ST(RUNNING), ST(RUNNING), "10.0.1.8/24", "10.0.2.3/24",
                       NULL);
    w->tasks[6] = task("t7", "web", 6, "", ST(RUNNING), ST(PENDING), "10.0.1.10/24", NULL, NULL);
    w->tasks[7] = task("t8", "plain", 1, "B", ST(RUNNING), ST(RUNNING), NULL, NULL, NULL);
    w->v.tasks = w->tasks;
    w->v.n_tasks = 8;
    w->v.services = w->services;
    w->v.n_services = 3;
    w->v.nodes = w->nodes;
    w->v.n_nodes = 3;
}

static void world_free(struct world *w)
{
    for (int i = 0; i < 8; i++) {
        swarm__task__free_unpacked(w->tasks[i], NULL);
    }
    for (int i = 0; i < 3; i++) {
        swarm__service__free_unpacked(w->services[i], NULL);
        swarm__node__free_unpacked(w->nodes[i], NULL);
    }
}

static const Swarm__NetworkEndpoint *find_ep(const Swarm__NetworkMap *m, const char *task_id)
{
    for (size_t i = 0; i < m->n_endpoints; i++) {
        if (strcmp(m->endpoints[i]->task_id, task_id) == 0) {
            return m->endpoints[i];
        }
    }
    return NULL;
}

static const Swarm__NetworkServiceEntry *find_svc(const Swarm__NetworkMap *m, const char *name)
{
    for (size_t i = 0; i < m->n_services; i++) {
        if (strcmp(m->services[i]->name, name) == 0) {
            return m->services[i];
        }
    }
    return NULL;
}

TEST(live_tasks_are_assigned_desired_running_not_ended)
{
    struct world w;
    world_init(&w);
    ASSERT(netmap_task_live(w.tasks[0]));
    ASSERT(netmap_task_live(w.tasks[2]));  /* starting */
    ASSERT(!netmap_task_live(w.tasks[3])); /* desired shutdown */
    ASSERT(!netmap_task_live(w.tasks[4])); /* failed */
    ASSERT(!netmap_task_live(w.tasks[6])); /* not assigned to a node */
    ASSERT(!netmap_task_live(NULL));
    world_free(&w);
}

TEST(a_node_needs_only_the_networks_of_its_live_tasks)
{
    struct world w;
    struct netmap_use *uses;
    size_t n, first, k;
    world_init(&w);
    ASSERT_INT_EQ(netmap_uses(&w.v, &uses, &n), 0);
    /* A: net1 (t1; t4 is desired shutdown); B: net1 (t2; t8 has none);
     * C: net1 (t3, t6, each once), net2 (t6). */
    ASSERT_INT_EQ(n, 4);
    k = netmap_uses_of_node(uses, n, "A", &first);
    ASSERT_INT_EQ(k, 1);
    ASSERT_STR_EQ(uses[first].network_id, "net1");
    k = netmap_uses_of_node(uses, n, "C", &first);
    ASSERT_INT_EQ(k, 2);
    ASSERT_STR_EQ(uses[first].network_id, "net1");
    ASSERT_STR_EQ(uses[first + 1].network_id, "net2");
    ASSERT_INT_EQ(netmap_uses_of_node(uses, n, "D", &first), 0);
    ASSERT_INT_EQ(netmap_uses_of_node(uses, n, "", &first), 0);
    free(uses);
    world_free(&w);
}

TEST(map_holds_live_endpoints_with_names_nodes_and_readiness)
{
    struct world w;
    Swarm__NetworkMap *m = NULL;
    world_init(&w);
    ASSERT_INT_EQ(netmap_build(&w.v, "net1", &m), 0);
    ASSERT(m != NULL && m->network != NULL);
    ASSERT_STR_EQ(m->network->id, "net1");
    ASSERT_INT_EQ(m->network->vni, 4096);
    ASSERT_INT_EQ(m->n_endpoints, 4); /* t1, t2, t3, t6: not t4, t5, t7, t8 */
    const Swarm__NetworkEndpoint *e1 = find_ep(m, "t1"), *e2 = find_ep(m, "t2"),
                                 *e3 = find_ep(m, "t3"), *e6 = find_ep(m, "t6");
    ASSERT(e1 != NULL && e2 != NULL && e3 != NULL && e6 != NULL);
    ASSERT(find_ep(m, "t4") == NULL && find_ep(m, "t5") == NULL && find_ep(m, "t7") == NULL);
    ASSERT_STR_EQ(m->endpoints[0]->task_id, "t1"); /* sorted by task ID */
    ASSERT_STR_EQ(e1->task_name, "web.1.t1");
    ASSERT_STR_EQ(e1->service_id, "Sweb");
    ASSERT_STR_EQ(e1->service_name, "web");
    ASSERT_STR_EQ(e1->addr, "10.0.1.3");
    ASSERT_STR_EQ(e1->node_addr, "192.0.2.1");
    ASSERT_INT_EQ(e1->n_aliases, 1);
    ASSERT_STR_EQ(e1->aliases[0], "www");
    ASSERT(e1->ready);
    ASSERT_STR_EQ(e2->node_addr, "192.0.2.2"); /* a port is dropped */
    ASSERT(!e2->ready);                        /* its node is Down */
    ASSERT_STR_EQ(e3->node_addr, "192.0.2.99"); /* no status address: the advertised one */
    ASSERT(!e3->ready);                         /* still starting */
    ASSERT_STR_EQ(e6->addr, "10.0.1.8");
    ASSERT(e6->ready);
    swarm__network_map__free_unpacked(m, NULL);
    world_free(&w);
}

TEST(map_holds_services_with_vip_mode_aliases_ports)
{
    struct world w;
    Swarm__NetworkMap *m = NULL;
    world_init(&w);
    ASSERT_INT_EQ(netmap_build(&w.v, "net1", &m), 0);
    ASSERT(m != NULL);
    ASSERT_INT_EQ(m->n_services, 3);
    const Swarm__NetworkServiceEntry *web = find_svc(m, "web"), *db = find_svc(m, "db"),
                                     *idle = find_svc(m, "idle");
    ASSERT(web != NULL && db != NULL && idle != NULL);
    ASSERT_STR_EQ(web->service_id, "Sweb");
    ASSERT_STR_EQ(web->vip, "10.0.1.2");
    ASSERT_STR_EQ(web->endpoint_mode, "vip");
    ASSERT_INT_EQ(web->n_aliases, 1);
    ASSERT_STR_EQ(web->aliases[0], "www");
    ASSERT_INT_EQ(web->n_ports, 1);
    ASSERT_INT_EQ(web->ports[0]->published_port, 8080);
    ASSERT_INT_EQ(web->ports[0]->target_port, 80);
    ASSERT_STR_EQ(db->vip, "");
    ASSERT_STR_EQ(db->endpoint_mode, "dnsrr");
    ASSERT_STR_EQ(idle->vip, "10.0.1.9");    /* a VIP but no task yet: still named */
    ASSERT_STR_EQ(idle->endpoint_mode, "vip"); /* "" means vip */
    swarm__network_map__free_unpacked(m, NULL);

    /* net2: db's task only; web is not on it. */
    ASSERT_INT_EQ(netmap_build(&w.v, "net2", &m), 0);
    ASSERT(m != NULL);
    ASSERT_INT_EQ(m->n_endpoints, 1);
    ASSERT_STR_EQ(m->endpoints[0]->addr, "10.0.2.3");
    ASSERT_STR_EQ(m->endpoints[0]->task_name, "db.1.t6");
    ASSERT_INT_EQ(m->endpoints[0]->n_aliases, 0);
    ASSERT_INT_EQ(m->n_services, 1);
    ASSERT_STR_EQ(m->services[0]->name, "db");
    ASSERT_INT_EQ(m->services[0]->n_aliases, 0); /* its alias config is on net1 only */
    swarm__network_map__free_unpacked(m, NULL);
    world_free(&w);
}

TEST(network_without_live_task_has_no_map)
{
    struct world w;
    Swarm__NetworkMap *m = (Swarm__NetworkMap *)1;
    world_init(&w);
    ASSERT_INT_EQ(netmap_build(&w.v, "net9", &m), 0);
    ASSERT(m == NULL);
    /* Once db's task ends, net2 is needed by nobody. */
    w.tasks[5]->status->state = ST(COMPLETE);
    ASSERT_INT_EQ(netmap_build(&w.v, "net2", &m), 0);
    ASSERT(m == NULL);
    world_free(&w);
}

TEST(scale_down_and_task_end_leave_the_map)
{
    struct world w;
    Swarm__NetworkMap *m = NULL;
    world_init(&w);
    w.tasks[0]->desired_state = ST(SHUTDOWN); /* scaled down */
    w.tasks[2]->status->state = ST(FAILED);
    ASSERT_INT_EQ(netmap_build(&w.v, "net1", &m), 0);
    ASSERT(m != NULL);
    ASSERT_INT_EQ(m->n_endpoints, 2);
    ASSERT(find_ep(m, "t2") != NULL && find_ep(m, "t6") != NULL);
    swarm__network_map__free_unpacked(m, NULL);
    world_free(&w);
}

TEST(global_task_name_and_unallocated_task)
{
    struct world w;
    Swarm__NetworkMap *m = NULL;
    world_init(&w);
    /* A global task (slot 0, no annotation name): service.nodeid.taskid. */
    free(w.tasks[0]->annotations->name);
    w.tasks[0]->annotations->name = strdup("");
    w.tasks[0]->slot = 0;
    /* An attachment without an address yet: the node needs the network,
     * but there is no endpoint to reach. */
    free(w.tasks[1]->networks[0]->addresses[0]);
    free(w.tasks[1]->networks[0]->addresses);
    w.tasks[1]->networks[0]->addresses = NULL;
    w.tasks[1]->networks[0]->n_addresses = 0;
    ASSERT_INT_EQ(netmap_build(&w.v, "net1", &m), 0);
    ASSERT(m != NULL);
    ASSERT_STR_EQ(find_ep(m, "t1")->task_name, "web.A.t1");
    ASSERT(find_ep(m, "t2") == NULL);
    swarm__network_map__free_unpacked(m, NULL);
    world_free(&w);
}

TEST(same_store_same_bytes)
{
    struct world w;
    Swarm__NetworkMap *a = NULL, *b = NULL;
    world_init(&w);
    ASSERT_INT_EQ(netmap_build(&w.v, "net1", &a), 0);
    /* Another order of the same objects. */
    Swarm__Task *tmp = w.tasks[0];
    w.tasks[0] = w.tasks[5];
    w.tasks[5] = tmp;
    Swarm__Service *s = w.services[0];
    w.services[0] = w.services[2];
    w.services[2] = s;
    ASSERT_INT_EQ(netmap_build(&w.v, "net1", &b), 0);
    size_t la = protobuf_c_message_get_packed_size(&a->base);
    size_t lb = protobuf_c_message_get_packed_size(&b->base);
    ASSERT_INT_EQ(la, lb);
    uint8_t *pa = malloc(la), *pb = malloc(lb);
    protobuf_c_message_pack(&a->base, pa);
    protobuf_c_message_pack(&b->base, pb);
    ASSERT(memcmp(pa, pb, la) == 0);
    free(pa);
    free(pb);
    swarm__network_map__free_unpacked(a, NULL);
    swarm__network_map__free_unpacked(b, NULL);
    world_free(&w);
}

TEST(addr_ip_strips_the_prefix)
{
    char ip[16];
    ASSERT(netmap_addr_ip("10.0.1.5/24", ip, sizeof ip));
    ASSERT_STR_EQ(ip, "10.0.1.5");
    ASSERT(netmap_addr_ip("10.0.1.5", ip, sizeof ip));
    ASSERT_STR_EQ(ip, "10.0.1.5");
    ASSERT(!netmap_addr_ip("/24", ip, sizeof ip));
    ASSERT(!netmap_addr_ip(NULL, ip, sizeof ip));
    ASSERT(!netmap_addr_ip("1234567890123456789/8", ip, sizeof ip));
}

TEST_MAIN()
