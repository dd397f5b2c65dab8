/*
 * The -qmp unix socket on the main event loop.
 *
 * Connection model (as QEMU's chardev socket server): one active client at a
 * time. While a client is connected the listening socket is not watched, so
 * further connections wait in the kernel's accept backlog and are served, in
 * order, each with a fresh greeting, when the active client goes away.
 *
 * Output is queued per client and written without blocking; EPOLLOUT resumes
 * it. A client that lets more than QMP_MAX_PENDING_OUTPUT bytes pile up is
 * disconnected: the main loop never waits for a client.
 *
 * Events may come from any thread (a vCPU thread handling a guest reset, for
 * instance). On the loop thread they are written at once, which keeps QEMU's
 * order (stop: STOP before the reply); from another thread they are queued
 * under a lock and the loop is woken through an eventfd.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../../common/cleanup.h"
#include "../../common/log.h"
#include "qmp.h"

#define QMP_LISTEN_BACKLOG 8
#define QMP_EVENT_QUEUE	   64
/* How long qmp_server_destroy waits for a slow client to take the last replies. */
#define QMP_FINAL_FLUSH_MS 1000

struct qmp_server;

struct qmp_client {
	struct qmp_server *srv;
	int fd;
	struct qmp_session *session;
	char *out; /* pending output is out[out_start, out_len) */
	size_t out_start, out_len, out_cap;
	uint32_t watched; /* the epoll events currently requested */
	bool read_closed; /* the client sent EOF: send what is left, then close */
	bool doomed;	  /* close at the next safe point */
};

struct qmp_queued_event {
	struct vm_event ev;
	struct timespec ts;
};

struct qmp_server {
	struct eventloop *loop;
	const struct qmp_backend *be;
	void *be_opaque;
	bool hooked;

	int listen_fd;
	bool listening; /* listen_fd is in the event loop */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	bool created; /* we bound path; dev/ino identify our socket */
	dev_t dev;
	ino_t ino;

	struct qmp_client *client;
	unsigned in_callback; /* inside one of our loop callbacks: close later */
	pid_t loop_tid;	      /* atomic: the thread that runs our callbacks */

	int wake_fd;
	pthread_mutex_t lock; /* protects the event queue */
	struct qmp_queued_event queue[QMP_EVENT_QUEUE];
	unsigned q_head, q_len, q_dropped;

	struct log_ratelimit accept_rl;
};

/* ---- Clients ---- */

static int qmp_client_write(void *opaque, const void *buf, size_t len)
{
	struct qmp_client *c = opaque;

	if (c->doomed)
		return -EPIPE;
	if (c->out_start == c->out_len)
		c->out_start = c->out_len = 0;
	if (c->out_len - c->out_start + len > QMP_MAX_PENDING_OUTPUT) {
		log_warn("qmp: client does not read its replies (%zu bytes queued), disconnecting",
			 c->out_len - c->out_start);
		c->doomed = true;
		return -ENOBUFS;
	}
	if (c->out_len + len > c->out_cap && c->out_start) {
		memmove(c->out, c->out + c->out_start, c->out_len - c->out_start);
		c->out_len -= c->out_start;
		c->out_start = 0;
	}
	if (c->out_len + len > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		while (cap < c->out_len + len)
			cap *= 2;
		char *p = realloc(c->out, cap);
		if (!p) {
			c->doomed = true;
			return -ENOMEM;
		}
		c->out = p;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, buf, len);
	c->out_len += len;
	return 0;
}

/* Writes what the socket takes now and watches EPOLLOUT for the rest. */
static void qmp_client_flush(struct qmp_client *c)
{
	while (!c->doomed && c->out_start < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_start, c->out_len - c->out_start,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				c->doomed = true;
			break;
		}
		c->out_start += (size_t)n;
	}
	if (c->doomed)
		return;
	bool pending = c->out_start < c->out_len;
	if (!pending && c->read_closed) {
		c->doomed = true;
		return;
	}
	uint32_t want = (c->read_closed ? 0 : EPOLLIN) | (pending ? EPOLLOUT : 0);
	if (want != c->watched && eventloop_modify(c->srv->loop, c->fd, want) == 0)
		c->watched = want;
}

/* Best effort for the last words (the reply to quit, SHUTDOWN): a bounded wait. */
static void qmp_client_flush_final(struct qmp_client *c)
{
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		qmp_client_flush(c);
		if (c->doomed || c->out_start >= c->out_len)
			return;
		clock_gettime(CLOCK_MONOTONIC, &now);
		long elapsed =
		    (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
		if (elapsed >= QMP_FINAL_FLUSH_MS)
			return;
		struct pollfd pfd = {.fd = c->fd, .events = POLLOUT};
		if (poll(&pfd, 1, (int)(QMP_FINAL_FLUSH_MS - elapsed)) < 0 && errno != EINTR)
			return;
	}
}

static void qmp_server_listen_resume(struct qmp_server *srv);

static void qmp_client_close(struct qmp_client *c)
{
	struct qmp_server *srv = c->srv;
	eventloop_remove(srv->loop, c->fd);
	close(c->fd);
	qmp_session_free(c->session);
	free(c->out);
	free(c);
	srv->client = NULL;
	log_debug("qmp: client disconnected");
}

/* ---- Callback bookkeeping ---- */

static pid_t qmp_gettid(void)
{
	return gettid();
}

static void qmp_server_enter(struct qmp_server *srv)
{
	__atomic_store_n(&srv->loop_tid, qmp_gettid(), __ATOMIC_RELEASE);
	srv->in_callback++;
}

/* The safe point: nothing of the client's is on the stack any more. */
static void qmp_server_settle(struct qmp_server *srv)
{
	if (srv->in_callback)
		return;
	if (srv->client && !srv->client->doomed)
		qmp_client_flush(srv->client);
	if (srv->client && srv->client->doomed) {
		qmp_client_close(srv->client);
		qmp_server_listen_resume(srv);
	}
}

static void qmp_server_leave(struct qmp_server *srv)
{
	srv->in_callback--;
	qmp_server_settle(srv);
}

/* ---- Events ---- */

static void qmp_server_send_event(struct qmp_server *srv, const struct vm_event *ev,
				  const struct timespec *ts)
{
	if (srv->client && !srv->client->doomed)
		qmp_session_send_event(srv->client->session, ev, ts);
}

/* Events queued by other threads, oldest first. Loop thread only. */
static void qmp_server_drain_queue(struct qmp_server *srv)
{
	struct qmp_queued_event batch[QMP_EVENT_QUEUE];
	unsigned n, dropped;

	pthread_mutex_lock(&srv->lock);
	n = srv->q_len;
	for (unsigned i = 0; i < n; i++)
		batch[i] = srv->queue[(srv->q_head + i) % QMP_EVENT_QUEUE];
	srv->q_head = (srv->q_head + n) % QMP_EVENT_QUEUE;
	srv->q_len = 0;
	dropped = srv->q_dropped;
	srv->q_dropped = 0;
	pthread_mutex_unlock(&srv->lock);

	if (dropped)
		log_warn("qmp: %u events dropped (queue full)", dropped);
	for (unsigned i = 0; i < n; i++)
		qmp_server_send_event(srv, &batch[i].ev, &batch[i].ts);
}

static void qmp_server_on_vm_event(void *opaque, const struct vm_event *ev)
{
	struct qmp_server *srv = opaque;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);

	if (qmp_gettid() == __atomic_load_n(&srv->loop_tid, __ATOMIC_ACQUIRE)) {
		qmp_server_drain_queue(srv);
		qmp_server_send_event(srv, ev, &ts);
		qmp_server_settle(srv);
		return;
	}
	pthread_mutex_lock(&srv->lock);
	if (srv->q_len < QMP_EVENT_QUEUE) {
		srv->queue[(srv->q_head + srv->q_len) % QMP_EVENT_QUEUE] =
		    (struct qmp_queued_event){*ev, ts};
		srv->q_len++;
	} else {
		srv->q_dropped++;
	}
	pthread_mutex_unlock(&srv->lock);
	uint64_t one = 1;
	if (write(srv->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("qmp: cannot wake the main loop: %s", strerror(errno));
}

static void qmp_server_on_wake(void *opaque, uint32_t events)
{
	struct qmp_server *srv = opaque;
	uint64_t count;
	(void)events;

	qmp_server_enter(srv);
	if (read(srv->wake_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		log_warn("qmp: eventfd read: %s", strerror(errno));
	qmp_server_drain_queue(srv);
	qmp_server_leave(srv);
}

/* ---- Socket ---- */

static void qmp_client_on_ready(void *opaque, uint32_t events)
{
	struct qmp_client *c = opaque;
	struct qmp_server *srv = c->srv;

	qmp_server_enter(srv);
	if (events & EPOLLIN) {
		char buf[4096];
		ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0) {
			if (qmp_session_feed(c->session, buf, (size_t)n) < 0)
				c->doomed = true;
		} else if (n == 0) {
			c->read_closed = true;
		} else if (errno != EAGAIN && errno != EINTR) {
			c->doomed = true;
		}
	} else if (events & (EPOLLERR | EPOLLHUP)) {
		c->doomed = true;
	}
	qmp_server_leave(srv);
}

static void qmp_server_on_accept(void *opaque, uint32_t events);

static void qmp_server_listen_pause(struct qmp_server *srv)
{
	if (srv->listening && eventloop_remove(srv->loop, srv->listen_fd) == 0)
		srv->listening = false;
}

static void qmp_server_listen_resume(struct qmp_server *srv)
{
	if (!srv->listening &&
	    eventloop_add(srv->loop, srv->listen_fd, EPOLLIN, qmp_server_on_accept, srv) == 0)
		srv->listening = true;
}

static void qmp_server_on_accept(void *opaque, uint32_t events)
{
	struct qmp_server *srv = opaque;
	(void)events;

	qmp_server_enter(srv);
	if (srv->client)
		goto out; /* cannot happen: we do not listen meanwhile */
	int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0) {
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			LOG_GUEST_RATELIMITED(&srv->accept_rl, "qmp: accept on %s: %s", srv->path,
					      strerror(errno));
		goto out;
	}
	struct qmp_client *c = calloc(1, sizeof(*c));
	if (!c)
		goto fail_fd;
	c->srv = srv;
	c->fd = fd;
	c->watched = EPOLLIN;
	c->session = qmp_session_new(srv->be, srv->be_opaque, qmp_client_write, c);
	if (!c->session)
		goto fail_client;
	if (eventloop_add(srv->loop, fd, EPOLLIN, qmp_client_on_ready, c) < 0)
		goto fail_session;
	srv->client = c;
	qmp_server_listen_pause(srv);
	log_debug("qmp: client connected");
	if (qmp_session_greet(c->session) < 0)
		c->doomed = true;
	goto out;

fail_session:
	qmp_session_free(c->session);
fail_client:
	free(c);
fail_fd:
	close(fd);
	log_warn("qmp: cannot serve a new client: out of memory");
out:
	qmp_server_leave(srv);
}

/* 1: something listens at addr, 0: a stale socket, <0: cannot tell. */
static int qmp_socket_in_use(const struct sockaddr_un *addr)
{
	autoclose int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) == 0)
		return 1;
	if (errno == ECONNREFUSED)
		return 0;
	if (errno == EAGAIN || errno == EINPROGRESS)
		return 1; /* a listener with a full backlog */
	return -errno;
}

static int qmp_server_bind(struct qmp_server *srv, const char *path, struct perr *err)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	size_t len = strlen(path);
	struct stat st;

	if (len == 0)
		return perr_setx(err, -EINVAL, "empty socket path");
	if (len >= sizeof(addr.sun_path))
		return perr_setx(err, -ENAMETOOLONG, "%s: socket path longer than %zu bytes", path,
				 sizeof(addr.sun_path) - 1);
	memcpy(addr.sun_path, path, len);

	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return perr_setx(err, -EEXIST, "%s: exists and is not a socket", path);
		int in_use = qmp_socket_in_use(&addr);
		if (in_use > 0)
			return perr_setx(err, -EADDRINUSE, "%s: another process listens on it",
					 path);
		if (in_use < 0)
			return perr_set(err, in_use, "%s: probe existing socket", path);
		if (unlink(path) < 0 && errno != ENOENT)
			return perr_set(err, -errno, "%s: remove stale socket", path);
	} else if (errno != ENOENT) {
		return perr_set(err, -errno, "%s", path);
	}

	autoclose int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return perr_set(err, -errno, "socket");
	if (bind(fd, (const struct sockaddr *)&addr, sizeof(addr)) < 0)
		return perr_set(err, -errno, "%s: bind", path);
	if (stat(path, &st) == 0) {
		srv->created = true;
		srv->dev = st.st_dev;
		srv->ino = st.st_ino;
	}
	if (listen(fd, QMP_LISTEN_BACKLOG) < 0) {
		int ret = perr_set(err, -errno, "%s: listen", path);
		unlink(path);
		srv->created = false;
		return ret;
	}
	memcpy(srv->path, path, len + 1);
	srv->listen_fd = steal_fd(&fd);
	return 0;
}

/* Only our own socket: someone may have replaced the path meanwhile. */
static void qmp_server_unlink(struct qmp_server *srv)
{
	struct stat st;
	if (srv->created && lstat(srv->path, &st) == 0 && S_ISSOCK(st.st_mode) &&
	    st.st_dev == srv->dev && st.st_ino == srv->ino)
		unlink(srv->path);
	srv->created = false;
}

int qmp_server_create_backend(struct eventloop *loop, const struct qmp_backend *be, void *be_opaque,
			      const char *path, struct qmp_server **out, struct perr *err)
{
	int ret;
	struct qmp_server *srv = calloc(1, sizeof(*srv));
	if (!srv)
		return perr_setx(err, -ENOMEM, "qmp: out of memory");
	srv->loop = loop;
	srv->be = be;
	srv->be_opaque = be_opaque;
	srv->listen_fd = -1;
	srv->loop_tid = qmp_gettid();
	pthread_mutex_init(&srv->lock, NULL);

	srv->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (srv->wake_fd < 0) {
		ret = perr_set(err, -errno, "qmp: eventfd");
		goto fail_srv;
	}
	ret = qmp_server_bind(srv, path, err);
	if (ret < 0)
		goto fail_wake;
	ret = eventloop_add(loop, srv->wake_fd, EPOLLIN, qmp_server_on_wake, srv);
	if (ret < 0) {
		perr_set(err, ret, "qmp: event loop");
		goto fail_socket;
	}
	ret = eventloop_add(loop, srv->listen_fd, EPOLLIN, qmp_server_on_accept, srv);
	if (ret < 0) {
		perr_set(err, ret, "qmp: event loop");
		goto fail_wake_watch;
	}
	srv->listening = true;
	be->set_event_hook(be_opaque, qmp_server_on_vm_event, srv);
	srv->hooked = true;
	*out = srv;
	return 0;

fail_wake_watch:
	eventloop_remove(loop, srv->wake_fd);
fail_socket:
	close(srv->listen_fd);
	qmp_server_unlink(srv);
fail_wake:
	close(srv->wake_fd);
fail_srv:
	pthread_mutex_destroy(&srv->lock);
	free(srv);
	return ret;
}

void qmp_server_destroy(struct qmp_server *srv)
{
	if (!srv)
		return;
	if (srv->hooked)
		srv->be->set_event_hook(srv->be_opaque, NULL, NULL);
	/* Events queued before the hook went away still reach the client. */
	qmp_server_drain_queue(srv);
	if (srv->client) {
		if (!srv->client->doomed)
			qmp_client_flush_final(srv->client);
		qmp_client_close(srv->client);
	}
	qmp_server_listen_pause(srv);
	close(srv->listen_fd);
	qmp_server_unlink(srv);
	eventloop_remove(srv->loop, srv->wake_fd);
	close(srv->wake_fd);
	pthread_mutex_destroy(&srv->lock);
	free(srv);
}
