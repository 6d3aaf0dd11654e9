/* The node's side of `service logs`: the leader sends LogSubscriptions in
 * the session stream; for each, the agent reads the log files of the
 * selected tasks it runs (or ran: an ended task keeps its logs until it is
 * removed), TASK_DIR/<id>/{stdout,stderr}.log, and publishes the
 * lines with Logs/PublishLogs over the session's connection.
 *
 * Happy path (one subscription):
 *   subscribe -> match tasks (selected task IDs, or tasks of a selected
 *   service) -> for each log file: start at the last `tail` lines (all with
 *   -1) -> pump: read up to AGENT_LOGS_CHUNK per file while the queue is
 *   short -> PublishLogs batches, one in flight (the first, maybe empty, is
 *   the acknowledgement) -> without follow: everything read and sent ->
 *   PublishLogs close=true -> dropped.
 *   With follow, a timer every AGENT_LOGS_POLL_MS looks for new matching
 *   tasks (read from their start) and for data appended to the files.
 * Timestamps: the files hold none; lines present when a file was first
 *   opened get its mtime, lines read later the time they were read.
 * Failure paths: no open session -> the timer retries; a publish fails with
 *   NOT_FOUND (the leader forgot the subscription, e.g. it changed) -> the
 *   subscription is dropped; other failures -> the same batch is retried
 *   on the next tick; LogSubscription close=true or agent_stop -> dropped
 *   without a close message. A subscription is freed once its timer closed
 *   and no publish is in flight (refs). */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_int.h"
#include "err.h"
#include "log.h"
#include "logs.pb-c.h"
#include "pbcopy.h"
#include "vec.h"

#define AGENT_LOGS_POLL_MS 250
#define AGENT_LOGS_CHUNK (256u * 1024)   /* bytes read per file per pump */
#define AGENT_LOGS_LINE_MAX (16u * 1024) /* longer lines are split */
#define AGENT_LOGS_QUEUE_MAX 512         /* messages queued before reading stops */
#define AGENT_LOGS_BATCH_MAX 256         /* messages per PublishLogs */
#define AGENT_LOGS_TIMEOUT_MS 10000

enum { AGENT_LOGS_STDOUT = 1, AGENT_LOGS_STDERR = 2 };

struct agent_logs_file {
    char *task_id, *service_id, *path;
    unsigned stream;
    bool opened;          /* the file existed once: offsets are set */
    bool eof;             /* the last read reached the end */
    int64_t offset;       /* next byte to read */
    int64_t initial_end;  /* size when first opened */
    int64_t mtime_ms;     /* mtime when first opened */
    char *partial;        /* an unfinished last line */
    size_t n_partial;
};

struct agent_logs_sub {
    struct agent *a;
    char *id;
    Swarm__LogSelector *sel;
    bool follow;
    int64_t tail, since_ms;
    struct agent_logs_file *files;
    size_t n_files, cap_files;
    Swarm__LogMessage **queue;
    size_t n_queue, cap_queue;
    size_t n_inflight;  /* queue[0..n_inflight) is being published */
    bool acked;         /* the first publish went through */
    bool close_sent;
    bool closing;
    unsigned refs;      /* the timer, a publish in flight */
    uv_timer_t timer;
    struct agent_logs_sub *next;
};

static void agent_logs_pump(struct agent_logs_sub *s);

/* ------------------------------------------------------------ lifecycle */

static void agent_logs_msg_free(Swarm__LogMessage *m)
{
    free(m->data.data);
    free(m->task_id);
    free(m->service_id);
    free(m);
}

static void agent_logs_unref(struct agent_logs_sub *s)
{
    if (--s->refs > 0) {
        return;
    }
    for (size_t i = 0; i < s->n_files; i++) {
        free(s->files[i].task_id);
        free(s->files[i].service_id);
        free(s->files[i].path);
        free(s->files[i].partial);
    }
    for (size_t i = 0; i < s->n_queue; i++) {
        agent_logs_msg_free(s->queue[i]);
    }
    free(s->files);
    free(s->queue);
    if (s->sel != NULL) {
        swarm__log_selector__free_unpacked(s->sel, NULL);
    }
    free(s->id);
    free(s);
}

static void agent_logs_timer_closed_cb(uv_handle_t *h)
{
    struct agent_logs_sub *s = h->data;
    struct agent *a = s->a;
    agent_logs_unref(s);
    a->open_handles--;
    agent_maybe_finish(a);
}

static void agent_logs_drop(struct agent_logs_sub *s)
{
    struct agent_logs_sub **pp = &s->a->log_subs;
    if (s->closing) {
        return;
    }
    s->closing = true;
    while (*pp != NULL && *pp != s) {
        pp = &(*pp)->next;
    }
    if (*pp == s) {
        *pp = s->next;
    }
    uv_close((uv_handle_t *)&s->timer, agent_logs_timer_closed_cb);
}

/* ---------------------------------------------------------------- files */

static bool agent_logs_strv_has(char *const *v, size_t n, const char *x)
{
    for (size_t i = 0; x != NULL && i < n; i++) {
        if (strcmp(v[i], x) == 0) {
            return true;
        }
    }
    return false;
}

static bool agent_logs_has_task(const struct agent_logs_sub *s, const char *task_id)
{
    for (size_t i = 0; i < s->n_files; i++) {
        if (strcmp(s->files[i].task_id, task_id) == 0) {
            return true;
        }
    }
    return false;
}

static bool agent_logs_id_ok(const char *id)
{
    if (id == NULL || id[0] == '\0') {
        return false;
    }
    for (const char *c = id; *c; c++) {
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9'))) {
            return false;
        }
    }
    return true;
}

static void agent_logs_add_file(struct agent_logs_sub *s, const struct agent_task *at,
                                unsigned stream)
{
    struct agent_logs_file *f;
    if (vec_grow(s->files, s->cap_files, s->n_files + 1) != 0) {
        log_warn("agent", "log subscription %s: task %s: out of memory, its logs are skipped",
                 s->id, at->id);
        return;
    }
    f = &s->files[s->n_files];
    memset(f, 0, sizeof *f);
    f->stream = stream;
    f->task_id = strdup(at->id);
    f->service_id = strdup(at->task->service_id != NULL ? at->task->service_id : "");
    if (asprintf(&f->path, "%s/%s/%s", s->a->task_dir, at->id,
                 stream == AGENT_LOGS_STDOUT ? "stdout.log" : "stderr.log") < 0) {
        f->path = NULL;
    }
    if (f->task_id == NULL || f->service_id == NULL || f->path == NULL) {
        free(f->task_id);
        free(f->service_id);
        free(f->path);
        log_warn("agent", "log subscription %s: task %s: out of memory, its logs are skipped",
                 s->id, at->id);
        return;
    }
    s->n_files++;
}

struct agent_logs_match {
    struct agent_logs_sub *s;
    bool later; /* the task appeared after the subscription: read it all */
};

static void agent_logs_match_cb(struct agent_task *at, void *arg)
{
    struct agent_logs_match *mt = arg;
    struct agent_logs_sub *s = mt->s;
    size_t before = s->n_files;
    if (at->task == NULL || !agent_logs_id_ok(at->id) || agent_logs_has_task(s, at->id)) {
        return;
    }
    if (!agent_logs_strv_has(s->sel->task_ids, s->sel->n_task_ids, at->id) &&
        !agent_logs_strv_has(s->sel->service_ids, s->sel->n_service_ids, at->task->service_id)) {
        return;
    }
    agent_logs_add_file(s, at, AGENT_LOGS_STDOUT);
    agent_logs_add_file(s, at, AGENT_LOGS_STDERR);
    for (size_t i = before; mt->later && i < s->n_files; i++) {
        s->files[i].opened = true; /* from offset 0, no tail, read time */
    }
}

/* Where the last `tail` lines of fd (size bytes) begin. */
static int64_t agent_logs_tail_offset(int fd, int64_t size, int64_t tail)
{
    size_t len = size > (int64_t)(4 * AGENT_LOGS_CHUNK) ? 4 * AGENT_LOGS_CHUNK : (size_t)size;
    int64_t start = size - (int64_t)len, off = start;
    char *buf;
    ssize_t got;
    int64_t lines = 0;
    if (tail < 0 || size == 0) {
        return 0;
    }
    if ((buf = malloc(len)) == NULL || (got = pread(fd, buf, len, start)) <= 0) {
        free(buf);
        return size;
    }
    /* A final newline ends the last line; it does not start another. */
    for (ssize_t i = got - 1; i >= 0; i--) {
        if (buf[i] == '\n' && i != got - 1 && ++lines > tail - 1) {
            off = start + i + 1;
            break;
        }
        if (i == 0) {
            off = start;
        }
    }
    if (tail == 0) {
        off = size;
    }
    free(buf);
    return off;
}

/* A line of `len` bytes into the queue (split if very long). */
static void agent_logs_queue_line(struct agent_logs_sub *s, const struct agent_logs_file *f,
                                  const char *data, size_t len, int64_t ts)
{
    if (s->since_ms > 0 && ts < s->since_ms) {
        return;
    }
    do {
        size_t n = len > AGENT_LOGS_LINE_MAX ? AGENT_LOGS_LINE_MAX : len;
        Swarm__LogMessage *m;
        if (vec_grow(s->queue, s->cap_queue, s->n_queue + 1) != 0 ||
            (m = calloc(1, sizeof *m)) == NULL) {
            log_warn("agent", "log subscription %s: out of memory, a line of task %s dropped",
                     s->id, f->task_id);
            return;
        }
        swarm__log_message__init(m);
        m->task_id = strdup(f->task_id);
        m->service_id = strdup(f->service_id);
        m->timestamp_ms = ts;
        m->stream = f->stream;
        m->data.data = malloc(n ? n : 1);
        if (m->task_id == NULL || m->service_id == NULL || m->data.data == NULL) {
            agent_logs_msg_free(m);
            log_warn("agent", "log subscription %s: out of memory, a line of task %s dropped",
                     s->id, f->task_id);
            return;
        }
        memcpy(m->data.data, data, n);
        m->data.len = n;
        s->queue[s->n_queue++] = m;
        data += n;
        len -= n;
    } while (len > 0);
}

/* Read the next chunk of f; complete lines go to the queue. */
static void agent_logs_read(struct agent_logs_sub *s, struct agent_logs_file *f)
{
    struct stat st;
    char *buf = NULL;
    ssize_t got;
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    f->eof = true;
    if (fd < 0) {
        return; /* not started yet, or never wrote anything */
    }
    if (fstat(fd, &st) != 0) {
        close(fd);
        return;
    }
    if (!f->opened) {
        f->opened = true;
        f->initial_end = st.st_size;
        f->mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
        f->offset = agent_logs_tail_offset(fd, st.st_size, s->tail);
    }
    if (st.st_size < f->offset) {
        f->offset = 0; /* truncated */
    }
    size_t want = (size_t)(st.st_size - f->offset);
    if (want > AGENT_LOGS_CHUNK) {
        want = AGENT_LOGS_CHUNK;
        f->eof = false;
    }
    if (want > 0 && (buf = malloc(want)) != NULL &&
        (got = pread(fd, buf, want, f->offset)) > 0) {
        int64_t now = (int64_t)agent_wall_ms();
        size_t start = 0;
        for (size_t i = 0; i < (size_t)got; i++) {
            if (buf[i] != '\n') {
                continue;
            }
            int64_t end = f->offset + (int64_t)i;
            int64_t ts = end < f->initial_end ? f->mtime_ms : now;
            if (f->n_partial > 0) {
                char *line = realloc(f->partial, f->n_partial + (i - start) + 1);
                if (line != NULL) {
                    memcpy(line + f->n_partial, buf + start, i - start);
                    agent_logs_queue_line(s, f, line, f->n_partial + (i - start), ts);
                    f->partial = line;
                } else {
                    log_warn("agent", "log subscription %s: out of memory, a line of task %s "
                             "dropped", s->id, f->task_id);
                }
                free(f->partial);
                f->partial = NULL;
                f->n_partial = 0;
            } else {
                agent_logs_queue_line(s, f, buf + start, i - start, ts);
            }
            start = i + 1;
        }
        if (start < (size_t)got) {
            char *p = realloc(f->partial, f->n_partial + ((size_t)got - start));
            if (p != NULL) {
                memcpy(p + f->n_partial, buf + start, (size_t)got - start);
                f->partial = p;
                f->n_partial += (size_t)got - start;
            } else {
                log_warn("agent", "log subscription %s: out of memory, part of a line of task "
                         "%s dropped", s->id, f->task_id);
            }
        }
        f->offset += got;
    }
    free(buf);
    close(fd);
    /* The unfinished last line: as it is when nothing more will come, or
     * once it is too long to wait for its end. */
    if (f->n_partial > 0 && ((f->eof && !s->follow) || f->n_partial >= AGENT_LOGS_LINE_MAX)) {
        int64_t ts = f->offset <= f->initial_end ? f->mtime_ms : (int64_t)agent_wall_ms();
        agent_logs_queue_line(s, f, f->partial, f->n_partial, ts);
        free(f->partial);
        f->partial = NULL;
        f->n_partial = 0;
    }
}

/* -------------------------------------------------------------- publish */

static void agent_logs_publish_done_cb(enum api_status status, const char *message,
                                       const ProtobufCMessage *resp, void *data)
{
    struct agent_logs_sub *s = data;
    size_t n = s->n_inflight;
    (void)resp;
    s->n_inflight = 0;
    if (s->closing) {
        agent_logs_unref(s);
        return;
    }
    agent_logs_unref(s); /* s still holds the timer's ref */
    if (status == API_NOT_FOUND || status == API_PERMISSION_DENIED) {
        log_info("agent", "log subscription %s ended by the manager: %s", s->id,
                 message != NULL ? message : "");
        agent_logs_drop(s);
        return;
    }
    if (status != API_OK) {
        s->close_sent = false;
        return; /* the timer retries the same batch */
    }
    s->acked = true;
    for (size_t i = 0; i < n; i++) {
        agent_logs_msg_free(s->queue[i]);
    }
    if (n > 0) { /* the first, empty, batch: the queue may not exist yet */
        memmove(s->queue, s->queue + n, (s->n_queue - n) * sizeof *s->queue);
    }
    s->n_queue -= n;
    if (s->close_sent) {
        agent_logs_drop(s);
        return;
    }
    agent_logs_pump(s);
}

static bool agent_logs_all_read(const struct agent_logs_sub *s)
{
    for (size_t i = 0; i < s->n_files; i++) {
        if (!s->files[i].eof || s->files[i].n_partial > 0) {
            return false;
        }
    }
    return true;
}

static void agent_logs_publish(struct agent_logs_sub *s)
{
    struct agent_conn *conn = s->a->conn;
    Swarm__PublishLogsRequest req = SWARM__PUBLISH_LOGS_REQUEST__INIT;
    size_t n = s->n_queue < AGENT_LOGS_BATCH_MAX ? s->n_queue : AGENT_LOGS_BATCH_MAX;
    bool close_now = !s->follow && n == s->n_queue && agent_logs_all_read(s);
    if (s->refs > 1 || s->close_sent || conn == NULL || conn->state != AGENT_CONN_OPEN ||
        (n == 0 && s->acked && !close_now)) {
        return;
    }
    req.subscription_id = s->id;
    req.messages = s->queue;
    req.n_messages = n;
    req.close = close_now;
    if (api_client_unary(conn->client, &swarm__logs__descriptor, "PublishLogs", &req.base,
                         AGENT_LOGS_TIMEOUT_MS, agent_logs_publish_done_cb, s) != 0) {
        return;
    }
    s->refs++;
    s->n_inflight = n;
    s->close_sent = close_now;
}

/* Read while the queue is short, then publish what is queued. */
static void agent_logs_pump(struct agent_logs_sub *s)
{
    bool progress = true;
    while (progress && s->n_queue < AGENT_LOGS_QUEUE_MAX) {
        progress = false;
        for (size_t i = 0; i < s->n_files && s->n_queue < AGENT_LOGS_QUEUE_MAX; i++) {
            struct agent_logs_file *f = &s->files[i];
            bool was_eof = f->eof && f->opened;
            if (was_eof && !s->follow) {
                continue;
            }
            int64_t before = f->offset;
            agent_logs_read(s, f);
            progress = progress || (f->offset != before && !f->eof);
        }
    }
    agent_logs_publish(s);
}

static void agent_logs_tick_cb(uv_timer_t *t)
{
    struct agent_logs_sub *s = t->data;
    if (s->closing || s->a->closing) {
        return;
    }
    if (s->follow) {
        struct agent_logs_match mt = {.s = s, .later = true};
        agent_table_foreach(&s->a->tasks, agent_logs_match_cb, &mt);
    }
    agent_logs_pump(s);
}

/* ---------------------------------------------------------------- entry */

void agent_logs_subscribe(struct agent *a, const Swarm__LogSubscription *ls)
{
    struct agent_logs_sub *s;
    if (a->closing || ls->id == NULL || ls->id[0] == '\0') {
        return;
    }
    for (s = a->log_subs; s != NULL; s = s->next) {
        if (strcmp(s->id, ls->id) == 0) {
            break;
        }
    }
    if (ls->close || s != NULL) {
        if (ls->close && s != NULL) {
            agent_logs_drop(s);
        }
        return;
    }
    if ((s = calloc(1, sizeof *s)) == NULL || (s->id = strdup(ls->id)) == NULL) {
        free(s);
        return;
    }
    s->a = a;
    if (ls->selector != NULL) {
        s->sel = pb_copy(&ls->selector->base);
    }
    if (s->sel == NULL) {
        free(s->id);
        free(s);
        return;
    }
    s->follow = ls->options != NULL && ls->options->follow;
    s->tail = ls->options != NULL ? ls->options->tail : -1;
    s->since_ms = ls->options != NULL ? ls->options->since_ms : 0;
    s->refs = 1;
    uv_timer_init(a->loop, &s->timer);
    s->timer.data = s;
    a->open_handles++;
    s->next = a->log_subs;
    a->log_subs = s;
    struct agent_logs_match mt = {.s = s, .later = false};
    agent_table_foreach(&a->tasks, agent_logs_match_cb, &mt);
    uv_timer_start(&s->timer, agent_logs_tick_cb, AGENT_LOGS_POLL_MS, AGENT_LOGS_POLL_MS);
    agent_logs_pump(s);
}

void agent_logs_stop(struct agent *a)
{
    while (a->log_subs != NULL) {
        agent_logs_drop(a->log_subs);
    }
}
