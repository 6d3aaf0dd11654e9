/* Growable arrays.
 *
 * One way to grow an array, instead of a hand-written realloc at each site:
 * capacity doubles (at least VEC_MIN_CAP), the size computation is checked
 * for overflow, and a failed allocation returns SWARM_ENOMEM with the array
 * left exactly as it was (still valid, still owned by the caller).
 *
 * Two forms share that one growth rule:
 *
 *   VEC(int) v = {0};                      a struct {items, len, cap}
 *   if (vec_push(&v, 42) != 0) goto err;   appends one element
 *   v.items[0] ... v.len
 *   vec_free(&v);                          frees items, back to {0}
 *
 * and, for arrays whose pointer and capacity are fields of an existing
 * struct (or a protobuf-c repeated field and its n_ count):
 *
 *   if (vec_grow(s->routes, s->cap_routes, s->n_routes + 1) != 0) goto err;
 *   s->routes[s->n_routes++] = r;
 *
 * vec_grow(ptr, cap, need) makes room for `need` elements; `cap` is a size_t
 * lvalue holding the current capacity in elements (0 with a NULL ptr). For a
 * protobuf-c repeated field, whose free uses only n_X, keep cap beside it (a
 * local while filling it): protobuf-c never sees the extra capacity. A
 * repeated field edited in place one element at a time, with nowhere to keep
 * a capacity (cli/edit.c), keeps an exact realloc: its count is its size.
 *
 * Ownership: the array owns `items`; the elements are the caller's (vec_free
 * does not free what pointers in the array point to).
 *
 * Allocation policy (the daemon's, see README "Conventions"): every allocation
 * is checked and fails the operation with SWARM_ENOMEM; nothing aborts. */
#ifndef SWARM_COMMON_VEC_H
#define SWARM_COMMON_VEC_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

#define VEC_MIN_CAP 8

/* An anonymous struct type; give it a name with a typedef or use it in a
 * struct field to share it: `typedef VEC(char *) strvec;`. */
#define VEC(type)      \
    struct {           \
        type *items;   \
        size_t len;    \
        size_t cap;    \
    }

/* Grow *pitems (a pointer to any object pointer) to hold at least `need`
 * elements of `size` bytes. Returns 0 or SWARM_ENOMEM (array unchanged). */
static inline int vec_grow_(void *pitems, size_t *cap, size_t size,
                            size_t need)
{
    void *items, *grown;
    size_t ncap;

    if (need <= *cap) {
        return 0;
    }
    ncap = *cap < VEC_MIN_CAP / 2 ? VEC_MIN_CAP : *cap;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2) {
            return SWARM_ENOMEM;
        }
        ncap *= 2;
    }
    if (size != 0 && ncap > SIZE_MAX / size) {
        return SWARM_ENOMEM;
    }
    memcpy(&items, pitems, sizeof items);
    grown = realloc(items, ncap * size);
    if (grown == NULL) {
        return SWARM_ENOMEM;
    }
    memcpy(pitems, &grown, sizeof grown);
    *cap = ncap;
    return 0;
}

/* Room for `need` elements in an array held as loose fields (see above). */
#define vec_grow(ptr, cap, need) \
    vec_grow_(&(ptr), &(cap), sizeof *(ptr), (need))

/* Room for `n` elements in total in a VEC. 0 or SWARM_ENOMEM. */
#define vec_reserve(v, n) \
    vec_grow_(&(v)->items, &(v)->cap, sizeof *(v)->items, (n))

/* Append x. 0 or SWARM_ENOMEM (v unchanged, x not stored: free it yourself
 * if it was owned). */
#define vec_push(v, x)                                                       \
    (vec_grow_(&(v)->items, &(v)->cap, sizeof *(v)->items, (v)->len + 1) != 0 \
         ? SWARM_ENOMEM                                                      \
         : ((v)->items[(v)->len++] = (x), 0))

/* Remove and return the last element; v->len must be > 0. */
#define vec_pop(v) ((v)->items[--(v)->len])

/* Forget the elements, keep the storage. */
#define vec_clear(v) ((v)->len = 0)

/* Free the storage (not what the elements point to); v is {0} again. */
#define vec_free(v)          \
    do {                     \
        free((v)->items);    \
        (v)->items = NULL;   \
        (v)->len = 0;        \
        (v)->cap = 0;        \
    } while (0)

#endif
