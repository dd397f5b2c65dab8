/* The stdio/signal/exit relay (runtime/relay.c) against a fake agent on a
 * socketpair: requests in order, stdio both ways with end of file, the exit
 * status, the notify line, errors, and a forwarded signal. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/agent-proto.h"
#include "common/cleanup.h"
#include "runtime/relay.h"
#include "tests/unit/unit.h"
#include "vmm/core/eventloop.h"

/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): clang 14 false positive in unit.h */
UNIT_MAIN("runtime_relay")

/* ---- the fake agent (a child process, blocking I/O) ---- */

struct fake {
	int fd;
	struct agent_reader rd;
	struct agent_writer wr;
};

static void fake_flush(struct fake *f)
{
	while (agent_writer_pending(&f->wr))
		if (agent_writer_flush(&f->wr, f->fd) < 0)
			_exit(90);
}

/* Next frame; messages decoded into *m. */
static int fake_next(struct fake *f, struct agent_frame *fr, struct agent_msg *m)
{
	struct perr err = {0};
	for (;;) {
		int r = agent_reader_next(&f->rd, fr, &err);
		if (r < 0)
			_exit(91);
		if (r > 0) {
			memset(m, 0, sizeof(*m));
			if (fr->type == AGENT_FRAME_MSG &&
			    agent_msg_decode(fr->payload, fr->len, m, &err) < 0)
				_exit(92);
			return 0;
		}
		ssize_t n = agent_reader_fill(&f->rd, f->fd);
		if (n <= 0)
			return -1;
	}
}

static void fake_send(struct fake *f, const struct agent_msg *m)
{
	struct perr err = {0};
	if (agent_writer_msg(&f->wr, m, &err) < 0)
		_exit(93);
	fake_flush(f);
}

static void fake_expect(struct fake *f, enum agent_msg_type type, struct agent_msg *m)
{
	struct agent_frame fr;
	if (fake_next(f, &fr, m) < 0 || fr.type != AGENT_FRAME_MSG || m->type != type)
		_exit(94);
}

enum fake_script { FAKE_ECHO, FAKE_REFUSE, FAKE_SIGNAL, FAKE_RAW };

/* The agent's side: hello, the exec request, then the script. */
static void __attribute__((noreturn)) fake_agent(int fd, enum fake_script script)
{
	struct fake f = {.fd = fd};
	agent_reader_init(&f.rd);
	agent_writer_init(&f.wr);
	struct agent_msg m, reply = {.type = AGENT_MSG_HELLO};
	fake_expect(&f, AGENT_MSG_HELLO, &m);
	agent_msg_free(&m);
	reply.u.hello.version = 1;
	reply.u.hello.agent = "fake";
	fake_send(&f, &reply);
	struct agent_frame req;
	if (fake_next(&f, &req, &m) < 0 || req.type != AGENT_FRAME_MSG || m.type != AGENT_MSG_EXEC)
		_exit(94);
	/* Raw requests reach the agent byte for byte, fields it decodes or not. */
	if (script == FAKE_RAW && !memmem(req.payload, req.len, "\"network\"", 9))
		_exit(99);
	if (m.u.exec.nargs != 1 || strcmp(m.u.exec.args[0], "cat") != 0)
		_exit(95);
	agent_msg_free(&m);
	if (script == FAKE_REFUSE || script == FAKE_RAW) {
		agent_writer_error(&f.wr, "exec: \"cat\": executable file not found in $PATH");
		fake_flush(&f);
		_exit(0);
	}
	struct agent_msg started = {.type = AGENT_MSG_EXEC_STARTED};
	started.u.id = 2;
	fake_send(&f, &started);
	int status = 0;
	if (script == FAKE_ECHO) {
		agent_writer_frame(&f.wr, AGENT_FRAME_STDERR, 2, "err-bytes", 9);
		/* Echo stdin back on stdout until its end of file. */
		for (;;) {
			struct agent_frame fr;
			if (fake_next(&f, &fr, &m) < 0)
				_exit(96);
			if (fr.type != AGENT_FRAME_STDIN || fr.proc != 2)
				continue;
			if (!fr.len)
				break;
			agent_writer_frame(&f.wr, AGENT_FRAME_STDOUT, 2, fr.payload, fr.len);
			fake_flush(&f);
		}
		status = 7;
	} else {
		/* Signal the host process; the relay must forward it as a message. */
		kill(getppid(), SIGUSR1);
		for (;;) {
			struct agent_frame fr;
			if (fake_next(&f, &fr, &m) < 0)
				_exit(97);
			if (fr.type == AGENT_FRAME_MSG && m.type == AGENT_MSG_SIGNAL) {
				if (m.u.signal.id != 2 || m.u.signal.signal != SIGUSR1)
					_exit(98);
				break;
			}
			agent_msg_free(&m);
		}
		status = 128 + SIGUSR1;
	}
	struct agent_msg ex = {.type = AGENT_MSG_EXIT};
	ex.u.exit.id = 2;
	ex.u.exit.status = status;
	fake_send(&f, &ex);
	/* Wait for the host to close. */
	char c;
	while (read(fd, &c, 1) > 0)
		;
	_exit(0);
}

/* ---- the host side ---- */

struct result {
	struct eventloop *loop;
	int status;
	bool done;
	char why[PERR_MSG_MAX + 64];
};

static void on_done(void *opaque, int status, const struct perr *err)
{
	struct result *r = opaque;
	r->status = status;
	r->done = true;
	if (err)
		snprintf(r->why, sizeof(r->why), "%s", err->msg);
	eventloop_stop(r->loop);
}

static ssize_t read_all(int fd, char *buf, size_t size)
{
	size_t n = 0;
	ssize_t r;
	while (n < size - 1 && (r = read(fd, buf + n, size - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = 0;
	return (ssize_t)n;
}

/* Runs the relay with stdin bytes `input` against the fake script. */
static int run_relay(enum fake_script script, const char *input, bool signals, char *out,
		     char *errout, char *notify, struct result *res)
{
	static const char raw[] =
	    "{\"type\":\"exec\",\"process\":{\"args\":[\"cat\"],\"cwd\":\"/\"},"
	    "\"network\":{\"interfaces\":[]}}";
	int sv[2], in[2], o[2], e[2], n[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 || pipe2(in, O_CLOEXEC) ||
	    pipe2(o, O_CLOEXEC) || pipe2(e, O_CLOEXEC) || pipe2(n, O_CLOEXEC))
		return -1;
	pid_t child = fork();
	if (child == 0) {
		/* Only the agent's end: a stray pipe end would hide an end of file. */
		int mine[] = {sv[0], in[0], in[1], o[0], o[1], e[0], e[1], n[0], n[1]};
		for (size_t i = 0; i < ARRAY_SIZE(mine); i++)
			close(mine[i]);
		fake_agent(sv[1], script);
	}
	close(sv[1]);
	if (write(in[1], input, strlen(input)) < 0)
		return -1;
	close(in[1]);
	char *args[] = {"cat", NULL};
	struct agent_msg req = {.type = AGENT_MSG_EXEC};
	req.u.exec.args = args;
	req.u.exec.nargs = 1;
	req.u.exec.cwd = "/";
	memset(res, 0, sizeof(*res));
	res->status = -2;
	eventloop_create(&res->loop);
	struct relay_config cfg = {.conn_fd = sv[0],
				   .port = AGENT_VSOCK_PORT,
				   .request = &req,
				   .request_raw = script == FAKE_RAW ? raw : NULL,
				   .request_raw_len = sizeof(raw) - 1,
				   .notify_fd = n[1],
				   .in_fd = in[0],
				   .out_fd = o[1],
				   .err_fd = e[1],
				   .forward_signals = signals,
				   .done = on_done,
				   .opaque = res};
	struct relay *r = NULL;
	struct perr err = {0};
	int rc = relay_start(res->loop, &cfg, &r, &err);
	if (rc == 0)
		rc = eventloop_run(res->loop);
	relay_destroy(r); /* closes the connection and the notify fd */
	eventloop_destroy(res->loop);
	close(in[0]);
	close(o[1]);
	close(e[1]);
	read_all(o[0], out, 4096);
	read_all(e[0], errout, 4096);
	read_all(n[0], notify, 4096);
	close(o[0]);
	close(e[0]);
	close(n[0]);
	int wst;
	waitpid(child, &wst, 0);
	if (!WIFEXITED(wst) || WEXITSTATUS(wst) != 0)
		snprintf(res->why, sizeof(res->why), "fake agent exited %d", WEXITSTATUS(wst));
	return rc;
}

UNIT_TEST(test_relay_stdio_both_ways_and_exit_status)
{
	static char out[4096], errout[4096], notify[4096];
	struct result res;
	UNIT_ASSERT_EQ(
	    run_relay(FAKE_ECHO, "hello through stdin\n", false, out, errout, notify, &res), 0);
	UNIT_ASSERT_STREQ(res.why, "");
	UNIT_ASSERT(res.done);
	UNIT_ASSERT_EQ(res.status, 7);
	UNIT_ASSERT_STREQ(out, "hello through stdin\n");
	UNIT_ASSERT_STREQ(errout, "err-bytes");
	UNIT_ASSERT_STREQ(notify, "ok\n");
}

UNIT_TEST(test_relay_reports_agent_error_on_notify_fd)
{
	static char out[4096], errout[4096], notify[4096];
	struct result res;
	UNIT_ASSERT_EQ(run_relay(FAKE_REFUSE, "", false, out, errout, notify, &res), 0);
	UNIT_ASSERT(res.done);
	UNIT_ASSERT_EQ(res.status, -1);
	UNIT_ASSERT_CONTAINS(res.why, "executable file not found");
	UNIT_ASSERT_STREQ(notify, "error: exec: \"cat\": executable file not found in $PATH\n");
}

UNIT_TEST(test_relay_sends_raw_request_unchanged)
{
	static char out[4096], errout[4096], notify[4096];
	struct result res;
	UNIT_ASSERT_EQ(run_relay(FAKE_RAW, "", false, out, errout, notify, &res), 0);
	UNIT_ASSERT_CONTAINS(res.why, "executable file not found"); /* not "fake agent exited 99" */
	UNIT_ASSERT_EQ(res.status, -1);
}

UNIT_TEST(test_relay_forwards_signals_as_messages)
{
	sigset_t set, old;
	relay_forwarded_signals(&set);
	sigprocmask(SIG_BLOCK, &set, &old);
	static char out[4096], errout[4096], notify[4096];
	struct result res;
	int rc = run_relay(FAKE_SIGNAL, "", true, out, errout, notify, &res);
	sigprocmask(SIG_SETMASK, &old, NULL);
	UNIT_ASSERT_EQ(rc, 0);
	UNIT_ASSERT_STREQ(res.why, "");
	UNIT_ASSERT_EQ(res.status, 128 + SIGUSR1);
}

/* A relay that connects through the hybrid socket at path, no stdio. */
static struct relay_config uds_relay_config(const char *path, const struct agent_msg *req,
					    struct result *res)
{
	return (struct relay_config){.uds_path = path,
				     .port = AGENT_VSOCK_PORT,
				     .conn_fd = -1,
				     .request = req,
				     .notify_fd = -1,
				     .in_fd = -1,
				     .out_fd = -1,
				     .err_fd = -1,
				     .done = on_done,
				     .opaque = res};
}

UNIT_TEST(test_relay_fails_when_agent_never_listens)
{
	char dir[] = "/tmp/petrel-relay.XXXXXX";
	UNIT_ASSERT(mkdtemp(dir));
	char path[64];
	snprintf(path, sizeof(path), "%s/agent.sock", dir);
	char *args[] = {"cat", NULL};
	struct agent_msg req = {.type = AGENT_MSG_EXEC};
	req.u.exec.args = args;
	req.u.exec.nargs = 1;
	struct result res = {.status = -2};
	eventloop_create(&res.loop);
	struct relay_config cfg = uds_relay_config(path, &req, &res);
	cfg.connect_timeout_ms = 300;
	struct relay *r = NULL;
	struct perr err = {0};
	UNIT_ASSERT_EQ(relay_start(res.loop, &cfg, &r, &err), 0);
	UNIT_ASSERT_EQ(eventloop_run(res.loop), 0);
	relay_destroy(r);
	eventloop_destroy(res.loop);
	rmdir(dir);
	UNIT_ASSERT_EQ(res.status, -1);
	UNIT_ASSERT_CONTAINS(res.why, "the agent did not answer within");
	UNIT_ASSERT_CONTAINS(res.why, "agent.sock");
}

/* The fake hybrid vsock server: refuses the first CONNECT (the agent is not
 * listening yet), announces the agent on port 1025, then answers the next
 * CONNECT as the agent, which refuses the exec. */
static void __attribute__((noreturn)) fake_hybrid(int srv, const char *uds_path)
{
	char line[64];
	int c = accept4(srv, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0 || read(c, line, sizeof(line)) <= 0)
		_exit(80);
	close(c);
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s_%u", uds_path, AGENT_READY_PORT);
	int a = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (a < 0 || connect(a, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		_exit(81);
	close(a);
	c = accept4(srv, NULL, NULL, SOCK_CLOEXEC);
	ssize_t n = c < 0 ? -1 : read(c, line, sizeof(line) - 1);
	if (n <= 0 || strncmp(line, "CONNECT 1024\n", 13) != 0)
		_exit(82);
	if (write(c, "OK 1024\n", 8) != 8)
		_exit(83);
	fake_agent(c, FAKE_REFUSE);
}

/* With the retry timer out of the way, only the announcement can bring the
 * second attempt: the relay reaches the agent and reports its refusal. */
UNIT_TEST(test_relay_connects_when_the_agent_announces_itself)
{
	char dir[] = "/tmp/petrel-relay.XXXXXX";
	UNIT_ASSERT(mkdtemp(dir));
	char path[64], ready[80];
	snprintf(path, sizeof(path), "%s/agent.sock", dir);
	snprintf(ready, sizeof(ready), "%s_%u", path, AGENT_READY_PORT);
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	int srv = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	UNIT_ASSERT(srv >= 0);
	UNIT_ASSERT_EQ(bind(srv, (struct sockaddr *)&addr, sizeof(addr)), 0);
	UNIT_ASSERT_EQ(listen(srv, 4), 0);
	char *args[] = {"cat", NULL};
	struct agent_msg req = {.type = AGENT_MSG_EXEC};
	req.u.exec.args = args;
	req.u.exec.nargs = 1;
	req.u.exec.cwd = "/";
	struct result res = {.status = -2};
	eventloop_create(&res.loop);
	struct relay_config cfg = uds_relay_config(path, &req, &res);
	cfg.await_ready = true;
	cfg.retry_ms = 600 * 1000;
	cfg.connect_timeout_ms = 20 * 1000;
	struct relay *r = NULL;
	struct perr err = {0};
	UNIT_ASSERT_EQ(relay_start(res.loop, &cfg, &r, &err), 0);
	pid_t child = fork();
	if (child == 0)
		fake_hybrid(srv, path);
	close(srv);
	UNIT_ASSERT_EQ(eventloop_run(res.loop), 0);
	relay_destroy(r);
	eventloop_destroy(res.loop);
	int wst;
	waitpid(child, &wst, 0);
	/* The announcement socket is gone with the relay. */
	UNIT_ASSERT(access(ready, F_OK) < 0);
	unlink(path);
	rmdir(dir);
	UNIT_ASSERT(WIFEXITED(wst));
	UNIT_ASSERT_EQ(WEXITSTATUS(wst), 0);
	UNIT_ASSERT_EQ(res.status, -1);
	UNIT_ASSERT_CONTAINS(res.why, "executable file not found");
}
