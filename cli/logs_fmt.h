/* Formatting of `service logs` lines, as Docker prints them (pure: tested
 * by tests/unit/test_cli.c):
 *   web.1.abc123def456@node1    | hello
 *   web.1.abc123def456@node1    | 2024-03-01T10:00:00.123000000Z hello   (-t)
 * The context (task name, 12-character task ID unless --no-task-ids or
 * --no-trunc, '@', node) is padded to the widest one seen so far, so that
 * the '|' align. */
#ifndef SWARM_CLI_LOGS_FMT_H
#define SWARM_CLI_LOGS_FMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cli_logs_fmt {
    bool timestamps;  /* -t */
    bool no_task_ids; /* --no-task-ids */
    bool no_trunc;    /* --no-trunc: the whole task ID */
    bool raw;         /* --raw: the line only */
    size_t width;     /* widest context so far (grows) */
};

/* "NAME.TASKID@NODE" into out (NAME is the task name, "web.1"). */
void cli_logs_context(const struct cli_logs_fmt *f, const char *task_name,
                      const char *task_id, const char *node, char *out,
                      size_t size);

/* Widen the padding for a context of this length. */
void cli_logs_fit(struct cli_logs_fmt *f, size_t context_len);

/* RFC 3339 with nanoseconds, UTC: "2024-03-01T10:00:00.123000000Z". */
void cli_logs_timestamp(int64_t unix_ms, char *buf, size_t size);

/* One output line (with its newline) into a malloc'd string; NULL when out
 * of memory. `data` need not be NUL-terminated. */
char *cli_logs_line(const struct cli_logs_fmt *f, const char *context,
                    int64_t unix_ms, const char *data, size_t len);

#endif
