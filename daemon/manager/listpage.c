/* See listpage.h. */
#include "listpage.h"

#include <stdlib.h>
#include <string.h>

#include "id.h"

int listpage_cut(struct api_call *call, ProtobufCMessage *const *items, const char *const *ids,
                 size_t n, size_t extra, uint32_t page_size, const char *token,
                 struct msgchunk_page *pg)
{
    struct msgchunk_item *sizes;
    if (token != NULL && strlen(token) > ID_LEN) {
        api_call_error(call, API_INVALID_ARGUMENT, "invalid page token");
        return -1;
    }
    if ((sizes = calloc(n ? n : 1, sizeof *sizes)) == NULL) {
        api_call_error(call, API_RESOURCE_EXHAUSTED, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        sizes[i].size = protobuf_c_message_get_packed_size(items[i]) + extra;
    }
    msgchunk_page(ids, sizes, n, page_size, token, MSGCHUNK_BOUND, pg);
    free(sizes);
    return 0;
}
