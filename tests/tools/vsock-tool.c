/*
 * vsock-tool: a tiny AF_VSOCK stream client/server for the vsock tests,
 * built static so that the busybox test initramfs can run it.
 *
 *   vsock-tool listen PORT        accept one connection on any cid
 *   vsock-tool connect CID PORT   connect to CID:PORT
 *
 * Then it copies stdin to the socket (half-closing it at EOF) and the socket
 * to stdout until the peer half-closes. Exit status: 0 when both directions
 * ended cleanly; 2 when connect/accept failed (the reason on stderr, e.g.
 * "vsock-tool: connect 2:6001: Connection reset by peer"); 1 otherwise.
 */
#include <errno.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int parse_u32(const char *s, unsigned *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || !*s || *end || v > 0xffffffffUL)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static int open_socket(int argc, char **argv)
{
	unsigned cid = VMADDR_CID_ANY, port;
	int listening = argc == 3 && strcmp(argv[1], "listen") == 0;
	int connecting = argc == 4 && strcmp(argv[1], "connect") == 0;
	if ((!listening && !connecting) || (connecting && parse_u32(argv[2], &cid) < 0) ||
	    parse_u32(argv[argc - 1], &port) < 0) {
		fprintf(stderr, "usage: vsock-tool listen PORT | vsock-tool connect CID PORT\n");
		exit(1);
	}
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "vsock-tool: socket: %s\n", strerror(errno));
		exit(2);
	}
	struct sockaddr_vm addr = {.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port};
	if (connecting) {
		if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
			fprintf(stderr, "vsock-tool: connect %u:%u: %s\n", cid, port,
				strerror(errno));
			exit(2);
		}
		return fd;
	}
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 1) < 0) {
		fprintf(stderr, "vsock-tool: listen on port %u: %s\n", port, strerror(errno));
		exit(2);
	}
	fprintf(stderr, "vsock-tool: listening on port %u\n", port);
	int conn = accept(fd, NULL, NULL);
	if (conn < 0) {
		fprintf(stderr, "vsock-tool: accept: %s\n", strerror(errno));
		exit(2);
	}
	close(fd);
	return conn;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int fd = open_socket(argc, argv);
	static char buf[65536];
	int in_open = 1, sock_open = 1;
	while (sock_open) {
		struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = 0, .events = POLLIN}};
		if (poll(p, in_open ? 2 : 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("vsock-tool: poll");
			return 1;
		}
		if (p[0].revents) {
			ssize_t n = read(fd, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				fprintf(stderr, "vsock-tool: read: %s\n", strerror(errno));
				return 1;
			}
			if (n == 0)
				sock_open = 0;
			else if (write_all(1, buf, (size_t)n) < 0)
				return 1;
		}
		if (in_open && p[1].revents) {
			ssize_t n = read(0, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				in_open = 0;
				shutdown(fd, SHUT_WR);
			} else if (write_all(fd, buf, (size_t)n) < 0) {
				fprintf(stderr, "vsock-tool: write: %s\n", strerror(errno));
				return 1;
			}
		}
	}
	/* The peer is done sending; finish ours. */
	while (in_open) {
		ssize_t n = read(0, buf, sizeof(buf));
		if (n <= 0)
			break;
		if (write_all(fd, buf, (size_t)n) < 0) {
			fprintf(stderr, "vsock-tool: write: %s\n", strerror(errno));
			return 1;
		}
	}
	shutdown(fd, SHUT_WR);
	close(fd);
	return 0;
}
