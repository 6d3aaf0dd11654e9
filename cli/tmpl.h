/* A subset of Go's text/template, as Docker's --format uses it: parse a
 * template once, then execute it against a small tree of values (strings,
 * numbers, bools, lists, maps/structs with ordered keys).
 *
 * Supported: text and {{actions}} with the {{- and -}} trim markers,
 * comments, field paths (.Spec.Name, ., $, $var.Field), variables
 * ({{$x := pipeline}}, range $i, $v := ...), pipelines (a | f b), parenthesized
 * pipelines, string/raw string/number/bool/nil literals, if / else if / else /
 * range / with / end, break and continue, and the functions Docker's
 * templates offer: json, index, join, split, lower, upper, title, truncate,
 * pad, println, plus Go's builtins len, not, and, or, eq, ne, lt, le, gt, ge,
 * print and printf (tmpl_printf.c: the common verbs, flags, width and
 * precision). Not supported: define/template/block, method calls with
 * arguments, complex and character constants.
 *
 * Errors follow Go's wording and always carry line:column (column = byte
 * offset in the line, 0-based, as Go's exec errors):
 *   template: :1:7: unexpected "}" in operand
 *   template: :1:2: executing "" at <.Nope>: can't evaluate field Nope in
 *   type *service.serviceContext
 *
 * Pure: no I/O beyond the FILE * a caller passes in. */
#ifndef SWARM_CLI_TMPL_H
#define SWARM_CLI_TMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"

/* ------------------------------------------------------------------ values */

enum tmpl_kind {
    TMPL_NOVALUE, /* a missing map entry: prints "<no value>" */
    TMPL_NIL,
    TMPL_BOOL,
    TMPL_INT,
    TMPL_FLOAT,
    TMPL_STRING,
    TMPL_LIST,
    TMPL_MAP,
};

/* map flags */
#define TMPL_MAP_SORTED 1u  /* a Go map: range and json in key order */
#define TMPL_MAP_STRINGS 2u /* map[string]string: index of a missing key is "" */

struct tmpl_value {
    enum tmpl_kind kind;
    bool b;
    int64_t i;
    double f;
    char *s;                   /* TMPL_STRING, NUL-terminated */
    struct tmpl_value **items; /* list items, map values */
    char **keys;               /* map keys, in insertion order */
    size_t n, cap;
    /* TMPL_MAP: a Go struct's type name for errors ("*service.serviceContext"),
     * unknown fields are errors; NULL: a Go map, unknown keys give
     * "<no value>" (or an error with missingkey=error). */
    const char *type_name;
    unsigned map_flags;
    bool is_unsigned;  /* TMPL_INT holding a uint64 (i is its bits) */
    bool is_duration;  /* TMPL_INT of nanoseconds, a Go time.Duration: prints
                          as "1m30s", is a number in json */
    bool strings_list; /* a []string (split), for errors and join */
    bool omitempty;    /* left out of json (Docker's omitempty) */
};

/* Constructors; allocation failure exits the CLI (cli/format.c's policy).
 * The tree owns what is added to it: free the root only. */
struct tmpl_value *tmpl_value_nil(void);
struct tmpl_value *tmpl_value_bool(bool b);
struct tmpl_value *tmpl_value_int(int64_t i);
struct tmpl_value *tmpl_value_uint(uint64_t u);
struct tmpl_value *tmpl_value_float(double f);
struct tmpl_value *tmpl_value_string(const char *s);
struct tmpl_value *tmpl_value_list(void);
struct tmpl_value *tmpl_value_map(const char *type_name, unsigned flags);
/* Append `item` (taken) to a list. Returns `item`. */
struct tmpl_value *tmpl_list_append(struct tmpl_value *list, struct tmpl_value *item);
/* Add key -> `v` (taken) to a map; a key already there is replaced.
 * Returns `v`. */
struct tmpl_value *tmpl_map_set(struct tmpl_value *map, const char *key, struct tmpl_value *v);
/* Shorthands: tmpl_map_set(map, key, tmpl_value_string(s)) etc. */
void tmpl_map_set_string(struct tmpl_value *map, const char *key, const char *s);
void tmpl_map_set_bool(struct tmpl_value *map, const char *key, bool b);
/* The value under `key`, or NULL. */
struct tmpl_value *tmpl_map_get(const struct tmpl_value *map, const char *key);
void tmpl_value_free(struct tmpl_value *v);

/* Compact JSON, as Docker's {{json .}} (Go's encoder, HTML not escaped):
 * structs keep their key order, Go maps are sorted by key. */
void tmpl_value_print_json(FILE *out, const struct tmpl_value *v);
/* The same, indented as inspect prints (2 spaces per level, Go's
 * MarshalIndent layout), the first line at `level`; no trailing newline. */
void tmpl_value_print_json_indent(FILE *out, const struct tmpl_value *v, int level);

/* --------------------------------------------------------------- templates */

struct tmpl;

/* Functions for the table header (Docker's HeaderFunctions): json, split,
 * join, title, lower, upper and truncate return their first argument. */
#define TMPL_EXEC_HEADER 1u
/* missingkey=error: a missing map key is an error, as Docker's inspect. */
#define TMPL_EXEC_MISSINGKEY_ERROR 2u

/* Parse `text`. Returns the template, or NULL with Go's message in errmsg
 * ("template: :1:7: unexpected \"}\" in operand"). errmsg: SWARM_ERRMSG_SIZE
 * bytes (common/err.h), as every errmsg below. */
struct tmpl *tmpl_parse(const char *text, char *errmsg);

/* Execute against `dot`, writing to `out`. Returns 0, or SWARM_EINVAL
 * with Go's message in errmsg; what was written before the error stays
 * written. */
int tmpl_execute(const struct tmpl *t, FILE *out, const struct tmpl_value *dot,
                 unsigned flags, char *errmsg);

void tmpl_free(struct tmpl *t);

#endif
