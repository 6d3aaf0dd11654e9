/* The visualizer's picture of the swarm (`swarmd --web-addr`): one JSON
 * document with the nodes, the services with their replica counts, and the
 * tasks a node runs or starts, rendered from store objects. Pure: no loop,
 * no store; manager.c reads the store and raft, webd.c serves the text.
 *
 * The document (every manager renders the same from the same store):
 *   {"manager": true, "message": "", "leader": true|false (a leader known),
 *    "nodes": [{"id", "hostname", "role": "manager"|"worker",
 *               "leader": bool, "status": "ready"|"down"|"disconnected"|"unknown",
 *               "availability": "active"|"pause"|"drain", "addr",
 *               "cpus": float, "memory": bytes}],
 *    "services": [{"id", "name", "mode": "replicated"|"global",
 *                  "running", "desired", "image", "color"}],
 *    "tasks": [{"id", "service_id", "service", "slot", "node_id", "image",
 *               "state", "color"}]}
 * running/desired are `service ls`'s REPLICAS; tasks are those assigned to
 * a node, desired running and not past running (new to running). Without a
 * manager: {"manager": false, "message": ..., empty lists}. */
#ifndef SWARM_MANAGER_VIZSTATE_H
#define SWARM_MANAGER_VIZSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "objects.pb-c.h"

struct vizstate_in {
    uint64_t leader_raft_id; /* 0: no leader known */
    Swarm__Node *const *nodes;
    size_t n_nodes;
    Swarm__Service *const *services;
    size_t n_services;
    Swarm__Task *const *tasks;
    size_t n_tasks;
};

/* The document for a manager's store. *json is malloc'd (compact, one
 * line: no newline in it), *len its length. 0 or SWARM_ENOMEM. */
int vizstate_render(const struct vizstate_in *in, char **json, size_t *len);

/* The document of a node that serves no swarm state, saying why. */
int vizstate_render_none(const char *message, char **json, size_t *len);

/* A service's color, the same for an ID everywhere and always: an HSL
 * color (hue from a hash of the ID) as CSS text into out (>= 32 bytes). */
void vizstate_color(const char *service_id, char *out, size_t size);

#endif
