/* See mgrfix.h. */
#include "mgrfix.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "raftnode.h"

#define MFX_MONO_BASE_MS 1000000ull
#define MFX_SETTLE_MAX 10000

/* ------------------------------------------------------------ the clock */

/* The fixture whose time the monotonic clocks answer, NULL: the real ones. */
static struct mfx *clock_owner;

int clock_gettime(clockid_t clk, struct timespec *ts)
{
    if (clock_owner != NULL &&
        (clk == CLOCK_MONOTONIC || clk == CLOCK_MONOTONIC_COARSE ||
         clk == CLOCK_MONOTONIC_RAW || clk == CLOCK_BOOTTIME)) {
        uint64_t ms = MFX_MONO_BASE_MS + raft_fixture_time(&clock_owner->f);
        ts->tv_sec = (time_t)(ms / 1000);
        ts->tv_nsec = (long)(ms % 1000) * 1000000L;
        return 0;
    }
    return (int)syscall(SYS_clock_gettime, clk, ts);
}

uint64_t mfx_time(struct mfx *fx)
{
    return raft_fixture_time(&fx->f);
}

static struct raft *server_raft(struct mfx_server *s)
{
    return raft_fixture_get(&s->fx->f, s->index);
}

/* -------------------------------------------------------------- the FSM */

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    struct mfx_server *s = fsm->data;
    /* As rnode: raft bumps last_applied right after. */
    uint64_t index = server_raft(s)->last_applied + 1;
    *result = &s->last_result;
    return rnode_apply_entry(s->store, index, buf, &s->last_result);
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct mfx_server *s = fsm->data;
    return rnode_snapshot_store(s->store, bufs, n_bufs);
}

static int fsm_snapshot_finalize(struct raft_fsm *fsm, struct raft_buffer *bufs[],
                                 unsigned *n_bufs)
{
    return rnode_snapshot_finalize(bufs, n_bufs);
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    struct mfx_server *s = fsm->data;
    return rnode_restore_store(s->store, buf);
}

/* ------------------------------------------------------------ the menv */

struct proposal {
    struct raft_apply req;
    struct mfx_server *s;
    menv_propose_cb cb;
    void *data;
};

static void apply_cb(struct raft_apply *req, int status, void *result)
{
    struct proposal *p = req->data;
    struct mfx_server *s = p->s;
    menv_propose_cb cb = p->cb;
    void *data = p->data;
    struct store_result res;
    free(p);
    s->n_done++;
    if (status != 0) {
        /* rnode's mapping (raftnode.c apply_cb). */
        int err = (status == RAFT_NOTLEADER || status == RAFT_LEADERSHIPLOST ||
                   status == RAFT_SHUTDOWN || status == RAFT_CANCELED)
                      ? SWARM_ENOTLEADER
                      : SWARM_ERAFT;
        s->n_failed++;
        cb(err, NULL, data);
        return;
    }
    memcpy(&res, result, sizeof res);
    cb(0, &res, data);
}

static int64_t env_now(void *impl)
{
    struct mfx_server *s = impl;
    return MFX_WALL_BASE_MS + (int64_t)raft_fixture_time(&s->fx->f);
}

static void env_leader(void *impl, raft_id *id, const char **address)
{
    struct mfx_server *s = impl;
    *id = 0;
    *address = NULL;
    raft_leader(server_raft(s), id, address);
    /* As manager.c: only another manager is named. */
    if (*id == 0 || *address == NULL || *id == s->id) {
        *id = 0;
        *address = NULL;
    }
}

static bool env_is_leader(void *impl)
{
    struct mfx_server *s = impl;
    return !s->fx->closing && s->leader_ready;
}

static int env_propose(void *impl, Swarm__StoreCommand *cmd, menv_propose_cb cb, void *data)
{
    struct mfx_server *s = impl;
    struct raft_buffer buf;
    struct proposal *p;
    int rv;
    if (!env_is_leader(s)) {
        raft_id id = 0;
        const char *addr = NULL;
        env_leader(s, &id, &addr);
        return id == 0 ? SWARM_ENOLEADER : SWARM_ENOTLEADER;
    }
    p = malloc(sizeof *p);
    if (p == NULL) {
        return SWARM_ENOMEM;
    }
    cmd->timestamp = env_now(s);
    rv = rnode_encode_command(cmd, &buf);
    if (rv != 0) {
        free(p);
        return rv;
    }
    p->s = s;
    p->cb = cb;
    p->data = data;
    p->req.data = p;
    rv = raft_apply(server_raft(s), &p->req, &buf, 1, apply_cb);
    if (rv != 0) {
        raft_free(buf.base);
        free(p);
        return rv == RAFT_NOTLEADER ? SWARM_ENOTLEADER : SWARM_ERAFT;
    }
    s->n_proposed++;
    return 0;
}

/* ----------------------------------------------------------- membership */

/* Membership goes through rnode's own code (rnode_raft_add_voter and
 * rnode_raft_remove) on the fixture server's raft; the fixture only counts
 * each change and its callback. */
struct change {
    struct mfx_server *s;
    rnode_change_cb cb;
    void *data;
};

static void change_done_cb(int status, void *data)
{
    struct change *c = data;
    struct mfx_server *s = c->s;
    rnode_change_cb cb = c->cb;
    void *cb_data = c->data;
    free(c);
    s->n_changes_done++;
    cb(status, cb_data);
}

const struct raft_configuration *mfx_members(struct mfx_server *s)
{
    return &server_raft(s)->configuration;
}

static struct change *change_new(struct mfx_server *s, rnode_change_cb cb, void *data)
{
    struct change *c = malloc(sizeof *c);
    if (c != NULL) {
        c->s = s;
        c->cb = cb;
        c->data = data;
    }
    return c;
}

/* What a change returned: counted when it will call back. */
static int change_started(struct mfx_server *s, struct change *c, int rv)
{
    if (rv != 0) {
        free(c);
        return rv;
    }
    s->n_changes++;
    return 0;
}

int mfx_add_voter(struct mfx_server *s, raft_id id, const char *address, rnode_change_cb cb,
                  void *data)
{
    struct change *c;
    if (!env_is_leader(s)) {
        return SWARM_ENOTLEADER;
    }
    if ((c = change_new(s, cb, data)) == NULL) {
        return SWARM_ENOMEM;
    }
    return change_started(s, c, rnode_raft_add_voter(server_raft(s), &s->fx->closing, id,
                                                     address, change_done_cb, c));
}

int mfx_remove(struct mfx_server *s, raft_id id, rnode_change_cb cb, void *data)
{
    struct change *c;
    if (!env_is_leader(s)) {
        return SWARM_ENOTLEADER;
    }
    if ((c = change_new(s, cb, data)) == NULL) {
        return SWARM_ENOMEM;
    }
    return change_started(s, c, rnode_raft_remove(server_raft(s), &s->fx->closing, id,
                                                  change_done_cb, c));
}

/* ----------------------------------------------------------- leadership */

static void barrier_cb(struct raft_barrier *req, int status)
{
    struct mfx_server *s = req->data;
    free(req);
    if (s->fx->closing) {
        return;
    }
    s->barrier_pending = false;
    if (status != 0 || raft_state(server_raft(s)) != RAFT_LEADER) {
        return;
    }
    s->leader_ready = true;
    if (s->on_leader != NULL) {
        s->on_leader(s, true, s->on_leader_data);
    }
}

/* rnode's watch_cb: a barrier on becoming leader, the report after it, and
 * the report of a loss. */
static void watch(struct mfx *fx)
{
    for (unsigned i = 0; i < fx->n && !fx->closing; i++) {
        struct mfx_server *s = &fx->s[i];
        int state = raft_state(server_raft(s));
        if (state == RAFT_LEADER && !s->leader_ready && !s->barrier_pending) {
            struct raft_barrier *req = malloc(sizeof *req);
            if (req != NULL) {
                req->data = s;
                if (raft_barrier(server_raft(s), req, barrier_cb) == 0) {
                    s->barrier_pending = true;
                } else {
                    free(req);
                }
            }
        }
        if (state != RAFT_LEADER && s->leader_ready) {
            s->leader_ready = false;
            if (s->on_leader != NULL) {
                s->on_leader(s, false, s->on_leader_data);
            }
        }
    }
}

/* ------------------------------------------------------------- driving */

/* Run every loop callback due at the current fixture time. */
static void settle(struct mfx *fx)
{
    for (int k = 0; k < MFX_SETTLE_MAX; k++) {
        uv_run(&fx->loop, UV_RUN_NOWAIT);
        watch(fx);
        /* Nothing alive (backend_timeout then says 0 too), or nothing due. */
        if (!uv_loop_alive(&fx->loop) || uv_backend_timeout(&fx->loop) != 0) {
            return;
        }
    }
    fprintf(stderr, "mgrfix: the loop keeps having work due at t=%llu ms\n",
            (unsigned long long)mfx_time(fx));
}

void mfx_step(struct mfx *fx)
{
    raft_fixture_step(&fx->f);
    settle(fx);
}

void mfx_run(struct mfx *fx, unsigned ms)
{
    uint64_t end = mfx_time(fx) + ms;
    while (mfx_time(fx) < end) {
        mfx_step(fx);
    }
}

bool mfx_run_until(struct mfx *fx, bool (*cond)(struct mfx *fx, void *arg), void *arg,
                   unsigned max_ms)
{
    uint64_t end = mfx_time(fx) + max_ms;
    settle(fx);
    while (!cond(fx, arg)) {
        if (mfx_time(fx) >= end) {
            return false;
        }
        mfx_step(fx);
    }
    return true;
}

unsigned mfx_leader(struct mfx *fx)
{
    for (unsigned i = 0; i < fx->n; i++) {
        if (fx->s[i].leader_ready) {
            return i;
        }
    }
    return fx->n;
}

struct leader_arg {
    unsigned not;
};

static bool has_leader(struct mfx *fx, void *arg)
{
    struct leader_arg *a = arg;
    unsigned l = mfx_leader(fx);
    return l < fx->n && l != a->not;
}

bool mfx_run_until_leader(struct mfx *fx, unsigned not, unsigned max_ms)
{
    struct leader_arg a = {not};
    return mfx_run_until(fx, has_leader, &a, max_ms);
}

void mfx_partition(struct mfx *fx, unsigned i)
{
    for (unsigned j = 0; j < fx->n; j++) {
        if (j != i) {
            raft_fixture_saturate(&fx->f, i, j);
            raft_fixture_saturate(&fx->f, j, i);
        }
    }
}

void mfx_heal(struct mfx *fx, unsigned i)
{
    for (unsigned j = 0; j < fx->n; j++) {
        if (j != i) {
            raft_fixture_desaturate(&fx->f, i, j);
            raft_fixture_desaturate(&fx->f, j, i);
        }
    }
}

struct wait_arg {
    bool done;
    int status;
};

static void wait_cb(int status, const struct store_result *res, void *data)
{
    struct wait_arg *w = data;
    w->done = true;
    w->status = status != 0 ? status : res->status;
}

static bool wait_done(struct mfx *fx, void *arg)
{
    return ((struct wait_arg *)arg)->done;
}

int mfx_propose_wait(struct mfx *fx, unsigned i, Swarm__StoreCommand *cmd, unsigned max_ms)
{
    struct wait_arg w = {false, 0};
    int rv = menv_propose(&fx->s[i].env, cmd, wait_cb, &w);
    if (rv != 0) {
        return rv;
    }
    if (!mfx_run_until(fx, wait_done, &w, max_ms)) {
        return SWARM_ETIMEDOUT;
    }
    return w.status;
}

static bool converged(struct mfx *fx, void *arg)
{
    uint64_t want = 0;
    for (unsigned i = 0; i < fx->n; i++) {
        uint64_t idx = store_last_index(fx->s[i].store);
        want = idx > want ? idx : want;
    }
    for (unsigned i = 0; i < fx->n; i++) {
        if (store_last_index(fx->s[i].store) != want) {
            return false;
        }
    }
    return true;
}

bool mfx_run_until_converged(struct mfx *fx, unsigned max_ms)
{
    return mfx_run_until(fx, converged, NULL, max_ms);
}

/* ------------------------------------------------------------ lifecycle */

int mfx_init(struct mfx *fx, char *errmsg)
{
    struct raft_configuration conf;
    int rv;

    memset(fx, 0, sizeof *fx);
    fx->n = MFX_N;
    rv = raft_fixture_initialize(&fx->f);
    if (rv != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "raft_fixture_initialize: %s",
                      raft_strerror(rv));
        return SWARM_ERAFT;
    }
    clock_owner = fx;
    if (uv_loop_init(&fx->loop) != 0) {
        clock_owner = NULL;
        raft_fixture_close(&fx->f);
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "uv_loop_init failed");
        return SWARM_EIO;
    }
    for (unsigned i = 0; i < fx->n; i++) {
        struct mfx_server *s = &fx->s[i];
        s->fx = fx;
        s->index = i;
        s->id = i + 1;
        rv = store_open(":memory:", &s->store, errmsg);
        if (rv != 0) {
            goto fail;
        }
        s->fsm.version = 2;
        s->fsm.data = s;
        s->fsm.apply = fsm_apply;
        s->fsm.snapshot = fsm_snapshot;
        s->fsm.snapshot_finalize = fsm_snapshot_finalize;
        s->fsm.restore = fsm_restore;
        rv = raft_fixture_grow(&fx->f, &s->fsm);
        if (rv != 0) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "raft_fixture_grow: %s",
                          raft_strerror(rv));
            rv = SWARM_ERAFT;
            goto fail;
        }
        /* As rnode_new. */
        raft_set_pre_vote(raft_fixture_get(&fx->f, i), true);
        s->env = (struct menv){
            .loop = &fx->loop,
            .store = s->store,
            .propose = env_propose,
            .is_leader = env_is_leader,
            .leader = env_leader,
            .now = env_now,
            .impl = s,
        };
    }
    rv = raft_fixture_configuration(&fx->f, fx->n, &conf);
    if (rv == 0) {
        rv = raft_fixture_bootstrap(&fx->f, &conf);
        raft_configuration_close(&conf);
    }
    if (rv == 0) {
        rv = raft_fixture_start(&fx->f);
    }
    if (rv != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "raft fixture bootstrap/start: %s",
                      raft_strerror(rv));
        rv = SWARM_ERAFT;
        goto fail;
    }
    return 0;
fail:
    mfx_close(fx);
    return rv;
}

static void walk_report(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h)) {
        fprintf(stderr, "mgrfix: a loop handle (type %s) was left open\n",
                uv_handle_type_name(uv_handle_get_type(h)));
        uv_close(h, NULL);
    }
}

void mfx_close(struct mfx *fx)
{
    fx->closing = true;
    raft_fixture_close(&fx->f);
    /* Handles the modules closed finish closing; any left open is a bug of
     * the test (reported, then closed so the loop can go). */
    uv_run(&fx->loop, UV_RUN_NOWAIT);
    uv_walk(&fx->loop, walk_report, NULL);
    for (int k = 0; k < 100 && uv_loop_close(&fx->loop) == UV_EBUSY; k++) {
        uv_run(&fx->loop, UV_RUN_NOWAIT);
    }
    clock_owner = NULL;
    for (unsigned i = 0; i < fx->n; i++) {
        if (fx->s[i].store != NULL) {
            store_close(fx->s[i].store);
            fx->s[i].store = NULL;
        }
    }
}
