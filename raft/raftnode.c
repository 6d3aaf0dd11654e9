/* See raftnode.h.
 *
 * A proposal:  rnode_propose -> raft_apply -> (commit) -> fsm_apply on every
 *              manager -> apply_cb on the leader -> owner's cb.
 * Failures:    not leader at the time of the call (returned at once);
 *              leadership lost before commit (cb with SWARM_ENOTLEADER);
 *              store I/O failure in apply (fsm returns an error; raft stops
 *              this node: it is broken and must not diverge silently). */
#include "raftnode.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "smetrics.h"

#define RNODE_WATCH_MS 10

struct rnode {
    uv_loop_t *loop;
    struct raft raft;
    struct raft_io io;
    struct raft_fsm fsm;
    struct store *store;
    raft_id id;
    char address[64];
    char dir[4096];
    bool io_ready;
    bool raft_ready;
    bool store_checked; /* against the log, once per start */
    bool closing;
    /* The result of the entry being applied: raft hands it only to the
     * leader's apply callback, right after fsm_apply, so one slot is enough
     * and nothing leaks on followers. */
    struct store_result last_result;
    uv_timer_t watch;
    struct raft_uv_transport lonely;
    uint64_t leader_seen_at; /* uv_now() when a leader was last known */
    int last_state;
    bool leader_ready;   /* barrier committed in this term */
    bool barrier_pending;
    rnode_leadership_cb leadership_cb;
    void *leadership_data;
    void (*close_cb)(void *data);
    void *close_data;
};

/* A transport for a node without peers (tests, tools): it listens to
 * nothing and every connect fails. Connect callbacks run on a timer, never
 * inside connect, as raft requires. */
struct lonely_connect {
    uv_timer_t timer;
    struct raft_uv_connect *req;
    raft_uv_connect_cb cb;
};

struct rnode_proposal {
    struct raft_apply req;
    struct rnode *node;
    rnode_propose_cb cb;
    void *data;
    uint64_t started_ns; /* for swarm_raft_transaction_latency_seconds */
};

/* ---------------------------------------------------------------- entries */

int rnode_encode_command(const Swarm__StoreCommand *cmd, struct raft_buffer *buf)
{
    size_t len = swarm__store_command__get_packed_size(cmd);
    size_t total = 8 + len;
    uint8_t *p;

    total = (total + 7) & ~(size_t)7;
    p = raft_malloc(total);
    if (p == NULL) {
        return SWARM_ENOMEM;
    }
    memset(p, 0, total);
    uint32_t hdr[2] = {(uint32_t)len, RNODE_ENTRY_STORE_COMMAND};
    memcpy(p, &hdr[0], 4);
    memcpy(p + 4, &hdr[1], 4);
    swarm__store_command__pack(cmd, p + 8);
    buf->base = p;
    buf->len = total;
    return 0;
}

int rnode_decode_entry(const struct raft_buffer *buf, uint32_t *type,
                       const uint8_t **payload, size_t *len)
{
    uint32_t hdr[2];
    if (buf->len < 8) {
        return SWARM_ECORRUPT;
    }
    memcpy(&hdr[0], buf->base, 4);
    memcpy(&hdr[1], (const uint8_t *)buf->base + 4, 4);
    if ((size_t)hdr[0] > buf->len - 8) {
        return SWARM_ECORRUPT;
    }
    *type = hdr[1];
    *payload = (const uint8_t *)buf->base + 8;
    *len = hdr[0];
    return 0;
}

/* -------------------------------------------------------------------- FSM */

/* Once per start, before the first entry is applied: raft has loaded its
 * log (and restored its snapshot into the store, if it has one). raft_start
 * itself applies entries when this node is the only voter, so this runs from
 * the first FSM call, or right after raft_start if there was none. */
static int check_store_against_log(struct rnode *n, char *errmsg)
{
    uint64_t stored = store_last_index(n->store);
    raft_index last = raft_last_index(&n->raft);
    int rv;
    if (n->store_checked) {
        return 0;
    }
    n->store_checked = true;
    if (stored <= last) {
        if (stored < last) {
            log_info("raft", "store at index %llu, raft log up to %llu: replaying the log "
                     "from index %llu as it is known committed",
                     (unsigned long long)stored, (unsigned long long)last,
                     (unsigned long long)stored + 1);
        }
        return 0;
    }
    log_error("raft", "store is at index %llu but the raft log ends at %llu: the store does "
              "not belong to this raft state; emptying it and rebuilding it from the log",
              (unsigned long long)stored, (unsigned long long)last);
    rv = store_reset(n->store, errmsg);
    if (rv != 0) {
        errmsg_wrapf(errmsg, SWARM_ERRMSG_SIZE, "store ahead of the raft log");
    }
    return rv;
}

int rnode_apply_entry(struct store *store, uint64_t index, const struct raft_buffer *buf,
                      struct store_result *result)
{
    const uint8_t *payload;
    size_t len;
    uint32_t type;
    int rv;

    memset(result, 0, sizeof *result);
    result->action_index = -1;
    rv = rnode_decode_entry(buf, &type, &payload, &len);
    if (rv != 0 || type != RNODE_ENTRY_STORE_COMMAND) {
        /* Unknown entries come from a newer version or corruption. Applying
         * nothing keeps every replica equal; say it loudly. */
        log_error("raft", "entry %llu: undecodable (type %u), skipped",
                  (unsigned long long)index, rv == 0 ? type : 0);
        result->status = SWARM_ECORRUPT;
        return 0;
    }
    Swarm__StoreCommand *cmd = swarm__store_command__unpack(NULL, len, payload);
    if (cmd == NULL) {
        log_error("raft", "entry %llu: bad store command, skipped",
                  (unsigned long long)index);
        result->status = SWARM_ECORRUPT;
        return 0;
    }
    rv = store_apply(store, index, cmd, result);
    swarm__store_command__free_unpacked(cmd, NULL);
    if (rv != 0) {
        /* The store itself failed (disk, corruption): not a business error.
         * Returning non-zero stops this node instead of letting it diverge. */
        log_error("raft", "entry %llu: store failure: %s",
                  (unsigned long long)index, swarm_strerror(rv));
        return RAFT_IOERR;
    }
    return 0;
}

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    struct rnode *n = fsm->data;
    /* raft does not pass the index; it bumps last_applied right after. */
    raft_index index = n->raft.last_applied + 1;

    memset(&n->last_result, 0, sizeof n->last_result);
    n->last_result.action_index = -1;
    *result = &n->last_result;
    if (!n->store_checked) {
        char errmsg[SWARM_ERRMSG_SIZE] = "";
        if (check_store_against_log(n, errmsg) != 0) {
            log_error("raft", "%s", errmsg);
            return RAFT_IOERR;
        }
    }
    return rnode_apply_entry(n->store, index, buf, &n->last_result);
}

int rnode_snapshot_store(struct store *store, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    char errmsg[SWARM_ERRMSG_SIZE] = "";
    void *image;
    size_t len;
    int rv = store_snapshot(store, &image, &len, errmsg);
    if (rv != 0) {
        log_error("raft", "snapshot: %s", errmsg);
        return RAFT_IOERR;
    }
    *bufs = malloc(sizeof **bufs);
    if (*bufs == NULL) {
        free(image);
        return RAFT_NOMEM;
    }
    (*bufs)[0].base = image;
    (*bufs)[0].len = len;
    *n_bufs = 1;
    return 0;
}

int rnode_snapshot_finalize(struct raft_buffer *bufs[], unsigned *n_bufs)
{
    if (*bufs != NULL) {
        for (unsigned i = 0; i < *n_bufs; i++) {
            free((*bufs)[i].base);
        }
        free(*bufs);
    }
    *bufs = NULL;
    *n_bufs = 0;
    return 0;
}

int rnode_restore_store(struct store *store, struct raft_buffer *buf)
{
    char errmsg[SWARM_ERRMSG_SIZE] = "";
    int rv = store_restore(store, buf->base, buf->len, errmsg);
    if (rv != 0) {
        log_error("raft", "restore: %s", errmsg);
        return RAFT_CORRUPT;
    }
    raft_free(buf->base);
    log_info("raft", "store restored from snapshot (index %llu)",
             (unsigned long long)store_last_index(store));
    return 0;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct rnode *n = fsm->data;
    return rnode_snapshot_store(n->store, bufs, n_bufs);
}

static int fsm_snapshot_finalize(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    return rnode_snapshot_finalize(bufs, n_bufs);
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    struct rnode *n = fsm->data;
    int rv = rnode_restore_store(n->store, buf);
    if (rv == 0) {
        n->store_checked = true; /* the snapshot replaced whatever was there */
    }
    return rv;
}

/* ------------------------------------------------------------- leadership */

static void barrier_cb(struct raft_barrier *req, int status)
{
    struct rnode *n = req->data;
    free(req);
    if (n->closing) {
        return;
    }
    n->barrier_pending = false;
    if (status != 0 || raft_state(&n->raft) != RAFT_LEADER) {
        return; /* the watch timer will notice the lost leadership */
    }
    n->leader_ready = true;
    log_info("raft", "leader (term %llu), store at index %llu",
             (unsigned long long)n->raft.current_term,
             (unsigned long long)store_last_index(n->store));
    if (n->leadership_cb != NULL) {
        n->leadership_cb(true, n->leadership_data);
    }
}

static void start_barrier(struct rnode *n)
{
    struct raft_barrier *req = malloc(sizeof *req);
    if (req == NULL) {
        return;
    }
    req->data = n;
    if (raft_barrier(&n->raft, req, barrier_cb) != 0) {
        free(req);
        return;
    }
    n->barrier_pending = true;
}

/* canonical/raft 0.15 refuses every vote while a follower still names a
 * leader, however long that leader has been silent, so after a leader dies
 * the election waits for the *last* follower's randomized timer (about
 * 1.67 s with a 1000 ms timeout and two followers) instead of the first's
 * (1.33 s). Raft's section 4.2.3 only asks a server to refuse votes within
 * the minimum election timeout of hearing from a leader: forget a leader
 * silent for that long. Followers that hear from a live leader are not
 * touched, so pre-vote still keeps a healed partition from deposing it. */
static void forget_silent_leader(struct rnode *n, int state)
{
    struct raft *r = &n->raft;
    if (state != RAFT_FOLLOWER || r->follower_state.current_leader.id == 0) {
        return;
    }
    if (n->io.time(&n->io) - r->election_timer_start >= r->election_timeout) {
        r->follower_state.current_leader.id = 0;
    }
}

static void watch_cb(uv_timer_t *t)
{
    struct rnode *n = t->data;
    int state;
    if (n->closing) {
        return;
    }
    state = raft_state(&n->raft);
    forget_silent_leader(n, state);
    {
        raft_id id = 0;
        const char *addr = NULL;
        raft_leader(&n->raft, &id, &addr);
        if (id != 0) {
            n->leader_seen_at = uv_now(n->loop);
        }
    }
    if (state == RAFT_LEADER && !n->leader_ready && !n->barrier_pending) {
        start_barrier(n);
    }
    if (state != RAFT_LEADER && n->leader_ready) {
        n->leader_ready = false;
        log_info("raft", "no longer leader (now %s)", rnode_state_name(n));
        if (n->leadership_cb != NULL) {
            n->leadership_cb(false, n->leadership_data);
        }
    }
    n->last_state = state;
}

/* ------------------------------------------------- transport without peers */

static int lonely_init(struct raft_uv_transport *t, raft_id id, const char *address)
{
    return 0;
}

static int lonely_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
    return 0;
}

static void lonely_timer_closed_cb(uv_handle_t *h)
{
    free(h->data);
}

static void lonely_fire_cb(uv_timer_t *timer)
{
    struct lonely_connect *c = timer->data;
    c->cb(c->req, NULL, RAFT_NOCONNECTION);
    uv_close((uv_handle_t *)&c->timer, lonely_timer_closed_cb);
}

static int lonely_connect(struct raft_uv_transport *t, struct raft_uv_connect *req, raft_id id,
                          const char *address, raft_uv_connect_cb cb)
{
    struct lonely_connect *c = malloc(sizeof *c);
    if (c == NULL) {
        return RAFT_NOMEM;
    }
    c->req = req;
    c->cb = cb;
    uv_timer_init(t->data, &c->timer);
    c->timer.data = c;
    uv_timer_start(&c->timer, lonely_fire_cb, 0, 0);
    return 0;
}

static void lonely_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
    cb(t);
}

static void lonely_transport_init(struct raft_uv_transport *t, uv_loop_t *loop)
{
    memset(t, 0, sizeof *t);
    t->data = loop;
    t->init = lonely_init;
    t->listen = lonely_listen;
    t->connect = lonely_connect;
    t->close = lonely_close;
}

/* ------------------------------------------------------------- lifecycle */

int rnode_new(uv_loop_t *loop, struct store *store, const struct rnode_config *cfg,
              struct rnode **out, char *errmsg)
{
    struct rnode *n = calloc(1, sizeof *n);
    int rv;
    if (n == NULL) {
        return SWARM_ENOMEM;
    }
    n->loop = loop;
    n->store = store;
    n->id = cfg->id;
    snprintf(n->address, sizeof n->address, "%s", cfg->address);
    snprintf(n->dir, sizeof n->dir, "%s", cfg->dir);

    lonely_transport_init(&n->lonely, loop);
    rv = raft_uv_init(&n->io, loop, n->dir,
                      cfg->transport != NULL ? cfg->transport : &n->lonely);
    if (rv != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "raft storage in %s: %s", n->dir,
                      n->io.errmsg);
        free(n);
        return SWARM_ERAFT;
    }
    n->io_ready = true;
    n->fsm.version = 2;
    n->fsm.data = n;
    n->fsm.apply = fsm_apply;
    n->fsm.snapshot = fsm_snapshot;
    n->fsm.snapshot_finalize = fsm_snapshot_finalize;
    n->fsm.restore = fsm_restore;

    rv = raft_init(&n->raft, &n->io, &n->fsm, n->id, n->address);
    if (rv != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "raft: %s", raft_errmsg(&n->raft));
        raft_uv_close(&n->io);
        free(n);
        return SWARM_ERAFT;
    }
    n->raft_ready = true;
    n->raft.data = n;
    raft_set_election_timeout(&n->raft, cfg->election_timeout_ms ? cfg->election_timeout_ms : 1000);
    raft_set_heartbeat_timeout(&n->raft, cfg->heartbeat_timeout_ms ? cfg->heartbeat_timeout_ms : 100);
    raft_set_snapshot_threshold(&n->raft, cfg->snapshot_threshold ? cfg->snapshot_threshold : 10000);
    raft_set_snapshot_trailing(&n->raft, cfg->snapshot_trailing ? cfg->snapshot_trailing : 5000);
    raft_set_pre_vote(&n->raft, true);

    uv_timer_init(loop, &n->watch);
    n->watch.data = n;
    *out = n;
    return 0;
}

static int single_voter_configuration(struct rnode *n, struct raft_configuration *conf,
                                      char *errmsg)
{
    raft_configuration_init(conf);
    if (raft_configuration_add(conf, n->id, n->address, RAFT_VOTER) != 0) {
        raft_configuration_close(conf);
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "raft configuration: out of memory");
        return SWARM_ENOMEM;
    }
    return 0;
}

int rnode_bootstrap(struct rnode *n, char *errmsg)
{
    struct raft_configuration conf;
    int rv = single_voter_configuration(n, &conf, errmsg);
    if (rv != 0) {
        return rv;
    }
    rv = raft_bootstrap(&n->raft, &conf);
    raft_configuration_close(&conf);
    if (rv == RAFT_CANTBOOTSTRAP) {
        return 0;
    }
    if (rv != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "raft bootstrap: %s", raft_errmsg(&n->raft));
        return SWARM_ERAFT;
    }
    return 0;
}

int rnode_force_new_cluster(struct rnode *n, char *errmsg)
{
    struct raft_configuration conf;
    int rv = single_voter_configuration(n, &conf, errmsg);
    if (rv != 0) {
        return rv;
    }
    rv = raft_recover(&n->raft, &conf);
    raft_configuration_close(&conf);
    if (rv != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "raft recover: %s", raft_errmsg(&n->raft));
        return SWARM_ERAFT;
    }
    return 0;
}

int rnode_start(struct rnode *n, char *errmsg)
{
    int rv = raft_start(&n->raft);
    if (rv != 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "raft start: %s", raft_errmsg(&n->raft));
        return SWARM_ERAFT;
    }
    rv = check_store_against_log(n, errmsg);
    if (rv != 0) {
        return rv;
    }
    n->leader_seen_at = uv_now(n->loop);
    uv_timer_start(&n->watch, watch_cb, 0, RNODE_WATCH_MS);
    return 0;
}

void rnode_scan_unapplied(struct rnode *n, rnode_unapplied_cb cb, void *data)
{
    const struct raft_log *log = &n->raft.log;
    size_t count = log->back >= log->front ? log->back - log->front
                                           : log->size - log->front + log->back;
    for (size_t k = 0; k < count; k++) {
        const struct raft_entry *e = &log->entries[(log->front + k) % log->size];
        uint64_t index = log->offset + k + 1;
        const uint8_t *payload;
        size_t len;
        uint32_t type;
        if (index <= store_last_index(n->store) || e->type != RAFT_COMMAND ||
            rnode_decode_entry(&e->buf, &type, &payload, &len) != 0 ||
            type != RNODE_ENTRY_STORE_COMMAND) {
            continue;
        }
        Swarm__StoreCommand *cmd = swarm__store_command__unpack(NULL, len, payload);
        if (cmd != NULL) {
            cb(index, cmd, data);
            swarm__store_command__free_unpacked(cmd, NULL);
        }
    }
}

void rnode_set_leadership_cb(struct rnode *n, rnode_leadership_cb cb, void *data)
{
    n->leadership_cb = cb;
    n->leadership_data = data;
}

/* ---------------------------------------------------------------- propose */

static void apply_cb(struct raft_apply *req, int status, void *result)
{
    struct rnode_proposal *p = req->data;
    struct store_result res;
    rnode_propose_cb cb = p->cb;
    void *data = p->data;
    smetrics_proposal_done(status, p->started_ns);
    free(p);

    if (status != 0) {
        int err = (status == RAFT_NOTLEADER || status == RAFT_LEADERSHIPLOST ||
                   status == RAFT_SHUTDOWN || status == RAFT_CANCELED)
                      ? SWARM_ENOTLEADER
                      : SWARM_ERAFT;
        cb(err, NULL, data);
        return;
    }
    memcpy(&res, result, sizeof res);
    cb(0, &res, data);
}

int rnode_propose(struct rnode *n, const Swarm__StoreCommand *cmd,
                  rnode_propose_cb cb, void *data)
{
    struct rnode_proposal *p;
    struct raft_buffer buf;
    int rv;

    if (n->closing || !n->leader_ready) {
        return SWARM_ENOTLEADER;
    }
    p = malloc(sizeof *p);
    if (p == NULL) {
        return SWARM_ENOMEM;
    }
    rv = rnode_encode_command(cmd, &buf);
    if (rv != 0) {
        free(p);
        return rv;
    }
    p->node = n;
    p->cb = cb;
    p->data = data;
    p->req.data = p;
    p->started_ns = smetrics_now_ns();
    rv = raft_apply(&n->raft, &p->req, &buf, 1, apply_cb);
    if (rv != 0) {
        raft_free(buf.base);
        free(p);
        return rv == RAFT_NOTLEADER ? SWARM_ENOTLEADER : SWARM_ERAFT;
    }
    return 0;
}

/* ------------------------------------------------------------- membership */

struct rnode_change {
    struct raft_change req;
    struct raft *raft;
    const bool *closing;
    raft_id id;
    rnode_change_cb cb;
    void *data;
};

static int change_error(int rv)
{
    switch (rv) {
        case RAFT_NOTLEADER:
        case RAFT_LEADERSHIPLOST:
        case RAFT_SHUTDOWN:
        case RAFT_CANCELED:
            return SWARM_ENOTLEADER;
        case RAFT_CANTCHANGE:
            return SWARM_ESTATE;
        case RAFT_DUPLICATEID:
        case RAFT_DUPLICATEADDRESS:
            return SWARM_EEXIST;
        case RAFT_NOTFOUND:
            return SWARM_ENOTFOUND;
        default:
            return SWARM_ERAFT;
    }
}

static void change_done(struct rnode_change *c, int status)
{
    rnode_change_cb cb = c->cb;
    void *data = c->data;
    free(c);
    cb(status, data);
}

static void change_cb(struct raft_change *req, int status)
{
    struct rnode_change *c = req->data;
    change_done(c, status == 0 ? 0 : change_error(status));
}

static void add_cb(struct raft_change *req, int status)
{
    struct rnode_change *c = req->data;
    int rv;
    if (status != 0 || *c->closing) {
        change_done(c, status != 0 ? change_error(status) : SWARM_ENOTLEADER);
        return;
    }
    rv = raft_assign(c->raft, &c->req, c->id, RAFT_VOTER, change_cb);
    if (rv != 0) {
        change_done(c, change_error(rv));
    }
}

static struct rnode_change *change_new(struct raft *r, const bool *closing, raft_id id,
                                       rnode_change_cb cb, void *data)
{
    struct rnode_change *c = malloc(sizeof *c);
    if (c == NULL) {
        return NULL;
    }
    c->req.data = c;
    c->raft = r;
    c->closing = closing;
    c->id = id;
    c->cb = cb;
    c->data = data;
    return c;
}

int rnode_raft_add_voter(struct raft *r, const bool *closing, raft_id id, const char *address,
                         rnode_change_cb cb, void *data)
{
    struct rnode_change *c;
    const struct raft_server *present = NULL;
    int rv;
    for (unsigned i = 0; i < r->configuration.n; i++) {
        if (r->configuration.servers[i].id == id) {
            present = &r->configuration.servers[i];
        }
    }
    if (present != NULL && (present->role == RAFT_VOTER ||
                            strcmp(present->address, address) != 0)) {
        return SWARM_EEXIST;
    }
    c = change_new(r, closing, id, cb, data);
    if (c == NULL) {
        return SWARM_ENOMEM;
    }
    if (present != NULL) {
        rv = raft_assign(r, &c->req, id, RAFT_VOTER, change_cb);
    } else {
        rv = raft_add(r, &c->req, id, address, add_cb);
    }
    if (rv != 0) {
        free(c);
        return change_error(rv);
    }
    return 0;
}

int rnode_raft_remove(struct raft *r, const bool *closing, raft_id id, rnode_change_cb cb,
                      void *data)
{
    struct rnode_change *c = change_new(r, closing, id, cb, data);
    int rv;
    if (c == NULL) {
        return SWARM_ENOMEM;
    }
    rv = raft_remove(r, &c->req, id, change_cb);
    if (rv != 0) {
        free(c);
        return change_error(rv);
    }
    return 0;
}

int rnode_add_voter(struct rnode *n, raft_id id, const char *address,
                    rnode_change_cb cb, void *data)
{
    if (n->closing || !n->leader_ready) {
        return SWARM_ENOTLEADER;
    }
    return rnode_raft_add_voter(&n->raft, &n->closing, id, address, cb, data);
}

int rnode_remove(struct rnode *n, raft_id id, rnode_change_cb cb, void *data)
{
    if (n->closing || !n->leader_ready) {
        return SWARM_ENOTLEADER;
    }
    return rnode_raft_remove(&n->raft, &n->closing, id, cb, data);
}

/* ---------------------------------------------------------------- queries */

bool rnode_is_leader(const struct rnode *n)
{
    return n->leader_ready;
}

void rnode_leader(struct rnode *n, raft_id *id, const char **address)
{
    raft_leader(&n->raft, id, address);
}

const char *rnode_state_name(struct rnode *n)
{
    switch (raft_state(&n->raft)) {
        case RAFT_LEADER:
            return "leader";
        case RAFT_FOLLOWER:
            return "follower";
        case RAFT_CANDIDATE:
            return "candidate";
        default:
            return "unavailable";
    }
}

uint64_t rnode_leaderless_ms(const struct rnode *n)
{
    raft_id id = 0;
    const char *addr = NULL;
    raft_leader((struct raft *)&n->raft, &id, &addr);
    return id != 0 ? 0 : uv_now(n->loop) - n->leader_seen_at;
}

raft_id rnode_id(const struct rnode *n)
{
    return n->id;
}

const struct raft_configuration *rnode_configuration(const struct rnode *n)
{
    return &n->raft.configuration;
}

void rnode_stats(struct rnode *n, struct rnode_stats *out)
{
    out->term = n->raft.current_term;
    out->commit_index = n->raft.commit_index;
    out->applied_index = raft_last_applied(&n->raft);
    out->leader = rnode_is_leader(n);
}

uint64_t rnode_last_index(const struct rnode *n)
{
    return raft_last_index((struct raft *)&n->raft);
}

struct raft *rnode_raft_testonly(struct rnode *n)
{
    return &n->raft;
}

/* ------------------------------------------------------------------ close */

static void rnode_raft_close_cb(struct raft *r)
{
    struct rnode *n = r->data;
    void (*done)(void *) = n->close_cb;
    void *data = n->close_data;
    raft_uv_close(&n->io);
    free(n);
    if (done != NULL) {
        done(data);
    }
}

static void watch_close_cb(uv_handle_t *h)
{
    struct rnode *n = h->data;
    if (n->raft_ready) {
        raft_close(&n->raft, rnode_raft_close_cb);
        return;
    }
    raft_uv_close(&n->io);
    void (*done)(void *) = n->close_cb;
    void *data = n->close_data;
    free(n);
    if (done != NULL) {
        done(data);
    }
}

void rnode_close(struct rnode *n, void (*done)(void *data), void *data)
{
    n->closing = true;
    n->close_cb = done;
    n->close_data = data;
    uv_close((uv_handle_t *)&n->watch, watch_close_cb);
}
