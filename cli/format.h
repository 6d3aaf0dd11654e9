/* Text formatting for swarmctl, written to match what Docker's CLI prints:
 * tabwriter-like tables, go-units durations and sizes, Go duration parsing,
 * timestamps. Pure: no I/O beyond the FILE * a caller passes in. */
#ifndef SWARM_CLI_FORMAT_H
#define SWARM_CLI_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"

#define CLI_NS_PER_MS INT64_C(1000000)
#define CLI_NS_PER_S INT64_C(1000000000)

/* Short IDs in tables, as Docker's stringid.TruncateID. */
#define CLI_SHORT_ID_LEN 12

/* ------------------------------------------------------------- allocation */

/* swarmctl's allocation policy: it is a one-shot command with nothing to
 * save, so running out of memory prints "swarmctl: out of memory" and exits
 * 1 (valkey's zmalloc_oom_handler) instead of threading SWARM_ENOMEM through
 * every formatter. The daemon's policy is the opposite (README, Conventions). */
void cli_oom(void) __attribute__((noreturn));
/* realloc that never returns NULL (size 0 allocates 1 byte). */
void *cli_xrealloc(void *p, size_t size);
/* calloc that never returns NULL (n 0 allocates 1 byte). */
void *cli_xcalloc(size_t n, size_t size);

/* ------------------------------------------------------------------ tables */

/* A table laid out like Go's text/tabwriter as Docker configures it: every
 * cell but the last of a row is padded to max(minwidth, widest cell +
 * padding); the last cell is written as is. Widths count UTF-8 characters. */
struct cli_table;

/* Docker's tables: minwidth 10, padding 3 (`docker node ls`). */
struct cli_table *cli_table_new(size_t minwidth, size_t padding);
/* Append a cell to the current row (copied). */
void cli_table_add(struct cli_table *t, const char *cell);
/* printf-style cell. */
void cli_table_addf(struct cli_table *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Close the current row. */
void cli_table_end_row(struct cli_table *t);
/* Write every row; rows may have different cell counts. */
void cli_table_print(const struct cli_table *t, FILE *out);
void cli_table_free(struct cli_table *t);

/* ------------------------------------------------------- durations, sizes */

/* Parse a Go duration ("5s", "1m30s", "500ms", "2160h", "-1.5h", "0") into
 * nanoseconds. Returns 0, or SWARM_EINVAL with Go's error text in errmsg, e.g.
 * `time: unknown unit "x" in duration "5x"`. */
int cli_parse_duration(const char *s, int64_t *ns, char *errmsg);

/* Go's Duration.String(): "1m30s", "500ms", "2160h0m0s", "0s". */
void cli_format_go_duration(int64_t ns, char *buf, size_t size);

/* go-units HumanDuration: "Less than a second", "1 second", "5 seconds",
 * "About a minute", "3 minutes", "About an hour", "2 hours", "3 days",
 * "2 weeks", "3 months", "2 years". */
void cli_format_human_duration(int64_t ns, char *buf, size_t size);

/* "<human duration> ago" between two unix-ms times, as Docker's tables. */
void cli_format_time_ago(int64_t now_ms, int64_t then_ms, char *buf,
                         size_t size);

/* go-units BytesSize: binary units, 4 significant digits ("23.48GiB"). */
void cli_format_bytes(double bytes, char *buf, size_t size);

/* ------------------------------------------------------------- timestamps */

/* RFC 3339 UTC with milliseconds: "2024-03-01T10:00:00.123Z". 0 (unset) is
 * Go's zero time, "0001-01-01T00:00:00Z", as Docker shows unset times. */
void cli_format_rfc3339(int64_t unix_ms, char *buf, size_t size);

/* Go's time.Time String() in UTC, as `node inspect --pretty` shows it:
 * "2024-03-01 10:00:00.123 +0000 UTC" (trailing zeros of the fraction
 * dropped). */
void cli_format_go_time(int64_t unix_ms, char *buf, size_t size);

/* ------------------------------------------------------------------ misc */

/* sortorder.NaturalLess: digit runs compare as numbers ("m2" < "m10"). */
bool cli_natural_less(const char *a, const char *b);

/* First letter upper-cased, as Docker's PrettyPrint ("ready" -> "Ready"). */
void cli_format_capitalized(const char *s, char *buf, size_t size);

/* Number of UTF-8 characters in s. */
size_t cli_utf8_len(const char *s);

/* s escaped for a terminal (escape.h: control characters as \x1b, \n...),
 * for printing a string a user or a node chose. The result lives until
 * CLI_ESC_RING more calls, enough for one printf's arguments. NULL -> "".
 * Table cells are escaped by cli_table_add already. */
#define CLI_ESC_RING 16
const char *cli_esc(const char *s);

#endif
