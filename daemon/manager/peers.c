/* Reachability of the other managers, for `node ls` MANAGER STATUS: every
 * PEERS_PERIOD_MS each manager calls a cheap method (CA.GetRootCACertificate)
 * on every other manager over mutual TLS, on one kept connection per peer.
 * A peer that answered within the last PEERS_STALE_MS is Reachable; one that
 * did not is Unreachable; one never probed yet is Unknown. */
#include <stdlib.h>
#include <string.h>

#include "ca.pb-c.h"
#include "err.h"
#include "internal.h"
#include "pki.h"

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
    struct manager *m;
    struct peer *next;
};

static void probe_answer_cb(enum api_status status, const char *message,
                            const ProtobufCMessage *resp, void *data)
{
    struct peer *p = data;
    p->probing = false;
    p->seen = true;
    if (status == API_OK) {
        p->last_ok = uv_now(p->m->loop);
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
    p->connecting = false;
    if (status != 0) {
        p->seen = true;
        api_client_close(c, NULL, NULL);
        p->client = NULL;
        return;
    }
    probe(p);
}

static void peer_tick(struct manager *m, struct peer *p)
{
    if (p->connecting || p->probing) {
        return;
    }
    if (p->client != NULL && !api_client_connected(p->client)) {
        api_client_close(p->client, NULL, NULL);
        p->client = NULL;
    }
    if (p->client == NULL) {
        p->client = api_client_new(m->loop, API_DEFAULT_MAX_MSG);
        p->connecting = true;
        if (api_client_connect_tls(p->client, p->addr, m->client_ctx, NULL, PEERS_TIMEOUT_MS,
                                   connected_cb, p) != 0) {
            p->connecting = false;
            api_client_close(p->client, NULL, NULL);
            p->client = NULL;
            p->seen = true;
        }
        return;
    }
    probe(p);
}

static struct peer *peer_find(struct manager *m, const char *node_id)
{
    for (struct peer *p = m->peers; p != NULL; p = p->next) {
        if (strcmp(p->node_id, node_id) == 0) {
            return p;
        }
    }
    return NULL;
}

static void peers_timer_cb(uv_timer_t *t)
{
    struct manager *m = t->data;
    Swarm__Node **nodes = NULL;
    size_t n = 0;
    if (m->phase != MANAGER_RUNNING || m->client_ctx == NULL) {
        return;
    }
    if (store_node_list(m->store, &nodes, &n) != 0) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        Swarm__Node *node = nodes[i];
        struct peer *p;
        if (node->role != SWARM__NODE_ROLE__NODE_ROLE_MANAGER || node->manager_status == NULL ||
            strcmp(node->id, m->local->node_id) == 0) {
            continue;
        }
        p = peer_find(m, node->id);
        if (p == NULL) {
            p = calloc(1, sizeof *p);
            if (p == NULL) {
                break;
            }
            p->m = m;
            snprintf(p->node_id, sizeof p->node_id, "%s", node->id);
            p->next = m->peers;
            m->peers = p;
        }
        snprintf(p->addr, sizeof p->addr, "%s", node->manager_status->addr);
        peer_tick(m, p);
    }
    store_node_free_list(nodes, n);
}

Swarm__Reachability peers_reachability(struct manager *m, const char *node_id)
{
    struct peer *p;
    if (strcmp(node_id, m->local->node_id) == 0) {
        return SWARM__REACHABILITY__REACHABILITY_REACHABLE;
    }
    p = peer_find(m, node_id);
    if (p == NULL || !p->seen) {
        return SWARM__REACHABILITY__REACHABILITY_UNKNOWN;
    }
    if (p->last_ok != 0 && uv_now(m->loop) - p->last_ok <= PEERS_STALE_MS) {
        return SWARM__REACHABILITY__REACHABILITY_REACHABLE;
    }
    return SWARM__REACHABILITY__REACHABILITY_UNREACHABLE;
}

void peers_start(struct manager *m)
{
    uv_timer_start(&m->peers_timer, peers_timer_cb, 0, PEERS_PERIOD_MS);
}

/* Calls in flight end with UNAVAILABLE when their client closes; their
 * callbacks only touch the peer, so the peers are freed after the clients'
 * close completes. */
static void peer_closed_cb(void *data)
{
    free(data);
}

void peers_stop(struct manager *m)
{
    struct peer *p = m->peers;
    m->peers = NULL;
    uv_timer_stop(&m->peers_timer);
    while (p != NULL) {
        struct peer *next = p->next;
        if (p->client != NULL) {
            api_client_close(p->client, peer_closed_cb, p);
        } else {
            free(p);
        }
        p = next;
    }
}
