/* Unit tests of the network allocator (allocator.h): subnets from the
 * pool, VNIs, validation with Docker's messages, VIPs and task addresses,
 * the reserved addresses, --ip-range, exhaustion, release and reuse, and
 * the rebuild from stored objects. */
#include <stdlib.h>
#include <string.h>

#include "allocator.h"
#include "err.h"
#include "test.h"

static Swarm__Network *net_new(const char *id, const char *name, const char *subnet, const char *gw,
                               const char *range, uint32_t vni, bool ingress)
{
    Swarm__Network *n = calloc(1, sizeof *n);
    swarm__network__init(n);
    n->id = strdup(id);
    n->spec = calloc(1, sizeof *n->spec);
    swarm__network_spec__init(n->spec);
    n->spec->annotations = calloc(1, sizeof *n->spec->annotations);
    swarm__annotations__init(n->spec->annotations);
    n->spec->annotations->name = strdup(name);
    n->spec->ingress = ingress;
    n->ipam = calloc(1, sizeof *n->ipam);
    swarm__ipamconfig__init(n->ipam);
    n->ipam->subnet = strdup(subnet);
    n->ipam->gateway = strdup(gw);
    n->ipam->range = strdup(range);
    n->vni = vni;
    return n;
}

static void net_free(Swarm__Network *n)
{
    swarm__network__free_unpacked(n, NULL);
}

/* Allocate a network for a spec with an optional --subnet/--gateway/--ip-range. */
static int alloc_spec(const char *driver, const char *subnet, const char *gw, const char *range,
                      const struct alloc_pool_config *pc, Swarm__Network *const *existing, size_t n,
                      Swarm__IPAMConfig *out, uint32_t *vni, char *err)
{
    Swarm__NetworkSpec spec = SWARM__NETWORK_SPEC__INIT;
    Swarm__IPAMConfig want = SWARM__IPAMCONFIG__INIT, *wp = &want;
    spec.driver = (char *)driver;
    if (subnet != NULL || gw != NULL || range != NULL) {
        want.subnet = (char *)(subnet ? subnet : "");
        want.gateway = (char *)(gw ? gw : "");
        want.range = (char *)(range ? range : "");
        spec.ipam = &wp;
        spec.n_ipam = 1;
    }
    return alloc_network(&spec, pc, existing, n, out, vni, err);
}

static void ipam_clear(Swarm__IPAMConfig *c)
{
    if (c->subnet != protobuf_c_empty_string) free(c->subnet);
    if (c->gateway != protobuf_c_empty_string) free(c->gateway);
    if (c->range != protobuf_c_empty_string) free(c->range);
}

TEST(subnets_from_the_default_pool)
{
    struct alloc_pool_config pc = {NULL, 0, 0};
    Swarm__Network *nets[3];
    Swarm__IPAMConfig ip;
    uint32_t vni = 0;
    char err[SWARM_ERRMSG_SIZE];

    nets[0] = net_new("ing", "ingress", "10.0.0.0/24", "10.0.0.1", "", 4097, true);
    ASSERT_INT_EQ(alloc_spec("overlay", NULL, NULL, NULL, &pc, nets, 1, &ip, &vni, err), 0);
    ASSERT_STR_EQ(ip.subnet, "10.0.1.0/24");
    ASSERT_STR_EQ(ip.gateway, "10.0.1.1");
    ASSERT_INT_EQ(vni, 4098);
    nets[1] = net_new("a", "a", ip.subnet, ip.gateway, "", vni, false);
    ipam_clear(&ip);
    /* A user's subnet in the middle: the next one skips it. */
    nets[2] = net_new("b", "b", "10.0.2.0/23", "10.0.2.1", "", 4100, false);
    ASSERT_INT_EQ(alloc_spec("", NULL, NULL, NULL, &pc, nets, 3, &ip, &vni, err), 0);
    ASSERT_STR_EQ(ip.subnet, "10.0.4.0/24");
    ASSERT_INT_EQ(vni, 4099);
    ipam_clear(&ip);

    /* A pool of its own, with its mask length. */
    char *pools[] = {"192.168.0.0/16"};
    struct alloc_pool_config own = {pools, 1, 26};
    ASSERT_INT_EQ(alloc_spec("overlay", NULL, NULL, NULL, &own, nets, 3, &ip, &vni, err), 0);
    ASSERT_STR_EQ(ip.subnet, "192.168.0.0/26");
    ipam_clear(&ip);

    /* Exhausted: a /24 pool holding one /24 already. */
    char *small[] = {"10.0.1.0/24"};
    struct alloc_pool_config tiny = {small, 1, 24};
    ASSERT_INT_EQ(alloc_spec("overlay", NULL, NULL, NULL, &tiny, nets, 3, &ip, &vni, err), SWARM_EUNAVAIL);
    ASSERT_STR_EQ(err, "could not find an available, non-overlapping IPv4 address pool among the defaults "
                       "to assign to the network");
    for (int i = 0; i < 3; i++) {
        net_free(nets[i]);
    }
}

TEST(network_validation_messages)
{
    struct alloc_pool_config pc = {NULL, 0, 0};
    Swarm__Network *nets[1] = {net_new("a", "front", "10.0.1.0/24", "10.0.1.1", "", 4097, false)};
    Swarm__IPAMConfig ip;
    uint32_t vni;
    char err[SWARM_ERRMSG_SIZE];

    ASSERT_INT_EQ(alloc_spec("overlay", "10.0.9/24", NULL, NULL, &pc, nets, 1, &ip, &vni, err), SWARM_EINVAL);
    ASSERT_STR_EQ(err, "invalid CIDR address: 10.0.9/24");
    ASSERT_INT_EQ(alloc_spec("overlay", "10.0.9.0/24", "10.0.8.1", NULL, &pc, nets, 1, &ip, &vni, err),
                  SWARM_EINVAL);
    ASSERT_STR_EQ(err, "no matching subnet for gateway 10.0.8.1");
    ASSERT_INT_EQ(alloc_spec("overlay", "10.0.9.0/24", NULL, "10.0.8.0/25", &pc, nets, 1, &ip, &vni, err),
                  SWARM_EINVAL);
    ASSERT_STR_EQ(err, "no matching subnet for range 10.0.8.0/25");
    ASSERT_INT_EQ(alloc_spec("overlay", "10.0.0.0/16", NULL, NULL, &pc, nets, 1, &ip, &vni, err), SWARM_EEXIST);
    ASSERT_STR_EQ(err, "invalid pool request: Pool overlaps with other one on this address space");
    ASSERT_INT_EQ(alloc_spec("bridge", NULL, NULL, NULL, &pc, nets, 1, &ip, &vni, err), SWARM_EINVAL);
    ASSERT_STR_EQ(err, "plugin bridge not supported");
    ASSERT_INT_EQ(alloc_spec("overlay", NULL, "10.0.8.1", NULL, &pc, nets, 1, &ip, &vni, err), SWARM_EINVAL);
    ASSERT_STR_EQ(err, "every ip-range or gateway must have a corresponding subnet");
    /* Host bits are dropped; a gateway and range are kept as given. */
    ASSERT_INT_EQ(alloc_spec("overlay", "10.0.9.7/24", "10.0.9.254", "10.0.9.128/25", &pc, nets, 1, &ip, &vni,
                             err), 0);
    ASSERT_STR_EQ(ip.subnet, "10.0.9.0/24");
    ASSERT_STR_EQ(ip.gateway, "10.0.9.254");
    ASSERT_STR_EQ(ip.range, "10.0.9.128/25");
    ipam_clear(&ip);
    net_free(nets[0]);
}

TEST(pool_validation_messages)
{
    char *bad[] = {"10.0.0/8"};
    char *ok[] = {"10.10.0.0/16", "172.20.0.0/16"};
    char *overlap[] = {"10.0.0.0/8", "10.1.0.0/16"};
    struct alloc_pool_config pc = {bad, 1, 0};
    char err[SWARM_ERRMSG_SIZE];
    ASSERT_INT_EQ(alloc_pool_validate(&pc, err), SWARM_EINVAL);
    ASSERT_STR_EQ(err, "invalid base pool 10.0.0/8: invalid CIDR address: 10.0.0/8");
    pc = (struct alloc_pool_config){ok, 2, 30};
    ASSERT_INT_EQ(alloc_pool_validate(&pc, err), SWARM_EINVAL);
    ASSERT_STR_EQ(err, "subnet size is out of range: 30");
    pc = (struct alloc_pool_config){ok, 2, 12};
    ASSERT_INT_EQ(alloc_pool_validate(&pc, err), SWARM_EINVAL);
    ASSERT_STR_EQ(err, "invalid CIDR: \"10.10.0.0/16\". Subnet size is too small for pool: 12");
    pc = (struct alloc_pool_config){overlap, 2, 24};
    ASSERT_INT_EQ(alloc_pool_validate(&pc, err), SWARM_EINVAL);
    pc = (struct alloc_pool_config){ok, 2, 24};
    ASSERT_INT_EQ(alloc_pool_validate(&pc, err), 0);
}

TEST(addresses_skip_reserved_and_exhaust)
{
    /* A /29: .0 network, .1 gateway, .7 broadcast: five to hand out. */
    Swarm__Network *nets[1] = {net_new("n", "tiny", "10.0.5.0/29", "10.0.5.1", "", 4097, false)};
    struct alloc *a = alloc_new(nets, 1);
    char addr[ALLOC_CIDR_LEN], err[SWARM_ERRMSG_SIZE];
    const char *want[] = {"10.0.5.2/29", "10.0.5.3/29", "10.0.5.4/29", "10.0.5.5/29", "10.0.5.6/29"};
    for (int i = 0; i < 5; i++) {
        ASSERT_INT_EQ(alloc_take(a, "n", addr, err), 0);
        ASSERT_STR_EQ(addr, want[i]);
    }
    ASSERT_INT_EQ(alloc_take(a, "n", addr, err), SWARM_EUNAVAIL);
    ASSERT_STR_EQ(err, "no available IP addresses on network tiny");
    /* Freed, then reused. */
    alloc_release(a, "n", "10.0.5.4/29");
    ASSERT_INT_EQ(alloc_take(a, "n", addr, err), 0);
    ASSERT_STR_EQ(addr, "10.0.5.4/29");
    ASSERT_INT_EQ(alloc_take(a, "nope", addr, err), SWARM_ENOTFOUND);
    alloc_free(a);
    net_free(nets[0]);

    /* A gateway elsewhere than the first address; an --ip-range. */
    nets[0] = net_new("r", "ranged", "10.0.6.0/24", "10.0.6.2", "10.0.6.0/30", 4097, false);
    a = alloc_new(nets, 1);
    ASSERT_INT_EQ(alloc_take(a, "r", addr, err), 0);
    ASSERT_STR_EQ(addr, "10.0.6.1/24");
    ASSERT_INT_EQ(alloc_take(a, "r", addr, err), 0);
    ASSERT_STR_EQ(addr, "10.0.6.3/24");
    ASSERT_INT_EQ(alloc_take(a, "r", addr, err), SWARM_EUNAVAIL);
    alloc_free(a);
    net_free(nets[0]);
}

static Swarm__Service *svc_new(const char *net, const char *mode, bool ingress_port)
{
    Swarm__Service *s = calloc(1, sizeof *s);
    swarm__service__init(s);
    s->id = strdup("svc1");
    s->spec = calloc(1, sizeof *s->spec);
    swarm__service_spec__init(s->spec);
    s->spec->task = calloc(1, sizeof *s->spec->task);
    swarm__task_spec__init(s->spec->task);
    if (net != NULL) {
        s->spec->task->networks = calloc(1, sizeof *s->spec->task->networks);
        s->spec->task->networks[0] = calloc(1, sizeof **s->spec->task->networks);
        swarm__network_attachment_config__init(s->spec->task->networks[0]);
        s->spec->task->networks[0]->target = strdup(net);
        s->spec->task->networks[0]->aliases = calloc(1, sizeof(char *));
        s->spec->task->networks[0]->aliases[0] = strdup("db");
        s->spec->task->networks[0]->n_aliases = 1;
        s->spec->task->n_networks = 1;
    }
    s->spec->endpoint = calloc(1, sizeof *s->spec->endpoint);
    swarm__endpoint_spec__init(s->spec->endpoint);
    s->spec->endpoint->mode = strdup(mode);
    if (ingress_port) {
        s->spec->endpoint->ports = calloc(1, sizeof *s->spec->endpoint->ports);
        s->spec->endpoint->ports[0] = calloc(1, sizeof **s->spec->endpoint->ports);
        swarm__port_config__init(s->spec->endpoint->ports[0]);
        s->spec->endpoint->ports[0]->target_port = 80;
        s->spec->endpoint->ports[0]->published_port = 8080;
        s->spec->endpoint->n_ports = 1;
    }
    return s;
}

static Swarm__Task *task_of(const Swarm__Service *s)
{
    Swarm__Task *t = calloc(1, sizeof *t);
    size_t len = swarm__task_spec__get_packed_size(s->spec->task);
    uint8_t *buf = malloc(len + 1);
    swarm__task__init(t);
    t->id = strdup("t");
    swarm__task_spec__pack(s->spec->task, buf);
    t->spec = swarm__task_spec__unpack(NULL, len, buf);
    free(buf);
    t->status = calloc(1, sizeof *t->status);
    swarm__task_status__init(t->status);
    return t;
}

TEST(service_vips_and_task_addresses)
{
    Swarm__Network *nets[2] = {net_new("ing", "ingress", "10.0.0.0/24", "10.0.0.1", "", 4097, true),
                               net_new("n1", "front", "10.0.1.0/24", "10.0.1.1", "", 4098, false)};
    struct alloc *a = alloc_new(nets, 2);
    Swarm__Service *s = svc_new("n1", "", true);
    Swarm__Endpoint *ep = NULL;
    bool changed = false;
    char err[SWARM_ERRMSG_SIZE];

    ASSERT_INT_EQ(alloc_service_endpoint(a, s, &ep, &changed, err), 0);
    ASSERT(changed);
    ASSERT_INT_EQ(ep->n_virtual_ips, 2);
    ASSERT_STR_EQ(ep->virtual_ips[0]->network_id, "n1");
    ASSERT_STR_EQ(ep->virtual_ips[0]->addr, "10.0.1.2/24");
    ASSERT_STR_EQ(ep->virtual_ips[1]->network_id, "ing");
    ASSERT_STR_EQ(ep->virtual_ips[1]->addr, "10.0.0.2/24");
    s->endpoint = ep;
    /* Asked again: the same endpoint, nothing taken. */
    ASSERT_INT_EQ(alloc_service_endpoint(a, s, &ep, &changed, err), 0);
    ASSERT(!changed);
    swarm__endpoint__free_unpacked(ep, NULL);

    Swarm__Task *t = task_of(s), *u = task_of(s);
    ASSERT(alloc_task_waits(t));
    ASSERT_INT_EQ(alloc_task(a, t, s, err), 0);
    ASSERT(!alloc_task_waits(t));
    ASSERT_INT_EQ(t->n_networks, 2);
    ASSERT_STR_EQ(t->networks[0]->network->id, "n1");
    ASSERT_STR_EQ(t->networks[0]->network->spec->annotations->name, "front");
    ASSERT_STR_EQ(t->networks[0]->addresses[0], "10.0.1.3/24");
    ASSERT_STR_EQ(t->networks[0]->aliases[0], "db");
    ASSERT_STR_EQ(t->networks[1]->addresses[0], "10.0.0.3/24");
    ASSERT(t->endpoint != NULL && t->endpoint->n_virtual_ips == 2);

    /* A new leader rebuilds the same sets from the stored objects: the
     * next address is the next one, and nothing is held twice. */
    struct alloc *b = alloc_new(nets, 2);
    alloc_mark_service(b, s);
    alloc_mark_task(b, t);
    ASSERT_INT_EQ(alloc_conflicts(b), 0);
    ASSERT_INT_EQ(alloc_task(b, u, s, err), 0);
    ASSERT_STR_EQ(u->networks[0]->addresses[0], "10.0.1.4/24");
    /* A terminal task holds nothing: its address goes to the next. */
    t->status->state = SWARM__TASK_STATE__TASK_STATE_FAILED;
    struct alloc *c = alloc_new(nets, 2);
    alloc_mark_service(c, s);
    alloc_mark_task(c, t);
    alloc_mark_task(c, u);
    Swarm__Task *v = task_of(s);
    ASSERT_INT_EQ(alloc_task(c, v, s, err), 0);
    ASSERT_STR_EQ(v->networks[0]->addresses[0], "10.0.1.3/24");
    /* Two owners are seen. */
    alloc_mark_task(c, u);
    ASSERT_INT_EQ(alloc_conflicts(c), 2);

    /* dnsrr: no VIPs, and the VIPs held go back. */
    free(s->spec->endpoint->mode);
    s->spec->endpoint->mode = strdup("dnsrr");
    ASSERT_INT_EQ(alloc_service_endpoint(a, s, &ep, &changed, err), 0);
    ASSERT(changed);
    ASSERT_INT_EQ(ep->n_virtual_ips, 0);
    swarm__endpoint__free_unpacked(ep, NULL);

    alloc_free(a);
    alloc_free(b);
    alloc_free(c);
    swarm__task__free_unpacked(t, NULL);
    swarm__task__free_unpacked(u, NULL);
    swarm__task__free_unpacked(v, NULL);
    swarm__service__free_unpacked(s, NULL);
    net_free(nets[0]);
    net_free(nets[1]);
}

TEST(task_exhausted_takes_nothing)
{
    Swarm__Network *nets[2] = {net_new("ing", "ingress", "10.0.0.0/24", "10.0.0.1", "", 4097, true),
                               net_new("n1", "full", "10.0.1.0/30", "10.0.1.1", "", 4098, false)};
    struct alloc *a = alloc_new(nets, 2);
    Swarm__Service *s = svc_new("n1", "dnsrr", true);
    char err[SWARM_ERRMSG_SIZE];
    Swarm__Task *t = task_of(s), *u = task_of(s);
    /* A /30 has one address besides the gateway. */
    ASSERT_INT_EQ(alloc_task(a, t, s, err), 0);
    ASSERT_STR_EQ(t->networks[0]->addresses[0], "10.0.1.2/30");
    ASSERT_INT_EQ(alloc_task(a, u, s, err), SWARM_EUNAVAIL);
    ASSERT_STR_EQ(err, "no available IP addresses on network full");
    ASSERT_INT_EQ(u->n_networks, 0);
    /* Its ingress address was given back. */
    char addr[ALLOC_CIDR_LEN];
    ASSERT_INT_EQ(alloc_take(a, "ing", addr, err), 0);
    ASSERT_STR_EQ(addr, "10.0.0.3/24");
    /* An unknown network. */
    free(u->spec->networks[0]->target);
    u->spec->networks[0]->target = strdup("gone");
    ASSERT_INT_EQ(alloc_task(a, u, s, err), SWARM_ENOTFOUND);
    ASSERT_STR_EQ(err, "network gone not found");
    alloc_free(a);
    swarm__task__free_unpacked(t, NULL);
    swarm__task__free_unpacked(u, NULL);
    swarm__service__free_unpacked(s, NULL);
    net_free(nets[0]);
    net_free(nets[1]);
}

TEST_MAIN()
