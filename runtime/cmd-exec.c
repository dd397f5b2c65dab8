/* petrel exec [--process F | ID ARGS...] [--detach] [--pid-file P]
 * [--console-socket S] [-t] [-e K=V]... [--cwd D] [--user UID[:GID]] ID [ARGS...] */
#include <errno.h>

#include "common/cleanup.h"
#include "runtime/commands.h"
#include "runtime/flags.h"
#include "runtime/lifecycle.h"

int cmd_exec(const struct petrel_cli *cli, int argc, char **argv, struct perr *err)
{
	struct flag flags[] = {
	    {.name = "console-socket", .has_value = true},
	    {.name = "cwd", .has_value = true},
	    {.name = "env", .short_name = 'e', .has_value = true, .repeat = true},
	    {.name = "tty", .short_name = 't'},
	    {.name = "user", .short_name = 'u', .has_value = true},
	    {.name = "process", .short_name = 'p', .has_value = true},
	    {.name = "detach", .short_name = 'd'},
	    {.name = "pid-file", .has_value = true},
	    {.name = "no-new-privs"},
	    {.name = "additional-gids", .short_name = 'g', .has_value = true, .repeat = true},
	    {.name = "cap", .short_name = 'c', .has_value = true, .repeat = true},
	    {.name = "apparmor", .has_value = true},
	    {.name = "process-label", .has_value = true},
	    {.name = "preserve-fds", .has_value = true},
	    {.name = "cgroup", .has_value = true, .repeat = true},
	    {.name = "ignore-paused"},
	    {.name = "no-subreaper"},
	};
	const char *id;
	char **rest;
	size_t n_rest;
	int rc = cmd_parse(flags, ARRAY_SIZE(flags), argc, argv, false, &id, &rest, &n_rest, err);
	if (rc < 0)
		return rc;
	/* What has no meaning for a process in a VM is refused, not ignored. */
	for (size_t i = 9; i <= 14; i++)
		if (flags[i].set && !(i == 13 && flags[i].value[0] == '0' && !flags[i].value[1]))
			return perr_setx(err, -ENOTSUP, "exec: --%s is not supported by petrel",
					 flags[i].name);
	if (!flags[5].set && n_rest == 0)
		return perr_setx(err, -EINVAL, "exec: give the command (ID ARGS...) or --process");
	if (flags[5].set && n_rest)
		return perr_setx(err, -EINVAL,
				 "exec: --process and command arguments exclude "
				 "each other");
	struct petrel_exec_opts o = {.root = cli->root,
				     .id = id,
				     .process_file = flags[5].value,
				     .args = rest,
				     .n_args = n_rest,
				     .env = flags[2].values,
				     .n_env = flags[2].n_values,
				     .cwd = flags[1].value,
				     .user = flags[4].value,
				     .no_new_privs = flags[8].set,
				     .tty = flags[3].set,
				     .detach = flags[6].set,
				     .pid_file = flags[7].value,
				     .console_socket = flags[0].value};
	return petrel_exec(&o, err);
}
