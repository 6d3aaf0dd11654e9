/* Unit tests of the manager's identity (identity.h) in a temporary state
 * dir: swarm init's keys and certificates are written where statedir.h
 * names them and load back the same; the node certificate is a manager's
 * of this node and cluster, signed by the root; missing files fail the load
 * with the path; a reload takes a new root and certificate (references
 * counted, the contexts updated in place); a root trusted before the
 * contexts exist is simply kept. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "err.h"
#include "identity.h"
#include "pki.h"
#include "statedir.h"
#include "test.h"

#define NOW_S 1700000000LL

static void make_dir(char *base)
{
    snprintf(base, 64, "/tmp/test_identity.XXXXXX");
    if (mkdtemp(base) == NULL) {
        abort();
    }
}

TEST(create_then_load_gives_the_same_identity)
{
    char dir[64], err[SWARM_ERRMSG_SIZE] = "", cn[256], ou[256], o[256];
    struct identity made = {0}, loaded = {0};
    EVP_PKEY *root_key = NULL;
    make_dir(dir);
    ASSERT_INT_EQ(identity_create(&made, dir, "node1", "cluster1", NOW_S, 3600, &root_key, err),
                  0);
    ASSERT(root_key != NULL);
    ASSERT_INT_EQ(pki_cert_verify(made.root_cert, made.node_cert, NOW_S + 60, err), 0);
    ASSERT_INT_EQ(pki_cert_identity(made.node_cert, cn, ou, o), 0);
    ASSERT_STR_EQ(cn, "node1");
    ASSERT_STR_EQ(ou, API_OU_MANAGER);
    ASSERT_STR_EQ(o, "cluster1");
    ASSERT_INT_EQ(identity_load(&loaded, dir, err), 0);
    ASSERT_INT_EQ(X509_cmp(made.root_cert, loaded.root_cert), 0);
    ASSERT_INT_EQ(X509_cmp(made.node_cert, loaded.node_cert), 0);
    ASSERT_INT_EQ(EVP_PKEY_eq(made.node_key, loaded.node_key), 1);
    ASSERT_INT_EQ(sk_X509_num(loaded.node_chain), 0);
    ASSERT_INT_EQ(identity_contexts_new(&loaded, err), 0);
    ASSERT(loaded.server_ctx != NULL && loaded.client_ctx != NULL);
    EVP_PKEY_free(root_key);
    identity_free(&made);
    identity_free(&loaded);
    ASSERT(loaded.root_cert == NULL && loaded.server_ctx == NULL);
    ASSERT_INT_EQ(statedir_remove_tree(dir), 0);
}

TEST(load_without_files_fails_with_the_path)
{
    char dir[64], err[SWARM_ERRMSG_SIZE] = "";
    struct identity id = {0};
    make_dir(dir);
    ASSERT(identity_load(&id, dir, err) != 0);
    ASSERT(strstr(err, STATEDIR_ROOT_CA_CERT) != NULL);
    identity_free(&id);
    ASSERT_INT_EQ(statedir_remove_tree(dir), 0);
}

TEST(create_in_missing_dir_fails)
{
    char err[SWARM_ERRMSG_SIZE] = "";
    struct identity id = {0};
    EVP_PKEY *root_key = NULL;
    ASSERT_INT_EQ(identity_create(&id, "/nonexistent/swarmd-test", "n", "c", NOW_S, 3600,
                                  &root_key, err),
                  SWARM_EIO);
    ASSERT(strstr(err, "/nonexistent/swarmd-test/" STATEDIR_CERTS) != NULL);
    ASSERT(root_key == NULL);
    identity_free(&id);
}

TEST(reload_and_trust_root)
{
    char a[64], b[64], err[SWARM_ERRMSG_SIZE] = "";
    struct identity id = {0}, other = {0};
    EVP_PKEY *ka = NULL, *kb = NULL;
    make_dir(a);
    make_dir(b);
    ASSERT_INT_EQ(identity_create(&id, a, "node1", "cluster1", NOW_S, 3600, &ka, err), 0);
    ASSERT_INT_EQ(identity_create(&other, b, "node1", "cluster1", NOW_S, 3600, &kb, err), 0);
    /* Before the contexts: the root is simply taken. */
    ASSERT_INT_EQ(identity_trust_root(&id, other.root_cert, err), 1);
    ASSERT(id.root_cert == other.root_cert);
    ASSERT_INT_EQ(identity_contexts_new(&id, err), 0);
    /* A new certificate and key (no chain): taken with their own references. */
    ASSERT_INT_EQ(identity_reload(&id, NULL, other.node_cert, NULL, other.node_key, err), 0);
    ASSERT(id.node_cert == other.node_cert && id.node_key == other.node_key);
    ASSERT(id.node_chain != NULL && sk_X509_num(id.node_chain) == 0);
    /* After the contexts: as a reload of the root alone. */
    ASSERT_INT_EQ(identity_trust_root(&id, other.root_cert, err), 0);
    identity_free(&other); /* id keeps its references */
    char cn[256], ou[256], o[256];
    ASSERT_INT_EQ(pki_cert_identity(id.node_cert, cn, ou, o), 0);
    ASSERT_STR_EQ(cn, "node1");
    EVP_PKEY_free(ka);
    EVP_PKEY_free(kb);
    identity_free(&id);
    ASSERT_INT_EQ(statedir_remove_tree(a), 0);
    ASSERT_INT_EQ(statedir_remove_tree(b), 0);
}

TEST_MAIN()
