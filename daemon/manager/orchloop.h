/* The leader's orchestration loop (orchloop.c): runs the orchestrators and
 * the scheduler against the store and proposes what they decide, one raft
 * entry per pass, one pass in flight at a time.
 *
 * Environment: a `const struct menv *` (loop, store, propose, is_leader,
 * now) and nothing else; the menv outlives the loop (menv.h).
 *
 * Ownership and lifecycle:
 *   - orchloop_new allocates the loop and two timers on env->loop; the
 *     caller owns it and ends it with orchloop_close, never with free.
 *   - It does nothing until orchloop_set_leader(o, true); while it leads,
 *     store events (orchloop_on_event) mark services dirty and a pass runs
 *     on a short timer. On orchloop_set_leader(o, false) it stops starting
 *     passes; a pass already proposed stays in flight.
 *   - In flight at any time: at most one proposal (the pass) and its two
 *     timers. orchloop_close stops everything new at once (events and
 *     leadership changes are ignored from then on), closes the timers, and
 *     frees the loop only once both timers are closed AND the proposal's
 *     callback has run (close after drain); then `cb` runs, once. The
 *     owner closes raft first, which fails every pending proposal, or
 *     simply waits for `cb`.
 *   - After orchloop_close returns no function of this module may be called
 *     with `o`; its own callbacks (timer, proposal) may still run until `cb`
 *     and do nothing but drain. */
#ifndef SWARM_MANAGER_ORCHLOOP_H
#define SWARM_MANAGER_ORCHLOOP_H

#include <stdbool.h>

#include "menv.h"
#include "store.h"

struct orchloop;

/* NULL when out of memory. `env->store` must be set. */
struct orchloop *orchloop_new(const struct menv *env);

/* Leadership changes: passes run only while leading; a new leader starts
 * with everything dirty, so it finishes interrupted work from the store. */
void orchloop_set_leader(struct orchloop *o, bool leader);

/* A committed store change (called on every manager; ignored unless
 * leading). NULL `o` is allowed and ignored. */
void orchloop_on_event(struct orchloop *o, const struct store_event *ev);

/* Close after drain (see the top). NULL `o`: `cb` runs at once. */
void orchloop_close(struct orchloop *o, void (*cb)(void *data), void *data);

#endif
