/* Unit tests of the routing mesh's pure parts (issue 13): the node's
 * nftables ruleset from an ingress map (netplan_ingress_ruleset), the
 * node's own endpoint in it, host-mode rules from tasks (netplan_host_rules),
 * the allocator's node addresses on ingress (alloc_node_ingress) and the
 * maps every node with such an address gets (netmap). */
#include <stdlib.h>
#include <string.h>

#include "allocator.h"
#include "err.h"
#include "netmap.h"
#include "netplan.h"
#include "test.h"

static Swarm__PortConfig *port(uint32_t published, uint32_t target, const char *proto, const char *mode)
{
    Swarm__PortConfig *p = calloc(1, sizeof *p);
    swarm__port_config__init(p);
    p->published_port = published;
    p->target_port = target;
    p->protocol = strdup(proto);
    p->publish_mode = strdup(mode);
    return p;
}

static Swarm__NetworkEndpoint *ep(const char *task, const char *svc, const char *addr,
                                  const char *node, bool ready)
{
    Swarm__NetworkEndpoint *e = calloc(1, sizeof *e);
    swarm__network_endpoint__init(e);
    e->task_id = strdup(task);
    e->task_name = strdup(task);
    e->service_id = strdup(svc);
    e->service_name = strdup(svc);
    e->addr = strdup(addr);
    e->node_addr = strdup(node);
    e->ready = ready;
    return e;
}

static Swarm__NetworkServiceEntry *svc_entry(const char *id, Swarm__PortConfig **ports, size_t n)
{
    Swarm__NetworkServiceEntry *s = calloc(1, sizeof *s);
    swarm__network_service_entry__init(s);
    s->service_id = strdup(id);
    s->name = strdup(id);
    s->vip = strdup("10.0.0.100");
    s->endpoint_mode = strdup("vip");
    s->ports = calloc(n + 1, sizeof *s->ports);
    memcpy(s->ports, ports, n * sizeof *ports);
    s->n_ports = n;
    return s;
}

static Swarm__NetworkMap *ingress_map(void)
{
    Swarm__NetworkMap *m = calloc(1, sizeof *m);
    swarm__network_map__init(m);
    m->endpoints = calloc(5, sizeof *m->endpoints);
    m->endpoints[m->n_endpoints++] = ep("t1", "web", "10.0.0.5", "192.168.1.2", true);
    m->endpoints[m->n_endpoints++] = ep("t2", "web", "10.0.0.6", "192.168.1.3", true);
    m->endpoints[m->n_endpoints++] = ep("t3", "web", "10.0.0.7", "192.168.1.3", false);
    m->endpoints[m->n_endpoints++] = ep("", "", "10.0.0.2", "192.168.1.1", false); /* node 1 */
    m->endpoints[m->n_endpoints++] = ep("t4", "idle", "10.0.0.8", "192.168.1.2", false);
    Swarm__PortConfig *wp[] = {port(8000, 80, "tcp", "ingress"), port(53, 5353, "udp", ""),
                               port(9000, 90, "tcp", "host")};
    Swarm__PortConfig *ip[] = {port(8001, 81, "tcp", "ingress")};
    m->services = calloc(2, sizeof *m->services);
    m->services[m->n_services++] = svc_entry("web", wp, 3);
    m->services[m->n_services++] = svc_entry("idle", ip, 1);
    return m;
}

TEST(mesh_ruleset_dnats_published_ports_to_ready_tasks)
{
    Swarm__NetworkMap *m = ingress_map();
    char *r = netplan_ingress_ruleset(m, "swingress", NULL);
    ASSERT(r != NULL);
    /* Ready tasks only, each at its target port; TCP and UDP. */
    ASSERT(strstr(r, "    tcp dport 8000 dnat ip to numgen random mod 2 map "
                     "{ 0 : 10.0.0.5 . 80, 1 : 10.0.0.6 . 80 }\n") != NULL);
    ASSERT(strstr(r, "    udp dport 53 dnat ip to numgen random mod 2 map "
                     "{ 0 : 10.0.0.5 . 5353, 1 : 10.0.0.6 . 5353 }\n") != NULL);
    /* A host-mode port is not the mesh's; a port with no ready task gets no
     * rule (a closed port). */
    ASSERT(strstr(r, "9000") == NULL);
    ASSERT(strstr(r, "8001") == NULL);
    /* The node's own addresses only, not loopback; masquerade out of the veth. */
    ASSERT(strstr(r, "fib daddr type local ip daddr != 127.0.0.0/8 jump mesh") != NULL);
    ASSERT(strstr(r, "oifname \"swingress\" masquerade") != NULL);
    ASSERT(strncmp(r, "table ip swarmd_ingress\ndelete table ip swarmd_ingress\n", 55) == 0);
    ASSERT(netplan_ingress_wanted(m));
    free(r);
    /* Host-mode lines go into the same chain. */
    r = netplan_ingress_ruleset(m, "swingress", "    tcp dport 7000 redirect to :70\n");
    ASSERT(strstr(r, "    tcp dport 7000 redirect to :70\n  }\n}\n") != NULL);
    free(r);
    swarm__network_map__free_unpacked(m, NULL);
}

TEST(mesh_node_endpoint_and_wanted)
{
    Swarm__NetworkMap *m = ingress_map();
    uint32_t ip = 0, underlay = 0, other = 0;
    char s[16];
    ASSERT_INT_EQ(netplan_parse_ip("192.168.1.1", &underlay), 0);
    ASSERT_INT_EQ(netplan_ingress_node_ip(m, underlay, &ip), 0);
    netplan_format_ip(ip, s);
    ASSERT_STR_EQ(s, "10.0.0.2");
    /* A node without its endpoint in the map (no address yet): none. */
    ASSERT_INT_EQ(netplan_parse_ip("192.168.1.3", &other), 0);
    ASSERT_INT_EQ(netplan_ingress_node_ip(m, other, &ip), SWARM_ENOTFOUND);
    /* Nothing published in ingress mode: the mesh is not wanted. */
    for (size_t i = 0; i < m->n_services; i++) {
        for (size_t j = 0; j < m->services[i]->n_ports; j++) {
            free(m->services[i]->ports[j]->publish_mode);
            m->services[i]->ports[j]->publish_mode = strdup("host");
        }
    }
    ASSERT(!netplan_ingress_wanted(m));
    swarm__network_map__free_unpacked(m, NULL);
}

static Swarm__Network *network(const char *id, const char *subnet, bool ingress)
{
    Swarm__Network *n = calloc(1, sizeof *n);
    swarm__network__init(n);
    n->id = strdup(id);
    n->spec = calloc(1, sizeof *n->spec);
    swarm__network_spec__init(n->spec);
    n->spec->annotations = calloc(1, sizeof *n->spec->annotations);
    swarm__annotations__init(n->spec->annotations);
    n->spec->annotations->name = strdup(ingress ? "ingress" : id);
    n->spec->ingress = ingress;
    n->ipam = calloc(1, sizeof *n->ipam);
    swarm__ipamconfig__init(n->ipam);
    n->ipam->subnet = strdup(subnet);
    n->ipam->gateway = strdup(ingress ? "10.0.0.1" : "10.0.1.1");
    n->vni = ingress ? 4097 : 4098;
    return n;
}

static Swarm__Task *host_task(const char *id, const char *net_addr, bool ingress)
{
    Swarm__Task *t = calloc(1, sizeof *t);
    swarm__task__init(t);
    t->id = strdup(id);
    t->endpoint = calloc(1, sizeof *t->endpoint);
    swarm__endpoint__init(t->endpoint);
    t->endpoint->ports = calloc(2, sizeof *t->endpoint->ports);
    t->endpoint->ports[t->endpoint->n_ports++] = port(8001, 8081, "tcp", "host");
    t->endpoint->ports[t->endpoint->n_ports++] = port(8000, 80, "tcp", "ingress");
    if (net_addr != NULL) {
        t->networks = calloc(1, sizeof *t->networks);
        Swarm__NetworkAttachment *a = calloc(1, sizeof *a);
        swarm__network_attachment__init(a);
        a->network = network(ingress ? "ing" : "front", ingress ? "10.0.0.0/24" : "10.0.1.0/24", ingress);
        a->addresses = calloc(1, sizeof *a->addresses);
        a->addresses[a->n_addresses++] = strdup(net_addr);
        t->networks[t->n_networks++] = a;
    }
    return t;
}

TEST(mesh_host_rules_from_tasks)
{
    const Swarm__Task *ts[3];
    ts[0] = host_task("a", NULL, false);           /* the node's stack */
    ts[1] = host_task("b", "10.0.0.9/24", true);   /* a sandbox on ingress */
    ts[2] = host_task("c", "10.0.1.9/24", false);  /* unreachable from the node */
    char *r = netplan_host_rules(ts, NULL, 3);
    ASSERT_STR_EQ(r, "    tcp dport 8001 redirect to :8081\n"
                     "    tcp dport 8001 dnat ip to 10.0.0.9:8081\n");
    free(r);
    /* With its gateway bridge address, the task on other networks is
     * reached there. */
    const uint32_t gw[3] = {0, 0xac120003, 0xac120002};
    r = netplan_host_rules(ts, gw, 3);
    ASSERT_STR_EQ(r, "    tcp dport 8001 redirect to :8081\n"
                     "    tcp dport 8001 dnat ip to 10.0.0.9:8081\n"
                     "    tcp dport 8001 dnat ip to 172.18.0.2:8081\n");
    free(r);
    r = netplan_host_rules(ts, NULL, 0);
    ASSERT_STR_EQ(r, "");
    free(r);
    for (int i = 0; i < 3; i++) {
        swarm__task__free_unpacked((Swarm__Task *)ts[i], NULL);
    }
}

static Swarm__Node *node(const char *id, const char *addr)
{
    Swarm__Node *n = calloc(1, sizeof *n);
    swarm__node__init(n);
    n->id = strdup(id);
    n->status = calloc(1, sizeof *n->status);
    swarm__node_status__init(n->status);
    n->status->state = SWARM__NODE_STATE__NODE_STATE_READY;
    n->status->addr = strdup(addr);
    return n;
}

TEST(mesh_nodes_get_unique_ingress_addresses_and_the_map)
{
    Swarm__Network *nets[1] = {network("ing", "10.0.0.0/24", true)};
    struct alloc *a = alloc_new(nets, 1);
    char err[SWARM_ERRMSG_SIZE];
    Swarm__Node *n1 = node("n1", "192.168.1.1"), *n2 = node("n2", "192.168.1.2");
    ASSERT(a != NULL);
    ASSERT_INT_EQ(alloc_node_ingress(a, n1, err), 1);
    ASSERT_INT_EQ(alloc_node_ingress(a, n1, err), 0); /* has one: kept */
    ASSERT_INT_EQ(n1->n_attachments, 1);
    ASSERT_STR_EQ(n1->attachments[0]->addresses[0], "10.0.0.2/24");
    ASSERT_STR_EQ(n1->attachments[0]->network->id, "ing");
    alloc_free(a);
    /* A new leader's pass: marked from the store, never given twice. */
    a = alloc_new(nets, 1);
    alloc_mark_node(a, n1);
    ASSERT_INT_EQ(alloc_node_ingress(a, n2, err), 1);
    ASSERT_STR_EQ(n2->attachments[0]->addresses[0], "10.0.0.3/24");
    alloc_free(a);

    /* Every node with an address needs ingress's map, which lists the
     * nodes as endpoints without a task (never ready). */
    Swarm__Node *nodes[2] = {n1, n2};
    struct netmap_view v = {NULL, 0, NULL, 0, nodes, 2};
    struct netmap_use *uses = NULL;
    size_t nu = 0, first = 0;
    ASSERT_INT_EQ(netmap_uses(&v, &uses, &nu), 0);
    ASSERT_INT_EQ(nu, 2);
    ASSERT_INT_EQ(netmap_uses_of_node(uses, nu, "n2", &first), 1);
    ASSERT_STR_EQ(uses[first].network_id, "ing");
    free(uses);
    Swarm__NetworkMap *m = NULL;
    ASSERT_INT_EQ(netmap_build(&v, "ing", &m), 0);
    ASSERT(m != NULL && m->network != NULL && m->network->spec->ingress);
    ASSERT_INT_EQ(m->n_endpoints, 2);
    ASSERT_STR_EQ(m->endpoints[0]->task_id, "");
    ASSERT_STR_EQ(m->endpoints[0]->addr, "10.0.0.2");
    ASSERT_STR_EQ(m->endpoints[0]->node_addr, "192.168.1.1");
    ASSERT(!m->endpoints[0]->ready);
    ASSERT_STR_EQ(m->endpoints[1]->addr, "10.0.0.3");
    /* The node's side finds its own address in it. */
    uint32_t under, ip;
    char s[16];
    ASSERT_INT_EQ(netplan_parse_ip("192.168.1.2", &under), 0);
    ASSERT_INT_EQ(netplan_ingress_node_ip(m, under, &ip), 0);
    netplan_format_ip(ip, s);
    ASSERT_STR_EQ(s, "10.0.0.3");
    swarm__network_map__free_unpacked(m, NULL);
    swarm__node__free_unpacked(n1, NULL);
    swarm__node__free_unpacked(n2, NULL);
    swarm__network__free_unpacked(nets[0], NULL);
}

TEST_MAIN()
