/* Splitting a run of repeated protobuf fields into messages bounded by
 * bytes (pure logic: no I/O, no protobuf). The dispatcher sends a node's
 * assignments this way (the full set and each batch of changes), and the
 * list methods of the control API cut their pages with it, so that no
 * message ever nears the 4 MiB limit of the RPC runtime. */
#ifndef SWARM_MANAGER_MSGCHUNK_H
#define SWARM_MANAGER_MSGCHUNK_H

#include <stdbool.h>
#include <stddef.h>

/* Bytes per message the dispatcher and the list pages aim at: well under
 * API_DEFAULT_MAX_MSG (4 MiB), so one oversized item still fits. */
#define MSGCHUNK_BOUND (1024u * 1024u)

struct msgchunk_item {
    size_t size;  /* packed size of the item (protobuf_c_message_get_packed_size) */
    bool second;  /* belongs to the message's second field (e.g. a removal) */
};

/* The bytes an item of `packed` bytes takes inside its message: field tag,
 * length prefix and body. */
size_t msgchunk_field_size(size_t packed);

/* Split items[0..n) in order into chunks: each chunk's items' field sizes
 * add up to at most `bound`, except a chunk of one item larger than the
 * bound; and within a chunk, no first-field item follows a second-field one
 * (a receiver applies a message's first field before its second, so this
 * keeps the order of the run). Writes the end index (exclusive) of chunk i
 * to ends[i] (room for n entries) and returns the number of chunks (0 for
 * n == 0). */
size_t msgchunk_plan(const struct msgchunk_item *items, size_t n, size_t bound, size_t *ends);

/* How many of items[0..n) fit in one message of at most `bound` bytes
 * (at least 1 when n > 0): the first chunk of msgchunk_plan. */
size_t msgchunk_first(const struct msgchunk_item *items, size_t n, size_t bound);

/* One page of a list reply. `ids` are the items' IDs in ascending strcmp
 * order, `items` their sizes. The page starts after `token` (the last ID of
 * the previous page; NULL or "" for the first page) and holds at most
 * `page_size` items (0: no count limit) and at most `bound` bytes (at least
 * one item when any remain). `more` says items remain after it; the next
 * token is then ids[start + count - 1]. */
struct msgchunk_page {
    size_t start, count;
    bool more;
};
void msgchunk_page(const char *const *ids, const struct msgchunk_item *items, size_t n,
                   size_t page_size, const char *token, size_t bound, struct msgchunk_page *out);

#endif
