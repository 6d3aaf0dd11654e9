/* A deterministic cluster of managers for unit tests of the manager glue.
 *
 * MFX_N raft servers on libraft's in-memory fixture (raft/fixture.h:
 * simulated network, disk and time), each with its own SQLite store (in
 * memory) whose FSM is raftnode's own (rnode_apply_entry: the same decoding
 * and store_apply as every manager), and a fake module environment (menv.h)
 * over its fixture server:
 *   propose    the command stamped with now() and encoded as rnode does
 *              (rnode_encode_command), raft_apply on that server; the cb
 *              runs once, when the entry is applied there or with
 *              SWARM_ENOTLEADER when raft fails it (leadership lost,
 *              shutdown), exactly as rnode_propose maps raft's statuses;
 *   is_leader  true after the server's barrier in its current term was
 *              applied, as rnode_is_leader (the harness watches raft_state
 *              after every step as rnode's 10 ms watch does, and calls the
 *              server's `on_leader` hook on each change);
 *   leader     raft_leader on that server, naming only another server
 *              (as manager.c);
 *   now        a fake wall clock: MFX_WALL_BASE_MS + the fixture's time.
 *
 * Time: nothing runs on the real clock. Every libuv timer of the modules runs
 * on the one shared loop, whose monotonic clock is the fixture's time: the
 * test binary defines clock_gettime() so that, while a harness is up, the
 * monotonic clocks libuv reads answer the fixture's time (the wall clock is
 * left alone). mfx_step() fires the fixture's next event, then runs the loop
 * with UV_RUN_NOWAIT until no timer is due, then watches leadership.
 *
 * Partitions use raft_fixture_saturate both ways (RAFT-NOTES.md: with
 * disconnect, waiting for a leader never returns).
 *
 * Teardown (mfx_close): the fixture closes first, which fails every pending
 * proposal (its cb runs with an error while the server's state still
 * exists), then the loop is run until every handle is closed (the modules
 * must have been closed by the test before), then the stores close. */
#ifndef SWARM_TESTS_MGRFIX_H
#define SWARM_TESTS_MGRFIX_H

#include <raft.h>
#include <raft/fixture.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "menv.h"
#include "raftnode.h"
#include "store.h"

#define MFX_N 3
#define MFX_WALL_BASE_MS 1800000000000LL

struct mfx;

struct mfx_server {
    struct mfx *fx;
    unsigned index;
    raft_id id;
    struct store *store;
    struct raft_fsm fsm;
    struct store_result last_result; /* of the entry being applied */
    struct menv env;
    bool leader_ready;    /* barrier applied in this term */
    bool barrier_pending;
    bool down;            /* mfx_kill: its modules are gone with it */
    /* Proposals through env.propose: made, and whose cb ran. */
    unsigned n_proposed;
    unsigned n_done;
    unsigned n_failed; /* done with a non-zero status */
    /* Membership changes through mfx_add_voter / mfx_remove, and their cbs. */
    unsigned n_changes;
    unsigned n_changes_done;
    /* Leadership changes (after the barrier, as rnode reports them). */
    void (*on_leader)(struct mfx_server *s, bool leader, void *data);
    void *on_leader_data;
};

struct mfx {
    struct raft_fixture f;
    uv_loop_t loop;
    unsigned n;
    bool closing;
    struct mfx_server s[MFX_N];
};

/* Bootstrap and start MFX_N voters (ids 1..MFX_N), each with an empty store.
 * No leader yet: mfx_run_until_leader. Returns 0, or a SWARM_E* with a
 * message in errmsg (SWARM_ERRMSG_SIZE bytes). */
int mfx_init(struct mfx *fx, char *errmsg);
/* Close the fixture (pending proposals fail), the loop, the stores. */
void mfx_close(struct mfx *fx);

/* One fixture event, then the loop's due timers, then leadership. */
void mfx_step(struct mfx *fx);
/* Step until `ms` of fixture time have passed. */
void mfx_run(struct mfx *fx, unsigned ms);
/* Step until cond() is true (checked after every step) or `max_ms` of
 * fixture time have passed; returns cond's last value. */
bool mfx_run_until(struct mfx *fx, bool (*cond)(struct mfx *fx, void *arg), void *arg,
                   unsigned max_ms);
/* Index of the server whose menv says leader (barrier done), or fx->n. */
unsigned mfx_leader(struct mfx *fx);
/* Step until some server is a ready leader (other than `not`, if < n). */
bool mfx_run_until_leader(struct mfx *fx, unsigned not, unsigned max_ms);

/* Cut server i off from every other (both ways), and back. */
void mfx_partition(struct mfx *fx, unsigned i);
void mfx_heal(struct mfx *fx, unsigned i);

/* Raft membership on server i, as rnode does it on a manager (for the role
 * manager): the configuration it knows; add_voter = raft_add then
 * raft_assign voter once added (only the assign when already present and
 * not a voter), remove = raft_remove; on the ready leader only, else
 * SWARM_ENOTLEADER at once; raft's errors mapped as rnode maps them. `cb`
 * runs once, later, unless the call returned an error. */
const struct raft_configuration *mfx_members(struct mfx_server *s);
int mfx_add_voter(struct mfx_server *s, raft_id id, const char *address, rnode_change_cb cb,
                  void *data);
int mfx_remove(struct mfx_server *s, raft_id id, rnode_change_cb cb, void *data);

/* Fixture time in ms. */
uint64_t mfx_time(struct mfx *fx);

/* Propose `cmd` through server i's env and step until its cb ran (or
 * max_ms); returns the cb's status, or the store's result status when 0, or
 * SWARM_ETIMEDOUT. */
int mfx_propose_wait(struct mfx *fx, unsigned i, Swarm__StoreCommand *cmd, unsigned max_ms);
/* Step until every live server's store reached server i's last index. */
bool mfx_run_until_converged(struct mfx *fx, unsigned max_ms);

#endif
