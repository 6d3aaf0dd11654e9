/* Unit tests of msgchunk: assignments and list pages split into messages
 * bounded by bytes. */
#include <stdlib.h>

#include "msgchunk.h"
#include "test.h"

TEST(field_size_counts_tag_and_length)
{
    ASSERT_INT_EQ(msgchunk_field_size(0), 2);
    ASSERT_INT_EQ(msgchunk_field_size(127), 129);
    ASSERT_INT_EQ(msgchunk_field_size(128), 131);
    ASSERT_INT_EQ(msgchunk_field_size(60000), 60004);
}

TEST(empty_run_has_no_chunk)
{
    size_t ends[1];
    ASSERT_INT_EQ(msgchunk_plan(NULL, 0, 100, ends), 0);
    ASSERT_INT_EQ(msgchunk_first(NULL, 0, 100), 0);
}

/* The case: 100 tasks of about 60 KB each, 1 MiB per message. */
TEST(hundred_big_tasks_make_bounded_chunks)
{
    struct msgchunk_item items[100];
    size_t ends[100], start = 0, total = 0;
    for (size_t i = 0; i < 100; i++) {
        items[i] = (struct msgchunk_item){.size = 61440 + i, .second = false};
    }
    size_t n = msgchunk_plan(items, 100, MSGCHUNK_BOUND, ends);
    ASSERT(n >= 6 && n <= 8);
    for (size_t c = 0; c < n; c++) {
        size_t bytes = 0;
        ASSERT(ends[c] > start);
        for (size_t i = start; i < ends[c]; i++) {
            bytes += msgchunk_field_size(items[i].size);
        }
        ASSERT(bytes <= MSGCHUNK_BOUND);
        /* Greedy: the next item would not have fitted. */
        if (ends[c] < 100) {
            ASSERT(bytes + msgchunk_field_size(items[ends[c]].size) > MSGCHUNK_BOUND);
        }
        total += ends[c] - start;
        start = ends[c];
    }
    ASSERT_INT_EQ(total, 100);
    ASSERT_INT_EQ(ends[n - 1], 100);
    ASSERT_INT_EQ(msgchunk_first(items, 100, MSGCHUNK_BOUND), ends[0]);
}

TEST(oversized_item_goes_alone)
{
    struct msgchunk_item items[3] = {{10, false}, {5000, false}, {10, false}};
    size_t ends[3];
    ASSERT_INT_EQ(msgchunk_plan(items, 3, 100, ends), 3);
    ASSERT_INT_EQ(ends[0], 1);
    ASSERT_INT_EQ(ends[1], 2);
    ASSERT_INT_EQ(ends[2], 3);
    ASSERT_INT_EQ(msgchunk_first(items + 1, 2, 100), 1);
}

TEST(small_items_share_one_chunk)
{
    struct msgchunk_item items[4] = {{10, false}, {10, false}, {10, true}, {10, true}};
    size_t ends[4];
    ASSERT_INT_EQ(msgchunk_plan(items, 4, 1000, ends), 1);
    ASSERT_INT_EQ(ends[0], 4);
}

/* An update after a removal must not be applied before it. */
TEST(update_after_removal_starts_a_chunk)
{
    struct msgchunk_item items[5] = {{10, false}, {10, true}, {10, false}, {10, true}, {10, true}};
    size_t ends[5];
    ASSERT_INT_EQ(msgchunk_plan(items, 5, 1000, ends), 2);
    ASSERT_INT_EQ(ends[0], 2);
    ASSERT_INT_EQ(ends[1], 5);
    ASSERT_INT_EQ(msgchunk_first(items, 5, 1000), 2);
}

TEST(exact_fit_stays_in_chunk)
{
    /* field size of 8 packed bytes: 10; two fit exactly in 20. */
    struct msgchunk_item items[3] = {{8, false}, {8, false}, {8, false}};
    size_t ends[3];
    ASSERT_INT_EQ(msgchunk_plan(items, 3, 20, ends), 2);
    ASSERT_INT_EQ(ends[0], 2);
    ASSERT_INT_EQ(ends[1], 3);
}

static const char *page_ids[5] = {"a1", "b2", "c3", "d4", "e5"};

TEST(page_follows_token_and_size)
{
    struct msgchunk_item items[5] = {{10, false}, {10, false}, {10, false}, {10, false}, {10, false}};
    struct msgchunk_page pg;
    msgchunk_page(page_ids, items, 5, 2, NULL, 1000, &pg);
    ASSERT_INT_EQ(pg.start, 0);
    ASSERT_INT_EQ(pg.count, 2);
    ASSERT(pg.more);
    msgchunk_page(page_ids, items, 5, 2, "b2", 1000, &pg);
    ASSERT_INT_EQ(pg.start, 2);
    ASSERT_INT_EQ(pg.count, 2);
    ASSERT(pg.more);
    msgchunk_page(page_ids, items, 5, 2, "d4", 1000, &pg);
    ASSERT_INT_EQ(pg.start, 4);
    ASSERT_INT_EQ(pg.count, 1);
    ASSERT(!pg.more);
    /* A token between IDs (its item was removed meanwhile). */
    msgchunk_page(page_ids, items, 5, 0, "b9", 1000, &pg);
    ASSERT_INT_EQ(pg.start, 2);
    ASSERT_INT_EQ(pg.count, 3);
    ASSERT(!pg.more);
    /* Past the end: an empty last page. */
    msgchunk_page(page_ids, items, 5, 0, "zz", 1000, &pg);
    ASSERT_INT_EQ(pg.start, 5);
    ASSERT_INT_EQ(pg.count, 0);
    ASSERT(!pg.more);
}

TEST(page_is_bounded_by_bytes)
{
    struct msgchunk_item items[5] = {{600, false}, {600, false}, {600, false}, {600, false},
                                     {600, false}};
    struct msgchunk_page pg;
    msgchunk_page(page_ids, items, 5, 0, "", 1000, &pg);
    ASSERT_INT_EQ(pg.start, 0);
    ASSERT_INT_EQ(pg.count, 1);
    ASSERT(pg.more);
    msgchunk_page(page_ids, items, 5, 0, "", 1300, &pg);
    ASSERT_INT_EQ(pg.count, 2);
}

TEST_MAIN()
