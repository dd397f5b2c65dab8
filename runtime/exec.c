/*
 * petrel exec (lifecycle.h): a host process stands for the exec'd process.
 * With --detach it is a forked child of petrel (its pid goes to --pid-file),
 * otherwise petrel itself; either runs the relay in exec mode (relay.h) until
 * the process exits, and exits with its status.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "runtime/console.h"
#include "runtime/container.h"
#include "runtime/lifecycle.h"
#include "runtime/relay.h"
#include "runtime/spec.h"
#include "vmm/core/eventloop.h"

#define EXEC_CONNECT_TIMEOUT_MS (30 * 1000)

/* A --process file is a runtime-spec process object: parsed by oci/ inside a
 * minimal config so that it gets every check config.json's process gets. */
static int exec_process_from_file(const char *path, struct agent_process *out, struct perr *err)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return perr_set(err, -errno, "--process %s", path);
	size_t cap = 65536, n = 0;
	autofree char *body = malloc(cap);
	if (!body) {
		fclose(f);
		return perr_set(err, -ENOMEM, "--process");
	}
	size_t r;
	while ((r = fread(body + n, 1, cap - n, f)) > 0) {
		n += r;
		if (n == cap) {
			if (cap >= (16u << 20)) {
				fclose(f);
				return perr_setx(err, -EFBIG, "--process %s: too large", path);
			}
			char *nb = realloc(body, cap * 2);
			if (!nb) {
				fclose(f);
				return perr_set(err, -ENOMEM, "--process");
			}
			body = nb;
			cap *= 2;
		}
	}
	fclose(f);
	static const char head[] =
	    "{\"ociVersion\":\"1.0.0\",\"root\":{\"path\":\"rootfs\"},\"process\":";
	char *doc = malloc(sizeof(head) + n + 2);
	if (!doc)
		return perr_set(err, -ENOMEM, "--process");
	memcpy(doc, head, sizeof(head) - 1);
	memcpy(doc + sizeof(head) - 1, body, n);
	memcpy(doc + sizeof(head) - 1 + n, "}", 2);
	struct oci_config *cfg = NULL;
	int rc = oci_config_parse(doc, sizeof(head) - 1 + n + 1, &cfg, err);
	free(doc);
	if (rc < 0) {
		perr_wrap(err, "--process %s", path);
		oci_config_free(cfg);
		return rc;
	}
	rc = spec_process_to_agent(&cfg->process, out, err);
	oci_config_free(cfg);
	return rc;
}

static int strv_append(char ***v, size_t *n, const char *s)
{
	char **nv = realloc(*v, (*n + 2) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	*v = nv;
	if (!(nv[*n] = strdup(s)))
		return -ENOMEM;
	nv[++*n] = NULL;
	return 0;
}

/* Without --process: the container's own process (env, user, capabilities...)
 * with args, env, cwd, user and tty from the command line, as runc does. */
static int exec_process_from_flags(const struct petrel_exec_opts *o, const struct oci_state *st,
				   struct agent_process *out, struct perr *err)
{
	struct oci_config *cfg = NULL;
	int rc = oci_config_load(st->bundle, &cfg, err);
	if (rc < 0)
		return rc;
	rc = spec_process_to_agent(&cfg->process, out, err);
	oci_config_free(cfg);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < out->nargs; i++)
		free(out->args[i]);
	free(out->args);
	out->args = NULL;
	out->nargs = 0;
	for (size_t i = 0; i < o->n_args; i++)
		if (strv_append(&out->args, &out->nargs, o->args[i]) < 0)
			return perr_set(err, -ENOMEM, "exec");
	for (size_t i = 0; i < o->n_env; i++) {
		if (!strchr(o->env[i], '='))
			return perr_setx(err, -EINVAL, "--env \"%s\": expected NAME=VALUE",
					 o->env[i]);
		if (strv_append(&out->env, &out->nenv, o->env[i]) < 0)
			return perr_set(err, -ENOMEM, "exec");
	}
	if (o->cwd) {
		if (o->cwd[0] != '/')
			return perr_setx(err, -EINVAL, "--cwd \"%s\" is not an absolute path",
					 o->cwd);
		free(out->cwd);
		out->cwd = strdup(o->cwd);
	}
	if (o->user) {
		char *end;
		unsigned long uid = strtoul(o->user, &end, 10), gid = out->gid;
		if (end == o->user || (*end && *end != ':'))
			return perr_setx(
			    err, -EINVAL,
			    "--user \"%s\": expected UID[:GID] (numbers; names are not "
			    "resolved)",
			    o->user);
		if (*end == ':') {
			const char *g = end + 1;
			gid = strtoul(g, &end, 10);
			if (end == g || *end)
				return perr_setx(err, -EINVAL, "--user \"%s\": expected UID[:GID]",
						 o->user);
		}
		out->uid = (uint32_t)uid;
		out->gid = (uint32_t)gid;
	}
	out->terminal = o->tty;
	if (o->no_new_privs)
		out->no_new_privileges = true;
	return 0;
}

struct exec_run {
	struct eventloop *loop;
	int status;
	const char *pid_file;
	bool pid_file_failed;
	const char *root, *id;
	bool registered; /* in ROOT/ID/execs, for petrel ps */
	struct perr err;
};

static void exec_done(void *opaque, int status, const struct perr *err)
{
	struct exec_run *x = opaque;
	x->status = status;
	if (status < 0 && err)
		x->err = *err;
	eventloop_stop(x->loop);
}

static void exec_running(void *opaque, uint32_t id)
{
	struct exec_run *x = opaque;
	(void)id;
	struct perr reg_err = {0};
	if (container_exec_register(x->root, x->id, getpid(), &reg_err) < 0)
		log_warn("exec: %s (petrel ps will not list this process)", reg_err.msg);
	else
		x->registered = true;
	if (x->pid_file && pid_file_write(x->pid_file, getpid(), &x->err) < 0)
		x->pid_file_failed = true;
}

/* Runs the relay in this process until the process exits. */
static int exec_relay(const char *root, const char *id, const char *uds, struct agent_msg *req,
		      int notify_fd, const char *pid_file, struct perr *err)
{
	struct exec_run x = {.status = -1, .pid_file = pid_file, .root = root, .id = id};
	int rc = eventloop_create(&x.loop);
	if (rc < 0)
		return perr_set(err, rc, "event loop");
	sigset_t set;
	relay_forwarded_signals(&set);
	sigprocmask(SIG_BLOCK, &set, NULL);
	struct relay_config cfg = {.uds_path = uds,
				   .port = AGENT_VSOCK_PORT,
				   .conn_fd = -1,
				   .connect_timeout_ms = EXEC_CONNECT_TIMEOUT_MS,
				   .request = req,
				   .notify_fd = notify_fd,
				   .in_fd = STDIN_FILENO,
				   .out_fd = STDOUT_FILENO,
				   .err_fd = STDERR_FILENO,
				   .forward_signals = true,
				   .done = exec_done,
				   .running = exec_running,
				   .opaque = &x};
	struct relay *r = NULL;
	rc = relay_start(x.loop, &cfg, &r, err);
	if (rc == 0) {
		rc = eventloop_run(x.loop);
		if (rc < 0)
			perr_set(err, rc, "event loop");
	}
	relay_destroy(r);
	eventloop_destroy(x.loop);
	if (x.registered)
		container_exec_unregister(root, id, getpid());
	if (rc < 0)
		return rc;
	if (x.status < 0) {
		*err = x.err;
		return err->code ? err->code : -EIO;
	}
	return x.status;
}

int petrel_exec(const struct petrel_exec_opts *o, struct perr *err)
{
	struct oci_state *st = NULL;
	int rc = container_load(o->root, o->id, &st, err);
	if (rc < 0)
		return rc;
	enum oci_status status = container_status(o->root, st);
	struct agent_msg req = {.type = AGENT_MSG_EXEC};
	int master = -1, slave = -1;
	if (status != OCI_STATUS_RUNNING) {
		rc = perr_setx(err, -EINVAL, CONTAINER_ERR_NOT_RUNNING);
		goto out;
	}
	rc = o->process_file ? exec_process_from_file(o->process_file, &req.u.exec, err)
			     : exec_process_from_flags(o, st, &req.u.exec, err);
	if (rc < 0)
		goto out;
	if (!req.u.exec.nargs) {
		rc = perr_setx(err, -EINVAL, "exec: no command given");
		goto out;
	}
	if (req.u.exec.terminal && o->detach && !o->console_socket) {
		rc = perr_setx(err, -EINVAL,
			       "cannot allocate tty if petrel will detach without setting console "
			       "socket");
		goto out;
	}
	char uds[PATH_MAX];
	container_path(o->root, o->id, "agent.sock", uds, sizeof(uds));
	if (o->console_socket && req.u.exec.terminal) {
		char name[PATH_MAX];
		if ((rc = console_pty_open(&master, &slave, name, sizeof(name), err)) < 0 ||
		    (rc = console_send_fd(o->console_socket, master, name, err)) < 0)
			goto out;
		close(master);
		master = -1;
	}
	if (!o->detach) {
		if (slave >= 0) {
			dup2(slave, STDIN_FILENO);
			dup2(slave, STDOUT_FILENO);
			dup2(slave, STDERR_FILENO);
		}
		rc = exec_relay(o->root, o->id, uds, &req, -1, o->pid_file, err);
		goto out;
	}
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		rc = perr_set(err, -errno, "pipe");
		goto out;
	}
	pid_t child = fork();
	if (child < 0) {
		rc = perr_set(err, -errno, "fork");
		close(p[0]);
		close(p[1]);
		goto out;
	}
	if (child == 0) {
		close(p[0]);
		if (slave >= 0) {
			/* The slave as controlling terminal: a resize of the master
			 * then reaches us as SIGWINCH. */
			setsid();
			dup2(slave, STDIN_FILENO);
			dup2(slave, STDOUT_FILENO);
			dup2(slave, STDERR_FILENO);
			close(slave);
			ioctl(STDIN_FILENO, TIOCSCTTY, 0);
		}
		struct perr cerr = {0};
		int cs = exec_relay(o->root, o->id, uds, &req, p[1], NULL, &cerr);
		if (cs < 0)
			log_error("exec: %s", cerr.msg);
		_exit(cs < 0 ? 255 : cs);
	}
	close(p[1]);
	char line[PERR_MSG_MAX];
	size_t len = 0;
	for (;;) {
		ssize_t n = read(p[0], line + len, sizeof(line) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (memchr(line, '\n', len) || len == sizeof(line) - 1)
			break;
	}
	close(p[0]);
	line[len] = 0;
	line[strcspn(line, "\n")] = 0;
	if (strcmp(line, "ok") != 0) {
		rc = perr_setx(err, -EIO, "%s",
			       !strncmp(line, "error: ", 7) ? line + 7 : "exec failed");
		waitpid(child, NULL, 0);
		goto out;
	}
	rc = o->pid_file ? pid_file_write(o->pid_file, child, err) : 0;
out:
	if (master >= 0)
		close(master);
	if (slave >= 0)
		close(slave);
	agent_msg_free(&req);
	oci_state_free(st);
	return rc;
}
