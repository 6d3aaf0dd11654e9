/* DNS messages of the embedded server: what to do with one query, the
 * answers it builds, and the rewriting of forwarded queries (pure: bytes in,
 * bytes out, no sockets). Every parse and every build goes through ldns
 * (ldns_wire2pkt / ldns_pkt2wire); nothing here reads or writes the wire
 * format by hand.
 *
 * Bytes from a sandbox are untrusted: a packet ldns cannot parse, or one that
 * is itself an answer, is dropped; a query with other than one question is
 * answered FORMERR, another opcode NOTIMP. Output buffers are malloc'd and
 * the caller's (free()). */
#ifndef SWARM_NET_DNSMSG_H
#define SWARM_NET_DNSMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dnstable.h"

/* Answers over UDP fit the asker's EDNS buffer (at least 512 bytes, at most
 * this); over TCP, 65535. Larger answers keep what fits and set TC. */
#define DNSMSG_UDP_MAX 4096

enum dnsmsg_action {
    DNSMSG_DROP = 0,  /* not a query we answer: ignore it */
    DNSMSG_REPLY,     /* send *reply back to the asker */
    DNSMSG_FORWARD,   /* not ours: ask the upstream resolvers */
};

/* Decide on the query `wire` from a sandbox attached to `network_ids`:
 * DROP, REPLY with *reply (*reply_len bytes) (ours, or FORMERR/NOTIMP), or FORWARD.
 * Multi-address answers are shuffled from *rng. `tcp`: the answer goes over
 * TCP (no UDP size limit). Returns 0 or SWARM_ENOMEM. */
int dnsmsg_query_handle(const struct dnstable *t, const uint8_t *wire, size_t len,
                        const char *const *network_ids, size_t n_networks,
                        bool tcp, uint64_t *rng, enum dnsmsg_action *action,
                        uint8_t **reply, size_t *reply_len);

/* Copy a message with its ID set to `id` (a forwarded query gets a fresh
 * ID; the upstream's answer gets the asker's back). Returns 0, SWARM_EPROTO
 * (not a DNS message) or SWARM_ENOMEM. *old_id (may be NULL) gets the ID
 * the message had. */
int dnsmsg_id_rewrite(const uint8_t *wire, size_t len, uint16_t id,
                      uint16_t *old_id, uint8_t **out, size_t *out_len);

/* Check that `wire` answers the query we forwarded with ID `id` (an answer,
 * that ID, the same question) and copy it with the asker's ID `asker_id`.
 * Returns 0, SWARM_EPROTO (not that answer: ignore it) or SWARM_ENOMEM. */
int dnsmsg_answer_relay(const uint8_t *wire, size_t len, const uint8_t *query,
                        size_t query_len, uint16_t id, uint16_t asker_id,
                        uint8_t **out, size_t *out_len);

/* An answer with no records and `rcode` (LDNS_RCODE_SERVFAIL, LDNS_RCODE_REFUSED, ...)
 * to `query` (a query dnsmsg_query_handle decided to forward). Returns 0,
 * SWARM_EPROTO or SWARM_ENOMEM. */
int dnsmsg_reply_rcode(const uint8_t *query, size_t len, uint8_t rcode,
                       uint8_t **out, size_t *out_len);

#endif
