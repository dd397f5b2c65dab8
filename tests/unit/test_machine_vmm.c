/*
 * The petrel-vmm program as a user runs it, with hand-assembled raw guests on
 * this host's KVM: exit statuses, SIGTERM, -daemonize/-pidfile, failed starts
 * that leave nothing behind, the terminal restored, pty and socket chardevs,
 * serial input with flow control, QMP quit. The binary is found next to this
 * test: $(BUILD)/tests/test_machine_vmm -> $(BUILD)/bin/petrel-vmm.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "unit.h"

#define G_MOV_DX_COM1 0x66, 0xba, 0xf8, 0x03
#define G_I8042_RESET 0xb0, 0xfe, 0xe6, 0x64
#define G_HLT	      0xf4

/* Prints 'A' forever. */
static const uint8_t loop_code[] = {G_MOV_DX_COM1, 0xb0, 'A', 0xee, 0xeb, 0xfd};
/* Prints 'X' and resets. */
static const uint8_t x_code[] = {G_MOV_DX_COM1, 0xb0, 'X', 0xee, G_I8042_RESET, G_HLT};
/* Echoes serial input until it sees 'q', then resets (polls LSR.DR). */
static const uint8_t echo_code[] = {
    0x66,	   0xba,  0xfd, 0x03, /* 0: mov dx, 0x3fd (LSR) */
    0xec,			      /* 4: in al, dx */
    0xa8,	   0x01,	      /* 5: test al, 1 */
    0x74,	   0xfb,	      /* 7: jz 4 */
    G_MOV_DX_COM1,		      /* 9 */
    0xec,			      /* 13: in al, dx */
    0xee,			      /* 14: out dx, al */
    0x3c,	   'q',		      /* 15: cmp al, 'q' */
    0x75,	   0xed,	      /* 17: jne 0 */
    G_I8042_RESET, G_HLT,	      /* 19 */
};

struct env {
	char dir[64];
	char vmm[PATH_MAX];
	char kernel[128];
	char path[4][160]; /* scratch paths in dir */
};

static bool env_setup(struct env *e, const uint8_t *code, size_t len, char *why, size_t whysize)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		return snprintf(why, whysize, "readlink /proc/self/exe"), false;
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	*slash = '\0';
	snprintf(e->vmm, sizeof(e->vmm), "%.4000s/../bin/petrel-vmm", self);
	if (access(e->vmm, X_OK) < 0)
		return snprintf(why, whysize, "%.200s not built", e->vmm), false;
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		return snprintf(why, whysize, "/dev/kvm: %s", strerror(errno)), false;
	close(kvm);
	snprintf(e->dir, sizeof(e->dir), "/tmp/petrel-vmm-XXXXXX");
	if (!mkdtemp(e->dir))
		return snprintf(why, whysize, "mkdtemp"), false;
	snprintf(e->kernel, sizeof(e->kernel), "%s/guest.bin", e->dir);
	for (int i = 0; i < 4; i++)
		snprintf(e->path[i], sizeof(e->path[i]), "%s/f%d", e->dir, i);
	FILE *f = fopen(e->kernel, "w");
	fwrite(code, 1, len, f);
	fclose(f);
	return true;
}

static void env_cleanup(struct env *e)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", e->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", e->dir);
}

#define ENV_SETUP(e, code)                                                    \
	do {                                                                  \
		char why_[300];                                               \
		if (!env_setup(&(e), code, sizeof(code), why_, sizeof(why_))) \
			UNIT_SKIP("%s", why_);                                \
	} while (0)

/* Starts the VMM with stdin/stdout/stderr as given (-1: /dev/null, except
 * stderr_path, a file). argv ends with NULL. */
static pid_t spawn(const struct env *e, int in_fd, int out_fd, const char *stderr_path,
		   const char *const *args)
{
	const char *argv[40] = {e->vmm};
	int n = 1;
	for (; *args && n < 39; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(in_fd >= 0 ? in_fd : null, 0);
		dup2(out_fd >= 0 ? out_fd : null, 1);
		int err =
		    stderr_path ? open(stderr_path, O_WRONLY | O_CREAT | O_TRUNC, 0644) : null;
		dup2(err, 2);
		execv(e->vmm, (char *const *)argv);
		_exit(127);
	}
	return pid;
}

/* Exit status, or -1 on timeout (the child is then killed). */
static int wait_exit(pid_t pid, int timeout_ms)
{
	for (int waited = 0; waited < timeout_ms; waited += 10) {
		int st;
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

static size_t slurp(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		buf[0] = '\0';
		return 0;
	}
	size_t n = fread(buf, 1, size - 1, f);
	fclose(f);
	buf[n] = '\0';
	return n;
}

static bool exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

static int connect_unix(const char *path, int timeout_ms)
{
	for (int waited = 0; waited < timeout_ms; waited += 10) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%.100s", path);
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		close(fd);
		usleep(10000);
	}
	return -1;
}

/* Reads until `want` bytes or the timeout. */
static size_t read_until(int fd, char *buf, size_t want, int timeout_ms)
{
	size_t got = 0;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (got < want) {
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		int left = timeout_ms - (int)((now.tv_sec - t0.tv_sec) * 1000 +
					      (now.tv_nsec - t0.tv_nsec) / 1000000);
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (left <= 0 || poll(&p, 1, left) <= 0)
			break;
		ssize_t n = read(fd, buf + got, want - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return got;
}

UNIT_TEST(test_vmm_guest_reset_exits_0)
{
	struct env e;
	ENV_SETUP(e, x_code);
	char serial[200];
	snprintf(serial, sizeof(serial), "file,path=%s", e.path[0]);
	const char *args[] = {"-kernel", e.kernel, "-serial", serial, NULL};
	int rc = wait_exit(spawn(&e, -1, -1, e.path[1], args), 10000);
	char out[64], errout[512];
	slurp(e.path[0], out, sizeof(out));
	slurp(e.path[1], errout, sizeof(errout));
	env_cleanup(&e);
	UNIT_ASSERT_EQ(rc, 0);
	UNIT_ASSERT_STREQ(out, "X");
	UNIT_ASSERT_STREQ(errout, "");
}

UNIT_TEST(test_vmm_sigterm_exits_0)
{
	struct env e;
	ENV_SETUP(e, loop_code);
	char serial[200];
	snprintf(serial, sizeof(serial), "file,path=%s", e.path[0]);
	const char *args[] = {"-kernel", e.kernel, "-smp", "2", "-serial", serial, NULL};
	pid_t pid = spawn(&e, -1, -1, e.path[1], args);
	usleep(300000);
	kill(pid, SIGTERM);
	int rc = wait_exit(pid, 10000);
	struct stat st;
	stat(e.path[0], &st);
	env_cleanup(&e);
	UNIT_ASSERT_EQ(rc, 0);
	UNIT_ASSERT(st.st_size > 0);
}

UNIT_TEST(test_vmm_bad_option_prints_one_line_and_exits_1)
{
	struct env e;
	ENV_SETUP(e, x_code);
	const char *args[] = {"-kernel", e.kernel, "-smp", "255", NULL};
	int rc = wait_exit(spawn(&e, -1, -1, e.path[1], args), 10000);
	char errout[512];
	slurp(e.path[1], errout, sizeof(errout));
	env_cleanup(&e);
	UNIT_ASSERT_EQ(rc, 1);
	UNIT_ASSERT(strncmp(errout, "petrel-vmm: -smp", 16) == 0);
	UNIT_ASSERT(strchr(errout, '\n') == errout + strlen(errout) - 1);
}

UNIT_TEST(test_vmm_failed_start_leaves_no_socket_pidfile_or_log)
{
	struct env e;
	ENV_SETUP(e, x_code);
	char qmp[200], missing[200];
	snprintf(qmp, sizeof(qmp), "unix:%s,server,nowait", e.path[0]);
	snprintf(missing, sizeof(missing), "%s/no-such-kernel", e.dir);
	const char *args[] = {"-kernel",  missing,   "-qmp", qmp,	"-daemonize",
			      "-pidfile", e.path[1], "-D",   e.path[2], NULL};
	int rc = wait_exit(spawn(&e, -1, -1, e.path[3], args), 10000);
	char errout[512];
	slurp(e.path[3], errout, sizeof(errout));
	bool sock = exists(e.path[0]), pidf = exists(e.path[1]), log = exists(e.path[2]);
	char expect[300];
	snprintf(expect, sizeof(expect), "petrel-vmm: -kernel %s: No such file or directory\n",
		 missing);
	env_cleanup(&e);
	UNIT_ASSERT_EQ(rc, 1);
	UNIT_ASSERT_STREQ(errout, expect);
	UNIT_ASSERT(!sock);
	UNIT_ASSERT(!pidf);
	UNIT_ASSERT(!log);
}

UNIT_TEST(test_vmm_daemonize_writes_pidfile_and_removes_it_on_exit)
{
	struct env e;
	ENV_SETUP(e, loop_code);
	char serial[200], qmp[200];
	snprintf(serial, sizeof(serial), "file,path=%s", e.path[0]);
	snprintf(qmp, sizeof(qmp), "unix:%s,server,nowait", e.path[2]);
	const char *args[] = {"-kernel",  e.kernel,  "-serial", serial, "-daemonize",
			      "-pidfile", e.path[1], "-qmp",	qmp,	NULL};
	int rc = wait_exit(spawn(&e, -1, -1, e.path[3], args), 10000);
	char pidtext[32];
	slurp(e.path[1], pidtext, sizeof(pidtext));
	pid_t daemon = (pid_t)strtol(pidtext, NULL, 10);
	bool sock_while_running = exists(e.path[2]);
	bool alive = daemon > 0 && kill(daemon, 0) == 0;
	if (alive)
		kill(daemon, SIGTERM);
	for (int i = 0; i < 500 && alive && kill(daemon, 0) == 0; i++)
		usleep(10000);
	bool gone = !alive || kill(daemon, 0) < 0;
	usleep(50000);
	bool pidfile_left = exists(e.path[1]);
	bool sock_left = exists(e.path[2]);
	env_cleanup(&e);
	UNIT_ASSERT_EQ(rc, 0);
	UNIT_ASSERT(daemon > 1);
	UNIT_ASSERT(strchr(pidtext, '\n') == NULL);
	UNIT_ASSERT(alive);
	UNIT_ASSERT(sock_while_running);
	UNIT_ASSERT(gone);
	UNIT_ASSERT(!pidfile_left);
	UNIT_ASSERT(!sock_left);
}

static bool termios_equal(const struct termios *a, const struct termios *b)
{
	return a->c_iflag == b->c_iflag && a->c_oflag == b->c_oflag && a->c_cflag == b->c_cflag &&
	       a->c_lflag == b->c_lflag && memcmp(a->c_cc, b->c_cc, sizeof(a->c_cc)) == 0;
}

UNIT_TEST(test_vmm_stdio_restores_the_terminal_on_exit_and_on_failure)
{
	struct env e;
	ENV_SETUP(e, x_code);
	int master, slave;
	if (openpty(&master, &slave, NULL, NULL, NULL) < 0) {
		env_cleanup(&e);
		UNIT_SKIP("openpty: %s", strerror(errno));
	}
	struct termios before, after_ok, after_fail;
	tcgetattr(slave, &before);
	const char *ok_args[] = {"-kernel", e.kernel, "-serial", "stdio", NULL};
	int rc_ok = wait_exit(spawn(&e, slave, slave, e.path[1], ok_args), 10000);
	tcgetattr(slave, &after_ok);
	char out[16];
	size_t n = read_until(master, out, 1, 1000);
	/* The serial chardev goes raw before the kernel is found missing. */
	char missing[200];
	snprintf(missing, sizeof(missing), "%s/none", e.dir);
	const char *fail_args[] = {"-kernel", missing, "-serial", "stdio", NULL};
	int rc_fail = wait_exit(spawn(&e, slave, slave, e.path[1], fail_args), 10000);
	tcgetattr(slave, &after_fail);
	close(master);
	close(slave);
	env_cleanup(&e);
	UNIT_ASSERT_EQ(rc_ok, 0);
	UNIT_ASSERT_EQ(n, 1);
	UNIT_ASSERT_EQ(out[0], 'X');
	UNIT_ASSERT_EQ(rc_fail, 1);
	UNIT_ASSERT(termios_equal(&before, &after_ok));
	UNIT_ASSERT(termios_equal(&before, &after_fail));
}

UNIT_TEST(test_vmm_serial_pty_announces_path_and_carries_output)
{
	struct env e;
	ENV_SETUP(e, loop_code);
	const char *args[] = {"-kernel", e.kernel, "-serial", "pty", NULL};
	pid_t pid = spawn(&e, -1, -1, e.path[1], args);
	char errout[512] = "";
	for (int i = 0; i < 300 && !strstr(errout, "\n"); i++) {
		usleep(10000);
		slurp(e.path[1], errout, sizeof(errout));
	}
	char pts[64] = "";
	sscanf(errout, "char device redirected to %63s", pts);
	int fd = pts[0] ? open(pts, O_RDONLY | O_NOCTTY) : -1;
	char out[8];
	size_t n = fd >= 0 ? read_until(fd, out, 4, 2000) : 0;
	if (fd >= 0)
		close(fd);
	kill(pid, SIGTERM);
	int rc = wait_exit(pid, 10000);
	env_cleanup(&e);
	UNIT_ASSERT_CONTAINS(errout, "char device redirected to /dev/pts/");
	UNIT_ASSERT_CONTAINS(errout, "(label serial0)");
	UNIT_ASSERT_EQ(n, 4);
	UNIT_ASSERT(memcmp(out, "AAAA", 4) == 0);
	UNIT_ASSERT_EQ(rc, 0);
}

UNIT_TEST(test_vmm_socket_chardev_waits_for_client_and_echoes_input)
{
	struct env e;
	ENV_SETUP(e, echo_code);
	char chardev[200];
	snprintf(chardev, sizeof(chardev), "socket,id=con0,path=%s,server", e.path[0]);
	const char *args[] = {"-kernel", e.kernel,	 "-chardev", chardev,
			      "-serial", "chardev:con0", NULL};
	pid_t pid = spawn(&e, -1, -1, e.path[1], args);
	int fd = connect_unix(e.path[0], 3000);
	usleep(100000);
	int second = connect_unix(e.path[0], 1000);
	char c;
	ssize_t second_read = second >= 0 ? read(second, &c, 1) : -1;
	/* More than the UART's FIFO: input is flow-controlled, not dropped. */
	static char msg[3001];
	memset(msg, 'a', sizeof(msg) - 2);
	msg[sizeof(msg) - 2] = 'q';
	size_t len = sizeof(msg) - 1;
	bool sent = fd >= 0 && write(fd, msg, len) == (ssize_t)len;
	static char echo[3001];
	size_t n = fd >= 0 ? read_until(fd, echo, len, 5000) : 0;
	int rc = wait_exit(pid, 10000);
	if (fd >= 0)
		close(fd);
	if (second >= 0)
		close(second);
	bool sock_left = exists(e.path[0]);
	env_cleanup(&e);
	UNIT_ASSERT(fd >= 0);
	UNIT_ASSERT(sent);
	UNIT_ASSERT_EQ(n, len);
	UNIT_ASSERT(memcmp(echo, msg, len) == 0);
	UNIT_ASSERT_EQ(second_read, 0); /* a second client gets EOF */
	UNIT_ASSERT_EQ(rc, 0);
	UNIT_ASSERT(!sock_left);
}

UNIT_TEST(test_vmm_socket_server_without_nowait_holds_the_guest_until_a_client)
{
	struct env e;
	ENV_SETUP(e, x_code);
	char chardev[200];
	snprintf(chardev, sizeof(chardev), "socket,id=con0,path=%s,server", e.path[0]);
	const char *args[] = {"-kernel", e.kernel,	 "-chardev", chardev,
			      "-serial", "chardev:con0", NULL};
	pid_t pid = spawn(&e, -1, -1, e.path[1], args);
	/* Had the guest run, its 'X' would have gone nowhere by now. */
	usleep(500000);
	int fd = connect_unix(e.path[0], 3000);
	char out[4];
	size_t n = fd >= 0 ? read_until(fd, out, 1, 3000) : 0;
	int rc = wait_exit(pid, 10000);
	if (fd >= 0)
		close(fd);
	env_cleanup(&e);
	UNIT_ASSERT(fd >= 0);
	UNIT_ASSERT_EQ(n, 1);
	UNIT_ASSERT_EQ(out[0], 'X');
	UNIT_ASSERT_EQ(rc, 0);
}

UNIT_TEST(test_vmm_socket_chardev_without_server_connects_to_a_listener)
{
	struct env e;
	ENV_SETUP(e, x_code);
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%.100s", e.path[0]);
	bool listening = bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(lfd, 1) == 0;
	char chardev[200];
	snprintf(chardev, sizeof(chardev), "socket,id=con0,path=%s", e.path[0]);
	const char *args[] = {"-kernel", e.kernel,	 "-chardev", chardev,
			      "-serial", "chardev:con0", NULL};
	pid_t pid = spawn(&e, -1, -1, e.path[1], args);
	struct pollfd p = {.fd = lfd, .events = POLLIN};
	int fd = poll(&p, 1, 5000) == 1 ? accept(lfd, NULL, NULL) : -1;
	char out[4];
	size_t n = fd >= 0 ? read_until(fd, out, 1, 3000) : 0;
	int rc = wait_exit(pid, 10000);
	if (fd >= 0)
		close(fd);
	close(lfd);
	env_cleanup(&e);
	UNIT_ASSERT(listening);
	UNIT_ASSERT(fd >= 0);
	UNIT_ASSERT_EQ(n, 1);
	UNIT_ASSERT_EQ(out[0], 'X');
	UNIT_ASSERT_EQ(rc, 0);
}

UNIT_TEST(test_vmm_qmp_quit_exits_0_and_removes_socket)
{
	struct env e;
	ENV_SETUP(e, loop_code);
	char qmp[200];
	snprintf(qmp, sizeof(qmp), "unix:%s,server,nowait", e.path[0]);
	const char *args[] = {"-kernel", e.kernel, "-qmp", qmp, NULL};
	pid_t pid = spawn(&e, -1, -1, e.path[1], args);
	int fd = connect_unix(e.path[0], 3000);
	char buf[4096] = "";
	size_t n = fd >= 0 ? read_until(fd, buf, 20, 2000) : 0;
	const char *cmds = "{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"quit\"}\n";
	if (fd >= 0 && write(fd, cmds, strlen(cmds)) < 0)
		n = 0;
	int rc = wait_exit(pid, 10000);
	size_t m = fd >= 0 ? read_until(fd, buf + n, sizeof(buf) - n - 1, 500) : 0;
	buf[n + m] = '\0';
	if (fd >= 0)
		close(fd);
	bool sock_left = exists(e.path[0]);
	env_cleanup(&e);
	UNIT_ASSERT(fd >= 0);
	UNIT_ASSERT_CONTAINS(buf, "QMP");
	UNIT_ASSERT_CONTAINS(buf, "SHUTDOWN");
	UNIT_ASSERT_CONTAINS(buf, "host-qmp-quit");
	UNIT_ASSERT_EQ(rc, 0);
	UNIT_ASSERT(!sock_left);
}

UNIT_MAIN("machine_vmm")
