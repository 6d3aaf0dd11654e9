/* Unit tests of common/metrics.h: the registry and its text exposition
 * (Prometheus format 0.0.4), escaping of label values and help texts,
 * histogram buckets, and the catalog's RPC labels (smetrics.h). */
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "smetrics.h"
#include "test.h"

static char *render(struct metrics *r)
{
    char *out = NULL;
    size_t len = 0;
    if (metrics_render(r, &out, &len) != 0 || strlen(out) != len) {
        test_fail_(__FILE__, __LINE__, "metrics_render failed");
    }
    return out;
}

TEST(metrics_counter_and_gauge_exposition)
{
    struct metrics *r;
    ASSERT_INT_EQ(metrics_new(&r), 0);
    struct metrics_family *c = metrics_family_add(r, METRICS_COUNTER, "x_total", "Things.", 2,
                                                  (const char *[]){"a", "b"}, NULL, 0);
    struct metrics_family *g =
        metrics_family_add(r, METRICS_GAUGE, "x_gauge", "A gauge.", 0, NULL, NULL, 0);
    ASSERT(c != NULL && g != NULL);
    metrics_counter_add(c, (const char *[]){"1", "2"}, 1);
    metrics_counter_add(c, (const char *[]){"1", "2"}, 2);
    metrics_counter_add(c, (const char *[]){"3", "4"}, 1);
    metrics_counter_add(c, (const char *[]){"3", "4"}, -5); /* counters never go down */
    metrics_gauge_set(g, NULL, 7);
    metrics_gauge_add(g, NULL, -9.5);
    char *out = render(r);
    ASSERT_STR_EQ(out, "# HELP x_total Things.\n"
                       "# TYPE x_total counter\n"
                       "x_total{a=\"1\",b=\"2\"} 3\n"
                       "x_total{a=\"3\",b=\"4\"} 1\n"
                       "# HELP x_gauge A gauge.\n"
                       "# TYPE x_gauge gauge\n"
                       "x_gauge -2.5\n");
    ASSERT(metrics_value(c, (const char *[]){"1", "2"}) == 3);
    ASSERT(metrics_value(c, (const char *[]){"9", "9"}) == 0);
    free(out);
    metrics_free(r);
}

TEST(metrics_label_values_and_help_are_escaped)
{
    struct metrics *r;
    ASSERT_INT_EQ(metrics_new(&r), 0);
    struct metrics_family *g = metrics_family_add(r, METRICS_GAUGE, "esc", "a \\ b\nc \"q\"", 1,
                                                  (const char *[]){"v"}, NULL, 0);
    metrics_gauge_set(g, (const char *[]){"back\\slash \"quoted\"\nnew"}, 1);
    char *out = render(r);
    /* Help escapes \ and newline only; label values also escape ". */
    ASSERT_STR_EQ(out, "# HELP esc a \\\\ b\\nc \"q\"\n"
                       "# TYPE esc gauge\n"
                       "esc{v=\"back\\\\slash \\\"quoted\\\"\\nnew\"} 1\n");
    free(out);
    metrics_free(r);
}

TEST(metrics_histogram_buckets_are_cumulative)
{
    struct metrics *r;
    ASSERT_INT_EQ(metrics_new(&r), 0);
    struct metrics_family *h =
        metrics_family_add(r, METRICS_HISTOGRAM, "lat_seconds", "Latency.", 1,
                           (const char *[]){"m"}, (const double[]){0.1, 1}, 2);
    ASSERT(h != NULL);
    metrics_histogram_observe(h, (const char *[]){"x"}, 0.05);
    metrics_histogram_observe(h, (const char *[]){"x"}, 0.1); /* le is inclusive */
    metrics_histogram_observe(h, (const char *[]){"x"}, 0.5);
    metrics_histogram_observe(h, (const char *[]){"x"}, 7);
    char *out = render(r);
    ASSERT_STR_EQ(out, "# HELP lat_seconds Latency.\n"
                       "# TYPE lat_seconds histogram\n"
                       "lat_seconds_bucket{m=\"x\",le=\"0.1\"} 2\n"
                       "lat_seconds_bucket{m=\"x\",le=\"1\"} 3\n"
                       "lat_seconds_bucket{m=\"x\",le=\"+Inf\"} 4\n"
                       "lat_seconds_sum{m=\"x\"} 7.65\n"
                       "lat_seconds_count{m=\"x\"} 4\n");
    ASSERT(metrics_value(h, (const char *[]){"x"}) == 4);
    free(out);
    metrics_free(r);
}

TEST(metrics_clear_drops_series_keeps_family)
{
    struct metrics *r;
    ASSERT_INT_EQ(metrics_new(&r), 0);
    struct metrics_family *g = metrics_family_add(r, METRICS_GAUGE, "nodes", "N.", 1,
                                                  (const char *[]){"state"}, NULL, 0);
    metrics_gauge_set(g, (const char *[]){"ready"}, 3);
    metrics_family_clear(g);
    metrics_gauge_set(g, (const char *[]){"down"}, 1);
    char *out = render(r);
    ASSERT_STR_EQ(out, "# HELP nodes N.\n# TYPE nodes gauge\nnodes{state=\"down\"} 1\n");
    free(out);
    metrics_free(r);
}

TEST(metrics_bad_families_are_refused)
{
    struct metrics *r;
    ASSERT_INT_EQ(metrics_new(&r), 0);
    ASSERT(metrics_family_add(r, METRICS_GAUGE, "ok_name", "", 0, NULL, NULL, 0) != NULL);
    /* Same name twice, bad metric or label names, "le" on a histogram,
     * buckets out of order or missing, too many labels. */
    ASSERT(metrics_family_add(r, METRICS_COUNTER, "ok_name", "", 0, NULL, NULL, 0) == NULL);
    ASSERT(metrics_family_add(r, METRICS_GAUGE, "9bad", "", 0, NULL, NULL, 0) == NULL);
    ASSERT(metrics_family_add(r, METRICS_GAUGE, "bad-name", "", 0, NULL, NULL, 0) == NULL);
    ASSERT(metrics_family_add(r, METRICS_GAUGE, "g2", "", 1, (const char *[]){"a:b"}, NULL, 0) ==
           NULL);
    ASSERT(metrics_family_add(r, METRICS_HISTOGRAM, "h1", "", 1, (const char *[]){"le"},
                              (const double[]){1}, 1) == NULL);
    ASSERT(metrics_family_add(r, METRICS_HISTOGRAM, "h2", "", 0, NULL, (const double[]){2, 1},
                              2) == NULL);
    ASSERT(metrics_family_add(r, METRICS_HISTOGRAM, "h3", "", 0, NULL, NULL, 0) == NULL);
    ASSERT(metrics_family_add(r, METRICS_GAUGE, "g3", "", METRICS_MAX_LABELS + 1,
                              (const char *[]){"a", "b", "c", "d", "e"}, NULL, 0) == NULL);
    /* Updates through NULL or through a family of another type are ignored. */
    metrics_counter_add(NULL, NULL, 1);
    struct metrics_family *g = metrics_family_add(r, METRICS_GAUGE, "g4", "", 0, NULL, NULL, 0);
    metrics_counter_add(g, NULL, 1);
    metrics_histogram_observe(g, NULL, 1);
    ASSERT(metrics_value(g, NULL) == 0);
    metrics_free(r);
}

TEST(smetrics_rpc_labels_split_the_path)
{
    ASSERT_INT_EQ(smetrics_init(), 0);
    const struct smetrics_families *f = smetrics_families();
    smetrics_rpc_done("/docker.swarmkit.v1.Control/ListNodes", false, 0, smetrics_now_ns());
    smetrics_rpc_done("/docker.swarmkit.v1.Control/ListNodes", false, 0, smetrics_now_ns());
    smetrics_rpc_done("/docker.swarmkit.v1.Control/GetNode", false, 5, smetrics_now_ns());
    smetrics_rpc_done(NULL, false, 12, smetrics_now_ns()); /* unrouted: no client-chosen label */
    ASSERT(metrics_value(f->rpc_handled, (const char *[]){"unary", "docker.swarmkit.v1.Control",
                                                          "ListNodes", "OK"}) == 2);
    ASSERT(metrics_value(f->rpc_handled, (const char *[]){"unary", "docker.swarmkit.v1.Control",
                                                          "GetNode", "NotFound"}) == 1);
    ASSERT(metrics_value(f->rpc_handled,
                         (const char *[]){"unary", "unknown", "unknown", "Unimplemented"}) == 1);
    ASSERT(metrics_value(f->rpc_seconds, (const char *[]){"unary", "docker.swarmkit.v1.Control",
                                                          "ListNodes"}) == 2);
    smetrics_rpc_done("/swarm.Logs/SubscribeLogs", true, 0, smetrics_now_ns());
    ASSERT(metrics_value(f->rpc_handled, (const char *[]){"server_stream", "swarm.Logs",
                                                          "SubscribeLogs", "OK"}) == 1);
    ASSERT_STR_EQ(smetrics_grpc_code_name(16), "Unauthenticated");
    ASSERT_STR_EQ(smetrics_grpc_code_name(99), "Unknown");
    smetrics_shutdown();
    /* Before init (or after shutdown) instrumented calls do nothing. */
    smetrics_rpc_done("/a.B/C", false, 0, 0);
    smetrics_heartbeat();
    ASSERT(smetrics_registry() == NULL);
}

TEST_MAIN()
