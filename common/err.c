#include "err.h"

#include <stdio.h>
#include <string.h>

const char *swarm_strerror(int rv)
{
    switch (rv) {
        case 0:
            return "success";
#define SWARM_ERR_CASE(name, value, text) \
    case name:                            \
        return text;
            SWARM_ERRORS(SWARM_ERR_CASE)
#undef SWARM_ERR_CASE
        default:
            return "unknown error";
    }
}

void errmsg_printf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    if (buf == NULL || size == 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(buf, size, fmt, ap);
    va_end(ap);
}

void errmsg_wrapf(char *buf, size_t size, const char *fmt, ...)
{
    char prefix[SWARM_ERRMSG_SIZE];
    char old[SWARM_ERRMSG_SIZE];
    va_list ap;
    if (buf == NULL || size == 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    snprintf(old, sizeof old, "%s", buf);
    snprintf(buf, size, "%s: %s", prefix, old);
}
