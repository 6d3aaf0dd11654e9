/* See msgchunk.h. */
#include "msgchunk.h"

#include <string.h>

size_t msgchunk_field_size(size_t packed)
{
    size_t varint = 1;
    for (size_t v = packed; v >= 0x80; v >>= 7) {
        varint++;
    }
    return 1 + varint + packed; /* fields numbered below 16: one tag byte */
}

/* Does item `it` start a new chunk, given the current chunk's state? */
static bool msgchunk_breaks(const struct msgchunk_item *it, size_t used, size_t count,
                            bool has_second, size_t bound)
{
    if (count == 0) {
        return false;
    }
    if (!it->second && has_second) {
        return true;
    }
    return used + msgchunk_field_size(it->size) > bound;
}

size_t msgchunk_plan(const struct msgchunk_item *items, size_t n, size_t bound, size_t *ends)
{
    size_t chunks = 0, used = 0, count = 0;
    bool has_second = false;
    for (size_t i = 0; i < n; i++) {
        if (msgchunk_breaks(&items[i], used, count, has_second, bound)) {
            ends[chunks++] = i;
            used = 0;
            count = 0;
            has_second = false;
        }
        used += msgchunk_field_size(items[i].size);
        count++;
        has_second = has_second || items[i].second;
    }
    if (count > 0) {
        ends[chunks++] = n;
    }
    return chunks;
}

size_t msgchunk_first(const struct msgchunk_item *items, size_t n, size_t bound)
{
    size_t used = 0;
    bool has_second = false;
    for (size_t i = 0; i < n; i++) {
        if (msgchunk_breaks(&items[i], used, i, has_second, bound)) {
            return i;
        }
        used += msgchunk_field_size(items[i].size);
        has_second = has_second || items[i].second;
    }
    return n;
}

void msgchunk_page(const char *const *ids, const struct msgchunk_item *items, size_t n,
                   size_t page_size, const char *token, size_t bound, struct msgchunk_page *out)
{
    size_t lo = 0, hi = n, limit;
    if (token != NULL && token[0] != '\0') {
        while (lo < hi) { /* the first ID above the token */
            size_t mid = lo + (hi - lo) / 2;
            if (strcmp(ids[mid], token) <= 0) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
    }
    limit = n - lo;
    if (page_size > 0 && page_size < limit) {
        limit = page_size;
    }
    out->start = lo;
    out->count = msgchunk_first(items + lo, limit, bound);
    out->more = lo + out->count < n;
}
