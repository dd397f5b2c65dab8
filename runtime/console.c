/* The console socket (console.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "runtime/console.h"

int console_pty_open(int *master, int *slave, char *slave_name, size_t size, struct perr *err)
{
	autoclose int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0)
		return perr_set(err, -errno, "open /dev/ptmx");
	if (grantpt(m) < 0 || unlockpt(m) < 0)
		return perr_set(err, -errno, "unlock pty");
	if (ptsname_r(m, slave_name, size) != 0)
		return perr_set(err, -errno, "ptsname");
	int s = open(slave_name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (s < 0)
		return perr_set(err, -errno, "open %s", slave_name);
	*master = steal_fd(&m);
	*slave = s;
	return 0;
}

int console_send_fd(const char *socket_path, int fd, const char *name, struct perr *err)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if (strlen(socket_path) >= sizeof(addr.sun_path))
		return perr_setx(err, -ENAMETOOLONG, "--console-socket %s: path too long",
				 socket_path);
	memcpy(addr.sun_path, socket_path, strlen(socket_path) + 1);
	autoclose int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return perr_set(err, -errno, "--console-socket: socket");
	if (connect(s, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		return perr_set(err, -errno, "--console-socket: connect to %s", socket_path);
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	memset(&ctl, 0, sizeof(ctl));
	struct iovec iov = {.iov_base = (void *)name, .iov_len = strlen(name)};
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = ctl.buf,
			     .msg_controllen = sizeof(ctl.buf)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	ssize_t n;
	do {
		n = sendmsg(s, &msg, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return perr_set(err, -errno, "--console-socket: send the pty to %s", socket_path);
	return 0;
}
