/* gRPC-over-HTTP/2 details that are not HTTP/2 itself: the 5-byte message
 * prefix, grpc-timeout values, grpc-message percent-encoding. Pure functions,
 * no I/O, so they are tested with plain inputs. */
#ifndef SWARM_API_GRPC_H
#define SWARM_API_GRPC_H

#include <stddef.h>
#include <stdint.h>

#include "api.h"

#define GRPC_PREFIX_LEN 5

/* A growable byte buffer; `off` is how much of it was consumed. */
struct grpc_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    size_t off;
};

int grpc_buf_append(struct grpc_buf *b, const void *data, size_t len);
/* Drop consumed bytes so the buffer does not grow without bound. */
void grpc_buf_compact(struct grpc_buf *b);
void grpc_buf_free(struct grpc_buf *b);

/* Serialize `msg` with its 5-byte prefix onto `b`. Returns 0, SWARM_ENOMEM,
 * or SWARM_EINVAL when the message is larger than max_msg. */
int grpc_frame_pack(struct grpc_buf *b, const ProtobufCMessage *msg,
                    size_t max_msg);

enum grpc_frame_result {
    GRPC_FRAME_NEED_MORE = 0, /* no complete message yet */
    GRPC_FRAME_OK = 1,        /* *msg / *len point at one message */
    GRPC_FRAME_COMPRESSED = -1,
    GRPC_FRAME_TOO_LARGE = -2,
};
/* Look at the unconsumed bytes of `b` for one complete message; on
 * GRPC_FRAME_OK the message is consumed (b->off advances). Oversized and
 * compressed messages are reported as soon as their prefix arrived. */
enum grpc_frame_result grpc_frame_next(struct grpc_buf *b, size_t max_msg,
                                       const uint8_t **msg, size_t *len);

/* Count the fields of `data`, a serialized message of type `desc`, whose
 * numbers the descriptor does not know, in it and in its known sub-messages
 * (protobuf-c keeps each one, an allocation apiece). Stops counting past
 * `limit`. Returns 0 with *count, or SWARM_EINVAL for bytes that are not a
 * well-formed message (protobuf-c will say so in detail). Costs a fraction
 * of an unpack: no allocation. */
int grpc_unknown_fields(const ProtobufCMessageDescriptor *desc, const uint8_t *data,
                        size_t len, size_t limit, size_t *count);

/* Parse a grpc-timeout value ("100m", "5S", ...) into milliseconds (rounded
 * up, at least 1). Returns 0 or SWARM_EINVAL. */
int grpc_timeout_parse(const char *value, uint64_t *ms);
/* Format milliseconds as a grpc-timeout value (at most 8 digits). */
void grpc_timeout_format(uint64_t ms, char out[16]);

/* Percent-encode a grpc-message (bytes outside 0x20-0x7e and '%').
 * Output is truncated to out_size. */
void grpc_message_encode(const char *in, char *out, size_t out_size);
/* Decode percent-encoding; malformed escapes are kept as they are. */
void grpc_message_decode(const char *in, size_t len, char *out,
                         size_t out_size);

/* Status name for a code that may be outside the enum. */
const char *grpc_status_name_int(int status);

#endif
