/* Label edits for `node update --label-add/--label-rm` (and later
 * `service update`). Labels stay sorted by key, as swarmd keeps them, so a
 * read-modify-write does not reorder what other clients see. */
#include "edit.h"

#include <stdlib.h>
#include <string.h>

int cli_label_parse(const char *word, char *key, size_t key_size,
                    const char **value)
{
    const char *eq = strchr(word, '=');
    size_t len = eq != NULL ? (size_t)(eq - word) : strlen(word);
    if (len == 0 || len >= key_size) {
        return -1;
    }
    memcpy(key, word, len);
    key[len] = '\0';
    *value = eq != NULL ? eq + 1 : "";
    return 0;
}

static Swarm__Label *cli_label_new(const char *key, const char *value)
{
    Swarm__Label *l = malloc(sizeof *l);
    if (l == NULL) {
        return NULL;
    }
    swarm__label__init(l);
    l->key = strdup(key);
    l->value = strdup(value);
    if (l->key == NULL || l->value == NULL) {
        free(l->key);
        free(l->value);
        free(l);
        return NULL;
    }
    return l;
}

static int cli_labels_ensure(Swarm__Annotations **annotations)
{
    if (*annotations != NULL) {
        return 0;
    }
    *annotations = malloc(sizeof **annotations);
    if (*annotations == NULL) {
        return -1;
    }
    swarm__annotations__init(*annotations);
    return 0;
}

int cli_labels_set(Swarm__Annotations **annotations, const char *key,
                   const char *value)
{
    if (cli_labels_ensure(annotations) != 0) {
        return -1;
    }
    Swarm__Annotations *a = *annotations;
    size_t i = 0;
    while (i < a->n_labels && strcmp(a->labels[i]->key, key) < 0) {
        i++;
    }
    if (i < a->n_labels && strcmp(a->labels[i]->key, key) == 0) {
        Swarm__Label *l = cli_label_new(key, value);
        if (l == NULL) {
            return -1;
        }
        protobuf_c_message_free_unpacked(&a->labels[i]->base, NULL);
        a->labels[i] = l;
        return 0;
    }
    Swarm__Label **arr = realloc(a->labels, (a->n_labels + 1) * sizeof *arr);
    if (arr == NULL) {
        return -1;
    }
    a->labels = arr;
    Swarm__Label *l = cli_label_new(key, value);
    if (l == NULL) {
        return -1;
    }
    memmove(&arr[i + 1], &arr[i], (a->n_labels - i) * sizeof *arr);
    arr[i] = l;
    a->n_labels++;
    return 0;
}

int cli_labels_remove(Swarm__Annotations *a, const char *key)
{
    for (size_t i = 0; a != NULL && i < a->n_labels; i++) {
        if (strcmp(a->labels[i]->key, key) == 0) {
            protobuf_c_message_free_unpacked(&a->labels[i]->base, NULL);
            memmove(&a->labels[i], &a->labels[i + 1],
                    (a->n_labels - i - 1) * sizeof *a->labels);
            a->n_labels--;
            return 0;
        }
    }
    return -1;
}
