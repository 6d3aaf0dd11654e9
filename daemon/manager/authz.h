/* Who may do what, decided from the cluster store rather than from the
 * certificate alone (swarmkit's ca.AuthorizeForwardedRoleAndOrg plus its
 * node and blacklist checks). Pure: objects in, a decision out.
 *
 * A certificate names a node (CN), a cluster (O) and a role (OU). It is
 * honoured only while the store agrees:
 *   - the cluster is ours and the node is not on the revoked list;
 *   - the node exists (a removed node gets nothing);
 *   - the manager role needs the certificate, the node's current role and its
 *     desired role to all say manager: a demotion takes manager powers away
 *     the moment it is committed, before the node renews its certificate.
 *     Anything less is a worker (dispatcher, certificate renewal).
 * A raft peer must further be a current raft member in the store: role
 * manager with a raft id; its address is the one the store holds. */
#ifndef SWARM_DAEMON_MANAGER_AUTHZ_H
#define SWARM_DAEMON_MANAGER_AUTHZ_H

#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "objects.pb-c.h"

/* The role `cert_role` (API_ROLE_WORKER or API_ROLE_MANAGER) is worth now.
 * `c` is the cluster object (NULL: this manager's store has none yet),
 * `node` the node the certificate names (NULL: not in the store). Returns 0
 * with *role set, SWARM_EPERM (refused) or SWARM_EUNAVAIL (store not ready),
 * with the reason in `errmsg`. */
int authz_peer_role(const Swarm__Cluster *c, const Swarm__Node *node, const char *node_id,
                    const char *cluster_id, enum api_role cert_role, enum api_role *role,
                    char *errmsg);

/* A raft peer with a manager certificate for `node_id`: 0 with its raft id
 * and store address, or SWARM_EPERM / SWARM_EUNAVAIL with the reason. */
int authz_raft_peer(const Swarm__Cluster *c, const Swarm__Node *node, const char *node_id,
                    const char *cluster_id, uint64_t *raft_id, const char **addr, char *errmsg);

/* True if `node_id` is on the cluster's revoked list. */
int authz_is_revoked(const Swarm__Cluster *c, const char *node_id);

/* A node change (`old` -> `new`, both stored versions) takes its manager
 * powers away: its open connections must be checked again. A demotion
 * shows twice: the desired role goes to worker (RPC connections granted
 * the manager role close), then the role itself once raft removed the
 * member (its raft connections close); a changed raft id counts too. */
int authz_node_lost_manager(const Swarm__Node *old, const Swarm__Node *new);

/* Add `node_id` to the revoked list until `expiry_s`, dropping entries that
 * expired before `now_s`. Returns 0 or SWARM_ENOMEM (`c` unchanged). */
int authz_revoke(Swarm__Cluster *c, const char *node_id, int64_t expiry_s, int64_t now_s);

#endif
