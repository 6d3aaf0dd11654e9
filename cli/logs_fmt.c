/* See logs_fmt.h. */
#include "logs_fmt.h"

#include "format.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CLI_LOGS_TRUNC_ID 12
#define CLI_LOGS_GAP "    " /* between the padded context and '|' */

void cli_logs_context(const struct cli_logs_fmt *f, const char *task_name,
                      const char *task_id, const char *node, char *out,
                      size_t size)
{
    /* The names come from the store and the node from its own description:
     * escaped, as every string swarmctl did not write itself. */
    if (f->no_task_ids) {
        snprintf(out, size, "%s@%s", cli_esc(task_name), cli_esc(node));
        return;
    }
    snprintf(out, size, "%s.%.*s@%s", cli_esc(task_name),
             f->no_trunc ? (int)strlen(task_id) : CLI_LOGS_TRUNC_ID, cli_esc(task_id),
             cli_esc(node));
}

void cli_logs_fit(struct cli_logs_fmt *f, size_t context_len)
{
    if (context_len > f->width) {
        f->width = context_len;
    }
}

void cli_logs_timestamp(int64_t unix_ms, char *buf, size_t size)
{
    struct tm tm;
    time_t secs = (time_t)(unix_ms / 1000);
    if (unix_ms < 0 || gmtime_r(&secs, &tm) == NULL) {
        snprintf(buf, size, "0001-01-01T00:00:00.000000000Z");
        return;
    }
    snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03d000000Z",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (int)(unix_ms % 1000));
}

char *cli_logs_line(const struct cli_logs_fmt *f, const char *context,
                    int64_t unix_ms, const char *data, size_t len)
{
    char ts[64] = "";
    size_t clen = strlen(context);
    size_t pad = f->width > clen ? f->width - clen : 0;
    size_t cap = clen + pad + sizeof CLI_LOGS_GAP + sizeof ts + len + 8;
    char *out = malloc(cap);
    size_t n = 0;
    if (out == NULL) {
        return NULL;
    }
    if (!f->raw) {
        memcpy(out, context, clen);
        n = clen;
        memset(out + n, ' ', pad);
        n += pad;
        n += (size_t)snprintf(out + n, cap - n, "%s| ", CLI_LOGS_GAP);
    }
    if (f->timestamps) {
        cli_logs_timestamp(unix_ms, ts, sizeof ts);
        n += (size_t)snprintf(out + n, cap - n, "%s ", ts);
    }
    if (len > 0) {
        memcpy(out + n, data, len);
        n += len;
    }
    out[n++] = '\n';
    out[n] = '\0';
    return out;
}
