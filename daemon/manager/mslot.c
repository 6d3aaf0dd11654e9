/* See mslot.h. */
#include "mslot.h"

#include "err.h"

const struct manager_slot *mslot_require(struct api_call *call, const struct manager_slot *slot)
{
    if (!slot->running) {
        api_call_error(call, API_FAILED_PRECONDITION, "%s",
                       slot->worker ? MANAGER_WORKER_MSG : MANAGER_NOT_MANAGER_MSG);
        return NULL;
    }
    return slot;
}

void mslot_reply_error(struct api_call *call, int status, const char *what)
{
    switch (status) {
        case SWARM_ENOTFOUND:
            api_call_error(call, API_NOT_FOUND, "%s", what);
            break;
        case SWARM_EEXIST:
            api_call_error(call, API_ALREADY_EXISTS, "%s", what);
            break;
        case SWARM_ECONFLICT:
            api_call_error(call, API_ABORTED, "update out of sequence: %s", what);
            break;
        case SWARM_EINVAL:
            api_call_error(call, API_INVALID_ARGUMENT, "%s", what);
            break;
        case SWARM_ESTATE:
            api_call_error(call, API_FAILED_PRECONDITION, "%s", what);
            break;
        case SWARM_ENOLEADER:
            api_call_error(call, API_UNAVAILABLE, "%s", MANAGER_NO_LEADER_MSG);
            break;
        case SWARM_ENOTLEADER:
            api_call_error(call, API_UNAVAILABLE,
                           "leadership changed before the change was confirmed; retry");
            break;
        default:
            api_call_error(call, API_INTERNAL, "%s: %s", what, swarm_strerror(status));
    }
}
