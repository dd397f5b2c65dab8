#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../common/cleanup.h"

/* The original process: wait for one status byte from the daemon. EOF means
 * it died or failed before daemon_ready. */
static int daemon_wait_for_report(int fd)
{
	char status;
	ssize_t n;
	do {
		n = read(fd, &status, 1);
	} while (n < 0 && errno == EINTR);
	return n == 1 && status == 0 ? 0 : 1;
}

int daemon_start(struct daemon_ctx *d, struct perr *err)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0)
		return perr_set(err, -errno, "-daemonize: pipe");
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		int e = -errno;
		close(fds[0]);
		close(fds[1]);
		return perr_set(err, e, "-daemonize: fork");
	}
	if (pid > 0) {
		close(fds[1]);
		int status = daemon_wait_for_report(fds[0]);
		/* Reap the intermediate child, which exits right away. */
		waitpid(pid, NULL, 0);
		_exit(status);
	}

	/* The intermediate child: a new session, then a child that can never
	 * reacquire a controlling terminal. */
	close(fds[0]);
	if (setsid() < 0)
		_exit(1);
	pid = fork();
	if (pid < 0)
		_exit(1);
	if (pid > 0)
		_exit(0);
	umask(027);
	d->report_fd = fds[1];
	return 0;
}

int daemon_ready(struct daemon_ctx *d, struct perr *err)
{
	if (d->report_fd < 0)
		return 0;
	if (chdir("/") < 0)
		return perr_set(err, -errno, "-daemonize: chdir /");
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0)
		return perr_set(err, -errno, "-daemonize: open /dev/null");
	fflush(NULL);
	/* dup2 clears O_CLOEXEC on 0, 1 and 2, as it should be for stdio. */
	for (int fd = 0; fd <= 2; fd++)
		dup2(null, fd);
	close(null);
	char ok = 0;
	ssize_t unused = write(d->report_fd, &ok, 1);
	(void)unused;
	close(d->report_fd);
	d->report_fd = -1;
	return 0;
}

int path_make_absolute(const char *path, char *out, size_t size)
{
	if (path[0] == '/') {
		if ((size_t)snprintf(out, size, "%s", path) >= size)
			return -ENAMETOOLONG;
		return 0;
	}
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd)))
		return -errno;
	if ((size_t)snprintf(out, size, "%s/%s", cwd, path) >= size)
		return -ENAMETOOLONG;
	return 0;
}

int pidfile_write(const char *path, pid_t pid, struct perr *err)
{
	char tmp[PATH_MAX];
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= sizeof(tmp))
		return perr_setx(err, -ENAMETOOLONG, "-pidfile %s: path too long", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return perr_set(err, -errno, "-pidfile %s: create %s", path, tmp);
	char buf[32];
	int len = snprintf(buf, sizeof(buf), "%d", (int)pid);
	ssize_t n = write(fd, buf, (size_t)len);
	int rc = 0;
	if (n != len)
		rc = perr_set(err, n < 0 ? -errno : -EIO, "-pidfile %s: write", path);
	if (close(fd) < 0 && rc == 0)
		rc = perr_set(err, -errno, "-pidfile %s: close", path);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = perr_set(err, -errno, "-pidfile %s", path);
	if (rc < 0)
		unlink(tmp);
	return rc;
}
