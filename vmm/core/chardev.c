#include "chardev.h"
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "../../common/cleanup.h"
#include "../../common/log.h"
#include "eventloop.h"

#define CHARDEV_READ_CHUNK 256

struct chardev {
	char label[VMM_ID_MAX];
	enum vmm_chardev_backend backend;
	struct eventloop *loop;

	/* Input side, loop thread only. */
	int in_fd; /* -1: no input */
	bool in_owned;
	bool in_watched;
	bool in_throttled;
	int wake_fd; /* eventfd: chardev_accept_input from other threads */
	const struct chardev_frontend *fe;
	void *fe_opaque;

	/* Output side: the fd and the ring are shared with the writers. */
	pthread_mutex_t lock;
	int out_fd; /* -1: output is discarded (socket without client) */
	bool out_watched;
	int out_restore_flags; /* stdio on a socket: fd flags to put back; -1: none */
	uint8_t ring[CHARDEV_OUT_BUFFER];
	size_t ring_head;
	size_t ring_len;
	uint64_t dropped;
	struct log_ratelimit drop_rl;

	/* pty */
	int pty_slave_fd;
	char pty_path[64];

	/* socket server */
	int listen_fd;
	char sock_path[PATH_MAX]; /* absolute, for the unlink after a chdir */
	bool sock_created;
	bool waiting_for_client;
	void (*connect_hook)(void *opaque);
	void *connect_opaque;

	bool stdio_owner;
	bool stdio_tty_raw;
};

/* ------------------------------------------------------------------------ */
/* The terminal: process state, restored on every way out                    */
/* ------------------------------------------------------------------------ */

/* One terminal per process: the saved settings are process-wide, not VM state. */
static struct termios stdio_saved_termios;
static volatile sig_atomic_t stdio_termios_saved;
static pthread_once_t stdio_hooks_once = PTHREAD_ONCE_INIT;
/* stdin can feed one chardev only (in any VM of the process). */
static bool stdio_taken;

static void stdio_restore_termios(void)
{
	if (stdio_termios_saved) {
		tcsetattr(STDIN_FILENO, TCSANOW, &stdio_saved_termios);
		stdio_termios_saved = 0;
	}
}

/* A crash must not leave the user's shell in raw mode: restore (tcsetattr
 * is async-signal-safe), then die of the same signal (SA_RESETHAND). */
static void stdio_fatal_signal(int sig)
{
	stdio_restore_termios();
	raise(sig);
}

static void stdio_install_hooks(void)
{
	static const int fatal[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGQUIT};
	struct sigaction sa = {.sa_handler = stdio_fatal_signal, .sa_flags = SA_RESETHAND};
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < ARRAY_SIZE(fatal); i++)
		sigaction(fatal[i], &sa, NULL);
	atexit(stdio_restore_termios);
}

static int stdio_make_raw(struct perr *err)
{
	struct termios t;
	if (tcgetattr(STDIN_FILENO, &t) < 0)
		return perr_set(err, -errno, "stdin: tcgetattr");
	stdio_saved_termios = t;
	pthread_once(&stdio_hooks_once, stdio_install_hooks);
	stdio_termios_saved = 1;
	/* Everything goes to the guest, Ctrl-C included (as StratoVirt and
	 * Firecracker do): the guest's own tty does the line discipline. */
	cfmakeraw(&t);
	if (tcsetattr(STDIN_FILENO, TCSANOW, &t) < 0) {
		int e = -errno;
		stdio_termios_saved = 0;
		return perr_set(err, e, "stdin: tcsetattr");
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Output                                                                     */
/* ------------------------------------------------------------------------ */

/* Writes what the fd takes now; returns bytes written, 0 on EAGAIN, -errno. */
static ssize_t chardev_try_write(int fd, const uint8_t *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = write(fd, buf + done, len - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			return done ? (ssize_t)done : -errno;
		}
		done += (size_t)n;
	}
	return (ssize_t)done;
}

static void ring_push(struct chardev *chr, const uint8_t *buf, size_t len)
{
	size_t room = sizeof(chr->ring) - chr->ring_len;
	if (len > room) {
		chr->dropped += len - room;
		LOG_GUEST_RATELIMITED(&chr->drop_rl,
				      "%s: backend is not keeping up; guest output dropped "
				      "(%llu bytes so far)",
				      chr->label, (unsigned long long)chr->dropped);
		len = room;
	}
	for (size_t i = 0; i < len; i++)
		chr->ring[(chr->ring_head + chr->ring_len + i) % sizeof(chr->ring)] = buf[i];
	chr->ring_len += len;
}

/* Called with chr->lock held. */
static void ring_flush_locked(struct chardev *chr)
{
	while (chr->ring_len && chr->out_fd >= 0) {
		size_t chunk = sizeof(chr->ring) - chr->ring_head;
		if (chunk > chr->ring_len)
			chunk = chr->ring_len;
		ssize_t n = chardev_try_write(chr->out_fd, chr->ring + chr->ring_head, chunk);
		if (n <= 0) {
			if (n < 0) /* the reader is gone: nothing will drain this */
				chr->ring_len = 0;
			return;
		}
		chr->ring_head = (chr->ring_head + (size_t)n) % sizeof(chr->ring);
		chr->ring_len -= (size_t)n;
	}
	if (!chr->ring_len)
		chr->ring_head = 0;
}

void chardev_write(struct chardev *chr, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	pthread_mutex_lock(&chr->lock);
	if (chr->out_fd >= 0) {
		if (!chr->ring_len) {
			ssize_t n = chardev_try_write(chr->out_fd, p, len);
			if (n < 0)
				n = (ssize_t)len; /* the reader is gone: discard */
			p += n;
			len -= (size_t)n;
		}
		if (len)
			ring_push(chr, p, len);
	}
	pthread_mutex_unlock(&chr->lock);
}

/* The out fd is watched edge-triggered for EPOLLOUT from the start: a writer
 * that hit EAGAIN gets the edge when the reader drains, without any thread
 * but the loop ever touching the epoll set. */
static void chardev_out_ready(void *opaque, uint32_t events)
{
	struct chardev *chr = opaque;
	(void)events;
	pthread_mutex_lock(&chr->lock);
	ring_flush_locked(chr);
	pthread_mutex_unlock(&chr->lock);
}

static void chardev_watch_out(struct chardev *chr)
{
	/* Regular files cannot be polled (EPERM) and never return EAGAIN. */
	if (eventloop_add(chr->loop, chr->out_fd, EPOLLOUT | EPOLLET, chardev_out_ready, chr) == 0)
		chr->out_watched = true;
}

static void chardev_unwatch_out(struct chardev *chr)
{
	if (chr->out_watched)
		eventloop_remove(chr->loop, chr->out_fd);
	chr->out_watched = false;
}

/* ------------------------------------------------------------------------ */
/* Input                                                                      */
/* ------------------------------------------------------------------------ */

static void socket_disconnect(struct chardev *chr);

static void chardev_set_throttled(struct chardev *chr, bool throttled)
{
	if (!chr->in_watched || chr->in_throttled == throttled)
		return;
	chr->in_throttled = throttled;
	eventloop_modify(chr->loop, chr->in_fd, throttled ? 0 : EPOLLIN);
}

static void chardev_unwatch_in(struct chardev *chr)
{
	if (chr->in_watched)
		eventloop_remove(chr->loop, chr->in_fd);
	chr->in_watched = false;
	chr->in_throttled = false;
}

static void chardev_input_eof(struct chardev *chr)
{
	if (chr->backend == VMM_CHARDEV_SOCKET) {
		socket_disconnect(chr);
		return;
	}
	/* stdin closed (or the terminal hung up): no more input, output goes on. */
	chardev_unwatch_in(chr);
}

static void chardev_in_ready(void *opaque, uint32_t events)
{
	struct chardev *chr = opaque;
	size_t room = chr->fe ? chr->fe->can_receive(chr->fe_opaque) : 0;
	if (!room) {
		if ((events & (EPOLLHUP | EPOLLERR)) && !(events & EPOLLIN))
			chardev_input_eof(chr);
		else
			chardev_set_throttled(chr, true);
		return;
	}
	uint8_t buf[CHARDEV_READ_CHUNK];
	if (room > sizeof(buf))
		room = sizeof(buf);
	ssize_t n = read(chr->in_fd, buf, room);
	if (n > 0) {
		chr->fe->receive(chr->fe_opaque, buf, (size_t)n);
		return;
	}
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	/* 0: EOF. EIO: a pty master whose slave closed, a tty that hung up. */
	chardev_input_eof(chr);
}

static void chardev_wake(void *opaque, uint32_t events)
{
	struct chardev *chr = opaque;
	uint64_t v;
	(void)events;
	ssize_t unused = read(chr->wake_fd, &v, sizeof(v));
	(void)unused;
	chardev_set_throttled(chr, false);
}

void chardev_accept_input(struct chardev *chr)
{
	uint64_t one = 1;
	ssize_t unused = write(chr->wake_fd, &one, sizeof(one));
	(void)unused;
}

static int chardev_watch_in(struct chardev *chr)
{
	if (chr->in_fd < 0 || chr->in_watched)
		return 0;
	int rc = eventloop_add(chr->loop, chr->in_fd, EPOLLIN, chardev_in_ready, chr);
	if (rc == -EPERM) {
		/* stdin is a regular file or /dev/null: nothing to wait for. */
		log_debug("%s: input cannot be polled; ignoring it", chr->label);
		return 0;
	}
	if (rc < 0)
		return rc;
	chr->in_watched = true;
	chr->in_throttled = false;
	return 0;
}

void chardev_attach(struct chardev *chr, const struct chardev_frontend *fe, void *opaque)
{
	chr->fe = fe;
	chr->fe_opaque = opaque;
	if (fe)
		chardev_set_throttled(chr, false);
}

/* ------------------------------------------------------------------------ */
/* Backends                                                                   */
/* ------------------------------------------------------------------------ */

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

static int open_stdio(struct chardev *chr, struct perr *err)
{
	if (__atomic_exchange_n(&stdio_taken, true, __ATOMIC_SEQ_CST))
		return perr_setx(err, -EBUSY, "stdio is already used by another character device");
	chr->stdio_owner = true;
	struct stat st;
	if (fstat(STDOUT_FILENO, &st) < 0)
		return perr_set(err, -errno, "stdout");
	/* Non-blocking output without changing the flags of the open file
	 * description the shell shares with us: a terminal or a pipe is opened
	 * anew; a regular file keeps its offset (dup) and never blocks; a
	 * socket can only be switched in place, and is switched back on exit. */
	int fd = -1;
	if (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode))
		fd = open("/proc/self/fd/1", O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
		if (fd < 0)
			return perr_set(err, -errno, "stdout: dup");
		if (!S_ISREG(st.st_mode)) {
			chr->out_restore_flags = fcntl(fd, F_GETFL);
			set_nonblock(fd);
		}
	}
	chr->out_fd = fd;

	chr->in_fd = STDIN_FILENO;
	chr->in_owned = false;
	if (isatty(STDIN_FILENO)) {
		int rc = stdio_make_raw(err);
		if (rc < 0)
			return rc;
		chr->stdio_tty_raw = true;
	}
	return 0;
}

static int open_pty(struct chardev *chr, struct perr *err)
{
	int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		return perr_set(err, -errno, "posix_openpt");
	chr->in_fd = master;
	chr->in_owned = true;
	if (grantpt(master) < 0 || unlockpt(master) < 0 ||
	    ptsname_r(master, chr->pty_path, sizeof(chr->pty_path)) != 0)
		return perr_set(err, -errno, "pty");
	if (set_nonblock(master) < 0)
		return perr_set(err, -errno, "pty: O_NONBLOCK");
	/* Holding the slave open keeps the master from reporting a hangup while
	 * no one is attached; output waits in the pty until someone reads. */
	chr->pty_slave_fd = open(chr->pty_path, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (chr->pty_slave_fd < 0)
		return perr_set(err, -errno, "open %s", chr->pty_path);
	struct termios t;
	if (tcgetattr(chr->pty_slave_fd, &t) == 0) {
		cfmakeraw(&t);
		tcsetattr(chr->pty_slave_fd, TCSANOW, &t);
	}
	chr->out_fd = fcntl(master, F_DUPFD_CLOEXEC, 3);
	if (chr->out_fd < 0)
		return perr_set(err, -errno, "pty: dup");
	fprintf(stderr, "char device redirected to %s (label %s)\n", chr->pty_path, chr->label);
	return 0;
}

static int open_file(struct chardev *chr, const char *path, struct perr *err)
{
	chr->out_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOCTTY | O_CLOEXEC, 0640);
	if (chr->out_fd < 0)
		return perr_set(err, -errno, "open %s", path);
	return 0;
}

static void socket_disconnect(struct chardev *chr)
{
	chardev_unwatch_in(chr);
	chardev_unwatch_out(chr);
	pthread_mutex_lock(&chr->lock);
	if (chr->out_fd >= 0)
		close(chr->out_fd);
	chr->out_fd = -1;
	chr->ring_len = 0;
	chr->ring_head = 0;
	pthread_mutex_unlock(&chr->lock);
	if (chr->in_fd >= 0)
		close(chr->in_fd);
	chr->in_fd = -1;
	log_info("%s: client disconnected from %s", chr->label, chr->sock_path);
}

static void socket_accept(void *opaque, uint32_t events)
{
	struct chardev *chr = opaque;
	(void)events;
	int fd = accept4(chr->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if (chr->in_fd >= 0) {
		/* One client at a time: a second one is told so by an immediate EOF. */
		log_warn("%s: refusing a second client on %s", chr->label, chr->sock_path);
		close(fd);
		return;
	}
	int out = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (out < 0) {
		close(fd);
		return;
	}
	chr->in_fd = fd;
	chr->in_owned = true;
	pthread_mutex_lock(&chr->lock);
	chr->out_fd = out;
	pthread_mutex_unlock(&chr->lock);
	chardev_watch_out(chr);
	if (chardev_watch_in(chr) < 0) {
		socket_disconnect(chr);
		return;
	}
	if (!chr->fe)
		chardev_set_throttled(chr, true);
	log_info("%s: client connected on %s", chr->label, chr->sock_path);
	if (chr->waiting_for_client) {
		chr->waiting_for_client = false;
		if (chr->connect_hook)
			chr->connect_hook(chr->connect_opaque);
	}
}

/* A socket file nobody listens on is left over from a dead process. */
static bool socket_is_stale(const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode))
		return false;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	bool stale = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno == ECONNREFUSED;
	close(fd);
	return stale;
}

/* Without `server`: connect once, at start; the peer hanging up is final. */
static int socket_connect(struct chardev *chr, const struct sockaddr_un *sa, struct perr *err)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return perr_set(err, -errno, "socket");
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0 || set_nonblock(fd) < 0) {
		int e = -errno;
		close(fd);
		return perr_set(err, e, "connect %s", sa->sun_path);
	}
	chr->in_fd = fd;
	chr->in_owned = true;
	chr->out_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (chr->out_fd < 0)
		return perr_set(err, -errno, "socket: dup");
	return 0;
}

static int open_socket(struct chardev *chr, const struct vmm_chardev *cfg, struct perr *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(cfg->path) >= sizeof(sa.sun_path))
		return perr_setx(err, -ENAMETOOLONG, "socket path %s is longer than %zu bytes",
				 cfg->path, sizeof(sa.sun_path) - 1);
	memcpy(sa.sun_path, cfg->path, strlen(cfg->path) + 1);
	/* Absolute, so that it can be unlinked after -daemonize chdir("/"). */
	int rc = path_make_absolute(cfg->path, chr->sock_path, sizeof(chr->sock_path));
	if (rc < 0)
		return perr_set(err, rc, "%s", cfg->path);
	if (!cfg->server)
		return socket_connect(chr, &sa, err);

	chr->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (chr->listen_fd < 0)
		return perr_set(err, -errno, "socket");
	if (socket_is_stale(cfg->path))
		unlink(cfg->path);
	if (bind(chr->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return perr_set(err, -errno, "bind %s", cfg->path);
	chr->sock_created = true;
	if (listen(chr->listen_fd, 1) < 0)
		return perr_set(err, -errno, "listen %s", cfg->path);
	rc = eventloop_add(chr->loop, chr->listen_fd, EPOLLIN, socket_accept, chr);
	if (rc < 0)
		return perr_set(err, rc, "event loop");
	chr->waiting_for_client = !cfg->nowait;
	if (chr->waiting_for_client)
		log_info("%s: waiting for a client on %s before starting the guest", chr->label,
			 cfg->path);
	return 0;
}

int chardev_create(const struct vmm_chardev *cfg, const char *label, struct eventloop *loop,
		   struct chardev **out, struct perr *err)
{
	struct chardev *chr = calloc(1, sizeof(*chr));
	if (!chr)
		return perr_setx(err, -ENOMEM, "out of memory");
	snprintf(chr->label, sizeof(chr->label), "%s", label);
	chr->backend = cfg->backend;
	chr->loop = loop;
	chr->in_fd = -1;
	chr->out_fd = -1;
	chr->out_restore_flags = -1;
	chr->pty_slave_fd = -1;
	chr->listen_fd = -1;
	pthread_mutex_init(&chr->lock, NULL);
	chr->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int rc;
	if (chr->wake_fd < 0) {
		rc = perr_set(err, -errno, "eventfd");
		goto fail;
	}
	rc = eventloop_add(loop, chr->wake_fd, EPOLLIN, chardev_wake, chr);
	if (rc < 0) {
		close(chr->wake_fd);
		chr->wake_fd = -1;
		perr_set(err, rc, "event loop");
		goto fail;
	}

	switch (cfg->backend) {
	case VMM_CHARDEV_STDIO:
		rc = open_stdio(chr, err);
		break;
	case VMM_CHARDEV_PTY:
		rc = open_pty(chr, err);
		break;
	case VMM_CHARDEV_FILE:
		rc = open_file(chr, cfg->path, err);
		break;
	case VMM_CHARDEV_SOCKET:
		rc = open_socket(chr, cfg, err);
		break;
	default:
		rc = perr_setx(err, -EINVAL, "unknown backend %d", cfg->backend);
	}
	if (rc < 0)
		goto fail;
	if (chr->out_fd >= 0)
		chardev_watch_out(chr);
	rc = chardev_watch_in(chr);
	if (rc < 0) {
		perr_set(err, rc, "event loop");
		goto fail;
	}
	/* Until a frontend attaches, input stays in the kernel's buffers. */
	chardev_set_throttled(chr, true);
	*out = chr;
	return 0;
fail:
	chardev_destroy(chr);
	return rc;
}

void chardev_destroy(struct chardev *chr)
{
	if (!chr)
		return;
	chardev_unwatch_in(chr);
	chardev_unwatch_out(chr);
	pthread_mutex_lock(&chr->lock);
	/* Last chance for buffered output; a stuck reader loses it. */
	ring_flush_locked(chr);
	pthread_mutex_unlock(&chr->lock);
	if (chr->out_fd >= 0) {
		if (chr->out_restore_flags >= 0)
			fcntl(chr->out_fd, F_SETFL, chr->out_restore_flags);
		close(chr->out_fd);
	}
	if (chr->in_fd >= 0 && chr->in_owned)
		close(chr->in_fd);
	if (chr->stdio_tty_raw)
		stdio_restore_termios();
	if (chr->stdio_owner)
		__atomic_store_n(&stdio_taken, false, __ATOMIC_SEQ_CST);
	if (chr->pty_slave_fd >= 0)
		close(chr->pty_slave_fd);
	if (chr->listen_fd >= 0) {
		eventloop_remove(chr->loop, chr->listen_fd);
		close(chr->listen_fd);
	}
	if (chr->sock_created)
		unlink(chr->sock_path);
	if (chr->wake_fd >= 0) {
		eventloop_remove(chr->loop, chr->wake_fd);
		close(chr->wake_fd);
	}
	pthread_mutex_destroy(&chr->lock);
	free(chr);
}

bool chardev_waiting_for_client(const struct chardev *chr)
{
	return chr->waiting_for_client;
}

void chardev_set_connect_hook(struct chardev *chr, void (*hook)(void *opaque), void *opaque)
{
	chr->connect_hook = hook;
	chr->connect_opaque = opaque;
}

const char *chardev_label(const struct chardev *chr)
{
	return chr->label;
}

uint64_t chardev_dropped(const struct chardev *chr)
{
	return chr->dropped;
}

const char *chardev_pty_path(const struct chardev *chr)
{
	return chr->pty_path;
}
