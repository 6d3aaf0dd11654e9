/* The node's data plane (netplane.h): applies what netplan.c decides.
 *
 * Bookkeeping under STATE/net/:
 *   ns/n-<network id>   a network's namespace (bridge br0 + VXLAN swvx<vni>)
 *   ns/t-<task id>      a task's sandbox
 *   links/<name>        a link being made in the node's namespace (the
 *                       VXLAN device, until it is moved into its network's
 *                       namespace)
 * Each record is made before the thing it names, and removed after it.
 *
 * Network set-up, happy path: record + make its namespace; a netlink socket
 * in it; bridge br0 (MTU 1450) with the gateway address, up; record
 * links/swvx<vni>, make the VXLAN device in the node's namespace, move it
 * into the network's, drop the record; enslave it to br0, up; install the
 * remote peers of the network's map. Any failure: everything made so far
 * goes (np_network_down), the error goes up.
 *
 * Sandbox, happy path: record + make its namespace, lo up; per attachment:
 * the network (set up if needed), a veth pair vt<n> (network side, into
 * br0) / ethN (sandbox side, address + derived MAC), up; the veth into the
 * gateway bridge and the default route through it (gwbridge.c); /etc
 * files; VIP rules. Any failure: np_sandbox_down. */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "netns.h"
#include "nft.h"
#include "netplan.h"
#include "netplane.h"
#include "netplane_int.h"
#include "nlink.h"
#include "pbcopy.h"
#include "vec.h"

/* ---- records ----------------------------------------------------------- */

int np_record(const char *dir, const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        return -errno;
    }
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    close(fd);
    return 0;
}

void np_unrecord(const char *dir, const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    (void)unlink(path);
}

/* ---- namespaces ---------------------------------------------------------- */

/* nsdir is a shared bind mount of its own only while namespaces live in it
 * (so that tasks' mount namespaces, slaves of it, drop a namespace's mount
 * when we unmount it): a node without sandboxes leaves no mount behind,
 * even when killed. Left mounted while something else is in it. */
static void np_nsdir_release(struct netplane *np)
{
    DIR *d = opendir(np->nsdir);
    struct dirent *de;
    bool empty = d != NULL;
    while (d != NULL && (de = readdir(d)) != NULL) {
        empty = empty && (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0);
    }
    if (d != NULL) {
        closedir(d);
    }
    for (int i = 0; empty && i < 8 && umount2(np->nsdir, MNT_DETACH) == 0; i++) {
    }
}

static int np_ns_make(struct netplane *np, const char *path)
{
    int rv = np->ns_live == 0 ? netns_dir_share(np->nsdir) : 0;
    if (rv == 0 && (rv = netns_create(path)) == 0) {
        np->ns_live++;
        return 0;
    }
    if (np->ns_live == 0) {
        np_nsdir_release(np);
    }
    return rv;
}

static void np_ns_drop(struct netplane *np, const char *path)
{
    netns_remove(path);
    if (--np->ns_live == 0) {
        np_nsdir_release(np);
    }
}

/* ---- networks ---------------------------------------------------------- */

static struct np_network *np_network_find(struct netplane *np, const char *id)
{
    for (size_t i = 0; i < np->nets.len; i++) {
        if (strcmp(np->nets.items[i]->id, id) == 0) {
            return np->nets.items[i];
        }
    }
    return NULL;
}

struct np_network *np_network_add(struct netplane *np, const char *id)
{
    struct np_network *n = np_network_find(np, id);
    if (n != NULL) {
        return n;
    }
    n = calloc(1, sizeof *n);
    if (n == NULL || (n->id = strdup(id)) == NULL || vec_push(&np->nets, n) != 0) {
        if (n != NULL) {
            free(n->id);
        }
        free(n);
        return NULL;
    }
    n->nsfd = -1;
    snprintf(n->nspath, sizeof n->nspath, "%s/n-%s", np->nsdir, id);
    return n;
}

/* Drop the network's struct once nothing needs it (no map, no sandbox). */
void np_network_maybe_free(struct netplane *np, struct np_network *n)
{
    if (n->up || n->map != NULL || n->users > 0) {
        return;
    }
    for (size_t i = 0; i < np->nets.len; i++) {
        if (np->nets.items[i] == n) {
            np->nets.items[i] = np->nets.items[--np->nets.len];
            break;
        }
    }
    free(n->id);
    free(n);
}

static void np_collect_cb(int ifindex, const char *name, void *arg)
{
    (void)name;
    VEC(int) *v = arg;
    if (ifindex != 1) { /* lo stays: it goes with the namespace */
        (void)vec_push(v, ifindex);
    }
}

/* Delete every link of the namespace behind `nl` but lo: the VXLAN device
 * must go now (it holds its VNI on the node), not when the kernel gets to
 * tearing the namespace down. */
static void np_links_flush(struct mnl_socket *nl)
{
    VEC(int) v = {0};
    if (nlink_link_foreach(nl, np_collect_cb, &v) == 0) {
        for (size_t i = 0; i < v.len; i++) {
            (void)nlink_link_del(nl, v.items[i]);
        }
    }
    vec_free(&v);
}

void np_network_down(struct netplane *np, struct np_network *n)
{
    if (n->nl != NULL) {
        np_links_flush(n->nl);
        nlink_close(n->nl);
        n->nl = NULL;
    }
    if (n->nsfd >= 0) {
        close(n->nsfd);
        n->nsfd = -1;
    }
    if (n->ns_made) {
        np_ns_drop(np, n->nspath);
        n->ns_made = false;
    }
    free(n->peers);
    n->peers = NULL;
    n->npeers = 0;
    n->up = false;
}

/* Install the difference between the peers installed and those of the
 * network's current map. */
static int np_network_sync(struct netplane *np, struct np_network *n, char *errmsg)
{
    struct netplan_peer *want = NULL, *tmp = NULL;
    size_t nwant = 0;
    int rv = 0;
    if (n->map != NULL && (rv = netplan_peers(n->map, np->underlay, &want, &nwant)) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
        return rv;
    }
    size_t cap = n->npeers > nwant ? n->npeers : nwant;
    if (cap > 0 && (tmp = calloc(cap, sizeof *tmp)) == NULL) {
        free(want);
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
        return SWARM_ENOMEM;
    }
    size_t k = netplan_peers_minus(n->peers, n->npeers, want, nwant, tmp);
    for (size_t i = 0; i < k; i++) {
        (void)nlink_fdb(n->nl, false, n->vx_index, tmp[i].mac, tmp[i].node);
        (void)nlink_neigh(n->nl, false, n->vx_index, tmp[i].ip, tmp[i].mac);
    }
    k = netplan_peers_minus(want, nwant, n->peers, n->npeers, tmp);
    for (size_t i = 0; i < k && rv == 0; i++) {
        char ip[16];
        int e = nlink_fdb(n->nl, true, n->vx_index, tmp[i].mac, tmp[i].node);
        if (e == 0) {
            e = nlink_neigh(n->nl, true, n->vx_index, tmp[i].ip, tmp[i].mac);
        }
        if (e != 0) {
            netplan_format_ip(tmp[i].ip, ip);
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                          "network %s: forwarding entry for %s: %s", n->id, ip, strerror(-e));
            rv = SWARM_EIO;
        }
    }
    free(tmp);
    /* What is installed now is what we want, short of a failed add: keep
     * `want` so that the next sync retries it. */
    free(n->peers);
    n->peers = want;
    n->npeers = nwant;
    return rv;
}

/* The parameters of a network from an attachment (or its map). */
static int np_network_params(const Swarm__Network *nw, uint32_t *gw, int *prefix, char *errmsg)
{
    uint32_t subnet;
    if (nw == NULL || nw->ipam == NULL ||
        netplan_parse_cidr(nw->ipam->subnet, &subnet, prefix, 1) != 0 ||
        netplan_parse_ip(nw->ipam->gateway, gw) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "network %s: no valid subnet and gateway",
                      nw != NULL && nw->id != NULL ? nw->id : "");
        return SWARM_EINVAL;
    }
    if (nw->vni == 0 || nw->vni > 0xffffff) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "network %s: invalid VNI %u", nw->id, nw->vni);
        return SWARM_EINVAL;
    }
    return 0;
}

/* Make the VXLAN device in the node's namespace and move it into the
 * network's; recorded while it is in the node's. */
static int np_vxlan_make(struct netplane *np, struct np_network *n, uint32_t vni, char *errmsg)
{
    char name[IF_NAMESIZE];
    snprintf(name, sizeof name, "swvx%u", vni);
    int idx = nlink_link_index(np->nl, name);
    if (idx > 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "network %s: a link named %s exists already and is not ours", n->id, name);
        return SWARM_EEXIST;
    }
    int rv = np_record(np->linksdir, name);
    if (rv == 0) {
        rv = nlink_vxlan_add(np->nl, name, vni, np->underlay, NP_VXLAN_PORT);
        if (rv != 0) {
            np_unrecord(np->linksdir, name);
        }
    }
    if (rv != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "network %s: VXLAN %u: %s", n->id, vni,
                      strerror(-rv));
        return SWARM_EIO;
    }
    idx = nlink_link_index(np->nl, name);
    rv = idx > 0 ? nlink_link_set_ns(np->nl, idx, n->nsfd) : idx;
    if (rv != 0) {
        if (idx > 0) {
            (void)nlink_link_del(np->nl, idx);
        }
        np_unrecord(np->linksdir, name);
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "network %s: moving %s: %s", n->id, name,
                      strerror(-rv));
        return SWARM_EIO;
    }
    np_unrecord(np->linksdir, name);
    n->vx_index = nlink_link_index(n->nl, name);
    return n->vx_index > 0 ? 0 : SWARM_EIO;
}

int np_network_up(struct netplane *np, struct np_network *n, const Swarm__Network *nw,
                         char *errmsg)
{
    uint32_t gw;
    int prefix, rv;
    if (n->up) {
        return 0;
    }
    if ((rv = np_network_params(nw, &gw, &prefix, errmsg)) != 0) {
        return rv;
    }
    if ((rv = np_ns_make(np, n->nspath)) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "network %s: namespace %s: %s", n->id,
                      n->nspath, strerror(-rv));
        return SWARM_EIO;
    }
    n->ns_made = true;
    n->nsfd = netns_open(n->nspath);
    n->nl = n->nsfd >= 0 ? netns_nl_open(n->nsfd) : NULL;
    if (n->nl == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "network %s: netlink in its namespace: %s",
                      n->id, strerror(errno));
        rv = SWARM_EIO;
        goto err;
    }
    rv = nlink_bridge_add(n->nl, NP_BRIDGE, NP_MTU);
    n->br_index = rv == 0 ? nlink_link_index(n->nl, NP_BRIDGE) : rv;
    if (n->br_index < 0 || (rv = nlink_addr_add(n->nl, n->br_index, gw, prefix)) != 0 ||
        (rv = nlink_link_set(n->nl, n->br_index, 0, 0, true)) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "network %s: bridge: %s", n->id,
                      strerror(n->br_index < 0 ? -n->br_index : -rv));
        rv = SWARM_EIO;
        goto err;
    }
    if ((rv = np_vxlan_make(np, n, nw->vni, errmsg)) != 0) {
        goto err;
    }
    if ((rv = nlink_link_set(n->nl, n->vx_index, 0, n->br_index, true)) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "network %s: VXLAN into the bridge: %s", n->id,
                      strerror(-rv));
        rv = SWARM_EIO;
        goto err;
    }
    n->up = true;
    if ((rv = np_network_sync(np, n, errmsg)) != 0) {
        goto err;
    }
    log_info("net", "network %s set up (VNI %u)", n->id, nw->vni);
    return 0;
err:
    np_network_down(np, n);
    return rv;
}

/* ---- sandboxes --------------------------------------------------------- */

static struct np_sandbox *np_sandbox_find(struct netplane *np, const char *task_id, size_t *pos)
{
    for (size_t i = 0; i < np->boxes.len; i++) {
        if (strcmp(np->boxes.items[i]->task_id, task_id) == 0) {
            if (pos != NULL) {
                *pos = i;
            }
            return np->boxes.items[i];
        }
    }
    return NULL;
}

/* Give the sandbox the VIP rules of the maps of its networks (if changed). */
static int np_sandbox_vips(struct np_sandbox *sb, char *errmsg)
{
    const Swarm__NetworkMap *maps[64];
    size_t n = 0;
    for (size_t i = 0; i < sb->natt && n < sizeof maps / sizeof *maps; i++) {
        if (sb->att[i].net->map != NULL) {
            maps[n++] = sb->att[i].net->map;
        }
    }
    char *script = netplan_vip_ruleset(maps, n);
    if (script == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
        return SWARM_ENOMEM;
    }
    if (sb->nft != NULL && strcmp(sb->nft, script) == 0) {
        free(script);
        return 0;
    }
    int rv = nft_run_in(sb->nsfd, script, errmsg);
    free(sb->nft);
    sb->nft = rv == 0 ? script : NULL;
    if (rv != 0) {
        free(script);
        errmsg_wrapf(errmsg, SWARM_ERRMSG_SIZE, "task %s: VIP rules", sb->task_id);
    }
    return rv;
}

/* Undo a sandbox: its veths (network side), its namespace, the networks
 * left without a user. */
static void np_sandbox_down(struct netplane *np, struct np_sandbox *sb)
{
    if (np->dns != NULL) {
        dnsd_sandbox_remove(np->dns, sb->task_id); /* nothing if it had none */
    }
    np_gw_detach(np, sb);
    for (size_t i = 0; i < sb->natt; i++) {
        struct np_network *n = sb->att[i].net;
        if (n == NULL) {
            continue;
        }
        if (sb->att[i].veth[0] != '\0' && n->nl != NULL) {
            int idx = nlink_link_index(n->nl, sb->att[i].veth);
            if (idx > 0) {
                (void)nlink_link_del(n->nl, idx);
            }
        }
        if (--n->users == 0 && n->up) {
            np_network_down(np, n);
            log_info("net", "network %s removed from this node", n->id);
        }
        np_network_maybe_free(np, n);
    }
    if (sb->nsfd >= 0) {
        close(sb->nsfd);
    }
    if (sb->nspath[0] != '\0') {
        np_ns_drop(np, sb->nspath);
    }
    free(sb->att);
    free(sb->nft);
    free(sb->task_id);
    free(sb);
}

/* Check the attachments before anything is made. */
static int np_sandbox_check(const Swarm__Task *task, char *errmsg)
{
    if (task->id == NULL || task->id[0] == '\0' || strchr(task->id, '/') != NULL ||
        strlen(task->id) > 128) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "invalid task id");
        return SWARM_EINVAL;
    }
    if (task->n_networks == 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "task %s has no network", task->id);
        return SWARM_EINVAL;
    }
    for (size_t i = 0; i < task->n_networks; i++) {
        const Swarm__NetworkAttachment *a = task->networks[i];
        uint32_t ip, gw;
        int prefix, p2;
        if (a->network == NULL || a->network->id == NULL || a->network->id[0] == '\0' ||
            strchr(a->network->id, '/') != NULL) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "task %s: attachment %zu has no network",
                          task->id, i);
            return SWARM_EINVAL;
        }
        if (np_network_params(a->network, &gw, &p2, errmsg) != 0) {
            return SWARM_EINVAL;
        }
        if (a->n_addresses == 0 || netplan_parse_cidr(a->addresses[0], &ip, &prefix, 0) != 0) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "task %s: network %s: invalid address \"%s\"",
                          task->id, a->network->id, a->n_addresses > 0 ? a->addresses[0] : "");
            return SWARM_EINVAL;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(task->networks[j]->network->id, a->network->id) == 0) {
                errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "task %s: network %s attached twice",
                              task->id, a->network->id);
                return SWARM_EINVAL;
            }
        }
    }
    return 0;
}

/* Attachment i: the veth pair and the sandbox side's address. */
static int np_sandbox_attach(struct netplane *np, struct np_sandbox *sb, struct mnl_socket *snl,
                             const Swarm__NetworkAttachment *a, size_t i, char *errmsg)
{
    struct np_network *n = np_network_add(np, a->network->id);
    if (n == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
        return SWARM_ENOMEM;
    }
    sb->att[i].net = n;
    n->users++;
    int rv = np_network_up(np, n, a->network, errmsg);
    if (rv != 0) {
        return rv;
    }
    uint32_t ip;
    int prefix;
    uint8_t mac[6];
    char eth[IF_NAMESIZE];
    if (netplan_parse_cidr(a->addresses[0], &ip, &prefix, 0) != 0 || prefix == 32) {
        /* No prefix given: the network's. */
        uint32_t sub;
        (void)netplan_parse_cidr(a->network->ipam->subnet, &sub, &prefix, 1);
    }
    netplan_mac_from_ip(ip, mac);
    snprintf(eth, sizeof eth, "eth%zu", i);
    snprintf(sb->att[i].veth, sizeof sb->att[i].veth, "vt%x", ++n->veth_seq);
    rv = nlink_veth_add(n->nl, sb->att[i].veth, eth, sb->nsfd, mac, NP_MTU);
    if (rv != 0) {
        sb->att[i].veth[0] = '\0';
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "network %s: veth: %s", n->id, strerror(-rv));
        return SWARM_EIO;
    }
    int vidx = nlink_link_index(n->nl, sb->att[i].veth);
    int eidx = nlink_link_index(snl, eth);
    rv = vidx < 0 ? vidx : eidx < 0 ? eidx : 0;
    if (rv == 0) {
        rv = nlink_link_set(n->nl, vidx, 0, n->br_index, true);
    }
    if (rv == 0) {
        rv = nlink_addr_add(snl, eidx, ip, prefix);
    }
    if (rv == 0) {
        rv = nlink_link_set(snl, eidx, 0, 0, true);
    }
    if (rv != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "network %s: %s: %s", n->id, eth,
                      strerror(-rv));
        return SWARM_EIO;
    }
    return 0;
}

static int np_write_file(const char *dir, const char *name, const char *text, char *errmsg)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "we");
    if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "%s: %s", path, strerror(errno));
        return SWARM_EIO;
    }
    (void)chmod(path, 0644);
    return 0;
}

static int np_sandbox_files(const Swarm__Task *task, const char *dir, char *errmsg)
{
    char host[64], line[80];
    netplan_hostname(task, host);
    char *hosts = netplan_hosts(task, host);
    if (hosts == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
        return SWARM_ENOMEM;
    }
    snprintf(line, sizeof line, "%s\n", host);
    int rv = np_write_file(dir, NETPLANE_FILE_HOSTS, hosts, errmsg);
    free(hosts);
    if (rv == 0) {
        rv = np_write_file(dir, NETPLANE_FILE_RESOLV, NETPLAN_RESOLV_CONF, errmsg);
    }
    if (rv == 0) {
        rv = np_write_file(dir, NETPLANE_FILE_HOSTNAME, line, errmsg);
    }
    return rv;
}

/* The sandbox's DNS listener, answering from the task's networks. */
static int np_sandbox_dns(struct netplane *np, struct np_sandbox *sb, const Swarm__Task *task,
                          char *errmsg)
{
    const char **ids;
    int rv;

    if (np->dns == NULL) {
        return 0;
    }
    ids = calloc(task->n_networks, sizeof *ids);
    if (ids == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
        return SWARM_ENOMEM;
    }
    for (size_t i = 0; i < task->n_networks; i++) {
        ids[i] = task->networks[i]->network->id;
    }
    rv = dnsd_sandbox_add(np->dns, task->id, sb->nspath, ids, task->n_networks, errmsg);
    free(ids);
    return rv;
}

int netplane_sandbox_create(struct netplane *np, const Swarm__Task *task, const char *files_dir,
                            char *netns_path, char *errmsg)
{
    int rv = np_sandbox_check(task, errmsg);
    if (rv != 0) {
        return rv;
    }
    if (np_sandbox_find(np, task->id, NULL) != NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "task %s has a sandbox already", task->id);
        return SWARM_EEXIST;
    }
    struct np_sandbox *sb = calloc(1, sizeof *sb);
    if (sb == NULL || (sb->task_id = strdup(task->id)) == NULL ||
        (sb->att = calloc(task->n_networks, sizeof *sb->att)) == NULL) {
        if (sb != NULL) {
            free(sb->task_id);
        }
        free(sb);
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
        return SWARM_ENOMEM;
    }
    sb->natt = task->n_networks;
    sb->nsfd = -1;
    snprintf(sb->nspath, sizeof sb->nspath, "%s/t-%s", np->nsdir, task->id);
    struct mnl_socket *snl = NULL;
    if ((rv = np_ns_make(np, sb->nspath)) != 0) {
        sb->nspath[0] = '\0';
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "task %s: namespace: %s", task->id,
                      strerror(-rv));
        rv = SWARM_EIO;
        goto err;
    }
    sb->nsfd = netns_open(sb->nspath);
    snl = sb->nsfd >= 0 ? netns_nl_open(sb->nsfd) : NULL;
    if (snl == NULL || (rv = nlink_link_set(snl, 1, 0, 0, true)) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "task %s: loopback: %s", task->id,
                      strerror(snl == NULL ? errno : -rv));
        rv = SWARM_EIO;
        goto err;
    }
    for (size_t i = 0; i < task->n_networks; i++) {
        if ((rv = np_sandbox_attach(np, sb, snl, task->networks[i], i, errmsg)) != 0) {
            goto err;
        }
    }
    /* The way out: the gateway bridge (its default route), none when all
     * the networks are internal; nodes sharing one namespace (loopback
     * underlay) keep the first network's gateway as default route. */
    bool internal = true;
    for (size_t i = 0; i < task->n_networks; i++) {
        const Swarm__Network *nw = task->networks[i]->network;
        internal = internal && nw->spec != NULL && nw->spec->internal;
    }
    if (np_gw_wanted(np, task)) {
        char eth[IF_NAMESIZE];
        snprintf(eth, sizeof eth, "eth%zu", task->n_networks);
        if ((rv = np_gw_attach(np, sb, snl, task, eth, errmsg)) != 0) {
            errmsg_wrapf(errmsg, SWARM_ERRMSG_SIZE, "task %s", task->id);
            goto err;
        }
    } else if (!internal) {
        uint32_t gw;
        (void)netplan_parse_ip(task->networks[0]->network->ipam->gateway, &gw);
        if ((rv = nlink_route_default(snl, gw)) != 0) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "task %s: default route: %s", task->id,
                          strerror(-rv));
            rv = SWARM_EIO;
            goto err;
        }
    }
    if (files_dir != NULL && (rv = np_sandbox_files(task, files_dir, errmsg)) != 0) {
        goto err;
    }
    if ((rv = np_sandbox_vips(sb, errmsg)) != 0) {
        goto err;
    }
    if ((rv = np_sandbox_dns(np, sb, task, errmsg)) != 0) {
        goto err;
    }
    if (vec_push(&np->boxes, sb) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
        rv = SWARM_ENOMEM;
        goto err;
    }
    nlink_close(snl);
    snprintf(netns_path, PATH_MAX, "%s", sb->nspath);
    return 0;
err:
    nlink_close(snl);
    np_sandbox_down(np, sb);
    return rv;
}

int netplane_sandbox_remove(struct netplane *np, const char *task_id)
{
    size_t pos;
    struct np_sandbox *sb = np_sandbox_find(np, task_id, &pos);
    if (sb == NULL) {
        return SWARM_ENOTFOUND;
    }
    np->boxes.items[pos] = np->boxes.items[--np->boxes.len];
    np_sandbox_down(np, sb);
    return 0;
}

const char *netplane_sandbox_netns(struct netplane *np, const char *task_id)
{
    struct np_sandbox *sb = np_sandbox_find(np, task_id, NULL);
    return sb != NULL ? sb->nspath : NULL;
}

void netplane_task_hostname(const Swarm__Task *task, char *out)
{
    netplan_hostname(task, out);
}

int netplane_network_count(const struct netplane *np)
{
    int k = 0;
    for (size_t i = 0; i < np->nets.len; i++) {
        k += np->nets.items[i]->up;
    }
    return k;
}

/* ---- maps -------------------------------------------------------------- */

/* Redo the VIP rules of every sandbox on `n`; the first error is kept. */
static int np_vips_of(struct netplane *np, struct np_network *n, char *errmsg)
{
    int rv = 0;
    char err[SWARM_ERRMSG_SIZE];
    for (size_t i = 0; i < np->boxes.len; i++) {
        struct np_sandbox *sb = np->boxes.items[i];
        for (size_t j = 0; j < sb->natt; j++) {
            if (sb->att[j].net == n) {
                int e = np_sandbox_vips(sb, err);
                if (e != 0 && rv == 0) {
                    rv = e;
                    if (errmsg != NULL) {
                        snprintf(errmsg, SWARM_ERRMSG_SIZE, "%s", err);
                    }
                }
                break;
            }
        }
    }
    return rv;
}

int netplane_map_update(struct netplane *np, const Swarm__NetworkMap *map, char *errmsg)
{
    if (map == NULL || map->network == NULL || map->network->id == NULL ||
        map->network->id[0] == '\0' || strchr(map->network->id, '/') != NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "network map without a network");
        return SWARM_EINVAL;
    }
    for (size_t i = 0; i < map->n_endpoints; i++) {
        uint32_t a;
        int p;
        const Swarm__NetworkEndpoint *ep = map->endpoints[i];
        /* Empty: not known yet (no address, node address unknown), only
         * skipped; anything else must parse. */
        if ((ep->addr[0] != '\0' && netplan_parse_cidr(ep->addr, &a, &p, 0) != 0) ||
            (ep->node_addr[0] != '\0' && netplan_parse_ip(ep->node_addr, &a) != 0)) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                          "network %s: endpoint %s: invalid address \"%s\" or node \"%s\"",
                          map->network->id, ep->task_id, ep->addr, ep->node_addr);
            return SWARM_EINVAL;
        }
    }
    /* DNS first: a map its records refuse changes nothing. */
    if (np->dns != NULL) {
        int rv = dnsd_map_update(np->dns, map, errmsg);
        if (rv != 0) {
            return rv;
        }
    }
    Swarm__NetworkMap *copy = pb_copy(&map->base);
    struct np_network *n = copy != NULL ? np_network_add(np, map->network->id) : NULL;
    if (n == NULL) {
        if (copy != NULL) {
            swarm__network_map__free_unpacked(copy, NULL);
        }
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
        return SWARM_ENOMEM;
    }
    if (n->map != NULL) {
        swarm__network_map__free_unpacked(n->map, NULL);
    }
    n->map = copy;
    if (np_is_ingress(n) || np->ing == n) {
        int e = np_ingress_sync(np, errmsg);
        if (e != 0) {
            return e;
        }
    }
    if (!n->up) {
        return 0;
    }
    int rv = np_network_sync(np, n, errmsg);
    char err[SWARM_ERRMSG_SIZE];
    int rv2 = np_vips_of(np, n, err);
    if (rv == 0 && rv2 != 0) {
        snprintf(errmsg, SWARM_ERRMSG_SIZE, "%s", err);
        rv = rv2;
    }
    return rv;
}

int netplane_map_remove(struct netplane *np, const char *network_id)
{
    if (np->dns != NULL) {
        dnsd_map_remove(np->dns, network_id);
    }
    struct np_network *n = np_network_find(np, network_id);
    if (n == NULL || n->map == NULL) {
        return SWARM_ENOTFOUND;
    }
    swarm__network_map__free_unpacked(n->map, NULL);
    n->map = NULL;
    if (np->ing == n) {
        char e[SWARM_ERRMSG_SIZE];
        if (np_ingress_sync(np, e) != 0) {
            log_warn("net", "routing mesh: %s", e);
        }
    }
    if (n->up) {
        char err[SWARM_ERRMSG_SIZE];
        if (np_network_sync(np, n, err) != 0 || np_vips_of(np, n, err) != 0) {
            log_warn("net", "network %s: %s", network_id, err);
        }
    }
    np_network_maybe_free(np, n);
    return 0;
}

/* ---- life -------------------------------------------------------------- */

static int np_mkdir(const char *path, char *errmsg)
{
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "%s: %s", path, strerror(errno));
        return SWARM_EIO;
    }
    return 0;
}

int netplane_new(const struct netplane_config *cfg, struct netplane **out, char *errmsg)
{
    struct netplane *np = calloc(1, sizeof *np);
    if (np == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "out of memory");
        return SWARM_ENOMEM;
    }
    int rv;
    np->loop = cfg->loop;
    if (cfg->state_dir == NULL || netplan_parse_ip(cfg->underlay_ip, &np->underlay) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "networking: invalid underlay address \"%s\"",
                      cfg->underlay_ip != NULL ? cfg->underlay_ip : "");
        free(np);
        return SWARM_EINVAL;
    }
    snprintf(np->dir, sizeof np->dir, "%s/net", cfg->state_dir);
    snprintf(np->nsdir, sizeof np->nsdir, "%s/ns", np->dir);
    snprintf(np->linksdir, sizeof np->linksdir, "%s/links", np->dir);
    if ((rv = np_mkdir(np->dir, errmsg)) != 0 || (rv = np_mkdir(np->nsdir, errmsg)) != 0 ||
        (rv = np_mkdir(np->linksdir, errmsg)) != 0) {
        free(np);
        return rv;
    }
    if ((np->nl = nlink_open()) == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "networking: netlink: %s", strerror(errno));
        free(np);
        return SWARM_EIO;
    }
    if (cfg->loop != NULL && (rv = dnsd_new(cfg->loop, cfg->dns, &np->dns, errmsg)) != 0) {
        errmsg_wrapf(errmsg, SWARM_ERRMSG_SIZE, "networking: DNS server");
        nlink_close(np->nl);
        free(np);
        return rv;
    }
    *out = np;
    return 0;
}

static int np_flush_cb(void *arg)
{
    (void)arg;
    struct mnl_socket *nl = nlink_open();
    if (nl == NULL) {
        return -errno;
    }
    np_links_flush(nl);
    nlink_close(nl);
    return 0;
}

void netplane_cleanup_leftovers(struct netplane *np)
{
    char path[PATH_MAX];
    struct dirent *de;
    DIR *d = opendir(np->linksdir);
    while (d != NULL && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') {
            continue;
        }
        int idx = nlink_link_index(np->nl, de->d_name);
        if (idx > 0 && nlink_link_del(np->nl, idx) == 0) {
            log_info("net", "removed leftover link %s", de->d_name);
        }
        np_unrecord(np->linksdir, de->d_name);
    }
    if (d != NULL) {
        closedir(d);
    }
    np_ingress_cleanup_leftovers(np);
    np_gw_cleanup_leftovers(np);
    /* Sandboxes first: their veths go with them, then the networks. */
    for (int pass = 0; pass < 2; pass++) {
        d = opendir(np->nsdir);
        while (d != NULL && (de = readdir(d)) != NULL) {
            if (de->d_name[0] != (pass == 0 ? 't' : 'n') || de->d_name[1] != '-' ||
                np_sandbox_find(np, de->d_name + 2, NULL) != NULL ||
                np_network_find(np, de->d_name + 2) != NULL) {
                continue;
            }
            snprintf(path, sizeof path, "%s/%s", np->nsdir, de->d_name);
            if (netns_is_mounted(path)) {
                int fd = netns_open(path);
                if (fd >= 0) {
                    (void)netns_run(fd, np_flush_cb, NULL);
                    close(fd);
                }
                log_info("net", "removed leftover namespace %s", de->d_name);
            }
            netns_remove(path);
        }
        if (d != NULL) {
            closedir(d);
        }
    }
    if (np->ns_live == 0) {
        np_nsdir_release(np); /* the previous run's bind of the dir */
    }
}

void netplane_close(struct netplane *np)
{
    if (np == NULL) {
        return;
    }
    np_ingress_down(np);
    free(np->host_rules);
    while (np->boxes.len > 0) {
        np_sandbox_down(np, np->boxes.items[--np->boxes.len]);
    }
    for (size_t i = 0; i < np->nets.len; i++) {
        struct np_network *n = np->nets.items[i];
        if (n->up) {
            np_network_down(np, n);
        }
        if (n->map != NULL) {
            swarm__network_map__free_unpacked(n->map, NULL);
        }
        free(n->id);
        free(n);
    }
    vec_free(&np->nets);
    vec_free(&np->boxes);
    if (np->dns != NULL) {
        dnsd_close(np->dns); /* its listeners went with the sandboxes */
    }
    nlink_close(np->nl);
    np_nsdir_release(np);
    (void)rmdir(np->nsdir);
    (void)rmdir(np->linksdir);
    (void)rmdir(np->dir);
    free(np);
}
