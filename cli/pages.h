/* Paged list replies (control.proto, paging): a reply with a non-empty
 * next_page_token is followed by more pages. swarmctl asks for them all and
 * merges them into one reply, so every command shows every item. Pure
 * protobuf reflection, no I/O. */
#ifndef SWARM_CLI_PAGES_H
#define SWARM_CLI_PAGES_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>

/* Safety bound on the pages of one list (each page holds at least one
 * item, so this is also a bound on the items). */
#define CLI_PAGES_MAX 1000000

/* The reply's next_page_token, or NULL when it has none (not a paged
 * method, or the last page). */
const char *cli_pages_token(const ProtobufCMessage *resp);

/* A shallow copy of `req` with page_token = token (borrowed), to be freed
 * with free() only; NULL when `req` has no page_token field or out of
 * memory. */
ProtobufCMessage *cli_pages_request(const ProtobufCMessage *req, const char *token);

/* Move the repeated fields' elements of `page` to the end of `acc`'s (same
 * message type); `page` keeps none of them and acc takes page's
 * next_page_token. Returns 0 or -1 (out of memory: nothing moved). */
int cli_pages_merge(ProtobufCMessage *acc, ProtobufCMessage *page);

#endif
