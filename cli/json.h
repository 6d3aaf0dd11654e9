/* Protobuf-c message -> indented JSON, as `swarmctl ... inspect` prints it.
 *
 * Walks the message through its descriptor, so every message type works
 * without per-type code. The output follows Docker's inspect look rather than
 * the proto3 JSON mapping:
 *  - names are UpperCamel with Go initialisms: node_id -> NodeID,
 *    ca_cert_pem -> CACertPEM, nano_cpus -> NanoCPUs;
 *  - enum values lose their type prefix and are lower case, '_' -> '-':
 *    NODE_ROLE_MANAGER -> "manager", RESTART_CONDITION_ON_FAILURE ->
 *    "on-failure";
 *  - int64 fields named *_at or "timestamp" (unix ms) are RFC 3339 strings;
 *  - fields named *_ms (durations) lose the suffix and are nanoseconds, as
 *    Docker's: stop_grace_period_ms 10000 -> "StopGracePeriod": 10000000000;
 *  - a few fields take Docker's longer names: ServiceSpec.task ->
 *    TaskTemplate, TaskSpec.container -> ContainerSpec, restart ->
 *    RestartPolicy, ServiceSpec.update/rollback/endpoint -> UpdateConfig/
 *    RollbackConfig/EndpointSpec, Task.networks -> NetworksAttachments;
 *  - bytes are text when printable (PEM), else base64;
 *  - a repeated {key, value} message (Label) is a JSON object;
 *  - scalars are always printed, absent sub-messages are left out, and of a
 *    oneof only the member that is set. */
#ifndef SWARM_CLI_JSON_H
#define SWARM_CLI_JSON_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdio.h>

#include "tmpl.h"

/* Write `msg` as a JSON object, nested lines indented by 2 spaces per level,
 * the first line starting at `indent` levels; no trailing newline. */
void cli_json_print_message(FILE *out, const ProtobufCMessage *msg,
                            int indent);

/* Write `msgs` as a JSON array followed by a newline ("[]" when empty), as
 * Docker's inspect does. */
void cli_json_print_array(FILE *out, const ProtobufCMessage *const *msgs,
                          size_t n);

/* A JSON string literal (quotes included); invalid UTF-8 becomes U+FFFD. */
void cli_json_print_string(FILE *out, const char *s, size_t len);
/* Standard base64 (with padding), unquoted. */
void cli_print_base64(FILE *out, const uint8_t *data, size_t len);

/* The JSON name of a proto field: "node_id" -> "NodeID". */
void cli_json_field_name(const char *proto_name, char *buf, size_t size);

/* The JSON name of an enum value: ("NodeRole", "NODE_ROLE_MANAGER") ->
 * "manager". */
void cli_json_enum_name(const ProtobufCEnumDescriptor *desc, int value,
                        char *buf, size_t size);

/* The same object as a --format template's data (tmpl.h): the field names
 * and values inspect prints, so `inspect -f '{{.Spec.Name}}'` and
 * `{{json .}}` see what inspect shows. The caller frees it
 * (tmpl_value_free). */
struct tmpl_value *cli_json_message_value(const ProtobufCMessage *msg);

#endif
