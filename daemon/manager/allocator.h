/* The network allocator, as pure logic (swarmkit's allocator and
 * libnetwork's IPAM): subnets for networks from the cluster's default pool,
 * a VXLAN VNI per network, a virtual IP per network for each service in vip
 * mode, an address per network for each task.
 *
 * Nothing here is kept between leaders: the leader's loop builds a struct
 * alloc from the store (alloc_new over the networks, then alloc_mark for
 * every address a service or a live task holds) and takes from it what the
 * new objects need, so an allocation is in use exactly when the store says
 * so. A task holds its addresses until it is terminal (observed state after
 * running) or deleted; a service its VIPs until it is removed or leaves the
 * network. Allocation is lowest free address first: deterministic, and a
 * freed address is reused.
 *
 * In each subnet the network address, the gateway (by default the first
 * address) and the broadcast address are never handed out; with an
 * --ip-range only addresses inside the range are.
 *
 * IPv4 only. Pure: no libuv, no store, no I/O. */
#ifndef SWARM_MANAGER_ALLOCATOR_H
#define SWARM_MANAGER_ALLOCATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "objects.pb-c.h"

#define ALLOC_VNI_FIRST 4097 /* as Docker's overlay driver */
#define ALLOC_DEFAULT_POOL "10.0.0.0/8"
#define ALLOC_DEFAULT_SUBNET_SIZE 24
#define ALLOC_CIDR_LEN 20 /* "255.255.255.255/32" and the NUL */
#define ALLOC_INGRESS_NAME "ingress"
#define ALLOC_INGRESS_SUBNET "10.0.0.0/24"

/* ---- addresses ---------------------------------------------------------- */

/* "a.b.c.d/n" -> network address (host bits cleared) and prefix length.
 * Returns 0, or SWARM_EINVAL with Docker's "invalid CIDR address: X". */
int alloc_cidr_parse(const char *cidr, uint32_t *net, unsigned *bits, char *errmsg);
/* "a.b.c.d" -> address; SWARM_EINVAL when it is none. */
int alloc_ip_parse(const char *ip, uint32_t *out);
void alloc_ip_format(uint32_t ip, char out[ALLOC_CIDR_LEN]);
void alloc_cidr_format(uint32_t ip, unsigned bits, char out[ALLOC_CIDR_LEN]);

/* ---- networks ----------------------------------------------------------- */

/* What the cluster says of the pool (swarm init --default-addr-pool):
 * `pools` may be empty (10.0.0.0/8) and `subnet_size` 0 (24). */
struct alloc_pool_config {
    char *const *pools;
    size_t n_pools;
    uint32_t subnet_size;
};

/* Check `--default-addr-pool`s and the mask length as `swarm init` does.
 * Returns 0, or SWARM_EINVAL with Docker's message. */
int alloc_pool_validate(const struct alloc_pool_config *pc, char *errmsg);

/* A new network's allocation: check the user's spec (driver overlay or
 * empty, at most one IPAM config, a valid subnet, a gateway and a range
 * inside it, no overlap with `existing` networks) and fill `ipam` (strings
 * malloc'd, the caller's: subnet always, gateway always, range as given)
 * and *vni (the lowest unused from ALLOC_VNI_FIRST). A spec without a subnet
 * gets the first subnet of the pool's size that overlaps no existing
 * network. Returns 0, SWARM_EINVAL (bad spec), SWARM_EEXIST (overlap) or
 * SWARM_EUNAVAIL (pool exhausted), with Docker's message in errmsg, or
 * SWARM_ENOMEM. */
int alloc_network(const Swarm__NetworkSpec *spec, const struct alloc_pool_config *pc,
                  Swarm__Network *const *existing, size_t n_existing, Swarm__IPAMConfig *ipam,
                  uint32_t *vni, char *errmsg);

/* ---- services and tasks ------------------------------------------------- */

struct alloc;

/* The in-use state over `networks` (borrowed: they must outlive it).
 * NULL when out of memory. */
struct alloc *alloc_new(Swarm__Network *const *networks, size_t n);
void alloc_free(struct alloc *a);

/* The network with this ID, or NULL. */
const Swarm__Network *alloc_network_get(const struct alloc *a, const char *network_id);
/* The ingress network (spec.ingress), or NULL. */
const Swarm__Network *alloc_ingress(const struct alloc *a);

/* Record that `addr` (CIDR or bare form) on `network_id` is held. Returns
 * 0, SWARM_EEXIST when it already was (two owners: the caller logs it),
 * SWARM_ENOTFOUND for an unknown network or an address outside it. */
int alloc_mark(struct alloc *a, const char *network_id, const char *addr);
/* Mark everything a stored service or task holds (a task only while live:
 * observed state up to running). Conflicts are counted, not fatal. */
void alloc_mark_service(struct alloc *a, const Swarm__Service *svc);
void alloc_mark_task(struct alloc *a, const Swarm__Task *t);
/* A node's ingress address (Node.attachments), held until the node is
 * removed. */
void alloc_mark_node(struct alloc *a, const Swarm__Node *n);
/* Give `n` its address on ingress (the routing mesh's source address on
 * that node) when it has none: 1 when it got one (n->attachments changed),
 * 0 when it had one or there is no ingress network, or SWARM_EUNAVAIL /
 * SWARM_ENOMEM with errmsg. */
int alloc_node_ingress(struct alloc *a, Swarm__Node *n, char *errmsg);
/* Give back an address taken or marked. */
void alloc_release(struct alloc *a, const char *network_id, const char *addr);
/* Take the lowest free address on `network_id`, in CIDR form
 * (10.0.1.2/24). SWARM_EUNAVAIL with "no available IP addresses on network
 * NAME" when none is left; SWARM_ENOTFOUND with "network ID not found". */
int alloc_take(struct alloc *a, const char *network_id, char out[ALLOC_CIDR_LEN], char *errmsg);
/* How many addresses alloc_mark found held twice. */
size_t alloc_conflicts(const struct alloc *a);

/* Does the service publish ports in ingress mode (the default mode)? */
bool alloc_publishes_ingress(const Swarm__ServiceSpec *spec);
/* True when a task of this spec waits for the allocator: it names networks
 * (or needs ingress) and has no attachment yet. */
bool alloc_task_waits(const Swarm__Task *t);

/* The endpoint a service should have: one VIP per network of its task
 * template (and ingress when it publishes ingress ports) in vip mode,
 * keeping the VIPs it already holds on those networks and taking new ones;
 * the VIPs of networks it left are released. *out is a new Endpoint (the
 * caller frees it), *changed says whether it differs from svc->endpoint.
 * Returns 0, or an alloc_take error (nothing taken then). */
int alloc_service_endpoint(struct alloc *a, const Swarm__Service *svc, Swarm__Endpoint **out,
                           bool *changed, char *errmsg);

/* Attach `t` (a new task of `svc`, svc may be NULL) to its networks: one
 * NetworkAttachment per network of its spec (plus ingress when the service
 * publishes ingress ports), each embedding a copy of the network, the
 * task's address and the aliases asked for; and t->endpoint from the
 * service. Returns 0, or an error with nothing taken and `t` unchanged
 * (errmsg: "no available IP addresses on network NAME", "network ID not
 * found"). */
int alloc_task(struct alloc *a, Swarm__Task *t, const Swarm__Service *svc, char *errmsg);

#endif
