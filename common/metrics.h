/* A metrics registry and its Prometheus text exposition (format 0.0.4).
 *
 * A registry holds families (one metric name each: a counter, a gauge or a
 * histogram with fixed buckets) and, in each family, one series per set of
 * label values. Series are created on first use and kept in first-use order;
 * a family of values computed at scrape time (nodes by state, ...) is emptied
 * with metrics_family_clear() before it is refilled.
 *
 *   struct metrics_family *f = metrics_family_add(reg, METRICS_COUNTER,
 *       "grpc_server_handled_total", "RPCs completed.", 2,
 *       (const char *[]){"grpc_method", "grpc_code"}, NULL, 0);
 *   metrics_counter_add(f, (const char *[]){"/x.Y/Z", "OK"}, 1);
 *
 * Pure: no I/O, no clock, no locks (every caller is on one loop thread).
 * Ownership: the registry owns its families and series; names, help texts
 * and label names are copied, so are label values. Updates never fail the
 * caller: a series that cannot be allocated is dropped (and counted in
 * metrics_dropped()), since losing one sample must not fail an RPC. */
#ifndef SWARM_COMMON_METRICS_H
#define SWARM_COMMON_METRICS_H

#include <stddef.h>

#define METRICS_MAX_LABELS 4
#define METRICS_MAX_BUCKETS 16

enum metrics_type { METRICS_COUNTER, METRICS_GAUGE, METRICS_HISTOGRAM };

struct metrics;
struct metrics_family;

/* Prometheus' default buckets (seconds): .005 .. 10. */
extern const double metrics_default_buckets[];
extern const size_t metrics_n_default_buckets;

int metrics_new(struct metrics **out);
void metrics_free(struct metrics *r);

/* Add a family. `labels` holds n_labels label names (<= METRICS_MAX_LABELS);
 * a histogram takes n_buckets increasing upper bounds (+Inf is implicit).
 * Returns NULL on a programmer error (a bad name, too many labels or
 * buckets, a name already used) or when out of memory. */
struct metrics_family *metrics_family_add(struct metrics *r, enum metrics_type type,
                                          const char *name, const char *help, size_t n_labels,
                                          const char *const *labels, const double *buckets,
                                          size_t n_buckets);

/* `values` holds the family's n_labels label values (NULL when it has none).
 * A NULL family is ignored, so an instrumented call site works before the
 * registry is set up (unit tests). */
void metrics_counter_add(struct metrics_family *f, const char *const *values, double v);
void metrics_gauge_set(struct metrics_family *f, const char *const *values, double v);
void metrics_gauge_add(struct metrics_family *f, const char *const *values, double v);
void metrics_histogram_observe(struct metrics_family *f, const char *const *values, double v);

/* Drop every series of the family (its values are recomputed next). */
void metrics_family_clear(struct metrics_family *f);

/* The current value of a counter or gauge series, or a histogram's count;
 * 0 when the series does not exist. For tests and collectors. */
double metrics_value(const struct metrics_family *f, const char *const *values);

/* Series dropped for lack of memory since the registry was made. */
size_t metrics_dropped(const struct metrics *r);

/* Write the whole registry in the text format, families in the order they
 * were added. *out is malloc'd, NUL-terminated, the caller's to free.
 * Returns 0 or SWARM_ENOMEM. */
int metrics_render(const struct metrics *r, char **out, size_t *len);

#endif
