/* The CA service on the cluster port. GetRootCACertificate may be called by
 * anyone (a joining node fetches the root and checks it against the digest in
 * its token before it sends anything secret). */
#include <stdlib.h>

#include "ca.pb-c.h"
#include "err.h"
#include "internal.h"
#include "pki.h"

static void get_root_ca_cb(struct api_call *call, const ProtobufCMessage *msg, void *data)
{
    struct manager *m = *(struct manager **)data;
    Swarm__GetRootCACertificateResponse resp = SWARM__GET_ROOT_CACERTIFICATE_RESPONSE__INIT;
    char *pem = NULL;
    size_t len = 0;
    if (m == NULL || m->root_cert == NULL) {
        api_call_error(call, API_UNAVAILABLE, "%s", MANAGER_NOT_MANAGER_MSG);
        return;
    }
    if (pki_cert_to_pem(m->root_cert, &pem, &len) != 0) {
        api_call_error(call, API_INTERNAL, "could not encode the root CA certificate");
        return;
    }
    resp.certificate.data = (uint8_t *)pem;
    resp.certificate.len = len;
    api_call_reply(call, &resp.base);
    free(pem);
}

void caserver_register(struct api_server *api, struct manager **current)
{
    api_server_register(api, &swarm__ca__descriptor, "GetRootCACertificate",
                        API_ROLE_ANONYMOUS | API_ROLE_WORKER | API_ROLE_MANAGER | API_ROLE_LOCAL,
                        get_root_ca_cb, current);
}

void manager_register_api(struct api_server *api, struct manager **current)
{
    controlapi_register(api, current);
    caserver_register(api, current);
}
