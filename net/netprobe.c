/* Whether this host can do networking (netplane_probe in netplane.h): each
 * piece is tried in a throwaway namespace, made by a short-lived thread
 * whose namespace goes with it. */
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "netns.h"
#include "netplane.h"
#include "nft.h"
#include "nlink.h"

static int probe_cb(void *arg)
{
    char *errmsg = arg;
    static const uint8_t mac[6] = {0x02, 0x42, 10, 0, 0, 2};
    if (unshare(CLONE_NEWNET) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "network namespaces: %s", strerror(errno));
        return SWARM_EPERM;
    }
    struct mnl_socket *nl = nlink_open();
    if (nl == NULL) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "netlink: %s", strerror(errno));
        return SWARM_EIO;
    }
    const char *what = "bridge";
    int rv = nlink_bridge_add(nl, "swprobe0", 0);
    if (rv == 0) {
        what = "veth";
        rv = nlink_veth_add(nl, "swprobe1", "swprobe2", -1, mac, 0);
    }
    if (rv == 0) {
        what = "vxlan";
        rv = nlink_vxlan_add(nl, "swprobe3", 42, 0x7f000001, 4789);
    }
    nlink_close(nl); /* the namespace goes with this thread, links and all */
    if (rv != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "%s links: %s", what, strerror(-rv));
        return SWARM_EIO;
    }
    static const char probe_rules[] =
        "table ip swarmd_probe {\n chain c {\n  type nat hook output priority -100;\n"
        "  ip daddr 10.0.0.1 dnat to numgen random mod 1 map { 0 : 10.0.0.2 }\n }\n}\n";
    char *why = NULL;
    if (nft_run_here(probe_rules, &why) != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "nftables: %s",
                      why != NULL ? why : "out of memory");
        free(why);
        return SWARM_EIO;
    }
    return 0;
}

int netplane_probe(char *errmsg)
{
    if (geteuid() != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "networking needs swarmd to run as root (it runs as uid %u)",
                      (unsigned)geteuid());
        return SWARM_EPERM;
    }
    char err[SWARM_ERRMSG_SIZE] = "";
    int rv = netns_run(-1, probe_cb, err);
    if (rv != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "networking unavailable: %s",
                      err[0] != '\0' ? err : strerror(-rv));
        return err[0] != '\0' ? rv : SWARM_EIO; /* else the thread did not start */
    }
    return 0;
}
