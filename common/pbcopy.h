/* Deep copies of protobuf-c messages. */
#ifndef SWARM_COMMON_PBCOPY_H
#define SWARM_COMMON_PBCOPY_H

#include <protobuf-c/protobuf-c.h>

/* A deep copy made through the wire format, so it is owned exactly as if it
 * had been unpacked: free it with protobuf_c_message_free_unpacked (or the
 * type's *_free_unpacked). Returns NULL when out of memory. The result has
 * the type of `m`; callers cast it. */
void *pb_copy(const ProtobufCMessage *m);

#endif
