/* Pure edits of specs read from swarmd, before they are written back with
 * compare-and-set. They work on messages from protobuf_c_message_unpack
 * (system allocator), so protobuf_c_message_free_unpacked frees what they
 * add. */
#ifndef SWARM_CLI_EDIT_H
#define SWARM_CLI_EDIT_H

#include <stddef.h>

#include "objects.pb-c.h"

/* Docker's --label-add word: "k=v" or "k" (empty value). Splits at the
 * first '='. Returns 0, or -1 for an empty key. */
int cli_label_parse(const char *word, char *key, size_t key_size,
                    const char **value);

/* Set key=value, keeping labels sorted by key. Allocates `*annotations`
 * if absent. Returns 0 or -1 (out of memory). */
int cli_labels_set(Swarm__Annotations **annotations, const char *key,
                   const char *value);

/* Remove key. Returns 0, or -1 if there is no such key. */
int cli_labels_remove(Swarm__Annotations *annotations, const char *key);

#endif
