/* petrel features: the runtime-spec features document. */
#include <errno.h>
#include <stdio.h>

#include "runtime/commands.h"
#include "runtime/lifecycle.h"

int cmd_features(const struct petrel_cli *cli, int argc, char **argv, struct perr *err)
{
	(void)cli;
	if (argc > 1)
		return perr_setx(err, -EINVAL, "features: unexpected argument \"%s\"", argv[1]);
	int rc = petrel_features(stdout, err);
	return rc < 0 ? rc : 0;
}
