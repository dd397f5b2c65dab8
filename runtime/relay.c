/*
 * The stdio, signal and exit-status relay (relay.h). One state machine on the
 * caller's event loop:
 *
 *   CONNECTING  a timerfd retries the hybrid vsock connect every 100 ms; the
 *               agent's announcement (cfg.await_ready) triggers one at once
 *   HANDSHAKE   "CONNECT <port>\n" sent, reading the "OK <n>\n" line
 *   HELLO       hello and the request sent, waiting for the agent's hello
 *   REQUEST     waiting for created / exec-started (or error)
 *   RUNNING     stdio frames both ways, signals forwarded, waiting for exit
 *   DONE        reported through cfg.done (once queued output is written);
 *               nothing more happens
 *
 * Output never blocks the loop (the VMM's devices and QMP share it): stdout
 * and stderr are written without blocking (a pipe or terminal is reopened
 * through /proc/self/fd with O_NONBLOCK, so the caller's file description
 * keeps its flags; a socket gets MSG_DONTWAIT), what does not fit waits in a
 * queue, and while more than RELAY_OUT_HIGH is queued the agent connection is
 * not read: the vsock stream fills, and the agent stops reading the process's
 * output (docs/agent-protocol.md, "Flow control").
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "runtime/relay.h"
#include "vmm/core/eventloop.h"

#define RELAY_RETRY_MS	    100
#define RELAY_SUN_PATH_MAX  sizeof(((struct sockaddr_un *)0)->sun_path)
#define RELAY_STDIN_HIGH    (1u << 20) /* stop reading stdin above this much queued */
#define RELAY_HANDSHAKE_MAX 64
#define RELAY_OUT_HIGH	    (1u << 20)	 /* stop reading the agent above this much queued output */
#define RELAY_OUT_LOW	    (256u << 10) /* and read again below this */

/* One of the process's outputs on the host side. */
struct relay_out {
	struct relay *r;
	int fd;	       /* what is written: the caller's fd, or our non-blocking reopen of it */
	bool own_fd;   /* fd is the reopen, closed by relay_destroy */
	bool is_sock;  /* send(MSG_DONTWAIT): a socket cannot be reopened */
	bool ok;       /* false once the reader went away: output is dropped */
	bool watched;  /* EPOLLOUT on the loop while the queue is not empty */
	bool no_epoll; /* a regular file: writes do not wait, epoll refuses it */
	uint8_t *buf;
	size_t len, cap;
};

enum relay_state {
	RELAY_CONNECTING,
	RELAY_HANDSHAKE,
	RELAY_HELLO,
	RELAY_REQUEST,
	RELAY_RUNNING,
	RELAY_DONE,
};

struct relay {
	struct relay_config cfg;
	struct eventloop *loop;
	enum relay_state state;
	int timer_fd;
	int ready_fd;			     /* listening for the agent's announcement, or -1 */
	char ready_path[RELAY_SUN_PATH_MAX]; /* its socket, removed by relay_destroy */
	bool ready_retry; /* announced during a handshake: retry at once if it fails */
	int conn_fd;
	bool conn_watched;
	uint32_t conn_events;
	char hs_line[RELAY_HANDSHAKE_MAX];
	size_t hs_len;
	int64_t deadline_ms;
	struct perr last_err; /* why the last connect attempt failed */
	struct agent_reader rd;
	struct agent_writer wr;
	uint32_t id;
	int sig_fd;
	bool in_watched; /* in_fd is on the loop */
	bool in_paused;	 /* back-pressure: taken off the loop */
	bool in_is_file; /* not pollable: read when the queue drains */
	bool in_open;	 /* EOF not yet sent */
	struct relay_out out, err;
	bool conn_paused;  /* output back-pressure: the connection is off the loop */
	bool done_pending; /* finished, waiting for queued output to be written */
	int done_status;
	struct perr done_err;
	bool tty_raw;
	struct termios tty_saved;
};

void relay_forwarded_signals(sigset_t *set)
{
	static const int sigs[] = {SIGHUP,    SIGINT,  SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGTERM,
				   SIGCONT,   SIGTSTP, SIGTTIN, SIGTTOU, SIGURG,  SIGXCPU, SIGXFSZ,
				   SIGVTALRM, SIGPROF, SIGIO,	SIGPWR,	 SIGWINCH};
	sigemptyset(set);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(set, sigs[i]);
}

static void relay_unwatch_conn(struct relay *r)
{
	if (r->conn_watched)
		eventloop_remove(r->loop, r->conn_fd);
	r->conn_watched = false;
}

static void relay_close_conn(struct relay *r)
{
	relay_unwatch_conn(r);
	if (r->conn_fd >= 0)
		close(r->conn_fd);
	r->conn_fd = -1;
}

static void relay_unwatch_in(struct relay *r)
{
	if (r->in_watched)
		eventloop_remove(r->loop, r->cfg.in_fd);
	r->in_watched = false;
}

static void relay_notify(struct relay *r, const char *line)
{
	if (r->cfg.notify_fd < 0)
		return;
	size_t len = strlen(line);
	while (len) {
		ssize_t w = write(r->cfg.notify_fd, line, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		line += w;
		len -= (size_t)w;
	}
	close(r->cfg.notify_fd);
	r->cfg.notify_fd = -1;
}

/* Ends the relay once; after this no callback does anything. */
static void relay_finish(struct relay *r, int status, const struct perr *err)
{
	if (r->state == RELAY_DONE)
		return;
	r->state = RELAY_DONE;
	if (status < 0 && r->cfg.notify_fd >= 0) {
		char line[PERR_MSG_MAX + 16];
		snprintf(line, sizeof(line), "error: %s\n", err ? err->msg : "failed");
		relay_notify(r, line);
	}
	relay_unwatch_in(r);
	relay_unwatch_conn(r);
	if (r->timer_fd >= 0) {
		eventloop_remove(r->loop, r->timer_fd);
		close(r->timer_fd);
		r->timer_fd = -1;
	}
	/* The process's last output must reach the host before its status does. */
	if (status >= 0 && ((r->out.ok && r->out.len) || (r->err.ok && r->err.len))) {
		r->done_pending = true;
		r->done_status = status;
		if (err)
			r->done_err = *err;
		return;
	}
	if (r->cfg.done)
		r->cfg.done(r->cfg.opaque, status, err);
}

static void __attribute__((format(printf, 2, 3))) relay_fail(struct relay *r, const char *fmt, ...)
{
	struct perr err = {.code = -EIO};
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err.msg, sizeof(err.msg), fmt, ap);
	va_end(ap);
	relay_finish(r, -1, &err);
}

static void relay_set_conn_events(struct relay *r, uint32_t events)
{
	if (!r->conn_watched || r->conn_paused || r->conn_events == events)
		return;
	if (eventloop_modify(r->loop, r->conn_fd, events) == 0)
		r->conn_events = events;
}

static void relay_pump_file_stdin(struct relay *r);
static void relay_resume_stdin(struct relay *r);

/* Sends what is queued; watches for writability while something is left. */
static void relay_flush(struct relay *r)
{
	if (r->conn_fd < 0 || r->state == RELAY_DONE)
		return;
	int rc = agent_writer_flush(&r->wr, r->conn_fd);
	if (rc < 0) {
		relay_fail(r, "write to the agent: %s", strerror(-rc));
		return;
	}
	size_t pending = agent_writer_pending(&r->wr);
	relay_set_conn_events(r, pending ? EPOLLIN | EPOLLOUT : EPOLLIN);
	relay_resume_stdin(r);
	if (!pending && r->in_is_file && r->in_open)
		relay_pump_file_stdin(r);
}

static void relay_send_msg(struct relay *r, const struct agent_msg *m)
{
	struct perr err = {0};
	if (agent_writer_msg(&r->wr, m, &err) < 0) {
		relay_fail(r, "%s", err.msg);
		return;
	}
	relay_flush(r);
}

static void relay_send_stdin(struct relay *r, const void *buf, size_t len)
{
	if (agent_writer_frame(&r->wr, AGENT_FRAME_STDIN, r->id, buf, len) < 0) {
		relay_fail(r, "out of memory queueing stdin");
		return;
	}
	if (!len)
		r->in_open = false;
}

static void relay_on_stdin(void *opaque, uint32_t events);

static void relay_stdin_eof(struct relay *r)
{
	relay_unwatch_in(r);
	relay_send_stdin(r, NULL, 0);
}

static void relay_pump_file_stdin(struct relay *r)
{
	char buf[AGENT_STDIO_CHUNK];
	while (r->in_open && r->state == RELAY_RUNNING &&
	       agent_writer_pending(&r->wr) < RELAY_STDIN_HIGH) {
		ssize_t n = read(r->cfg.in_fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			relay_stdin_eof(r);
			break;
		}
		relay_send_stdin(r, buf, (size_t)n);
	}
	int rc = agent_writer_flush(&r->wr, r->conn_fd);
	if (rc < 0)
		relay_fail(r, "write to the agent: %s", strerror(-rc));
	else
		relay_set_conn_events(r,
				      agent_writer_pending(&r->wr) ? EPOLLIN | EPOLLOUT : EPOLLIN);
}

static void relay_on_stdin(void *opaque, uint32_t events)
{
	struct relay *r = opaque;
	(void)events;
	if (r->state != RELAY_RUNNING || !r->in_open)
		return;
	char buf[AGENT_STDIO_CHUNK];
	ssize_t n = read(r->cfg.in_fd, buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		/* EOF, or EIO from a terminal whose other side hung up. */
		relay_stdin_eof(r);
	} else {
		relay_send_stdin(r, buf, (size_t)n);
		if (agent_writer_pending(&r->wr) >= RELAY_STDIN_HIGH) {
			relay_unwatch_in(r);
			r->in_paused = true;
		}
	}
	relay_flush(r);
}

static void relay_resume_stdin(struct relay *r)
{
	if (!r->in_paused || !r->in_open || agent_writer_pending(&r->wr) >= RELAY_STDIN_HIGH)
		return;
	if (eventloop_add(r->loop, r->cfg.in_fd, EPOLLIN, relay_on_stdin, r) == 0) {
		r->in_watched = true;
		r->in_paused = false;
	}
}

static void relay_send_resize(struct relay *r)
{
	struct winsize ws;
	if (r->cfg.in_fd < 0 || ioctl(r->cfg.in_fd, TIOCGWINSZ, &ws) < 0 || !ws.ws_row ||
	    !ws.ws_col)
		return;
	struct agent_msg m = {.type = AGENT_MSG_RESIZE};
	m.u.resize.id = r->id;
	m.u.resize.rows = ws.ws_row;
	m.u.resize.cols = ws.ws_col;
	relay_send_msg(r, &m);
}

static void relay_on_signal(void *opaque, uint32_t events)
{
	struct relay *r = opaque;
	struct signalfd_siginfo si;
	(void)events;
	while (read(r->sig_fd, &si, sizeof(si)) == sizeof(si)) {
		int sig = (int)si.ssi_signo;
		if (r->state != RELAY_RUNNING) {
			if (sig != SIGWINCH && sig != SIGCHLD && sig != SIGURG && sig != SIGCONT)
				relay_fail(r, "interrupted by signal %d before the process ran",
					   sig);
			continue;
		}
		if (sig == SIGWINCH) {
			if (r->tty_raw)
				relay_send_resize(r);
			continue;
		}
		struct agent_msg m = {.type = AGENT_MSG_SIGNAL};
		m.u.signal.id = r->id;
		m.u.signal.signal = sig;
		relay_send_msg(r, &m);
	}
}

static ssize_t relay_out_try(struct relay_out *o, const uint8_t *p, size_t len)
{
	ssize_t n;
	do
		n = o->is_sock ? send(o->fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL)
			       : write(o->fd, p, len);
	while (n < 0 && errno == EINTR);
	return n;
}

/* Writes what can be written now; false when the reader went away. */
static bool relay_out_push(struct relay_out *o, const uint8_t **p, size_t *len)
{
	while (*len) {
		ssize_t n = relay_out_try(o, *p, *len);
		if (n < 0 && errno == EAGAIN)
			return true;
		if (n <= 0) {
			/* The reader went away: keep relaying for the exit status. */
			log_debug("relay: output fd %d: %s", o->fd,
				  n < 0 ? strerror(errno) : "closed");
			o->ok = false;
			o->len = 0;
			return false;
		}
		*p += n;
		*len -= (size_t)n;
	}
	return true;
}

static void relay_on_out_ready(void *opaque, uint32_t events);
static void relay_watch_conn_again(struct relay *r);

static size_t relay_out_queued(const struct relay *r)
{
	return r->out.len + r->err.len;
}

static void relay_out_watch(struct relay_out *o, bool on)
{
	if (o->no_epoll || o->watched == on)
		return;
	if (on) {
		int rc = eventloop_add(o->r->loop, o->fd, EPOLLOUT, relay_on_out_ready, o);
		if (rc == -EPERM) {
			o->no_epoll = true;
			return;
		}
		o->watched = rc == 0;
	} else {
		eventloop_remove(o->r->loop, o->fd);
		o->watched = false;
	}
}

/* Sends the queue; what is left waits for EPOLLOUT. */
static void relay_out_flush(struct relay_out *o)
{
	if (!o->ok || !o->len) {
		relay_out_watch(o, false);
		return;
	}
	const uint8_t *p = o->buf;
	size_t left = o->len;
	if (o->no_epoll) {
		/* A regular file: a blocking write is as good as it gets. */
		while (left && relay_out_push(o, &p, &left))
			;
	} else {
		relay_out_push(o, &p, &left);
	}
	if (o->ok && left)
		memmove(o->buf, p, left);
	o->len = o->ok ? left : 0;
	relay_out_watch(o, o->len > 0);
}

static void relay_out_write(struct relay *r, struct relay_out *o, const uint8_t *p, size_t len)
{
	if (!o->ok)
		return;
	if (!o->len && !relay_out_push(o, &p, &len))
		return;
	if (!len)
		return;
	if (o->len + len > o->cap) {
		size_t cap = o->cap ? o->cap : 65536;
		while (cap < o->len + len)
			cap *= 2;
		uint8_t *nb = realloc(o->buf, cap);
		if (!nb) {
			relay_fail(r, "out of memory queueing output");
			return;
		}
		o->buf = nb;
		o->cap = cap;
	}
	memcpy(o->buf + o->len, p, len);
	o->len += len;
	relay_out_flush(o);
}

static void relay_on_out_ready(void *opaque, uint32_t events)
{
	struct relay_out *o = opaque;
	struct relay *r = o->r;
	(void)events;
	relay_out_flush(o);
	if (r->conn_paused && relay_out_queued(r) < RELAY_OUT_LOW)
		relay_watch_conn_again(r);
	if (r->done_pending && !(r->out.ok && r->out.len) && !(r->err.ok && r->err.len)) {
		r->done_pending = false;
		relay_out_watch(&r->out, false);
		relay_out_watch(&r->err, false);
		if (r->cfg.done)
			r->cfg.done(r->cfg.opaque, r->done_status,
				    r->done_status < 0 ? &r->done_err : NULL);
	}
}

/* fd as a relay_out: pipes and terminals reopened non-blocking. */
static void relay_out_init(struct relay *r, struct relay_out *o, int fd)
{
	memset(o, 0, sizeof(*o));
	o->r = r;
	o->fd = fd;
	o->ok = fd >= 0;
	if (fd < 0)
		return;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return;
	if (S_ISSOCK(st.st_mode)) {
		o->is_sock = true;
		return;
	}
	if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) {
		o->no_epoll = true;
		return;
	}
	if (fcntl(fd, F_GETFL) & O_NONBLOCK)
		return;
	/* A new file description of the same pipe or terminal: O_NONBLOCK on it
	 * does not change the caller's (a shell's terminal, conmon's pipe). */
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	int nfd = open(path, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (nfd >= 0) {
		o->fd = nfd;
		o->own_fd = true;
		return;
	}
	/* Nothing better: a write of at most PIPE_BUF once writable. */
	log_debug("relay: cannot reopen fd %d non-blocking: %s", fd, strerror(errno));
}

static void relay_out_free(struct relay_out *o)
{
	if (o->r)
		relay_out_watch(o, false);
	if (o->own_fd)
		close(o->fd);
	free(o->buf);
	memset(o, 0, sizeof(*o));
}

static void relay_running(struct relay *r, uint32_t id)
{
	r->id = id;
	r->state = RELAY_RUNNING;
	relay_notify(r, "ok\n");
	if (r->cfg.running)
		r->cfg.running(r->cfg.opaque, id);
	const struct agent_process *p = r->cfg.request->type == AGENT_MSG_CREATE
					    ? &r->cfg.request->u.create.process
					    : &r->cfg.request->u.exec;
	if (r->cfg.in_fd >= 0 && p->terminal && isatty(r->cfg.in_fd) &&
	    tcgetattr(r->cfg.in_fd, &r->tty_saved) == 0) {
		/* The guest's pty does the line discipline; the host side passes bytes. */
		struct termios raw = r->tty_saved;
		cfmakeraw(&raw);
		r->tty_raw = tcsetattr(r->cfg.in_fd, TCSANOW, &raw) == 0;
		if (r->tty_raw)
			relay_send_resize(r);
	}
	if (r->cfg.in_fd < 0) {
		relay_send_stdin(r, NULL, 0);
	} else {
		r->in_open = true;
		int rc = eventloop_add(r->loop, r->cfg.in_fd, EPOLLIN, relay_on_stdin, r);
		if (rc == -EPERM) {
			/* A regular file or /dev/null: always readable, epoll refuses it. */
			r->in_is_file = true;
			relay_pump_file_stdin(r);
		} else if (rc < 0) {
			relay_send_stdin(r, NULL, 0);
		} else {
			r->in_watched = true;
		}
	}
	relay_flush(r);
}

static void relay_handle_msg(struct relay *r, const struct agent_frame *f)
{
	struct agent_msg m;
	struct perr err = {0};
	if (agent_msg_decode(f->payload, f->len, &m, &err) < 0) {
		agent_msg_free(&m);
		relay_fail(r, "bad message from the agent: %s", err.msg);
		return;
	}
	switch (m.type) {
	case AGENT_MSG_HELLO:
		if (r->state == RELAY_HELLO)
			r->state = RELAY_REQUEST;
		break;
	case AGENT_MSG_CREATED:
	case AGENT_MSG_EXEC_STARTED:
		if (r->state == RELAY_REQUEST)
			relay_running(r, m.u.id);
		break;
	case AGENT_MSG_ERROR:
		if (r->state == RELAY_HELLO || r->state == RELAY_REQUEST)
			relay_fail(r, "%s", m.u.error.message ? m.u.error.message : "agent error");
		else
			log_warn("agent: %s", m.u.error.message ? m.u.error.message : "error");
		break;
	case AGENT_MSG_EXIT:
		if (r->state == RELAY_RUNNING && m.u.exit.id == r->id)
			relay_finish(r, m.u.exit.status, NULL);
		break;
	default:
		break; /* ok replies to signal and resize */
	}
	agent_msg_free(&m);
}

static void relay_on_conn(void *opaque, uint32_t events);
static void relay_close_ready(struct relay *r);

static void relay_send_requests(struct relay *r)
{
	r->state = RELAY_HELLO;
	struct agent_msg hello;
	agent_hello_init_host(&hello);
	struct perr err = {0};
	int rc = agent_writer_msg(&r->wr, &hello, &err);
	if (rc == 0 && r->cfg.request_raw)
		rc = agent_writer_frame(&r->wr, AGENT_FRAME_MSG, 0, r->cfg.request_raw,
					r->cfg.request_raw_len) < 0
			 ? perr_setx(&err, -EMSGSIZE, "the request is too large")
			 : 0;
	else if (rc == 0)
		rc = agent_writer_msg(&r->wr, r->cfg.request, &err);
	if (rc < 0) {
		relay_fail(r, "%s", err.msg);
		return;
	}
	relay_flush(r);
}

static void relay_try_connect(struct relay *r);

/* Back to CONNECTING; at once if the agent announced itself meanwhile (the
 * failed attempt went out before it listened), else at the next retry. */
static void relay_handshake_failed(struct relay *r)
{
	relay_close_conn(r);
	r->state = RELAY_CONNECTING;
	if (r->ready_retry) {
		r->ready_retry = false;
		relay_try_connect(r);
	}
}

static void relay_on_handshake(struct relay *r)
{
	for (;;) {
		char c;
		ssize_t n = read(r->conn_fd, &c, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0 || r->hs_len == sizeof(r->hs_line) - 1) {
			/* The agent is not listening yet (the VMM closes the connection). */
			perr_setx(
			    &r->last_err, -ECONNREFUSED,
			    "%s: connection closed after CONNECT %u (is the agent listening?)",
			    r->cfg.uds_path, r->cfg.port);
			relay_handshake_failed(r);
			return;
		}
		if (c != '\n') {
			r->hs_line[r->hs_len++] = c;
			continue;
		}
		r->hs_line[r->hs_len] = 0;
		if (strncmp(r->hs_line, "OK ", 3) != 0) {
			perr_setx(&r->last_err, -ECONNREFUSED, "%s: CONNECT %u: \"%s\"",
				  r->cfg.uds_path, r->cfg.port, r->hs_line);
			relay_handshake_failed(r);
			return;
		}
		/* Connected: an announcement is moot now (a guest restored from a VM
		 * template announced itself before its snapshot, and never again). */
		relay_close_ready(r);
		relay_send_requests(r);
		return;
	}
}

static void relay_on_conn(void *opaque, uint32_t events)
{
	struct relay *r = opaque;
	if (r->state == RELAY_DONE)
		return;
	if (r->state == RELAY_HANDSHAKE) {
		relay_on_handshake(r);
		return;
	}
	if (events & EPOLLOUT) {
		relay_flush(r);
		relay_resume_stdin(r);
	}
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)) || r->state == RELAY_DONE)
		return;
	ssize_t got = agent_reader_fill(&r->rd, r->conn_fd);
	if (got == -EAGAIN || got == -EINTR)
		return;
	struct agent_frame f;
	struct perr err = {0};
	int nr;
	while (r->state != RELAY_DONE && (nr = agent_reader_next(&r->rd, &f, &err)) > 0) {
		if (f.type == AGENT_FRAME_MSG) {
			relay_handle_msg(r, &f);
		} else if (f.proc == r->id && f.len) {
			if (f.type == AGENT_FRAME_STDOUT)
				relay_out_write(r, &r->out, f.payload, f.len);
			else if (f.type == AGENT_FRAME_STDERR)
				relay_out_write(r, &r->err, f.payload, f.len);
		}
	}
	if (r->state == RELAY_DONE)
		return;
	/* A reader that does not keep up: stop taking output from the agent. */
	if (relay_out_queued(r) >= RELAY_OUT_HIGH && r->conn_watched && nr == 0 && got > 0) {
		relay_unwatch_conn(r);
		r->conn_paused = true;
		return;
	}
	if (nr < 0) {
		relay_fail(r, "from the agent: %s", err.msg);
		return;
	}
	if (got == 0)
		relay_fail(r, "the agent closed the connection before the process exited");
	else if (got < 0)
		relay_fail(r, "read from the agent: %s", strerror((int)-got));
}

static int relay_watch_conn(struct relay *r)
{
	int rc = eventloop_add(r->loop, r->conn_fd, EPOLLIN, relay_on_conn, r);
	if (rc < 0)
		return rc;
	r->conn_watched = true;
	r->conn_events = EPOLLIN;
	return 0;
}

/* The output queue drained: read the agent again (and send what waits). */
static void relay_watch_conn_again(struct relay *r)
{
	r->conn_paused = false;
	if (r->state == RELAY_DONE || r->conn_fd < 0)
		return;
	if (relay_watch_conn(r) < 0) {
		relay_fail(r, "event loop: cannot watch the agent connection");
		return;
	}
	/* Every complete frame was handled before the pause: only a partial
	 * one may wait in the reader, completed by the next read. */
	relay_flush(r);
}

/* One non-blocking connect attempt to the hybrid socket. */
static void relay_try_connect(struct relay *r)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", r->cfg.uds_path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		perr_set(&r->last_err, -errno, "socket");
		return;
	}
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		perr_set(&r->last_err, -errno, "connect to %s", r->cfg.uds_path);
		close(fd);
		return;
	}
	char line[32];
	int n = snprintf(line, sizeof(line), "CONNECT %u\n", r->cfg.port);
	if (write(fd, line, (size_t)n) != n) {
		perr_set(&r->last_err, -errno, "%s: write CONNECT", r->cfg.uds_path);
		close(fd);
		return;
	}
	r->conn_fd = fd;
	r->hs_len = 0;
	if (relay_watch_conn(r) < 0) {
		relay_close_conn(r);
		return;
	}
	r->state = RELAY_HANDSHAKE;
}

static void relay_on_timer(void *opaque, uint32_t events)
{
	struct relay *r = opaque;
	uint64_t ticks;
	(void)events;
	if (read(r->timer_fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		return;
	if (r->state == RELAY_CONNECTING) {
		if (monotonic_ms() > r->deadline_ms) {
			relay_fail(r, "the agent did not answer within %u s: %s",
				   r->cfg.connect_timeout_ms / 1000,
				   r->last_err.msg[0] ? r->last_err.msg : "no connection");
			return;
		}
		relay_try_connect(r);
	} else if (r->state == RELAY_HANDSHAKE && monotonic_ms() > r->deadline_ms) {
		relay_fail(r, "%s: no reply to CONNECT %u", r->cfg.uds_path, r->cfg.port);
	} else if (r->state >= RELAY_HELLO && r->timer_fd >= 0) {
		/* Connected: the timer has done its job. */
		eventloop_remove(r->loop, r->timer_fd);
		close(r->timer_fd);
		r->timer_fd = -1;
	}
}

static void relay_close_ready(struct relay *r)
{
	if (r->ready_fd < 0)
		return;
	eventloop_remove(r->loop, r->ready_fd);
	close(r->ready_fd);
	r->ready_fd = -1;
	unlink(r->ready_path);
}

/* The agent announced that it listens (one connection, no data). */
static void relay_on_ready(void *opaque, uint32_t events)
{
	struct relay *r = opaque;
	(void)events;
	int fd;
	while ((fd = accept4(r->ready_fd, NULL, NULL, SOCK_CLOEXEC)) >= 0)
		close(fd);
	relay_close_ready(r); /* once per boot */
	if (r->state == RELAY_CONNECTING)
		relay_try_connect(r);
	else if (r->state == RELAY_HANDSHAKE)
		r->ready_retry = true;
}

/* Best effort: without it the retry timer still finds the agent. */
static void relay_listen_ready(struct relay *r)
{
	struct perr err;
	int fd = agent_ready_listen(r->cfg.uds_path, r->ready_path, sizeof(r->ready_path), &err);
	if (fd < 0) {
		r->ready_path[0] = 0;
		log_debug("relay: %s; polling only", err.msg);
		return;
	}
	if (eventloop_add(r->loop, fd, EPOLLIN, relay_on_ready, r) < 0) {
		log_debug("relay: watching %s failed; polling only", r->ready_path);
		close(fd);
		unlink(r->ready_path);
		r->ready_path[0] = 0;
		return;
	}
	r->ready_fd = fd;
}

uint32_t relay_process_id(const struct relay *r)
{
	return r ? r->id : 0;
}

int relay_start(struct eventloop *loop, const struct relay_config *cfg, struct relay **out,
		struct perr *err)
{
	if (cfg->request->type != AGENT_MSG_CREATE && cfg->request->type != AGENT_MSG_EXEC)
		return perr_setx(err, -EINVAL, "relay: the request must be create or exec");
	struct relay *r = calloc(1, sizeof(*r));
	if (!r)
		return perr_set(err, -ENOMEM, "relay");
	r->cfg = *cfg;
	r->loop = loop;
	r->timer_fd = -1;
	r->ready_fd = -1;
	r->conn_fd = -1;
	r->sig_fd = -1;
	relay_out_init(r, &r->out, cfg->out_fd);
	relay_out_init(r, &r->err, cfg->err_fd);
	agent_reader_init(&r->rd);
	agent_writer_init(&r->wr);
	r->deadline_ms = monotonic_ms() + cfg->connect_timeout_ms;
	int rc;

	if (cfg->forward_signals) {
		sigset_t set;
		relay_forwarded_signals(&set);
		r->sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
		if (r->sig_fd < 0) {
			rc = perr_set(err, -errno, "signalfd");
			goto fail;
		}
		rc = eventloop_add(loop, r->sig_fd, EPOLLIN, relay_on_signal, r);
		if (rc < 0) {
			close(r->sig_fd);
			r->sig_fd = -1;
			perr_set(err, rc, "event loop");
			goto fail;
		}
	}
	if (cfg->conn_fd >= 0) {
		r->conn_fd = cfg->conn_fd;
		fcntl(r->conn_fd, F_SETFL, fcntl(r->conn_fd, F_GETFL) | O_NONBLOCK);
		rc = relay_watch_conn(r);
		if (rc < 0) {
			r->conn_fd = -1;
			perr_set(err, rc, "event loop");
			goto fail;
		}
		relay_send_requests(r);
	} else {
		r->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
		if (r->timer_fd < 0) {
			rc = perr_set(err, -errno, "timerfd");
			goto fail;
		}
		if (cfg->await_ready)
			relay_listen_ready(r);
		unsigned retry_ms = cfg->retry_ms ? cfg->retry_ms : RELAY_RETRY_MS;
		struct itimerspec its = {
		    .it_interval = {retry_ms / 1000, (long)(retry_ms % 1000) * 1000000L},
		    .it_value = {0, 1000000L}};
		timerfd_settime(r->timer_fd, 0, &its, NULL);
		rc = eventloop_add(loop, r->timer_fd, EPOLLIN, relay_on_timer, r);
		if (rc < 0) {
			perr_set(err, rc, "event loop");
			goto fail;
		}
	}
	*out = r;
	return 0;
fail:
	r->cfg.done = NULL;
	relay_destroy(r);
	return rc;
}

void relay_destroy(struct relay *r)
{
	if (!r)
		return;
	if (r->tty_raw)
		tcsetattr(r->cfg.in_fd, TCSANOW, &r->tty_saved);
	relay_unwatch_in(r);
	relay_close_conn(r);
	relay_close_ready(r);
	if (r->timer_fd >= 0) {
		eventloop_remove(r->loop, r->timer_fd);
		close(r->timer_fd);
	}
	if (r->sig_fd >= 0) {
		eventloop_remove(r->loop, r->sig_fd);
		close(r->sig_fd);
	}
	if (r->cfg.notify_fd >= 0)
		close(r->cfg.notify_fd);
	relay_out_free(&r->out);
	relay_out_free(&r->err);
	agent_reader_free(&r->rd);
	agent_writer_free(&r->wr);
	free(r);
}

int relay_load_create(const char *state_dir, struct agent_msg *msg, char **raw, size_t *raw_len,
		      struct perr *err)
{
	char path[PATH_MAX];
	memset(msg, 0, sizeof(*msg));
	if (snprintf(path, sizeof(path), "%s/create.json", state_dir) >= (int)sizeof(path))
		return perr_setx(err, -ENAMETOOLONG, "%s: path too long", state_dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return perr_set(err, -errno, "%s", path);
	size_t cap = AGENT_FRAME_MAX_PAYLOAD, len = 0;
	char *buf = malloc(cap);
	if (!buf) {
		close(fd);
		return perr_set(err, -ENOMEM, "%s", path);
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = -errno;
			free(buf);
			close(fd);
			return perr_set(err, e, "read %s", path);
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == cap) {
			free(buf);
			close(fd);
			return perr_setx(err, -EFBIG, "%s: larger than %zu bytes", path, cap);
		}
	}
	close(fd);
	int rc = agent_msg_decode(buf, len, msg, err);
	if (rc < 0) {
		free(buf);
		return perr_wrap(err, "%s", path);
	}
	*raw = buf;
	*raw_len = len;
	if (msg->type != AGENT_MSG_CREATE)
		return perr_setx(err, -EINVAL, "%s: not a create message", path);
	return 0;
}
