/* The dispatcher's NetworkMaps streams: see netmaps.h for the protocol.
 *
 * State per stream: the network IDs the node was sent (sorted), the set
 * being sent (items from set_sent on), networks that changed while a set
 * was being sent. A batch (flush_cb, on the loop turn after events) reads
 * the store once, computes every node's needs once (netmap_uses) and each
 * changed map once (shared by reference between the streams that need
 * it), then hands each stream the difference as one set. */
#include "netmaps.h"

#include <stdlib.h>
#include <string.h>

#include "dispatcher.pb-c.h"
#include "err.h"
#include "log.h"
#include "msgchunk.h"
#include "netmap.h"
#include "vec.h"

/* Room to keep on the connection beyond a message (the session's other
 * streams and unary answers share it), as the assignments do. */
#define NETMAPS_ROOM_SPARE (1u << 20)
#define NETMAPS_RETRY_MS 10

/* A map shared by the sets that carry it. */
struct nmref {
    Swarm__NetworkMap *map;
    unsigned refs;
};

/* One item of a set: a map, or the ID of a network to drop. */
struct nmitem {
    struct nmref *ref;
    char *remove; /* owned */
};

typedef VEC(char *) strvec;

struct nmstream {
    struct netmaps *nm;
    char node_id[64];
    struct api_call *call;
    strvec sent;  /* network IDs the node has (owned, sorted) */
    strvec dirty; /* networks that changed while a set was being sent */
    bool pending; /* look at this stream at the next batch */
    struct nmitem *set;
    size_t n_set, set_sent;
    Swarm__AssignmentsType set_type;
    struct nmstream *next;
};

struct netmaps {
    uv_loop_t *loop;
    struct store *store;
    uv_timer_t timer;
    bool closing;
    struct nmstream *streams;
    size_t n_streams;
    strvec dirty;       /* network IDs changed since the last batch */
    strvec dirty_nodes; /* nodes whose address or state changed */
    void (*close_cb)(void *data);
    void *close_data;
};

/* ------------------------------------------------------------ helpers */

static void strvec_clear(strvec *v)
{
    for (size_t i = 0; i < v->len; i++) {
        free(v->items[i]);
    }
    vec_free(v);
}

static bool strvec_has(const strvec *v, const char *s)
{
    for (size_t i = 0; i < v->len; i++) {
        if (strcmp(v->items[i], s) == 0) {
            return true;
        }
    }
    return false;
}

/* Add a copy of s unless present. 0 or SWARM_ENOMEM. */
static int strvec_add(strvec *v, const char *s)
{
    char *c;
    if (s == NULL || s[0] == '\0' || strvec_has(v, s)) {
        return 0;
    }
    if ((c = strdup(s)) == NULL || vec_push(v, c) != 0) {
        free(c);
        return SWARM_ENOMEM;
    }
    return 0;
}

static void ref_put(struct nmref *r)
{
    if (r != NULL && --r->refs == 0) {
        swarm__network_map__free_unpacked(r->map, NULL);
        free(r);
    }
}

static void items_free(struct nmitem *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ref_put(items[i].ref);
        free(items[i].remove);
    }
    free(items);
}

static void batch_cb(uv_timer_t *t);

static void schedule(struct netmaps *nm, uint64_t delay)
{
    if (!nm->closing && !uv_is_active((uv_handle_t *)&nm->timer)) {
        uv_timer_start(&nm->timer, batch_cb, delay, 0);
    }
}

/* ------------------------------------------------------------ streams */

static struct nmstream *stream_find(struct netmaps *nm, const char *node_id)
{
    for (struct nmstream *s = nm->streams; s != NULL; s = s->next) {
        if (strcmp(s->node_id, node_id) == 0) {
            return s;
        }
    }
    return NULL;
}

static void stream_end(struct nmstream *s, enum api_status status, const char *why)
{
    struct netmaps *nm = s->nm;
    struct nmstream **pp = &nm->streams;
    while (*pp != NULL && *pp != s) {
        pp = &(*pp)->next;
    }
    if (*pp == s) {
        *pp = s->next;
        nm->n_streams--;
    }
    items_free(s->set, s->n_set);
    strvec_clear(&s->sent);
    strvec_clear(&s->dirty);
    if (s->call != NULL) {
        if (status != API_CANCELLED) {
            log_warn("dispatcher", "node %s: network maps stream ended: %s", s->node_id, why);
        }
        api_call_error(s->call, status, "network maps stream ended: %s", why);
    }
    free(s);
}

static void stream_cancel_cb(struct api_call *call, void *data)
{
    (void)call;
    stream_end(data, API_CANCELLED, "cancelled");
}

/* Send what the connection has room for of the set being sent. 0 (all
 * sent, or waiting for room: the timer comes back), or -1 when a send
 * failed and the stream was ended (`s` is freed). */
static int stream_pump(struct nmstream *s)
{
    const struct nmitem *items = s->set + s->set_sent;
    size_t n = s->n_set - s->set_sent, chunks, start = 0;
    struct msgchunk_item *sizes = calloc(n ? n : 1, sizeof *sizes);
    size_t *ends = calloc(n ? n : 1, sizeof *ends);
    Swarm__NetworkMap **upd = calloc(n ? n : 1, sizeof *upd);
    char **rem = calloc(n ? n : 1, sizeof *rem);
    int rv = 0;

    if (sizes == NULL || ends == NULL || upd == NULL || rem == NULL) {
        stream_end(s, API_UNAVAILABLE, "out of memory");
        rv = -1;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        sizes[i].second = items[i].ref == NULL;
        sizes[i].size = items[i].ref != NULL
                            ? protobuf_c_message_get_packed_size(&items[i].ref->map->base)
                            : strlen(items[i].remove);
    }
    chunks = msgchunk_plan(sizes, n, MSGCHUNK_BOUND, ends);
    if (chunks == 0) { /* an empty complete set is one empty message */
        ends[0] = 0;
        chunks = 1;
    }
    for (size_t c = 0; c < chunks; c++) {
        Swarm__NetworkMapsMessage out = SWARM__NETWORK_MAPS_MESSAGE__INIT;
        size_t bytes = 0;
        out.type = s->set_type;
        out.update = upd;
        out.remove = rem;
        for (size_t i = start; i < ends[c]; i++) {
            bytes += sizes[i].size;
            if (items[i].ref != NULL) {
                upd[out.n_update++] = items[i].ref->map;
            } else {
                rem[out.n_remove++] = items[i].remove;
            }
        }
        if (api_call_send_room(s->call) < bytes + NETMAPS_ROOM_SPARE &&
            api_call_pending_bytes(s->call) > 0) {
            s->set_sent += start; /* the node has not taken the last ones yet */
            schedule(s->nm, NETMAPS_RETRY_MS);
            goto out;
        }
        out.more = c + 1 < chunks;
        start = ends[c];
        int e = api_call_send(s->call, &out.base);
        if (e != 0) {
            stream_end(s, API_UNAVAILABLE,
                       e == SWARM_EINVAL ? "a network map exceeds the message size limit"
                                         : "the stream was cancelled");
            rv = -1;
            goto out;
        }
    }
    items_free(s->set, s->n_set);
    s->set = NULL;
    s->n_set = s->set_sent = 0;
    if (s->pending) {
        schedule(s->nm, 0);
    }
out:
    free(sizes);
    free(ends);
    free(upd);
    free(rem);
    return rv;
}

/* ---------------------------------------------------------------- view */

/* The store as one batch sees it, with the maps built so far. */
struct nmview {
    struct netmap_view v;
    Swarm__Task **tasks;
    Swarm__Service **services;
    Swarm__Node **nodes;
    size_t n_tasks, n_services, n_nodes;
    struct netmap_use *uses;
    size_t n_uses;
    struct {
        const char *network_id; /* borrowed from uses */
        struct nmref *ref;
    } *built;
    size_t n_built, cap_built;
};

static void view_free(struct nmview *w)
{
    for (size_t i = 0; i < w->n_built; i++) {
        ref_put(w->built[i].ref);
    }
    free(w->built);
    free(w->uses);
    store_task_free_list(w->tasks, w->n_tasks);
    store_service_free_list(w->services, w->n_services);
    store_node_free_list(w->nodes, w->n_nodes);
    memset(w, 0, sizeof *w);
}

static int view_load(struct netmaps *nm, struct nmview *w)
{
    int rv;
    memset(w, 0, sizeof *w);
    if ((rv = store_task_list(nm->store, &w->tasks, &w->n_tasks)) != 0 ||
        (rv = store_service_list(nm->store, &w->services, &w->n_services)) != 0 ||
        (rv = store_node_list(nm->store, &w->nodes, &w->n_nodes)) != 0) {
        view_free(w);
        return rv;
    }
    w->v.tasks = w->tasks;
    w->v.n_tasks = w->n_tasks;
    w->v.services = w->services;
    w->v.n_services = w->n_services;
    w->v.nodes = w->nodes;
    w->v.n_nodes = w->n_nodes;
    if ((rv = netmap_uses(&w->v, &w->uses, &w->n_uses)) != 0) {
        view_free(w);
    }
    return rv;
}

/* The map of network_id (a network some node needs), built once per view;
 * a new reference, NULL when out of memory. */
static struct nmref *view_map(struct nmview *w, const char *network_id)
{
    struct nmref *r;
    Swarm__NetworkMap *m = NULL;
    for (size_t i = 0; i < w->n_built; i++) {
        if (strcmp(w->built[i].network_id, network_id) == 0) {
            w->built[i].ref->refs++;
            return w->built[i].ref;
        }
    }
    if (vec_grow(w->built, w->cap_built, w->n_built + 1) != 0 ||
        netmap_build(&w->v, network_id, &m) != 0 || m == NULL) {
        return NULL;
    }
    if ((r = calloc(1, sizeof *r)) == NULL) {
        swarm__network_map__free_unpacked(m, NULL);
        return NULL;
    }
    r->map = m;
    r->refs = 2; /* the view's and the caller's */
    w->built[w->n_built].network_id = network_id;
    w->built[w->n_built].ref = r;
    w->n_built++;
    return r;
}

/* -------------------------------------------------------------- batches */

/* What the stream must be sent now: for a COMPLETE set every network the
 * node needs; else the needed networks it does not have or that changed,
 * and the removal of those it no longer needs. Its `sent` becomes what it
 * needs. 0 (items in *out, maybe none) or SWARM_ENOMEM. */
static int stream_plan(struct nmstream *s, struct nmview *w, bool complete, struct nmitem **out,
                       size_t *n_out)
{
    struct netmaps *nm = s->nm;
    struct nmitem *items = NULL;
    size_t n = 0, cap = 0, first = 0;
    size_t k = netmap_uses_of_node(w->uses, w->n_uses, s->node_id, &first);
    strvec needed = {0};

    for (size_t i = 0; i < k; i++) {
        const char *nid = w->uses[first + i].network_id;
        if (strvec_add(&needed, nid) != 0) {
            goto err;
        }
        if (!complete && strvec_has(&s->sent, nid) && !strvec_has(&nm->dirty, nid) &&
            !strvec_has(&s->dirty, nid)) {
            continue;
        }
        if (vec_grow(items, cap, n + 1) != 0) {
            goto err;
        }
        items[n].remove = NULL;
        if ((items[n].ref = view_map(w, nid)) == NULL) {
            goto err;
        }
        n++;
    }
    for (size_t i = 0; !complete && i < s->sent.len; i++) {
        if (strvec_has(&needed, s->sent.items[i])) {
            continue;
        }
        if (vec_grow(items, cap, n + 1) != 0) {
            goto err;
        }
        items[n].ref = NULL;
        if ((items[n].remove = strdup(s->sent.items[i])) == NULL) {
            goto err;
        }
        n++;
    }
    strvec_clear(&s->sent);
    s->sent = needed;
    strvec_clear(&s->dirty);
    *out = items;
    *n_out = n;
    return 0;
err:
    strvec_clear(&needed);
    items_free(items, n);
    return SWARM_ENOMEM;
}

/* Plan and start sending a set to `s`. 0, or -1 when the stream ended. */
static int stream_update(struct nmstream *s, struct nmview *w, bool complete)
{
    struct nmitem *items = NULL;
    size_t n = 0;
    if (stream_plan(s, w, complete, &items, &n) != 0) {
        stream_end(s, API_UNAVAILABLE, "out of memory");
        return -1;
    }
    s->pending = false;
    if (!complete && n == 0) {
        free(items);
        return 0;
    }
    s->set = items;
    s->n_set = n;
    s->set_sent = 0;
    s->set_type = complete ? SWARM__ASSIGNMENTS_TYPE__ASSIGNMENTS_COMPLETE
                           : SWARM__ASSIGNMENTS_TYPE__ASSIGNMENTS_INCREMENTAL;
    return stream_pump(s);
}

/* Networks with a live task on a node whose address or state changed. */
static int dirty_from_nodes(struct netmaps *nm, const struct nmview *w)
{
    for (size_t i = 0; i < w->n_uses; i++) {
        if (strvec_has(&nm->dirty_nodes, w->uses[i].node_id) &&
            strvec_add(&nm->dirty, w->uses[i].network_id) != 0) {
            return SWARM_ENOMEM;
        }
    }
    return 0;
}

static bool batch_due(const struct netmaps *nm)
{
    if (nm->dirty.len > 0 || nm->dirty_nodes.len > 0) {
        return true;
    }
    for (const struct nmstream *s = nm->streams; s != NULL; s = s->next) {
        if (s->pending && s->set == NULL) {
            return true;
        }
    }
    return false;
}

static void batch_cb(uv_timer_t *t)
{
    struct netmaps *nm = t->data;
    struct nmstream *s, *next;
    struct nmview w;

    if (nm->closing) {
        return;
    }
    for (s = nm->streams; s != NULL; s = next) { /* sets waiting for room */
        next = s->next;
        if (s->set != NULL) {
            stream_pump(s);
        }
    }
    if (nm->streams == NULL) {
        strvec_clear(&nm->dirty);
        strvec_clear(&nm->dirty_nodes);
        return;
    }
    if (!batch_due(nm)) {
        return;
    }
    if (view_load(nm, &w) != 0) {
        log_warn("dispatcher", "network maps: reading the store failed (will retry)");
        schedule(nm, 100);
        return;
    }
    if (dirty_from_nodes(nm, &w) != 0) {
        /* Every stream starts over with a complete set. */
        netmaps_end_all(nm, "out of memory");
        view_free(&w);
        return;
    }
    for (s = nm->streams; s != NULL; s = next) {
        next = s->next;
        if (s->set != NULL) { /* changes wait behind the set being sent */
            for (size_t i = 0; i < nm->dirty.len; i++) {
                if (strvec_add(&s->dirty, nm->dirty.items[i]) != 0) {
                    stream_end(s, API_UNAVAILABLE, "out of memory");
                    break;
                }
            }
            if (stream_find(nm, s->node_id) == s) {
                s->pending = true;
            }
            continue;
        }
        stream_update(s, &w, false);
    }
    strvec_clear(&nm->dirty);
    strvec_clear(&nm->dirty_nodes);
    view_free(&w);
}

/* ------------------------------------------------------------- events */

static int mark_task(struct netmaps *nm, const Swarm__Task *t)
{
    for (size_t i = 0; t != NULL && i < t->n_networks; i++) {
        if (strvec_add(&nm->dirty, netmap_attachment_network_id(t->networks[i])) != 0) {
            return SWARM_ENOMEM;
        }
    }
    return 0;
}

static int mark_service(struct netmaps *nm, const Swarm__Service *s)
{
    const Swarm__TaskSpec *ts = s != NULL && s->spec != NULL ? s->spec->task : NULL;
    for (size_t i = 0; ts != NULL && i < ts->n_networks; i++) {
        if (ts->networks[i] != NULL && strvec_add(&nm->dirty, ts->networks[i]->target) != 0) {
            return SWARM_ENOMEM;
        }
    }
    for (size_t i = 0; s != NULL && s->endpoint != NULL && i < s->endpoint->n_virtual_ips; i++) {
        if (s->endpoint->virtual_ips[i] != NULL &&
            strvec_add(&nm->dirty, s->endpoint->virtual_ips[i]->network_id) != 0) {
            return SWARM_ENOMEM;
        }
    }
    return 0;
}

/* A node's address or state changed: the endpoints on it change. */
static bool node_changed(const Swarm__Node *o, const Swarm__Node *n)
{
    if (o == NULL || n == NULL) {
        return true;
    }
    if ((o->status == NULL) != (n->status == NULL)) {
        return true;
    }
    if (o->status == NULL) {
        return false;
    }
    return o->status->state != n->status->state ||
           strcmp(o->status->addr != NULL ? o->status->addr : "",
                  n->status->addr != NULL ? n->status->addr : "") != 0;
}

void netmaps_on_event(struct netmaps *nm, const struct store_event *ev)
{
    int rv = 0;
    if (nm == NULL || nm->closing || nm->streams == NULL) {
        return; /* nobody to tell: the next stream starts with a complete set */
    }
    switch (ev->kind) {
    case STORE_KIND_TASK:
        rv = mark_task(nm, (const Swarm__Task *)ev->old_obj);
        if (rv == 0) {
            rv = mark_task(nm, (const Swarm__Task *)ev->new_obj);
        }
        break;
    case STORE_KIND_SERVICE:
        rv = mark_service(nm, (const Swarm__Service *)ev->old_obj);
        if (rv == 0) {
            rv = mark_service(nm, (const Swarm__Service *)ev->new_obj);
        }
        break;
    case STORE_KIND_NODE: {
        const Swarm__Node *o = (const Swarm__Node *)ev->old_obj;
        const Swarm__Node *n = (const Swarm__Node *)ev->new_obj;
        if (node_changed(o, n)) {
            rv = strvec_add(&nm->dirty_nodes, n != NULL ? n->id : o->id);
        }
        /* Its ingress address (given, or gone with the node): every node's
         * ingress map changes. */
        size_t na = o != NULL ? o->n_attachments : 0, nb = n != NULL ? n->n_attachments : 0;
        if (rv == 0 && (na != nb || (o != NULL && n != NULL && node_changed(o, n)))) {
            const Swarm__Node *src = nb > 0 ? n : o;
            for (size_t i = 0; src != NULL && i < src->n_attachments && rv == 0; i++) {
                const char *nid = netmap_attachment_network_id(src->attachments[i]);
                if (nid != NULL) {
                    rv = strvec_add(&nm->dirty, nid);
                }
            }
        }
        break;
    }
    default:
        /* Networks: a map takes the network from its tasks' attachments,
         * and a network in use cannot be removed. */
        return;
    }
    if (rv != 0) {
        netmaps_end_all(nm, "out of memory");
        return;
    }
    if (nm->dirty.len > 0 || nm->dirty_nodes.len > 0) {
        schedule(nm, 0);
    }
}

/* ---------------------------------------------------------- lifecycle */

struct netmaps *netmaps_new(uv_loop_t *loop, struct store *store)
{
    struct netmaps *nm = calloc(1, sizeof *nm);
    if (nm == NULL) {
        return NULL;
    }
    nm->loop = loop;
    nm->store = store;
    uv_timer_init(loop, &nm->timer);
    nm->timer.data = nm;
    return nm;
}

void netmaps_open(struct netmaps *nm, const char *node_id, struct api_call *call)
{
    struct nmstream *s;
    struct nmview w;
    if (strlen(node_id) >= sizeof s->node_id) {
        api_call_error(call, API_INVALID_ARGUMENT, "node ID too long");
        return;
    }
    if ((s = stream_find(nm, node_id)) != NULL) {
        stream_end(s, API_CANCELLED, "replaced by a new network maps stream");
    }
    if (view_load(nm, &w) != 0) {
        api_call_error(call, API_INTERNAL, "reading the store failed");
        return;
    }
    if ((s = calloc(1, sizeof *s)) == NULL) {
        view_free(&w);
        api_call_error(call, API_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    s->nm = nm;
    snprintf(s->node_id, sizeof s->node_id, "%s", node_id);
    s->call = call;
    s->next = nm->streams;
    nm->streams = s;
    nm->n_streams++;
    api_call_on_cancel(call, stream_cancel_cb, s);
    stream_update(s, &w, true);
    view_free(&w);
}

void netmaps_end(struct netmaps *nm, const char *node_id, enum api_status status,
                 const char *why)
{
    struct nmstream *s = nm != NULL ? stream_find(nm, node_id) : NULL;
    if (s != NULL) {
        stream_end(s, status, why);
    }
}

void netmaps_end_all(struct netmaps *nm, const char *why)
{
    while (nm != NULL && nm->streams != NULL) {
        stream_end(nm->streams, API_UNAVAILABLE, why);
    }
}

size_t netmaps_count(const struct netmaps *nm)
{
    return nm != NULL ? nm->n_streams : 0;
}

static void netmaps_closed_cb(uv_handle_t *h)
{
    struct netmaps *nm = h->data;
    void (*cb)(void *) = nm->close_cb;
    void *data = nm->close_data;
    strvec_clear(&nm->dirty);
    strvec_clear(&nm->dirty_nodes);
    free(nm);
    if (cb != NULL) {
        cb(data);
    }
}

void netmaps_close(struct netmaps *nm, void (*cb)(void *data), void *data)
{
    if (nm == NULL) {
        if (cb != NULL) {
            cb(data);
        }
        return;
    }
    netmaps_end_all(nm, "manager shutting down");
    nm->closing = true;
    nm->close_cb = cb;
    nm->close_data = data;
    uv_close((uv_handle_t *)&nm->timer, netmaps_closed_cb);
}
