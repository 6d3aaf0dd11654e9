/* Manager consensus: canonical/raft with its libuv disk backend, whose FSM is
 * the store. Every change of cluster state is proposed here by the leader,
 * committed by a majority of managers and applied, in log order, to each
 * manager's own store.
 *
 * Log entry format (RAFT-NOTES.md): [u32 length][u32 type][payload][zero pad
 * to a multiple of 8], little endian. The padding works around canonical/raft
 * #82; the explicit length lets the decoder ignore it.
 *
 * Leadership: raft 0.15 has no state-change callback, so a short timer
 * watches raft_state(). On becoming leader the node first commits a barrier
 * (so its store has applied every earlier entry, and, for canonical/raft
 * #220, an entry of its own term is committed), and only then reports
 * leadership to the owner, which starts its leader-only loops. */
#ifndef SWARM_RAFT_RAFTNODE_H
#define SWARM_RAFT_RAFTNODE_H

#include <raft.h>
#include <raft/uv.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "store.h"

#define RNODE_ENTRY_STORE_COMMAND 1u

struct rnode;

struct rnode_config {
    raft_id id;                 /* this manager's raft id, non-zero */
    const char *address;        /* advertised "IP:PORT" */
    const char *dir;            /* raft data dir (must exist) */
    unsigned election_timeout_ms;  /* default 1000 */
    unsigned heartbeat_timeout_ms; /* default 100 */
    unsigned snapshot_threshold;   /* entries between snapshots, default 10000 */
    unsigned snapshot_trailing;    /* entries kept after a snapshot, default 5000 */
    /* Transport for traffic to other managers, not owned by the node; NULL
     * gives a built-in transport with no peers (every connect fails), for
     * tests and tools. */
    struct raft_uv_transport *transport;
};

/* Outcome of a proposal. status: 0 if committed and applied (then `result`
 * says whether the store accepted it), SWARM_ENOTLEADER if leadership was
 * lost before the entry was known committed (it may still commit: commands
 * are compare-and-set, so a retry cannot apply twice), or another SWARM_E*. */
typedef void (*rnode_propose_cb)(int status, const struct store_result *result, void *data);
/* Leadership changes, reported after the barrier on gaining it. */
typedef void (*rnode_leadership_cb)(bool leader, void *data);

int rnode_new(uv_loop_t *loop, struct store *store, const struct rnode_config *cfg,
              struct rnode **out, char *errmsg);

/* Create a new raft group whose only voter is this node. A node that was
 * already bootstrapped gets 0 (its log is kept). */
int rnode_bootstrap(struct rnode *n, char *errmsg);

/* Replace the configuration with this node as the single voter, keeping the
 * log and the store (--force-new-cluster). */
int rnode_force_new_cluster(struct rnode *n, char *errmsg);

/* Start raft: it loads its state, restores its last snapshot into the store
 * and will replay the log after it as entries are known committed. The store
 * must match the raft state: a store whose last index is beyond the last
 * entry of the log (copied from elsewhere, or a raft dir that was replaced)
 * is emptied, loudly, before raft applies anything (raft_start itself applies
 * on a single voter), and rebuilt by the replay; an older or empty store is
 * simply caught up by it. */
int rnode_start(struct rnode *n, char *errmsg);

/* The store commands of the entries this node holds in its log but has not
 * applied yet, in log order (committed or not: for hints only, never to
 * apply). Valid between rnode_start and the loop's next turn, before raft
 * applies anything. Entries that are not store commands are skipped. */
typedef void (*rnode_unapplied_cb)(uint64_t index, const Swarm__StoreCommand *cmd, void *data);
void rnode_scan_unapplied(struct rnode *n, rnode_unapplied_cb cb, void *data);

void rnode_set_leadership_cb(struct rnode *n, rnode_leadership_cb cb, void *data);

/* Propose a command. Only on the leader (else SWARM_ENOTLEADER at once). The
 * command is encoded before this returns; cb runs exactly once, later. */
int rnode_propose(struct rnode *n, const Swarm__StoreCommand *cmd,
                  rnode_propose_cb cb, void *data);

/* Membership, on the leader only (else SWARM_ENOTLEADER at once), one change
 * at a time (SWARM_ESTATE while another is in flight, raft's CANTCHANGE).
 * status: 0 once the change is committed, SWARM_ENOTLEADER if leadership was
 * lost meanwhile, SWARM_EEXIST / SWARM_ENOTFOUND for an id or address already
 * present / absent, or SWARM_ERAFT. cb runs exactly once, later, unless the
 * call returned an error.
 *
 * rnode_add_voter: raft_add (the node joins as a spare and starts receiving
 * the log; it starts without bootstrapping), then raft_assign RAFT_VOTER,
 * which raft commits once the node caught up. A node already present but not
 * a voter (an earlier attempt) is only promoted. */
typedef void (*rnode_change_cb)(int status, void *data);
int rnode_add_voter(struct rnode *n, raft_id id, const char *address,
                    rnode_change_cb cb, void *data);
/* Remove `id` from the configuration (any role). */
int rnode_remove(struct rnode *n, raft_id id, rnode_change_cb cb, void *data);
/* The same changes on any leader's struct raft (a node's, or a test's raft
 * fixture server), without the leadership check: `*closing` true when the
 * first step of an add completes ends it with SWARM_ENOTLEADER. */
int rnode_raft_add_voter(struct raft *r, const bool *closing, raft_id id, const char *address,
                         rnode_change_cb cb, void *data);
int rnode_raft_remove(struct raft *r, const bool *closing, raft_id id, rnode_change_cb cb,
                      void *data);

/* True after the leader's barrier committed and until leadership is lost. */
bool rnode_is_leader(const struct rnode *n);
/* The leader as this node knows it: id 0 and address NULL when unknown. */
void rnode_leader(struct rnode *n, raft_id *id, const char **address);
/* "leader", "follower", "candidate" or "unavailable". */
const char *rnode_state_name(struct rnode *n);
/* How long no leader has been known (0 while one is). */
uint64_t rnode_leaderless_ms(const struct rnode *n);
raft_id rnode_id(const struct rnode *n);
/* The membership as this node knows it (the last configuration appended to
 * its log): read-only, valid until the loop runs again. */
const struct raft_configuration *rnode_configuration(const struct rnode *n);
/* Raft's figures for metrics: term, commit and applied index, leader. */
struct rnode_stats {
    uint64_t term;
    uint64_t commit_index;
    uint64_t applied_index;
    bool leader;
};
void rnode_stats(struct rnode *n, struct rnode_stats *out);
/* The index of the last entry in this node's log (0 when empty). */
uint64_t rnode_last_index(const struct rnode *n);
/* The raft instance itself, for unit tests and benchmarks that inspect
 * what the wrapper does not expose (snapshot and apply indexes). Production
 * code goes through the functions above. */
struct raft *rnode_raft_testonly(struct rnode *n);

/* Stop raft and free everything; `done` runs when all handles are closed. */
void rnode_close(struct rnode *n, void (*done)(void *data), void *data);

/* Entry encoding, exposed for tests. *buf is raft_malloc'd. */
int rnode_encode_command(const Swarm__StoreCommand *cmd, struct raft_buffer *buf);
/* Decode an entry; returns the type and the payload bounds, or SWARM_ECORRUPT. */
int rnode_decode_entry(const struct raft_buffer *buf, uint32_t *type,
                       const uint8_t **payload, size_t *len);

/* The FSM's work, without the node around it, so that a test's raft fixture
 * applies entries exactly as every manager does (tests/unit/mgrfix.c).
 * rnode_apply_entry: decode the entry at `index` and store_apply it; 0 with
 * the outcome in *result (an undecodable entry is skipped, status
 * SWARM_ECORRUPT), or RAFT_IOERR when the store itself failed.
 * rnode_snapshot_store / rnode_snapshot_finalize / rnode_restore_store: the
 * FSM's snapshot (one malloc'd buffer, freed by finalize) and restore (frees
 * buf->base with raft_free on success, else RAFT_CORRUPT). */
int rnode_apply_entry(struct store *store, uint64_t index, const struct raft_buffer *buf,
                      struct store_result *result);
int rnode_snapshot_store(struct store *store, struct raft_buffer *bufs[], unsigned *n_bufs);
int rnode_snapshot_finalize(struct raft_buffer *bufs[], unsigned *n_bufs);
int rnode_restore_store(struct store *store, struct raft_buffer *buf);

#endif
