/* Identifiers: 25 base36 characters from 128 random bits, as swarmkit. */
#ifndef SWARM_COMMON_ID_H
#define SWARM_COMMON_ID_H

#include <stddef.h>
#include <stdint.h>

#define ID_LEN 25

/* Encode the big-endian number in `bytes` in base36 (0-9a-z), left-padded with
 * '0' to `width` characters. `out` must hold width + 1 bytes. Returns 0, or -1
 * if the number needs more than `width` digits. */
int base36_encode(const uint8_t *bytes, size_t len, size_t width, char *out);

/* Fill `buf` with `len` bytes from the kernel's CSPRNG. Returns 0 or -1. */
int random_bytes(void *buf, size_t len);

/* A new random ID (ID_LEN characters + NUL). Returns 0 or -1. */
int id_generate(char out[ID_LEN + 1]);

/* True when `s` has the shape of an ID: ID_LEN characters of [0-9a-z]. */
int id_is_valid(const char *s);

/* True when `s` (an ID that came from another node) is safe to use as one
 * path component: 1 to ID_PATH_MAX characters of [A-Za-z0-9_.-], not "."
 * and without "..". A worker checks the IDs a manager sends before it makes
 * directories (or cgroups) named after them. */
#define ID_PATH_MAX 128
int id_is_path_safe(const char *s);

#endif
