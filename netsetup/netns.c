/*
 * Entering a container's network namespace and always coming back.
 * setns(2) moves only the calling thread, and a netlink socket or tun queue
 * belongs to the namespace it was opened in: every netsetup call opens its
 * own after the switch, and what it hands back (a tap fd) keeps working once
 * the thread is home again.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "netsetup/netsetup.h"
#include "netsetup/nl.h"

#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

static const char *ns_type_name(int type)
{
	switch (type) {
	case CLONE_NEWNS:
		return "mount";
	case CLONE_NEWUTS:
		return "uts";
	case CLONE_NEWIPC:
		return "ipc";
	case CLONE_NEWUSER:
		return "user";
	case CLONE_NEWPID:
		return "pid";
	case CLONE_NEWNET:
		return "network";
	case CLONE_NEWCGROUP:
		return "cgroup";
	case CLONE_NEWTIME:
		return "time";
	default:
		return "unknown";
	}
}

int netsetup_netns_open(const char *path, int *fd_out, struct perr *err)
{
	*fd_out = -1;
	if (!path || !path[0])
		return perr_setx(err, -EINVAL, "netns: empty path");
	autoclose int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return perr_set(err, -errno, "netns %s", path);

	int type = ioctl(fd, NS_GET_NSTYPE);
	if (type < 0) {
		int e = errno;
		struct statfs sfs;
		if (fstatfs(fd, &sfs) < 0 || (unsigned long)sfs.f_type != NSFS_MAGIC)
			return perr_setx(err, -EINVAL,
					 "netns %s: not a namespace file (expected e.g. "
					 "/run/netns/NAME or /proc/PID/ns/net)",
					 path);
		/* nsfs, but a kernel before 4.11 without NS_GET_NSTYPE: setns()
		 * with CLONE_NEWNET checks the type instead. */
		if (e != ENOTTY && e != EINVAL)
			return perr_set(err, -e, "netns %s", path);
	} else if (type != CLONE_NEWNET) {
		return perr_setx(err, -EINVAL,
				 "netns %s: is a %s namespace, not a network namespace", path,
				 ns_type_name(type));
	}
	*fd_out = steal_fd(&fd);
	return 0;
}

/* Saves the calling thread's namespace in *saved and moves it to target. */
static int enter_fd(int target, const char *what, struct netsetup_netns_saved *saved,
		    struct perr *err)
{
	char self[64];
	snprintf(self, sizeof(self), "/proc/self/task/%ld/ns/net", (long)syscall(SYS_gettid));
	autoclose int orig = open(self, O_RDONLY | O_CLOEXEC);
	if (orig < 0)
		return perr_set(err, -errno, "netns: %s", self);

	if (setns(target, CLONE_NEWNET) < 0) {
		int e = errno;
		if (e == EINVAL)
			return perr_setx(err, -EINVAL, "netns %s: not a network namespace", what);
		if (e == EPERM)
			return perr_setx(err, -EPERM, "netns %s: setns: %s (needs CAP_SYS_ADMIN)",
					 what, strerror(e));
		return perr_set(err, -e, "netns %s: setns", what);
	}
	saved->orig_fd = steal_fd(&orig);
	return 0;
}

int netsetup_netns_enter(const char *path, struct netsetup_netns_saved *saved, struct perr *err)
{
	saved->orig_fd = -1;
	autoclose int target = -1;
	int rc = netsetup_netns_open(path, &target, err);
	if (rc < 0)
		return rc;
	return enter_fd(target, path, saved, err);
}

int netsetup_netns_enter_fd(int ns_fd, struct netsetup_netns_saved *saved, struct perr *err)
{
	saved->orig_fd = -1;
	return enter_fd(ns_fd, "(fd)", saved, err);
}

int netsetup_netns_leave(struct netsetup_netns_saved *saved, struct perr *err)
{
	if (saved->orig_fd < 0)
		return 0;
	int rc = 0;
	if (setns(saved->orig_fd, CLONE_NEWNET) < 0)
		rc =
		    perr_set(err, -errno, "netns: cannot return to the original network namespace");
	close(saved->orig_fd);
	saved->orig_fd = -1;
	return rc;
}

int netsetup_netns_run(const char *path, int (*fn)(void *arg, struct perr *err), void *arg,
		       struct perr *err)
{
	if (!path)
		return fn(arg, err);
	struct netsetup_netns_saved saved;
	int rc = netsetup_netns_enter(path, &saved, err);
	if (rc < 0)
		return rc;
	rc = fn(arg, err);
	if (rc < 0)
		perr_wrap(err, "netns %s", path);
	struct perr leave_err;
	perr_clear(&leave_err);
	int lrc = netsetup_netns_leave(&saved, &leave_err);
	if (lrc < 0) {
		/* Being in the wrong namespace is worse than fn's own failure. */
		if (err)
			*err = leave_err;
		rc = lrc;
	}
	return rc;
}

int netsetup_netns_new_with_tap(const char *tap_name, int *tap_fd, int *ns_fd, struct perr *err)
{
	*tap_fd = *ns_fd = -1;
	char self[64];
	snprintf(self, sizeof(self), "/proc/self/task/%ld/ns/net", (long)syscall(SYS_gettid));
	struct netsetup_netns_saved saved;
	saved.orig_fd = open(self, O_RDONLY | O_CLOEXEC);
	if (saved.orig_fd < 0)
		return perr_set(err, -errno, "netns: %s", self);
	/* unshare(CLONE_NEWNET) moves only this thread, like setns. */
	if (unshare(CLONE_NEWNET) < 0) {
		int e = errno;
		close(saved.orig_fd);
		if (e == EPERM)
			return perr_setx(err, -EPERM,
					 "new network namespace: %s (needs CAP_SYS_ADMIN)",
					 strerror(e));
		return perr_set(err, -e, "new network namespace");
	}
	int rc = 0;
	autoclose int ns = open(self, O_RDONLY | O_CLOEXEC);
	autoclose int fd = -1;
	char made[IFNAMSIZ];
	if (ns < 0)
		rc = perr_set(err, -errno, "new network namespace: %s", self);
	if (rc == 0)
		rc = netsetup_tap_create(tap_name, NETSETUP_TAP_VNET_HDR, &fd, made, err);
	if (rc == 0)
		rc = netsetup_link_up(made, err);
	if (rc < 0)
		perr_wrap(err, "new network namespace");
	struct perr leave_err;
	perr_clear(&leave_err);
	if (netsetup_netns_leave(&saved, &leave_err) < 0) {
		if (err)
			*err = leave_err;
		return -EIO; /* the fds close: the namespace and the tap go */
	}
	if (rc < 0)
		return rc;
	*tap_fd = steal_fd(&fd);
	*ns_fd = steal_fd(&ns);
	return 0;
}
