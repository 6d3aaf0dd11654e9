/* The first raft entry of a new swarm (swarm init): the Cluster object, with
 * its complete spec (the caller's, possibly partial, plus Docker's defaults
 * with swarmd's faster failure detection), its root CA and join tokens, and
 * the Node of the manager that creates it.
 *
 * Pure: no I/O (the node's description and the root CA are given), so it is
 * unit tested with plain inputs (tests/unit/test_bootstrap.c).
 *
 * Ownership: everything given is only read, except `description`, which the
 * command owns from the call on (freed on failure too). The caller frees
 * *out with swarm__store_command__free_unpacked; the spec returned by
 * bootstrap_spec_build with swarm__cluster_spec__free_unpacked. */
#ifndef SWARM_MANAGER_BOOTSTRAP_H
#define SWARM_MANAGER_BOOTSTRAP_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdint.h>

#include "pki.h"
#include "store.pb-c.h"
#include "swarm.pb-c.h"

/* A node certificate's lifetime when the spec names none. */
#define BOOTSTRAP_CERT_EXPIRY_S PKI_NODE_LIFETIME_S

struct bootstrap_identity {
    const char *cluster_id;
    const char *node_id;
    uint64_t raft_id;
    const char *advertise_addr; /* IP:PORT, already validated */
    X509 *root_cert;
    EVP_PKEY *root_key;         /* stored in the cluster object (managers sign with it) */
    const char *ingress_id;     /* the ID of the `ingress` network */
};

/* A complete ClusterSpec: a copy of `given` (NULL: none) with every unset
 * field given its default and the name "default" when it has none. NULL when
 * out of memory. */
Swarm__ClusterSpec *bootstrap_spec_build(const Swarm__ClusterSpec *given);

/* The command creating the Cluster (with the default address pools and
 * mask length of `req`, already validated), this manager's Node (Ready,
 * Reachable, role manager, availability from `req`) and, as Docker, the
 * `ingress` network (the first subnet of the pool: 10.0.0.0/24 by default,
 * VNI 4097, spec.ingress). 0, or SWARM_ENOMEM or a pki error; nothing is
 * left allocated on failure. */
int bootstrap_cmd_build(const struct bootstrap_identity *id, const Swarm__InitRequest *req,
                        Swarm__NodeDescription *description, Swarm__StoreCommand **out);

#endif
