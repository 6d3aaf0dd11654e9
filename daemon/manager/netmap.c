/* Network maps from the store's objects: see netmap.h. */
#include "netmap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "pbcopy.h"
#include "vec.h"

bool netmap_task_live(const Swarm__Task *t)
{
    return t != NULL && t->node_id != NULL && t->node_id[0] != '\0' &&
           t->desired_state <= SWARM__TASK_STATE__TASK_STATE_RUNNING && t->status != NULL &&
           t->status->state >= SWARM__TASK_STATE__TASK_STATE_ASSIGNED &&
           t->status->state <= SWARM__TASK_STATE__TASK_STATE_RUNNING;
}

const char *netmap_attachment_network_id(const Swarm__NetworkAttachment *a)
{
    if (a == NULL || a->network == NULL || a->network->id == NULL || a->network->id[0] == '\0') {
        return NULL;
    }
    return a->network->id;
}

bool netmap_addr_ip(const char *cidr, char *out, size_t size)
{
    size_t len;
    if (cidr == NULL) {
        return false;
    }
    len = strcspn(cidr, "/");
    if (len == 0 || len >= size) {
        return false;
    }
    memcpy(out, cidr, len);
    out[len] = '\0';
    return true;
}

/* ------------------------------------------------------------- uses */

static int use_cmp(const void *a, const void *b)
{
    const struct netmap_use *x = a, *y = b;
    int c = strcmp(x->node_id, y->node_id);
    return c != 0 ? c : strcmp(x->network_id, y->network_id);
}

int netmap_uses(const struct netmap_view *v, struct netmap_use **out, size_t *n)
{
    struct netmap_use *uses = NULL;
    size_t len = 0, cap = 0, k = 0;
    *out = NULL;
    *n = 0;
    for (size_t i = 0; i < v->n_tasks; i++) {
        const Swarm__Task *t = v->tasks[i];
        if (!netmap_task_live(t)) {
            continue;
        }
        for (size_t j = 0; j < t->n_networks; j++) {
            const char *nid = netmap_attachment_network_id(t->networks[j]);
            if (nid == NULL) {
                continue;
            }
            if (vec_grow(uses, cap, len + 1) != 0) {
                free(uses);
                return SWARM_ENOMEM;
            }
            uses[len].node_id = t->node_id;
            uses[len].network_id = nid;
            len++;
        }
    }
    /* A node with an address on ingress (the routing mesh) needs ingress's
     * map whether or not it runs a task there. */
    for (size_t i = 0; i < v->n_nodes; i++) {
        const Swarm__Node *nd = v->nodes[i];
        for (size_t j = 0; nd != NULL && nd->id != NULL && j < nd->n_attachments; j++) {
            const char *nid = netmap_attachment_network_id(nd->attachments[j]);
            if (nid == NULL) {
                continue;
            }
            if (vec_grow(uses, cap, len + 1) != 0) {
                free(uses);
                return SWARM_ENOMEM;
            }
            uses[len].node_id = nd->id;
            uses[len].network_id = nid;
            len++;
        }
    }
    if (len == 0) {
        return 0;
    }
    qsort(uses, len, sizeof *uses, use_cmp);
    for (size_t i = 0; i < len; i++) { /* each pair once */
        if (k == 0 || use_cmp(&uses[k - 1], &uses[i]) != 0) {
            uses[k++] = uses[i];
        }
    }
    *out = uses;
    *n = k;
    return 0;
}

size_t netmap_uses_of_node(const struct netmap_use *uses, size_t n, const char *node_id,
                           size_t *first)
{
    size_t lo = 0, hi = n, count = 0;
    while (lo < hi) { /* the first use whose node is >= node_id */
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(uses[mid].node_id, node_id) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *first = lo;
    while (lo + count < n && strcmp(uses[lo + count].node_id, node_id) == 0) {
        count++;
    }
    return count;
}

/* ------------------------------------------------------------- build */

static const Swarm__Node *view_node(const struct netmap_view *v, const char *id)
{
    for (size_t i = 0; i < v->n_nodes; i++) {
        if (v->nodes[i] != NULL && v->nodes[i]->id != NULL && strcmp(v->nodes[i]->id, id) == 0) {
            return v->nodes[i];
        }
    }
    return NULL;
}

/* The node's underlay IP: its status address (the dispatcher records the
 * IP alone), else the IP of its advertised address; "" if unknown. */
static void node_ip(const Swarm__Node *n, char *out, size_t size)
{
    const char *a = NULL;
    out[0] = '\0';
    if (n == NULL) {
        return;
    }
    if (n->status != NULL && n->status->addr != NULL && n->status->addr[0] != '\0') {
        a = n->status->addr;
    } else if (n->advertise_addr != NULL && n->advertise_addr[0] != '\0') {
        a = n->advertise_addr;
    } else {
        return;
    }
    size_t len = strlen(a);
    const char *colon = strrchr(a, ':');
    if (a[0] == '[') { /* [v6]:port */
        const char *end = strchr(a, ']');
        a++;
        len = end != NULL ? (size_t)(end - a) : strlen(a);
    } else if (colon != NULL && strchr(a, ':') == colon) { /* v4:port */
        len = (size_t)(colon - a);
    }
    if (len < size) {
        memcpy(out, a, len);
        out[len] = '\0';
    }
}

/* The attachment of `t` to network_id, NULL if none. */
static const Swarm__NetworkAttachment *task_attachment(const Swarm__Task *t, const char *network_id)
{
    for (size_t j = 0; j < t->n_networks; j++) {
        const char *nid = netmap_attachment_network_id(t->networks[j]);
        if (nid != NULL && strcmp(nid, network_id) == 0) {
            return t->networks[j];
        }
    }
    return NULL;
}

/* The aliases a task spec gives on network_id. */
static const Swarm__NetworkAttachmentConfig *spec_attachment(const Swarm__TaskSpec *spec,
                                                            const char *network_id)
{
    for (size_t j = 0; spec != NULL && j < spec->n_networks; j++) {
        const Swarm__NetworkAttachmentConfig *c = spec->networks[j];
        if (c != NULL && c->target != NULL && strcmp(c->target, network_id) == 0) {
            return c;
        }
    }
    return NULL;
}

static int strs_copy(char **src, size_t n, char ***out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    if (n == 0) {
        return 0;
    }
    if ((*out = calloc(n, sizeof **out)) == NULL) {
        return SWARM_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (((*out)[i] = strdup(src[i] != NULL ? src[i] : "")) == NULL) {
            return SWARM_ENOMEM; /* the caller frees what was made */
        }
        (*n_out)++;
    }
    return 0;
}

/* Docker's task name: service.slot.id (global: service.nodeid.id). */
static char *task_name(const Swarm__Task *t)
{
    char *s = NULL;
    const char *svc = t->service_name != NULL ? t->service_name : "";
    int rv;
    if (t->annotations != NULL && t->annotations->name != NULL && t->annotations->name[0]) {
        rv = asprintf(&s, "%s.%s", t->annotations->name, t->id);
    } else if (t->slot > 0) {
        rv = asprintf(&s, "%s.%llu.%s", svc, (unsigned long long)t->slot, t->id);
    } else {
        rv = asprintf(&s, "%s.%s.%s", svc, t->node_id, t->id);
    }
    return rv < 0 ? NULL : s;
}

static Swarm__NetworkEndpoint *endpoint_new(const struct netmap_view *v, const Swarm__Task *t,
                                            const char *network_id, const char *ip)
{
    Swarm__NetworkEndpoint *e = calloc(1, sizeof *e);
    const Swarm__NetworkAttachmentConfig *cfg = spec_attachment(t->spec, network_id);
    const Swarm__Node *node = view_node(v, t->node_id);
    char nip[64];
    if (e == NULL) {
        return NULL;
    }
    swarm__network_endpoint__init(e);
    node_ip(node, nip, sizeof nip);
    e->task_id = strdup(t->id);
    e->task_name = task_name(t);
    e->service_id = strdup(t->service_id != NULL ? t->service_id : "");
    e->service_name = strdup(t->service_name != NULL ? t->service_name : "");
    e->addr = strdup(ip);
    e->node_addr = strdup(nip);
    e->ready = t->status->state == SWARM__TASK_STATE__TASK_STATE_RUNNING &&
               (node == NULL || node->status == NULL ||
                node->status->state != SWARM__NODE_STATE__NODE_STATE_DOWN);
    if (e->task_id == NULL || e->task_name == NULL || e->service_id == NULL ||
        e->service_name == NULL || e->addr == NULL || e->node_addr == NULL ||
        (cfg != NULL && strs_copy(cfg->aliases, cfg->n_aliases, &e->aliases, &e->n_aliases) != 0)) {
        swarm__network_endpoint__free_unpacked(e, NULL);
        return NULL;
    }
    return e;
}

static bool service_on_network(const Swarm__Service *s, const char *network_id)
{
    if (s->endpoint != NULL) {
        for (size_t i = 0; i < s->endpoint->n_virtual_ips; i++) {
            const Swarm__EndpointVirtualIP *vip = s->endpoint->virtual_ips[i];
            if (vip != NULL && vip->network_id != NULL &&
                strcmp(vip->network_id, network_id) == 0) {
                return true;
            }
        }
    }
    return false;
}

static bool endpoints_have_service(Swarm__NetworkEndpoint *const *eps, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(eps[i]->service_id, id) == 0) {
            return true;
        }
    }
    return false;
}

static Swarm__NetworkServiceEntry *service_entry_new(const Swarm__Service *s,
                                                     const char *network_id)
{
    Swarm__NetworkServiceEntry *e = calloc(1, sizeof *e);
    const Swarm__ServiceSpec *spec = s->spec;
    const Swarm__NetworkAttachmentConfig *cfg =
        spec_attachment(spec != NULL ? spec->task : NULL, network_id);
    const char *mode = spec != NULL && spec->endpoint != NULL && spec->endpoint->mode != NULL &&
                               spec->endpoint->mode[0] != '\0'
                           ? spec->endpoint->mode
                           : "vip";
    char vip[64] = "";
    if (e == NULL) {
        return NULL;
    }
    swarm__network_service_entry__init(e);
    for (size_t i = 0; strcmp(mode, "dnsrr") != 0 && s->endpoint != NULL &&
                       i < s->endpoint->n_virtual_ips;
         i++) {
        const Swarm__EndpointVirtualIP *v = s->endpoint->virtual_ips[i];
        if (v != NULL && v->network_id != NULL && strcmp(v->network_id, network_id) == 0 &&
            netmap_addr_ip(v->addr, vip, sizeof vip)) {
            break;
        }
    }
    e->service_id = strdup(s->id);
    e->name = strdup(spec != NULL && spec->annotations != NULL && spec->annotations->name != NULL
                         ? spec->annotations->name
                         : "");
    e->vip = strdup(vip);
    e->endpoint_mode = strdup(mode);
    if (e->service_id == NULL || e->name == NULL || e->vip == NULL || e->endpoint_mode == NULL ||
        (cfg != NULL && strs_copy(cfg->aliases, cfg->n_aliases, &e->aliases, &e->n_aliases) != 0)) {
        goto err;
    }
    /* The ports as published (the allocator's), else as asked. */
    Swarm__PortConfig **ports = NULL;
    size_t n_ports = 0;
    if (s->endpoint != NULL && s->endpoint->n_ports > 0) {
        ports = s->endpoint->ports;
        n_ports = s->endpoint->n_ports;
    } else if (spec != NULL && spec->endpoint != NULL) {
        ports = spec->endpoint->ports;
        n_ports = spec->endpoint->n_ports;
    }
    if (n_ports > 0 && (e->ports = calloc(n_ports, sizeof *e->ports)) == NULL) {
        goto err;
    }
    for (size_t i = 0; i < n_ports; i++) {
        if ((e->ports[e->n_ports] = pb_copy(&ports[i]->base)) == NULL) {
            goto err;
        }
        e->n_ports++;
    }
    return e;
err:
    swarm__network_service_entry__free_unpacked(e, NULL);
    return NULL;
}

static int endpoint_cmp(const void *a, const void *b)
{
    const Swarm__NetworkEndpoint *x = *(Swarm__NetworkEndpoint *const *)a;
    const Swarm__NetworkEndpoint *y = *(Swarm__NetworkEndpoint *const *)b;
    int c = strcmp(x->task_id, y->task_id);
    return c != 0 ? c : strcmp(x->addr, y->addr); /* nodes' endpoints: no task */
}

/* A node's own endpoint on a network (its ingress address): no task, never
 * ready (no DNS name, no VIP backend), there so that the other nodes can
 * reach it over VXLAN (replies to the connections it forwards). */
static Swarm__NetworkEndpoint *node_endpoint_new(const Swarm__Node *n, const char *ip)
{
    Swarm__NetworkEndpoint *e = calloc(1, sizeof *e);
    char nip[64];
    if (e == NULL) {
        return NULL;
    }
    swarm__network_endpoint__init(e);
    node_ip(n, nip, sizeof nip);
    e->addr = strdup(ip);
    e->node_addr = strdup(nip);
    if (e->addr == NULL || e->node_addr == NULL) {
        swarm__network_endpoint__free_unpacked(e, NULL);
        return NULL;
    }
    return e;
}

static int service_entry_cmp(const void *a, const void *b)
{
    const Swarm__NetworkServiceEntry *x = *(Swarm__NetworkServiceEntry *const *)a;
    const Swarm__NetworkServiceEntry *y = *(Swarm__NetworkServiceEntry *const *)b;
    return strcmp(x->service_id, y->service_id);
}

/* The endpoints: one per live task with an address on the network. The
 * network object comes from the first attachment found. */
static int build_endpoints(const struct netmap_view *v, const char *network_id,
                           Swarm__NetworkMap *m)
{
    size_t cap = 0;
    for (size_t i = 0; i < v->n_tasks; i++) {
        const Swarm__Task *t = v->tasks[i];
        const Swarm__NetworkAttachment *att;
        char ip[64];
        if (!netmap_task_live(t) || (att = task_attachment(t, network_id)) == NULL) {
            continue;
        }
        if (m->network == NULL && (m->network = pb_copy(&att->network->base)) == NULL) {
            return SWARM_ENOMEM;
        }
        if (att->n_addresses == 0 || !netmap_addr_ip(att->addresses[0], ip, sizeof ip)) {
            continue; /* not allocated: nothing to reach */
        }
        if (vec_grow(m->endpoints, cap, m->n_endpoints + 1) != 0) {
            return SWARM_ENOMEM;
        }
        if ((m->endpoints[m->n_endpoints] = endpoint_new(v, t, network_id, ip)) == NULL) {
            return SWARM_ENOMEM;
        }
        m->n_endpoints++;
    }
    for (size_t i = 0; i < v->n_nodes; i++) {
        const Swarm__Node *nd = v->nodes[i];
        for (size_t j = 0; nd != NULL && j < nd->n_attachments; j++) {
            const Swarm__NetworkAttachment *att = nd->attachments[j];
            const char *nid = netmap_attachment_network_id(att);
            char ip[64];
            if (nid == NULL || strcmp(nid, network_id) != 0) {
                continue;
            }
            if (m->network == NULL && (m->network = pb_copy(&att->network->base)) == NULL) {
                return SWARM_ENOMEM;
            }
            if (att->n_addresses == 0 || !netmap_addr_ip(att->addresses[0], ip, sizeof ip)) {
                continue;
            }
            if (vec_grow(m->endpoints, cap, m->n_endpoints + 1) != 0) {
                return SWARM_ENOMEM;
            }
            if ((m->endpoints[m->n_endpoints] = node_endpoint_new(nd, ip)) == NULL) {
                return SWARM_ENOMEM;
            }
            m->n_endpoints++;
        }
    }
    if (m->n_endpoints > 1) {
        qsort(m->endpoints, m->n_endpoints, sizeof *m->endpoints, endpoint_cmp);
    }
    return 0;
}

static int build_services(const struct netmap_view *v, const char *network_id,
                          Swarm__NetworkMap *m)
{
    size_t cap = 0;
    for (size_t i = 0; i < v->n_services; i++) {
        const Swarm__Service *s = v->services[i];
        if (s == NULL || s->id == NULL ||
            (!endpoints_have_service(m->endpoints, m->n_endpoints, s->id) &&
             !service_on_network(s, network_id))) {
            continue;
        }
        if (vec_grow(m->services, cap, m->n_services + 1) != 0) {
            return SWARM_ENOMEM;
        }
        if ((m->services[m->n_services] = service_entry_new(s, network_id)) == NULL) {
            return SWARM_ENOMEM;
        }
        m->n_services++;
    }
    if (m->n_services > 1) {
        qsort(m->services, m->n_services, sizeof *m->services, service_entry_cmp);
    }
    return 0;
}

int netmap_build(const struct netmap_view *v, const char *network_id, Swarm__NetworkMap **out)
{
    Swarm__NetworkMap *m = calloc(1, sizeof *m);
    int rv;
    *out = NULL;
    if (m == NULL) {
        return SWARM_ENOMEM;
    }
    swarm__network_map__init(m);
    if ((rv = build_endpoints(v, network_id, m)) != 0) {
        goto err;
    }
    if (m->network == NULL) { /* no live task on it: no node needs it */
        swarm__network_map__free_unpacked(m, NULL);
        return 0;
    }
    if ((rv = build_services(v, network_id, m)) != 0) {
        goto err;
    }
    *out = m;
    return 0;
err:
    swarm__network_map__free_unpacked(m, NULL);
    return rv;
}
