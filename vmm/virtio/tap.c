#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/vhost.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/cleanup.h"

/* The flags a usable queue has: a tap (Ethernet frames), no 4-byte packet
 * information prefix, and a virtio-net header. */
#define TAP_REQUIRED_FLAGS (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR)

static int tap_open_ifname(const char *ifname, bool multi_queue, int *fd_out, struct perr *err)
{
	autoclose int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return perr_set(err, -errno, "open tap '%s': /dev/net/tun", ifname);
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_flags = TAP_REQUIRED_FLAGS | (multi_queue ? IFF_MULTI_QUEUE : 0);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int e = errno;
		if (e == EBUSY)
			return perr_set(err, -e, "open tap '%s' (another process has it open)",
					ifname);
		if (e == EINVAL && multi_queue)
			return perr_set(err, -e,
					"open tap '%s' with IFF_MULTI_QUEUE (queues= needs a tap "
					"created multi_queue, or none of that name)",
					ifname);
		if (e == EINVAL)
			return perr_set(err, -e,
					"open tap '%s' (is it a tun device, a multiqueue tap or "
					"another kind of link?)",
					ifname);
		return perr_set(err, -e, "open tap '%s'", ifname);
	}
	*fd_out = steal_fd(&fd);
	return 0;
}

/* An inherited fd: the caller's promise is checked, not trusted. With
 * multi_queue, it must be a queue of an IFF_MULTI_QUEUE tap. */
static int tap_adopt_fd(int fd, bool multi_queue, char ifname_out[IFNAMSIZ], struct perr *err)
{
	int fl = fcntl(fd, F_GETFD);
	if (fl < 0)
		return perr_set(err, -errno, "fd=%d", fd);
	struct ifreq ifr = {0};
	if (ioctl(fd, TUNGETIFF, &ifr) < 0) {
		if (errno == EBADFD)
			return perr_setx(err, -EINVAL,
					 "fd=%d: a /dev/net/tun fd not attached to any device "
					 "(TUNSETIFF was not done, or the queue is detached)",
					 fd);
		return perr_setx(err, -EINVAL, "fd=%d: not a tap device (TUNGETIFF: %s)", fd,
				 strerror(errno));
	}
	snprintf(ifname_out, IFNAMSIZ, "%.*s", IFNAMSIZ - 1, ifr.ifr_name);
	unsigned flags = (unsigned short)ifr.ifr_flags;
	if (!(flags & IFF_TAP))
		return perr_setx(err, -EINVAL, "fd=%d: '%s' is a tun (IP) device, not a tap", fd,
				 ifname_out);
	if (!(flags & IFF_NO_PI))
		return perr_setx(err, -EINVAL,
				 "fd=%d: tap '%s' was opened without IFF_NO_PI; reopen it with "
				 "IFF_TAP|IFF_NO_PI|IFF_VNET_HDR",
				 fd, ifname_out);
	/* The header cannot be switched on after TUNSETIFF: the opener must ask. */
	if (!(flags & IFF_VNET_HDR))
		return perr_setx(err, -EINVAL,
				 "fd=%d: tap '%s' was opened without IFF_VNET_HDR; reopen it "
				 "with IFF_TAP|IFF_NO_PI|IFF_VNET_HDR",
				 fd, ifname_out);
	if (multi_queue && !(flags & IFF_MULTI_QUEUE))
		return perr_setx(err, -EINVAL,
				 "fd=%d: tap '%s' is not a multi-queue tap; fds= with several "
				 "fds needs queues of one tap opened with IFF_MULTI_QUEUE",
				 fd, ifname_out);
	if (fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0)
		return perr_set(err, -errno, "fd=%d: F_SETFD", fd);
	int st = fcntl(fd, F_GETFL);
	if (st < 0 || fcntl(fd, F_SETFL, st | O_NONBLOCK) < 0)
		return perr_set(err, -errno, "fd=%d: O_NONBLOCK", fd);
	return 0;
}

/* Queue i of the tap: opened by name, or the i-th inherited fd. */
static int tap_open_queue(const struct vmm_netdev *netdev, unsigned i, int *fd_out,
			  char ifname_out[IFNAMSIZ], struct perr *err)
{
	bool multi = netdev->queues > 1;
	if (netdev->ifname[0]) {
		snprintf(ifname_out, IFNAMSIZ, "%s", netdev->ifname);
		return tap_open_ifname(netdev->ifname, multi, fd_out, err);
	}
	int fd = netdev->fds[i];
	int ret = tap_adopt_fd(fd, multi, ifname_out, err);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	*fd_out = fd;
	return 0;
}

static int tap_setup_queue(int fd, const char *ifname, struct perr *err)
{
	int hdr_len = TAP_VNET_HDR_LEN;
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr_len) < 0)
		return perr_set(err, -errno, "tap '%s': TUNSETVNETHDRSZ %d", ifname, hdr_len);
	/* Nothing until the guest says what it can take (at DRIVER_OK). */
	int ret = tap_set_offload(fd, 0);
	if (ret < 0)
		return perr_set(err, ret, "tap '%s': TUNSETOFFLOAD", ifname);
	return 0;
}

int tap_open(const struct vmm_netdev *netdev, int *fds_out, char ifname_out[IFNAMSIZ],
	     struct perr *err)
{
	unsigned n = netdev->queues ? netdev->queues : 1;
	unsigned opened = 0;
	int ret = 0;
	if (!netdev->ifname[0] && netdev->n_fds == 0)
		return perr_setx(err, -EINVAL, "neither ifname= nor fd= given");
	if (!netdev->ifname[0] && netdev->n_fds != n) {
		/* Inherited fds are ours from here on, also on this error. */
		for (unsigned i = 0; i < netdev->n_fds; i++)
			close(netdev->fds[i]);
		return perr_setx(err, -EINVAL,
				 "queues=%u needs %u tap queue fds (fds=N:M...), %u given", n, n,
				 netdev->n_fds);
	}
	for (; opened < n; opened++) {
		char name[IFNAMSIZ];
		ret = tap_open_queue(netdev, opened, &fds_out[opened], name, err);
		if (ret < 0)
			goto fail;
		if (opened == 0) {
			snprintf(ifname_out, IFNAMSIZ, "%s", name);
		} else if (strcmp(name, ifname_out) != 0) {
			close(fds_out[opened]);
			ret = perr_setx(err, -EINVAL,
					"fd=%d is a queue of tap '%s', fd=%d one of '%s': fds= "
					"takes the queues of one tap",
					netdev->fds[opened], name, netdev->fds[0], ifname_out);
			goto fail;
		}
		ret = tap_setup_queue(fds_out[opened], name, err);
		if (ret < 0) {
			close(fds_out[opened]);
			goto fail;
		}
	}
	return 0;
fail:
	for (unsigned i = 0; i < opened; i++)
		close(fds_out[i]);
	/* Inherited fds not reached yet are ours too. */
	for (unsigned i = opened + 1; !netdev->ifname[0] && i < n; i++)
		close(netdev->fds[i]);
	return ret;
}

int tap_set_queue_enabled(int fd, bool enabled)
{
	struct ifreq ifr = {0};
	ifr.ifr_flags = enabled ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE;
	return ioctl(fd, TUNSETQUEUE, &ifr) < 0 ? -errno : 0;
}

int tap_set_offload(int fd, unsigned offloads)
{
	unsigned long tun = 0;
	if (offloads & TAP_OFFLOAD_CSUM) {
		tun |= TUN_F_CSUM;
		/* Segmentation offloads need partial checksums. */
		if (offloads & TAP_OFFLOAD_TSO4)
			tun |= TUN_F_TSO4;
		if (offloads & TAP_OFFLOAD_TSO6)
			tun |= TUN_F_TSO6;
		if ((offloads & TAP_OFFLOAD_ECN) && (tun & (TUN_F_TSO4 | TUN_F_TSO6)))
			tun |= TUN_F_TSO_ECN;
	}
	return ioctl(fd, TUNSETOFFLOAD, tun) < 0 ? -errno : 0;
}

int tap_check_vhost_net_fd(int fd, struct perr *err)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return perr_set(err, -errno, "vhostfd=%d", fd);
	if (!S_ISCHR(st.st_mode))
		return perr_setx(err, -EINVAL,
				 "vhostfd=%d: not a character device (not /dev/vhost-net)", fd);
	uint64_t features;
	if (ioctl(fd, VHOST_GET_FEATURES, &features) < 0)
		return perr_setx(err, -EINVAL,
				 "vhostfd=%d: not a vhost device (VHOST_GET_FEATURES: %s)", fd,
				 strerror(errno));
	/* Index ~0 is out of range: vhost-net refuses it (EPERM before
	 * VHOST_SET_OWNER, ENOBUFS after) without changing anything, while
	 * other vhost devices do not know the request at all (ENOTTY). */
	struct vhost_vring_file probe = {.index = ~0u, .fd = -1};
	if (ioctl(fd, VHOST_NET_SET_BACKEND, &probe) < 0 && errno == ENOTTY)
		return perr_setx(err, -EINVAL, "vhostfd=%d: a vhost device, but not vhost-net", fd);
	return 0;
}
