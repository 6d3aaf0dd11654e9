/* nftables scripts run through libnftables (nft_run_cmd_from_buffer: one
 * transaction per script), in a given network namespace (entered by a
 * short-lived thread, netns.h). */
#ifndef SWARM_NET_NFT_H
#define SWARM_NET_NFT_H

/* Run `script` in the namespace `nsfd` (-1: the caller's). 0, or SWARM_EIO
 * (nftables said no: its message in errmsg) / SWARM_ENOMEM. */
int nft_run_in(int nsfd, const char *script, char *errmsg);
/* Run `script` on the calling thread; on failure *err is nftables' message
 * (malloc'd, or NULL when out of memory), else NULL. 0 or SWARM_E*. */
int nft_run_here(const char *script, char **err);

#endif
