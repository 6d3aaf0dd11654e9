/* Unit tests of common/vec.h: growth, overflow and failure leave the array
 * unchanged, both the VEC struct form and the loose-field form. */
#include <stdint.h>
#include <string.h>

#include "err.h"
#include "test.h"
#include "vec.h"

#ifdef __SANITIZE_ADDRESS__
/* Under ASan an impossible allocation must return NULL as it does in
 * production, not abort the test binary. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}
#endif

TEST(vec_push_keeps_order_across_growth)
{
    VEC(int) v = {0};
    for (int i = 0; i < 1000; i++) {
        ASSERT_INT_EQ(vec_push(&v, i * 3), 0);
    }
    ASSERT_INT_EQ(v.len, 1000);
    ASSERT(v.cap >= 1000);
    for (int i = 0; i < 1000; i++) {
        ASSERT_INT_EQ(v.items[i], i * 3);
    }
    ASSERT_INT_EQ(vec_pop(&v), 999 * 3);
    ASSERT_INT_EQ(v.len, 999);
    vec_free(&v);
    ASSERT(v.items == NULL);
    ASSERT_INT_EQ(v.len, 0);
    ASSERT_INT_EQ(v.cap, 0);
}

TEST(vec_growth_doubles_from_min_cap)
{
    VEC(char *) v = {0};
    char s[] = "x";
    ASSERT_INT_EQ(vec_push(&v, s), 0);
    ASSERT_INT_EQ(v.cap, VEC_MIN_CAP);
    for (int i = 1; i < VEC_MIN_CAP; i++) {
        ASSERT_INT_EQ(vec_push(&v, s), 0);
    }
    ASSERT_INT_EQ(v.cap, VEC_MIN_CAP);
    ASSERT_INT_EQ(vec_push(&v, s), 0);
    ASSERT_INT_EQ(v.cap, 2 * VEC_MIN_CAP);
    vec_clear(&v);
    ASSERT_INT_EQ(v.len, 0);
    ASSERT_INT_EQ(v.cap, 2 * VEC_MIN_CAP); /* storage kept */
    vec_free(&v);
}

TEST(vec_reserve_jumps_to_a_power_of_two_multiple)
{
    VEC(double) v = {0};
    ASSERT_INT_EQ(vec_reserve(&v, 100), 0);
    ASSERT_INT_EQ(v.cap, 128);
    ASSERT_INT_EQ(v.len, 0);
    ASSERT_INT_EQ(vec_reserve(&v, 10), 0); /* never shrinks */
    ASSERT_INT_EQ(v.cap, 128);
    vec_free(&v);
}

TEST(vec_size_overflow_is_enomem_and_leaves_array_intact)
{
    VEC(uint64_t) v = {0};
    ASSERT_INT_EQ(vec_push(&v, 7), 0);
    uint64_t *before = v.items;
    size_t cap = v.cap;
    /* need * 8 bytes overflows size_t: no allocation is attempted. */
    ASSERT_INT_EQ(vec_reserve(&v, SIZE_MAX / 4), SWARM_ENOMEM);
    /* the doubling itself overflows */
    ASSERT_INT_EQ(vec_reserve(&v, SIZE_MAX), SWARM_ENOMEM);
    ASSERT(v.items == before);
    ASSERT_INT_EQ(v.cap, cap);
    ASSERT_INT_EQ(v.len, 1);
    ASSERT_INT_EQ(v.items[0], 7);
    vec_free(&v);
}

TEST(vec_allocation_failure_is_enomem)
{
    /* A request that fits size_t but no allocator can satisfy. */
    VEC(char) v = {0};
    ASSERT_INT_EQ(vec_reserve(&v, SIZE_MAX / 2 + 1), SWARM_ENOMEM);
    ASSERT(v.items == NULL);
    ASSERT_INT_EQ(v.cap, 0);
    vec_free(&v);
}

struct holder {
    const char **names;
    size_t n_names;
    size_t cap_names;
};

TEST(vec_grow_works_on_loose_fields)
{
    struct holder h = {0};
    static const char *words[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"};
    for (size_t i = 0; i < 10; i++) {
        ASSERT_INT_EQ(vec_grow(h.names, h.cap_names, h.n_names + 1), 0);
        h.names[h.n_names++] = words[i];
    }
    ASSERT_INT_EQ(h.n_names, 10);
    ASSERT_INT_EQ(h.cap_names, 16);
    for (size_t i = 0; i < 10; i++) {
        ASSERT_STR_EQ(h.names[i], words[i]);
    }
    ASSERT_INT_EQ(vec_grow(h.names, h.cap_names, SIZE_MAX), SWARM_ENOMEM);
    ASSERT_INT_EQ(h.cap_names, 16);
    ASSERT_STR_EQ(h.names[9], "j");
    free(h.names);
}

TEST_MAIN()
