/* Internal to net/netplane.c and net/ingress.c (the routing mesh): the
 * netplane's state and the helpers both use. Not for use elsewhere. */
#ifndef SWARM_NET_NETPLANE_INT_H
#define SWARM_NET_NETPLANE_INT_H

#include <limits.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>

#include "netplan.h"
#include "netplane.h"
#include "vec.h"

#define NP_MTU 1450 /* 1500 minus VXLAN's 50 bytes */
#define NP_VXLAN_PORT 4789
#define NP_BRIDGE "br0"

struct np_network {
    char *id;
    Swarm__NetworkMap *map; /* latest map, NULL: none */
    bool up;                /* set up on this node */
    int users;              /* sandboxes attached */
    int nsfd;
    struct mnl_socket *nl; /* in the network's namespace */
    int br_index, vx_index;
    bool ns_made; /* its namespace exists (np_ns_make) */
    unsigned veth_seq;
    struct netplan_peer *peers; /* installed on the VXLAN device */
    size_t npeers;
    char nspath[PATH_MAX];
};

struct np_attach {
    struct np_network *net;
    char veth[IF_NAMESIZE]; /* network side */
};

struct np_sandbox {
    char *task_id;
    int nsfd;
    char nspath[PATH_MAX];
    struct np_attach *att;
    size_t natt;
    char *nft; /* the ruleset last applied, NULL: none */
    bool gw_held;                /* counted in the gateway bridge's users */
    uint32_t gw_ip;              /* its address on the gateway bridge, 0: none */
    char gw_veth[IF_NAMESIZE];   /* its veth's end in the node's namespace */
};

struct netplane {
    uv_loop_t *loop;
    uint32_t underlay;
    char dir[PATH_MAX], nsdir[PATH_MAX], linksdir[PATH_MAX];
    struct mnl_socket *nl; /* in the node's namespace */
    int ns_live;           /* namespaces of ours under nsdir */
    VEC(struct np_network *) nets;
    VEC(struct np_sandbox *) boxes;
    struct dnsd *dns; /* NULL without a loop */
    /* The routing mesh (issue 13): the ingress network held for the node's
     * own endpoint (a veth NP_ING_NODE here, NP_ING_NET in ingress's
     * bridge, with the node's ingress address) and the node's table. */
    struct np_network *ing;  /* NULL: the mesh is not set up */
    uint32_t ing_ip;
    char *ing_nft;           /* the node's ruleset last applied */
    char *host_rules;        /* host-mode lines (netplane_host_ports) */
    bool ing_skip_logged;    /* loopback underlay: said once that there is no mesh */
    /* The gateway bridge (gwbridge.c): NETPLAN_GW_BRIDGE in the node's
     * namespace, up while a sandbox uses it. */
    int gw_users;
    int gw_index;            /* >0: the bridge is up */
    uint32_t gw_net;         /* its subnet */
    int gw_prefix;
    unsigned gw_seq;         /* names of the veths into it */
};

/* Record `name` in `dir` (a file, fsync'd) before making what it names. */
int np_record(const char *dir, const char *name);
void np_unrecord(const char *dir, const char *name);
/* The network's struct (made when new), NULL when out of memory. */
struct np_network *np_network_add(struct netplane *np, const char *id);
/* Drop the network's struct once nothing needs it (no map, no user). */
void np_network_maybe_free(struct netplane *np, struct np_network *n);
/* Set up / tear down the network on this node (namespace, bridge, VXLAN,
 * peers). */
int np_network_up(struct netplane *np, struct np_network *n, const Swarm__Network *nw, char *errmsg);
void np_network_down(struct netplane *np, struct np_network *n);

/* Write `value` to the sysctl file `path`; 0 or -errno. */
int np_write_sysctl(const char *path, const char *value);

/* ---- the gateway bridge (gwbridge.c) ---- */

/* Does the task's sandbox get an interface on the gateway bridge (one of
 * its networks is not internal, and the node has a namespace of its own)? */
bool np_gw_wanted(const struct netplane *np, const Swarm__Task *task);
/* Give the sandbox its veth into the gateway bridge (made now if it is the
 * first user), named `eth` inside, an address of the bridge's subnet, and
 * its default route through the bridge. 0 or SWARM_E* with errmsg; on
 * error np_gw_detach undoes what was made. */
int np_gw_attach(struct netplane *np, struct np_sandbox *sb, struct mnl_socket *snl,
                 const Swarm__Task *task, const char *eth, char *errmsg);
/* Undo np_gw_attach (nothing if the sandbox has no part of it); the bridge
 * goes with its last user. */
void np_gw_detach(struct netplane *np, struct np_sandbox *sb);
/* What a previous run recorded of the bridge's table. */
void np_gw_cleanup_leftovers(struct netplane *np);

/* ---- the routing mesh (ingress.c) ---- */

/* Is `n` the ingress network (its map's spec says so)? */
bool np_is_ingress(const struct np_network *n);
/* Make the mesh follow the ingress map (and the host-mode rules): set up,
 * rules redone, or torn down. 0 or SWARM_E* with errmsg. */
int np_ingress_sync(struct netplane *np, char *errmsg);
/* Tear the mesh down on this node (table, veth, its hold on ingress). */
void np_ingress_down(struct netplane *np);
/* What a previous run recorded of the mesh (the node's table). */
void np_ingress_cleanup_leftovers(struct netplane *np);

#endif
