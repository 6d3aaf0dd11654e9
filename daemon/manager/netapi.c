/* The Control service's networks (netapi.h).
 *
 * create: validate + allocate (allocator.h) -> one StoreCommand -> raft ->
 *   answer with the stored network. remove: refuse while in use -> one
 *   StoreCommand (compare-and-set on the version read) -> answer.
 * Failures: bad specs INVALID_ARGUMENT, a name in use or an overlapping
 *   subnet ALREADY_EXISTS, in use FAILED_PRECONDITION, an exhausted pool
 *   RESOURCE_EXHAUSTED, no leader UNAVAILABLE; nothing is proposed then. */
#include "netapi.h"

#include <stdlib.h>
#include <string.h>

#include "allocator.h"
#include "control.pb-c.h"
#include "err.h"
#include "forward.h"
#include "id.h"
#include "listpage.h"
#include "pbcopy.h"

#define NETAPI_NAME_MAX 255

struct netapi {
    const struct menv *env;
    unsigned pending; /* proposals whose callback has not run */
    bool closing;
    void (*close_cb)(void *data);
    void *close_data;
};

static void netapi_maybe_free(struct netapi *na)
{
    if (!na->closing || na->pending > 0) {
        return;
    }
    void (*cb)(void *) = na->close_cb;
    void *data = na->close_data;
    free(na);
    if (cb != NULL) {
        cb(data);
    }
}

static struct netapi *netapi_require(struct api_call *call, void *data)
{
    const struct manager_slot *slot = mslot_require(call, data);
    if (slot == NULL) {
        return NULL;
    }
    if (slot->network == NULL) {
        api_call_error(call, API_FAILED_PRECONDITION, "%s", MANAGER_NOT_MANAGER_MSG);
        return NULL;
    }
    return slot->network;
}

static const char *network_name(const Swarm__Network *nw)
{
    return nw->spec != NULL && nw->spec->annotations != NULL && nw->spec->annotations->name != NULL
               ? nw->spec->annotations->name
               : "";
}

static int find_network(struct netapi *na, struct api_call *call, const char *ref, Swarm__Network **out)
{
    size_t matches = 0;
    int rv;
    if (ref == NULL || ref[0] == '\0') {
        api_call_error(call, API_INVALID_ARGUMENT, "network ID or name must be provided");
        return -1;
    }
    rv = store_network_find(na->env->store, ref, out, &matches);
    if (rv == SWARM_ENOTFOUND) {
        api_call_error(call, API_NOT_FOUND, "network %s not found", ref);
    } else if (rv == SWARM_EAMBIGUOUS) {
        api_call_error(call, API_FAILED_PRECONDITION, "network %s is ambiguous (%zu matches found)", ref, matches);
    } else if (rv != 0) {
        api_call_error(call, API_INTERNAL, "reading network %s: %s", ref, swarm_strerror(rv));
    }
    return rv == 0 ? 0 : -1;
}

/* ---------------------------------------------------------------- writes */

struct net_write {
    struct netapi *na;
    struct api_call *call;
    char id[ID_LEN + 1];
    bool remove;
};

static void network_written_cb(int status, const struct store_result *res, void *data)
{
    struct net_write *w = data;
    struct netapi *na = w->na;
    Swarm__Network *nw = NULL;
    if (status != 0 || res->status != 0) {
        mslot_reply_error(w->call, status != 0 ? status : res->status,
                          status != 0 ? "writing the network" : res->message);
    } else if (w->remove) {
        Swarm__RemoveNetworkResponse resp = SWARM__REMOVE_NETWORK_RESPONSE__INIT;
        api_call_reply(w->call, &resp.base);
    } else if (store_network_get(na->env->store, w->id, &nw) == 0) {
        Swarm__CreateNetworkResponse resp = SWARM__CREATE_NETWORK_RESPONSE__INIT;
        resp.network = nw;
        api_call_reply(w->call, &resp.base);
        swarm__network__free_unpacked(nw, NULL);
    } else {
        api_call_error(w->call, API_INTERNAL, "network vanished after the write");
    }
    free(w);
    na->pending--;
    netapi_maybe_free(na);
}

static void propose_network(struct netapi *na, struct api_call *call, Swarm__StoreActionKind kind,
                            Swarm__Network *nw)
{
    Swarm__StoreCommand cmd = SWARM__STORE_COMMAND__INIT;
    Swarm__StoreAction action = SWARM__STORE_ACTION__INIT;
    Swarm__StoreAction *actions[1] = {&action};
    struct net_write *w = calloc(1, sizeof *w);
    int rv;
    if (w == NULL) {
        api_call_error(call, API_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    w->na = na;
    w->call = call;
    w->remove = kind == SWARM__STORE_ACTION_KIND__STORE_ACTION_REMOVE;
    snprintf(w->id, sizeof w->id, "%s", nw->id);
    action.kind = kind;
    action.target_case = SWARM__STORE_ACTION__TARGET_NETWORK;
    action.network = nw;
    cmd.n_actions = 1;
    cmd.actions = actions;
    rv = menv_propose(na->env, &cmd, network_written_cb, w);
    if (rv != 0) {
        mslot_reply_error(call, rv, "proposing the change");
        free(w);
        return;
    }
    na->pending++;
}

/* Labels as Docker checks them: a key, unique. */
static int check_labels(const Swarm__Annotations *a, char *errmsg)
{
    for (size_t i = 0; a != NULL && i < a->n_labels; i++) {
        if (a->labels[i]->key == NULL || a->labels[i]->key[0] == '\0') {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "invalid label: empty key");
            return SWARM_EINVAL;
        }
    }
    return 0;
}

static void create_network_cb(struct api_call *call, const ProtobufCMessage *msg, void *data)
{
    const Swarm__CreateNetworkRequest *req = (const Swarm__CreateNetworkRequest *)msg;
    struct netapi *na = netapi_require(call, data);
    Swarm__Network nw = SWARM__NETWORK__INIT, *same = NULL, **all = NULL;
    Swarm__IPAMConfig ipam = SWARM__IPAMCONFIG__INIT;
    Swarm__Cluster *cluster = NULL;
    Swarm__NetworkSpec *spec = NULL;
    size_t n_all = 0;
    char id[ID_LEN + 1], errmsg[SWARM_ERRMSG_SIZE] = "";
    const char *name;
    int rv;

    if (na == NULL) {
        return;
    }
    name = req->spec != NULL && req->spec->annotations != NULL ? req->spec->annotations->name : NULL;
    if (name == NULL || name[0] == '\0') {
        api_call_error(call, API_INVALID_ARGUMENT, "meta: name must be provided");
        return;
    }
    if (strlen(name) > NETAPI_NAME_MAX || strchr(name, '/') != NULL || strchr(name, ' ') != NULL) {
        api_call_error(call, API_INVALID_ARGUMENT, "invalid name %s: a name has at most %d characters, "
                       "no '/' and no spaces", name, NETAPI_NAME_MAX);
        return;
    }
    if (check_labels(req->spec->annotations, errmsg) != 0) {
        api_call_error(call, API_INVALID_ARGUMENT, "%s", errmsg);
        return;
    }
    if (store_network_get_by_name(na->env->store, name, &same) == 0) {
        api_call_error(call, API_ALREADY_EXISTS, "network with name %s already exists", name);
        swarm__network__free_unpacked(same, NULL);
        return;
    }
    if (store_network_list(na->env->store, &all, &n_all) != 0) {
        api_call_error(call, API_INTERNAL, "listing networks failed");
        return;
    }
    for (size_t i = 0; req->spec->ingress && i < n_all; i++) {
        if (all[i]->spec != NULL && all[i]->spec->ingress) {
            api_call_error(call, API_ALREADY_EXISTS, "ingress network (%s) is already present", all[i]->id);
            goto out;
        }
    }
    struct alloc_pool_config pc = {NULL, 0, 0};
    if (store_cluster_get_default(na->env->store, &cluster) == 0) {
        pc.pools = cluster->default_address_pool;
        pc.n_pools = cluster->n_default_address_pool;
        pc.subnet_size = cluster->subnet_size;
    }
    spec = pb_copy(&req->spec->base);
    if (spec == NULL) {
        api_call_error(call, API_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    rv = alloc_network(spec, &pc, all, n_all, &ipam, &nw.vni, errmsg);
    if (rv != 0) {
        api_call_error(call,
                       rv == SWARM_EEXIST     ? API_INVALID_ARGUMENT
                       : rv == SWARM_EINVAL   ? API_INVALID_ARGUMENT
                       : rv == SWARM_EUNAVAIL ? API_RESOURCE_EXHAUSTED
                                              : API_INTERNAL,
                       "%s", errmsg);
        goto out;
    }
    if (spec->driver == NULL || spec->driver[0] == '\0') {
        if (spec->driver != protobuf_c_empty_string) {
            free(spec->driver);
        }
        spec->driver = strdup("overlay");
    }
    if (spec->driver == NULL) {
        api_call_error(call, API_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    if (id_generate(id) != 0) {
        api_call_error(call, API_INTERNAL, "no randomness for an ID");
        goto out;
    }
    nw.id = id;
    nw.spec = spec;
    nw.ipam = &ipam;
    propose_network(na, call, SWARM__STORE_ACTION_KIND__STORE_ACTION_CREATE, &nw);
out:
    if (ipam.subnet != protobuf_c_empty_string) {
        free(ipam.subnet);
    }
    if (ipam.gateway != protobuf_c_empty_string) {
        free(ipam.gateway);
    }
    if (ipam.range != protobuf_c_empty_string) {
        free(ipam.range);
    }
    if (spec != NULL) {
        swarm__network_spec__free_unpacked(spec, NULL);
    }
    if (cluster != NULL) {
        swarm__cluster__free_unpacked(cluster, NULL);
    }
    store_network_free_list(all, n_all);
}

/* Who uses the network: a service naming it (or, for ingress, publishing
 * ingress ports), else a live task attached to it. */
static bool network_in_use(struct store *store, const Swarm__Network *nw, char *errmsg)
{
    Swarm__Service **svcs = NULL;
    Swarm__Task **tasks = NULL;
    size_t n = 0, nt = 0;
    bool used = false;
    if (store_service_list(store, &svcs, &n) == 0) {
        for (size_t i = 0; i < n && !used; i++) {
            const Swarm__TaskSpec *ts = svcs[i]->spec != NULL ? svcs[i]->spec->task : NULL;
            for (size_t k = 0; ts != NULL && k < ts->n_networks && !used; k++) {
                if (strcmp(ts->networks[k]->target, nw->id) == 0) {
                    errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "network %s is in use by service %s",
                                  network_name(nw), svcs[i]->id);
                    used = true;
                }
            }
            if (!used && nw->spec != NULL && nw->spec->ingress && alloc_publishes_ingress(svcs[i]->spec)) {
                errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                              "ingress network cannot be removed because service %s depends on it", svcs[i]->id);
                used = true;
            }
        }
        store_service_free_list(svcs, n);
    }
    if (!used && store_task_list(store, &tasks, &nt) == 0) {
        for (size_t i = 0; i < nt && !used; i++) {
            const Swarm__Task *t = tasks[i];
            if (t->status != NULL && t->status->state > SWARM__TASK_STATE__TASK_STATE_RUNNING) {
                continue;
            }
            for (size_t k = 0; k < t->n_networks && !used; k++) {
                if (t->networks[k]->network != NULL && strcmp(t->networks[k]->network->id, nw->id) == 0) {
                    errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "network %s is in use by task %s", network_name(nw),
                                  t->id);
                    used = true;
                }
            }
        }
        store_task_free_list(tasks, nt);
    }
    return used;
}

static void remove_network_cb(struct api_call *call, const ProtobufCMessage *msg, void *data)
{
    const Swarm__RemoveNetworkRequest *req = (const Swarm__RemoveNetworkRequest *)msg;
    struct netapi *na = netapi_require(call, data);
    Swarm__Network *nw = NULL;
    char errmsg[SWARM_ERRMSG_SIZE];
    if (na == NULL || find_network(na, call, req->network_id, &nw) != 0) {
        return;
    }
    if (network_in_use(na->env->store, nw, errmsg)) {
        api_call_error(call, API_FAILED_PRECONDITION, "%s", errmsg);
    } else {
        propose_network(na, call, SWARM__STORE_ACTION_KIND__STORE_ACTION_REMOVE, nw);
    }
    swarm__network__free_unpacked(nw, NULL);
}

/* ----------------------------------------------------------------- reads */

static void get_network_cb(struct api_call *call, const ProtobufCMessage *msg, void *data)
{
    const Swarm__GetNetworkRequest *req = (const Swarm__GetNetworkRequest *)msg;
    Swarm__GetNetworkResponse resp = SWARM__GET_NETWORK_RESPONSE__INIT;
    struct netapi *na = netapi_require(call, data);
    Swarm__Network *nw = NULL;
    if (na == NULL || find_network(na, call, req->network_id, &nw) != 0) {
        return;
    }
    resp.network = nw;
    api_call_reply(call, &resp.base);
    swarm__network__free_unpacked(nw, NULL);
}

/* `network ls -f`: id= (prefix), name= (substring, as Docker), driver=,
 * label=K or K=V. 1 keep, 0 drop, -1 a filter that is none of those. */
static int network_filter(const Swarm__Network *nw, const char *f)
{
    const char *eq = strchr(f, '=');
    const char *v;
    if (eq == NULL) {
        return -1;
    }
    v = eq + 1;
    if (strncmp(f, "id=", 3) == 0) {
        return strncmp(nw->id, v, strlen(v)) == 0;
    }
    if (strncmp(f, "name=", 5) == 0) {
        return strstr(network_name(nw), v) != NULL;
    }
    if (strncmp(f, "driver=", 7) == 0) {
        return nw->spec != NULL && nw->spec->driver != NULL && strcmp(nw->spec->driver, v) == 0;
    }
    if (strncmp(f, "scope=", 6) == 0) {
        return strcmp(v, "swarm") == 0;
    }
    if (strncmp(f, "label=", 6) == 0) {
        const char *veq = strchr(v, '=');
        size_t klen = veq ? (size_t)(veq - v) : strlen(v);
        const Swarm__Annotations *a = nw->spec != NULL ? nw->spec->annotations : NULL;
        for (size_t i = 0; a != NULL && i < a->n_labels; i++) {
            const Swarm__Label *l = a->labels[i];
            if (strlen(l->key) == klen && strncmp(l->key, v, klen) == 0 &&
                (veq == NULL || strcmp(l->value, veq + 1) == 0)) {
                return 1;
            }
        }
        return 0;
    }
    return -1;
}

static int network_id_cmp(const void *a, const void *b)
{
    return strcmp((*(Swarm__Network *const *)a)->id, (*(Swarm__Network *const *)b)->id);
}

static void list_networks_cb(struct api_call *call, const ProtobufCMessage *msg, void *data)
{
    const Swarm__ListNetworksRequest *req = (const Swarm__ListNetworksRequest *)msg;
    Swarm__ListNetworksResponse resp = SWARM__LIST_NETWORKS_RESPONSE__INIT;
    struct netapi *na = netapi_require(call, data);
    Swarm__Network **nets = NULL, **kept = NULL;
    const char **ids = NULL;
    struct msgchunk_page pg;
    size_t n = 0, k = 0;
    if (na == NULL) {
        return;
    }
    if (store_network_list(na->env->store, &nets, &n) != 0) {
        api_call_error(call, API_INTERNAL, "listing networks failed");
        return;
    }
    kept = calloc(n + 1, sizeof *kept);
    ids = calloc(n + 1, sizeof *ids);
    if (kept == NULL || ids == NULL) {
        api_call_error(call, API_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        int keep = 1;
        for (size_t f = 0; f < req->n_filters && keep == 1; f++) {
            keep = network_filter(nets[i], req->filters[f]);
            if (keep < 0) {
                api_call_error(call, API_INVALID_ARGUMENT, "invalid filter '%s'", req->filters[f]);
                goto out;
            }
        }
        if (keep) {
            kept[k++] = nets[i];
        }
    }
    qsort(kept, k, sizeof *kept, network_id_cmp);
    for (size_t i = 0; i < k; i++) {
        ids[i] = kept[i]->id;
    }
    if (listpage_cut(call, (ProtobufCMessage *const *)kept, ids, k, 0, req->page_size, req->page_token, &pg) != 0) {
        goto out;
    }
    resp.networks = kept + pg.start;
    resp.n_networks = pg.count;
    resp.next_page_token = pg.more ? kept[pg.start + pg.count - 1]->id : "";
    resp.stale = !menv_is_leader(na->env);
    api_call_reply(call, &resp.base);
out:
    free(kept);
    free(ids);
    store_network_free_list(nets, n);
}

/* ------------------------------------------------ services on networks */

int netapi_resolve_service_networks(struct store *store, Swarm__ServiceSpec *spec, char *errmsg)
{
    Swarm__TaskSpec *ts = spec->task;
    const Swarm__EndpointSpec *ep = spec->endpoint;
    if (ep != NULL && ep->mode != NULL && strcmp(ep->mode, "dnsrr") == 0 && alloc_publishes_ingress(spec)) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                      "EndpointSpec: port published with ingress mode can't be used with dnsrr mode");
        return SWARM_EINVAL;
    }
    if (ep != NULL && ep->mode != NULL && ep->mode[0] != '\0' && strcmp(ep->mode, "vip") != 0 &&
        strcmp(ep->mode, "dnsrr") != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "invalid endpoint mode %s: vip or dnsrr", ep->mode);
        return SWARM_EINVAL;
    }
    for (size_t i = 0; ts != NULL && i < ts->n_networks; i++) {
        Swarm__NetworkAttachmentConfig *c = ts->networks[i];
        Swarm__Network *nw = NULL;
        int rv = store_network_find(store, c->target, &nw, NULL);
        if (rv == SWARM_ENOTFOUND || rv == SWARM_EAMBIGUOUS) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "network %s not found", c->target);
            return SWARM_ENOTFOUND;
        }
        if (rv != 0) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "reading network %s: %s", c->target, swarm_strerror(rv));
            return rv;
        }
        if (nw->spec != NULL && nw->spec->ingress) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                          "Service cannot be explicitly attached to the ingress network \"%s\"", network_name(nw));
            swarm__network__free_unpacked(nw, NULL);
            return SWARM_EINVAL;
        }
        for (size_t k = 0; k < i; k++) {
            if (strcmp(ts->networks[k]->target, nw->id) == 0) {
                errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "service is attached to network %s more than once",
                              network_name(nw));
                swarm__network__free_unpacked(nw, NULL);
                return SWARM_EINVAL;
            }
        }
        if (strcmp(c->target, nw->id) != 0) {
            char *id = strdup(nw->id);
            if (id == NULL) {
                swarm__network__free_unpacked(nw, NULL);
                return SWARM_ENOMEM;
            }
            if (c->target != protobuf_c_empty_string) {
                free(c->target);
            }
            c->target = id;
        }
        swarm__network__free_unpacked(nw, NULL);
    }
    return 0;
}

/* ------------------------------------------------------------- lifecycle */

void netapi_register(struct api_server *server, struct manager_slot *slot)
{
    static const struct {
        const char *method;
        api_handler_cb cb;
        bool write;
    } methods[] = {
        {"CreateNetwork", create_network_cb, true},
        {"GetNetwork", get_network_cb, false},
        {"ListNetworks", list_networks_cb, false},
        {"RemoveNetwork", remove_network_cb, true},
    };
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        forward_register_routed(server, &swarm__control__descriptor, methods[i].method,
                                API_ROLE_LOCAL | API_ROLE_MANAGER, !methods[i].write, methods[i].cb, slot);
    }
}

struct netapi *netapi_new(const struct menv *env)
{
    struct netapi *na = calloc(1, sizeof *na);
    if (na != NULL) {
        na->env = env;
    }
    return na;
}

void netapi_close(struct netapi *na, void (*cb)(void *data), void *data)
{
    na->closing = true;
    na->close_cb = cb;
    na->close_data = data;
    netapi_maybe_free(na);
}
