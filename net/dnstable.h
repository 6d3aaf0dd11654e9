/* The embedded DNS server's records: which names a task may resolve, and to
 * which addresses (pure: no I/O, no sockets, no clock).
 *
 * The table holds one record set per network, rebuilt whole from each
 * Swarm__NetworkMap the node receives (dnstable_network_update) and dropped
 * with the network (dnstable_network_remove). The names of a network, after
 * Docker's libnetwork (service_common.go addServiceBinding):
 *
 *   SERVICE, ALIAS          the service's VIP (endpoint mode vip), or every
 *                           ready task's address (dnsrr)
 *   tasks.SERVICE,
 *   tasks.ALIAS             every ready task's address
 *   TASK_NAME               that task's address (service.slot.taskid, the
 *                           full name only, as Docker: "web.1" is not a name)
 *
 * "Ready" is NetworkEndpoint.ready (running, and healthy if the service has a
 * health check). A vip service resolves only while at least one of its tasks
 * on that network is ready (Docker removes the VIP's record with the last
 * backend). The ingress network has no names (Docker: routing only).
 *
 * A lookup is scoped to the networks the asking sandbox is attached to, in
 * the sandbox's order with ingress last; the first network that knows the
 * name answers (Docker's sandbox ResolveName). "NAME.NETWORK" looks NAME up
 * in the network called NETWORK only. Names compare case-insensitively, with
 * or without a trailing dot. */
#ifndef SWARM_NET_DNSTABLE_H
#define SWARM_NET_DNSTABLE_H

#include <stddef.h>
#include <stdint.h>

#include "dispatcher.pb-c.h"
#include "vec.h"

/* Docker's resolver answers with this TTL (libnetwork resolver.go respTTL). */
#define DNSTABLE_TTL 600

struct dnstable;

struct dnstable_addr {
    int family;           /* AF_INET or AF_INET6 */
    unsigned char a[16];  /* network byte order; 4 bytes used for AF_INET */
};

enum dnstable_kind {
    DNSTABLE_FORWARD = 0, /* not a name of the asker's networks: ask upstream */
    DNSTABLE_FOUND,       /* ours: answer with `addrs` (may be empty: NODATA) */
};

struct dnstable_answer {
    enum dnstable_kind kind;
    VEC(struct dnstable_addr) addrs; /* of the asked family only */
};

/* Record types a lookup distinguishes (the DNS qtype values). */
#define DNSTABLE_TYPE_A 1
#define DNSTABLE_TYPE_AAAA 28

int dnstable_new(struct dnstable **out);
void dnstable_free(struct dnstable *t);

/* Replace the records of map->network->id with those the map describes.
 * Returns 0, SWARM_EINVAL (no network ID, an address that is not an IP;
 * errmsg says which; the table is unchanged) or SWARM_ENOMEM (unchanged).
 * The table keeps no pointer into `map`. */
int dnstable_network_update(struct dnstable *t, const Swarm__NetworkMap *map,
                            char *errmsg);
/* Forget a network's records (nothing if unknown). */
void dnstable_network_remove(struct dnstable *t, const char *network_id);
size_t dnstable_network_count(const struct dnstable *t);
/* Records held in all (name, address pairs; tests and metrics). */
size_t dnstable_record_count(const struct dnstable *t);

/* Resolve `name` (any case, trailing dot or not) for type `qtype` as seen by
 * a sandbox attached to `network_ids`. Fills *ans (zeroed by the caller or
 * reused after dnstable_answer_free): FORWARD if no network in scope knows
 * the name; else FOUND with the addresses of family qtype (A: IPv4, AAAA:
 * IPv6; any other qtype: none), deduplicated, in table order. Returns 0 or
 * SWARM_ENOMEM. */
int dnstable_lookup(const struct dnstable *t, const char *name, uint16_t qtype,
                    const char *const *network_ids, size_t n_networks,
                    struct dnstable_answer *ans);
void dnstable_answer_free(struct dnstable_answer *ans);

/* Shuffle addresses in place (Docker shuffles every multi-address answer,
 * resolver.go shuffleAddr), drawing from the xorshift64 state *rng (non-zero
 * seed). */
void dnstable_shuffle(struct dnstable_addr *addrs, size_t n, uint64_t *rng);

#endif
