/* petrel delete [--force|-f] ID */
#include "common/cleanup.h"
#include "runtime/commands.h"
#include "runtime/flags.h"
#include "runtime/lifecycle.h"

int cmd_delete(const struct petrel_cli *cli, int argc, char **argv, struct perr *err)
{
	struct flag flags[] = {{.name = "force", .short_name = 'f'}};
	const char *id;
	int rc = cmd_parse(flags, ARRAY_SIZE(flags), argc, argv, true, &id, NULL, NULL, err);
	if (rc < 0)
		return rc;
	rc = petrel_delete(cli->root, id, flags[0].set, err);
	return rc < 0 ? rc : 0;
}
