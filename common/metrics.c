/* The metrics registry and its text exposition (metrics.h). */
#include "metrics.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "vec.h"

const double metrics_default_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                          0.5,   1,    2.5,   5,    10};
const size_t metrics_n_default_buckets =
    sizeof(metrics_default_buckets) / sizeof(metrics_default_buckets[0]);

struct metrics_series {
    char *values[METRICS_MAX_LABELS];
    double value; /* counter, gauge; a histogram's sum */
    uint64_t count;
    uint64_t buckets[METRICS_MAX_BUCKETS]; /* not cumulative */
};

struct metrics_family {
    struct metrics *reg;
    enum metrics_type type;
    char *name;
    char *help;
    size_t n_labels;
    char *labels[METRICS_MAX_LABELS];
    size_t n_buckets;
    double bounds[METRICS_MAX_BUCKETS];
    VEC(struct metrics_series *) series;
};

struct metrics {
    VEC(struct metrics_family *) families;
    size_t dropped;
};

int metrics_new(struct metrics **out)
{
    *out = calloc(1, sizeof(**out));
    return *out != NULL ? 0 : SWARM_ENOMEM;
}

static void series_free(struct metrics_series *s, size_t n_labels)
{
    for (size_t i = 0; i < n_labels; i++) {
        free(s->values[i]);
    }
    free(s);
}

void metrics_family_clear(struct metrics_family *f)
{
    if (f == NULL) {
        return;
    }
    for (size_t i = 0; i < f->series.len; i++) {
        series_free(f->series.items[i], f->n_labels);
    }
    f->series.len = 0;
}

static void family_free(struct metrics_family *f)
{
    metrics_family_clear(f);
    vec_free(&f->series);
    for (size_t i = 0; i < f->n_labels; i++) {
        free(f->labels[i]);
    }
    free(f->name);
    free(f->help);
    free(f);
}

void metrics_free(struct metrics *r)
{
    if (r == NULL) {
        return;
    }
    for (size_t i = 0; i < r->families.len; i++) {
        family_free(r->families.items[i]);
    }
    vec_free(&r->families);
    free(r);
}

static bool name_ok(const char *s, bool colon)
{
    if (s == NULL || *s == '\0' || (*s >= '0' && *s <= '9')) {
        return false;
    }
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || (colon && c == ':'))) {
            return false;
        }
    }
    return true;
}

static bool family_args_ok(struct metrics *r, enum metrics_type type, const char *name,
                           size_t n_labels, const char *const *labels, const double *buckets,
                           size_t n_buckets)
{
    if (!name_ok(name, true) || n_labels > METRICS_MAX_LABELS ||
        (type == METRICS_HISTOGRAM && (n_buckets == 0 || n_buckets > METRICS_MAX_BUCKETS))) {
        return false;
    }
    for (size_t i = 0; i < n_labels; i++) {
        if (!name_ok(labels[i], false) || (type == METRICS_HISTOGRAM && !strcmp(labels[i], "le"))) {
            return false;
        }
    }
    for (size_t i = 1; type == METRICS_HISTOGRAM && i < n_buckets; i++) {
        if (!(buckets[i] > buckets[i - 1])) {
            return false;
        }
    }
    for (size_t i = 0; i < r->families.len; i++) {
        if (strcmp(r->families.items[i]->name, name) == 0) {
            return false;
        }
    }
    return true;
}

struct metrics_family *metrics_family_add(struct metrics *r, enum metrics_type type,
                                          const char *name, const char *help, size_t n_labels,
                                          const char *const *labels, const double *buckets,
                                          size_t n_buckets)
{
    if (!family_args_ok(r, type, name, n_labels, labels, buckets, n_buckets)) {
        return NULL;
    }
    struct metrics_family *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        return NULL;
    }
    f->reg = r;
    f->type = type;
    f->name = strdup(name);
    f->help = strdup(help != NULL ? help : "");
    bool ok = f->name != NULL && f->help != NULL;
    for (size_t i = 0; i < n_labels; i++) {
        f->labels[i] = strdup(labels[i]);
        f->n_labels = i + 1;
        ok = ok && f->labels[i] != NULL;
    }
    if (type == METRICS_HISTOGRAM) {
        f->n_buckets = n_buckets;
        memcpy(f->bounds, buckets, n_buckets * sizeof(*buckets));
    }
    if (!ok || vec_push(&r->families, f) != 0) {
        family_free(f);
        return NULL;
    }
    return f;
}

static bool series_matches(const struct metrics_family *f, const struct metrics_series *s,
                           const char *const *values)
{
    for (size_t i = 0; i < f->n_labels; i++) {
        if (strcmp(s->values[i], values[i] != NULL ? values[i] : "") != 0) {
            return false;
        }
    }
    return true;
}

static struct metrics_series *series_find(const struct metrics_family *f,
                                          const char *const *values)
{
    for (size_t i = 0; i < f->series.len; i++) {
        if (series_matches(f, f->series.items[i], values)) {
            return f->series.items[i];
        }
    }
    return NULL;
}

static struct metrics_series *series_get(struct metrics_family *f, const char *const *values)
{
    struct metrics_series *s = series_find(f, values);
    if (s != NULL) {
        return s;
    }
    s = calloc(1, sizeof(*s));
    bool ok = s != NULL;
    for (size_t i = 0; ok && i < f->n_labels; i++) {
        s->values[i] = strdup(values[i] != NULL ? values[i] : "");
        ok = s->values[i] != NULL;
    }
    if (!ok || vec_push(&f->series, s) != 0) {
        if (s != NULL) {
            series_free(s, f->n_labels);
        }
        f->reg->dropped++;
        return NULL;
    }
    return s;
}

void metrics_counter_add(struct metrics_family *f, const char *const *values, double v)
{
    struct metrics_series *s;
    if (f != NULL && f->type == METRICS_COUNTER && v >= 0 && (s = series_get(f, values)) != NULL) {
        s->value += v;
    }
}

void metrics_gauge_set(struct metrics_family *f, const char *const *values, double v)
{
    struct metrics_series *s;
    if (f != NULL && f->type == METRICS_GAUGE && (s = series_get(f, values)) != NULL) {
        s->value = v;
    }
}

void metrics_gauge_add(struct metrics_family *f, const char *const *values, double v)
{
    struct metrics_series *s;
    if (f != NULL && f->type == METRICS_GAUGE && (s = series_get(f, values)) != NULL) {
        s->value += v;
    }
}

void metrics_histogram_observe(struct metrics_family *f, const char *const *values, double v)
{
    struct metrics_series *s;
    if (f == NULL || f->type != METRICS_HISTOGRAM || isnan(v) ||
        (s = series_get(f, values)) == NULL) {
        return;
    }
    for (size_t i = 0; i < f->n_buckets; i++) {
        if (v <= f->bounds[i]) {
            s->buckets[i]++;
            break;
        }
    }
    s->count++;
    s->value += v;
}

double metrics_value(const struct metrics_family *f, const char *const *values)
{
    const struct metrics_series *s = f != NULL ? series_find(f, values) : NULL;
    if (s == NULL) {
        return 0;
    }
    return f->type == METRICS_HISTOGRAM ? (double)s->count : s->value;
}

size_t metrics_dropped(const struct metrics *r)
{
    return r->dropped;
}

/* ------------------------------------------------------------ exposition */

struct mbuf {
    char *p;
    size_t len, cap;
    bool failed;
};

static void mbuf_reserve(struct mbuf *b, size_t more)
{
    if (b->failed || b->len + more + 1 <= b->cap) {
        return;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more + 1) {
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (p == NULL) {
        b->failed = true;
        return;
    }
    b->p = p;
    b->cap = cap;
}

static void mbuf_putc(struct mbuf *b, char c)
{
    mbuf_reserve(b, 1);
    if (!b->failed) {
        b->p[b->len++] = c;
        b->p[b->len] = '\0';
    }
}

__attribute__((format(printf, 2, 3))) static void mbuf_printf(struct mbuf *b, const char *fmt,
                                                              ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    mbuf_reserve(b, (size_t)n);
    if (b->failed) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* HELP text escapes \ and newline; label values also escape ". */
static void mbuf_escaped(struct mbuf *b, const char *s, bool quote)
{
    for (; *s; s++) {
        if (*s == '\\') {
            mbuf_printf(b, "\\\\");
        } else if (*s == '\n') {
            mbuf_printf(b, "\\n");
        } else if (quote && *s == '"') {
            mbuf_printf(b, "\\\"");
        } else {
            mbuf_putc(b, *s);
        }
    }
}

static void mbuf_number(struct mbuf *b, double v)
{
    if (isnan(v)) {
        mbuf_printf(b, "NaN");
    } else if (isinf(v)) {
        mbuf_printf(b, v > 0 ? "+Inf" : "-Inf");
    } else {
        mbuf_printf(b, "%.15g", v);
    }
}

/* name{l1="v1",...[,le="x"]} value */
static void render_sample(struct mbuf *b, const struct metrics_family *f,
                          const struct metrics_series *s, const char *suffix, const char *le,
                          double v)
{
    mbuf_printf(b, "%s%s", f->name, suffix);
    if (f->n_labels > 0 || le != NULL) {
        mbuf_putc(b, '{');
        for (size_t i = 0; i < f->n_labels; i++) {
            mbuf_printf(b, "%s%s=\"", i ? "," : "", f->labels[i]);
            mbuf_escaped(b, s->values[i], true);
            mbuf_putc(b, '"');
        }
        if (le != NULL) {
            mbuf_printf(b, "%sle=\"%s\"", f->n_labels ? "," : "", le);
        }
        mbuf_putc(b, '}');
    }
    mbuf_putc(b, ' ');
    mbuf_number(b, v);
    mbuf_putc(b, '\n');
}

static void render_histogram(struct mbuf *b, const struct metrics_family *f,
                             const struct metrics_series *s)
{
    uint64_t cum = 0;
    char le[64];
    for (size_t i = 0; i < f->n_buckets; i++) {
        cum += s->buckets[i];
        snprintf(le, sizeof(le), "%.15g", f->bounds[i]);
        render_sample(b, f, s, "_bucket", le, (double)cum);
    }
    render_sample(b, f, s, "_bucket", "+Inf", (double)s->count);
    render_sample(b, f, s, "_sum", NULL, s->value);
    render_sample(b, f, s, "_count", NULL, (double)s->count);
}

static const char *type_name(enum metrics_type t)
{
    return t == METRICS_COUNTER ? "counter" : t == METRICS_GAUGE ? "gauge" : "histogram";
}

int metrics_render(const struct metrics *r, char **out, size_t *len)
{
    struct mbuf b = {0};
    mbuf_reserve(&b, 0);
    for (size_t i = 0; i < r->families.len; i++) {
        const struct metrics_family *f = r->families.items[i];
        mbuf_printf(&b, "# HELP %s ", f->name);
        mbuf_escaped(&b, f->help, false);
        mbuf_printf(&b, "\n# TYPE %s %s\n", f->name, type_name(f->type));
        for (size_t j = 0; j < f->series.len; j++) {
            if (f->type == METRICS_HISTOGRAM) {
                render_histogram(&b, f, f->series.items[j]);
            } else {
                render_sample(&b, f, f->series.items[j], "", NULL, f->series.items[j]->value);
            }
        }
    }
    if (b.failed) {
        free(b.p);
        return SWARM_ENOMEM;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}
