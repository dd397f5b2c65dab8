/*
 * petrel-agent's PID-1 duties: the early mounts, leaving the initramfs root
 * (pivot_root refuses to move the initramfs, so containers could not pivot),
 * bringing up lo, then serving the host until it asks for a shutdown, and
 * finally rebooting the VM (with reboot=k the VMM sees the reset and exits).
 *
 * Kernel command line: petrel.agent.port=N (vsock port, default 1024),
 * petrel.agent.debug=1 (log every request on the console).
 * Run as an ordinary process (not PID 1) it only serves: --port N, --debug.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "common/log.h"

static void must_mount(const char *src, const char *dst, const char *type, unsigned long flags,
		       const char *data)
{
	mkdir(dst, 0755);
	if (mount(src, dst, type, flags, data) < 0 && errno != EBUSY)
		log_error("mount %s on %s: %s", type, dst, strerror(errno));
}

/* The kernel gives init the console only if the initramfs has /dev/console. */
static void open_console(void)
{
	int fd = open("/dev/console", O_RDWR | O_NOCTTY);
	if (fd < 0)
		return;
	for (int i = 0; i < 3; i++)
		if (fd != i)
			dup2(fd, i);
	if (fd > 2)
		close(fd);
}

/* Moves / onto a tmpfs mount, like switch_root does: on the initramfs root
 * (rootfs) pivot_root fails with EINVAL, and containers need pivot_root. */
static void leave_initramfs(void)
{
	const char *nr = "/.agent-root";
	if (mkdir(nr, 0755) < 0 && errno != EEXIST) {
		log_error("mkdir %s: %s", nr, strerror(errno));
		return;
	}
	if (mount("tmpfs", nr, "tmpfs", 0, "mode=0755") < 0) {
		log_error("mount tmpfs on %s: %s", nr, strerror(errno));
		return;
	}
	static const char *const dirs[] = {"dev", "proc", "sys", "run", "tmp"};
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		char p[64];
		snprintf(p, sizeof(p), "%s/%s", nr, dirs[i]);
		mkdir(p, 0755);
	}
	char dev[64];
	snprintf(dev, sizeof(dev), "%s/dev", nr);
	if (mount("/dev", dev, NULL, MS_MOVE, NULL) < 0)
		log_error("move /dev: %s", strerror(errno));
	/* The agent runs from memory already; the initramfs copy only takes space. */
	unlink("/init");
	if (chdir(nr) < 0 || mount(".", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0 ||
	    chdir("/") < 0)
		log_error("switch root to tmpfs: %s", strerror(errno));
}

/* The container shares the VM's network namespace: 127.0.0.1 has to work. */
static void loopback_up(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
			log_warn("bring lo up: %s", strerror(errno));
	}
	close(fd);
}

static void system_setup(void)
{
	mkdir("/dev", 0755);
	if (mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755") < 0 && errno != EBUSY)
		log_error("mount devtmpfs: %s", strerror(errno));
	open_console();
	leave_initramfs();
	must_mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	must_mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	must_mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
		   "mode=0620,ptmxmode=0666");
	must_mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
	must_mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	loopback_up();
}

static void parse_cmdline(uint32_t *port, bool *debug, bool *quiet)
{
	char buf[4096];
	int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	char *save = NULL;
	for (char *tok = strtok_r(buf, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save)) {
		if (strncmp(tok, "petrel.agent.port=", 18) == 0) {
			char *end;
			unsigned long v = strtoul(tok + 18, &end, 10);
			if (*end == '\0' && v > 0 && v <= UINT32_MAX)
				*port = (uint32_t)v;
			else
				log_warn("ignoring %s", tok);
		} else if (strcmp(tok, "petrel.agent.debug=1") == 0) {
			*debug = true;
		} else if (strcmp(tok, "quiet") == 0) {
			/* As the kernel does: the serial console is slow (an exit a byte). */
			*quiet = true;
		}
	}
}

static void __attribute__((noreturn)) power_off(void)
{
	sync();
	reboot(RB_AUTOBOOT);
	/* Still here: no reset method worked. PID 1 must not exit (that panics). */
	reboot(RB_POWER_OFF);
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	bool pid1 = getpid() == 1;
	uint32_t port = AGENT_VSOCK_PORT;
	bool debug = false;
	bool quiet = false;

	log_set_ident("petrel-agent");
	if (pid1) {
		system_setup();
		parse_cmdline(&port, &debug, &quiet);
	} else {
		for (int i = 1; i < argc; i++) {
			if (strcmp(argv[i], "--debug") == 0) {
				debug = true;
			} else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
				port = (uint32_t)strtoul(argv[++i], NULL, 10);
			} else {
				fprintf(stderr, "usage: petrel-agent [--port N] [--debug]\n");
				return 2;
			}
		}
	}
	if (debug)
		log_set_level(LOG_DEBUG);
	else if (quiet)
		log_set_level(LOG_WARN);

	struct perr err = {0};
	int r = server_run(port, &err);
	if (r < 0)
		log_error("%s", err.msg);
	if (pid1) {
		log_info("powering off");
		power_off();
	}
	return r < 0 ? 1 : 0;
}
