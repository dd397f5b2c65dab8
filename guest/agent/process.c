/*
 * The last steps of every container process, in the child, after its
 * namespaces and mounts are in place: terminal, rlimits, user, capabilities,
 * working directory, then execve. Errors go to the agent over the sync socket.
 * Order matters and follows what the kernel requires:
 *   - rlimits and the capability bounding set need privileges, so they come
 *     before the user switch;
 *   - PR_SET_KEEPCAPS keeps the permitted set across setresuid so that the
 *     configured sets can be applied afterwards;
 *   - the executable is looked up as the final user, like execve will;
 *   - no_new_privs comes last, just before telling the agent we are ready;
 *   - the seccomp filter is loaded as runc does: without no_new_privs it needs
 *     CAP_SYS_ADMIN, so before the capabilities and user change; with it, as
 *     late as possible, right before execve, so that the profile need not
 *     allow the set-up's own system calls.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "agent.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

void child_fail(int sync_fd, int errnum, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	buf[0] = SYNC_ERROR;
	va_start(ap, fmt);
	/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): clang 14 false positive */
	int n = vsnprintf(buf + 1, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	size_t len = n < 0 ? 1 : 1 + ((size_t)n < sizeof(buf) - 2 ? (size_t)n : sizeof(buf) - 2);
	if (errnum) {
		int m = snprintf(buf + len, sizeof(buf) - len, ": %s", strerror(errnum));
		if (m > 0)
			len += (size_t)m < sizeof(buf) - len ? (size_t)m : sizeof(buf) - len - 1;
	}
	if (send(sync_fd, buf, len, MSG_NOSIGNAL) < 0) {
		/* Nobody to tell: the agent sees the exit status instead. */
	}
	_exit(127);
}

int child_setup_fds(int sync_fd, const int stdio[3])
{
	/* The agent's fds are all close-on-exec, but a created container may wait
	 * for start for a long time: hold nothing of the agent's meanwhile. */
	for (int i = 0; i < 3; i++) {
		int fd = stdio[i];
		if (fd < 0) {
			fd = open("/dev/null", O_RDWR | O_CLOEXEC);
			if (fd < 0)
				child_fail(sync_fd, errno, "open /dev/null");
		}
		if (fd != i && dup2(fd, i) < 0)
			child_fail(sync_fd, errno, "dup2 stdio");
	}
	if (sync_fd != 3) {
		if (dup3(sync_fd, 3, O_CLOEXEC) < 0)
			child_fail(sync_fd, errno, "dup3 sync");
		sync_fd = 3;
	}
	if (close_range(4, ~0u, 0) < 0)
		child_fail(sync_fd, errno, "close_range");

	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* Ignored signals stay ignored across execve: give the process the defaults. */
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	return sync_fd;
}

/* HOME from the container's /etc/passwd, as runc does when env has none. */
static const char *passwd_home(uid_t uid, char *buf, size_t size)
{
	FILE *f = fopen("/etc/passwd", "re");
	if (!f)
		return "/";
	const char *home = "/";
	char line[1024];
	while (fgets(line, sizeof(line), f)) {
		/* name:passwd:uid:gid:gecos:home:shell */
		char *fields[7] = {0};
		char *p = line;
		size_t n = 0;
		while (n < 7) {
			fields[n++] = p;
			p = strchr(p, ':');
			if (!p)
				break;
			*p++ = '\0';
		}
		if (n < 6)
			continue;
		char *end;
		errno = 0;
		unsigned long u = strtoul(fields[2], &end, 10);
		if (errno || *end || end == fields[2] || u != uid)
			continue;
		fields[5][strcspn(fields[5], "\n")] = '\0';
		if (fields[5][0] && snprintf(buf, size, "%s", fields[5]) < (int)size)
			home = buf;
		break;
	}
	fclose(f);
	return home;
}

/* env plus HOME when it lacks one; NULL-terminated, never freed (we exec or exit). */
static char **build_env(const struct agent_process *p, int sync_fd)
{
	bool has_home = false;
	for (size_t i = 0; i < p->nenv; i++)
		has_home |= strncmp(p->env[i], "HOME=", 5) == 0;
	char **env = calloc(p->nenv + 2, sizeof(*env));
	if (!env)
		child_fail(sync_fd, ENOMEM, "process.env");
	for (size_t i = 0; i < p->nenv; i++)
		env[i] = p->env[i];
	if (!has_home) {
		char home[PATH_MAX];
		const char *h = passwd_home(p->uid, home, sizeof(home));
		size_t len = strlen(h) + 6;
		env[p->nenv] = malloc(len);
		if (!env[p->nenv])
			child_fail(sync_fd, ENOMEM, "process.env");
		snprintf(env[p->nenv], len, "HOME=%s", h);
	}
	return env;
}

static int check_executable(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode))
		return -EACCES;
	if (access(path, X_OK) < 0)
		return -errno;
	return 0;
}

/* args[0] resolved against the process's own PATH, as the final user. */
static const char *find_executable(const struct agent_process *p, char *buf, size_t size,
				   int sync_fd)
{
	const char *name = p->args[0];
	if (strchr(name, '/')) {
		int r = check_executable(name);
		if (r < 0)
			child_fail(sync_fd, -r, "process.args[0]: exec: \"%s\"", name);
		return name;
	}
	const char *path = DEFAULT_PATH;
	for (size_t i = 0; i < p->nenv; i++)
		if (strncmp(p->env[i], "PATH=", 5) == 0)
			path = p->env[i] + 5;
	int denied = 0;
	for (const char *dir = path;;) {
		const char *colon = strchr(dir, ':');
		size_t dlen = colon ? (size_t)(colon - dir) : strlen(dir);
		int n = dlen ? snprintf(buf, size, "%.*s/%s", (int)dlen, dir, name)
			     : snprintf(buf, size, "./%s", name);
		if (n > 0 && (size_t)n < size) {
			int r = check_executable(buf);
			if (r == 0)
				return buf;
			if (r == -EACCES)
				denied = EACCES;
		}
		if (!colon)
			break;
		dir = colon + 1;
	}
	if (denied)
		child_fail(sync_fd, denied, "process.args[0]: exec: \"%s\"", name);
	child_fail(sync_fd, 0, "process.args[0]: exec: \"%s\": executable file not found in $PATH",
		   name);
}

static void send_ready(int sync_fd, int pass_fd)
{
	char kind = SYNC_READY;
	struct iovec iov = {.iov_base = &kind, .iov_len = 1};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	if (pass_fd >= 0) {
		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof(u.buf);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
	}
	if (sendmsg(sync_fd, &mh, MSG_NOSIGNAL) < 0)
		_exit(127);
}

/* A pty from the container's own devpts, so that the slave's name means
 * something inside; it becomes the controlling terminal and stdio. */
static int setup_terminal(const struct child_ctx *ctx)
{
	const struct agent_process *p = ctx->process;
	int sync_fd = ctx->sync_fd;
	int master = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		child_fail(sync_fd, errno, "process.terminal: open /dev/pts/ptmx");
	if (unlockpt(master) < 0)
		child_fail(sync_fd, errno, "process.terminal: unlockpt");
	char name[64];
	if (ptsname_r(master, name, sizeof(name)) != 0)
		child_fail(sync_fd, errno, "process.terminal: ptsname");
	int slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		child_fail(sync_fd, errno, "process.terminal: open %s", name);
	if (p->rows || p->cols) {
		struct winsize ws = {.ws_row = p->rows, .ws_col = p->cols};
		if (ioctl(slave, TIOCSWINSZ, &ws) < 0)
			child_fail(sync_fd, errno, "process.consoleSize: TIOCSWINSZ");
	}
	if (ioctl(slave, TIOCSCTTY, 0) < 0)
		child_fail(sync_fd, errno, "process.terminal: TIOCSCTTY");
	for (int i = 0; i < 3; i++)
		if (dup2(slave, i) < 0)
			child_fail(sync_fd, errno, "process.terminal: dup2");
	close(slave);
	if (ctx->bind_console) {
		int fd = open("/dev/console", O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0666);
		if (fd < 0)
			child_fail(sync_fd, errno, "process.terminal: create /dev/console");
		close(fd);
		if (mount(name, "/dev/console", NULL, MS_BIND, NULL) < 0)
			child_fail(sync_fd, errno, "process.terminal: bind %s on /dev/console",
				   name);
	}
	return master;
}

static void apply_caps_bounding(const struct agent_process *p, int sync_fd)
{
	int last = (int)cap_max_bits();
	for (int cap = 0; cap < last && cap < 64; cap++) {
		if (p->cap_bounding & (1ull << cap))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
			child_fail(sync_fd, errno, "process.capabilities.bounding: drop %s",
				   agent_cap_name(cap) ? agent_cap_name(cap) : "?");
	}
}

static void apply_caps_sets(const struct agent_process *p, int sync_fd)
{
	int last = (int)cap_max_bits();
	cap_t caps = cap_init();
	if (!caps)
		child_fail(sync_fd, errno, "process.capabilities: cap_init");
	static const cap_flag_t flags[] = {CAP_EFFECTIVE, CAP_PERMITTED, CAP_INHERITABLE};
	const uint64_t masks[] = {p->cap_effective, p->cap_permitted, p->cap_inheritable};
	for (size_t f = 0; f < 3; f++)
		for (int cap = 0; cap < last && cap < 64; cap++) {
			if (!(masks[f] & (1ull << cap)))
				continue;
			cap_value_t v = cap;
			if (cap_set_flag(caps, flags[f], 1, &v, CAP_SET) < 0)
				child_fail(sync_fd, errno, "process.capabilities: cap_set_flag");
		}
	if (cap_set_proc(caps) < 0)
		child_fail(
		    sync_fd, errno,
		    "process.capabilities: cap_set_proc (effective and inheritable must be within "
		    "permitted and bounding)");
	cap_free(caps);
	if (cap_reset_ambient() < 0 && p->cap_ambient)
		child_fail(sync_fd, errno, "process.capabilities.ambient: reset");
	for (int cap = 0; cap < last && cap < 64; cap++) {
		if (!(p->cap_ambient & (1ull << cap)))
			continue;
		/* As runc and crun do: an ambient capability the process may not
		 * hold (not permitted and inheritable) is skipped, not an error;
		 * their generated specs list ambient caps with no inheritable set. */
		if (!(p->cap_permitted & p->cap_inheritable & (1ull << cap)))
			continue;
		if (cap_set_ambient((cap_value_t)cap, CAP_SET) < 0)
			child_fail(sync_fd, errno,
				   "process.capabilities.ambient: raise %s (needs it permitted and "
				   "inheritable)",
				   agent_cap_name(cap) ? agent_cap_name(cap) : "?");
	}
}

static void apply_user(const struct agent_process *p, int sync_fd)
{
	gid_t gids[AGENT_MAX_GIDS];
	size_t n = p->ngids < AGENT_MAX_GIDS ? p->ngids : AGENT_MAX_GIDS;
	for (size_t i = 0; i < n; i++)
		gids[i] = (gid_t)p->gids[i];
	if (setgroups(n, gids) < 0)
		child_fail(sync_fd, errno, "process.user.additionalGids: setgroups");
	if (setresgid(p->gid, p->gid, p->gid) < 0)
		child_fail(sync_fd, errno, "process.user.gid: setresgid %u", p->gid);
	if (setresuid(p->uid, p->uid, p->uid) < 0)
		child_fail(sync_fd, errno, "process.user.uid: setresuid %u", p->uid);
}

void child_finish_process(const struct child_ctx *ctx)
{
	const struct agent_process *p = ctx->process;
	int sync_fd = ctx->sync_fd;
	int master = -1;

	if (setsid() < 0)
		child_fail(sync_fd, errno, "setsid");
	if (p->terminal)
		master = setup_terminal(ctx);
	for (size_t i = 0; i < p->nrlimits; i++) {
		struct rlimit rl = {.rlim_cur = p->rlimits[i].soft, .rlim_max = p->rlimits[i].hard};
		if (setrlimit(p->rlimits[i].resource, &rl) < 0)
			child_fail(sync_fd, errno, "process.rlimits[%zu] (%s)", i,
				   agent_rlimit_name(p->rlimits[i].resource));
	}
	if (p->has_oom_score_adj) {
		int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
		char v[16];
		int n = snprintf(v, sizeof(v), "%d", p->oom_score_adj);
		if (fd < 0 || write(fd, v, (size_t)n) != n)
			child_fail(sync_fd, errno,
				   "process.oomScoreAdj: write /proc/self/oom_score_adj");
		close(fd);
	}
	char **env = build_env(p, sync_fd);
	/* As root, so that a directory only the user cannot search is still entered (runc does the
	 * same). */
	if (chdir(p->cwd) < 0)
		child_fail(sync_fd, errno, "process.cwd: chdir %s", p->cwd);
	if (!p->no_new_privileges)
		agent_seccomp_load(ctx->seccomp, sync_fd);
	if (p->has_caps) {
		apply_caps_bounding(p, sync_fd);
		if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
			child_fail(sync_fd, errno, "process.capabilities: PR_SET_KEEPCAPS");
	}
	apply_user(p, sync_fd);
	if (p->has_caps) {
		if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
			child_fail(sync_fd, errno, "process.capabilities: PR_SET_KEEPCAPS");
		apply_caps_sets(p, sync_fd);
	}
	umask(p->has_umask ? (mode_t)p->umask : 022);
	char pathbuf[PATH_MAX];
	const char *path = find_executable(p, pathbuf, sizeof(pathbuf), sync_fd);
	if (p->no_new_privileges && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		child_fail(sync_fd, errno, "process.noNewPrivileges: PR_SET_NO_NEW_PRIVS");

	send_ready(sync_fd, master);
	if (master >= 0)
		close(master);
	if (ctx->wait_start) {
		char b = 0;
		ssize_t n;
		do
			n = recv(sync_fd, &b, 1, 0);
		while (n < 0 && errno == EINTR);
		/* The agent went away or deleted the container before start. */
		if (n != 1 || b != SYNC_START)
			_exit(127);
	}
	if (p->no_new_privileges)
		agent_seccomp_load(ctx->seccomp, sync_fd);
	execve(path, p->args, env);
	child_fail(sync_fd, errno, "process.args[0]: exec: \"%s\"", path);
}
