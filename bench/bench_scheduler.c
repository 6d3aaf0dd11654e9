/* bench_scheduler: how long the scheduler takes to place 100,000 pending
 * tasks of 10 services on 1,000 nodes (some services with constraints,
 * reservations, max replicas or a spread preference; 10,000 tasks already
 * running). Times sched_set_nodes + sched_add_task + sched_place, i.e. one
 * whole scheduling pass as the orchestrator loop runs it; prints the median
 * of 5 runs. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scheduler.h"

#define N_NODES 1000
#define N_PENDING 100000
#define N_RUNNING 10000
#define N_SERVICES 10
#define RUNS 5

static char *xstrdup(const char *s)
{
    char *p = strdup(s);
    if (p == NULL) {
        abort();
    }
    return p;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (p == NULL) {
        abort();
    }
    return p;
}

static Swarm__Node *make_node(int i)
{
    static const char *zones[] = {"a", "b", "c"};
    char buf[64];
    Swarm__Node *n = xcalloc(1, sizeof *n);
    swarm__node__init(n);
    snprintf(buf, sizeof buf, "node%05d", i);
    n->id = xstrdup(buf);
    n->role = i < 3 ? SWARM__NODE_ROLE__NODE_ROLE_MANAGER : SWARM__NODE_ROLE__NODE_ROLE_WORKER;
    n->spec = xcalloc(1, sizeof *n->spec);
    swarm__node_spec__init(n->spec);
    n->spec->availability = i % 50 == 7 ? SWARM__NODE_AVAILABILITY__NODE_AVAILABILITY_DRAIN
                                        : SWARM__NODE_AVAILABILITY__NODE_AVAILABILITY_ACTIVE;
    n->spec->annotations = xcalloc(1, sizeof *n->spec->annotations);
    swarm__annotations__init(n->spec->annotations);
    n->spec->annotations->n_labels = 2;
    n->spec->annotations->labels = xcalloc(2, sizeof(Swarm__Label *));
    for (int l = 0; l < 2; l++) {
        Swarm__Label *lab = xcalloc(1, sizeof *lab);
        swarm__label__init(lab);
        lab->key = xstrdup(l == 0 ? "disk" : "zone");
        lab->value = xstrdup(l == 0 ? (i % 4 == 0 ? "ssd" : "hdd") : zones[i % 3]);
        n->spec->annotations->labels[l] = lab;
    }
    n->description = xcalloc(1, sizeof *n->description);
    swarm__node_description__init(n->description);
    snprintf(buf, sizeof buf, "host%d", i);
    n->description->hostname = xstrdup(buf);
    n->description->platform = xcalloc(1, sizeof *n->description->platform);
    swarm__platform__init(n->description->platform);
    n->description->platform->os = xstrdup("linux");
    n->description->platform->architecture = xstrdup("x86_64");
    n->description->resources = xcalloc(1, sizeof *n->description->resources);
    swarm__resources__init(n->description->resources);
    n->description->resources->nano_cpus = 16LL * 1000000000;
    n->description->resources->memory_bytes = 64LL << 30;
    n->status = xcalloc(1, sizeof *n->status);
    swarm__node_status__init(n->status);
    n->status->state = i % 100 == 3 ? SWARM__NODE_STATE__NODE_STATE_DOWN
                                    : SWARM__NODE_STATE__NODE_STATE_READY;
    return n;
}

/* One spec per service, shared by its tasks (as the orchestrator's tasks
 * each carry a copy; sharing only saves the benchmark memory). */
static Swarm__TaskSpec *make_spec(int svc)
{
    Swarm__TaskSpec *spec = xcalloc(1, sizeof *spec);
    swarm__task_spec__init(spec);
    Swarm__Placement *p = xcalloc(1, sizeof *p);
    swarm__placement__init(p);
    spec->placement = p;
    switch (svc) {
        case 1:
            p->n_constraints = 1;
            p->constraints = xcalloc(1, sizeof(char *));
            p->constraints[0] = xstrdup("node.role==worker");
            break;
        case 2:
            p->n_constraints = 2;
            p->constraints = xcalloc(2, sizeof(char *));
            p->constraints[0] = xstrdup("node.labels.disk==ssd");
            p->constraints[1] = xstrdup("node.platform.os==linux");
            break;
        case 3:
        case 4:
            spec->resources = xcalloc(1, sizeof *spec->resources);
            swarm__resource_requirements__init(spec->resources);
            spec->resources->reservations = xcalloc(1, sizeof(Swarm__Resources));
            swarm__resources__init(spec->resources->reservations);
            spec->resources->reservations->nano_cpus = 100000000;
            spec->resources->reservations->memory_bytes = 128LL << 20;
            break;
        case 5:
            p->n_preferences = 1;
            p->preferences = xcalloc(1, sizeof(Swarm__PlacementPreference *));
            p->preferences[0] = xcalloc(1, sizeof(Swarm__PlacementPreference));
            swarm__placement_preference__init(p->preferences[0]);
            p->preferences[0]->spread_descriptor = xstrdup("node.labels.zone");
            break;
        case 6:
            p->max_replicas = 20;
            break;
        default:
            break;
    }
    return spec;
}

static Swarm__Task *make_task(int i, int svc, Swarm__TaskSpec *spec, const char *node_id)
{
    char buf[64];
    Swarm__Task *t = xcalloc(1, sizeof *t);
    swarm__task__init(t);
    snprintf(buf, sizeof buf, "task%07d", i);
    t->id = xstrdup(buf);
    snprintf(buf, sizeof buf, "service%02d", svc);
    t->service_id = xstrdup(buf);
    t->spec = spec;
    t->desired_state = SWARM__TASK_STATE__TASK_STATE_RUNNING;
    t->status = xcalloc(1, sizeof *t->status);
    swarm__task_status__init(t->status);
    t->status->state = node_id != NULL ? SWARM__TASK_STATE__TASK_STATE_RUNNING
                                       : SWARM__TASK_STATE__TASK_STATE_PENDING;
    if (node_id != NULL) {
        t->node_id = xstrdup(node_id);
    }
    return t;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(void)
{
    Swarm__Node **nodes = xcalloc(N_NODES, sizeof *nodes);
    Swarm__Task **running = xcalloc(N_RUNNING, sizeof *running);
    Swarm__Task **pending = xcalloc(N_PENDING, sizeof *pending);
    Swarm__TaskSpec *specs[N_SERVICES];
    struct sched_decision *out = xcalloc(N_PENDING, sizeof *out);
    double times[RUNS];
    size_t placed = 0;

    for (int i = 0; i < N_NODES; i++) {
        nodes[i] = make_node(i);
    }
    for (int s = 0; s < N_SERVICES; s++) {
        specs[s] = make_spec(s);
    }
    for (int i = 0; i < N_RUNNING; i++) {
        running[i] = make_task(i, i % N_SERVICES, specs[i % N_SERVICES], nodes[(i * 7) % N_NODES]->id);
    }
    /* Services interleaved, as tasks come out of the store by ID. */
    for (int i = 0; i < N_PENDING; i++) {
        pending[i] = make_task(N_RUNNING + i, i % N_SERVICES, specs[i % N_SERVICES], NULL);
    }

    for (int r = 0; r < RUNS; r++) {
        double t0 = now_s();
        struct sched *s = sched_new();
        if (s == NULL || sched_set_nodes(s, nodes, N_NODES) != 0) {
            fprintf(stderr, "bench_scheduler: out of memory\n");
            return 1;
        }
        for (int i = 0; i < N_RUNNING; i++) {
            sched_add_task(s, running[i]);
        }
        if (sched_place(s, pending, N_PENDING, 0, out) != 0) {
            fprintf(stderr, "bench_scheduler: sched_place failed\n");
            return 1;
        }
        times[r] = now_s() - t0;
        placed = 0;
        for (int i = 0; i < N_PENDING; i++) {
            placed += out[i].node_id != NULL;
        }
        sched_free(s);
    }
    qsort(times, RUNS, sizeof times[0], cmp_double);
    printf("sched_place_100k_on_1k: %.3f s (median of %d; %zu placed, %zu unplaced)\n",
           times[RUNS / 2], RUNS, placed, (size_t)N_PENDING - placed);
    printf("sched_place_tasks_per_s: %.0f\n", N_PENDING / times[RUNS / 2]);

    for (int i = 0; i < N_PENDING; i++) {
        pending[i]->spec = NULL;
        swarm__task__free_unpacked(pending[i], NULL);
    }
    for (int i = 0; i < N_RUNNING; i++) {
        running[i]->spec = NULL;
        swarm__task__free_unpacked(running[i], NULL);
    }
    for (int s = 0; s < N_SERVICES; s++) {
        swarm__task_spec__free_unpacked(specs[s], NULL);
    }
    for (int i = 0; i < N_NODES; i++) {
        swarm__node__free_unpacked(nodes[i], NULL);
    }
    free(nodes);
    free(running);
    free(pending);
    free(out);
    return 0;
}
