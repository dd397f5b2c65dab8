/* OCI hooks (hooks.h). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/clock.h"
#include "runtime/hooks.h"

static int hook_run_one(const struct oci_hook *h, const char *what, const char *state,
			size_t state_len, struct perr *err)
{
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return perr_set(err, -errno, "%s: pipe", what);
	pid_t pid = fork();
	if (pid < 0) {
		int e = -errno;
		close(pipefd[0]);
		close(pipefd[1]);
		return perr_set(err, e, "%s: fork", what);
	}
	if (pid == 0) {
		dup2(pipefd[0], STDIN_FILENO);
		/* stdout stays petrel's stdout: `petrel state` style callers read ours. */
		dup2(STDERR_FILENO, STDOUT_FILENO);
		char *const empty_env[] = {NULL};
		char *argv0[] = {h->path, NULL};
		execve(h->path, h->args.v && h->args.n ? h->args.v : argv0,
		       h->env.v ? h->env.v : empty_env);
		fprintf(stderr, "petrel: %s: exec %s: %s\n", what, h->path, strerror(errno));
		_exit(127);
	}
	close(pipefd[0]);
	signal(SIGPIPE, SIG_IGN);
	const char *p = state;
	size_t left = state_len;
	while (left) {
		ssize_t w = write(pipefd[1], p, left);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break; /* the hook need not read its stdin */
		p += w;
		left -= (size_t)w;
	}
	close(pipefd[1]);
	int64_t deadline = h->has_timeout ? monotonic_ms() + (int64_t)h->timeout * 1000 : 0;
	int status;
	for (;;) {
		pid_t w = waitpid(pid, &status, h->has_timeout ? WNOHANG : 0);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return perr_set(err, -errno, "%s: wait", what);
		if (w == pid)
			break;
		if (monotonic_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return perr_setx(err, -ETIMEDOUT, "%s (%s): timed out after %d s", what,
					 h->path, h->timeout);
		}
		struct timespec ts = {0, 10 * 1000000L};
		nanosleep(&ts, NULL);
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFSIGNALED(status))
		return perr_setx(err, -EIO, "%s (%s): killed by signal %d", what, h->path,
				 WTERMSIG(status));
	return perr_setx(err, -EIO, "%s (%s): exit status %d", what, h->path, WEXITSTATUS(status));
}

int hooks_run(const struct oci_config *cfg, enum oci_hook_kind kind, const struct oci_state *st,
	      struct perr *err)
{
	const struct oci_hook_list *list = oci_hooks(cfg, kind);
	if (!list->n)
		return 0;
	autofree char *json = NULL;
	size_t len = 0;
	int rc = oci_state_to_json(st, &json, &len, err);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < list->n; i++) {
		char what[64];
		snprintf(what, sizeof(what), "hooks.%s[%zu]", oci_hook_kind_name(kind), i);
		rc = hook_run_one(&list->items[i], what, json, len, err);
		if (rc < 0)
			return rc;
	}
	return 0;
}
