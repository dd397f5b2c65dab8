/* petrel pause ID, petrel resume ID: QMP stop and cont on the container's VM. */
#include "runtime/commands.h"
#include "runtime/flags.h"
#include "runtime/lifecycle.h"

static int pause_or_resume(const struct petrel_cli *cli, int argc, char **argv, bool pause,
			   struct perr *err)
{
	const char *id;
	int rc = cmd_parse(NULL, 0, argc, argv, true, &id, NULL, NULL, err);
	if (rc < 0)
		return rc;
	rc = petrel_pause(cli->root, id, pause, err);
	return rc < 0 ? rc : 0;
}

int cmd_pause(const struct petrel_cli *cli, int argc, char **argv, struct perr *err)
{
	return pause_or_resume(cli, argc, argv, true, err);
}

int cmd_resume(const struct petrel_cli *cli, int argc, char **argv, struct perr *err)
{
	return pause_or_resume(cli, argc, argv, false, err);
}
