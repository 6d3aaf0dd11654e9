/* The node's data plane (issue 12): overlay networks and task sandboxes,
 * made with the kernel's own mechanisms, driven through libmnl (netlink)
 * and libnftables.
 *
 * Layout on a node, as Docker's overlay driver:
 *   - per network used by a task of this node: a network namespace of its
 *     own holding a bridge (the network's gateway address on it) and a
 *     VXLAN device (VNI Network.vni, UDP 4789, learning off, ARP proxy on),
 *     created in the node's namespace with local = underlay_ip and moved
 *     into the network's namespace, so its UDP socket stays in the node's;
 *     networks share nothing, so they are isolated from each other;
 *   - remote tasks (NetworkEndpoint.node_addr != underlay_ip): a static FDB
 *     entry (the task's MAC -> its node) and a permanent neighbour entry
 *     (its address -> its MAC) on the VXLAN device; MAC = 02:42:a:b:c:d
 *     from the address a.b.c.d;
 *   - per task sandbox: a network namespace with lo up and, per attachment
 *     (Task.networks, in order), a veth pair whose one end is attached to
 *     the network's bridge and whose other end is eth0, eth1... in the
 *     sandbox with the attachment's address and derived MAC; a veth into
 *     the node's gateway bridge and the default route through it (unless
 *     all its networks are internal); an nftables table `ip swarmd`
 *     that DNATs connections to each vip-mode service's VIP (any port)
 *     across its ready endpoints, and rejects them when it has none.
 *
 * Ownership: every namespace and every link made in the node's namespace
 * is recorded under STATE/net/ before it is made (namespaces are
 * bind-mounted at STATE/net/ns/<name>, links are named in
 * STATE/net/links/<name>); whatever lives inside a namespace of ours is
 * ours. Nothing else is ever touched. netplane_cleanup_leftovers removes
 * what a previous run recorded.
 *
 * All calls are synchronous (netlink and nftables answer in microseconds)
 * and made from the loop's thread; namespaces are entered by short-lived
 * threads (setns), never by the caller's. Not thread-safe. */
#ifndef SWARM_NET_NETPLANE_H
#define SWARM_NET_NETPLANE_H

#include <stdbool.h>
#include <uv.h>

#include "err.h"

#include "dispatcher.pb-c.h"
#include "dns.h"
#include "objects.pb-c.h"

struct netplane;

struct netplane_config {
    uv_loop_t *loop;
    const char *state_dir;   /* swarmd's state dir: bookkeeping of what netplane created lives under it */
    const char *underlay_ip; /* this node's IP that VXLAN uses as local/remote (the node's advertise/status addr) */
    /* The embedded DNS server (net/dns.h) netplane runs on `loop`: every
     * sandbox gets its listener on NETPLANE_DNS_ADDR:53, answering from its
     * task's networks, and every map feeds its records. NULL: the defaults
     * (the node's /etc/resolv.conf). With no loop there is no DNS server
     * (the data plane alone, as in its tests). */
    const struct dnsd_config *dns;
};

/* Where a task's sandbox files go, relative to the files_dir given to
 * netplane_sandbox_create. */
#define NETPLANE_FILE_HOSTS "hosts"
#define NETPLANE_FILE_RESOLV "resolv.conf"
#define NETPLANE_FILE_HOSTNAME "hostname"
/* The embedded DNS server's address inside every sandbox (netdns). */
#define NETPLANE_DNS_ADDR "127.0.0.11"

/* 0 if this host can do networking (root, netns, veth, bridge, vxlan,
 * nftables: each is tried in a throwaway namespace); else SWARM_E* and why
 * in errmsg (SWARM_ERRMSG_SIZE): the node description's network_error. */
int netplane_probe(char *errmsg);

/* A netplane for this node; config strings are copied. Makes STATE/net/
 * (its ns dir is a shared mount point of its own while namespaces live in
 * it, so that the tasks' mount namespaces drop a sandbox's mount when it
 * goes; nothing is mounted while none does). 0, or SWARM_E*
 * with errmsg filled and nothing made. Free with netplane_close. */
int netplane_new(const struct netplane_config *cfg, struct netplane **out, char *errmsg);

/* What a previous run (kill -9) left, as recorded under STATE/net/: its
 * namespaces (with everything in them) and its links in the node's
 * namespace, removed. Call once, before the first sandbox. */
void netplane_cleanup_leftovers(struct netplane *np);

/* The node's view of one network (proto/dispatcher.proto), copied: replaces
 * the previous map of map->network->id. If the network is set up on this
 * node (a sandbox uses it), its FDB/neighbour entries change by exactly the
 * difference, and every sandbox attached to it gets its VIP rules redone.
 * A network not set up here is only remembered (set up with the first
 * sandbox). Endpoints with an empty addr or node_addr (not known yet) are
 * skipped. 0, or SWARM_EINVAL (no network, no id, a bad address) /
 * SWARM_EIO with errmsg filled; on error the previous map stays. */
int netplane_map_update(struct netplane *np, const Swarm__NetworkMap *map, char *errmsg);

/* Forget the map of `network_id`: its remote entries go, the sandboxes on
 * it lose its services' VIP rules. SWARM_ENOTFOUND if there is none. The
 * network itself stays while a sandbox uses it. */
int netplane_map_remove(struct netplane *np, const char *network_id);

/* Make the task's sandbox: a netns with lo up, one veth per attachment
 * (Task.networks) into that network's bridge on this node (set up now if
 * it is not yet), its addresses, its veth into the gateway bridge and the
 * default route through it (see below), VIP rules; files hosts/resolv.conf/hostname in files_dir (which
 * must exist). netns_path (PATH_MAX) receives the path the shim enters.
 * A task with no attachment: SWARM_EINVAL. On error nothing of the sandbox
 * is left (networks it set up and no other sandbox uses go too). The
 * hostname is ContainerSpec.hostname, or the task ID's first 12 chars. */
int netplane_sandbox_create(struct netplane *np, const Swarm__Task *task, const char *files_dir,
                            char *netns_path, char *errmsg);

/* Remove the task's sandbox (its namespace, veths, rules); networks that no
 * other sandbox uses go too. SWARM_ENOTFOUND if there is none. */
int netplane_sandbox_remove(struct netplane *np, const char *task_id);

/* The hostname netplane_sandbox_create gives `task` (out: 64 bytes). */
void netplane_task_hostname(const Swarm__Task *task, char *out);

/* The sandbox's namespace path (valid until it is removed), NULL if none. */
const char *netplane_sandbox_netns(struct netplane *np, const char *task_id);

/* The routing mesh (issue 13). A map of the ingress network (its spec says
 * ingress) with a published ingress port and this node's own endpoint (no
 * task, node_addr = underlay_ip: the node's ingress address, from the
 * allocator) sets it up: ingress's namespace as for any network, a veth
 * pair `swingress` (node's namespace, the node's ingress address) / `vting`
 * (in ingress's bridge), ip_forward on, and the table `ip swarmd_ingress`
 * in the node's namespace (netplan_ingress_ruleset: DNAT of the published
 * ports to the ready tasks, masquerade out of swingress). Each map redoes
 * the rules; a map with nothing published, or no map, tears it down. The
 * link and the table are recorded (STATE/net/links/swingress,
 * STATE/net/ingress) so that netplane_cleanup_leftovers removes them.
 *
 * Nodes whose underlay address is a loopback one (127.0.0.0/8) share a
 * host's namespace: neither the mesh nor host-mode ports are set up there
 * (said once in the log).
 *
 * Host-mode ports: `rules` (nft lines of the table's mesh chain, from the
 * agent's tasks on this node; NULL or "": none) replace the previous ones
 * in the same table. 0 or SWARM_E* with errmsg. */
int netplane_host_ports(struct netplane *np, const char *rules, char *errmsg);
/* Whether the mesh is set up on this node (tests). */
bool netplane_mesh_up(const struct netplane *np);

/* The gateway bridge (Docker's docker_gwbridge): a bridge `swgwbridge` in
 * the node's namespace, made with the first sandbox attached to a network
 * that is not internal and removed with the last. Its subnet is the one
 * given to netplane_gwbridge_subnet, else the first of 172.17-31.0.0/16,
 * 192.168.x.0/20 that overlaps no address or route of the node's namespace
 * and no subnet of the swarm's networks known here. Such a sandbox gets a
 * veth into it (eth<number of networks> inside, an address of its subnet,
 * the port isolated: sandboxes cannot talk through it) and its default
 * route through the bridge's gateway; the table `ip swarmd_gwbridge`
 * masquerades what leaves the subnet through any other interface and
 * forwards nothing from the bridge back into it; ip_forward on. A sandbox
 * whose networks are all internal gets neither, and no default route. The
 * bridge and the table are recorded (STATE/net/links/swgwbridge,
 * STATE/net/gwbridge) before they are made. Nodes on loopback addresses
 * (sharing one namespace) get no gateway bridge: their sandboxes keep a
 * default route through their first network's gateway, as before. */

/* Use `cidr` for every netplane's gateway bridge of this process (swarmd
 * --gwbridge-subnet), NULL: choose. 0, or SWARM_EINVAL with the reason in
 * errmsg and nothing changed. Call before the first netplane_new. */
int netplane_gwbridge_subnet(const char *cidr, char *errmsg);
/* The task's address on the gateway bridge (host order), 0 if it has none. */
uint32_t netplane_sandbox_gw_addr(struct netplane *np, const char *task_id);

/* How many networks are set up on this node (tests, metrics). */
int netplane_network_count(const struct netplane *np);

/* Remove everything it created (sandboxes, networks, records), then free.
 * NULL is a no-op. The DNS server's sockets close on the loop: the loop must
 * run on (until its handles are gone) for it to be freed. */
void netplane_close(struct netplane *np);

#endif
