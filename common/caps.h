/* Linux capability names as Docker takes them (--cap-add/--cap-drop): with
 * or without the CAP_ prefix, any case, and "ALL". Pure. */
#ifndef SWARM_COMMON_CAPS_H
#define SWARM_COMMON_CAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CAPS_COUNT 41 /* CAP_CHOWN (0) .. CAP_CHECKPOINT_RESTORE (40) */
#define CAPS_ALL (-2)

/* Docker's default set: CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID,
 * SETUID, SETPCAP, NET_BIND_SERVICE, NET_RAW, SYS_CHROOT, MKNOD,
 * AUDIT_WRITE, SETFCAP. */
#define CAPS_DOCKER_DEFAULT UINT64_C(0x00000000a80425fb)

/* The capability number of `name`, CAPS_ALL for "ALL", or -1 if unknown. */
int caps_lookup(const char *name);
/* "CAP_CHOWN" for 0...; NULL out of range. */
const char *caps_name(int cap);
/* Docker's default set, then drops, then adds (Docker's order: an added
 * capability wins over a dropped one, "ALL" in drop clears the defaults,
 * "ALL" in add gives every capability). Unknown names are skipped (the
 * spec was validated). */
uint64_t caps_effective(char *const *add, size_t n_add, char *const *drop, size_t n_drop);

#endif
