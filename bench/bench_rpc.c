/* bench_rpc: unary gRPC round trips against a running swarmd, from the
 * project's own C client (api/), one HTTP/2 connection, a fixed number of
 * calls kept in flight for a fixed time. Prints `name: value unit` lines.
 *
 *   bench_rpc --unix PATH [--method version|cluster] [--inflight N]
 *             [--seconds S] [--name PREFIX]
 *   bench_rpc --tls IP:PORT --ca F --cert F --key F [--method cluster] ...
 *
 * Latency is measured per call from api_client_unary() to its callback.
 * If the server closes the connection (as it does today after ~1000 calls,
 * see README/bench notes), the benchmark reconnects once no call is left in
 * flight and counts it in `_reconnects`. */
#include <getopt.h>
#include <stdbool.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "api.h"
#include "control.pb-c.h"
#include "swarm.pb-c.h"
#include "vec.h"

struct bench {
    uv_loop_t *loop;
    struct api_client *client;
    const char *method; /* "version" or "cluster" */
    int inflight;
    uint64_t end_ns;
    int running;
    uint64_t *lat;
    size_t n_lat, cap_lat;
    size_t errors;
    size_t reconnects;
    const char *unix_path, *tls_addr;
    SSL_CTX *ctx;
    enum api_status last_error;
    char last_msg[256];
    uint64_t t_start, t_stop;
    int connect_failed;
};

struct slot {
    struct bench *b;
    uint64_t t0;
};

static void issue(struct slot *s);

static void reconnect(struct bench *b);

static void on_resp(enum api_status status, const char *message,
                    const ProtobufCMessage *resp, void *data)
{
    struct slot *s = data;
    struct bench *b = s->b;
    uint64_t now = uv_hrtime();
    b->running--;
    if (status == API_OK) {
        if (vec_grow(b->lat, b->cap_lat, b->n_lat + 1) != 0) {
            abort(); /* a benchmark with lost samples would report wrong figures */
        }
        b->lat[b->n_lat++] = now - s->t0;
    } else if (!(status == API_UNAVAILABLE && !api_client_connected(b->client))) {
        b->errors++;
        b->last_error = status;
        snprintf(b->last_msg, sizeof b->last_msg, "%s", message ? message : "");
    }
    bool more = now < b->end_ns && b->errors < 100 && b->reconnects < 10000;
    if (more && api_client_connected(b->client)) {
        issue(s);
    } else if (b->running == 0) {
        if (more) {
            reconnect(b);
        } else {
            b->t_stop = now;
            api_client_close(b->client, NULL, NULL);
            b->client = NULL;
        }
    }
}

static void issue(struct slot *s)
{
    struct bench *b = s->b;
    int rv;
    s->t0 = uv_hrtime();
    if (strcmp(b->method, "version") == 0) {
        Swarm__VersionRequest req = SWARM__VERSION_REQUEST__INIT;
        rv = api_client_unary(b->client, &swarm__swarm__descriptor, "Version",
                              &req.base, 10000, on_resp, s);
    } else {
        Swarm__GetClusterRequest req = SWARM__GET_CLUSTER_REQUEST__INIT;
        rv = api_client_unary(b->client, &swarm__control__descriptor,
                              "GetCluster", &req.base, 10000, on_resp, s);
    }
    if (rv != 0) {
        fprintf(stderr, "bench_rpc: api_client_unary failed: %d\n", rv);
        b->errors++;
        if (b->running == 0 && b->client != NULL) {
            b->t_stop = uv_hrtime();
            api_client_close(b->client, NULL, NULL);
            b->client = NULL;
        }
        return;
    }
    b->running++;
}

static struct slot *slots;

static void on_connect(struct api_client *c, int status, const char *errmsg,
                       void *data)
{
    struct bench *b = data;
    if (status != 0) {
        fprintf(stderr, "bench_rpc: connect failed: %s\n", errmsg ? errmsg : "?");
        b->connect_failed = 1;
        b->t_stop = uv_hrtime();
        api_client_close(c, NULL, NULL);
        b->client = NULL;
        return;
    }
    if (b->t_start == 0) {
        b->t_start = uv_hrtime();
        b->end_ns += b->t_start;
    }
    for (int i = 0; i < b->inflight; i++) {
        slots[i].b = b;
        issue(&slots[i]);
    }
}

static int start_connect(struct bench *b)
{
    b->client = api_client_new(b->loop, API_DEFAULT_MAX_MSG);
    if (b->unix_path) {
        return api_client_connect_unix(b->client, b->unix_path, on_connect, b);
    }
    return api_client_connect_tls(b->client, b->tls_addr, b->ctx, NULL, 10000,
                                  on_connect, b);
}

static void reconnect(struct bench *b)
{
    b->reconnects++;
    api_client_close(b->client, NULL, NULL);
    if (start_connect(b) != 0) {
        fprintf(stderr, "bench_rpc: reconnect failed\n");
        b->connect_failed = 1;
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(const uint64_t *v, size_t n, double p)
{
    if (n == 0) {
        return 0;
    }
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return (double)v[i] / 1e6;
}

static SSL_CTX *client_ctx(const char *ca, const char *cert, const char *key)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL || !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
        SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1 ||
        SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        ERR_print_errors_fp(stderr);
        exit(2);
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return ctx;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_rpc (--unix PATH | --tls IP:PORT --ca F --cert F --key F)\n"
            "                 [--method version|cluster] [--inflight N] [--seconds S]\n"
            "                 [--name PREFIX]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *unix_path = NULL, *tls_addr = NULL, *ca = NULL, *cert = NULL,
               *key = NULL, *name = NULL;
    struct bench b = {.method = "cluster", .inflight = 1};
    double seconds = 3;
    static const struct option opts[] = {
        {"unix", required_argument, NULL, 'u'},
        {"tls", required_argument, NULL, 't'},
        {"ca", required_argument, NULL, 'a'},
        {"cert", required_argument, NULL, 'c'},
        {"key", required_argument, NULL, 'k'},
        {"method", required_argument, NULL, 'm'},
        {"inflight", required_argument, NULL, 'i'},
        {"seconds", required_argument, NULL, 's'},
        {"name", required_argument, NULL, 'n'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'u': unix_path = optarg; break;
        case 't': tls_addr = optarg; break;
        case 'a': ca = optarg; break;
        case 'c': cert = optarg; break;
        case 'k': key = optarg; break;
        case 'm': b.method = optarg; break;
        case 'i': b.inflight = atoi(optarg); break;
        case 's': seconds = atof(optarg); break;
        case 'n': name = optarg; break;
        default: usage();
        }
    }
    if ((unix_path == NULL) == (tls_addr == NULL) || b.inflight < 1 ||
        seconds <= 0 || (tls_addr && (!ca || !cert || !key)) ||
        (strcmp(b.method, "version") != 0 && strcmp(b.method, "cluster") != 0)) {
        usage();
    }
    signal(SIGPIPE, SIG_IGN);
    b.loop = uv_default_loop();
    b.end_ns = (uint64_t)(seconds * 1e9);
    b.unix_path = unix_path;
    b.tls_addr = tls_addr;
    if (tls_addr) {
        b.ctx = client_ctx(ca, cert, key);
    }
    slots = calloc((size_t)b.inflight, sizeof *slots);
    if (slots == NULL) {
        fprintf(stderr, "bench_rpc: out of memory\n");
        return 1;
    }
    int rv = start_connect(&b);
    if (rv != 0) {
        fprintf(stderr, "bench_rpc: connect: %d\n", rv);
        return 1;
    }
    uv_run(b.loop, UV_RUN_DEFAULT);
    if (b.ctx) {
        SSL_CTX_free(b.ctx);
    }
    if (b.connect_failed) {
        return 1;
    }
    double wall = (double)(b.t_stop - b.t_start) / 1e9;
    qsort(b.lat, b.n_lat, sizeof *b.lat, cmp_u64);
    char prefix[128];
    snprintf(prefix, sizeof prefix, "%s",
             name ? name : (unix_path ? "c_unix" : "c_mtls"));
    printf("%s_calls: %zu calls\n", prefix, b.n_lat);
    printf("%s_rps: %.0f calls/s\n", prefix, wall > 0 ? (double)b.n_lat / wall : 0);
    printf("%s_p50: %.3f ms\n", prefix, pct(b.lat, b.n_lat, 0.50));
    printf("%s_p99: %.3f ms\n", prefix, pct(b.lat, b.n_lat, 0.99));
    printf("%s_reconnects: %zu connections lost and reopened\n", prefix, b.reconnects);
    if (b.errors) {
        printf("%s_errors: %zu calls (last: %s %s)\n", prefix, b.errors,
               api_status_name(b.last_error), b.last_msg);
    }
    free(b.lat);
    free(slots);
    uv_loop_close(b.loop);
    return b.errors ? 1 : 0;
}
