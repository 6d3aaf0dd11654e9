/* swarm-image: the image library from the command line, for the
 * integration tests and the bench (not installed).
 *
 *   swarm-image --dir DIR [--insecure-registry H:P]... [--auth B64] CMD ...
 *     pull REF...          pull (concurrently), print "digest NAME@DIGEST"
 *                          and the config fields of each
 *     snapshot DIGEST ID   create a snapshot, print its rootfs
 *     rm ID                remove a snapshot
 *     prune [SECONDS]      image prune (-a, --filter until=SECONDS)
 *     cleanup [KEEP...]    remove leftover snapshots but KEEP
 *     serve SECONDS        run the store's loop that long (auto-prune,
 *                          with --prune-after SECONDS)
 *     resolve REF          print the digest a tag resolves to */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "image.h"

static int exit_code;
static int pulls_left;

static void print_strv(const char *what, char **v, size_t n)
{
    printf("%s", what);
    for (size_t i = 0; i < n; i++) {
        printf(" %s", v[i]);
    }
    printf("\n");
}

static void pull_cb(void *data, int status, const char *errmsg,
                    const struct image_info *info)
{
    const char *ref = data;
    pulls_left--;
    if (status != 0) {
        fprintf(stderr, "pull %s: %s\n", ref, errmsg);
        exit_code = 1;
        return;
    }
    printf("digest %s@%s\n", info->name, info->digest);
    printf("manifest %s\nconfig %s\nplatform %s/%s\n", info->manifest_digest,
           info->config_digest, info->os, info->arch);
    print_strv("entrypoint", info->entrypoint, info->n_entrypoint);
    print_strv("cmd", info->cmd, info->n_cmd);
    print_strv("env", info->env, info->n_env);
    printf("workdir %s\nuser %s\nstopsignal %s\n", info->working_dir, info->user,
           info->stop_signal);
    print_strv("ports", info->exposed_ports, info->n_exposed_ports);
    if (info->healthcheck) {
        print_strv("healthcheck", info->healthcheck->test, info->healthcheck->n_test);
    }
    print_strv("layers", info->diff_ids, info->n_diff_ids);
}

/* The store's prune timer is unref'd: keep the loop alive with a ref'd
 * timer that also gives the prune timer its turns. */
static void serve_stop_cb(uv_timer_t *t)
{
    uv_stop(t->loop);
}

static void closed_cb(void *data)
{
    (void)data;
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *auth = NULL;
    const char *insecure[16];
    struct imgstore_opts opts = {.insecure_registries = insecure};
    char errmsg[SWARM_ERRMSG_SIZE];
    int i = 1;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else if (strcmp(argv[i], "--insecure-registry") == 0 && i + 1 < argc &&
                   opts.n_insecure_registries < 16) {
            insecure[opts.n_insecure_registries++] = argv[++i];
        } else if (strcmp(argv[i], "--prune-after") == 0 && i + 1 < argc) {
            opts.prune_after_s = atoll(argv[++i]);
        } else if (strcmp(argv[i], "--auth") == 0 && i + 1 < argc) {
            auth = argv[++i];
        } else {
            break;
        }
    }
    if (i >= argc) {
        fprintf(stderr, "usage: swarm-image --dir DIR [--insecure-registry H:P] CMD ...\n");
        return 2;
    }
    const char *cmd = argv[i++];
    if (strcmp(cmd, "resolve") == 0 && i < argc) {
        char digest[IMGREF_DIGEST_SIZE];
        if (image_resolve_digest(argv[i], auth, insecure, opts.n_insecure_registries,
                                 digest, errmsg) != 0) {
            fprintf(stderr, "%s\n", errmsg);
            return 1;
        }
        printf("%s\n", digest);
        return 0;
    }
    if (!dir) {
        fprintf(stderr, "swarm-image: --dir is required\n");
        return 2;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct imgstore *s;
    if (imgstore_open(&loop, dir, &opts, &s, errmsg) != 0) {
        fprintf(stderr, "%s\n", errmsg);
        return 1;
    }
    int rv = 0;
    if (strcmp(cmd, "pull") == 0) {
        for (; i < argc; i++) {
            rv = imgstore_pull(s, argv[i], auth, pull_cb, argv[i], NULL, errmsg);
            if (rv != 0) {
                break;
            }
            pulls_left++;
        }
    } else if (strcmp(cmd, "snapshot") == 0 && i + 1 < argc) {
        char rootfs[PATH_MAX];
        rv = imgstore_snapshot_create(s, argv[i], argv[i + 1], rootfs, errmsg);
        if (rv == 0) {
            printf("%s\n", rootfs);
        }
    } else if (strcmp(cmd, "rm") == 0 && i < argc) {
        rv = imgstore_snapshot_remove(s, argv[i], errmsg);
    } else if (strcmp(cmd, "prune") == 0) {
        struct imgstore_prune_result r;
        rv = imgstore_prune(s, i < argc ? atoll(argv[i]) : 0, &r, errmsg);
        if (rv == 0) {
            for (size_t k = 0; k < r.n_images; k++) {
                printf("deleted: %s\n", r.deleted[k]);
            }
            printf("Total reclaimed space: %llu bytes (%zu layers, %zu blobs)\n",
                   (unsigned long long)r.bytes, r.n_layers, r.n_blobs);
            imgstore_prune_result_free(&r);
        }
    } else if (strcmp(cmd, "serve") == 0 && i < argc) {
        uv_timer_t stop;
        uv_timer_init(&loop, &stop);
        uv_timer_start(&stop, serve_stop_cb, (uint64_t)atoll(argv[i]) * 1000, 0);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_close((uv_handle_t *)&stop, NULL);
    } else if (strcmp(cmd, "cleanup") == 0) {
        size_t n = 0;
        rv = imgstore_cleanup_leftovers(s, (const char *const *)argv + i,
                                        (size_t)(argc - i), &n, errmsg);
        printf("removed %zu\n", n);
    } else {
        fprintf(stderr, "swarm-image: unknown command %s\n", cmd);
        rv = SWARM_EINVAL;
        snprintf(errmsg, sizeof(errmsg), "usage");
    }
    if (rv != 0) {
        fprintf(stderr, "%s\n", errmsg);
        exit_code = 1;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    imgstore_close(s, closed_cb, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return exit_code;
}
