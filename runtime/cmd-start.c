/* petrel start ID */
#include "common/cleanup.h"
#include "runtime/commands.h"
#include "runtime/flags.h"
#include "runtime/lifecycle.h"

int cmd_start(const struct petrel_cli *cli, int argc, char **argv, struct perr *err)
{
	const char *id;
	int rc = cmd_parse(NULL, 0, argc, argv, true, &id, NULL, NULL, err);
	if (rc < 0)
		return rc;
	rc = petrel_start(cli->root, id, err);
	return rc < 0 ? rc : 0;
}
