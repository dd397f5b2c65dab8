/* petrel ps [--format table|json] ID */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/cleanup.h"
#include "runtime/commands.h"
#include "runtime/flags.h"
#include "runtime/lifecycle.h"

int cmd_ps(const struct petrel_cli *cli, int argc, char **argv, struct perr *err)
{
	struct flag flags[] = {{.name = "format", .short_name = 'f', .has_value = true}};
	const char *id;
	int rc = cmd_parse(flags, ARRAY_SIZE(flags), argc, argv, false, &id, NULL, NULL, err);
	if (rc < 0)
		return rc;
	const char *fmt = flags[0].set ? flags[0].value : "table";
	if (strcmp(fmt, "table") != 0 && strcmp(fmt, "json") != 0)
		return perr_setx(err, -EINVAL, "ps: --format \"%s\": allowed: table, json", fmt);
	rc = petrel_ps(cli->root, id, !strcmp(fmt, "json"), stdout, err);
	return rc < 0 ? rc : 0;
}
