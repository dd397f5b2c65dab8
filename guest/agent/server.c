/*
 * The agent's event loop: vsock connections, requests, stdio relay and exit
 * reports (docs/agent-protocol.md).
 *
 * One epoll loop, single-threaded (setns and fork want that). A process
 * belongs to the connection that created or exec'd it: its output and its
 * exit go there. Control requests (start, signal, resize) may come from any
 * connection. Requests are answered in order; create, start and exec block
 * the loop while the child sets up (bounded by AGENT_SETUP_TIMEOUT_MS).
 *
 * Back-pressure instead of unbounded buffers: a connection whose queue is
 * long is not read (requests, stdin), and a process whose owner's queue is
 * long is not read either (output) until the host drains it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/random.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "common/cleanup.h"
#include "common/log.h"

#define MAX_CONNS 64
#define MAX_PROCS 1024
/* Stop reading a connection's requests and stdin beyond this much queued output. */
#define CONN_QUEUE_HIGH (1u << 20)
/* Stop reading a process's output beyond this much queued for its owner. */
#define OUTPUT_QUEUE_HIGH (256u << 10)
/* Stop reading a connection while one of its processes has this much stdin pending. */
#define STDIN_HIGH (1u << 20)
/* After a process exits, how long its output may stay open (a background child
 * holding the pipe) before the exit is reported anyway. */
#define EXIT_GRACE_MS 2000

enum watch_kind { W_LISTEN, W_SIGNAL, W_CONN, W_STDIN, W_STDOUT, W_STDERR };

struct watch {
	enum watch_kind kind;
	int fd;
	uint32_t events; /* registered with epoll; 0 = not registered */
	void *owner;
};

struct conn {
	struct watch w;
	struct agent_reader rd;
	struct agent_writer wr;
	unsigned serial;
	bool hello_done;
	bool closing; /* protocol error: flush what is queued, then close */
	bool dead;
	struct conn *next;
};

struct bytebuf {
	uint8_t *buf;
	size_t start, len, cap;
};

struct proc {
	uint32_t id;
	pid_t pid;
	struct conn *owner; /* NULL once its connection is gone: output is discarded */
	bool is_init;
	bool terminal;
	int sync_fd; /* the init's, until start */
	struct watch in, out, err;
	struct bytebuf inbuf;
	bool in_eof; /* close stdin once inbuf is written */
	bool exited;
	int status, signal;
	int64_t exit_deadline;
	bool dead;
	struct proc *next;
};

enum container_state { CT_NONE, CT_CREATED, CT_RUNNING, CT_STOPPED };

static const char *const state_names[] = {"none", "created", "running", "stopped"};

struct server {
	int epfd;
	int own_pidns_fd;
	struct watch listen_w, sig_w;
	int ready_fd; /* the announcement to the host (AGENT_READY_PORT), until the first client */
	struct conn *conns;
	struct proc *procs;
	unsigned nconns, nprocs, next_serial;
	uint32_t next_id;
	enum container_state state;
	bool ct_pidns;
	pid_t init_pid;
	struct agent_seccomp *seccomp; /* the container's profile, for init and exec */
	struct log_ratelimit rl;
	struct conn *shutdown_conn;
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- epoll bookkeeping ---- */

static void watch_set(struct server *s, struct watch *w, uint32_t events)
{
	if (w->fd < 0 || events == w->events)
		return;
	if (events == 0) {
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, w->fd, NULL);
		w->events = 0;
		return;
	}
	struct epoll_event ev = {.events = events, .data.ptr = w};
	if (epoll_ctl(s->epfd, w->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, w->fd, &ev) < 0) {
		log_error("epoll_ctl fd %d: %s", w->fd, strerror(errno));
		return;
	}
	w->events = events;
}

static void watch_close(struct server *s, struct watch *w)
{
	if (w->fd < 0)
		return;
	watch_set(s, w, 0);
	close(w->fd);
	w->fd = -1;
}

/* ---- messages to the host ---- */

static void conn_send(struct conn *c, const struct agent_msg *msg)
{
	struct perr err = {0};
	if (agent_writer_msg(&c->wr, msg, &err) < 0)
		log_error("connection %u: %s", c->serial, err.msg);
}

static void conn_send_error(struct conn *c, const char *message)
{
	log_debug("connection %u: error: %s", c->serial, message);
	if (agent_writer_error(&c->wr, message) < 0)
		log_error("connection %u: cannot queue an error", c->serial);
}

static void conn_send_id(struct conn *c, enum agent_msg_type type, uint32_t id)
{
	struct agent_msg msg = {.type = type, .u.id = id};
	conn_send(c, &msg);
}

static void conn_send_ok(struct conn *c)
{
	struct agent_msg msg = {.type = AGENT_MSG_OK};
	conn_send(c, &msg);
}

/* ---- processes ---- */

static struct proc *proc_find(struct server *s, uint32_t id)
{
	for (struct proc *p = s->procs; p; p = p->next)
		if (p->id == id && !p->dead)
			return p;
	return NULL;
}

static struct proc *proc_add(struct server *s, uint32_t id, struct spawned *sp, struct conn *owner,
			     bool is_init)
{
	struct proc *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->id = id;
	p->pid = sp->pid;
	p->owner = owner;
	p->is_init = is_init;
	p->terminal = sp->terminal;
	p->sync_fd = steal_fd(&sp->sync_fd);
	p->in = (struct watch){.kind = W_STDIN, .fd = steal_fd(&sp->stdin_fd), .owner = p};
	p->out = (struct watch){.kind = W_STDOUT, .fd = steal_fd(&sp->stdout_fd), .owner = p};
	p->err = (struct watch){.kind = W_STDERR, .fd = steal_fd(&sp->stderr_fd), .owner = p};
	p->next = s->procs;
	s->procs = p;
	s->nprocs++;
	return p;
}

static void proc_close_stdin(struct server *s, struct proc *p)
{
	watch_close(s, &p->in);
	free(p->inbuf.buf);
	memset(&p->inbuf, 0, sizeof(p->inbuf));
}

/* End of one output stream: tell the owner with an empty frame. */
static void proc_close_output(struct server *s, struct proc *p, struct watch *w)
{
	watch_close(s, w);
	if (p->owner)
		agent_writer_frame(&p->owner->wr,
				   w->kind == W_STDERR ? AGENT_FRAME_STDERR : AGENT_FRAME_STDOUT,
				   p->id, NULL, 0);
	/* A terminal's input is the same pty: nothing more can be written once it hung up. */
	if (p->terminal)
		proc_close_stdin(s, p);
}

/* Returns false when the stream ended. */
static bool proc_read_output(struct server *s, struct proc *p, struct watch *w)
{
	uint8_t buf[AGENT_STDIO_CHUNK];
	ssize_t n = read(w->fd, buf, sizeof(buf));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return true;
	/* EIO is how a pty master says every slave fd is closed. */
	if (n <= 0) {
		proc_close_output(s, p, w);
		return false;
	}
	if (p->owner &&
	    agent_writer_frame(&p->owner->wr,
			       w->kind == W_STDERR ? AGENT_FRAME_STDERR : AGENT_FRAME_STDOUT, p->id,
			       buf, (size_t)n) < 0)
		LOG_GUEST_RATELIMITED(&s->rl, "process %" PRIu32 ": output dropped: out of memory",
				      p->id);
	return true;
}

static void proc_write_stdin(struct server *s, struct proc *p)
{
	struct bytebuf *b = &p->inbuf;
	while (b->start < b->len) {
		ssize_t n = write(p->in.fd, b->buf + b->start, b->len - b->start);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0) {
			/* EPIPE: the process closed its stdin; what the host sends now goes
			 * nowhere. */
			proc_close_stdin(s, p);
			return;
		}
		b->start += (size_t)n;
	}
	b->start = b->len = 0;
	if (p->in_eof)
		proc_close_stdin(s, p);
}

static void proc_queue_stdin(struct server *s, struct proc *p, const uint8_t *data, size_t len)
{
	if (p->in.fd < 0 || p->in_eof)
		return;
	if (len == 0) {
		/* A terminal has no end of file to give: closing the master would hang it up. */
		if (p->terminal)
			return;
		p->in_eof = true;
		if (p->inbuf.len == p->inbuf.start)
			proc_close_stdin(s, p);
		return;
	}
	struct bytebuf *b = &p->inbuf;
	if (b->start > 0 && b->start == b->len)
		b->start = b->len = 0;
	if (b->cap - b->len < len) {
		if (b->start > 0) {
			memmove(b->buf, b->buf + b->start, b->len - b->start);
			b->len -= b->start;
			b->start = 0;
		}
		size_t cap = b->cap ? b->cap : 16384;
		while (cap - b->len < len)
			cap *= 2;
		uint8_t *nb = realloc(b->buf, cap);
		if (!nb) {
			LOG_GUEST_RATELIMITED(
			    &s->rl, "process %" PRIu32 ": stdin dropped: out of memory", p->id);
			return;
		}
		b->buf = nb;
		b->cap = cap;
	}
	memcpy(b->buf + b->len, data, len);
	b->len += len;
	proc_write_stdin(s, p);
}

static void proc_report_exit(struct server *s, struct proc *p)
{
	/* Whatever is still readable right now belongs before the exit. */
	struct watch *outs[] = {&p->out, &p->err};
	for (size_t i = 0; i < ARRAY_SIZE(outs); i++)
		for (int k = 0; k < 64 && outs[i]->fd >= 0; k++) {
			struct pollfd pfd = {.fd = outs[i]->fd, .events = POLLIN};
			if (poll(&pfd, 1, 0) <= 0 || !proc_read_output(s, p, outs[i]))
				break;
		}
	watch_close(s, &p->out);
	watch_close(s, &p->err);
	proc_close_stdin(s, p);
	if (p->sync_fd >= 0) {
		close(p->sync_fd);
		p->sync_fd = -1;
	}
	if (p->owner) {
		struct agent_msg msg = {.type = AGENT_MSG_EXIT};
		msg.u.exit.id = p->id;
		msg.u.exit.status = p->status;
		msg.u.exit.signal = p->signal;
		conn_send(p->owner, &msg);
	}
	log_debug("process %" PRIu32 " (pid %d) exited with %d", p->id, (int)p->pid, p->status);
	p->dead = true;
}

static void reap_children(struct server *s)
{
	int st;
	pid_t pid;
	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		struct proc *p;
		for (p = s->procs; p; p = p->next)
			if (p->pid == pid && !p->exited && !p->dead)
				break;
		if (!p)
			continue; /* an orphan we inherited as PID 1, or a child that failed set-up
				   */
		p->exited = true;
		if (WIFSIGNALED(st)) {
			p->signal = WTERMSIG(st);
			p->status = 128 + p->signal;
		} else {
			p->status = WEXITSTATUS(st);
		}
		p->exit_deadline = now_ms() + EXIT_GRACE_MS;
		if (p->is_init) {
			s->state = CT_STOPPED;
			/* Without its own pid namespace nothing takes the container's other
			 * processes down with the init: do it, as the container is over. */
			if (!s->ct_pidns)
				for (struct proc *q = s->procs; q; q = q->next)
					if (!q->exited && !q->dead)
						kill(q->pid, SIGKILL);
		}
	}
}

/* Exits whose output is complete (or whose grace ran out) are reported now. */
static void report_exits(struct server *s)
{
	int64_t now = now_ms();
	for (struct proc *p = s->procs; p; p = p->next) {
		if (!p->exited || p->dead)
			continue;
		bool output_open = p->out.fd >= 0 || p->err.fd >= 0;
		if (output_open && now < p->exit_deadline)
			continue;
		/* Past the grace but the host is slow to read: keep the output, wait. */
		if (output_open && p->owner &&
		    agent_writer_pending(&p->owner->wr) >= OUTPUT_QUEUE_HIGH) {
			p->exit_deadline = now + 100;
			continue;
		}
		proc_report_exit(s, p);
	}
}

/* Every process whose pid namespace is the init's: kill --all. */
static void kill_container(struct server *s, int sig)
{
	char path[64], init_ns[64], ns[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)s->init_pid);
	ssize_t n = readlink(path, init_ns, sizeof(init_ns) - 1);
	if (n <= 0 || !s->ct_pidns) {
		for (struct proc *p = s->procs; p; p = p->next)
			if (!p->exited && !p->dead)
				kill(p->pid, sig);
		return;
	}
	init_ns[n] = '\0';
	DIR *d = opendir("/proc");
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 1)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/ns/pid", pid);
		ssize_t m = readlink(path, ns, sizeof(ns) - 1);
		if (m <= 0)
			continue;
		ns[m] = '\0';
		if (strcmp(ns, init_ns) == 0)
			kill((pid_t)pid, sig);
	}
	closedir(d);
}

/* ---- requests ---- */

/* A guest restored from a snapshot (docs/runtime.md, "VM templates") wakes with
 * the snapshot's wall clock and the same RNG state as every sibling: the host's
 * hello brings its clock and fresh bytes. The clock is set only when it is off
 * by more than a second, so that a cold-booted guest's is left alone. */
static void guest_sync_from_host(const struct agent_hello *h)
{
	if (h->has_seed) {
		struct {
			struct rand_pool_info info;
			uint8_t buf[AGENT_HELLO_SEED_BYTES];
		} pool = {.info = {.entropy_count = AGENT_HELLO_SEED_BYTES * 8,
				   .buf_size = AGENT_HELLO_SEED_BYTES}};
		memcpy(pool.buf, h->seed, sizeof(pool.buf));
		int fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
		if (fd >= 0) {
			if (ioctl(fd, RNDADDENTROPY, &pool.info) < 0 ||
			    ioctl(fd, RNDRESEEDCRNG) < 0)
				log_warn("seeding the RNG from the host: %s", strerror(errno));
			close(fd);
		}
		explicit_bzero(&pool, sizeof(pool));
	}
	if (!h->time_ns)
		return;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	int64_t here = (int64_t)now.tv_sec * 1000000000ll + now.tv_nsec;
	int64_t off = (int64_t)h->time_ns - here;
	if (off > -1000000000ll && off < 1000000000ll)
		return;
	struct timespec host = {.tv_sec = (time_t)(h->time_ns / 1000000000ull),
				.tv_nsec = (long)(h->time_ns % 1000000000ull)};
	if (clock_settime(CLOCK_REALTIME, &host) < 0)
		log_warn("setting the clock from the host: %s", strerror(errno));
	else
		log_info("clock set from the host (it was off by %lld ms)",
			 (long long)(off / 1000000));
}

static void handle_hello(struct conn *c, const struct agent_msg *m)
{
	if (m->u.hello.version < 1) {
		conn_send_error(c, "hello: version 0 is not a protocol version");
		c->closing = true;
		return;
	}
	guest_sync_from_host(&m->u.hello);
	struct agent_msg reply = {.type = AGENT_MSG_HELLO};
	/* Both sides speak every version up to their own: the lower one wins. */
	reply.u.hello.version =
	    m->u.hello.version < AGENT_PROTO_VERSION ? m->u.hello.version : AGENT_PROTO_VERSION;
	reply.u.hello.agent = "petrel-agent " PETREL_VERSION;
	c->hello_done = true;
	conn_send(c, &reply);
}

static void handle_create(struct server *s, struct conn *c, const struct agent_create *cr,
			  const struct agent_frame *f)
{
	char msg[PERR_MSG_MAX + 64];
	struct perr err = {0};
	if (s->state == CT_CREATED || s->state == CT_RUNNING) {
		snprintf(msg, sizeof(msg), "create: a container already exists in this VM (%s)",
			 state_names[s->state]);
		conn_send_error(c, msg);
		return;
	}
	struct proc *old = proc_find(s, AGENT_INIT_ID);
	if (old) {
		conn_send_error(c, "create: the previous container is still exiting");
		return;
	}
	if (s->nprocs >= MAX_PROCS) {
		conn_send_error(c, "create: too many processes");
		return;
	}
	/* Before the container exists: its process may use the network at once. */
	struct agent_network *net = malloc(sizeof(*net));
	if (!net) {
		conn_send_error(c, "create: out of memory");
		return;
	}
	int nr = network_decode(f->payload, f->len, net, &err);
	if (nr == 0)
		nr = network_configure(net, &err);
	free(net);
	if (nr < 0) {
		snprintf(msg, sizeof(msg), "create: %s", err.msg);
		conn_send_error(c, msg);
		return;
	}
	struct agent_seccomp *seccomp = NULL;
	if (agent_seccomp_decode(f->payload, f->len, &seccomp, &err) < 0) {
		snprintf(msg, sizeof(msg), "create: %s", err.msg);
		conn_send_error(c, msg);
		return;
	}
	struct spawned sp;
	if (container_mount_rootfs(cr, &err) < 0 ||
	    container_spawn_init(cr, seccomp, s->own_pidns_fd, &sp, &err) < 0) {
		snprintf(msg, sizeof(msg), "create: %s", err.msg);
		conn_send_error(c, msg);
		container_unmount_rootfs();
		agent_seccomp_free(seccomp);
		return;
	}
	/* exec'd processes get the same profile, as with runc. */
	agent_seccomp_free(s->seccomp);
	s->seccomp = seccomp;
	struct proc *p = proc_add(s, AGENT_INIT_ID, &sp, c, true);
	if (!p) {
		kill(sp.pid, SIGKILL);
		spawned_close(&sp);
		conn_send_error(c, "create: out of memory");
		return;
	}
	s->state = CT_CREATED;
	s->init_pid = sp.pid;
	s->ct_pidns = cr->namespaces & AGENT_NS_PID;
	log_info("container created, init pid %d", (int)sp.pid);
	conn_send_id(c, AGENT_MSG_CREATED, AGENT_INIT_ID);
}

static void handle_start(struct server *s, struct conn *c)
{
	char msg[PERR_MSG_MAX + 64];
	struct perr err = {0};
	struct proc *p = proc_find(s, AGENT_INIT_ID);
	if (s->state != CT_CREATED || !p || p->exited) {
		snprintf(msg, sizeof(msg), "start: the container is %s, not created",
			 p && p->exited ? "stopped" : state_names[s->state]);
		conn_send_error(c, msg);
		return;
	}
	if (p->sync_fd < 0) {
		/* A start that failed already: the init is on its way out. */
		conn_send_error(c, "start: the container was already started");
		return;
	}
	struct spawned sp = {.pid = p->pid,
			     .sync_fd = steal_fd(&p->sync_fd),
			     .stdin_fd = -1,
			     .stdout_fd = -1,
			     .stderr_fd = -1};
	if (container_start(&sp, &err) < 0) {
		snprintf(msg, sizeof(msg), "start: %s", err.msg);
		conn_send_error(c, msg);
		return;
	}
	s->state = CT_RUNNING;
	conn_send_id(c, AGENT_MSG_STARTED, AGENT_INIT_ID);
}

static void handle_exec(struct server *s, struct conn *c, const struct agent_process *proc)
{
	char msg[PERR_MSG_MAX + 64];
	struct perr err = {0};
	struct proc *init = proc_find(s, AGENT_INIT_ID);
	if ((s->state != CT_CREATED && s->state != CT_RUNNING) || !init || init->exited) {
		snprintf(msg, sizeof(msg), "exec: the container is %s, not running",
			 state_names[s->state]);
		conn_send_error(c, msg);
		return;
	}
	if (s->nprocs >= MAX_PROCS) {
		conn_send_error(c, "exec: too many processes");
		return;
	}
	struct spawned sp;
	if (container_spawn_exec(s->init_pid, proc, s->seccomp, s->own_pidns_fd, &sp, &err) < 0) {
		snprintf(msg, sizeof(msg), "exec: %s", err.msg);
		conn_send_error(c, msg);
		return;
	}
	uint32_t id = s->next_id++;
	if (!proc_add(s, id, &sp, c, false)) {
		kill(sp.pid, SIGKILL);
		spawned_close(&sp);
		conn_send_error(c, "exec: out of memory");
		return;
	}
	conn_send_id(c, AGENT_MSG_EXEC_STARTED, id);
}

static void handle_signal(struct server *s, struct conn *c, uint32_t id, int sig, bool all)
{
	char msg[128];
	struct proc *p = proc_find(s, id);
	if (!p || p->exited) {
		snprintf(msg, sizeof(msg), "signal: process %" PRIu32 " is not running", id);
		conn_send_error(c, msg);
		return;
	}
	if (all && !p->is_init) {
		conn_send_error(c, "signal: all applies to the container's init (id 1) only");
		return;
	}
	if (all)
		kill_container(s, sig);
	else if (kill(p->pid, sig) < 0) {
		snprintf(msg, sizeof(msg), "signal: kill %d: %s", sig, strerror(errno));
		conn_send_error(c, msg);
		return;
	}
	conn_send_ok(c);
}

static void handle_resize(struct server *s, struct conn *c, uint32_t id, uint16_t rows,
			  uint16_t cols)
{
	char msg[128];
	struct proc *p = proc_find(s, id);
	if (!p || !p->terminal || p->out.fd < 0) {
		snprintf(msg, sizeof(msg), "resize: process %" PRIu32 " has no terminal", id);
		conn_send_error(c, msg);
		return;
	}
	struct winsize ws = {.ws_row = rows, .ws_col = cols};
	if (ioctl(p->out.fd, TIOCSWINSZ, &ws) < 0) {
		snprintf(msg, sizeof(msg), "resize: %s", strerror(errno));
		conn_send_error(c, msg);
		return;
	}
	conn_send_ok(c);
}

static void handle_msg(struct server *s, struct conn *c, const struct agent_frame *f)
{
	struct agent_msg m;
	struct perr err = {0};
	int r = agent_msg_decode(f->payload, f->len, &m, &err);
	if (!c->hello_done && (r < 0 || m.type != AGENT_MSG_HELLO)) {
		/* Not even a hello: whatever this peer is, it does not speak our protocol. */
		char msg[PERR_MSG_MAX + 64];
		snprintf(msg, sizeof(msg), "the first message must be hello%s%s", r < 0 ? ": " : "",
			 r < 0 ? err.msg : "");
		conn_send_error(c, msg);
		c->closing = true;
		agent_msg_free(&m);
		return;
	}
	if (r < 0) {
		conn_send_error(c, err.msg);
		agent_msg_free(&m);
		return;
	}
	log_debug("connection %u: %s", c->serial, agent_msg_type_name(m.type));
	switch (m.type) {
	case AGENT_MSG_HELLO:
		handle_hello(c, &m);
		break;
	case AGENT_MSG_CREATE:
		handle_create(s, c, &m.u.create, f);
		break;
	case AGENT_MSG_START:
		handle_start(s, c);
		break;
	case AGENT_MSG_EXEC:
		handle_exec(s, c, &m.u.exec);
		break;
	case AGENT_MSG_SIGNAL:
		handle_signal(s, c, m.u.signal.id, m.u.signal.signal, m.u.signal.all);
		break;
	case AGENT_MSG_RESIZE:
		handle_resize(s, c, m.u.resize.id, m.u.resize.rows, m.u.resize.cols);
		break;
	case AGENT_MSG_SHUTDOWN:
		if (!s->shutdown_conn)
			s->shutdown_conn = c;
		break;
	default: {
		char msg[96];
		snprintf(msg, sizeof(msg), "%s is not a request", agent_msg_type_name(m.type));
		conn_send_error(c, msg);
		break;
	}
	}
	agent_msg_free(&m);
}

static void handle_frame(struct server *s, struct conn *c, const struct agent_frame *f)
{
	if (f->type == AGENT_FRAME_MSG) {
		handle_msg(s, c, f);
		return;
	}
	struct proc *p = f->type == AGENT_FRAME_STDIN ? proc_find(s, f->proc) : NULL;
	if (!p || p->owner != c) {
		LOG_GUEST_RATELIMITED(
		    &s->rl, "connection %u: stdio frame type %u for process %" PRIu32 " ignored",
		    c->serial, f->type, f->proc);
		return;
	}
	proc_queue_stdin(s, p, f->payload, f->len);
}

/* ---- connections ---- */

static void conn_close(struct server *s, struct conn *c)
{
	if (c->dead)
		return;
	for (struct proc *p = s->procs; p; p = p->next)
		if (p->owner == c) {
			p->owner = NULL;
			/* Nobody can write its stdin any more: let it see end of file. */
			if (!p->terminal)
				proc_close_stdin(s, p);
		}
	if (s->shutdown_conn == c)
		s->shutdown_conn = NULL;
	watch_close(s, &c->w);
	c->dead = true;
	log_debug("connection %u closed", c->serial);
}

static void conn_flush(struct server *s, struct conn *c)
{
	if (c->dead)
		return;
	int r = agent_writer_flush(&c->wr, c->w.fd);
	if (r < 0) {
		log_debug("connection %u: write: %s", c->serial, strerror(-r));
		conn_close(s, c);
		return;
	}
	if (c->closing && agent_writer_pending(&c->wr) == 0)
		conn_close(s, c);
}

static void conn_read(struct server *s, struct conn *c)
{
	ssize_t n = agent_reader_fill(&c->rd, c->w.fd);
	if (n == -EAGAIN)
		return;
	if (n <= 0) {
		if (n < 0)
			log_debug("connection %u: read: %s", c->serial, strerror((int)-n));
		else if (agent_reader_pending(&c->rd))
			LOG_GUEST_RATELIMITED(
			    &s->rl, "connection %u: closed in the middle of a frame", c->serial);
		conn_close(s, c);
		return;
	}
	struct agent_frame f;
	struct perr err = {0};
	int r;
	while (!c->closing && (r = agent_reader_next(&c->rd, &f, &err)) == 1) {
		handle_frame(s, c, &f);
		if (s->shutdown_conn)
			return;
	}
	if (!c->closing && r < 0) {
		/* A bad header leaves no way to find the next frame: say why and hang up. */
		LOG_GUEST_RATELIMITED(&s->rl, "connection %u: %s", c->serial, err.msg);
		conn_send_error(c, err.msg);
		c->closing = true;
	}
}

/* Tells the host the agent listens: a connection to its AGENT_READY_PORT.
 * Not waited for; refused (nobody listens there) is fine too. Closed when the
 * first client arrives, so that the request has surely gone out by then. */
static void announce_ready(struct server *s)
{
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return;
	struct sockaddr_vm addr = {
	    .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_HOST, .svm_port = AGENT_READY_PORT};
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 && errno != EINPROGRESS) {
		close(fd);
		return;
	}
	s->ready_fd = fd;
}

static void accept_conns(struct server *s)
{
	if (s->ready_fd >= 0) {
		close(s->ready_fd);
		s->ready_fd = -1;
	}
	for (;;) {
		int fd = accept4(s->listen_w.fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_error("accept: %s", strerror(errno));
			return;
		}
		if (s->nconns >= MAX_CONNS) {
			LOG_GUEST_RATELIMITED(&s->rl, "too many connections: refusing one");
			close(fd);
			continue;
		}
		struct conn *c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->w = (struct watch){.kind = W_CONN, .fd = fd, .owner = c};
		c->serial = ++s->next_serial;
		agent_reader_init(&c->rd);
		agent_writer_init(&c->wr);
		c->next = s->conns;
		s->conns = c;
		s->nconns++;
		log_debug("connection %u accepted", c->serial);
	}
}

/* ---- the loop ---- */

static bool conn_stdin_backlogged(struct server *s, struct conn *c)
{
	for (struct proc *p = s->procs; p; p = p->next)
		if (p->owner == c && p->inbuf.len - p->inbuf.start >= STDIN_HIGH)
			return true;
	return false;
}

static void update_interest(struct server *s)
{
	for (struct conn *c = s->conns; c; c = c->next) {
		if (c->dead)
			continue;
		uint32_t ev = 0;
		size_t pending = agent_writer_pending(&c->wr);
		if (!c->closing && pending < CONN_QUEUE_HIGH && !conn_stdin_backlogged(s, c))
			ev |= EPOLLIN;
		if (pending)
			ev |= EPOLLOUT;
		watch_set(s, &c->w, ev);
	}
	for (struct proc *p = s->procs; p; p = p->next) {
		if (p->dead)
			continue;
		bool can_queue =
		    !p->owner || agent_writer_pending(&p->owner->wr) < OUTPUT_QUEUE_HIGH;
		watch_set(s, &p->out, can_queue ? EPOLLIN : 0);
		watch_set(s, &p->err, can_queue ? EPOLLIN : 0);
		bool want_out = p->inbuf.len > p->inbuf.start || p->in_eof;
		watch_set(s, &p->in, want_out ? EPOLLOUT : 0);
	}
}

static void free_dead(struct server *s)
{
	for (struct conn **cp = &s->conns; *cp;) {
		struct conn *c = *cp;
		if (!c->dead) {
			cp = &c->next;
			continue;
		}
		*cp = c->next;
		agent_reader_free(&c->rd);
		agent_writer_free(&c->wr);
		free(c);
		s->nconns--;
	}
	for (struct proc **pp = &s->procs; *pp;) {
		struct proc *p = *pp;
		if (!p->dead) {
			pp = &p->next;
			continue;
		}
		*pp = p->next;
		free(p->inbuf.buf);
		free(p);
		s->nprocs--;
	}
}

static int next_timeout(struct server *s)
{
	int64_t now = now_ms(), best = -1;
	for (struct proc *p = s->procs; p; p = p->next)
		if (p->exited && !p->dead) {
			int64_t left = p->exit_deadline > now ? p->exit_deadline - now : 0;
			if (best < 0 || left < best)
				best = left;
		}
	return best < 0 ? -1 : (int)best;
}

static void dispatch(struct server *s, struct watch *w, uint32_t events)
{
	switch (w->kind) {
	case W_LISTEN:
		accept_conns(s);
		break;
	case W_SIGNAL: {
		struct signalfd_siginfo si;
		while (read(w->fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
			if (si.ssi_signo != SIGCHLD)
				log_debug("signal %u ignored", si.ssi_signo);
		reap_children(s);
		break;
	}
	case W_CONN: {
		struct conn *c = w->owner;
		if (c->dead)
			break;
		if (events & EPOLLOUT)
			conn_flush(s, c);
		if (!c->dead && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
			conn_read(s, c);
		break;
	}
	case W_STDIN: {
		struct proc *p = w->owner;
		if (!p->dead && p->in.fd >= 0)
			proc_write_stdin(s, p);
		break;
	}
	case W_STDOUT:
	case W_STDERR: {
		struct proc *p = w->owner;
		if (!p->dead && w->fd >= 0)
			proc_read_output(s, p, w);
		break;
	}
	}
}

/* Kills everything, syncs and unmounts the disk, answers ok, then returns so that main reboots. */
static void server_shutdown(struct server *s)
{
	struct conn *c = s->shutdown_conn;
	log_info("shutdown requested by connection %u", c->serial);
	for (struct proc *p = s->procs; p; p = p->next)
		if (!p->exited && !p->dead)
			kill(p->pid, SIGKILL);
	int64_t deadline = now_ms() + 2000;
	for (;;) {
		reap_children(s);
		bool alive = false;
		for (struct proc *p = s->procs; p; p = p->next)
			alive |= !p->exited && !p->dead;
		if (!alive || now_ms() >= deadline)
			break;
		poll(NULL, 0, 10);
	}
	sync();
	container_unmount_rootfs();
	sync();
	conn_send_ok(c);
	/* Give the host its answer before the VM goes away: flush, half-close, wait for its close.
	 */
	deadline = now_ms() + 1000;
	while (agent_writer_pending(&c->wr) && now_ms() < deadline) {
		if (agent_writer_flush(&c->wr, c->w.fd) < 0)
			break;
		struct pollfd pfd = {.fd = c->w.fd, .events = POLLOUT};
		poll(&pfd, 1, 50);
	}
	shutdown(c->w.fd, SHUT_WR);
	deadline = now_ms() + 1000;
	for (;;) {
		int64_t left = deadline - now_ms();
		struct pollfd pfd = {.fd = c->w.fd, .events = POLLIN};
		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			break;
		char junk[4096];
		if (read(c->w.fd, junk, sizeof(junk)) <= 0)
			break;
	}
}

static int listen_vsock(uint32_t port, struct perr *err)
{
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return perr_set(err, -errno, "vsock socket");
	struct sockaddr_vm addr = {
	    .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 16) < 0) {
		int e = -errno;
		close(fd);
		return perr_set(err, e, "vsock listen on port %" PRIu32, port);
	}
	return fd;
}

int server_run(uint32_t port, struct perr *err)
{
	struct server s = {
	    .epfd = -1, .own_pidns_fd = -1, .ready_fd = -1, .next_id = AGENT_INIT_ID + 1};
	s.listen_w = (struct watch){.kind = W_LISTEN, .fd = -1};
	s.sig_w = (struct watch){.kind = W_SIGNAL, .fd = -1};
	int r;

	/* SIGCHLD through a signalfd; the rest PID 1 gets (SIGINT from Ctrl-Alt-Del,
	 * SIGTERM, SIGHUP) must not stop the agent. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	s.own_pidns_fd = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
	if (s.own_pidns_fd < 0) {
		r = perr_set(err, -errno, "open /proc/self/ns/pid");
		goto out;
	}
	s.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s.epfd < 0) {
		r = perr_set(err, -errno, "epoll_create1");
		goto out;
	}
	s.sig_w.fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (s.sig_w.fd < 0) {
		r = perr_set(err, -errno, "signalfd");
		goto out;
	}
	r = listen_vsock(port, err);
	if (r < 0)
		goto out;
	s.listen_w.fd = r;
	watch_set(&s, &s.sig_w, EPOLLIN);
	watch_set(&s, &s.listen_w, EPOLLIN);
	log_info("listening on vsock port %" PRIu32, port);
	announce_ready(&s);

	for (;;) {
		update_interest(&s);
		struct epoll_event evs[32];
		int n = epoll_wait(s.epfd, evs, ARRAY_SIZE(evs), next_timeout(&s));
		if (n < 0 && errno != EINTR) {
			r = perr_set(err, -errno, "epoll_wait");
			goto out;
		}
		for (int i = 0; i < n && !s.shutdown_conn; i++)
			dispatch(&s, evs[i].data.ptr, evs[i].events);
		if (s.shutdown_conn) {
			server_shutdown(&s);
			r = 0;
			goto out;
		}
		reap_children(&s);
		report_exits(&s);
		for (struct conn *c = s.conns; c; c = c->next)
			if (agent_writer_pending(&c->wr) || c->closing)
				conn_flush(&s, c);
		free_dead(&s);
	}
out:
	for (struct conn *c = s.conns; c; c = c->next)
		conn_close(&s, c);
	for (struct proc *p = s.procs; p; p = p->next) {
		watch_close(&s, &p->in);
		watch_close(&s, &p->out);
		watch_close(&s, &p->err);
		if (p->sync_fd >= 0)
			close(p->sync_fd);
		p->dead = true;
	}
	free_dead(&s);
	if (s.ready_fd >= 0)
		close(s.ready_fd);
	watch_close(&s, &s.listen_w);
	watch_close(&s, &s.sig_w);
	if (s.epfd >= 0)
		close(s.epfd);
	if (s.own_pidns_fd >= 0)
		close(s.own_pidns_fd);
	return r;
}
