/* VM templates (vm-template.h). */
#include "runtime/vm-template.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/agent-proto.h"
#include "common/cleanup.h"
#include "common/clock.h"
#include "common/log.h"
#include "netsetup/netsetup.h"
#include "runtime/cache.h"
#include "runtime/container.h"
#include "runtime/qmp-client.h"

#define TEMPLATE_KEY_FILE "key"
#define TEMPLATE_STATE	  "@STATE@"
/* How long the template guest idles between its agent's announcement and the
 * snapshot. Work a kernel defers in its first seconds (timers armed at boot)
 * would otherwise run again in every restored guest: in the testbed, a
 * snapshot taken at once made `petrel run` of `true` take 1.6-1.9 s, one taken
 * after 2 s 0.74-0.87 s (6 runs each, alternating). */
#define TEMPLATE_SETTLE_MS 2000
/* A shape whose template failed is booted without one for this long. */
#define TEMPLATE_RETRY_S 600

/* a + b into out; false when it does not fit (then nothing is used). */
static bool path_cat(char *out, size_t size, const char *a, const char *b)
{
	int n = snprintf(out, size, "%s%s", a, b);
	return n >= 0 && (size_t)n < size;
}

struct key_text {
	char *s;
	size_t len;
	bool failed;
};

static void __attribute__((format(printf, 2, 3))) key_add(struct key_text *k, const char *fmt, ...)
{
	if (k->failed)
		return;
	va_list ap;
	va_start(ap, fmt);
	char *line = NULL;
	int n = vasprintf(&line, fmt, ap);
	va_end(ap);
	char *ns = n < 0 ? NULL : realloc(k->s, k->len + (size_t)n + 1);
	if (!ns) {
		free(line);
		k->failed = true;
		return;
	}
	memcpy(ns + k->len, line, (size_t)n + 1);
	k->s = ns;
	k->len += (size_t)n;
	free(line);
}

/* A file's identity: a changed kernel, initrd or VMM is another template. */
static void key_add_file(struct key_text *k, const char *what, const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		k->failed = true;
		return;
	}
	key_add(k, "%s %s dev %llu ino %llu size %lld mtime %lld.%09ld\n", what, path,
		(unsigned long long)st.st_dev, (unsigned long long)st.st_ino, (long long)st.st_size,
		(long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
}

/* The template VM's launch: l's shape, with its files under state_dir. */
static struct vmm_launch template_launch(const struct vmm_launch *l, const char *state_dir,
					 char *image, size_t image_size)
{
	struct vmm_launch t = *l;
	snprintf(image, image_size, "%s/disk.img", state_dir);
	t.state_dir = state_dir;
	t.image = image;
	t.id = "petrel-template";
	t.mem_path = NULL; /* the backing of guest RAM is not the guest's business */
	t.incoming = NULL;
	t.template_build = true;
	return t;
}

static int make_key(const struct vmm_launch *l, struct key_text *k)
{
	char image[PATH_MAX];
	struct vmm_launch t = template_launch(l, TEMPLATE_STATE, image, sizeof(image));
	char **argv = NULL;
	struct perr err;
	if (vmm_launch_argv(&t, &argv, &err) < 0)
		return -ENOMEM;
	key_add(k, "petrel %s vm template 1\n", PETREL_VERSION);
	key_add_file(k, "vmm", l->vmm);
	key_add_file(k, "kernel", l->plan->kernel);
	key_add_file(k, "initrd", l->plan->initrd);
	for (char **a = argv + 1; *a; a++)
		key_add(k, "arg %s\n", *a);
	vmm_argv_free(argv);
	return k->failed ? -ENOMEM : 0;
}

/* An entry made for this key that has all of its snapshot. */
static bool template_usable(const char *base, const struct key_text *k)
{
	char path[PATH_MAX];
	if (!path_cat(path, sizeof(path), base, "/" TEMPLATE_KEY_FILE) ||
	    !cache_file_matches(path, k->s, k->len, true))
		return false;
	return path_cat(path, sizeof(path), base, "/state") && access(path, R_OK) == 0;
}

/* DIR.failed holds the key, then the reason: a recent failure of this key
 * means boot without a template for now. */
static bool recently_failed(const char *base, const struct key_text *k)
{
	char path[PATH_MAX];
	if (!path_cat(path, sizeof(path), base, ".failed"))
		return false;
	struct stat st;
	return cache_file_matches(path, k->s, k->len, false) && stat(path, &st) == 0 &&
	       time(NULL) - st.st_mtime < TEMPLATE_RETRY_S;
}

/* Waits for the template guest's agent to announce itself (docs/agent-protocol.md). */
static int await_agent(int listen_fd, pid_t vmm, unsigned timeout_s, struct perr *err)
{
	int64_t deadline = monotonic_ms() + (int64_t)timeout_s * 1000;
	for (;;) {
		int status;
		if (waitpid(vmm, &status, WNOHANG) == vmm)
			return perr_setx(err, -ECHILD,
					 "petrel-vmm exited (status 0x%x) before the "
					 "agent was up",
					 status);
		if (monotonic_ms() > deadline)
			return perr_setx(err, -ETIMEDOUT, "the guest's agent was not up after %u s",
					 timeout_s);
		struct pollfd p = {.fd = listen_fd, .events = POLLIN};
		if (poll(&p, 1, 100) <= 0)
			continue;
		int conn = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (conn >= 0) {
			close(conn);
			return 0;
		}
	}
}

/* One connection to the agent's port through the hybrid vsock device, closed
 * at once: the agent then drops its announcement (it keeps it until its first
 * client), so that the snapshot finds no connection open. */
static int agent_touch(const char *uds_path, struct perr *err)
{
	int fd = agent_connect_hybrid(uds_path, AGENT_VSOCK_PORT, err);
	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

static void reap(pid_t vmm)
{
	for (int i = 0; i < 100; i++) {
		if (waitpid(vmm, NULL, WNOHANG) == vmm)
			return;
		usleep(50 * 1000);
	}
	kill(vmm, SIGKILL);
	waitpid(vmm, NULL, 0);
}

/* Boots the template VM in build (a fresh directory), snapshots it into
 * build/snap, which becomes base. */
static int template_build(const struct vmm_launch *l, const char *build, const char *base,
			  const struct key_text *k, unsigned timeout_s, struct perr *err)
{
	char image[PATH_MAX], uds[PATH_MAX], ready[PATH_MAX], qmp[PATH_MAX], snap[PATH_MAX],
	    key[PATH_MAX];
	if (!path_cat(uds, sizeof(uds), build, "/agent.sock") ||
	    !path_cat(qmp, sizeof(qmp), build, "/qmp.sock") ||
	    !path_cat(snap, sizeof(snap), build, "/snap") ||
	    !path_cat(key, sizeof(key), snap, "/" TEMPLATE_KEY_FILE))
		return perr_setx(err, -ENAMETOOLONG, "%s: path too long", build);
	struct vmm_launch t = template_launch(l, build, image, sizeof(image));
	autoclose int disk = open(image, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (disk < 0)
		return perr_set(err, -errno, "%s", image);
	autoclose int listen_fd = agent_ready_listen(uds, ready, sizeof(ready), err);
	if (listen_fd < 0)
		return listen_fd;
	autoclose int tap = -1;
	autoclose int netns = -1;
	if (t.net && netsetup_netns_new_with_tap(NETSETUP_CONTAINER_TAP, &tap, &netns, err) < 0)
		return perr_wrap(err, "a tap for the template VM");
	char **argv = NULL;
	int rc = vmm_launch_argv(&t, &argv, err);
	if (rc < 0)
		return rc;
	autoclose int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	pid_t vmm = -1;
	rc = devnull < 0 ? perr_set(err, -errno, "/dev/null")
			 : vmm_spawn(argv, devnull, devnull, tap, &vmm, err);
	vmm_argv_free(argv);
	if (rc < 0)
		return rc;
	rc = await_agent(listen_fd, vmm, timeout_s, err);
	if (rc == 0)
		rc = agent_touch(uds, err);
	if (rc == 0) {
		usleep(TEMPLATE_SETTLE_MS * 1000);
		rc = qmp_client_snapshot_and_quit(qmp, snap, err);
	}
	if (rc < 0)
		kill(vmm, SIGKILL);
	reap(vmm);
	if (rc < 0 || (rc = file_write_atomic(key, k->s, k->len, 0600, err)) < 0)
		return rc;
	/* The directory appears whole. */
	if (rename(snap, base) < 0)
		return perr_set(err, -errno, "rename %s to %s", snap, base);
	return 0;
}

/* An entry: a directory named by 16 hex digits, used when its key is touched. */
static bool template_entry_stamp(const char *name, char *out, size_t size)
{
	if (strlen(name) != 16 || strspn(name, "0123456789abcdef") != 16)
		return false;
	return snprintf(out, size, "%s/%s", name, TEMPLATE_KEY_FILE) < (int)size;
}

static void template_entry_drop(const char *dir, const char *name)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/%s", dir, name) < (int)sizeof(path))
		vm_template_discard(path);
}

void vm_template_discard(const char *dir)
{
	struct perr err;
	if (remove_tree(dir, &err) < 0)
		log_warn("VM template %s: %s", dir, err.msg);
}

void vm_template_get(const struct vmm_launch *l, unsigned timeout_s, char *out, size_t size)
{
	out[0] = '\0';
	char cache[PATH_MAX - 64], base[PATH_MAX], path[PATH_MAX];
	if (!cache_dir("PETREL_VM_TEMPLATE_CACHE", "vm", cache, sizeof(cache)))
		return;
	struct key_text k = {0};
	if (make_key(l, &k) < 0) {
		free(k.s);
		return;
	}
	snprintf(base, sizeof(base), "%s/%016llx", cache,
		 (unsigned long long)cache_hash(k.s, k.len));
	/* One builder per shape; the others wait and use its template. */
	autoclose int lock = path_cat(path, sizeof(path), base, ".lock")
				 ? open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)
				 : -1;
	if (lock < 0 || flock(lock, LOCK_EX) < 0) {
		free(k.s);
		return;
	}
	if (template_usable(base, &k)) {
		if (path_cat(path, sizeof(path), base, "/" TEMPLATE_KEY_FILE))
			utimensat(AT_FDCWD, path, NULL, 0); /* recently used */
		snprintf(out, size, "%s", base);
	} else if (!recently_failed(base, &k)) {
		/* A stale entry of another key with this hash goes. */
		vm_template_discard(base);
		char build[PATH_MAX];
		snprintf(build, sizeof(build), "%s/build.XXXXXX", cache);
		struct perr err = {0};
		int rc = mkdtemp(build) ? 0 : perr_set(&err, -errno, "mkdtemp %s", build);
		if (rc == 0)
			rc = template_build(l, build, base, &k, timeout_s, &err);
		if (rc == 0) {
			snprintf(out, size, "%s", base);
			cache_evict_lru(cache, VM_TEMPLATE_ENTRIES, template_entry_stamp,
					template_entry_drop);
		} else {
			log_warn("VM template: %s; the guest boots instead", err.msg);
			char *failed = NULL;
			struct perr ignored;
			int n = asprintf(&failed, "%s%s\n", k.s, err.msg);
			if (n > 0 && path_cat(path, sizeof(path), base, ".failed"))
				file_write_atomic(path, failed, (size_t)n, 0600, &ignored);
			free(failed);
		}
		struct perr rm_err;
		if (build[strlen(build) - 1] != 'X' && remove_tree(build, &rm_err) < 0)
			log_warn("VM template: %s", rm_err.msg);
	}
	free(k.s);
}
