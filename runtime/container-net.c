/* A container's network, at create and at delete (container-net.h). */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "runtime/container-net.h"

/* The bridge's address (petrel.conf) and the container's (annotation, if any). */
static int bridge_addresses(const struct oci_config *cfg, const struct petrel_conf *conf,
			    struct netsetup_addr *bridge_addr, struct netsetup_addr *want,
			    struct perr *err)
{
	const char *ann = oci_annotation(cfg, CONTAINER_NET_ANN_ADDRESS);
	if (netsetup_cidr_parse(conf->bridge_address, bridge_addr, err) < 0)
		return perr_wrap(err, "bridge_address");
	if (ann && netsetup_cidr_parse(ann, want, err) < 0)
		return perr_wrap(err, "annotation %s", CONTAINER_NET_ANN_ADDRESS);
	return 0;
}

static int prepare_bridge(const struct oci_config *cfg, const struct petrel_conf *conf,
			  const char *root, const char *id, struct container_net *cn,
			  struct perr *err)
{
	struct netsetup_addr bridge_addr, want;
	const char *ann = oci_annotation(cfg, CONTAINER_NET_ANN_ADDRESS);
	int rc = bridge_addresses(cfg, conf, &bridge_addr, &want, err);
	if (rc < 0)
		return rc;
	char tap[IFNAMSIZ];
	netsetup_bridge_tap_name(root, id, tap);
	struct netsetup_bridge_port_req req = {.bridge = conf->bridge,
					       .bridge_addr = &bridge_addr,
					       .addr = ann ? &want : NULL,
					       .tap_name = tap,
					       .owner = id};
	rc = netsetup_bridge_port_attach(&req, &cn->net, err);
	if (rc < 0)
		return ann ? perr_wrap(err, "annotation %s=%s", CONTAINER_NET_ANN_ADDRESS, ann)
			   : rc;
	cn->for_agent = true;
	return 0;
}

int container_net_check(const struct oci_config *cfg, const struct petrel_conf *conf,
			struct perr *err)
{
	const struct oci_namespace *ns = oci_find_namespace(cfg, OCI_NS_NETWORK);
	const char *ann = oci_annotation(cfg, CONTAINER_NET_ANN_ADDRESS);
	if (ns && ann)
		return perr_setx(err, -EINVAL,
				 "annotation %s: only for a container without a network "
				 "namespace (bridge mode)",
				 CONTAINER_NET_ANN_ADDRESS);
	if (ns || strcmp(conf->bridge, "none") == 0)
		return 0;
	struct netsetup_addr bridge_addr, want;
	return bridge_addresses(cfg, conf, &bridge_addr, &want, err);
}

int container_net_prepare(const struct oci_config *cfg, const struct petrel_conf *conf,
			  const char *root, const char *id, struct container_net *cn,
			  struct perr *err)
{
	memset(cn, 0, sizeof(*cn));
	cn->net.tap_fd = -1;
	cn->netns_fd = -1;
	int rc;
	const struct oci_namespace *ns = oci_find_namespace(cfg, OCI_NS_NETWORK);
	if (!ns) {
		if (strcmp(conf->bridge, "none") == 0)
			return 0;
		return prepare_bridge(cfg, conf, root, id, cn, err);
	}
	if (!ns->path) {
		rc = netsetup_netns_new_with_tap(NETSETUP_CONTAINER_TAP, &cn->net.tap_fd,
						 &cn->netns_fd, err);
		if (rc < 0)
			return perr_wrap(err, "linux.namespaces: network");
		/* Its only peer is the tap: any locally administered MAC will do. */
		static const uint8_t mac[6] = {0x02, 0x50, 0, 0, 0, 0x01};
		memcpy(cn->net.veth.mac, mac, sizeof(mac));
		return 0;
	}
	/* A namespace with nothing but lo (podman --network none) leaves the VM
	 * without a NIC. */
	rc = netsetup_container_prepare(ns->path, NULL, &cn->net, err);
	if (rc == -ENODEV) {
		log_debug("%s: %s; no network device", ns->path, err->msg);
		perr_clear(err);
		return 0;
	}
	if (rc < 0)
		return perr_wrap(err, "linux.namespaces: network %s", ns->path);
	cn->for_agent = true;
	cn->netns_path = ns->path;
	return 0;
}

void container_net_cleanup(const char *root, const char *id, const char *netns_path)
{
	struct perr err;
	perr_clear(&err);
	if (netns_path && netsetup_container_cleanup(netns_path, NULL, &err) < 0)
		log_warn("network cleanup: %s", err.msg);
	/* The VMM's end took its tap; this is for a tap something else held. */
	char tap[IFNAMSIZ];
	netsetup_bridge_tap_name(root, id, tap);
	perr_clear(&err);
	if (netsetup_bridge_port_detach(tap, id, &err) < 0)
		log_warn("network cleanup: %s", err.msg);
}
