/*
 * A container's network, chosen from config.json (docs/network.md):
 *  - linux.namespaces has a network entry with a path (podman, CNI,
 *    netavark): a tap in it, tc-redirected to its veth;
 *  - a network entry without a path: a new, empty namespace with a tap that
 *    reaches nothing, and the VMM runs in it;
 *  - no network entry: bridge mode, a tap on petrel.conf's bridge and an
 *    address from it (or from the io.petrel.net.address annotation).
 */
#ifndef PETREL_RUNTIME_CONTAINER_NET_H
#define PETREL_RUNTIME_CONTAINER_NET_H

#include <stdbool.h>

#include "common/error.h"
#include "netsetup/netsetup.h"
#include "oci/oci.h"
#include "runtime/config-file.h"

#define CONTAINER_NET_ANN_ADDRESS "io.petrel.net.address"

struct container_net {
	struct netsetup_container_net net; /* net.tap_fd < 0: the VM gets no NIC */
	bool for_agent;			   /* net.veth is what the guest's eth0 looks like */
	int netns_fd;		/* a namespace made for the VM, to start the VMM in; or -1 */
	const char *netns_path; /* config.json's namespace (cleaned at delete); or NULL */
};

/* What can be refused before anything is made: the address annotation
 * beside a network namespace, an address that does not parse. */
int container_net_check(const struct oci_config *cfg, const struct petrel_conf *conf,
			struct perr *err);
/* Makes the container's network as above, for a config that passed
 * container_net_check (create checks before it makes anything). On failure
 * nothing is left (the bridge, shared, stays). The caller owns net.tap_fd and
 * netns_fd. */
int container_net_prepare(const struct oci_config *cfg, const struct petrel_conf *conf,
			  const char *root, const char *id, struct container_net *cn,
			  struct perr *err);
/* delete: petrel's filters in config.json's namespace (netns_path, from the
 * state; NULL when none) and the container's bridge tap if the VMM's end
 * did not take it. Errors are logged; deleting goes on. */
void container_net_cleanup(const char *root, const char *id, const char *netns_path);

#endif
