/* The visualizer's document (vizstate.h), built with jansson. */
#include "vizstate.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

#define TS(x) SWARM__TASK_STATE__TASK_STATE_##x

static const char *node_status_word(const Swarm__Node *n)
{
    switch (n->status != NULL ? n->status->state : SWARM__NODE_STATE__NODE_STATE_UNKNOWN) {
    case SWARM__NODE_STATE__NODE_STATE_READY:
        return "ready";
    case SWARM__NODE_STATE__NODE_STATE_DOWN:
        return "down";
    case SWARM__NODE_STATE__NODE_STATE_DISCONNECTED:
        return "disconnected";
    default:
        return "unknown";
    }
}

static const char *availability_word(const Swarm__Node *n)
{
    switch (n->spec != NULL ? n->spec->availability : SWARM__NODE_AVAILABILITY__NODE_AVAILABILITY_ACTIVE) {
    case SWARM__NODE_AVAILABILITY__NODE_AVAILABILITY_PAUSE:
        return "pause";
    case SWARM__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN:
        return "drain";
    default:
        return "active";
    }
}

static const char *task_state_word(Swarm__TaskState s)
{
    switch (s) {
    case TS(NEW): return "new";
    case TS(PENDING): return "pending";
    case TS(ASSIGNED): return "assigned";
    case TS(ACCEPTED): return "accepted";
    case TS(PREPARING): return "preparing";
    case TS(READY): return "ready";
    case TS(STARTING): return "starting";
    case TS(RUNNING): return "running";
    case TS(COMPLETE): return "complete";
    case TS(SHUTDOWN): return "shutdown";
    case TS(FAILED): return "failed";
    case TS(REJECTED): return "rejected";
    case TS(REMOVE): return "remove";
    case TS(ORPHANED): return "orphaned";
    default: return "unknown";
    }
}

void vizstate_color(const char *service_id, char *out, size_t size)
{
    /* FNV-1a: stable across processes and versions, unlike a seeded hash. */
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)(service_id != NULL ? service_id : ""); *p;
         p++) {
        h = (h ^ *p) * 16777619u;
    }
    snprintf(out, size, "hsl(%u,%u%%,%u%%)", h % 360, 55 + (h >> 9) % 25, 42 + (h >> 17) % 14);
}

static const char *str_or_empty(const char *s)
{
    return s != NULL ? s : "";
}

static const char *service_image(const Swarm__ServiceSpec *spec)
{
    if (spec == NULL || spec->task == NULL || spec->task->container == NULL) {
        return "";
    }
    return str_or_empty(spec->task->container->image);
}

/* A card: assigned, desired running, and new to running. */
static bool task_shown(const Swarm__Task *t)
{
    Swarm__TaskState st = t->status != NULL ? t->status->state : TS(NEW);
    return t->node_id != NULL && t->node_id[0] != '\0' && t->desired_state <= TS(RUNNING) &&
           st <= TS(RUNNING);
}

static json_t *node_json(const Swarm__Node *n, uint64_t leader)
{
    const Swarm__NodeDescription *d = n->description;
    const char *hostname = d != NULL ? str_or_empty(d->hostname) : ""; /* node ls's HOSTNAME */
    double cpus = 0;
    int64_t mem = 0;
    bool is_leader = leader != 0 && n->manager_status != NULL && n->manager_status->raft_id == leader;
    if (d != NULL && d->resources != NULL) {
        cpus = (double)d->resources->nano_cpus / 1e9;
        mem = d->resources->memory_bytes;
    }
    return json_pack("{s:s, s:s, s:s, s:b, s:s, s:s, s:s, s:f, s:I}", "id", str_or_empty(n->id),
                     "hostname", hostname, "role",
                     n->role == SWARM__NODE_ROLE__NODE_ROLE_MANAGER ? "manager" : "worker", "leader",
                     is_leader, "status", node_status_word(n), "availability", availability_word(n),
                     "addr", n->status != NULL ? str_or_empty(n->status->addr) : "", "cpus", cpus,
                     "memory", (json_int_t)mem);
}

static json_t *service_json(const Swarm__Service *s, const struct vizstate_in *in)
{
    char color[32];
    size_t running = 0, desired = 0;
    bool replicated = s->spec != NULL && s->spec->mode_case == SWARM__SERVICE_SPEC__MODE_REPLICATED;
    const char *name = s->spec != NULL && s->spec->annotations != NULL
                           ? str_or_empty(s->spec->annotations->name)
                           : "";
    /* As service ls: running is desired and observed running; desired is
     * the replica count, or the tasks desired running for a global one. */
    for (size_t i = 0; i < in->n_tasks; i++) {
        const Swarm__Task *t = in->tasks[i];
        if (t->service_id == NULL || strcmp(t->service_id, s->id) != 0 ||
            t->desired_state != TS(RUNNING)) {
            continue;
        }
        desired++;
        running += t->status != NULL && t->status->state == TS(RUNNING);
    }
    if (replicated) {
        desired = s->spec->replicated->replicas;
    }
    vizstate_color(s->id, color, sizeof color);
    return json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:s}", "id", str_or_empty(s->id), "name", name,
                     "mode", replicated ? "replicated" : "global", "running", (json_int_t)running,
                     "desired", (json_int_t)desired, "image", service_image(s->spec), "color", color);
}

static json_t *task_json(const Swarm__Task *t, const struct vizstate_in *in)
{
    char color[32];
    const char *service = str_or_empty(t->service_name);
    for (size_t i = 0; service[0] == '\0' && i < in->n_services; i++) {
        const Swarm__Service *s = in->services[i];
        if (t->service_id != NULL && strcmp(s->id, t->service_id) == 0 && s->spec != NULL &&
            s->spec->annotations != NULL) {
            service = str_or_empty(s->spec->annotations->name);
        }
    }
    vizstate_color(t->service_id, color, sizeof color);
    return json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:s}", "id", str_or_empty(t->id),
                     "service_id", str_or_empty(t->service_id), "service", service, "slot",
                     (json_int_t)t->slot, "node_id", str_or_empty(t->node_id), "image",
                     t->spec != NULL && t->spec->container != NULL
                         ? str_or_empty(t->spec->container->image)
                         : "",
                     "state", task_state_word(t->status != NULL ? t->status->state : TS(NEW)),
                     "color", color);
}

/* Append `item` (stolen) to `array`; false when either failed. */
static bool append(json_t *array, json_t *item)
{
    return item != NULL && json_array_append_new(array, item) == 0;
}

static int dump(json_t *doc, char **json, size_t *len)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (text == NULL) {
        return SWARM_ENOMEM;
    }
    *json = text;
    *len = strlen(text);
    return 0;
}

int vizstate_render(const struct vizstate_in *in, char **json, size_t *len)
{
    json_t *nodes = json_array(), *services = json_array(), *tasks = json_array();
    json_t *doc = json_pack("{s:b, s:s, s:b, s:o, s:o, s:o}", "manager", 1, "message", "", "leader",
                            in->leader_raft_id != 0, "nodes", nodes, "services", services, "tasks",
                            tasks);
    if (doc == NULL) {
        return SWARM_ENOMEM; /* json_pack's "o" stole (and freed) the arrays */
    }
    for (size_t i = 0; i < in->n_nodes; i++) {
        if (!append(nodes, node_json(in->nodes[i], in->leader_raft_id))) {
            goto oom;
        }
    }
    for (size_t i = 0; i < in->n_services; i++) {
        if (!append(services, service_json(in->services[i], in))) {
            goto oom;
        }
    }
    for (size_t i = 0; i < in->n_tasks; i++) {
        if (task_shown(in->tasks[i]) && !append(tasks, task_json(in->tasks[i], in))) {
            goto oom;
        }
    }
    return dump(doc, json, len);
oom:
    json_decref(doc);
    return SWARM_ENOMEM;
}

int vizstate_render_none(const char *message, char **json, size_t *len)
{
    json_t *doc = json_pack("{s:b, s:s, s:b, s:[], s:[], s:[]}", "manager", 0, "message",
                            str_or_empty(message), "leader", 0, "nodes", "services", "tasks");
    if (doc == NULL) {
        return SWARM_ENOMEM;
    }
    return dump(doc, json, len);
}
