/* A hand-made module environment (menv.h) for unit tests of the manager's
 * modules: an in-memory store, a libuv loop, a fake clock, a leadership
 * flag the test sets, and a propose that only records what it was given,
 * so the test decides when and how each proposal comes back. */
#ifndef SWARM_TEST_FAKEMENV_H
#define SWARM_TEST_FAKEMENV_H

#include <stdbool.h>
#include <uv.h>

#include "menv.h"

#define FAKEMENV_MAX_PENDING 8

struct fakemenv {
    struct menv env;
    uv_loop_t loop;
    bool leader;
    int64_t now;
    int propose_rv;      /* when non-zero, propose fails with it */
    unsigned n_proposed; /* proposals accepted */
    Swarm__StoreCommand *last; /* a copy of the last proposal (owned) */
    struct {
        menv_propose_cb cb;
        void *data;
    } pending[FAKEMENV_MAX_PENDING];
    unsigned n_pending;
    unsigned n_closed;   /* calls of fakemenv_closed_cb */
};

/* 0, or -1 when the loop or store could not be made. */
int fakemenv_init(struct fakemenv *f);
/* Close the store, run the loop dry and close it: 0 when every handle was
 * closed (uv_loop_close). Frees `last`. */
int fakemenv_close(struct fakemenv *f);

/* Apply a one-action command at `index` (abort on failure); `obj` (a Node,
 * Service, Task or Cluster) is freed. */
void fakemenv_apply(struct fakemenv *f, uint64_t index, Swarm__StoreActionKind kind, void *obj);

/* Fire the oldest pending proposal's callback with `status` (0: committed
 * and accepted). 0, or -1 when nothing is pending. */
int fakemenv_complete(struct fakemenv *f, int status);

/* Run the loop one turn at a time until `*flag` or a bounded number of
 * turns; returns *flag. */
bool fakemenv_run_until(struct fakemenv *f, const bool *flag);
/* Until a proposal is pending (bounded). */
bool fakemenv_run_until_proposed(struct fakemenv *f);

/* A module's close callback: counts in f->n_closed. */
void fakemenv_closed_cb(void *data);

/* Builders: heap objects (abort when out of memory). */
Swarm__Node *fakemenv_node(const char *id, Swarm__NodeState state);
Swarm__Service *fakemenv_service(const char *id, const char *name, uint64_t replicas);
Swarm__Cluster *fakemenv_cluster(const char *id, int64_t heartbeat_period_ms);

#endif
