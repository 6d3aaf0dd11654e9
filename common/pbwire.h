/* Checks on a protobuf message in its wire form, for what protobuf-c's
 * unpack silently loses: a string field holding a NUL byte arrives in C
 * cut at the NUL ("web\0evil" reads as "web"), so no check on the decoded
 * message can see it. The RPC runtime runs this on every request before it
 * decodes it. Pure. */
#ifndef SWARM_COMMON_PBWIRE_H
#define SWARM_COMMON_PBWIRE_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* Returns 0 when no string field of `desc` (nested messages included, to a
 * depth of 32) holds a NUL byte; SWARM_EINVAL otherwise, with the field's
 * dotted path (e.g. "spec.annotations.name") in path (`size` bytes).
 * Malformed input returns 0: unpacking it is what refuses it. */
int pb_check_strings(const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len,
                     char *path, size_t size);

#endif
