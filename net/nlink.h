/* rtnetlink through libmnl, one request at a time (each waits for its
 * ack): links (bridge, veth, vxlan), moving links between namespaces,
 * addresses, routes, neighbour and FDB entries. A socket belongs to the
 * namespace it was opened in (netns_nl_open opens one in another). All
 * calls return 0 or -errno (the kernel's answer) and never write messages:
 * netplane.c says what failed. Addresses are host-order IPv4. */
#ifndef SWARM_NET_NLINK_H
#define SWARM_NET_NLINK_H

#include <stdbool.h>
#include <stdint.h>

struct mnl_socket;

/* Open a NETLINK_ROUTE socket in the caller's namespace; NULL and errno. */
struct mnl_socket *nlink_open(void);
void nlink_close(struct mnl_socket *nl);

/* ifindex of `name`, or -ENODEV. */
int nlink_link_index(struct mnl_socket *nl, const char *name);
int nlink_link_del(struct mnl_socket *nl, int ifindex);
/* Up; with mtu > 0 also set the MTU; with master >= 0 also enslave (0: none). */
int nlink_link_set(struct mnl_socket *nl, int ifindex, int mtu, int master, bool up);
/* Move the link into the namespace of `nsfd`. */
int nlink_link_set_ns(struct mnl_socket *nl, int ifindex, int nsfd);
int nlink_bridge_add(struct mnl_socket *nl, const char *name, int mtu);
/* VXLAN: id, UDP `port`, learning off, ARP proxy on, local `local`. */
int nlink_vxlan_add(struct mnl_socket *nl, const char *name, uint32_t vni, uint32_t local,
                    uint16_t port);
/* A veth pair: `name` here, `peer` in the namespace `peer_nsfd` with MAC
 * `peer_mac` (NULL: random); both with `mtu`. */
int nlink_veth_add(struct mnl_socket *nl, const char *name, const char *peer, int peer_nsfd,
                   const uint8_t *peer_mac, int mtu);
int nlink_addr_add(struct mnl_socket *nl, int ifindex, uint32_t ip, int prefix);
int nlink_route_default(struct mnl_socket *nl, uint32_t gateway);
/* Permanent neighbour entry ip -> mac on ifindex (add or delete). */
int nlink_neigh(struct mnl_socket *nl, bool add, int ifindex, uint32_t ip, const uint8_t mac[6]);
/* Static FDB entry mac -> VXLAN remote `dst` on the vxlan ifindex. */
int nlink_fdb(struct mnl_socket *nl, bool add, int ifindex, const uint8_t mac[6], uint32_t dst);
/* Call fn(ifindex, name) for every link; 0 or -errno. */
int nlink_link_foreach(struct mnl_socket *nl, void (*fn)(int ifindex, const char *name, void *arg),
                       void *arg);

/* Call fn(addr, prefix) for every IPv4 address of the namespace (with its
 * prefix) and every IPv4 route of any table but the local one (its
 * destination; a default route gives prefix 0); 0 or -errno. */
int nlink_prefix_foreach(struct mnl_socket *nl, void (*fn)(uint32_t addr, int prefix, void *arg),
                         void *arg);
/* Isolate the bridge port `ifindex` (IFLA_BRPORT_ISOLATED): isolated ports
 * of a bridge cannot talk to each other, only to the bridge and to
 * non-isolated ports. */
int nlink_brport_isolate(struct mnl_socket *nl, int ifindex);

/* Call fn for every neighbour entry of `family` (AF_INET: neighbours,
 * AF_BRIDGE: FDB) with its link, address (AF_INET: the neighbour's; FDB:
 * the VXLAN remote, 0 if none) and MAC; 0 or -errno. */
int nlink_neigh_foreach(struct mnl_socket *nl, int family,
                        void (*fn)(int ifindex, uint32_t ip, const uint8_t mac[6], void *arg),
                        void *arg);

#endif
