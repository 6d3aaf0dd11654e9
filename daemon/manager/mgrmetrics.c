/* The manager's scrape-time metrics (mgrmetrics.h). */
#include "mgrmetrics.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "smetrics.h"
#include "swarm.pb-c.h"

/* "TASK_STATE_RUNNING" -> "running": Docker's lower-case state names. */
static const char *enum_label(const ProtobufCEnumDescriptor *d, int value, const char *prefix,
                              char *out, size_t size)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(d, value);
    size_t plen = strlen(prefix), i = 0;
    const char *name = v != NULL ? v->name : "unknown";
    if (strncmp(name, prefix, plen) == 0) {
        name += plen;
    }
    for (; name[i] != '\0' && i + 1 < size; i++) {
        out[i] = (char)tolower((unsigned char)name[i]);
    }
    out[i] = '\0';
    return out;
}

/* Every value of the enum, at 0, so a state with no object still shows. */
static void zero_all(struct metrics_family *f, const ProtobufCEnumDescriptor *d,
                     const char *prefix)
{
    char label[64];
    for (unsigned i = 0; i < d->n_values; i++) {
        metrics_gauge_set(f, (const char *[]){enum_label(d, d->values[i].value, prefix, label,
                                                         sizeof label)},
                          0);
    }
}

static void node_cb(int state, int availability, size_t n, void *data)
{
    const struct smetrics_families *fam = data;
    char label[64];
    metrics_gauge_add(fam->nodes,
                      (const char *[]){enum_label(&swarm__node_state__descriptor, state,
                                                  "NODE_STATE_", label, sizeof label)},
                      (double)n);
    metrics_gauge_add(fam->nodes_availability,
                      (const char *[]){enum_label(&swarm__node_availability__descriptor,
                                                  availability, "NODE_AVAILABILITY_", label,
                                                  sizeof label)},
                      (double)n);
}

static void task_cb(int state, int unused, size_t n, void *data)
{
    const struct smetrics_families *fam = data;
    char label[64];
    metrics_gauge_add(fam->tasks,
                      (const char *[]){enum_label(&swarm__task_state__descriptor, state,
                                                  "TASK_STATE_", label, sizeof label)},
                      (double)n);
}

void mgrmetrics_clear(void)
{
    const struct smetrics_families *fam = smetrics_families();
    if (fam == NULL) {
        return;
    }
    metrics_family_clear(fam->nodes);
    metrics_family_clear(fam->nodes_availability);
    metrics_family_clear(fam->tasks);
    metrics_family_clear(fam->services);
    metrics_family_clear(fam->raft_term);
    metrics_family_clear(fam->raft_commit_index);
    metrics_family_clear(fam->raft_applied_index);
    metrics_family_clear(fam->manager_leader);
}

void mgrmetrics_collect(struct store *store, struct rnode *raft)
{
    const struct smetrics_families *fam = smetrics_families();
    struct rnode_stats st;
    size_t n;
    mgrmetrics_clear();
    if (fam == NULL) {
        return;
    }
    if (raft != NULL) {
        rnode_stats(raft, &st);
        metrics_gauge_set(fam->raft_term, NULL, (double)st.term);
        metrics_gauge_set(fam->raft_commit_index, NULL, (double)st.commit_index);
        metrics_gauge_set(fam->raft_applied_index, NULL, (double)st.applied_index);
        metrics_gauge_set(fam->manager_leader, NULL, st.leader ? 1 : 0);
    }
    if (store == NULL) {
        return;
    }
    zero_all(fam->nodes, &swarm__node_state__descriptor, "NODE_STATE_");
    zero_all(fam->nodes_availability, &swarm__node_availability__descriptor,
             "NODE_AVAILABILITY_");
    zero_all(fam->tasks, &swarm__task_state__descriptor, "TASK_STATE_");
    /* A failed read leaves what was counted so far: a scrape is a view. */
    store_node_tally(store, node_cb, (void *)fam);
    store_task_tally(store, task_cb, (void *)fam);
    if (store_service_count(store, &n) == 0) {
        metrics_gauge_set(fam->services, NULL, (double)n);
    }
}
