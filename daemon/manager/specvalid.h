/* Bounds on everything a user or a node sets, checked in one place: the
 * manager runs these on every create/update before anything is proposed
 * (INVALID_ARGUMENT with the message), and swarmctl runs the same functions
 * before it sends, so both refuse the same things with the same words.
 * Docker's wording where swarmkit has a rule (manager/controlapi); ours for
 * the bounds Docker lacks. Pure: no I/O.
 *
 * Why these maxima:
 *   - replicas: 100,000 per service. Every task is a row (its spec copied)
 *     on every manager and is read by every scheduler pass: 100,000 small
 *     tasks took about 300 MB of RSS on a one-node manager (3 KB a task),
 *     the most we want one service to cost. They are created 5,000 per raft
 *     entry (ORCH_MAX_CREATE), so a scale-up to the maximum leaves
 *     heartbeats and the API answering. 2^64-1 replicas used to exhaust a
 *     manager's memory in seconds, and every new leader's after it.
 *   - durations: 0 to 8760h (a year); a negative one is always a mistake.
 *   - strings and lists: far above any real use, far below what would cost
 *     memory: the whole ServiceSpec at most 64 KiB packed, and replicas x
 *     task spec at most 1 GiB, because every task carries a copy (100,000
 *     replicas of a 10 KiB spec, or 16,000 of a 64 KiB one).
 * Strings cannot hold NUL: the RPC runtime refuses such a request before it
 * is decoded (pbwire.h). */
#ifndef SWARM_MANAGER_SPECVALID_H
#define SWARM_MANAGER_SPECVALID_H

#include <stdint.h>

#include "objects.pb-c.h"

#define SPEC_MAX_REPLICAS 100000
#define SPEC_MAX_DURATION_MS (8760LL * 3600 * 1000)
#define SPEC_MAX_NAME 63
#define SPEC_MAX_IMAGE 4096
#define SPEC_MAX_PATH 4096
#define SPEC_MAX_ARGS 1024         /* args, env, health test: entries each */
#define SPEC_MAX_ARG 65536         /* bytes of one arg / env entry */
#define SPEC_MAX_LABELS 256
#define SPEC_MAX_LABEL_KEY 256
#define SPEC_MAX_LABEL_VALUE 4096
#define SPEC_MAX_CONSTRAINTS 64
#define SPEC_MAX_CONSTRAINT 1024
#define SPEC_MAX_PREFERENCES 16
#define SPEC_MAX_PORTS 256
#define SPEC_MAX_HEALTH_RETRIES 10000
#define SPEC_MAX_SERVICE_SPEC (64 * 1024) /* packed bytes */
#define SPEC_MAX_SERVICE_TASKS_BYTES (1024LL * 1024 * 1024) /* replicas x task spec */
#define SPEC_MAX_NANO_CPUS (1000000LL * 1000000000LL)
#define SPEC_MAX_HISTORY 1000
#define SPEC_MAX_HEARTBEAT_MS (3600LL * 1000)
#define SPEC_MAX_HOSTNAME 253
#define SPEC_MAX_NODE_RUNTIMES 8
#define SPEC_MAX_MOUNTS 64
#define SPEC_MAX_NODE_FIELD 128    /* platform os/arch, engine version */
#define SPEC_MAX_NETWORK_ERROR 1024 /* NodeDescription.network_error, bytes */

/* A service spec from a client (create or update). Returns 0, or
 * SWARM_EINVAL with the reason in errmsg (SWARM_ERRMSG_SIZE bytes), e.g.
 * "invalid replicas 1000000: the maximum is 100000". A spec without a name
 * or mode is accepted (the manager fills them in). */
int spec_validate_service(const Swarm__ServiceSpec *spec, char *errmsg);

/* The parts of a cluster spec a user sets (`swarm init`, `swarm update`):
 * task history, dispatcher heartbeat, raft ticks, labels. Zero means "the
 * default" and is accepted. Certificate expiry is checked by the CA code. */
int spec_validate_cluster(const Swarm__ClusterSpec *spec, char *errmsg);

/* A node spec (`node update`): role and availability in range, labels. */
int spec_validate_node(const Swarm__NodeSpec *spec, char *errmsg);

/* What a node says about itself (join, session): hostname printable ASCII
 * without spaces, 1-253 bytes; platform and engine version printable and
 * short; resources not negative. */
int spec_validate_node_description(const Swarm__NodeDescription *d, char *errmsg);

/* A hostname as above (swarmd --hostname uses it at start). */
int spec_validate_hostname(const char *hostname, char *errmsg);

/* Availability as an enum from the wire. */
int spec_validate_availability(int availability, char *errmsg);

#endif
