/* See mgrinfo.h. */
#include "mgrinfo.h"

#include <stdlib.h>
#include <string.h>

#include "pbcopy.h"

void mgrinfo_fill(struct store *store, Swarm__InfoResponse *info)
{
    Swarm__Node **nodes = NULL;
    Swarm__Cluster *cluster = NULL;
    size_t n = 0;

    if (store_node_list(store, &nodes, &n) == 0) {
        info->nodes = (uint32_t)n;
        info->manager_addrs = calloc(n ? n : 1, sizeof(char *));
        for (size_t i = 0; i < n; i++) {
            if (nodes[i]->role == SWARM__NODE_ROLE__NODE_ROLE_MANAGER &&
                nodes[i]->manager_status != NULL) {
                /* Best effort: out of memory leaves an address out. */
                char *addr = info->manager_addrs != NULL
                                 ? strdup(nodes[i]->manager_status->addr)
                                 : NULL;
                info->managers++;
                if (addr != NULL) {
                    info->manager_addrs[info->n_manager_addrs++] = addr;
                }
            }
        }
        store_node_free_list(nodes, n);
    }
    if (store_cluster_get_default(store, &cluster) == 0) {
        info->cluster_spec = pb_copy(&cluster->spec->base);
        swarm__cluster__free_unpacked(cluster, NULL);
    }
}
