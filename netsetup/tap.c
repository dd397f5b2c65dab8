/*
 * Taps through /dev/net/tun. The queue fd is the product: it goes to the VMM
 * (`-netdev tap,fd=N`), which then needs no CAP_NET_ADMIN of its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "netsetup/netsetup.h"
#include "netsetup/nl.h"

/* struct virtio_net_hdr_mrg_rxbuf: the header every virtio 1.x net device
 * uses (virtio 1.2 section 5.1.6, num_buffers is always present). */
#define NETSETUP_VNET_HDR_LEN 12

int netsetup_tap_create(const char *name, unsigned flags, int *fd_out, char name_out[IFNAMSIZ],
			struct perr *err)
{
	*fd_out = -1;
	if (!name || !name[0] || strlen(name) >= IFNAMSIZ)
		return perr_setx(err, -EINVAL, "tap '%s': a name of 1 to %d bytes is needed",
				 name ? name : "", IFNAMSIZ - 1);
	if (strchr(name, '/') || strpbrk(name, ": \t\n"))
		return perr_setx(err, -EINVAL, "tap '%s': not a valid interface name", name);

	autoclose int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (e == ENOENT || e == ENODEV)
			return perr_setx(err, -e,
					 "tap %s: /dev/net/tun: %s (is the tun module loaded?)",
					 name, strerror(e));
		return netsetup_errno_fail(-e, err, "tap %s: /dev/net/tun", name);
	}

	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	/* IFF_TUN_EXCL: never attach to a device someone else made. */
	ifr.ifr_flags = (short)(IFF_TAP | IFF_NO_PI | IFF_TUN_EXCL);
	if (flags & NETSETUP_TAP_VNET_HDR)
		ifr.ifr_flags |= IFF_VNET_HDR;
	if (flags & NETSETUP_TAP_MULTI_QUEUE)
		ifr.ifr_flags |= IFF_MULTI_QUEUE;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int e = errno;
		if (e == EBUSY)
			return perr_setx(err, -EEXIST, "tap %s: already exists", name);
		return netsetup_errno_fail(-e, err, "tap %s", name);
	}
	char made[IFNAMSIZ];
	snprintf(made, sizeof(made), "%s", ifr.ifr_name);

	if (flags & NETSETUP_TAP_VNET_HDR) {
		int len = NETSETUP_VNET_HDR_LEN;
		if (ioctl(fd, TUNSETVNETHDRSZ, &len) < 0)
			return netsetup_errno_fail(-errno, err, "tap %s: vnet header size", made);
	}
	if (flags & NETSETUP_TAP_PERSIST) {
		if (ioctl(fd, TUNSETPERSIST, 1L) < 0)
			return netsetup_errno_fail(-errno, err, "tap %s: persist", made);
	}
	/* Closing fd on an error above removes the tap: it is not persistent yet. */
	if (name_out)
		snprintf(name_out, IFNAMSIZ, "%s", made);
	*fd_out = steal_fd(&fd);
	return 0;
}

int netsetup_tap_set_owner(int fd, const char *name, uid_t uid, struct perr *err)
{
	if (ioctl(fd, TUNSETOWNER, (unsigned long)uid) < 0)
		return netsetup_errno_fail(-errno, err, "tap %s: owner %u", name, (unsigned)uid);
	return 0;
}

int netsetup_tap_add_persistent(const char *name, const char *bridge, long owner, struct perr *err)
{
	int fd;
	char made[IFNAMSIZ];
	int rc =
	    netsetup_tap_create(name, NETSETUP_TAP_VNET_HDR | NETSETUP_TAP_PERSIST, &fd, made, err);
	if (rc < 0)
		return rc;
	if (owner >= 0)
		rc = netsetup_tap_set_owner(fd, made, (uid_t)owner, err);
	if (rc == 0) {
		if (bridge)
			rc = netsetup_link_set_master(made, bridge, err);
		if (rc == 0)
			rc = netsetup_link_up(made, err);
		if (rc < 0)
			perr_wrap(err, "tap %s", made);
	}
	if (rc < 0) /* undo the persistence so that closing the fd removes the tap */
		(void)ioctl(fd, TUNSETPERSIST, 0L);
	close(fd);
	return rc;
}
