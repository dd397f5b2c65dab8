/*
 * The container: its root disk, namespaces, pivot_root, kernel filesystems,
 * /dev, masked and read-only paths. What runc does, minus what the VM already
 * isolates (network, user namespaces, cgroup limits) and minus host bind
 * mounts, which the agent refuses (the decoder already did).
 *
 * Parent side: fork the child, then wait on the sync socket for "ready" (with
 * the terminal master) or an error message. The init waits there again for
 * "start"; end of file on the socket means execve succeeded (it is close-on-exec).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "common/cleanup.h"
#include "common/log.h"

void spawned_close(struct spawned *sp)
{
	int *fds[] = {&sp->sync_fd, &sp->stdin_fd, &sp->stdout_fd, &sp->stderr_fd};
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
		if (*fds[i] >= 0) {
			close(*fds[i]);
			*fds[i] = -1;
		}
}

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[AGENT_MAX_PATH + 1];
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (char *p = buf + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = c;
		if (c == '\0')
			break;
	}
	struct stat st;
	if (stat(path, &st) < 0)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/* The sectors /sys gives for a block device node; -1 when unknown. */
static long long block_sectors(const char *dev)
{
	struct stat st;
	if (stat(dev, &st) < 0 || !S_ISBLK(st.st_mode))
		return -1;
	char path[64], buf[32];
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/size", major(st.st_rdev),
		 minor(st.st_rdev));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return strtoll(buf, NULL, 10);
}

/* A VM restored from a template (docs/runtime.md) saw an empty disk when it
 * was saved; the container's disk arrives as a capacity change, which the
 * guest's driver applies from a workqueue. Wait for it (a cold boot has it). */
static void wait_for_capacity(const char *dev)
{
	for (int i = 0; i < 5000 && block_sectors(dev) == 0; i++)
		usleep(1000);
}

int container_mount_rootfs(const struct agent_create *c, struct perr *err)
{
	wait_for_capacity(c->root_device);
	int r = mkdir_p(AGENT_ROOTFS_DIR, 0755);
	if (r < 0)
		return perr_set(err, r, "mkdir %s", AGENT_ROOTFS_DIR);
	container_unmount_rootfs();
	/* Read-write even for root.readonly: the init creates missing mount points,
	 * then makes its own view of / read-only. A read-only disk mounts read-only. */
	if (mount(c->root_device, AGENT_ROOTFS_DIR, c->root_fstype, MS_NOATIME, c->root_options) <
	    0) {
		int e = errno;
		if ((e == EROFS || e == EACCES) &&
		    mount(c->root_device, AGENT_ROOTFS_DIR, c->root_fstype, MS_NOATIME | MS_RDONLY,
			  c->root_options) == 0)
			return 0;
		return perr_set(err, -e, "root.device: mount %s (%s) on %s", c->root_device,
				c->root_fstype, AGENT_ROOTFS_DIR);
	}
	return 0;
}

void container_unmount_rootfs(void)
{
	if (umount2(AGENT_ROOTFS_DIR, 0) < 0 && errno == EBUSY)
		umount2(AGENT_ROOTFS_DIR, MNT_DETACH);
}

/* ---- child side: the container's init ---- */

struct mount_entry {
	char what[48]; /* "mounts[3]" or "default /proc", for messages */
	const char *destination, *type, *source;
	unsigned long flags, propagation;
	const char *data;
	bool tmpcopyup;
	char *data_owned;
};

/* Compares mount destinations, ignoring trailing slashes. */
static size_t path_len_trimmed(const char *p)
{
	size_t n = strlen(p);
	while (n > 1 && p[n - 1] == '/')
		n--;
	return n;
}

static bool path_same(const char *a, const char *b)
{
	size_t na = path_len_trimmed(a), nb = path_len_trimmed(b);
	return na == nb && strncmp(a, b, na) == 0;
}

static bool path_under(const char *child, const char *parent)
{
	size_t np = path_len_trimmed(parent);
	if (np == 1)
		return true;
	return strncmp(child, parent, np) == 0 && child[np] == '/';
}

/* The kernel filesystems every container gets unless config.json mounts them itself. */
static const struct {
	const char *destination, *type, *source;
	unsigned long flags;
	const char *data;
} default_mounts[] = {
    {"/proc", "proc", "proc", MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL},
    {"/dev", "tmpfs", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k"},
    {"/dev/pts", "devpts", "devpts", MS_NOSUID | MS_NOEXEC,
     "newinstance,ptmxmode=0666,mode=0620,gid=5"},
    {"/dev/shm", "tmpfs", "shm", MS_NOSUID | MS_NOEXEC | MS_NODEV, "mode=1777,size=65536k"},
    {"/sys", "sysfs", "sysfs", MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RDONLY, NULL},
};

static void add_default(struct mount_entry *e, size_t i)
{
	memset(e, 0, sizeof(*e));
	snprintf(e->what, sizeof(e->what), "default mount %s", default_mounts[i].destination);
	e->destination = default_mounts[i].destination;
	e->type = default_mounts[i].type;
	e->source = default_mounts[i].source;
	e->flags = default_mounts[i].flags;
	e->data = default_mounts[i].data;
}

/* Defaults the config lacks go first, unless they sit below one of its mounts
 * (a default /dev/pts under the config's /dev must come after it). */
static size_t plan_mounts(const struct agent_create *c, struct mount_entry *plan, int sync_fd)
{
	size_t n = 0;
	bool need[ARRAY_SIZE(default_mounts)];
	bool after[ARRAY_SIZE(default_mounts)];
	for (size_t d = 0; d < ARRAY_SIZE(default_mounts); d++) {
		need[d] = true;
		after[d] = false;
		for (size_t i = 0; i < c->nmounts; i++) {
			if (path_same(c->mounts[i].destination, default_mounts[d].destination))
				need[d] = false;
			else if (path_under(default_mounts[d].destination,
					    c->mounts[i].destination))
				after[d] = true;
		}
	}
	for (size_t d = 0; d < ARRAY_SIZE(default_mounts); d++)
		if (need[d] && !after[d])
			add_default(&plan[n++], d);
	for (size_t i = 0; i < c->nmounts; i++) {
		const struct agent_mount *m = &c->mounts[i];
		struct mount_entry *e = &plan[n++];
		struct agent_mount_flags mf;
		struct perr err = {0};
		memset(e, 0, sizeof(*e));
		snprintf(e->what, sizeof(e->what), "mounts[%zu]", i);
		if (path_same(m->destination, "/"))
			child_fail(sync_fd, 0, "mounts[%zu]: cannot mount over /", i);
		if (agent_mount_flags_parse(m->options, m->noptions, &mf, &err) < 0)
			child_fail(sync_fd, 0, "mounts[%zu]: %s", i, err.msg);
		e->destination = m->destination;
		e->type = m->type;
		e->source = m->source ? m->source : m->type;
		e->flags = mf.flags;
		e->propagation = mf.propagation;
		e->data = e->data_owned = mf.data;
		e->tmpcopyup = mf.tmpcopyup;
	}
	for (size_t d = 0; d < ARRAY_SIZE(default_mounts); d++)
		if (need[d] && after[d])
			add_default(&plan[n++], d);
	return n;
}

static int copy_file(int src_dir, int dst_dir, const char *name, const struct stat *st)
{
	autoclose int in = openat(src_dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0)
		return -errno;
	autoclose int out =
	    openat(dst_dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		   st->st_mode & 07777);
	if (out < 0)
		return -errno;
	char buf[16384];
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return -errno;
			off += w;
		}
	}
}

/* tmpcopyup: what the directory held before the tmpfs covered it, copied in. */
static int copy_tree(int src_dir, int dst_dir, int depth)
{
	if (depth > 32)
		return -ELOOP;
	int dfd = fcntl(src_dir, F_DUPFD_CLOEXEC, 0);
	if (dfd < 0)
		return -errno;
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return -errno;
	}
	int r = 0;
	struct dirent *de;
	while (r == 0 && (de = readdir(d))) {
		const char *name = de->d_name;
		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			continue;
		struct stat st;
		if (fstatat(src_dir, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			r = -errno;
			break;
		}
		if (S_ISDIR(st.st_mode)) {
			if (mkdirat(dst_dir, name, st.st_mode & 07777) < 0 && errno != EEXIST) {
				r = -errno;
				break;
			}
			autoclose int s =
			    openat(src_dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			autoclose int t =
			    openat(dst_dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			r = s < 0 || t < 0 ? -errno : copy_tree(s, t, depth + 1);
		} else if (S_ISREG(st.st_mode)) {
			r = copy_file(src_dir, dst_dir, name, &st);
		} else if (S_ISLNK(st.st_mode)) {
			char target[AGENT_MAX_PATH + 1];
			ssize_t n = readlinkat(src_dir, name, target, sizeof(target) - 1);
			if (n < 0) {
				r = -errno;
				break;
			}
			target[n] = '\0';
			if (symlinkat(target, dst_dir, name) < 0)
				r = -errno;
		} else if (mknodat(dst_dir, name, st.st_mode, st.st_rdev) < 0) {
			r = -errno;
		}
		if (r == 0 &&
		    fchownat(dst_dir, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
			r = -errno;
		if (r == 0 && !S_ISLNK(st.st_mode) &&
		    fchmodat(dst_dir, name, st.st_mode & 07777, 0) < 0)
			r = -errno;
	}
	closedir(d);
	return r;
}

static void mount_entry(const struct mount_entry *e, int sync_fd)
{
	struct stat st;
	if (stat(e->destination, &st) == 0) {
		if (!S_ISDIR(st.st_mode))
			child_fail(sync_fd, 0, "%s: %s exists and is not a directory", e->what,
				   e->destination);
	} else {
		int r = mkdir_p(e->destination, 0755);
		if (r < 0)
			child_fail(sync_fd, -r, "%s: mkdir %s", e->what, e->destination);
	}
	autoclose int below = -1;
	unsigned long flags = e->flags;
	if (e->tmpcopyup) {
		below = open(e->destination, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (below < 0)
			child_fail(sync_fd, errno, "%s: open %s", e->what, e->destination);
		flags &= ~MS_RDONLY; /* filled first, made read-only after */
	}
	if (mount(e->source, e->destination, e->type, flags, e->data) < 0)
		child_fail(sync_fd, errno, "%s: mount %s on %s", e->what, e->type, e->destination);
	if (e->tmpcopyup) {
		autoclose int top = open(e->destination, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		int r = top < 0 ? -errno : copy_tree(below, top, 0);
		if (r < 0)
			child_fail(sync_fd, -r, "%s: tmpcopyup into %s", e->what, e->destination);
		if ((e->flags & MS_RDONLY) &&
		    mount(e->source, e->destination, e->type, MS_REMOUNT | e->flags, e->data) < 0)
			child_fail(sync_fd, errno, "%s: remount %s read-only", e->what,
				   e->destination);
	}
	if (e->propagation && mount(NULL, e->destination, NULL, e->propagation, NULL) < 0)
		child_fail(sync_fd, errno, "%s: set propagation of %s", e->what, e->destination);
}

/* runc's default devices and links, on a /dev tmpfs. */
static void populate_dev(int sync_fd)
{
	static const struct {
		const char *path;
		unsigned major, minor;
	} devices[] = {
	    {"/dev/null", 1, 3},   {"/dev/zero", 1, 5},	   {"/dev/full", 1, 7},
	    {"/dev/random", 1, 8}, {"/dev/urandom", 1, 9}, {"/dev/tty", 5, 0},
	};
	static const struct {
		const char *target, *path;
	} links[] = {
	    {"/proc/self/fd", "/dev/fd"},	{"/proc/self/fd/0", "/dev/stdin"},
	    {"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"},
	    {"pts/ptmx", "/dev/ptmx"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(devices); i++)
		if (mknod(devices[i].path, S_IFCHR | 0666,
			  makedev(devices[i].major, devices[i].minor)) < 0 &&
		    errno != EEXIST)
			child_fail(sync_fd, errno, "/dev: mknod %s", devices[i].path);
	for (size_t i = 0; i < ARRAY_SIZE(links); i++)
		if (symlink(links[i].target, links[i].path) < 0 && errno != EEXIST)
			child_fail(sync_fd, errno, "/dev: symlink %s", links[i].path);
	if (access("/proc/kcore", F_OK) == 0 && symlink("/proc/kcore", "/dev/core") < 0 &&
	    errno != EEXIST)
		child_fail(sync_fd, errno, "/dev: symlink /dev/core");
}

/* Keeps nosuid, nodev, noexec… of a mount when remounting it read-only. */
static unsigned long mount_flags_of(const char *path)
{
	struct statvfs sv;
	unsigned long flags = 0;
	if (statvfs(path, &sv) < 0)
		return 0;
	if (sv.f_flag & ST_NOSUID)
		flags |= MS_NOSUID;
	if (sv.f_flag & ST_NODEV)
		flags |= MS_NODEV;
	if (sv.f_flag & ST_NOEXEC)
		flags |= MS_NOEXEC;
	if (sv.f_flag & ST_NOATIME)
		flags |= MS_NOATIME;
	if (sv.f_flag & ST_NODIRATIME)
		flags |= MS_NODIRATIME;
	if (sv.f_flag & ST_RELATIME)
		flags |= MS_RELATIME;
	return flags;
}

static void mask_paths(const struct agent_create *c, int sync_fd)
{
	for (size_t i = 0; i < c->nmasked; i++) {
		const char *p = c->masked_paths[i];
		struct stat st;
		if (stat(p, &st) < 0) {
			if (errno == ENOENT)
				continue;
			child_fail(sync_fd, errno, "maskedPaths[%zu]: stat %s", i, p);
		}
		int r = S_ISDIR(st.st_mode)
			    ? mount("tmpfs", p, "tmpfs", MS_RDONLY, "size=0,mode=0555")
			    : mount("/dev/null", p, NULL, MS_BIND, NULL);
		if (r < 0)
			child_fail(sync_fd, errno, "maskedPaths[%zu]: mask %s", i, p);
	}
}

static void readonly_paths(const struct agent_create *c, int sync_fd)
{
	for (size_t i = 0; i < c->nreadonly; i++) {
		const char *p = c->readonly_paths[i];
		if (access(p, F_OK) < 0) {
			if (errno == ENOENT)
				continue;
			child_fail(sync_fd, errno, "readonlyPaths[%zu]: %s", i, p);
		}
		if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0)
			child_fail(sync_fd, errno, "readonlyPaths[%zu]: bind %s", i, p);
		unsigned long keep = mount_flags_of(p);
		if (mount(NULL, p, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | keep, NULL) < 0)
			child_fail(sync_fd, errno, "readonlyPaths[%zu]: remount %s read-only", i,
				   p);
	}
}

static void write_sysctls(const struct agent_create *c, int sync_fd)
{
	for (size_t i = 0; i < c->nsysctl; i++) {
		char path[512];
		int n = snprintf(path, sizeof(path), "/proc/sys/%s", c->sysctl[i].key);
		if (n < 0 || (size_t)n >= sizeof(path))
			child_fail(sync_fd, 0, "sysctl.%s: name too long", c->sysctl[i].key);
		for (char *p = path + strlen("/proc/sys/"); *p; p++)
			if (*p == '.')
				*p = '/';
		int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			child_fail(sync_fd, errno, "sysctl.%s: open %s", c->sysctl[i].key, path);
		size_t len = strlen(c->sysctl[i].value);
		if (write(fd, c->sysctl[i].value, len) != (ssize_t)len)
			child_fail(sync_fd, errno, "sysctl.%s: write", c->sysctl[i].key);
		close(fd);
	}
}

static void __attribute__((noreturn))
container_init_child(const struct agent_create *c, const struct agent_seccomp *seccomp, int sync_fd,
		     const int stdio[3])
{
	sync_fd = child_setup_fds(sync_fd, stdio);
	umask(0);

	int flags = CLONE_NEWNS;
	if (c->namespaces & AGENT_NS_UTS)
		flags |= CLONE_NEWUTS;
	if (c->namespaces & AGENT_NS_IPC)
		flags |= CLONE_NEWIPC;
	if (c->namespaces & AGENT_NS_CGROUP)
		flags |= CLONE_NEWCGROUP;
	if (unshare(flags) < 0)
		child_fail(sync_fd, errno, "namespaces: unshare");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		child_fail(sync_fd, errno, "make / private");

	/* pivot_root(".", ".") stacks the old root on the new one; detaching "." then drops it. */
	if (chdir(AGENT_ROOTFS_DIR) < 0)
		child_fail(sync_fd, errno, "root: chdir %s", AGENT_ROOTFS_DIR);
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		child_fail(sync_fd, errno, "root: pivot_root");
	if (umount2(".", MNT_DETACH) < 0)
		child_fail(sync_fd, errno, "root: detach the old root");
	if (chdir("/") < 0)
		child_fail(sync_fd, errno, "root: chdir /");

	/* Mounts go through paths inside the new root: an image's symlinks cannot lead out. */
	size_t max = c->nmounts + ARRAY_SIZE(default_mounts);
	struct mount_entry *plan = calloc(max, sizeof(*plan));
	if (!plan)
		child_fail(sync_fd, ENOMEM, "mounts");
	size_t n = plan_mounts(c, plan, sync_fd);
	bool dev_tmpfs = false;
	for (size_t i = 0; i < n; i++) {
		mount_entry(&plan[i], sync_fd);
		if (path_same(plan[i].destination, "/dev"))
			dev_tmpfs = strcmp(plan[i].type, "tmpfs") == 0;
	}
	if (dev_tmpfs)
		populate_dev(sync_fd);
	write_sysctls(c, sync_fd);
	mask_paths(c, sync_fd);
	readonly_paths(c, sync_fd);
	if (c->hostname && sethostname(c->hostname, strlen(c->hostname)) < 0)
		child_fail(sync_fd, errno, "hostname: sethostname");
	/* runc makes a missing working directory; it has to happen before / turns read-only. */
	int r = mkdir_p(c->process.cwd, 0755);
	if (r < 0)
		child_fail(sync_fd, -r, "process.cwd: mkdir %s", c->process.cwd);
	if (c->root_readonly &&
	    mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | mount_flags_of("/"), NULL) <
		0)
		child_fail(sync_fd, errno, "root.readonly: remount / read-only");

	struct child_ctx ctx = {
	    .sync_fd = sync_fd,
	    .process = &c->process,
	    .seccomp = seccomp,
	    .wait_start = true,
	    .bind_console = c->process.terminal,
	};
	child_finish_process(&ctx);
}

/* ---- parent side ---- */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Reads one sync message. Returns 1 for ready (*fd_out = passed fd or -1),
 * 0 for end of file (execve succeeded, or the child died), or -errno with err
 * set to the child's message.
 */
static int sync_read(int sync_fd, int *fd_out, const char *stage, struct perr *err)
{
	int64_t deadline = now_ms() + AGENT_SETUP_TIMEOUT_MS;
	if (fd_out)
		*fd_out = -1;
	for (;;) {
		int64_t left = deadline - now_ms();
		if (left <= 0)
			return perr_setx(err, -ETIMEDOUT,
					 "%s: the process did not answer within %d s", stage,
					 AGENT_SETUP_TIMEOUT_MS / 1000);
		struct pollfd pfd = {.fd = sync_fd, .events = POLLIN};
		int pr = poll(&pfd, 1, (int)left);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0)
			return perr_set(err, -errno, "%s: poll", stage);
		if (pr == 0)
			continue;
		char buf[2048];
		struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf) - 1};
		union {
			char b[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} u;
		struct msghdr mh = {.msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = u.b,
				    .msg_controllen = sizeof(u.b)};
		ssize_t n = recvmsg(sync_fd, &mh, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return perr_set(err, -errno, "%s: read from the process", stage);
		int passed = -1;
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
			if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
			    cm->cmsg_len == CMSG_LEN(sizeof(int)))
				memcpy(&passed, CMSG_DATA(cm), sizeof(int));
		if (n == 0)
			return 0;
		if (buf[0] == SYNC_READY) {
			if (fd_out)
				*fd_out = passed;
			else if (passed >= 0)
				close(passed);
			return 1;
		}
		if (passed >= 0)
			close(passed);
		buf[n] = '\0';
		if (buf[0] == SYNC_ERROR)
			return perr_setx(err, -EINVAL, "%s", buf + 1);
		return perr_setx(err, -EPROTO, "%s: unexpected message from the process", stage);
	}
}

struct stdio_pipes {
	int child[3];  /* what the child's 0, 1, 2 become; -1 for /dev/null or a terminal */
	int parent[3]; /* stdin write end, stdout and stderr read ends */
};

static void pipes_close(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0) {
			close(fds[i]);
			fds[i] = -1;
		}
}

static int pipes_open(struct stdio_pipes *sp, bool terminal, struct perr *err)
{
	for (int i = 0; i < 3; i++)
		sp->child[i] = sp->parent[i] = -1;
	if (terminal)
		return 0;
	for (int i = 0; i < 3; i++) {
		int p[2];
		if (pipe2(p, O_CLOEXEC) < 0) {
			int e = -errno;
			pipes_close(sp->child, 3);
			pipes_close(sp->parent, 3);
			return perr_set(err, e, "pipe");
		}
		/* stdin: the child reads; stdout, stderr: the child writes. */
		sp->child[i] = i == 0 ? p[0] : p[1];
		sp->parent[i] = i == 0 ? p[1] : p[0];
		fcntl(sp->parent[i], F_SETFL, O_NONBLOCK);
	}
	return 0;
}

/* Fills *out once the child said ready; on failure kills the child. */
static int finish_spawn(pid_t pid, int sync_fd, struct stdio_pipes *pipes, bool terminal,
			const char *stage, struct spawned *out, struct perr *err)
{
	int master = -1;
	pipes_close(pipes->child, 3);
	int r = sync_read(sync_fd, &master, stage, err);
	if (r == 0)
		r = perr_setx(err, -ECHILD, "%s: the process exited during set-up", stage);
	if (r < 0) {
		kill(pid, SIGKILL);
		close(sync_fd);
		pipes_close(pipes->parent, 3);
		return r;
	}
	out->pid = pid;
	out->sync_fd = sync_fd;
	out->terminal = terminal;
	out->stdin_fd = pipes->parent[0];
	out->stdout_fd = pipes->parent[1];
	out->stderr_fd = pipes->parent[2];
	if (terminal) {
		if (master < 0) {
			kill(pid, SIGKILL);
			close(sync_fd);
			return perr_setx(err, -EPROTO, "%s: no terminal from the process", stage);
		}
		fcntl(master, F_SETFL, O_NONBLOCK);
		out->stdout_fd = master;
		out->stdin_fd = fcntl(master, F_DUPFD_CLOEXEC, 3);
		if (out->stdin_fd < 0) {
			int e = -errno;
			kill(pid, SIGKILL);
			spawned_close(out);
			return perr_set(err, e, "%s: dup terminal", stage);
		}
	} else if (master >= 0) {
		close(master);
	}
	return 0;
}

int container_spawn_init(const struct agent_create *c, const struct agent_seccomp *seccomp,
			 int own_pidns_fd, struct spawned *sp, struct perr *err)
{
	int sv[2];
	struct stdio_pipes pipes;
	memset(sp, 0, sizeof(*sp));
	sp->sync_fd = sp->stdin_fd = sp->stdout_fd = sp->stderr_fd = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return perr_set(err, -errno, "socketpair");
	int r = pipes_open(&pipes, c->process.terminal, err);
	if (r < 0) {
		pipes_close(sv, 2);
		return r;
	}
	/* The init must be pid 1 of a new pid namespace: unshare it for our next
	 * child only, then come back to our own. */
	bool new_pidns = c->namespaces & AGENT_NS_PID;
	if (new_pidns && unshare(CLONE_NEWPID) < 0) {
		r = perr_set(err, -errno, "namespaces: unshare pid");
		pipes_close(sv, 2);
		pipes_close(pipes.child, 3);
		pipes_close(pipes.parent, 3);
		return r;
	}
	pid_t pid = fork();
	if (pid == 0) {
		close(sv[0]);
		container_init_child(c, seccomp, sv[1], pipes.child);
	}
	int fork_errno = errno;
	if (new_pidns && setns(own_pidns_fd, CLONE_NEWPID) < 0)
		log_error("cannot return to the agent's pid namespace: %s", strerror(errno));
	close(sv[1]);
	if (pid < 0) {
		pipes_close(sv, 1);
		pipes_close(pipes.child, 3);
		pipes_close(pipes.parent, 3);
		return perr_set(err, -fork_errno, "fork");
	}
	return finish_spawn(pid, sv[0], &pipes, c->process.terminal, "create", sp, err);
}

int container_start(struct spawned *sp, struct perr *err)
{
	char b = SYNC_START;
	int r = 0;
	if (send(sp->sync_fd, &b, 1, MSG_NOSIGNAL) != 1)
		r = perr_set(err, -errno, "start: the container's init is gone");
	else
		r = sync_read(sp->sync_fd, NULL, "start", err);
	close(sp->sync_fd);
	sp->sync_fd = -1;
	if (r > 0)
		r = perr_setx(err, -EPROTO, "start: unexpected message from the process");
	return r;
}

static void __attribute__((noreturn))
exec_child(pid_t init_pid, const struct agent_process *p, const struct agent_seccomp *seccomp,
	   int sync_fd, const int stdio[3])
{
	/* Open them all before entering any: /proc changes meaning with the mount namespace. */
	static const struct {
		const char *name;
		int type;
	} nss[] = {{"ipc", CLONE_NEWIPC},
		   {"uts", CLONE_NEWUTS},
		   {"cgroup", CLONE_NEWCGROUP},
		   {"mnt", CLONE_NEWNS}};
	int fds[ARRAY_SIZE(nss)];
	for (size_t i = 0; i < ARRAY_SIZE(nss); i++) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)init_pid, nss[i].name);
		fds[i] = open(path, O_RDONLY | O_CLOEXEC);
		if (fds[i] < 0)
			child_fail(sync_fd, errno, "exec: open %s", path);
	}
	for (size_t i = 0; i < ARRAY_SIZE(nss); i++) {
		if (setns(fds[i], nss[i].type) < 0)
			child_fail(sync_fd, errno, "exec: enter the container's %s namespace",
				   nss[i].name);
		close(fds[i]);
	}
	sync_fd = child_setup_fds(sync_fd, stdio);
	struct child_ctx ctx = {.sync_fd = sync_fd, .process = p, .seccomp = seccomp};
	child_finish_process(&ctx);
}

int container_spawn_exec(pid_t init_pid, const struct agent_process *p,
			 const struct agent_seccomp *seccomp, int own_pidns_fd, struct spawned *sp,
			 struct perr *err)
{
	int sv[2];
	struct stdio_pipes pipes;
	memset(sp, 0, sizeof(*sp));
	sp->sync_fd = sp->stdin_fd = sp->stdout_fd = sp->stderr_fd = -1;

	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)init_pid);
	autoclose int pidns = open(path, O_RDONLY | O_CLOEXEC);
	if (pidns < 0)
		return perr_set(err, -errno, "exec: open %s", path);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return perr_set(err, -errno, "socketpair");
	int r = pipes_open(&pipes, p->terminal, err);
	if (r < 0) {
		pipes_close(sv, 2);
		return r;
	}
	/* setns(CLONE_NEWPID) only applies to children: fork in between. */
	if (setns(pidns, CLONE_NEWPID) < 0) {
		r = perr_set(err, -errno, "exec: enter the container's pid namespace");
		pipes_close(sv, 2);
		pipes_close(pipes.child, 3);
		pipes_close(pipes.parent, 3);
		return r;
	}
	pid_t pid = fork();
	if (pid == 0) {
		close(sv[0]);
		exec_child(init_pid, p, seccomp, sv[1], pipes.child);
	}
	int fork_errno = errno;
	if (setns(own_pidns_fd, CLONE_NEWPID) < 0)
		log_error("cannot return to the agent's pid namespace: %s", strerror(errno));
	close(sv[1]);
	if (pid < 0) {
		pipes_close(sv, 1);
		pipes_close(pipes.child, 3);
		pipes_close(pipes.parent, 3);
		return perr_set(err, -fork_errno, "exec: fork");
	}
	r = finish_spawn(pid, sv[0], &pipes, p->terminal, "exec", sp, err);
	if (r < 0)
		return r;
	/* No start for exec: the child goes straight to execve. */
	r = sync_read(sp->sync_fd, NULL, "exec", err);
	close(sp->sync_fd);
	sp->sync_fd = -1;
	if (r != 0) {
		if (r > 0)
			r = perr_setx(err, -EPROTO, "exec: unexpected message from the process");
		kill(pid, SIGKILL);
		spawned_close(sp);
		return r;
	}
	return 0;
}
