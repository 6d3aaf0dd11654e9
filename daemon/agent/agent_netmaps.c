/* The agent's NetworkMaps stream (dispatcher.proto): opened with each
 * session when the node does networking (a netplane, or a test's sink),
 * applied to the sink as it comes.
 *
 *   - COMPLETE: held (copies) until its last message (more = false), then
 *     applied at once: every map updated, then every network applied
 *     before and absent from the set removed. A stream cut in the middle of
 *     a set leaves the previous maps in force (the next session sends the
 *     set again).
 *   - INCREMENTAL: each map updated, then each listed network removed, in
 *     the order of the message.
 *   - A map the sink refuses (a bad address) is logged and skipped: its
 *     previous map stays; the stream goes on.
 *   - The stream ending ends the connection, as the assignments stream
 *     does: the next session opens it again and starts with COMPLETE.
 * The networks applied (a->net_have) outlive sessions: a reconnection does
 * not tear the data plane down, it only replaces it by the next COMPLETE. */
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"
#include "err.h"
#include "log.h"
#include "pbcopy.h"
#include "vec.h"

void agent_netmaps_staged_clear(struct agent *a)
{
    for (size_t i = 0; i < a->n_net_staged; i++) {
        swarm__network_map__free_unpacked(a->net_staged[i], NULL);
    }
    free(a->net_staged);
    a->net_staged = NULL;
    a->n_net_staged = a->cap_net_staged = 0;
}

void agent_netmaps_free(struct agent *a)
{
    agent_netmaps_staged_clear(a);
    for (size_t i = 0; i < a->n_net_have; i++) {
        free(a->net_have[i]);
    }
    free(a->net_have);
    a->net_have = NULL;
    a->n_net_have = a->cap_net_have = 0;
}

static size_t have_find(const struct agent *a, const char *id)
{
    for (size_t i = 0; i < a->n_net_have; i++) {
        if (strcmp(a->net_have[i], id) == 0) {
            return i;
        }
    }
    return SIZE_MAX;
}

static void have_del(struct agent *a, size_t i)
{
    free(a->net_have[i]);
    a->net_have[i] = a->net_have[--a->n_net_have];
}

/* Apply one map. 0, or SWARM_ENOMEM (the caller ends the session). */
static int net_update(struct agent *a, const Swarm__NetworkMap *m)
{
    char errmsg[SWARM_ERRMSG_SIZE] = "";
    char *id;
    int rv;
    if (m == NULL || m->network == NULL || m->network->id == NULL || m->network->id[0] == '\0') {
        log_warn("agent", "network maps: a map without a network, skipped");
        return 0;
    }
    rv = a->netsink.update(a->netsink.impl, m, errmsg);
    if (rv != 0) {
        log_warn("agent", "network %s: map not applied: %s", m->network->id,
                 errmsg[0] ? errmsg : swarm_strerror(rv));
        return rv == SWARM_ENOMEM ? rv : 0;
    }
    if (have_find(a, m->network->id) != SIZE_MAX) {
        return 0;
    }
    if (vec_grow(a->net_have, a->cap_net_have, a->n_net_have + 1) != 0 ||
        (id = strdup(m->network->id)) == NULL) {
        return SWARM_ENOMEM;
    }
    a->net_have[a->n_net_have++] = id;
    return 0;
}

static void net_remove(struct agent *a, const char *id)
{
    size_t i = have_find(a, id);
    int rv = a->netsink.remove(a->netsink.impl, id);
    if (rv != 0 && rv != SWARM_ENOTFOUND) {
        log_warn("agent", "network %s: map not removed: %s", id, swarm_strerror(rv));
    }
    if (i != SIZE_MAX) {
        have_del(a, i);
    }
}

static bool staged_has(const struct agent *a, const char *id)
{
    for (size_t i = 0; i < a->n_net_staged; i++) {
        const Swarm__Network *n = a->net_staged[i]->network;
        if (n != NULL && n->id != NULL && strcmp(n->id, id) == 0) {
            return true;
        }
    }
    return false;
}

int agent_apply_netmaps(struct agent *a, const Swarm__NetworkMapsMessage *m)
{
    int rv = 0;
    if (!a->has_netsink) {
        return 0;
    }
    if (m->type == SWARM__ASSIGNMENTS_TYPE__ASSIGNMENTS_COMPLETE) {
        if (vec_grow(a->net_staged, a->cap_net_staged, a->n_net_staged + m->n_update) != 0) {
            agent_netmaps_staged_clear(a);
            return SWARM_ENOMEM;
        }
        for (size_t i = 0; i < m->n_update; i++) {
            Swarm__NetworkMap *c = m->update[i] != NULL ? pb_copy(&m->update[i]->base) : NULL;
            if (m->update[i] != NULL && c == NULL) {
                agent_netmaps_staged_clear(a);
                return SWARM_ENOMEM;
            }
            if (c != NULL) {
                a->net_staged[a->n_net_staged++] = c;
            }
        }
        if (m->more) {
            return 0;
        }
        for (size_t i = 0; rv == 0 && i < a->n_net_staged; i++) {
            rv = net_update(a, a->net_staged[i]);
        }
        for (size_t i = a->n_net_have; rv == 0 && i > 0; i--) {
            if (!staged_has(a, a->net_have[i - 1])) {
                net_remove(a, a->net_have[i - 1]);
            }
        }
        agent_netmaps_staged_clear(a);
        return rv;
    }
    for (size_t i = 0; rv == 0 && i < m->n_update; i++) {
        rv = net_update(a, m->update[i]);
    }
    for (size_t i = 0; rv == 0 && i < m->n_remove; i++) {
        if (m->remove[i] != NULL) {
            net_remove(a, m->remove[i]);
        }
    }
    return rv;
}

size_t agent_network_count(const struct agent *a)
{
    return a->n_net_have;
}

/* ------------------------------------------------------------- stream */

static void agent_netmaps_msg_cb(const ProtobufCMessage *msg, void *data)
{
    struct agent_conn *conn = data;
    if (conn->closing || conn->a->closing) {
        return;
    }
    if (agent_apply_netmaps(conn->a, (const Swarm__NetworkMapsMessage *)msg) != 0) {
        agent_session_restart(conn->a, "out of memory applying the network maps");
    }
}

static void agent_netmaps_done_cb(enum api_status status, const char *message,
                                  const ProtobufCMessage *resp, void *data)
{
    struct agent_conn *conn = data;
    (void)resp;
    if (conn->closing || conn->a->closing || conn->a->conn != conn) {
        return;
    }
    agent_session_lost(conn->a, status, message, "network maps stream");
}

int agent_netmaps_open(struct agent_conn *conn)
{
    struct agent *a = conn->a;
    Swarm__NetworkMapsRequest req = SWARM__NETWORK_MAPS_REQUEST__INIT;
    if (!a->has_netsink) {
        return 0;
    }
    agent_netmaps_staged_clear(a);
    req.session_id = a->session_id;
    return api_client_stream(conn->client, &swarm__dispatcher__descriptor, "NetworkMaps",
                             &req.base, 0, agent_netmaps_msg_cb, agent_netmaps_done_cb, conn,
                             NULL);
}
