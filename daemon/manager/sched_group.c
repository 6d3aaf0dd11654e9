/* Placing one group of pending tasks (same service, same placement spec):
 * candidates, the preference tree, the per-leaf heaps. See the comment at
 * the top of scheduler.c for why it is shaped this way. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "sched_int.h"

#define LABEL_PREFIX "node.labels."

/* ---- groups -------------------------------------------------------------- */

static const Swarm__Placement *task_placement(const Swarm__Task *t)
{
    return t->spec != NULL ? t->spec->placement : NULL;
}

int sched_group_init(struct sched *s, struct sched_group *g, const Swarm__Task *t)
{
    const Swarm__Resources *r = sched_task_reservations(t);
    const Swarm__Placement *p = task_placement(t);
    char errmsg[SWARM_ERRMSG_SIZE];

    memset(g, 0, sizeof *g);
    g->rep = t;
    g->first = g->last = SCHED_NO_TASK;
    /* Negative reservations are refused by the API; never let one free room. */
    g->cpu = r != NULL && r->nano_cpus > 0 ? r->nano_cpus : 0;
    g->mem = r != NULL && r->memory_bytes > 0 ? r->memory_bytes : 0;
    g->runtime = sched_runtime_bit(t->spec != NULL ? t->spec->runtime : NULL);
    g->networked = sched_task_networked(t);
    if (p != NULL) {
        g->max_replicas = p->max_replicas;
        /* The API validated them; should a bad one slip through, swarmkit
         * treats the filter as off, and so do we. */
        if (p->n_constraints > 0 &&
            constraint_parse_all(p->constraints, p->n_constraints, &g->constraints, errmsg) == 0) {
            g->n_constraints = p->n_constraints;
        }
        g->prefs = calloc(p->n_preferences + 1, sizeof *g->prefs);
        if (g->prefs == NULL) {
            goto err;
        }
        for (size_t i = 0; i < p->n_preferences; i++) {
            const char *d = p->preferences[i]->spread_descriptor;
            if (d != NULL && strncasecmp(d, LABEL_PREFIX, strlen(LABEL_PREFIX)) == 0 &&
                d[strlen(LABEL_PREFIX)] != '\0') {
                g->prefs[g->n_prefs++] = d + strlen(LABEL_PREFIX);
            }
        }
    }
    g->svc = sched_service_get(s, t->service_id, true);
    if (g->svc == NULL) {
        goto err;
    }
    return 0;
err:
    sched_group_fini(g);
    return SWARM_ENOMEM;
}

void sched_group_fini(struct sched_group *g)
{
    free(g->constraints);
    free(g->prefs);
    g->constraints = NULL;
    g->prefs = NULL;
}

static bool strs_equal(char *const *a, size_t na, char *const *b, size_t nb)
{
    if (na != nb) {
        return false;
    }
    for (size_t i = 0; i < na; i++) {
        if (strcmp(a[i] ? a[i] : "", b[i] ? b[i] : "") != 0) {
            return false;
        }
    }
    return true;
}

/* Same placement-relevant spec as the group's first task. */
static bool group_accepts(const struct sched_group *g, const Swarm__Task *t)
{
    const Swarm__Placement *a = task_placement(g->rep), *b = task_placement(t);
    const Swarm__Resources *ra = sched_task_reservations(g->rep), *rb = sched_task_reservations(t);
    if (g->rep->spec == t->spec) {
        return true;
    }
    if (sched_runtime_bit(t->spec != NULL ? t->spec->runtime : NULL) != g->runtime ||
        sched_task_networked(t) != g->networked) {
        return false;
    }
    if ((ra ? ra->nano_cpus : 0) != (rb ? rb->nano_cpus : 0) ||
        (ra ? ra->memory_bytes : 0) != (rb ? rb->memory_bytes : 0)) {
        return false;
    }
    if (a == NULL || b == NULL) {
        return (a == NULL || (a->n_constraints == 0 && a->n_preferences == 0 &&
                              a->max_replicas == 0)) &&
               (b == NULL || (b->n_constraints == 0 && b->n_preferences == 0 &&
                              b->max_replicas == 0));
    }
    if (a->max_replicas != b->max_replicas || a->n_preferences != b->n_preferences ||
        !strs_equal(a->constraints, a->n_constraints, b->constraints, b->n_constraints)) {
        return false;
    }
    for (size_t i = 0; i < a->n_preferences; i++) {
        const char *x = a->preferences[i]->spread_descriptor;
        const char *y = b->preferences[i]->spread_descriptor;
        if (strcmp(x ? x : "", y ? y : "") != 0) {
            return false;
        }
    }
    return true;
}

static int groups_push(struct sched *s, const Swarm__Task *t, struct sched_group **groups,
                       size_t *n, size_t *cap)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        struct sched_group *p = realloc(*groups, c * sizeof *p);
        if (p == NULL) {
            return SWARM_ENOMEM;
        }
        *groups = p;
        *cap = c;
    }
    if (sched_group_init(s, &(*groups)[*n], t) != 0) {
        return SWARM_ENOMEM;
    }
    (*n)++;
    return 0;
}

/* The group of t, made if needed; its index, or -1 when out of memory. */
static long group_find(struct sched *s, const Swarm__Task *t, struct sched_group **groups,
                       size_t *n, size_t *cap)
{
    struct sched_service *svc =
        sched_map_get(&s->services, t->service_id != NULL ? t->service_id : "");
    size_t prev = 0;
    if (svc != NULL) {
        for (size_t gi = svc->group; gi != 0; gi = (*groups)[gi - 1].next_same) {
            if (group_accepts(&(*groups)[gi - 1], t)) {
                return (long)gi - 1;
            }
            prev = gi;
        }
    }
    if (groups_push(s, t, groups, n, cap) != 0) {
        return -1;
    }
    svc = (*groups)[*n - 1].svc;
    if (prev != 0) {
        (*groups)[prev - 1].next_same = *n;
    } else {
        svc->group = *n;
    }
    return (long)*n - 1;
}

int sched_group_tasks(struct sched *s, Swarm__Task *const *tasks, size_t n,
                      struct sched_group **groups_out, size_t *n_groups, uint32_t **next_out)
{
    struct sched_group *groups = NULL;
    size_t ng = 0, cap = 0;
    uint32_t *next = malloc((n > 0 ? n : 1) * sizeof *next);
    int rv = 0;

    if (next == NULL) {
        return SWARM_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const Swarm__Task *t = tasks[i];
        long gi;
        next[i] = SCHED_NO_TASK;
        if (t->node_id != NULL && t->node_id[0] != '\0') {
            continue;
        }
        gi = group_find(s, t, &groups, &ng, &cap);
        if (gi < 0) {
            rv = SWARM_ENOMEM;
            break;
        }
        struct sched_group *g = &groups[gi];
        if (g->last == SCHED_NO_TASK) {
            g->first = (uint32_t)i;
        } else {
            next[g->last] = (uint32_t)i;
        }
        g->last = (uint32_t)i;
    }
    for (size_t i = 0; i < ng; i++) {
        groups[i].svc->group = 0;
    }
    if (rv != 0) {
        for (size_t i = 0; i < ng; i++) {
            sched_group_fini(&groups[i]);
        }
        free(groups);
        free(next);
        return rv;
    }
    *groups_out = groups;
    *n_groups = ng;
    *next_out = next;
    return 0;
}

/* ---- the candidates' heap ------------------------------------------------ */

/* Better first: not failed here recently, fewest of this service, fewest
 * overall, lowest node ID. */
static bool node_before(const struct sched *s, uint32_t a, uint32_t b)
{
    if (s->scratch_failed[a] != s->scratch_failed[b]) {
        return s->scratch_failed[a] < s->scratch_failed[b];
    }
    if (s->scratch_count[a] != s->scratch_count[b]) {
        return s->scratch_count[a] < s->scratch_count[b];
    }
    if (s->nodes[a].total != s->nodes[b].total) {
        return s->nodes[a].total < s->nodes[b].total;
    }
    return a < b;
}

static void heap_sift_down(const struct sched *s, uint32_t *h, uint32_t len, uint32_t i)
{
    uint32_t v = h[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= len) {
            break;
        }
        if (c + 1 < len && node_before(s, h[c + 1], h[c])) {
            c++;
        }
        if (!node_before(s, h[c], v)) {
            break;
        }
        h[i] = h[c];
        i = c;
    }
    h[i] = v;
}

static void heap_build(const struct sched *s, uint32_t *h, uint32_t len)
{
    for (uint32_t i = len / 2; i-- > 0;) {
        heap_sift_down(s, h, len, i);
    }
}

/* ---- the preference tree ------------------------------------------------- */

/* With no preference the tree is one leaf holding every candidate. Each
 * level below splits by one label's value, in value order, nodes without
 * the label last. */
struct ptree {
    uint32_t parent;         /* UINT32_MAX at the root */
    uint32_t first_child, n_children;
    uint32_t lo, len;        /* leaf: its heap is scratch_heap[lo, lo + len) */
    uint64_t count;          /* tasks of the service on its nodes */
    bool exhausted;
};

struct tree_build {
    struct sched *s;
    const struct sched_group *g;
    const char **vals;       /* [candidate position * n_prefs + level], NULL: no label */
    uint32_t *order;         /* candidate positions, sorted */
    uint32_t *cand;          /* position -> node index */
    struct ptree *t;
    uint32_t n;
};

static const char *node_label(const Swarm__Node *node, const char *key)
{
    const Swarm__Annotations *a = node->spec != NULL ? node->spec->annotations : NULL;
    for (size_t i = 0; a != NULL && i < a->n_labels; i++) {
        if (a->labels[i]->key != NULL && strcmp(a->labels[i]->key, key) == 0) {
            return a->labels[i]->value != NULL ? a->labels[i]->value : "";
        }
    }
    return NULL;
}

static int val_cmp(const char *a, const char *b)
{
    if (a == NULL || b == NULL) {
        return (a == NULL) - (b == NULL);
    }
    return strcmp(a, b);
}

static int order_cmp(const void *pa, const void *pb, void *arg)
{
    const struct tree_build *b = arg;
    uint32_t x = *(const uint32_t *)pa, y = *(const uint32_t *)pb;
    for (size_t l = 0; l < b->g->n_prefs; l++) {
        int c = val_cmp(b->vals[x * b->g->n_prefs + l], b->vals[y * b->g->n_prefs + l]);
        if (c != 0) {
            return c;
        }
    }
    return (x > y) - (x < y);
}

/* Fill tree node `at` for sorted positions [lo, hi) at `level`. */
static void tree_fill(struct tree_build *b, uint32_t at, uint32_t parent, size_t level,
                      uint32_t lo, uint32_t hi)
{
    struct ptree *t = &b->t[at];
    size_t np = b->g->n_prefs;
    memset(t, 0, sizeof *t);
    t->parent = parent;
    t->lo = lo;
    t->len = hi - lo;
    for (uint32_t i = lo; i < hi; i++) {
        t->count += b->s->scratch_count[b->s->scratch_heap[i]];
    }
    if (level == np) {
        heap_build(b->s, b->s->scratch_heap + lo, hi - lo);
        return;
    }
    /* Children sit side by side; their own children go after them. */
    t->first_child = b->n;
    for (uint32_t i = lo; i < hi; i++) {
        if (i == lo || val_cmp(b->vals[b->order[i] * np + level],
                               b->vals[b->order[i - 1] * np + level]) != 0) {
            t->n_children++;
        }
    }
    b->n += t->n_children;
    uint32_t child = b->t[at].first_child, start = lo;
    for (uint32_t i = lo + 1; i <= hi; i++) {
        if (i == hi || val_cmp(b->vals[b->order[i] * np + level],
                               b->vals[b->order[i - 1] * np + level]) != 0) {
            tree_fill(b, child++, at, level + 1, start, i);
            start = i;
        }
    }
}

/* Builds the tree over the candidates in scratch_heap[0, n). */
static struct ptree *tree_build(struct sched *s, const struct sched_group *g, uint32_t n)
{
    struct tree_build b = {.s = s, .g = g};
    size_t np = g->n_prefs;
    b.t = calloc((np + 1) * (size_t)n + 1, sizeof *b.t);
    if (b.t == NULL) {
        return NULL;
    }
    b.n = 1;
    if (np > 0 && n > 0) {
        b.vals = malloc((size_t)n * np * sizeof *b.vals);
        b.order = malloc(n * sizeof *b.order);
        b.cand = malloc(n * sizeof *b.cand);
        if (b.vals == NULL || b.order == NULL || b.cand == NULL) {
            free(b.vals);
            free(b.order);
            free(b.cand);
            free(b.t);
            return NULL;
        }
        for (uint32_t i = 0; i < n; i++) {
            b.cand[i] = s->scratch_heap[i];
            b.order[i] = i;
            for (size_t l = 0; l < np; l++) {
                b.vals[i * np + l] = node_label(s->nodes[b.cand[i]].node, g->prefs[l]);
            }
        }
        qsort_r(b.order, n, sizeof *b.order, order_cmp, &b);
        for (uint32_t i = 0; i < n; i++) {
            s->scratch_heap[i] = b.cand[b.order[i]];
        }
    }
    tree_fill(&b, 0, UINT32_MAX, np > 0 && n > 0 ? 0 : np, 0, n);
    free(b.vals);
    free(b.order);
    free(b.cand);
    return b.t;
}

static void tree_exhaust(struct ptree *t, uint32_t at)
{
    for (;;) {
        t[at].exhausted = true;
        at = t[at].parent;
        if (at == UINT32_MAX) {
            return;
        }
        for (uint32_t c = 0; c < t[at].n_children; c++) {
            if (!t[t[at].first_child + c].exhausted) {
                return;
            }
        }
    }
}

/* Only the filters that change as tasks land: the static ones were applied
 * when the candidates were chosen. */
static bool still_fits(const struct sched *s, const struct sched_group *g, uint32_t idx)
{
    const struct sched_node *sn = &s->nodes[idx];
    if ((g->cpu > 0 || g->mem > 0) && (g->cpu > sn->cpu_free || g->mem > sn->mem_free)) {
        return false;
    }
    for (size_t i = 0; i < g->svc->n_ports; i++) {
        for (size_t j = 0; j < sn->n_ports; j++) {
            if (sn->ports[j] == g->svc->ports[i]) {
                return false;
            }
        }
    }
    return g->max_replicas == 0 || s->scratch_count[idx] < g->max_replicas;
}

/* The best node for the next task of g, assigned; false when none fits. */
static bool tree_place(struct sched *s, const struct sched_group *g, struct ptree *t,
                       struct sched_decision *out)
{
    while (!t[0].exhausted) {
        uint32_t at = 0;
        while (t[at].n_children > 0) {
            uint32_t best = UINT32_MAX;
            for (uint32_t c = t[at].first_child; c < t[at].first_child + t[at].n_children; c++) {
                if (!t[c].exhausted && (best == UINT32_MAX || t[c].count < t[best].count)) {
                    best = c;
                }
            }
            at = best;
        }
        uint32_t *h = s->scratch_heap + t[at].lo;
        while (t[at].len > 0) {
            uint32_t idx = h[0];
            if (still_fits(s, g, idx)) {
                sched_assign(s, g, idx, out);
                heap_sift_down(s, h, t[at].len, 0);
                for (uint32_t p = at; p != UINT32_MAX; p = t[p].parent) {
                    t[p].count++;
                }
                return true;
            }
            /* Resources, ports and counts only tighten during a pass. */
            h[0] = h[--t[at].len];
            heap_sift_down(s, h, t[at].len, 0);
        }
        tree_exhaust(t, at);
    }
    return false;
}

/* ---- one group ----------------------------------------------------------- */

static void scratch_load(struct sched *s, const struct sched_service *svc, int64_t now_ms)
{
    for (size_t i = 0; i < svc->n_task_nodes; i++) {
        s->scratch_count[svc->task_nodes[i]]++;
    }
    for (size_t i = 0; i < svc->n_failures; i++) {
        if (svc->failures[i].when_ms > now_ms - SCHED_FAILURE_WINDOW_MS) {
            s->scratch_failed[svc->failures[i].node] = 1;
        }
    }
}

static void scratch_reset(struct sched *s, const struct sched_service *svc)
{
    for (size_t i = 0; i < svc->n_task_nodes; i++) {
        s->scratch_count[svc->task_nodes[i]] = 0;
    }
    for (size_t i = 0; i < svc->n_failures; i++) {
        s->scratch_failed[svc->failures[i].node] = 0;
    }
}

int sched_group_place(struct sched *s, struct sched_group *g, const uint32_t *next,
                      int64_t now_ms, struct sched_decision *out)
{
    struct ptree *t;
    uint32_t n = 0, i = g->first;

    scratch_load(s, g->svc, now_ms);
    /* The static filters, once per group. */
    for (uint32_t idx = 0; idx < s->n_nodes; idx++) {
        if (s->nodes[idx].available && (s->nodes[idx].runtimes & g->runtime) != 0 &&
            (!g->networked || s->nodes[idx].networking) &&
            constraint_match_all(g->constraints, g->n_constraints, s->nodes[idx].node)) {
            s->scratch_heap[n++] = idx;
        }
    }
    t = tree_build(s, g, n);
    if (t == NULL) {
        scratch_reset(s, g->svc);
        return SWARM_ENOMEM;
    }
    for (; i != SCHED_NO_TASK; i = next[i]) {
        if (!tree_place(s, g, t, &out[i])) {
            break;
        }
    }
    if (i != SCHED_NO_TASK) {
        /* Nothing fits any more, and nothing will in this pass: one reason
         * for all the group's remaining tasks. */
        char reason[SCHED_REASON_LEN];
        sched_group_reason(s, g, reason);
        for (; i != SCHED_NO_TASK; i = next[i]) {
            out[i].node_id = NULL;
            memcpy(out[i].reason, reason, sizeof reason);
        }
    }
    free(t);
    scratch_reset(s, g->svc);
    return 0;
}
