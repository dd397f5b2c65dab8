/* petrel list [--format table|json] [--quiet] */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/cleanup.h"
#include "runtime/commands.h"
#include "runtime/flags.h"
#include "runtime/lifecycle.h"

int cmd_list(const struct petrel_cli *cli, int argc, char **argv, struct perr *err)
{
	struct flag flags[] = {{.name = "format", .short_name = 'f', .has_value = true},
			       {.name = "quiet", .short_name = 'q'}};
	char *pos[1];
	size_t n = 0;
	int rc = flags_parse(flags, ARRAY_SIZE(flags), argc - 1, argv + 1, true, pos, 0, &n, err);
	if (rc < 0)
		return perr_wrap(err, "list");
	const char *fmt = flags[0].set ? flags[0].value : "table";
	if (strcmp(fmt, "table") != 0 && strcmp(fmt, "json") != 0)
		return perr_setx(err, -EINVAL, "list: --format \"%s\": allowed: table, json", fmt);
	rc = petrel_list(cli->root, !strcmp(fmt, "json"), flags[1].set, stdout, err);
	return rc < 0 ? rc : 0;
}
