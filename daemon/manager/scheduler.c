/* The scheduler: which node runs each pending task (see scheduler.h).
 *
 * How a pass stays fast (100,000 tasks on 1,000 nodes):
 *   - pending tasks are grouped by service and placement-relevant spec; the
 *     static filters (ready and active, constraints) run once per group and
 *     node, not per task;
 *   - the filters that change as tasks land (resources, host ports, max
 *     replicas) only ever get stricter during a pass, so a node that fails
 *     one for a group leaves that group's candidates for good;
 *   - the candidates sit in a binary heap keyed by (failed here recently,
 *     tasks of this service, tasks overall, node ID): each placement is a
 *     pop, a check and a sift-down, O(log nodes);
 *   - with placement preferences the candidates are split into a tree by
 *     label value, one heap per leaf, and each task walks down to the branch
 *     holding the fewest tasks of its service;
 *   - once a group runs out of nodes, the reason is computed once (one pass
 *     over the nodes) and given to all its remaining tasks.
 * Node indices follow node IDs in sorted order, so "lowest index" is the
 * reproducible tie-break. */
#include "scheduler.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "constraint.h"
#include "runtime.h"
#include "err.h"
#include "sched_int.h"
#include "pbcopy.h"

/* ---- services ------------------------------------------------------------ */

struct sched_service *sched_service_get(struct sched *s, const char *id, bool create)
{
    struct sched_service *svc;
    id = id != NULL ? id : "";
    svc = sched_map_get(&s->services, id);
    if (svc != NULL || !create) {
        return svc;
    }
    svc = calloc(1, sizeof *svc);
    if (svc == NULL || (svc->id = strdup(id)) == NULL) {
        free(svc);
        return NULL;
    }
    if (sched_map_put(&s->services, svc->id, svc) != 0) {
        free(svc->id);
        free(svc);
        return NULL;
    }
    /* Creation order, for passes that walk every service reproducibly. */
    svc->next = s->service_list;
    s->service_list = svc;
    return svc;
}

static int service_push_node(struct sched_service *svc, uint32_t node)
{
    if (svc->n_task_nodes == svc->cap_task_nodes) {
        size_t cap = svc->cap_task_nodes ? svc->cap_task_nodes * 2 : 8;
        uint32_t *p = realloc(svc->task_nodes, cap * sizeof *p);
        if (p == NULL) {
            return SWARM_ENOMEM;
        }
        svc->task_nodes = p;
        svc->cap_task_nodes = cap;
    }
    svc->task_nodes[svc->n_task_nodes++] = node;
    return 0;
}

static void service_free(struct sched_service *svc)
{
    free(svc->task_nodes);
    free(svc->failures);
    free(svc->ports);
    free(svc->id);
    free(svc);
}

/* ---- nodes --------------------------------------------------------------- */

static void nodes_clear(struct sched *s)
{
    for (size_t i = 0; i < s->n_nodes; i++) {
        swarm__node__free_unpacked(s->nodes[i].node, NULL);
        free(s->nodes[i].ports);
    }
    free(s->nodes);
    s->nodes = NULL;
    s->n_nodes = 0;
    sched_map_clear(&s->node_index);
    free(s->scratch_count);
    free(s->scratch_failed);
    free(s->scratch_heap);
    s->scratch_count = NULL;
    s->scratch_failed = NULL;
    s->scratch_heap = NULL;
    /* Task lists hold node indices of the old set: they mean nothing now. */
    for (struct sched_service *svc = s->service_list; svc != NULL; svc = svc->next) {
        svc->n_task_nodes = 0;
        svc->n_failures = 0;
    }
}

/* A private copy, so the caller may free its nodes after sched_set_nodes. */
static Swarm__Node *node_copy(const Swarm__Node *n)
{
    return pb_copy(&n->base);
}

static int node_cmp(const void *a, const void *b)
{
    const struct sched_node *x = a, *y = b;
    return strcmp(x->id, y->id);
}

unsigned sched_runtime_bit(const char *runtime)
{
    if (runtime == NULL || runtime[0] == '\0' || strcmp(runtime, RUNTIME_PROCESS) == 0) {
        return SCHED_RUNTIME_PROCESS;
    }
    return strcmp(runtime, RUNTIME_CONTAINER) == 0 ? SCHED_RUNTIME_CONTAINER : 0;
}

bool sched_node_offers_runtime(const Swarm__NodeDescription *d, const char *runtime)
{
    unsigned want = sched_runtime_bit(runtime), have = 0;
    if (d == NULL || d->n_runtimes == 0) {
        have = SCHED_RUNTIME_PROCESS; /* a node from before runtimes: processes only */
    }
    for (size_t i = 0; d != NULL && i < d->n_runtimes; i++) {
        have |= sched_runtime_bit(d->runtimes[i]);
    }
    return want != 0 && (have & want) != 0;
}

static unsigned node_runtimes(const Swarm__NodeDescription *d)
{
    unsigned have = 0;
    for (unsigned bit = SCHED_RUNTIME_PROCESS; bit <= SCHED_RUNTIME_CONTAINER; bit <<= 1) {
        have |= sched_node_offers_runtime(d, bit == SCHED_RUNTIME_PROCESS ? RUNTIME_PROCESS
                                                                          : RUNTIME_CONTAINER)
                    ? bit : 0;
    }
    return have;
}

static void node_init(struct sched_node *sn, Swarm__Node *copy)
{
    sn->runtimes = node_runtimes(copy->description);
    sn->networking = copy->description == NULL || copy->description->network_error == NULL ||
                     copy->description->network_error[0] == '\0';
    const Swarm__Resources *r =
        copy->description != NULL ? copy->description->resources : NULL;
    sn->node = copy;
    sn->id = copy->id != NULL ? copy->id : "";
    sn->available = copy->status != NULL &&
                    copy->status->state == SWARM__NODE_STATE__NODE_STATE_READY &&
                    (copy->spec == NULL ||
                     copy->spec->availability == SWARM__NODE_AVAILABILITY__NODE_AVAILABILITY_ACTIVE);
    sn->cpu_free = r != NULL ? r->nano_cpus : 0;
    sn->mem_free = r != NULL ? r->memory_bytes : 0;
}

int sched_set_nodes(struct sched *s, Swarm__Node *const *nodes, size_t n)
{
    nodes_clear(s);
    s->nodes = calloc(n > 0 ? n : 1, sizeof *s->nodes);
    s->scratch_count = calloc(n > 0 ? n : 1, sizeof *s->scratch_count);
    s->scratch_failed = calloc(n > 0 ? n : 1, sizeof *s->scratch_failed);
    s->scratch_heap = calloc(n > 0 ? n : 1, sizeof *s->scratch_heap);
    if (s->nodes == NULL || s->scratch_count == NULL || s->scratch_failed == NULL ||
        s->scratch_heap == NULL) {
        goto err;
    }
    for (size_t i = 0; i < n; i++) {
        Swarm__Node *copy = node_copy(nodes[i]);
        if (copy == NULL) {
            goto err;
        }
        node_init(&s->nodes[s->n_nodes++], copy);
    }
    qsort(s->nodes, s->n_nodes, sizeof *s->nodes, node_cmp);
    for (size_t i = 0; i < s->n_nodes; i++) {
        if (sched_map_get(&s->node_index, s->nodes[i].id) != NULL) {
            continue;  /* a duplicate ID: the first copy stands */
        }
        if (sched_map_put(&s->node_index, s->nodes[i].id, (void *)(uintptr_t)(i + 1)) != 0) {
            goto err;
        }
    }
    return 0;
err:
    nodes_clear(s);
    return SWARM_ENOMEM;
}

/* The node's index, or -1 when the scheduler does not know it. */
static long node_lookup(struct sched *s, const char *id)
{
    void *v;
    if (id == NULL || id[0] == '\0') {
        return -1;
    }
    v = sched_map_get(&s->node_index, id);
    return v != NULL ? (long)(uintptr_t)v - 1 : -1;
}

/* ---- host ports ---------------------------------------------------------- */

static uint32_t port_key(const Swarm__PortConfig *p)
{
    uint32_t proto = 0;
    if (p->protocol != NULL && strcmp(p->protocol, "udp") == 0) {
        proto = 1;
    } else if (p->protocol != NULL && strcmp(p->protocol, "sctp") == 0) {
        proto = 2;
    }
    return proto << 16 | (p->published_port & 0xffff);
}

int sched_set_service_ports(struct sched *s, const char *service_id,
                            const Swarm__EndpointSpec *endpoint)
{
    struct sched_service *svc = sched_service_get(s, service_id, true);
    size_t n = 0;
    if (svc == NULL) {
        return SWARM_ENOMEM;
    }
    free(svc->ports);
    svc->ports = NULL;
    svc->n_ports = 0;
    if (endpoint == NULL || endpoint->n_ports == 0) {
        return 0;
    }
    svc->ports = calloc(endpoint->n_ports, sizeof *svc->ports);
    if (svc->ports == NULL) {
        return SWARM_ENOMEM;
    }
    for (size_t i = 0; i < endpoint->n_ports; i++) {
        const Swarm__PortConfig *p = endpoint->ports[i];
        if (p->publish_mode != NULL && strcmp(p->publish_mode, "host") == 0 &&
            p->published_port != 0) {
            svc->ports[n++] = port_key(p);
        }
    }
    svc->n_ports = n;
    return 0;
}

static bool node_port_used(const struct sched_node *sn, uint32_t key)
{
    for (size_t i = 0; i < sn->n_ports; i++) {
        if (sn->ports[i] == key) {
            return true;
        }
    }
    return false;
}

static int node_ports_add(struct sched_node *sn, const uint32_t *keys, size_t n)
{
    if (sn->n_ports + n > sn->cap_ports) {
        size_t cap = (sn->n_ports + n) * 2;
        uint32_t *p = realloc(sn->ports, cap * sizeof *p);
        if (p == NULL) {
            return SWARM_ENOMEM;
        }
        sn->ports = p;
        sn->cap_ports = cap;
    }
    memcpy(sn->ports + sn->n_ports, keys, n * sizeof *keys);
    sn->n_ports += n;
    return 0;
}

/* The ports in use follow from the tasks on each node, whatever order the
 * caller gave tasks and ports in. */
static int ports_rebuild(struct sched *s)
{
    for (size_t i = 0; i < s->n_nodes; i++) {
        s->nodes[i].n_ports = 0;
    }
    for (struct sched_service *svc = s->service_list; svc != NULL; svc = svc->next) {
        for (size_t i = 0; svc->n_ports > 0 && i < svc->n_task_nodes; i++) {
            if (node_ports_add(&s->nodes[svc->task_nodes[i]], svc->ports, svc->n_ports) != 0) {
                return SWARM_ENOMEM;
            }
        }
    }
    return 0;
}

/* ---- lifecycle and inputs ------------------------------------------------ */

struct sched *sched_new(void)
{
    return calloc(1, sizeof(struct sched));
}

void sched_free(struct sched *s)
{
    struct sched_service *svc, *next;
    if (s == NULL) {
        return;
    }
    nodes_clear(s);
    for (svc = s->service_list; svc != NULL; svc = next) {
        next = svc->next;
        service_free(svc);
    }
    sched_map_clear(&s->services);
    free(s);
}

/* Not terminal: it still holds its node's resources and ports. */
static bool task_is_live(const Swarm__Task *t)
{
    int state = t->status != NULL ? (int)t->status->state : SWARM__TASK_STATE__TASK_STATE_NEW;
    return state <= SWARM__TASK_STATE__TASK_STATE_RUNNING;
}

const Swarm__Resources *sched_task_reservations(const Swarm__Task *t)
{
    if (t->spec == NULL || t->spec->resources == NULL) {
        return NULL;
    }
    return t->spec->resources->reservations;
}

static void node_reserve(struct sched_node *sn, const Swarm__Resources *r)
{
    sn->total++;
    if (r != NULL) {
        sn->cpu_free -= r->nano_cpus;
        sn->mem_free -= r->memory_bytes;
    }
}

int sched_add_task(struct sched *s, const Swarm__Task *t)
{
    struct sched_service *svc;
    long idx = node_lookup(s, t->node_id);
    if (idx < 0 || !task_is_live(t)) {
        return 0;  /* no node, a node that is gone, or nothing left to hold */
    }
    /* A task being stopped still holds its resources and ports until it is
     * gone, but no longer counts for spread (as swarmkit): its replacement
     * must be free to go where the service has the fewest live tasks. */
    if (t->desired_state > SWARM__TASK_STATE__TASK_STATE_RUNNING) {
        node_reserve(&s->nodes[idx], sched_task_reservations(t));
        s->nodes[idx].total--;
        return 0;
    }
    svc = sched_service_get(s, t->service_id, true);
    if (svc == NULL || service_push_node(svc, (uint32_t)idx) != 0) {
        return SWARM_ENOMEM;
    }
    node_reserve(&s->nodes[idx], sched_task_reservations(t));
    return 0;
}

void sched_note_failure(struct sched *s, const char *service_id, const char *node_id,
                        int64_t when_ms)
{
    long idx = node_lookup(s, node_id);
    struct sched_service *svc;
    if (idx < 0 || (svc = sched_service_get(s, service_id, true)) == NULL) {
        return;
    }
    if (svc->n_failures == svc->cap_failures) {
        size_t cap = svc->cap_failures ? svc->cap_failures * 2 : 4;
        struct sched_failure *p = realloc(svc->failures, cap * sizeof *p);
        if (p == NULL) {
            return;  /* only a preference is lost */
        }
        svc->failures = p;
        svc->cap_failures = cap;
    }
    svc->failures[svc->n_failures].node = (uint32_t)idx;
    svc->failures[svc->n_failures].when_ms = when_ms;
    svc->n_failures++;
}

/* ---- filters and reasons ------------------------------------------------- */

enum sched_filter_result sched_filter_node(struct sched *s, const struct sched_group *g,
                                           uint32_t idx, uint32_t svc_count)
{
    struct sched_node *sn = &s->nodes[idx];
    if (!sn->available) {
        return SCHED_FAIL_READY;
    }
    if ((sn->runtimes & g->runtime) == 0) {
        return SCHED_FAIL_RUNTIME;
    }
    if (g->networked && !sn->networking) {
        return SCHED_FAIL_NETWORK;
    }
    if ((g->cpu > 0 || g->mem > 0) && (g->cpu > sn->cpu_free || g->mem > sn->mem_free)) {
        return SCHED_FAIL_RESOURCES;
    }
    if (!constraint_match_all(g->constraints, g->n_constraints, sn->node)) {
        return SCHED_FAIL_CONSTRAINTS;
    }
    for (size_t i = 0; i < g->svc->n_ports; i++) {
        if (node_port_used(sn, g->svc->ports[i])) {
            return SCHED_FAIL_PORTS;
        }
    }
    if (g->max_replicas > 0 && svc_count >= g->max_replicas) {
        return SCHED_FAIL_MAX_REPLICAS;
    }
    return SCHED_OK;
}

/* swarmkit's wording (manager/scheduler/filter.go, the Explain methods). */
static int explain_one(char *buf, size_t size, enum sched_filter_result f, size_t count)
{
    const char *noun = count == 1 ? "node" : "nodes";
    switch (f) {
        case SCHED_FAIL_READY:
            return snprintf(buf, size, "%zu %s not available for new tasks", count, noun);
        case SCHED_FAIL_RUNTIME:
            return snprintf(buf, size, "runtime not offered on %zu %s", count, noun);
        case SCHED_FAIL_NETWORK:
            return snprintf(buf, size, "networking not available on %zu %s", count, noun);
        case SCHED_FAIL_RESOURCES:
            return snprintf(buf, size, "insufficient resources on %zu %s", count, noun);
        case SCHED_FAIL_CONSTRAINTS:
            return snprintf(buf, size, "scheduling constraints not satisfied on %zu %s", count,
                            noun);
        case SCHED_FAIL_PORTS:
            return snprintf(buf, size, "host-mode port already in use on %zu %s", count, noun);
        case SCHED_FAIL_MAX_REPLICAS:
            return snprintf(buf, size, "max replicas per node limit exceed");
        default:
            return 0;
    }
}

void sched_explain(const size_t counts[SCHED_FAIL_COUNT], char reason[SCHED_REASON_LEN])
{
    char list[SCHED_REASON_LEN] = "";
    size_t off = 0;
    for (int f = SCHED_FAIL_READY; f < SCHED_FAIL_COUNT && off < sizeof list; f++) {
        int n;
        if (counts[f] == 0) {
            continue;
        }
        if (off > 0) {
            n = snprintf(list + off, sizeof list - off, "; ");
            off += n > 0 ? (size_t)n : 0;
            if (off >= sizeof list) {
                break;
            }
        }
        n = explain_one(list + off, sizeof list - off, (enum sched_filter_result)f, counts[f]);
        off += n > 0 ? (size_t)n : 0;
    }
    if (off == 0) {
        snprintf(reason, SCHED_REASON_LEN, "no suitable node");
    } else {
        snprintf(reason, SCHED_REASON_LEN, "no suitable node (%s)", list);
    }
}

/* Why no node takes a task of `g` now; svc_count is this service's per-node
 * count (scratch_count). */
void sched_group_reason(struct sched *s, const struct sched_group *g, char *reason)
{
    size_t counts[SCHED_FAIL_COUNT] = {0};
    for (uint32_t i = 0; i < s->n_nodes; i++) {
        counts[sched_filter_node(s, g, i, s->scratch_count[i])]++;
    }
    counts[SCHED_OK] = 0;
    sched_explain(counts, reason);
}

/* ---- placing ------------------------------------------------------------- */

void sched_assign(struct sched *s, const struct sched_group *g, uint32_t idx,
                  struct sched_decision *out)
{
    struct sched_node *sn = &s->nodes[idx];
    sn->total++;
    sn->cpu_free -= g->cpu;
    sn->mem_free -= g->mem;
    if (g->svc->n_ports > 0 && node_ports_add(sn, g->svc->ports, g->svc->n_ports) != 0) {
        s->oom = true;
    }
    if (service_push_node(g->svc, idx) != 0) {
        s->oom = true;
    }
    s->scratch_count[idx]++;
    out->node_id = sn->id;
    out->reason[0] = '\0';
}

/* A task that names its node: that node or nothing. */
static void place_preassigned(struct sched *s, const Swarm__Task *t, struct sched_decision *out)
{
    struct sched_group g;
    size_t counts[SCHED_FAIL_COUNT] = {0};
    long idx = node_lookup(s, t->node_id);
    uint32_t count = 0;
    enum sched_filter_result r;

    if (idx < 0 || sched_group_init(s, &g, t) != 0) {
        out->node_id = NULL;
        sched_explain(counts, out->reason);
        return;
    }
    for (size_t i = 0; g.max_replicas > 0 && i < g.svc->n_task_nodes; i++) {
        count += g.svc->task_nodes[i] == (uint32_t)idx;
    }
    r = sched_filter_node(s, &g, (uint32_t)idx, count);
    if (r == SCHED_OK) {
        sched_assign(s, &g, (uint32_t)idx, out);
        /* scratch_count is only meaningful inside a group pass. */
        s->scratch_count[idx] = 0;
    } else {
        counts[r] = 1;
        out->node_id = NULL;
        sched_explain(counts, out->reason);
    }
    sched_group_fini(&g);
}

int sched_place(struct sched *s, Swarm__Task *const *tasks, size_t n, int64_t now_ms,
                struct sched_decision *out)
{
    struct sched_group *groups = NULL;
    size_t n_groups = 0;
    uint32_t *next = NULL;
    int rv;

    s->oom = false;
    /* No nodes given: still allocate the (one-slot) scratch arrays. */
    if (s->nodes == NULL && sched_set_nodes(s, NULL, 0) != 0) {
        return SWARM_ENOMEM;
    }
    if (ports_rebuild(s) != 0) {
        return SWARM_ENOMEM;
    }
    /* Tasks bound to a node go first, as in swarmkit: they have no choice,
     * the others do. */
    for (size_t i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof out[i]);
        if (tasks[i]->node_id != NULL && tasks[i]->node_id[0] != '\0') {
            place_preassigned(s, tasks[i], &out[i]);
        }
    }
    rv = sched_group_tasks(s, tasks, n, &groups, &n_groups, &next);
    if (rv != 0) {
        return rv;
    }
    for (size_t i = 0; i < n_groups && rv == 0; i++) {
        rv = sched_group_place(s, &groups[i], next, now_ms, out);
    }
    for (size_t i = 0; i < n_groups; i++) {
        sched_group_fini(&groups[i]);
    }
    free(groups);
    free(next);
    if (rv == 0 && s->oom) {
        rv = SWARM_ENOMEM;
    }
    return rv;
}

/* ---- string map ---------------------------------------------------------- */

static size_t map_hash(const char *key)
{
    size_t h = 14695981039346656037u;  /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)key; *p != '\0'; p++) {
        h = (h ^ *p) * 1099511628211u;
    }
    return h;
}

static size_t map_find(const struct sched_map *m, const char *key)
{
    size_t i = map_hash(key) & (m->cap - 1);
    while (m->keys[i] != NULL && strcmp(m->keys[i], key) != 0) {
        i = (i + 1) & (m->cap - 1);
    }
    return i;
}

static int map_grow(struct sched_map *m)
{
    struct sched_map bigger = {0};
    bigger.cap = m->cap ? m->cap * 2 : 64;
    bigger.keys = calloc(bigger.cap, sizeof *bigger.keys);
    bigger.vals = calloc(bigger.cap, sizeof *bigger.vals);
    if (bigger.keys == NULL || bigger.vals == NULL) {
        free(bigger.keys);
        free(bigger.vals);
        return SWARM_ENOMEM;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (m->keys[i] != NULL) {
            size_t j = map_find(&bigger, m->keys[i]);
            bigger.keys[j] = m->keys[i];
            bigger.vals[j] = m->vals[i];
        }
    }
    bigger.len = m->len;
    free(m->keys);
    free(m->vals);
    *m = bigger;
    return 0;
}

void *sched_map_get(const struct sched_map *m, const char *key)
{
    size_t i;
    if (m->cap == 0) {
        return NULL;
    }
    i = map_find(m, key);
    return m->keys[i] != NULL ? m->vals[i] : NULL;
}

int sched_map_put(struct sched_map *m, const char *key, void *val)
{
    size_t i;
    if ((m->len + 1) * 2 > m->cap && map_grow(m) != 0) {
        return SWARM_ENOMEM;
    }
    i = map_find(m, key);
    if (m->keys[i] == NULL) {
        m->keys[i] = key;
        m->len++;
    }
    m->vals[i] = val;
    return 0;
}

void sched_map_clear(struct sched_map *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}
