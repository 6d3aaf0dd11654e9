/* The node's embedded DNS server (Docker's 127.0.0.11), on the agent's libuv
 * loop.
 *
 * One dnsd per node holds the records of every network the node knows
 * (net/dnstable.h: what each name answers) and one listener per task
 * sandbox: a UDP and a TCP socket bound to 127.0.0.11:53 INSIDE the
 * sandbox's network namespace (created on a short-lived thread that setns()
 * into it; a socket keeps the namespace it was created in). A query that
 * arrives on a sandbox's sockets can only come from that sandbox, and is
 * answered from the networks that sandbox is attached to.
 *
 * Names that are not the sandbox's networks' are forwarded to the upstream
 * resolvers (by default the node's /etc/resolv.conf, read with ldns) over
 * UDP from swarmd's own namespace: one fresh socket (random port) and a
 * fresh random ID per forwarded query; the answer must come from an upstream
 * asked, carry that ID and the same question, and is relayed with the
 * asker's ID. Each upstream gets `timeout_ms`; after the last, the asker gets
 * SERVFAIL. At most `max_inflight` queries are forwarded at once; beyond
 * that, SERVFAIL at once (Docker's resolver: 100 concurrent, then SERVFAIL).
 *
 * Happy path of a forwarded query: query from sandbox -> FORWARD -> fresh
 * socket + ID, sent to upstream 0, timer armed -> answer matches -> relayed
 * to the asker (UDP, or the TCP connection it came on) -> socket and timer
 * closed. Failure paths: no upstreams or max_inflight reached -> SERVFAIL
 * now; timer fires -> next upstream, or SERVFAIL after the last; a reply that
 * does not match (ID, question, source) -> ignored; the sandbox or its TCP
 * connection goes away first -> the answer is dropped when it comes.
 *
 * TCP: length-prefixed messages, at most DNSD_TCP_CONNS connections per
 * sandbox, closed after DNSD_TCP_IDLE_MS without a complete query, or when
 * more than DNSD_TCP_QUEUE_MAX bytes of answers wait for an asker that
 * does not read them. Bad
 * packets are dropped or answered FORMERR (net/dnsmsg.h).
 *
 * Root (CAP_SYS_ADMIN, CAP_NET_BIND_SERVICE) is needed to add sandboxes. */
#ifndef SWARM_NET_DNS_H
#define SWARM_NET_DNS_H

#include <stddef.h>
#include <uv.h>

#include "dispatcher.pb-c.h"

#define DNSD_LISTEN_ADDR "127.0.0.11"
#define DNSD_LISTEN_PORT 53
#define DNSD_MAX_UPSTREAMS 3        /* resolv.conf's MAXNS */
#define DNSD_TIMEOUT_MS 2000        /* per upstream */
#define DNSD_MAX_INFLIGHT 100       /* Docker's maxConcurrent */
#define DNSD_TCP_CONNS 16           /* per sandbox */
#define DNSD_TCP_IDLE_MS 10000
#define DNSD_TCP_QUEUE_MAX (1024 * 1024) /* answers not yet taken by the asker */

struct dnsd;

struct dnsd_config {
    /* Upstream resolvers, "IP", "IP:PORT" or "[IPv6]:PORT" (at most
     * DNSD_MAX_UPSTREAMS). None: the nameservers of `resolv_conf`. */
    const char *const *upstreams;
    size_t n_upstreams;
    const char *resolv_conf; /* NULL: /etc/resolv.conf */
    unsigned timeout_ms;     /* 0: DNSD_TIMEOUT_MS */
    unsigned max_inflight;   /* 0: DNSD_MAX_INFLIGHT */
};

/* Create the server on `loop`. `cfg` may be NULL (all defaults); nothing of
 * it is kept. A resolv.conf that is missing or names no nameserver is not
 * an error: forwarded queries then get SERVFAIL (logged once). Returns 0,
 * SWARM_EINVAL (a bad upstream, errmsg says which) or SWARM_ENOMEM. */
int dnsd_new(uv_loop_t *loop, const struct dnsd_config *cfg, struct dnsd **out,
             char *errmsg);

/* Close every socket and free the server once the last handle has closed
 * (the loop must run on for that); queries in flight get no answer. */
void dnsd_close(struct dnsd *d);

/* Replace the records of map->network (net/dnstable.h). Returns 0,
 * SWARM_EINVAL (errmsg says why; the previous records stay) or
 * SWARM_ENOMEM. Nothing of `map` is kept. */
int dnsd_map_update(struct dnsd *d, const Swarm__NetworkMap *map, char *errmsg);
/* Forget a network's records. */
void dnsd_map_remove(struct dnsd *d, const char *network_id);

/* Listen on 127.0.0.11:53 (UDP and TCP) inside the network namespace at
 * `netns_path` (e.g. /run/netns/X or /proc/PID/ns/net) for the sandbox of
 * `task_id`, answering from `network_ids` (copied). Returns 0,
 * SWARM_EEXIST (task_id already has a listener), SWARM_EIO (the namespace
 * cannot be entered or the address bound; errmsg says which step) or
 * SWARM_ENOMEM; on error nothing is left open. */
int dnsd_sandbox_add(struct dnsd *d, const char *task_id, const char *netns_path,
                     const char *const *network_ids, size_t n, char *errmsg);
/* Stop listening for that sandbox (nothing if unknown); answers to its
 * forwarded queries are dropped. */
void dnsd_sandbox_remove(struct dnsd *d, const char *task_id);
size_t dnsd_sandbox_count(const struct dnsd *d);

#endif
