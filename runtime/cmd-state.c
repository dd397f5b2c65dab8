/* petrel state ID: runc's JSON state document on stdout. */
#include <stdio.h>

#include "runtime/commands.h"
#include "runtime/flags.h"
#include "runtime/lifecycle.h"

int cmd_state(const struct petrel_cli *cli, int argc, char **argv, struct perr *err)
{
	const char *id;
	int rc = cmd_parse(NULL, 0, argc, argv, true, &id, NULL, NULL, err);
	if (rc < 0)
		return rc;
	rc = petrel_state(cli->root, id, stdout, err);
	return rc < 0 ? rc : 0;
}
