/* petrel-vmm's command line and start (vmm-launch.h). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "runtime/vmm-launch.h"

struct argv_builder {
	char **v;
	size_t n;
	bool failed;
};

static void __attribute__((format(printf, 2, 3)))
argv_add(struct argv_builder *b, const char *fmt, ...)
{
	if (b->failed)
		return;
	char **nv = realloc(b->v, (b->n + 2) * sizeof(*nv));
	if (!nv) {
		b->failed = true;
		return;
	}
	b->v = nv;
	va_list ap;
	va_start(ap, fmt);
	int r = vasprintf(&b->v[b->n], fmt, ap);
	va_end(ap);
	if (r < 0) {
		b->failed = true;
		b->v[b->n] = NULL;
		return;
	}
	b->v[++b->n] = NULL;
}

void vmm_argv_free(char **argv)
{
	if (!argv)
		return;
	for (char **p = argv; *p; p++)
		free(*p);
	free(argv);
}

int vmm_launch_argv(const struct vmm_launch *l, char ***argv, struct perr *err)
{
	struct argv_builder b = {0};
	const struct spec_plan *p = l->plan;
	char sock[PATH_MAX];
	int n = snprintf(sock, sizeof(sock), "%s/agent.sock", l->state_dir);
	if (n < 0 || n >= 108)
		return perr_setx(err, -ENAMETOOLONG,
				 "%s/agent.sock: socket path longer than 107 bytes (use a shorter "
				 "--root)",
				 l->state_dir);
	argv_add(&b, "%s", l->vmm);
	argv_add(&b, "-name");
	argv_add(&b, "%.255s", l->id);
	argv_add(&b, "-machine");
	argv_add(&b, "%s", p->machine);
	argv_add(&b, "-smp");
	argv_add(&b, "%u", p->cpus);
	argv_add(&b, "-m");
	argv_add(&b, "%lluM", (unsigned long long)(p->memory >> 20));
	if (l->mem_path) {
		argv_add(&b, "-mem-path");
		argv_add(&b, "%s", l->mem_path);
	}
	argv_add(&b, "-kernel");
	argv_add(&b, "%s", p->kernel);
	argv_add(&b, "-initrd");
	argv_add(&b, "%s", p->initrd);
	/* petrel's microvm has neither PCI nor ACPI (its devices are virtio-mmio
	 * on the command line): without pci=off and acpi=off the guest spends
	 * about 410 of its ~860 port I/O exits by /init probing for them, sets up
	 * the ACPI interpreter, and logs an ACPI error on the serial console. */
	bool microvm = !strcmp(p->machine, "microvm");
	argv_add(&b, "-append");
	argv_add(&b, "console=ttyS0 reboot=k panic=-1 quiet%s%s%s%s",
		 microvm ? " pci=off acpi=off" : "", l->debug ? " petrel.agent.debug=1" : "",
		 l->kernel_append && *l->kernel_append ? " " : "",
		 l->kernel_append ? l->kernel_append : "");
	argv_add(&b, "-drive");
	argv_add(&b, "id=rootfs,file=%s,direct=off%s", l->image,
		 p->create.u.create.root_readonly && p->rootfs_image[0] ? ",readonly=on" : "");
	argv_add(&b, "-device");
	argv_add(&b, "virtio-blk-device,drive=rootfs");
	argv_add(&b, "-device");
	argv_add(&b, "vhost-vsock-device,id=agent,guest-cid=%d,uds-path=%s", VMM_LAUNCH_GUEST_CID,
		 sock);
	if (l->net) {
		argv_add(&b, "-netdev");
		argv_add(&b, "tap,id=net0,fd=%d", VMM_LAUNCH_TAP_FD);
		argv_add(&b, "-device");
		argv_add(&b,
			 "virtio-net-device,netdev=net0,id=net0,mac=%02x:%02x:%02x:%02x:%02x:%02x",
			 l->mac[0], l->mac[1], l->mac[2], l->mac[3], l->mac[4], l->mac[5]);
	}
	argv_add(&b, "-qmp");
	argv_add(&b, "unix:%s/qmp.sock,server,nowait", l->state_dir);
	argv_add(&b, "-serial");
	argv_add(&b, "file,path=%s/console.log", l->state_dir);
	argv_add(&b, "-D");
	argv_add(&b, "%s/vmm.log", l->state_dir);
	if (l->incoming) {
		argv_add(&b, "-incoming");
		argv_add(&b, "file:%s", l->incoming);
	}
	if (!l->template_build) {
		argv_add(&b, "-petrel-container");
		argv_add(&b, "%s,notify-fd=%d", l->state_dir, VMM_LAUNCH_NOTIFY_FD);
	}
	if (b.failed) {
		vmm_argv_free(b.v);
		return perr_set(err, -ENOMEM, "petrel-vmm command line");
	}
	*argv = b.v;
	return 0;
}

static bool executable(const char *path)
{
	return access(path, X_OK) == 0;
}

int vmm_find_binary(const char *conf_vmm, char *out, size_t size, struct perr *err)
{
	if (conf_vmm && *conf_vmm) {
		if (!executable(conf_vmm))
			return perr_set(err, -errno, "petrel.conf: vmm %s", conf_vmm);
		snprintf(out, size, "%s", conf_vmm);
		return 0;
	}
	const char *env = getenv("PETREL_VMM");
	if (env && *env) {
		if (!executable(env))
			return perr_set(err, -errno, "$PETREL_VMM %s", env);
		snprintf(out, size, "%s", env);
		return 0;
	}
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = 0;
		char cand[PATH_MAX];
		if (snprintf(cand, sizeof(cand), "%s/petrel-vmm", dirname(self)) <
			(int)sizeof(cand) &&
		    executable(cand)) {
			snprintf(out, size, "%s", cand);
			return 0;
		}
	}
	const char *path = getenv("PATH");
	if (path) {
		char *copy = strdup(path), *save = NULL;
		for (char *d = copy ? strtok_r(copy, ":", &save) : NULL; d;
		     d = strtok_r(NULL, ":", &save)) {
			char cand[PATH_MAX];
			if (snprintf(cand, sizeof(cand), "%s/petrel-vmm", d) < (int)sizeof(cand) &&
			    executable(cand)) {
				snprintf(out, size, "%s", cand);
				free(copy);
				return 0;
			}
		}
		free(copy);
	}
	return perr_setx(err, -ENOENT,
			 "petrel-vmm not found (next to petrel, in $PATH, $PETREL_VMM or "
			 "petrel.conf's vmm)");
}

int vmm_spawn(char **argv, int tty_fd, int notify_fd, int tap_fd, pid_t *pid, struct perr *err)
{
	pid_t child = fork();
	if (child < 0)
		return perr_set(err, -errno, "fork");
	if (child > 0) {
		*pid = child;
		return 0;
	}
	/* The child: every source moved out of the way first, so that no dup2
	 * below overwrites another source (a tap that happens to be fd 3). */
	int n = fcntl(notify_fd, F_DUPFD_CLOEXEC, 10);
	int t = tap_fd >= 0 ? fcntl(tap_fd, F_DUPFD_CLOEXEC, 10) : -1;
	int y = tty_fd >= 0 ? fcntl(tty_fd, F_DUPFD_CLOEXEC, 10) : -1;
	if (y >= 0) {
		setsid();
		dup2(y, STDIN_FILENO);
		dup2(y, STDOUT_FILENO);
		dup2(y, STDERR_FILENO);
		ioctl(STDIN_FILENO, TIOCSCTTY, 0);
	}
	dup2(n, VMM_LAUNCH_NOTIFY_FD);
	if (t >= 0)
		dup2(t, VMM_LAUNCH_TAP_FD);
	close_range(t >= 0 ? VMM_LAUNCH_TAP_FD + 1 : VMM_LAUNCH_NOTIFY_FD + 1, ~0u, 0);
	execv(argv[0], argv);
	dprintf(VMM_LAUNCH_NOTIFY_FD, "error: exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}
