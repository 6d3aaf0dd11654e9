/* Paging of the control API's list replies (ListNodes, ListServices,
 * ListTasks; control.proto): one page is cut from a list sorted by ID by
 * msgchunk_page (at most page_size items, about 1 MiB).
 *
 * Pure apart from answering the call on a bad token; owns nothing after the
 * call (the items and IDs stay the caller's; *pg indexes into them). */
#ifndef SWARM_MANAGER_LISTPAGE_H
#define SWARM_MANAGER_LISTPAGE_H

#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "msgchunk.h"

/* Cut one page: `items` sorted by their `ids` (parallel arrays of n), each
 * taking `extra` more bytes in the reply. Returns 0 with *pg, or -1 after
 * answering the call (a token that is no ID: INVALID_ARGUMENT; out of
 * memory: RESOURCE_EXHAUSTED). */
int listpage_cut(struct api_call *call, ProtobufCMessage *const *items, const char *const *ids,
                 size_t n, size_t extra, uint32_t page_size, const char *token,
                 struct msgchunk_page *pg);

#endif
