/* The worker's local task database, DIR/worker/tasks.db: what the node was
 * assigned and what it last observed, so that a restarted worker resumes its
 * tasks without waiting for a manager. One row per task: the Task as the
 * dispatcher sent it (protobuf) and the last TaskStatus seen here
 * (protobuf, NULL until the first one).
 *
 * Writes open a transaction lazily and taskdb_commit() ends it: the agent
 * commits once per assignments message and once per status flush (100 ms),
 * so a burst of changes costs one commit. WAL with synchronous=NORMAL: a
 * crash may lose the last batch, never corrupt the file; the executor's
 * leftover cleanup and the next assignments repair what is lost. */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent_int.h"
#include "err.h"
#include "log.h"

static const char schema[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    "CREATE TABLE IF NOT EXISTS tasks ("
    "  id TEXT PRIMARY KEY,"
    "  task BLOB NOT NULL,"
    "  status BLOB"
    ");";

static int taskdb_prepare(struct taskdb *db, const char *sql, sqlite3_stmt **out,
                          char *errmsg)
{
    if (sqlite3_prepare_v2(db->db, sql, -1, out, NULL) != SQLITE_OK) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "task db: %s", sqlite3_errmsg(db->db));
        return SWARM_ESQL;
    }
    return 0;
}

/* SQLite's word that the file is not a sound task db (as opposed to one it
 * cannot reach: permissions, I/O, full disk). SQLITE_ERROR covers a db with
 * a `tasks` table of another shape, which makes the statements fail. */
static bool taskdb_damaged(int rc)
{
    rc &= 0xff;
    return rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT || rc == SQLITE_ERROR;
}

/* 0, SWARM_ECORRUPT when the file is damaged or foreign, else SWARM_ESQL. */
static int taskdb_try_open(struct taskdb *db, const char *path, char *errmsg)
{
    char *em = NULL;
    sqlite3_stmt *check = NULL;
    int rc;
    memset(db, 0, sizeof *db);
    rc = sqlite3_open_v2(path, &db->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "task db %s: %s", path,
                      db->db != NULL ? sqlite3_errmsg(db->db) : "out of memory");
        goto err_after_open;
    }
    sqlite3_busy_timeout(db->db, 1000);
    rc = sqlite3_exec(db->db, schema, NULL, NULL, &em);
    if (rc != SQLITE_OK) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "task db %s: %s", path, em ? em : "?");
        sqlite3_free(em);
        goto err_after_open;
    }
    /* The file is small: a full read of its pages at start is cheap, and a
     * damaged page found now costs nothing, found later costs the agent. */
    rc = sqlite3_prepare_v2(db->db, "PRAGMA quick_check", -1, &check, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(check);
    }
    if (rc == SQLITE_ROW) {
        const char *verdict = (const char *)sqlite3_column_text(check, 0);
        rc = verdict != NULL && strcmp(verdict, "ok") == 0 ? SQLITE_OK : SQLITE_CORRUPT;
        if (rc != SQLITE_OK) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "task db %s: %s", path,
                          verdict != NULL ? verdict : "?");
        }
    } else {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "task db %s: %s", path, sqlite3_errmsg(db->db));
    }
    sqlite3_finalize(check);
    if (rc != SQLITE_OK) {
        goto err_after_open;
    }
    if (taskdb_prepare(db, "INSERT INTO tasks (id, task) VALUES (?1, ?2) "
                           "ON CONFLICT(id) DO UPDATE SET task = excluded.task",
                       &db->put_task, errmsg) != 0 ||
        taskdb_prepare(db, "UPDATE tasks SET status = ?2 WHERE id = ?1", &db->put_status,
                       errmsg) != 0 ||
        taskdb_prepare(db, "DELETE FROM tasks WHERE id = ?1", &db->del, errmsg) != 0 ||
        taskdb_prepare(db, "BEGIN", &db->begin, errmsg) != 0 ||
        taskdb_prepare(db, "COMMIT", &db->commit, errmsg) != 0) {
        rc = sqlite3_errcode(db->db);
        goto err_after_open;
    }
    return 0;

err_after_open:
    taskdb_close(db);
    return taskdb_damaged(rc) ? SWARM_ECORRUPT : SWARM_ESQL;
}

/* Move path and its WAL companions to path.corrupt-<unix time>. */
static int taskdb_move_aside(const char *path, char *errmsg)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    char from[PATH_MAX], to[PATH_MAX];
    long long now = (long long)time(NULL);
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        snprintf(from, sizeof from, "%s%s", path, suffixes[i]);
        snprintf(to, sizeof to, "%s.corrupt-%lld%s", path, now, suffixes[i]);
        if (rename(from, to) != 0 && errno != ENOENT) {
            errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "task db: move %s aside: %s", from,
                          strerror(errno));
            return SWARM_EIO;
        }
    }
    log_error("agent", "task db %s is damaged; moved it aside to %s.corrupt-%lld and started "
              "with an empty one: the tasks of this node come back from the manager's "
              "assignments", path, path, now);
    return 0;
}

/* A damaged file is moved aside and replaced by an empty db: what it held
 * (the tasks assigned here and their last status) comes back with the
 * manager's next assignments, so the agent must not stay down for it. */
int taskdb_open(struct taskdb *db, const char *path, char *errmsg)
{
    int rv = taskdb_try_open(db, path, errmsg);
    if (rv != SWARM_ECORRUPT) {
        return rv;
    }
    log_error("agent", "%s", errmsg);
    if ((rv = taskdb_move_aside(path, errmsg)) != 0) {
        return rv;
    }
    errmsg[0] = '\0';
    rv = taskdb_try_open(db, path, errmsg);
    return rv == SWARM_ECORRUPT ? SWARM_ESQL : rv;
}

void taskdb_close(struct taskdb *db)
{
    if (db->db == NULL) {
        return;
    }
    taskdb_commit(db);
    sqlite3_finalize(db->put_task);
    sqlite3_finalize(db->put_status);
    sqlite3_finalize(db->del);
    sqlite3_finalize(db->begin);
    sqlite3_finalize(db->commit);
    sqlite3_close(db->db);
    memset(db, 0, sizeof *db);
}

/* Run a prepared statement to completion and reset it. */
static int taskdb_step(struct taskdb *db, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE) {
        log_warn("agent", "task db: %s", sqlite3_errmsg(db->db));
        return SWARM_ESQL;
    }
    return 0;
}

static int taskdb_begin(struct taskdb *db)
{
    if (db->in_txn) {
        return 0;
    }
    int rv = taskdb_step(db, db->begin);
    db->in_txn = rv == 0;
    return rv;
}

int taskdb_commit(struct taskdb *db)
{
    if (!db->in_txn) {
        return 0;
    }
    db->in_txn = false;
    int rv = taskdb_step(db, db->commit);
    if (rv != 0 && !sqlite3_get_autocommit(db->db)) {
        sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL);
    }
    return rv;
}

/* Pack a message into a malloc'd buffer. */
static uint8_t *taskdb_pack(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(*len ? *len : 1);
    if (buf != NULL) {
        protobuf_c_message_pack(m, buf);
    }
    return buf;
}

int taskdb_put_task(struct taskdb *db, const Swarm__Task *task)
{
    size_t len;
    uint8_t *buf = taskdb_pack(&task->base, &len);
    if (buf == NULL) {
        return SWARM_ENOMEM;
    }
    int rv = taskdb_begin(db);
    if (rv == 0) {
        sqlite3_bind_text(db->put_task, 1, task->id, -1, SQLITE_STATIC);
        sqlite3_bind_blob(db->put_task, 2, buf, (int)len, SQLITE_STATIC);
        rv = taskdb_step(db, db->put_task);
    }
    free(buf);
    return rv;
}

int taskdb_put_status(struct taskdb *db, const char *task_id, const Swarm__TaskStatus *st)
{
    size_t len;
    uint8_t *buf = taskdb_pack(&st->base, &len);
    if (buf == NULL) {
        return SWARM_ENOMEM;
    }
    int rv = taskdb_begin(db);
    if (rv == 0) {
        sqlite3_bind_text(db->put_status, 1, task_id, -1, SQLITE_STATIC);
        sqlite3_bind_blob(db->put_status, 2, buf, (int)len, SQLITE_STATIC);
        rv = taskdb_step(db, db->put_status);
    }
    free(buf);
    return rv;
}

int taskdb_delete(struct taskdb *db, const char *task_id)
{
    int rv = taskdb_begin(db);
    if (rv == 0) {
        sqlite3_bind_text(db->del, 1, task_id, -1, SQLITE_STATIC);
        rv = taskdb_step(db, db->del);
    }
    return rv;
}

int taskdb_load(struct taskdb *db,
                void (*fn)(Swarm__Task *task, Swarm__TaskStatus *st, void *arg),
                void *arg, char *errmsg)
{
    sqlite3_stmt *q;
    int rc;
    if (taskdb_prepare(db, "SELECT id, task, status FROM tasks ORDER BY id", &q, errmsg) != 0) {
        return SWARM_ESQL;
    }
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const void *tb = sqlite3_column_blob(q, 1);
        size_t tlen = (size_t)sqlite3_column_bytes(q, 1);
        const void *sb = sqlite3_column_blob(q, 2);
        size_t slen = (size_t)sqlite3_column_bytes(q, 2);
        Swarm__Task *task = swarm__task__unpack(NULL, tlen, tb);
        Swarm__TaskStatus *st = NULL;
        if (task == NULL || task->id == NULL || task->id[0] == '\0') {
            log_warn("agent", "task db: skipping undecodable row %s",
                     (const char *)sqlite3_column_text(q, 0));
            if (task != NULL) {
                swarm__task__free_unpacked(task, NULL);
            }
            continue;
        }
        if (sb != NULL) {
            st = swarm__task_status__unpack(NULL, slen, sb);
        }
        fn(task, st, arg);
    }
    if (rc != SQLITE_DONE) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "task db: %s", sqlite3_errmsg(db->db));
        sqlite3_finalize(q);
        return SWARM_ESQL;
    }
    sqlite3_finalize(q);
    return 0;
}
