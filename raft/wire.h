/* A checker for the bytes a peer manager sends to our raft, in canonical/raft
 * 0.15's uv wire format, run by the transport before raft sees them.
 *
 * libraft's decoder trusts lengths read off the wire (it reads fixed fields
 * past a short header, walks a configuration without bounds, points entries
 * past the payload when an early entry is not 8-byte aligned): a peer with a
 * manager certificate could crash us with a few bytes. So every message is
 * checked here first:
 *
 *   preamble  u64 type (1..6), u64 header length (exactly what 0.15 sends
 *             for that type)
 *   header    append entries: 4 x u64, u64 n (matching the length), n entry
 *             records {u64 term, u8 type (command, barrier, change), 3 unused,
 *             u32 length}, 8 unused bytes; install snapshot: 4 x u64, u64
 *             configuration length, configuration, u64 data length, 8 unused
 *   payload   append entries: the entries, each but the last a multiple of 8
 *             bytes; a configuration-change entry must be a well-formed
 *             configuration. Install snapshot: the snapshot data.
 *
 * A configuration (raft's encoding format 1): u8 format, u64 n, n x {u64 id
 * (not 0), NUL-terminated address, u8 role (standby, voter, spare)}.
 *
 * Usage: feed every chunk in order to rwire_feed. 0 means the whole chunk may
 * go to raft; an error means the connection must be closed and none of this
 * chunk handed over. A message is complete for raft only with its last byte,
 * and every check on a message ends at or before that byte, so raft never
 * receives a complete message that failed a check.
 *
 * Pure: no I/O, no loop. */
#ifndef SWARM_RAFT_WIRE_H
#define SWARM_RAFT_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Entries in one append-entries message. Raft 0.15 sends every entry from
 * the follower's next index to the end of its in-memory log (up to snapshot
 * threshold + trailing, 15,000 by default, more with a larger snapshot
 * interval); the header costs 16 bytes per entry. */
#define RWIRE_ENTRIES_MAX (1u << 20)
/* One entry: a store command carries up to 20,000 actions (ORCHLOOP_MAX_ACTIONS),
 * tens of MiB at most. */
#define RWIRE_ENTRY_MAX (256u << 20)
/* All entries of one message, or one snapshot (the whole SQLite store). */
#define RWIRE_PAYLOAD_MAX (2ull << 30)
/* An encoded configuration: about 270 bytes per manager at most. */
#define RWIRE_CONF_MAX (64u << 10)

struct rwire_change {
    uint64_t off; /* offset in the payload */
    uint32_t len;
};

struct rwire {
    int state;
    uint64_t type;
    uint64_t hlen;   /* header length from the preamble */
    uint64_t off;    /* bytes of the current section (preamble, header, payload) seen */
    uint64_t field_start; /* the next field of interest in this section */
    uint32_t field_len;
    int field_kind;
    uint32_t got; /* bytes of the current field collected */
    uint8_t scratch[16];
    uint64_t n_entries;
    uint64_t entry_i;
    uint64_t payload;    /* payload length (unpadded sum, as raft computes it) */
    bool unaligned_seen; /* an entry not a multiple of 8 bytes: must be the last */
    uint64_t conf_len;
    struct rwire_change *changes;
    size_t n_changes, cap_changes, change_i;
    uint64_t messages; /* complete messages checked, for tests and logs */
    uint8_t conf[RWIRE_CONF_MAX];
};

void rwire_init(struct rwire *w);
void rwire_close(struct rwire *w);

/* Check the next `len` bytes of the stream. 0, or SWARM_EPROTO with a message
 * in errmsg (SWARM_ERRMSG_SIZE bytes): close the connection. After an error
 * every further call fails. SWARM_ENOMEM if bookkeeping cannot grow. */
int rwire_feed(struct rwire *w, const uint8_t *buf, size_t len, char *errmsg);

/* Is `buf` a well-formed raft configuration (format 1)? 0 or SWARM_EPROTO. */
int rwire_conf_check(const uint8_t *buf, size_t len, char *errmsg);

#endif
