/* A minimal blocking QMP client (qmp-client.h): one line per message, events skipped. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "common/cleanup.h"
#include "runtime/qmp-client.h"

#define QMP_CLIENT_TIMEOUT_MS 5000

struct qmp_conn {
	int fd;
	char buf[65536];
	size_t len;
};

/* Reads one '\n'-terminated line into line (NUL-terminated). */
static int qmp_read_line(struct qmp_conn *c, char *line, size_t size)
{
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		if (nl) {
			size_t n = (size_t)(nl - c->buf);
			if (n >= size)
				return -EMSGSIZE;
			memcpy(line, c->buf, n);
			line[n] = 0;
			memmove(c->buf, nl + 1, c->len - n - 1);
			c->len -= n + 1;
			return 0;
		}
		if (c->len == sizeof(c->buf))
			return -EMSGSIZE;
		struct pollfd p = {.fd = c->fd, .events = POLLIN};
		int pr = poll(&p, 1, QMP_CLIENT_TIMEOUT_MS);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			return -ETIMEDOUT;
		ssize_t r = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ECONNRESET;
		c->len += (size_t)r;
	}
}

/* Sends {"execute": cmd, "arguments": args} (args a JSON object or NULL) and
 * returns the reply (not an event) as a parsed tree. */
static int qmp_execute_args(struct qmp_conn *c, const char *cmd, const char *args, yajl_val *reply,
			    struct perr *err)
{
	char msg[512];
	int n = args ? snprintf(msg, sizeof(msg), "{\"execute\": \"%s\", \"arguments\": %s}\n", cmd,
				args)
		     : snprintf(msg, sizeof(msg), "{\"execute\": \"%s\"}\n", cmd);
	if (n < 0 || (size_t)n >= sizeof(msg))
		return perr_setx(err, -EMSGSIZE, "QMP %s: command too long", cmd);
	if (write(c->fd, msg, (size_t)n) != n)
		return perr_set(err, -errno, "QMP %s: write", cmd);
	char line[65536];
	for (;;) {
		int rc = qmp_read_line(c, line, sizeof(line));
		if (rc < 0)
			return perr_set(err, rc, "QMP %s: reply", cmd);
		char ebuf[128];
		yajl_val v = yajl_tree_parse(line, ebuf, sizeof(ebuf));
		if (!v)
			return perr_setx(err, -EPROTO, "QMP %s: bad reply: %s", cmd, ebuf);
		const char *ev_path[] = {"event", NULL};
		if (yajl_tree_get(v, ev_path, yajl_t_string)) {
			yajl_tree_free(v);
			continue;
		}
		const char *desc_path[] = {"error", "desc", NULL};
		yajl_val desc = yajl_tree_get(v, desc_path, yajl_t_string);
		if (desc) {
			perr_setx(err, -EIO, "QMP %s: %s", cmd, YAJL_GET_STRING(desc));
			yajl_tree_free(v);
			return -EIO;
		}
		*reply = v;
		return 0;
	}
}

static int qmp_execute(struct qmp_conn *c, const char *cmd, yajl_val *reply, struct perr *err)
{
	return qmp_execute_args(c, cmd, NULL, reply, err);
}

/* A command whose reply carries nothing the caller needs. */
static int qmp_do(struct qmp_conn *c, const char *cmd, const char *args, struct perr *err)
{
	yajl_val reply = NULL;
	int rc = qmp_execute_args(c, cmd, args, &reply, err);
	yajl_tree_free(reply);
	return rc;
}

static int qmp_open(const char *path, struct qmp_conn *c, struct perr *err)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(addr.sun_path))
		return perr_setx(err, -ENAMETOOLONG, "%s: socket path too long", path);
	memcpy(addr.sun_path, path, strlen(path) + 1);
	c->len = 0;
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return perr_set(err, -errno, "socket");
	if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int e = -errno;
		close(c->fd);
		return perr_set(err, e, "connect to %s", path);
	}
	char line[4096];
	int rc = qmp_read_line(c, line, sizeof(line)); /* the greeting */
	if (rc < 0)
		rc = perr_set(err, rc, "%s: QMP greeting", path);
	else
		rc = qmp_do(c, "qmp_capabilities", NULL, err);
	if (rc < 0)
		close(c->fd);
	return rc;
}

int qmp_client_run(const char *socket_path, const char *command, struct perr *err)
{
	struct qmp_conn c = {.fd = -1};
	int rc = qmp_open(socket_path, &c, err);
	if (rc < 0)
		return rc;
	rc = qmp_do(&c, command, NULL, err);
	close(c.fd);
	return rc;
}

int qmp_client_query_paused(const char *socket_path, bool *paused, struct perr *err)
{
	struct qmp_conn c = {.fd = -1};
	int rc = qmp_open(socket_path, &c, err);
	if (rc < 0)
		return rc;
	yajl_val reply = NULL;
	rc = qmp_execute(&c, "query-status", &reply, err);
	if (rc == 0) {
		const char *st_path[] = {"return", "status", NULL};
		yajl_val s = yajl_tree_get(reply, st_path, yajl_t_string);
		const char *str = s ? YAJL_GET_STRING(s) : NULL;
		*paused = str && strcmp(str, "paused") == 0;
	}
	yajl_tree_free(reply);
	close(c.fd);
	return rc;
}

int qmp_client_snapshot_and_quit(const char *socket_path, const char *dir, struct perr *err)
{
	if (strpbrk(dir, "\"\\") || strlen(dir) > 400)
		return perr_setx(err, -EINVAL, "%s: not a usable snapshot path", dir);
	char args[512];
	snprintf(args, sizeof(args), "{\"uri\": \"file:%s\"}", dir);
	struct qmp_conn c = {.fd = -1};
	int rc = qmp_open(socket_path, &c, err);
	if (rc < 0)
		return rc;
	for (int attempt = 0;; attempt++) {
		if ((rc = qmp_do(&c, "stop", NULL, err)) < 0)
			break;
		rc = qmp_do(&c, "migrate", args, err);
		/* Busy (the vsock device's "connection(s) open or closing"): let the
		 * guest finish closing, then again. */
		if (rc == 0 || attempt == 100 || !strstr(err->msg, "connection"))
			break;
		if ((rc = qmp_do(&c, "cont", NULL, err)) < 0)
			break;
		usleep(20 * 1000);
	}
	struct perr quit_err = {0};
	qmp_do(&c, "quit", NULL, &quit_err);
	close(c.fd);
	return rc;
}

int qmp_client_balloon(const char *socket_path, uint64_t target, struct perr *err)
{
	struct qmp_conn c = {.fd = -1};
	int rc = qmp_open(socket_path, &c, err);
	if (rc < 0)
		return rc;
	char args[64];
	snprintf(args, sizeof(args), "{\"value\": %llu}", (unsigned long long)target);
	rc = qmp_do(&c, "query-balloon", NULL, err);
	if (rc == 0)
		rc = qmp_do(&c, "balloon", args, err);
	close(c.fd);
	return rc;
}
