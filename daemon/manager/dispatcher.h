/* The dispatcher (leader only): the sessions nodes hold with the leader.
 * See dispatcher.c. */
#ifndef SWARM_MANAGER_DISPATCHER_H
#define SWARM_MANAGER_DISPATCHER_H

#include <stdbool.h>

#include "api.h"
#include "logs.pb-c.h"
#include "store.h"

struct manager;
struct dispatcher;

struct dispatcher *dispatcher_new(struct manager *m);
/* Leadership changes: sessions exist only on the leader. */
void dispatcher_set_leader(struct dispatcher *d, bool leader);
/* A committed store change (called on every manager). */
void dispatcher_on_event(struct dispatcher *d, const struct store_event *ev);
/* End every session and free (handles close asynchronously). */
void dispatcher_close(struct dispatcher *d);

/* Send `sub` to the node's session (a SessionMessage carrying only it).
 * Returns 0, or SWARM_ENOTFOUND when the node has no session here. `sub` is
 * only read during the call. */
int dispatcher_send_log_subscription(struct dispatcher *d, const char *node_id,
                                     const Swarm__LogSubscription *sub);

/* Root rotation: ask the node to renew its certificate now unless it is
 * already issued by the key `issuer_key` (DER SubjectPublicKeyInfo, copied);
 * asked once per session and key. 1 when asked now, 0 when asked on this
 * session already, SWARM_ENOTFOUND when the node has no session here. */
int dispatcher_request_renewal(struct dispatcher *d, const char *node_id,
                               const uint8_t *issuer_key, size_t len);

void dispatcher_register(struct api_server *api, struct manager **current);

#endif
