/* The routing mesh on a node (issue 13; netplane.h, "The routing mesh"):
 * the node's veth into the ingress network and its nftables table
 * `ip swarmd_ingress` (the ruleset is netplan_ingress_ruleset's).
 *
 * Set-up, happy path: hold the ingress network (users++) and set it up as
 * any network; record links/swingress, make the veth pair vting (in
 * ingress's bridge) / swingress (moved into the node's namespace, the MAC
 * derived from the node's ingress address so the other nodes' neighbour
 * entries match); the node's ingress address on swingress, up;
 * ip_forward on. Then record STATE/net/ingress and apply the table. Any
 * failure: np_ingress_down (everything made goes). */
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

#define NP_ING_NODE "swingress"  /* the node's end, in the node's namespace */
#define NP_ING_NET "vting"       /* its peer in ingress's bridge */
#define NP_ING_RECORD "ingress"  /* STATE/net/ingress: the node's table exists */

bool np_is_ingress(const struct np_network *n)
{
    return n->map != NULL && n->map->network != NULL && n->map->network->spec != NULL &&
           n->map->network->spec->ingress;
}

/* Tear the mesh down on this node: its table, its veth, its hold on the
 * ingress network. */
void np_ingress_down(struct netplane *np)
{
    char err[SWARM_ERRMSG_SIZE];
    if (np->ing_nft != NULL) {
        if (nft_run_in(-1, "table ip " NETPLAN_INGRESS_TABLE "\ndelete table ip " NETPLAN_INGRESS_TABLE "\n",
                       err) != 0) {
            log_warn("net", "routing mesh: %s", err);
        }
        free(np->ing_nft);
        np->ing_nft = NULL;
    }
    np_unrecord(np->dir, NP_ING_RECORD);
    struct np_network *n = np->ing;
    if (n == NULL) {
        return;
    }
    np->ing = NULL;
    if (n->nl != NULL) {
        int idx = nlink_link_index(n->nl, NP_ING_NET);
        if (idx > 0) {
            (void)nlink_link_del(n->nl, idx); /* its peer goes with it */
        }
    }
    np_unrecord(np->linksdir, NP_ING_NODE);
    if (--n->users == 0 && n->up) {
        np_network_down(np, n);
        log_info("net", "network %s removed from this node", n->id);
    }
    log_info("net", "routing mesh removed from this node");
    np_network_maybe_free(np, n);
}

int np_write_sysctl(const char *path, const char *value)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    ssize_t k = write(fd, value, strlen(value));
    int e = k < 0 ? -errno : 0;
    close(fd);
    return e;
}

/* Set up the node's end: ingress's namespace (as for any network), a veth
 * pair into its bridge, the node's ingress address on the node's end,
 * forwarding on. */
static int np_ingress_up(struct netplane *np, struct np_network *n, uint32_t ip, char *errmsg)
{
    uint32_t sub;
    int prefix, rv;
    uint8_t mac[6];
    n->users++;
    np->ing = n;
    np->ing_ip = ip;
    if ((rv = np_network_up(np, n, n->map->network, errmsg)) != 0) {
        goto err;
    }
    (void)netplan_parse_cidr(n->map->network->ipam->subnet, &sub, &prefix, 1);
    netplan_mac_from_ip(ip, mac);
    int selfns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (selfns < 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "routing mesh: own namespace: %s", strerror(errno));
        rv = SWARM_EIO;
        goto err;
    }
    int old = nlink_link_index(np->nl, NP_ING_NODE);
    if (old > 0) {
        char rec[PATH_MAX];
        snprintf(rec, sizeof rec, "%s/%s", np->linksdir, NP_ING_NODE);
        if (access(rec, F_OK) != 0) {
            close(selfns);
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                          "routing mesh: a link named %s exists already and is not ours", NP_ING_NODE);
            rv = SWARM_EEXIST;
            goto err;
        }
        (void)nlink_link_del(np->nl, old);
    }
    rv = np_record(np->linksdir, NP_ING_NODE);
    if (rv == 0) {
        rv = nlink_veth_add(n->nl, NP_ING_NET, NP_ING_NODE, selfns, mac, NP_MTU);
    }
    close(selfns);
    int vidx = rv == 0 ? nlink_link_index(n->nl, NP_ING_NET) : rv;
    int hidx = rv == 0 ? nlink_link_index(np->nl, NP_ING_NODE) : rv;
    rv = vidx < 0 ? vidx : hidx < 0 ? hidx : 0;
    if (rv == 0) {
        rv = nlink_link_set(n->nl, vidx, 0, n->br_index, true);
    }
    if (rv == 0) {
        rv = nlink_addr_add(np->nl, hidx, ip, prefix);
    }
    if (rv == 0) {
        rv = nlink_link_set(np->nl, hidx, 0, 0, true);
    }
    if (rv == 0) {
        rv = np_write_sysctl("/proc/sys/net/ipv4/ip_forward", "1");
    }
    if (rv != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "routing mesh: %s: %s", NP_ING_NODE, strerror(-rv));
        rv = SWARM_EIO;
        goto err;
    }
    char a[16];
    netplan_format_ip(ip, a);
    log_info("net", "routing mesh set up on this node (ingress address %s)", a);
    return 0;
err:
    np_ingress_down(np);
    return rv;
}

/* Make the mesh follow the ingress map: set up when it has a published
 * ingress port and this node's endpoint, rules redone when they change,
 * torn down when nothing is published any more. */
int np_ingress_sync(struct netplane *np, char *errmsg)
{
    /* Nodes on loopback addresses share one host's namespace (a test or a
     * demo without root namespaces): none of them is a host of its own, and
     * the mesh (a link, a route, forwarding and a table in the node's
     * namespace) would be made by each of them in that same namespace. It
     * needs a namespace per node: not set up there. */
    if ((np->underlay >> 24) == 127) {
        if (!np->ing_skip_logged && (np->host_rules != NULL || np->nets.len > 0)) {
            np->ing_skip_logged = true;
            log_info("net", "routing mesh and host-mode ports not set up: the node's address is "
                            "a loopback address (nodes sharing this host's namespace)");
        }
        return 0;
    }
    struct np_network *n = np->ing;
    for (size_t i = 0; n == NULL && i < np->nets.len; i++) {
        if (np_is_ingress(np->nets.items[i])) {
            n = np->nets.items[i];
        }
    }
    uint32_t ip = 0;
    bool want = n != NULL && n->map != NULL && np_is_ingress(n) &&
                (netplan_ingress_wanted(n->map) || np->host_rules != NULL) &&
                netplan_ingress_node_ip(n->map, np->underlay, &ip) == 0;
    if (!want && np->host_rules != NULL) {
        /* Host-mode ports alone need only the table. */
        if (np->ing != NULL) {
            np_ingress_down(np);
        }
        n = NULL;
    } else if (!want) {
        if (np->ing != NULL) {
            np_ingress_down(np);
        }
        return 0;
    }
    int rv;
    if (n != NULL && np->ing != NULL && np->ing_ip != ip) {
        np_ingress_down(np); /* the node's address changed */
    }
    if (n != NULL && np->ing == NULL && (rv = np_ingress_up(np, n, ip, errmsg)) != 0) {
        return rv;
    }
    char *script = netplan_ingress_ruleset(np->ing != NULL ? np->ing->map : NULL, NP_ING_NODE,
                                           np->host_rules);
    if (script == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
        return SWARM_ENOMEM;
    }
    if (np->ing_nft != NULL && strcmp(np->ing_nft, script) == 0) {
        free(script);
        return 0;
    }
    if ((rv = np_record(np->dir, NP_ING_RECORD)) != 0) {
        free(script);
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "routing mesh: %s: %s", np->dir, strerror(-rv));
        return SWARM_EIO;
    }
    rv = nft_run_in(-1, script, errmsg);
    free(np->ing_nft);
    np->ing_nft = rv == 0 ? script : NULL;
    if (rv != 0) {
        free(script);
        errmsg_wrapf(errmsg, SWARM_ERRMSG_SIZE, "routing mesh rules");
    }
    return rv;
}

int netplane_host_ports(struct netplane *np, const char *rules, char *errmsg)
{
    char *copy = NULL;
    if (rules != NULL && rules[0] != '\0' && (copy = strdup(rules)) == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
        return SWARM_ENOMEM;
    }
    if ((copy == NULL) == (np->host_rules == NULL) &&
        (copy == NULL || strcmp(copy, np->host_rules) == 0)) {
        free(copy);
        return 0;
    }
    free(np->host_rules);
    np->host_rules = copy;
    if (copy == NULL && np->ing == NULL) {
        np_ingress_down(np); /* the table alone */
        return 0;
    }
    return np_ingress_sync(np, errmsg);
}

bool netplane_mesh_up(const struct netplane *np)
{
    return np->ing != NULL;
}

void np_ingress_cleanup_leftovers(struct netplane *np)
{
    char path[PATH_MAX], err[SWARM_ERRMSG_SIZE];
    snprintf(path, sizeof path, "%s/%s", np->dir, NP_ING_RECORD);
    if (access(path, F_OK) != 0) {
        return;
    }
    if (nft_run_in(-1, "table ip " NETPLAN_INGRESS_TABLE "\ndelete table ip " NETPLAN_INGRESS_TABLE "\n",
                   err) == 0) {
        log_info("net", "removed leftover table ip %s", NETPLAN_INGRESS_TABLE);
    }
    np_unrecord(np->dir, NP_ING_RECORD);
}
