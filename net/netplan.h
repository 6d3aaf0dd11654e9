/* What the data plane sets up, decided without touching the kernel (pure,
 * unit-tested without root): addresses and MACs, the remote peers of a
 * network map and the difference between two sets of them, a sandbox's
 * nftables VIP ruleset and its /etc files. netplane.c applies the plans. */
#ifndef SWARM_NET_NETPLAN_H
#define SWARM_NET_NETPLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dispatcher.pb-c.h"
#include "objects.pb-c.h"

/* IPv4 dotted quad -> host-order address. 0, or SWARM_EINVAL. */
int netplan_parse_ip(const char *s, uint32_t *addr);
/* "a.b.c.d/N" -> address and prefix (0..32); "a.b.c.d" alone is /32 only
 * when `need_prefix` is false. 0, or SWARM_EINVAL. */
int netplan_parse_cidr(const char *s, uint32_t *addr, int *prefix, int need_prefix);
/* Docker's MAC for an address a.b.c.d: 02:42:a:b:c:d. */
void netplan_mac_from_ip(uint32_t ip, uint8_t mac[6]);
void netplan_format_ip(uint32_t ip, char out[16]);

/* A task on another node: its address, MAC and node (VXLAN remote). */
struct netplan_peer {
    uint32_t ip;
    uint32_t node;
    uint8_t mac[6];
};

/* The remote peers of `map` as seen from the node at `underlay`: every
 * endpoint whose node_addr differs, sorted by address, one per address
 * (the first wins). Endpoints with an address that does not parse are
 * skipped. *out is malloc'd (NULL when none). 0 or SWARM_ENOMEM. */
int netplan_peers(const Swarm__NetworkMap *map, uint32_t underlay, struct netplan_peer **out,
                  size_t *n);
/* The peers of `a` that are not in `b` with the same node and MAC (both
 * sorted as netplan_peers makes them), written to `out` (room for na).
 * Returns how many. */
size_t netplan_peers_minus(const struct netplan_peer *a, size_t na, const struct netplan_peer *b,
                           size_t nb, struct netplan_peer *out);

/* The nftables script (for nft_run_cmd_from_buffer) that makes a sandbox's
 * table `ip swarmd` from scratch, atomically replacing the one before: for
 * each vip-mode service of `maps` with a VIP, connections to the VIP (any
 * port) are DNATed across the service's ready endpoints on that network
 * (numgen random mod N), and rejected (TCP reset, else ICMP port
 * unreachable) when there is none. Returns a malloc'd string, NULL when out
 * of memory. */
char *netplan_vip_ruleset(const Swarm__NetworkMap *const *maps, size_t nmaps);
/* The script that removes the table (for a sandbox without services). */
#define NETPLAN_NFT_TABLE "swarmd"

/* The routing mesh (issue 13): the nftables script for the NODE's own
 * namespace (table `ip swarmd_ingress`, replacing the one before): a
 * connection to one of the node's addresses (not loopback) on a published
 * ingress port of a service of the ingress map `map` (tcp or udp), from
 * outside (prerouting) or from the node itself (output), is DNATed to
 * address:target_port of one of the service's ready tasks on ingress
 * (numgen random mod N), and masqueraded out of `ifname` (the node's veth
 * into the ingress network), so that replies come back through this node;
 * conntrack does the rest. A port without a ready task gets no rule (the
 * node answers as for a closed port). `host` (may be NULL) adds host-mode
 * rules, one per line: "tcp dport P dnat ip to A:T" or "tcp dport P
 * redirect to :T". Returns a malloc'd string, NULL when out of memory. */
char *netplan_ingress_ruleset(const Swarm__NetworkMap *map, const char *ifname, const char *host);
#define NETPLAN_INGRESS_TABLE "swarmd_ingress"
/* Host-mode ports of `tasks` (this node's running ones): the lines of the
 * mesh chain for netplan_ingress_ruleset's `host`. A task without networks
 * runs in the node's stack: "tcp dport P redirect to :T"; a task on
 * ingress gets "tcp dport P dnat ip to ADDR:T" (its ingress address); a
 * task on other networks only is reached through its gateway bridge
 * address gw[i] (host order; gw NULL or gw[i] 0: it has none, no rule).
 * malloc'd ("" when none), NULL when out of memory. */
char *netplan_host_rules(const Swarm__Task *const *tasks, const uint32_t *gw, size_t n);

/* The gateway bridge (Docker's docker_gwbridge): a bridge in the node's
 * namespace through which every task sandbox attached to a non-internal
 * network reaches the outside (its default route), masqueraded. */
#define NETPLAN_GW_BRIDGE "swgwbridge"
#define NETPLAN_GW_TABLE "swarmd_gwbridge"
/* An IPv4 prefix in use on the node or in the swarm. */
struct netplan_prefix {
    uint32_t addr;
    int prefix;
};
/* Do the two prefixes share an address? */
bool netplan_prefix_overlap(uint32_t a, int pa, uint32_t b, int pb);
/* The bridge's subnet, as Docker picks docker_gwbridge's: the first of
 * 172.17.0.0/16 ... 172.31.0.0/16, then 192.168.0.0/20 ... 192.168.240.0/20,
 * that overlaps none of `used` (the node's addresses and routes, the
 * swarm's network subnets; entries with prefix 0, default routes, are
 * ignored). 0, or SWARM_ENOTFOUND when all of them are taken. */
int netplan_gwbridge_pick(const struct netplan_prefix *used, size_t n, uint32_t *subnet,
                          int *prefix);
/* `swarmd --gwbridge-subnet CIDR`: an IPv4 network address with a prefix of
 * 8..29 (room for the gateway and tasks). 0, or SWARM_EINVAL with why in
 * errmsg (SWARM_ERRMSG_SIZE); nothing is set on error. */
int netplan_gwbridge_parse(const char *s, uint32_t *subnet, int *prefix, char *errmsg);
/* The node's table `ip swarmd_gwbridge` (replacing the one before):
 * traffic from the bridge's subnet leaving through any other interface is
 * masqueraded; nothing is forwarded from the bridge back into it (no
 * inter-task traffic through the bridge: Docker's icc=false). malloc'd,
 * NULL when out of memory. */
char *netplan_gwbridge_ruleset(uint32_t subnet, int prefix, const char *ifname);

/* The node's own endpoint in an ingress map: the one with no task whose
 * node is `underlay`. 0 with *ip, or SWARM_ENOTFOUND. */
int netplan_ingress_node_ip(const Swarm__NetworkMap *map, uint32_t underlay, uint32_t *ip);
/* Does the map have a service with a published ingress port? */
bool netplan_ingress_wanted(const Swarm__NetworkMap *map);

/* The task's /etc/hosts: Docker's localhost lines, then each attachment's
 * address with `hostname`. malloc'd, NULL when out of memory. */
char *netplan_hosts(const Swarm__Task *task, const char *hostname);
/* resolv.conf pointing at the embedded DNS server (Docker's). */
#define NETPLAN_RESOLV_CONF "nameserver 127.0.0.11\noptions ndots:0\n"
/* ContainerSpec.hostname, else the task ID's first 12 chars (out: 64). */
void netplan_hostname(const Swarm__Task *task, char out[64]);

#endif
