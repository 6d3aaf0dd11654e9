/* `swarmctl volume ls/rm` on this node (ListVolumes, RemoveVolume on the
 * control socket): the named volumes the container executor keeps in
 * STATE/volumes/NAME/_data. A volume a task of this node still uses (not
 * ended) is not removed, as Docker refuses it: "remove NAME: volume is in
 * use - [TASK IDs]". */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agent.h"
#include "id.h"
#include "node_int.h"
#include "statedir.h"
#include "swarm.pb-c.h"

#define NODE_VOLUMES_MAX 4096 /* listed at most */

static int volume_cmp(const void *a, const void *b)
{
    return strcmp((*(Swarm__Volume *const *)a)->name, (*(Swarm__Volume *const *)b)->name);
}

static void list_volumes_cb(struct api_call *call, const ProtobufCMessage *msg, void *data)
{
    struct swarm_node *n = data;
    Swarm__ListVolumesResponse resp = SWARM__LIST_VOLUMES_RESPONSE__INIT;
    char dir[PATH_MAX];
    (void)msg;
    snprintf(dir, sizeof dir, "%s/volumes", n->state_dir);
    DIR *d = opendir(dir);
    Swarm__Volume *vols = calloc(NODE_VOLUMES_MAX, sizeof *vols);
    Swarm__Volume **ptrs = calloc(NODE_VOLUMES_MAX, sizeof *ptrs);
    char(*paths)[PATH_MAX] = calloc(NODE_VOLUMES_MAX, PATH_MAX);
    if (vols == NULL || ptrs == NULL || paths == NULL) {
        api_call_error(call, API_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL && resp.n_volumes < NODE_VOLUMES_MAX) {
        if (de->d_name[0] == '.' || !id_is_path_safe(de->d_name)) {
            continue;
        }
        Swarm__Volume *v = &vols[resp.n_volumes];
        swarm__volume__init(v);
        v->name = de->d_name;
        v->driver = "local";
        snprintf(paths[resp.n_volumes], PATH_MAX, "%s/%s/_data", dir, de->d_name);
        v->mountpoint = paths[resp.n_volumes];
        ptrs[resp.n_volumes++] = v;
    }
    qsort(ptrs, resp.n_volumes, sizeof *ptrs, volume_cmp);
    resp.volumes = ptrs;
    api_call_reply(call, &resp.base);
out:
    if (d != NULL) {
        closedir(d);
    }
    free(vols);
    free(ptrs);
    free(paths);
}

static void remove_volume_cb(struct api_call *call, const ProtobufCMessage *msg, void *data)
{
    struct swarm_node *n = data;
    const Swarm__RemoveVolumeRequest *req = (const Swarm__RemoveVolumeRequest *)msg;
    Swarm__RemoveVolumeResponse resp = SWARM__REMOVE_VOLUME_RESPONSE__INIT;
    char path[PATH_MAX], users[1024];
    struct stat st;
    const char *name = req->name != NULL ? req->name : "";
    if (name[0] == '\0' || name[0] == '.' || !id_is_path_safe(name)) {
        api_call_error(call, API_NOT_FOUND, "get %.200s: no such volume", name);
        return;
    }
    snprintf(path, sizeof path, "%s/volumes/%s", n->state_dir, name);
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        api_call_error(call, API_NOT_FOUND, "get %s: no such volume", name);
        return;
    }
    agent_volume_users(n->agent, name, users, sizeof users);
    if (users[0] != '\0') {
        api_call_error(call, API_FAILED_PRECONDITION, "remove %s: volume is in use - [%s]", name,
                       users);
        return;
    }
    if (statedir_remove_tree(path) != 0) {
        api_call_error(call, API_INTERNAL, "remove %s: %s", name, strerror(errno));
        return;
    }
    api_call_reply(call, &resp.base);
}

void node_volumes_register(struct swarm_node *n)
{
    api_server_register(n->api, &swarm__swarm__descriptor, "ListVolumes", API_ROLE_LOCAL,
                        list_volumes_cb, n);
    api_server_register(n->api, &swarm__swarm__descriptor, "RemoveVolume", API_ROLE_LOCAL,
                        remove_volume_cb, n);
}
