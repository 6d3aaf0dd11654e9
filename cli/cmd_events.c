/* `swarmctl events [OPTIONS]` (Docker's): the swarm's events, as they
 * happen, or replayed from the managers' history with --since.
 *
 * Happy path: parse --since/--until (a time or a Go duration before now),
 * the filters (name=value) and --format -> Events/SubscribeEvents on the
 * control socket -> each event is printed as it arrives, and the cursor the
 * stream reports (raft index, position) is kept -> --until reached (the
 * server ends the stream, or the local timer cancels it) or SIGINT -> exit 0.
 * The stream breaks (the local manager restarts, is demoted and promoted,
 * swarmd restarts): dial the socket again for up to EVENTS_RESUME_MS and
 * resume right after the cursor: every manager names events alike, so
 * nothing is printed twice and nothing is skipped (while the events are
 * still in the history window). A leader change does not break the stream
 * at all: every manager serves the events it applies itself.
 * Failures: a bad time or filter -> Docker's message, exit 1, nothing
 * subscribed; swarmd gone for good -> Docker's "Cannot connect" error. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "events.pb-c.h"
#include "format.h"
#include "tmpl.h"

#define EVENTS_RESUME_MS 60000
#define EVENTS_RESUME_STEP_MS 250

struct events_run {
    struct cli_ctx *ctx;
    struct tmpl *tmpl;
    bool have_cursor;
    uint64_t index;
    uint32_t position;
    bool has_until;
    int64_t until_nano;
    struct api_client_call *handle;
    bool done, interrupted, until_reached, print_failed;
    bool streamed;  /* a stream was open once: a break is resumed */
    bool answered;  /* the current stream has had a message */
    enum api_status status;
    char message[512];
    uv_signal_t sigint;
    uv_timer_t until_timer;
};

/* "2026-11-28T21:00:00.000000000Z" (Go's RFC3339NanoFixed, in UTC). */
static void events_time(int64_t nano, char *out, size_t size)
{
    time_t secs = (time_t)(nano / 1000000000);
    long frac = (long)(nano % 1000000000);
    struct tm tm;
    if (frac < 0) {
        frac += 1000000000;
        secs--;
    }
    gmtime_r(&secs, &tm);
    char base[64];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, size, "%s.%09ldZ", base, frac);
}

/* Docker's events.Message as the template sees it. */
static struct tmpl_value *events_value(const Swarm__Event *e)
{
    struct tmpl_value *m = tmpl_value_map("*events.Message", 0);
    struct tmpl_value *actor = tmpl_value_map("events.Actor", 0);
    struct tmpl_value *attrs = tmpl_value_map(NULL, TMPL_MAP_SORTED | TMPL_MAP_STRINGS);
    for (size_t i = 0; i < e->n_attributes; i++) {
        tmpl_map_set_string(attrs, e->attributes[i]->key, e->attributes[i]->value);
    }
    tmpl_map_set(m, "Status", tmpl_value_string(""))->omitempty = true;
    tmpl_map_set(m, "ID", tmpl_value_string(""))->omitempty = true;
    tmpl_map_set(m, "From", tmpl_value_string(""))->omitempty = true;
    tmpl_map_set_string(m, "Type", e->type);
    tmpl_map_set_string(m, "Action", e->action);
    tmpl_map_set_string(actor, "ID", e->actor_id);
    tmpl_map_set(actor, "Attributes", attrs);
    tmpl_map_set(m, "Actor", actor);
    tmpl_map_set_string(m, "Scope", "swarm");
    tmpl_map_set(m, "Time", tmpl_value_int(e->time_nano / 1000000000));
    tmpl_map_set(m, "TimeNano", tmpl_value_int(e->time_nano));
    return m;
}

static void events_print(struct events_run *r, const Swarm__Event *e)
{
    FILE *out = r->ctx->out;
    if (r->tmpl != NULL) {
        char err[SWARM_ERRMSG_SIZE];
        struct tmpl_value *v = events_value(e);
        int rc = tmpl_execute(r->tmpl, out, v, 0, err);
        tmpl_value_free(v);
        if (rc != 0) {
            fprintf(r->ctx->err, "%s\n", err);
            r->print_failed = true;
            if (r->handle != NULL) {
                api_client_call_cancel(r->handle);
            }
            return;
        }
        fputc('\n', out);
    } else {
        char when[64];
        events_time(e->time_nano, when, sizeof when);
        fprintf(out, "%s %s %s %s", when, e->type, e->action, e->actor_id);
        for (size_t i = 0; i < e->n_attributes; i++) {
            fprintf(out, "%s%s=%s", i == 0 ? " (" : ", ", cli_esc(e->attributes[i]->key),
                    cli_esc(e->attributes[i]->value));
        }
        fputs(e->n_attributes > 0 ? ")\n" : "\n", out);
    }
    fflush(out);
}

static void events_msg_cb(const ProtobufCMessage *msg, void *data)
{
    struct events_run *r = data;
    const Swarm__SubscribeEventsMessage *m = (const Swarm__SubscribeEventsMessage *)msg;
    for (size_t i = 0; i < m->n_events && !r->print_failed; i++) {
        const Swarm__Event *e = m->events[i];
        if (r->has_until && e->time_nano > r->until_nano) {
            continue;
        }
        events_print(r, e);
    }
    r->streamed = true;
    r->answered = true;
    if (!r->print_failed) {
        r->have_cursor = true;
        r->index = m->index;
        r->position = m->position;
    }
}

static void events_done_cb(enum api_status status, const char *message, const ProtobufCMessage *resp,
                           void *data)
{
    struct events_run *r = data;
    (void)resp;
    r->done = true;
    r->handle = NULL;
    r->status = status;
    snprintf(r->message, sizeof r->message, "%s", message != NULL ? message : "");
}

static void events_sigint_cb(uv_signal_t *h, int signum)
{
    struct events_run *r = h->data;
    (void)signum;
    r->interrupted = true;
    if (r->handle != NULL) {
        api_client_call_cancel(r->handle);
    }
}

static void events_until_cb(uv_timer_t *t)
{
    struct events_run *r = t->data;
    r->until_reached = true;
    if (r->handle != NULL) {
        api_client_call_cancel(r->handle);
    }
}

static void events_noop_close_cb(uv_handle_t *h)
{
    (void)h;
}

/* One stream on the current connection, until it ends. */
static void events_stream_once(struct events_run *r, Swarm__SubscribeEventsRequest *req)
{
    struct cli_conn *c = r->ctx->conn;
    r->done = false;
    r->answered = false;
    r->status = API_UNAVAILABLE;
    r->message[0] = '\0';
    if (cli_conn_dial(c) != 0) {
        r->done = true;
        snprintf(r->message, sizeof r->message, "%s", c->errmsg);
        return;
    }
    req->has_after = r->have_cursor;
    req->after_index = r->index;
    req->after_position = r->position;
    if (api_client_stream(c->client, &swarm__events__descriptor, "SubscribeEvents", &req->base, 0,
                          events_msg_cb, events_done_cb, r, &r->handle) != 0) {
        r->done = true;
        snprintf(r->message, sizeof r->message, "cannot start the events stream");
        return;
    }
    uv_signal_init(&c->loop, &r->sigint);
    r->sigint.data = r;
    uv_signal_start(&r->sigint, events_sigint_cb, SIGINT);
    uv_timer_init(&c->loop, &r->until_timer);
    r->until_timer.data = r;
    /* An --until still to come ends the stream here when it comes; one
     * already past is the server's to end, once it replayed the history. */
    int64_t wait = r->until_nano / 1000000 - cli_now_ms();
    if (r->has_until && wait > 0) {
        uv_timer_start(&r->until_timer, events_until_cb, (uint64_t)wait + 1, 0);
    }
    while (!r->done) {
        if (uv_run(&c->loop, UV_RUN_ONCE) == 0 && !r->done) {
            r->status = API_UNAVAILABLE;
            snprintf(r->message, sizeof r->message, "no answer from swarmd");
            break;
        }
    }
    uv_close((uv_handle_t *)&r->sigint, events_noop_close_cb);
    uv_close((uv_handle_t *)&r->until_timer, events_noop_close_cb);
    uv_run(&c->loop, UV_RUN_NOWAIT);
}

static int events_stream(struct events_run *r, Swarm__SubscribeEventsRequest *req)
{
    uint64_t give_up = 0;
    bool resuming = false;
    for (;;) {
        events_stream_once(r, req);
        if (r->print_failed) {
            return 1;
        }
        if (r->status == API_OK || r->interrupted || r->until_reached) {
            return 0;
        }
        if (r->answered) {
            give_up = 0; /* it served again: a fresh allowance for the next break */
            resuming = false;
        }
        /* Only a stream that was open is resumed (a swarmd that never
         * answered is reported at once); while swarmd comes back its
         * manager may not serve yet (FAILED_PRECONDITION). */
        if (!r->streamed || (r->status != API_UNAVAILABLE && r->status != API_CANCELLED &&
                             !(resuming && r->status == API_FAILED_PRECONDITION))) {
            break;
        }
        resuming = true;
        uint64_t now = (uint64_t)cli_now_ms();
        if (give_up == 0) {
            give_up = now + EVENTS_RESUME_MS;
        } else if (now >= give_up) {
            break;
        }
        /* Dial again and resume after the cursor. */
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s", r->ctx->conn->path);
        cli_conn_close(r->ctx->conn);
        struct timespec ts = {0, EVENTS_RESUME_STEP_MS * 1000000L};
        nanosleep(&ts, NULL);
        if (cli_conn_init(r->ctx->conn, path) != 0) {
            return cli_cmd_errorf(r->ctx, "cannot start the event loop");
        }
    }
    struct cli_reply rep = {.status = r->status};
    snprintf(rep.message, sizeof rep.message, "%s", r->message);
    rep.unreachable = r->ctx->conn->state != CLI_CONN_CONNECTED || !api_client_connected(r->ctx->conn->client);
    return cli_conn_report(r->ctx->conn, &rep, r->ctx->err);
}

/* Unix seconds with an optional fraction ("1700000000.123456789"), exact
 * to the nanosecond (a double is not). */
static bool events_parse_unix(const char *s, int64_t *out_nano)
{
    int64_t secs = 0, frac = 0, scale = 1000000000;
    const char *p = s;
    bool neg = *p == '-';
    p += neg;
    if (*p < '0' || *p > '9') {
        return false;
    }
    for (; *p >= '0' && *p <= '9'; p++) {
        if (secs > INT64_MAX / 1000000000 / 10) {
            return false;
        }
        secs = secs * 10 + (*p - '0');
    }
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++) {
            if (scale > 1) {
                scale /= 10;
                frac += (*p - '0') * scale;
            }
        }
    }
    if (*p != '\0') {
        return false;
    }
    *out_nano = (neg ? -1 : 1) * (secs * 1000000000 + frac);
    return true;
}

/* --since / --until: RFC 3339 ("2026-11-28T21:00:00Z", fraction allowed),
 * a date, unix seconds (fraction allowed), or a Go duration before now
 * ("10m"), as Docker's timetypes.GetTimestamp. */
static int events_parse_time(const char *what, const char *s, int64_t *out_nano, char *errmsg)
{
    int64_t ns;
    struct tm tm = {0};
    char *end;
    if (cli_parse_duration(s, &ns, errmsg) == 0) {
        *out_nano = cli_now_ms() * 1000000 - ns;
        return 0;
    }
    if (events_parse_unix(s, out_nano)) {
        return 0;
    }
    end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (end == NULL) {
        memset(&tm, 0, sizeof tm);
        end = strptime(s, "%Y-%m-%d", &tm);
    }
    if (end != NULL) {
        int64_t nano = (int64_t)timegm(&tm) * 1000000000;
        if (*end == '.') {
            int64_t scale = 1000000000;
            for (end++; *end >= '0' && *end <= '9'; end++) {
                if (scale > 1) {
                    scale /= 10;
                    nano += (*end - '0') * scale;
                }
            }
        }
        if ((*end == 'Z' && end[1] == '\0') || *end == '\0') {
            *out_nano = nano;
            return 0;
        }
    }
    errmsg_printf(errmsg, SWARM_ERRMSG_SIZE,
                  "invalid value for \"%s\": could not parse \"%s\" as a time or a duration",
                  what, s);
    return SWARM_EINVAL;
}

int cmd_events(struct cli_ctx *ctx, int argc, char **argv)
{
    struct events_run r = {.ctx = ctx};
    const char *since = NULL, *until = NULL, *format = NULL;
    struct cli_strlist filters = {0};
    struct cli_flag flags[] = {
        {'f', "filter", CLI_FLAG_LIST, &filters, "Filter output based on conditions provided", "filter",
         false, NULL},
        {0, "format", CLI_FLAG_STRING, &format,
         "Format output using a custom template:\n'json':             Print in JSON format\n"
         "'TEMPLATE':         Print output using the given Go template",
         "string", false, NULL},
        {0, "since", CLI_FLAG_STRING, &since, "Show all events created since timestamp", "string", false, NULL},
        {0, "until", CLI_FLAG_STRING, &until, "Stream events until this timestamp", "string", false, NULL},
        {0},
    };
    struct cli_spec spec = {"swarmctl events", "[OPTIONS]", "Get real time events from the swarm", NULL,
                            CLI_ARGS_NONE, 0, 0, flags, false};
    Swarm__SubscribeEventsRequest req = SWARM__SUBSCRIBE_EVENTS_REQUEST__INIT;
    char **pos, err[SWARM_ERRMSG_SIZE];
    int npos, rc;
    if (!cli_cmd_parse(ctx, &spec, argc, argv, &pos, &npos, &rc)) {
        return rc;
    }
    free(pos);
    if (since != NULL && since[0] != '\0') {
        if (events_parse_time("since", since, &req.since_nano, err) != 0) {
            rc = cli_cmd_errorf(ctx, "%s", err);
            goto out;
        }
        req.has_since = true;
    }
    if (until != NULL && until[0] != '\0') {
        if (events_parse_time("until", until, &req.until_nano, err) != 0) {
            rc = cli_cmd_errorf(ctx, "%s", err);
            goto out;
        }
        req.has_until = true;
        r.has_until = true;
        r.until_nano = req.until_nano;
    }
    for (size_t i = 0; i < filters.n; i++) {
        const char *eq = strchr(filters.items[i], '=');
        if (eq == NULL || eq == filters.items[i]) {
            rc = cli_cmd_errorf(ctx, "bad format of filter (expected name=value)");
            goto out;
        }
    }
    req.filters = (char **)filters.items;
    req.n_filters = filters.n;
    if (format != NULL && format[0] != '\0') {
        r.tmpl = tmpl_parse(strcmp(format, "json") == 0 ? "{{json .}}" : format, err);
        if (r.tmpl == NULL) {
            fprintf(ctx->err, "%s\n", err);
            rc = 1;
            goto out;
        }
    }
    rc = events_stream(&r, &req);
out:
    tmpl_free(r.tmpl);
    cli_strlist_free(&filters);
    return rc;
}
