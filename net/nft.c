/* nftables through libnftables (nft.h). */
#include <errno.h>
#include <nftables/libnftables.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "netns.h"
#include "nft.h"

struct nft_job {
    const char *script;
    char *err; /* malloc'd */
    int ran;   /* the callback ran: any error after that is nftables' */
};

static int nft_job_cb(void *arg)
{
    struct nft_job *j = arg;
    j->ran = 1;
    struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
    if (ctx == NULL) {
        return SWARM_ENOMEM;
    }
    nft_ctx_buffer_output(ctx);
    nft_ctx_buffer_error(ctx);
    int rv = nft_run_cmd_from_buffer(ctx, j->script);
    if (rv != 0) {
        const char *e = nft_ctx_get_error_buffer(ctx);
        j->err = strdup(e != NULL ? e : "");
    }
    nft_ctx_free(ctx);
    return rv != 0 ? SWARM_EIO : 0;
}

int nft_run_in(int nsfd, const char *script, char *errmsg)
{
    struct nft_job j = {script, NULL, 0};
    int rv = netns_run(nsfd, nft_job_cb, &j);
    if (rv != 0 && !j.ran) {
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "nftables: entering namespace: %s",
                      strerror(-rv));
        return SWARM_EIO;
    }
    if (rv != 0) {
        size_t n = j.err != NULL ? strlen(j.err) : 0;
        while (n > 0 && j.err[n - 1] == '\n') {
            j.err[--n] = '\0';
        }
        errmsg_printf(errmsg, SWARM_ERRMSG_SIZE, "nftables: %s",
                      j.err != NULL ? j.err : "out of memory");
    }
    free(j.err);
    return rv;
}

int nft_run_here(const char *script, char **err)
{
    struct nft_job j = {script, NULL, 0};
    int rv = nft_job_cb(&j);
    *err = j.err;
    return rv;
}
