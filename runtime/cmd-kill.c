/* petrel kill [--all|-a] ID [SIGNAL]: SIGNAL as TERM, SIGTERM or 15 (default TERM). */
#include <errno.h>
#include <signal.h>

#include "common/cleanup.h"
#include "runtime/commands.h"
#include "runtime/flags.h"
#include "runtime/lifecycle.h"

int cmd_kill(const struct petrel_cli *cli, int argc, char **argv, struct perr *err)
{
	struct flag flags[] = {{.name = "all", .short_name = 'a'}};
	const char *id;
	char **rest;
	size_t n_rest;
	int rc = cmd_parse(flags, ARRAY_SIZE(flags), argc, argv, true, &id, &rest, &n_rest, err);
	if (rc < 0)
		return rc;
	if (n_rest > 1)
		return perr_setx(err, -EINVAL, "kill: unexpected argument \"%s\"", rest[1]);
	int sig = SIGTERM;
	if (n_rest == 1) {
		sig = signal_parse(rest[0]);
		if (sig < 0)
			return perr_setx(err, -EINVAL, "unknown signal \"%s\"", rest[0]);
	}
	rc = petrel_kill(cli->root, id, sig, flags[0].set, err);
	return rc < 0 ? rc : 0;
}
