/*
 * agent-client: drives petrel-agent from the host, for tests and by hand.
 *
 *   agent-client [--cid N | --uds PATH] [--port P] [--wait SECS] [--timeout SECS] COMMAND ...
 *
 *   --wait: keep trying to connect this long (the guest may be booting);
 *   --timeout: longest wait for a reply to a request (default 60 s).
 *
 *   hello                      handshake; prints the agent's name and version
 *   run [OPTIONS] -- ARGS      create and start a container, relay its stdio,
 *                              exit with its status (N, or 128+signal)
 *   exec [OPTIONS] -- ARGS     run a process in the running container, likewise
 *   kill [--all] [--id N] SIG  send a signal (number or name) to process N (default 1)
 *   resize [--id N] ROWSxCOLS  resize a process's terminal
 *   shutdown                   kill everything, sync, reboot the VM
 *
 * Process OPTIONS (run and exec): --tty, --size ROWSxCOLS, --env K=V, --cwd DIR,
 *   --user UID:GID[:G1,G2…], --umask OCTAL, --cap NAME (all five sets; repeat),
 *   --no-caps (empty sets), --nnp, --rlimit TYPE=SOFT:HARD, --oom-score-adj N,
 *   --resize ROWSxCOLS (sent once started).
 * Container OPTIONS (run): --device DEV (/dev/vda), --fstype T (ext4),
 *   --readonly-root, --hostname H, --ns LIST (mount,pid,uts,ipc),
 *   --mount DEST:TYPE[:OPT,OPT…], --mask PATH, --ro PATH, --sysctl KEY=VALUE.
 *
 * Exit status: the process's, or 125 when the client or the agent failed
 * (the agent's error message goes to stderr).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "common/agent-proto.h"
#include "common/cleanup.h"

#define EXIT_CLIENT 125

struct opts {
	uint32_t cid;
	const char *uds;
	uint32_t port;
	int wait_s;
	int reply_timeout_s;
	uint16_t resize_rows, resize_cols;
};

static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "agent-client: ");
	va_start(ap, fmt);
	/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): clang 14 false positive */
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(EXIT_CLIENT);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Retries until the guest's agent listens (the VM may still be booting). */
static int connect_agent(const struct opts *o)
{
	int64_t deadline = now_ms() + (int64_t)o->wait_s * 1000;
	struct perr err = {0};
	for (;;) {
		int fd = o->uds ? agent_connect_hybrid(o->uds, o->port, &err)
				: agent_connect_vsock(o->cid, o->port, &err);
		if (fd >= 0)
			return fd;
		if (now_ms() >= deadline)
			die("%s", err.msg);
		usleep(100 * 1000);
	}
}

/* ---- a blocking conversation over the non-blocking helpers ---- */

struct session {
	int fd;
	struct agent_reader rd;
	struct agent_writer wr;
	uint32_t id; /* our process, 0 until known */
	bool stdin_open;
	bool terminal;
	int status; /* -1 until its exit arrives */
	char agent_name[128];
	int reply_timeout_s;
};

static void send_msg(struct session *s, const struct agent_msg *m)
{
	struct perr err = {0};
	if (agent_writer_msg(&s->wr, m, &err) < 0)
		die("%s", err.msg);
}

static void flush_all(struct session *s)
{
	while (agent_writer_pending(&s->wr)) {
		if (agent_writer_flush(&s->wr, s->fd) < 0)
			die("write to the agent: %s", strerror(errno));
		if (agent_writer_pending(&s->wr)) {
			struct pollfd p = {.fd = s->fd, .events = POLLOUT};
			poll(&p, 1, 1000);
		}
	}
}

static void write_all(int fd, const uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return; /* our stdout went away: keep going for the exit status */
		buf += n;
		len -= (size_t)n;
	}
}

/*
 * Handles one frame. Returns the message type when it is a message the caller
 * waits for (a reply), or -1 for frames consumed here (stdio, exit).
 * *reply gets the decoded message.
 */
static int handle_frame(struct session *s, const struct agent_frame *f, struct agent_msg *reply)
{
	if (f->type == AGENT_FRAME_STDOUT || f->type == AGENT_FRAME_STDERR) {
		if (f->proc == s->id && f->len)
			write_all(f->type == AGENT_FRAME_STDOUT ? STDOUT_FILENO : STDERR_FILENO,
				  f->payload, f->len);
		return -1;
	}
	if (f->type != AGENT_FRAME_MSG)
		die("unexpected frame type %u from the agent", f->type);
	struct perr err = {0};
	if (agent_msg_decode(f->payload, f->len, reply, &err) < 0)
		die("bad message from the agent: %s", err.msg);
	if (reply->type == AGENT_MSG_EXIT) {
		if (reply->u.exit.id == s->id)
			s->status = reply->u.exit.status;
		agent_msg_free(reply);
		return -1;
	}
	if (reply->type == AGENT_MSG_ERROR) {
		fprintf(stderr, "agent-client: agent: %s\n", reply->u.error.message);
		exit(EXIT_CLIENT);
	}
	return reply->type;
}

/* One round of I/O: frames from the agent, our stdin to the process. Returns
 * a reply's type (with *reply filled) or -1. */
static int pump(struct session *s, struct agent_msg *reply, int timeout_ms)
{
	struct agent_frame f;
	struct perr err = {0};
	for (;;) {
		int r = agent_reader_next(&s->rd, &f, &err);
		if (r < 0)
			die("from the agent: %s", err.msg);
		if (r == 0)
			break;
		int t = handle_frame(s, &f, reply);
		if (t >= 0)
			return t;
	}
	flush_all(s);
	struct pollfd p[2] = {{.fd = s->fd, .events = POLLIN},
			      {.fd = STDIN_FILENO, .events = POLLIN}};
	int n = s->stdin_open && s->id ? 2 : 1;
	int pr = poll(p, (nfds_t)n, timeout_ms);
	if (pr < 0 && errno != EINTR)
		die("poll: %s", strerror(errno));
	if (pr <= 0)
		return -1;
	if (p[0].revents) {
		ssize_t got = agent_reader_fill(&s->rd, s->fd);
		if (got == 0)
			die("the agent closed the connection%s",
			    agent_reader_pending(&s->rd) ? " in the middle of a frame" : "");
		if (got < 0 && got != -EAGAIN && got != -EINTR)
			die("read from the agent: %s", strerror((int)-got));
	}
	if (n == 2 && p[1].revents) {
		uint8_t buf[AGENT_STDIO_CHUNK];
		ssize_t got = read(STDIN_FILENO, buf, sizeof(buf));
		if (got > 0) {
			agent_writer_frame(&s->wr, AGENT_FRAME_STDIN, s->id, buf, (size_t)got);
		} else if (got == 0 || errno != EINTR) {
			agent_writer_frame(&s->wr, AGENT_FRAME_STDIN, s->id, NULL, 0);
			s->stdin_open = false;
		}
	}
	return -1;
}

/* Sends a request and waits for its reply, relaying stdio meanwhile. */
static void request(struct session *s, const struct agent_msg *m, enum agent_msg_type want,
		    struct agent_msg *reply)
{
	int64_t deadline = now_ms() + (int64_t)s->reply_timeout_s * 1000;
	send_msg(s, m);
	for (;;) {
		int t = pump(s, reply, 1000);
		if (t < 0 && now_ms() > deadline)
			die("no %s from the agent within %d s", agent_msg_type_name(want),
			    s->reply_timeout_s);
		if (t < 0)
			continue;
		if (t == (int)want)
			return;
		die("expected %s from the agent, got %s", agent_msg_type_name(want),
		    agent_msg_type_name((enum agent_msg_type)t));
	}
}

static void session_open(struct session *s, const struct opts *o)
{
	memset(s, 0, sizeof(*s));
	s->fd = connect_agent(o);
	s->status = -1;
	s->reply_timeout_s = o->reply_timeout_s;
	agent_reader_init(&s->rd);
	agent_writer_init(&s->wr);
	struct agent_msg hello = {.type = AGENT_MSG_HELLO}, reply;
	hello.u.hello.version = AGENT_PROTO_VERSION;
	hello.u.hello.agent = "agent-client";
	request(s, &hello, AGENT_MSG_HELLO, &reply);
	if (reply.u.hello.version != AGENT_PROTO_VERSION)
		die("agent speaks protocol version %" PRIu32, reply.u.hello.version);
	snprintf(s->agent_name, sizeof(s->agent_name), "%s",
		 reply.u.hello.agent ? reply.u.hello.agent : "unknown agent");
	agent_msg_free(&reply);
}

static struct termios saved_tio;
static bool tio_saved;

static void restore_tty(void)
{
	if (tio_saved)
		tcsetattr(STDIN_FILENO, TCSADRAIN, &saved_tio);
}

static volatile sig_atomic_t winch;

static void on_winch(int sig)
{
	(void)sig;
	winch = 1;
}

static void send_resize(struct session *s, uint16_t rows, uint16_t cols)
{
	struct agent_msg m = {.type = AGENT_MSG_RESIZE}, reply;
	m.u.resize.id = s->id;
	m.u.resize.rows = rows;
	m.u.resize.cols = cols;
	request(s, &m, AGENT_MSG_OK, &reply);
	agent_msg_free(&reply);
}

/* Relays until the process's exit arrives; returns its status. */
static int relay_until_exit(struct session *s, const struct opts *o)
{
	s->stdin_open = true;
	if (s->terminal && isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved_tio) == 0) {
		struct termios raw = saved_tio;
		cfmakeraw(&raw);
		tio_saved = tcsetattr(STDIN_FILENO, TCSADRAIN, &raw) == 0;
		atexit(restore_tty);
		signal(SIGWINCH, on_winch);
	}
	if (o->resize_rows || o->resize_cols)
		send_resize(s, o->resize_rows, o->resize_cols);
	while (s->status < 0) {
		struct agent_msg reply;
		if (winch) {
			struct winsize ws;
			winch = 0;
			if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0)
				send_resize(s, ws.ws_row, ws.ws_col);
		}
		int t = pump(s, &reply, 200);
		if (t >= 0)
			die("unexpected %s from the agent",
			    agent_msg_type_name((enum agent_msg_type)t));
	}
	return s->status;
}

/* ---- options ---- */

static char **strv_push(char **v, size_t *n, const char *s)
{
	char **nv = realloc(v, (*n + 2) * sizeof(*v));
	if (!nv || !(nv[*n] = strdup(s)))
		die("out of memory");
	(*n)++;
	nv[*n] = NULL;
	return nv;
}

static unsigned long parse_num(const char *s, int base, const char *what)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, base);
	if (errno || *end || end == s)
		die("%s: \"%s\" is not a number", what, s);
	return v;
}

static void parse_size(const char *s, uint16_t *rows, uint16_t *cols)
{
	char *end;
	errno = 0;
	unsigned long r = strtoul(s, &end, 10);
	if (errno || end == s || *end != 'x')
		die("%s: expected ROWSxCOLS", s);
	const char *c = end + 1;
	unsigned long cl = strtoul(c, &end, 10);
	if (errno || end == c || *end || r > 65535 || cl > 65535)
		die("%s: expected ROWSxCOLS", s);
	*rows = (uint16_t)r;
	*cols = (uint16_t)cl;
}

/* Process options shared by run and exec; returns true when argv[*i] was one. */
static bool parse_process_opt(int argc, char **argv, int *i, struct agent_process *p,
			      struct opts *o)
{
	const char *a = argv[*i];
	const char *v = *i + 1 < argc ? argv[*i + 1] : NULL;
	if (strcmp(a, "--tty") == 0) {
		p->terminal = true;
		return true;
	}
	if (strcmp(a, "--nnp") == 0) {
		p->no_new_privileges = true;
		return true;
	}
	if (strcmp(a, "--no-caps") == 0) {
		p->has_caps = true;
		return true;
	}
	bool takes = !strcmp(a, "--size") || !strcmp(a, "--env") || !strcmp(a, "--cwd") ||
		     !strcmp(a, "--user") || !strcmp(a, "--umask") || !strcmp(a, "--cap") ||
		     !strcmp(a, "--rlimit") || !strcmp(a, "--oom-score-adj") ||
		     !strcmp(a, "--resize");
	if (!takes)
		return false;
	if (!v)
		die("%s needs a value", a);
	(*i)++;
	if (!strcmp(a, "--size")) {
		parse_size(v, &p->rows, &p->cols);
	} else if (!strcmp(a, "--resize")) {
		parse_size(v, &o->resize_rows, &o->resize_cols);
	} else if (!strcmp(a, "--env")) {
		p->env = strv_push(p->env, &p->nenv, v);
	} else if (!strcmp(a, "--cwd")) {
		free(p->cwd);
		p->cwd = strdup(v);
	} else if (!strcmp(a, "--user")) {
		char *copy = strdup(v), *save = NULL;
		char *uid = strtok_r(copy, ":", &save), *gid = strtok_r(NULL, ":", &save);
		char *groups = strtok_r(NULL, ":", &save);
		if (!uid || !gid)
			die("--user: expected UID:GID[:G1,G2]");
		p->uid = (uint32_t)parse_num(uid, 10, "--user");
		p->gid = (uint32_t)parse_num(gid, 10, "--user");
		for (char *g = groups ? strtok_r(groups, ",", &save) : NULL; g;
		     g = strtok_r(NULL, ",", &save)) {
			p->gids = realloc(p->gids, (p->ngids + 1) * sizeof(*p->gids));
			if (!p->gids)
				die("out of memory");
			p->gids[p->ngids++] = (uint32_t)parse_num(g, 10, "--user");
		}
		free(copy);
	} else if (!strcmp(a, "--umask")) {
		p->has_umask = true;
		p->umask = (uint32_t)parse_num(v, 8, "--umask");
	} else if (!strcmp(a, "--cap")) {
		int cap = agent_cap_from_name(v);
		if (cap < 0)
			die("--cap: unknown capability %s", v);
		p->has_caps = true;
		uint64_t bit = 1ull << cap;
		p->cap_bounding |= bit;
		p->cap_effective |= bit;
		p->cap_permitted |= bit;
		p->cap_inheritable |= bit;
		p->cap_ambient |= bit;
	} else if (!strcmp(a, "--rlimit")) {
		char name[64];
		const char *eq = strchr(v, '='), *colon = eq ? strchr(eq, ':') : NULL;
		if (!eq || !colon || (size_t)(eq - v) >= sizeof(name))
			die("--rlimit: expected TYPE=SOFT:HARD");
		snprintf(name, sizeof(name), "%.*s", (int)(eq - v), v);
		char *soft_s = strndup(eq + 1, (size_t)(colon - eq - 1));
		if (!soft_s)
			die("out of memory");
		uint64_t soft = parse_num(soft_s, 10, "--rlimit"),
			 hard = parse_num(colon + 1, 10, "--rlimit");
		free(soft_s);
		int res = agent_rlimit_from_name(name);
		if (res < 0)
			die("--rlimit: unknown %s", name);
		p->rlimits = realloc(p->rlimits, (p->nrlimits + 1) * sizeof(*p->rlimits));
		if (!p->rlimits)
			die("out of memory");
		p->rlimits[p->nrlimits++] = (struct agent_rlimit){res, soft, hard};
	} else if (!strcmp(a, "--oom-score-adj")) {
		p->has_oom_score_adj = true;
		char *end;
		long adj = strtol(v, &end, 10);
		if (*end || end == v)
			die("--oom-score-adj: \"%s\" is not a number", v);
		p->oom_score_adj = (int)adj;
	}
	return true;
}

static void parse_args_tail(int argc, char **argv, int i, struct agent_process *p)
{
	if (i >= argc)
		die("no command given (use -- ARGS)");
	for (; i < argc; i++)
		p->args = strv_push(p->args, &p->nargs, argv[i]);
	if (!p->env) {
		p->env =
		    strv_push(p->env, &p->nenv,
			      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
		if (p->terminal)
			p->env = strv_push(p->env, &p->nenv, "TERM=xterm");
	}
	if (!p->cwd)
		p->cwd = strdup("/");
}

static unsigned parse_namespaces(const char *list)
{
	unsigned ns = 0;
	char *copy = strdup(list), *save = NULL;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (!strcmp(t, "mount"))
			ns |= AGENT_NS_MOUNT;
		else if (!strcmp(t, "pid"))
			ns |= AGENT_NS_PID;
		else if (!strcmp(t, "uts"))
			ns |= AGENT_NS_UTS;
		else if (!strcmp(t, "ipc"))
			ns |= AGENT_NS_IPC;
		else if (!strcmp(t, "cgroup"))
			ns |= AGENT_NS_CGROUP;
		else
			die("--ns: unknown namespace %s", t);
	}
	free(copy);
	return ns;
}

static int cmd_run(struct opts *o, int argc, char **argv)
{
	struct agent_msg m = {.type = AGENT_MSG_CREATE}, reply;
	struct agent_create *c = &m.u.create;
	c->root_device = "/dev/vda";
	c->root_fstype = "ext4";
	c->namespaces = AGENT_NS_MOUNT | AGENT_NS_PID | AGENT_NS_UTS | AGENT_NS_IPC;
	int i;
	for (i = 0; i < argc && strcmp(argv[i], "--") != 0; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (parse_process_opt(argc, argv, &i, &c->process, o))
			continue;
		if (!strcmp(a, "--readonly-root")) {
			c->root_readonly = true;
			continue;
		}
		if (!v)
			die("unknown option or missing value: %s", a);
		i++;
		if (!strcmp(a, "--device")) {
			c->root_device = (char *)v;
		} else if (!strcmp(a, "--fstype")) {
			c->root_fstype = (char *)v;
		} else if (!strcmp(a, "--hostname")) {
			c->hostname = (char *)v;
		} else if (!strcmp(a, "--ns")) {
			c->namespaces = parse_namespaces(v);
		} else if (!strcmp(a, "--mask")) {
			c->masked_paths = strv_push(c->masked_paths, &c->nmasked, v);
		} else if (!strcmp(a, "--ro")) {
			c->readonly_paths = strv_push(c->readonly_paths, &c->nreadonly, v);
		} else if (!strcmp(a, "--sysctl")) {
			const char *eq = strchr(v, '=');
			if (!eq)
				die("--sysctl: expected KEY=VALUE");
			c->sysctl = realloc(c->sysctl, (c->nsysctl + 1) * sizeof(*c->sysctl));
			if (!c->sysctl)
				die("out of memory");
			c->sysctl[c->nsysctl].key = strndup(v, (size_t)(eq - v));
			c->sysctl[c->nsysctl++].value = strdup(eq + 1);
		} else if (!strcmp(a, "--mount")) {
			/* DEST:TYPE[:OPT,OPT] */
			char *copy = strdup(v), *save = NULL;
			if (!copy)
				die("out of memory");
			char *dest = strtok_r(copy, ":", &save), *type = strtok_r(NULL, ":", &save);
			char *optlist = strtok_r(NULL, ":", &save);
			if (!dest || !type)
				die("--mount: expected DEST:TYPE[:OPTIONS]");
			c->mounts = realloc(c->mounts, (c->nmounts + 1) * sizeof(*c->mounts));
			if (!c->mounts)
				die("out of memory");
			struct agent_mount *mt = &c->mounts[c->nmounts++];
			memset(mt, 0, sizeof(*mt));
			mt->destination = strdup(dest);
			mt->type = strdup(type);
			mt->source = mt->type;
			for (char *t = optlist ? strtok_r(optlist, ",", &save) : NULL; t;
			     t = strtok_r(NULL, ",", &save))
				mt->options = strv_push(mt->options, &mt->noptions, t);
			free(copy);
		} else {
			die("unknown option %s", a);
		}
	}
	parse_args_tail(argc, argv, i + 1, &c->process);

	struct session s;
	session_open(&s, o);
	s.terminal = c->process.terminal;
	request(&s, &m, AGENT_MSG_CREATED, &reply);
	s.id = reply.u.id;
	agent_msg_free(&reply);
	struct agent_msg start = {.type = AGENT_MSG_START};
	request(&s, &start, AGENT_MSG_STARTED, &reply);
	agent_msg_free(&reply);
	return relay_until_exit(&s, o);
}

static int cmd_exec(struct opts *o, int argc, char **argv)
{
	struct agent_msg m = {.type = AGENT_MSG_EXEC}, reply;
	int i;
	for (i = 0; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (!parse_process_opt(argc, argv, &i, &m.u.exec, o))
			die("unknown option %s", argv[i]);
	parse_args_tail(argc, argv, i + 1, &m.u.exec);
	struct session s;
	session_open(&s, o);
	s.terminal = m.u.exec.terminal;
	request(&s, &m, AGENT_MSG_EXEC_STARTED, &reply);
	s.id = reply.u.id;
	agent_msg_free(&reply);
	return relay_until_exit(&s, o);
}

static int signal_number(const char *s)
{
	static const struct {
		const char *name;
		int sig;
	} names[] = {{"HUP", SIGHUP},	{"INT", SIGINT},    {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
		     {"USR1", SIGUSR1}, {"USR2", SIGUSR2},  {"TERM", SIGTERM}, {"CONT", SIGCONT},
		     {"STOP", SIGSTOP}, {"WINCH", SIGWINCH}};
	if (strncmp(s, "SIG", 3) == 0)
		s += 3;
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (strcmp(names[i].name, s) == 0)
			return names[i].sig;
	return (int)parse_num(s, 10, "signal");
}

static int cmd_kill(struct opts *o, int argc, char **argv)
{
	struct agent_msg m = {.type = AGENT_MSG_SIGNAL}, reply;
	m.u.signal.id = AGENT_INIT_ID;
	int i;
	for (i = 0; i < argc - 1; i++) {
		if (!strcmp(argv[i], "--all"))
			m.u.signal.all = true;
		else if (!strcmp(argv[i], "--id") && i + 2 < argc)
			m.u.signal.id = (uint32_t)parse_num(argv[++i], 10, "--id");
		else
			die("kill: unknown option %s", argv[i]);
	}
	if (i != argc - 1)
		die("kill: which signal?");
	m.u.signal.signal = signal_number(argv[i]);
	struct session s;
	session_open(&s, o);
	request(&s, &m, AGENT_MSG_OK, &reply);
	agent_msg_free(&reply);
	return 0;
}

static int cmd_resize(struct opts *o, int argc, char **argv)
{
	struct session s;
	uint32_t id = AGENT_INIT_ID;
	int i = 0;
	if (argc >= 2 && !strcmp(argv[0], "--id")) {
		id = (uint32_t)parse_num(argv[1], 10, "--id");
		i = 2;
	}
	if (i != argc - 1)
		die("resize: expected [--id N] ROWSxCOLS");
	uint16_t rows, cols;
	parse_size(argv[i], &rows, &cols);
	session_open(&s, o);
	s.id = id;
	send_resize(&s, rows, cols);
	return 0;
}

static int cmd_shutdown(struct opts *o)
{
	struct session s;
	struct agent_msg m = {.type = AGENT_MSG_SHUTDOWN}, reply;
	session_open(&s, o);
	request(&s, &m, AGENT_MSG_OK, &reply);
	agent_msg_free(&reply);
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o = {.cid = 3, .port = AGENT_VSOCK_PORT, .wait_s = 0, .reply_timeout_s = 60};
	int i;
	signal(SIGPIPE, SIG_IGN);
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (i + 1 >= argc)
			die("%s needs a value", a);
		if (!strcmp(a, "--cid"))
			o.cid = (uint32_t)parse_num(argv[++i], 10, "--cid");
		else if (!strcmp(a, "--uds"))
			o.uds = argv[++i];
		else if (!strcmp(a, "--port"))
			o.port = (uint32_t)parse_num(argv[++i], 10, "--port");
		else if (!strcmp(a, "--wait"))
			o.wait_s = (int)parse_num(argv[++i], 10, "--wait");
		else if (!strcmp(a, "--timeout"))
			o.reply_timeout_s = (int)parse_num(argv[++i], 10, "--timeout");
		else
			die("unknown option %s", a);
	}
	if (i >= argc)
		die("usage: agent-client [--cid N | --uds PATH] [--port P] [--wait S] "
		    "hello|run|exec|kill|resize|shutdown ...");
	const char *cmd = argv[i++];
	if (!strcmp(cmd, "hello")) {
		struct session s;
		session_open(&s, &o);
		printf("%s, protocol %d\n", s.agent_name, AGENT_PROTO_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "run"))
		return cmd_run(&o, argc - i, argv + i);
	if (!strcmp(cmd, "exec"))
		return cmd_exec(&o, argc - i, argv + i);
	if (!strcmp(cmd, "kill"))
		return cmd_kill(&o, argc - i, argv + i);
	if (!strcmp(cmd, "resize"))
		return cmd_resize(&o, argc - i, argv + i);
	if (!strcmp(cmd, "shutdown"))
		return cmd_shutdown(&o);
	die("unknown command %s", cmd);
}
