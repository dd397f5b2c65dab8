/* create, start, kill, delete and run's wait (lifecycle.h). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/clock.h"
#include "common/log.h"
#include "netsetup/netsetup.h"
#include "oci/seccomp.h"
#include "runtime/agent-session.h"
#include "runtime/cgroup.h"
#include "runtime/config-file.h"
#include "runtime/console.h"
#include "runtime/container-net.h"
#include "runtime/container.h"
#include "runtime/hooks.h"
#include "runtime/hugepages.h"
#include "runtime/lifecycle.h"
#include "runtime/relay.h"
#include "runtime/rootfs.h"
#include "runtime/spec.h"
#include "runtime/vm-template.h"
#include "runtime/vmm-launch.h"

#define AGENT_REQUEST_TIMEOUT_MS (60 * 1000)

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* The last line of a file, for error messages (the VMM's log). */
static void last_line(const char *path, char *out, size_t size)
{
	out[0] = 0;
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	char line[1024];
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		if (line[0])
			snprintf(out, size, "%.*s", (int)(size - 1), line);
	}
	fclose(f);
}

/* Reads the VMM's one-line report: 0 for "ok", else err set. */
static int read_notify(int fd, unsigned timeout_s, const char *state_dir, struct perr *err)
{
	char line[PERR_MSG_MAX];
	size_t len = 0;
	int64_t deadline = monotonic_ms() + (int64_t)timeout_s * 1000;
	for (;;) {
		int64_t left = deadline - monotonic_ms();
		if (left <= 0)
			return perr_setx(
			    err, -ETIMEDOUT,
			    "the container's VM did not report within %u s (see %s/console.log)",
			    timeout_s, state_dir);
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int pr = poll(&p, 1, (int)(left > 1000 ? 1000 : left));
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			continue;
		ssize_t n = read(fd, line + len, sizeof(line) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			char vmm_log[PATH_MAX + 16], why[512];
			snprintf(vmm_log, sizeof(vmm_log), "%s/vmm.log", state_dir);
			last_line(vmm_log, why, sizeof(why));
			return perr_setx(err, -EIO,
					 "petrel-vmm exited before the container was created%s%s",
					 why[0] ? ": " : "", why);
		}
		len += (size_t)n;
		line[len] = 0;
		char *nl = strchr(line, '\n');
		if (!nl && len < sizeof(line) - 1)
			continue;
		if (nl)
			*nl = 0;
		if (!strcmp(line, "ok"))
			return 0;
		if (!strncmp(line, "error: ", 7))
			return perr_setx(err, -EIO, "%s", line + 7);
		return perr_setx(err, -EIO, "petrel-vmm: unexpected report \"%s\"", line);
	}
}

static void kill_and_reap(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

static int state_new(const struct petrel_create_opts *o, const char *bundle,
		     const struct oci_config *cfg, const struct spec_plan *plan,
		     const char *state_dir, struct oci_state **out, struct perr *err)
{
	struct oci_state *st = calloc(1, sizeof(*st));
	if (!st)
		return perr_set(err, -ENOMEM, "state");
	char buf[PATH_MAX + 32];
	st->id = strdup(o->id);
	st->bundle = strdup(bundle);
	st->rootfs = strdup(plan->rootfs_dir[0] ? plan->rootfs_dir : plan->rootfs_image);
	st->status = OCI_STATUS_CREATING;
	clock_gettime(CLOCK_REALTIME, &st->created);
	st->has_petrel = true;
	snprintf(buf, sizeof(buf), "%s/qmp.sock", state_dir);
	st->petrel.qmp_socket = strdup(buf);
	if (plan->rootfs_image[0])
		st->petrel.rootfs_image = strdup(plan->rootfs_image);
	else {
		snprintf(buf, sizeof(buf), "%s/rootfs.img", state_dir);
		st->petrel.rootfs_image = strdup(buf);
	}
	if (o->console_socket)
		st->petrel.console_socket = strdup(o->console_socket);
	st->petrel.vsock_cid = VMM_LAUNCH_GUEST_CID;
	if (cfg->annotations.n) {
		st->annotations.items = calloc(cfg->annotations.n, sizeof(struct oci_kv));
		if (!st->annotations.items) {
			oci_state_free(st);
			return perr_set(err, -ENOMEM, "state");
		}
		for (size_t i = 0; i < cfg->annotations.n; i++) {
			st->annotations.items[i].key = strdup(cfg->annotations.items[i].key);
			st->annotations.items[i].value = strdup(cfg->annotations.items[i].value);
		}
		st->annotations.n = cfg->annotations.n;
	}
	if (!st->id || !st->bundle || !st->rootfs || !st->petrel.qmp_socket ||
	    !st->petrel.rootfs_image) {
		oci_state_free(st);
		return perr_set(err, -ENOMEM, "state");
	}
	*out = st;
	return 0;
}

static int self_dir(char *out, size_t size)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return -errno;
	self[n] = 0;
	snprintf(out, size, "%s", dirname(self));
	return 0;
}

struct create_ctx {
	char state_dir[PATH_MAX];
	bool dir_made;
	pid_t vmm;
	int notify_r, notify_w;
	int pty_master, pty_slave;
	int tap_fd;
	int netns_fd;		  /* a network namespace made for the VM: the VMM starts in it */
	char hugepages[PATH_MAX]; /* the hugetlbfs mount, "" when none */
	const char *netns;	  /* the network namespace petrel put its tap in */
	struct oci_config *cfg;
	struct oci_state *st;
	struct spec_plan plan;
	char **argv;
};

static int create_steps(const struct petrel_create_opts *o, struct create_ctx *c, struct perr *err)
{
	int rc = container_id_validate(o->id, err);
	if (rc < 0)
		return rc;
	char bundle[PATH_MAX];
	if (!realpath(o->bundle ? o->bundle : ".", bundle))
		return perr_set(err, -errno, "--bundle %s", o->bundle ? o->bundle : ".");
	if (o->preserve_fds)
		return perr_setx(err, -ENOTSUP,
				 "--preserve-fds: not supported (the container runs in a VM and "
				 "cannot share host fds)");
	struct petrel_conf conf;
	if ((rc = petrel_conf_load(NULL, &conf, err)) < 0)
		return rc;
	char exe_dir[PATH_MAX];
	if (self_dir(exe_dir, sizeof(exe_dir)) == 0)
		petrel_conf_default_guest(&conf, exe_dir);
	if ((rc = oci_config_load(bundle, &c->cfg, err)) < 0)
		return rc;
	if ((rc = spec_plan_build(c->cfg, bundle, &conf, &c->plan, err)) < 0)
		return rc;
	const struct agent_process *proc = &c->plan.create.u.create.process;
	if (proc->terminal && !o->console_socket && !o->foreground)
		return perr_setx(
		    err, -EINVAL,
		    "cannot allocate tty if petrel will detach without setting console "
		    "socket");
	if (!proc->terminal && o->console_socket)
		return perr_setx(
		    err, -EINVAL,
		    "cannot use console socket if petrel will not detach or allocate tty");
	if ((rc = container_net_check(c->cfg, &conf, err)) < 0)
		return rc;
	char vmm[PATH_MAX];
	if ((rc = vmm_find_binary(conf.vmm, vmm, sizeof(vmm), err)) < 0)
		return rc;

	/* From here on everything made is undone on failure. */
	if ((rc = mkdir_p(o->root, 0700)) < 0)
		return perr_set(err, rc, "--root %s", o->root);
	if (container_path(o->root, o->id, NULL, c->state_dir, sizeof(c->state_dir)) < 0)
		return perr_setx(err, -ENAMETOOLONG, "%s/%s: path too long", o->root, o->id);
	if (mkdir(c->state_dir, 0700) < 0) {
		if (errno == EEXIST)
			return perr_setx(err, -EEXIST, CONTAINER_ERR_EXISTS);
		return perr_set(err, -errno, "%s", c->state_dir);
	}
	c->dir_made = true;
	if ((rc = state_new(o, bundle, c->cfg, &c->plan, c->state_dir, &c->st, err)) < 0 ||
	    (rc = container_save(o->root, c->st, err)) < 0)
		return rc;

	if (!c->plan.rootfs_image[0]) {
		rc = rootfs_build_image(c->plan.rootfs_dir, c->st->petrel.rootfs_image,
					conf.rootfs_margin, c->plan.copies, c->plan.n_copies, err);
		if (rc < 0)
			return rc;
	} else if (c->plan.n_copies) {
		return perr_setx(err, -ENOTSUP,
				 "bind mounts of files cannot be copied into the disk named by %s",
				 SPEC_ANN_ROOTFS);
	}
	if (c->plan.hugepage_size &&
	    (rc = hugepages_mount(c->state_dir, c->plan.hugepage_size, c->plan.memory, c->hugepages,
				  sizeof(c->hugepages), err)) < 0)
		return rc;

	/* The container's network: a tap in config.json's network namespace,
	 * in a new one, or on the bridge (container-net.h, docs/network.md). */
	struct container_net cn;
	if ((rc = container_net_prepare(c->cfg, &conf, o->root, o->id, &cn, err)) < 0)
		return rc;
	c->tap_fd = cn.net.tap_fd;
	c->netns_fd = cn.netns_fd;
	if (cn.netns_path) {
		c->netns = cn.netns_path;
		c->st->petrel.netns = strdup(cn.netns_path);
		if ((rc = container_save(o->root, c->st, err)) < 0)
			return rc;
	}
	autofree char *json = NULL;
	autofree char *with_net = NULL;
	size_t len = 0;
	char path[PATH_MAX];
	if ((rc = agent_msg_encode(&c->plan.create, &json, &len, err)) < 0)
		return rc;
	if (cn.for_agent) {
		size_t net_len = 0;
		rc = netsetup_container_net_add_to_message(&cn.net, json, len, &with_net, &net_len,
							   err);
		if (rc < 0)
			return rc;
		len = net_len;
	}
	/* linux.seccomp goes to the agent, which loads it into every container
	 * process (docs/agent-protocol.md). */
	autofree char *with_seccomp = NULL;
	if (c->cfg->linux_.seccomp) {
		size_t sc_len = 0;
		rc = oci_seccomp_add_to_message(c->cfg->linux_.seccomp, with_net ? with_net : json,
						len, &with_seccomp, &sc_len, err);
		if (rc < 0)
			return rc;
		len = sc_len;
	}
	if (container_path(o->root, o->id, "create.json", path, sizeof(path)) < 0)
		return perr_setx(err, -ENAMETOOLONG, "%s: path too long", c->state_dir);
	const char *msg = with_seccomp ? with_seccomp : with_net ? with_net : json;
	if ((rc = file_write_atomic(path, msg, len, 0600, err)) < 0)
		return rc;

	if (o->console_socket) {
		char name[PATH_MAX];
		rc = console_pty_open(&c->pty_master, &c->pty_slave, name, sizeof(name), err);
		if (rc < 0)
			return rc;
		if (proc->rows && proc->cols) {
			struct winsize ws = {.ws_row = proc->rows, .ws_col = proc->cols};
			ioctl(c->pty_master, TIOCSWINSZ, &ws);
		}
		rc = console_send_fd(o->console_socket, c->pty_master, name, err);
		if (rc < 0)
			return rc;
		close(c->pty_master);
		c->pty_master = -1;
	}

	struct vmm_launch l = {.vmm = vmm,
			       .state_dir = c->state_dir,
			       .id = o->id,
			       .plan = &c->plan,
			       .image = c->st->petrel.rootfs_image,
			       .kernel_append = conf.kernel_append,
			       .debug = o->debug,
			       .mem_path = c->hugepages[0] ? c->hugepages : NULL,
			       .net = c->tap_fd >= 0};
	memcpy(l.mac, cn.net.veth.mac, sizeof(l.mac));
	char template_dir[PATH_MAX] = "";
	/* A NIC on a veth of the caller's network (podman's) has that veth's MAC,
	 * which the guest learns at boot: one template per container would be
	 * made and used once. Those containers boot their guest. */
	if (conf.vm_templates && !cn.for_agent)
		vm_template_get(&l, conf.create_timeout, template_dir, sizeof(template_dir));
	l.incoming = template_dir[0] ? template_dir : NULL;
	if ((rc = vmm_launch_argv(&l, &c->argv, err)) < 0)
		return rc;
	if (o->debug) {
		for (char **a = c->argv; *a; a++)
			log_debug("vmm argv: %s", *a);
	}
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return perr_set(err, -errno, "pipe");
	c->notify_r = p[0];
	c->notify_w = p[1];
	struct netsetup_netns_saved saved_ns = {.orig_fd = -1};
	if (c->netns_fd >= 0 && (rc = netsetup_netns_enter_fd(c->netns_fd, &saved_ns, err)) < 0)
		return rc;
	rc = vmm_spawn(c->argv, c->pty_slave, c->notify_w, c->tap_fd, &c->vmm, err);
	if (netsetup_netns_leave(&saved_ns, rc < 0 ? NULL : err) < 0 && rc == 0)
		rc = -EIO;
	if (rc < 0)
		return rc;
	/* Right after the fork: the guest's memory is charged when first touched,
	 * which is after the VMM has parsed its command line. */
	if ((rc = cgroup_setup_vmm(c->cfg, o->systemd_cgroup, o->id, c->state_dir, c->plan.memory,
				   c->vmm, err)) < 0)
		return rc;
	close(c->notify_w);
	c->notify_w = -1;
	/* The tap (and a namespace made for the VM) lives as long as the VMM. */
	if (c->tap_fd >= 0) {
		close(c->tap_fd);
		c->tap_fd = -1;
	}
	if (c->netns_fd >= 0) {
		close(c->netns_fd);
		c->netns_fd = -1;
	}
	if (c->pty_slave >= 0) {
		close(c->pty_slave);
		c->pty_slave = -1;
	}
	if ((rc = read_notify(c->notify_r, conf.create_timeout, c->state_dir, err)) < 0) {
		/* Only the VMM's own restore failure names "-incoming DIR"; the
		 * container's errors (the agent's) leave the template alone. */
		char restore[PATH_MAX + 16];
		snprintf(restore, sizeof(restore), "-incoming %s", template_dir);
		if (l.incoming && strstr(err->msg, restore)) {
			/* The next create makes the template again, or boots. */
			vm_template_discard(l.incoming);
			perr_wrap(err, "restoring VM template %s (removed)", l.incoming);
		}
		return rc;
	}

	/* The VMM is the container's pid; its start time tells a reused pid apart. */
	c->st->pid = c->vmm;
	c->st->petrel.vmm_pid = c->vmm;
	if (proc_start_time(c->vmm, &c->st->petrel.vmm_start_time, NULL) < 0)
		return perr_setx(err, -ESRCH,
				 "petrel-vmm exited right after creating the container");
	clock_gettime(CLOCK_REALTIME, &c->st->petrel.vmm_started);

	/* Hooks run with the VM's pid known, status "creating" as runc reports it. */
	if ((rc = hooks_run(c->cfg, OCI_HOOK_PRESTART, c->st, err)) < 0 ||
	    (rc = hooks_run(c->cfg, OCI_HOOK_CREATE_RUNTIME, c->st, err)) < 0)
		return rc;
	c->st->status = OCI_STATUS_CREATED;
	if ((rc = container_save(o->root, c->st, err)) < 0)
		return rc;
	if (o->pid_file && (rc = pid_file_write(o->pid_file, c->vmm, err)) < 0)
		return rc;
	return 0;
}

int petrel_create(const struct petrel_create_opts *o, pid_t *vmm_pid, struct perr *err)
{
	struct create_ctx c = {.vmm = -1,
			       .notify_r = -1,
			       .notify_w = -1,
			       .pty_master = -1,
			       .pty_slave = -1,
			       .tap_fd = -1,
			       .netns_fd = -1};
	/* Concurrent commands on one id wait for each other (container_lock). */
	autoclose int lock = -1;
	int rc = container_lock(o->root, o->id, &lock, err);
	if (rc < 0)
		return rc;
	rc = create_steps(o, &c, err);
	if (rc < 0) {
		kill_and_reap(c.vmm);
		if (c.dir_made)
			cgroup_teardown(c.state_dir);
		if (c.tap_fd >= 0)
			close(c.tap_fd);
		c.tap_fd = -1;
		if (c.dir_made)
			hugepages_release(c.state_dir);
		if (c.netns_fd >= 0)
			close(c.netns_fd);
		c.netns_fd = -1;
		if (c.dir_made) /* else the id may be another container's */
			container_net_cleanup(o->root, o->id, c.netns);
		if (c.dir_made) {
			struct perr rm_err = {0};
			if (remove_tree(c.state_dir, &rm_err) < 0)
				log_warn("cleanup: %s", rm_err.msg);
		}
		char dir[PATH_MAX];
		if (container_path(o->root, o->id, NULL, dir, sizeof(dir)) == 0 &&
		    access(dir, F_OK) < 0)
			container_lock_remove(o->root, o->id);
	} else if (vmm_pid) {
		*vmm_pid = c.vmm;
	}
	int fds[] = {c.notify_r, c.notify_w, c.pty_master, c.pty_slave, c.tap_fd};
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	vmm_argv_free(c.argv);
	spec_plan_free(&c.plan);
	oci_config_free(c.cfg);
	oci_state_free(c.st);
	return rc;
}

/* True when the VMM is gone, or goes within a second: the container ended
 * while a request was in flight, and the VM's end took the reply with it. */
static bool vmm_ends_soon(const struct oci_state *st)
{
	for (int i = 0; i < 100; i++) {
		if (!container_vmm_alive(st))
			return true;
		struct timespec ts = {0, 10 * 1000000L};
		nanosleep(&ts, NULL);
	}
	return false;
}

static int agent_uds(const char *root, const char *id, char *buf, size_t size)
{
	return container_path(root, id, "agent.sock", buf, size);
}

/* Loads config.json from the bundle recorded in the state, for hooks. */
static struct oci_config *load_bundle_config(const struct oci_state *st)
{
	struct oci_config *cfg = NULL;
	struct perr err = {0};
	if (!st->bundle || oci_config_load(st->bundle, &cfg, &err) < 0) {
		log_warn("hooks: %s", err.msg[0] ? err.msg : "no bundle");
		return NULL;
	}
	return cfg;
}

int petrel_start(const char *root, const char *id, struct perr *err)
{
	struct oci_state *st = NULL;
	autoclose int lock = -1;
	int rc = container_lock_existing(root, id, &lock, err);
	if (rc < 0)
		return rc;
	rc = container_load(root, id, &st, err);
	if (rc < 0)
		return rc;
	enum oci_status status = container_status(root, st);
	if (status != OCI_STATUS_CREATED) {
		rc = status == OCI_STATUS_STOPPED
			 ? perr_setx(err, -EINVAL, "cannot start a container that has stopped")
			 : perr_setx(err, -EINVAL, "cannot start an already running container");
		oci_state_free(st);
		return rc;
	}
	char uds[PATH_MAX];
	agent_uds(root, id, uds, sizeof(uds));
	struct agent_session s;
	rc = agent_session_open(&s, uds, AGENT_REQUEST_TIMEOUT_MS, err);
	if (rc == 0) {
		struct agent_msg m = {.type = AGENT_MSG_START}, reply;
		rc = agent_session_request(&s, &m, AGENT_MSG_STARTED, &reply, err);
		agent_msg_free(&reply);
		agent_session_close(&s);
	}
	/* A process that exits at once ends the VM, which may drop the reply to
	 * this connection: the container did start. */
	if (rc < 0 && vmm_ends_soon(st))
		rc = 0;
	if (rc < 0) {
		oci_state_free(st);
		return perr_wrap(err, "start");
	}
	st->status = OCI_STATUS_RUNNING;
	rc = container_save(root, st, err);
	struct oci_config *cfg = load_bundle_config(st);
	if (cfg) {
		struct perr hook_err = {0};
		/* The spec: a failing poststart hook is a warning, the container runs on. */
		if (hooks_run(cfg, OCI_HOOK_POSTSTART, st, &hook_err) < 0)
			log_warn("%s", hook_err.msg);
		oci_config_free(cfg);
	}
	oci_state_free(st);
	return rc;
}

int petrel_wait_vmm(pid_t vmm_pid)
{
	sigset_t set, old;
	relay_forwarded_signals(&set);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, &old);
	int status = 0;
	for (;;) {
		pid_t w = waitpid(vmm_pid, &status, WNOHANG);
		if (w == vmm_pid)
			break;
		if (w < 0 && errno != EINTR) {
			status = 0xff00; /* exit status 255 */
			break;
		}
		struct timespec ts = {1, 0};
		int sig = sigtimedwait(&set, NULL, &ts);
		/* run stands in for the container too: what it gets goes to the VMM,
		 * which forwards it into the guest. */
		if (sig > 0 && sig != SIGCHLD)
			kill(vmm_pid, sig);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

static int vmm_pid_of(const struct oci_state *st)
{
	return st->has_petrel && st->petrel.vmm_pid ? st->petrel.vmm_pid : st->pid;
}

int petrel_kill(const char *root, const char *id, int sig, bool all, struct perr *err)
{
	struct oci_state *st = NULL;
	autoclose int lock = -1;
	int rc = container_lock_existing(root, id, &lock, err);
	if (rc < 0)
		return rc;
	rc = container_load(root, id, &st, err);
	if (rc < 0)
		return rc;
	enum oci_status status = container_status(root, st);
	if (status == OCI_STATUS_STOPPED) {
		oci_state_free(st);
		return perr_setx(err, -ESRCH, CONTAINER_ERR_NOT_RUNNING);
	}
	if (status == OCI_STATUS_PAUSED || status == OCI_STATUS_CREATED) {
		/* A paused guest cannot answer, and a created init is not running yet:
		 * KILL (and TERM for a created container, which has nothing to clean
		 * up) ends the VM itself, as the container's pid. */
		if (sig == SIGKILL || (status == OCI_STATUS_CREATED && sig == SIGTERM)) {
			kill(vmm_pid_of(st), SIGKILL);
			oci_state_free(st);
			return 0;
		}
		if (status == OCI_STATUS_PAUSED) {
			oci_state_free(st);
			return perr_setx(
			    err, -EBUSY,
			    "the container is paused: only KILL can be delivered (resume "
			    "it first)");
		}
	}
	char uds[PATH_MAX];
	agent_uds(root, id, uds, sizeof(uds));
	struct agent_session s;
	rc = agent_session_open(&s, uds, AGENT_REQUEST_TIMEOUT_MS, err);
	if (rc == 0) {
		struct agent_msg m = {.type = AGENT_MSG_SIGNAL}, reply;
		m.u.signal.id = AGENT_INIT_ID;
		m.u.signal.signal = sig;
		m.u.signal.all = all;
		rc = agent_session_request(&s, &m, AGENT_MSG_OK, &reply, err);
		agent_msg_free(&reply);
		agent_session_close(&s);
	}
	/* The signal may have ended the container, and the VM with it, before
	 * the agent's reply got out: that is a delivered signal. */
	if (rc < 0 && vmm_ends_soon(st))
		rc = 0;
	else if (rc < 0)
		perr_wrap(err, "kill");
	oci_state_free(st);
	return rc;
}

/* SIGKILL to the VMM, then wait (up to 10 s) until it is gone or a zombie. */
static void stop_vmm(const struct oci_state *st)
{
	if (!container_vmm_alive(st))
		return;
	int pid = vmm_pid_of(st);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, WNOHANG); /* when it is our child (run) */
	for (int i = 0; i < 1000 && container_vmm_alive(st); i++) {
		struct timespec ts = {0, 10 * 1000000L};
		nanosleep(&ts, NULL);
		waitpid(pid, NULL, WNOHANG);
	}
}

int petrel_delete(const char *root, const char *id, bool force, struct perr *err)
{
	struct oci_state *st = NULL;
	autoclose int lock = -1;
	int rc = container_lock_existing(root, id, &lock, err);
	if (rc == -ENOENT && force)
		return 0;
	if (rc < 0)
		return rc;
	rc = container_load(root, id, &st, err);
	if (rc == -ENOENT && force)
		return 0; /* runc: delete --force of a missing container succeeds */
	if (rc < 0)
		return rc;
	enum oci_status status = container_status(root, st);
	if ((status == OCI_STATUS_RUNNING || status == OCI_STATUS_PAUSED) && !force) {
		rc = perr_setx(err, -EBUSY, "cannot delete container %s that is not stopped: %s",
			       id, oci_status_name(status));
		oci_state_free(st);
		return rc;
	}
	stop_vmm(st);
	st->status = OCI_STATUS_STOPPED;
	/* The tap went with the VMM's fd; the redirect filters on the veth stay
	 * until removed. */
	container_net_cleanup(root, id, st->has_petrel ? st->petrel.netns : NULL);
	struct oci_config *cfg = load_bundle_config(st);
	if (cfg) {
		struct perr hook_err = {0};
		if (hooks_run(cfg, OCI_HOOK_POSTSTOP, st, &hook_err) < 0)
			log_warn("%s", hook_err.msg);
		oci_config_free(cfg);
	}
	char dir[PATH_MAX];
	container_path(root, id, NULL, dir, sizeof(dir));
	cgroup_teardown(dir);
	hugepages_release(dir);
	rc = remove_tree(dir, err);
	if (rc == 0)
		container_lock_remove(root, id);
	oci_state_free(st);
	return rc;
}
