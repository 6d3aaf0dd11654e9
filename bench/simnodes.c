/* simnodes: one process standing in for many worker hosts. Each simulated
 * node joins the swarm with the worker token like a real one (its own key,
 * CSR and certificate), then runs a real agent with its own mutual-TLS
 * dispatcher session and the simulated executor (tasks "run" at once).
 *
 *   simnodes --manager IP:PORT --token TOKEN --count N --dir DIR
 *            [--prefix sim] [--parallel 32]
 *
 * Prints `joined: N nodes in S s` when all have joined, then runs until
 * SIGINT/SIGTERM. Used by bench/bench_sim.py and bench/bench_services.py. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <uv.h>

#include "agent.h"
#include "err.h"
#include "hostinfo.h"
#include "join.h"
#include "pki.h"
#include "pkichain.h"

struct simnode {
    struct sim *sim;
    int index;
    char dir[512];
    char hostname[64];
    char node_id[32];
    struct agent *agent;
    Swarm__NodeDescription *desc;
    /* Its certificate, kept in memory: renewed when the leader asks during
     * a root rotation, trusting the root the leader sends (as a real node
     * does in node_certs.c, without the files). */
    X509 *root, *cert;
    STACK_OF(X509) *chain;
    EVP_PKEY *key;
    bool renewing;
};

struct sim {
    uv_loop_t *loop;
    const char *manager;
    const char *token;
    const char *dir;
    const char *prefix;
    int count, parallel, started, joined, failed;
    struct simnode *nodes;
    uint64_t t0;
    uv_signal_t sigint, sigterm;
    int stopping;
};

static void start_next(struct sim *s);

/* Use (root, cert, chain, key) for new connections and report it. */
static int sim_apply(struct simnode *n, uint64_t spread_ms, char *emsg)
{
    SSL_CTX *ctx = NULL;
    int rv = pki_client_ctx(n->root, n->cert, n->key, &ctx, emsg);
    if (rv == 0) {
        rv = pki_ctx_set_identity(ctx, n->root, n->cert, n->chain, n->key, emsg);
    }
    if (rv == 0 && n->agent != NULL) {
        Swarm__NodeTLSInfo *info = join_tls_info(n->root, n->cert, n->chain);
        agent_set_client_ctx(n->agent, ctx);
        if (info != NULL) {
            agent_set_tls_info(n->agent, info, spread_ms);
            swarm__node_tlsinfo__free_unpacked(info, NULL);
        }
    }
    SSL_CTX_free(ctx);
    return rv;
}

static void sim_take(struct simnode *n, struct join_result *res)
{
    X509_free(n->cert);
    pki_chain_free(n->chain);
    EVP_PKEY_free(n->key);
    n->cert = res->cert;
    n->chain = res->chain;
    n->key = res->key;
    res->cert = NULL;
    res->chain = NULL;
    res->key = NULL;
    if (n->root == NULL) {
        n->root = res->root;
        res->root = NULL;
    }
}

static void renewed_cb(int status, const char *errmsg, struct join_result *res, void *data)
{
    struct simnode *n = data;
    char emsg[SWARM_ERRMSG_SIZE] = "";
    n->renewing = false;
    if (status != 0 || n->sim->stopping) {
        if (status != 0 && n->agent != NULL) {
            /* Retry as the leader asks again on the next session: reopen it
             * (within 2 s, so that failures do not come back in a wave). */
            Swarm__NodeTLSInfo *info = join_tls_info(n->root, n->cert, n->chain);
            fprintf(stderr, "simnodes: %s: renewal failed (retrying): %s\n", n->hostname, errmsg);
            if (info != NULL) {
                agent_set_tls_info(n->agent, info, 2000);
                swarm__node_tlsinfo__free_unpacked(info, NULL);
            }
        }
        join_result_free(res);
        return;
    }
    sim_take(n, res);
    join_result_free(res);
    if (sim_apply(n, 0, emsg) != 0) {
        fprintf(stderr, "simnodes: %s: %s\n", n->hostname, emsg);
    }
}

static void sim_renew_cb(const uint8_t *issuer_key, size_t len, void *data)
{
    struct simnode *n = data;
    char emsg[SWARM_ERRMSG_SIZE] = "";
    SSL_CTX *ctx = NULL;
    unsigned char *subj = NULL, *pub = NULL;
    size_t subj_len = 0, pub_len = 0;
    bool done = false;
    const char *addr = n->agent != NULL ? agent_any_manager_addr(n->agent) : NULL;
    if (pki_cert_issuer_info(n->cert, n->chain, n->root, &subj, &subj_len, &pub, &pub_len) == 0) {
        done = pub_len == len && memcmp(pub, issuer_key, len) == 0;
    }
    free(subj);
    free(pub);
    if (done || n->renewing || addr == NULL) {
        return;
    }
    if (pki_client_ctx(n->root, n->cert, n->key, &ctx, emsg) == 0 &&
        pki_ctx_set_identity(ctx, n->root, n->cert, n->chain, n->key, emsg) == 0 &&
        join_renew(n->sim->loop, addr, ctx, n->root, renewed_cb, n, NULL, emsg) == 0) {
        n->renewing = true;
    } else {
        fprintf(stderr, "simnodes: %s: renewal: %s\n", n->hostname, emsg);
    }
    SSL_CTX_free(ctx);
}

static void sim_root_ca_cb(const uint8_t *pem, size_t len, void *data)
{
    struct simnode *n = data;
    char emsg[SWARM_ERRMSG_SIZE] = "";
    X509 *root = NULL;
    if (pki_cert_from_pem(pem, len, &root, emsg) != 0 || X509_cmp(root, n->root) == 0 ||
        pki_cert_verify_chain(root, n->cert, n->chain, (int64_t)time(NULL), emsg) != 0) {
        X509_free(root);
        return;
    }
    X509_free(n->root);
    n->root = root;
    sim_apply(n, 5000, emsg);
}

static void joined_cb(int status, const char *errmsg, struct join_result *res, void *data)
{
    struct simnode *n = data;
    struct sim *s = n->sim;
    char emsg[SWARM_ERRMSG_SIZE] = "";
    SSL_CTX *ctx = NULL;
    const char *managers[1] = {s->manager};
    struct agent_config cfg = {0};

    if (status != 0) {
        fprintf(stderr, "simnodes: %s: join failed: %s\n", n->hostname, errmsg);
        s->failed++;
        goto next;
    }
    snprintf(n->node_id, sizeof n->node_id, "%s", res->resp->node_id);
    sim_take(n, res);
    if (pki_client_ctx(n->root, n->cert, n->key, &ctx, emsg) != 0 ||
        pki_ctx_set_identity(ctx, n->root, n->cert, n->chain, n->key, emsg) != 0) {
        fprintf(stderr, "simnodes: %s: %s\n", n->hostname, emsg);
        s->failed++;
        goto out;
    }
    cfg.loop = s->loop;
    cfg.state_dir = n->dir;
    cfg.node_id = n->node_id;
    cfg.client_ctx = ctx;
    cfg.managers = managers;
    cfg.n_managers = 1;
    cfg.executor = "sim";
    cfg.hostname = n->hostname;
    cfg.renew_cb = sim_renew_cb;
    cfg.root_ca_cb = sim_root_ca_cb;
    cfg.data = n;
    if (agent_start(&cfg, &n->agent, emsg) != 0) {
        fprintf(stderr, "simnodes: %s: agent: %s\n", n->hostname, emsg);
        s->failed++;
        goto out;
    }
    s->joined++;
    {
        Swarm__NodeTLSInfo *info = join_tls_info(n->root, n->cert, n->chain);
        if (info != NULL) {
            agent_set_tls_info(n->agent, info, 0);
            swarm__node_tlsinfo__free_unpacked(info, NULL);
        }
    }
out:
    SSL_CTX_free(ctx);
    join_result_free(res);
next:
    if (s->joined + s->failed == s->count) {
        printf("joined: %d nodes in %.3f s (%d failed)\n", s->joined,
               (double)(uv_now(s->loop) - s->t0) / 1000.0, s->failed);
        fflush(stdout);
    }
    start_next(s);
}

static void start_next(struct sim *s)
{
    while (!s->stopping && s->started < s->count &&
           s->started - (s->joined + s->failed) < s->parallel) {
        struct simnode *n = &s->nodes[s->started++];
        struct join_params p = {0};
        char emsg[SWARM_ERRMSG_SIZE] = "";
        snprintf(n->dir, sizeof n->dir, "%s/%s-%d", s->dir, s->prefix, n->index);
        mkdir(n->dir, 0700);
        n->desc = hostinfo_describe(n->hostname);
        p.remote_addr = s->manager;
        p.token = s->token;
        p.advertise_addr = "";
        p.description = n->desc;
        if (join_start(s->loop, &p, joined_cb, n, NULL, emsg) != 0) {
            fprintf(stderr, "simnodes: %s: %s\n", n->hostname, emsg);
            s->failed++;
        }
    }
}

static void stopped_cb(void *data)
{
}

static void signal_cb(uv_signal_t *h, int signum)
{
    struct sim *s = h->data;
    s->stopping = 1;
    for (int i = 0; i < s->count; i++) {
        if (s->nodes[i].agent != NULL) {
            agent_stop(s->nodes[i].agent, true, stopped_cb, NULL);
            s->nodes[i].agent = NULL;
        }
    }
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
}

int main(int argc, char **argv)
{
    struct sim s = {.prefix = "sim", .parallel = 32};
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--manager") == 0) {
            s.manager = argv[i + 1];
        } else if (strcmp(argv[i], "--token") == 0) {
            s.token = argv[i + 1];
        } else if (strcmp(argv[i], "--count") == 0) {
            s.count = atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--dir") == 0) {
            s.dir = argv[i + 1];
        } else if (strcmp(argv[i], "--prefix") == 0) {
            s.prefix = argv[i + 1];
        } else if (strcmp(argv[i], "--parallel") == 0) {
            s.parallel = atoi(argv[i + 1]);
        }
    }
    if (s.manager == NULL || s.token == NULL || s.dir == NULL || s.count <= 0 || s.parallel <= 0) {
        fprintf(stderr, "usage: simnodes --manager IP:PORT --token TOKEN --count N --dir DIR "
                        "[--prefix sim] [--parallel 32]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    mkdir(s.dir, 0700);
    s.loop = uv_default_loop();
    s.nodes = calloc((size_t)s.count, sizeof *s.nodes);
    if (s.nodes == NULL) {
        fprintf(stderr, "simnodes: out of memory\n");
        return 1;
    }
    for (int i = 0; i < s.count; i++) {
        s.nodes[i].sim = &s;
        s.nodes[i].index = i;
        snprintf(s.nodes[i].hostname, sizeof s.nodes[i].hostname, "%s-%04d", s.prefix, i);
    }
    uv_signal_init(s.loop, &s.sigint);
    uv_signal_init(s.loop, &s.sigterm);
    s.sigint.data = s.sigterm.data = &s;
    uv_signal_start(&s.sigint, signal_cb, SIGINT);
    uv_signal_start(&s.sigterm, signal_cb, SIGTERM);
    s.t0 = uv_now(s.loop);
    start_next(&s);
    uv_run(s.loop, UV_RUN_DEFAULT);
    for (int i = 0; i < s.count; i++) {
        if (s.nodes[i].desc != NULL) {
            swarm__node_description__free_unpacked(s.nodes[i].desc, NULL);
        }
    }
    free(s.nodes);
    return 0;
}
