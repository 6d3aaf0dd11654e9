/* See orchloop_int.h (the allocation part of an orchestration pass). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "allocator.h"
#include "err.h"
#include "log.h"
#include "orchloop_int.h"
#include "pbcopy.h"


/* The allocator's view for this pass: every network, and every address a
 * service or a live task holds in the store (a new leader starts from
 * exactly what is committed; raft's barrier ran before it leads). NULL when
 * there is no network (nothing can be allocated) or the store failed. */
static struct alloc *pass_alloc(struct store *store, struct pass *p)
{
    Swarm__Service **svcs = NULL;
    Swarm__Task **tasks = NULL;
    size_t n_svcs = 0, n_tasks = 0;
    if (p->alloc_built) {
        return p->alloc;
    }
    p->alloc_built = true;
    if (store_network_list(store, &p->nets, &p->n_nets) != 0 || p->n_nets == 0 ||
        (p->alloc = alloc_new(p->nets, p->n_nets)) == NULL) {
        return NULL;
    }
    if (store_service_list(store, &svcs, &n_svcs) != 0 || store_task_list(store, &tasks, &n_tasks) != 0) {
        store_service_free_list(svcs, n_svcs);
        alloc_free(p->alloc);
        p->alloc = NULL;
        return NULL;
    }
    for (size_t i = 0; i < n_svcs; i++) {
        alloc_mark_service(p->alloc, svcs[i]);
    }
    for (size_t i = 0; i < n_tasks; i++) {
        alloc_mark_task(p->alloc, tasks[i]);
    }
    Swarm__Node **nodes = NULL;
    size_t n_nodes = 0;
    if (store_node_list(store, &nodes, &n_nodes) == 0) {
        for (size_t i = 0; i < n_nodes; i++) {
            alloc_mark_node(p->alloc, nodes[i]);
        }
        store_node_free_list(nodes, n_nodes);
    }
    if (alloc_conflicts(p->alloc) > 0) {
        log_warn("allocator", "%zu addresses are held twice in the store", alloc_conflicts(p->alloc));
    }
    store_service_free_list(svcs, n_svcs);
    store_task_free_list(tasks, n_tasks);
    return p->alloc;
}

void orchloop_alloc_nodes(struct store *store, struct pass *p, Swarm__Node **nodes, size_t n_nodes,
                          Swarm__Service **svcs, size_t n_svcs)
{
    bool lacking = false, publishes = false;
    char errmsg[SWARM_ERRMSG_SIZE];
    for (size_t i = 0; i < n_nodes && !lacking; i++) {
        lacking = nodes[i]->n_attachments == 0;
    }
    if (!lacking) {
        return;
    }
    Swarm__Service **own = NULL;
    size_t n_own = 0;
    if (svcs == NULL && store_service_list(store, &own, &n_own) == 0) {
        svcs = own;
        n_svcs = n_own;
    }
    for (size_t i = 0; i < n_svcs && !publishes; i++) {
        publishes = alloc_publishes_ingress(svcs[i]->spec);
    }
    store_service_free_list(own, n_own);
    struct alloc *a;
    if (!publishes || (a = pass_alloc(store, p)) == NULL) {
        return;
    }
    for (size_t i = 0; i < n_nodes; i++) {
        Swarm__Node *n = nodes[i];
        if (n->n_attachments > 0) {
            continue;
        }
        int rv = alloc_node_ingress(a, n, errmsg);
        if (rv < 0) {
            log_warn("allocator", "node %s: ingress address: %s", n->id, errmsg);
            continue;
        }
        if (rv == 0) {
            continue;
        }
        Swarm__Node *copy = pb_copy(&n->base);
        Swarm__StoreAction *act =
            copy != NULL ? orchloop_pass_action(p, SWARM__STORE_ACTION_KIND__STORE_ACTION_UPDATE) : NULL;
        if (act == NULL) {
            if (copy != NULL) {
                swarm__node__free_unpacked(copy, NULL);
            }
            continue;
        }
        act->target_case = SWARM__STORE_ACTION__TARGET_NODE;
        act->node = copy;
    }
}

void orchloop_alloc_free(struct pass *p)
{
    alloc_free(p->alloc);
    store_network_free_list(p->nets, p->n_nets);
}

/* Does the service have (or need) VIPs: networks, ingress ports, or VIPs
 * it must give back? */
static bool service_on_networks(const Swarm__Service *svc)
{
    return svc->spec != NULL && ((svc->spec->task != NULL && svc->spec->task->n_networks > 0) ||
                                 alloc_publishes_ingress(svc->spec) ||
                                 (svc->endpoint != NULL && svc->endpoint->n_virtual_ips > 0));
}

/* The service's VIPs as its spec asks. When they change, the pass updates
 * the service (compare-and-set on the version read) and leaves its tasks
 * for the pass after, which sees the endpoint committed. True when it did. */
bool orchloop_alloc_service(struct store *store, struct pass *p, Swarm__Service *svc)
{
    Swarm__Endpoint *ep = NULL;
    struct alloc *a;
    bool changed = false;
    char errmsg[SWARM_ERRMSG_SIZE];
    if (!service_on_networks(svc) || (a = pass_alloc(store, p)) == NULL) {
        return false;
    }
    if (alloc_service_endpoint(a, svc, &ep, &changed, errmsg) != 0) {
        log_warn("allocator", "service %s: %s", svc->id, errmsg);
        return false; /* its tasks say why when they cannot be attached */
    }
    if (!changed) {
        swarm__endpoint__free_unpacked(ep, NULL);
        return false;
    }
    Swarm__StoreAction *act = orchloop_pass_action(p, SWARM__STORE_ACTION_KIND__STORE_ACTION_UPDATE);
    if (act == NULL) {
        swarm__endpoint__free_unpacked(ep, NULL);
        return false;
    }
    /* The action takes the service read from the store (the caller's), with
     * its version for the compare-and-set. */
    if (svc->endpoint != NULL) {
        swarm__endpoint__free_unpacked(svc->endpoint, NULL);
    }
    svc->endpoint = ep;
    act->target_case = SWARM__STORE_ACTION__TARGET_SERVICE;
    act->service = svc;
    return true;
}

/* Attach a new task of this pass to its networks. One that cannot be
 * stays pending, saying why, and out of this pass's scheduling; a later
 * pass tries again (allocate_waiting). */
void orchloop_alloc_created(struct store *store, struct pass *p, int64_t now)
{
    Swarm__Service *svc = NULL;
    size_t kept = 0;
    char errmsg[SWARM_ERRMSG_SIZE];
    for (size_t i = 0; i < p->n_created; i++) {
        Swarm__Task *t = p->created[i];
        if (svc == NULL || strcmp(svc->id, t->service_id) != 0) {
            if (svc != NULL) {
                swarm__service__free_unpacked(svc, NULL);
            }
            svc = NULL;
            if (store_service_get(store, t->service_id, &svc) != 0) {
                svc = NULL;
            }
        }
        bool wants = (t->spec != NULL && t->spec->n_networks > 0) ||
                     (svc != NULL && alloc_publishes_ingress(svc->spec));
        if (!wants && svc != NULL && svc->endpoint != NULL && svc->endpoint->n_ports > 0 &&
            t->endpoint == NULL) {
            /* Host-mode ports: the task carries them (service ps, the node). */
            t->endpoint = pb_copy(&svc->endpoint->base);
        }
        if (!wants) {
            p->created[kept++] = t;
            continue;
        }
        struct alloc *a = pass_alloc(store, p);
        int rv = a != NULL ? alloc_task(a, t, svc, errmsg) : SWARM_ENOTFOUND;
        if (rv == 0) {
            p->created[kept++] = t;
            continue;
        }
        if (a == NULL) {
            snprintf(errmsg, sizeof errmsg, "no network to attach to");
        }
        /* Waiting: it keeps the service's endpoint spec, so that
         * alloc_task_waits knows it needs ingress too. */
        if (svc != NULL && svc->spec != NULL && svc->spec->endpoint != NULL && t->endpoint == NULL &&
            (t->endpoint = calloc(1, sizeof *t->endpoint)) != NULL) {
            swarm__endpoint__init(t->endpoint);
            t->endpoint->spec = pb_copy(&svc->spec->endpoint->base);
        }
        Swarm__TaskStatus *st = orchloop_status_new(SWARM__TASK_STATE__TASK_STATE_PENDING,
                                           "pending task network allocation", errmsg, now);
        if (st != NULL) {
            swarm__task_status__free_unpacked(t->status, NULL);
            t->status = st;
        }
    }
    p->n_created = kept;
    if (svc != NULL) {
        swarm__service__free_unpacked(svc, NULL);
    }
}

/* Stored tasks still waiting for addresses (an exhausted subnet, a network
 * that came later): attach those that can be now (a whole-task update: no
 * node has been sent them, the dispatcher holds waiting tasks back, so no
 * report can race it), and say why for the others when the reason
 * changed. */
void orchloop_alloc_waiting(struct store *store, struct pass *p, int64_t now)
{
    Swarm__Task **tasks = NULL;
    Swarm__Service *svc = NULL;
    size_t n = 0;
    char errmsg[SWARM_ERRMSG_SIZE];
    if (store_task_list_unplaced(store, &tasks, &n) != 0) {
        return;
    }
    if (p->n_leaving > 1) {
        qsort(p->leaving, p->n_leaving, sizeof *p->leaving, orchloop_cmp_str);
    }
    for (size_t i = 0; i < n; i++) {
        Swarm__Task *t = tasks[i];
        if (!alloc_task_waits(t) || t->desired_state > SWARM__TASK_STATE__TASK_STATE_RUNNING ||
            t->status == NULL || t->status->state > SWARM__TASK_STATE__TASK_STATE_PENDING ||
            orchloop_pass_is_leaving(p, t->id)) {
            continue;
        }
        if (svc == NULL || strcmp(svc->id, t->service_id) != 0) {
            if (svc != NULL) {
                swarm__service__free_unpacked(svc, NULL);
            }
            if (store_service_get(store, t->service_id, &svc) != 0) {
                svc = NULL;
                continue;
            }
        }
        struct alloc *a = pass_alloc(store, p);
        int rv = a != NULL ? alloc_task(a, t, svc, errmsg) : SWARM_ENOTFOUND;
        if (rv != 0 && t->status->err != NULL && strcmp(t->status->err, errmsg) == 0) {
            continue; /* the same reason again is no news */
        }
        Swarm__TaskStatus *st =
            rv == 0 ? orchloop_status_new(SWARM__TASK_STATE__TASK_STATE_PENDING, "pending task scheduling", NULL, now)
                    : orchloop_status_new(SWARM__TASK_STATE__TASK_STATE_PENDING, "pending task network allocation",
                                 a != NULL ? errmsg : "no network to attach to", now);
        if (st == NULL) {
            continue;
        }
        swarm__task_status__free_unpacked(t->status, NULL);
        t->status = st;
        if (t->meta != NULL) {
            t->meta->version = 0; /* last writer wins: see above */
        }
        if (orchloop_pass_task_action(p, SWARM__STORE_ACTION_KIND__STORE_ACTION_UPDATE, t) == 0) {
            tasks[i] = NULL; /* the command owns it now */
        }
    }
    if (svc != NULL) {
        swarm__service__free_unpacked(svc, NULL);
    }
    for (size_t i = 0; i < n; i++) {
        if (tasks[i] != NULL) {
            swarm__task__free_unpacked(tasks[i], NULL);
        }
    }
    free(tasks);
}
