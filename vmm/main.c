/*
 * petrel-vmm: one KVM microVM per process, StratoVirt-compatible command line.
 *
 *   parse (no side effects) -> log file -> daemonize -> build the VM -> QMP
 *   socket -> pidfile -> detach -> seccomp -> run the main loop -> tear down
 *   in reverse
 *
 * Exit status:
 *   0  the VM ended normally: the guest powered off (ACPI S5) or rebooted (an
 *      i8042 reset, a triple fault; with the MicroVm machine a reboot ends
 *      the VMM), QMP "quit" or "system_reset", or SIGTERM / SIGINT / SIGHUP
 *   1  a bad command line, a failed start, or a host error while running
 *      (KVM internal error or failed VM entry, main loop failure)
 * In container mode (-petrel-container DIR, used by the petrel runtime) the
 * status is the container's: N, or 128+signal; 255 when the VM ended without
 * the container reporting one; 1 when the agent could not be reached or
 * refused the container (the reason also goes to the notify fd).
 * On any failure nothing is left behind: no QMP socket, no pidfile, and no log
 * file unless it existed before.
 *
 * With -daemonize the command returns once the VM is built and the pidfile
 * written (0), or when the daemon failed to start (1, the reason on stderr).
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/error.h"
#include "../common/log.h"
#include "cli/config.h"
#include "core/daemon.h"
#include "core/eventloop.h"
#include "core/vm.h"
#include "qmp/qmp.h"
#include "runtime/relay.h"

struct vmm_main {
	struct vmm_config cfg;
	struct perr err;
	struct daemon_ctx daemon;
	char logfile_abs[PATH_MAX];
	bool logfile_created;
	char pidfile_abs[PATH_MAX];
	bool pidfile_written;
	int sigfd;
	struct vm *vm;
	struct qmp_server *qmp;
	/* Container mode (-petrel-container): the relay to the container's init. */
	struct agent_msg container_create;
	char *container_create_raw;
	size_t container_create_len;
	struct relay *relay;
	int container_status; /* -1 until the container exited */
	bool container_failed;
};

/* SIGTERM, SIGINT and SIGHUP end the VM cleanly, through the main loop. */
static void vmm_termination_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
}

static void vmm_on_signal(void *opaque, uint32_t events)
{
	struct vmm_main *m = opaque;
	struct signalfd_siginfo si;
	(void)events;
	if (read(m->sigfd, &si, sizeof(si)) != sizeof(si))
		return;
	log_debug("received signal %u; shutting down", si.ssi_signo);
	vm_request_shutdown(m->vm, VM_SHUTDOWN_HOST_SIGNAL);
}

/*
 * Container mode: the VMM stands in for the container on the host (see
 * docs/runtime.md). It holds no fds but its stdio, the notify fd and the tap
 * fds it was given; petrel's own fds must not leak into a long-lived process.
 */
static bool vmm_fd_wanted(const struct vmm_config *cfg, int fd)
{
	if (fd <= STDERR_FILENO || fd == cfg->container_notify_fd)
		return true;
	for (unsigned i = 0; i < cfg->n_netdevs; i++) {
		if (cfg->netdevs[i].vhostfd == fd)
			return true;
		for (unsigned j = 0; j < cfg->netdevs[i].n_fds; j++)
			if (cfg->netdevs[i].fds[j] == fd)
				return true;
	}
	return false;
}

static void vmm_close_inherited_fds(const struct vmm_config *cfg)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return;
	int self = dirfd(d);
	int fds[256], n = 0;
	struct dirent *de;
	while ((de = readdir(d)) && n < (int)(sizeof(fds) / sizeof(fds[0]))) {
		char *end;
		long fd = strtol(de->d_name, &end, 10);
		if (*end || end == de->d_name || fd == self || vmm_fd_wanted(cfg, (int)fd))
			continue;
		fds[n++] = (int)fd;
	}
	closedir(d);
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

/* The container's init exited (status N or 128+signal), or the relay failed
 * (status -1): the VM has done its job. */
static void vmm_container_done(void *opaque, int status, const struct perr *err)
{
	struct vmm_main *m = opaque;
	if (status < 0) {
		m->container_failed = true;
		log_error("container: %s", err ? err->msg : "failed");
	} else {
		m->container_status = status;
		log_debug("container: init exited with status %d", status);
	}
	vm_request_shutdown(m->vm, VM_SHUTDOWN_GUEST_SHUTDOWN);
}

static int vmm_container_start(struct vmm_main *m)
{
	if (!m->cfg.vsock.present || !m->cfg.vsock.uds_path[0])
		return perr_setx(
		    &m->err, -EINVAL,
		    "-petrel-container: needs -device vhost-vsock-device with uds-path "
		    "(the agent's socket)");
	int rc = relay_load_create(m->cfg.container_dir, &m->container_create,
				   &m->container_create_raw, &m->container_create_len, &m->err);
	if (rc < 0)
		return perr_wrap(&m->err, "-petrel-container");
	struct relay_config rc_cfg = {
	    .uds_path = m->cfg.vsock.uds_path,
	    .port = AGENT_VSOCK_PORT,
	    .conn_fd = -1,
	    .await_ready = true,
	    .connect_timeout_ms = 120 * 1000,
	    .request = &m->container_create,
	    .request_raw = m->container_create_raw,
	    .request_raw_len = m->container_create_len,
	    .notify_fd = m->cfg.container_notify_fd,
	    .in_fd = STDIN_FILENO,
	    .out_fd = STDOUT_FILENO,
	    .err_fd = STDERR_FILENO,
	    .forward_signals = true,
	    .done = vmm_container_done,
	    .opaque = m,
	};
	rc = relay_start(vm_eventloop(m->vm), &rc_cfg, &m->relay, &m->err);
	if (rc < 0)
		return rc;
	/* The relay owns the notify fd now. */
	m->cfg.container_notify_fd = -1;
	return 0;
}

static int vmm_open_log(struct vmm_main *m)
{
	if (!m->cfg.log_set || !m->cfg.logfile[0])
		return 0;
	int rc = path_make_absolute(m->cfg.logfile, m->logfile_abs, sizeof(m->logfile_abs));
	if (rc < 0)
		return perr_set(&m->err, rc, "-D %s", m->cfg.logfile);
	struct stat st;
	m->logfile_created = stat(m->logfile_abs, &st) < 0 && errno == ENOENT;
	rc = log_set_file(m->logfile_abs);
	if (rc < 0) {
		m->logfile_created = false;
		return perr_set(&m->err, rc, "-D %s", m->cfg.logfile);
	}
	return 0;
}

/* The QMP socket path, absolute when it fits, so that the server can unlink
 * it after the daemon's chdir("/"). */
static void vmm_qmp_path(const struct vmm_main *m, char *out, size_t size)
{
	char abs[PATH_MAX];
	if (path_make_absolute(m->cfg.qmp_path, abs, sizeof(abs)) == 0 &&
	    strlen(abs) < sizeof(m->cfg.qmp_path))
		snprintf(out, size, "%s", abs);
	else
		snprintf(out, size, "%s", m->cfg.qmp_path);
}

static int vmm_start(struct vmm_main *m)
{
	int rc = vmm_open_log(m);
	if (rc < 0)
		return rc;

	if (m->cfg.daemonize) {
		rc = daemon_start(&m->daemon, &m->err);
		if (rc < 0)
			return rc;
	}
	if (m->cfg.pidfile[0]) {
		rc = path_make_absolute(m->cfg.pidfile, m->pidfile_abs, sizeof(m->pidfile_abs));
		if (rc < 0)
			return perr_set(&m->err, rc, "-pidfile %s", m->cfg.pidfile);
	}

	/* Blocked before any thread exists, so that only the signalfd sees them.
	 * In container mode the relay's signalfd takes them all and forwards
	 * them to the container. */
	sigset_t term;
	bool container = m->cfg.container_dir[0] != 0;
	if (container)
		relay_forwarded_signals(&term);
	else
		vmm_termination_signals(&term);
	if (sigprocmask(SIG_BLOCK, &term, NULL) < 0)
		return perr_set(&m->err, -errno, "sigprocmask");
	if (!container) {
		m->sigfd = signalfd(-1, &term, SFD_CLOEXEC | SFD_NONBLOCK);
		if (m->sigfd < 0)
			return perr_set(&m->err, -errno, "signalfd");
	}
	/* Writes to a vanished peer (a QMP client, a chardev socket) are errors,
	 * not deaths. */
	signal(SIGPIPE, SIG_IGN);

	rc = vm_build(&m->cfg, &m->vm, &m->err);
	if (rc < 0)
		return rc;
	struct eventloop *loop = vm_eventloop(m->vm);
	if (m->sigfd >= 0) {
		rc = eventloop_add(loop, m->sigfd, 0, vmm_on_signal, m);
		if (rc < 0)
			return perr_set(&m->err, rc, "event loop");
	}

	if (m->cfg.qmp_path[0]) {
		char path[sizeof(m->cfg.qmp_path)];
		vmm_qmp_path(m, path, sizeof(path));
		rc = qmp_server_create(loop, m->vm, path, &m->qmp, &m->err);
		if (rc < 0)
			return rc;
	}

	if (container) {
		rc = vmm_container_start(m);
		if (rc < 0)
			return rc;
	}

	/* The pidfile and the daemon's detach (chdir, stdio on /dev/null) come
	 * before the filters, so that the main thread's allowlist needs neither
	 * rename nor chdir nor dup2. What can still fail after this is a thread
	 * that cannot be created or a filter the kernel refuses: the daemon then
	 * exits 1 with the reason in the -D log, and removes the pidfile. */
	if (m->pidfile_abs[0]) {
		rc = pidfile_write(m->pidfile_abs, getpid(), &m->err);
		if (rc < 0)
			return rc;
		m->pidfile_written = true;
	}
	rc = daemon_ready(&m->daemon, &m->err);
	if (rc < 0)
		return rc;
	return vm_install_seccomp(m->vm, m->cfg.disable_seccomp, &m->err);
}

/* Reverse of vmm_start; after a failed start also removes the log file we
 * created. */
static void vmm_teardown(struct vmm_main *m, bool failed)
{
	relay_destroy(m->relay);
	m->relay = NULL;
	agent_msg_free(&m->container_create);
	free(m->container_create_raw);
	m->container_create_raw = NULL;
	if (m->cfg.container_notify_fd >= 0) {
		if (failed)
			dprintf(m->cfg.container_notify_fd, "error: %s\n", m->err.msg);
		close(m->cfg.container_notify_fd);
		m->cfg.container_notify_fd = -1;
	}
	qmp_server_destroy(m->qmp);
	m->qmp = NULL;
	if (m->vm && m->sigfd >= 0)
		eventloop_remove(vm_eventloop(m->vm), m->sigfd);
	vm_destroy(m->vm);
	m->vm = NULL;
	if (m->sigfd >= 0)
		close(m->sigfd);
	m->sigfd = -1;
	if (m->pidfile_written)
		unlink(m->pidfile_abs);
	m->pidfile_written = false;
	if (failed && m->logfile_created) {
		log_set_file(NULL);
		unlink(m->logfile_abs);
	}
}

int main(int argc, char **argv)
{
	log_set_ident("petrel-vmm");
	struct vmm_main *m = calloc(1, sizeof(*m));
	if (!m) {
		fprintf(stderr, "petrel-vmm: out of memory\n");
		return 1;
	}
	m->sigfd = -1;
	m->daemon.report_fd = -1;
	m->container_status = -1;

	if (vmm_config_parse(argc, argv, &m->cfg, &m->err) < 0) {
		fprintf(stderr, "petrel-vmm: %s\n", m->err.msg);
		free(m);
		return 1;
	}
	switch (m->cfg.action) {
	case VMM_ACTION_VERSION:
		printf("petrel-vmm version %s\n", PETREL_VERSION);
		printf("StratoVirt-compatible command line; MicroVm machine on KVM (x86_64)\n");
		free(m);
		return 0;
	case VMM_ACTION_HELP:
		vmm_config_print_help();
		free(m);
		return 0;
	case VMM_ACTION_RUN:
		break;
	}

	if (m->cfg.container_dir[0])
		vmm_close_inherited_fds(&m->cfg);

	if (vmm_start(m) < 0) {
		/* Printed before the teardown: it may restore the terminal, and the
		 * message belongs to the start that failed. */
		log_error("%s", m->err.msg);
		if (m->cfg.log_set && m->cfg.logfile[0])
			fprintf(stderr, "petrel-vmm: %s\n", m->err.msg);
		vmm_teardown(m, true);
		free(m);
		return 1;
	}

	int status = 1;
	if (vm_run(m->vm, &m->err) < 0)
		log_error("%s", m->err.msg);
	else
		status = vm_exit_status(m->vm);
	/* Container mode: the container's status (N or 128+signal); 255 when the
	 * VM ended without the container reporting one (a guest crash). */
	if (m->cfg.container_dir[0] && !m->container_failed)
		status = m->container_status >= 0 ? m->container_status : 255;
	if (m->cfg.container_dir[0]) {
		/* The container is over and its output delivered; its status is
		 * what `petrel run` and conmon wait for. Exiting hands the VM to the
		 * kernel, which frees it sooner than vm_destroy's ordered teardown
		 * (each irqfd's removal waits for an RCU grace period). Only the
		 * terminal's mode and the QMP socket need us; the state directory
		 * goes with `petrel delete`. */
		relay_destroy(m->relay);
		qmp_server_destroy(m->qmp);
		_exit(status);
	}
	vmm_teardown(m, false);
	free(m);
	return status;
}
