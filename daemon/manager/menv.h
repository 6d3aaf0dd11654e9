/* What a manager module may use of the manager: its environment.
 *
 * A module (dispatcher, orchestration loop, role manager, forwarding, peers,
 * log broker, CA server, ...) is initialised with a `const struct menv *`
 * and never sees `struct manager`. manager.c fills one menv for all of its
 * modules, over its raft node and the wall clock; a unit test fills one over
 * a raft fixture and a fake clock, or by hand.
 *
 * Ownership: the menv belongs to whoever filled it and outlives every module
 * given it (the manager frees its modules before itself). A module copies
 * nothing out of it but may keep the pointer.
 *
 * Writes: `propose` stamps the command with now() and proposes it through
 * raft. It fails at once with SWARM_ENOLEADER when no leader is known and
 * SWARM_ENOTLEADER when another manager leads (cb not called); otherwise cb
 * runs exactly once, later, with status 0 and the store's result once the
 * command is committed and applied, or with an error (leadership lost, raft
 * closing). A module counts its proposals in flight and is freed only once
 * every cb has run (close after drain: raft is closed before the modules,
 * which fires every pending cb). */
#ifndef SWARM_MANAGER_MENV_H
#define SWARM_MANAGER_MENV_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "raftnode.h"
#include "store.h"
#include "swarm.pb-c.h"

typedef void (*menv_propose_cb)(int status, const struct store_result *res, void *data);

struct menv {
    uv_loop_t *loop;
    struct store *store;
    /* The operations; each takes `impl` as its first argument. */
    int (*propose)(void *impl, Swarm__StoreCommand *cmd, menv_propose_cb cb, void *data);
    bool (*is_leader)(void *impl);
    /* The leader to reach: its raft ID and address, when raft names another
     * manager. 0 and NULL when none is known, and when raft names this
     * manager itself (it leads, see is_leader, or is about to): every user
     * would otherwise forward or redirect to itself. */
    void (*leader)(void *impl, raft_id *id, const char **address);
    /* Wall clock in unix ms (stamped into commands by the leader only). */
    int64_t (*now)(void *impl);
    void *impl;
};

static inline int menv_propose(const struct menv *e, Swarm__StoreCommand *cmd, menv_propose_cb cb,
                               void *data)
{
    return e->propose(e->impl, cmd, cb, data);
}

static inline bool menv_is_leader(const struct menv *e)
{
    return e->is_leader(e->impl);
}

static inline void menv_leader(const struct menv *e, raft_id *id, const char **address)
{
    e->leader(e->impl, id, address);
}

static inline int64_t menv_now(const struct menv *e)
{
    return e->now(e->impl);
}

#endif
