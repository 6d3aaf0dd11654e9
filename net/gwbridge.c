/* The gateway bridge on a node (netplane.h, "The gateway bridge"; Docker's
 * docker_gwbridge): a way out for the tasks in sandboxes, and the address
 * host-mode published ports of those tasks are DNATed to.
 *
 * Bridge, happy path (first user): the subnet (netplane_gwbridge_subnet's,
 * else netplan_gwbridge_pick over the node's addresses and routes, read
 * through netlink, and the swarm's subnets known here); record
 * links/swgwbridge, make the bridge in the node's namespace, the gateway
 * (first address) on it, up; ip_forward on; record STATE/net/gwbridge and
 * apply the table `ip swarmd_gwbridge` (netplan_gwbridge_ruleset). Any
 * failure: np_gw_down (everything made goes).
 *
 * Sandbox, happy path: the bridge (above); the lowest free address of the
 * subnet; a veth pair swgw<n> (node's namespace, into the bridge, the port
 * isolated, up) / eth<k> (in the sandbox, that address and its derived
 * MAC, up); the default route via the gateway. The veth goes with the
 * sandbox's namespace if swarmd dies (cleanup flushes its links). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "netplane_int.h"
#include "nft.h"
#include "nlink.h"
#include "vec.h"

#define NP_GW_RECORD "gwbridge" /* STATE/net/gwbridge: the node's table exists */

/* swarmd --gwbridge-subnet, for every netplane of the process (0: choose). */
static uint32_t np_gw_cfg_net;
static int np_gw_cfg_prefix;

int netplane_gwbridge_subnet(const char *cidr, char *errmsg)
{
    uint32_t net;
    int prefix;
    if (cidr == NULL) {
        np_gw_cfg_net = 0;
        np_gw_cfg_prefix = 0;
        return 0;
    }
    int rv = netplan_gwbridge_parse(cidr, &net, &prefix, errmsg);
    if (rv == 0) {
        np_gw_cfg_net = net;
        np_gw_cfg_prefix = prefix;
    }
    return rv;
}

bool np_gw_wanted(const struct netplane *np, const Swarm__Task *task)
{
    if ((np->underlay >> 24) == 127) {
        return false; /* nodes sharing one namespace: not a host of its own */
    }
    for (size_t i = 0; i < task->n_networks; i++) {
        const Swarm__Network *nw = task->networks[i]->network;
        if (nw != NULL && (nw->spec == NULL || !nw->spec->internal)) {
            return true;
        }
    }
    return false;
}

static const char *np_gw_del_script(void)
{
    return "table ip " NETPLAN_GW_TABLE "\ndelete table ip " NETPLAN_GW_TABLE "\n";
}

/* Tear the bridge down: its table, the bridge (its ports' veths stay with
 * their sandboxes until those go), the records. */
static void np_gw_down(struct netplane *np)
{
    char err[SWARM_ERRMSG_SIZE], path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", np->dir, NP_GW_RECORD);
    if (access(path, F_OK) == 0) {
        if (nft_run_in(-1, np_gw_del_script(), err) != 0) {
            log_warn("net", "gateway bridge: %s", err);
        }
        np_unrecord(np->dir, NP_GW_RECORD);
    }
    if (np->gw_index > 0) {
        (void)nlink_link_del(np->nl, np->gw_index);
        np->gw_index = 0;
        log_info("net", "gateway bridge %s removed", NETPLAN_GW_BRIDGE);
    }
    np_unrecord(np->linksdir, NETPLAN_GW_BRIDGE);
}

struct np_gw_used {
    VEC(struct netplan_prefix) v;
};

static void np_gw_prefix_cb(uint32_t addr, int prefix, void *arg)
{
    struct np_gw_used *u = arg;
    struct netplan_prefix p = {addr, prefix};
    (void)vec_push(&u->v, p);
}

static void np_gw_add_subnet(struct np_gw_used *u, const Swarm__Network *nw)
{
    struct netplan_prefix p;
    if (nw != NULL && nw->ipam != NULL &&
        netplan_parse_cidr(nw->ipam->subnet, &p.addr, &p.prefix, 1) == 0) {
        (void)vec_push(&u->v, p);
    }
}

/* The bridge's subnet: the configured one, else the first free. */
static int np_gw_subnet(struct netplane *np, const Swarm__Task *task, char *errmsg)
{
    if (np_gw_cfg_prefix > 0) {
        np->gw_net = np_gw_cfg_net;
        np->gw_prefix = np_gw_cfg_prefix;
        return 0;
    }
    struct np_gw_used u = {0};
    int rv = nlink_prefix_foreach(np->nl, np_gw_prefix_cb, &u);
    if (rv != 0) {
        vec_free(&u.v);
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "gateway bridge: reading the node's routes: %s",
                      strerror(-rv));
        return SWARM_EIO;
    }
    for (size_t i = 0; i < np->nets.len; i++) {
        const struct np_network *n = np->nets.items[i];
        np_gw_add_subnet(&u, n->map != NULL ? n->map->network : NULL);
    }
    for (size_t i = 0; i < task->n_networks; i++) {
        np_gw_add_subnet(&u, task->networks[i]->network);
    }
    rv = netplan_gwbridge_pick(u.v.items, u.v.len, &np->gw_net, &np->gw_prefix);
    vec_free(&u.v);
    if (rv != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "gateway bridge: no free subnet in 172.17-31.0.0/16 or 192.168.0.0/16 "
                      "(give one with --gwbridge-subnet)");
        return SWARM_ENOTFOUND;
    }
    return 0;
}

static int np_gw_up(struct netplane *np, const Swarm__Task *task, char *errmsg)
{
    char path[PATH_MAX], a[16];
    int rv;
    if (np->gw_index > 0) {
        return 0;
    }
    if ((rv = np_gw_subnet(np, task, errmsg)) != 0) {
        return rv;
    }
    int old = nlink_link_index(np->nl, NETPLAN_GW_BRIDGE);
    if (old > 0) {
        snprintf(path, sizeof path, "%s/%s", np->linksdir, NETPLAN_GW_BRIDGE);
        if (access(path, F_OK) != 0) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                          "gateway bridge: a link named %s exists already and is not ours",
                          NETPLAN_GW_BRIDGE);
            return SWARM_EEXIST;
        }
        (void)nlink_link_del(np->nl, old);
    }
    if ((rv = np_record(np->linksdir, NETPLAN_GW_BRIDGE)) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "gateway bridge: %s: %s", np->linksdir,
                      strerror(-rv));
        return SWARM_EIO;
    }
    rv = nlink_bridge_add(np->nl, NETPLAN_GW_BRIDGE, 0);
    int idx = rv == 0 ? nlink_link_index(np->nl, NETPLAN_GW_BRIDGE) : rv;
    np->gw_index = idx > 0 ? idx : 0;
    rv = idx < 0 ? idx : 0;
    if (rv == 0) {
        rv = nlink_addr_add(np->nl, idx, np->gw_net + 1, np->gw_prefix);
    }
    if (rv == 0) {
        rv = nlink_link_set(np->nl, idx, 0, 0, true);
    }
    if (rv == 0) {
        rv = np_write_sysctl("/proc/sys/net/ipv4/ip_forward", "1");
    }
    if (rv != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "gateway bridge %s: %s", NETPLAN_GW_BRIDGE,
                      strerror(-rv));
        rv = SWARM_EIO;
        goto err;
    }
    char *script = netplan_gwbridge_ruleset(np->gw_net, np->gw_prefix, NETPLAN_GW_BRIDGE);
    if (script == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
        rv = SWARM_ENOMEM;
        goto err;
    }
    if ((rv = np_record(np->dir, NP_GW_RECORD)) != 0) {
        free(script);
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "gateway bridge: %s: %s", np->dir, strerror(-rv));
        rv = SWARM_EIO;
        goto err;
    }
    rv = nft_run_in(-1, script, errmsg);
    free(script);
    if (rv != 0) {
        errmsg_wrapf(errmsg, SWARM_ERRMSG_SIZE, "gateway bridge rules");
        goto err;
    }
    netplan_format_ip(np->gw_net, a);
    log_info("net", "gateway bridge %s set up (%s/%d)", NETPLAN_GW_BRIDGE, a, np->gw_prefix);
    return 0;
err:
    np_gw_down(np);
    return rv;
}

/* The lowest address of the subnet no sandbox has (not the network, the
 * gateway or the broadcast address); 0 when all are taken. */
static uint32_t np_gw_alloc(const struct netplane *np)
{
    uint32_t size = np->gw_prefix >= 32 ? 1 : 1u << (32 - np->gw_prefix);
    for (uint32_t off = 2; off + 1 < size; off++) {
        uint32_t ip = np->gw_net + off;
        bool used = false;
        for (size_t i = 0; i < np->boxes.len && !used; i++) {
            used = np->boxes.items[i]->gw_ip == ip;
        }
        if (!used) {
            return ip;
        }
    }
    return 0;
}

int np_gw_attach(struct netplane *np, struct np_sandbox *sb, struct mnl_socket *snl,
                 const Swarm__Task *task, const char *eth, char *errmsg)
{
    uint8_t mac[6];
    int rv;
    sb->gw_held = true;
    np->gw_users++;
    if ((rv = np_gw_up(np, task, errmsg)) != 0) {
        return rv;
    }
    uint32_t ip = np_gw_alloc(np);
    if (ip == 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "gateway bridge: no free address");
        return SWARM_EUNAVAIL;
    }
    netplan_mac_from_ip(ip, mac);
    snprintf(sb->gw_veth, sizeof sb->gw_veth, "swgw%x", ++np->gw_seq);
    rv = nlink_veth_add(np->nl, sb->gw_veth, eth, sb->nsfd, mac, 0);
    if (rv != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "gateway bridge: veth %s: %s", sb->gw_veth,
                      strerror(-rv));
        sb->gw_veth[0] = '\0';
        return SWARM_EIO;
    }
    sb->gw_ip = ip;
    int vidx = nlink_link_index(np->nl, sb->gw_veth);
    int eidx = nlink_link_index(snl, eth);
    rv = vidx < 0 ? vidx : eidx < 0 ? eidx : 0;
    if (rv == 0) {
        rv = nlink_link_set(np->nl, vidx, 0, np->gw_index, true);
    }
    if (rv == 0) {
        rv = nlink_brport_isolate(np->nl, vidx);
    }
    if (rv == 0) {
        rv = nlink_addr_add(snl, eidx, ip, np->gw_prefix);
    }
    if (rv == 0) {
        rv = nlink_link_set(snl, eidx, 0, 0, true);
    }
    if (rv == 0) {
        rv = nlink_route_default(snl, np->gw_net + 1);
    }
    if (rv != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "gateway bridge: %s: %s", eth, strerror(-rv));
        return SWARM_EIO;
    }
    return 0;
}

void np_gw_detach(struct netplane *np, struct np_sandbox *sb)
{
    if (sb->gw_veth[0] != '\0') {
        int idx = nlink_link_index(np->nl, sb->gw_veth);
        if (idx > 0) {
            (void)nlink_link_del(np->nl, idx); /* its peer goes with it */
        }
        sb->gw_veth[0] = '\0';
    }
    sb->gw_ip = 0;
    if (sb->gw_held) {
        sb->gw_held = false;
        if (--np->gw_users == 0) {
            np_gw_down(np);
        }
    }
}

uint32_t netplane_sandbox_gw_addr(struct netplane *np, const char *task_id)
{
    for (size_t i = 0; i < np->boxes.len; i++) {
        if (strcmp(np->boxes.items[i]->task_id, task_id) == 0) {
            return np->boxes.items[i]->gw_ip;
        }
    }
    return 0;
}

void np_gw_cleanup_leftovers(struct netplane *np)
{
    char path[PATH_MAX], err[SWARM_ERRMSG_SIZE];
    snprintf(path, sizeof path, "%s/%s", np->dir, NP_GW_RECORD);
    if (access(path, F_OK) != 0) {
        return;
    }
    if (nft_run_in(-1, np_gw_del_script(), err) == 0) {
        log_info("net", "removed leftover table ip %s", NETPLAN_GW_TABLE);
    }
    np_unrecord(np->dir, NP_GW_RECORD);
}
