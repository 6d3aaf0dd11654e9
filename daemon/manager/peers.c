/* See peers.h. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "ca.pb-c.h"
#include "err.h"
#include "peers.h"

#define PEERS_PERIOD_MS 500
#define PEERS_TIMEOUT_MS 1000
#define PEERS_STALE_MS 1600

struct peer {
    char node_id[64];
    char addr[64];
    struct api_client *client;
    bool connecting;
    bool probing;
    bool seen;          /* probed at least once */
    uint64_t last_ok;   /* uv_now() of the last answer */
    struct peers *ps;
    struct peer *next;
};

struct peers {
    const struct menv *env;
    struct peers_config cfg;
    struct peer *list;
    uv_timer_t timer;
    /* In flight (close after drain): connections closing, and the timer
     * until its close callback. */
    unsigned clients_closing;
    bool timer_open;
    bool closing;
    void (*close_cb)(void *data);
    void *close_data;
};

static void peers_maybe_free(struct peers *ps)
{
    if (!ps->closing || ps->clients_closing > 0 || ps->timer_open) {
        return;
    }
    void (*cb)(void *) = ps->close_cb;
    void *data = ps->close_data;
    free(ps);
    if (cb != NULL) {
        cb(data);
    }
}

/* A peer's connection closed: its probe, if any, ended before. */
static void peer_client_closed_cb(void *data)
{
    struct peers *ps = data;
    ps->clients_closing--;
    peers_maybe_free(ps);
}

static void peer_client_drop(struct peer *p)
{
    struct api_client *c = p->client;
    p->client = NULL;
    if (c != NULL) {
        p->ps->clients_closing++;
        api_client_close(c, peer_client_closed_cb, p->ps);
    }
}

static void probe_answer_cb(enum api_status status, const char *message,
                            const ProtobufCMessage *resp, void *data)
{
    struct peer *p = data;
    p->probing = false;
    p->seen = true;
    if (status == API_OK) {
        p->last_ok = uv_now(p->ps->env->loop);
    }
}

static void probe(struct peer *p)
{
    Swarm__GetRootCACertificateRequest req = SWARM__GET_ROOT_CACERTIFICATE_REQUEST__INIT;
    p->probing = true;
    if (api_client_unary(p->client, &swarm__ca__descriptor, "GetRootCACertificate", &req.base,
                         PEERS_TIMEOUT_MS, probe_answer_cb, p) != 0) {
        p->probing = false;
        p->seen = true;
    }
}

static void connected_cb(struct api_client *c, int status, const char *errmsg, void *data)
{
    struct peer *p = data;
    if (c != p->client) {
        return; /* dropped (peers_close) */
    }
    p->connecting = false;
    if (status != 0) {
        p->seen = true;
        peer_client_drop(p);
        return;
    }
    probe(p);
}

static void peer_tick(struct peers *ps, struct peer *p, SSL_CTX *ctx)
{
    if (p->connecting || p->probing) {
        return;
    }
    if (p->client != NULL && !api_client_connected(p->client)) {
        peer_client_drop(p);
    }
    if (p->client == NULL) {
        p->client = api_client_new(ps->env->loop, API_DEFAULT_MAX_MSG);
        if (p->client == NULL) {
            p->seen = true;
            return;
        }
        p->connecting = true;
        if (api_client_connect_tls(p->client, p->addr, ctx, NULL, PEERS_TIMEOUT_MS, connected_cb,
                                   p) != 0) {
            p->connecting = false;
            peer_client_drop(p);
            p->seen = true;
        }
        return;
    }
    probe(p);
}

static struct peer *peer_find(struct peers *ps, const char *node_id)
{
    for (struct peer *p = ps->list; p != NULL; p = p->next) {
        if (strcmp(p->node_id, node_id) == 0) {
            return p;
        }
    }
    return NULL;
}

static void peers_timer_cb(uv_timer_t *t)
{
    struct peers *ps = t->data;
    SSL_CTX *ctx = ps->cfg.client_ctx(ps->cfg.impl);
    Swarm__Node **nodes = NULL;
    size_t n = 0;
    if (ps->closing || ctx == NULL) {
        return;
    }
    if (store_node_list(ps->env->store, &nodes, &n) != 0) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        Swarm__Node *node = nodes[i];
        struct peer *p;
        if (node->role != SWARM__NODE_ROLE__NODE_ROLE_MANAGER || node->manager_status == NULL ||
            strcmp(node->id, ps->cfg.node_id) == 0) {
            continue;
        }
        p = peer_find(ps, node->id);
        if (p == NULL) {
            p = calloc(1, sizeof *p);
            if (p == NULL) {
                break;
            }
            p->ps = ps;
            snprintf(p->node_id, sizeof p->node_id, "%s", node->id);
            p->next = ps->list;
            ps->list = p;
        }
        snprintf(p->addr, sizeof p->addr, "%s", node->manager_status->addr);
        peer_tick(ps, p, ctx);
    }
    store_node_free_list(nodes, n);
}

Swarm__Reachability peers_reachability(struct peers *ps, const char *node_id)
{
    struct peer *p;
    if (strcmp(node_id, ps->cfg.node_id) == 0) {
        return SWARM__REACHABILITY__REACHABILITY_REACHABLE;
    }
    p = peer_find(ps, node_id);
    if (p == NULL || !p->seen) {
        return SWARM__REACHABILITY__REACHABILITY_UNKNOWN;
    }
    if (p->last_ok != 0 && uv_now(ps->env->loop) - p->last_ok <= PEERS_STALE_MS) {
        return SWARM__REACHABILITY__REACHABILITY_REACHABLE;
    }
    return SWARM__REACHABILITY__REACHABILITY_UNREACHABLE;
}

struct peers *peers_new(const struct menv *env, const struct peers_config *cfg)
{
    struct peers *ps = calloc(1, sizeof *ps);
    if (ps == NULL) {
        return NULL;
    }
    ps->env = env;
    ps->cfg = *cfg;
    uv_timer_init(env->loop, &ps->timer);
    ps->timer.data = ps;
    ps->timer_open = true;
    return ps;
}

void peers_start(struct peers *ps)
{
    uv_timer_start(&ps->timer, peers_timer_cb, 0, PEERS_PERIOD_MS);
}

static void timer_closed_cb(uv_handle_t *h)
{
    struct peers *ps = h->data;
    ps->timer_open = false;
    peers_maybe_free(ps);
}

/* Probes in flight end with UNAVAILABLE when their connection closes, and a
 * connection still connecting reports it was cancelled; those callbacks
 * touch only the peer, so each peer is freed once its connection's close
 * completed. */
static void peer_closed_free_cb(void *data)
{
    struct peer *p = data;
    struct peers *ps = p->ps;
    free(p);
    ps->clients_closing--;
    peers_maybe_free(ps);
}

void peers_close(struct peers *ps, void (*cb)(void *data), void *data)
{
    struct peer *p = ps->list;
    ps->list = NULL;
    ps->closing = true;
    ps->close_cb = cb;
    ps->close_data = data;
    ps->clients_closing++; /* hold while closing */
    while (p != NULL) {
        struct peer *next = p->next;
        struct api_client *c = p->client;
        p->client = NULL;
        if (c != NULL) {
            ps->clients_closing++;
            api_client_close(c, peer_closed_free_cb, p);
        } else {
            free(p);
        }
        p = next;
    }
    uv_close((uv_handle_t *)&ps->timer, timer_closed_cb);
    ps->clients_closing--;
    peers_maybe_free(ps);
}
