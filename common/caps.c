#include "caps.h"

#include <stddef.h>
#include <strings.h>

static const char *const caps_names[CAPS_COUNT] = {
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
};

int caps_lookup(const char *name)
{
    if (name == NULL) {
        return -1;
    }
    if (strcasecmp(name, "ALL") == 0) {
        return CAPS_ALL;
    }
    const char *bare = strncasecmp(name, "CAP_", 4) == 0 ? name + 4 : name;
    for (int i = 0; i < CAPS_COUNT; i++) {
        if (strcasecmp(bare, caps_names[i] + 4) == 0) {
            return i;
        }
    }
    return -1;
}

const char *caps_name(int cap)
{
    return cap >= 0 && cap < CAPS_COUNT ? caps_names[cap] : NULL;
}

uint64_t caps_effective(char *const *add, size_t n_add, char *const *drop, size_t n_drop)
{
    uint64_t set = CAPS_DOCKER_DEFAULT;
    uint64_t all = (UINT64_C(1) << CAPS_COUNT) - 1;
    for (size_t i = 0; i < n_drop; i++) {
        int c = caps_lookup(drop[i]);
        set &= c == CAPS_ALL ? 0 : c >= 0 ? ~(UINT64_C(1) << c) : all;
    }
    for (size_t i = 0; i < n_add; i++) {
        int c = caps_lookup(add[i]);
        set |= c == CAPS_ALL ? all : c >= 0 ? UINT64_C(1) << c : 0;
    }
    return set;
}
