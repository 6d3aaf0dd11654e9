/* The store's tables, its cached statements, and the indexed columns drawn
 * from each object.
 *
 * Each object table holds the full protobuf encoding in `data` and copies of
 * the fields that are queried or sorted on. `created_at` is a column so that
 * an UPDATE keeps it without decoding the stored object. Tables keep their
 * rowid: among rows with the same created_at it is the order of insertion,
 * identical on every replica (same operations in the same order, and a
 * snapshot carries the pages as they are; the store never VACUUMs). */
#include <stdio.h>
#include <string.h>

#include "store_int.h"

static const char schema_sql[] =
    "CREATE TABLE meta ("
    "  key TEXT PRIMARY KEY NOT NULL,"
    "  value INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE TABLE nodes ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  data BLOB NOT NULL,"
    "  name TEXT NOT NULL,"     /* spec.annotations.name, else hostname */
    "  hostname TEXT NOT NULL," /* description.hostname */
    "  role INTEGER NOT NULL,"
    "  state INTEGER NOT NULL," /* status.state */
    "  availability INTEGER NOT NULL"
    ");"
    "CREATE INDEX nodes_hostname ON nodes (hostname, id);"
    "CREATE INDEX nodes_name ON nodes (name);"
    "CREATE INDEX nodes_role ON nodes (role);"
    "CREATE INDEX nodes_state ON nodes (state);"
    "CREATE INDEX nodes_availability ON nodes (availability);"
    "CREATE TABLE services ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  data BLOB NOT NULL,"
    "  name TEXT UNIQUE" /* NULL when empty: unnamed services do not collide */
    ");"
    "CREATE TABLE tasks ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  data BLOB NOT NULL,"
    "  service_id TEXT NOT NULL,"
    "  node_id TEXT NOT NULL,"
    "  slot INTEGER NOT NULL,"
    "  desired_state INTEGER NOT NULL,"
    "  state INTEGER NOT NULL" /* status.state */
    ");"
    "CREATE INDEX tasks_service ON tasks (service_id, slot, node_id);"
    "CREATE INDEX tasks_node ON tasks (node_id);"
    /* Counts by state (REPLICAS in `service ls`) without decoding tasks. */
    "CREATE INDEX tasks_service_state ON tasks (service_id, desired_state, state);"
    "CREATE INDEX tasks_desired_state ON tasks (desired_state);"
    "CREATE INDEX tasks_state ON tasks (state);"
    "CREATE TABLE clusters ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  data BLOB NOT NULL,"
    "  name TEXT UNIQUE"
    ");"
    "CREATE TABLE networks ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  data BLOB NOT NULL,"
    "  name TEXT UNIQUE"
    ");"
    /* The event history (store/events.c): seq orders the rows for pruning,
     * (idx, pos) is the cursor every manager shares. */
    "CREATE TABLE events ("
    "  seq INTEGER PRIMARY KEY,"
    "  idx INTEGER NOT NULL,"
    "  pos INTEGER NOT NULL,"
    "  time_ms INTEGER NOT NULL,"
    "  data BLOB NOT NULL"
    ");"
    "CREATE UNIQUE INDEX events_cursor ON events (idx, pos);";

#define KIND_SQL(table, cols, params, sets, order)                                     \
    {                                                                                  \
        [STORE_KS_INSERT] = "INSERT INTO " table " (id, version, created_at, data, " cols \
                            ") VALUES (?1, ?2, ?3, ?4, " params ")",                   \
        [STORE_KS_UPDATE] = "UPDATE " table " SET version = ?2, created_at = ?3, "     \
                            "data = ?4, " sets " WHERE id = ?1",                       \
        [STORE_KS_DELETE] = "DELETE FROM " table " WHERE id = ?1",                     \
        [STORE_KS_LOOKUP] = "SELECT version, created_at, data FROM " table " WHERE id = ?1", \
        [STORE_KS_GET] = "SELECT data FROM " table " WHERE id = ?1",                   \
        [STORE_KS_LIST] = "SELECT data FROM " table " ORDER BY " order,                \
        /* The range uses the id index; the substr() keeps it exact for IDs    \
         * with characters above '~', which real IDs never have. */           \
        [STORE_KS_PREFIX] = "SELECT data, id FROM " table " WHERE id >= ?1 AND id < ?1 || '~'" \
                            " AND substr(id, 1, length(?1)) = ?1 ORDER BY id",         \
    }

static const char *const kind_sql[STORE_KIND_MAX + 1][STORE_KS__COUNT] = {
    [STORE_KIND_NODE] = KIND_SQL("nodes", "name, hostname, role, state, availability",
                                 "?5, ?6, ?7, ?8, ?9",
                                 "name = ?5, hostname = ?6, role = ?7, state = ?8, availability = ?9",
                                 "hostname, id"),
    [STORE_KIND_SERVICE] = KIND_SQL("services", "name", "?5", "name = ?5", "name, id"),
    [STORE_KIND_TASK] = KIND_SQL("tasks", "service_id, node_id, slot, desired_state, state",
                                 "?5, ?6, ?7, ?8, ?9",
                                 "service_id = ?5, node_id = ?6, slot = ?7, desired_state = ?8, state = ?9",
                                 "service_id, slot, node_id, created_at, rowid"),
    [STORE_KIND_CLUSTER] = KIND_SQL("clusters", "name", "?5", "name = ?5", "created_at, rowid"),
    [STORE_KIND_NETWORK] = KIND_SQL("networks", "name", "?5", "name = ?5", "name, id"),
};

static const char *const store_sql[STORE_ST__COUNT] = {
    [STORE_ST_BEGIN] = "BEGIN IMMEDIATE",
    [STORE_ST_COMMIT] = "COMMIT",
    [STORE_ST_ROLLBACK] = "ROLLBACK",
    [STORE_ST_SET_INDEX] = "UPDATE meta SET value = ?1 WHERE key = 'last_index'",
    [STORE_ST_GET_INDEX] = "SELECT value FROM meta WHERE key = 'last_index'",
    [STORE_ST_NODE_BY_NAME] = "SELECT data FROM nodes WHERE name = ?1 OR hostname = ?1 ORDER BY hostname, id",
    [STORE_ST_NODE_COUNT] = "SELECT count(*) FROM nodes",
    [STORE_ST_SERVICE_BY_NAME] = "SELECT data FROM services WHERE name = ?1",
    [STORE_ST_TASK_BY_SERVICE] = "SELECT data FROM tasks WHERE service_id = ?1 "
                                 "ORDER BY slot, node_id, created_at, rowid",
    [STORE_ST_TASK_BY_NODE] = "SELECT data FROM tasks WHERE node_id = ?1 "
                              "ORDER BY service_id, slot, created_at, rowid",
    [STORE_ST_TASK_COUNT_BY_STATE] = "SELECT count(*) FROM tasks WHERE service_id = ?1 AND "
                                     "desired_state = ?2 AND (?3 < 0 OR state = ?3)",
    [STORE_ST_TASK_COUNT_FROM_SLOT] = "SELECT count(*) FROM tasks WHERE service_id = ?1 AND slot >= ?2",
    [STORE_ST_CLUSTER_DEFAULT] = "SELECT data FROM clusters ORDER BY created_at, rowid LIMIT 1",
    [STORE_ST_NODE_TALLY] = "SELECT state, availability, count(*) FROM nodes "
                            "GROUP BY state, availability",
    [STORE_ST_TASK_TALLY] = "SELECT state, count(*) FROM tasks GROUP BY state",
    [STORE_ST_SERVICE_COUNT] = "SELECT count(*) FROM services",
    [STORE_ST_EVENT_INSERT] = "INSERT INTO events (idx, pos, time_ms, data) VALUES (?1, ?2, ?3, ?4)",
    [STORE_ST_EVENT_PRUNE] = "DELETE FROM events WHERE seq <= ?1",
    [STORE_ST_EVENT_LIST] = "SELECT data FROM events WHERE (idx, pos) > (?1, ?2) AND time_ms >= ?3 "
                            "ORDER BY idx, pos LIMIT ?4",
    [STORE_ST_NETWORK_BY_NAME] = "SELECT data FROM networks WHERE name = ?1",
    /* 64: TASK_STATE_PENDING, 512: TASK_STATE_RUNNING (objects.proto). */
    [STORE_ST_TASK_UNPLACED] = "SELECT data FROM tasks WHERE state <= 64 AND desired_state <= 512 "
                               "ORDER BY service_id, slot, node_id, created_at, rowid",
};

static const struct store_kind_info kinds[STORE_KIND_MAX + 1] = {
    [STORE_KIND_NODE] = {STORE_KIND_NODE, "node", "nodes", &swarm__node__descriptor,
                         offsetof(Swarm__Node, id), offsetof(Swarm__Node, meta)},
    [STORE_KIND_SERVICE] = {STORE_KIND_SERVICE, "service", "services", &swarm__service__descriptor,
                            offsetof(Swarm__Service, id), offsetof(Swarm__Service, meta)},
    [STORE_KIND_TASK] = {STORE_KIND_TASK, "task", "tasks", &swarm__task__descriptor,
                         offsetof(Swarm__Task, id), offsetof(Swarm__Task, meta)},
    [STORE_KIND_CLUSTER] = {STORE_KIND_CLUSTER, "cluster", "clusters", &swarm__cluster__descriptor,
                            offsetof(Swarm__Cluster, id), offsetof(Swarm__Cluster, meta)},
    [STORE_KIND_NETWORK] = {STORE_KIND_NETWORK, "network", "networks", &swarm__network__descriptor,
                            offsetof(Swarm__Network, id), offsetof(Swarm__Network, meta)},
};

const struct store_kind_info *store_kind_info(enum store_kind kind)
{
    if (kind < STORE_KIND_NODE || kind > STORE_KIND_MAX) {
        return NULL;
    }
    return &kinds[kind];
}

/* Run a single-row query returning one integer. */
static int query_int(sqlite3 *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        return rc;
    }
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_NOTFOUND;
    }
    sqlite3_finalize(st);
    return rc;
}

int store_schema_init(sqlite3 *db, uint64_t *last_index, char *errmsg)
{
    char meta_sql[160];
    char *err = NULL;
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &err);
    if (rc != SQLITE_OK) {
        goto err;
    }
    rc = sqlite3_exec(db, schema_sql, NULL, NULL, &err);
    if (rc != SQLITE_OK) {
        goto err_after_begin;
    }
    snprintf(meta_sql, sizeof meta_sql,
             "INSERT INTO meta (key, value) VALUES ('schema_version', %d), ('last_index', 0)",
             STORE_SCHEMA_VERSION);
    rc = sqlite3_exec(db, meta_sql, NULL, NULL, &err);
    if (rc != SQLITE_OK) {
        goto err_after_begin;
    }
    rc = sqlite3_exec(db, "COMMIT", NULL, NULL, &err);
    if (rc != SQLITE_OK) {
        goto err_after_begin;
    }
    *last_index = 0;
    return 0;

err_after_begin:
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
err:
    errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "create schema: %s", err != NULL ? err : sqlite3_errstr(rc));
    sqlite3_free(err);
    return store_sqlite_err(rc);
}

int store_schema_check(sqlite3 *db, uint64_t *last_index, char *errmsg)
{
    int64_t n, version, index;
    int rc = query_int(db,
                       "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN "
                       "('meta', 'nodes', 'services', 'tasks', 'clusters', 'networks')",
                       &n);
    if (rc != SQLITE_OK) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "read schema: %s", sqlite3_errmsg(db));
        return rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT ? SWARM_ECORRUPT : store_sqlite_err(rc);
    }
    if (n != 6) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "not a swarm store: missing tables");
        return SWARM_ECORRUPT;
    }
    if (query_int(db, "SELECT value FROM meta WHERE key = 'schema_version'", &version) != SQLITE_OK ||
        query_int(db, "SELECT value FROM meta WHERE key = 'last_index'", &index) != SQLITE_OK) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "not a swarm store: no schema version or last index");
        return SWARM_ECORRUPT;
    }
    if (version != STORE_SCHEMA_VERSION) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "store schema version %lld, this swarmd uses %d",
                      (long long)version, STORE_SCHEMA_VERSION);
        return SWARM_ECORRUPT;
    }
    if (index < 0) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "store has a negative last index %lld", (long long)index);
        return SWARM_ECORRUPT;
    }
    *last_index = (uint64_t)index;
    return 0;
}

static int stmt_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **out, char *errmsg)
{
    /* PERSISTENT: these live as long as the store. */
    int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL);
    if (rc != SQLITE_OK) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "prepare \"%s\": %s", sql, sqlite3_errmsg(db));
        return store_sqlite_err(rc);
    }
    return 0;
}

int store_stmts_prepare(struct store *s, char *errmsg)
{
    int rv;
    for (int k = STORE_KIND_NODE; k <= STORE_KIND_MAX; k++) {
        for (int i = 0; i < STORE_KS__COUNT; i++) {
            rv = stmt_prepare(s->db, kind_sql[k][i], &s->kstmt[k][i], errmsg);
            if (rv != 0) {
                goto err;
            }
        }
    }
    for (int i = 0; i < STORE_ST__COUNT; i++) {
        rv = stmt_prepare(s->db, store_sql[i], &s->stmt[i], errmsg);
        if (rv != 0) {
            goto err;
        }
    }
    return 0;

err:
    store_stmts_finalize(s);
    return rv;
}

void store_stmts_finalize(struct store *s)
{
    for (int k = STORE_KIND_NODE; k <= STORE_KIND_MAX; k++) {
        for (int i = 0; i < STORE_KS__COUNT; i++) {
            sqlite3_finalize(s->kstmt[k][i]);
            s->kstmt[k][i] = NULL;
        }
    }
    for (int i = 0; i < STORE_ST__COUNT; i++) {
        sqlite3_finalize(s->stmt[i]);
        s->stmt[i] = NULL;
    }
}

/* protobuf-c leaves unset strings as "" but hand-built messages may hold NULL. */
static const char *str_or_empty(const char *str)
{
    return str != NULL ? str : "";
}

static const char *node_name(const Swarm__Node *n)
{
    const char *name = NULL;
    if (n->spec != NULL && n->spec->annotations != NULL) {
        name = n->spec->annotations->name;
    }
    if (name == NULL || name[0] == '\0') {
        name = n->description != NULL ? n->description->hostname : NULL;
    }
    return str_or_empty(name);
}

static int bind_node(sqlite3_stmt *st, const Swarm__Node *n)
{
    int rc = sqlite3_bind_text(st, 5, node_name(n), -1, SQLITE_STATIC);
    rc = rc ? rc : sqlite3_bind_text(st, 6, str_or_empty(n->description ? n->description->hostname : NULL),
                                     -1, SQLITE_STATIC);
    rc = rc ? rc : sqlite3_bind_int(st, 7, (int)n->role);
    rc = rc ? rc : sqlite3_bind_int(st, 8, n->status != NULL ? (int)n->status->state : 0);
    rc = rc ? rc : sqlite3_bind_int(st, 9, n->spec != NULL ? (int)n->spec->availability : 0);
    return rc;
}

/* An empty name is NULL in the column, so that the UNIQUE constraint only
 * applies to names actually given. */
static int bind_name(sqlite3_stmt *st, int col, const Swarm__Annotations *a)
{
    if (a == NULL || a->name == NULL || a->name[0] == '\0') {
        return sqlite3_bind_null(st, col);
    }
    return sqlite3_bind_text(st, col, a->name, -1, SQLITE_STATIC);
}

static int bind_task(sqlite3_stmt *st, const Swarm__Task *t)
{
    int rc = sqlite3_bind_text(st, 5, str_or_empty(t->service_id), -1, SQLITE_STATIC);
    rc = rc ? rc : sqlite3_bind_text(st, 6, str_or_empty(t->node_id), -1, SQLITE_STATIC);
    rc = rc ? rc : sqlite3_bind_int64(st, 7, (sqlite3_int64)t->slot);
    rc = rc ? rc : sqlite3_bind_int(st, 8, (int)t->desired_state);
    rc = rc ? rc : sqlite3_bind_int(st, 9, t->status != NULL ? (int)t->status->state : 0);
    return rc;
}

int store_row_bind(sqlite3_stmt *st, const struct store_kind_info *ki, const ProtobufCMessage *obj,
                   const uint8_t *data, size_t len)
{
    const Swarm__Meta *meta = store_obj_meta(ki, obj);
    int rc = sqlite3_bind_text(st, 1, store_obj_id(ki, obj), -1, SQLITE_STATIC);
    rc = rc ? rc : sqlite3_bind_int64(st, 2, (sqlite3_int64)meta->version);
    rc = rc ? rc : sqlite3_bind_int64(st, 3, meta->created_at);
    rc = rc ? rc : sqlite3_bind_blob64(st, 4, data, len, SQLITE_STATIC);
    if (rc != SQLITE_OK) {
        return rc;
    }
    switch (ki->kind) {
        case STORE_KIND_NODE:
            return bind_node(st, (const Swarm__Node *)obj);
        case STORE_KIND_SERVICE: {
            const Swarm__Service *svc = (const Swarm__Service *)obj;
            return bind_name(st, 5, svc->spec != NULL ? svc->spec->annotations : NULL);
        }
        case STORE_KIND_TASK:
            return bind_task(st, (const Swarm__Task *)obj);
        case STORE_KIND_CLUSTER: {
            const Swarm__Cluster *c = (const Swarm__Cluster *)obj;
            return bind_name(st, 5, c->spec != NULL ? c->spec->annotations : NULL);
        }
        case STORE_KIND_NETWORK: {
            const Swarm__Network *nw = (const Swarm__Network *)obj;
            return bind_name(st, 5, nw->spec != NULL ? nw->spec->annotations : NULL);
        }
    }
    return SQLITE_MISUSE;
}
