/*
 * The runtime's view of a container network namespace: one call that makes
 * the VM's tap and the tc redirect next to the veth, one that undoes it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "netsetup/netsetup.h"
#include "netsetup/nl.h"

struct attach_args {
	const char *veth;
	const char *tap_name;
	int tap_fd;
	char tap_made[IFNAMSIZ];
	struct netsetup_netns_info *info;
};

int netsetup_join_tap_to_veth(const char *veth, const char *tap_name,
			      struct netsetup_netns_info *info, int *tap_fd,
			      char tap_made[IFNAMSIZ], struct perr *err)
{
	*tap_fd = -1;
	int rc = netsetup_netns_info_collect(veth, info, err);
	if (rc < 0)
		return rc;
	/* Not persistent: when the VMM dies with the last fd, the tap and the
	 * filters on it go too; cleanup removes the veth's side. */
	autoclose int fd = -1;
	rc = netsetup_tap_create(tap_name, NETSETUP_TAP_VNET_HDR, &fd, tap_made, err);
	if (rc < 0)
		return rc;
	rc = netsetup_link_set_mtu(tap_made, info->mtu, err);
	if (rc == 0)
		rc = netsetup_link_up(tap_made, err);
	if (rc == 0)
		rc = netsetup_tc_redirect_setup(veth, tap_made, err);
	if (rc < 0)
		return rc; /* closing fd removes the tap and whatever hangs on it */
	*tap_fd = steal_fd(&fd);
	return 0;
}

static int attach_in_netns(void *arg, struct perr *err)
{
	struct attach_args *a = arg;
	char uplink[IFNAMSIZ];
	const char *veth = a->veth;
	if (!veth) {
		int rc = netsetup_netns_find_uplink(uplink, err);
		if (rc < 0)
			return rc;
		veth = uplink;
	}
	return netsetup_join_tap_to_veth(veth, a->tap_name, a->info, &a->tap_fd, a->tap_made, err);
}

int netsetup_netns_attach(const char *netns_path, const char *veth, const char *tap_name,
			  int *tap_fd, char tap_name_out[IFNAMSIZ],
			  struct netsetup_netns_info *info, struct perr *err)
{
	*tap_fd = -1;
	struct attach_args a = {.veth = veth, .tap_name = tap_name, .tap_fd = -1, .info = info};
	int rc = netsetup_netns_run(netns_path, attach_in_netns, &a, err);
	if (rc < 0)
		return rc;
	*tap_fd = a.tap_fd;
	if (tap_name_out)
		snprintf(tap_name_out, IFNAMSIZ, "%s", a.tap_made);
	return 0;
}

struct detach_args {
	const char *veth;
	const char *tap_name;
};

static int detach_in_netns(void *arg, struct perr *err)
{
	struct detach_args *d = arg;
	char uplink[IFNAMSIZ];
	const char *veth = d->veth;
	if (!veth) {
		struct perr ignored;
		if (netsetup_netns_find_uplink(uplink, &ignored) == 0)
			veth = uplink;
	}
	int rc = netsetup_tc_redirect_teardown(veth, d->tap_name, err);
	struct perr tap_err;
	int tap_rc = netsetup_tap_delete(d->tap_name, rc < 0 ? &tap_err : err);
	return rc < 0 ? rc : tap_rc;
}

int netsetup_netns_detach(const char *netns_path, const char *veth, const char *tap_name,
			  struct perr *err)
{
	struct detach_args d = {.veth = veth, .tap_name = tap_name};
	if (netns_path && access(netns_path, F_OK) < 0 && errno == ENOENT)
		return 0; /* the namespace is gone, and everything in it */
	return netsetup_netns_run(netns_path, detach_in_netns, &d, err);
}

int netsetup_bridge_attach(const char *bridge, const struct netsetup_addr *bridge_addr,
			   const char *tap_name, int *tap_fd, char tap_name_out[IFNAMSIZ],
			   struct perr *err)
{
	*tap_fd = -1;
	int rc = netsetup_bridge_ensure(bridge, bridge_addr, err);
	if (rc < 0)
		return rc;
	int fd;
	char made[IFNAMSIZ];
	rc = netsetup_tap_create(tap_name, NETSETUP_TAP_VNET_HDR, &fd, made, err);
	if (rc < 0)
		return rc;
	rc = netsetup_link_set_master(made, bridge, err);
	if (rc == 0)
		rc = netsetup_link_up(made, err);
	if (rc < 0) {
		perr_wrap(err, "tap %s", made);
		close(fd); /* not persistent: this removes the tap */
		return rc;
	}
	if (tap_name_out)
		snprintf(tap_name_out, IFNAMSIZ, "%s", made);
	*tap_fd = fd;
	return 0;
}
